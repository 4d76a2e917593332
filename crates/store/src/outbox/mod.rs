//! The registration outbox: what a landing page submitted, durably, and where its
//! delivery to GoTo stands.
//!
//! States: `pending` → `delivering` (leased to one attempt) → `delivered` |
//! `already_registered` | `failed` (permanent, with the reason) | `dead` (failing for
//! longer than the gateway's give-up age). A lease that runs out (a worker crashed) makes
//! the row due again, so a registration is never stuck; GoTo's 409 on a repeat makes a
//! second delivery harmless. Every claim bumps the row's fencing token: an attempt may
//! record its outcome or extend its lease only while the token is still its own.

use std::fmt;
use std::str::FromStr;

use g2w_goto::{RegistrantKey, Timestamp, WebinarKey};

use crate::db::Row;
use crate::queue::Table;
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
}

impl Enqueued {
    /// The registration either way.
    pub fn registration(&self) -> &Registration {
        match self {
            Self::New(r) | Self::Existing(r) => r,
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

/// The columns of a registration, in [`read`]'s order.
const COLUMNS: &str = "id, profile, webinar_key, email, payload, idempotency_key, source, state, \
    attempts, next_attempt_at, registrant_key, join_url, last_error, created_at, updated_at, \
    finished_at, fence, failing_since, validated";

/// The outbox as a queue.
pub(crate) const OUTBOX: Table = Table {
    table: "outbox",
    key: "id",
    state: "state",
    next_at: "next_attempt_at",
    lease_until: "lease_until",
    fence: "fence",
    attempts: "attempts",
    failing_since: "failing_since",
    error: "last_error",
    created: "created_at",
    touched: Some("updated_at"),
    holder: Some("lease_holder"),
    owner: Some("profile"),
    returning: COLUMNS,
    dead: "dead",
};

/// The channel new registrations are announced on (PostgreSQL).
pub(crate) const CHANNEL: &str = "g2w_outbox";

fn read(r: &Row) -> Result<Registration, StoreError> {
    let at = |i| r.int(i).map(Timestamp::from_millis);
    let maybe_at = |i| r.opt_int(i).map(|v| v.map(Timestamp::from_millis));
    Ok(Registration {
        id: r.text(0)?,
        profile: r.text(1)?,
        webinar_key: key(&r.text(2)?)?,
        email: r.text(3)?,
        payload: r.text(4)?,
        idempotency_key: r.opt_text(5)?,
        source: r.opt_text(6)?,
        state: r.text(7)?.parse().map_err(StoreError::Data)?,
        attempts: u32::try_from(r.int(8)?).unwrap_or(0),
        next_attempt_at: at(9)?,
        registrant_key: r.opt_text(10)?.map(|k| key(&k)).transpose()?,
        join_url: r.opt_text(11)?,
        last_error: r.opt_text(12)?,
        created_at: at(13)?,
        updated_at: at(14)?,
        finished_at: maybe_at(15)?,
        fence: r.int(16)?,
        failing_since: maybe_at(17)?,
        validated: r.bool(18)?,
    })
}

fn read_one(row: Option<Row>) -> Result<Option<Registration>, StoreError> {
    row.as_ref().map(read).transpose()
}

/// The columns an outcome sets: state, registrant key, join URL, error.
/// What a completion writes: the state, registrant key, join URL and error.
type CompletionColumns = (OutboxState, Option<String>, Option<String>, Option<String>);

fn completion_columns(completion: &Completion) -> CompletionColumns {
    match completion {
        Completion::Delivered {
            registrant_key,
            join_url,
        } => (
            OutboxState::Delivered,
            Some(registrant_key.to_string()),
            Some(join_url.clone()),
            None,
        ),
        Completion::AlreadyRegistered {
            registrant_key,
            join_url,
        } => (
            OutboxState::AlreadyRegistered,
            registrant_key.map(|k| k.to_string()),
            join_url.clone(),
            None,
        ),
        Completion::Failed { reason } => (OutboxState::Failed, None, None, Some(reason.clone())),
        Completion::Dead { reason } => (OutboxState::Dead, None, None, Some(reason.clone())),
    }
}

mod delivery;
mod intake;
mod manage;
