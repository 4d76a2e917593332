//! The webhook events contract, on SQLite and (when a server is named) PostgreSQL:
//! dedupe by event key and by fact, attendance counts, and forwarding as jobs.

use std::time::Duration;

use g2w_goto::{EventName, RegistrantKey, SessionKey, Timestamp, WebinarKey};
use g2w_store::{
    Claim, EventSource, ForwardState, JobEnd, NewEvent, QueueName, Release, SecretKey, Store,
    StoredEvent,
};

const KIND: QueueName = QueueName::Forwards;

/// The engine's claim of one forwarding job, and its event.
async fn claim_forward(store: &Store, now: i64, lease: Duration) -> Option<StoredEvent> {
    let jobs = store
        .claim_jobs(KIND, "", "w", at(now), lease, Claim::Due, 1)
        .await
        .unwrap();
    store.events_of(jobs).await.unwrap().pop()
}

/// Ends the forwarding attempt holding `fence` on `key`; whether it still held it.
async fn finish(store: &Store, key: &str, fence: i64, end: JobEnd) -> bool {
    store
        .finish_jobs(KIND, at(0), &[(key.to_owned(), fence, end)])
        .await
        .unwrap()
        .pop()
        .flatten()
        .is_some()
}

const WEBINAR: WebinarKey = WebinarKey::new(9_007_199_254_740_993);

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn event(key: &str, name: EventName, registrant: u64, session: Option<u64>, ms: i64) -> NewEvent {
    NewEvent {
        event_key: key.into(),
        event_name: name,
        source: EventSource::Webhook,
        webinar_key: Some(WEBINAR),
        registrant_key: Some(RegistrantKey::new(registrant)),
        session_key: session.map(SessionKey::new),
        email: Some(format!("p{registrant}@example.com")),
        headers: r#"{"content-type":"application/json"}"#.into(),
        body: format!(r#"{{"eventKey":"{key}","registrantKey":{registrant}}}"#),
        received_at: at(ms),
        forward: true,
    }
}

async fn story(store: &Store) {
    let added = event("e1", EventName::RegistrantAdded, 1 << 60, None, 1_000);
    assert!(store.record_event(&added).await.unwrap());
    assert!(
        !store.record_event(&added).await.unwrap(),
        "GoTo's repeat is kept once"
    );
    let mut found = added.clone();
    found.event_key = "reconciled-1".into();
    found.source = EventSource::Reconciliation;
    assert!(
        !store.record_event(&found).await.unwrap(),
        "the same fact by another route is kept once"
    );
    assert!(
        store
            .record_event(&event("e2", EventName::RegistrantAdded, 2, None, 1_100))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_event(&event("e3", EventName::RegistrantJoined, 2, Some(7), 2_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_event(&event("e4", EventName::RegistrantJoined, 2, Some(8), 2_100))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_event(&event("e5", EventName::RegistrantJoined, 2, Some(7), 2_200))
            .await
            .unwrap(),
        "rejoining the same session is the same fact"
    );

    let recent = store.recent_events(10).await.unwrap();
    assert_eq!(recent.len(), 4);
    assert_eq!(recent[0].event_key, "e4", "newest first");
    assert_eq!(recent[3].body, added.body, "the raw body is kept");
    assert_eq!(
        recent[3].registrant_key,
        Some(RegistrantKey::new(1 << 60)),
        "exact keys"
    );

    let attendance = store.attendance().await.unwrap();
    let people = |name: EventName, session: Option<u64>| {
        attendance
            .iter()
            .find(|a| a.event_name == name && a.session_key == session.map(SessionKey::new))
            .map(|a| a.people)
    };
    assert_eq!(people(EventName::RegistrantAdded, None), Some(2));
    assert_eq!(people(EventName::RegistrantJoined, Some(7)), Some(1));
    assert_eq!(people(EventName::RegistrantJoined, Some(8)), Some(1));
    let known = store
        .known_registrants(
            &EventName::RegistrantJoined,
            WEBINAR,
            Some(SessionKey::new(7)),
        )
        .await
        .unwrap();
    assert_eq!(
        known.into_iter().collect::<Vec<_>>(),
        [RegistrantKey::new(2)]
    );

    // Forwarding runs on the queue rules every queue follows: oldest due first,
    // leased, released with a due time, finished; an expired lease is taken over and
    // the attempt that lost it records nothing.
    let lease = Duration::from_secs(10);
    let claim = |now: i64| claim_forward(store, now, lease);
    let first = claim(5_000).await.unwrap();
    assert_eq!(
        (first.event_key.as_str(), first.forward_attempts),
        ("e1", 1)
    );
    assert_eq!(first.forward_state, ForwardState::Delivering);
    let released = store
        .release_job(
            KIND,
            "e1",
            first.forward_fence,
            at(5_000),
            at(60_000),
            "HTTP 503",
            Release::Failed,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released.failing_since, Some(at(5_000)));
    for expected in ["e2", "e3", "e4"] {
        let e = claim(5_000).await.unwrap();
        assert_eq!(e.event_key, expected);
        if expected != "e4" {
            assert!(finish(store, expected, e.forward_fence, JobEnd::Done).await);
        }
    }
    assert!(claim(5_000).await.is_none(), "e1 waits, e4 leased");
    let gauges = store.forward_gauges().await.unwrap();
    assert_eq!(
        (gauges.pending, gauges.delivering, gauges.oldest_waiting),
        (1, 1, Some(at(1_000)))
    );
    let lost = first.forward_fence;
    let crashed = claim(15_001).await.unwrap();
    assert_eq!(
        (crashed.event_key.as_str(), crashed.forward_attempts),
        ("e4", 2)
    );
    assert!(
        !finish(store, "e4", crashed.forward_fence - 1, JobEnd::Done).await,
        "the attempt that lost its lease records nothing"
    );
    assert!(
        !store
            .renew_job(KIND, "e4", crashed.forward_fence - 1, at(20_000))
            .await
            .unwrap()
    );
    assert!(lost > 0);
    assert!(
        finish(
            store,
            "e4",
            crashed.forward_fence,
            JobEnd::Dead("gave up".into())
        )
        .await
    );
    assert_eq!(
        store.event("e4").await.unwrap().unwrap().forward_state,
        ForwardState::Failed
    );
    assert_eq!(
        store.next_job_due(KIND, "").await.unwrap(),
        Some(at(60_000))
    );
    assert_eq!(store.make_jobs_due(KIND, "", at(30_000)).await.unwrap(), 1);
    let again = claim(30_000).await.unwrap();
    assert_eq!(
        (again.event_key.as_str(), again.forward_attempts),
        ("e1", 2)
    );
    assert_eq!(again.forward_error.as_deref(), Some("HTTP 503"));
    store
        .release_job(
            KIND,
            "e1",
            again.forward_fence,
            at(30_000),
            at(60_000),
            "HTTP 503",
            Release::Failed,
        )
        .await
        .unwrap();

    let mut quiet = event("e9", EventName::WebinarCreated, 3, None, 9_000);
    quiet.forward = false;
    quiet.registrant_key = None;
    assert!(store.record_event(&quiet).await.unwrap());
    assert!(
        claim_forward(store, 1_000_000, lease)
            .await
            .is_some_and(|e| e.event_key == "e1"),
        "nothing to forward without a forward URL"
    );

    // Compaction: finished facts keep their keys (and still dedupe); other finished
    // events go; an event still being forwarded is untouched.
    assert_eq!(store.compact_events_before(at(1_000_000)).await.unwrap(), 4);
    let kept = store.recent_events(10).await.unwrap();
    assert_eq!(kept.len(), 4, "e9 deleted: {kept:?}");
    let e2 = kept.iter().find(|e| e.event_key == "e2").unwrap();
    assert_eq!((e2.body.as_str(), e2.headers.as_str()), ("", "{}"));
    let e1 = kept.iter().find(|e| e.event_key == "e1").unwrap();
    assert_eq!(e1.body, added.body, "still being forwarded");
    let mut again = event("e2-again", EventName::RegistrantAdded, 2, None, 2_000_000);
    again.source = EventSource::Reconciliation;
    assert!(
        !store.record_event(&again).await.unwrap(),
        "the fact is still known"
    );
    assert_eq!(
        store.compact_events_before(at(1_000_000)).await.unwrap(),
        0,
        "once"
    );
}

#[tokio::test]
async fn sqlite_passes_the_events_contract() {
    let dir = tempfile::tempdir().unwrap();
    story(&Store::open_in(dir.path(), None).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_passes_the_events_contract() {
    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    story(&Store::postgres(&url, &SecretKey::generate()).await.unwrap()).await;
}
