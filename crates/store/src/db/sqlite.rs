//! SQLite: one file, one connection, WAL mode. Every statement runs in
//! [`Sqlite::blocking`], the one place where SQLite's blocking calls meet async code.
//! Writers in this process share the one connection, so they never meet SQLite's busy
//! handler (which sleeps in steps of up to 100 ms); other processes on the same file
//! (an import beside a gateway) wait up to 10 s for the write lock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::{Arg, Cell, Done, Durability, Row, Statement, question_marks};
use crate::StoreError;

/// Marks a SQLite file as g2w's (`PRAGMA application_id`, "g2w!").
const APPLICATION_ID: i64 = 0x6732_7721;

/// The database file and its connection.
#[derive(Clone)]
pub(crate) struct Sqlite {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    location: String,
}

/// What opening found in the file.
pub(crate) struct Opened {
    pub db: Sqlite,
    /// The schema version an older g2w recorded with `PRAGMA user_version`.
    pub user_version: i64,
}

fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Self::Int(v) => ToSqlOutput::from(*v),
            Self::Text(v) => ToSqlOutput::from(v.as_str()),
            Self::Bytes(v) => ToSqlOutput::from(v.as_slice()),
            Self::Bool(v) => ToSqlOutput::from(*v),
            Self::Texts(_) | Self::Ints(_) | Self::Bools(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "arrays are PostgreSQL's; SQLite statements take JSON".into(),
                ));
            }
        })
    }
}

fn cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(v) => Cell::Int(v),
        // g2w stores no floating-point values; a stray one is read as its whole part.
        #[allow(clippy::cast_possible_truncation)]
        ValueRef::Real(v) => Cell::Int(v as i64),
        ValueRef::Text(v) => Cell::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => Cell::Bytes(v.to_vec()),
    }
}

/// Runs one statement on `conn`: its rows, or how many it changed.
fn step(conn: &Connection, statement: &Statement) -> rusqlite::Result<Done> {
    let mut prepared = conn.prepare_cached(&question_marks(&statement.sql))?;
    let columns = prepared.column_count();
    let params = rusqlite::params_from_iter(statement.args.iter());
    if columns == 0 {
        let changed = prepared.execute(params)?;
        return Ok(Done {
            rows: Vec::new(),
            changed: changed as u64,
        });
    }
    let mut rows = prepared.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(Row((0..columns)
            .map(|i| row.get_ref(i).map(cell))
            .collect::<rusqlite::Result<_>>()?));
    }
    drop(rows);
    let changed = conn.changes();
    Ok(Done {
        changed: if out.is_empty() {
            changed
        } else {
            out.len() as u64
        },
        rows: out,
    })
}

impl Sqlite {
    /// Opens (or creates) the file at `path`, refusing one that is not g2w's.
    pub(crate) async fn open(path: &Path) -> Result<Opened, StoreError> {
        let path = path.to_owned();
        let opened = tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|e| StoreError::Data(format!("the database task stopped: {e}")))??;
        Ok(opened)
    }

    fn open_blocking(path: PathBuf) -> Result<Opened, StoreError> {
        let open_err = |e: rusqlite::Error| {
            if is_not_a_database(&e) {
                StoreError::Corrupt {
                    path: path.clone(),
                    source: Box::new(e),
                }
            } else {
                StoreError::Open {
                    path: path.clone(),
                    source: Box::new(e),
                }
            }
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        // SQLite opens a file it may not write read-only, without a word: every write
        // would then fail at run time instead of now.
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::NotWritable {
                path,
                source: "SQLite could open it only for reading".into(),
            });
        }
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        // Reading the header is the first thing that fails on a file that is not SQLite.
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(open_err)?;
        let user_version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(open_err)?;
        let fresh = app_id == 0 && tables == 0;
        if !fresh && app_id != APPLICATION_ID {
            return Err(StoreError::Foreign { path });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        if fresh {
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(open_err)?;
        }
        let location = format!("SQLite {}", path.display());
        Ok(Opened {
            db: Self {
                conn: Arc::new(Mutex::new(conn)),
                path,
                location,
            },
            user_version,
        })
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    #[cfg(feature = "testing")]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn failed(&self, what: &str, e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode::{
            CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, ReadOnly, SystemIoFailure,
        };
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
            _ => None,
        };
        match code {
            Some(DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure | CannotOpen) => {
                StoreError::Unavailable {
                    database: self.location.clone(),
                    source: Box::new(e),
                }
            }
            Some(ReadOnly) => StoreError::Unavailable {
                database: self.location.clone(),
                source: format!("{e} (can g2w write {}?)", self.path.display()).into(),
            },
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
            _ => StoreError::Database {
                database: self.location.clone(),
                what: what.to_owned(),
                source: Box::new(e),
            },
        }
    }

    /// The one place SQLite blocks: `f` runs with the connection on tokio's blocking
    /// pool, so the async threads never wait for a disk flush or another process's lock.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, rusqlite::Error> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await
        .unwrap_or_else(|e| {
            Err(rusqlite::Error::ToSqlConversionFailure(
                format!("the database task stopped: {e}").into(),
            ))
        })
    }

    pub(crate) async fn run(
        &self,
        steps: Vec<Statement>,
        durability: Durability,
    ) -> Result<Vec<Done>, StoreError> {
        let what = super::describe(&steps);
        self.blocking(move |conn| {
            let relaxed = durability == Durability::Bookkeeping;
            if relaxed {
                conn.pragma_update(None, "synchronous", "NORMAL")?;
            }
            let outcome = if steps.len() == 1 {
                steps.iter().map(|s| step(conn, s)).collect()
            } else {
                (|| {
                    let tx =
                        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    let done = steps
                        .iter()
                        .map(|s| step(&tx, s))
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    tx.commit()?;
                    Ok(done)
                })()
            };
            if relaxed {
                conn.pragma_update(None, "synchronous", "FULL")?;
            }
            outcome
        })
        .await
        .map_err(|e| self.failed(&what, e))
    }

    /// Runs whole scripts (a migration) in one transaction.
    pub(crate) async fn batch(&self, scripts: Vec<String>) -> Result<(), StoreError> {
        self.blocking(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for script in &scripts {
                tx.execute_batch(script)?;
            }
            tx.commit()
        })
        .await
        .map_err(|e| self.failed("a migration", e))
    }

    /// Makes every later write fail (or work again), as a full or read-only disk would.
    #[cfg(feature = "testing")]
    pub(crate) async fn refuse_writes(&self, refuse: bool) -> Result<(), StoreError> {
        self.blocking(move |conn| conn.pragma_update(None, "query_only", refuse))
            .await
            .map_err(|e| self.failed("query_only", e))
    }
}
