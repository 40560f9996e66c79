//! `metricstransform` processor, following upstream's `metricstransformprocessor`: `action: update`
//! (in place) and `insert` (a changed copy appended to the same scope), `strict`/`regexp`
//! matching with capture references in `new_name`, `experimental_match_labels`, and the
//! operations `add_label`, `update_label`, `delete_label_value`, `toggle_scalar_data_type` and
//! `experimental_scale_value` on every metric type. `combine`, `group`, `aggregate_labels` and
//! `aggregate_label_values` are refused by config validation (and again here, should an
//! unvalidated config arrive).
//!
//! Compiling the config ([`MetricsTransform::new`]) is separate from applying it
//! ([`MetricsTransform::apply`], a pure function over an export request). When every transform
//! is an `update` without `experimental_match_labels` whose operations are `add_label` and
//! `update_label` (what users run), the processor also has an encoded form
//! ([`pdata::edit::MetricsEdit`](crate::pdata::edit::MetricsEdit)) and changes received
//! requests without decoding them; the result decodes to what [`MetricsTransform::apply`] gives.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as AnyV};
use opentelemetry_proto::tonic::metrics::v1::{Metric, exemplar, metric::Data as MetricData, number_data_point};
use prost::Message as _;
use regex::Regex;

use crate::pdata::edit::{
    self, AttrEdit, AttrOp, Edit, MetricRule, MetricsEdit, NamePattern as Pattern, OpKind, Source,
};
use crate::pdata::{Data, Payload};
use crate::pipeline::{ConsumeError, Processor};
use collector_config::processor::metricstransform::{
    MetricMatchType, MetricOperation, MetricOperationAction, MetricTransform, MetricTransformAction,
    MetricsTransformConfig,
};

/// What `{{version}}` in `new_value` becomes: upstream substitutes the collector's build version.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Compiled metricstransform processor.
#[derive(Debug)]
pub struct MetricsTransform {
    transforms: Vec<Transform>,
    /// The transforms on encoded data, when they all have an encoded form.
    wire: Option<MetricsEdit>,
}

/// One compiled `transforms[]` entry.
#[derive(Debug)]
struct Transform {
    filter: Filter,
    /// `insert` (copy) rather than `update` (in place).
    insert: bool,
    /// Empty means "keep the name", as upstream treats an unset `new_name`.
    new_name: String,
    operations: Vec<Operation>,
}

/// `include` + `experimental_match_labels`.
#[derive(Debug)]
struct Filter {
    include: Pattern,
    /// Label name and the matcher its value must satisfy (same kind as `include`).
    labels: Vec<(String, Pattern)>,
}

/// One compiled `operations[]` entry (the implemented actions only).
#[derive(Debug)]
enum Operation {
    AddLabel { label: String, value: String },
    UpdateLabel { label: String, new_label: String, values: HashMap<String, String> },
    DeleteLabelValue { label: String, value: String },
    ToggleScalarDataType,
    ScaleValue(f64),
}

impl MetricsTransform {
    /// Compiles the config; errors name the config path like validation does.
    pub fn new(cfg: &MetricsTransformConfig) -> Result<Self, String> {
        let transforms = cfg
            .transforms
            .iter()
            .enumerate()
            .map(|(i, t)| Transform::new(&format!("transforms[{i}]"), t))
            .collect::<Result<Vec<_>, _>>()?;
        let wire =
            transforms.iter().map(Transform::wire_form).collect::<Option<Vec<_>>>().map(|rules| MetricsEdit { rules });
        Ok(Self { transforms, wire })
    }

    /// Applies every transform, in order, to each scope's metrics, then drops scopes and
    /// resources left without metrics (upstream drops them whether or not a transform emptied them).
    pub fn apply(&self, req: &mut ExportMetricsServiceRequest) {
        for rm in &mut req.resource_metrics {
            for sm in &mut rm.scope_metrics {
                for t in &self.transforms {
                    t.apply(&mut sm.metrics);
                }
            }
            rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
        }
        req.resource_metrics.retain(|rm| !rm.scope_metrics.is_empty());
    }
}

impl Processor for MetricsTransform {
    fn wire_edit(&self) -> Option<Edit<'_>> {
        Some(Edit { metrics: Some(self.wire.as_ref()?), ..Edit::default() })
    }

    fn process(&self, data: Data) -> Result<Data, ConsumeError> {
        if let (Data::Encoded(encoded), Some(wire)) = (&data, self.wire_edit())
            && let Some(done) = edit::apply(encoded, &wire)
        {
            return Ok(done.into());
        }
        let mut data = data.decode()?;
        if let Payload::Metrics(r) = &mut data {
            self.apply(r);
        }
        Ok(data.into())
    }
}

impl Transform {
    fn new(tp: &str, t: &MetricTransform) -> Result<Self, String> {
        let insert = match t.action {
            Some(MetricTransformAction::Update) => false,
            Some(MetricTransformAction::Insert) => true,
            Some(a) => return Err(format!("{tp}.action: {} is not supported by this collector", a.as_str())),
            None => return Err(format!("{tp}.action: required (update or insert)")),
        };
        let regexp = t.match_type == MetricMatchType::Regexp;
        let pattern = |path: String, s: &str| -> Result<Pattern, String> {
            if regexp {
                Regex::new(s).map(Pattern::Regexp).map_err(|e| format!("{path}: invalid regex: {e}"))
            } else {
                Ok(Pattern::Strict(s.to_owned()))
            }
        };
        let filter = Filter {
            include: pattern(format!("{tp}.include"), &t.include)?,
            labels: t
                .experimental_match_labels
                .iter()
                .map(|(k, v)| Ok((k.clone(), pattern(format!("{tp}.experimental_match_labels.{k}"), v)?)))
                .collect::<Result<_, String>>()?,
        };
        let operations = t
            .operations
            .iter()
            .enumerate()
            .map(|(j, op)| Operation::new(&format!("{tp}.operations[{j}]"), op))
            .collect::<Result<_, _>>()?;
        Ok(Self { filter, insert, new_name: t.new_name.clone(), operations })
    }

    /// The encoded form: `update` without label matching, with `add_label` and `update_label`
    /// operations only. `None` for anything else.
    fn wire_form(&self) -> Option<MetricRule> {
        if self.insert || !self.filter.labels.is_empty() {
            return None;
        }
        let ops = self
            .operations
            .iter()
            .map(|op| match op {
                Operation::AddLabel { label, value } => {
                    Some(AttrOp { key: label.clone(), kind: OpKind::Insert(Source::Literal(encoded_string(value))) })
                }
                Operation::UpdateLabel { label, new_label, values } => Some(AttrOp {
                    key: label.clone(),
                    kind: OpKind::RenameLabel {
                        new_key: new_label.clone(),
                        values: values.iter().map(|(k, v)| (k.clone(), encoded_string(v))).collect(),
                    },
                }),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(MetricRule {
            include: self.filter.include.clone(),
            new_name: self.new_name.clone(),
            labels: AttrEdit { ops },
        })
    }

    /// Upstream's `processMetrics` for one transform over one scope's metrics.
    fn apply(&self, metrics: &mut Vec<Metric>) {
        if self.insert {
            // Only the metrics present before this transform: copies are not copied again.
            for i in 0..metrics.len() {
                if let Some(mut copy) = self.filter.extract(&metrics[i])
                    && self.transform_metric(&mut copy)
                {
                    metrics.push(copy);
                }
            }
        } else {
            // A metric whose last point an operation deleted is dropped.
            metrics.retain_mut(|m| !self.filter.selects(m) || self.transform_metric(m));
        }
    }

    /// Renames the metric and runs the operations; false if this left a metric that had points
    /// without any (upstream's `transformMetric`).
    fn transform_metric(&self, m: &mut Metric) -> bool {
        let had_points = point_count(m) > 0;
        // Under `update` with match labels, metric-wide changes (the name, added labels, deleted
        // points) apply only if every point matches; per-point changes apply to matching points.
        // An inserted copy holds only matching points, so everything applies to it.
        let whole_metric = self.insert || attrs(m).all(|a| self.filter.labels_match(a));
        if !self.new_name.is_empty() && whole_metric {
            m.name = self.filter.expand(&self.new_name, &m.name);
        }
        for op in &self.operations {
            op.apply(m, &self.filter, whole_metric);
        }
        !had_points || point_count(m) > 0
    }
}

impl Filter {
    fn name_matches(&self, name: &str) -> bool {
        self.include.matches(name)
    }

    /// Upstream's `matchAttrs`: every configured label matches; an absent label must match "".
    fn labels_match(&self, attrs: &[KeyValue]) -> bool {
        self.labels.iter().all(|(key, pattern)| {
            pattern.matches(attrs.iter().find(|kv| kv.key == *key).map_or("", |kv| str_value(kv.value.as_ref())))
        })
    }

    /// `update` selects a metric by name if it has no points or any point matches the labels.
    fn selects(&self, m: &Metric) -> bool {
        self.name_matches(&m.name) && (point_count(m) == 0 || attrs(m).any(|a| self.labels_match(a)))
    }

    /// `insert`: a copy of the metric holding only its matching points; `None` if the name does not
    /// match or it has points and none match. A metric without points is copied as is.
    fn extract(&self, m: &Metric) -> Option<Metric> {
        if !self.name_matches(&m.name) || (point_count(m) > 0 && !attrs(m).any(|a| self.labels_match(a))) {
            return None;
        }
        let mut copy = m.clone();
        retain_points(&mut copy, |a| self.labels_match(a));
        Some(copy)
    }

    /// The new name (see [`Pattern::expand`]).
    fn expand(&self, template: &str, name: &str) -> String {
        self.include.expand(template, name)
    }
}

impl Operation {
    fn new(op_path: &str, op: &MetricOperation) -> Result<Self, String> {
        use MetricOperationAction as A;
        let version = |s: &str| s.replace("{{version}}", VERSION);
        Ok(match op.action {
            Some(A::AddLabel) => Operation::AddLabel { label: op.new_label.clone(), value: version(&op.new_value) },
            Some(A::UpdateLabel) => Operation::UpdateLabel {
                label: op.label.clone(),
                new_label: op.new_label.clone(),
                // Later entries for the same value win, as in upstream's map.
                values: op.value_actions.iter().map(|va| (va.value.clone(), version(&va.new_value))).collect(),
            },
            Some(A::DeleteLabelValue) => {
                Operation::DeleteLabelValue { label: op.label.clone(), value: op.label_value.clone() }
            }
            Some(A::ToggleScalarDataType) => Operation::ToggleScalarDataType,
            Some(A::ExperimentalScaleValue) => Operation::ScaleValue(op.experimental_scale),
            Some(a @ (A::AggregateLabels | A::AggregateLabelValues)) => {
                return Err(format!("{op_path}.action: {} is not supported by this collector", a.as_str()));
            }
            None => return Err(format!("{op_path}.action: required")),
        })
    }

    /// Applies the operation; `whole_metric` gates the metric-wide ones (see `transform_metric`).
    fn apply(&self, m: &mut Metric, filter: &Filter, whole_metric: bool) {
        match self {
            Operation::AddLabel { label, value } if whole_metric => {
                for a in attrs_mut(m) {
                    // An existing label keeps its value.
                    if !a.iter().any(|kv| kv.key == *label) {
                        a.push(string_kv(label, value));
                    }
                }
            }
            Operation::DeleteLabelValue { label, value } if whole_metric => {
                retain_points(m, |a| !a.iter().any(|kv| kv.key == *label && str_value(kv.value.as_ref()) == value));
            }
            Operation::AddLabel { .. } | Operation::DeleteLabelValue { .. } => {}
            Operation::UpdateLabel { label, new_label, values } => {
                for a in attrs_mut(m).filter(|a| filter.labels_match(a)) {
                    update_label(a, label, new_label, values);
                }
            }
            Operation::ToggleScalarDataType => {
                for_number_points(m, filter, |v| {
                    *v = match *v {
                        number_data_point::Value::AsInt(i) => number_data_point::Value::AsDouble(i as f64),
                        // Go's int64(float64) truncates toward zero; Rust's `as` does too (and
                        // saturates where Go's result is unspecified).
                        number_data_point::Value::AsDouble(d) => number_data_point::Value::AsInt(d as i64),
                    }
                });
            }
            Operation::ScaleValue(f) => scale(m, filter, *f),
        }
    }
}

/// Upstream's `updateLabelOp` on one point's attributes: rename `label` to `new_label` (replacing
/// an existing `new_label`), then map the original value through `values` (the result is a string).
fn update_label(attrs: &mut Vec<KeyValue>, label: &str, new_label: &str, values: &HashMap<String, String>) {
    let Some(mut at) = attrs.iter().position(|kv| kv.key == label) else { return };
    // Renaming a label to itself is a no-op (upstream's pdata calls would delete it instead).
    if !new_label.is_empty() && new_label != label {
        if let Some(existing) = attrs.iter().position(|kv| kv.key == new_label) {
            attrs.remove(existing);
            if existing < at {
                at -= 1;
            }
        }
        attrs[at].key = new_label.to_owned();
    }
    if let Some(new_value) = values.get(str_value(attrs[at].value.as_ref())) {
        attrs[at].value = Some(AnyValue { value: Some(AnyV::StringValue(new_value.clone())) });
    }
}

/// Upstream's `scaleValueOp`: gauge and sum values (an int is scaled as a double and truncated
/// back); histogram sum, min, max, explicit bounds and exemplar values. Exponential histograms and
/// summaries are left unchanged, as upstream leaves them.
fn scale(m: &mut Metric, filter: &Filter, f: f64) {
    if let Some(MetricData::Histogram(h)) = &mut m.data {
        for p in h.data_points.iter_mut().filter(|p| filter.labels_match(&p.attributes)) {
            for v in [&mut p.sum, &mut p.min, &mut p.max].into_iter().flatten() {
                *v *= f;
            }
            for b in &mut p.explicit_bounds {
                *b *= f;
            }
            for v in p.exemplars.iter_mut().filter_map(|e| e.value.as_mut()) {
                match v {
                    exemplar::Value::AsInt(i) => *i = (*i as f64 * f) as i64,
                    exemplar::Value::AsDouble(d) => *d *= f,
                }
            }
        }
        return;
    }
    for_number_points(m, filter, |v| match v {
        number_data_point::Value::AsInt(i) => *i = (*i as f64 * f) as i64,
        number_data_point::Value::AsDouble(d) => *d *= f,
    });
}

/// Calls `f` on the value of each gauge or sum point whose labels match; other types have none.
fn for_number_points(m: &mut Metric, filter: &Filter, mut f: impl FnMut(&mut number_data_point::Value)) {
    let points = match &mut m.data {
        Some(MetricData::Gauge(g)) => &mut g.data_points,
        Some(MetricData::Sum(s)) => &mut s.data_points,
        _ => return,
    };
    for p in points.iter_mut().filter(|p| filter.labels_match(&p.attributes)) {
        if let Some(v) = &mut p.value {
            f(v);
        }
    }
}

/// A label value as upstream's `Value.Str()` reads it: non-string values read as "".
fn str_value(v: Option<&AnyValue>) -> &str {
    match v.and_then(|v| v.value.as_ref()) {
        Some(AnyV::StringValue(s)) => s,
        _ => "",
    }
}

/// The encoding of a string `AnyValue`, as the encoded form writes label values.
fn encoded_string(value: &str) -> Vec<u8> {
    AnyValue { value: Some(AnyV::StringValue(value.to_owned())) }.encode_to_vec()
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(AnyV::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

// Data point access for every metric type: the five point types share only their attributes.

fn point_count(m: &Metric) -> usize {
    attrs(m).count()
}

/// Each data point's attributes.
fn attrs(m: &Metric) -> Box<dyn Iterator<Item = &[KeyValue]> + '_> {
    match &m.data {
        Some(MetricData::Gauge(d)) => Box::new(d.data_points.iter().map(|p| p.attributes.as_slice())),
        Some(MetricData::Sum(d)) => Box::new(d.data_points.iter().map(|p| p.attributes.as_slice())),
        Some(MetricData::Histogram(d)) => Box::new(d.data_points.iter().map(|p| p.attributes.as_slice())),
        Some(MetricData::ExponentialHistogram(d)) => Box::new(d.data_points.iter().map(|p| p.attributes.as_slice())),
        Some(MetricData::Summary(d)) => Box::new(d.data_points.iter().map(|p| p.attributes.as_slice())),
        None => Box::new(std::iter::empty()),
    }
}

/// Each data point's attributes, mutably.
fn attrs_mut(m: &mut Metric) -> Box<dyn Iterator<Item = &mut Vec<KeyValue>> + '_> {
    match &mut m.data {
        Some(MetricData::Gauge(d)) => Box::new(d.data_points.iter_mut().map(|p| &mut p.attributes)),
        Some(MetricData::Sum(d)) => Box::new(d.data_points.iter_mut().map(|p| &mut p.attributes)),
        Some(MetricData::Histogram(d)) => Box::new(d.data_points.iter_mut().map(|p| &mut p.attributes)),
        Some(MetricData::ExponentialHistogram(d)) => Box::new(d.data_points.iter_mut().map(|p| &mut p.attributes)),
        Some(MetricData::Summary(d)) => Box::new(d.data_points.iter_mut().map(|p| &mut p.attributes)),
        None => Box::new(std::iter::empty()),
    }
}

/// Keeps the data points whose attributes satisfy `keep`.
fn retain_points(m: &mut Metric, mut keep: impl FnMut(&[KeyValue]) -> bool) {
    match &mut m.data {
        Some(MetricData::Gauge(d)) => d.data_points.retain(|p| keep(&p.attributes)),
        Some(MetricData::Sum(d)) => d.data_points.retain(|p| keep(&p.attributes)),
        Some(MetricData::Histogram(d)) => d.data_points.retain(|p| keep(&p.attributes)),
        Some(MetricData::ExponentialHistogram(d)) => d.data_points.retain(|p| keep(&p.attributes)),
        Some(MetricData::Summary(d)) => d.data_points.retain(|p| keep(&p.attributes)),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::metrics::v1::{
        Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    };

    use super::*;
    use number_data_point::Value::{AsDouble, AsInt};

    /// Compiles `transforms:` YAML (parsed as the config crate parses it, without validation).
    fn processor(transforms: &str) -> MetricsTransform {
        let cfg: MetricsTransformConfig = serde_yaml::from_str(&format!("transforms:\n{transforms}")).unwrap();
        MetricsTransform::new(&cfg).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
        pairs.iter().map(|(k, v)| string_kv(k, v)).collect()
    }

    fn number(attrs: &[(&str, &str)], v: number_data_point::Value) -> NumberDataPoint {
        NumberDataPoint { attributes: labels(attrs), value: Some(v), ..Default::default() }
    }

    fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
        Metric { name: name.into(), data: Some(MetricData::Gauge(Gauge { data_points: points })), ..Default::default() }
    }

    fn sum(name: &str, points: Vec<NumberDataPoint>) -> Metric {
        let s = Sum { data_points: points, aggregation_temporality: 2, is_monotonic: true };
        Metric { name: name.into(), data: Some(MetricData::Sum(s)), ..Default::default() }
    }

    fn histogram(name: &str, attrs: &[(&str, &str)]) -> Metric {
        let p = HistogramDataPoint {
            attributes: labels(attrs),
            count: 3,
            sum: Some(1.5),
            min: Some(0.25),
            max: None,
            bucket_counts: vec![1, 2, 0],
            explicit_bounds: vec![0.5, 1.0],
            exemplars: vec![
                Exemplar { value: Some(exemplar::Value::AsInt(3)), ..Default::default() },
                Exemplar { value: Some(exemplar::Value::AsDouble(0.5)), ..Default::default() },
            ],
            ..Default::default()
        };
        let h = Histogram { data_points: vec![p], aggregation_temporality: 2 };
        Metric { name: name.into(), data: Some(MetricData::Histogram(h)), ..Default::default() }
    }

    fn exp_histogram(name: &str, attrs: &[(&str, &str)]) -> Metric {
        let p = ExponentialHistogramDataPoint { attributes: labels(attrs), sum: Some(2.0), ..Default::default() };
        let h = ExponentialHistogram { data_points: vec![p], aggregation_temporality: 2 };
        Metric { name: name.into(), data: Some(MetricData::ExponentialHistogram(h)), ..Default::default() }
    }

    fn summary(name: &str, attrs: &[(&str, &str)]) -> Metric {
        let p = SummaryDataPoint { attributes: labels(attrs), sum: 2.0, count: 1, ..Default::default() };
        Metric {
            name: name.into(),
            data: Some(MetricData::Summary(Summary { data_points: vec![p] })),
            ..Default::default()
        }
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    /// Runs `transforms` over one scope holding `metrics` and returns that scope's metrics.
    fn run(transforms: &str, metrics: Vec<Metric>) -> Vec<Metric> {
        let mut req = request(metrics);
        processor(transforms).apply(&mut req);
        req.resource_metrics.into_iter().flat_map(|rm| rm.scope_metrics).flat_map(|sm| sm.metrics).collect()
    }

    fn names(metrics: &[Metric]) -> Vec<&str> {
        metrics.iter().map(|m| m.name.as_str()).collect()
    }

    /// Each point's attributes as `k=v` strings (non-string values as `k=?`).
    fn point_labels(m: &Metric) -> Vec<Vec<String>> {
        attrs(m)
            .map(|a| {
                a.iter()
                    .map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(AnyV::StringValue(s)) => format!("{}={s}", kv.key),
                        _ => format!("{}=?", kv.key),
                    })
                    .collect()
            })
            .collect()
    }

    fn number_values(m: &Metric) -> Vec<number_data_point::Value> {
        match &m.data {
            Some(MetricData::Gauge(Gauge { data_points: p })) | Some(MetricData::Sum(Sum { data_points: p, .. })) => {
                p.iter().filter_map(|p| p.value).collect()
            }
            other => panic!("not a number metric: {other:?}"),
        }
    }

    #[test]
    fn update_renames_by_strict_name() {
        let out = run(
            "- {include: a, action: update, new_name: b}",
            vec![gauge("a", vec![]), gauge("a.b", vec![]), gauge("c", vec![])],
        );
        assert_eq!(names(&out), ["b", "a.b", "c"]);
    }

    #[test]
    fn regexp_new_name_expands_captures_like_upstream() {
        let out = run(
            r#"- {include: '^system\.cpu\.(.*)$', match_type: regexp, action: update, new_name: 'system.processor.${1}.stat'}
- {include: '^disk\.(?P<dev>\w+)', match_type: regexp, action: update, new_name: 'dev.$dev'}
- {include: '^x(y)?$', match_type: regexp, action: update, new_name: '$1'}"#,
            vec![gauge("system.cpu.time", vec![]), gauge("disk.sda.io", vec![]), gauge("x", vec![])],
        );
        // The new name is the expanded template only: the part of the name after the match
        // (`.io`) is not kept. An empty expansion falls back to the template itself.
        assert_eq!(names(&out), ["system.processor.time.stat", "dev.sda", "$1"]);
    }

    #[test]
    fn insert_appends_a_changed_copy_and_leaves_the_original() {
        let out = run(
            "- include: a\n  action: insert\n  new_name: b\n  operations: [{action: add_label, new_label: copy, new_value: 'yes'}]",
            vec![gauge("a", vec![number(&[("k", "v")], AsInt(1))]), gauge("c", vec![])],
        );
        assert_eq!(names(&out), ["a", "c", "b"]);
        assert_eq!(point_labels(&out[0]), [["k=v"]]);
        assert_eq!(point_labels(&out[2]), [["k=v", "copy=yes"]]);
        assert_eq!(number_values(&out[2]), [AsInt(1)]);
    }

    #[test]
    fn insert_does_not_copy_its_own_copies_but_later_transforms_see_them() {
        let out = run(
            "- {include: '.*', match_type: regexp, action: insert, new_name: '${0}_copy'}\n\
             - {include: a_copy, action: update, new_name: renamed}",
            vec![gauge("a", vec![])],
        );
        assert_eq!(names(&out), ["a", "renamed"]);
    }

    #[test]
    fn update_with_match_labels_changes_only_matching_points_unless_all_match() {
        let t = "- include: m\n  action: update\n  new_name: n\n  experimental_match_labels: {state: idle}\n  operations:\n\
                 \x20   - {action: toggle_scalar_data_type}\n\
                 \x20   - {action: experimental_scale_value, experimental_scale: 10}\n\
                 \x20   - {action: update_label, label: state, value_actions: [{value: idle, new_value: IDLE}]}\n\
                 \x20   - {action: add_label, new_label: added, new_value: x}\n\
                 \x20   - {action: experimental_scale_value, experimental_scale: 10}\n";
        let mixed = gauge("m", vec![number(&[("state", "idle")], AsInt(1)), number(&[("state", "user")], AsInt(2))]);
        let out = run(t, vec![mixed]);
        // Not every point matches: no rename, no added label; per-point operations hit `idle` only,
        // and, as upstream, each one tests the labels as they are by then: once renamed to `IDLE`,
        // the point no longer matches and the second scaling skips it.
        assert_eq!(names(&out), ["m"]);
        assert_eq!(point_labels(&out[0]), [["state=IDLE"], ["state=user"]]);
        assert_eq!(number_values(&out[0]), [AsDouble(10.0), AsInt(2)]);

        let all_match = gauge("m", vec![number(&[("state", "idle")], AsInt(1))]);
        let out = run(t, vec![all_match]);
        assert_eq!(names(&out), ["n"]);
        assert_eq!(point_labels(&out[0]), [["state=IDLE", "added=x"]]);

        // No point matches: the metric is not selected at all.
        let none_match = gauge("m", vec![number(&[("state", "user")], AsInt(1))]);
        let out = run(t, vec![none_match]);
        assert_eq!(names(&out), ["m"]);
        assert_eq!(number_values(&out[0]), [AsInt(1)]);
    }

    #[test]
    fn insert_with_match_labels_copies_only_matching_points() {
        let out = run(
            "- {include: '^m$', match_type: regexp, action: insert, new_name: c, experimental_match_labels: {pod: '^web-'}}",
            vec![sum(
                "m",
                vec![
                    number(&[("pod", "web-1")], AsInt(1)),
                    number(&[("pod", "db-1")], AsInt(2)),
                    number(&[("pod", "web-2")], AsInt(3)),
                ],
            )],
        );
        assert_eq!(names(&out), ["m", "c"]);
        assert_eq!(number_values(&out[0]), [AsInt(1), AsInt(2), AsInt(3)]);
        assert_eq!(point_labels(&out[1]), [["pod=web-1"], ["pod=web-2"]]);
        let Some(MetricData::Sum(s)) = &out[1].data else { panic!() };
        assert!(s.is_monotonic && s.aggregation_temporality == 2, "the copy keeps the sum's kind");

        // Nothing matches: nothing is inserted.
        let out = run(
            "- {include: m, action: insert, new_name: c, experimental_match_labels: {pod: x}}",
            vec![gauge("m", vec![number(&[("pod", "y")], AsInt(1))])],
        );
        assert_eq!(names(&out), ["m"]);
    }

    #[test]
    fn an_absent_or_non_string_label_matches_as_the_empty_string() {
        let mut int_label = number(&[], AsInt(3));
        int_label.attributes.push(KeyValue {
            key: "pod".into(),
            value: Some(AnyValue { value: Some(AnyV::IntValue(7)) }),
            ..Default::default()
        });
        let out = run(
            "- {include: m, action: insert, new_name: c, experimental_match_labels: {pod: ''}}",
            vec![gauge("m", vec![number(&[], AsInt(1)), number(&[("pod", "p")], AsInt(2)), int_label])],
        );
        assert_eq!(number_values(&out[1]), [AsInt(1), AsInt(3)]);
    }

    #[test]
    fn add_label_keeps_existing_values_and_substitutes_the_version() {
        let out = run(
            "- include: m\n  action: update\n  operations:\n\
             \x20   - {action: add_label, new_label: v, new_value: 'collector {{version}}'}",
            vec![gauge("m", vec![number(&[], AsInt(1)), number(&[("v", "mine")], AsInt(2))])],
        );
        assert_eq!(point_labels(&out[0]), [vec![format!("v=collector {VERSION}")], vec!["v=mine".to_owned()]]);
    }

    #[test]
    fn update_label_renames_and_maps_values() {
        let mut int_state = number(&[], AsInt(4));
        int_state.attributes.push(KeyValue {
            key: "state".into(),
            value: Some(AnyValue { value: Some(AnyV::IntValue(1)) }),
            ..Default::default()
        });
        let out = run(
            "- include: m\n  action: update\n  operations:\n\
             \x20   - action: update_label\n      label: state\n      new_label: cpu_state\n\
             \x20     value_actions: [{value: idle, new_value: '-'}, {value: '', new_value: empty}]",
            vec![gauge(
                "m",
                vec![
                    number(&[("state", "idle"), ("cpu", "0")], AsInt(1)),
                    number(&[("cpu_state", "old"), ("state", "user")], AsInt(2)),
                    number(&[("cpu", "1")], AsInt(3)),
                    int_state,
                ],
            )],
        );
        assert_eq!(
            point_labels(&out[0]),
            [
                vec!["cpu_state=-", "cpu=0"],
                // An existing label of the new name is replaced.
                vec!["cpu_state=user"],
                // No `state`: untouched.
                vec!["cpu=1"],
                // A non-string value reads as "" for value_actions, and becomes a string.
                vec!["cpu_state=empty"],
            ]
        );
    }

    #[test]
    fn delete_label_value_drops_points_then_empty_metrics_scopes_and_resources() {
        let t = "- {include: m, action: update, operations: [{action: delete_label_value, label: state, label_value: idle}]}";
        let out = run(
            t,
            vec![gauge("m", vec![number(&[("state", "idle")], AsInt(1)), number(&[("state", "user")], AsInt(2))])],
        );
        assert_eq!(number_values(&out[0]), [AsInt(2)]);

        let mut req = request(vec![gauge("m", vec![number(&[("state", "idle")], AsInt(1))])]);
        req.resource_metrics.push(ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics: vec![gauge("m", vec![])], ..Default::default() }],
            ..Default::default()
        });
        processor(t).apply(&mut req);
        // The first resource lost its only point, hence its metric, scope and itself; a metric that
        // had no points to begin with is kept.
        assert_eq!(req.resource_metrics.len(), 1);
        assert_eq!(names(&req.resource_metrics[0].scope_metrics[0].metrics), ["m"]);
    }

    #[test]
    fn empty_scopes_are_dropped_even_without_transforms() {
        let mut req = request(vec![]);
        processor("  []").apply(&mut req);
        assert!(req.resource_metrics.is_empty());
    }

    #[test]
    fn toggle_scalar_data_type_flips_gauge_and_sum_values_only() {
        let t =
            "- {include: '.*', match_type: regexp, action: update, operations: [{action: toggle_scalar_data_type}]}";
        let out = run(
            t,
            vec![
                gauge("g", vec![number(&[], AsInt(3)), number(&[], AsDouble(-2.9))]),
                sum("s", vec![number(&[], AsDouble(7.5))]),
                histogram("h", &[]),
            ],
        );
        assert_eq!(number_values(&out[0]), [AsDouble(3.0), AsInt(-2)]);
        assert_eq!(number_values(&out[1]), [AsInt(7)]);
        assert_eq!(out[2], histogram("h", &[]));
    }

    #[test]
    fn scale_value_multiplies_numbers_and_histograms_and_leaves_other_types() {
        let t = "- include: '.*'\n  match_type: regexp\n  action: update\n  operations: [{action: experimental_scale_value, experimental_scale: 1000}]";
        let out = run(
            t,
            vec![
                gauge("g", vec![number(&[], AsInt(3)), number(&[], AsDouble(0.0025))]),
                sum("s", vec![number(&[], AsInt(-2))]),
                histogram("h", &[]),
                exp_histogram("e", &[]),
                summary("q", &[]),
            ],
        );
        assert_eq!(number_values(&out[0]), [AsInt(3000), AsDouble(2.5)]);
        assert_eq!(number_values(&out[1]), [AsInt(-2000)]);
        let Some(MetricData::Histogram(h)) = &out[2].data else { panic!() };
        let p = &h.data_points[0];
        assert_eq!((p.sum, p.min, p.max), (Some(1500.0), Some(250.0), None));
        assert_eq!(p.explicit_bounds, [500.0, 1000.0]);
        assert_eq!(p.bucket_counts, [1, 2, 0], "counts are not values");
        let ex: Vec<_> = p.exemplars.iter().filter_map(|e| e.value).collect();
        assert_eq!(ex, [exemplar::Value::AsInt(3000), exemplar::Value::AsDouble(500.0)]);
        assert_eq!(out[3], exp_histogram("e", &[]));
        assert_eq!(out[4], summary("q", &[]));
    }

    #[test]
    fn label_operations_reach_every_metric_type() {
        let t = "- include: '.*'\n  match_type: regexp\n  action: update\n  operations:\n\
                 \x20   - {action: update_label, label: a, new_label: b}\n\
                 \x20   - {action: add_label, new_label: c, new_value: d}";
        let out = run(
            t,
            vec![
                gauge("g", vec![number(&[("a", "1")], AsInt(1))]),
                sum("s", vec![number(&[("a", "1")], AsInt(1))]),
                histogram("h", &[("a", "1")]),
                exp_histogram("e", &[("a", "1")]),
                summary("q", &[("a", "1")]),
            ],
        );
        for m in &out {
            assert_eq!(point_labels(m), [["b=1", "c=d"]], "{}", m.name);
        }
    }

    #[test]
    fn unimplemented_actions_are_refused_when_building_too() {
        let build = |t: &str| {
            let cfg: MetricsTransformConfig = serde_yaml::from_str(&format!("transforms:\n{t}")).unwrap();
            MetricsTransform::new(&cfg).unwrap_err()
        };
        assert_eq!(
            build("- {include: a, action: combine, new_name: b}"),
            "transforms[0].action: combine is not supported by this collector"
        );
        assert_eq!(
            build("- {include: a, action: update, operations: [{action: add_label}, {action: aggregate_labels}]}"),
            "transforms[0].operations[1].action: aggregate_labels is not supported by this collector"
        );
    }

    #[test]
    fn processes_decoded_metrics_through_the_processor_interface() {
        let p = processor("- {include: a, action: update, new_name: b}");
        let out = p.process(Payload::Metrics(request(vec![gauge("a", vec![])])).into()).unwrap();
        let Payload::Metrics(r) = out.decode().unwrap() else { panic!("not metrics") };
        assert_eq!(r.resource_metrics[0].scope_metrics[0].metrics[0].name, "b");
    }
}
