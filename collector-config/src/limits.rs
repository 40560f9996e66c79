//! What a listener's limits are, as data: the timeouts and connection limits every HTTP and
//! gRPC listener of the collector applies, with upstream's defaults. The collector's
//! `listener` module enforces them; they live here because component configs
//! (`read_header_timeout`, `keepalive`, ...) turn into them at validation time.

use std::time::Duration;

/// Open connections per listener. At the limit the listener stops accepting (new clients wait in
/// the kernel's backlog) until a connection ends; the timeouts make sure one does.
pub const MAX_CONNECTIONS: usize = 4096;
/// Requests handled at once per listener (tower `ConcurrencyLimit`); further requests wait.
pub const MAX_CONCURRENT_REQUESTS: usize = 1024;
/// HTTP/2 streams per connection (upstream's Go server: 250).
pub const MAX_CONCURRENT_STREAMS: u32 = 250;
/// After shutdown starts, connections get this long to finish in-flight requests before they
/// are cut. Also how long a connection closed for idleness may take to say goodbye.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Upstream's `confighttp` defaults for `read_header_timeout` and `idle_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Timeouts and limits of one listener. [`Default`] is upstream's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    /// Time allowed to receive a request's headers; `None` disables it.
    pub read_header_timeout: Option<Duration>,
    /// Time a connection may sit with no request in flight; `None` disables it.
    pub idle_timeout: Option<Duration>,
    /// Time allowed to read a request body; `None` disables it.
    pub read_timeout: Option<Duration>,
    /// Open connections at once.
    pub max_connections: usize,
    /// Requests handled at once.
    pub max_concurrent_requests: usize,
    /// How long in-flight requests may finish after shutdown (or an idle close) before the
    /// connection is dropped.
    pub shutdown_grace: Duration,
    /// HTTP/2 connection settings (the gRPC receiver sets them from its config).
    pub http2: Http2Settings,
}

/// HTTP/2 settings of a listener; [`Default`] suits the HTTP listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct Http2Settings {
    /// Streams per connection.
    pub max_concurrent_streams: u32,
    /// Let hyper size flow-control windows from the measured bandwidth-delay product.
    pub adaptive_window: bool,
    /// Interval of server pings (`None`: no pings).
    pub keep_alive_interval: Option<Duration>,
    /// Time to wait for a ping acknowledgement before closing.
    pub keep_alive_timeout: Option<Duration>,
    /// Connections older than this are closed gracefully (GOAWAY).
    pub max_connection_age: Option<Duration>,
    /// After `max_connection_age`, how long in-flight requests may finish (default: the
    /// shutdown grace).
    pub max_connection_age_grace: Option<Duration>,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Self {
            max_concurrent_streams: MAX_CONCURRENT_STREAMS,
            adaptive_window: false,
            keep_alive_interval: None,
            keep_alive_timeout: None,
            max_connection_age: None,
            max_connection_age_grace: None,
        }
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            read_header_timeout: Some(DEFAULT_TIMEOUT),
            idle_timeout: Some(DEFAULT_TIMEOUT),
            read_timeout: Some(DEFAULT_TIMEOUT),
            max_connections: MAX_CONNECTIONS,
            max_concurrent_requests: MAX_CONCURRENT_REQUESTS,
            shutdown_grace: SHUTDOWN_GRACE,
            http2: Http2Settings::default(),
        }
    }
}

impl ServerLimits {
    /// Limits from upstream-style settings, where `0` (or unset → default) means "no timeout",
    /// as in Go's `http.Server`.
    pub fn from_settings(
        read_header_timeout: Option<Duration>,
        idle_timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> Self {
        let pick = |v: Option<Duration>| match v {
            None => Some(DEFAULT_TIMEOUT),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        };
        Self {
            read_header_timeout: pick(read_header_timeout),
            idle_timeout: pick(idle_timeout),
            read_timeout: pick(read_timeout),
            ..Self::default()
        }
    }
}
