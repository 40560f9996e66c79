//! The `otlphttp` exporter's config (OTLP over HTTP, alias `otlp_http`) and its checks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};
use crate::duration::de_opt_duration;
use crate::shared::de_lenient_map;
use crate::shared::{AuthConfig, Compression, QueueConfig, RetryConfig, TlsConfig};

/// `otlphttp` exporter.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpHttpExporterConfig {
    /// Base URL; `/v1/traces` etc. are appended (required unless per-signal endpoints are set).
    pub endpoint: String,
    /// Full URL for traces, overriding `endpoint`.
    pub traces_endpoint: Option<String>,
    /// Full URL for metrics.
    pub metrics_endpoint: Option<String>,
    /// Full URL for logs.
    pub logs_endpoint: Option<String>,
    /// `proto` (default) or `json`.
    pub encoding: Encoding,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Extra request headers.
    #[serde(deserialize_with = "de_lenient_map")]
    pub headers: BTreeMap<String, String>,
    /// `gzip` (default) or `none`.
    pub compression: Compression,
    /// Request timeout (default 30s).
    #[serde(deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
    /// Retry settings.
    pub retry_on_failure: RetryConfig,
    /// Queue settings.
    pub sending_queue: QueueConfig,
    /// Client authenticator extension.
    pub auth: Option<AuthConfig>,
    /// Read buffer size (accepted for compatibility).
    pub read_buffer_size: Option<u64>,
    /// Write buffer size (accepted for compatibility).
    pub write_buffer_size: Option<u64>,
    /// Max idle connections (accepted for compatibility).
    pub max_idle_conns: Option<u64>,
    /// Idle connection timeout (accepted for compatibility).
    pub idle_conn_timeout: Option<String>,
    /// HTTP proxy URL.
    pub proxy_url: Option<String>,
    /// Disable keep-alives (accepted for compatibility).
    pub disable_keep_alives: bool,
    /// Batching inside the exporter (accepted for compatibility).
    pub batcher: Option<Value>,
}

/// `otlphttp.encoding`: how request bodies are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Protobuf (`application/x-protobuf`), the default.
    #[default]
    Proto,
    /// OTLP JSON (`application/json`).
    Json,
}

impl Validate for OtlpHttpExporterConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        let per_signal = [&self.traces_endpoint, &self.metrics_endpoint, &self.logs_endpoint];
        if self.endpoint.is_empty() && per_signal.iter().any(|e| e.is_none()) {
            check.error(format!("{p}.endpoint: required (or set traces_endpoint, metrics_endpoint and logs_endpoint)"));
        }
        for (field, url) in [
            ("endpoint", Some(&self.endpoint)),
            ("traces_endpoint", self.traces_endpoint.as_ref()),
            ("metrics_endpoint", self.metrics_endpoint.as_ref()),
            ("logs_endpoint", self.logs_endpoint.as_ref()),
        ] {
            if let Some(u) = url
                && !u.is_empty()
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                check.error(format!("{p}.{field}: must be an http:// or https:// URL, got {u:?}"));
            }
        }
        self.tls.validate_as_client(&format!("{p}.tls"), check);
        if let Some(auth) = &self.auth {
            auth.validate(&format!("{p}.auth"), check);
        }
        self.sending_queue.validate(&format!("{p}.sending_queue"), check);
    }
}
