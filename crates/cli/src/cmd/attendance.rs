//! `g2w sessions`, `g2w attendees` and `g2w report attendance`: who came, for how
//! long, and who did not, as tables for people and CSV for a follow-up mailing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use g2w_goto::{
    Attendee, GotoClient, Registrant, RegistrantKey, SessionKey, WebinarKey, WebinarZone,
};

use crate::context::Context;
use crate::output::{Format, Listing};

/// `g2w sessions …`
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// A webinar's sessions that have ended, with how many attended.
    List {
        /// The webinar key.
        webinar_key: WebinarKey,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// `g2w attendees …`
#[derive(Debug, clap::Subcommand)]
pub enum AttendeesCommand {
    /// Who attended, with join and leave times and minutes attended.
    List(AttendeesArgs),
    /// The same as CSV (or JSON), to a file or stdout.
    Export {
        #[command(flatten)]
        args: AttendeesArgs,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Which attendees.
#[derive(Debug, clap::Args)]
pub struct AttendeesArgs {
    /// The webinar key.
    webinar_key: WebinarKey,
    /// Only this session (default: every session).
    #[arg(long)]
    session: Option<SessionKey>,
    /// Output format (`export` defaults to CSV).
    #[arg(long, value_enum)]
    format: Option<Format>,
}

/// `g2w report …`
#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Every registrant: attended or no-show, minutes, and their custom answers (CSV).
    Attendance {
        /// The webinar key.
        webinar_key: WebinarKey,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
    },
}

/// Whole minutes, rounded to the nearest (a 29-second visit is 0 minutes).
fn minutes(seconds: u64) -> u64 {
    (seconds + 30) / 60
}

/// A cell a spreadsheet will not run as a formula (names come from the public).
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn stays(a: &Attendee, zone: WebinarZone) -> (String, String) {
    let first = a.attendance.iter().map(|s| s.join_time).min();
    let last = a.attendance.iter().map(|s| s.leave_time).max();
    (
        first.map(|t| zone.short(t)).unwrap_or_default(),
        last.map(|t| zone.short(t)).unwrap_or_default(),
    )
}

/// The webinar's own time zone, for the times a person reads (UTC when GoTo cannot say:
/// the call that follows reports what is wrong).
async fn zone_of(client: &GotoClient, webinar: WebinarKey) -> WebinarZone {
    let detail = client.webinar(webinar).await.ok();
    WebinarZone::named(detail.and_then(|w| w.time_zone).as_deref())
}

async fn attendees_of(
    client: &GotoClient,
    webinar: WebinarKey,
    session: Option<SessionKey>,
) -> anyhow::Result<Vec<Attendee>> {
    match session {
        Some(s) => client
            .session_attendees(webinar, s)
            .await
            .with_context(|| format!("cannot get the attendees of session {s}")),
        None => client
            .attendees(webinar)
            .await
            .context("cannot get the webinar's attendees"),
    }
}

fn attendee_listing(attendees: &[Attendee], zone: WebinarZone) -> anyhow::Result<Listing> {
    let rows = attendees
        .iter()
        .map(|a| {
            let (joined, left) = stays(a, zone);
            vec![
                cell(&a.email),
                cell(&a.first_name),
                cell(&a.last_name),
                a.registrant_key.to_string(),
                a.session_key.to_string(),
                joined,
                left,
                minutes(a.attendance_time_in_seconds).to_string(),
                a.attendance.len().to_string(),
            ]
        })
        .collect();
    Ok(Listing {
        columns: crate::output::columns(&[
            "email",
            "firstName",
            "lastName",
            "registrantKey",
            "sessionKey",
            "firstJoined",
            "lastLeft",
            "minutes",
            "visits",
        ]),
        rows,
        json: serde_json::to_value(attendees)?,
    })
}

/// Runs a sessions command.
pub async fn sessions(ctx: &Context, command: SessionsCommand) -> anyhow::Result<()> {
    let client = ctx.client(ctx.token_manager().await?);
    let SessionsCommand::List {
        webinar_key,
        format,
    } = command;
    let sessions = client
        .sessions(webinar_key)
        .await
        .context("cannot get the webinar's sessions")?;
    let zone = zone_of(&client, webinar_key).await;
    let rows = sessions
        .iter()
        .map(|s| {
            vec![
                s.session_key.to_string(),
                zone.short(s.start_time),
                zone.short(s.end_time),
                s.registrants_attended.to_string(),
                s.registrant_count
                    .map_or_else(String::new, |n| n.to_string()),
            ]
        })
        .collect();
    if sessions.is_empty() && format == Format::Table {
        eprintln!("No session of webinar {webinar_key} has ended yet.");
    }
    Listing {
        columns: crate::output::columns(&["sessionKey", "start", "end", "attended", "registered"]),
        rows,
        json: serde_json::to_value(&sessions)?,
    }
    .print(format)
}

/// Runs an attendees command.
pub async fn attendees(ctx: &Context, command: AttendeesCommand) -> anyhow::Result<()> {
    let client = ctx.client(ctx.token_manager().await?);
    match command {
        AttendeesCommand::List(args) => {
            let found = attendees_of(&client, args.webinar_key, args.session).await?;
            let zone = zone_of(&client, args.webinar_key).await;
            attendee_listing(&found, zone)?.print(args.format.unwrap_or(Format::Table))
        }
        AttendeesCommand::Export { args, output } => {
            let found = attendees_of(&client, args.webinar_key, args.session).await?;
            let zone = zone_of(&client, args.webinar_key).await;
            let format = args.format.unwrap_or(Format::Csv);
            attendee_listing(&found, zone)?.write(format, output.as_deref())?;
            if let Some(path) = output {
                eprintln!("{} attendee(s) written to {}", found.len(), path.display());
            }
            Ok(())
        }
    }
}

/// What the report knows of one registrant.
#[derive(Default)]
struct Attended {
    seconds: u64,
    sessions: usize,
}

/// Runs a report command.
pub async fn report(ctx: &Context, command: ReportCommand) -> anyhow::Result<()> {
    let client = ctx.client(ctx.token_manager().await?);
    let ReportCommand::Attendance {
        webinar_key,
        output,
        format,
    } = command;
    let fields = client
        .registration_fields(webinar_key)
        .await
        .context("cannot get the webinar's registration form")?;
    // Answers are only in each registrant's full record (one GoTo call each): fetched
    // only when the form has questions.
    let registrants: Vec<(Registrant, BTreeMap<String, String>)> = if fields.questions.is_empty() {
        client
            .registrants(webinar_key)
            .await
            .context("cannot get the webinar's registrants")?
            .into_iter()
            .map(|r| (r, BTreeMap::new()))
            .collect()
    } else {
        client
            .registrant_details(webinar_key)
            .await
            .context("cannot get the webinar's registrants and their answers")?
            .into_iter()
            .map(|d| {
                let answers = d
                    .responses
                    .into_iter()
                    .map(|a| (a.question, a.answer))
                    .collect();
                (d.registrant, answers)
            })
            .collect()
    };
    let attendees = client
        .attendees(webinar_key)
        .await
        .context("cannot get the webinar's attendees")?;
    let mut attended: BTreeMap<RegistrantKey, Attended> = BTreeMap::new();
    for a in &attendees {
        let entry = attended.entry(a.registrant_key).or_default();
        entry.seconds += a.attendance_time_in_seconds;
        entry.sessions += 1;
    }
    let questions: Vec<String> = fields
        .questions
        .iter()
        .map(|q| q.question.clone())
        .collect();
    let mut rows = Vec::with_capacity(registrants.len());
    let mut json = Vec::with_capacity(registrants.len());
    for (r, answers) in &registrants {
        let seen = attended.get(&r.registrant_key);
        let minutes_attended = seen.map_or(0, |a| minutes(a.seconds));
        let mut row = vec![
            cell(&r.email),
            cell(&r.first_name),
            cell(&r.last_name),
            r.registrant_key.to_string(),
            if seen.is_some() { "yes" } else { "no" }.to_owned(),
            minutes_attended.to_string(),
            seen.map_or(0, |a| a.sessions).to_string(),
        ];
        row.extend(
            questions
                .iter()
                .map(|q| cell(answers.get(q).map_or("", String::as_str))),
        );
        rows.push(row);
        json.push(serde_json::json!({
            "email": r.email,
            "firstName": r.first_name,
            "lastName": r.last_name,
            "registrantKey": r.registrant_key,
            "attended": seen.is_some(),
            "minutes": minutes_attended,
            "sessions": seen.map_or(0, |a| a.sessions),
            "answers": answers,
        }));
    }
    let came = registrants
        .iter()
        .filter(|(r, _)| attended.contains_key(&r.registrant_key))
        .count();
    let mut columns = crate::output::columns(&[
        "email",
        "firstName",
        "lastName",
        "registrantKey",
        "attended",
        "minutes",
        "sessions",
    ]);
    columns.extend(questions.iter().map(|q| cell(q)));
    Listing {
        columns,
        rows,
        json: serde_json::Value::Array(json),
    }
    .write(format, output.as_deref())?;
    eprintln!(
        "{} registrant(s): {came} attended, {} no-show(s).",
        registrants.len(),
        registrants.len() - came
    );
    Ok(())
}
