//! Pure rendering of a TelemetryPipeline's children: ConfigMap, Deployment, StatefulSet or
//! DaemonSet, Service and ServiceAccount (the RoleBindings of its pod discovery are `discovery`'s,
//! its NetworkPolicy `network`'s). What makes a daemonset an agent on each node (host ports, the Service's traffic
//! policy, its rollout) is decided in `agent`; why a scraping gateway with more than one replica is
//! a StatefulSet (stable ordinals to shard the scrape targets by), in `scrape`; what persistent
//! queues add (a volume, or a claim per pod, which also makes a gateway a StatefulSet), in
//! `persistence`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, HTTPGetAction,
    HostPathVolumeSource, Lifecycle, LifecycleHandler, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    SleepAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use crate::config::{HEALTH_PORT, HOSTFS, SELF_METRICS_PORT};
use crate::crd::{PipelineMode, TelemetryPipeline, TelemetryPipelineSpec};
use crate::names::{child_name, labels, selector_labels};
use crate::quantity::quantity_bytes;
use crate::topology::{WorkloadKind, workload_kind};

/// How long a terminating collector pod keeps serving before it is told to stop (a `preStop`
/// sleep). Meanwhile the pod leaves the Service's endpoints and kube-proxy stops sending new
/// connections to it, while clients' open connections (gRPC keeps one) still reach a listening
/// collector; only then does SIGTERM make it close them (clients reconnect to a new pod) and drain.
pub const PRE_STOP_SLEEP_SECONDS: i64 = 5;

/// The pod's termination grace period: the preStop sleep plus the collector's own shutdown
/// budget (`--shutdown-timeout`, 20 s: stop receivers, flush batches, drain exporter queues),
/// with a margin, so the kubelet never kills a collector that is still draining.
pub const TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

/// Whether the collector pods mount the node's `/` (a hostPath volume): hostmetrics in daemonset mode.
pub fn mounts_host_fs(spec: &crate::crd::TelemetryPipelineSpec) -> bool {
    spec.mode == PipelineMode::Daemonset && spec.receivers.host_metrics.as_ref().is_some_and(|h| h.enabled)
}

/// Default collector image (our Rust collector).
pub const DEFAULT_IMAGE: &str = "thereview.dev/telemetry-collector:0.1.0";
/// Pod-template annotation carrying the config hash, so pods roll when the config changes.
pub const CONFIG_HASH_ANNOTATION: &str = "telemetry.thereview.dev/config-hash";
/// Key of the config in the ConfigMap.
pub const CONFIG_KEY: &str = "collector.yaml";
fn meta(tp: &TelemetryPipeline) -> ObjectMeta {
    ObjectMeta {
        name: Some(child_name(&tp.name_any())),
        namespace: tp.namespace(),
        labels: Some(labels(&tp.name_any())),
        owner_references: tp.controller_owner_ref(&()).map(|o: OwnerReference| vec![o]),
        ..Default::default()
    }
}

/// Resources of the collector container: the spec's, or small defaults with a memory limit so the
/// memory limiter has something to derive from.
pub fn container_resources(tp: &TelemetryPipeline) -> ResourceRequirements {
    tp.spec.resources.clone().unwrap_or_else(|| ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("50m".into())),
            ("memory".to_string(), Quantity("64Mi".into())),
        ])),
        limits: Some(BTreeMap::from([("memory".to_string(), Quantity("256Mi".into()))])),
        ..Default::default()
    })
}

/// Memory limit of the collector container in bytes.
pub fn memory_limit_bytes(tp: &TelemetryPipeline) -> Option<i64> {
    container_resources(tp).limits.as_ref().and_then(|l| l.get("memory")).and_then(quantity_bytes)
}

/// The ConfigMap holding the rendered config.
pub fn config_map(tp: &TelemetryPipeline, yaml: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta(tp),
        data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), yaml.to_string())])),
        ..Default::default()
    }
}

fn port(name: &str, p: i32) -> ContainerPort {
    ContainerPort { name: Some(name.into()), container_port: p, protocol: Some("TCP".into()), ..Default::default() }
}

/// The collector container's ports: OTLP (on the node's IP too for an agent with host ports), the
/// Prometheus exporter, self-metrics and health.
fn container_ports(spec: &TelemetryPipelineSpec) -> Vec<ContainerPort> {
    let mut ports = Vec::new();
    if spec.receivers.otlp.enabled {
        // An agent with host ports also listens on the node's IP, on the same port numbers.
        let on_node = |p: ContainerPort| ContainerPort {
            host_port: crate::agent::host_ports(spec).then_some(p.container_port),
            ..p
        };
        ports.push(on_node(port("otlp-grpc", spec.receivers.otlp.grpc_port)));
        ports.push(on_node(port("otlp-http", spec.receivers.otlp.http_port)));
    }
    if let Some(p) = spec.exporters.prometheus.as_ref().filter(|p| p.enabled) {
        ports.push(port("prometheus", p.port));
    }
    ports.push(port("metrics", SELF_METRICS_PORT));
    ports.push(port("health", HEALTH_PORT));
    ports
}

/// The pod's volumes and the collector's mounts of them: its config, the node's `/` for host
/// metrics on an agent, and the persistent queue's volume.
fn volumes(pipeline: &str, spec: &TelemetryPipelineSpec) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut mounts = vec![VolumeMount {
        name: "config".into(),
        mount_path: "/conf".into(),
        read_only: Some(true),
        ..Default::default()
    }];
    let mut volumes = vec![Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource { name: child_name(pipeline), ..Default::default() }),
        ..Default::default()
    }];
    if mounts_host_fs(spec) {
        mounts.push(VolumeMount {
            name: "hostfs".into(),
            mount_path: HOSTFS.into(),
            read_only: Some(true),
            mount_propagation: Some("HostToContainer".into()),
            ..Default::default()
        });
        volumes.push(Volume {
            name: "hostfs".into(),
            host_path: Some(HostPathVolumeSource { path: "/".into(), type_: None }),
            ..Default::default()
        });
    }
    if let Some(p) = crate::persistence::of(spec) {
        mounts.push(crate::persistence::mount());
        volumes.extend(crate::persistence::pod_volume(p));
    }
    (volumes, mounts)
}

/// The collector's pod template.
pub fn pod_template(
    tp: &TelemetryPipeline,
    hash: &str,
    secret_env: Vec<EnvVar>,
    default_image: &str,
) -> PodTemplateSpec {
    let name = tp.name_any();
    let spec = &tp.spec;
    let ports = container_ports(spec);
    let mut env = spec.env.clone().unwrap_or_default();
    env.extend(secret_env);
    // The node or pod name the divided scrape jobs reference (validation refuses `spec.env` entries
    // of the same names, which would redirect the division).
    env.extend(crate::scrape::identity_env(spec));
    let (volumes, mounts) = volumes(&name, spec);
    let probe = |initial: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/".into()),
            port: IntOrString::Int(HEALTH_PORT),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial),
        period_seconds: Some(10),
        ..Default::default()
    };
    let mut pod_labels = selector_labels(&name);
    pod_labels.extend(labels(&name));
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: Some(BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_string(), hash.to_string())])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(child_name(&name)),
            // Only the prometheus receiver's pod discovery talks to the API server; without it the
            // pod carries no token at all.
            automount_service_account_token: Some(spec.receivers.prometheus.as_ref().is_some_and(|p| p.enabled)),
            termination_grace_period_seconds: Some(TERMINATION_GRACE_PERIOD_SECONDS),
            node_selector: spec.node_selector.clone(),
            tolerations: spec.tolerations.clone(),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(10001),
                run_as_group: Some(10001),
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                // A claim's file system is root's when provisioned: the group lets the non-root
                // collector write its queue there (checked once per volume, not on every start).
                fs_group: crate::persistence::of(spec).map(|_| 10001),
                fs_group_change_policy: crate::persistence::of(spec).map(|_| "OnRootMismatch".into()),
                ..Default::default()
            }),
            containers: vec![Container {
                name: "collector".into(),
                image: Some(spec.image.clone().unwrap_or_else(|| default_image.to_string())),
                args: Some(vec![format!("--config=/conf/{CONFIG_KEY}")]),
                ports: Some(ports),
                env: (!env.is_empty()).then_some(env),
                resources: Some(container_resources(tp)),
                volume_mounts: Some(mounts),
                liveness_probe: Some(probe(5)),
                readiness_probe: Some(probe(1)),
                lifecycle: Some(Lifecycle {
                    pre_stop: Some(LifecycleHandler {
                        sleep: Some(SleepAction { seconds: PRE_STOP_SLEEP_SECONDS }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                security_context: Some(SecurityContext {
                    allow_privilege_escalation: Some(false),
                    read_only_root_filesystem: Some(true),
                    run_as_non_root: Some(true),
                    capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            volumes: Some(volumes),
            ..Default::default()
        }),
    }
}

/// The collector workload: a Deployment, a StatefulSet or a DaemonSet.
#[derive(Debug, Clone)]
pub enum Workload {
    /// Gateway mode.
    Deployment(Box<Deployment>),
    /// Gateway mode, scraping with more than one replica (or autoscaled): stable ordinals shard the
    /// scrape targets (`scrape::sharded_workload`); or keeping its queues on per-pod claims
    /// (`persistence::uses_claims`).
    StatefulSet(Box<StatefulSet>),
    /// Agent mode.
    DaemonSet(Box<DaemonSet>),
}

/// Renders the workload for the pipeline's mode.
pub fn workload(tp: &TelemetryPipeline, hash: &str, secret_env: Vec<EnvVar>, default_image: &str) -> Workload {
    let template = pod_template(tp, hash, secret_env, default_image);
    let selector = LabelSelector { match_labels: Some(selector_labels(&tp.name_any())), ..Default::default() };
    // Not owned while an HPA scales the workload: applying it would revert the HPA.
    let replicas = (!crate::topology::autoscaled(tp)).then(|| tp.spec.replicas.unwrap_or(1));
    match workload_kind(&tp.spec) {
        WorkloadKind::Deployment => Workload::Deployment(Box::new(Deployment {
            metadata: meta(tp),
            spec: Some(DeploymentSpec { replicas, selector, template, ..Default::default() }),
            ..Default::default()
        })),
        WorkloadKind::StatefulSet => Workload::StatefulSet(Box::new(StatefulSet {
            metadata: meta(tp),
            spec: Some(StatefulSetSpec {
                replicas,
                selector,
                template,
                // The headless Service gives each shard a stable DNS name (`<pod>.<name>-headless`).
                service_name: Some(crate::topology::headless_name(&tp.name_any())),
                // Shards are independent: start and replace them all at once, not one after another
                // (rolling updates still go one pod at a time).
                pod_management_policy: Some("Parallel".into()),
                // Persistent queues on claims: one per pod, deleted with the pipeline.
                volume_claim_templates: crate::persistence::of(&tp.spec)
                    .and_then(crate::persistence::claim_template)
                    .map(|c| vec![c]),
                persistent_volume_claim_retention_policy: crate::persistence::uses_claims(&tp.spec)
                    .then(crate::persistence::claim_retention),
                ..Default::default()
            }),
            ..Default::default()
        })),
        WorkloadKind::DaemonSet => Workload::DaemonSet(Box::new(DaemonSet {
            metadata: meta(tp),
            spec: Some(DaemonSetSpec {
                selector,
                template,
                update_strategy: Some(crate::agent::update_strategy(&tp.spec)),
                ..Default::default()
            }),
            ..Default::default()
        })),
    }
}

/// The Service in front of the collector pods.
pub fn service(tp: &TelemetryPipeline) -> Service {
    let spec = &tp.spec;
    let sp = |name: &str, p: i32| ServicePort {
        name: Some(name.into()),
        port: p,
        target_port: Some(IntOrString::Int(p)),
        protocol: Some("TCP".into()),
        app_protocol: (name == "otlp-grpc").then(|| "grpc".to_string()),
        ..Default::default()
    };
    let mut ports = Vec::new();
    if spec.receivers.otlp.enabled {
        ports.push(sp("otlp-grpc", spec.receivers.otlp.grpc_port));
        ports.push(sp("otlp-http", spec.receivers.otlp.http_port));
    }
    if let Some(p) = spec.exporters.prometheus.as_ref().filter(|p| p.enabled) {
        ports.push(sp("prometheus", p.port));
    }
    ports.push(sp("metrics", SELF_METRICS_PORT));
    let exposure = spec.service.clone().unwrap_or_default();
    let node_ports = exposure.node_ports.unwrap_or_default();
    for p in &mut ports {
        p.node_port = match p.name.as_deref() {
            Some("otlp-grpc") => node_ports.grpc,
            Some("otlp-http") => node_ports.http,
            _ => None,
        };
    }
    Service {
        metadata: meta(tp),
        spec: Some(ServiceSpec {
            type_: Some(exposure.type_.as_str().to_string()),
            // An agent keeps a pod's telemetry on the pod's node.
            internal_traffic_policy: crate::agent::internal_traffic_policy(spec),
            selector: Some(selector_labels(&tp.name_any())),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Metadata of a child named `name` (owned by the pipeline, with its labels).
pub fn child_meta(tp: &TelemetryPipeline) -> ObjectMeta {
    meta(tp)
}

/// The collector's ServiceAccount; its token is mounted only when the prometheus receiver discovers pods.
pub fn service_account(tp: &TelemetryPipeline) -> ServiceAccount {
    ServiceAccount { metadata: meta(tp), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{MANAGED_BY, endpoints};

    fn tp(yaml: &str) -> TelemetryPipeline {
        let mut tp = TelemetryPipeline::new("main", serde_yaml::from_str(yaml).expect("spec"));
        tp.metadata.namespace = Some("obs".into());
        tp.metadata.uid = Some("uid-1".into());
        tp
    }

    #[test]
    fn children_are_owned_and_labelled() {
        let tp = tp("exporters: {debug: {}}");
        let cm = config_map(&tp, "a: b\n");
        let owner = &cm.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("TelemetryPipeline", "main", Some(true))
        );
        assert_eq!(cm.metadata.name.as_deref(), Some("main-collector"));
        assert_eq!(
            service(&tp).metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY.0)).map(String::as_str),
            Some(MANAGED_BY.1)
        );
    }

    #[test]
    fn deployment_carries_hash_is_hardened_and_uses_secret_env() {
        let tp = tp("replicas: 2\nexporters: {debug: {}}");
        let env = vec![EnvVar { name: "X".into(), ..Default::default() }];
        let Workload::Deployment(d) = workload(&tp, "abc", env, DEFAULT_IMAGE) else { panic!("mode") };
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(2));
        let t = spec.template;
        assert_eq!(
            t.metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
                .map(String::as_str),
            Some("abc")
        );
        let pod = t.spec.expect("pod");
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some(DEFAULT_IMAGE));
        let sc = c.security_context.as_ref().expect("sc");
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.capabilities.as_ref().and_then(|c| c.drop.clone()), Some(vec!["ALL".to_string()]));
        assert_eq!(pod.security_context.and_then(|s| s.run_as_non_root), Some(true));
        assert_eq!(c.env.as_ref().map(|e| e[0].name.as_str()), Some("X"));
        // The selector must match the template labels or the API server refuses the Deployment.
        let sel = spec.selector.match_labels.expect("sel");
        let tl = t.metadata.and_then(|m| m.labels).expect("labels");
        assert!(sel.iter().all(|(k, v)| tl.get(k) == Some(v)));
    }

    #[test]
    fn daemonset_mode_mounts_hostfs_for_hostmetrics() {
        let tp = tp("mode: daemonset\nreceivers: {hostMetrics: {}}\nexporters: {debug: {}}");
        let Workload::DaemonSet(ds) = workload(&tp, "h", vec![], DEFAULT_IMAGE) else { panic!("mode") };
        let pod = ds.spec.expect("spec").template.spec.expect("pod");
        assert!(pod.volumes.expect("vols").iter().any(|v| v.host_path.is_some()));
    }

    #[test]
    fn service_account_token_is_mounted_only_for_pod_discovery() {
        let token = |yaml: &str| {
            let Workload::Deployment(d) = workload(&tp(yaml), "h", vec![], DEFAULT_IMAGE) else { panic!("mode") };
            d.spec.expect("spec").template.spec.expect("pod").automount_service_account_token
        };
        assert_eq!(token("receivers: {prometheus: {}}\nexporters: {debug: {}}"), Some(true));
        assert_eq!(token("receivers: {prometheus: {enabled: false}}\nexporters: {debug: {}}"), Some(false));
        assert_eq!(token("exporters: {debug: {}}"), Some(false));
    }

    #[test]
    fn service_exposes_otlp_prometheus_and_self_metrics() {
        let tp = tp("exporters: {prometheus: {}}");
        let ports: Vec<i32> = service(&tp).spec.and_then(|s| s.ports).expect("ports").iter().map(|p| p.port).collect();
        assert_eq!(ports, [4317, 4318, 8889, 8888]);
        assert_eq!(endpoints(&tp).grpc, "http://main-collector.obs.svc:4317");
    }

    fn host_ports_of(tp: &TelemetryPipeline) -> Vec<(String, Option<i32>)> {
        let pod = match workload(tp, "h", vec![], DEFAULT_IMAGE) {
            Workload::DaemonSet(ds) => ds.spec.expect("spec").template.spec.expect("pod"),
            Workload::Deployment(d) => d.spec.expect("spec").template.spec.expect("pod"),
            Workload::StatefulSet(s) => s.spec.expect("spec").template.spec.expect("pod"),
        };
        let ports = pod.containers[0].ports.clone().unwrap_or_default();
        ports.into_iter().map(|p| (p.name.unwrap_or_default(), p.host_port)).collect()
    }

    #[test]
    fn an_agent_service_keeps_traffic_on_the_node_and_a_gateway_service_does_not() {
        let policy = |yaml: &str| service(&tp(yaml)).spec.and_then(|s| s.internal_traffic_policy);
        assert_eq!(policy("mode: daemonset\nexporters: {debug: {}}").as_deref(), Some("Local"));
        // A gateway leaves it to the API server's default (Cluster), which also resets it after a switch.
        assert_eq!(policy("exporters: {debug: {}}"), None);
        let agent = tp("mode: daemonset\nexporters: {debug: {}}");
        let headless = crate::topology::headless(&agent, &service(&agent), child_meta(&agent));
        assert_eq!(headless.spec.and_then(|s| s.internal_traffic_policy), None, "no cluster IP to apply it to");
    }

    #[test]
    fn host_ports_open_only_the_otlp_ports_of_an_agent_that_asks() {
        let agent = tp(
            "mode: daemonset\nagent: {hostPort: true}\nreceivers: {otlp: {grpcPort: 14317}}\nexporters: {prometheus: {}}",
        );
        assert_eq!(
            host_ports_of(&agent),
            [
                ("otlp-grpc".to_string(), Some(14317)),
                ("otlp-http".to_string(), Some(4318)),
                ("prometheus".to_string(), None),
                ("metrics".to_string(), None),
                ("health".to_string(), None),
            ]
        );
        let Workload::DaemonSet(ds) = workload(&agent, "h", vec![], DEFAULT_IMAGE) else { panic!("mode") };
        let strategy = ds.spec.and_then(|s| s.update_strategy).and_then(|u| u.rolling_update).expect("strategy");
        assert_eq!(strategy.max_surge, Some(IntOrString::Int(0)), "a surge pod could not bind the host ports");
        // Off by default, and never for a gateway (CEL refuses it there too).
        assert!(host_ports_of(&tp("mode: daemonset\nexporters: {debug: {}}")).iter().all(|(_, h)| h.is_none()));
        let gateway = tp("agent: {hostPort: true}\nexporters: {debug: {}}");
        assert!(host_ports_of(&gateway).iter().all(|(_, h)| h.is_none()));
    }

    #[test]
    fn queues_on_an_empty_dir_or_on_a_claim_per_pod_writable_by_the_non_root_collector() {
        let otlp = "exporters: {otlp: [{name: a, endpoint: 'http://a:4317'}]}";
        let Workload::Deployment(d) =
            workload(&tp(&format!("persistence: {{size: 256Mi}}\n{otlp}")), "h", vec![], DEFAULT_IMAGE)
        else {
            panic!("an emptyDir keeps the gateway a Deployment");
        };
        let pod = d.spec.expect("spec").template.spec.expect("pod");
        let queue = pod.volumes.as_ref().expect("vols").iter().find(|v| v.name == "queue").expect("queue volume");
        assert_eq!(queue.empty_dir.as_ref().and_then(|e| e.size_limit.clone()), Some(Quantity("256Mi".into())));
        let mount =
            pod.containers[0].volume_mounts.as_ref().expect("mounts").iter().find(|m| m.name == "queue").cloned();
        assert_eq!(mount.map(|m| (m.mount_path, m.read_only)), Some(("/var/lib/otelcol/file_storage".into(), None)));
        assert_eq!(pod.security_context.as_ref().and_then(|s| s.fs_group), Some(10001));

        let claims =
            tp(&format!("persistence: {{volume: PersistentVolumeClaim, size: 3Gi, storageClassName: ssd}}\n{otlp}"));
        let Workload::StatefulSet(s) = workload(&claims, "h", vec![], DEFAULT_IMAGE) else {
            panic!("claims per pod make the gateway a StatefulSet");
        };
        let spec = s.spec.expect("spec");
        assert_eq!(spec.replicas, Some(1));
        let templates = spec.volume_claim_templates.as_deref().expect("claim templates");
        assert_eq!(
            crate::persistence::claim_templates_key(Some(templates)),
            vec![("queue".into(), Some(3 << 30), Some("ssd".into()))]
        );
        let retention = spec.persistent_volume_claim_retention_policy.expect("retention");
        assert_eq!(
            (retention.when_deleted.as_deref(), retention.when_scaled.as_deref()),
            (Some("Delete"), Some("Retain"))
        );
        let pod = spec.template.spec.expect("pod");
        assert!(pod.volumes.expect("vols").iter().all(|v| v.name != "queue"), "the claim template provides it");
        assert!(pod.containers[0].volume_mounts.as_ref().expect("mounts").iter().any(|m| m.name == "queue"));

        // Without persistence: no queue volume, no fsGroup, no claims.
        let Workload::Deployment(d) = workload(&tp(otlp), "h", vec![], DEFAULT_IMAGE) else { panic!("Deployment") };
        let pod = d.spec.expect("spec").template.spec.expect("pod");
        assert!(pod.volumes.expect("vols").iter().all(|v| v.name != "queue"));
        assert_eq!(pod.security_context.and_then(|s| s.fs_group), None);
    }

    #[test]
    fn a_scraping_gateway_with_several_replicas_is_a_statefulset_of_named_shards() {
        let Workload::StatefulSet(s) = workload(
            &tp("replicas: 3\nreceivers: {prometheus: {}}\nexporters: {debug: {}}"),
            "h",
            vec![],
            DEFAULT_IMAGE,
        ) else {
            panic!("a StatefulSet");
        };
        let spec = s.spec.expect("spec");
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("main-headless"));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        let env = spec.template.spec.expect("pod").containers[0].env.clone().expect("env");
        let pod_name = env.iter().find(|e| e.name == "K8S_POD_NAME").expect("K8S_POD_NAME");
        assert_eq!(
            pod_name.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).map(|f| f.field_path.as_str()),
            Some("metadata.name")
        );
        // Autoscaled: a StatefulSet from the start (the HPA's changes never switch the kind), its
        // replicas left to the HPA.
        let auto = tp("autoscaling: {maxReplicas: 4}\nreceivers: {prometheus: {}}\nexporters: {debug: {}}");
        let Workload::StatefulSet(s) = workload(&auto, "h", vec![], DEFAULT_IMAGE) else { panic!("StatefulSet") };
        assert_eq!(s.spec.expect("spec").replicas, None);
        // One replica, or no scraping: a Deployment, whatever the replica count.
        for yaml in ["receivers: {prometheus: {}}", "replicas: 3\nexporters: {debug: {}}"] {
            assert_eq!(workload_kind(&tp(yaml).spec), WorkloadKind::Deployment, "{yaml}");
        }
        assert_eq!(workload_kind(&tp("mode: daemonset\nreceivers: {prometheus: {}}").spec), WorkloadKind::DaemonSet);
    }

    #[test]
    fn an_agent_that_scrapes_knows_its_node() {
        let Workload::DaemonSet(ds) =
            workload(&tp("mode: daemonset\nreceivers: {prometheus: {}}"), "h", vec![], DEFAULT_IMAGE)
        else {
            panic!("DaemonSet");
        };
        let env = ds.spec.expect("spec").template.spec.expect("pod").containers[0].env.clone().expect("env");
        let names: Vec<_> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["K8S_NODE_NAME"]);
    }

    #[test]
    fn memory_quantities_parse() {
        assert_eq!(quantity_bytes(&Quantity("512Mi".into())), Some(512 * 1024 * 1024));
        assert_eq!(quantity_bytes(&Quantity("1G".into())), Some(1_000_000_000));
        assert_eq!(quantity_bytes(&Quantity("1048576".into())), Some(1_048_576));
        assert_eq!(quantity_bytes(&Quantity("12Xi".into())), None);
        assert_eq!(memory_limit_bytes(&tp("{}")), Some(256 * 1024 * 1024));
    }

    #[test]
    fn terminating_collectors_keep_serving_then_drain_within_the_grace_period() {
        let Workload::Deployment(d) = workload(&tp("{}"), "h", vec![], DEFAULT_IMAGE) else { panic!("deployment") };
        let pod = d.spec.expect("spec").template.spec.expect("pod");
        let pre_stop = pod.containers[0].lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).expect("preStop");
        assert_eq!(pre_stop.sleep.as_ref().map(|s| s.seconds), Some(PRE_STOP_SLEEP_SECONDS));
        // The sleep and the collector's 20 s shutdown budget fit in the grace period.
        assert!(pod.termination_grace_period_seconds.expect("grace period") >= PRE_STOP_SLEEP_SECONDS + 20);
    }
}
