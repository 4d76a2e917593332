//! The registration outbox: what a landing page submitted, durably, and where its
//! delivery to GoTo stands.
//!
//! States: `pending` → `delivering` (leased to one attempt) → `delivered` |
//! `already_registered` | `failed` (permanent, with the reason) | `dead` (failing for
//! longer than the gateway's give-up age). A lease that runs out (a worker crashed) makes
//! the row due again, so a registration is never stuck; GoTo's 409 on a repeat makes a
//! second delivery harmless. Every claim bumps the row's fencing token: an attempt may
//! record its outcome or extend its lease only while the token is still its own.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use g2w_goto::{RegistrantKey, Timestamp, WebinarKey};

use crate::db::{Arg, Dialect, Durability, Row, Statement, args};
use crate::queue::{Claim, QueueGauges, Release, Table};
use crate::{Store, StoreError, key};

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
        f.write_str(self.as_str())
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
fn completion_columns(
    completion: &Completion,
) -> (OutboxState, Option<String>, Option<String>, Option<String>) {
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

impl Store {
    /// Stores submissions in one durable transaction; an already-seen idempotency key
    /// returns the earlier registration instead of a new one.
    ///
    /// # Errors
    /// When the transaction cannot commit: then nothing of the batch is stored.
    pub async fn enqueue(&self, batch: &[NewRegistration]) -> Result<Vec<Enqueued>, StoreError> {
        let keys: Vec<String> = batch
            .iter()
            .filter_map(|r| r.idempotency_key.clone())
            .collect();
        let mut steps = match self.db.dialect() {
            // One statement for the whole batch: a round trip per registration would cap
            // intake at the network's latency.
            Dialect::Postgres => {
                let column = |f: fn(&NewRegistration) -> Option<String>| {
                    Arg::Texts(batch.iter().map(f).collect())
                };
                vec![Statement::new(
                    format!(
                        "INSERT INTO outbox (id, profile, webinar_key, email, payload,
                             idempotency_key, source, state, attempts, next_attempt_at,
                             created_at, updated_at, validated)
                         SELECT id, profile, webinar_key, email, payload, key, source,
                             'pending', 0, created, created, created, validated
                         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                     $6::text[], $7::text[], $8::bigint[], $9::bool[])
                             AS t(id, profile, webinar_key, email, payload, key, source,
                                  created, validated)
                         ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
                    ),
                    vec![
                        column(|r| Some(r.id.clone())),
                        column(|r| Some(r.profile.clone())),
                        column(|r| Some(r.webinar_key.to_string())),
                        column(|r| Some(r.email.clone())),
                        column(|r| Some(r.payload.clone())),
                        column(|r| r.idempotency_key.clone()),
                        column(|r| r.source.clone()),
                        Arg::Ints(batch.iter().map(|r| r.created_at.as_millis()).collect()),
                        Arg::Bools(batch.iter().map(|r| r.validated).collect()),
                    ],
                )]
            }
            Dialect::Sqlite => batch
                .iter()
                .map(|r| {
                    Statement::new(
                        format!(
                            "INSERT INTO outbox (id, profile, webinar_key, email, payload,
                                 idempotency_key, source, state, attempts, next_attempt_at,
                                 created_at, updated_at, validated)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8, $9)
                             ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
                        ),
                        args![
                            &r.id,
                            &r.profile,
                            r.webinar_key.to_string(),
                            &r.email,
                            &r.payload,
                            r.idempotency_key.clone(),
                            r.source.clone(),
                            r.created_at.as_millis(),
                            r.validated,
                        ],
                    )
                })
                .collect(),
        };
        let inserts = steps.len();
        if !keys.is_empty() {
            // In the same transaction, so a key repeated within the batch finds the first.
            steps.push(Statement::new(
                match self.db.dialect() {
                    Dialect::Postgres => {
                        format!("SELECT {COLUMNS} FROM outbox WHERE idempotency_key = ANY($1)")
                    }
                    Dialect::Sqlite => format!(
                        "SELECT {COLUMNS} FROM outbox
                         WHERE idempotency_key IN (SELECT value FROM json_each($1))"
                    ),
                },
                vec![match self.db.dialect() {
                    Dialect::Postgres => Arg::Texts(keys.iter().cloned().map(Some).collect()),
                    Dialect::Sqlite => Arg::Text(serde_json::to_string(&keys).unwrap_or_default()),
                }],
            ));
        }
        if self.db.dialect() == Dialect::Postgres {
            steps.push(Statement::new(format!("NOTIFY {CHANNEL}"), Vec::new()));
        }
        let done = self.db.run(steps, Durability::Durable).await?;
        let mut new = HashMap::new();
        for row in done.iter().take(inserts).flat_map(|d| &d.rows) {
            let r = read(row)?;
            new.insert(r.id.clone(), r);
        }
        let mut by_key = HashMap::new();
        if !keys.is_empty() {
            for row in &done[inserts].rows {
                let r = read(row)?;
                if let Some(key) = r.idempotency_key.clone() {
                    by_key.entry(key).or_insert(r);
                }
            }
        }
        batch
            .iter()
            .map(|item| {
                if let Some(r) = new.remove(&item.id) {
                    return Ok(Enqueued::New(r));
                }
                match item.idempotency_key.as_ref().and_then(|k| by_key.get(k)) {
                    Some(r) => Ok(Enqueued::Existing(r.clone())),
                    None => Err(StoreError::Conflict(format!(
                        "registration id {} already exists",
                        item.id
                    ))),
                }
            })
            .collect()
    }

    /// Leases the next registration of `profile` that `which` allows to `holder` until
    /// `now + lease`, counting an attempt and bumping its fencing token. Due: pending
    /// with `next_attempt_at <= now` (any pending for [`Claim::Probe`]), or delivering
    /// with an expired lease. Only the profile's own registrations: a gateway delivers
    /// with one GoTo login and must not send another's.
    ///
    /// # Errors
    /// Database failures.
    pub async fn claim(
        &self,
        profile: &str,
        holder: &str,
        now: Timestamp,
        lease: Duration,
        which: Claim,
    ) -> Result<Option<Registration>, StoreError> {
        read_one(
            OUTBOX
                .claim(&self.db, Some(profile), holder, now, lease, which)
                .await?,
        )
    }

    /// Extends the lease of the attempt holding `fence` to `lease_until`. False (and
    /// nothing changed) when that attempt no longer holds it.
    ///
    /// # Errors
    /// Database failures.
    pub async fn renew(
        &self,
        id: &str,
        fence: i64,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        OUTBOX.renew(&self.db, id, fence, lease_until).await
    }

    /// Ends the attempt holding `fence` and returns the registration as it now stands;
    /// `None` (and nothing changed) if the registration was claimed again since.
    ///
    /// # Errors
    /// Database failures.
    pub async fn complete(
        &self,
        id: &str,
        fence: i64,
        now: Timestamp,
        completion: &Completion,
    ) -> Result<Option<Registration>, StoreError> {
        let (state, key, url, error) = completion_columns(completion);
        read_one(
            self.db
                .note_returning(
                    format!(
                        "UPDATE outbox SET state = $1, registrant_key = $2, join_url = $3,
                             last_error = COALESCE($4, last_error), lease_holder = NULL,
                             lease_until = NULL, updated_at = $5, finished_at = $5
                         WHERE id = $6 AND state = 'delivering' AND fence = $7
                         RETURNING {COLUMNS}"
                    ),
                    args![state.as_str(), key, url, error, now.as_millis(), id, fence],
                )
                .await?,
        )
    }

    /// Gives the attempt holding `fence` back as pending, due at `next_attempt_at`,
    /// with `error` as the last error, and returns the registration as it now stands
    /// (`None`: claimed again since, nothing changed). [`Release`] says whether the
    /// attempt counts and whether the give-up clock starts (if it is not running yet).
    ///
    /// # Errors
    /// Database failures.
    pub async fn release(
        &self,
        id: &str,
        fence: i64,
        now: Timestamp,
        next_attempt_at: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Option<Registration>, StoreError> {
        read_one(
            OUTBOX
                .release(&self.db, (id, fence), now, next_attempt_at, error, why)
                .await?,
        )
    }

    /// Makes every pending registration of `profile` due at `now` (GoTo is back: the
    /// backlog goes out at the rate limit instead of when each backoff ends). Returns
    /// how many were waiting.
    ///
    /// # Errors
    /// Database failures.
    pub async fn make_due(&self, profile: &str, now: Timestamp) -> Result<u64, StoreError> {
        OUTBOX.make_due(&self.db, Some(profile), now).await
    }

    /// How many registrations of `profile` are due by `now` or being delivered: the
    /// queue a new registration joins. Served by the due and lease indexes, so its cost
    /// follows the queue, not the history.
    ///
    /// # Errors
    /// Database failures.
    pub async fn waiting(&self, profile: &str, now: Timestamp) -> Result<u64, StoreError> {
        OUTBOX.waiting(&self.db, Some(profile), now).await
    }

    /// One registration.
    ///
    /// # Errors
    /// Database failures.
    pub async fn registration(&self, id: &str) -> Result<Option<Registration>, StoreError> {
        read_one(
            self.db
                .query_opt(
                    format!("SELECT {COLUMNS} FROM outbox WHERE id = $1"),
                    args![id],
                )
                .await?,
        )
    }

    /// Registrations, newest first, optionally of one state or one email (any case).
    /// Each shape of the query is served by an index.
    ///
    /// # Errors
    /// Database failures.
    pub async fn list(
        &self,
        state: Option<OutboxState>,
        email: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        if let Some(state) = state {
            values.push(Arg::from(state.as_str()));
            conditions.push(format!("state = ${}", values.len()));
        }
        if let Some(email) = email {
            values.push(Arg::from(email));
            conditions.push(format!("lower(email) = lower(${})", values.len()));
        }
        values.push(Arg::from(limit));
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox {filter} ORDER BY created_at DESC, id DESC LIMIT ${}",
            values.len()
        );
        self.db.query(sql, values).await?.iter().map(read).collect()
    }

    /// How many registrations are in each state (reads the whole outbox: for reports,
    /// not for anything called often; see [`Self::open_counts`]).
    ///
    /// # Errors
    /// Database failures.
    pub async fn counts(&self) -> Result<BTreeMap<OutboxState, u64>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT state, count(*) FROM outbox GROUP BY state",
                Vec::new(),
            )
            .await?;
        let mut counts: BTreeMap<OutboxState, u64> =
            OutboxState::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in rows {
            if let Ok(state) = row.text(0)?.parse() {
                counts.insert(state, u64::try_from(row.int(1)?).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    /// The outbox's gauges: how many registrations wait or need a person, and since
    /// when the oldest waits; counted from indexes, so the cost follows those rows,
    /// never the delivered history.
    ///
    /// # Errors
    /// Database failures.
    pub async fn registration_gauges(&self) -> Result<QueueGauges, StoreError> {
        OUTBOX.gauges(&self.db).await
    }

    /// When the earliest pending (or leased) registration of `profile` is due.
    ///
    /// # Errors
    /// Database failures.
    pub async fn next_due(&self, profile: &str) -> Result<Option<Timestamp>, StoreError> {
        OUTBOX.next_due(&self.db, Some(profile)).await
    }

    /// Makes a failed or dead registration pending again with fresh attempts and a
    /// fresh give-up clock.
    ///
    /// # Errors
    /// Database failures.
    pub async fn retry(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1,
                     updated_at = $1, finished_at = NULL, failing_since = NULL
                 WHERE id = $2 AND state IN ('failed', 'dead')",
                args![now.as_millis(), id],
            )
            .await?;
        Ok(n == 1)
    }

    /// [`Self::retry`] for every failed and dead registration; returns how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn retry_all_failed(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.db
            .execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1,
                     updated_at = $1, finished_at = NULL, failing_since = NULL
                 WHERE state IN ('failed', 'dead')",
                args![now.as_millis()],
            )
            .await
    }

    /// Deletes a failed or dead registration (an operator gave up on it).
    ///
    /// # Errors
    /// Database failures.
    pub async fn discard(&self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "DELETE FROM outbox WHERE id = $1 AND state IN ('failed', 'dead')",
                args![id],
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes delivered (and already-registered) registrations finished before
    /// `before`; returns how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn purge_delivered_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.db
            .execute(
                "DELETE FROM outbox WHERE state IN ('delivered', 'already_registered')
                     AND finished_at < $1",
                args![before.as_millis()],
            )
            .await
    }

    /// Calls `wake` whenever another process stores a registration, where the database
    /// can say so (PostgreSQL's `LISTEN`). Returns false when it cannot: the worker's
    /// polling finds the work instead. The listener lives on this runtime until the
    /// process ends, reconnecting after a break (polling covers the gap).
    pub fn notify_new_work(self: &std::sync::Arc<Self>, wake: Box<dyn Fn() + Send + Sync>) -> bool {
        if self.db.dialect() != Dialect::Postgres {
            return false;
        }
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = store.listen(&*wake).await {
                    tracing::warn!(
                        "LISTEN {CHANNEL} stopped ({}); polling meanwhile",
                        g2w_goto::chain(&e)
                    );
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        true
    }

    async fn listen(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<(), StoreError> {
        let crate::db::Db::Postgres(pg) = &self.db else {
            return Ok(());
        };
        let (client, mut connection) = pg.dedicated().await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                match message {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| pg.failed("LISTEN", e))?;
        while rx.recv().await.is_some() {
            wake();
        }
        driver.abort();
        Ok(())
    }
}
