//! GoTo's webhook receiver: `/hooks/goto/{secret}`, answering only at the secret path.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Json;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::metrics::WebhookOutcome;
use crate::state::{Delivery, Shared};
use crate::webhooks::HookPath;
use crate::webhooks::{parse_event, unavailable};

/// `GET /hooks/goto/{secret}`: GoTo's check of the callback, 200 at the right path.
pub(crate) async fn check(
    State(shared): State<Shared>,
    State(receiver): State<Arc<HookPath>>,
    Path(secret): Path<String>,
) -> Result<&'static str, ApiError> {
    receiver.admit(&shared.store, &secret).await?;
    Ok("g2w receives GoTo webhooks here")
}

/// `POST /hooks/goto/{secret}`: keeps the event (raw body and headers) once; GoTo's
/// repeats are answered 200 and not kept again. 503 when it cannot be stored, so GoTo
/// tries again later.
pub(crate) async fn receive(
    State(shared): State<Shared>,
    State(delivery): State<Delivery>,
    State(receiver): State<Arc<HookPath>>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    receiver.admit(&shared.store, &secret).await?;
    let forward = shared.config.forward_url.is_some();
    let new = parse_event(&body, &headers, shared.now(), forward)
        .map_err(|reason| ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", reason))?;
    match shared.store.record_event(&new).await {
        Ok(fresh) => {
            shared.metrics.webhook(if fresh {
                WebhookOutcome::Received
            } else {
                WebhookOutcome::Duplicate
            });
            if fresh {
                delivery.wake_forwarder();
            }
            Ok(Json(json!({"received": true, "duplicate": !fresh})))
        }
        Err(e) => {
            tracing::error!("cannot keep a GoTo event: {e}");
            shared.metrics.webhook(WebhookOutcome::StoreFailed);
            Err(unavailable())
        }
    }
}
