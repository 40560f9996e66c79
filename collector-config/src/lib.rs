//! `collector-config`: the config half of the telemetry collector — parsing and validating the
//! upstream collector's YAML exactly as the collector does at start, with no runtime (no tokio,
//! no network, no I/O beyond reading a file when asked).
//!
//! Two programs link it: the collector, which builds its components from the typed configs, and
//! the operator, which runs the same loader over every config it renders (`configOverrides`
//! included) before rolling it out, so "validated" means "the collector will start with it".
//!
//! Layout: [`config`] (sections, ids, env expansion, pipelines, semantic checks), [`registry`]
//! (type names → typed configs), [`limits`] (listener limits the configs turn into), and the
//! config halves of the two receivers with the most to check: [`prometheus`] (scrape plan and
//! relabel rules) and [`hostmetrics`] (scraper settings and metric tables).

pub mod config;
pub mod hostmetrics;
pub mod limits;
pub mod prometheus;
pub mod registry;
