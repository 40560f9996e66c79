//! Serve the router with limits: `axum::serve` has no header or idle timeout and accepts without
//! bound, so a slow or idle client could hold a connection and a task forever.
//!
//! This is the collector's `listener.rs` (same design, trimmed: no request-body timeout, because
//! the service's request timeout already bounds reading the body): hyper-util's connection builder
//! with hyper's HTTP/1 `header_read_timeout`, an idle watchdog, and a semaphore of connection
//! slots in the accept loop. Semantics as Go's `net/http` (what the FastAPI design's uvicorn
//! approximates): `read_header_timeout` from accept until the first request's headers are in (and
//! from the start of each later request's headers), `idle_timeout` for a keep-alive connection
//! with no request in flight. The request timeout and concurrency limit are tower layers in
//! [`crate::app`].

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Open connections per listener. At the limit the listener stops accepting (new clients wait in
/// the kernel's backlog) until a connection ends; the timeouts make sure one does.
pub const MAX_CONNECTIONS: usize = 4096;
/// HTTP/2 streams per connection (Go's HTTP/2 server: 250).
pub const MAX_CONCURRENT_STREAMS: u32 = 250;
/// After shutdown starts, connections get this long to finish in-flight requests before they
/// are cut. Also how long a connection closed for idleness may take to say goodbye.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Default of both timeouts (the OpenTelemetry collector's `confighttp` defaults).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Timeouts and limits of one listener. [`Default`] is upstream's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    /// Time allowed to receive a request's headers; `None` disables it.
    pub read_header_timeout: Option<Duration>,
    /// Time a connection may sit with no request in flight; `None` disables it.
    pub idle_timeout: Option<Duration>,
    /// Open connections at once.
    pub max_connections: usize,
    /// How long in-flight requests may finish after shutdown (or an idle close) before the
    /// connection is dropped.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            read_header_timeout: Some(DEFAULT_TIMEOUT),
            idle_timeout: Some(DEFAULT_TIMEOUT),
            max_connections: MAX_CONNECTIONS,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// Per-connection bookkeeping for the idle watchdog: requests in flight, and when the last one
/// ended (or the connection was accepted).
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    served: AtomicUsize,
    last_change: std::sync::Mutex<Instant>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            last_change: std::sync::Mutex::new(Instant::now()),
            changed: Notify::new(),
        }
    }

    /// Records activity. The watchdog is not woken (it re-checks when its timer fires), so a
    /// request costs one uncontended lock, not a task wake-up.
    fn touch(&self) {
        if let Ok(mut t) = self.last_change.lock() {
            *t = Instant::now();
        }
    }

    fn last(&self) -> Instant {
        self.last_change.lock().map(|t| *t).unwrap_or_else(|e| *e.into_inner())
    }
}

/// Held while a request is in flight; marks the connection active.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.touch();
        if a.served.fetch_add(1, Ordering::AcqRel) == 0 {
            // Leaving the first-request phase: the watchdog may be waiting without a timer.
            a.changed.notify_one();
        }
        Self(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// Resolves when the connection has been without requests for too long: before its first
/// request, `read_header_timeout` after accept (Go's first-request deadline); after that,
/// `idle_timeout` after the last request ended. Never resolves while a request is in flight.
/// The watchdog polls instead of being woken per request, so a connection that was busy when
/// it looked is closed between `idle_timeout` and twice that after its last request.
async fn idle_expired(a: &Activity, limits: &ServerLimits) {
    loop {
        let notified = a.changed.notified();
        let first = a.served.load(Ordering::Acquire) == 0;
        let limit = if first { limits.read_header_timeout } else { limits.idle_timeout };
        let Some(limit) = limit else {
            if first {
                // No first-request deadline; wait for the first request to start the idle rule.
                notified.await;
                continue;
            }
            return std::future::pending().await;
        };
        let now = Instant::now();
        let busy = a.in_flight.load(Ordering::Acquire) > 0;
        let last = a.last();
        if !busy && last + limit <= now {
            return;
        }
        // Idle: sleep until the deadline. Busy: look again a full `limit` later.
        let next = if busy { now + limit } else { last + limit };
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = notified => {}
        }
    }
}

fn builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1().timer(TokioTimer::new()).header_read_timeout(limits.read_header_timeout);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        // hyper's defaults, spelled out: HTTP/2 reset floods (CVE-2023-44487) end in GOAWAY.
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024);
    b
}

/// Serves `router` on `listener` with `limits` until `shutdown` is cancelled; then stops
/// accepting, lets connections finish in-flight requests for `limits.shutdown_grace`, and drops
/// the rest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let builder = Arc::new(builder(&limits));
    let app = router;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    loop {
        // Reap finished connection tasks so the set stays as small as the open connections.
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (builder, limits, app, stop) = (builder.clone(), limits.clone(), app.clone(), shutdown.clone());
        conns.spawn(async move {
            let _permit = permit;
            serve_connection(stream, &builder, &limits, app, stop).await;
        });
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_grace + Duration::from_secs(1), drain).await.is_err() {
        conns.abort_all();
    }
    Ok(())
}

type App = Router;

async fn serve_connection(
    stream: tokio::net::TcpStream,
    builder: &auto::Builder<TokioExecutor>,
    limits: &ServerLimits,
    app: App,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let act = activity.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::begin(&act);
        let req = req.map(Body::new);
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await;
            drop(guard);
            resp.map_err(|e: Infallible| match e {})
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = shutdown.cancelled() => {}
        () = idle_expired(&activity, limits) => {}
    }
    conn.as_mut().graceful_shutdown();
    // A client that never finishes its request does not get to keep the connection.
    let _ = tokio::time::timeout(limits.shutdown_grace, conn).await;
}

#[cfg(test)]
mod tests;
