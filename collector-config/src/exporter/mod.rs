//! Exporter configs, one module per exporter type (their shared retry and queue settings are in
//! [`crate::shared`]); the runtime halves live in the collector's `exporter` module under the same
//! names.

pub mod debug;
pub mod file;
pub mod otlp;
pub mod otlphttp;
pub mod prometheus;
