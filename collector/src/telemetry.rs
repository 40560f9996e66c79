//! The collector's own metrics, exposed in Prometheus text format on `:8888/metrics` with the
//! upstream metric names (`otelcol_receiver_accepted_spans_total`, ...). The text is written by
//! `prom-text`, the workspace's one encoder of the format, like the `prometheus` exporter's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prom_text::{Encoder, MetricType, NO_LABELS, Value};

use crate::config::id::Signal;

/// A monotonically increasing counter handle.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge handle.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Adds (or subtracts) `d`.
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
enum Instrument {
    Counter(Counter),
    Gauge(Gauge),
}

type Key = (String, Vec<(String, String)>);

/// Registry of all own metrics.
#[derive(Debug)]
pub struct Telemetry {
    instruments: Mutex<BTreeMap<Key, Instrument>>,
    help: Mutex<BTreeMap<String, &'static str>>,
    started: Instant,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self { instruments: Mutex::default(), help: Mutex::default(), started: Instant::now() }
    }
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    (name.to_owned(), labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

impl Telemetry {
    /// A new, empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Gets or creates a counter. `name` excludes the `_total` suffix added on exposition.
    pub fn counter(&self, name: &str, help: &'static str, labels: &[(&str, &str)]) -> Counter {
        self.help.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), help);
        let mut map = self.instruments.lock().unwrap_or_else(|e| e.into_inner());
        match map.entry(key(name, labels)).or_insert_with(|| Instrument::Counter(Counter::default())) {
            Instrument::Counter(c) => c.clone(),
            // Name collisions between kinds are programming errors; hand out a detached counter.
            Instrument::Gauge(_) => Counter::default(),
        }
    }

    /// Gets or creates a gauge.
    pub fn gauge(&self, name: &str, help: &'static str, labels: &[(&str, &str)]) -> Gauge {
        self.help.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), help);
        let mut map = self.instruments.lock().unwrap_or_else(|e| e.into_inner());
        match map.entry(key(name, labels)).or_insert_with(|| Instrument::Gauge(Gauge::default())) {
            Instrument::Gauge(g) => g.clone(),
            Instrument::Counter(_) => Gauge::default(),
        }
    }

    /// Reads a counter value (0 when absent); used by tests and the shutdown summary.
    pub fn counter_value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.instruments.lock().unwrap_or_else(|e| e.into_inner()).get(&key(name, labels)) {
            Some(Instrument::Counter(c)) => c.get(),
            _ => 0,
        }
    }

    /// Renders everything in Prometheus text exposition format (served as [`prom_text::CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut enc = Encoder::new();
        let uptime = self.started.elapsed().as_secs_f64();
        enc.family("otelcol_process_uptime_seconds_total", "Uptime of the process", MetricType::Counter);
        enc.sample("otelcol_process_uptime_seconds_total", NO_LABELS, uptime, None);
        if let Some(rss) = crate::process_memory::current_rss_bytes() {
            let name = "otelcol_process_memory_rss_bytes";
            enc.family(name, "Total physical memory (resident set size)", MetricType::Gauge);
            enc.sample(name, NO_LABELS, rss, None);
        }
        let help = self.help.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let map = self.instruments.lock().unwrap_or_else(|e| e.into_inner());
        // The map is sorted by name, so a family's series are adjacent: one header per name.
        let mut last_name: Option<&str> = None;
        for ((name, labels), inst) in map.iter() {
            let (full, ty, value) = match inst {
                Instrument::Counter(c) => (format!("{name}_total"), MetricType::Counter, Value::from(c.get())),
                Instrument::Gauge(g) => (name.clone(), MetricType::Gauge, Value::from(g.get())),
            };
            if last_name != Some(name.as_str()) {
                enc.family(&full, help.get(name).copied().unwrap_or(""), ty);
                last_name = Some(name);
            }
            enc.sample(&full, labels, value, None);
        }
        enc.finish()
    }
}

/// Upstream's per-signal item suffix.
pub fn item_suffix(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "spans",
        Signal::Metrics => "metric_points",
        Signal::Logs => "log_records",
    }
}

/// Receiver counters for one receiver + transport.
#[derive(Debug, Clone)]
pub struct ReceiverMetrics {
    accepted: [Counter; 3],
    refused: [Counter; 3],
}

fn idx(s: Signal) -> usize {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

const SIGNALS: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

impl ReceiverMetrics {
    /// Registers `otelcol_receiver_{accepted,refused}_*` for `receiver`/`transport`.
    pub fn new(t: &Telemetry, receiver: &str, transport: &str) -> Self {
        let l = [("receiver", receiver), ("transport", transport)];
        Self {
            accepted: SIGNALS.map(|s| {
                t.counter(
                    &format!("otelcol_receiver_accepted_{}", item_suffix(s)),
                    "Number of items successfully pushed into the pipeline.",
                    &l,
                )
            }),
            refused: SIGNALS.map(|s| {
                t.counter(
                    &format!("otelcol_receiver_refused_{}", item_suffix(s)),
                    "Number of items that could not be pushed into the pipeline.",
                    &l,
                )
            }),
        }
    }
    /// Counts accepted items.
    pub fn accepted(&self, s: Signal, n: usize) {
        self.accepted[idx(s)].add(n as u64);
    }
    /// Counts refused items.
    pub fn refused(&self, s: Signal, n: usize) {
        self.refused[idx(s)].add(n as u64);
    }
}

/// Exporter counters for one exporter.
#[derive(Debug, Clone)]
pub struct ExporterMetrics {
    sent: [Counter; 3],
    send_failed: [Counter; 3],
    enqueue_failed: [Counter; 3],
    /// Retry attempts after retryable failures (not an upstream metric; makes outages visible).
    pub retries: Counter,
    /// Items the server rejected in a partial success response.
    pub partial_rejected: Counter,
    /// Current number of batches in the sending queue.
    pub queue_size: Gauge,
    /// Capacity of the sending queue.
    pub queue_capacity: Gauge,
}

impl ExporterMetrics {
    /// Registers `otelcol_exporter_*` for `exporter`.
    pub fn new(t: &Telemetry, exporter: &str) -> Self {
        let l = [("exporter", exporter)];
        Self {
            sent: SIGNALS.map(|s| {
                t.counter(
                    &format!("otelcol_exporter_sent_{}", item_suffix(s)),
                    "Number of items successfully sent to destination.",
                    &l,
                )
            }),
            send_failed: SIGNALS.map(|s| {
                t.counter(
                    &format!("otelcol_exporter_send_failed_{}", item_suffix(s)),
                    "Number of items in failed attempts to send to destination.",
                    &l,
                )
            }),
            enqueue_failed: SIGNALS.map(|s| {
                t.counter(
                    &format!("otelcol_exporter_enqueue_failed_{}", item_suffix(s)),
                    "Number of items failed to be added to the sending queue.",
                    &l,
                )
            }),
            retries: t.counter("otelcol_exporter_retries", "Number of retried export attempts.", &l),
            partial_rejected: t.counter(
                "otelcol_exporter_partial_success_rejected_items",
                "Items the destination rejected in partial success responses.",
                &l,
            ),
            queue_size: t.gauge("otelcol_exporter_queue_size", "Current size of the retry queue (in batches).", &l),
            queue_capacity: t.gauge(
                "otelcol_exporter_queue_capacity",
                "Fixed capacity of the retry queue (in batches).",
                &l,
            ),
        }
    }
    /// Counts sent items.
    pub fn sent(&self, s: Signal, n: usize) {
        self.sent[idx(s)].add(n as u64);
    }
    /// Counts items whose export failed for good.
    pub fn send_failed(&self, s: Signal, n: usize) {
        self.send_failed[idx(s)].add(n as u64);
    }
    /// Counts items refused because the queue was full.
    pub fn enqueue_failed(&self, s: Signal, n: usize) {
        self.enqueue_failed[idx(s)].add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names() {
        let t = Telemetry::default();
        let r = ReceiverMetrics::new(&t, "otlp", "grpc");
        r.accepted(Signal::Traces, 3);
        let e = ExporterMetrics::new(&t, "otlp/alloy");
        e.queue_capacity.set(1000);
        let text = t.render();
        assert!(
            text.contains("otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"} 3"),
            "{text}"
        );
        assert!(text.contains("# TYPE otelcol_exporter_queue_capacity gauge"));
        assert!(text.contains("otelcol_exporter_queue_capacity{exporter=\"otlp/alloy\"} 1000"));
        assert_eq!(
            t.counter_value("otelcol_receiver_accepted_spans", &[("receiver", "otlp"), ("transport", "grpc")]),
            3
        );
    }

    /// Component ids come from YAML keys, which may hold any character: a newline in a label value
    /// must not split the sample line.
    #[test]
    fn label_values_escape_newlines_quotes_and_backslashes() {
        let t = Telemetry::default();
        t.counter("otelcol_test_items", "Items.", &[("exporter", "otlp/a\nb\"c\\d")]).add(1);
        let text = t.render();
        assert!(text.contains("otelcol_test_items_total{exporter=\"otlp/a\\nb\\\"c\\\\d\"} 1\n"), "{text}");
    }

    /// Counters are u64; past i64::MAX they must not come out negative.
    #[test]
    fn counters_are_written_exactly_over_the_whole_u64_range() {
        let t = Telemetry::default();
        t.counter("otelcol_test_items", "Items.", &[]).add(u64::MAX);
        let text = t.render();
        assert!(text.contains("\notelcol_test_items_total 18446744073709551615\n"), "{text}");
    }

    #[test]
    fn self_metrics_pass_promtool() {
        let t = Telemetry::default();
        let r = ReceiverMetrics::new(&t, "otlp", "grpc");
        r.accepted(Signal::Metrics, 5);
        let e = ExporterMetrics::new(&t, "otlp/\"quoted\"\nid");
        e.sent(Signal::Logs, 2);
        e.queue_size.set(-1);
        prom_text::promtool::check_metrics(&t.render()).unwrap_or_else(|e| panic!("{e}"));
    }
}
