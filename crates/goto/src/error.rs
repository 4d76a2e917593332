//! The one error type of the GoTo client, shaped for the decisions callers make.

use std::time::Duration;

use crate::keys::RegistrantKey;

/// A field GoTo refused, from a `RegistrationInvalid` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// GoTo's field name (`email`, `organization`, …) or `responses` for a question.
    pub field: String,
    /// The question, when the problem is a custom-question answer.
    pub question_key: Option<crate::QuestionKey>,
    /// GoTo's reason, when it gave one.
    pub reason: Option<String>,
}

impl std::fmt::Display for InvalidField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.question_key {
            Some(q) => write!(f, "question {q}")?,
            None => f.write_str(&self.field)?,
        }
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        Ok(())
    }
}

/// What went wrong talking to GoTo. Each variant says whether retrying can help.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum GotoError {
    /// 403 with `int_err_code` `InvalidToken`: the access token is missing, expired or
    /// revoked. Retryable once, after a refresh (the token manager does this itself).
    #[error("GoTo rejected the access token (InvalidToken)")]
    InvalidToken,
    /// Any other 403, such as a registration limit or another organizer's webinar.
    /// Not retryable.
    #[error("GoTo refused the request (403): {message}")]
    Forbidden {
        /// GoTo's `errorCode` (or `int_err_code`), if any.
        code: Option<String>,
        /// GoTo's description.
        message: String,
    },
    /// 404: the webinar or registrant does not exist (or the webinar was cancelled).
    /// Not retryable.
    #[error("not found at GoTo: {message}")]
    NotFound {
        /// GoTo's description.
        message: String,
    },
    /// 409 on create registrant: the email is already registered. Not an error for most
    /// callers: look up the existing registration. Not retryable.
    #[error("already registered{}", .registrant_key.map(|k| format!(" as registrant {k}")).unwrap_or_default())]
    AlreadyRegistered {
        /// The existing registrant, when GoTo's answer names it.
        registrant_key: Option<RegistrantKey>,
        /// The existing join URL, when GoTo's answer has it.
        join_url: Option<String>,
    },
    /// 400 on create registrant: fields are missing or invalid. Not retryable as is.
    #[error("GoTo refused the registration: {}", display_fields(.fields, .message))]
    RegistrationInvalid {
        /// Each field GoTo named.
        fields: Vec<InvalidField>,
        /// GoTo's description.
        message: String,
    },
    /// Any other 400 (or 405/409 on webinars): the request itself is wrong. Not retryable.
    #[error("GoTo refused the request ({status}): {message}")]
    BadRequest {
        /// The HTTP status.
        status: u16,
        /// GoTo's `errorCode`, if any.
        code: Option<String>,
        /// GoTo's description.
        message: String,
    },
    /// 429: over GoTo's rate limit. Retryable after `retry_after` when given, else after
    /// a backoff.
    #[error("GoTo's rate limit was hit (429)")]
    RateLimited {
        /// GoTo's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// 5xx: GoTo failed. Retryable.
    #[error("GoTo failed ({status}): {message}")]
    Upstream {
        /// The HTTP status.
        status: u16,
        /// The body, shortened.
        message: String,
    },
    /// The request never got an answer: connection refused or dropped, timeout, TLS.
    /// Retryable.
    #[error("could not reach GoTo: {0}")]
    Transport(String),
    /// GoTo answered something this client cannot read. Not retryable.
    #[error("unexpected answer from GoTo at {path}: {message}")]
    Decode {
        /// Where in the body (`webinars[3].webinarKey`).
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The stored authorization is gone for good (refresh token expired or revoked);
    /// a person must log in again with the command in `hint`. Not retryable.
    #[error("reauthorization required: {reason}. Run `{hint}`")]
    ReauthorizationRequired {
        /// What GoTo said.
        reason: String,
        /// The command that fixes it.
        hint: String,
    },
    /// The token store failed (its error is the source). Not retryable by this client.
    #[error("the token store failed")]
    Store(#[source] crate::StoreFailure),
}

fn display_fields(fields: &[InvalidField], message: &str) -> String {
    if fields.is_empty() {
        return message.to_owned();
    }
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl GotoError {
    /// Whether the same request may succeed later without a change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::InvalidToken
                | Self::RateLimited { .. }
                | Self::Upstream { .. }
                | Self::Transport(_)
        )
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = GotoError> = std::result::Result<T, E>;

/// An error and every cause under it, as one line: `what: why: why deeper`. Each level's
/// message says only its own part, so nothing repeats.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}
