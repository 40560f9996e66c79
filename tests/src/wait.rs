//! Waiting on a condition with a deadline: the only way tests synchronise with the
//! cluster (never a fixed sleep).

use std::future::Future;
use std::time::Duration;

/// How often a condition is re-checked: often enough to add little latency, rarely
/// enough not to load a 2-core machine's API server.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Calls `check` until it returns `Some`, and returns that value.
///
/// # Panics
/// When `timeout` passes first, naming `what` was awaited.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
