//! Per-request observation: the OpenTelemetry server span (named by route
//! template, with HTTP semantic-convention attributes), Prometheus HTTP
//! metrics, the custom OTel request instruments, and the JSON access log
//! carrying trace and span ids.

use crate::app::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{HOST, USER_AGENT};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use std::sync::Arc;
use std::time::Instant;

/// Route label for requests that matched no route (instrumentator's name).
pub const UNMATCHED_HANDLER: &str = "none";

/// Decrements the in-progress gauges even if the handler future is dropped
/// (client disconnect), so the gauges never drift.
struct InFlight<'a> {
    state: &'a AppState,
    handler: &'a str,
    method: &'a str,
    start: Instant,
    status: u16,
    attrs: Option<[KeyValue; 2]>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.state.metrics_enabled {
            self.state.http_metrics.finish(self.handler, self.method, self.status, self.start.elapsed());
        }
        if let (Some(ins), Some(attrs)) = (self.state.telemetry.instruments(), &self.attrs) {
            ins.active_requests.add(-1, attrs);
            let mut with_status = attrs.to_vec();
            with_status.push(KeyValue::new("http.response.status_code", i64::from(self.status)));
            ins.processing_time.record(self.start.elapsed().as_secs_f64() * 1000.0, &with_status);
        }
    }
}

/// The observation middleware; see the module docs.
pub async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method: &'static str = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let handler = route.as_deref().unwrap_or(UNMATCHED_HANDLER).to_owned();
    if state.metrics_enabled {
        state.http_metrics.start(&handler, method);
    }
    let mut guard = InFlight { state: &state, handler: &handler, method, start, status: 500, attrs: None };

    let Some(tracer) = state.telemetry.tracer() else {
        let resp = next.run(req).await;
        guard.status = resp.status().as_u16();
        if tracing::enabled!(target: "access", tracing::Level::INFO) {
            tracing::info!(target: "access", method = %method, route = %handler, status = guard.status,
                duration_ms = start.elapsed().as_secs_f64() * 1000.0, "request");
        }
        return resp;
    };

    let inst_attrs = [KeyValue::new("http.request.method", method), KeyValue::new("http.route", handler.clone())];
    if let Some(ins) = state.telemetry.instruments() {
        ins.active_requests.add(1, &inst_attrs);
    }
    guard.attrs = Some(inst_attrs);

    if state.telemetry.stats.export_paused() {
        // Span export is backing off (collector down): the span would be
        // thrown away, so skip building it and its attributes entirely.
        // Without an active span, child spans are skipped too. Metrics
        // still record (they are aggregated, not queued).
        state.telemetry.stats.spans_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // An incoming trace context is still passed on to upstream calls.
        let resp = if req.headers().contains_key("traceparent") {
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
    let name = match &route {
        Some(r) => format!("{method} {r}"),
        None => method.to_owned(),
    };
    let mut attrs = vec![
        KeyValue::new("http.request.method", method),
        KeyValue::new("url.path", req.uri().path().to_owned()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("network.protocol.version", protocol_version(&req)),
    ];
    if let Some(r) = &route {
        attrs.push(KeyValue::new("http.route", r.clone()));
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
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attrs)
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
    let sc = span.span_context().clone();
    span.end();
    if tracing::enabled!(target: "access", tracing::Level::INFO) {
        tracing::info!(target: "access", trace_id = %sc.trace_id(), span_id = %sc.span_id(),
            method = %method, route = %handler, status = status,
            duration_ms = start.elapsed().as_secs_f64() * 1000.0, "request");
    }
    resp
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
