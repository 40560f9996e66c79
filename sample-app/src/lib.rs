//! The reviews service: an instrumented REST API (axum) over SQLite or
//! PostgreSQL, with OpenTelemetry traces/metrics and Prometheus metrics.
//!
//! The binary (`main.rs`) only parses configuration, wires these modules
//! and serves; everything testable lives here.

pub mod app;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod handlers;
pub mod http_metrics;
pub mod listener;
pub mod logging;
pub mod middleware;
pub mod model;
pub mod routes;
pub mod server;
pub mod span_processor;
pub mod state;
pub mod telemetry;
pub mod upstream;
pub mod writer;

pub use app::{AppState, app};
pub use config::Config;
