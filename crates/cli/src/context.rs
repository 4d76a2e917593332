//! What a command needs to talk to GoTo for a profile: settings, the store, and a
//! client whose tokens look after themselves.

use std::sync::Arc;

use anyhow::Context as _;
use g2w_goto::{
    ClientCredentials, GotoClient, OAuthClient, RateLimiter, RetryPolicy, SecretString,
    TokenManager, TokenRecord, system_clock,
};
use g2w_store::{Store, StoreBudget};

use crate::settings::Settings;

/// A profile's environment.
pub struct Context {
    /// Resolved settings, with this profile's remembered GoTo when none is configured.
    pub settings: Arc<Settings>,
    /// The settings as configured (shared by the contexts of every profile one command
    /// serves).
    base_settings: Arc<Settings>,
    /// The profile name.
    pub profile: String,
    /// The open store (SQLite, or PostgreSQL with `G2W_DATABASE_URL`).
    pub store: Arc<Store>,
    /// The HTTP client for GoTo.
    pub http: reqwest::Client,
}

/// No OAuth client anywhere.
const NO_CLIENT: &str = "no GoTo OAuth client configured: set G2W_CLIENT_ID and \
G2W_CLIENT_SECRET (or --client-id/--client-secret, or [goto] client_id/client_secret in the \
config file). docs/auth.md explains how to create one.";

impl Context {
    /// Opens the store for `profile`.
    ///
    /// # Errors
    /// When the store cannot be opened (each reason with its own message).
    pub async fn open(settings: Settings, profile: &str) -> anyhow::Result<Self> {
        let store = Store::open(
            settings.database_url.as_deref(),
            &settings.data_dir,
            settings.secret_key.as_deref(),
        )
        .await
        .context("cannot open g2w's store")?;
        let http = g2w_goto::http_client().context("cannot start the HTTP client")?;
        let settings = Arc::new(settings);
        let opened = Self {
            settings: settings.clone(),
            base_settings: settings.clone(),
            profile: profile.to_owned(),
            store,
            http,
        };
        Ok(opened.remembering_goto(&settings).await)
    }

    /// The same settings and store for another profile (`g2w serve` serving several).
    pub async fn with_profile(&self, profile: &str) -> Self {
        let base = self.base_settings.clone();
        Self {
            settings: base.clone(),
            base_settings: base.clone(),
            profile: profile.to_owned(),
            store: self.store.clone(),
            http: self.http.clone(),
        }
        .remembering_goto(&base)
        .await
    }

    /// With the GoTo this profile's login was made against (the emulator, say), unless
    /// one is configured: a login made against one GoTo is not sent to another.
    async fn remembering_goto(mut self, base: &Arc<Settings>) -> Self {
        if base.goto_set {
            return self;
        }
        let Ok(Some(login)) = self.store.load_profile(&self.profile).await else {
            return self;
        };
        let parse = |text: Option<&String>| text.and_then(|t| g2w_goto::Url::parse(t).ok());
        let (auth, api) = (
            parse(login.auth_url.as_ref()),
            parse(login.api_url.as_ref()),
        );
        if auth.is_none() && api.is_none() {
            return self;
        }
        let mut settings = (**base).clone();
        if let Some(auth) = auth {
            settings.auth_url = auth;
        }
        if let Some(api) = api {
            settings.api_url = api;
        }
        self.settings = Arc::new(settings);
        self
    }

    /// The profiles whose organizers a gateway serves: those `named` (`--profiles`),
    /// else this profile and every other profile with a stored login.
    ///
    /// # Errors
    /// Store failures.
    pub async fn served_profiles(&self, named: Option<Vec<String>>) -> anyhow::Result<Vec<String>> {
        if let Some(named) = named {
            return Ok(named);
        }
        let mut profiles = vec![self.profile.clone()];
        for p in self.store.profiles().await? {
            if !profiles.contains(&p) {
                profiles.push(p);
            }
        }
        Ok(profiles)
    }

    /// The stored login, if any.
    ///
    /// # Errors
    /// Store failures.
    pub async fn stored(&self) -> anyhow::Result<Option<TokenRecord>> {
        Ok(self.store.load_profile(&self.profile).await?)
    }

    /// The OAuth client: configured credentials win over the stored ones.
    ///
    /// # Errors
    /// When neither gives both an id and a secret.
    pub fn credentials(&self, stored: Option<&TokenRecord>) -> anyhow::Result<ClientCredentials> {
        // A record being saved carries the credentials it was made with: they win.
        let from_settings = match (&self.settings.client_id, &self.settings.client_secret) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
            _ => None,
        };
        let from_store = stored.and_then(|r| {
            Some((r.client_id.clone(), r.client_secret.clone()?)).filter(|(id, _)| !id.is_empty())
        });
        let (client_id, client_secret): (String, SecretString) =
            from_settings.or(from_store).context(NO_CLIENT)?;
        Ok(ClientCredentials {
            client_id,
            client_secret,
        })
    }

    /// An OAuth client for these credentials.
    pub fn oauth(&self, credentials: ClientCredentials) -> OAuthClient {
        OAuthClient::new(
            self.http.clone(),
            self.settings.auth_url.clone(),
            credentials,
        )
    }

    /// The token manager of this profile, with the stored (or configured) OAuth client.
    ///
    /// # Errors
    /// No login stored for the profile ([`crate::exit::NotLoggedIn`]), no OAuth client,
    /// or the store failing.
    pub async fn token_manager(&self) -> anyhow::Result<Arc<TokenManager>> {
        // Without a login the problem is the login, whatever the OAuth client.
        let Some(stored) = self.stored().await? else {
            return Err(crate::exit::NotLoggedIn(self.profile.clone()).into());
        };
        let stored = Some(stored);
        let credentials = self.credentials(stored.as_ref())?;
        Ok(self.manager(credentials))
    }

    /// [`Self::token_manager`], or one with no OAuth client yet when none is configured
    /// or stored (the gateway before its first login).
    ///
    /// # Errors
    /// Store failures.
    pub async fn token_manager_or_empty(&self) -> anyhow::Result<Arc<TokenManager>> {
        let stored = self.stored().await?;
        let credentials = self
            .credentials(stored.as_ref())
            .unwrap_or_else(|_| ClientCredentials {
                client_id: String::new(),
                client_secret: SecretString::from(String::new()),
            });
        Ok(self.manager(credentials))
    }

    /// A token manager for a login about to be saved (its own OAuth client).
    ///
    /// # Errors
    /// When the record has no client secret.
    pub fn token_manager_for(&self, record: &TokenRecord) -> anyhow::Result<Arc<TokenManager>> {
        let credentials = self.credentials(Some(record))?;
        Ok(self.manager(credentials))
    }

    fn manager(&self, credentials: ClientCredentials) -> Arc<TokenManager> {
        Arc::new(TokenManager::new(
            self.store.clone(),
            self.oauth(credentials),
            &self.profile,
            system_clock(),
        ))
    }

    /// Now.
    pub fn now(&self) -> g2w_goto::Timestamp {
        g2w_goto::Timestamp::now()
    }

    /// The account's GoTo rate limit, booked in the store: every gateway and import run
    /// on the same store shares one schedule, and so do the profiles of one GoTo
    /// account, since GoTo's limit is the account's.
    pub fn rate_limiter(&self) -> Arc<RateLimiter> {
        Arc::new(RateLimiter::shared(
            self.settings.rate_limit,
            1,
            Arc::new(StoreBudget::new(self.store.clone())),
        ))
    }

    /// A GoTo client for this profile.
    pub fn client(&self, tokens: Arc<TokenManager>) -> GotoClient {
        GotoClient::new(
            self.http.clone(),
            self.settings.api_url.clone(),
            tokens,
            self.rate_limiter(),
            RetryPolicy::default(),
        )
    }
}
