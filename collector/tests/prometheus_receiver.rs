//! The `prometheus` receiver against real peers: an HTTP server the test starts serves a fixed
//! exposition; (1) a `static_configs` job is scraped by our collector and by the upstream
//! `otelcol` with the same receiver config, both writing OTLP JSON with their `file` exporter,
//! and the results must agree; (2) the operator's `kubernetes_sd_configs` job discovers pods in
//! a real kube-apiserver, scrapes them, and stops scraping a pod once it is deleted.
//!
//! The static job's collector runs in-process. The discovery tests run the binary: the kube client
//! finds the API server through `KUBECONFIG` in the process environment, which a test cannot set
//! for an in-process collector without changing it for every test of this binary.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::otelcol::Otelcol;
use common::{DeadPort, in_process, process};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use telemetry_tests::wait_for;

const EXPOSITION: &str = r#"# HELP http_requests_total Total requests.
# TYPE http_requests_total counter
http_requests_total{method="get",code="200"} 1027
http_requests_total{method="post",code="400"} 3
# HELP temperature_celsius Current temperature.
# TYPE temperature_celsius gauge
temperature_celsius{room="a\"b\\c\nd"} 21.5
temperature_celsius{room="hall"} -3.25
# HELP latency_seconds Request latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 5
latency_seconds_bucket{le="0.5"} 8
latency_seconds_bucket{le="+Inf"} 10
latency_seconds_sum 3.2
latency_seconds_count 10
# HELP rpc_seconds RPC latency.
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.05
rpc_seconds{quantile="0.99"} 0.2
rpc_seconds_sum 12.5
rpc_seconds_count 100
untyped_thing 7
"#;

/// A metrics server on 127.0.0.1 that answers every path with [`EXPOSITION`] and counts requests per path.
struct Exporter {
    addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Exporter {
    async fn start() -> Self {
        let hits: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let counter = counter.clone();
            async move {
                *counter.lock().expect("hits lock").entry(uri.path().to_owned()).or_default() += 1;
                ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], EXPOSITION)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind exporter");
        let addr = listener.local_addr().expect("exporter addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, hits, task }
    }

    fn hits(&self, path: &str) -> u64 {
        self.hits.lock().expect("hits lock").get(path).copied().unwrap_or(0)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One data point as both collectors' `file` exporters write it (OTLP JSON).
#[derive(Debug, Clone, PartialEq)]
struct Point {
    resource: BTreeMap<String, String>,
    name: String,
    kind: String,
    description: String,
    monotonic: bool,
    attrs: BTreeMap<String, String>,
    value: Option<f64>,
    count: Option<u64>,
    sum: Option<f64>,
    bounds: Vec<f64>,
    buckets: Vec<u64>,
    start_ns: u64,
}

fn string_attrs(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let val = &a["value"];
            let s = val["stringValue"].as_str().map(str::to_owned).unwrap_or_else(|| val.to_string());
            (a["key"].as_str().unwrap_or_default().to_owned(), s)
        })
        .collect()
}

/// Numbers arrive as JSON numbers or (64-bit integers, non-finite floats) as strings.
fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn points(path: &std::path::Path) -> Vec<Point> {
    let mut out = Vec::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        for rm in v["resourceMetrics"].as_array().into_iter().flatten() {
            let resource = string_attrs(&rm["resource"]["attributes"]);
            for m in rm["scopeMetrics"].as_array().into_iter().flatten().flat_map(|s| s["metrics"].as_array()).flatten()
            {
                for kind in ["sum", "gauge", "histogram", "summary"] {
                    let Some(dps) = m[kind]["dataPoints"].as_array() else { continue };
                    for dp in dps {
                        out.push(Point {
                            resource: resource.clone(),
                            name: m["name"].as_str().unwrap_or_default().to_owned(),
                            kind: kind.to_owned(),
                            description: m["description"].as_str().unwrap_or_default().to_owned(),
                            monotonic: m[kind]["isMonotonic"].as_bool().unwrap_or(false),
                            attrs: string_attrs(&dp["attributes"]),
                            value: num(&dp["asDouble"]).or_else(|| num(&dp["asInt"])),
                            count: num(&dp["count"]).map(|c| c as u64),
                            sum: num(&dp["sum"]),
                            bounds: dp["explicitBounds"].as_array().into_iter().flatten().filter_map(num).collect(),
                            buckets: dp["bucketCounts"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(num)
                                .map(|c| c as u64)
                                .collect(),
                            start_ns: num(&dp["startTimeUnixNano"]).map(|n| n as u64).unwrap_or(0),
                        });
                    }
                }
            }
        }
    }
    out
}

fn receiver_yaml(targets: &[String]) -> String {
    format!(
        r#"  prometheus:
    config:
      scrape_configs:
        - job_name: static
          scrape_interval: 1s
          static_configs:
            - targets: [{}]
              labels: {{env: test}}
"#,
        targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
    )
}

/// A series across both collectors' output: metric name, `service.instance.id`, attributes.
type SeriesKey = (String, String, Vec<(String, String)>);

/// The latest point of each series in `points`.
fn latest(points: &[Point]) -> BTreeMap<SeriesKey, Point> {
    points
        .iter()
        .map(|p| {
            let instance = p.resource.get("service.instance.id").cloned().unwrap_or_default();
            ((p.name.clone(), instance, p.attrs.clone().into_iter().collect()), p.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_job_matches_upstream_otelcol() {
    let exporter = Exporter::start().await;
    let dead = DeadPort::bind();
    let down = dead.addr.to_string();
    let up = exporter.addr.to_string();
    let receiver = receiver_yaml(&[up.clone(), down.clone()]);

    let dir = tempfile::tempdir().expect("tempdir");
    let upstream_out = dir.path().join("upstream.jsonl");
    let _upstream = Otelcol::start(
        dir.path(),
        &format!(
            "receivers:\n{receiver}exporters:\n  file:\n    path: {}\nservice:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    metrics:\n      receivers: [prometheus]\n      exporters: [file]\n",
            upstream_out.display()
        ),
    );
    let ours = in_process::Collector::start(&format!(
        "receivers:\n{receiver}exporters:\n  file:\n    path: {{DIR}}/ours.jsonl\nservice:\n  telemetry:\n    metrics:\n      address: 127.0.0.1:0\n  pipelines:\n    metrics:\n      receivers: [prometheus]\n      exporters: [file]\n"
    ));
    let ours_out = ours.path("ours.jsonl");

    // Two scrapes of the live target and one of the dead one, from each collector.
    let complete = |pts: &[Point]| {
        let live = pts.iter().filter(|p| p.name == "latency_seconds").count() >= 2;
        let dead = pts.iter().any(|p| p.name == "up" && p.resource.get("service.instance.id") == Some(&down));
        live && dead
    };
    let (mine, theirs) = wait_for("two scrapes in both collectors' files", Duration::from_secs(60), || {
        let (m, t) = (points(&ours_out), points(&upstream_out));
        let done = complete(&m) && complete(&t);
        async move { done.then_some((m, t)) }
    })
    .await;

    // Our own values first, so a wrong conversion fails here with a clear message.
    let find = |pts: &[Point], name: &str, key: &str, val: &str| {
        pts.iter()
            .rev()
            .find(|p| p.name == name && p.attrs.get(key).map(String::as_str) == Some(val))
            .cloned()
            .unwrap_or_else(|| panic!("{name}{{{key}={val}}} missing from {pts:#?}"))
    };
    let counter = find(&mine, "http_requests_total", "method", "get");
    assert_eq!((counter.kind.as_str(), counter.monotonic, counter.value), ("sum", true, Some(1027.0)));
    let want_attrs: BTreeMap<String, String> =
        [("code", "200"), ("env", "test"), ("method", "get")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
    assert_eq!(counter.attrs, want_attrs);
    assert!(counter.start_ns > 0, "we track start times");
    let hist = find(&mine, "latency_seconds", "env", "test");
    assert_eq!(
        (hist.bounds.clone(), hist.buckets.clone(), hist.count, hist.sum),
        (vec![0.1, 0.5], vec![5, 3, 2], Some(10), Some(3.2))
    );
    let escaped = find(&mine, "temperature_celsius", "env", "test");
    assert_eq!(escaped.kind, "gauge");
    assert!(mine.iter().any(|p| p.attrs.get("room").map(String::as_str) == Some("a\"b\\c\nd")));
    let res = &counter.resource;
    assert_eq!(res.get("service.name").map(String::as_str), Some("static"));
    assert_eq!(res.get("service.instance.id"), Some(&up));
    let dead_up = mine
        .iter()
        .find(|p| p.name == "up" && p.resource.get("service.instance.id") == Some(&down))
        .expect("dead target reports up");
    assert_eq!(dead_up.value, Some(0.0));

    // Then the same view of both: names, types, descriptions, attributes, resources and values.
    let (mine_latest, theirs_latest) = (latest(&mine), latest(&theirs));
    let compared = [
        "http_requests_total",
        "temperature_celsius",
        "latency_seconds",
        "rpc_seconds",
        "untyped_thing",
        "up",
        "scrape_samples_scraped",
    ];
    for name in compared {
        let keys = |m: &BTreeMap<_, Point>| m.keys().filter(|(n, _, _)| n == name).cloned().collect::<Vec<_>>();
        assert_eq!(keys(&mine_latest), keys(&theirs_latest), "{name}: same series");
        for key in keys(&theirs_latest) {
            let (a, b) = (&mine_latest[&key], &theirs_latest[&key]);
            let strip = |p: &Point| Point { start_ns: 0, ..p.clone() };
            assert_eq!(strip(a), strip(b), "{key:?} differs (ours, upstream)");
        }
    }
    let names = |pts: &[Point]| {
        let mut n: Vec<String> = pts.iter().map(|p| p.name.clone()).collect();
        n.sort();
        n.dedup();
        n
    };
    assert_eq!(names(&mine), names(&theirs), "the same metric names overall");
}

/// The pod the operator's job should discover, scraped on `port` at `path`.
fn annotated_pod(name: &str, ns: &str, port: u16, path: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app": "reviews",
                "telemetry.thereview.dev/pipeline": "main",
                "telemetry.thereview.dev/pipeline-namespace": ns,
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": port.to_string(),
                "prometheus.io/path": path,
            },
        },
        "spec": {"containers": [{"name": "app", "image": "reviews:1", "ports": [{"containerPort": 8080}]}]},
    }))
    .expect("pod json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_discovery_scrapes_annotated_pods_until_they_are_deleted() {
    let exporter = Exporter::start().await;
    let cluster = telemetry_tests::apiserver().await;
    let ns = cluster.namespace().await;
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    // No controller-manager in this cluster: the `default` service account the admission
    // plugin requires for pods has to be made by hand.
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("sa");
    Api::<ServiceAccount>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &sa)
        .await
        .expect("create default service account");
    for (name, path) in [("reviews-a", "/a"), ("reviews-b", "/b")] {
        pods.create(&PostParams::default(), &annotated_pod(name, &ns.name, exporter.addr.port(), path))
            .await
            .expect("create pod");
        // No kubelet either: set what it would report, pointing the pod at this test's server.
        let status = json!({"status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("patch pod status");
    }

    // The job exactly as operator/src/config.rs renders it (`$$` survives env expansion as `$`).
    let job = format!("telemetry-pipeline/{}/main", ns.name);
    let yaml = operator_job_yaml(&ns.name, "", "");
    let collector = process::Collector::start_with_env(&yaml, &[("KUBECONFIG", cluster.kubeconfig().as_os_str())]);
    let out = collector.path("ours.jsonl");

    let scraped = |pod: &str| {
        let want_pod = pod.to_owned();
        let ns = ns.name.clone();
        move |p: &Point| {
            p.name == "http_requests_total"
                && p.attrs.get("pod") == Some(&want_pod)
                && p.attrs.get("namespace") == Some(&ns)
        }
    };
    let point = wait_for("both pods' series with namespace/pod labels", Duration::from_secs(60), || {
        let pts = points(&out);
        let found =
            pts.iter().find(|p| scraped("reviews-a")(p)).cloned().filter(|_| pts.iter().any(scraped("reviews-b")));
        async move { found }
    })
    .await;
    assert_eq!(point.resource.get("service.name"), Some(&job));
    assert_eq!(point.resource.get("service.instance.id"), Some(&exporter.addr.to_string()), "port from the annotation");
    assert_eq!(point.resource.get("k8s.pod.name").map(String::as_str), Some("reviews-a"));
    assert_eq!(point.resource.get("k8s.namespace.name"), Some(&ns.name));
    assert!(exporter.hits("/a") > 0 && exporter.hits("/b") > 0, "paths from the annotation");
    assert_eq!(exporter.hits("/metrics"), 0, "the container port's default path is never used");

    pods.delete("reviews-a", &DeleteParams::default()).await.expect("delete pod");
    wait_for("the collector to drop the deleted pod's target", Duration::from_secs(30), || {
        let removed = collector.log().contains("scrape target removed");
        async move { removed.then_some(()) }
    })
    .await;
    // Pod b keeps being scraped every second; three more of its scrapes give pod a's loop ample
    // occasions to scrape again if it were still running.
    let (a_after, b_after) = (exporter.hits("/a"), exporter.hits("/b"));
    wait_for("three more scrapes of the remaining pod", Duration::from_secs(30), || {
        let n = exporter.hits("/b");
        async move { (n >= b_after + 3).then_some(()) }
    })
    .await;
    // One request may have been in flight when the target was cancelled.
    assert!(
        exporter.hits("/a") <= a_after + 1,
        "the deleted pod is still scraped: {} → {}",
        a_after,
        exporter.hits("/a")
    );
    let log = collector.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// The pod scrape job the operator renders for pipeline `main` in `ns` (operator/src/config.rs),
/// with `discovery` added to its `kubernetes_sd_configs` entry and `relabel` appended to its
/// `relabel_configs` (as operator/src/scrape.rs adds them), writing what it scrapes to `ours.jsonl`.
fn operator_job_yaml(ns: &str, discovery: &str, relabel: &str) -> String {
    format!(
        r#"
receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: telemetry-pipeline/{ns}/main
          scrape_interval: 1s
          kubernetes_sd_configs:
            - role: pod
              namespaces:
                names: [{ns}]
{discovery}
          relabel_configs:
            - source_labels: [__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline]
              action: keep
              regex: main
            - source_labels: [__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline_namespace]
              action: keep
              regex: {ns}
            - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
              action: keep
              regex: "true"
            - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
              action: replace
              target_label: __metrics_path__
              regex: (.+)
            - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
              action: replace
              regex: ([^:]+)(?::\d+)?;(\d+)
              replacement: $$1:$$2
              target_label: __address__
            - source_labels: [__meta_kubernetes_namespace]
              action: replace
              target_label: namespace
            - source_labels: [__meta_kubernetes_pod_name]
              action: replace
              target_label: pod
{relabel}
exporters:
  file:
    path: {{DIR}}/ours.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [file]
"#
    )
}

/// A namespace of the test API server ready for pods (its `default` service account made by hand:
/// there is no controller-manager).
async fn pod_namespace(cluster: &telemetry_tests::Cluster) -> (String, Api<Pod>) {
    let ns = cluster.namespace().await;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("sa");
    Api::<ServiceAccount>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &sa)
        .await
        .expect("create default service account");
    (ns.name.clone(), Api::namespaced(ns.client.clone(), &ns.name))
}

/// Creates an annotated pod on `node` that reports the IP 127.0.0.1 (what a kubelet would write).
async fn running_pod(pods: &Api<Pod>, ns: &str, name: &str, node: &str, port: u16, path: &str) {
    let mut pod = annotated_pod(name, ns, port, path);
    pod.spec.as_mut().expect("spec").node_name = Some(node.into());
    pods.create(&PostParams::default(), &pod).await.expect("create pod");
    let status = json!({"status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("patch pod status");
}

/// Which pods' series a collector exported (the `pod` label the job sets).
fn scraped_pods(collector: &process::Collector) -> std::collections::BTreeSet<String> {
    points(&collector.path("ours.jsonl"))
        .into_iter()
        .filter(|p| p.name == "http_requests_total")
        .filter_map(|p| p.attrs.get("pod").cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_field_selector_scrapes_only_that_nodes_pods() {
    let exporter = Exporter::start().await;
    let cluster = telemetry_tests::apiserver().await;
    let (ns, pods) = pod_namespace(cluster).await;
    let port = exporter.addr.port();
    running_pod(&pods, &ns, "on-a-1", "node-a", port, "/a1").await;
    running_pod(&pods, &ns, "on-a-2", "node-a", port, "/a2").await;
    running_pod(&pods, &ns, "on-b", "node-b", port, "/b").await;

    // The daemonset agent's discovery: the node name from the downward API, filtered by the API server.
    let discovery = r#"              selectors:
                - role: pod
                  field: spec.nodeName=${env:K8S_NODE_NAME}"#;
    let yaml = operator_job_yaml(&ns, discovery, "");
    let collector = process::Collector::start_with_env(
        &yaml,
        &[("KUBECONFIG", cluster.kubeconfig().as_os_str()), ("K8S_NODE_NAME", "node-a".as_ref())],
    );
    wait_for("both pods of node-a scraped three times", Duration::from_secs(60), || {
        let done = exporter.hits("/a1") >= 3 && exporter.hits("/a2") >= 3;
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(exporter.hits("/b"), 0, "the pod of node-b is never scraped");
    assert_eq!(scraped_pods(&collector), ["on-a-1", "on-a-2"].map(String::from).into());
    // A pod that lands on the node later is discovered through the same filtered watch.
    running_pod(&pods, &ns, "on-a-3", "node-a", port, "/a3").await;
    wait_for("the new pod of node-a scraped", Duration::from_secs(30), || {
        let n = exporter.hits("/a3");
        async move { (n > 0).then_some(()) }
    })
    .await;
    assert_eq!(exporter.hits("/b"), 0);
    let log = collector.log();
    assert!(!log.contains("pod watch failed") && !log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_scrape_each_pod_exactly_once() {
    use telemetry_collector::receiver::prometheus::relabel;
    const SHARDS: u64 = 3;
    let cluster = telemetry_tests::apiserver().await;
    let (ns, pods) = pod_namespace(cluster).await;
    // One exporter per pod, so each target has its own address, the hashed label.
    let mut exporters = Vec::new();
    for i in 0..6 {
        let e = Exporter::start().await;
        running_pod(&pods, &ns, &format!("reviews-{i}"), "node-a", e.addr.port(), "/metrics").await;
        exporters.push(e);
    }
    // What each shard must scrape, from hashmod of the address (checked against upstream's values in
    // collector-config's relabel tests).
    let hashmod = relabel::Rule::compile(
        &serde_yaml::from_str(&format!(
            "{{source_labels: [__address__], action: hashmod, modulus: {SHARDS}, target_label: h}}"
        ))
        .expect("rule"),
    )
    .expect("compiles");
    let mut expected = vec![std::collections::BTreeSet::new(); SHARDS as usize];
    for (i, e) in exporters.iter().enumerate() {
        let mut l = relabel::Labels::from([("__address__".to_string(), e.addr.to_string())]);
        hashmod.apply(&mut l);
        expected[l["h"].parse::<usize>().expect("shard")].insert(format!("reviews-{i}"));
    }

    // The sharded gateway's rules: a StatefulSet pod `main-collector-<ordinal>` keeps the targets
    // whose hash is its ordinal (its name from the downward API).
    let relabel = format!(
        r#"            - source_labels: [__address__]
              action: hashmod
              modulus: {SHARDS}
              target_label: __tmp_shard
            - source_labels: [__tmp_shard]
              action: replace
              replacement: main-collector-$$1
              target_label: __tmp_shard_pod
            - source_labels: [__tmp_shard_pod]
              action: keep
              regex: ${{env:K8S_POD_NAME}}"#
    );
    let yaml = operator_job_yaml(&ns, "", &relabel);
    let collectors: Vec<process::Collector> = (0..SHARDS)
        .map(|i| {
            let pod_name = format!("main-collector-{i}");
            process::Collector::start_with_env(
                &yaml,
                &[("KUBECONFIG", cluster.kubeconfig().as_os_str()), ("K8S_POD_NAME", pod_name.as_ref())],
            )
        })
        .collect();
    wait_for("every pod scraped three times", Duration::from_secs(60), || {
        let done = exporters.iter().all(|e| e.hits("/metrics") >= 3);
        async move { done.then_some(()) }
    })
    .await;
    // Counted at the exporters: over a few seconds at a 1 s interval each target is scraped about
    // once a second, by one collector (three collectors would make it three times as often).
    let before: Vec<u64> = exporters.iter().map(|e| e.hits("/metrics")).collect();
    let window = Duration::from_secs(4);
    tokio::time::sleep(window).await;
    for (i, e) in exporters.iter().enumerate() {
        let n = e.hits("/metrics") - before[i];
        assert!((2..=window.as_secs() + 2).contains(&n), "reviews-{i}: {n} scrapes in {window:?}");
    }
    // Each collector exported exactly its shard's pods: disjoint, and together every pod.
    for (i, c) in collectors.iter().enumerate() {
        assert_eq!(scraped_pods(c), expected[i], "main-collector-{i}");
        let log = c.log();
        assert!(!log.contains("panicked"), "{log}");
    }
    assert_eq!(expected.iter().map(|s| s.len()).sum::<usize>(), 6);
}
