//! `g2w serve`: the registration gateway. `--demo` runs it on the built-in emulator.

use std::net::SocketAddr;

use anyhow::Context as _;
use g2w_gateway::{AdminPassword, Gateway, GatewayConfig};
use g2w_goto::{GotoClient, RetryPolicy, SecretString};
use g2w_store::Setting;

use crate::context::Context;
use crate::output::notice;
use crate::output::say;
use crate::settings::serve::{self as serve_settings, ServeFlags};
use crate::settings::table::ADMIN_PASSWORD;
use crate::settings::{Env, ProcessEnv, Settings};

/// Options of `g2w serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    settings: ServeFlags,
    /// Run on the built-in GoTo emulator with demo webinars, logged in automatically.
    #[arg(long)]
    demo: bool,
}

/// Runs `g2w serve`.
pub async fn run(settings: Settings, profile: &str, args: Args) -> anyhow::Result<()> {
    if args.demo {
        return demo(settings, profile, args).await;
    }
    let listen = serve_settings::listen(&ProcessEnv, &settings.file, &args.settings)?;
    let config =
        serve_settings::gateway_config(&ProcessEnv, &settings.file, &args.settings, profile)?;
    let named = serve_settings::profiles(
        &ProcessEnv,
        &settings.file,
        args.settings.profiles.as_deref(),
    )?;
    // The port first: a busy one is said before anything else happens.
    let listener = bind(listen).await?;
    let ctx = Context::open(settings, profile).await?;
    // Refuse to start rather than answer 503 to every visitor.
    ctx.store
        .probe_write(ctx.now())
        .await
        .with_context(|| format!("g2w serve cannot write its store {}", ctx.store.location()))?;
    let config = with_admin_password(&ctx, config).await?;
    crate::cmd::sources::sync_file_sources(&ctx).await?;
    let profiles = ctx.served_profiles(named).await?;
    let mut served = Vec::with_capacity(profiles.len());
    for p in &profiles {
        let whose = if profiles.len() > 1 {
            format!(" (profile {p})")
        } else {
            String::new()
        };
        let login = crate::exit::login_command(p);
        match ctx.with_profile(p).await.stored().await? {
            None => {
                served.push(format!("{p} (not logged in)"));
                tracing::warn!(
                    "Not connected to GoTo yet{whose}: registrations are accepted and queued until you \
                     connect (`{login}`, or Connect GoTo in the admin console at /admin)."
                );
            }
            Some(r) if r.reauthorization_required.is_some() => {
                served.push(format!("{p} (login needs renewing)"));
                tracing::warn!(
                    "GoTo login needs renewing{whose}; accepting registrations, delivery paused until \
                     `{login}`"
                );
            }
            Some(r) => served.push(match r.principal {
                Some(who) => format!("{p} ({who})"),
                None => p.clone(),
            }),
        }
    }
    notice!("Serving organizers: {}", served.join(", "));
    serve(&ctx, listener, config, &profiles, None, false).await
}

/// The admin console's password: `G2W_ADMIN_PASSWORD`, else the stored hash, else a new
/// random one, stored hashed and handed over by [`crate::cmd::admin::hand_over`] (a file
/// only its owner can read; never a log line).
async fn with_admin_password(
    ctx: &Context,
    mut config: GatewayConfig,
) -> anyhow::Result<GatewayConfig> {
    config.admin_password = Some(match ProcessEnv.var(ADMIN_PASSWORD.var) {
        Some(p) => AdminPassword::Plain(SecretString::from(p)),
        None => match ctx.store.setting(Setting::AdminPassword).await? {
            Some(hash) => AdminPassword::Hashed(hash),
            None => {
                let (password, hash) = crate::cmd::admin::new_password(ctx).await?;
                crate::cmd::admin::hand_over(ctx, &password)?;
                AdminPassword::Hashed(hash)
            }
        },
    });
    Ok(config)
}

/// Takes the port to listen on.
async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen on {listen}: is another g2w serve running? choose another address with --listen"
        )
    })
}

/// A gateway over the store for `profiles`' organizers, as `g2w serve` runs it (other
/// commands act through it without serving: `g2w sources replay`, `test`).
///
/// # Errors
/// A stored login that cannot be read.
pub async fn gateway(
    ctx: &Context,
    config: GatewayConfig,
    profiles: &[String],
) -> anyhow::Result<Gateway> {
    let mut organizers = Vec::with_capacity(profiles.len());
    for profile in profiles {
        let pctx = ctx.with_profile(profile).await;
        // Without a stored or configured OAuth client the manager starts empty: delivery
        // waits (paused) until the admin console or `g2w auth login` stores a login.
        let tokens = pctx.token_manager_or_empty().await?;
        // The outbox retries durably; the client itself makes one attempt per delivery.
        let client = GotoClient::new(
            ctx.http.clone(),
            pctx.settings.api_url.clone(),
            tokens,
            pctx.rate_limiter(),
            RetryPolicy::NEVER,
        );
        organizers.push((profile.clone(), client));
    }
    Ok(Gateway::for_organizers(
        config,
        ctx.store.clone(),
        organizers,
        g2w_goto::system_clock(),
    ))
}

/// Serves until a signal; with `webhooks_to_self`, once listening, points GoTo's
/// webhooks at this gateway (the demo, where GoTo is the emulator beside it).
async fn serve(
    ctx: &Context,
    listener: tokio::net::TcpListener,
    config: GatewayConfig,
    profiles: &[String],
    banner: Option<String>,
    webhooks_to_self: bool,
) -> anyhow::Result<()> {
    let mut config = config;
    config.max_connections = crate::limits::connections_within_open_files(config.max_connections);
    let addr = listener.local_addr()?;
    let gateway = gateway(ctx, config, profiles).await?;
    let url = format!("http://{addr}");
    if crate::output::json_logs() {
        // Every line is JSON in JSON mode; scripts read the address from `url`.
        say!(
            "{}",
            serde_json::json!({"message": "g2w gateway listening", "url": url})
        );
        if let Some(banner) = banner {
            notice!("{}", banner.replace("{GATEWAY}", &url));
        }
    } else {
        say!("g2w gateway listening on {url}");
        if let Some(banner) = banner {
            say!("{}", banner.replace("{GATEWAY}", &url));
        }
    }
    let serving = gateway.serve(listener, crate::signal::shutdown());
    let served = if webhooks_to_self {
        let setup = async {
            match crate::cmd::webhooks::setup(ctx, profiles, &format!("http://{addr}")).await {
                Ok(said) => notice!("{said}"),
                Err(e) => notice!("GoTo's webhooks could not be set up: {e:#}"),
            }
        };
        tokio::join!(serving, setup).0
    } else {
        serving.await
    };
    served.context("the gateway stopped with an error")?;
    notice!("g2w gateway stopped.");
    Ok(())
}

/// The demo: an in-process emulator with demo webinars, a throw-away data directory,
/// an automatic login, and the gateway in front of it.
async fn demo(mut settings: Settings, profile: &str, args: Args) -> anyhow::Result<()> {
    // The port first: a busy one is said before anything is made or printed.
    let listen = serve_settings::listen(&ProcessEnv, &settings.file, &args.settings)?;
    let listener = bind(listen).await?;
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
    let config =
        serve_settings::gateway_config(&ProcessEnv, &settings.file, &args.settings, profile)?;
    let ctx = Context::open(settings, profile).await?;

    // Log in without a browser: a personal access token minted by the emulator for each
    // of its organizers, the default one under this profile, the other under its own.
    let listed: serde_json::Value = ctx
        .http
        .get(format!("{}/_emulator/organizers", emulator.base_url()))
        .send()
        .await?
        .json()
        .await?;
    let mut profiles = Vec::new();
    let mut principals = Vec::new();
    let mut others = 0;
    for organizer in listed.as_array().map(Vec::as_slice).unwrap_or_default() {
        let profile = if organizer["default"] == true {
            profile.to_owned()
        } else {
            others += 1;
            format!("demo-organizer-{others}")
        };
        let minted: serde_json::Value = ctx
            .http
            .post(format!("{}/_emulator/pats", emulator.base_url()))
            .json(&serde_json::json!({"organizerKey": organizer["organizerKey"]}))
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
        let pctx = ctx.with_profile(&profile).await;
        let login = crate::cmd::auth::pat_login(&pctx, &pctx.credentials(None)?, pat).await?;
        let record = crate::cmd::auth::store_login(&pctx, login).await?;
        principals.push(format!(
            "{} (profile {profile})",
            record.principal.unwrap_or_default()
        ));
        // The default organizer first: the console connects it, the banner shows it.
        if profile == ctx.profile {
            profiles.insert(0, profile);
        } else {
            profiles.push(profile);
        }
    }
    let client = ctx.client(ctx.token_manager().await?);
    let now = chrono::Utc::now();
    let webinars = client
        .webinars(now, now + chrono::Duration::days(90))
        .await?;
    let mut lines = vec![
        String::new(),
        "g2w demo: a registration gateway in front of a built-in GoTo emulator.".to_owned(),
        format!("  GoTo emulator: {}", emulator.base_url()),
        format!("  Organizers served: {}", principals.join(", ")),
        format!("  Data (thrown away on exit): {}", data.path().display()),
        "  Gateway: {GATEWAY}".to_owned(),
        format!(
            "  Admin console: {{GATEWAY}}/admin (its password: {})",
            crate::cmd::admin::password_file(&ctx).display()
        ),
        String::new(),
        "Try:".to_owned(),
        "  curl -s {GATEWAY}/api/v1/webinars".to_owned(),
    ];
    // A series is one form: named once, below, not date by date.
    let mut series = Vec::new();
    for w in &webinars {
        if let Some(recurrence) = w.recurrence_key {
            if !series.iter().any(|(r, _)| *r == recurrence) {
                series.push((recurrence, w.subject.clone()));
            }
            continue;
        }
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
    for (recurrence, subject) in &series {
        lines.push(String::new());
        lines.push(format!(
            "  # \"{subject}\" is a series: one form, the visitor picks a date"
        ));
        lines.push(format!(
            "  #   {{GATEWAY}}/r/series/{recurrence}   (its dates: curl -s '{{GATEWAY}}/api/v1/webinars?series={recurrence}')"
        ));
    }
    let first = webinars
        .iter()
        .find(|w| w.recurrence_key.is_none())
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
    serve(
        &ctx,
        listener,
        config,
        &profiles,
        Some(lines.join("\n")),
        true,
    )
    .await?;
    drop(emulator);
    drop(data);
    Ok(())
}
