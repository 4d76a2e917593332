//! The outbox contract: one scripted story every backend must pass. It runs on SQLite
//! here; a PostgreSQL backend will run the same `story` against its own store.
#![allow(clippy::unwrap_used)]

use g2w_store::{Completion, Enqueued, NewRegistration, OutboxState, OutboxStore, SqliteStore};

fn submission(id: &str, email: &str, key: Option<&str>, at: i64) -> NewRegistration {
    NewRegistration {
        id: id.into(),
        profile: "default".into(),
        webinar_key: "9007199254740993".into(),
        email: email.into(),
        payload: format!(r#"{{"email":"{email}"}}"#),
        idempotency_key: key.map(str::to_owned),
        source: Some("test".into()),
        created_at: at,
    }
}

/// The scripted story: intake, idempotency, leasing, completion, backoff, crash
/// recovery, manual retry, purge.
fn story(store: &dyn OutboxStore) {
    // Intake in one batch; a repeated idempotency key returns the first registration.
    let first = store
        .enqueue(&[
            submission("r1", "a@example.com", Some("k1"), 1_000),
            submission("r2", "b@example.com", None, 1_001),
            submission("r3", "c@example.com", Some("k1"), 1_002),
        ])
        .unwrap();
    assert!(
        matches!(&first[0], Enqueued::New(r) if r.id == "r1" && r.state == OutboxState::Pending)
    );
    assert!(matches!(&first[2], Enqueued::Existing(r) if r.id == "r1"));
    assert_eq!(
        store.registration("r3").unwrap(),
        None,
        "nothing stored for the repeat"
    );
    assert_eq!(store.counts().unwrap()[&OutboxState::Pending], 2);
    assert_eq!(store.next_due("default").unwrap(), Some(1_000));

    // Leases: oldest first, one holder at a time.
    let a = store
        .claim("default", "w1", 2_000, 60_000)
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.id.as_str(), a.state, a.attempts),
        ("r1", OutboxState::Delivering, 1)
    );
    let b = store
        .claim("default", "w2", 2_000, 60_000)
        .unwrap()
        .unwrap();
    assert_eq!(b.id, "r2");
    assert!(
        store
            .claim("default", "w3", 2_000, 60_000)
            .unwrap()
            .is_none(),
        "both leased"
    );

    // Completion needs the lease.
    let done = Completion::Delivered {
        registrant_key: "42".into(),
        join_url: "https://j/42".into(),
    };
    assert!(
        !store.complete("r1", "w2", 2_100, &done).unwrap(),
        "not w2's lease"
    );
    assert!(store.complete("r1", "w1", 2_100, &done).unwrap());
    let r1 = store.registration("r1").unwrap().unwrap();
    assert_eq!(
        (r1.state, r1.join_url.as_deref(), r1.finished_at),
        (OutboxState::Delivered, Some("https://j/42"), Some(2_100))
    );
    assert!(
        !store.complete("r1", "w1", 2_200, &done).unwrap(),
        "a finished row stays finished"
    );

    // A failed attempt goes back with a due time; a paused one does not count.
    assert!(
        store
            .release("r2", "w2", 2_100, 5_000, "GoTo 503", true)
            .unwrap()
    );
    assert!(
        store
            .claim("default", "w3", 4_999, 60_000)
            .unwrap()
            .is_none(),
        "not due yet"
    );
    let again = store
        .claim("default", "w3", 5_000, 60_000)
        .unwrap()
        .unwrap();
    assert_eq!((again.id.as_str(), again.attempts), ("r2", 2));
    assert!(
        store
            .release("r2", "w3", 5_001, 5_001, "paused", false)
            .unwrap()
    );
    assert_eq!(
        store.registration("r2").unwrap().unwrap().attempts,
        1,
        "pause undid the attempt"
    );

    // A crashed worker's lease runs out and another takes the row.
    let crashed = store
        .claim("default", "dead-worker", 6_000, 1_000)
        .unwrap()
        .unwrap();
    assert_eq!(crashed.id, "r2");
    assert!(
        store
            .claim("default", "w4", 6_500, 1_000)
            .unwrap()
            .is_none(),
        "lease still running"
    );
    let rescued = store.claim("default", "w4", 7_000, 1_000).unwrap().unwrap();
    assert_eq!(rescued.id, "r2");
    assert!(
        !store.complete("r2", "dead-worker", 7_001, &done).unwrap(),
        "the old holder lost it"
    );
    assert!(
        store
            .complete(
                "r2",
                "w4",
                7_001,
                &Completion::Failed {
                    reason: "RegistrationInvalid: email".into()
                }
            )
            .unwrap()
    );

    // Manual retry of failed rows, then listing and purging.
    assert_eq!(
        store
            .list(Some(OutboxState::Failed), None, 10)
            .unwrap()
            .len(),
        1
    );
    assert!(store.retry("r2", 8_000).unwrap());
    assert!(
        !store.retry("r1", 8_000).unwrap(),
        "delivered rows are not retried"
    );
    let retried = store.registration("r2").unwrap().unwrap();
    assert_eq!((retried.state, retried.attempts), (OutboxState::Pending, 0));
    let c = store.claim("default", "w5", 8_000, 1_000).unwrap().unwrap();
    store
        .complete(
            &c.id,
            "w5",
            8_001,
            &Completion::Dead {
                reason: "5 attempts".into(),
            },
        )
        .unwrap();
    assert_eq!(store.retry_all_failed(9_000).unwrap(), 1);
    assert!(
        !store.discard("r2").unwrap(),
        "only failed or dead rows are discarded"
    );
    assert!(!store.discard("r1").unwrap());
    assert_eq!(
        store.list(None, Some("B@EXAMPLE.COM"), 10).unwrap().len(),
        1,
        "email search ignores case"
    );
    assert_eq!(
        store.purge_delivered_before(2_100).unwrap(),
        0,
        "finished at 2100, not before"
    );
    assert_eq!(store.purge_delivered_before(2_101).unwrap(), 1);
    assert_eq!(store.registration("r1").unwrap(), None);
    let counts = store.counts().unwrap();
    assert_eq!(
        (
            counts[&OutboxState::Pending],
            counts[&OutboxState::Delivered]
        ),
        (1, 0)
    );
}

#[test]
fn sqlite_passes_the_outbox_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path(), None).unwrap();
    story(&store);
}

#[test]
fn a_committed_registration_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open_in(dir.path(), None).unwrap();
        store
            .enqueue(&[submission("kept", "k@example.com", None, 1)])
            .unwrap();
    }
    let store = SqliteStore::open_in(dir.path(), None).unwrap();
    assert_eq!(
        store.registration("kept").unwrap().unwrap().state,
        OutboxState::Pending
    );
}

#[test]
fn a_failed_registration_can_be_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path(), None).unwrap();
    store
        .enqueue(&[submission("f1", "f@example.com", None, 1)])
        .unwrap();
    let c = store.claim("default", "w", 2, 1_000).unwrap().unwrap();
    assert!(
        !store.discard(&c.id).unwrap(),
        "not while it is being delivered"
    );
    store
        .complete(
            &c.id,
            "w",
            3,
            &Completion::Failed {
                reason: "refused".into(),
            },
        )
        .unwrap();
    assert!(store.discard("f1").unwrap());
    assert_eq!(store.registration("f1").unwrap(), None);
}

#[test]
fn a_worker_only_claims_its_own_profiles_registrations() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path(), None).unwrap();
    let mut other = submission("o1", "o@example.com", None, 1);
    other.profile = "other-account".into();
    store
        .enqueue(&[other, submission("d1", "d@example.com", None, 2)])
        .unwrap();
    assert_eq!(store.next_due("default").unwrap(), Some(2));
    assert_eq!(
        store.claim("default", "w", 10, 1_000).unwrap().unwrap().id,
        "d1"
    );
    assert!(
        store.claim("default", "w", 10, 1_000).unwrap().is_none(),
        "the other profile's registration is not this worker's to send"
    );
    assert_eq!(
        store
            .claim("other-account", "w2", 10, 1_000)
            .unwrap()
            .unwrap()
            .id,
        "o1"
    );
    assert_eq!(store.next_due("nobody").unwrap(), None);
}
