//! `g2w config example`: a commented config file to start from.

/// `g2w config …`
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example config file.
    Example,
}

const EXAMPLE: &str = r##"# g2w configuration. Put it in ~/.config/g2w/config.toml, or point G2W_CONFIG or
# --config at it. Every value can also be set by a G2W_* variable (which wins over
# this file) or a flag (which wins over both). Unknown keys are errors.

[goto]
# The OAuth client from GoTo's developer portal (G2W_CLIENT_ID, G2W_CLIENT_SECRET).
# Prefer the variables for the secret; after `g2w auth login` both are stored
# encrypted with the login and are no longer needed here.
# client_id = "your-client-id"
# client_secret = "your-client-secret"
# auth_url = "https://authentication.logmeininc.com"   # G2W_AUTH_URL
# api_url = "https://api.getgo.com"                    # G2W_API_URL
# rate_limit = 10          # requests/s to GoTo for this account (G2W_RATE_LIMIT)

[store]
# Where the database (g2w.db) and its key file live (G2W_DATA_DIR).
# The encryption key can instead come from G2W_SECRET_KEY (base64 of 32 bytes).
# data_dir = "/var/lib/g2w"
# Keep everything in PostgreSQL instead, so several gateways share one store
# (G2W_DATABASE_URL; prefer the variable, the URL holds a password). Every gateway
# must then use the same G2W_SECRET_KEY. docs/deploy.md has the whole set-up.
# database_url = "postgres://g2w:password@db.internal/g2w"

[serve]
# listen = "127.0.0.1:8080"                          # G2W_LISTEN, --listen
# The longest a registration request waits for GoTo before answering 202 (queued);
# it answers at once when the registrations ahead of it could not be delivered in
# that time at the account's rate, or while GoTo is failing.
# sync_wait_ms = 1000                                # G2W_SYNC_WAIT=1s, --sync-wait 1s
# Landing-page origins allowed to call the API from browsers (CORS).
# allowed_origins = ["https://www.example.com"]      # G2W_ALLOWED_ORIGINS=a,b
# Where browsers go after a plain HTML form post (status, registrationId and
# joinUrl are added as query parameters); default: a built-in confirmation page.
# thank_you_url = "https://www.example.com/thanks"   # G2W_THANK_YOU_URL
# Registrations per second per client IP (0 = no limit), and the burst allowed.
# intake_rate_per_ip = 5                             # G2W_INTAKE_RATE_PER_IP
# intake_burst = 20                                  # G2W_INTAKE_BURST
# Deliveries in flight at once (they share GoTo's rate limit).
# delivery_concurrency = 4                           # G2W_DELIVERY_CONCURRENCY
# Hours GoTo may keep failing a registration (5xx, timeouts, 429s) before it is
# given up as "dead" (retry it with `g2w outbox retry`).
# give_up_after_hours = 72                           # G2W_GIVE_UP_AFTER_HOURS
# Seconds an attempt's lease lasts (renewed while it runs); a killed gateway's
# registrations are tried again this soon.
# lease_secs = 10                                    # G2W_LEASE_SECS
# Seconds webinar details and forms stay fresh in the cache (stale ones are served
# for up to a day while GoTo fails).
# cache_ttl_secs = 300                               # G2W_CACHE_TTL_SECS
# The longest a visitor waits for GoTo to describe an uncached webinar; past it the
# registration is stored anyway and GoTo checks it at delivery.
# lookup_deadline_ms = 1000                          # G2W_LOOKUP_DEADLINE_MS
# GoTo requests a second that form look-ups may use (deliveries get the rest).
# lookup_rate = 2                                    # G2W_LOOKUP_RATE
# Reverse proxies allowed to say who the visitor is (X-Forwarded-For) and that
# they used HTTPS (X-Forwarded-Proto); from anyone else those headers are ignored.
# trusted_proxies = ["10.0.0.0/8", "::1"]            # G2W_TRUSTED_PROXIES=a,b
# The hosted form (/r/WEBINAR_KEY) and confirmation page: a name, a logo, a colour.
# brand_title = "Example Inc. webinars"              # G2W_BRAND_TITLE
# logo_url = "https://www.example.com/logo.png"      # G2W_LOGO_URL
# accent_colour = "#0b6bcb"                          # G2W_ACCENT_COLOUR
# GoTo's webhook events (`g2w webhooks setup`) forwarded to a URL of yours; sign them
# by setting G2W_FORWARD_SECRET in the environment (never here).
# forward_url = "https://www.example.com/g2w-events" # G2W_FORWARD_URL
# Minutes between comparisons of GoTo's lists with the events received (0: never).
# reconcile_every_minutes = 15                       # G2W_RECONCILE_EVERY_MINUTES
# The public edge: what one visitor may hold. Connections open at once (more wait in
# the listen queue; at start the open-file limit is raised to the hard limit).
# max_connections = 4096                             # G2W_MAX_CONNECTIONS
# Seconds a connection may take to send a request head, may sit idle between
# requests, and a body may take to arrive (closed, or 408, past them).
# header_timeout_secs = 10                           # G2W_HEADER_TIMEOUT_SECS
# keep_alive_timeout_secs = 60                       # G2W_KEEP_ALIVE_TIMEOUT_SECS
# body_timeout_secs = 10                             # G2W_BODY_TIMEOUT_SECS
# Admin sign-in: password checks at once (each holds 19 MiB), and failed sign-ins a
# minute from all addresses together (each address also gets five per 5 minutes).
# signin_concurrency = 2                             # G2W_SIGNIN_CONCURRENCY
# signin_failures_per_minute = 30                    # G2W_SIGNIN_FAILURES_PER_MINUTE
"##;

/// Runs a config command.
pub fn run(command: &ConfigCommand) {
    match command {
        ConfigCommand::Example => print!("{EXAMPLE}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_parses_as_a_config_file_once_uncommented() {
        let uncommented: String = super::EXAMPLE
            .lines()
            .filter_map(|l| {
                let setting = l.strip_prefix("# ").filter(|l| {
                    l.split_once(" = ")
                        .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                });
                setting.or(Some(l).filter(|l| l.starts_with('[')))
            })
            .map(|l| format!("{}\n", l.split("  #").next().unwrap_or(l).trim_end()))
            .collect();
        let parsed: Result<crate::settings::ConfigFile, _> = toml::from_str(&uncommented);
        assert!(parsed.is_ok(), "{uncommented}\n{parsed:?}");
    }
}
