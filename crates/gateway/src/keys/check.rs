//! Checking the key a request carries: read from the store on every use (a key revoked
//! or expired on any gateway is refused by all of them at once), compared by digest in
//! constant time, and every wrong key counted against its caller's address, so guessing
//! costs the guesser waits and the server next to nothing (a digest and one indexed
//! read; the failures of a burst sent at once are counted as they come back).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use g2w_goto::Timestamp;
use g2w_store::{KeyRecord, Store};

use super::{Scope, digest, prefix_of};
use crate::error::ApiError;
use crate::signing::same;

/// Wrong keys an address may send within [`GUESS_WINDOW`].
const GUESSES: usize = 10;
const GUESS_WINDOW: Duration = Duration::from_secs(60);
/// "Last used" is written at most this often per key (not once per call).
const USE_NOTED_EVERY: Duration = Duration::from_secs(60);

/// Why a key was not good enough.
#[derive(Debug)]
pub(crate) enum Denied {
    /// No key, a malformed one, or one that does not exist.
    Invalid,
    /// Revoked (or expired) at that time.
    Revoked { expired: bool },
    /// Not for this organizer.
    OrganizerNotAllowed(String),
    /// Not for this.
    ScopeNotAllowed(Scope),
    /// Too many wrong keys from this address lately.
    RateLimited(Duration),
    /// The store could not say.
    Unavailable,
}

impl Denied {
    /// The answer for it.
    pub(crate) fn api_error(&self) -> ApiError {
        match self {
            Self::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_key",
                "send a g2w API key as `Authorization: Bearer g2w_…` (make one with `g2w keys create`)",
            ),
            Self::Revoked { expired: false } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "key_revoked",
                "this key was revoked: ask for a new one (`g2w keys create`)",
            ),
            Self::Revoked { expired: true } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "key_revoked",
                "this key has expired: ask for a new one (`g2w keys create`)",
            )
            .with("expired", true),
            Self::OrganizerNotAllowed(organizer) => ApiError::new(
                StatusCode::FORBIDDEN,
                "organizer_not_allowed",
                format!("this key may not act for organizer {organizer:?}"),
            )
            .with("organizer", organizer.as_str()),
            Self::ScopeNotAllowed(scope) => ApiError::new(
                StatusCode::FORBIDDEN,
                "scope_not_allowed",
                format!("this key does not have the {:?} scope", scope.as_str()),
            )
            .with("scope", scope.as_str()),
            Self::RateLimited(wait) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many wrong keys from this address; try again later",
            )
            .retry_after(*wait),
            Self::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "keys cannot be checked right now; try again shortly",
            )
            .retry_after(Duration::from_secs(5)),
        }
    }
}

/// The key in `Authorization: Bearer …`, if the header is there.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (kind, key) = value.split_once(' ')?;
    kind.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// Whether `headers` carry one of our keys (rather than some other bearer token).
pub(crate) fn carries_key(headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|k| k.starts_with(super::KEY_START))
}

/// Key checks: the wrong keys by address, and when each key's use was last written.
#[derive(Debug)]
pub(crate) struct KeyChecks {
    guesses: crate::limiter::FailureWindow,
    noted: Mutex<HashMap<String, Instant>>,
}

impl Default for KeyChecks {
    fn default() -> Self {
        Self {
            guesses: crate::limiter::FailureWindow::new(GUESSES, GUESS_WINDOW),
            noted: Mutex::default(),
        }
    }
}

impl KeyChecks {
    /// The key `headers` carry, if it is a good one with `scope`, for a caller at `ip`.
    pub(crate) async fn check(
        &self,
        store: &Store,
        ip: IpAddr,
        headers: &HeaderMap,
        scope: Scope,
        now: Timestamp,
    ) -> Result<KeyRecord, Denied> {
        if let Some(wait) = self.guesses.refused_for(ip, Instant::now()) {
            return Err(Denied::RateLimited(wait));
        }
        let key = match self.known(store, headers).await {
            Ok(key) => key,
            Err(Denied::Invalid) => {
                self.guesses.failed(ip, Instant::now());
                return Err(Denied::Invalid);
            }
            Err(other) => return Err(other),
        };
        if key.revoked_at.is_some() {
            return Err(Denied::Revoked { expired: false });
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(Denied::Revoked { expired: true });
        }
        if !key.scopes.iter().any(|s| s == scope.as_str()) {
            return Err(Denied::ScopeNotAllowed(scope));
        }
        self.note_use(store, &key.prefix, now).await;
        Ok(key)
    }

    /// The stored key the header names, if the header holds it exactly.
    async fn known(&self, store: &Store, headers: &HeaderMap) -> Result<KeyRecord, Denied> {
        let given = bearer(headers).ok_or(Denied::Invalid)?;
        let prefix = prefix_of(given).ok_or(Denied::Invalid)?;
        let key = store
            .key_by_prefix(prefix)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "could not read an API key");
                Denied::Unavailable
            })?
            .ok_or(Denied::Invalid)?;
        if same(&digest(given), &key.digest) {
            Ok(key)
        } else {
            Err(Denied::Invalid)
        }
    }

    /// Writes when `prefix` was used, at most once a minute.
    async fn note_use(&self, store: &Store, prefix: &str, now: Timestamp) {
        let due = {
            let mut noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
            let at = Instant::now();
            match noted.get(prefix) {
                Some(last) if at.duration_since(*last) < USE_NOTED_EVERY => false,
                _ => {
                    noted.insert(prefix.to_owned(), at);
                    true
                }
            }
        };
        if due && let Err(e) = store.key_used(prefix, now).await {
            tracing::warn!(error = %e, "could not note an API key's use");
        }
    }
}

/// Whether `key` may act for the organizer whose login is stored as `profile`.
pub(crate) fn allows(key: &KeyRecord, profile: &str) -> Result<(), Denied> {
    if key.organizers.iter().any(|o| o == profile) {
        Ok(())
    } else {
        Err(Denied::OrganizerNotAllowed(profile.to_owned()))
    }
}
