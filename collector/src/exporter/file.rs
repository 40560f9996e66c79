//! `file` exporter: appends one OTLP JSON document per line, like upstream's file exporter.

use std::io::Write as _;
use std::sync::Mutex;

use crate::pdata::{Data, Payload};
use crate::pipeline::{BoxFuture, ConsumeError, Exporter};
use crate::telemetry::ExporterMetrics;
use collector_config::exporter::file::FileExporterConfig;

/// File exporter.
#[derive(Debug)]
pub struct FileExporter {
    file: Mutex<std::io::BufWriter<std::fs::File>>,
    metrics: ExporterMetrics,
}

impl FileExporter {
    /// Opens (creates/truncates or appends) the output file.
    pub fn new(cfg: &FileExporterConfig, metrics: ExporterMetrics) -> Result<Self, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(cfg.append)
            .truncate(!cfg.append)
            .open(&cfg.path)
            .map_err(|e| format!("path: cannot open {}: {e}", cfg.path))?;
        Ok(Self { file: Mutex::new(std::io::BufWriter::new(file)), metrics })
    }
}

impl Exporter for FileExporter {
    fn consume(&self, data: Data) -> BoxFuture<'_, Result<(), ConsumeError>> {
        // Encoded data (from an OTLP receiver) is decoded here; it was validated on receipt.
        let data = match data.decode() {
            Ok(p) => p,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let line = match &data {
            Payload::Traces(r) => serde_json::to_string(r),
            Payload::Metrics(r) => serde_json::to_string(r),
            Payload::Logs(r) => serde_json::to_string(r),
        };
        let res = line.map_err(|e| ConsumeError::Permanent(format!("cannot encode JSON: {e}"))).and_then(|l| {
            let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
            writeln!(f, "{l}")
                .and_then(|()| f.flush())
                .map_err(|e| ConsumeError::Retryable(format!("cannot write file: {e}")))
        });
        if res.is_ok() {
            self.metrics.sent(data.signal(), data.item_count());
        } else {
            self.metrics.send_failed(data.signal(), data.item_count());
        }
        Box::pin(async move { res })
    }
}
