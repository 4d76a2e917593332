//! Each GoTo account's request budget, shared by every process using the store: the
//! arithmetic of [`g2w_goto::Schedule`] (GCRA over a stored "theoretical arrival time",
//! GoTo's `Retry-After`, and an AIMD pace) kept in the `goto_budget` row of the account,
//! and changed by single statements: a booking reads and moves the schedule atomically
//! (the row is locked for the statement), so gateways and import runs that book at the
//! same moment never get the same turn and never retry against each other.
//!
//! On PostgreSQL the database's clock is the clock, so gateways on machines whose
//! clocks differ still share one schedule; on SQLite (one machine) it is this process's.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use g2w_goto::{FLOOR_PERMILLE, SharedBudget, StoreFailure, Timestamp};

use crate::db::{Arg, Dialect, args};
use crate::{Store, StoreError};

/// The statements of the budget, with `$now` standing for the clock: a parameter on
/// SQLite, the statement's time on PostgreSQL.
macro_rules! budget_sql {
    ($now:literal) => {
        BudgetSql {
            // $1 account, $2 the spacing at full pace (ms, 0: unlimited), $3 permits,
            // $4 burst, $5 the longest wait (ms). The pace recovers a tenth of the rate
            // a second; an unlimited account is paced at GoTo's 10/s after a cut.
            book: concat!(
                "UPDATE goto_budget SET
                     tat_ms = GREATEST(tat_ms, ",
                $now,
                ", held_until_ms)
                         + CAST($3 AS BIGINT) * (",
                interval!($now),
                "),
                     wait_ms = ",
                wait!($now),
                "
                 WHERE account = $1 AND ",
                wait!($now),
                " <= $5
                 RETURNING wait_ms"
            ),
            // $1 account, $2 the wait (ms).
            hold: concat!(
                "UPDATE goto_budget SET held_until_ms = GREATEST(held_until_ms, ",
                $now,
                " + $2) WHERE account = $1"
            ),
            // $1 account, $2 how long ago the refused call left (ms), $3 the floor.
            slow_down: concat!(
                "UPDATE goto_budget SET
                     pace_permille = GREATEST(CAST($3 AS BIGINT),
                         LEAST(1000, pace_permille + (",
                $now,
                " - cut_at_ms) / 10) / 2),
                     cut_at_ms = ",
                $now,
                "
                 WHERE account = $1 AND cut_at_ms < ",
                $now,
                " - $2"
            ),
            held: concat!(
                "SELECT held_until_ms - ",
                $now,
                " FROM goto_budget WHERE account = $1"
            ),
        }
    };
}

/// The wait before the last of `$3` calls booked now may leave, with a burst of `$4`:
/// after the account's theoretical arrival time (and any `Retry-After`), less what the
/// burst allows, never before now.
macro_rules! wait {
    ($now:literal) => {
        concat!(
            "(GREATEST(GREATEST(tat_ms, ",
            $now,
            ", held_until_ms)
                 + (CAST($3 AS BIGINT) - CAST($4 AS BIGINT)) * (",
            interval!($now),
            "),
                 ",
            $now,
            ", held_until_ms) - ",
            $now,
            ")"
        )
    };
}

/// The spacing of calls now: the full-pace spacing `$2` widened by the pace, or GoTo's
/// 10/s for an unlimited account still recovering from a cut.
macro_rules! interval {
    ($now:literal) => {
        concat!(
            "CASE WHEN $2 = 0 AND pace_permille + (",
            $now,
            " - cut_at_ms) / 10 < 1000
                  THEN 100 ELSE CAST($2 AS BIGINT) END * 1000
             / GREATEST(1, LEAST(1000, pace_permille + (",
            $now,
            " - cut_at_ms) / 10))"
        )
    };
}

struct BudgetSql {
    book: &'static str,
    hold: &'static str,
    slow_down: &'static str,
    held: &'static str,
}

const SQLITE: BudgetSql = budget_sql!("$6");
const POSTGRES: BudgetSql =
    budget_sql!("(extract(epoch FROM statement_timestamp()) * 1000)::bigint");

/// A wait that stands for "no limit" in SQL.
const FOREVER_MS: i64 = i64::MAX / 4;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(FOREVER_MS)
}

/// The budgets of the GoTo accounts, kept in the store and shared by every process and
/// every profile of one account.
pub struct StoreBudget {
    store: Arc<Store>,
    /// Accounts whose row this process has made sure of.
    known: Mutex<HashSet<String>>,
}

impl StoreBudget {
    /// The budgets kept in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            known: Mutex::default(),
        }
    }

    /// Makes sure `account` has a row, once per process.
    async fn row(&self, account: &str) -> Result<(), StoreError> {
        if self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(account)
        {
            return Ok(());
        }
        self.store
            .db
            .note(
                "INSERT INTO goto_budget (account, tat_ms) VALUES ($1, 0)
                 ON CONFLICT (account) DO NOTHING",
                args![account],
            )
            .await?;
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account.to_owned());
        Ok(())
    }
}

#[async_trait::async_trait]
impl SharedBudget for StoreBudget {
    async fn book(
        &self,
        account: &str,
        interval: Duration,
        burst: u32,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Result<Option<Duration>, StoreFailure> {
        self.row(account).await?;
        Ok(self
            .store
            .book_budget(account, interval, burst, permits, max_wait)
            .await?)
    }

    async fn held(&self, account: &str) -> Result<Option<Duration>, StoreFailure> {
        Ok(self.store.budget_held(account).await?)
    }

    async fn hold(&self, account: &str, wait: Duration) -> Result<(), StoreFailure> {
        self.row(account).await?;
        Ok(self.store.hold_budget(account, wait).await?)
    }

    async fn slow_down(&self, account: &str, ago: Duration) -> Result<(), StoreFailure> {
        self.row(account).await?;
        Ok(self.store.slow_budget(account, ago).await?)
    }
}

impl Store {
    fn budget_sql(&self) -> &'static BudgetSql {
        match self.db.dialect() {
            Dialect::Sqlite => &SQLITE,
            Dialect::Postgres => &POSTGRES,
        }
    }

    /// `values`, and the clock where the database has none of its own (SQLite: `$6`).
    fn with_clock(&self, mut values: Vec<Arg>, at: usize) -> Vec<Arg> {
        if self.db.dialect() == Dialect::Sqlite {
            values.resize(at - 1, Arg::Null);
            values.push(Timestamp::now().as_millis().into());
        }
        values
    }

    /// Books `permits` calls from `account`'s GoTo budget (which must exist; see
    /// [`StoreBudget`]): one every `interval` at full pace, `burst` back to back, none
    /// before GoTo's `Retry-After` has run out. Returns how long to wait before sending,
    /// or `None` (nothing booked) when that would be longer than `max_wait`.
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
        let values = args![
            account,
            millis(interval),
            i64::from(permits.max(1)),
            i64::from(burst.max(1)),
            max_wait.map_or(FOREVER_MS, millis),
        ];
        let row = self
            .db
            .note_returning(self.budget_sql().book, self.with_clock(values, 6))
            .await?;
        row.map(|r| {
            r.int(0)
                .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
        })
        .transpose()
    }

    /// Nothing of `account` leaves for `wait` from now: GoTo asked the account to wait.
    ///
    /// # Errors
    /// Database failures.
    pub async fn hold_budget(&self, account: &str, wait: Duration) -> Result<(), StoreError> {
        let values = self.with_clock(args![account, millis(wait)], 6);
        self.db.note(self.budget_sql().hold, values).await?;
        Ok(())
    }

    /// GoTo refused a call of `account` sent `ago` with 429 and no `Retry-After`: the
    /// account's pace halves, unless it was cut since that call left.
    ///
    /// # Errors
    /// Database failures.
    pub async fn slow_budget(&self, account: &str, ago: Duration) -> Result<(), StoreError> {
        let values = self.with_clock(args![account, millis(ago), i64::from(FLOOR_PERMILLE)], 6);
        self.db.note(self.budget_sql().slow_down, values).await?;
        Ok(())
    }

    /// How much longer GoTo's latest `Retry-After` holds `account` back.
    ///
    /// # Errors
    /// Database failures.
    pub async fn budget_held(&self, account: &str) -> Result<Option<Duration>, StoreError> {
        let values = self.with_clock(args![account], 6);
        let row = self.db.query_opt(self.budget_sql().held, values).await?;
        Ok(row
            .map(|r| r.int(0))
            .transpose()?
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
    }
}
