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
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams};
use kube::{Client, ResourceExt};
use telemetry_operator::context::Config;
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
    wait_gone("NetworkPolicy collected", &Api::<NetworkPolicy>::namespaced(client.clone(), &ns), "main-collector", T)
        .await;
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
    // As the chart's Deployment runs it: binding the release's discovery ClusterRole.
    let config = Config {
        discovery_role: "ClusterRole/op-telemetry-operator-collector-discovery".parse().expect("role"),
        ..Config::default()
    };
    let op = start_operator_with(&sa_client, &ns.name, config);
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
    let discovery = "op-telemetry-operator-collector-discovery";
    assert!(Api::<ClusterRole>::all(client.clone()).get_opt(discovery).await.expect("get").is_none());
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
    let sharded =
        |n: i32| Some(ScrapeStatus { mode: ScrapeMode::Sharded, shards: Some(n), namespaces: vec![ns.clone()] });
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

/// The chart rendered by the real `helm template` into `release_ns` with `--set` values, as JSON documents.
async fn helm_template(release_ns: &str, set: &[&str]) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    let chart = telemetry_tests::repo_root().join("charts/telemetry-operator").to_string_lossy().into_owned();
    let mut args = vec!["template", "op", chart.as_str(), "-n", release_ns];
    for s in set {
        args.extend(["--set", s]);
    }
    let text = run(&tool("helm"), &args).await;
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_json::Value::deserialize(d).expect("rendered YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// Whether a Role or ClusterRole has a rule on `resource` (core group) with `verb`.
fn grants(role: &serde_json::Value, resource: &str, verb: &str) -> bool {
    let has = |rule: &serde_json::Value, key: &str, v: &str| {
        rule[key].as_array().is_some_and(|a| a.iter().any(|x| x == v || x == "*"))
    };
    role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| has(r, "apiGroups", "") && has(r, "resources", resource) && has(r, "verbs", verb))
}

#[tokio::test]
async fn chart_rbac_is_cluster_wide_by_default_and_one_role_with_watch_namespace() {
    // Default: the operator's ClusterRole (namespaces get for allowedNamespaces selectors) and the
    // collectors' discovery ClusterRole, which the operator may bind but does not hold.
    let docs = helm_template("rel", &[]).await;
    let crs = of_kind(&docs, "ClusterRole");
    let named = |name: &str| {
        crs.iter().copied().find(|r| r["metadata"]["name"] == name).unwrap_or_else(|| panic!("{name} in {crs:?}"))
    };
    assert_eq!(crs.len(), 2, "{crs:?}");
    let operator = named("op-telemetry-operator");
    for (res, verb) in [("secrets", "get"), ("pods", "list"), ("namespaces", "get")] {
        assert!(grants(operator, res, verb), "ClusterRole lacks {res} {verb}");
    }
    let discovery = named("op-telemetry-operator-collector-discovery");
    assert_eq!(
        discovery["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
        "the collectors read pods, nothing else"
    );
    let bind = operator["rules"].as_array().into_iter().flatten().find(|r| r["verbs"] == serde_json::json!(["bind"]));
    let bind = bind.expect("the operator binds the discovery role");
    assert_eq!(bind["resources"], serde_json::json!(["clusterroles"]));
    assert_eq!(bind["resourceNames"], serde_json::json!(["op-telemetry-operator-collector-discovery"]));
    assert!(!operator.to_string().contains("\"roles\""), "the operator writes no Role of its own: {operator}");
    let deploy = of_kind(&docs, "Deployment")[0].to_string();
    assert!(deploy.contains("ClusterRole/op-telemetry-operator-collector-discovery"), "{deploy}");
    assert_eq!(of_kind(&docs, "ClusterRoleBinding").len(), 1);
    assert!(
        of_kind(&docs, "Role")
            .iter()
            .all(|r| r["metadata"]["name"].as_str().unwrap_or_default().ends_with("-leader-election")),
        "only the leader-election Role without watchNamespace"
    );

    // watchNamespace: nothing cluster-wide, a Role (and its binding to the release's ServiceAccount) in
    // the watched namespace only.
    let docs = helm_template("rel", &["watchNamespace=apps"]).await;
    for cr in of_kind(&docs, "ClusterRole") {
        for res in ["secrets", "pods", "configmaps", "namespaces"] {
            assert!(!grants(cr, res, "get") && !grants(cr, res, "list"), "ClusterRole grants {res}: {cr}");
        }
    }
    assert!(of_kind(&docs, "ClusterRole").is_empty() && of_kind(&docs, "ClusterRoleBinding").is_empty());
    let roles: Vec<_> = of_kind(&docs, "Role")
        .into_iter()
        .filter(|r| r["metadata"]["namespace"] == "apps" && r["metadata"]["name"] == "op-telemetry-operator")
        .collect();
    assert_eq!(roles.len(), 1, "{roles:?}");
    // The collectors' discovery role is a Role there too (a namespace admin can install the chart).
    assert!(of_kind(&docs, "Role").iter().any(|r| r["metadata"]["namespace"] == "apps"
        && r["metadata"]["name"] == "op-telemetry-operator-collector-discovery"));
    for (res, verb) in [("secrets", "get"), ("pods", "list"), ("pods", "watch"), ("configmaps", "watch")] {
        assert!(grants(roles[0], res, verb), "the Role in the watched namespace lacks {res} {verb}");
    }
    assert!(!grants(roles[0], "namespaces", "get"));
    let binding =
        of_kind(&docs, "RoleBinding").into_iter().find(|b| b["metadata"]["namespace"] == "apps").expect("binding");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["namespace"], "rel");
    assert_eq!(binding["subjects"][0]["name"], "op-telemetry-operator");
    // The operator, the uninstall hook and leader election are unchanged: same env, same Lease Role.
    let deploy = of_kind(&docs, "Deployment")[0].to_string();
    assert!(deploy.contains("WATCH_NAMESPACE") && deploy.contains("\"apps\""), "{deploy}");
    assert!(deploy.contains("Role/op-telemetry-operator-collector-discovery"), "{deploy}");
    assert!(of_kind(&docs, "Role").iter().any(|r| r["metadata"]["namespace"] == "rel"
        && r["metadata"]["name"].as_str().unwrap_or_default().ends_with("-leader-election")));
}

#[tokio::test]
async fn with_watch_namespace_the_chart_rbac_is_enough_and_reaches_no_other_namespace() {
    use k8s_openapi::api::core::v1::{Pod, Secret};
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
    let (client, ns, _guard) = setup().await;
    let other = kwok().await.namespace().await.name;
    // The chart's RBAC for watchNamespace=ns (release in ns too), applied as rendered.
    let docs = helm_template(&ns, &[&format!("watchNamespace={ns}")]).await;
    assert!(of_kind(&docs, "ClusterRole").is_empty() && of_kind(&docs, "ClusterRoleBinding").is_empty());
    for doc in docs
        .iter()
        .filter(|d| ["ServiceAccount", "Role", "RoleBinding"].contains(&d["kind"].as_str().unwrap_or_default()))
    {
        let (group, version) = match doc["apiVersion"].as_str().expect("apiVersion").split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", doc["apiVersion"].as_str().unwrap_or_default()),
        };
        let ar =
            ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap_or_default()));
        let doc_ns = doc["metadata"]["namespace"].as_str().unwrap_or(&ns);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), doc_ns, &ar);
        let name = doc["metadata"]["name"].as_str().expect("name");
        api.patch(name, &PatchParams::apply("helm-template").force(), &Patch::Apply(doc)).await.expect("apply RBAC");
    }

    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kwok().await.kubeconfig()).expect("kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("config");
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:op-telemetry-operator"));
    let sa_client = Client::try_from(config).expect("impersonating client");
    // Nothing outside the watched namespace, nothing cluster-wide.
    let forbidden =
        |r: kube::Result<kube::core::ObjectList<Pod>>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    assert!(forbidden(Api::<Pod>::namespaced(sa_client.clone(), &other).list(&Default::default()).await));
    assert!(forbidden(Api::<Pod>::all(sa_client.clone()).list(&Default::default()).await));
    let secret = Api::<Secret>::namespaced(sa_client.clone(), &other).get_opt("any").await;
    assert!(matches!(&secret, Err(kube::Error::Api(s)) if s.code == 403), "{secret:?}");

    // The controllers under that RBAC: a pipeline and an injection in the watched namespace work.
    let config = Config {
        discovery_role: "Role/op-telemetry-operator-collector-discovery".parse().expect("role"),
        ..Config::default()
    };
    let op = start_operator_with(&sa_client, &ns, config);
    for file in ["pipeline.yaml", "reviews-deployment.yaml", "instrumented-service.yaml"] {
        apply_example(&client, &ns, file).await;
    }
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    wait_obj("pipeline Ready under the namespaced RBAC", &tps, "main", T, |tp| {
        ready(tp.status.as_ref().map(|s| &s.conditions[..]))
    })
    .await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    wait_obj("isvc Ready under the namespaced RBAC", &isvcs, "reviews", T, |i| {
        ready(i.status.as_ref().map(|s| &s.conditions[..]))
    })
    .await;
    // The operator bound the chart's discovery Role (it holds `bind` on it, and pods access of its own
    // only for its collectors' health): the collector reads pods here and nowhere else.
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kwok().await.kubeconfig()).expect("kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("config");
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:main-collector"));
    let collector = Client::try_from(config).expect("impersonating client");
    Api::<Pod>::namespaced(collector.clone(), &ns)
        .list(&Default::default())
        .await
        .expect("the collector lists pods here");
    assert!(forbidden(Api::<Pod>::namespaced(collector, &other).list(&Default::default()).await));
    // A pipeline of another namespace is out of reach: a refusal naming the field, not a retried error.
    let isvc = serde_json::json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": "elsewhere"}, "spec": {"pipelineRef": {"name": "main", "namespace": other},
            "target": {"name": "unattached"}}});
    apply_as(&client, &ns, USER, &isvc).await.expect("isvc");
    let i = wait_obj("Forbidden", &isvcs, "elsewhere", T, |i| {
        condition(i.status.as_ref().map(|s| &s.conditions[..]), "Injected").is_some_and(|c| c.reason == "Forbidden")
    })
    .await;
    let msg = i.status.and_then(|s| s.message).unwrap_or_default();
    assert!(msg.contains("spec.pipelineRef") && msg.contains(&other), "{msg}");
    let failures = op.metrics.encode();
    assert!(!failures.contains("reason=\"api_forbidden\""), "RBAC denied something:\n{failures}");

    // The uninstall hook (same ServiceAccount, WATCH_NAMESPACE set) under the same Role: the injection
    // is taken back, the InstrumentedServices released and the pipeline deleted.
    drop(op);
    telemetry_operator::uninstall::uninstall(&sa_client, Some(&ns)).await.expect("uninstall hook under the Role");
    wait_gone("isvc released by the uninstall hook", &isvcs, "reviews", T).await;
    wait_gone("isvc elsewhere released by the uninstall hook", &isvcs, "elsewhere", T).await;
    wait_gone("pipeline deleted by the uninstall hook", &tps, "main", T).await;
    let d = Api::<Deployment>::namespaced(client.clone(), &ns).get("reviews").await.expect("reviews");
    assert!(!env_of(&d).contains_key("OTEL_SERVICE_NAME"));
}
