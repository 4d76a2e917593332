//! API keys: how other programs (a landing-page app, a CRM sync, a notebook) use the
//! logins g2w keeps, without holding GoTo tokens of their own. A key says which
//! organizers it may act for and what it may do ([`Scope`]); the store keeps its digest
//! only. Made here for the CLI and the console alike; checked on every use against the
//! store ([`check`]), so a key revoked on one gateway is refused by all of them at once.

pub(crate) mod check;

use g2w_goto::{SecretString, Timestamp};
use g2w_store::{KeyRecord, Store};
use sha2::Digest as _;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Get a fresh access token of an organizer (`GET /api/v1/organizers/{o}/token`).
    Token,
    /// Call GoTo's API through g2w (`/goto/{o}/…`), on the account's shared budget.
    Proxy,
    /// Register people through the registration API, without the per-address limit.
    Register,
}

impl Scope {
    /// Every scope, in the order they are shown.
    pub const ALL: [Self; 3] = [Self::Token, Self::Proxy, Self::Register];

    /// Its name, as typed and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Proxy => "proxy",
            Self::Register => "register",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim())
            .ok_or_else(|| format!("unknown scope {text:?}: use token, proxy or register"))
    }
}

/// What every key starts with, so a leaked one is recognisable (secret scanners, logs).
pub const KEY_START: &str = "g2w_";
/// Characters of the public part after [`KEY_START`].
const ID_LEN: usize = 8;
/// Random bytes of the secret part: 256 bits.
const SECRET_BYTES: usize = 32;

/// A key just made: the key itself (shown once, never stored) and what is stored.
pub struct NewKey {
    /// The whole key, `g2w_<id>_<secret>`.
    pub key: SecretString,
    /// What the store keeps.
    pub record: KeyRecord,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("key", &"[redacted]")
            .field("record", &self.record)
            .finish()
    }
}

/// SHA-256 of a whole key: what the store keeps and compares. A key carries 256 random
/// bits, so a plain digest is as strong as a slow hash here, and checking costs
/// microseconds.
pub(crate) fn digest(key: &str) -> Vec<u8> {
    sha2::Sha256::digest(key.as_bytes()).to_vec()
}

/// The public part of `key` (`g2w_<id>`), when it is shaped like one of ours.
pub(crate) fn prefix_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_START)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && (40..=64).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| &key[..KEY_START.len() + ID_LEN])
}

/// Whether `name` can name a key: 1 to 64 letters, digits, `-`, `_` or `.`.
fn check_name(name: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if fine && !name.starts_with(KEY_START) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} cannot name a key: use 1 to 64 letters, digits, '-', '_' or '.' (and not the {KEY_START} of a key)"
        ))
    }
}

/// Makes a key named `name` for `organizers` with `scopes`, working until `expires_at`,
/// and stores its digest.
///
/// # Errors
/// A bad name, no organizer or scope, a name already taken, or the store failing.
pub async fn create(
    store: &Store,
    name: &str,
    organizers: &[String],
    scopes: &[Scope],
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<NewKey, String> {
    use base64::Engine as _;
    use rand::Rng as _;
    check_name(name)?;
    if organizers.is_empty() {
        return Err("a key acts for at least one organizer: give --organizer PROFILE".into());
    }
    if scopes.is_empty() {
        return Err("a key needs at least one scope: --scope token,proxy,register".into());
    }
    if expires_at.is_some_and(|at| at <= now) {
        return Err("the key would have expired already".into());
    }
    const ID_CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyz23456789";
    // The generator is not kept across the store's await (it is not `Send`).
    let (id, secret): (String, [u8; SECRET_BYTES]) = {
        let mut rng = rand::rng();
        let id = (0..ID_LEN)
            .map(|_| char::from(ID_CHARS[rng.random_range(0..ID_CHARS.len())]))
            .collect();
        (id, rng.random())
    };
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let key = format!("{KEY_START}{id}_{secret}");
    let mut organizers = organizers.to_vec();
    organizers.sort();
    organizers.dedup();
    let mut scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    let record = KeyRecord {
        prefix: format!("{KEY_START}{id}"),
        name: name.to_owned(),
        digest: digest(&key),
        organizers,
        scopes: scopes.into_iter().map(str::to_owned).collect(),
        created_at: now,
        last_used_at: None,
        expires_at,
        revoked_at: None,
    };
    match store.add_key(&record).await {
        Ok(true) => Ok(NewKey {
            key: SecretString::from(key),
            record,
        }),
        Ok(false) => Err(format!(
            "a key named {name:?} exists already: revoke it, or pick another name"
        )),
        Err(e) => Err(format!("could not store the key: {e}")),
    }
}

/// The most life a hand-out may ask a token to have left: GoTo's tokens live 3,600 s,
/// and a fresh one must be able to satisfy it.
pub const MAX_MIN_TTL: u64 = 3_000;

/// A token as handed out (by the gateway, and by `g2w auth token --format json`): the
/// token, when it expires, and whom it acts for. Keys are strings, never numbers that
/// a JSON reader could round.
pub fn handed_out(
    token: &SecretString,
    login: &g2w_goto::TokenRecord,
    now: Timestamp,
) -> serde_json::Value {
    use g2w_goto::ExposeSecret as _;
    let expires_at = login.access_expires_at;
    serde_json::json!({
        "access_token": token.expose_secret(),
        "token_type": "Bearer",
        "expires_at": expires_at.map(Timestamp::to_rfc3339),
        "expires_in": expires_at.map_or(0, |at| at.since(now).as_secs()),
        "organizer_key": login.organizer_key.map(|k| k.to_string()),
        "account_key": login.account_key.map(|k| k.to_string()),
        "scope": login.scope,
    })
}

/// How often the audit's old rows are removed.
const PRUNED_EVERY: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Removes audit rows older than `kept`, now and then every hour (until aborted).
pub(crate) async fn prune_audit(
    store: std::sync::Arc<Store>,
    clock: g2w_goto::Clock,
    kept: std::time::Duration,
) {
    loop {
        let before = Timestamp::from_millis(
            clock()
                .as_millis()
                .saturating_sub(i64::try_from(kept.as_millis()).unwrap_or(i64::MAX)),
        );
        match store.prune_key_audit(before).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed old rows of the API keys' audit"),
            Err(e) => {
                tracing::warn!(error = %e, "could not remove old rows of the API keys' audit")
            }
        }
        tokio::time::sleep(PRUNED_EVERY).await;
    }
}

/// Where a key stands at `now`: `active`, `expired` or `revoked`.
pub fn state(key: &KeyRecord, now: Timestamp) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_shaped_like_ours_have_a_prefix() {
        let key = format!("g2w_abcd2345_{}", "A".repeat(43));
        assert_eq!(prefix_of(&key), Some("g2w_abcd2345"));
        for bad in [
            "",
            "g2w_",
            "g2w_abcd2345",
            "g2w_abcd2345_short",
            "g2w_abc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "gho_abcd2345_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "g2w_abcd2345_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\u{e9}",
            "g2w_abcd/345_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(prefix_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("crm-sync").is_ok());
        for bad in ["", "a b", "g2w_x", &"x".repeat(65), "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
