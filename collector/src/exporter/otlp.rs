//! `otlp` exporter: OTLP over gRPC via tonic, with headers, gzip, TLS, timeout and the OTLP spec's
//! retryable status codes (RESOURCE_EXHAUSTED only with RetryInfo).

use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use super::helper::{SendError, SendOk, Sender};
use super::tls;
use crate::config::id::Signal;
use crate::pdata::Data;
use crate::pipeline::BoxFuture;
use crate::raw_codec::RawCodec;
use collector_config::exporter::otlp::OtlpExporterConfig;
use collector_config::extension::basicauth::BasicClientAuth;
use collector_config::shared::Compression;

/// gRPC OTLP sender.
#[derive(Debug, Clone)]
pub struct OtlpGrpcSender {
    channel: Channel,
    metadata: MetadataMap,
    gzip: bool,
    timeout: Duration,
}

/// Normalises `host:port` / URLs into a URI, choosing the scheme from `tls.insecure` like upstream.
pub fn endpoint_uri(endpoint: &str, insecure: bool) -> String {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_owned()
    } else if insecure {
        format!("http://{endpoint}")
    } else {
        format!("https://{endpoint}")
    }
}

impl OtlpGrpcSender {
    /// Builds a lazily connecting channel; no network I/O happens here.
    pub fn new(cfg: &OtlpExporterConfig, auth: Option<&BasicClientAuth>) -> Result<Self, String> {
        let uri = endpoint_uri(&cfg.endpoint, cfg.tls.insecure);
        let mut ep = Endpoint::from_str(&uri).map_err(|e| format!("endpoint: invalid {uri:?}: {e}"))?;
        let timeout = cfg.timeout.unwrap_or(Duration::from_secs(5));
        ep = ep.connect_timeout(timeout).tcp_nodelay(true).http2_adaptive_window(true);
        if let Some(k) = &cfg.keepalive
            && !k.time.is_zero()
        {
            ep = ep.http2_keep_alive_interval(k.time).keep_alive_while_idle(k.permit_without_stream);
            if !k.timeout.is_zero() {
                ep = ep.keep_alive_timeout(k.timeout);
            }
        }
        if uri.starts_with("https://") {
            let mut t = ClientTlsConfig::new();
            if tls::trust_public_roots(&cfg.tls) {
                t = t.with_webpki_roots();
            }
            if let Some(ca) = tls::ca_pem(&cfg.tls)? {
                t = t.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((c, k)) = tls::client_identity(&cfg.tls)? {
                t = t.identity(Identity::from_pem(c, k));
            }
            if let Some(n) = &cfg.tls.server_name_override {
                t = t.domain_name(n.clone());
            }
            ep = ep.tls_config(t).map_err(|e| format!("tls: {e}"))?;
        }
        let mut metadata = MetadataMap::new();
        for (k, v) in &cfg.headers {
            let key = MetadataKey::from_bytes(k.to_lowercase().as_bytes())
                .map_err(|e| format!("headers.{k}: invalid header name: {e}"))?;
            let val =
                MetadataValue::try_from(v.as_str()).map_err(|e| format!("headers.{k}: invalid header value: {e}"))?;
            metadata.insert(key, val);
        }
        if let Some(a) = auth {
            let val = MetadataValue::try_from(tls::basic_auth_header(a))
                .map_err(|e| format!("auth: invalid credentials: {e}"))?;
            metadata.insert("authorization", val);
        }
        Ok(Self { channel: ep.connect_lazy(), metadata, gzip: cfg.compression == Compression::Gzip, timeout })
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        *req.metadata_mut() = self.metadata.clone();
        req.set_timeout(self.timeout);
        req
    }
}

/// Maps a gRPC status to a send error per the OTLP spec.
pub fn classify(status: &Status) -> SendError {
    let retry_info = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_info.is_some(),
        _ => false,
    };
    SendError {
        retryable,
        throttle: retry_info,
        message: format!("rpc error: code = {:?} desc = {}", status.code(), status.message()),
    }
}

impl Sender for OtlpGrpcSender {
    fn send<'a>(&'a self, data: &'a Data) -> BoxFuture<'a, Result<SendOk, SendError>> {
        Box::pin(async move {
            let signal = data.signal();
            let path = match signal {
                Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            };
            // Encoded data goes out as the chunks it arrived in; decoded data is encoded once.
            let body = data.to_protobuf();
            let fut = async {
                let mut grpc = tonic::client::Grpc::new(self.channel.clone())
                    .max_decoding_message_size(64 << 20)
                    .accept_compressed(CompressionEncoding::Gzip);
                if self.gzip {
                    grpc = grpc.send_compressed(CompressionEncoding::Gzip);
                }
                grpc.ready().await.map_err(|e| Status::unavailable(format!("connection not ready: {e}")))?;
                grpc.unary::<Vec<Bytes>, Bytes, _>(self.request(body), PathAndQuery::from_static(path), RawCodec).await
            };
            let resp = match tokio::time::timeout(self.timeout + Duration::from_millis(500), fut).await {
                Ok(Ok(resp)) => resp.into_inner(),
                Ok(Err(status)) => return Err(classify(&status)),
                Err(_) => {
                    return Err(SendError { retryable: true, throttle: None, message: "export timed out".into() });
                }
            };
            // Partial success is optional; an undecodable response body counts as full success.
            let rejected = match signal {
                Signal::Traces => ExportTraceServiceResponse::decode(resp)
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map_or(0, |p| p.rejected_spans),
                Signal::Metrics => ExportMetricsServiceResponse::decode(resp)
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map_or(0, |p| p.rejected_data_points),
                Signal::Logs => ExportLogsServiceResponse::decode(resp)
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map_or(0, |p| p.rejected_log_records),
            };
            Ok(SendOk { rejected: rejected.max(0) as u64 })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn retryable_codes_follow_spec() {
        for code in [
            Code::Unavailable,
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::DataLoss,
        ] {
            assert!(classify(&Status::new(code, "x")).retryable, "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::Internal,
            Code::Unimplemented,
            Code::ResourceExhausted,
        ] {
            assert!(!classify(&Status::new(code, "x")).retryable, "{code:?}");
        }
    }

    #[test]
    fn resource_exhausted_with_retry_info_is_retryable_and_throttles() {
        let st = Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(3))),
        );
        let e = classify(&st);
        assert!(e.retryable);
        assert_eq!(e.throttle, Some(Duration::from_secs(3)));
    }

    #[test]
    fn scheme_from_insecure() {
        assert_eq!(endpoint_uri("alloy:4317", true), "http://alloy:4317");
        assert_eq!(endpoint_uri("alloy:4317", false), "https://alloy:4317");
        assert_eq!(endpoint_uri("http://x:1", false), "http://x:1");
    }
}
