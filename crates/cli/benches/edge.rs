//! The public edge under load: `cargo bench -p g2w --bench edge`.
//!
//! Runs the real `g2w serve` binary with its default settings (GoTo's 10 requests a
//! second, the default sync wait) against an in-process emulator that enforces 10 a
//! second itself, and measures:
//!
//! 1. visitors' latency behind a backlog: 700 registrations queued first, then 64
//!    connections posting more (the answer is a certain 202, so it should come at once);
//! 2. the hosted form's throughput (`GET /r/KEY`), plain and gzipped, with `wrk` when it
//!    is installed (Debian's `wrk`), else with an in-process client (64 connections, 10 s).
//!
//! Intake throughput with the sync wait off is `--bench gateway`.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Requests a second `wrk` reached on `url` (64 connections, 2 threads, 10 s).
fn wrk(url: &str, gzip: bool) -> Option<f64> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c64", "-d10s", "--latency"]);
    if gzip {
        cmd.args(["-H", "Accept-Encoding: gzip"]);
    }
    let out = cmd.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The same with an in-process client, for machines without `wrk`.
async fn client_throughput(http: &reqwest::Client, url: &str, gzip: bool) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(10);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (http, url, done) = (http.clone(), url.to_owned(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let mut r = http.get(&url);
                    if gzip {
                        r = r.header("accept-encoding", "gzip");
                    }
                    let r = r.send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    let _ = r.bytes().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / 10.0
}

#[tokio::main]
async fn main() {
    let emu = g2w_emulator::spawn(g2w_emulator::EmulatorConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    support::login(&http, emu.base_url(), data.path()).await;
    let (webinar, question) = support::webinar(&http, emu.base_url(), "Edge").await;
    // Defaults throughout, but the per-address intake limit: the load comes from one
    // address here, and would come from many in the world.
    let mut cmd = support::g2w(
        emu.base_url(),
        data.path(),
        &["serve", "--listen", "127.0.0.1:0"],
    );
    cmd.env("G2W_INTAKE_RATE_PER_IP", "0");
    let (mut serve, base) = support::serve(cmd);
    let url = Arc::new(format!("{base}/api/v1/webinars/{webinar}/registrations"));
    let body = move |i: u64| {
        json!({"firstName": "Edge", "lastName": format!("T{i}"), "email": format!("edge{i}@example.com"),
        "responses": [{"questionKey": question, "responseText": "benchmark"}]})
    };

    // 1. A backlog of 700, then 64 visitors at a time behind it.
    let post_all = |from: u64, to: u64| {
        let (http, url, next) = (http.clone(), url.clone(), Arc::new(AtomicU64::new(from)));
        let body = body.clone();
        async move {
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let (http, url, next, body) =
                        (http.clone(), url.clone(), next.clone(), body.clone());
                    tokio::spawn(async move {
                        let mut seen = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= to {
                                return seen;
                            }
                            let started = Instant::now();
                            let r = http.post(url.as_str()).json(&body(i)).send().await.unwrap();
                            let status = r.status().as_u16();
                            let _ = r.bytes().await;
                            seen.push((started.elapsed(), status));
                        }
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        }
    };
    let backlog_started = Instant::now();
    let backlog = post_all(0, 700).await;
    let backlog_took = backlog_started.elapsed();
    let measured = post_all(700, 700 + 64 * 20).await;
    let mut latencies: Vec<Duration> = measured.iter().map(|(d, _)| *d).collect();
    latencies.sort();
    let count =
        |set: &[(Duration, u16)], status: u16| set.iter().filter(|(_, s)| *s == status).count();
    println!(
        "backlog: 700 posted in {:.2} s ({} answered 201 with the join URL, {} answered 202)",
        backlog_took.as_secs_f64(),
        count(&backlog, 201),
        count(&backlog, 202)
    );
    println!(
        "behind it, 64 connections, {} registrations: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} answered 202, {} answered 201)",
        measured.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.9).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        count(&measured, 202),
        count(&measured, 201),
    );

    // 2. The hosted form, cached: plain and gzipped.
    let form = format!("{base}/r/{webinar}");
    assert_eq!(http.get(&form).send().await.unwrap().status(), 200);
    let (plain, gzipped, tool) = match (wrk(&form, false), wrk(&form, true)) {
        (Some(p), Some(g)) => (p, g, "wrk -t2 -c64 -d10s"),
        _ => (
            client_throughput(&http, &form, false).await,
            client_throughput(&http, &form, true).await,
            "in-process client, 64 connections, 10 s",
        ),
    };
    println!(
        "GET /r/KEY ({tool}): plain {plain:.0} req/s, gzip {gzipped:.0} req/s ({:.0} % of plain)",
        gzipped / plain * 100.0
    );
    let _ = serve.kill();
    let _ = serve.wait();
}
