//! `g2w webinars create|update|cancel|copy` against the emulator: times read in the
//! webinar's zone across daylight saving, refusals before anything is sent, GoTo's own
//! refusals, and a cancel that says what the gateway still queues.

use chrono::{Datelike as _, NaiveDate, Weekday};
use g2w_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::serve::start_serve;
use crate::{Env, assert_exit, assert_ok, text};

/// Next year, so every time is ahead of the clocks.
fn year() -> i32 {
    chrono::Utc::now().year() + 1
}

/// The last Sunday of `month` next year: Europe's daylight-saving days (March: the
/// clocks skip 02:00–03:00; October: they pass 02:00–03:00 twice).
fn last_sunday(month: u32) -> NaiveDate {
    let mut day = NaiveDate::from_ymd_opt(year(), month + 1, 1)
        .unwrap()
        .pred_opt()
        .unwrap();
    while day.weekday() != Weekday::Sun {
        day = day.pred_opt().unwrap();
    }
    day
}

fn json_out(out: &std::process::Output) -> Value {
    assert_ok(out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

/// How many webinar-changing requests the emulator got.
fn changes_sent(env: &Env) -> u64 {
    let stats = env.emu.stats();
    stats
        .requests
        .iter()
        .filter(|(route, _)| {
            !route.starts_with("GET ")
                && route.contains("webinars")
                && !route.contains("registrants")
        })
        .map(|(_, by_status)| by_status.values().sum::<u64>())
        .sum()
}

#[tokio::test]
async fn create_update_copy_and_cancel_read_times_in_the_webinars_zone() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    let y = year();
    let start = format!("{y}-03-04 09:00");
    let created = json_out(
        &env.run(
            &[
                "webinars",
                "create",
                "--subject",
                "Launch",
                "--start",
                &start,
                "--end",
                "10:30",
                "--time-zone",
                "Europe/Berlin",
                "--description",
                "The first one",
                "--format",
                "json",
            ],
            "",
        )
        .await,
    );
    let key = created["webinarKey"].as_str().unwrap().to_owned();
    assert_eq!(
        created["webinar"]["times"][0]["startTime"],
        format!("{y}-03-04T08:00:00Z")
    );
    assert_eq!(
        created["webinar"]["times"][0]["endTime"],
        format!("{y}-03-04T09:30:00Z")
    );
    assert_eq!(created["webinar"]["timeZone"], "Europe/Berlin");
    assert!(created["recurrenceKey"].is_null());

    // A summer start keeps the 90 minutes and is read in summer time.
    let summer = format!("{y}-07-01 09:00");
    assert_ok(
        &env.run(&["webinars", "update", &key, "--start", &summer], "")
            .await,
    );
    let shown = json_out(
        &env.run(&["webinars", "show", &key, "--format", "json"], "")
            .await,
    );
    assert_eq!(
        shown["webinar"]["times"][0]["startTime"],
        format!("{y}-07-01T07:00:00Z")
    );
    assert_eq!(
        shown["webinar"]["times"][0]["endTime"],
        format!("{y}-07-01T08:30:00Z")
    );

    // A dry run prints the request and changes nothing.
    let dry = env
        .run(
            &[
                "webinars",
                "update",
                &key,
                "--subject",
                "Renamed",
                "--notify",
                "--dry-run",
            ],
            "",
        )
        .await;
    assert_ok(&dry);
    let said = text(&dry.stdout);
    let organizer = env.emu.default_organizer_key();
    assert!(
        said.contains(&format!(
            "PUT /G2W/rest/v2/organizers/{organizer}/webinars/{key}?notifyParticipants=true"
        )),
        "{said}"
    );
    assert!(said.contains("\"subject\": \"Renamed\""), "{said}");
    let shown = json_out(
        &env.run(&["webinars", "show", &key, "--format", "json"], "")
            .await,
    );
    assert_eq!(shown["webinar"]["subject"], "Launch");
    let updated = env
        .run(&["webinars", "update", &key, "--subject", "Launch 2"], "")
        .await;
    assert_ok(&updated);
    assert!(text(&updated.stdout).contains("Updated \"Launch 2\""));
    assert!(
        text(&updated.stdout).contains("(Europe/Berlin)"),
        "{}",
        text(&updated.stdout)
    );

    // A copy keeps the form and the length and takes the source's zone.
    let autumn = format!("{y}-11-05 09:00");
    let copied = json_out(
        &env.run(
            &[
                "webinars", "copy", &key, "--start", &autumn, "--format", "json",
            ],
            "",
        )
        .await,
    );
    assert_eq!(copied["copiedFrom"], key.as_str());
    assert_eq!(copied["webinar"]["subject"], "Launch 2");
    assert_eq!(
        copied["webinar"]["times"][0]["startTime"],
        format!("{y}-11-05T08:00:00Z")
    );
    assert_eq!(
        copied["webinar"]["times"][0]["endTime"],
        format!("{y}-11-05T09:30:00Z")
    );
    let copy_key = copied["webinarKey"].as_str().unwrap().to_owned();
    assert_ne!(copy_key, key);

    // A series: a webinar per date, listed with their keys.
    let series = env
        .run(
            &[
                "webinars",
                "create",
                "--subject",
                "Weekly",
                "--type",
                "series",
                "--time-zone",
                "America/New_York",
                "--start",
                &format!("{y}-03-01 12:00"),
                "--end",
                "13:00",
                "--start",
                &format!("{y}-03-08 12:00"),
                "--end",
                "13:00",
                "--start",
                &format!("{y}-03-15 12:00"),
                "--end",
                "13:00",
            ],
            "",
        )
        .await;
    assert_ok(&series);
    let said = text(&series.stdout);
    assert!(said.contains("(3 dates)"), "{said}");
    // 8 March is the first day of daylight saving time in New York in most years; either
    // way each date is read on that day's clocks.
    assert!(said.contains("12:00 – 13:00 E"), "{said}");

    // Cancel asks; without a terminal it needs --yes, and nothing is cancelled.
    let refused = env.run(&["webinars", "cancel", &copy_key], "").await;
    assert_exit(&refused, 1);
    assert!(
        text(&refused.stderr).contains("Not without --yes"),
        "{}",
        text(&refused.stderr)
    );
    assert_ok(&env.run(&["webinars", "show", &copy_key], "").await);
    let cancelled = json_out(
        &env.run(
            &[
                "webinars", "cancel", &copy_key, "--yes", "--notify", "--format", "json",
            ],
            "",
        )
        .await,
    );
    assert_eq!(cancelled["cancelled"], true);
    assert_eq!(cancelled["notified"], true);
    let gone = env.run(&["webinars", "show", &copy_key], "").await;
    assert_exit(&gone, 1);
}

#[tokio::test]
async fn daylight_saving_and_bad_input_are_refused_before_anything_is_sent() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    let y = year();
    let create = |start: String, end: &str, zone: &str| {
        vec![
            "webinars".to_owned(),
            "create".to_owned(),
            "--subject".to_owned(),
            "X".to_owned(),
            "--start".to_owned(),
            start,
            "--end".to_owned(),
            end.to_owned(),
            "--time-zone".to_owned(),
            zone.to_owned(),
        ]
    };
    let spring = last_sunday(3);
    let autumn = last_sunday(10);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            create(format!("{spring} 02:30"), "04:00", "Europe/Berlin"),
            "does not exist in Europe/Berlin",
        ),
        (
            create(format!("{autumn} 02:30"), "04:00", "Europe/Berlin"),
            "happens twice in Europe/Berlin",
        ),
        (
            create(format!("{y}-03-04 09:00"), "08:00", "Europe/Berlin"),
            "ends before it starts",
        ),
        (
            create(format!("{y}-03-04 09:00"), "10:00", "Mars/Olympus"),
            "is not a time zone",
        ),
        (
            create("2020-03-04 09:00".to_owned(), "10:00", "Europe/Berlin"),
            "in the past",
        ),
        (
            create(format!("{y}-03-04 09:00"), "10:00", "Europe/Berlin")
                .into_iter()
                .chain([
                    "--start".to_owned(),
                    format!("{y}-03-11 09:00"),
                    "--end".to_owned(),
                    "10:00".to_owned(),
                ])
                .collect(),
            "--type series",
        ),
        (
            create(format!("{y}-03-04 09:00"), "10:00", "Europe/Berlin")
                .into_iter()
                .map(|a| if a == "X" { "x".repeat(129) } else { a })
                .collect(),
            "at most 128",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&args, "").await;
        assert_exit(&out, 1);
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // The offset form names one moment even on the night the clocks go back.
    let out = env
        .run(
            &create(format!("{autumn}T02:30+01:00"), "04:00", "Europe/Berlin")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            "",
        )
        .await;
    assert_ok(&out);
    let sent_before = changes_sent(&env);
    assert_eq!(sent_before, 1, "only the good one reached GoTo");

    for (args, code) in [
        (vec!["webinars", "update", "abc", "--subject", "x"], 2),
        (vec!["webinars", "update", "1.5e18", "--subject", "x"], 2),
        (
            vec![
                "webinars",
                "create",
                "--subject",
                "x",
                "--start",
                "tomorrow",
                "--end",
                "10:00",
                "--time-zone",
                "UTC",
            ],
            2,
        ),
        (
            vec![
                "webinars",
                "create",
                "--subject",
                "x",
                "--start",
                "2030-01-01 09:00",
                "--end",
                "10:00",
                "--time-zone",
                "UTC",
                "--type",
                "weekly",
            ],
            2,
        ),
        (vec!["webinars", "copy", "123"], 1),
    ] {
        let out = env.run(&args, "").await;
        assert_exit(&out, code);
    }
    assert_eq!(changes_sent(&env), sent_before);
}

#[tokio::test]
async fn gotos_refusals_are_said_and_a_create_is_never_sent_twice() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    let y = year();
    let start = format!("{y}-03-04 09:00");
    let args = [
        "webinars",
        "create",
        "--subject",
        "Launch",
        "--start",
        &start,
        "--end",
        "10:00",
        "--time-zone",
        "Europe/Berlin",
    ];
    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W/rest/v2/organizers", "status": 400, "count": 1,
               "body": {"errorCode": "RequestValidationError", "description": "times not valid"}}),
    )
    .await;
    let refused = env.run(&args, "").await;
    assert_exit(&refused, 1);
    assert!(
        text(&refused.stderr).contains("times not valid"),
        "{}",
        text(&refused.stderr)
    );

    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W/rest/v2/organizers", "status": 503, "count": 1}),
    )
    .await;
    let failed = env.run(&args, "").await;
    assert_exit(&failed, 1);
    assert!(
        text(&failed.stderr).contains("check with `g2w webinars list` before trying again"),
        "{}",
        text(&failed.stderr)
    );
    assert_eq!(
        changes_sent(&env),
        2,
        "the 503 was not repeated: it may have made a webinar"
    );

    // A webinar that is over cannot be cancelled: GoTo's 405 is said.
    let key = env
        .control("/webinars", json!({"subject": "Soon over"}))
        .await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    env.emu.advance_clock(30 * 24 * 3600);
    let over = env.run(&["webinars", "cancel", &key, "--yes"], "").await;
    assert_exit(&over, 1);
    assert!(
        text(&over.stderr).contains("past"),
        "{}",
        text(&over.stderr)
    );
}

#[tokio::test]
async fn cancelling_a_webinar_with_queued_registrations_says_so_first() {
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    env.login_pat().await;
    let key = env.control("/webinars", json!({"subject": "Busy"})).await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    // GoTo refuses registrations for a while: the gateway keeps them queued.
    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W/rest/v2/organizers", "status": 503}),
    )
    .await;
    let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"]);
    cmd.env("G2W_RATE_LIMIT", "0");
    let (child, base) = start_serve(cmd);
    let queued = env
        .http
        .post(format!("{base}/api/v1/webinars/{key}/registrations"))
        .json(&json!({"firstName": "Q", "lastName": "Ueued", "email": "queued@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 202);
    crate::signal(&child, "TERM");
    let _ = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await;
    env.http
        .delete(format!("{}/_emulator/faults", env.emu.base_url()))
        .send()
        .await
        .unwrap();

    let dry = env
        .run(&["webinars", "cancel", &key, "--dry-run"], "")
        .await;
    assert_ok(&dry);
    assert!(
        text(&dry.stderr).contains("1 registration(s) for it are still queued"),
        "{}",
        text(&dry.stderr)
    );
    let asked = env.run(&["webinars", "cancel", &key], "").await;
    assert_exit(&asked, 1);
    let said = text(&asked.stderr);
    assert!(
        said.contains("1 registration(s) for this webinar are still queued"),
        "{said}"
    );
    assert!(said.contains("Cancel \"Busy\""), "{said}");
    let done = env.run(&["webinars", "cancel", &key, "--yes"], "").await;
    assert_ok(&done);
    assert!(text(&done.stdout).contains("1 queued registration(s) for it will fail"));
}
