//! Receivers: the OTLP receiver (gRPC and HTTP) and its pure HTTP body decoder, and the
//! Prometheus scraping receiver and the hostmetrics receiver.

pub mod decode;
pub mod hostmetrics;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod prometheus;

use crate::pipeline::Consumer;

/// The pipelines a receiver feeds, per signal (one receiver may feed several pipelines).
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Trace pipelines.
    pub traces: Vec<Consumer>,
    /// Metric pipelines.
    pub metrics: Vec<Consumer>,
    /// Log pipelines.
    pub logs: Vec<Consumer>,
}
