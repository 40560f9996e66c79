//! `telemetry-collector`: OpenTelemetry Collector in Rust that reads the upstream collector's YAML config.

use clap::Parser;

/// OpenTelemetry Collector in Rust that reads the upstream collector's YAML config.
#[derive(Debug, Parser)]
#[command(name = "telemetry-collector", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
