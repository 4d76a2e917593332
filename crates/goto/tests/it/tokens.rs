//! The token lifecycle against the emulator.

use std::sync::Arc;

use g2w_goto::{ExposeSecret as _, GotoError};
use serde_json::json;

use crate::Fixture;

#[tokio::test]
async fn a_token_with_under_five_minutes_left_is_refreshed_first() {
    let f = Fixture::start().await;
    f.client.me().await.unwrap();
    assert_eq!(f.emu.stats().grants("refresh_token"), 0);
    f.emu.advance_clock(3600 - 299);
    f.client.me().await.unwrap();
    assert_eq!(f.emu.stats().grants("refresh_token"), 1);
    assert_eq!(
        f.emu.stats().route_status("GET /admin/rest/v1/me", 403),
        0,
        "no 403 needed"
    );
}

#[tokio::test]
async fn after_two_hours_the_next_call_just_works() {
    let f = Fixture::start().await;
    let before = f.record().access_token.unwrap().expose_secret().to_owned();
    f.emu.advance_clock(2 * 3600);
    let me = f.client.me().await.unwrap();
    assert_eq!(me.key.get(), f.emu.default_organizer_key());
    let after = f.record();
    assert_ne!(after.access_token.unwrap().expose_secret(), before);
    assert!(
        after.refresh_token.is_some(),
        "the refresh token is kept when none comes back"
    );
}

#[tokio::test]
async fn sixty_four_concurrent_calls_at_expiry_make_one_refresh() {
    let f = Arc::new(Fixture::start().await);
    f.emu.advance_clock(3600);
    let calls: Vec<_> = (0..64)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.client.me().await.map(|_| ()) })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(f.emu.stats().grants("refresh_token"), 1);
    assert_eq!(f.emu.stats().route_status("GET /admin/rest/v1/me", 200), 64);
}

#[tokio::test]
async fn invalid_token_means_one_refresh_and_one_retry() {
    // The manager keeps real time, so only GoTo's 403 tells it the token died.
    let f = Arc::new(
        Fixture::start_with(
            g2w_emulator::EmulatorConfig {
                auto_approve: true,
                rate_limit: 0,
                ..Default::default()
            },
            false,
        )
        .await,
    );
    f.emu.advance_clock(2 * 3600);
    f.client.me().await.unwrap();
    let stats = f.emu.stats();
    assert_eq!(stats.route_status("GET /admin/rest/v1/me", 403), 1);
    assert_eq!(stats.route_status("GET /admin/rest/v1/me", 200), 1);
    assert_eq!(stats.grants("refresh_token"), 1);

    // Many callers rejected at once still make one refresh.
    f.emu.advance_clock(2 * 3600);
    let calls: Vec<_> = (0..64)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.client.me().await.map(|_| ()) })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(f.emu.stats().grants("refresh_token"), 2);

    // A token GoTo keeps rejecting is not refreshed forever: one refresh, one retry.
    f.fault(json!({"pathPrefix": "/admin", "status": 403}))
        .await;
    let err = f.client.me().await.unwrap_err();
    assert!(matches!(err, GotoError::InvalidToken), "{err:?}");
    assert_eq!(f.emu.stats().grants("refresh_token"), 3);
}

#[tokio::test]
async fn ninety_days_of_daily_refreshes_survive_refresh_token_rotation() {
    let f = Fixture::start().await;
    let first = f.record().refresh_token.unwrap().expose_secret().to_owned();
    let mut seen = vec![first];
    for _day in 0..90 {
        f.emu.advance_clock(86_400);
        f.tokens.force_refresh().await.unwrap();
        f.client.me().await.unwrap();
        let rt = f.record().refresh_token.unwrap().expose_secret().to_owned();
        if seen.last() != Some(&rt) {
            seen.push(rt);
        }
    }
    // Rotated in the last two days of each 30: around days 28, 56 and 84.
    assert_eq!(seen.len(), 4, "refresh tokens used: {}", seen.len());
    assert_eq!(
        f.emu.stats().refresh_tokens_issued,
        4,
        "the first login's plus three rotations"
    );
    assert!(f.record().reauthorization_required.is_none());
}

#[tokio::test]
async fn a_dead_refresh_token_marks_reauthorization_and_deletes_nothing() {
    let f = Fixture::start().await;
    f.control("/tokens/revoke", json!({})).await;
    f.emu.advance_clock(3600);
    let err = f.client.me().await.unwrap_err();
    let GotoError::ReauthorizationRequired { hint, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(hint, "g2w auth login");
    let record = f.record();
    assert!(record.reauthorization_required.is_some());
    assert!(
        record.refresh_token.is_some() && record.organizer_key.is_some(),
        "nothing deleted"
    );
    // Later calls fail fast, without asking GoTo again.
    let grants_before = f.emu.stats().token_errors.values().sum::<u64>();
    assert!(f.client.me().await.is_err());
    assert_eq!(
        f.emu.stats().token_errors.values().sum::<u64>(),
        grants_before
    );
    assert!(err.to_string().contains("g2w auth login"));
}

#[tokio::test]
async fn a_pat_profile_renews_with_its_pat() {
    let f = Fixture::start().await;
    let pat = f.control("/pats", json!({})).await["pat"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut record = f.record();
    record.refresh_token = None;
    record.personal_access_token = Some(g2w_goto::SecretString::from(pat));
    f.tokens.save(&record).await.unwrap();
    f.emu.advance_clock(2 * 3600);
    f.client.me().await.unwrap();
    assert_eq!(f.emu.stats().grants("personal_access_token"), 1);
}

#[tokio::test]
async fn a_token_read_from_the_store_serves_a_second_then_the_store_is_read_again() {
    use std::sync::atomic::{AtomicI64, Ordering};

    let f = Fixture::start().await;
    let ms = Arc::new(AtomicI64::new(
        g2w_goto::Timestamp::from_secs(f.emu.now()).as_millis(),
    ));
    let m = ms.clone();
    let clock: g2w_goto::Clock =
        Arc::new(move || g2w_goto::Timestamp::from_millis(m.load(Ordering::SeqCst)));
    let manager = |clock| {
        g2w_goto::TokenManager::new(f.store.clone(), crate::oauth(&f.emu), "default", clock)
    };
    let mine = manager(clock.clone());
    let first = mine.access_token().await.unwrap();

    // Another gateway on the same store refreshes.
    let second = manager(clock)
        .force_refresh()
        .await
        .unwrap()
        .access_token
        .unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());
    ms.fetch_add(999, Ordering::SeqCst);
    assert_eq!(
        mine.access_token().await.unwrap().expose_secret(),
        first.expose_secret(),
        "within a second, the token already read"
    );
    ms.fetch_add(1, Ordering::SeqCst);
    assert_eq!(
        mine.access_token().await.unwrap().expose_secret(),
        second.expose_secret(),
        "a second on, the store's"
    );
    assert_eq!(
        f.emu.stats().grants("refresh_token"),
        1,
        "no refresh of its own"
    );

    // A login saved through this manager is used at once.
    let mut record = f.record();
    record.access_token = Some(g2w_goto::SecretString::from("saved-here"));
    mine.save(&record).await.unwrap();
    assert_eq!(
        mine.access_token().await.unwrap().expose_secret(),
        "saved-here"
    );
}
