//! Pure rendering of what an InstrumentedService adds to its target workload's pod template.
//!
//! The result is a server-side-apply patch sent with the injector's own field manager, so the API
//! server tracks exactly which env vars, annotations and labels we own; applying an empty patch with
//! the same manager ([`removal_patch`]) takes back precisely those fields and nothing else.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::{Value, json};

use crate::config::{PIPELINE_LABEL, PIPELINE_NS_LABEL};
use crate::crd::{Endpoints, InstrumentedService, Protocol, TargetKind};

/// Field manager of everything injected into workloads (distinct from the pipeline children's).
pub const INJECTOR_MANAGER: &str = "telemetry-operator-injector";

/// The env var naming the service; an app's own value wins over ours.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// What gets injected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Injection {
    /// Env vars (name, value) set on the target containers.
    pub env: Vec<(String, String)>,
    /// Pod-template annotations.
    pub annotations: BTreeMap<String, String>,
    /// Pod-template labels.
    pub labels: BTreeMap<String, String>,
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
    endpoints: &Endpoints,
    scrape: bool,
) -> Injection {
    let spec = &isvc.spec;
    let endpoint = match spec.protocol {
        Protocol::Grpc => &endpoints.grpc,
        Protocol::HttpProtobuf => &endpoints.http,
    };
    let mut attrs = vec![
        ("k8s.namespace.name".to_string(), namespace.to_string()),
        (workload_attr(spec.target.kind).to_string(), spec.target.name.clone()),
    ];
    attrs.extend(spec.resource_attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
    let attrs = attrs.iter().map(|(k, v)| format!("{k}={}", encode_attr(v))).collect::<Vec<_>>().join(",");
    let mut env = vec![
        ("ENABLE_TELEMETRY".to_string(), "true".to_string()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), endpoint.clone()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL".to_string(), spec.protocol.as_str().to_string()),
        ("OTEL_SERVICE_NAME".to_string(), spec.service_name.clone().unwrap_or_else(|| spec.target.name.clone())),
        ("OTEL_RESOURCE_ATTRIBUTES".to_string(), attrs),
    ];
    if let Some(s) = &spec.sampling {
        env.push(("OTEL_TRACES_SAMPLER".to_string(), s.sampler.as_str().to_string()));
        if let Some(arg) = &s.argument {
            env.push(("OTEL_TRACES_SAMPLER_ARG".to_string(), arg.clone()));
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

/// The server-side-apply patch adding `inj` to the given containers of the target.
pub fn apply_patch(kind: TargetKind, name: &str, containers: &[String], inj: &Injection) -> Value {
    let env: Vec<Value> = inj.env.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
    let containers: Vec<Value> = containers.iter().map(|c| json!({"name": c, "env": env})).collect();
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

/// An empty apply: the API server removes every field the injector manager owned on the target.
pub fn removal_patch(kind: TargetKind, name: &str) -> Value {
    json!({"apiVersion": api_version(kind), "kind": kind.as_str(), "metadata": {"name": name}})
}

/// The value of env var `name` that the workload sets itself in one of `containers`: a field manager
/// other than the injector owns its value (the app's manifest, its chart, a `kubectl set env`). The
/// app knows its own name better than we do, so for `OTEL_SERVICE_NAME` such a value wins: the
/// injector then applies that same value, which server-side apply lets two managers co-own without a
/// conflict (dropping the entry instead would delete it when we were its only list-entry owner).
pub fn app_set_env(
    workload: &Value,
    managed_fields: &[ManagedFieldsEntry],
    containers: &[String],
    name: &str,
) -> Option<String> {
    let all = workload.pointer("/spec/template/spec/containers")?.as_array()?;
    all.iter()
        .filter(|c| c.get("name").and_then(Value::as_str).is_some_and(|n| containers.iter().any(|w| w == n)))
        .find_map(|c| {
            let container = c.get("name").and_then(Value::as_str)?;
            let entry =
                c.get("env")?.as_array()?.iter().find(|e| e.get("name").and_then(Value::as_str) == Some(name))?;
            let theirs = managed_fields
                .iter()
                .filter(|m| m.manager.as_deref() != Some(INJECTOR_MANAGER))
                .any(|m| m.fields_v1.as_ref().is_some_and(|f| owns_env(&f.0, container, name)));
            theirs.then(|| entry.get("value").and_then(Value::as_str).unwrap_or_default().to_string())
        })
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

    fn isvc(yaml: &str) -> InstrumentedService {
        InstrumentedService::new("reviews", serde_yaml::from_str(yaml).expect("spec"))
    }

    fn eps() -> Endpoints {
        Endpoints {
            grpc: "http://main-collector.obs.svc:4317".into(),
            http: "http://main-collector.obs.svc:4318".into(),
        }
    }

    fn env_of<'a>(inj: &'a Injection, name: &str) -> Option<&'a str> {
        inj.env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
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
            Some("k8s.namespace.name=apps,k8s.deployment.name=reviews,team=a%2Cb")
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
        let p = apply_patch(TargetKind::Deployment, "reviews", &["app".into()], &inj);
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
    }

    #[test]
    fn container_selection() {
        let all = vec!["app".to_string(), "sidecar".to_string()];
        assert_eq!(select_containers(&all, None), Ok(all.clone()));
        assert_eq!(select_containers(&all, Some("app")), Ok(vec!["app".to_string()]));
        assert!(select_containers(&all, Some("x")).is_err_and(|e| e.contains("spec.target.container")));
    }
}
