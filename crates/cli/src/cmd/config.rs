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

[serve]
# listen = "127.0.0.1:8080"                          # G2W_LISTEN, --listen
# How long a registration request waits for GoTo before answering 202 (queued).
# sync_wait_ms = 2000                                # G2W_SYNC_WAIT=2s, --sync-wait 2s
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
# Attempts before a registration is "dead" (retry it with `g2w outbox retry`).
# max_attempts = 20                                  # G2W_MAX_ATTEMPTS
# Seconds before a crashed worker's registration is tried again.
# lease_secs = 60                                    # G2W_LEASE_SECS
# The hosted form (/r/WEBINAR_KEY) and confirmation page: a name, a logo, a colour.
# brand_title = "Example Inc. webinars"              # G2W_BRAND_TITLE
# logo_url = "https://www.example.com/logo.png"      # G2W_LOGO_URL
# accent_colour = "#0b6bcb"                          # G2W_ACCENT_COLOUR
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
