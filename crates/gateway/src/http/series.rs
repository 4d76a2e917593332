//! One form for a series: `/r/series/{recurrenceKey}` lists the dates that still take
//! registrations; the visitor picks one and registers for that date's webinar, with
//! or without script.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use g2w_goto::RecurrenceKey;

use super::client::Client;
use crate::intake::{Intake, Target};
use crate::organizers::Organizers;
use crate::pages::{Back, SeriesChoice};
use crate::state::{Shared, Visitors};

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"))
}

/// `GET /r/series/{recurrenceKey}`: the series' form.
pub(crate) async fn form(
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    State(visitors): State<Arc<Visitors>>,
    client: Client,
    Path(series): Path<String>,
) -> Response {
    let brand = &shared.config.brand;
    let Ok(recurrence) = series.parse::<RecurrenceKey>() else {
        return no_dates(&shared);
    };
    // Renewing the list and its forms is a lookup like any other.
    let listed = organizers
        .all()
        .iter()
        .all(|o| o.webinars.held_upcoming().is_some());
    if !listed && !visitors.lookups.allow(client.ip) {
        return crate::pages::problem(
            brand,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            vec!["Please wait a minute and try again.".to_owned()],
            Some(Back::new(format!("/r/series/{recurrence}"), "Try again")),
        );
    }
    match organizers
        .series(recurrence, shared.config.lookup_deadline, || {
            visitors.lookups.allow(client.ip)
        })
        .await
    {
        Ok(dates) if dates.is_empty() => no_dates(&shared),
        Ok(dates) => crate::pages::series_form(
            brand,
            &SeriesChoice {
                recurrence,
                dates: &dates,
                chosen: None,
            },
            None,
        ),
        Err(why) => {
            tracing::warn!(%recurrence, "cannot show the series form: {why}");
            crate::pages::problem(
                brand,
                StatusCode::SERVICE_UNAVAILABLE,
                "Registration is unavailable",
                vec!["Please try again in a few minutes.".to_owned()],
                Some(Back::new(format!("/r/series/{recurrence}"), "Try again")),
            )
        }
    }
}

fn no_dates(shared: &Shared) -> Response {
    crate::pages::problem(
        &shared.config.brand,
        StatusCode::NOT_FOUND,
        "No dates to register for",
        vec![
            "This series has no upcoming dates that take registrations (or the link is not valid)."
                .to_owned(),
        ],
        None,
    )
}

/// `POST /r/series/{recurrenceKey}`: the form's post, plain (pages) or from its script
/// (JSON).
pub(crate) async fn register(
    state: Intake,
    client: Client,
    Path(series): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let html = !is_json(&headers);
    super::register::submit(
        &state,
        client,
        Target::Series(&series),
        &headers,
        &body,
        html,
    )
    .await
}
