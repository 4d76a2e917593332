//! The one seam between g2w's statements and the two databases.
//!
//! Every concern of the store (logins, the outbox, events, sessions, the budget, the
//! journal) is written once, against [`Db`]: statements in PostgreSQL's `$1` form (the
//! SQLite side turns them into `?1`), arguments as [`Arg`]s, rows read back as [`Row`]s.
//! Where the dialects differ (a batch insert, `FOR UPDATE SKIP LOCKED`), the concern
//! asks [`Db::dialect`] and says both; nothing else knows which database it runs on.
//!
//! - SQLite blocks: its work runs on tokio's blocking pool, never on the async threads;
//!   writes share one connection, reads have their own and never wait for a write.
//! - PostgreSQL is async on a pool of connections, and every call has a deadline:
//!   a database that stops answering makes calls fail with
//!   [`StoreError::Unavailable`], never hang.

mod migrate;
mod postgres;
mod sqlite;

use std::borrow::Cow;

use crate::StoreError;

/// Which SQL a statement must be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// How durable a write must be when the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// On disk (intake, logins): SQLite's `synchronous=FULL`.
    Durable,
    /// Delivery bookkeeping (leases, outcomes): losing the last of these in a power cut
    /// repeats a delivery, which GoTo's 409 makes harmless, so SQLite skips the flush.
    Bookkeeping,
}

/// A statement's argument.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
    /// For PostgreSQL's `unnest`: arrays of one column of a batch.
    Texts(Vec<Option<String>>),
    Ints(Vec<i64>),
    Bools(Vec<bool>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}

impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// The arguments of a statement: `args![a, b, c]`.
macro_rules! args {
    ($($arg:expr),* $(,)?) => { vec![$($crate::db::Arg::from($arg)),*] };
}
pub(crate) use args;

/// One column's value as read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// A row as read back, whichever database it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(pub(crate) Vec<Cell>);

fn wrong(column: usize, want: &str, got: &Cell) -> StoreError {
    StoreError::Data(format!("column {column}: expected {want}, found {got:?}"))
}

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Data(format!("no column {i}")))
    }

    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            Cell::Bool(b) => Ok(Some(i64::from(*b))),
            other => Err(wrong(i, "a number", other)),
        }
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Data(format!("column {i} is empty")))
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(v) => Ok(Some(v.clone())),
            other => Err(wrong(i, "text", other)),
        }
    }

    pub(crate) fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?
            .ok_or_else(|| StoreError::Data(format!("column {i} is empty")))
    }

    pub(crate) fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Bytes(v) => Ok(Some(v.clone())),
            Cell::Text(v) => Ok(Some(v.clone().into_bytes())),
            other => Err(wrong(i, "bytes", other)),
        }
    }

    pub(crate) fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.opt_bytes(i)?
            .ok_or_else(|| StoreError::Data(format!("column {i} is empty")))
    }

    pub(crate) fn bool(&self, i: usize) -> Result<bool, StoreError> {
        match self.cell(i)? {
            Cell::Bool(b) => Ok(*b),
            Cell::Int(v) => Ok(*v != 0),
            other => Err(wrong(i, "true or false", other)),
        }
    }
}

/// A statement with its arguments; `rows` when its rows are wanted back.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub sql: Cow<'static, str>,
    pub args: Vec<Arg>,
}

/// What a call does, for its error message: the first words of its first statement
/// (`UPDATE outbox SET`), never its arguments.
pub(crate) fn describe(steps: &[Statement]) -> String {
    steps
        .first()
        .map(|s| {
            s.sql
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

impl Statement {
    pub(crate) fn new(sql: impl Into<Cow<'static, str>>, args: Vec<Arg>) -> Self {
        Self {
            sql: sql.into(),
            args,
        }
    }
}

/// What a statement did: the rows it returned (if any) and the rows it changed.
#[derive(Debug, Default)]
pub(crate) struct Done {
    pub rows: Vec<Row>,
    pub changed: u64,
}

/// The database the store runs on. Nothing outside `db` knows which.
pub(crate) enum Db {
    Sqlite(sqlite::Sqlite),
    Postgres(Box<postgres::Postgres>),
}

impl Db {
    /// The SQLite file at `path` (made when missing), and the schema version an older
    /// g2w recorded in it (`PRAGMA user_version`).
    pub(crate) async fn open_sqlite(path: &std::path::Path) -> Result<(Self, i64), StoreError> {
        let opened = sqlite::Sqlite::open(path).await?;
        Ok((Self::Sqlite(opened.db), opened.user_version))
    }

    /// A pool for the PostgreSQL database at `url`; no connection is made until the
    /// first call.
    pub(crate) fn open_postgres(url: &str) -> Result<Self, StoreError> {
        Ok(Self::Postgres(Box::new(postgres::Postgres::new(url)?)))
    }

    /// Brings the schema up to date; `user_version` is what [`Self::open_sqlite`] found
    /// (0 elsewhere).
    pub(crate) async fn migrate(&self, user_version: i64) -> Result<(), StoreError> {
        migrate::migrate(self, user_version, None).await
    }

    /// Applies the migrations up to `version` only: a database as an older release
    /// made it (for tests of what migrating it does).
    #[cfg(feature = "testing")]
    pub(crate) async fn migrate_to(&self, version: u32) -> Result<(), StoreError> {
        migrate::migrate(self, 0, Some(version)).await
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Whether several processes on several machines may share it (PostgreSQL).
    pub(crate) fn is_shared(&self) -> bool {
        self.dialect() == Dialect::Postgres
    }

    /// The database for messages: a file, or `user@host:port/db` (never a password).
    pub(crate) fn location(&self) -> &str {
        match self {
            Self::Sqlite(db) => db.location(),
            Self::Postgres(db) => db.location(),
        }
    }

    /// Runs `steps` in order: one alone, or several in one transaction (all or none).
    pub(crate) async fn run(
        &self,
        steps: Vec<Statement>,
        durability: Durability,
    ) -> Result<Vec<Done>, StoreError> {
        match self {
            Self::Sqlite(db) => db.run(steps, durability).await,
            Self::Postgres(db) => db.run(steps).await,
        }
    }

    /// Runs `steps` that only read; on SQLite they never wait for a write.
    async fn read(&self, steps: Vec<Statement>) -> Result<Vec<Done>, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(steps).await,
            Self::Postgres(db) => db.run(steps).await,
        }
    }

    /// Calls `on_message` with the payload of every notification on `channel` until
    /// `stop` fires, where the database can say so (PostgreSQL's `LISTEN`, reconnecting
    /// after a break); false when it cannot.
    pub(crate) fn listen(
        &self,
        channel: &'static str,
        on_message: Box<dyn Fn(&str) + Send + Sync>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        match self {
            Self::Sqlite(_) => false,
            Self::Postgres(db) => {
                db.listen(channel, on_message, stop);
                true
            }
        }
    }

    /// Makes every later write fail (or work again), as a full or read-only disk would
    /// (SQLite; for tests).
    #[cfg(feature = "testing")]
    pub(crate) async fn refuse_writes(&self, refuse: bool) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(db) => db.refuse_writes(refuse).await,
            Self::Postgres(_) => Err(StoreError::Data("refuse_writes is SQLite's".into())),
        }
    }

    /// Where the SQLite file is (tests read and damage it).
    #[cfg(feature = "testing")]
    pub(crate) fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            Self::Sqlite(db) => Some(db.path()),
            Self::Postgres(_) => None,
        }
    }

    async fn one(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
        durability: Durability,
    ) -> Result<Done, StoreError> {
        let mut done = self
            .run(vec![Statement::new(sql, args)], durability)
            .await?;
        Ok(done.pop().unwrap_or_default())
    }

    /// A durable write; how many rows it changed.
    pub(crate) async fn execute(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
    ) -> Result<u64, StoreError> {
        Ok(self.one(sql, args, Durability::Durable).await?.changed)
    }

    /// A bookkeeping write (see [`Durability::Bookkeeping`]); how many rows it changed.
    pub(crate) async fn note(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
    ) -> Result<u64, StoreError> {
        Ok(self.one(sql, args, Durability::Bookkeeping).await?.changed)
    }

    /// A bookkeeping write that returns the row it changed, if any.
    pub(crate) async fn note_returning(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
    ) -> Result<Option<Row>, StoreError> {
        Ok(self
            .one(sql, args, Durability::Bookkeeping)
            .await?
            .rows
            .into_iter()
            .next())
    }

    /// A bookkeeping write that returns every row it changed.
    pub(crate) async fn note_rows(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
    ) -> Result<Vec<Row>, StoreError> {
        Ok(self.one(sql, args, Durability::Bookkeeping).await?.rows)
    }

    /// The rows of a query (one that only reads).
    pub(crate) async fn query(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
    ) -> Result<Vec<Row>, StoreError> {
        let mut done = self.read(vec![Statement::new(sql, args)]).await?;
        Ok(done.pop().unwrap_or_default().rows)
    }

    /// The first row of a query, if any.
    pub(crate) async fn query_opt(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, args).await?.into_iter().next())
    }

    /// The one row of a query that always returns one (an aggregate).
    pub(crate) async fn query_one(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
    ) -> Result<Row, StoreError> {
        self.query_opt(sql, args)
            .await?
            .ok_or_else(|| StoreError::Data("a query that returns a row returned none".into()))
    }
}

/// A statement written for PostgreSQL as SQLite reads it: `$1`-style placeholders as
/// `?1` (SQLite numbers them the same way), a list test `= ANY($n)` as
/// `IN (SELECT value FROM json_each(?n))` (SQLite gets lists as JSON), and `GREATEST(` /
/// `LEAST(` as SQLite's `max(` / `min(`. Quoted text is left alone.
pub(crate) fn sqlite_text(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') && !sql.contains("GREATEST(") && !sql.contains("LEAST(") {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    let mut quoted = false;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(after) = rest.strip_prefix("= ANY($") {
                let digits = after.chars().take_while(char::is_ascii_digit).count();
                if digits > 0 && after[digits..].starts_with(')') {
                    out.push_str("IN (SELECT value FROM json_each(?");
                    out.push_str(&after[..digits]);
                    out.push_str("))");
                    rest = &after[digits + 1..];
                    continue;
                }
            }
            let word_start = !out.ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_');
            if word_start && let Some(after) = rest.strip_prefix("GREATEST(") {
                out.push_str("max(");
                rest = after;
                continue;
            }
            if word_start && let Some(after) = rest.strip_prefix("LEAST(") {
                out.push_str("min(");
                rest = after;
                continue;
            }
            if c == '$' && rest[1..].starts_with(|d: char| d.is_ascii_digit()) {
                out.push('?');
                rest = &rest[1..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_become_sqlites() {
        assert_eq!(
            sqlite_text("UPDATE t SET a = $1 WHERE b = $12 AND c = '$3'"),
            "UPDATE t SET a = ?1 WHERE b = ?12 AND c = '$3'"
        );
        assert_eq!(
            sqlite_text("SELECT GREATEST(a, $2), LEAST(b, 1) FROM t WHERE id = ANY($1)"),
            "SELECT max(a, ?2), min(b, 1) FROM t WHERE id IN (SELECT value FROM json_each(?1))"
        );
        assert_eq!(
            sqlite_text("SELECT NOTGREATEST(a) FROM t WHERE x = 'LEAST(' OR y = ANY(z)"),
            "SELECT NOTGREATEST(a) FROM t WHERE x = 'LEAST(' OR y = ANY(z)"
        );
        assert!(matches!(sqlite_text("SELECT 1"), Cow::Borrowed(_)));
    }

    #[test]
    fn rows_read_each_kind_and_name_what_is_wrong() {
        let row = Row(vec![
            Cell::Int(7),
            Cell::Null,
            Cell::Text("x".into()),
            Cell::Bytes(vec![1]),
            Cell::Int(1),
        ]);
        assert_eq!(row.int(0).unwrap_or_default(), 7);
        assert_eq!(row.opt_text(1).ok().flatten(), None);
        assert!(row.int(1).is_err(), "empty");
        assert!(row.int(2).is_err(), "text is not a number");
        assert_eq!(row.bytes(3).unwrap_or_default(), vec![1]);
        assert!(row.bool(4).unwrap_or(false));
        assert!(row.int(9).is_err(), "no such column");
    }
}
