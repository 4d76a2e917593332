//! What every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use g2w_goto::{Clock, GotoClient, SecretString};
use g2w_store::Store;

use crate::cache::WebinarCache;
use crate::config::GatewayConfig;
use crate::delivery::batcher::Batcher;
use crate::delivery::registrations::Worker;
use crate::delivery::waiters::Waiters;
use crate::hooks::Forwarder;
use crate::limiter::IpLimiter;
use crate::metrics::Metrics;
use crate::password::AdminPassword;

/// Shared by every handler.
pub(crate) struct AppState {
    pub config: GatewayConfig,
    pub store: Arc<Store>,
    pub client: GotoClient,
    pub cache: Arc<WebinarCache>,
    pub batcher: Batcher,
    pub waiters: Arc<Waiters>,
    pub metrics: Arc<Metrics>,
    pub worker: Arc<Worker>,
    pub ip_limiter: IpLimiter,
    pub lookup_limiter: IpLimiter,
    pub clock: Clock,
    pub admin: AdminState,
    /// The webhook receiver's secret path.
    pub hook_path: crate::hooks::HookPath,
    /// Forwards received events to the user's URL, when one is configured.
    pub forwarder: Option<Arc<Forwarder>>,
}

impl AppState {
    /// Tells the forwarder there is an event to forward.
    pub(crate) fn wake_forwarder(&self) {
        if let Some(forwarder) = &self.forwarder {
            forwarder.wake();
        }
    }
}

/// A "Connect GoTo" flow waiting for GoTo's callback.
pub(crate) struct PendingConnect {
    pub verifier: Option<SecretString>,
    pub redirect_uri: String,
    pub expires: Instant,
}

/// Sign-in attempts and connect flows in progress (in memory: short-lived). Sessions
/// live in the store, so a restart or another gateway keeps people signed in.
pub(crate) struct AdminState {
    /// The password as upgraded at a sign-in, replacing the configured one.
    pub upgraded: Mutex<Option<AdminPassword>>,
    /// What an action said, shown once on the page it redirects to (by session).
    pub notices: Mutex<HashMap<String, String>>,
    /// Sign-in attempts: their budgets and the password checks.
    pub signins: crate::admin::SignIns,
    /// Connect flows by their OAuth `state`.
    pub connects: Mutex<HashMap<String, PendingConnect>>,
}

impl AdminState {
    pub(crate) fn new(config: &GatewayConfig) -> Self {
        Self {
            upgraded: Mutex::default(),
            notices: Mutex::default(),
            signins: crate::admin::SignIns::new(config),
            connects: Mutex::default(),
        }
    }
}
