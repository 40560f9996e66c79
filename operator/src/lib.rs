//! `telemetry-operator` library: CRD types, pure renderers and the controllers, so tests can run the
//! operator in-process against a real API server.

pub mod agent;
pub mod backoff;
pub mod conditions;
pub mod config;
pub mod consent;
pub mod context;
pub mod crd;
pub mod crdgen;
pub mod discovery;
pub mod error;
pub mod guardrails;
pub mod http;
pub mod inject;
pub mod isvc;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod network;
pub mod persistence;
pub mod pipeline;
pub mod quantity;
pub mod resources;
pub mod rollout;
pub mod run;
pub mod scrape;
pub mod topology;
pub mod uninstall;
pub mod validate;

pub use run::run_controllers;
