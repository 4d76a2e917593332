//! `g2w webinars` and `g2w registrants` (add, list, show, remove, export, import)
//! against the emulator.

use std::process::Stdio;
use std::time::{Duration, Instant};

use g2w_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::{Env, assert_exit, assert_ok, text};

const CREATE: &str =
    "POST /G2W/rest/v2/organizers/{organizer_key}/webinars/{webinar_key}/registrants";

async fn setup() -> (Env, String, Value) {
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    env.login_pat().await;
    let spec = env
        .control("/webinars", json!({"subject": "Import target",
            "fields": [{"field": "organization", "required": true}],
            "questions": [{"question": "What brings you here?", "type": "shortAnswer", "required": true, "maxSize": 50},
                          {"question": "Team size", "type": "multipleChoice", "answers": ["Small", "Large"]}]}))
        .await;
    (env, spec["webinarKey"].as_str().unwrap().to_owned(), spec)
}

fn write(env: &Env, name: &str, bytes: &[u8]) -> String {
    let path = env.data.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn webinars_list_and_show_in_every_format() {
    let (env, webinar, _) = setup().await;
    env.control("/webinars", json!({"subject": "Another one"}))
        .await;
    let json_out = env.run(&["webinars", "list", "--format", "json"], "").await;
    assert_ok(&json_out);
    let list: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|w| w["webinarKey"] == webinar.as_str()),
        "64-bit keys exact"
    );

    let csv_out = env
        .run(
            &["webinars", "list", "--format", "csv", "--subject", "IMPORT"],
            "",
        )
        .await;
    let csv_text = text(&csv_out.stdout);
    assert!(
        csv_text.starts_with("webinarKey,start,subject,timeZone,registrationUrl\n"),
        "{csv_text}"
    );
    assert_eq!(csv_text.lines().count(), 2);
    assert!(csv_text.contains(&webinar));
    let table = env.run(&["webinars", "list"], "").await;
    assert!(text(&table.stdout).starts_with("WEBINARKEY"));
    let none = env
        .run(
            &[
                "webinars",
                "list",
                "--from",
                "2001-01-01",
                "--to",
                "2001-02-01",
                "--format",
                "json",
            ],
            "",
        )
        .await;
    assert_eq!(text(&none.stdout).trim(), "[]");
    assert_exit(
        &env.run(&["webinars", "list", "--from", "someday"], "")
            .await,
        2,
    );

    let show = env.run(&["webinars", "show", &webinar], "").await;
    assert_ok(&show);
    let out = text(&show.stdout);
    for expected in [
        "Import target",
        "registration URL",
        "organization",
        "required",
        "What brings you here?",
        "Large",
    ] {
        assert!(out.contains(expected), "{expected} missing in {out}");
    }
    let missing = env.run(&["webinars", "show", "42"], "").await;
    assert_exit(&missing, 1);
    assert!(text(&missing.stderr).contains("not found"));
    assert_exit(&env.run(&["webinars", "show", "not-a-key"], "").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn add_checks_the_form_before_sending_and_treats_a_repeat_as_success() {
    let (env, webinar, _) = setup().await;
    let base = [
        "registrants",
        "add",
        webinar.as_str(),
        "--email",
        "ada@example.com",
        "--first-name",
        "Ada",
        "--last-name",
        "Lovelace",
    ];
    let missing = env.run(&base, "").await;
    assert_exit(&missing, 1);
    let err = text(&missing.stderr);
    assert!(
        err.contains("organization is required")
            && err.contains("\"What brings you here?\" an answer is required")
            && !err.contains("q_"),
        "{err}"
    );
    assert_eq!(env.emu.stats().route_total(CREATE), 0, "nothing sent");

    let mut ok = base.to_vec();
    ok.extend([
        "--field",
        "organization=Engines",
        "--answer",
        "What brings you here?=Curiosity",
        "--answer",
        "team size=large",
    ]);
    let added = env.run(&ok, "").await;
    assert_ok(&added);
    assert!(
        text(&added.stdout).contains("join URL: http"),
        "{}",
        text(&added.stdout)
    );
    let again = env.run(&ok, "").await;
    assert_ok(&again);
    let again_out = text(&again.stdout);
    assert!(again_out.contains("already registered"));
    let url = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("join URL:"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        url(&again_out),
        url(&text(&added.stdout)),
        "the existing join URL"
    );

    let bad_field = env
        .run(&[&ok[..], &["--field", "shoeSize=42"]].concat(), "")
        .await;
    assert_exit(&bad_field, 1);
    assert!(text(&bad_field.stderr).contains("shoeSize"));
    let bad_answer = env
        .run(
            &[
                &base[..],
                &[
                    "--field",
                    "organization=E",
                    "--answer",
                    "What brings you here?=x",
                    "--answer",
                    "Team size=Huge",
                ],
            ]
            .concat(),
            "",
        )
        .await;
    assert_exit(&bad_answer, 1);

    // list, show, export, remove.
    let list = env
        .run(&["registrants", "list", &webinar, "--format", "json"], "")
        .await;
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    let key = rows[0]["registrantKey"].as_str().unwrap().to_owned();
    assert!(key.parse::<u64>().unwrap() > 1 << 53);
    let show = env.run(&["registrants", "show", &webinar, &key], "").await;
    assert!(text(&show.stdout).contains("Curiosity") && text(&show.stdout).contains("Engines"));
    let export = env.run(&["registrants", "export", &webinar], "").await;
    let exported = text(&export.stdout);
    assert!(
        exported.starts_with("registrantKey,email,firstName,lastName"),
        "{exported}"
    );
    assert!(exported.contains("question: What brings you here?") && exported.contains(&key));
    let export_json = env
        .run(&["registrants", "export", &webinar, "--format", "json"], "")
        .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&export_json.stdout).unwrap()[0]["organization"],
        "Engines"
    );
    let fields = env.run(&["registrants", "fields", &webinar], "").await;
    assert!(text(&fields.stdout).contains("multiple choice"));
    assert_ok(
        &env.run(&["registrants", "remove", &webinar, &key], "")
            .await,
    );
    let list = env
        .run(&["registrants", "list", &webinar, "--format", "csv"], "")
        .await;
    assert_eq!(
        text(&list.stdout).lines().count(),
        1,
        "only the header left"
    );
}

fn people_csv(rows: usize, start: usize) -> String {
    let mut s =
        String::from("First Name,last_name,E-mail,Company,What brings you here?,team size\n");
    for i in start..start + rows {
        s.push_str(&format!(
            "Person,Number {i},p{i}@example.com,Acme,\"Learning, mostly\",Small\n"
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn import_with_good_invalid_and_duplicate_rows_and_a_report() {
    let (env, webinar, _) = setup().await;
    let mut csv_text = people_csv(5, 0);
    csv_text.push_str("Bad,Row,not-an-email,Acme,x,Small\n");
    csv_text.push_str("No,Answer,na@example.com,Acme,,Small\n");
    csv_text.push_str("Person,Again,P0@example.com,Acme,dup,Large\n");
    let mut bytes = csv_text.into_bytes();
    // Too many fields, and text that is not UTF-8: refused, but still someone's.
    bytes.extend_from_slice(b"Extra,Fields,extra@example.com,Acme,x,Small,surplus\n");
    bytes.extend_from_slice(b"Ren\xe9,Latin,rene@example.com,Acme,x,Small\n");
    let file = write(&env, "people.csv", &bytes);

    let dry = env
        .run(&["registrants", "import", &webinar, &file, "--dry-run"], "")
        .await;
    assert_exit(&dry, 1);
    let problems = text(&dry.stderr);
    assert!(
        problems.contains("line 7: email is not a valid email address"),
        "{problems}"
    );
    assert!(
        problems.contains("line 8: \"What brings you here?\" an answer is required"),
        "{problems}"
    );
    assert!(
        text(&dry.stdout).contains("10 rows: 6 valid, 4 invalid"),
        "{}",
        text(&dry.stdout)
    );
    assert_eq!(
        env.emu.stats().route_total(CREATE),
        0,
        "a dry run sends nothing"
    );

    let report = env.data.path().join("report.csv");
    let out = env
        .run(
            &[
                "registrants",
                "import",
                &webinar,
                &file,
                "--report",
                report.to_str().unwrap(),
            ],
            "",
        )
        .await;
    assert_exit(&out, 1);
    assert!(
        text(&out.stdout).contains("registered: 5, already registered: 1, invalid: 4, failed: 0"),
        "{}",
        text(&out.stdout)
    );
    let report_text = std::fs::read_to_string(&report).unwrap();
    let lines: Vec<&str> = report_text.lines().collect();
    assert_eq!(
        lines[0],
        "line,email,firstName,lastName,outcome,registrantKey,joinUrl,detail"
    );
    assert_eq!(lines.len(), 11);
    assert!(lines[1].starts_with("2,p0@example.com,Person,Number 0,registered,"));
    assert!(
        lines[8].contains("already_registered") && lines[8].contains("/join/"),
        "{}",
        lines[8]
    );
    assert!(
        lines[6].starts_with("7,not-an-email,Bad,Row,invalid,"),
        "refused rows keep who they named: {}",
        lines[6]
    );
    assert!(
        lines[9].starts_with("10,extra@example.com,Extra,Fields,invalid,"),
        "{}",
        lines[9]
    );
    assert!(
        lines[10].starts_with("11,rene@example.com,Ren\u{fffd},Latin,invalid,"),
        "{}",
        lines[10]
    );
    assert_eq!(env.emu.stats().registrants_created, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_under_faults_registers_every_valid_row_exactly_once() {
    let (env, webinar, _) = setup().await;
    let file = write(&env, "many.csv", people_csv(60, 0).as_bytes());
    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W", "status": 500, "probability": 0.2}),
    )
    .await;
    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W", "status": 429, "retryAfter": 0, "count": 5}),
    )
    .await;
    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W", "drop": true, "count": 5}),
    )
    .await;
    let out = env
        .run(
            &[
                "registrants",
                "import",
                &webinar,
                &file,
                "--concurrency",
                "8",
            ],
            "",
        )
        .await;
    // Retries are bounded: a row can still fail after five 500s; a re-run finishes it.
    if !out.status.success() {
        env.http
            .delete(format!("{}/_emulator/faults", env.emu.base_url()))
            .send()
            .await
            .unwrap();
        assert_ok(
            &env.run(&["registrants", "import", &webinar, &file], "")
                .await,
        );
    }
    assert_eq!(env.emu.stats().registrants_created, 60);
    let list = env
        .run(&["registrants", "list", &webinar, "--format", "json"], "")
        .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&list.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        60
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_import_continues_where_it_stopped() {
    let (env, webinar, _) = setup().await;
    let file = write(&env, "resume.csv", people_csv(40, 0).as_bytes());
    env.control(
        "/faults",
        json!({"method": "POST", "pathPrefix": "/G2W", "delayMs": 100}),
    )
    .await;
    let child = env
        .g2w(&[
            "registrants",
            "import",
            &webinar,
            &file,
            "--concurrency",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.emu.stats().registrants_created < 6 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    crate::signal(&child, "INT");
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(130), "{}", text(&first.stderr));
    assert!(text(&first.stderr).contains("run the same command again"));
    let done_first = env.emu.stats().registrants_created;
    assert!(done_first < 40, "stopped early ({done_first})");
    let calls_first = env.emu.stats().route_total(CREATE);

    env.http
        .delete(format!("{}/_emulator/faults", env.emu.base_url()))
        .send()
        .await
        .unwrap();
    let second = env
        .run(&["registrants", "import", &webinar, &file], "")
        .await;
    assert_ok(&second);
    assert!(
        text(&second.stdout).contains(&format!("done in an earlier run: {done_first}")),
        "{}",
        text(&second.stdout)
    );
    assert_eq!(env.emu.stats().registrants_created, 40);
    assert_eq!(
        env.emu.stats().route_total(CREATE) - calls_first,
        40 - done_first,
        "no call for rows already done"
    );
    let third = env
        .run(&["registrants", "import", &webinar, &file], "")
        .await;
    assert_ok(&third);
    assert_eq!(
        env.emu.stats().route_total(CREATE) - calls_first,
        40 - done_first,
        "a third run calls nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn awkward_csv_files_give_clear_errors_with_line_numbers() {
    let (env, webinar, _) = setup().await;
    let header = "First Name,last_name,E-mail,Company,What brings you here?\r\n";
    // BOM, CRLF, quoted commas and newlines: all fine.
    let fine = format!(
        "\u{feff}{header}\"Ada, Countess\",Lovelace,ada@example.com,\"Engines\r\nLtd\",\"Multi\r\nline, answer\"\r\n"
    );
    let path = write(&env, "fine.csv", fine.as_bytes());
    let out = env
        .run(&["registrants", "import", &webinar, &path], "")
        .await;
    assert_ok(&out);
    let detail = env
        .run(&["registrants", "list", &webinar, "--format", "json"], "")
        .await;
    assert!(text(&detail.stdout).contains("Ada, Countess"));

    let mut latin1 = header.as_bytes().to_vec();
    latin1.extend(b"Jos\xe9,Garc\xeda,jose@example.com,Acme,x\r\n");
    let path = write(&env, "latin1.csv", &latin1);
    let out = env
        .run(&["registrants", "import", &webinar, &path, "--dry-run"], "")
        .await;
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("line 2: field 1 is not UTF-8"),
        "{}",
        text(&out.stderr)
    );

    let empty = write(&env, "empty.csv", b"");
    let out = env
        .run(&["registrants", "import", &webinar, &empty], "")
        .await;
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("is empty"));
    let only_header = write(&env, "header.csv", header.as_bytes());
    let out = env
        .run(&["registrants", "import", &webinar, &only_header], "")
        .await;
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("no rows"));
    let no_email = write(&env, "noemail.csv", b"first,last\nA,B\n");
    let out = env
        .run(&["registrants", "import", &webinar, &no_email], "")
        .await;
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("line 1: the header has no email column"));

    let mut huge = header.as_bytes().to_vec();
    huge.extend(b"Big,Line,big@example.com,Acme,");
    huge.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    huge.extend(b"\r\nOk,Row,ok@example.com,Acme,fine\r\n");
    let path = write(&env, "huge.csv", &huge);
    let out = env
        .run(&["registrants", "import", &webinar, &path, "--dry-run"], "")
        .await;
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("line 2: \"What brings you here?\" is longer than 50"),
        "{}",
        &err[..err.len().min(500)]
    );
    assert!(text(&out.stdout).contains("2 rows: 1 valid, 1 invalid"));
    let ragged = write(
        &env,
        "ragged.csv",
        format!("{header}A,B,c@example.com,Acme,x,extra\r\n").as_bytes(),
    );
    let out = env
        .run(
            &["registrants", "import", &webinar, &ragged, "--dry-run"],
            "",
        )
        .await;
    assert!(
        text(&out.stderr).contains("line 2: has 6 fields but the header has 5"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("panicked"));
}
