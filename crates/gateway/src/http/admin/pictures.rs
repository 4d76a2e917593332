//! The console's pictures: a webinar's sign-ups per day and, once it has run, who came;
//! the queues over the last day; each organizer's share of GoTo's budget. Drawn on the
//! server (`crate::charts`), each with its numbers in a table.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use g2w_goto::{Timestamp, WebinarKey};

use super::{Admin, Layout, render};
use crate::cache::Lookup;
use crate::charts;
use crate::metrics::Minute;
use crate::organizers::Organizers;
use crate::state::Shared;

fn layout(csrf: String, active: &'static str) -> Layout {
    Layout {
        signed_in: true,
        active,
        csrf,
        notice: None,
    }
}

fn day(t: Timestamp) -> String {
    t.to_utc().format("%Y-%m-%d").to_string()
}

/// One row of a table beside a picture.
struct Row {
    label: String,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin_webinar.html")]
struct WebinarPage {
    layout: Layout,
    subject: String,
    key: String,
    start: String,
    signups_svg: String,
    signups: Vec<Row>,
    /// Once it has run: the funnel and its numbers.
    turnout: Option<(String, Vec<Row>)>,
}

const DAY_MS: i64 = 86_400_000;

/// `GET /admin/webinars/{key}`: sign-ups per day up to the start; after it, registered
/// → attended → no-show.
pub(crate) async fn webinar(
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    Path(key): Path<String>,
    Admin { csrf }: Admin,
) -> Response {
    let Ok(key) = key.parse::<WebinarKey>() else {
        return (StatusCode::NOT_FOUND, "No such webinar.").into_response();
    };
    let found = organizers.find(key, shared.config.lookup_deadline).await;
    let Lookup::Found(info) = found.lookup else {
        return (
            StatusCode::NOT_FOUND,
            "No such webinar (or GoTo cannot say now).",
        )
            .into_response();
    };
    let read = async {
        Ok::<_, g2w_store::StoreError>((
            shared.store.signups_by_day(key.get()).await?,
            shared.store.turnout(key.get()).await?,
        ))
    };
    let Ok((by_day, turnout)) = read.await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "The store cannot be read now.",
        )
            .into_response();
    };
    let now = shared.now();
    let start = info
        .detail
        .times
        .first()
        .map(|t| Timestamp::from_millis(t.start_time.timestamp_millis()));
    // Every day from the first sign-up to the start (or today), the empty ones too.
    let counts: BTreeMap<i64, u64> = by_day
        .iter()
        .map(|(d, n)| (d.as_millis() / DAY_MS, *n))
        .collect();
    let last_day = start.unwrap_or(now).min(now).as_millis() / DAY_MS;
    let first_day = counts
        .keys()
        .next()
        .copied()
        .unwrap_or(last_day)
        .min(last_day)
        .max(last_day - 365);
    let points: Vec<(String, f64)> = (first_day..=last_day)
        .map(|d| {
            let n = counts.get(&d).copied().unwrap_or(0);
            (day(Timestamp::from_millis(d * DAY_MS)), n as f64)
        })
        .collect();
    let total: u64 = counts.values().sum();
    let signups_svg = charts::bars(
        "signups",
        &format!("Sign-ups through g2w per day: {total} in all"),
        &points,
    );
    let signups = points
        .iter()
        .filter(|(_, n)| *n > 0.0)
        .map(|(d, n)| Row {
            label: d.clone(),
            cells: vec![format!("{n:.0}")],
        })
        .collect();
    let has_run = start.is_some_and(|s| s <= now);
    let turnout = has_run.then(|| {
        let registered = turnout
            .registered
            .max(info.detail.number_of_registrants.unwrap_or(0));
        let attended = turnout.attended.min(registered);
        let steps = [
            ("registered", registered),
            ("attended", attended),
            ("no-show", registered - attended),
        ];
        let svg = charts::funnel(
            "turnout",
            &format!(
                "Of {registered} registered, {attended} attended and {} did not",
                registered - attended
            ),
            &steps,
        );
        let rows = steps
            .iter()
            .map(|(label, n)| Row {
                label: (*label).to_owned(),
                cells: vec![n.to_string()],
            })
            .collect();
        (svg, rows)
    });
    let zone = g2w_goto::WebinarZone::named(info.detail.time_zone.as_deref());
    render(&WebinarPage {
        layout: layout(csrf, "webinars"),
        subject: info.detail.subject.clone(),
        key: key.to_string(),
        start: info
            .detail
            .times
            .first()
            .map(|t| zone.short(t.start_time))
            .unwrap_or_default(),
        signups_svg,
        signups,
        turnout,
    })
}

#[derive(Template)]
#[template(path = "admin_activity.html")]
struct ActivityPage {
    layout: Layout,
    since: String,
    waiting_svg: String,
    delivered_svg: String,
    answer_svg: String,
    throttled_svg: String,
    hours: Vec<Row>,
    budgets: Vec<(String, String, Vec<String>)>,
}

/// Minutes per bar of the per-minute counts (a day in 144 bars).
const BUCKET: usize = 10;

fn clock(minute: i64) -> String {
    Timestamp::from_secs(minute * 60)
        .to_utc()
        .format("%H:%M UTC")
        .to_string()
}

/// `GET /admin/activity`: the registrations queue over the last day (as this gateway saw
/// it since it started): waiting, delivered a minute, GoTo's answer time, 429s; and each
/// organizer's share of GoTo's budget.
pub(crate) async fn activity(
    State(shared): State<Shared>,
    State(organizers): State<Organizers>,
    Admin { csrf }: Admin,
) -> Response {
    let minutes = shared.metrics.minutes();
    let label = |m: &Minute| clock(m.at);
    let waiting: Vec<(String, Option<f64>)> = minutes
        .iter()
        .map(|m| (label(m), m.waiting.map(|w| w as f64)))
        .collect();
    let buckets: Vec<&[Minute]> = minutes.chunks(BUCKET).collect();
    let per_bucket = |f: &dyn Fn(&Minute) -> f64| -> Vec<(String, f64)> {
        buckets
            .iter()
            .map(|b| (label(&b[0]), b.iter().map(f).sum::<f64>() / b.len() as f64))
            .collect()
    };
    let delivered = per_bucket(&|m| m.delivered as f64);
    let throttled = per_bucket(&|m| m.throttled as f64);
    let answer: Vec<(String, Option<f64>)> = buckets
        .iter()
        .map(|b| {
            let (sum, n) = b
                .iter()
                .fold((0.0, 0u64), |(s, n), m| (s + m.answer_ms, n + m.answers));
            (label(&b[0]), (n > 0).then(|| sum / n as f64))
        })
        .collect();
    let most = |v: &[(String, f64)]| v.iter().map(|(_, n)| *n).fold(0.0, f64::max);
    let waiting_now = minutes.iter().rev().find_map(|m| m.waiting).unwrap_or(0);
    // The table: an hour a row, newest first.
    let mut by_hour: BTreeMap<i64, Vec<&Minute>> = BTreeMap::new();
    for m in &minutes {
        by_hour.entry(m.at.div_euclid(60)).or_default().push(m);
    }
    let hours = by_hour
        .iter()
        .rev()
        .map(|(hour, ms)| {
            let (sum, n) = ms
                .iter()
                .fold((0.0, 0u64), |(s, n), m| (s + m.answer_ms, n + m.answers));
            Row {
                label: clock(hour * 60),
                cells: vec![
                    ms.iter()
                        .rev()
                        .find_map(|m| m.waiting)
                        .map_or_else(|| "—".into(), |w| w.to_string()),
                    ms.iter().map(|m| m.delivered).sum::<u64>().to_string(),
                    if n > 0 {
                        format!("{:.0}", sum / n as f64)
                    } else {
                        "—".into()
                    },
                    ms.iter().map(|m| m.throttled).sum::<u64>().to_string(),
                ],
            }
        })
        .collect();
    // Each organizer's share over the last hour this gateway sampled.
    let recent: Vec<&Minute> = minutes
        .iter()
        .rev()
        .take(60)
        .filter(|m| !m.calls.is_empty())
        .collect();
    let budgets = organizers
        .all()
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let (calls, budget) = recent.iter().fold((0u64, 0.0), |(c, b), m| {
                match m.calls.iter().find(|(p, _, _)| *p == o.profile) {
                    Some((_, made, Some(per_minute))) => (c + made, b + per_minute),
                    Some((_, made, None)) => (c + made, b),
                    None => (c, b),
                }
            });
            let (svg, share) = if budget > 0.0 {
                let share = calls as f64 / budget;
                (
                    charts::meter(
                        &format!("budget-{i}"),
                        &format!(
                            "{}: {:.0} % of GoTo's budget in use over the last hour",
                            o.profile,
                            share * 100.0
                        ),
                        share,
                    ),
                    format!("{:.0} %", share * 100.0),
                )
            } else {
                (String::new(), "no limit".to_owned())
            };
            (
                o.profile.clone(),
                svg,
                vec![calls.to_string(), format!("{budget:.0}"), share],
            )
        })
        .collect();
    render(&ActivityPage {
        layout: layout(csrf, "activity"),
        since: minutes
            .first()
            .map_or_else(|| "now".to_owned(), |m| clock(m.at)),
        waiting_svg: charts::line(
            "waiting",
            &format!("Registrations waiting for GoTo, a sample a minute; {waiting_now} now"),
            &waiting,
        ),
        delivered_svg: charts::bars(
            "delivered",
            &format!(
                "Delivered to GoTo a minute, averaged over {BUCKET} minutes; at most {:.1}",
                most(&delivered)
            ),
            &delivered,
        ),
        answer_svg: charts::line(
            "answer",
            "GoTo's answer time to deliveries, milliseconds, averaged over 10 minutes",
            &answer,
        ),
        throttled_svg: charts::bars(
            "throttled",
            &format!(
                "GoTo's 429s a minute, averaged over {BUCKET} minutes; at most {:.1}",
                most(&throttled)
            ),
            &throttled,
        ),
        hours,
        budgets,
    })
}
