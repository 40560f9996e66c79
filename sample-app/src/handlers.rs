//! HTTP handlers: thin glue between requests, validation (`model`), the
//! read cache, storage (`db`) and telemetry instruments.

use crate::cache::TtlCache;
use crate::error::ApiError;
use crate::http_metrics;
use crate::model::{self, Page, Review};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

type Shared = State<Arc<AppState>>;

/// Looks `key` up in `cache` inside a `cache.get` span carrying a
/// `cache.hit`/`cache.miss` event.
fn cached<V: Clone + crate::cache::Weight>(
    state: &AppState,
    cache: &TtlCache<V>,
    cache_name: &'static str,
    key: &str,
) -> Option<V> {
    if !cache.enabled() {
        return None;
    }
    let found = cache.get(key, Instant::now());
    let hit = found.is_some();
    let attrs = vec![KeyValue::new("cache.name", cache_name), KeyValue::new("cache.hit", hit)];
    if let Some(mut span) = state.telemetry.child_span("cache.get", SpanKind::Internal, attrs) {
        span.add_event(if hit { "cache.hit" } else { "cache.miss" }, vec![KeyValue::new("cache.key", key.to_owned())]);
    }
    found
}

fn parse_body(body: &Bytes) -> Result<model::ReviewInput, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    model::validate_review(&value).map_err(ApiError::Validation)
}

fn record_rating(state: &AppState, review: &Review, created: bool) {
    state.telemetry.record_review(&review.entity_type, review.rating as u64, created);
}

/// `GET /health`: the process is alive.
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /ready`: the database answers.
pub async fn ready(State(state): Shared) -> Result<Json<serde_json::Value>, ApiError> {
    state.db.ping().await?;
    Ok(Json(json!({"status": "ready", "database": state.db.backend().system()})))
}

/// `GET /metrics`: Prometheus exposition (404 when `ENABLE_METRICS=false`).
pub async fn metrics(State(state): Shared) -> Result<Response, ApiError> {
    if !state.metrics_enabled {
        return Err(ApiError::NotFound("metrics are disabled (ENABLE_METRICS=false)".into()));
    }
    let mut snap = state.http_metrics.snapshot();
    let stats = &state.telemetry.stats;
    snap.extra_counters = vec![
        (
            "telemetry_spans_dropped_total",
            "Spans dropped: export queue full, or not recorded while export backs off.",
            stats.spans_dropped.load(Ordering::Relaxed),
        ),
        (
            "telemetry_spans_export_failed_total",
            "Spans whose OTLP export failed or timed out.",
            stats.spans_export_failed.load(Ordering::Relaxed),
        ),
        ("telemetry_spans_exported_total", "Spans exported over OTLP.", stats.spans_exported.load(Ordering::Relaxed)),
    ];
    let mut resp = http_metrics::render(&snap).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(prom_text::CONTENT_TYPE));
    Ok(resp)
}

/// `GET /api/v1/reviews`: filtered, paginated list.
pub async fn list_reviews(
    State(state): Shared,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(pairs) =
        query.map_err(|e| ApiError::Validation(vec![crate::model::FieldError::new("query", e.body_text())]))?;
    let q = model::parse_list_query(&pairs).map_err(ApiError::Validation)?;
    let key = q.cache_key();
    if let Some(page) = cached(&state, &state.list_cache, "reviews.list", &key) {
        return Ok(Json(page));
    }
    let generation = state.list_cache.generation();
    let page = state.db.list(&q).await?;
    state.list_cache.insert(key, page.clone(), generation, Instant::now());
    Ok(Json(page))
}

/// `POST /api/v1/reviews`: create; 422 names every invalid field.
pub async fn create_review(State(state): Shared, body: Bytes) -> Result<Response, ApiError> {
    let input = parse_body(&body)?;
    let review = state.db.create(&input, &model::now_rfc3339()).await?;
    state.list_cache.clear();
    record_rating(&state, &review, true);
    let location = format!("/api/v1/reviews/{}", review.id);
    let mut resp = (StatusCode::CREATED, Json(review)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("review {id} not found"))
}

/// `GET /api/v1/reviews/{id}`.
pub async fn get_review(State(state): Shared, Path(id): Path<String>) -> Result<Json<Review>, ApiError> {
    let id = model::parse_id(&id).map_err(ApiError::Validation)?;
    let key = id.to_string();
    if let Some(r) = cached(&state, &state.review_cache, "reviews.get", &key) {
        return Ok(Json(r));
    }
    let generation = state.review_cache.generation();
    let review = state.db.get(id).await?.ok_or_else(|| not_found(id))?;
    state.review_cache.insert(key, review.clone(), generation, Instant::now());
    Ok(Json(review))
}

/// `PUT /api/v1/reviews/{id}`: full replacement.
pub async fn update_review(
    State(state): Shared,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Review>, ApiError> {
    let id = model::parse_id(&id).map_err(ApiError::Validation)?;
    let input = parse_body(&body)?;
    let review = state.db.update(id, &input, &model::now_rfc3339()).await?.ok_or_else(|| not_found(id))?;
    state.review_cache.invalidate(&id.to_string());
    state.list_cache.clear();
    record_rating(&state, &review, false);
    Ok(Json(review))
}

/// `DELETE /api/v1/reviews/{id}`: 204, or 404 when absent.
pub async fn delete_review(State(state): Shared, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = model::parse_id(&id).map_err(ApiError::Validation)?;
    if !state.db.delete(id).await? {
        return Err(not_found(id));
    }
    state.review_cache.invalidate(&id.to_string());
    state.list_cache.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/upstream/reviews`: lists reviews from the configured
/// upstream service (passing the query through), so one trace spans both.
pub async fn upstream_reviews(State(state): Shared, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let upstream = state.upstream.as_ref().ok_or(ApiError::UpstreamNotConfigured)?;
    let r = upstream.list_reviews(query.as_deref(), &state.telemetry).await?;
    if r.status >= 500 {
        return Err(ApiError::Upstream(format!("upstream answered {}", r.status)));
    }
    let status = StatusCode::from_u16(r.status).map_err(|e| ApiError::Upstream(e.to_string()))?;
    let mut resp = (status, r.body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// Unknown route.
pub async fn fallback() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
