//! The `file_storage` extension's config: where persistent sending queues keep their files. What is
//! accepted is implemented; upstream's other settings are refused by path.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};
use crate::duration::serde_duration;

/// `file_storage` extension: where persistent sending queues keep their files. Upstream's
/// settings that are not implemented here are refused by path rather than ignored.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileStorageConfig {
    /// Directory holding one sub-directory per queue (default `/var/lib/otelcol/file_storage`).
    pub directory: String,
    /// How long to wait for another process's lock on a queue directory (default 1s).
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    /// `fdatasync` each write before it is acknowledged (default false: the data is in the
    /// kernel's page cache, surviving a crash of the collector but not of the machine).
    pub fsync: bool,
    /// Create `directory` if it is missing (default false, as upstream).
    pub create_directory: bool,
    /// Space reclamation.
    pub compaction: CompactionConfig,
    /// Not implemented (the directory is created with the process umask); refused when set.
    pub directory_permissions: Option<Value>,
    /// Not implemented; refused when set.
    pub recreate: Option<Value>,
}

impl Default for FileStorageConfig {
    fn default() -> Self {
        Self {
            directory: "/var/lib/otelcol/file_storage".into(),
            timeout: Duration::from_secs(1),
            fsync: false,
            create_directory: false,
            compaction: CompactionConfig::default(),
            directory_permissions: None,
            recreate: None,
        }
    }
}

/// `file_storage.compaction`. A queue frees the disk of finished segments as it goes; these
/// settings reclaim the rest earlier.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionConfig {
    /// At start, rewrite each queue's oldest segment without its already-sent part.
    pub on_start: bool,
    /// Whenever a queue empties, start a new segment so the old one is deleted at once.
    pub on_rebound: bool,
    /// Where compaction writes; only `directory` itself is supported (compaction renames a
    /// file into place, which cannot cross file systems).
    pub directory: Option<String>,
    /// Not implemented (bbolt transactions); refused when set.
    pub max_transaction_size: Option<Value>,
    /// Not implemented (segments are freed as they finish instead); refused when set.
    pub rebound_needed_threshold_mib: Option<Value>,
    /// Not implemented; refused when set.
    pub rebound_trigger_threshold_mib: Option<Value>,
    /// Not implemented; refused when set.
    pub check_interval: Option<Value>,
    /// Not implemented; refused when set.
    pub cleanup_on_start: Option<Value>,
}

impl Validate for FileStorageConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        if self.directory.is_empty() {
            check.error(format!("{p}.directory: required"));
        }
        let c = &self.compaction;
        for (field, set) in [
            ("directory_permissions", self.directory_permissions.is_some()),
            ("recreate", self.recreate.is_some()),
            ("compaction.max_transaction_size", c.max_transaction_size.is_some()),
            ("compaction.rebound_needed_threshold_mib", c.rebound_needed_threshold_mib.is_some()),
            ("compaction.rebound_trigger_threshold_mib", c.rebound_trigger_threshold_mib.is_some()),
            ("compaction.check_interval", c.check_interval.is_some()),
            ("compaction.cleanup_on_start", c.cleanup_on_start.is_some()),
        ] {
            if set {
                check.error(format!("{p}.{field}: not supported by this collector"));
            }
        }
        if let Some(d) = &c.directory
            && std::path::Path::new(d) != std::path::Path::new(&self.directory)
        {
            check.error(format!(
                "{p}.compaction.directory: only the storage directory itself ({:?}) is supported",
                self.directory
            ));
        }
    }
}
