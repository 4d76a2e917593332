//! Group commit: intake requests arriving together are written in one transaction, so
//! one disk flush (or one PostgreSQL round trip) makes many registrations durable. A lone
//! request is written at once; under load, requests queue while the previous batch
//! commits and go in the next one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use g2w_store::{Enqueued, NewRegistration, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

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

type Reply = oneshot::Sender<Result<Enqueued, NotStored>>;

/// A handle to the writer task.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: mpsc::Sender<(NewRegistration, Reply)>,
    /// The last write's failure, until a write succeeds again.
    failing: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Batcher {
    /// Starts the writer task.
    pub fn start(store: Arc<Store>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(NewRegistration, Reply)>(MAX_BATCH * 4);
        let failing = Arc::new(Mutex::new(None));
        let failing_now = failing.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let outcome = store.enqueue(&items).await;
                *failing_now.lock().unwrap_or_else(|e| e.into_inner()) = outcome
                    .as_ref()
                    .err()
                    .map(|e| (Instant::now(), g2w_goto::chain(e)));
                match outcome {
                    Ok(results) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        tracing::error!("outbox write failed: {}", g2w_goto::chain(&e));
                        let e = Arc::new(e);
                        for reply in replies {
                            let _ = reply.send(Err(NotStored::Store(e.clone())));
                        }
                    }
                }
            }
        });
        Self { tx, failing }
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
        let (reply, answer) = oneshot::channel();
        let sent = async {
            self.tx
                .send((item, reply))
                .await
                .map_err(|_| NotStored::Stopped)?;
            answer.await.map_err(|_| NotStored::Stopped)?
        };
        tokio::time::timeout(deadline, sent)
            .await
            .unwrap_or(Err(NotStored::Late(deadline)))
    }
}
