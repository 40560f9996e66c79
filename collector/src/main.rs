//! `telemetry-collector` binary: `--config FILE` runs the collector, `validate --config FILE` checks a config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;
use telemetry_collector::config::Config;
use telemetry_collector::config::duration::parse_duration;
use telemetry_collector::service::BoundAddrs;

/// mimalloc: the pipeline allocates and frees many small protobuf objects per request; it is
/// markedly faster than glibc malloc for that and returns memory to the OS more readily.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// OpenTelemetry Collector in Rust that reads the upstream collector's YAML config.
#[derive(Debug, Parser)]
#[command(name = "telemetry-collector", version)]
struct Cli {
    /// Path to the collector YAML config (upstream syntax; `file:` prefix accepted).
    #[arg(long, global = true, env = "OTELCOL_CONFIG")]
    config: Option<String>,
    /// How long SIGTERM may take to flush batches and drain exporter queues.
    #[arg(long, global = true, default_value = "20s", value_parser = parse_duration)]
    shutdown_timeout: Duration,
    /// Once every listener is bound, write their addresses here as a JSON object keyed by config
    /// path (e.g. `{"receivers.otlp.protocols.grpc": "127.0.0.1:40123"}`), so whoever started
    /// the collector with port-0 endpoints learns the ports (the process-level tests do).
    #[arg(long, value_name = "FILE")]
    bound_addresses_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the config and exit non-zero with messages naming the offending paths.
    Validate,
}

fn init_logging(config: &Config) {
    let level = config.telemetry.logs.level.clone().unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.telemetry.logs.encoding.as_deref() == Some("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Writes `addrs` as JSON to `path` through a temporary file beside it and a rename, so a reader
/// polling for `path` never sees a half-written file.
fn write_bound_addresses(path: &Path, addrs: &BoundAddrs) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(addrs)?)?;
    std::fs::rename(&temporary, path)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(path) = cli.config else {
        eprintln!("Error: --config FILE is required");
        return ExitCode::from(2);
    };
    let path = PathBuf::from(path.strip_prefix("file:").unwrap_or(&path));
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Validate) = cli.command {
        for w in &config.warnings {
            eprintln!("warning: {w}");
        }
        return ExitCode::SUCCESS;
    }
    init_logging(&config);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let on_ready = |addrs: &BoundAddrs| {
        if let Some(path) = &cli.bound_addresses_file
            && let Err(e) = write_bound_addresses(path, addrs)
        {
            // Not fatal: the collector serves either way; whoever waits for the file sees this.
            tracing::error!(file = %path.display(), error = %e, "cannot write the bound addresses");
        }
    };
    let result =
        rt.block_on(telemetry_collector::service::run(config, shutdown_signal(), cli.shutdown_timeout, on_ready));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
