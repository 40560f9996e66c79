//! The repository's `examples/`, as the node tests and the demo apply them.

use serde_json::Value;

use crate::cluster::Cluster;
use crate::tools::repo_root;

/// `examples/pipeline.yaml` (its Secret and its `main` TelemetryPipeline) as a JSON `List`, with every
/// exporter that points outside the cluster (`https://...`, Grafana Cloud) removed: tests send
/// nothing anywhere but to addresses the project creates (the node has no route out anyway).
/// The in-cluster `alloy` exporter stays, for the Alloy stand-in to receive.
pub fn local_only_example_pipeline(cluster: &Cluster) -> Value {
    let path = repo_root().join("examples/pipeline.yaml");
    let path = path.to_str().expect("UTF-8 path");
    let rendered = cluster.kubectl(&["create", "--dry-run=client", "-o", "json", "-f", path]);
    // One JSON document per object of the file.
    let mut items: Vec<Value> = serde_json::Deserializer::from_str(&rendered)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("kubectl prints JSON");
    for item in &mut items {
        // The dry run fills in kubectl's current namespace; the caller applies with its own.
        if let Some(metadata) = item["metadata"].as_object_mut() {
            metadata.remove("namespace");
        }
        if let Some(exporters) = item.pointer_mut("/spec/exporters/otlp").and_then(Value::as_array_mut) {
            exporters.retain(|exporter| !exporter["endpoint"].as_str().unwrap_or_default().starts_with("https://"));
        }
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    assert!(!list.to_string().contains("https://"), "no outside endpoint is left in the example");
    list
}
