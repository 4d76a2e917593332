//! The console's pages: tokens (with "Refresh now"), upcoming webinars with their
//! links and snippets, and the outbox's failures with Retry and Discard.

use super::*;

/// `GET /admin/outbox`.
#[derive(serde::Deserialize)]
pub(crate) struct OutboxQuery {
    email: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_tokens.html")]
struct TokensPage {
    layout: Layout,
    connected: bool,
    reauth: Option<String>,
    state: String,
    principal: String,
    organizer_key: String,
    access_expires: String,
    refresh_age: String,
    last_refresh: String,
    delivery: String,
}

fn when(ts: Option<g2w_goto::Timestamp>) -> String {
    ts.map_or_else(
        || "-".to_owned(),
        |t| t.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

async fn tokens_page(
    shared: &Shared,
    delivery: &Delivery,
    csrf: String,
    notice: Option<String>,
) -> Response {
    let tokens = shared.client.tokens();
    let record = tokens.record().await.ok();
    let now = tokens.now();
    let connected = record.as_ref().is_some_and(|r| {
        r.access_token.is_some() || r.refresh_token.is_some() || r.personal_access_token.is_some()
    });
    let r = record.unwrap_or_default();
    render(&TokensPage {
        layout: Layout {
            signed_in: true,
            active: "tokens",
            csrf,
            notice,
        },
        connected,
        reauth: r.reauthorization_required.clone(),
        state: r.state(now).replace('_', " "),
        principal: r.principal.clone().unwrap_or_else(|| "-".into()),
        organizer_key: r
            .organizer_key
            .map_or_else(|| "-".into(), |k| k.to_string()),
        access_expires: when(r.access_expires_at),
        refresh_age: r.refresh_token_since.map_or_else(
            || "-".into(),
            |t| {
                format!(
                    "{:.1} days (GoTo renews it near day 30)",
                    now.since(t).as_secs_f64() / 86_400.0
                )
            },
        ),
        last_refresh: when(r.last_refresh_at),
        delivery: delivery
            .worker
            .paused()
            .map_or_else(|| "running".into(), |p| format!("paused: {p}")),
    })
}

/// `GET /admin/tokens`.
pub(crate) async fn tokens(
    State(shared): State<Shared>,
    State(delivery): State<Delivery>,
    State(console): State<Arc<Console>>,
    admin: Admin,
) -> Response {
    let shown = notice(&console, &admin.csrf);
    tokens_page(&shared, &delivery, admin.csrf, shown).await
}

/// `POST /admin/tokens/refresh`: "Refresh now".
pub(crate) async fn refresh(
    State(shared): State<Shared>,
    State(console): State<Arc<Console>>,
    AdminForm { csrf, .. }: AdminForm,
) -> Response {
    let notice = match shared.client.tokens().force_refresh().await {
        Ok(r) => format!(
            "Refreshed: the access token is valid until {}.",
            when(r.access_expires_at)
        ),
        Err(e) => format!("The refresh failed: {e}"),
    };
    done(&console, &csrf, "/admin/tokens", notice)
}

struct WebinarRow {
    key: String,
    subject: String,
    start: String,
    registrants: String,
    snippet: String,
}

#[derive(Template)]
#[template(path = "admin_webinars.html")]
struct WebinarsPage {
    layout: Layout,
    error: Option<String>,
    webinars: Vec<WebinarRow>,
}

/// `GET /admin/webinars`.
pub(crate) async fn webinars(
    State(shared): State<Shared>,
    State(webinars): State<Arc<WebinarCache>>,
    ConsoleOrigin(origin): ConsoleOrigin,
    Admin { csrf }: Admin,
) -> Response {
    let deadline = shared.config.lookup_deadline;
    let (list, error) = match webinars.upcoming(deadline).await {
        Ok(l) => (l, None),
        Err(e) => (Arc::default(), Some(format!("Cannot list webinars: {e}"))),
    };
    let mut rows = Vec::with_capacity(list.len());
    for w in list.iter() {
        let registrants = match webinars.lookup(w.webinar_key, deadline).await {
            crate::cache::Lookup::Found(info) => {
                let count = info
                    .detail
                    .number_of_registrants
                    .map_or_else(|| "-".into(), |n| n.to_string());
                // The count is GoTo's as of the cache's last look: say how old it is.
                let age = shared.now().since(info.fetched_at).as_secs();
                if age < 60 {
                    count
                } else {
                    format!("{count} (as of {} min ago)", age / 60)
                }
            }
            _ => "-".into(),
        };
        let zone = g2w_goto::WebinarZone::named(w.time_zone.as_deref());
        rows.push(WebinarRow {
            key: w.webinar_key.to_string(),
            start: w
                .times
                .first()
                .map(|t| zone.short(t.start_time))
                .unwrap_or_default(),
            subject: w.subject.clone(),
            registrants,
            snippet: format!(
                "<div data-g2w-webinar=\"{}\"></div>\n<script src=\"{origin}/embed.js\" async></script>",
                w.webinar_key
            ),
        });
    }
    render(&WebinarsPage {
        layout: Layout {
            signed_in: true,
            active: "webinars",
            csrf,
            notice: None,
        },
        error,
        webinars: rows,
    })
}

struct OutboxRow {
    id: String,
    email: String,
    state: String,
    attempts: u32,
    note: String,
    retryable: bool,
}

#[derive(Template)]
#[template(path = "admin_outbox.html")]
struct OutboxPage {
    layout: Layout,
    counts: Vec<(String, u64)>,
    email: String,
    heading: String,
    rows: Vec<OutboxRow>,
}

async fn outbox_page(
    shared: &Shared,
    csrf: String,
    email: Option<String>,
    notice: Option<String>,
) -> Response {
    let email = email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    let s = &shared.store;
    let listed = async {
        let counts = s.registration_gauges().await?;
        let rows = match &email {
            Some(e) => s.list(None, Some(e), 200).await?,
            None => {
                let mut rows = s.list(Some(OutboxState::Failed), None, 100).await?;
                rows.extend(s.list(Some(OutboxState::Dead), None, 100).await?);
                rows
            }
        };
        Ok::<_, g2w_store::StoreError>((counts, rows))
    }
    .await;
    let (counts, rows) = match listed {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The outbox cannot be read: {e}"),
            )
                .into_response();
        }
    };
    render(&OutboxPage {
        layout: Layout {
            signed_in: true,
            active: "outbox",
            csrf,
            notice,
        },
        counts: vec![
            ("pending".to_owned(), counts.pending),
            ("delivering".to_owned(), counts.delivering),
            ("failed".to_owned(), counts.failed),
            ("dead".to_owned(), counts.dead),
        ],
        heading: match &email {
            Some(e) => format!("Registrations for {e}"),
            None => "Failed and dead registrations".to_owned(),
        },
        email: email.unwrap_or_default(),
        rows: rows
            .into_iter()
            .map(|r| OutboxRow {
                retryable: matches!(r.state, OutboxState::Failed | OutboxState::Dead),
                note: r
                    .join_url
                    .clone()
                    .or(r.last_error.clone())
                    .unwrap_or_default(),
                state: r.state.as_str().replace('_', " "),
                id: r.id,
                email: r.email,
                attempts: r.attempts,
            })
            .collect(),
    })
}

/// `GET /admin/outbox?email=`.
pub(crate) async fn outbox(
    State(shared): State<Shared>,
    State(console): State<Arc<Console>>,
    Query(q): Query<OutboxQuery>,
    admin: Admin,
) -> Response {
    let shown = notice(&console, &admin.csrf);
    outbox_page(&shared, admin.csrf, q.email, shown).await
}

/// `POST /admin/outbox/{id}/retry` and `…/discard`.
pub(crate) async fn outbox_action(
    State(shared): State<Shared>,
    State(delivery): State<Delivery>,
    State(console): State<Arc<Console>>,
    Path((id, action)): Path<(String, String)>,
    AdminForm { csrf, .. }: AdminForm,
) -> Response {
    let now = shared.now();
    let (target, retry) = (id.clone(), action == "retry");
    if !retry && action != "discard" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let changed = if retry {
        shared.store.retry(&target, now).await
    } else {
        shared.store.discard(&target).await
    };
    let notice = match (changed, retry) {
        (Ok(true), true) => {
            delivery.worker.wake();
            format!("Registration {id} will be delivered again.")
        }
        (Ok(true), false) => format!("Registration {id} was discarded."),
        (Ok(false), _) => format!("Registration {id} is not failed or dead (any more)."),
        (Err(e), _) => format!("The outbox could not be changed: {e}"),
    };
    done(&console, &csrf, "/admin/outbox", notice)
}
