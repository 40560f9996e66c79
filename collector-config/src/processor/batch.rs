//! The `batch` processor's config: how many items make a batch and how long a partial one waits.

use std::time::Duration;

use serde::Deserialize;

use crate::check::{Check, Validate};
use crate::duration::serde_duration;

/// `batch` processor.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Send when this many items (spans, data points, log records) are buffered (default 8192).
    pub send_batch_size: usize,
    /// Split batches larger than this (0 = no limit). Must be >= send_batch_size.
    pub send_batch_max_size: usize,
    /// Send a partial batch after this long (default 200ms).
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    /// Batch separately per client metadata key (accepted for compatibility).
    pub metadata_keys: Vec<String>,
    /// Limit of metadata combinations (accepted for compatibility).
    pub metadata_cardinality_limit: Option<u64>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: Duration::from_millis(200),
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: None,
        }
    }
}

impl Validate for BatchConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        if self.send_batch_max_size != 0 && self.send_batch_max_size < self.send_batch_size {
            check.error(format!("{p}.send_batch_max_size: must be greater or equal to send_batch_size"));
        }
    }
}
