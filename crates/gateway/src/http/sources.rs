//! `POST /in/{source}` (and `/in/{source}/{secret}` for tools that sign nothing): form
//! builders' posts, handed to `sources` as raw bytes and answered as the tools expect.

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::http::client::Client;
use crate::intake::Intake;
use crate::sources::{self, Post, Received, Unsigned};

/// `POST /in/{source}`.
pub(crate) async fn receive(
    state: Intake,
    client: Client,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&state, client, &name, None, &headers, &body).await
}

/// `POST /in/{source}/{secret}`.
pub(crate) async fn receive_with_secret(
    state: Intake,
    client: Client,
    Path((name, secret)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&state, client, &name, Some(&secret), &headers, &body).await
}

async fn answer(
    state: &Intake,
    client: Client,
    name: &str,
    path_secret: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let post = Post {
        name,
        path_secret,
        peer: client.ip,
        headers,
        body,
    };
    match sources::receive(state, post).await {
        Received::Unknown => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such source").into_response()
        }
        Received::Refused(Unsigned::Address) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            Unsigned::Address.reason(),
        )
        .into_response(),
        Received::Refused(unsigned) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", unsigned.reason())
                .into_response()
        }
        Received::Ignored(event) => (
            StatusCode::OK,
            Json(json!({"status": "ignored", "event": event})),
        )
            .into_response(),
        Received::Registered(reg) => (
            StatusCode::OK,
            Json(json!({"status": "accepted", "registrationId": reg.id})),
        )
            .into_response(),
        Received::Kept { reason } => (
            StatusCode::ACCEPTED,
            Json(json!({"status": "needs_mapping", "reason": reason})),
        )
            .into_response(),
        Received::Unavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the post could not be stored; please send it again",
        )
        .into_response(),
    }
}
