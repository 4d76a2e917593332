//! `g2w serve`: the registration gateway. `--demo` runs it on the built-in emulator.

use g2w_store::Setting;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use g2w_gateway::{AdminPassword, Gateway, GatewayConfig};
use g2w_goto::{GotoClient, RetryPolicy, SecretString};

use crate::context::Context;
use crate::settings::{Env, ProcessEnv, ServeFile, Settings};

/// Options of `g2w serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (else G2W_LISTEN, the config file, 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The longest a registration request waits for delivery before answering 202
    /// (`1s`, `500ms`, `0`); it answers at once when delivery cannot finish in time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    sync_wait: Option<Duration>,
    /// Run on the built-in GoTo emulator with demo webinars, logged in automatically.
    #[arg(long)]
    demo: bool,
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

fn var_parse<T: std::str::FromStr>(env: &dyn Env, name: &str) -> anyhow::Result<Option<T>> {
    env.var(name)
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| anyhow::anyhow!("{name}: {v:?} is not valid"))
        })
        .transpose()
}

/// A number of seconds from `name` or the file, at least one.
fn seconds(
    env: &dyn Env,
    name: &str,
    file: Option<u64>,
    default: Duration,
) -> anyhow::Result<Duration> {
    match var_parse::<u64>(env, name)?.or(file) {
        Some(0) => bail!("{name}: 0 is not a timeout; give a number of seconds"),
        Some(s) => Ok(Duration::from_secs(s)),
        None => Ok(default),
    }
}

/// The gateway settings: defaults → `[serve]` → `G2W_*` → flags.
///
/// # Errors
/// A malformed value, named.
pub fn gateway_config(
    env: &dyn Env,
    file: &ServeFile,
    args: &Args,
    profile: &str,
) -> anyhow::Result<(SocketAddr, GatewayConfig)> {
    let d = GatewayConfig::default();
    let listen_text = env
        .var("G2W_LISTEN")
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = match args.listen {
        Some(l) => l,
        None => listen_text
            .parse()
            .with_context(|| format!("listen address {listen_text:?} is not HOST:PORT"))?,
    };
    let sync_wait = match (args.sync_wait, env.var("G2W_SYNC_WAIT")) {
        (Some(w), _) => w,
        (None, Some(v)) => parse_duration(&v).map_err(|e| anyhow::anyhow!("G2W_SYNC_WAIT: {e}"))?,
        (None, None) => file.sync_wait_ms.map_or(d.sync_wait, Duration::from_millis),
    };
    let allowed_origins = match env.var("G2W_ALLOWED_ORIGINS") {
        Some(v) => v
            .split(',')
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect(),
        None => file.allowed_origins.clone().unwrap_or_default(),
    };
    for origin in &allowed_origins {
        if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
            bail!("allowed origin {origin:?} must look like https://www.example.com");
        }
    }
    if file.max_attempts.is_some() || env.var("G2W_MAX_ATTEMPTS").is_some() {
        tracing::warn!(
            "max_attempts is no longer used: a registration is given up after give_up_after_hours of failing"
        );
    }
    let trusted_proxies = match env.var("G2W_TRUSTED_PROXIES") {
        Some(v) => v
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        None => file.trusted_proxies.clone().unwrap_or_default(),
    }
    .iter()
    .map(|p| {
        p.parse::<g2w_gateway::ProxyRange>()
            .map_err(|e| anyhow::anyhow!("trusted proxies (G2W_TRUSTED_PROXIES): {e}"))
    })
    .collect::<anyhow::Result<Vec<_>>>()?;
    let thank_you_url = env
        .var("G2W_THANK_YOU_URL")
        .or_else(|| file.thank_you_url.clone());
    if let Some(url) = &thank_you_url {
        g2w_goto::Url::parse(url).with_context(|| format!("thank-you URL {url:?} is not a URL"))?;
    }
    let logo_url = env.var("G2W_LOGO_URL").or_else(|| file.logo_url.clone());
    if let Some(url) = &logo_url {
        g2w_goto::Url::parse(url).with_context(|| format!("logo URL {url:?} is not a URL"))?;
    }
    let forward_url = crate::settings::forward_url(env, file);
    if let Some(url) = &forward_url {
        let parsed = g2w_goto::Url::parse(url)
            .with_context(|| format!("forward URL (G2W_FORWARD_URL) {url:?} is not a URL"))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            bail!("forward URL (G2W_FORWARD_URL) {url:?} must be http(s)");
        }
    }
    // A secret belongs in the environment, never in a config file.
    let forward_secret = env
        .var("G2W_FORWARD_SECRET")
        .filter(|s| !s.is_empty())
        .map(g2w_goto::SecretString::from);
    if forward_url.is_some() && forward_secret.is_none() {
        tracing::warn!("G2W_FORWARD_SECRET is not set: forwarded events are not signed");
    }
    let reconcile_every = match var_parse::<u64>(env, "G2W_RECONCILE_EVERY_MINUTES")?
        .or(file.reconcile_every_minutes)
    {
        Some(0) => None,
        Some(m) => Some(Duration::from_secs(m * 60)),
        None => d.reconcile_every,
    };
    let accent = env
        .var("G2W_ACCENT_COLOUR")
        .or_else(|| file.accent_colour.clone())
        .unwrap_or(d.brand.accent.clone());
    if !g2w_gateway::Branding::valid_accent(&accent) {
        bail!("accent colour {accent:?} must be #rgb or #rrggbb");
    }
    Ok((
        listen,
        GatewayConfig {
            profile: profile.to_owned(),
            sync_wait,
            allowed_origins,
            thank_you_url,
            intake_rate_per_ip: var_parse(env, "G2W_INTAKE_RATE_PER_IP")?
                .or(file.intake_rate_per_ip)
                .unwrap_or(d.intake_rate_per_ip),
            intake_burst: var_parse(env, "G2W_INTAKE_BURST")?
                .or(file.intake_burst)
                .unwrap_or(d.intake_burst),
            delivery_concurrency: var_parse(env, "G2W_DELIVERY_CONCURRENCY")?
                .or(file.delivery_concurrency)
                .unwrap_or(d.delivery_concurrency)
                .max(1),
            give_up_after: var_parse::<u64>(env, "G2W_GIVE_UP_AFTER_HOURS")?
                .or(file.give_up_after_hours)
                .map_or(d.give_up_after, |h| Duration::from_secs(h.max(1) * 3600)),
            cache_ttl: var_parse::<u64>(env, "G2W_CACHE_TTL_SECS")?
                .or(file.cache_ttl_secs)
                .map_or(d.cache_ttl, Duration::from_secs),
            lookup_deadline: var_parse::<u64>(env, "G2W_LOOKUP_DEADLINE_MS")?
                .or(file.lookup_deadline_ms)
                .map_or(d.lookup_deadline, |ms| {
                    Duration::from_millis(ms.clamp(50, 10_000))
                }),
            trusted_proxies,
            lookup_rate: var_parse(env, "G2W_LOOKUP_RATE")?
                .or(file.lookup_rate)
                .unwrap_or(d.lookup_rate),
            brand: g2w_gateway::Branding {
                title: env
                    .var("G2W_BRAND_TITLE")
                    .or_else(|| file.brand_title.clone()),
                logo_url,
                accent,
            },
            lease: var_parse::<u64>(env, "G2W_LEASE_SECS")?
                .or(file.lease_secs)
                .map_or(d.lease, |s| Duration::from_secs(s.max(1))),
            forward_url,
            forward_secret,
            reconcile_every,
            max_connections: var_parse(env, "G2W_MAX_CONNECTIONS")?
                .or(file.max_connections)
                .unwrap_or(d.max_connections)
                .max(1),
            header_timeout: seconds(
                env,
                "G2W_HEADER_TIMEOUT_SECS",
                file.header_timeout_secs,
                d.header_timeout,
            )?,
            keep_alive_timeout: seconds(
                env,
                "G2W_KEEP_ALIVE_TIMEOUT_SECS",
                file.keep_alive_timeout_secs,
                d.keep_alive_timeout,
            )?,
            body_timeout: seconds(
                env,
                "G2W_BODY_TIMEOUT_SECS",
                file.body_timeout_secs,
                d.body_timeout,
            )?,
            signin_concurrency: var_parse(env, "G2W_SIGNIN_CONCURRENCY")?
                .or(file.signin_concurrency)
                .unwrap_or(d.signin_concurrency)
                .max(1),
            signin_failures_per_minute: var_parse(env, "G2W_SIGNIN_FAILURES_PER_MINUTE")?
                .or(file.signin_failures_per_minute)
                .unwrap_or(d.signin_failures_per_minute)
                .max(1),
            ..d
        },
    ))
}

/// Runs `g2w serve`.
pub async fn run(settings: Settings, profile: &str, args: Args) -> anyhow::Result<()> {
    if args.demo {
        return demo(settings, profile, args).await;
    }
    let (listen, config) = gateway_config(&ProcessEnv, &settings.serve, &args, profile)?;
    let ctx = Context::open(settings, profile).await?;
    let config = with_admin_password(&ctx, config).await?;
    match ctx.stored().await? {
        None => eprintln!(
            "Not connected to GoTo yet: registrations are accepted and queued until you connect \
             (`g2w auth login`, or Connect GoTo in the admin console at /admin)."
        ),
        Some(r) if r.reauthorization_required.is_some() => tracing::warn!(
            "GoTo login needs renewing; accepting registrations, delivery paused until `g2w auth login`"
        ),
        Some(_) => {}
    }
    serve(&ctx, listen, config, None, false).await
}

/// The admin console's password: `G2W_ADMIN_PASSWORD`, else the stored hash, else a new
/// random one, stored hashed and printed this once.
async fn with_admin_password(
    ctx: &Context,
    mut config: GatewayConfig,
) -> anyhow::Result<GatewayConfig> {
    config.admin_password = Some(match ProcessEnv.var("G2W_ADMIN_PASSWORD") {
        Some(p) => AdminPassword::Plain(SecretString::from(p)),
        None => match ctx.store.setting(Setting::AdminPassword).await? {
            Some(hash) => AdminPassword::Hashed(hash),
            None => {
                let password = AdminPassword::generate();
                let hash = AdminPassword::hash(&password);
                ctx.store.set_setting(Setting::AdminPassword, &hash).await?;
                eprintln!(
                    "Admin console password (shown once, stored hashed; set G2W_ADMIN_PASSWORD to choose one): {password}"
                );
                AdminPassword::Hashed(hash)
            }
        },
    });
    Ok(config)
}

/// Serves until a signal; with `webhooks_to_self`, once listening, points GoTo's
/// webhooks at this gateway (the demo, where GoTo is the emulator beside it).
async fn serve(
    ctx: &Context,
    listen: SocketAddr,
    config: GatewayConfig,
    banner: Option<String>,
    webhooks_to_self: bool,
) -> anyhow::Result<()> {
    // Without a stored or configured OAuth client the manager starts empty: delivery
    // waits (paused) until the admin console or `g2w auth login` stores a login.
    let tokens = ctx.token_manager_or_empty().await?;
    // The outbox retries durably; the client itself makes one attempt per delivery.
    let client = GotoClient::new(
        ctx.http.clone(),
        ctx.settings.api_url.clone(),
        tokens,
        ctx.rate_limiter(),
        RetryPolicy::NEVER,
    );
    let mut config = config;
    config.max_connections = crate::limits::connections_within_open_files(config.max_connections);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let gateway = Gateway::new(config, ctx.store.clone(), client, g2w_goto::system_clock());
    println!("g2w gateway listening on http://{addr}");
    if let Some(banner) = banner {
        println!("{}", banner.replace("{GATEWAY}", &format!("http://{addr}")));
    }
    let serving = gateway.serve(listener, crate::signal::shutdown());
    let served = if webhooks_to_self {
        let setup = async {
            let set_up = async {
                let client = ctx.client(ctx.token_manager().await?);
                anyhow::Ok(
                    g2w_gateway::setup(&client, &ctx.store, &format!("http://{addr}")).await?,
                )
            };
            match set_up.await {
                Ok(said) => eprintln!("{said}"),
                Err(e) => eprintln!("GoTo's webhooks could not be set up: {e:#}"),
            }
        };
        tokio::join!(serving, setup).0
    } else {
        serving.await
    };
    served.context("the gateway stopped with an error")?;
    eprintln!("g2w gateway stopped.");
    Ok(())
}

/// The demo: an in-process emulator with demo webinars, a throw-away data directory,
/// an automatic login, and the gateway in front of it.
async fn demo(mut settings: Settings, profile: &str, args: Args) -> anyhow::Result<()> {
    let emulator = g2w_emulator::spawn(g2w_emulator::EmulatorConfig {
        auto_approve: true,
        seed_demo: true,
        ..Default::default()
    })
    .await
    .context("cannot start the GoTo emulator")?;
    let data = tempfile::Builder::new()
        .prefix("g2w-demo-")
        .tempdir()
        .context("cannot create a demo data directory")?;
    let base = g2w_goto::Url::parse(emulator.base_url())?;
    settings.auth_url = base.clone();
    settings.api_url = base;
    settings.data_dir = data.path().to_owned();
    // The demo is throw-away: never the database of a real set-up.
    settings.database_url = None;
    settings.secret_key = None;
    settings.client_id = Some(g2w_emulator::DEMO_CLIENT_ID.to_owned());
    settings.client_secret = Some(SecretString::from(g2w_emulator::DEMO_CLIENT_SECRET));
    let mut serve_args = args;
    serve_args.demo = false;
    let (mut listen, config) = gateway_config(&ProcessEnv, &settings.serve, &serve_args, profile)?;
    if serve_args.listen.is_none()
        && std::env::var_os("G2W_LISTEN").is_none()
        && settings.serve.listen.is_none()
    {
        listen = "127.0.0.1:8080".parse()?;
    }
    let ctx = Context::open(settings, profile).await?;

    // Log in without a browser: a personal access token minted by the emulator.
    let minted: serde_json::Value = ctx
        .http
        .post(format!("{}/_emulator/pats", emulator.base_url()))
        .send()
        .await?
        .json()
        .await?;
    let pat = SecretString::from(
        minted["pat"]
            .as_str()
            .context("the emulator minted no PAT")?
            .to_owned(),
    );
    let login = crate::cmd::auth::pat_login(&ctx, &ctx.credentials(None)?, pat).await?;
    let record = crate::cmd::auth::store_login(&ctx, login).await?;

    let client = ctx.client(ctx.token_manager().await?);
    let now = chrono::Utc::now();
    let webinars = client
        .webinars(now, now + chrono::Duration::days(90))
        .await?;
    let mut lines = vec![
        String::new(),
        "g2w demo: a registration gateway in front of a built-in GoTo emulator.".to_owned(),
        format!(
            "  GoTo emulator: {}  (logged in as {})",
            emulator.base_url(),
            record.principal.unwrap_or_default()
        ),
        format!("  Data (thrown away on exit): {}", data.path().display()),
        "  Gateway: {GATEWAY}".to_owned(),
        "  Admin console: {GATEWAY}/admin (its password is printed above on stderr)".to_owned(),
        String::new(),
        "Try:".to_owned(),
        "  curl -s {GATEWAY}/api/v1/webinars".to_owned(),
    ];
    for w in &webinars {
        let form = client.registration_fields(w.webinar_key).await?;
        let responses: Vec<String> = form
            .questions
            .iter()
            .map(|q| match q.answers.first() {
                Some(a) => format!(
                    "{{\"questionKey\":\"{}\",\"answerKey\":\"{}\"}}",
                    q.question_key, a.answer_key
                ),
                None => format!(
                    "{{\"questionKey\":\"{}\",\"responseText\":\"Reliable delivery\"}}",
                    q.question_key
                ),
            })
            .collect();
        lines.push(String::new());
        lines.push(format!(
            "  # Register for \"{}\" (hosted form: {{GATEWAY}}/r/{})",
            w.subject, w.webinar_key
        ));
        lines.push(format!(
            "  curl -s -X POST {{GATEWAY}}/api/v1/webinars/{}/registrations -H 'Content-Type: application/json' \\\n    -d '{{\"firstName\":\"Ada\",\"lastName\":\"Lovelace\",\"email\":\"ada@example.com\",\"responses\":[{}]}}'",
            w.webinar_key,
            responses.join(",")
        ));
    }
    let first = webinars
        .first()
        .map_or_else(String::new, |w| w.webinar_key.to_string());
    lines.extend([
        String::new(),
        "  # The same email again: already registered, same join URL".to_owned(),
        "  # A registration's state: curl -s {GATEWAY}/api/v1/registrations/REGISTRATION_ID"
            .to_owned(),
        "  curl -s {GATEWAY}/metrics".to_owned(),
        String::new(),
        "  # GoTo's webhooks point at this gateway: once Ada is registered for the first webinar,"
            .to_owned(),
        "  # start a session in which she joins and see {GATEWAY}/admin/attendance".to_owned(),
        format!(
            "  curl -s -X POST {}/_emulator/sessions -d '{{\"webinarKey\":\"{first}\",\"attendance\":[{{\"email\":\"ada@example.com\"}}]}}'",
            emulator.base_url()
        ),
        String::new(),
        "Stop with Ctrl-C.".to_owned(),
    ]);
    let config = with_admin_password(&ctx, config).await?;
    serve(&ctx, listen, config, Some(lines.join("\n")), true).await?;
    drop(emulator);
    drop(data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bad_day_settings_are_checked_and_named() {
        struct Vars(Vec<(&'static str, &'static str)>);
        impl Env for Vars {
            fn var(&self, name: &str) -> Option<String> {
                self.0
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        }
        let args = Args {
            listen: None,
            sync_wait: None,
            demo: false,
        };
        let file = ServeFile::default();
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
        ] {
            let err =
                gateway_config(&Vars(vec![(var, value)]), &file, &args, "default").unwrap_err();
            assert!(format!("{err:#}").contains(var), "{var}={value}: {err:#}");
        }
        let (_, config) = gateway_config(
            &Vars(vec![
                ("G2W_GIVE_UP_AFTER_HOURS", "0"),
                ("G2W_LOOKUP_DEADLINE_MS", "3600000"),
                ("G2W_CACHE_TTL_SECS", "30"),
            ]),
            &file,
            &args,
            "default",
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
        assert_eq!(config.cache_ttl, Duration::from_secs(30));
        let proxied = gateway_config(
            &Vars(vec![("G2W_TRUSTED_PROXIES", " 10.0.0.0/8 , ::1 ")]),
            &file,
            &args,
            "default",
        )
        .unwrap()
        .1;
        assert_eq!(proxied.trusted_proxies.len(), 2);
        let defaults = gateway_config(&Vars(vec![]), &file, &args, "default")
            .unwrap()
            .1;
        assert_eq!(defaults.give_up_after, Duration::from_secs(72 * 3600));
        assert_eq!(defaults.lease, Duration::from_secs(10));
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
