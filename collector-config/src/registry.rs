//! The one place that maps component type names (and their upstream aliases) to their typed
//! configs: each [`Entry`] parses a component's YAML into its type and runs the type's
//! [`Validate`] (the type's own module holds both). The enums here are the closed set of parsed
//! configs the service builds components from.
//!
//! Adding a component: its config module (type + `Validate`), a variant in its kind's enum and
//! one [`REGISTRY`] row here, and its builder in the collector.

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::check::{Check, Validate};
use crate::exporter::debug::DebugExporterConfig;
use crate::exporter::file::FileExporterConfig;
use crate::exporter::otlp::OtlpExporterConfig;
use crate::exporter::otlphttp::OtlpHttpExporterConfig;
use crate::exporter::prometheus::PrometheusExporterConfig;
use crate::extension::basicauth::BasicAuthConfig;
use crate::extension::file_storage::FileStorageConfig;
use crate::extension::health_check::HealthCheckConfig;
use crate::id::{Kind, Signal};
use crate::processor::attributes::AttributesProcessorConfig;
use crate::processor::batch::BatchConfig;
use crate::processor::memory_limiter::MemoryLimiterConfig;
use crate::processor::metricstransform::MetricsTransformConfig;
use crate::processor::resource::ResourceProcessorConfig;
use crate::processor::span::SpanProcessorConfig;
use crate::receiver::hostmetrics::config::HostMetricsConfig;
use crate::receiver::otlp::OtlpReceiverConfig;
use crate::receiver::prometheus::config::PrometheusReceiverConfig;

/// A parsed receiver config.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverConfig {
    /// OTLP gRPC/HTTP receiver.
    Otlp(Box<OtlpReceiverConfig>),
    /// Prometheus scraping receiver.
    Prometheus(Box<PrometheusReceiverConfig>),
    /// Host metrics receiver.
    HostMetrics(Box<HostMetricsConfig>),
}

/// A parsed processor config.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessorConfig {
    /// Batching.
    Batch(BatchConfig),
    /// Refuse data above a memory limit.
    MemoryLimiter(MemoryLimiterConfig),
    /// Resource attribute actions.
    Resource(ResourceProcessorConfig),
    /// Attribute actions with matching.
    Attributes(AttributesProcessorConfig),
    /// Span renaming.
    Span(SpanProcessorConfig),
    /// Metric renaming.
    MetricsTransform(MetricsTransformConfig),
}

/// A parsed exporter config.
#[derive(Debug, Clone, PartialEq)]
pub enum ExporterConfig {
    /// OTLP over gRPC.
    Otlp(Box<OtlpExporterConfig>),
    /// OTLP over HTTP.
    OtlpHttp(Box<OtlpHttpExporterConfig>),
    /// Log to stderr.
    Debug(Box<DebugExporterConfig>),
    /// Prometheus pull endpoint (`/metrics`).
    Prometheus(Box<PrometheusExporterConfig>),
    /// Append OTLP JSON lines to a file.
    File(Box<FileExporterConfig>),
}

/// A parsed extension config.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionConfig {
    /// HTTP health endpoint.
    HealthCheck(Box<HealthCheckConfig>),
    /// Basic authentication.
    BasicAuth(Box<BasicAuthConfig>),
    /// Directory for persistent sending queues.
    FileStorage(Box<FileStorageConfig>),
}

/// Any component config.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyConfig {
    /// Receiver.
    Receiver(ReceiverConfig),
    /// Processor.
    Processor(Box<ProcessorConfig>),
    /// Exporter.
    Exporter(ExporterConfig),
    /// Extension.
    Extension(ExtensionConfig),
}

/// How an entry turns YAML into its typed config: parse `value`, validate the result as the
/// component at config path `path` into `check`, and wrap it into its enum variant. A parse error
/// is (serde path inside the component, message).
pub type Load = fn(value: Value, path: &str, check: &mut Check<'_>) -> Result<AnyConfig, (String, String)>;

/// One registered component type.
#[derive(Debug)]
pub struct Entry {
    /// Section it lives in.
    pub kind: Kind,
    /// Canonical type name.
    pub ty: &'static str,
    /// Accepted alternative type names.
    pub aliases: &'static [&'static str],
    /// Deprecated aliases that still work but log a warning.
    pub deprecated_aliases: &'static [&'static str],
    /// Signals a pipeline may use it for (empty for extensions).
    pub signals: &'static [Signal],
    /// Parses the YAML value (already env-expanded) into the typed config and validates it.
    pub load: Load,
}

const ALL: &[Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
const METRICS: &[Signal] = &[Signal::Metrics];
const TRACES: &[Signal] = &[Signal::Traces];

/// Parses `v` as a `T`, validates it at `path` and wraps it into its enum variant.
fn load<T: DeserializeOwned + Validate>(
    v: Value,
    path: &str,
    check: &mut Check<'_>,
    wrap: fn(T) -> AnyConfig,
) -> Result<AnyConfig, (String, String)> {
    let config: T = typed(v)?;
    config.validate(path, check);
    Ok(wrap(config))
}

fn typed<T: DeserializeOwned>(v: Value) -> Result<T, (String, String)> {
    // A component written as `debug:` with no body means "all defaults".
    let v = if v.is_null() { Value::Mapping(Default::default()) } else { v };
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, short_message(&e.into_inner().to_string()))
    })
}

/// serde messages for unknown fields list every expected field; keep the first sentence and the list.
fn short_message(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let expected = rest.split_once(", expected").map(|(_, e)| e.trim()).unwrap_or("");
        if expected.is_empty() {
            return "unknown field".to_owned();
        }
        return format!(
            "unknown field (expected{})",
            expected
                .split_once(" at line")
                .map_or(expected, |(a, _)| a)
                .strip_prefix("one of")
                .map_or_else(|| format!(" {expected}"), |l| format!(" one of{l}"))
        );
    }
    msg.split(" at line ").next().unwrap_or(msg).to_owned()
}

/// Every supported component type.
pub const REGISTRY: &[Entry] = &[
    Entry {
        kind: Kind::Receiver,
        ty: "otlp",
        aliases: &["otlp_grpc", "otlp_http"],
        deprecated_aliases: &[],
        signals: ALL,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Receiver(ReceiverConfig::Otlp(Box::new(c)))),
    },
    Entry {
        kind: Kind::Receiver,
        ty: "prometheus",
        aliases: &[],
        deprecated_aliases: &[],
        signals: METRICS,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Receiver(ReceiverConfig::Prometheus(Box::new(c)))),
    },
    Entry {
        kind: Kind::Receiver,
        ty: "hostmetrics",
        // v0.155 renamed the type to `host_metrics` (keeping `hostmetrics` as an alias).
        aliases: &["host_metrics"],
        deprecated_aliases: &[],
        signals: METRICS,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Receiver(ReceiverConfig::HostMetrics(Box::new(c)))),
    },
    Entry {
        kind: Kind::Processor,
        ty: "batch",
        aliases: &[],
        deprecated_aliases: &[],
        signals: ALL,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Processor(Box::new(ProcessorConfig::Batch(c)))),
    },
    Entry {
        kind: Kind::Processor,
        ty: "memory_limiter",
        aliases: &[],
        deprecated_aliases: &[],
        signals: ALL,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Processor(Box::new(ProcessorConfig::MemoryLimiter(c)))),
    },
    Entry {
        kind: Kind::Processor,
        ty: "resource",
        aliases: &[],
        deprecated_aliases: &[],
        signals: ALL,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Processor(Box::new(ProcessorConfig::Resource(c)))),
    },
    Entry {
        kind: Kind::Processor,
        ty: "attributes",
        aliases: &[],
        deprecated_aliases: &[],
        signals: ALL,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Processor(Box::new(ProcessorConfig::Attributes(c)))),
    },
    Entry {
        kind: Kind::Processor,
        ty: "span",
        aliases: &[],
        deprecated_aliases: &[],
        signals: TRACES,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Processor(Box::new(ProcessorConfig::Span(c)))),
    },
    Entry {
        kind: Kind::Processor,
        ty: "metricstransform",
        aliases: &[],
        deprecated_aliases: &[],
        signals: METRICS,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Processor(Box::new(ProcessorConfig::MetricsTransform(c)))),
    },
    Entry {
        kind: Kind::Exporter,
        ty: "otlp",
        aliases: &["otlp_grpc"],
        deprecated_aliases: &[],
        signals: ALL,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Exporter(ExporterConfig::Otlp(Box::new(c)))),
    },
    Entry {
        kind: Kind::Exporter,
        ty: "otlphttp",
        aliases: &["otlp_http"],
        deprecated_aliases: &[],
        signals: ALL,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Exporter(ExporterConfig::OtlpHttp(Box::new(c)))),
    },
    Entry {
        kind: Kind::Exporter,
        ty: "debug",
        aliases: &[],
        deprecated_aliases: &["logging"],
        signals: ALL,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Exporter(ExporterConfig::Debug(Box::new(c)))),
    },
    Entry {
        kind: Kind::Exporter,
        ty: "prometheus",
        aliases: &[],
        deprecated_aliases: &[],
        signals: METRICS,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Exporter(ExporterConfig::Prometheus(Box::new(c)))),
    },
    Entry {
        kind: Kind::Exporter,
        ty: "file",
        aliases: &[],
        deprecated_aliases: &[],
        signals: ALL,
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Exporter(ExporterConfig::File(Box::new(c)))),
    },
    Entry {
        kind: Kind::Extension,
        ty: "health_check",
        aliases: &["healthcheck"],
        deprecated_aliases: &[],
        signals: &[],
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Extension(ExtensionConfig::HealthCheck(Box::new(c)))),
    },
    Entry {
        kind: Kind::Extension,
        ty: "basicauth",
        aliases: &[],
        deprecated_aliases: &[],
        signals: &[],
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Extension(ExtensionConfig::BasicAuth(Box::new(c)))),
    },
    Entry {
        kind: Kind::Extension,
        ty: "file_storage",
        aliases: &[],
        deprecated_aliases: &[],
        signals: &[],
        load: |v, p, check| load(v, p, check, |c| AnyConfig::Extension(ExtensionConfig::FileStorage(Box::new(c)))),
    },
];

/// Result of looking a type name up.
#[derive(Debug)]
pub struct Lookup {
    /// The registry entry.
    pub entry: &'static Entry,
    /// Set when the name is a deprecated alias (e.g. `logging`).
    pub deprecated: bool,
}

/// Finds the entry for `ty` in section `kind`, resolving aliases.
pub fn lookup(kind: Kind, ty: &str) -> Option<Lookup> {
    REGISTRY.iter().filter(|e| e.kind == kind).find_map(|e| {
        if e.ty == ty || e.aliases.contains(&ty) {
            Some(Lookup { entry: e, deprecated: false })
        } else if e.deprecated_aliases.contains(&ty) {
            Some(Lookup { entry: e, deprecated: true })
        } else {
            None
        }
    })
}

/// Type names known in a section, for "unknown type" messages.
pub fn known_types(kind: Kind) -> Vec<&'static str> {
    REGISTRY.iter().filter(|e| e.kind == kind).map(|e| e.ty).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve() {
        assert_eq!(lookup(Kind::Receiver, "otlp_grpc").unwrap().entry.ty, "otlp");
        assert_eq!(lookup(Kind::Exporter, "otlp_http").unwrap().entry.ty, "otlphttp");
        let l = lookup(Kind::Exporter, "logging").unwrap();
        assert_eq!(l.entry.ty, "debug");
        assert!(l.deprecated);
        assert!(lookup(Kind::Exporter, "kafka").is_none());
    }

    #[test]
    fn unknown_field_message_is_short() {
        let (extensions, enabled) = (Default::default(), Vec::new());
        let mut check = Check::new(&extensions, &enabled);
        let entry = lookup(Kind::Exporter, "otlp").unwrap().entry;
        let err = (entry.load)(serde_yaml::from_str("endpont: x").unwrap(), "exporters.otlp", &mut check).unwrap_err();
        assert_eq!(err.0, "endpont");
        assert!(err.1.starts_with("unknown field"), "{}", err.1);
    }
}
