//! A database made and filled by the previous release (the outbox table and forwarding
//! columns on the events) migrates to the jobs table with nothing lost and nothing sent
//! twice: every registration and event keeps its state, attempts, fence, give-up clock,
//! error and answer, and only what was waiting is claimed again.

use std::time::Duration;

use g2w_goto::{RegistrantKey, Timestamp};
use g2w_store::{
    Claim, Enqueued, ForwardState, NewRegistration, OutboxState, QueueName, SecretKey, Store,
};

/// The previous release's newest migration, per backend.
const SQLITE_BEFORE: u32 = 8;
const POSTGRES_BEFORE: u32 = 4;

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// Rows as the previous release wrote them: one registration in each state, one event in
/// each forwarding state.
const OLD_ROWS: &[&str] = &[
    "INSERT INTO outbox (id, profile, webinar_key, email, payload, idempotency_key, source,
         state, attempts, next_attempt_at, lease_holder, lease_until, registrant_key, join_url,
         last_error, created_at, updated_at, finished_at, fence, failing_since, validated)
     VALUES
     ('w1', 'default', '9007199254740993', 'wait@example.com', '{\"email\":\"wait@example.com\"}',
      'key-1', 'landing', 'pending', 2, 5000, NULL, NULL, NULL, NULL, 'GoTo 503', 1000, 1500,
      NULL, 3, 1500, TRUE),
     ('w2', 'default', '9007199254740993', 'flight@example.com', '{}', NULL, NULL,
      'delivering', 1, 1100, 'old-gateway', 2000, NULL, NULL, NULL, 1100, 1100, NULL, 4, NULL,
      FALSE),
     ('w3', 'default', '9007199254740993', 'done@example.com', '{}', NULL, NULL, 'delivered',
      1, 1200, NULL, NULL, '111', 'https://example.com/join/111', NULL, 1200, 3000, 3000, 1,
      NULL, TRUE),
     ('w4', 'second', '9007199254740993', 'again@example.com', '{}', NULL, NULL,
      'already_registered', 1, 1300, NULL, NULL, '222', 'https://example.com/join/222', NULL,
      1300, 3100, 3100, 1, NULL, TRUE),
     ('w5', 'default', '9007199254740993', 'bad@example.com', '{}', NULL, NULL, 'failed', 1,
      1400, NULL, NULL, NULL, NULL, 'RegistrationInvalid: email', 1400, 3200, 3200, 1, NULL,
      TRUE),
     ('w6', 'default', '9007199254740993', 'gone@example.com', '{}', NULL, NULL, 'dead', 40,
      1500, NULL, NULL, NULL, NULL, 'GoTo kept failing for 72 h', 1500, 3300, 3300, 40, 1500,
      TRUE)",
    "INSERT INTO webhook_events (event_key, natural_key, event_name, source, webinar_key,
         registrant_key, session_key, email, headers, body, received_at, forward_state,
         forward_attempts, forward_next_at, forward_lease_until, forward_error, forward_fence,
         forward_failing_since)
     VALUES
     ('e1', NULL, 'webinar.created', 'webhook', '1', NULL, NULL, NULL, '{}', '{\"a\":1}', 100,
      'none', 0, NULL, NULL, NULL, 0, NULL),
     ('e2', 'added:1:2', 'registrant.added', 'webhook', '1', '2', NULL, 'x@example.com', '{}',
      '{\"b\":2}', 200, 'pending', 1, 4000, NULL, 'HTTP 503', 1, 200),
     ('e3', NULL, 'registrant.joined', 'webhook', '1', '3', NULL, NULL, '{}', '{\"c\":3}', 300,
      'delivering', 1, 300, 2500, NULL, 2, NULL),
     ('e4', NULL, 'webinar.changed', 'webhook', '1', NULL, NULL, NULL, '{}', '{\"d\":4}', 400,
      'delivered', 1, 400, NULL, NULL, 1, NULL),
     ('e5', NULL, 'webinar.changed', 'webhook', '1', NULL, NULL, NULL, '{}', '{\"e\":5}', 500,
      'failed', 9, 500, NULL, 'gave up', 9, 500)",
];

/// Fills `old` (at the previous release's schema), reopens it with `reopen` (which
/// migrates), and checks every row.
async fn story(old: Store, reopen: impl AsyncFnOnce() -> Store) {
    for sql in OLD_ROWS {
        // SQLite stores TRUE and FALSE as 1 and 0; PostgreSQL takes them as booleans.
        old.execute_raw(sql).await.unwrap();
    }
    drop(old);
    let store = reopen().await;

    let r = |id: &'static str| {
        let store = &store;
        async move { store.registration(id).await.unwrap().unwrap() }
    };
    let w1 = r("w1").await;
    assert_eq!(
        (
            w1.state,
            w1.attempts,
            w1.fence,
            w1.next_attempt_at,
            w1.failing_since,
            w1.last_error.as_deref(),
            w1.idempotency_key.as_deref(),
            w1.source.as_deref(),
            w1.validated,
            w1.payload.as_str(),
        ),
        (
            OutboxState::Pending,
            2,
            3,
            t(5000),
            Some(t(1500)),
            Some("GoTo 503"),
            Some("key-1"),
            Some("landing"),
            true,
            "{\"email\":\"wait@example.com\"}",
        )
    );
    let w2 = r("w2").await;
    assert_eq!(
        (w2.state, w2.attempts, w2.fence, w2.validated),
        (OutboxState::Delivering, 1, 4, false)
    );
    let w3 = r("w3").await;
    assert_eq!(
        (
            w3.state,
            w3.registrant_key,
            w3.join_url.as_deref(),
            w3.finished_at
        ),
        (
            OutboxState::Delivered,
            Some(RegistrantKey::new(111)),
            Some("https://example.com/join/111"),
            Some(t(3000))
        )
    );
    let w4 = r("w4").await;
    assert_eq!(
        (w4.state, w4.profile.as_str(), w4.join_url.as_deref()),
        (
            OutboxState::AlreadyRegistered,
            "second",
            Some("https://example.com/join/222")
        )
    );
    let w5 = r("w5").await;
    assert_eq!(
        (w5.state, w5.last_error.as_deref()),
        (OutboxState::Failed, Some("RegistrationInvalid: email"))
    );
    let w6 = r("w6").await;
    assert_eq!(
        (w6.state, w6.attempts, w6.last_error.as_deref()),
        (OutboxState::Dead, 40, Some("GoTo kept failing for 72 h"))
    );
    let counts = store.counts().await.unwrap();
    assert!(
        counts.values().all(|n| *n == 1),
        "one in each state: {counts:?}"
    );

    // Only what waited is taken up again: the expired lease first, then the due one.
    let kind = QueueName::Registrations;
    let lease = Duration::from_secs(10);
    let jobs = store
        .claim_jobs(
            kind,
            "default",
            "new-gateway",
            t(10_000),
            lease,
            Claim::Due,
            10,
        )
        .await
        .unwrap();
    let mut claimed: Vec<_> = store
        .registrations_of(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.attempts, r.fence))
        .collect();
    claimed.sort();
    assert_eq!(
        claimed,
        [("w1".to_owned(), 3, 4), ("w2".to_owned(), 2, 5)],
        "nothing delivered, refused or given up is sent again"
    );
    assert!(
        store
            .claim_jobs(
                kind,
                "second",
                "new-gateway",
                t(10_000),
                lease,
                Claim::Due,
                10
            )
            .await
            .unwrap()
            .is_empty()
    );

    // The idempotency key still answers; new registrations go on as usual.
    let new = |id: &str, key: Option<&str>| NewRegistration {
        id: id.into(),
        profile: "default".into(),
        webinar_key: g2w_goto::WebinarKey::new(9_007_199_254_740_993),
        email: format!("{id}@example.com"),
        payload: "{}".into(),
        idempotency_key: key.map(str::to_owned),
        source: None,
        created_at: t(20_000),
        validated: true,
    };
    let after = store
        .enqueue(&[new("n1", Some("key-1")), new("n2", None)])
        .await
        .unwrap();
    assert!(matches!(&after[0], Enqueued::Existing(r) if r.id == "w1"));
    assert!(matches!(&after[1], Enqueued::New(r) if r.id == "n2"));

    // Events keep their forwarding; only the waiting ones are forwarded again.
    let e = |key: &'static str| {
        let store = &store;
        async move { store.event(key).await.unwrap().unwrap() }
    };
    let states = [
        ("e1", ForwardState::None),
        ("e2", ForwardState::Pending),
        ("e3", ForwardState::Delivering),
        ("e4", ForwardState::Delivered),
        ("e5", ForwardState::Failed),
    ];
    for (key, state) in states {
        assert_eq!(e(key).await.forward_state, state, "{key}");
    }
    let e2 = e("e2").await;
    assert_eq!(
        (
            e2.forward_attempts,
            e2.forward_fence,
            e2.forward_failing_since,
            e2.forward_error.as_deref(),
            e2.body.as_str()
        ),
        (1, 1, Some(t(200)), Some("HTTP 503"), "{\"b\":2}")
    );
    let forwards = store
        .claim_jobs(
            QueueName::Forwards,
            "",
            "new-gateway",
            t(10_000),
            lease,
            Claim::Due,
            10,
        )
        .await
        .unwrap();
    let mut keys: Vec<_> = forwards.iter().map(|j| j.id.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["e2", "e3"]);
    assert_eq!(store.recent_events(10).await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_sqlite_database_of_the_previous_release_migrates_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(g2w_store::DB_FILE_NAME);
    let key = SecretKey::generate();
    let old = Store::at_schema(Some(&path), None, &key, SQLITE_BEFORE)
        .await
        .unwrap();
    story(old, async || Store::sqlite(&path, &key).await.unwrap()).await;
}

#[tokio::test]
async fn a_postgres_database_of_the_previous_release_migrates_intact() {
    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    let key = SecretKey::generate();
    let old = Store::at_schema(None, Some(&url), &key, POSTGRES_BEFORE)
        .await
        .unwrap();
    story(old, async || Store::postgres(&url, &key).await.unwrap()).await;
}
