//! GoTo's webhook events through the real `g2w serve`: `cargo bench -p g2w --bench webhooks`.
//!
//! With forwarding to a local URL on, measures:
//! - receipt: `BENCH_EVENTS` distinct events (default 20,000) posted by 64 connections
//!   to the receiver path as fast as they go: events kept a second, p50/p99 answer time;
//! - repeats: the same events again (GoTo repeating itself): all answered as duplicates;
//! - forwarding: how long until the local URL has every event (one forwarder, a
//!   leased outbox row per event);
//! - GoTo's own deliveries: a session in which `BENCH_JOINS` (default 500) registrants
//!   join, through the emulator's signed webhooks, until the gateway has kept them all.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A local URL counting what g2w forwards to it.
async fn user_url() -> (String, Arc<AtomicU64>) {
    let got = Arc::new(AtomicU64::new(0));
    let counted = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::main]
async fn main() {
    let events = support::env_number("BENCH_EVENTS", 20_000);
    let joins = support::env_number("BENCH_JOINS", 500);
    let emu = g2w_emulator::spawn(g2w_emulator::EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    support::login(&http, emu.base_url(), data.path()).await;
    let (forward, forwarded) = user_url().await;
    let mut cmd = support::g2w(
        emu.base_url(),
        data.path(),
        &["serve", "--listen", "127.0.0.1:0"],
    );
    cmd.env("G2W_FORWARD_URL", &forward)
        .env("G2W_FORWARD_SECRET", "bench-secret")
        .env("G2W_RATE_LIMIT", "0");
    let (mut serve, base) = support::serve(cmd);
    let setup = support::g2w(
        emu.base_url(),
        data.path(),
        &["webhooks", "setup", "--url", &base],
    )
    .output()
    .unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let store = g2w_store::Store::open(support::database(), data.path(), None)
        .await
        .unwrap();
    let path = store
        .setting(g2w_store::Setting::WebhookPath)
        .await
        .unwrap()
        .unwrap();
    let url = Arc::new(format!("{base}{}{path}", g2w_gateway::RECEIVER_PREFIX));

    let event = |i: u64| {
        json!({"eventName": "registrant.added", "eventVersion": "1.0.0", "product": "g2w",
            "eventKey": format!("bench-{i}"), "webinarKey": 9_007_199_254_740_993_u64,
            "registrantKey": (1_u64 << 60) + i, "email": format!("e{i}@example.com"),
            "firstName": "Bench", "lastName": "Mark"})
        .to_string()
    };
    // 1 and 2: receipt, then the same events again.
    let mut results = Vec::new();
    for round in ["distinct", "repeated"] {
        let next = Arc::new(AtomicU64::new(0));
        let duplicates = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (http, url, next, duplicates) =
                    (http.clone(), url.clone(), next.clone(), duplicates.clone());
                tokio::spawn(async move {
                    let mut took = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= events {
                            return took;
                        }
                        let sent = Instant::now();
                        let r = http
                            .post(url.as_str())
                            .header("content-type", "application/json")
                            .body(event(i))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200);
                        let answer: serde_json::Value = r.json().await.unwrap();
                        took.push(sent.elapsed());
                        if answer["duplicate"] == true {
                            duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let mut took = Vec::new();
        for t in tasks {
            took.extend(t.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        took.sort();
        results.push((round, secs, took, duplicates.load(Ordering::Relaxed)));
    }
    let receipt_done = Instant::now();

    // 3: forwarding drains.
    let deadline = Instant::now() + Duration::from_secs(600);
    while forwarded.load(Ordering::Relaxed) < events {
        assert!(Instant::now() < deadline, "forwarding did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = receipt_done.elapsed().as_secs_f64();

    // 4: GoTo's own signed deliveries: registrants join a session.
    let webinar: serde_json::Value = http
        .post(format!("{}/_emulator/webinars", emu.base_url()))
        .json(&json!({"subject": "Joins"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webinar = webinar["webinarKey"].as_str().unwrap().to_owned();
    for i in 0..joins {
        let r = http
            .post(format!(
                "{}/_emulator/webinars/{webinar}/registrants",
                emu.base_url()
            ))
            .json(&json!({"firstName": "J", "lastName": "K", "email": format!("j{i}@example.com")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let attendance: Vec<_> = (0..joins)
        .map(|i| json!({"email": format!("j{i}@example.com")}))
        .collect();
    let started = Instant::now();
    let ran = http
        .post(format!("{}/_emulator/sessions", emu.base_url()))
        .json(&json!({"webinarKey": webinar, "attendance": attendance}))
        .send()
        .await
        .unwrap();
    assert!(ran.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(300);
    let joined = loop {
        let counted: u64 = store
            .attendance()
            .await
            .unwrap()
            .iter()
            .filter(|a| a.event_name == g2w_goto::EventName::RegistrantJoined)
            .map(|a| a.people)
            .sum();
        if counted >= joins || Instant::now() > deadline {
            break counted;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let joins_secs = started.elapsed().as_secs_f64();

    println!(
        "webhooks bench ({}; 2 cores share g2w serve, the emulator and the load):",
        support::store_name()
    );
    for (round, secs, took, dups) in &results {
        #[allow(clippy::cast_precision_loss)]
        let rate = events as f64 / secs;
        println!(
            "  {round:<9} {events} events in {secs:.2} s = {rate:.0}/s; p50 {:.2} ms, p99 {:.2} ms; answered duplicate: {dups}",
            percentile(took, 0.5),
            percentile(took, 0.99)
        );
    }
    #[allow(clippy::cast_precision_loss)]
    let forward_rate = events as f64 / drained.max(0.001);
    println!(
        "  forwarding: all {events} at the local URL {drained:.2} s after receipt ended (≥ {forward_rate:.0}/s)"
    );
    println!("  GoTo's deliveries: {joined}/{joins} joins kept and counted in {joins_secs:.2} s");
    let _ = serve.kill();
    let _ = serve.wait();
}
