//! `g2w auth`: log in once, then never think about tokens again.

use std::io::Read as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use g2w_goto::{ExposeSecret as _, GotoError, OAuthError, SecretString, Timestamp, TokenRecord};
use serde_json::json;
use tokio::sync::mpsc;

use crate::context::Context;
use crate::exit::NotLoggedIn;
use crate::output::{Shown, print_json, say};

/// `g2w auth …`
#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Authorize g2w with GoTo (browser and loopback callback, or a personal access token).
    Login(LoginArgs),
    /// Store an existing refresh token (from a `.env` set-up) and prove it works.
    Import(ImportArgs),
    /// Show the stored login: principal, organizer key, expiries and state. Never a token.
    Status(StatusArgs),
    /// Refresh the access token now.
    Refresh,
    /// Print a fresh access token for a local script (refreshed first when it has less
    /// than --min-ttl left), as `gh auth token` does.
    Token(TokenArgs),
    /// Delete this profile's stored tokens.
    Logout,
}

/// Options of `g2w auth login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Print the URL but do not open a browser (headless servers, SSH).
    #[arg(long)]
    no_browser: bool,
    /// Listen for the callback on this port (match the redirect URI registered with
    /// GoTo: http://127.0.0.1:PORT/callback). Default: any free port.
    #[arg(long, value_name = "N", default_value_t = 0)]
    port: u16,
    /// Do not use PKCE (in case GoTo rejects it).
    #[arg(long)]
    no_pkce: bool,
    /// Read a personal access token from stdin instead of using the browser.
    #[arg(long)]
    pat: bool,
    /// Give up waiting for the browser after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300, hide = true)]
    timeout: u64,
}

/// Options of `g2w auth token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Seconds the token must still be valid for (at most 3000).
    #[arg(long, value_name = "SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=g2w_gateway::keys::MAX_MIN_TTL))]
    min_ttl: u64,
    /// `text`: the token alone (for `$(g2w auth token)`); `json`: with its expiry and
    /// whom it acts for.
    #[arg(long, value_enum, default_value_t = Shown::Text)]
    format: Shown,
}

/// Options of `g2w auth import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Read the refresh token from stdin (so it never shows in `ps` or shell history).
    #[arg(long, required = true)]
    refresh_token_stdin: bool,
}

/// Options of `g2w auth status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Shown::Text)]
    format: Shown,
    /// The same as `--format json` (kept for scripts written before `--format`).
    #[arg(long, hide = true)]
    json: bool,
    /// Also ask GoTo whether the token works (refreshing it if needed).
    #[arg(long)]
    check: bool,
    /// Every stored login (each profile) with its state, instead of one.
    #[arg(long, conflicts_with = "check")]
    all: bool,
}

/// Runs an auth command.
pub async fn run(ctx: Context, command: AuthCommand) -> anyhow::Result<()> {
    match command {
        AuthCommand::Login(args) if args.pat => login_pat(&ctx).await,
        AuthCommand::Login(args) => login_browser(&ctx, &args).await,
        AuthCommand::Import(_) => import(&ctx).await,
        AuthCommand::Status(args) => status(&ctx, &args).await,
        AuthCommand::Refresh => refresh(&ctx).await,
        AuthCommand::Token(args) => token(&ctx, &args).await,
        AuthCommand::Logout => logout(&ctx).await,
    }
}

pub(crate) fn read_stdin_secret(what: &str) -> anyhow::Result<SecretString> {
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read the {what} from stdin"))?;
    let text = text.trim();
    if text.is_empty() {
        bail!("no {what} on stdin");
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("the {what} on stdin contains spaces or control characters");
    }
    Ok(SecretString::from(text.to_owned()))
}

fn oauth_failure(e: OAuthError) -> anyhow::Error {
    let hint = match &e {
        OAuthError::InvalidClient(_) => " (check G2W_CLIENT_ID and G2W_CLIENT_SECRET)",
        OAuthError::InvalidGrant(_) => " (the code or token is expired, used or revoked)",
        _ => "",
    };
    anyhow::anyhow!("{e}{hint}")
}

/// Saves a fresh login, finds the organizer, and says who is logged in.
async fn finish_login(ctx: &Context, record: TokenRecord) -> anyhow::Result<()> {
    let record = store_login(ctx, record).await?;
    let principal = record.principal.as_deref().unwrap_or("(unknown user)");
    let organizer = record
        .organizer_key
        .map(|k| k.to_string())
        .unwrap_or_default();
    say!(
        "Logged in as {principal}, organizer key {organizer} (profile {}).",
        ctx.profile
    );
    eprintln!(
        "Tokens are stored encrypted in {}; they refresh by themselves.",
        ctx.store.location()
    );
    Ok(())
}

/// Saves a fresh login and completes it with the organizer.
///
/// # Errors
/// Store failures, or GoTo refusing the `/me` look-up.
pub async fn store_login(ctx: &Context, mut record: TokenRecord) -> anyhow::Result<TokenRecord> {
    // The login remembers the GoTo it was made against (the emulator, say): later
    // commands go there too unless another is configured.
    record.auth_url = Some(ctx.settings.auth_url.to_string());
    record.api_url = Some(ctx.settings.api_url.to_string());
    let tokens = ctx.token_manager_for(&record)?;
    ctx.client(tokens)
        .save_login(record)
        .await
        .context("cannot complete the login")
}

async fn login_pat(ctx: &Context) -> anyhow::Result<()> {
    // Credentials first: no point reading a secret that cannot be used. Logging in
    // again uses the client stored with the earlier login unless one is configured.
    let credentials = ctx.credentials(ctx.stored().await.ok().flatten().as_ref())?;
    let pat = read_stdin_secret("personal access token")?;
    finish_login(ctx, pat_login(ctx, &credentials, pat).await?).await
}

/// Exchanges a personal access token: a login to store, with the PAT kept for renewal.
///
/// # Errors
/// GoTo refusing the PAT or the client.
pub async fn pat_login(
    ctx: &Context,
    credentials: &g2w_goto::ClientCredentials,
    pat: SecretString,
) -> anyhow::Result<TokenRecord> {
    let answer = ctx
        .oauth(credentials.clone())
        .exchange_pat(&pat)
        .await
        .map_err(oauth_failure)?;
    let mut record = TokenRecord::new_login(credentials, answer, ctx.now());
    record.personal_access_token = Some(pat);
    Ok(record)
}

/// What the loopback callback received.
enum Callback {
    Code(String),
    Denied(String),
}

#[derive(Clone)]
struct CallbackState {
    expected_state: String,
    tx: mpsc::Sender<Callback>,
}

async fn callback(
    State(st): State<CallbackState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let page = |title: &str, text: &str| {
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>g2w</title>\
             <body style=\"font-family:system-ui;max-width:32rem;margin:3rem auto\">\
             <h1>{title}</h1><p>{text}</p></body>"
        ))
    };
    // A callback without our state is not our browser's: refuse it, keep waiting.
    if q.get("state") != Some(&st.expected_state) {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            page(
                "Not this login",
                "The state does not match; this link is not from the login g2w is waiting for.",
            ),
        )
            .into_response();
    }
    if let Some(error) = q.get("error") {
        let _ = st
            .tx
            .send(Callback::Denied(error.chars().take(100).collect()))
            .await;
        return page(
            "Authorization refused",
            "GoTo did not authorize g2w. You can close this tab.",
        )
        .into_response();
    }
    match q.get("code") {
        Some(code) => {
            let _ = st.tx.send(Callback::Code(code.clone())).await;
            page(
                "g2w is authorized",
                "You can close this tab and return to the terminal.",
            )
            .into_response()
        }
        None => (
            axum::http::StatusCode::BAD_REQUEST,
            page("No code", "The callback has no code."),
        )
            .into_response(),
    }
}

async fn login_browser(ctx: &Context, args: &LoginArgs) -> anyhow::Result<()> {
    let credentials = ctx.credentials(ctx.stored().await.ok().flatten().as_ref())?;
    let oauth = ctx.oauth(credentials.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{} for GoTo's callback",
                args.port
            )
        })?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let request = oauth.authorize(&redirect_uri, !args.no_pkce);

    let (tx, mut rx) = mpsc::channel(1);
    let app = axum::Router::new()
        .route("/callback", axum::routing::get(callback))
        .with_state(CallbackState {
            expected_state: request.state.clone(),
            tx,
        });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    eprintln!(
        "Open this URL in a browser to authorize g2w with GoTo:\n\n  {}\n",
        request.url
    );
    eprintln!("Waiting for GoTo to redirect to {redirect_uri} …");
    if !args.no_browser && open::that_detached(request.url.as_str()).is_err() {
        eprintln!("(Could not open a browser: open the URL yourself.)");
    }
    let timeout = Duration::from_secs(args.timeout);
    let received = tokio::time::timeout(timeout, rx.recv()).await;
    let _ = stop.send(());
    let _ = server.await;
    let code = match received {
        Err(_) => bail!(
            "gave up after {} seconds without an answer from the browser; run `g2w auth login` \
             again (on a headless machine see docs/auth.md: --no-browser and SSH port forwarding)",
            args.timeout
        ),
        Ok(None) => bail!("the callback server stopped unexpectedly"),
        Ok(Some(Callback::Denied(error))) => bail!("GoTo did not authorize g2w ({error})"),
        Ok(Some(Callback::Code(code))) => code,
    };
    let answer = oauth
        .exchange_code(&code, &redirect_uri, request.pkce_verifier.as_ref())
        .await
        .map_err(oauth_failure)?;
    finish_login(ctx, TokenRecord::new_login(&credentials, answer, ctx.now())).await
}

async fn import(ctx: &Context) -> anyhow::Result<()> {
    let previous = ctx.stored().await?;
    let credentials = ctx.credentials(previous.as_ref())?;
    let refresh_token = read_stdin_secret("refresh token")?;
    let record = TokenRecord {
        client_id: credentials.client_id.clone(),
        client_secret: Some(credentials.client_secret.clone()),
        refresh_token: Some(refresh_token),
        refresh_token_since: Some(ctx.now()),
        ..TokenRecord::default()
    };
    let tokens = ctx.token_manager_for(&record)?;
    tokens.save(&record).await?;
    // Prove it: a refresh with the imported token.
    if let Err(e) = tokens.force_refresh().await {
        match previous {
            Some(old) => tokens.save(&old).await?,
            None => {
                ctx.store.delete_profile(&ctx.profile).await?;
            }
        }
        return Err(anyhow::Error::new(e)
            .context("the imported refresh token does not work; nothing was changed"));
    }
    let record = tokens.record().await?;
    finish_login(ctx, record).await
}

fn when(ts: Option<Timestamp>) -> String {
    ts.map(|t| {
        t.to_utc()
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    })
    .unwrap_or_else(|| "-".to_owned())
}

/// `g2w auth status --all`: every stored login, one line each.
async fn status_all(ctx: &Context, args: &StatusArgs) -> anyhow::Result<()> {
    let now = ctx.now();
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for profile in ctx.store.profiles().await? {
        let Some(r) = ctx.store.load_profile(&profile).await? else {
            continue;
        };
        let state = match r.unusable() {
            Some(_) if r.reauthorization_required.is_none() => "not_logged_in",
            _ => r.state(now),
        };
        let fix = (state == "reauthorization_required" || state == "not_logged_in")
            .then(|| login_hint(&profile));
        rows.push(vec![
            profile.clone(),
            state.replace('_', " "),
            r.principal.clone().unwrap_or_else(|| "-".into()),
            r.organizer_key
                .map_or_else(|| "-".into(), |k| k.to_string()),
            r.access_expires_at
                .map_or_else(|| "-".into(), Timestamp::to_rfc3339),
            fix.clone().unwrap_or_default(),
        ]);
        json_rows.push(json!({
            "profile": profile,
            "state": state,
            "principal": r.principal,
            "organizerKey": r.organizer_key.map(|k| k.to_string()),
            "accountKey": r.account_key.map(|k| k.to_string()),
            "accessTokenExpiresAt": r.access_expires_at.map(Timestamp::to_rfc3339),
            "fix": fix,
        }));
    }
    if rows.is_empty() {
        if args.json || args.format == Shown::Json {
            return print_json(&json!([]));
        }
        say!("No GoTo login is stored. Log in: g2w auth login [--profile NAME]");
        return Ok(());
    }
    let format = if args.json || args.format == Shown::Json {
        crate::output::Format::Json
    } else {
        crate::output::Format::Table
    };
    crate::output::Listing {
        columns: crate::output::columns(&[
            "profile",
            "state",
            "principal",
            "organizerKey",
            "accessExpires",
            "fix",
        ]),
        rows,
        json: serde_json::Value::Array(json_rows),
    }
    .print(format)
}

async fn status(ctx: &Context, args: &StatusArgs) -> anyhow::Result<()> {
    if args.all {
        return status_all(ctx, args).await;
    }
    let Some(stored) = ctx.stored().await? else {
        return Err(NotLoggedIn(ctx.profile.clone()).into());
    };
    let mut check = None;
    let record = if args.check {
        let tokens = ctx.token_manager().await?;
        let outcome = ctx.client(tokens.clone()).me().await;
        check = Some(outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
        tokens.record().await?
    } else {
        stored
    };
    let now = ctx.now();
    let state = record.state(now);
    let refresh_age_days = record
        .refresh_token_since
        .map(|t| now.since(t).as_secs_f64() / 86_400.0);
    let grant = if record.refresh_token.is_some() {
        "refresh_token"
    } else if record.personal_access_token.is_some() {
        "personal_access_token"
    } else {
        "none"
    };
    if args.json || args.format == Shown::Json {
        let v = json!({
            "profile": ctx.profile,
            "state": state,
            "principal": record.principal,
            "organizerKey": record.organizer_key.map(|k| k.to_string()),
            "accountKey": record.account_key.map(|k| k.to_string()),
            "grant": grant,
            "accessTokenExpiresAt": record.access_expires_at.map(Timestamp::to_rfc3339),
            "accessTokenExpiresInSeconds": record.access_expires_at.map(|t| t.as_secs() - now.as_secs()),
            "refreshTokenAgeDays": refresh_age_days.map(|d| (d * 10.0).round() / 10.0),
            "lastRefreshAt": record.last_refresh_at.map(Timestamp::to_rfc3339),
            "reauthorizationReason": record.reauthorization_required,
            "check": check.as_ref().map(|c| match c { Ok(()) => json!({"ok": true}), Err(e) => json!({"ok": false, "error": e}) }),
        });
        print_json(&v)?;
    } else {
        say!("profile:        {}", ctx.profile);
        say!("state:          {}", state.replace('_', " "));
        say!(
            "principal:      {}",
            record.principal.as_deref().unwrap_or("-")
        );
        say!(
            "organizer key:  {}",
            record
                .organizer_key
                .map(|k| k.to_string())
                .unwrap_or("-".into())
        );
        say!("access token:   expires {}", when(record.access_expires_at));
        match refresh_age_days {
            Some(days) => {
                say!("refresh token:  {days:.1} days old (GoTo renews it near day 30)")
            }
            None => say!("refresh token:  - ({grant})"),
        }
        say!("last refresh:   {}", when(record.last_refresh_at));
        if let Some(reason) = &record.reauthorization_required {
            say!("reason:         {reason}");
            say!("fix:            run `{}`", login_hint(&ctx.profile));
        }
        if let Some(c) = &check {
            match c {
                Ok(()) => say!("check:          GoTo accepted the token"),
                Err(e) => say!("check:          failed: {e}"),
            }
        }
    }
    if record.reauthorization_required.is_some() {
        return Err(GotoError::ReauthorizationRequired {
            reason: record.reauthorization_required.unwrap_or_default(),
            hint: login_hint(&ctx.profile),
        }
        .into());
    }
    if let Some(Err(e)) = check {
        bail!("GoTo check failed: {e}");
    }
    Ok(())
}

fn login_hint(profile: &str) -> String {
    crate::exit::login_command(profile)
}

async fn refresh(ctx: &Context) -> anyhow::Result<()> {
    let before = ctx
        .stored()
        .await?
        .ok_or_else(|| NotLoggedIn(ctx.profile.clone()))?;
    let tokens = ctx.token_manager().await?;
    let after = tokens.force_refresh().await?;
    let rotated = match (&before.refresh_token, &after.refresh_token) {
        (Some(a), Some(b)) => a.expose_secret() != b.expose_secret(),
        _ => false,
    };
    say!(
        "Refreshed: access token valid until {}{}.",
        when(after.access_expires_at),
        if rotated {
            "; GoTo issued a new refresh token and it is stored"
        } else {
            ""
        }
    );
    Ok(())
}

async fn token(ctx: &Context, args: &TokenArgs) -> anyhow::Result<()> {
    ctx.stored()
        .await?
        .ok_or_else(|| NotLoggedIn(ctx.profile.clone()))?;
    let tokens = ctx.token_manager().await?;
    let (token, login) = tokens.lasting(Duration::from_secs(args.min_ttl)).await?;
    match args.format {
        Shown::Text => say!("{}", token.expose_secret()),
        Shown::Json => print_json(&g2w_gateway::keys::handed_out(&token, &login, ctx.now()))?,
    }
    Ok(())
}

async fn logout(ctx: &Context) -> anyhow::Result<()> {
    if ctx.store.delete_profile(&ctx.profile).await? {
        say!(
            "Logged out: the tokens of profile {} are deleted.",
            ctx.profile
        );
    } else {
        say!("No login stored for profile {}.", ctx.profile);
    }
    Ok(())
}
