//! The bulk-import journal: each row's outcome, so a re-run skips finished rows.

use g2w_goto::Timestamp;

use crate::db::args;
use crate::{Store, StoreError};

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
fn line_number(line: u64) -> i64 {
    i64::try_from(line).unwrap_or(i64::MAX)
}

impl Store {
    /// The recorded outcome of one import row.
    ///
    /// # Errors
    /// Database failures.
    pub async fn journal_entry(
        &self,
        import_id: &str,
        line: u64,
    ) -> Result<Option<JournalEntry>, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT outcome, registrant_key, join_url, detail FROM import_journal
                 WHERE import_id = $1 AND line = $2",
                args![import_id, line_number(line)],
            )
            .await?;
        row.map(|r| {
            Ok(JournalEntry {
                outcome: r.text(0)?.parse().map_err(StoreError::Data)?,
                registrant_key: r.opt_text(1)?,
                join_url: r.opt_text(2)?,
                detail: r.opt_text(3)?,
            })
        })
        .transpose()
    }

    /// Records one import row's outcome (replacing an earlier one).
    ///
    /// # Errors
    /// Database failures.
    pub async fn journal_record(
        &self,
        import_id: &str,
        line: u64,
        entry: &JournalEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO import_journal (import_id, line, outcome, registrant_key, join_url,
                     detail, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (import_id, line) DO UPDATE SET outcome = excluded.outcome,
                     registrant_key = excluded.registrant_key, join_url = excluded.join_url,
                     detail = excluded.detail, updated_at = excluded.updated_at",
                args![
                    import_id,
                    line_number(line),
                    entry.outcome.as_str(),
                    entry.registrant_key.clone(),
                    entry.join_url.clone(),
                    entry.detail.clone(),
                    now.as_secs(),
                ],
            )
            .await?;
        Ok(())
    }
}
