//! The store as g2w uses it: round trips, encryption at rest, and the clear errors for
//! a corrupt file, a foreign database and a wrong key.

use g2w_goto::{ExposeSecret as _, OrganizerKey, SecretString, TokenRecord, TokenStore as _};
use g2w_store::{DB_FILE_NAME, SecretKey, Store, StoreError};
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
        scope: Some("collab:".into()),
        auth_url: Some("http://127.0.0.1:9/".into()),
        api_url: None,
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_profile_round_trips_and_no_secret_is_stored_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path(), None).await.unwrap();
    assert!(store.load_profile("default").await.unwrap().is_none());
    store.save_profile("default", &record()).await.unwrap();
    let back = store.load_profile("default").await.unwrap().unwrap();
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
    assert_eq!(store.profiles().await.unwrap(), ["default"]);

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

#[tokio::test]
async fn a_wrong_key_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::generate();
    let path = dir.path().join(DB_FILE_NAME);
    Store::sqlite(&path, &key)
        .await
        .unwrap()
        .save_profile("p", &record())
        .await
        .unwrap();
    let err = Store::sqlite(&path, &SecretKey::generate())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
    assert!(err.to_string().contains("G2W_SECRET_KEY"), "{err}");
    let again = Store::sqlite(&path, &key).await.unwrap();
    assert!(again.load_profile("p").await.unwrap().is_some());
}

#[tokio::test]
async fn a_corrupt_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE_NAME), vec![0x42_u8; 8192]).unwrap();
    let err = Store::open_in(dir.path(), None).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("not a usable database"), "{err}");
}

#[tokio::test]
async fn a_foreign_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE_NAME);
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);")
        .unwrap();
    drop(other);
    let err = Store::open_in(dir.path(), None).await.unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    let other = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = other
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1, "nothing was added to someone else's database");
}

#[tokio::test]
async fn a_bad_env_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_in(dir.path(), Some("not base64 at all!"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("G2W_SECRET_KEY"), "{err}");
}

#[tokio::test]
async fn the_refresh_lock_is_exclusive_until_released_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open_in(dir.path(), None).await.unwrap();
    let b = Store::open_in(dir.path(), None).await.unwrap();
    assert!(
        a.try_lock_refresh("p", "A", secs(1000), Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        !b.try_lock_refresh("p", "B", secs(1001), Duration::from_secs(60))
            .await
            .unwrap(),
        "held by A"
    );
    assert!(
        a.try_lock_refresh("p", "A", secs(1002), Duration::from_secs(60))
            .await
            .unwrap(),
        "A may renew"
    );
    assert!(
        b.try_lock_refresh("other", "B", secs(1001), Duration::from_secs(60))
            .await
            .unwrap(),
        "per profile"
    );
    b.unlock_refresh("p", "B").await.unwrap();
    assert!(
        !b.try_lock_refresh("p", "B", secs(1003), Duration::from_secs(60))
            .await
            .unwrap(),
        "B cannot release A's lock"
    );
    assert!(
        b.try_lock_refresh("p", "B", secs(1062), Duration::from_secs(60))
            .await
            .unwrap(),
        "A's lease expired"
    );
    b.unlock_refresh("p", "B").await.unwrap();
    assert!(
        a.try_lock_refresh("p", "A", secs(1063), Duration::from_secs(60))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn logout_deletes_only_that_profile() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path(), None).await.unwrap();
    store.save_profile("a", &record()).await.unwrap();
    store.save_profile("b", &record()).await.unwrap();
    assert!(store.delete_profile("a").await.unwrap());
    assert!(!store.delete_profile("a").await.unwrap());
    assert_eq!(store.profiles().await.unwrap(), ["b"]);
}

/// A file made by a g2w from before refinery: its migrations run by hand, counted in
/// `PRAGMA user_version`.
fn old_style_file(dir: &std::path::Path, version: i64) -> std::path::PathBuf {
    let path = dir.join(DB_FILE_NAME);
    let conn = rusqlite::Connection::open(&path).unwrap();
    for script in [
        include_str!("../../migrations/sqlite/V1__profiles.sql"),
        include_str!("../../migrations/sqlite/V2__outbox.sql"),
        include_str!("../../migrations/sqlite/V3__import_journal.sql"),
        include_str!("../../migrations/sqlite/V4__outbox_fencing.sql"),
        include_str!("../../migrations/sqlite/V5__sessions_budget.sql"),
        include_str!("../../migrations/sqlite/V6__webhook_events.sql"),
    ] {
        conn.execute_batch(script).unwrap();
    }
    conn.pragma_update(None, "application_id", 0x6732_7721_i64)
        .unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
    conn.execute(
        "INSERT INTO outbox (id, profile, webinar_key, email, payload, state, next_attempt_at,
             created_at, updated_at) VALUES ('old', 'default', '1', 'a@example.com', '{}',
             'pending', 1, 1, 1)",
        [],
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_file_from_an_earlier_g2w_is_adopted_without_running_its_migrations_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = old_style_file(dir.path(), 6);
    let key = SecretKey::generate();
    let store = Store::sqlite(&path, &key).await.unwrap();
    assert_eq!(
        store.registration("old").await.unwrap().unwrap().email,
        "a@example.com",
        "its data is kept"
    );
    store.save_profile("p", &record()).await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let applied: i64 = conn
        .query_row("SELECT count(*) FROM refinery_schema_history", [], |r| {
            r.get(0)
        })
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(
        applied >= 7,
        "the six old ones marked, the new ones run: {applied}"
    );
    assert_eq!(
        version, applied,
        "an older g2w sees the file is newer than it"
    );
    // Opening again changes nothing and works.
    let again = Store::sqlite(&path, &key).await.unwrap();
    assert!(again.load_profile("p").await.unwrap().is_some());
}

#[tokio::test]
async fn a_file_from_a_newer_g2w_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = old_style_file(dir.path(), 99);
    let err = Store::sqlite(&path, &SecretKey::generate())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err:?}"
    );
}
