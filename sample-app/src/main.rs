//! `reviews-service`: The reviews service: an instrumented REST API with a real database.

use clap::Parser;

/// The reviews service: an instrumented REST API with a real database.
#[derive(Debug, Parser)]
#[command(name = "reviews-service", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
