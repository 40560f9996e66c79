//! Tenant guardrails: what the cluster admin lets the authors of TelemetryPipelines put into their
//! collector pods. Creating a pipeline creates pods, so without these a namespace tenant could run any
//! image, read any Secret of the namespace into an env var, schedule onto tainted or chosen nodes,
//! mount a node's `/`, and open ports on every node's IP. The policy comes from operator flags (chart values); a refused pipeline gets
//! `ConfigValid=False` reason `NotAllowed` with a message naming each offending field, and nothing is
//! rolled out. Pure functions: the reconciler only reports what [`check`] returns.

use crate::crd::TelemetryPipelineSpec;
use crate::resources::{DEFAULT_IMAGE, mounts_host_fs};
use crate::validate::Problem;

/// Repositories of the upstream OpenTelemetry Collector images, allowed by default beside ours.
pub const UPSTREAM_COLLECTOR_REPOSITORIES: &[&str] =
    &["otel/opentelemetry-collector", "otel/opentelemetry-collector-contrib", "otel/opentelemetry-collector-k8s"];

/// What pipeline authors may set; set by the cluster admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPolicy {
    /// Images `spec.image` may name: an entry is an image repository (any tag or digest of it) or an
    /// exact image reference. The operator's own default collector image is always allowed.
    pub allowed_images: Vec<String>,
    /// Whether `spec.env[].valueFrom` is allowed (it can read any Secret or ConfigMap of the namespace).
    pub allow_env_value_from: bool,
    /// Whether `spec.tolerations` is allowed.
    pub allow_tolerations: bool,
    /// Whether `spec.nodeSelector` is allowed.
    pub allow_node_selector: bool,
    /// Whether the node's `/` may be mounted (hostmetrics in daemonset mode, a hostPath volume).
    pub allow_host_path: bool,
    /// Whether an agent may open its OTLP ports on the nodes' IPs (`spec.agent.hostPort`).
    pub allow_host_port: bool,
}

impl Default for TenantPolicy {
    fn default() -> Self {
        let mut allowed_images = vec![repository(DEFAULT_IMAGE).to_string()];
        allowed_images.extend(UPSTREAM_COLLECTOR_REPOSITORIES.iter().map(|r| r.to_string()));
        Self {
            allowed_images,
            allow_env_value_from: true,
            allow_tolerations: true,
            allow_node_selector: true,
            allow_host_path: true,
            allow_host_port: true,
        }
    }
}

/// The repository of an image reference: without its digest (`@sha256:…`) and tag (`:tag` after the
/// last `/`, so a registry port is not mistaken for a tag).
pub fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

impl TenantPolicy {
    /// Whether `image` is allowed: the operator's default, or an allowed repository or reference.
    pub fn image_allowed(&self, image: &str, default_image: &str) -> bool {
        image == default_image || self.allowed_images.iter().any(|a| a == image || a == repository(image))
    }
}

/// Every field of `spec` the policy refuses, named as in the resource.
pub fn check(spec: &TelemetryPipelineSpec, policy: &TenantPolicy, default_image: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut refuse = |field: String, message: String| out.push(Problem { field, message });
    if let Some(image) = spec.image.as_deref().filter(|i| !policy.image_allowed(i, default_image)) {
        refuse(
            "spec.image".into(),
            format!("image {image:?} is not allowed by the operator's tenant policy (allowed: {})", {
                let mut allowed = vec![default_image.to_string()];
                allowed.extend(policy.allowed_images.iter().cloned());
                allowed.join(", ")
            }),
        );
    }
    if !policy.allow_env_value_from {
        for (i, e) in spec.env.iter().flatten().enumerate().filter(|(_, e)| e.value_from.is_some()) {
            refuse(
                format!("spec.env[{i}].valueFrom"),
                format!(
                    "env var {:?} reads a Secret, ConfigMap or field; the tenant policy allows literal values only (credentials go through spec.exporters.otlp[].auth)",
                    e.name
                ),
            );
        }
    }
    if !policy.allow_tolerations && spec.tolerations.as_ref().is_some_and(|t| !t.is_empty()) {
        refuse("spec.tolerations".into(), "tolerations are not allowed by the operator's tenant policy".into());
    }
    if !policy.allow_node_selector && spec.node_selector.as_ref().is_some_and(|n| !n.is_empty()) {
        refuse("spec.nodeSelector".into(), "a node selector is not allowed by the operator's tenant policy".into());
    }
    if !policy.allow_host_path && mounts_host_fs(spec) {
        refuse(
            "spec.receivers.hostMetrics".into(),
            "host metrics in daemonset mode mount the node's / (hostPath), which the operator's tenant policy does not allow".into(),
        );
    }
    if !policy.allow_host_port && spec.agent.as_ref().is_some_and(|a| a.host_port) {
        refuse(
            "spec.agent.hostPort".into(),
            "host ports open the collector's OTLP ports on every node's IP, which the operator's tenant policy does not allow (spec.agent.endpoint: Service keeps telemetry node-local without them)".into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> TelemetryPipelineSpec {
        serde_yaml::from_str(yaml).expect("spec")
    }

    fn locked() -> TenantPolicy {
        TenantPolicy {
            allow_env_value_from: false,
            allow_tolerations: false,
            allow_node_selector: false,
            allow_host_path: false,
            allow_host_port: false,
            ..TenantPolicy::default()
        }
    }

    #[test]
    fn repositories_ignore_tags_digests_and_registry_ports() {
        assert_eq!(repository("otel/opentelemetry-collector:0.155.0"), "otel/opentelemetry-collector");
        assert_eq!(repository("localhost:5000/collector"), "localhost:5000/collector");
        assert_eq!(repository("localhost:5000/collector:1@sha256:abc"), "localhost:5000/collector");
    }

    #[test]
    fn default_policy_allows_our_and_the_upstream_collector_only() {
        let p = TenantPolicy::default();
        assert!(p.image_allowed(DEFAULT_IMAGE, DEFAULT_IMAGE));
        assert!(p.image_allowed(&format!("{}:9.9.9", repository(DEFAULT_IMAGE)), DEFAULT_IMAGE));
        assert!(p.image_allowed("otel/opentelemetry-collector-contrib:0.155.0", DEFAULT_IMAGE));
        assert!(!p.image_allowed("evil/miner:1", DEFAULT_IMAGE));
        assert!(!p.image_allowed("otel/opentelemetry-collector-evil:1", DEFAULT_IMAGE));
        // The admin's own default (the operator's --collector-image) is always allowed.
        assert!(p.image_allowed("mirror.local/collector:2", "mirror.local/collector:2"));
        let problems = check(&spec("image: evil/miner:1\nexporters: {debug: {}}"), &p, DEFAULT_IMAGE);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "spec.image");
        assert!(problems[0].message.contains("evil/miner:1"));
    }

    #[test]
    fn a_locked_policy_names_every_refused_field() {
        let s = spec(
            r#"
mode: daemonset
env: [{name: A, value: x}, {name: B, valueFrom: {secretKeyRef: {name: s, key: k}}}]
tolerations: [{operator: Exists}]
nodeSelector: {pool: infra}
receivers: {hostMetrics: {}}
agent: {hostPort: true}
exporters: {debug: {}}
"#,
        );
        let fields: Vec<String> = check(&s, &locked(), DEFAULT_IMAGE).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "spec.env[1].valueFrom",
                "spec.tolerations",
                "spec.nodeSelector",
                "spec.receivers.hostMetrics",
                "spec.agent.hostPort"
            ]
        );
        assert!(check(&s, &TenantPolicy::default(), DEFAULT_IMAGE).is_empty());
        // Host metrics in deployment mode mount nothing.
        let gateway = spec("receivers: {hostMetrics: {}}\nexporters: {debug: {}}");
        assert!(check(&gateway, &locked(), DEFAULT_IMAGE).is_empty());
    }
}
