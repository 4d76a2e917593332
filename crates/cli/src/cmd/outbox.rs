//! `g2w outbox`: look into the registration outbox and act on what is stuck.

use anyhow::bail;
use g2w_goto::Timestamp;
use g2w_store::{OutboxState, Registration};

use crate::context::Context;
use crate::output::{Listing, columns, say};

/// `g2w outbox …`
#[derive(Debug, clap::Subcommand)]
pub enum OutboxCommand {
    /// List registrations, newest first.
    List {
        /// Only this state: pending, delivering, delivered, already_registered, failed, dead.
        #[arg(long, value_parser = |s: &str| s.parse::<OutboxState>())]
        state: Option<OutboxState>,
        /// Only this email.
        #[arg(long)]
        email: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Deliver a failed or dead registration again (or all of them).
    Retry {
        /// The registration id.
        #[arg(required_unless_present = "all_failed", conflicts_with = "all_failed")]
        id: Option<String>,
        /// Every failed and dead registration.
        #[arg(long)]
        all_failed: bool,
    },
    /// Delete delivered registrations finished before a date.
    Purge {
        /// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        delivered_before: String,
        /// Delete without asking (needed when there is no terminal to ask on).
        #[arg(long, short)]
        yes: bool,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Table,
    /// For scripts.
    Json,
}

fn when(t: Timestamp) -> String {
    t.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn to_json(r: &Registration) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "state": r.state.as_str(), "profile": r.profile,
        "webinarKey": r.webinar_key, "email": r.email,
        "attempts": r.attempts, "registrantKey": r.registrant_key, "joinUrl": r.join_url,
        "lastError": r.last_error, "source": r.source,
        "createdAt": r.created_at.to_utc().to_rfc3339(),
    })
}

/// Runs an outbox command.
pub async fn run(ctx: &Context, command: OutboxCommand) -> anyhow::Result<()> {
    let store = ctx.store.as_ref();
    let now = Timestamp::now();
    match command {
        OutboxCommand::List {
            state,
            email,
            limit,
            format,
        } => {
            let rows = store.list(state, email.as_deref(), limit).await?;
            match format {
                Format::Json => say!(
                    "{}",
                    serde_json::to_string_pretty(&rows.iter().map(to_json).collect::<Vec<_>>())?
                ),
                Format::Table => {
                    // The one table writer: columns as wide as their widest cell, free
                    // text wrapped to the terminal, headers in capitals.
                    Listing {
                        columns: columns(&[
                            "id", "state", "profile", "try", "created", "email", "note",
                        ]),
                        rows: rows
                            .iter()
                            .map(|r| {
                                vec![
                                    r.id.clone(),
                                    r.state.as_str().to_owned(),
                                    r.profile.clone(),
                                    r.attempts.to_string(),
                                    when(r.created_at),
                                    r.email.clone(),
                                    r.join_url
                                        .as_deref()
                                        .or(r.last_error.as_deref())
                                        .unwrap_or("")
                                        .to_owned(),
                                ]
                            })
                            .collect(),
                        json: serde_json::Value::Null,
                    }
                    .print(crate::output::Format::Table)?;
                    let counts = store.counts().await?;
                    let summary: Vec<String> = counts
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(|(s, n)| format!("{s}: {n}"))
                        .collect();
                    eprintln!(
                        "{} shown; outbox: {}",
                        rows.len(),
                        if summary.is_empty() {
                            "empty".into()
                        } else {
                            summary.join(", ")
                        }
                    );
                }
            }
        }
        OutboxCommand::Retry { id: Some(id), .. } => {
            if !store.retry(&id, now).await? {
                match store.registration(&id).await? {
                    None => bail!("no registration {id}"),
                    Some(r) => bail!("registration {id} is {}, not failed or dead", r.state),
                }
            }
            say!("Registration {id} will be delivered again.");
        }
        OutboxCommand::Retry { id: None, .. } => {
            let n = store.retry_all_failed(now).await?;
            say!("{n} registration(s) will be delivered again.");
        }
        OutboxCommand::Purge {
            delivered_before,
            yes,
        } => {
            let before = crate::output::parse_moment(&delivered_before)?;
            let found = store.count_delivered_before(before).await?;
            if found == 0 {
                say!("No delivered registration finished before {before}: nothing to delete.");
                return Ok(());
            }
            let question = format!(
                "Delete {found} delivered registration(s) finished before {before}? They cannot be brought back."
            );
            if !crate::output::confirm(&question, yes)? {
                say!("Nothing deleted.");
                return Ok(());
            }
            let n = store.purge_delivered_before(before).await?;
            say!("{n} delivered registration(s) deleted.");
        }
    }
    Ok(())
}
