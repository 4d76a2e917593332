//! Storing submissions: each a registration row and its delivery job, written together.

use std::collections::HashMap;

use super::*;
use crate::db::{Arg, Dialect, Durability, Statement};
use crate::{Store, StoreError};

/// A registration and its job in one statement (PostgreSQL): one round trip for the whole
/// batch, whatever its size.
const INSERT_MANY: &str = "WITH ins AS (
         INSERT INTO registrations (id, profile, webinar_key, email, payload, idempotency_key,
             source, validated, created_at, person)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::text[], $8::bool[], $9::bigint[], $10::text[])
         ON CONFLICT DO NOTHING
         RETURNING id, profile, created_at),
     job AS (
         INSERT INTO jobs (kind, id, owner, state, run_at, created_at, updated_at)
         SELECT 'registrations', id, profile, 'pending', created_at, created_at, created_at
         FROM ins)
     SELECT id FROM ins";

/// The batch's registrations in one statement (SQLite): `$1` is a JSON array with a
/// row (an array, in the columns' order) per registration.
const INSERT_ROWS: &str = "INSERT INTO registrations (id, profile, webinar_key, email, payload,
         idempotency_key, source, validated, created_at, person)
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
         value ->> 6, value ->> 7, value ->> 8, value ->> 9
     FROM json_each($1) WHERE true
     ON CONFLICT DO NOTHING RETURNING id";

/// Their jobs, for those stored (`$1`: a JSON array of the batch's ids).
const INSERT_JOBS: &str =
    "INSERT INTO jobs (kind, id, owner, state, run_at, created_at, updated_at)
     SELECT 'registrations', r.id, r.profile, 'pending', r.created_at, r.created_at,
         r.created_at
     FROM json_each($1) AS b JOIN registrations r ON r.id = b.value WHERE true
     ON CONFLICT DO NOTHING";

/// The registrations an idempotency key or an open delivery already names.
const EARLIER: &str = concat!(
    "SELECT ",
    registration_columns!(job),
    " FROM ",
    joined!(),
    " WHERE r.idempotency_key = ANY($1)
     UNION ALL
     SELECT ",
    registration_columns!(job),
    " FROM ",
    joined!(),
    " WHERE r.person = ANY($2) AND r.flight = ''"
);

/// How often a submission that met an open delivery is tried again when that delivery
/// finished before it could be read.
const TRIES: usize = 3;

impl Store {
    /// Stores submissions durably, each a registration and its delivery job. A
    /// submission whose idempotency key was seen returns that registration
    /// ([`Enqueued::Existing`]); one whose person already has a registration for the same
    /// webinar and organizer on its way to GoTo returns that one ([`Enqueued::InFlight`]).
    ///
    /// # Errors
    /// When a write cannot commit: then nothing of that write is stored.
    pub async fn enqueue(&self, batch: &[NewRegistration]) -> Result<Vec<Enqueued>, StoreError> {
        let mut answers: Vec<Option<Enqueued>> = vec![None; batch.len()];
        let mut left: Vec<usize> = (0..batch.len()).collect();
        for _ in 0..TRIES {
            let stored = self.insert(batch, &left).await?;
            let mut earlier = Vec::new();
            for i in left {
                if stored.contains(&batch[i].id) {
                    answers[i] = Some(Enqueued::New(new_registration(&batch[i])));
                } else {
                    earlier.push(i);
                }
            }
            if earlier.is_empty() {
                break;
            }
            left = self.find_earlier(batch, earlier, &mut answers).await?;
            if left.is_empty() {
                break;
            }
        }
        answers
            .into_iter()
            .zip(batch)
            .map(|(answer, item)| {
                answer.ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "registration {} kept meeting deliveries that finished",
                        item.id
                    ))
                })
            })
            .collect()
    }

    /// Inserts `batch[which]` with their jobs in one durable transaction; the ids stored
    /// (the others met an idempotency key or an open delivery).
    async fn insert(
        &self,
        batch: &[NewRegistration],
        which: &[usize],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let items: Vec<&NewRegistration> = which.iter().map(|&i| &batch[i]).collect();
        let steps = match self.db.dialect() {
            Dialect::Postgres => {
                let texts = |f: fn(&NewRegistration) -> Option<String>| {
                    Arg::Texts(items.iter().map(|r| f(r)).collect())
                };
                vec![Statement::new(
                    INSERT_MANY,
                    vec![
                        texts(|r| Some(r.id.clone())),
                        texts(|r| Some(r.profile.clone())),
                        texts(|r| Some(r.webinar_key.to_string())),
                        texts(|r| Some(r.email.clone())),
                        texts(|r| Some(r.payload.clone())),
                        texts(|r| r.idempotency_key.clone()),
                        texts(|r| r.source.clone()),
                        Arg::Bools(items.iter().map(|r| r.validated).collect()),
                        Arg::Ints(items.iter().map(|r| r.created_at.as_millis()).collect()),
                        texts(|r| Some(person(&r.profile, r.webinar_key, &r.email))),
                    ],
                )]
            }
            Dialect::Sqlite => {
                let rows: Vec<serde_json::Value> = items
                    .iter()
                    .map(|r| {
                        serde_json::json!([
                            r.id,
                            r.profile,
                            r.webinar_key.to_string(),
                            r.email,
                            r.payload,
                            r.idempotency_key,
                            r.source,
                            i64::from(r.validated),
                            r.created_at.as_millis(),
                            person(&r.profile, r.webinar_key, &r.email),
                        ])
                    })
                    .collect();
                let ids: Vec<&str> = items.iter().map(|r| r.id.as_str()).collect();
                // Lists of strings and numbers: serialising them cannot fail.
                let rows = serde_json::to_string(&rows).unwrap_or_default();
                let ids = serde_json::to_string(&ids).unwrap_or_default();
                vec![
                    Statement::new(INSERT_ROWS, vec![Arg::Text(rows)]),
                    Statement::new(INSERT_JOBS, vec![Arg::Text(ids)]),
                ]
            }
        };
        let done = self.db.run(steps, Durability::Durable).await?;
        done.iter()
            .flat_map(|d| &d.rows)
            .map(|r| r.text(0))
            .collect()
    }

    /// Answers `batch[which]` from the registrations their idempotency keys or open
    /// deliveries name; returns those to store again (their delivery finished meanwhile).
    async fn find_earlier(
        &self,
        batch: &[NewRegistration],
        which: Vec<usize>,
        answers: &mut [Option<Enqueued>],
    ) -> Result<Vec<usize>, StoreError> {
        let keys = which
            .iter()
            .filter_map(|&i| batch[i].idempotency_key.clone().map(Some))
            .collect();
        let open = which
            .iter()
            .map(|&i| {
                let r = &batch[i];
                Some(person(&r.profile, r.webinar_key, &r.email))
            })
            .collect();
        let found = self
            .db
            .query(EARLIER, vec![Arg::Texts(keys), Arg::Texts(open)])
            .await?;
        let mut by_key = HashMap::new();
        let mut by_open = HashMap::new();
        for row in &found {
            let r = read(row)?;
            if let Some(k) = r.idempotency_key.clone() {
                by_key.entry(k).or_insert_with(|| r.clone());
            }
            by_open
                .entry(person(&r.profile, r.webinar_key, &r.email))
                .or_insert(r);
        }
        let mut again = Vec::new();
        for i in which {
            let item = &batch[i];
            let known = item.idempotency_key.as_ref().and_then(|k| by_key.get(k));
            answers[i] = match known {
                Some(r) => Some(Enqueued::Existing(r.clone())),
                None => match by_open.get(&person(&item.profile, item.webinar_key, &item.email)) {
                    Some(r) if !r.state.is_final() => Some(Enqueued::InFlight(r.clone())),
                    _ => {
                        again.push(i);
                        None
                    }
                },
            };
        }
        Ok(again)
    }

    /// Calls `wake` with the kind of work whenever another process adds a job, where the
    /// database can say so (PostgreSQL's `LISTEN`), until `stop` fires. Returns false
    /// when it cannot: polling finds the work instead.
    pub fn notify_new_work(
        &self,
        wake: Box<dyn Fn(crate::QueueName) + Send + Sync>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        self.db.listen(
            JOBS_CHANNEL,
            Box::new(move |payload: &str| {
                if let Ok(kind) = payload.parse() {
                    wake(kind);
                }
            }),
            stop,
        )
    }
}

/// The channel new jobs are announced on (PostgreSQL: a trigger on `jobs` says which
/// kinds a statement added).
const JOBS_CHANNEL: &str = "g2w_jobs";

/// A registration just stored, as the store now holds it.
fn new_registration(r: &NewRegistration) -> Registration {
    Registration {
        id: r.id.clone(),
        profile: r.profile.clone(),
        webinar_key: r.webinar_key,
        email: r.email.clone(),
        payload: r.payload.clone(),
        idempotency_key: r.idempotency_key.clone(),
        source: r.source.clone(),
        state: OutboxState::Pending,
        attempts: 0,
        next_attempt_at: r.created_at,
        registrant_key: None,
        join_url: None,
        last_error: None,
        created_at: r.created_at,
        updated_at: r.created_at,
        finished_at: None,
        fence: 0,
        failing_since: None,
        validated: r.validated,
    }
}
