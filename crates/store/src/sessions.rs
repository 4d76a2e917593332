//! Admin console sessions, by a digest of their cookie (never the cookie itself), so a
//! copy of the database signs nobody in; kept in the store so that a restart or another
//! gateway keeps people signed in.

use g2w_goto::Timestamp;

use crate::db::args;
use crate::{Store, StoreError};

/// An admin console session, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSession {
    /// The CSRF token its forms carry.
    pub csrf: String,
    /// When it ends.
    pub expires_at: Timestamp,
}

impl Store {
    /// Stores an admin session under the digest of its cookie.
    ///
    /// # Errors
    /// Database failures.
    pub async fn put_session(
        &self,
        digest: &str,
        session: &AdminSession,
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO admin_sessions (digest, csrf, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO UPDATE SET csrf = excluded.csrf,
                     expires_at = excluded.expires_at",
                args![digest, &session.csrf, session.expires_at.as_secs()],
            )
            .await?;
        Ok(())
    }

    /// The session with this digest, if it has not ended by `now`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn session(
        &self,
        digest: &str,
        now: Timestamp,
    ) -> Result<Option<AdminSession>, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT csrf, expires_at FROM admin_sessions WHERE digest = $1 AND expires_at > $2",
                args![digest, now.as_secs()],
            )
            .await?;
        row.map(|r| {
            Ok(AdminSession {
                csrf: r.text(0)?,
                expires_at: Timestamp::from_secs(r.int(1)?),
            })
        })
        .transpose()
    }

    /// Ends a session, and forgets every session that ended before `now`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn end_session(&self, digest: &str, now: Timestamp) -> Result<(), StoreError> {
        self.db
            .execute(
                "DELETE FROM admin_sessions WHERE digest = $1 OR expires_at <= $2",
                args![digest, now.as_secs()],
            )
            .await?;
        Ok(())
    }

    /// Ends every console session (a new password signs everyone out); how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn end_all_sessions(&self) -> Result<u64, StoreError> {
        self.db
            .execute("DELETE FROM admin_sessions", Vec::new())
            .await
    }
}
