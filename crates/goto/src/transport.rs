//! The HTTP transport both GoTo servers (OAuth and API) are reached through.

use std::time::Duration;

use crate::error::{GotoError, Result};

/// Every request's time limit.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The connect time limit.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The one HTTP client g2w uses for GoTo: timeouts on, redirects off (a redirect from
/// an API must not carry the bearer token elsewhere).
///
/// # Errors
/// When the TLS backend cannot start.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("g2w/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| GotoError::Transport(e.to_string()))
}

/// A transport error in words a person can act on.
pub fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the answer"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    // Where it went, without path or query (which may carry keys): the host is what
    // a person checks first.
    match e.url() {
        Some(url) => format!("{kind} ({}): {detail}", url.origin().ascii_serialization()),
        None => format!("{kind}: {detail}"),
    }
}
