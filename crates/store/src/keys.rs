//! API keys other programs use g2w's logins with (`api_keys`), and the record of what
//! they did with them (`key_audit`). The store keeps a key's digest, never the key; what
//! a scope allows is the gateway's business.

use g2w_goto::Timestamp;

use crate::db::{Row, args};
use crate::{Store, StoreError};

/// A key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Its public part (`g2w_…`), shown in lists; the rest of the key is secret.
    pub prefix: String,
    /// The name it was made under (`crm-sync`).
    pub name: String,
    /// SHA-256 of the whole key.
    pub digest: Vec<u8>,
    /// The organizers (profiles) it may act for.
    pub organizers: Vec<String>,
    /// What it may do (`token`, `proxy`, `register`).
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was last used (kept to the minute).
    pub last_used_at: Option<Timestamp>,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// One use of a key, as audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// The key's name and prefix.
    pub key_name: String,
    /// Its public part.
    pub key_prefix: String,
    /// The organizer (profile) it acted for.
    pub organizer: String,
    /// The caller's address.
    pub caller: String,
    /// `token` (a hand-out) or `proxy` (a pass-through call).
    pub action: String,
    /// The pass-through call's method.
    pub method: Option<String>,
    /// The pass-through call's path.
    pub path: Option<String>,
    /// The status answered.
    pub status: u16,
    /// A fingerprint of the token handed out (never the token).
    pub token_fingerprint: Option<String>,
    /// When the token handed out expires.
    pub token_expires_at: Option<Timestamp>,
}

const KEY_COLUMNS: &str = "prefix, name, digest, organizers, scopes, created_at, last_used_at, \
     expires_at, revoked_at";
const AUDIT_COLUMNS: &str = "at, key_name, key_prefix, organizer, caller, action, method, path, \
     status, token_fingerprint, token_expires_at";

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_key(r: &Row) -> Result<KeyRecord, StoreError> {
    let at = |i| r.opt_int(i).map(|t| t.map(Timestamp::from_secs));
    Ok(KeyRecord {
        prefix: r.text(0)?,
        name: r.text(1)?,
        digest: r.bytes(2)?,
        organizers: list(&r.text(3)?),
        scopes: list(&r.text(4)?),
        created_at: Timestamp::from_secs(r.int(5)?),
        last_used_at: at(6)?,
        expires_at: at(7)?,
        revoked_at: at(8)?,
    })
}

fn read_audit(r: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        at: Timestamp::from_secs(r.int(0)?),
        key_name: r.text(1)?,
        key_prefix: r.text(2)?,
        organizer: r.text(3)?,
        caller: r.text(4)?,
        action: r.text(5)?,
        method: r.opt_text(6)?,
        path: r.opt_text(7)?,
        status: u16::try_from(r.int(8)?).unwrap_or(0),
        token_fingerprint: r.opt_text(9)?,
        token_expires_at: r.opt_int(10)?.map(Timestamp::from_secs),
    })
}

impl Store {
    /// Adds `key`; false (and nothing changed) when its name or prefix is taken.
    ///
    /// # Errors
    /// Database failures.
    pub async fn add_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let added = self
            .db
            .execute(
                format!(
                    "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT DO NOTHING"
                ),
                args![
                    &key.prefix,
                    &key.name,
                    key.digest.clone(),
                    key.organizers.join(","),
                    key.scopes.join(","),
                    key.created_at.as_secs(),
                    key.last_used_at.map(Timestamp::as_secs),
                    key.expires_at.map(Timestamp::as_secs),
                    key.revoked_at.map(Timestamp::as_secs),
                ],
            )
            .await?;
        Ok(added == 1)
    }

    /// The key whose public part is `prefix`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn key_by_prefix(&self, prefix: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = self
            .db
            .query_opt(
                format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = $1"),
                args![prefix],
            )
            .await?;
        row.map(|r| read_key(&r)).transpose()
    }

    /// Every key, revoked ones too, newest first.
    ///
    /// # Errors
    /// Database failures.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = self
            .db
            .query(
                format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, name"),
                Vec::new(),
            )
            .await?;
        rows.iter().map(read_key).collect()
    }

    /// Revokes the key named `which` (or whose prefix it is), unless already revoked;
    /// the key as it now stands, or `None` when there is no such key.
    ///
    /// # Errors
    /// Database failures.
    pub async fn revoke_key(
        &self,
        which: &str,
        now: Timestamp,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.db
            .execute(
                "UPDATE api_keys SET revoked_at = $2
                 WHERE (name = $1 OR prefix = $1) AND revoked_at IS NULL",
                args![which, now.as_secs()],
            )
            .await?;
        let row = self
            .db
            .query_opt(
                format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE name = $1 OR prefix = $1"),
                args![which],
            )
            .await?;
        row.map(|r| read_key(&r)).transpose()
    }

    /// Notes that the key `prefix` was used at `now` (not durably: a lost note costs a
    /// minute of "last used").
    ///
    /// # Errors
    /// Database failures.
    pub async fn key_used(&self, prefix: &str, now: Timestamp) -> Result<(), StoreError> {
        self.db
            .note(
                "UPDATE api_keys SET last_used_at = $2 WHERE prefix = $1",
                args![prefix, now.as_secs()],
            )
            .await?;
        Ok(())
    }

    /// Records one use of a key.
    ///
    /// # Errors
    /// Database failures.
    pub async fn audit_key_use(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.db
            .execute(
                format!(
                    "INSERT INTO key_audit ({AUDIT_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ),
                args![
                    entry.at.as_secs(),
                    &entry.key_name,
                    &entry.key_prefix,
                    &entry.organizer,
                    &entry.caller,
                    &entry.action,
                    entry.method.clone(),
                    entry.path.clone(),
                    i64::from(entry.status),
                    entry.token_fingerprint.clone(),
                    entry.token_expires_at.map(Timestamp::as_secs),
                ],
            )
            .await?;
        Ok(())
    }

    /// Audited uses since `since`, of the key named `key` or of every key, newest first,
    /// at most `limit`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn key_audit(
        &self,
        key: Option<&str>,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .db
            .query(
                format!(
                    "SELECT {AUDIT_COLUMNS} FROM key_audit
                     WHERE at >= $1 AND ($2 = '' OR key_name = $2 OR key_prefix = $2)
                     ORDER BY at DESC, id DESC LIMIT $3"
                ),
                args![since.as_secs(), key.unwrap_or(""), limit],
            )
            .await?;
        rows.iter().map(read_audit).collect()
    }

    /// Removes audit rows from before `before`; how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn prune_key_audit(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.db
            .execute(
                "DELETE FROM key_audit WHERE at < $1",
                args![before.as_secs()],
            )
            .await
    }
}
