//! GoTo's webhook API: secret keys, webhooks (an application's callback for one event)
//! and user subscriptions (a user's consent to have their events delivered). Callback
//! URLs are checked with a GET that must answer 200, as GoTo does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use serde_json::{Map, Value, json};

use super::Caller;
use crate::clock::{parse_iso, to_iso};
use crate::errors::{ApiResult, AppError};
use crate::events::{uuid_like, validate_callback};
use crate::shared::Shared;
use crate::state::{
    EventName, HookState, SecretKey, UserSubscription, Webhook, Webhooks, new_key, new_token,
};

/// A JSON array of objects; anything else is a 400 naming what was wrong.
fn objects(body: &Bytes) -> Result<Vec<Map<String, Value>>, AppError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::validation(format!("Malformed JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(AppError::validation(
            "The request body must be a JSON array",
        ));
    };
    if items.is_empty() {
        return Err(AppError::validation("The request body must not be empty"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(map) => Ok(map),
            _ => Err(AppError::validation(format!("item {i} must be an object"))),
        })
        .collect()
}

/// A JSON array of strings (the keys a DELETE takes).
fn keys(body: &Bytes) -> Result<Vec<String>, AppError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) if !items.is_empty() => items
            .into_iter()
            .map(|k| match k {
                Value::String(s) => Ok(s),
                other => Err(AppError::validation(format!("{other} is not a key"))),
            })
            .collect(),
        Ok(_) => Err(AppError::validation(
            "The request body must be a non-empty JSON array of keys",
        )),
        Err(e) => Err(AppError::validation(format!("Malformed JSON: {e}"))),
    }
}

fn text<'a>(item: &'a Map<String, Value>, name: &str, i: usize) -> Result<&'a str, AppError> {
    match item.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(AppError::validation(format!(
            "item {i}: {name} must be a non-empty string"
        ))),
        None => Err(AppError::validation(format!(
            "item {i}: {name} is required"
        ))),
    }
}

fn optional_text<'a>(
    item: &'a Map<String, Value>,
    name: &str,
    i: usize,
) -> Result<Option<&'a str>, AppError> {
    item.get(name).map(|_| text(item, name, i)).transpose()
}

fn state_of(
    item: &Map<String, Value>,
    name: &str,
    i: usize,
) -> Result<Option<HookState>, AppError> {
    optional_text(item, name, i)?
        .map(|s| {
            HookState::parse(s).ok_or_else(|| {
                AppError::validation(format!("item {i}: {name} must be ACTIVE or INACTIVE"))
            })
        })
        .transpose()
}

fn require_product(q: &HashMap<String, String>) -> Result<(), AppError> {
    match q.get("product").map(String::as_str) {
        Some("g2w") => Ok(()),
        Some(other) => Err(AppError::validation(format!(
            "product {other:?} is not supported; use g2w"
        ))),
        None => Err(AppError::validation("product is required")),
    }
}

async fn check_callbacks(shared: &Shared, urls: &[String]) -> Result<(), AppError> {
    for url in urls {
        validate_callback(shared, url)
            .await
            .map_err(AppError::validation)?;
    }
    Ok(())
}

fn webhook_json(h: &Webhook) -> Value {
    json!({
        "callbackUrl": h.callback_url,
        "eventName": h.event_name.as_str(),
        "eventVersion": h.event_version,
        "product": "g2w",
        "webhookKey": h.key,
        "state": h.state.as_str(),
        "createTime": to_iso(h.created_at),
    })
}

fn subscription_json(hooks: &Webhooks, s: &UserSubscription) -> Value {
    let hook = hooks.hooks.get(&s.webhook_key);
    let active = s.state == HookState::Active && hook.is_some_and(|h| h.state == HookState::Active);
    json!({
        "callbackUrl": s.callback_url.clone().or_else(|| hook.map(|h| h.callback_url.clone())),
        "eventName": hook.map(|h| h.event_name.as_str()),
        "eventVersion": hook.map(|h| h.event_version.clone()),
        "product": "g2w",
        "webhookKey": s.webhook_key,
        "userSubscriptionKey": s.key,
        "userSubscriptionState": s.state.as_str(),
        "activationState": if active { "ACTIVE" } else { "INACTIVE" },
        "createTime": to_iso(s.created_at),
    })
}

/// `POST /webhooks/secretkey`.
pub(crate) async fn create_secret(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult {
    let body = super::json_object(&body)?;
    let now = shared.clock.now();
    let valid_from = match body.get("validFrom") {
        None => now,
        Some(Value::String(s)) => parse_iso(s)
            .ok_or_else(|| AppError::validation("validFrom is not an ISO 8601 date-time"))?,
        Some(_) => return Err(AppError::validation("validFrom must be a string")),
    };
    let key = SecretKey {
        id: new_key(),
        client_id: caller.client_id.clone(),
        value: new_token(),
        valid_from,
    };
    let answer = json!({"id": key.id, "value": key.value, "validFrom": to_iso(valid_from)});
    shared.state().webhooks.secrets.push(key);
    Ok(Json(answer).into_response())
}

/// `POST /webhooks`: new webhooks, INACTIVE until a `PUT` activates them.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult {
    let items = objects(&body)?;
    let mut new = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = text(item, "eventName", i)?;
        let Some(event) = EventName::parse(name) else {
            return Err(AppError::validation(format!(
                "item {i}: eventName {name:?} is not one of {}",
                EventName::ALL.map(EventName::as_str).join(", ")
            )));
        };
        if text(item, "eventVersion", i)? != "1.0.0" {
            return Err(AppError::validation(format!(
                "item {i}: eventVersion must be 1.0.0"
            )));
        }
        if text(item, "product", i)? != "g2w" {
            return Err(AppError::validation(format!(
                "item {i}: product must be g2w"
            )));
        }
        new.push((text(item, "callbackUrl", i)?.to_owned(), event));
    }
    let urls: Vec<String> = new.iter().map(|(u, _)| u.clone()).collect();
    check_callbacks(&shared, &urls).await?;
    let now = shared.clock.now();
    let mut world = shared.state();
    let created: Vec<Value> = new
        .into_iter()
        .map(|(callback_url, event_name)| {
            let hook = Webhook {
                key: uuid_like(),
                client_id: caller.client_id.clone(),
                callback_url,
                event_name,
                event_version: "1.0.0".into(),
                state: HookState::Inactive,
                created_at: now,
            };
            let shown = webhook_json(&hook);
            world.webhooks.hooks.insert(hook.key.clone(), hook);
            shown
        })
        .collect();
    Ok(Json(json!({"_embedded": {"webhooks": created}})).into_response())
}

/// `PUT /webhooks`: a new callback or state for each listed webhook.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult {
    let items = objects(&body)?;
    let mut changes = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = text(item, "webhookKey", i)?.to_owned();
        let url = optional_text(item, "callbackUrl", i)?.map(str::to_owned);
        let state = state_of(item, "state", i)?;
        if url.is_none() && state.is_none() {
            return Err(AppError::validation(format!(
                "item {i}: give callbackUrl or state"
            )));
        }
        changes.push((key, url, state));
    }
    {
        let world = shared.state();
        for (key, ..) in &changes {
            if !world.webhooks.hook_of(key, &caller.client_id) {
                return Err(AppError::not_found("Webhook"));
            }
        }
    }
    let urls: Vec<String> = changes.iter().filter_map(|(_, u, _)| u.clone()).collect();
    check_callbacks(&shared, &urls).await?;
    let mut world = shared.state();
    for (key, url, state) in changes {
        if let Some(h) = world.webhooks.hooks.get_mut(&key) {
            if let Some(url) = url {
                h.callback_url = url;
            }
            if let Some(state) = state {
                h.state = state;
            }
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /webhooks?product=g2w`: the application's webhooks.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    require_product(&q)?;
    let world = shared.state();
    let hooks: Vec<Value> = world
        .webhooks
        .hooks
        .values()
        .filter(|h| h.client_id == caller.client_id)
        .map(webhook_json)
        .collect();
    Ok(Json(json!({"_embedded": {"webhooks": hooks}})).into_response())
}

/// `GET /webhooks/{key}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> ApiResult {
    let world = shared.state();
    match world.webhooks.hooks.get(&key) {
        Some(h) if h.client_id == caller.client_id => Ok(Json(webhook_json(h)).into_response()),
        _ => Err(AppError::not_found("Webhook")),
    }
}

/// `DELETE /webhooks` with a JSON array of keys; their subscriptions go with them.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult {
    let keys = keys(&body)?;
    let mut world = shared.state();
    let hooks = &mut world.webhooks;
    if let Some(missing) = keys.iter().find(|k| !hooks.hook_of(k, &caller.client_id)) {
        return Err(AppError::not_found(&format!("Webhook {missing}")));
    }
    for key in &keys {
        hooks.hooks.remove(key);
    }
    hooks
        .subscriptions
        .retain(|_, s| !keys.contains(&s.webhook_key));
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /userSubscriptions`: the calling user subscribes to webhooks.
pub(crate) async fn subscribe(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult {
    let items = objects(&body)?;
    let mut new = Vec::new();
    for (i, item) in items.iter().enumerate() {
        new.push((
            text(item, "webhookKey", i)?.to_owned(),
            optional_text(item, "callbackUrl", i)?.map(str::to_owned),
            state_of(item, "userSubscriptionState", i)?.unwrap_or(HookState::Active),
        ));
    }
    {
        let world = shared.state();
        if let Some((missing, ..)) = new
            .iter()
            .find(|(k, ..)| !world.webhooks.hooks.contains_key(k))
        {
            return Err(AppError::not_found(&format!("Webhook {missing}")));
        }
    }
    let urls: Vec<String> = new.iter().filter_map(|(_, u, _)| u.clone()).collect();
    check_callbacks(&shared, &urls).await?;
    let now = shared.clock.now();
    let mut world = shared.state();
    let mut created = Vec::new();
    for (webhook_key, callback_url, state) in new {
        let sub = UserSubscription {
            key: uuid_like(),
            webhook_key,
            organizer_key: caller.organizer_key,
            callback_url,
            state,
            created_at: now,
        };
        created.push(subscription_json(&world.webhooks, &sub));
        world.webhooks.subscriptions.insert(sub.key.clone(), sub);
    }
    Ok(Json(json!({"_embedded": {"userSubscriptions": created}})).into_response())
}

/// `PUT /userSubscriptions`.
pub(crate) async fn update_subscriptions(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult {
    let items = objects(&body)?;
    let mut changes = Vec::new();
    for (i, item) in items.iter().enumerate() {
        text(item, "webhookKey", i)?;
        changes.push((
            text(item, "userSubscriptionKey", i)?.to_owned(),
            optional_text(item, "callbackUrl", i)?.map(str::to_owned),
            state_of(item, "userSubscriptionState", i)?,
        ));
    }
    {
        let world = shared.state();
        if let Some((missing, ..)) = changes
            .iter()
            .find(|(k, ..)| !world.webhooks.subscription_of(k, caller.organizer_key))
        {
            return Err(AppError::not_found(&format!("User subscription {missing}")));
        }
    }
    let urls: Vec<String> = changes.iter().filter_map(|(_, u, _)| u.clone()).collect();
    check_callbacks(&shared, &urls).await?;
    let mut world = shared.state();
    for (key, url, state) in changes {
        if let Some(s) = world.webhooks.subscriptions.get_mut(&key) {
            if url.is_some() {
                s.callback_url = url;
            }
            if let Some(state) = state {
                s.state = state;
            }
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /userSubscriptions?product=g2w`: the calling user's subscriptions.
pub(crate) async fn subscriptions(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    require_product(&q)?;
    let world = shared.state();
    let subs: Vec<Value> = world
        .webhooks
        .subscriptions
        .values()
        .filter(|s| s.organizer_key == caller.organizer_key)
        .map(|s| subscription_json(&world.webhooks, s))
        .collect();
    Ok(Json(json!({"_embedded": {"userSubscriptions": subs}})).into_response())
}

/// `GET /userSubscriptions/{key}`.
pub(crate) async fn subscription(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> ApiResult {
    let world = shared.state();
    match world.webhooks.subscriptions.get(&key) {
        Some(s) if s.organizer_key == caller.organizer_key => {
            Ok(Json(subscription_json(&world.webhooks, s)).into_response())
        }
        _ => Err(AppError::not_found("User subscription")),
    }
}

/// `DELETE /userSubscriptions` with a JSON array of keys.
pub(crate) async fn unsubscribe(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult {
    let keys = keys(&body)?;
    let mut world = shared.state();
    let hooks = &mut world.webhooks;
    if let Some(missing) = keys
        .iter()
        .find(|k| !hooks.subscription_of(k, caller.organizer_key))
    {
        return Err(AppError::not_found(&format!("User subscription {missing}")));
    }
    for key in &keys {
        hooks.subscriptions.remove(key);
    }
    Ok(StatusCode::ACCEPTED.into_response())
}
