//! The one seam between g2w's statements and the two databases.
//!
//! Every concern of the store (logins, the outbox, events, sessions, the budget, the
//! journal) is written once, against [`Db`]: statements in PostgreSQL's `$1` form (the
//! SQLite side turns them into `?1`), arguments as [`Arg`]s, rows read back as [`Row`]s.
//! Where the dialects differ (a batch insert, `FOR UPDATE SKIP LOCKED`), the concern
//! asks [`Db::dialect`] and says both; nothing else knows which database it runs on.
//!
//! - SQLite blocks: all of its work runs in one place, [`sqlite::Sqlite::blocking`], on
//!   tokio's blocking pool, never on the async threads.
//! - PostgreSQL is async on a pool of connections, and every call has a deadline:
//!   a database that stops answering makes calls fail with
//!   [`StoreError::Unavailable`], never hang.

pub(crate) mod postgres;
pub(crate) mod sqlite;

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

/// The database the store runs on.
pub(crate) enum Db {
    Sqlite(sqlite::Sqlite),
    Postgres(Box<postgres::Postgres>),
}

impl Db {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
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

    /// The rows of a query.
    pub(crate) async fn query(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
    ) -> Result<Vec<Row>, StoreError> {
        Ok(self.one(sql, args, Durability::Durable).await?.rows)
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

/// `$1`-style placeholders as SQLite's `?1` (SQLite numbers them the same way).
pub(crate) fn question_marks(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_sqlites() {
        assert_eq!(
            question_marks("UPDATE t SET a = $1 WHERE b = $12 AND c = '$'"),
            "UPDATE t SET a = ?1 WHERE b = ?12 AND c = '$'"
        );
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
