//! Service configuration from command-line flags or environment variables
//! (the operator sets the variables). `OTEL_*` variables are read by the
//! OpenTelemetry SDK and exporters themselves, see `telemetry`.

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, with trace and span ids.
    Json,
    /// Human readable.
    Text,
}

/// The reviews service: an instrumented REST API with a real database.
#[derive(Debug, Clone, Parser)]
#[command(name = "reviews-service", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8000")]
    pub listen_addr: SocketAddr,

    /// `sqlite://path.db` (created if missing) or `postgres://user:pass@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://reviews.db")]
    pub database_url: String,

    /// Database connection pool size.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,

    /// How long to wait for a database connection (startup and per request).
    #[arg(long, env = "DB_CONNECT_TIMEOUT_SECONDS", default_value_t = 10)]
    pub db_connect_timeout_seconds: u64,

    /// Lifetime of cached reads; 0 disables the cache.
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value_t = 5)]
    pub cache_ttl_seconds: u64,

    /// Most entries each read cache holds.
    #[arg(long, env = "CACHE_MAX_ENTRIES", default_value_t = 10_000)]
    pub cache_max_entries: usize,

    /// Byte budget of each cache (approximate heap size of the cached values and keys).
    #[arg(long, env = "CACHE_MAX_BYTES", default_value_t = 32 << 20)]
    pub cache_max_bytes: usize,

    /// Export traces and metrics over OTLP (configured by the OTEL_* variables).
    #[arg(long, env = "ENABLE_TELEMETRY", default_value = "false", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub enable_telemetry: bool,

    /// Serve Prometheus metrics on /metrics.
    #[arg(long, env = "ENABLE_METRICS", default_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub enable_metrics: bool,

    /// Base URL of another reviews service that /api/v1/upstream/reviews calls.
    #[arg(long, env = "UPSTREAM_URL")]
    pub upstream_url: Option<String>,

    /// Timeout of one upstream call.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 2000)]
    pub upstream_timeout_ms: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// After SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 20)]
    pub shutdown_timeout_seconds: u64,

    /// PostgreSQL `statement_timeout` of every pooled connection.
    #[arg(long, env = "DB_STATEMENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub db_statement_timeout_ms: u64,

    /// Time a client has to send a request's headers (slowloris bound); 0 disables.
    #[arg(long, env = "HTTP_READ_HEADER_TIMEOUT_SECONDS", default_value_t = 60)]
    pub http_read_header_timeout_seconds: u64,

    /// Time a keep-alive connection may wait for its next request; 0 disables.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECONDS", default_value_t = 60)]
    pub http_idle_timeout_seconds: u64,

    /// Open connections at once; beyond it the listener stops accepting until one closes.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 4096)]
    pub http_max_connections: usize,

    /// Whole-request timeout of the API routes (body read included); then 503.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,

    /// API requests handled at once (`/health`, `/ready`, `/metrics` are outside the limit);
    /// further API requests wait, within the request timeout.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
}

impl Config {
    /// Listener limits from the `HTTP_*` settings (0 disables a timeout).
    pub fn listener_limits(&self) -> crate::listener::ServerLimits {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        crate::listener::ServerLimits {
            read_header_timeout: secs(self.http_read_header_timeout_seconds),
            idle_timeout: secs(self.http_idle_timeout_seconds),
            max_connections: self.http_max_connections.max(1),
            shutdown_grace: Duration::from_secs(self.shutdown_timeout_seconds),
        }
    }

    /// Request timeout and concurrency limit of the API routes.
    pub fn request_limits(&self) -> crate::state::RequestLimits {
        crate::state::RequestLimits {
            timeout: Duration::from_secs(self.request_timeout_seconds.max(1)),
            max_concurrent: self.max_concurrent_requests.max(1),
        }
    }

    /// Cache TTL as a duration.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::try_parse_from(["reviews-service"]).expect("defaults parse");
        assert!(!c.enable_telemetry);
        assert!(c.enable_metrics);
        assert_eq!(c.listen_addr.port(), 8000);
        assert_eq!(c.database_url, "sqlite://reviews.db");
    }

    #[test]
    fn booleans_accept_operator_spelling_and_reject_nonsense() {
        let c = Config::try_parse_from(["x", "--enable-telemetry", "true", "--enable-metrics", "0"]).expect("parse");
        assert!(c.enable_telemetry);
        assert!(!c.enable_metrics);
        let err = Config::try_parse_from(["x", "--enable-telemetry", "maybe"]).expect_err("must fail").to_string();
        assert!(err.contains("ENABLE_TELEMETRY"), "{err}");
    }
}
