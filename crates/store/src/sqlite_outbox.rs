//! [`OutboxStore`] on SQLite. Each call is one statement or one transaction on the
//! store's connection; `synchronous=FULL` makes a commit durable before it returns.

use std::collections::BTreeMap;
use std::time::Duration;

use g2w_goto::Timestamp;

use rusqlite::{OptionalExtension as _, Row, params};

use crate::outbox::{
    Claim, Completion, Enqueued, NewRegistration, OutboxState, OutboxStore, Registration, Release,
};
use crate::rows::completion_columns;
use crate::{SqliteStore, StoreError};

const COLUMNS: &str = "id, profile, webinar_key, email, payload, idempotency_key, source, state, \
    attempts, next_attempt_at, registrant_key, join_url, last_error, created_at, updated_at, finished_at, \
    fence, failing_since, validated";

/// A key column: the digits GoTo gave, exactly (never through a float).
fn key<K: std::str::FromStr>(column: usize, text: String) -> rusqlite::Result<K> {
    text.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("{text:?} is not a GoTo key").into(),
        )
    })
}

/// A moment column (Unix milliseconds).
fn at(r: &Row<'_>, column: usize) -> rusqlite::Result<Timestamp> {
    r.get(column).map(Timestamp::from_millis)
}

fn maybe_at(r: &Row<'_>, column: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(r.get::<_, Option<i64>>(column)?.map(Timestamp::from_millis))
}

fn row_to_registration(r: &Row<'_>) -> rusqlite::Result<Registration> {
    let state: String = r.get(7)?;
    Ok(Registration {
        id: r.get(0)?,
        profile: r.get(1)?,
        webinar_key: key(2, r.get(2)?)?,
        email: r.get(3)?,
        payload: r.get(4)?,
        idempotency_key: r.get(5)?,
        source: r.get(6)?,
        state: state.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, e.into())
        })?,
        attempts: r.get(8)?,
        next_attempt_at: at(r, 9)?,
        registrant_key: r
            .get::<_, Option<String>>(10)?
            .map(|k| key(10, k))
            .transpose()?,
        join_url: r.get(11)?,
        last_error: r.get(12)?,
        created_at: at(r, 13)?,
        updated_at: at(r, 14)?,
        finished_at: maybe_at(r, 15)?,
        fence: r.get(16)?,
        failing_since: maybe_at(r, 17)?,
        validated: r.get(18)?,
    })
}

impl OutboxStore for SqliteStore {
    fn enqueue(&self, batch: &[NewRegistration]) -> Result<Vec<Enqueued>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(batch.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO outbox (id, profile, webinar_key, email, payload, idempotency_key,
                     source, state, attempts, next_attempt_at, created_at, updated_at, validated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?8, ?8, ?8, ?9)
                 ON CONFLICT DO NOTHING",
            )?;
            let mut by_key = tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox WHERE idempotency_key = ?1"
            ))?;
            let mut by_id =
                tx.prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"))?;
            for item in batch {
                let inserted = insert.execute(params![
                    item.id,
                    item.profile,
                    item.webinar_key.to_string(),
                    item.email,
                    item.payload,
                    item.idempotency_key,
                    item.source,
                    item.created_at.as_millis(),
                    item.validated,
                ])?;
                if inserted == 1 {
                    out.push(Enqueued::New(
                        by_id.query_row(params![item.id], row_to_registration)?,
                    ));
                } else if let Some(key) = &item.idempotency_key {
                    out.push(Enqueued::Existing(
                        by_key.query_row(params![key], row_to_registration)?,
                    ));
                } else {
                    return Err(StoreError::Sql(format!(
                        "registration id {} already exists",
                        item.id
                    )));
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn claim(
        &self,
        profile: &str,
        holder: &str,
        now: Timestamp,
        lease: Duration,
        which: Claim,
    ) -> Result<Option<Registration>, StoreError> {
        let due_by = which.due_by(now);
        self.bookkeeping(|conn| {
            conn.query_row(
                &format!(
                    "UPDATE outbox SET state = 'delivering', lease_holder = ?1, lease_until = ?2,
                         attempts = attempts + 1, fence = fence + 1, updated_at = ?3
                     WHERE id = COALESCE(
                         (SELECT id FROM outbox WHERE profile = ?4 AND state = 'delivering'
                              AND lease_until <= ?3 ORDER BY lease_until LIMIT 1),
                         (SELECT id FROM outbox WHERE profile = ?4 AND state = 'pending'
                              AND next_attempt_at <= ?5 ORDER BY next_attempt_at LIMIT 1))
                     RETURNING {COLUMNS}"
                ),
                params![
                    holder,
                    (now + lease).as_millis(),
                    now.as_millis(),
                    profile,
                    due_by.as_millis()
                ],
                row_to_registration,
            )
            .optional()
        })
    }

    fn renew(&self, id: &str, fence: i64, lease_until: Timestamp) -> Result<bool, StoreError> {
        let n = self.bookkeeping(|conn| {
            conn.execute(
                "UPDATE outbox SET lease_until = ?1
                 WHERE id = ?2 AND state = 'delivering' AND fence = ?3",
                params![lease_until.as_millis(), id, fence],
            )
        })?;
        Ok(n == 1)
    }

    fn complete(
        &self,
        id: &str,
        fence: i64,
        now: Timestamp,
        completion: &Completion,
    ) -> Result<Option<Registration>, StoreError> {
        let (state, key, url, error) = completion_columns(completion);
        self.bookkeeping(|conn| {
            conn.query_row(
                &format!(
                    "UPDATE outbox SET state = ?1, registrant_key = ?2, join_url = ?3,
                     last_error = COALESCE(?4, last_error), lease_holder = NULL, lease_until = NULL,
                     updated_at = ?5, finished_at = ?5
                 WHERE id = ?6 AND state = 'delivering' AND fence = ?7 RETURNING {COLUMNS}"
                ),
                params![state.as_str(), key, url, error, now.as_millis(), id, fence],
                row_to_registration,
            )
            .optional()
        })
    }

    fn release(
        &self,
        id: &str,
        fence: i64,
        now: Timestamp,
        next_attempt_at: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Option<Registration>, StoreError> {
        let uncount = i64::from(why != Release::Failed);
        let failing = why != Release::Paused;
        self.bookkeeping(|conn| {
            conn.query_row(
                &format!(
                    "UPDATE outbox SET state = 'pending', next_attempt_at = ?1, last_error = ?2,
                     attempts = attempts - ?3, lease_holder = NULL, lease_until = NULL, updated_at = ?4,
                     failing_since = CASE WHEN ?7 THEN COALESCE(failing_since, ?4) ELSE failing_since END
                 WHERE id = ?5 AND state = 'delivering' AND fence = ?6 RETURNING {COLUMNS}"
                ),
                params![
                    next_attempt_at.as_millis(),
                    error,
                    uncount,
                    now.as_millis(),
                    id,
                    fence,
                    failing
                ],
                row_to_registration,
            )
            .optional()
        })
    }

    fn make_due(&self, profile: &str, now: Timestamp) -> Result<u64, StoreError> {
        let n = self.bookkeeping(|conn| {
            conn.execute(
                "UPDATE outbox SET next_attempt_at = ?1
                 WHERE profile = ?2 AND state = 'pending' AND next_attempt_at > ?1",
                params![now.as_millis(), profile],
            )
        })?;
        Ok(n as u64)
    }

    fn oldest_waiting(&self, profile: &str) -> Result<Option<Timestamp>, StoreError> {
        let conn = self.conn();
        let mut oldest = None;
        for state in ["pending", "delivering"] {
            let at: Option<i64> = conn.query_row(
                "SELECT min(created_at) FROM outbox WHERE profile = ?1 AND state = ?2",
                params![profile, state],
                |r| r.get(0),
            )?;
            oldest = match (oldest, at) {
                (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                (a, b) => a.or(b),
            };
        }
        Ok(oldest.map(Timestamp::from_millis))
    }

    fn waiting(&self, profile: &str, now: Timestamp) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT (SELECT count(*) FROM outbox
                     WHERE profile = ?1 AND state = 'pending' AND next_attempt_at <= ?2)
                  + (SELECT count(*) FROM outbox WHERE profile = ?1 AND state = 'delivering')",
            params![profile, now.as_millis()],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn probe_write(&self, now: Timestamp) -> Result<(), StoreError> {
        self.bookkeeping(|conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('write_probe', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![now.as_millis().to_string().into_bytes()],
            )
        })?;
        Ok(())
    }

    fn registration(&self, id: &str) -> Result<Option<Registration>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"),
                params![id],
                row_to_registration,
            )
            .optional()?)
    }

    fn list(
        &self,
        state: Option<OutboxState>,
        email: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR email = ?2 COLLATE NOCASE)
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![state.map(OutboxState::as_str), email, limit],
                row_to_registration,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn counts(&self) -> Result<BTreeMap<OutboxState, u64>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let mut counts: BTreeMap<OutboxState, u64> =
            OutboxState::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (state, n) = row?;
            if let Ok(state) = state.parse() {
                counts.insert(state, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    fn next_due(&self, profile: &str) -> Result<Option<Timestamp>, StoreError> {
        // Two indexed look-ups rather than one OR that scans the table.
        let conn = self.conn();
        let pending: Option<i64> = conn.query_row(
            "SELECT min(next_attempt_at) FROM outbox WHERE profile = ?1 AND state = 'pending'",
            params![profile],
            |r| r.get(0),
        )?;
        let leased: Option<i64> = conn.query_row(
            "SELECT min(lease_until) FROM outbox WHERE profile = ?1 AND state = 'delivering'",
            params![profile],
            |r| r.get(0),
        )?;
        let earliest = match (pending, leased) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(earliest.map(Timestamp::from_millis))
    }

    fn retry(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1,
                 updated_at = ?1, finished_at = NULL, failing_since = NULL
             WHERE id = ?2 AND state IN ('failed', 'dead')",
            params![now.as_millis(), id],
        )?;
        Ok(n == 1)
    }

    fn retry_all_failed(&self, now: Timestamp) -> Result<u64, StoreError> {
        let n = self.conn().execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1,
                 updated_at = ?1, finished_at = NULL, failing_since = NULL
             WHERE state IN ('failed', 'dead')",
            params![now.as_millis()],
        )?;
        Ok(n as u64)
    }

    fn discard(&self, id: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM outbox WHERE id = ?1 AND state IN ('failed', 'dead')",
            params![id],
        )?;
        Ok(n == 1)
    }

    fn purge_delivered_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM outbox WHERE state IN ('delivered', 'already_registered') AND finished_at < ?1",
            params![before.as_millis()],
        )?;
        Ok(n as u64)
    }
}
