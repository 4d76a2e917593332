//! The outbox as the delivery engine works it: claims, leases, outcomes.

use std::time::Duration;

use g2w_goto::Timestamp;

use super::*;
use crate::db::args;
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

    /// When the earliest pending (or leased) registration of `profile` is due.
    ///
    /// # Errors
    /// Database failures.
    pub async fn next_due(&self, profile: &str) -> Result<Option<Timestamp>, StoreError> {
        OUTBOX.next_due(&self.db, Some(profile)).await
    }
}
