//! What handlers and middleware share: [`AppState`] (storage, telemetry, caches, the route
//! registry) and the [`RequestLimits`] the router applies. Its own module so the router, the
//! handlers and the middleware all depend on it without depending on each other.

use crate::cache::TtlCache;
use crate::db::Db;
use crate::http_metrics::HttpMetrics;
use crate::model::{Page, Review};
use crate::routes::RouteRegistry;
use crate::telemetry::Telemetry;
use crate::upstream::Upstream;
use std::sync::Arc;
use std::time::Duration;

/// Everything handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Storage.
    pub db: Db,
    /// OpenTelemetry handle (no-op when off).
    pub telemetry: Arc<Telemetry>,
    /// Prometheus HTTP metrics.
    pub http_metrics: HttpMetrics,
    /// Per-route labels, span names and bound instruments.
    pub routes: RouteRegistry,
    /// Whether `/metrics` is served and HTTP metrics recorded.
    pub metrics_enabled: bool,
    /// Single reviews by id.
    pub review_cache: TtlCache<Review>,
    /// List pages by normalised query.
    pub list_cache: TtlCache<Page>,
    /// Where `/api/v1/upstream/reviews` goes, if configured.
    pub upstream: Option<Upstream>,
    /// Request timeout and concurrency limit of the API routes.
    pub limits: RequestLimits,
}

/// Bounds on API requests (see [`crate::app::app`] for where they sit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Whole-request timeout, including the wait for a concurrency slot and the body read.
    pub timeout: Duration,
    /// API requests handled at once.
    pub max_concurrent: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30), max_concurrent: 256 }
    }
}

impl AppState {
    /// State with caches of the given TTL and size.
    pub fn new(
        db: Db,
        telemetry: Arc<Telemetry>,
        metrics_enabled: bool,
        cache_ttl: Duration,
        cache_max_entries: usize,
        upstream: Option<Upstream>,
    ) -> Self {
        Self {
            db,
            routes: RouteRegistry::new(telemetry.clone()),
            telemetry,
            http_metrics: HttpMetrics::default(),
            metrics_enabled,
            review_cache: TtlCache::new(cache_ttl, cache_max_entries),
            list_cache: TtlCache::new(cache_ttl, cache_max_entries),
            upstream,
            limits: RequestLimits::default(),
        }
    }

    /// Replaces both caches' byte budget (default [`crate::cache::DEFAULT_MAX_BYTES`] each).
    pub fn with_cache_max_bytes(mut self, ttl: Duration, max_entries: usize, max_bytes: usize) -> Self {
        self.review_cache = TtlCache::new(ttl, max_entries).with_max_bytes(max_bytes);
        self.list_cache = TtlCache::new(ttl, max_entries).with_max_bytes(max_bytes);
        self
    }

    /// Replaces the default request limits.
    pub fn with_limits(mut self, limits: RequestLimits) -> Self {
        self.limits = limits;
        self
    }
}
