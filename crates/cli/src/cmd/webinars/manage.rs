//! `g2w webinars create|update|cancel|copy`: webinars made and changed from g2w. Times
//! are read in the webinar's zone, every change is checked as GoTo checks it before it
//! is sent, and `--dry-run` prints the request instead of sending it.

use anyhow::Context as _;
use chrono::Utc;
use g2w_goto::{
    GotoClient, ScheduleCall, Scheduled, WebinarChanges, WebinarCopy, WebinarDetail, WebinarKey,
    WebinarPlan, WebinarType, WebinarZone,
};

use super::when::{Typed, parse_length, parse_typed, sessions};
use crate::context::Context;
use crate::output::{Shown, confirm, notice, print_json, say};

/// Whether to send a change or show it.
#[derive(Debug, clap::Args)]
pub struct Sending {
    /// Print the request GoTo would get, and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Shown::Text)]
    format: Shown,
}

/// Session times.
#[derive(Debug, clap::Args)]
pub struct Times {
    /// A session's start, in the webinar's time zone ("2027-03-04 09:00"), or with an
    /// offset ("2027-03-04T09:00+01:00"). Repeat for a series or sequence.
    #[arg(long = "start", value_name = "TIME", value_parser = parse_typed)]
    starts: Vec<Typed>,
    /// That session's end: a date and time, or a time of day on its start's date
    /// ("10:30"). Repeat once per --start.
    #[arg(long = "end", value_name = "TIME", value_parser = parse_typed)]
    ends: Vec<Typed>,
    /// How long each session lasts ("1h", "90m", "1h30m"), instead of --end: no
    /// arithmetic across a change of the clocks.
    #[arg(long, value_name = "LENGTH", value_parser = parse_length, conflicts_with = "ends")]
    duration: Option<chrono::Duration>,
}

/// `g2w webinars create`
#[derive(Debug, clap::Args)]
pub struct Create {
    /// The title (at most 128 characters).
    #[arg(long)]
    subject: String,
    #[command(flatten)]
    times: Times,
    /// The webinar's own time zone, an IANA name such as Europe/Berlin.
    #[arg(long)]
    time_zone: String,
    /// The description (at most 2,048 characters).
    #[arg(long)]
    description: Option<String>,
    /// single_session (one --start), series (a webinar per --start, one form) or
    /// sequence (one webinar whose registrants attend every --start).
    #[arg(long = "type", default_value = "single_session", value_name = "TYPE")]
    kind: WebinarType,
    #[command(flatten)]
    sending: Sending,
}

/// `g2w webinars update`
#[derive(Debug, clap::Args)]
pub struct Update {
    /// The webinar key.
    webinar_key: WebinarKey,
    /// A new title.
    #[arg(long)]
    subject: Option<String>,
    /// A new description.
    #[arg(long)]
    description: Option<String>,
    /// New times replace every session; without --end, each keeps the webinar's length.
    #[command(flatten)]
    times: Times,
    /// A new time zone; --start and --end are read in it (else in the webinar's own).
    #[arg(long)]
    time_zone: Option<String>,
    /// Email the registrants about the change.
    #[arg(long)]
    notify: bool,
    #[command(flatten)]
    sending: Sending,
}

/// `g2w webinars cancel`
#[derive(Debug, clap::Args)]
pub struct Cancel {
    /// The webinar key.
    webinar_key: WebinarKey,
    /// Email the registrants that it is cancelled.
    #[arg(long)]
    notify: bool,
    /// Do not ask (needed without a terminal).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    sending: Sending,
}

/// `g2w webinars copy`
#[derive(Debug, clap::Args)]
pub struct Copy {
    /// The webinar to copy: its form, questions and settings come along.
    webinar_key: WebinarKey,
    /// The copy's sessions; without --end, each lasts as long as the source's.
    #[command(flatten)]
    times: Times,
    /// A new title (default: the source's).
    #[arg(long)]
    subject: Option<String>,
    /// A new description (default: the source's).
    #[arg(long)]
    description: Option<String>,
    /// The copy's time zone (default: the source's); times are read in it.
    #[arg(long)]
    time_zone: Option<String>,
    /// single_session, series or sequence (default: as the source, a series date copied
    /// as a single session).
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<WebinarType>,
    #[command(flatten)]
    sending: Sending,
}

/// How GoTo runs `w`.
fn kind_of(w: &WebinarDetail) -> WebinarType {
    w.kind
        .as_deref()
        .and_then(|k| k.parse().ok())
        .unwrap_or(WebinarType::SingleSession)
}

/// The zone named by a flag, else `fallback`; an unknown name is an error.
fn zone(flag: Option<&str>, fallback: Option<&str>) -> anyhow::Result<WebinarZone> {
    match flag {
        Some(name) => Ok(WebinarZone::parse(name)?),
        None => Ok(WebinarZone::named(fallback)),
    }
}

fn first_length(w: &WebinarDetail) -> Option<chrono::Duration> {
    w.times.first().map(|t| t.end_time - t.start_time)
}

async fn source(client: &GotoClient, key: WebinarKey) -> anyhow::Result<WebinarDetail> {
    client
        .webinar(key)
        .await
        .with_context(|| format!("cannot get webinar {key}"))
}

/// `--dry-run`: prints the request GoTo would get, and sends nothing.
async fn dry_run(ctx: &Context, call: &ScheduleCall, format: Shown) -> anyhow::Result<()> {
    let organizer = ctx.stored().await?.and_then(|r| r.organizer_key);
    if format == Shown::Json {
        print_json(&serde_json::json!({"dryRun": true, "request": call.to_json(organizer)}))
    } else {
        say!(
            "Dry run: nothing sent. GoTo would get:\n{}",
            call.describe(organizer)
        );
        Ok(())
    }
}

/// Sends `call`. When GoTo gives no answer, `unconfirmed` says what that may mean, and
/// a create or copy (never re-sent by the client) says to look before trying again.
async fn send(
    client: &GotoClient,
    call: &ScheduleCall,
    unconfirmed: &str,
) -> anyhow::Result<Option<Scheduled>> {
    client.schedule(call).await.map_err(|e| {
        let unsure = matches!(
            e,
            g2w_goto::GotoError::Transport(_) | g2w_goto::GotoError::Upstream { .. }
        );
        let error = anyhow::Error::new(e).context(format!("GoTo did not confirm: {unconfirmed}"));
        if unsure {
            error.context(
                "GoTo may have acted on it: check with `g2w webinars list` before trying again",
            )
        } else {
            error
        }
    })
}

/// Prints a webinar after a change, with `extra` lines.
fn describe(headline: &str, w: &WebinarDetail, extra: &[String]) {
    super::print_detail(headline, w);
    for line in extra {
        say!("  {line}");
    }
}

/// What a create or copy made, as people and as JSON read it. A series is listed date
/// by date, each with its own key.
async fn made(
    client: &GotoClient,
    scheduled: &Scheduled,
    headline: &str,
    format: Shown,
    copied_from: Option<WebinarKey>,
) -> anyhow::Result<()> {
    let w = source(client, scheduled.webinar_key).await?;
    let mut series = Vec::new();
    if let (Some(recurrence), Some(first)) = (scheduled.recurrence_key, w.times.first()) {
        let from = first.start_time - chrono::Duration::minutes(1);
        let mut dates = client
            .webinars(from, from + chrono::Duration::days(3 * 365))
            .await?;
        dates.retain(|d| d.recurrence_key == Some(recurrence));
        dates.sort_by_key(|d| d.times.first().map(|t| t.start_time));
        series = dates;
    }
    if format == Shown::Json {
        return print_json(&serde_json::json!({
            "webinarKey": scheduled.webinar_key,
            "recurrenceKey": scheduled.recurrence_key,
            "copiedFrom": copied_from,
            "webinar": w,
            "series": series,
        }));
    }
    let zone = WebinarZone::named(w.time_zone.as_deref());
    let extra: Vec<String> = match scheduled.recurrence_key {
        Some(r) => std::iter::once(format!("series:           {r} ({} dates)", series.len()))
            .chain(series.iter().filter_map(|d| {
                let t = d.times.first()?;
                Some(format!(
                    "  {}  {}",
                    d.webinar_key,
                    zone.session(t.start_time, t.end_time)
                ))
            }))
            .collect(),
        None => Vec::new(),
    };
    describe(headline, &w, &extra);
    Ok(())
}

/// `g2w webinars create`.
pub async fn create(ctx: &Context, client: &GotoClient, args: Create) -> anyhow::Result<()> {
    let zone = WebinarZone::parse(&args.time_zone)?;
    let plan = WebinarPlan {
        subject: args.subject,
        description: args.description,
        times: sessions(
            zone,
            &args.times.starts,
            &args.times.ends,
            args.times.duration,
        )?,
        time_zone: zone.name().to_owned(),
        kind: args.kind,
    };
    plan.check(Utc::now())
        .context("GoTo would refuse this webinar")?;
    let call = ScheduleCall::create(&plan)?;
    if args.sending.dry_run {
        return dry_run(ctx, &call, args.sending.format).await;
    }
    let scheduled = send(client, &call, "the webinar may not exist")
        .await?
        .context("GoTo named no new webinar")?;
    made(
        client,
        &scheduled,
        &format!("Created \"{}\"", plan.subject),
        args.sending.format,
        None,
    )
    .await
}

/// `g2w webinars update`.
pub async fn update(ctx: &Context, client: &GotoClient, args: Update) -> anyhow::Result<()> {
    let current = source(client, args.webinar_key).await?;
    let zone = zone(args.time_zone.as_deref(), current.time_zone.as_deref())?;
    let times = if args.times.starts.is_empty() {
        anyhow::ensure!(
            args.times.ends.is_empty() && args.times.duration.is_none(),
            "--end and --duration need a --start"
        );
        None
    } else {
        Some(sessions(
            zone,
            &args.times.starts,
            &args.times.ends,
            args.times.duration.or(first_length(&current)),
        )?)
    };
    let changes = WebinarChanges {
        subject: args.subject,
        description: args.description,
        times,
        time_zone: args.time_zone.map(|_| zone.name().to_owned()),
    };
    changes
        .check_in(kind_of(&current), Utc::now(), Some(zone.name()))
        .context("GoTo would refuse this change")?;
    let call = ScheduleCall::update(args.webinar_key, &changes, args.notify)?;
    if args.sending.dry_run {
        return dry_run(ctx, &call, args.sending.format).await;
    }
    send(client, &call, "the change may not be made").await?;
    let after = source(client, args.webinar_key).await?;
    if args.sending.format == Shown::Json {
        return print_json(&serde_json::json!({
            "webinarKey": args.webinar_key,
            "notified": args.notify,
            "webinar": after,
        }));
    }
    let told = if args.notify {
        "registrants were emailed"
    } else {
        "registrants were not emailed (--notify emails them)"
    };
    describe(
        &format!("Updated \"{}\"", after.subject),
        &after,
        &[told.to_owned()],
    );
    Ok(())
}

/// `g2w webinars cancel`: says first what else it cancels, and asks.
pub async fn cancel(ctx: &Context, client: &GotoClient, args: Cancel) -> anyhow::Result<()> {
    let current = source(client, args.webinar_key).await?;
    let queued = ctx
        .store
        .queued_for(args.webinar_key.get())
        .await
        .context("cannot count the registrations queued for it")?;
    let call = ScheduleCall::cancel(args.webinar_key, args.notify);
    if args.sending.dry_run {
        if queued > 0 {
            notice!(
                "{queued} registration(s) for it are still queued in the gateway's outbox: \
                 cancelling it would fail them."
            );
        }
        return dry_run(ctx, &call, args.sending.format).await;
    }
    let zone = WebinarZone::named(current.time_zone.as_deref());
    let when = current
        .times
        .first()
        .map(|t| format!(" ({})", zone.session(t.start_time, t.end_time)))
        .unwrap_or_default();
    let mut question = format!("Cancel \"{}\"{when}", current.subject);
    if let Some(n) = current.number_of_registrants.filter(|n| *n > 0) {
        question.push_str(&format!(
            ", which has {n} registrant(s){}",
            if args.notify {
                " who will be emailed"
            } else {
                " who will not be told (--notify tells them)"
            }
        ));
    }
    question.push('?');
    if queued > 0 {
        question = format!(
            "{queued} registration(s) for this webinar are still queued in the gateway's outbox \
             and will fail once it is cancelled. {question}"
        );
    }
    if !confirm(&question, args.yes)? {
        anyhow::bail!("nothing cancelled");
    }
    send(client, &call, "the webinar may not be cancelled").await?;
    if args.sending.format == Shown::Json {
        return print_json(&serde_json::json!({
            "webinarKey": args.webinar_key,
            "cancelled": true,
            "notified": args.notify,
            "queuedRegistrations": queued,
        }));
    }
    say!("Cancelled \"{}\" ({}).", current.subject, args.webinar_key);
    if queued > 0 {
        say!(
            "  {queued} queued registration(s) for it will fail: `g2w outbox list --state failed` shows them."
        );
    }
    Ok(())
}

/// `g2w webinars copy`.
pub async fn copy(ctx: &Context, client: &GotoClient, args: Copy) -> anyhow::Result<()> {
    anyhow::ensure!(!args.times.starts.is_empty(), "a copy needs its --start");
    let original = source(client, args.webinar_key).await?;
    let zone = zone(args.time_zone.as_deref(), original.time_zone.as_deref())?;
    let copy = WebinarCopy {
        subject: args.subject,
        description: args.description,
        times: sessions(
            zone,
            &args.times.starts,
            &args.times.ends,
            args.times.duration.or(first_length(&original)),
        )?,
        time_zone: Some(zone.name().to_owned()),
        kind: args.kind,
    };
    copy.check(kind_of(&original), Utc::now())
        .context("GoTo would refuse this copy")?;
    let call = ScheduleCall::copy(args.webinar_key, &copy)?;
    if args.sending.dry_run {
        return dry_run(ctx, &call, args.sending.format).await;
    }
    let scheduled = send(client, &call, "the copy may not exist")
        .await?
        .context("GoTo named no new webinar")?;
    let headline = format!("Copied \"{}\" ({})", original.subject, args.webinar_key);
    made(
        client,
        &scheduled,
        &headline,
        args.sending.format,
        Some(args.webinar_key),
    )
    .await
}
