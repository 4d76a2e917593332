//! The one shape of every error the gateway answers over its API:
//! `{"error": code, "message": …}` with its status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error: a status, a stable machine-readable `code`, and a sentence for people.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// More for programs to act on (which profile, which scope), beside the code.
    details: serde_json::Map<String, serde_json::Value>,
    /// When the caller may try again (`Retry-After`).
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: serde_json::Map::new(),
            retry_after: None,
        }
    }

    /// With `name: value` in the answer, beside `error` and `message`.
    pub(crate) fn with(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(name.to_owned(), value.into());
        self
    }

    /// With `Retry-After` (whole seconds, at least one).
    pub(crate) fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    pub(crate) fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address; try again shortly",
        )
    }

    /// The error for a status that came without one of ours (the framework's own
    /// refusals): a code named after the status, and `message` or the status's reason.
    pub(crate) fn for_status(status: StatusCode, message: &str) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_server_error() => "internal",
            _ => "error",
        };
        let message = message.trim();
        let message = if message.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            message.to_owned()
        };
        Self::new(status, code, message)
    }
}

impl ApiError {
    /// Its status and sentence, for a page instead of JSON.
    pub(crate) fn parts(&self) -> (StatusCode, &str) {
        (self.status, &self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.details;
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds.max(1)),
            );
        }
        response
    }
}
