//! Signing in and out of the console; the console's front door.

use super::*;
use crate::sign_in::NotChecked;
use g2w_store::Setting;

/// `POST /admin/login`.
#[derive(serde::Deserialize)]
pub(crate) struct SignIn {
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "admin_login.html")]
struct LoginPage {
    layout: Layout,
    error: Option<String>,
}

/// `GET /admin`.
pub(crate) async fn index(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    match session(&shared, &headers).await {
        Some(_) => Redirect::to("/admin/tokens").into_response(),
        None => Redirect::to("/admin/login").into_response(),
    }
}

/// `GET /admin/login`.
pub(crate) async fn login_page() -> Response {
    render(&LoginPage {
        layout: Layout {
            signed_in: false,
            active: "",
            csrf: String::new(),
            notice: None,
        },
        error: None,
    })
}

/// The sign-in page again, with why it refused.
fn login_refused(status: StatusCode, why: &str) -> Response {
    let mut page = render(&LoginPage {
        layout: Layout {
            signed_in: false,
            active: "",
            csrf: String::new(),
            notice: None,
        },
        error: Some(why.to_owned()),
    });
    *page.status_mut() = status;
    page
}

/// `POST /admin/login`.
pub(crate) async fn login(
    State(shared): State<Shared>,
    State(console): State<Arc<Console>>,
    client: Client,
    axum::Form(SignIn {
        password: candidate,
    }): axum::Form<SignIn>,
) -> Response {
    let Some(password) = &shared.config.admin_password else {
        return (StatusCode::NOT_FOUND, "The admin console is off.").into_response();
    };
    // The stored password as it is now (`g2w admin reset-password` on any machine sharing
    // the store takes effect at the next sign-in), read only for an admitted attempt.
    let current = async {
        let upgraded = || {
            lock(&console.upgraded)
                .clone()
                .unwrap_or_else(|| password.clone())
        };
        match password {
            AdminPassword::Hashed(_) => match shared.store.setting(Setting::AdminPassword).await {
                Ok(Some(hash)) => AdminPassword::Hashed(hash),
                _ => upgraded(),
            },
            AdminPassword::Plain(_) => upgraded(),
        }
    };
    let verdict = match console.signins.attempt(client.ip, current, candidate).await {
        Ok(verdict) => verdict,
        Err(NotChecked::Address) => {
            return login_refused(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts; wait a few minutes.",
            );
        }
        Err(NotChecked::Everyone) => {
            return login_refused(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed sign-ins to this console lately; wait a minute.",
            );
        }
        Err(NotChecked::Busy) => {
            return login_refused(
                StatusCode::TOO_MANY_REQUESTS,
                "Signing in is busy; try again in a moment.",
            );
        }
    };
    match verdict {
        Verdict::Refused => {
            return login_refused(StatusCode::UNAUTHORIZED, "Wrong password.");
        }
        Verdict::Accepted => {}
        Verdict::AcceptedUpgrade(hash) => {
            let stored = hash.clone();
            match shared
                .store
                .set_setting(Setting::AdminPassword, &stored)
                .await
            {
                Ok(()) => {
                    tracing::info!("admin password hash upgraded to argon2id");
                    *lock(&console.upgraded) = Some(AdminPassword::Hashed(hash));
                }
                Err(e) => tracing::warn!("cannot upgrade the admin password hash: {e}"),
            }
        }
    }
    let id = token();
    let (digest, session) = (
        session_digest(&id),
        g2w_store::AdminSession {
            csrf: token(),
            expires_at: (shared.clock)() + SESSION_TTL,
        },
    );
    if let Err(e) = shared.store.put_session(&digest, &session).await {
        tracing::error!("cannot store an admin session: {e}");
        return login_refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is unavailable: the store cannot be written.",
        );
    }
    let secure = if client.https { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    );
    let mut response = Redirect::to("/admin/tokens").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /admin/logout`.
pub(crate) async fn logout(
    State(shared): State<Shared>,
    headers: HeaderMap,
    _form: AdminForm,
) -> Response {
    if let Some(id) = session_id(&headers) {
        let (digest, now) = (session_digest(&id), (shared.clock)());
        if let Err(e) = shared.store.end_session(&digest, now).await {
            tracing::warn!("cannot end an admin session: {e}");
        }
    }
    let mut response = Redirect::to("/admin/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("g2w_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}
