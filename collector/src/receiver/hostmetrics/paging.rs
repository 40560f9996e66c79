//! `paging` scraper: swap device usage from `/proc/swaps`, and paging operations and page faults
//! from `/proc/vmstat`. The two sources fail independently, as upstream's two halves do.
//!
//! Values are upstream's, quirks included: gopsutil multiplies every `/proc/vmstat` counter it
//! reads (pswpin/out, pgpgin/out, pgfault, pgmajfault) by 4096, so `system.paging.operations` and
//! `system.paging.faults` report 4096 × the kernel's counts. We reproduce that so dashboards and
//! alerts written against the upstream collector read the same numbers.

use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::host::{Host, ParseError, ScrapeError, field};
use super::otlp::{Points, Stamp};

pub use collector_config::hostmetrics::metrics::paging::*;

/// gopsutil's scale for `/proc/vmstat` counters (see the module docs).
const GOPSUTIL_VMSTAT_SCALE: u64 = 4 * 1024;

/// One swap device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapDevice {
    /// Device or file name, e.g. `/dev/zram0`.
    pub device: String,
    /// Bytes in use.
    pub used: u64,
    /// Bytes free.
    pub free: u64,
}

/// Parses `/proc/swaps`, checking the header as upstream does (sizes are in KiB).
pub fn parse_swaps(text: &str) -> Result<Vec<SwapDevice>, ParseError> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    if header.len() < 4 || header[0] != "Filename" || header[2] != "Size" || header[3] != "Used" {
        return Err(ParseError(format!("unexpected header {header:?}, expected Filename Type Size Used ...")));
    }
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let name = line.split_whitespace().next().unwrap_or_default();
        let size: u64 = field(line, 2, "Size")?;
        let used: u64 = field(line, 3, "Used")?;
        out.push(SwapDevice { device: name.to_owned(), used: used * 1024, free: size.saturating_sub(used) * 1024 });
    }
    Ok(out)
}

/// The `/proc/vmstat` counters the scraper uses (kernel units; 0 when absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vmstat {
    /// Pages swapped in.
    pub pswpin: u64,
    /// Pages swapped out.
    pub pswpout: u64,
    /// KiB paged in from disk.
    pub pgpgin: u64,
    /// KiB paged out to disk.
    pub pgpgout: u64,
    /// Page faults (minor and major).
    pub pgfault: u64,
    /// Major page faults.
    pub pgmajfault: u64,
}

/// Parses `/proc/vmstat`.
pub fn parse_vmstat(text: &str) -> Result<Vmstat, ParseError> {
    let mut v = Vmstat::default();
    for line in text.lines() {
        let Some(key) = line.split_whitespace().next() else { continue };
        let slot = match key {
            "pswpin" => &mut v.pswpin,
            "pswpout" => &mut v.pswpout,
            "pgpgin" => &mut v.pgpgin,
            "pgpgout" => &mut v.pgpgout,
            "pgfault" => &mut v.pgfault,
            "pgmajfault" => &mut v.pgmajfault,
            _ => continue,
        };
        *slot = field(line, 1, key)?;
    }
    Ok(v)
}

/// `system.paging.usage` per swap device (no metric at all without swap, as upstream).
pub fn usage_metrics(devices: &[SwapDevice], stamp: Stamp) -> Vec<Metric> {
    let mut p = Points::new(&USAGE, stamp);
    for d in devices {
        p.push(&[("device", &d.device), ("state", "used")], d.used);
        p.push(&[("device", &d.device), ("state", "free")], d.free);
    }
    p.finish().into_iter().collect()
}

/// `system.paging.operations` and `system.paging.faults`, scaled like upstream (module docs).
pub fn vmstat_metrics(v: &Vmstat, stamp: Stamp) -> Vec<Metric> {
    let s = |n: u64| n.saturating_mul(GOPSUTIL_VMSTAT_SCALE);
    let mut ops = Points::new(&OPERATIONS, stamp);
    ops.push(&[("direction", "page_in"), ("type", "major")], s(v.pswpin));
    ops.push(&[("direction", "page_out"), ("type", "major")], s(v.pswpout));
    ops.push(&[("direction", "page_in"), ("type", "minor")], s(v.pgpgin));
    ops.push(&[("direction", "page_out"), ("type", "minor")], s(v.pgpgout));
    let mut faults = Points::new(&FAULTS, stamp);
    faults.push(&[("type", "major")], s(v.pgmajfault));
    faults.push(&[("type", "minor")], s(v.pgfault.saturating_sub(v.pgmajfault)));
    [ops, faults].into_iter().filter_map(Points::finish).collect()
}

/// Reads `/proc/swaps` under the host root.
pub fn scrape_usage(host: &Host) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    Ok(usage_metrics(&host.root.parse("/proc/swaps", parse_swaps)?, stamp))
}

/// Reads `/proc/vmstat` under the host root.
pub fn scrape_vmstat(host: &Host) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    Ok(vmstat_metrics(&host.root.parse("/proc/vmstat", parse_vmstat)?, stamp))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{PROC_SWAPS, PROC_SWAPS_NONE, PROC_VMSTAT};
    use super::super::otlp::{Num, read};
    use super::*;

    const STAMP: Stamp = Stamp { start_unix_nano: 1, time_unix_nano: 2 };

    #[test]
    fn swap_devices_in_bytes() {
        let d = parse_swaps(PROC_SWAPS).expect("parse");
        assert_eq!(
            d,
            [SwapDevice { device: "/dev/zram0".into(), used: 524_288 * 1024, free: (4_194_300 - 524_288) * 1024 }]
        );
        let m = usage_metrics(&d, STAMP);
        read::assert_shape(&m[0], &USAGE, &["device", "state"]);
        assert_eq!(
            read::value(&m, "system.paging.usage", &[("device", "/dev/zram0"), ("state", "free")]),
            Num::Int((4_194_300 - 524_288) * 1024)
        );
        assert!(usage_metrics(&parse_swaps(PROC_SWAPS_NONE).expect("parse"), STAMP).is_empty());
        assert!(parse_swaps("").unwrap_err().0.contains("unexpected header"));
        assert!(parse_swaps("Filename Type Size Used Priority\n/swap file big 1 -2\n").unwrap_err().0.contains("Size"));
    }

    #[test]
    fn vmstat_counters_scaled_like_upstream() {
        let v = parse_vmstat(PROC_VMSTAT).expect("parse");
        assert_eq!(
            v,
            Vmstat {
                pswpin: 0,
                pswpout: 0,
                pgpgin: 26_500_749,
                pgpgout: 202_024_848,
                pgfault: 428_516_880,
                pgmajfault: 76_786
            }
        );
        let m = vmstat_metrics(&v, STAMP);
        read::assert_shape(read::metric(&m, "system.paging.operations"), &OPERATIONS, &["direction", "type"]);
        read::assert_shape(read::metric(&m, "system.paging.faults"), &FAULTS, &["type"]);
        let ops = |d, t| read::value(&m, "system.paging.operations", &[("direction", d), ("type", t)]);
        assert_eq!(ops("page_in", "minor"), Num::Int(26_500_749 * 4096));
        assert_eq!(ops("page_out", "major"), Num::Int(0));
        let faults = |t| read::value(&m, "system.paging.faults", &[("type", t)]);
        assert_eq!(faults("major"), Num::Int(76_786 * 4096));
        assert_eq!(faults("minor"), Num::Int((428_516_880 - 76_786) * 4096));
        assert!(parse_vmstat("pgfault many\n").unwrap_err().0.contains("pgfault"));
    }
}
