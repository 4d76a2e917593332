//! The middleware every GoTo request passes: it applies the injected faults and counts
//! the request under its route template for the stats, so injected answers show up
//! there too.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, OriginalUri, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::faults::{DROPPED, default_body};
use crate::net::ConnectionCutter;
use crate::shared::Shared;

/// Applies faults and counts the request under its route template.
pub(crate) async fn middleware(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    // Inside a nested router the URI has lost its prefix; faults match the full path.
    let path = match request.extensions().get::<OriginalUri>() {
        Some(OriginalUri(uri)) => uri.path().to_owned(),
        None => request.uri().path().to_owned(),
    };
    let route = match request.extensions().get::<MatchedPath>() {
        Some(matched) => format!("{method} {}", matched.as_str()),
        None => format!("{method} (unmatched)"),
    };
    // The control API is neither faulted nor counted: it is not GoTo traffic.
    if path.starts_with("/_emulator") {
        return next.run(request).await;
    }
    let fault = shared
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(&method, &path);

    let response = match fault {
        None => next.run(request).await,
        Some(fault) => {
            if let Some(ms) = fault.delay_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if fault.drop {
                if let Some(ConnectInfo(cutter)) =
                    request.extensions().get::<ConnectInfo<ConnectionCutter>>()
                {
                    cutter.cut();
                }
                shared.stats.request(&route, DROPPED);
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return response;
            }
            match fault.status.and_then(|s| StatusCode::from_u16(s).ok()) {
                Some(status) => {
                    let body = fault.body.clone().unwrap_or_else(|| default_body(status));
                    let mut response = (status, Json(body)).into_response();
                    if let Some(secs) = fault.retry_after {
                        response
                            .headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                    }
                    response
                }
                None => next.run(request).await,
            }
        }
    };
    shared.stats.request(&route, response.status().as_u16());
    response
}
