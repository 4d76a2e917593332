//! Bulk import speed: `cargo bench -p g2w --bench import`.
//!
//! 1. 10,000 rows into the emulator with its rate limit off (target ≥ 2,000 rows/s).
//! 2. 200 rows with the emulator at GoTo's 10 requests/s and g2w's limiter at its
//!    default: the run should take rows ÷ 10 seconds, within 5 %.
//! 3. Peak memory of a 100,000-row dry run and of the 10,000-row import (flat: rows
//!    are streamed, never held).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to the end, sampling its RSS; returns (seconds, peak RSS in KiB, stdout).
fn run_sampled(mut cmd: Command) -> (f64, u64, String) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            peak = kib;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    (secs, peak, out)
}

async fn scenario(rate_limit: u32, rows: usize, dry_rows: usize) {
    let emu = g2w_emulator::spawn(g2w_emulator::EmulatorConfig {
        rate_limit,
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let g2w = |args: &[&str]| {
        let mut c = support::g2w(emu.base_url(), data.path(), args);
        if rate_limit == 0 {
            c.env("G2W_RATE_LIMIT", "0");
        }
        c
    };
    support::login(&http, emu.base_url(), data.path()).await;
    let (webinar, _question) = support::webinar(&http, emu.base_url(), "Import").await;
    let write = |n: usize, name: &str| {
        let path = data.path().join(name);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "First Name,Last Name,Email,Why?").unwrap();
        for i in 0..n {
            writeln!(f, "Person,Number {i},person{i}@example.com,benchmarking").unwrap();
        }
        f.flush().unwrap();
        path.to_string_lossy().into_owned()
    };
    if dry_rows > 0 {
        let big = write(dry_rows, "big.csv");
        let (secs, peak, out) =
            run_sampled(g2w(&["registrants", "import", &webinar, &big, "--dry-run"]));
        println!(
            "  dry run of {dry_rows} rows: {secs:.2} s, peak RSS {:.1} MiB ({})",
            peak as f64 / 1024.0,
            out.trim()
        );
    }
    let file = write(rows, "rows.csv");
    let concurrency = if rate_limit == 0 { "16" } else { "4" };
    let (secs, peak, out) = run_sampled(g2w(&[
        "registrants",
        "import",
        &webinar,
        &file,
        "--concurrency",
        concurrency,
    ]));
    assert!(out.contains(&format!("registered: {rows},")), "{out}");
    assert_eq!(emu.stats().registrants_created, rows as u64);
    if rate_limit == 0 {
        println!(
            "  {rows} rows, rate limit off, concurrency 16: {secs:.2} s = {:.0} rows/s, peak RSS {:.1} MiB",
            rows as f64 / secs,
            peak as f64 / 1024.0
        );
    } else {
        let ideal = rows as f64 / f64::from(rate_limit);
        println!(
            "  {rows} rows at {rate_limit} requests/s: {secs:.2} s; rows/{rate_limit} = {ideal:.1} s; overhead {:+.1} % (429s served: {})",
            (secs - ideal) / ideal * 100.0,
            emu.stats().rate_limited
        );
    }
}

#[tokio::main]
async fn main() {
    println!("bulk import benchmark (g2w registrants import against the emulator)");
    scenario(0, 10_000, 100_000).await;
    scenario(10, 200, 0).await;
}
