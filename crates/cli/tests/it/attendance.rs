//! `g2w sessions`, `g2w attendees` and `g2w report attendance` against a session the
//! emulator ran, with people who came, came twice, and did not come.

use g2w_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::{Env, assert_exit, assert_ok, text};

/// A webinar with a question, three registrants (one through GoTo's own page) and one
/// ended session: Ada stayed 10 + 5 minutes, Bo 20 seconds, Cy never came.
async fn setup() -> (Env, String, String) {
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    env.login_pat().await;
    let spec = env
        .control(
            "/webinars",
            json!({"subject": "Attendance",
            "questions": [{"question": "Why?", "type": "shortAnswer"}]}),
        )
        .await;
    let webinar = spec["webinarKey"].as_str().unwrap().to_owned();
    let question = spec["questions"][0]["questionKey"].as_str().unwrap();
    let add = |email: &str, answer: &str| {
        vec![
            "registrants".to_owned(),
            "add".to_owned(),
            webinar.clone(),
            "--email".to_owned(),
            email.to_owned(),
            "--first-name".to_owned(),
            "Ada".to_owned(),
            "--last-name".to_owned(),
            "L".to_owned(),
            "--answer".to_owned(),
            format!("{question}={answer}"),
        ]
    };
    for (email, answer) in [
        ("ada@example.com", "=HYPERLINK(\"x\")"),
        ("cy@example.com", "Curious"),
    ] {
        let args = add(email, answer);
        let out = env
            .run(&args.iter().map(String::as_str).collect::<Vec<_>>(), "")
            .await;
        assert_ok(&out);
    }
    env.control(
        &format!("/webinars/{webinar}/registrants"),
        json!({"firstName": "Bo", "lastName": "K", "email": "bo@example.com"}),
    )
    .await;
    let at = |s: i64| g2w_emulator::to_iso(env.emu.now() - 7_200 + s);
    let ran = env
        .control(
            "/sessions",
            json!({"webinarKey": webinar, "startTime": at(0), "endTime": at(3_600), "attendance": [
                {"email": "ada@example.com", "joinTime": at(60), "leaveTime": at(660)},
                {"email": "ada@example.com", "joinTime": at(1_000), "leaveTime": at(1_300)},
                {"email": "bo@example.com", "joinTime": at(100), "leaveTime": at(120)},
            ]}),
        )
        .await;
    let session = ran["sessionKey"].as_str().unwrap().to_owned();
    (env, webinar, session)
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_and_attendees_list_and_export_with_exact_keys() {
    let (env, webinar, session) = setup().await;
    let out = env
        .run(&["sessions", "list", &webinar, "--format", "json"], "")
        .await;
    assert_ok(&out);
    let sessions: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        sessions[0]["sessionKey"],
        session.as_str(),
        "exact 64-bit key"
    );
    assert_eq!(sessions[0]["registrantsAttended"], 2);

    let out = env.run(&["attendees", "list", &webinar], "").await;
    assert_ok(&out);
    let table = text(&out.stdout);
    assert!(table.starts_with("EMAIL"), "{table}");
    assert!(table.contains("ada@example.com"), "{table}");

    let file = env.data.path().join("attendees.csv");
    let out = env
        .run(
            &[
                "attendees",
                "export",
                &webinar,
                "--session",
                &session,
                "--output",
                file.to_str().unwrap(),
            ],
            "",
        )
        .await;
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("2 attendee(s) written"),
        "{}",
        text(&out.stderr)
    );
    let mut csv = csv::Reader::from_path(&file).unwrap();
    let headers = csv.headers().unwrap().clone();
    let minutes = headers.iter().position(|h| h == "minutes").unwrap();
    let visits = headers.iter().position(|h| h == "visits").unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let ada = rows.iter().find(|r| &r[0] == "ada@example.com").unwrap();
    assert_eq!(
        (&ada[minutes], &ada[visits]),
        ("15", "2"),
        "10 + 5 minutes over two visits"
    );
    let bo = rows.iter().find(|r| &r[0] == "bo@example.com").unwrap();
    assert_eq!(&bo[minutes], "0", "20 seconds round to no minutes");

    let json_out = env
        .run(&["attendees", "export", &webinar, "--format", "json"], "")
        .await;
    let attendees: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(attendees.as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_attendance_report_marks_no_shows_and_keeps_answers_safe_for_spreadsheets() {
    let (env, webinar, _) = setup().await;
    let out = env.run(&["report", "attendance", &webinar], "").await;
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("3 registrant(s): 2 attended, 1 no-show(s)."),
        "{}",
        text(&out.stderr)
    );
    let mut csv = csv::Reader::from_reader(out.stdout.as_slice());
    let headers: Vec<String> = csv.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        headers,
        [
            "email",
            "firstName",
            "lastName",
            "registrantKey",
            "attended",
            "minutes",
            "sessions",
            "Why?"
        ]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let row = |email: &str| rows.iter().find(|r| &r[0] == email).unwrap().clone();
    assert_eq!(
        (&row("ada@example.com")[4], &row("ada@example.com")[5]),
        ("yes", "15")
    );
    assert_eq!(
        &row("ada@example.com")[7],
        "'=HYPERLINK(\"x\")",
        "a formula from the public is not run by a spreadsheet"
    );
    assert_eq!(
        (&row("cy@example.com")[4], &row("cy@example.com")[5]),
        ("no", "0")
    );
    assert_eq!(&row("cy@example.com")[7], "Curious");
    assert_eq!(&row("bo@example.com")[4], "yes");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_webinars_sessions_and_bad_keys_are_clear_errors() {
    let (env, webinar, _) = setup().await;
    let out = env.run(&["sessions", "list", "42"], "").await;
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );
    let out = env
        .run(&["attendees", "list", &webinar, "--session", "42"], "")
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("session 42"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["attendees", "list", "12.5"], "").await;
    assert_exit(&out, 2);
    let out = env
        .run(
            &[
                "report",
                "attendance",
                &webinar,
                "--output",
                "/nonexistent/dir/r.csv",
            ],
            "",
        )
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot write /nonexistent/dir/r.csv"),
        "{}",
        text(&out.stderr)
    );
}
