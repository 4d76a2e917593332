//! The token lifecycle: every API call asks the [`TokenManager`] for an access token.
//!
//! - It refreshes ahead of time when the access token has under 5 minutes left.
//! - After a 403 `InvalidToken` it refreshes once (unless another caller already did).
//! - A refresh answer without `refresh_token` keeps the old one; with one, the new one
//!   replaces it in the same store write as the new access token.
//! - Refreshes are single-flight: concurrent callers in one process wait for one
//!   refresh, and processes sharing a store take a lock in it and re-read after
//!   taking it, because another process may have refreshed meanwhile.
//! - `invalid_grant` marks the profile "reauthorization required" with the command
//!   that fixes it; nothing else is deleted.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use crate::error::{GotoError, Result};
use crate::keys::{AccountKey, OrganizerKey};
use crate::oauth::{OAuthClient, OAuthError, TokenResponse};
use crate::time::{Clock, Timestamp};

/// Refresh when the access token has less than this left.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Everything stored for one profile. `Debug` shows no secret.
#[derive(Clone, Default)]
pub struct TokenRecord {
    /// The OAuth client the tokens belong to.
    pub client_id: String,
    /// Its secret (stored encrypted).
    pub client_secret: Option<SecretString>,
    /// The current access token.
    pub access_token: Option<SecretString>,
    /// When it expires.
    pub access_expires_at: Option<Timestamp>,
    /// The current refresh token.
    pub refresh_token: Option<SecretString>,
    /// When this refresh token was first seen (GoTo rotates it after about 30 days).
    pub refresh_token_since: Option<Timestamp>,
    /// A personal access token, for profiles logged in with `--pat`.
    pub personal_access_token: Option<SecretString>,
    /// The organizer the tokens act for.
    pub organizer_key: Option<OrganizerKey>,
    /// The organizer's account.
    pub account_key: Option<AccountKey>,
    /// The user's email, from the token answer.
    pub principal: Option<String>,
    /// Set when the grant is dead; says why.
    pub reauthorization_required: Option<String>,
    /// When the last refresh succeeded.
    pub last_refresh_at: Option<Timestamp>,
    /// The scope GoTo granted the tokens.
    pub scope: Option<String>,
    /// The GoTo the login was made against: its authentication server…
    pub auth_url: Option<String>,
    /// …and its API server (`None`: GoTo's own, or not known).
    pub api_url: Option<String>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("TokenRecord")
            .field("client_id", &self.client_id)
            .field("client_secret", &hidden(&self.client_secret))
            .field("access_token", &hidden(&self.access_token))
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &hidden(&self.refresh_token))
            .field("refresh_token_since", &self.refresh_token_since)
            .field(
                "personal_access_token",
                &hidden(&self.personal_access_token),
            )
            .field("organizer_key", &self.organizer_key)
            .field("account_key", &self.account_key)
            .field("principal", &self.principal)
            .field("reauthorization_required", &self.reauthorization_required)
            .field("last_refresh_at", &self.last_refresh_at)
            .field("scope", &self.scope)
            .field("auth_url", &self.auth_url)
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl TokenRecord {
    /// A fresh login: the OAuth client that got `answer`, and the tokens in it.
    pub fn new_login(
        credentials: &crate::oauth::ClientCredentials,
        answer: TokenResponse,
        now: Timestamp,
    ) -> Self {
        let mut record = Self {
            client_id: credentials.client_id.clone(),
            client_secret: Some(credentials.client_secret.clone()),
            ..Self::default()
        };
        record.apply(answer, now);
        record
    }

    /// Applies a token answer: new access token; new refresh token only if one came.
    pub fn apply(&mut self, answer: TokenResponse, now: Timestamp) {
        self.access_token = Some(answer.access_token);
        self.access_expires_at = Some(now + Duration::from_secs(answer.expires_in));
        if let Some(rt) = answer.refresh_token {
            let changed = self
                .refresh_token
                .as_ref()
                .is_none_or(|old| old.expose_secret() != rt.expose_secret());
            if changed {
                self.refresh_token = Some(rt);
                self.refresh_token_since = Some(now);
            }
        }
        if answer.principal.is_some() {
            self.principal = answer.principal;
        }
        if answer.organizer_key.is_some() {
            self.organizer_key = answer.organizer_key;
        }
        if answer.account_key.is_some() {
            self.account_key = answer.account_key;
        }
        if answer.scope.is_some() {
            self.scope = answer.scope;
        }
        self.reauthorization_required = None;
        self.last_refresh_at = Some(now);
    }

    /// Why this record cannot call GoTo, if it cannot: its grant is dead, or it holds
    /// only an OAuth client and no login (saved in the console, never connected, or a
    /// login dropped when another client was saved).
    pub fn unusable(&self) -> Option<String> {
        if let Some(reason) = &self.reauthorization_required {
            return Some(reason.clone());
        }
        let logged_in = self.access_token.is_some()
            || self.refresh_token.is_some()
            || self.personal_access_token.is_some();
        (!logged_in).then(|| {
            format!(
                "no GoTo login is stored, only the OAuth client {:?}: connect GoTo in the admin console or run `g2w auth login`",
                self.client_id
            )
        })
    }

    /// Whether the access token is missing or has under [`REFRESH_MARGIN`] left.
    pub fn needs_refresh(&self, now: Timestamp) -> bool {
        match (&self.access_token, self.access_expires_at) {
            (Some(_), Some(expires)) => expires.since(now) < REFRESH_MARGIN,
            _ => true,
        }
    }

    /// Where the login stands: `reauthorization_required`, `refresh_soon` (the access
    /// token is about to expire, or the refresh token is due for GoTo's roll-over near
    /// day 30), or `ok`.
    pub fn state(&self, now: Timestamp) -> &'static str {
        const ROTATION_DUE: Duration = Duration::from_secs(28 * 86_400);
        if self.reauthorization_required.is_some() {
            "reauthorization_required"
        } else if self.needs_refresh(now)
            || self
                .refresh_token_since
                .is_some_and(|t| now.since(t) >= ROTATION_DUE)
        {
            "refresh_soon"
        } else {
            "ok"
        }
    }

    fn current_access(&self) -> Option<&SecretString> {
        self.access_token.as_ref()
    }
}

/// A failure of the token store, with the store's own error as its source (so a
/// message can name the database and the cause, and callers can look inside).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreFailure(pub Box<dyn std::error::Error + Send + Sync>);

impl StoreFailure {
    /// A failure with only a message.
    pub fn message(text: impl Into<String>) -> Self {
        Self(text.into().into())
    }
}

/// Where tokens live between runs. Implemented by `g2w-store`.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// The profile's record, if it exists.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn load(&self, profile: &str) -> Result<Option<TokenRecord>, StoreFailure>;

    /// Replaces the profile's record in one atomic write.
    ///
    /// # Errors
    /// When the store cannot be written.
    async fn save(&self, profile: &str, record: &TokenRecord) -> Result<(), StoreFailure>;

    /// Takes the profile's refresh lock for `holder` until `now + ttl`, unless
    /// another holder has it unexpired. Returns whether it was taken.
    ///
    /// # Errors
    /// When the store cannot be written.
    async fn try_lock_refresh(
        &self,
        profile: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreFailure>;

    /// Releases the lock if `holder` has it.
    ///
    /// # Errors
    /// When the store cannot be written.
    async fn unlock_refresh(&self, profile: &str, holder: &str) -> Result<(), StoreFailure>;

    /// Records the GoTo account of the profile's login (learned after it was stored),
    /// changing nothing else of the login.
    ///
    /// # Errors
    /// When the store cannot be written.
    async fn save_account(&self, profile: &str, account: AccountKey) -> Result<(), StoreFailure>;
}

/// What a call needs of the login: the token, and whom it acts for.
#[derive(Debug, Clone)]
pub struct Access {
    /// The access token.
    pub token: SecretString,
    /// The organizer the login acts for.
    pub organizer: Option<OrganizerKey>,
    /// The organizer's GoTo account (whose rate limit the call counts against).
    pub account: Option<AccountKey>,
}

/// How long a refresh lock lasts if its holder dies without releasing it.
const LOCK_TTL: Duration = Duration::from_secs(60);
/// How long to wait for another process's refresh before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(70);

/// Hands out access tokens for one profile and keeps them alive.
pub struct TokenManager {
    store: Arc<dyn TokenStore>,
    oauth: OAuthClient,
    profile: String,
    clock: Clock,
    holder: String,
    single_flight: tokio::sync::Mutex<()>,
    reauth_hint: String,
    refreshes: std::sync::atomic::AtomicU64,
    /// A digest of the token this process got by refreshing after a rejection, until
    /// GoTo accepts it: if GoTo rejects that one too, the fault is GoTo's (or the
    /// grant's) and refreshing again would only hammer the token endpoint.
    unproven: std::sync::Mutex<Option<[u8; 32]>>,
    /// The usable token last read from the store, and when: see [`REREAD_AFTER`].
    recent: std::sync::Mutex<Option<Recent>>,
}

/// How long a usable access token read from the store serves calls before the store
/// is read again. Delivering at full speed would otherwise read the login once per
/// GoTo call; another process's refresh or a new login is seen within this long, and
/// a token GoTo rejects is dropped at once.
const REREAD_AFTER: Duration = Duration::from_secs(1);

struct Recent {
    read_at: Timestamp,
    access: Access,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Tokens are remembered only as digests, so no copy of one lingers in memory.
fn token_digest(token: &SecretString) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.expose_secret().as_bytes()).into()
}

fn store_error(e: StoreFailure) -> GotoError {
    GotoError::Store(e)
}

impl TokenManager {
    /// A manager for `profile` in `store`, refreshing through `oauth`.
    pub fn new(
        store: Arc<dyn TokenStore>,
        oauth: OAuthClient,
        profile: &str,
        clock: Clock,
    ) -> Self {
        let holder = format!("{}-{}", std::process::id(), rand::random::<u64>());
        let reauth_hint = if profile == "default" {
            "g2w auth login".to_owned()
        } else {
            format!("g2w auth login --profile {profile}")
        };
        Self {
            store,
            oauth,
            profile: profile.to_owned(),
            clock,
            holder,
            single_flight: tokio::sync::Mutex::new(()),
            reauth_hint,
            refreshes: std::sync::atomic::AtomicU64::new(0),
            unproven: std::sync::Mutex::new(None),
            recent: std::sync::Mutex::new(None),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Option<Recent>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The profile this manager serves.
    /// The OAuth client this manager refreshes with (before a stored login names one).
    pub fn oauth(&self) -> &OAuthClient {
        &self.oauth
    }

    /// Now, on the manager's clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Token requests this manager made (refresh and PAT grants).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The stored record.
    ///
    /// # Errors
    /// [`GotoError::Store`], or [`GotoError::ReauthorizationRequired`] when no
    /// profile exists.
    pub async fn record(&self) -> Result<TokenRecord> {
        let profile = self.profile.clone();
        self.store
            .load(&profile)
            .await
            .map_err(store_error)?
            .ok_or_else(|| GotoError::ReauthorizationRequired {
                reason: format!("no stored login for profile {:?}", self.profile),
                hint: self.reauth_hint.clone(),
            })
    }

    fn reauth(&self, record: &TokenRecord) -> Option<GotoError> {
        record
            .reauthorization_required
            .as_ref()
            .map(|reason| GotoError::ReauthorizationRequired {
                reason: reason.clone(),
                hint: self.reauth_hint.clone(),
            })
    }

    /// A usable access token, refreshed first if it has under 5 minutes left.
    ///
    /// # Errors
    /// [`GotoError::ReauthorizationRequired`] when the grant is dead; transport and
    /// store errors otherwise.
    pub async fn access_token(&self) -> Result<SecretString> {
        self.access().await.map(|a| a.token)
    }

    /// [`Self::access_token`] and whom the login acts for, from one read of the store.
    ///
    /// # Errors
    /// As [`Self::access_token`].
    pub async fn access(&self) -> Result<Access> {
        let now = self.now();
        if let Some(r) = self
            .recent()
            .as_ref()
            .filter(|r| r.read_at <= now && now.since(r.read_at) < REREAD_AFTER)
        {
            return Ok(r.access.clone());
        }
        let record = self.record().await?;
        if let Some(e) = self.reauth(&record) {
            return Err(e);
        }
        if let Some(token) = record.current_access()
            && !record.needs_refresh(now)
        {
            let access = Access {
                token: token.clone(),
                organizer: record.organizer_key,
                account: record.account_key,
            };
            *self.recent() = Some(Recent {
                read_at: now,
                access: access.clone(),
            });
            return Ok(access);
        }
        let clock = self.clock.clone();
        let (token, record) = self
            .refresh_where(move |r| r.needs_refresh(clock()))
            .await?;
        Ok(Access {
            token,
            organizer: record.organizer_key,
            account: record.account_key,
        })
    }

    /// An access token with at least `min_ttl` left, and the login it belongs to: when
    /// the stored one has less, it is refreshed first, once for everyone asking at that
    /// moment (in this process, and across processes by the store's lock). For handing a
    /// token to another program, which will use it for up to `min_ttl`.
    ///
    /// # Errors
    /// As [`Self::access_token`].
    pub async fn lasting(&self, min_ttl: Duration) -> Result<(SecretString, TokenRecord)> {
        let clock = self.clock.clone();
        let short = move |r: &TokenRecord| {
            r.access_expires_at
                .is_none_or(|expires| expires.since(clock()) < min_ttl)
        };
        let record = self.record().await?;
        if let Some(e) = self.reauth(&record) {
            return Err(e);
        }
        if let Some(token) = record.current_access()
            && !short(&record)
        {
            return Ok((token.clone(), record));
        }
        self.recent().take();
        self.refresh_where(short).await
    }

    /// Keeps the GoTo account of this profile's login, learned after it was stored.
    ///
    /// # Errors
    /// [`GotoError::Store`].
    pub async fn remember_account(&self, account: AccountKey) -> Result<()> {
        self.store
            .save_account(&self.profile, account)
            .await
            .map_err(store_error)?;
        self.recent().take();
        Ok(())
    }

    /// After GoTo rejected `rejected` with 403 `InvalidToken`: refreshes, unless the
    /// stored token already differs (someone else refreshed), and returns the token
    /// to retry with.
    ///
    /// At most one refresh per episode: when the token being rejected is itself the
    /// one a rejection produced and GoTo has not accepted it since, this answers
    /// [`GotoError::InvalidToken`] without asking for yet another token. The episode
    /// ends at the next call GoTo accepts ([`Self::accepted`]).
    ///
    /// # Errors
    /// As [`Self::access_token`], and `InvalidToken` as above.
    pub async fn refresh_after_rejection(&self, rejected: &SecretString) -> Result<SecretString> {
        let digest = token_digest(rejected);
        self.recent().take();
        if *self.unproven.lock().unwrap_or_else(|e| e.into_inner()) == Some(digest) {
            return Err(GotoError::InvalidToken);
        }
        let rejected = rejected.expose_secret().to_owned();
        let token = self
            .refresh_where(move |r| {
                r.current_access()
                    .is_none_or(|t| t.expose_secret() == rejected)
            })
            .await?
            .0;
        *self.unproven.lock().unwrap_or_else(|e| e.into_inner()) = Some(token_digest(&token));
        Ok(token)
    }

    /// GoTo accepted a call made with `token`: a rejection episode, if any, is over.
    pub fn accepted(&self, token: &SecretString) {
        let mut unproven = self.unproven.lock().unwrap_or_else(|e| e.into_inner());
        if unproven.is_some_and(|d| d == token_digest(token)) {
            *unproven = None;
        }
    }

    /// Refreshes now, whatever the expiry (`g2w auth refresh`, the gateway's keep-alive).
    ///
    /// # Errors
    /// As [`Self::access_token`].
    pub async fn force_refresh(&self) -> Result<TokenRecord> {
        let _turn = self.single_flight.lock().await;
        self.locked_refresh(&|_| true).await.map(|r| r.1)
    }

    async fn refresh_where(
        &self,
        needed: impl Fn(&TokenRecord) -> bool + Send + Sync,
    ) -> Result<(SecretString, TokenRecord)> {
        let _turn = self.single_flight.lock().await;
        // Whoever held the turn before us may have refreshed already.
        if let Some(done) = self.settled(&needed).await? {
            return Ok(done);
        }
        self.locked_refresh(&needed).await
    }

    /// Re-reads the record: an error if the grant is dead, the current token if no
    /// refresh is `needed` (any more), else `None`.
    async fn settled(
        &self,
        needed: &(dyn Fn(&TokenRecord) -> bool + Send + Sync),
    ) -> Result<Option<(SecretString, TokenRecord)>> {
        let record = self.record().await?;
        if let Some(e) = self.reauth(&record) {
            return Err(e);
        }
        Ok(match record.current_access() {
            Some(token) if !needed(&record) => Some((token.clone(), record)),
            _ => None,
        })
    }

    /// Takes the store's lock, re-reads, and refreshes if still `needed`.
    async fn locked_refresh(
        &self,
        needed: &(dyn Fn(&TokenRecord) -> bool + Send + Sync),
    ) -> Result<(SecretString, TokenRecord)> {
        let started = tokio::time::Instant::now();
        loop {
            let (profile, holder, now) = (self.profile.clone(), self.holder.clone(), self.now());
            let taken = self
                .store
                .try_lock_refresh(&profile, &holder, now, LOCK_TTL)
                .await
                .map_err(store_error)?;
            if taken {
                break;
            }
            // Another process is refreshing; its result may be all we need.
            if let Some(done) = self.settled(needed).await? {
                return Ok(done);
            }
            if started.elapsed() > LOCK_WAIT {
                return Err(GotoError::Store(StoreFailure::message(
                    "timed out waiting for another process's token refresh",
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let result = self.refresh_holding_lock(needed).await;
        let (profile, holder) = (self.profile.clone(), self.holder.clone());
        let unlocked = self
            .store
            .unlock_refresh(&profile, &holder)
            .await
            .map_err(store_error);
        let outcome = result?;
        unlocked?;
        Ok(outcome)
    }

    async fn refresh_holding_lock(
        &self,
        needed: &(dyn Fn(&TokenRecord) -> bool + Send + Sync),
    ) -> Result<(SecretString, TokenRecord)> {
        if let Some(done) = self.settled(needed).await? {
            return Ok(done);
        }
        let mut record = self.record().await?;
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A login stored after this manager started (the admin console's "Connect", or
        // `g2w auth login` beside a running gateway) carries its own OAuth client.
        let oauth = match &record.client_secret {
            Some(secret) if !record.client_id.is_empty() => {
                self.oauth
                    .with_credentials(crate::oauth::ClientCredentials {
                        client_id: record.client_id.clone(),
                        client_secret: secret.clone(),
                    })
            }
            _ => self.oauth.clone(),
        };
        let answer = if let Some(rt) = &record.refresh_token {
            oauth.refresh(rt).await
        } else if let Some(pat) = &record.personal_access_token {
            oauth.exchange_pat(pat).await
        } else {
            Err(OAuthError::InvalidGrant(
                "the profile has no refresh token".into(),
            ))
        };
        let now = self.now();
        match answer {
            Ok(answer) => {
                record.apply(answer, now);
                self.save(&record).await?;
                tracing::info!(profile = %self.profile, "access token refreshed");
                let token = record.current_access().cloned().ok_or_else(|| {
                    GotoError::Store(StoreFailure::message(
                        "refreshed record has no access token",
                    ))
                })?;
                Ok((token, record))
            }
            Err(OAuthError::InvalidGrant(reason) | OAuthError::InvalidClient(reason)) => {
                let reason = format!("GoTo refused the stored authorization ({reason})");
                record.reauthorization_required = Some(reason.clone());
                self.save(&record).await?;
                tracing::warn!(profile = %self.profile, "reauthorization required");
                Err(GotoError::ReauthorizationRequired {
                    reason,
                    hint: self.reauth_hint.clone(),
                })
            }
            Err(OAuthError::Unavailable { status }) => Err(GotoError::Upstream {
                status,
                message: "token endpoint unavailable".into(),
            }),
            Err(OAuthError::Transport(e)) => Err(GotoError::Transport(e)),
            Err(other) => Err(GotoError::Decode {
                path: "token".into(),
                message: other.to_string(),
            }),
        }
    }

    /// Saves a record for this profile.
    ///
    /// # Errors
    /// [`GotoError::Store`].
    pub async fn save(&self, record: &TokenRecord) -> Result<()> {
        self.recent().take();
        let saved = self.store.save(&self.profile, record).await;
        // A call that read the store while this was being written may have kept the
        // old token.
        self.recent().take();
        saved.map_err(store_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let mut r = TokenRecord {
            access_token: Some(SecretString::from("a")),
            access_expires_at: Some(Timestamp::from_secs(10_000)),
            refresh_token_since: Some(Timestamp::EPOCH),
            ..TokenRecord::default()
        };
        let at = Timestamp::from_secs;
        assert_eq!(r.state(at(1_000)), "ok");
        assert_eq!(r.state(at(9_800)), "refresh_soon", "under 5 minutes left");
        r.access_expires_at = Some(at(30 * 86_400));
        assert_eq!(r.state(at(28 * 86_400)), "refresh_soon", "rotation due");
        r.reauthorization_required = Some("gone".into());
        assert_eq!(r.state(at(1_000)), "reauthorization_required");
    }
}
