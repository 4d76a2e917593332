//! `g2w store`: the database itself. `migrate` brings a store's schema up to date;
//! `copy --to` moves an existing store (usually the SQLite file) into PostgreSQL, so
//! several gateways can share it.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use g2w_store::{NewRegistration, OutboxState, Setting, Store};

use crate::output::say;
use crate::settings::{Settings, without_password};

/// `g2w store …`
#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Create or upgrade the schema of the configured store (G2W_DATABASE_URL, else the
    /// SQLite file), then exit. Gateways also do this when they start.
    Migrate,
    /// Copy the configured store into the PostgreSQL database at URL: every login (its
    /// tokens re-sealed with the same key), the admin password, and every registration
    /// not yet delivered. Stop the gateways first; running it again copies only what
    /// is missing.
    Copy {
        /// The PostgreSQL database to copy into (postgres://user:password@host/db).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// Runs a store command.
///
/// # Errors
/// A store that cannot be opened, or a copy that fails (what was copied stays).
pub async fn run(settings: &Settings, command: StoreCommand) -> anyhow::Result<()> {
    let open = async |url: Option<&str>| -> anyhow::Result<Arc<Store>> {
        Store::open(url, &settings.data_dir, settings.secret_key.as_deref())
            .await
            .context("cannot open the store")
    };
    match command {
        StoreCommand::Migrate => {
            let store = open(settings.database_url.as_deref()).await?;
            say!("{}: schema up to date.", store.location());
            Ok(())
        }
        StoreCommand::Copy { to } => {
            if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
                bail!("--to {:?} is not a postgres:// URL", without_password(&to));
            }
            let from = open(settings.database_url.as_deref()).await?;
            let target = open(Some(&to)).await?;
            if from.location() == target.location() {
                bail!("the store is already {}", target.location());
            }
            let copied = copy(&from, &target).await?;
            if copied.logins + copied.settings + copied.registrations + copied.sources == 0 {
                say!(
                    "Nothing to copy: {} already has every login, setting and waiting registration of {}.",
                    target.location(),
                    from.location()
                );
                return Ok(());
            }
            say!(
                "Copied {} login(s), {} setting(s), {} source(s) and {} waiting registration(s) from {} to {}.",
                copied.logins,
                copied.settings,
                copied.sources,
                copied.registrations,
                from.location(),
                target.location()
            );
            say!(
                "Delivered history and import journals stay in the old store; set \
                 G2W_DATABASE_URL (and the same G2W_SECRET_KEY) on every gateway."
            );
            Ok(())
        }
    }
}

#[derive(Debug, Default)]
struct Copied {
    logins: usize,
    settings: usize,
    registrations: usize,
    sources: usize,
}

/// Settings a store keeps that a gateway needs.
async fn copy(from: &Store, to: &Store) -> anyhow::Result<Copied> {
    let mut copied = Copied::default();
    // Only what the target lacks: a gateway already running on it may have refreshed
    // its login since, and an older copy would undo that.
    for profile in from.profiles().await? {
        if to.load_profile(&profile).await?.is_some() {
            continue;
        }
        if let Some(login) = from.load_profile(&profile).await? {
            to.save_profile(&profile, &login).await?;
            copied.logins += 1;
        }
    }
    for setting in Setting::ALL {
        if to.setting(setting).await?.is_some_and(|v| !v.is_empty()) {
            continue;
        }
        if let Some(value) = from.setting(setting).await?.filter(|v| !v.is_empty()) {
            to.set_setting(setting, &value).await?;
            copied.settings += 1;
        }
    }
    for source in from.sources().await? {
        if to.add_source(&source).await? {
            copied.sources += 1;
        }
        for post in from.kept_posts(&source.name, true, u32::MAX).await? {
            to.keep_post(&post).await?;
        }
    }
    for state in [OutboxState::Pending, OutboxState::Delivering] {
        let mut missing = Vec::new();
        for r in from.list(Some(state), None, u32::MAX).await? {
            if to.registration(&r.id).await?.is_none() {
                missing.push(r);
            }
        }
        let missing: Vec<NewRegistration> = missing
            .into_iter()
            .map(|r| NewRegistration {
                id: r.id,
                profile: r.profile,
                webinar_key: r.webinar_key,
                email: r.email,
                payload: r.payload,
                idempotency_key: r.idempotency_key,
                source: r.source,
                created_at: r.created_at,
                validated: r.validated,
            })
            .collect();
        for chunk in missing.chunks(500) {
            to.enqueue(chunk).await?;
            copied.registrations += chunk.len();
        }
    }
    Ok(copied)
}
