//! Prometheus metrics with the names prometheus-fastapi-instrumentator uses,
//! so dashboards built for the FastAPI service keep working:
//! `http_requests_total{handler,method,status}` (status grouped as `2xx`),
//! `http_request_duration_seconds{handler,method}`,
//! `http_request_duration_highr_seconds` and
//! `http_requests_inprogress{handler,method}`.
//!
//! Recording is a mutex-protected map update; rendering is a pure function
//! of a snapshot so the exposition format is unit tested.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

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

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn fmt_f64(v: f64) -> String {
    if v.is_infinite() { "+Inf".to_owned() } else { format!("{v}") }
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, b) in h.bounds.iter().chain(std::iter::once(&f64::INFINITY)).enumerate() {
        cumulative += h.counts[i];
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{}\"}} {cumulative}", fmt_f64(*b));
    }
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {}", fmt_f64(h.sum));
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

/// Renders a snapshot in the Prometheus text exposition format 0.0.4.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("# HELP http_requests_total Total number of requests by method, status and handler.\n");
    out.push_str("# TYPE http_requests_total counter\n");
    for ((handler, method, status), n) in &s.requests {
        let _ = writeln!(
            out,
            "http_requests_total{{handler=\"{}\",method=\"{}\",status=\"{}\"}} {n}",
            escape(handler),
            escape(method),
            escape(status)
        );
    }
    out.push_str("# HELP http_request_duration_seconds Latency with only few buckets by handler. Made to be only used if aggregation by handler is important.\n");
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for ((handler, method), h) in &s.durations {
        let labels = format!("handler=\"{}\",method=\"{}\"", escape(handler), escape(method));
        write_histogram(&mut out, "http_request_duration_seconds", &labels, h);
    }
    out.push_str("# HELP http_request_duration_highr_seconds Latency with many buckets but no API specific labels. Made for more accurate percentile calculations.\n");
    out.push_str("# TYPE http_request_duration_highr_seconds histogram\n");
    let empty = Histogram::new(HIGHR_BUCKETS);
    write_histogram(&mut out, "http_request_duration_highr_seconds", "", s.highr.as_ref().unwrap_or(&empty));
    out.push_str("# HELP http_requests_inprogress Number of HTTP requests in progress.\n");
    out.push_str("# TYPE http_requests_inprogress gauge\n");
    for ((handler, method), n) in &s.inprogress {
        let _ = writeln!(
            out,
            "http_requests_inprogress{{handler=\"{}\",method=\"{}\"}} {n}",
            escape(handler),
            escape(method)
        );
    }
    for (name, help, value) in &s.extra_counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {value}");
    }
    out
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

    #[test]
    fn status_groups() {
        assert_eq!(status_group(204), "2xx");
        assert_eq!(status_group(404), "4xx");
        assert_eq!(status_group(503), "5xx");
    }
}
