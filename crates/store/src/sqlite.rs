//! The SQLite store.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use g2w_goto::{StoreFailure, Timestamp, TokenRecord, TokenStore};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::backend::{AdminSession, Store, gcra_book};
use crate::crypto::{Cipher, KEY_FILE_NAME, SecretKey};
use crate::rows::{KEY_CHECK_PLACE, KEY_CHECK_PLAINTEXT, ProfileRow, failure, lock_name};
use crate::{JournalEntry, StoreError};

/// The database file's name inside the data directory.
pub const DB_FILE_NAME: &str = "g2w.db";

/// Marks a SQLite file as g2w's (`PRAGMA application_id`, "g2w!").
const APPLICATION_ID: i64 = 0x6732_7721;

/// Schema migrations, in order; `user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_profiles.sql"),
    include_str!("../migrations/sqlite/0002_outbox.sql"),
    include_str!("../migrations/sqlite/0003_import_journal.sql"),
    include_str!("../migrations/sqlite/0004_outbox_fencing.sql"),
    include_str!("../migrations/sqlite/0005_sessions_budget.sql"),
    include_str!("../migrations/sqlite/0006_webhook_events.sql"),
];

/// g2w's state in one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    cipher: Cipher,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

impl SqliteStore {
    /// Opens (or creates) the store in `data_dir`, with the key from `G2W_SECRET_KEY`
    /// (passed in as `env_key`) or the key file beside the database.
    ///
    /// # Errors
    /// See [`StoreError`]: each reason has its own variant and message.
    pub fn open_in(data_dir: &Path, env_key: Option<&str>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.to_owned(),
            detail: e.to_string(),
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // The directory holds the key file: keep others out. Best effort.
            let _ = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700));
        }
        let key = SecretKey::resolve(env_key, data_dir)?;
        Self::open(&data_dir.join(DB_FILE_NAME), &key)
    }

    /// Opens (or creates) the database at `path` with `key`.
    ///
    /// # Errors
    /// See [`StoreError`].
    pub fn open(path: &Path, key: &SecretKey) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let open_err = |e: rusqlite::Error| {
            if is_not_a_database(&e) {
                StoreError::Corrupt {
                    path: path.clone(),
                    detail: e.to_string(),
                }
            } else {
                StoreError::Open {
                    path: path.clone(),
                    detail: e.to_string(),
                }
            }
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        // Reading the header is the first thing that fails on a file that is not SQLite.
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(open_err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(open_err)?;
        let fresh = app_id == 0 && tables == 0;
        if !fresh && app_id != APPLICATION_ID {
            return Err(StoreError::Foreign { path });
        }
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(StoreError::NewerSchema {
                path,
                found: version,
                known,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let cipher = Cipher::new(key);
        let store = Self {
            conn: Mutex::new(conn),
            cipher,
            path,
        };
        store.migrate(fresh, version)?;
        store.check_key()?;
        Ok(store)
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every later write fail (or work again), as a full or read-only disk
    /// would: for tests of what the gateway does when it cannot store anything.
    #[doc(hidden)]
    pub fn refuse_writes(&self, refuse: bool) -> Result<(), StoreError> {
        Ok(self.conn().pragma_update(None, "query_only", refuse)?)
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs outbox bookkeeping (leases, outcomes) with `synchronous=NORMAL`: its commits
    /// skip the disk flush, and losing the last of them in a power cut only repeats a
    /// delivery, which GoTo's 409 makes harmless. Intake and tokens keep `FULL`. Both go
    /// through the one connection, so writers in this process never meet SQLite's busy
    /// handler (which sleeps in steps of up to 100 ms).
    pub(crate) fn bookkeeping<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.conn();
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = f(&conn);
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(result?)
    }

    fn migrate(&self, fresh: bool, from: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Re-read inside the write lock: another process may have migrated meanwhile.
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let start = usize::try_from(current.max(from)).unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
            tx.execute_batch(sql)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )?;
        }
        if fresh {
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        let has_check: bool = tx
            .query_row("SELECT 1 FROM meta WHERE key = 'key_check'", [], |_| {
                Ok(true)
            })
            .optional()?
            .unwrap_or(false);
        if !has_check {
            let sealed = self.cipher.seal(KEY_CHECK_PLACE, KEY_CHECK_PLAINTEXT)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('key_check', ?1)",
                params![sealed],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn check_key(&self) -> Result<(), StoreError> {
        let sealed: Vec<u8> =
            self.conn()
                .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
                    r.get(0)
                })?;
        match self.cipher.open(KEY_CHECK_PLACE, &sealed) {
            Ok(plain) if plain == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(StoreError::WrongKey {
                path: self.path.clone(),
                key_file: KEY_FILE_NAME,
            }),
        }
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl TokenStore for SqliteStore {
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
        ttl: std::time::Duration,
    ) -> Result<bool, StoreFailure> {
        let changed = self
            .conn()
            .execute(
                "INSERT INTO locks (name, holder, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET holder = excluded.holder,
                     expires_at = excluded.expires_at
                 WHERE locks.expires_at <= ?4 OR locks.holder = excluded.holder",
                params![
                    lock_name(profile),
                    holder,
                    (now + ttl).as_secs(),
                    now.as_secs()
                ],
            )
            .map_err(|e| failure(e.into()))?;
        Ok(changed == 1)
    }

    fn unlock_refresh(&self, profile: &str, holder: &str) -> Result<(), StoreFailure> {
        self.conn()
            .execute(
                "DELETE FROM locks WHERE name = ?1 AND holder = ?2",
                params![lock_name(profile), holder],
            )
            .map_err(|e| failure(e.into()))?;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn location(&self) -> String {
        format!("SQLite {}", self.path.display())
    }

    fn load_profile(&self, profile: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT client_id, client_secret, access_token, access_expires_at, refresh_token,
                        refresh_token_since, personal_access_token, organizer_key, account_key,
                        principal, reauthorization_reason, last_refresh_at
                 FROM profiles WHERE name = ?1",
                params![profile],
                |r| {
                    Ok(ProfileRow {
                        client_id: r.get(0)?,
                        client_secret: r.get(1)?,
                        access_token: r.get(2)?,
                        access_expires_at: r.get(3)?,
                        refresh_token: r.get(4)?,
                        refresh_token_since: r.get(5)?,
                        personal_access_token: r.get(6)?,
                        organizer_key: r.get(7)?,
                        account_key: r.get(8)?,
                        principal: r.get(9)?,
                        reauthorization_reason: r.get(10)?,
                        last_refresh_at: r.get(11)?,
                    })
                },
            )
            .optional()?;
        row.map(|r| r.open(&self.cipher, profile)).transpose()
    }

    fn save_profile(&self, profile: &str, record: &TokenRecord) -> Result<(), StoreError> {
        let r = ProfileRow::seal(&self.cipher, profile, record)?;
        self.conn().execute(
            "INSERT INTO profiles (name, client_id, client_secret, access_token, access_expires_at,
                 refresh_token, refresh_token_since, personal_access_token, organizer_key,
                 account_key, principal, reauthorization_reason, last_refresh_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT(name) DO UPDATE SET
                 client_id = excluded.client_id, client_secret = excluded.client_secret,
                 access_token = excluded.access_token, access_expires_at = excluded.access_expires_at,
                 refresh_token = excluded.refresh_token,
                 refresh_token_since = excluded.refresh_token_since,
                 personal_access_token = excluded.personal_access_token,
                 organizer_key = excluded.organizer_key, account_key = excluded.account_key,
                 principal = excluded.principal,
                 reauthorization_reason = excluded.reauthorization_reason,
                 last_refresh_at = excluded.last_refresh_at, updated_at = excluded.updated_at",
            params![
                profile,
                r.client_id,
                r.client_secret,
                r.access_token,
                r.access_expires_at,
                r.refresh_token,
                r.refresh_token_since,
                r.personal_access_token,
                r.organizer_key,
                r.account_key,
                r.principal,
                r.reauthorization_reason,
                r.last_refresh_at,
                chrono_now(),
            ],
        )?;
        Ok(())
    }

    fn delete_profile(&self, profile: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        let n = conn.execute("DELETE FROM profiles WHERE name = ?1", params![profile])?;
        conn.execute(
            "DELETE FROM locks WHERE name = ?1",
            params![lock_name(profile)],
        )?;
        Ok(n > 0)
    }

    fn profiles(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name FROM profiles ORDER BY name")?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    }

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![format!("setting:{key}")],
                |r| r.get(0),
            )
            .optional()?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![format!("setting:{key}"), value.as_bytes()],
        )?;
        Ok(())
    }

    fn journal_entry(
        &self,
        import_id: &str,
        line: u64,
    ) -> Result<Option<JournalEntry>, StoreError> {
        crate::journal::entry(self, import_id, line)
    }

    fn journal_record(
        &self,
        import_id: &str,
        line: u64,
        entry: &JournalEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        crate::journal::record(self, import_id, line, entry, now)
    }

    fn put_session(&self, digest: &str, session: &AdminSession) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO admin_sessions (digest, csrf, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(digest) DO UPDATE SET csrf = excluded.csrf, expires_at = excluded.expires_at",
            params![digest, session.csrf, session.expires_at.as_secs()],
        )?;
        Ok(())
    }

    fn session(&self, digest: &str, now: Timestamp) -> Result<Option<AdminSession>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT csrf, expires_at FROM admin_sessions WHERE digest = ?1 AND expires_at > ?2",
                params![digest, now.as_secs()],
                |r| {
                    Ok(AdminSession {
                        csrf: r.get(0)?,
                        expires_at: Timestamp::from_secs(r.get(1)?),
                    })
                },
            )
            .optional()?)
    }

    fn end_session(&self, digest: &str, now: Timestamp) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM admin_sessions WHERE digest = ?1 OR expires_at <= ?2",
            params![digest, now.as_secs()],
        )?;
        Ok(())
    }

    fn book_budget(
        &self,
        account: &str,
        interval: std::time::Duration,
        burst: u32,
        permits: u32,
        max_wait: Option<std::time::Duration>,
    ) -> Result<Option<std::time::Duration>, StoreError> {
        let now = Timestamp::now();
        self.bookkeeping(|conn| {
            // Immediate: the gateway and an import run may book at the same moment.
            let tx = rusqlite::Transaction::new_unchecked(
                conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            let tat = tx
                .query_row(
                    "SELECT tat_ms FROM goto_budget WHERE account = ?1",
                    params![account],
                    |r| r.get(0).map(Timestamp::from_millis),
                )
                .optional()?
                .unwrap_or(Timestamp::EPOCH);
            let Some((tat, wait)) = gcra_book(tat, now, interval, burst, permits, max_wait) else {
                return Ok(None);
            };
            tx.execute(
                "INSERT INTO goto_budget (account, tat_ms) VALUES (?1, ?2)
                 ON CONFLICT(account) DO UPDATE SET tat_ms = excluded.tat_ms",
                params![account, tat.as_millis()],
            )?;
            tx.commit()?;
            Ok(Some(wait))
        })
    }
}
