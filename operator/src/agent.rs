//! Pure decisions that make a `daemonset` pipeline a node-local agent: a workload's telemetry goes to
//! the collector on its own node, never across nodes.
//!
//! Two ways get it there. The Service has `internalTrafficPolicy: Local` in daemonset mode, so
//! kube-proxy sends a pod's traffic to the Service only to an endpoint on the pod's node (and drops it
//! when the node has no ready agent, rather than crossing nodes). With `spec.agent.hostPort` the
//! collector's OTLP ports are also opened on the node's IP, and the endpoint injected into workloads
//! can be that IP (`spec.agent.endpoint: NodeIP`): `http://$(OTEL_NODE_IP):4317`, where `OTEL_NODE_IP`
//! comes from the downward API (`status.hostIP`) and Kubernetes expands the reference when it starts
//! the container. That path needs neither DNS nor kube-proxy.
//!
//! The rollout follows: without host ports an agent rolls surge-first (`maxSurge: 1`), so a node always
//! has a ready agent while it is replaced; with host ports the new pod cannot bind them beside the old
//! one, so it is `maxUnavailable: 1` (each node briefly has no agent, and its workloads' exporters
//! retry or drop meanwhile).

use k8s_openapi::api::apps::v1::{DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::{AgentEndpoint, Endpoints, PipelineMode, TelemetryPipeline, TelemetryPipelineSpec};
use crate::names;

/// Env var carrying the node's IP in an attached workload (downward API `status.hostIP`); the name
/// the OpenTelemetry Operator uses for the same purpose.
pub const NODE_IP_ENV: &str = "OTEL_NODE_IP";

/// Downward API field of the node's IP.
pub const NODE_IP_FIELD: &str = "status.hostIP";

/// Whether the collector's OTLP ports are opened on the node (daemonset mode and `spec.agent.hostPort`;
/// CEL refuses the setting in deployment mode, this ignores it there all the same).
pub fn host_ports(spec: &TelemetryPipelineSpec) -> bool {
    spec.mode == PipelineMode::Daemonset && spec.agent.as_ref().is_some_and(|a| a.host_port)
}

/// How attached workloads reach the pipeline: `spec.agent.endpoint`, by default the node's IP when the
/// ports are opened there, else the Service. A gateway is always reached through its Service.
pub fn endpoint_choice(spec: &TelemetryPipelineSpec) -> AgentEndpoint {
    if spec.mode != PipelineMode::Daemonset {
        return AgentEndpoint::Service;
    }
    let default = if host_ports(spec) { AgentEndpoint::NodeIp } else { AgentEndpoint::Service };
    match spec.agent.as_ref().and_then(|a| a.endpoint).unwrap_or(default) {
        // CEL refuses NodeIP without host ports; never hand out an endpoint nothing listens on.
        AgentEndpoint::NodeIp if !host_ports(spec) => AgentEndpoint::Service,
        chosen => chosen,
    }
}

/// `spec.internalTrafficPolicy` of the collector's Service: `Local` for an agent. `None` for a gateway
/// (left to the API server's default, `Cluster`, which also resets it after a switch of mode).
pub fn internal_traffic_policy(spec: &TelemetryPipelineSpec) -> Option<String> {
    (spec.mode == PipelineMode::Daemonset).then(|| "Local".to_string())
}

/// The DaemonSet's update strategy: surge-first unless host ports forbid two pods on one node.
pub fn update_strategy(spec: &TelemetryPipelineSpec) -> DaemonSetUpdateStrategy {
    let (max_surge, max_unavailable) = if host_ports(spec) { (0, 1) } else { (1, 0) };
    DaemonSetUpdateStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDaemonSet {
            max_surge: Some(IntOrString::Int(max_surge)),
            max_unavailable: Some(IntOrString::Int(max_unavailable)),
        }),
    }
}

/// The OTLP endpoints given to the workloads attached to a pipeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppEndpoints {
    /// OTLP/gRPC and OTLP/HTTP URLs; they reference `$(OTEL_NODE_IP)` when `node_ip` is set.
    pub urls: Endpoints,
    /// Whether the URLs are the node's IP, which the workload then gets as [`NODE_IP_ENV`] from the
    /// downward API (defined before the endpoint that references it).
    pub node_ip: bool,
}

/// What attached workloads are given: the Service's in-cluster URLs, or the node's IP and the host
/// ports ([`endpoint_choice`]).
pub fn app_endpoints(tp: &TelemetryPipeline) -> AppEndpoints {
    let spec = &tp.spec;
    match endpoint_choice(spec) {
        AgentEndpoint::Service => AppEndpoints { urls: names::endpoints(tp), node_ip: false },
        AgentEndpoint::NodeIp => {
            // A `$(VAR)` reference, expanded by the kubelet when it starts the container.
            let host = format!("$({NODE_IP_ENV})");
            AppEndpoints {
                urls: Endpoints {
                    grpc: format!("http://{host}:{}", spec.receivers.otlp.grpc_port),
                    http: format!("http://{host}:{}", spec.receivers.otlp.http_port),
                },
                node_ip: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(yaml: &str) -> TelemetryPipeline {
        let mut tp = TelemetryPipeline::new("main", serde_yaml::from_str(yaml).expect("spec"));
        tp.metadata.namespace = Some("obs".into());
        tp
    }

    #[test]
    fn the_node_ip_is_the_default_endpoint_only_with_host_ports() {
        let agent = tp("mode: daemonset\nagent: {hostPort: true}\nexporters: {debug: {}}");
        assert!(host_ports(&agent.spec));
        assert_eq!(endpoint_choice(&agent.spec), AgentEndpoint::NodeIp);
        let eps = app_endpoints(&agent);
        assert!(eps.node_ip);
        assert_eq!(eps.urls.grpc, "http://$(OTEL_NODE_IP):4317");
        assert_eq!(eps.urls.http, "http://$(OTEL_NODE_IP):4318");

        let service = tp("mode: daemonset\nagent: {hostPort: true, endpoint: Service}\nexporters: {debug: {}}");
        assert_eq!(app_endpoints(&service), AppEndpoints { urls: names::endpoints(&service), node_ip: false });

        // Without host ports nothing listens on the node's IP: the Service, node-local by its policy.
        let plain = tp("mode: daemonset\nexporters: {debug: {}}");
        assert!(!host_ports(&plain.spec));
        assert_eq!(endpoint_choice(&plain.spec), AgentEndpoint::Service);
        assert_eq!(app_endpoints(&plain).urls.grpc, "http://main-collector.obs.svc:4317");
        let refused_by_cel = tp("mode: daemonset\nagent: {endpoint: NodeIP}\nexporters: {debug: {}}");
        assert_eq!(endpoint_choice(&refused_by_cel.spec), AgentEndpoint::Service);
    }

    #[test]
    fn a_gateway_is_reached_through_its_service_and_opens_no_host_ports() {
        let gateway = tp("agent: {hostPort: true, endpoint: NodeIP}\nexporters: {debug: {}}");
        assert!(!host_ports(&gateway.spec));
        assert_eq!(endpoint_choice(&gateway.spec), AgentEndpoint::Service);
        assert!(!app_endpoints(&gateway).node_ip);
        assert_eq!(internal_traffic_policy(&gateway.spec), None);
    }

    #[test]
    fn custom_ports_follow_into_the_node_ip_endpoint() {
        let agent =
            tp("mode: daemonset\nagent: {hostPort: true}\nreceivers: {otlp: {grpcPort: 14317, httpPort: 14318}}");
        assert_eq!(app_endpoints(&agent).urls.grpc, "http://$(OTEL_NODE_IP):14317");
        assert_eq!(app_endpoints(&agent).urls.http, "http://$(OTEL_NODE_IP):14318");
    }

    #[test]
    fn an_agent_rolls_surge_first_unless_host_ports_forbid_two_pods_per_node() {
        let surge = update_strategy(&tp("mode: daemonset").spec).rolling_update.expect("rolling");
        assert_eq!((surge.max_surge, surge.max_unavailable), (Some(IntOrString::Int(1)), Some(IntOrString::Int(0))));
        let ports =
            update_strategy(&tp("mode: daemonset\nagent: {hostPort: true}").spec).rolling_update.expect("rolling");
        assert_eq!((ports.max_surge, ports.max_unavailable), (Some(IntOrString::Int(0)), Some(IntOrString::Int(1))));
        assert_eq!(internal_traffic_policy(&tp("mode: daemonset").spec).as_deref(), Some("Local"));
    }
}
