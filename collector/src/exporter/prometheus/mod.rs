//! `prometheus` exporter: keeps the latest value of every series it receives and serves them in
//! the Prometheus text format at `/metrics` on its `endpoint`, like upstream's prometheusexporter.
//! Naming lives in [`naming`], state in [`accumulator`], output in [`render`]; this module is the
//! thin layer that locks the state, counts outcomes and serves HTTP.

pub mod accumulator;
pub mod naming;
pub mod render;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;

use crate::config::id::Signal;
use crate::pdata::edit::fields::Unsupported;
use crate::pdata::{Data, Payload};
use crate::pipeline::{BoxFuture, ConsumeError, Exporter};
use crate::telemetry::{Counter, ExporterMetrics, Telemetry};
use collector_config::exporter::prometheus::PrometheusExporterConfig;

use accumulator::{Accumulator, DEFAULT_MAX_SERIES, IngestOutcome, Settings};

/// Upstream's default `metric_expiration`.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(300);

/// How often ingestion sweeps expired series (scrapes always sweep first).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Builds the accumulator settings from the exporter config.
pub fn settings(cfg: &PrometheusExporterConfig) -> Settings {
    Settings {
        namespace: cfg.namespace.clone().filter(|n| !n.is_empty()),
        const_labels: cfg.const_labels.iter().map(|(k, v)| (naming::label_name(k), v.clone())).collect(),
        resource_to_telemetry: cfg.resource_to_telemetry_conversion.as_ref().is_some_and(|f| f.enabled),
        add_metric_suffixes: cfg.add_metric_suffixes,
        expiration: cfg.metric_expiration.unwrap_or(DEFAULT_EXPIRATION),
        max_series: DEFAULT_MAX_SERIES,
    }
}

#[derive(Debug)]
struct Inner {
    acc: Accumulator,
    last_sweep: Instant,
}

/// The exporter; clone the handle into [`app`] to serve what it holds.
#[derive(Debug, Clone)]
pub struct PrometheusExporter {
    inner: Arc<Mutex<Inner>>,
    send_timestamps: bool,
    metrics: ExporterMetrics,
    /// Points dropped because Prometheus cannot express them.
    unsupported: Counter,
    /// Points refused because the series cap was reached.
    refused: Counter,
}

impl PrometheusExporter {
    /// A new exporter named `id`, registering its counters in `telemetry`.
    pub fn new(id: &str, cfg: &PrometheusExporterConfig, telemetry: &Telemetry, metrics: ExporterMetrics) -> Self {
        let l = [("exporter", id)];
        Self::with_settings(
            settings(cfg),
            cfg.send_timestamps,
            metrics,
            telemetry.counter(
                "otelcol_exporter_prometheus_unsupported_points",
                "Metric points the prometheus exporter dropped because Prometheus cannot express them.",
                &l,
            ),
            telemetry.counter(
                "otelcol_exporter_prometheus_refused_points",
                "Metric points for new series refused because the prometheus exporter's series cap was reached.",
                &l,
            ),
        )
    }

    fn with_settings(
        settings: Settings,
        send_timestamps: bool,
        metrics: ExporterMetrics,
        unsupported: Counter,
        refused: Counter,
    ) -> Self {
        let inner = Inner { acc: Accumulator::new(settings), last_sweep: Instant::now() };
        Self { inner: Arc::new(Mutex::new(inner)), send_timestamps, metrics, unsupported, refused }
    }

    /// The current exposition text (expired series are dropped first).
    pub fn scrape(&self) -> String {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        g.acc.expire(now);
        g.last_sweep = now;
        render::render(&g.acc, self.send_timestamps)
    }
}

impl Exporter for PrometheusExporter {
    fn consume(&self, data: Data) -> BoxFuture<'_, Result<(), ConsumeError>> {
        let result = self.consume_ref(&data).unwrap_or(Ok(()));
        Box::pin(std::future::ready(result))
    }

    /// Folds the data into the exporter's state: reading is all it does, so a fan-out need not
    /// copy a batch for it. Encoded metrics (from an OTLP receiver) are read without decoding.
    fn consume_ref(&self, data: &Data) -> Option<Result<(), ConsumeError>> {
        let ingest = |f: &mut dyn FnMut(&mut Accumulator, Instant) -> Result<IngestOutcome, Unsupported>| {
            let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if now.duration_since(g.last_sweep) >= SWEEP_EVERY {
                g.acc.expire(now);
                g.last_sweep = now;
            }
            f(&mut g.acc, now)
        };
        let outcome = match data {
            Data::Decoded(Payload::Metrics(req)) => ingest(&mut |acc, now| Ok(acc.ingest(req, now))),
            Data::Encoded(e) if e.signal() == Signal::Metrics => ingest(&mut |acc, now| {
                let mut total = IngestOutcome::default();
                for chunk in e.chunks() {
                    total += acc.ingest_encoded(chunk, now)?;
                }
                Ok(total)
            }),
            _ => return Some(Ok(())),
        };
        // Validated on receipt, so this does not happen; if it did, retrying could not help.
        let Ok(outcome) = outcome else {
            return Some(Err(ConsumeError::Permanent("cannot read metrics: malformed encoding".into())));
        };
        self.metrics.sent(Signal::Metrics, outcome.stored);
        self.metrics.send_failed(Signal::Metrics, outcome.unsupported + outcome.refused);
        self.unsupported.add(outcome.unsupported as u64);
        self.refused.add(outcome.refused as u64);
        if outcome.refused > 0 {
            tracing::warn!(refused = outcome.refused, "prometheus exporter series cap reached; new series refused");
        }
        Some(Ok(()))
    }
}

async fn metrics_handler(State(exp): State<PrometheusExporter>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, render::CONTENT_TYPE)], exp.scrape())
}

/// The HTTP app: `GET /metrics`.
pub fn app(exp: PrometheusExporter) -> Router {
    Router::new().route("/metrics", axum::routing::get(metrics_handler)).with_state(exp)
}
