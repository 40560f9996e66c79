//! `memory_limiter` processor: measures resident memory every `check_interval` and refuses data
//! with a retryable error while usage is above the soft limit (`limit - spike`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::task::JoinHandle;

use crate::pdata::Data;
use crate::pipeline::{ConsumeError, Processor};
use crate::process_memory::current_rss_bytes;
use collector_config::processor::memory_limiter::MemoryLimiterConfig;

const MIB: u64 = 1024 * 1024;

/// What a cgroup memory limit file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLimit {
    /// A limit in bytes.
    Bytes(u64),
    /// No limit (`max` in v2; v1's "unlimited" is a huge number and is treated the same way by
    /// [`effective_total`], which takes the smaller of the limit and physical memory).
    Unlimited,
}

/// Parses cgroup v2 `memory.max`: a byte count or `max`.
pub fn parse_cgroup_v2_max(content: &str) -> Option<CgroupLimit> {
    match content.trim() {
        "max" => Some(CgroupLimit::Unlimited),
        v => v.parse().ok().map(CgroupLimit::Bytes),
    }
}

/// Parses cgroup v1 `memory.limit_in_bytes` (a byte count; `-1` is accepted as unlimited when
/// written back by tools).
pub fn parse_cgroup_v1_limit(content: &str) -> Option<CgroupLimit> {
    match content.trim() {
        "-1" => Some(CgroupLimit::Unlimited),
        v => v.parse().ok().map(CgroupLimit::Bytes),
    }
}

/// Physical memory from the text of `/proc/meminfo` (`MemTotal`, in KiB).
pub fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// The limit files to try, most specific first, from the text of `/proc/self/cgroup`: the
/// process' own cgroup under the usual mount points (host cgroup namespace), then the mount
/// root (a private cgroup namespace, as in Kubernetes, shows the container's cgroup as `/`).
/// `true` marks cgroup v2 files.
pub fn cgroup_limit_files(proc_self_cgroup: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let path = path.trim_end_matches('/');
        if controllers.is_empty() {
            out.push((format!("/sys/fs/cgroup{path}/memory.max"), true));
        } else if controllers.split(',').any(|c| c == "memory") {
            out.push((format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"), false));
        }
    }
    out.push(("/sys/fs/cgroup/memory.max".into(), true));
    out.push(("/sys/fs/cgroup/memory/memory.limit_in_bytes".into(), false));
    out.dedup();
    out
}

/// Memory available to the process: the cgroup limit when one is set and below physical
/// memory, else physical memory (as upstream's memory limiter: an unlimited cgroup, v2's `max`
/// or v1's huge sentinel, falls back to the node's total).
pub fn effective_total(cgroup: Option<CgroupLimit>, physical: Option<u64>) -> Option<u64> {
    match (cgroup, physical) {
        (Some(CgroupLimit::Bytes(v)), Some(p)) => Some(v.min(p)),
        (Some(CgroupLimit::Bytes(v)), None) => Some(v),
        (_, p) => p,
    }
}

/// [`effective_total`] over files read by `read` (the real file system in
/// [`total_memory_bytes`], a map in tests).
pub fn total_memory_from(read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let candidates = cgroup_limit_files(&read("/proc/self/cgroup").unwrap_or_default());
    let cgroup = candidates.iter().find_map(|(path, v2)| {
        let content = read(path)?;
        if *v2 { parse_cgroup_v2_max(&content) } else { parse_cgroup_v1_limit(&content) }
    });
    effective_total(cgroup, read("/proc/meminfo").as_deref().and_then(parse_meminfo_total))
}

/// Total memory available to the process (cgroup v2 or v1 limit, else physical memory).
pub fn total_memory_bytes() -> Option<u64> {
    total_memory_from(|p| std::fs::read_to_string(p).ok())
}

/// Hard and soft limits in bytes computed from the config (pure).
pub fn limits(cfg: &MemoryLimiterConfig, total: Option<u64>) -> Result<(u64, u64), String> {
    let (hard, spike) = if cfg.limit_mib > 0 {
        let spike = if cfg.spike_limit_mib > 0 { cfg.spike_limit_mib } else { cfg.limit_mib / 5 };
        (cfg.limit_mib * MIB, spike * MIB)
    } else {
        let total = total.ok_or("limit_percentage needs the total memory, which could not be determined")?;
        let hard = total / 100 * cfg.limit_percentage;
        let spike_pct =
            if cfg.spike_limit_percentage > 0 { cfg.spike_limit_percentage } else { cfg.limit_percentage / 5 };
        (hard, total / 100 * spike_pct)
    };
    Ok((hard, hard.saturating_sub(spike)))
}

/// Shared limiter state; one per configured `memory_limiter` id.
#[derive(Debug)]
pub struct MemoryLimiter {
    refusing: AtomicBool,
    soft: u64,
    hard: u64,
    last_rss: AtomicU64,
}

impl MemoryLimiter {
    /// Creates the limiter and starts its periodic check.
    pub fn start(cfg: &MemoryLimiterConfig) -> Result<(Arc<Self>, JoinHandle<()>), String> {
        let (hard, soft) = limits(cfg, total_memory_bytes())?;
        let me = Arc::new(Self { refusing: AtomicBool::new(false), soft, hard, last_rss: AtomicU64::new(0) });
        let weak = Arc::downgrade(&me);
        let interval = cfg.check_interval;
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // Stop when the pipelines holding the limiter are gone.
                let Some(me) = weak.upgrade() else { break };
                if let Some(rss) = current_rss_bytes() {
                    me.observe(rss);
                }
            }
        });
        Ok((me, handle))
    }

    /// Records a measurement and flips the refusing state.
    pub fn observe(&self, rss: u64) {
        self.last_rss.store(rss, Ordering::Relaxed);
        let was = self.refusing.load(Ordering::Relaxed);
        let now = rss > self.soft;
        if now != was {
            if now {
                tracing::warn!(
                    rss_mib = rss / MIB,
                    soft_limit_mib = self.soft / MIB,
                    hard_limit_mib = self.hard / MIB,
                    "memory usage above soft limit, refusing data"
                );
            } else {
                tracing::info!(rss_mib = rss / MIB, "memory usage back below soft limit, accepting data");
            }
            self.refusing.store(now, Ordering::Relaxed);
        }
    }

    /// Whether data is currently being refused.
    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::Relaxed)
    }
}

/// The processor view of a shared limiter.
#[derive(Debug)]
pub struct MemoryLimiterProcessor(pub Arc<MemoryLimiter>);

impl Processor for MemoryLimiterProcessor {
    fn process(&self, data: Data) -> Result<Data, ConsumeError> {
        if self.0.is_refusing() {
            return Err(ConsumeError::Retryable("data refused due to high memory usage".into()));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:       16318480 kB\nMemFree:         1000000 kB\n";
    const PHYSICAL: u64 = 16318480 * 1024;

    fn fs(files: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let files: std::collections::HashMap<String, String> =
            files.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |p| files.get(p).cloned()
    }

    #[test]
    fn cgroup_v2_limit_and_max() {
        assert_eq!(parse_cgroup_v2_max("536870912\n"), Some(CgroupLimit::Bytes(512 * MIB)));
        assert_eq!(parse_cgroup_v2_max("max\n"), Some(CgroupLimit::Unlimited));
        assert_eq!(parse_cgroup_v2_max("garbage"), None);
        // A Kubernetes container (private cgroup namespace): `0::/`.
        let read = fs(&[
            ("/proc/self/cgroup", "0::/\n"),
            ("/sys/fs/cgroup/memory.max", "536870912\n"),
            ("/proc/meminfo", MEMINFO),
        ]);
        assert_eq!(total_memory_from(read), Some(512 * MIB));
        // `max` means unlimited: physical memory, not a parse failure.
        let read =
            fs(&[("/proc/self/cgroup", "0::/\n"), ("/sys/fs/cgroup/memory.max", "max\n"), ("/proc/meminfo", MEMINFO)]);
        assert_eq!(total_memory_from(read), Some(PHYSICAL));
        // Host cgroup namespace: the process' own cgroup directory.
        let read = fs(&[
            ("/proc/self/cgroup", "0::/system.slice/collector.service\n"),
            ("/sys/fs/cgroup/system.slice/collector.service/memory.max", "1073741824\n"),
            ("/sys/fs/cgroup/memory.max", "max\n"),
            ("/proc/meminfo", MEMINFO),
        ]);
        assert_eq!(total_memory_from(read), Some(1024 * MIB));
    }

    #[test]
    fn cgroup_v1_limit_and_its_unlimited_sentinel() {
        let v1 = "12:memory:/kubepods/pod1/abc\n11:cpu,cpuacct:/kubepods/pod1/abc\n";
        let read = fs(&[
            ("/proc/self/cgroup", v1),
            ("/sys/fs/cgroup/memory/kubepods/pod1/abc/memory.limit_in_bytes", "268435456\n"),
            ("/proc/meminfo", MEMINFO),
        ]);
        assert_eq!(total_memory_from(read), Some(256 * MIB));
        // Private namespace: the mount root.
        let read = fs(&[
            ("/proc/self/cgroup", "12:memory:/\n"),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n"),
            ("/proc/meminfo", MEMINFO),
        ]);
        assert_eq!(total_memory_from(read), Some(256 * MIB));
        // v1 "unlimited" is PAGE_COUNTER_MAX pages: larger than the node, so the node's memory.
        let read = fs(&[
            ("/proc/self/cgroup", "12:memory:/\n"),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("/proc/meminfo", MEMINFO),
        ]);
        assert_eq!(total_memory_from(read), Some(PHYSICAL));
        assert_eq!(parse_cgroup_v1_limit("-1"), Some(CgroupLimit::Unlimited));
    }

    #[test]
    fn no_cgroup_falls_back_to_physical_memory() {
        assert_eq!(total_memory_from(fs(&[("/proc/meminfo", MEMINFO)])), Some(PHYSICAL));
        assert_eq!(total_memory_from(fs(&[])), None);
    }

    #[test]
    fn limits_from_mib_and_percentage() {
        let cfg = MemoryLimiterConfig { limit_mib: 100, spike_limit_mib: 20, ..Default::default() };
        assert_eq!(limits(&cfg, None).unwrap(), (100 * MIB, 80 * MIB));
        let cfg = MemoryLimiterConfig { limit_mib: 100, ..Default::default() };
        assert_eq!(limits(&cfg, None).unwrap(), (100 * MIB, 80 * MIB));
        let cfg = MemoryLimiterConfig { limit_percentage: 50, spike_limit_percentage: 10, ..Default::default() };
        assert_eq!(limits(&cfg, Some(1000 * MIB)).unwrap(), (500 * MIB, 400 * MIB));
        assert!(limits(&cfg, None).is_err());
    }

    #[test]
    fn refuses_above_soft_limit() {
        let l = MemoryLimiter { refusing: AtomicBool::new(false), soft: 80, hard: 100, last_rss: AtomicU64::new(0) };
        let p = MemoryLimiterProcessor(Arc::new(l));
        p.0.observe(90);
        assert!(p.process(Data::empty(crate::config::id::Signal::Logs)).unwrap_err().is_retryable());
        p.0.observe(50);
        assert!(p.process(Data::empty(crate::config::id::Signal::Logs)).is_ok());
    }
}
