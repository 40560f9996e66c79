//! The router: `app(state) -> Router`, kept apart from `main` so tests drive it without a socket.
//! The state it routes with is [`crate::state`].

use crate::handlers;
use crate::middleware::observe;
pub use crate::state::{AppState, RequestLimits};
use axum::Router;
use axum::routing::get;
use std::sync::Arc;

/// The service's router.
///
/// Layers, outermost first: `observe` (metrics and the server span see every request, including
/// ones the limits answer), then on the API routes only the request timeout (so a request waiting
/// for a concurrency slot times out too, answered 503) and the concurrency limit (one semaphore
/// shared by all API routes). `/health`, `/ready` and `/metrics` stay outside both, so probes
/// answer while the API is saturated.
pub fn app(state: Arc<AppState>) -> Router {
    let limits = state.limits;
    let api = Router::new()
        .route("/api/v1/reviews", get(handlers::list_reviews).post(handlers::create_review))
        .route(
            "/api/v1/reviews/{id}",
            get(handlers::get_review).put(handlers::update_review).delete(handlers::delete_review),
        )
        .route("/api/v1/upstream/reviews", get(handlers::upstream_reviews))
        .route_layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_concurrent))
        .route_layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            limits.timeout,
        ));
    Router::new()
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .merge(api)
        .fallback(handlers::fallback)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}
