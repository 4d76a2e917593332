//! GoTo's webhook events as g2w keeps them: every event once (by GoTo's `eventKey`, and
//! each fact once whichever route brought it), with its raw body and headers, and an
//! outbox that forwards it to the user's own URL.

use std::collections::BTreeSet;
use std::time::Duration;

use g2w_goto::{EventName, RegistrantKey, SessionKey, Timestamp, WebinarKey};

use crate::db::{Row, Statement, args};
use crate::queue::{Claim, QueueGauges, Release, Table};
use crate::{Store, StoreError, key};

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
            other => Err(StoreError::Data(format!("unknown event source {other:?}"))),
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
            other => return Err(StoreError::Data(format!("unknown forward state {other:?}"))),
        })
    }
}

/// An event to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// GoTo's `eventKey` (or one reconciliation made up).
    pub event_key: String,
    /// What happened.
    pub event_name: EventName,
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
        match self.event_name {
            EventName::RegistrantAdded => Some(format!("added:{webinar}:{registrant}")),
            EventName::RegistrantJoined => Some(format!(
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
    pub event_name: EventName,
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
    /// The fencing token of the latest forwarding claim.
    pub forward_fence: i64,
    /// When the current run of failed forwarding attempts began, if one is running.
    pub forward_failing_since: Option<Timestamp>,
    /// The last forwarding failure.
    pub forward_error: Option<String>,
}

/// How forwarding an event ended for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardDone {
    /// The user's URL answered 2xx.
    Delivered,
    /// Given up: refused for good, or failing for too long.
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
    /// Added or joined.
    pub event_name: EventName,
    /// Distinct registrants.
    pub people: u64,
    /// The latest such event.
    pub last_at: Timestamp,
}

const EVENT_COLUMNS: &str = "event_key, event_name, source, webinar_key, registrant_key, \
    session_key, email, headers, body, received_at, forward_state, forward_attempts, forward_error, \
    forward_fence, forward_failing_since";

/// The forwarding outbox as a queue.
const FORWARDS: Table = Table {
    table: "webhook_events",
    key: "event_key",
    state: "forward_state",
    next_at: "forward_next_at",
    lease_until: "forward_lease_until",
    fence: "forward_fence",
    attempts: "forward_attempts",
    failing_since: "forward_failing_since",
    error: "forward_error",
    created: "received_at",
    touched: None,
    holder: None,
    owner: None,
    returning: EVENT_COLUMNS,
    dead: "failed",
};

fn key_column<K: std::str::FromStr>(text: Option<String>) -> Result<Option<K>, StoreError> {
    text.as_deref().map(key).transpose()
}

fn read(r: &Row) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        event_key: r.text(0)?,
        event_name: EventName::parse(&r.text(1)?),
        source: EventSource::parse(&r.text(2)?)?,
        webinar_key: key_column(r.opt_text(3)?)?,
        registrant_key: key_column(r.opt_text(4)?)?,
        session_key: key_column(r.opt_text(5)?)?,
        email: r.opt_text(6)?,
        headers: r.text(7)?,
        body: r.text(8)?,
        received_at: Timestamp::from_millis(r.int(9)?),
        forward_state: ForwardState::parse(&r.text(10)?)?,
        forward_attempts: u32::try_from(r.int(11)?).unwrap_or(0),
        forward_error: r.opt_text(12)?,
        forward_fence: r.int(13)?,
        forward_failing_since: r.opt_int(14)?.map(Timestamp::from_millis),
    })
}

fn read_one(row: Option<Row>) -> Result<Option<StoredEvent>, StoreError> {
    row.as_ref().map(read).transpose()
}

impl Store {
    /// Keeps an event; false (and nothing changed) when its `eventKey` or the fact it
    /// states is already kept.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record_event(&self, e: &NewEvent) -> Result<bool, StoreError> {
        let forward = if e.forward {
            ForwardState::Pending
        } else {
            ForwardState::None
        };
        let n = self
            .db
            .execute(
                "INSERT INTO webhook_events (event_key, natural_key, event_name, source,
                     webinar_key, registrant_key, session_key, email, headers, body, received_at,
                     forward_state, forward_next_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11)
                 ON CONFLICT DO NOTHING",
                args![
                    &e.event_key,
                    e.natural_key(),
                    e.event_name.as_str(),
                    e.source.as_str(),
                    e.webinar_key.map(|k| k.to_string()),
                    e.registrant_key.map(|k| k.to_string()),
                    e.session_key.map(|k| k.to_string()),
                    e.email.clone(),
                    &e.headers,
                    &e.body,
                    e.received_at.as_millis(),
                    forward.as_str(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// The latest events, newest first.
    ///
    /// # Errors
    /// Database failures.
    pub async fn recent_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        self.db
            .query(
                format!(
                    "SELECT {EVENT_COLUMNS} FROM webhook_events
                     ORDER BY received_at DESC, event_key LIMIT $1"
                ),
                args![limit],
            )
            .await?
            .iter()
            .map(read)
            .collect()
    }

    /// One event.
    ///
    /// # Errors
    /// Database failures.
    pub async fn event(&self, event_key: &str) -> Result<Option<StoredEvent>, StoreError> {
        read_one(
            self.db
                .query_opt(
                    format!("SELECT {EVENT_COLUMNS} FROM webhook_events WHERE event_key = $1"),
                    args![event_key],
                )
                .await?,
        )
    }

    /// People added and joined, per webinar and session.
    ///
    /// # Errors
    /// Database failures.
    pub async fn attendance(&self) -> Result<Vec<Attendance>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT webinar_key, session_key, event_name, count(DISTINCT registrant_key),
                        max(received_at)
                 FROM webhook_events
                 WHERE event_name IN ($1, $2) AND webinar_key IS NOT NULL
                 GROUP BY webinar_key, session_key, event_name
                 ORDER BY max(received_at) DESC",
                args![
                    EventName::RegistrantAdded.as_str(),
                    EventName::RegistrantJoined.as_str()
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Attendance {
                    webinar_key: key(&r.text(0)?)?,
                    session_key: key_column(r.opt_text(1)?)?,
                    event_name: EventName::parse(&r.text(2)?),
                    people: u64::try_from(r.int(3)?).unwrap_or(0),
                    last_at: Timestamp::from_millis(r.int(4)?),
                })
            })
            .collect()
    }

    /// The registrants of `webinar` already known from `event_name` events (of
    /// `session`, for joins), whatever their source.
    ///
    /// # Errors
    /// Database failures.
    pub async fn known_registrants(
        &self,
        event_name: &EventName,
        webinar: WebinarKey,
        session: Option<SessionKey>,
    ) -> Result<BTreeSet<RegistrantKey>, StoreError> {
        let (sql, values) = match session {
            Some(session) => (
                "SELECT DISTINCT registrant_key FROM webhook_events
                 WHERE event_name = $1 AND webinar_key = $2 AND registrant_key IS NOT NULL
                     AND session_key = $3",
                args![
                    event_name.as_str(),
                    webinar.to_string(),
                    session.to_string()
                ],
            ),
            None => (
                "SELECT DISTINCT registrant_key FROM webhook_events
                 WHERE event_name = $1 AND webinar_key = $2 AND registrant_key IS NOT NULL",
                args![event_name.as_str(), webinar.to_string()],
            ),
        };
        self.db
            .query(sql, values)
            .await?
            .iter()
            .map(|r| key(&r.text(0)?))
            .collect()
    }

    /// Leases the next event due for forwarding (see `queue` for the rules every
    /// queue follows).
    ///
    /// # Errors
    /// Database failures.
    pub async fn claim_forward(
        &self,
        holder: &str,
        now: Timestamp,
        lease: Duration,
        which: Claim,
    ) -> Result<Option<StoredEvent>, StoreError> {
        read_one(
            FORWARDS
                .claim(&self.db, None, holder, now, lease, which, 1)
                .await?
                .into_iter()
                .next(),
        )
    }

    /// Extends the forwarding lease of the attempt holding `fence`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn renew_forward(
        &self,
        event_key: &str,
        fence: i64,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        FORWARDS.renew(&self.db, event_key, fence, until).await
    }

    /// Gives the forwarding attempt holding `fence` back, due at `due`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn release_forward(
        &self,
        event_key: &str,
        fence: i64,
        now: Timestamp,
        due: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Option<StoredEvent>, StoreError> {
        read_one(
            FORWARDS
                .release(&self.db, (event_key, fence), now, due, error, why)
                .await?,
        )
    }

    /// Ends the forwarding attempt holding `fence`; `None` (nothing changed) when that
    /// attempt no longer holds the event.
    ///
    /// # Errors
    /// Database failures.
    pub async fn finish_forward(
        &self,
        event_key: &str,
        fence: i64,
        done: &ForwardDone,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let (state, error) = match done {
            ForwardDone::Delivered => (ForwardState::Delivered, None),
            ForwardDone::Failed { error } => (ForwardState::Failed, Some(error.clone())),
        };
        read_one(
            self.db
                .note_returning(
                    format!(
                        "UPDATE webhook_events SET forward_state = $1,
                             forward_error = COALESCE($2, forward_error),
                             forward_lease_until = NULL
                         WHERE event_key = $3 AND forward_state = 'delivering'
                             AND forward_fence = $4
                         RETURNING {EVENT_COLUMNS}"
                    ),
                    args![state.as_str(), error, event_key, fence],
                )
                .await?,
        )
    }

    /// Makes every event waiting to be forwarded due at `now` (the URL answers again).
    ///
    /// # Errors
    /// Database failures.
    pub async fn make_forwards_due(&self, now: Timestamp) -> Result<u64, StoreError> {
        FORWARDS.make_due(&self.db, None, now).await
    }

    /// When the earliest event waiting to be forwarded is due.
    ///
    /// # Errors
    /// Database failures.
    pub async fn next_forward_due(&self) -> Result<Option<Timestamp>, StoreError> {
        FORWARDS.next_due(&self.db, None).await
    }

    /// The forwarding outbox's gauges (see [`Self::registration_gauges`]).
    ///
    /// # Errors
    /// Database failures.
    pub async fn forward_gauges(&self) -> Result<QueueGauges, StoreError> {
        FORWARDS.gauges(&self.db).await
    }

    /// Frees the space of events received before `before` whose forwarding is over:
    /// facts (a registrant added, a registrant in a session) keep their keys, so
    /// repeats and reconciliation still know them, and lose body and headers; other
    /// events are deleted. Returns how many were compacted or deleted.
    ///
    /// # Errors
    /// Database failures.
    pub async fn compact_events_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let before = before.as_millis();
        let done = self
            .db
            .run(
                vec![
                    Statement::new(
                        "DELETE FROM webhook_events WHERE received_at < $1
                             AND natural_key IS NULL
                             AND forward_state IN ('none', 'delivered', 'failed')",
                        args![before],
                    ),
                    Statement::new(
                        "UPDATE webhook_events SET body = '', headers = '{}'
                         WHERE received_at < $1 AND natural_key IS NOT NULL
                             AND forward_state IN ('none', 'delivered', 'failed') AND body <> ''",
                        args![before],
                    ),
                ],
                crate::db::Durability::Durable,
            )
            .await?;
        Ok(done.iter().map(|d| d.changed).sum())
    }
}
