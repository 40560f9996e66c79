//! Settings several components share, as upstream's `config*` packages share them: client TLS
//! (`configtls`), the `auth:` reference to an authenticator extension (`configauth`), and the
//! exporter helper's `retry_on_failure` and `sending_queue` (`exporterhelper`), each with its
//! checks; plus the lenient string deserializers env expansion needs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};
use crate::duration::serde_duration;

/// The type name of the extension `sending_queue.storage` must name.
const FILE_STORAGE: &str = "file_storage";
/// The type name of the only authenticator extension.
const BASIC_AUTH: &str = "basicauth";

/// Env expansion turns `${env:X}` = `12345` into a YAML number; string fields take it back as text.
pub(crate) fn de_lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!("expected a string, got {other:?}"))),
    }
}

/// Map variant of [`de_lenient_string`] for `headers`.
pub(crate) fn de_lenient_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
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

impl TlsConfig {
    /// Checks the settings of a client (exporter) TLS block at `path` (`exporters.otlp.tls`).
    pub fn validate_as_client(&self, path: &str, check: &mut Check<'_>) {
        if self.insecure_skip_verify {
            check.error(format!("{path}.insecure_skip_verify: not supported; provide ca_file instead"));
        }
    }
}

impl Validate for AuthConfig {
    /// `path` is the `auth` block (`exporters.otlp.auth`): the extension must exist and authenticate.
    fn validate(&self, path: &str, check: &mut Check<'_>) {
        match check.extension_type(&self.authenticator) {
            None => check.error(format!(
                "{path}.authenticator: references extension {:?} which is not configured",
                self.authenticator
            )),
            Some(BASIC_AUTH) => {}
            Some(_) => {
                check.error(format!("{path}.authenticator: extension {:?} is not an authenticator", self.authenticator))
            }
        }
    }
}

impl Validate for QueueConfig {
    /// `path` is the `sending_queue` block (`exporters.otlp.sending_queue`).
    fn validate(&self, path: &str, check: &mut Check<'_>) {
        if !self.enabled {
            return;
        }
        if self.queue_size == 0 {
            check.error(format!("{path}.queue_size: must be greater than zero"));
        }
        if self.num_consumers == 0 {
            check.error(format!("{path}.num_consumers: must be greater than zero"));
        }
        match &self.storage {
            // Accepting `items`/`bytes` while counting batches would bound the queue 100-1000x
            // looser than the user asked for; only the persistent queue counts them.
            None if self.sizer != Sizer::Requests => check.error(format!(
                "{path}.sizer: {:?} needs sending_queue.storage; the in-memory queue counts requests",
                self.sizer
            )),
            None => {}
            Some(id) => match check.extension_type(id) {
                Some(FILE_STORAGE) if check.extension_enabled(id) => {}
                Some(FILE_STORAGE) => {
                    check.error(format!("{path}.storage: extension {id:?} is not enabled in service.extensions"))
                }
                Some(_) => check.error(format!("{path}.storage: extension {id:?} is not a file_storage")),
                None => check.error(format!("{path}.storage: references extension {id:?} which is not configured")),
            },
        }
    }
}
