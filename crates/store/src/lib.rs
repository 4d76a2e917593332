//! # g2w-store: g2w's durable state
//!
//! Everything g2w keeps, in one SQLite file (the default) or in PostgreSQL (shared by
//! several gateways): every profile's GoTo login with its refresh lock, the outbox of
//! registrations, GoTo's webhook events with their forwarding outbox, the import
//! journal, admin sessions, settings, the form builders that post sign-ups (with the posts
//! kept until their mapping is fixed), and each GoTo account's shared request budget.
//!
//! [`Store`] is one type whichever database is behind it. Each concern is written once
//! (one file each: `profiles`, `registrations`, `events`, `jobs`, `sessions`, `budget`,
//! `journal`, `meta`, `sources`), against the seam in `db`, which alone knows the database: it
//! opens and migrates it (refinery, each database's own SQL) and runs the statements on
//! SQLite (blocking only on tokio's blocking pool) or on a PostgreSQL pool (async, with
//! deadlines). Every durable queue keeps its mechanics in one `jobs` table (`jobs`); the
//! rows people look at stay in their own tables.
//!
//! Secrets are sealed with XChaCha20-Poly1305 under a key from `G2W_SECRET_KEY` (base64
//! of 32 bytes) or a key file beside the database (mode 0600); the database never holds
//! a token in plaintext.
//!
//! Failure model: opening a file that is not a SQLite database, one that is not g2w's, a
//! database from a newer g2w, or one sealed with another key fails with a [`StoreError`]
//! that says which, and changes nothing. Every write is one statement or one
//! transaction: a crash leaves the old state or the new one, never a mix. A database that
//! cannot be reached or stops answering gives [`StoreError::Unavailable`] within a
//! deadline (15 s at start, 5 s a call), never a hang.

mod activity;
mod budget;
mod crypto;
mod db;
mod error;
mod events;
mod jobs;
mod journal;
mod keys;
mod meta;
mod profiles;
mod registrations;
mod sessions;
mod sources;
#[cfg(feature = "testing")]
mod testing;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use activity::Turnout;
pub use budget::StoreBudget;
pub use crypto::{KEY_FILE_NAME, SecretKey};
pub use error::{Cause, StoreError};
pub use events::{Attendance, EventSource, ForwardState, NewEvent, StoredEvent};
pub use jobs::{Claim, Ending, Job, JobEnd, JobState, QueueGauges, QueueName, Release};
pub use journal::{JournalEntry, JournalOutcome};
pub use keys::{AuditEntry, KeyRecord};
pub use meta::Setting;
pub use registrations::{Completion, Enqueued, NewRegistration, OutboxState, Registration};
pub use sessions::AdminSession;
pub use sources::{KeptPost, PostState, SourceRecord};
#[cfg(feature = "testing")]
pub use testing::{create_test_database, test_database_url};

use crate::crypto::Cipher;
use crate::db::Db;

/// The database file's name inside the data directory.
pub const DB_FILE_NAME: &str = "g2w.db";

/// The longest opening a PostgreSQL store may take (connect, migrate, check the key).
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(15);

/// g2w's state, on SQLite or PostgreSQL.
pub struct Store {
    db: Db,
    cipher: Cipher,
    /// What brings the original key back, for [`StoreError::WrongKey`].
    key_remedy: &'static str,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.db.location())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store the settings name: PostgreSQL at `database_url` when one is given
    /// (several gateways can share it), else the SQLite file in `data_dir`. The secret
    /// key is `env_key` (`G2W_SECRET_KEY`) or the key file in `data_dir`; gateways sharing
    /// a PostgreSQL database must share the key.
    ///
    /// # Errors
    /// See [`StoreError`]: each reason has its own variant and message.
    pub async fn open(
        database_url: Option<&str>,
        data_dir: &Path,
        env_key: Option<&str>,
    ) -> Result<Arc<Self>, StoreError> {
        Ok(Arc::new(match database_url {
            Some(url) => {
                std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
                    path: data_dir.to_owned(),
                    source: Box::new(e),
                })?;
                let key = SecretKey::resolve(env_key, data_dir)?;
                Self::postgres(url, &key).await?
            }
            None => Self::open_in(data_dir, env_key).await?,
        }))
    }

    /// Opens (or creates) the SQLite store in `data_dir`, with the key from
    /// `G2W_SECRET_KEY` (passed in as `env_key`) or the key file beside the database.
    ///
    /// # Errors
    /// See [`StoreError`].
    pub async fn open_in(data_dir: &Path, env_key: Option<&str>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.to_owned(),
            source: Box::new(e),
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // The directory holds the key file: keep others out. Best effort.
            let _ = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700));
        }
        writable(data_dir)?;
        let database = data_dir.join(DB_FILE_NAME);
        let key_file = data_dir.join(KEY_FILE_NAME);
        if env_key.is_none()
            && !key_file.exists()
            && std::fs::metadata(&database).is_ok_and(|m| m.len() > 0)
            // A damaged or foreign file is reported as such first.
            && Db::open_sqlite(&database).await?.1 > 0
        {
            return Err(StoreError::KeyMissing { key_file, database });
        }
        let key = SecretKey::resolve(env_key, data_dir)?;
        Self::sqlite(&database, &key).await
    }

    /// Opens (or creates) the SQLite database at `path` with `key`.
    ///
    /// # Errors
    /// See [`StoreError`].
    pub async fn sqlite(path: &Path, key: &SecretKey) -> Result<Self, StoreError> {
        let (db, user_version) = Db::open_sqlite(path).await?;
        let store = Self {
            db,
            cipher: Cipher::new(key),
            key_remedy: "set G2W_SECRET_KEY (or restore g2w.key beside the database) to the original key, or move the database away and log in again",
        };
        store.db.migrate(user_version).await?;
        store.check_key().await?;
        Ok(store)
    }

    /// Connects to `url` (`postgres://user:password@host:port/db`), brings the schema up
    /// to date, and checks that `key` is the key the database's secrets were sealed with,
    /// all within [`STARTUP_DEADLINE`].
    ///
    /// # Errors
    /// A malformed URL, an unreachable or silent server, a failed migration, or a wrong
    /// key; each says which.
    pub async fn postgres(url: &str, key: &SecretKey) -> Result<Self, StoreError> {
        let db = Db::open_postgres(url)?;
        let location = db.location().to_owned();
        let store = Self {
            db,
            cipher: Cipher::new(key),
            key_remedy: "set G2W_SECRET_KEY to the key it was created with (the one the other gateways use), or point G2W_DATABASE_URL at a new database",
        };
        let started = async {
            store.db.migrate(0).await?;
            store.check_key().await
        };
        match tokio::time::timeout(STARTUP_DEADLINE, started).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(StoreError::Unavailable {
                    database: location,
                    source: format!(
                        "it did not finish connecting, migrating and checking the key within {} s",
                        STARTUP_DEADLINE.as_secs()
                    )
                    .into(),
                });
            }
        }
        Ok(store)
    }

    /// Where the data is, for messages: a file path, or a database without password.
    pub fn location(&self) -> String {
        self.db.location().to_owned()
    }

    /// Whether several processes on several machines may share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.db.is_shared()
    }

    /// Applies the migrations not yet applied (`g2w store migrate` runs this alone).
    ///
    /// # Errors
    /// A migration that fails: it is rolled back and named.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.db.migrate(0).await
    }
}

/// A key column: the digits GoTo gave, exactly (never through a float).
pub(crate) fn key<K: std::str::FromStr>(text: &str) -> Result<K, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Data(format!("{text:?} is not a GoTo key")))
}

/// Fails, naming `dir`, unless this process can create files in it (the database's
/// journal and the key file live there).
fn writable(dir: &Path) -> Result<(), StoreError> {
    let probe = dir.join(format!(".g2w-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&probe);
            writable(dir)
        }
        Err(e) => Err(StoreError::NotWritable {
            path: dir.to_owned(),
            source: Box::new(e),
        }),
    }
}
