//! Small values kept beside everything else: settings (such as the admin password's
//! hash), the key check, and the write probe.

use g2w_goto::Timestamp;

use crate::db::args;
use crate::{Store, StoreError};

/// Sealed at creation, opened at every start, so a wrong key is found before any secret
/// is read.
const KEY_CHECK_PLAINTEXT: &[u8] = b"g2w key check v1";
/// Where the key check is sealed to.
const KEY_CHECK_PLACE: &str = "meta:key_check";

/// A value the gateway keeps in the store rather than in its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The admin console password's hash, once upgraded or set by `g2w serve`.
    AdminPassword,
    /// The secret path segment GoTo posts webhook events to.
    WebhookPath,
    /// The callback URL registered with GoTo (shown to operators).
    WebhookCallback,
}

impl Setting {
    /// Every setting, for copying a store.
    pub const ALL: [Self; 3] = [
        Self::AdminPassword,
        Self::WebhookPath,
        Self::WebhookCallback,
    ];

    /// Its key in the `meta` table.
    fn key(self) -> &'static str {
        match self {
            Self::AdminPassword => "setting:admin_password",
            Self::WebhookPath => "setting:webhooks.path",
            Self::WebhookCallback => "setting:webhooks.callback_url",
        }
    }
}

impl Store {
    /// Seals the key check on a new database, and opens it on every start.
    pub(crate) async fn check_key(&self) -> Result<(), StoreError> {
        let sealed = self.cipher.seal(KEY_CHECK_PLACE, KEY_CHECK_PLAINTEXT)?;
        self.db
            .execute(
                "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT DO NOTHING",
                args![sealed],
            )
            .await?;
        let stored = self
            .db
            .query_one("SELECT value FROM meta WHERE key = 'key_check'", Vec::new())
            .await?
            .bytes(0)?;
        match self.cipher.open(KEY_CHECK_PLACE, &stored) {
            Ok(plain) if plain == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(StoreError::WrongKey {
                database: self.location(),
                remedy: self.key_remedy,
            }),
        }
    }

    /// A setting kept in the store.
    ///
    /// # Errors
    /// Database failures.
    pub async fn setting(&self, setting: Setting) -> Result<Option<String>, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT value FROM meta WHERE key = $1",
                args![setting.key()],
            )
            .await?;
        row.map(|r| r.bytes(0).map(|v| String::from_utf8_lossy(&v).into_owned()))
            .transpose()
    }

    /// Stores a setting.
    ///
    /// # Errors
    /// Database failures.
    pub async fn set_setting(&self, setting: Setting, value: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                args![setting.key(), value.as_bytes().to_vec()],
            )
            .await?;
        Ok(())
    }

    /// A small durable write, to tell whether the store can be written at all.
    ///
    /// # Errors
    /// The write's failure (disk full, read-only, locked, unreachable).
    pub async fn probe_write(&self, now: Timestamp) -> Result<(), StoreError> {
        self.db
            .note(
                "INSERT INTO meta (key, value) VALUES ('write_probe', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                args![now.as_millis().to_string().into_bytes()],
            )
            .await?;
        Ok(())
    }
}
