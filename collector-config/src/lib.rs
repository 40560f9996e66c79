//! `collector-config`: the config half of the telemetry collector — parsing and validating the
//! upstream collector's YAML exactly as the collector does at start, with no runtime (no tokio,
//! no network, no I/O beyond reading a file when asked).
//!
//! Two programs link it: the collector, which builds its components from the typed configs, and
//! the operator, which runs the same loader over every config it renders (`configOverrides`
//! included) before rolling it out, so "validated" means "the collector will start with it".
//!
//! Layout, leaves first: [`id`], [`duration`] and [`limits`] (small value types); [`check`] (the
//! `Validate` trait every component config implements); [`shared`] (settings several components
//! share: TLS, auth, retry, queue); one module per component under [`receiver`], [`processor`],
//! [`exporter`] and [`extension`] (its config type and its checks, side by side, mirroring the
//! collector's runtime modules of the same names); [`registry`] (type names → typed configs); and
//! [`config`] (the loader: sections, env expansion, pipelines, and graph-level checks).

#[macro_use]
pub mod server;

pub mod check;
pub mod config;
pub mod duration;
pub mod exporter;
pub mod extension;
pub mod id;
pub mod limits;
pub mod processor;
pub mod receiver;
pub mod registry;
pub mod shared;

// The two receivers with the most to check keep their crate-root paths (the operator and the
// collector import `collector_config::prometheus::plan` and `collector_config::hostmetrics`).
pub use receiver::{hostmetrics, prometheus};
