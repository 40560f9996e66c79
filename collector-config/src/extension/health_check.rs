//! The `health_check` extension's config: where the health endpoint listens.

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};
use crate::shared::TlsConfig;

http_server_config! {
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
