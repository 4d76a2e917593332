//! Registrations as people look at them: one, lists, counts, and what an operator does
//! with those GoTo refused.

use std::collections::BTreeMap;

use g2w_goto::Timestamp;

use super::*;
use crate::db::{Arg, Durability, Statement, args};
use crate::jobs::{QueueGauges, retry_step};
use crate::{Store, StoreError};

/// Registrations with their jobs, for lists: `SELECT … FROM … ` then the conditions.
const SELECT: &str = concat!("SELECT ", registration_columns!(job), " FROM ", joined!());

impl Store {
    /// One registration.
    ///
    /// # Errors
    /// Database failures.
    pub async fn registration(&self, id: &str) -> Result<Option<Registration>, StoreError> {
        read_one(
            self.db
                .query_opt(
                    concat!(
                        "SELECT ",
                        registration_columns!(job),
                        " FROM ",
                        joined!(),
                        " WHERE r.id = $1"
                    ),
                    args![id],
                )
                .await?,
        )
    }

    /// Registrations, newest first (ids are time-ordered), optionally of one state or one
    /// email (any case). Each shape of the query is served by an index.
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
            let (job, outcome) = match state {
                OutboxState::Pending => (JobState::Pending, None),
                OutboxState::Delivering => (JobState::Running, None),
                OutboxState::Delivered | OutboxState::AlreadyRegistered => {
                    (JobState::Done, Some(state.as_str()))
                }
                OutboxState::Failed => (JobState::Failed, None),
                OutboxState::Dead => (JobState::Dead, None),
            };
            values.push(Arg::from(job.as_str()));
            conditions.push(format!("j.state = ${}", values.len()));
            if let Some(outcome) = outcome {
                values.push(Arg::from(outcome));
                conditions.push(format!("r.outcome = ${}", values.len()));
            }
        }
        if let Some(email) = email {
            let (from, to) = email_range(email);
            values.push(Arg::from(from));
            values.push(Arg::from(to));
            conditions.push(format!(
                "r.person >= ${} AND r.person < ${}",
                values.len() - 1,
                values.len()
            ));
        }
        values.push(Arg::from(limit));
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "{SELECT} {filter} ORDER BY r.id DESC LIMIT ${}",
            values.len()
        );
        self.db.query(sql, values).await?.iter().map(read).collect()
    }

    /// How many registrations are in each state (reads every job and answer: for
    /// reports, not for anything called often; see [`Self::registration_gauges`]).
    ///
    /// # Errors
    /// Database failures.
    pub async fn counts(&self) -> Result<BTreeMap<OutboxState, u64>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT j.state, r.outcome, count(*) FROM registrations r
                 JOIN jobs j ON j.kind = 'registrations' AND j.id = r.id
                 GROUP BY j.state, r.outcome",
                Vec::new(),
            )
            .await?;
        let mut counts: BTreeMap<OutboxState, u64> =
            OutboxState::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in rows {
            let state = match (row.text(0)?.as_str(), row.opt_text(1)?.as_deref()) {
                ("pending", _) => OutboxState::Pending,
                ("running", _) => OutboxState::Delivering,
                ("done", Some("already_registered")) => OutboxState::AlreadyRegistered,
                ("done", _) => OutboxState::Delivered,
                ("failed", _) => OutboxState::Failed,
                _ => OutboxState::Dead,
            };
            *counts.entry(state).or_default() += u64::try_from(row.int(2)?).unwrap_or(0);
        }
        Ok(counts)
    }

    /// How many registrations for `webinar_key` still wait to reach GoTo (pending or
    /// being delivered), served by the index of waiting jobs.
    ///
    /// # Errors
    /// Database failures.
    pub async fn queued_for(&self, webinar_key: u64) -> Result<u64, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT count(*) FROM registrations r
                 JOIN jobs j ON j.kind = 'registrations' AND j.id = r.id
                 WHERE j.state IN ('pending', 'running') AND r.webinar_key = $1",
                args![webinar_key.to_string()],
            )
            .await?;
        Ok(u64::try_from(row.int(0)?).unwrap_or(0))
    }

    /// The registrations' gauges: how many wait or need a person, and since when the
    /// oldest waits; counted from indexes, so the cost follows those rows, never the
    /// delivered history.
    ///
    /// # Errors
    /// Database failures.
    pub async fn registration_gauges(&self) -> Result<QueueGauges, StoreError> {
        self.job_gauges(KIND).await
    }

    /// Makes a failed or dead registration pending again with fresh attempts and a
    /// fresh give-up clock.
    ///
    /// # Errors
    /// Database failures.
    pub async fn retry(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let step = retry_step(KIND, Some(id), now);
        Ok(self.db.execute(step.sql, step.args).await? == 1)
    }

    /// [`Self::retry`] for every failed and dead registration; returns how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn retry_all_failed(&self, now: Timestamp) -> Result<u64, StoreError> {
        let step = retry_step(KIND, None, now);
        self.db.execute(step.sql, step.args).await
    }

    /// Deletes a failed or dead registration (an operator gave up on it).
    ///
    /// # Errors
    /// Database failures.
    pub async fn discard(&self, id: &str) -> Result<bool, StoreError> {
        let done = self
            .db
            .run(
                vec![
                    Statement::new(
                        "DELETE FROM jobs WHERE kind = 'registrations' AND id = $1
                             AND state IN ('failed', 'dead')",
                        args![id],
                    ),
                    Statement::new(
                        "DELETE FROM registrations WHERE id = $1 AND NOT EXISTS (
                             SELECT 1 FROM jobs WHERE kind = 'registrations' AND id = $1)",
                        args![id],
                    ),
                ],
                Durability::Durable,
            )
            .await?;
        Ok(done.first().is_some_and(|d| d.changed == 1))
    }

    /// How many delivered (and already-registered) registrations finished before
    /// `before`: what [`Self::purge_delivered_before`] would delete.
    ///
    /// # Errors
    /// Database failures.
    pub async fn count_delivered_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT count(*) FROM jobs
                 WHERE kind = 'registrations' AND state = 'done' AND finished_at < $1",
                args![before.as_millis()],
            )
            .await?;
        Ok(u64::try_from(row.int(0)?).unwrap_or(0))
    }

    /// Deletes delivered registrations (and their jobs) finished before `before`; how
    /// many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn purge_delivered_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = self
            .db
            .run(
                vec![
                    Statement::new(
                        "DELETE FROM registrations WHERE id IN (
                             SELECT id FROM jobs WHERE kind = 'registrations' AND state = 'done'
                                 AND finished_at < $1)",
                        args![before.as_millis()],
                    ),
                    Statement::new(
                        "DELETE FROM jobs
                         WHERE kind = 'registrations' AND state = 'done' AND finished_at < $1",
                        args![before.as_millis()],
                    ),
                ],
                Durability::Durable,
            )
            .await?;
        Ok(done.get(1).map_or(0, |d| d.changed))
    }
}
