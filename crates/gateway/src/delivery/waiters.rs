//! Intake requests waiting (up to `sync_wait`) for their registration's delivery.

use std::collections::HashMap;
use std::sync::Mutex;

use g2w_store::Registration;
use tokio::sync::oneshot;

/// Waiting requests by registration id.
#[derive(Debug, Default)]
pub struct Waiters(Mutex<HashMap<String, Vec<oneshot::Sender<Registration>>>>);

impl Waiters {
    /// Waits for `id` to reach a final state.
    pub fn subscribe(&self, id: &str) -> oneshot::Receiver<Registration> {
        let (tx, rx) = oneshot::channel();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_owned())
            .or_default()
            .push(tx);
        rx
    }

    /// Forgets the waiters of `id` that stopped waiting (timed out); others waiting for
    /// the same registration (the same person again) still get it.
    pub fn forget(&self, id: &str) {
        let mut waiting = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(senders) = waiting.get_mut(id) {
            senders.retain(|tx| !tx.is_closed());
            if senders.is_empty() {
                waiting.remove(id);
            }
        }
    }

    /// Hands a finished registration to its waiters.
    pub fn resolve(&self, registration: &Registration) {
        if !registration.state.is_final() {
            return;
        }
        let senders = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&registration.id);
        for tx in senders.into_iter().flatten() {
            let _ = tx.send(registration.clone());
        }
    }
}
