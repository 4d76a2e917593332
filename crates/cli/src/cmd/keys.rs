//! `g2w keys`: API keys for the programs that used to hold GoTo tokens of their own (a
//! landing-page app, a CRM sync). A key is shown once, when it is made; the store keeps
//! its digest. Every gateway on the store checks keys there, so a revoked key stops
//! working everywhere at once.

use anyhow::bail;
use g2w_gateway::keys::{self, Scope};
use g2w_goto::{ExposeSecret as _, Timestamp};
use g2w_store::{AuditEntry, KeyRecord};
use serde_json::json;

use crate::context::Context;
use crate::output::{Format, Listing, Shown, columns, parse_span, print_json, say};

/// `g2w keys …`
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Makes a key and prints it, once.
    Create(CreateArgs),
    /// Every key: name, prefix, organizers, scopes, when made, last used, expiry, state.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revokes a key (by name or prefix): every gateway refuses it from then on.
    Revoke {
        /// The key's name or prefix (`g2w_…`).
        key: String,
    },
    /// What keys did: each token handed out and each call passed through to GoTo.
    Audit {
        /// Only this key (name or prefix).
        #[arg(long)]
        key: Option<String>,
        /// How far back (`1d`, `12h`, `2w`).
        #[arg(long, default_value = "1d", value_parser = parse_span)]
        since: std::time::Duration,
        /// At most this many rows, newest first.
        #[arg(long, default_value_t = 1_000)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// `g2w keys create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// What the key is for (`crm-sync`): how it is listed, audited and revoked.
    #[arg(long)]
    name: String,
    /// An organizer (profile) the key may act for. Repeatable, or comma-separated.
    #[arg(
        long = "organizer",
        value_name = "PROFILE",
        required = true,
        value_delimiter = ','
    )]
    organizers: Vec<String>,
    /// What it may do: token (hand-outs), proxy (calls to GoTo through g2w), register.
    #[arg(long = "scope", value_name = "SCOPE", required = true, value_delimiter = ',',
          value_parser = |s: &str| s.parse::<Scope>())]
    scopes: Vec<Scope>,
    /// It stops working after this long (`90d`, `12h`). Default: until revoked.
    #[arg(long, value_parser = parse_span)]
    expires: Option<std::time::Duration>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Shown::Text)]
    format: Shown,
}

/// Runs a keys command.
pub async fn run(ctx: &Context, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create(args) => create(ctx, args).await,
        KeysCommand::List { format } => list(ctx, format).await,
        KeysCommand::Revoke { key } => revoke(ctx, &key).await,
        KeysCommand::Audit {
            key,
            since,
            limit,
            format,
        } => audit(ctx, key.as_deref(), since, limit, format).await,
    }
}

fn at(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_owned(), Timestamp::to_rfc3339)
}

fn later(now: Timestamp, span: std::time::Duration) -> Timestamp {
    Timestamp::from_millis(
        now.as_millis()
            .saturating_add(i64::try_from(span.as_millis()).unwrap_or(i64::MAX)),
    )
}

async fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<()> {
    let stored = ctx.store.profiles().await?;
    for organizer in &args.organizers {
        if !stored.contains(organizer) {
            bail!(
                "no GoTo login is stored for organizer {organizer:?}: run `g2w auth login --profile {organizer}` first (stored: {})",
                if stored.is_empty() {
                    "none".to_owned()
                } else {
                    stored.join(", ")
                }
            );
        }
    }
    let now = ctx.now();
    let expires_at = args.expires.map(|span| later(now, span));
    let made = keys::create(
        &ctx.store,
        &args.name,
        &args.organizers,
        &args.scopes,
        expires_at,
        now,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let r = &made.record;
    match args.format {
        Shown::Json => print_json(&json!({
            "key": made.key.expose_secret(),
            "name": r.name,
            "prefix": r.prefix,
            "organizers": r.organizers,
            "scopes": r.scopes,
            "created_at": r.created_at.to_rfc3339(),
            "expires_at": r.expires_at.map(Timestamp::to_rfc3339),
        }))?,
        Shown::Text => {
            say!(
                "Key {} ({}) for {}, may: {}{}.",
                r.name,
                r.prefix,
                r.organizers.join(", "),
                r.scopes.join(", "),
                r.expires_at
                    .map(|t| format!(", until {}", t.to_rfc3339()))
                    .unwrap_or_default()
            );
            say!(
                "It is shown this once; g2w keeps only its digest. Store it where the program reads it:\n"
            );
            say!("{}\n", made.key.expose_secret());
            say!("Revoke it with: g2w keys revoke {}", r.name);
        }
    }
    Ok(())
}

fn key_json(k: &KeyRecord, now: Timestamp) -> serde_json::Value {
    json!({
        "name": k.name,
        "prefix": k.prefix,
        "organizers": k.organizers,
        "scopes": k.scopes,
        "created_at": k.created_at.to_rfc3339(),
        "last_used_at": k.last_used_at.map(Timestamp::to_rfc3339),
        "expires_at": k.expires_at.map(Timestamp::to_rfc3339),
        "revoked_at": k.revoked_at.map(Timestamp::to_rfc3339),
        "state": keys::state(k, now),
    })
}

async fn list(ctx: &Context, format: Format) -> anyhow::Result<()> {
    let now = ctx.now();
    let all = ctx.store.keys().await?;
    if all.is_empty() && format == Format::Table {
        say!(
            "No API keys. Make one: g2w keys create --name NAME --organizer PROFILE --scope token"
        );
        return Ok(());
    }
    let rows = all
        .iter()
        .map(|k| {
            vec![
                k.name.clone(),
                k.prefix.clone(),
                k.organizers.join(","),
                k.scopes.join(","),
                k.created_at.to_rfc3339(),
                at(k.last_used_at),
                at(k.expires_at),
                keys::state(k, now).to_owned(),
            ]
        })
        .collect();
    Listing {
        columns: columns(&[
            "name",
            "prefix",
            "organizers",
            "scopes",
            "created",
            "lastUsed",
            "expires",
            "state",
        ]),
        rows,
        json: all.iter().map(|k| key_json(k, now)).collect(),
    }
    .print(format)
}

async fn revoke(ctx: &Context, which: &str) -> anyhow::Result<()> {
    match ctx.store.revoke_key(which, ctx.now()).await? {
        Some(k) => {
            say!(
                "Key {} ({}) is revoked (since {}): every gateway on this store refuses it.",
                k.name,
                k.prefix,
                at(k.revoked_at)
            );
            Ok(())
        }
        None => bail!("no key named {which:?} or with that prefix (see g2w keys list)"),
    }
}

fn audit_json(e: &AuditEntry) -> serde_json::Value {
    json!({
        "at": e.at.to_rfc3339(),
        "key": e.key_name,
        "prefix": e.key_prefix,
        "organizer": e.organizer,
        "caller": e.caller,
        "action": e.action,
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "token_fingerprint": e.token_fingerprint,
        "token_expires_at": e.token_expires_at.map(Timestamp::to_rfc3339),
    })
}

async fn audit(
    ctx: &Context,
    key: Option<&str>,
    since: std::time::Duration,
    limit: u32,
    format: Format,
) -> anyhow::Result<()> {
    let now = ctx.now();
    let from = Timestamp::from_millis(
        now.as_millis()
            .saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX)),
    );
    let rows = ctx.store.key_audit(key, from, limit).await?;
    let table = rows
        .iter()
        .map(|e| {
            let what = match (&e.method, &e.path) {
                (Some(m), Some(p)) => format!("{m} {p}"),
                _ => format!(
                    "token {} until {}",
                    e.token_fingerprint.as_deref().unwrap_or("—"),
                    at(e.token_expires_at)
                ),
            };
            vec![
                e.at.to_rfc3339(),
                e.key_name.clone(),
                e.organizer.clone(),
                e.caller.clone(),
                e.action.clone(),
                what,
                e.status.to_string(),
            ]
        })
        .collect();
    Listing {
        columns: columns(&[
            "at",
            "key",
            "organizer",
            "caller",
            "action",
            "what",
            "status",
        ]),
        rows: table,
        json: rows.iter().map(audit_json).collect(),
    }
    .print(format)
}
