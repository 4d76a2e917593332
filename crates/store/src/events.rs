//! GoTo's webhook events as g2w keeps them: every event once (by GoTo's `eventKey`, and
//! each fact once whichever route brought it), with its raw body and headers; forwarding
//! one to the user's own URL is a job (see `jobs`).

use std::collections::BTreeSet;

use g2w_goto::{EventName, RegistrantKey, SessionKey, Timestamp, WebinarKey};

use crate::db::{Dialect, Durability, Row, Statement, args};
use crate::jobs::{Job, JobState, QueueGauges, QueueName};
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

    /// Forwarding as its job (if any) stands.
    fn of(job: Option<&Job>) -> Self {
        match job.map(|j| j.state) {
            None => Self::None,
            Some(JobState::Pending) => Self::Pending,
            Some(JobState::Running) => Self::Delivering,
            Some(JobState::Done) => Self::Delivered,
            Some(JobState::Failed | JobState::Dead) => Self::Failed,
        }
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

/// The columns of an event (`webhook_events e`), then of its forwarding job (`jobs j`,
/// absent when it is not forwarded), as [`read`] takes them.
macro_rules! event_columns {
    () => {
        concat!(
            "e.event_key, e.event_name, e.source, e.webinar_key, e.registrant_key, \
             e.session_key, e.email, e.headers, e.body, e.received_at, ",
            crate::jobs::job_columns!(j)
        )
    };
}

/// Events and their forwarding jobs.
macro_rules! with_jobs {
    () => {
        "webhook_events e LEFT JOIN jobs j ON j.kind = 'forwards' AND j.id = e.event_key"
    };
}

/// How many columns of an event come before its job's.
const EVENT_WIDTH: usize = 10;

/// The job that forwards events.
const KIND: QueueName = QueueName::Forwards;

fn key_column<K: std::str::FromStr>(text: Option<String>) -> Result<Option<K>, StoreError> {
    text.as_deref().map(key).transpose()
}

fn read(r: &Row) -> Result<StoredEvent, StoreError> {
    let job = match r.opt_text(EVENT_WIDTH)? {
        Some(_) => Some(Job::read(r, EVENT_WIDTH)?),
        None => None,
    };
    let event = StoredEvent {
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
        forward_state: ForwardState::None,
        forward_attempts: 0,
        forward_error: None,
        forward_fence: 0,
        forward_failing_since: None,
    };
    Ok(match job {
        Some(job) => event.with_job(&job),
        None => event,
    })
}

fn read_one(row: Option<Row>) -> Result<Option<StoredEvent>, StoreError> {
    row.as_ref().map(read).transpose()
}

impl StoredEvent {
    /// This event as its forwarding job leaves it.
    pub fn with_job(mut self, job: &Job) -> Self {
        self.forward_state = ForwardState::of(Some(job));
        self.forward_attempts = job.attempts;
        self.forward_error.clone_from(&job.last_error);
        self.forward_fence = job.fence;
        self.forward_failing_since = job.failing_since;
        self
    }
}

/// An event, and (PostgreSQL, in the same statement) its forwarding job; `$12` says
/// whether to forward it. Returns the event when it was new.
const RECORD_WITH_JOB: &str = "WITH ins AS (
         INSERT INTO webhook_events (event_key, natural_key, event_name, source, webinar_key,
             registrant_key, session_key, email, headers, body, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT DO NOTHING RETURNING event_key, received_at),
     job AS (
         INSERT INTO jobs (kind, id, owner, state, run_at, created_at, updated_at)
         SELECT 'forwards', event_key, '', 'pending', received_at, received_at, received_at
         FROM ins WHERE $12)
     SELECT event_key FROM ins";

/// An event (SQLite).
const RECORD: &str = "INSERT INTO webhook_events (event_key, natural_key, event_name, source,
         webinar_key, registrant_key, session_key, email, headers, body, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT DO NOTHING RETURNING event_key";

/// Its forwarding job, when the statement before kept a new event (SQLite).
const RECORD_JOB: &str = "INSERT INTO jobs (kind, id, owner, state, run_at, created_at, updated_at)
     SELECT 'forwards', $1, '', 'pending', $2, $2, $2 WHERE changes() = 1 AND $3";

impl Store {
    /// Keeps an event, with a job to forward it when `e.forward`; false (and nothing
    /// changed) when its `eventKey` or the fact it states is already kept.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record_event(&self, e: &NewEvent) -> Result<bool, StoreError> {
        let event = args![
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
        ];
        let steps = match self.db.dialect() {
            Dialect::Postgres => {
                let mut values = event;
                values.push(e.forward.into());
                vec![Statement::new(RECORD_WITH_JOB, values)]
            }
            Dialect::Sqlite => vec![
                Statement::new(RECORD, event),
                Statement::new(
                    RECORD_JOB,
                    args![&e.event_key, e.received_at.as_millis(), e.forward],
                ),
            ],
        };
        let done = self.db.run(steps, Durability::Durable).await?;
        Ok(done.first().is_some_and(|d| !d.rows.is_empty()))
    }

    /// The latest events, newest first.
    ///
    /// # Errors
    /// Database failures.
    pub async fn recent_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        self.db
            .query(
                concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM ",
                    with_jobs!(),
                    " ORDER BY e.received_at DESC, e.event_key LIMIT $1"
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
                    concat!(
                        "SELECT ",
                        event_columns!(),
                        " FROM ",
                        with_jobs!(),
                        " WHERE e.event_key = $1"
                    ),
                    args![event_key],
                )
                .await?,
        )
    }

    /// The events claimed `jobs` forward, each as its job leaves it, in the jobs' order.
    ///
    /// # Errors
    /// Database failures.
    pub async fn events_of(&self, jobs: Vec<Job>) -> Result<Vec<StoredEvent>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let keys = crate::db::Arg::Texts(jobs.iter().map(|j| Some(j.id.clone())).collect());
        let mut events: std::collections::HashMap<String, StoredEvent> = self
            .db
            .query(
                concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM ",
                    with_jobs!(),
                    " WHERE e.event_key = ANY($1)"
                ),
                vec![keys],
            )
            .await?
            .iter()
            .map(|r| read(r).map(|e| (e.event_key.clone(), e)))
            .collect::<Result<_, _>>()?;
        Ok(jobs
            .iter()
            .filter_map(|job| Some(events.remove(&job.id)?.with_job(job)))
            .collect())
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

    /// The forwarding queue's gauges (see [`Self::registration_gauges`]).
    ///
    /// # Errors
    /// Database failures.
    pub async fn forward_gauges(&self) -> Result<QueueGauges, StoreError> {
        self.job_gauges(KIND).await
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
                        "DELETE FROM jobs WHERE kind = 'forwards'
                             AND state IN ('done', 'failed', 'dead') AND id IN (
                                 SELECT event_key FROM webhook_events
                                 WHERE received_at < $1 AND natural_key IS NULL)",
                        args![before],
                    ),
                    Statement::new(
                        "DELETE FROM webhook_events WHERE received_at < $1
                             AND natural_key IS NULL AND NOT EXISTS (
                                 SELECT 1 FROM jobs WHERE kind = 'forwards'
                                     AND id = webhook_events.event_key)",
                        args![before],
                    ),
                    Statement::new(
                        "UPDATE webhook_events SET body = '', headers = '{}'
                         WHERE received_at < $1 AND natural_key IS NOT NULL AND body <> ''
                             AND NOT EXISTS (
                                 SELECT 1 FROM jobs WHERE kind = 'forwards'
                                     AND id = webhook_events.event_key
                                     AND state IN ('pending', 'running'))",
                        args![before],
                    ),
                ],
                Durability::Durable,
            )
            .await?;
        Ok(done.iter().skip(1).map(|d| d.changed).sum())
    }
}
