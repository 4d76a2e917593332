//! The gateway's settings.

use std::time::Duration;

/// How the hosted pages look.
#[derive(Debug, Clone)]
pub struct Branding {
    /// A name shown above the webinar's subject (your company or event series).
    pub title: Option<String>,
    /// A logo shown above the form.
    pub logo_url: Option<String>,
    /// The accent colour, as `#rgb` or `#rrggbb`.
    pub accent: String,
}

impl Default for Branding {
    fn default() -> Self {
        Self {
            title: None,
            logo_url: None,
            accent: "#0b6bcb".to_owned(),
        }
    }
}

impl Branding {
    /// Whether `colour` is a CSS hex colour (anything else could break out of the style).
    pub fn valid_accent(colour: &str) -> bool {
        let hex = colour.strip_prefix('#').unwrap_or("");
        matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// How the gateway behaves. `Default` is what `g2w serve` uses unless told otherwise.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The g2w profile (GoTo login) registrations are delivered with.
    pub profile: String,
    /// How long an intake request waits for delivery before answering 202.
    pub sync_wait: Duration,
    /// Origins allowed to call the API from a browser (CORS). Empty: none.
    pub allowed_origins: Vec<String>,
    /// Where a browser's form post is sent after submitting; else the built-in page.
    pub thank_you_url: Option<String>,
    /// Intake requests a second per client IP (0 = no limit), with this burst.
    pub intake_rate_per_ip: u32,
    /// The per-IP burst.
    pub intake_burst: u32,
    /// Deliveries in flight at once (they still share GoTo's rate limit).
    pub delivery_concurrency: usize,
    /// Attempts before a registration is `dead`.
    pub max_attempts: u32,
    /// How long a worker's lease on a registration lasts; a crashed worker's rows are
    /// retried after this.
    pub lease: Duration,
    /// First backoff after a failed delivery; it doubles up to `backoff_cap`.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_cap: Duration,
    /// How long webinar fields and details are cached.
    pub cache_ttl: Duration,
    /// Refresh the GoTo token at least this often, so the refresh token never expires
    /// from disuse.
    pub keep_alive: Duration,
    /// Start the delivery worker and keep-alive in the background (tests step them).
    pub background_tasks: bool,
    /// How the hosted form and confirmation pages look.
    pub brand: Branding,
    /// The admin console's password; `None` turns the console off.
    pub admin_password: Option<crate::admin::AdminPassword>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            profile: "default".to_owned(),
            sync_wait: Duration::from_secs(2),
            allowed_origins: Vec::new(),
            thank_you_url: None,
            intake_rate_per_ip: 5,
            intake_burst: 20,
            delivery_concurrency: 4,
            max_attempts: 20,
            lease: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            cache_ttl: Duration::from_secs(300),
            keep_alive: Duration::from_secs(24 * 3600),
            background_tasks: true,
            brand: Branding::default(),
            admin_password: None,
        }
    }
}
