//! Intake's writes as a group commit: registrations arriving together are written in
//! one transaction, so one disk flush (or one PostgreSQL round trip) makes many durable.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use g2w_store::{Enqueued, NewRegistration, Store, StoreError};

use super::group::{Group, GroupError};

/// The most registrations in one transaction.
const MAX_BATCH: usize = 512;

/// Why a registration was not stored. Shared: one failed commit fails its whole batch.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum NotStored {
    /// The store refused or failed the write.
    #[error("the store failed")]
    Store(#[source] Arc<StoreError>),
    /// The store did not answer within the intake's deadline (the write may still
    /// commit; a repeat is then harmless: GoTo's 409 says "already registered").
    #[error("the store did not answer within {} ms", .0.as_millis())]
    Late(Duration),
    /// The writer is gone (the gateway is stopping).
    #[error("the outbox writer stopped")]
    Stopped,
}

/// A handle to the writer task.
#[derive(Clone)]
pub struct Batcher {
    group: Group<NewRegistration, Enqueued>,
    /// The last write's failure, until a write succeeds again.
    failing: Arc<Mutex<Option<(Instant, String)>>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl Batcher {
    /// Starts the writer task.
    pub fn start(store: Arc<Store>) -> Self {
        let failing = Arc::new(Mutex::new(None));
        let failing_now = failing.clone();
        let group = Group::start(MAX_BATCH, move |items: Vec<NewRegistration>| {
            let (store, failing) = (store.clone(), failing_now.clone());
            async move {
                let outcome = store.enqueue(&items).await;
                if let Err(e) = &outcome {
                    tracing::error!("outbox write failed: {}", g2w_goto::chain(e));
                }
                *failing.lock().unwrap_or_else(|e| e.into_inner()) = outcome
                    .as_ref()
                    .err()
                    .map(|e| (Instant::now(), g2w_goto::chain(e)));
                outcome
            }
        });
        Self { group, failing }
    }

    /// Why the last write failed, if it did less than `within` ago and none has
    /// succeeded since.
    pub fn recent_failure(&self, within: Duration) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(at, _)| at.elapsed() < within)
            .map(|(_, why)| why.clone())
    }

    /// Stores one registration durably; returns when its transaction has committed, or
    /// after `deadline` without an answer.
    ///
    /// # Errors
    /// When the write failed (nothing was stored) or did not finish in time.
    pub(crate) async fn enqueue(
        &self,
        item: NewRegistration,
        deadline: Duration,
    ) -> Result<Enqueued, NotStored> {
        match tokio::time::timeout(deadline, self.group.call(item)).await {
            Ok(Ok(enqueued)) => Ok(enqueued),
            Ok(Err(GroupError::Store(e))) => Err(NotStored::Store(e)),
            Ok(Err(GroupError::Stopped)) => Err(NotStored::Stopped),
            Err(_) => Err(NotStored::Late(deadline)),
        }
    }
}
