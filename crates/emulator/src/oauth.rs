//! GoTo's OAuth server: the authorize endpoint with its consent page, the token
//! endpoint (authorization code, refresh token, personal access token) and the
//! `/admin/rest/v1/me` look-up of the organizer behind a token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::errors::invalid_token;
use crate::html;
use crate::shared::Shared;
use crate::state::{CodeGrant, PendingConsent, TokenGrant, new_token};

/// Whether `uri` is a loopback redirect (`http://127.0.0.1:PORT/…`, `localhost`, `[::1]`).
/// Userinfo and fragments are refused so `http://127.0.0.1@evil.example/` can't pass.
pub(crate) fn is_loopback_redirect(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    if uri.contains('#') {
        return false;
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('@') {
        return false;
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.ends_with('[') => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            host
        }
        _ => authority,
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn redirect_allowed(shared: &Shared, uri: &str) -> bool {
    is_loopback_redirect(uri) || shared.config.redirect_uris.iter().any(|u| u == uri)
}

/// `redirect_uri` with query parameters added.
fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let target = format!("{redirect_uri}{sep}{}", query.finish());
    // GoTo (like most OAuth servers) answers 302 Found.
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

fn redirect_error(redirect_uri: &str, error: &str, state: Option<&str>) -> Response {
    let mut params = vec![("error", error)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    redirect_with(redirect_uri, &params)
}

/// `GET /oauth/authorize`.
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(client_id) = q.get("client_id") else {
        return html::error(StatusCode::BAD_REQUEST, "The request has no client_id.");
    };
    if !shared.state().clients.contains_key(client_id) {
        return html::error(
            StatusCode::BAD_REQUEST,
            "Unknown client_id: no such OAuth client.",
        );
    }
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return html::error(StatusCode::BAD_REQUEST, "The request has no redirect_uri.");
    };
    if !redirect_allowed(&shared, redirect_uri) {
        return html::error(
            StatusCode::BAD_REQUEST,
            "This redirect_uri is not registered for the client.",
        );
    }
    let state = q.get("state").map(String::as_str);
    if q.get("response_type").map(String::as_str) != Some("code") {
        return redirect_error(redirect_uri, "unsupported_response_type", state);
    }
    let code_challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (None, None) => None,
        (Some(challenge), Some(method)) if method == "S256" => {
            let well_formed = (43..=128).contains(&challenge.len())
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return redirect_error(redirect_uri, "invalid_request", state);
            }
            Some(challenge.clone())
        }
        // Only S256 is accepted; `plain` gives no protection.
        _ => return redirect_error(redirect_uri, "invalid_request", state),
    };
    let pending = PendingConsent {
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        state: state.map(str::to_owned),
        code_challenge,
    };
    // Who signs in: the organizer `login_hint` names (by email), else the default one.
    let hinted = q.get("login_hint").and_then(|hint| {
        shared
            .state()
            .organizers
            .values()
            .find(|o| o.email.eq_ignore_ascii_case(hint))
            .map(|o| o.key)
    });
    if shared.config.auto_approve {
        let organizer_key = hinted.unwrap_or_else(|| shared.default_organizer());
        return approve(&shared, pending, organizer_key);
    }
    let id = new_token();
    let signed_in = hinted.unwrap_or_else(|| shared.default_organizer());
    let organizers: Vec<(u64, String)> = {
        let mut st = shared.state();
        st.consents.insert(id.clone(), pending);
        // The one signed in first, so a plain "Allow" keeps meaning them.
        let mut all: Vec<_> = st.organizers.values().collect();
        all.sort_by_key(|o| o.key != signed_in);
        all.iter()
            .map(|o| {
                (
                    o.key,
                    format!("{} {} <{}>", o.first_name, o.last_name, o.email),
                )
            })
            .collect()
    };
    html::consent(&id, client_id, &organizers)
}

fn approve(shared: &Shared, pending: PendingConsent, organizer_key: u64) -> Response {
    let code = new_token();
    let expires_at = shared.clock.now() + shared.config.lifetimes.authorization_code;
    {
        let mut st = shared.state();
        st.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: pending.client_id,
                redirect_uri: pending.redirect_uri.clone(),
                code_challenge: pending.code_challenge,
                organizer_key,
                expires_at,
            },
        );
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = &pending.state {
        params.push(("state", state));
    }
    redirect_with(&pending.redirect_uri, &params)
}

/// `POST /oauth/authorize/decision`: the consent page's Allow or Deny.
pub(crate) async fn decide(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let pending = form
        .get("request_id")
        .and_then(|id| shared.state().consents.remove(id));
    let Some(pending) = pending else {
        return html::error(
            StatusCode::BAD_REQUEST,
            "This authorization request is unknown or was already answered.",
        );
    };
    match form.get("decision").map(String::as_str) {
        Some("allow") => {
            let chosen = form
                .get("organizer")
                .and_then(|k| k.parse::<u64>().ok())
                .filter(|k| shared.state().organizers.contains_key(k));
            let organizer_key = chosen.unwrap_or_else(|| shared.default_organizer());
            approve(&shared, pending, organizer_key)
        }
        _ => redirect_error(
            &pending.redirect_uri,
            "access_denied",
            pending.state.as_deref(),
        ),
    }
}

fn oauth_error(shared: &Shared, status: StatusCode, error: &str, description: &str) -> Response {
    shared.stats.token_error(error);
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    no_cache(&mut response);
    response
}

/// RFC 6749 §5.1: token answers, errors included, must not be cached.
fn no_cache(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
}

/// RFC 6749 §5.2: a client that authenticated with HTTP Basic and failed is told
/// which scheme to use.
fn client_refused(shared: &Shared, used_basic: bool, description: &str) -> Response {
    let mut response = oauth_error(
        shared,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        description,
    );
    if used_basic {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"oauth\""),
        );
    }
    response
}

/// Form fields by name; a field given twice is refused (RFC 6749 §3.1).
fn single_valued(body: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut form = HashMap::new();
    for (name, value) in form_urlencoded::parse(body).into_owned() {
        if form.contains_key(&name) {
            return Err(format!("{name} is given more than once"));
        }
        form.insert(name, value);
    }
    Ok(form)
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn verifier_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1: both halves are form-url-encoded before base64.
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match single_valued(&body) {
        Ok(form) => form,
        Err(why) => return oauth_error(&shared, StatusCode::BAD_REQUEST, "invalid_request", &why),
    };
    let used_basic = basic_credentials(&headers).is_some();
    let credentials = basic_credentials(&headers).or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let Some((client_id, secret)) = credentials else {
        return client_refused(&shared, used_basic, "client authentication required");
    };
    if shared.state().clients.get(&client_id) != Some(&secret) {
        return client_refused(&shared, used_basic, "client not found");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => exchange_code(&shared, &client_id, &form),
        Some("refresh_token") => refresh(&shared, &client_id, &form),
        Some("personal_access_token") => exchange_pat(&shared, &client_id, &form),
        Some(_) => oauth_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant type not supported",
        ),
        None => oauth_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type missing",
        ),
    }
}

/// The one scope GoTo grants.
const GRANTED_SCOPE: &str = "collab:";

fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

fn exchange_code(shared: &Shared, client_id: &str, form: &HashMap<String, String>) -> Response {
    let invalid = |why: &str| oauth_error(shared, StatusCode::BAD_REQUEST, "invalid_grant", why);
    let malformed =
        |why: &str| oauth_error(shared, StatusCode::BAD_REQUEST, "invalid_request", why);
    let Some(code) = form.get("code") else {
        return malformed("code missing");
    };
    if !form.contains_key("redirect_uri") {
        return malformed("redirect_uri missing");
    }
    if let Some(verifier) = form.get("code_verifier")
        && !verifier_well_formed(verifier)
    {
        return malformed("code_verifier must be 43 to 128 unreserved characters");
    }
    let now = shared.clock.now();
    let grant = {
        let mut st = shared.state();
        // Single use: whatever happens next, this code is spent.
        let Some(grant) = st.codes.remove(code) else {
            drop(st);
            return invalid("authorization code unknown or already used");
        };
        grant
    };
    if grant.client_id != client_id {
        return invalid("authorization code was issued to another client");
    }
    if now >= grant.expires_at {
        return invalid("authorization code expired");
    }
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return invalid("redirect_uri does not match the authorization request");
    }
    match (&grant.code_challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => {}
        (Some(_), Some(_)) => return invalid("code_verifier does not match the code_challenge"),
        (Some(_), None) => return invalid("code_verifier missing"),
        (None, Some(_)) => {
            return invalid("code_verifier given for a code issued without a code_challenge");
        }
        (None, None) => {}
    }
    issue(
        shared,
        "authorization_code",
        client_id,
        grant.organizer_key,
        true,
    )
}

fn refresh(shared: &Shared, client_id: &str, form: &HashMap<String, String>) -> Response {
    let invalid = |why: &str| oauth_error(shared, StatusCode::BAD_REQUEST, "invalid_grant", why);
    let Some(refresh_token) = form.get("refresh_token") else {
        return oauth_error(
            shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token missing",
        );
    };
    // GoTo grants one scope; asking for more than the grant had is refused (RFC 6749 §6).
    if let Some(scope) = form.get("scope")
        && scope
            .split(' ')
            .any(|s| !s.is_empty() && s != GRANTED_SCOPE)
    {
        return oauth_error(
            shared,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the requested scope exceeds the scope granted",
        );
    }
    let now = shared.clock.now();
    let Some(grant) = shared.state().refresh_tokens.get(refresh_token).cloned() else {
        return invalid("refresh token unknown or revoked");
    };
    if grant.client_id != client_id {
        return invalid("refresh token was issued to another client");
    }
    if now >= grant.expires_at {
        return invalid("refresh token expired");
    }
    // GoTo returns a new refresh token only near the end of the old one's life.
    let rotate = grant.expires_at - now <= shared.config.lifetimes.refresh_rotation_window;
    issue(
        shared,
        "refresh_token",
        client_id,
        grant.organizer_key,
        rotate,
    )
}

fn exchange_pat(shared: &Shared, client_id: &str, form: &HashMap<String, String>) -> Response {
    let Some(pat) = form.get("pat") else {
        return oauth_error(
            shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "pat missing",
        );
    };
    let organizer = shared.state().pats.get(pat).copied();
    match organizer {
        Some(organizer_key) => issue(
            shared,
            "personal_access_token",
            client_id,
            organizer_key,
            false,
        ),
        None => oauth_error(
            shared,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "personal access token unknown or revoked",
        ),
    }
}

/// Issues tokens and builds GoTo's token response.
fn issue(
    shared: &Shared,
    grant_type: &str,
    client_id: &str,
    organizer_key: u64,
    with_refresh_token: bool,
) -> Response {
    let now = shared.clock.now();
    let lifetimes = shared.config.lifetimes;
    let mut st = shared.state();
    let access = st.issue_access_token(client_id, organizer_key, now + lifetimes.access_token);
    let refresh = with_refresh_token
        .then(|| st.issue_refresh_token(client_id, organizer_key, now + lifetimes.refresh_token));
    let organizer = st.organizers.get(&organizer_key).cloned();
    drop(st);

    let mut body = Map::new();
    body.insert("access_token".into(), json!(access));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("expires_in".into(), json!(lifetimes.access_token));
    if let Some(refresh) = &refresh {
        body.insert("refresh_token".into(), json!(refresh));
    }
    body.insert("scope".into(), json!(GRANTED_SCOPE));
    if let Some(o) = &organizer {
        body.insert("principal".into(), json!(o.email));
        if shared.config.legacy_token_fields {
            // The old host sent every key as a string.
            body.insert("organizer_key".into(), json!(o.key.to_string()));
            body.insert("account_key".into(), json!(o.account_key.to_string()));
            body.insert("account_type".into(), json!("corporate"));
            body.insert("email".into(), json!(o.email));
            body.insert("firstName".into(), json!(o.first_name));
            body.insert("lastName".into(), json!(o.last_name));
            body.insert("version".into(), json!("3"));
        }
    }
    shared.stats.grant(grant_type, refresh.is_some());
    let mut response = Json(Value::Object(body)).into_response();
    no_cache(&mut response);
    response
}

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The grant behind a request's bearer token, if it is known and unexpired.
pub(crate) fn authenticate(shared: &Shared, headers: &HeaderMap) -> Option<TokenGrant> {
    let token = bearer(headers)?;
    let grant = shared.state().access_tokens.get(token).cloned()?;
    (shared.clock.now() < grant.expires_at).then_some(grant)
}

/// `GET /admin/rest/v1/me`.
pub(crate) async fn me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(grant) = authenticate(&shared, &headers) else {
        return invalid_token();
    };
    let organizer = shared.state().organizers.get(&grant.organizer_key).cloned();
    match organizer {
        Some(o) => Json(json!({
            "key": o.key,
            "accountKey": o.account_key,
            "email": o.email,
            "firstName": o.first_name,
            "lastName": o.last_name,
            "locale": "en_US",
        }))
        .into_response(),
        None => invalid_token(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_and_look_alikes() {
        for ok in [
            "http://127.0.0.1:8123/callback",
            "http://localhost:9/cb?x=1",
            "http://[::1]:4000/",
            "http://127.0.0.1/",
            "http://localhost",
        ] {
            assert!(is_loopback_redirect(ok), "{ok} refused");
        }
        for bad in [
            "https://example.com/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://127.0.0.1@evil.example/cb",
            "http://localhost:80ab/cb",
            "http://localhost:8080/cb#frag",
            "ftp://127.0.0.1/",
            "http://evil.example/?127.0.0.1",
        ] {
            assert!(!is_loopback_redirect(bad), "{bad} accepted");
        }
    }

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        // The example pair from RFC 7636, appendix B.
        assert!(pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "wrong"
        ));
    }
}
