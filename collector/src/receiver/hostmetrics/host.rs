//! The host as the scrapers see it: a root directory (`root_path`, `/` by default) under which
//! `/proc` and `/sys` are read, the errors reading it can produce, and the small text helpers
//! every `/proc` parser shares.
//!
//! The files are parsed by hand rather than through the `procfs` crate: `procfs` reads the fixed
//! path `/proc` for system-wide files (only per-process readers take another root), and the
//! scrapers need gopsutil's exact derivations (which lines count, which are skipped) to report what
//! the upstream receiver reports. Each parser is a pure function over the file's text.

use std::io;
use std::path::{Path, PathBuf};

use super::otlp::Stamp;

/// Why a scraper could not produce (some of) its metrics.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// A file under the root could not be read: missing (wrong `root_path`, a kernel without it),
    /// or not permitted (the collector lacks privileges for the host's `/proc`).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The full path that was read.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file was read but its text is not in the format the kernel documents.
    #[error("{path}: {source}")]
    Parse {
        /// The full path that was read.
        path: PathBuf,
        /// What did not parse.
        source: ParseError,
    },
    /// `statvfs(2)` failed on a mount point (unmounted meanwhile, or not permitted).
    #[error("cannot read filesystem usage at {path}: {source}")]
    Statvfs {
        /// The mount point as seen from the collector (under the root).
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Why a `/proc` file's text could not be parsed; the I/O layer adds the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// The directory the host's `/` is visible at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot(PathBuf);

impl HostRoot {
    /// A root at `path` (`/` for the collector's own host).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `rel` (an absolute host path such as `/proc/stat`) under the root.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }

    /// Reads `rel` (e.g. `/proc/stat`) under the root as text.
    pub fn read(&self, rel: &str) -> Result<String, ScrapeError> {
        let path = self.join(rel);
        std::fs::read_to_string(&path).map_err(|source| ScrapeError::Read { path, source })
    }

    /// Reads `rel` and parses it with `parse`, naming the path in either error.
    pub fn parse<T>(&self, rel: &str, parse: impl FnOnce(&str) -> Result<T, ParseError>) -> Result<T, ScrapeError> {
        let text = self.read(rel)?;
        parse(&text).map_err(|source| ScrapeError::Parse { path: self.join(rel), source })
    }
}

/// The root plus what every scrape needs from it: the boot time, which is the start time of every
/// data point the receiver emits (as upstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Where the host's `/` is.
    pub root: HostRoot,
    /// Boot time in nanoseconds since the epoch.
    pub boot_unix_nano: u64,
}

impl Host {
    /// Reads the boot time under `root` (fails when `root` is not a Linux root).
    pub fn open(root: HostRoot) -> Result<Self, ScrapeError> {
        let btime = root.parse("/proc/stat", parse_btime)?;
        Ok(Self { root, boot_unix_nano: btime.saturating_mul(1_000_000_000) })
    }

    /// Time stamps for a scrape happening now.
    pub fn stamp(&self) -> Stamp {
        Stamp { start_unix_nano: self.boot_unix_nano, time_unix_nano: now_unix_nanos() }
    }
}

/// Boot time in seconds since the epoch: the `btime` line of `/proc/stat`. Upstream uses it as the
/// start time of every data point the receiver emits.
pub fn parse_btime(stat: &str) -> Result<u64, ParseError> {
    let line = stat.lines().find(|l| l.starts_with("btime ")).ok_or_else(|| ParseError("no btime line".into()))?;
    field(line, 1, "btime")
}

/// Whitespace field `i` of `line` parsed as a number; the error names `what` and the line.
pub fn field<T: std::str::FromStr>(line: &str, i: usize, what: &str) -> Result<T, ParseError> {
    let raw = line
        .split_whitespace()
        .nth(i)
        .ok_or_else(|| ParseError(format!("{what}: missing field {i} in line {line:?}")))?;
    raw.parse().map_err(|_| ParseError(format!("{what}: {raw:?} is not a number in line {line:?}")))
}

/// Now, in nanoseconds since the epoch.
pub fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btime_is_read_from_proc_stat() {
        assert_eq!(parse_btime(crate::receiver::hostmetrics::fixtures::PROC_STAT), Ok(1_795_593_669));
        assert_eq!(parse_btime("cpu 1 2 3\n"), Err(ParseError("no btime line".into())));
        assert!(parse_btime("btime soon\n").unwrap_err().0.contains("\"soon\" is not a number"));
    }

    #[test]
    fn join_keeps_paths_under_the_root() {
        let root = HostRoot::new("/hostfs");
        assert_eq!(root.join("/proc/stat"), PathBuf::from("/hostfs/proc/stat"));
        assert_eq!(HostRoot::new("/").join("/proc/stat"), PathBuf::from("/proc/stat"));
    }

    #[test]
    fn read_errors_name_the_full_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::new(dir.path());
        let err = root.read("/proc/meminfo").unwrap_err().to_string();
        assert!(err.starts_with(&format!("cannot read {}/proc/meminfo: ", dir.path().display())), "{err}");
        std::fs::create_dir(dir.path().join("proc")).expect("mkdir");
        std::fs::write(dir.path().join("proc/stat"), "cpu0 1\n").expect("write");
        let err = root.parse("/proc/stat", parse_btime).unwrap_err().to_string();
        assert_eq!(err, format!("{}/proc/stat: no btime line", dir.path().display()));
    }
}
