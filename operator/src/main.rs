//! `telemetry-operator`: Kubernetes operator reconciling TelemetryPipeline and InstrumentedService resources.

use clap::Parser;

/// Kubernetes operator reconciling TelemetryPipeline and InstrumentedService resources.
#[derive(Debug, Parser)]
#[command(name = "telemetry-operator", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
