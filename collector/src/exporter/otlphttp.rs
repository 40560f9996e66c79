//! `otlphttp` exporter: OTLP over HTTP (protobuf or JSON), gzip, headers, TLS, and retry on
//! 429/502/503/504 honouring `Retry-After`.

use std::io::Write as _;
use std::time::Duration;

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::helper::{SendError, SendOk, Sender};
use super::tls;
use crate::config::id::Signal;
use crate::pdata::{Data, Payload};
use crate::pipeline::BoxFuture;
use collector_config::exporter::otlphttp::{Encoding, OtlpHttpExporterConfig};
use collector_config::extension::basicauth::BasicClientAuth;
use collector_config::shared::Compression;

/// HTTP OTLP sender.
#[derive(Debug, Clone)]
pub struct OtlpHttpSender {
    client: reqwest::Client,
    urls: [String; 3],
    json: bool,
    gzip: bool,
}

/// Per-signal URL: explicit `*_endpoint` wins, else `endpoint` + `/v1/<signal>`.
pub fn signal_url(base: &str, explicit: Option<&String>, path: &str) -> String {
    match explicit {
        Some(u) if !u.is_empty() => u.clone(),
        _ => format!("{}/{path}", base.trim_end_matches('/')),
    }
}

/// Whether an HTTP status is retryable per the OTLP spec.
pub fn retryable_status(code: u16) -> bool {
    matches!(code, 429 | 502 | 503 | 504)
}

/// Parses `Retry-After` given in seconds (HTTP dates are rare for OTLP and ignored).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl OtlpHttpSender {
    /// Builds the HTTP client; no network I/O.
    pub fn new(cfg: &OtlpHttpExporterConfig, auth: Option<&BasicClientAuth>) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name =
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("headers.{k}: invalid header name: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| format!("headers.{k}: invalid header value: {e}"))?;
            headers.insert(name, value);
        }
        if let Some(a) = auth {
            let mut v = HeaderValue::from_str(&tls::basic_auth_header(a))
                .map_err(|e| format!("auth: invalid credentials: {e}"))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let mut b = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(cfg.timeout.unwrap_or(Duration::from_secs(30)))
            .user_agent(concat!("telemetry-collector/", env!("CARGO_PKG_VERSION")));
        // A configured CA replaces the public roots unless `include_system_ca_certs_pool`.
        b = b.tls_built_in_root_certs(tls::trust_public_roots(&cfg.tls));
        if let Some(ca) = tls::ca_pem(&cfg.tls)? {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&ca).map_err(|e| format!("tls.ca_file: {e}"))?);
        }
        if let Some((c, k)) = tls::client_identity(&cfg.tls)? {
            let mut pem = c;
            pem.extend_from_slice(&k);
            b = b.identity(reqwest::Identity::from_pem(&pem).map_err(|e| format!("tls.cert_file: {e}"))?);
        }
        if let Some(p) = &cfg.proxy_url {
            b = b.proxy(reqwest::Proxy::all(p).map_err(|e| format!("proxy_url: {e}"))?);
        }
        let client = b.build().map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Self {
            client,
            urls: [
                signal_url(&cfg.endpoint, cfg.traces_endpoint.as_ref(), "v1/traces"),
                signal_url(&cfg.endpoint, cfg.metrics_endpoint.as_ref(), "v1/metrics"),
                signal_url(&cfg.endpoint, cfg.logs_endpoint.as_ref(), "v1/logs"),
            ],
            json: cfg.encoding == Encoding::Json,
            gzip: cfg.compression == Compression::Gzip,
        })
    }

    fn encode(&self, data: &Data) -> Result<Vec<u8>, SendError> {
        let permanent = |e: String| SendError { retryable: false, throttle: None, message: e };
        if !self.json {
            // Encoded data is written as its chunks, one after another.
            return Ok(data.to_protobuf().concat());
        }
        let decoded;
        let payload = match data {
            Data::Decoded(p) => p,
            Data::Encoded(_) => {
                decoded = data.clone().decode().map_err(|e| permanent(e.to_string()))?;
                &decoded
            }
        };
        match payload {
            Payload::Traces(r) => serde_json::to_vec(r),
            Payload::Metrics(r) => serde_json::to_vec(r),
            Payload::Logs(r) => serde_json::to_vec(r),
        }
        .map_err(|e| permanent(format!("cannot encode JSON: {e}")))
    }
}

fn rejected(signal: Signal, body: &[u8], json: bool) -> u64 {
    // Partial success is optional in responses; undecodable bodies count as full success.
    match signal {
        Signal::Traces => {
            let r: Option<ExportTraceServiceResponse> =
                if json { serde_json::from_slice(body).ok() } else { ExportTraceServiceResponse::decode(body).ok() };
            r.and_then(|r| r.partial_success).map_or(0, |p| p.rejected_spans.max(0) as u64)
        }
        Signal::Metrics => {
            let r: Option<ExportMetricsServiceResponse> =
                if json { serde_json::from_slice(body).ok() } else { ExportMetricsServiceResponse::decode(body).ok() };
            r.and_then(|r| r.partial_success).map_or(0, |p| p.rejected_data_points.max(0) as u64)
        }
        Signal::Logs => {
            let r: Option<ExportLogsServiceResponse> =
                if json { serde_json::from_slice(body).ok() } else { ExportLogsServiceResponse::decode(body).ok() };
            r.and_then(|r| r.partial_success).map_or(0, |p| p.rejected_log_records.max(0) as u64)
        }
    }
}

impl Sender for OtlpHttpSender {
    fn send<'a>(&'a self, data: &'a Data) -> BoxFuture<'a, Result<SendOk, SendError>> {
        Box::pin(async move {
            let url = match data.signal() {
                Signal::Traces => &self.urls[0],
                Signal::Metrics => &self.urls[1],
                Signal::Logs => &self.urls[2],
            };
            let mut body = self.encode(data)?;
            let mut req = self
                .client
                .post(url)
                .header("content-type", if self.json { "application/json" } else { "application/x-protobuf" });
            if self.gzip {
                let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Level::fast());
                enc.write_all(&body).map_err(|e| SendError {
                    retryable: false,
                    throttle: None,
                    message: format!("gzip: {e}"),
                })?;
                body = enc.finish().map_err(|e| SendError {
                    retryable: false,
                    throttle: None,
                    message: format!("gzip: {e}"),
                })?;
                req = req.header("content-encoding", "gzip");
            }
            let resp = req.body(body).send().await.map_err(|e| SendError {
                retryable: true,
                throttle: None,
                message: format!("request to {url} failed: {e}"),
            })?;
            let status = resp.status().as_u16();
            let throttle = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            let bytes = resp.bytes().await.unwrap_or_default();
            if (200..300).contains(&status) {
                return Ok(SendOk { rejected: rejected(data.signal(), &bytes, self.json) });
            }
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
            Err(SendError {
                retryable: retryable_status(status),
                throttle,
                message: format!("HTTP {status} from {url}: {text}"),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_status_rules() {
        assert_eq!(signal_url("https://gw/otlp/", None, "v1/traces"), "https://gw/otlp/v1/traces");
        assert_eq!(signal_url("https://gw", Some(&"https://t/x".to_string()), "v1/traces"), "https://t/x");
        assert!(retryable_status(503) && retryable_status(429) && retryable_status(502) && retryable_status(504));
        assert!(!retryable_status(400) && !retryable_status(401) && !retryable_status(500));
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
