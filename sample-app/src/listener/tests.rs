//! Raw-socket clients against [`serve`] on port 0. Bounds are loose: they check that a limit
//! applies, not how fast the machine is.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const SLACK: Duration = Duration::from_secs(5);

async fn start(limits: ServerLimits) -> (SocketAddr, CancellationToken) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("test setup");
    let addr = l.local_addr().expect("test setup");
    let stop = CancellationToken::new();
    tokio::spawn(serve(l, Router::new().route("/", get(|| async { "ok" })), limits, stop.clone()));
    (addr, stop)
}

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

async fn get_ok(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else { return false };
    if s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.is_err() {
        return false;
    }
    String::from_utf8_lossy(&read_to_close(&mut s).await).starts_with("HTTP/1.1 200")
}

#[tokio::test]
async fn slowloris_is_cut_off_within_the_header_timeout() {
    let limits = ServerLimits { read_header_timeout: Some(Duration::from_millis(500)), ..ServerLimits::default() };
    let (addr, stop) = start(limits).await;
    let (mut r, mut w) = TcpStream::connect(addr).await.expect("test setup").into_split();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        let _ = w.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ").await;
        while w.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut r)).await.expect("slowloris never cut off");
    let took = started.elapsed();
    dribble.abort();
    assert!(took >= Duration::from_millis(400), "closed before the header timeout: {took:?}");
    assert!(took < Duration::from_millis(500) + SLACK, "closed too late: {took:?}");
    assert!(get_ok(addr).await);
    stop.cancel();
}

#[tokio::test]
async fn idle_connections_beyond_the_connection_limit_do_not_stop_a_new_client() {
    let limits = ServerLimits {
        read_header_timeout: Some(Duration::from_millis(300)),
        max_connections: 50,
        ..ServerLimits::default()
    };
    let (addr, stop) = start(limits).await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.expect("test setup"));
    }
    let served = tokio::time::timeout(Duration::from_millis(300) * 4 + SLACK, get_ok(addr)).await;
    assert_eq!(served, Ok(true));
    stop.cancel();
}
