//! The one way in: every door (the JSON API, the hosted form, the series form,
//! server-to-server calls, form builders' posts) turns its request into an [`Attempt`]
//! and [`Intake::register`] does the rest, the same for all: the caller's limits, whose
//! webinar it is and its form (from the cache, or GoTo within the look-up deadline),
//! the series' date, the checks ([`super::validate`]), and the durable write. Doors only
//! parse their input and render the answer.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use g2w_goto::{RecurrenceKey, WebinarKey};
use g2w_store::{Enqueued, NewRegistration, Registration};

use super::{DATE_FIELD, FORM_OF_FIELD, FieldErrors, Submission};
use crate::cache::{Lookup, SeriesDate, WebinarInfo};
use crate::delivery::payload::Payload;
use crate::error::ApiError;
use crate::metrics::IntakeOutcome;
use crate::organizers::{Organizer, Organizers};
use crate::state::{Delivery, Shared, Visitors};

/// The least time intake gives the store to commit a registration.
pub(crate) const STORE_DEADLINE_FLOOR: Duration = Duration::from_secs(1);

/// What intake uses: the parts of the gateway's state a registration passes through.
#[derive(Clone)]
pub(crate) struct Intake {
    pub shared: Shared,
    pub delivery: Delivery,
    pub organizers: Organizers,
    pub visitors: Arc<Visitors>,
    pub keys: Arc<crate::keys::check::KeyChecks>,
}

/// Who is registering someone.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// A visitor's browser or page, from this address: the per-address limits apply.
    Visitor(IpAddr),
    /// A configured form builder (its signature checked): no per-address limit.
    Source(String),
    /// A program with an API key (by name) for these organizers (profiles): no
    /// per-address limit, and only its organizers' webinars.
    Key {
        name: String,
        organizers: Vec<String>,
    },
}

/// What a submission registers for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// The webinar with this key (as written in the path).
    Webinar(&'a str),
    /// A date of this series (as written), picked in the submission's `webinarKey`: a
    /// date's key, or its start as people write it (`2027-03-04`, `2027-03-04 09:00`).
    Series(&'a str),
    /// The next date of this series open for registration, unless the submission picks
    /// one.
    NextOfSeries(&'a str),
}

/// A caller whose limits were checked ([`Intake::admit`]), before its body was even
/// parsed: a flood from one address costs a counter, not a parse.
#[derive(Debug, Clone)]
pub(crate) struct Admitted(Caller);

/// A registration as a door received it.
pub(crate) struct Attempt<'a> {
    pub target: Target<'a>,
    pub submission: Submission,
    pub caller: Admitted,
    /// The caller's own key for this submission: a repeat returns the first.
    pub idempotency_key: Option<String>,
}

/// A series' form: its open dates and the one chosen, to show it again.
pub(crate) struct SeriesForm {
    pub recurrence: RecurrenceKey,
    pub dates: Vec<SeriesDate>,
    pub chosen: Option<WebinarKey>,
}

/// Fields or answers intake refused: each by name, the submission as given, and the form
/// it was checked against (to show it again).
pub(crate) struct Invalid {
    pub errors: FieldErrors,
    pub submission: Submission,
    pub form: Option<Arc<WebinarInfo>>,
    pub series: Option<SeriesForm>,
}

/// Why intake said no, with what the door needs to say it.
pub(crate) enum Refused {
    /// Too many from this address.
    RateLimited,
    /// The caller's key may not act for the webinar's organizer (a profile).
    OrganizerNotAllowed(String),
    /// No such webinar or series (or it was cancelled).
    UnknownWebinar,
    /// The webinar is over.
    Over,
    /// Fields or answers were refused.
    Invalid(Box<Invalid>),
    /// The idempotency key was used for someone else.
    IdempotencyConflict,
    /// The store could not take it: nothing was stored.
    Unavailable,
    /// A bug (a registrant that would not serialise).
    Internal(String),
}

impl Refused {
    /// How it is counted.
    pub(crate) fn outcome(&self) -> IntakeOutcome {
        match self {
            Self::RateLimited => IntakeOutcome::RateLimited,
            Self::OrganizerNotAllowed(_) => IntakeOutcome::KeyRefused,
            Self::UnknownWebinar => IntakeOutcome::UnknownWebinar,
            Self::Over => IntakeOutcome::WebinarOver,
            Self::Invalid(_) => IntakeOutcome::Invalid,
            Self::IdempotencyConflict => IntakeOutcome::IdempotencyConflict,
            Self::Unavailable => IntakeOutcome::StorageError,
            Self::Internal(_) => IntakeOutcome::Internal,
        }
    }

    /// The API's answer for it.
    pub(crate) fn api_error(&self) -> ApiError {
        match self {
            Self::RateLimited => ApiError::rate_limited(),
            Self::OrganizerNotAllowed(profile) => {
                crate::keys::check::Denied::OrganizerNotAllowed(profile.clone()).api_error()
            }
            Self::UnknownWebinar => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such webinar (or it was cancelled)",
            ),
            Self::Over => ApiError::new(StatusCode::GONE, "webinar_over", "this webinar is over"),
            Self::Invalid(invalid) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "validation",
                super::describe(&invalid.errors, invalid.form.as_deref().map(|i| &i.form))
                    .join("; "),
            ),
            Self::IdempotencyConflict => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_conflict",
                "this Idempotency-Key was used for a different registration",
            ),
            Self::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the registration could not be stored; please try again",
            ),
            Self::Internal(why) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", why.clone())
            }
        }
    }
}

/// A registration intake stored (or found), and the organizer who delivers it.
pub(crate) struct Registered {
    pub registration: Registration,
    pub organizer: Arc<Organizer>,
}

/// A submission that passed every check, ready to store.
pub(crate) struct Checked {
    /// The webinar (a series' date: the one picked).
    pub webinar_key: WebinarKey,
    /// Whose webinar it is.
    pub organizer: Arc<Organizer>,
    /// What GoTo will get.
    pub registrant: g2w_goto::NewRegistrant,
    /// Whether it was checked against the webinar's own form (else GoTo checks it).
    pub validated: bool,
    /// Answers known by their question's text only, for want of the form: matched to
    /// its questions at delivery.
    pub by_text: std::collections::BTreeMap<String, String>,
}

/// The one open date of `dates` whose start is `written` as people write it: a day
/// (`2027-03-04`), a day and a time (`2027-03-04 09:00`, in the webinar's zone), the
/// form's own label, or an RFC 3339 moment.
///
/// # Errors
/// Why none is meant, as a message for the date field.
fn dated(dates: &[SeriesDate], written: &str) -> Result<WebinarKey, String> {
    let wanted = g2w_goto::question_text(written);
    let moment = chrono::DateTime::parse_from_rfc3339(written).ok();
    let meant: Vec<WebinarKey> = dates
        .iter()
        .filter(|d| {
            let zone = g2w_goto::WebinarZone::named(d.info.detail.time_zone.as_deref());
            d.info.detail.times.iter().any(|t| {
                let labels = [
                    zone.short(t.start_time),
                    zone.session(t.start_time, t.end_time),
                ];
                moment.is_some_and(|m| m == t.start_time)
                    || (wanted.len() >= 8
                        && labels
                            .iter()
                            .any(|l| g2w_goto::question_text(l).starts_with(&wanted)))
            })
        })
        .map(|d| d.info.detail.webinar_key)
        .collect();
    match meant.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!(
            "names no open date of this series ({written:?}): please pick another"
        )),
        _ => Err(format!(
            "names several dates of this series ({written:?}): give the time too"
        )),
    }
}

/// A time-ordered id: the arrival in milliseconds, then randomness.
pub(crate) fn new_id(now: g2w_goto::Timestamp) -> String {
    format!("{:012x}{:016x}", now.as_millis(), rand::random::<u64>())
}

impl Intake {
    /// The parts of the gateway's state intake uses.
    pub(crate) fn of(state: &crate::state::AppState) -> Self {
        Self {
            shared: state.shared.clone(),
            delivery: state.delivery.clone(),
            organizers: state.organizers.clone(),
            visitors: state.visitors.clone(),
            keys: state.keys.clone(),
        }
    }

    /// Checks `caller`'s limits (a visitor's address has a budget of registrations;
    /// a signed source has none).
    ///
    /// # Errors
    /// [`Refused::RateLimited`], counted.
    pub(crate) fn admit(&self, caller: Caller) -> Result<Admitted, Refused> {
        if let Caller::Visitor(ip) = caller
            && !self.visitors.intake.allow(ip)
        {
            self.shared.metrics.intake(IntakeOutcome::RateLimited);
            return Err(Refused::RateLimited);
        }
        Ok(Admitted(caller))
    }

    /// Registers `attempt`: checks it, stores it durably (or finds the registration its
    /// idempotency key or its person's open delivery names) and tells its organizer's
    /// delivery. Counted in the metrics either way.
    ///
    /// # Errors
    /// Why not: [`Refused`].
    pub(crate) async fn register(&self, attempt: Attempt<'_>) -> Result<Registered, Refused> {
        let outcome = self.store(attempt).await;
        match &outcome {
            Ok((registered, counted)) => {
                self.shared.metrics.intake(*counted);
                registered.organizer.worker.wake();
            }
            Err(refused) => self.shared.metrics.intake(refused.outcome()),
        }
        outcome.map(|(registered, _)| registered)
    }

    /// Checks `attempt` as [`Self::register`] would, and stores nothing: what it would
    /// register, or why not. Not counted.
    ///
    /// # Errors
    /// Why not: [`Refused`].
    pub(crate) async fn preview(&self, attempt: Attempt<'_>) -> Result<Checked, Refused> {
        let Attempt {
            target,
            submission,
            caller: Admitted(caller),
            ..
        } = attempt;
        self.prepare(&caller, target, submission).await
    }

    async fn store(&self, attempt: Attempt<'_>) -> Result<(Registered, IntakeOutcome), Refused> {
        let Attempt {
            target,
            submission,
            caller: Admitted(caller),
            idempotency_key,
        } = attempt;
        let checked = self.prepare(&caller, target, submission).await?;
        self.enqueue(checked, idempotency_key, &caller).await
    }

    /// The date of a series picked, then [`Self::check`].
    async fn prepare(
        &self,
        caller: &Caller,
        target: Target<'_>,
        mut submission: Submission,
    ) -> Result<Checked, Refused> {
        let (webinar, series) = match target {
            Target::Webinar(w) => (w.to_owned(), None),
            Target::Series(s) | Target::NextOfSeries(s) => {
                let next = matches!(target, Target::NextOfSeries(_));
                let picked = self.choose(caller, s, &mut submission, next).await?;
                (picked.0.to_string(), picked.1)
            }
        };
        self.check(caller, &webinar, submission, series).await
    }

    /// Whose webinar it is and whether the submission fits its form (from the cache,
    /// or GoTo within the look-up deadline); when GoTo cannot say in time, the basics.
    async fn check(
        &self,
        caller: &Caller,
        webinar: &str,
        submission: Submission,
        series: Option<SeriesForm>,
    ) -> Result<Checked, Refused> {
        let webinar_key = webinar
            .parse::<WebinarKey>()
            .map_err(|_| Refused::UnknownWebinar)?;
        let costs_nothing = self
            .organizers
            .all()
            .iter()
            .any(|o| o.webinars.costs_nothing(webinar_key));
        if let Caller::Visitor(ip) = caller
            && !costs_nothing
            && !self.visitors.lookups.allow(*ip)
        {
            return Err(Refused::RateLimited);
        }
        let found = self
            .organizers
            .find(webinar_key, self.shared.config.lookup_deadline)
            .await;
        if let Caller::Key { organizers, .. } = caller
            && !organizers.contains(&found.organizer.profile)
        {
            return Err(Refused::OrganizerNotAllowed(
                found.organizer.profile.clone(),
            ));
        }
        let info = match found.lookup {
            Lookup::Found(info) if info.is_over((self.shared.clock)()) => {
                return Err(Refused::Over);
            }
            Lookup::Found(info) => Some(info),
            Lookup::NotFound => return Err(Refused::UnknownWebinar),
            Lookup::Unavailable(why) => {
                // GoTo is slow, down or the login is gone: accept on the basics and let
                // GoTo check the rest at delivery. Losing the registration would be worse.
                tracing::warn!(%webinar_key, "no registration form ({why}); accepting for GoTo to check");
                None
            }
        };
        let mut submission = submission;
        if let Some(info) = &info {
            super::answer_by_text(&mut submission, &info.form);
        }
        match super::validate(&submission, info.as_deref().map(|i| &i.form)) {
            Ok(accepted) => Ok(Checked {
                webinar_key,
                organizer: found.organizer,
                registrant: accepted.registrant,
                validated: info.is_some(),
                by_text: submission.by_text,
            }),
            Err(errors) => Err(Refused::Invalid(Box::new(Invalid {
                errors,
                submission,
                form: info,
                series,
            }))),
        }
    }

    /// Takes the picked date out of `submission`: one of series `series`' open dates.
    /// Answers given to the questions of the date the form showed move to the picked
    /// date's questions. While GoTo cannot list the dates, the date picked is taken as it
    /// is and checked as any registration is while GoTo is away: a bad moment of GoTo's
    /// never costs a registration.
    async fn choose(
        &self,
        caller: &Caller,
        series: &str,
        submission: &mut Submission,
        next: bool,
    ) -> Result<(WebinarKey, Option<SeriesForm>), Refused> {
        let written = submission.fields.remove(DATE_FIELD).unwrap_or_default();
        let shown = submission.fields.remove(FORM_OF_FIELD).unwrap_or_default();
        let (written, shown) = (written.trim(), shown.trim());
        let mut picked = written.parse::<WebinarKey>().ok();
        let recurrence = series
            .parse::<RecurrenceKey>()
            .map_err(|_| Refused::UnknownWebinar)?;
        let dates = match self
            .organizers
            .series(
                recurrence,
                self.shared.config.lookup_deadline,
                || match caller {
                    Caller::Visitor(ip) => self.visitors.lookups.allow(*ip),
                    Caller::Source(_) | Caller::Key { .. } => true,
                },
            )
            .await
        {
            Ok(dates) if dates.is_empty() => return Err(Refused::UnknownWebinar),
            Ok(dates) => dates,
            Err(why) => {
                tracing::warn!(%recurrence, "the series' dates are unavailable: {why}");
                // Without the dates only a date's key can be taken as it is.
                return match picked {
                    Some(webinar) => Ok((webinar, None)),
                    None => Err(Refused::Invalid(Box::new(Invalid {
                        errors: FieldErrors::from([(
                            DATE_FIELD.to_owned(),
                            "an answer is required".to_owned(),
                        )]),
                        submission: std::mem::take(submission),
                        form: None,
                        series: None,
                    }))),
                };
            }
        };
        let key = |d: &SeriesDate| d.info.detail.webinar_key;
        // The date is refused: the series' form again, its dates to pick from.
        let refused = |message: String, submission: &mut Submission, dates| {
            Refused::Invalid(Box::new(Invalid {
                errors: FieldErrors::from([(DATE_FIELD.to_owned(), message)]),
                submission: std::mem::take(submission),
                form: None,
                series: Some(SeriesForm {
                    recurrence,
                    dates,
                    chosen: None,
                }),
            }))
        };
        if picked.is_none() && !written.is_empty() {
            picked = match dated(&dates, written) {
                Ok(found) => Some(found),
                Err(message) => return Err(refused(message, submission, dates)),
            };
        }
        if picked.is_none() && next {
            picked = dates.first().map(key);
        }
        let Some(date) = dates.iter().find(|d| Some(key(d)) == picked) else {
            let message = if picked.is_none() {
                "an answer is required"
            } else {
                "is not open for registration any more: please pick another"
            };
            return Err(refused(message.to_owned(), submission, dates));
        };
        if let Some(form) = dates
            .iter()
            .find(|d| key(d).to_string() == shown && key(d) != key(date))
        {
            super::translate(submission, &form.info.form, &date.info.form);
        }
        let webinar = key(date);
        Ok((
            webinar,
            Some(SeriesForm {
                recurrence,
                dates,
                chosen: Some(webinar),
            }),
        ))
    }

    /// Stores the registration durably (or finds the one its idempotency key or its
    /// person's open delivery names), for its organizer to deliver.
    async fn enqueue(
        &self,
        checked: Checked,
        idempotency_key: Option<String>,
        caller: &Caller,
    ) -> Result<(Registered, IntakeOutcome), Refused> {
        let Checked {
            webinar_key,
            organizer,
            registrant,
            validated,
            by_text,
        } = checked;
        let email = registrant.email.clone();
        let source = match caller {
            Caller::Source(name) => Some(format!("source:{name}")),
            Caller::Key { name, .. } => Some(format!("key:{name}")),
            Caller::Visitor(_) => registrant.source.clone(),
        };
        let payload = serde_json::to_string(&Payload::new(registrant, by_text))
            .map_err(|e| Refused::Internal(e.to_string()))?;
        let now = self.shared.now();
        let item = NewRegistration {
            id: new_id(now),
            profile: organizer.profile.clone(),
            webinar_key,
            email: email.clone(),
            payload,
            idempotency_key,
            source,
            created_at: now,
            validated,
        };
        // The store gets as long as GoTo would: a visitor waits on neither for long.
        let deadline = self.shared.config.lookup_deadline.max(STORE_DEADLINE_FLOOR);
        let stored = self
            .delivery
            .batcher
            .enqueue(item, deadline)
            .await
            .map_err(|e| {
                tracing::error!("cannot store a registration: {}", g2w_goto::chain(&e));
                Refused::Unavailable
            })?;
        let registered = |registration| Registered {
            registration,
            organizer: organizer.clone(),
        };
        match stored {
            Enqueued::New(r) => {
                organizer.worker.pace().stored();
                Ok((registered(r), IntakeOutcome::Accepted))
            }
            Enqueued::Existing(r)
                if r.webinar_key != webinar_key || !r.email.eq_ignore_ascii_case(&email) =>
            {
                Err(Refused::IdempotencyConflict)
            }
            Enqueued::Existing(r) => Ok((registered(r), IntakeOutcome::Replayed)),
            Enqueued::InFlight(r) => Ok((registered(r), IntakeOutcome::Joined)),
        }
    }

    /// Waits up to `sync_wait` for a registration to reach a final state, when it can
    /// reach one in that time.
    pub(crate) async fn wait_for_delivery(&self, registered: Registered) -> Registration {
        let Registered {
            registration: reg,
            organizer,
        } = registered;
        // Waiting only makes sense while GoTo answers and the queue is short: never make
        // a visitor wait on a GoTo that is failing or asked for quiet, a paused delivery,
        // a form GoTo was already too slow to describe, or a backlog that cannot be
        // delivered within the wait.
        if reg.state.is_final()
            || self.shared.config.sync_wait.is_zero()
            || !reg.validated
            || organizer.worker.failing()
            || organizer.worker.held_until().is_some()
            || organizer.worker.paused().is_some()
        {
            return reg;
        }
        let expected = organizer
            .worker
            .pace()
            .expected_delivery(&self.shared.store, &reg.profile, self.shared.now())
            .await;
        if expected > self.shared.config.sync_wait {
            return reg;
        }
        let waiters = &self.delivery.waiters;
        let rx = waiters.subscribe(&reg.id);
        // It may have finished between the write and the subscription.
        if let Ok(Some(now)) = self.shared.store.registration(&reg.id).await
            && now.state.is_final()
        {
            waiters.forget(&reg.id);
            return now;
        }
        // Awaited on its own line, so the receiver is gone before `forget` looks.
        let waited = tokio::time::timeout(self.shared.config.sync_wait, rx).await;
        match waited {
            Ok(Ok(done)) => done,
            _ => {
                waiters.forget(&reg.id);
                self.shared
                    .store
                    .registration(&reg.id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(reg)
            }
        }
    }
}
