//! `g2w webhooks setup|status|remove`: GoTo's webhooks pointed at this gateway's
//! receiver, at a random path that is the only credential (GoTo's signatures cannot
//! be checked: the scheme is not documented well enough).

use anyhow::{Context as _, bail};
use g2w_gateway::{
    CALLBACK_SETTING, PATH_SETTING, RECEIVER_PREFIX, configured_path, new_receiver_path,
};
use g2w_goto::{GotoClient, WEBHOOK_EVENTS, Webhook};

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

/// The receiver's base URL: https, or http on this machine; no query or fragment.
fn base_url(text: &str) -> anyhow::Result<String> {
    let url = g2w_goto::Url::parse(text.trim())
        .with_context(|| format!("--url {text:?} is not a URL (https://gateway.example.com)"))?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => bail!("--url {text:?} must be https (GoTo calls only https URLs)"),
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--url {text:?} must not have a query or fragment");
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// This gateway's webhooks among the application's (any other integration's stay).
fn ours(hooks: Vec<Webhook>) -> Vec<Webhook> {
    hooks
        .into_iter()
        .filter(|h| h.callback_url.contains(RECEIVER_PREFIX))
        .collect()
}

/// Removes this gateway's webhooks (and their subscriptions) from GoTo, except those
/// in `keep`; returns how many went.
async fn remove_from_goto(client: &GotoClient, keep: &[String]) -> anyhow::Result<usize> {
    let mut hooks = ours(
        client
            .webhooks()
            .await
            .context("cannot list GoTo's webhooks")?,
    );
    hooks.retain(|h| !keep.contains(&h.webhook_key));
    if hooks.is_empty() {
        return Ok(0);
    }
    let keys: Vec<String> = hooks.iter().map(|h| h.webhook_key.clone()).collect();
    let subs: Vec<String> = client
        .user_subscriptions()
        .await
        .context("cannot list GoTo's subscriptions")?
        .into_iter()
        .filter(|s| keys.contains(&s.webhook_key))
        .map(|s| s.user_subscription_key)
        .collect();
    if !subs.is_empty() {
        client
            .unsubscribe(&subs)
            .await
            .context("cannot end the subscriptions")?;
    }
    client
        .delete_webhooks(&keys)
        .await
        .context("cannot delete the webhooks")?;
    Ok(keys.len())
}

/// Points GoTo's webhooks at the gateway whose public base URL is `url`; returns what
/// to tell the user.
///
/// # Errors
/// A bad URL, the store, or GoTo refusing (the gateway not reachable at `url`).
pub async fn setup(ctx: &Context, url: &str) -> anyhow::Result<Vec<String>> {
    let client = ctx.client(ctx.token_manager().await?);
    let store = ctx.store.clone();
    let base = base_url(url)?;
    let path = match configured_path(store.setting(PATH_SETTING).await?) {
        Some(p) => p,
        None => {
            let p = new_receiver_path();
            store.set_setting(PATH_SETTING, &p).await?;
            p
        }
    };
    let callback = format!("{base}{RECEIVER_PREFIX}{path}");
    // GoTo signs events with the newest secret; g2w cannot check that scheme,
    // so the secret is made (as GoTo's set-up asks) but not kept.
    client
        .create_webhook_secret()
        .await
        .context("GoTo refused to make a webhook secret")?;
    let hooks = client
        .create_webhooks(&callback, WEBHOOK_EVENTS)
        .await
        .with_context(|| {
            format!(
                "GoTo refused the callback {base}{RECEIVER_PREFIX}…: is `g2w serve` running and reachable there?"
            )
        })?;
    let keys: Vec<String> = hooks.iter().map(|h| h.webhook_key.clone()).collect();
    client
        .set_webhooks_state(&keys, "ACTIVE")
        .await
        .context("cannot activate the webhooks")?;
    let subs = client
        .subscribe(&keys)
        .await
        .context("cannot subscribe the organizer")?;
    // Only now that the new ones work do the old ones go: a set-up that fails (the
    // gateway not reachable at `url`) leaves the working webhooks as they were.
    let replaced = remove_from_goto(&client, &keys).await?;
    store
        .set_setting(CALLBACK_SETTING, &format!("{base}{RECEIVER_PREFIX}…"))
        .await?;
    let mut said = Vec::new();
    if replaced > 0 {
        said.push(format!("Replaced {replaced} earlier webhook(s)."));
    }
    said.push(format!(
        "GoTo now sends {} to {base}{RECEIVER_PREFIX}… ({} webhook(s), {} active subscription(s)).",
        WEBHOOK_EVENTS.join(", "),
        keys.len(),
        subs.iter()
            .filter(|s| s.activation_state.as_deref() == Some("ACTIVE"))
            .count()
    ));
    said.push("The path is secret: it is kept in the store and never printed.".to_owned());
    Ok(said)
}

/// Runs a webhooks command.
pub async fn run(ctx: &Context, command: WebhooksCommand) -> anyhow::Result<()> {
    // GoTo is needed by most commands, not by `purge`: no login required for it.
    let client =
        async || -> anyhow::Result<GotoClient> { Ok(ctx.client(ctx.token_manager().await?)) };
    let store = ctx.store.clone();
    match command {
        WebhooksCommand::Setup { url } => {
            for line in setup(ctx, &url).await? {
                println!("{line}");
            }
            Ok(())
        }
        WebhooksCommand::Status => {
            let callback = store
                .setting(CALLBACK_SETTING)
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
            let hooks = ours(
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
                    .and_then(|s| s.activation_state.clone())
                    .unwrap_or_else(|| "NOT SUBSCRIBED".into());
                println!("  {:<18} {}", h.event_name, active);
            }
            if hooks.is_empty() {
                println!("  GoTo has no webhooks for this gateway: run setup again.");
            }
            let counts = store.attendance().await?;
            let added: u64 = counts
                .iter()
                .filter(|c| c.event_name == "registrant.added")
                .map(|c| c.people)
                .sum();
            let joined: u64 = counts
                .iter()
                .filter(|c| c.event_name == "registrant.joined")
                .map(|c| c.people)
                .sum();
            println!("received:       {added} registration(s), {joined} join(s)");
            let forwarding = store.forward_gauges().await?;
            let forward_url =
                crate::cmd::serve::forward_url(&crate::settings::ProcessEnv, &ctx.settings.serve);
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
                crate::cmd::serve::forward_url(&crate::settings::ProcessEnv, &ctx.settings.serve)
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
            let removed = remove_from_goto(&client().await?, &[]).await?;
            store.set_setting(PATH_SETTING, "").await?;
            store.set_setting(CALLBACK_SETTING, "").await?;
            println!(
                "Removed {removed} webhook(s) from GoTo; the receiver no longer accepts events."
            );
            Ok(())
        }
    }
}
