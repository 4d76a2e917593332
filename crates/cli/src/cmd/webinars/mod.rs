//! `g2w webinars`: find webinar keys without reading URLs, and make, change, cancel
//! and copy webinars.

mod manage;
mod when;

use anyhow::Context as _;
use g2w_goto::{WebinarKey, WebinarZone};

use crate::context::Context;
use crate::output::{Format, Listing, Shown, parse_time, print_json, say};

/// `g2w webinars …`
#[derive(Debug, clap::Subcommand)]
pub enum WebinarsCommand {
    /// Webinars with a session in a time range (default: now to 90 days ahead).
    List {
        /// From this date (YYYY-MM-DD or RFC 3339).
        #[arg(long, value_parser = parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// To this date.
        #[arg(long, value_parser = parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// Only webinars whose subject contains this (case-insensitive).
        #[arg(long)]
        subject: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One webinar: times, registration URL, registrants, approval, form fields.
    Show {
        /// The webinar key.
        webinar_key: WebinarKey,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Shown::Text)]
        format: Shown,
    },
    /// Schedule a webinar: times are read in its --time-zone.
    Create(manage::Create),
    /// Change a webinar's subject, description, times or time zone.
    Update(manage::Update),
    /// Cancel a webinar (it asks first, and says if the gateway still queues
    /// registrations for it).
    Cancel(manage::Cancel),
    /// A new webinar with another's form, questions and settings, at new times.
    Copy(manage::Copy),
}

/// Runs a webinars command.
pub async fn run(ctx: &Context, command: WebinarsCommand) -> anyhow::Result<()> {
    let client = ctx.client(ctx.token_manager().await?);
    match command {
        WebinarsCommand::List {
            from,
            to,
            subject,
            format,
        } => {
            let from = from.unwrap_or_else(chrono::Utc::now);
            let to = to.unwrap_or(from + chrono::Duration::days(90));
            anyhow::ensure!(from <= to, "--from is after --to");
            let needle = subject.map(|s| s.to_lowercase());
            let mut webinars = client.webinars(from, to).await?;
            webinars.retain(|w| {
                needle
                    .as_ref()
                    .is_none_or(|n| w.subject.to_lowercase().contains(n))
            });
            webinars.sort_by_key(|w| (w.times.first().map(|t| t.start_time), w.webinar_key));
            let rows = webinars
                .iter()
                .map(|w| {
                    vec![
                        w.webinar_key.to_string(),
                        w.times
                            .first()
                            .map(|t| WebinarZone::named(w.time_zone.as_deref()).short(t.start_time))
                            .unwrap_or_default(),
                        w.subject.clone(),
                        w.time_zone.clone().unwrap_or_default(),
                        w.registration_url.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            Listing {
                columns: crate::output::columns(&[
                    "webinarKey",
                    "start",
                    "subject",
                    "timeZone",
                    "registrationUrl",
                ]),
                rows,
                json: serde_json::to_value(&webinars)?,
            }
            .print(format)
        }
        WebinarsCommand::Create(args) => manage::create(ctx, &client, args).await,
        WebinarsCommand::Update(args) => manage::update(ctx, &client, args).await,
        WebinarsCommand::Cancel(args) => manage::cancel(ctx, &client, args).await,
        WebinarsCommand::Copy(args) => manage::copy(ctx, &client, args).await,
        WebinarsCommand::Show {
            webinar_key,
            format,
        } => {
            let w = client
                .webinar(webinar_key)
                .await
                .context("cannot get the webinar")?;
            let fields = client
                .registration_fields(webinar_key)
                .await
                .context("cannot get its registration fields")?;
            if format == Shown::Json {
                return print_json(&serde_json::json!({
                    "webinar": w,
                    "registrationFields": fields,
                }));
            }
            print_detail(&w.subject, &w);
            crate::cmd::registrants::print_fields(&fields);
            Ok(())
        }
    }
}

/// A webinar as people read it, under `headline`: key, sessions in its own zone, its
/// zone, registration URL, registrants, approval and description.
pub(crate) fn print_detail(headline: &str, w: &g2w_goto::WebinarDetail) {
    say!("{headline}");
    say!("  webinar key:      {}", w.webinar_key);
    let zone = WebinarZone::named(w.time_zone.as_deref());
    for t in &w.times {
        say!(
            "  session:          {}",
            zone.session(t.start_time, t.end_time)
        );
    }
    say!(
        "  time zone:        {}",
        w.time_zone.as_deref().unwrap_or("-")
    );
    say!(
        "  registration URL: {}",
        w.registration_url.as_deref().unwrap_or("-")
    );
    say!(
        "  registrants:      {}",
        w.number_of_registrants
            .map_or("-".into(), |n| n.to_string())
    );
    say!(
        "  approval:         {}",
        w.approval_type.as_deref().unwrap_or("-")
    );
    if let Some(d) = w.description.as_deref().filter(|d| !d.is_empty()) {
        say!("  description:      {d}");
    }
}
