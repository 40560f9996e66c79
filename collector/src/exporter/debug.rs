//! `debug` exporter (and the deprecated `logging` alias): writes what it receives to the log.

use crate::pdata::{Data, Payload};
use crate::pipeline::{BoxFuture, ConsumeError, Exporter};
use crate::telemetry::ExporterMetrics;
use collector_config::exporter::debug::{DebugExporterConfig, Verbosity};

/// Debug exporter.
#[derive(Debug)]
pub struct DebugExporter {
    name: String,
    verbosity: Verbosity,
    metrics: ExporterMetrics,
}

impl DebugExporter {
    /// Builds from config.
    pub fn new(name: &str, cfg: &DebugExporterConfig, metrics: ExporterMetrics) -> Self {
        Self { name: name.to_owned(), verbosity: cfg.verbosity, metrics }
    }
}

/// One-line summary (basic verbosity), as upstream prints it.
pub fn summary(data: &Payload) -> String {
    match data {
        Payload::Traces(r) => {
            format!("Traces: resource spans: {}, spans: {}", r.resource_spans.len(), data.item_count())
        }
        Payload::Metrics(r) => {
            format!("Metrics: resource metrics: {}, data points: {}", r.resource_metrics.len(), data.item_count())
        }
        Payload::Logs(r) => {
            format!("Logs: resource logs: {}, log records: {}", r.resource_logs.len(), data.item_count())
        }
    }
}

impl Exporter for DebugExporter {
    fn consume(&self, data: Data) -> BoxFuture<'_, Result<(), ConsumeError>> {
        // Encoded data (from an OTLP receiver) is decoded here; it was validated on receipt.
        let data = match data.decode() {
            Ok(p) => p,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        tracing::info!(exporter = %self.name, "{}", summary(&data));
        match self.verbosity {
            Verbosity::Normal => match &data {
                Payload::Traces(r) => {
                    for s in r.resource_spans.iter().flat_map(|x| &x.scope_spans).flat_map(|x| &x.spans) {
                        let tid: String = s.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                        tracing::info!(exporter = %self.name, "{} {tid} {}", s.name, s.attributes.len());
                    }
                }
                Payload::Logs(r) => {
                    for l in r.resource_logs.iter().flat_map(|x| &x.scope_logs).flat_map(|x| &x.log_records) {
                        tracing::info!(exporter = %self.name, "{} {:?}", l.severity_text, l.body);
                    }
                }
                Payload::Metrics(r) => {
                    for m in r.resource_metrics.iter().flat_map(|x| &x.scope_metrics).flat_map(|x| &x.metrics) {
                        tracing::info!(exporter = %self.name, "{} {}", m.name, crate::pdata::data_point_count(m));
                    }
                }
            },
            Verbosity::Detailed => tracing::info!(exporter = %self.name, "{data:#?}"),
            Verbosity::Basic => {}
        }
        self.metrics.sent(data.signal(), data.item_count());
        Box::pin(async { Ok(()) })
    }
}
