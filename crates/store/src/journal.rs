//! The bulk-import journal: each row's outcome, so a re-run skips finished rows.

use rusqlite::{OptionalExtension as _, params};

use crate::{SqliteStore, StoreError};

/// How an import row ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JournalOutcome {
    /// GoTo registered the person.
    Registered,
    /// GoTo already had them.
    AlreadyRegistered,
    /// The row was refused before anything was sent.
    Invalid,
    /// GoTo refused or failed (tried again on the next run).
    Failed,
}

impl JournalOutcome {
    /// The stored (and reported) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::AlreadyRegistered => "already_registered",
            Self::Invalid => "invalid",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for JournalOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Registered,
            Self::AlreadyRegistered,
            Self::Invalid,
            Self::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| format!("{s:?} is not an import outcome"))
    }
}

/// One row's recorded outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// How it ended.
    pub outcome: JournalOutcome,
    /// GoTo's registrant key, when known.
    pub registrant_key: Option<String>,
    /// The join URL, when known.
    pub join_url: Option<String>,
    /// The reason, for `invalid` and `failed`.
    pub detail: Option<String>,
}

impl JournalEntry {
    /// Whether the row needs no more work (a failed row is tried again).
    pub fn is_done(&self) -> bool {
        matches!(
            self.outcome,
            JournalOutcome::Registered | JournalOutcome::AlreadyRegistered
        )
    }
}

/// The recorded outcome of one row.
pub(crate) fn entry(
    store: &SqliteStore,
    import_id: &str,
    line: u64,
) -> Result<Option<JournalEntry>, StoreError> {
    {
        let conn = store.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT outcome, registrant_key, join_url, detail FROM import_journal
             WHERE import_id = ?1 AND line = ?2",
        )?;
        Ok(stmt
            .query_row(
                params![import_id, i64::try_from(line).unwrap_or(i64::MAX)],
                |r| {
                    let outcome: String = r.get(0)?;
                    Ok(JournalEntry {
                        outcome: outcome.parse().map_err(|e: String| {
                            rusqlite::Error::FromSqlConversionFailure(
                                0,
                                rusqlite::types::Type::Text,
                                e.into(),
                            )
                        })?,
                        registrant_key: r.get(1)?,
                        join_url: r.get(2)?,
                        detail: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }
}

/// Records one row's outcome (replacing an earlier one).
pub(crate) fn record(
    store: &SqliteStore,
    import_id: &str,
    line: u64,
    entry: &JournalEntry,
    now: g2w_goto::Timestamp,
) -> Result<(), StoreError> {
    {
        store.bookkeeping(|conn| {
            conn.prepare_cached(
                "INSERT INTO import_journal (import_id, line, outcome, registrant_key, join_url, detail, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(import_id, line) DO UPDATE SET outcome = excluded.outcome,
                     registrant_key = excluded.registrant_key, join_url = excluded.join_url,
                     detail = excluded.detail, updated_at = excluded.updated_at",
            )?
            .execute(params![
                import_id,
                i64::try_from(line).unwrap_or(i64::MAX),
                entry.outcome.as_str(),
                entry.registrant_key,
                entry.join_url,
                entry.detail,
                now.as_secs()
            ])
        })?;
    }
    Ok(())
}
