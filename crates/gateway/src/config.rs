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
    /// A registration GoTo keeps failing (5xx, timeouts, 429s) is given up as `dead`
    /// only after failing for this long without a break; GoTo's definitive refusal
    /// (`failed`) ends it at once.
    pub give_up_after: Duration,
    /// How long an attempt's lease on a registration lasts; a heartbeat renews it while
    /// the attempt runs, so a killed process's registrations are retried this soon.
    pub lease: Duration,
    /// First backoff after a failed delivery; it doubles up to `backoff_cap`.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_cap: Duration,
    /// How long webinar fields and details are fresh in the cache.
    pub cache_ttl: Duration,
    /// How long past its TTL a cached form is still served while GoTo fails.
    pub cache_stale_for: Duration,
    /// How long "no such webinar" is remembered.
    pub not_found_ttl: Duration,
    /// The longest a visitor's request waits for GoTo to describe a webinar the cache
    /// does not hold; past it intake stores the registration for GoTo to check.
    pub lookup_deadline: Duration,
    /// GoTo requests a second that form look-ups (page views, cache renewals) may use:
    /// the rest of the account's rate is left to deliveries.
    pub lookup_rate: u32,
    /// Look-ups of webinars the cache does not hold, per visitor address and minute
    /// (0 = no limit); a burst of as many is allowed.
    pub lookups_per_ip_per_minute: u32,
    /// Refresh the GoTo token at least this often, so the refresh token never expires
    /// from disuse.
    pub keep_alive: Duration,
    /// How the hosted form and confirmation pages look.
    pub brand: Branding,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed;
    /// from anyone else those headers are ignored.
    pub trusted_proxies: Vec<crate::proxy::ProxyRange>,
    /// The admin console's password; `None` turns the console off.
    pub admin_password: Option<crate::sign_in::AdminPassword>,
    /// Where received GoTo events are forwarded (the user's own URL); `None`: kept only.
    pub forward_url: Option<String>,
    /// The key forwarded events are signed with (HMAC-SHA256); `None`: unsigned.
    pub forward_secret: Option<g2w_goto::SecretString>,
    /// How often GoTo's registrant and attendee lists are compared with the events
    /// received (only once webhooks are set up); `None` turns it off.
    pub reconcile_every: Option<Duration>,
    /// How long the record of API keys' uses is kept; `None`: for ever.
    pub key_audit_kept: Option<Duration>,
    /// Connections open at once; more wait in the listen queue until one closes.
    pub max_connections: usize,
    /// How long a connection may take to send a complete request head (from opening,
    /// or from its first byte after an idle spell) before it is closed.
    pub header_timeout: Duration,
    /// How long a connection may sit idle between requests before it is closed.
    pub keep_alive_timeout: Duration,
    /// How long a request body may take to arrive once its head has (408 past it).
    pub body_timeout: Duration,
    /// Admin passwords checked at once (each argon2id check holds 19 MiB); others wait.
    pub signin_concurrency: usize,
    /// Failed admin sign-ins a minute from all addresses together (each address also
    /// has its own five in five minutes); past it, 429 before any password is checked.
    pub signin_failures_per_minute: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            profile: "default".to_owned(),
            sync_wait: Duration::from_secs(1),
            allowed_origins: Vec::new(),
            thank_you_url: None,
            intake_rate_per_ip: 5,
            intake_burst: 20,
            delivery_concurrency: 4,
            give_up_after: Duration::from_secs(3 * 24 * 3600),
            lease: Duration::from_secs(10),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            cache_ttl: Duration::from_secs(300),
            cache_stale_for: Duration::from_secs(24 * 3600),
            not_found_ttl: Duration::from_secs(60),
            lookup_deadline: Duration::from_secs(1),
            lookup_rate: 2,
            lookups_per_ip_per_minute: 20,
            keep_alive: Duration::from_secs(24 * 3600),
            brand: Branding::default(),
            trusted_proxies: Vec::new(),
            admin_password: None,
            forward_url: None,
            forward_secret: None,
            reconcile_every: Some(Duration::from_secs(15 * 60)),
            key_audit_kept: Some(Duration::from_secs(90 * 86_400)),
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            signin_concurrency: 2,
            signin_failures_per_minute: 30,
        }
    }
}
