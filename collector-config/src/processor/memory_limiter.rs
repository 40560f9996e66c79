//! The `memory_limiter` processor's config: the memory limit above which data is refused, and how
//! often memory use is measured.

use std::time::Duration;

use serde::Deserialize;

use crate::check::{Check, Validate};
use crate::duration::serde_duration;

/// `memory_limiter` processor.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryLimiterConfig {
    /// How often memory use is measured (required, e.g. `1s`).
    #[serde(with = "serde_duration")]
    pub check_interval: Duration,
    /// Hard limit in MiB of resident memory.
    pub limit_mib: u64,
    /// Headroom below the hard limit; data is refused above `limit - spike` (default 20% of limit).
    pub spike_limit_mib: u64,
    /// Hard limit as percentage of total memory (alternative to limit_mib).
    pub limit_percentage: u64,
    /// Spike limit as percentage of total memory.
    pub spike_limit_percentage: u64,
    /// Minimum GC interval when soft limit is exceeded (accepted for compatibility).
    #[serde(with = "serde_duration")]
    pub min_gc_interval_when_soft_limited: Duration,
    /// Minimum GC interval when hard limit is exceeded (accepted for compatibility).
    #[serde(with = "serde_duration")]
    pub min_gc_interval_when_hard_limited: Duration,
}

impl Validate for MemoryLimiterConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        if self.check_interval.is_zero() {
            check.error(format!("{p}.check_interval: must be greater than zero"));
        }
        if self.limit_mib == 0 && self.limit_percentage == 0 {
            check.error(format!("{p}.limit_mib: one of limit_mib or limit_percentage must be set"));
        }
        if self.limit_mib != 0 && self.spike_limit_mib >= self.limit_mib {
            check.error(format!("{p}.spike_limit_mib: must be smaller than limit_mib"));
        }
        if self.limit_percentage > 100 || self.spike_limit_percentage > 100 {
            check.error(format!("{p}.limit_percentage: must be at most 100"));
        }
    }
}
