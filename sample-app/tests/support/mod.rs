//! Shared fixtures for the integration tests: a real PostgreSQL server in a
//! temp dir, a real OTLP receiver (gRPC and HTTP), the service binary as a
//! child process, and small HTTP helpers.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod otlp;
pub mod postgres;
pub mod service;

use std::time::{Duration, Instant};

/// Polls `f` until it returns `Some`, failing the test with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Directory of the Go-built tools (`tools/build.sh` puts them there).
pub fn tools_bin() -> std::path::PathBuf {
    match std::env::var_os("TELEMETRY_TOOLS_BIN") {
        Some(p) => p.into(),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_default();
            std::path::Path::new(&home).join(".cache/thereview-telemetry/bin")
        }
    }
}
