//! A new user's first day (issue 18): each defect met following the README and the
//! docs, through the binary as a user runs it.

use g2w_emulator::EmulatorConfig;
use serde_json::json;

use crate::{Env, assert_exit, assert_ok, text};

fn config() -> EmulatorConfig {
    EmulatorConfig {
        auto_approve: true,
        rate_limit: 0,
        ..Default::default()
    }
}

/// `g2w ARGS` with no OAuth client configured anywhere (no variables, no file).
fn without_client(env: &Env, args: &[&str]) -> std::process::Command {
    let mut cmd = env.g2w(args);
    cmd.env_remove("G2W_CLIENT_ID")
        .env_remove("G2W_CLIENT_SECRET");
    cmd
}

#[tokio::test]
async fn back_in_after_a_revoked_login_with_the_client_stored_with_it() {
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    let refresh_token = crate::auth::outside_refresh_token(&env).await;
    assert_ok(
        &env.run(&["auth", "import", "--refresh-token-stdin"], &refresh_token)
            .await,
    );
    env.control("/tokens/revoke", json!({})).await;
    env.emu.advance_clock(2 * 3600);
    let locked_out = Env::run_cmd(without_client(&env, &["webinars", "list"]), "").await;
    assert_exit(&locked_out, 3);
    assert!(
        text(&locked_out.stderr).contains("g2w auth login"),
        "{}",
        text(&locked_out.stderr)
    );

    let pat = env.control("/pats", json!({})).await["pat"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = Env::run_cmd(without_client(&env, &["auth", "login", "--pat"]), &pat).await;
    assert_ok(&back);
    assert_ok(&Env::run_cmd(without_client(&env, &["webinars", "list"]), "").await);
}

/// Whether this process runs as root (file modes do not stop root).
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0")
}

#[tokio::test]
async fn serve_refuses_to_start_on_a_data_directory_it_cannot_write() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    let data = env.data.path().to_owned();
    let mut serve = env.g2w(&["serve", "--listen", "127.0.0.1:0"]);
    if is_root() {
        // The directory stays root's (mode 0700); the gateway runs as someone else.
        let program = serve.get_program().to_owned();
        let args: Vec<_> = serve.get_args().map(ToOwned::to_owned).collect();
        let mut as_nobody = std::process::Command::new("runuser");
        as_nobody
            .args(["-u", "nobody", "--"])
            .arg(program)
            .args(args);
        for (key, value) in serve.get_envs() {
            if let Some(value) = value {
                as_nobody.env(key, value);
            }
        }
        serve = as_nobody;
    } else {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), Env::run_cmd(serve, ""))
        .await
        .expect("serve must stop at once, not run");
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("cannot be written by this user") && said.contains(&*data.to_string_lossy()),
        "{said}"
    );
    assert!(
        !text(&out.stdout).contains("listening"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn a_missing_key_file_beside_its_database_is_called_missing_and_nothing_is_replaced() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    let key_file = env.data.path().join("g2w.key");
    let kept = env.data.path().join("g2w.key.moved");
    std::fs::rename(&key_file, &kept).unwrap();
    let out = env.run(&["auth", "status"], "").await;
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("g2w.key is missing") && said.contains("restore the key file"),
        "{said}"
    );
    assert!(!key_file.exists(), "no new key was made in its place");
    std::fs::rename(&kept, &key_file).unwrap();
    assert_ok(&env.run(&["auth", "status"], "").await);
}

#[tokio::test]
async fn a_reader_that_stops_early_ends_g2w_quietly() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    let webinar = env.control("/webinars", json!({"subject": "Piped"})).await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    // Every output format, CSV too (it has a writer of its own).
    for args in [
        &["config", "example"][..],
        &["webinars", "list"],
        &["webinars", "list", "--format", "json"],
        &["webinars", "list", "--format", "csv"],
        &["registrants", "list", &webinar, "--format", "csv"],
        &["registrants", "export", &webinar],
        &["outbox", "list"],
    ] {
        let mut cmd = env.g2w(args);
        let out = tokio::task::spawn_blocking(move || {
            let mut child = cmd
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // `| head -0`: the reader is gone before the first line.
            drop(child.stdout.take());
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        assert_exit(&out, 0);
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
}

#[tokio::test]
async fn a_listed_join_url_is_whole_so_it_can_be_copied() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    let webinar = env
        .control("/webinars", json!({"subject": "Copy me"}))
        .await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let added = env
        .run(
            &[
                "registrants",
                "add",
                &webinar,
                "--email",
                "ada@example.com",
                "--first-name",
                "Ada",
                "--last-name",
                "Lovelace",
                "--format",
                "json",
            ],
            "",
        )
        .await;
    assert_ok(&added);
    let join_url = serde_json::from_slice::<serde_json::Value>(&added.stdout).unwrap()["joinUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(join_url.len() > 60, "{join_url}");
    let listed = env.run(&["registrants", "list", &webinar], "").await;
    assert_ok(&listed);
    assert!(
        text(&listed.stdout).contains(&join_url),
        "{}",
        text(&listed.stdout)
    );
}

#[tokio::test]
async fn a_wrong_answer_names_the_question_and_the_answers_it_allows() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    let webinar = env
        .control(
            "/webinars",
            json!({"subject": "Choices", "questions": [
                {"question": "Team size", "type": "multipleChoice", "required": true,
                 "answers": ["Small", "Large"]}]}),
        )
        .await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = env
        .run(
            &[
                "registrants",
                "add",
                &webinar,
                "--email",
                "ada@example.com",
                "--first-name",
                "Ada",
                "--last-name",
                "Lovelace",
                "--answer",
                "Team size=Huge",
            ],
            "",
        )
        .await;
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("\"Team size\" must be one of: Small, Large") && !said.contains("q_"),
        "{said}"
    );
}

/// A webinar with no custom questions, and its key.
async fn plain_webinar(env: &Env, subject: &str) -> String {
    env.control("/webinars", json!({"subject": subject})).await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn csv_files_from_spreadsheets_that_use_semicolons_or_tabs_import() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    let webinar = plain_webinar(&env, "Europe").await;
    let files = [
        (
            "semicolons.csv",
            "Vorname;Nachname;E-Mail\nAda;Lovelace;ada@example.com\n",
        ),
        (
            "tabs.tsv",
            "First Name\tLast Name\tEmail\nAlan\tTuring;Jr\talan@example.com\n",
        ),
        (
            "quoted.csv",
            "\"First; Name\",Last Name,Email\nGrace,Hopper,grace@example.com\n",
        ),
    ];
    for (name, content) in files {
        let path = env.data.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = env
            .run(
                &[
                    "registrants",
                    "import",
                    &webinar,
                    &path.to_string_lossy(),
                    "--format",
                    "json",
                ],
                "",
            )
            .await;
        // German headers are not GoTo's names: the semicolon file needs them mapped.
        if name == "semicolons.csv" {
            assert_exit(&out, 1);
            assert!(
                text(&out.stderr).contains("the header has no email column")
                    || text(&out.stderr).contains("no firstName column"),
                "{}",
                text(&out.stderr)
            );
            continue;
        }
        assert_ok(&out);
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["registered"], 1, "{name}: {summary}");
    }
    let semicolons = env.data.path().join("english.csv");
    std::fs::write(
        &semicolons,
        "First Name;Last Name;Email\nAda;Lovelace;ada@example.com\n",
    )
    .unwrap();
    let path = semicolons.to_string_lossy().into_owned();
    assert_ok(
        &env.run(&["registrants", "import", &webinar, &path], "")
            .await,
    );
    let forced = env
        .run(
            &[
                "registrants",
                "import",
                &webinar,
                &path,
                "--delimiter",
                ",",
                "--dry-run",
            ],
            "",
        )
        .await;
    assert_exit(&forced, 1);
    assert!(
        text(&forced.stderr).contains("the header has no email column"),
        "--delimiter wins over the guess: {}",
        text(&forced.stderr)
    );
    let bad = env
        .run(
            &["registrants", "import", &webinar, &path, "--delimiter", "x"],
            "",
        )
        .await;
    assert_exit(&bad, 2);
    let registrants = env
        .run(&["registrants", "list", &webinar, "--format", "json"], "")
        .await;
    let list: serde_json::Value = serde_json::from_slice(&registrants.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
}

#[tokio::test]
async fn serve_listens_on_addresses_as_people_write_them() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    // The flag, with a host name.
    let (mut by_flag, base) =
        crate::serve::start_serve(env.g2w(&["serve", "--listen", "localhost:0"]));
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let ok = env
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    crate::signal(&by_flag, "TERM");
    by_flag.wait().unwrap();

    // The config file, with a host name too.
    let file = env.data.path().join("g2w.toml");
    std::fs::write(&file, "[serve]\nlisten = \"localhost:0\"\n").unwrap();
    let mut cmd = env.g2w(&["serve"]);
    cmd.env("G2W_CONFIG", &file);
    let (mut by_file, base) = crate::serve::start_serve(cmd);
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    crate::signal(&by_file, "TERM");
    by_file.wait().unwrap();

    let bad = env.run(&["serve", "--listen", "localhost:http"], "").await;
    assert_exit(&bad, 2);
    assert!(
        text(&bad.stderr).contains("is not a port"),
        "{}",
        text(&bad.stderr)
    );
}

#[tokio::test]
async fn a_server_that_cannot_be_reached_is_named_with_the_cause() {
    let env = Env::start(config()).await;
    for (url, cause) in [
        ("http://127.0.0.1:1", "http://127.0.0.1:1"),
        ("http://goto.invalid:8443", "http://goto.invalid:8443"),
    ] {
        let mut cmd = env.g2w(&["auth", "login", "--pat"]);
        cmd.env("G2W_AUTH_URL", url).env("G2W_API_URL", url);
        let out = Env::run_cmd(cmd, "a-personal-access-token").await;
        assert_exit(&out, 1);
        let said = text(&out.stderr);
        assert!(said.contains(cause), "{said}");
        assert!(!said.contains("a-personal-access-token"), "{said}");
    }
    let mut cmd = env.g2w(&["auth", "status"]);
    cmd.env("G2W_DATABASE_URL", "postgres://g2w:s3cret@127.0.0.1:1/g2w");
    let out = Env::run_cmd(cmd, "").await;
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("127.0.0.1:1/g2w")
            && said.contains("Connection refused")
            && !said.contains("s3cret"),
        "{said}"
    );
}

#[tokio::test]
async fn outbox_purge_asks_first_and_needs_yes_without_a_terminal() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    {
        let store = g2w_store::Store::open_in(env.data.path(), None)
            .await
            .unwrap();
        let at = g2w_goto::Timestamp::from_millis(1_000);
        store
            .enqueue(&[g2w_store::NewRegistration {
                id: "old".into(),
                profile: "default".into(),
                webinar_key: g2w_goto::WebinarKey::new(1),
                email: "old@example.com".into(),
                payload: "{}".into(),
                idempotency_key: None,
                source: None,
                created_at: at,
                validated: true,
            }])
            .await
            .unwrap();
        let jobs = store
            .claim_jobs(
                g2w_store::QueueName::Registrations,
                "default",
                "t",
                at,
                std::time::Duration::from_secs(9),
                g2w_store::Claim::Due,
                1,
            )
            .await
            .unwrap();
        let claimed = store.registrations_of(jobs).await.unwrap();
        let done = g2w_store::Completion::Delivered {
            registrant_key: g2w_goto::RegistrantKey::new(7),
            join_url: "https://example.com/j".into(),
        };
        store
            .complete(at, vec![(claimed[0].clone(), done)])
            .await
            .unwrap();
    }
    let purge = ["outbox", "purge", "--delivered-before", "2999-01-01"];
    let refused = env.run(&purge, "").await;
    assert_exit(&refused, 1);
    assert!(
        text(&refused.stderr).contains("Delete 1 delivered registration(s)")
            && text(&refused.stderr).contains("--yes"),
        "{}",
        text(&refused.stderr)
    );
    let listed = env.run(&["outbox", "list", "--format", "json"], "").await;
    assert!(
        text(&listed.stdout).contains("old@example.com"),
        "nothing deleted"
    );
    let mut yes = purge.to_vec();
    yes.push("--yes");
    let done = env.run(&yes, "").await;
    assert_ok(&done);
    assert!(text(&done.stdout).contains("1 delivered registration(s) deleted"));
}

#[tokio::test]
async fn a_second_demo_on_a_busy_port_says_so_and_leaves_nothing_behind() {
    let env = Env::start(config()).await;
    let tmp = tempfile::tempdir().unwrap();
    let demo = |listen: &str| {
        let mut cmd = env.g2w(&["serve", "--demo", "--listen", listen]);
        cmd.env("TMPDIR", tmp.path());
        cmd
    };
    let (mut first, base) = crate::serve::start_serve(demo("127.0.0.1:0"));
    let busy = base.trim_start_matches("http://").to_owned();
    let leftovers = || std::fs::read_dir(tmp.path()).unwrap().count();
    assert_eq!(leftovers(), 1, "the first demo's data directory");
    let second = Env::run_cmd(demo(&busy), "").await;
    assert_exit(&second, 1);
    let said = text(&second.stderr);
    assert!(
        said.contains("cannot listen on") && said.contains(&busy),
        "{said}"
    );
    assert!(
        !said.contains("password"),
        "no password for a demo that never ran: {said}"
    );
    assert_eq!(leftovers(), 1, "the second made nothing");
    crate::signal(&first, "TERM");
    first.wait().unwrap();
    assert_eq!(leftovers(), 0, "a stopped demo takes its directory with it");
}

#[tokio::test]
async fn logs_for_people_and_for_shippers_with_a_line_a_request_under_v() {
    use std::io::BufRead as _;

    let env = Env::start(config()).await;
    // No login yet: /readyz says 503, which is not an error of the gateway's.
    let mut cmd = env.g2w(&[
        "-v",
        "--log-format",
        "json",
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    cmd.env("G2W_ADMIN_PASSWORD", "x").env_remove("NO_COLOR");
    let mut serve = crate::Running::spawn(cmd);
    let mut stdout = std::io::BufReader::new(serve.child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Every line is JSON in JSON mode, the one that says where it listens too.
    let listening: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    let base = listening["url"].as_str().unwrap().to_owned();
    assert_eq!(
        env.http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    let answered = serve.wait_line(|l| l.contains("answered") && l.contains("/readyz"));
    let v: serde_json::Value = serde_json::from_str(&answered).expect("a JSON line");
    assert_eq!(v["level"], "INFO", "{answered}");
    assert_eq!(v["fields"]["status"], 503, "{answered}");
    crate::signal(&serve.child, "TERM");
    let out = serve.finish().await;
    for line in text(&out.stderr).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert_ne!(v["level"], "ERROR", "{line}");
    }

    // Text for people: no colour codes into a pipe, even without NO_COLOR.
    let mut cmd = env.g2w(&["-v", "auth", "status"]);
    cmd.env_remove("NO_COLOR").env("G2W_LOG", "debug");
    let out = Env::run_cmd(cmd, "").await;
    assert!(!text(&out.stderr).is_empty());
    assert!(
        !text(&out.stderr).contains('\u{1b}'),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn completions_and_a_manual_page() {
    let env = Env::start(config()).await;
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = env.run(&["completions", shell], "").await;
        assert_ok(&out);
        let script = text(&out.stdout);
        for word in ["registrants", "webinars", "serve", "profile"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        if shell == "bash" {
            let path = env.data.path().join("g2w.bash");
            std::fs::write(&path, &script).unwrap();
            let checked = std::process::Command::new("bash")
                .arg("-n")
                .arg(&path)
                .output()
                .unwrap();
            assert!(checked.status.success(), "{}", text(&checked.stderr));
        }
    }
    assert_exit(&env.run(&["completions", "tcsh"], "").await, 2);

    let man = env.run(&["man"], "").await;
    assert_ok(&man);
    let page = text(&man.stdout);
    assert!(page.contains(".TH g2w 1"), "{page}");
    assert!(page.contains("registrants"), "subcommands are listed");
    assert!(page.contains("Time zones"), "times are explained");
    // A page per command, so every g2w-…(1) a page names exists.
    let dir = env.data.path().join("man1");
    assert_ok(&env.run(&["man", "--dir", dir.to_str().unwrap()], "").await);
    let mut named = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let written = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for word in written.split(|c: char| c.is_whitespace() || c == ',') {
            let word = word
                .replace("\\-", "-")
                .replace("\\fB", "")
                .replace("\\fR", "");
            if let Some(name) = word.strip_suffix("(1)").filter(|n| n.starts_with("g2w-")) {
                named += 1;
                assert!(
                    dir.join(format!("{name}.1")).exists(),
                    "{name}(1) is named but not written"
                );
            }
        }
    }
    assert!(named > 10, "pages name their subcommands' pages: {named}");
    for page in [
        "g2w.1",
        "g2w-webinars.1",
        "g2w-webinars-create.1",
        "g2w-keys-create.1",
    ] {
        assert!(dir.join(page).exists(), "{page}");
    }
    // Rendered as `man` would, where groff is installed.
    if let Ok(rendered) = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut groff| {
            use std::io::Write as _;
            groff.stdin.take().unwrap().write_all(page.as_bytes())?;
            groff.wait_with_output()
        })
    {
        assert!(rendered.status.success());
        assert_eq!(text(&rendered.stderr), "", "groff warns about nothing");
    }
}

#[tokio::test]
async fn config_show_says_what_is_in_effect_and_where_from_without_secrets() {
    let env = Env::start(config()).await;
    let file = env.data.path().join("g2w.toml");
    std::fs::write(
        &file,
        "[goto]\nclient_secret = \"file-secret\"\n[serve]\nlease_secs = 30\nlisten = \"localhost:9000\"\n",
    )
    .unwrap();
    let path = file.to_string_lossy().into_owned();
    let mut cmd = env.g2w(&["config", "show", "--format", "json"]);
    cmd.env("G2W_CONFIG", &path)
        .env("G2W_LISTEN", ":9100")
        .env(
            "G2W_DATABASE_URL",
            "postgres://g2w:db-password@db.internal/g2w",
        )
        .env("G2W_FORWARD_SECRET", "forward-secret")
        .env_remove("G2W_CLIENT_SECRET");
    let out = Env::run_cmd(cmd, "").await;
    assert_ok(&out);
    let said = text(&out.stdout);
    for secret in ["file-secret", "db-password", "forward-secret"] {
        assert!(!said.contains(secret), "{secret} shown: {said}");
    }
    let v: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(v["configFile"], path.as_str());
    let setting = |var: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["variable"] == var)
            .unwrap()
            .clone()
    };
    let pair = |var: &str| {
        let s = setting(var);
        (s["value"].clone(), s["source"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        pair("G2W_LISTEN"),
        (json!(":9100"), "environment".into()),
        "the variable wins"
    );
    assert_eq!(pair("G2W_LEASE_SECS"), (json!("30"), "file".into()));
    assert_eq!(pair("G2W_CLIENT_SECRET"), (json!("[set]"), "file".into()));
    assert_eq!(
        pair("G2W_FORWARD_SECRET"),
        (json!("[set]"), "environment".into())
    );
    assert_eq!(
        pair("G2W_BODY_TIMEOUT_SECS"),
        (json!("10"), "default".into())
    );
    assert_eq!(
        pair("G2W_DATABASE_URL").0,
        json!("postgres://g2w:***@db.internal/g2w")
    );

    let mut cmd = env.g2w(&["config", "path"]);
    cmd.env("G2W_CONFIG", &path);
    let out = Env::run_cmd(cmd, "").await;
    assert_ok(&out);
    assert_eq!(text(&out.stdout).trim(), format!("{path} (in use)"));
}

/// The keys of each command's JSON, as scripts rely on them: a change here is a change
/// for every script, and belongs in the changelog.
#[tokio::test]
async fn json_outputs_keep_their_keys() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    let webinar = plain_webinar(&env, "Keys").await;
    let keys = |args: &[&str], out: &std::process::Output| -> Vec<String> {
        assert_ok(out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out.stdout)));
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec!["auth", "status", "--format", "json"],
            &[
                "accessTokenExpiresAt",
                "accessTokenExpiresInSeconds",
                "accountKey",
                "check",
                "grant",
                "lastRefreshAt",
                "organizerKey",
                "principal",
                "profile",
                "reauthorizationReason",
                "refreshTokenAgeDays",
                "state",
            ],
        ),
        (
            vec!["webinars", "show", &webinar, "--format", "json"],
            &["registrationFields", "webinar"],
        ),
        (
            vec!["registrants", "fields", &webinar, "--format", "json"],
            &["fields", "questions"],
        ),
        (
            vec![
                "registrants",
                "add",
                &webinar,
                "--email",
                "keys@example.com",
                "--first-name",
                "Key",
                "--last-name",
                "Stone",
                "--format",
                "json",
            ],
            &["joinUrl", "registrantKey", "status"],
        ),
        (vec!["webhooks", "status", "--format", "json"], &["setUp"]),
        (
            vec!["config", "show", "--format", "json"],
            &["configFile", "settings"],
        ),
    ];
    for (args, expected) in cases {
        let out = env.run(&args, "").await;
        assert_eq!(keys(&args, &out), expected, "{args:?}");
    }
}

#[tokio::test]
async fn webinar_times_are_in_the_webinars_own_zone_named() {
    let env = Env::start(config()).await;
    env.login_pat().await;
    let webinar = env
        .control(
            "/webinars",
            json!({"subject": "Berlin", "timeZone": "Europe/Berlin",
                   "startTime": "2030-01-10T08:00:00Z", "durationMinutes": 60}),
        )
        .await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let show = env.run(&["webinars", "show", &webinar], "").await;
    assert_ok(&show);
    assert!(
        text(&show.stdout).contains("Thursday 10 January 2030, 09:00 – 10:00 CET (Europe/Berlin)"),
        "{}",
        text(&show.stdout)
    );
    let list = env
        .run(&["webinars", "list", "--to", "2030-12-31"], "")
        .await;
    assert_ok(&list);
    assert!(
        text(&list.stdout).contains("2030-01-10 09:00 CET"),
        "{}",
        text(&list.stdout)
    );
}
