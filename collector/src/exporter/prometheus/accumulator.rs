//! Pure state of the `prometheus` exporter: the latest value of every series, built from OTLP
//! metric requests. Cumulative points replace older ones; delta sums and delta histograms are
//! accumulated into cumulative values; what cannot be expressed in Prometheus (exponential
//! histograms, unspecified temporality, out-of-order points, type conflicts) is dropped and counted.
//! Memory is bounded: series expire after `expiration` and at most `max_series` are kept.
//!
//! A point finds its series by its raw inputs ([`SeriesKeys`]): the labels of a series (every
//! attribute name sanitised, every value rendered, merged with scope, resource and const labels)
//! are built once, when the series is new. Requests are read decoded ([`Accumulator::ingest`]) or
//! as received ([`Accumulator::ingest_encoded`]: fields read in place, no data point decoded),
//! with the same result.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint, metric::Data, number_data_point::Value as NV,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use super::naming::{self, OtelShape, label_name, metric_name, value_string};
use crate::pdata::edit::fields::{Fields, LEN, Unsupported, put_varint};

/// Label pairs sorted by name (the identity of a series within a family).
pub type Labels = Vec<(String, String)>;

/// Default cap on stored series (plus `target_info` series). At roughly 0.5 KiB per series this
/// bounds the exporter's state to tens of MiB; new series beyond it are refused and counted.
pub const DEFAULT_MAX_SERIES: usize = 100_000;

/// OTLP `AggregationTemporality` values.
const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;
/// `DataPointFlags.NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

/// Prometheus metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    /// Monotonic cumulative value (name ends in `_total`).
    Counter,
    /// Any value that can go up and down.
    Gauge,
    /// Explicit buckets with sum and count.
    Histogram,
    /// Quantiles with sum and count.
    Summary,
}

/// The latest value of one series.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesValue {
    /// Counter or gauge value.
    Number(f64),
    /// Histogram: `counts[i]` is the (non-cumulative) count of bucket `i`; `counts.len() == bounds.len() + 1`
    /// unless the point carried no buckets (then `counts` is empty).
    Histogram {
        /// Upper bounds of the finite buckets.
        bounds: Vec<f64>,
        /// Per-bucket counts.
        counts: Vec<u64>,
        /// Sum of observations.
        sum: f64,
        /// Number of observations.
        count: u64,
    },
    /// Summary: (quantile, value) pairs.
    Summary {
        /// Quantile values.
        quantiles: Vec<(f64, f64)>,
        /// Sum of observations.
        sum: f64,
        /// Number of observations.
        count: u64,
    },
}

/// One stored series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Latest (cumulative) value.
    pub value: SeriesValue,
    /// The data point's timestamp (ns since epoch; 0 when unknown).
    pub time_unix_nano: u64,
    /// When the series was last written (drives expiration).
    pub updated: Instant,
}

/// One metric family: a name, a type, a help text and its series.
#[derive(Debug, Clone)]
pub struct Family {
    /// Prometheus type.
    pub ty: FamilyType,
    /// HELP text (the OTel description, or the OTel name when empty).
    pub help: String,
    /// Series by label set.
    pub series: BTreeMap<Labels, Series>,
}

/// Exporter options that shape names and labels.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Prefix for metric names.
    pub namespace: Option<String>,
    /// Labels added to every series (already sanitised names).
    pub const_labels: Vec<(String, String)>,
    /// Copy all resource attributes onto every series.
    pub resource_to_telemetry: bool,
    /// Unit/type suffixes (`add_metric_suffixes`).
    pub add_metric_suffixes: bool,
    /// Series not written for this long are dropped.
    pub expiration: Duration,
    /// Maximum number of stored series (including `target_info`).
    pub max_series: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespace: None,
            const_labels: Vec::new(),
            resource_to_telemetry: false,
            add_metric_suffixes: true,
            expiration: Duration::from_secs(300),
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

/// What happened to the data points of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Points stored (new or updated series).
    pub stored: usize,
    /// Points that cannot be expressed in Prometheus and were dropped.
    pub unsupported: usize,
    /// Points for new series refused because the series cap was reached.
    pub refused: usize,
}

impl std::ops::AddAssign for IngestOutcome {
    fn add_assign(&mut self, o: Self) {
        self.stored += o.stored;
        self.unsupported += o.unsupported;
        self.refused += o.refused;
    }
}

/// The exporter's state.
#[derive(Debug)]
pub struct Accumulator {
    settings: Settings,
    families: BTreeMap<String, Family>,
    /// `target_info` series (job/instance plus resource attributes) and when they were last seen.
    targets: BTreeMap<Labels, Instant>,
    series: usize,
    keys: SeriesKeys,
}

enum Upsert {
    Stored,
    Unsupported,
    Refused,
}

/// The label sets of points already seen, by their raw inputs: the id of the point's scope
/// context (the labels every point of a scope shares) followed by the point's attributes as
/// length-prefixed `KeyValue` encodings. A hit costs a copy of the attribute bytes and a hash
/// instead of sanitising and rendering every label. Keys are exact (no hash stands for a series),
/// and a context id is never reused, so a stale entry can only name the labels it was built for.
/// Bounded: emptied when it outgrows twice the series cap, and when series expire. An entry holds
/// about what its label set holds, once per distinct (scope, attributes) pair, which metrics share:
/// at most the series' own size again, usually much less.
#[derive(Debug, Default)]
struct SeriesKeys {
    /// Scope context (scope labels, job/instance) → id.
    contexts: HashMap<(Labels, Labels), u64>,
    last_context: u64,
    labels: HashMap<Box<[u8]>, Arc<Labels>>,
    /// The key being looked up (kept for its allocation).
    scratch: Vec<u8>,
}

impl SeriesKeys {
    fn clear(&mut self) {
        self.contexts.clear();
        self.labels.clear();
    }
}

/// What every point of one scope shares: its scope/resource labels, job and instance, and the id
/// its series keys start with.
struct ScopeCtx {
    labels: Labels,
    ids: Labels,
    id: u64,
}

/// A point's attributes as received: decoded, or the contents of its encoded `KeyValue` fields.
#[derive(Clone, Copy)]
enum Attrs<'p> {
    Decoded(&'p [KeyValue]),
    Encoded(&'p [&'p [u8]]),
}

/// How a metric's points are stored (its data type and what the points of that type share).
#[derive(Debug, Clone, Copy)]
enum MetricKind {
    Gauge,
    Sum { monotonic: bool, temporality: i32 },
    Histogram { temporality: i32 },
    Summary,
}

/// The family a metric's points go to.
struct FamilyIn {
    name: String,
    ty: FamilyType,
    help: String,
    kind: MetricKind,
}

/// One data point's value, read from either form.
enum PointValue {
    Number(Option<f64>),
    Histogram { bounds: Vec<f64>, counts: Vec<u64>, sum: Option<f64>, count: u64 },
    Summary { quantiles: Vec<(f64, f64)>, sum: f64, count: u64 },
}

/// One data point: attributes, timestamp, flags and value.
struct PointIn<'p> {
    attrs: Attrs<'p>,
    time_unix_nano: u64,
    flags: u32,
    value: PointValue,
}

/// Attributes → sanitised labels. Keys that collide after sanitising get their values joined
/// with `;` in order of the original keys, as upstream does.
fn attr_labels(attrs: &[KeyValue], out: &mut BTreeMap<String, String>) {
    out.extend(attr_label_list(attrs));
}

/// [`attr_labels`] as a list sorted by label name (what the per-point path wants: no map).
fn attr_label_list(attrs: &[KeyValue]) -> Vec<(String, String)> {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut named: Vec<(String, String)> = sorted
        .into_iter()
        .filter_map(|kv| {
            let name = label_name(&kv.key);
            (!name.is_empty()).then(|| (name, value_string(kv.value.as_ref())))
        })
        .collect();
    // Stable: names that collide keep the order of their original keys.
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, String)> = Vec::with_capacity(named.len());
    for (name, value) in named {
        match out.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(';');
                joined.push_str(&value);
            }
            _ => out.push((name, value)),
        }
    }
    out
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| value_string(kv.value.as_ref())).filter(|s| !s.is_empty())
}

/// Upstream's job label: `service.namespace/service.name`, or `service.name`.
fn job_of(attrs: &[KeyValue]) -> Option<String> {
    let name = attr(attrs, "service.name").unwrap_or_default();
    let job = match attr(attrs, "service.namespace") {
        Some(ns) => format!("{ns}/{name}"),
        None => name,
    };
    Some(job).filter(|j| !j.is_empty())
}

fn number(p: &NumberDataPoint) -> Option<f64> {
    match p.value? {
        NV::AsDouble(d) => Some(d),
        NV::AsInt(i) => Some(i as f64),
    }
}

impl Accumulator {
    /// An empty state.
    pub fn new(settings: Settings) -> Self {
        Self { settings, families: BTreeMap::new(), targets: BTreeMap::new(), series: 0, keys: SeriesKeys::default() }
    }

    /// Families by name.
    pub fn families(&self) -> &BTreeMap<String, Family> {
        &self.families
    }

    /// The `target_info` family name (namespaced like every other family).
    pub fn target_info_name(&self) -> String {
        match self.settings.namespace.as_deref().map(naming::clean).filter(|n| !n.is_empty()) {
            Some(ns) => format!("{ns}_target_info"),
            None => "target_info".into(),
        }
    }

    /// `target_info` label sets.
    pub fn targets(&self) -> impl Iterator<Item = &Labels> {
        self.targets.keys()
    }

    /// Number of stored series (including `target_info`).
    pub fn series_count(&self) -> usize {
        self.series
    }

    /// Drops series (and `target_info` entries) not written within the expiration.
    pub fn expire(&mut self, now: Instant) {
        let exp = self.settings.expiration;
        let fresh = |t: Instant| now.saturating_duration_since(t) <= exp;
        let mut removed = 0;
        for f in self.families.values_mut() {
            let before = f.series.len();
            f.series.retain(|_, s| fresh(s.updated));
            removed += before - f.series.len();
        }
        self.families.retain(|_, f| !f.series.is_empty());
        let before = self.targets.len();
        self.targets.retain(|_, t| fresh(*t));
        removed += before - self.targets.len();
        self.series -= removed;
        if removed > 0 {
            // Label sets of gone series would otherwise stay cached for good.
            self.keys.clear();
        }
    }

    /// Folds one OTLP request into the state.
    pub fn ingest(&mut self, req: &ExportMetricsServiceRequest, now: Instant) -> IngestOutcome {
        let mut out = IngestOutcome::default();
        for rm in &req.resource_metrics {
            let rattrs: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
            let (base, ids) = self.resource_ctx(rattrs, now);
            for sm in &rm.scope_metrics {
                let scope = self.scope_ctx(&base, sm.scope.as_ref(), &sm.schema_url, ids.clone());
                for m in &sm.metrics {
                    self.ingest_metric(m, &scope, now, &mut out);
                }
            }
        }
        out
    }

    /// Folds one encoded `ExportMetricsServiceRequest` into the state, with the same result as
    /// [`ingest`](Self::ingest) of the decoded request. Fields are read in place: resources and
    /// scopes are decoded (once each), data points are not, and a point's attributes only when
    /// they make a new series. `Unsupported` if the bytes do not frame, which validation on
    /// receipt rules out (the points before the fault are then already folded in).
    pub fn ingest_encoded(&mut self, req: &[u8], now: Instant) -> Result<IngestOutcome, Unsupported> {
        let mut out = IngestOutcome::default();
        for f in Fields::new(req) {
            let f = f?;
            if (f.tag, f.wire_type) == (1, LEN) {
                self.resource_metrics_encoded(f.payload, now, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Job/instance (noting the `target_info` series) and, with `resource_to_telemetry`, the
    /// resource labels of one resource.
    fn resource_ctx(&mut self, rattrs: &[KeyValue], now: Instant) -> (BTreeMap<String, String>, Labels) {
        let job = job_of(rattrs);
        let instance = attr(rattrs, "service.instance.id");
        let mut base = BTreeMap::new();
        if self.settings.resource_to_telemetry {
            attr_labels(rattrs, &mut base);
        }
        let mut ids: Labels = Vec::new();
        if let Some(j) = job {
            ids.push(("job".into(), j));
        }
        if let Some(i) = instance {
            ids.push(("instance".into(), i));
        }
        self.note_target(rattrs, &ids, now);
        (base, ids)
    }

    /// The labels every point of one scope shares.
    fn scope_ctx(
        &mut self,
        base: &BTreeMap<String, String>,
        scope: Option<&InstrumentationScope>,
        schema_url: &str,
        ids: Labels,
    ) -> ScopeCtx {
        let mut scope_labels = base.clone();
        // Scope identity and attributes become `otel_scope_*` labels, as upstream does
        // (empty values are left out: Prometheus treats them as absent anyway).
        if let Some(s) = scope {
            let prefixed: Vec<KeyValue> = s
                .attributes
                .iter()
                .map(|kv| KeyValue { key: format!("otel_scope_{}", kv.key), ..kv.clone() })
                .collect();
            attr_labels(&prefixed, &mut scope_labels);
            scope_labels.insert("otel_scope_name".into(), s.name.clone());
            scope_labels.insert("otel_scope_version".into(), s.version.clone());
        }
        scope_labels.insert("otel_scope_schema_url".into(), schema_url.to_owned());
        let labels: Labels = scope_labels.into_iter().collect();
        let keys = &mut self.keys;
        if keys.contexts.len() >= self.settings.max_series.max(1024) {
            keys.clear();
        }
        let last = &mut keys.last_context;
        let id = *keys.contexts.entry((labels.clone(), ids.clone())).or_insert_with(|| {
            *last += 1;
            *last
        });
        ScopeCtx { labels, ids, id }
    }

    fn note_target(&mut self, rattrs: &[KeyValue], ids: &[(String, String)], now: Instant) {
        const SERVICE: [&str; 3] = ["service.name", "service.namespace", "service.instance.id"];
        // Like upstream: one target_info per resource that has a job or instance.
        if ids.is_empty() {
            return;
        }
        let rest: Vec<KeyValue> = rattrs.iter().filter(|kv| !SERVICE.contains(&kv.key.as_str())).cloned().collect();
        let mut labels = BTreeMap::new();
        attr_labels(&rest, &mut labels);
        labels.extend(ids.iter().cloned());
        let labels: Labels = labels.into_iter().collect();
        if let Some(t) = self.targets.get_mut(&labels) {
            *t = now;
        } else if self.series < self.settings.max_series {
            self.targets.insert(labels, now);
            self.series += 1;
        }
    }

    /// One point's labels: the scope's, then the point's attributes, then job and instance, then
    /// the const labels, each overriding the ones before on equal names; empty values left out;
    /// sorted by name. Built as one sorted list.
    fn labels_for(&self, scope: &[(String, String)], attrs: &[KeyValue], ids: &[(String, String)]) -> Labels {
        let consts = &self.settings.const_labels;
        let mut l: Vec<(u8, String, String)> = Vec::with_capacity(scope.len() + attrs.len() + ids.len() + consts.len());
        l.extend(scope.iter().map(|(k, v)| (0, k.clone(), v.clone())));
        l.extend(attr_label_list(attrs).into_iter().map(|(k, v)| (1, k, v)));
        l.extend(ids.iter().map(|(k, v)| (2, k.clone(), v.clone())));
        l.extend(consts.iter().map(|(k, v)| (3, k.clone(), v.clone())));
        // By name, the highest precedence first; then keep the first of each name.
        l.sort_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
        l.dedup_by(|later, kept| later.1 == kept.1);
        l.into_iter().filter(|(_, _, v)| !v.is_empty()).map(|(_, k, v)| (k, v)).collect()
    }

    /// A point's labels: looked up by its raw inputs, built only the first time (see
    /// [`SeriesKeys`]).
    fn series_labels(&mut self, scope: &ScopeCtx, attrs: Attrs<'_>) -> Arc<Labels> {
        let mut key = std::mem::take(&mut self.keys.scratch);
        key.clear();
        key.extend_from_slice(&scope.id.to_le_bytes());
        match attrs {
            Attrs::Decoded(kvs) => {
                for kv in kvs {
                    // A Vec grows as needed: encoding into it cannot fail.
                    let _ = kv.encode_length_delimited(&mut key);
                }
            }
            Attrs::Encoded(fields) => {
                for kv in fields {
                    put_varint(&mut key, kv.len() as u64);
                    key.extend_from_slice(kv);
                }
            }
        }
        let labels = match self.keys.labels.get(key.as_slice()) {
            Some(labels) => labels.clone(),
            None => {
                let decoded: Vec<KeyValue>;
                let kvs = match attrs {
                    Attrs::Decoded(kvs) => kvs,
                    Attrs::Encoded(fields) => {
                        // Validated on receipt, so each decodes.
                        decoded = fields.iter().map(|kv| KeyValue::decode(*kv).unwrap_or_default()).collect();
                        &decoded
                    }
                };
                let labels = Arc::new(self.labels_for(&scope.labels, kvs, &scope.ids));
                if self.keys.labels.len() >= 2 * self.settings.max_series.max(1024) {
                    self.keys.labels.clear();
                }
                self.keys.labels.insert(key.as_slice().into(), labels.clone());
                labels
            }
        };
        self.keys.scratch = key;
        labels
    }

    /// The family of a metric of `kind`.
    fn family_in(&self, name: &str, unit: &str, description: &str, kind: MetricKind) -> FamilyIn {
        let (shape, ty) = match kind {
            MetricKind::Gauge => (OtelShape::Gauge, FamilyType::Gauge),
            MetricKind::Sum { monotonic: true, .. } => (OtelShape::MonotonicSum, FamilyType::Counter),
            MetricKind::Sum { monotonic: false, .. } => (OtelShape::NonMonotonicSum, FamilyType::Gauge),
            MetricKind::Histogram { .. } => (OtelShape::Histogram, FamilyType::Histogram),
            MetricKind::Summary => (OtelShape::Summary, FamilyType::Summary),
        };
        let s = &self.settings;
        FamilyIn {
            name: metric_name(name, unit, shape, s.namespace.as_deref(), s.add_metric_suffixes),
            ty,
            help: if description.is_empty() { name } else { description }.to_owned(),
            kind,
        }
    }

    fn ingest_metric(&mut self, m: &Metric, scope: &ScopeCtx, now: Instant, out: &mut IngestOutcome) {
        let family = |acc: &Self, kind| acc.family_in(&m.name, &m.unit, &m.description, kind);
        match &m.data {
            None => {}
            Some(Data::Gauge(g)) => {
                let fam = family(self, MetricKind::Gauge);
                for p in &g.data_points {
                    self.ingest_point(&fam, scope, number_point(p), now, out);
                }
            }
            Some(Data::Sum(s)) => {
                let kind = MetricKind::Sum { monotonic: s.is_monotonic, temporality: s.aggregation_temporality };
                let fam = family(self, kind);
                for p in &s.data_points {
                    self.ingest_point(&fam, scope, number_point(p), now, out);
                }
            }
            Some(Data::Histogram(h)) => {
                let fam = family(self, MetricKind::Histogram { temporality: h.aggregation_temporality });
                for p in &h.data_points {
                    self.ingest_point(&fam, scope, histogram_point(p), now, out);
                }
            }
            Some(Data::Summary(s)) => {
                let fam = family(self, MetricKind::Summary);
                for p in &s.data_points {
                    self.ingest_point(&fam, scope, summary_point(p), now, out);
                }
            }
            // The text exposition format has no native histograms.
            Some(Data::ExponentialHistogram(h)) => out.unsupported += h.data_points.len(),
        }
    }

    /// One point into its family: what the point's type and temporality allow.
    fn ingest_point(
        &mut self,
        fam: &FamilyIn,
        scope: &ScopeCtx,
        p: PointIn<'_>,
        now: Instant,
        out: &mut IngestOutcome,
    ) {
        let recorded = p.flags & NO_RECORDED_VALUE == 0;
        let (time, attrs) = (p.time_unix_nano, p.attrs);
        let upsert =
            |acc: &mut Self, delta: bool, merge: &mut dyn FnMut(Option<&SeriesValue>) -> Option<SeriesValue>| {
                acc.upsert(fam, scope, attrs, time, delta, now, merge)
            };
        let r = match (fam.kind, p.value) {
            (MetricKind::Gauge, PointValue::Number(v)) => match v.filter(|_| recorded) {
                None => Upsert::Unsupported,
                Some(v) => upsert(self, false, &mut |_| Some(SeriesValue::Number(v))),
            },
            (MetricKind::Sum { temporality, .. }, PointValue::Number(v)) => match (v.filter(|_| recorded), temporality)
            {
                (Some(v), CUMULATIVE) => upsert(self, false, &mut |_| Some(SeriesValue::Number(v))),
                (Some(v), DELTA) => upsert(self, true, &mut |prev| match prev {
                    None => Some(SeriesValue::Number(v)),
                    Some(SeriesValue::Number(old)) => Some(SeriesValue::Number(old + v)),
                    Some(_) => None,
                }),
                _ => Upsert::Unsupported,
            },
            (MetricKind::Histogram { temporality }, PointValue::Histogram { bounds, counts, sum, count }) => {
                let valid = recorded && (counts.is_empty() || counts.len() == bounds.len() + 1);
                let mut new = Some(SeriesValue::Histogram {
                    bounds: if counts.is_empty() { Vec::new() } else { bounds },
                    counts,
                    sum: sum.unwrap_or(0.0),
                    count,
                });
                match (valid, temporality) {
                    (true, CUMULATIVE) => upsert(self, false, &mut |_| new.take()),
                    (true, DELTA) => upsert(self, true, &mut |prev| new.take().map(|new| add_histograms(prev, new))),
                    _ => Upsert::Unsupported,
                }
            }
            (MetricKind::Summary, PointValue::Summary { quantiles, sum, count }) => {
                let mut new = Some(SeriesValue::Summary { quantiles, sum, count });
                if recorded { upsert(self, false, &mut |_| new.take()) } else { Upsert::Unsupported }
            }
            // Each reader pairs a kind with its own value type.
            _ => Upsert::Unsupported,
        };
        match r {
            Upsert::Stored => out.stored += 1,
            Upsert::Unsupported => out.unsupported += 1,
            Upsert::Refused => out.refused += 1,
        }
    }

    /// Writes one point. `merge` gets the previous value (if the series exists) and returns the new
    /// one, or `None` when the point cannot be merged. Points older than the stored one are dropped.
    #[allow(clippy::too_many_arguments)]
    fn upsert(
        &mut self,
        fam: &FamilyIn,
        scope: &ScopeCtx,
        attrs: Attrs<'_>,
        time_unix_nano: u64,
        delta: bool,
        now: Instant,
        merge: &mut dyn FnMut(Option<&SeriesValue>) -> Option<SeriesValue>,
    ) -> Upsert {
        if fam.name.is_empty() {
            return Upsert::Unsupported;
        }
        let labels = self.series_labels(scope, attrs);
        let at_cap = self.series >= self.settings.max_series;
        let family = match self.families.get_mut(&fam.name) {
            Some(f) if f.ty != fam.ty => return Upsert::Unsupported,
            Some(f) => f,
            None if at_cap => return Upsert::Refused,
            None => self.families.entry(fam.name.clone()).or_insert_with(|| Family {
                ty: fam.ty,
                help: fam.help.clone(),
                series: BTreeMap::new(),
            }),
        };
        if let Some(s) = family.series.get_mut(labels.as_ref()) {
            // Out-of-order (or, for deltas, repeated) points would corrupt the cumulative value.
            let known = s.time_unix_nano != 0 && time_unix_nano != 0;
            if known && (time_unix_nano < s.time_unix_nano || (delta && time_unix_nano == s.time_unix_nano)) {
                return Upsert::Unsupported;
            }
            match merge(Some(&s.value)) {
                Some(v) => {
                    s.value = v;
                    s.time_unix_nano = time_unix_nano;
                    s.updated = now;
                    Upsert::Stored
                }
                None => Upsert::Unsupported,
            }
        } else if at_cap {
            Upsert::Refused
        } else {
            match merge(None) {
                Some(value) => {
                    family.series.insert(Labels::clone(&labels), Series { value, time_unix_nano, updated: now });
                    self.series += 1;
                    Upsert::Stored
                }
                None => Upsert::Unsupported,
            }
        }
    }

    // The encoded reader: the decoded structs' fields, read in place. Repeated occurrences of a
    // singular field are resolved as decoding resolves them (the last wins; messages merge).

    /// One `ResourceMetrics`.
    fn resource_metrics_encoded(
        &mut self,
        rm: &[u8],
        now: Instant,
        out: &mut IngestOutcome,
    ) -> Result<(), Unsupported> {
        // Several `resource` fields decode as one merged resource: their concatenation.
        let mut resource = Vec::new();
        for f in Fields::new(rm) {
            let f = f?;
            if (f.tag, f.wire_type) == (1, LEN) {
                resource.extend_from_slice(f.payload);
            }
        }
        let resource = Resource::decode(resource.as_slice()).map_err(|_| Unsupported)?;
        let (base, ids) = self.resource_ctx(&resource.attributes, now);
        for f in Fields::new(rm) {
            let f = f?;
            if (f.tag, f.wire_type) == (2, LEN) {
                self.scope_metrics_encoded(f.payload, &base, &ids, now, out)?;
            }
        }
        Ok(())
    }

    /// One `ScopeMetrics`.
    fn scope_metrics_encoded(
        &mut self,
        sm: &[u8],
        base: &BTreeMap<String, String>,
        ids: &Labels,
        now: Instant,
        out: &mut IngestOutcome,
    ) -> Result<(), Unsupported> {
        let (mut scope, mut has_scope, mut schema_url): (Vec<u8>, bool, &[u8]) = (Vec::new(), false, &[]);
        for f in Fields::new(sm) {
            let f = f?;
            match (f.tag, f.wire_type) {
                (1, LEN) => {
                    has_scope = true;
                    scope.extend_from_slice(f.payload);
                }
                (3, LEN) => schema_url = f.payload,
                _ => {}
            }
        }
        let scope = if has_scope {
            Some(InstrumentationScope::decode(scope.as_slice()).map_err(|_| Unsupported)?)
        } else {
            None
        };
        let schema_url = std::str::from_utf8(schema_url).map_err(|_| Unsupported)?;
        let ctx = self.scope_ctx(base, scope.as_ref(), schema_url, ids.clone());
        for f in Fields::new(sm) {
            let f = f?;
            if (f.tag, f.wire_type) == (2, LEN) {
                self.metric_encoded(f.payload, &ctx, now, out)?;
            }
        }
        Ok(())
    }

    /// One `Metric`: its data is the last run of data fields of one type (a field of another type
    /// replaces what came before; fields of the same type merge).
    fn metric_encoded(
        &mut self,
        m: &[u8],
        scope: &ScopeCtx,
        now: Instant,
        out: &mut IngestOutcome,
    ) -> Result<(), Unsupported> {
        let (mut name, mut description, mut unit): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
        let (mut data_type, mut run_start) = (0, 0);
        for f in Fields::new(m) {
            let f = f?;
            match (f.tag, f.wire_type) {
                (1, LEN) => name = f.payload,
                (2, LEN) => description = f.payload,
                (3, LEN) => unit = f.payload,
                (GAUGE | SUM | HISTOGRAM | EXP_HISTOGRAM | SUMMARY, LEN) if f.tag != data_type => {
                    data_type = f.tag;
                    run_start = f.span.start;
                }
                _ => {}
            }
        }
        let run = &m[run_start..];
        // The data messages of the run, in order.
        let containers = || Fields::new(run).filter(move |f| f.as_ref().map_or(true, |f| f.tag == data_type));
        let (mut temporality, mut monotonic, mut points) = (0, false, 0);
        for c in containers() {
            for f in Fields::new(c?.payload) {
                let f = f?;
                match (f.tag, f.wire_type) {
                    (1, LEN) => points += 1,
                    (2, 0) => temporality = f.value as i32,
                    (3, 0) if data_type == SUM => monotonic = f.value != 0,
                    _ => {}
                }
            }
        }
        let kind = match data_type {
            GAUGE => MetricKind::Gauge,
            SUM => MetricKind::Sum { monotonic, temporality },
            HISTOGRAM => MetricKind::Histogram { temporality },
            SUMMARY => MetricKind::Summary,
            EXP_HISTOGRAM => {
                out.unsupported += points;
                return Ok(());
            }
            _ => return Ok(()),
        };
        let text = |b| std::str::from_utf8(b).map_err(|_| Unsupported);
        let fam = self.family_in(text(name)?, text(unit)?, text(description)?, kind);
        let mut attrs: Vec<&[u8]> = Vec::new();
        for c in containers() {
            for f in Fields::new(c?.payload) {
                let f = f?;
                if (f.tag, f.wire_type) != (1, LEN) {
                    continue;
                }
                attrs.clear();
                let (time_unix_nano, flags, value) = match kind {
                    MetricKind::Gauge | MetricKind::Sum { .. } => number_point_encoded(f.payload, &mut attrs)?,
                    MetricKind::Histogram { .. } => histogram_point_encoded(f.payload, &mut attrs)?,
                    MetricKind::Summary => summary_point_encoded(f.payload, &mut attrs)?,
                };
                let point = PointIn { attrs: Attrs::Encoded(&attrs), time_unix_nano, flags, value };
                self.ingest_point(&fam, scope, point, now, out);
            }
        }
        Ok(())
    }
}

/// `Metric` data fields.
const GAUGE: u32 = 5;
const SUM: u32 = 7;
const HISTOGRAM: u32 = 9;
const EXP_HISTOGRAM: u32 = 10;
const SUMMARY: u32 = 11;

/// A decoded `NumberDataPoint`.
fn number_point(p: &NumberDataPoint) -> PointIn<'_> {
    PointIn {
        attrs: Attrs::Decoded(&p.attributes),
        time_unix_nano: p.time_unix_nano,
        flags: p.flags,
        value: PointValue::Number(number(p)),
    }
}

/// A decoded `HistogramDataPoint`.
fn histogram_point(p: &HistogramDataPoint) -> PointIn<'_> {
    PointIn {
        attrs: Attrs::Decoded(&p.attributes),
        time_unix_nano: p.time_unix_nano,
        flags: p.flags,
        value: PointValue::Histogram {
            bounds: p.explicit_bounds.clone(),
            counts: p.bucket_counts.clone(),
            sum: p.sum,
            count: p.count,
        },
    }
}

/// A decoded `SummaryDataPoint`.
fn summary_point(p: &SummaryDataPoint) -> PointIn<'_> {
    PointIn {
        attrs: Attrs::Decoded(&p.attributes),
        time_unix_nano: p.time_unix_nano,
        flags: p.flags,
        value: PointValue::Summary {
            quantiles: p.quantile_values.iter().map(|q| (q.quantile, q.value)).collect(),
            sum: p.sum,
            count: p.count,
        },
    }
}

/// An encoded `NumberDataPoint`: (time, flags, value); attribute fields go to `attrs`.
fn number_point_encoded<'p>(p: &'p [u8], attrs: &mut Vec<&'p [u8]>) -> Result<(u64, u32, PointValue), Unsupported> {
    let (mut time, mut flags, mut value) = (0, 0, None);
    for f in Fields::new(p) {
        let f = f?;
        match (f.tag, f.wire_type) {
            (3, 1) => time = f.value,
            (4, 1) => value = Some(f64::from_bits(f.value)),
            (6, 1) => value = Some(f.value as i64 as f64),
            (7, LEN) => attrs.push(f.payload),
            (8, 0) => flags = f.value as u32,
            _ => {}
        }
    }
    Ok((time, flags, PointValue::Number(value)))
}

/// An encoded `HistogramDataPoint`.
fn histogram_point_encoded<'p>(p: &'p [u8], attrs: &mut Vec<&'p [u8]>) -> Result<(u64, u32, PointValue), Unsupported> {
    let (mut time, mut flags, mut count, mut sum) = (0, 0, 0, None);
    let (mut counts, mut bounds) = (Vec::new(), Vec::new());
    for f in Fields::new(p) {
        let f = f?;
        match (f.tag, f.wire_type) {
            (3, 1) => time = f.value,
            (4, 1) => count = f.value,
            (5, 1) => sum = Some(f64::from_bits(f.value)),
            (6, 1) => counts.push(f.value),
            (6, LEN) => counts.extend(packed_fixed64(f.payload)),
            (7, 1) => bounds.push(f64::from_bits(f.value)),
            (7, LEN) => bounds.extend(packed_fixed64(f.payload).map(f64::from_bits)),
            (9, LEN) => attrs.push(f.payload),
            (10, 0) => flags = f.value as u32,
            _ => {}
        }
    }
    Ok((time, flags, PointValue::Histogram { bounds, counts, sum, count }))
}

/// An encoded `SummaryDataPoint`.
fn summary_point_encoded<'p>(p: &'p [u8], attrs: &mut Vec<&'p [u8]>) -> Result<(u64, u32, PointValue), Unsupported> {
    let (mut time, mut flags, mut count, mut sum, mut quantiles) = (0, 0, 0, 0.0, Vec::new());
    for f in Fields::new(p) {
        let f = f?;
        match (f.tag, f.wire_type) {
            (3, 1) => time = f.value,
            (4, 1) => count = f.value,
            (5, 1) => sum = f64::from_bits(f.value),
            (6, LEN) => {
                let (mut quantile, mut value) = (0.0, 0.0);
                for q in Fields::new(f.payload) {
                    let q = q?;
                    match (q.tag, q.wire_type) {
                        (1, 1) => quantile = f64::from_bits(q.value),
                        (2, 1) => value = f64::from_bits(q.value),
                        _ => {}
                    }
                }
                quantiles.push((quantile, value));
            }
            (7, LEN) => attrs.push(f.payload),
            (8, 0) => flags = f.value as u32,
            _ => {}
        }
    }
    Ok((time, flags, PointValue::Summary { quantiles, sum, count }))
}

/// The values of a packed repeated fixed64 or double field (its length is a multiple of 8:
/// validated on receipt).
fn packed_fixed64(run: &[u8]) -> impl Iterator<Item = u64> + '_ {
    run.chunks_exact(8).map(|c| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(c);
        u64::from_le_bytes(bytes)
    })
}

/// Adds a delta histogram onto the stored cumulative one; a change of bucket layout restarts it.
/// Counts saturate at `u64::MAX` instead of wrapping (release) or panicking (debug): a sender
/// can put any count in a delta point, and a wrapped cumulative count would read as a reset.
fn add_histograms(prev: Option<&SeriesValue>, new: SeriesValue) -> SeriesValue {
    match (prev, new) {
        (
            Some(SeriesValue::Histogram { bounds: pb, counts: pc, sum: ps, count: pn }),
            SeriesValue::Histogram { bounds, counts, sum, count },
        ) if *pb == bounds && pc.len() == counts.len() => SeriesValue::Histogram {
            bounds,
            counts: pc.iter().zip(&counts).map(|(a, b)| a.saturating_add(*b)).collect(),
            sum: ps + sum,
            count: pn.saturating_add(count),
        },
        (_, new) => new,
    }
}
