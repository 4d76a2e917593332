//! Several organizers: who signs in on the consent page, and GoTo's request budget,
//! which organizers of one account share.

use g2w_emulator::EmulatorConfig;
use reqwest::StatusCode;

use crate::oauth::{REDIRECT, authorize_path, exchange};
use crate::{TestGoto, form, location_query};

const ALL_TIME: &str = "fromTime=2000-01-01T00:00:00Z&toTime=2100-01-01T00:00:00Z";

/// The organizer key `/admin/rest/v1/me` names for `token`.
async fn me(goto: &TestGoto, token: &str) -> u64 {
    let me = goto.get(token, "/admin/rest/v1/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    me.json["key"].as_u64().expect("a numeric key")
}

async fn token_from_code(goto: &TestGoto, code: &str) -> String {
    let reply = exchange(goto, code).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_consent_page_lets_the_person_pick_who_signs_in() {
    let goto = TestGoto::start().await;
    let page = goto
        .send(goto.http.get(goto.url(&authorize_path(&[]))))
        .await;
    assert!(
        page.text.contains("Signed in as"),
        "one organizer: no choice"
    );
    assert!(!page.text.contains("<select"));

    let (second, _) = goto.add_organizer("sam@example.com", None).await;
    let page = goto
        .send(goto.http.get(goto.url(&authorize_path(&[]))))
        .await;
    assert!(
        page.text
            .contains("<label for=\"organizer\">Sign in as</label>")
    );
    let first_option = page.text.split("<option value=\"").nth(1).unwrap();
    assert!(
        first_option.starts_with(&goto.organizer().to_string()),
        "the default organizer is chosen unless the person picks another"
    );
    let id = page
        .text
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let second_text = second.to_string();
    let decided = goto
        .send(
            goto.http
                .post(goto.url("/oauth/authorize/decision"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("request_id", &id),
                    ("decision", "allow"),
                    ("organizer", &second_text),
                ])),
        )
        .await;
    assert_eq!(decided.status, StatusCode::FOUND);
    let (location, q) = location_query(&decided);
    assert!(location.starts_with(REDIRECT));
    let token = token_from_code(&goto, &q["code"]).await;
    assert_eq!(me(&goto, &token).await, second);
}

#[tokio::test]
async fn login_hint_names_the_organizer_when_consent_is_automatic() {
    let goto = TestGoto::start_with(EmulatorConfig {
        auto_approve: true,
        ..Default::default()
    })
    .await;
    let (second, _) = goto.add_organizer("Sam@Example.com", None).await;
    for (hint, expected) in [
        (Some("sam@example.com"), second),
        (Some("nobody@example.com"), goto.organizer()),
        (None, goto.organizer()),
    ] {
        let extra: Vec<(&str, &str)> = hint.map(|h| ("login_hint", h)).into_iter().collect();
        let reply = goto
            .send(goto.http.get(goto.url(&authorize_path(&extra))))
            .await;
        assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text);
        let (_, q) = location_query(&reply);
        let token = token_from_code(&goto, &q["code"]).await;
        assert_eq!(me(&goto, &token).await, expected, "hint {hint:?}");
    }
}

/// How many of `n` quick calls each token got through (not 429).
async fn burst(goto: &TestGoto, calls: &[(String, String)], n: usize) -> Vec<usize> {
    let mut passed = vec![0; calls.len()];
    for _ in 0..n {
        for (i, (token, path)) in calls.iter().enumerate() {
            if goto.get(token, path).await.status == StatusCode::OK {
                passed[i] += 1;
            }
        }
    }
    passed
}

#[tokio::test]
async fn organizers_of_one_account_share_its_rate_limit_and_other_accounts_do_not() {
    let goto = TestGoto::start_with(EmulatorConfig {
        rate_limit: 5,
        ..Default::default()
    })
    .await;
    let account = goto
        .send(goto.http.get(goto.url("/_emulator/organizers")))
        .await
        .json[0]["accountKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let (colleague, colleague_account) = goto
        .add_organizer("colleague@example.com", Some(&account))
        .await;
    assert_eq!(colleague_account.to_string(), account);
    let (stranger, _) = goto.add_organizer("stranger@example.com", None).await;
    let call = |organizer: u64| format!("/G2W/rest/v2/organizers/{organizer}/webinars?{ALL_TIME}");
    let calls = vec![
        (goto.token().await, call(goto.organizer())),
        (goto.token_for(colleague).await, call(colleague)),
        (goto.token_for(stranger).await, call(stranger)),
    ];
    let passed = burst(&goto, &calls, 10).await;
    let shared = passed[0] + passed[1];
    // A few may refill while the loop runs, never a second bucket's worth.
    assert!(
        (5..=7).contains(&shared),
        "one account, one budget: {passed:?}"
    );
    assert!(
        (5..=7).contains(&passed[2]),
        "another account, its own: {passed:?}"
    );
    assert!(passed[0] > 0 && passed[1] > 0, "{passed:?}");
}
