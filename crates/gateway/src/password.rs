//! The admin console's password: from `G2W_ADMIN_PASSWORD`, or a stored argon2id hash
//! (PHC string). An older g2w's iterated-SHA-256 hash is still accepted, within a
//! bounded cost, and replaced at the next sign-in.

use base64::Engine as _;
use g2w_goto::{ExposeSecret as _, SecretString};
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

/// Older g2w stored `sha256i$ROUNDS$SALT$HASH`; a stored count above this is refused
/// rather than run (a tampered setting must not stall sign-in for hours).
const LEGACY_MAX_ROUNDS: u32 = 1_000_000;

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

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
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
    #[doc(hidden)]
    pub fn legacy_hash(password: &str, rounds: u32) -> String {
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
    pub(crate) fn verify(&self, candidate: &str) -> Verdict {
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
                use argon2::PasswordVerifier as _;
                accepted(argon2::PasswordHash::new(stored).is_ok_and(|h| {
                    argon2::Argon2::default()
                        .verify_password(candidate.as_bytes(), &h)
                        .is_ok()
                }))
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
