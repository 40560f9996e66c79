//! OTLP/gRPC receiver: the three collector services on one tonic server, gzip accepted,
//! `max_recv_msg_size_mib` enforced; pipeline refusals become `Unavailable` (retryable).

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::Outputs;
use crate::config::components::GrpcServerConfig;
use crate::config::id::Signal;
use crate::pdata::Payload;
use crate::pipeline::{ConsumeError, fanout_consumers};
use crate::telemetry::ReceiverMetrics;

/// The service implementation shared by the three gRPC services.
#[derive(Debug, Clone)]
pub struct OtlpGrpc {
    outputs: Outputs,
    metrics: ReceiverMetrics,
}

impl OtlpGrpc {
    async fn push(&self, payload: Payload) -> Result<(), Status> {
        let signal = payload.signal();
        let n = payload.item_count();
        let consumers = match signal {
            Signal::Traces => &self.outputs.traces,
            Signal::Metrics => &self.outputs.metrics,
            Signal::Logs => &self.outputs.logs,
        };
        if consumers.is_empty() {
            return Err(Status::unimplemented(format!(
                "no {} pipeline is configured for this receiver",
                signal.as_str()
            )));
        }
        match fanout_consumers(consumers, payload).await {
            Ok(()) => {
                self.metrics.accepted(signal, n);
                Ok(())
            }
            Err(e) => {
                self.metrics.refused(signal, n);
                Err(match e {
                    ConsumeError::Retryable(m) => Status::unavailable(m),
                    ConsumeError::Permanent(m) => Status::invalid_argument(m),
                })
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.push(Payload::Traces(req.into_inner())).await?;
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.push(Payload::Metrics(req.into_inner())).await?;
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.push(Payload::Logs(req.into_inner())).await?;
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

/// Serves the gRPC receiver on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: &GrpcServerConfig,
    outputs: Outputs,
    metrics: ReceiverMetrics,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let svc = OtlpGrpc { outputs, metrics };
    let max = (cfg.max_recv_msg_size_mib.max(1) as usize) << 20;
    // HTTP/2's 64 KiB default windows throttle many concurrent ~100 KiB exports to one
    // WINDOW_UPDATE round trip per window; let hyper size them from the measured BDP instead.
    let mut builder = tonic::transport::Server::builder().http2_adaptive_window(Some(true));
    if let Some(n) = cfg.max_concurrent_streams {
        builder = builder.max_concurrent_streams(n);
    }
    builder
        .add_service(
            TraceServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .add_service(
            MetricsServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .add_service(
            LogsServiceServer::new(svc)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .serve_with_incoming_shutdown(
            // Accepted sockets need TCP_NODELAY: small gRPC responses must not wait for Nagle.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move { shutdown.cancelled().await },
        )
        .await
}
