//! The console's pages: tokens (with "Refresh now"), upcoming webinars with their
//! links and snippets, and the outbox's failures with Retry and Discard.

use super::*;

/// `GET /admin/outbox`.
#[derive(serde::Deserialize)]
pub(crate) struct OutboxQuery {
    email: Option<String>,
}

/// One organizer's login, as the tokens page shows it.
struct TokenView {
    profile: String,
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

#[derive(Template)]
#[template(path = "admin_tokens.html")]
struct TokensPage {
    layout: Layout,
    /// Whether more than one organizer is served (each is then named).
    several: bool,
    organizers: Vec<TokenView>,
}

fn when(ts: Option<g2w_goto::Timestamp>) -> String {
    ts.map_or_else(
        || "-".to_owned(),
        |t| t.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

async fn token_view(o: &Organizer) -> TokenView {
    let tokens = o.client.tokens();
    let record = tokens.record().await.ok();
    let now = tokens.now();
    let connected = record.as_ref().is_some_and(|r| {
        r.access_token.is_some() || r.refresh_token.is_some() || r.personal_access_token.is_some()
    });
    let r = record.unwrap_or_default();
    TokenView {
        profile: o.profile.clone(),
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
        delivery: o
            .worker
            .paused()
            .map_or_else(|| "running".into(), |p| format!("paused: {p}")),
    }
}

/// `GET /admin/tokens`: every organizer's login.
pub(crate) async fn tokens(
    State(organizers): State<Organizers>,
    State(console): State<Arc<Console>>,
    admin: Admin,
) -> Response {
    let shown = notice(&console, &admin.csrf);
    let mut views = Vec::new();
    for o in organizers.all() {
        views.push(token_view(o).await);
    }
    render(&TokensPage {
        layout: Layout {
            signed_in: true,
            active: "tokens",
            csrf: admin.csrf,
            notice: shown,
        },
        several: organizers.several(),
        organizers: views,
    })
}

/// A console form naming an organizer (its profile); the first one when it names none.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct OrganizerField {
    #[serde(default)]
    pub(crate) organizer: String,
}

/// `POST /admin/tokens/refresh`: "Refresh now", for one organizer.
pub(crate) async fn refresh(
    State(organizers): State<Organizers>,
    State(console): State<Arc<Console>>,
    AdminForm { csrf, fields }: AdminForm<OrganizerField>,
) -> Response {
    let o = organizers.named_or_first(&fields.organizer);
    let notice = match o.client.tokens().force_refresh().await {
        Ok(r) => format!(
            "Refreshed{}: the access token is valid until {}.",
            whose(&organizers, o),
            when(r.access_expires_at)
        ),
        Err(e) => format!("The refresh failed{}: {e}", whose(&organizers, o)),
    };
    done(&console, &csrf, "/admin/tokens", notice)
}

/// `POST /admin/organizers/disconnect`: forgets one organizer's tokens (its OAuth
/// client stays, so connecting again is one click). Its registrations are held,
/// queued, until it is connected again; the others flow on.
pub(crate) async fn disconnect(
    State(organizers): State<Organizers>,
    State(console): State<Arc<Console>>,
    AdminForm { csrf, fields }: AdminForm<OrganizerField>,
) -> Response {
    let o = organizers.named_or_first(&fields.organizer);
    let tokens = o.client.tokens();
    let notice = match tokens.record().await {
        Ok(mut record) => {
            record.access_token = None;
            record.access_expires_at = None;
            record.refresh_token = None;
            record.refresh_token_since = None;
            record.personal_access_token = None;
            record.reauthorization_required = Some("disconnected in the admin console".to_owned());
            match tokens.save(&record).await {
                Ok(()) => format!(
                    "Disconnected{}. Its registrations wait, queued, until it is connected again.",
                    whose(&organizers, o)
                ),
                Err(e) => format!("Could not disconnect: {e}"),
            }
        }
        Err(e) => format!("Could not disconnect: {e}"),
    };
    done(&console, &csrf, "/admin/tokens", notice)
}

/// " (organizer PROFILE)" when several are served, so a notice says whose it was.
pub(crate) fn whose(organizers: &Organizers, o: &Organizer) -> String {
    if organizers.several() {
        format!(" (organizer {})", o.profile)
    } else {
        String::new()
    }
}

/// A webinar's registrants as people should read it: GoTo's count as of the cache's
/// last look, plus what g2w delivered since (the true count, unless someone registered
/// elsewhere in between, which the words then say).
async fn registrant_count(
    shared: &Shared,
    key: g2w_goto::WebinarKey,
    info: &crate::cache::WebinarInfo,
) -> String {
    let Some(goto) = info.detail.number_of_registrants else {
        return "-".into();
    };
    let since = shared
        .store
        .delivered_since(key.get(), info.fetched_at)
        .await
        .unwrap_or(0);
    let age = shared.now().since(info.fetched_at).as_secs();
    if age < 60 && since == 0 {
        goto.to_string()
    } else {
        format!(
            "{} (GoTo's {goto} as of {} min ago, and {since} delivered by g2w since)",
            goto + since,
            age / 60
        )
    }
}

struct WebinarRow {
    organizer: String,
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
    /// Whether more than one organizer is served (a column then names whose).
    several: bool,
    webinars: Vec<WebinarRow>,
}

/// `GET /admin/webinars`: every organizer's, soonest first.
pub(crate) async fn webinars(
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    ConsoleOrigin(origin): ConsoleOrigin,
    Admin { csrf }: Admin,
) -> Response {
    let deadline = shared.config.lookup_deadline;
    let (mut list, errors) = organizers.upcoming(deadline).await;
    let error =
        (!errors.is_empty()).then(|| format!("Cannot list webinars: {}", errors.join("; ")));
    list.sort_by_key(|(_, w)| (w.times.first().map(|t| t.start_time), w.webinar_key));
    let mut rows = Vec::with_capacity(list.len());
    for (organizer, w) in &list {
        let registrants = match organizer.webinars.lookup(w.webinar_key, deadline).await {
            crate::cache::Lookup::Found(info) => {
                registrant_count(&shared, w.webinar_key, &info).await
            }
            _ => "-".into(),
        };
        let zone = g2w_goto::WebinarZone::named(w.time_zone.as_deref());
        rows.push(WebinarRow {
            organizer: organizer.profile.clone(),
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
        several: organizers.several(),
        webinars: rows,
    })
}

struct OutboxRow {
    /// The profile of the organizer whose webinar it is.
    organizer: String,
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
    several: bool,
    counts: Vec<(String, u64)>,
    email: String,
    heading: String,
    rows: Vec<OutboxRow>,
}

async fn outbox_page(
    shared: &Shared,
    several: bool,
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
        several,
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
                organizer: r.profile,
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
    State(organizers): State<Organizers>,
    State(console): State<Arc<Console>>,
    Query(q): Query<OutboxQuery>,
    admin: Admin,
) -> Response {
    let shown = notice(&console, &admin.csrf);
    outbox_page(&shared, organizers.several(), admin.csrf, q.email, shown).await
}

/// `POST /admin/outbox/{id}/retry` and `…/discard`.
pub(crate) async fn outbox_action(
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
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
            organizers.wake_all();
            format!("Registration {id} will be delivered again.")
        }
        (Ok(true), false) => format!("Registration {id} was discarded."),
        (Ok(false), _) => format!("Registration {id} is not failed or dead (any more)."),
        (Err(e), _) => format!("The outbox could not be changed: {e}"),
    };
    done(&console, &csrf, "/admin/outbox", notice)
}
