//! Pure rendering of a TelemetryPipeline into upstream OpenTelemetry Collector configuration.
//!
//! Only components built into both the upstream collector (built by `tools/build.sh`) and our own are
//! used. Credentials never appear here: they are referenced as `${env:...}` and the env vars come from
//! Secrets (see [`secret_env`]).

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
use serde_json::{Map, Value, json};

use crate::crd::{ExporterProtocol, OtlpExporter, PipelineMode, SecretKeyRef, TelemetryPipelineSpec};

/// Port of the collector's own telemetry (`service.telemetry.metrics`).
pub const SELF_METRICS_PORT: i32 = 8888;
/// Port of the health_check extension.
pub const HEALTH_PORT: i32 = 13133;
/// Pod label tying a workload's pods to a pipeline (value: pipeline name).
pub const PIPELINE_LABEL: &str = "telemetry.thereview.dev/pipeline";
/// Pod label carrying the pipeline's namespace (pipelines of equal name in other namespaces differ).
pub const PIPELINE_NS_LABEL: &str = "telemetry.thereview.dev/pipeline-namespace";
/// Where the host filesystem is mounted in daemonset mode for hostmetrics.
pub const HOSTFS: &str = "/hostfs";

/// What the renderer needs besides the spec.
#[derive(Debug, Clone)]
pub struct RenderInput<'a> {
    /// Pipeline name.
    pub name: &'a str,
    /// Pipeline namespace.
    pub namespace: &'a str,
    /// The spec.
    pub spec: &'a TelemetryPipelineSpec,
    /// Memory limit of the collector container in bytes, if any (sizes the memory limiter).
    pub memory_limit_bytes: Option<i64>,
    /// The collector StatefulSet's current replica count, read by the reconciler while an HPA owns
    /// it: the number of shards the scrape targets are divided into (see `scrape`).
    pub live_replicas: Option<i32>,
    /// The namespaces whose pods the collector discovers (see `discovery`); empty means its own.
    pub scrape_namespaces: &'a [String],
}

impl RenderInput<'_> {
    /// How the scrape targets are divided among the collectors (`None`: no scraping).
    pub fn scraping(&self) -> Option<crate::scrape::Scraping> {
        crate::scrape::scraping(self.spec, self.live_replicas)
    }
}

/// Env var name carrying one credential of one exporter.
pub fn credential_env_name(exporter: &str, what: &str) -> String {
    format!("OTLP_{}_{}", exporter.to_uppercase().replace('-', "_"), what)
}

/// Every Secret key the rendered config references, with the env var name it is exposed as.
pub fn secret_refs(spec: &TelemetryPipelineSpec) -> Vec<(String, SecretKeyRef)> {
    let mut out = Vec::new();
    for exp in &spec.exporters.otlp {
        let Some(auth) = &exp.auth else { continue };
        if let Some(basic) = &auth.basic {
            out.push((credential_env_name(&exp.name, "USERNAME"), basic.username.clone()));
            out.push((credential_env_name(&exp.name, "PASSWORD"), basic.password.clone()));
        }
        if let Some(token) = &auth.bearer_token {
            out.push((credential_env_name(&exp.name, "BEARER_TOKEN"), token.clone()));
        }
    }
    out
}

/// The env vars that bring credentials into the collector, each via `valueFrom.secretKeyRef`.
pub fn secret_env(spec: &TelemetryPipelineSpec) -> Vec<EnvVar> {
    secret_refs(spec)
        .into_iter()
        .map(|(name, r)| EnvVar {
            name,
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector { name: r.name, key: r.key, optional: Some(false) }),
                ..Default::default()
            }),
        })
        .collect()
}

/// Memory limiter settings: explicit values win, else 80% of the container limit, else percentages.
fn memory_limiter(input: &RenderInput<'_>) -> Value {
    let explicit = input.spec.processors.memory_limiter.as_ref();
    let limit_mib = explicit
        .and_then(|m| m.limit_mib)
        .or_else(|| input.memory_limit_bytes.map(|b| (b / (1024 * 1024)) * 4 / 5))
        .filter(|l| *l > 0);
    match limit_mib {
        Some(limit) => {
            let spike = explicit.and_then(|m| m.spike_limit_mib).unwrap_or(limit / 5);
            json!({"check_interval": "1s", "limit_mib": limit, "spike_limit_mib": spike})
        }
        None => {
            json!({"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20})
        }
    }
}

/// The standard `prometheus.io/*` pod discovery job, limited to pods labelled for this pipeline.
fn pod_scrape_job(input: &RenderInput<'_>, interval: &str) -> Value {
    let names = match input.scrape_namespaces {
        [] => vec![input.namespace.to_string()],
        names => names.to_vec(),
    };
    // `$` must be doubled: the collector expands `$VAR`/`${env:VAR}` in its config before Prometheus sees it.
    json!({
        "job_name": format!("telemetry-pipeline/{}/{}", input.namespace, input.name),
        "scrape_interval": interval,
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": names}}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline"],
             "action": "keep", "regex": regex_escape(input.name)},
            {"source_labels": ["__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline_namespace"],
             "action": "keep", "regex": regex_escape(input.namespace)},
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
             "action": "keep", "regex": "true"},
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
             "action": "replace", "target_label": "__metrics_path__", "regex": "(.+)"},
            {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
             "action": "replace", "regex": "([^:]+)(?::\\d+)?;(\\d+)", "replacement": "$$1:$$2",
             "target_label": "__address__"},
            {"source_labels": ["__meta_kubernetes_namespace"], "action": "replace", "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "action": "replace", "target_label": "pod"},
        ],
    })
}

/// Escapes regex metacharacters (names may contain `.`).
fn regex_escape(s: &str) -> String {
    s.replace('.', "\\.")
}

fn otlp_exporter(exp: &OtlpExporter) -> (String, Value, Option<(String, Value)>) {
    let kind = match exp.protocol {
        ExporterProtocol::Grpc => "otlp",
        ExporterProtocol::Http => "otlphttp",
    };
    let id = format!("{kind}/{}", exp.name);
    let mut cfg = Map::new();
    cfg.insert("endpoint".into(), json!(exp.endpoint));
    let mut headers: Map<String, Value> = exp.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut extension = None;
    if let Some(auth) = &exp.auth {
        if auth.basic.is_some() {
            let ext_id = format!("basicauth/{}", exp.name);
            cfg.insert("auth".into(), json!({"authenticator": ext_id}));
            extension = Some((
                ext_id,
                json!({"client_auth": {
                    "username": format!("${{env:{}}}", credential_env_name(&exp.name, "USERNAME")),
                    "password": format!("${{env:{}}}", credential_env_name(&exp.name, "PASSWORD")),
                }}),
            ));
        }
        if auth.bearer_token.is_some() {
            headers.insert(
                "Authorization".into(),
                json!(format!("Bearer ${{env:{}}}", credential_env_name(&exp.name, "BEARER_TOKEN"))),
            );
        }
    }
    if !headers.is_empty() {
        cfg.insert("headers".into(), Value::Object(headers));
    }
    if let Some(tls) = &exp.tls {
        let mut t = Map::new();
        if tls.insecure {
            t.insert("insecure".into(), json!(true));
        }
        if let Some(sn) = &tls.server_name {
            t.insert("server_name_override".into(), json!(sn));
        }
        cfg.insert("tls".into(), Value::Object(t));
    }
    if let Some(c) = exp.compression {
        cfg.insert("compression".into(), json!(c.as_str()));
    }
    if let Some(r) = &exp.retry {
        let mut m = Map::new();
        m.insert("enabled".into(), json!(r.enabled));
        for (k, v) in [
            ("initial_interval", &r.initial_interval),
            ("max_interval", &r.max_interval),
            ("max_elapsed_time", &r.max_elapsed_time),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        cfg.insert("retry_on_failure".into(), Value::Object(m));
    }
    if let Some(q) = &exp.queue {
        let mut m = Map::new();
        m.insert("enabled".into(), json!(q.enabled));
        if let Some(n) = q.num_consumers {
            m.insert("num_consumers".into(), json!(n));
        }
        if let Some(n) = q.queue_size {
            m.insert("queue_size".into(), json!(n));
        }
        cfg.insert("sending_queue".into(), Value::Object(m));
    }
    (id, Value::Object(cfg), extension)
}

/// The batch processor's settings (upstream's defaults for what the spec leaves out).
fn batch_processor(spec: Option<&crate::crd::Batch>) -> Value {
    let mut batch = Map::new();
    if let Some(b) = spec {
        if let Some(t) = &b.timeout {
            batch.insert("timeout".into(), json!(t));
        }
        if let Some(n) = b.send_batch_size {
            batch.insert("send_batch_size".into(), json!(n));
        }
        if let Some(n) = b.send_batch_max_size {
            batch.insert("send_batch_max_size".into(), json!(n));
        }
    }
    Value::Object(batch)
}

/// The rendered processors, and each signal's processor list in order.
struct Processors {
    configs: Map<String, Value>,
    traces: Vec<String>,
    metrics: Vec<String>,
    logs: Vec<String>,
}

/// The rendered exporters (and the extensions they need), and which of them take which signals.
struct Exporters {
    configs: Map<String, Value>,
    extensions: Map<String, Value>,
    /// Traces, metrics and logs.
    all_signals: Vec<String>,
    /// Metrics (the above and the `prometheus` exporter).
    metrics: Vec<String>,
}

/// The receivers the spec enables: OTLP, Prometheus (pod discovery and static targets), host metrics.
fn receivers(input: &RenderInput<'_>) -> Map<String, Value> {
    let spec = input.spec;
    let mut receivers = Map::new();
    let otlp = &spec.receivers.otlp;
    if otlp.enabled {
        receivers.insert(
            "otlp".into(),
            json!({"protocols": {
                "grpc": {"endpoint": format!("0.0.0.0:{}", otlp.grpc_port)},
                "http": {"endpoint": format!("0.0.0.0:{}", otlp.http_port)},
            }}),
        );
    }
    if let Some(p) = spec.receivers.prometheus.as_ref().filter(|p| p.enabled) {
        let mut jobs = vec![pod_scrape_job(input, &p.scrape_interval)];
        if !p.static_targets.is_empty() {
            jobs.push(json!({
                "job_name": format!("telemetry-pipeline/{}/{}/static", input.namespace, input.name),
                "scrape_interval": p.scrape_interval,
                "static_configs": [{"targets": p.static_targets}],
            }));
        }
        receivers.insert("prometheus".into(), json!({"config": {"scrape_configs": jobs}}));
    }
    if let Some(h) = spec.receivers.host_metrics.as_ref().filter(|h| h.enabled) {
        let scrapers: Map<String, Value> = h
            .scrapers
            .iter()
            .map(|s| (s.as_str().to_string(), json!({})))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let mut cfg = json!({"collection_interval": h.collection_interval, "scrapers": scrapers});
        if spec.mode == PipelineMode::Daemonset {
            cfg["root_path"] = json!(HOSTFS);
        }
        receivers.insert("hostmetrics".into(), cfg);
    }
    receivers
}

/// The processors, in the order each signal runs them: memory_limiter first, batch last (upstream's
/// recommendation), and no batch in front of a persistent queue (see `persistence`).
fn processors(input: &RenderInput<'_>) -> Processors {
    let procs = &input.spec.processors;
    let mut configs = Map::new();
    let mut common = vec!["memory_limiter".to_string()];
    configs.insert("memory_limiter".into(), memory_limiter(input));
    if !procs.resource_attributes.is_empty() {
        let attrs: Vec<Value> =
            procs.resource_attributes.iter().map(|(k, v)| json!({"key": k, "value": v, "action": "upsert"})).collect();
        configs.insert("resource".into(), json!({"attributes": attrs}));
        common.push("resource".into());
    }
    if !procs.attributes.is_empty() {
        let actions: Vec<Value> = procs
            .attributes
            .iter()
            .map(|a| {
                let mut m = json!({"key": a.key, "action": a.action.as_str()});
                if let Some(v) = &a.value {
                    m["value"] = json!(v);
                }
                m
            })
            .collect();
        configs.insert("attributes".into(), json!({"actions": actions}));
        common.push("attributes".into());
    }
    let mut traces = common.clone();
    if let Some(sn) = &procs.span_name {
        let mut name = json!({"from_attributes": sn.from_attributes});
        if let Some(sep) = &sn.separator {
            name["separator"] = json!(sep);
        }
        configs.insert("span".into(), json!({"name": name}));
        traces.push("span".into());
    }
    let mut metrics = common.clone();
    if !procs.metric_renames.is_empty() {
        let transforms: Vec<Value> = procs
            .metric_renames
            .iter()
            .map(|r| json!({"include": r.from, "match_type": "strict", "action": "update", "new_name": r.to}))
            .collect();
        configs.insert("metricstransform".into(), json!({"transforms": transforms}));
        metrics.push("metricstransform".into());
    }
    let mut logs = common;
    // A persistent queue must be the first to acknowledge: no batch processor in front of it.
    if crate::persistence::of(input.spec).is_none() {
        configs.insert("batch".into(), batch_processor(procs.batch.as_ref()));
        for list in [&mut traces, &mut metrics, &mut logs] {
            list.push("batch".into());
        }
    }
    Processors { configs, traces, metrics, logs }
}

/// The exporters: each OTLP destination (with its auth extension, and its queue on disk with
/// persistence), debug, and the Prometheus pull endpoint (metrics only).
fn exporters(spec: &TelemetryPipelineSpec) -> Exporters {
    let persistence = crate::persistence::of(spec);
    let mut out =
        Exporters { configs: Map::new(), extensions: Map::new(), all_signals: Vec::new(), metrics: Vec::new() };
    for exp in &spec.exporters.otlp {
        let (id, mut cfg, ext) = otlp_exporter(exp);
        if let (Some(p), Value::Object(map)) = (persistence, &mut cfg) {
            crate::persistence::make_queue_persistent(map, p, spec.exporters.otlp.len());
        }
        out.configs.insert(id.clone(), cfg);
        out.all_signals.push(id);
        if let Some((ext_id, ext_cfg)) = ext {
            out.extensions.insert(ext_id, ext_cfg);
        }
    }
    if let Some(d) = spec.exporters.debug.as_ref().filter(|d| d.enabled) {
        out.configs.insert("debug".into(), json!({"verbosity": d.verbosity.as_str()}));
        out.all_signals.push("debug".into());
    }
    out.metrics = out.all_signals.clone();
    if let Some(p) = spec.exporters.prometheus.as_ref().filter(|p| p.enabled) {
        out.configs.insert("prometheus".into(), json!({"endpoint": format!("0.0.0.0:{}", p.port)}));
        out.metrics.push("prometheus".into());
    }
    out
}

/// The service's pipelines: traces and logs from OTLP, metrics from OTLP and the scrapers; a
/// pipeline without a receiver or an exporter is left out.
fn pipelines(receivers: &Map<String, Value>, processors: &Processors, exporters: &Exporters) -> Map<String, Value> {
    let mut pipelines = Map::new();
    let otlp: Vec<&str> = receivers.contains_key("otlp").then_some("otlp").into_iter().collect();
    let mut metric_receivers = otlp.clone();
    metric_receivers.extend(["prometheus", "hostmetrics"].into_iter().filter(|r| receivers.contains_key(*r)));
    if !otlp.is_empty() && !exporters.all_signals.is_empty() {
        let pipeline =
            |procs: &[String]| json!({"receivers": otlp, "processors": procs, "exporters": exporters.all_signals});
        pipelines.insert("traces".into(), pipeline(&processors.traces));
        pipelines.insert("logs".into(), pipeline(&processors.logs));
    }
    if !metric_receivers.is_empty() && !exporters.metrics.is_empty() {
        pipelines.insert(
            "metrics".into(),
            json!({"receivers": metric_receivers, "processors": processors.metrics, "exporters": exporters.metrics}),
        );
    }
    pipelines
}

/// Renders the collector configuration (before `configOverrides`).
pub fn render_base(input: &RenderInput<'_>) -> Value {
    let receivers = receivers(input);
    let processors = processors(input);
    let exporters = exporters(input.spec);
    let pipelines = pipelines(&receivers, &processors, &exporters);
    let mut extensions = Map::new();
    extensions.insert("health_check".into(), json!({"endpoint": format!("0.0.0.0:{HEALTH_PORT}")}));
    if let Some(p) = crate::persistence::of(input.spec) {
        extensions.insert(crate::persistence::STORAGE_EXTENSION.into(), crate::persistence::extension(p));
    }
    extensions.extend(exporters.extensions);
    let extension_ids: Vec<String> = extensions.keys().cloned().collect();
    json!({
        "receivers": receivers,
        "processors": processors.configs,
        "exporters": exporters.configs,
        "extensions": extensions,
        "service": {
            "extensions": extension_ids,
            "telemetry": {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {
                "host": "0.0.0.0", "port": SELF_METRICS_PORT}}}}]}},
            "pipelines": pipelines,
        },
    })
}

/// Deep-merges `overlay` into `base`: objects merge key by key, anything else replaces.
pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Doubles every `$` in the string values of `v` (not in keys: the collector expands values only).
fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Array(items) => items.iter_mut().for_each(escape_dollars),
        Value::Object(map) => map.values_mut().for_each(escape_dollars),
        _ => {}
    }
}

/// The spec with every user string escaped for the collector's `${env:...}` / `$$` expansion: what a
/// user writes (an attribute value, a header, an override) reaches the telemetry as written, and can
/// never expand one of the collector's env vars (an exporter's credentials). Only the references this
/// module writes itself (credentials) stay references.
fn escaped(spec: &TelemetryPipelineSpec) -> TelemetryPipelineSpec {
    let Ok(mut v) = serde_json::to_value(spec) else { return spec.clone() };
    escape_dollars(&mut v);
    serde_json::from_value(v).unwrap_or_else(|_| spec.clone())
}

/// Renders the final config: base plus `configOverrides`, every user string escaped, and every
/// scrape job divided among the collectors so each target is scraped once (`scrape`).
pub fn render(input: &RenderInput<'_>) -> Value {
    let spec = escaped(input.spec);
    let mut cfg = render_base(&RenderInput { spec: &spec, ..input.clone() });
    if let Some(o) = &spec.config_overrides {
        deep_merge(&mut cfg, o);
    }
    // After escaping and merging: the `${env:...}` references written here must stay references,
    // and jobs added by `configOverrides` must be divided too.
    if let Some(scraping) = input.scraping() {
        crate::scrape::divide_jobs(&mut cfg, input.name, scraping);
    }
    cfg
}

/// Serialises a config to YAML (the ConfigMap payload). Keys are sorted, so output is stable.
pub fn to_yaml(cfg: &Value) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(cfg)
}

/// Stable SHA-256 of everything that should roll the collector pods: the config and the credential refs.
pub fn config_hash(yaml: &str, spec: &TelemetryPipelineSpec) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(yaml.as_bytes());
    for (env, r) in secret_refs(spec) {
        h.update(format!("\n{env}={}/{}", r.name, r.key).as_bytes());
    }
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Ports the collector listens on per the rendered config, with the config path that opens each.
pub fn listening_ports(cfg: &Value) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut push = |endpoint: Option<&Value>, path: &str| {
        if let Some(port) =
            endpoint.and_then(Value::as_str).and_then(|e| e.rsplit(':').next()).and_then(|p| p.parse().ok())
        {
            out.push((port, path.to_string()));
        }
    };
    push(cfg.pointer("/receivers/otlp/protocols/grpc/endpoint"), "receivers.otlp.protocols.grpc.endpoint");
    push(cfg.pointer("/receivers/otlp/protocols/http/endpoint"), "receivers.otlp.protocols.http.endpoint");
    push(cfg.pointer("/exporters/prometheus/endpoint"), "exporters.prometheus.endpoint");
    push(cfg.pointer("/extensions/health_check/endpoint"), "extensions.health_check.endpoint");
    if let Some(p) =
        cfg.pointer("/service/telemetry/metrics/readers/0/pull/exporter/prometheus/port").and_then(Value::as_i64)
    {
        out.push((p, "service.telemetry.metrics.readers[0].pull.exporter.prometheus.port".into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::*;

    fn spec_from(yaml: &str) -> TelemetryPipelineSpec {
        serde_yaml::from_str(yaml).expect("spec")
    }

    fn input(spec: &TelemetryPipelineSpec) -> RenderInput<'_> {
        RenderInput {
            name: "main",
            namespace: "obs",
            spec,
            memory_limit_bytes: None,
            live_replicas: None,
            scrape_namespaces: &[],
        }
    }

    #[test]
    fn default_spec_renders_otlp_in_and_memory_limiter_first_batch_last() {
        let spec = spec_from("exporters: {debug: {}}");
        let cfg = render(&input(&spec));
        assert_eq!(cfg.pointer("/receivers/otlp/protocols/grpc/endpoint"), Some(&json!("0.0.0.0:4317")));
        assert_eq!(cfg.pointer("/receivers/otlp/protocols/http/endpoint"), Some(&json!("0.0.0.0:4318")));
        for signal in ["traces", "metrics", "logs"] {
            let procs = cfg
                .pointer(&format!("/service/pipelines/{signal}/processors"))
                .and_then(Value::as_array)
                .expect("procs");
            assert_eq!(procs.first(), Some(&json!("memory_limiter")), "{signal}");
            assert_eq!(procs.last(), Some(&json!("batch")), "{signal}");
        }
        assert_eq!(cfg.pointer("/exporters/debug/verbosity"), Some(&json!("basic")));
        assert!(
            cfg.pointer("/service/extensions")
                .and_then(Value::as_array)
                .is_some_and(|e| e.contains(&json!("health_check")))
        );
    }

    #[test]
    fn memory_limit_derives_from_container_limit() {
        let spec = spec_from("exporters: {debug: {}}");
        let mut i = input(&spec);
        i.memory_limit_bytes = Some(512 * 1024 * 1024);
        let cfg = render(&i);
        assert_eq!(cfg.pointer("/processors/memory_limiter/limit_mib"), Some(&json!(409)));
        assert_eq!(cfg.pointer("/processors/memory_limiter/spike_limit_mib"), Some(&json!(81)));
        let spec = spec_from("exporters: {debug: {}}\nprocessors: {memoryLimiter: {limitMib: 100}}");
        let cfg = render(&input(&spec));
        assert_eq!(cfg.pointer("/processors/memory_limiter/limit_mib"), Some(&json!(100)));
        let spec = spec_from("exporters: {debug: {}}");
        let cfg = render(&input(&spec));
        assert_eq!(cfg.pointer("/processors/memory_limiter/limit_percentage"), Some(&json!(80)));
    }

    #[test]
    fn credentials_are_env_references_never_values() {
        let spec = spec_from(
            r#"
exporters:
  otlp:
    - name: grafana-cloud
      protocol: http
      endpoint: https://otlp.example.net/otlp
      auth:
        basic:
          username: {name: gc, key: user}
          password: {name: gc, key: token}
    - name: alloy
      endpoint: http://alloy.monitoring:4317
      tls: {insecure: true}
      auth:
        bearerToken: {name: alloy, key: token}
"#,
        );
        let cfg = render(&input(&spec));
        assert_eq!(
            cfg.pointer("/exporters/otlphttp~1grafana-cloud/auth/authenticator"),
            Some(&json!("basicauth/grafana-cloud"))
        );
        assert_eq!(
            cfg.pointer("/extensions/basicauth~1grafana-cloud/client_auth/password"),
            Some(&json!("${env:OTLP_GRAFANA_CLOUD_PASSWORD}"))
        );
        assert_eq!(
            cfg.pointer("/exporters/otlp~1alloy/headers/Authorization"),
            Some(&json!("Bearer ${env:OTLP_ALLOY_BEARER_TOKEN}"))
        );
        let exts = cfg.pointer("/service/extensions").and_then(Value::as_array).expect("exts");
        assert!(exts.contains(&json!("basicauth/grafana-cloud")));
        let env = secret_env(&spec);
        let names: Vec<_> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["OTLP_GRAFANA_CLOUD_USERNAME", "OTLP_GRAFANA_CLOUD_PASSWORD", "OTLP_ALLOY_BEARER_TOKEN"]);
        assert!(
            env.iter()
                .all(|e| { e.value.is_none() && e.value_from.as_ref().is_some_and(|v| v.secret_key_ref.is_some()) })
        );
        let traces = cfg.pointer("/service/pipelines/traces/exporters").expect("traces");
        assert_eq!(traces, &json!(["otlphttp/grafana-cloud", "otlp/alloy"]));
    }

    #[test]
    fn user_strings_reach_the_telemetry_literally_through_the_collectors_expansion() {
        let spec = spec_from(
            r#"
processors:
  resourceAttributes: {leak: "${env:OTLP_ALLOY_BEARER_TOKEN}"}
  attributes: [{key: price, action: upsert, value: "$5 and $${x}"}]
exporters:
  otlp:
    - name: alloy
      endpoint: http://alloy.monitoring:4317
      headers: {x-tenant: "${OTLP_ALLOY_BEARER_TOKEN}"}
      auth:
        bearerToken: {name: alloy, key: token}
configOverrides:
  exporters: {debug: {verbosity: "${env:HOME}"}}
"#,
        );
        let yaml = to_yaml(&render(&input(&spec))).expect("yaml");
        // Loaded the way our collector loads its config file, with the credential in its env.
        let mut cfg: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("parse");
        let env = |name: &str| match name {
            "OTLP_ALLOY_BEARER_TOKEN" => Some("s3cret".to_string()),
            "HOME" => Some("/root".to_string()),
            _ => None,
        };
        telemetry_collector::config::expand::expand_value(&mut cfg, "", &env).expect("expand");
        let cfg: Value = serde_json::to_value(&cfg).expect("json");
        assert_eq!(
            cfg.pointer("/processors/resource/attributes/0/value"),
            Some(&json!("${env:OTLP_ALLOY_BEARER_TOKEN}"))
        );
        assert_eq!(cfg.pointer("/processors/attributes/actions/0/value"), Some(&json!("$5 and $${x}")));
        assert_eq!(cfg.pointer("/exporters/otlp~1alloy/headers/x-tenant"), Some(&json!("${OTLP_ALLOY_BEARER_TOKEN}")));
        assert_eq!(cfg.pointer("/exporters/debug/verbosity"), Some(&json!("${env:HOME}")));
        // The operator's own reference still expands: that is how the credential reaches the exporter.
        assert_eq!(cfg.pointer("/exporters/otlp~1alloy/headers/Authorization"), Some(&json!("Bearer s3cret")));
        assert!(!yaml.contains("s3cret"));
    }

    #[test]
    fn prometheus_receiver_keeps_only_this_pipelines_pods_and_escapes_dollars() {
        let spec = spec_from(
            "receivers: {prometheus: {scrapeInterval: 15s, staticTargets: ['db:9187']}}\nexporters: {prometheus: {}}",
        );
        let cfg = render(&input(&spec));
        let job = cfg.pointer("/receivers/prometheus/config/scrape_configs/0").expect("job");
        assert_eq!(job.pointer("/kubernetes_sd_configs/0/role"), Some(&json!("pod")));
        assert_eq!(job.pointer("/kubernetes_sd_configs/0/namespaces/names"), Some(&json!(["obs"])));
        assert_eq!(job.pointer("/relabel_configs/0/regex"), Some(&json!("main")));
        // Consenting namespaces of attached InstrumentedServices are discovered too, each by name.
        let namespaces = ["obs".to_string(), "shop".to_string()];
        let cfg = render(&RenderInput { scrape_namespaces: &namespaces, ..input(&spec) });
        let job = cfg.pointer("/receivers/prometheus/config/scrape_configs/0").expect("job");
        assert_eq!(job.pointer("/kubernetes_sd_configs/0/namespaces/names"), Some(&json!(["obs", "shop"])));
        assert_eq!(job.pointer("/relabel_configs/4/replacement"), Some(&json!("$$1:$$2")));
        assert_eq!(job["scrape_interval"], json!("15s"));
        assert_eq!(
            cfg.pointer("/receivers/prometheus/config/scrape_configs/1/static_configs/0/targets"),
            Some(&json!(["db:9187"]))
        );
        assert_eq!(cfg.pointer("/service/pipelines/metrics/receivers"), Some(&json!(["otlp", "prometheus"])));
        assert_eq!(cfg.pointer("/service/pipelines/metrics/exporters"), Some(&json!(["prometheus"])));
        // The prometheus exporter alone cannot carry traces or logs.
        assert!(cfg.pointer("/service/pipelines/traces").is_none());
    }

    /// The rendered config as the collector loads it with `env`, and the jobs of its prometheus
    /// receiver as the collector compiles them.
    fn collector_jobs(cfg: &Value, env: &[(&str, &str)]) -> Vec<collector_config::prometheus::plan::Job> {
        let yaml = to_yaml(cfg).expect("yaml");
        let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        let loaded = collector_config::config::Config::from_yaml_str(&yaml, &lookup).expect("the collector loads it");
        let collector_config::registry::ReceiverConfig::Prometheus(p) = &loaded.receivers["prometheus"] else {
            panic!("prometheus receiver");
        };
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let jobs = collector_config::prometheus::plan::plan("receivers.prometheus", p, &mut errors, &mut warnings);
        assert!(errors.is_empty(), "{errors:?}");
        jobs
    }

    #[test]
    fn a_daemonset_discovers_only_the_pods_of_its_node() {
        let spec = spec_from("mode: daemonset\nreceivers: {prometheus: {}}\nexporters: {debug: {}}");
        let cfg = render(&input(&spec));
        assert_eq!(
            cfg.pointer("/receivers/prometheus/config/scrape_configs/0/kubernetes_sd_configs/0"),
            Some(&json!({"role": "pod", "namespaces": {"names": ["obs"]},
                         "selectors": [{"role": "pod", "field": "spec.nodeName=${env:K8S_NODE_NAME}"}]}))
        );
        // The agent's node name from the downward API reaches the API server's field selector.
        let jobs = collector_jobs(&cfg, &[("K8S_NODE_NAME", "node-7")]);
        assert_eq!(jobs[0].pod_discovery[0].field_selector.as_deref(), Some("spec.nodeName=node-7"));
        // No hashmod: every pod of the node is this agent's.
        assert!(!to_yaml(&cfg).expect("yaml").contains("hashmod"));
    }

    #[test]
    fn three_replicas_scrape_every_target_exactly_once() {
        let spec = spec_from(
            "replicas: 3\nreceivers: {prometheus: {staticTargets: ['db:9187', 'cache:9121']}}\nexporters: {debug: {}}",
        );
        let cfg = render(&input(&spec));
        let rules = cfg.pointer("/receivers/prometheus/config/scrape_configs/0/relabel_configs").expect("rules");
        assert_eq!(rules[7]["action"], json!("hashmod"), "after the pipeline's own rules");
        assert_eq!(rules[7]["modulus"], json!(3));
        assert!(
            cfg.pointer("/receivers/prometheus/config/scrape_configs/0/kubernetes_sd_configs/0/selectors").is_none()
        );
        // Each StatefulSet pod loads the same config with its own name; every target (pods with
        // distinct addresses, and the static ones) must be kept by exactly one of them.
        let shards: Vec<_> =
            (0..3).map(|i| collector_jobs(&cfg, &[("K8S_POD_NAME", &format!("main-collector-{i}"))])).collect();
        let pod = |i: usize| -> collector_config::prometheus::relabel::Labels {
            [
                ("__address__", format!("10.0.{}.{}:8080", i / 200, i % 200)),
                ("__meta_kubernetes_namespace", "obs".into()),
                ("__meta_kubernetes_pod_name", format!("app-{i}")),
                ("__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline", "main".into()),
                ("__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline_namespace", "obs".into()),
                ("__meta_kubernetes_pod_annotation_prometheus_io_scrape", "true".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        };
        let mut per_shard = [0usize; 3];
        for i in 0..300 {
            let kept: Vec<usize> = (0..3)
                .filter(|&s| collector_config::prometheus::relabel::apply(&shards[s][0].relabel, pod(i)).is_some())
                .collect();
            assert_eq!(kept.len(), 1, "pod {i} kept by shards {kept:?}");
            per_shard[kept[0]] += 1;
        }
        assert!(per_shard.iter().all(|&n| n > 50), "roughly even: {per_shard:?}");
        for target in &shards[0][1].static_targets {
            let kept = (0..3)
                .filter(|&s| {
                    collector_config::prometheus::relabel::apply(&shards[s][1].relabel, target.clone()).is_some()
                })
                .count();
            assert_eq!(kept, 1, "static target {target:?}");
        }
    }

    #[test]
    fn a_single_replica_scrapes_everything_and_overrides_jobs_are_divided_too() {
        let spec = spec_from("receivers: {prometheus: {}}\nexporters: {debug: {}}");
        assert!(!to_yaml(&render(&input(&spec))).expect("yaml").contains("hashmod"));
        let spec = spec_from(
            "replicas: 2\nreceivers: {prometheus: {}}\nexporters: {debug: {}}\n\
             configOverrides: {receivers: {prometheus: {config: {scrape_configs: [{job_name: mine, kubernetes_sd_configs: [{role: pod}]}]}}}}",
        );
        let cfg = render(&input(&spec));
        let rules = cfg.pointer("/receivers/prometheus/config/scrape_configs/0/relabel_configs").expect("rules");
        assert_eq!(rules[0]["action"], json!("hashmod"), "a job of configOverrides is sharded too");
        assert_eq!(rules[0]["modulus"], json!(2));
    }

    #[test]
    fn an_autoscaled_gateway_shards_by_the_live_replica_count() {
        let spec = spec_from("autoscaling: {maxReplicas: 6}\nreceivers: {prometheus: {}}\nexporters: {debug: {}}");
        let modulus = |live| {
            let cfg = render(&RenderInput { live_replicas: live, ..input(&spec) });
            cfg.pointer("/receivers/prometheus/config/scrape_configs/0/relabel_configs/7/modulus").cloned()
        };
        assert_eq!(modulus(Some(4)), Some(json!(4)));
        assert_eq!(modulus(None), Some(json!(1)), "before the StatefulSet exists: the API server's default of 1");
    }

    #[test]
    fn processors_render_upstream_shapes() {
        let spec = spec_from(
            r#"
exporters: {debug: {verbosity: detailed}}
processors:
  resourceAttributes: {deployment.environment: prod}
  attributes: [{key: password, action: delete}, {key: team, action: insert, value: obs}]
  spanName: {fromAttributes: [http.method, http.route], separator: " "}
  metricRenames: [{from: old_metric, to: new_metric}]
  batch: {timeout: 1s, sendBatchSize: 100}
"#,
        );
        let cfg = render(&input(&spec));
        assert_eq!(
            cfg.pointer("/processors/resource/attributes/0"),
            Some(&json!({"key": "deployment.environment", "value": "prod", "action": "upsert"}))
        );
        assert_eq!(cfg.pointer("/processors/attributes/actions/1/value"), Some(&json!("obs")));
        assert_eq!(cfg.pointer("/processors/span/name/separator"), Some(&json!(" ")));
        assert_eq!(cfg.pointer("/processors/metricstransform/transforms/0/new_name"), Some(&json!("new_metric")));
        assert_eq!(cfg.pointer("/processors/batch/send_batch_size"), Some(&json!(100)));
        assert_eq!(
            cfg.pointer("/service/pipelines/traces/processors"),
            Some(&json!(["memory_limiter", "resource", "attributes", "span", "batch"]))
        );
        assert_eq!(
            cfg.pointer("/service/pipelines/metrics/processors"),
            Some(&json!(["memory_limiter", "resource", "attributes", "metricstransform", "batch"]))
        );
    }

    #[test]
    fn persistence_puts_every_otlp_queue_on_disk_and_nothing_acknowledges_before_it() {
        let spec = spec_from(
            "persistence: {size: 2Gi, fsync: true}\n\
             exporters: {otlp: [{name: a, endpoint: 'http://a:4317'}, {name: b, protocol: http, endpoint: 'http://b:4318'}], debug: {}}",
        );
        let cfg = render(&input(&spec));
        assert_eq!(
            cfg.pointer("/extensions/file_storage"),
            Some(&json!({"directory": "/var/lib/otelcol/file_storage", "fsync": true,
                         "compaction": {"on_start": true, "on_rebound": true, "directory": "/var/lib/otelcol/file_storage"}}))
        );
        assert!(
            cfg.pointer("/service/extensions").and_then(Value::as_array).expect("ids").contains(&json!("file_storage"))
        );
        for id in ["otlp/a", "otlphttp/b"] {
            assert_eq!(
                cfg.pointer(&format!("/exporters/{}/sending_queue", id.replace('/', "~1"))),
                Some(&json!({"enabled": true, "storage": "file_storage", "sizer": "bytes",
                             "queue_size": (2i64 << 30) / 10 * 9 / 2})),
                "{id}"
            );
        }
        assert!(cfg.pointer("/exporters/debug/sending_queue").is_none(), "the debug exporter has no queue");
        // The batch processor would acknowledge before the queue has written anything.
        assert!(cfg.pointer("/processors/batch").is_none());
        for signal in ["traces", "metrics", "logs"] {
            let procs = cfg.pointer(&format!("/service/pipelines/{signal}/processors")).expect("procs");
            assert!(!procs.as_array().expect("list").contains(&json!("batch")), "{signal}: {procs}");
        }
        let without = render(&input(&spec_from("exporters: {otlp: [{name: a, endpoint: 'http://a:4317'}]}")));
        assert!(without.pointer("/extensions/file_storage").is_none());
        assert!(without.pointer("/exporters/otlp~1a/sending_queue").is_none(), "in-memory default untouched");
    }

    #[test]
    fn hostmetrics_uses_hostfs_in_daemonset_mode() {
        let spec =
            spec_from("mode: daemonset\nreceivers: {hostMetrics: {scrapers: [memory, cpu]}}\nexporters: {debug: {}}");
        let cfg = render(&input(&spec));
        assert_eq!(cfg.pointer("/receivers/hostmetrics/root_path"), Some(&json!("/hostfs")));
        assert_eq!(cfg.pointer("/receivers/hostmetrics/scrapers"), Some(&json!({"cpu": {}, "memory": {}})));
    }

    #[test]
    fn overrides_deep_merge_and_hash_changes_with_config() {
        let mut spec = spec_from("exporters: {debug: {}}");
        let before = to_yaml(&render(&input(&spec))).expect("yaml");
        spec.config_overrides = Some(json!({"processors": {"batch": {"timeout": "5s"}}}));
        let cfg = render(&input(&spec));
        assert_eq!(cfg.pointer("/processors/batch/timeout"), Some(&json!("5s")));
        assert!(cfg.pointer("/processors/memory_limiter").is_some(), "siblings survive a merge");
        let after = to_yaml(&cfg).expect("yaml");
        assert_ne!(config_hash(&before, &spec), config_hash(&after, &spec));
        assert_eq!(config_hash(&after, &spec), config_hash(&after, &spec));
    }
}
