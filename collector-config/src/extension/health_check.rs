//! The `health_check` extension's config: where the health endpoint listens.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};
use crate::duration::de_opt_duration;
use crate::shared::TlsConfig;

/// `health_check` extension.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// Listen address (default `localhost:13133`).
    pub endpoint: String,
    /// Path answering the status (default `/`).
    pub path: String,
    /// Response body settings (accepted for compatibility).
    pub response_body: Option<Value>,
    /// Pipeline health checking (accepted for compatibility).
    pub check_collector_pipeline: Option<Value>,
    /// TLS for the listener (accepted for compatibility).
    pub tls: Option<TlsConfig>,
    /// Time allowed to read a request's headers (default 1m; `0` disables).
    #[serde(deserialize_with = "de_opt_duration")]
    pub read_header_timeout: Option<Duration>,
    /// Time a keep-alive connection may wait for its next request (default 1m; `0` disables).
    #[serde(deserialize_with = "de_opt_duration")]
    pub idle_timeout: Option<Duration>,
    /// Time allowed to read a request body (default 1m; upstream: none; `0` disables).
    #[serde(deserialize_with = "de_opt_duration")]
    pub read_timeout: Option<Duration>,
}

impl HealthCheckConfig {
    /// The listener limits these settings select.
    pub fn limits(&self) -> crate::limits::ServerLimits {
        crate::limits::ServerLimits::from_settings(self.read_header_timeout, self.idle_timeout, self.read_timeout)
    }
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:13133".into(),
            path: "/".into(),
            response_body: None,
            check_collector_pipeline: None,
            tls: None,
            read_header_timeout: None,
            idle_timeout: None,
            read_timeout: None,
        }
    }
}

impl Validate for HealthCheckConfig {
    /// Nothing beyond the types.
    fn validate(&self, _path: &str, _check: &mut Check<'_>) {}
}
