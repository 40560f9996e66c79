//! `disk` scraper: per block device I/O counters from `/proc/diskstats` — bytes, operations,
//! merged operations, busy time, time per direction, weighted busy time and queue length.
//! Devices whose eleven counters are all zero (idle loop and zram devices) are skipped, as
//! gopsutil does; then the `include`/`exclude` device filter applies.

use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::config::NameFilter;
use super::host::{Host, ParseError, ScrapeError, field};
use super::otlp::{Points, Stamp};

pub use collector_config::hostmetrics::metrics::disk::*;

/// `/proc/diskstats` counts sectors of 512 bytes whatever the device's sector size.
const SECTOR_BYTES: u64 = 512;

/// One device's counters (times in milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStat {
    /// Kernel device name, e.g. `vda`, `nvme0n1p1`.
    pub device: String,
    /// Reads completed.
    pub reads: u64,
    /// Reads merged.
    pub merged_reads: u64,
    /// Sectors read.
    pub sectors_read: u64,
    /// Time spent reading.
    pub read_ms: u64,
    /// Writes completed.
    pub writes: u64,
    /// Writes merged.
    pub merged_writes: u64,
    /// Sectors written.
    pub sectors_written: u64,
    /// Time spent writing.
    pub write_ms: u64,
    /// I/Os currently in progress.
    pub in_progress: u64,
    /// Time spent doing I/O.
    pub io_ms: u64,
    /// Weighted time spent doing I/O.
    pub weighted_io_ms: u64,
}

/// Parses `/proc/diskstats`; lines with fewer than 14 fields are ignored and all-zero devices
/// skipped (both as gopsutil).
pub fn parse(text: &str) -> Result<Vec<DiskStat>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 14 {
            continue;
        }
        let n = |i: usize| field::<u64>(line, i, fields[2]);
        let d = DiskStat {
            device: fields[2].to_owned(),
            reads: n(3)?,
            merged_reads: n(4)?,
            sectors_read: n(5)?,
            read_ms: n(6)?,
            writes: n(7)?,
            merged_writes: n(8)?,
            sectors_written: n(9)?,
            write_ms: n(10)?,
            in_progress: n(11)?,
            io_ms: n(12)?,
            weighted_io_ms: n(13)?,
        };
        if d != (DiskStat { device: d.device.clone(), ..Default::default() }) {
            out.push(d);
        }
    }
    Ok(out)
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The seven disk metrics for the devices `filter` allows.
pub fn metrics(disks: &[DiskStat], filter: &NameFilter, stamp: Stamp) -> Vec<Metric> {
    let mut io = Points::new(&IO, stamp);
    let mut ops = Points::new(&OPERATIONS, stamp);
    let mut merged = Points::new(&MERGED, stamp);
    let mut op_time = Points::new(&OPERATION_TIME, stamp);
    let mut io_time = Points::new(&IO_TIME, stamp);
    let mut weighted = Points::new(&WEIGHTED_IO_TIME, stamp);
    let mut pending = Points::new(&PENDING_OPERATIONS, stamp);
    for d in disks.iter().filter(|d| filter.allows(&d.device)) {
        let dev = d.device.as_str();
        for (dir, bytes, n, m, ms) in [
            ("read", d.sectors_read * SECTOR_BYTES, d.reads, d.merged_reads, d.read_ms),
            ("write", d.sectors_written * SECTOR_BYTES, d.writes, d.merged_writes, d.write_ms),
        ] {
            let attrs = [("device", dev), ("direction", dir)];
            io.push(&attrs, bytes);
            ops.push(&attrs, n);
            merged.push(&attrs, m);
            op_time.push(&attrs, seconds(ms));
        }
        io_time.push(&[("device", dev)], seconds(d.io_ms));
        weighted.push(&[("device", dev)], seconds(d.weighted_io_ms));
        pending.push(&[("device", dev)], d.in_progress);
    }
    [io, ops, merged, op_time, io_time, weighted, pending].into_iter().filter_map(Points::finish).collect()
}

/// Reads `/proc/diskstats` under the host root.
pub fn scrape(host: &Host, filter: &NameFilter) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    Ok(metrics(&host.root.parse("/proc/diskstats", parse)?, filter, stamp))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::PROC_DISKSTATS;
    use super::super::otlp::{Num, read};
    use super::*;

    const STAMP: Stamp = Stamp { start_unix_nano: 1, time_unix_nano: 2 };

    #[test]
    fn skips_idle_devices_and_short_lines() {
        let disks = parse(PROC_DISKSTATS).expect("parse");
        assert_eq!(
            disks,
            [DiskStat {
                device: "vda".into(),
                reads: 1_915_838,
                merged_reads: 64_881,
                sectors_read: 53_001_498,
                read_ms: 2_599_095,
                writes: 911_734,
                merged_writes: 827_800,
                sectors_written: 404_049_696,
                write_ms: 1_926_747,
                in_progress: 0,
                io_ms: 317_028,
                weighted_io_ms: 4_672_135,
            }]
        );
        assert_eq!(parse("   8 0 sda 1 2 3\n"), Ok(vec![]));
        assert!(parse("   8 0 sda 1 2 3 4 5 6 7 8 9 ten 11\n").unwrap_err().0.contains("sda: \"ten\""));
    }

    #[test]
    fn converts_sectors_to_bytes_and_milliseconds_to_seconds() {
        let m = metrics(&parse(PROC_DISKSTATS).expect("parse"), &NameFilter::default(), STAMP);
        assert_eq!(m.len(), 7);
        for (def, keys) in [
            (&IO, &["device", "direction"][..]),
            (&OPERATIONS, &["device", "direction"]),
            (&MERGED, &["device", "direction"]),
            (&OPERATION_TIME, &["device", "direction"]),
            (&IO_TIME, &["device"]),
            (&WEIGHTED_IO_TIME, &["device"]),
            (&PENDING_OPERATIONS, &["device"]),
        ] {
            read::assert_shape(read::metric(&m, def.name), def, keys);
        }
        let rd = [("device", "vda"), ("direction", "read")];
        let wr = [("device", "vda"), ("direction", "write")];
        assert_eq!(read::value(&m, "system.disk.io", &rd), Num::Int(53_001_498 * 512));
        assert_eq!(read::value(&m, "system.disk.io", &wr), Num::Int(404_049_696 * 512));
        assert_eq!(read::value(&m, "system.disk.operations", &wr), Num::Int(911_734));
        assert_eq!(read::value(&m, "system.disk.merged", &rd), Num::Int(64_881));
        assert_eq!(read::value(&m, "system.disk.operation_time", &rd), Num::Double(2599.095));
        assert_eq!(read::value(&m, "system.disk.io_time", &[("device", "vda")]), Num::Double(317.028));
        assert_eq!(read::value(&m, "system.disk.weighted_io_time", &[("device", "vda")]), Num::Double(4672.135));
        assert_eq!(read::value(&m, "system.disk.pending_operations", &[("device", "vda")]), Num::Int(0));
    }

    #[test]
    fn excluded_devices_leave_no_empty_metrics() {
        let c: collector_config::receiver::hostmetrics::config::HostMetricsConfig =
            serde_yaml::from_str("scrapers: {disk: {exclude: {devices: [vda], match_type: strict}}}").expect("yaml");
        let s = super::super::config::Settings::from_config(&c).expect("valid");
        let super::super::config::Scraper::Disk(f) = &s.scrapers[0].scraper else { panic!("disk") };
        assert!(metrics(&parse(PROC_DISKSTATS).expect("parse"), f, STAMP).is_empty());
    }
}
