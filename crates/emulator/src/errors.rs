//! GoTo's two error body shapes. Auth failures use `{"int_err_code","msg"}` (the API
//! gateway's shape); application errors use `{"errorCode","description","incident"}`.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

static INCIDENT: AtomicU64 = AtomicU64::new(4_100_000_000);

/// 403 for a missing, unknown or expired token, exactly as GoTo sends it.
pub(crate) fn invalid_token() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({"int_err_code": "InvalidToken", "msg": "Invalid token passed"})),
    )
        .into_response()
}

/// 429 from the rate limiter.
pub(crate) fn too_many_requests() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"int_err_code": "TooManyRequests", "msg": "Too many requests"})),
    )
        .into_response()
}

/// An application error in the `errorCode`/`description`/`incident` shape.
#[derive(Debug)]
pub(crate) struct AppError {
    status: StatusCode,
    body: Map<String, Value>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &str, description: impl Into<String>) -> Self {
        let mut body = Map::new();
        body.insert("errorCode".into(), json!(code));
        body.insert("description".into(), json!(description.into()));
        body.insert(
            "incident".into(),
            json!(INCIDENT.fetch_add(1, Ordering::Relaxed)),
        );
        Self { status, body }
    }

    /// Adds a field to the body (such as the existing `registrantKey` of a duplicate).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.body.insert(key.into(), value);
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{what} not found"),
        )
    }

    pub fn validation(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "RequestValidationError",
            description,
        )
    }

    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", description)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status, Json(Value::Object(self.body))).into_response()
    }
}

/// What API handlers return.
pub(crate) type ApiResult = Result<Response, AppError>;
