//! `file_storage` extension: hands each persistent sending queue its own directory under
//! `directory`, with the extension's `fsync`, lock `timeout` and `compaction` settings. The
//! queue itself is [`crate::exporter::persistent_queue`].

use std::path::{Path, PathBuf};

use crate::exporter::persistent_queue::QueueOptions;
use collector_config::extension::file_storage::FileStorageConfig;
use collector_config::shared::QueueConfig;

/// A started `file_storage` extension.
#[derive(Debug, Clone)]
pub struct FileStorage {
    cfg: FileStorageConfig,
}

impl FileStorage {
    /// Checks (or, with `create_directory`, creates) the directory. Errors say which directory
    /// and why, at start rather than at the first write.
    pub fn start(cfg: &FileStorageConfig) -> Result<Self, String> {
        let dir = Path::new(&cfg.directory);
        if cfg.create_directory {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        }
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(Self { cfg: cfg.clone() }),
            Ok(_) => Err(format!("directory {} is not a directory", dir.display())),
            Err(e) => Err(format!(
                "directory {} is not usable: {e} (create it, or set create_directory: true)",
                dir.display()
            )),
        }
    }

    /// Where the queue of exporter `id` lives: `exporter_<id>` with `/` (the `type/name`
    /// separator) made file-name safe, as upstream names its per-component files.
    pub fn queue_dir(&self, exporter_id: &str) -> PathBuf {
        let safe: String = exporter_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
            .collect();
        Path::new(&self.cfg.directory).join(format!("exporter_{safe}"))
    }

    /// The options for exporter `id`'s queue configured by `queue`.
    pub fn queue_options(&self, exporter_id: &str, queue: &QueueConfig) -> QueueOptions {
        QueueOptions {
            dir: self.queue_dir(exporter_id),
            fsync: self.cfg.fsync,
            lock_timeout: self.cfg.timeout,
            compact_on_start: self.cfg.compaction.on_start,
            compact_on_rebound: self.cfg.compaction.on_rebound,
            sizer: queue.sizer,
            capacity: queue.queue_size as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_refused_unless_it_may_be_created() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/b");
        let cfg = FileStorageConfig { directory: dir.display().to_string(), ..Default::default() };
        let err = FileStorage::start(&cfg).expect_err("missing directory");
        assert!(err.contains("create_directory"), "{err}");
        let s = FileStorage::start(&FileStorageConfig { create_directory: true, ..cfg }).expect("created");
        assert!(dir.is_dir());
        assert_eq!(s.queue_dir("otlp/central"), dir.join("exporter_otlp_central"));
    }
}
