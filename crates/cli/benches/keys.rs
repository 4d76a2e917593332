//! What a key's uses cost, in one run: `cargo bench -p g2w --bench keys`.
//!
//! One `g2w serve` (no GoTo rate limit) in front of the emulator, a key with the `token`
//! and `proxy` scopes. For `BENCH_SECONDS` (10) each, `BENCH_ROUNDS` (3) rounds, medians:
//! - token hand-outs a second from 32 connections (each checks the key in the store and
//!   writes an audit row);
//! - a GoTo read (`GET …/webinars/{key}`) straight at the emulator with the token, and the
//!   same read through `/goto/default/…` with the key: requests a second from 32
//!   connections, and the median time of one request from one connection (the
//!   pass-through's own cost is the difference).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;

const CONNECTIONS: usize = 32;

/// Requests a second from `CONNECTIONS` connections for `seconds`, each `GET url` with
/// `bearer`; every answer must be 200.
async fn throughput(http: &reqwest::Client, url: &str, bearer: &str, seconds: u64) -> f64 {
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let (http, url, bearer) = (http.clone(), url.to_owned(), bearer.to_owned());
        tasks.spawn(async move {
            let mut done = 0_u64;
            while Instant::now() < until {
                let r = http.get(&url).bearer_auth(&bearer).send().await.unwrap();
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
                r.bytes().await.unwrap();
                done += 1;
            }
            done
        });
    }
    let mut done = 0;
    while let Some(n) = tasks.join_next().await {
        done += n.unwrap();
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// The median time of one `GET url`, one after another from one connection.
async fn latency(http: &reqwest::Client, url: &str, bearer: &str, count: usize) -> Duration {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let r = http.get(url).bearer_auth(bearer).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times[count / 2]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn rounds(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

#[tokio::main]
async fn main() {
    let seconds = support::env_number("BENCH_SECONDS", 10);
    let count = usize::try_from(support::env_number("BENCH_ROUNDS", 3)).unwrap();
    let emu = g2w_emulator::spawn(g2w_emulator::EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    support::login(&http, emu.base_url(), data.path()).await;
    let (webinar, _) = support::webinar(&http, emu.base_url(), "Keys").await;
    let made = support::g2w(
        emu.base_url(),
        data.path(),
        &[
            "keys",
            "create",
            "--name",
            "bench",
            "--organizer",
            "default",
            "--scope",
            "token,proxy",
            "--format",
            "json",
        ],
    )
    .output()
    .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key = serde_json::from_slice::<Value>(&made.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut cmd = support::g2w(
        emu.base_url(),
        data.path(),
        &["serve", "--listen", "127.0.0.1:0"],
    );
    cmd.env("G2W_RATE_LIMIT", "0");
    let (serve, base) = support::serve(cmd);

    let handed: Value = http
        .get(format!("{base}/api/v1/organizers/default/token"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = handed["access_token"].as_str().unwrap().to_owned();
    let organizer = handed["organizer_key"].as_str().unwrap().to_owned();
    let path = format!("/G2W/rest/v2/organizers/{organizer}/webinars/{webinar}");
    let hand_out = format!("{base}/api/v1/organizers/default/token");
    let direct = format!("{}{path}", emu.base_url());
    let through = format!("{base}/goto/default{path}");

    let (mut handouts, mut straight, mut proxied) = (Vec::new(), Vec::new(), Vec::new());
    let (mut straight_one, mut proxied_one) = (Vec::new(), Vec::new());
    for _ in 0..count {
        handouts.push(throughput(&http, &hand_out, &key, seconds).await);
        straight.push(throughput(&http, &direct, &token, seconds).await);
        proxied.push(throughput(&http, &through, &key, seconds).await);
        straight_one.push(latency(&http, &direct, &token, 2_000).await.as_secs_f64() * 1e6);
        proxied_one.push(latency(&http, &through, &key, 2_000).await.as_secs_f64() * 1e6);
    }
    println!(
        "keys benchmark ({}): {count} rounds of {seconds} s, {CONNECTIONS} connections",
        support::store_name()
    );
    println!(
        "  token hand-outs        {} /s; median {:.0} /s",
        rounds(&handouts),
        median(handouts.clone())
    );
    println!(
        "  GoTo read, direct      {} /s; median {:.0} /s",
        rounds(&straight),
        median(straight.clone())
    );
    let (s, p) = (median(straight), median(proxied.clone()));
    println!(
        "  GoTo read, via /goto/  {} /s; median {p:.0} /s = {:.2}× direct",
        rounds(&proxied),
        p / s
    );
    let (s1, p1) = (median(straight_one), median(proxied_one));
    println!(
        "  one read at a time: direct {s1:.0} µs, via /goto/ {p1:.0} µs (+{:.0} µs)",
        p1 - s1
    );
    let mut serve = serve;
    let _ = serve.kill();
    let _ = serve.wait();
}
