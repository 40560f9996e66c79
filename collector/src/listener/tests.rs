//! Raw-socket clients against [`serve`] on port 0: slowloris, idle floods, idle keep-alive
//! connections, stalled bodies, shutdown. Bounds are loose: they check that a limit applies, not
//! how fast the machine is.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::*;

/// Generous upper bound for anything that should happen "soon" on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(5);

fn router() -> Router {
    Router::new().route("/", get(|| async { "ok" })).route(
        "/upload",
        post(|body: Body| async move {
            match axum::body::to_bytes(body, 1 << 20).await {
                Ok(b) => (StatusCode::OK, b.len().to_string()),
                Err(e) if is_body_timeout(&e) => (StatusCode::REQUEST_TIMEOUT, "slow body".to_owned()),
                Err(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too large".to_owned()),
            }
        }),
    )
}

async fn start(limits: ServerLimits) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<std::io::Result<()>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(l, router(), limits, stop.clone()));
    (addr, stop, task)
}

/// Reads until EOF or error; returns everything read.
async fn read_to_close(s: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

pub(crate) async fn get_ok(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else { return false };
    if s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.is_err() {
        return false;
    }
    String::from_utf8_lossy(&read_to_close(&mut s).await).starts_with("HTTP/1.1 200")
}

/// Dribbles a never-ending header one byte at a time and reports how long until the server
/// hung up (`None` if it never did within `cap`).
pub(crate) async fn slowloris(addr: SocketAddr, cap: Duration) -> Option<Duration> {
    slowloris_bytes(addr, b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", cap).await
}

/// Sends `bytes` one every 50 ms (then keeps the connection open) and reports how long until
/// the server hung up (`None` if it never did within `cap`).
pub(crate) async fn slowloris_bytes(addr: SocketAddr, bytes: &'static [u8], cap: Duration) -> Option<Duration> {
    let s = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let (mut r, mut w) = s.into_split();
    let dribble = tokio::spawn(async move {
        for b in bytes {
            if w.write_all(std::slice::from_ref(b)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Hold the connection open, silent.
        std::future::pending::<()>().await;
        drop(w);
    });
    let closed = tokio::time::timeout(cap, read_to_close(&mut r)).await.ok().map(|_| started.elapsed());
    dribble.abort();
    closed
}

#[tokio::test]
async fn slowloris_is_cut_off_within_the_header_timeout() {
    let limits = ServerLimits { read_header_timeout: Some(Duration::from_millis(500)), ..ServerLimits::default() };
    let (addr, stop, _task) = start(limits).await;
    let took = slowloris(addr, Duration::from_secs(20)).await.expect("slowloris connection was never closed");
    assert!(took >= Duration::from_millis(400), "closed before the header timeout: {took:?}");
    assert!(took < Duration::from_millis(500) + SLACK, "closed too late: {took:?}");
    assert!(get_ok(addr).await, "the listener still serves");
    stop.cancel();
}

#[tokio::test]
async fn silent_connection_is_closed_after_the_header_timeout() {
    let limits = ServerLimits { read_header_timeout: Some(Duration::from_millis(300)), ..ServerLimits::default() };
    let (addr, stop, _task) = start(limits).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut s)).await.expect("never closed");
    assert!(started.elapsed() < Duration::from_millis(300) + SLACK);
    stop.cancel();
}

#[tokio::test]
async fn many_idle_connections_do_not_stop_a_new_client() {
    // Default limits: 1000 idle connections take slots but leave room, so a new client is
    // served at once, long before the one-minute header timeout could free anything.
    let (addr, stop, _task) = start(ServerLimits::default()).await;
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let served = tokio::time::timeout(SLACK, get_ok(addr)).await;
    assert_eq!(served, Ok(true), "a new client was not served while 1000 connections idled");
    stop.cancel();
}

#[tokio::test]
async fn idle_connections_beyond_the_connection_limit_are_cut_and_the_new_client_served() {
    // 200 idle connections against 50 slots: every batch is cut at the header timeout, so the
    // new client (queued in the backlog behind them) is served after about four timeouts.
    let limits = ServerLimits {
        read_header_timeout: Some(Duration::from_millis(300)),
        max_connections: 50,
        ..ServerLimits::default()
    };
    let (addr, stop, _task) = start(limits).await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let started = Instant::now();
    let served = tokio::time::timeout(Duration::from_millis(300) * 4 + SLACK, get_ok(addr)).await;
    assert_eq!(served, Ok(true), "new client not served after {:?}", started.elapsed());
    // The first connections were accepted and closed by the server.
    let mut first = idle.swap_remove(0);
    assert!(tokio::time::timeout(SLACK, read_to_close(&mut first)).await.is_ok());
    stop.cancel();
}

#[tokio::test]
async fn keepalive_connection_is_closed_after_the_idle_timeout() {
    let limits = ServerLimits { idle_timeout: Some(Duration::from_millis(300)), ..ServerLimits::default() };
    let (addr, stop, _task) = start(limits).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut s)).await.expect("idle connection kept open");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "closed before the idle timeout: {took:?}");
    assert!(took < Duration::from_millis(300) + SLACK, "closed too late: {took:?}");
    stop.cancel();
}

#[tokio::test]
async fn stalled_body_is_answered_408_after_the_read_timeout() {
    let limits = ServerLimits { read_timeout: Some(Duration::from_millis(300)), ..ServerLimits::default() };
    let (addr, stop, _task) = start(limits).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly-part").await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await.expect("no answer").unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    stop.cancel();
}

#[tokio::test]
async fn shutdown_cuts_a_lingering_request_after_the_grace() {
    let limits = ServerLimits { shutdown_grace: Duration::from_millis(200), ..ServerLimits::default() };
    let (addr, stop, task) = start(limits).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A request whose body never completes: in flight, so idle rules do not apply.
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nx").await.unwrap();
    stop.cancel();
    let started = Instant::now();
    tokio::time::timeout(SLACK, task).await.expect("serve did not return").unwrap().unwrap();
    assert!(started.elapsed() < SLACK);
    assert!(tokio::time::timeout(SLACK, read_to_close(&mut s)).await.is_ok());
}

#[test]
fn zero_disables_and_unset_takes_the_upstream_default() {
    let l = ServerLimits::from_settings(None, Some(Duration::ZERO), Some(Duration::from_secs(5)));
    assert_eq!(l.read_header_timeout, Some(DEFAULT_TIMEOUT));
    assert_eq!(l.idle_timeout, None);
    assert_eq!(l.read_timeout, Some(Duration::from_secs(5)));
}
