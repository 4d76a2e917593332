//! The durable queues: registrations waiting for GoTo (the outbox) and received events
//! waiting for the user's URL (forwards). Both keep the same bookkeeping in their own
//! columns, and the statements that run it are written once here, for any queue table:
//!
//! - a **claim** leases the next due item (an expired lease first, then the pending item
//!   due longest) to one attempt, counts the attempt and bumps the item's **fence**;
//! - only the attempt holding the current fence may **renew** its lease (its heartbeat),
//!   **release** the item back to pending with a due time, or **finish** it; an attempt
//!   whose lease was taken over changes nothing;
//! - a release starts the **give-up clock** (`failing_since`) unless the attempt was only
//!   paused, and counts the attempt unless it was only throttled or paused;
//! - **gauges** count the waiting and the failed items from indexes, so their cost never
//!   grows with the delivered history.
//!
//! On PostgreSQL claims skip rows another gateway is claiming at that moment
//! (`FOR UPDATE SKIP LOCKED`), so gateways sharing a queue never wait for each other.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use g2w_goto::Timestamp;

use crate::StoreError;
use crate::db::{Arg, Db, Dialect, Row};

/// One of g2w's durable queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueName {
    /// Registrations waiting for GoTo (the outbox).
    Registrations,
    /// GoTo's events waiting for the user's own URL.
    Forwards,
}

impl QueueName {
    /// Every queue.
    pub const ALL: [Self; 2] = [Self::Registrations, Self::Forwards];

    /// The name in metrics and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registrations => "registrations",
            Self::Forwards => "forwards",
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for QueueName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a queue (registrations, forwards)"))
    }
}

/// Which item a claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The next one due now (or one whose lease ran out).
    Due,
    /// The next one in line even if its backoff has not run out: a probe of whether the
    /// other side is back.
    Probe,
}

impl Claim {
    /// The latest due time this claim may take at `now`.
    pub fn due_by(self, now: Timestamp) -> Timestamp {
        match self {
            Self::Due => now,
            Self::Probe => Timestamp::MAX,
        }
    }
}

/// Why a leased item goes back to pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The attempt failed: it counts, and the give-up clock runs.
    Failed,
    /// The other side asked to slow down (429): the give-up clock runs, but no attempt
    /// is used.
    Throttled,
    /// Nothing could be tried (no usable login): nothing failed, nothing counts.
    Paused,
}

/// What a queue holds that someone should know about: the waiting items, those that
/// need a person, and how long the oldest has waited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueGauges {
    /// Waiting for an attempt.
    pub pending: u64,
    /// Being attempted now.
    pub delivering: u64,
    /// Refused for good.
    pub failed: u64,
    /// Given up after failing for too long.
    pub dead: u64,
    /// When the oldest waiting item (pending or delivering) arrived.
    pub oldest_waiting: Option<Timestamp>,
}

impl QueueGauges {
    /// The backlog in words, as the console and `g2w webhooks status` say it:
    /// `30 events waiting to be forwarded (the oldest for 1 min 30 s), 2 failed`.
    pub fn summary(&self, now: Timestamp, items: &str, waiting_to: &str) -> String {
        let waiting = self.pending + self.delivering;
        let mut text = format!("{waiting} {items} waiting to {waiting_to}");
        if let Some(oldest) = self.oldest_waiting.filter(|_| waiting > 0) {
            let secs = now.since(oldest).as_secs();
            let age = match secs {
                0..60 => format!("{secs} s"),
                60..3_600 => format!("{} min {} s", secs / 60, secs % 60),
                _ => format!("{} h {} min", secs / 3_600, secs % 3_600 / 60),
            };
            text.push_str(&format!(" (the oldest for {age})"));
        }
        let failed = self.failed + self.dead;
        if failed > 0 {
            text.push_str(&format!(", {failed} failed"));
        }
        text
    }
}

/// A queue table's columns.
pub(crate) struct Table {
    pub table: &'static str,
    pub key: &'static str,
    pub state: &'static str,
    pub next_at: &'static str,
    pub lease_until: &'static str,
    pub fence: &'static str,
    pub attempts: &'static str,
    pub failing_since: &'static str,
    pub error: &'static str,
    pub created: &'static str,
    /// Set to the moment of every change, where the table keeps one.
    pub touched: Option<&'static str>,
    /// The claimer's name, where the table keeps one.
    pub holder: Option<&'static str>,
    /// The column that says whose an item is (a profile), where items have an owner.
    pub owner: Option<&'static str>,
    /// What claims, releases and finishes return.
    pub returning: &'static str,
    /// The state of an item given up for good after failing too long.
    pub dead: &'static str,
}

/// A statement's arguments, numbered as they are added.
#[derive(Default)]
struct Args(Vec<Arg>);

impl Args {
    /// Adds `value`, returning its placeholder.
    fn add(&mut self, value: impl Into<Arg>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }
}

fn skip_locked(db: &Db) -> &'static str {
    match db.dialect() {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    }
}

impl Table {
    /// `AND owner = $n` when the table has owners and one is given.
    fn owned(&self, owner: Option<&str>, args: &mut Args) -> String {
        match (self.owner, owner) {
            (Some(column), Some(owner)) => format!(" AND {column} = {}", args.add(owner)),
            _ => String::new(),
        }
    }

    fn touched(&self, now: &str) -> String {
        self.touched
            .map(|c| format!(", {c} = {now}"))
            .unwrap_or_default()
    }

    /// Leases the next `n` items `which` allows (of `owner`) to `holder` until
    /// `now + lease`: orphans first, then those due longest.
    #[allow(clippy::too_many_arguments)] // one claim's terms, each needed
    pub async fn claim(
        &self,
        db: &Db,
        owner: Option<&str>,
        holder: &str,
        now: Timestamp,
        lease: Duration,
        which: Claim,
        n: u32,
    ) -> Result<Vec<Row>, StoreError> {
        let t = self;
        let mut a = Args::default();
        let until = a.add((now + lease).as_millis());
        let at = a.add(now.as_millis());
        let due_by = a.add(which.due_by(now).as_millis());
        let n = a.add(n.max(1));
        let holder = t
            .holder
            .map(|c| format!(", {c} = {}", a.add(holder)))
            .unwrap_or_default();
        let owned = t.owned(owner, &mut a);
        let skip = skip_locked(db);
        // Orphans (expired leases) first, then the pending items due longest: two
        // look-ups on their own indexes (one OR would scan the table).
        let sql = format!(
            "WITH orphans AS (
                 SELECT {key} FROM {table} WHERE {state} = 'delivering' AND {lease} <= {at}{owned}
                 ORDER BY {lease} LIMIT {n}{skip}),
             due AS (
                 SELECT {key} FROM {table} WHERE {state} = 'pending' AND {next} <= {due_by}{owned}
                 ORDER BY {next} LIMIT {n}{skip})
             UPDATE {table} SET {state} = 'delivering', {lease} = {until},
                 {attempts} = {attempts} + 1, {fence} = {fence} + 1{holder}{touched}
             WHERE {key} IN (SELECT {key} FROM orphans UNION ALL SELECT {key} FROM due LIMIT {n})
             RETURNING {returning}",
            table = t.table,
            state = t.state,
            lease = t.lease_until,
            attempts = t.attempts,
            fence = t.fence,
            touched = t.touched(&at),
            key = t.key,
            next = t.next_at,
            returning = t.returning,
        );
        db.note_rows(sql, a.0).await
    }

    /// Extends the lease of the attempt holding `fence`; false when it no longer holds it.
    pub async fn renew(
        &self,
        db: &Db,
        key: &str,
        fence: i64,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let t = self;
        let sql = format!(
            "UPDATE {table} SET {lease} = $1 WHERE {key} = $2 AND {state} = 'delivering'
                 AND {fence} = $3",
            table = t.table,
            lease = t.lease_until,
            key = t.key,
            state = t.state,
            fence = t.fence,
        );
        let n = db
            .note(sql, crate::db::args![until.as_millis(), key, fence])
            .await?;
        Ok(n == 1)
    }

    /// Gives the attempt holding `(key, fence)` back as pending, due at `due`, with
    /// `error`.
    pub async fn release(
        &self,
        db: &Db,
        (key, fence): (&str, i64),
        now: Timestamp,
        due: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Option<Row>, StoreError> {
        let t = self;
        let mut a = Args::default();
        let due = a.add(due.as_millis());
        let error = a.add(error);
        let uncount = a.add(i64::from(why != Release::Failed));
        let at = a.add(now.as_millis());
        let failing = a.add(why != Release::Paused);
        let key_arg = a.add(key);
        let fence_arg = a.add(fence);
        let holder = t
            .holder
            .map(|c| format!(", {c} = NULL"))
            .unwrap_or_default();
        let sql = format!(
            "UPDATE {table} SET {state} = 'pending', {next} = {due}, {err} = {error},
                 {attempts} = {attempts} - {uncount}, {lease} = NULL{holder}{touched},
                 {failing_col} = CASE WHEN {failing} THEN COALESCE({failing_col}, {at})
                                      ELSE {failing_col} END
             WHERE {key} = {key_arg} AND {state} = 'delivering' AND {fence} = {fence_arg}
             RETURNING {returning}",
            table = t.table,
            state = t.state,
            next = t.next_at,
            err = t.error,
            attempts = t.attempts,
            lease = t.lease_until,
            touched = t.touched(&at),
            failing_col = t.failing_since,
            key = t.key,
            fence = t.fence,
            returning = t.returning,
        );
        db.note_returning(sql, a.0).await
    }

    /// Makes every pending item (of `owner`) due at `now`; how many there were.
    pub async fn make_due(
        &self,
        db: &Db,
        owner: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let t = self;
        let mut a = Args::default();
        let at = a.add(now.as_millis());
        let owned = t.owned(owner, &mut a);
        let sql = format!(
            "UPDATE {table} SET {next} = {at} WHERE {state} = 'pending' AND {next} > {at}{owned}",
            table = t.table,
            next = t.next_at,
            state = t.state,
        );
        db.note(sql, a.0).await
    }

    /// When the earliest pending (or leased) item (of `owner`) is due.
    pub async fn next_due(
        &self,
        db: &Db,
        owner: Option<&str>,
    ) -> Result<Option<Timestamp>, StoreError> {
        let t = self;
        let mut a = Args::default();
        let owned = t.owned(owner, &mut a);
        // Two indexed look-ups rather than one OR that scans the table.
        let sql = format!(
            "SELECT min(m) FROM (
                 SELECT min({next}) AS m FROM {table} WHERE {state} = 'pending'{owned}
                 UNION ALL
                 SELECT min({lease}) FROM {table} WHERE {state} = 'delivering'{owned}) AS d",
            table = t.table,
            next = t.next_at,
            lease = t.lease_until,
            state = t.state,
        );
        let row = db.query_one(sql, a.0).await?;
        Ok(row.opt_int(0)?.map(Timestamp::from_millis))
    }

    /// How many items (of `owner`) are due by `now` or being attempted: the queue a new
    /// item joins.
    pub async fn waiting(
        &self,
        db: &Db,
        owner: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let t = self;
        let mut a = Args::default();
        let at = a.add(now.as_millis());
        let owned = t.owned(owner, &mut a);
        let sql = format!(
            "SELECT (SELECT count(*) FROM {table} WHERE {state} = 'pending' AND {next} <= {at}{owned})
                  + (SELECT count(*) FROM {table} WHERE {state} = 'delivering'{owned})",
            table = t.table,
            state = t.state,
            next = t.next_at,
        );
        let row = db.query_one(sql, a.0).await?;
        Ok(u64::try_from(row.int(0)?).unwrap_or(0))
    }

    /// The queue's gauges, from indexes: waiting and failed items, and the oldest wait.
    pub async fn gauges(&self, db: &Db) -> Result<QueueGauges, StoreError> {
        let t = self;
        let count = |state: &str| {
            format!(
                "(SELECT count(*) FROM {table} WHERE {col} = '{state}')",
                table = t.table,
                col = t.state
            )
        };
        let oldest = |state: &str| {
            format!(
                "(SELECT min({created}) FROM {table} WHERE {col} = '{state}')",
                created = t.created,
                table = t.table,
                col = t.state
            )
        };
        let sql = format!(
            "SELECT {}, {}, {}, {}, {}, {}",
            count("pending"),
            count("delivering"),
            count("failed"),
            if t.dead == "failed" {
                "0".to_owned()
            } else {
                count(t.dead)
            },
            oldest("pending"),
            oldest("delivering"),
        );
        let row = db.query_one(sql, Vec::new()).await?;
        let n = |i| row.int(i).map(|v| u64::try_from(v).unwrap_or(0));
        let oldest = match (row.opt_int(4)?, row.opt_int(5)?) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(QueueGauges {
            pending: n(0)?,
            delivering: n(1)?,
            failed: n(2)?,
            dead: n(3)?,
            oldest_waiting: oldest.map(Timestamp::from_millis),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_reads_as_a_sentence() {
        let at = Timestamp::from_secs;
        let mut g = QueueGauges {
            pending: 28,
            delivering: 2,
            oldest_waiting: Some(at(1_000)),
            ..QueueGauges::default()
        };
        assert_eq!(
            g.summary(at(1_090), "events", "be forwarded"),
            "30 events waiting to be forwarded (the oldest for 1 min 30 s)"
        );
        g.failed = 2;
        assert!(
            g.summary(at(1_001), "events", "be forwarded")
                .ends_with("(the oldest for 1 s), 2 failed")
        );
        assert_eq!(
            QueueGauges::default().summary(at(5), "events", "be forwarded"),
            "0 events waiting to be forwarded"
        );
    }
}
