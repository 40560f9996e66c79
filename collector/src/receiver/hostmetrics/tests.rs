//! Whole-receiver tests over a temp dir laid out like a host root: every scraper reads exactly the
//! fixture files there, and the running receiver keeps collecting when a scraper's file is gone.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::fixtures::*;
use super::otlp::{Num, read};
use super::*;
use crate::pipeline::{BoxFuture, ConsumeError, Exporter};

const ALL: &str = "scrapers: {cpu: {}, disk: {}, filesystem: {}, load: {}, memory: {}, network: {}, paging: {}, processes: {}, system: {}}";

/// Writes the fixtures into `dir` as `proc/...` files, plus two processes (1 sleeping, 42 zombie).
fn host_root(dir: &Path) {
    let files = [
        ("proc/stat", PROC_STAT),
        ("proc/meminfo", PROC_MEMINFO),
        ("proc/loadavg", PROC_LOADAVG),
        ("proc/uptime", PROC_UPTIME),
        ("proc/diskstats", PROC_DISKSTATS),
        ("proc/net/dev", PROC_NET_DEV),
        ("proc/net/tcp", PROC_NET_TCP),
        ("proc/net/tcp6", PROC_NET_TCP6),
        ("proc/vmstat", PROC_VMSTAT),
        ("proc/swaps", PROC_SWAPS),
        ("proc/filesystems", PROC_FILESYSTEMS),
        ("proc/1/mountinfo", PROC_1_MOUNTINFO),
        ("proc/1/stat", PROC_1_STAT),
        ("proc/42/stat", "42 (kworker/0:1) Z 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 30 0 0\n"),
    ];
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write fixture");
    }
}

fn settings(yaml: &str, root: &Path) -> Settings {
    let mut c: HostMetricsConfig = serde_yaml::from_str(yaml).expect("yaml");
    c.root_path = Some(root.display().to_string());
    Settings::from_config(&c).expect("valid")
}

fn all_metrics(req: &ExportMetricsServiceRequest) -> Vec<Metric> {
    req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| s.metrics.clone()).collect()
}

#[test]
fn root_path_gives_exactly_the_values_in_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    host_root(dir.path());
    let s = settings(ALL, dir.path());
    let host = Host::open(HostRoot::new(&s.root_path)).expect("host");
    assert_eq!(host.boot_unix_nano, 1_795_593_669_000_000_000);
    let results = collect(&host, &s);
    for (name, r) in &results {
        assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
    }
    let req = request(results);
    let scopes: Vec<String> = req
        .resource_metrics
        .iter()
        .map(|r| r.scope_metrics[0].scope.as_ref().expect("scope").name.rsplit('/').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        scopes,
        [
            "cpuscraper",
            "diskscraper",
            "filesystemscraper",
            "loadscraper",
            "memoryscraper",
            "networkscraper",
            "pagingscraper",
            "processesscraper",
            "systemscraper"
        ]
    );
    let m = all_metrics(&req);
    for p in m.iter().flat_map(read::points) {
        assert_eq!(p.start_time_unix_nano, 1_795_593_669_000_000_000, "start time is btime");
    }
    let v = |name, attrs: &[(&str, &str)]| read::value(&m, name, attrs);
    assert_eq!(v("system.cpu.time", &[("cpu", "cpu1"), ("state", "system")]), Num::Double(1061.36));
    assert_eq!(v("system.memory.usage", &[("state", "free")]), Num::Int(8_078_116 * 1024));
    assert_eq!(v("system.cpu.load_average.5m", &[]), Num::Double(3.01));
    assert_eq!(v("system.uptime", &[]), Num::Double(11747.0));
    assert_eq!(v("system.disk.operations", &[("device", "vda"), ("direction", "read")]), Num::Int(1_915_838));
    assert_eq!(v("system.network.io", &[("device", "lo"), ("direction", "receive")]), Num::Int(111_973_570_369));
    assert_eq!(v("system.network.connections", &[("state", "LISTEN")]), Num::Int(3));
    assert_eq!(v("system.paging.usage", &[("device", "/dev/zram0"), ("state", "used")]), Num::Int(524_288 * 1024));
    assert_eq!(v("system.paging.faults", &[("type", "major")]), Num::Int(76_786 * 4096));
    assert_eq!(v("system.processes.count", &[("status", "sleeping")]), Num::Int(1));
    assert_eq!(v("system.processes.count", &[("status", "zombies")]), Num::Int(1));
    assert_eq!(v("system.processes.count", &[("status", "running")]), Num::Int(3));
    assert_eq!(v("system.processes.created", &[]), Num::Int(264_222));
    // The mountinfo fixture's only device-backed mount is `/`, i.e. the temp dir itself.
    let fs = read::metric(&m, "system.filesystem.usage");
    assert_eq!(read::points(fs).len(), 3);
    let attrs = read::attrs(&read::points(fs)[0]);
    assert_eq!(
        &attrs[..4],
        [("device", "/dev/vda"), ("mode", "rw"), ("mountpoint", "/"), ("type", "ext4")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
}

#[test]
fn disabled_metrics_are_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    host_root(dir.path());
    let s = settings(
        "scrapers: {network: {metrics: {system.network.connections: {enabled: false}, system.network.errors: {enabled: false}}}}",
        dir.path(),
    );
    let host = Host::open(HostRoot::new(&s.root_path)).expect("host");
    let names: Vec<String> = all_metrics(&request(collect(&host, &s))).into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["system.network.dropped", "system.network.io", "system.network.packets"]);
}

#[test]
fn a_failing_part_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    host_root(dir.path());
    std::fs::remove_file(dir.path().join("proc/swaps")).expect("rm");
    std::fs::remove_file(dir.path().join("proc/meminfo")).expect("rm");
    let s = settings("scrapers: {memory: {}, paging: {}}", dir.path());
    let host = Host::open(HostRoot::new(&s.root_path)).expect("host");
    let results = collect(&host, &s);
    let (mem, paging) = (&results[0].1, &results[1].1);
    assert!(mem.metrics.is_empty());
    assert_eq!(mem.failed_metrics, 1);
    assert!(mem.errors[0].to_string().contains("proc/meminfo"), "{}", mem.errors[0]);
    assert_eq!(paging.metrics.len(), 2, "operations and faults still come from vmstat");
    assert_eq!(paging.failed_metrics, 1);
}

#[test]
fn a_root_without_proc_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c: HostMetricsConfig = serde_yaml::from_str("scrapers: {cpu: {}}").expect("yaml");
    c.root_path = Some(dir.path().join("nope").display().to_string());
    let err = start("hostmetrics", &c, vec![], &Telemetry::default(), CancellationToken::new()).unwrap_err();
    assert!(err.starts_with("root_path: cannot read ") && err.contains("nope/proc/stat"), "{err}");
}

#[derive(Debug, Default)]
struct Sink(Mutex<Vec<Payload>>);

impl Exporter for Sink {
    fn consume(&self, data: crate::pdata::Data) -> BoxFuture<'_, Result<(), ConsumeError>> {
        self.0.lock().expect("lock").push(data.decode().expect("metrics arrive decoded"));
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn the_receiver_keeps_collecting_while_a_scraper_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    host_root(dir.path());
    std::fs::remove_file(dir.path().join("proc/loadavg")).expect("rm");
    let mut c: HostMetricsConfig =
        serde_yaml::from_str("collection_interval: 20ms\ninitial_delay: 0s\nscrapers: {cpu: {}, load: {}}")
            .expect("yaml");
    c.root_path = Some(dir.path().display().to_string());
    let sink = std::sync::Arc::new(Sink::default());
    let telemetry = Telemetry::new();
    let stop = CancellationToken::new();
    let consumer = Consumer::fanout(vec![], vec![sink.clone()]);
    let task = start("hostmetrics/x", &c, vec![consumer], &telemetry, stop.clone()).expect("start");
    telemetry_tests::wait_for("two collections", Duration::from_secs(10), || {
        let n = sink.0.lock().expect("lock").len();
        async move { (n >= 2).then_some(()) }
    })
    .await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops").expect("no panic");
    let payloads = sink.0.lock().expect("lock").clone();
    for p in &payloads {
        let Payload::Metrics(req) = p else { panic!("metrics only") };
        assert_eq!(req.resource_metrics.len(), 1, "cpu only: load has no file");
        assert_eq!(all_metrics(req)[0].name, "system.cpu.time");
    }
    let cpu = [("receiver", "hostmetrics/x"), ("scraper", "cpu")];
    let load = [("receiver", "hostmetrics/x"), ("scraper", "load")];
    let n = payloads.len() as u64;
    assert!(telemetry.counter_value("otelcol_scraper_scraped_metric_points", &cpu) >= 16 * n);
    assert!(telemetry.counter_value("otelcol_scraper_errored_metric_points", &load) >= 3 * n);
    assert_eq!(telemetry.counter_value("otelcol_scraper_errored_metric_points", &cpu), 0);
    assert!(
        telemetry.counter_value(
            "otelcol_receiver_accepted_metric_points",
            &[("receiver", "hostmetrics/x"), ("transport", "")]
        ) >= 16 * n
    );
}

#[test]
fn the_collector_config_validates_scrapers_with_receiver_paths() {
    use crate::config::{Config, ConfigError};
    let yaml = |receiver: &str, scrapers: &str| {
        format!(
            "receivers:\n  {receiver}:\n    scrapers: {scrapers}\nexporters:\n  debug: {{}}\nservice:\n  pipelines:\n    metrics:\n      receivers: [{receiver}]\n      exporters: [debug]\n"
        )
    };
    let cfg =
        Config::from_yaml_str(&yaml("host_metrics", "{cpu: {}}"), &|_| None).expect("upstream v0.155's type name");
    assert!(cfg.warnings.iter().all(|w| !w.contains("host")), "{:?}", cfg.warnings);
    match Config::from_yaml_str(&yaml("hostmetrics/node", "{process: {}, disk: {include: {devices: [sda]}}}"), &|_| {
        None
    }) {
        Err(ConfigError::Invalid(e)) => {
            assert!(
                e.iter().any(|e| e.starts_with("receivers.hostmetrics/node.scrapers.process: the per-process scraper")),
                "{e:?}"
            );
            assert!(
                e.iter().any(|e| e.starts_with("receivers.hostmetrics/node.scrapers.disk.include.match_type:")),
                "{e:?}"
            );
        }
        other => panic!("expected invalid config, got {other:?}"),
    }
}
