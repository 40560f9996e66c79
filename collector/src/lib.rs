//! `telemetry-collector`: an OpenTelemetry Collector in Rust that reads the upstream collector's YAML.
//!
//! Layout: [`config`] and [`registry`] (parsing and validation, from the `collector-config` crate
//! the operator links too),
//! [`pdata`] (the data model: the opentelemetry-proto request types, decoded or still encoded),
//! [`raw_codec`] (gRPC bodies as bytes), [`receiver`], [`processor`], [`exporter`], [`extension`], [`telemetry`] (own metrics), [`pipeline`] (consumer chains) and
//! [`build`] (config → running component, one arm per type) and [`service`] (runs the graph and
//! handles shutdown).

/// The whole config crate, for users of this library that name component config types (the fuzz targets).
pub use collector_config;
pub use collector_config::{config, registry};
pub mod build;
pub mod exporter;
pub mod extension;
pub mod listener;
pub mod pdata;
pub mod pipeline;
pub mod process_memory;
pub mod processor;
pub mod raw_codec;
pub mod receiver;
pub mod service;
pub mod telemetry;
