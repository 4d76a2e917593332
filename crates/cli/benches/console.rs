//! The console's pages with 100,000 registrations stored: `cargo bench -p g2w --bench console`.
//!
//! One `g2w serve` (no GoTo rate limit, 16 deliveries at once) in front of the emulator;
//! `BENCH_REGISTRATIONS` (100,000) people register for one webinar through the API and are
//! delivered. Then, signed in, each page is fetched 50 times one after another: the
//! median and the slowest of the 50 are printed. Target: under 50 ms.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;

const CONNECTIONS: usize = 32;
const PASSWORD: &str = "bench admin password";

/// Registers `count` people for `webinar` from `CONNECTIONS` connections.
async fn register(http: &reqwest::Client, base: &str, webinar: &str, question: &str, count: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONNECTIONS {
        let (http, url, question) = (
            http.clone(),
            format!("{base}/api/v1/webinars/{webinar}/registrations"),
            question.to_owned(),
        );
        tasks.spawn(async move {
            for n in (c..count).step_by(CONNECTIONS) {
                let r = http
                    .post(&url)
                    .json(&json!({"firstName": "Ada", "lastName": "Lovelace",
                        "email": format!("console{n}@example.com"),
                        "responses": [{"questionKey": question, "responseText": "bench"}]}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[tokio::main]
async fn main() {
    let count = usize::try_from(support::env_number("BENCH_REGISTRATIONS", 100_000)).unwrap();
    let emu = g2w_emulator::spawn(g2w_emulator::EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    support::login(&http, emu.base_url(), data.path()).await;
    let (webinar, question) = support::webinar(&http, emu.base_url(), "Console").await;
    let mut cmd = support::g2w(
        emu.base_url(),
        data.path(),
        &["serve", "--listen", "127.0.0.1:0", "--sync-wait", "0"],
    );
    cmd.env("G2W_RATE_LIMIT", "0")
        .env("G2W_INTAKE_RATE_PER_IP", "0")
        .env("G2W_DELIVERY_CONCURRENCY", "16")
        .env("G2W_ADMIN_PASSWORD", PASSWORD)
        .env("G2W_CACHE_TTL_SECS", "20");
    let (mut serve, base) = support::serve(cmd);

    let started = Instant::now();
    register(&http, &base, &webinar, &question, count).await;
    support::drained(&http, &base).await;
    let seeded = started.elapsed();

    let signed = http
        .post(format!("{base}/admin/login"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = signed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    println!(
        "console benchmark ({}): {count} registrations stored and delivered in {:.0} s; each page 50 times",
        support::store_name(),
        seeded.as_secs_f64()
    );
    let pages = [
        "/admin/webinars".to_owned(),
        format!("/admin/webinars/{webinar}"),
        "/admin/activity".to_owned(),
    ];
    let time = async |when: &str| {
        for path in &pages {
            let mut times = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                let r = http
                    .get(format!("{base}{path}"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{path}");
                r.bytes().await.unwrap();
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "  {when:<30} {path:<38} median {:>6.1} ms, slowest {:>6.1} ms",
                times[25].as_secs_f64() * 1e3,
                times[49].as_secs_f64() * 1e3
            );
        }
    };
    // Right after the burst: every delivery happened since GoTo's count was read.
    time("just after all were delivered").await;
    // Once GoTo's count is read again (the cache's TTL is 20 s here, 300 s by default).
    tokio::time::sleep(Duration::from_secs(21)).await;
    let _ = http
        .get(format!("{base}/admin/webinars"))
        .header("cookie", &cookie)
        .send()
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    time("once GoTo's count is fresh").await;
    let _ = serve.kill();
    let _ = serve.wait();
}
