//! Group commit: intake requests arriving together are written in one transaction, so
//! one disk flush makes many registrations durable. A lone request is written at once;
//! under load, requests queue while the previous batch flushes and go in the next one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use g2w_store::{Enqueued, NewRegistration, OutboxStore};
use tokio::sync::{mpsc, oneshot};

/// The most registrations in one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Enqueued, String>>;

/// A handle to the writer thread.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: mpsc::Sender<(NewRegistration, Reply)>,
    /// The last write's failure, until a write succeeds again.
    failing: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Batcher {
    /// Starts the writer on its own thread (SQLite calls block).
    pub fn start(store: Arc<dyn OutboxStore>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(NewRegistration, Reply)>(MAX_BATCH * 4);
        let failing = Arc::new(Mutex::new(None));
        let failing_now = failing.clone();
        std::thread::Builder::new()
            .name("g2w-outbox-writer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(item) => batch.push(item),
                            Err(_) => break,
                        }
                    }
                    let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    let outcome = store.enqueue(&items);
                    *failing_now.lock().unwrap_or_else(|e| e.into_inner()) = outcome
                        .as_ref()
                        .err()
                        .map(|e| (Instant::now(), e.to_string()));
                    match outcome {
                        Ok(results) => {
                            for (reply, result) in replies.into_iter().zip(results) {
                                let _ = reply.send(Ok(result));
                            }
                        }
                        Err(e) => {
                            tracing::error!("outbox write failed: {e}");
                            for reply in replies {
                                let _ = reply.send(Err(e.to_string()));
                            }
                        }
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start the outbox writer: {e}"));
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

    /// Stores one registration durably; returns when its transaction has committed.
    ///
    /// # Errors
    /// When the write failed: nothing was stored.
    pub async fn enqueue(&self, item: NewRegistration) -> Result<Enqueued, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| "the outbox writer stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the outbox writer stopped".to_owned())?
    }
}
