//! The `otlp` receiver's config (aliases `otlp_grpc`, `otlp_http`): which transports to serve and
//! each server's settings, with its checks. Server authentication, server TLS and the gRPC client
//! ping policy are refused rather than accepted and ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};
use crate::duration::de_opt_duration;
use crate::shared::{AuthConfig, TlsConfig};

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

http_server_config! {
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

impl Validate for OtlpReceiverConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        let (grpc, http) = (self.protocols.grpc.as_ref(), self.protocols.http.as_ref());
        if grpc.is_none() && http.is_none() {
            check.error(format!("{p}.protocols: must specify at least one protocol (grpc or http)"));
        }
        // Accepting an auth block we don't enforce would silently leave the receiver open.
        if grpc.is_some_and(|g| g.auth.is_some()) {
            check.error(format!("{p}.protocols.grpc.auth: server authentication is not supported yet"));
        }
        if http.is_some_and(|h| h.auth.is_some()) {
            check.error(format!("{p}.protocols.http.auth: server authentication is not supported yet"));
        }
        // Accepting and ignoring these would promise connection hygiene we don't give.
        if grpc.and_then(|g| g.keepalive.as_ref()).is_some_and(|k| k.enforcement_policy.is_some()) {
            check.error(format!("{p}.protocols.grpc.keepalive.enforcement_policy: not supported (hyper's HTTP/2 server cannot enforce a client ping policy)"));
        }
        if http.is_some_and(|h| h.cors.is_some()) {
            check.warn(format!(
                "{p}.protocols.http.cors: CORS is not implemented yet; browser clients will be refused by their browser"
            ));
        }
        for (proto, tls) in [("grpc", grpc.and_then(|g| g.tls.as_ref())), ("http", http.and_then(|h| h.tls.as_ref()))] {
            if tls.is_some() {
                check.error(format!("{p}.protocols.{proto}.tls: server TLS is not supported yet; terminate TLS in front of the collector"));
            }
        }
    }
}
