//! What the emulator's webhook deliveries sent, and the control API's dials that drop or
//! repeat the next ones.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

/// How many deliveries the log keeps.
const LOG_LIMIT: usize = 1_000;

/// What was published, and the control API's dials.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    sent: Mutex<Vec<Value>>,
    drop_next: AtomicU32,
    duplicate_next: AtomicU32,
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl EventLog {
    /// Drops the next `n` deliveries (they are logged as dropped, never sent).
    pub fn drop_next(&self, n: u32) {
        self.drop_next.store(n, Ordering::SeqCst);
    }

    /// Sends each of the next `n` deliveries twice (GoTo may repeat an event).
    pub fn duplicate_next(&self, n: u32) {
        self.duplicate_next.store(n, Ordering::SeqCst);
    }

    /// Every delivery so far, oldest first.
    pub fn list(&self) -> Vec<Value> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether this delivery is to be dropped (one of the next `n` asked for).
    pub(crate) fn take_drop(&self) -> bool {
        take_one(&self.drop_next)
    }

    /// Whether this delivery is to be sent twice.
    pub(crate) fn take_duplicate(&self) -> bool {
        take_one(&self.duplicate_next)
    }

    pub(crate) fn record(&self, entry: Value) {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        if sent.len() >= LOG_LIMIT {
            sent.remove(0);
        }
        sent.push(entry);
    }

    /// Forgets everything (the emulator's reset).
    pub fn reset(&self) {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.drop_next.store(0, Ordering::SeqCst);
        self.duplicate_next.store(0, Ordering::SeqCst);
    }
}
