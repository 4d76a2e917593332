//! The console's pictures (issue 26): a webinar's sign-ups per day and, once it has run,
//! who came; the queues over the last day; each organizer's share of GoTo's budget;
//! and the webinars list's registrant count, true even while the cache is old.

use g2w_goto::{EventName, RegistrantKey, WebinarKey};
use g2w_store::{EventSource, NewEvent};
use serde_json::json;

use crate::admin::{app as console_app, get_with, sign_in};
use crate::person;

fn joined_or_added(webinar: &str, registrant: u64, name: EventName) -> NewEvent {
    NewEvent {
        event_key: format!("{name:?}-{registrant}"),
        event_name: name,
        source: EventSource::Webhook,
        webinar_key: Some(webinar.parse::<WebinarKey>().unwrap()),
        registrant_key: Some(RegistrantKey::new(registrant)),
        session_key: None,
        email: None,
        headers: "{}".into(),
        body: "{}".into(),
        received_at: g2w_goto::Timestamp::now(),
        forward: false,
    }
}

#[tokio::test]
async fn a_webinar_shows_its_sign_ups_per_day_and_once_run_who_came() {
    let app = console_app().await;
    let (cookie, _) = sign_in(&app).await;
    let (webinar, _) = app.webinar(json!({"subject": "Pictured"})).await;
    for n in 0..3 {
        let r = app
            .post_json(&webinar, &person(&format!("p{n}@example.com")))
            .await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    app.deliver_all(3).await;

    // The list's count: GoTo's as of the cache's look, plus what g2w delivered since.
    let list = get_with(&app, "/admin/webinars", &cookie).await;
    assert!(
        list.text
            .contains(&format!("href=\"/admin/webinars/{webinar}\"")),
        "{}",
        list.text
    );
    assert!(
        list.text.contains("data-label=\"Registrants\">3 (GoTo&#39;s 0 as of 0 min ago, and 3 delivered by g2w since)<"),
        "the true count: {}",
        list.text
    );

    let page = get_with(&app, &format!("/admin/webinars/{webinar}"), &cookie).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("<svg class=\"chart\""), "a picture");
    assert!(page.text.contains("Sign-ups through g2w per day: 3 in all"));
    assert!(
        page.text.contains("data-label=\"Sign-ups\">3<"),
        "the numbers in a table"
    );
    assert!(!page.text.contains("Who came"), "not before it has run");

    // After the start: registered → attended → no-show, from GoTo's events.
    for (n, name) in [
        (1, EventName::RegistrantAdded),
        (2, EventName::RegistrantAdded),
        (3, EventName::RegistrantAdded),
        (1, EventName::RegistrantJoined),
    ] {
        app.store
            .record_event(&joined_or_added(&webinar, n, name))
            .await
            .unwrap();
    }
    app.advance(8 * 86_400_000);
    // A week on, the console's session has ended: sign in again.
    let (cookie, _) = sign_in(&app).await;
    let after = get_with(&app, &format!("/admin/webinars/{webinar}"), &cookie).await;
    assert!(
        after
            .text
            .contains("Of 3 registered, 1 attended and 2 did not"),
        "{}",
        after.text
    );
    assert!(after.text.contains("data-label=\"How many\">2<"));

    assert_eq!(
        get_with(&app, "/admin/webinars/123", &cookie).await.status,
        404
    );
    assert_eq!(
        get_with(&app, "/admin/webinars/nope", &cookie).await.status,
        404
    );
}

#[tokio::test]
async fn the_activity_page_draws_the_queue_and_each_organizers_budget() {
    let app = console_app().await;
    let (cookie, _) = sign_in(&app).await;
    let (webinar, _) = app.webinar(json!({"subject": "Busy"})).await;
    for n in 0..4 {
        app.post_json(&webinar, &person(&format!("b{n}@example.com")))
            .await;
    }
    app.fault(json!({"method": "POST", "pathPrefix": "/G2W", "status": 429, "count": 1}))
        .await;
    app.deliver_all(3).await;
    let page = get_with(&app, "/admin/activity", &cookie).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(
        page.text.matches("<svg class=\"chart\"").count(),
        4,
        "four pictures"
    );
    // This hour's row: 4 delivered, one 429.
    assert!(
        page.text.contains("data-label=\"Delivered\">4<")
            && page.text.contains("data-label=\"429s\">1<"),
        "{}",
        page.text
    );
    assert!(page.text.contains("data-label=\"Organizer\">default<"));
    // Signed out: no pictures.
    assert_eq!(app.get("/admin/activity").await.status, 303);
}
