//! The Sources page: each form builder posting to the gateway, how its fields map to
//! GoTo's (against its latest post), and the posts kept because they could not be
//! registered, with a Replay once the mapping is fixed (`g2w sources set`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Admin, AdminForm, Layout, done, notice, render};
use crate::intake::Intake;
use crate::sources::{How, Source, explain};
use crate::state::{Console, Shared};

struct Mapped {
    goto: String,
    from: String,
    how: &'static str,
    missing: bool,
}

struct Kept {
    id: String,
    received: String,
    submission: String,
    reason: String,
}

struct SourceRow {
    name: String,
    kind: &'static str,
    target: String,
    path: String,
    mapping: Vec<Mapped>,
    kept: Vec<Kept>,
}

#[derive(Template)]
#[template(path = "admin_sources.html")]
struct SourcesPage {
    layout: Layout,
    sources: Vec<SourceRow>,
}

fn how(how: How) -> &'static str {
    match how {
        How::Set => "set",
        How::Guessed => "guessed",
        How::ByText => "by question text",
        How::Missing => "not found",
    }
}

/// `GET /admin/sources`.
pub(crate) async fn sources(
    State(console): State<Arc<Console>>,
    State(shared): State<Shared>,
    admin: Admin,
) -> Response {
    let shown = notice(&console, &admin.csrf);
    let store = &shared.store;
    let read = async {
        let mut rows = Vec::new();
        for record in store.sources().await? {
            let kept = store.kept_posts(&record.name, true, 50).await?;
            rows.push((record, kept));
        }
        Ok::<_, g2w_store::StoreError>(rows)
    };
    let rows = match read.await {
        Ok(rows) => rows,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The sources cannot be read: {e}"),
            )
                .into_response();
        }
    };
    let sources = rows
        .into_iter()
        .filter_map(|(record, kept)| {
            let source = Source::from_record(record).ok()?;
            let signs = source.kind.signs(&source.settings);
            Some(SourceRow {
                mapping: explain(&source, &source.seen)
                    .into_iter()
                    .map(|l| Mapped {
                        missing: l.how == How::Missing,
                        how: how(l.how),
                        from: l.from.unwrap_or_default(),
                        goto: l.goto,
                    })
                    .collect(),
                kept: kept
                    .into_iter()
                    .map(|p| Kept {
                        received: p
                            .received_at
                            .to_utc()
                            .format("%Y-%m-%d %H:%M:%S UTC")
                            .to_string(),
                        reason: p.reason.unwrap_or_default(),
                        submission: p.submission_id,
                        id: p.id,
                    })
                    .collect(),
                // The secret of a URL is not shown on a page.
                path: if signs {
                    source.path()
                } else {
                    format!("/in/{}/(secret)", source.name)
                },
                kind: source.kind.as_str(),
                target: source.target.to_string(),
                name: source.name,
            })
        })
        .collect();
    render(&SourcesPage {
        layout: Layout {
            signed_in: true,
            active: "sources",
            csrf: admin.csrf,
            notice: shown,
        },
        sources,
    })
}

/// `POST /admin/sources/{name}/replay`.
pub(crate) async fn replay(
    intake: Intake,
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
    AdminForm { csrf, .. }: AdminForm,
) -> Response {
    let notice = match crate::sources::replay(&intake, &name).await {
        Ok(r) if r.interrupted => format!(
            "{} registered, {} still refused; the store stopped answering: replay again.",
            r.registered.len(),
            r.refused.len()
        ),
        Ok(r) => format!(
            "{}: {} post(s) registered, {} still refused.",
            name,
            r.registered.len(),
            r.refused.len()
        ),
        Err(why) => format!("Nothing replayed: {why}"),
    };
    done(&console, &csrf, "/admin/sources", notice)
}
