//! Loading and validating the upstream collector YAML: sections, component ids, env expansion,
//! pipelines. Each component's own checks run through its registry entry; what is checked here is
//! the graph: ids, references between components, and pipelines. Pure: `Config::from_yaml_str`
//! takes text and an env lookup; file I/O is a thin wrapper.

pub mod expand;
// Their home moved to the crate root (they are leaves every config module uses); the old paths
// stay for the collector's and operator's imports.
pub use crate::{duration, id};

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::Check;
use crate::id::{ComponentId, Kind, Signal};
use crate::registry::{self, AnyConfig, ExporterConfig, ExtensionConfig, ProcessorConfig, ReceiverConfig};

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
    ///
    /// Errors are reported in a stable order: component parse errors (receivers, processors,
    /// exporters, extensions), the service section, pipelines, then each component's own checks
    /// in the same section order.
    pub fn from_yaml_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let raw = parse_raw(text, env)?;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        if !raw.connectors.is_empty() {
            errors.push("connectors: connectors are not supported".to_owned());
        }
        // Components present in the file, valid or not: a reference to one that failed to parse
        // is not reported again as "not configured" (its own error says what is wrong).
        let declared = Declared::of(&raw);
        let (service, telemetry, service_errors) = parse_service(raw.service);

        // Extensions first: other components' checks look up the extensions they reference.
        let no_extensions = BTreeMap::new();
        let mut extension_check = Check::new(&no_extensions, &[]);
        let mut extension_errors = Vec::new();
        let extensions =
            parse_section(Kind::Extension, raw.extensions, &mut extension_check, &mut extension_errors, &mut warnings);
        let extension_types = extensions.iter().map(|(id, (ty, _))| (id.clone(), *ty)).collect();
        let mut check = Check::new(&extension_types, &service.extensions);
        let receivers = parse_section(Kind::Receiver, raw.receivers, &mut check, &mut errors, &mut warnings);
        let processors = parse_section(Kind::Processor, raw.processors, &mut check, &mut errors, &mut warnings);
        let exporters = parse_section(Kind::Exporter, raw.exporters, &mut check, &mut errors, &mut warnings);
        errors.extend(extension_errors);
        errors.extend(service_errors);

        let receivers = of_kind(receivers, |c| if let AnyConfig::Receiver(r) = c { Some(r) } else { None });
        let processors = of_kind(processors, |c| if let AnyConfig::Processor(p) = c { Some(*p) } else { None });
        let exporters = of_kind(exporters, |c| if let AnyConfig::Exporter(e) = c { Some(e) } else { None });
        let extensions = of_kind(extensions, |c| if let AnyConfig::Extension(e) = c { Some(e) } else { None });

        for (i, ext) in service.extensions.iter().enumerate() {
            if !extensions.contains_key(ext) && !declared.contains(Kind::Extension, ext) {
                errors.push(format!("service.extensions[{i}]: references extension {ext:?} which is not configured"));
            }
        }
        let defined = |kind: Kind, id: &str| match kind {
            Kind::Receiver => receivers.contains_key(id),
            Kind::Processor => processors.contains_key(id),
            Kind::Exporter => exporters.contains_key(id),
            Kind::Extension => extensions.contains_key(id),
        };
        let mut pipelines = Vec::new();
        for (pid, value) in service.pipelines {
            if let Some(p) = check_pipeline(pid, value, &defined, &declared, &mut errors) {
                pipelines.push(p);
            }
        }
        if pipelines.is_empty() && errors.is_empty() {
            errors.push("service.pipelines: at least one pipeline is required".to_owned());
        }

        let Check { errors: component_errors, warnings: component_warnings, .. } = check;
        errors.extend(component_errors.into_iter().chain(extension_check.errors));
        warnings.extend(component_warnings.into_iter().chain(extension_check.warnings));
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

/// The configs of one section as its kind's enum. `parse_section` of a kind only yields that
/// kind's variant, so `unwrap` never drops one.
fn of_kind<T>(
    parsed: BTreeMap<String, (&'static str, AnyConfig)>,
    unwrap: fn(AnyConfig) -> Option<T>,
) -> BTreeMap<String, T> {
    parsed.into_iter().filter_map(|(id, (_, c))| Some((id, unwrap(c)?))).collect()
}

/// The text as YAML, env-expanded, split into its top-level sections.
fn parse_raw(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<RawConfig, ConfigError> {
    let mut root: Value = serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    if root.is_null() {
        return Err(ConfigError::Invalid(vec!["config is empty".into()]));
    }
    expand::expand_value(&mut root, "", env).map_err(|(p, m)| ConfigError::Invalid(vec![format!("{p}: {m}")]))?;
    serde_path_to_error::deserialize(root).map_err(|e| ConfigError::Invalid(vec![path_err("", e)]))
}

/// The `service` section and its `telemetry`, with their errors (defaults where they failed).
fn parse_service(service: Value) -> (RawService, TelemetryConfig, Vec<String>) {
    let mut errors = Vec::new();
    let service: RawService = if service.is_null() {
        errors.push("service: missing; at least one pipeline is required".to_owned());
        RawService::default()
    } else {
        serde_path_to_error::deserialize(service).unwrap_or_else(|e| {
            errors.push(path_err("service.", e));
            RawService::default()
        })
    };
    let telemetry: TelemetryConfig = if service.telemetry.is_null() {
        TelemetryConfig::default()
    } else {
        serde_path_to_error::deserialize(service.telemetry.clone()).unwrap_or_else(|e| {
            errors.push(path_err("service.telemetry.", e));
            TelemetryConfig::default()
        })
    };
    (service, telemetry, errors)
}

/// Parses and validates every component of one section through its registry entry. Returns the
/// parsed ones by id with their canonical type name; id, type and parse errors go to `errors`,
/// deprecation notes to `warnings`, and the components' own findings to `check`.
fn parse_section(
    kind: Kind,
    section: BTreeMap<String, Value>,
    check: &mut Check<'_>,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, (&'static str, AnyConfig)> {
    let mut out = BTreeMap::new();
    let singular = kind.section().trim_end_matches('s');
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
            let known = registry::known_types(kind).join(", ");
            errors.push(format!("{prefix}: unknown type {:?} (known {singular} types: {known})", id.ty));
            continue;
        };
        if found.deprecated {
            warnings
                .push(format!("{prefix}: the {:?} {singular} is deprecated, use {:?} instead", id.ty, found.entry.ty));
        }
        let value = migrate_logging(&id.ty, value, warnings, &prefix);
        match (found.entry.load)(value, &prefix, check) {
            Ok(cfg) => {
                out.insert(key, (found.entry.ty, cfg));
            }
            Err((path, msg)) => {
                let full = if path.is_empty() { prefix } else { format!("{prefix}.{path}") };
                errors.push(format!("{full}: {msg}"));
            }
        }
    }
    out
}

/// The component ids written in the file, whether or not they parsed.
struct Declared(std::collections::BTreeSet<(Kind, String)>);

impl Declared {
    fn of(raw: &RawConfig) -> Self {
        let sections = [
            (Kind::Receiver, &raw.receivers),
            (Kind::Processor, &raw.processors),
            (Kind::Exporter, &raw.exporters),
            (Kind::Extension, &raw.extensions),
        ];
        Self(sections.into_iter().flat_map(|(kind, s)| s.keys().map(move |k| (kind, k.clone()))).collect())
    }

    fn contains(&self, kind: Kind, id: &str) -> bool {
        self.0.contains(&(kind, id.to_owned()))
    }
}

/// Checks `service.pipelines.<pid>`: its signal, that it has receivers and exporters, that every
/// id it lists is configured (`defined`) and supports the signal, and that none is listed twice.
fn check_pipeline(
    pid: String,
    value: Value,
    defined: &dyn Fn(Kind, &str) -> bool,
    declared: &Declared,
    errors: &mut Vec<String>,
) -> Option<Pipeline> {
    let prefix = format!("service.pipelines.{pid}");
    let signal = match ComponentId::parse(&pid) {
        Ok(id) => match Signal::parse(&id.ty) {
            Some(s) => s,
            None => {
                errors.push(format!("{prefix}: unknown pipeline type {:?} (expected traces, metrics or logs)", id.ty));
                return None;
            }
        },
        Err(e) => {
            errors.push(format!("{prefix}: {e}"));
            return None;
        }
    };
    let value = if value.is_null() { Value::Mapping(Default::default()) } else { value };
    let p: PipelineConfig = match serde_path_to_error::deserialize(value) {
        Ok(p) => p,
        Err(e) => {
            errors.push(path_err(&format!("{prefix}."), e));
            return None;
        }
    };
    if p.receivers.is_empty() {
        errors.push(format!("{prefix}.receivers: must have at least one receiver"));
    }
    if p.exporters.is_empty() {
        errors.push(format!("{prefix}.exporters: must have at least one exporter"));
    }
    for (kind, list) in
        [(Kind::Receiver, &p.receivers), (Kind::Processor, &p.processors), (Kind::Exporter, &p.exporters)]
    {
        let field = kind.section();
        for (i, r) in list.iter().enumerate() {
            if !defined(kind, r) {
                if !declared.contains(kind, r) {
                    let singular = field.trim_end_matches('s');
                    errors.push(format!("{prefix}.{field}[{i}]: references {singular} {r:?} which is not configured"));
                }
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
    }
    Some(Pipeline { id: pid, signal, receivers: p.receivers, processors: p.processors, exporters: p.exporters })
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

/// Formats a serde path error as `prefix<path>: message` without serde_yaml's position suffix.
fn path_err(prefix: &str, e: serde_path_to_error::Error<serde_yaml::Error>) -> String {
    let path = e.path().to_string();
    let msg = e.into_inner().to_string();
    let msg = msg.split(" at line ").next().unwrap_or_default();
    format!("{prefix}{path}: {msg}")
}

#[cfg(test)]
mod tests;
