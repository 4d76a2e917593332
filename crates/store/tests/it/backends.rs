//! The contract stories every backend must pass beside the outbox's: logins and the
//! cross-process refresh lock, the import journal, admin sessions, and the shared GoTo
//! budget. Each runs on SQLite, and on PostgreSQL when `G2W_TEST_DATABASE_URL` names a
//! server (CI starts one).
use std::sync::Arc;
use std::time::Duration;

use g2w_goto::{
    ExposeSecret as _, OrganizerKey, SecretString, SharedBudget as _, TokenRecord, TokenStore as _,
};
use g2w_store::Setting;
use g2w_store::{AdminSession, JournalEntry, SecretKey, Store, StoreBudget};

use g2w_goto::Timestamp;

fn secs(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn record() -> TokenRecord {
    TokenRecord {
        client_id: "client".into(),
        client_secret: Some(SecretString::from("client-secret-1234")),
        access_token: Some(SecretString::from("access-5678")),
        access_expires_at: Some(secs(3_600)),
        refresh_token: Some(SecretString::from("refresh-9012")),
        organizer_key: Some(OrganizerKey::new(9_007_199_254_740_993)),
        principal: Some("dana@example.com".into()),
        ..TokenRecord::default()
    }
}

/// Two handles on one store (two processes, or two gateways).
async fn both_backends(story: impl AsyncFn(&Store, &Store)) {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open_in(dir.path(), None).await.unwrap();
    let b = Store::open_in(dir.path(), None).await.unwrap();
    story(&a, &b).await;
    if let Some(url) = g2w_store::test_database_url() {
        let key = SecretKey::generate();
        let a = Store::postgres(&url, &key).await.unwrap();
        let b = Store::postgres(&url, &key).await.unwrap();
        story(&a, &b).await;
    }
}

#[tokio::test]
async fn logins_round_trip_and_the_refresh_lock_is_one_holder_across_processes() {
    both_backends(async |a, b| {
        assert!(a.load_profile("default").await.unwrap().is_none());
        a.save_profile("default", &record()).await.unwrap();
        let back = b.load_profile("default").await.unwrap().unwrap();
        assert_eq!(back.access_token.unwrap().expose_secret(), "access-5678");
        assert_eq!(back.refresh_token.unwrap().expose_secret(), "refresh-9012");
        assert_eq!(
            back.organizer_key,
            Some(OrganizerKey::new(9_007_199_254_740_993)),
            "64-bit keys exact"
        );
        assert_eq!(b.profiles().await.unwrap(), ["default"]);

        assert!(
            a.try_lock_refresh("default", "A", secs(1_000), Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert!(
            !b.try_lock_refresh("default", "B", secs(1_001), Duration::from_secs(60))
                .await
                .unwrap(),
            "held by A"
        );
        b.unlock_refresh("default", "B").await.unwrap();
        assert!(
            !b.try_lock_refresh("default", "B", secs(1_002), Duration::from_secs(60))
                .await
                .unwrap(),
            "not B's to release"
        );
        assert!(
            b.try_lock_refresh("default", "B", secs(1_061), Duration::from_secs(60))
                .await
                .unwrap(),
            "A's lease ran out"
        );
        b.unlock_refresh("default", "B").await.unwrap();

        a.save_profile("other", &record()).await.unwrap();
        assert!(a.delete_profile("default").await.unwrap());
        assert!(!a.delete_profile("default").await.unwrap());
        assert_eq!(b.profiles().await.unwrap(), ["other"]);

        assert_eq!(a.setting(Setting::AdminPassword).await.unwrap(), None);
        a.set_setting(Setting::AdminPassword, "$argon2id$x")
            .await
            .unwrap();
        assert_eq!(
            b.setting(Setting::AdminPassword).await.unwrap().as_deref(),
            Some("$argon2id$x")
        );
    })
    .await;
}

#[tokio::test]
async fn the_import_journal_records_and_replaces_outcomes() {
    both_backends(async |a, b| {
        let failed = JournalEntry {
            outcome: g2w_store::JournalOutcome::Failed,
            registrant_key: None,
            join_url: None,
            detail: Some("GoTo 503".into()),
        };
        a.journal_record("import-1", 7, &failed, secs(1))
            .await
            .unwrap();
        assert_eq!(b.journal_entry("import-1", 7).await.unwrap(), Some(failed));
        let done = JournalEntry {
            outcome: g2w_store::JournalOutcome::Registered,
            registrant_key: Some("42".into()),
            join_url: Some("https://j/42".into()),
            detail: None,
        };
        b.journal_record("import-1", 7, &done, secs(2))
            .await
            .unwrap();
        assert!(
            a.journal_entry("import-1", 7)
                .await
                .unwrap()
                .unwrap()
                .is_done()
        );
        assert_eq!(a.journal_entry("import-1", 8).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn admin_sessions_outlive_a_process_and_end_on_time() {
    both_backends(async |a, b| {
        let session = AdminSession {
            csrf: "csrf-token".into(),
            expires_at: secs(1_000),
        };
        a.put_session("digest-1", &session).await.unwrap();
        a.put_session(
            "digest-old",
            &AdminSession {
                csrf: "old".into(),
                expires_at: secs(10),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            b.session("digest-1", secs(999)).await.unwrap(),
            Some(session.clone())
        );
        assert_eq!(
            b.session("digest-1", secs(1_000)).await.unwrap(),
            None,
            "ended"
        );
        assert_eq!(b.session("unknown", secs(1)).await.unwrap(), None);
        b.end_session("digest-1", secs(500)).await.unwrap();
        assert_eq!(
            a.session("digest-1", secs(999)).await.unwrap(),
            None,
            "signed out"
        );
        assert_eq!(
            a.session("digest-old", secs(5)).await.unwrap(),
            None,
            "expired ones are swept"
        );
    })
    .await;
}

/// Two processes' handles on one budget store, on each backend.
async fn both_budgets(story: impl AsyncFn(&StoreBudget, &StoreBudget)) {
    let dir = tempfile::tempdir().unwrap();
    let open = async || Arc::new(Store::open_in(dir.path(), None).await.unwrap());
    story(
        &StoreBudget::new(open().await),
        &StoreBudget::new(open().await),
    )
    .await;
    if let Some(url) = g2w_store::test_database_url() {
        let key = SecretKey::generate();
        let a = Arc::new(Store::postgres(&url, &key).await.unwrap());
        let b = Arc::new(Store::postgres(&url, &key).await.unwrap());
        story(&StoreBudget::new(a), &StoreBudget::new(b)).await;
    }
}

async fn book(budget: &StoreBudget, account: &str) -> Duration {
    budget
        .book(account, ms(100), 1, 1, None)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn the_goto_budget_is_one_schedule_for_every_process() {
    both_budgets(async |a, b| {
        // 10 a second, no burst: two processes booking in turn are spaced as one.
        let mut waits = Vec::new();
        for i in 0..10 {
            waits.push(book(if i % 2 == 0 { a } else { b }, "acct").await);
        }
        let last = *waits.last().unwrap();
        assert!(
            (ms(800)..=ms(900)).contains(&last),
            "the tenth call waits about 0.9 s whoever books it: {waits:?}"
        );
        assert_eq!(
            a.book("acct", ms(100), 1, 2, Some(ms(50))).await.unwrap(),
            None,
            "a booking that would wait too long takes nothing"
        );
        assert!(book(a, "other").await <= ms(5), "per account");
    })
    .await;
}

#[tokio::test]
async fn gotos_retry_after_holds_every_process_and_a_429_without_it_halves_the_pace() {
    both_budgets(async |a, b| {
        // GoTo said "Retry-After: 2" to one process: the other waits it out, limited or not.
        a.hold("held", ms(2_000)).await.unwrap();
        let held = b.held("held").await.unwrap().unwrap();
        assert!((ms(1_900)..=ms(2_000)).contains(&held), "{held:?}");
        assert!(book(b, "held").await >= ms(1_900));
        let unlimited = b.book("held", Duration::ZERO, 1, 1, None).await.unwrap();
        assert!(unlimited.unwrap() >= ms(1_800), "{unlimited:?}");
        assert_eq!(b.held("never-held").await.unwrap(), None);

        // A 429 without Retry-After: the pace halves, once for the calls already out.
        for _ in 0..3 {
            book(a, "busy").await;
        }
        let spaced = |waits: &[Duration]| waits[1].saturating_sub(waits[0]);
        let mut before = Vec::new();
        for _ in 0..2 {
            before.push(book(a, "busy").await);
        }
        a.slow_down("busy", ms(50)).await.unwrap();
        b.slow_down("busy", ms(60)).await.unwrap();
        let mut after = Vec::new();
        for _ in 0..2 {
            after.push(book(b, "busy").await);
        }
        let (full, slowed) = (spaced(&before), spaced(&after));
        assert!((ms(95)..=ms(105)).contains(&full), "{full:?}");
        assert!(
            (ms(190)..=ms(215)).contains(&slowed),
            "halved once, not twice, by two 429s of calls already out: {slowed:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn organizers_of_one_goto_account_share_its_budget_and_other_accounts_do_not() {
    both_budgets(async |a, b| {
        let run = rand_suffix();
        let (account, other) = (format!("account-{run}"), format!("account-{}", run + 1));
        // 10 a second, no burst: the account's second booking waits, whoever makes it.
        assert!(book(a, &account).await <= ms(5));
        let waited = book(b, &account).await;
        assert!(waited >= ms(90), "one account, one limit: {waited:?}");
        assert!(
            book(b, &other).await <= ms(5),
            "another account books from its own"
        );
    })
    .await;
}

/// A number no earlier run used, for names in a database that outlives the test.
fn rand_suffix() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000_000,
    )
    .unwrap()
}

#[tokio::test]
async fn postgres_tells_other_processes_of_new_registrations_and_sqlite_says_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open_in(dir.path(), None).await.unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    assert!(
        !sqlite.notify_new_work(Box::new(|_| {}), stopped.clone()),
        "polling it is"
    );
    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    let key = SecretKey::generate();
    let listener = Store::postgres(&url, &key).await.unwrap();
    let writer = Store::postgres(&url, &key).await.unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    assert!(listener.notify_new_work(
        Box::new(move |kind| {
            let _ = tx.send(kind);
        }),
        stopped
    ));
    // The listener connects in the background: write until it hears one.
    for i in 0..50 {
        writer
            .enqueue(&[g2w_store::NewRegistration {
                id: format!("n{i}"),
                profile: "default".into(),
                webinar_key: g2w_goto::WebinarKey::new(1),
                email: format!("n{i}@example.com"),
                payload: "{}".into(),
                idempotency_key: None,
                source: None,
                created_at: Timestamp::from_millis(i),
                validated: true,
            }])
            .await
            .unwrap();
        if let Ok(kind) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            assert_eq!(kind, g2w_store::QueueName::Registrations);
            return;
        }
    }
    panic!("no notification reached the other process");
}
