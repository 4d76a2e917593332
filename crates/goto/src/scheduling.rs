//! Webinars made, changed, cancelled and copied from g2w. Each change is first built
//! as a [`ScheduleCall`], so a dry run can print exactly what would be sent, and is
//! checked as GoTo checks it before anything leaves.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::client::{Call, GotoClient, ORGANIZER, decode, to_json};
use crate::error::Result;
use crate::keys::{OrganizerKey, RecurrenceKey, WebinarKey};
use crate::models::TimeRange;

/// GoTo's longest subject.
pub const SUBJECT_MAX: usize = 128;
/// GoTo's longest description.
pub const DESCRIPTION_MAX: usize = 2048;

/// How a webinar's times are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebinarType {
    /// One session (GoTo's default).
    SingleSession,
    /// Several dates, each its own webinar with its own registrants; one recurrence key.
    Series,
    /// Several sessions of one webinar; registrants attend them all.
    Sequence,
}

impl WebinarType {
    /// GoTo's name for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SingleSession => "single_session",
            Self::Series => "series",
            Self::Sequence => "sequence",
        }
    }
}

impl std::str::FromStr for WebinarType {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "single_session" => Ok(Self::SingleSession),
            "series" => Ok(Self::Series),
            "sequence" => Ok(Self::Sequence),
            other => Err(format!(
                "{other:?} is not a webinar type: single_session, series or sequence"
            )),
        }
    }
}

/// A new webinar (GoTo's `WebinarReqCreate`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebinarPlan {
    /// The title.
    pub subject: String,
    /// The description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its sessions (a series: one per date).
    pub times: Vec<TimeRange>,
    /// Its own time zone (IANA).
    pub time_zone: String,
    /// How its times are run.
    #[serde(rename = "type")]
    pub kind: WebinarType,
}

/// What changes on an existing webinar (GoTo's `WebinarReqUpdate`); `None` is kept.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebinarChanges {
    /// A new title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New times: they replace every session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<TimeRange>>,
    /// A new time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A copy of a webinar with new times (GoTo's `CopyWebinar`); `None` keeps the source's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebinarCopy {
    /// A new title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The copy's sessions.
    pub times: Vec<TimeRange>,
    /// Its time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// How its times are run.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<WebinarType>,
}

/// Why GoTo would refuse a change: every reason, so one run shows them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct NotSchedulable(pub Vec<String>);

/// The subject (when given: never empty, at most 128) and description (at most 2,048).
fn check_texts(problems: &mut Vec<String>, subject: Option<&str>, description: Option<&str>) {
    if subject.is_some_and(|t| t.trim().is_empty()) {
        problems.push("the subject is empty".to_owned());
    }
    for (name, text, max) in [
        ("subject", subject, SUBJECT_MAX),
        ("description", description, DESCRIPTION_MAX),
    ] {
        if let Some(n) = text.map(|t| t.chars().count()).filter(|n| *n > max) {
            problems.push(format!(
                "the {name} is {n} characters; GoTo takes at most {max}"
            ));
        }
    }
}

/// `zone`: the time zone the times were typed in, to speak of them in it (else UTC).
fn check_times(
    problems: &mut Vec<String>,
    times: &[TimeRange],
    kind: WebinarType,
    now: DateTime<Utc>,
    zone: Option<&str>,
) {
    let zone = zone.and_then(|z| crate::WebinarZone::parse(z).ok());
    if times.is_empty() {
        problems.push("no session: give a start and an end".to_owned());
    }
    for t in times {
        let when = match &zone {
            Some(zone) => zone.short(t.start_time),
            None => t.start_time.format("%Y-%m-%d %H:%M UTC").to_string(),
        };
        if t.end_time <= t.start_time {
            problems.push(format!("the session starting {when} ends before it starts"));
        }
        if t.start_time <= now {
            problems.push(format!("the session starting {when} is in the past"));
        }
    }
    match kind {
        WebinarType::SingleSession if times.len() > 1 => problems.push(format!(
            "{} sessions for a single_session webinar: use --type series (a webinar per date) \
             or --type sequence (one webinar, several sessions)",
            times.len()
        )),
        WebinarType::Series | WebinarType::Sequence if times.len() == 1 => {
            problems.push(format!("a {} needs at least two sessions", kind.as_str()))
        }
        _ => {}
    }
}

fn finish(problems: Vec<String>) -> std::result::Result<(), NotSchedulable> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(NotSchedulable(problems))
    }
}

impl WebinarPlan {
    /// Checks it as GoTo would, at `now`.
    ///
    /// # Errors
    /// Every reason GoTo would refuse it.
    pub fn check(&self, now: DateTime<Utc>) -> std::result::Result<(), NotSchedulable> {
        let mut problems = Vec::new();
        check_texts(
            &mut problems,
            Some(&self.subject),
            self.description.as_deref(),
        );
        check_times(
            &mut problems,
            &self.times,
            self.kind,
            now,
            Some(&self.time_zone),
        );
        finish(problems)
    }
}

impl WebinarChanges {
    /// Checks it as GoTo would, at `now`, for a webinar run as `kind`.
    ///
    /// # Errors
    /// Every reason GoTo would refuse it, including a change of nothing.
    pub fn check(
        &self,
        kind: WebinarType,
        now: DateTime<Utc>,
    ) -> std::result::Result<(), NotSchedulable> {
        self.check_in(kind, now, self.time_zone.as_deref())
    }

    /// [`Self::check`], speaking of times in `zone` (the webinar's own when the change
    /// keeps it).
    ///
    /// # Errors
    /// As [`Self::check`].
    pub fn check_in(
        &self,
        kind: WebinarType,
        now: DateTime<Utc>,
        zone: Option<&str>,
    ) -> std::result::Result<(), NotSchedulable> {
        let mut problems = Vec::new();
        if self.subject.is_none()
            && self.description.is_none()
            && self.times.is_none()
            && self.time_zone.is_none()
        {
            problems.push(
                "nothing to change: give --subject, --description, --start/--end or --time-zone"
                    .to_owned(),
            );
        }
        check_texts(
            &mut problems,
            self.subject.as_deref(),
            self.description.as_deref(),
        );
        if let Some(times) = &self.times {
            check_times(&mut problems, times, kind, now, zone);
        }
        finish(problems)
    }
}

impl WebinarCopy {
    /// Checks it as GoTo would, at `now`, for a copy of a webinar run as `source`.
    ///
    /// # Errors
    /// Every reason GoTo would refuse it.
    pub fn check(
        &self,
        source: WebinarType,
        now: DateTime<Utc>,
    ) -> std::result::Result<(), NotSchedulable> {
        let mut problems = Vec::new();
        check_texts(
            &mut problems,
            self.subject.as_deref(),
            self.description.as_deref(),
        );
        let kind = self.kind.unwrap_or(match source {
            // A copy of one date of a series is a webinar of its own.
            WebinarType::Series => WebinarType::SingleSession,
            other => other,
        });
        check_times(
            &mut problems,
            &self.times,
            kind,
            now,
            self.time_zone.as_deref(),
        );
        finish(problems)
    }
}

/// What a create or copy made: the (first) webinar, and the series when it is one.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduled {
    /// The new webinar (a series: its first date).
    pub webinar_key: WebinarKey,
    /// The series, when one was made.
    #[serde(default)]
    pub recurrence_key: Option<RecurrenceKey>,
}

/// One change to send to GoTo, complete: a dry run prints it, a real run sends it.
#[derive(Debug, Clone)]
pub struct ScheduleCall {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    /// It makes a webinar, so GoTo answers what it made and it is never sent twice.
    makes: bool,
}

fn json_body(value: &impl Serialize) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| crate::error::GotoError::Decode {
        path: "request".into(),
        message: e.to_string(),
    })
}

impl ScheduleCall {
    /// `POST /organizers/{o}/webinars`.
    ///
    /// # Errors
    /// Only if the plan cannot be written as JSON.
    pub fn create(plan: &WebinarPlan) -> Result<Self> {
        Ok(Self {
            method: Method::POST,
            path: format!("{ORGANIZER}/webinars"),
            query: Vec::new(),
            body: Some(json_body(plan)?),
            makes: true,
        })
    }

    /// `PUT /organizers/{o}/webinars/{w}`, telling registrants when `notify`.
    ///
    /// # Errors
    /// Only if the changes cannot be written as JSON.
    pub fn update(webinar: WebinarKey, changes: &WebinarChanges, notify: bool) -> Result<Self> {
        Ok(Self {
            method: Method::PUT,
            path: format!("{ORGANIZER}/webinars/{webinar}"),
            query: vec![("notifyParticipants", notify.to_string())],
            body: Some(json_body(changes)?),
            makes: false,
        })
    }

    /// `DELETE /organizers/{o}/webinars/{w}`, emailing registrants when `notify`.
    #[must_use]
    pub fn cancel(webinar: WebinarKey, notify: bool) -> Self {
        Self {
            method: Method::DELETE,
            path: format!("{ORGANIZER}/webinars/{webinar}"),
            query: vec![("sendCancellationEmails", notify.to_string())],
            body: None,
            makes: false,
        }
    }

    /// `PUT /webinars/{w}/copy`.
    ///
    /// # Errors
    /// Only if the copy cannot be written as JSON.
    pub fn copy(webinar: WebinarKey, copy: &WebinarCopy) -> Result<Self> {
        Ok(Self {
            method: Method::PUT,
            path: format!("/G2W/rest/v2/webinars/{webinar}/copy"),
            query: Vec::new(),
            body: Some(json_body(copy)?),
            makes: true,
        })
    }

    /// Its path, naming `organizer` when it is known.
    fn path_for(&self, organizer: Option<OrganizerKey>) -> String {
        let organizer = organizer.map_or_else(|| "{organizerKey}".to_owned(), |o| o.to_string());
        self.path.replace("{organizer}", &organizer)
    }

    /// The request as a person reads it: `METHOD path?query`, then the JSON body;
    /// the path names `organizer` when it is known.
    #[must_use]
    pub fn describe(&self, organizer: Option<OrganizerKey>) -> String {
        let mut line = format!("{} {}", self.method, self.path_for(organizer));
        if !self.query.is_empty() {
            let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            line.push('?');
            line.push_str(&query.join("&"));
        }
        match &self.body {
            Some(body) => format!(
                "{line}\n{}",
                serde_json::to_string_pretty(body).unwrap_or_default()
            ),
            None => line,
        }
    }

    /// The request as JSON, for `--dry-run --format json`.
    #[must_use]
    pub fn to_json(&self, organizer: Option<OrganizerKey>) -> Value {
        let query: serde_json::Map<String, Value> = self
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "method": self.method.as_str(),
            "path": self.path_for(organizer),
            "query": query,
            "body": self.body,
        })
    }
}

impl GotoClient {
    /// Sends a change. A create or copy answers what it made; an update or cancel
    /// answers `None`. A create or copy is never repeated after GoTo may have acted on
    /// it (only after a 429), so a dropped answer cannot make two webinars.
    ///
    /// # Errors
    /// [`crate::GotoError`] as GoTo answered.
    pub async fn schedule(&self, call: &ScheduleCall) -> Result<Option<Scheduled>> {
        let makes = call.makes;
        let body = call.body.as_ref().map(to_json).transpose()?;
        let (_, answer) = self
            .execute(Call {
                method: call.method.clone(),
                path: call.path.clone(),
                query: call.query.iter().map(|(k, v)| (*k, v.clone())).collect(),
                body,
                registering: false,
                repeatable: !makes,
            })
            .await?;
        if makes {
            decode(&answer, "webinar").map(Some)
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn session(start: &str, end: &str) -> TimeRange {
        TimeRange {
            start_time: at(start),
            end_time: at(end),
        }
    }

    #[test]
    fn a_plan_is_checked_as_goto_checks_it_naming_every_problem() {
        let now = at("2027-01-01T00:00:00Z");
        let mut plan = WebinarPlan {
            subject: "Launch".into(),
            description: None,
            times: vec![session("2027-03-04T08:00:00Z", "2027-03-04T09:00:00Z")],
            time_zone: "Europe/Berlin".into(),
            kind: WebinarType::SingleSession,
        };
        assert_eq!(plan.check(now), Ok(()));
        plan.subject = " ".into();
        plan.description = Some("x".repeat(DESCRIPTION_MAX + 1));
        plan.times = vec![
            session("2027-03-04T09:00:00Z", "2027-03-04T08:00:00Z"),
            session("2026-03-04T08:00:00Z", "2026-03-04T09:00:00Z"),
        ];
        let problems = plan.check(now).unwrap_err().0;
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0].contains("subject is empty"));
        assert!(problems[1].contains("2049 characters"));
        assert!(problems[2].contains("ends before it starts"));
        assert!(problems[3].contains("in the past"));
        assert!(problems[4].contains("--type series"));
        plan.kind = WebinarType::Series;
        plan.times.truncate(1);
        assert!(
            plan.check(now)
                .unwrap_err()
                .to_string()
                .contains("a series needs at least two")
        );
    }

    #[test]
    fn the_request_reads_as_goto_takes_it() {
        let plan = WebinarPlan {
            subject: "Launch".into(),
            description: Some("d".into()),
            times: vec![session("2027-03-04T08:00:00Z", "2027-03-04T09:00:00Z")],
            time_zone: "Europe/Berlin".into(),
            kind: WebinarType::SingleSession,
        };
        let call = ScheduleCall::create(&plan).unwrap();
        let json = call.to_json(Some(OrganizerKey::new(9_007_199_254_740_993)));
        assert_eq!(json["method"], "POST");
        assert_eq!(
            json["path"],
            "/G2W/rest/v2/organizers/9007199254740993/webinars"
        );
        assert_eq!(json["body"]["type"], "single_session");
        assert_eq!(json["body"]["timeZone"], "Europe/Berlin");
        assert_eq!(
            json["body"]["times"][0]["startTime"],
            "2027-03-04T08:00:00Z"
        );
        assert!(call.makes);
        let cancel = ScheduleCall::cancel(WebinarKey::new(7), true);
        assert_eq!(
            cancel.describe(None),
            "DELETE /G2W/rest/v2/organizers/{organizerKey}/webinars/7?sendCancellationEmails=true"
        );
        assert!(!cancel.makes);
        let changes = WebinarChanges {
            subject: Some("New".into()),
            ..WebinarChanges::default()
        };
        let update = ScheduleCall::update(WebinarKey::new(7), &changes, false).unwrap();
        assert!(!update.makes);
        assert_eq!(
            update.to_json(None)["body"],
            serde_json::json!({"subject": "New"})
        );
    }
}
