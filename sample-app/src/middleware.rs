//! Per-request observation: the OpenTelemetry server span (named by route
//! template, with HTTP semantic-convention attributes), Prometheus HTTP
//! metrics, the custom OTel request instruments, and the JSON access log
//! carrying trace and span ids.

use crate::routes::RouteEntry;
use crate::state::AppState;
use crate::telemetry::TRACEPARENT;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{HOST, USER_AGENT};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{KeyValue, Value};
use std::sync::Arc;
use std::time::Instant;

/// Decrements the in-progress gauges even if the handler future is dropped
/// (client disconnect), so the gauges never drift.
struct InFlight<'a> {
    state: &'a AppState,
    entry: &'a RouteEntry,
    start: Instant,
    status: u16,
    /// Whether `reviews.active_requests` was incremented for this request.
    counted: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        if self.state.metrics_enabled {
            self.state.http_metrics.finish(self.entry.handler, self.entry.method, self.status, elapsed);
        }
        if let (true, Some(ins)) = (self.counted, &self.entry.instruments) {
            ins.active.add(-1);
            ins.record_processing_time(self.status, elapsed.as_secs_f64() * 1000.0);
        }
    }
}

/// The observation middleware; see the module docs.
pub async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method: &'static str = method_label(req.method());
    let entry = state.routes.get(req.extensions().get::<MatchedPath>().map(MatchedPath::as_str), method);
    let handler = entry.handler;
    if state.metrics_enabled {
        state.http_metrics.start(handler, method);
    }
    let mut guard = InFlight { state: &state, entry: &entry, start, status: 500, counted: false };

    let Some(tracer) = state.telemetry.tracer() else {
        let resp = next.run(req).await;
        guard.status = resp.status().as_u16();
        if tracing::enabled!(target: "access", tracing::Level::INFO) {
            tracing::info!(target: "access", method = %method, route = %handler, status = guard.status,
                duration_ms = start.elapsed().as_secs_f64() * 1000.0, "request");
        }
        return resp;
    };

    if let Some(ins) = &entry.instruments {
        ins.active.add(1);
        guard.counted = true;
    }

    if state.telemetry.stats.export_paused() {
        // Span export is backing off (collector down): the span would be
        // thrown away, so skip building it and its attributes entirely.
        // Without an active span, child spans are skipped too. Metrics
        // still record (they are aggregated, not queued).
        state.telemetry.stats.spans_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // An incoming trace context is still passed on to upstream calls.
        let resp = if req.headers().contains_key(&TRACEPARENT) {
            let parent = state.telemetry.extract(req.headers());
            next.run(req).with_context(parent).await
        } else {
            next.run(req).await
        };
        guard.status = resp.status().as_u16();
        if tracing::enabled!(target: "access", tracing::Level::INFO) {
            tracing::info!(target: "access", method = %method, route = %handler, status = guard.status,
                duration_ms = start.elapsed().as_secs_f64() * 1000.0, "request");
        }
        return resp;
    }

    let parent = state.telemetry.extract(req.headers());
    let span = tracer
        .span_builder(entry.span_name)
        .with_kind(SpanKind::Server)
        .with_attributes(request_attributes(&req, &entry))
        .start_with_context(tracer, &parent);
    let cx = parent.with_span(span);

    let resp = next.run(req).with_context(cx.clone()).await;
    let status = resp.status().as_u16();
    guard.status = status;
    let span = cx.span();
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
    if status >= 500 {
        // Server spans: only 5xx are errors (4xx are the client's fault).
        span.set_attribute(KeyValue::new("error.type", status.to_string()));
        span.set_status(Status::error(format!("HTTP {status}")));
    }
    span.end();
    if tracing::enabled!(target: "access", tracing::Level::INFO) {
        let sc = span.span_context();
        tracing::info!(target: "access", trace_id = %sc.trace_id(), span_id = %sc.span_id(),
            method = %method, route = %handler, status = status,
            duration_ms = start.elapsed().as_secs_f64() * 1000.0, "request");
    }
    resp
}

/// The server span's request attributes (HTTP semantic conventions). Fixed
/// strings are `&'static str` and the vector has room for the attributes
/// added when the response is known, so the only allocations are for the
/// values that come from the request itself.
fn request_attributes(req: &Request, entry: &RouteEntry) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(12);
    let path = req.uri().path();
    attrs.push(KeyValue::new("http.request.method", entry.method));
    // A route without parameters is its own path: no copy needed.
    let path: Value = match entry.route {
        Some(r) if r == path => r.into(),
        _ => path.to_owned().into(),
    };
    attrs.push(KeyValue::new("url.path", path));
    attrs.push(KeyValue::new("url.scheme", "http"));
    attrs.push(KeyValue::new("network.protocol.version", protocol_version(req)));
    if let Some(r) = entry.route {
        attrs.push(KeyValue::new("http.route", r));
    }
    if let Some(q) = req.uri().query() {
        attrs.push(KeyValue::new("url.query", q.to_owned()));
    }
    if let Some(host) = req.headers().get(HOST).and_then(|h| h.to_str().ok()) {
        let (addr, port) = split_host(host);
        attrs.push(KeyValue::new("server.address", addr.to_owned()));
        if let Some(p) = port {
            attrs.push(KeyValue::new("server.port", p));
        }
    }
    if let Some(ua) = req.headers().get(USER_AGENT).and_then(|h| h.to_str().ok()) {
        attrs.push(KeyValue::new("user_agent.original", ua.to_owned()));
    }
    attrs
}

/// Method label: the standard methods as themselves, anything else as
/// `_OTHER` (the semantic-convention value), so clients cannot blow up
/// metric cardinality with made-up methods.
pub fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

fn protocol_version(req: &Request) -> &'static str {
    match req.version() {
        axum::http::Version::HTTP_09 => "0.9",
        axum::http::Version::HTTP_10 => "1.0",
        axum::http::Version::HTTP_2 => "2",
        axum::http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Splits a `Host` header into address and port.
pub fn split_host(host: &str) -> (&str, Option<i64>) {
    match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<i64>() {
            Ok(port) => (h, Some(port)),
            Err(_) => (host, None),
        },
        _ => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_are_folded() {
        let custom = axum::http::Method::from_bytes(b"FROBNICATE").expect("method");
        assert_eq!(method_label(&custom), "_OTHER");
        assert_eq!(method_label(&axum::http::Method::GET), "GET");
    }

    #[test]
    fn host_splitting() {
        assert_eq!(split_host("example.com:8080"), ("example.com", Some(8080)));
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(split_host("[::1]:80"), ("[::1]", Some(80)));
    }
}
