//! Our programs as real pods on a real node (`telemetry_tests::node()`: containerd, runc, kubelet,
//! kube-proxy, CNI bridge, CoreDNS), installed the way users install them: `helm install` of the
//! chart with its default values, `kubectl apply` of `examples/`.
//!
//! One story per test, because the chart's CRDs and cluster roles are cluster-wide: the operator
//! runs as a pod from the image `tools/images.sh` built, holds its Lease and answers `/readyz`; the
//! examples become a Ready collector pod behind a Service that another pod reaches by its DNS
//! name; a pipeline change (queues on an emptyDir) rolls the collector; every pod passes Pod
//! Security `restricted`; a missing image shows on the pipeline; `helm uninstall` (its pre-delete
//! hook runs the operator image) takes the injection back and leaves nothing of ours behind; then a
//! namespaced install (`--set watchNamespace`) runs the examples under Roles only.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::Value;
use telemetry_tests::{Cluster, local_only_example_pipeline, node, repo_root, wait_for};

/// Generous: pods start in seconds, but a 2-core machine may be compiling meanwhile.
const T: Duration = Duration::from_secs(120);
const OPERATOR_NAMESPACE: &str = "telemetry-system";
const DEMO: &str = "demo";
/// Namespace of the namespaced (watchNamespace) install.
const TENANT: &str = "tenant";

#[tokio::test]
async fn the_chart_and_the_examples_run_as_real_pods() {
    let cluster = node().await;
    let client = cluster.client().await;

    // The chart's namespace enforces Pod Security `restricted`, so the operator pod must pass it.
    cluster.kubectl(&["create", "namespace", OPERATOR_NAMESPACE]);
    enforce_restricted(cluster, OPERATOR_NAMESPACE);
    let chart = repo_root().join("charts/telemetry-operator");
    cluster.helm(&[
        "install",
        "telemetry-operator",
        path(&chart),
        "-n",
        OPERATOR_NAMESPACE,
        // The tenant policy admits the image the missing-image check names (a repository
        // that exists nowhere); the default collector image stays allowed.
        "--set",
        "tenantPolicy.allowedCollectorImages[0]=localhost/thereview/does-not-exist",
        "--wait",
        "--timeout",
        "3m",
    ]);
    operator_runs_as_a_real_pod(&client).await;

    // The examples, in a namespace that also enforces `restricted`.
    cluster.kubectl(&["create", "namespace", DEMO]);
    enforce_restricted(cluster, DEMO);
    let examples = repo_root().join("examples");
    cluster.kubectl(&["-n", DEMO, "apply", "-f", path(&examples.join("reviews-deployment.yaml"))]);
    let unwired_template = pod_template_of_reviews(&client).await;
    let pipeline = local_only_example_pipeline(cluster);
    cluster.kubectl_with_input(&["-n", DEMO, "apply", "-f", "-"], &pipeline.to_string());
    cluster.kubectl(&["-n", DEMO, "apply", "-f", path(&examples.join("instrumented-service.yaml"))]);
    cluster.kubectl(&["-n", DEMO, "wait", "--for=condition=Ready", "telemetrypipeline/main", "--timeout=180s"]);
    let first = ready_collector_pod(&client, "main", None).await;
    collector_service_answers_another_pod_by_dns_name(cluster, &client).await;
    let reviews: Api<Deployment> = Api::namespaced(client.clone(), DEMO);
    wait_for("the wired reviews Deployment to be Available", T, || async {
        let status = reviews.get("reviews").await.ok()?.status?;
        (status.available_replicas == Some(1) && status.updated_replicas == Some(1)).then_some(())
    })
    .await;

    // A pipeline change renders a new config and rolls the collector onto it: here, queues on disk
    // (an emptyDir the non-root collector must be able to write, in a `restricted` namespace; the
    // batch processor goes, as it would acknowledge before the queue).
    cluster.kubectl(&[
        "-n",
        DEMO,
        "patch",
        "telemetrypipeline/main",
        "--type=merge",
        "-p",
        r#"{"spec":{"persistence":{"size":"64Mi"},"processors":{"batch":null,"resourceAttributes":{"rollout.check":"second"}}}}"#,
    ]);
    let second = ready_collector_pod(&client, "main", Some(&first)).await;
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), DEMO);
    let rendered = configs.get("main-collector").await.expect("ConfigMap").data.expect("data");
    assert!(
        rendered.values().any(|config| config.contains("rollout.check") && config.contains("storage: file_storage")),
        "the ConfigMap carries the new attribute and the persistent queue"
    );
    let queue_volume =
        second.spec.as_ref().and_then(|s| s.volumes.as_ref()).and_then(|v| v.iter().find(|v| v.name == "queue"));
    assert!(
        queue_volume.and_then(|v| v.empty_dir.as_ref()).is_some(),
        "the Ready collector writes its queue to an emptyDir"
    );
    let pipeline_hash = pipeline_status(&client, DEMO, "main").await["configHash"].as_str().map(str::to_owned);
    assert_eq!(
        second.annotations().get("telemetry.thereview.dev/config-hash").cloned(),
        pipeline_hash,
        "the new pod runs the config the pipeline reports"
    );

    missing_image_shows_on_the_pipeline(cluster, &client).await;
    uninstall_leaves_nothing_behind(cluster, &client).await;
    assert_eq!(
        pod_template_of_reviews(&client).await,
        unwired_template,
        "helm uninstall took the injection back: the reviews pod template is as it was before"
    );

    a_namespaced_install_works_in_its_namespace_with_roles_only(cluster, &client).await;
}

/// `helm install --set watchNamespace=...` into the namespace it watches (as a namespace admin would,
/// but for the CRDs): no cluster-wide RBAC of the release, the operator pod runs under its Role, and
/// the examples' collector discovers and scrapes the reviews pod through the chart's discovery Role,
/// which the operator bound.
async fn a_namespaced_install_works_in_its_namespace_with_roles_only(cluster: &Cluster, client: &Client) {
    cluster.kubectl(&["create", "namespace", TENANT]);
    enforce_restricted(cluster, TENANT);
    let chart = repo_root().join("charts/telemetry-operator");
    let watch = format!("watchNamespace={TENANT}");
    cluster.helm(&[
        "install",
        "telemetry-operator",
        path(&chart),
        "-n",
        TENANT,
        "--set",
        &watch,
        "--wait",
        "--timeout",
        "3m",
    ]);
    let ours = ListParams::default().labels("app.kubernetes.io/instance=telemetry-operator");
    assert!(Api::<ClusterRole>::all(client.clone()).list(&ours).await.expect("list").items.is_empty());
    assert!(Api::<ClusterRoleBinding>::all(client.clone()).list(&ours).await.expect("list").items.is_empty());

    let examples = repo_root().join("examples");
    cluster.kubectl(&["-n", TENANT, "apply", "-f", path(&examples.join("reviews-deployment.yaml"))]);
    let mut pipeline = local_only_example_pipeline(cluster);
    for item in pipeline["items"].as_array_mut().expect("items") {
        if item["kind"] == "TelemetryPipeline" {
            item["spec"]["receivers"]["prometheus"]["scrapeInterval"] = Value::from("2s");
        }
    }
    cluster.kubectl_with_input(&["-n", TENANT, "apply", "-f", "-"], &pipeline.to_string());
    cluster.kubectl(&["-n", TENANT, "apply", "-f", path(&examples.join("instrumented-service.yaml"))]);
    for what in ["telemetrypipeline/main", "instrumentedservice/reviews"] {
        cluster.kubectl(&["-n", TENANT, "wait", "--for=condition=Ready", what, "--timeout=180s"]);
    }
    cluster.kubectl(&["-n", TENANT, "rollout", "status", "deployment/reviews", "--timeout=180s"]);
    let binding = cluster.kubectl(&[
        "-n",
        TENANT,
        "get",
        "rolebinding/main-collector",
        "-o",
        "jsonpath={.roleRef.kind}/{.roleRef.name}",
    ]);
    assert_eq!(binding, "Role/telemetry-operator-collector-discovery");

    // The collector pod found the reviews pod (pod discovery under the bound Role) and scraped it.
    let pods: Api<Pod> = Api::namespaced(client.clone(), TENANT);
    let reviews = wait_for("the wired reviews pod", T, || async {
        let list = pods.list(&ListParams::default().labels("app=reviews")).await.ok()?;
        list.items.into_iter().find(|p| is_ready(p) && p.labels().contains_key("telemetry.thereview.dev/pipeline"))
    })
    .await;
    let collector = wait_for("a Ready collector pod", T, || async {
        let list = pods.list(&ListParams::default().labels("app.kubernetes.io/instance=main")).await.ok()?;
        list.items.into_iter().find(is_ready)
    })
    .await;
    let ip = collector.status.and_then(|s| s.pod_ip).expect("collector IP");
    let pod_label = format!("pod=\"{}\"", reviews.name_any());
    wait_for("the reviews pod's `up` of 1 at the collector's :8889", T, || async {
        let text = reqwest::get(format!("http://{ip}:8889/metrics")).await.ok()?.text().await.ok()?;
        text.lines()
            .any(|l| l.starts_with("up{") && l.contains(&pod_label) && l.split_whitespace().nth(1) == Some("1"))
            .then_some(())
    })
    .await;

    cluster.helm(&["uninstall", "telemetry-operator", "-n", TENANT, "--wait", "--timeout", "3m"]);
    wait_for("no collector pod in the tenant namespace", T, || async {
        let list = pods.list(&ListParams::default().labels("app.kubernetes.io/component=collector")).await.ok()?;
        list.items.is_empty().then_some(())
    })
    .await;
}

async fn operator_runs_as_a_real_pod(client: &Client) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let pod = wait_for("a Ready operator pod", T, || async {
        let list = pods.list(&ListParams::default().labels("app.kubernetes.io/name=telemetry-operator")).await.ok()?;
        list.items.into_iter().find(is_ready)
    })
    .await;
    let status = pod.status.clone().expect("status");
    let container = &status.container_statuses.expect("container statuses")[0];
    let id = container.container_id.clone().unwrap_or_default();
    assert!(id.starts_with("containerd://"), "the operator runs in a containerd container, got {id:?}");
    assert_eq!(container.restart_count, 0, "the operator container has not restarted");

    // The host reaches the pod's IP through the node: /readyz of the real process answers.
    let ip = status.pod_ip.expect("pod IP");
    let readyz = reqwest::get(format!("http://{ip}:8080/readyz")).await.expect("GET /readyz");
    assert!(readyz.status().is_success(), "/readyz answered {}", readyz.status());

    let leases: Api<Lease> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let pod_name = pod.name_any();
    wait_for("the operator pod to hold the Lease", T, || async {
        let list = leases.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|lease| lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(pod_name.as_str()))
            .then_some(())
    })
    .await;
}

/// Waits for the pipeline's single collector pod to be Ready and, after a change, to be a pod
/// other than `previous`, with `previous` gone.
async fn ready_collector_pod(client: &Client, pipeline: &str, previous: Option<&Pod>) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), DEMO);
    let selector = format!("app.kubernetes.io/instance={pipeline}");
    wait_for("one Ready collector pod (the rollout finished)", T, || async {
        let list = pods.list(&ListParams::default().labels(&selector)).await.ok()?;
        let live: Vec<Pod> = list.items.into_iter().filter(|pod| pod.metadata.deletion_timestamp.is_none()).collect();
        let [pod] = live.as_slice() else { return None };
        let replaced = previous.is_none_or(|old| old.uid() != pod.uid());
        (replaced && is_ready(pod)).then(|| pod.clone())
    })
    .await
}

async fn collector_service_answers_another_pod_by_dns_name(cluster: &Cluster, client: &Client) {
    let url = format!("http://main-collector.{DEMO}.svc.cluster.local:8888/metrics");
    let logs = run_busybox(cluster, client, "dns-probe", &format!("wget -qO- {url} | grep -c '^otelcol_'")).await;
    let series: u32 = logs.trim().parse().unwrap_or(0);
    assert!(series > 0, "the collector's self-metrics came back through the Service's DNS name: {logs}");
}

async fn missing_image_shows_on_the_pipeline(cluster: &Cluster, client: &Client) {
    cluster.kubectl_with_input(
        &["-n", DEMO, "apply", "-f", "-"],
        r#"apiVersion: telemetry.thereview.dev/v1alpha1
kind: TelemetryPipeline
metadata: {name: broken}
spec:
  image: localhost/thereview/does-not-exist:0.0.0
  exporters:
    debug: {}
"#,
    );
    let message = wait_for("the pipeline to report the pod's image error", T, || async {
        let status = pipeline_status(client, DEMO, "broken").await;
        let conditions = status["conditions"].as_array()?.clone();
        conditions.iter().find_map(|condition| {
            let text = format!("{} {}", condition["reason"], condition["message"]);
            let image_error =
                ["ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull"].iter().any(|r| text.contains(r));
            (image_error && condition["status"] == "True" && condition["type"] == "Degraded").then_some(text)
        })
    })
    .await;
    assert!(message.contains("does-not-exist") || message.contains("broken"), "names the image or pod: {message}");
    let ready = pipeline_status(client, DEMO, "broken").await["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned());
    assert_eq!(ready.map(|c| c["status"].clone()), Some(Value::from("False")), "a pipeline without pods is not Ready");
}

async fn uninstall_leaves_nothing_behind(cluster: &Cluster, client: &Client) {
    // With the pipelines and the InstrumentedService still in place: the chart's pre-delete hook
    // (the operator image, `uninstall`) takes the injection back and releases the finalizers.
    cluster.helm(&["uninstall", "telemetry-operator", "-n", OPERATOR_NAMESPACE, "--wait", "--timeout", "3m"]);

    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    wait_for("no operator pod", T, || async {
        pods.list(&ListParams::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
    let collectors: Api<Pod> = Api::namespaced(client.clone(), DEMO);
    wait_for("no collector pod", T, || async {
        let list =
            collectors.list(&ListParams::default().labels("app.kubernetes.io/component=collector")).await.ok()?;
        list.items.is_empty().then_some(())
    })
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    wait_for("no CRD of ours", T, || async {
        let list = crds.list(&ListParams::default()).await.ok()?;
        (!list.items.iter().any(|crd| crd.name_any().ends_with(".telemetry.thereview.dev"))).then_some(())
    })
    .await;
    let ours = ListParams::default().labels("app.kubernetes.io/instance=telemetry-operator");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    assert!(roles.list(&ours).await.expect("list").items.is_empty(), "no ClusterRole of the release is left");
    assert!(bindings.list(&ours).await.expect("list").items.is_empty(), "no ClusterRoleBinding of the release is left");
}

/// The reviews Deployment's pod template, as JSON.
async fn pod_template_of_reviews(client: &Client) -> Value {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), DEMO);
    let deployment = deployments.get("reviews").await.expect("reviews Deployment");
    serde_json::to_value(deployment.spec.expect("spec").template).expect("template as JSON")
}

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|status| status.conditions.as_ref());
    conditions.is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn enforce_restricted(cluster: &Cluster, namespace: &str) {
    cluster.kubectl(&["label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"]);
}

async fn pipeline_status(client: &Client, namespace: &str, name: &str) -> Value {
    let gvk = GroupVersionKind::gvk("telemetry.thereview.dev", "v1alpha1", "TelemetryPipeline");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk));
    api.get(name).await.map(|object| object.data["status"].clone()).unwrap_or(Value::Null)
}

/// Runs `script` in a busybox pod (restricted-compliant) in the demo namespace and returns its log.
async fn run_busybox(cluster: &Cluster, client: &Client, name: &str, script: &str) -> String {
    let manifest = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": "localhost/thereview/busybox:1.35", "imagePullPolicy": "Never",
                "command": ["sh", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    });
    cluster.kubectl_with_input(&["-n", DEMO, "apply", "-f", "-"], &manifest.to_string());
    let pods: Api<Pod> = Api::namespaced(client.clone(), DEMO);
    let phase = wait_for("the probe pod to finish", T, || async {
        let phase = pods.get(name).await.ok()?.status?.phase?;
        (phase == "Succeeded" || phase == "Failed").then_some(phase)
    })
    .await;
    let logs = cluster.kubectl(&["-n", DEMO, "logs", name]);
    assert_eq!(phase, "Succeeded", "the probe pod `{script}` failed; its log: {logs}");
    logs
}

fn path(path: &std::path::Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
