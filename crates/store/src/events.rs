//! GoTo's webhook events as g2w keeps them: every event once (by GoTo's `eventKey`, and
//! each fact once whichever route brought it), with its raw body and headers, and an
//! outbox that forwards it to the user's own URL.

use std::collections::BTreeSet;
use std::time::Duration;

use g2w_goto::{RegistrantKey, SessionKey, Timestamp, WebinarKey};

use crate::StoreError;

/// How an event reached g2w.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// GoTo delivered it.
    Webhook,
    /// Reconciliation found in GoTo's lists what no delivery had brought.
    Reconciliation,
}

impl EventSource {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Reconciliation => "reconciliation",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "webhook" => Ok(Self::Webhook),
            "reconciliation" => Ok(Self::Reconciliation),
            other => Err(StoreError::Sql(format!("unknown event source {other:?}"))),
        }
    }
}

/// Where forwarding an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ForwardState {
    /// Nothing to forward to.
    None,
    /// Waiting for its (next) attempt.
    Pending,
    /// An attempt holds it.
    Delivering,
    /// The user's URL took it.
    Delivered,
    /// Given up.
    Failed,
}

impl ForwardState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Delivering => "delivering",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "none" => Self::None,
            "pending" => Self::Pending,
            "delivering" => Self::Delivering,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            other => return Err(StoreError::Sql(format!("unknown forward state {other:?}"))),
        })
    }
}

/// An event to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// GoTo's `eventKey` (or one reconciliation made up).
    pub event_key: String,
    /// `registrant.added`, `registrant.joined`, `webinar.created`, …
    pub event_name: String,
    /// How it came.
    pub source: EventSource,
    /// The webinar, when the event names one.
    pub webinar_key: Option<WebinarKey>,
    /// The registrant, for registrant events.
    pub registrant_key: Option<RegistrantKey>,
    /// The session, for `registrant.joined` when GoTo says which.
    pub session_key: Option<SessionKey>,
    /// The registrant's email.
    pub email: Option<String>,
    /// The request's headers, as a JSON object.
    pub headers: String,
    /// The body exactly as received.
    pub body: String,
    /// When it arrived.
    pub received_at: Timestamp,
    /// Whether to forward it (a forward URL is configured).
    pub forward: bool,
}

impl NewEvent {
    /// The fact this event states, for the facts that can arrive twice by different
    /// routes: a registrant added to a webinar, a registrant in a session.
    pub fn natural_key(&self) -> Option<String> {
        let (webinar, registrant) = (self.webinar_key?, self.registrant_key?);
        match self.event_name.as_str() {
            "registrant.added" => Some(format!("added:{webinar}:{registrant}")),
            "registrant.joined" => Some(format!(
                "joined:{webinar}:{registrant}:{}",
                self.session_key.map(|s| s.to_string()).unwrap_or_default()
            )),
            _ => None,
        }
    }
}

/// A kept event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its key.
    pub event_key: String,
    /// Its name.
    pub event_name: String,
    /// How it came.
    pub source: EventSource,
    /// The webinar.
    pub webinar_key: Option<WebinarKey>,
    /// The registrant.
    pub registrant_key: Option<RegistrantKey>,
    /// The session.
    pub session_key: Option<SessionKey>,
    /// The email.
    pub email: Option<String>,
    /// The headers, as a JSON object.
    pub headers: String,
    /// The body as received.
    pub body: String,
    /// When it arrived.
    pub received_at: Timestamp,
    /// Forwarding.
    pub forward_state: ForwardState,
    /// Forwarding attempts so far.
    pub forward_attempts: u32,
    /// The last forwarding failure.
    pub forward_error: Option<String>,
}

/// How a forwarding attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// The user's URL answered 2xx.
    Delivered,
    /// Try again at `at`.
    Retry {
        /// When.
        at: Timestamp,
        /// What went wrong.
        error: String,
    },
    /// Give up.
    Failed {
        /// Why.
        error: String,
    },
}

/// People seen per webinar and session, from `registrant.added` and
/// `registrant.joined` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendance {
    /// The webinar.
    pub webinar_key: WebinarKey,
    /// The session (`None` for `registrant.added`, or a join without a session).
    pub session_key: Option<SessionKey>,
    /// `registrant.added` or `registrant.joined`.
    pub event_name: String,
    /// Distinct registrants.
    pub people: u64,
    /// The latest such event.
    pub last_at: Timestamp,
}

/// The event operations a backend provides; both run `tests/events_contract.rs`.
pub trait EventStore: Send + Sync + 'static {
    /// Keeps an event; false (and nothing changed) when its `eventKey` or the fact it
    /// states is already kept.
    ///
    /// # Errors
    /// Database failures.
    fn record_event(&self, event: &NewEvent) -> Result<bool, StoreError>;

    /// The latest events, newest first.
    ///
    /// # Errors
    /// Database failures.
    fn recent_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;

    /// People added and joined, per webinar and session.
    ///
    /// # Errors
    /// Database failures.
    fn attendance(&self) -> Result<Vec<Attendance>, StoreError>;

    /// The registrants of `webinar` already known from `event_name` events (of
    /// `session`, for joins), whatever their source.
    ///
    /// # Errors
    /// Database failures.
    fn known_registrants(
        &self,
        event_name: &str,
        webinar: WebinarKey,
        session: Option<SessionKey>,
    ) -> Result<BTreeSet<RegistrantKey>, StoreError>;

    /// Leases the next event due for forwarding until `now + lease`, counting an
    /// attempt: pending and due, or delivering with an expired lease.
    ///
    /// # Errors
    /// Database failures.
    fn claim_forward(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<StoredEvent>, StoreError>;

    /// Frees the space of events received before `before` whose forwarding is over:
    /// facts (a registrant added, a registrant in a session) keep their keys, so
    /// repeats and reconciliation still know them, and lose body and headers; other
    /// events are deleted. Returns how many were compacted or deleted.
    ///
    /// # Errors
    /// Database failures.
    fn compact_events_before(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Records how attempt number `attempt` (its `forward_attempts` when claimed) of
    /// forwarding `event_key` went. False, and nothing changed, when that attempt no
    /// longer holds the event (its lease ran out and another attempt took it).
    ///
    /// # Errors
    /// Database failures.
    fn settle_forward(
        &self,
        event_key: &str,
        attempt: u32,
        outcome: &ForwardOutcome,
    ) -> Result<bool, StoreError>;
}

/// `sql` with `{1}`, `{2}`, … as this backend's parameters (`?1` or `$1`, …).
pub(crate) fn placeholders(sql: &str, mark: &str) -> String {
    (1..=9).fold(sql.to_owned(), |sql, n| {
        sql.replace(&format!("{{{n}}}"), &format!("{mark}{n}"))
    })
}

/// What [`EventStore::settle_forward`] runs, with (state, next attempt, error, event
/// key, attempt) as `{1}`…`{5}`: the attempt count is the claim's fencing token.
pub(crate) const SETTLE_STATEMENT: &str = "UPDATE webhook_events SET forward_state = {1},
        forward_next_at = {2}, forward_error = {3}, forward_lease_until = NULL
    WHERE event_key = {4} AND forward_state = 'delivering' AND forward_attempts = {5}";

/// What [`EventStore::compact_events_before`] runs, in order, with the cut-off as the
/// only parameter (`{1}`, see [`placeholders`]).
pub(crate) const COMPACT_STATEMENTS: [&str; 2] = [
    "DELETE FROM webhook_events WHERE received_at < {1} AND natural_key IS NULL
         AND forward_state IN ('none', 'delivered', 'failed')",
    "UPDATE webhook_events SET body = '', headers = '{}' WHERE received_at < {1}
         AND natural_key IS NOT NULL AND forward_state IN ('none', 'delivered', 'failed')
         AND body <> ''",
];

/// The columns every backend selects, in [`StoredEvent`]'s order.
pub(crate) const EVENT_COLUMNS: &str = "event_key, event_name, source, webinar_key, registrant_key, \
    session_key, email, headers, body, received_at, forward_state, forward_attempts, forward_error";

/// A key, parsed exactly from its text column.
pub(crate) fn key<K: std::str::FromStr>(text: &str) -> Result<K, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Sql(format!("{text:?} is not a GoTo key")))
}

fn key_column<K: std::str::FromStr>(text: Option<String>) -> Result<Option<K>, StoreError> {
    text.as_deref().map(key).transpose()
}

/// One row of the attendance query: webinar, session, event name, people, latest (ms).
pub(crate) type AttendanceRow = (String, Option<String>, String, i64, i64);

/// The query both backends run for [`EventStore::attendance`].
pub(crate) const ATTENDANCE_QUERY: &str = "SELECT webinar_key, session_key, event_name,
        count(DISTINCT registrant_key), max(received_at)
    FROM webhook_events
    WHERE event_name IN ('registrant.added', 'registrant.joined') AND webinar_key IS NOT NULL
    GROUP BY webinar_key, session_key, event_name
    ORDER BY max(received_at) DESC";

pub(crate) fn attendance_row(
    (webinar, session, event_name, people, last): AttendanceRow,
) -> Result<Attendance, StoreError> {
    Ok(Attendance {
        webinar_key: key(&webinar)?,
        session_key: key_column(session)?,
        event_name,
        people: u64::try_from(people).unwrap_or(0),
        last_at: Timestamp::from_millis(last),
    })
}

/// The forward columns an outcome sets: (state, next attempt, error).
pub(crate) fn outcome_columns(
    outcome: &ForwardOutcome,
) -> (ForwardState, Option<i64>, Option<String>) {
    match outcome {
        ForwardOutcome::Delivered => (ForwardState::Delivered, None, None),
        ForwardOutcome::Retry { at, error } => (
            ForwardState::Pending,
            Some(at.as_millis()),
            Some(error.clone()),
        ),
        ForwardOutcome::Failed { error } => (ForwardState::Failed, None, Some(error.clone())),
    }
}

/// An event row as both backends read it, before its keys are parsed.
pub(crate) struct EventRow {
    pub event_key: String,
    pub event_name: String,
    pub source: String,
    pub webinar_key: Option<String>,
    pub registrant_key: Option<String>,
    pub session_key: Option<String>,
    pub email: Option<String>,
    pub headers: String,
    pub body: String,
    pub received_at: i64,
    pub forward_state: String,
    pub forward_attempts: i64,
    pub forward_error: Option<String>,
}

impl EventRow {
    pub(crate) fn parse(self) -> Result<StoredEvent, StoreError> {
        Ok(StoredEvent {
            event_key: self.event_key,
            event_name: self.event_name,
            source: EventSource::parse(&self.source)?,
            webinar_key: key_column(self.webinar_key)?,
            registrant_key: key_column(self.registrant_key)?,
            session_key: key_column(self.session_key)?,
            email: self.email,
            headers: self.headers,
            body: self.body,
            received_at: Timestamp::from_millis(self.received_at),
            forward_state: ForwardState::parse(&self.forward_state)?,
            forward_attempts: u32::try_from(self.forward_attempts).unwrap_or(0),
            forward_error: self.forward_error,
        })
    }
}
