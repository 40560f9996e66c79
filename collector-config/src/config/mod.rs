//! Loading and validating the upstream collector YAML: sections, component ids, env expansion,
//! pipelines. Pure: `Config::from_yaml_str` takes text and an env lookup; file I/O is a thin wrapper.

pub mod components;
pub mod duration;
pub mod expand;
pub mod id;
mod metricstransform;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_yaml::Value;

use crate::registry::{self, AnyConfig, ExporterConfig, ExtensionConfig, ProcessorConfig, ReceiverConfig};
use id::{ComponentId, Kind, Signal};

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The text is not valid YAML.
    #[error("config is not valid YAML: {0}")]
    Yaml(String),
    /// The YAML is well-formed but violates the schema; every message starts with the path.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

/// `service.pipelines.<id>`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Receiver ids feeding this pipeline (at least one).
    pub receivers: Vec<String>,
    /// Processor ids, applied in order.
    pub processors: Vec<String>,
    /// Exporter ids receiving the output (at least one).
    pub exporters: Vec<String>,
}

/// `service.telemetry.logs`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryLogs {
    /// `debug`, `info` (default), `warn`, `error`.
    pub level: Option<String>,
    /// `console` or `json`.
    pub encoding: Option<String>,
    /// Development mode (accepted for compatibility).
    pub development: bool,
    /// Where logs go (accepted; logs go to stderr).
    pub output_paths: Vec<String>,
    /// Where error logs go (accepted).
    pub error_output_paths: Vec<String>,
    /// Fields added to every log line (accepted).
    pub initial_fields: BTreeMap<String, Value>,
    /// Log sampling (accepted).
    pub sampling: Option<Value>,
    /// Accepted for compatibility.
    pub disable_caller: bool,
    /// Accepted for compatibility.
    pub disable_stacktrace: bool,
    /// OTLP log export of the collector's own logs (accepted).
    pub processors: Option<Value>,
}

/// `service.telemetry.metrics`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryMetrics {
    /// `none`, `basic`, `normal` (default), `detailed`. `none` disables the endpoint.
    pub level: Option<String>,
    /// Legacy listen address for `/metrics` (default `0.0.0.0:8888`).
    pub address: Option<String>,
    /// Metric readers; a `pull.exporter.prometheus` reader's host/port sets the listen address.
    pub readers: Vec<Value>,
    /// Views (accepted).
    pub views: Option<Value>,
}

/// `service.telemetry`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Own logs.
    pub logs: TelemetryLogs,
    /// Own metrics.
    pub metrics: TelemetryMetrics,
    /// Own traces (accepted).
    pub traces: Option<Value>,
    /// Resource attributes of own telemetry (accepted).
    pub resource: Option<Value>,
}

impl TelemetryConfig {
    /// The address to serve own metrics on, or `None` when `level: none`.
    pub fn metrics_address(&self) -> Option<String> {
        if self.metrics.level.as_deref() == Some("none") {
            return None;
        }
        for reader in &self.metrics.readers {
            let prom = &reader["pull"]["exporter"]["prometheus"];
            if !prom.is_null() {
                let host = prom["host"].as_str().unwrap_or("0.0.0.0");
                let port = prom["port"].as_u64().unwrap_or(8888);
                return Some(format!("{host}:{port}"));
            }
        }
        Some(self.metrics.address.clone().unwrap_or_else(|| "0.0.0.0:8888".into()))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawService {
    extensions: Vec<String>,
    pipelines: BTreeMap<String, Value>,
    telemetry: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    receivers: BTreeMap<String, Value>,
    processors: BTreeMap<String, Value>,
    exporters: BTreeMap<String, Value>,
    extensions: BTreeMap<String, Value>,
    connectors: BTreeMap<String, Value>,
    service: Value,
}

/// One validated pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Its id as written (`traces`, `traces/2`).
    pub id: String,
    /// Signal carried.
    pub signal: Signal,
    /// Receiver ids.
    pub receivers: Vec<String>,
    /// Processor ids in order.
    pub processors: Vec<String>,
    /// Exporter ids.
    pub exporters: Vec<String>,
}

/// A fully validated collector configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Receivers by id as written.
    pub receivers: BTreeMap<String, ReceiverConfig>,
    /// Processors by id.
    pub processors: BTreeMap<String, ProcessorConfig>,
    /// Exporters by id.
    pub exporters: BTreeMap<String, ExporterConfig>,
    /// Extensions by id.
    pub extensions: BTreeMap<String, ExtensionConfig>,
    /// Extensions enabled in `service.extensions`, in order.
    pub service_extensions: Vec<String>,
    /// Pipelines.
    pub pipelines: Vec<Pipeline>,
    /// Own telemetry.
    pub telemetry: TelemetryConfig,
    /// Non-fatal findings (deprecated aliases, accepted-but-unimplemented features).
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and validates a config file, expanding environment variables from the process env.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.display().to_string(), source })?;
        Self::from_yaml_str(&text, &|name| std::env::var(name).ok())
    }

    /// Parses and validates config text; `env` resolves `${env:VAR}` references.
    pub fn from_yaml_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut root: Value = serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        if root.is_null() {
            return Err(ConfigError::Invalid(vec!["config is empty".into()]));
        }
        expand::expand_value(&mut root, "", env).map_err(|(p, m)| ConfigError::Invalid(vec![format!("{p}: {m}")]))?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(root).map_err(|e| ConfigError::Invalid(vec![path_err("", e)]))?;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();

        if !raw.connectors.is_empty() {
            errors.push("connectors: connectors are not supported".to_owned());
        }

        let mut parse_section = |kind: Kind, section: BTreeMap<String, Value>| -> BTreeMap<String, AnyConfig> {
            let mut out = BTreeMap::new();
            for (key, value) in section {
                let prefix = format!("{}.{key}", kind.section());
                let id = match ComponentId::parse(&key) {
                    Ok(id) => id,
                    Err(e) => {
                        errors.push(format!("{prefix}: {e}"));
                        continue;
                    }
                };
                let Some(found) = registry::lookup(kind, &id.ty) else {
                    errors.push(format!(
                        "{prefix}: unknown type {:?} (known {} types: {})",
                        id.ty,
                        kind.section().trim_end_matches('s'),
                        registry::known_types(kind).join(", ")
                    ));
                    continue;
                };
                if found.deprecated {
                    warnings.push(format!(
                        "{prefix}: the {:?} {} is deprecated, use {:?} instead",
                        id.ty,
                        kind.section().trim_end_matches('s'),
                        found.entry.ty
                    ));
                }
                let value = migrate_logging(&id.ty, value, &mut warnings, &prefix);
                match (found.entry.parse)(value) {
                    Ok(cfg) => {
                        out.insert(key, cfg);
                    }
                    Err((path, msg)) => {
                        let full = if path.is_empty() { prefix } else { format!("{prefix}.{path}") };
                        errors.push(format!("{full}: {msg}"));
                    }
                }
            }
            out
        };

        // Components present in the file, valid or not: a reference to one that failed to parse
        // is not reported again as "not configured" (its own error says what is wrong).
        let declared: std::collections::BTreeSet<(Kind, String)> = [
            (Kind::Receiver, &raw.receivers),
            (Kind::Processor, &raw.processors),
            (Kind::Exporter, &raw.exporters),
            (Kind::Extension, &raw.extensions),
        ]
        .into_iter()
        .flat_map(|(kind, section)| section.keys().map(move |k| (kind, k.clone())))
        .collect();
        let receivers = parse_section(Kind::Receiver, raw.receivers);
        let processors = parse_section(Kind::Processor, raw.processors);
        let exporters = parse_section(Kind::Exporter, raw.exporters);
        let extensions = parse_section(Kind::Extension, raw.extensions);

        let receivers: BTreeMap<String, ReceiverConfig> = receivers
            .into_iter()
            .filter_map(|(k, v)| if let AnyConfig::Receiver(r) = v { Some((k, r)) } else { None })
            .collect();
        let processors: BTreeMap<String, ProcessorConfig> = processors
            .into_iter()
            .filter_map(|(k, v)| if let AnyConfig::Processor(r) = v { Some((k, *r)) } else { None })
            .collect();
        let exporters: BTreeMap<String, ExporterConfig> = exporters
            .into_iter()
            .filter_map(|(k, v)| if let AnyConfig::Exporter(r) = v { Some((k, r)) } else { None })
            .collect();
        let extensions: BTreeMap<String, ExtensionConfig> = extensions
            .into_iter()
            .filter_map(|(k, v)| if let AnyConfig::Extension(r) = v { Some((k, r)) } else { None })
            .collect();

        let service: RawService = if raw.service.is_null() {
            errors.push("service: missing; at least one pipeline is required".to_owned());
            RawService::default()
        } else {
            match serde_path_to_error::deserialize(raw.service) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(path_err("service.", e));
                    RawService::default()
                }
            }
        };
        let telemetry: TelemetryConfig = if service.telemetry.is_null() {
            TelemetryConfig::default()
        } else {
            match serde_path_to_error::deserialize(service.telemetry) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(path_err("service.telemetry.", e));
                    TelemetryConfig::default()
                }
            }
        };

        for (i, ext) in service.extensions.iter().enumerate() {
            if !extensions.contains_key(ext) && !declared.contains(&(Kind::Extension, ext.clone())) {
                errors.push(format!("service.extensions[{i}]: references extension {ext:?} which is not configured"));
            }
        }

        let mut pipelines = Vec::new();
        for (pid, value) in service.pipelines {
            let prefix = format!("service.pipelines.{pid}");
            let signal = match ComponentId::parse(&pid) {
                Ok(id) => match Signal::parse(&id.ty) {
                    Some(s) => s,
                    None => {
                        errors.push(format!(
                            "{prefix}: unknown pipeline type {:?} (expected traces, metrics or logs)",
                            id.ty
                        ));
                        continue;
                    }
                },
                Err(e) => {
                    errors.push(format!("{prefix}: {e}"));
                    continue;
                }
            };
            let p: PipelineConfig = match serde_path_to_error::deserialize(if value.is_null() {
                Value::Mapping(Default::default())
            } else {
                value
            }) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(path_err(&format!("{prefix}."), e));
                    continue;
                }
            };
            if p.receivers.is_empty() {
                errors.push(format!("{prefix}.receivers: must have at least one receiver"));
            }
            if p.exporters.is_empty() {
                errors.push(format!("{prefix}.exporters: must have at least one exporter"));
            }
            let mut check = |kind: Kind, list: &[String], defined: &dyn Fn(&str) -> bool| {
                let field = kind.section();
                for (i, r) in list.iter().enumerate() {
                    if !defined(r) {
                        if declared.contains(&(kind, r.clone())) {
                            continue;
                        }
                        errors.push(format!(
                            "{prefix}.{field}[{i}]: references {} {r:?} which is not configured",
                            field.trim_end_matches('s')
                        ));
                        continue;
                    }
                    if let Ok(id) = ComponentId::parse(r)
                        && let Some(found) = registry::lookup(kind, &id.ty)
                        && !found.entry.signals.contains(&signal)
                    {
                        errors.push(format!("{prefix}.{field}[{i}]: {r:?} does not support {}", signal.as_str()));
                    }
                }
                let mut seen = std::collections::BTreeSet::new();
                for r in list {
                    if !seen.insert(r) {
                        errors.push(format!("{prefix}.{field}: {r:?} is listed twice"));
                    }
                }
            };
            check(Kind::Receiver, &p.receivers, &|r| receivers.contains_key(r));
            check(Kind::Processor, &p.processors, &|r| processors.contains_key(r));
            check(Kind::Exporter, &p.exporters, &|r| exporters.contains_key(r));
            pipelines.push(Pipeline {
                id: pid,
                signal,
                receivers: p.receivers,
                processors: p.processors,
                exporters: p.exporters,
            });
        }
        if pipelines.is_empty() && errors.is_empty() {
            errors.push("service.pipelines: at least one pipeline is required".to_owned());
        }

        validate_semantics(
            &receivers,
            &processors,
            &exporters,
            &extensions,
            &service.extensions,
            &mut errors,
            &mut warnings,
        );

        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        Ok(Config {
            receivers,
            processors,
            exporters,
            extensions,
            service_extensions: service.extensions,
            pipelines,
            telemetry,
            warnings,
        })
    }
}

/// The removed `logging` exporter had `loglevel`/`verbosity`; map `loglevel: debug` onto `verbosity: detailed`.
fn migrate_logging(ty: &str, value: Value, warnings: &mut Vec<String>, prefix: &str) -> Value {
    if ty != "logging" {
        return value;
    }
    if let Value::Mapping(mut m) = value {
        if let Some(level) = m.remove("loglevel") {
            warnings.push(format!("{prefix}.loglevel: deprecated, use verbosity"));
            let verbosity = if level.as_str() == Some("debug") { "detailed" } else { "normal" };
            m.entry(Value::from("verbosity")).or_insert(Value::from(verbosity));
        }
        Value::Mapping(m)
    } else {
        value
    }
}

/// Field-level checks that need more than types: required fields, ranges, regexes, references.
fn validate_semantics(
    receivers: &BTreeMap<String, ReceiverConfig>,
    processors: &BTreeMap<String, ProcessorConfig>,
    exporters: &BTreeMap<String, ExporterConfig>,
    extensions: &BTreeMap<String, ExtensionConfig>,
    service_extensions: &[String],
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let check_auth = |path: String, auth: &Option<components::AuthConfig>, errors: &mut Vec<String>| {
        if let Some(a) = auth {
            match extensions.get(&a.authenticator) {
                None => errors.push(format!(
                    "{path}.auth.authenticator: references extension {:?} which is not configured",
                    a.authenticator
                )),
                Some(ExtensionConfig::BasicAuth(_)) => {}
                Some(_) => errors.push(format!(
                    "{path}.auth.authenticator: extension {:?} is not an authenticator",
                    a.authenticator
                )),
            }
        }
    };
    for (id, r) in receivers {
        let p = format!("receivers.{id}");
        match r {
            ReceiverConfig::Otlp(c) => {
                if c.protocols.grpc.is_none() && c.protocols.http.is_none() {
                    errors.push(format!("{p}.protocols: must specify at least one protocol (grpc or http)"));
                }
                // Accepting an auth block we don't enforce would silently leave the receiver open.
                if c.protocols.grpc.as_ref().is_some_and(|g| g.auth.is_some()) {
                    errors.push(format!("{p}.protocols.grpc.auth: server authentication is not supported yet"));
                }
                if c.protocols.http.as_ref().is_some_and(|h| h.auth.is_some()) {
                    errors.push(format!("{p}.protocols.http.auth: server authentication is not supported yet"));
                }
                if let Some(k) = c.protocols.grpc.as_ref().and_then(|g| g.keepalive.as_ref()) {
                    // Accepting and ignoring these would promise connection hygiene we don't give.
                    if k.enforcement_policy.is_some() {
                        errors.push(format!("{p}.protocols.grpc.keepalive.enforcement_policy: not supported (hyper's HTTP/2 server cannot enforce a client ping policy)"));
                    }
                }
                if c.protocols.http.as_ref().is_some_and(|h| h.cors.is_some()) {
                    warnings.push(format!("{p}.protocols.http.cors: CORS is not implemented yet; browser clients will be refused by their browser"));
                }
                for (proto, tls) in [
                    ("grpc", c.protocols.grpc.as_ref().and_then(|g| g.tls.as_ref())),
                    ("http", c.protocols.http.as_ref().and_then(|h| h.tls.as_ref())),
                ] {
                    if tls.is_some() {
                        errors.push(format!("{p}.protocols.{proto}.tls: server TLS is not supported yet; terminate TLS in front of the collector"));
                    }
                }
            }
            ReceiverConfig::Prometheus(c) => {
                // One function validates and compiles, so what passes here is what runs.
                crate::prometheus::plan::plan(&p, c, errors, warnings);
            }
            ReceiverConfig::HostMetrics(c) => {
                // Scraper bodies are typed by the receiver itself (filters, metric toggles).
                if let Err(e) = crate::hostmetrics::config::Settings::from_config(c) {
                    errors.extend(e.into_iter().map(|e| format!("{p}.{e}")));
                }
            }
        }
    }
    for (id, pc) in processors {
        let p = format!("processors.{id}");
        match pc {
            ProcessorConfig::Batch(b) => {
                if b.send_batch_max_size != 0 && b.send_batch_max_size < b.send_batch_size {
                    errors.push(format!("{p}.send_batch_max_size: must be greater or equal to send_batch_size"));
                }
            }
            ProcessorConfig::MemoryLimiter(m) => {
                if m.check_interval.is_zero() {
                    errors.push(format!("{p}.check_interval: must be greater than zero"));
                }
                if m.limit_mib == 0 && m.limit_percentage == 0 {
                    errors.push(format!("{p}.limit_mib: one of limit_mib or limit_percentage must be set"));
                }
                if m.limit_mib != 0 && m.spike_limit_mib >= m.limit_mib {
                    errors.push(format!("{p}.spike_limit_mib: must be smaller than limit_mib"));
                }
                if m.limit_percentage > 100 || m.spike_limit_percentage > 100 {
                    errors.push(format!("{p}.limit_percentage: must be at most 100"));
                }
            }
            ProcessorConfig::Resource(r) => validate_actions(&format!("{p}.attributes"), &r.attributes, errors),
            ProcessorConfig::Attributes(a) => {
                validate_actions(&format!("{p}.actions"), &a.actions, errors);
                if a.actions.is_empty() {
                    errors.push(format!("{p}.actions: missing required field"));
                }
                for (which, m) in [("include", &a.include), ("exclude", &a.exclude)] {
                    if let Some(m) = m {
                        validate_match(&format!("{p}.{which}"), m, errors);
                    }
                }
            }
            ProcessorConfig::Span(s) => {
                if let Some(status) = &s.status
                    && status.code != components::SpanStatusCode::Error
                    && !status.description.is_empty()
                {
                    errors.push(format!("{p}.status.description: only allowed with code: Error"));
                }
                for (i, rule) in s.name.to_attributes.iter().flat_map(|t| t.rules.iter()).enumerate() {
                    if let Err(e) = regex::Regex::new(rule) {
                        errors.push(format!("{p}.name.to_attributes.rules[{i}]: invalid regex: {e}"));
                    }
                }
                for (which, m) in [("include", &s.include), ("exclude", &s.exclude)] {
                    if let Some(m) = m {
                        validate_match(&format!("{p}.{which}"), m, errors);
                    }
                }
            }
            ProcessorConfig::MetricsTransform(m) => metricstransform::validate(&p, m, errors, warnings),
        }
    }
    for (id, e) in exporters {
        let p = format!("exporters.{id}");
        match e {
            ExporterConfig::Otlp(c) => {
                if c.endpoint.is_empty() {
                    errors.push(format!("{p}.endpoint: required"));
                }
                check_auth(p.clone(), &c.auth, errors);
                if c.tls.insecure_skip_verify {
                    errors.push(format!("{p}.tls.insecure_skip_verify: not supported; provide ca_file instead"));
                }
                validate_queue(&p, &c.sending_queue, extensions, service_extensions, errors);
            }
            ExporterConfig::OtlpHttp(c) => {
                if c.endpoint.is_empty()
                    && (c.traces_endpoint.is_none() || c.metrics_endpoint.is_none() || c.logs_endpoint.is_none())
                {
                    errors.push(format!(
                        "{p}.endpoint: required (or set traces_endpoint, metrics_endpoint and logs_endpoint)"
                    ));
                }
                for (field, url) in [
                    ("endpoint", Some(&c.endpoint)),
                    ("traces_endpoint", c.traces_endpoint.as_ref()),
                    ("metrics_endpoint", c.metrics_endpoint.as_ref()),
                    ("logs_endpoint", c.logs_endpoint.as_ref()),
                ] {
                    if let Some(u) = url
                        && !u.is_empty()
                        && !(u.starts_with("http://") || u.starts_with("https://"))
                    {
                        errors.push(format!("{p}.{field}: must be an http:// or https:// URL, got {u:?}"));
                    }
                }
                if let Some(enc) = &c.encoding
                    && enc != "proto"
                    && enc != "json"
                {
                    errors.push(format!("{p}.encoding: {enc:?} is not one of proto, json"));
                }
                if c.tls.insecure_skip_verify {
                    errors.push(format!("{p}.tls.insecure_skip_verify: not supported; provide ca_file instead"));
                }
                check_auth(p.clone(), &c.auth, errors);
                validate_queue(&p, &c.sending_queue, extensions, service_extensions, errors);
            }
            ExporterConfig::Debug(d) => {
                if !["basic", "normal", "detailed"].contains(&d.verbosity.as_str()) {
                    errors.push(format!("{p}.verbosity: {:?} is not one of basic, normal, detailed", d.verbosity));
                }
            }
            ExporterConfig::Prometheus(c) => {
                if c.endpoint.is_empty() {
                    errors.push(format!("{p}.endpoint: required"));
                }
                if c.enable_open_metrics {
                    errors.push(format!(
                        "{p}.enable_open_metrics: OpenMetrics output is not implemented; remove it to serve the Prometheus text format"
                    ));
                }
                if c.tls.is_some() {
                    errors.push(format!("{p}.tls: TLS for the /metrics listener is not implemented"));
                }
            }
            ExporterConfig::File(c) => {
                if c.path.is_empty() {
                    errors.push(format!("{p}.path: required"));
                }
            }
        }
    }
    for (id, e) in extensions {
        if let ExtensionConfig::BasicAuth(b) = e
            && b.client_auth.is_none()
            && b.htpasswd.is_none()
        {
            errors.push(format!("extensions.{id}: one of client_auth or htpasswd is required"));
        }
        if let ExtensionConfig::FileStorage(f) = e {
            validate_file_storage(id, f, errors);
        }
    }
}

/// Formats a serde path error as `prefix<path>: message` without serde_yaml's position suffix.
fn path_err(prefix: &str, e: serde_path_to_error::Error<serde_yaml::Error>) -> String {
    let path = e.path().to_string();
    let msg = e.into_inner().to_string();
    let msg = msg.split(" at line ").next().unwrap_or_default();
    format!("{prefix}{path}: {msg}")
}

fn validate_queue(
    p: &str,
    q: &components::QueueConfig,
    extensions: &BTreeMap<String, ExtensionConfig>,
    service_extensions: &[String],
    errors: &mut Vec<String>,
) {
    if !q.enabled {
        return;
    }
    if q.queue_size == 0 {
        errors.push(format!("{p}.sending_queue.queue_size: must be greater than zero"));
    }
    if q.num_consumers == 0 {
        errors.push(format!("{p}.sending_queue.num_consumers: must be greater than zero"));
    }
    match &q.storage {
        // Accepting `items`/`bytes` while counting batches would bound the queue 100-1000x
        // looser than the user asked for; only the persistent queue counts them.
        None if q.sizer != components::Sizer::Requests => errors.push(format!(
            "{p}.sending_queue.sizer: {:?} needs sending_queue.storage; the in-memory queue counts requests",
            q.sizer
        )),
        None => {}
        Some(id) => {
            match extensions.get(id) {
                Some(ExtensionConfig::FileStorage(_)) if service_extensions.contains(id) => {}
                Some(ExtensionConfig::FileStorage(_)) => errors
                    .push(format!("{p}.sending_queue.storage: extension {id:?} is not enabled in service.extensions")),
                Some(_) => errors.push(format!("{p}.sending_queue.storage: extension {id:?} is not a file_storage")),
                None => errors
                    .push(format!("{p}.sending_queue.storage: references extension {id:?} which is not configured")),
            }
        }
    }
}

/// `file_storage`: what is accepted is implemented; upstream's other settings are refused.
fn validate_file_storage(id: &str, f: &components::FileStorageConfig, errors: &mut Vec<String>) {
    let p = format!("extensions.{id}");
    if f.directory.is_empty() {
        errors.push(format!("{p}.directory: required"));
    }
    let c = &f.compaction;
    for (field, set) in [
        ("directory_permissions", f.directory_permissions.is_some()),
        ("recreate", f.recreate.is_some()),
        ("compaction.max_transaction_size", c.max_transaction_size.is_some()),
        ("compaction.rebound_needed_threshold_mib", c.rebound_needed_threshold_mib.is_some()),
        ("compaction.rebound_trigger_threshold_mib", c.rebound_trigger_threshold_mib.is_some()),
        ("compaction.check_interval", c.check_interval.is_some()),
        ("compaction.cleanup_on_start", c.cleanup_on_start.is_some()),
    ] {
        if set {
            errors.push(format!("{p}.{field}: not supported by this collector"));
        }
    }
    if let Some(d) = &c.directory
        && std::path::Path::new(d) != std::path::Path::new(&f.directory)
    {
        errors.push(format!(
            "{p}.compaction.directory: only the storage directory itself ({:?}) is supported",
            f.directory
        ));
    }
}

fn validate_match(p: &str, m: &components::MatchProperties, errors: &mut Vec<String>) {
    match m.match_type.as_str() {
        "strict" => {}
        "regexp" => {
            for (i, s) in m.services.iter().chain(&m.span_names).chain(&m.metric_names).chain(&m.log_bodies).enumerate()
            {
                if let Err(e) = regex::Regex::new(s) {
                    errors.push(format!("{p}[{i}]: invalid regex: {e}"));
                }
            }
        }
        other => errors.push(format!("{p}.match_type: {other:?} is not one of strict, regexp")),
    }
}

fn validate_actions(p: &str, actions: &[components::AttributeAction], errors: &mut Vec<String>) {
    for (i, a) in actions.iter().enumerate() {
        let ap = format!("{p}[{i}]");
        if a.from_context.is_some() {
            // Upstream reads it from client metadata the receivers attach to the request context;
            // our receivers attach none, so the action could never do anything.
            errors.push(format!(
                "{ap}.from_context: not supported by this collector (receivers do not pass request metadata on)"
            ));
        }
        match a.action.as_str() {
            "insert" | "update" | "upsert" => {
                if a.key.is_empty() {
                    errors.push(format!("{ap}.key: required for {}", a.action));
                }
                let sources = [a.value.is_some(), a.from_attribute.is_some(), a.from_context.is_some()]
                    .iter()
                    .filter(|b| **b)
                    .count();
                if sources != 1 {
                    errors.push(format!(
                        "{ap}: exactly one of value, from_attribute, from_context is required for {}",
                        a.action
                    ));
                }
            }
            "delete" | "hash" => {
                if a.key.is_empty() && a.pattern.is_none() {
                    errors.push(format!("{ap}.key: key or pattern required for {}", a.action));
                }
                if let Some(re) = &a.pattern
                    && let Err(e) = regex::Regex::new(re)
                {
                    errors.push(format!("{ap}.pattern: invalid regex: {e}"));
                }
            }
            "extract" => match &a.pattern {
                None => errors.push(format!("{ap}.pattern: required for extract")),
                Some(re) => match regex::Regex::new(re) {
                    Err(e) => errors.push(format!("{ap}.pattern: invalid regex: {e}")),
                    Ok(r) if r.capture_names().flatten().next().is_none() => {
                        errors.push(format!("{ap}.pattern: needs at least one named capture group"))
                    }
                    Ok(_) => {}
                },
            },
            "convert" => {
                if !matches!(a.converted_type.as_deref(), Some("int" | "double" | "string")) {
                    errors.push(format!("{ap}.converted_type: must be one of int, double, string"));
                }
            }
            "" => errors.push(format!("{ap}.action: required")),
            other => errors.push(format!(
                "{ap}.action: {other:?} is not one of insert, update, upsert, delete, hash, extract, convert"
            )),
        }
    }
}

#[cfg(test)]
mod tests;
