//! The docs' walk-throughs, run exactly as written: every `sh` block of the file in
//! order, as one bash script, with the `text` blocks as the output it must print.

use std::process::Command;

/// Free loopback ports for the doc's fixed ones, so tests can run side by side.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fenced blocks of `markdown` in `language`, in order.
fn blocks(markdown: &str, language: &str) -> Vec<String> {
    let fence = format!("```{language}\n");
    markdown
        .split(&fence)
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

/// Whether some line of `output` holds `expected`'s pieces (split at `…`) in order.
fn printed(output: &str, expected: &str) -> bool {
    output.lines().any(|line| {
        let mut rest = line;
        expected
            .split('…')
            .all(|piece| match rest.find(piece.trim_end()) {
                Some(at) => {
                    rest = &rest[at + piece.trim_end().len()..];
                    true
                }
                None => false,
            })
    })
}

#[test]
fn docs_attendance_walkthrough_runs_as_written() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/attendance.md"
    ))
    .unwrap();
    let mut script = blocks(&doc, "sh").join("\n");
    for fixed in ["9090", "8080", "8099"] {
        script = script.replace(
            &format!("127.0.0.1:{fixed}"),
            &format!("127.0.0.1:{}", free_port()),
        );
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_g2w"))
        .parent()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("bash");
    for (key, _) in std::env::vars() {
        if key.starts_with("G2W_") {
            cmd.env_remove(key);
        }
    }
    // In an empty directory `$PWD/target/release` does not exist: the `g2w` found is
    // the one under test.
    let out = cmd
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walk-through failed:\n{stdout}\n{stderr}"
    );
    for block in blocks(&doc, "text") {
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                printed(&stdout, line),
                "the doc says it prints {line:?}; it printed:\n{stdout}\n{stderr}"
            );
        }
    }
    assert!(
        stderr.contains("2 registrant(s): 1 attended, 1 no-show(s)."),
        "{stderr}"
    );
}

/// The systemd unit in `docs/deploy.md` is one systemd accepts without a warning
/// (with the binary just built in place of `/usr/local/bin/g2w`), where systemd is
/// installed.
#[test]
fn the_systemd_unit_in_deploy_md_verifies() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy.md"),
    )
    .unwrap();
    let units = blocks(&doc, "ini");
    assert_eq!(units.len(), 1, "one unit in deploy.md");
    let unit = &units[0];
    for hardening in [
        "DynamicUser=yes",
        "StateDirectory=g2w",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(hardening), "{hardening} missing");
    }
    let Ok(analyze) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(analyze.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g2w.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/g2w", env!("CARGO_BIN_EXE_g2w")),
    )
    .unwrap();
    let verified = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success(), "{said}");
    assert!(
        !said.lines().any(|l| l.contains("g2w.service")),
        "systemd warns about the unit: {said}"
    );
}
