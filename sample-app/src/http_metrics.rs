//! Prometheus metrics with the names prometheus-fastapi-instrumentator uses,
//! so dashboards built for the FastAPI service keep working:
//! `http_requests_total{handler,method,status}` (status grouped as `2xx`),
//! `http_request_duration_seconds{handler,method}`,
//! `http_request_duration_highr_seconds` and
//! `http_requests_inprogress{handler,method}`.
//!
//! Recording is a mutex-protected map update; rendering is a pure function
//! of a snapshot so the exposition format is unit tested. The format itself
//! (escaping, `+Inf`/`-Inf`/`NaN`) is `prom-text`, the workspace's one
//! encoder of it, shared with the collector.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prom_text::{Encoder, MetricType, NO_LABELS};

/// Buckets of `http_request_duration_seconds` (the instrumentator default).
pub const DURATION_BUCKETS: &[f64] = &[0.1, 0.5, 1.0];
/// Buckets of `http_request_duration_highr_seconds` (the instrumentator default).
pub const HIGHR_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 7.5, 10.0, 30.0, 60.0,
];

/// A cumulative histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Upper bounds.
    pub bounds: &'static [f64],
    /// Non-cumulative count per bucket, plus one overflow slot.
    pub counts: Vec<u64>,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Empty histogram over `bounds`.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    /// Records one value.
    pub fn observe(&mut self, v: f64) {
        let idx = self.bounds.iter().position(|b| v <= *b).unwrap_or(self.bounds.len());
        self.counts[idx] += 1;
        self.sum += v;
        self.count += 1;
    }
}

/// Everything `/metrics` shows, as plain data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `(handler, method, status group)` -> count.
    pub requests: BTreeMap<(String, String, String), u64>,
    /// `(handler, method)` -> latency histogram.
    pub durations: BTreeMap<(String, String), Histogram>,
    /// Unlabelled high-resolution latency histogram.
    pub highr: Option<Histogram>,
    /// `(handler, method)` -> requests currently being served.
    pub inprogress: BTreeMap<(String, String), i64>,
    /// Extra counters appended verbatim: `(name, help, value)`.
    pub extra_counters: Vec<(&'static str, &'static str, u64)>,
}

/// The live registry.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    inner: Mutex<Snapshot>,
}

/// Groups a status code the way the instrumentator does by default.
pub fn status_group(code: u16) -> &'static str {
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

impl HttpMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        // Updates are single increments; a poisoned lock still holds valid data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a request as started.
    pub fn start(&self, handler: &str, method: &str) {
        *self.lock().inprogress.entry((handler.to_owned(), method.to_owned())).or_insert(0) += 1;
    }

    /// Marks a request as finished and records its outcome.
    pub fn finish(&self, handler: &str, method: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut s = self.lock();
        let key = (handler.to_owned(), method.to_owned());
        if let Some(n) = s.inprogress.get_mut(&key) {
            *n -= 1;
        }
        *s.requests.entry((key.0.clone(), key.1.clone(), status_group(status).to_owned())).or_insert(0) += 1;
        s.durations.entry(key).or_insert_with(|| Histogram::new(DURATION_BUCKETS)).observe(secs);
        s.highr.get_or_insert_with(|| Histogram::new(HIGHR_BUCKETS)).observe(secs);
    }

    /// A copy of the current values.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }
}

/// Writes `h`'s samples; `Histogram::counts` are per bucket, the format's buckets cumulative.
/// The overflow slot needs no bucket of its own: `h.count` includes it, and is the `+Inf` bucket.
fn write_histogram<K: AsRef<str>, V: AsRef<str>>(enc: &mut Encoder, name: &str, labels: &[(K, V)], h: &Histogram) {
    let cumulative = h.bounds.iter().zip(&h.counts).scan(0u64, |total, (bound, n)| {
        *total += n;
        Some((*bound, *total))
    });
    enc.histogram(name, labels, cumulative, h.sum, h.count, None);
}

/// Renders a snapshot in the Prometheus text exposition format 0.0.4 (served as
/// [`prom_text::CONTENT_TYPE`]).
pub fn render(s: &Snapshot) -> String {
    let mut enc = Encoder::with_capacity(4096);
    enc.family("http_requests_total", "Total number of requests by method, status and handler.", MetricType::Counter);
    for ((handler, method, status), n) in &s.requests {
        let labels = [("handler", handler), ("method", method), ("status", status)];
        enc.sample("http_requests_total", &labels, *n, None);
    }
    enc.family(
        "http_request_duration_seconds",
        "Latency with only few buckets by handler. Made to be only used if aggregation by handler is important.",
        MetricType::Histogram,
    );
    for ((handler, method), h) in &s.durations {
        write_histogram(&mut enc, "http_request_duration_seconds", &[("handler", handler), ("method", method)], h);
    }
    enc.family(
        "http_request_duration_highr_seconds",
        "Latency with many buckets but no API specific labels. Made for more accurate percentile calculations.",
        MetricType::Histogram,
    );
    let empty = Histogram::new(HIGHR_BUCKETS);
    write_histogram(&mut enc, "http_request_duration_highr_seconds", NO_LABELS, s.highr.as_ref().unwrap_or(&empty));
    enc.family("http_requests_inprogress", "Number of HTTP requests in progress.", MetricType::Gauge);
    for ((handler, method), n) in &s.inprogress {
        enc.sample("http_requests_inprogress", &[("handler", handler), ("method", method)], *n, None);
    }
    for (name, help, value) in &s.extra_counters {
        enc.family(name, help, MetricType::Counter);
        enc.sample(name, NO_LABELS, *value, None);
    }
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_renders_instrumentator_names() {
        let m = HttpMetrics::default();
        m.start("/api/v1/reviews", "GET");
        m.finish("/api/v1/reviews", "GET", 200, Duration::from_millis(30));
        m.start("/api/v1/reviews", "GET");
        m.finish("/api/v1/reviews", "GET", 422, Duration::from_millis(700));
        let text = render(&m.snapshot());
        assert!(text.contains("http_requests_total{handler=\"/api/v1/reviews\",method=\"GET\",status=\"2xx\"} 1\n"));
        assert!(text.contains("http_requests_total{handler=\"/api/v1/reviews\",method=\"GET\",status=\"4xx\"} 1\n"));
        assert!(text.contains(
            "http_request_duration_seconds_bucket{handler=\"/api/v1/reviews\",method=\"GET\",le=\"0.1\"} 1\n"
        ));
        assert!(
            text.contains(
                "http_request_duration_seconds_bucket{handler=\"/api/v1/reviews\",method=\"GET\",le=\"1\"} 2\n"
            )
        );
        assert!(text.contains(
            "http_request_duration_seconds_bucket{handler=\"/api/v1/reviews\",method=\"GET\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("http_request_duration_seconds_count{handler=\"/api/v1/reviews\",method=\"GET\"} 2\n"));
        assert!(text.contains("http_request_duration_highr_seconds_count 2\n"));
        assert!(text.contains("http_requests_inprogress{handler=\"/api/v1/reviews\",method=\"GET\"} 0\n"));
    }

    #[test]
    fn labels_are_escaped() {
        let m = HttpMetrics::default();
        m.finish("a\"b", "GET", 500, Duration::ZERO);
        assert!(render(&m.snapshot()).contains("handler=\"a\\\"b\""));
    }

    /// `-Inf` used to come out as `+Inf`: every infinity was written as `+Inf`.
    #[test]
    fn negative_infinity_is_written_as_minus_inf() {
        let mut highr = Histogram::new(HIGHR_BUCKETS);
        highr.observe(f64::NEG_INFINITY);
        let text = render(&Snapshot { highr: Some(highr), ..Snapshot::default() });
        assert!(text.contains("\nhttp_request_duration_highr_seconds_sum -Inf\n"), "{text}");
        assert!(text.contains("\nhttp_request_duration_highr_seconds_bucket{le=\"+Inf\"} 1\n"), "{text}");
    }

    #[test]
    fn rendered_snapshot_passes_promtool() {
        let m = HttpMetrics::default();
        m.start("/api/v1/reviews/{id}", "GET");
        m.finish("/api/v1/reviews/{id}", "GET", 404, Duration::from_millis(3));
        m.start("/odd\"path\\\n", "POST");
        let mut snap = m.snapshot();
        snap.extra_counters = vec![("telemetry_spans_exported_total", "Spans exported.", u64::MAX)];
        prom_text::promtool::check_metrics(&render(&snap)).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn status_groups() {
        assert_eq!(status_group(204), "2xx");
        assert_eq!(status_group(404), "4xx");
        assert_eq!(status_group(503), "5xx");
    }
}
