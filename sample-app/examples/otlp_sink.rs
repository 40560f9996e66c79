//! A minimal OTLP/gRPC sink for the benchmark's "collector up" mode when the
//! upstream `otelcol` binary is not built: accepts trace and metric exports,
//! counts them, and discards the data, so the service under test sees a
//! healthy, fast collector.
//!
//! Usage: `otlp_sink 127.0.0.1:4317` (prints totals on Ctrl-C / SIGTERM).

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default, Clone)]
struct Counts {
    spans: Arc<AtomicU64>,
    metric_exports: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Counts {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let n: usize =
            request.get_ref().resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        self.spans.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Counts {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metric_exports.fetch_add(1, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: std::net::SocketAddr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:4317".into()).parse()?;
    let counts = Counts::default();
    let shown = counts.clone();
    eprintln!("otlp_sink listening on {addr}");
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(counts.clone()))
        .add_service(MetricsServiceServer::new(counts))
        .serve_with_shutdown(addr, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    eprintln!(
        "otlp_sink: {} spans, {} metric exports",
        shown.spans.load(Ordering::Relaxed),
        shown.metric_exports.load(Ordering::Relaxed)
    );
    Ok(())
}
