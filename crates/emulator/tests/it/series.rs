//! Webinar series (one webinar per date, sharing a recurrence key) and copies.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::TestGoto;

const ALL_TIME: &str = "fromTime=2000-01-01T00:00:00Z&toTime=2100-01-01T00:00:00Z";
const DAY: i64 = 86_400;

fn times(goto: &TestGoto, days: &[i64]) -> Value {
    let now = goto.emu.now();
    Value::Array(
        days.iter()
            .map(|d| {
                json!({
                    "startTime": g2w_emulator::to_iso(now + d * DAY),
                    "endTime": g2w_emulator::to_iso(now + d * DAY + 3600),
                })
            })
            .collect(),
    )
}

#[tokio::test]
async fn a_series_is_one_webinar_per_date_sharing_a_recurrence_key() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let created = goto
        .post_json(
            &token,
            &goto.org_path("/webinars"),
            &json!({"subject": "Weekly demo", "type": "series", "times": times(&goto, &[7, 14, 21]),
                    "timeZone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let recurrence = created.json["recurrenceKey"]
        .as_str()
        .expect("a recurrence key")
        .to_owned();
    let first = created.json["webinarKey"].as_str().unwrap().to_owned();

    let list = goto
        .get(&token, &goto.org_path(&format!("/webinars?{ALL_TIME}")))
        .await;
    let webinars = list.json["_embedded"]["webinars"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(webinars.len(), 3, "{}", list.text);
    assert!(
        webinars
            .iter()
            .all(|w| w["recurrenceKey"] == recurrence.as_str()
                && w["recurrenceType"] == "series"
                && w["times"].as_array().unwrap().len() == 1)
    );
    let detail = goto
        .get(&token, &goto.org_path(&format!("/webinars/{first}")))
        .await;
    assert_eq!(
        detail.json["recurrenceKey"].as_u64().map(|k| k.to_string()),
        Some(recurrence.clone()),
        "WebinarByKey keys are numbers"
    );

    // A series needs two dates; one session cannot have two.
    for (kind, days) in [
        ("series", vec![7]),
        ("single_session", vec![7, 14]),
        ("weekly", vec![7]),
    ] {
        let refused = goto
            .post_json(
                &token,
                &goto.org_path("/webinars"),
                &json!({"subject": "x", "type": kind, "times": times(&goto, &days)}),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{kind}: {}",
            refused.text
        );
        assert_eq!(refused.json["errorCode"], "RequestValidationError");
    }
}

#[tokio::test]
async fn a_copy_keeps_the_form_and_takes_new_times() {
    let goto = TestGoto::start().await;
    let token = goto.token().await;
    let (source, _) = goto
        .webinar(json!({
            "subject": "Original",
            "description": "kept",
            "timeZone": "Asia/Tokyo",
            "fields": [{"field": "organization", "required": true}],
            "questions": [{"question": "Why?", "type": "shortAnswer", "required": true}],
        }))
        .await;
    let copy_path = format!("/G2W/rest/v2/webinars/{source}/copy");
    let copied = goto
        .put_json(&token, &copy_path, &json!({"times": times(&goto, &[30])}))
        .await;
    assert_eq!(copied.status, StatusCode::CREATED, "{}", copied.text);
    let copy = copied.json["webinarKey"].as_str().unwrap().to_owned();
    assert_ne!(copy, source.to_string());
    let detail = goto
        .get(&token, &goto.org_path(&format!("/webinars/{copy}")))
        .await;
    assert_eq!(detail.json["subject"], "Original");
    assert_eq!(detail.json["description"], "kept");
    assert_eq!(detail.json["timeZone"], "Asia/Tokyo");
    let fields = goto
        .get(
            &token,
            &goto.org_path(&format!("/webinars/{copy}/registrants/fields")),
        )
        .await;
    assert_eq!(fields.json["questions"][0]["question"], "Why?");
    assert!(fields.text.contains("organization"));

    let renamed = goto
        .put_json(
            &token,
            &copy_path,
            &json!({"subject": "Encore", "times": times(&goto, &[40, 47]), "type": "series"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::CREATED, "{}", renamed.text);
    assert!(renamed.json["recurrenceKey"].is_string());

    // Another organizer's token may not copy it; unknown, cancelled and timeless are refused.
    let (other, _) = goto.add_organizer("other@example.com", None).await;
    let theirs = goto.token_for(other).await;
    let forbidden = goto
        .put_json(&theirs, &copy_path, &json!({"times": times(&goto, &[30])}))
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let no_times = goto
        .put_json(&token, &copy_path, &json!({"subject": "x"}))
        .await;
    assert_eq!(no_times.status, StatusCode::BAD_REQUEST);
    let past = goto
        .put_json(&token, &copy_path, &json!({"times": times(&goto, &[-3])}))
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
    let unknown = goto
        .put_json(
            &token,
            "/G2W/rest/v2/webinars/123/copy",
            &json!({"times": times(&goto, &[30])}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    goto.delete(&token, &goto.org_path(&format!("/webinars/{source}")))
        .await;
    let cancelled = goto
        .put_json(&token, &copy_path, &json!({"times": times(&goto, &[30])}))
        .await;
    assert_eq!(cancelled.status, StatusCode::NOT_FOUND);
}
