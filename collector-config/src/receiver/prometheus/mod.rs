//! The `prometheus` receiver's config half: [`config`] holds its types, [`plan`] turns its config into validated, compiled
//! scrape jobs (the config loader runs it, so a bad regex or an unsupported field fails at
//! `validate`), and [`relabel`] holds Prometheus' relabeling rules, compiled here and applied by
//! the receiver in the collector, and [`selectors`] checks the discovery's label and field
//! selectors.

pub mod config;
pub mod plan;
pub mod relabel;
pub mod selectors;

/// Per-series limits, named and worded as Prometheus' scrape config (`0` = unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most labels per series, `__name__` included (`label_limit`).
    pub label_limit: u64,
    /// Longest label name in bytes (`label_name_length_limit`).
    pub label_name_length_limit: u64,
    /// Longest label value in bytes (`label_value_length_limit`).
    pub label_value_length_limit: u64,
}
