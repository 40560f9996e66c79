//! The kwok cluster behaves like a real cluster for workloads: controllers roll
//! Deployments out on fake nodes until they are Available, and Helm can install and
//! wait on a chart there.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::PostParams;
use telemetry_tests::{kwok, repo_root, tool, wait_for};

#[tokio::test]
async fn a_two_replica_deployment_becomes_available() {
    let ns = kwok().await.namespace().await;
    let deployments = Api::<Deployment>::namespaced(ns.client.clone(), &ns.name);
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "registry.invalid/web:1" }] }
            }
        }
    }))
    .expect("valid Deployment");
    deployments.create(&PostParams::default(), &deployment).await.expect("create");
    wait_for("2 available replicas", Duration::from_secs(60), || async {
        let status = deployments.get("web").await.ok()?.status?;
        (status.available_replicas == Some(2)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn helm_install_wait_succeeds_and_uninstall_removes_the_release() {
    let cluster = kwok().await;
    let ns = cluster.namespace().await;
    let helm = |args: &[&str]| {
        let output = Command::new(tool("helm"))
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["--namespace", &ns.name])
            .args(args)
            .output()
            .expect("helm runs");
        assert!(output.status.success(), "helm {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    };
    let chart = repo_root().join("tests/fixtures/trivial-chart");
    let chart = chart.to_str().expect("UTF-8 path");
    helm(&["install", "demo", chart, "--wait", "--timeout", "90s"]);

    let deployments = Api::<Deployment>::namespaced(ns.client.clone(), &ns.name);
    let status = deployments.get("demo-web").await.expect("the chart's Deployment").status.expect("status");
    assert_eq!(status.available_replicas, Some(2), "--wait returned only once the Deployment was Available");

    helm(&["uninstall", "demo", "--wait", "--timeout", "60s"]);
    assert!(deployments.get_opt("demo-web").await.expect("get").is_none(), "uninstall removed the Deployment");
}
