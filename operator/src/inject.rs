//! Pure rendering of what an InstrumentedService adds to its target workload's pod template.
//!
//! The result is a server-side-apply patch sent with the injector's own field manager, so the API
//! server tracks exactly which env vars, annotations and labels we own; applying an empty patch with
//! the same manager ([`removal_patch`]) takes back precisely those fields and nothing else, the
//! downward-API variables included.
//!
//! The pod's identity (`k8s.pod.name`, `k8s.pod.uid`, `k8s.node.name`) is only known once a pod
//! exists, so it comes from the downward API: env vars with `valueFrom.fieldRef`, referenced from
//! `OTEL_RESOURCE_ATTRIBUTES` as `$(VAR)`, which the kubelet expands when it starts the container. An
//! agent's node IP (`OTEL_NODE_IP`) comes the same way. Kubernetes expands a reference only to a
//! variable defined *earlier* in the list, so the order of [`Injection::env`] is part of the
//! contract: server-side apply keeps the applied order for the entries it adds.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::{Value, json};

use crate::agent::{AppEndpoints, NODE_IP_ENV, NODE_IP_FIELD};
use crate::config::{PIPELINE_LABEL, PIPELINE_NS_LABEL};
use crate::crd::{AppEnvValue, InstrumentedService, Protocol, TargetKind};

/// Field manager of everything injected into workloads (distinct from the pipeline children's).
pub const INJECTOR_MANAGER: &str = "telemetry-operator-injector";

/// The env var naming the service; an app's own value wins over ours.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// The env var carrying resource attributes; an app's own value is merged with ours.
pub const RESOURCE_ATTRIBUTES_ENV: &str = "OTEL_RESOURCE_ATTRIBUTES";

/// Prefix of the resource attribute keys the operator derives from the Kubernetes API.
pub const RESERVED_ATTRIBUTE_PREFIX: &str = "k8s.";

/// Downward-API variables carrying the pod's identity, as (env var, pod field, resource attribute):
/// the names the OpenTelemetry Operator uses, unlikely to collide with an app's own variables.
pub const POD_IDENTITY_ENV: [(&str, &str, &str); 3] = [
    ("OTEL_RESOURCE_ATTRIBUTES_POD_NAME", "metadata.name", "k8s.pod.name"),
    ("OTEL_RESOURCE_ATTRIBUTES_POD_UID", "metadata.uid", "k8s.pod.uid"),
    ("OTEL_RESOURCE_ATTRIBUTES_NODE_NAME", "spec.nodeName", "k8s.node.name"),
];

/// The value of an injected env var.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A literal (`value`); may reference variables defined before it as `$(NAME)`.
    Literal(String),
    /// A field of the pod through the downward API (`valueFrom.fieldRef.fieldPath`).
    PodField(&'static str),
}

impl EnvValue {
    /// The literal value, if this is one.
    pub fn literal(&self) -> Option<&str> {
        match self {
            Self::Literal(v) => Some(v),
            Self::PodField(_) => None,
        }
    }

    /// The env entry's value part as it appears in a pod spec.
    fn to_json(&self) -> Value {
        match self {
            Self::Literal(v) => json!({"value": v}),
            // apiVersion spelled out as the API server defaults it, so the applied entry equals the live one.
            Self::PodField(path) => json!({"valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}),
        }
    }
}

/// What gets injected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Injection {
    /// Env vars set on the target containers, in order: every variable is defined before a value
    /// that references it as `$(NAME)`.
    pub env: Vec<(String, EnvValue)>,
    /// Pod-template annotations.
    pub annotations: BTreeMap<String, String>,
    /// Pod-template labels.
    pub labels: BTreeMap<String, String>,
}

impl Injection {
    /// The literal value of injected env var `name`, if it is injected with one.
    pub fn literal(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.literal())
    }

    /// The names of the injected env vars, in order.
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.env.iter().map(|(n, _)| n.as_str())
    }
}

/// Percent-encodes a value for `OTEL_RESOURCE_ATTRIBUTES` (W3C baggage style: `,` `=` `%` and spaces).
fn encode_attr(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            ',' | '=' | '%' | ' ' | '"' | ';' | '\\' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The semantic-convention attribute naming the workload.
fn workload_attr(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Deployment => "k8s.deployment.name",
        TargetKind::StatefulSet => "k8s.statefulset.name",
        TargetKind::DaemonSet => "k8s.daemonset.name",
    }
}

/// Computes the injection for an InstrumentedService wired to a pipeline with the given endpoints.
/// `scrape` says whether the pipeline scrapes this workload (adds the `prometheus.io/*` annotations).
pub fn injection(
    isvc: &InstrumentedService,
    namespace: &str,
    pipeline: (&str, &str),
    endpoints: &AppEndpoints,
    scrape: bool,
) -> Injection {
    let spec = &isvc.spec;
    let endpoint = match spec.protocol {
        Protocol::Grpc => &endpoints.urls.grpc,
        Protocol::HttpProtobuf => &endpoints.urls.http,
    };
    let literal = |name: &str, value: String| (name.to_string(), EnvValue::Literal(value));
    let mut env = vec![literal("ENABLE_TELEMETRY", "true".into())];
    if endpoints.node_ip {
        // Before the endpoint that references it.
        env.push((NODE_IP_ENV.to_string(), EnvValue::PodField(NODE_IP_FIELD)));
    }
    env.push(literal("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()));
    env.push(literal("OTEL_EXPORTER_OTLP_PROTOCOL", spec.protocol.as_str().into()));
    env.push(literal(SERVICE_NAME_ENV, spec.service_name.clone().unwrap_or_else(|| spec.target.name.clone())));
    // Before the attributes that reference them.
    env.extend(POD_IDENTITY_ENV.iter().map(|(name, field, _)| (name.to_string(), EnvValue::PodField(field))));
    let mut attrs = vec![
        ("k8s.namespace.name".to_string(), encode_attr(namespace)),
        (workload_attr(spec.target.kind).to_string(), encode_attr(&spec.target.name)),
    ];
    // References, not values: encoding would break the `$(NAME)` the kubelet expands (and a pod name,
    // uid or node name never holds a character that needs encoding).
    attrs.extend(POD_IDENTITY_ENV.iter().map(|(name, _, attr)| (attr.to_string(), format!("$({name})"))));
    attrs.extend(spec.resource_attributes.iter().map(|(k, v)| (k.clone(), encode_attr(v))));
    let attrs = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    env.push(literal(RESOURCE_ATTRIBUTES_ENV, attrs));
    if let Some(s) = &spec.sampling {
        env.push(literal("OTEL_TRACES_SAMPLER", s.sampler.as_str().into()));
        if let Some(arg) = &s.argument {
            env.push(literal("OTEL_TRACES_SAMPLER_ARG", arg.clone()));
        }
    }
    let mut annotations = BTreeMap::new();
    if let Some(m) = spec.metrics.as_ref().filter(|m| m.enabled && scrape) {
        annotations.insert("prometheus.io/scrape".to_string(), "true".to_string());
        annotations.insert("prometheus.io/port".to_string(), m.port.to_string());
        annotations.insert("prometheus.io/path".to_string(), m.path.clone());
    }
    let labels = BTreeMap::from([
        (PIPELINE_LABEL.to_string(), pipeline.1.to_string()),
        (PIPELINE_NS_LABEL.to_string(), pipeline.0.to_string()),
    ]);
    Injection { env, annotations, labels }
}

fn api_version(kind: TargetKind) -> &'static str {
    // All supported kinds live in apps/v1.
    let _ = kind;
    "apps/v1"
}

/// The server-side-apply patch adding `inj` to the given containers of the target. `attributes`
/// replaces the value of `OTEL_RESOURCE_ATTRIBUTES` in the containers it names (a merged value).
pub fn apply_patch(
    kind: TargetKind,
    name: &str,
    containers: &[String],
    inj: &Injection,
    attributes: &BTreeMap<String, String>,
) -> Value {
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| {
            let env: Vec<Value> = inj
                .env
                .iter()
                .map(|(n, v)| {
                    let mut entry = match attributes.get(c) {
                        Some(merged) if n == RESOURCE_ATTRIBUTES_ENV => EnvValue::Literal(merged.clone()).to_json(),
                        _ => v.to_json(),
                    };
                    entry["name"] = json!(n);
                    entry
                })
                .collect();
            json!({"name": c, "env": env})
        })
        .collect();
    let mut template_meta = json!({"labels": inj.labels});
    if !inj.annotations.is_empty() {
        template_meta["annotations"] = json!(inj.annotations);
    }
    json!({
        "apiVersion": api_version(kind),
        "kind": kind.as_str(),
        "metadata": {"name": name},
        "spec": {"template": {"metadata": template_meta, "spec": {"containers": containers}}},
    })
}

/// A strategic-merge patch writing the workload's own values back into their containers: sent with
/// each value's own field manager before the injector lets go of a merged value, so the workload ends
/// as it was before injection and the value belongs to whoever set it.
pub fn restore_patch(values: &[&AppEnvValue]) -> Value {
    let containers: Vec<Value> = values
        .iter()
        .map(|a| json!({"name": a.container, "env": [{"name": RESOURCE_ATTRIBUTES_ENV, "value": a.value}]}))
        .collect();
    json!({"spec": {"template": {"spec": {"containers": containers}}}})
}

/// Splits an `OTEL_RESOURCE_ATTRIBUTES` value into `(key, encoded value)` pairs; an item without
/// `=` is kept whole as a key with no value.
fn parse_attributes(v: &str) -> Vec<(String, Option<String>)> {
    v.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (item.to_string(), None),
        })
        .collect()
}

/// Merges the workload's own `OTEL_RESOURCE_ATTRIBUTES` (`theirs`) with ours. On a key both set, the
/// workload's value wins (as the OpenTelemetry Operator does: the app knows itself best), except for
/// `k8s.*` keys, which we derive from the Kubernetes API and which nobody may claim otherwise. Keys
/// only the workload sets are kept, after ours, in its order; values stay encoded as they were.
pub fn merge_resource_attributes(theirs: &str, ours: &str) -> String {
    let theirs = parse_attributes(theirs);
    let ours = parse_attributes(ours);
    let theirs_of = |k: &str| theirs.iter().find(|(tk, _)| tk == k);
    let mut out: Vec<String> = ours
        .iter()
        .map(|(k, v)| match theirs_of(k) {
            Some((_, Some(tv))) if !k.starts_with(RESERVED_ATTRIBUTE_PREFIX) => format!("{k}={tv}"),
            _ => format!("{k}={}", v.as_deref().unwrap_or_default()),
        })
        .collect();
    out.extend(theirs.iter().filter(|(k, _)| !ours.iter().any(|(ok, _)| ok == k)).map(|(k, v)| match v {
        Some(v) => format!("{k}={v}"),
        None => k.clone(),
    }));
    out.join(",")
}

/// An empty apply: the API server removes every field the injector manager owned on the target.
pub fn removal_patch(kind: TargetKind, name: &str) -> Value {
    json!({"apiVersion": api_version(kind), "kind": kind.as_str(), "metadata": {"name": name}})
}

/// The values of env var `name` that the workload sets itself in `containers`: a field manager other
/// than the injector owns the value (the app's manifest, its chart, a `kubectl set env`). The app
/// knows its own name better than we do, so for `OTEL_SERVICE_NAME` such a value wins: the injector
/// then applies that same value, which server-side apply lets two managers co-own without a conflict
/// (dropping the entry instead would delete it when we were its only list-entry owner). For
/// `OTEL_RESOURCE_ATTRIBUTES` it is merged with ours ([`merge_resource_attributes`]).
pub fn app_owned_env(
    workload: &Value,
    managed_fields: &[ManagedFieldsEntry],
    containers: &[String],
    name: &str,
) -> Vec<AppEnvValue> {
    let all = workload.pointer("/spec/template/spec/containers").and_then(Value::as_array);
    all.into_iter()
        .flatten()
        .filter(|c| c.get("name").and_then(Value::as_str).is_some_and(|n| containers.iter().any(|w| w == n)))
        .filter_map(|c| {
            let container = c.get("name").and_then(Value::as_str)?;
            let entry =
                c.get("env")?.as_array()?.iter().find(|e| e.get("name").and_then(Value::as_str) == Some(name))?;
            let manager = managed_fields
                .iter()
                .filter(|m| m.manager.as_deref() != Some(INJECTOR_MANAGER))
                .find(|m| m.fields_v1.as_ref().is_some_and(|f| owns_env(&f.0, container, name)))?;
            Some(AppEnvValue {
                container: container.to_string(),
                value: entry.get("value").and_then(Value::as_str).unwrap_or_default().to_string(),
                manager: manager.manager.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// The first value of env var `name` the workload sets itself (see [`app_owned_env`]).
pub fn app_set_env(
    workload: &Value,
    managed_fields: &[ManagedFieldsEntry],
    containers: &[String],
    name: &str,
) -> Option<String> {
    app_owned_env(workload, managed_fields, containers, name).into_iter().next().map(|a| a.value)
}

/// The current value of env var `name` in container `container` of a workload, if the entry exists.
pub fn env_value(workload: &Value, container: &str, name: &str) -> Option<String> {
    let all = workload.pointer("/spec/template/spec/containers")?.as_array()?;
    let c = all.iter().find(|c| c.get("name").and_then(Value::as_str) == Some(container))?;
    let entry = c.get("env")?.as_array()?.iter().find(|e| e.get("name").and_then(Value::as_str) == Some(name))?;
    Some(entry.get("value").and_then(Value::as_str).unwrap_or_default().to_string())
}

/// Whether a managed-fields set (`fieldsV1`) contains the value of env var `name` of container `container`.
fn owns_env(fields: &Value, container: &str, name: &str) -> bool {
    // Keys of associative lists are the JSON of the key fields, e.g. `k:{"name":"app"}`.
    let c_key = format!("k:{}", json!({"name": container}));
    let e_key = format!("k:{}", json!({"name": name}));
    fields
        .get("f:spec")
        .and_then(|v| v.get("f:template"))
        .and_then(|v| v.get("f:spec"))
        .and_then(|v| v.get("f:containers"))
        .and_then(|v| v.get(&c_key))
        .and_then(|v| v.get("f:env"))
        .and_then(|v| v.get(&e_key))
        // The value, not just the list entry: after `kubectl set env` the entry stays ours but the value is theirs.
        .and_then(|v| v.get("f:value"))
        .is_some()
}

/// Which containers to inject into: the named one, or all of them.
pub fn select_containers(all: &[String], wanted: Option<&str>) -> Result<Vec<String>, String> {
    match wanted {
        Some(w) if all.iter().any(|c| c == w) => Ok(vec![w.to_string()]),
        Some(w) => {
            Err(format!("spec.target.container: container {w:?} not found in the target (has: {})", all.join(", ")))
        }
        None => Ok(all.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Endpoints;

    fn isvc(yaml: &str) -> InstrumentedService {
        InstrumentedService::new("reviews", serde_yaml::from_str(yaml).expect("spec"))
    }

    fn eps() -> AppEndpoints {
        AppEndpoints {
            urls: Endpoints {
                grpc: "http://main-collector.obs.svc:4317".into(),
                http: "http://main-collector.obs.svc:4318".into(),
            },
            node_ip: false,
        }
    }

    fn node_ip_eps() -> AppEndpoints {
        AppEndpoints {
            urls: Endpoints { grpc: "http://$(OTEL_NODE_IP):4317".into(), http: "http://$(OTEL_NODE_IP):4318".into() },
            node_ip: true,
        }
    }

    fn env_of<'a>(inj: &'a Injection, name: &str) -> Option<&'a str> {
        inj.literal(name)
    }

    /// The `$(NAME)` references in a value (what the kubelet expands).
    fn references(value: &str) -> Vec<&str> {
        value.split("$(").skip(1).filter_map(|rest| rest.split_once(')').map(|(name, _)| name)).collect()
    }

    /// Each env entry of a patch's first container as (name, the entry), in order.
    fn patch_env(p: &Value) -> Vec<(String, Value)> {
        let env = p.pointer("/spec/template/spec/containers/0/env").and_then(Value::as_array).cloned();
        env.unwrap_or_default().into_iter().map(|e| (e["name"].as_str().unwrap_or_default().to_string(), e)).collect()
    }

    #[test]
    fn grpc_injection_sets_otel_env_and_labels() {
        let i = isvc("pipelineRef: {name: main}\ntarget: {name: reviews}\nresourceAttributes: {team: 'a,b'}");
        let inj = injection(&i, "apps", ("obs", "main"), &eps(), true);
        assert_eq!(env_of(&inj, "ENABLE_TELEMETRY"), Some("true"));
        assert_eq!(env_of(&inj, "OTEL_EXPORTER_OTLP_ENDPOINT"), Some("http://main-collector.obs.svc:4317"));
        assert_eq!(env_of(&inj, "OTEL_EXPORTER_OTLP_PROTOCOL"), Some("grpc"));
        assert_eq!(env_of(&inj, "OTEL_SERVICE_NAME"), Some("reviews"));
        assert_eq!(
            env_of(&inj, "OTEL_RESOURCE_ATTRIBUTES"),
            Some(
                "k8s.namespace.name=apps,k8s.deployment.name=reviews,k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME),\
                 k8s.pod.uid=$(OTEL_RESOURCE_ATTRIBUTES_POD_UID),k8s.node.name=$(OTEL_RESOURCE_ATTRIBUTES_NODE_NAME),\
                 team=a%2Cb"
            )
        );
        assert_eq!(env_of(&inj, "OTEL_TRACES_SAMPLER"), None);
        assert!(inj.annotations.is_empty(), "no metrics section, no scrape annotations");
        assert_eq!(inj.labels.get(PIPELINE_LABEL).map(String::as_str), Some("main"));
    }

    #[test]
    fn http_protocol_sampling_and_metrics() {
        let i = isvc(
            "pipelineRef: {name: main}\ntarget: {name: reviews, kind: StatefulSet}\nprotocol: http/protobuf\nserviceName: rv\nsampling: {sampler: parentbased_traceidratio, argument: '0.25'}\nmetrics: {port: 9464}",
        );
        let inj = injection(&i, "apps", ("obs", "main"), &eps(), true);
        assert_eq!(env_of(&inj, "OTEL_EXPORTER_OTLP_ENDPOINT"), Some("http://main-collector.obs.svc:4318"));
        assert_eq!(env_of(&inj, "OTEL_EXPORTER_OTLP_PROTOCOL"), Some("http/protobuf"));
        assert_eq!(env_of(&inj, "OTEL_SERVICE_NAME"), Some("rv"));
        assert_eq!(env_of(&inj, "OTEL_TRACES_SAMPLER_ARG"), Some("0.25"));
        assert!(env_of(&inj, "OTEL_RESOURCE_ATTRIBUTES").is_some_and(|v| v.contains("k8s.statefulset.name=reviews")));
        assert_eq!(inj.annotations.get("prometheus.io/port").map(String::as_str), Some("9464"));
        assert_eq!(inj.annotations.get("prometheus.io/path").map(String::as_str), Some("/metrics"));
        let no_scrape = injection(&i, "apps", ("obs", "main"), &eps(), false);
        assert!(no_scrape.annotations.is_empty());
    }

    #[test]
    fn patches_touch_only_injected_fields() {
        let i = isvc("pipelineRef: {name: main}\ntarget: {name: reviews}");
        let inj = injection(&i, "apps", ("obs", "main"), &eps(), true);
        let p = apply_patch(TargetKind::Deployment, "reviews", &["app".into()], &inj, &BTreeMap::new());
        assert_eq!(p["kind"], "Deployment");
        assert_eq!(p.pointer("/spec/template/spec/containers/0/name"), Some(&json!("app")));
        assert_eq!(p.pointer("/spec/template/spec/containers/0/env/0/name"), Some(&json!("ENABLE_TELEMETRY")));
        assert!(p.pointer("/spec/replicas").is_none());
        assert!(p.pointer("/metadata/ownerReferences").is_none(), "never own the user's workload");
        assert_eq!(removal_patch(TargetKind::Deployment, "reviews").get("spec"), None);
    }

    #[test]
    fn app_set_env_is_what_the_injector_does_not_own() {
        let workload = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "OTEL_SERVICE_NAME", "value": "mine"}]},
            {"name": "sidecar"}]}}}});
        let entry = |manager: &str, container: &str| {
            serde_json::from_value::<ManagedFieldsEntry>(json!({"manager": manager, "operation": "Apply",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                    format!("k:{{\"name\":\"{container}\"}}"): {".": {}, "f:env": {
                        "k:{\"name\":\"OTEL_SERVICE_NAME\"}": {".": {}, "f:value": {}}}}}}}}}}))
            .expect("entry")
        };
        let app = ["app".to_string()];
        assert_eq!(app_set_env(&workload, &[entry("helm", "app")], &app, "OTEL_SERVICE_NAME").as_deref(), Some("mine"));
        // Our own earlier injection is not the app's; co-owned with another manager it is.
        assert_eq!(app_set_env(&workload, &[entry(INJECTOR_MANAGER, "app")], &app, "OTEL_SERVICE_NAME"), None);
        let both = [entry(INJECTOR_MANAGER, "app"), entry("kubectl-set", "app")];
        assert_eq!(app_set_env(&workload, &both, &app, "OTEL_SERVICE_NAME").as_deref(), Some("mine"));
        // Only the selected containers count.
        assert_eq!(app_set_env(&workload, &[], &["sidecar".to_string()], "OTEL_SERVICE_NAME"), None);
        assert_eq!(app_set_env(&workload, &[], &app, "OTEL_RESOURCE_ATTRIBUTES"), None);
        let owned = app_owned_env(&workload, &both, &app, "OTEL_SERVICE_NAME");
        assert_eq!(
            owned,
            vec![AppEnvValue { container: "app".into(), value: "mine".into(), manager: "kubectl-set".into() }]
        );
        assert_eq!(env_value(&workload, "app", "OTEL_SERVICE_NAME").as_deref(), Some("mine"));
        assert_eq!(env_value(&workload, "sidecar", "OTEL_SERVICE_NAME"), None);
    }

    #[test]
    fn merged_attributes_keep_the_apps_values_but_not_its_k8s_keys() {
        let ours = "k8s.namespace.name=apps,k8s.deployment.name=reviews,deployment.environment=staging,tier=api";
        let theirs = "team=payments, deployment.environment=prod ,k8s.namespace.name=other,k8s.pod.name=p,odd";
        assert_eq!(
            merge_resource_attributes(theirs, ours),
            "k8s.namespace.name=apps,k8s.deployment.name=reviews,deployment.environment=prod,tier=api,\
             team=payments,k8s.pod.name=p,odd"
        );
        assert_eq!(merge_resource_attributes("", ours), ours);
        // Encoded values stay as the app wrote them.
        assert_eq!(merge_resource_attributes("x=a%2Cb", "k8s.namespace.name=n"), "k8s.namespace.name=n,x=a%2Cb");
    }

    #[test]
    fn merged_values_replace_the_attributes_of_their_containers_only() {
        let i = isvc("pipelineRef: {name: main}\ntarget: {name: reviews}");
        let inj = injection(&i, "apps", ("obs", "main"), &eps(), true);
        let merged = BTreeMap::from([("app".to_string(), "k8s.namespace.name=apps,team=a".to_string())]);
        let p = apply_patch(TargetKind::Deployment, "reviews", &["app".into(), "side".into()], &inj, &merged);
        let attrs = |c: usize| {
            p.pointer(&format!("/spec/template/spec/containers/{c}/env"))
                .and_then(Value::as_array)
                .and_then(|env| env.iter().find(|e| e["name"] == RESOURCE_ATTRIBUTES_ENV))
                .map(|e| e["value"].clone())
        };
        assert_eq!(attrs(0), Some(json!("k8s.namespace.name=apps,team=a")));
        assert_eq!(attrs(1), Some(json!(env_of(&inj, RESOURCE_ATTRIBUTES_ENV))));
        let restore =
            restore_patch(&[&AppEnvValue { container: "app".into(), value: "team=a".into(), manager: "helm".into() }]);
        assert_eq!(restore.pointer("/spec/template/spec/containers/0/env/0/value"), Some(&json!("team=a")));
    }

    /// Asserts that every `$(NAME)` in the patch's env refers to an entry before it (Kubernetes leaves
    /// any other reference unexpanded).
    fn assert_references_defined_earlier(p: &Value) {
        let env = patch_env(p);
        for (i, (name, entry)) in env.iter().enumerate() {
            for r in references(entry["value"].as_str().unwrap_or_default()) {
                assert!(env[..i].iter().any(|(n, _)| n == r), "{name} references {r}, not defined before it: {env:?}");
            }
        }
    }

    #[test]
    fn pod_identity_comes_from_the_downward_api_before_the_attributes_reference_it() {
        let i = isvc("pipelineRef: {name: main}\ntarget: {name: reviews, kind: DaemonSet}");
        let inj = injection(&i, "apps", ("obs", "main"), &eps(), true);
        assert_eq!(
            inj.env_names().collect::<Vec<_>>(),
            [
                "ENABLE_TELEMETRY",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_SERVICE_NAME",
                "OTEL_RESOURCE_ATTRIBUTES_POD_NAME",
                "OTEL_RESOURCE_ATTRIBUTES_POD_UID",
                "OTEL_RESOURCE_ATTRIBUTES_NODE_NAME",
                "OTEL_RESOURCE_ATTRIBUTES",
            ]
        );
        let p = apply_patch(TargetKind::DaemonSet, "reviews", &["app".into()], &inj, &BTreeMap::new());
        let env = patch_env(&p);
        let field = |name: &str| {
            env.iter().find(|(n, _)| n == name).and_then(|(_, e)| e.pointer("/valueFrom/fieldRef/fieldPath").cloned())
        };
        assert_eq!(field("OTEL_RESOURCE_ATTRIBUTES_POD_NAME"), Some(json!("metadata.name")));
        assert_eq!(field("OTEL_RESOURCE_ATTRIBUTES_POD_UID"), Some(json!("metadata.uid")));
        assert_eq!(field("OTEL_RESOURCE_ATTRIBUTES_NODE_NAME"), Some(json!("spec.nodeName")));
        // A downward-API entry carries no `value` (the API server refuses both), a literal no `valueFrom`.
        for (name, entry) in &env {
            assert!(entry.get("value").is_some() != entry.get("valueFrom").is_some(), "{name}: {entry}");
        }
        assert_references_defined_earlier(&p);
        let attrs = env_of(&inj, RESOURCE_ATTRIBUTES_ENV).expect("attributes");
        assert!(
            attrs.contains("k8s.daemonset.name=reviews,k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)"),
            "{attrs}"
        );
    }

    #[test]
    fn an_agents_node_ip_is_defined_before_the_endpoint_that_uses_it() {
        for (protocol, port) in [("grpc", 4317), ("http/protobuf", 4318)] {
            let i = isvc(&format!("pipelineRef: {{name: main}}\ntarget: {{name: reviews}}\nprotocol: {protocol}"));
            let inj = injection(&i, "apps", ("obs", "main"), &node_ip_eps(), true);
            let names: Vec<_> = inj.env_names().collect();
            assert_eq!(&names[..3], ["ENABLE_TELEMETRY", "OTEL_NODE_IP", "OTEL_EXPORTER_OTLP_ENDPOINT"]);
            assert_eq!(inj.env[1].1, EnvValue::PodField("status.hostIP"));
            let endpoint = format!("http://$(OTEL_NODE_IP):{port}");
            assert_eq!(env_of(&inj, "OTEL_EXPORTER_OTLP_ENDPOINT"), Some(endpoint.as_str()));
            let p = apply_patch(TargetKind::Deployment, "reviews", &["app".into()], &inj, &BTreeMap::new());
            assert_references_defined_earlier(&p);
        }
        // Through the Service: no node IP variable at all.
        let i = isvc("pipelineRef: {name: main}\ntarget: {name: reviews}");
        assert!(!injection(&i, "apps", ("obs", "main"), &eps(), true).env_names().any(|n| n == NODE_IP_ENV));
    }

    #[test]
    fn a_merged_app_value_keeps_our_references_and_their_definitions_before_it() {
        let i = isvc("pipelineRef: {name: main}\ntarget: {name: reviews}");
        let inj = injection(&i, "apps", ("obs", "main"), &node_ip_eps(), true);
        let ours = env_of(&inj, RESOURCE_ATTRIBUTES_ENV).expect("attributes");
        // The app tries its own pod name: k8s.* stays ours, its other keys are kept.
        let merged = merge_resource_attributes("team=payments,k8s.pod.name=mine", ours);
        assert!(
            merged.contains("k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)") && merged.ends_with(",team=payments")
        );
        let p = apply_patch(
            TargetKind::Deployment,
            "reviews",
            &["app".into()],
            &inj,
            &BTreeMap::from([("app".to_string(), merged.clone())]),
        );
        assert_eq!(
            patch_env(&p).iter().find(|(n, _)| n == RESOURCE_ATTRIBUTES_ENV).map(|(_, e)| e["value"].clone()),
            Some(json!(merged))
        );
        assert_references_defined_earlier(&p);
    }

    #[test]
    fn container_selection() {
        let all = vec!["app".to_string(), "sidecar".to_string()];
        assert_eq!(select_containers(&all, None), Ok(all.clone()));
        assert_eq!(select_containers(&all, Some("app")), Ok(vec!["app".to_string()]));
        assert!(select_containers(&all, Some("x")).is_err_and(|e| e.contains("spec.target.container")));
    }
}
