//! `telemetry-operator` library: CRD types, pure renderers and the controllers, so tests can run the
//! operator in-process against a real API server.

pub mod crd;
pub mod config;
pub mod validate;
pub mod resources;
pub mod conditions;
pub mod inject;
