//! The `file` exporter's config: the file OTLP JSON lines are appended to.

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};

/// `file` exporter. Accepted and validated; writes one OTLP JSON line per batch.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileExporterConfig {
    /// Output file (required).
    pub path: String,
    /// `json` (default).
    pub format: Option<String>,
    /// Rotation settings (accepted for compatibility).
    pub rotation: Option<Value>,
    /// Flush interval (accepted for compatibility).
    pub flush_interval: Option<String>,
    /// Append instead of truncating.
    pub append: bool,
    /// Compression (accepted for compatibility).
    pub compression: Option<String>,
}

impl Validate for FileExporterConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        if self.path.is_empty() {
            check.error(format!("{p}.path: required"));
        }
    }
}
