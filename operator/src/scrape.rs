//! How a pipeline's scrape targets are divided among its collectors, pure: whatever the topology,
//! each target is scraped by exactly one collector, so no series is ever written twice.
//!
//! - **`PerNode`** (daemonset): each agent discovers only the pods of its own node. The node name
//!   comes from the downward API (`spec.nodeName` as [`NODE_NAME_ENV`]) into a field selector of every
//!   pod discovery (`selectors: [{role: pod, field: "spec.nodeName=${env:K8S_NODE_NAME}"}]`, upstream
//!   Prometheus' shape), so the API server filters: an agent neither receives nor holds the pods of
//!   other nodes (a `keep` relabeling on the node name would have every agent watch every pod).
//! - **`Sharded`** (a gateway that may run more than one replica: `replicas > 1` or `autoscaling`):
//!   the collector runs as a StatefulSet, whose pods have stable ordinals (`<name>-collector-<i>`); a
//!   Deployment's pods have random names, so no stable index to shard by. Every scrape job ends with
//!   `hashmod` of `__address__` modulo the shard count, and a pod keeps the targets whose hash is its
//!   own ordinal: the hash becomes the pod name it belongs to, compared with the pod's name from the
//!   downward API ([`POD_NAME_ENV`], `metadata.name`). The pod name rather than the
//!   `apps.kubernetes.io/pod-index` label: every Kubernetes version sets it.
//! - **`Single`** (a one-replica gateway): one collector scrapes every target; it stays a Deployment.
//!
//! The shard count is the replica count the config is rendered for: `spec.replicas`, or with
//! `spec.autoscaling` the StatefulSet's current `replicas`, which the HPA owns and the reconciler
//! reads (the StatefulSet is watched, so an HPA change re-renders the config). A changed count rolls
//! the pods to the new modulus; while that rollout runs, old and new pods disagree on the modulus, so
//! some targets can be scraped twice or not at all until it completes. A new pod the HPA adds before
//! the config follows has an ordinal at or above the old modulus and scrapes nothing meanwhile.
//!
//! Every scrape job of the final config is divided (the operator's, and any `configOverrides`
//! adds), because every job would otherwise run once per collector. Static targets cannot be bound
//! to a node, so a daemonset refuses them (CEL on `spec.receivers.prometheus.staticTargets`, and
//! [`node_local_problems`] for jobs `configOverrides` adds).

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};
use serde_json::{Map, Value, json};

use crate::crd::{PipelineMode, ScrapeMode, ScrapeStatus, TelemetryPipelineSpec};
use crate::names::child_name;

/// The collector's env var carrying its node's name (downward API `spec.nodeName`), for the
/// daemonset's discovery selector. The name upstream collector configs use for the same purpose.
pub const NODE_NAME_ENV: &str = "K8S_NODE_NAME";
/// The collector's env var carrying its pod's name (downward API `metadata.name`), whose StatefulSet
/// ordinal is its shard.
pub const POD_NAME_ENV: &str = "K8S_POD_NAME";
/// Env var names the operator sets on the collector; `spec.env` may not redefine them.
pub const RESERVED_ENV: [&str; 2] = [NODE_NAME_ENV, POD_NAME_ENV];

/// Temporary label holding a target's shard (`__tmp_` labels are Prometheus' scratch space, dropped
/// with every other `__` label).
const SHARD_LABEL: &str = "__tmp_shard";
/// Temporary label holding the pod name of a target's shard.
const SHARD_POD_LABEL: &str = "__tmp_shard_pod";

/// How the scrape targets are divided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scraping {
    /// One collector scrapes every target.
    Single,
    /// Each daemonset agent scrapes the pods of its own node.
    PerNode,
    /// The StatefulSet pod with ordinal `i` scrapes the targets whose `hashmod` of `__address__`
    /// modulo `shards` is `i`.
    Sharded {
        /// The modulus: the replica count the config is rendered for.
        shards: i32,
    },
}

fn scrapes(spec: &TelemetryPipelineSpec) -> bool {
    spec.receivers.prometheus.as_ref().is_some_and(|p| p.enabled)
}

fn autoscaled(spec: &TelemetryPipelineSpec) -> bool {
    spec.mode == PipelineMode::Deployment && spec.autoscaling.as_ref().is_some_and(|a| a.enabled)
}

/// Whether the gateway runs as a StatefulSet: it scrapes and may run more than one replica. A
/// gateway with autoscaling is one even at one replica, so the HPA's changes never switch the kind.
pub fn sharded_workload(spec: &TelemetryPipelineSpec) -> bool {
    spec.mode == PipelineMode::Deployment && scrapes(spec) && (autoscaled(spec) || spec.replicas.unwrap_or(1) > 1)
}

/// Whether the shard count is the StatefulSet's live `replicas` (an HPA owns them), which the
/// reconciler then reads before rendering.
pub fn reads_live_replicas(spec: &TelemetryPipelineSpec) -> bool {
    sharded_workload(spec) && autoscaled(spec)
}

/// How the pipeline's targets are divided; `None` when it does not scrape. `live_replicas` is the
/// StatefulSet's current replica count (used while an HPA owns it; absent before the StatefulSet
/// exists, when the API server will default it to 1).
pub fn scraping(spec: &TelemetryPipelineSpec, live_replicas: Option<i32>) -> Option<Scraping> {
    if !scrapes(spec) {
        return None;
    }
    Some(match spec.mode {
        PipelineMode::Daemonset => Scraping::PerNode,
        PipelineMode::Deployment if sharded_workload(spec) => {
            let shards = if autoscaled(spec) { live_replicas.unwrap_or(1) } else { spec.replicas.unwrap_or(1) };
            Scraping::Sharded { shards: shards.max(1) }
        }
        PipelineMode::Deployment => Scraping::Single,
    })
}

/// The field selector of an agent's pod discovery: its own node's pods.
pub fn node_field_selector() -> String {
    format!("spec.nodeName=${{env:{NODE_NAME_ENV}}}")
}

/// The relabel rules that end every job of shard-divided collectors of pipeline `pipeline`.
pub fn shard_rules(pipeline: &str, shards: i32) -> Vec<Value> {
    vec![
        json!({"source_labels": ["__address__"], "action": "hashmod", "modulus": shards,
               "target_label": SHARD_LABEL}),
        // `$$1`: the collector expands `$` in its config before relabeling sees `$1`.
        json!({"source_labels": [SHARD_LABEL], "action": "replace",
               "replacement": format!("{}-$$1", child_name(pipeline)), "target_label": SHARD_POD_LABEL}),
        json!({"source_labels": [SHARD_POD_LABEL], "action": "keep",
               "regex": format!("${{env:{POD_NAME_ENV}}}")}),
    ]
}

/// The scrape jobs of every prometheus receiver of `cfg`, with their config paths.
fn scrape_jobs(cfg: &mut Value) -> Vec<(String, &mut Map<String, Value>)> {
    let Some(receivers) = cfg.get_mut("receivers").and_then(Value::as_object_mut) else { return Vec::new() };
    let mut out = Vec::new();
    for (id, receiver) in receivers.iter_mut() {
        if id != "prometheus" && !id.starts_with("prometheus/") {
            continue;
        }
        let Some(jobs) = receiver.pointer_mut("/config/scrape_configs").and_then(Value::as_array_mut) else {
            continue;
        };
        for (i, job) in jobs.iter_mut().enumerate() {
            if let Some(job) = job.as_object_mut() {
                out.push((format!("receivers.{id}.config.scrape_configs[{i}]"), job));
            }
        }
    }
    out
}

/// Restricts one `kubernetes_sd_configs` entry of role `pod` to the agent's node: its `pod` selector
/// gets the node field selector (joined to a field selector it already has).
fn restrict_to_node(sd: &mut Map<String, Value>) {
    if sd.get("role").and_then(Value::as_str) != Some("pod") {
        return;
    }
    let node = node_field_selector();
    let selectors = sd.entry("selectors").or_insert_with(|| json!([]));
    let Some(selectors) = selectors.as_array_mut() else { return };
    match selectors.iter_mut().find(|s| s.get("role").and_then(Value::as_str) == Some("pod")) {
        Some(pod) => {
            let field = match pod.get("field").and_then(Value::as_str).filter(|f| !f.trim().is_empty()) {
                Some(existing) => format!("{existing},{node}"),
                None => node,
            };
            pod["field"] = json!(field);
        }
        None => selectors.push(json!({"role": "pod", "field": node})),
    }
}

/// Divides every scrape job of the final config (`configOverrides` merged) as `scraping` says.
pub fn divide_jobs(cfg: &mut Value, pipeline: &str, scraping: Scraping) {
    for (_, job) in scrape_jobs(cfg) {
        match scraping {
            Scraping::Single => {}
            Scraping::PerNode => {
                for sd in job.get_mut("kubernetes_sd_configs").and_then(Value::as_array_mut).into_iter().flatten() {
                    if let Some(sd) = sd.as_object_mut() {
                        restrict_to_node(sd);
                    }
                }
            }
            Scraping::Sharded { shards } => {
                let rules = job.entry("relabel_configs").or_insert_with(|| json!([]));
                if let Some(rules) = rules.as_array_mut() {
                    rules.extend(shard_rules(pipeline, shards));
                }
            }
        }
    }
}

/// Scrape jobs an agent cannot make node-local, as `(config path, why)`: static targets, which every
/// agent would scrape once per node.
pub fn node_local_problems(cfg: &Value, scraping: Option<Scraping>) -> Vec<(String, String)> {
    if scraping != Some(Scraping::PerNode) {
        return Vec::new();
    }
    let mut cfg = cfg.clone();
    scrape_jobs(&mut cfg)
        .into_iter()
        .filter(|(_, job)| job.get("static_configs").and_then(Value::as_array).is_some_and(|s| !s.is_empty()))
        .map(|(path, _)| {
            (
                format!("{path}.static_configs"),
                "a daemonset would scrape static targets once per node; scrape them from a deployment pipeline"
                    .to_string(),
            )
        })
        .collect()
}

fn downward(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: field_path.into(), ..Default::default() }),
            ..Default::default()
        }),
    }
}

/// The downward-API env vars the collector's divided jobs reference: its node's name for an agent,
/// its pod's name for a shard. None for a single collector or a pipeline that does not scrape.
pub fn identity_env(spec: &TelemetryPipelineSpec) -> Vec<EnvVar> {
    // The shard count does not change which variables are needed.
    match scraping(spec, None) {
        Some(Scraping::PerNode) => vec![downward(NODE_NAME_ENV, "spec.nodeName")],
        Some(Scraping::Sharded { .. }) => vec![downward(POD_NAME_ENV, "metadata.name")],
        Some(Scraping::Single) | None => Vec::new(),
    }
}

/// `status.scrape`: how the targets are divided.
pub fn status(scraping: Option<Scraping>, namespaces: &[String]) -> Option<ScrapeStatus> {
    let (mode, shards) = match scraping? {
        Scraping::Single => (ScrapeMode::Single, Some(1)),
        Scraping::PerNode => (ScrapeMode::PerNode, None),
        Scraping::Sharded { shards } => (ScrapeMode::Sharded, Some(shards)),
    };
    Some(ScrapeStatus { mode, shards, namespaces: namespaces.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> TelemetryPipelineSpec {
        serde_yaml::from_str(yaml).expect("spec")
    }

    #[test]
    fn the_topology_decides_how_targets_are_divided() {
        let scrape = "receivers: {prometheus: {}}\nexporters: {debug: {}}";
        assert_eq!(scraping(&spec(scrape), None), Some(Scraping::Single));
        assert_eq!(scraping(&spec(&format!("replicas: 1\n{scrape}")), None), Some(Scraping::Single));
        assert_eq!(scraping(&spec(&format!("replicas: 3\n{scrape}")), Some(7)), Some(Scraping::Sharded { shards: 3 }));
        assert_eq!(scraping(&spec(&format!("mode: daemonset\n{scrape}")), None), Some(Scraping::PerNode));
        assert_eq!(
            scraping(&spec("replicas: 3\nexporters: {debug: {}}"), None),
            None,
            "no scraping, nothing to divide"
        );
        assert_eq!(scraping(&spec("replicas: 3\nreceivers: {prometheus: {enabled: false}}"), None), None);
    }

    #[test]
    fn with_autoscaling_the_shards_follow_the_live_replicas() {
        let s = spec("autoscaling: {minReplicas: 2, maxReplicas: 5}\nreceivers: {prometheus: {}}");
        assert!(sharded_workload(&s) && reads_live_replicas(&s));
        assert_eq!(scraping(&s, Some(4)), Some(Scraping::Sharded { shards: 4 }));
        // Before the StatefulSet exists the API server defaults its replicas to 1 (the HPA raises them).
        assert_eq!(scraping(&s, None), Some(Scraping::Sharded { shards: 1 }));
        assert!(!reads_live_replicas(&spec("replicas: 3\nreceivers: {prometheus: {}}")));
        // Autoscaling off: spec.replicas again, and one replica is a plain Deployment.
        let off = spec("autoscaling: {enabled: false, maxReplicas: 5}\nreceivers: {prometheus: {}}");
        assert!(!sharded_workload(&off));
        assert_eq!(scraping(&off, Some(4)), Some(Scraping::Single));
    }

    #[test]
    fn an_agent_discovers_only_its_nodes_pods_joining_an_existing_pod_selector() {
        let mut cfg = json!({"receivers": {
            "prometheus": {"config": {"scrape_configs": [
                {"job_name": "a", "kubernetes_sd_configs": [{"role": "pod"}, {"role": "node"}]},
                {"job_name": "b", "kubernetes_sd_configs": [{"role": "pod", "selectors": [
                    {"role": "pod", "label": "app=x", "field": "status.phase=Running"}]}]},
            ]}},
            "prometheus/extra": {"config": {"scrape_configs": [{"job_name": "c", "kubernetes_sd_configs": [{"role": "pod"}]}]}},
            "otlp": {"config": {"scrape_configs": [{"kubernetes_sd_configs": [{"role": "pod"}]}]}},
        }});
        divide_jobs(&mut cfg, "main", Scraping::PerNode);
        let node = json!([{"role": "pod", "field": "spec.nodeName=${env:K8S_NODE_NAME}"}]);
        let jobs = "/receivers/prometheus/config/scrape_configs";
        assert_eq!(cfg.pointer(&format!("{jobs}/0/kubernetes_sd_configs/0/selectors")), Some(&node));
        assert_eq!(cfg.pointer(&format!("{jobs}/0/kubernetes_sd_configs/1/selectors")), None, "only pod discovery");
        assert_eq!(
            cfg.pointer(&format!("{jobs}/1/kubernetes_sd_configs/0/selectors")),
            Some(&json!([{"role": "pod", "label": "app=x",
                          "field": "status.phase=Running,spec.nodeName=${env:K8S_NODE_NAME}"}]))
        );
        assert_eq!(
            cfg.pointer("/receivers/prometheus~1extra/config/scrape_configs/0/kubernetes_sd_configs/0/selectors"),
            Some(&node)
        );
        assert_eq!(cfg.pointer("/receivers/otlp/config/scrape_configs/0/kubernetes_sd_configs/0/selectors"), None);
    }

    #[test]
    fn shards_end_every_job_with_hashmod_and_keep_their_own_ordinal() {
        let mut cfg = json!({"receivers": {"prometheus": {"config": {"scrape_configs": [
            {"job_name": "pods", "relabel_configs": [{"action": "keep", "source_labels": ["a"], "regex": "x"}]},
            {"job_name": "static", "static_configs": [{"targets": ["db:9187"]}]},
        ]}}}});
        divide_jobs(&mut cfg, "main", Scraping::Sharded { shards: 3 });
        let rules = cfg.pointer("/receivers/prometheus/config/scrape_configs/0/relabel_configs").expect("rules");
        assert_eq!(rules.as_array().map(Vec::len), Some(4), "the job's own rules first");
        assert_eq!(
            rules[1],
            json!({"source_labels": ["__address__"], "action": "hashmod", "modulus": 3, "target_label": "__tmp_shard"})
        );
        assert_eq!(rules[2]["replacement"], json!("main-collector-$$1"));
        assert_eq!(
            rules[3],
            json!({"source_labels": ["__tmp_shard_pod"], "action": "keep", "regex": "${env:K8S_POD_NAME}"})
        );
        let static_rules = cfg.pointer("/receivers/prometheus/config/scrape_configs/1/relabel_configs");
        assert_eq!(static_rules.and_then(Value::as_array).map(Vec::len), Some(3), "static targets are sharded too");
    }

    #[test]
    fn an_agent_refuses_static_targets_naming_the_job() {
        let cfg = json!({"receivers": {"prometheus": {"config": {"scrape_configs": [
            {"job_name": "pods", "kubernetes_sd_configs": [{"role": "pod"}]},
            {"job_name": "static", "static_configs": [{"targets": ["db:9187"]}]},
        ]}}}});
        let problems = node_local_problems(&cfg, Some(Scraping::PerNode));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "receivers.prometheus.config.scrape_configs[1].static_configs");
        assert!(node_local_problems(&cfg, Some(Scraping::Sharded { shards: 2 })).is_empty());
    }

    #[test]
    fn collectors_learn_their_node_or_pod_name_from_the_downward_api() {
        let field = |spec: &TelemetryPipelineSpec| -> Vec<(String, String)> {
            identity_env(spec)
                .into_iter()
                .map(|e| {
                    let path = e.value_from.and_then(|v| v.field_ref).map(|f| f.field_path).unwrap_or_default();
                    (e.name, path)
                })
                .collect()
        };
        let agent = spec("mode: daemonset\nreceivers: {prometheus: {}}");
        assert_eq!(field(&agent), [("K8S_NODE_NAME".to_string(), "spec.nodeName".to_string())]);
        let shards = spec("replicas: 2\nreceivers: {prometheus: {}}");
        assert_eq!(field(&shards), [("K8S_POD_NAME".to_string(), "metadata.name".to_string())]);
        assert!(field(&spec("receivers: {prometheus: {}}")).is_empty());
        assert!(field(&spec("mode: daemonset")).is_empty());
    }

    #[test]
    fn status_names_the_mode_the_shards_and_the_namespaces() {
        let own = ["obs".to_string()];
        assert_eq!(status(None, &own), None);
        assert_eq!(
            status(Some(Scraping::PerNode), &own),
            Some(ScrapeStatus { mode: ScrapeMode::PerNode, shards: None, namespaces: own.to_vec() })
        );
        let two = ["obs".to_string(), "shop".to_string()];
        assert_eq!(
            status(Some(Scraping::Sharded { shards: 3 }), &two),
            Some(ScrapeStatus { mode: ScrapeMode::Sharded, shards: Some(3), namespaces: two.to_vec() })
        );
    }
}
