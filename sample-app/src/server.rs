//! Startup and shutdown: builds state from [`Config`], serves until SIGTERM
//! or SIGINT, drains in-flight requests (bounded by
//! `SHUTDOWN_TIMEOUT_SECONDS`), then flushes telemetry and closes the pool.

use crate::app::{AppState, app};
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::telemetry::{Telemetry, TelemetryError};
use crate::upstream::Upstream;
use std::sync::Arc;
use std::time::Duration;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Telemetry configuration was invalid.
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// `UPSTREAM_URL` could not be turned into an HTTP client.
    #[error("UPSTREAM_URL: {0}")]
    Upstream(#[source] reqwest::Error),
    /// Binding `LISTEN_ADDR` failed or the server's socket broke.
    #[error("LISTEN_ADDR {addr}: {source}")]
    Io {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Installing the signal handler failed.
    #[error("installing signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}

/// How long telemetry may take to flush at exit, per signal.
const TELEMETRY_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// SIGTERM/SIGINT listeners. Installed before the socket is bound, so a
/// signal can never hit the default disposition (immediate death) once the
/// service accepts requests.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self, ServerError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(ServerError::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(ServerError::Signal)?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Runs the service until a shutdown signal.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let mut signals = Signals::install()?;
    let telemetry = Arc::new(if config.enable_telemetry { Telemetry::from_env()? } else { Telemetry::disabled() });
    let db = Db::connect_with_statement_timeout(
        &config.database_url,
        config.db_max_connections,
        Duration::from_secs(config.db_connect_timeout_seconds),
        Duration::from_millis(config.db_statement_timeout_ms),
        telemetry.clone(),
    )
    .await?;
    let upstream = config
        .upstream_url
        .as_deref()
        .map(|u| Upstream::new(u, Duration::from_millis(config.upstream_timeout_ms)))
        .transpose()
        .map_err(ServerError::Upstream)?;
    let state = Arc::new(
        AppState::new(
            db.clone(),
            telemetry.clone(),
            config.enable_metrics,
            config.cache_ttl(),
            config.cache_max_entries,
            upstream,
        )
        .with_limits(config.request_limits()),
    );
    let addr = config.listen_addr;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServerError::Io { addr, source })?;
    let local = listener.local_addr().map_err(|source| ServerError::Io { addr, source })?;
    tracing::info!(
        addr = %local,
        database = db.backend().system(),
        telemetry = config.enable_telemetry,
        metrics = config.enable_metrics,
        "listening"
    );

    let stop = tokio_util::sync::CancellationToken::new();
    let mut server = tokio::spawn(crate::listener::serve(listener, app(state), config.listener_limits(), stop.clone()));
    let signal = tokio::select! {
        s = signals.recv() => Some(s),
        r = &mut server => {
            // The server ended on its own: only an I/O failure does that.
            if let Ok(Err(source)) = r {
                return Err(ServerError::Io { addr: local, source });
            }
            None
        }
    };
    if let Some(signal) = signal {
        tracing::info!(signal, "shutting down: draining in-flight requests");
        stop.cancel();
        let drain = Duration::from_secs(config.shutdown_timeout_seconds);
        match tokio::time::timeout(drain, &mut server).await {
            Ok(_) => tracing::info!("drained"),
            Err(_) => {
                tracing::warn!(timeout_s = drain.as_secs(), "drain timed out; abandoning remaining requests");
                server.abort();
            }
        }
    }
    // Provider shutdown blocks on the export tasks, so keep it off the
    // async workers.
    let t = telemetry.clone();
    let _ = tokio::task::spawn_blocking(move || t.shutdown(TELEMETRY_FLUSH_TIMEOUT)).await;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}
