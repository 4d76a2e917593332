//! The registrations' contract: one scripted story every backend must pass, over the
//! jobs the delivery engine works (claims, leases, fences, releases, outcomes), on SQLite
//! and (when a server is named) PostgreSQL.

use std::time::Duration;

use g2w_goto::Timestamp;
use g2w_store::{
    Claim, Completion, Enqueued, NewRegistration, OutboxState, QueueName, Registration, Release,
    SecretKey, Store,
};

const KIND: QueueName = QueueName::Registrations;

/// A moment in the story, in milliseconds.
fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn submission(id: &str, email: &str, key: Option<&str>, at: i64) -> NewRegistration {
    NewRegistration {
        id: id.into(),
        profile: "default".into(),
        webinar_key: g2w_goto::WebinarKey::new(9_007_199_254_740_993),
        email: email.into(),
        payload: format!(r#"{{"email":"{email}"}}"#),
        idempotency_key: key.map(str::to_owned),
        source: Some("test".into()),
        created_at: t(at),
        validated: true,
    }
}

/// The engine's claim: `n` jobs of `owner`, then the registrations they work on.
async fn claim_many(
    store: &Store,
    owner: &str,
    holder: &str,
    now: i64,
    lease: u64,
    which: Claim,
    n: u32,
) -> Vec<Registration> {
    let jobs = store
        .claim_jobs(KIND, owner, holder, t(now), ms(lease), which, n)
        .await
        .unwrap();
    store.registrations_of(jobs).await.unwrap()
}

async fn claim(store: &Store, holder: &str, now: i64, lease: u64) -> Option<Registration> {
    claim_many(store, "default", holder, now, lease, Claim::Due, 1)
        .await
        .pop()
}

/// Gives back the attempt holding `fence` on `id`; whether it still held it.
async fn release(
    store: &Store,
    (id, fence): (&str, i64),
    now: i64,
    due: i64,
    error: &str,
    why: Release,
) -> bool {
    store
        .release_job(KIND, id, fence, t(now), t(due), error, why)
        .await
        .unwrap()
        .is_some()
}

/// Ends the attempt `r` stands for (its id and fence).
async fn complete(
    store: &Store,
    r: &Registration,
    now: i64,
    done: Completion,
) -> Option<Registration> {
    store
        .complete(t(now), vec![(r.clone(), done)])
        .await
        .unwrap()
        .pop()
        .flatten()
}

/// `r` as an attempt holding `fence` would see it.
fn fenced(r: &Registration, fence: i64) -> Registration {
    Registration { fence, ..r.clone() }
}

/// The scripted story: intake, idempotency, leasing, fencing, completion, backoff, the
/// give-up clock, probes, crash recovery, manual retry, purge.
async fn story(store: &Store) {
    // Intake in one batch; a repeated idempotency key returns the first registration.
    let first = store
        .enqueue(&[
            submission("r1", "a@example.com", Some("k1"), 1_000),
            submission("r2", "b@example.com", None, 1_001),
            submission("r3", "c@example.com", Some("k1"), 1_002),
        ])
        .await
        .unwrap();
    assert!(
        matches!(&first[0], Enqueued::New(r) if r.id == "r1" && r.state == OutboxState::Pending)
    );
    assert!(matches!(&first[2], Enqueued::Existing(r) if r.id == "r1"));
    assert_eq!(
        store.registration("r3").await.unwrap(),
        None,
        "nothing stored for the repeat"
    );
    assert_eq!(store.counts().await.unwrap()[&OutboxState::Pending], 2);
    assert_eq!(
        store.next_job_due(KIND, "default").await.unwrap(),
        Some(t(1_000))
    );
    assert_eq!(
        store.jobs_waiting(KIND, "default", t(999)).await.unwrap(),
        0,
        "none due yet"
    );
    assert_eq!(
        store.jobs_waiting(KIND, "default", t(1_001)).await.unwrap(),
        2,
        "the queue ahead"
    );
    assert_eq!(
        store.jobs_waiting(KIND, "nobody", t(1_001)).await.unwrap(),
        0
    );

    // Leases: oldest first, one holder at a time, each claim with a new fence.
    let a = claim(store, "w1", 2_000, 60_000).await.unwrap();
    assert_eq!(
        (a.id.as_str(), a.state, a.attempts, a.validated),
        ("r1", OutboxState::Delivering, 1, true)
    );
    let b = claim(store, "w2", 2_000, 60_000).await.unwrap();
    assert_eq!(b.id, "r2");
    assert!(
        claim(store, "w3", 2_000, 60_000).await.is_none(),
        "both leased"
    );
    assert_eq!(
        store.jobs_waiting(KIND, "default", t(2_000)).await.unwrap(),
        2,
        "being delivered"
    );

    // Completion needs the attempt's own fence.
    let done = Completion::Delivered {
        registrant_key: g2w_goto::RegistrantKey::new(42),
        join_url: "https://j/42".into(),
    };
    assert!(
        complete(store, &fenced(&a, a.fence + 1), 2_100, done.clone())
            .await
            .is_none(),
        "not this attempt's fence"
    );
    assert!(complete(store, &a, 2_100, done.clone()).await.is_some());
    let r1 = store.registration("r1").await.unwrap().unwrap();
    assert_eq!(
        (r1.state, r1.join_url.as_deref(), r1.finished_at),
        (OutboxState::Delivered, Some("https://j/42"), Some(t(2_100)))
    );
    assert!(
        complete(store, &a, 2_200, done.clone()).await.is_none(),
        "a finished row stays finished"
    );
    assert_eq!(
        store.registration_gauges().await.unwrap().oldest_waiting,
        Some(t(1_001))
    );

    // A failed attempt goes back with a due time and starts the give-up clock; a
    // throttled one starts the clock without using an attempt; a paused one neither.
    assert!(
        release(
            store,
            ("r2", b.fence),
            2_100,
            5_000,
            "GoTo 503",
            Release::Failed
        )
        .await
    );
    assert!(
        claim(store, "w3", 4_999, 60_000).await.is_none(),
        "not due yet"
    );
    let again = claim(store, "w3", 5_000, 60_000).await.unwrap();
    assert_eq!(
        (again.id.as_str(), again.attempts, again.failing_since),
        ("r2", 2, Some(t(2_100)))
    );
    assert!(again.fence > b.fence);
    assert!(
        release(
            store,
            ("r2", again.fence),
            5_001,
            5_001,
            "429",
            Release::Throttled
        )
        .await
    );
    let throttled = store.registration("r2").await.unwrap().unwrap();
    assert_eq!(
        (throttled.attempts, throttled.failing_since),
        (1, Some(t(2_100))),
        "a 429 uses no attempt; the clock keeps its start"
    );
    let paused = claim(store, "w3", 5_002, 60_000).await.unwrap();
    assert!(
        release(
            store,
            ("r2", paused.fence),
            5_003,
            5_003,
            "paused",
            Release::Paused
        )
        .await
    );
    assert_eq!(store.registration("r2").await.unwrap().unwrap().attempts, 1);

    // A probe takes the next in line before its backoff ends; make_due ends every backoff.
    let waiting = claim(store, "w3", 5_004, 60_000).await.unwrap();
    assert!(
        release(
            store,
            ("r2", waiting.fence),
            5_005,
            900_000,
            "GoTo 503",
            Release::Failed
        )
        .await
    );
    assert!(claim(store, "w3", 5_006, 60_000).await.is_none());
    let probe = claim_many(store, "default", "w3", 5_006, 60_000, Claim::Probe, 1)
        .await
        .pop()
        .unwrap();
    assert_eq!(probe.id, "r2");
    assert!(
        release(
            store,
            ("r2", probe.fence),
            5_007,
            900_000,
            "GoTo 503",
            Release::Failed
        )
        .await
    );
    assert_eq!(
        store
            .make_jobs_due(KIND, "default", t(5_008))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.next_job_due(KIND, "default").await.unwrap(),
        Some(t(5_008))
    );

    // A crashed worker's lease runs out and another takes the row; a heartbeat keeps a
    // live one's; the old attempt can neither renew nor complete.
    let crashed = claim(store, "dead-worker", 6_000, 1_000).await.unwrap();
    assert_eq!(crashed.id, "r2");
    assert!(
        store
            .renew_job(KIND, "r2", crashed.fence, t(7_500))
            .await
            .unwrap(),
        "heartbeat"
    );
    assert!(
        claim(store, "w4", 7_000, 1_000).await.is_none(),
        "lease renewed to 7500"
    );
    let rescued = claim(store, "w4", 7_500, 1_000).await.unwrap();
    assert_eq!(rescued.id, "r2");
    assert!(
        !store
            .renew_job(KIND, "r2", crashed.fence, t(9_000))
            .await
            .unwrap(),
        "the old attempt cannot take it back"
    );
    assert!(
        complete(store, &crashed, 7_501, done.clone())
            .await
            .is_none(),
        "the old attempt lost it"
    );
    let refused = Completion::Failed {
        reason: "RegistrationInvalid: email".into(),
    };
    assert!(
        complete(store, &rescued, 7_501, refused)
            .await
            .is_some_and(|r| r.state == OutboxState::Failed
                && r.last_error.as_deref() == Some("RegistrationInvalid: email")),
        "the outcome comes back with the row"
    );
    assert_eq!(
        store.registration_gauges().await.unwrap().oldest_waiting,
        None
    );
    assert_eq!(
        store.jobs_waiting(KIND, "default", t(9_000)).await.unwrap(),
        0,
        "finished rows"
    );

    // Manual retry of failed rows (fresh attempts, fresh clock), then listing and purging.
    assert_eq!(
        store
            .list(Some(OutboxState::Failed), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.retry("r2", t(8_000)).await.unwrap());
    assert!(
        !store.retry("r1", t(8_000)).await.unwrap(),
        "delivered rows are not retried"
    );
    let retried = store.registration("r2").await.unwrap().unwrap();
    assert_eq!(
        (retried.state, retried.attempts, retried.failing_since),
        (OutboxState::Pending, 0, None)
    );
    let c = claim(store, "w5", 8_000, 1_000).await.unwrap();
    let dead = Completion::Dead {
        reason: "failing for 3 days".into(),
    };
    assert!(complete(store, &c, 8_001, dead).await.is_some());
    assert_eq!(store.retry_all_failed(t(9_000)).await.unwrap(), 1);
    assert!(
        !store.discard("r2").await.unwrap(),
        "only failed or dead rows are discarded"
    );
    assert!(!store.discard("r1").await.unwrap());
    assert_eq!(
        store
            .list(None, Some("B@EXAMPLE.COM"), 10)
            .await
            .unwrap()
            .len(),
        1,
        "email search ignores case"
    );
    assert_eq!(
        store.purge_delivered_before(t(2_100)).await.unwrap(),
        0,
        "finished at 2100, not before"
    );
    assert_eq!(store.purge_delivered_before(t(2_101)).await.unwrap(), 1);
    assert_eq!(store.registration("r1").await.unwrap(), None);
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts[&OutboxState::Pending],
            counts[&OutboxState::Delivered]
        ),
        (1, 0)
    );
    store.probe_write(t(10_000)).await.unwrap();

    // A registration intake could not check is stored as such.
    let mut unchecked = submission("u1", "u@example.com", None, 11_000);
    unchecked.validated = false;
    store.enqueue(&[unchecked]).await.unwrap();
    assert!(!store.registration("u1").await.unwrap().unwrap().validated);
}

#[tokio::test]
async fn sqlite_passes_the_outbox_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path(), None).await.unwrap();
    story(&store).await;
}

#[tokio::test]
async fn postgres_passes_the_outbox_contract() {
    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    let store = Store::postgres(&url, &SecretKey::generate()).await.unwrap();
    story(&store).await;
    // Reconnecting finds the schema in place and the key check passing.
    drop(store);
    let key = SecretKey::generate();
    let err = Store::postgres(&url, &key).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("set G2W_SECRET_KEY to the key it was created with")
            && err
                .to_string()
                .contains("point G2W_DATABASE_URL at a new database"),
        "{err}"
    );
}

#[tokio::test]
async fn a_committed_registration_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_in(dir.path(), None).await.unwrap();
        store
            .enqueue(&[submission("kept", "k@example.com", None, 1)])
            .await
            .unwrap();
    }
    let store = Store::open_in(dir.path(), None).await.unwrap();
    assert_eq!(
        store.registration("kept").await.unwrap().unwrap().state,
        OutboxState::Pending
    );
}

#[tokio::test]
async fn a_failed_registration_can_be_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path(), None).await.unwrap();
    store
        .enqueue(&[submission("f1", "f@example.com", None, 1)])
        .await
        .unwrap();
    let c = claim(&store, "w", 2, 1_000).await.unwrap();
    assert!(
        !store.discard(&c.id).await.unwrap(),
        "not while it is being delivered"
    );
    let refused = Completion::Failed {
        reason: "refused".into(),
    };
    assert!(complete(&store, &c, 3, refused).await.is_some());
    assert!(store.discard("f1").await.unwrap());
    assert_eq!(store.registration("f1").await.unwrap(), None);
}

#[tokio::test]
async fn a_worker_only_claims_its_own_profiles_registrations() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path(), None).await.unwrap();
    let mut other = submission("o1", "o@example.com", None, 1);
    other.profile = "other-account".into();
    store
        .enqueue(&[other, submission("d1", "d@example.com", None, 2)])
        .await
        .unwrap();
    assert_eq!(
        store.next_job_due(KIND, "default").await.unwrap(),
        Some(t(2))
    );
    assert_eq!(claim(&store, "w", 10, 1_000).await.unwrap().id, "d1");
    assert!(
        claim(&store, "w", 10, 1_000).await.is_none(),
        "the other profile's registration is not this worker's to send"
    );
    assert_eq!(
        claim_many(&store, "other-account", "w2", 10, 1_000, Claim::Due, 1)
            .await
            .pop()
            .unwrap()
            .id,
        "o1"
    );
    assert_eq!(store.next_job_due(KIND, "nobody").await.unwrap(), None);
}

/// Delivery loops that ask together: several claims in one statement (orphans first,
/// then the longest due, never one twice) and several outcomes in one, where an
/// attempt that lost its lease records nothing.
async fn together(store: &Store) {
    let batch: Vec<_> = (0..5)
        .map(|i| {
            submission(
                &format!("g{i}"),
                &format!("g{i}@example.com"),
                None,
                100 + i,
            )
        })
        .collect();
    store.enqueue(&batch).await.unwrap();
    let orphan = claim(store, "crashed", 200, 50).await.unwrap();
    assert_eq!(orphan.id, "g0");
    let claimed = claim_many(store, "default", "loops", 300, 1_000, Claim::Due, 3).await;
    let ids: Vec<_> = claimed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["g0", "g1", "g2"],
        "the orphan, then the longest due, oldest first"
    );
    assert!(claimed.iter().all(|r| r.state == OutboxState::Delivering));
    assert_eq!(
        claimed[0].fence,
        orphan.fence + 1,
        "the crashed attempt is fenced out"
    );
    let rest = claim_many(store, "default", "loops", 300, 1_000, Claim::Due, 10).await;
    assert_eq!(rest.len(), 2, "only what is left, never one twice");
    assert!(
        claim_many(store, "default", "loops", 300, 1_000, Claim::Due, 4)
            .await
            .is_empty()
    );

    let delivered = |n: u64| Completion::Delivered {
        registrant_key: g2w_goto::RegistrantKey::new(n),
        join_url: format!("https://example.com/join/{n}"),
    };
    let outcomes = store
        .complete(
            t(400),
            vec![
                (claimed[1].clone(), delivered(1)),
                (orphan.clone(), delivered(99)),
                (
                    claimed[2].clone(),
                    Completion::Failed {
                        reason: "refused".into(),
                    },
                ),
                (claimed[0].clone(), delivered(0)),
            ],
        )
        .await
        .unwrap();
    let states: Vec<_> = outcomes
        .iter()
        .map(|o| o.as_ref().map(|r| (r.id.as_str(), r.state)))
        .collect();
    assert_eq!(
        states,
        [
            Some(("g1", OutboxState::Delivered)),
            None,
            Some(("g2", OutboxState::Failed)),
            Some(("g0", OutboxState::Delivered)),
        ],
        "each answer in the order asked; the fenced-out attempt recorded nothing"
    );
    let g0 = store.registration("g0").await.unwrap().unwrap();
    assert_eq!(g0.join_url.as_deref(), Some("https://example.com/join/0"));
    assert_eq!(g0.finished_at, Some(t(400)));
}

#[tokio::test]
async fn claims_and_outcomes_together_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    together(&Store::open_in(dir.path(), None).await.unwrap()).await;
}

#[tokio::test]
async fn claims_and_outcomes_together_on_postgres() {
    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    together(&Store::postgres(&url, &SecretKey::generate()).await.unwrap()).await;
}

/// One person, one GoTo call: a person's submissions for a webinar join the one on its
/// way to GoTo (whatever the case of the email), in one batch or later, from this
/// process or another; other webinars and organizers are other registrations; once the
/// first is finished, a new submission is stored again (GoTo then says "already
/// registered").
async fn one_person(a: &Store, b: &Store) {
    let stored = a
        .enqueue(&[
            submission("p1", "Pat@example.com", None, 1),
            submission("p2", "pat@EXAMPLE.com", None, 2),
        ])
        .await
        .unwrap();
    assert!(matches!(&stored[0], Enqueued::New(r) if r.id == "p1"));
    assert!(
        matches!(&stored[1], Enqueued::InFlight(r) if r.id == "p1"),
        "{stored:?}"
    );
    assert_eq!(a.registration("p2").await.unwrap(), None, "nothing stored");

    // From another process, while the first is being delivered.
    let running = claim(a, "w", 10, 60_000).await.unwrap();
    let joined = b
        .enqueue(&[submission("p3", "PAT@example.com", None, 11)])
        .await
        .unwrap();
    assert!(
        matches!(&joined[0], Enqueued::InFlight(r) if r.id == "p1" && r.state == OutboxState::Delivering),
        "{joined:?}"
    );

    // Another webinar, and another organizer, are registrations of their own.
    let mut elsewhere = submission("p4", "pat@example.com", None, 12);
    elsewhere.webinar_key = g2w_goto::WebinarKey::new(7);
    let mut other_organizer = submission("p5", "pat@example.com", None, 13);
    other_organizer.profile = "second".into();
    let own = b.enqueue(&[elsewhere, other_organizer]).await.unwrap();
    assert!(own.iter().all(|e| matches!(e, Enqueued::New(_))), "{own:?}");

    // Once the first has its answer, the person may submit again.
    let done = Completion::Delivered {
        registrant_key: g2w_goto::RegistrantKey::new(5),
        join_url: "https://j/5".into(),
    };
    assert!(complete(a, &running, 20, done).await.is_some());
    let again = b
        .enqueue(&[submission("p6", "pat@example.com", None, 21)])
        .await
        .unwrap();
    assert!(
        matches!(&again[0], Enqueued::New(r) if r.id == "p6"),
        "{again:?}"
    );

    // Twenty at once from two processes: one registration, everyone told of it.
    let burst = |from: i64| -> Vec<NewRegistration> {
        (from..from + 10)
            .map(|i| submission(&format!("q{i}"), "quinn@example.com", None, 30 + i))
            .collect()
    };
    let (left, right) = (burst(0), burst(10));
    let (left, right) = tokio::join!(a.enqueue(&left), b.enqueue(&right));
    let (left, right) = (left.unwrap(), right.unwrap());
    let all: Vec<_> = left.iter().chain(&right).collect();
    let new: Vec<_> = all
        .iter()
        .filter(|e| matches!(e, Enqueued::New(_)))
        .collect();
    assert_eq!(new.len(), 1, "{all:?}");
    let id = &new[0].registration().id;
    assert!(all.iter().all(|e| &e.registration().id == id));
}

#[tokio::test]
async fn one_person_one_registration_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open_in(dir.path(), None).await.unwrap();
    let b = Store::open_in(dir.path(), None).await.unwrap();
    one_person(&a, &b).await;
}

#[tokio::test]
async fn one_person_one_registration_on_postgres() {
    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    let key = SecretKey::generate();
    let a = Store::postgres(&url, &key).await.unwrap();
    let b = Store::postgres(&url, &key).await.unwrap();
    one_person(&a, &b).await;
}
