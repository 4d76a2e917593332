//! One gateway, two organizers in accounts of their own, GoTo's 10 requests a second
//! kept per account: every registration reaches its own organizer exactly once, one
//! organizer's revoked login or failing GoTo holds only that organizer's registrations,
//! and the console names and disconnects each. Runs on SQLite, and on PostgreSQL in
//! CI's second run of this suite.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use g2w_gateway::{AdminPassword, Step};
use g2w_store::{OutboxState, Registration};
use serde_json::{Value, json};

use crate::admin::{act, get_with, sign_in};
use crate::{Reply, TestApp, login_as, oauth, person};

const RATE: u32 = 10;
const EACH: usize = 150;
const SECOND_EMAIL: &str = "sam@example.com";

/// Waits (bounded, on real time: the rate limit is real time) until `done` holds.
async fn until(
    app: &TestApp,
    what: &str,
    done: impl Fn(&[Registration]) -> bool,
) -> Vec<Registration> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let all = app.store.list(None, None, 10_000).await.unwrap();
        if done(&all) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {:?}",
            app.store.counts().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three webinars of `organizer`.
async fn webinars(app: &TestApp, organizer: u64) -> Vec<String> {
    let mut keys = Vec::new();
    for n in 0..3 {
        let spec =
            json!({"subject": format!("Webinar {n}"), "organizerKey": organizer.to_string()});
        keys.push(app.webinar(spec).await.0);
    }
    keys
}

#[tokio::test]
async fn two_organizers_each_get_their_own_registrations_and_a_revoked_login_holds_only_its_own() {
    let app = TestApp::start_two_running(RATE, |c| {
        c.backoff_base = Duration::from_millis(200);
        c.backoff_cap = Duration::from_secs(1);
    })
    .await;
    let second = app.second.unwrap();
    let organizers = [
        (
            "default",
            app.emu.default_organizer_key(),
            webinars(&app, app.emu.default_organizer_key()).await,
        ),
        ("second", second, webinars(&app, second).await),
    ];
    // 300 registrations spread over both organizers' webinars, as landing pages send them.
    let mut expected: BTreeMap<String, (&str, String)> = BTreeMap::new();
    for i in 0..2 * EACH {
        let (profile, _, keys) = &organizers[i % 2];
        let webinar = &keys[(i / 2) % keys.len()];
        let email = format!("person{i}@example.com");
        let answer = app.post_json(webinar, &person(&email)).await;
        assert_eq!(answer.status, 202, "{}", answer.text);
        expected.insert(email, (profile, webinar.clone()));
        if i == EACH {
            // Mid-run, the second organizer's login is revoked at GoTo.
            let revoked = app
                .control(
                    "/tokens/revoke",
                    json!({"organizerKey": second.to_string()}),
                )
                .await;
            assert!(
                revoked["revokedRefreshTokens"].as_u64().unwrap() >= 1,
                "{revoked}"
            );
        }
    }
    for r in app.store.list(None, None, 10_000).await.unwrap() {
        let (profile, webinar) = &expected[&r.email];
        assert_eq!(
            &r.profile, profile,
            "{} recorded for its organizer",
            r.email
        );
        assert_eq!(&r.webinar_key.to_string(), webinar);
    }

    // The first organizer's all arrive; the second's wait, held, not failed.
    let all = until(
        &app,
        "the first organizer's registrations delivered",
        |all| {
            all.iter()
                .filter(|r| r.profile == "default")
                .all(|r| r.state == OutboxState::Delivered)
        },
    )
    .await;
    let theirs: Vec<_> = all.iter().filter(|r| r.profile == "second").collect();
    assert!(
        theirs
            .iter()
            .all(|r| !matches!(r.state, OutboxState::Failed | OutboxState::Dead)),
        "a revoked login fails nothing"
    );
    let held = theirs
        .iter()
        .filter(|r| matches!(r.state, OutboxState::Pending | OutboxState::Delivering))
        .count();
    assert!(held > 0, "the second organizer's registrations are held");
    let ready = app.get("/readyz").await.json;
    let reasons = ready["reasons"].to_string();
    assert!(reasons.contains("organizer second"), "{ready}");
    assert!(!reasons.contains("organizer default"), "{ready}");
    assert_eq!(ready["organizers"][0]["token"], "ok");
    // The metrics say whose delivery waits, too.
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains("g2w_organizer_paused{organizer=\"second\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("g2w_organizer_paused{organizer=\"default\"} 0\n"),
        "{metrics}"
    );

    // Logging in again lets them through, each exactly once.
    login_as(&app.emu, &app.store, "second", second, Some(SECOND_EMAIL)).await;
    let all = until(&app, "every registration delivered", |all| {
        all.len() == 2 * EACH && all.iter().all(|r| r.state == OutboxState::Delivered)
    })
    .await;
    assert_eq!(all.len(), 2 * EACH);
    assert_eq!(
        app.emu.stats().registrants_created,
        (2 * EACH) as u64,
        "each registration created once at GoTo"
    );
    // GoTo has each person on the webinar they chose, under its own organizer.
    for (profile, key, keys) in &organizers {
        let pat = app
            .control("/pats", json!({"organizerKey": key.to_string()}))
            .await;
        let pat = pat["pat"].as_str().unwrap().to_owned();
        let access = oauth(&app.emu)
            .exchange_pat(&pat.into())
            .await
            .unwrap()
            .access_token;
        let mut people = 0;
        for webinar in keys {
            let list: Value = app
                .http
                .get(format!(
                    "{}/G2W/rest/v2/organizers/{key}/webinars/{webinar}/registrants",
                    app.emu.base_url()
                ))
                .bearer_auth(g2w_goto::ExposeSecret::expose_secret(&access))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for r in list.as_array().unwrap() {
                let (owner, chosen) = &expected[r["email"].as_str().unwrap()];
                assert_eq!((owner, chosen), (profile, webinar));
                people += 1;
            }
        }
        assert_eq!(people, EACH, "organizer {profile}");
    }
}

#[tokio::test]
async fn one_organizers_failing_goto_opens_only_its_breaker() {
    let app = TestApp::start_two(|_| {}).await;
    let second = app.second.unwrap();
    let (ours, _) = app.webinar(json!({"subject": "Ours"})).await;
    let (theirs, _) = app
        .webinar(json!({"subject": "Theirs", "organizerKey": second.to_string()}))
        .await;
    // GoTo fails every registration of the second organizer's.
    app.fault(json!({"method": "POST",
                     "pathPrefix": format!("/G2W/rest/v2/organizers/{second}/"),
                     "status": 503}))
        .await;
    for n in 0..3 {
        assert_eq!(
            app.post_json(&theirs, &person(&format!("t{n}@example.com")))
                .await
                .status,
            202
        );
        assert_eq!(
            app.post_json(&ours, &person(&format!("o{n}@example.com")))
                .await
                .status,
            202
        );
    }
    let (_, worker) = &app.workers[1];
    for _ in 0..3 {
        assert!(matches!(
            worker.deliver_next().await.unwrap(),
            Step::Attempted(_)
        ));
        app.advance(61_000);
    }
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.json["organizers"][1]["goto"]["breaker"], "open",
        "{}",
        ready.text
    );
    assert_eq!(ready.json["organizers"][0]["goto"]["breaker"], "closed");
    assert!(
        ready.json["reasons"]
            .to_string()
            .contains("organizer second: GoTo is failing")
    );
    // The first organizer's registrations go out regardless.
    let (_, ours_worker) = &app.workers[0];
    let mut delivered = 0;
    while let Step::Attempted(_) = ours_worker.deliver_next().await.unwrap() {
        delivered += 1;
    }
    assert_eq!(delivered, 3);
    let ours_done = app
        .store
        .list(Some(OutboxState::Delivered), None, 10)
        .await
        .unwrap();
    assert!(ours_done.iter().all(|r| r.profile == "default") && ours_done.len() == 3);
    // GoTo back: a probe closes the breaker and the held ones follow.
    app.clear_faults().await;
    app.deliver_all(5).await;
    assert_eq!(app.count(OutboxState::Delivered).await, 6);
}

#[tokio::test]
async fn the_console_names_each_organizer_and_disconnects_one_while_the_other_delivers() {
    let app = TestApp::start_two(|c| {
        c.admin_password = Some(AdminPassword::Hashed(AdminPassword::hash("right password")));
    })
    .await;
    let second = app.second.unwrap();
    let (ours, _) = app.webinar(json!({"subject": "Ours"})).await;
    let (theirs, _) = app
        .webinar(json!({"subject": "Theirs", "organizerKey": second.to_string()}))
        .await;
    let (cookie, csrf) = sign_in(&app).await;

    let tokens = get_with(&app, "/admin/tokens", &cookie).await;
    assert!(
        tokens.text.contains("Organizer <code>default</code>"),
        "{}",
        tokens.text
    );
    assert!(tokens.text.contains("Organizer <code>second</code>"));
    assert!(tokens.text.contains("sam@example.com"));
    let webinars = get_with(&app, "/admin/webinars", &cookie).await;
    assert!(webinars.text.contains("<th scope=\"col\">Organizer</th>"));
    let row = webinars
        .text
        .split("<tr>")
        .find(|r| r.contains("Theirs"))
        .unwrap();
    assert!(row.contains("<code>second</code>"), "{row}");

    let page = act(
        &app,
        "/admin/organizers/disconnect",
        &format!("csrf={csrf}&organizer=second"),
        &cookie,
    )
    .await;
    assert!(
        page.text.contains("Disconnected (organizer second)"),
        "{}",
        page.text
    );
    assert!(page.text.contains("disconnected in the admin console"));

    // Each webinar's registration goes to its organizer's queue; the disconnected one waits.
    let theirs_reg: Reply = app.post_json(&theirs, &person("held@example.com")).await;
    let ours_reg: Reply = app.post_json(&ours, &person("flows@example.com")).await;
    assert_eq!((theirs_reg.status, ours_reg.status), (202, 202));
    for (profile, worker) in &app.workers {
        let step = worker.deliver_next().await.unwrap();
        match profile.as_str() {
            "default" => assert!(matches!(step, Step::Attempted(_)), "{step:?}"),
            _ => assert!(matches!(step, Step::Paused(_)), "{step:?}"),
        }
    }
    let outbox = get_with(&app, "/admin/outbox?email=held%40example.com", &cookie).await;
    assert!(
        outbox.text.contains("<code>second</code>"),
        "{}",
        outbox.text
    );
    assert!(outbox.text.contains("pending"));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.json["reasons"]
            .to_string()
            .contains("organizer second")
    );

    // Connecting it again starts from its own page, with its profile carried along.
    let connect = get_with(&app, "/admin/connect?organizer=second", &cookie).await;
    assert!(
        connect.text.contains("<option value=\"second\" selected>"),
        "{}",
        connect.text
    );
    assert!(connect.text.contains("name=\"organizer\" value=\"second\""));
}
