//! Pure rendering of a gateway pipeline's availability and exposure children: the
//! HorizontalPodAutoscaler (`spec.autoscaling`), the PodDisruptionBudget (more than one replica), and
//! the headless Service beside the ClusterIP one (for gRPC clients that balance per connection, they
//! resolve every pod). The main Service's type and node ports are rendered in `resources::service`.
//! Also which kind of workload a pipeline runs (a Deployment, a StatefulSet when its pods need
//! stable ordinals or claims, a DaemonSet for agents).
//!
//! Who owns `replicas`: without autoscaling, the operator (from `spec.replicas`, which the pipeline's
//! scale subresource also writes, so `kubectl scale tp` works). With autoscaling, the HPA: the
//! Deployment is applied without `replicas`, so the operator's field manager does not own it and an
//! HPA's change is never reverted.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::crd::{PipelineMode, TelemetryPipeline, TelemetryPipelineSpec};
use crate::names::{child_name, selector_labels};

/// Which kind of workload a pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
}

impl WorkloadKind {
    /// The kind's name (`scaleTargetRef.kind` of an HPA).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
        }
    }
}

/// The kind of workload the pipeline's spec calls for.
pub fn workload_kind(spec: &TelemetryPipelineSpec) -> WorkloadKind {
    match spec.mode {
        PipelineMode::Daemonset => WorkloadKind::DaemonSet,
        PipelineMode::Deployment if crate::scrape::sharded_workload(spec) || crate::persistence::uses_claims(spec) => {
            WorkloadKind::StatefulSet
        }
        PipelineMode::Deployment => WorkloadKind::Deployment,
    }
}

/// Name of the headless Service: `<pipeline>-headless` (the 53-character pipeline name limit leaves
/// room for this suffix within a Service name's 63).
pub fn headless_name(pipeline: &str) -> String {
    format!("{pipeline}-headless")
}

/// Whether the pipeline is a gateway whose replicas an HPA owns.
pub fn autoscaled(tp: &TelemetryPipeline) -> bool {
    tp.spec.mode == PipelineMode::Deployment && tp.spec.autoscaling.as_ref().is_some_and(|a| a.enabled)
}

/// The HPA of an autoscaled gateway (CPU and/or memory utilisation targets).
pub fn hpa(tp: &TelemetryPipeline, meta: ObjectMeta) -> Option<HorizontalPodAutoscaler> {
    let a = tp.spec.autoscaling.as_ref().filter(|_| autoscaled(tp))?;
    let resource = |name: &str, target: i32| MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: name.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(target),
                ..Default::default()
            },
        }),
        ..Default::default()
    };
    let mut metrics = Vec::new();
    // No target at all: CPU at 80 %, the usual default.
    let cpu = a.target_cpu_utilization.or(a.target_memory_utilization.is_none().then_some(80));
    if let Some(cpu) = cpu {
        metrics.push(resource("cpu", cpu));
    }
    if let Some(memory) = a.target_memory_utilization {
        metrics.push(resource("memory", memory));
    }
    Some(HorizontalPodAutoscaler {
        metadata: meta,
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                // A scraping gateway is a StatefulSet (`scrape`); its shard count follows the HPA.
                kind: workload_kind(&tp.spec).as_str().into(),
                name: child_name(&tp.name_any()),
            },
            min_replicas: Some(a.min_replicas),
            max_replicas: a.max_replicas,
            metrics: Some(metrics),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// The PodDisruptionBudget of a gateway that can run more than one replica: a voluntary disruption
/// (a node drain) takes at most one collector away at a time.
pub fn pdb(tp: &TelemetryPipeline, meta: ObjectMeta) -> Option<PodDisruptionBudget> {
    let max = match tp.spec.autoscaling.as_ref().filter(|_| autoscaled(tp)) {
        Some(a) => a.max_replicas,
        None => tp.spec.replicas.unwrap_or(1),
    };
    (tp.spec.mode == PipelineMode::Deployment && max > 1).then(|| PodDisruptionBudget {
        metadata: meta,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(selector_labels(&tp.name_any())), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The headless Service: same selector and ports as `service`, `clusterIP: None`, so DNS returns
/// every collector pod.
pub fn headless(tp: &TelemetryPipeline, service: &Service, meta: ObjectMeta) -> Service {
    let ports = service.spec.as_ref().and_then(|s| s.ports.clone()).map(|ports| {
        ports.into_iter().map(|p| k8s_openapi::api::core::v1::ServicePort { node_port: None, ..p }).collect()
    });
    Service {
        metadata: ObjectMeta { name: Some(headless_name(&tp.name_any())), ..meta },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector_labels(&tp.name_any())),
            ports,
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(yaml: &str) -> TelemetryPipeline {
        TelemetryPipeline::new("main", serde_yaml::from_str(yaml).expect("spec"))
    }

    #[test]
    fn autoscaling_renders_an_hpa_and_a_pdb_for_its_maximum() {
        let p = tp(
            "autoscaling: {minReplicas: 2, maxReplicas: 5, targetCpuUtilization: 70, targetMemoryUtilization: 80}\nexporters: {debug: {}}",
        );
        assert!(autoscaled(&p));
        let h = hpa(&p, ObjectMeta::default()).expect("hpa");
        let spec = h.spec;
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 5));
        assert_eq!(spec.scale_target_ref.name, "main-collector");
        assert_eq!(spec.scale_target_ref.kind, "Deployment");
        let names: Vec<_> =
            spec.metrics.unwrap_or_default().into_iter().filter_map(|m| m.resource.map(|r| r.name)).collect();
        assert_eq!(names, ["cpu", "memory"]);
        assert!(pdb(&p, ObjectMeta::default()).is_some());
    }

    #[test]
    fn the_hpa_of_a_scraping_gateway_scales_its_statefulset() {
        let p = tp("autoscaling: {maxReplicas: 5}\nreceivers: {prometheus: {}}\nexporters: {debug: {}}");
        let h = hpa(&p, ObjectMeta::default()).expect("hpa");
        assert_eq!(h.spec.scale_target_ref.kind, "StatefulSet");
    }

    #[test]
    fn a_single_replica_or_an_agent_gets_no_pdb_and_no_hpa() {
        assert!(pdb(&tp("exporters: {debug: {}}"), ObjectMeta::default()).is_none());
        assert!(pdb(&tp("replicas: 3\nexporters: {debug: {}}"), ObjectMeta::default()).is_some());
        let agent = tp("mode: daemonset\nexporters: {debug: {}}");
        assert!(pdb(&agent, ObjectMeta::default()).is_none());
        assert!(hpa(&agent, ObjectMeta::default()).is_none());
        assert!(!autoscaled(&tp("autoscaling: {enabled: false, maxReplicas: 3}\nexporters: {debug: {}}")));
    }

    #[test]
    fn headless_service_resolves_every_pod() {
        let p = tp("exporters: {debug: {}}");
        let main = crate::resources::service(&p);
        let h = headless(&p, &main, ObjectMeta::default());
        assert_eq!(h.metadata.name.as_deref(), Some("main-headless"));
        let spec = h.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.ports.map(|p| p.len()), main.spec.and_then(|s| s.ports).map(|p| p.len()));
    }
}
