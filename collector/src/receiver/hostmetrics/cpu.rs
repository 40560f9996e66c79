//! `cpu` scraper: `system.cpu.time` per logical CPU and state, from the `cpuN` lines of
//! `/proc/stat`, in seconds.

use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::host::{Host, ParseError, ScrapeError, field};
use super::otlp::{Points, Stamp};

pub use collector_config::hostmetrics::metrics::cpu::*;

/// `/proc/stat` counts in USER_HZ ticks, which the kernel fixes at 100 per second for user space on
/// every architecture Kubernetes runs on (gopsutil divides by the same constant).
const USER_HZ: f64 = 100.0;

/// One logical CPU's counters, in ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTimes {
    /// `cpu0`, `cpu1`, ... as in the file (the attribute value upstream uses).
    pub cpu: String,
    /// Time in user mode (includes guest time, as the kernel reports it).
    pub user: u64,
    /// Time in user mode with low priority.
    pub nice: u64,
    /// Time in kernel mode.
    pub system: u64,
    /// Idle time.
    pub idle: u64,
    /// Waiting for I/O.
    pub iowait: u64,
    /// Servicing hardware interrupts.
    pub irq: u64,
    /// Servicing softirqs.
    pub softirq: u64,
    /// Stolen by the hypervisor (absent before Linux 2.6.11: 0).
    pub steal: u64,
}

/// The per-CPU lines of `/proc/stat` (the aggregate `cpu` line is skipped, as upstream does with
/// per-CPU collection).
pub fn parse(stat: &str) -> Result<Vec<CpuTimes>, ParseError> {
    let mut out = Vec::new();
    for line in stat.lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        if name == "cpu" || !name.starts_with("cpu") {
            continue;
        }
        let n = |i: usize, what: &str| field::<u64>(line, i, what);
        let optional = |i: usize, what: &str| if line.split_whitespace().nth(i).is_some() { n(i, what) } else { Ok(0) };
        out.push(CpuTimes {
            cpu: name.to_owned(),
            user: n(1, "user")?,
            nice: n(2, "nice")?,
            system: n(3, "system")?,
            idle: n(4, "idle")?,
            iowait: optional(5, "iowait")?,
            irq: optional(6, "irq")?,
            softirq: optional(7, "softirq")?,
            steal: optional(8, "steal")?,
        });
    }
    if out.is_empty() {
        return Err(ParseError("no cpuN lines".into()));
    }
    Ok(out)
}

/// `system.cpu.time` with upstream's state names.
pub fn metrics(cpus: &[CpuTimes], stamp: Stamp) -> Vec<Metric> {
    let mut p = Points::new(&CPU_TIME, stamp);
    for c in cpus {
        for (state, ticks) in [
            ("user", c.user),
            ("system", c.system),
            ("idle", c.idle),
            ("interrupt", c.irq),
            ("nice", c.nice),
            ("softirq", c.softirq),
            ("steal", c.steal),
            ("wait", c.iowait),
        ] {
            p.push(&[("cpu", &c.cpu), ("state", state)], ticks as f64 / USER_HZ);
        }
    }
    p.finish().into_iter().collect()
}

/// Reads `/proc/stat` under the host root.
pub fn scrape(host: &Host) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    Ok(metrics(&host.root.parse("/proc/stat", parse)?, stamp))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::PROC_STAT;
    use super::super::otlp::{Num, read};
    use super::*;

    const STAMP: Stamp = Stamp { start_unix_nano: 1, time_unix_nano: 2 };

    #[test]
    fn parses_every_logical_cpu() {
        let cpus = parse(PROC_STAT).expect("parse");
        assert_eq!(cpus.len(), 2);
        assert_eq!(
            cpus[1],
            CpuTimes {
                cpu: "cpu1".into(),
                user: 548_417,
                nice: 16_344,
                system: 106_136,
                idle: 487_684,
                iowait: 2_863,
                irq: 0,
                softirq: 8_018,
                steal: 925,
            }
        );
    }

    #[test]
    fn old_kernels_without_steal_read_as_zero_and_garbage_is_an_error() {
        assert_eq!(parse("cpu0 1 2 3 4\n").expect("parse")[0].steal, 0);
        assert!(parse("cpu 1 2 3 4\n").unwrap_err().0.contains("no cpuN lines"));
        assert!(parse("cpu0 1 x 3 4\n").unwrap_err().0.contains("nice"));
    }

    #[test]
    fn converts_ticks_to_seconds_per_cpu_and_state() {
        let m = metrics(&parse(PROC_STAT).expect("parse"), STAMP);
        read::assert_shape(&m[0], &CPU_TIME, &["cpu", "state"]);
        assert_eq!(read::points(&m[0]).len(), 16, "2 cpus x 8 states");
        let v = |cpu, state| read::value(&m, "system.cpu.time", &[("cpu", cpu), ("state", state)]);
        assert_eq!(v("cpu0", "user"), Num::Double(5434.05));
        assert_eq!(v("cpu0", "wait"), Num::Double(16.52));
        assert_eq!(v("cpu1", "interrupt"), Num::Double(0.0));
        assert_eq!(v("cpu1", "steal"), Num::Double(9.25));
    }
}
