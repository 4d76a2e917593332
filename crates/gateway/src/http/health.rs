//! Health, readiness and metrics: what load balancers and monitoring read.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::delivery::breaker::BreakerState;
use crate::intake::STORE_DEADLINE_FLOOR;
use crate::organizers::Organizers;
use crate::state::{Delivery, Shared};

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// How long a failed intake write keeps `/readyz` at 503 when no write succeeds since.
const WRITE_FAILURE_MEMORY: std::time::Duration = std::time::Duration::from_secs(30);

/// `GET /readyz`: 200 when registrations can be stored and are being delivered; 503
/// with the reasons when the store cannot be written, the GoTo login is unusable
/// (delivery paused), or GoTo is failing (the breaker is open): for alerting.
///
/// `GET /readyz?intake`: for load balancers. 503 only when this gateway cannot take
/// registrations (its store cannot be written); GoTo's trouble is every gateway's and
/// intake goes on through it, so taking gateways out then would lose registrations.
/// The body is the same.
pub(crate) async fn readyz(
    State(shared): State<Shared>,
    State(delivery): State<Delivery>,
    State(organizers): State<Organizers>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let intake_only = query.is_some_and(|q| q.split('&').any(|p| p == "intake"));
    let now = shared.now();
    // A health check must answer whatever the database does: it waits as intake does.
    let deadline = shared.config.lookup_deadline.max(STORE_DEADLINE_FLOOR);
    let late = || format!("no answer within {} ms", deadline.as_millis());
    let probe = tokio::time::timeout(deadline, shared.store.probe_write(now)).await;
    let store = match (probe, delivery.batcher.recent_failure(WRITE_FAILURE_MEMORY)) {
        (Err(_), _) => Err(late()),
        (Ok(Err(e)), _) => Err(g2w_goto::chain(&e)),
        (Ok(Ok(())), Some(e)) => Err(e),
        (Ok(Ok(())), None) => Ok(()),
    };
    let mut reasons = Vec::new();
    if let Err(e) = &store {
        reasons.push(format!("the store cannot be written: {e}"));
    }
    // Each organizer's login and delivery on its own: one revoked login is named, and
    // holds only that organizer's registrations.
    // The logins are read at once: a stalled store costs one deadline, not one each.
    let tokens = organizers
        .each(|o| async move {
            match tokio::time::timeout(deadline, o.client.tokens().record()).await {
                Err(_) => Err(format!("no answer within {} ms", deadline.as_millis())),
                Ok(Ok(r)) => r.unusable().map_or(Ok(()), Err),
                Ok(Err(e)) => Err(g2w_goto::chain(&e)),
            }
        })
        .await;
    let mut each = Vec::new();
    for (o, token) in tokens {
        let paused = o.worker.paused();
        let breaker = o.worker.breaker();
        let whose = if organizers.several() {
            format!("organizer {}: ", o.profile)
        } else {
            String::new()
        };
        if let Err(e) = &token {
            reasons.push(format!("{whose}the GoTo login is not usable: {e}"));
        } else if let Some(p) = &paused {
            reasons.push(format!("{whose}delivery is paused: {p}"));
        }
        if let BreakerState::Open { reason, .. } = &breaker {
            reasons.push(format!("{whose}GoTo is failing: {reason}"));
        }
        each.push(json!({
            "profile": o.profile,
            "token": token.err().unwrap_or_else(|| "ok".to_owned()),
            "deliveryPaused": paused,
            "goto": match breaker {
                BreakerState::Closed => json!({"breaker": "closed"}),
                BreakerState::Open { since, reason } => json!({
                    "breaker": "open",
                    "since": since.to_utc().to_rfc3339(),
                    "reason": reason,
                }),
            },
        }));
    }
    let takes_registrations = store.is_ok();
    // The first organizer's state also at the top, where one-organizer checks read it.
    let first = each.first().cloned().unwrap_or_default();
    let body = json!({
        "status": if reasons.is_empty() { "ready" } else { "not_ready" },
        "reason": reasons.first(),
        "reasons": reasons,
        "store": store.err().unwrap_or_else(|| "ok".to_owned()),
        "token": first["token"],
        "deliveryPaused": first["deliveryPaused"],
        "goto": first["goto"],
        "organizers": each,
    });
    let status = if reasons.is_empty() || (intake_only && takes_registrations) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text. The queue gauges come from the store's indexes:
/// a scrape costs the same however much history the queues hold.
pub(crate) async fn metrics(
    State(shared): State<Shared>,
    State(delivery): State<Delivery>,
    State(organizers): State<Organizers>,
) -> Response {
    let now = shared.now();
    let age = |g: &g2w_store::QueueGauges| {
        g.oldest_waiting
            .map_or(0.0, |at| now.since(at).as_secs_f64())
    };
    let registrations = shared.store.registration_gauges().await.unwrap_or_default();
    let mut queues = vec![(
        g2w_store::QueueName::Registrations,
        crate::metrics::QueueState {
            oldest_waiting_secs: age(&registrations),
            items: registrations,
            // The registrations queue is every organizer's: paused or failing when any
            // organizer's delivery is (`/readyz` says whose).
            paused: organizers.all().iter().any(|o| o.worker.paused().is_some()),
            breaker_open: organizers.all().iter().any(|o| o.worker.failing()),
        },
    )];
    if let Some(forwarder) = &delivery.forwarder {
        let forwards = shared.store.forward_gauges().await.unwrap_or_default();
        queues.push((
            g2w_store::QueueName::Forwards,
            crate::metrics::QueueState {
                oldest_waiting_secs: age(&forwards),
                items: forwards,
                paused: forwarder.paused().is_some(),
                breaker_open: forwarder.failing(),
            },
        ));
    }
    let gauges = crate::metrics::Gauges {
        queues,
        token_refreshes: organizers
            .all()
            .iter()
            .map(|o| o.client.tokens().refresh_count())
            .sum(),
        organizers: organizers
            .all()
            .iter()
            .map(|o| {
                (
                    o.profile.clone(),
                    o.worker.paused().is_some(),
                    o.worker.failing(),
                )
            })
            .collect(),
    };
    let text = shared.metrics.render(&gauges);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
