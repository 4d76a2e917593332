//! The hosted pages: the registration form (`/r/{webinarKey}`), the confirmation page a
//! plain form post ends on, and the embed script.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use g2w_goto::WebinarKey;

use crate::cache::Lookup;
use crate::http::client::Client;
use crate::organizers::Organizers;
use crate::state::{Shared, Visitors};

/// `GET /r/{webinarKey}`: the hosted registration form.
pub(crate) async fn hosted_form(
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    State(visitors): State<Arc<Visitors>>,
    client: Client,
    Path(webinar): Path<String>,
    headers: HeaderMap,
) -> Response {
    let brand = &shared.config.brand;
    let not_found = || {
        crate::pages::problem(
            brand,
            StatusCode::NOT_FOUND,
            "Webinar not found",
            vec!["This registration link is not valid (or the webinar was cancelled).".to_owned()],
            None,
        )
    };
    let Ok(key) = webinar.parse::<WebinarKey>() else {
        return not_found();
    };
    let costs_nothing = organizers
        .all()
        .iter()
        .any(|o| o.webinars.costs_nothing(key));
    if !costs_nothing && !visitors.lookups.allow(client.ip) {
        return crate::pages::problem(
            brand,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            vec!["Please wait a minute and try again.".to_owned()],
            Some(crate::pages::Back::new(format!("/r/{key}"), "Try again")),
        );
    }
    match organizers
        .find(key, shared.config.lookup_deadline)
        .await
        .lookup
    {
        Lookup::Found(info) if info.is_over((shared.clock)()) => crate::pages::problem(
            brand,
            StatusCode::GONE,
            &info.detail.subject,
            vec!["This webinar is over; registration is closed.".to_owned()],
            None,
        ),
        Lookup::Found(info) => crate::pages::cached_form(
            brand,
            &info,
            headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        ),
        Lookup::NotFound => not_found(),
        Lookup::Unavailable(why) => {
            tracing::warn!(%key, "cannot show the form: {why}");
            crate::pages::problem(
                brand,
                StatusCode::SERVICE_UNAVAILABLE,
                "Registration is unavailable",
                vec!["Please try again in a few minutes.".to_owned()],
                Some(crate::pages::Back::new(format!("/r/{key}"), "Try again")),
            )
        }
    }
}

/// `GET /favicon.ico`: nothing to show, said without a 404 in every log.
pub(crate) async fn favicon() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /embed.js`.
pub(crate) async fn embed_js() -> Response {
    crate::pages::embed_js()
}

/// `GET /confirmation/{id}`: what a browser sees after a plain form post.
pub(crate) async fn confirmation(
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    Path(id): Path<String>,
) -> Response {
    let reg = shared.store.registration(&id).await.ok().flatten();
    // Name the webinar when the cache (or GoTo, briefly) can; the page works without.
    // Its organizer's cache (the registration names whose it is).
    let owner = reg
        .as_ref()
        .map(|r| organizers.named_or_first(&r.profile).clone());
    let webinar = match (reg.as_ref().map(|r| r.webinar_key), owner) {
        (Some(key), Some(o)) => match o.webinars.lookup(key, shared.config.lookup_deadline).await {
            Lookup::Found(info) => Some(info),
            _ => None,
        },
        _ => None,
    };
    crate::pages::confirmation(
        &shared.config.brand,
        webinar.as_deref().map(|i| &i.detail),
        reg.as_ref().map(|r| r.state),
        reg.and_then(|r| r.join_url),
    )
}
