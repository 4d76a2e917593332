//! Who may try a password, and when: five failures per address in five minutes, a
//! budget of failures shared by every address (a flood from many addresses is refused
//! before any hash is computed), and a few checks at a time ([`PasswordChecks`]).
//!
//! An attempt is counted against both budgets before its (slow) check, so a burst sent
//! at once gets no more than the budgets allow; a right password gives both back.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::password::{AdminPassword, PasswordChecks, Verdict};
use crate::limiter::{Bucket, FailureWindow};

/// The window an address's failures are counted in.
const WINDOW: Duration = Duration::from_secs(300);
/// Failures an address may have within the window.
const PER_ADDRESS: usize = 5;
/// The longest an attempt waits for a free check before it is told to try again.
const CHECK_WAIT: Duration = Duration::from_secs(10);

/// Why an attempt was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotChecked {
    /// This address failed too often lately.
    Address,
    /// Too many failures from everybody lately.
    Everyone,
    /// Every check slot stayed busy.
    Busy,
}

/// Refusals for everyone are logged at most this often (a flood must not flood the log).
const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(60);

/// Sign-in attempts: per address, all together, and the checks themselves.
pub(crate) struct SignIns {
    by_address: FailureWindow,
    everyone: Mutex<Bucket>,
    per_minute: f64,
    checks: PasswordChecks,
    /// Attempts refused for everyone since the last log line, and when that was.
    refused: Mutex<(u64, Option<Instant>)>,
}

impl SignIns {
    /// `concurrency` checks at once; `failures_per_minute` from everyone together.
    pub(crate) fn new(concurrency: usize, failures_per_minute: u32) -> Self {
        let per_minute = f64::from(failures_per_minute.max(1));
        Self {
            by_address: FailureWindow::new(PER_ADDRESS, WINDOW),
            everyone: Mutex::new(Bucket::full(per_minute, Instant::now())),
            per_minute,
            checks: PasswordChecks::new(concurrency),
            refused: Mutex::new((0, None)),
        }
    }

    /// Counts a refusal for everyone, logging at most once a minute how many there were.
    fn refused_for_everyone(&self, now: Instant) {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.0 += 1;
        if refused.1.is_none_or(|at| now - at >= REFUSALS_LOGGED_EVERY) {
            tracing::warn!(
                refused = refused.0,
                "admin sign-in refused for everyone: too many failed attempts lately (logged at most once a minute)"
            );
            *refused = (0, Some(now));
        }
    }

    /// Counts an attempt from `ip` and checks `candidate`, unless a budget is spent.
    /// `password` is only awaited once the attempt is admitted: an attempt refused by a
    /// budget costs no read of the stored password either.
    pub(crate) async fn attempt(
        &self,
        ip: IpAddr,
        password: impl std::future::Future<Output = AdminPassword>,
        candidate: String,
    ) -> Result<Verdict, NotChecked> {
        let now = Instant::now();
        if self.by_address.take(ip, now).is_err() {
            return Err(NotChecked::Address);
        }
        if !self
            .bucket()
            .take(self.per_minute / 60.0, self.per_minute, now)
        {
            self.by_address.give_back(ip);
            self.refused_for_everyone(now);
            return Err(NotChecked::Everyone);
        }
        let password = password.await;
        let Some(verdict) = self.checks.verify(password, candidate, CHECK_WAIT).await else {
            self.forgive(ip);
            return Err(NotChecked::Busy);
        };
        if verdict != Verdict::Refused {
            self.forgive(ip);
        }
        Ok(verdict)
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.everyone.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An attempt that did not fail: `ip`'s failures are forgotten and the shared
    /// budget gets its token back.
    fn forgive(&self, ip: IpAddr) {
        self.by_address.forgive(ip);
        self.bucket().give_back(self.per_minute);
    }
}
