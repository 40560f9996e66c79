//! Bind and serve an axum [`Router`] with limits: every HTTP listener of the collector (OTLP/HTTP,
//! the `:8888` self-metrics, the `:8889` Prometheus exporter, `health_check`) goes through
//! [`serve`], so none of them can be held open by a slow or idle client.
//!
//! Build-vs-buy: `axum::serve` has no header, idle or body timeouts and accepts without bound, so
//! this module drives hyper-util's connection builder (HTTP/1.1 and h2c, `header_read_timeout`
//! from hyper itself), tower's `ConcurrencyLimit` for requests and tower-http's `TimeoutBody` for
//! request bodies. The only hand-written parts are the accept loop (a semaphore of connection
//! slots) and the idle watchdog, which hyper does not offer.
//!
//! Semantics follow Go's `net/http` server as upstream's `confighttp` configures it:
//! - `read_header_timeout` (default 1m): from accept until the first request's headers are in,
//!   and (hyper's HTTP/1 timer) from the start of each later request's headers;
//! - `idle_timeout` (default 1m): a keep-alive connection with no request in flight for this long
//!   is closed (HTTP/1 and HTTP/2 alike; checked by polling, so within twice the timeout);
//! - `read_timeout` (default 1m here; upstream has none): reading a request body may take at most
//!   this long, after which the body read fails and the handler answers 408.
//!
//! Limits that upstream does not make configurable are constants here: [`MAX_CONNECTIONS`],
//! [`MAX_CONCURRENT_REQUESTS`], [`MAX_CONCURRENT_STREAMS`], [`SHUTDOWN_GRACE`].

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
use tower::{Layer as _, ServiceExt as _};

pub use collector_config::limits::*;

/// True when `err` (from reading a request body) is the body-read timeout of [`serve`], so a
/// handler can answer 408 instead of blaming the client's payload.
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cur = e.source();
    }
    false
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
    let h2 = &limits.http2;
    let mut b2 = b.http2();
    b2.timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_concurrent_streams)
        .adaptive_window(h2.adaptive_window)
        .keep_alive_interval(h2.keep_alive_interval)
        // hyper's defaults, spelled out: HTTP/2 reset floods (CVE-2023-44487) end in GOAWAY.
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024);
    if let Some(t) = h2.keep_alive_timeout {
        b2.keep_alive_timeout(t);
    }
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
    // One ConcurrencyLimit shared by every connection: clones share its semaphore.
    let app = tower::limit::ConcurrencyLimitLayer::new(limits.max_concurrent_requests).layer(router);
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

type App = tower::limit::ConcurrencyLimit<Router>;

async fn serve_connection(
    stream: tokio::net::TcpStream,
    builder: &auto::Builder<TokioExecutor>,
    limits: &ServerLimits,
    app: App,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let read_timeout = limits.read_timeout;
    let act = activity.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::begin(&act);
        let req = match read_timeout {
            Some(d) => req.map(|b| Body::new(tower_http::timeout::TimeoutBody::new(d, b))),
            None => req.map(Body::new),
        };
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await;
            drop(guard);
            resp.map_err(|e: Infallible| match e {})
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let aged = async {
        match limits.http2.max_connection_age {
            Some(age) => tokio::time::sleep(age).await,
            None => std::future::pending().await,
        }
    };
    let grace = tokio::select! {
        _ = conn.as_mut() => return,
        () = shutdown.cancelled() => limits.shutdown_grace,
        () = idle_expired(&activity, limits) => limits.shutdown_grace,
        () = aged => limits.http2.max_connection_age_grace.unwrap_or(limits.shutdown_grace),
    };
    conn.as_mut().graceful_shutdown();
    // A client that never finishes its request does not get to keep the connection.
    let _ = tokio::time::timeout(grace, conn).await;
}

#[cfg(test)]
pub(crate) mod tests;
