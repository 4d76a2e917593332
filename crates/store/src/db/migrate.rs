//! Schema migrations, by one tool for both databases: refinery, with each database's
//! own SQL (`migrations/sqlite`, `migrations/postgres`) and one history table.
//!
//! - PostgreSQL migrates on one connection under an advisory lock, so two gateways
//!   starting together do not both migrate.
//! - SQLite files from before refinery recorded their version in `PRAGMA user_version`;
//!   those migrations are marked applied without running them. After migrating,
//!   `user_version` is kept equal to the newest applied migration, so an older g2w still
//!   sees that the file is newer than it and refuses it.

use refinery::Target;
use refinery_core::Migration;
use refinery_core::traits::r#async::{AsyncMigrate, AsyncQuery, AsyncTransaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::sqlite::Sqlite;
use super::{Db, Statement};
use crate::StoreError;

mod sqlite_migrations {
    refinery::embed_migrations!("migrations/sqlite");
}

mod postgres_migrations {
    refinery::embed_migrations!("migrations/postgres");
}

/// The history table refinery keeps.
const HISTORY: &str = "refinery_schema_history";
/// Held while a PostgreSQL database migrates.
const ADVISORY_LOCK: i64 = 7_432_001;

fn refused(db: &str, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Database {
        database: db.to_owned(),
        what: "a migration".into(),
        source: Box::new(e),
    }
}

/// Brings `db`'s schema up to date (or, for tests that build an older release's
/// database, up to migration `upto`). `user_version` is what an older g2w recorded in a
/// SQLite file (0 elsewhere).
pub(crate) async fn migrate(
    db: &Db,
    user_version: i64,
    upto: Option<u32>,
) -> Result<(), StoreError> {
    let target = upto.map_or(Target::Latest, Target::Version);
    match db {
        Db::Sqlite(sqlite) => migrate_sqlite(sqlite, user_version, target).await,
        Db::Postgres(pg) => {
            let mut client = pg.connection().await?;
            let location = pg.location().to_owned();
            let lock = format!("SELECT pg_advisory_lock({ADVISORY_LOCK})");
            client
                .batch_execute(&lock)
                .await
                .map_err(|e| pg.failed("the migration lock", e))?;
            let known = postgres_migrations::migrations::runner()
                .get_migrations()
                .len();
            let ran = postgres_migrations::migrations::runner()
                .set_target(target)
                .run_async(&mut **client)
                .await
                .map_err(|e| refused(&location, e));
            let unlock = format!("SELECT pg_advisory_unlock({ADVISORY_LOCK})");
            let _ = client.batch_execute(&unlock).await;
            ran?;
            newest_known(db, known).await
        }
    }
}

async fn migrate_sqlite(db: &Sqlite, user_version: i64, target: Target) -> Result<(), StoreError> {
    let runner = sqlite_migrations::migrations::runner;
    let known = runner().get_migrations().len();
    let mut conn = SqliteMigrations(db);
    let has_history = !db
        .run(
            vec![Statement::new(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
                crate::db::args![HISTORY],
            )],
            crate::db::Durability::Durable,
        )
        .await?
        .remove(0)
        .rows
        .is_empty();
    if !has_history && user_version > 0 {
        if user_version > i64::try_from(known).unwrap_or(i64::MAX) {
            return Err(StoreError::NewerSchema {
                database: db.location().to_owned(),
                found: user_version,
                known: i64::try_from(known).unwrap_or(i64::MAX),
            });
        }
        runner()
            .set_target(Target::FakeVersion(
                u32::try_from(user_version).unwrap_or(0),
            ))
            .run_async(&mut conn)
            .await
            .map_err(|e| refused(db.location(), e))?;
    }
    let ran = runner().set_target(target).run_async(&mut conn).await;
    if ran.is_err() {
        // Another process on the same file may have migrated at the same moment: look
        // again before calling it a failure.
        runner()
            .set_target(target)
            .run_async(&mut conn)
            .await
            .map_err(|e| refused(db.location(), e))?;
    }
    let database = Db::Sqlite(db.clone());
    newest_known(&database, known).await?;
    let newest = newest_applied(&database).await?;
    db.blocking(move |c| c.pragma_update(None, "user_version", newest))
        .await
        .map_err(|e| refused(db.location(), e))?;
    Ok(())
}

async fn newest_applied(db: &Db) -> Result<i64, StoreError> {
    let row = db
        .query_one(
            format!("SELECT COALESCE(max(version), 0) FROM {HISTORY}"),
            Vec::new(),
        )
        .await?;
    row.int(0)
}

/// Refuses a database a newer g2w has migrated further than this one knows.
async fn newest_known(db: &Db, known: usize) -> Result<(), StoreError> {
    let newest = newest_applied(db).await?;
    let known = i64::try_from(known).unwrap_or(i64::MAX);
    if newest > known {
        return Err(StoreError::NewerSchema {
            database: db.location().to_owned(),
            found: newest,
            known,
        });
    }
    Ok(())
}

/// The SQLite file as refinery's connection.
struct SqliteMigrations<'a>(&'a Sqlite);

#[async_trait::async_trait]
impl AsyncTransaction for SqliteMigrations<'_> {
    type Error = StoreError;

    async fn execute(&mut self, queries: &[&str]) -> Result<usize, Self::Error> {
        let scripts: Vec<String> = queries.iter().map(|q| (*q).to_owned()).collect();
        let n = scripts.len();
        self.0.batch(scripts).await?;
        Ok(n)
    }
}

#[async_trait::async_trait]
impl AsyncQuery<Vec<Migration>> for SqliteMigrations<'_> {
    async fn query(&mut self, query: &str) -> Result<Vec<Migration>, Self::Error> {
        let rows = self
            .0
            .run(
                vec![Statement::new(query.to_owned(), Vec::new())],
                crate::db::Durability::Durable,
            )
            .await?
            .remove(0)
            .rows;
        rows.iter()
            .map(|row| {
                let applied_on = OffsetDateTime::parse(&row.text(2)?, &Rfc3339)
                    .map_err(|e| StoreError::Data(format!("migration history: {e}")))?;
                let checksum = row
                    .text(3)?
                    .parse::<u64>()
                    .map_err(|e| StoreError::Data(format!("migration history: {e}")))?;
                Ok(Migration::applied(
                    i32::try_from(row.int(0)?).unwrap_or(i32::MAX),
                    row.text(1)?,
                    applied_on,
                    checksum,
                ))
            })
            .collect()
    }
}

impl AsyncMigrate for SqliteMigrations<'_> {}
