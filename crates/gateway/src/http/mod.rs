//! The HTTP surface: every route, and the handlers behind them. Handlers take only the
//! parts of the state they use (see `state`); nothing outside this module knows about
//! requests, and nothing here does durable work itself.

mod admin;
mod client;
mod health;
mod hooks;
mod keys;
mod pages;
mod register;
mod series;
mod sources;
mod status;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};

use crate::edge::{self, headers};
use crate::state::AppState;

/// Every route, with the edge's request gate and headers.
pub(crate) fn router(state: AppState, body_limit: usize) -> Router {
    let config = state.shared.config.clone();
    let api = Router::new()
        .route(
            "/api/v1/webinars/{webinar_key}/registrations",
            post(register::register),
        )
        .route("/api/v1/registrations/{id}", get(status::registration))
        .route("/api/v1/webinars", get(status::webinars))
        .layer(headers::cors(&config));
    // Programs holding an API key: not for browsers, so no CORS.
    let keyed = Router::new()
        .route("/api/v1/organizers/{organizer}/token", get(keys::token))
        .route("/goto/{organizer}/{*path}", any(keys::forward));
    let form = headers::cached(
        Router::new()
            .route("/r/{webinar_key}", get(pages::hosted_form))
            .route("/r/series/{recurrence_key}", get(series::form)),
        "public, max-age=60",
    )
    // The forms' own posts: not cached (their answers are the visitor's).
    .merge(
        Router::new()
            .route("/r/{webinar_key}", post(register::register_from_form))
            .route("/r/series/{recurrence_key}", post(series::register)),
    );
    // It carries a personal join URL.
    let confirmation = headers::cached(
        Router::new().route("/confirmation/{id}", get(pages::confirmation)),
        "private, no-store",
    );
    let assets = headers::cached(
        Router::new()
            .route("/embed.js", get(pages::embed_js))
            .route("/favicon.ico", get(pages::favicon)),
        "public, max-age=86400",
    );
    let admin = headers::admin_layers(
        Router::new()
            .route("/admin", get(admin::index))
            .route("/admin/login", get(admin::login_page).post(admin::login))
            .route("/admin/logout", post(admin::logout))
            .route("/admin/tokens", get(admin::tokens))
            .route("/admin/tokens/refresh", post(admin::refresh))
            .route("/admin/organizers/disconnect", post(admin::disconnect))
            .route(
                "/admin/connect",
                get(admin::connect).post(admin::save_client),
            )
            .route("/admin/connect/start", post(admin::start_connect))
            .route("/admin/oauth/callback", get(admin::oauth_callback))
            .route("/admin/webinars", get(admin::webinars))
            .route("/admin/webinars/{key}", get(admin::webinar))
            .route("/admin/activity", get(admin::activity))
            .route("/admin/outbox", get(admin::outbox))
            .route("/admin/outbox/{id}/{action}", post(admin::outbox_action))
            .route("/admin/attendance", get(admin::attendance))
            .route("/admin/attendance/reconcile", post(admin::reconcile))
            .route("/admin/sources", get(admin::sources))
            .route("/admin/sources/{name}/replay", post(admin::replay_source))
            .route("/admin/keys", get(admin::keys_page).post(admin::create_key))
            .route("/admin/keys/{prefix}/revoke", post(admin::revoke_key)),
    );
    let app = Router::new()
        .merge(api)
        .merge(keyed)
        .merge(form)
        .merge(confirmation)
        .merge(assets)
        .merge(admin)
        .route("/in/{source}", post(sources::receive))
        .route("/in/{source}/{secret}", post(sources::receive_with_secret))
        .route(
            "/hooks/goto/{secret}",
            get(hooks::check).post(hooks::receive),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics));
    let requests = edge::RequestLimits {
        body_limit,
        body_timeout: config.body_timeout,
    };
    let app = app
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(requests, edge::gate));
    headers::common_layers(app, &config).with_state(state)
}
