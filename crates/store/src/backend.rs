//! [`Store`]: everything g2w keeps, whichever database keeps it. SQLite (one file, the
//! default) and PostgreSQL (shared by several gateways) both implement it and both run
//! the same contract stories.

use std::sync::Arc;
use std::time::Duration;

use g2w_goto::{SharedBudget, Timestamp, TokenRecord, TokenStore};

use crate::events::EventStore;
use crate::outbox::OutboxStore;
use crate::{JournalEntry, StoreError};

/// An admin console session, as stored (by a digest of its cookie, never the cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSession {
    /// The CSRF token its forms carry.
    pub csrf: String,
    /// When it ends.
    pub expires_at: Timestamp,
}

/// Everything g2w keeps: logins (with the refresh lock), the outbox, the import
/// journal, settings, admin sessions, and the account's shared GoTo budget.
pub trait Store: OutboxStore + EventStore + TokenStore {
    /// Where the data is, for messages: a file path, or a database without password.
    fn location(&self) -> String;

    /// The stored login of `profile`.
    ///
    /// # Errors
    /// Database or decryption failures.
    fn load_profile(&self, profile: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Writes the whole login of `profile` in one statement.
    ///
    /// # Errors
    /// Database or encryption failures.
    fn save_profile(&self, profile: &str, record: &TokenRecord) -> Result<(), StoreError>;

    /// Deletes a profile's login (and its refresh lock); returns whether there was one.
    ///
    /// # Errors
    /// Database failures.
    fn delete_profile(&self, profile: &str) -> Result<bool, StoreError>;

    /// The names of all profiles.
    ///
    /// # Errors
    /// Database failures.
    fn profiles(&self) -> Result<Vec<String>, StoreError>;

    /// A setting kept in the store (such as the admin password's hash).
    ///
    /// # Errors
    /// Database failures.
    fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Stores a setting.
    ///
    /// # Errors
    /// Database failures.
    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// The recorded outcome of one import row.
    ///
    /// # Errors
    /// Database failures.
    fn journal_entry(&self, import_id: &str, line: u64)
    -> Result<Option<JournalEntry>, StoreError>;

    /// Records one import row's outcome (replacing an earlier one).
    ///
    /// # Errors
    /// Database failures.
    fn journal_record(
        &self,
        import_id: &str,
        line: u64,
        entry: &JournalEntry,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Stores an admin session under the digest of its cookie.
    ///
    /// # Errors
    /// Database failures.
    fn put_session(&self, digest: &str, session: &AdminSession) -> Result<(), StoreError>;

    /// The session with this digest, if it has not ended by `now`.
    ///
    /// # Errors
    /// Database failures.
    fn session(&self, digest: &str, now: Timestamp) -> Result<Option<AdminSession>, StoreError>;

    /// Ends a session, and forgets every session that ended before `now`.
    ///
    /// # Errors
    /// Database failures.
    fn end_session(&self, digest: &str, now: Timestamp) -> Result<(), StoreError>;

    /// Books `permits` requests from `account`'s GoTo budget, shared by every process
    /// using this store: one every `interval`, `burst` back to back. Returns how long
    /// to wait before sending, or `None` (nothing booked) when that would be longer
    /// than `max_wait`.
    ///
    /// # Errors
    /// Database failures.
    fn book_budget(
        &self,
        account: &str,
        interval: Duration,
        burst: u32,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Result<Option<Duration>, StoreError>;

    /// Calls `wake` whenever another process stores a registration, for backends that
    /// can say so (PostgreSQL's `LISTEN`). Returns false when this backend cannot: the
    /// worker's polling finds the work instead.
    ///
    /// # Errors
    /// When the listener cannot start.
    fn notify_new_work(&self, wake: Box<dyn Fn() + Send + Sync>) -> Result<bool, StoreError> {
        drop(wake);
        Ok(false)
    }
}

/// A GoTo account's request budget kept in the store, shared by every process using it.
pub struct StoreBudget {
    store: Arc<dyn Store>,
    account: String,
}

impl StoreBudget {
    /// The budget of the account logged in as `profile`.
    pub fn new(store: Arc<dyn Store>, profile: &str) -> Self {
        Self {
            store,
            account: profile.to_owned(),
        }
    }
}

impl SharedBudget for StoreBudget {
    fn book(
        &self,
        interval: Duration,
        burst: u32,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Result<Option<Duration>, String> {
        self.store
            .book_budget(&self.account, interval, burst, permits, max_wait)
            .map_err(|e| e.to_string())
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
