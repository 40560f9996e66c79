//! `telemetry-operator` library: CRD types, pure renderers and the controllers, so tests can run the
//! operator in-process against a real API server.

pub mod crd;
pub mod config;
pub mod validate;
pub mod resources;
pub mod conditions;
pub mod inject;
pub mod crdgen;
pub mod error;
pub mod metrics;
pub mod context;
pub mod isvc;
pub mod pipeline;
pub mod http;
pub mod leader;
pub mod run;

pub use run::run_controllers;
