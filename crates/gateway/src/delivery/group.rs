//! Group commit: store calls that arrive together are made as one. A lone call goes
//! at once; under load, calls queue while the previous group runs and go in the next
//! one, so one round trip (and one flush) serves many. Intake's writes, and the
//! delivery loops' claims and outcomes, go through one of these each.

use std::future::Future;
use std::sync::Arc;

use g2w_store::StoreError;
use tokio::sync::{mpsc, oneshot};

/// Why a call got no answer of its own.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum GroupError {
    /// The group's store call failed; every call in it shares the failure.
    #[error("the store failed")]
    Store(#[source] Arc<StoreError>),
    /// The group's task is gone (the gateway is stopping).
    #[error("the store writer stopped")]
    Stopped,
}

impl From<GroupError> for StoreError {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::Store(e) => StoreError::shared(&e),
            GroupError::Stopped => StoreError::Data("the store writer stopped".into()),
        }
    }
}

type Reply<R> = oneshot::Sender<Result<R, GroupError>>;

/// A task making grouped calls; cloning shares it.
pub(crate) struct Group<T, R> {
    tx: mpsc::Sender<(T, Reply<R>)>,
}

impl<T, R> Clone for Group<T, R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// Starts the task: `call` gets up to `max` requests at once and answers each, in
    /// order.
    pub(crate) fn start<F, Fut>(max: usize, call: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<R>, StoreError>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<(T, Reply<R>)>(max * 4);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < max {
                    match rx.try_recv() {
                        Ok(request) => group.push(request),
                        Err(_) => break,
                    }
                }
                let (requests, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
                match call(requests).await {
                    Ok(answers) => {
                        debug_assert_eq!(answers.len(), replies.len(), "one answer per call");
                        for (reply, answer) in replies.into_iter().zip(answers) {
                            let _ = reply.send(Ok(answer));
                        }
                    }
                    Err(e) => {
                        let e = Arc::new(e);
                        for reply in replies {
                            let _ = reply.send(Err(GroupError::Store(e.clone())));
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Makes `request` with whatever else arrives together.
    ///
    /// # Errors
    /// The group's failure, shared.
    pub(crate) async fn call(&self, request: T) -> Result<R, GroupError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((request, reply))
            .await
            .map_err(|_| GroupError::Stopped)?;
        answer.await.map_err(|_| GroupError::Stopped)?
    }
}
