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
        as_nobody.args(["-u", "nobody", "--"]).arg(program).args(args);
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
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        Env::run_cmd(serve, ""),
    )
    .await
    .expect("serve must stop at once, not run");
    assert_exit(&out, 1);
    let said = text(&out.stderr);
    assert!(
        said.contains("cannot be written by this user") && said.contains(&*data.to_string_lossy()),
        "{said}"
    );
    assert!(!text(&out.stdout).contains("listening"), "{}", text(&out.stdout));
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
