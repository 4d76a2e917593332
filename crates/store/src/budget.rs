//! Each GoTo account's request budget, shared by every process using the store: GCRA
//! over a stored "theoretical arrival time". Booking is a compare-and-swap of that time,
//! so gateways and import runs that book at the same moment never both get the same
//! slot, on either database and without holding a lock across the computation.

use std::sync::Arc;
use std::time::Duration;

use g2w_goto::{SharedBudget, StoreFailure, Timestamp};

use crate::db::{Dialect, args};
use crate::{Store, StoreError};

/// How many times a booking is tried when other processes keep booking first.
const CONTENDED_TRIES: usize = 50;

/// How often a budget whose login names no account (yet) looks again.
const ACCOUNT_RECHECK: Duration = Duration::from_secs(30);

/// A GoTo account's request budget kept in the store, shared by every process using it
/// and by every profile logged in to the same account.
pub struct StoreBudget {
    store: Arc<Store>,
    profile: String,
    /// The account's budget name, once the stored login names the account.
    account: std::sync::OnceLock<String>,
    /// When the stored login last named no account: it is read again only after
    /// [`ACCOUNT_RECHECK`], never once per booking.
    unnamed_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl StoreBudget {
    /// The budget of the account logged in as `profile`.
    pub fn new(store: Arc<Store>, profile: &str) -> Self {
        Self {
            store,
            profile: profile.to_owned(),
            account: std::sync::OnceLock::new(),
            unnamed_at: std::sync::Mutex::new(None),
        }
    }

    /// Whose budget to book: the GoTo account's, once the login names it (organizers
    /// of one account share GoTo's limit), else the profile's own.
    async fn key(&self) -> String {
        if let Some(key) = self.account.get() {
            return key.clone();
        }
        let recently =
            |at: &Option<std::time::Instant>| at.is_some_and(|t| t.elapsed() < ACCOUNT_RECHECK);
        if recently(&self.unnamed_at.lock().unwrap_or_else(|e| e.into_inner())) {
            return self.profile.clone();
        }
        match self.store.profile_account(&self.profile).await {
            Ok(Some(account)) => self
                .account
                .get_or_init(|| format!("account {account}"))
                .clone(),
            _ => {
                *self.unnamed_at.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(std::time::Instant::now());
                self.profile.clone()
            }
        }
    }
}

#[async_trait::async_trait]
impl SharedBudget for StoreBudget {
    async fn book(
        &self,
        interval: Duration,
        burst: u32,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Result<Option<Duration>, StoreFailure> {
        let key = self.key().await;
        Ok(self
            .store
            .book_budget(&key, interval, burst, permits, max_wait)
            .await?)
    }

    async fn hold(&self, wait: Duration) -> Result<(), StoreFailure> {
        let key = self.key().await;
        Ok(self.store.hold_budget(&key, wait).await?)
    }
}

impl Store {
    /// Books nothing from `account`'s budget for `wait` from now (on the database's
    /// clock where it has one): GoTo asked the account to wait.
    ///
    /// # Errors
    /// Database failures.
    pub async fn hold_budget(&self, account: &str, wait: Duration) -> Result<(), StoreError> {
        let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        let sql = match self.db.dialect() {
            Dialect::Postgres => {
                "INSERT INTO goto_budget (account, tat_ms)
                 VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $2)
                 ON CONFLICT (account) DO UPDATE SET tat_ms = GREATEST(goto_budget.tat_ms,
                     (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $2)"
            }
            Dialect::Sqlite => {
                "INSERT INTO goto_budget (account, tat_ms) VALUES ($1, $3 + $2)
                 ON CONFLICT (account) DO UPDATE SET tat_ms = max(goto_budget.tat_ms, $3 + $2)"
            }
        };
        let mut values = args![account, wait];
        if self.db.dialect() == Dialect::Sqlite {
            values.push(Timestamp::now().as_millis().into());
        }
        self.db.note(sql, values).await?;
        Ok(())
    }

    /// Books `permits` requests from `account`'s GoTo budget, shared by every process
    /// using this store: one every `interval`, `burst` back to back. Returns how long
    /// to wait before sending, or `None` (nothing booked) when that would be longer
    /// than `max_wait`. On PostgreSQL the database's clock is the clock, so gateways on
    /// machines whose clocks differ still share one schedule.
    ///
    /// # Errors
    /// Database failures.
    pub async fn book_budget(
        &self,
        account: &str,
        interval: Duration,
        burst: u32,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Result<Option<Duration>, StoreError> {
        self.db
            .note(
                "INSERT INTO goto_budget (account, tat_ms) VALUES ($1, 0)
                 ON CONFLICT (account) DO NOTHING",
                args![account],
            )
            .await?;
        for _ in 0..CONTENDED_TRIES {
            let row = match self.db.dialect() {
                Dialect::Postgres => {
                    self.db
                        .query_one(
                            "SELECT tat_ms, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                             FROM goto_budget WHERE account = $1",
                            args![account],
                        )
                        .await?
                }
                Dialect::Sqlite => {
                    self.db
                        .query_one(
                            "SELECT tat_ms, $2 FROM goto_budget WHERE account = $1",
                            args![account, Timestamp::now().as_millis()],
                        )
                        .await?
                }
            };
            let (stored, now) = (row.int(0)?, Timestamp::from_millis(row.int(1)?));
            let Some((tat, wait)) = gcra_book(
                Timestamp::from_millis(stored),
                now,
                interval,
                burst,
                permits,
                max_wait,
            ) else {
                return Ok(None);
            };
            let swapped = self
                .db
                .note(
                    "UPDATE goto_budget SET tat_ms = $2 WHERE account = $1 AND tat_ms = $3",
                    args![account, tat.as_millis(), stored],
                )
                .await?;
            if swapped == 1 {
                return Ok(Some(wait));
            }
        }
        Err(StoreError::Conflict(format!(
            "the GoTo budget of {account} kept changing under {CONTENDED_TRIES} bookings"
        )))
    }
}

/// GCRA over a stored "theoretical arrival time": given the stored `tat` (the epoch
/// when none), books `permits` at `now`. Returns the new `tat` and the wait, or `None`
/// when the wait would exceed `max_wait`.
pub(crate) fn gcra_book(
    tat: Timestamp,
    now: Timestamp,
    interval: Duration,
    burst: u32,
    permits: u32,
    max_wait: Option<Duration>,
) -> Option<(Timestamp, Duration)> {
    let tolerance = interval.saturating_mul(burst.saturating_sub(1));
    let mut tat = tat.max(now);
    let mut allowed = now;
    for _ in 0..permits.max(1) {
        allowed = (tat - tolerance).max(now);
        tat = tat.max(allowed) + interval;
    }
    let wait = allowed.since(now);
    if max_wait.is_some_and(|max| wait > max) {
        return None;
    }
    Some((tat, wait))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use g2w_goto::Timestamp;

    use super::gcra_book;

    #[test]
    fn gcra_spaces_permits_and_refuses_long_waits() {
        let at = Timestamp::from_millis;
        let ms = Duration::from_millis;
        let every = ms(100);
        assert_eq!(
            gcra_book(Timestamp::EPOCH, at(1_000), every, 1, 1, None),
            Some((at(1_100), ms(0)))
        );
        assert_eq!(
            gcra_book(at(1_100), at(1_000), every, 1, 1, None),
            Some((at(1_200), ms(100)))
        );
        assert_eq!(
            gcra_book(at(1_100), at(1_000), every, 1, 2, Some(ms(150))),
            None
        );
        assert_eq!(
            gcra_book(at(1_000), at(1_000), every, 3, 3, None),
            Some((at(1_300), ms(0))),
            "a burst of 3 goes at once"
        );
    }
}
