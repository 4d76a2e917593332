//! Tests of the `g2w` binary, run as a user runs it, against the emulator.
#![allow(clippy::unwrap_used, missing_docs)]

mod admin_password;
mod attendance;
mod auth;
mod docs;
mod edge;
mod emulator_cmd;
mod first_day;
mod keys;
mod organizers;
mod registrants;
mod second_week;
mod serve;
mod shared_store;
mod sources;
mod webhooks;
mod webinars;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use g2w_emulator::{EmulatorConfig, EmulatorHandle};
use serde_json::Value;

/// A data directory, an emulator, and a way to run `g2w` against both.
pub struct Env {
    pub data: tempfile::TempDir,
    pub emu: EmulatorHandle,
    pub http: reqwest::Client,
    /// A PostgreSQL store and the key every process shares, instead of the SQLite file.
    pub shared_store: Option<(String, String)>,
}

impl Env {
    pub async fn start(config: EmulatorConfig) -> Self {
        Self {
            data: tempfile::tempdir().unwrap(),
            emu: g2w_emulator::spawn(config).await.unwrap(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            shared_store: None,
        }
    }

    /// `g2w` with a clean environment pointing at the emulator and the temp data dir.
    pub fn g2w(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_g2w"));
        for (key, _) in std::env::vars() {
            if key.starts_with("G2W_") {
                cmd.env_remove(key);
            }
        }
        cmd.args(args)
            .env("G2W_DATA_DIR", self.data.path())
            .env("XDG_CONFIG_HOME", self.data.path().join("config"))
            .env("G2W_AUTH_URL", self.emu.base_url())
            .env("G2W_API_URL", self.emu.base_url())
            .env("G2W_CLIENT_ID", "demo-client")
            .env("G2W_CLIENT_SECRET", "demo-secret")
            .env("NO_COLOR", "1");
        if let Some((url, key)) = &self.shared_store {
            cmd.env("G2W_DATABASE_URL", url).env("G2W_SECRET_KEY", key);
        }
        cmd
    }

    /// Runs `g2w` to the end, with `stdin` as its input.
    pub async fn run(&self, args: &[&str], stdin: &str) -> Output {
        Self::run_cmd(self.g2w(args), stdin).await
    }

    /// Runs `cmd` (from [`Self::g2w`], adjusted) to the end, with `stdin` as its input.
    pub async fn run_cmd(mut cmd: Command, stdin: &str) -> Output {
        let stdin = stdin.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    /// `GET url`, read as JSON.
    pub async fn get_json(&self, url: &str) -> Value {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/_emulator{path}", self.emu.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap_or(Value::Null)
    }

    /// Logs in with a personal access token (the quickest way to a stored login).
    pub async fn login_pat(&self) -> String {
        let pat = self.control("/pats", serde_json::json!({})).await["pat"]
            .as_str()
            .unwrap()
            .to_owned();
        let out = self.run(&["auth", "login", "--pat"], &pat).await;
        assert_ok(&out);
        pat
    }

    /// The bytes of every database file (WAL included).
    pub fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.data.path()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("g2w.db")
            {
                bytes.extend(std::fs::read(path).unwrap());
            }
        }
        bytes
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}

/// Sends a signal (`TERM`, `INT`) to a child process, as a terminal or supervisor would.
pub fn signal(child: &std::process::Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name} failed");
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A running `g2w` whose stderr lines arrive on a channel.
pub struct Running {
    pub child: Child,
    pub stderr: mpsc::Receiver<String>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, stderr: rx }
    }

    /// The first stderr line that satisfies `pred`.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(30))
                .expect("expected stderr line");
            if pred(&line) {
                return line;
            }
        }
    }

    /// Waits for the exit; `stderr` holds the lines not yet consumed.
    pub async fn finish(self) -> Output {
        let Self { child, stderr } = self;
        tokio::task::spawn_blocking(move || {
            let mut out = child.wait_with_output().unwrap();
            out.stderr = stderr
                .iter()
                .flat_map(|l| (l + "\n").into_bytes())
                .collect();
            out
        })
        .await
        .unwrap()
    }
}
