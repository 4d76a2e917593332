//! The gateway's settings: defaults → `[serve]` → `G2W_*` → flags, read through the
//! [`table`](super::table).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use g2w_gateway::GatewayConfig;

use super::table::{self as t, Spec};
use super::{ConfigFile, Env, Layers};

/// The flags of `g2w serve` that are settings.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeFlags {
    /// Address to listen on: HOST:PORT (`localhost:8080`, `0.0.0.0:8080`), `:PORT` for
    /// every interface, or a bare PORT on this machine only (else G2W_LISTEN, the config
    /// file, 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// The longest a registration request waits for delivery before answering 202
    /// (`1s`, `500ms`, `0`); it answers at once when delivery cannot finish in time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub sync_wait: Option<Duration>,
    /// The profiles whose organizers this gateway serves, comma-separated (else
    /// G2W_PROFILES, the config file, or the profile in use and every stored login).
    #[arg(long, value_name = "PROFILE,…", value_delimiter = ',')]
    pub profiles: Option<Vec<String>>,
}

/// The profiles `g2w serve` (and `g2w webhooks setup`) is told to serve (flag, variable,
/// config file), checked;
/// `None` when nothing names them.
///
/// # Errors
/// A name that is not a profile's, or one named twice.
pub fn profiles(
    env: &dyn Env,
    file: &ConfigFile,
    flag: Option<&[String]>,
) -> anyhow::Result<Option<Vec<String>>> {
    let named = match flag {
        Some(p) => Some(p.to_vec()),
        None => Layers::new(env, file).list(&t::PROFILES),
    };
    let Some(named) = named else {
        return Ok(None);
    };
    let mut seen: Vec<String> = Vec::new();
    for name in named {
        let name = super::parse_profile(name.trim())
            .map_err(|e| anyhow::anyhow!("{}: profile {name:?}: {e}", t::PROFILES.var))?;
        if seen.contains(&name) {
            bail!("{}: profile {name:?} is named twice", t::PROFILES.var);
        }
        seen.push(name);
    }
    if seen.is_empty() {
        bail!("{}: name at least one profile", t::PROFILES.var);
    }
    Ok(Some(seen))
}

/// Parses `2s`, `1500ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000)
    } else {
        (t, 1000)
    };
    let n: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 2s or 500ms"))?;
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= 60_000)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is longer than 60s"))
}

/// A listen address as people write it: `HOST:PORT` (a name such as `localhost` is
/// looked up, its IPv4 address preferred), `[::1]:PORT`, `:PORT` (every interface), or a
/// bare `PORT` (this machine only, like the default).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    let t = text.trim();
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{text:?}: {p:?} is not a port (1 to 65535)"))
    };
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port(t)?)));
    }
    if let Some(p) = t.strip_prefix(':') {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port(p)?)));
    }
    let Some((host, p)) = t.rsplit_once(':') else {
        return Err(format!(
            "{text:?} is not an address to listen on: use HOST:PORT (localhost:8080), :PORT or PORT"
        ));
    };
    let port = port(p)?;
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{text:?}: cannot look up {host:?}: {e}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| found.first())
        .copied()
        .ok_or_else(|| format!("{text:?}: {host:?} has no address"))
}

/// The listen address: the flag, else the setting, else the default.
///
/// # Errors
/// An address that is not `HOST:PORT`.
pub fn listen(env: &dyn Env, file: &ConfigFile, flags: &ServeFlags) -> anyhow::Result<SocketAddr> {
    if let Some(listen) = flags.listen {
        return Ok(listen);
    }
    let text = Layers::new(env, file)
        .text(&t::LISTEN)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    parse_listen(&text).map_err(|e| {
        anyhow::anyhow!(
            "listen address ({} or {}): {e}",
            t::LISTEN.var,
            t::LISTEN.name()
        )
    })
}

/// A URL setting, checked.
fn url(layers: &Layers<'_>, spec: &Spec, schemes: &[&str]) -> anyhow::Result<Option<String>> {
    let Some(text) = layers.text(spec) else {
        return Ok(None);
    };
    let parsed = g2w_goto::Url::parse(&text)
        .with_context(|| format!("{} ({}): {text:?} is not a URL", spec.name(), spec.var))?;
    if !schemes.is_empty() && !schemes.contains(&parsed.scheme()) {
        bail!("{} ({}): {text:?} must be http(s)", spec.name(), spec.var);
    }
    Ok(Some(text))
}

/// A number of seconds, at least one.
fn seconds(layers: &Layers<'_>, spec: &Spec, default: Duration) -> anyhow::Result<Duration> {
    match layers.number::<u64>(spec)? {
        Some(0) => bail!(
            "{} ({}): 0 is not a timeout; give a number of seconds",
            spec.name(),
            spec.var
        ),
        Some(s) => Ok(Duration::from_secs(s)),
        None => Ok(default),
    }
}

/// The gateway's configuration for `profile`.
///
/// # Errors
/// A malformed value, named.
pub fn gateway_config(
    env: &dyn Env,
    file: &ConfigFile,
    flags: &ServeFlags,
    profile: &str,
) -> anyhow::Result<GatewayConfig> {
    let d = GatewayConfig::default();
    let layers = Layers::new(env, file);
    let sync_wait = match (flags.sync_wait, layers.var(&t::SYNC_WAIT)) {
        (Some(w), _) => w,
        (None, Some(v)) => {
            parse_duration(&v).map_err(|e| anyhow::anyhow!("{}: {e}", t::SYNC_WAIT.var))?
        }
        (None, None) => layers
            .number::<u64>(&t::SYNC_WAIT)?
            .map_or(d.sync_wait, Duration::from_millis),
    };
    let allowed_origins = layers.list(&t::ALLOWED_ORIGINS).unwrap_or_default();
    for origin in &allowed_origins {
        if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
            bail!(
                "allowed origin {origin:?} ({}) must look like https://www.example.com",
                t::ALLOWED_ORIGINS.var
            );
        }
    }
    if layers.number::<u32>(&t::MAX_ATTEMPTS)?.is_some() {
        tracing::warn!("{}", t::MAX_ATTEMPTS.help);
    }
    let trusted_proxies = layers
        .list(&t::TRUSTED_PROXIES)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            p.parse::<g2w_gateway::ProxyRange>()
                .map_err(|e| anyhow::anyhow!("trusted proxies ({}): {e}", t::TRUSTED_PROXIES.var))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let forward_url = url(&layers, &t::FORWARD_URL, &["http", "https"])?;
    // A secret belongs in the environment, never in a config file.
    let forward_secret = layers
        .var(&t::FORWARD_SECRET)
        .map(g2w_goto::SecretString::from);
    if forward_url.is_some() && forward_secret.is_none() {
        tracing::warn!(
            "{} is not set: forwarded events are not signed",
            t::FORWARD_SECRET.var
        );
    }
    let reconcile_every = match layers.number::<u64>(&t::RECONCILE_EVERY_MINUTES)? {
        Some(0) => None,
        Some(m) => Some(Duration::from_secs(m.saturating_mul(60))),
        None => d.reconcile_every,
    };
    let key_audit_kept = match layers.number::<u64>(&t::KEY_AUDIT_DAYS)? {
        Some(0) => None,
        Some(days) => Some(Duration::from_secs(days.saturating_mul(86_400))),
        None => d.key_audit_kept,
    };
    let accent = layers
        .text(&t::ACCENT_COLOUR)
        .unwrap_or(d.brand.accent.clone());
    if !g2w_gateway::Branding::valid_accent(&accent) {
        bail!(
            "accent colour {accent:?} ({}) must be #rgb or #rrggbb",
            t::ACCENT_COLOUR.var
        );
    }
    Ok(GatewayConfig {
        profile: profile.to_owned(),
        sync_wait,
        allowed_origins,
        thank_you_url: url(&layers, &t::THANK_YOU_URL, &[])?,
        intake_rate_per_ip: layers
            .number(&t::INTAKE_RATE_PER_IP)?
            .unwrap_or(d.intake_rate_per_ip),
        intake_burst: layers.number(&t::INTAKE_BURST)?.unwrap_or(d.intake_burst),
        delivery_concurrency: layers
            .number(&t::DELIVERY_CONCURRENCY)?
            .unwrap_or(d.delivery_concurrency)
            .max(1),
        give_up_after: layers
            .number::<u64>(&t::GIVE_UP_AFTER_HOURS)?
            .map_or(d.give_up_after, |h| {
                Duration::from_secs(h.clamp(1, 24 * 365) * 3600)
            }),
        cache_ttl: layers
            .number::<u64>(&t::CACHE_TTL_SECS)?
            .map_or(d.cache_ttl, Duration::from_secs),
        lookup_deadline: layers
            .number::<u64>(&t::LOOKUP_DEADLINE_MS)?
            .map_or(d.lookup_deadline, |ms| {
                Duration::from_millis(ms.clamp(50, 10_000))
            }),
        trusted_proxies,
        lookup_rate: layers.number(&t::LOOKUP_RATE)?.unwrap_or(d.lookup_rate),
        brand: g2w_gateway::Branding {
            title: layers.text(&t::BRAND_TITLE),
            logo_url: url(&layers, &t::LOGO_URL, &[])?,
            accent,
        },
        lease: layers
            .number::<u64>(&t::LEASE_SECS)?
            .map_or(d.lease, |s| Duration::from_secs(s.max(1))),
        forward_url,
        forward_secret,
        reconcile_every,
        key_audit_kept,
        max_connections: layers
            .number(&t::MAX_CONNECTIONS)?
            .unwrap_or(d.max_connections)
            .max(1),
        header_timeout: seconds(&layers, &t::HEADER_TIMEOUT_SECS, d.header_timeout)?,
        keep_alive_timeout: seconds(&layers, &t::KEEP_ALIVE_TIMEOUT_SECS, d.keep_alive_timeout)?,
        body_timeout: seconds(&layers, &t::BODY_TIMEOUT_SECS, d.body_timeout)?,
        signin_concurrency: layers
            .number(&t::SIGNIN_CONCURRENCY)?
            .unwrap_or(d.signin_concurrency)
            .max(1),
        signin_failures_per_minute: layers
            .number(&t::SIGNIN_FAILURES_PER_MINUTE)?
            .unwrap_or(d.signin_failures_per_minute)
            .max(1),
        ..d
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::table::{ALL, Section};

    struct Vars(Vec<(&'static str, &'static str)>);

    impl Env for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn config(
        vars: Vec<(&'static str, &'static str)>,
        file: &str,
    ) -> anyhow::Result<GatewayConfig> {
        let file = ConfigFile::parse(file).unwrap();
        gateway_config(&Vars(vars), &file, &ServeFlags::default(), "default")
    }

    #[test]
    fn the_bad_day_settings_are_checked_and_named() {
        for (var, value) in [
            ("G2W_GIVE_UP_AFTER_HOURS", "soon"),
            ("G2W_GIVE_UP_AFTER_HOURS", "-3"),
            ("G2W_CACHE_TTL_SECS", "5m"),
            ("G2W_LOOKUP_DEADLINE_MS", "1e3"),
            ("G2W_LOOKUP_RATE", "99999999999"),
            ("G2W_TRUSTED_PROXIES", "10.0.0.1, proxy.internal"),
            ("G2W_TRUSTED_PROXIES", "10.0.0.0/40"),
            ("G2W_FORWARD_URL", "not a url"),
            ("G2W_FORWARD_URL", "ftp://example.com/hooks"),
            ("G2W_RECONCILE_EVERY_MINUTES", "hourly"),
            ("G2W_HEADER_TIMEOUT_SECS", "0"),
            ("G2W_ACCENT_COLOUR", "red"),
            ("G2W_ALLOWED_ORIGINS", "www.example.com"),
        ] {
            let err = config(vec![(var, value)], "").unwrap_err();
            assert!(format!("{err:#}").contains(var), "{var}={value}: {err:#}");
        }
        let err = config(vec![], "[serve]\nlookup_rate = 99999999999\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("[serve] lookup_rate"),
            "a file value is named by its key: {err:#}"
        );
        let config = config(
            vec![
                ("G2W_GIVE_UP_AFTER_HOURS", "0"),
                ("G2W_LOOKUP_DEADLINE_MS", "3600000"),
                ("G2W_CACHE_TTL_SECS", "30"),
                ("G2W_TRUSTED_PROXIES", " 10.0.0.0/8 , ::1 "),
            ],
            "[serve]\ncache_ttl_secs = 99\nlease_secs = 4\n",
        )
        .unwrap();
        assert_eq!(
            config.give_up_after,
            Duration::from_secs(3600),
            "at least an hour"
        );
        assert_eq!(
            config.lookup_deadline,
            Duration::from_secs(10),
            "a visitor never waits longer than 10 s"
        );
        assert_eq!(
            config.cache_ttl,
            Duration::from_secs(30),
            "the variable wins"
        );
        assert_eq!(config.lease, Duration::from_secs(4), "the file counts");
        assert_eq!(config.trusted_proxies.len(), 2);
    }

    /// Every default the table shows (and so the example file and the docs) is the one
    /// in effect: writing it out changes nothing.
    #[test]
    fn the_defaults_shown_are_the_defaults_in_effect() {
        let implicit = format!("{:?}", config(vec![], "").unwrap());
        let mut explicit = String::from("[serve]\n");
        for spec in ALL.iter().filter(|s| s.section == Section::Serve) {
            if let (Some(key), Some(default)) = (spec.key, spec.default) {
                explicit.push_str(&format!("{key} = {default}\n"));
            }
        }
        assert_eq!(
            format!("{:?}", config(vec![], &explicit).unwrap()),
            implicit,
            "{explicit}"
        );
        let listen = listen(
            &Vars(vec![]),
            &ConfigFile::default(),
            &ServeFlags::default(),
        )
        .unwrap();
        assert_eq!(Some(format!("\"{listen}\"").as_str()), t::LISTEN.default);
    }

    #[test]
    fn listen_addresses_as_people_write_them() {
        let ok = |t: &str| parse_listen(t).unwrap().to_string();
        assert_eq!(ok("localhost:8080"), "127.0.0.1:8080");
        assert_eq!(ok("8080"), "127.0.0.1:8080");
        assert_eq!(ok(":8080"), "0.0.0.0:8080");
        assert_eq!(ok("0.0.0.0:9000"), "0.0.0.0:9000");
        assert_eq!(ok("[::1]:9000"), "[::1]:9000");
        for bad in [
            "",
            "localhost",
            "localhost:http",
            "host.invalid:80",
            "99999",
            ":0x1",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
        let err = listen(
            &Vars(vec![("G2W_LISTEN", "localhost:nope")]),
            &ConfigFile::default(),
            &ServeFlags::default(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("G2W_LISTEN"), "{err:#}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "fast", "-1s", "2h", "61s", "99999999999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
