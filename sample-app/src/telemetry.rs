//! OpenTelemetry wiring: OTLP trace and metric export (gRPC or
//! `http/protobuf`), the custom instruments, W3C trace-context propagation,
//! and helpers that create child spans only when telemetry is on.
//!
//! Everything else in the crate talks to [`Telemetry`], which is a cheap
//! no-op when `ENABLE_TELEMETRY` is off, so the off path pays nothing.

use crate::span_processor::{BackoffSampler, BatchSettings, BoundedBatchProcessor, ExportStats};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::metrics::{
    BoundCounter, BoundHistogram, Counter, Histogram, Meter, MeterProvider as _, UpDownCounter,
};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{
    MetricExporter, Protocol, RetryPolicy, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The W3C trace-context request header.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Default `service.name` when neither `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` names the service.
pub const DEFAULT_SERVICE_NAME: &str = "reviews-service";

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` holds a value this service cannot speak.
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL: unsupported value {0:?} (expected \"grpc\" or \"http/protobuf\")")]
    UnsupportedProtocol(String),
    /// The OTLP exporter rejected its configuration (e.g. a bad endpoint).
    #[error("building the OTLP {signal} exporter failed: {source}")]
    Exporter {
        /// `traces` or `metrics`.
        signal: &'static str,
        /// The exporter's error.
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// Transport for OTLP export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (default port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    HttpProtobuf,
}

/// Parses `OTEL_EXPORTER_OTLP_PROTOCOL`; unset means gRPC, which is what
/// the collector's default receiver and the operator's wiring speak.
pub fn parse_protocol(value: Option<&str>) -> Result<OtlpProtocol, TelemetryError> {
    match value.map(str::trim) {
        None | Some("") | Some("grpc") => Ok(OtlpProtocol::Grpc),
        Some("http/protobuf") => Ok(OtlpProtocol::HttpProtobuf),
        Some(other) => Err(TelemetryError::UnsupportedProtocol(other.to_owned())),
    }
}

/// Whether the resource needs our default service name: only when the
/// standard variables do not name it (they must win).
pub fn needs_default_service_name(service_name: Option<&str>, resource_attributes: Option<&str>) -> bool {
    let named_by_attrs =
        resource_attributes.map(|a| a.split(',').any(|kv| kv.trim().starts_with("service.name="))).unwrap_or(false);
    service_name.is_none_or(|s| s.trim().is_empty()) && !named_by_attrs
}

/// The custom instruments the issue asks for.
#[derive(Debug, Clone)]
pub struct Instruments {
    /// `reviews.created`: reviews created, by entity type.
    pub created: Counter<u64>,
    /// `reviews.rating`: distribution of submitted ratings.
    pub rating: Histogram<u64>,
    /// `reviews.processing_time` (ms): handler time per request.
    pub processing_time: Histogram<f64>,
    /// `reviews.active_requests`: requests in flight.
    pub active_requests: UpDownCounter<i64>,
}

impl Instruments {
    fn new(meter: &Meter) -> Self {
        Self {
            created: meter
                .u64_counter("reviews.created")
                .with_description("Reviews created")
                .with_unit("{review}")
                .build(),
            rating: meter
                .u64_histogram("reviews.rating")
                .with_description("Ratings of created and updated reviews")
                .with_boundaries(vec![1.0, 2.0, 3.0, 4.0, 5.0])
                .build(),
            processing_time: meter
                .f64_histogram("reviews.processing_time")
                .with_description("Time to process a request")
                .with_unit("ms")
                .with_boundaries(vec![0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0])
                .build(),
            active_requests: meter
                .i64_up_down_counter("reviews.active_requests")
                .with_description("Requests being processed")
                .with_unit("{request}")
                .build(),
        }
    }
}

/// How many entity types get bound `reviews.created`/`reviews.rating`
/// handles. Entity types come from request bodies, so the bound set is
/// capped; reviews of further types are recorded through the unbound
/// instruments (same data, just the per-measurement attribute lookup).
const MAX_BOUND_ENTITY_TYPES: usize = 64;

/// `reviews.created` and `reviews.rating` bound to one `entity_type`.
#[derive(Debug)]
struct EntityTypeInstruments {
    entity_type: Box<str>,
    created: BoundCounter<u64>,
    rating: BoundHistogram<u64>,
}

#[derive(Debug)]
struct Enabled {
    tracer: SdkTracer,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    propagator: TraceContextPropagator,
    instruments: Instruments,
    by_entity_type: RwLock<Vec<EntityTypeInstruments>>,
}

/// The service's telemetry handle; see the module docs.
#[derive(Debug)]
pub struct Telemetry {
    /// Span export counters, shown on `/metrics` even when telemetry is off.
    pub stats: Arc<ExportStats>,
    inner: Option<Enabled>,
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(k, v);
        }
    }
}

impl Telemetry {
    /// Telemetry switched off: every helper is a no-op.
    pub fn disabled() -> Self {
        Self { stats: Arc::new(ExportStats::default()), inner: None }
    }

    /// Builds exporters and providers from the standard `OTEL_*` variables.
    /// Must run inside a tokio runtime (export tasks are spawned on it).
    /// Nothing here connects: exporters connect lazily, so a collector that
    /// is down does not stop the service from starting.
    pub fn from_env() -> Result<Self, TelemetryError> {
        let env = |k: &str| std::env::var(k).ok();
        let protocol = parse_protocol(env("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref())?;
        let mut resource = Resource::builder();
        if needs_default_service_name(env("OTEL_SERVICE_NAME").as_deref(), env("OTEL_RESOURCE_ATTRIBUTES").as_deref()) {
            resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
        }
        let resource = resource.build();

        let mut span_exporter = match protocol {
            // No retries inside the span exporter: the batch processor has
            // its own backoff and counts a failed batch instead of retrying
            // it. The exporter's retry loop (3 retries, ~1 s of sleeps per
            // batch) would only keep the export task stuck while the
            // collector is down, so the queue fills and every span ending
            // on a request thread is dropped there.
            OtlpProtocol::Grpc => {
                SpanExporter::builder().with_tonic().with_retry_policy(RetryPolicy::disabled()).build()
            }
            OtlpProtocol::HttpProtobuf => SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_retry_policy(RetryPolicy::disabled())
                .build(),
        }
        .map_err(|source| TelemetryError::Exporter { signal: "traces", source })?;
        // The processor owns the exporter from here on, so hand it the
        // resource now rather than through the provider.
        opentelemetry_sdk::trace::SpanExporter::set_resource(&mut span_exporter, &resource);
        let stats = Arc::new(ExportStats::default());
        let settings = BatchSettings::from_lookup(env);
        let processor = BoundedBatchProcessor::spawn(span_exporter, settings, stats.clone());
        // The SDK's default config holds the sampler from OTEL_TRACES_SAMPLER
        // (+ _ARG); wrap it so nothing is recorded while export backs off.
        let sampler = BackoffSampler::new(opentelemetry_sdk::trace::Config::default().sampler, stats.clone());
        let tracer_provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_span_processor(processor)
            .with_resource(resource.clone())
            .build();
        let tracer = tracer_provider.tracer("reviews-service");

        let metric_exporter = match protocol {
            OtlpProtocol::Grpc => MetricExporter::builder().with_tonic().build(),
            OtlpProtocol::HttpProtobuf => {
                MetricExporter::builder().with_http().with_protocol(Protocol::HttpBinary).build()
            }
        }
        .map_err(|source| TelemetryError::Exporter { signal: "metrics", source })?;
        // The tokio-driven reader: export never runs on a request thread and
        // OTEL_METRIC_EXPORT_INTERVAL / _TIMEOUT are honoured by the builder.
        let reader = PeriodicReader::builder(metric_exporter, opentelemetry_sdk::runtime::Tokio).build();
        let meter_provider = SdkMeterProvider::builder().with_reader(reader).with_resource(resource).build();
        let instruments = Instruments::new(&meter_provider.meter("reviews-service"));
        Ok(Self {
            stats,
            inner: Some(Enabled {
                tracer,
                tracer_provider,
                meter_provider,
                propagator: TraceContextPropagator::new(),
                instruments,
                by_entity_type: RwLock::new(Vec::new()),
            }),
        })
    }

    /// Whether telemetry is on.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The tracer, when on.
    pub fn tracer(&self) -> Option<&SdkTracer> {
        self.inner.as_ref().map(|e| &e.tracer)
    }

    /// The custom instruments, when on.
    pub fn instruments(&self) -> Option<&Instruments> {
        self.inner.as_ref().map(|e| &e.instruments)
    }

    /// Records a stored review: its rating in `reviews.rating` and, when
    /// `created`, one `reviews.created`, both by entity type.
    pub fn record_review(&self, entity_type: &str, rating: u64, created: bool) {
        let Some(e) = &self.inner else { return };
        let record = |b: &EntityTypeInstruments| {
            if created {
                b.created.add(1);
            }
            b.rating.record(rating);
        };
        {
            let bound = e.by_entity_type.read().unwrap_or_else(|p| p.into_inner());
            if let Some(b) = bound.iter().find(|b| &*b.entity_type == entity_type) {
                return record(b);
            }
        }
        let mut bound = e.by_entity_type.write().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = bound.iter().find(|b| &*b.entity_type == entity_type) {
            return record(b);
        }
        let attrs = [KeyValue::new("entity_type", entity_type.to_owned())];
        if bound.len() >= MAX_BOUND_ENTITY_TYPES {
            drop(bound);
            if created {
                e.instruments.created.add(1, &attrs);
            }
            return e.instruments.rating.record(rating, &attrs);
        }
        let b = EntityTypeInstruments {
            entity_type: entity_type.into(),
            created: e.instruments.created.bind(&attrs),
            rating: e.instruments.rating.bind(&attrs),
        };
        record(&b);
        bound.push(b);
    }

    /// Parent context from an incoming request's `traceparent`.
    pub fn extract(&self, headers: &HeaderMap) -> Context {
        match &self.inner {
            // Without `traceparent` there is nothing to extract (`tracestate`
            // alone is ignored by the spec), so skip the propagator's header
            // scan: the result would be the current context anyway.
            Some(e) if headers.contains_key(&TRACEPARENT) => e.propagator.extract(&HeaderExtractor(headers)),
            Some(_) => Context::current(),
            None => Context::new(),
        }
    }

    /// Writes `traceparent` for `cx` into outgoing headers.
    pub fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        if let Some(e) = &self.inner {
            e.propagator.inject_context(cx, &mut HeaderInjector(headers));
        }
    }

    /// Starts a child of the current context's span; `None` when off.
    /// The span ends when dropped.
    pub fn child_span(
        &self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        kind: SpanKind,
        attrs: Vec<KeyValue>,
    ) -> Option<Span> {
        let tracer = self.tracer()?;
        let cx = Context::current();
        // No point recording children of a request we are not tracing.
        if !cx.has_active_span() {
            return None;
        }
        Some(tracer.span_builder(name).with_kind(kind).with_attributes(attrs).start_with_context(tracer, &cx))
    }

    /// Flushes and stops exporters. Blocking: call from a blocking thread.
    /// Bounded by `timeout` per signal so a dead collector cannot hang exit.
    pub fn shutdown(&self, timeout: Duration) {
        if let Some(e) = &self.inner {
            if let Err(err) = e.tracer_provider.shutdown_with_timeout(timeout) {
                tracing::warn!(error = %err, "trace provider shutdown");
            }
            if let Err(err) = e.meter_provider.shutdown_with_timeout(timeout) {
                tracing::warn!(error = %err, "meter provider shutdown");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_parsing() {
        assert_eq!(parse_protocol(None).ok(), Some(OtlpProtocol::Grpc));
        assert_eq!(parse_protocol(Some("http/protobuf")).ok(), Some(OtlpProtocol::HttpProtobuf));
        let err = parse_protocol(Some("http/json")).expect_err("must fail").to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{err}");
    }

    #[test]
    fn service_name_default_only_when_unnamed() {
        assert!(needs_default_service_name(None, None));
        assert!(!needs_default_service_name(Some("x"), None));
        assert!(!needs_default_service_name(None, Some("a=b, service.name=y")));
        assert!(needs_default_service_name(Some(" "), Some("a=b")));
    }

    #[test]
    fn disabled_is_inert() {
        let t = Telemetry::disabled();
        assert!(!t.enabled());
        assert!(t.child_span("x", SpanKind::Internal, vec![]).is_none());
        let mut h = HeaderMap::new();
        t.inject(&Context::current(), &mut h);
        assert!(h.is_empty());
    }
}
