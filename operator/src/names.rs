//! Names, labels and in-cluster addresses of a pipeline's children: the vocabulary every renderer
//! (workloads, Services, RoleBindings, NetworkPolicies) and the reconcilers share, kept apart from
//! them so that no renderer depends on another for a name.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::crd::{Endpoints, TelemetryPipeline};

/// Label selecting everything this operator manages (limits the operator's watches).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "telemetry-operator");

/// Label naming the pipeline a child (and each collector pod) belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Name shared by all children of a pipeline.
pub fn child_name(pipeline: &str) -> String {
    format!("{pipeline}-collector")
}

/// Labels on every child; the first two select the collector pods.
pub fn labels(pipeline: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "telemetry-collector".to_string()),
        (INSTANCE_LABEL.to_string(), pipeline.to_string()),
        ("app.kubernetes.io/component".to_string(), "collector".to_string()),
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
    ])
}

/// The labels selecting a pipeline's collector pods (a workload's selector, immutable once created).
pub fn selector_labels(pipeline: &str) -> BTreeMap<String, String> {
    labels(pipeline).into_iter().take(2).collect()
}

/// Label selector (`k=v,k=v`) of the collector pods of a pipeline, for listing them.
pub fn pod_selector(pipeline: &str) -> String {
    selector_labels(pipeline).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// In-cluster OTLP endpoints of a pipeline.
pub fn endpoints(tp: &TelemetryPipeline) -> Endpoints {
    let host = format!("{}.{}.svc", child_name(&tp.name_any()), tp.namespace().unwrap_or_default());
    Endpoints {
        grpc: format!("http://{host}:{}", tp.spec.receivers.otlp.grpc_port),
        http: format!("http://{host}:{}", tp.spec.receivers.otlp.http_port),
    }
}
