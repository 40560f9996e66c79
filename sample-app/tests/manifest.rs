//! `examples/reviews-deployment.yaml` against a real API server's Pod Security admission: a
//! namespace enforcing (and warning on) `restricted` accepts it without a warning.

use std::process::Command;

use telemetry_tests::{apiserver, repo_root, tool};

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(tool("kubectl")).arg("--kubeconfig").arg(kubeconfig).args(args).output().expect("run kubectl")
}

#[tokio::test]
async fn example_deployment_passes_pod_security_restricted() {
    let cluster = apiserver().await;
    let ns = cluster.namespace().await;
    let kc = cluster.kubeconfig();
    let out = kubectl(
        kc,
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest = repo_root().join("examples/reviews-deployment.yaml");
    let manifest = manifest.to_string_lossy();
    // Workloads get PodSecurity warnings (pods would be refused); a server-side dry run goes
    // through admission without creating anything.
    let out = kubectl(kc, &["apply", "--dry-run=server", "-n", &ns.name, "-f", &manifest]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("PodSecurity"), "{stderr}");
    // And the pod itself, as the ReplicaSet would create it, is admitted under `enforce`.
    let out = kubectl(kc, &["create", "--dry-run=client", "-o", "json", "-f", &manifest]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // One JSON document per object of the file: the Deployment and its Service.
    let deployment: serde_json::Value = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<serde_json::Value>()
        .map(|doc| doc.expect("kubectl prints JSON"))
        .find(|doc| doc["kind"] == "Deployment")
        .expect("the example has a Deployment");
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reviews-pod"},
        "spec": deployment["spec"]["template"]["spec"],
    });
    // The API-server-only cluster has no controller creating the `default` service account.
    let out = kubectl(kc, &["create", "serviceaccount", "default", "-n", &ns.name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().expect("tempdir");
    let pod_file = dir.path().join("pod.json");
    std::fs::write(&pod_file, pod.to_string()).expect("write pod");
    let out = kubectl(kc, &["apply", "--dry-run=server", "-n", &ns.name, "-f", &pod_file.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the restricted namespace refused the pod: {stderr}");
}
