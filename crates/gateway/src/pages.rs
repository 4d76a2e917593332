//! The pages people see: the hosted registration form (`/r/{webinarKey}`), built from the
//! webinar's own fields and questions, and the confirmation page. Compile-time templates
//! with automatic escaping; no external assets, so the pages work on any network.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use g2w_goto::{QuestionType, RegistrationFields, WebinarDetail};

use crate::cache::RenderedPage;
use crate::config::Branding;
use crate::intake::{DATE_FIELD, FieldErrors, Submission};

pub(crate) const FORM_JS: &str = include_str!("../assets/form.js");
/// The script that embeds the form into other pages.
pub(crate) const EMBED_JS: &str = include_str!("../assets/embed.js");

/// One session's times.
pub(crate) struct SessionView {
    start: String,
    end: String,
    /// In the webinar's own zone, named: the same with and without script.
    text: String,
}

/// A webinar's sessions in its own time zone (the form's script adds the visitor's
/// time beside them when it differs).
fn sessions(detail: &WebinarDetail) -> Vec<SessionView> {
    let zone = g2w_goto::WebinarZone::named(detail.time_zone.as_deref());
    detail
        .times
        .iter()
        .map(|t| SessionView {
            start: t.start_time.to_rfc3339(),
            end: t.end_time.to_rfc3339(),
            text: zone.session(t.start_time, t.end_time),
        })
        .collect()
}

/// One date a visitor may pick on a series' form.
pub(crate) struct DateView {
    key: String,
    start: String,
    end: String,
    text: String,
    checked: bool,
}

/// A series' form: its open dates, and the one chosen in a refused submission.
pub(crate) struct SeriesChoice<'a> {
    pub recurrence: g2w_goto::RecurrenceKey,
    pub dates: &'a [crate::cache::SeriesDate],
    pub chosen: Option<g2w_goto::WebinarKey>,
}

/// A standard field.
pub(crate) struct InputView {
    name: String,
    label: String,
    required: bool,
    max: usize,
    kind: &'static str,
    autocomplete: &'static str,
    value: String,
    error: Option<String>,
    choices: Vec<String>,
}

/// A custom question; `answers` are (key, text, checked).
pub(crate) struct QuestionView {
    name: String,
    label: String,
    required: bool,
    max: usize,
    value: String,
    error: Option<String>,
    answers: Vec<(String, String, bool)>,
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage<'a> {
    brand: &'a Branding,
    subject: String,
    description: String,
    sessions: Vec<SessionView>,
    time_zone: String,
    /// Where the form posts without script: the form's own address, so a refused post
    /// shows the form again where the visitor was.
    action: String,
    /// Where the script posts (JSON).
    api: String,
    summary: Vec<(String, String)>,
    /// A series' dates to pick from (empty on a single webinar's form).
    dates: Vec<DateView>,
    date_error: Option<String>,
    /// The date whose questions are shown, for a series' form.
    form_of: String,
    fields: Vec<InputView>,
    questions: Vec<QuestionView>,
    script: &'a str,
}

#[derive(Template)]
#[template(path = "confirmation.html")]
struct ConfirmationPage<'a> {
    brand: &'a Branding,
    /// The webinar's subject and sessions, when known.
    subject: Option<String>,
    sessions: Vec<SessionView>,
    heading: &'a str,
    already: bool,
    join_url: Option<String>,
    message: &'a str,
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage<'a> {
    brand: &'a Branding,
    heading: &'a str,
    problems: Vec<String>,
    back: Option<Back>,
}

/// A link out of a problem page that leads somewhere (a plain link: no script needed).
#[derive(Debug, Clone)]
pub(crate) struct Back {
    href: String,
    label: &'static str,
}

impl Back {
    pub(crate) fn new(href: String, label: &'static str) -> Self {
        Self { href, label }
    }
}

/// A page listing problems (a broken submission, an unknown or past webinar), with a
/// link back when there is somewhere to go.
pub(crate) fn problem(
    brand: &Branding,
    status: StatusCode,
    heading: &str,
    problems: Vec<String>,
    back: Option<Back>,
) -> Response {
    render(
        status,
        &ProblemPage {
            brand,
            heading,
            problems,
            back,
        },
    )
}

fn label(field: &str) -> String {
    match field {
        "firstName" => "First name",
        "lastName" => "Last name",
        "email" => "Email",
        "organization" => "Organization",
        "jobTitle" => "Job title",
        "phone" => "Phone",
        "address" => "Address",
        "city" => "City",
        "state" => "State",
        "zipCode" => "ZIP / postal code",
        "country" => "Country",
        "industry" => "Industry",
        "numberOfEmployees" => "Number of employees",
        "purchasingTimeFrame" => "Purchasing time frame",
        "purchasingRole" => "Purchasing role",
        "questionsAndComments" => "Questions and comments",
        other => other,
    }
    .to_owned()
}

fn autocomplete(field: &str) -> &'static str {
    match field {
        "firstName" => "given-name",
        "lastName" => "family-name",
        "email" => "email",
        "organization" => "organization",
        "jobTitle" => "organization-title",
        "phone" => "tel",
        "address" => "street-address",
        "city" => "address-level2",
        "state" => "address-level1",
        "zipCode" => "postal-code",
        "country" => "country-name",
        _ => "",
    }
}

/// Whether an `Accept-Encoding` header takes gzip (and does not refuse it with `q=0`).
fn takes_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|v| {
        v.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

/// The hosted form of a cached webinar: rendered at its first view and kept with the
/// cache entry, gzipped for clients that take it.
pub(crate) fn cached_form(
    brand: &Branding,
    info: &crate::cache::WebinarInfo,
    accept_encoding: Option<&str>,
) -> Response {
    let rendered = info.page.get_or_init(|| {
        RenderedPage::of(form_html(brand, &info.detail, &info.form, None, None).unwrap_or_default())
    });
    if rendered.html.is_empty() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page unavailable").into_response();
    }
    let vary = (header::VARY, "accept-encoding");
    let html = (header::CONTENT_TYPE, "text/html; charset=utf-8");
    match &rendered.gzip {
        Some(gzip) if takes_gzip(accept_encoding) => (
            [html, vary, (header::CONTENT_ENCODING, "gzip")],
            gzip.clone(),
        )
            .into_response(),
        _ => ([html, vary], rendered.html.clone()).into_response(),
    }
}

/// Renders the form, with the values and errors of a refused submission if any.
pub(crate) fn form(
    brand: &Branding,
    detail: &WebinarDetail,
    form: &RegistrationFields,
    submitted: Option<(&Submission, &FieldErrors)>,
) -> Response {
    let status = if submitted.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    finish_form(status, form_html(brand, detail, form, submitted, None))
}

fn finish_form(status: StatusCode, html: Result<String, askama::Error>) -> Response {
    match html {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("page template failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "page unavailable").into_response()
        }
    }
}

/// A series' form: one set of fields and questions (those of `choice`'s first date),
/// and the dates to pick from; with the values and errors of a refused submission.
pub(crate) fn series_form(
    brand: &Branding,
    choice: &SeriesChoice<'_>,
    submitted: Option<(&Submission, &FieldErrors)>,
) -> Response {
    let Some(first) = choice.dates.first() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page unavailable").into_response();
    };
    let status = if submitted.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    finish_form(
        status,
        form_html(
            brand,
            &first.info.detail,
            &first.info.form,
            submitted,
            Some(choice),
        ),
    )
}

fn form_html(
    brand: &Branding,
    detail: &WebinarDetail,
    form: &RegistrationFields,
    submitted: Option<(&Submission, &FieldErrors)>,
    series: Option<&SeriesChoice<'_>>,
) -> Result<String, askama::Error> {
    let value = |name: &str| {
        submitted
            .and_then(|(s, _)| s.fields.get(name))
            .cloned()
            .unwrap_or_default()
    };
    // One sentence per problem, the same beside the field and in the summary.
    let sentence = |name: &str, message: &str| -> String {
        let message = message.trim_end_matches('.');
        if name == DATE_FIELD {
            return format!("“Date”: {message}.");
        }
        match name.strip_prefix("q_") {
            Some(key) => {
                let question = form
                    .questions
                    .iter()
                    .find(|q| q.question_key.to_string() == key)
                    .map_or(key, |q| q.question.as_str());
                format!("“{question}”: {message}.")
            }
            None => format!("{} {message}.", label(name)),
        }
    };
    let error = |name: &str| {
        submitted
            .and_then(|(_, e)| e.get(name))
            .map(|m| sentence(name, m))
    };
    // GoTo lists the three basic fields itself; make sure they come first and are required.
    let limit = |name: &str| crate::intake::field_limit(Some(form), name);
    let mut names: Vec<(String, bool, usize, Vec<String>)> = ["firstName", "lastName", "email"]
        .iter()
        .map(|n| ((*n).to_owned(), true, limit(n), Vec::new()))
        .collect();
    for f in &form.fields {
        if !names.iter().any(|(n, ..)| n == &f.field) {
            names.push((
                f.field.clone(),
                f.required,
                limit(&f.field),
                f.answers.clone(),
            ));
        }
    }
    let fields: Vec<InputView> = names
        .into_iter()
        .map(|(name, required, max, choices)| InputView {
            label: label(&name),
            kind: if name == "email" { "email" } else { "text" },
            autocomplete: autocomplete(&name),
            value: value(&name),
            error: error(&name),
            name,
            required,
            max,
            choices,
        })
        .collect();
    let questions: Vec<QuestionView> = form
        .questions
        .iter()
        .map(|q| {
            let name = format!("q_{}", q.question_key);
            let given = submitted
                .and_then(|(s, _)| s.answers.get(&q.question_key.to_string()))
                .cloned()
                .unwrap_or_default();
            QuestionView {
                label: q.question.clone(),
                required: q.required,
                max: crate::intake::answer_limit(q),
                error: error(&name),
                answers: if q.kind == QuestionType::MultipleChoice {
                    q.answers
                        .iter()
                        .map(|a| {
                            (
                                a.answer_key.to_string(),
                                a.answer.clone(),
                                given == a.answer_key.to_string(),
                            )
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                value: given,
                name,
            }
        })
        .collect();
    let summary: Vec<(String, String)> = submitted
        .map(|(_, errors)| {
            errors
                .iter()
                .map(|(name, message)| (name.clone(), sentence(name, message)))
                .collect()
        })
        .unwrap_or_default();
    let zone = g2w_goto::WebinarZone::named(detail.time_zone.as_deref());
    let (sessions, dates, action, api) = match series {
        None => (
            sessions(detail),
            Vec::new(),
            format!("/r/{}", detail.webinar_key),
            format!("/api/v1/webinars/{}/registrations", detail.webinar_key),
        ),
        Some(choice) => {
            let dates = choice
                .dates
                .iter()
                .filter_map(|date| {
                    let d = &date.info.detail;
                    let t = d.times.first()?;
                    Some(DateView {
                        checked: choice.chosen == Some(d.webinar_key),
                        key: d.webinar_key.to_string(),
                        start: t.start_time.to_rfc3339(),
                        end: t.end_time.to_rfc3339(),
                        text: zone.session(t.start_time, t.end_time),
                    })
                })
                .collect();
            // Both the plain post and the script's post go to the series' own address,
            // which registers for the date picked.
            let own = format!("/r/series/{}", choice.recurrence);
            (Vec::new(), dates, own.clone(), own)
        }
    };
    let page = FormPage {
        brand,
        subject: detail.subject.clone(),
        description: detail.description.clone().unwrap_or_default(),
        sessions,
        time_zone: zone.name().to_owned(),
        action,
        api,
        summary,
        date_error: error(DATE_FIELD),
        dates,
        form_of: detail.webinar_key.to_string(),
        fields,
        questions,
        script: FORM_JS,
    };
    page.render()
}

/// The confirmation page for a registration's state.
/// Whether `url` may be a link: GoTo's join URLs are `https:` (`http:` on the emulator);
/// anything else (`javascript:`, `data:`) from a broken or hostile upstream is not.
pub(crate) fn linkable(url: &str) -> bool {
    g2w_goto::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
}

pub(crate) fn confirmation(
    brand: &Branding,
    webinar: Option<&WebinarDetail>,
    state: Option<g2w_store::OutboxState>,
    join_url: Option<String>,
) -> Response {
    use g2w_store::OutboxState as S;
    let (heading, message) = match state {
        Some(S::Delivered | S::AlreadyRegistered) => (
            "You're registered",
            "Your confirmation email has the link to join.",
        ),
        Some(S::Failed | S::Dead) => (
            "Sorry",
            "We could not complete your registration. Please contact the organizer.",
        ),
        // Queued, or unknown (a honeypot answer looks the same).
        _ => (
            "Thank you!",
            "Your registration is being processed; the confirmation email with your link to join will arrive shortly.",
        ),
    };
    let page = ConfirmationPage {
        brand,
        subject: webinar.map(|w| w.subject.clone()),
        sessions: webinar.map(sessions).unwrap_or_default(),
        heading,
        already: state == Some(S::AlreadyRegistered),
        join_url: join_url
            .filter(|u| linkable(u))
            .filter(|_| matches!(state, Some(S::Delivered | S::AlreadyRegistered))),
        message,
    };
    render(StatusCode::OK, &page)
}

fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("page template failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "page unavailable").into_response()
        }
    }
}

/// `GET /embed.js`.
pub(crate) fn embed_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        EMBED_JS,
    )
        .into_response()
}
