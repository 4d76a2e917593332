//! Every setting once: its file key, variable, flag, default and help. The config file
//! is checked against this table, the values are read through it, and `g2w config
//! example` and the table in `docs/configuration.md` are written from it.

use std::fmt::Write as _;

/// A table of the config file (or, for [`Section::General`], none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Settings of every command that have no file key.
    General,
    /// `[goto]`: the OAuth client and GoTo's servers.
    Goto,
    /// `[store]`: where everything is kept.
    Store,
    /// `[serve]`: the gateway.
    Serve,
}

impl Section {
    /// The sections a config file may have, in the order they are shown.
    pub const IN_FILE: [Self; 3] = [Self::Goto, Self::Store, Self::Serve];

    /// The table's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::General => "general",
            Self::Goto => "goto",
            Self::Store => "store",
            Self::Serve => "serve",
        }
    }
}

/// What a file value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A whole number.
    Number,
    /// An array of strings (a comma-separated list in the variable).
    List,
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Its table.
    pub section: Section,
    /// Its key in that table; `None` for a setting only the environment may give (a
    /// secret never belongs in a file).
    pub key: Option<&'static str>,
    /// Its `G2W_*` variable.
    pub var: &'static str,
    /// How the variable is written, when not as the file's value.
    pub var_form: Option<&'static str>,
    /// Its flag, if it has one.
    pub flag: Option<&'static str>,
    /// What a file value must be.
    pub kind: Kind,
    /// The value in effect when none is given, as TOML; `None`: nothing, or see `help`.
    pub default: Option<&'static str>,
    /// A value to show in the example file when there is no default.
    pub example: Option<&'static str>,
    /// What it does.
    pub help: &'static str,
    /// Still accepted so old files load, but no longer shown or used.
    pub retired: bool,
    /// Never shown: `g2w config show` says only whether it is set.
    pub secret: bool,
}

impl Spec {
    const fn new(section: Section, key: &'static str, var: &'static str, kind: Kind) -> Self {
        Self {
            section,
            key: Some(key),
            var,
            var_form: None,
            flag: None,
            kind,
            default: None,
            example: None,
            help: "",
            retired: false,
            secret: false,
        }
    }

    const fn secret(self) -> Self {
        Self {
            secret: true,
            ..self
        }
    }

    const fn env_only(section: Section, var: &'static str) -> Self {
        Self {
            key: None,
            ..Self::new(section, "", var, Kind::Text)
        }
    }

    const fn default(self, value: &'static str) -> Self {
        Self {
            default: Some(value),
            ..self
        }
    }

    const fn example(self, value: &'static str) -> Self {
        Self {
            example: Some(value),
            ..self
        }
    }

    const fn flag(self, flag: &'static str) -> Self {
        Self {
            flag: Some(flag),
            ..self
        }
    }

    const fn var_form(self, form: &'static str) -> Self {
        Self {
            var_form: Some(form),
            ..self
        }
    }

    const fn help(self, help: &'static str) -> Self {
        Self { help, ..self }
    }

    const fn retired(self) -> Self {
        Self {
            retired: true,
            ..self
        }
    }

    /// `[section] key`, or the variable for an environment-only setting.
    pub fn name(&self) -> String {
        match self.key {
            Some(key) => format!("[{}] {key}", self.section.name()),
            None => self.var.to_owned(),
        }
    }
}

use Kind::{List, Number, Text};
use Section::{General, Goto, Serve, Store};

pub const CONFIG: Spec = Spec::env_only(General, "G2W_CONFIG").flag("--config").help(
    "The config file. Else `config.toml` in the platform's config directory \
     (`~/.config/g2w/` on Linux), if it exists.",
);
pub const PROFILE: Spec = Spec::env_only(General, "G2W_PROFILE")
    .flag("--profile")
    .default("\"default\"")
    .help("Which stored GoTo login a command uses.");
pub const LOG: Spec = Spec::env_only(General, "G2W_LOG").help(
    "What is logged to stderr, as a tracing filter (`debug`, `g2w_gateway=debug,info`). \
     Default: warnings (`-v` for more, `-q` for errors only).",
);

pub const LOG_FORMAT: Spec = Spec::env_only(General, "G2W_LOG_FORMAT")
    .flag("--log-format")
    .default("\"text\"")
    .help(
        "How log lines are written: `text` for people (coloured only on a terminal), `json` \
         (one object a line) for log shippers.",
    );

pub const CLIENT_ID: Spec = Spec::new(Goto, "client_id", "G2W_CLIENT_ID", Text)
    .flag("--client-id")
    .example("\"your-client-id\"")
    .help(
        "The OAuth client from GoTo's developer portal. After `g2w auth login` it is kept \
         encrypted with the login and no longer needed here.",
    );
pub const CLIENT_SECRET: Spec = Spec::new(Goto, "client_secret", "G2W_CLIENT_SECRET", Text)
    .secret()
    .flag("--client-secret")
    .example("\"your-client-secret\"")
    .help("Its secret. Prefer the variable: flags show in `ps` and files get copied.");
pub const AUTH_URL: Spec = Spec::new(Goto, "auth_url", "G2W_AUTH_URL", Text)
    .default("\"https://authentication.logmeininc.com\"")
    .help("GoTo's OAuth server.");
pub const API_URL: Spec = Spec::new(Goto, "api_url", "G2W_API_URL", Text)
    .default("\"https://api.getgo.com\"")
    .help("GoTo's API server.");
pub const RATE_LIMIT: Spec = Spec::new(Goto, "rate_limit", "G2W_RATE_LIMIT", Number)
    .default("10")
    .help("Requests a second to GoTo for this account, shared by every command and gateway.");

pub const DATA_DIR: Spec = Spec::new(Store, "data_dir", "G2W_DATA_DIR", Text)
    .example("\"/var/lib/g2w\"")
    .help(
        "Where the database (`g2w.db`) and its key file live. Default: the platform's data \
         directory (`~/.local/share/g2w` on Linux).",
    );
pub const DATABASE_URL: Spec = Spec::new(Store, "database_url", "G2W_DATABASE_URL", Text)
    .example("\"postgres://g2w:password@db.internal/g2w\"")
    .help(
        "Keep everything in PostgreSQL instead of the SQLite file, so several gateways share \
         one store; they must then share `G2W_SECRET_KEY`. Prefer the variable: the URL holds \
         a password.",
    );
pub const SECRET_KEY: Spec = Spec::env_only(Store, "G2W_SECRET_KEY").secret().help(
    "The key tokens are encrypted with (base64 of 32 bytes), instead of the key file beside \
     the database.",
);

pub const LISTEN: Spec = Spec::new(Serve, "listen", "G2W_LISTEN", Text)
    .flag("--listen")
    .default("\"127.0.0.1:8080\"")
    .help(
        "The address the gateway listens on: HOST:PORT (`localhost:8080`, `0.0.0.0:8080`), \
         `:PORT` for every interface, or a bare PORT for this machine only.",
    );
pub const SYNC_WAIT: Spec = Spec::new(Serve, "sync_wait_ms", "G2W_SYNC_WAIT", Number)
    .var_form("a duration: `1s`, `500ms`")
    .flag("--sync-wait")
    .default("1000")
    .help(
        "The longest, in milliseconds, a registration request waits for GoTo before \
         answering 202 (queued). It answers at once when the registrations ahead of it could \
         not be delivered in that time, or while GoTo is failing.",
    );
pub const PROFILES: Spec = Spec::new(Serve, "profiles", "G2W_PROFILES", List)
    .flag("--profiles")
    .example("[\"default\", \"emea\"]")
    .help(
        "The profiles (stored GoTo logins) whose organizers one gateway serves; each \
         organizer's webinars are registered and delivered with its own login. The first is \
         the one the admin console connects. Default: the profile in use and every other \
         profile with a stored login.",
    );
pub const ALLOWED_ORIGINS: Spec = Spec::new(Serve, "allowed_origins", "G2W_ALLOWED_ORIGINS", List)
    .example("[\"https://www.example.com\"]")
    .help("Landing-page origins allowed to call the API from browsers (CORS). Default: none.");
pub const THANK_YOU_URL: Spec = Spec::new(Serve, "thank_you_url", "G2W_THANK_YOU_URL", Text)
    .example("\"https://www.example.com/thanks\"")
    .help(
        "Where browsers go after a plain HTML form post, with status, registrationId and \
         joinUrl added as query parameters. Default: a built-in confirmation page.",
    );
pub const INTAKE_RATE_PER_IP: Spec = Spec::new(
    Serve,
    "intake_rate_per_ip",
    "G2W_INTAKE_RATE_PER_IP",
    Number,
)
.default("5")
.help("Registrations a second from one visitor address (0: no limit).");
pub const INTAKE_BURST: Spec = Spec::new(Serve, "intake_burst", "G2W_INTAKE_BURST", Number)
    .default("20")
    .help("The burst of registrations one visitor address may send at once.");
pub const DELIVERY_CONCURRENCY: Spec = Spec::new(
    Serve,
    "delivery_concurrency",
    "G2W_DELIVERY_CONCURRENCY",
    Number,
)
.default("4")
.help("Deliveries to GoTo in flight at once (they share the account's rate limit).");
pub const MAX_ATTEMPTS: Spec = Spec::new(Serve, "max_attempts", "G2W_MAX_ATTEMPTS", Number)
    .help("No longer used: a registration is given up after `give_up_after_hours` of failing.")
    .retired();
pub const GIVE_UP_AFTER_HOURS: Spec = Spec::new(
    Serve,
    "give_up_after_hours",
    "G2W_GIVE_UP_AFTER_HOURS",
    Number,
)
.default("72")
.help(
    "Hours GoTo may keep failing a registration (5xx, timeouts, 429s) before it is \
             given up as dead (`g2w outbox retry` sends it again). At least 1.",
);
pub const LEASE_SECS: Spec = Spec::new(Serve, "lease_secs", "G2W_LEASE_SECS", Number)
    .default("10")
    .help(
        "Seconds an attempt's lease lasts (renewed while it runs): a killed gateway's work is \
         taken up again this soon.",
    );
pub const CACHE_TTL_SECS: Spec = Spec::new(Serve, "cache_ttl_secs", "G2W_CACHE_TTL_SECS", Number)
    .default("300")
    .help(
        "Seconds webinar details and forms stay fresh in the cache (stale ones are served for \
         up to a day while GoTo fails).",
    );
pub const LOOKUP_DEADLINE_MS: Spec = Spec::new(
    Serve,
    "lookup_deadline_ms",
    "G2W_LOOKUP_DEADLINE_MS",
    Number,
)
.default("1000")
.help(
    "The longest a visitor waits for GoTo to describe an uncached webinar (50 to \
             10000 ms); past it the registration is stored and GoTo checks it at delivery.",
);
pub const LOOKUP_RATE: Spec = Spec::new(Serve, "lookup_rate", "G2W_LOOKUP_RATE", Number)
    .default("2")
    .help("GoTo requests a second that form look-ups may use; deliveries get the rest.");
pub const TRUSTED_PROXIES: Spec = Spec::new(Serve, "trusted_proxies", "G2W_TRUSTED_PROXIES", List)
    .example("[\"10.0.0.0/8\", \"::1\"]")
    .help(
        "Reverse proxies (addresses or CIDR ranges) allowed to say who the visitor is \
         (X-Forwarded-For) and that they used HTTPS (X-Forwarded-Proto); from anyone else \
         those headers are ignored. Default: none.",
    );
pub const BRAND_TITLE: Spec = Spec::new(Serve, "brand_title", "G2W_BRAND_TITLE", Text)
    .example("\"Example Inc. webinars\"")
    .help("A name shown above the hosted form's subject.");
pub const LOGO_URL: Spec = Spec::new(Serve, "logo_url", "G2W_LOGO_URL", Text)
    .example("\"https://www.example.com/logo.png\"")
    .help("A logo shown above the hosted form.");
pub const ACCENT_COLOUR: Spec = Spec::new(Serve, "accent_colour", "G2W_ACCENT_COLOUR", Text)
    .default("\"#0b6bcb\"")
    .help("The hosted pages' accent colour (`#rgb` or `#rrggbb`).");
pub const FORWARD_URL: Spec = Spec::new(Serve, "forward_url", "G2W_FORWARD_URL", Text)
    .example("\"https://www.example.com/g2w-events\"")
    .help("Where GoTo's webhook events (`g2w webhooks setup`) are forwarded. Default: kept only.");
pub const FORWARD_SECRET: Spec = Spec::env_only(Serve, "G2W_FORWARD_SECRET")
    .secret()
    .help("The key forwarded events are signed with (HMAC-SHA256). Default: unsigned.");
pub const RECONCILE_EVERY_MINUTES: Spec = Spec::new(
    Serve,
    "reconcile_every_minutes",
    "G2W_RECONCILE_EVERY_MINUTES",
    Number,
)
.default("15")
.help("Minutes between comparisons of GoTo's lists with the events received (0: never).");
pub const KEY_AUDIT_DAYS: Spec = Spec::new(Serve, "key_audit_days", "G2W_KEY_AUDIT_DAYS", Number)
    .default("90")
    .help("Days the record of API keys' uses (`g2w keys audit`) is kept (0: for ever).");
pub const MAX_CONNECTIONS: Spec =
    Spec::new(Serve, "max_connections", "G2W_MAX_CONNECTIONS", Number)
        .default("4096")
        .help(
            "Connections open at once; more wait in the listen queue. At start the open-file \
             limit is raised to fit.",
        );
pub const HEADER_TIMEOUT_SECS: Spec = Spec::new(
    Serve,
    "header_timeout_secs",
    "G2W_HEADER_TIMEOUT_SECS",
    Number,
)
.default("10")
.help("Seconds a connection may take to send a request head before it is closed.");
pub const KEEP_ALIVE_TIMEOUT_SECS: Spec = Spec::new(
    Serve,
    "keep_alive_timeout_secs",
    "G2W_KEEP_ALIVE_TIMEOUT_SECS",
    Number,
)
.default("60")
.help("Seconds a connection may sit idle between requests before it is closed.");
pub const BODY_TIMEOUT_SECS: Spec =
    Spec::new(Serve, "body_timeout_secs", "G2W_BODY_TIMEOUT_SECS", Number)
        .default("10")
        .help("Seconds a request body may take to arrive (408 past it).");
pub const SIGNIN_CONCURRENCY: Spec = Spec::new(
    Serve,
    "signin_concurrency",
    "G2W_SIGNIN_CONCURRENCY",
    Number,
)
.default("2")
.help("Admin password checks at once (each holds 19 MiB); others wait.");
pub const SIGNIN_FAILURES_PER_MINUTE: Spec = Spec::new(
    Serve,
    "signin_failures_per_minute",
    "G2W_SIGNIN_FAILURES_PER_MINUTE",
    Number,
)
.default("30")
.help(
    "Failed admin sign-ins a minute from all addresses together (each address also gets five \
     in five minutes); past it, 429 before any password is checked.",
);
pub const ADMIN_PASSWORD: Spec = Spec::env_only(Serve, "G2W_ADMIN_PASSWORD").secret().help(
    "The admin console's password. Default: one made up at the first start, kept hashed and \
     handed over in `admin-password` in the data directory (readable by its owner only).",
);

/// Every setting, in the order they are shown.
pub const ALL: &[Spec] = &[
    CONFIG,
    PROFILE,
    LOG,
    LOG_FORMAT,
    CLIENT_ID,
    CLIENT_SECRET,
    AUTH_URL,
    API_URL,
    RATE_LIMIT,
    DATA_DIR,
    DATABASE_URL,
    SECRET_KEY,
    LISTEN,
    SYNC_WAIT,
    PROFILES,
    ALLOWED_ORIGINS,
    THANK_YOU_URL,
    INTAKE_RATE_PER_IP,
    INTAKE_BURST,
    DELIVERY_CONCURRENCY,
    MAX_ATTEMPTS,
    GIVE_UP_AFTER_HOURS,
    LEASE_SECS,
    CACHE_TTL_SECS,
    LOOKUP_DEADLINE_MS,
    LOOKUP_RATE,
    TRUSTED_PROXIES,
    BRAND_TITLE,
    LOGO_URL,
    ACCENT_COLOUR,
    FORWARD_URL,
    FORWARD_SECRET,
    RECONCILE_EVERY_MINUTES,
    KEY_AUDIT_DAYS,
    MAX_CONNECTIONS,
    HEADER_TIMEOUT_SECS,
    KEEP_ALIVE_TIMEOUT_SECS,
    BODY_TIMEOUT_SECS,
    SIGNIN_CONCURRENCY,
    SIGNIN_FAILURES_PER_MINUTE,
    ADMIN_PASSWORD,
];

/// The setting `[section] key`.
pub fn find(section: Section, key: &str) -> Option<&'static Spec> {
    ALL.iter()
        .find(|s| s.section == section && s.key == Some(key))
}

/// Words wrapped to `width` columns, each line starting with `prefix`.
fn wrapped(text: &str, prefix: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::from(prefix);
    for word in text.split_whitespace() {
        if line.len() > prefix.len() && line.len() + 1 + word.len() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(prefix);
        }
        if line.len() > prefix.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// Where a value may also come from, for the example file's margin.
fn sources(spec: &Spec) -> String {
    let mut from = match spec.var_form {
        Some(form) => format!("{} ({form})", spec.var),
        None => spec.var.to_owned(),
    };
    if let Some(flag) = spec.flag {
        from.push_str(", ");
        from.push_str(flag);
    }
    from
}

/// `g2w config example`: a commented config file with every setting.
pub fn example() -> String {
    let mut out = wrapped(
        "g2w configuration. Put it in ~/.config/g2w/config.toml, or point G2W_CONFIG or \
         --config at it. Every value can also be set by its G2W_* variable (which wins over \
         this file) or its flag (which wins over both). Unknown keys are errors. Uncomment a \
         line to change its value.",
        "# ",
        88,
    );
    for section in Section::IN_FILE {
        let _ = write!(out, "\n[{}]\n", section.name());
        for spec in ALL.iter().filter(|s| s.section == section && !s.retired) {
            out.push_str(&wrapped(spec.help, "# ", 88));
            match spec.key {
                Some(key) => {
                    let value = spec.default.or(spec.example).unwrap_or("\"\"");
                    let _ = writeln!(out, "# {key} = {value}    # {}", sources(spec));
                }
                None => {
                    let _ = writeln!(out, "# (environment only: {})", spec.var);
                }
            }
        }
    }
    out.push_str(
        "\n# Form builders that post sign-ups (docs/sources.md), one table each:\n\
         #[sources.spring-launch]\n\
         #kind = \"typeform\"                 # typeform, webflow, tally, unbounce, generic\n\
         #webinar = \"1234567890123456789\"   # or series = \"KEY\"\n\
         #secret_env = \"TYPEFORM_SECRET\"    # the variable holding its secret\n\
         #map = { email = \"Your work e-mail address\" }\n",
    );
    out
}

/// A Markdown table of one section's settings, for the docs.
#[cfg(test)]
pub fn markdown(section: Section) -> String {
    let mut out = String::from(
        "| Setting | Variable | Flag | Default | What it does |\n| --- | --- | --- | --- | --- |\n",
    );
    for spec in ALL.iter().filter(|s| s.section == section && !s.retired) {
        let code = |s: &str| format!("`{s}`");
        let var = match spec.var_form {
            Some(form) => format!("`{}` ({form})", spec.var),
            None => code(spec.var),
        };
        let _ = writeln!(
            out,
            "| {} | {var} | {} | {} | {} |",
            spec.key
                .map_or_else(|| "(not in the file)".to_owned(), code),
            spec.flag.map(code).unwrap_or_default(),
            spec.default.map(code).unwrap_or_default(),
            spec.help,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn every_name_is_spelled_once() {
        let mut vars = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for spec in ALL {
            assert!(spec.var.starts_with("G2W_"), "{spec:?}");
            assert!(vars.insert(spec.var), "{} twice", spec.var);
            if let Some(key) = spec.key {
                assert!(keys.insert((spec.section, key)), "{} twice", spec.name());
                assert_ne!(spec.section, Section::General, "{key} has no table");
            }
            assert!(!spec.help.is_empty(), "{} has no help", spec.var);
        }
    }

    #[test]
    fn every_flag_in_the_table_is_a_flag_of_g2w() {
        fn longs(command: &clap::Command, into: &mut BTreeSet<String>) {
            for arg in command.get_arguments() {
                if let Some(long) = arg.get_long() {
                    into.insert(format!("--{long}"));
                }
            }
            for sub in command.get_subcommands() {
                longs(sub, into);
            }
        }
        let mut flags = BTreeSet::new();
        longs(&crate::Cli::command(), &mut flags);
        for flag in ALL.iter().filter_map(|s| s.flag) {
            assert!(flags.contains(flag), "{flag} is not a flag of g2w");
        }
    }

    /// The example, uncommented, is a config file g2w accepts, with every setting.
    #[test]
    fn the_example_is_a_valid_file_with_every_setting() {
        let example = example();
        let uncommented: String = example
            .lines()
            .filter_map(|l| {
                let setting = l.strip_prefix("# ").filter(|l| {
                    l.split_once(" = ")
                        .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                });
                setting.or(Some(l).filter(|l| l.starts_with('[')))
            })
            .map(|l| format!("{}\n", l.split("    #").next().unwrap_or(l).trim_end()))
            .collect();
        let parsed = crate::settings::ConfigFile::parse(&uncommented);
        assert!(parsed.is_ok(), "{uncommented}\n{parsed:?}");
        for spec in ALL
            .iter()
            .filter(|s| !s.retired && s.section != Section::General)
        {
            let shown = match spec.key {
                Some(key) => format!("# {key} = "),
                None => spec.var.to_owned(),
            };
            assert!(example.contains(&shown), "{} is missing", spec.name());
        }
        assert!(example.lines().all(|l| l.len() <= 100), "{example}");
    }

    /// `docs/configuration.md` holds the table's Markdown. Run the tests with
    /// `G2W_UPDATE_DOCS=1` to rewrite it after changing a setting.
    #[test]
    fn the_docs_table_is_the_table() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let mut expected = doc.clone();
        for section in [
            Section::General,
            Section::Goto,
            Section::Store,
            Section::Serve,
        ] {
            let begin = format!("<!-- settings: {} -->\n", section.name());
            let end = "<!-- end of settings -->";
            let Some(start) = expected.find(&begin).map(|i| i + begin.len()) else {
                panic!("{} has no {begin:?}", path.display());
            };
            let stop = start + expected[start..].find(end).unwrap();
            expected.replace_range(start..stop, &markdown(section));
        }
        if expected != doc && std::env::var_os("G2W_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &expected).unwrap();
            return;
        }
        assert!(
            expected == doc,
            "docs/configuration.md is not the settings table: run `G2W_UPDATE_DOCS=1 cargo test -p g2w the_docs_table`"
        );
    }
}
