//! `system` scraper: `system.uptime`, whole seconds since boot from `/proc/uptime` (upstream reads
//! the same clock through `sysinfo(2)`, which truncates to seconds).

use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::host::{Host, ParseError, ScrapeError, field};
use super::otlp::{Points, Stamp};

pub use collector_config::hostmetrics::metrics::system::*;

/// Seconds since boot: the first field of `/proc/uptime`.
pub fn parse(text: &str) -> Result<f64, ParseError> {
    field(text.lines().next().unwrap_or_default(), 0, "uptime")
}

/// `system.uptime` in whole seconds.
pub fn metrics(uptime: f64, stamp: Stamp) -> Vec<Metric> {
    let mut p = Points::new(&UPTIME, stamp);
    p.push(&[], uptime.trunc());
    p.finish().into_iter().collect()
}

/// Reads `/proc/uptime` under the host root.
pub fn scrape(host: &Host) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    Ok(metrics(host.root.parse("/proc/uptime", parse)?, stamp))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::PROC_UPTIME;
    use super::super::otlp::{Num, read};
    use super::*;

    #[test]
    fn uptime_is_whole_seconds() {
        assert_eq!(parse(PROC_UPTIME), Ok(11747.77));
        assert!(parse("").is_err());
        let m = metrics(11747.77, Stamp { start_unix_nano: 1, time_unix_nano: 2 });
        read::assert_shape(&m[0], &UPTIME, &[]);
        assert_eq!(read::value(&m, "system.uptime", &[]), Num::Double(11747.0));
    }
}
