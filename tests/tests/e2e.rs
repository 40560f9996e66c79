//! End to end, the way a platform team uses the stack, on a real kube-apiserver:
//!
//! 1. a `TelemetryPipeline` and an `InstrumentedService` are applied and the operator (in-process)
//!    renders the collector's config and wires the reviews Deployment;
//! 2. our collector runs the rendered config as-is, and the reviews service runs with exactly the
//!    environment the operator injected into the pod template;
//! 3. a Pod is created from the wired template, as the ReplicaSet controller and kubelet would
//!    (there are none here): its IP is the loopback address, where the service listens;
//! 4. requests to the service must reach "Grafana Alloy" — the upstream OpenTelemetry Collector
//!    receiving OTLP and writing what it gets to a file — as traces and OTLP metrics carrying the
//!    injected resource attributes and the pipeline's own, and as the service's `/metrics`,
//!    found through pod discovery and scraped by the pipeline.
//!
//! The one substitution is name resolution: the injected endpoint is the collector Service's
//! cluster DNS name, which is asserted and then pointed at the local collector's port.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use telemetry_operator::context::Config;
use telemetry_operator::metrics::Metrics;
use telemetry_operator::resources::CONFIG_KEY;
use telemetry_tests::{apiserver, tool, wait_for};

/// Generous: a cold 2-core machine may be compiling while this runs.
const T: Duration = Duration::from_secs(60);

#[tokio::test]
async fn app_telemetry_reaches_alloy_through_the_operator_wired_pipeline() {
    let cluster = apiserver().await;
    let ns = cluster.namespace().await;
    let (client, namespace) = (ns.client.clone(), ns.name.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let [grpc, http, alloy_port, app_port] = free_ports();

    // "Grafana Alloy": the upstream collector, OTLP in, everything it receives to a file.
    let alloy_out = dir.path().join("alloy.jsonl");
    let alloy_config = dir.path().join("alloy.yaml");
    std::fs::write(&alloy_config, alloy_config_yaml(alloy_port, &alloy_out)).expect("write alloy config");
    let mut procs = Processes::default();
    procs.spawn("alloy (otelcol)", dir.path(), Command::new(tool("otelcol")).arg("--config").arg(&alloy_config));

    // The operator, the pipeline, the app's Deployment and its InstrumentedService.
    install_crds(&client).await;
    let operator = tokio::spawn(telemetry_operator::run_controllers(
        client.clone(),
        Config { namespace: Some(namespace.clone()), ..Config::default() },
        Metrics::default(),
    ));
    let _abort_operator = AbortOnDrop(operator);
    apply(&client, &namespace, &pipeline(grpc, http, alloy_port)).await;
    apply(&client, &namespace, &reviews_deployment(app_port)).await;
    apply(&client, &namespace, &instrumented_service(app_port)).await;
    wait_ready(&client, &namespace, "InstrumentedService", "reviews").await;

    // The collector runs the config the operator rendered, untouched.
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let rendered = wait_for("the rendered collector ConfigMap", T, || async {
        configs.get("main-collector").await.ok()?.data?.get(CONFIG_KEY).cloned()
    })
    .await;
    let collector_config = dir.path().join("collector.yaml");
    std::fs::write(&collector_config, rendered).expect("write collector config");
    procs.spawn(
        "collector",
        dir.path(),
        Command::new(workspace_binary("telemetry-collector"))
            .arg("--config")
            .arg(&collector_config)
            .env("KUBECONFIG", cluster.kubeconfig()),
    );

    // The app runs with the environment the operator injected.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let wired = deployments.get("reviews").await.expect("reviews Deployment");
    let template = wired.spec.expect("spec").template;
    let env = injected_env(&template);
    assert_eq!(env.get("ENABLE_TELEMETRY").map(String::as_str), Some("true"));
    let injected_endpoint = format!("http://main-collector.{namespace}.svc:{grpc}");
    assert_eq!(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"), Some(&injected_endpoint));
    let mut app = Command::new(workspace_binary("reviews-service"));
    app.envs(&env)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{grpc}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        .env("LISTEN_ADDR", format!("127.0.0.1:{app_port}"))
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("reviews.db").display()));
    procs.spawn("reviews-service", dir.path(), &mut app);

    // The Pod the ReplicaSet controller would create from the wired template, "running" on loopback
    // (and the namespace's default ServiceAccount, which admission requires and a controller would make).
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let default_account = serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("account");
    accounts.create(&PostParams::default(), &default_account).await.expect("default ServiceAccount");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut pod: Pod = serde_json::from_value(json!({"metadata": {"name": "reviews-0"}})).expect("pod");
    pod.metadata.labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
    pod.metadata.annotations = template.metadata.as_ref().and_then(|m| m.annotations.clone());
    pod.spec = template.spec.clone();
    pods.create(&PostParams::default(), &pod).await.expect("create pod");
    let status = json!({"status": {
        "phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
        "conditions": [{"type": "Ready", "status": "True"}],
    }});
    pods.patch_status("reviews-0", &PatchParams::default(), &Patch::Merge(&status)).await.expect("pod status");

    // Traffic: one review created, then read back.
    let http_client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{app_port}");
    wait_for("the reviews service to create a review", T, || async {
        let body = r#"{"entity_type":"product","entity_id":"p-1","rating":5,"title":"great","comment":"works","author":"e2e"}"#;
        let response = http_client
            .post(format!("{base}/api/v1/reviews"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .ok()?;
        (response.status() == 201).then_some(())
    })
    .await;
    let listed = http_client.get(format!("{base}/api/v1/reviews")).send().await.expect("GET reviews");
    assert_eq!(listed.status(), 200);

    // Everything arrives at Alloy.
    let resource_ok = |resource: &Value| {
        attr(resource, "service.name") == Some("reviews")
            && attr(resource, "service.namespace") == Some("thereview")
            && attr(resource, "k8s.namespace.name") == Some(namespace.as_str())
            && attr(resource, "deployment.environment") == Some("e2e")
    };
    let exported = || std::fs::read_to_string(&alloy_out).unwrap_or_default();
    wait_for("the POST's server span at Alloy, with injected and pipeline resource attributes", T, || async {
        lines(&exported())
            .iter()
            .any(|l| {
                resources(l, "resourceSpans").any(|(resource, rs)| {
                    resource_ok(resource)
                        && items(rs, "scopeSpans", "spans").any(|s| s["name"] == "POST /api/v1/reviews")
                })
            })
            .then_some(())
    })
    .await;
    wait_for("the app's OTLP metric reviews.created at Alloy", T, || async {
        lines(&exported())
            .iter()
            .any(|l| {
                resources(l, "resourceMetrics").any(|(resource, rm)| {
                    resource_ok(resource)
                        && items(rm, "scopeMetrics", "metrics").any(|m| m["name"] == "reviews.created")
                })
            })
            .then_some(())
    })
    .await;
    let job = format!("telemetry-pipeline/{namespace}/main");
    wait_for("the app's /metrics, discovered through its Pod and scraped by the pipeline, at Alloy", T, || async {
        lines(&exported())
            .iter()
            .any(|l| {
                resources(l, "resourceMetrics").any(|(resource, rm)| {
                    attr(resource, "service.name") == Some(job.as_str())
                        && attr(resource, "deployment.environment") == Some("e2e")
                        && items(rm, "scopeMetrics", "metrics").any(|m| {
                            m["name"] == "http_requests_total"
                                && m["sum"]["dataPoints"].as_array().into_iter().flatten().any(|p| {
                                    attr(p, "pod") == Some("reviews-0")
                                        && attr(p, "namespace") == Some(namespace.as_str())
                                })
                        })
                })
            })
            .then_some(())
    })
    .await;
    drop(procs);
}

// --- the objects a user applies -------------------------------------------------------------

fn pipeline(grpc: u16, http: u16, alloy: u16) -> Value {
    json!({
        "apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "main"},
        "spec": {
            "receivers": {"otlp": {"grpcPort": grpc, "httpPort": http}, "prometheus": {"scrapeInterval": "1s"}},
            "processors": {"batch": {"timeout": "200ms"}, "resourceAttributes": {"deployment.environment": "e2e"}},
            "exporters": {"otlp": [{"name": "alloy", "protocol": "grpc", "endpoint": format!("http://127.0.0.1:{alloy}"),
                                    "tls": {"insecure": true}}]},
        },
    })
}

fn reviews_deployment(port: u16) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "reviews"},
        "spec": {
            "selector": {"matchLabels": {"app": "reviews"}},
            "template": {
                "metadata": {"labels": {"app": "reviews"}},
                "spec": {"containers": [{"name": "reviews", "image": "reviews-service:e2e",
                                         "ports": [{"name": "http", "containerPort": port}]}]},
            },
        },
    })
}

fn instrumented_service(port: u16) -> Value {
    json!({
        "apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": "reviews"},
        "spec": {
            "pipelineRef": {"name": "main"},
            "target": {"kind": "Deployment", "name": "reviews"},
            "resourceAttributes": {"service.namespace": "thereview"},
            "metrics": {"port": port, "path": "/metrics"},
        },
    })
}

fn alloy_config_yaml(port: u16, out: &Path) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{port}\n\
         exporters:\n  file:\n    path: {out}\n    flush_interval: 100ms\n\
         service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n\
         \x20   traces: {{receivers: [otlp], exporters: [file]}}\n\
         \x20   metrics: {{receivers: [otlp], exporters: [file]}}\n",
        out = out.display()
    )
}

// --- cluster helpers ------------------------------------------------------------------------

async fn install_crds(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in telemetry_operator::crdgen::crds() {
        let name = crd.metadata.name.clone().expect("CRD name");
        api.patch(&name, &PatchParams::apply("e2e").force(), &Patch::Apply(&crd)).await.expect("install CRD");
        wait_for(&format!("CRD {name} Established"), T, || async {
            let crd = api.get(&name).await.ok()?;
            crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
        })
        .await;
    }
}

fn dynamic_api(client: &kube::Client, namespace: &str, doc: &Value) -> Api<DynamicObject> {
    let (group, version) = doc["apiVersion"].as_str().expect("apiVersion").rsplit_once('/').unwrap_or(("", "v1"));
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().expect("kind"));
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

async fn apply(client: &kube::Client, namespace: &str, doc: &Value) {
    let name = doc["metadata"]["name"].as_str().expect("name");
    dynamic_api(client, namespace, doc)
        .patch(name, &PatchParams::apply("e2e-user"), &Patch::Apply(doc))
        .await
        .unwrap_or_else(|e| panic!("apply {} {name}: {e}", doc["kind"]));
}

async fn wait_ready(client: &kube::Client, namespace: &str, kind: &str, name: &str) {
    let doc = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": kind});
    let api = dynamic_api(client, namespace, &doc);
    wait_for(&format!("{kind} {name} Ready"), T, || async {
        let obj = api.get(name).await.ok()?;
        let conditions = obj.data["status"]["conditions"].as_array()?.clone();
        conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True").then_some(())
    })
    .await;
}

/// The plain `name=value` variables of the template's first container.
fn injected_env(template: &k8s_openapi::api::core::v1::PodTemplateSpec) -> BTreeMap<String, String> {
    let container = &template.spec.as_ref().expect("pod spec").containers[0];
    container.env.iter().flatten().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect()
}

// --- OTLP JSON (the file exporter's output) ---------------------------------------------------

fn lines(text: &str) -> Vec<Value> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// `(resource, resource-level object)` pairs of one exported request.
fn resources<'a>(line: &'a Value, key: &str) -> impl Iterator<Item = (&'a Value, &'a Value)> {
    line[key].as_array().into_iter().flatten().map(|r| (&r["resource"], r))
}

/// Items (spans or metrics) under every scope of a resource-level object.
fn items<'a>(resource: &'a Value, scopes: &str, key: &'a str) -> impl Iterator<Item = &'a Value> {
    resource[scopes].as_array().into_iter().flatten().flat_map(move |s| s[key].as_array().into_iter().flatten())
}

/// A string attribute of a resource or data point.
fn attr<'a>(holder: &'a Value, key: &str) -> Option<&'a str> {
    holder["attributes"].as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

// --- processes ------------------------------------------------------------------------------

/// Child processes killed when the test ends, however it ends; their output goes to files in the
/// test's directory and the tail is printed when a child is still running at a failure.
#[derive(Default)]
struct Processes(Vec<(String, PathBuf, Child)>);

impl Processes {
    fn spawn(&mut self, name: &str, dir: &Path, command: &mut Command) {
        let log = dir.join(format!("{}.log", name.replace([' ', '(', ')'], "_")));
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.0.push((name.to_string(), log, child));
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (name, log, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                let text = std::fs::read_to_string(log.as_path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                eprintln!("--- last lines of {name} ---");
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn free_ports<const N: usize>() -> [u16; N] {
    // Hold all listeners until every port is chosen, so the N ports differ.
    let listeners: Vec<_> = (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("addr").port())
}

/// A binary of this workspace, built now if needed (cargo is not holding the build directory
/// while tests run), so the test never runs a stale collector or service.
fn workspace_binary(name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--bin", name])
        .current_dir(telemetry_tests::repo_root())
        .status()
        .expect("run cargo");
    assert!(status.success(), "building {name} failed");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/<name>
    let exe = std::env::current_exe().expect("test executable");
    exe.parent().and_then(Path::parent).expect("target profile dir").join(name)
}
