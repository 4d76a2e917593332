//! The mechanics of every durable queue, in one `jobs` table (River's model): a job is
//! one piece of work on one row of a domain table (a registration to send to GoTo, an
//! event to forward to the user's URL). The domain rows stay in their own tables with
//! what people look at; the job says where the work stands. One set of calls runs every
//! kind:
//!
//! - a **claim** leases the next due jobs (expired leases first, then the pending jobs due
//!   longest) to one attempt each, counts the attempt and bumps the job's **fence**;
//! - only the attempt holding the current fence may **renew** its lease (its heartbeat),
//!   **release** the job back to pending with a due time, or **finish** it; an attempt
//!   whose lease was taken over changes nothing;
//! - a release starts the **give-up clock** (`failing_since`) unless the attempt was only
//!   paused, and counts the attempt unless it was only throttled or paused;
//! - **gauges** count waiting and failed jobs from partial indexes, so their cost follows
//!   the queue, never the finished history.
//!
//! On PostgreSQL a claim skips jobs another gateway is claiming at that moment
//! (`FOR UPDATE SKIP LOCKED`), so gateways sharing a queue never wait for each other.
//! The statements are fixed text: the kind and owner are arguments, not SQL.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use g2w_goto::Timestamp;

use crate::db::{Arg, Dialect, Durability, Row, Statement, args};
use crate::{Store, StoreError};

/// A kind of durable work (a queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueName {
    /// Registrations to GoTo.
    Registrations,
    /// GoTo's events to the user's own URL.
    Forwards,
}

impl QueueName {
    /// Every kind.
    pub const ALL: [Self; 2] = [Self::Registrations, Self::Forwards];

    /// The name in the `jobs` table, metrics and messages.
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

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// Waiting for its (next) attempt.
    Pending,
    /// Leased to one attempt.
    Running,
    /// Finished: the work was done.
    Done,
    /// Refused for good (the reason is kept).
    Failed,
    /// Given up after failing for longer than the give-up age.
    Dead,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            other => return Err(StoreError::Data(format!("unknown job state {other:?}"))),
        })
    }

    /// Whether nothing more will happen to it (unless retried by hand).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its kind.
    pub kind: QueueName,
    /// The row it works on.
    pub id: String,
    /// Whose it is (a profile), or empty.
    pub owner: String,
    /// Where it stands.
    pub state: JobState,
    /// The fencing token of the latest claim: only that attempt may change it.
    pub fence: i64,
    /// Attempts so far (throttled and paused ones are given back).
    pub attempts: u32,
    /// When its next attempt is due.
    pub run_at: Timestamp,
    /// Until when its current attempt holds it.
    pub lease_until: Option<Timestamp>,
    /// When the current run of failed attempts began.
    pub failing_since: Option<Timestamp>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// Its last change.
    pub updated_at: Timestamp,
    /// When it reached a final state.
    pub finished_at: Option<Timestamp>,
}

/// The columns of a job, in [`Job::read`]'s order, as a literal for `concat!`: of
/// `jobs` itself, or (`job_columns!(j)`) of `jobs` named `j` in a join.
macro_rules! job_columns {
    () => {
        "kind, id, owner, state, fence, attempts, run_at, lease_until, failing_since, \
         last_error, created_at, updated_at, finished_at"
    };
    (j) => {
        "j.kind, j.id, j.owner, j.state, j.fence, j.attempts, j.run_at, j.lease_until, \
         j.failing_since, j.last_error, j.created_at, j.updated_at, j.finished_at"
    };
}
pub(crate) use job_columns;

impl Job {
    /// The job in `row`'s columns `at..at + JOB_WIDTH`.
    pub(crate) fn read(r: &Row, at: usize) -> Result<Self, StoreError> {
        let time = |i| r.int(at + i).map(Timestamp::from_millis);
        let maybe = |i| r.opt_int(at + i).map(|v| v.map(Timestamp::from_millis));
        Ok(Self {
            kind: r.text(at)?.parse().map_err(StoreError::Data)?,
            id: r.text(at + 1)?,
            owner: r.text(at + 2)?,
            state: JobState::parse(&r.text(at + 3)?)?,
            fence: r.int(at + 4)?,
            attempts: u32::try_from(r.int(at + 5)?).unwrap_or(0),
            run_at: time(6)?,
            lease_until: maybe(7)?,
            failing_since: maybe(8)?,
            last_error: r.opt_text(at + 9)?,
            created_at: time(10)?,
            updated_at: time(11)?,
            finished_at: maybe(12)?,
        })
    }
}

/// How a job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// The work was done.
    Done,
    /// Refused for good, for this reason.
    Failed(String),
    /// Given up after failing too long; the last error.
    Dead(String),
}

impl JobEnd {
    /// The state it leaves the job in, and the error it records.
    pub(crate) fn columns(&self) -> (JobState, Option<String>) {
        match self {
            Self::Done => (JobState::Done, None),
            Self::Failed(why) => (JobState::Failed, Some(why.clone())),
            Self::Dead(why) => (JobState::Dead, Some(why.clone())),
        }
    }
}

/// Which job a claim may take.
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

/// Why a leased job goes back to pending.
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

/// What a queue holds that someone should know about: the waiting jobs, those that need
/// a person, and how long the oldest has waited.
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
    /// When the oldest waiting job (pending or running) was made.
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

/// The claim: orphans (expired leases) first, then the pending jobs due longest; two
/// look-ups on their own partial indexes (one `OR` would scan the table). `$skip` is
/// PostgreSQL's `FOR UPDATE SKIP LOCKED`.
macro_rules! claim_sql {
    ($skip:literal) => {
        concat!(
            "WITH orphans AS (
                 SELECT id FROM jobs WHERE kind = $1 AND owner = $2 AND state = 'running'
                     AND lease_until <= $3
                 ORDER BY lease_until LIMIT $4",
            $skip,
            "),
             due AS (
                 SELECT id FROM jobs WHERE kind = $1 AND owner = $2 AND state = 'pending'
                     AND run_at <= $5
                 ORDER BY run_at LIMIT $4",
            $skip,
            ")
             UPDATE jobs SET state = 'running', lease_until = $6, holder = $7,
                 attempts = attempts + 1, fence = fence + 1, updated_at = $3
             WHERE kind = $1 AND id IN (SELECT id FROM orphans UNION ALL SELECT id FROM due LIMIT $4)
             RETURNING ",
            job_columns!()
        )
    };
}

const CLAIM_SQLITE: &str = claim_sql!("");
const CLAIM_POSTGRES: &str = claim_sql!(" FOR UPDATE SKIP LOCKED");

/// Ends one job held by the attempt with the given fence (SQLite: one per statement).
const FINISH_ONE: &str = concat!(
    "UPDATE jobs SET state = $4, last_error = COALESCE($5, last_error),
         lease_until = NULL, holder = NULL, updated_at = $6, finished_at = $6
     WHERE kind = $1 AND id = $2 AND state = 'running' AND fence = $3
     RETURNING ",
    job_columns!()
);

/// Ends many jobs in one statement (PostgreSQL): `$1` kind, `$2` now, then arrays of
/// ids, fences, states and errors. A literal, so kinds that record their outcome in the
/// same statement can wrap it.
macro_rules! finish_many {
    () => {
        concat!(
            "UPDATE jobs SET state = t.t_state,
                 last_error = COALESCE(t.t_error, last_error), lease_until = NULL,
                 holder = NULL, updated_at = $2, finished_at = $2
             FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[])
                 AS t(t_id, t_fence, t_state, t_error)
             WHERE kind = $1 AND id = t.t_id AND state = 'running' AND fence = t.t_fence
             RETURNING ",
            crate::jobs::job_columns!()
        )
    };
}
pub(crate) use finish_many;

/// One attempt's end: the job's id and fence, and how it ended.
pub type Ending = (String, i64, JobEnd);

impl Store {
    /// Leases up to `n` jobs of `kind` and `owner` that `which` allows to `holder` until
    /// `now + lease`, counting an attempt and bumping the fence of each. Due: pending
    /// with `run_at <= now` (any pending for [`Claim::Probe`]), or running with an expired
    /// lease. The oldest first.
    ///
    /// # Errors
    /// Database failures.
    #[allow(clippy::too_many_arguments)] // one claim's terms, each needed
    pub async fn claim_jobs(
        &self,
        kind: QueueName,
        owner: &str,
        holder: &str,
        now: Timestamp,
        lease: Duration,
        which: Claim,
        n: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let sql = match self.db.dialect() {
            Dialect::Sqlite => CLAIM_SQLITE,
            Dialect::Postgres => CLAIM_POSTGRES,
        };
        let mut jobs = self
            .db
            .note_rows(
                sql,
                args![
                    kind.as_str(),
                    owner,
                    now.as_millis(),
                    n.max(1),
                    which.due_by(now).as_millis(),
                    (now + lease).as_millis(),
                    holder,
                ],
            )
            .await?
            .iter()
            .map(|r| Job::read(r, 0))
            .collect::<Result<Vec<_>, _>>()?;
        // Oldest first, as they were made (a database returns updated rows in its order).
        jobs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(jobs)
    }

    /// Extends the lease of the attempt holding `fence` on `kind`'s job `id`; false (and
    /// nothing changed) when that attempt no longer holds it.
    ///
    /// # Errors
    /// Database failures.
    pub async fn renew_job(
        &self,
        kind: QueueName,
        id: &str,
        fence: i64,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self
            .db
            .note(
                "UPDATE jobs SET lease_until = $4
                 WHERE kind = $1 AND id = $2 AND state = 'running' AND fence = $3",
                args![kind.as_str(), id, fence, until.as_millis()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Gives the attempt holding `fence` back as pending, due at `due`, with `error` as
    /// the last error; the job as it now stands, or `None` (nothing changed) when the job
    /// was claimed again since. [`Release`] says whether the attempt counts and whether
    /// the give-up clock starts (if it is not running yet).
    ///
    /// # Errors
    /// Database failures.
    #[allow(clippy::too_many_arguments)] // one release's terms, each needed
    pub async fn release_job(
        &self,
        kind: QueueName,
        id: &str,
        fence: i64,
        now: Timestamp,
        due: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Option<Job>, StoreError> {
        let row = self
            .db
            .note_returning(
                concat!(
                    "UPDATE jobs SET state = 'pending', run_at = $4, last_error = $5,
                         attempts = attempts - $6, lease_until = NULL, holder = NULL,
                         updated_at = $7,
                         failing_since = CASE WHEN $8 THEN COALESCE(failing_since, $7)
                                              ELSE failing_since END
                     WHERE kind = $1 AND id = $2 AND state = 'running' AND fence = $3
                     RETURNING ",
                    job_columns!()
                ),
                args![
                    kind.as_str(),
                    id,
                    fence,
                    due.as_millis(),
                    error,
                    i64::from(why != Release::Failed),
                    now.as_millis(),
                    why != Release::Paused,
                ],
            )
            .await?;
        row.map(|r| Job::read(&r, 0)).transpose()
    }

    /// Ends the attempts named in `ends`, each only if it still holds its job; each
    /// answer (the job as it now stands, or `None`) in the order asked. One statement
    /// (PostgreSQL) or one transaction (SQLite).
    ///
    /// # Errors
    /// Database failures (then none is recorded).
    pub async fn finish_jobs(
        &self,
        kind: QueueName,
        now: Timestamp,
        ends: &[Ending],
    ) -> Result<Vec<Option<Job>>, StoreError> {
        let steps = self.finish_steps(kind, now, ends);
        self.finish_by(steps, ends).await
    }

    /// Runs `steps` (made by [`Self::finish_steps`], with whatever a kind records beside
    /// them) in one transaction; each end's job as it now stands, in the order of `ends`.
    pub(crate) async fn finish_by(
        &self,
        steps: Vec<Statement>,
        ends: &[Ending],
    ) -> Result<Vec<Option<Job>>, StoreError> {
        let finished = self
            .db
            .run(steps, Durability::Bookkeeping)
            .await?
            .iter()
            .flat_map(|d| &d.rows)
            .map(|r| Job::read(r, 0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(in_order(ends, finished))
    }

    /// The statements that end `ends`, for [`Self::finish_jobs`] and for kinds that
    /// record their outcome in the same transaction.
    pub(crate) fn finish_steps(
        &self,
        kind: QueueName,
        now: Timestamp,
        ends: &[Ending],
    ) -> Vec<Statement> {
        match self.db.dialect() {
            Dialect::Postgres => {
                let columns: Vec<_> = ends.iter().map(|(_, _, end)| end.columns()).collect();
                vec![Statement::new(
                    finish_many!(),
                    vec![
                        Arg::from(kind.as_str()),
                        Arg::from(now.as_millis()),
                        Arg::Texts(ends.iter().map(|(id, _, _)| Some(id.clone())).collect()),
                        Arg::Ints(ends.iter().map(|(_, fence, _)| *fence).collect()),
                        Arg::Texts(
                            columns
                                .iter()
                                .map(|(s, _)| Some(s.as_str().to_owned()))
                                .collect(),
                        ),
                        Arg::Texts(columns.into_iter().map(|(_, e)| e).collect()),
                    ],
                )]
            }
            Dialect::Sqlite => ends
                .iter()
                .map(|(id, fence, end)| {
                    let (state, error) = end.columns();
                    Statement::new(
                        FINISH_ONE,
                        args![
                            kind.as_str(),
                            id,
                            *fence,
                            state.as_str(),
                            error,
                            now.as_millis()
                        ],
                    )
                })
                .collect(),
        }
    }

    /// Makes every pending job of `kind` and `owner` due at `now` (the other side is
    /// back: the backlog goes out at the rate limit instead of when each backoff ends).
    /// Returns how many were waiting.
    ///
    /// # Errors
    /// Database failures.
    pub async fn make_jobs_due(
        &self,
        kind: QueueName,
        owner: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.db
            .note(
                "UPDATE jobs SET run_at = $3
                 WHERE kind = $1 AND owner = $2 AND state = 'pending' AND run_at > $3",
                args![kind.as_str(), owner, now.as_millis()],
            )
            .await
    }

    /// When the earliest pending (or leased) job of `kind` and `owner` is due.
    ///
    /// # Errors
    /// Database failures.
    pub async fn next_job_due(
        &self,
        kind: QueueName,
        owner: &str,
    ) -> Result<Option<Timestamp>, StoreError> {
        // Two indexed look-ups rather than one OR that scans the table.
        let row = self
            .db
            .query_one(
                "SELECT min(m) FROM (
                     SELECT min(run_at) AS m FROM jobs
                         WHERE kind = $1 AND owner = $2 AND state = 'pending'
                     UNION ALL
                     SELECT min(lease_until) FROM jobs
                         WHERE kind = $1 AND owner = $2 AND state = 'running') AS d",
                args![kind.as_str(), owner],
            )
            .await?;
        Ok(row.opt_int(0)?.map(Timestamp::from_millis))
    }

    /// How many jobs of `kind` and `owner` are due by `now` or running: the queue a new
    /// job joins.
    ///
    /// # Errors
    /// Database failures.
    pub async fn jobs_waiting(
        &self,
        kind: QueueName,
        owner: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT (SELECT count(*) FROM jobs WHERE kind = $1 AND owner = $2
                             AND state = 'pending' AND run_at <= $3)
                      + (SELECT count(*) FROM jobs WHERE kind = $1 AND owner = $2
                             AND state = 'running')",
                args![kind.as_str(), owner, now.as_millis()],
            )
            .await?;
        Ok(u64::try_from(row.int(0)?).unwrap_or(0))
    }

    /// The gauges of `kind`, from partial indexes: waiting and failed jobs, and the
    /// oldest wait.
    ///
    /// # Errors
    /// Database failures.
    pub async fn job_gauges(&self, kind: QueueName) -> Result<QueueGauges, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT
                     (SELECT count(*) FROM jobs WHERE kind = $1 AND state = 'pending'),
                     (SELECT count(*) FROM jobs WHERE kind = $1 AND state = 'running'),
                     (SELECT count(*) FROM jobs WHERE kind = $1 AND state = 'failed'),
                     (SELECT count(*) FROM jobs WHERE kind = $1 AND state = 'dead'),
                     (SELECT min(created_at) FROM jobs
                         WHERE kind = $1 AND state IN ('pending', 'running'))",
                args![kind.as_str()],
            )
            .await?;
        let n = |i| row.int(i).map(|v| u64::try_from(v).unwrap_or(0));
        Ok(QueueGauges {
            pending: n(0)?,
            delivering: n(1)?,
            failed: n(2)?,
            dead: n(3)?,
            oldest_waiting: row.opt_int(4)?.map(Timestamp::from_millis),
        })
    }

    /// One job.
    ///
    /// # Errors
    /// Database failures.
    pub async fn job(&self, kind: QueueName, id: &str) -> Result<Option<Job>, StoreError> {
        self.db
            .query_opt(
                concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM jobs WHERE kind = $1 AND id = $2"
                ),
                args![kind.as_str(), id],
            )
            .await?
            .map(|r| Job::read(&r, 0))
            .transpose()
    }
}

/// The statement that makes a failed or dead job of `kind` (`id`, or every one) pending
/// again, with fresh attempts and a fresh give-up clock.
pub(crate) fn retry_step(kind: QueueName, id: Option<&str>, now: Timestamp) -> Statement {
    match id {
        Some(id) => Statement::new(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = $3, updated_at = $3,
                 finished_at = NULL, failing_since = NULL
             WHERE kind = $1 AND id = $2 AND state IN ('failed', 'dead')",
            args![kind.as_str(), id, now.as_millis()],
        ),
        None => Statement::new(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = $2, updated_at = $2,
                 finished_at = NULL, failing_since = NULL
             WHERE kind = $1 AND state IN ('failed', 'dead')",
            args![kind.as_str(), now.as_millis()],
        ),
    }
}

/// Each end's job as finished, in the order of `ends` (`None` where its attempt no longer
/// held the job).
pub(crate) fn in_order(ends: &[Ending], finished: Vec<Job>) -> Vec<Option<Job>> {
    let mut finished: Vec<Option<Job>> = finished.into_iter().map(Some).collect();
    ends.iter()
        .map(|(id, fence, _)| {
            finished
                .iter_mut()
                .find(|f| f.as_ref().is_some_and(|j| &j.id == id && j.fence == *fence))
                .and_then(Option::take)
        })
        .collect()
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
