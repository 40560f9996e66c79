//! Shared fixtures for the integration tests: a real PostgreSQL server in a
//! temp dir, a real OTLP receiver (gRPC and HTTP), the service binary as a
//! child process, and small HTTP helpers.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod otlp;
pub mod postgres;
pub mod service;

// Condition waits and the tools folder are the same for every crate's tests.
#[allow(unused_imports)] // each test binary uses its own subset
pub use telemetry_tests::{tools_bin, wait_for};
