//! Settings, layered: defaults → TOML file → `G2W_*` variables → flags.
//!
//! The file is `G2W_CONFIG` or `config.toml` in the platform's config directory. Unknown
//! keys are errors, so a typo is caught instead of silently ignored.

pub mod serve;
pub mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use g2w_goto::{SecretString, Url};
use serde::de::DeserializeOwned;

use table::{Kind, Section, Spec};

/// The config file's values, each checked against [`table`] when it was read.
#[derive(Debug, Default, Clone)]
pub struct ConfigFile {
    values: BTreeMap<(Section, &'static str), toml::Value>,
    /// `[sources.NAME]` tables: form builders declared in the file.
    pub sources: Vec<FileSource>,
}

/// A form builder declared in the config file (`[sources.NAME]`); `g2w serve` and
/// `g2w sources` bring the store in line with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// The table's name: the source's.
    #[serde(skip)]
    pub name: String,
    /// The tool (`typeform`, `webflow`, `tally`, `unbounce`, `generic`).
    pub kind: String,
    /// The webinar it registers for.
    pub webinar: Option<String>,
    /// Or the series.
    pub series: Option<String>,
    /// The variable holding the secret (a secret is never written in the file).
    pub secret_env: Option<String>,
    /// GoTo's field = the tool's field.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// The only addresses posts are taken from.
    #[serde(default)]
    pub allow: Vec<String>,
    /// A generic source's submission id field.
    pub id_field: Option<String>,
    /// A generic source's signature header.
    pub signature_header: Option<String>,
    /// `hex` or `base64`.
    pub signature_encoding: Option<String>,
    /// Before the digest (`sha256=`).
    pub signature_prefix: Option<String>,
    /// The signing time's header.
    pub timestamp_header: Option<String>,
    /// Between the time and the body.
    pub timestamp_separator: Option<String>,
}

impl ConfigFile {
    /// Parses a config file's text.
    ///
    /// # Errors
    /// Not TOML; an unknown table or key (with the nearest known one); a value of the
    /// wrong kind.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let tables: toml::Table = toml::from_str(text)?;
        let mut values = BTreeMap::new();
        let mut sources = Vec::new();
        for (name, table) in tables {
            if name == "sources" {
                let toml::Value::Table(declared) = table else {
                    bail!("sources must hold tables: [sources.NAME]");
                };
                for (source, fields) in declared {
                    let mut parsed: FileSource = fields
                        .try_into()
                        .with_context(|| format!("[sources.{source}]"))?;
                    parsed.name = source;
                    sources.push(parsed);
                }
                continue;
            }
            let Some(section) = Section::IN_FILE.into_iter().find(|s| s.name() == name) else {
                bail!(
                    "unknown table [{name}] (the tables are [goto], [store], [serve] and [sources.NAME])"
                );
            };
            let toml::Value::Table(table) = table else {
                bail!("{name} must be a table: [{name}]");
            };
            for (key, value) in table {
                let Some(spec) = table::find(section, &key) else {
                    let known = table::ALL
                        .iter()
                        .filter(|s| s.section == section && !s.retired)
                        .filter_map(|s| s.key);
                    bail!(
                        "unknown key {key:?} in [{name}]{}",
                        match nearest(&key, known) {
                            Some(near) => format!(" (did you mean {near:?}?)"),
                            None => String::new(),
                        }
                    );
                };
                let fits = match spec.kind {
                    Kind::Text => value.is_str(),
                    Kind::Number => value.is_integer(),
                    Kind::List => value
                        .as_array()
                        .is_some_and(|a| a.iter().all(toml::Value::is_str)),
                };
                if !fits {
                    bail!(
                        "{} must be {}, not {}",
                        spec.name(),
                        match spec.kind {
                            Kind::Text => "a string in quotes",
                            Kind::Number => "a whole number",
                            Kind::List => "a list of strings, like [\"a\", \"b\"]",
                        },
                        value.type_str()
                    );
                }
                values.insert((section, spec.key.unwrap_or_default()), value);
            }
        }
        Ok(Self { values, sources })
    }

    fn value(&self, spec: &Spec) -> Option<&toml::Value> {
        self.values.get(&(spec.section, spec.key?))
    }
}

/// The known key closest to a mistyped one, if any is close.
fn nearest<'k>(typed: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let substituted = diagonal + usize::from(ca != *cb);
                diagonal = row[j + 1];
                row[j + 1] = substituted.min(row[j] + 1).min(row[j + 1] + 1);
            }
        }
        row[b.len()]
    };
    let bare = |k: &str| k.replace(['_', '-'], "").to_ascii_lowercase();
    let typed_bare = bare(typed);
    known
        .map(|k| (distance(typed, k), k))
        .filter(|(d, k)| *d <= 3 || bare(k).contains(&typed_bare) || typed_bare.contains(&bare(k)))
        .min()
        .map(|(_, k)| k)
}

/// A setting's value from the variable, else the file; flags are the caller's.
pub struct Layers<'a> {
    env: &'a dyn Env,
    file: &'a ConfigFile,
}

impl<'a> Layers<'a> {
    /// Reads `env` over `file`.
    pub fn new(env: &'a dyn Env, file: &'a ConfigFile) -> Self {
        Self { env, file }
    }

    /// The variable's text, if set and not empty.
    pub fn var(&self, spec: &Spec) -> Option<String> {
        self.env.var(spec.var)
    }

    /// A text setting.
    pub fn text(&self, spec: &Spec) -> Option<String> {
        self.var(spec).or_else(|| {
            self.file
                .value(spec)
                .and_then(|v| v.as_str().map(str::to_owned))
        })
    }

    /// A list setting: comma-separated in the variable.
    pub fn list(&self, spec: &Spec) -> Option<Vec<String>> {
        match self.var(spec) {
            Some(v) => Some(
                v.split(',')
                    .map(|item| item.trim().to_owned())
                    .filter(|item| !item.is_empty())
                    .collect(),
            ),
            None => self
                .file
                .value(spec)
                .cloned()
                .map(|v| v.try_into::<Vec<String>>().unwrap_or_default()),
        }
    }

    /// A number (or anything else parsed from the variable's text).
    ///
    /// # Errors
    /// A value that does not parse or fit, naming where it came from.
    pub fn number<T: std::str::FromStr + DeserializeOwned>(
        &self,
        spec: &Spec,
    ) -> anyhow::Result<Option<T>> {
        if let Some(v) = self.var(spec) {
            return v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("{}: {v:?} is not valid", spec.var));
        }
        self.file
            .value(spec)
            .map(|v| {
                v.clone()
                    .try_into::<T>()
                    .map_err(|_| anyhow::anyhow!("{}: {v:?} is out of range", spec.name()))
            })
            .transpose()
    }
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

/// A profile's name as the store keeps it: 1 to 64 letters, digits, `-`, `_` or `.`.
///
/// # Errors
/// Any other name, saying what is allowed.
pub fn parse_profile(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err("use 1 to 64 letters, digits, '-', '_' or '.'".to_owned())
    }
}

/// Settings every command needs. `Debug` hides the secrets.
#[derive(Clone)]
pub struct Settings {
    /// The OAuth client id, if configured anywhere.
    pub client_id: Option<String>,
    /// Its secret.
    pub client_secret: Option<SecretString>,
    /// GoTo's auth server.
    pub auth_url: Url,
    /// GoTo's API server.
    pub api_url: Url,
    /// Whether `auth_url` or `api_url` was set (flag, environment or file) rather than
    /// GoTo's own: else a login's remembered GoTo is used.
    pub goto_set: bool,
    /// Requests a second to GoTo for one account.
    pub rate_limit: u32,
    /// Where the database and key file live.
    pub data_dir: PathBuf,
    /// A PostgreSQL database to keep everything in instead of the SQLite file
    /// (`G2W_DATABASE_URL`, `[store] database_url`): several gateways can share it.
    pub database_url: Option<String>,
    /// `G2W_SECRET_KEY`, if set.
    pub secret_key: Option<String>,
    /// The config file, for `g2w serve` to layer its own variables and flags on.
    pub file: ConfigFile,
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

/// Where received GoTo events are forwarded, if anywhere. `g2w serve` checks it when it
/// starts.
pub fn forward_url(env: &dyn Env, file: &ConfigFile) -> Option<String> {
    Layers::new(env, file).text(&table::FORWARD_URL)
}

/// Reads and parses a config file.
///
/// # Errors
/// When the file cannot be read or is not valid g2w TOML; the message names the file.
pub fn read_config_file(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    ConfigFile::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
}

impl Settings {
    /// Resolves the layers.
    ///
    /// # Errors
    /// A bad config file, URL or number, with what and where.
    pub fn resolve(env: &dyn Env, flags: &CredentialFlags) -> anyhow::Result<Self> {
        let file_path = config_path(env, flags).filter(|(_, chosen)| {
            // A file named by flag or variable must exist; the default one may not.
            *chosen
        });
        let file_path = match file_path {
            Some((path, _)) => Some(path),
            None => default_config_file().filter(|p| p.exists()),
        };
        let file = match &file_path {
            Some(path) => read_config_file(path)?,
            None => ConfigFile::default(),
        };
        let layers = Layers::new(env, &file);
        let url = |spec: &Spec, default: &str| {
            let text = layers.text(spec).unwrap_or_else(|| default.to_owned());
            parse_url(&text, &format!("{} ({})", spec.name(), spec.var))
        };
        let data_dir = match layers.text(&table::DATA_DIR) {
            Some(dir) => PathBuf::from(dir),
            None => default_data_dir()?,
        };
        let database_url = match layers.text(&table::DATABASE_URL) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Some(url)
            }
            Some(other) => bail!(
                "{}: {:?} is not a postgres:// URL (leave it unset for the SQLite file)",
                table::DATABASE_URL.var,
                without_password(&other)
            ),
            None => None,
        };
        Ok(Self {
            client_id: flags
                .client_id
                .clone()
                .or_else(|| layers.text(&table::CLIENT_ID)),
            client_secret: flags
                .client_secret
                .clone()
                .or_else(|| layers.text(&table::CLIENT_SECRET))
                .map(SecretString::from),
            auth_url: url(&table::AUTH_URL, g2w_goto::DEFAULT_AUTH_URL)?,
            api_url: url(&table::API_URL, g2w_goto::DEFAULT_API_URL)?,
            goto_set: layers.text(&table::AUTH_URL).is_some()
                || layers.text(&table::API_URL).is_some(),
            rate_limit: layers
                .number(&table::RATE_LIMIT)?
                .unwrap_or(g2w_goto::DEFAULT_RATE_LIMIT),
            data_dir,
            database_url,
            secret_key: layers.var(&table::SECRET_KEY),
            file,
        })
    }
}

/// The config file named by `--config` or `G2W_CONFIG` (`true`: chosen), else the
/// platform's default place (`false`: used only if it exists).
pub fn config_path(env: &dyn Env, flags: &CredentialFlags) -> Option<(PathBuf, bool)> {
    flags
        .config
        .clone()
        .or_else(|| env.var(table::CONFIG.var).map(PathBuf::from))
        .map(|p| (p, true))
        .or_else(|| default_config_file().map(|p| (p, false)))
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A flag on the command line.
    Flag,
    /// A `G2W_*` variable.
    Environment,
    /// The config file.
    File,
    /// Nothing gave one.
    Default,
}

impl Source {
    /// Its name in `g2w config show`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Environment => "environment",
            Self::File => "file",
            Self::Default => "default",
        }
    }
}

/// A setting as it is in effect: its value (secrets replaced by `[set]`, passwords cut
/// out of URLs) and where the value came from.
#[derive(Debug, Clone)]
pub struct Effective {
    /// The setting.
    pub spec: &'static Spec,
    /// Its value as text, if any.
    pub value: Option<String>,
    /// Where it came from.
    pub source: Source,
}

/// Every setting as `env`, `file` and the global `flags` make it.
pub fn effective(env: &dyn Env, file: &ConfigFile, flags: &CredentialFlags) -> Vec<Effective> {
    let flag = |spec: &Spec| -> Option<String> {
        if spec.var == table::CLIENT_ID.var {
            flags.client_id.clone()
        } else if spec.var == table::CLIENT_SECRET.var {
            flags.client_secret.clone()
        } else if spec.var == table::CONFIG.var {
            flags.config.as_ref().map(|p| p.display().to_string())
        } else {
            None
        }
    };
    table::ALL
        .iter()
        .filter(|spec| !spec.retired)
        .map(|spec| {
            let file_value = file.value(spec).map(|v| match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other
                    .as_integer()
                    .map_or_else(String::new, |n| n.to_string()),
            });
            let (value, source) = if let Some(v) = flag(spec) {
                (Some(v), Source::Flag)
            } else if let Some(v) = env.var(spec.var) {
                (Some(v), Source::Environment)
            } else if let Some(v) = file_value {
                (Some(v), Source::File)
            } else if spec.var == table::DATA_DIR.var {
                // The directory in use, not "not set": where the data really is.
                (
                    default_data_dir().ok().map(|d| d.display().to_string()),
                    Source::Default,
                )
            } else {
                (
                    spec.default.map(|d| d.trim_matches('"').to_owned()),
                    Source::Default,
                )
            };
            let value = value.map(|v| {
                if spec.secret {
                    "[set]".to_owned()
                } else if spec.var == table::DATABASE_URL.var {
                    without_password(&v)
                } else {
                    v
                }
            });
            Effective {
                spec,
                value,
                source,
            }
        })
        .collect()
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

    /// Writing out the defaults the table shows changes nothing.
    #[test]
    fn the_defaults_shown_are_the_defaults_in_effect() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let mut text = String::new();
        for section in [table::Section::Goto, table::Section::Store] {
            text.push_str(&format!("[{}]\n", section.name()));
            for spec in table::ALL.iter().filter(|s| s.section == section) {
                if let (Some(key), Some(default)) = (spec.key, spec.default) {
                    text.push_str(&format!("{key} = {default}\n"));
                }
            }
        }
        std::fs::write(&file, &text).unwrap();
        let resolve = |vars: &[(&'static str, &str)]| {
            format!(
                "{:?}",
                Settings::resolve(&env(vars), &CredentialFlags::default()).unwrap()
            )
        };
        assert_eq!(
            resolve(&[
                ("G2W_DATA_DIR", "/tmp"),
                ("G2W_CONFIG", &file.to_string_lossy())
            ]),
            resolve(&[("G2W_DATA_DIR", "/tmp")]),
            "{text}"
        );
    }

    #[test]
    fn bad_files_and_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let cases = [
            (
                "[goto]\nclient_idd = \"typo\"\n",
                "unknown key \"client_idd\" in [goto] (did you mean \"client_id\"?)",
            ),
            (
                "[serve]\nkeepalive_timeout = 5\n",
                "did you mean \"keep_alive_timeout_secs\"?",
            ),
            ("[goto\n", "invalid config file"),
            ("[server]\nlisten = \"x\"\n", "unknown table [server]"),
            (
                "[goto]\nrate_limit = \"fast\"\n",
                "[goto] rate_limit must be a whole number, not string",
            ),
            (
                "[serve]\ntrusted_proxies = \"10.0.0.1\"\n",
                "[serve] trusted_proxies must be a list of strings",
            ),
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
