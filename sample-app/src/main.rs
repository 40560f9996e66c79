//! `reviews-service`: The reviews service: an instrumented REST API with a real database.
//! See `sample-app/README.md` for endpoints and configuration.

use clap::Parser;
use reviews_service::{Config, logging, server};

// Telemetry allocates on request threads and frees on the export task;
// glibc's malloc (and musl's, in the static container build) is slow at
// exactly that cross-thread pattern, mimalloc is not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    logging::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "reviews-service failed");
            eprintln!("reviews-service: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
