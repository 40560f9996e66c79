//! Helpers shared by the operator's integration (API server) and kwok test binaries.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Deserialize;
use serde_json::Value;
use telemetry_operator::context::Config;
use telemetry_operator::metrics::Metrics;
use telemetry_tests::wait_for;

/// Field manager the tests use for "user" objects.
pub const USER: &str = "test-user";

/// Applies both CRDs (idempotent, concurrent-safe) and waits until they are Established.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in telemetry_operator::crdgen::crds() {
        let name = crd.metadata.name.clone().expect("crd name");
        api.patch(&name, &PatchParams::apply("telemetry-tests").force(), &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("installing CRD {name}: {e}"));
        wait_for(&format!("CRD {name} Established"), Duration::from_secs(30), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
            }
        })
        .await;
    }
}

/// The operator running in-process, scoped to one namespace; stopped when dropped.
pub struct Operator {
    handle: tokio::task::JoinHandle<()>,
    pub metrics: Metrics,
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts the controllers for `namespace` (no leader election: each test owns its namespace).
pub fn start_operator(client: &Client, namespace: &str) -> Operator {
    start_operator_with(client, namespace, Config::default())
}

/// Starts the controllers for `namespace` with `config` (its namespace replaced by `namespace`).
pub fn start_operator_with(client: &Client, namespace: &str, config: Config) -> Operator {
    let metrics = Metrics::default();
    let config = Config { namespace: Some(namespace.to_string()), ..config };
    let handle = tokio::spawn(telemetry_operator::run_controllers(client.clone(), config, metrics.clone()));
    Operator { handle, metrics }
}

/// Path of a file under `examples/`.
pub fn example_path(file: &str) -> PathBuf {
    telemetry_tests::repo_root().join("examples").join(file)
}

/// The YAML documents of an example file.
pub fn example(file: &str) -> Vec<Value> {
    let path = example_path(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// API resource of the kinds the examples and tests use.
pub fn api_resource(kind: &str) -> ApiResource {
    let gvk = match kind {
        "Secret" | "Service" => GroupVersionKind::gvk("", "v1", kind),
        "Deployment" | "StatefulSet" | "DaemonSet" => GroupVersionKind::gvk("apps", "v1", kind),
        "TelemetryPipeline" | "InstrumentedService" => {
            GroupVersionKind::gvk("telemetry.thereview.dev", "v1alpha1", kind)
        }
        other => panic!("unexpected kind {other}"),
    };
    ApiResource::from_gvk(&gvk)
}

/// Server-side applies one document into `namespace` with `manager`.
pub async fn apply_as(client: &Client, namespace: &str, manager: &str, doc: &Value) -> kube::Result<DynamicObject> {
    let kind = doc["kind"].as_str().expect("kind");
    let name = doc["metadata"]["name"].as_str().expect("name");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &api_resource(kind));
    api.patch(name, &PatchParams::apply(manager).force(), &Patch::Apply(doc)).await
}

/// Applies every document of an example file as the test user.
pub async fn apply_example(client: &Client, namespace: &str, file: &str) {
    for doc in example(file) {
        apply_as(client, namespace, USER, &doc).await.unwrap_or_else(|e| panic!("applying {file}: {e}"));
    }
}

/// Status of the named condition of a resource's status, if present.
pub fn condition<'a>(
    obj_status: Option<&'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    obj_status?.iter().find(|c| c.type_ == type_)
}

/// Waits until `get` returns an object for which `pred` holds, and returns it.
pub async fn wait_obj<K, P>(what: &str, api: &Api<K>, name: &str, timeout: Duration, pred: P) -> K
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    P: Fn(&K) -> bool,
{
    wait_for(what, timeout, || async { api.get_opt(name).await.ok().flatten().filter(|o| pred(o)) }).await
}

/// Waits until the object is gone.
pub async fn wait_gone<K>(what: &str, api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(what, timeout, || async { matches!(api.get_opt(name).await, Ok(None)).then_some(()) }).await
}

/// Env vars (name → value) of the first container of a Deployment's pod template.
pub fn env_of(d: &k8s_openapi::api::apps::v1::Deployment) -> std::collections::BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| &p.containers[0])
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

/// Pod-template annotations of a Deployment.
pub fn template_annotations(d: &k8s_openapi::api::apps::v1::Deployment) -> std::collections::BTreeMap<String, String> {
    d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.annotations.clone()).unwrap_or_default()
}

/// Pod-template labels of a Deployment.
pub fn template_labels(d: &k8s_openapi::api::apps::v1::Deployment) -> std::collections::BTreeMap<String, String> {
    d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default()
}
