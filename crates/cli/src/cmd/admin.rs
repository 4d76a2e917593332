//! `g2w admin`: the admin console's password. A password g2w makes up is stored hashed
//! and handed over in a file only its owner can read, in the data directory (as Jenkins
//! hands over `initialAdminPassword`): never in a log line, which would send it to
//! whatever collects logs. On a terminal it is also shown.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use g2w_gateway::AdminPassword;
use g2w_store::Setting;

use crate::context::Context;
use crate::output::notice;

/// The file a made-up password is handed over in.
pub const PASSWORD_FILE: &str = "admin-password";

/// `g2w admin …`
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Makes a new admin console password (the old one stops working, everyone signed in
    /// is signed out) and hands it over in a file only you can read.
    ResetPassword,
}

/// Runs an admin command.
pub async fn run(ctx: &Context, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::ResetPassword => {
            let (password, _) = new_password(ctx).await?;
            let ended = ctx.store.end_all_sessions().await?;
            hand_over(ctx, &password)?;
            notice!(
                "The old password no longer works{}; every g2w serve on this store takes the new one at the next sign-in.",
                if ended > 0 {
                    format!(" and {ended} console session(s) were signed out")
                } else {
                    String::new()
                }
            );
            Ok(())
        }
    }
}

/// Where a made-up password is handed over.
pub fn password_file(ctx: &Context) -> PathBuf {
    ctx.settings.data_dir.join(PASSWORD_FILE)
}

/// Makes up a password and stores its hash.
///
/// # Errors
/// The store refusing the write.
pub async fn new_password(ctx: &Context) -> anyhow::Result<(String, String)> {
    let password = AdminPassword::generate();
    let hash = AdminPassword::hash(&password);
    ctx.store
        .set_setting(Setting::AdminPassword, &hash)
        .await
        .context("cannot store the admin password")?;
    Ok((password, hash))
}

/// Writes `password` to [`password_file`] (readable by its owner only) and says where;
/// on a terminal (and not in JSON logs) shows it too.
///
/// # Errors
/// The file cannot be written.
pub fn hand_over(ctx: &Context, password: &str) -> anyhow::Result<()> {
    let path = password_file(ctx);
    write_private(&path, &format!("{password}\n"))
        .with_context(|| format!("cannot write the admin password to {}", path.display()))?;
    notice!(
        "Admin console password: in {} (readable by you only; set G2W_ADMIN_PASSWORD to choose one, `g2w admin reset-password` for a new one).",
        path.display()
    );
    if std::io::stderr().is_terminal() && !crate::output::json_logs() {
        // Straight to the terminal, never through the logger.
        eprintln!("  It is: {password}");
    }
    Ok(())
}

/// Writes `text` to `path`, created (or replaced) readable and writable by its owner
/// only.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
