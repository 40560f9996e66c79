//! The custom resource types (`TelemetryPipeline`, `InstrumentedService`) whose schemas become the CRDs.
//!
//! Everything the API server can check on its own lives here as schema constraints or CEL rules, so bad
//! input is refused at `kubectl apply` time with a message naming the field instead of surfacing later.

// Several `printcolumn(...)` entries repeat `type_ = "string"`, which clippy mistakes for duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// API group of both resources.
pub const GROUP: &str = "telemetry.thereview.dev";

/// CEL rule shared by every field that must be an absolute http(s) URL.
const URL_RULE: &str = "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''";

/// Longest pipeline name: its children are named `<name>-collector` and a Service name has at most 63 characters.
pub const MAX_PIPELINE_NAME: usize = 63 - "-collector".len();
const NAME_LENGTH_RULE: &str = "self.metadata.name.size() <= 53";
const NAME_LENGTH_MESSAGE: &str = "metadata.name must be at most 53 characters: the collector's Service, Deployment and other children are named <name>-collector, and a Service name is limited to 63 characters";
const NAME_FORM_RULE: &str = "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')";
const NAME_FORM_MESSAGE: &str = "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, no dots): it names the collector's Service <name>-collector";

/// A collector and its configuration, described at the level a platform engineer thinks at.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "telemetry.thereview.dev",
    version = "v1alpha1",
    kind = "TelemetryPipeline",
    namespaced,
    shortname = "tp",
    category = "telemetry",
    status = "TelemetryPipelineStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A TelemetryPipeline runs an OpenTelemetry collector (Deployment or DaemonSet) with a rendered, validated configuration.",
    // The name becomes `<name>-collector` for the Service, ConfigMap, Deployment/DaemonSet, ServiceAccount,
    // Role and RoleBinding, and the `app.kubernetes.io/instance` label value. The Service is the strictest:
    // a DNS-1035 label of at most 63 characters, so no dot, a leading letter, and 63 - len("-collector") = 53.
    validation = Rule::new(NAME_LENGTH_RULE).message(NAME_LENGTH_MESSAGE),
    validation = Rule::new(NAME_FORM_RULE).message(NAME_FORM_MESSAGE),
    // `kubectl scale tp/<name> --replicas N` writes spec.replicas (ignored while spec.autoscaling is on).
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Scrape", type_ = "string", json_path = ".status.scrape.mode"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("self.mode != 'daemonset' || !has(self.replicas)").message("spec.replicas cannot be set when spec.mode is daemonset"))]
#[x_kube(validation = Rule::new("self.mode != 'daemonset' || !has(self.autoscaling)").message("spec.autoscaling is for deployment mode only (a daemonset runs one collector per node)"))]
#[x_kube(validation = Rule::new("self.mode != 'daemonset' || !has(self.receivers) || !has(self.receivers.prometheus) || !has(self.receivers.prometheus.staticTargets) || size(self.receivers.prometheus.staticTargets) == 0").message("spec.receivers.prometheus.staticTargets cannot be scraped by a daemonset: every node's agent would scrape them (duplicate series); scrape them from a deployment pipeline"))]
#[x_kube(validation = Rule::new("self.mode == 'daemonset' || !has(self.agent) || !has(self.agent.hostPort) || !self.agent.hostPort").message("spec.agent.hostPort is only allowed in daemonset mode: a gateway's replicas are not one per node, two on a node would compete for its ports"))]
#[x_kube(validation = Rule::new("!has(self.persistence) || (has(self.exporters) && has(self.exporters.otlp) && size(self.exporters.otlp) > 0)").message("spec.persistence needs at least one spec.exporters.otlp destination: it keeps their sending queues on disk"))]
#[x_kube(validation = Rule::new("!has(self.persistence) || !has(self.processors) || !has(self.processors.batch)").message("spec.processors.batch cannot be set with spec.persistence: the batch processor acknowledges telemetry before it reaches the queue on disk, so a persistent pipeline sends each request to the queue unbatched"))]
#[x_kube(validation = Rule::new("!has(self.persistence) || !has(self.exporters) || !has(self.exporters.otlp) || self.exporters.otlp.all(e, !has(e.queue) || (e.queue.enabled && !has(e.queue.queueSize)))").message("spec.exporters.otlp[].queue: with spec.persistence the queue must stay enabled and its size is spec.persistence.size (queueSize cannot be set)"))]
#[x_kube(validation = Rule::new("self.mode != 'daemonset' || !has(self.persistence) || self.persistence.volume != 'PersistentVolumeClaim'").message("spec.persistence.volume PersistentVolumeClaim is for deployment mode only: a daemonset has no per-pod claims (use EmptyDir)"))]
#[x_kube(validation = Rule::new("!has(oldSelf.persistence) || !has(self.persistence) || oldSelf.persistence.volume != 'PersistentVolumeClaim' || self.persistence.volume != 'PersistentVolumeClaim' || (self.persistence.size == oldSelf.persistence.size && (has(self.persistence.storageClassName) ? self.persistence.storageClassName : '') == (has(oldSelf.persistence.storageClassName) ? oldSelf.persistence.storageClassName : ''))").message("spec.persistence.size and spec.persistence.storageClassName cannot change while spec.persistence.volume is PersistentVolumeClaim (a StatefulSet's volume claim templates are immutable): switch to EmptyDir first (the claims are deleted once the pods have drained), or recreate the pipeline"))]
#[serde(rename_all = "camelCase")]
pub struct TelemetryPipelineSpec {
    /// How the collector runs: `deployment` (a gateway, the default) or `daemonset` (an agent on every node).
    #[serde(default)]
    pub mode: PipelineMode,
    /// Number of collector replicas in `deployment` mode (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: Option<i32>,
    /// Collector image. Defaults to the telemetry-collector image; any image accepting the upstream
    /// OpenTelemetry Collector configuration and a `--config` flag works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Compute resources of the collector container. The memory limit also sizes the memory_limiter processor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Horizontal autoscaling of a gateway: renders a HorizontalPodAutoscaler, and `replicas` is then
    /// the HPA's (the operator stops owning the Deployment's replica count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// How the collector's Service is exposed (beside it, a headless `<name>-headless` Service always
    /// resolves every collector pod, for gRPC clients that balance per connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceExposure>,
    /// Node-local agent settings (`daemonset` mode): whether the OTLP ports are opened on each node's
    /// IP (`hostPort`) and which endpoint attached workloads are given (`endpoint`). In daemonset mode
    /// the Service always has `internalTrafficPolicy: Local`, so a pod's telemetry stays on its node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// Node selector for collector pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations for collector pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Extra environment variables for the collector container (usable in the config as `${env:NAME}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Where telemetry comes from.
    #[serde(default)]
    pub receivers: Receivers,
    /// What happens to telemetry on its way through.
    #[serde(default)]
    pub processors: Processors,
    /// Where telemetry goes.
    #[serde(default)]
    pub exporters: Exporters,
    /// A sending queue on disk for every OTLP destination (the `file_storage` extension): telemetry
    /// acknowledged to a client is in the queue's files first, so a crash, an OOM kill or an outage of
    /// the destination loses nothing the volume keeps. Off by default (queues in memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    /// Namespaces whose InstrumentedServices may attach workloads to this pipeline, besides its own
    /// (the default: its own namespace only). An InstrumentedService from any other namespace is
    /// refused with `Injected=False`, reason `NotAllowed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<AllowedNamespaces>,
    /// Escape hatch: a partial upstream collector configuration deep-merged over the rendered one
    /// (maps merge, everything else replaces). The result is still validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::free_form")]
    pub config_overrides: Option<serde_json::Value>,
}

/// Horizontal autoscaling of a gateway collector.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("spec.autoscaling.minReplicas must not exceed maxReplicas"))]
pub struct Autoscaling {
    /// Whether the HPA exists (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Fewest replicas (default 1).
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 100))]
    pub min_replicas: i32,
    /// Most replicas.
    #[schemars(range(min = 1, max = 100))]
    pub max_replicas: i32,
    /// Target average CPU utilisation in percent of the request (default 80 when no target is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization: Option<i32>,
    /// Target average memory utilisation in percent of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub target_memory_utilization: Option<i32>,
}

/// Exposure of the collector's Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.nodePorts) || self.type != 'ClusterIP'").message("spec.service.nodePorts needs type NodePort or LoadBalancer"))]
pub struct ServiceExposure {
    /// `ClusterIP` (default), `NodePort` or `LoadBalancer`.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Fixed node ports of the OTLP ports (default: allocated by the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ports: Option<NodePorts>,
}

/// Node-local settings of an agent pipeline (`mode: daemonset`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.endpoint) || self.endpoint != 'NodeIP' || (has(self.hostPort) && self.hostPort)").message("spec.agent.endpoint NodeIP needs spec.agent.hostPort: true (without it nothing listens on the node's IP)"))]
pub struct Agent {
    /// Open the collector's OTLP ports (`receivers.otlp.grpcPort` / `httpPort`, 4317/4318) as
    /// `hostPort`s on every node's IP (default false). Daemonset mode only. Two pipelines with host
    /// ports on the same ports cannot share a node (the second one's pods stay Pending), a Pod
    /// Security Standard of `baseline` or stricter refuses host ports, and the collector then rolls
    /// one node at a time with a short gap per node (a new pod cannot bind the ports beside the old).
    #[serde(default)]
    pub host_port: bool,
    /// The OTLP endpoint injected into attached workloads: `NodeIP` (`http://$(OTEL_NODE_IP):<port>`,
    /// the node's IP from the downward API, `status.hostIP`, reaching the host port of the agent on
    /// the workload's own node; needs `hostPort`, and an IPv4 node IP) or `Service` (the Service's DNS
    /// name; node-local too, through `internalTrafficPolicy: Local`). Default: `NodeIP` when
    /// `hostPort` is on, else `Service`. A gateway (deployment mode) is always reached through its
    /// Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<AgentEndpoint>,
}

/// How attached workloads reach an agent: `Service`, the Service's DNS name (kube-proxy keeps the
/// traffic on the node), or `NodeIP`, the node's IP and the agent's host port. (No per-variant docs:
/// they would replace the field's description in the CRD.)
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[allow(missing_docs)]
pub enum AgentEndpoint {
    Service,
    #[serde(rename = "NodeIP")]
    NodeIp,
}

/// Service type of the collector.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[allow(missing_docs)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    /// The Service's `spec.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Fixed node ports (the cluster's node port range, 30000–32767 by default).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePorts {
    /// Node port of OTLP/gRPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub grpc: Option<i32>,
    /// Node port of OTLP/HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub http: Option<i32>,
}

/// Which other namespaces may attach to a pipeline: listed by name, or selected by their labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllowedNamespaces {
    /// Namespace names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// A label selector over Namespace objects (`matchLabels`, `matchExpressions` with `In`, `NotIn`,
    /// `Exists`, `DoesNotExist`). An empty selector (`{}`) admits every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])").message("matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist"))]
    pub selector: Option<LabelSelector>,
}

/// How the collector is deployed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PipelineMode {
    /// A Deployment acting as a gateway.
    #[default]
    Deployment,
    /// A DaemonSet: one agent per node.
    Daemonset,
}

impl PipelineMode {
    /// The value as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::Daemonset => "daemonset",
        }
    }
}

/// Receivers of the pipeline.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receivers {
    /// OTLP over gRPC and HTTP; on by default.
    #[serde(default)]
    pub otlp: OtlpReceiver,
    /// Prometheus scraping of the pods of this pipeline's InstrumentedServices (pod discovery with
    /// `prometheus.io/*` annotation relabeling) plus optional static targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusReceiver>,
    /// Host metrics of the node (best in `daemonset` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_metrics: Option<HostMetricsReceiver>,
}

/// The OTLP receiver.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpReceiver {
    /// Whether the OTLP receiver runs.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// gRPC port (default 4317).
    #[serde(default = "default_grpc_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub grpc_port: i32,
    /// HTTP port (default 4318).
    #[serde(default = "default_http_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub http_port: i32,
}

impl Default for OtlpReceiver {
    fn default() -> Self {
        Self { enabled: true, grpc_port: 4317, http_port: 4318 }
    }
}

/// The Prometheus receiver.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusReceiver {
    /// Whether scraping runs.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Scrape interval as a Prometheus duration (default `30s`).
    #[serde(default = "default_scrape_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub scrape_interval: String,
    /// Extra static `host:port` targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub static_targets: Vec<String>,
}

/// The host metrics receiver.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostMetricsReceiver {
    /// Whether host metrics are collected.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Collection interval (default `30s`).
    #[serde(default = "default_scrape_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub collection_interval: String,
    /// Scrapers to run (default cpu, memory, load, filesystem, network).
    #[serde(default = "default_scrapers")]
    #[schemars(length(max = 10))]
    pub scrapers: Vec<HostScraper>,
}

/// A host metrics scraper.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum HostScraper {
    Cpu,
    Memory,
    Load,
    Disk,
    Filesystem,
    Network,
    Paging,
    Processes,
}

impl HostScraper {
    /// The scraper's key in the upstream config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Load => "load",
            Self::Disk => "disk",
            Self::Filesystem => "filesystem",
            Self::Network => "network",
            Self::Paging => "paging",
            Self::Processes => "processes",
        }
    }
}

/// Processors of the pipeline. `memory_limiter` always runs first and `batch` last.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Processors {
    /// Memory limiter settings; when absent the limit is derived from the container memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limiter: Option<MemoryLimiter>,
    /// Batch settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
    /// Resource attributes upserted on all telemetry (e.g. `deployment.environment`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_attributes: BTreeMap<String, String>,
    /// Attribute actions applied to span, log and metric-point attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub attributes: Vec<AttributeAction>,
    /// Rename spans from the values of their attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_name: Option<SpanName>,
    /// Metric renames.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub metric_renames: Vec<MetricRename>,
}

/// Memory limiter processor settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryLimiter {
    /// Hard limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub limit_mib: Option<i64>,
    /// Spike limit in MiB (default: a fifth of the limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub spike_limit_mib: Option<i64>,
}

/// Batch processor settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// Time after which a batch is sent regardless of size (default `200ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub timeout: Option<String>,
    /// Number of items that triggers a send (default 8192).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub send_batch_size: Option<i64>,
    /// Upper bound of a batch (0 = no bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub send_batch_max_size: Option<i64>,
}

/// One action of the attributes processor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.action in ['delete', 'hash'] || has(self.value)").message("value is required for insert, update and upsert"))]
pub struct AttributeAction {
    /// Attribute key.
    #[schemars(length(min = 1))]
    pub key: String,
    /// What to do with it.
    pub action: AttributeActionKind,
    /// Value for insert/update/upsert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Kind of attribute action.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum AttributeActionKind {
    Insert,
    Update,
    Upsert,
    Delete,
    Hash,
}

impl AttributeActionKind {
    /// The action's name in the upstream config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Upsert => "upsert",
            Self::Delete => "delete",
            Self::Hash => "hash",
        }
    }
}

/// Span renaming from attribute values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpanName {
    /// Attributes whose values, joined, become the span name.
    #[schemars(length(min = 1, max = 16))]
    pub from_attributes: Vec<String>,
    /// Separator between the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
}

/// Rename of one metric.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricRename {
    /// Current metric name (exact match).
    #[schemars(length(min = 1))]
    pub from: String,
    /// New metric name.
    #[schemars(length(min = 1))]
    pub to: String,
}

/// Exporters of the pipeline.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.otlp.all(a, self.otlp.exists_one(b, b.name == a.name))").message("spec.exporters.otlp names must be unique"))]
pub struct Exporters {
    /// OTLP destinations (e.g. Grafana Alloy, Grafana Cloud).
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub otlp: Vec<OtlpExporter>,
    /// Prometheus exporter serving the pipeline's metrics on port 8889.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusExporter>,
    /// Debug exporter printing telemetry to the collector log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<DebugExporter>,
}

/// One OTLP destination.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.auth) || !(has(self.auth.basic) && has(self.auth.bearerToken))").message("auth.basic and auth.bearerToken are mutually exclusive"))]
pub struct OtlpExporter {
    /// Name of the destination, used in component ids (`otlp/<name>`) and env var names.
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// `grpc` (exporter `otlp`) or `http` (exporter `otlphttp`).
    #[serde(default)]
    pub protocol: ExporterProtocol,
    /// Destination URL, e.g. `https://otlp-gateway-prod-eu-west-2.grafana.net/otlp` or `http://alloy.monitoring:4317`.
    #[x_kube(validation = Rule::new(URL_RULE).message("endpoint must be an absolute http:// or https:// URL"))]
    #[schemars(length(max = 2048))]
    pub endpoint: String,
    /// Extra headers sent with every request (not for credentials: use `auth`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Compression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Retry on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Sending queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<Queue>,
    /// Credentials, only as Secret references; they reach the collector as env vars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
}

/// Wire protocol of an OTLP exporter.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExporterProtocol {
    /// OTLP/gRPC.
    #[default]
    Grpc,
    /// OTLP/HTTP (protobuf).
    Http,
}

/// TLS client settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// Use a plaintext connection (gRPC only; for http use an `http://` endpoint).
    #[serde(default)]
    pub insecure: bool,
    /// Server name override for SNI and verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// Compression algorithm: what the collector's exporters implement (no `zstd`: it would link a C
/// library into the collector for a gain Alloy's default gzip already gives on telemetry).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Compression {
    Gzip,
    None,
}

impl Compression {
    /// Name in the upstream config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::None => "none",
        }
    }
}

/// Retry settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Whether failed sends are retried (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// First backoff (e.g. `5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub initial_interval: Option<String>,
    /// Largest backoff (e.g. `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub max_interval: Option<String>,
    /// Give up after this long (e.g. `300s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub max_elapsed_time: Option<String>,
}

/// Sending queue settings (bounded).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    /// Whether the queue is used (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Number of consumers draining the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub num_consumers: Option<i64>,
    /// Queue capacity in batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub queue_size: Option<i64>,
}

/// Persistent sending queues (`spec.persistence`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.volume == 'PersistentVolumeClaim' || !has(self.storageClassName)").message("spec.persistence.storageClassName is for volume PersistentVolumeClaim only"))]
pub struct Persistence {
    /// Where the queues' files live. `EmptyDir` (default): on the node, surviving a collector crash or
    /// OOM kill (the container restarts, the pod stays) but not the pod's deletion or eviction.
    /// `PersistentVolumeClaim`: a claim per collector pod (the gateway becomes a StatefulSet),
    /// surviving the pod too; the claims are deleted with the pipeline.
    #[serde(default)]
    pub volume: PersistenceVolume,
    /// Size of the volume (a quantity such as `512Mi` or `2Gi`, at least `16Mi`; default `1Gi`). The
    /// queues together hold at most nine tenths of it (split evenly between the OTLP destinations);
    /// beyond that, telemetry is refused with a retryable error and counted in
    /// `otelcol_exporter_enqueue_failed_*`.
    #[serde(default = "default_persistence_size")]
    #[x_kube(validation = Rule::new("isQuantity(self) && quantity(self).compareTo(quantity('16Mi')) >= 0 && quantity(self).compareTo(quantity('1Pi')) <= 0").message("spec.persistence.size must be a quantity between 16Mi and 1Pi (e.g. 2Gi)"))]
    #[schemars(length(max = 32))]
    pub size: String,
    /// Storage class of the claims (`PersistentVolumeClaim` only; default: the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
    /// `fdatasync` every write before it is acknowledged (default false: the data is in the kernel's
    /// page cache, which survives a collector crash but not a crash of the node).
    #[serde(default)]
    pub fsync: bool,
}

fn default_persistence_size() -> String {
    "1Gi".into()
}

/// Volume of the persistent sending queues.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum PersistenceVolume {
    /// An `emptyDir` with `sizeLimit`: survives container restarts, not the pod.
    #[default]
    EmptyDir,
    /// A PersistentVolumeClaim per pod (StatefulSet `volumeClaimTemplates`).
    PersistentVolumeClaim,
}

/// Credentials of an exporter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// HTTP basic auth (Grafana Cloud: instance id and API token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
    /// Bearer token sent as `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<SecretKeyRef>,
}

/// Basic auth credentials from Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// Username.
    pub username: SecretKeyRef,
    /// Password.
    pub password: SecretKeyRef,
}

/// A key of a Secret in the pipeline's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The Prometheus exporter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusExporter {
    /// Whether the exporter runs.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Port (default 8889).
    #[serde(default = "default_prom_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// The debug exporter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DebugExporter {
    /// Whether the exporter runs.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `basic`, `normal` or `detailed`.
    #[serde(default)]
    pub verbosity: Verbosity,
}

/// Debug exporter verbosity.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Verbosity {
    #[default]
    Basic,
    Normal,
    Detailed,
}

impl Verbosity {
    /// Name in the upstream config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Normal => "normal",
            Self::Detailed => "detailed",
        }
    }
}

/// Observed state of a TelemetryPipeline.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryPipelineStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `ConfigValid`, `Progressing`, `Degraded`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Collector pods ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Collector pods (the scale subresource's status replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector of the collector pods (the scale subresource's, read by an HPA on the pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// SHA-256 of the rolled-out configuration (also on the pod template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// In-cluster OTLP endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// InstrumentedServices attached to this pipeline (`namespace/name`).
    #[serde(default)]
    pub instrumented_services: Vec<String>,
    /// How the scrape targets are divided among the collectors, so each is scraped exactly once
    /// (absent when the prometheus receiver is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape: Option<ScrapeStatus>,
}

/// How a pipeline's scrape targets are divided among its collectors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeStatus {
    /// `Single`: one collector scrapes every target. `PerNode`: each agent (daemonset) scrapes the pods
    /// of its own node. `Sharded`: the StatefulSet pod with ordinal i scrapes the targets whose hashmod
    /// of the address modulo `shards` is i.
    pub mode: ScrapeMode,
    /// How many collectors the targets are divided among (`Sharded`: the replica count the running
    /// config was rendered for; absent for `PerNode`, one per node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<i32>,
    /// The namespaces whose pods the collectors discover: the pipeline's own, and each namespace it
    /// admits (`spec.allowedNamespaces`) with an attached InstrumentedService asking for metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

/// Division of scrape targets. (No per-variant docs: they would replace the field's description.)
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[allow(missing_docs)]
pub enum ScrapeMode {
    Single,
    PerNode,
    Sharded,
}

/// In-cluster OTLP endpoints of a pipeline.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// OTLP/gRPC URL.
    pub grpc: String,
    /// OTLP/HTTP URL.
    pub http: String,
}

impl InstrumentedService {
    /// Whether it refers to the pipeline `namespace/name` (its `pipelineRef.namespace` defaulting to
    /// its own). Compared in place: this runs over every InstrumentedService per pipeline reconcile.
    pub fn refers_to(&self, namespace: &str, name: &str) -> bool {
        let own = self.metadata.namespace.as_deref().unwrap_or_default();
        self.spec.pipeline_ref.name == name && self.spec.pipeline_ref.namespace.as_deref().unwrap_or(own) == namespace
    }
}

/// Wires one workload into a pipeline.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "telemetry.thereview.dev",
    version = "v1alpha1",
    kind = "InstrumentedService",
    namespaced,
    shortname = "isvc",
    category = "telemetry",
    status = "InstrumentedServiceStatus",
    derive = "PartialEq",
    doc = "An InstrumentedService injects OpenTelemetry env vars and scrape annotations into a workload's pod template.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Pipeline", type_ = "string", json_path = ".spec.pipelineRef.name"),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.target.name"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("!has(self.sampling) || !has(self.sampling.argument) || self.sampling.sampler in ['traceidratio', 'parentbased_traceidratio']").message("spec.sampling.argument is only valid with a ratio sampler"))]
#[serde(rename_all = "camelCase")]
pub struct InstrumentedServiceSpec {
    /// The pipeline receiving this workload's telemetry.
    pub pipeline_ref: PipelineRef,
    /// The workload to instrument.
    pub target: TargetRef,
    /// `OTEL_SERVICE_NAME` (default: the target's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_name: Option<String>,
    /// OTLP protocol used by the workload; the endpoint port follows (4317 or 4318).
    #[serde(default)]
    pub protocol: Protocol,
    /// Extra resource attributes added to `OTEL_RESOURCE_ATTRIBUTES`. Keys `k8s.*` are reserved: the
    /// operator sets them from the Kubernetes API, so telemetry cannot claim another namespace or workload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, !k.startsWith('k8s.'))").message("keys k8s.* are reserved: the operator sets them from the Kubernetes API"))]
    pub resource_attributes: BTreeMap<String, String>,
    /// Trace sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// Prometheus scraping of the workload's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsScrape>,
    /// What happens to the workload while the pipeline does not exist: `Keep` (default) leaves the
    /// injection in place, so deleting and recreating a pipeline rolls no workload; `Remove` takes the
    /// injection back (the workload rolls) and re-applies it when the pipeline returns.
    #[serde(default)]
    pub on_pipeline_missing: PipelineMissingPolicy,
}

/// What to do with an injection whose pipeline is missing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum PipelineMissingPolicy {
    /// Leave the injected env and annotations on the workload (it sends to an absent Service meanwhile).
    #[default]
    Keep,
    /// Remove the injection until the pipeline exists again.
    Remove,
}

/// Reference to a TelemetryPipeline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRef {
    /// Pipeline name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Pipeline namespace (default: the InstrumentedService's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Reference to a workload in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// `Deployment` (default), `StatefulSet` or `DaemonSet`.
    #[serde(default)]
    pub kind: TargetKind,
    /// Workload name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Container to inject into (default: every container of the pod template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Kind of workload.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[allow(missing_docs)]
pub enum TargetKind {
    #[default]
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl TargetKind {
    /// Kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
        }
    }
}

/// OTLP protocol of the instrumented workload.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum Protocol {
    /// OTLP/gRPC to port 4317.
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP protobuf to port 4318.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl Protocol {
    /// Value of `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Trace sampling configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sampling {
    /// `OTEL_TRACES_SAMPLER`.
    pub sampler: Sampler,
    /// `OTEL_TRACES_SAMPLER_ARG` (a ratio between 0 and 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^(0(\\\\.[0-9]+)?|1(\\\\.0+)?)$')").message("argument must be a ratio between 0 and 1"))]
    pub argument: Option<String>,
}

/// A standard OpenTelemetry sampler.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    Traceidratio,
    ParentbasedAlwaysOn,
    ParentbasedAlwaysOff,
    ParentbasedTraceidratio,
}

impl Sampler {
    /// Value of `OTEL_TRACES_SAMPLER`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlwaysOn => "always_on",
            Self::AlwaysOff => "always_off",
            Self::Traceidratio => "traceidratio",
            Self::ParentbasedAlwaysOn => "parentbased_always_on",
            Self::ParentbasedAlwaysOff => "parentbased_always_off",
            Self::ParentbasedTraceidratio => "parentbased_traceidratio",
        }
    }
}

/// Prometheus scraping of the workload.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsScrape {
    /// Whether the pods are scraped (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Port serving metrics.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Path (default `/metrics`).
    #[serde(default = "default_metrics_path")]
    #[schemars(regex(pattern = r"^/[^\s]*$"))]
    pub path: String,
}

/// Observed state of an InstrumentedService.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentedServiceStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Injected`, `ScrapeConfigured`, `Ready`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Env var names this resource manages on the target.
    #[serde(default)]
    pub managed_env: Vec<String>,
    /// Pod-template annotations this resource manages on the target.
    #[serde(default)]
    pub managed_annotations: Vec<String>,
    /// The workload the injection was applied to (kind, name, uid). A change of `spec.target` first takes
    /// the injection back from this workload; deletion of the InstrumentedService takes it back from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected_target: Option<InjectedTarget>,
    /// `OTEL_SERVICE_NAME` the workload sets itself (not through this operator); it wins over
    /// `spec.serviceName` and the operator leaves it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_service_name: Option<String>,
    /// `metadata.generation` of the target after injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_observed_generation: Option<i64>,
    /// What is wrong, when something is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Identity of the workload an injection was applied to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InjectedTarget {
    /// Workload kind.
    pub kind: TargetKind,
    /// Workload name (same namespace as the InstrumentedService).
    pub name: String,
    /// Workload uid: a workload deleted and recreated under the same name carries none of our fields.
    pub uid: String,
    /// `OTEL_RESOURCE_ATTRIBUTES` values the workload set itself, per container, that the injection
    /// merged with ours. Taking the injection back writes them back as the manager that set them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_resource_attributes: Vec<AppEnvValue>,
}

/// An env var value a workload sets itself (another field manager owns it), in one container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppEnvValue {
    /// Container name.
    pub container: String,
    /// The workload's own value.
    pub value: String,
    /// The field manager that set it (the app's manifest, chart or `kubectl set env`).
    pub manager: String,
}

impl InjectedTarget {
    /// Whether this is the workload `target` names (same kind and name).
    pub fn is(&self, target: &TargetRef) -> bool {
        self.kind == target.kind && self.name == target.name
    }
}

fn default_true() -> bool {
    true
}
fn default_one() -> i32 {
    1
}
fn default_grpc_port() -> i32 {
    4317
}
fn default_http_port() -> i32 {
    4318
}
fn default_prom_port() -> i32 {
    8889
}
fn default_scrape_interval() -> String {
    "30s".into()
}
fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_scrapers() -> Vec<HostScraper> {
    vec![HostScraper::Cpu, HostScraper::Memory, HostScraper::Load, HostScraper::Filesystem, HostScraper::Network]
}

/// Schema of a free-form object kept verbatim by the API server.
pub fn free_form(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules_state_the_service_name_limit() {
        assert_eq!(MAX_PIPELINE_NAME, 53);
        assert!(NAME_LENGTH_RULE.ends_with(&MAX_PIPELINE_NAME.to_string()));
        assert!(NAME_LENGTH_MESSAGE.contains("53") && NAME_LENGTH_MESSAGE.contains("63"));
    }
}
