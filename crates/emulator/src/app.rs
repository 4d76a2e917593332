//! Wiring: the router of all routes.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::errors::AppError;
use crate::shared::Shared;
use crate::{api, control, html, oauth};

/// All routes: the auth server's, the API's and the control API's, on one base URL.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/authorize", get(oauth::authorize))
        .route("/oauth/authorize/decision", post(oauth::decide))
        .route("/oauth/token", post(oauth::token))
        .route("/admin/rest/v1/me", get(oauth::me))
        .nest("/G2W/rest/v2", api::router(shared.clone()))
        .nest("/_emulator", control::router())
        .route("/register/{webinar_key}", get(registration_page))
        .route("/join/{webinar_key}/{registrant_key}", get(join_page))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            crate::traffic::middleware,
        ))
        .with_state(shared)
}

async fn not_found() -> Response {
    AppError::new(StatusCode::NOT_FOUND, "NotFound", "No such resource").into_response()
}

async fn registration_page(
    axum::extract::Path(webinar_key): axum::extract::Path<String>,
) -> Response {
    html::info(
        "GoTo registration page",
        &format!(
            "On GoTo this page would show webinar {webinar_key}'s own registration form. \
             In the emulator, register through the API."
        ),
    )
}

async fn join_page(
    axum::extract::Path((webinar_key, registrant_key)): axum::extract::Path<(String, String)>,
) -> Response {
    html::info(
        "Joining the webinar",
        &format!(
            "On GoTo this link would open webinar {webinar_key} for registrant {registrant_key}."
        ),
    )
}
