//! `g2w webhooks setup|status|remove`: GoTo's webhooks pointed at this gateway's
//! receiver, at a random path that is the only credential (GoTo's signatures cannot
//! be checked: the scheme is not documented well enough).

use anyhow::Context as _;
use g2w_gateway::our_webhooks;
use g2w_goto::{EventName, GotoClient, HookState};
use g2w_store::Setting;

use crate::context::Context;
use crate::output::{Shown, print_json, say};

/// `g2w webhooks …`
#[derive(Debug, clap::Subcommand)]
pub enum WebhooksCommand {
    /// Creates and activates GoTo's webhooks for this gateway and subscribes every
    /// organizer it serves; run again to move them to another URL.
    Setup {
        /// The gateway's public base URL (https; plain http only on this machine).
        #[arg(long)]
        url: String,
        /// The profiles whose organizers to subscribe, comma-separated (else
        /// G2W_PROFILES, the config file, or the profile in use and every stored login).
        #[arg(long, value_name = "PROFILE,…", value_delimiter = ',')]
        profiles: Option<Vec<String>>,
    },
    /// What GoTo has set up, and what the gateway received.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Shown::Text)]
        format: Shown,
    },
    /// Removes the webhooks and subscriptions from GoTo; the receiver stops accepting.
    Remove,
    /// Frees the space of events received before DATE once forwarded: registrations and
    /// joins keep their keys (repeats and reconciliation still know them), the rest go.
    Purge {
        /// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        before: String,
    },
    /// Compares GoTo's registrant and attendee lists with the events received now, and
    /// keeps what no webhook brought (the gateway also does this every 15 minutes).
    Reconcile,
}

/// Points GoTo's webhooks at the gateway whose public base URL is `url`; returns what
/// to tell the user.
///
/// # Errors
/// A bad URL, the store, or GoTo refusing (the gateway not reachable at `url`).
pub async fn setup(ctx: &Context, profiles: &[String], url: &str) -> anyhow::Result<String> {
    g2w_gateway::base_url(url)?;
    let mut clients = Vec::new();
    for profile in profiles {
        let pctx = ctx.with_profile(profile).await;
        clients.push(pctx.client(pctx.token_manager().await?));
    }
    Ok(g2w_gateway::setup_all(&clients, &ctx.store, url)
        .await?
        .to_string())
}

/// Runs a webhooks command.
pub async fn run(ctx: &Context, command: WebhooksCommand) -> anyhow::Result<()> {
    // GoTo is needed by most commands, not by `purge`: no login required for it.
    let client =
        async || -> anyhow::Result<GotoClient> { Ok(ctx.client(ctx.token_manager().await?)) };
    let store = ctx.store.clone();
    match command {
        WebhooksCommand::Setup { url, profiles } => {
            let named = crate::settings::serve::profiles(
                &crate::settings::ProcessEnv,
                &ctx.settings.file,
                profiles.as_deref(),
            )?;
            let profiles = ctx.served_profiles(named).await?;
            say!("{}", setup(ctx, &profiles, &url).await?);
            Ok(())
        }
        WebhooksCommand::Status { format } => status(ctx, &store, client, format).await,
        WebhooksCommand::Reconcile => {
            // Found events are forwarded (by the gateway) when a forward URL is set.
            let forward =
                crate::settings::forward_url(&crate::settings::ProcessEnv, &ctx.settings.file)
                    .is_some();
            let found = g2w_gateway::reconcile(
                &client().await?,
                &store,
                g2w_goto::Timestamp::now(),
                forward,
            )
            .await
            .context("reconciliation stopped")?;
            say!("{found}");
            Ok(())
        }
        WebhooksCommand::Purge { before } => {
            let before = crate::output::parse_moment(&before)?;
            let n = store.compact_events_before(before).await?;
            say!("{n} event(s) received before {before} compacted or deleted.");
            Ok(())
        }
        WebhooksCommand::Remove => {
            let removed = g2w_gateway::remove(&client().await?, &store).await?;
            say!("Removed {removed} webhook(s) from GoTo; the receiver no longer accepts events.");
            Ok(())
        }
    }
}

/// `g2w webhooks status`: the receiver, GoTo's webhooks and their state, what was
/// received, the forwarding backlog and the last event.
async fn status(
    ctx: &Context,
    store: &g2w_store::Store,
    client: impl AsyncFnOnce() -> anyhow::Result<GotoClient>,
    format: Shown,
) -> anyhow::Result<()> {
    let callback = store
        .setting(Setting::WebhookCallback)
        .await?
        .filter(|c| !c.is_empty());
    let Some(callback) = callback else {
        if format == Shown::Json {
            return print_json(&serde_json::json!({"setUp": false}));
        }
        say!("Webhooks are not set up. Run: g2w webhooks setup --url https://your-gateway.example");
        return Ok(());
    };
    let client = client().await?;
    let hooks = our_webhooks(
        client
            .webhooks()
            .await
            .context("cannot list GoTo's webhooks")?,
    );
    let subs = client
        .user_subscriptions()
        .await
        .context("cannot list GoTo's subscriptions")?;
    let hooks: Vec<(EventName, Option<HookState>)> = hooks
        .iter()
        .map(|h| {
            let state = subs
                .iter()
                .find(|s| s.webhook_key == h.webhook_key)
                .and_then(|s| s.activation_state);
            (h.event_name.clone(), state)
        })
        .collect();
    let counts = store.attendance().await?;
    let people = |name: EventName| -> u64 {
        counts
            .iter()
            .filter(|c| c.event_name == name)
            .map(|c| c.people)
            .sum()
    };
    let (added, joined) = (
        people(EventName::RegistrantAdded),
        people(EventName::RegistrantJoined),
    );
    let forwarding = store.forward_gauges().await?;
    let forward_url =
        crate::settings::forward_url(&crate::settings::ProcessEnv, &ctx.settings.file);
    let last = store.recent_events(1).await?.into_iter().next();
    let now = ctx.now();
    if format == Shown::Json {
        return print_json(&serde_json::json!({
            "setUp": true,
            "receiver": callback,
            "webhooks": hooks.iter().map(|(name, state)| serde_json::json!({
                "eventName": name,
                "state": state.map_or("NOT_SUBSCRIBED", HookState::as_str),
            })).collect::<Vec<_>>(),
            "received": {"registrations": added, "joins": joined},
            "forwarding": {
                "url": forward_url,
                "pending": forwarding.pending,
                "delivering": forwarding.delivering,
                "failed": forwarding.failed,
                "oldestWaitingSince": forwarding.oldest_waiting.map(|t| t.to_rfc3339()),
            },
            "lastEvent": last.as_ref().map(|e| serde_json::json!({
                "receivedAt": e.received_at.to_rfc3339(),
                "eventName": e.event_name,
                "source": e.source.as_str(),
            })),
        }));
    }
    say!("receiver:       {callback}");
    for (name, state) in &hooks {
        say!(
            "  {:<18} {}",
            name,
            state.map_or("NOT SUBSCRIBED", HookState::as_str)
        );
    }
    if hooks.is_empty() {
        say!("  GoTo has no webhooks for this gateway: run setup again.");
    }
    say!("received:       {added} registration(s), {joined} join(s)");
    if forward_url.is_some() || forwarding != g2w_store::QueueGauges::default() {
        say!(
            "forwarding:     {}",
            forwarding.summary(now, "event(s)", "be forwarded")
        );
    }
    if let Some(last) = &last {
        say!(
            "last event:     {} {} ({})",
            last.received_at,
            last.event_name,
            last.source.as_str()
        );
    }
    Ok(())
}
