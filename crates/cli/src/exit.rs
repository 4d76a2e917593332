//! Exit codes: 0 ok, 1 error, 2 usage (clap's own), 3 reauthorization required.

use std::process::ExitCode;

use g2w_goto::GotoError;

/// No login is stored for the profile.
#[derive(Debug, thiserror::Error)]
#[error("no GoTo login is stored for profile {0:?}: run `{command}`", command = login_command(.0))]
pub struct NotLoggedIn(pub String);

/// The command that logs `profile` in.
pub fn login_command(profile: &str) -> String {
    if profile == "default" {
        "g2w auth login".to_owned()
    } else {
        format!("g2w auth login --profile {profile}")
    }
}

/// The exit code for a failed command.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    let reauth = err.chain().any(|cause| {
        cause.downcast_ref::<NotLoggedIn>().is_some()
            || matches!(
                cause.downcast_ref::<GotoError>(),
                Some(GotoError::ReauthorizationRequired { .. })
            )
    });
    if reauth {
        ExitCode::from(3)
    } else {
        ExitCode::FAILURE
    }
}
