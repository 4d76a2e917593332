//! What answers say about themselves: CORS for the API, security headers by kind of
//! page, caching, compression. All of it from `tower-http`, configured here in one place.
//!
//! - Admin pages may not be framed at all and run no script; nothing of them is cached.
//! - Hosted pages (the form, confirmation and error pages) run exactly one script, the
//!   form's own (allowed by its hash), and may be framed by the sites that embed them:
//!   the configured origins, or any when none is configured (`/embed.js` frames them).
//! - Every answer: `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`
//!   (a join URL is personal; it must not leak to the next site through a referrer).

use std::time::Duration;

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method, Response};
use base64::Engine as _;
use sha2::Digest as _;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::GatewayConfig;

/// CORS for `/api/*`: the configured origins (or any, with `*`), `GET` and `POST`, the
/// two headers a landing page sends. Anything else gets no CORS headers, so the
/// browser refuses it.
pub(crate) fn cors(config: &GatewayConfig) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([CONTENT_TYPE, HeaderName::from_static("idempotency-key")])
        .max_age(Duration::from_secs(600));
    if config.allowed_origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        layer.allow_origin(AllowOrigin::list(
            config
                .allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        ))
    }
}

fn origin_of(url: &str) -> Option<String> {
    let url = g2w_goto::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

/// The hosted pages' policy: their one script by hash, inline styles (the accent
/// colour), images from anywhere secure (the logo), requests and form posts to this
/// gateway (and the thank-you page it redirects to), framing by the embedding sites.
pub(crate) fn hosted_page_policy(config: &GatewayConfig) -> HeaderValue {
    let script = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(crate::pages::FORM_JS.as_bytes()));
    let thanks = config
        .thank_you_url
        .as_deref()
        .and_then(origin_of)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let embedders: Vec<String> = config
        .allowed_origins
        .iter()
        .filter(|o| o.as_str() != "*")
        .filter_map(|o| origin_of(o))
        .collect();
    let ancestors = if embedders.is_empty() || config.allowed_origins.iter().any(|o| o == "*") {
        "*".to_owned()
    } else {
        format!("'self' {}", embedders.join(" "))
    };
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{script}'; style-src 'unsafe-inline'; \
         img-src 'self' https: data:; connect-src 'self'; form-action 'self'{thanks}; \
         base-uri 'none'; frame-ancestors {ancestors}"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

/// The admin console's policy: no script, no framing, nothing from elsewhere.
const ADMIN_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Layers for the admin console's routes.
pub(crate) fn admin_layers<S>(router: axum::Router<S>) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(ADMIN_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

fn is_html<B>(response: &Response<B>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"))
}

/// Layers for every route: a request id (from `X-Request-Id`, or made here) on the
/// request's log lines and its answer; the hosted-page policy on any HTML page that has
/// none yet (the form re-rendered by a refused post comes from the API); no sniffing,
/// no referrer; gzip for clients that ask.
pub(crate) fn common_layers<S>(router: axum::Router<S>, config: &GatewayConfig) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    use tower_http::request_id::{
        MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
    };
    let policy = hosted_page_policy(config);
    let request_id = HeaderName::from_static("x-request-id");
    let trace = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
            let id = request
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                id = %id,
                method = %request.method(),
                path = %request.uri().path(),
            )
        })
        // One line a request, at info (`g2w -v serve` shows them). A 503 is the gateway
        // saying "not now" (readiness, a store that does not answer, which is logged
        // where it happens): not an error line of its own. A 500 is one.
        .on_request(())
        .on_failure(())
        .on_response(
            |response: &Response<axum::body::Body>,
             latency: std::time::Duration,
             _span: &tracing::Span| {
                let status = response.status().as_u16();
                let ms = latency.as_secs_f64() * 1000.0;
                if response.status().is_server_error()
                    && response.status() != axum::http::StatusCode::SERVICE_UNAVAILABLE
                {
                    tracing::error!(status, ms, "answered");
                } else {
                    tracing::info!(status, ms, "answered");
                }
            },
        );
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            CONTENT_SECURITY_POLICY,
            move |response: &Response<axum::body::Body>| is_html(response).then(|| policy.clone()),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(CompressionLayer::new())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// `Cache-Control` for a page: `value` when it succeeded, `no-store` when it did not (an
/// error page must not be kept), unless the handler chose.
pub(crate) fn cached<S>(router: axum::Router<S>, value: &'static str) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(SetResponseHeaderLayer::if_not_present(
        CACHE_CONTROL,
        move |response: &Response<axum::body::Body>| {
            Some(HeaderValue::from_static(
                if response.status().is_success() {
                    value
                } else {
                    "no-store"
                },
            ))
        },
    ))
}
