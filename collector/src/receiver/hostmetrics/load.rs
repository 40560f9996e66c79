//! `load` scraper: `system.cpu.load_average.{1m,5m,15m}` from `/proc/loadavg`, optionally divided
//! by the number of CPUs (`cpu_average: true`).

use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::host::{Host, ParseError, ScrapeError, field};
use super::otlp::{Points, Stamp};

pub use collector_config::hostmetrics::metrics::load::*;

/// The three load averages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAvg {
    /// Over 1 minute.
    pub m1: f64,
    /// Over 5 minutes.
    pub m5: f64,
    /// Over 15 minutes.
    pub m15: f64,
}

/// Parses `/proc/loadavg` (`0.52 0.58 0.59 2/123 4567`).
pub fn parse(text: &str) -> Result<LoadAvg, ParseError> {
    let line = text.lines().next().unwrap_or_default();
    Ok(LoadAvg { m1: field(line, 0, "1m")?, m5: field(line, 1, "5m")?, m15: field(line, 2, "15m")? })
}

/// The number of logical CPUs: the `cpuN` lines of `/proc/stat`.
pub fn count_cpus(stat: &str) -> Result<usize, ParseError> {
    Ok(super::cpu::parse(stat)?.len())
}

/// The three gauges; with `per_cpu = Some(n)` each value is divided by `n` (upstream's `cpu_average`).
pub fn metrics(load: LoadAvg, per_cpu: Option<usize>, stamp: Stamp) -> Vec<Metric> {
    let div = per_cpu.map_or(1.0, |n| n.max(1) as f64);
    [(&LOAD_1M, load.m1), (&LOAD_5M, load.m5), (&LOAD_15M, load.m15)]
        .into_iter()
        .filter_map(|(def, v)| {
            let mut p = Points::new(def, stamp);
            p.push(&[], v / div);
            p.finish()
        })
        .collect()
}

/// Reads `/proc/loadavg` (and `/proc/stat` for `cpu_average`) under the host root.
pub fn scrape(host: &Host, cpu_average: bool) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    let load = host.root.parse("/proc/loadavg", parse)?;
    let per_cpu = if cpu_average { Some(host.root.parse("/proc/stat", count_cpus)?) } else { None };
    Ok(metrics(load, per_cpu, stamp))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{PROC_LOADAVG, PROC_STAT};
    use super::super::otlp::{Num, read};
    use super::*;

    const STAMP: Stamp = Stamp { start_unix_nano: 1, time_unix_nano: 2 };

    #[test]
    fn parses_the_three_averages() {
        assert_eq!(parse(PROC_LOADAVG), Ok(LoadAvg { m1: 3.83, m5: 3.01, m15: 2.43 }));
        assert!(parse("").unwrap_err().0.contains("1m"));
        assert!(parse("0.1 high 0.3 1/2 3").unwrap_err().0.contains("5m"));
    }

    #[test]
    fn emits_three_gauges_optionally_per_cpu() {
        let load = parse(PROC_LOADAVG).expect("parse");
        let m = metrics(load, None, STAMP);
        for def in METRICS {
            read::assert_shape(read::metric(&m, def.name), def, &[]);
        }
        assert_eq!(read::value(&m, "system.cpu.load_average.1m", &[]), Num::Double(3.83));
        let n = count_cpus(PROC_STAT).expect("cpus");
        assert_eq!(n, 2);
        let m = metrics(load, Some(n), STAMP);
        assert_eq!(read::value(&m, "system.cpu.load_average.15m", &[]), Num::Double(2.43 / 2.0));
    }
}
