//! Logins: one per profile, its secrets sealed to their profile and column, and the
//! refresh lock that lets exactly one process (of any number on this store) refresh a
//! profile's token at a time.

use g2w_goto::{ExposeSecret as _, SecretString, StoreFailure, Timestamp, TokenRecord, TokenStore};

use crate::crypto::Cipher;
use crate::db::{Row, Statement, args};
use crate::{Store, StoreError};

/// A login as stored: secrets sealed, keys as text.
#[derive(Debug, Default)]
pub(crate) struct ProfileRow {
    pub client_id: String,
    pub client_secret: Option<Vec<u8>>,
    pub access_token: Option<Vec<u8>>,
    pub access_expires_at: Option<i64>,
    pub refresh_token: Option<Vec<u8>>,
    pub refresh_token_since: Option<i64>,
    pub personal_access_token: Option<Vec<u8>>,
    pub organizer_key: Option<String>,
    pub account_key: Option<String>,
    pub principal: Option<String>,
    pub reauthorization_reason: Option<String>,
    pub last_refresh_at: Option<i64>,
    pub scope: Option<String>,
    pub auth_url: Option<String>,
    pub api_url: Option<String>,
}

fn seal(
    cipher: &Cipher,
    profile: &str,
    column: &str,
    value: Option<&SecretString>,
) -> Result<Option<Vec<u8>>, StoreError> {
    value
        .map(|v| {
            cipher.seal(
                &format!("profile:{profile}:{column}"),
                v.expose_secret().as_bytes(),
            )
        })
        .transpose()
}

fn unseal(
    cipher: &Cipher,
    profile: &str,
    column: &str,
    blob: Option<Vec<u8>>,
) -> Result<Option<SecretString>, StoreError> {
    blob.map(|b| {
        let plain = cipher.open(&format!("profile:{profile}:{column}"), &b)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| StoreError::Crypto(format!("{column} of {profile} is not text")))
    })
    .transpose()
}

impl ProfileRow {
    /// `record` as `profile`'s row.
    pub fn seal(cipher: &Cipher, profile: &str, r: &TokenRecord) -> Result<Self, StoreError> {
        Ok(Self {
            client_id: r.client_id.clone(),
            client_secret: seal(cipher, profile, "client_secret", r.client_secret.as_ref())?,
            access_token: seal(cipher, profile, "access_token", r.access_token.as_ref())?,
            access_expires_at: r.access_expires_at.map(Timestamp::as_secs),
            refresh_token: seal(cipher, profile, "refresh_token", r.refresh_token.as_ref())?,
            refresh_token_since: r.refresh_token_since.map(Timestamp::as_secs),
            personal_access_token: seal(
                cipher,
                profile,
                "personal_access_token",
                r.personal_access_token.as_ref(),
            )?,
            organizer_key: r.organizer_key.map(|k| k.to_string()),
            account_key: r.account_key.map(|k| k.to_string()),
            principal: r.principal.clone(),
            reauthorization_reason: r.reauthorization_required.clone(),
            last_refresh_at: r.last_refresh_at.map(Timestamp::as_secs),
            scope: r.scope.clone(),
            auth_url: r.auth_url.clone(),
            api_url: r.api_url.clone(),
        })
    }

    /// The login this row holds for `profile`.
    pub fn open(self, cipher: &Cipher, profile: &str) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            client_id: self.client_id,
            client_secret: unseal(cipher, profile, "client_secret", self.client_secret)?,
            access_token: unseal(cipher, profile, "access_token", self.access_token)?,
            access_expires_at: self.access_expires_at.map(Timestamp::from_secs),
            refresh_token: unseal(cipher, profile, "refresh_token", self.refresh_token)?,
            refresh_token_since: self.refresh_token_since.map(Timestamp::from_secs),
            personal_access_token: unseal(
                cipher,
                profile,
                "personal_access_token",
                self.personal_access_token,
            )?,
            organizer_key: self.organizer_key.and_then(|k| k.parse().ok()),
            account_key: self.account_key.and_then(|k| k.parse().ok()),
            principal: self.principal,
            reauthorization_required: self.reauthorization_reason,
            last_refresh_at: self.last_refresh_at.map(Timestamp::from_secs),
            scope: self.scope,
            auth_url: self.auth_url,
            api_url: self.api_url,
        })
    }
}

impl ProfileRow {
    fn read(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            client_id: r.text(0)?,
            client_secret: r.opt_bytes(1)?,
            access_token: r.opt_bytes(2)?,
            access_expires_at: r.opt_int(3)?,
            refresh_token: r.opt_bytes(4)?,
            refresh_token_since: r.opt_int(5)?,
            personal_access_token: r.opt_bytes(6)?,
            organizer_key: r.opt_text(7)?,
            account_key: r.opt_text(8)?,
            principal: r.opt_text(9)?,
            reauthorization_reason: r.opt_text(10)?,
            last_refresh_at: r.opt_int(11)?,
            scope: r.opt_text(12)?,
            auth_url: r.opt_text(13)?,
            api_url: r.opt_text(14)?,
        })
    }
}

/// The name of the cross-process refresh lock of `profile`.
fn lock_name(profile: &str) -> String {
    format!("refresh:{profile}")
}

fn now_secs() -> i64 {
    Timestamp::now().as_secs()
}

impl Store {
    /// The stored login of `profile`.
    ///
    /// # Errors
    /// Database or decryption failures.
    pub async fn load_profile(&self, profile: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT client_id, client_secret, access_token, access_expires_at, refresh_token,
                        refresh_token_since, personal_access_token, organizer_key, account_key,
                        principal, reauthorization_reason, last_refresh_at, scope, auth_url, api_url
                 FROM profiles WHERE name = $1",
                args![profile],
            )
            .await?;
        row.map(|r| ProfileRow::read(&r)?.open(&self.cipher, profile))
            .transpose()
    }

    /// Writes the whole login of `profile` in one statement.
    ///
    /// # Errors
    /// Database or encryption failures.
    pub async fn save_profile(
        &self,
        profile: &str,
        record: &TokenRecord,
    ) -> Result<(), StoreError> {
        let r = ProfileRow::seal(&self.cipher, profile, record)?;
        self.db
            .execute(
                "INSERT INTO profiles (name, client_id, client_secret, access_token,
                     access_expires_at, refresh_token, refresh_token_since, personal_access_token,
                     organizer_key, account_key, principal, reauthorization_reason,
                     last_refresh_at, updated_at, scope, auth_url, api_url)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17)
                 ON CONFLICT (name) DO UPDATE SET
                     client_id = excluded.client_id, client_secret = excluded.client_secret,
                     access_token = excluded.access_token,
                     access_expires_at = excluded.access_expires_at,
                     refresh_token = excluded.refresh_token,
                     refresh_token_since = excluded.refresh_token_since,
                     personal_access_token = excluded.personal_access_token,
                     organizer_key = excluded.organizer_key, account_key = excluded.account_key,
                     principal = excluded.principal,
                     reauthorization_reason = excluded.reauthorization_reason,
                     last_refresh_at = excluded.last_refresh_at, updated_at = excluded.updated_at,
                     scope = excluded.scope, auth_url = excluded.auth_url,
                     api_url = excluded.api_url",
                args![
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
                    now_secs(),
                    r.scope,
                    r.auth_url,
                    r.api_url,
                ],
            )
            .await?;
        Ok(())
    }

    /// Deletes a profile's login (and its refresh lock); returns whether there was one.
    ///
    /// # Errors
    /// Database failures.
    pub async fn delete_profile(&self, profile: &str) -> Result<bool, StoreError> {
        let done = self
            .db
            .run(
                vec![
                    Statement::new("DELETE FROM profiles WHERE name = $1", args![profile]),
                    Statement::new(
                        "DELETE FROM locks WHERE name = $1",
                        args![lock_name(profile)],
                    ),
                ],
                crate::db::Durability::Durable,
            )
            .await?;
        Ok(done.first().is_some_and(|d| d.changed > 0))
    }

    /// The names of all profiles.
    ///
    /// # Errors
    /// Database failures.
    pub async fn profiles(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .query("SELECT name FROM profiles ORDER BY name", Vec::new())
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect()
    }
}

#[async_trait::async_trait]
impl TokenStore for Store {
    async fn load(&self, profile: &str) -> Result<Option<TokenRecord>, StoreFailure> {
        Ok(self.load_profile(profile).await?)
    }

    async fn save(&self, profile: &str, record: &TokenRecord) -> Result<(), StoreFailure> {
        Ok(self.save_profile(profile, record).await?)
    }

    async fn try_lock_refresh(
        &self,
        profile: &str,
        holder: &str,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreFailure> {
        let changed = self
            .db
            .execute(
                "INSERT INTO locks (name, holder, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                     expires_at = excluded.expires_at
                 WHERE locks.expires_at <= $4 OR locks.holder = excluded.holder",
                args![
                    lock_name(profile),
                    holder,
                    (now + ttl).as_secs(),
                    now.as_secs()
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn save_account(
        &self,
        profile: &str,
        account: g2w_goto::AccountKey,
    ) -> Result<(), StoreFailure> {
        self.db
            .execute(
                "UPDATE profiles SET account_key = $2 WHERE name = $1",
                args![profile, account.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn unlock_refresh(&self, profile: &str, holder: &str) -> Result<(), StoreFailure> {
        self.db
            .execute(
                "DELETE FROM locks WHERE name = $1 AND holder = $2",
                args![lock_name(profile), holder],
            )
            .await?;
        Ok(())
    }
}
