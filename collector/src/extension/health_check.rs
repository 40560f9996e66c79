//! `health_check` extension: answers 200 while the collector is running and 503 while starting
//! or shutting down, with upstream's JSON body.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

/// Readiness flag shared with the service.
#[derive(Debug)]
pub struct Health {
    ready: AtomicBool,
    since: SystemTime,
}

impl Health {
    /// Starts not ready.
    pub fn new() -> Arc<Self> {
        Arc::new(Self { ready: AtomicBool::new(false), since: SystemTime::now() })
    }
    /// Sets readiness.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// Router serving the status at `path`.
pub fn app(path: &str, health: Arc<Health>) -> Router {
    Router::new().route(path, get(status)).with_state(health)
}

async fn status(State(h): State<Arc<Health>>) -> impl IntoResponse {
    let up_since = h.since.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let uptime = h.since.elapsed().map(|d| format!("{:.3}s", d.as_secs_f64())).unwrap_or_default();
    if h.ready.load(Ordering::SeqCst) {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "Server available", "upSince": up_since, "uptime": uptime})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "Server not available", "upSince": up_since, "uptime": uptime})),
        )
    }
}
