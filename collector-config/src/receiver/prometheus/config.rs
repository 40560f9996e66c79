//! The `prometheus` receiver's config types: a Prometheus configuration embedded under `config:`.
//! They are checked and compiled in one step by [`plan`](super::plan), which lists what is
//! supported, so what passes validation is what runs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::duration::de_opt_duration;

/// `prometheus` receiver: Prometheus scrape config embedded under `config:`.
/// Validated and compiled by [`plan`](super::plan::plan), which lists what is supported.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusReceiverConfig {
    /// A Prometheus configuration (`global`, `scrape_configs`).
    pub config: PromConfig,
    /// Use start time adjustment from `process_start_time_seconds`.
    pub use_start_time_metric: bool,
    /// Regex for the start time metric.
    pub start_time_metric_regex: Option<String>,
    /// Target allocator settings (accepted for compatibility).
    pub target_allocator: Option<Value>,
    /// Trim `_total` etc. suffixes (accepted for compatibility).
    pub trim_metric_suffixes: bool,
    /// Report extra scrape metrics (accepted for compatibility).
    pub report_extra_scrape_metrics: bool,
    /// API server for the Prometheus UI (accepted for compatibility).
    pub api_server: Option<Value>,
}

/// The embedded Prometheus configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PromConfig {
    /// Global defaults (`scrape_interval`, `scrape_timeout`, `external_labels`, ...).
    pub global: Option<Value>,
    /// One entry per scrape job.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Files with scrape configs (accepted for compatibility).
    pub scrape_config_files: Vec<String>,
}

/// One Prometheus scrape job.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// Job name, required and unique.
    pub job_name: String,
    /// How often to scrape (e.g. `30s`).
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_interval: Option<Duration>,
    /// Per-scrape timeout.
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_timeout: Option<Duration>,
    /// HTTP path (default `/metrics`).
    pub metrics_path: Option<String>,
    /// `http` or `https`.
    pub scheme: Option<String>,
    /// Respect labels from the target on conflict.
    pub honor_labels: Option<bool>,
    /// Keep timestamps exposed by the target.
    pub honor_timestamps: Option<bool>,
    /// URL parameters.
    pub params: Option<BTreeMap<String, Vec<String>>>,
    /// Most samples per scrape after metric relabeling (default 1 000 000; `0` = unlimited).
    pub sample_limit: Option<u64>,
    /// Most labels per series, `__name__` included (default 256; `0` = unlimited).
    pub label_limit: Option<u64>,
    /// Longest label name in bytes (default 1024; `0` = unlimited).
    pub label_name_length_limit: Option<u64>,
    /// Longest label value in bytes (default 16 384; `0` = unlimited).
    pub label_value_length_limit: Option<u64>,
    /// Fixed targets.
    pub static_configs: Vec<StaticConfig>,
    /// Kubernetes service discovery.
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    /// Target relabeling rules.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Sample relabeling rules.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// TLS for the scrape.
    pub tls_config: Option<Value>,
    /// Bearer token file for the scrape.
    pub bearer_token_file: Option<String>,
    /// Authorization header settings.
    pub authorization: Option<Value>,
    /// Basic auth for the scrape.
    pub basic_auth: Option<Value>,
    /// Proxy URL.
    pub proxy_url: Option<String>,
    /// Follow redirects.
    pub follow_redirects: Option<bool>,
    /// Enable HTTP/2.
    pub enable_http2: Option<bool>,
    /// File based discovery (accepted for compatibility).
    pub file_sd_configs: Option<Value>,
    /// Scrape protocols accepted.
    pub scrape_protocols: Option<Vec<String>>,
    /// Scrape classic histograms too.
    pub scrape_classic_histograms: Option<bool>,
}

/// `static_configs` entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` targets.
    pub targets: Vec<String>,
    /// Labels attached to all targets.
    pub labels: BTreeMap<String, String>,
}

/// `kubernetes_sd_configs` entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSdConfig {
    /// `pod`, `service`, `endpoints`, `endpointslice`, `node` or `ingress`.
    pub role: String,
    /// Restrict to namespaces.
    pub namespaces: Option<KubernetesNamespaces>,
    /// Label/field selectors the API server applies to the watch, at most one per role.
    pub selectors: Vec<KubernetesSelector>,
    /// API server URL (in-cluster when unset).
    pub api_server: Option<String>,
    /// Kubeconfig file.
    pub kubeconfig_file: Option<String>,
    /// Attach node metadata.
    pub attach_metadata: Option<Value>,
    /// TLS to the API server.
    pub tls_config: Option<Value>,
    /// Bearer token file.
    pub bearer_token_file: Option<String>,
    /// Authorization.
    pub authorization: Option<Value>,
    /// Follow redirects.
    pub follow_redirects: Option<bool>,
    /// Enable HTTP/2.
    pub enable_http2: Option<bool>,
}

/// `kubernetes_sd_configs[].selectors` entry (Prometheus' `SelectorConfig`): the label and/or field
/// selector the API server applies when listing and watching objects of `role`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSelector {
    /// The role whose watch is filtered (`pod` for pod discovery).
    pub role: String,
    /// Label selector, e.g. `app=reviews,tier!=db`.
    pub label: Option<String>,
    /// Field selector, e.g. `spec.nodeName=node-1`.
    pub field: Option<String>,
}

/// Namespaces for Kubernetes discovery.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesNamespaces {
    /// Discover in the collector's own namespace.
    pub own_namespace: bool,
    /// Namespace names.
    pub names: Vec<String>,
}

/// One Prometheus relabel rule.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    /// Labels whose values are concatenated.
    pub source_labels: Vec<String>,
    /// Separator for the concatenation (default `;`).
    pub separator: Option<String>,
    /// Regex matched against the concatenation (must compile).
    pub regex: Option<String>,
    /// Modulus for `hashmod`.
    pub modulus: Option<u64>,
    /// Target label for `replace`/`hashmod`.
    pub target_label: Option<String>,
    /// Replacement with `$1` references.
    pub replacement: Option<String>,
    /// `replace`, `keep`, `drop`, `keepequal`, `dropequal`, `hashmod`, `labelmap`, `labeldrop`, `labelkeep`, `lowercase`, `uppercase`.
    pub action: Option<String>,
}
