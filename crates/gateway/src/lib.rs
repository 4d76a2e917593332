//! # g2w-gateway: the registration gateway
//!
//! Landing pages post registrations here. Each one is validated against the webinar's
//! own registration form, written to the outbox and committed to disk **before** the
//! gateway answers, then delivered to GoTo by the [`Worker`] under the account's rate
//! limit, with retries and backoff. The caller gets the join URL if delivery finishes
//! within `sync_wait`, else a registration id to poll.
//!
//! What is guaranteed: an answer other than 4xx/5xx means the registration is on disk
//! and will be delivered — through GoTo outages, 429 storms, dead tokens (delivery
//! pauses until someone logs in again) and crashes of g2w itself (leases expire and
//! another attempt follows; GoTo's 409 makes a repeat harmless). What a caller must
//! handle: 400 (the fields named are wrong), 404/410 (no such or past webinar), 413, 415,
//! 429 (slow down) and 503 (the store could not be written: nothing was stored).

mod activity;
mod cache;
mod charts;
mod config;
mod delivery;
mod edge;
mod error;
mod http;
pub mod intake;
pub mod keys;
mod limiter;
mod metrics;
mod organizers;
mod pages;
mod proxy;
mod sign_in;
mod signing;
pub mod sources;
mod state;
mod webhooks;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use g2w_goto::{Clock, GotoClient};
use g2w_store::Store;

pub use config::{Branding, GatewayConfig};
pub use delivery::engine::Step;
pub use delivery::registrations::Worker;
pub use proxy::ProxyRange;
pub use sign_in::AdminPassword;
pub use webhooks::{
    Forwarder, RECEIVER_PREFIX, ReconcileError, Reconciled, SIGNATURE_HEADER, SetUp, SetupError,
    TIMESTAMP_HEADER, base_url, configured_path, new_receiver_path, our_webhooks, reconcile,
    remove, setup, setup_all, signature,
};

use crate::cache::{CacheSettings, WebinarCache};
use crate::delivery::batcher::Batcher;
use crate::delivery::engine::{Engine, Policy};
use crate::delivery::pace::Pace;
use crate::delivery::registrations::Registrations;
use crate::delivery::waiters::Waiters;
use crate::limiter::IpLimiter;
use crate::metrics::Metrics;
use crate::organizers::{Organizer, Organizers};
use crate::state::{
    AppParts, AppState, Console, Delivery, DeliveryParts, Shared, SharedParts, Visitors,
};

/// The largest request body accepted (larger → 413).
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long shutdown waits for in-flight deliveries.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A configured gateway, ready to serve (a clone is the same gateway: for the CLI and
/// tests to act on it while it serves).
#[derive(Clone)]
pub struct Gateway {
    state: AppState,
    /// Whether `serve` starts the worker, keep-alive, forwarder and reconciler.
    background: bool,
}

impl Gateway {
    /// A gateway over `store` for one organizer (the configured profile), delivering
    /// with `client` (give it a client that does not retry by itself: the outbox
    /// retries, durably).
    pub fn new(config: GatewayConfig, store: Arc<Store>, client: GotoClient, clock: Clock) -> Self {
        let profile = config.profile.clone();
        Self::for_organizers(config, store, vec![(profile, client)], clock)
    }

    /// A gateway over `store` for several organizers: each `(profile, client)` is one
    /// stored login, with its own webinars, delivery and breaker. The first is the one
    /// the admin console connects.
    ///
    /// # Panics
    /// With no organizer at all.
    pub fn for_organizers(
        config: GatewayConfig,
        store: Arc<Store>,
        organizers: Vec<(String, GotoClient)>,
        clock: Clock,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        let waiters = Arc::new(Waiters::default());
        let policy = Policy {
            lease: config.lease,
            backoff_base: config.backoff_base,
            backoff_cap: config.backoff_cap,
            give_up_after: config.give_up_after,
            concurrency: config.delivery_concurrency,
        };
        let organizers = organizers
            .into_iter()
            .map(|(profile, client)| {
                let pace = Pace::new(
                    client.limiter().clone(),
                    config.lookup_rate,
                    config.delivery_concurrency,
                );
                let registrations = Registrations::new(
                    client.clone(),
                    profile.clone(),
                    waiters.clone(),
                    metrics.clone(),
                    pace,
                    config.keep_alive,
                );
                let worker = Arc::new(Engine::new(
                    registrations,
                    store.clone(),
                    policy.clone(),
                    clock.clone(),
                    metrics.clone(),
                ));
                let webinars = Arc::new(WebinarCache::new(
                    client.clone(),
                    clock.clone(),
                    CacheSettings {
                        ttl: config.cache_ttl,
                        stale_for: config.cache_stale_for,
                        not_found_ttl: config.not_found_ttl,
                        lookup_rate: config.lookup_rate,
                    },
                ));
                Arc::new(Organizer {
                    profile,
                    client,
                    webinars,
                    worker,
                })
            })
            .collect();
        let organizers = Organizers::new(organizers);
        let forwarder = webhooks::forwarder(&config, &store, &clock, &metrics, policy);
        let visitors = Arc::new(Visitors {
            intake: IpLimiter::new(f64::from(config.intake_rate_per_ip), config.intake_burst),
            lookups: IpLimiter::new(
                f64::from(config.lookups_per_ip_per_minute) / 60.0,
                config.lookups_per_ip_per_minute,
            ),
        });
        let state = AppState::new(AppParts {
            console: Arc::new(Console::new(&config)),
            delivery: Delivery::new(DeliveryParts {
                batcher: Batcher::start(store.clone()),
                waiters,
                forwarder,
            }),
            shared: Shared::new(SharedParts {
                config: Arc::new(config),
                clock,
                store,
                metrics,
            }),
            organizers,
            visitors,
            receiver: Arc::default(),
            keys: Arc::default(),
        });
        Self {
            state,
            background: true,
        }
    }

    /// A gateway whose `serve` leaves the worker, keep-alive, forwarder and reconciler
    /// to the test, which steps them.
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn stepped(self) -> Self {
        Self {
            background: false,
            ..self
        }
    }

    /// The (first organizer's) delivery engine, for stepping it in tests.
    #[cfg(feature = "testing")]
    pub fn worker(&self) -> Arc<Worker> {
        self.state.organizers.primary().worker.clone()
    }

    /// Each organizer's delivery engine, by profile, for stepping them in tests.
    #[cfg(feature = "testing")]
    pub fn workers(&self) -> Vec<(String, Arc<Worker>)> {
        self.state
            .organizers
            .all()
            .iter()
            .map(|o| (o.profile.clone(), o.worker.clone()))
            .collect()
    }

    /// The forwarding engine (with a forward URL), for stepping it in tests.
    #[cfg(feature = "testing")]
    pub fn forwarder(&self) -> Option<Arc<Forwarder>> {
        self.state.delivery.forwarder.clone()
    }

    /// Sends every post kept for source `name` through intake again, with the source's
    /// mapping as it is now (`g2w sources replay`, the console's Replay).
    ///
    /// # Errors
    /// No such source, or the store cannot say which posts wait.
    pub async fn replay_source(&self, name: &str) -> Result<sources::Replayed, String> {
        sources::replay(&intake::Intake::of(&self.state), name).await
    }

    /// What source `name` would make of a payload, without storing or sending anything
    /// (`g2w sources test`).
    ///
    /// # Errors
    /// No such source, or the store cannot say what it is.
    pub async fn test_source(
        &self,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<sources::Tested, String> {
        sources::test(&intake::Intake::of(&self.state), name, content_type, body).await
    }

    /// Every route.
    pub fn router(&self) -> Router {
        http::router(self.state.clone(), BODY_LIMIT)
    }

    /// Serves on `listener` until `shutdown` resolves: then stops intake, lets in-flight
    /// deliveries finish (at most 10 s), and returns.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let shared = &self.state.shared;
        let delivery = &self.state.delivery;
        let organizers = &self.state.organizers;
        let background = self.background.then(|| {
            // Work added by other gateways on the same database wakes this one at
            // once where the database can say so; polling covers the rest.
            let (woken, forwarder) = (organizers.clone(), delivery.forwarder.clone());
            let wake = move |kind: g2w_store::QueueName| match kind {
                g2w_store::QueueName::Registrations => woken.wake_all(),
                g2w_store::QueueName::Forwards => {
                    if let Some(f) = &forwarder {
                        f.wake();
                    }
                }
            };
            if !shared
                .store
                .notify_new_work(Box::new(wake), stop_rx.clone())
            {
                tracing::debug!("this store cannot announce new work; polling");
            }
            let mut deliveries = Vec::new();
            let mut helpers = Vec::new();
            for o in organizers.all() {
                deliveries.push(tokio::spawn(o.worker.clone().run(stop_rx.clone())));
                helpers.push(tokio::spawn(o.worker.clone().keep_alive(stop_rx.clone())));
                if let Some(every) = shared.config.reconcile_every {
                    let reconciler = webhooks::Reconciler {
                        client: o.client.clone(),
                        store: shared.store.clone(),
                        delivery: o.worker.clone(),
                        forwarder: delivery.forwarder.clone(),
                        clock: shared.clock.clone(),
                    };
                    helpers.push(tokio::spawn(reconciler.run(every, stop_rx.clone())));
                }
            }
            helpers.push(tokio::spawn(activity::sample_every_minute(
                shared.clone(),
                organizers.clone(),
            )));
            if let Some(kept) = shared.config.key_audit_kept {
                helpers.push(tokio::spawn(keys::prune_audit(
                    shared.store.clone(),
                    shared.clock.clone(),
                    kept,
                )));
            }
            let forward = delivery
                .forwarder
                .clone()
                .map(|f| tokio::spawn(f.run(stop_rx.clone())));
            (deliveries, helpers, forward)
        });
        let config = &self.state.shared.config;
        let limits = edge::ConnectionLimits {
            max_connections: config.max_connections,
            header_timeout: config.header_timeout,
            keep_alive_timeout: config.keep_alive_timeout,
        };
        let served = edge::serve(listener, self.router(), limits, shutdown).await;
        let _ = stop_tx.send(true);
        if let Some((deliveries, helpers, forward)) = background {
            for helper in helpers {
                helper.abort();
            }
            // A forward in flight finishes and records its outcome, like a delivery: cut
            // off, its event would be sent again once the lease ran out.
            let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
                for delivery in deliveries {
                    let _ = delivery.await;
                }
                if let Some(forward) = forward {
                    let _ = forward.await;
                }
            });
            if drained.await.is_err() {
                tracing::warn!(
                    "in-flight deliveries or forwards did not finish in time; their leases will expire and they will be retried"
                );
            }
        }
        served
    }
}
