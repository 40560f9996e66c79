//! End-to-end tests on a kwok cluster (controller-manager, scheduler, fake nodes): pipelines
//! become Ready when their collector is Available, children are garbage-collected with their
//! pipeline, the examples work through `kubectl apply`, and the Helm chart installs with
//! `--wait` and uninstalls without leaving anything behind.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams};
use kube::{Client, ResourceExt};
use telemetry_operator::crd::{InstrumentedService, TelemetryPipeline};
use telemetry_tests::{kwok, tool, wait_for};
use tokio::sync::{RwLock, RwLockReadGuard};

const T: Duration = Duration::from_secs(90);

/// The Helm test installs and removes the CRDs themselves, so it runs alone; the others share.
static CRDS: RwLock<()> = RwLock::const_new(());

async fn setup() -> (Client, String, RwLockReadGuard<'static, ()>) {
    let guard = CRDS.read().await;
    let ns = kwok().await.namespace().await;
    install_crds(&ns.client).await;
    (ns.client, ns.name, guard)
}

fn ready(conditions: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>) -> bool {
    condition(conditions, "Ready").is_some_and(|c| c.status == "True")
}

async fn run(cmd: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(cmd)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", cmd.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} {} failed:\n{text}", cmd.display(), args.join(" "));
    text
}

#[tokio::test]
async fn pipeline_becomes_ready_and_its_children_are_garbage_collected() {
    let (client, ns, _guard) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let tp =
        wait_obj("pipeline Ready", &tps, "main", T, |tp| ready(tp.status.as_ref().map(|s| &s.conditions[..]))).await;
    let status = tp.status.expect("status");
    assert_eq!(status.ready_replicas, Some(1));
    assert_eq!(condition(Some(&status.conditions), "Progressing").map(|c| c.status.as_str()), Some("False"));

    tps.delete("main", &DeleteParams::foreground()).await.expect("delete pipeline");
    wait_gone(
        "collector Deployment collected",
        &Api::<Deployment>::namespaced(client.clone(), &ns),
        "main-collector",
        T,
    )
    .await;
    wait_gone("ConfigMap collected", &Api::<ConfigMap>::namespaced(client.clone(), &ns), "main-collector", T).await;
    wait_gone("Service collected", &Api::<Service>::namespaced(client.clone(), &ns), "main-collector", T).await;
    wait_gone("ServiceAccount collected", &Api::<ServiceAccount>::namespaced(client.clone(), &ns), "main-collector", T)
        .await;
    wait_gone("Role collected", &Api::<Role>::namespaced(client.clone(), &ns), "main-collector", T).await;
    wait_gone("RoleBinding collected", &Api::<RoleBinding>::namespaced(client.clone(), &ns), "main-collector", T).await;
}

#[tokio::test]
async fn examples_apply_with_kubectl_and_everything_becomes_ready() {
    let (client, ns, _guard) = setup().await;
    let _op = start_operator(&client, &ns);
    let kubeconfig = kwok().await.kubeconfig().to_string_lossy().into_owned();
    let kubectl = tool("kubectl");
    let files: Vec<String> = ["pipeline.yaml", "reviews-deployment.yaml", "instrumented-service.yaml"]
        .iter()
        .map(|f| example_path(f).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["--kubeconfig", &kubeconfig, "-n", &ns, "apply"];
    for f in &files {
        args.extend(["-f", f.as_str()]);
    }
    run(&kubectl, &args).await;
    // `kubectl wait` understands our conditions (as do Argo CD and Flux).
    run(
        &kubectl,
        &[
            "--kubeconfig",
            &kubeconfig,
            "-n",
            &ns,
            "wait",
            "--for=condition=Ready",
            "--timeout=90s",
            "tp/main",
            "isvc/reviews",
        ],
    )
    .await;
    let out = run(&kubectl, &["--kubeconfig", &kubeconfig, "-n", &ns, "get", "tp"]).await;
    assert!(out.contains("READY") && out.contains("MODE") && out.contains("deployment"), "{out}");

    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deploys.get("reviews").await.expect("reviews");
    assert_eq!(env_of(&d).get("OTEL_EXPORTER_OTLP_ENDPOINT"), Some(&format!("http://main-collector.{ns}.svc:4317")));
    let d = wait_obj("reviews rolled out with the injection", &deploys, "reviews", T, |d| {
        let st = d.status.clone().unwrap_or_default();
        st.observed_generation >= d.metadata.generation
            && st.updated_replicas == Some(1)
            && st.available_replicas == Some(1)
    })
    .await;
    let isvc = Api::<InstrumentedService>::namespaced(client.clone(), &ns).get("reviews").await.expect("isvc");
    assert_eq!(isvc.status.and_then(|s| s.target_observed_generation), d.metadata.generation);
    let tp = Api::<TelemetryPipeline>::namespaced(client.clone(), &ns).get("main").await.expect("tp");
    assert_eq!(tp.status.map(|s| s.instrumented_services), Some(vec![format!("{ns}/reviews")]));
}

#[tokio::test]
async fn helm_install_waits_for_the_operator_and_uninstall_leaves_nothing() {
    let _exclusive = CRDS.write().await;
    let cluster = kwok().await;
    let ns = cluster.namespace().await;
    let client = ns.client.clone();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Earlier tests installed the CRDs without Helm; Helm must own them for this test. Their
    // operators are gone, so finalizers they left on InstrumentedServices are dropped by hand,
    // or the CRD deletion would wait for them forever.
    if let Ok(list) = Api::<InstrumentedService>::all(client.clone()).list(&Default::default()).await {
        for i in list.items {
            let api = Api::<InstrumentedService>::namespaced(client.clone(), &i.namespace().unwrap_or_default());
            let patch = kube::api::Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}}));
            api.patch(&i.name_any(), &Default::default(), &patch).await.expect("drop finalizer");
        }
    }
    for crd in telemetry_operator::crdgen::crds() {
        let name = crd.name_any();
        if crds.get_opt(&name).await.expect("get crd").is_some() {
            crds.delete(&name, &DeleteParams::default()).await.expect("delete crd");
            wait_gone(&format!("CRD {name} removed"), &crds, &name, T).await;
        }
    }
    let kubeconfig = cluster.kubeconfig().to_string_lossy().into_owned();
    let chart = telemetry_tests::repo_root().join("charts/telemetry-operator").to_string_lossy().into_owned();
    let helm = tool("helm");
    let base = ["--kubeconfig", kubeconfig.as_str(), "-n", ns.name.as_str()];
    let mut install = base.to_vec();
    install.extend(["install", "op", chart.as_str(), "--wait", "--timeout", "120s"]);
    run(&helm, &install).await;

    let deploy = Api::<Deployment>::namespaced(client.clone(), &ns.name)
        .get("op-telemetry-operator")
        .await
        .expect("operator Deployment");
    let available = deploy
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "True");
    assert!(available, "helm --wait returned before the operator was Available");
    for crd in telemetry_operator::crdgen::crds() {
        assert!(crds.get_opt(&crd.name_any()).await.expect("get").is_some(), "CRD installed by the chart");
    }

    // Least privilege is enough: run the controllers as the chart's ServiceAccount (impersonated)
    // through a full pipeline + injection + take-back cycle.
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(cluster.kubeconfig()).expect("kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("config");
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{}:op-telemetry-operator", ns.name));
    let sa_client = Client::try_from(config).expect("impersonating client");
    let op = start_operator(&sa_client, &ns.name);
    for file in ["pipeline.yaml", "reviews-deployment.yaml", "instrumented-service.yaml"] {
        apply_example(&client, &ns.name, file).await;
    }
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns.name);
    wait_obj("pipeline Ready under the chart's RBAC", &tps, "main", T, |tp| {
        ready(tp.status.as_ref().map(|s| &s.conditions[..]))
    })
    .await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns.name);
    wait_obj("isvc Ready under the chart's RBAC", &isvcs, "reviews", T, |i| {
        ready(i.status.as_ref().map(|s| &s.conditions[..]))
    })
    .await;
    isvcs.delete("reviews", &DeleteParams::default()).await.expect("delete isvc");
    wait_gone("isvc finalized under the chart's RBAC", &isvcs, "reviews", T).await;
    let d = Api::<Deployment>::namespaced(client.clone(), &ns.name).get("reviews").await.expect("reviews");
    assert!(!env_of(&d).contains_key("OTEL_SERVICE_NAME"));
    let failures = op.metrics.encode();
    assert!(!failures.contains("reason=\"api_forbidden\""), "RBAC denied something:\n{failures}");

    // Inject again, then the operator goes away (as `helm uninstall` deletes it): the uninstall hook's
    // code, under the chart's RBAC, takes the injection back and releases the finalizer.
    apply_example(&client, &ns.name, "instrumented-service.yaml").await;
    wait_obj("isvc Ready again", &isvcs, "reviews", T, |i| ready(i.status.as_ref().map(|s| &s.conditions[..]))).await;
    drop(op);
    let released = telemetry_operator::uninstall::uninstall(&sa_client, Some(&ns.name)).await.expect("uninstall hook");
    assert_eq!(released, 1);
    wait_gone("isvc released by the uninstall hook", &isvcs, "reviews", T).await;
    let d = Api::<Deployment>::namespaced(client.clone(), &ns.name).get("reviews").await.expect("reviews");
    assert!(!env_of(&d).contains_key("OTEL_SERVICE_NAME"));

    let mut uninstall = base.to_vec();
    uninstall.extend(["uninstall", "op", "--wait", "--timeout", "120s"]);
    run(&helm, &uninstall).await;
    for crd in telemetry_operator::crdgen::crds() {
        wait_gone("CRD removed by uninstall", &crds, &crd.name_any(), T).await;
    }
    let name = "op-telemetry-operator";
    assert!(Api::<ClusterRole>::all(client.clone()).get_opt(name).await.expect("get").is_none());
    assert!(Api::<ClusterRoleBinding>::all(client.clone()).get_opt(name).await.expect("get").is_none());
    wait_gone("operator Deployment", &Api::<Deployment>::namespaced(client.clone(), &ns.name), name, T).await;
    let leftover = |items: Vec<String>| items.into_iter().filter(|n| n.starts_with("op-")).collect::<Vec<_>>();
    let lp = Default::default();
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), &ns.name).list(&lp).await.expect("sa");
    assert_eq!(leftover(sas.items.iter().map(|o| o.name_any()).collect()), Vec::<String>::new());
    let roles = Api::<Role>::namespaced(client.clone(), &ns.name).list(&lp).await.expect("roles");
    assert_eq!(leftover(roles.items.iter().map(|o| o.name_any()).collect()), Vec::<String>::new());
    let rbs = Api::<RoleBinding>::namespaced(client.clone(), &ns.name).list(&lp).await.expect("rbs");
    assert_eq!(leftover(rbs.items.iter().map(|o| o.name_any()).collect()), Vec::<String>::new());
    let svcs = Api::<Service>::namespaced(client.clone(), &ns.name).list(&lp).await.expect("svcs");
    assert_eq!(leftover(svcs.items.iter().map(|o| o.name_any()).collect()), Vec::<String>::new());
}

#[tokio::test]
async fn a_sharded_gateway_becomes_ready_with_one_pod_per_shard_and_reshards_when_scaled() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, Patch, PatchParams};
    use telemetry_operator::crd::{ScrapeMode, ScrapeStatus};
    use telemetry_operator::resources::CONFIG_HASH_ANNOTATION;
    let (client, ns, _guard) = setup().await;
    let _op = start_operator(&client, &ns);
    let tp = serde_json::json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "shards"}, "spec": {"replicas": 3,
            "receivers": {"prometheus": {"scrapeInterval": "10s"}}, "exporters": {"debug": {}}}});
    apply_as(&client, &ns, USER, &tp).await.expect("pipeline");
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let sharded = |n: i32| Some(ScrapeStatus { mode: ScrapeMode::Sharded, shards: Some(n) });
    let ready_with = |n: i32| {
        move |tp: &TelemetryPipeline| {
            ready(tp.status.as_ref().map(|s| &s.conditions[..]))
                && tp.status.as_ref().is_some_and(|s| s.scrape == sharded(n) && s.ready_replicas == Some(n))
        }
    };
    let tp = wait_obj("three shards Ready", &tps, "shards", T, ready_with(3)).await;
    let hash = tp.status.and_then(|s| s.config_hash).expect("hash");
    // The StatefulSet's pods carry the ordinals the shards keep, and all run the current config.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let collectors = || async {
        let list = pods.list(&ListParams::default().labels("app.kubernetes.io/instance=shards")).await.expect("pods");
        let mut out: Vec<(String, Option<String>)> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| (p.name_any(), p.annotations().get(CONFIG_HASH_ANNOTATION).cloned()))
            .collect();
        out.sort();
        out
    };
    let names = |n: usize| (0..n).map(|i| format!("shards-collector-{i}")).collect::<Vec<_>>();
    let got = collectors().await;
    assert_eq!(got.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), names(3));
    assert!(got.iter().all(|(_, h)| h.as_deref() == Some(hash.as_str())), "{got:?}");

    // Scaled to two: the modulus follows and the remaining shards roll to it.
    tps.patch_scale("shards", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})))
        .await
        .expect("scale");
    let tp = wait_obj("two shards Ready", &tps, "shards", T, ready_with(2)).await;
    let hash2 = tp.status.and_then(|s| s.config_hash).expect("hash");
    assert_ne!(hash, hash2, "a new modulus is a new config");
    let got = wait_for("the remaining shards run the new config", T, || async {
        let got = collectors().await;
        (got.len() == 2 && got.iter().all(|(_, h)| h.as_deref() == Some(hash2.as_str()))).then_some(got)
    })
    .await;
    assert_eq!(got.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), names(2));
}
