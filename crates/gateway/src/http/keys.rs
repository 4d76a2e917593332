//! What programs holding a g2w API key may do: get a fresh access token of an organizer
//! (`GET /api/v1/organizers/{organizer}/token`), and call GoTo's API through g2w
//! (`/goto/{organizer}/…`). Each use is audited; a token never is.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use g2w_goto::{ExposeSecret as _, GotoError, SecretString, Timestamp};
use g2w_store::{AuditEntry, KeyRecord};
use sha2::Digest as _;

use crate::error::ApiError;
use crate::http::client::Client;
use crate::keys::check::{KeyChecks, allows};
use crate::keys::{MAX_MIN_TTL, Scope};
use crate::organizers::{Organizer, Organizers};
use crate::state::Shared;

/// The token's life a hand-out promises when the caller names none.
const DEFAULT_MIN_TTL: u64 = 300;
/// The longest a pass-through call waits for a turn in its account's budget; past it the
/// caller is told to slow down. Short, so that scripts sending faster than the budget
/// allows cannot book turns far ahead of the gateway's own deliveries.
const SCRIPTS_WAIT: Duration = Duration::from_millis(500);
/// The only paths forwarded: GoTo Webinar's API.
const FORWARDED: &str = "G2W/rest/v2/";

/// What the keyed routes use of the gateway's state.
#[derive(Clone)]
pub(crate) struct KeyDoor {
    shared: Shared,
    keys: Arc<KeyChecks>,
    organizers: Organizers,
}

impl axum::extract::FromRef<crate::state::AppState> for KeyDoor {
    fn from_ref(state: &crate::state::AppState) -> Self {
        Self {
            shared: state.shared.clone(),
            keys: state.keys.clone(),
            organizers: state.organizers.clone(),
        }
    }
}

/// What a key may act on, resolved: the key and the organizer.
struct Acting {
    key: KeyRecord,
    organizer: Arc<Organizer>,
}

/// The key's check for `scope`, then the organizer `{organizer}` names and the key's
/// right to it.
async fn acting(
    door: &KeyDoor,
    client: Client,
    headers: &HeaderMap,
    organizer: &str,
    scope: Scope,
) -> Result<Acting, ApiError> {
    let key = door
        .keys
        .check(
            &door.shared.store,
            client.ip,
            headers,
            scope,
            door.shared.now(),
        )
        .await
        .map_err(|d| d.api_error())?;
    let Some(found) = door.organizers.resolve(organizer).await else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_organizer",
            format!(
                "this gateway serves no organizer {organizer:?}: use a profile it serves (g2w serve --profiles) or its organizer key"
            ),
        ));
    };
    allows(&key, &found.profile).map_err(|d| d.api_error())?;
    Ok(Acting {
        key,
        organizer: found,
    })
}

/// Records one use; a failure to record is logged, not the caller's problem.
async fn audit(shared: &Shared, acting: &Acting, client: Client, entry: Used) {
    let (token_fingerprint, token_expires_at) = entry.token.unzip();
    let row = AuditEntry {
        at: shared.now(),
        key_name: acting.key.name.clone(),
        key_prefix: acting.key.prefix.clone(),
        organizer: acting.organizer.profile.clone(),
        caller: client.ip.to_string(),
        action: entry.action.to_owned(),
        method: entry.method,
        path: entry.path,
        status: entry.status.as_u16(),
        token_fingerprint,
        token_expires_at: token_expires_at.flatten(),
    };
    if let Err(e) = shared.store.audit_key_use(&row).await {
        tracing::warn!(error = %e, key = %row.key_name, "could not audit a key's use");
    }
}

/// One use, as audited.
struct Used {
    action: &'static str,
    method: Option<String>,
    path: Option<String>,
    status: StatusCode,
    token: Option<(String, Option<Timestamp>)>,
}

/// A token's fingerprint: enough to tell two apart in an audit, nothing to use.
fn fingerprint(token: &SecretString) -> String {
    let digest = sha2::Sha256::digest(token.expose_secret().as_bytes());
    format!("sha256:{}", crate::signing::hex(&digest[..8]))
}

/// The answer when an organizer's login cannot give a token (or make a call).
fn login_failed(profile: &str, error: &GotoError) -> ApiError {
    match error {
        GotoError::ReauthorizationRequired { reason, hint } => ApiError::new(
            StatusCode::CONFLICT,
            "needs_reauthorization",
            format!(
                "the GoTo login of organizer {profile:?} is gone ({reason}): run `{hint}`, or connect it in the admin console"
            ),
        )
        .with("profile", profile)
        .with("hint", hint.as_str()),
        GotoError::RateLimited { retry_after } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "organizer {profile:?}'s GoTo budget is taken for now (g2w's deliveries and other callers share it): slow down"
            ),
        )
        .retry_after(retry_after.unwrap_or(Duration::from_secs(1))),
        other => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "goto_unavailable",
            format!("GoTo could not be reached for organizer {profile:?}: {other}"),
        )
        .retry_after(Duration::from_secs(5)),
    }
}

/// `min_ttl` from the query: seconds, 0 to [`MAX_MIN_TTL`].
fn min_ttl(query: Option<&str>) -> Result<u64, ApiError> {
    let given = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(name, _)| name == "min_ttl")
        .map(|(_, value)| value.into_owned());
    match given {
        None => Ok(DEFAULT_MIN_TTL),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(ttl) if ttl <= MAX_MIN_TTL => Ok(ttl),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_min_ttl",
                format!(
                    "min_ttl is whole seconds from 0 to {MAX_MIN_TTL} (GoTo's tokens live 3,600)"
                ),
            )),
        },
    }
}

/// `GET /api/v1/organizers/{organizer}/token?min_ttl=SECONDS`: an access token of the
/// organizer with at least `min_ttl` left (refreshed first when the stored one has
/// less). Only over HTTPS, or from this machine.
pub(crate) async fn token(
    State(door): State<KeyDoor>,
    client: Client,
    Path(organizer): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !client.https && !client.ip.is_loopback() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "https_required",
            "tokens are handed out over HTTPS only (or to this machine): put the gateway behind a TLS proxy listed in trusted_proxies",
        )
        .into_response();
    }
    let min_ttl = match min_ttl(query.as_deref()) {
        Ok(ttl) => ttl,
        Err(e) => return e.into_response(),
    };
    let shared = &door.shared;
    let acting = match acting(&door, client, &headers, &organizer, Scope::Token).await {
        Ok(acting) => acting,
        Err(e) => return e.into_response(),
    };
    let tokens = acting.organizer.client.tokens();
    let lasting = async {
        let (token, mut login) = tokens.lasting(Duration::from_secs(min_ttl)).await?;
        // A login stored before g2w kept accounts learns its account now, once.
        if login.account_key.is_none() {
            login.account_key = Some(acting.organizer.client.account_key().await?);
        }
        Ok::<_, GotoError>((token, login))
    };
    let (response, used) = match lasting.await {
        Ok((token, record)) => {
            let expires_at = record.access_expires_at;
            let body = crate::keys::handed_out(&token, &record, shared.now());
            let mut response = (StatusCode::OK, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            let used = Used {
                action: "token",
                method: None,
                path: None,
                status: StatusCode::OK,
                token: Some((fingerprint(&token), expires_at)),
            };
            (response, used)
        }
        Err(e) => {
            let error = login_failed(&acting.organizer.profile, &e);
            let used = Used {
                action: "token",
                method: None,
                path: None,
                status: error.parts().0,
                token: None,
            };
            (error.into_response(), used)
        }
    };
    audit(shared, &acting, client, used).await;
    no_store(response)
}

/// Nothing a key's caller gets back may be kept by a cache on the way.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why `path` is not forwarded for `organizer`, if it is not: only GoTo Webinar's API,
/// written plainly, and only the organizer's own (or its account's) part of it.
fn refuse_path(path: &str, login: &g2w_goto::Access) -> Option<ApiError> {
    let not_forwarded = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_forwarded",
            format!("only GoTo Webinar's API is forwarded: /goto/{{organizer}}/{FORWARDED}…"),
        )
    };
    let plain = path.starts_with(FORWARDED)
        && !path.contains("//")
        && !path.contains('\\')
        && !path.split('/').any(|s| s == "." || s == "..")
        && !path.to_ascii_lowercase().contains("%2e")
        && !path.to_ascii_lowercase().contains("%2f");
    if !plain {
        return Some(not_forwarded());
    }
    let mut parts = path[FORWARDED.len()..].split('/');
    let owner = match (parts.next(), parts.next()) {
        (Some("organizers"), Some(key)) => Some((key, login.organizer.map(|k| k.to_string()))),
        (Some("accounts"), Some(key)) => Some((key, login.account.map(|k| k.to_string()))),
        _ => None,
    };
    match owner {
        Some((asked, own)) if own.as_deref() != Some(asked) => Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "organizer_not_allowed",
            format!("{asked} is not this organizer's (or its account's) key"),
        )),
        _ => None,
    }
}

/// GoTo's answer's headers a caller may need; nothing else of GoTo's is passed on.
const PASSED_ON: [header::HeaderName; 2] = [header::CONTENT_TYPE, header::RETRY_AFTER];

/// `/goto/{organizer}/{path}`: the call forwarded to GoTo's API with the organizer's
/// token, on the account's shared budget, answered as GoTo answered it.
pub(crate) async fn forward(
    State(door): State<KeyDoor>,
    client: Client,
    Path((organizer, path)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shared = &door.shared;
    let acting = match acting(&door, client, &headers, &organizer, Scope::Proxy).await {
        Ok(acting) => acting,
        Err(e) => return no_store(e.into_response()),
    };
    let goto = &acting.organizer.client;
    // The login as last read (at most a second ago): whose paths these are.
    let login = match goto.tokens().access().await {
        // A login stored before g2w kept accounts learns its account now, once.
        Ok(mut login) if login.account.is_none() => match goto.account_key().await {
            Ok(account) => {
                login.account = Some(account);
                Ok(login)
            }
            Err(e) => Err(e),
        },
        other => other,
    };
    let answer = match login {
        Ok(login) => match refuse_path(&path, &login) {
            Some(refusal) => Err(refusal),
            None => {
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json");
                let sent = (!body.is_empty()).then(|| (content_type, &body[..]));
                let target = match &query {
                    Some(q) => format!("/{path}?{q}"),
                    None => format!("/{path}"),
                };
                goto.forward(method.clone(), &target, sent, SCRIPTS_WAIT)
                    .await
                    .map_err(|e| login_failed(&acting.organizer.profile, &e))
            }
        },
        Err(e) => Err(login_failed(&acting.organizer.profile, &e)),
    };
    let response = match answer {
        Ok(raw) => {
            let mut response = (raw.status, raw.body).into_response();
            for name in PASSED_ON {
                if let Some(value) = raw.headers.get(&name) {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(refusal) => refusal.into_response(),
    };
    let used = Used {
        action: "proxy",
        method: Some(method.to_string()),
        path: Some(format!("/{path}")),
        status: response.status(),
        token: None,
    };
    audit(shared, &acting, client, used).await;
    no_store(response)
}
