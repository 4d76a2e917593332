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
