//! One scrape → OTLP metrics, pure, the way upstream's prometheus receiver (v0.155) maps them:
//!
//! - counter → cumulative monotonic Sum; gauge and untyped → Gauge; `_bucket`/`_sum`/`_count`
//!   of a histogram family → one Histogram point (explicit bounds, per-bucket counts); a
//!   summary's quantiles/`_sum`/`_count` → one Summary point. The family's type goes into the
//!   metric metadata as `prometheus.type`, its HELP into the description.
//! - Resource per (job, instance): `service.name`, `service.instance.id`, `server.address`
//!   (only for a host that is not loopback/unspecified/`localhost`), `server.port`, `url.scheme`,
//!   and `k8s.*` from the discovery labels. The other labels become data point attributes.
//! - The scrape's own series: `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//!   `scrape_samples_post_metric_relabeling`, `scrape_series_added`.
//!
//! One deliberate difference: upstream v0.155 leaves start timestamps unset (it moved that to the
//! `metricstarttime` processor). We track them per series in [`SeriesState`], so cumulative data
//! arrives usable: a series' start is the time we first saw it, and moves to the current point's
//! time when a counter (or a histogram/summary count) goes down, i.e. the target restarted.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, Summary, SummaryDataPoint, metric, number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::exposition::{Exposition, MetricType};
use super::relabel::{self, Labels, Rule};

/// The instrumentation scope upstream uses, kept so processors and backends that select on it
/// treat our data the same; the version is ours.
pub const SCOPE_NAME: &str = "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver";

/// Discovery labels that name Kubernetes resource attributes (as upstream maps them).
const K8S_RESOURCE_LABELS: &[(&str, &str)] = &[
    ("__meta_kubernetes_pod_name", "k8s.pod.name"),
    ("__meta_kubernetes_pod_uid", "k8s.pod.uid"),
    ("__meta_kubernetes_pod_container_name", "k8s.container.name"),
    ("__meta_kubernetes_namespace", "k8s.namespace.name"),
    ("__meta_kubernetes_pod_node_name", "k8s.node.name"),
];

/// Per-target settings a scrape is converted with.
#[derive(Debug, Clone, Copy)]
pub struct ScrapeContext<'a> {
    /// The target's final labels (`job`, `instance` and the rest; no `__` labels).
    pub target_labels: &'a Labels,
    /// The labels discovery produced, before relabeling (source of `k8s.*` attributes).
    pub discovered: &'a Labels,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// On a clash keep the scraped label (true) or the target's, renaming the scraped one to
    /// `exported_<name>` (false, the default).
    pub honor_labels: bool,
    /// Use timestamps the target exposes (true, the default) or the scrape time.
    pub honor_timestamps: bool,
    /// `metric_relabel_configs`, applied to each sample's labels including `__name__`.
    pub metric_relabel: &'a [Rule],
    /// Fail the scrape when more samples than this remain after metric relabeling (0: no limit).
    pub sample_limit: u64,
}

/// Why a scrape's content was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// More samples than `sample_limit` remained after metric relabeling.
    #[error("sample limit exceeded ({got} samples, sample_limit {limit})")]
    SampleLimit {
        /// Samples after relabeling.
        got: u64,
        /// The configured limit.
        limit: u64,
    },
}

/// What one series looked like last time; bounded by the target's current series (entries not
/// seen in a scrape are forgotten after it).
#[derive(Debug, Clone, Copy)]
struct Seen {
    start_ns: u64,
    /// Counter value, or histogram/summary count; NaN for gauges (never a reset).
    last: f64,
    scrape: u64,
}

/// Per-target memory across scrapes: start times of cumulative series and which series are new.
#[derive(Debug, Default)]
pub struct SeriesState {
    series: HashMap<String, Seen>,
    scrape: u64,
}

impl SeriesState {
    /// Records one series' point; returns its start time and whether the series is new.
    fn observe(&mut self, key: String, cumulative: f64, time_ns: u64) -> (u64, bool) {
        let scrape = self.scrape;
        match self.series.get_mut(&key) {
            Some(seen) => {
                if cumulative < seen.last {
                    // The value went down: the target restarted the series.
                    seen.start_ns = time_ns;
                }
                seen.last = cumulative;
                seen.scrape = scrape;
                (seen.start_ns, false)
            }
            None => {
                self.series.insert(key, Seen { start_ns: time_ns, last: cumulative, scrape });
                (time_ns, true)
            }
        }
    }

    fn begin(&mut self) {
        self.scrape += 1;
    }

    /// Forgets series this scrape did not have, so memory follows the target's current size.
    fn end(&mut self) {
        let scrape = self.scrape;
        self.series.retain(|_, s| s.scrape == scrape);
    }

    /// Series remembered (for tests and bounds checks).
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// Facts about the scrape itself, reported as its own series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScrapeReport {
    /// Whether the target answered with parsable content.
    pub up: bool,
    /// Wall time of the scrape in seconds.
    pub duration_s: f64,
    /// Samples in the body.
    pub samples_scraped: u64,
    /// Samples left after metric relabeling.
    pub samples_post_relabel: u64,
    /// Series not seen in the previous scrape.
    pub series_added: u64,
}

/// Family name and type a sample belongs to: `x_bucket`, `x_sum`, `x_count` belong to
/// histogram `x`; `x_sum`, `x_count` to summary `x`; everything else to itself.
fn family_of<'a>(name: &'a str, metadata: &HashMap<String, super::exposition::Metadata>) -> (&'a str, MetricType) {
    if let Some(m) = metadata.get(name) {
        return (name, m.kind);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(m) = metadata.get(base)
        {
            match (m.kind, suffix) {
                (MetricType::Histogram, _) | (MetricType::Summary, "_sum" | "_count") => return (base, m.kind),
                _ => {}
            }
        }
    }
    (name, MetricType::Unknown)
}

/// Attaches the target's labels to a sample's, as Prometheus does before metric relabeling.
fn merge_target_labels(sample: &mut Labels, target: &Labels, honor_labels: bool) {
    for (k, v) in target {
        match sample.get(k) {
            Some(_) if honor_labels => {}
            Some(existing) => {
                let existing = existing.clone();
                sample.insert(format!("exported_{k}"), existing);
                sample.insert(k.clone(), v.clone());
            }
            None => {
                sample.insert(k.clone(), v.clone());
            }
        }
    }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.to_owned())) }),
        ..Default::default()
    }
}

/// Upstream sets `server.address` only for a host that identifies a machine.
fn is_discernible_host(host: &str) -> bool {
    match host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        Ok(ip) => !ip.is_loopback() && !ip.is_unspecified(),
        Err(_) => host != "localhost",
    }
}

/// Splits `host:port` / `[v6]:port`; no port gives the whole string as host.
fn split_host_port(instance: &str) -> (&str, &str) {
    match instance.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h.trim_start_matches('[').trim_end_matches(']'), p)
        }
        _ => (instance, ""),
    }
}

fn resource(job: &str, instance: &str, scheme: &str, discovered: &Labels) -> Resource {
    let (host, port) = split_host_port(instance);
    let mut attrs = vec![kv("service.name", job)];
    if is_discernible_host(host) {
        attrs.push(kv("server.address", host));
    }
    attrs.push(kv("service.instance.id", instance));
    attrs.push(kv("server.port", port));
    attrs.push(kv("url.scheme", scheme));
    for (label, attr) in K8S_RESOURCE_LABELS {
        if let Some(v) = discovered.get(*label).filter(|v| !v.is_empty()) {
            attrs.push(kv(attr, v));
        }
    }
    let controller = |l: &str| discovered.get(l).map(String::as_str).unwrap_or_default();
    let (kind, name) =
        (controller("__meta_kubernetes_pod_controller_kind"), controller("__meta_kubernetes_pod_controller_name"));
    let workload = match kind {
        "ReplicaSet" => Some("k8s.replicaset.name"),
        "DaemonSet" => Some("k8s.daemonset.name"),
        "StatefulSet" => Some("k8s.statefulset.name"),
        "Job" => Some("k8s.job.name"),
        "CronJob" => Some("k8s.cronjob.name"),
        _ => None,
    };
    if let Some(attr) = workload.filter(|_| !name.is_empty()) {
        attrs.push(kv(attr, name));
    }
    Resource { attributes: attrs, ..Default::default() }
}

/// A family's points for one resource, accumulated in scrape order.
#[derive(Debug)]
struct Family {
    name: String,
    kind: MetricType,
    help: String,
    unit: &'static str,
    /// Series in order of appearance with their attribute sets.
    series: Vec<(Labels, SeriesPoints)>,
    /// Position in `series` by attribute set, for histograms and summaries whose series are
    /// assembled from several lines (a linear search would make big scrapes quadratic).
    index: HashMap<Labels, usize>,
}

impl Family {
    fn new(name: &str, kind: MetricType, help: &str, unit: &'static str) -> Self {
        Self { name: name.to_owned(), kind, help: help.to_owned(), unit, series: Vec::new(), index: HashMap::new() }
    }

    /// The series with these attributes, created by `new` on first use.
    fn entry(&mut self, labels: Labels, new: impl FnOnce() -> SeriesPoints) -> &mut SeriesPoints {
        let idx = match self.index.get(&labels) {
            Some(&i) => i,
            None => {
                self.index.insert(labels.clone(), self.series.len());
                self.series.push((labels, new()));
                self.series.len() - 1
            }
        };
        &mut self.series[idx].1
    }
}

#[derive(Debug)]
enum SeriesPoints {
    Number { value: f64, time_ns: u64 },
    Histogram { buckets: Vec<(f64, f64)>, sum: Option<f64>, count: Option<f64>, time_ns: u64 },
    Summary { quantiles: Vec<(f64, f64)>, sum: Option<f64>, count: Option<f64>, time_ns: u64 },
}

/// The families of one (job, instance) resource, in order of appearance.
#[derive(Debug, Default)]
struct ResourceGroup {
    families: Vec<Family>,
    by_name: HashMap<String, usize>,
}

impl ResourceGroup {
    fn family(&mut self, name: &str, kind: MetricType, help: &str) -> &mut Family {
        let idx = match self.by_name.get(name) {
            Some(&i) => i,
            None => {
                self.by_name.insert(name.to_owned(), self.families.len());
                self.families.push(Family::new(name, kind, help, ""));
                self.families.len() - 1
            }
        };
        &mut self.families[idx]
    }
}

/// Resource groups keyed by (job, instance), in order of appearance (almost always just one).
type Grouped = Vec<((String, String), ResourceGroup)>;

fn group_for<'g>(grouped: &'g mut Grouped, job: &str, instance: &str) -> &'g mut ResourceGroup {
    let idx = match grouped.iter().position(|((j, i), _)| j == job && i == instance) {
        Some(i) => i,
        None => {
            grouped.push(((job.to_owned(), instance.to_owned()), ResourceGroup::default()));
            grouped.len() - 1
        }
    };
    &mut grouped[idx].1
}

/// The samples left after metric relabeling, grouped by resource (`job`, `instance`) and metric
/// family, with how many there are (what `sample_limit` counts).
fn group_samples(ctx: &ScrapeContext<'_>, exp: &Exposition, scrape_ns: u64) -> (Grouped, u64) {
    let mut grouped: Grouped = Vec::new();
    let mut post_relabel = 0u64;
    for sample in &exp.samples {
        let mut labels: Labels = sample.labels.iter().cloned().collect();
        labels.insert("__name__".into(), sample.name.clone());
        merge_target_labels(&mut labels, ctx.target_labels, ctx.honor_labels);
        let Some(mut labels) = relabel::apply(ctx.metric_relabel, labels) else { continue };
        let Some(name) = labels.remove("__name__") else { continue };
        post_relabel += 1;
        let time_ns = match sample.timestamp_ms {
            Some(ts) if ctx.honor_timestamps => ms_to_ns(ts),
            _ => scrape_ns,
        };
        let s_job = labels.remove("job").unwrap_or_default();
        let s_instance = labels.remove("instance").unwrap_or_default();
        let (family, kind) = family_of(&name, &exp.metadata);
        let help = exp.metadata.get(family).map(|m| m.help.as_str()).unwrap_or("");
        let fam = group_for(&mut grouped, &s_job, &s_instance).family(family, kind, help);
        add_sample(fam, kind, &name, labels, sample.value, time_ns);
    }
    (grouped, post_relabel)
}

/// Places one sample in its family: a histogram's bucket, sum or count, a summary's quantile,
/// sum or count, or a point of its own.
fn add_sample(fam: &mut Family, kind: MetricType, name: &str, mut labels: Labels, value: f64, time_ns: u64) {
    match kind {
        MetricType::Histogram => {
            let le = labels.remove("le");
            let points =
                fam.entry(labels, || SeriesPoints::Histogram { buckets: Vec::new(), sum: None, count: None, time_ns });
            if let SeriesPoints::Histogram { buckets, sum, count, .. } = points {
                if name.ends_with("_bucket") {
                    if let Some(bound) = le.as_deref().and_then(|l| l.parse::<f64>().ok()) {
                        buckets.push((bound, value));
                    }
                } else if name.ends_with("_sum") {
                    *sum = Some(value);
                } else if name.ends_with("_count") {
                    *count = Some(value);
                }
            }
        }
        MetricType::Summary => {
            let quantile = labels.remove("quantile");
            let fam_name_len = fam.name.len();
            let points =
                fam.entry(labels, || SeriesPoints::Summary { quantiles: Vec::new(), sum: None, count: None, time_ns });
            if let SeriesPoints::Summary { quantiles, sum, count, .. } = points {
                if name.ends_with("_sum") && name.len() > fam_name_len {
                    *sum = Some(value);
                } else if name.ends_with("_count") && name.len() > fam_name_len {
                    *count = Some(value);
                } else if let Some(q) = quantile.as_deref().and_then(|q| q.parse::<f64>().ok()) {
                    quantiles.push((q, value));
                }
            }
        }
        _ => fam.series.push((labels, SeriesPoints::Number { value, time_ns })),
    }
}

/// Converts one successful scrape (`exposition`) or a failed one (`None`) into an export request,
/// updating `state`. `scrape_ms` is the scrape's start time in milliseconds since the epoch.
pub fn convert(
    ctx: &ScrapeContext<'_>,
    exposition: Option<&Exposition>,
    scrape_ms: i64,
    duration_s: f64,
    state: &mut SeriesState,
) -> Result<(ExportMetricsServiceRequest, ScrapeReport), ConvertError> {
    let scrape_ns = ms_to_ns(scrape_ms);
    let job = ctx.target_labels.get("job").cloned().unwrap_or_default();
    let instance = ctx.target_labels.get("instance").cloned().unwrap_or_default();
    let empty = Exposition::default();
    let exp = exposition.unwrap_or(&empty);
    let (grouped, post_relabel) = group_samples(ctx, exp, scrape_ns);

    if ctx.sample_limit > 0 && post_relabel > ctx.sample_limit {
        return Err(ConvertError::SampleLimit { got: post_relabel, limit: ctx.sample_limit });
    }

    // A failed scrape says nothing about the target's series: keep their start times, so a
    // network blip does not look like a restart once the target answers again.
    if exposition.is_some() {
        state.begin();
    }
    let mut series_added = 0u64;
    let mut resource_metrics = Vec::new();
    let mut target_attrs = ctx.target_labels.clone();
    target_attrs.remove("job");
    target_attrs.remove("instance");
    let mut report = ScrapeReport {
        up: exposition.is_some(),
        duration_s,
        samples_scraped: exp.samples.len() as u64,
        samples_post_relabel: post_relabel,
        series_added: 0,
    };

    for ((r_job, r_instance), group) in &grouped {
        let metrics = group
            .families
            .iter()
            .map(|f| family_metric(f, r_job, r_instance, state, &mut series_added))
            .collect::<Vec<_>>();
        resource_metrics.push(resource_metrics_for(r_job, r_instance, ctx, metrics));
    }
    report.series_added = series_added;

    // The scrape's own series go to the target's resource, with the target's labels.
    let own = |name: &str, help: &str, unit: &'static str, value: f64| {
        let mut f = Family::new(name, MetricType::Gauge, help, unit);
        f.series.push((target_attrs.clone(), SeriesPoints::Number { value, time_ns: scrape_ns }));
        f
    };
    let own_families = [
        own("up", "The scraping was successful", "", if report.up { 1.0 } else { 0.0 }),
        own("scrape_duration_seconds", "Duration of the scrape", "s", duration_s),
        own("scrape_samples_scraped", "The number of samples the target exposed", "", report.samples_scraped as f64),
        own(
            "scrape_samples_post_metric_relabeling",
            "The number of samples remaining after metric relabeling was applied",
            "",
            post_relabel as f64,
        ),
        own("scrape_series_added", "The approximate number of new series in this scrape", "", series_added as f64),
    ];
    let mut ignored = 0;
    let own_metrics: Vec<Metric> =
        own_families.iter().map(|f| family_metric(f, &job, &instance, state, &mut ignored)).collect();
    match resource_metrics.iter_mut().find(|rm| resource_is(rm, &job, &instance)) {
        Some(rm) => rm.scope_metrics[0].metrics.extend(own_metrics),
        None => resource_metrics.push(resource_metrics_for(&job, &instance, ctx, own_metrics)),
    }
    if exposition.is_some() {
        state.end();
    }
    Ok((ExportMetricsServiceRequest { resource_metrics }, report))
}

fn ms_to_ns(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

fn resource_is(rm: &ResourceMetrics, job: &str, instance: &str) -> bool {
    let attrs = rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
    let get = |k: &str| {
        attrs.iter().find(|a| a.key == k).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
    };
    get("service.name") == Some(job) && get("service.instance.id") == Some(instance)
}

fn resource_metrics_for(job: &str, instance: &str, ctx: &ScrapeContext<'_>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(resource(job, instance, ctx.scheme, ctx.discovered)),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: SCOPE_NAME.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn attributes(labels: &Labels) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| kv(k, v)).collect()
}

/// The identity of a series across scrapes: family, resource and attributes.
fn series_key(family: &str, job: &str, instance: &str, labels: &Labels) -> String {
    let mut key = String::with_capacity(64);
    for part in [family, job, instance] {
        key.push_str(part);
        key.push('\u{0}');
    }
    for (k, v) in labels {
        key.push_str(k);
        key.push('\u{1}');
        key.push_str(v);
        key.push('\u{0}');
    }
    key
}

fn family_metric(f: &Family, job: &str, instance: &str, state: &mut SeriesState, added: &mut u64) -> Metric {
    let mut observe = |labels: &Labels, cumulative: f64, time_ns: u64| {
        let (start, new) = state.observe(series_key(&f.name, job, instance, labels), cumulative, time_ns);
        if new {
            *added += 1;
        }
        start
    };
    let data = match f.kind {
        MetricType::Counter => {
            let mut points = Vec::new();
            for (labels, p) in &f.series {
                if let SeriesPoints::Number { value, time_ns } = p {
                    let start = observe(labels, *value, *time_ns);
                    points.push(number_point(labels, *value, start, *time_ns));
                }
            }
            metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })
        }
        MetricType::Gauge | MetricType::Unknown => {
            let mut points = Vec::new();
            for (labels, p) in &f.series {
                if let SeriesPoints::Number { value, time_ns } = p {
                    observe(labels, f64::NAN, *time_ns);
                    points.push(number_point(labels, *value, 0, *time_ns));
                }
            }
            metric::Data::Gauge(Gauge { data_points: points })
        }
        MetricType::Histogram => {
            let mut points = Vec::new();
            for (labels, p) in &f.series {
                if let SeriesPoints::Histogram { buckets, sum, count, time_ns } = p {
                    let (bounds, counts, total) = histogram_buckets(buckets, *count);
                    let start = observe(labels, total as f64, *time_ns);
                    points.push(HistogramDataPoint {
                        attributes: attributes(labels),
                        start_time_unix_nano: start,
                        time_unix_nano: *time_ns,
                        count: total,
                        sum: *sum,
                        bucket_counts: counts,
                        explicit_bounds: bounds,
                        ..Default::default()
                    });
                }
            }
            metric::Data::Histogram(Histogram {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })
        }
        MetricType::Summary => {
            let mut points = Vec::new();
            for (labels, p) in &f.series {
                if let SeriesPoints::Summary { quantiles, sum, count, time_ns } = p {
                    let total = count.map(to_count).unwrap_or(0);
                    let start = observe(labels, total as f64, *time_ns);
                    let mut q = quantiles.clone();
                    q.sort_by(|a, b| a.0.total_cmp(&b.0));
                    points.push(SummaryDataPoint {
                        attributes: attributes(labels),
                        start_time_unix_nano: start,
                        time_unix_nano: *time_ns,
                        count: total,
                        sum: sum.unwrap_or(0.0),
                        quantile_values: q
                            .into_iter()
                            .map(|(quantile, value)| summary_data_point::ValueAtQuantile { quantile, value })
                            .collect(),
                        ..Default::default()
                    });
                }
            }
            metric::Data::Summary(Summary { data_points: points })
        }
    };
    Metric {
        name: f.name.clone(),
        description: f.help.clone(),
        unit: f.unit.into(),
        metadata: vec![kv("prometheus.type", f.kind.as_str())],
        data: Some(data),
    }
}

fn number_point(labels: &Labels, value: f64, start_ns: u64, time_ns: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes(labels),
        start_time_unix_nano: start_ns,
        time_unix_nano: time_ns,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// Counts are exposed as floats; negative or NaN ones (broken targets) count as 0.
fn to_count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 { v as u64 } else { 0 }
}

/// Cumulative `le` buckets → (explicit bounds without `+Inf`, per-bucket counts, total count).
/// The total is `_count` when present, else the `+Inf` bucket; a missing `+Inf` bucket is
/// filled from the total so the counts always add up.
pub fn histogram_buckets(buckets: &[(f64, f64)], count: Option<f64>) -> (Vec<f64>, Vec<u64>, u64) {
    let mut sorted = buckets.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    sorted.dedup_by(|a, b| a.0 == b.0);
    let inf = sorted.last().filter(|(le, _)| *le == f64::INFINITY).map(|(_, c)| to_count(*c));
    let total = count.map(to_count).or(inf).unwrap_or(0);
    let mut bounds = Vec::with_capacity(sorted.len());
    let mut counts = Vec::with_capacity(sorted.len() + 1);
    let mut prev = 0u64;
    for (le, cum) in sorted.iter().filter(|(le, _)| *le != f64::INFINITY) {
        let cum = to_count(*cum);
        bounds.push(*le);
        counts.push(cum.saturating_sub(prev));
        prev = prev.max(cum);
    }
    counts.push(inf.unwrap_or(total).saturating_sub(prev));
    (bounds, counts, total)
}

#[cfg(test)]
mod tests;
