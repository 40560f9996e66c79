//! `network` scraper: per interface byte, packet, error and drop counters from `/proc/net/dev`
//! (filtered by `include`/`exclude` interfaces), and TCP connection counts by state from
//! `/proc/net/tcp` and `/proc/net/tcp6`.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::config::NameFilter;
use super::host::{Host, ParseError, ScrapeError, field};
use super::otlp::{Points, Stamp};

pub use collector_config::hostmetrics::metrics::network::*;

/// The states upstream always reports (with 0 when no connection is in them).
const ALL_TCP_STATES: &[&str] = &[
    "CLOSE_WAIT",
    "CLOSE",
    "CLOSING",
    "DELETE",
    "ESTABLISHED",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "LAST_ACK",
    "LISTEN",
    "SYN_SENT",
    "SYN_RECV",
    "TIME_WAIT",
];

/// The kernel's hex state codes with gopsutil's names. Note `FIN_WAIT1`/`FIN_WAIT2`: gopsutil's
/// Linux names differ from the `FIN_WAIT_1`/`FIN_WAIT_2` of the list above, so upstream reports
/// such connections under the former while the latter stay 0. Kept as is: the same series, with
/// the same values, as the upstream collector.
fn tcp_state(hex: &str) -> Option<&'static str> {
    Some(match hex {
        "01" => "ESTABLISHED",
        "02" => "SYN_SENT",
        "03" => "SYN_RECV",
        "04" => "FIN_WAIT1",
        "05" => "FIN_WAIT2",
        "06" => "TIME_WAIT",
        "07" => "CLOSE",
        "08" => "CLOSE_WAIT",
        "09" => "LAST_ACK",
        "0A" => "LISTEN",
        "0B" => "CLOSING",
        _ => return None,
    })
}

/// One interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDev {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
}

/// Parses `/proc/net/dev` (two header lines, then `name: 16 counters`; the name may contain
/// colons, so the split is at the last one, as gopsutil does).
pub fn parse_net_dev(text: &str) -> Result<Vec<NetDev>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, stats)) = line.rsplit_once(':') else { continue };
        let name = name.trim();
        if name.is_empty() || stats.split_whitespace().count() < 13 {
            continue;
        }
        let n = |i: usize| field::<u64>(stats, i, name);
        out.push(NetDev {
            name: name.to_owned(),
            rx_bytes: n(0)?,
            rx_packets: n(1)?,
            rx_errors: n(2)?,
            rx_dropped: n(3)?,
            tx_bytes: n(8)?,
            tx_packets: n(9)?,
            tx_errors: n(10)?,
            tx_dropped: n(11)?,
        });
    }
    Ok(out)
}

/// Counts the sockets of `/proc/net/tcp` or `/proc/net/tcp6` by state name into `counts`.
/// Sockets in a state the kernel added after these names are skipped.
pub fn count_tcp_states(text: &str, counts: &mut BTreeMap<&'static str, u64>) -> Result<(), ParseError> {
    for line in text.lines().skip(1) {
        let Some(st) = line.split_whitespace().nth(3) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ParseError(format!("no state field in line {line:?}")));
        };
        if let Some(state) = tcp_state(st) {
            *counts.entry(state).or_default() += 1;
        }
    }
    Ok(())
}

/// Upstream's connection counts: every state of its list, plus whatever states were seen.
pub fn connection_counts(seen: &BTreeMap<&'static str, u64>) -> BTreeMap<&'static str, u64> {
    let mut all: BTreeMap<&'static str, u64> = ALL_TCP_STATES.iter().map(|s| (*s, 0)).collect();
    for (state, n) in seen {
        *all.entry(state).or_default() += n;
    }
    all
}

/// The four interface counters for the interfaces `filter` allows.
pub fn counter_metrics(devs: &[NetDev], filter: &NameFilter, stamp: Stamp) -> Vec<Metric> {
    let mut io = Points::new(&IO, stamp);
    let mut packets = Points::new(&PACKETS, stamp);
    let mut errors = Points::new(&ERRORS, stamp);
    let mut dropped = Points::new(&DROPPED, stamp);
    for d in devs.iter().filter(|d| filter.allows(&d.name)) {
        for (dir, b, p, e, x) in [
            ("transmit", d.tx_bytes, d.tx_packets, d.tx_errors, d.tx_dropped),
            ("receive", d.rx_bytes, d.rx_packets, d.rx_errors, d.rx_dropped),
        ] {
            let attrs = [("device", d.name.as_str()), ("direction", dir)];
            io.push(&attrs, b);
            packets.push(&attrs, p);
            errors.push(&attrs, e);
            dropped.push(&attrs, x);
        }
    }
    [io, packets, errors, dropped].into_iter().filter_map(Points::finish).collect()
}

/// `system.network.connections` (TCP only, as upstream).
pub fn connection_metrics(counts: &BTreeMap<&'static str, u64>, stamp: Stamp) -> Vec<Metric> {
    let mut p = Points::new(&CONNECTIONS, stamp);
    for (state, n) in counts {
        p.push(&[("protocol", "tcp"), ("state", state)], *n);
    }
    p.finish().into_iter().collect()
}

/// Reads the interface counters under the host root.
pub fn scrape_counters(host: &Host, filter: &NameFilter) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    Ok(counter_metrics(&host.root.parse("/proc/net/dev", parse_net_dev)?, filter, stamp))
}

/// Reads the TCP socket tables under the host root; a missing `tcp6` (IPv6 disabled) counts as
/// empty.
pub fn scrape_connections(host: &Host) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    let mut seen = BTreeMap::new();
    host.root.parse("/proc/net/tcp", |t| count_tcp_states(t, &mut seen))?;
    match host.root.parse("/proc/net/tcp6", |t| count_tcp_states(t, &mut seen)) {
        Err(ScrapeError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        other => other?,
    }
    Ok(connection_metrics(&connection_counts(&seen), stamp))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{PROC_NET_DEV, PROC_NET_TCP, PROC_NET_TCP6};
    use super::super::otlp::{Num, read};
    use super::*;

    const STAMP: Stamp = Stamp { start_unix_nano: 1, time_unix_nano: 2 };

    #[test]
    fn parses_every_interface() {
        let devs = parse_net_dev(PROC_NET_DEV).expect("parse");
        let names: Vec<&str> = devs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        assert_eq!(
            devs[3],
            NetDev {
                name: "eth0".into(),
                rx_bytes: 1_807_927_297,
                rx_packets: 112_465,
                tx_bytes: 8_597_539,
                tx_packets: 77_983,
                ..Default::default()
            }
        );
        let odd = "h1\nh2\n  veth:a: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let d = &parse_net_dev(odd).expect("parse")[0];
        assert_eq!((d.name.as_str(), d.rx_dropped, d.tx_errors, d.tx_dropped), ("veth:a", 4, 11, 12));
        assert!(
            parse_net_dev("h1\nh2\n eth0: 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16\n").unwrap_err().0.contains("eth0")
        );
    }

    #[test]
    fn interface_counters_by_direction() {
        let m = counter_metrics(&parse_net_dev(PROC_NET_DEV).expect("parse"), &NameFilter::default(), STAMP);
        for def in [&IO, &PACKETS, &ERRORS, &DROPPED] {
            let metric = read::metric(&m, def.name);
            read::assert_shape(metric, def, &["device", "direction"]);
            assert_eq!(read::points(metric).len(), 8, "4 interfaces x 2 directions");
        }
        let v = |name, dir| read::value(&m, name, &[("device", "eth0"), ("direction", dir)]);
        assert_eq!(v("system.network.io", "receive"), Num::Int(1_807_927_297));
        assert_eq!(v("system.network.io", "transmit"), Num::Int(8_597_539));
        assert_eq!(v("system.network.packets", "transmit"), Num::Int(77_983));
        assert_eq!(v("system.network.dropped", "receive"), Num::Int(0));
    }

    #[test]
    fn connections_count_every_state_like_upstream() {
        let mut seen = BTreeMap::new();
        count_tcp_states(PROC_NET_TCP, &mut seen).expect("tcp");
        count_tcp_states(PROC_NET_TCP6, &mut seen).expect("tcp6");
        let m = connection_metrics(&connection_counts(&seen), STAMP);
        read::assert_shape(&m[0], &CONNECTIONS, &["protocol", "state"]);
        let v = |state| read::value(&m, "system.network.connections", &[("protocol", "tcp"), ("state", state)]);
        assert_eq!(v("LISTEN"), Num::Int(3));
        assert_eq!(v("TIME_WAIT"), Num::Int(3));
        assert_eq!(v("ESTABLISHED"), Num::Int(1));
        assert_eq!(v("FIN_WAIT1"), Num::Int(1), "gopsutil's name");
        assert_eq!(v("FIN_WAIT_1"), Num::Int(0), "upstream's list, never incremented on Linux");
        assert_eq!(v("DELETE"), Num::Int(0));
        assert_eq!(read::points(&m[0]).len(), 13);
        assert!(count_tcp_states("header\n   0:\n", &mut seen).unwrap_err().0.contains("no state field"));
    }
}
