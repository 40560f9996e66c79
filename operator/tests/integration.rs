//! Integration tests of the operator against a real etcd + kube-apiserver (no controllers):
//! CRD validation, rendering and server-side apply of a pipeline's children, injection into
//! workloads with exact take-back, conditions and Events for semantic errors, leader election,
//! and the rendered config accepted by the upstream collector's own `validate` command.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use telemetry_operator::config::{self, RenderInput};
use telemetry_operator::context::Config;
use telemetry_operator::crd::{InstrumentedService, TelemetryPipeline, TelemetryPipelineSpec};
use telemetry_operator::guardrails::TenantPolicy;
use telemetry_operator::leader::{self, LeaseConfig};
use telemetry_operator::resources::{CONFIG_HASH_ANNOTATION, CONFIG_KEY};
use telemetry_tests::{apiserver, wait_for};

const T: Duration = Duration::from_secs(30);

/// The pod identity in an injected `OTEL_RESOURCE_ATTRIBUTES`: references to downward-API variables
/// the kubelet expands when it starts the container.
const POD_IDENTITY: &str = "k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME),\
k8s.pod.uid=$(OTEL_RESOURCE_ATTRIBUTES_POD_UID),k8s.node.name=$(OTEL_RESOURCE_ATTRIBUTES_NODE_NAME)";

async fn setup() -> (Client, String) {
    let ns = apiserver().await.namespace().await;
    install_crds(&ns.client).await;
    (ns.client, ns.name)
}

fn deployment_doc(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"team": "reviews"}},
                "spec": {"containers": [{"name": "app", "image": "example/app:1", "env": [{"name": "FOO", "value": "bar"}]}]},
            },
        },
    })
}

fn pipeline_hash(d: &Deployment) -> Option<String> {
    template_annotations(d).get(CONFIG_HASH_ANNOTATION).cloned()
}

#[tokio::test]
async fn example_pipeline_yields_owned_children_and_rolls_on_change() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;

    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let tp = tps.get("main").await.expect("pipeline");
    let uid = tp.uid().expect("uid");
    let owned = |refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]| {
        refs.iter().any(|r| r.uid == uid && r.controller == Some(true) && r.kind == "TelemetryPipeline")
    };
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = wait_obj("collector Deployment", &deploys, "main-collector", T, |d| pipeline_hash(d).is_some()).await;
    assert!(owned(d.owner_references()));
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns).get("main-collector").await.expect("ConfigMap");
    assert!(owned(cm.owner_references()));
    let svc = Api::<Service>::namespaced(client.clone(), &ns).get("main-collector").await.expect("Service");
    assert!(owned(svc.owner_references()));
    let ports: Vec<i32> = svc.spec.and_then(|s| s.ports).unwrap_or_default().iter().map(|p| p.port).collect();
    assert_eq!(ports, [4317, 4318, 8889, 8888]);
    for name in ["main-collector"] {
        assert!(owned(
            Api::<ServiceAccount>::namespaced(client.clone(), &ns).get(name).await.expect("sa").owner_references()
        ));
        let rb = Api::<RoleBinding>::namespaced(client.clone(), &ns).get(name).await.expect("rb");
        assert!(owned(rb.owner_references()));
        // The pod discovery is the admin's role (the chart's), bound, not one the operator writes.
        assert_eq!(
            (rb.role_ref.kind.as_str(), rb.role_ref.name.as_str()),
            ("ClusterRole", "telemetry-operator-collector-discovery")
        );
        // Accepted by the API server's schema: OTLP from this namespace only, pull ports open.
        let policy = Api::<NetworkPolicy>::namespaced(client.clone(), &ns).get(name).await.expect("NetworkPolicy");
        assert!(owned(policy.owner_references()));
        let ingress = policy.spec.and_then(|s| s.ingress).expect("ingress");
        let from = serde_json::to_value(&ingress[0].from).expect("json");
        assert_eq!(from.pointer("/0/namespaceSelector/matchExpressions/0/values"), Some(&json!([ns])));
    }

    // Credentials reach the collector only through secretKeyRef env vars, never the ConfigMap.
    let yaml = cm.data.as_ref().and_then(|d| d.get(CONFIG_KEY)).expect("config");
    assert!(!yaml.contains("replace-me") && !yaml.contains("123456"), "secret value leaked into the ConfigMap");
    assert!(yaml.contains("${env:OTLP_GRAFANA_CLOUD_PASSWORD}"));
    let container = &d.spec.as_ref().and_then(|s| s.template.spec.clone()).expect("pod").containers[0];
    let pw = container.env.iter().flatten().find(|e| e.name == "OTLP_GRAFANA_CLOUD_PASSWORD").expect("password env");
    assert_eq!(
        pw.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).map(|s| s.key.as_str()),
        Some("api-token")
    );

    // Status: config valid, hash and endpoints published (no controller-manager here, so not Ready).
    let tp = wait_obj("pipeline status", &tps, "main", T, |tp| {
        tp.status
            .as_ref()
            .is_some_and(|s| condition(Some(&s.conditions), "ConfigValid").is_some_and(|c| c.status == "True"))
    })
    .await;
    let status = tp.status.expect("status");
    assert_eq!(status.config_hash, pipeline_hash(&d));
    assert_eq!(status.endpoints.expect("endpoints").grpc, format!("http://main-collector.{ns}.svc:4317"));
    assert_eq!(condition(Some(&status.conditions), "Ready").map(|c| c.status.as_str()), Some("False"));

    // A spec change rolls the pods: the pod-template hash changes.
    let before = pipeline_hash(&d).expect("hash");
    tps.patch(
        "main",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"processors": {"batch": {"timeout": "5s"}}}})),
    )
    .await
    .expect("patch pipeline");
    let d =
        wait_obj("new config hash", &deploys, "main-collector", T, |d| pipeline_hash(d).is_some_and(|h| h != before))
            .await;
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns).get("main-collector").await.expect("ConfigMap");
    assert!(cm.data.and_then(|d| d.get(CONFIG_KEY).cloned()).is_some_and(|y| y.contains("timeout: 5s")));

    // Drift is corrected: a hand-edited ConfigMap is rendered back.
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .patch(
            "main-collector",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {CONFIG_KEY: "tampered: true\n"}})),
        )
        .await
        .expect("tamper");
    wait_obj(
        "ConfigMap drift corrected",
        &Api::<ConfigMap>::namespaced(client.clone(), &ns),
        "main-collector",
        T,
        |cm| cm.data.as_ref().and_then(|d| d.get(CONFIG_KEY)).is_some_and(|y| y.contains("memory_limiter")),
    )
    .await;
    assert_eq!(pipeline_hash(&d), Some(tps.get("main").await.expect("tp").status.expect("s").config_hash.expect("h")));
}

#[tokio::test]
async fn invalid_objects_are_refused_naming_the_field() {
    let (client, ns) = setup().await;
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let create_tp = |spec: Value| {
        let tps = tps.clone();
        async move {
            let obj: TelemetryPipeline = serde_json::from_value(json!({
                "apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
                "metadata": {"name": "bad"}, "spec": spec,
            }))
            .expect("object");
            tps.create(&PostParams::default(), &obj).await.expect_err("the API server must refuse this").to_string()
        }
    };
    let err = create_tp(json!({"exporters": {"otlp": [{"name": "x", "endpoint": "not a url"}]}})).await;
    assert!(err.contains("spec.exporters.otlp[0].endpoint") && err.contains("http:// or https://"), "{err}");
    let err = create_tp(json!({"exporters": {"otlp": [{"name": "x", "endpoint": "ftp://host:21"}]}})).await;
    assert!(err.contains("spec.exporters.otlp[0].endpoint"), "{err}");
    let err = create_tp(json!({"receivers": {"otlp": {"grpcPort": 70000}}})).await;
    assert!(err.contains("spec.receivers.otlp.grpcPort"), "{err}");
    let err = create_tp(json!({"mode": "daemonset", "replicas": 2})).await;
    assert!(err.contains("spec.replicas cannot be set"), "{err}");
    let err = create_tp(json!({"agent": {"hostPort": true}, "exporters": {"debug": {}}})).await;
    assert!(err.contains("spec.agent.hostPort is only allowed in daemonset mode"), "{err}");
    let err =
        create_tp(json!({"mode": "daemonset", "agent": {"endpoint": "NodeIP"}, "exporters": {"debug": {}}})).await;
    assert!(err.contains("spec.agent") && err.contains("NodeIP needs spec.agent.hostPort"), "{err}");
    let dyn_tp: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &api_resource("TelemetryPipeline"));
    let raw = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "bad"}, "spec": {"mode": "sidecar"}});
    let err = dyn_tp
        .create(&PostParams::default(), &serde_json::from_value(raw).expect("dynamic"))
        .await
        .expect_err("bad mode refused")
        .to_string();
    assert!(err.contains("spec.mode"), "{err}");
    let err = create_tp(json!({"exporters": {"otlp": [
        {"name": "a", "endpoint": "http://a:4317"}, {"name": "a", "endpoint": "http://b:4317"}]}}))
    .await;
    assert!(err.contains("names must be unique"), "{err}");

    let bad_isvc = |spec: Value| {
        let isvcs = isvcs.clone();
        async move {
            let obj: InstrumentedService = serde_json::from_value(json!({
                "apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
                "metadata": {"name": "bad"}, "spec": spec,
            }))
            .expect("object");
            isvcs.create(&PostParams::default(), &obj).await.expect_err("the API server must refuse this").to_string()
        }
    };
    // serde would refuse an unknown enum value locally, so send raw JSON for the protocol case.
    let raw = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": "bad"}, "spec": {"pipelineRef": {"name": "p"}, "target": {"name": "t"}, "protocol": "udp"}});
    let dynapi: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &api_resource("InstrumentedService"));
    let err = dynapi
        .create(&PostParams::default(), &serde_json::from_value(raw).expect("dynamic"))
        .await
        .expect_err("bad protocol refused")
        .to_string();
    assert!(err.contains("spec.protocol") && err.contains("http/protobuf"), "{err}");
    let err = bad_isvc(json!({"pipelineRef": {"name": "p"}, "target": {"name": "t"}, "metrics": {"port": 0}})).await;
    assert!(err.contains("spec.metrics.port"), "{err}");
    let err = bad_isvc(json!({"pipelineRef": {"name": "p"}, "target": {"name": "t"},
        "sampling": {"sampler": "always_on", "argument": "0.5"}}))
    .await;
    assert!(err.contains("only valid with a ratio sampler"), "{err}");
}

#[tokio::test]
async fn unknown_secret_is_a_condition_and_event_and_nothing_is_rolled_out() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    let docs = example("pipeline.yaml");
    let pipeline = docs.iter().find(|d| d["kind"] == "TelemetryPipeline").expect("pipeline doc");
    apply_as(&client, &ns, USER, pipeline).await.expect("apply pipeline without its Secret");

    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let tp = wait_obj("ConfigValid=False", &tps, "main", T, |tp| {
        tp.status
            .as_ref()
            .is_some_and(|s| condition(Some(&s.conditions), "ConfigValid").is_some_and(|c| c.status == "False"))
    })
    .await;
    let status = tp.status.expect("status");
    let cond = condition(Some(&status.conditions), "ConfigValid").expect("cond");
    assert_eq!(cond.reason, "InvalidConfig");
    assert!(
        cond.message.contains("spec.exporters.otlp[0].auth.basic.username") && cond.message.contains("grafana-cloud"),
        "{}",
        cond.message
    );
    assert_eq!(condition(Some(&status.conditions), "Degraded").map(|c| c.status.as_str()), Some("True"));
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    wait_for("InvalidConfig event", T, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("InvalidConfig")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("main")
            })
            .then_some(())
    })
    .await;
    assert!(Api::<Deployment>::namespaced(client.clone(), &ns).get_opt("main-collector").await.expect("get").is_none());

    // Creating the Secret heals the pipeline (Secrets are polled, not watched).
    let secret = docs.iter().find(|d| d["kind"] == "Secret").expect("secret doc");
    apply_as(&client, &ns, USER, secret).await.expect("secret");
    wait_obj("ConfigValid=True after the Secret appears", &tps, "main", Duration::from_secs(60), |tp| {
        tp.status
            .as_ref()
            .is_some_and(|s| condition(Some(&s.conditions), "ConfigValid").is_some_and(|c| c.status == "True"))
    })
    .await;
    let _ = Api::<Secret>::namespaced(client.clone(), &ns).get("grafana-cloud").await.expect("secret");
}

#[tokio::test]
async fn isvc_injects_keeps_others_fields_and_takes_back_exactly_what_it_added() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;
    apply_as(&client, &ns, USER, &deployment_doc("reviews")).await.expect("user deployment");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let original = deploys.get("reviews").await.expect("deployment");

    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let d = wait_obj("injected env", &deploys, "reviews", T, |d| env_of(d).contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .await;
    let env = env_of(&d);
    assert_eq!(env.get("FOO").map(String::as_str), Some("bar"), "the user's env survives");
    assert_eq!(env.get("ENABLE_TELEMETRY").map(String::as_str), Some("true"));
    assert_eq!(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"), Some(&format!("http://main-collector.{ns}.svc:4317")));
    assert_eq!(env.get("OTEL_EXPORTER_OTLP_PROTOCOL").map(String::as_str), Some("grpc"));
    assert_eq!(env.get("OTEL_SERVICE_NAME").map(String::as_str), Some("reviews"));
    assert_eq!(
        env.get("OTEL_RESOURCE_ATTRIBUTES"),
        Some(&format!(
            "k8s.namespace.name={ns},k8s.deployment.name=reviews,{POD_IDENTITY},service.namespace=thereview"
        ))
    );
    assert_eq!(env.get("OTEL_TRACES_SAMPLER").map(String::as_str), Some("parentbased_traceidratio"));
    assert_eq!(env.get("OTEL_TRACES_SAMPLER_ARG").map(String::as_str), Some("0.5"));
    let ann = template_annotations(&d);
    assert_eq!(ann.get("prometheus.io/scrape").map(String::as_str), Some("true"));
    assert_eq!(ann.get("prometheus.io/port").map(String::as_str), Some("8000"));
    assert_eq!(ann.get("prometheus.io/path").map(String::as_str), Some("/metrics"));
    assert_eq!(ann.get("team").map(String::as_str), Some("reviews"));
    assert_eq!(template_labels(&d).get("telemetry.thereview.dev/pipeline").map(String::as_str), Some("main"));
    assert!(d.owner_references().is_empty(), "never an owner reference on the user's workload");
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(1));

    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let isvc = wait_obj("isvc Ready", &isvcs, "reviews", T, |i| {
        i.status.as_ref().is_some_and(|s| condition(Some(&s.conditions), "Ready").is_some_and(|c| c.status == "True"))
    })
    .await;
    let st = isvc.status.clone().expect("status");
    assert!(st.managed_env.contains(&"OTEL_SERVICE_NAME".to_string()));
    assert!(st.managed_annotations.contains(&"prometheus.io/scrape".to_string()));
    assert_eq!(condition(Some(&st.conditions), "ScrapeConfigured").map(|c| c.status.as_str()), Some("True"));
    assert_eq!(isvc_condition(&isvc, "Stalled").map(|c| c.0), Some("False".into()));
    assert_eq!(isvc_condition(&isvc, "Reconciling").map(|c| c.0), Some("False".into()));
    assert!(isvc.finalizers().iter().any(|f| f == "telemetry.thereview.dev/injection"));

    // Another manager changes its own field after injection: it survives the operator.
    apply_as(
        &client,
        &ns,
        "other-team",
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "reviews"},
        "spec": {"template": {"metadata": {"annotations": {"owner": "other-team"}}}}}),
    )
    .await
    .expect("other manager");

    // A change of the InstrumentedService rolls the workload.
    isvcs
        .patch("reviews", &PatchParams::default(), &Patch::Merge(json!({"spec": {"serviceName": "reviews-v2"}})))
        .await
        .expect("patch isvc");
    let d = wait_obj("new service name", &deploys, "reviews", T, |d| {
        env_of(d).get("OTEL_SERVICE_NAME").map(String::as_str) == Some("reviews-v2")
    })
    .await;
    assert_eq!(template_annotations(&d).get("owner").map(String::as_str), Some("other-team"));

    // The pipeline's endpoint changes: the workload follows.
    Api::<TelemetryPipeline>::namespaced(client.clone(), &ns)
        .patch(
            "main",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"receivers": {"otlp": {"grpcPort": 14317}}}})),
        )
        .await
        .expect("patch pipeline");
    wait_obj("new endpoint", &deploys, "reviews", T, |d| {
        env_of(d).get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some_and(|e| e.ends_with(":14317"))
    })
    .await;

    // Deleting the InstrumentedService takes back exactly what it added.
    isvcs.delete("reviews", &DeleteParams::default()).await.expect("delete isvc");
    wait_gone("isvc finalized", &isvcs, "reviews", T).await;
    let d = deploys.get("reviews").await.expect("deployment");
    let env: BTreeMap<_, _> = env_of(&d);
    assert_eq!(env, BTreeMap::from([("FOO".to_string(), "bar".to_string())]));
    let mut expected_ann = template_annotations(&original);
    expected_ann.insert("owner".into(), "other-team".into());
    assert_eq!(template_annotations(&d), expected_ann);
    assert_eq!(template_labels(&d), template_labels(&original));
    let managers: Vec<String> = d.managed_fields().iter().filter_map(|m| m.manager.clone()).collect();
    assert!(!managers.iter().any(|m| m == "telemetry-operator-injector"), "{managers:?}");
}

#[tokio::test]
async fn workload_created_after_isvc_is_wired_and_missing_pipeline_is_reported() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let reason_is = |reason: &'static str| {
        move |i: &InstrumentedService| {
            i.status
                .as_ref()
                .is_some_and(|s| condition(Some(&s.conditions), "Injected").is_some_and(|c| c.reason == reason))
        }
    };
    let i = wait_obj("PipelineNotFound", &isvcs, "reviews", T, reason_is("PipelineNotFound")).await;
    assert_eq!(isvc_condition(&i, "Stalled"), Some(("True".into(), "PipelineNotFound".into())));
    assert_eq!(isvc_condition(&i, "Reconciling").map(|c| c.0), Some("False".into()));
    assert!(i.status.and_then(|s| s.message).is_some_and(|m| m.contains("spec.pipelineRef") && m.contains("main")));
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    wait_for("PipelineNotFound event", T, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items.iter().any(|e| e.reason.as_deref() == Some("PipelineNotFound")).then_some(())
    })
    .await;

    apply_example(&client, &ns, "pipeline.yaml").await;
    let i = wait_obj("TargetNotFound", &isvcs, "reviews", T, reason_is("TargetNotFound")).await;
    assert!(i.status.and_then(|s| s.message).is_some_and(|m| m.contains("spec.target") && m.contains("reviews")));

    apply_example(&client, &ns, "reviews-deployment.yaml").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = wait_obj("late Deployment wired", &deploys, "reviews", T, |d| env_of(d).contains_key("OTEL_SERVICE_NAME"))
        .await;
    assert_eq!(env_of(&d).get("LOG_FORMAT").map(String::as_str), Some("json"));
    wait_obj("Injected", &isvcs, "reviews", T, reason_is("Injected")).await;
}

#[tokio::test]
async fn app_set_service_name_wins_and_a_true_conflict_names_field_and_manager() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;
    let mut doc = deployment_doc("reviews");
    doc["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "OTEL_SERVICE_NAME", "value": "mine"}]);
    apply_as(&client, &ns, USER, &doc).await.expect("deployment");
    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);

    // The app's own OTEL_SERVICE_NAME is not a conflict: it stays, everything else is injected.
    let i = wait_obj("Injected", &isvcs, "reviews", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.0 == "True" && c.1 == "Injected")
    })
    .await;
    let status = i.status.expect("status");
    assert_eq!(status.app_service_name.as_deref(), Some("mine"));
    let msg = &condition(Some(&status.conditions), "Injected").expect("Injected").message;
    assert!(msg.contains("OTEL_SERVICE_NAME") && msg.contains("mine"), "{msg}");
    assert!(!status.managed_env.iter().any(|e| e == "OTEL_SERVICE_NAME"));
    let env = env_of(&deploys.get("reviews").await.expect("d"));
    assert_eq!(env.get("OTEL_SERVICE_NAME").map(String::as_str), Some("mine"));
    assert!(env.contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"));

    // A field we must own (the endpoint), set by the app to something else, is a true conflict: the
    // status names the field and the manager, and the app's value is not overwritten.
    let mut doc = deployment_doc("ratings");
    doc["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://elsewhere:4317"}]);
    apply_as(&client, &ns, USER, &doc).await.expect("deployment");
    let isvc = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": "ratings"}, "spec": {"pipelineRef": {"name": "main"}, "target": {"name": "ratings"}}});
    apply_as(&client, &ns, USER, &isvc).await.expect("isvc");
    let i = wait_obj("Conflict", &isvcs, "ratings", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.1 == "Conflict")
    })
    .await;
    let msg = i.status.and_then(|s| s.message).unwrap_or_default();
    assert!(msg.contains(USER) && msg.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{msg}");
    let d = deploys.get("ratings").await.expect("d");
    assert_eq!(env_of(&d).get("OTEL_EXPORTER_OTLP_ENDPOINT").map(String::as_str), Some("http://elsewhere:4317"));

    // `kubectl set env OTEL_SERVICE_NAME=...` after injection: the user's value wins, no conflict.
    apply_as(&client, &ns, USER, &deployment_doc("details")).await.expect("details");
    let isvc = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": "details"}, "spec": {"pipelineRef": {"name": "main"}, "target": {"name": "details"}}});
    apply_as(&client, &ns, USER, &isvc).await.expect("isvc");
    wait_obj("details injected", &deploys, "details", T, |d| {
        env_of(d).get("OTEL_SERVICE_NAME").map(String::as_str) == Some("details")
    })
    .await;
    let set_env = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "OTEL_SERVICE_NAME", "value": "details-by-hand"}]}]}}}});
    let pp = PatchParams { field_manager: Some("kubectl-set".into()), ..PatchParams::default() };
    deploys.patch("details", &pp, &Patch::Strategic(set_env)).await.expect("set env");
    let i = wait_obj("hand-set name reported", &isvcs, "details", T, |i| {
        i.status.as_ref().and_then(|s| s.app_service_name.as_deref()) == Some("details-by-hand")
    })
    .await;
    assert_eq!(isvc_condition(&i, "Injected"), Some(("True".into(), "Injected".into())));
    assert_eq!(
        env_of(&deploys.get("details").await.expect("d")).get("OTEL_SERVICE_NAME").map(String::as_str),
        Some("details-by-hand")
    );
}

#[tokio::test]
async fn app_set_resource_attributes_are_merged_and_given_back_on_removal() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;
    let mut doc = deployment_doc("reviews");
    doc["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "OTEL_RESOURCE_ATTRIBUTES",
        "value": "team=payments,service.namespace=shop,k8s.namespace.name=spoofed"}]);
    apply_as(&client, &ns, USER, &doc).await.expect("deployment");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let before = deploys.get("reviews").await.expect("d").spec.expect("spec").template;
    // The example sets `service.namespace: thereview`: on that key the app's value wins; on k8s.* ours.
    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let i = wait_obj("Injected with merged attributes", &isvcs, "reviews", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.0 == "True" && c.1 == "Injected")
    })
    .await;
    let merged = format!(
        "k8s.namespace.name={ns},k8s.deployment.name=reviews,{POD_IDENTITY},service.namespace=shop,team=payments"
    );
    let d = deploys.get("reviews").await.expect("d");
    assert_eq!(env_of(&d).get("OTEL_RESOURCE_ATTRIBUTES"), Some(&merged));
    assert!(env_of(&d).contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"), "the rest is injected too");
    // The app's entry came first; the variables its merged value now references are placed before it.
    assert_references_defined_earlier(&d);
    let status = i.status.expect("status");
    let recorded = &status.injected_target.as_ref().expect("target").app_resource_attributes;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].manager, USER);
    assert_eq!(recorded[0].value, "team=payments,service.namespace=shop,k8s.namespace.name=spoofed");
    let msg = &condition(Some(&status.conditions), "Injected").expect("Injected").message;
    assert!(msg.contains("OTEL_RESOURCE_ATTRIBUTES") && msg.contains(USER), "{msg}");

    // The app changes its own value later (`kubectl set env`): merged again from the new value.
    let set_env = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=checkout"}]}]}}}});
    let pp = PatchParams { field_manager: Some("kubectl-set".into()), ..PatchParams::default() };
    deploys.patch("reviews", &pp, &Patch::Strategic(set_env)).await.expect("set env");
    let remerged = format!(
        "k8s.namespace.name={ns},k8s.deployment.name=reviews,{POD_IDENTITY},service.namespace=thereview,team=checkout"
    );
    wait_obj("re-merged", &deploys, "reviews", T, |d| env_of(d).get("OTEL_RESOURCE_ATTRIBUTES") == Some(&remerged))
        .await;
    wait_obj("new app value recorded", &isvcs, "reviews", T, |i| {
        i.status.as_ref().and_then(|s| s.injected_target.as_ref()).is_some_and(|t| {
            t.app_resource_attributes.iter().any(|a| a.value == "team=checkout" && a.manager == "kubectl-set")
        })
    })
    .await;

    // Deleting the InstrumentedService gives the app its own value back and removes the rest.
    let mut expected = before.clone();
    if let Some(spec) = expected.spec.as_mut() {
        for e in spec.containers[0].env.iter_mut().flatten() {
            e.value = Some("team=checkout".into());
        }
    }
    isvcs.delete("reviews", &DeleteParams::default()).await.expect("delete");
    wait_gone("isvc gone", &isvcs, "reviews", T).await;
    let d = deploys.get("reviews").await.expect("d");
    assert_eq!(d.spec.clone().expect("spec").template, expected, "the app's own value, nothing of ours");
    assert!(!injector_manages(&d), "{:?}", d.managed_fields());
}

#[tokio::test]
async fn tenant_policy_refuses_naming_each_field_and_rolls_nothing_out() {
    let (client, ns) = setup().await;
    let policy = TenantPolicy {
        allow_env_value_from: false,
        allow_tolerations: false,
        allow_node_selector: false,
        allow_host_path: false,
        allow_host_port: false,
        ..TenantPolicy::default()
    };
    let _op = start_operator_with(&client, &ns, Config { tenant_policy: policy, ..Config::default() });
    let tp = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "agent"}, "spec": {
            "mode": "daemonset", "image": "example/miner:1",
            "env": [{"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
            "tolerations": [{"operator": "Exists"}], "nodeSelector": {"pool": "infra"},
            "agent": {"hostPort": true},
            "receivers": {"hostMetrics": {}}, "exporters": {"debug": {}}}});
    apply_as(&client, &ns, USER, &tp).await.expect("pipeline");
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let refused = wait_obj("NotAllowed", &tps, "agent", T, |tp| {
        pipeline_condition(tp, "ConfigValid").is_some_and(|c| c.0 == "False" && c.1 == "NotAllowed")
    })
    .await;
    let (_, _, msg) = pipeline_condition(&refused, "ConfigValid").expect("ConfigValid");
    for field in [
        "spec.image",
        "spec.env[0].valueFrom",
        "spec.tolerations",
        "spec.nodeSelector",
        "spec.receivers.hostMetrics",
        "spec.agent.hostPort",
    ] {
        assert!(msg.contains(field), "{field} not named in {msg}");
    }
    assert_eq!(pipeline_condition(&refused, "Stalled").map(|c| (c.0, c.1)), Some(("True".into(), "NotAllowed".into())));
    // Nothing was created for it.
    let dss: Api<k8s_openapi::api::apps::v1::DaemonSet> = Api::namespaced(client.clone(), &ns);
    assert!(dss.get_opt("agent-collector").await.expect("get").is_none());
    assert!(Api::<ConfigMap>::namespaced(client.clone(), &ns).get_opt("agent-collector").await.expect("get").is_none());

    // The upstream collector's image and a plain gateway pass.
    let ok = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "gateway"}, "spec": {"image": "otel/opentelemetry-collector-contrib:0.155.0",
            "env": [{"name": "LITERAL", "value": "x"}], "exporters": {"debug": {}}}});
    apply_as(&client, &ns, USER, &ok).await.expect("pipeline");
    wait_obj("gateway valid", &tps, "gateway", T, |tp| {
        pipeline_condition(tp, "ConfigValid").is_some_and(|c| c.0 == "True")
    })
    .await;
}

#[tokio::test]
async fn reserved_resource_attribute_keys_are_refused_by_the_api_server() {
    let (client, ns) = setup().await;
    let isvc = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": "spoof"}, "spec": {"pipelineRef": {"name": "main"}, "target": {"name": "reviews"},
            "resourceAttributes": {"team": "a", "k8s.namespace.name": "someone-else"}}});
    let err = apply_as(&client, &ns, USER, &isvc).await.expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains("spec.resourceAttributes") && msg.contains("k8s.* are reserved"), "{msg}");
}

async fn isvc_in(client: &Client, ns: &str, name: &str, pipeline_ns: &str) {
    apply_as(client, ns, USER, &deployment_doc(name)).await.expect("deployment");
    let isvc = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": name}, "spec": {"pipelineRef": {"name": "main", "namespace": pipeline_ns},
            "target": {"name": name}}});
    apply_as(client, ns, USER, &isvc).await.expect("isvc");
}

#[tokio::test]
async fn another_namespaces_pipeline_is_attached_only_with_its_consent() {
    let (client, apps) = setup().await;
    let obs = apiserver().await.namespace().await.name;
    let _op = start_operator(&client, &apps);
    apply_example(&client, &obs, "pipeline.yaml").await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &apps);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &apps);

    // No consent: refused, naming the rule; the workload is untouched.
    isvc_in(&client, &apps, "uninvited", &obs).await;
    let i = wait_obj("NotAllowed", &isvcs, "uninvited", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.1 == "NotAllowed")
    })
    .await;
    let msg = i.status.and_then(|s| s.message).unwrap_or_default();
    assert!(msg.contains("spec.allowedNamespaces") && msg.contains(&apps), "{msg}");
    assert!(!injector_manages(&deploys.get("uninvited").await.expect("d")));

    // Consent by name.
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &obs);
    let consent = |v: Value| {
        json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "main"}, "spec": {"allowedNamespaces": v}})
    };
    tps.patch("main", &PatchParams::apply("consent"), &Patch::Apply(consent(json!({"names": [apps]}))))
        .await
        .expect("consent");
    isvc_in(&client, &apps, "invited", &obs).await;
    wait_obj("invited injected", &isvcs, "invited", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.0 == "True" && c.1 == "Injected")
    })
    .await;
    let env = env_of(&deploys.get("invited").await.expect("d"));
    assert_eq!(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"), Some(&format!("http://main-collector.{obs}.svc:4317")));

    // Consent by a label selector over namespaces.
    tps.patch(
        "main",
        &PatchParams::apply("consent"),
        &Patch::Apply(consent(json!({"selector": {"matchLabels": {"telemetry.example/pipeline": "shared"}}}))),
    )
    .await
    .expect("selector");
    isvc_in(&client, &apps, "unlabelled", &obs).await;
    wait_obj("refused without the label", &isvcs, "unlabelled", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.1 == "NotAllowed")
    })
    .await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let label = json!({"metadata": {"labels": {"telemetry.example/pipeline": "shared"}}});
    namespaces.patch(&apps, &PatchParams::default(), &Patch::Merge(label)).await.expect("label");
    isvc_in(&client, &apps, "labelled", &obs).await;
    wait_obj("labelled injected", &isvcs, "labelled", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.0 == "True")
    })
    .await;
}

/// Whether the API server's authorizer lets `user` list pods in `namespace` (a SubjectAccessReview).
async fn may_list_pods(client: &Client, user: &str, namespace: &str) -> bool {
    use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.into()),
                verb: Some("list".into()),
                resource: Some("pods".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await.expect("SubjectAccessReview");
    answer.status.is_some_and(|s| s.allowed)
}

/// A cluster-wide operator (as the chart installs it) on an API server of the test's own (it acts on
/// every namespace), with the chart's discovery ClusterRole.
#[tokio::test]
async fn a_consenting_pipeline_discovers_pods_in_the_attaching_namespace_through_the_admins_role() {
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let cluster = telemetry_tests::private_apiserver().await;
    let client = cluster.client().await;
    install_crds(&client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in ["obs", "shop", "elsewhere"] {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        namespaces.patch(name, &PatchParams::apply(USER), &Patch::Apply(ns)).await.expect("namespace");
    }
    // The chart's discovery role (templates/collector-discovery.yaml; its rules are checked by the
    // chart's own test): the operator binds it, it never writes a Role of its own.
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "telemetry-operator-collector-discovery"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]});
    Api::<ClusterRole>::all(client.clone())
        .patch("telemetry-operator-collector-discovery", &PatchParams::apply(USER), &Patch::Apply(role))
        .await
        .expect("ClusterRole");
    let handle =
        tokio::spawn(telemetry_operator::run_controllers(client.clone(), Config::default(), Default::default()));
    let _op = AbortOnDrop(handle);

    let pipeline = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "main"}, "spec": {"allowedNamespaces": {"names": ["shop"]},
            "receivers": {"prometheus": {}}, "exporters": {"debug": {}}}});
    apply_as(&client, "obs", USER, &pipeline).await.expect("pipeline");
    let attach = |ns: &str, metrics: bool| {
        json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
            "metadata": {"name": "app", "namespace": ns}, "spec": {"pipelineRef": {"name": "main", "namespace": "obs"},
                "target": {"name": "app"}, "metrics": {"enabled": metrics, "port": 8080}}})
    };
    for ns in ["shop", "elsewhere"] {
        apply_as(&client, ns, USER, &deployment_doc("app")).await.expect("deployment");
        apply_as(&client, ns, USER, &attach(ns, true)).await.expect("isvc");
    }

    // The consenting namespace is scraped: discovered by name in the config, the role bound there
    // for the pipeline's collector, reported, and the InstrumentedService's scrape is configured.
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), "obs");
    let scraped =
        |tp: &TelemetryPipeline| tp.status.as_ref().and_then(|s| s.scrape.as_ref()).map(|s| s.namespaces.clone());
    let tp =
        wait_obj("shop discovered", &tps, "main", T, |tp| scraped(tp) == Some(vec!["obs".into(), "shop".into()])).await;
    assert!(tp.finalizers().iter().any(|f| f == "telemetry.thereview.dev/discovery-bindings"));
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "obs").get("main-collector").await.expect("ConfigMap");
    let cfg: Value = serde_yaml::from_str(&collector_config_of(&cm)).expect("yaml");
    assert_eq!(
        cfg.pointer("/receivers/prometheus/config/scrape_configs/0/kubernetes_sd_configs/0/namespaces/names"),
        Some(&json!(["obs", "shop"]))
    );
    let collector = "system:serviceaccount:obs:main-collector";
    let rb = Api::<RoleBinding>::namespaced(client.clone(), "shop").get("obs.main-collector").await.expect("binding");
    assert_eq!(rb.role_ref.kind, "ClusterRole");
    assert!(rb.owner_references().is_empty(), "owner references do not cross namespaces");
    assert!(may_list_pods(&client, collector, "obs").await && may_list_pods(&client, collector, "shop").await);
    assert!(!may_list_pods(&client, collector, "elsewhere").await, "no consent, no discovery");
    let shop: Api<InstrumentedService> = Api::namespaced(client.clone(), "shop");
    wait_obj("shop ScrapeConfigured", &shop, "app", T, |i| {
        isvc_condition(i, "ScrapeConfigured").is_some_and(|c| c.0 == "True")
    })
    .await;
    let d = Api::<Deployment>::namespaced(client.clone(), "shop").get("app").await.expect("deployment");
    assert_eq!(template_annotations(&d).get("prometheus.io/scrape").map(String::as_str), Some("true"));
    let elsewhere: Api<InstrumentedService> = Api::namespaced(client.clone(), "elsewhere");
    wait_obj("elsewhere refused", &elsewhere, "app", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.1 == "NotAllowed")
    })
    .await;
    // OTLP is admitted from the pipeline's own namespace and the consenting one, not from elsewhere.
    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), "obs").get("main-collector").await.expect("policy");
    let rules = serde_json::to_value(policy.spec.and_then(|s| s.ingress)).expect("json");
    assert_eq!(rules.pointer("/0/from/0/namespaceSelector/matchExpressions/0/values"), Some(&json!(["obs", "shop"])));

    // Metrics turned off there: the binding goes, and with the last one the finalizer.
    apply_as(&client, "shop", USER, &attach("shop", false)).await.expect("metrics off");
    let tp = wait_obj("shop no longer scraped", &tps, "main", T, |tp| scraped(tp) == Some(vec!["obs".into()])).await;
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "shop");
    assert!(bindings.get_opt("obs.main-collector").await.expect("get").is_none());
    assert!(!may_list_pods(&client, collector, "shop").await);
    assert!(tp.finalizers().is_empty(), "no binding elsewhere, nothing to guard: {:?}", tp.finalizers());

    // Deleting the pipeline removes its binding in the other namespace (here no garbage collector
    // runs, so only the operator's finalizer handling can remove it).
    apply_as(&client, "shop", USER, &attach("shop", true)).await.expect("metrics on");
    wait_obj("shop discovered again", &tps, "main", T, |tp| scraped(tp) == Some(vec!["obs".into(), "shop".into()]))
        .await;
    wait_obj("binding back", &bindings, "obs.main-collector", T, |_| true).await;
    tps.delete("main", &DeleteParams::background()).await.expect("delete");
    wait_gone("pipeline deleted", &tps, "main", T).await;
    assert!(bindings.get_opt("obs.main-collector").await.expect("get").is_none());
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The env entries of the first container of a Deployment's pod template, in order.
fn env_entries(d: &Deployment) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    let pod = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    pod.and_then(|p| p.containers[0].env.clone()).unwrap_or_default()
}

/// The downward-API field an env entry reads, if any.
fn field_path(d: &Deployment, name: &str) -> Option<String> {
    let entry = env_entries(d).into_iter().find(|e| e.name == name)?;
    entry.value_from?.field_ref.map(|f| f.field_path)
}

/// Asserts that every `$(NAME)` in the live env refers to an entry before it: Kubernetes expands
/// only those, anything else would reach the app as literal text.
fn assert_references_defined_earlier(d: &Deployment) {
    let env = env_entries(d);
    for (i, e) in env.iter().enumerate() {
        for reference in e.value.as_deref().unwrap_or_default().split("$(").skip(1) {
            let name = reference.split(')').next().unwrap_or_default();
            assert!(
                env[..i].iter().any(|earlier| earlier.name == name),
                "{} references {name}, not defined before it: {:?}",
                e.name,
                env.iter().map(|e| &e.name).collect::<Vec<_>>()
            );
        }
    }
}

#[tokio::test]
async fn an_agent_keeps_telemetry_on_the_node_and_workloads_send_to_the_node_ip() {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    let tp = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "agent"}, "spec": {"mode": "daemonset", "agent": {"hostPort": true},
            "exporters": {"debug": {}}}});
    apply_as(&client, &ns, USER, &tp).await.expect("pipeline");

    // The collector listens on every node's IP, and its Service keeps a pod's traffic on the pod's node.
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
    let ds = wait_obj("agent DaemonSet", &dss, "agent-collector", T, |_| true).await.spec.expect("spec");
    let ports = ds.template.spec.expect("pod").containers[0].ports.clone().unwrap_or_default();
    let host_ports: Vec<_> = ports.iter().filter_map(|p| p.host_port.map(|h| (p.container_port, h))).collect();
    assert_eq!(host_ports, [(4317, 4317), (4318, 4318)]);
    let rolling = ds.update_strategy.and_then(|u| u.rolling_update).expect("rolling update");
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(1)), "no surge pod can bind the host ports");
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let svc = wait_obj("agent Service", &services, "agent-collector", T, |_| true).await.spec.expect("spec");
    assert_eq!(svc.internal_traffic_policy.as_deref(), Some("Local"));

    // An attached workload sends to its node's IP: OTEL_NODE_IP from the downward API, defined before
    // the endpoint that references it, beside the pod's identity.
    apply_as(&client, &ns, USER, &deployment_doc("reviews")).await.expect("user deployment");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let original = deploys.get("reviews").await.expect("deployment").spec.expect("spec").template;
    let isvc = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": "reviews"}, "spec": {"pipelineRef": {"name": "agent"}, "target": {"name": "reviews"}}});
    apply_as(&client, &ns, USER, &isvc).await.expect("isvc");
    let node_ip_endpoint = "http://$(OTEL_NODE_IP):4317";
    let d = wait_obj("node IP endpoint", &deploys, "reviews", T, |d| {
        env_of(d).get("OTEL_EXPORTER_OTLP_ENDPOINT").map(String::as_str) == Some(node_ip_endpoint)
    })
    .await;
    assert_eq!(field_path(&d, "OTEL_NODE_IP").as_deref(), Some("status.hostIP"));
    assert_eq!(field_path(&d, "OTEL_RESOURCE_ATTRIBUTES_POD_NAME").as_deref(), Some("metadata.name"));
    assert_eq!(field_path(&d, "OTEL_RESOURCE_ATTRIBUTES_POD_UID").as_deref(), Some("metadata.uid"));
    assert_eq!(field_path(&d, "OTEL_RESOURCE_ATTRIBUTES_NODE_NAME").as_deref(), Some("spec.nodeName"));
    assert_eq!(
        env_of(&d).get("OTEL_RESOURCE_ATTRIBUTES"),
        Some(&format!("k8s.namespace.name={ns},k8s.deployment.name=reviews,{POD_IDENTITY}"))
    );
    assert_eq!(env_entries(&d).first().map(|e| e.name.as_str()), Some("FOO"), "the app's own env stays first");
    assert_references_defined_earlier(&d);
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let i =
        wait_obj("Injected", &isvcs, "reviews", T, |i| isvc_condition(i, "Injected").is_some_and(|c| c.0 == "True"))
            .await;
    let status = i.status.expect("status");
    for name in ["OTEL_NODE_IP", "OTEL_RESOURCE_ATTRIBUTES_POD_UID"] {
        assert!(status.managed_env.iter().any(|e| e == name), "{name} not in {:?}", status.managed_env);
    }
    let msg = &condition(Some(&status.conditions), "Injected").expect("Injected").message;
    assert!(msg.contains("node's IP"), "{msg}");

    // The Service endpoint instead: the node IP variable goes, the pod's identity stays.
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let to = |endpoint: Value| json!({"spec": {"agent": {"endpoint": endpoint}}});
    tps.patch("agent", &PatchParams::default(), &Patch::Merge(to(json!("Service")))).await.expect("Service");
    let d = wait_obj("Service endpoint", &deploys, "reviews", T, |d| {
        env_of(d).get("OTEL_EXPORTER_OTLP_ENDPOINT") == Some(&format!("http://agent-collector.{ns}.svc:4317"))
    })
    .await;
    assert!(!env_of(&d).contains_key("OTEL_NODE_IP"), "{:?}", env_of(&d));
    assert_eq!(field_path(&d, "OTEL_RESOURCE_ATTRIBUTES_NODE_NAME").as_deref(), Some("spec.nodeName"));
    assert_references_defined_earlier(&d);
    // Back to the default (the node's IP with host ports): the variable returns before the endpoint.
    tps.patch("agent", &PatchParams::default(), &Patch::Merge(to(Value::Null))).await.expect("default");
    let d = wait_obj("node IP again", &deploys, "reviews", T, |d| {
        env_of(d).get("OTEL_EXPORTER_OTLP_ENDPOINT").map(String::as_str) == Some(node_ip_endpoint)
    })
    .await;
    assert_references_defined_earlier(&d);

    // Deleting the InstrumentedService takes every variable back, the downward-API ones included:
    // the pod template is exactly what it was.
    isvcs.delete("reviews", &DeleteParams::default()).await.expect("delete isvc");
    wait_gone("isvc finalized", &isvcs, "reviews", T).await;
    let d = deploys.get("reviews").await.expect("deployment");
    assert_eq!(d.spec.clone().expect("spec").template, original);
    assert!(!injector_manages(&d), "{:?}", d.managed_fields());

    // As a gateway, the Service goes back to the cluster's default policy.
    tps.patch("agent", &PatchParams::default(), &Patch::Merge(json!({"spec": {"mode": "deployment", "agent": null}})))
        .await
        .expect("to gateway");
    wait_obj("Cluster policy", &services, "agent-collector", T, |s| {
        s.spec.as_ref().and_then(|s| s.internal_traffic_policy.as_deref()) == Some("Cluster")
    })
    .await;
}

#[tokio::test]
async fn an_hpa_owns_the_replicas_of_an_autoscaled_gateway_and_exposure_follows_the_spec() {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    let tp = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "edge"}, "spec": {
            "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilization": 70},
            "service": {"type": "NodePort", "nodePorts": {"grpc": 30317, "http": 30318}},
            "processors": {"batch": {"timeout": "1s"}},
            "exporters": {"debug": {}}}});
    apply_as(&client, &ns, USER, &tp).await.expect("pipeline");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = wait_obj("collector", &deploys, "edge-collector", T, |_| true).await;
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(1), "the API server's default, not ours");
    assert!(
        !d.managed_fields().iter().any(|m| m.manager.as_deref() == Some("telemetry-operator")
            && m.fields_v1.as_ref().is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())),
        "the operator does not own replicas while autoscaling is on"
    );
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let hpa = wait_obj("HPA", &hpas, "edge-collector", T, |_| true).await.spec;
    assert_eq!(
        (hpa.min_replicas, hpa.max_replicas, hpa.scale_target_ref.name.as_str()),
        (Some(2), 4, "edge-collector")
    );
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    wait_obj("PDB", &pdbs, "edge-collector", T, |_| true).await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let svc = services.get("edge-collector").await.expect("service").spec.expect("spec");
    assert_eq!(svc.type_.as_deref(), Some("NodePort"));
    // The OTLP ports get the fixed node ports (the cluster allocates the others').
    let node_ports: Vec<_> = svc
        .ports
        .unwrap_or_default()
        .iter()
        .filter(|p| p.name.as_deref().is_some_and(|n| n.starts_with("otlp-")))
        .filter_map(|p| p.node_port)
        .collect();
    assert_eq!(node_ports, [30317, 30318]);
    let headless = services.get("edge-headless").await.expect("headless").spec.expect("spec");
    assert_eq!(headless.cluster_ip.as_deref(), Some("None"));

    // The HPA scales the Deployment (as its controller does, through the scale subresource); a
    // config change re-applies the Deployment and the replicas stay the HPA's.
    let hpa_manager = PatchParams { field_manager: Some("horizontal-pod-autoscaler".into()), ..PatchParams::default() };
    deploys
        .patch_scale("edge-collector", &hpa_manager, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .expect("scale");
    let before = pipeline_hash(&deploys.get("edge-collector").await.expect("d"));
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let change = json!({"spec": {"processors": {"batch": {"timeout": "2s"}}}});
    tps.patch("edge", &PatchParams::default(), &Patch::Merge(&change)).await.expect("change");
    let d = wait_obj("re-applied", &deploys, "edge-collector", T, |d| pipeline_hash(d) != before).await;
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(3), "the HPA's replicas are not reverted");

    // Without autoscaling, `kubectl scale tp` (the pipeline's scale subresource) sets the replicas.
    apply_as(
        &client,
        &ns,
        USER,
        &json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "gw"}, "spec": {"exporters": {"debug": {}}}}),
    )
    .await
    .expect("gw");
    wait_obj("gw collector", &deploys, "gw-collector", T, |_| true).await;
    assert!(pdbs.get_opt("gw-collector").await.expect("get").is_none(), "one replica: no PDB");
    tps.patch_scale("gw", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 2}})))
        .await
        .expect("scale tp");
    wait_obj("scaled", &deploys, "gw-collector", T, |d| d.spec.as_ref().and_then(|s| s.replicas) == Some(2)).await;
    wait_obj("PDB for 2", &pdbs, "gw-collector", T, |_| true).await;
    let gw =
        wait_obj("selector in status", &tps, "gw", T, |tp| tp.status.as_ref().is_some_and(|s| s.selector.is_some()))
            .await;
    assert!(gw.status.and_then(|s| s.selector).is_some_and(|s| s.contains("app.kubernetes.io/instance=gw")));
}

#[tokio::test]
async fn a_new_instrumented_service_is_injected_in_one_reconcile_not_one_per_own_write() {
    use telemetry_operator::metrics::ControllerLabel;
    let (client, ns) = setup().await;
    let op = start_operator(&client, &ns);
    let count = || {
        op.metrics.reconciliations.get_or_create(&ControllerLabel { controller: "instrumentedservice".into() }).get()
    };
    apply_example(&client, &ns, "pipeline.yaml").await;
    apply_as(&client, &ns, USER, &deployment_doc("reviews")).await.expect("reviews");
    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    wait_obj("Ready", &isvcs, "reviews", T, |i| isvc_condition(i, "Ready").is_some_and(|c| c.0 == "True")).await;
    // Its finalizer, its status write and the Deployment change its injection made each used to
    // queue one more reconcile. Wait until a further reconcile would have happened, on the pipeline's
    // next reconcile (it also reacts to the InstrumentedService), then count.
    let tp_count =
        || op.metrics.reconciliations.get_or_create(&ControllerLabel { controller: "telemetrypipeline".into() }).get();
    let tp_before = tp_count();
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    tps.patch("main", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"poke": "1"}}})))
        .await
        .expect("poke");
    wait_for("pipeline reconciled again", T, || async { (tp_count() > tp_before).then_some(()) }).await;
    let n = count();
    assert!(n <= 2, "{n} reconciles for one new InstrumentedService (one, plus at most one lost own-write race)");
}

#[tokio::test]
async fn only_one_replica_holds_the_lease() {
    let (client, ns) = setup().await;
    let cfg = |id: &str| LeaseConfig {
        namespace: ns.clone(),
        name: "telemetry-operator".into(),
        identity: id.into(),
        duration: Duration::from_secs(15),
    };
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns);
    assert!(leader::try_acquire(&api, &cfg("a")).await.expect("a"));
    assert!(!leader::try_acquire(&api, &cfg("b")).await.expect("b"), "a fresh lease of another replica is respected");
    assert!(leader::try_acquire(&api, &cfg("a")).await.expect("renew"));
    leader::release(client.clone(), &cfg("a")).await.expect("release");
    assert!(leader::try_acquire(&api, &cfg("b")).await.expect("b after release"));
    let lease = api.get("telemetry-operator").await.expect("lease");
    assert_eq!(lease.spec.and_then(|s| s.holder_identity).as_deref(), Some("b"));
}

#[tokio::test]
async fn metrics_health_and_readiness_are_served() {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let state = telemetry_operator::http::AppState::default();
    drop(state.metrics.start("telemetrypipeline"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(axum::serve(listener, telemetry_operator::http::app(state.clone())).into_future());
    let get = |path: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    };
    assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
    state.ready.store(true, Ordering::Relaxed);
    assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
    let m = get("/metrics").await;
    assert!(m.contains("telemetry_operator_reconciliations_total{controller=\"telemetrypipeline\"} 1"), "{m}");
    server.abort();
}

/// The example pipeline's rendered config, plus a daemonset variant using the remaining components
/// (hostmetrics, span renaming, bearer-token auth; its scraping restricted to its node by a field
/// selector), a three-replica variant (its scraping sharded by hashmod) and one keeping its queues on
/// disk, with the env vars their credentials need.
fn rendered_variants() -> Vec<(String, Vec<String>)> {
    let docs = example("pipeline.yaml");
    let doc = docs.iter().find(|d| d["kind"] == "TelemetryPipeline").expect("pipeline");
    let spec: TelemetryPipelineSpec = serde_json::from_value(doc["spec"].clone()).expect("spec");
    let mut daemon = spec.clone();
    daemon.mode = telemetry_operator::crd::PipelineMode::Daemonset;
    daemon.replicas = None;
    daemon.receivers.host_metrics = serde_json::from_value(json!({})).ok();
    daemon.processors.span_name =
        serde_json::from_value(json!({"fromAttributes": ["http.method"], "separator": " "})).ok();
    // `otelcol validate` checks that root_path exists; point it at a real folder through the escape hatch.
    daemon.config_overrides = Some(json!({"receivers": {"hostmetrics": {"root_path": std::env::temp_dir()}}}));
    daemon.exporters.otlp[1].auth =
        serde_json::from_value(json!({"bearerToken": {"name": "alloy", "key": "token"}})).ok();
    // A gateway of three shards: every scrape job ends with the hashmod rules.
    let mut sharded = spec.clone();
    sharded.replicas = Some(3);
    // Queues on disk: file_storage, every OTLP queue stored and bounded in bytes, no batch processor.
    let mut persistent = spec.clone();
    persistent.persistence = serde_json::from_value(json!({"volume": "PersistentVolumeClaim", "size": "2Gi"})).ok();
    persistent.processors.batch = None;
    for exporter in &mut persistent.exporters.otlp {
        exporter.queue = None;
    }
    // `otelcol validate` checks that the storage directory exists (in the pod, the volume's mount).
    let dir = std::env::temp_dir();
    persistent.config_overrides =
        Some(json!({"extensions": {"file_storage": {"directory": dir, "compaction": {"directory": dir}}}}));
    [spec, daemon, sharded, persistent]
        .iter()
        .map(|spec| {
            let cfg = config::render(&RenderInput {
                name: "main",
                namespace: "obs",
                spec,
                memory_limit_bytes: Some(256 << 20),
                live_replicas: None,
                scrape_namespaces: &[],
            });
            let env = config::secret_refs(spec).into_iter().map(|(name, _)| name).collect();
            (config::to_yaml(&cfg).expect("yaml"), env)
        })
        .collect()
}

#[tokio::test]
async fn rendered_example_config_is_accepted_by_upstream_otelcol_validate() {
    let otelcol = telemetry_tests::tool("otelcol");
    let dir = std::env::temp_dir().join(format!("otelcol-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for (i, (yaml, env)) in rendered_variants().into_iter().enumerate() {
        let path = dir.join(format!("config-{i}.yaml"));
        std::fs::write(&path, yaml).expect("write");
        let mut cmd = tokio::process::Command::new(&otelcol);
        cmd.arg("validate").arg(format!("--config={}", path.display()));
        for name in env {
            cmd.env(name, "placeholder");
        }
        let out = cmd.output().await.expect("run otelcol");
        assert!(
            out.status.success(),
            "otelcol validate rejected variant {i}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn rendered_example_config_is_accepted_by_our_collector() {
    for (i, (yaml, env)) in rendered_variants().into_iter().enumerate() {
        let lookup = |name: &str| env.iter().any(|e| e == name).then(|| "placeholder".to_string());
        if let Err(e) = telemetry_collector::config::Config::from_yaml_str(&yaml, &lookup) {
            panic!("telemetry-collector rejected variant {i}: {e}\n{yaml}");
        }
    }
}

/// Starts the real `telemetry-operator` binary against the test API server, scoped to `ns`.
fn spawn_operator(ns: &str, identity: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_telemetry-operator"))
        .arg("run")
        .env("KUBECONFIG", KUBECONFIG.get().expect("kubeconfig set"))
        .env("WATCH_NAMESPACE", ns)
        .env("POD_NAMESPACE", ns)
        .env("POD_NAME", identity)
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn telemetry-operator")
}

static KUBECONFIG: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

async fn lease_holder(api: &Api<Lease>) -> Option<String> {
    api.get_opt("telemetry-operator").await.ok().flatten()?.spec?.holder_identity
}

#[tokio::test]
async fn two_operator_processes_elect_one_leader_and_fail_over_on_sigterm() {
    let cluster = apiserver().await;
    let _ = KUBECONFIG.set(cluster.kubeconfig().to_path_buf());
    let tns = cluster.namespace().await;
    let (client, ns) = (tns.client.clone(), tns.name.clone());
    install_crds(&client).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);

    let mut a = spawn_operator(&ns, "replica-a");
    wait_for("replica-a leads", T, || async {
        (lease_holder(&leases).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let mut b = spawn_operator(&ns, "replica-b");
    apply_example(&client, &ns, "pipeline.yaml").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = wait_obj("collector applied by the leader", &deploys, "main-collector", T, |d| pipeline_hash(d).is_some())
        .await;
    assert_eq!(lease_holder(&leases).await.as_deref(), Some("replica-a"), "the standby must not take over");
    assert!(b.try_wait().expect("b status").is_none(), "the standby keeps running");

    // SIGTERM: the leader stops, releases the Lease and exits 0; the standby takes over.
    let pid = a.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(T, a.wait()).await.expect("leader exits after SIGTERM").expect("wait");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let mut logs = String::new();
    if let Some(mut out) = a.stdout.take() {
        use tokio::io::AsyncReadExt;
        out.read_to_string(&mut logs).await.expect("logs");
    }
    let first = logs.lines().next().unwrap_or_default();
    assert!(serde_json::from_str::<Value>(first).is_ok(), "logs are JSON lines: {first:?}");
    assert!(logs.contains("acquired leadership"), "{logs}");
    wait_for("replica-b leads", T, || async {
        (lease_holder(&leases).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;

    let before = pipeline_hash(&d).expect("hash");
    Api::<TelemetryPipeline>::namespaced(client.clone(), &ns)
        .patch(
            "main",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"processors": {"batch": {"timeout": "7s"}}}})),
        )
        .await
        .expect("patch");
    wait_obj("new leader reconciles", &deploys, "main-collector", T, |d| pipeline_hash(d).is_some_and(|h| h != before))
        .await;
    b.kill().await.expect("stop b");
}

fn pipeline_condition(tp: &TelemetryPipeline, type_: &str) -> Option<(String, String, String)> {
    let c = condition(tp.status.as_ref().map(|s| s.conditions.as_slice()), type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn pipeline_condition_is(tp: &TelemetryPipeline, type_: &str, status: &str) -> bool {
    pipeline_condition(tp, type_).is_some_and(|(s, _, _)| s == status)
}

#[tokio::test]
async fn failed_rollout_degrades_the_pipeline_with_the_pods_reason_and_ready_waits_for_new_pods() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let d = wait_obj("collector Deployment", &deploys, "main-collector", T, |d| pipeline_hash(d).is_some()).await;
    let hash = pipeline_hash(&d).expect("hash");
    // No controller-manager: nothing rolls out, so the pipeline is reconciling, not stalled.
    let tp = wait_obj("Reconciling=True", &tps, "main", T, |tp| pipeline_condition_is(tp, "Reconciling", "True")).await;
    assert!(pipeline_condition_is(&tp, "Stalled", "False"));
    assert!(pipeline_condition_is(&tp, "Ready", "False"));

    // The pod the ReplicaSet would create, and the status a kubelet writes when the image is missing.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod_name = "main-collector-5d4f8b7c9-x2x7q";
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "labels": template_labels(&d), "annotations": {CONFIG_HASH_ANNOTATION: hash}},
        "spec": {"serviceAccountName": "main-collector", "automountServiceAccountToken": false,
            "containers": [{"name": "collector", "image": "thereview.dev/telemetry-collector:missing"}]},
    });
    pods.create(&PostParams::default(), &serde_json::from_value(pod).expect("pod")).await.expect("create pod");
    let container_status = |state: Value, ready: bool| {
        json!({"status": {"phase": if ready { "Running" } else { "Pending" }, "containerStatuses": [{
            "name": "collector", "image": "thereview.dev/telemetry-collector:missing", "imageID": "",
            "ready": ready, "restartCount": 0, "state": state}]}})
    };
    let waiting = json!({"waiting": {"reason": "ErrImageNeverPull",
        "message": "Container image is not present with pull policy of Never"}});
    pods.patch_status(pod_name, &PatchParams::default(), &Patch::Merge(container_status(waiting, false)))
        .await
        .expect("kubelet status");
    let tp = wait_obj("Degraded=True", &tps, "main", T, |tp| pipeline_condition_is(tp, "Degraded", "True")).await;
    let (_, reason, message) = pipeline_condition(&tp, "Degraded").expect("Degraded");
    assert_eq!(reason, "ErrImageNeverPull");
    assert!(message.contains(pod_name) && message.contains("ErrImageNeverPull"), "{message}");
    assert!(pipeline_condition_is(&tp, "Stalled", "True"));
    assert!(pipeline_condition_is(&tp, "Reconciling", "False"));
    assert_eq!(pipeline_condition(&tp, "Ready").map(|c| c.1), Some("ErrImageNeverPull".into()));

    // The image appears: the pod runs and is ready, and the Deployment controller reports every
    // replica updated and ready for the current generation. Only then is the pipeline Ready.
    pods.patch_status(pod_name, &PatchParams::default(), &Patch::Merge(container_status(json!({"running": {}}), true)))
        .await
        .expect("kubelet status");
    let tp = wait_obj("Degraded=False", &tps, "main", T, |tp| pipeline_condition_is(tp, "Degraded", "False")).await;
    assert!(pipeline_condition_is(&tp, "Ready", "False"), "the Deployment has not reported the rollout yet");
    let generation = deploys.get("main-collector").await.expect("d").metadata.generation;
    deploys
        .patch_status(
            "main-collector",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1,
                "readyReplicas": 1, "availableReplicas": 1}})),
        )
        .await
        .expect("deployment status");
    let tp = wait_obj("Ready=True", &tps, "main", T, |tp| pipeline_condition_is(tp, "Ready", "True")).await;
    assert!(pipeline_condition_is(&tp, "Reconciling", "False") && pipeline_condition_is(&tp, "Stalled", "False"));
    assert_eq!(tp.status.as_ref().and_then(|s| s.ready_replicas), Some(1));

    // A new rollout that hits the Deployment's progress deadline.
    deploys
        .patch_status(
            "main-collector",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"updatedReplicas": 0, "conditions": [{"type": "Progressing",
                "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"main-collector-5d4f8b7c9\" has timed out progressing."}]}})),
        )
        .await
        .expect("deployment status");
    let tp = wait_obj("ProgressDeadlineExceeded", &tps, "main", T, |tp| {
        pipeline_condition(tp, "Degraded").is_some_and(|(s, r, _)| s == "True" && r == "ProgressDeadlineExceeded")
    })
    .await;
    assert!(pipeline_condition(&tp, "Degraded").is_some_and(|(_, _, m)| m.contains("Deployment main-collector")));
    assert!(pipeline_condition_is(&tp, "Stalled", "True"));
}

#[tokio::test]
async fn pipeline_names_that_cannot_name_the_collector_service_are_refused() {
    let (client, ns) = setup().await;
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let create = |name: String| {
        let tps = tps.clone();
        async move {
            let obj: TelemetryPipeline = serde_json::from_value(json!({
                "apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
                "metadata": {"name": name}, "spec": {},
            }))
            .expect("object");
            tps.create(&PostParams::default(), &obj).await.map(|_| ()).map_err(|e| e.to_string())
        }
    };
    // 54 characters: a valid object name, but `<name>-collector` would be 64 > 63.
    let err = create("a".repeat(54)).await.expect_err("54-character name refused");
    assert!(err.contains("metadata.name") && err.contains("at most 53 characters") && err.contains("63"), "{err}");
    let err = create("obs.main".into()).await.expect_err("dotted name refused");
    assert!(err.contains("metadata.name") && err.contains("DNS-1035") && err.contains("no dots"), "{err}");
    let err = create("1main".into()).await.expect_err("leading digit refused");
    assert!(err.contains("DNS-1035"), "{err}");
    // The longest allowed name works, and its children's names are valid Service names.
    create("a".repeat(53)).await.expect("53-character name accepted");
}

fn isvc_condition(i: &InstrumentedService, type_: &str) -> Option<(String, String)> {
    let c = condition(i.status.as_ref().map(|s| s.conditions.as_slice()), type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

fn injector_manages(d: &Deployment) -> bool {
    d.managed_fields().iter().any(|m| m.manager.as_deref() == Some("telemetry-operator-injector"))
}

#[tokio::test]
async fn changing_the_target_takes_the_injection_back_from_the_old_workload() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;
    apply_as(&client, &ns, USER, &deployment_doc("reviews")).await.expect("reviews");
    apply_as(&client, &ns, USER, &deployment_doc("ratings")).await.expect("ratings");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let original = deploys.get("reviews").await.expect("reviews");
    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let i = wait_obj("injected target recorded", &isvcs, "reviews", T, |i| {
        i.status.as_ref().and_then(|s| s.injected_target.as_ref()).is_some()
    })
    .await;
    let recorded = i.status.and_then(|s| s.injected_target).expect("target");
    assert_eq!((recorded.kind.as_str(), recorded.name.as_str()), ("Deployment", "reviews"));
    assert_eq!(Some(recorded.uid), original.metadata.uid.clone());
    assert!(env_of(&deploys.get("reviews").await.expect("reviews")).contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"));

    isvcs
        .patch("reviews", &PatchParams::default(), &Patch::Merge(json!({"spec": {"target": {"name": "ratings"}}})))
        .await
        .expect("retarget");
    wait_obj("new target injected", &deploys, "ratings", T, |d| env_of(d).contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .await;
    let old = wait_obj("old target cleaned", &deploys, "reviews", T, |d| !injector_manages(d)).await;
    assert_eq!(env_of(&old), BTreeMap::from([("FOO".to_string(), "bar".to_string())]));
    assert_eq!(template_labels(&old), template_labels(&original));
    assert_eq!(template_annotations(&old), template_annotations(&original));
    let i = wait_obj("record follows the target", &isvcs, "reviews", T, |i| {
        i.status.as_ref().and_then(|s| s.injected_target.as_ref()).is_some_and(|t| t.name == "ratings")
    })
    .await;
    assert_eq!(isvc_condition(&i, "Injected").map(|c| c.0), Some("True".into()));
}

#[tokio::test]
async fn deleting_a_pipeline_keeps_the_injection_by_default_and_removes_it_on_request() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;
    apply_as(&client, &ns, USER, &deployment_doc("reviews")).await.expect("reviews");
    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let ready = |i: &InstrumentedService| isvc_condition(i, "Ready").is_some_and(|c| c.0 == "True");
    wait_obj("isvc Ready", &isvcs, "reviews", T, ready).await;
    let injected = deploys.get("reviews").await.expect("d");
    assert!(env_of(&injected).contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"));

    // Default Keep: deleting the pipeline reports it missing but does not roll the workload.
    tps.delete("main", &DeleteParams::default()).await.expect("delete pipeline");
    let i = wait_obj("PipelineNotFound", &isvcs, "reviews", T, |i| {
        isvc_condition(i, "Ready").is_some_and(|c| c.1 == "PipelineNotFound")
    })
    .await;
    assert_eq!(isvc_condition(&i, "Injected"), Some(("True".into(), "Kept".into())));
    let d = deploys.get("reviews").await.expect("d");
    assert_eq!(d.metadata.generation, injected.metadata.generation, "the workload did not roll");
    assert_eq!(env_of(&d), env_of(&injected));

    // Recreating it rolls nothing either.
    apply_example(&client, &ns, "pipeline.yaml").await;
    wait_obj("isvc Ready again", &isvcs, "reviews", T, ready).await;
    assert_eq!(deploys.get("reviews").await.expect("d").metadata.generation, injected.metadata.generation);

    // Remove: the injection goes with the pipeline.
    isvcs
        .patch("reviews", &PatchParams::default(), &Patch::Merge(json!({"spec": {"onPipelineMissing": "Remove"}})))
        .await
        .expect("policy");
    wait_obj("policy observed", &isvcs, "reviews", T, |i| {
        i.status.as_ref().and_then(|s| s.observed_generation) == i.metadata.generation && ready(i)
    })
    .await;
    tps.delete("main", &DeleteParams::default()).await.expect("delete pipeline");
    let d = wait_obj("injection removed", &deploys, "reviews", T, |d| !injector_manages(d)).await;
    assert_eq!(env_of(&d), BTreeMap::from([("FOO".to_string(), "bar".to_string())]));
    let i = wait_obj("Injected=False", &isvcs, "reviews", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.0 == "False" && c.1 == "PipelineNotFound")
    })
    .await;
    assert!(i.status.and_then(|s| s.injected_target).is_none());
}

#[tokio::test]
async fn the_instrumented_service_that_injected_keeps_the_workload_against_an_older_one() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;
    apply_as(&client, &ns, USER, &deployment_doc("reviews")).await.expect("reviews");
    apply_as(&client, &ns, USER, &deployment_doc("ratings")).await.expect("ratings");
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let isvc = |name: &str, target: &str, service: &str| {
        json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
            "metadata": {"name": name},
            "spec": {"pipelineRef": {"name": "main"}, "target": {"name": target}, "serviceName": service}})
    };
    let injected = |i: &InstrumentedService| isvc_condition(i, "Injected").is_some_and(|c| c.0 == "True");
    // "old" is created first, on another workload; "young" then instruments reviews.
    apply_as(&client, &ns, USER, &isvc("old", "ratings", "old")).await.expect("old");
    wait_obj("old injected", &isvcs, "old", T, injected).await;
    apply_as(&client, &ns, USER, &isvc("young", "reviews", "young")).await.expect("young");
    wait_obj("young injected", &isvcs, "young", T, injected).await;

    // The older one moves onto reviews: being older does not make it the owner of a workload that
    // the younger one already instruments.
    isvcs
        .patch("old", &PatchParams::default(), &Patch::Merge(json!({"spec": {"target": {"name": "reviews"}}})))
        .await
        .expect("retarget");
    let old = wait_obj("old reports the conflict", &isvcs, "old", T, |i| {
        isvc_condition(i, "Injected").is_some_and(|c| c.1 == "Conflict")
    })
    .await;
    assert!(old.status.and_then(|s| s.message).is_some_and(|m| m.contains("\"young\"")));
    let young = isvcs.get("young").await.expect("young");
    assert!(injected(&young), "{:?}", young.status);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deploys.get("reviews").await.expect("reviews");
    assert_eq!(env_of(&d).get("OTEL_SERVICE_NAME").map(String::as_str), Some("young"));
    // And ratings, which "old" left, is clean.
    wait_obj("ratings cleaned", &deploys, "ratings", T, |d| !injector_manages(d)).await;
}

#[tokio::test]
async fn pipeline_status_writes_do_not_re_reconcile_its_instrumented_services() {
    use telemetry_operator::metrics::ControllerLabel;
    let (client, ns) = setup().await;
    let op = start_operator(&client, &ns);
    let count = |controller: &str| {
        op.metrics.reconciliations.get_or_create(&ControllerLabel { controller: controller.into() }).get()
    };
    apply_example(&client, &ns, "pipeline.yaml").await;
    apply_as(&client, &ns, USER, &deployment_doc("reviews")).await.expect("reviews");
    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    wait_obj("isvc Ready", &isvcs, "reviews", T, |i| isvc_condition(i, "Ready").is_some_and(|c| c.0 == "True")).await;
    wait_obj("pipeline lists the isvc", &tps, "main", T, |tp| {
        tp.status.as_ref().is_some_and(|s| !s.instrumented_services.is_empty())
    })
    .await;

    // Five status-only writes of the pipeline. Each also wakes the pipeline's own controller, which
    // reconciles after its 500 ms debounce: once its counter moved, an InstrumentedService reconcile
    // caused by the same event would already have started.
    let before = count("instrumentedservice");
    for n in 1..=5 {
        let tp_before = count("telemetrypipeline");
        tps.patch_status("main", &PatchParams::default(), &Patch::Merge(json!({"status": {"readyReplicas": 10 + n}})))
            .await
            .expect("status write");
        wait_for("pipeline reconciled", T, || async { (count("telemetrypipeline") > tp_before).then_some(()) }).await;
    }
    let after = count("instrumentedservice");
    assert!(after - before <= 1, "{} InstrumentedService reconciles for 5 pipeline status writes", after - before);

    // An endpoint change still reaches the workload.
    tps.patch(
        "main",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"receivers": {"otlp": {"grpcPort": 14317}}}})),
    )
    .await
    .expect("patch pipeline");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    wait_obj("new endpoint", &deploys, "reviews", T, |d| {
        env_of(d).get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some_and(|e| e.ends_with(":14317"))
    })
    .await;
}

/// A Lua 5.1 table constructor for a JSON value (the status objects Argo CD hands to `health.lua`).
fn lua_literal(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    // Lua 5.1 knows decimal escapes only (three digits, so a following digit is not absorbed);
                    // UTF-8 passes through as bytes.
                    c if (c as u32) < 32 => out.push_str(&format!("\\{:03}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(a) => format!("{{{}}}", a.iter().map(lua_literal).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("[{}] = {}", lua_literal(&json!(k)), lua_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs the chart's Argo CD `health.lua` of `kind` on `obj` with Debian's `lua5.1`: (status, message).
async fn argocd_health(kind: &str, obj: &Value) -> (String, String) {
    let path = telemetry_tests::repo_root()
        .join("charts/telemetry-operator/files/argocd-health/telemetry.thereview.dev")
        .join(kind)
        .join("health.lua");
    let script = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    // Argo CD runs the script with the object as the global `obj` and takes the returned table.
    let program = format!(
        "obj = {}\nlocal function check()\n{script}\nend\nlocal hs = check()\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua_literal(obj)
    );
    let dir = std::env::temp_dir().join(format!("argocd-health-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join(format!("{kind}-{}.lua", obj["metadata"]["name"].as_str().unwrap_or("x")));
    std::fs::write(&file, program).expect("write");
    let out =
        tokio::process::Command::new("lua5.1").arg(&file).output().await.expect("run lua5.1 (apt-get install lua5.1)");
    assert!(out.status.success(), "lua5.1 failed on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.to_string())
}

#[tokio::test]
async fn argocd_health_checks_read_real_status_objects() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);

    // An InstrumentedService whose pipeline does not exist yet: Degraded, with the reason.
    apply_as(&client, &ns, USER, &deployment_doc("reviews")).await.expect("reviews");
    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let i = wait_obj("PipelineNotFound", &isvcs, "reviews", T, |i| {
        isvc_condition(i, "Ready").is_some_and(|c| c.1 == "PipelineNotFound")
    })
    .await;
    let (status, message) = argocd_health("InstrumentedService", &as_json(&i)).await;
    assert_eq!(status, "Degraded");
    assert!(message.contains("PipelineNotFound"), "{message}");

    // The pipeline appears: collector not rolled out yet (no controller-manager) -> Progressing.
    apply_example(&client, &ns, "pipeline.yaml").await;
    let tp = wait_obj("Reconciling", &tps, "main", T, |tp| pipeline_condition_is(tp, "Reconciling", "True")).await;
    let (status, message) = argocd_health("TelemetryPipeline", &as_json(&tp)).await;
    assert_eq!(status, "Progressing");
    assert!(message.contains("RollingOut"), "{message}");
    let i = wait_obj("isvc Ready", &isvcs, "reviews", T, |i| isvc_condition(i, "Ready").is_some_and(|c| c.0 == "True"))
        .await;
    assert_eq!(argocd_health("InstrumentedService", &as_json(&i)).await.0, "Healthy");

    // The Deployment controller reports the rollout done -> Healthy.
    let generation = deploys.get("main-collector").await.expect("d").metadata.generation;
    deploys
        .patch_status(
            "main-collector",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1,
                "readyReplicas": 1, "availableReplicas": 1}})),
        )
        .await
        .expect("deployment status");
    let tp = wait_obj("Ready", &tps, "main", T, |tp| pipeline_condition_is(tp, "Ready", "True")).await;
    assert_eq!(argocd_health("TelemetryPipeline", &as_json(&tp)).await.0, "Healthy");

    // A spec change not yet observed -> Progressing, whatever the old conditions said.
    let tp = tps
        .patch(
            "main",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"processors": {"batch": {"timeout": "9s"}}}})),
        )
        .await
        .expect("patch");
    let mut stale = as_json(&tp);
    stale["status"]["observedGeneration"] = json!(tp.metadata.generation.expect("generation") - 1);
    assert_eq!(argocd_health("TelemetryPipeline", &stale).await.0, "Progressing");

    // A pipeline whose Secret is missing -> Degraded with InvalidConfig.
    let docs = example("pipeline.yaml");
    let mut bad = docs.iter().find(|d| d["kind"] == "TelemetryPipeline").expect("pipeline doc").clone();
    bad["metadata"]["name"] = json!("nosecret");
    let secret = bad.to_string().replace("\"grafana-cloud\"", "\"no-such-secret\"");
    apply_as(&client, &ns, USER, &serde_json::from_str(&secret).expect("doc")).await.expect("bad pipeline");
    let tp = wait_obj("Stalled", &tps, "nosecret", T, |tp| pipeline_condition_is(tp, "Stalled", "True")).await;
    let (status, message) = argocd_health("TelemetryPipeline", &as_json(&tp)).await;
    assert_eq!(status, "Degraded");
    assert!(message.contains("InvalidConfig"), "{message}");

    // No status at all (the operator has not seen it yet) -> Progressing.
    let fresh = json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService",
        "metadata": {"name": "fresh", "generation": 1}, "spec": {}});
    assert_eq!(argocd_health("InstrumentedService", &fresh).await.0, "Progressing");
}

/// The JSON of a typed object, as Argo CD sees it.
fn as_json<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).expect("json")
}

#[tokio::test]
async fn uninstall_takes_every_injection_back_and_releases_the_finalizers_without_the_operator() {
    let (client, ns) = setup().await;
    let op = start_operator(&client, &ns);
    apply_example(&client, &ns, "pipeline.yaml").await;
    apply_as(&client, &ns, USER, &deployment_doc("reviews")).await.expect("reviews");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let before = deploys.get("reviews").await.expect("d").spec.expect("spec").template;
    apply_example(&client, &ns, "instrumented-service.yaml").await;
    let isvcs: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
    wait_obj("injected", &isvcs, "reviews", T, |i| {
        i.status.as_ref().and_then(|s| s.injected_target.as_ref()).is_some()
    })
    .await;
    assert_ne!(deploys.get("reviews").await.expect("d").spec.expect("spec").template, before);

    // helm uninstall deletes the operator: nobody is left to run the finalizer.
    drop(op);
    let released = telemetry_operator::uninstall::uninstall(&client, Some(&ns)).await.expect("uninstall");
    assert_eq!(released, 1);
    // The pipeline is deleted in the foreground: it (and so its CRD) stays until the garbage
    // collector has deleted its collector. This cluster has no garbage collector: it stays Terminating.
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let tp = tps.get_opt("main").await.expect("get pipeline");
    assert!(
        tp.as_ref()
            .is_none_or(|tp| tp.metadata.deletion_timestamp.is_some()
                && tp.finalizers().iter().any(|f| f == "foregroundDeletion")),
        "the pipeline is being deleted in the foreground: {:?}",
        tp.map(|tp| tp.metadata)
    );
    wait_gone("InstrumentedService released", &isvcs, "reviews", T).await;
    let d = deploys.get("reviews").await.expect("d");
    assert_eq!(d.spec.expect("spec").template, before, "the pod template is exactly as before injection");
    assert!(!injector_manages(&deploys.get("reviews").await.expect("d")));
    // The hook's command, run again (a retried hook), is harmless.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_telemetry-operator"))
        .arg("uninstall")
        .env("KUBECONFIG", apiserver().await.kubeconfig())
        .env("WATCH_NAMESPACE", &ns)
        .output()
        .await
        .expect("run telemetry-operator uninstall");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"released\":0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The operator runs the collector's own loader over the rendered config: a misspelt field in
/// `configOverrides` (which the schema cannot check: it is free-form) is refused naming its path,
/// and the collector that runs keeps its config and pods.
#[tokio::test]
async fn misspelt_override_is_refused_by_the_collectors_loader_and_nothing_rolls() {
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    let pipeline = json!({
        "apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
        "metadata": {"name": "p"},
        "spec": {"exporters": {"debug": {}}},
    });
    apply_as(&client, &ns, USER, &pipeline).await.expect("apply pipeline");
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let config_valid = |tp: &TelemetryPipeline, want: &str| {
        tp.status
            .as_ref()
            .is_some_and(|s| condition(Some(&s.conditions), "ConfigValid").is_some_and(|c| c.status == want))
    };
    wait_obj("ConfigValid=True", &tps, "p", T, |tp| config_valid(tp, "True")).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let before = wait_obj("collector Deployment", &deploys, "p-collector", T, |d| pipeline_hash(d).is_some()).await;
    let config_before = cms.get("p-collector").await.expect("ConfigMap").data;

    let mut bad = pipeline.clone();
    bad["spec"]["configOverrides"] = json!({"exporters": {"debug": {"verbosty": "detailed"}}});
    apply_as(&client, &ns, USER, &bad).await.expect("the schema accepts free-form overrides");
    let tp = wait_obj("ConfigValid=False", &tps, "p", T, |tp| config_valid(tp, "False")).await;
    let status = tp.status.expect("status");
    let cond = condition(Some(&status.conditions), "ConfigValid").expect("condition");
    assert_eq!(cond.reason, "InvalidConfig");
    assert!(
        cond.message.contains("exporters.debug.verbosty") && cond.message.contains("unknown field"),
        "{}",
        cond.message
    );
    assert_eq!(condition(Some(&status.conditions), "Degraded").map(|c| c.status.as_str()), Some("True"));

    let after = deploys.get("p-collector").await.expect("Deployment");
    assert_eq!(pipeline_hash(&after), pipeline_hash(&before), "the collector's pods must not roll");
    assert_eq!(cms.get("p-collector").await.expect("ConfigMap").data, config_before, "config must not change");

    // The loader's checks beyond field names reach the condition too: a processor the pipeline
    // names but nobody defines.
    bad["spec"]["configOverrides"] = json!({"service": {"pipelines": {"traces": {"processors": ["batch/missing"]}}}});
    apply_as(&client, &ns, USER, &bad).await.expect("apply");
    wait_obj("the undefined processor named", &tps, "p", T, |tp| {
        tp.status
            .as_ref()
            .and_then(|s| condition(Some(&s.conditions), "ConfigValid"))
            .is_some_and(|c| c.status == "False" && c.message.contains("batch/missing"))
    })
    .await;
}

/// The env entry `name` of a pod template's first container: its downward-API field path.
fn template_field_path(template: &k8s_openapi::api::core::v1::PodTemplateSpec, name: &str) -> Option<String> {
    let container = template.spec.as_ref()?.containers.first()?;
    let entry = container.env.iter().flatten().find(|e| e.name == name)?;
    entry.value_from.as_ref()?.field_ref.as_ref().map(|f| f.field_path.clone())
}

fn collector_config_of(cm: &ConfigMap) -> String {
    cm.data.as_ref().and_then(|d| d.get(CONFIG_KEY)).cloned().unwrap_or_default()
}

#[tokio::test]
async fn scraping_is_divided_per_node_and_by_shard_and_the_shards_follow_the_hpa() {
    use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use telemetry_operator::crd::{ScrapeMode, ScrapeStatus};
    let (client, ns) = setup().await;
    let _op = start_operator(&client, &ns);
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let pipeline = |name: &str, spec: Value| {
        json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
            "metadata": {"name": name}, "spec": spec})
    };
    let scrape_status = |tp: &TelemetryPipeline| tp.status.as_ref().and_then(|s| s.scrape.clone());

    // A daemonset agent discovers only its node's pods: the node name from the downward API in the
    // API server's field selector.
    apply_as(
        &client,
        &ns,
        USER,
        &pipeline(
            "agent",
            json!({"mode": "daemonset",
        "receivers": {"prometheus": {}}, "exporters": {"debug": {}}}),
        ),
    )
    .await
    .expect("agent");
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
    let ds = wait_obj("agent DaemonSet", &dss, "agent-collector", T, |_| true).await;
    let template = ds.spec.expect("spec").template;
    assert_eq!(template_field_path(&template, "K8S_NODE_NAME").as_deref(), Some("spec.nodeName"));
    let yaml = collector_config_of(&configs.get("agent-collector").await.expect("ConfigMap"));
    assert!(yaml.contains("field: spec.nodeName=${env:K8S_NODE_NAME}"), "{yaml}");
    assert!(!yaml.contains("hashmod"), "{yaml}");
    wait_obj("agent scrapes per node", &tps, "agent", T, |tp| {
        scrape_status(tp)
            == Some(ScrapeStatus { mode: ScrapeMode::PerNode, shards: None, namespaces: vec![ns.clone()] })
    })
    .await;
    // Static targets are not node-local: refused at apply time, naming the field.
    let err = apply_as(
        &client,
        &ns,
        USER,
        &pipeline(
            "static-agent",
            json!({"mode": "daemonset",
        "receivers": {"prometheus": {"staticTargets": ["db:9187"]}}, "exporters": {"debug": {}}}),
        ),
    )
    .await
    .expect_err("refused")
    .to_string();
    assert!(err.contains("spec.receivers.prometheus.staticTargets cannot be scraped by a daemonset"), "{err}");

    // Three replicas: a StatefulSet whose pods keep the targets hashing to their ordinal.
    apply_as(
        &client,
        &ns,
        USER,
        &pipeline(
            "gw",
            json!({"replicas": 3,
        "receivers": {"prometheus": {}}, "exporters": {"debug": {}}}),
        ),
    )
    .await
    .expect("gw");
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let sts = wait_obj("gw StatefulSet", &stss, "gw-collector", T, |_| true).await.spec.expect("spec");
    assert_eq!((sts.replicas, sts.service_name.as_deref()), (Some(3), Some("gw-headless")));
    assert_eq!(template_field_path(&sts.template, "K8S_POD_NAME").as_deref(), Some("metadata.name"));
    let yaml = collector_config_of(&configs.get("gw-collector").await.expect("ConfigMap"));
    for line in ["action: hashmod", "modulus: 3", "replacement: gw-collector-$$1", "regex: ${env:K8S_POD_NAME}"] {
        assert!(yaml.contains(line), "{line} in {yaml}");
    }
    wait_obj("gw sharded by 3", &tps, "gw", T, |tp| {
        scrape_status(tp)
            == Some(ScrapeStatus { mode: ScrapeMode::Sharded, shards: Some(3), namespaces: vec![ns.clone()] })
    })
    .await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    assert!(deploys.get_opt("gw-collector").await.expect("get").is_none());

    // Scaled to one replica (the pipeline's scale subresource): one collector scrapes everything,
    // as a Deployment, and the StatefulSet goes.
    tps.patch_scale("gw", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}})))
        .await
        .expect("scale tp");
    wait_obj("gw Deployment", &deploys, "gw-collector", T, |_| true).await;
    wait_gone("gw StatefulSet", &stss, "gw-collector", T).await;
    wait_obj("gw single", &tps, "gw", T, |tp| {
        scrape_status(tp)
            == Some(ScrapeStatus { mode: ScrapeMode::Single, shards: Some(1), namespaces: vec![ns.clone()] })
    })
    .await;
    let yaml = collector_config_of(&configs.get("gw-collector").await.expect("ConfigMap"));
    assert!(!yaml.contains("hashmod"), "{yaml}");

    // Autoscaled: the HPA scales the StatefulSet, and the modulus follows its replicas.
    apply_as(
        &client,
        &ns,
        USER,
        &pipeline(
            "edge",
            json!({
        "autoscaling": {"minReplicas": 2, "maxReplicas": 5},
        "receivers": {"prometheus": {}}, "exporters": {"debug": {}}}),
        ),
    )
    .await
    .expect("edge");
    let sts = wait_obj("edge StatefulSet", &stss, "edge-collector", T, |_| true).await;
    assert_eq!(sts.spec.and_then(|s| s.replicas), Some(1), "the API server's default, not ours");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let hpa = wait_obj("edge HPA", &hpas, "edge-collector", T, |_| true).await;
    assert_eq!(hpa.spec.scale_target_ref.kind, "StatefulSet");
    wait_obj("edge sharded by its one replica", &tps, "edge", T, |tp| {
        scrape_status(tp)
            == Some(ScrapeStatus { mode: ScrapeMode::Sharded, shards: Some(1), namespaces: vec![ns.clone()] })
    })
    .await;
    let hpa_manager = PatchParams { field_manager: Some("horizontal-pod-autoscaler".into()), ..PatchParams::default() };
    stss.patch_scale("edge-collector", &hpa_manager, &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .expect("scale as the HPA does");
    wait_obj("modulus 4", &configs, "edge-collector", T, |cm| collector_config_of(cm).contains("modulus: 4")).await;
    wait_obj("edge sharded by 4", &tps, "edge", T, |tp| {
        scrape_status(tp)
            == Some(ScrapeStatus { mode: ScrapeMode::Sharded, shards: Some(4), namespaces: vec![ns.clone()] })
    })
    .await;
    let sts = stss.get("edge-collector").await.expect("edge StatefulSet");
    assert_eq!(sts.spec.and_then(|s| s.replicas), Some(4), "the HPA's replicas are not reverted");
}

#[tokio::test]
async fn persistent_queues_are_refused_where_they_would_lose_data_and_live_on_an_empty_dir_or_claims() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let (client, ns) = setup().await;
    let tps: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
    let pipeline = |name: &str, spec: Value| {
        json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline",
            "metadata": {"name": name}, "spec": spec})
    };
    let otlp = json!({"otlp": [{"name": "alloy", "endpoint": "http://alloy:4317"}]});

    // Refused by the API server, naming the field: what would acknowledge telemetry before it is
    // on disk, what would make the byte bound meaningless, and what a daemonset cannot have.
    for (spec, expected) in [
        (
            json!({"persistence": {}, "processors": {"batch": {}}, "exporters": otlp}),
            "spec.processors.batch cannot be set with spec.persistence",
        ),
        (
            json!({"persistence": {}, "exporters": {"otlp": [{"name": "a", "endpoint": "http://a:4317", "queue": {"queueSize": 10}}]}}),
            "queueSize cannot be set",
        ),
        (
            json!({"persistence": {}, "exporters": {"otlp": [{"name": "a", "endpoint": "http://a:4317", "queue": {"enabled": false}}]}}),
            "the queue must stay enabled",
        ),
        (
            json!({"persistence": {}, "exporters": {"debug": {}}}),
            "spec.persistence needs at least one spec.exporters.otlp",
        ),
        (
            json!({"mode": "daemonset", "persistence": {"volume": "PersistentVolumeClaim"}, "exporters": otlp}),
            "PersistentVolumeClaim is for deployment mode only",
        ),
        (
            json!({"persistence": {"storageClassName": "ssd"}, "exporters": otlp}),
            "spec.persistence.storageClassName is for volume PersistentVolumeClaim only",
        ),
        (
            json!({"persistence": {"size": "1Mi"}, "exporters": otlp}),
            "spec.persistence.size must be a quantity between 16Mi and 1Pi",
        ),
        (json!({"persistence": {"size": "lots"}, "exporters": otlp}), "spec.persistence.size"),
    ] {
        let err =
            apply_as(&client, &ns, USER, &pipeline("refused", spec.clone())).await.expect_err("refused").to_string();
        assert!(err.contains(expected), "{spec}: {err}");
    }

    let _op = start_operator(&client, &ns);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);

    // EmptyDir: still a Deployment, its pods mount a size-limited emptyDir where the config's
    // file_storage keeps every OTLP queue, and no batch processor acknowledges before the queue.
    apply_as(&client, &ns, USER, &pipeline("q", json!({"persistence": {"size": "256Mi"}, "exporters": otlp})))
        .await
        .expect("emptyDir pipeline");
    let d = wait_obj("q Deployment", &deploys, "q-collector", T, |_| true).await;
    let pod = d.spec.expect("spec").template.spec.expect("pod");
    let queue = pod.volumes.expect("volumes").into_iter().find(|v| v.name == "queue").expect("queue volume");
    assert_eq!(queue.empty_dir.and_then(|e| e.size_limit).map(|q| q.0).as_deref(), Some("256Mi"));
    let yaml = collector_config_of(&configs.get("q-collector").await.expect("ConfigMap"));
    for line in ["storage: file_storage", "sizer: bytes", "directory: /var/lib/otelcol/file_storage"] {
        assert!(yaml.contains(line), "{line} in {yaml}");
    }
    assert!(!yaml.contains("batch"), "{yaml}");

    // Claims: a StatefulSet with one claim per pod, deleted with the pipeline.
    apply_as(
        &client,
        &ns,
        USER,
        &pipeline("pq", json!({"persistence": {"volume": "PersistentVolumeClaim", "size": "2Gi"}, "exporters": otlp})),
    )
    .await
    .expect("claims pipeline");
    let sts = wait_obj("pq StatefulSet", &stss, "pq-collector", T, |_| true).await;
    let spec = sts.spec.clone().expect("spec");
    let claim = spec.volume_claim_templates.as_deref().and_then(|c| c.first()).expect("claim template");
    assert_eq!(claim.metadata.name.as_deref(), Some("queue"));
    let requested = claim.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref());
    assert_eq!(requested.and_then(|r| r.get("storage")).map(|q| q.0.as_str()), Some("2Gi"));
    assert_eq!(spec.persistent_volume_claim_retention_policy.and_then(|p| p.when_deleted).as_deref(), Some("Delete"));
    // Claim templates are immutable: changing the size is refused by the API server, naming the field...
    let err = apply_as(
        &client,
        &ns,
        USER,
        &pipeline("pq", json!({"persistence": {"volume": "PersistentVolumeClaim", "size": "3Gi"}, "exporters": otlp})),
    )
    .await
    .expect_err("size change refused")
    .to_string();
    assert!(err.contains("spec.persistence.size and spec.persistence.storageClassName cannot change"), "{err}");
    // ...and back to EmptyDir, the gateway is a Deployment again and the StatefulSet (with its
    // claims) goes.
    apply_as(&client, &ns, USER, &pipeline("pq", json!({"persistence": {}, "exporters": otlp})))
        .await
        .expect("emptyDir");
    wait_obj("pq Deployment", &deploys, "pq-collector", T, |_| true).await;
    wait_gone("pq StatefulSet", &stss, "pq-collector", T).await;

    // A sharded StatefulSet that gains claims is recreated (its claim templates cannot be updated),
    // instead of an apply refused forever.
    let shards = json!({"replicas": 2, "receivers": {"prometheus": {}}, "exporters": otlp});
    apply_as(&client, &ns, USER, &pipeline("sh", shards.clone())).await.expect("sharded");
    let before = wait_obj("sh StatefulSet", &stss, "sh-collector", T, |_| true).await;
    let mut with_claims = shards;
    with_claims["persistence"] = json!({"volume": "PersistentVolumeClaim"});
    apply_as(&client, &ns, USER, &pipeline("sh", with_claims)).await.expect("claims added");
    let after = wait_obj("sh StatefulSet with claims", &stss, "sh-collector", T, |s| {
        s.spec.as_ref().and_then(|s| s.volume_claim_templates.as_ref()).is_some_and(|c| c.len() == 1)
    })
    .await;
    assert_ne!(after.uid(), before.uid(), "recreated, not updated");
    assert_eq!(after.spec.and_then(|s| s.replicas), Some(2));
    let ready = wait_obj("sh config valid", &tps, "sh", T, |tp| pipeline_condition_is(tp, "ConfigValid", "True")).await;
    assert!(ready.status.is_some());
}
