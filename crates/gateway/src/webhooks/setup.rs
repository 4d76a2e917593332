//! Setting GoTo's webhooks up to reach this gateway, and taking them down: the receiver's
//! random path (the only credential: GoTo's signatures cannot be checked, the scheme is
//! not documented well enough) registered with GoTo, and the organizer subscribed.

use g2w_goto::{EventName, GotoClient, GotoError, HookState, Webhook};
use g2w_store::Setting;
use g2w_store::{Store, StoreError};

use super::{RECEIVER_PREFIX, configured_path, new_receiver_path};

/// Why setting webhooks up (or down) stopped.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The gateway's URL is not one GoTo will call.
    #[error("{0}")]
    Url(String),
    /// The store could not keep the path.
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// GoTo refused a step; `what` says which.
    #[error("{what}")]
    Goto {
        /// The step.
        what: String,
        /// GoTo's answer.
        #[source]
        source: GotoError,
    },
}

fn goto(what: impl Into<String>) -> impl FnOnce(GotoError) -> SetupError {
    let what = what.into();
    move |source| SetupError::Goto { what, source }
}

/// What a set-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetUp {
    /// The gateway's base URL GoTo now calls (the secret path is never shown).
    pub base: String,
    /// Earlier webhooks of this gateway replaced.
    pub replaced: usize,
    /// Webhooks made.
    pub webhooks: usize,
    /// Subscriptions GoTo says are active.
    pub active: usize,
}

impl std::fmt::Display for SetUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.replaced > 0 {
            writeln!(f, "Replaced {} earlier webhook(s).", self.replaced)?;
        }
        writeln!(
            f,
            "GoTo now sends {} to {}{RECEIVER_PREFIX}… ({} webhook(s), {} active subscription(s)).",
            EventName::SUBSCRIBED
                .map(|e| e.as_str().to_owned())
                .join(", "),
            self.base,
            self.webhooks,
            self.active
        )?;
        write!(
            f,
            "The path is secret: it is kept in the store and never printed."
        )
    }
}

/// The receiver's base URL: https, or http on this machine; no query or fragment.
///
/// # Errors
/// A URL GoTo would not call, saying why.
pub fn base_url(text: &str) -> Result<String, SetupError> {
    let url = g2w_goto::Url::parse(text.trim()).map_err(|_| {
        SetupError::Url(format!(
            "--url {text:?} is not a URL (https://gateway.example.com)"
        ))
    })?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => {
            return Err(SetupError::Url(format!(
                "--url {text:?} must be https (GoTo calls only https URLs)"
            )));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(SetupError::Url(format!(
            "--url {text:?} must not have a query or fragment"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// This gateway's webhooks among the application's (any other integration's stay).
pub fn our_webhooks(hooks: Vec<Webhook>) -> Vec<Webhook> {
    hooks
        .into_iter()
        .filter(|h| h.callback_url.contains(RECEIVER_PREFIX))
        .collect()
}

/// Removes this gateway's webhooks (and their subscriptions) from GoTo, except those
/// in `keep`; returns how many went.
async fn remove_from_goto(client: &GotoClient, keep: &[String]) -> Result<usize, SetupError> {
    let mut hooks = our_webhooks(
        client
            .webhooks()
            .await
            .map_err(goto("cannot list GoTo's webhooks"))?,
    );
    hooks.retain(|h| !keep.contains(&h.webhook_key));
    if hooks.is_empty() {
        return Ok(0);
    }
    let keys: Vec<String> = hooks.iter().map(|h| h.webhook_key.clone()).collect();
    let subs: Vec<String> = client
        .user_subscriptions()
        .await
        .map_err(goto("cannot list GoTo's subscriptions"))?
        .into_iter()
        .filter(|s| keys.contains(&s.webhook_key))
        .map(|s| s.user_subscription_key)
        .collect();
    if !subs.is_empty() {
        client
            .unsubscribe(&subs)
            .await
            .map_err(goto("cannot end the subscriptions"))?;
    }
    client
        .delete_webhooks(&keys)
        .await
        .map_err(goto("cannot delete the webhooks"))?;
    Ok(keys.len())
}

/// Points GoTo's webhooks at the gateway whose public base URL is `url`, for every
/// organizer `clients` log in as: webhooks belong to an OAuth application, so they are
/// made once per application (with its first organizer) and each other organizer of it
/// subscribes to them.
///
/// # Errors
/// A bad URL, the store, or GoTo refusing (the gateway not reachable at `url`).
pub async fn setup_all(
    clients: &[GotoClient],
    store: &Store,
    url: &str,
) -> Result<SetUp, SetupError> {
    let mut total: Option<SetUp> = None;
    let mut done: Vec<(String, Vec<String>)> = Vec::new();
    for client in clients {
        let application = client.tokens().oauth().credentials().client_id.clone();
        if let Some((_, keys)) = done.iter().find(|(a, _)| *a == application) {
            let subs = client
                .subscribe(keys)
                .await
                .map_err(goto("cannot subscribe an organizer"))?;
            if let Some(t) = total.as_mut() {
                t.active += active(&subs);
            }
            continue;
        }
        let (made, keys) = setup_one(client, store, url).await?;
        done.push((application, keys));
        total = Some(match total {
            None => made,
            Some(t) => SetUp {
                replaced: t.replaced + made.replaced,
                webhooks: t.webhooks + made.webhooks,
                active: t.active + made.active,
                ..t
            },
        });
    }
    total.ok_or_else(|| SetupError::Url("no GoTo login to set webhooks up with".to_owned()))
}

fn active(subs: &[g2w_goto::UserSubscription]) -> usize {
    subs.iter()
        .filter(|s| s.activation_state == Some(HookState::Active))
        .count()
}

/// Points GoTo's webhooks at the gateway whose public base URL is `url`.
///
/// # Errors
/// A bad URL, the store, or GoTo refusing (the gateway not reachable at `url`).
pub async fn setup(client: &GotoClient, store: &Store, url: &str) -> Result<SetUp, SetupError> {
    setup_all(std::slice::from_ref(client), store, url).await
}

/// [`setup`] for one application, answering the webhook keys it made.
async fn setup_one(
    client: &GotoClient,
    store: &Store,
    url: &str,
) -> Result<(SetUp, Vec<String>), SetupError> {
    let base = base_url(url)?;
    let path = match configured_path(store.setting(Setting::WebhookPath).await?) {
        Some(p) => p,
        None => {
            let p = new_receiver_path();
            store.set_setting(Setting::WebhookPath, &p).await?;
            p
        }
    };
    let callback = format!("{base}{RECEIVER_PREFIX}{path}");
    // GoTo signs events with the newest secret; g2w cannot check that scheme, so the
    // secret is made (as GoTo's set-up asks) but not kept.
    client
        .create_webhook_secret()
        .await
        .map_err(goto("GoTo refused to make a webhook secret"))?;
    let hooks = client
        .create_webhooks(&callback, &EventName::SUBSCRIBED)
        .await
        .map_err(goto(format!(
            "GoTo refused the callback {base}{RECEIVER_PREFIX}…: is `g2w serve` running and reachable there?"
        )))?;
    let keys: Vec<String> = hooks.iter().map(|h| h.webhook_key.clone()).collect();
    client
        .set_webhooks_state(&keys, HookState::Active)
        .await
        .map_err(goto("cannot activate the webhooks"))?;
    let subs = client
        .subscribe(&keys)
        .await
        .map_err(goto("cannot subscribe the organizer"))?;
    // Only now that the new ones work do the old ones go: a set-up that fails (the
    // gateway not reachable at `url`) leaves the working webhooks as they were.
    let replaced = remove_from_goto(client, &keys).await?;
    store
        .set_setting(
            Setting::WebhookCallback,
            &format!("{base}{RECEIVER_PREFIX}…"),
        )
        .await?;
    let made = SetUp {
        base,
        replaced,
        webhooks: keys.len(),
        active: active(&subs),
    };
    Ok((made, keys))
}

/// Removes this gateway's webhooks and subscriptions from GoTo and forgets the path:
/// the receiver stops accepting. Returns how many webhooks went.
///
/// # Errors
/// GoTo refusing, or the store.
pub async fn remove(client: &GotoClient, store: &Store) -> Result<usize, SetupError> {
    let removed = remove_from_goto(client, &[]).await?;
    store.set_setting(Setting::WebhookPath, "").await?;
    store.set_setting(Setting::WebhookCallback, "").await?;
    Ok(removed)
}
