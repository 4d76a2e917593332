//! The outbox as the delivery engine works it: claims, leases, outcomes.

use std::time::Duration;

use g2w_goto::Timestamp;

use super::*;
use crate::db::{Arg, Dialect, Durability, Statement, args};
use crate::queue::{Claim, Release};
use crate::{Store, StoreError};

impl Store {
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
                .claim(&self.db, Some(profile), holder, now, lease, which, 1)
                .await?
                .into_iter()
                .next(),
        )
    }

    /// Leases up to `n` due registrations of `profile` at once, as [`Self::claim`] with
    /// [`Claim::Due`] would one by one: for delivery loops that ask together, one
    /// statement instead of `n`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn claim_many(
        &self,
        profile: &str,
        holder: &str,
        now: Timestamp,
        lease: Duration,
        n: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        let mut claimed = OUTBOX
            .claim(&self.db, Some(profile), holder, now, lease, Claim::Due, n)
            .await?
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        // Oldest first, as they arrived (a database returns updated rows in its own order).
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(claimed)
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
        let mut one = self
            .complete_many(now, &[(id.to_owned(), fence, completion.clone())])
            .await?;
        Ok(one.pop().flatten())
    }

    /// [`Self::complete`] for several attempts at once, in one statement (PostgreSQL)
    /// or one transaction (SQLite); each answer in the order asked.
    ///
    /// # Errors
    /// Database failures (none of them is recorded).
    pub async fn complete_many(
        &self,
        now: Timestamp,
        attempts: &[(String, i64, Completion)],
    ) -> Result<Vec<Option<Registration>>, StoreError> {
        let columns: Vec<_> = attempts
            .iter()
            .map(|(_, _, c)| completion_columns(c))
            .collect();
        let finished: Vec<Registration> = match self.db.dialect() {
            Dialect::Postgres => {
                let texts = |f: fn(&CompletionColumns) -> Option<String>| {
                    Arg::Texts(columns.iter().map(f).collect())
                };
                self.db
                    .note_rows(
                        format!(
                            "UPDATE outbox SET state = t.t_state, registrant_key = t.t_key,
                                 join_url = t.t_url, last_error = COALESCE(t.t_error, last_error),
                                 lease_holder = NULL, lease_until = NULL, updated_at = $1,
                                 finished_at = $1
                             FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[],
                                         $6::text[], $7::text[])
                                 AS t(t_id, t_fence, t_state, t_key, t_url, t_error)
                             WHERE id = t.t_id AND state = 'delivering' AND fence = t.t_fence
                             RETURNING {COLUMNS}"
                        ),
                        vec![
                            Arg::from(now.as_millis()),
                            Arg::Texts(
                                attempts.iter().map(|(id, _, _)| Some(id.clone())).collect(),
                            ),
                            Arg::Ints(attempts.iter().map(|(_, fence, _)| *fence).collect()),
                            texts(|c| Some(c.0.as_str().to_owned())),
                            texts(|c| c.1.clone()),
                            texts(|c| c.2.clone()),
                            texts(|c| c.3.clone()),
                        ],
                    )
                    .await?
                    .iter()
                    .map(read)
                    .collect::<Result<_, _>>()?
            }
            Dialect::Sqlite => {
                let steps = attempts
                    .iter()
                    .zip(&columns)
                    .map(|((id, fence, _), (state, key, url, error))| {
                        Statement::new(
                            format!(
                                "UPDATE outbox SET state = $1, registrant_key = $2, join_url = $3,
                                     last_error = COALESCE($4, last_error), lease_holder = NULL,
                                     lease_until = NULL, updated_at = $5, finished_at = $5
                                 WHERE id = $6 AND state = 'delivering' AND fence = $7
                                 RETURNING {COLUMNS}"
                            ),
                            args![
                                state.as_str(),
                                key.clone(),
                                url.clone(),
                                error.clone(),
                                now.as_millis(),
                                id,
                                *fence
                            ],
                        )
                    })
                    .collect();
                let mut finished = Vec::new();
                for done in self.db.run(steps, Durability::Bookkeeping).await? {
                    for row in &done.rows {
                        finished.push(read(row)?);
                    }
                }
                finished
            }
        };
        Ok(attempts
            .iter()
            .map(|(id, fence, _)| {
                finished
                    .iter()
                    .find(|r| &r.id == id && r.fence == *fence)
                    .cloned()
            })
            .collect())
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

    /// When the earliest pending (or leased) registration of `profile` is due.
    ///
    /// # Errors
    /// Database failures.
    pub async fn next_due(&self, profile: &str) -> Result<Option<Timestamp>, StoreError> {
        OUTBOX.next_due(&self.db, Some(profile)).await
    }
}
