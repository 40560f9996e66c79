//! Pure state of the `prometheus` exporter: the latest value of every series, built from OTLP
//! metric requests. Cumulative points replace older ones; delta sums and delta histograms are
//! accumulated into cumulative values; what cannot be expressed in Prometheus (exponential
//! histograms, unspecified temporality, out-of-order points, type conflicts) is dropped and counted.
//! Memory is bounded: series expire after `expiration` and at most `max_series` are kept.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, metric::Data, number_data_point::Value as NV};

use super::naming::{self, OtelShape, label_name, metric_name, value_string};

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

/// The exporter's state.
#[derive(Debug)]
pub struct Accumulator {
    settings: Settings,
    families: BTreeMap<String, Family>,
    /// `target_info` series (job/instance plus resource attributes) and when they were last seen.
    targets: BTreeMap<Labels, Instant>,
    series: usize,
}

enum Upsert {
    Stored,
    Unsupported,
    Refused,
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
        Self { settings, families: BTreeMap::new(), targets: BTreeMap::new(), series: 0 }
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
    }

    /// Folds one OTLP request into the state.
    pub fn ingest(&mut self, req: &ExportMetricsServiceRequest, now: Instant) -> IngestOutcome {
        let mut out = IngestOutcome::default();
        for rm in &req.resource_metrics {
            let rattrs: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
            let job = job_of(rattrs);
            let instance = attr(rattrs, "service.instance.id");
            let mut base = BTreeMap::new();
            if self.settings.resource_to_telemetry {
                attr_labels(rattrs, &mut base);
            }
            let mut ids: Vec<(String, String)> = Vec::new();
            if let Some(j) = &job {
                ids.push(("job".into(), j.clone()));
            }
            if let Some(i) = &instance {
                ids.push(("instance".into(), i.clone()));
            }
            self.note_target(rattrs, &ids, now);
            for sm in &rm.scope_metrics {
                let mut scope_labels = base.clone();
                // Scope identity and attributes become `otel_scope_*` labels, as upstream does
                // (empty values are left out: Prometheus treats them as absent anyway).
                if let Some(s) = &sm.scope {
                    let prefixed: Vec<KeyValue> = s
                        .attributes
                        .iter()
                        .map(|kv| KeyValue { key: format!("otel_scope_{}", kv.key), ..kv.clone() })
                        .collect();
                    attr_labels(&prefixed, &mut scope_labels);
                    scope_labels.insert("otel_scope_name".into(), s.name.clone());
                    scope_labels.insert("otel_scope_version".into(), s.version.clone());
                }
                scope_labels.insert("otel_scope_schema_url".into(), sm.schema_url.clone());
                let scope_labels: Labels = scope_labels.into_iter().collect();
                for m in &sm.metrics {
                    self.ingest_metric(m, &scope_labels, &ids, now, &mut out);
                }
            }
        }
        out
    }

    fn note_target(&mut self, rattrs: &[KeyValue], ids: &[(String, String)], now: Instant) {
        const SERVICE: [&str; 3] = ["service.name", "service.namespace", "service.instance.id"];
        let rest: Vec<KeyValue> = rattrs.iter().filter(|kv| !SERVICE.contains(&kv.key.as_str())).cloned().collect();
        // Like upstream: one target_info per resource that has a job or instance.
        if ids.is_empty() {
            return;
        }
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
    /// sorted by name. Built as one sorted list (this runs for every data point).
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

    fn ingest_metric(
        &mut self,
        m: &opentelemetry_proto::tonic::metrics::v1::Metric,
        scope: &[(String, String)],
        ids: &[(String, String)],
        now: Instant,
        out: &mut IngestOutcome,
    ) {
        let help = if m.description.is_empty() { m.name.clone() } else { m.description.clone() };
        let (ns, add) = (self.settings.namespace.clone(), self.settings.add_metric_suffixes);
        let name_for = |shape| metric_name(&m.name, &m.unit, shape, ns.as_deref(), add);
        let mut tally = |r: Upsert| match r {
            Upsert::Stored => out.stored += 1,
            Upsert::Unsupported => out.unsupported += 1,
            Upsert::Refused => out.refused += 1,
        };
        match &m.data {
            None => {}
            Some(Data::Gauge(g)) => {
                let name = name_for(OtelShape::Gauge);
                for p in &g.data_points {
                    let labels = self.labels_for(scope, &p.attributes, ids);
                    let r = match number(p).filter(|_| p.flags & NO_RECORDED_VALUE == 0) {
                        None => Upsert::Unsupported,
                        Some(v) => {
                            self.upsert(&name, FamilyType::Gauge, &help, labels, p.time_unix_nano, false, now, |_| {
                                Some(SeriesValue::Number(v))
                            })
                        }
                    };
                    tally(r);
                }
            }
            Some(Data::Sum(s)) => {
                let (shape, ty) = if s.is_monotonic {
                    (OtelShape::MonotonicSum, FamilyType::Counter)
                } else {
                    (OtelShape::NonMonotonicSum, FamilyType::Gauge)
                };
                let name = name_for(shape);
                for p in &s.data_points {
                    let labels = self.labels_for(scope, &p.attributes, ids);
                    let v = number(p).filter(|_| p.flags & NO_RECORDED_VALUE == 0);
                    let r = match (v, s.aggregation_temporality) {
                        (Some(v), CUMULATIVE) => {
                            self.upsert(&name, ty, &help, labels, p.time_unix_nano, false, now, |_| {
                                Some(SeriesValue::Number(v))
                            })
                        }
                        (Some(v), DELTA) => {
                            self.upsert(&name, ty, &help, labels, p.time_unix_nano, true, now, |prev| match prev {
                                None => Some(SeriesValue::Number(v)),
                                Some(SeriesValue::Number(old)) => Some(SeriesValue::Number(old + v)),
                                Some(_) => None,
                            })
                        }
                        _ => Upsert::Unsupported,
                    };
                    tally(r);
                }
            }
            Some(Data::Histogram(h)) => {
                let name = name_for(OtelShape::Histogram);
                for p in &h.data_points {
                    let labels = self.labels_for(scope, &p.attributes, ids);
                    let valid = p.flags & NO_RECORDED_VALUE == 0
                        && (p.bucket_counts.is_empty() || p.bucket_counts.len() == p.explicit_bounds.len() + 1);
                    let new = SeriesValue::Histogram {
                        bounds: if p.bucket_counts.is_empty() { Vec::new() } else { p.explicit_bounds.clone() },
                        counts: p.bucket_counts.clone(),
                        sum: p.sum.unwrap_or(0.0),
                        count: p.count,
                    };
                    let r = match (valid, h.aggregation_temporality) {
                        (true, CUMULATIVE) => self.upsert(
                            &name,
                            FamilyType::Histogram,
                            &help,
                            labels,
                            p.time_unix_nano,
                            false,
                            now,
                            |_| Some(new),
                        ),
                        (true, DELTA) => self.upsert(
                            &name,
                            FamilyType::Histogram,
                            &help,
                            labels,
                            p.time_unix_nano,
                            true,
                            now,
                            |prev| Some(add_histograms(prev, new)),
                        ),
                        _ => Upsert::Unsupported,
                    };
                    tally(r);
                }
            }
            Some(Data::Summary(s)) => {
                let name = name_for(OtelShape::Summary);
                for p in &s.data_points {
                    let labels = self.labels_for(scope, &p.attributes, ids);
                    let new = SeriesValue::Summary {
                        quantiles: p.quantile_values.iter().map(|q| (q.quantile, q.value)).collect(),
                        sum: p.sum,
                        count: p.count,
                    };
                    let r = if p.flags & NO_RECORDED_VALUE == 0 {
                        self.upsert(&name, FamilyType::Summary, &help, labels, p.time_unix_nano, false, now, |_| {
                            Some(new)
                        })
                    } else {
                        Upsert::Unsupported
                    };
                    tally(r);
                }
            }
            // The text exposition format has no native histograms.
            Some(Data::ExponentialHistogram(h)) => out.unsupported += h.data_points.len(),
        }
    }

    /// Writes one point. `merge` gets the previous value (if the series exists) and returns the new
    /// one, or `None` when the point cannot be merged. Points older than the stored one are dropped.
    #[allow(clippy::too_many_arguments)]
    fn upsert(
        &mut self,
        name: &str,
        ty: FamilyType,
        help: &str,
        labels: Labels,
        time_unix_nano: u64,
        delta: bool,
        now: Instant,
        merge: impl FnOnce(Option<&SeriesValue>) -> Option<SeriesValue>,
    ) -> Upsert {
        if name.is_empty() {
            return Upsert::Unsupported;
        }
        let at_cap = self.series >= self.settings.max_series;
        let fam = match self.families.get_mut(name) {
            Some(f) if f.ty != ty => return Upsert::Unsupported,
            Some(f) => f,
            None if at_cap => return Upsert::Refused,
            None => self.families.entry(name.to_owned()).or_insert_with(|| Family {
                ty,
                help: help.to_owned(),
                series: BTreeMap::new(),
            }),
        };
        if let Some(s) = fam.series.get_mut(&labels) {
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
                    fam.series.insert(labels, Series { value, time_unix_nano, updated: now });
                    self.series += 1;
                    Upsert::Stored
                }
                None => Upsert::Unsupported,
            }
        }
    }
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
