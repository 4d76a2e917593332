//! Registrations: what a landing page submitted, durably, and where its delivery to
//! GoTo stands.
//!
//! The row in `registrations` keeps what people look at (the person, the webinar, the
//! organizer, GoTo's answer); its delivery is a job in the `jobs` table (see `jobs`), so
//! its state reads: `pending` → `delivering` (leased to one attempt) → `delivered` |
//! `already_registered` | `failed` (permanent, with the reason) | `dead` (failing for
//! longer than the gateway's give-up age). A lease that runs out (a worker crashed) makes
//! the job due again, so a registration is never stuck; GoTo's 409 on a repeat makes a
//! second delivery harmless. While a registration's job is open, a second submission of
//! the same person for the same webinar joins it instead of becoming a second GoTo call:
//! the registrations' person index (`person`, `flight`) is unique, and `flight` is empty
//! only while a registration is open.

use std::fmt;
use std::str::FromStr;

use g2w_goto::{RegistrantKey, Timestamp, WebinarKey};

use crate::db::Row;
use crate::jobs::{Job, JobState};
use crate::{StoreError, key};

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Leased to a worker that is delivering it now.
    Delivering,
    /// GoTo registered the person.
    Delivered,
    /// GoTo already had the person registered.
    AlreadyRegistered,
    /// GoTo refused it for good (the reason is kept).
    Failed,
    /// Delivery kept failing for longer than the gateway waits.
    Dead,
}

impl OutboxState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Delivering,
        Self::Delivered,
        Self::AlreadyRegistered,
        Self::Failed,
        Self::Dead,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivering => "delivering",
            Self::Delivered => "delivered",
            Self::AlreadyRegistered => "already_registered",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    /// Whether nothing more will happen to it (unless retried by hand).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Delivering)
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for OutboxState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a state (pending, delivering, delivered, already_registered, failed, dead)"))
    }
}

/// A submission to store.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    /// Its id (time-ordered, URL-safe).
    pub id: String,
    /// The g2w profile (GoTo login) that delivers it.
    pub profile: String,
    /// The webinar.
    pub webinar_key: WebinarKey,
    /// The person's email (for look-ups and support).
    pub email: String,
    /// What will be sent to GoTo, as JSON.
    pub payload: String,
    /// The client's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<String>,
    /// Where it came from (`source`).
    pub source: Option<String>,
    /// When it arrived.
    pub created_at: Timestamp,
    /// Whether intake checked it against the webinar's form (else GoTo checks it).
    pub validated: bool,
}

/// A stored registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Its id.
    pub id: String,
    /// The profile.
    pub profile: String,
    /// The webinar.
    pub webinar_key: WebinarKey,
    /// The email.
    pub email: String,
    /// The JSON sent to GoTo.
    pub payload: String,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    /// Where it came from.
    pub source: Option<String>,
    /// Where it stands.
    pub state: OutboxState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: Timestamp,
    /// GoTo's registrant key, once delivered.
    pub registrant_key: Option<RegistrantKey>,
    /// The join URL, once delivered or found.
    pub join_url: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Arrival.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it reached a final state.
    pub finished_at: Option<Timestamp>,
    /// The fencing token of the latest claim: only that attempt may record an outcome.
    pub fence: i64,
    /// When the current run of failed attempts began, if one is running.
    pub failing_since: Option<Timestamp>,
    /// Whether intake checked it against the webinar's form (else GoTo checks it).
    pub validated: bool,
}

/// What storing a submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored now.
    New(Registration),
    /// The idempotency key was seen before: this is the earlier registration.
    Existing(Registration),
    /// The same person's registration for the same webinar is still on its way to GoTo:
    /// this is it (one person, one GoTo call).
    InFlight(Registration),
}

impl Enqueued {
    /// The registration either way.
    pub fn registration(&self) -> &Registration {
        match self {
            Self::New(r) | Self::Existing(r) | Self::InFlight(r) => r,
        }
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Registered: GoTo's key and join URL.
    Delivered {
        /// Registrant key.
        registrant_key: RegistrantKey,
        /// Join URL.
        join_url: String,
    },
    /// Already registered: the existing join URL, when found.
    AlreadyRegistered {
        /// Registrant key, when known.
        registrant_key: Option<RegistrantKey>,
        /// Join URL, when found.
        join_url: Option<String>,
    },
    /// Refused for good.
    Failed {
        /// Why.
        reason: String,
    },
    /// Failing for too long.
    Dead {
        /// The last error.
        reason: String,
    },
}

/// The columns of a registration row (`registrations r`), as [`read_own`] takes them;
/// `registration_columns!(job)` adds its job's (`jobs j`), as [`read`] takes them.
macro_rules! registration_columns {
    () => {
        "r.id, r.profile, r.webinar_key, r.email, r.payload, r.idempotency_key, r.source, \
         r.validated, r.created_at, r.outcome, r.registrant_key, r.join_url"
    };
    (job) => {
        concat!(registration_columns!(), ", ", crate::jobs::job_columns!(j))
    };
}

/// How many columns `registration_columns!()` are.
const REG_WIDTH: usize = 12;

/// The registrations and their jobs, as a literal for `concat!`.
macro_rules! joined {
    () => {
        "registrations r JOIN jobs j ON j.kind = 'registrations' AND j.id = r.id"
    };
}

/// The job that delivers registrations.
const KIND: crate::QueueName = crate::QueueName::Registrations;

/// What a registration row says of itself, before its job is known.
struct Row12 {
    registration: Registration,
    outcome: Option<OutboxState>,
}

fn read_own(r: &Row) -> Result<Row12, StoreError> {
    let created_at = Timestamp::from_millis(r.int(8)?);
    let outcome = match r.opt_text(9)?.as_deref() {
        None => None,
        Some("delivered") => Some(OutboxState::Delivered),
        Some("already_registered") => Some(OutboxState::AlreadyRegistered),
        Some(other) => return Err(StoreError::Data(format!("unknown outcome {other:?}"))),
    };
    Ok(Row12 {
        registration: Registration {
            id: r.text(0)?,
            profile: r.text(1)?,
            webinar_key: key(&r.text(2)?)?,
            email: r.text(3)?,
            payload: r.text(4)?,
            idempotency_key: r.opt_text(5)?,
            source: r.opt_text(6)?,
            validated: r.bool(7)?,
            created_at,
            registrant_key: r.opt_text(10)?.map(|k| key(&k)).transpose()?,
            join_url: r.opt_text(11)?,
            state: OutboxState::Pending,
            attempts: 0,
            next_attempt_at: created_at,
            last_error: None,
            updated_at: created_at,
            finished_at: None,
            fence: 0,
            failing_since: None,
        },
        outcome,
    })
}

fn read(r: &Row) -> Result<Registration, StoreError> {
    let own = read_own(r)?;
    let job = Job::read(r, REG_WIDTH)?;
    Ok(own.registration.with_job(&job, own.outcome))
}

impl Registration {
    /// This registration as `job` leaves it; `outcome` is what GoTo answered, for a job
    /// that is done.
    pub fn with_job(mut self, job: &Job, outcome: Option<OutboxState>) -> Self {
        self.state = match job.state {
            JobState::Pending => OutboxState::Pending,
            JobState::Running => OutboxState::Delivering,
            JobState::Done => outcome.unwrap_or(OutboxState::Delivered),
            JobState::Failed => OutboxState::Failed,
            JobState::Dead => OutboxState::Dead,
        };
        self.attempts = job.attempts;
        self.next_attempt_at = job.run_at;
        self.last_error.clone_from(&job.last_error);
        self.updated_at = job.updated_at;
        self.finished_at = job.finished_at;
        self.fence = job.fence;
        self.failing_since = job.failing_since;
        self
    }
}

fn read_one(row: Option<Row>) -> Result<Option<Registration>, StoreError> {
    row.as_ref().map(read).transpose()
}

/// What a completion writes: the job's end, GoTo's answer (the outcome), the registrant
/// key and the join URL.
type Answer = (
    crate::JobEnd,
    Option<OutboxState>,
    Option<String>,
    Option<String>,
);

fn completion_columns(completion: &Completion) -> Answer {
    match completion {
        Completion::Delivered {
            registrant_key,
            join_url,
        } => (
            crate::JobEnd::Done,
            Some(OutboxState::Delivered),
            Some(registrant_key.to_string()),
            Some(join_url.clone()),
        ),
        Completion::AlreadyRegistered {
            registrant_key,
            join_url,
        } => (
            crate::JobEnd::Done,
            Some(OutboxState::AlreadyRegistered),
            registrant_key.map(|k| k.to_string()),
            join_url.clone(),
        ),
        Completion::Failed { reason } => (crate::JobEnd::Failed(reason.clone()), None, None, None),
        Completion::Dead { reason } => (crate::JobEnd::Dead(reason.clone()), None, None, None),
    }
}

/// "This person, this webinar, this organizer": the email in lower case first, so that
/// the person index also finds every registration of an email (see [`email_range`]).
fn person(profile: &str, webinar: WebinarKey, email: &str) -> String {
    format!("{}\u{1f}{webinar}\u{1f}{profile}", email.to_lowercase())
}

/// The range of [`person`] keys of `email`, whatever its case.
fn email_range(email: &str) -> (String, String) {
    let email = email.to_lowercase();
    (format!("{email}\u{1f}"), format!("{email}\u{20}"))
}

mod delivery;
mod intake;
mod manage;
