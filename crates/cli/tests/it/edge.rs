//! `g2w serve` as the internet meets it: more idle connections than the usual open-file
//! limit allows, a full connection limit, and a flood of wrong admin passwords from many
//! addresses, watched through the process's own memory.

use std::net::IpAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use g2w_emulator::EmulatorConfig;
use serde_json::json;
use tokio::net::TcpStream;

use crate::Env;
use crate::serve::{post, start_serve};

/// `g2w serve` started by a shell that first lowers its soft open-file limit, as many
/// systems leave it (1,024).
fn serve_with_soft_limit(env: &Env, soft: u32, extra: &[(&str, &str)]) -> Command {
    let g2w = env.g2w(&[]);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -Sn {soft} && exec \"$0\" \"$@\""))
        .arg(g2w.get_program())
        .args(["serve", "--listen", "127.0.0.1:0"]);
    for (key, value) in g2w.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

/// Raises this test process's own soft limit, so that it can open the sockets.
fn room_for(files: u64) -> bool {
    rlimit::increase_nofile_limit(files).is_ok_and(|n| n >= files)
}

fn rss_kib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn eleven_hundred_idle_connections_under_a_1024_soft_limit_do_not_stop_the_gateway() {
    if !room_for(2048) {
        eprintln!("skipped: this machine's hard open-file limit is below 2,048");
        return;
    }
    let env = Env::start(EmulatorConfig {
        rate_limit: 0,
        ..Default::default()
    })
    .await;
    env.login_pat().await;
    let webinar = env
        .control("/webinars", json!({"subject": "Crowded"}))
        .await["webinarKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut child, base) = start_serve(serve_with_soft_limit(
        &env,
        1024,
        &[("G2W_INTAKE_RATE_PER_IP", "0")],
    ));
    let address = base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..1100 {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    // Every one of them is accepted and held (none answered yet): the gateway still
    // answers at once.
    let started = Instant::now();
    let health = tokio::time::timeout(
        Duration::from_secs(5),
        env.http.get(format!("{base}/healthz")).send(),
    )
    .await
    .expect("/healthz answered beside 1,100 idle connections")
    .unwrap();
    assert_eq!(health.status(), 200);
    let answer = post(&env.http, &base, &webinar, "crowd@example.com").await;
    assert!(answer["registrationId"].is_string(), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(idle);
    crate::signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_connection_limit_is_logged_and_idle_connections_make_room() {
    let env = Env::start(EmulatorConfig::default()).await;
    let mut cmd = env.g2w(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("G2W_MAX_CONNECTIONS", "20")
        .env("G2W_HEADER_TIMEOUT_SECS", "1");
    let (mut child, base) = start_serve(cmd);
    let stderr = lines_of(child.stderr.take().unwrap());
    let address = base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    let started = Instant::now();
    let health = env
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "answered after {waited:?}: once the idle connections were closed"
    );
    let said = std::iter::from_fn(|| stderr.recv_timeout(Duration::from_secs(5)).ok())
        .find(|l| l.contains("connection limit reached"))
        .expect("the limit is logged");
    assert!(said.contains("max_connections"), "{said}");
    crate::signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}

/// The lines a child writes to `stream`, as they come.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_wrong_admin_passwords_from_many_addresses_keeps_memory_bounded() {
    let env = Env::start(EmulatorConfig::default()).await;
    // No G2W_ADMIN_PASSWORD: g2w makes one and keeps its argon2id hash (19 MiB a check).
    let (mut child, base) = start_serve(env.g2w(&["serve", "--listen", "127.0.0.1:0"]));
    let said = lines_of(child.stderr.take().unwrap());
    let sign_in = |from: u8, password: String| {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(IpAddr::from([127, 0, 0, from]))
            .build()
            .unwrap();
        let url = format!("{base}/admin/login");
        async move {
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("password={password}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(sign_in(2, "warm-up".into()).await, 401);
    let before = rss_kib(&child);
    // 500 wrong passwords at once from 100 addresses: five each, within every
    // address's own limit.
    let attempts: Vec<_> = (0..500_u32)
        .map(|i| {
            let from = 10 + u8::try_from(i % 100).unwrap();
            tokio::spawn(sign_in(from, format!("guess{i}")))
        })
        .collect();
    let mut peak = before;
    let (mut checked, mut refused) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            401 => checked += 1,
            429 => refused += 1,
            other => panic!("{other}"),
        }
        peak = peak.max(rss_kib(&child));
    }
    let after = rss_kib(&child);
    eprintln!(
        "RSS {before} KiB before, {peak} KiB at most, {after} KiB after; {checked} checked, {refused} refused"
    );
    assert!(checked <= 30, "the shared budget: {checked} checked");
    assert_eq!(checked + refused, 500);
    assert!(peak < 100 * 1024, "RSS peaked at {peak} KiB");
    assert!(after < 100 * 1024, "RSS {after} KiB after the flood");
    let logged: Vec<String> = said.try_iter().collect();
    assert!(
        logged
            .iter()
            .filter(|l| l.contains("sign-in refused"))
            .count()
            <= 1,
        "a flood does not flood the log: {logged:?}"
    );
    crate::signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}
