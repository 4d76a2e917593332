//! What every backend stores the same way: a login as columns (its secrets sealed to
//! their profile and column), and the columns an outbox outcome sets.

use g2w_goto::{ExposeSecret as _, SecretString, Timestamp, TokenRecord};

use crate::StoreError;
use crate::crypto::Cipher;
use crate::outbox::{Completion, OutboxState};

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
        })
    }
}

/// The columns an outcome sets: state, registrant key, join URL, error.
pub(crate) fn completion_columns(
    completion: &Completion,
) -> (OutboxState, Option<String>, Option<String>, Option<String>) {
    match completion {
        Completion::Delivered {
            registrant_key,
            join_url,
        } => (
            OutboxState::Delivered,
            Some(registrant_key.to_string()),
            Some(join_url.clone()),
            None,
        ),
        Completion::AlreadyRegistered {
            registrant_key,
            join_url,
        } => (
            OutboxState::AlreadyRegistered,
            registrant_key.map(|k| k.to_string()),
            join_url.clone(),
            None,
        ),
        Completion::Failed { reason } => (OutboxState::Failed, None, None, Some(reason.clone())),
        Completion::Dead { reason } => (OutboxState::Dead, None, None, Some(reason.clone())),
    }
}

/// The key-check row: sealed at creation, opened at every start, so a wrong key is
/// found before any secret is read.
pub(crate) const KEY_CHECK_PLAINTEXT: &[u8] = b"g2w key check v1";
/// Where the key check is sealed to.
pub(crate) const KEY_CHECK_PLACE: &str = "meta:key_check";

/// The name of the cross-process refresh lock of `profile`.
pub(crate) fn lock_name(profile: &str) -> String {
    format!("refresh:{profile}")
}

/// A store error as the token manager's trait carries it.
pub(crate) fn failure(e: StoreError) -> g2w_goto::StoreFailure {
    g2w_goto::StoreFailure(e.to_string())
}
