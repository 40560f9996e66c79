//! The hostmetrics receiver against the upstream collector v0.155 (built by tools/build.sh): both
//! run the same receiver config into their `file` exporters, and every scraper must produce the
//! same metrics — names, units, Sum/Gauge, monotonicity, temporality, attribute keys — on this
//! host, and the same values on a fixture host root both read through `root_path`. Ours runs
//! in-process (no scraper here reads the collector's own process), upstream as a process.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::in_process::Collector;
use common::otelcol::Otelcol;
use serde_json::Value;

const ALL_SCRAPERS: &str = "cpu: {}\n      disk: {}\n      filesystem: {}\n      load: {}\n      memory: {}\n      network: {}\n      paging: {}\n      processes: {}\n      system: {}";

/// Starts upstream otelcol with `receiver` (the body of `receivers.hostmetrics`) writing to `out`.
fn upstream(dir: &Path, receiver: &str, out: &Path) -> Otelcol {
    Otelcol::start(
        dir,
        &format!(
            "receivers:\n  hostmetrics:\n{receiver}\nexporters:\n  file:\n    path: {}\nservice:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    metrics:\n      receivers: [hostmetrics]\n      exporters: [file]\n",
            out.display()
        ),
    )
}

/// Starts our collector with the same receiver body writing to `{DIR}/ours.jsonl`.
fn ours(receiver: &str) -> Collector {
    Collector::start(&format!(
        "receivers:\n  hostmetrics:\n{receiver}\nexporters:\n  file:\n    path: \"{{DIR}}/ours.jsonl\"\nservice:\n  telemetry:\n    metrics:\n      address: 127.0.0.1:0\n  pipelines:\n    metrics:\n      receivers: [hostmetrics]\n      exporters: [file]\n"
    ))
}

/// One data point, flattened: scraper (scope name's last segment), metric shape, attributes, value.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    scraper: String,
    name: String,
    unit: String,
    kind: &'static str,
    monotonic: bool,
    temporality: i64,
    attrs: BTreeMap<String, String>,
    value: f64,
    start: u64,
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

/// Every collection (line) of an OTLP JSON file, as flat points.
fn collections(path: &Path) -> Vec<Vec<Point>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(doc) = serde_json::from_str::<Value>(line) else { continue };
        let mut points = Vec::new();
        for rm in doc["resourceMetrics"].as_array().into_iter().flatten() {
            assert!(
                rm["resource"]["attributes"].as_array().is_none_or(|a| a.is_empty()),
                "resources are empty: {}",
                rm["resource"]
            );
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                let scope = sm["scope"]["name"].as_str().unwrap_or_default();
                let scraper = scope.rsplit('/').next().unwrap_or_default().to_owned();
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    let (kind, body) = if m["sum"].is_object() { ("sum", &m["sum"]) } else { ("gauge", &m["gauge"]) };
                    for dp in body["dataPoints"].as_array().into_iter().flatten() {
                        let attrs = dp["attributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| {
                                (
                                    a["key"].as_str().unwrap_or_default().to_owned(),
                                    a["value"]["stringValue"].as_str().unwrap_or_default().to_owned(),
                                )
                            })
                            .collect();
                        points.push(Point {
                            scraper: scraper.clone(),
                            name: m["name"].as_str().unwrap_or_default().to_owned(),
                            unit: m["unit"].as_str().unwrap_or_default().to_owned(),
                            kind,
                            monotonic: body["isMonotonic"].as_bool().unwrap_or(false),
                            temporality: body["aggregationTemporality"].as_i64().unwrap_or(0),
                            attrs,
                            value: num(&dp["asInt"]).or_else(|| num(&dp["asDouble"])).unwrap_or(f64::NAN),
                            start: num(&dp["startTimeUnixNano"]).map_or(0, |s| s as u64),
                        });
                    }
                }
            }
        }
        out.push(points);
    }
    out
}

/// What has to match between the two collectors: per metric, its shape and attribute keys.
type Shape = (String, String, String, &'static str, bool, i64, Vec<String>);

fn shapes(points: &[Point]) -> BTreeSet<Shape> {
    points
        .iter()
        .map(|p| {
            (
                p.scraper.clone(),
                p.name.clone(),
                p.unit.clone(),
                p.kind,
                p.monotonic,
                p.temporality,
                p.attrs.keys().cloned().collect(),
            )
        })
        .collect()
}

/// Waits until both files hold at least `n` collections covering all nine scrapers.
fn wait_for_collections(ours: &Path, theirs: &Path, n: usize) -> (Vec<Vec<Point>>, Vec<Vec<Point>>) {
    let complete = |c: &Vec<Vec<Point>>| {
        c.len() >= n && c.iter().all(|p| p.iter().map(|p| &p.scraper).collect::<BTreeSet<_>>().len() == 9)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (collections(ours), collections(theirs));
        if complete(&a) && complete(&b) {
            return (a, b);
        }
        if Instant::now() > deadline {
            let scrapers = |c: &Vec<Vec<Point>>| -> Vec<BTreeSet<String>> {
                c.iter().map(|p| p.iter().map(|p| p.scraper.clone()).collect()).collect()
            };
            panic!(
                "timed out waiting for {n} complete collections from both collectors\nours: {:?}\nupstream: {:?}\nupstream log: {}",
                scrapers(&a),
                scrapers(&b),
                tail(&std::fs::read_to_string(theirs.with_file_name("otelcol.log")).unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The end of a long log.
fn tail(log: &str) -> &str {
    let start = log.len().saturating_sub(3000);
    log.get(start..).unwrap_or(log)
}

fn find<'a>(points: &'a [Point], name: &str, attrs: &[(&str, &str)]) -> &'a Point {
    let hits: Vec<&Point> = points
        .iter()
        .filter(|p| p.name == name && attrs.iter().all(|(k, v)| p.attrs.get(*k).map(String::as_str) == Some(*v)))
        .collect();
    assert_eq!(hits.len(), 1, "{name}{attrs:?}: {hits:?}");
    hits[0]
}

fn meminfo_kb(key: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    text.lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/meminfo"))
}

#[test]
fn every_scraper_emits_what_upstream_emits_on_this_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = format!("    collection_interval: 1s\n    initial_delay: 0s\n    scrapers:\n      {ALL_SCRAPERS}");
    let theirs_out = dir.path().join("upstream.jsonl");
    let _up = upstream(dir.path(), &receiver, &theirs_out);
    let c = ours(&receiver);
    let (a, b) = wait_for_collections(&c.path("ours.jsonl"), &theirs_out, 2);
    let (ours1, ours2, theirs) = (&a[0], &a[1], &b[1]);

    let (mine, upstream) = (shapes(ours2), shapes(theirs));
    let only_ours: Vec<_> = mine.difference(&upstream).collect();
    let only_upstream: Vec<_> = upstream.difference(&mine).collect();
    assert!(
        only_ours.is_empty() && only_upstream.is_empty(),
        "only ours: {only_ours:#?}\nonly upstream: {only_upstream:#?}"
    );

    // The same series (attribute values included), except for the two whose values are a moment's
    // state: process statuses and TCP states come and go between the two collectors' reads.
    let series = |points: &[Point]| -> BTreeSet<(String, Vec<(String, String)>)> {
        points
            .iter()
            .filter(|p| p.name != "system.processes.count" && p.name != "system.network.connections")
            .map(|p| (p.name.clone(), p.attrs.clone().into_iter().collect()))
            .collect()
    };
    assert_eq!(series(ours2), series(theirs));
    let boot = theirs[0].start;
    assert!(ours2.iter().all(|p| p.start == boot), "start time is the boot time upstream uses ({boot})");

    // Plausible values.
    let total = meminfo_kb("MemTotal") * 1024.0;
    let mem = |state| find(ours2, "system.memory.usage", &[("state", state)]).value;
    assert!(mem("used") > 0.0 && mem("used") < total, "used {} of {total}", mem("used"));
    assert!(mem("free") > 0.0 && mem("used") + mem("free") <= total);
    assert!(mem("buffered") + mem("cached") < total);
    assert!(mem("cached") >= mem("slab_reclaimable"), "cached includes reclaimable slab");
    let cpu_total = |points: &[Point]| -> f64 {
        points.iter().filter(|p| p.name == "system.cpu.time" && p.attrs["cpu"] == "cpu0").map(|p| p.value).sum()
    };
    assert!(cpu_total(ours2) > cpu_total(ours1), "cpu0 time grows between collections");
    for p in ours1.iter().filter(|p| p.name == "system.cpu.time") {
        let later = find(ours2, "system.cpu.time", &[("cpu", &p.attrs["cpu"]), ("state", &p.attrs["state"])]);
        assert!(later.value >= p.value, "{:?} went down", p.attrs);
    }
    let fs = |state| find(ours2, "system.filesystem.usage", &[("mountpoint", "/"), ("state", state)]).value;
    let st = filesystem_size("/");
    assert_eq!(fs("used") + fs("free") + fs("reserved"), st, "bytes add up to the filesystem size");
    let uptime = find(ours2, "system.uptime", &[]).value;
    assert!(uptime > 0.0 && uptime.fract() == 0.0);
    assert!(find(ours2, "system.processes.created", &[]).value > 0.0);

    let mut c = c;
    if let Err(e) = c.shutdown() {
        panic!("shutdown failed: {e}\n{}", c.log());
    }
    assert!(!c.log().contains("not implemented"), "{}", c.log());
    assert!(!c.log().contains("scraper failed"), "every scraper reads this host: {}", c.log());
}

/// Total bytes of the filesystem at `path` as `df` counts them (blocks × fragment size).
fn filesystem_size(path: &str) -> f64 {
    let out = Command::new("stat").args(["-f", "-c", "%b %S", path]).output().expect("stat -f");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|n| n.parse::<f64>().expect("number"));
    it.next().expect("blocks") * it.next().expect("block size")
}

/// A host root with distinctive values: what upstream reads through `root_path`, we must too.
fn fixture_root(root: &Path) {
    let files: [(&str, &str); 13] = [
        (
            "proc/stat",
            "cpu  300 60 500 700 90 11 13 17 0 0\ncpu0 100 20 200 300 40 5 6 7 0 0\ncpu1 200 40 300 400 50 6 7 10 0 0\nbtime 1700000000\nprocesses 4242\nprocs_running 7\nprocs_blocked 2\n",
        ),
        (
            "proc/meminfo",
            "MemTotal:        1000000 kB\nMemFree:          100000 kB\nMemAvailable:     600000 kB\nBuffers:           20000 kB\nCached:           300000 kB\nSReclaimable:      40000 kB\nSUnreclaim:         5000 kB\n",
        ),
        ("proc/loadavg", "9.01 8.02 7.03 3/456 7890\n"),
        ("proc/uptime", "12345.67 2000.00\n"),
        (
            "proc/diskstats",
            "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n   8       0 sdb 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27\n   8       1 sdb1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        ),
        (
            "proc/net/dev",
            "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n  fake0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n",
        ),
        (
            "proc/net/tcp",
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1060 1 000000006f5be451 100 0 0 10 0\n   1: 0100007F:4A37 0100007F:E91E 06 00000000:00000000 03:000007D1 00000000     0        0 0 3 00000000589b3ff4\n   2: 0100007F:B0A2 0100007F:4A37 04 00000000:00000000 01:00000014 00000000     0        0 0 1 00000000593b183e 20 4 30 10 -1\n",
        ),
        (
            "proc/net/tcp6",
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
        ),
        ("proc/vmstat", "pgpgin 1000\npgpgout 2000\npswpin 3\npswpout 4\npgfault 500\npgmajfault 60\n"),
        ("proc/filesystems", "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\n\text4\n\txfs\n"),
        ("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"),
        (
            "proc/1/mountinfo",
            "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n25 27 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw\n",
        ),
        ("proc/1/stat", "1 (init) S 0 0 0 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0\n"),
    ];
    for (rel, text) in files {
        let path: PathBuf = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write fixture");
    }
}

#[test]
fn values_match_upstream_on_a_fixture_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("host");
    fixture_root(&root);
    let receiver = format!(
        "    collection_interval: 1s\n    initial_delay: 0s\n    root_path: {}\n    scrapers:\n      {ALL_SCRAPERS}",
        root.display()
    );
    let theirs_out = dir.path().join("upstream.jsonl");
    let _up = upstream(dir.path(), &receiver, &theirs_out);
    let c = ours(&receiver);
    let (a, b) = wait_for_collections(&c.path("ours.jsonl"), &theirs_out, 1);
    let (mine, theirs) = (&a[0], &b[0]);
    assert_eq!(shapes(mine), shapes(theirs));

    // Upstream reads a few things from the real host whatever root_path says (boot time, uptime,
    // swap devices, per-process statuses); everything else must be the same number.
    // Filesystem sizes are the temp dir's, which other processes change between the two reads.
    let comparable = |p: &&Point| match p.name.as_str() {
        "system.uptime" => false,
        "system.processes.count" => ["running", "blocked"].contains(&p.attrs["status"].as_str()),
        _ => p.scraper != "filesystemscraper",
    };
    let values = |points: &[Point]| -> BTreeMap<(String, Vec<(String, String)>), String> {
        points
            .iter()
            .filter(comparable)
            .map(|p| ((p.name.clone(), p.attrs.clone().into_iter().collect()), format!("{}", p.value)))
            .collect()
    };
    assert_eq!(values(mine), values(theirs));
    // Spot checks that the comparison covers the derivations that matter.
    assert_eq!(find(mine, "system.memory.usage", &[("state", "used")]).value, 400_000.0 * 1024.0);
    assert_eq!(find(mine, "system.paging.faults", &[("type", "minor")]).value, 440.0 * 4096.0);
    assert_eq!(find(mine, "system.network.connections", &[("state", "FIN_WAIT1")]).value, 1.0);
    assert_eq!(find(mine, "system.disk.io", &[("device", "sdb"), ("direction", "write")]).value, 17.0 * 512.0);
    assert_eq!(find(mine, "system.cpu.time", &[("cpu", "cpu1"), ("state", "steal")]).value, 0.1);
    assert!(mine.iter().all(|p| p.start == 1_700_000_000_000_000_000), "our start time is the root's btime");
    let mounts: BTreeSet<&str> =
        mine.iter().filter(|p| p.scraper == "filesystemscraper").map(|p| p.attrs["mountpoint"].as_str()).collect();
    assert_eq!(mounts, BTreeSet::from(["/"]), "tmpfs is left out");
}
