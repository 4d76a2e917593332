//! The admin console's password: from `G2W_ADMIN_PASSWORD`, or a stored argon2id hash
//! (PHC string). An older g2w's iterated-SHA-256 hash is still accepted, within a
//! bounded cost, and replaced at the next sign-in.
//!
//! Checking an argon2id hash holds 19 MiB (OWASP's parameters) for tens of
//! milliseconds. [`PasswordChecks`] runs a few checks at a time, each in memory kept
//! from the last one, so a flood of sign-ins costs time, never memory: the allocator is
//! not asked for a fresh 19 MiB per attempt on whichever blocking thread runs it (which
//! it would keep, per thread, long after).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Block;
use base64::Engine as _;
use g2w_goto::{ExposeSecret as _, SecretString};
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

/// Older g2w stored `sha256i$ROUNDS$SALT$HASH`; a stored count above this is refused
/// rather than run (a tampered setting must not stall sign-in for hours).
const LEGACY_MAX_ROUNDS: u32 = 1_000_000;
/// The most memory (KiB) and passes a stored argon2 hash may ask for, for the same
/// reason: OWASP's 19 MiB and 2 passes fit well within them.
const MAX_M_COST_KIB: u32 = 64 * 1024;
const MAX_T_COST: u32 = 10;

/// How the admin password is checked.
#[derive(Clone)]
pub enum AdminPassword {
    /// Compared with this (from `G2W_ADMIN_PASSWORD`).
    Plain(SecretString),
    /// Checked against a stored hash: an argon2id PHC string (or an older g2w's
    /// iterated SHA-256, upgraded at the next sign-in).
    Hashed(String),
}

impl std::fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminPassword([redacted])")
    }
}

fn stretch(salt: &[u8], password: &str, rounds: u32) -> [u8; 32] {
    let mut digest: [u8; 32] = Sha256::new()
        .chain_update(salt)
        .chain_update(password.as_bytes())
        .finalize()
        .into();
    for _ in 1..rounds {
        digest = Sha256::new()
            .chain_update(salt)
            .chain_update(digest)
            .finalize()
            .into();
    }
    digest
}

/// Compares without leaking where the first difference is.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What checking a password found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Wrong.
    Refused,
    /// Right.
    Accepted,
    /// Right, and stored in an old form: this argon2id hash should replace it.
    AcceptedUpgrade(String),
}

impl AdminPassword {
    /// A stored form of `password`: an argon2id PHC string (`$argon2id$v=19$…`).
    pub fn hash(password: &str) -> String {
        use argon2::PasswordHasher as _;
        let salt_bytes: [u8; 16] = rand::rng().random();
        let hashed = argon2::password_hash::SaltString::encode_b64(&salt_bytes).and_then(|salt| {
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        });
        // Unreachable with a 16-byte salt; an unusable hash refuses every password.
        hashed.unwrap_or_else(|_| "unusable".to_owned())
    }

    /// An older g2w's stored form (kept so that its upgrade path stays tested).
    #[cfg(any(test, feature = "testing"))]
    pub fn legacy_hash(password: &str, rounds: u32) -> String {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        let salt: [u8; 16] = rand::rng().random();
        format!(
            "sha256i${rounds}${}${}",
            b64(&salt),
            b64(&stretch(&salt, password, rounds))
        )
    }

    /// A fresh random password to print once.
    pub fn generate() -> String {
        let bytes: [u8; 15] = rand::rng().random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Checks `candidate` (slow by design: run it off the async threads).
    #[cfg(test)]
    pub(crate) fn verify(&self, candidate: &str) -> Verdict {
        self.verify_in(candidate, &mut Vec::new())
    }

    /// Checks `candidate`, hashing in `memory` (grown as the stored hash needs, and
    /// left for the next check).
    fn verify_in(&self, candidate: &str, memory: &mut Vec<Block>) -> Verdict {
        let accepted = |ok: bool| {
            if ok {
                Verdict::Accepted
            } else {
                Verdict::Refused
            }
        };
        match self {
            // Digests have one length, so even the password's length does not leak.
            Self::Plain(p) => accepted(same(
                &Sha256::digest(p.expose_secret().as_bytes()),
                &Sha256::digest(candidate.as_bytes()),
            )),
            Self::Hashed(stored) if stored.starts_with("$argon2") => {
                accepted(argon2_matches(stored, candidate, memory))
            }
            Self::Hashed(stored) => {
                let parts: Vec<&str> = stored.split('$').collect();
                let [scheme, rounds, salt, hash] = parts.as_slice() else {
                    return Verdict::Refused;
                };
                let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
                let ok = match (
                    rounds.parse::<u32>(),
                    engine.decode(salt),
                    engine.decode(hash),
                ) {
                    (Ok(rounds), Ok(salt), Ok(hash))
                        if *scheme == "sha256i" && (1..=LEGACY_MAX_ROUNDS).contains(&rounds) =>
                    {
                        same(&stretch(&salt, candidate, rounds), &hash)
                    }
                    _ => false,
                };
                if ok {
                    Verdict::AcceptedUpgrade(Self::hash(candidate))
                } else {
                    Verdict::Refused
                }
            }
        }
    }
}

/// Whether `candidate` hashes to the stored argon2 PHC string, computed in `memory`.
fn argon2_matches(stored: &str, candidate: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = argon2::PasswordHash::new(stored) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB || params.t_cost() > MAX_T_COST {
        tracing::error!(
            "the stored admin password hash asks for more than g2w allows (m={} KiB, t={}); set G2W_ADMIN_PASSWORD",
            params.m_cost(),
            params.t_cost()
        );
        return false;
    }
    let mut salt_bytes = [0_u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0_u8; expected.len()];
    argon2::Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(candidate.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_ok()
        && same(&out, expected.as_bytes())
}

/// Admin password checks, at most `concurrency` at a time, each hashing in memory kept
/// from an earlier check.
pub(crate) struct PasswordChecks {
    slots: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl PasswordChecks {
    pub(crate) fn new(concurrency: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::default(),
        }
    }

    /// Checks `candidate` against `password` once a slot is free, waiting at most
    /// `wait` for one; `None` when none came free in time.
    pub(crate) async fn verify(
        &self,
        password: AdminPassword,
        candidate: String,
        wait: Duration,
    ) -> Option<Verdict> {
        let slot = tokio::time::timeout(wait, self.slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        let pool = self.memory.clone();
        let checked = tokio::task::spawn_blocking(move || {
            // The slot and the memory go with the check, not with the request: a visitor
            // who hangs up mid-check frees neither early.
            let _slot = slot;
            let take = || pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut memory = take().unwrap_or_default();
            let verdict = password.verify_in(&candidate, &mut memory);
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(memory);
            verdict
        })
        .await;
        Some(checked.unwrap_or(Verdict::Refused))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_when_right() {
        use Verdict::{Accepted, AcceptedUpgrade, Refused};
        let stored = AdminPassword::Hashed(AdminPassword::hash("correct horse"));
        assert_eq!(stored.verify("correct horse"), Accepted);
        assert_eq!(stored.verify("correct horse "), Refused);
        assert_eq!(AdminPassword::Hashed("garbage".into()).verify(""), Refused);
        assert_eq!(
            AdminPassword::Hashed("sha256i$0$AAAA$AAAA".into()).verify(""),
            Refused
        );
        let legacy = AdminPassword::Hashed(AdminPassword::legacy_hash("old", 10));
        assert!(matches!(legacy.verify("old"), AcceptedUpgrade(h) if h.starts_with("$argon2id$")));
        assert_eq!(legacy.verify("new"), Refused);
        let plain = AdminPassword::Plain(SecretString::from("s3cret"));
        assert_eq!(plain.verify("s3cret"), Accepted);
        assert_eq!(plain.verify("s3cre"), Refused);
        assert_eq!(format!("{plain:?}"), "AdminPassword([redacted])");
        assert_ne!(AdminPassword::generate(), AdminPassword::generate());
    }
}
