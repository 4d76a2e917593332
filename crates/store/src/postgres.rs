//! [`PgStore`]: the store on PostgreSQL, so several gateways can share one database.
//!
//! The store's traits are synchronous (callers run them on blocking threads, or on the
//! intake writer's own thread), while `tokio-postgres` is async. The store therefore owns
//! a small private runtime where its connections live; each call is handed to it and
//! waited for with a plain channel, which is safe from any thread, inside a caller's
//! runtime or not.
//!
//! What PostgreSQL adds over SQLite: claims take `FOR UPDATE SKIP LOCKED`, so gateways
//! never queue behind each other's rows; new registrations are announced with `NOTIFY`
//! (see [`Store::notify_new_work`]); the GoTo budget and the refresh lock are rows every
//! instance shares, read and written with the database's own clock for the budget.
//! Schema changes run through refinery's migrations, inside one transaction each.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use g2w_goto::{StoreFailure, Timestamp, TokenRecord, TokenStore};
use tokio_postgres::{Client, NoTls, Row};

use crate::backend::{AdminSession, Store, gcra_book};
use crate::crypto::Cipher;
use crate::outbox::{
    Claim, Completion, Enqueued, NewRegistration, OutboxState, OutboxStore, Registration, Release,
};
use crate::rows::{
    KEY_CHECK_PLACE, KEY_CHECK_PLAINTEXT, ProfileRow, completion_columns, failure, lock_name,
};
use crate::{JournalEntry, SecretKey, StoreError};

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// Connections kept open at most.
const POOL_SIZE: usize = 8;
/// The channel new registrations are announced on.
const CHANNEL: &str = "g2w_outbox";

const COLUMNS: &str = "id, profile, webinar_key, email, payload, idempotency_key, source, state, \
    attempts, next_attempt_at, registrant_key, join_url, last_error, created_at, updated_at, finished_at, \
    fence, failing_since, validated";

type Fut<'c, T> = Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'c>>;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Self::Sql(format!(
                "PostgreSQL: {} ({})",
                db.message(),
                db.code().code()
            )),
            None => Self::Sql(format!("PostgreSQL: {e}")),
        }
    }
}

/// Open connections, shared by the calls running on the private runtime.
struct Pool {
    config: tokio_postgres::Config,
    idle: Mutex<Vec<Client>>,
    slots: tokio::sync::Semaphore,
}

impl Pool {
    async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("a PostgreSQL connection ended: {e}");
            }
        });
        Ok(client)
    }

    async fn with<T>(
        &self,
        f: impl for<'c> FnOnce(&'c mut Client) -> Fut<'c, T>,
    ) -> Result<T, StoreError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| StoreError::Sql("the PostgreSQL pool is closed".into()))?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => self.connect().await?,
        };
        let result = f(&mut client).await;
        if !client.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(client);
        }
        Ok(result?)
    }
}

/// The store's own runtime. Dropped without waiting: a runtime may not block while it
/// shuts down inside another runtime, which is where a gateway drops its store.
struct PrivateRuntime(Option<tokio::runtime::Runtime>);

impl PrivateRuntime {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = &self.0 {
            runtime.spawn(task);
        }
    }
}

impl Drop for PrivateRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The store on PostgreSQL.
pub struct PgStore {
    runtime: PrivateRuntime,
    pool: Arc<Pool>,
    cipher: Cipher,
    location: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// `postgres://user@host:port/db` without the password, for messages.
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "PostgreSQL {}@{}:{}/{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("?")
    )
}

/// For tests: a fresh database on the server `G2W_TEST_DATABASE_URL` names, or `None`
/// (saying so) when it is not set. With `G2W_REQUIRE_POSTGRES` set (CI), a missing
/// server is a failure, not a skip.
///
/// # Panics
/// When PostgreSQL is required but not configured, or the server refuses.
#[doc(hidden)]
pub fn test_database_url() -> Option<String> {
    let Some(admin) = std::env::var("G2W_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("G2W_REQUIRE_POSTGRES").is_none(),
            "G2W_REQUIRE_POSTGRES is set but G2W_TEST_DATABASE_URL is not"
        );
        // Straight to the stream: the test harness hides eprintln! of passing tests,
        // and a skip should be seen.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipped on PostgreSQL: set G2W_TEST_DATABASE_URL (.ci/postgres starts a server)\n",
        );
        return None;
    };
    match PgStore::create_test_database(&admin) {
        Ok(url) => Some(url),
        Err(e) => panic!("cannot create a test database: {e}"),
    }
}

/// `postgres://user:password@host:port` of `config` (no database).
fn url_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!(
        "postgres://{}{password}@{host}:{}",
        config.get_user().unwrap_or("postgres"),
        config.get_ports().first().copied().unwrap_or(5432)
    )
}

/// A key column: the digits GoTo gave, exactly (never through a float).
fn key<K: std::str::FromStr>(text: String) -> Result<K, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Sql(format!("{text:?} in the outbox is not a GoTo key")))
}

fn row_to_registration(r: &Row) -> Result<Registration, StoreError> {
    let state: String = r.try_get(7)?;
    Ok(Registration {
        id: r.try_get(0)?,
        profile: r.try_get(1)?,
        webinar_key: key(r.try_get::<_, String>(2)?)?,
        email: r.try_get(3)?,
        payload: r.try_get(4)?,
        idempotency_key: r.try_get(5)?,
        source: r.try_get(6)?,
        state: state.parse().map_err(StoreError::Sql)?,
        attempts: u32::try_from(r.try_get::<_, i32>(8)?).unwrap_or(0),
        next_attempt_at: Timestamp::from_millis(r.try_get(9)?),
        registrant_key: r.try_get::<_, Option<String>>(10)?.map(key).transpose()?,
        join_url: r.try_get(11)?,
        last_error: r.try_get(12)?,
        created_at: Timestamp::from_millis(r.try_get(13)?),
        updated_at: Timestamp::from_millis(r.try_get(14)?),
        finished_at: r.try_get::<_, Option<i64>>(15)?.map(Timestamp::from_millis),
        fence: r.try_get(16)?,
        failing_since: r.try_get::<_, Option<i64>>(17)?.map(Timestamp::from_millis),
        validated: r.try_get(18)?,
    })
}

fn line_number(line: u64) -> i64 {
    i64::try_from(line).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`), brings the schema up
    /// to date, and checks that `key` is the key the database's secrets were sealed with.
    ///
    /// # Errors
    /// A malformed URL, an unreachable server, a failed migration, or a wrong key; each
    /// says which.
    pub fn connect(url: &str, key: &SecretKey) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Open {
            path: "G2W_DATABASE_URL".into(),
            detail: format!("not a PostgreSQL URL: {e}"),
        })?;
        let location = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("g2w-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Sql(format!("cannot start the database runtime: {e}")))?;
        let store = Self {
            runtime: PrivateRuntime(Some(runtime)),
            pool: Arc::new(Pool {
                config,
                idle: Mutex::new(Vec::new()),
                slots: tokio::sync::Semaphore::new(POOL_SIZE),
            }),
            cipher: Cipher::new(key),
            location,
        };
        store.migrate()?;
        store.check_key()?;
        Ok(store)
    }

    /// Runs `f` with a pooled connection on the private runtime and waits for it.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        f: impl for<'c> FnOnce(&'c mut Client) -> Fut<'c, T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.pool.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(pool.with(f).await);
        });
        rx.recv()
            .map_err(|_| StoreError::Sql("the database task stopped".into()))?
    }

    /// Applies the migrations not yet applied (`g2w store migrate` runs this alone).
    ///
    /// # Errors
    /// A migration that fails: it is rolled back and named.
    pub fn migrate(&self) -> Result<(), StoreError> {
        let location = self.location.clone();
        let pool = self.pool.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let outcome = async {
                let mut client = pool.connect().await.map_err(|e| StoreError::Open {
                    path: location.clone().into(),
                    detail: StoreError::from(e).to_string(),
                })?;
                // Two instances starting together must not both migrate.
                client
                    .batch_execute("SELECT pg_advisory_lock(7432001)")
                    .await?;
                let applied = embedded::migrations::runner()
                    .run_async(&mut client)
                    .await
                    .map_err(|e| StoreError::Sql(format!("migration failed: {e}")));
                client
                    .batch_execute("SELECT pg_advisory_unlock(7432001)")
                    .await?;
                applied.map(|_| ())
            }
            .await;
            let _ = tx.send(outcome);
        });
        rx.recv()
            .map_err(|_| StoreError::Sql("the database task stopped".into()))?
    }

    fn check_key(&self) -> Result<(), StoreError> {
        let sealed = self.cipher.seal(KEY_CHECK_PLACE, KEY_CHECK_PLAINTEXT)?;
        let stored: Vec<u8> = self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT DO NOTHING",
                    &[&sealed],
                )
                .await?;
                c.query_one("SELECT value FROM meta WHERE key = 'key_check'", &[])
                    .await?
                    .try_get(0)
            })
        })?;
        match self.cipher.open(KEY_CHECK_PLACE, &stored) {
            Ok(plain) if plain == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(StoreError::WrongKey {
                path: self.location.clone().into(),
                key_file: "G2W_SECRET_KEY",
            }),
        }
    }

    /// For tests: creates an empty database on the server `admin_url` points at and
    /// returns its URL, so each test runs on its own.
    ///
    /// # Errors
    /// When the server refuses.
    #[doc(hidden)]
    pub fn create_test_database(admin_url: &str) -> Result<String, StoreError> {
        let mut config: tokio_postgres::Config = admin_url
            .parse()
            .map_err(|e| StoreError::Sql(format!("G2W_TEST_DATABASE_URL: {e}")))?;
        let name = format!("g2w_test_{:016x}", rand::random::<u64>());
        let create = format!("CREATE DATABASE {name}");
        let admin = config.clone();
        // Its own thread: tests call this from inside their runtimes.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Sql(e.to_string()))?;
            runtime.block_on(async move {
                let (client, connection) = admin.connect(NoTls).await?;
                tokio::spawn(connection);
                client.batch_execute(&create).await
            })?;
            Ok::<_, StoreError>(())
        })
        .join()
        .map_err(|_| StoreError::Sql("creating a test database panicked".into()))??;
        config.dbname(&name);
        let mut url = url_of(&config);
        url.push_str(&format!("/{name}"));
        Ok(url)
    }
}

impl OutboxStore for PgStore {
    fn enqueue(&self, batch: &[NewRegistration]) -> Result<Vec<Enqueued>, StoreError> {
        let column = |f: fn(&NewRegistration) -> Option<String>| -> Vec<Option<String>> {
            batch.iter().map(f).collect()
        };
        let ids = column(|r| Some(r.id.clone()));
        let profiles = column(|r| Some(r.profile.clone()));
        let webinars = column(|r| Some(r.webinar_key.to_string()));
        let emails = column(|r| Some(r.email.clone()));
        let payloads = column(|r| Some(r.payload.clone()));
        let keys = column(|r| r.idempotency_key.clone());
        let sources = column(|r| r.source.clone());
        let created: Vec<i64> = batch.iter().map(|r| r.created_at.as_millis()).collect();
        let validated: Vec<bool> = batch.iter().map(|r| r.validated).collect();
        let repeated_keys: Vec<String> = keys.iter().flatten().cloned().collect();
        let (inserted, existing) = self.run(move |c| {
            Box::pin(async move {
                // One statement for the whole batch: a round trip per registration
                // would cap intake at the network's latency.
                let tx = c.transaction().await?;
                let inserted = tx
                    .query(
                        &format!(
                            "INSERT INTO outbox (id, profile, webinar_key, email, payload,
                                 idempotency_key, source, state, attempts, next_attempt_at,
                                 created_at, updated_at, validated)
                             SELECT id, profile, webinar_key, email, payload, key, source,
                                 'pending', 0, created, created, created, validated
                             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                         $5::text[], $6::text[], $7::text[], $8::bigint[],
                                         $9::bool[])
                                 AS t(id, profile, webinar_key, email, payload, key, source,
                                      created, validated)
                             ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
                        ),
                        &[
                            &ids, &profiles, &webinars, &emails, &payloads, &keys, &sources,
                            &created, &validated,
                        ],
                    )
                    .await?;
                let existing = if inserted.len() < ids.len() && !repeated_keys.is_empty() {
                    tx.query(
                        &format!("SELECT {COLUMNS} FROM outbox WHERE idempotency_key = ANY($1)"),
                        &[&repeated_keys],
                    )
                    .await?
                } else {
                    Vec::new()
                };
                tx.batch_execute(&format!("NOTIFY {CHANNEL}")).await?;
                tx.commit().await?;
                Ok((inserted, existing))
            })
        })?;
        let mut new = std::collections::HashMap::new();
        for row in &inserted {
            let r = row_to_registration(row)?;
            new.insert(r.id.clone(), r);
        }
        let mut by_key = std::collections::HashMap::new();
        for row in &existing {
            let r = row_to_registration(row)?;
            if let Some(key) = r.idempotency_key.clone() {
                by_key.insert(key, r);
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
                    None => Err(StoreError::Sql(format!(
                        "registration id {} already exists",
                        item.id
                    ))),
                }
            })
            .collect()
    }

    fn claim(
        &self,
        profile: &str,
        holder: &str,
        now: Timestamp,
        lease: Duration,
        which: Claim,
    ) -> Result<Option<Registration>, StoreError> {
        let (due_by, lease_until) = (which.due_by(now).as_millis(), (now + lease).as_millis());
        let now = now.as_millis();
        let (profile, holder) = (profile.to_owned(), holder.to_owned());
        let row = self.run(move |c| {
            Box::pin(async move {
                // Orphans (expired leases) first, then the pending row due longest: two
                // look-ups on their own partial indexes (one OR would scan the table).
                // Rows another gateway is claiming right now are skipped, not waited for.
                c.query_opt(
                    &format!(
                        "UPDATE outbox SET state = 'delivering', lease_holder = $1, lease_until = $2,
                             attempts = attempts + 1, fence = fence + 1, updated_at = $3
                         WHERE id = COALESCE(
                             (SELECT id FROM outbox
                              WHERE profile = $4 AND state = 'delivering' AND lease_until <= $3
                              ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED),
                             (SELECT id FROM outbox
                              WHERE profile = $4 AND state = 'pending' AND next_attempt_at <= $5
                              ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED))
                         RETURNING {COLUMNS}"
                    ),
                    &[&holder, &lease_until, &now, &profile, &due_by],
                )
                .await
            })
        })?;
        row.as_ref().map(row_to_registration).transpose()
    }

    fn renew(&self, id: &str, fence: i64, lease_until: Timestamp) -> Result<bool, StoreError> {
        let lease_until = lease_until.as_millis();
        let id = id.to_owned();
        let n = self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "UPDATE outbox SET lease_until = $1
                     WHERE id = $2 AND state = 'delivering' AND fence = $3",
                    &[&lease_until, &id, &fence],
                )
                .await
            })
        })?;
        Ok(n == 1)
    }

    fn complete(
        &self,
        id: &str,
        fence: i64,
        now: Timestamp,
        completion: &Completion,
    ) -> Result<Option<Registration>, StoreError> {
        let now = now.as_millis();
        let (state, key, url, error) = completion_columns(completion);
        let id = id.to_owned();
        let row = self.run(move |c| {
            Box::pin(async move {
                c.query_opt(
                    &format!(
                        "UPDATE outbox SET state = $1, registrant_key = $2, join_url = $3,
                         last_error = COALESCE($4, last_error), lease_holder = NULL,
                         lease_until = NULL, updated_at = $5, finished_at = $5
                     WHERE id = $6 AND state = 'delivering' AND fence = $7 RETURNING {COLUMNS}"
                    ),
                    &[&state.as_str(), &key, &url, &error, &now, &id, &fence],
                )
                .await
            })
        })?;
        row.as_ref().map(row_to_registration).transpose()
    }

    fn release(
        &self,
        id: &str,
        fence: i64,
        now: Timestamp,
        next_attempt_at: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Option<Registration>, StoreError> {
        let (now, next_attempt_at) = (now.as_millis(), next_attempt_at.as_millis());
        let uncount = i32::from(why != Release::Failed);
        let failing = why != Release::Paused;
        let (id, error) = (id.to_owned(), error.to_owned());
        let row =
            self.run(move |c| {
                Box::pin(async move {
                    c.query_opt(
                    &format!("UPDATE outbox SET state = 'pending', next_attempt_at = $1, last_error = $2,
                         attempts = attempts - $3, lease_holder = NULL, lease_until = NULL,
                         updated_at = $4,
                         failing_since = CASE WHEN $7 THEN COALESCE(failing_since, $4)
                                              ELSE failing_since END
                     WHERE id = $5 AND state = 'delivering' AND fence = $6 RETURNING {COLUMNS}"),
                    &[&next_attempt_at, &error, &uncount, &now, &id, &fence, &failing],
                )
                .await
                })
            })?;
        row.as_ref().map(row_to_registration).transpose()
    }

    fn make_due(&self, profile: &str, now: Timestamp) -> Result<u64, StoreError> {
        let now = now.as_millis();
        let profile = profile.to_owned();
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "UPDATE outbox SET next_attempt_at = $1
                     WHERE profile = $2 AND state = 'pending' AND next_attempt_at > $1",
                    &[&now, &profile],
                )
                .await
            })
        })
    }

    fn oldest_waiting(&self, profile: &str) -> Result<Option<Timestamp>, StoreError> {
        let profile = profile.to_owned();
        let oldest: Option<i64> = self.run(move |c| {
            Box::pin(async move {
                c.query_one(
                    "SELECT min(created_at) FROM outbox
                     WHERE profile = $1 AND state IN ('pending', 'delivering')",
                    &[&profile],
                )
                .await?
                .try_get(0)
            })
        })?;
        Ok(oldest.map(Timestamp::from_millis))
    }

    fn waiting(&self, profile: &str, now: Timestamp) -> Result<u64, StoreError> {
        let (profile, now) = (profile.to_owned(), now.as_millis());
        let n: i64 = self.run(move |c| {
            Box::pin(async move {
                c.query_one(
                    "SELECT (SELECT count(*) FROM outbox
                             WHERE profile = $1 AND state = 'pending' AND next_attempt_at <= $2)
                          + (SELECT count(*) FROM outbox WHERE profile = $1 AND state = 'delivering')",
                    &[&profile, &now],
                )
                .await?
                .try_get(0)
            })
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn probe_write(&self, now: Timestamp) -> Result<(), StoreError> {
        let value = now.as_millis().to_string().into_bytes();
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES ('write_probe', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&value],
                )
                .await
            })
        })
        .map(|_| ())
    }

    fn registration(&self, id: &str) -> Result<Option<Registration>, StoreError> {
        let id = id.to_owned();
        let row = self.run(move |c| {
            Box::pin(async move {
                c.query_opt(
                    &format!("SELECT {COLUMNS} FROM outbox WHERE id = $1"),
                    &[&id],
                )
                .await
            })
        })?;
        row.as_ref().map(row_to_registration).transpose()
    }

    fn list(
        &self,
        state: Option<OutboxState>,
        email: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        let state = state.map(|s| s.as_str().to_owned());
        let email = email.map(str::to_owned);
        let rows = self.run(move |c| {
            Box::pin(async move {
                c.query(
                    &format!(
                        "SELECT {COLUMNS} FROM outbox
                         WHERE ($1::text IS NULL OR state = $1)
                           AND ($2::text IS NULL OR lower(email) = lower($2))
                         ORDER BY created_at DESC, id DESC LIMIT $3"
                    ),
                    &[&state, &email, &i64::from(limit)],
                )
                .await
            })
        })?;
        rows.iter().map(row_to_registration).collect()
    }

    fn counts(&self) -> Result<BTreeMap<OutboxState, u64>, StoreError> {
        let rows = self.run(|c| {
            Box::pin(async move {
                c.query("SELECT state, count(*) FROM outbox GROUP BY state", &[])
                    .await
            })
        })?;
        let mut counts: BTreeMap<OutboxState, u64> =
            OutboxState::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in rows {
            let (state, n): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
            if let Ok(state) = state.parse() {
                counts.insert(state, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    fn next_due(&self, profile: &str) -> Result<Option<Timestamp>, StoreError> {
        let profile = profile.to_owned();
        let due: Option<i64> = self.run(move |c| {
            Box::pin(async move {
                c.query_one(
                    "SELECT least(
                         (SELECT min(next_attempt_at) FROM outbox WHERE profile = $1 AND state = 'pending'),
                         (SELECT min(lease_until) FROM outbox WHERE profile = $1 AND state = 'delivering'))",
                    &[&profile],
                )
                .await?
                .try_get(0)
            })
        })?;
        Ok(due.map(Timestamp::from_millis))
    }

    fn retry(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let now = now.as_millis();
        let id = id.to_owned();
        let n = self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1,
                         updated_at = $1, finished_at = NULL, failing_since = NULL
                     WHERE id = $2 AND state IN ('failed', 'dead')",
                    &[&now, &id],
                )
                .await
            })
        })?;
        Ok(n == 1)
    }

    fn retry_all_failed(&self, now: Timestamp) -> Result<u64, StoreError> {
        let now = now.as_millis();
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1,
                         updated_at = $1, finished_at = NULL, failing_since = NULL
                     WHERE state IN ('failed', 'dead')",
                    &[&now],
                )
                .await
            })
        })
    }

    fn discard(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let n = self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "DELETE FROM outbox WHERE id = $1 AND state IN ('failed', 'dead')",
                    &[&id],
                )
                .await
            })
        })?;
        Ok(n == 1)
    }

    fn purge_delivered_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let before = before.as_millis();
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "DELETE FROM outbox WHERE state IN ('delivered', 'already_registered')
                         AND finished_at < $1",
                    &[&before],
                )
                .await
            })
        })
    }
}

impl TokenStore for PgStore {
    fn load(&self, profile: &str) -> Result<Option<TokenRecord>, StoreFailure> {
        self.load_profile(profile).map_err(failure)
    }

    fn save(&self, profile: &str, record: &TokenRecord) -> Result<(), StoreFailure> {
        self.save_profile(profile, record).map_err(failure)
    }

    fn try_lock_refresh(
        &self,
        profile: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreFailure> {
        let (now, until) = (now.as_secs(), (now + ttl).as_secs());
        let (name, holder) = (lock_name(profile), holder.to_owned());
        let n = self
            .run(move |c| {
                Box::pin(async move {
                    c.execute(
                        "INSERT INTO locks (name, holder, expires_at) VALUES ($1, $2, $3)
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                             expires_at = excluded.expires_at
                         WHERE locks.expires_at <= $4 OR locks.holder = excluded.holder",
                        &[&name, &holder, &until, &now],
                    )
                    .await
                })
            })
            .map_err(failure)?;
        Ok(n == 1)
    }

    fn unlock_refresh(&self, profile: &str, holder: &str) -> Result<(), StoreFailure> {
        let (name, holder) = (lock_name(profile), holder.to_owned());
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "DELETE FROM locks WHERE name = $1 AND holder = $2",
                    &[&name, &holder],
                )
                .await
            })
        })
        .map(|_| ())
        .map_err(failure)
    }
}

impl Store for PgStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn load_profile(&self, profile: &str) -> Result<Option<TokenRecord>, StoreError> {
        let name = profile.to_owned();
        let row = self.run(move |c| {
            Box::pin(async move {
                c.query_opt(
                    "SELECT client_id, client_secret, access_token, access_expires_at, refresh_token,
                            refresh_token_since, personal_access_token, organizer_key, account_key,
                            principal, reauthorization_reason, last_refresh_at
                     FROM profiles WHERE name = $1",
                    &[&name],
                )
                .await
            })
        })?;
        let Some(r) = row else {
            return Ok(None);
        };
        let row = ProfileRow {
            client_id: r.try_get(0)?,
            client_secret: r.try_get(1)?,
            access_token: r.try_get(2)?,
            access_expires_at: r.try_get(3)?,
            refresh_token: r.try_get(4)?,
            refresh_token_since: r.try_get(5)?,
            personal_access_token: r.try_get(6)?,
            organizer_key: r.try_get(7)?,
            account_key: r.try_get(8)?,
            principal: r.try_get(9)?,
            reauthorization_reason: r.try_get(10)?,
            last_refresh_at: r.try_get(11)?,
        };
        row.open(&self.cipher, profile).map(Some)
    }

    fn save_profile(&self, profile: &str, record: &TokenRecord) -> Result<(), StoreError> {
        let r = ProfileRow::seal(&self.cipher, profile, record)?;
        let name = profile.to_owned();
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO profiles (name, client_id, client_secret, access_token,
                         access_expires_at, refresh_token, refresh_token_since,
                         personal_access_token, organizer_key, account_key, principal,
                         reauthorization_reason, last_refresh_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                             extract(epoch FROM now())::bigint)
                     ON CONFLICT (name) DO UPDATE SET
                         client_id = excluded.client_id, client_secret = excluded.client_secret,
                         access_token = excluded.access_token,
                         access_expires_at = excluded.access_expires_at,
                         refresh_token = excluded.refresh_token,
                         refresh_token_since = excluded.refresh_token_since,
                         personal_access_token = excluded.personal_access_token,
                         organizer_key = excluded.organizer_key,
                         account_key = excluded.account_key, principal = excluded.principal,
                         reauthorization_reason = excluded.reauthorization_reason,
                         last_refresh_at = excluded.last_refresh_at,
                         updated_at = excluded.updated_at",
                    &[
                        &name,
                        &r.client_id,
                        &r.client_secret,
                        &r.access_token,
                        &r.access_expires_at,
                        &r.refresh_token,
                        &r.refresh_token_since,
                        &r.personal_access_token,
                        &r.organizer_key,
                        &r.account_key,
                        &r.principal,
                        &r.reauthorization_reason,
                        &r.last_refresh_at,
                    ],
                )
                .await
            })
        })
        .map(|_| ())
    }

    fn delete_profile(&self, profile: &str) -> Result<bool, StoreError> {
        let (name, lock) = (profile.to_owned(), lock_name(profile));
        let n = self.run(move |c| {
            Box::pin(async move {
                let n = c
                    .execute("DELETE FROM profiles WHERE name = $1", &[&name])
                    .await?;
                c.execute("DELETE FROM locks WHERE name = $1", &[&lock])
                    .await?;
                Ok(n)
            })
        })?;
        Ok(n > 0)
    }

    fn profiles(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.run(|c| {
            Box::pin(async move {
                c.query("SELECT name FROM profiles ORDER BY name", &[])
                    .await
            })
        })?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = format!("setting:{key}");
        let value: Option<Vec<u8>> = self.run(move |c| {
            Box::pin(async move {
                c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()
            })
        })?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (format!("setting:{key}"), value.as_bytes().to_vec());
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&key, &value],
                )
                .await
            })
        })
        .map(|_| ())
    }

    fn journal_entry(
        &self,
        import_id: &str,
        line: u64,
    ) -> Result<Option<JournalEntry>, StoreError> {
        let import_id = import_id.to_owned();
        let row = self.run(move |c| {
            Box::pin(async move {
                c.query_opt(
                    "SELECT outcome, registrant_key, join_url, detail FROM import_journal
                     WHERE import_id = $1 AND line = $2",
                    &[&import_id, &line_number(line)],
                )
                .await
            })
        })?;
        row.map(|r| {
            Ok(JournalEntry {
                outcome: r
                    .try_get::<_, String>(0)?
                    .parse()
                    .map_err(StoreError::Sql)?,
                registrant_key: r.try_get(1)?,
                join_url: r.try_get(2)?,
                detail: r.try_get(3)?,
            })
        })
        .transpose()
    }

    fn journal_record(
        &self,
        import_id: &str,
        line: u64,
        entry: &JournalEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now = now.as_secs();
        let (import_id, e) = (import_id.to_owned(), entry.clone());
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO import_journal (import_id, line, outcome, registrant_key,
                         join_url, detail, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (import_id, line) DO UPDATE SET outcome = excluded.outcome,
                         registrant_key = excluded.registrant_key, join_url = excluded.join_url,
                         detail = excluded.detail, updated_at = excluded.updated_at",
                    &[
                        &import_id,
                        &line_number(line),
                        &e.outcome.as_str(),
                        &e.registrant_key,
                        &e.join_url,
                        &e.detail,
                        &now,
                    ],
                )
                .await
            })
        })
        .map(|_| ())
    }

    fn put_session(&self, digest: &str, session: &AdminSession) -> Result<(), StoreError> {
        let (digest, csrf) = (digest.to_owned(), session.csrf.clone());
        let expires_at = session.expires_at.as_secs();
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO admin_sessions (digest, csrf, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT (digest) DO UPDATE SET csrf = excluded.csrf,
                         expires_at = excluded.expires_at",
                    &[&digest, &csrf, &expires_at],
                )
                .await
            })
        })
        .map(|_| ())
    }

    fn session(&self, digest: &str, now: Timestamp) -> Result<Option<AdminSession>, StoreError> {
        let (digest, now) = (digest.to_owned(), now.as_secs());
        let row = self.run(move |c| {
            Box::pin(async move {
                c.query_opt(
                    "SELECT csrf, expires_at FROM admin_sessions
                     WHERE digest = $1 AND expires_at > $2",
                    &[&digest, &now],
                )
                .await
            })
        })?;
        row.map(|r| {
            Ok(AdminSession {
                csrf: r.try_get(0)?,
                expires_at: Timestamp::from_secs(r.try_get(1)?),
            })
        })
        .transpose()
    }

    fn end_session(&self, digest: &str, now: Timestamp) -> Result<(), StoreError> {
        let (digest, now) = (digest.to_owned(), now.as_secs());
        self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "DELETE FROM admin_sessions WHERE digest = $1 OR expires_at <= $2",
                    &[&digest, &now],
                )
                .await
            })
        })
        .map(|_| ())
    }

    fn book_budget(
        &self,
        account: &str,
        interval: Duration,
        burst: u32,
        permits: u32,
        max_wait: Option<Duration>,
    ) -> Result<Option<Duration>, StoreError> {
        let account = account.to_owned();
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                // The database's clock, so gateways on machines whose clocks differ
                // still share one schedule.
                let row = tx
                    .query_one(
                        "INSERT INTO goto_budget (account, tat_ms) VALUES ($1, 0)
                         ON CONFLICT (account) DO UPDATE SET account = excluded.account
                         RETURNING tat_ms,
                             (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                        &[&account],
                    )
                    .await?;
                let (tat, now): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                let (tat, now) = (Timestamp::from_millis(tat), Timestamp::from_millis(now));
                let Some((tat, wait)) = gcra_book(tat, now, interval, burst, permits, max_wait)
                else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                tx.execute(
                    "UPDATE goto_budget SET tat_ms = $2 WHERE account = $1",
                    &[&account, &tat.as_millis()],
                )
                .await?;
                tx.commit().await?;
                Ok(Some(wait))
            })
        })
    }

    fn notify_new_work(&self, wake: Box<dyn Fn() + Send + Sync>) -> Result<bool, StoreError> {
        let pool = self.pool.clone();
        self.runtime.spawn(async move {
            // One connection that only listens; when it breaks, the worker's polling
            // covers the gap until a new one is up.
            loop {
                match listen(&pool, &*wake).await {
                    Ok(()) => {}
                    Err(e) => tracing::warn!("LISTEN {CHANNEL} stopped ({e}); polling meanwhile"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
        Ok(true)
    }
}

async fn listen(pool: &Pool, wake: &(dyn Fn() + Send + Sync)) -> Result<(), StoreError> {
    let (client, mut connection) = pool.config.connect(NoTls).await?;
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
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    while rx.recv().await.is_some() {
        wake();
    }
    driver.abort();
    Ok(())
}
