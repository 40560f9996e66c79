//! OTLP/gRPC receiver: the three collector services on one tonic server, gzip accepted,
//! `max_recv_msg_size_mib` enforced; malformed requests get `InvalidArgument`, pipeline refusals
//! `Unavailable` (retryable).
//!
//! The services take request bodies as bytes ([`RawCodec`]) instead of tonic's generated stubs,
//! so a request is validated and counted without being decoded ([`Data::from_protobuf`]); the
//! service and method names are those of the generated code.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use bytes::Bytes;
use tonic::codec::{CompressionEncoding, EnabledCompressionEncodings};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::Outputs;
use crate::config::id::Signal;
use crate::pdata::Data;
use crate::pipeline::{BoxFuture, ConsumeError, fanout_consumers};
use crate::raw_codec::RawCodec;
use crate::telemetry::ReceiverMetrics;
use collector_config::receiver::otlp::GrpcServerConfig;

/// What the three services share: where data goes and the receiver's own metrics.
#[derive(Debug, Clone)]
pub struct OtlpGrpc {
    outputs: Outputs,
    metrics: ReceiverMetrics,
}

impl OtlpGrpc {
    /// Validates one request body and pushes it into the signal's pipelines.
    async fn export(&self, signal: Signal, body: Bytes) -> Result<(), Status> {
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
        let data = Data::from_protobuf(signal, body)
            .map_err(|e| Status::invalid_argument(format!("invalid {} request: {e}", signal.as_str())))?;
        let n = data.item_count();
        match fanout_consumers(consumers, data).await {
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

/// Names one collector service, as the generated servers do.
pub trait ServiceName: Send + Sync + 'static {
    /// The gRPC service name.
    const NAME: &'static str;
    /// The signal it carries.
    const SIGNAL: Signal;
}

/// `opentelemetry.proto.collector.trace.v1.TraceService`.
#[derive(Debug)]
pub enum TraceService {}
impl ServiceName for TraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Signal = Signal::Traces;
}

/// `opentelemetry.proto.collector.metrics.v1.MetricsService`.
#[derive(Debug)]
pub enum MetricsService {}
impl ServiceName for MetricsService {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Signal = Signal::Metrics;
}

/// `opentelemetry.proto.collector.logs.v1.LogsService`.
#[derive(Debug)]
pub enum LogsService {}
impl ServiceName for LogsService {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Signal = Signal::Logs;
}

/// One collector service's `Export` method over raw bodies.
#[derive(Debug)]
pub struct ExportServer<S> {
    inner: OtlpGrpc,
    max_decoding: usize,
    compression: EnabledCompressionEncodings,
    _service: PhantomData<S>,
}

impl<S> Clone for ExportServer<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            max_decoding: self.max_decoding,
            compression: self.compression,
            _service: PhantomData,
        }
    }
}

impl<S: ServiceName> NamedService for ExportServer<S> {
    const NAME: &'static str = S::NAME;
}

/// The unary handler tonic drives for `Export`.
struct ExportMethod<S>(OtlpGrpc, PhantomData<S>);

impl<S: ServiceName> UnaryService<Bytes> for ExportMethod<S> {
    // An empty Export*ServiceResponse (no partial success) encodes as zero bytes.
    type Response = Vec<Bytes>;
    type Future = BoxFuture<'static, Result<Response<Vec<Bytes>>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            inner.export(S::SIGNAL, request.into_inner()).await?;
            Ok(Response::new(Vec::new()))
        })
    }
}

impl<S, B> tonic::codegen::Service<http::Request<B>> for ExportServer<S>
where
    S: ServiceName,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let expected = format!("/{}/Export", S::NAME);
        if req.uri().path() != expected {
            // Same answer the generated servers give for an unknown method.
            return Box::pin(async { Ok(Status::unimplemented("unknown method").into_http()) });
        }
        let method = ExportMethod::<S>(self.inner.clone(), PhantomData);
        let mut grpc = tonic::server::Grpc::new(RawCodec)
            .apply_compression_config(self.compression, self.compression)
            .apply_max_message_size_config(Some(self.max_decoding), None);
        Box::pin(async move { Ok(grpc.unary(method, req).await) })
    }
}

/// The listener limits of the gRPC receiver: upstream's `configgrpc` has no header or body
/// timeouts, so those take [`crate::listener`]'s defaults (a connection that sends no request
/// within a minute of accept is closed; request bodies must arrive within a minute);
/// `keepalive.server_parameters` map to HTTP/2 pings, connection ageing and the idle timeout
/// (`max_connection_idle`, default none, as grpc-go).
pub fn limits(cfg: &GrpcServerConfig) -> crate::listener::ServerLimits {
    let p = cfg.keepalive.as_ref().and_then(|k| k.server_parameters.clone()).unwrap_or_default();
    crate::listener::ServerLimits {
        idle_timeout: p.max_connection_idle.filter(|d| !d.is_zero()),
        http2: crate::listener::Http2Settings {
            max_concurrent_streams: cfg.max_concurrent_streams.unwrap_or(crate::listener::MAX_CONCURRENT_STREAMS),
            // HTTP/2's 64 KiB default windows throttle many concurrent ~100 KiB exports to one
            // WINDOW_UPDATE round trip per window; let hyper size them from the measured BDP.
            adaptive_window: true,
            keep_alive_interval: p.time.filter(|d| !d.is_zero()),
            keep_alive_timeout: p.timeout.filter(|d| !d.is_zero()),
            max_connection_age: p.max_connection_age.filter(|d| !d.is_zero()),
            max_connection_age_grace: p.max_connection_age_grace,
        },
        ..crate::listener::ServerLimits::default()
    }
}

/// The three collector services as one router (tonic's `Routes`), served by the shared listener.
pub fn app(cfg: &GrpcServerConfig, outputs: Outputs, metrics: ReceiverMetrics) -> axum::Router {
    let inner = OtlpGrpc { outputs, metrics };
    let max_decoding = (cfg.max_recv_msg_size_mib.max(1) as usize) << 20;
    let mut compression = EnabledCompressionEncodings::default();
    compression.enable(CompressionEncoding::Gzip);
    fn server<S>(inner: &OtlpGrpc, max_decoding: usize, compression: EnabledCompressionEncodings) -> ExportServer<S> {
        ExportServer { inner: inner.clone(), max_decoding, compression, _service: PhantomData }
    }
    tonic::service::Routes::new(server::<TraceService>(&inner, max_decoding, compression))
        .add_service(server::<MetricsService>(&inner, max_decoding, compression))
        .add_service(server::<LogsService>(&inner, max_decoding, compression))
        .prepare()
        .into_axum_router()
}

#[cfg(test)]
mod tests {
    //! The server's HTTP/2 settings as a raw h2 client sees them, on port 0.

    use std::time::{Duration, Instant};

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::telemetry::Telemetry;
    use collector_config::receiver::otlp::{GrpcKeepalive, GrpcKeepaliveServerParameters};

    #[tokio::test]
    async fn streams_are_capped_and_connections_aged_out() {
        let cfg = GrpcServerConfig {
            keepalive: Some(GrpcKeepalive {
                server_parameters: Some(GrpcKeepaliveServerParameters {
                    max_connection_age: Some(Duration::from_millis(300)),
                    max_connection_age_grace: Some(Duration::from_millis(300)),
                    ..Default::default()
                }),
                enforcement_policy: None,
            }),
            ..GrpcServerConfig::default()
        };
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let stop = CancellationToken::new();
        let metrics = ReceiverMetrics::new(&Telemetry::new(), "otlp", "grpc");
        let server = tokio::spawn({
            let stop = stop.clone();
            async move { crate::listener::serve(l, app(&cfg, Outputs::default(), metrics), limits(&cfg), stop).await }
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        let started = Instant::now();
        let conn = tokio::spawn(conn);
        // The server's SETTINGS arrive with the handshake; wait for them to be applied.
        let deadline = Instant::now() + Duration::from_secs(5);
        while client.current_max_send_streams() != crate::listener::MAX_CONCURRENT_STREAMS as usize {
            assert!(Instant::now() < deadline, "max streams: {}", client.current_max_send_streams());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // max_connection_age: the server sends GOAWAY and closes the (idle) connection.
        let _ = tokio::time::timeout(Duration::from_secs(10), conn).await.expect("connection not aged out");
        assert!(started.elapsed() >= Duration::from_millis(250), "closed early: {:?}", started.elapsed());
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_silent_or_dribbling_grpc_connection_is_cut_and_calls_still_work() {
        let cfg = GrpcServerConfig::default();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let stop = CancellationToken::new();
        let metrics = ReceiverMetrics::new(&Telemetry::new(), "otlp", "grpc");
        let limits =
            crate::listener::ServerLimits { read_header_timeout: Some(Duration::from_millis(300)), ..limits(&cfg) };
        tokio::spawn(crate::listener::serve(l, app(&cfg, Outputs::default(), metrics), limits, stop.clone()));
        // The HTTP/2 preface, dribbled, and never a request.
        let took =
            crate::listener::tests::slowloris_bytes(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Duration::from_secs(20))
                .await
                .expect("dribbling connection never cut");
        assert!(took < Duration::from_secs(5), "cut after {took:?}");
        // A real call is still answered (no traces pipeline here: Unimplemented, over gRPC).
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let r = grpc
            .unary::<Vec<Bytes>, Bytes, _>(
                tonic::Request::new(vec![Bytes::new()]),
                http::uri::PathAndQuery::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
                RawCodec,
            )
            .await;
        assert_eq!(r.map(|_| ()).unwrap_err().code(), tonic::Code::Unimplemented);
        stop.cancel();
    }
}
