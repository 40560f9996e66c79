//! `processes` scraper: `system.processes.count` by status and `system.processes.created`.
//! Statuses come from each `/proc/<pid>/stat`; `running` and `blocked` are then replaced by the
//! `procs_running`/`procs_blocked` lines of `/proc/stat` (a single consistent read, as upstream),
//! and processes the per-pid reads missed are counted as `unknown`.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::metrics::v1::Metric;

use super::host::{Host, ParseError, ScrapeError, field};
use super::otlp::{Points, Stamp};

pub use collector_config::hostmetrics::metrics::processes::*;

/// The system-wide process lines of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Misc {
    /// `processes`: forks since boot.
    pub created: u64,
    /// `procs_running`: runnable tasks.
    pub running: u64,
    /// `procs_blocked`: tasks blocked on I/O.
    pub blocked: u64,
}

/// Parses the `processes`, `procs_running` and `procs_blocked` lines of `/proc/stat`.
pub fn parse_misc(stat: &str) -> Result<Misc, ParseError> {
    let mut m = Misc::default();
    let mut seen = false;
    for line in stat.lines() {
        let Some(key) = line.split_whitespace().next() else { continue };
        let slot = match key {
            "processes" => &mut m.created,
            "procs_running" => &mut m.running,
            "procs_blocked" => &mut m.blocked,
            _ => continue,
        };
        *slot = field(line, 1, key)?;
        seen = true;
    }
    if !seen {
        return Err(ParseError("no processes/procs_running/procs_blocked lines".into()));
    }
    Ok(m)
}

/// The state letter of a `/proc/<pid>/stat` line: the first field after the command, which is
/// parenthesised and may itself contain spaces and parentheses.
pub fn parse_pid_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// Upstream's status for a state letter (gopsutil's table, then the receiver's names).
pub fn status_of(state: char) -> Option<&'static str> {
    Some(match state {
        'A' => "daemon",
        'D' | 'U' => "blocked",
        'E' => "detached",
        'I' => "idle",
        'L' => "locked",
        'O' => "orphan",
        'R' => "running",
        'S' => "sleeping",
        'T' | 't' => "stopped",
        'W' => "paging",
        'Y' => "system",
        'Z' => "zombies",
        _ => return None,
    })
}

/// Counts by status: per-process states (letters of the processes still readable), `running` and
/// `blocked` from `misc`, and `unknown` for letters without a status and for the processes that
/// `total` (the pid directories listed) has but the counts do not.
pub fn count_by_status(states: &[char], misc: Misc, total: u64) -> BTreeMap<&'static str, u64> {
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for s in states {
        *counts.entry(status_of(*s).unwrap_or("unknown")).or_default() += 1;
    }
    counts.insert("blocked", misc.blocked);
    counts.insert("running", misc.running);
    let known: u64 = counts.values().sum();
    // Upstream assigns (not adds) the shortfall to unknown; procs_running counts threads, so the
    // shortfall is usually none.
    if total > known {
        counts.insert("unknown", total - known);
    }
    counts
}

/// The two metrics.
pub fn metrics(counts: &BTreeMap<&'static str, u64>, created: u64, stamp: Stamp) -> Vec<Metric> {
    let mut count = Points::new(&COUNT, stamp);
    for (status, n) in counts {
        count.push(&[("status", status)], *n);
    }
    let mut c = Points::new(&CREATED, stamp);
    c.push(&[], created);
    [count, c].into_iter().filter_map(Points::finish).collect()
}

/// Lists the pid directories of `/proc` under the host root and reads each one's state; processes
/// that exit meanwhile are skipped.
pub fn scrape(host: &Host) -> Result<Vec<Metric>, ScrapeError> {
    let stamp = host.stamp();
    let proc_dir = host.root.join("/proc");
    let entries =
        std::fs::read_dir(&proc_dir).map_err(|source| ScrapeError::Read { path: proc_dir.clone(), source })?;
    let pids: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    let states: Vec<char> = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(proc_dir.join(pid).join("stat")).ok())
        .filter_map(|s| parse_pid_state(&s))
        .collect();
    let misc = host.root.parse("/proc/stat", parse_misc)?;
    Ok(metrics(&count_by_status(&states, misc, pids.len() as u64), misc.created, stamp))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{PROC_1_STAT, PROC_STAT};
    use super::super::otlp::{Num, read};
    use super::*;

    #[test]
    fn reads_state_letters_and_system_lines() {
        assert_eq!(parse_pid_state(PROC_1_STAT), Some('S'));
        assert_eq!(parse_pid_state("42 (a (weird) name) Z 1 2\n"), Some('Z'));
        assert_eq!(parse_pid_state("42 (gone"), None);
        assert_eq!(parse_misc(PROC_STAT), Ok(Misc { created: 264_222, running: 3, blocked: 0 }));
        assert!(parse_misc("cpu 1 2\n").is_err());
    }

    #[test]
    fn counts_follow_upstream() {
        let misc = Misc { created: 10, running: 2, blocked: 1 };
        let counts = count_by_status(&['S', 'S', 'I', 'R', 'Z', 't', '?'], misc, 7);
        let want: BTreeMap<&str, u64> = [
            ("blocked", 1),
            ("idle", 1),
            ("running", 2),
            ("sleeping", 2),
            ("stopped", 1),
            ("unknown", 1),
            ("zombies", 1),
        ]
        .into();
        assert_eq!(counts, want);
        let counts = count_by_status(&['S'], Misc { running: 1, ..misc }, 5);
        assert_eq!(counts["unknown"], 2, "pids listed but unreadable: 5 - (1 + 1 + 1)");
    }

    #[test]
    fn emits_count_by_status_and_created() {
        let counts = count_by_status(&['S', 'I'], Misc { created: 264_222, running: 3, blocked: 0 }, 2);
        let m = metrics(&counts, 264_222, Stamp { start_unix_nano: 1, time_unix_nano: 2 });
        read::assert_shape(read::metric(&m, "system.processes.count"), &COUNT, &["status"]);
        read::assert_shape(read::metric(&m, "system.processes.created"), &CREATED, &[]);
        assert_eq!(read::value(&m, "system.processes.count", &[("status", "running")]), Num::Int(3));
        assert_eq!(read::value(&m, "system.processes.count", &[("status", "idle")]), Num::Int(1));
        assert_eq!(read::value(&m, "system.processes.created", &[]), Num::Int(264_222));
    }
}
