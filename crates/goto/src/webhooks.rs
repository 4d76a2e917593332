//! GoTo's webhooks: an application's callback per event, activated, plus the user's
//! subscription that lets that user's events through. `g2w webhooks setup` drives it.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{Call, GotoClient, decode, to_json};
use crate::error::Result;

/// The name of an event GoTo publishes. Names g2w does not know yet are kept as they
/// came ([`EventName::Other`]), so a new kind of event is stored and forwarded, not lost.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventName {
    /// Someone registered for a webinar.
    RegistrantAdded,
    /// A registrant joined a session.
    RegistrantJoined,
    /// A webinar was scheduled.
    WebinarCreated,
    /// A webinar's details changed.
    WebinarChanged,
    /// Any other name GoTo sends.
    Other(String),
}

impl EventName {
    /// The events g2w subscribes to, at version 1.0.0.
    pub const SUBSCRIBED: [Self; 4] = [
        Self::RegistrantAdded,
        Self::RegistrantJoined,
        Self::WebinarCreated,
        Self::WebinarChanged,
    ];

    /// The name as GoTo spells it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::RegistrantAdded => "registrant.added",
            Self::RegistrantJoined => "registrant.joined",
            Self::WebinarCreated => "webinar.created",
            Self::WebinarChanged => "webinar.changed",
            Self::Other(name) => name,
        }
    }

    /// The event GoTo calls `name`.
    #[must_use]
    pub fn parse(name: &str) -> Self {
        Self::SUBSCRIBED
            .into_iter()
            .find(|known| known.as_str() == name)
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for EventName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(|name| Self::parse(&name))
    }
}

/// Whether a webhook or a subscription lets events through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HookState {
    /// Events flow.
    Active,
    /// Events are held back.
    Inactive,
    /// A state g2w does not know, taken as not active.
    #[serde(other)]
    Unknown,
}

impl HookState {
    /// The state as GoTo spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// An application's webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Its key.
    pub webhook_key: String,
    /// Where events go.
    pub callback_url: String,
    /// Which event.
    pub event_name: EventName,
    /// Whether it lets events through.
    #[serde(default)]
    pub state: Option<HookState>,
    /// When it was made.
    #[serde(default)]
    pub create_time: Option<String>,
}

/// A user's subscription to a webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSubscription {
    /// Its key.
    pub user_subscription_key: String,
    /// The webhook.
    pub webhook_key: String,
    /// Which event.
    #[serde(default)]
    pub event_name: Option<EventName>,
    /// Where events go.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// Active only when both the webhook and the subscription are.
    #[serde(default)]
    pub activation_state: Option<HookState>,
}

/// A signing secret GoTo made.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecret {
    /// The secret's value.
    #[serde(deserialize_with = "secret")]
    pub value: secrecy::SecretString,
    /// From when GoTo signs with it.
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
}

fn secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<secrecy::SecretString, D::Error> {
    String::deserialize(d).map(secrecy::SecretString::from)
}

#[derive(Deserialize)]
struct Embedded<T> {
    #[serde(rename = "_embedded")]
    embedded: T,
}

#[derive(Deserialize)]
struct Hooks {
    #[serde(default)]
    webhooks: Vec<Webhook>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscriptions {
    #[serde(default)]
    user_subscriptions: Vec<UserSubscription>,
}

const WEBHOOKS: &str = "/G2W/rest/v2/webhooks";
const SUBSCRIPTIONS: &str = "/G2W/rest/v2/userSubscriptions";

impl GotoClient {
    async fn send_json(
        &self,
        method: Method,
        path: &str,
        value: &serde_json::Value,
    ) -> Result<Vec<u8>> {
        let (_, answer) = self
            .execute(Call::plain(method, path.to_owned(), Some(to_json(value)?)))
            .await?;
        Ok(answer)
    }

    /// A new signing secret for this application's events.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn create_webhook_secret(&self) -> Result<WebhookSecret> {
        let answer = self
            .send_json(Method::POST, &format!("{WEBHOOKS}/secretkey"), &json!({}))
            .await?;
        decode(&answer, "secretkey")
    }

    /// Creates one webhook per event (GoTo makes them inactive) at `callback_url`.
    /// GoTo checks the URL with a GET that must answer 200.
    ///
    /// # Errors
    /// [`GotoError::Invalid`] when GoTo refuses the URL.
    pub async fn create_webhooks(
        &self,
        callback_url: &str,
        events: &[EventName],
    ) -> Result<Vec<Webhook>> {
        let items: Vec<_> = events
            .iter()
            .map(|e| json!({"callbackUrl": callback_url, "eventName": e, "eventVersion": "1.0.0", "product": "g2w"}))
            .collect();
        let answer = self
            .send_json(Method::POST, WEBHOOKS, &json!(items))
            .await?;
        let hooks: Embedded<Hooks> = decode(&answer, "webhooks")?;
        Ok(hooks.embedded.webhooks)
    }

    /// Sets the state of webhooks.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn set_webhooks_state(&self, keys: &[String], state: HookState) -> Result<()> {
        let items: Vec<_> = keys
            .iter()
            .map(|k| json!({"webhookKey": k, "state": state.as_str()}))
            .collect();
        self.send_json(Method::PUT, WEBHOOKS, &json!(items)).await?;
        Ok(())
    }

    /// This application's webhooks.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        let hooks: Embedded<Hooks> = self
            .get(
                WEBHOOKS.to_owned(),
                vec![("product", "g2w".to_owned())],
                "webhooks",
            )
            .await?;
        Ok(hooks.embedded.webhooks)
    }

    /// Deletes webhooks (and so their subscriptions).
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn delete_webhooks(&self, keys: &[String]) -> Result<()> {
        self.send_json(Method::DELETE, WEBHOOKS, &json!(keys))
            .await?;
        Ok(())
    }

    /// Subscribes the logged-in user to webhooks, active at once.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn subscribe(&self, webhook_keys: &[String]) -> Result<Vec<UserSubscription>> {
        let items: Vec<_> = webhook_keys
            .iter()
            .map(|k| json!({"webhookKey": k, "userSubscriptionState": HookState::Active.as_str()}))
            .collect();
        let answer = self
            .send_json(Method::POST, SUBSCRIPTIONS, &json!(items))
            .await?;
        let subs: Embedded<Subscriptions> = decode(&answer, "userSubscriptions")?;
        Ok(subs.embedded.user_subscriptions)
    }

    /// The logged-in user's subscriptions.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn user_subscriptions(&self) -> Result<Vec<UserSubscription>> {
        let subs: Embedded<Subscriptions> = self
            .get(
                SUBSCRIPTIONS.to_owned(),
                vec![("product", "g2w".to_owned())],
                "userSubscriptions",
            )
            .await?;
        Ok(subs.embedded.user_subscriptions)
    }

    /// Ends subscriptions.
    ///
    /// # Errors
    /// [`GotoError`] as GoTo answered.
    pub async fn unsubscribe(&self, keys: &[String]) -> Result<()> {
        self.send_json(Method::DELETE, SUBSCRIPTIONS, &json!(keys))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip_and_unknown_ones_are_kept() {
        for known in EventName::SUBSCRIBED {
            assert_eq!(EventName::parse(known.as_str()), known);
        }
        let future = EventName::parse("webinar.deleted");
        assert_eq!(future, EventName::Other("webinar.deleted".into()));
        assert_eq!(future.to_string(), "webinar.deleted");
        let hook: Webhook = serde_json::from_value(json!({
            "webhookKey": "k", "callbackUrl": "https://x/", "eventName": "registrant.joined",
            "state": "SUSPENDED"
        }))
        .unwrap();
        assert_eq!(hook.event_name, EventName::RegistrantJoined);
        assert_eq!(
            hook.state,
            Some(HookState::Unknown),
            "an unknown state is not active"
        );
    }
}
