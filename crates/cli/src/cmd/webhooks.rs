//! `g2w webhooks setup|status|remove`: GoTo's webhooks pointed at this gateway's
//! receiver, at a random path that is the only credential (GoTo's signatures cannot
//! be checked: the scheme is not documented well enough).

use anyhow::Context as _;
use g2w_gateway::our_webhooks;
use g2w_goto::{EventName, GotoClient, HookState};
use g2w_store::Setting;

use crate::context::Context;

/// `g2w webhooks …`
#[derive(Debug, clap::Subcommand)]
pub enum WebhooksCommand {
    /// Creates and activates GoTo's webhooks for this gateway and subscribes the
    /// logged-in organizer; run again to move them to another URL.
    Setup {
        /// The gateway's public base URL (https; plain http only on this machine).
        #[arg(long)]
        url: String,
    },
    /// What GoTo has set up, and what the gateway received.
    Status,
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
pub async fn setup(ctx: &Context, url: &str) -> anyhow::Result<String> {
    g2w_gateway::base_url(url)?;
    let client = ctx.client(ctx.token_manager().await?);
    Ok(g2w_gateway::setup(&client, &ctx.store, url)
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
        WebhooksCommand::Setup { url } => {
            println!("{}", setup(ctx, &url).await?);
            Ok(())
        }
        WebhooksCommand::Status => {
            let callback = store
                .setting(Setting::WebhookCallback)
                .await?
                .filter(|c| !c.is_empty());
            let Some(callback) = callback else {
                println!(
                    "Webhooks are not set up. Run: g2w webhooks setup --url https://your-gateway.example"
                );
                return Ok(());
            };
            println!("receiver:       {callback}");
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
            for h in &hooks {
                let active = subs
                    .iter()
                    .find(|s| s.webhook_key == h.webhook_key)
                    .and_then(|s| s.activation_state)
                    .map_or("NOT SUBSCRIBED", HookState::as_str);
                println!("  {:<18} {}", h.event_name, active);
            }
            if hooks.is_empty() {
                println!("  GoTo has no webhooks for this gateway: run setup again.");
            }
            let counts = store.attendance().await?;
            let added: u64 = counts
                .iter()
                .filter(|c| c.event_name == EventName::RegistrantAdded)
                .map(|c| c.people)
                .sum();
            let joined: u64 = counts
                .iter()
                .filter(|c| c.event_name == EventName::RegistrantJoined)
                .map(|c| c.people)
                .sum();
            println!("received:       {added} registration(s), {joined} join(s)");
            let forwarding = store.forward_gauges().await?;
            let forward_url =
                crate::settings::forward_url(&crate::settings::ProcessEnv, &ctx.settings.file);
            if forward_url.is_some() || forwarding != g2w_store::QueueGauges::default() {
                println!(
                    "forwarding:     {}",
                    forwarding.summary(g2w_goto::Timestamp::now(), "event(s)", "be forwarded")
                );
            }
            if let Some(last) = store.recent_events(1).await?.first() {
                println!(
                    "last event:     {} {} ({})",
                    last.received_at,
                    last.event_name,
                    last.source.as_str()
                );
            }
            Ok(())
        }
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
            println!("{found}");
            Ok(())
        }
        WebhooksCommand::Purge { before } => {
            let before = crate::output::parse_moment(&before)?;
            let n = store.compact_events_before(before).await?;
            println!("{n} event(s) received before {before} compacted or deleted.");
            Ok(())
        }
        WebhooksCommand::Remove => {
            let removed = g2w_gateway::remove(&client().await?, &store).await?;
            println!(
                "Removed {removed} webhook(s) from GoTo; the receiver no longer accepts events."
            );
            Ok(())
        }
    }
}
