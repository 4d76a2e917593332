//! SQLite: one file in WAL mode, one connection that writes and a few that read. Every
//! statement runs in [`Sqlite::blocking`] (writes) or [`Sqlite::reading`] (reads), the
//! only places where SQLite's blocking calls meet async code.
//!
//! - Writers in this process share the one writing connection, so they never meet
//!   SQLite's busy handler (which sleeps in steps of up to 100 ms); other processes on
//!   the same file (an import beside a gateway) wait up to 10 s for the write lock.
//! - Readers never queue behind the writer: WAL lets each read see the last commit
//!   while a write is under way, so a status page or a claim count does not wait for an
//!   intake batch's disk flush.
//! - Statements stay prepared on each connection (a cache of [`PREPARED`]), and their
//!   PostgreSQL-style text is turned into SQLite's once per statement, not per call.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::{Arg, Cell, Done, Durability, Row, Statement, sqlite_text};
use crate::StoreError;

/// Statements kept prepared on each connection: more than g2w has, so none is prepared
/// twice.
const PREPARED: usize = 256;
/// Reading connections kept open at most; a read that finds none free opens one.
const READERS: usize = 4;

/// Marks a SQLite file as g2w's (`PRAGMA application_id`, "g2w!").
const APPLICATION_ID: i64 = 0x6732_7721;

/// The SQLite text of each fixed (`'static`) statement a connection has run, by the
/// statement's address: turned from PostgreSQL's form once, not at every call.
#[derive(Default)]
struct Texts(HashMap<(usize, usize), String>);

fn address(sql: &'static str) -> (usize, usize) {
    (sql.as_ptr() as usize, sql.len())
}

impl Texts {
    /// Makes sure the texts of `steps` are known.
    fn learn(&mut self, steps: &[Statement]) {
        for s in steps {
            if let Cow::Borrowed(sql) = &s.sql {
                self.0
                    .entry(address(sql))
                    .or_insert_with(|| sqlite_text(sql).into_owned());
            }
        }
    }

    /// `statement` as SQLite reads it (after [`Self::learn`]).
    fn of<'s>(&'s self, statement: &'s Statement) -> Cow<'s, str> {
        match &statement.sql {
            Cow::Borrowed(sql) => match self.0.get(&address(sql)) {
                Some(text) => Cow::Borrowed(text),
                None => sqlite_text(sql),
            },
            Cow::Owned(sql) => sqlite_text(sql),
        }
    }
}

/// A connection and its statements' texts.
struct Conn {
    conn: Connection,
    texts: Texts,
}

impl Conn {
    fn new(conn: Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(PREPARED);
        Self {
            conn,
            texts: Texts::default(),
        }
    }
}

/// Reading connections not in use.
struct Readers {
    idle: Mutex<Vec<Conn>>,
    path: PathBuf,
}

impl Readers {
    fn take(&self) -> rusqlite::Result<Conn> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // A reader never writes, whatever it is given.
        conn.pragma_update(None, "query_only", true)?;
        Ok(Conn::new(conn))
    }

    fn give_back(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < READERS {
            idle.push(conn);
        }
    }
}

/// The database file and its connections.
#[derive(Clone)]
pub(crate) struct Sqlite {
    writer: Arc<Mutex<Conn>>,
    readers: Arc<Readers>,
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
            // Lists go as JSON, which `json_each` reads (see `sqlite_text`).
            Self::Texts(v) => ToSqlOutput::from(json(v)?),
            Self::Ints(v) => ToSqlOutput::from(json(v)?),
            Self::Bools(v) => ToSqlOutput::from(json(v)?),
        })
    }
}

fn json<T: serde::Serialize>(list: &T) -> rusqlite::Result<String> {
    serde_json::to_string(list).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
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

/// Runs one statement on `conn` (whose SQLite text is `sql`): its rows, or how many it
/// changed.
fn step(conn: &Connection, sql: &str, statement: &Statement) -> rusqlite::Result<Done> {
    let mut prepared = conn.prepare_cached(sql)?;
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
                writer: Arc::new(Mutex::new(Conn::new(conn))),
                readers: Arc::new(Readers {
                    idle: Mutex::new(Vec::new()),
                    path: path.clone(),
                }),
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

    /// Where SQLite blocks for writes: `f` runs with the writing connection on tokio's
    /// blocking pool, so the async threads never wait for a disk flush or another
    /// process's lock.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, rusqlite::Error> {
        self.writing(move |conn| f(&mut conn.conn)).await
    }

    async fn writing<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, rusqlite::Error> {
        let conn = self.writer.clone();
        unblock(move || f(&mut conn.lock().unwrap_or_else(|e| e.into_inner()))).await
    }

    /// Where SQLite blocks for reads: `f` runs on a reading connection of its own.
    async fn reading<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, rusqlite::Error> {
        let readers = self.readers.clone();
        unblock(move || {
            let mut conn = readers.take()?;
            let out = f(&mut conn);
            readers.give_back(conn);
            out
        })
        .await
    }

    /// Runs `steps` that only read, on a reading connection.
    pub(crate) async fn read(&self, steps: Vec<Statement>) -> Result<Vec<Done>, StoreError> {
        let what = super::describe(&steps);
        self.reading(move |Conn { conn, texts }| {
            texts.learn(&steps);
            steps.iter().map(|s| step(conn, &texts.of(s), s)).collect()
        })
        .await
        .map_err(|e| self.failed(&what, e))
    }

    pub(crate) async fn run(
        &self,
        steps: Vec<Statement>,
        durability: Durability,
    ) -> Result<Vec<Done>, StoreError> {
        let what = super::describe(&steps);
        self.writing(move |Conn { conn, texts }| {
            texts.learn(&steps);
            let texts: Vec<Cow<'_, str>> = steps.iter().map(|s| texts.of(s)).collect();
            let relaxed = durability == Durability::Bookkeeping;
            if relaxed {
                conn.pragma_update(None, "synchronous", "NORMAL")?;
            }
            let outcome = if steps.len() == 1 {
                steps
                    .iter()
                    .zip(&texts)
                    .map(|(s, sql)| step(conn, sql, s))
                    .collect()
            } else {
                (|| {
                    let tx =
                        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    let done = steps
                        .iter()
                        .zip(&texts)
                        .map(|(s, sql)| step(&tx, sql, s))
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

/// Runs `f` on tokio's blocking pool.
async fn unblock<T: Send + 'static>(
    f: impl FnOnce() -> rusqlite::Result<T> + Send + 'static,
) -> rusqlite::Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(rusqlite::Error::ToSqlConversionFailure(
            format!("the database task stopped: {e}").into(),
        ))
    })
}
