//! The `debug` exporter's config (the removed `logging` exporter is accepted as an alias; the
//! loader maps its `loglevel` onto `verbosity`).

use serde::Deserialize;

use crate::check::{Check, Validate};

/// `debug` exporter (the removed `logging` exporter is accepted as an alias).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DebugExporterConfig {
    /// `basic` (counts), `normal` (one line per item) or `detailed` (full dump).
    pub verbosity: Verbosity,
    /// Log the first N items per second.
    pub sampling_initial: u64,
    /// Then log every Nth item.
    pub sampling_thereafter: u64,
    /// Use the collector's own logger (accepted for compatibility).
    pub use_internal_logger: bool,
    /// Old `logging` exporter field; mapped onto verbosity.
    pub loglevel: Option<String>,
}

impl Default for DebugExporterConfig {
    fn default() -> Self {
        Self {
            verbosity: Verbosity::Basic,
            sampling_initial: 2,
            sampling_thereafter: 1,
            use_internal_logger: true,
            loglevel: None,
        }
    }
}

/// `debug.verbosity`: how much of each batch is logged.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// One line of counts per batch (default).
    #[default]
    Basic,
    /// One line per item.
    Normal,
    /// Every field of every item.
    Detailed,
}

impl Validate for DebugExporterConfig {
    /// Nothing beyond the types: every choice is an enum.
    fn validate(&self, _path: &str, _check: &mut Check<'_>) {}
}
