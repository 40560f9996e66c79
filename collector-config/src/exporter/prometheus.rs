//! The `prometheus` exporter's config: where to serve `/metrics` and how series are named.
//! OpenMetrics output and TLS are refused (not implemented).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::check::{Check, Validate};
use crate::duration::de_opt_duration;
use crate::shared::TlsConfig;

http_server_config! {
    /// `prometheus` exporter: serves the latest value of every series at `http://<endpoint>/metrics`
    /// (see `exporter/prometheus`). `enable_open_metrics` and `tls` are rejected (not implemented).
    #[derive(Debug, Clone, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    pub struct PrometheusExporterConfig {
        /// Listen address for `/metrics` (required).
        pub endpoint: String,
        /// Prefix for metric names.
        pub namespace: Option<String>,
        /// Labels added to every metric.
        pub const_labels: BTreeMap<String, String>,
        /// Expose timestamps.
        pub send_timestamps: bool,
        /// Drop series not updated for this long (default 5m).
        #[serde(deserialize_with = "de_opt_duration")]
        pub metric_expiration: Option<Duration>,
        /// Resource attributes become labels.
        pub resource_to_telemetry_conversion: Option<EnabledFlag>,
        /// Serve OpenMetrics.
        pub enable_open_metrics: bool,
        /// Add unit and type suffixes.
        #[serde(default = "default_true")]
        pub add_metric_suffixes: bool,
        /// TLS for the listener.
        pub tls: Option<TlsConfig>,
    }
}

/// `{enabled: bool}` blocks.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnabledFlag {
    /// Whether the feature is on.
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

impl Validate for PrometheusExporterConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        if self.endpoint.is_empty() {
            check.error(format!("{p}.endpoint: required"));
        }
        if self.enable_open_metrics {
            check.error(format!(
                "{p}.enable_open_metrics: OpenMetrics output is not implemented; remove it to serve the Prometheus text format"
            ));
        }
        if self.tls.is_some() {
            check.error(format!("{p}.tls: TLS for the /metrics listener is not implemented"));
        }
    }
}
