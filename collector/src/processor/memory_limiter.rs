//! `memory_limiter` processor: measures resident memory every `check_interval` and refuses data
//! with a retryable error while usage is above the soft limit (`limit - spike`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::task::JoinHandle;

use crate::config::components::MemoryLimiterConfig;
use crate::pdata::Data;
use crate::pipeline::{ConsumeError, Processor};

const MIB: u64 = 1024 * 1024;

/// Resident set size of this process from `/proc/self/statm`.
pub fn current_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Total memory available to the process: cgroup v2 limit if set, else physical memory.
pub fn total_memory_bytes() -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        && let Ok(v) = s.trim().parse::<u64>()
    {
        return Some(v);
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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
