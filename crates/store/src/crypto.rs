//! Encryption at rest: XChaCha20-Poly1305 with a random 24-byte nonce per value and the
//! value's place (profile and column) as associated data, so a ciphertext copied into
//! another row or column fails to open.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::Rng as _;

use crate::StoreError;

const NONCE_LEN: usize = 24;

/// The 32-byte key that encrypts secrets in the store. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// The name of the key file created beside the database when `G2W_SECRET_KEY` is unset.
pub const KEY_FILE_NAME: &str = "g2w.key";

impl SecretKey {
    /// Parses base64 (standard or URL-safe) of exactly 32 bytes.
    ///
    /// # Errors
    /// [`StoreError::BadSecretKey`] naming `origin`.
    pub fn from_base64(text: &str, origin: &str) -> Result<Self, StoreError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| StoreError::BadSecretKey(format!("{origin} is not base64")))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            StoreError::BadSecretKey(format!("{origin} must be 32 bytes, not {}", b.len()))
        })?;
        Ok(Self(key))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self(rand::rng().random())
    }

    /// The key as base64, for writing to a key file or an environment variable.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key from `env_value` (the content of `G2W_SECRET_KEY`) if given, else from
    /// the key file in `dir`, which is created with mode 0600 when missing.
    ///
    /// # Errors
    /// A malformed key, or a key file that cannot be read or created.
    pub fn resolve(env_value: Option<&str>, dir: &Path) -> Result<Self, StoreError> {
        if let Some(value) = env_value {
            return Self::from_base64(value, "G2W_SECRET_KEY");
        }
        let path = dir.join(KEY_FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text, &format!("the key file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create_file(&path),
            Err(e) => Err(StoreError::KeyFile { path, source: e }),
        }
    }

    fn create_file(path: &PathBuf) -> Result<Self, StoreError> {
        let key = Self::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(key.to_base64().as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| StoreError::KeyFile {
                        path: path.clone(),
                        source: e,
                    })?;
                Ok(key)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(|e| StoreError::KeyFile {
                    path: path.clone(),
                    source: e,
                })?;
                Self::from_base64(&text, &format!("the key file {}", path.display()))
            }
            Err(e) => Err(StoreError::KeyFile {
                path: path.clone(),
                source: e,
            }),
        }
    }
}

/// Seals and opens values with one key.
pub(crate) struct Cipher(XChaCha20Poly1305);

impl Cipher {
    pub fn new(key: &SecretKey) -> Self {
        Self(XChaCha20Poly1305::new(Key::from_slice(&key.0)))
    }

    pub fn seal(&self, place: &str, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto(format!("cannot encrypt {place}")))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(out)
    }

    pub fn open(&self, place: &str, blob: &[u8]) -> Result<Vec<u8>, StoreError> {
        if blob.len() < NONCE_LEN {
            return Err(StoreError::Crypto(format!(
                "{place} is too short to be encrypted"
            )));
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto(format!("{place} cannot be decrypted with this key")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_place_and_with_their_key() {
        let key = SecretKey::generate();
        let cipher = Cipher::new(&key);
        let blob = cipher
            .seal("profile:a:access_token", b"secret-token")
            .unwrap();
        assert!(!blob.windows(12).any(|w| w == b"secret-token"));
        assert_eq!(
            cipher.open("profile:a:access_token", &blob).unwrap(),
            b"secret-token"
        );
        assert!(
            cipher.open("profile:b:access_token", &blob).is_err(),
            "moved to another row"
        );
        assert!(
            Cipher::new(&SecretKey::generate())
                .open("profile:a:access_token", &blob)
                .is_err()
        );
        assert!(cipher.open("x", b"short").is_err());
        assert_ne!(
            cipher.seal("p", b"same").unwrap(),
            cipher.seal("p", b"same").unwrap(),
            "fresh nonces"
        );
    }

    #[test]
    fn keys_parse_strictly_and_never_print() {
        let key = SecretKey::generate();
        let again = SecretKey::from_base64(&key.to_base64(), "test").unwrap();
        assert_eq!(again.0, key.0);
        assert!(SecretKey::from_base64("c2hvcnQ=", "G2W_SECRET_KEY").is_err());
        let err = SecretKey::from_base64("!!!", "G2W_SECRET_KEY")
            .unwrap_err()
            .to_string();
        assert!(err.contains("G2W_SECRET_KEY"), "{err}");
        assert_eq!(format!("{key:?}"), "SecretKey([redacted])");
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretKey::resolve(None, dir.path()).unwrap();
        let second = SecretKey::resolve(None, dir.path()).unwrap();
        assert_eq!(first.0, second.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let from_env =
            SecretKey::resolve(Some(&first.to_base64()), Path::new("/nonexistent")).unwrap();
        assert_eq!(from_env.0, first.0);
        std::fs::write(dir.path().join(KEY_FILE_NAME), "garbage").unwrap();
        let err = SecretKey::resolve(None, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("key file"), "{err}");
    }
}
