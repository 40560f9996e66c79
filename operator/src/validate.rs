//! Pure semantic validation of a pipeline and its rendered config, before anything is rolled out.
//!
//! The API server already refuses what the schema and CEL rules can express. This checks what
//! needs the spec as a whole or the cluster's state (Secrets), and then runs the collector's own
//! config loader (the `collector-config` crate, the code the collector runs at start) over the
//! rendered config, `configOverrides` included, so a config the collector would refuse is
//! refused here with the loader's path-named message and never reaches a pod.

use std::collections::{BTreeMap, BTreeSet};

use collector_config::config::{Config, ConfigError};
use serde_json::Value;

use crate::config::{HEALTH_PORT, SELF_METRICS_PORT};
use crate::crd::TelemetryPipelineSpec;

/// Stands in for environment variables the pod gets from Secrets or the downward API: the
/// operator never reads Secret values, and the loader only needs a string to expand.
const ENV_PLACEHOLDER: &str = "validation-placeholder";

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

    for (i, e) in spec.env.iter().flatten().enumerate() {
        if crate::scrape::RESERVED_ENV.contains(&e.name.as_str()) {
            out.push(problem(
                format!("spec.env[{i}].name"),
                format!(
                    "{} is set by the operator from the downward API: the collector's scrape jobs use it to scrape each target once",
                    e.name
                ),
            ));
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
        return out;
    }
    for (path, message) in crate::scrape::node_local_problems(cfg, crate::scrape::scraping(spec, None)) {
        out.push(problem(path, message));
    }
    out.extend(loader_problems(spec, cfg));
    out
}

/// What the collector's config loader says about the rendered config, one problem per message.
/// `${env:NAME}` resolves to the spec's literal `env` value where there is one, else to a
/// placeholder (Secret and downward-API values are not known here, by design).
fn loader_problems(spec: &TelemetryPipelineSpec, cfg: &Value) -> Vec<Problem> {
    let literal_env: BTreeMap<&str, &str> =
        spec.env.iter().flatten().filter_map(|e| e.value.as_deref().map(|v| (e.name.as_str(), v))).collect();
    let lookup = |name: &str| Some(literal_env.get(name).copied().unwrap_or(ENV_PLACEHOLDER).to_owned());
    let text = match serde_yaml::to_string(cfg) {
        Ok(text) => text,
        Err(e) => return vec![problem("spec.configOverrides", format!("the rendered config is not YAML: {e}"))],
    };
    match Config::from_yaml_str(&text, &lookup) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid(messages)) => messages.iter().map(|m| loader_problem(m)).collect(),
        Err(e) => vec![problem("spec.configOverrides", e.to_string())],
    }
}

/// Splits a loader message (`receivers.otlp.protocols.grpc.endpoit: unknown field ...`) into the
/// path it names and what is wrong.
fn loader_problem(message: &str) -> Problem {
    match message.split_once(": ") {
        Some((path, what)) if !path.contains(' ') => problem(path, what),
        _ => problem("config", message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RenderInput, render};
    use serde::Deserialize;

    /// The config the operator renders for pipeline `p` in namespace `ns`.
    fn render_as_p_in_ns(spec: &TelemetryPipelineSpec) -> Value {
        render(&RenderInput {
            name: "p",
            namespace: "ns",
            spec,
            memory_limit_bytes: None,
            live_replicas: None,
            scrape_namespaces: &[],
        })
    }

    fn check(yaml: &str, secrets: &[(&str, &[&str])]) -> Vec<Problem> {
        let spec: TelemetryPipelineSpec = serde_yaml::from_str(yaml).expect("spec");
        let cfg = render_as_p_in_ns(&spec);
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
    fn overrides_are_checked_by_the_collectors_loader_naming_the_path() {
        let p = check(
            "exporters: {debug: {}}\nconfigOverrides: {service: {pipelines: {traces: {exporters: [kafka]}}}}",
            &[],
        );
        assert!(
            p.iter().any(|p| p.field == "service.pipelines.traces.exporters[0]" && p.message.contains("\"kafka\"")),
            "{p:?}"
        );
        let p = check("exporters: {debug: {}}\nconfigOverrides: {exporters: {kafka: {}}}", &[]);
        assert!(p.iter().any(|p| p.field == "exporters.kafka" && p.message.contains("unknown type")), "{p:?}");
        let p = check("exporters: {debug: {}}\nconfigOverrides: {exporters: {debug: {verbosty: detailed}}}", &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "exporters.debug.verbosty");
        assert!(p[0].message.starts_with("unknown field"), "{p:?}");
        let p = check("exporters: {debug: {}}\nconfigOverrides: {exporters: {debug: {verbosity: loud}}}", &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].field.starts_with("exporters.debug"), "{p:?}");
    }

    #[test]
    fn env_references_resolve_to_literal_env_or_a_placeholder() {
        // A literal env value is what the collector will see; a bad one is caught here.
        let yaml = "env: [{name: LEVEL, value: loud}]\nexporters: {debug: {}}\n\
                    configOverrides: {exporters: {debug: {verbosity: '${env:LEVEL}'}}}";
        assert!(check(yaml, &[]).iter().any(|p| p.field.starts_with("exporters.debug")));
        // Secret-backed credentials expand to a placeholder and pass.
        let yaml = r#"
exporters:
  otlp:
    - name: gc
      endpoint: https://x.example
      auth: {basic: {username: {name: creds, key: user}, password: {name: creds, key: pass}}}
"#;
        assert_eq!(check(yaml, &[("creds", &["user", "pass"])]), vec![]);
    }

    #[test]
    fn divided_scrape_jobs_pass_the_collectors_loader() {
        for yaml in [
            "mode: daemonset\nreceivers: {prometheus: {}}\nexporters: {debug: {}}",
            "replicas: 3\nreceivers: {prometheus: {staticTargets: ['db:9187']}}\nexporters: {debug: {}}",
            "autoscaling: {maxReplicas: 4}\nreceivers: {prometheus: {}}\nexporters: {debug: {}}",
        ] {
            assert_eq!(check(yaml, &[]), vec![], "{yaml}");
        }
    }

    #[test]
    fn persistent_queues_pass_the_collectors_loader() {
        for yaml in [
            "persistence: {}\nexporters: {otlp: [{name: a, endpoint: 'http://a:4317'}, {name: b, protocol: http, endpoint: 'http://b:4318'}]}",
            "persistence: {volume: PersistentVolumeClaim, size: 4Gi, fsync: true}\nreplicas: 2\nreceivers: {prometheus: {}}\nexporters: {otlp: [{name: a, endpoint: 'http://a:4317', queue: {numConsumers: 2}}]}",
        ] {
            assert_eq!(check(yaml, &[]), vec![], "{yaml}");
        }
    }

    #[test]
    fn an_agent_refuses_static_scrape_jobs_and_the_identity_env_is_reserved() {
        let p = check(
            "mode: daemonset\nreceivers: {prometheus: {}}\nexporters: {debug: {}}\n\
             configOverrides: {receivers: {prometheus: {config: {scrape_configs: [{job_name: db, static_configs: [{targets: ['db:9187']}]}]}}}}",
            &[],
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "receivers.prometheus.config.scrape_configs[0].static_configs");
        assert!(p[0].message.contains("once per node"), "{p:?}");
        let p = check(
            "replicas: 2\nenv: [{name: K8S_POD_NAME, value: main-collector-0}]\nreceivers: {prometheus: {}}\nexporters: {debug: {}}",
            &[],
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "spec.env[0].name");
    }

    #[test]
    fn every_example_pipeline_passes_the_loader() {
        for text in [include_str!("../../examples/pipeline.yaml")] {
            for doc in serde_yaml::Deserializer::from_str(text) {
                let doc = serde_yaml::Value::deserialize(doc).expect("yaml");
                if doc.get("kind").and_then(|k| k.as_str()) != Some("TelemetryPipeline") {
                    continue;
                }
                let spec: TelemetryPipelineSpec = serde_yaml::from_value(doc["spec"].clone()).expect("spec");
                let problems = loader_problems(&spec, &render_as_p_in_ns(&spec));
                assert_eq!(problems, vec![]);
            }
        }
    }
}
