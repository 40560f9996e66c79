//! Per-route request bookkeeping, resolved once per (route, method) instead
//! of once per request.
//!
//! Every request needs the same few things derived from its route template
//! and method: the Prometheus `handler` label, the span name
//! (`GET /api/v1/reviews/{id}`), the `http.route` value, and the request
//! instruments with their attributes. Building these per request cost an
//! allocation per string and, for each metric measurement, a hash of the
//! attribute set to find its aggregator. Here they are built on the first
//! request of each (route, method) and kept: strings as `&'static str`, the
//! instruments bound to their attributes (the SDK's bound instruments, which
//! skip the attribute lookup).
//!
//! The registry is bounded: routes come from the router's templates (plus
//! `none` for unmatched requests) and methods are folded to the ten standard
//! names and `_OTHER` (see [`crate::middleware::method_label`]), so a client
//! cannot grow it. The same holds for the status codes bound per entry: the
//! service only answers with the handful of codes it produces.

use crate::telemetry::{Instruments, Telemetry};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundHistogram, BoundUpDownCounter, Histogram};
use std::sync::{Arc, RwLock};

/// Route label for requests that matched no route (instrumentator's name).
pub const UNMATCHED_HANDLER: &str = "none";

/// What the middleware needs for one (route, method).
#[derive(Debug)]
pub struct RouteEntry {
    /// Prometheus `handler` label: the route template, or `none`.
    pub handler: &'static str,
    /// `http.route`: the route template; `None` for unmatched requests.
    pub route: Option<&'static str>,
    /// The method label ([`crate::middleware::method_label`]).
    pub method: &'static str,
    /// Server span name: `{method} {route}`, or the method alone.
    pub span_name: &'static str,
    /// The request instruments bound to this entry; `None` when telemetry is off.
    pub instruments: Option<BoundRequestInstruments>,
}

/// `reviews.active_requests` and `reviews.processing_time` bound to one
/// (route, method), the latter per response status.
#[derive(Debug)]
pub struct BoundRequestInstruments {
    /// `reviews.active_requests{http.request.method, http.route}`.
    pub active: BoundUpDownCounter<i64>,
    processing_time: Histogram<f64>,
    method: &'static str,
    handler: &'static str,
    /// `reviews.processing_time` bound per `http.response.status_code`.
    by_status: RwLock<Vec<(u16, BoundHistogram<f64>)>>,
}

impl BoundRequestInstruments {
    fn new(ins: &Instruments, method: &'static str, handler: &'static str) -> Self {
        let attrs = [KeyValue::new("http.request.method", method), KeyValue::new("http.route", handler)];
        Self {
            active: ins.active_requests.bind(&attrs),
            processing_time: ins.processing_time.clone(),
            method,
            handler,
            by_status: RwLock::new(Vec::new()),
        }
    }

    /// Records one request's processing time (ms) under its status.
    pub fn record_processing_time(&self, status: u16, ms: f64) {
        {
            let by_status = self.by_status.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, h)) = by_status.iter().find(|(s, _)| *s == status) {
                h.record(ms);
                return;
            }
        }
        let mut by_status = self.by_status.write().unwrap_or_else(|p| p.into_inner());
        if let Some((_, h)) = by_status.iter().find(|(s, _)| *s == status) {
            h.record(ms);
            return;
        }
        let bound = self.processing_time.bind(&[
            KeyValue::new("http.request.method", self.method),
            KeyValue::new("http.route", self.handler),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ]);
        bound.record(ms);
        by_status.push((status, bound));
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct RouteRegistry {
    telemetry: Arc<Telemetry>,
    entries: RwLock<Vec<Arc<RouteEntry>>>,
}

/// Makes a string live for the rest of the process. Only used for the
/// registry's bounded set of span names (see the module docs), each built
/// once, so that spans can carry them without an allocation per request.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

impl RouteRegistry {
    /// An empty registry; entries bind instruments from `telemetry` when on.
    pub fn new(telemetry: Arc<Telemetry>) -> Self {
        Self { telemetry, entries: RwLock::new(Vec::new()) }
    }

    /// The entry for `route` (a matched route template, or `None`) and a
    /// method label, created on first use.
    pub fn get(&self, route: Option<&str>, method: &'static str) -> Arc<RouteEntry> {
        let matches = |e: &RouteEntry| e.method == method && e.route == route;
        {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = entries.iter().find(|e| matches(e)) {
                return e.clone();
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.iter().find(|e| matches(e)) {
            return e.clone();
        }
        let route: Option<&'static str> = route.map(|r| leak(r.to_owned()));
        let handler = route.unwrap_or(UNMATCHED_HANDLER);
        let span_name = match route {
            Some(r) => leak(format!("{method} {r}")),
            None => method,
        };
        let instruments = self.telemetry.instruments().map(|ins| BoundRequestInstruments::new(ins, method, handler));
        let entry = Arc::new(RouteEntry { handler, route, method, span_name, instruments });
        entries.push(entry.clone());
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_built_once_per_route_and_method() {
        let registry = RouteRegistry::new(Arc::new(Telemetry::disabled()));
        let a = registry.get(Some("/api/v1/reviews/{id}"), "GET");
        assert_eq!(a.span_name, "GET /api/v1/reviews/{id}");
        assert_eq!(a.handler, "/api/v1/reviews/{id}");
        assert!(a.instruments.is_none(), "no instruments when telemetry is off");
        let again = registry.get(Some("/api/v1/reviews/{id}"), "GET");
        assert!(Arc::ptr_eq(&a, &again));
        let put = registry.get(Some("/api/v1/reviews/{id}"), "PUT");
        assert!(!Arc::ptr_eq(&a, &put));
        let unmatched = registry.get(None, "GET");
        assert_eq!((unmatched.span_name, unmatched.handler, unmatched.route), ("GET", UNMATCHED_HANDLER, None));
    }
}
