//! Turning scraped numbers into OTLP: each scraper declares its metrics once as [`MetricDef`]s
//! (name, description, unit, Sum/Gauge, monotonic, value type — copied from the upstream
//! receiver's `metadata.yaml`), fills [`Points`], and [`resource_metrics`] wraps a scraper's
//! metrics the way upstream's generated metrics builder does.

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value as V};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

pub use collector_config::hostmetrics::metrics::{MetricDef, Shape, ValueType, gauge, sum};

/// Schema URL upstream's generated metrics builders set on every resource.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.9.0";

/// Scope name prefix: upstream names each scraper's scope after its Go package, and
/// `otel_scope_name` labels in Prometheus and dashboards key on it, so we keep the same names.
const SCOPE_PREFIX: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/";

/// A scraped number; converted to the metric's declared [`ValueType`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// An integer (counters, byte counts).
    Int(i64),
    /// A float (seconds, load averages).
    Double(f64),
}

impl From<u64> for Num {
    fn from(v: u64) -> Self {
        // OTLP ints are signed; kernel counters never reach 2^63 in practice, saturate if they do.
        Num::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<i64> for Num {
    fn from(v: i64) -> Self {
        Num::Int(v)
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Self {
        Num::Double(v)
    }
}

/// When a scrape happened, and since when its cumulative values count (boot time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Boot time, nanoseconds since the epoch; upstream sets it on Sums and Gauges alike.
    pub start_unix_nano: u64,
    /// Time of the scrape, nanoseconds since the epoch.
    pub time_unix_nano: u64,
}

/// Data points being collected for one metric.
#[derive(Debug)]
pub struct Points {
    def: &'static MetricDef,
    stamp: Stamp,
    points: Vec<NumberDataPoint>,
}

impl Points {
    /// No points yet for `def`.
    pub fn new(def: &'static MetricDef, stamp: Stamp) -> Self {
        Self { def, stamp, points: Vec::new() }
    }

    /// Adds one point with string attributes `attrs` (in upstream's attribute order).
    pub fn push(&mut self, attrs: &[(&str, &str)], value: impl Into<Num>) {
        let value = match (self.def.value, value.into()) {
            (ValueType::Int, Num::Int(i)) => number_data_point::Value::AsInt(i),
            (ValueType::Int, Num::Double(f)) => number_data_point::Value::AsInt(f as i64),
            (ValueType::Double, Num::Double(f)) => number_data_point::Value::AsDouble(f),
            (ValueType::Double, Num::Int(i)) => number_data_point::Value::AsDouble(i as f64),
        };
        self.points.push(NumberDataPoint {
            attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
            start_time_unix_nano: self.stamp.start_unix_nano,
            time_unix_nano: self.stamp.time_unix_nano,
            value: Some(value),
            ..Default::default()
        });
    }

    /// The finished metric, or `None` without points (upstream emits no empty metrics).
    pub fn finish(self) -> Option<Metric> {
        if self.points.is_empty() {
            return None;
        }
        let data = match self.def.shape {
            Shape::Sum { monotonic } => Data::Sum(Sum {
                data_points: self.points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: monotonic,
            }),
            Shape::Gauge => Data::Gauge(Gauge { data_points: self.points }),
        };
        Some(Metric {
            name: self.def.name.to_owned(),
            description: self.def.description.to_owned(),
            unit: self.def.unit.to_owned(),
            data: Some(data),
            ..Default::default()
        })
    }
}

/// A string attribute.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(V::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

/// One scraper's metrics as upstream emits them: an empty resource (no resource attributes are
/// enabled by default) with the semantic-conventions schema URL, one scope named after the
/// scraper, metrics sorted by name. `None` when there are no metrics.
pub fn resource_metrics(scraper: &str, mut metrics: Vec<Metric>) -> Option<ResourceMetrics> {
    if metrics.is_empty() {
        return None;
    }
    metrics.sort_by(|a, b| a.name.cmp(&b.name));
    Some(ResourceMetrics {
        resource: Some(Resource::default()),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: format!("{SCOPE_PREFIX}{scraper}scraper"),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: SCHEMA_URL.to_owned(),
    })
}

/// Test helpers: read metrics back by name and attributes.
#[cfg(test)]
pub mod read {
    use super::*;

    /// The metric called `name`.
    pub fn metric<'a>(metrics: &'a [Metric], name: &str) -> &'a Metric {
        metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no metric {name} in {:?}", metrics.iter().map(|m| &m.name).collect::<Vec<_>>()))
    }

    /// The data points of a Sum or Gauge.
    pub fn points(m: &Metric) -> &[NumberDataPoint] {
        match &m.data {
            Some(Data::Sum(s)) => &s.data_points,
            Some(Data::Gauge(g)) => &g.data_points,
            other => panic!("{}: not a number metric: {other:?}", m.name),
        }
    }

    /// Attributes of a point as `key=value` pairs in order.
    pub fn attrs(p: &NumberDataPoint) -> Vec<(String, String)> {
        p.attributes
            .iter()
            .map(|a| {
                let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(V::StringValue(s)) => s.clone(),
                    other => format!("{other:?}"),
                };
                (a.key.clone(), v)
            })
            .collect()
    }

    /// The value of the point of `name` whose attributes include all of `want`.
    pub fn value(metrics: &[Metric], name: &str, want: &[(&str, &str)]) -> Num {
        let m = metric(metrics, name);
        let matches: Vec<&NumberDataPoint> = points(m)
            .iter()
            .filter(|p| {
                let a = attrs(p);
                want.iter().all(|(k, v)| a.iter().any(|(ak, av)| ak == k && av == v))
            })
            .collect();
        assert_eq!(matches.len(), 1, "{name}{want:?}: expected one point, got {matches:?}");
        match matches[0].value {
            Some(number_data_point::Value::AsInt(i)) => Num::Int(i),
            Some(number_data_point::Value::AsDouble(d)) => Num::Double(d),
            None => panic!("{name}: point without value"),
        }
    }

    /// Checks name, unit, description, shape and value type of `m` against `def`, and that every
    /// point carries exactly the attribute keys `keys` in that order.
    pub fn assert_shape(m: &Metric, def: &MetricDef, keys: &[&str]) {
        assert_eq!((m.name.as_str(), m.unit.as_str(), m.description.as_str()), (def.name, def.unit, def.description));
        match (&m.data, def.shape) {
            (Some(Data::Sum(s)), Shape::Sum { monotonic }) => {
                assert_eq!(s.is_monotonic, monotonic, "{}", def.name);
                assert_eq!(s.aggregation_temporality, AggregationTemporality::Cumulative as i32, "{}", def.name);
            }
            (Some(Data::Gauge(_)), Shape::Gauge) => {}
            (other, shape) => panic!("{}: expected {shape:?}, got {other:?}", def.name),
        }
        for p in points(m) {
            let got: Vec<String> = attrs(p).into_iter().map(|(k, _)| k).collect();
            assert_eq!(got, keys, "{}", def.name);
            let is_int = matches!(p.value, Some(number_data_point::Value::AsInt(_)));
            assert_eq!(is_int, def.value == ValueType::Int, "{}: value type", def.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp { start_unix_nano: 1_000, time_unix_nano: 2_000 };
    static DEF: MetricDef = sum("system.x", "X.", "By", true, ValueType::Int);
    static G: MetricDef = gauge("system.g", "G.", "s", ValueType::Double);

    #[test]
    fn sums_are_cumulative_with_boot_start_time() {
        let mut p = Points::new(&DEF, STAMP);
        p.push(&[("device", "vda"), ("direction", "read")], 5u64);
        let m = p.finish().expect("metric");
        read::assert_shape(&m, &DEF, &["device", "direction"]);
        let pt = &read::points(&m)[0];
        assert_eq!((pt.start_time_unix_nano, pt.time_unix_nano), (1_000, 2_000));
        assert_eq!(pt.value, Some(number_data_point::Value::AsInt(5)));
    }

    #[test]
    fn values_follow_the_declared_type() {
        let mut p = Points::new(&G, STAMP);
        p.push(&[], 7i64);
        let m = p.finish().expect("metric");
        read::assert_shape(&m, &G, &[]);
        assert_eq!(read::points(&m)[0].value, Some(number_data_point::Value::AsDouble(7.0)));
        assert_eq!(Num::from(u64::MAX), Num::Int(i64::MAX));
    }

    #[test]
    fn empty_metrics_and_scrapers_are_left_out() {
        assert!(Points::new(&DEF, STAMP).finish().is_none());
        assert!(resource_metrics("cpu", vec![]).is_none());
    }

    #[test]
    fn resource_is_empty_with_schema_and_scraper_scope() {
        let mut a = Points::new(&G, STAMP);
        a.push(&[], 1.0);
        let mut b = Points::new(&DEF, STAMP);
        b.push(&[], 1u64);
        let rm = resource_metrics("load", vec![b.finish().expect("b"), a.finish().expect("a")]).expect("rm");
        assert_eq!(rm.resource, Some(Resource::default()));
        assert_eq!(rm.schema_url, SCHEMA_URL);
        let scope = rm.scope_metrics[0].scope.as_ref().expect("scope");
        assert_eq!(
            scope.name,
            "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/loadscraper"
        );
        let names: Vec<&str> = rm.scope_metrics[0].metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["system.g", "system.x"], "sorted by name like upstream's builder");
    }
}
