//! Settings, layered: defaults → TOML file → `G2W_*` variables → flags.
//!
//! The file is `G2W_CONFIG` or `config.toml` in the platform's config directory. Unknown
//! keys are errors, so a typo is caught instead of silently ignored.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use g2w_goto::{DEFAULT_API_URL, DEFAULT_AUTH_URL, DEFAULT_RATE_LIMIT, SecretString, Url};
use serde::Deserialize;

/// The `[goto]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GotoFile {
    client_id: Option<String>,
    client_secret: Option<String>,
    auth_url: Option<String>,
    api_url: Option<String>,
    rate_limit: Option<u32>,
}

/// The `[store]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
}

/// The `[serve]` table of the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// Address to listen on.
    pub listen: Option<String>,
    /// How long intake waits for delivery, in milliseconds.
    pub sync_wait_ms: Option<u64>,
    /// Origins allowed to call the API from browsers.
    pub allowed_origins: Option<Vec<String>>,
    /// Where browsers go after a form post.
    pub thank_you_url: Option<String>,
    /// Intake requests per second per client IP (0 = no limit).
    pub intake_rate_per_ip: Option<u32>,
    /// The per-IP burst.
    pub intake_burst: Option<u32>,
    /// Deliveries in flight at once.
    pub delivery_concurrency: Option<usize>,
    /// No longer used (registrations are given up by age, `give_up_after_hours`);
    /// accepted so old config files still load.
    pub max_attempts: Option<u32>,
    /// Hours of failing before a registration is dead.
    pub give_up_after_hours: Option<u64>,
    /// Seconds a worker's lease lasts.
    pub lease_secs: Option<u64>,
    /// Seconds webinar forms stay fresh in the cache.
    pub cache_ttl_secs: Option<u64>,
    /// Milliseconds a visitor waits for GoTo to describe an uncached webinar.
    pub lookup_deadline_ms: Option<u64>,
    /// GoTo requests a second for form look-ups.
    pub lookup_rate: Option<u32>,
    /// Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// A name shown above the hosted form's subject.
    pub brand_title: Option<String>,
    /// A logo shown above the hosted form.
    pub logo_url: Option<String>,
    /// The hosted pages' accent colour (`#rrggbb`).
    pub accent_colour: Option<String>,
    /// Where received GoTo webhook events are forwarded.
    pub forward_url: Option<String>,
    /// Minutes between reconciliations of GoTo's lists with received events (0: never).
    pub reconcile_every_minutes: Option<u64>,
    /// Connections open at once.
    pub max_connections: Option<usize>,
    /// Seconds a connection may take to send a complete request head.
    pub header_timeout_secs: Option<u64>,
    /// Seconds a connection may sit idle between requests.
    pub keep_alive_timeout_secs: Option<u64>,
    /// Seconds a request body may take to arrive.
    pub body_timeout_secs: Option<u64>,
    /// Admin password checks at once.
    pub signin_concurrency: Option<usize>,
    /// Failed admin sign-ins a minute, from all addresses together.
    pub signin_failures_per_minute: Option<u32>,
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    goto: GotoFile,
    #[serde(default)]
    store: StoreFile,
    #[serde(default)]
    serve: ServeFile,
}

/// Where settings come from besides the file: the process environment, or a map in tests.
pub trait Env {
    /// A variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// Settings every command needs. `Debug` hides the secrets.
pub struct Settings {
    /// The OAuth client id, if configured anywhere.
    pub client_id: Option<String>,
    /// Its secret.
    pub client_secret: Option<SecretString>,
    /// GoTo's auth server.
    pub auth_url: Url,
    /// GoTo's API server.
    pub api_url: Url,
    /// Requests a second to GoTo for one account.
    pub rate_limit: u32,
    /// Where the database and key file live.
    pub data_dir: PathBuf,
    /// A PostgreSQL database to keep everything in instead of the SQLite file
    /// (`G2W_DATABASE_URL`, `[store] database_url`): several gateways can share it.
    pub database_url: Option<String>,
    /// `G2W_SECRET_KEY`, if set.
    pub secret_key: Option<String>,
    /// The `[serve]` table, for `g2w serve` to layer its own variables and flags on.
    pub serve: ServeFile,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("auth_url", &self.auth_url.as_str())
            .field("api_url", &self.api_url.as_str())
            .field("rate_limit", &self.rate_limit)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(without_password),
            )
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Values given as flags; they win over everything else.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct CredentialFlags {
    /// OAuth client id (else G2W_CLIENT_ID, the config file, or the stored login).
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// OAuth client secret (prefer G2W_CLIENT_SECRET: flags show up in `ps`).
    #[arg(long, global = true, value_name = "SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// The config file (else G2W_CONFIG, else config.toml in the platform's config dir).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A database URL fit for messages and logs: the password replaced.
pub fn without_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(not a URL)".to_owned(),
    }
}

fn parse_url(text: &str, origin: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).with_context(|| format!("{origin}: {text:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("{origin}: {text:?} must be an http(s) URL");
    }
    Ok(url)
}

/// The platform's place for g2w's data (`~/.local/share/g2w` on Linux).
fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("", "", "g2w")
        .map(|d| d.data_dir().to_owned())
        .context("cannot find a home directory for g2w's data; set G2W_DATA_DIR")
}

fn default_config_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "g2w").map(|d| d.config_dir().join("config.toml"))
}

/// Where received GoTo events are forwarded: `G2W_FORWARD_URL` (empty: none), else
/// `[serve] forward_url`. `g2w serve` checks it when it starts.
pub fn forward_url(env: &dyn Env, file: &ServeFile) -> Option<String> {
    env.var("G2W_FORWARD_URL")
        .filter(|u| !u.is_empty())
        .or_else(|| file.forward_url.clone())
}

/// Reads and parses a config file.
///
/// # Errors
/// When the file cannot be read or is not valid g2w TOML; the message names the file.
pub fn read_config_file(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

impl Settings {
    /// Resolves the layers.
    ///
    /// # Errors
    /// A bad config file, URL or number, with what and where.
    pub fn resolve(env: &dyn Env, flags: &CredentialFlags) -> anyhow::Result<Self> {
        let file = match flags
            .config
            .clone()
            .or_else(|| env.var("G2W_CONFIG").map(PathBuf::from))
        {
            Some(path) => read_config_file(&path)?,
            None => match default_config_file().filter(|p| p.exists()) {
                Some(path) => read_config_file(&path)?,
                None => ConfigFile::default(),
            },
        };
        let pick = |flag: &Option<String>, var: &str, from_file: &Option<String>| {
            flag.clone()
                .or_else(|| env.var(var))
                .or_else(|| from_file.clone())
        };
        let auth_url = pick(&None, "G2W_AUTH_URL", &file.goto.auth_url)
            .unwrap_or_else(|| DEFAULT_AUTH_URL.to_owned());
        let api_url = pick(&None, "G2W_API_URL", &file.goto.api_url)
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let rate_limit = match env.var("G2W_RATE_LIMIT") {
            Some(v) => v.trim().parse().with_context(|| {
                format!("G2W_RATE_LIMIT: {v:?} is not a whole number of requests per second")
            })?,
            None => file.goto.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT),
        };
        let data_dir = match env
            .var("G2W_DATA_DIR")
            .map(PathBuf::from)
            .or(file.store.data_dir)
        {
            Some(dir) => dir,
            None => default_data_dir()?,
        };
        Ok(Self {
            client_id: pick(&flags.client_id, "G2W_CLIENT_ID", &file.goto.client_id),
            client_secret: pick(
                &flags.client_secret,
                "G2W_CLIENT_SECRET",
                &file.goto.client_secret,
            )
            .map(SecretString::from),
            auth_url: parse_url(&auth_url, "the auth URL (G2W_AUTH_URL)")?,
            api_url: parse_url(&api_url, "the API URL (G2W_API_URL)")?,
            rate_limit,
            data_dir,
            database_url: match env.var("G2W_DATABASE_URL").or(file.store.database_url) {
                Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    Some(url)
                }
                Some(other) => bail!(
                    "G2W_DATABASE_URL: {:?} is not a postgres:// URL (leave it unset for the SQLite file)",
                    without_password(&other)
                ),
                None => None,
            },
            secret_key: env.var("G2W_SECRET_KEY"),
            serve: file.serve,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use g2w_goto::ExposeSecret as _;

    use super::*;

    struct MapEnv(HashMap<&'static str, String>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn env(pairs: &[(&'static str, &str)]) -> MapEnv {
        MapEnv(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[goto]\nclient_id = \"from-file\"\nclient_secret = \"file-secret\"\n\
             api_url = \"http://file.example\"\nrate_limit = 3\n[store]\ndata_dir = \"/tmp/x\"\n",
        )
        .unwrap();
        let path = file.to_string_lossy().into_owned();
        let only_file =
            Settings::resolve(&env(&[("G2W_CONFIG", &path)]), &CredentialFlags::default()).unwrap();
        assert_eq!(only_file.client_id.as_deref(), Some("from-file"));
        assert_eq!(only_file.api_url.as_str(), "http://file.example/");
        assert_eq!(
            only_file.auth_url.as_str(),
            "https://authentication.logmeininc.com/"
        );
        assert_eq!(only_file.rate_limit, 3);
        assert_eq!(only_file.data_dir, PathBuf::from("/tmp/x"));

        let with_env = Settings::resolve(
            &env(&[
                ("G2W_CONFIG", &path),
                ("G2W_CLIENT_ID", "from-env"),
                ("G2W_RATE_LIMIT", "7"),
            ]),
            &CredentialFlags::default(),
        )
        .unwrap();
        assert_eq!(with_env.client_id.as_deref(), Some("from-env"));
        assert_eq!(with_env.rate_limit, 7);

        let flags = CredentialFlags {
            client_id: Some("from-flag".into()),
            client_secret: Some("flag-secret".into()),
            config: None,
        };
        let with_flags = Settings::resolve(
            &env(&[("G2W_CONFIG", &path), ("G2W_CLIENT_ID", "from-env")]),
            &flags,
        )
        .unwrap();
        assert_eq!(with_flags.client_id.as_deref(), Some("from-flag"));
        assert_eq!(
            with_flags.client_secret.as_ref().unwrap().expose_secret(),
            "flag-secret"
        );
        assert!(
            !format!("{with_flags:?}").contains("flag-secret"),
            "Debug redacts"
        );
    }

    #[test]
    fn bad_files_and_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let cases = [
            ("[goto]\nclient_idd = \"typo\"\n", "unknown field"),
            ("[goto\n", "invalid config file"),
            ("[goto]\nrate_limit = \"fast\"\n", "invalid config file"),
        ];
        for (content, expected) in cases {
            std::fs::write(&file, content).unwrap();
            let err = Settings::resolve(
                &env(&[("G2W_CONFIG", &file.to_string_lossy())]),
                &CredentialFlags::default(),
            )
            .unwrap_err();
            assert!(
                format!("{err:#}").contains(expected),
                "{content:?}: {err:#}"
            );
        }
        let missing = Settings::resolve(
            &env(&[("G2W_CONFIG", "/nonexistent/g2w.toml")]),
            &CredentialFlags::default(),
        );
        assert!(format!("{:#}", missing.unwrap_err()).contains("cannot read the config file"));
        let err = Settings::resolve(
            &env(&[
                ("G2W_DATABASE_URL", "mysql://root:hunter2@db/g2w"),
                ("G2W_DATA_DIR", "/tmp"),
            ]),
            &CredentialFlags::default(),
        )
        .unwrap_err();
        assert!(
            !format!("{err:#}").contains("hunter2"),
            "a password never reaches a message: {err:#}"
        );
        let pg = Settings::resolve(
            &env(&[
                ("G2W_DATABASE_URL", "postgres://g2w:s3cret@db/g2w"),
                ("G2W_DATA_DIR", "/tmp"),
            ]),
            &CredentialFlags::default(),
        )
        .unwrap();
        assert!(!format!("{pg:?}").contains("s3cret"), "Debug redacts it");
        for (var, value) in [
            ("G2W_API_URL", "not a url"),
            ("G2W_AUTH_URL", "ftp://x"),
            ("G2W_RATE_LIMIT", "-1"),
            ("G2W_DATABASE_URL", "mysql://root:hunter2@db/g2w"),
        ] {
            let err = Settings::resolve(
                &env(&[(var, value), ("G2W_DATA_DIR", "/tmp")]),
                &CredentialFlags::default(),
            )
            .unwrap_err();
            assert!(format!("{err:#}").contains(var), "{var}: {err:#}");
        }
    }
}
