//! The store as g2w uses it: round trips, encryption at rest, and the clear errors for
//! a corrupt file, a foreign database and a wrong key.

use g2w_goto::{ExposeSecret as _, OrganizerKey, SecretString, TokenRecord, TokenStore as _};
use g2w_store::{DB_FILE_NAME, SecretKey, SqliteStore, Store as _, StoreError};
use std::time::Duration;

use g2w_goto::Timestamp;

fn secs(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn record() -> TokenRecord {
    TokenRecord {
        client_id: "client-1".into(),
        client_secret: Some(SecretString::from("client-secret-VALUE-1234")),
        access_token: Some(SecretString::from("access-token-VALUE-5678")),
        access_expires_at: Some(secs(1_800_000_000)),
        refresh_token: Some(SecretString::from("refresh-token-VALUE-9012")),
        refresh_token_since: Some(secs(1_700_000_000)),
        personal_access_token: Some(SecretString::from("pat-VALUE-3456")),
        organizer_key: Some(OrganizerKey::new(9_007_199_254_740_993)),
        account_key: None,
        principal: Some("dana@example.com".into()),
        reauthorization_required: None,
        last_refresh_at: Some(secs(1_799_999_000)),
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_profile_round_trips_and_no_secret_is_stored_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path(), None).unwrap();
    assert!(store.load_profile("default").unwrap().is_none());
    store.save_profile("default", &record()).unwrap();
    let back = store.load_profile("default").unwrap().unwrap();
    assert_eq!(
        back.access_token.unwrap().expose_secret(),
        "access-token-VALUE-5678"
    );
    assert_eq!(
        back.refresh_token.unwrap().expose_secret(),
        "refresh-token-VALUE-9012"
    );
    assert_eq!(
        back.client_secret.unwrap().expose_secret(),
        "client-secret-VALUE-1234"
    );
    assert_eq!(
        back.organizer_key,
        Some(OrganizerKey::new(9_007_199_254_740_993))
    );
    assert_eq!(back.principal.as_deref(), Some("dana@example.com"));
    assert_eq!(store.profiles().unwrap(), ["default"]);

    // Every file the database consists of, WAL included, before and after a checkpoint.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(DB_FILE_NAME)
        {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(
        contains(&bytes, "dana@example.com"),
        "the scan reads the data"
    );
    for secret in [
        "access-token-VALUE",
        "refresh-token-VALUE",
        "client-secret-VALUE",
        "pat-VALUE",
    ] {
        assert!(!contains(&bytes, secret), "{secret} stored in plaintext");
    }
    drop(store);
    let bytes = std::fs::read(dir.path().join(DB_FILE_NAME)).unwrap();
    for secret in [
        "access-token-VALUE",
        "refresh-token-VALUE",
        "client-secret-VALUE",
        "pat-VALUE",
    ] {
        assert!(
            !contains(&bytes, secret),
            "{secret} stored in plaintext after checkpoint"
        );
    }
    assert!(
        !format!("{:?}", record()).contains("VALUE"),
        "Debug redacts"
    );
}

#[test]
fn a_wrong_key_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::generate();
    let path = dir.path().join(DB_FILE_NAME);
    SqliteStore::open(&path, &key)
        .unwrap()
        .save_profile("p", &record())
        .unwrap();
    let err = SqliteStore::open(&path, &SecretKey::generate()).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
    assert!(err.to_string().contains("G2W_SECRET_KEY"), "{err}");
    let again = SqliteStore::open(&path, &key).unwrap();
    assert!(again.load_profile("p").unwrap().is_some());
}

#[test]
fn a_corrupt_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE_NAME), vec![0x42_u8; 8192]).unwrap();
    let err = SqliteStore::open_in(dir.path(), None).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("not a usable database"), "{err}");
}

#[test]
fn a_foreign_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);")
        .unwrap();
    drop(other);
    let err = SqliteStore::open_in(dir.path(), None).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    let other = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = other
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1, "nothing was added to someone else's database");
}

#[test]
fn a_bad_env_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open_in(dir.path(), Some("not base64 at all!")).unwrap_err();
    assert!(err.to_string().contains("G2W_SECRET_KEY"), "{err}");
}

#[test]
fn the_refresh_lock_is_exclusive_until_released_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open_in(dir.path(), None).unwrap();
    let b = SqliteStore::open_in(dir.path(), None).unwrap();
    assert!(
        a.try_lock_refresh("p", "A", secs(1000), Duration::from_secs(60))
            .unwrap()
    );
    assert!(
        !b.try_lock_refresh("p", "B", secs(1001), Duration::from_secs(60))
            .unwrap(),
        "held by A"
    );
    assert!(
        a.try_lock_refresh("p", "A", secs(1002), Duration::from_secs(60))
            .unwrap(),
        "A may renew"
    );
    assert!(
        b.try_lock_refresh("other", "B", secs(1001), Duration::from_secs(60))
            .unwrap(),
        "per profile"
    );
    b.unlock_refresh("p", "B").unwrap();
    assert!(
        !b.try_lock_refresh("p", "B", secs(1003), Duration::from_secs(60))
            .unwrap(),
        "B cannot release A's lock"
    );
    assert!(
        b.try_lock_refresh("p", "B", secs(1062), Duration::from_secs(60))
            .unwrap(),
        "A's lease expired"
    );
    b.unlock_refresh("p", "B").unwrap();
    assert!(
        a.try_lock_refresh("p", "A", secs(1063), Duration::from_secs(60))
            .unwrap()
    );
}

#[test]
fn logout_deletes_only_that_profile() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path(), None).unwrap();
    store.save_profile("a", &record()).unwrap();
    store.save_profile("b", &record()).unwrap();
    assert!(store.delete_profile("a").unwrap());
    assert!(!store.delete_profile("a").unwrap());
    assert_eq!(store.profiles().unwrap(), ["b"]);
}
