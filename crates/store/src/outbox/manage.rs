//! The outbox as people look at it: one registration, lists, counts, and what an
//! operator does with those GoTo refused.

use std::collections::BTreeMap;

use g2w_goto::Timestamp;

use super::*;
use crate::db::{Arg, args};
use crate::queue::QueueGauges;
use crate::{Store, StoreError};

impl Store {
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

    /// How many registrations for `webinar_key` still wait to reach GoTo (pending or
    /// being delivered), served by the state index.
    ///
    /// # Errors
    /// Database failures.
    pub async fn queued_for(&self, webinar_key: u64) -> Result<u64, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT count(*) FROM outbox \
                 WHERE state IN ('pending', 'delivering') AND webinar_key = $1",
                args![webinar_key.to_string()],
            )
            .await?;
        match rows.first() {
            Some(row) => Ok(u64::try_from(row.int(0)?).unwrap_or(0)),
            None => Ok(0),
        }
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

    /// How many delivered (and already-registered) registrations finished before
    /// `before`: what [`Self::purge_delivered_before`] would delete.
    ///
    /// # Errors
    /// Database failures.
    pub async fn count_delivered_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT count(*) FROM outbox WHERE state IN ('delivered', 'already_registered')
                     AND finished_at < $1",
                args![before.as_millis()],
            )
            .await?;
        Ok(u64::try_from(row.int(0)?).unwrap_or(0))
    }

    /// Deletes delivered registrations finished before `before`; how many.
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
}
