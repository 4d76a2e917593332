//! Intake beside the glue it replaces, in one run: `cargo bench -p g2w --bench intake`.
//!
//! Needs Debian's `wrk` (the load) and Node.js (the seed-style route); says so and stops
//! without them. Each round measures, one after another on the same machine:
//!
//! - the seed-style route (`benches/support/seed_route.js`: the visitor waits while it
//!   calls GoTo, which answers in `BENCH_GOTO_MS`, 25 ms by default) at 32 connections;
//! - for each store (SQLite; PostgreSQL too with `BENCH_DATABASE_URL`), a fresh
//!   `g2w serve` (sync wait 0, no per-address limit, no GoTo rate limit, 16 deliveries
//!   in flight against a GoTo that answers at once, so delivery takes all the CPU it
//!   can): its `/healthz` at 64 connections while idle, then durable intake at 32 and,
//!   on another fresh gateway, at 64 connections, delivery running throughout; then
//!   `/healthz` again while that gateway's deliveries are still draining (the same
//!   competition for the two cores that intake had).
//!
//! Every registration is a new person with a required custom answer, validated
//! against the webinar's form. `BENCH_SECONDS` (10) is each measurement's length and
//! `BENCH_ROUNDS` (3) how many rounds.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const LUA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/support/post.lua");
const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/support/seed_route.js");

fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `wrk` for `seconds` at `connections` against `url`; requests a second, and how many
/// answers were not 2xx.
fn wrk(url: &str, connections: u32, seconds: u64, post: Option<(&str, &str, &str)>) -> (f64, u64) {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        url,
    ]);
    if let Some((path, question, prefix)) = post {
        cmd.args(["-s", LUA])
            .env("WPATH", path)
            .env("QKEY", question)
            .env("EMAIL_PREFIX", prefix);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let refused = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (rate, refused)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The seed-style route against the emulator, with a token of its own.
async fn seed_route(http: &reqwest::Client, emulator: &str) -> (Child, String) {
    let pat = support::pat(http, emulator).await;
    let token: Value = http
        .post(format!("{emulator}/oauth/token"))
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[
            ("grant_type", "personal_access_token"),
            ("pat", pat["pat"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("node")
        .arg(SEED)
        .env("GOTO_API_URL", emulator)
        .env("GOTO_ACCESS_TOKEN", token["access_token"].as_str().unwrap())
        .env("GOTO_ORGANIZER_KEY", pat["organizerKey"].as_str().unwrap())
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if http.get(&base).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base)
}

/// A fresh `g2w serve` on a fresh store (SQLite, or a new database on `postgres`),
/// logged in, its form cache warm.
async fn gateway(
    http: &reqwest::Client,
    emulator: &str,
    postgres: Option<&str>,
    webinar: &str,
    question: &str,
) -> (Child, String, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let database = postgres.map(|admin| g2w_store::create_test_database(admin).unwrap());
    support::login_on(database.as_deref(), http, emulator, data.path()).await;
    let mut cmd = support::g2w_on(
        database.as_deref(),
        emulator,
        data.path(),
        &["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"],
    );
    cmd.env("G2W_RATE_LIMIT", "0")
        .env("G2W_INTAKE_RATE_PER_IP", "0")
        .env("G2W_DELIVERY_CONCURRENCY", "16");
    let (child, base) = support::serve(cmd);
    let warm = http
        .post(format!("{base}/api/v1/webinars/{webinar}/registrations"))
        .json(
            &json!({"firstName": "Warm", "lastName": "Up", "email": "warm@example.com",
            "responses": [{"questionKey": question, "responseText": "x"}]}),
        )
        .send()
        .await
        .unwrap();
    assert!(warm.status().is_success());
    (child, base, data)
}

#[derive(Default, Clone, Copy)]
struct Figures {
    healthz: f64,
    intake32: f64,
    intake64: f64,
    healthz_busy: f64,
}

#[tokio::main]
async fn main() {
    if !available("wrk") || !available("node") {
        println!("intake benchmark: needs wrk (apt install wrk) and node; skipped");
        return;
    }
    let seconds = support::env_number("BENCH_SECONDS", 10);
    let rounds = support::env_number("BENCH_ROUNDS", 3);
    let goto_ms = support::env_number("BENCH_GOTO_MS", 25);
    let postgres = std::env::var("BENCH_DATABASE_URL").ok();
    let emu = g2w_emulator::spawn(g2w_emulator::EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let (seeds_webinar, seeds_question) =
        support::webinar(&http, emu.base_url(), "Seed route").await;
    let (webinar, question) = support::webinar(&http, emu.base_url(), "Intake").await;
    // GoTo's answer time, for the route that waits on it.
    let organizer = emu.default_organizer_key();
    http.post(format!("{}/_emulator/faults", emu.base_url()))
        .json(&json!({"method": "POST", "delayMs": goto_ms,
            "pathPrefix": format!("/G2W/rest/v2/organizers/{organizer}/webinars/{seeds_webinar}/")}))
        .send()
        .await
        .unwrap();
    let stores: Vec<(&str, Option<&str>)> = std::iter::once(("SQLite", None))
        .chain(postgres.as_deref().map(|url| ("PostgreSQL", Some(url))))
        .collect();
    let mut seeds = Vec::new();
    let mut results: Vec<Vec<Figures>> = vec![Vec::new(); stores.len()];
    let path = format!("/api/v1/webinars/{webinar}/registrations");
    for round in 0..rounds {
        let (seed, base) = seed_route(&http, emu.base_url()).await;
        let (rate, refused) = wrk(
            &base,
            32,
            seconds,
            Some((
                &format!("/api/register/{seeds_webinar}"),
                &seeds_question,
                &format!("s{round}-"),
            )),
        );
        stop(seed);
        assert_eq!(refused, 0, "the seed route failed");
        seeds.push(rate);
        for (i, (_, database)) in stores.iter().enumerate() {
            let mut f = Figures::default();
            let fresh =
                async || gateway(&http, emu.base_url(), *database, &webinar, &question).await;
            let intake = |base: &str, connections: u32, prefix: &str| {
                let (rate, refused) =
                    wrk(base, connections, seconds, Some((&path, &question, prefix)));
                assert_eq!(refused, 0, "intake refused registrations");
                rate
            };
            let healthz = |base: &str| wrk(&format!("{base}/healthz"), 64, seconds, None).0;
            let (serve, base, _data) = fresh().await;
            f.healthz = healthz(&base);
            f.intake32 = intake(&base, 32, &format!("a{round}{i}-"));
            stop(serve);
            let (serve, base, _data) = fresh().await;
            f.intake64 = intake(&base, 64, &format!("b{round}{i}-"));
            f.healthz_busy = healthz(&base);
            stop(serve);
            results[i].push(f);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let list = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    println!(
        "intake benchmark: {rounds} rounds of {seconds} s; GoTo answers the seed route in {goto_ms} ms, g2w's deliveries at once"
    );
    println!("  seed-style route, 32 connections: {} /s", list(&seeds));
    let seed = median(seeds.clone());
    for ((name, _), figures) in stores.iter().zip(&results) {
        let pick = |f: fn(&Figures) -> f64| figures.iter().map(f).collect::<Vec<_>>();
        println!("  {name}:");
        println!(
            "    /healthz, 64 connections:  {} /s",
            list(&pick(|f| f.healthz))
        );
        println!(
            "    intake, 32 connections:    {} /s",
            list(&pick(|f| f.intake32))
        );
        println!(
            "    intake, 64 connections:    {} /s",
            list(&pick(|f| f.intake64))
        );
        println!(
            "    /healthz beside delivery:  {} /s",
            list(&pick(|f| f.healthz_busy))
        );
        let ratio32: Vec<f64> = figures.iter().map(|f| f.intake32 / seed).collect();
        let ratio64: Vec<f64> = figures.iter().map(|f| f.intake64 / f.healthz).collect();
        let busy64: Vec<f64> = figures
            .iter()
            .map(|f| f.intake64 / f.healthz_busy)
            .collect();
        println!(
            "    medians: intake at 32 / seed route {:.1}×; intake at 64 / idle /healthz {:.2}×, / /healthz beside delivery {:.2}×",
            median(ratio32),
            median(ratio64),
            median(busy64)
        );
    }
    if results.len() == 2 {
        let ratio: Vec<f64> = results[1]
            .iter()
            .zip(&results[0])
            .map(|(pg, lite)| pg.intake64 / lite.intake64)
            .collect();
        println!(
            "  PostgreSQL intake / SQLite intake at 64 connections, each round: {}; median {:.2}×",
            ratio
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" · "),
            median(ratio.clone())
        );
    }
}
