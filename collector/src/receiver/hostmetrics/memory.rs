//! `memory` scraper: `system.memory.usage` by state from `/proc/meminfo`, derived as upstream
//! v0.155 does (gopsutil plus the default-on `UseLinuxMemAvailable` feature gate):
//! `cached` includes reclaimable slab, and `used` is `MemTotal - MemAvailable`. The states are
//! therefore not a partition of `MemTotal` (page cache counts in both `cached` and the available
//! memory that `used` excludes). `system.memory.utilization` is off by default upstream.

use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::host::{Host, ParseError, ScrapeError, field};
use super::otlp::{Points, Stamp};

pub use collector_config::hostmetrics::metrics::memory::*;

/// The `/proc/meminfo` lines the scraper uses, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meminfo {
    /// `MemTotal`.
    pub total: u64,
    /// `MemFree`.
    pub free: u64,
    /// `MemAvailable` (Linux 3.14+).
    pub available: Option<u64>,
    /// `Buffers`.
    pub buffers: u64,
    /// `Cached`.
    pub cached: u64,
    /// `SReclaimable`.
    pub sreclaimable: u64,
    /// `SUnreclaim`.
    pub sunreclaim: u64,
}

/// Parses `/proc/meminfo` (values in kB, converted to bytes). `MemTotal` is required.
pub fn parse(text: &str) -> Result<Meminfo, ParseError> {
    let mut m = Meminfo::default();
    let mut total = None;
    for line in text.lines() {
        let Some((key, _)) = line.split_once(':') else { continue };
        let bytes = || field::<u64>(line, 1, key).map(|kb| kb * 1024);
        match key {
            "MemTotal" => total = Some(bytes()?),
            "MemFree" => m.free = bytes()?,
            "MemAvailable" => m.available = Some(bytes()?),
            "Buffers" => m.buffers = bytes()?,
            "Cached" => m.cached = bytes()?,
            "SReclaimable" => m.sreclaimable = bytes()?,
            "SUnreclaim" => m.sunreclaim = bytes()?,
            _ => {}
        }
    }
    m.total = total.ok_or_else(|| ParseError("no MemTotal line".into()))?;
    Ok(m)
}

/// `system.memory.usage` with upstream's derivation (see the module docs).
pub fn metrics(m: &Meminfo, stamp: Stamp) -> Vec<Metric> {
    let cached = m.cached + m.sreclaimable;
    // Kernels before 3.14 lack MemAvailable; gopsutil then estimates it from zoneinfo watermarks,
    // which no supported Kubernetes node needs, so free + cached (its own last fallback) is used.
    let available = m.available.unwrap_or(m.free + cached);
    let mut p = Points::new(&USAGE, stamp);
    for (state, v) in [
        ("used", m.total.saturating_sub(available)),
        ("free", m.free),
        ("buffered", m.buffers),
        ("cached", cached),
        ("slab_reclaimable", m.sreclaimable),
        ("slab_unreclaimable", m.sunreclaim),
    ] {
        p.push(&[("state", state)], v);
    }
    p.finish().into_iter().collect()
}

/// Reads `/proc/meminfo` under the host root.
pub fn scrape(host: &Host) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    Ok(metrics(&host.root.parse("/proc/meminfo", parse)?, stamp))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::PROC_MEMINFO;
    use super::super::otlp::{Num, read};
    use super::*;

    const KB: u64 = 1024;

    #[test]
    fn parses_the_lines_it_needs_in_bytes() {
        assert_eq!(
            parse(PROC_MEMINFO),
            Ok(Meminfo {
                total: 24_684_084 * KB,
                free: 8_078_116 * KB,
                available: Some(23_509_680 * KB),
                buffers: 444_268 * KB,
                cached: 14_255_456 * KB,
                sreclaimable: 1_142_136 * KB,
                sunreclaim: 108_676 * KB,
            })
        );
        assert_eq!(parse("MemFree: 1 kB\n"), Err(ParseError("no MemTotal line".into())));
        assert!(parse("MemTotal: lots kB\n").unwrap_err().0.contains("MemTotal"));
    }

    #[test]
    fn derives_states_like_upstream() {
        let m = metrics(&parse(PROC_MEMINFO).expect("parse"), Stamp { start_unix_nano: 1, time_unix_nano: 2 });
        read::assert_shape(&m[0], &USAGE, &["state"]);
        let v = |s| read::value(&m, "system.memory.usage", &[("state", s)]);
        assert_eq!(v("used"), Num::Int(((24_684_084 - 23_509_680) * KB) as i64));
        assert_eq!(v("free"), Num::Int((8_078_116 * KB) as i64));
        assert_eq!(v("buffered"), Num::Int((444_268 * KB) as i64));
        assert_eq!(v("cached"), Num::Int(((14_255_456 + 1_142_136) * KB) as i64));
        assert_eq!(v("slab_reclaimable"), Num::Int((1_142_136 * KB) as i64));
        assert_eq!(v("slab_unreclaimable"), Num::Int((108_676 * KB) as i64));
    }

    #[test]
    fn without_mem_available_free_plus_cached_counts_as_available() {
        let m = Meminfo {
            total: 100,
            free: 10,
            available: None,
            buffers: 5,
            cached: 20,
            sreclaimable: 3,
            ..Default::default()
        };
        let out = metrics(&m, Stamp { start_unix_nano: 0, time_unix_nano: 0 });
        assert_eq!(read::value(&out, "system.memory.usage", &[("state", "used")]), Num::Int(100 - 10 - 23));
    }
}
