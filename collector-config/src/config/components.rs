//! Typed configuration of every supported component. Field names and defaults follow the upstream
//! collector; the doc comments here are the user documentation for each option.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::duration::serde_duration;

fn default_true() -> bool {
    true
}

/// Env expansion turns `${env:X}` = `12345` into a YAML number; string fields take it back as text.
fn de_lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!("expected a string, got {other:?}"))),
    }
}

/// Map variant of [`de_lenient_string`] for `headers`.
fn de_lenient_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(serde::de::Error::custom(format!("{k}: expected a string, got {other:?}"))),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// TLS settings for clients (exporters) and servers (receivers).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Client only: disable TLS entirely and speak plaintext (`http://`).
    pub insecure: bool,
    /// Client only: accept any server certificate. Not supported by this collector; rejected when true.
    pub insecure_skip_verify: bool,
    /// PEM file with the CA used to verify the peer.
    pub ca_file: Option<String>,
    /// Inline PEM CA, alternative to `ca_file`.
    pub ca_pem: Option<String>,
    /// PEM certificate presented to the peer.
    pub cert_file: Option<String>,
    /// Inline PEM certificate.
    pub cert_pem: Option<String>,
    /// PEM private key for `cert_file`.
    pub key_file: Option<String>,
    /// Inline PEM private key.
    pub key_pem: Option<String>,
    /// Server name used for SNI and certificate verification instead of the endpoint host.
    pub server_name_override: Option<String>,
    /// Minimum TLS version (`1.2`, `1.3`).
    pub min_version: Option<String>,
    /// Maximum TLS version.
    pub max_version: Option<String>,
    /// Server only: CA used to verify client certificates (mTLS).
    pub client_ca_file: Option<String>,
    /// How often certificates are reloaded from disk.
    #[serde(with = "serde_duration", default)]
    pub reload_interval: Duration,
    /// Allowed cipher suites (accepted for compatibility, the TLS library picks secure defaults).
    pub cipher_suites: Vec<String>,
    /// Trust the public roots (the bundled Mozilla roots) as well as `ca_file`/`ca_pem`; without it
    /// a configured CA replaces them, as upstream.
    pub include_system_ca_certs_pool: bool,
}

/// `auth:` block referencing an authenticator extension by id.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Id of the authenticator extension, e.g. `basicauth/grafana`.
    pub authenticator: String,
}

/// Client keepalive for gRPC exporters.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientKeepalive {
    /// Interval between keepalive pings.
    #[serde(with = "serde_duration")]
    pub time: Duration,
    /// How long to wait for a ping ack.
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    /// Send pings even without active streams.
    pub permit_without_stream: bool,
}

/// `retry_on_failure`: exponential backoff for retryable export failures.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retry failed exports at all (default true).
    pub enabled: bool,
    /// First wait after a failure (default 5s).
    #[serde(with = "serde_duration")]
    pub initial_interval: Duration,
    /// Jitter as a fraction of the interval (default 0.5).
    pub randomization_factor: f64,
    /// Growth of the interval per attempt (default 1.5).
    pub multiplier: f64,
    /// Upper bound for one wait (default 30s).
    #[serde(with = "serde_duration")]
    pub max_interval: Duration,
    /// Give up on a batch after this long (default 300s; 0 means retry forever).
    #[serde(with = "serde_duration")]
    pub max_elapsed_time: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            randomization_factor: 0.5,
            multiplier: 1.5,
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
        }
    }
}

/// `sending_queue`: bounded queue in front of an exporter, in memory or (with `storage`) on disk.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Use the queue (default true). Without it the pipeline waits for each export.
    pub enabled: bool,
    /// Number of concurrent export workers (default 10).
    pub num_consumers: usize,
    /// Maximum the queue holds, counted by `sizer` (default 1000). Data beyond it is refused
    /// with a retryable error and counted in `otelcol_exporter_enqueue_failed_*`.
    pub queue_size: usize,
    /// A `file_storage` extension id: keep the queue on disk, so it survives a crash.
    pub storage: Option<String>,
    /// Block the pipeline instead of refusing when full (default false).
    pub blocking: bool,
    /// What `queue_size` counts (default `requests`). The in-memory queue counts requests
    /// only; a persistent queue also counts `items` or `bytes` (of its files on disk).
    pub sizer: Sizer,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            storage: None,
            blocking: false,
            sizer: Sizer::Requests,
        }
    }
}

/// `sending_queue.sizer`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    /// Batches (export requests).
    #[default]
    Requests,
    /// Spans, data points or log records.
    Items,
    /// Bytes: of the queue's files on disk, for a persistent queue.
    Bytes,
}

/// Export compression: `gzip` (default) or `none`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip request bodies (default).
    #[default]
    Gzip,
    /// Send uncompressed.
    #[serde(alias = "")]
    None,
}

// ---------------------------------------------------------------------------------------------
// Receivers
// ---------------------------------------------------------------------------------------------

/// `otlp` receiver (alias `otlp_grpc`, `otlp_http` are accepted as the same type).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    /// Which transports to serve. At least one of `grpc` and `http` must be set.
    pub protocols: OtlpProtocols,
}

/// `protocols:` of the otlp receiver.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpProtocols {
    /// gRPC server (traces/metrics/logs services); an empty block enables it with defaults.
    #[serde(deserialize_with = "de_present")]
    pub grpc: Option<GrpcServerConfig>,
    /// HTTP server (`/v1/traces`, `/v1/metrics`, `/v1/logs`).
    #[serde(deserialize_with = "de_present")]
    pub http: Option<HttpServerConfig>,
}

/// Treat `grpc:` with a null value as "present with defaults".
fn de_present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let v = Option::<T>::deserialize(d)?;
    Ok(Some(v.unwrap_or_default()))
}

/// gRPC server settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    /// Listen address (default `localhost:4317`; use `0.0.0.0:4317` in containers).
    pub endpoint: String,
    /// Transport (`tcp` only).
    pub transport: Option<String>,
    /// Largest accepted message in MiB (default 4).
    pub max_recv_msg_size_mib: u64,
    /// Maximum concurrent HTTP/2 streams per connection (default 250, as Go's HTTP/2 server; upstream: unlimited).
    pub max_concurrent_streams: Option<u32>,
    /// Socket read buffer size (accepted for compatibility).
    pub read_buffer_size: Option<u64>,
    /// Socket write buffer size (accepted for compatibility).
    pub write_buffer_size: Option<u64>,
    /// Server keepalive: `server_parameters.{max_connection_idle,max_connection_age,
    /// max_connection_age_grace,time,timeout}` are applied; `enforcement_policy` is refused at
    /// validation (hyper's HTTP/2 server cannot enforce a client ping policy).
    pub keepalive: Option<GrpcKeepalive>,
    /// Server TLS.
    pub tls: Option<TlsConfig>,
    /// Server authenticator extension.
    pub auth: Option<AuthConfig>,
    /// Propagate request metadata into the pipeline (accepted for compatibility).
    pub include_metadata: bool,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:4317".into(),
            transport: None,
            max_recv_msg_size_mib: 4,
            max_concurrent_streams: None,
            read_buffer_size: None,
            write_buffer_size: None,
            keepalive: None,
            tls: None,
            auth: None,
            include_metadata: false,
        }
    }
}

/// `keepalive` of a gRPC server (upstream's `configgrpc.KeepaliveServerConfig`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepalive {
    /// Connection ageing and HTTP/2 pings.
    pub server_parameters: Option<GrpcKeepaliveServerParameters>,
    /// Client ping policy (refused: hyper's HTTP/2 server cannot enforce it).
    pub enforcement_policy: Option<Value>,
}

/// `keepalive.server_parameters` of a gRPC server.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepaliveServerParameters {
    /// Close connections without an RPC in flight for this long (default: never, as grpc-go).
    #[serde(deserialize_with = "de_opt_duration")]
    pub max_connection_idle: Option<Duration>,
    /// Close connections (with GOAWAY) after this age.
    #[serde(deserialize_with = "de_opt_duration")]
    pub max_connection_age: Option<Duration>,
    /// After `max_connection_age`, how long in-flight calls may finish.
    #[serde(deserialize_with = "de_opt_duration")]
    pub max_connection_age_grace: Option<Duration>,
    /// Interval of server HTTP/2 pings.
    #[serde(deserialize_with = "de_opt_duration")]
    pub time: Option<Duration>,
    /// Time to wait for a ping acknowledgement before closing the connection.
    #[serde(deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

/// CORS for the HTTP receiver.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to send data from browsers.
    pub allowed_origins: Vec<String>,
    /// Extra request headers allowed.
    pub allowed_headers: Vec<String>,
    /// Preflight cache time in seconds.
    pub max_age: Option<u64>,
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// Listen address (default `localhost:4318`).
    pub endpoint: String,
    /// Largest accepted body in bytes, before and after decompression (default 20 MiB).
    pub max_request_body_size: u64,
    /// Propagate request headers into the pipeline (accepted for compatibility).
    pub include_metadata: bool,
    /// Browser CORS settings.
    pub cors: Option<CorsConfig>,
    /// Server TLS.
    pub tls: Option<TlsConfig>,
    /// Server authenticator extension.
    pub auth: Option<AuthConfig>,
    /// Path for traces (default `/v1/traces`).
    pub traces_url_path: String,
    /// Path for metrics (default `/v1/metrics`).
    pub metrics_url_path: String,
    /// Path for logs (default `/v1/logs`).
    pub logs_url_path: String,
    /// Accepted request encodings (accepted for compatibility; gzip and identity are supported).
    pub compression_algorithms: Vec<String>,
    /// Response headers to add.
    pub response_headers: BTreeMap<String, String>,
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

impl HttpServerConfig {
    /// The listener limits these settings select.
    pub fn limits(&self) -> crate::limits::ServerLimits {
        crate::limits::ServerLimits::from_settings(self.read_header_timeout, self.idle_timeout, self.read_timeout)
    }
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:4318".into(),
            max_request_body_size: 20 * 1024 * 1024,
            include_metadata: false,
            cors: None,
            tls: None,
            auth: None,
            traces_url_path: "/v1/traces".into(),
            metrics_url_path: "/v1/metrics".into(),
            logs_url_path: "/v1/logs".into(),
            compression_algorithms: Vec::new(),
            response_headers: BTreeMap::new(),
            read_header_timeout: None,
            idle_timeout: None,
            read_timeout: None,
        }
    }
}

/// `prometheus` receiver: Prometheus scrape config embedded under `config:`.
/// Validated and compiled by `receiver::prometheus::plan`, which lists what is supported.
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

fn de_opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    // `0` (Go's "no timeout") is written bare in upstream configs; other bare integers are refused.
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => super::duration::serde_duration::deserialize(v).map(Some).map_err(serde::de::Error::custom),
    }
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

/// `hostmetrics` receiver (`receiver/hostmetrics`); scraper bodies are typed there.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HostMetricsConfig {
    /// How often to collect (default 1m).
    #[serde(deserialize_with = "de_opt_duration")]
    pub collection_interval: Option<Duration>,
    /// Delay before the first collection.
    #[serde(deserialize_with = "de_opt_duration")]
    pub initial_delay: Option<Duration>,
    /// Host root mount when running in a container (e.g. `/hostfs`).
    pub root_path: Option<String>,
    /// Scrapers to run (cpu, disk, filesystem, load, memory, network, paging, processes, system), each
    /// with its options; typed and validated by `receiver::hostmetrics::config`.
    pub scrapers: BTreeMap<String, Option<Value>>,
}

// ---------------------------------------------------------------------------------------------
// Processors
// ---------------------------------------------------------------------------------------------

/// `batch` processor.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Send when this many items (spans, data points, log records) are buffered (default 8192).
    pub send_batch_size: usize,
    /// Split batches larger than this (0 = no limit). Must be >= send_batch_size.
    pub send_batch_max_size: usize,
    /// Send a partial batch after this long (default 200ms).
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    /// Batch separately per client metadata key (accepted for compatibility).
    pub metadata_keys: Vec<String>,
    /// Limit of metadata combinations (accepted for compatibility).
    pub metadata_cardinality_limit: Option<u64>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: Duration::from_millis(200),
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: None,
        }
    }
}

/// `memory_limiter` processor.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryLimiterConfig {
    /// How often memory use is measured (required, e.g. `1s`).
    #[serde(with = "serde_duration")]
    pub check_interval: Duration,
    /// Hard limit in MiB of resident memory.
    pub limit_mib: u64,
    /// Headroom below the hard limit; data is refused above `limit - spike` (default 20% of limit).
    pub spike_limit_mib: u64,
    /// Hard limit as percentage of total memory (alternative to limit_mib).
    pub limit_percentage: u64,
    /// Spike limit as percentage of total memory.
    pub spike_limit_percentage: u64,
    /// Minimum GC interval when soft limit is exceeded (accepted for compatibility).
    #[serde(with = "serde_duration")]
    pub min_gc_interval_when_soft_limited: Duration,
    /// Minimum GC interval when hard limit is exceeded (accepted for compatibility).
    #[serde(with = "serde_duration")]
    pub min_gc_interval_when_hard_limited: Duration,
}

/// One attribute action of the `attributes` / `resource` processors.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeAction {
    /// Attribute key the action applies to (required unless `pattern`/`regex` selects keys).
    pub key: String,
    /// Literal value for insert/update/upsert.
    pub value: Option<Value>,
    /// Copy the value from another attribute.
    pub from_attribute: Option<String>,
    /// Copy from request context: refused (receivers do not pass request metadata on).
    pub from_context: Option<String>,
    /// For `extract`: regex with named groups applied to the value of `key`.
    /// For `delete`/`hash`: regex selecting the keys to act on.
    pub pattern: Option<String>,
    /// `insert`, `update`, `upsert`, `delete`, `hash`, `extract`, `convert`.
    pub action: String,
    /// Target type for `convert`: `int`, `double`, `string`.
    pub converted_type: Option<String>,
}

/// `resource` processor.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceProcessorConfig {
    /// Actions applied to resource attributes.
    pub attributes: Vec<AttributeAction>,
}

/// include/exclude matching for `attributes` and `span` processors.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchProperties {
    /// `strict` or `regexp`.
    pub match_type: String,
    /// Match on `service.name`.
    pub services: Vec<String>,
    /// Match on span name.
    pub span_names: Vec<String>,
    /// Match on span kind (`SPAN_KIND_SERVER`, ...).
    pub span_kinds: Vec<String>,
    /// Match on log body.
    pub log_bodies: Vec<String>,
    /// Match on log severity text.
    pub log_severity_texts: Vec<String>,
    /// Match on metric names.
    pub metric_names: Vec<String>,
    /// Attributes that must all match.
    pub attributes: Vec<MatchAttribute>,
    /// Resource attributes that must all match.
    pub resources: Vec<MatchAttribute>,
    /// Instrumentation scopes (`name`, `version`).
    pub libraries: Vec<Value>,
    /// Regexp cache options (accepted for compatibility).
    pub regexp: Option<Value>,
    /// Log severity number filter (accepted for compatibility).
    pub log_severity_number: Option<Value>,
}

/// One attribute condition in include/exclude.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchAttribute {
    /// Attribute key.
    pub key: String,
    /// Expected value; when absent only presence is checked.
    pub value: Option<Value>,
}

/// `attributes` processor.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributesProcessorConfig {
    /// Actions applied in order.
    pub actions: Vec<AttributeAction>,
    /// Only process items matching this.
    pub include: Option<MatchProperties>,
    /// Skip items matching this.
    pub exclude: Option<MatchProperties>,
}

/// `span` processor.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanProcessorConfig {
    /// Span renaming rules.
    pub name: SpanNameConfig,
    /// Sets the status of every selected span.
    pub status: Option<SpanStatus>,
    /// Only process spans matching this.
    pub include: Option<MatchProperties>,
    /// Skip spans matching this.
    pub exclude: Option<MatchProperties>,
}

/// `span.status`: the status given to every selected span.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanStatus {
    /// `Ok`, `Error` or `Unset`.
    pub code: SpanStatusCode,
    /// The status message; only with `code: Error` (for `Ok` and `Unset` the message is cleared).
    pub description: String,
}

/// A span status code, spelt as upstream's config spells it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum SpanStatusCode {
    /// `STATUS_CODE_UNSET`.
    #[default]
    Unset,
    /// `STATUS_CODE_OK`.
    Ok,
    /// `STATUS_CODE_ERROR`.
    Error,
}

/// `span.name` options.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanNameConfig {
    /// Build the name from these attribute values (all must exist).
    pub from_attributes: Vec<String>,
    /// Separator between the values (default empty).
    pub separator: String,
    /// Extract attributes from the span name.
    pub to_attributes: Option<ToAttributes>,
}

/// `span.name.to_attributes`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ToAttributes {
    /// Regexes with named groups; matched groups become attributes and `{name}` in the span name.
    pub rules: Vec<String>,
    /// Stop after the first matching rule.
    pub break_after_match: bool,
    /// Extract the attributes but leave the span name as it was (instead of replacing the matched
    /// parts with `{group}` placeholders).
    pub keep_original_name: bool,
}

/// `metricstransform` processor: renames metrics, copies them under a new name, and edits data
/// point labels and values, following upstream's `metricstransformprocessor`.
///
/// Transforms run in order over every scope's metrics; a later transform sees the result of the
/// earlier ones (including metrics they inserted). Scopes and resources left without metrics are
/// dropped, as upstream does. Refused at validation: `action: combine` and `action: group`, and
/// the `aggregate_labels` / `aggregate_label_values` operations.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTransformConfig {
    /// Transform rules, applied in order.
    pub transforms: Vec<MetricTransform>,
}

/// One metricstransform rule: which metrics to match, what to do with them, and the operations
/// applied to the result.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricTransform {
    /// Metric name (`match_type: strict`) or regular expression (`match_type: regexp`, unanchored
    /// like upstream's Go regexp) selecting the metrics to operate on. Required.
    #[serde(deserialize_with = "de_lenient_string")]
    pub include: String,
    /// How `include` and `experimental_match_labels` are matched (default `strict`).
    pub match_type: MetricMatchType,
    /// Only data points whose labels match: label name to value (`strict`: equal; `regexp`: the
    /// regex matches the value somewhere). A label that is absent, or not a string, counts as the
    /// empty string. With `action: update`, the metric is selected if any point matches;
    /// `update_label`, `toggle_scalar_data_type` and `experimental_scale_value` then change only
    /// the matching points, while `new_name`, `add_label` and `delete_label_value` apply only when
    /// every point matches. With `action: insert`, only the matching points are copied.
    #[serde(deserialize_with = "de_lenient_map")]
    pub experimental_match_labels: BTreeMap<String, String>,
    /// What to do with the matched metrics: `update` (in place) or `insert` (append a copy to the
    /// same scope, with `new_name` and the operations applied to the copy only). Required.
    /// `combine` and `group` are refused.
    pub action: Option<MetricTransformAction>,
    /// New metric name (required with `insert`). With `match_type: regexp`, `$1`, `${1}` and
    /// `$name` expand to the capture groups of `include` (write `$$` in the YAML for a literal `$`).
    #[serde(deserialize_with = "de_lenient_string")]
    pub new_name: String,
    /// Labels for the new resource of `action: group` (refused with it; ignored otherwise, as upstream does).
    pub group_resource_labels: Option<BTreeMap<String, String>>,
    /// Aggregation of `action: combine` (refused with it; ignored otherwise, as upstream does).
    pub aggregation_type: Option<AggregationType>,
    /// Case of label values made from regexp submatches by `action: combine` (refused with it;
    /// ignored otherwise, as upstream does).
    pub submatch_case: Option<SubmatchCase>,
    /// Operations applied, in order, to each resulting metric.
    pub operations: Vec<MetricOperation>,
}

/// `transforms[].match_type`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricMatchType {
    /// Exact name and label values (default; upstream treats an empty value as strict).
    #[default]
    #[serde(alias = "")]
    Strict,
    /// Regular expressions.
    Regexp,
}

/// `transforms[].action`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricTransformAction {
    /// Change the matched metrics in place.
    Update,
    /// Append a changed copy of each matched metric to its scope.
    Insert,
    /// Merge the matched metrics into one (refused: not implemented).
    Combine,
    /// Move the matched metrics into a new resource (refused: not implemented).
    Group,
}

impl MetricTransformAction {
    /// The name as written in the config, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::Insert => "insert",
            Self::Combine => "combine",
            Self::Group => "group",
        }
    }
}

/// Aggregation function named by `aggregation_type` (upstream's `aggregateutil` set).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AggregationType {
    /// Sum of the values.
    Sum,
    /// Mean of the values.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median of the values.
    Median,
    /// Number of values.
    Count,
}

/// `transforms[].submatch_case`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubmatchCase {
    /// Lower-case the submatch.
    Lower,
    /// Upper-case the submatch.
    Upper,
}

/// One entry of `transforms[].operations`. Fields are shared by all actions as upstream's are; a
/// field the action does not use is ignored (and reported as a warning).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricOperation {
    /// The operation. Required.
    pub action: Option<MetricOperationAction>,
    /// Label to operate on (`update_label`: required; `delete_label_value`).
    #[serde(deserialize_with = "de_lenient_string")]
    pub label: String,
    /// `add_label`: the label to add (required). `update_label`: rename `label` to this; an
    /// existing label of that name is overwritten.
    #[serde(deserialize_with = "de_lenient_string")]
    pub new_label: String,
    /// `add_label`: the value of the new label (required). `{{version}}` is replaced with this
    /// collector's version.
    #[serde(deserialize_with = "de_lenient_string")]
    pub new_value: String,
    /// `delete_label_value`: points whose `label` has this value are deleted.
    #[serde(deserialize_with = "de_lenient_string")]
    pub label_value: String,
    /// `update_label`: value renames applied to `label` (after a rename, to `new_label`).
    pub value_actions: Vec<ValueAction>,
    /// `experimental_scale_value`: the factor values are multiplied by (required, non-zero).
    pub experimental_scale: f64,
    /// `aggregate_labels` (refused): the labels to keep.
    pub label_set: Vec<String>,
    /// `aggregate_labels` / `aggregate_label_values` (refused): how points are aggregated.
    pub aggregation_type: Option<AggregationType>,
    /// `aggregate_label_values` (refused): the values of `label` to aggregate into `new_value`.
    pub aggregated_values: Vec<String>,
}

/// `operations[].action`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MetricOperationAction {
    /// Add `new_label: new_value` to every point that does not have `new_label` yet.
    AddLabel,
    /// Rename `label` to `new_label` and/or map its values by `value_actions`.
    UpdateLabel,
    /// Delete the points whose `label` equals `label_value`; a metric left without points is dropped.
    DeleteLabelValue,
    /// Gauge and sum points: int values become doubles and doubles become ints (truncated).
    ToggleScalarDataType,
    /// Multiply by `experimental_scale`: gauge and sum values (ints are truncated back to ints);
    /// for histograms the sum, min, max, explicit bounds and exemplar values. Exponential
    /// histograms and summaries are left unchanged, as upstream leaves them.
    ExperimentalScaleValue,
    /// Aggregate away every label not in `label_set` (refused: not implemented).
    AggregateLabels,
    /// Aggregate the `aggregated_values` of `label` into `new_value` (refused: not implemented).
    AggregateLabelValues,
}

impl MetricOperationAction {
    /// The name as written in the config, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AddLabel => "add_label",
            Self::UpdateLabel => "update_label",
            Self::DeleteLabelValue => "delete_label_value",
            Self::ToggleScalarDataType => "toggle_scalar_data_type",
            Self::ExperimentalScaleValue => "experimental_scale_value",
            Self::AggregateLabels => "aggregate_labels",
            Self::AggregateLabelValues => "aggregate_label_values",
        }
    }
}

/// `update_label.value_actions[]`: rename one label value.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ValueAction {
    /// The current value.
    #[serde(deserialize_with = "de_lenient_string")]
    pub value: String,
    /// The value it becomes. `{{version}}` is replaced with this collector's version.
    #[serde(deserialize_with = "de_lenient_string")]
    pub new_value: String,
}

// ---------------------------------------------------------------------------------------------
// Exporters
// ---------------------------------------------------------------------------------------------

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
    pub encoding: Option<String>,
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

/// `debug` exporter (the removed `logging` exporter is accepted as an alias).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DebugExporterConfig {
    /// `basic` (counts), `normal` (one line per item) or `detailed` (full dump).
    pub verbosity: String,
    /// Log the first N items per second.
    pub sampling_initial: u64,
    /// Then log every Nth item.
    pub sampling_thereafter: u64,
    /// Use the collector's own logger (accepted for compatibility).
    pub use_internal_logger: bool,
    /// Old `logging` exporter field; mapped onto verbosity.
    pub loglevel: Option<String>,
}

impl Default for DebugExporterConfig {
    fn default() -> Self {
        Self {
            verbosity: "basic".into(),
            sampling_initial: 2,
            sampling_thereafter: 1,
            use_internal_logger: true,
            loglevel: None,
        }
    }
}

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

impl PrometheusExporterConfig {
    /// The listener limits these settings select.
    pub fn limits(&self) -> crate::limits::ServerLimits {
        crate::limits::ServerLimits::from_settings(self.read_header_timeout, self.idle_timeout, self.read_timeout)
    }
}

/// `{enabled: bool}` blocks.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnabledFlag {
    /// Whether the feature is on.
    pub enabled: bool,
}

/// `file` exporter. Accepted and validated; writes one OTLP JSON line per batch.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileExporterConfig {
    /// Output file (required).
    pub path: String,
    /// `json` (default).
    pub format: Option<String>,
    /// Rotation settings (accepted for compatibility).
    pub rotation: Option<Value>,
    /// Flush interval (accepted for compatibility).
    pub flush_interval: Option<String>,
    /// Append instead of truncating.
    pub append: bool,
    /// Compression (accepted for compatibility).
    pub compression: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------------------------

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

/// `file_storage` extension: where persistent sending queues keep their files. Upstream's
/// settings that are not implemented here are refused by path rather than ignored.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileStorageConfig {
    /// Directory holding one sub-directory per queue (default `/var/lib/otelcol/file_storage`).
    pub directory: String,
    /// How long to wait for another process's lock on a queue directory (default 1s).
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    /// `fdatasync` each write before it is acknowledged (default false: the data is in the
    /// kernel's page cache, surviving a crash of the collector but not of the machine).
    pub fsync: bool,
    /// Create `directory` if it is missing (default false, as upstream).
    pub create_directory: bool,
    /// Space reclamation.
    pub compaction: CompactionConfig,
    /// Not implemented (the directory is created with the process umask); refused when set.
    pub directory_permissions: Option<Value>,
    /// Not implemented; refused when set.
    pub recreate: Option<Value>,
}

impl Default for FileStorageConfig {
    fn default() -> Self {
        Self {
            directory: "/var/lib/otelcol/file_storage".into(),
            timeout: Duration::from_secs(1),
            fsync: false,
            create_directory: false,
            compaction: CompactionConfig::default(),
            directory_permissions: None,
            recreate: None,
        }
    }
}

/// `file_storage.compaction`. A queue frees the disk of finished segments as it goes; these
/// settings reclaim the rest earlier.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionConfig {
    /// At start, rewrite each queue's oldest segment without its already-sent part.
    pub on_start: bool,
    /// Whenever a queue empties, start a new segment so the old one is deleted at once.
    pub on_rebound: bool,
    /// Where compaction writes; only `directory` itself is supported (compaction renames a
    /// file into place, which cannot cross file systems).
    pub directory: Option<String>,
    /// Not implemented (bbolt transactions); refused when set.
    pub max_transaction_size: Option<Value>,
    /// Not implemented (segments are freed as they finish instead); refused when set.
    pub rebound_needed_threshold_mib: Option<Value>,
    /// Not implemented; refused when set.
    pub rebound_trigger_threshold_mib: Option<Value>,
    /// Not implemented; refused when set.
    pub check_interval: Option<Value>,
    /// Not implemented; refused when set.
    pub cleanup_on_start: Option<Value>,
}

/// `basicauth` extension.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuthConfig {
    /// Credentials added to outgoing requests of exporters that reference this extension.
    pub client_auth: Option<BasicClientAuth>,
    /// Server-side credentials for receivers (`file` or `inline` htpasswd).
    pub htpasswd: Option<Htpasswd>,
}

/// `basicauth.client_auth`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicClientAuth {
    /// User name (use `${env:USER}` to keep it out of the file).
    #[serde(deserialize_with = "de_lenient_string")]
    pub username: String,
    /// Password (use `${env:PASSWORD}`).
    #[serde(deserialize_with = "de_lenient_string")]
    pub password: String,
}

/// `basicauth.htpasswd`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Htpasswd {
    /// htpasswd file path.
    pub file: Option<String>,
    /// Inline `user:password` lines.
    pub inline: Option<String>,
}
