//! The `otlp` exporter's config (OTLP over gRPC, alias `otlp_grpc`) and its checks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};
use crate::duration::de_opt_duration;
use crate::shared::{AuthConfig, ClientKeepalive, Compression, QueueConfig, RetryConfig, TlsConfig};
use crate::shared::{de_lenient_map, de_lenient_string};

/// `otlp` exporter (gRPC).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpExporterConfig {
    /// `host:port` or URL of the receiving server (required).
    #[serde(deserialize_with = "de_lenient_string")]
    pub endpoint: String,
    /// TLS settings; `insecure: true` for plaintext.
    pub tls: TlsConfig,
    /// Extra request headers (gRPC metadata).
    #[serde(deserialize_with = "de_lenient_map")]
    pub headers: BTreeMap<String, String>,
    /// `gzip` (default) or `none`.
    pub compression: Compression,
    /// Per-request timeout (default 5s).
    #[serde(deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
    /// Retry settings.
    pub retry_on_failure: RetryConfig,
    /// Queue settings.
    pub sending_queue: QueueConfig,
    /// Client authenticator extension (e.g. basicauth).
    pub auth: Option<AuthConfig>,
    /// Client keepalive.
    pub keepalive: Option<ClientKeepalive>,
    /// gRPC load balancer (accepted for compatibility).
    pub balancer_name: Option<String>,
    /// Read buffer size (accepted for compatibility).
    pub read_buffer_size: Option<u64>,
    /// Write buffer size (accepted for compatibility).
    pub write_buffer_size: Option<u64>,
    /// Wait for the connection to be ready (accepted for compatibility).
    pub wait_for_ready: bool,
    /// Authority header override.
    pub authority: Option<String>,
    /// Batching inside the exporter (accepted for compatibility).
    pub batcher: Option<Value>,
}

impl Validate for OtlpExporterConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        if self.endpoint.is_empty() {
            check.error(format!("{p}.endpoint: required"));
        }
        if let Some(auth) = &self.auth {
            auth.validate(&format!("{p}.auth"), check);
        }
        self.tls.validate_as_client(&format!("{p}.tls"), check);
        self.sending_queue.validate(&format!("{p}.sending_queue"), check);
    }
}
