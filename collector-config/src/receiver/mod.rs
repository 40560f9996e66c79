//! Receiver configs, one module per receiver type; the runtime halves live in the collector's
//! `receiver` module under the same names.

pub mod hostmetrics;
pub mod otlp;
pub mod prometheus;
