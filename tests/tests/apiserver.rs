//! The API-server-only control plane is a real Kubernetes API: readiness, version,
//! core objects, and CustomResourceDefinitions with their objects.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use telemetry_tests::{apiserver, tool, wait_for};

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let output =
        Command::new(tool("kubectl")).arg("--kubeconfig").arg(kubeconfig).args(args).output().expect("kubectl runs");
    assert!(output.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("kubectl prints UTF-8")
}

#[tokio::test]
async fn kubectl_sees_a_ready_v1_36_server_through_the_written_kubeconfig() {
    let kubeconfig = apiserver().await.kubeconfig();
    assert_eq!(kubectl(kubeconfig, &["get", "--raw", "/readyz"]), "ok");
    let version = kubectl(kubeconfig, &["version", "-o", "json"]);
    let version: serde_json::Value = serde_json::from_str(&version).expect("JSON");
    let server = version["serverVersion"]["gitVersion"].as_str().expect("server version");
    assert!(server.starts_with("v1.36."), "server version {server}");
}

#[tokio::test]
async fn a_configmap_is_written_and_read_back() {
    let ns = apiserver().await.namespace().await;
    let api = Api::<ConfigMap>::namespaced(ns.client.clone(), &ns.name);
    let config_map = ConfigMap {
        metadata: ObjectMeta { name: Some("settings".into()), ..ObjectMeta::default() },
        data: Some(BTreeMap::from([("collector.yaml".to_string(), "receivers: {}\n".to_string())])),
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &config_map).await.expect("create");
    let read = api.get("settings").await.expect("get");
    assert_eq!(read.data, config_map.data);
    assert!(read.metadata.uid.is_some(), "the server assigns a uid");
}

#[tokio::test]
async fn a_crd_is_registered_and_served_with_its_schema_enforced() {
    let ns = apiserver().await.namespace().await;
    // A unique group per run keeps the cluster-scoped CRD from clashing with other tests.
    let group = format!("{}.fixture.thereview.dev", ns.name);
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("widgets.{group}") },
        "spec": {
            "group": group,
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object", "required": ["port"],
                        "properties": { "port": { "type": "integer", "minimum": 1, "maximum": 65535 } }
                    }}
                }}
            }]
        }
    }))
    .expect("valid CRD");
    let crds = Api::<CustomResourceDefinition>::all(ns.client.clone());
    crds.create(&PostParams::default(), &crd).await.expect("create CRD");
    wait_for("the CRD to be Established", Duration::from_secs(30), || async {
        let crd = crds.get(&crd.name_any()).await.ok()?;
        let established = crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True");
        established.then_some(())
    })
    .await;

    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(&group, "v1", "Widget"), "widgets");
    let widgets = Api::<DynamicObject>::namespaced_with(ns.client.clone(), &ns.name, &resource);
    let widget = |name: &str, port: i64| {
        DynamicObject::new(name, &resource).data(serde_json::json!({ "spec": { "port": port } }))
    };
    // Discovery of a new group can lag Established by a moment: retry the first create.
    wait_for("the Widget API to accept objects", Duration::from_secs(30), || async {
        widgets.create(&PostParams::default(), &widget("good", 4317)).await.ok()
    })
    .await;
    let read = widgets.get("good").await.expect("get widget");
    assert_eq!(read.data["spec"]["port"], 4317);

    let refused = widgets.create(&PostParams::default(), &widget("bad", 70000)).await;
    let message = refused.expect_err("port out of range is refused").to_string();
    assert!(message.contains("spec.port"), "the error names the field: {message}");
}
