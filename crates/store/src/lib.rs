//! # g2w-store: g2w's durable state
//!
//! One SQLite database (WAL mode) holds every profile's login: the OAuth client, the
//! access and refresh tokens, the personal access token, the organizer. Secrets are
//! encrypted with XChaCha20-Poly1305 under a key from `G2W_SECRET_KEY` (base64 of 32
//! bytes) or from a key file created beside the database with mode 0600; the database
//! file never holds a token in plaintext.
//!
//! The store implements [`g2w_goto::TokenStore`], including the cross-process refresh
//! lock: a lease row that a crashed holder cannot keep past its expiry, and
//! [`OutboxStore`], the durable queue of registrations the gateway delivers.
//!
//! Failure model: opening a file that is not a SQLite database, a SQLite database that
//! is not g2w's, or a g2w database with a different key fails with a [`StoreError`] that
//! says which, and changes nothing. Every write is one transaction: a crash leaves the
//! previous state or the new one, never a mix (a new refresh token is never saved
//! without its access token).

mod backend;
mod crypto;
mod events;
mod journal;
mod outbox;
mod postgres;
mod postgres_events;
mod rows;
mod sqlite;
mod sqlite_events;
mod sqlite_outbox;

use std::path::PathBuf;

pub use backend::{AdminSession, Store, StoreBudget};
pub use crypto::{KEY_FILE_NAME, SecretKey};
pub use events::{
    Attendance, EventSource, EventStore, ForwardOutcome, ForwardState, NewEvent, StoredEvent,
};
pub use journal::{JournalEntry, JournalOutcome};
pub use outbox::{
    Claim, Completion, Enqueued, NewRegistration, OutboxState, OutboxStore, Registration, Release,
};
pub use postgres::{PgStore, test_database_url};
pub use sqlite::{DB_FILE_NAME, SqliteStore};

/// Opens the store the settings name: PostgreSQL at `database_url` when one is given
/// (several gateways can share it), else the SQLite file in `data_dir`. The secret key
/// is `env_key` (`G2W_SECRET_KEY`) or the key file in `data_dir`; gateways sharing a
/// PostgreSQL database must share the key.
///
/// # Errors
/// See [`StoreError`]: each reason has its own variant and message.
pub fn open(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
    env_key: Option<&str>,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match database_url {
        Some(url) => {
            std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
                path: data_dir.to_owned(),
                detail: e.to_string(),
            })?;
            let key = SecretKey::resolve(env_key, data_dir)?;
            std::sync::Arc::new(PgStore::connect(url, &key)?)
        }
        None => std::sync::Arc::new(SqliteStore::open_in(data_dir, env_key)?),
    })
}

/// What went wrong with the store.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file cannot be opened or created.
    #[error("cannot open the database {path}: {detail}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The file is not a SQLite database, or is damaged.
    #[error("{path} is not a usable database ({detail}); move it away and log in again")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// SQLite's words.
        detail: String,
    },
    /// A SQLite database that some other program made.
    #[error("{path} is a SQLite database but not g2w's; point G2W_DATA_DIR elsewhere")]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// A g2w database from a newer g2w.
    #[error("{path} was written by a newer g2w (schema {found}, this one knows {known})")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The database was encrypted with another key.
    #[error(
        "the secret key does not match the one {path} was created with; set G2W_SECRET_KEY \
         (or restore {key_file}) to the original key, or move the database away and log in again"
    )]
    WrongKey {
        /// The database.
        path: PathBuf,
        /// The key file name.
        key_file: &'static str,
    },
    /// `G2W_SECRET_KEY` or the key file holds something that is not a key.
    #[error("bad secret key: {0}")]
    BadSecretKey(String),
    /// The key file cannot be read or created.
    #[error("key file {path}: {detail}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A stored value cannot be decrypted or encrypted.
    #[error("encryption: {0}")]
    Crypto(String),
    /// Any other database failure.
    #[error("database: {0}")]
    Sql(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e.to_string())
    }
}
