//! The request gate: a well-formed head, a body that is small and arrives in time, and
//! refusals in the API's JSON shape.

use std::time::Duration;

use axum::body::HttpBody as _;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use axum::http::{HeaderValue, StatusCode, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::error::ApiError;

/// What a request may be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestLimits {
    /// The largest body, in bytes.
    pub body_limit: usize,
    /// The longest a body may take to arrive once its head has.
    pub body_timeout: Duration,
}

/// The longest framework message kept when it is turned into a JSON error.
const MESSAGE_LIMIT: usize = 4096;

/// A refusal after which the connection is closed: its unread body would otherwise have
/// to be read (or waited for) before the next request.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Checks the head, reads the body within its limits, and gives framework refusals the
/// API's shape.
pub(crate) async fn gate(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    if request.version() == Version::HTTP_11 && request.headers().get_all(HOST).iter().count() != 1
    {
        return closing(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "an HTTP/1.1 request needs exactly one Host header",
        ));
    }
    let request = match read_body(request, limits).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    in_api_shape(next.run(request).await).await
}

/// The request with its body read whole, or the refusal: 413 at once for a body declared
/// too large (its bytes are never read, so a client expecting `100 Continue` gets none),
/// 413 for one that grows too large, 408 for one that does not arrive in time.
async fn read_body(request: Request, limits: RequestLimits) -> Result<Request, Response> {
    let too_large = || {
        closing(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request body is larger than {} KiB",
                limits.body_limit / 1024
            ),
        ))
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.body_limit as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    if body.size_hint().exact() == Some(0) {
        return Ok(Request::from_parts(parts, body));
    }
    let read = tokio::time::timeout(
        limits.body_timeout,
        Limited::new(body, limits.body_limit).collect(),
    )
    .await;
    match read {
        Ok(Ok(collected)) => Ok(Request::from_parts(parts, Body::from(collected.to_bytes()))),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => Err(closing(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the request body could not be read: {e}"),
        ))),
        Err(_) => Err(closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s",
                limits.body_timeout.as_secs_f32()
            ),
        ))),
    }
}

/// An error answer that is neither JSON nor a page (the framework's plain-text
/// refusals, or an empty 404/405) becomes the API's JSON error; headers such as `Allow`
/// are kept.
async fn in_api_shape(response: Response) -> Response {
    let status = response.status();
    let kind = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(status.is_client_error() || status.is_server_error())
        || kind.starts_with("application/json")
        || kind.starts_with("text/html")
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, MESSAGE_LIMIT).await.unwrap_or_default();
    let shaped = ApiError::for_status(status, &String::from_utf8_lossy(&text)).into_response();
    let (shaped_parts, shaped_body) = shaped.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.extend(shaped_parts.headers);
    Response::from_parts(parts, shaped_body)
}
