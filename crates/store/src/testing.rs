//! Hooks for tests, behind the `testing` feature: never part of a release build.

use g2w_goto::Timestamp;

use crate::db::args;
use crate::{Store, StoreError};

/// A fresh database on the server `G2W_TEST_DATABASE_URL` names, or `None` (saying so)
/// when it is not set. With `G2W_REQUIRE_POSTGRES` set (CI), a missing server is a
/// failure, not a skip.
///
/// # Panics
/// When PostgreSQL is required but not configured, or the server refuses.
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
    match create_test_database(&admin) {
        Ok(url) => Some(url),
        Err(e) => panic!("cannot create a test database: {}", g2w_goto::chain(&e)),
    }
}

/// Creates an empty database on the server `admin_url` points at and returns its URL,
/// so each test (or benchmark run) has its own.
///
/// # Errors
/// When the server refuses.
pub fn create_test_database(admin_url: &str) -> Result<String, StoreError> {
    let mut config: tokio_postgres::Config = admin_url.parse().map_err(|e| StoreError::Open {
        path: "G2W_TEST_DATABASE_URL".into(),
        source: Box::new(e),
    })?;
    let name = format!("g2w_test_{:016x}", rand::random::<u64>());
    let create = format!("CREATE DATABASE {name}");
    let admin = config.clone();
    // Its own thread and runtime: tests call this from inside theirs, or from none.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Data(e.to_string()))?;
        runtime.block_on(async move {
            let unavailable = |e: tokio_postgres::Error| StoreError::Unavailable {
                database: "G2W_TEST_DATABASE_URL".into(),
                source: Box::new(e),
            };
            let (client, connection) = admin
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(unavailable)?;
            tokio::spawn(connection);
            client.batch_execute(&create).await.map_err(unavailable)
        })
    })
    .join()
    .map_err(|_| StoreError::Data("creating a test database panicked".into()))??;
    config.dbname(&name);
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    Ok(format!(
        "postgres://{}{password}@{host}:{}/{name}",
        config.get_user().unwrap_or("postgres"),
        config.get_ports().first().copied().unwrap_or(5432)
    ))
}

impl Store {
    /// A store whose schema stops at migration `version` (`migrations/{sqlite,postgres}`),
    /// as an older release made it: at the SQLite file `path`, or the PostgreSQL
    /// database `url`. Reopening it the usual way migrates it.
    ///
    /// # Errors
    /// As opening does.
    pub async fn at_schema(
        path: Option<&std::path::Path>,
        url: Option<&str>,
        key: &crate::SecretKey,
        version: u32,
    ) -> Result<Self, StoreError> {
        let db = match (path, url) {
            (Some(path), _) => crate::db::Db::open_sqlite(path).await?.0,
            (None, Some(url)) => crate::db::Db::open_postgres(url)?,
            (None, None) => return Err(StoreError::Data("a path or a URL".into())),
        };
        db.migrate_to(version).await?;
        let store = Self {
            db,
            cipher: crate::crypto::Cipher::new(key),
            key_remedy: "",
        };
        store.check_key().await?;
        Ok(store)
    }

    /// Runs `sql` as it is (for tests that fill a database the way an older release
    /// did).
    ///
    /// # Errors
    /// Database failures.
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        self.db.execute(sql.to_owned(), Vec::new()).await
    }

    /// Makes every later write fail (or work again), as a full or read-only disk would:
    /// for tests of what the gateway does when it cannot store anything. SQLite only.
    ///
    /// # Errors
    /// On PostgreSQL, or when the setting cannot be changed.
    pub async fn refuse_writes(&self, refuse: bool) -> Result<(), StoreError> {
        self.db.refuse_writes(refuse).await
    }

    /// Where the SQLite file is (tests read and damage it).
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        self.db.sqlite_path()
    }

    /// Adds `count` registrations of `webinar` delivered at `at`, in one statement: the
    /// history a gateway gathers over months, for benchmarks of what must not grow with
    /// it.
    ///
    /// # Errors
    /// Database failures.
    pub async fn add_delivered_history(
        &self,
        profile: &str,
        webinar: &str,
        count: u32,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        // Ids that sort before every real one (those start with the time in hex), as
        // old history would.
        let numbers = "WITH RECURSIVE n(i) AS (
                 SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < $1)";
        let done = self
            .db
            .run(
                vec![
                    crate::db::Statement::new(
                        format!(
                            "INSERT INTO registrations (id, profile, webinar_key, email, payload,
                                 created_at, outcome, registrant_key, join_url)
                             {numbers}
                             SELECT '0000' || i, $2, $3, 'history' || i || '@example.com', '{{}}',
                                 $4, 'delivered', CAST(i AS TEXT),
                                 'https://example.com/join/' || i
                             FROM n"
                        ),
                        args![i64::from(count), profile, webinar, at.as_millis()],
                    ),
                    crate::db::Statement::new(
                        format!(
                            "INSERT INTO jobs (kind, id, owner, state, fence, attempts, run_at,
                                 created_at, updated_at, finished_at)
                             {numbers}
                             SELECT 'registrations', '0000' || i, $2, 'done', 1, 1, $3, $3,
                                 $3, $3
                             FROM n"
                        ),
                        args![i64::from(count), profile, at.as_millis()],
                    ),
                ],
                crate::db::Durability::Durable,
            )
            .await?;
        Ok(done.first().map_or(0, |d| d.changed))
    }
}
