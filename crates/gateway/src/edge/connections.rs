//! Accepting connections and ending the ones that hold resources for nothing.
//!
//! Each connection has a watchdog that knows its [`Phase`]: waiting for a request head
//! (until the header deadline), busy with requests (no deadline here: the handlers bound
//! themselves and the body gate bounds the upload), or idle (until the keep-alive
//! deadline). Bytes arriving on an idle connection start a new header deadline. The
//! watchdog closes the connection when the deadline of its phase passes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

/// How long connections are held open for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Connections open at once; more wait in the listen queue.
    pub max_connections: usize,
    /// From opening (or the first byte after an idle spell) to a complete request head.
    pub header_timeout: Duration,
    /// Idle between requests.
    pub keep_alive_timeout: Duration,
}

/// How long shutdown lets open connections finish the requests they are serving.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (out of file descriptors, say), the pause before the next: the
/// pending connection stays queued, and retrying at once would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Repeated accept failures are logged at most this often.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections
/// finish their requests (at most 10 s) and returns.
///
/// # Errors
/// None yet: accept failures are logged and retried, as they are usually temporary.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (closing, closing_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut at_limit = false;
    let mut last_accept_log: Option<Instant> = None;
    loop {
        if slots.available_permits() == 0 && !at_limit {
            at_limit = true;
            tracing::warn!(
                max_connections = max,
                "connection limit reached: new connections wait until one closes \
                 (raise max_connections, or put a proxy that limits connections per address in front)"
            );
        }
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        if at_limit && slots.available_permits() >= max / 10 {
            at_limit = false;
            tracing::info!("below the connection limit again");
        }
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if last_accept_log.is_none_or(|at| at.elapsed() >= ACCEPT_LOG_EVERY) {
                        last_accept_log = Some(Instant::now());
                        tracing::error!("cannot accept connections: {e} (open connections: {})", max - slots.available_permits());
                    }
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            closing_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a slot until it ends.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(CLOSE_TIMEOUT, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {CLOSE_TIMEOUT:?}; closing them");
    }
    Ok(())
}

/// Serves one connection until it ends, its watchdog closes it, or shutdown finishes it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new(limits));
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = Busy::start(activity.clone());
            let answer = app.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = answer.await;
                drop(busy);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog keeps the time; hyper's own header timer would also cut keep-alive.
    builder.header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut shutting_down = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            phase = activity.expired() => {
                tracing::debug!(%peer, "closing a connection that {phase}");
                return;
            }
            changed = closing.changed(), if !shutting_down => {
                shutting_down = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head, until then.
    Head(Instant),
    /// Serving this many requests.
    Busy(usize),
    /// Between requests, until then.
    Idle(Instant),
}

/// A connection's phase, shared by its reads, its requests and its watchdog.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
    limits: ConnectionLimits,
}

impl Activity {
    fn new(limits: ConnectionLimits) -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now() + limits.header_timeout)),
            changed: Notify::new(),
            limits,
        }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        *phase = change(*phase);
        drop(phase);
        self.changed.notify_one();
    }

    /// Bytes arrived: on an idle connection, a new request head has begun.
    fn read_some(&self) {
        let idle = matches!(
            *self.phase.lock().unwrap_or_else(|e| e.into_inner()),
            Phase::Idle(_)
        );
        if idle {
            let deadline = Instant::now() + self.limits.header_timeout;
            self.update(|phase| match phase {
                Phase::Idle(_) => Phase::Head(deadline),
                other => other,
            });
        }
    }

    fn deadline(&self) -> Option<(Instant, &'static str)> {
        match *self.phase.lock().unwrap_or_else(|e| e.into_inner()) {
            Phase::Head(at) => Some((at, "sent no complete request head in time")),
            Phase::Idle(at) => Some((at, "stayed idle too long")),
            Phase::Busy(_) => None,
        }
    }

    /// Resolves when the current phase's deadline has passed, saying what happened.
    async fn expired(&self) -> &'static str {
        loop {
            let changed = self.changed.notified();
            match self.deadline() {
                None => changed.await,
                Some((at, what)) if at <= Instant::now() => return what,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// A request being served; its end makes the connection idle (unless others run).
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.update(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let idle_until = Instant::now() + self.0.limits.keep_alive_timeout;
        self.0.update(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(idle_until),
        });
    }
}

/// The connection's socket, telling its [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
