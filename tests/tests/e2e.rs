//! End to end on a real node (`telemetry_tests::node()`), nothing substituted: the chart runs the
//! operator as a pod, the examples run the reviews service and our collector as pods, and an Alloy
//! stand-in pod (the upstream collector receiving OTLP, `tools/node/alloy-standin.yaml`) writes
//! what it receives to a host folder the test reads. Traffic comes from a pod, through the reviews
//! Service's cluster DNS name. A real Prometheus server (Debian's) scrapes the collectors' `:8889`
//! and is queried with PromQL.
//!
//! - [`app_telemetry_reaches_alloy_and_prometheus`]: spans (server + database child, with the
//!   injected and the pipeline's resource attributes), OTLP metrics and the scraped `/metrics`
//!   (with `namespace`/`pod` from pod discovery) arrive at Alloy and in Prometheus; an agent
//!   (DaemonSet) pipeline reports the node's own CPU, memory and root filesystem.
//! - [`a_collector_rollout_loses_no_span`]: the pipeline changes while traffic flows; every span
//!   the service reports as exported arrives exactly once, and what it could not export it counts.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use telemetry_tests::{
    Cluster, dashboard_queries, local_only_example_pipeline, metric_names, node, repo_root, wait_for,
};

/// Generous: pods start in seconds, but a 2-core machine may be compiling meanwhile.
const T: Duration = Duration::from_secs(180);

#[tokio::test]
async fn app_telemetry_reaches_alloy_and_prometheus() {
    let cluster = node().await;
    let client = cluster.client().await;
    install_operator(cluster).await;
    // The examples' exporter names `alloy.monitoring.svc`: the stand-in lives there.
    let alloy = AlloyStandIn::start(cluster, "monitoring").await;

    let ns = "demo";
    cluster.kubectl(&["create", "namespace", ns]);
    apply_file(cluster, ns, "examples/reviews-deployment.yaml");
    let mut pipeline = local_only_example_pipeline(cluster);
    for item in pipeline["items"].as_array_mut().expect("items") {
        if item["kind"] == "TelemetryPipeline" {
            item["spec"]["receivers"]["prometheus"]["scrapeInterval"] = json!("2s");
            item["spec"]["processors"]["batch"]["timeout"] = json!("200ms");
        }
    }
    cluster.kubectl_with_input(&["-n", ns, "apply", "-f", "-"], &pipeline.to_string());
    apply_file(cluster, ns, "examples/instrumented-service.yaml");
    cluster.kubectl_with_input(&["-n", ns, "apply", "-f", "-"], &agent_pipeline("alloy.monitoring.svc").to_string());
    cluster.kubectl(&[
        "-n",
        ns,
        "wait",
        "--for=condition=Ready",
        "telemetrypipeline/main",
        "telemetrypipeline/agent",
        "instrumentedservice/reviews",
        "--timeout=180s",
    ]);
    cluster.kubectl(&["-n", ns, "rollout", "status", "deployment/reviews", "--timeout=180s"]);
    let reviews_pod = only_pod(&client, ns, "app=reviews").await;

    run_traffic(cluster, &client, ns, "traffic", 10, "0").await;

    // At Alloy: traces with the database child, OTLP metrics, scraped /metrics.
    let resource_ok = |resource: &Value| {
        attr(resource, "service.name") == Some("reviews")
            && attr(resource, "service.namespace") == Some("thereview")
            && attr(resource, "k8s.namespace.name") == Some(ns)
            && attr(resource, "k8s.deployment.name") == Some("reviews")
            && attr(resource, "deployment.environment") == Some("demo")
    };
    wait_for("the POST's server span with its database child span at Alloy", T, || async {
        let exported = alloy.received();
        let spans: Vec<(&Value, &Value)> = exported
            .iter()
            .flat_map(|line| resources(line, "resourceSpans"))
            .flat_map(|(resource, rs)| items(rs, "scopeSpans", "spans").map(move |span| (resource, span)))
            .collect();
        spans
            .iter()
            .any(|(resource, server)| {
                resource_ok(resource)
                    && server["name"] == "POST /api/v1/reviews"
                    && spans.iter().any(|(_, child)| child["parentSpanId"] == server["spanId"])
            })
            .then_some(())
    })
    .await;
    wait_for("the app's OTLP metric reviews.created at Alloy", T, || async {
        alloy
            .received()
            .iter()
            .any(|line| {
                resources(line, "resourceMetrics").any(|(resource, rm)| {
                    resource_ok(resource)
                        && items(rm, "scopeMetrics", "metrics").any(|m| m["name"] == "reviews.created")
                })
            })
            .then_some(())
    })
    .await;
    let job = format!("telemetry-pipeline/{ns}/main");
    let reviews_pod_name = reviews_pod.name_any();
    wait_for("the app's /metrics, found by pod discovery and scraped, at Alloy", T, || async {
        alloy
            .received()
            .iter()
            .any(|line| {
                resources(line, "resourceMetrics").any(|(resource, rm)| {
                    attr(resource, "service.name") == Some(job.as_str())
                        && items(rm, "scopeMetrics", "metrics").any(|m| {
                            // examples/pipeline.yaml renames http_requests_total.
                            m["name"] == "reviews_http_requests_total"
                                && data_points(m).any(|p| {
                                    attr(p, "pod") == Some(reviews_pod_name.as_str())
                                        && attr(p, "namespace") == Some(ns)
                                })
                        })
                })
            })
            .then_some(())
    })
    .await;

    // The agent's host metrics are the node's: its memory adds up to this machine's, its
    // filesystem is the node's root as mounted at /hostfs.
    let mem_total = host_mem_total_bytes();
    wait_for("the node's memory, CPU and root filesystem from the agent at Alloy", T, || async {
        let received = alloy.received();
        let metric = |name: &str| -> Vec<Value> {
            received
                .iter()
                .flat_map(|line| resources(line, "resourceMetrics"))
                .flat_map(|(_, rm)| items(rm, "scopeMetrics", "metrics"))
                .filter(|m| m["name"] == name)
                .cloned()
                .collect()
        };
        let memory = metric("system.memory.usage");
        let last_total: f64 = memory.last().map(|m| data_points(m).map(int_value).sum())?;
        let within = (last_total - mem_total).abs() / mem_total < 0.1;
        let root_fs = metric("system.filesystem.usage")
            .iter()
            .any(|m| data_points(m).any(|p| attr(p, "mountpoint") == Some("/")));
        let cpu = !metric("system.cpu.time").is_empty();
        (within && root_fs && cpu).then_some(())
    })
    .await;

    // A real Prometheus server scraping both collectors' :8889, queried with PromQL.
    let main_ip = cluster_ip(&client, ns, "main-collector").await;
    let agent_ip = cluster_ip(&client, ns, "agent-collector").await;
    // :8889 is the prometheus exporter, :8888 the collector's own metrics (the collector dashboard).
    let targets: Vec<String> =
        [&main_ip, &agent_ip].iter().flat_map(|ip| [format!("{ip}:8889"), format!("{ip}:8888")]).collect();
    let prometheus = PrometheusServer::start(&targets);
    let by_pod = prometheus
        .wait_for_result(&format!(r#"sum by (pod, namespace) (reviews_http_requests_total{{namespace="{ns}"}})"#))
        .await;
    assert!(
        by_pod.iter().any(|r| r["metric"]["pod"] == reviews_pod_name.as_str()),
        "Prometheus has the scraped series with the pod label: {by_pod:?}"
    );
    prometheus.wait_for_result(r#"sum(reviews_created_total) > 0"#).await;
    prometheus.wait_for_result(r#"sum by (state) (system_cpu_time_seconds_total)"#).await;
    prometheus.wait_for_result(r#"system_memory_usage_bytes{state="used"}"#).await;

    // Every metric the chart's Grafana dashboards read exists here, after this traffic.
    for query in dashboard_queries(ns) {
        for name in metric_names(&query.expr) {
            eprintln!("dashboard {} / {}: {name}", query.dashboard, query.panel);
            prometheus.wait_for_result(&format!(r#"count({{__name__="{name}"}})"#)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_rollout_loses_no_span() {
    let cluster = node().await;
    let client = cluster.client().await;
    install_operator(cluster).await;
    let ns = "rollout";
    cluster.kubectl(&["create", "namespace", ns]);
    let alloy = AlloyStandIn::start(cluster, ns).await;
    apply_file(cluster, ns, "examples/reviews-deployment.yaml");
    let pipeline = json!({
        "apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "gateway"},
        "spec": {
            "receivers": {"otlp": {}},
            "processors": {"batch": {"timeout": "200ms"}},
            "exporters": {"otlp": [{"name": "alloy", "protocol": "grpc",
                                    "endpoint": format!("http://alloy.{ns}.svc:4317"), "tls": {"insecure": true}}]},
        },
    });
    let isvc = json!({
        "apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": "reviews"},
        "spec": {"pipelineRef": {"name": "gateway"}, "target": {"kind": "Deployment", "name": "reviews"},
                 "sampling": {"sampler": "always_on"}},
    });
    cluster.kubectl_with_input(&["-n", ns, "apply", "-f", "-"], &pipeline.to_string());
    cluster.kubectl_with_input(&["-n", ns, "apply", "-f", "-"], &isvc.to_string());
    cluster.kubectl(&[
        "-n",
        ns,
        "wait",
        "--for=condition=Ready",
        "telemetrypipeline/gateway",
        "instrumentedservice/reviews",
        "--timeout=180s",
    ]);
    cluster.kubectl(&["-n", ns, "rollout", "status", "deployment/reviews", "--timeout=180s"]);
    let first_collector = only_pod(&client, ns, "app.kubernetes.io/instance=gateway").await;

    // Traffic for ~30 s; the collector rolls in the middle of it.
    let traffic = {
        let client = client.clone();
        tokio::spawn(async move { run_traffic(node().await, &client, ns, "traffic", 150, "0.2").await })
    };
    wait_for("the first spans at Alloy", T, || async { (!span_ids(&alloy.received()).is_empty()).then_some(()) }).await;
    cluster.kubectl(&[
        "-n",
        ns,
        "patch",
        "telemetrypipeline/gateway",
        "--type=merge",
        "-p",
        r#"{"spec":{"processors":{"batch":{"timeout":"300ms"}}}}"#,
    ]);
    wait_for("the collector to roll onto a new pod", T, || async {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let list = pods.list(&ListParams::default().labels("app.kubernetes.io/instance=gateway")).await.ok()?;
        let [pod] = list.items.as_slice() else { return None };
        (pod.uid() != first_collector.uid() && is_ready(pod)).then_some(())
    })
    .await;
    traffic.await.expect("traffic task");

    // Sent = what the service counted as exported; it must all be at Alloy, once each.
    let service_ip = cluster_ip(&client, ns, "reviews").await;
    let (exported, failed, dropped, received, duplicates) = wait_for("every exported span at Alloy", T, || async {
        let stats = reviews_export_stats(&service_ip).await?;
        let ids = span_ids(&alloy.received());
        let received = ids.len() as u64;
        let duplicates = ids.values().filter(|&&n| n > 1).count();
        // Traffic is over; wait until the last batch is exported and has arrived.
        (stats.0 > 0 && received >= stats.0).then_some((stats.0, stats.1, stats.2, received, duplicates))
    })
    .await;
    eprintln!(
        "rollout: the service exported {exported} spans (failed {failed}, dropped {dropped}); Alloy received {received}, {duplicates} more than once"
    );
    // What the service was told was delivered arrives, once. Spans it could not export during the
    // roll are not lost silently: the service counts them (failed, or dropped while backing off).
    assert_eq!(received, exported, "every span the service reported as exported arrived");
    assert_eq!(duplicates, 0, "no span arrived twice");
}

/// Scraping on the real node, by collector pods with the chart's RBAC: a gateway with three replicas
/// (a sharded StatefulSet) scrapes a pod of another namespace that it admits, through the discovery
/// role the operator bound there, and each scrape interval yields exactly one sample of the pod's
/// series; an agent (DaemonSet) scrapes its own node's pods and not a pod of another node (a ghost
/// pod bound to a Node object no kubelet runs, carrying a real pod's IP so a wrong scrape would
/// succeed and show).
#[tokio::test(flavor = "multi_thread")]
async fn scraping_is_exactly_once_across_shards_and_node_local_for_agents() {
    let cluster = node().await;
    let client = cluster.client().await;
    install_operator(cluster).await;
    let (obs, shop) = ("shards", "shop");
    cluster.kubectl(&["create", "namespace", shop]);
    let alloy = AlloyStandIn::start(cluster, obs).await;
    let otlp_to_alloy = json!([{"name": "alloy", "protocol": "grpc", "endpoint": format!("http://alloy.{obs}.svc:4317"),
        "tls": {"insecure": true}}]);
    let scraping = |name: &str, extra: Value| {
        let mut spec = json!({"receivers": {"prometheus": {"scrapeInterval": "2s"}},
            "processors": {"batch": {"timeout": "200ms"}}, "exporters": {"otlp": otlp_to_alloy}});
        spec.as_object_mut().expect("spec").extend(extra.as_object().expect("extra").clone());
        json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
            "metadata": {"name": name}, "spec": spec})
    };
    let gateway = scraping("gateway", json!({"replicas": 3, "allowedNamespaces": {"names": [shop]}}));
    let agent = scraping("agent", json!({"mode": "daemonset"}));
    for p in [&gateway, &agent] {
        cluster.kubectl_with_input(&["-n", obs, "apply", "-f", "-"], &p.to_string());
    }
    // The reviews service in the other namespace, attached to the gateway; a second one in the
    // gateway's namespace, attached to the agent.
    let attach = |pipeline_ns: &str, pipeline: &str| {
        json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
            "metadata": {"name": "reviews"}, "spec": {"pipelineRef": {"name": pipeline, "namespace": pipeline_ns},
                "target": {"kind": "Deployment", "name": "reviews"}, "metrics": {"port": 8000}}})
    };
    for (ns, pipeline) in [(shop, "gateway"), (obs, "agent")] {
        apply_file(cluster, ns, "examples/reviews-deployment.yaml");
        cluster.kubectl_with_input(&["-n", ns, "apply", "-f", "-"], &attach(obs, pipeline).to_string());
    }
    for (ns, what) in [
        (obs, "telemetrypipeline/gateway"),
        (obs, "telemetrypipeline/agent"),
        (shop, "instrumentedservice/reviews"),
        (obs, "instrumentedservice/reviews"),
    ] {
        cluster.kubectl(&["-n", ns, "wait", "--for=condition=Ready", what, "--timeout=240s"]);
    }
    for ns in [shop, obs] {
        cluster.kubectl(&["-n", ns, "rollout", "status", "deployment/reviews", "--timeout=180s"]);
    }
    let status = cluster.kubectl(&["-n", obs, "get", "telemetrypipeline/gateway", "-o", "jsonpath={.status.scrape}"]);
    let status: Value = serde_json::from_str(&status).expect("status.scrape");
    assert_eq!(status, json!({"mode": "Sharded", "shards": 3, "namespaces": [obs, shop]}));
    let shop_pod = only_pod(&client, shop, "app=reviews").await;
    let obs_pod = only_pod(&client, obs, "app=reviews").await;

    // The ghost: an agent-labelled pod on another node, with the local reviews pod's IP.
    let ghost_node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ghost-node"}});
    cluster.kubectl_with_input(&["apply", "-f", "-"], &ghost_node.to_string());
    let ghost = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ghost", "labels": {"telemetry.thereview.dev/pipeline": "agent",
            "telemetry.thereview.dev/pipeline-namespace": obs},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8000"}},
        "spec": {"nodeName": "ghost-node", "containers": [{"name": "c", "image": "thereview.dev/reviews-service:0.1.0"}]}});
    cluster.kubectl_with_input(&["-n", obs, "apply", "-f", "-"], &ghost.to_string());
    let ip = obs_pod.status.as_ref().and_then(|s| s.pod_ip.clone()).expect("reviews pod IP");
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}});
    cluster.kubectl(&[
        "-n",
        obs,
        "patch",
        "pod/ghost",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);

    // `up` of each pod, as exported: one data point per scrape, with the target's pod label.
    let up_points = |job: &str, pod: &str| -> Vec<u64> {
        let mut stamps: Vec<u64> = alloy
            .received()
            .iter()
            .flat_map(|line| {
                resources(line, "resourceMetrics").map(|(r, rm)| (r.clone(), rm.clone())).collect::<Vec<_>>()
            })
            .filter(|(resource, _)| attr(resource, "service.name") == Some(job))
            .flat_map(|(_, rm)| {
                items(&rm, "scopeMetrics", "metrics")
                    .filter(|m| m["name"] == "up")
                    .flat_map(|m| data_points(m).filter(|p| attr(p, "pod") == Some(pod)).cloned().collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            })
            .filter_map(|p| p["timeUnixNano"].as_str().and_then(|t| t.parse().ok()))
            .collect();
        stamps.sort_unstable();
        stamps
    };
    let gateway_job = format!("telemetry-pipeline/{obs}/gateway");
    let stamps = wait_for("ten scrapes of the other namespace's pod by the gateway", T, || async {
        let stamps = up_points(&gateway_job, &shop_pod.name_any());
        (stamps.len() >= 10).then_some(stamps)
    })
    .await;
    let gaps: Vec<u64> = stamps.windows(2).map(|w| (w[1] - w[0]) / 1_000_000).collect();
    eprintln!("gateway: {} samples of up{{pod={}}}, gaps in ms: {gaps:?}", stamps.len(), shop_pod.name_any());
    // Three shards all scraping would give three samples per 2 s interval (gaps well under 2 s).
    assert!(gaps.iter().all(|g| *g >= 1500), "one sample per 2 s scrape interval, not more: gaps {gaps:?} ms");

    let agent_job = format!("telemetry-pipeline/{obs}/agent");
    wait_for("ten scrapes of the local pod by the agent", T, || async {
        (up_points(&agent_job, &obs_pod.name_any()).len() >= 10).then_some(())
    })
    .await;
    assert!(up_points(&agent_job, "ghost").is_empty(), "the agent scraped a pod of another node");
    cluster.kubectl(&["-n", obs, "delete", "pod/ghost", "--force", "--grace-period=0"]);
    cluster.kubectl(&["delete", "node/ghost-node"]);
}

// --- the cluster side ----------------------------------------------------------------------------

/// `helm install` of the chart with its default values, once per test binary (its CRDs and
/// cluster roles are cluster-wide), waiting until the operator pod is Available.
async fn install_operator(cluster: &'static Cluster) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        INSTALLED.get_or_init(|| {
            let chart = repo_root().join("charts/telemetry-operator");
            cluster.helm(&[
                "install",
                "telemetry-operator",
                chart.to_str().expect("UTF-8 path"),
                "-n",
                "telemetry-system",
                "--create-namespace",
                "--wait",
                "--timeout",
                "3m",
            ]);
        });
    })
    .await
    .expect("helm install task");
}

fn apply_file(cluster: &Cluster, namespace: &str, file: &str) {
    let path = repo_root().join(file);
    cluster.kubectl(&["-n", namespace, "apply", "-f", path.to_str().expect("UTF-8 path")]);
}

/// A DaemonSet pipeline reporting the node's host metrics to Alloy and on :8889.
fn agent_pipeline(alloy_host: &str) -> Value {
    json!({
        "apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "agent"},
        "spec": {
            "mode": "daemonset",
            "receivers": {"otlp": {"enabled": false},
                          "hostMetrics": {"collectionInterval": "2s", "scrapers": ["cpu", "memory", "filesystem"]}},
            "exporters": {"otlp": [{"name": "alloy", "protocol": "grpc", "endpoint": format!("http://{alloy_host}:4317"),
                                    "tls": {"insecure": true}}],
                          "prometheus": {}},
        },
    })
}

/// Runs a busybox pod sending `rounds` × (one POST, one GET) to the reviews Service by its DNS
/// name, `pause` seconds apart, and waits until it has succeeded.
///
/// Starts once the Deployment's rollout has fully settled (one Ready pod, the replaced one gone:
/// `rollout status` returns while the old pod is still terminating, and a node whose kube-proxy
/// still routes to it answers "No route to host"), and once the Service answers from inside the
/// pod network (bounded); from then on every request must succeed.
async fn run_traffic(cluster: &Cluster, client: &Client, ns: &str, name: &str, rounds: u32, pause: &str) {
    only_pod(client, ns, "app=reviews").await;
    let body = r#"{\"entity_type\":\"product\",\"entity_id\":\"p-$i\",\"rating\":5,\"title\":\"great\",\"comment\":\"works\",\"author\":\"e2e\"}"#;
    let service = format!("http://reviews.{ns}.svc.cluster.local:8000");
    let base = format!("{service}/api/v1/reviews");
    let script = format!(
        "n=0; until wget -q -O /dev/null {service}/ready; do \
           n=$((n+1)); [ $n -ge 120 ] && {{ echo 'the Service never answered /ready'; exit 1; }}; sleep 0.5; \
         done; \
         for i in $(seq 1 {rounds}); do \
           wget -q -O /dev/null --header content-type:application/json --post-data \"{body}\" {base} \
             || {{ echo \"POST of round $i failed\"; exit 1; }}; \
           wget -q -O /dev/null {base} || {{ echo \"GET of round $i failed\"; exit 1; }}; sleep {pause}; \
         done"
    );
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "traffic", "image": "localhost/thereview/busybox:1.35", "imagePullPolicy": "Never",
                "command": ["sh", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    });
    cluster.kubectl_with_input(&["-n", ns, "apply", "-f", "-"], &pod.to_string());
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let phase = wait_for("the traffic pod to finish", T, || async {
        let phase = pods.get(name).await.ok()?.status?.phase?;
        (phase == "Succeeded" || phase == "Failed").then_some(phase)
    })
    .await;
    assert_eq!(
        phase,
        "Succeeded",
        "every request of the traffic pod succeeded: {}\n{}\n{}",
        cluster.kubectl(&["-n", ns, "logs", name]),
        cluster.kubectl(&["-n", ns, "get", "pods,endpointslices", "-o", "wide"]),
        cluster.kubectl(&["-n", ns, "get", "events", "--sort-by=.lastTimestamp"])
    );
}

async fn only_pod(client: &Client, ns: &str, selector: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("one Ready pod {selector}"), T, || async {
        let list = pods.list(&ListParams::default().labels(selector)).await.ok()?;
        let [pod] = list.items.as_slice() else { return None };
        is_ready(pod).then(|| pod.clone())
    })
    .await
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn cluster_ip(client: &Client, ns: &str, service: &str) -> String {
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("Service {service}"), T, || async { services.get(service).await.ok()?.spec?.cluster_ip }).await
}

/// The reviews service's own span export counters from its `/metrics` (through its Service IP,
/// which the host reaches over the node): (exported, failed, dropped).
async fn reviews_export_stats(service_ip: &str) -> Option<(u64, u64, u64)> {
    let text = reqwest::get(format!("http://{service_ip}:8000/metrics")).await.ok()?.text().await.ok()?;
    let value = |name: &str| {
        text.lines().find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok()).map(|v| v as u64)
    };
    Some((
        value("telemetry_spans_exported_total")?,
        value("telemetry_spans_export_failed_total")?,
        value("telemetry_spans_dropped_total")?,
    ))
}

fn host_mem_total_bytes() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal");
    kib * 1024.0
}

// --- the Alloy stand-in and Prometheus ------------------------------------------------------------

/// The Alloy stand-in pod of `tools/node/alloy-standin.yaml`, writing into a host folder.
struct AlloyStandIn {
    _dir: tempfile::TempDir,
    out: PathBuf,
}

impl AlloyStandIn {
    async fn start(cluster: &Cluster, ns: &str) -> AlloyStandIn {
        let dir = tempfile::tempdir().expect("temp dir");
        // The stand-in runs as a non-root user and writes here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let manifest = std::fs::read_to_string(repo_root().join("tools/node/alloy-standin.yaml")).expect("manifest");
        let manifest = manifest.replace("@OUT_DIR@", dir.path().to_str().expect("UTF-8 path"));
        if cluster.kubectl(&["get", "namespace", ns, "--ignore-not-found"]).is_empty() {
            cluster.kubectl(&["create", "namespace", ns]);
        }
        cluster.kubectl_with_input(&["-n", ns, "apply", "-f", "-"], &manifest);
        cluster.kubectl(&["-n", ns, "rollout", "status", "deployment/alloy", "--timeout=180s"]);
        let out = dir.path().join("alloy.jsonl");
        AlloyStandIn { _dir: dir, out }
    }

    /// Every request received so far, one OTLP JSON document per line.
    fn received(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }
}

/// Span ids received, with how many times each arrived.
fn span_ids(received: &[Value]) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for (_, rs) in received.iter().flat_map(|line| resources(line, "resourceSpans")) {
        for span in items(rs, "scopeSpans", "spans") {
            let id = format!("{}/{}", span["traceId"].as_str().unwrap_or(""), span["spanId"].as_str().unwrap_or(""));
            *ids.entry(id).or_insert(0) += 1;
        }
    }
    ids
}

/// Debian's Prometheus server on loopback, scraping the given targets every second.
struct PrometheusServer {
    _dir: tempfile::TempDir,
    child: Child,
    url: String,
}

impl PrometheusServer {
    fn start(targets: &[String]) -> PrometheusServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: collectors\n    static_configs: [{{targets: [{}]}}]\n",
                targets.join(", ")
            ),
        )
        .expect("write prometheus.yml");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package `prometheus`) starts");
        PrometheusServer { _dir: dir, child, url: format!("http://127.0.0.1:{port}") }
    }

    /// Waits until the PromQL `query` has a non-empty result, and returns it.
    async fn wait_for_result(&self, query: &str) -> Vec<Value> {
        let http = reqwest::Client::new();
        wait_for(&format!("a Prometheus result for {query}"), T, || async {
            let response =
                http.get(format!("{}/api/v1/query", self.url)).query(&[("query", query)]).send().await.ok()?;
            let body: Value = serde_json::from_str(&response.text().await.ok()?).ok()?;
            assert_ne!(body["status"], "error", "PromQL {query} is valid: {body}");
            let result = body["data"]["result"].as_array()?.clone();
            (!result.is_empty()).then_some(result)
        })
        .await
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- OTLP JSON (the file exporter's output) -----------------------------------------------------

/// `(resource, resource-level object)` pairs of one exported request.
fn resources<'a>(line: &'a Value, key: &str) -> impl Iterator<Item = (&'a Value, &'a Value)> {
    line[key].as_array().into_iter().flatten().map(|r| (&r["resource"], r))
}

/// Items (spans or metrics) under every scope of a resource-level object.
fn items<'a>(resource: &'a Value, scopes: &str, key: &'a str) -> impl Iterator<Item = &'a Value> {
    resource[scopes].as_array().into_iter().flatten().flat_map(move |s| s[key].as_array().into_iter().flatten())
}

/// The data points of a sum or gauge metric.
fn data_points(metric: &Value) -> impl Iterator<Item = &Value> {
    let points = if metric["sum"].is_object() { &metric["sum"]["dataPoints"] } else { &metric["gauge"]["dataPoints"] };
    points.as_array().into_iter().flatten()
}

fn int_value(point: &Value) -> f64 {
    point["asInt"].as_str().and_then(|v| v.parse().ok()).or_else(|| point["asDouble"].as_f64()).unwrap_or(0.0)
}

/// A string attribute of a resource or data point.
fn attr<'a>(holder: &'a Value, key: &str) -> Option<&'a str> {
    holder["attributes"].as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}
