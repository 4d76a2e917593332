//! What can go wrong with the store, shaped by what a caller does next: tell the person
//! to fix their set-up (the opening errors), try again later ([`StoreError::Unavailable`]),
//! or report a bug or damage ([`StoreError::Database`], [`StoreError::Data`]). Every
//! variant keeps its cause as its `source`; print with [`g2w_goto::chain`] (or anyhow's
//! `{:#}`) to see the whole of it.

use std::path::PathBuf;
use std::sync::Arc;

/// Any error, boxed, as a cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong with the store.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file (or its directory) cannot be opened or created.
    #[error("cannot open the database {path}")]
    Open {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The file is not a SQLite database, or is damaged.
    #[error("{path} is not a usable database; move it away and log in again")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// SQLite's words.
        #[source]
        source: Cause,
    },
    /// A SQLite database that some other program made.
    #[error("{path} is a SQLite database but not g2w's; point G2W_DATA_DIR elsewhere")]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// A g2w database from a newer g2w.
    #[error("{database} was written by a newer g2w (schema {found}, this one knows {known})")]
    NewerSchema {
        /// The database.
        database: String,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The database was sealed with another key.
    #[error("the secret key does not match the one {database} was created with; {remedy}")]
    WrongKey {
        /// The database.
        database: String,
        /// What brings the original key back.
        remedy: &'static str,
    },
    /// `G2W_SECRET_KEY` or the key file holds something that is not a key.
    #[error("bad secret key: {0}")]
    BadSecretKey(String),
    /// The key file is gone but the database it sealed is there: a new key could not
    /// open it, so none is made.
    #[error(
        "the key file {key_file} is missing, but {database} was sealed with it; restore the key file (or set G2W_SECRET_KEY to the key it held), or move the database away and log in again"
    )]
    KeyMissing {
        /// Where the key file should be.
        key_file: PathBuf,
        /// The database.
        database: PathBuf,
    },
    /// The data directory (or the database in it) cannot be written by this user.
    #[error(
        "{path} cannot be written by this user; g2w keeps its database and key there: give this user write access, or set G2W_DATA_DIR to a directory it can write"
    )]
    NotWritable {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The key file cannot be read or created.
    #[error("key file {path}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stored value cannot be decrypted or encrypted.
    #[error("encryption: {0}")]
    Crypto(String),
    /// The database cannot be reached, or did not answer in time: nothing was done, and
    /// the same call may work later.
    #[error("{database} is unavailable")]
    Unavailable {
        /// The database, without password.
        database: String,
        /// Why (refused, timed out, connection lost…).
        #[source]
        source: Cause,
    },
    /// The write conflicts with what is stored (a key that must be unique).
    #[error("conflict: {0}")]
    Conflict(String),
    /// What the call names does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database refused a statement or a migration.
    #[error("{database} refused {what}")]
    Database {
        /// The database, without password.
        database: String,
        /// What it refused.
        what: String,
        /// Its words.
        #[source]
        source: Cause,
    },
    /// A stored value g2w cannot read back (damage, or a bug).
    #[error("stored data cannot be read: {0}")]
    Data(String),
}

impl StoreError {
    /// Whether trying again later may work (the database was unreachable or slow).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The same failure for one of several callers that shared a call (a group
    /// commit): of the same kind, with the shared one's cause as its source.
    pub fn shared(e: &Arc<Self>) -> Self {
        let cause = || -> Cause { Box::new(SharedCause(e.clone())) };
        match &**e {
            Self::Unavailable { database, .. } => Self::Unavailable {
                database: database.clone(),
                source: cause(),
            },
            Self::Database { database, what, .. } => Self::Database {
                database: database.clone(),
                what: what.clone(),
                source: cause(),
            },
            Self::Conflict(m) => Self::Conflict(m.clone()),
            Self::NotFound(m) => Self::NotFound(m.clone()),
            other => Self::Data(g2w_goto::chain(other)),
        }
    }
}

/// The cause of a failure several callers share.
#[derive(Debug)]
struct SharedCause(Arc<StoreError>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::error::Error::source(&*self.0) {
            Some(source) => write!(f, "{source}"),
            None => write!(f, "{}", self.0),
        }
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source().and_then(|s| s.source())
    }
}

impl From<StoreError> for g2w_goto::StoreFailure {
    fn from(e: StoreError) -> Self {
        Self(Box::new(e))
    }
}
