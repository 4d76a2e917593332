//! What handlers share, in parts: each handler asks (through axum's `FromRef`) for only
//! the parts it uses, so what a handler can touch is in its signature. Each part is one
//! `Arc` behind a handle, so that giving a request its parts costs a reference count or
//! two, not one per field (every request does it, on every core).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::FromRef;
use g2w_goto::{Clock, SecretString};
use g2w_store::Store;

use crate::config::GatewayConfig;
use crate::delivery::batcher::Batcher;
use crate::delivery::waiters::Waiters;
use crate::keys::check::KeyChecks;
use crate::limiter::IpLimiter;
use crate::metrics::Metrics;
use crate::organizers::Organizers;
use crate::sign_in::{AdminPassword, SignIns};
use crate::webhooks::{Forwarder, HookPath};

/// What nearly every handler needs: the settings, the clock, the store and the metrics.
#[derive(Clone)]
pub(crate) struct Shared(Arc<SharedParts>);

/// The parts of [`Shared`].
pub(crate) struct SharedParts {
    pub config: Arc<GatewayConfig>,
    pub clock: Clock,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
}

impl Shared {
    pub(crate) fn new(parts: SharedParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for Shared {
    type Target = SharedParts;

    fn deref(&self) -> &SharedParts {
        &self.0
    }
}

impl Shared {
    /// Now, on the gateway's clock.
    pub(crate) fn now(&self) -> g2w_goto::Timestamp {
        (self.clock)()
    }
}

/// The durable work: storing registrations, forwarding events, and the visitors
/// waiting for a delivery (each organizer delivers its own registrations).
#[derive(Clone)]
pub(crate) struct Delivery(Arc<DeliveryParts>);

/// The parts of [`Delivery`].
pub(crate) struct DeliveryParts {
    pub batcher: Batcher,
    pub waiters: Arc<Waiters>,
    /// Forwards received events to the user's URL, when one is configured.
    pub forwarder: Option<Arc<Forwarder>>,
}

impl Delivery {
    pub(crate) fn new(parts: DeliveryParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for Delivery {
    type Target = DeliveryParts;

    fn deref(&self) -> &DeliveryParts {
        &self.0
    }
}

impl Delivery {
    /// Tells the forwarder there is an event to forward.
    pub(crate) fn wake_forwarder(&self) {
        if let Some(forwarder) = &self.forwarder {
            forwarder.wake();
        }
    }
}

/// Per-visitor budgets.
pub(crate) struct Visitors {
    /// Intake requests by address.
    pub intake: IpLimiter,
    /// Look-ups of webinars the cache does not hold, by address.
    pub lookups: IpLimiter,
}

/// A "Connect GoTo" flow waiting for GoTo's callback.
pub(crate) struct PendingConnect {
    /// The organizer (profile) being connected.
    pub profile: String,
    pub verifier: Option<SecretString>,
    pub redirect_uri: String,
    pub expires: Instant,
}

/// The admin console's short-lived state (in memory). Sessions live in the store, so a
/// restart or another gateway keeps people signed in.
pub(crate) struct Console {
    /// The password as upgraded at a sign-in, replacing the configured one.
    pub upgraded: Mutex<Option<AdminPassword>>,
    /// What an action said, shown once on the page it redirects to (by session).
    pub notices: Mutex<HashMap<String, String>>,
    /// Sign-in attempts: their budgets and the password checks.
    pub signins: SignIns,
    /// Connect flows by their OAuth `state`.
    pub connects: Mutex<HashMap<String, PendingConnect>>,
}

impl Console {
    pub(crate) fn new(config: &GatewayConfig) -> Self {
        Self {
            upgraded: Mutex::default(),
            notices: Mutex::default(),
            signins: SignIns::new(config.signin_concurrency, config.signin_failures_per_minute),
            connects: Mutex::default(),
        }
    }
}

/// Every part.
#[derive(Clone)]
pub(crate) struct AppState(Arc<AppParts>);

/// The parts of [`AppState`].
pub(crate) struct AppParts {
    pub shared: Shared,
    pub delivery: Delivery,
    pub organizers: Organizers,
    pub visitors: Arc<Visitors>,
    pub console: Arc<Console>,
    /// The webhook receiver's secret path.
    pub receiver: Arc<HookPath>,
    /// API keys' checks (wrong keys by address, uses noted).
    pub keys: Arc<KeyChecks>,
}

impl AppState {
    pub(crate) fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl FromRef<AppState> for Shared {
    fn from_ref(state: &AppState) -> Self {
        state.shared.clone()
    }
}

impl FromRef<AppState> for Delivery {
    fn from_ref(state: &AppState) -> Self {
        state.delivery.clone()
    }
}

impl FromRef<AppState> for Organizers {
    fn from_ref(state: &AppState) -> Self {
        state.organizers.clone()
    }
}

impl FromRef<AppState> for Arc<Visitors> {
    fn from_ref(state: &AppState) -> Self {
        state.visitors.clone()
    }
}

impl FromRef<AppState> for Arc<Console> {
    fn from_ref(state: &AppState) -> Self {
        state.console.clone()
    }
}

impl FromRef<AppState> for Arc<HookPath> {
    fn from_ref(state: &AppState) -> Self {
        state.receiver.clone()
    }
}
