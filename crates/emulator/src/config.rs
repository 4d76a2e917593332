//! What an emulator instance is told at start.

/// The OAuth client every emulator knows, so `g2w` and the docs work without set-up.
pub const DEMO_CLIENT_ID: &str = "demo-client";
/// The secret of [`DEMO_CLIENT_ID`]. Not a credential: it only opens the emulator.
pub const DEMO_CLIENT_SECRET: &str = "demo-secret";

/// Lifetimes the emulator applies, in seconds of its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// An access token lives this long (GoTo: 3600).
    pub access_token: i64,
    /// A refresh token lives this long (GoTo: about 30 days).
    pub refresh_token: i64,
    /// A refresh in this last stretch of a refresh token's life issues a new one.
    pub refresh_rotation_window: i64,
    /// An authorization code must be exchanged within this time.
    pub authorization_code: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access_token: 3600,
            refresh_token: 30 * 24 * 3600,
            refresh_rotation_window: 2 * 24 * 3600,
            authorization_code: 600,
        }
    }
}

/// Settings of one emulator instance. `Default` gives GoTo's documented behaviour.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Skip the consent page: `/oauth/authorize` redirects with a code at once.
    pub auto_approve: bool,
    /// OAuth clients (id, secret) known besides `demo-client`.
    pub clients: Vec<(String, String)>,
    /// Redirect URIs allowed besides loopback ones.
    pub redirect_uris: Vec<String>,
    /// Requests per second allowed per GoTo account on the API (its organizers share
    /// them); 0 turns the limit off.
    pub rate_limit: u32,
    /// Add the owner fields of GoTo's old token host to token responses.
    pub legacy_token_fields: bool,
    /// Start with one organizer's demo webinars.
    pub seed_demo: bool,
    /// Token and code lifetimes.
    pub lifetimes: Lifetimes,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            auto_approve: false,
            clients: Vec::new(),
            redirect_uris: Vec::new(),
            rate_limit: 10,
            legacy_token_fields: false,
            seed_demo: false,
            lifetimes: Lifetimes::default(),
        }
    }
}
