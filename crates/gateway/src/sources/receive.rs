//! What happens to a post: its signature checked on the raw bytes, then read, mapped and
//! registered through the one intake; a signed post that cannot be registered is kept
//! as it came, with the reason, for a replay. The tool is answered 2xx for everything it
//! signed that was stored (a registration or a kept post), so it never retries forever;
//! only a store that cannot write says 503, and the tool's retry loses nothing.

use std::net::IpAddr;

use axum::http::HeaderMap;
use g2w_goto::{NewRegistrant, WebinarKey};
use g2w_store::{KeptPost, PostState, Registration};
use serde::Serialize;

use super::fields::{self, Field, Parsed};
use super::mapping::{self, Line};
use super::signature::{self, Signed, Unsigned};
use super::{Source, SourceTarget};
use crate::intake::{self, Attempt, Caller, Intake, Refused, Target};
use crate::metrics::SourceOutcome;

/// A post as it reached `/in/{name}[/{secret}]`.
pub(crate) struct Post<'a> {
    pub name: &'a str,
    pub path_secret: Option<&'a str>,
    pub peer: IpAddr,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What became of a post.
#[derive(Debug)]
pub(crate) enum Received {
    /// No source of that name.
    Unknown,
    /// Refused before it was read.
    Refused(Unsigned),
    /// Another of the tool's events: nothing to register.
    Ignored(String),
    /// Stored as a registration (or answered from the one its submission made).
    Registered(Box<Registration>),
    /// Kept until its mapping is fixed.
    Kept { reason: String },
    /// The store could not keep it: nothing was stored.
    Unavailable,
}

/// What taking a post into intake came to.
enum Took {
    Ignored(String),
    Registered(Box<Registration>),
    Refused {
        submission_id: String,
        reason: String,
    },
    Unavailable,
}

/// Receives one post for its source.
pub(crate) async fn receive(intake: &Intake, post: Post<'_>) -> Received {
    let store = &intake.shared.store;
    let source = match store.source(post.name).await {
        Ok(Some(record)) => match Source::from_record(record) {
            Ok(source) => source,
            Err(why) => {
                tracing::error!(source = post.name, "{why}");
                return Received::Unavailable;
            }
        },
        Ok(None) => return Received::Unknown,
        Err(e) => {
            tracing::error!(
                source = post.name,
                "cannot read the source: {}",
                g2w_goto::chain(&e)
            );
            return Received::Unavailable;
        }
    };
    let metrics = &intake.shared.metrics;
    metrics.source(&source.name, SourceOutcome::Received);
    let now = intake.shared.now();
    let signed = Signed {
        headers: post.headers,
        path_secret: post.path_secret,
        peer: post.peer,
        body: post.body,
        now,
    };
    if let Err(unsigned) = signature::check(&source, &signed) {
        metrics.source(&source.name, SourceOutcome::RefusedSignature);
        tracing::info!(source = %source.name, "post refused: {}", unsigned.reason());
        return Received::Refused(unsigned);
    }
    let content_type = post
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let took = take(intake, &source, content_type, post.body, true).await;
    let received = match took {
        Took::Ignored(event) => {
            metrics.source(&source.name, SourceOutcome::Ignored);
            return Received::Ignored(event);
        }
        Took::Registered(registration) => Received::Registered(registration),
        Took::Unavailable => Received::Unavailable,
        Took::Refused {
            submission_id,
            reason,
        } => {
            let kept = KeptPost {
                id: intake::new_id(now),
                source: source.name.clone(),
                submission_id,
                received_at: now,
                content_type: content_type.chars().take(200).collect(),
                body: post.body.to_vec(),
                state: PostState::NeedsMapping,
                reason: Some(reason.clone()),
                registration_id: None,
            };
            match store.keep_post(&kept).await {
                Ok(_) => Received::Kept { reason },
                Err(e) => {
                    tracing::error!(source = %source.name, "cannot keep a post: {}", g2w_goto::chain(&e));
                    Received::Unavailable
                }
            }
        }
    };
    metrics.source(
        &source.name,
        match &received {
            Received::Registered(_) => SourceOutcome::Registered,
            Received::Kept { .. } => SourceOutcome::NeedsMapping,
            _ => SourceOutcome::StorageError,
        },
    );
    received
}

/// Reads a post and registers it through intake; `learn` records the fields it names
/// when they differ from the ones the source saw last (for `g2w sources show`).
async fn take(
    intake: &Intake,
    source: &Source,
    content_type: &str,
    body: &[u8],
    learn: bool,
) -> Took {
    let (id, fields) = match fields::parse(source.kind, &source.settings, content_type, body) {
        Ok(Parsed::Submission { id, fields }) => (id, fields),
        Ok(Parsed::Other(event)) => return Took::Ignored(event),
        Err(reason) => {
            return Took::Refused {
                submission_id: fields::digest(body),
                reason,
            };
        }
    };
    let submission_id = id.unwrap_or_else(|| fields::digest(body));
    let same_fields = fields.len() == source.seen.len()
        && fields
            .iter()
            .zip(&source.seen)
            .all(|(a, b)| a.key == b.key && a.label == b.label && a.hint == b.hint);
    // Written only when the form changed: the values are the visitor's, never kept here.
    if learn && !same_fields {
        let seen = serde_json::to_string(&fields).unwrap_or_default();
        if let Err(e) = intake
            .shared
            .store
            .saw_source_fields(&source.name, &seen)
            .await
        {
            tracing::debug!(
                "cannot record the fields source {} posted: {e}",
                source.name
            );
        }
    }
    let key = target_key(source);
    let attempt = match attempt(intake, source, &key, &fields, Some(&submission_id)) {
        Ok(attempt) => attempt,
        Err(refused) => {
            return Took::Refused {
                submission_id,
                reason: reason(&refused),
            };
        }
    };
    match intake.register(attempt).await {
        Ok(registered) => Took::Registered(Box::new(registered.registration)),
        Err(Refused::Unavailable) => Took::Unavailable,
        Err(refused) => Took::Refused {
            submission_id,
            reason: reason(&refused),
        },
    }
}

fn target_key(source: &Source) -> String {
    match source.target {
        SourceTarget::Webinar(key) => key.to_string(),
        SourceTarget::Series(key) => key.to_string(),
    }
}

/// The attempt `source` makes of a post's fields.
fn attempt<'a>(
    intake: &Intake,
    source: &Source,
    key: &'a str,
    fields: &[Field],
    submission_id: Option<&str>,
) -> Result<Attempt<'a>, Refused> {
    Ok(Attempt {
        target: match source.target {
            SourceTarget::Webinar(_) => Target::Webinar(key),
            SourceTarget::Series(_) => Target::NextOfSeries(key),
        },
        submission: mapping::map(source, fields),
        caller: intake.admit(Caller::Source(source.name.clone()))?,
        idempotency_key: submission_id.map(|id| format!("source:{}:{id}", source.name)),
    })
}

/// Why intake refused, as people read it.
fn reason(refused: &Refused) -> String {
    match refused {
        Refused::Invalid(invalid) => {
            intake::describe(&invalid.errors, invalid.form.as_deref().map(|i| &i.form)).join("; ")
        }
        other => other.api_error().parts().1.to_owned(),
    }
}

/// What a replay did.
#[derive(Debug, Default, Serialize)]
pub struct Replayed {
    /// Kept posts registered now: (post id, registration id).
    pub registered: Vec<(String, String)>,
    /// Kept posts still refused: (post id, why).
    pub refused: Vec<(String, String)>,
    /// Whether the store stopped answering before every post was tried.
    pub interrupted: bool,
}

/// Sends every post kept for `source` through intake again, with its mapping as it is
/// now; a post registered is marked so, one refused again keeps its new reason.
///
/// # Errors
/// No such source, or the store cannot say which posts wait.
pub(crate) async fn replay(intake: &Intake, name: &str) -> Result<Replayed, String> {
    let source = load(intake, name).await?;
    let store = &intake.shared.store;
    let waiting = store
        .kept_posts(name, true, u32::MAX)
        .await
        .map_err(|e| g2w_goto::chain(&e))?;
    let mut replayed = Replayed::default();
    for post in waiting {
        let took = take(intake, &source, &post.content_type, &post.body, false).await;
        let now = intake.shared.now();
        let (written, reason) = match took {
            Took::Registered(registration) => {
                let written = store.post_registered(&post.id, &registration.id, now).await;
                replayed.registered.push((post.id.clone(), registration.id));
                (written, None)
            }
            Took::Refused { reason, .. } => (
                store.post_refused(&post.id, &reason, now).await,
                Some(reason),
            ),
            Took::Ignored(event) => {
                let reason = format!("the tool's {event:?} event is not a submission");
                (
                    store.post_refused(&post.id, &reason, now).await,
                    Some(reason),
                )
            }
            Took::Unavailable => {
                replayed.interrupted = true;
                break;
            }
        };
        if let Some(reason) = reason {
            replayed.refused.push((post.id, reason));
        }
        if written.is_err() {
            replayed.interrupted = true;
            break;
        }
    }
    Ok(replayed)
}

async fn load(intake: &Intake, name: &str) -> Result<Source, String> {
    match intake.shared.store.source(name).await {
        Ok(Some(record)) => Source::from_record(record),
        Ok(None) => Err(format!("no source called {name:?}")),
        Err(e) => Err(g2w_goto::chain(&e)),
    }
}

/// The registration a post would make.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// The webinar (a series' date: the one picked).
    pub webinar_key: WebinarKey,
    /// The organizer (profile) whose webinar it is.
    pub profile: String,
    /// What GoTo would get.
    pub registrant: NewRegistrant,
    /// Whether it was checked against the webinar's own form (else GoTo checks it).
    pub validated: bool,
}

/// What `g2w sources test` says of a payload.
#[derive(Debug, Serialize)]
pub struct Tested {
    /// The tool's id for the submission, when it has one.
    pub submission_id: Option<String>,
    /// The mapping against the payload's fields.
    pub mapping: Vec<Line>,
    /// The registration it would make, or exactly why not.
    pub outcome: Result<Preview, String>,
}

/// What `source` would make of `body`, without storing or sending anything (the
/// signature is not checked: a saved payload has none).
///
/// # Errors
/// No such source, or the store cannot say what it is.
pub(crate) async fn test(
    intake: &Intake,
    name: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Tested, String> {
    let source = load(intake, name).await?;
    let (id, fields) = match fields::parse(source.kind, &source.settings, content_type, body) {
        Ok(Parsed::Submission { id, fields }) => (id, fields),
        Ok(Parsed::Other(event)) => {
            return Ok(Tested {
                submission_id: None,
                mapping: Vec::new(),
                outcome: Err(format!(
                    "the tool's {event:?} event is not a submission: g2w answers it and registers nobody"
                )),
            });
        }
        Err(why) => {
            return Ok(Tested {
                submission_id: None,
                mapping: Vec::new(),
                outcome: Err(why),
            });
        }
    };
    let key = target_key(&source);
    let outcome = match attempt(intake, &source, &key, &fields, None) {
        Ok(attempt) => intake.preview(attempt).await,
        Err(refused) => Err(refused),
    };
    Ok(Tested {
        submission_id: id,
        mapping: mapping::explain(&source, &fields),
        outcome: outcome
            .map(|checked| Preview {
                webinar_key: checked.webinar_key,
                profile: checked.organizer.profile.clone(),
                registrant: checked.registrant,
                validated: checked.validated,
            })
            .map_err(|refused| reason(&refused)),
    })
}
