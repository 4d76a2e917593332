//! GoTo's OAuth 2.0: the authorize URL (with `state`, and PKCE S256 unless turned off),
//! the code exchange, refresh, and the personal-access-token grant. Client
//! authentication is HTTP Basic, as GoTo documents. Token answers are parsed leniently:
//! `token_type` and `refresh_token` may be absent, and the old host's owner fields
//! (`organizer_key`, `account_key`) are picked up when present.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::keys::{AccountKey, OrganizerKey};

/// The OAuth client registered in GoTo's developer portal. `Debug` hides the secret.
#[derive(Clone)]
pub struct ClientCredentials {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// A failed token request.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// `invalid_grant`: the code, refresh token or PAT is expired, used or revoked. A
    /// person must authorize again.
    #[error("GoTo refused the grant (invalid_grant): {0}")]
    InvalidGrant(String),
    /// `invalid_client`: the client id or secret is wrong.
    #[error("GoTo refused the client credentials (invalid_client): {0}")]
    InvalidClient(String),
    /// Any other OAuth error answer.
    #[error("GoTo refused the token request ({status} {error}): {description}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The OAuth `error` code.
        error: String,
        /// `error_description`.
        description: String,
    },
    /// 5xx or 429 from the token endpoint: try again later.
    #[error("GoTo's token endpoint failed ({status})")]
    Unavailable {
        /// HTTP status.
        status: u16,
    },
    /// No answer: connection or timeout.
    #[error("could not reach GoTo's token endpoint: {0}")]
    Transport(String),
    /// An answer without a usable `access_token`.
    #[error("unexpected token answer from GoTo: {0}")]
    Decode(String),
}

impl OAuthError {
    /// Whether the same request may work later (the grant itself is still good).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Transport(_))
    }
}

/// A token answer, as far as g2w uses it.
pub struct TokenResponse {
    /// The bearer token for API calls.
    pub access_token: SecretString,
    /// Seconds until the access token expires (GoTo: 3600).
    pub expires_in: u64,
    /// A new refresh token, when GoTo issued one. Absent means: keep the old one.
    pub refresh_token: Option<SecretString>,
    /// The user's email.
    pub principal: Option<String>,
    /// The organizer key, from GoTo's old token host only.
    pub organizer_key: Option<OrganizerKey>,
    /// The account key, from GoTo's old token host only.
    pub account_key: Option<AccountKey>,
    /// The scope GoTo granted.
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("principal", &self.principal)
            .field("organizer_key", &self.organizer_key)
            .field("account_key", &self.account_key)
            .field("scope", &self.scope)
            .finish()
    }
}

#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    principal: Option<String>,
    email: Option<String>,
    organizer_key: Option<serde_json::Value>,
    account_key: Option<serde_json::Value>,
    scope: Option<String>,
}

fn lenient_key<K: std::str::FromStr>(value: Option<&serde_json::Value>) -> Option<K> {
    match value? {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_u64()?.to_string().parse().ok(),
        _ => None,
    }
}

/// Parses GoTo's token answer; only `access_token` is required.
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse, OAuthError> {
    let raw: RawTokenResponse =
        serde_json::from_slice(body).map_err(|e| OAuthError::Decode(e.to_string()))?;
    let access_token = raw
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::Decode("no access_token".into()))?;
    let expires_in = match &raw.expires_in {
        None => 3600,
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(3600),
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(3600),
        Some(_) => 3600,
    };
    Ok(TokenResponse {
        access_token: SecretString::from(access_token),
        expires_in,
        refresh_token: raw
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
        principal: raw.principal.or(raw.email).filter(|p| !p.is_empty()),
        organizer_key: lenient_key(raw.organizer_key.as_ref()),
        account_key: lenient_key(raw.account_key.as_ref()),
        scope: raw.scope.filter(|s| !s.is_empty()),
    })
}

/// An authorization in progress: the URL to open, and what to check on the way back.
pub struct AuthorizeRequest {
    /// Where the person's browser goes.
    pub url: Url,
    /// The `state` the callback must carry back.
    pub state: String,
    /// The PKCE verifier to send with the code, if PKCE is on.
    pub pkce_verifier: Option<SecretString>,
    /// The redirect URI, repeated in the code exchange.
    pub redirect_uri: String,
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0_u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    URL_SAFE_NO_PAD.encode(buf)
}

/// Talks to GoTo's authentication server.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    auth_url: Url,
    credentials: ClientCredentials,
}

impl OAuthClient {
    /// A client for `auth_url` (GoTo: `https://authentication.logmeininc.com`).
    pub fn new(http: reqwest::Client, auth_url: Url, credentials: ClientCredentials) -> Self {
        Self {
            http,
            auth_url,
            credentials,
        }
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// The same server with another OAuth client.
    pub fn with_credentials(&self, credentials: ClientCredentials) -> Self {
        Self {
            http: self.http.clone(),
            auth_url: self.auth_url.clone(),
            credentials,
        }
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.auth_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url
    }

    /// Builds the authorize URL with a fresh `state` and, if `pkce`, an S256 challenge.
    pub fn authorize(&self, redirect_uri: &str, pkce: bool) -> AuthorizeRequest {
        let state = random_token(24);
        let verifier = pkce.then(|| random_token(48));
        let mut url = self.endpoint("/oauth/authorize");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.credentials.client_id);
            q.append_pair("response_type", "code");
            q.append_pair("redirect_uri", redirect_uri);
            q.append_pair("state", &state);
            if let Some(v) = &verifier {
                let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
                q.append_pair("code_challenge", &challenge);
                q.append_pair("code_challenge_method", "S256");
            }
        }
        AuthorizeRequest {
            url,
            state,
            pkce_verifier: verifier.map(SecretString::from),
            redirect_uri: redirect_uri.to_owned(),
        }
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        // Built before any await: the serializer is not Send.
        let body = {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                s.append_pair(k, v);
            }
            s.finish()
        };
        let response = self
            .http
            .post(self.endpoint("/oauth/token"))
            .basic_auth(
                &self.credentials.client_id,
                Some(self.credentials.client_secret.expose_secret()),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| OAuthError::Transport(crate::transport::describe_transport(&e)))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| OAuthError::Transport(crate::transport::describe_transport(&e)))?;
        if (200..300).contains(&status) {
            return parse_token_response(&bytes);
        }
        if status == 429 || status >= 500 {
            return Err(OAuthError::Unavailable { status });
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            error: Option<String>,
            error_description: Option<String>,
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let error = parsed
            .as_ref()
            .and_then(|b| b.error.clone())
            .unwrap_or_default();
        let description = parsed
            .and_then(|b| b.error_description)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        Err(match (status, error.as_str()) {
            (_, "invalid_grant") => OAuthError::InvalidGrant(description),
            (401, _) | (_, "invalid_client") => OAuthError::InvalidClient(description),
            _ => OAuthError::Refused {
                status,
                error,
                description,
            },
        })
    }

    /// Exchanges an authorization code (with the PKCE verifier, if one was made).
    ///
    /// # Errors
    /// [`OAuthError`] as GoTo answered.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        pkce_verifier: Option<&SecretString>,
    ) -> Result<TokenResponse, OAuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(v) = pkce_verifier {
            form.push(("code_verifier", v.expose_secret()));
        }
        self.token_request(&form).await
    }

    /// Gets a new access token with a refresh token.
    ///
    /// # Errors
    /// [`OAuthError::InvalidGrant`] when the refresh token is dead.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenResponse, OAuthError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ])
        .await
    }

    /// Gets an access token with a personal access token.
    ///
    /// # Errors
    /// [`OAuthError::InvalidGrant`] when the PAT is unknown or revoked.
    pub async fn exchange_pat(&self, pat: &SecretString) -> Result<TokenResponse, OAuthError> {
        self.token_request(&[
            ("grant_type", "personal_access_token"),
            ("pat", pat.expose_secret()),
        ])
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_token_answers() {
        let minimal = parse_token_response(br#"{"access_token":"a","expires_in":3600}"#).unwrap();
        assert!(minimal.refresh_token.is_none());
        assert_eq!(minimal.expires_in, 3600);
        let legacy = parse_token_response(
            br#"{"access_token":"a","expires_in":"3600","refresh_token":"r","organizer_key":"9007199254740993","account_key":"","email":"e@x.io"}"#,
        )
        .unwrap();
        assert_eq!(
            legacy.organizer_key.map(OrganizerKey::get),
            Some(9_007_199_254_740_993)
        );
        assert_eq!(legacy.account_key, None, "blank account_key is absent");
        assert_eq!(legacy.principal.as_deref(), Some("e@x.io"));
        assert!(legacy.refresh_token.is_some());
        for bad in [&b"{}"[..], b"[]", b"not json", br#"{"access_token":""}"#] {
            assert!(parse_token_response(bad).is_err());
        }
    }

    #[test]
    fn authorize_url_has_state_and_s256_challenge() {
        let client = OAuthClient::new(
            reqwest::Client::new(),
            Url::parse("https://auth.example/").unwrap(),
            ClientCredentials {
                client_id: "id".into(),
                client_secret: SecretString::from("s"),
            },
        );
        let with = client.authorize("http://127.0.0.1:1/cb", true);
        let q: std::collections::HashMap<_, _> = with.url.query_pairs().into_owned().collect();
        assert_eq!(with.url.path(), "/oauth/authorize");
        assert_eq!(q["state"], with.state);
        assert_eq!(q["code_challenge_method"], "S256");
        let verifier = with
            .pkce_verifier
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        assert_eq!(
            q["code_challenge"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        );
        let without = client.authorize("http://127.0.0.1:1/cb", false);
        assert!(without.pkce_verifier.is_none());
        assert!(!without.url.as_str().contains("code_challenge"));
        assert_ne!(with.state, without.state);
        assert!(format!("{:?}", client.credentials()).contains("[redacted]"));
    }
}
