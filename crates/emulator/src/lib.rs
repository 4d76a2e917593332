//! # g2w-emulator: GoTo's OAuth server and Webinar v2 API, in process
//!
//! g2w is tested against this emulator instead of GoTo, and `g2w serve --demo` runs
//! on it. It behaves like GoTo where that matters to a client — token lifetimes,
//! single-use authorization codes, refresh tokens that rotate only near the end of
//! their life, 403 `InvalidToken`, 409 duplicates, 429 rate limits, 64-bit keys above
//! 2^53, paging envelopes — and can be steered where GoTo cannot: its clock moves on
//! request, faults can be injected, and counters show exactly what a client did.
//!
//! One base URL serves both GoTo hosts' paths (`/oauth/*` of the auth server,
//! `/G2W/rest/v2/*` and `/admin/rest/v1/me` of the API), plus the control API under
//! `/_emulator`. State lives in memory and is lost when the emulator stops.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let emulator = g2w_emulator::spawn(g2w_emulator::EmulatorConfig::default()).await?;
//! println!("GoTo is at {}", emulator.base_url());
//! emulator.advance_clock(2 * 3600); // every access token has now expired
//! # Ok(()) }
//! ```
//!
//! What the emulator decided where GoTo documents nothing is listed in `docs/emulator.md`.

mod api;
mod app;
mod clock;
mod config;
mod control;
mod errors;
mod event_log;
mod events;
mod faults;
mod html;
mod net;
mod oauth;
mod rate_limit;
mod seed;
mod shared;
mod state;
mod stats;
mod traffic;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::{Timestamp, parse_iso, to_iso};
pub use config::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig, Lifetimes};
pub use events::{SIGNATURE_HEADER, sign as sign_event};
pub use faults::{DROPPED, FaultSpec};
pub use stats::Stats;

use net::{ConnectionCutter, CuttableListener};
use shared::Shared;

/// Serves the emulator on `listener` until `shutdown` resolves.
///
/// # Errors
/// Fails only if the listener's address cannot be read or the server cannot run.
pub async fn serve(
    listener: TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
    run(listener, shared, shutdown).await
}

async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = app::router(shared).into_make_service_with_connect_info::<ConnectionCutter>();
    axum::serve(CuttableListener(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Starts an emulator on `127.0.0.1:0` in the background, for tests and the demo.
///
/// # Errors
/// Fails if no loopback port can be bound.
pub async fn spawn(config: EmulatorConfig) -> io::Result<EmulatorHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, shared.clone(), async {
        let _ = stopped.await;
    }));
    Ok(EmulatorHandle {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT`: both the auth URL and the API URL of this "GoTo".
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The organizer who logs in through the consent page and owns the demo webinars.
    pub fn default_organizer_key(&self) -> u64 {
        self.shared.default_organizer()
    }

    /// The counters, read directly (the same as `GET /_emulator/stats`).
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// Moves the emulator's clock forward (the same as `POST /_emulator/clock/advance`).
    pub fn advance_clock(&self, seconds: i64) {
        self.shared.clock.advance(seconds.max(0));
    }

    /// Now, on the emulator's clock.
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Stops the server and waits until it has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
