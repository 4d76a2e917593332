//! The Keys page: the API keys programs use this gateway's logins with (`g2w keys`), made
//! here too (shown once, on the page that made it), revoked after a second click, and the
//! record of what they did.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use g2w_goto::{ExposeSecret as _, Timestamp};

use super::{Admin, AdminForm, Layout, done, notice, render};
use crate::keys::{self, Scope};
use crate::organizers::Organizers;
use crate::state::{Console, Shared};

#[derive(Clone)]
struct KeyRow {
    name: String,
    prefix: String,
    organizers: String,
    scopes: String,
    created: String,
    last_used: String,
    expires: String,
    state: &'static str,
}

struct AuditRow {
    at: String,
    key: String,
    organizer: String,
    caller: String,
    what: String,
    status: u16,
}

/// A key just made, shown this once.
struct Made {
    name: String,
    key: String,
}

#[derive(Template)]
#[template(path = "admin_keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    audit: Vec<AuditRow>,
    organizers: Vec<String>,
    scopes: Vec<&'static str>,
    made: Option<Made>,
    /// The key a Revoke asks about, before it is revoked.
    confirm: Option<KeyRow>,
}

fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(
        || "—".to_owned(),
        |t| t.to_utc().format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Spans the page offers for a key's life, in days (0: until revoked).
const LIVES: [u64; 4] = [0, 30, 90, 365];

async fn page(
    shared: &Shared,
    organizers: &Organizers,
    layout: Layout,
    made: Option<Made>,
    confirm: Option<&str>,
) -> Response {
    let now = shared.now();
    let since = Timestamp::from_secs(now.as_secs() - 7 * 86_400);
    let read = async {
        Ok::<_, g2w_store::StoreError>((
            shared.store.keys().await?,
            shared.store.key_audit(None, since, 100).await?,
        ))
    };
    let (stored, audited) = match read.await {
        Ok(both) => both,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The keys cannot be read: {e}"),
            )
                .into_response();
        }
    };
    let rows: Vec<KeyRow> = stored
        .iter()
        .map(|k| KeyRow {
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            organizers: k.organizers.join(", "),
            scopes: k.scopes.join(", "),
            created: when(Some(k.created_at)),
            last_used: when(k.last_used_at),
            expires: when(k.expires_at),
            state: keys::state(k, now),
        })
        .collect();
    let confirm = confirm.and_then(|prefix| {
        stored
            .iter()
            .position(|k| k.prefix == prefix)
            .and_then(|i| rows.get(i))
            .cloned()
    });
    let audit = audited
        .into_iter()
        .map(|e| AuditRow {
            at: when(Some(e.at)),
            what: match (&e.method, &e.path) {
                (Some(m), Some(p)) => format!("{m} {p}"),
                _ => format!(
                    "token {} (until {})",
                    e.token_fingerprint.unwrap_or_default(),
                    when(e.token_expires_at)
                ),
            },
            key: format!("{} ({})", e.key_name, e.key_prefix),
            organizer: e.organizer,
            caller: e.caller,
            status: e.status,
        })
        .collect();
    let mut response = render(&KeysPage {
        layout,
        keys: rows,
        audit,
        organizers: organizers.all().iter().map(|o| o.profile.clone()).collect(),
        scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
        made,
        confirm,
    });
    // A page that may hold a key is kept by no cache.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

fn layout(csrf: String, notice: Option<String>) -> Layout {
    Layout {
        signed_in: true,
        active: "keys",
        csrf,
        notice,
    }
}

/// `GET /admin/keys`.
pub(crate) async fn keys_page(
    State(console): State<Arc<Console>>,
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    admin: Admin,
) -> Response {
    let shown = notice(&console, &admin.csrf);
    page(&shared, &organizers, layout(admin.csrf, shown), None, None).await
}

/// `POST /admin/keys`: makes a key and shows it, once.
pub(crate) async fn create(
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    AdminForm { csrf, fields }: AdminForm<BTreeMap<String, String>>,
) -> Response {
    let ticked = |name: &str| fields.get(name).is_some_and(|v| !v.is_empty());
    let chosen: Vec<String> = organizers
        .all()
        .iter()
        .map(|o| o.profile.clone())
        .filter(|p| ticked(&format!("organizer:{p}")))
        .collect();
    let scopes: Vec<Scope> = Scope::ALL
        .into_iter()
        .filter(|s| ticked(&format!("scope:{}", s.as_str())))
        .collect();
    let days = fields
        .get("expires_days")
        .and_then(|d| d.parse::<u64>().ok())
        .filter(|d| LIVES.contains(d))
        .unwrap_or(0);
    let now = shared.now();
    let expires =
        (days > 0).then(|| Timestamp::from_secs(now.as_secs() + (days * 86_400).cast_signed()));
    let name = fields.get("name").map_or("", |n| n.trim());
    match keys::create(&shared.store, name, &chosen, &scopes, expires, now).await {
        Ok(made) => {
            let shown = Made {
                name: made.record.name.clone(),
                key: made.key.expose_secret().to_owned(),
            };
            let notice = format!(
                "Key {} made. Copy it now: it is shown this once.",
                made.record.name
            );
            page(
                &shared,
                &organizers,
                layout(csrf, Some(notice)),
                Some(shown),
                None,
            )
            .await
        }
        Err(why) => {
            let notice = format!("No key made: {why}.");
            let mut refused =
                page(&shared, &organizers, layout(csrf, Some(notice)), None, None).await;
            *refused.status_mut() = StatusCode::BAD_REQUEST;
            refused
        }
    }
}

/// `POST /admin/keys/{prefix}/revoke`: asks first; revokes when the answer says so.
pub(crate) async fn revoke(
    State(console): State<Arc<Console>>,
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    Path(prefix): Path<String>,
    AdminForm { csrf, fields }: AdminForm<BTreeMap<String, String>>,
) -> Response {
    if fields.get("confirm").map(String::as_str) != Some("yes") {
        return page(
            &shared,
            &organizers,
            layout(csrf, None),
            None,
            Some(&prefix),
        )
        .await;
    }
    let notice = match shared.store.revoke_key(&prefix, shared.now()).await {
        Ok(Some(k)) => format!(
            "Key {} ({}) is revoked: every gateway on this store refuses it now.",
            k.name, k.prefix
        ),
        Ok(None) => "No such key.".to_owned(),
        Err(e) => format!("Could not revoke: {e}"),
    };
    done(&console, &csrf, "/admin/keys", notice)
}
