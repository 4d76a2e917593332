//! Storing submissions, and telling other gateways about them.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::db::{Arg, Dialect, Durability, Statement, args};
use crate::{Store, StoreError};

impl Store {
    /// Stores submissions in one durable transaction; an already-seen idempotency key
    /// returns the earlier registration instead of a new one.
    ///
    /// # Errors
    /// When the transaction cannot commit: then nothing of the batch is stored.
    pub async fn enqueue(&self, batch: &[NewRegistration]) -> Result<Vec<Enqueued>, StoreError> {
        let keys: Vec<String> = batch
            .iter()
            .filter_map(|r| r.idempotency_key.clone())
            .collect();
        let mut steps = match self.db.dialect() {
            // One statement for the whole batch: a round trip per registration would cap
            // intake at the network's latency.
            Dialect::Postgres => {
                let column = |f: fn(&NewRegistration) -> Option<String>| {
                    Arg::Texts(batch.iter().map(f).collect())
                };
                vec![Statement::new(
                    format!(
                        "INSERT INTO outbox (id, profile, webinar_key, email, payload,
                             idempotency_key, source, state, attempts, next_attempt_at,
                             created_at, updated_at, validated)
                         SELECT id, profile, webinar_key, email, payload, key, source,
                             'pending', 0, created, created, created, validated
                         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                     $6::text[], $7::text[], $8::bigint[], $9::bool[])
                             AS t(id, profile, webinar_key, email, payload, key, source,
                                  created, validated)
                         ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
                    ),
                    vec![
                        column(|r| Some(r.id.clone())),
                        column(|r| Some(r.profile.clone())),
                        column(|r| Some(r.webinar_key.to_string())),
                        column(|r| Some(r.email.clone())),
                        column(|r| Some(r.payload.clone())),
                        column(|r| r.idempotency_key.clone()),
                        column(|r| r.source.clone()),
                        Arg::Ints(batch.iter().map(|r| r.created_at.as_millis()).collect()),
                        Arg::Bools(batch.iter().map(|r| r.validated).collect()),
                    ],
                )]
            }
            Dialect::Sqlite => batch
                .iter()
                .map(|r| {
                    Statement::new(
                        format!(
                            "INSERT INTO outbox (id, profile, webinar_key, email, payload,
                                 idempotency_key, source, state, attempts, next_attempt_at,
                                 created_at, updated_at, validated)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8, $9)
                             ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
                        ),
                        args![
                            &r.id,
                            &r.profile,
                            r.webinar_key.to_string(),
                            &r.email,
                            &r.payload,
                            r.idempotency_key.clone(),
                            r.source.clone(),
                            r.created_at.as_millis(),
                            r.validated,
                        ],
                    )
                })
                .collect(),
        };
        let inserts = steps.len();
        if !keys.is_empty() {
            // In the same transaction, so a key repeated within the batch finds the first.
            steps.push(Statement::new(
                match self.db.dialect() {
                    Dialect::Postgres => {
                        format!("SELECT {COLUMNS} FROM outbox WHERE idempotency_key = ANY($1)")
                    }
                    Dialect::Sqlite => format!(
                        "SELECT {COLUMNS} FROM outbox
                         WHERE idempotency_key IN (SELECT value FROM json_each($1))"
                    ),
                },
                vec![match self.db.dialect() {
                    Dialect::Postgres => Arg::Texts(keys.iter().cloned().map(Some).collect()),
                    Dialect::Sqlite => Arg::Text(serde_json::to_string(&keys).unwrap_or_default()),
                }],
            ));
        }
        if self.db.dialect() == Dialect::Postgres {
            steps.push(Statement::new(format!("NOTIFY {CHANNEL}"), Vec::new()));
        }
        let done = self.db.run(steps, Durability::Durable).await?;
        let mut new = HashMap::new();
        for row in done.iter().take(inserts).flat_map(|d| &d.rows) {
            let r = read(row)?;
            new.insert(r.id.clone(), r);
        }
        let mut by_key = HashMap::new();
        if !keys.is_empty() {
            for row in &done[inserts].rows {
                let r = read(row)?;
                if let Some(key) = r.idempotency_key.clone() {
                    by_key.entry(key).or_insert(r);
                }
            }
        }
        batch
            .iter()
            .map(|item| {
                if let Some(r) = new.remove(&item.id) {
                    return Ok(Enqueued::New(r));
                }
                match item.idempotency_key.as_ref().and_then(|k| by_key.get(k)) {
                    Some(r) => Ok(Enqueued::Existing(r.clone())),
                    None => Err(StoreError::Conflict(format!(
                        "registration id {} already exists",
                        item.id
                    ))),
                }
            })
            .collect()
    }

    /// Calls `wake` whenever another process stores a registration, where the database
    /// can say so (PostgreSQL's `LISTEN`). Returns false when it cannot: the worker's
    /// polling finds the work instead. The listener lives on this runtime until the
    /// process ends, reconnecting after a break (polling covers the gap).
    pub fn notify_new_work(self: &std::sync::Arc<Self>, wake: Box<dyn Fn() + Send + Sync>) -> bool {
        if self.db.dialect() != Dialect::Postgres {
            return false;
        }
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = store.listen(&*wake).await {
                    tracing::warn!(
                        "LISTEN {CHANNEL} stopped ({}); polling meanwhile",
                        g2w_goto::chain(&e)
                    );
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        true
    }

    async fn listen(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<(), StoreError> {
        let crate::db::Db::Postgres(pg) = &self.db else {
            return Ok(());
        };
        let (client, mut connection) = pg.dedicated().await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                match message {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| pg.failed("LISTEN", e))?;
        while rx.recv().await.is_some() {
            wake();
        }
        driver.abort();
        Ok(())
    }
}
