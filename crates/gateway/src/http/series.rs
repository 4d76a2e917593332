//! One form for a series: `/r/series/{recurrenceKey}` lists the dates that still take
//! registrations; the visitor picks one and registers for that date's webinar, with
//! or without script.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use g2w_goto::{RecurrenceKey, WebinarKey};

use super::client::Client;
use super::register::{Intake, Refusal, Target, intake};
use crate::cache::SeriesDate;
use crate::error::ApiError;
use crate::intake::{FieldErrors, Submission};
use crate::metrics::IntakeOutcome;
use crate::organizers::Organizers;
use crate::pages::{Back, DATE_FIELD, FORM_OF_FIELD, SeriesChoice};
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
        .series(recurrence, shared.config.lookup_deadline)
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
    intake(
        &state,
        client,
        Target::Series(&series),
        &headers,
        &body,
        html,
    )
    .await
}

/// A date picked on a series' form, and the dates the form offered (none when GoTo
/// could not list them just now).
pub(super) struct Picked {
    pub recurrence: RecurrenceKey,
    pub webinar: WebinarKey,
    pub dates: Vec<SeriesDate>,
}

impl Picked {
    /// The series' form again with the picked date still chosen, for a submission a
    /// field of which was refused; `None` without the dates to offer.
    pub(super) fn page(
        &self,
        brand: &crate::config::Branding,
        submitted: (&Submission, &FieldErrors),
    ) -> Option<Response> {
        (!self.dates.is_empty()).then(|| {
            crate::pages::series_form(
                brand,
                &SeriesChoice {
                    recurrence: self.recurrence,
                    dates: &self.dates,
                    chosen: Some(self.webinar),
                },
                Some(submitted),
            )
        })
    }
}

/// Takes the picked date out of `submission`: one of the series' open dates. Answers
/// given to the questions of the date the form showed are moved to the picked date's
/// questions. While GoTo cannot list the dates, the date picked is taken as it is and
/// checked as any registration is while GoTo is away: a bad moment of GoTo's never
/// costs a registration.
///
/// # Errors
/// No date picked, or one the series does not offer (any more): the form again with
/// the problem (a page), or an API error.
pub(super) async fn choose(
    state: &Intake,
    series: &str,
    submission: &mut Submission,
    html: bool,
) -> Result<Picked, Refusal> {
    let picked = submission.fields.remove(DATE_FIELD).unwrap_or_default();
    let shown = submission.fields.remove(FORM_OF_FIELD).unwrap_or_default();
    let (picked, shown) = (picked.trim().parse::<WebinarKey>().ok(), shown.trim());
    let unknown = || {
        Refusal::api(
            IntakeOutcome::UnknownWebinar,
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such series"),
        )
    };
    let recurrence = series.parse::<RecurrenceKey>().map_err(|_| unknown())?;
    let dates = match state
        .organizers
        .series(recurrence, state.shared.config.lookup_deadline)
        .await
    {
        Ok(dates) if dates.is_empty() => return Err(unknown()),
        Ok(dates) => dates,
        Err(why) => {
            tracing::warn!(%recurrence, "the series' dates are unavailable: {why}");
            return match picked {
                Some(webinar) => Ok(Picked {
                    recurrence,
                    webinar,
                    dates: Vec::new(),
                }),
                None => Err(Refusal::api(
                    IntakeOutcome::Invalid,
                    ApiError::new(StatusCode::BAD_REQUEST, "validation", "pick a date"),
                )),
            };
        }
    };
    let key = |d: &SeriesDate| d.info.detail.webinar_key;
    let Some(date) = dates.iter().find(|d| Some(key(d)) == picked) else {
        let message = if picked.is_none() {
            "an answer is required"
        } else {
            "is not open for registration any more: please pick another"
        };
        let errors = FieldErrors::from([(DATE_FIELD.to_owned(), message.to_owned())]);
        let response = if html {
            crate::pages::series_form(
                &state.shared.config.brand,
                &SeriesChoice {
                    recurrence,
                    dates: &dates,
                    chosen: None,
                },
                Some((submission, &errors)),
            )
        } else {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "validation", "fields": errors})),
            )
                .into_response()
        };
        return Err(Refusal::new(IntakeOutcome::Invalid, response));
    };
    if let Some(form) = dates
        .iter()
        .find(|d| key(d).to_string() == shown && key(d) != key(date))
    {
        crate::intake::translate(submission, &form.info.form, &date.info.form);
    }
    Ok(Picked {
        recurrence,
        webinar: key(date),
        dates,
    })
}
