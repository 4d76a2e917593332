//! `g2w sources` as a user runs it beside `g2w serve`: add a Tally source, see a post that
//! cannot be mapped kept and listed, test a payload, fix the mapping, replay it, remove.

use std::time::{Duration, Instant};

use base64::Engine as _;
use g2w_emulator::EmulatorConfig;
use hmac::Mac as _;
use serde_json::{Value, json};

use crate::serve::start_serve;
use crate::{Env, assert_exit, assert_ok, text};

const SECRET: &str = "tally-signing-secret-3f9a";

fn tally_fixture() -> Value {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gateway/tests/fixtures/sources/tally.json"
    ))
    .unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn tally_signature(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tally_source_from_adding_it_to_a_fixed_mapping_and_a_replay() {
    let env = Env::start(EmulatorConfig::default()).await;
    env.login_pat().await;
    let webinar = env
        .control(
            "/webinars",
            json!({"subject": "Spring launch", "questions": [
                {"question": "What would you like to learn?", "type": "shortAnswer", "required": true},
                {"question": "Team size", "type": "multipleChoice", "answers": ["1-10", "11-50", "51+"]}]}),
        )
        .await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();

    // `g2w sources add tally --name NAME --webinar KEY --secret-stdin EXTRA…`
    let add = |name: &'static str, extra: &'static [&'static str], stdin: &'static str| {
        let mut args = vec![
            "sources",
            "add",
            "tally",
            "--name",
            name,
            "--webinar",
            &webinar,
        ];
        if !stdin.is_empty() {
            args.push("--secret-stdin");
        }
        args.extend(extra);
        let cmd = env.g2w(&args);
        Env::run_cmd(cmd, stdin)
    };
    // A signed tool needs its secret; a name is a URL segment; a mapping names both sides.
    let no_secret = add("spring", &[], "").await;
    assert_exit(&no_secret, 1);
    assert!(
        text(&no_secret.stderr).contains("--secret-stdin"),
        "{}",
        text(&no_secret.stderr)
    );
    assert_exit(&add("spring launch", &[], SECRET).await, 1);
    let bad_map = add("spring", &["--map", "email"], SECRET).await;
    assert_exit(&bad_map, 1);
    assert!(
        text(&bad_map.stderr).contains("GOTO_FIELD=TOOL_FIELD"),
        "{}",
        text(&bad_map.stderr)
    );

    let added = add("spring", &[], SECRET).await;
    assert_ok(&added);
    assert!(
        text(&added.stdout).contains("/in/spring"),
        "{}",
        text(&added.stdout)
    );
    let again = add("spring", &[], SECRET).await;
    assert_exit(&again, 1);
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );

    let (mut gateway, base) = start_serve(env.g2w(&["serve", "--listen", "127.0.0.1:0"]));
    // The form calls its email field something nobody would guess.
    let mut body = tally_fixture();
    body["data"]["fields"][2]["label"] = json!("Where do we write to you?");
    body["data"]["fields"][2]["type"] = json!("INPUT_TEXT");
    let body = serde_json::to_vec(&body).unwrap();
    let post = |body: Vec<u8>| {
        let http = env.http.clone();
        let url = format!("{base}/in/spring");
        async move {
            let signature = tally_signature(&body);
            http.post(url)
                .header("content-type", "application/json")
                .header("Tally-Signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let kept = post(body.clone()).await;
    assert_eq!(kept.status(), 202);

    let failures = env.run(&["sources", "failures", "spring"], "").await;
    assert_ok(&failures);
    assert!(
        text(&failures.stdout).contains("email is required"),
        "{}",
        text(&failures.stdout)
    );
    let show = env.run(&["sources", "show", "spring"], "").await;
    assert_ok(&show);
    let shown = text(&show.stdout);
    assert!(shown.contains("NOT FOUND"), "{shown}");
    assert!(shown.contains("Where do we write to you?"), "{shown}");
    assert!(shown.contains("1 post(s) need mapping"), "{shown}");

    let payload = env.data.path().join("payload.json");
    std::fs::write(&payload, &body).unwrap();
    let payload = payload.to_str().unwrap();
    let refused = env
        .run(&["sources", "test", "spring", "--payload", payload], "")
        .await;
    assert_exit(&refused, 1);
    assert!(
        text(&refused.stderr).contains("email is required"),
        "{}",
        text(&refused.stderr)
    );

    let set = env
        .run(
            &[
                "sources",
                "set",
                "spring",
                "--map",
                "email=Where do we write to you?",
            ],
            "",
        )
        .await;
    assert_ok(&set);
    assert!(
        text(&set.stdout).contains("g2w sources replay spring"),
        "{}",
        text(&set.stdout)
    );
    let tested = env
        .run(
            &[
                "sources",
                "test",
                "spring",
                "--payload",
                payload,
                "--format",
                "json",
            ],
            "",
        )
        .await;
    assert_ok(&tested);
    let tested: Value = serde_json::from_slice(&tested.stdout).unwrap();
    assert_eq!(
        tested["registration"]["registrant"]["email"],
        "ada@example.com"
    );
    assert_eq!(
        tested["registration"]["registrant"]["responses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(env.emu.stats().registrants_created, 0, "test sends nothing");

    let replay = env.run(&["sources", "replay", "spring"], "").await;
    assert_ok(&replay);
    assert!(
        text(&replay.stdout).contains("1 post(s) registered"),
        "{}",
        text(&replay.stdout)
    );
    // The running gateway delivers what the replay stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.emu.stats().registrants_created < 1 {
        assert!(Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The tool sending it again changes nothing.
    assert_eq!(post(body).await.status(), 200);

    let listed = env.run(&["sources", "list", "--format", "json"], "").await;
    assert_ok(&listed);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["name"], "spring");
    assert_eq!(listed[0]["needsMapping"], 0);

    let removed = env.run(&["sources", "remove", "spring", "--yes"], "").await;
    assert_ok(&removed);
    assert_eq!(post(b"{}".to_vec()).await.status(), 404);
    crate::signal(&gateway, "TERM");
    gateway.wait().unwrap();
    assert_eq!(env.emu.stats().registrants_created, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_declared_in_the_config_file_are_kept_as_the_file_says() {
    let env = Env::start(EmulatorConfig::default()).await;
    let config = env.data.path().join("g2w.toml");
    std::fs::write(
        &config,
        "[sources.from-file]\nkind = \"typeform\"\nwebinar = \"1234567890\"\nsecret_env = \"TF_SECRET\"\n\
         map = { email = \"Your work e-mail address\" }\n\n\
         [sources.landing]\nkind = \"unbounce\"\nwebinar = \"1234567890\"\nallow = [\"54.241.34.25\"]\n",
    )
    .unwrap();
    let run = |args: &[&str], secret: Option<&str>| {
        let mut cmd = env.g2w(args);
        cmd.env("G2W_CONFIG", &config);
        if let Some(secret) = secret {
            cmd.env("TF_SECRET", secret);
        }
        Env::run_cmd(cmd, "")
    };
    let missing = run(&["sources", "list"], None).await;
    assert_exit(&missing, 1);
    assert!(
        text(&missing.stderr).contains("TF_SECRET"),
        "{}",
        text(&missing.stderr)
    );

    let listed = run(&["sources", "list", "--format", "json"], Some("tf-secret")).await;
    assert_ok(&listed);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let shown = run(
        &["sources", "show", "landing", "--format", "json"],
        Some("tf-secret"),
    )
    .await;
    assert_ok(&shown);
    let landing: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let path = landing["path"].as_str().unwrap().to_owned();
    assert!(path.starts_with("/in/landing/"), "{path}");
    // The URL's secret is made once and kept from run to run.
    let again = run(
        &["sources", "show", "landing", "--format", "json"],
        Some("tf-secret"),
    )
    .await;
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["path"], path.as_str());
    let typeform = run(&["sources", "show", "from-file"], Some("tf-secret")).await;
    assert!(
        text(&typeform.stdout).contains("Your work e-mail address"),
        "{}",
        text(&typeform.stdout)
    );

    let set = run(
        &["sources", "set", "from-file", "--map", "email=Email"],
        Some("tf-secret"),
    )
    .await;
    assert_exit(&set, 1);
    assert!(
        text(&set.stderr).contains("config file"),
        "{}",
        text(&set.stderr)
    );

    std::fs::write(
        &config,
        "[sources.typo]\nkind = \"typeform\"\nwebniar = \"1\"\n",
    )
    .unwrap();
    let typo = run(&["sources", "list"], None).await;
    assert_exit(&typo, 1);
    assert!(
        text(&typo.stderr).contains("webniar"),
        "{}",
        text(&typo.stderr)
    );
}
