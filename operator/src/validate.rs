//! Pure semantic validation of a pipeline and its rendered config, before anything is rolled out.
//!
//! The API server already refuses what the schema and CEL rules can express; this catches what needs
//! the whole rendered config or the cluster's state (Secrets), and names the offending field.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::config::{HEALTH_PORT, SELF_METRICS_PORT, referenced_components};
use crate::crd::TelemetryPipelineSpec;

/// Component types compiled into the collectors we support, by config section.
pub const SUPPORTED: &[(&str, &[&str])] = &[
    ("receivers", &["otlp", "prometheus", "hostmetrics"]),
    ("processors", &["memory_limiter", "batch", "resource", "attributes", "span", "metricstransform"]),
    ("exporters", &["otlp", "otlphttp", "prometheus", "debug", "file"]),
    ("extensions", &["health_check", "basicauth"]),
];

/// One problem, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the offending field (`spec.…` or a path in the rendered config).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Joins problems into one condition message.
pub fn summary(problems: &[Problem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { field: field.into(), message: message.into() }
}

/// Ports the spec opens, with the field that opens each.
fn spec_ports(spec: &TelemetryPipelineSpec) -> Vec<(i32, &'static str)> {
    let mut ports = vec![
        (SELF_METRICS_PORT, "collector self-metrics (reserved)"),
        (HEALTH_PORT, "health_check extension (reserved)"),
    ];
    if spec.receivers.otlp.enabled {
        ports.push((spec.receivers.otlp.grpc_port, "spec.receivers.otlp.grpcPort"));
        ports.push((spec.receivers.otlp.http_port, "spec.receivers.otlp.httpPort"));
    }
    if let Some(p) = spec.exporters.prometheus.as_ref().filter(|p| p.enabled) {
        ports.push((p.port, "spec.exporters.prometheus.port"));
    }
    ports
}

/// Checks the spec and the rendered config. `secrets` maps each existing Secret in the pipeline's
/// namespace to its keys.
pub fn validate(
    spec: &TelemetryPipelineSpec,
    cfg: &Value,
    secrets: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let has_exporter = !spec.exporters.otlp.is_empty()
        || spec.exporters.prometheus.as_ref().is_some_and(|p| p.enabled)
        || spec.exporters.debug.as_ref().is_some_and(|d| d.enabled);
    if !has_exporter {
        out.push(problem("spec.exporters", "at least one exporter (otlp, prometheus or debug) is required"));
    }
    let has_receiver = spec.receivers.otlp.enabled
        || spec.receivers.prometheus.as_ref().is_some_and(|p| p.enabled)
        || spec.receivers.host_metrics.as_ref().is_some_and(|h| h.enabled);
    if !has_receiver {
        out.push(problem("spec.receivers", "at least one receiver must be enabled"));
    }

    let mut seen: BTreeMap<i32, &str> = BTreeMap::new();
    for (port, field) in spec_ports(spec) {
        if let Some(other) = seen.get(&port) {
            out.push(problem(field, format!("port {port} collides with {other}")));
        } else {
            seen.insert(port, field);
        }
    }

    for (i, exp) in spec.exporters.otlp.iter().enumerate() {
        let Some(auth) = &exp.auth else { continue };
        let mut refs = Vec::new();
        if let Some(b) = &auth.basic {
            refs.push(("auth.basic.username", &b.username));
            refs.push(("auth.basic.password", &b.password));
        }
        if let Some(t) = &auth.bearer_token {
            refs.push(("auth.bearerToken", t));
        }
        for (field, r) in refs {
            let field = format!("spec.exporters.otlp[{i}].{field}");
            match secrets.get(&r.name) {
                None => out.push(problem(field, format!("Secret {:?} not found", r.name))),
                Some(keys) if !keys.contains(&r.key) => {
                    out.push(problem(field, format!("Secret {:?} has no key {:?}", r.name, r.key)));
                }
                Some(_) => {}
            }
        }
    }

    let pipelines = cfg.pointer("/service/pipelines").and_then(Value::as_object);
    if pipelines.is_none_or(|p| p.is_empty()) && has_exporter && has_receiver {
        out.push(problem(
            "spec.exporters",
            "no signal pipeline can be built: the enabled receivers and exporters share no signal",
        ));
    }
    for (pname, p) in pipelines.into_iter().flatten() {
        for section in ["receivers", "exporters"] {
            if p.get(section).and_then(Value::as_array).is_none_or(|a| a.is_empty()) {
                out.push(problem(format!("service.pipelines.{pname}.{section}"), "must name at least one component"));
            }
        }
    }
    for (section, id, field) in referenced_components(cfg) {
        if cfg.get(&section).and_then(|s| s.get(&id)).is_none() {
            out.push(problem(field, format!("{section} {id:?} is not defined in {section}")));
        }
    }
    for (section, kinds) in SUPPORTED {
        for id in cfg.get(*section).and_then(Value::as_object).into_iter().flat_map(|m| m.keys()) {
            let kind = id.split('/').next().unwrap_or(id);
            if !kinds.contains(&kind) {
                out.push(problem(
                    format!("{section}.{id}"),
                    format!(
                        "component type {kind:?} is not available in the collector (supported: {})",
                        kinds.join(", ")
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RenderInput, render};
    use serde_json::json;

    fn check(yaml: &str, secrets: &[(&str, &[&str])]) -> Vec<Problem> {
        let spec: TelemetryPipelineSpec = serde_yaml::from_str(yaml).expect("spec");
        let cfg = render(&RenderInput { name: "p", namespace: "ns", spec: &spec, memory_limit_bytes: None });
        let secrets =
            secrets.iter().map(|(n, keys)| (n.to_string(), keys.iter().map(|k| k.to_string()).collect())).collect();
        validate(&spec, &cfg, &secrets)
    }

    #[test]
    fn valid_pipeline_has_no_problems() {
        assert_eq!(check("exporters: {debug: {}, prometheus: {}}", &[]), vec![]);
    }

    #[test]
    fn missing_exporter_names_the_field() {
        let p = check("{}", &[]);
        assert_eq!(p[0].field, "spec.exporters");
    }

    #[test]
    fn port_collision_names_the_field() {
        let p = check("receivers: {otlp: {httpPort: 4317}}\nexporters: {debug: {}}", &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "spec.receivers.otlp.httpPort");
        assert!(p[0].message.contains("4317"));
        let p = check("exporters: {prometheus: {port: 8888}}", &[]);
        assert_eq!(p[0].field, "spec.exporters.prometheus.port");
    }

    #[test]
    fn unknown_secret_and_key_name_the_field() {
        let yaml = r#"
exporters:
  otlp:
    - name: gc
      endpoint: https://x.example
      auth: {basic: {username: {name: creds, key: user}, password: {name: creds, key: pass}}}
"#;
        let p = check(yaml, &[]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].field, "spec.exporters.otlp[0].auth.basic.username");
        assert!(p[0].message.contains("\"creds\" not found"));
        let p = check(yaml, &[("creds", &["user"])]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "spec.exporters.otlp[0].auth.basic.password");
        assert!(check(yaml, &[("creds", &["user", "pass"])]).is_empty());
    }

    #[test]
    fn overrides_referencing_undefined_or_unsupported_components_are_caught() {
        let p = check(
            "exporters: {debug: {}}\nconfigOverrides: {service: {pipelines: {traces: {exporters: [kafka]}}}}",
            &[],
        );
        assert!(
            p.iter().any(|p| p.field == "service.pipelines.traces.exporters" && p.message.contains("kafka")),
            "{p:?}"
        );
        let p = check("exporters: {debug: {}}\nconfigOverrides: {exporters: {kafka: {}}}", &[]);
        assert!(p.iter().any(|p| p.field == "exporters.kafka"), "{p:?}");
        let _ = json!(null);
    }
}
