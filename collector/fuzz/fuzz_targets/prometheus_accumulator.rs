//! Fuzz target: the Prometheus exporter's accumulator (OTLP metrics in, latest series out)
//! must never panic or overflow — extreme counts, NaN and infinite values, out-of-order and
//! repeated points, delta/cumulative mixes and type conflicts included — and its render must
//! not panic either. Requests are built from the input with `arbitrary` over a small alphabet
//! of names and attributes, so series collide and accumulate instead of all being distinct.
//! Every request is also folded in encoded (`ingest_encoded`, as it arrives from an OTLP
//! receiver) into a second accumulator, which must end up in the same state.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest as Request;
use prost::Message as _;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as AV};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric::Data, number_data_point::Value as NV,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use telemetry_collector::exporter::prometheus::accumulator::{Accumulator, Settings};
use telemetry_collector::exporter::prometheus::render::render;

const NAMES: &[&str] = &["a", "b", "a_total", "x.y", "http.server.duration", "", "9bad"];
const UNITS: &[&str] = &["", "s", "By", "1", "{requests}", "ms"];
const KEYS: &[&str] = &["k", "service.name", "service.namespace", "le", "quantile", "k-2", ""];

fn kv(u: &mut Unstructured) -> Result<KeyValue> {
    let key = (*u.choose(KEYS)?).to_owned();
    let value = match u.int_in_range(0..=2)? {
        0 => AV::StringValue((*u.choose(NAMES)?).to_owned()),
        1 => AV::IntValue(u.arbitrary()?),
        _ => AV::DoubleValue(u.arbitrary()?),
    };
    Ok(KeyValue { key, value: Some(AnyValue { value: Some(value) }), ..Default::default() })
}

fn attrs(u: &mut Unstructured) -> Result<Vec<KeyValue>> {
    (0..u.int_in_range(0..=3)?).map(|_| kv(u)).collect()
}

fn number(u: &mut Unstructured) -> Result<NumberDataPoint> {
    Ok(NumberDataPoint {
        attributes: attrs(u)?,
        start_time_unix_nano: u.arbitrary()?,
        time_unix_nano: u.arbitrary()?,
        value: Some(if u.arbitrary()? { NV::AsInt(u.arbitrary()?) } else { NV::AsDouble(u.arbitrary()?) }),
        flags: u.int_in_range(0..=1)?,
        ..Default::default()
    })
}

fn histogram(u: &mut Unstructured) -> Result<HistogramDataPoint> {
    let bounds: Vec<f64> = (0..u.int_in_range(0..=4)?).map(|_| u.arbitrary()).collect::<Result<_>>()?;
    let counts: Vec<u64> = (0..u.int_in_range(0..=bounds.len() + 1)?).map(|_| u.arbitrary()).collect::<Result<_>>()?;
    Ok(HistogramDataPoint {
        attributes: attrs(u)?,
        start_time_unix_nano: u.arbitrary()?,
        time_unix_nano: u.arbitrary()?,
        count: u.arbitrary()?,
        sum: u.arbitrary()?,
        bucket_counts: counts,
        explicit_bounds: bounds,
        flags: u.int_in_range(0..=1)?,
        min: u.arbitrary()?,
        max: u.arbitrary()?,
        ..Default::default()
    })
}

fn metric(u: &mut Unstructured) -> Result<Metric> {
    let points = u.int_in_range(0..=3)?;
    let temporality = u.int_in_range(0..=3)?;
    let data = match u.int_in_range(0..=4)? {
        0 => Data::Gauge(Gauge { data_points: (0..points).map(|_| number(u)).collect::<Result<_>>()? }),
        1 => Data::Sum(Sum {
            data_points: (0..points).map(|_| number(u)).collect::<Result<_>>()?,
            aggregation_temporality: temporality,
            is_monotonic: u.arbitrary()?,
        }),
        2 => Data::Histogram(Histogram {
            data_points: (0..points).map(|_| histogram(u)).collect::<Result<_>>()?,
            aggregation_temporality: temporality,
        }),
        3 => Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint { count: u.arbitrary()?, ..Default::default() }],
            aggregation_temporality: temporality,
        }),
        _ => Data::Summary(Summary {
            data_points: (0..points)
                .map(|_| {
                    Ok(SummaryDataPoint {
                        attributes: attrs(u)?,
                        count: u.arbitrary()?,
                        sum: u.arbitrary()?,
                        quantile_values: vec![ValueAtQuantile { quantile: u.arbitrary()?, value: u.arbitrary()? }],
                        time_unix_nano: u.arbitrary()?,
                        ..Default::default()
                    })
                })
                .collect::<Result<_>>()?,
        }),
    };
    Ok(Metric {
        name: (*u.choose(NAMES)?).to_owned(),
        unit: (*u.choose(UNITS)?).to_owned(),
        data: Some(data),
        ..Default::default()
    })
}

fn request(u: &mut Unstructured) -> Result<ExportMetricsServiceRequest> {
    Ok(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: attrs(u)?, ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                metrics: (0..u.int_in_range(1..=4)?).map(|_| metric(u)).collect::<Result<_>>()?,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let settings = Settings {
        namespace: u.arbitrary::<bool>().unwrap_or(false).then(|| "ns".to_owned()),
        resource_to_telemetry: u.arbitrary().unwrap_or(false),
        add_metric_suffixes: u.arbitrary().unwrap_or(true),
        expiration: Duration::from_secs(60),
        max_series: 16,
        ..Settings::default()
    };
    let mut encoded = Accumulator::new(settings.clone());
    let mut acc = Accumulator::new(settings);
    let mut now = Instant::now();
    while let Ok(req) = request(&mut u) {
        let outcome = acc.ingest(&req, now);
        let body = Request::encode_to_vec(&req);
        assert_eq!(encoded.ingest_encoded(&body, now), Ok(outcome), "encoded and decoded outcomes differ");
        now += Duration::from_secs(u.int_in_range(0..=90).unwrap_or(0));
        acc.expire(now);
        encoded.expire(now);
        let stored = acc.families().values().map(|f| f.series.len()).sum::<usize>() + acc.targets().count();
        assert_eq!(acc.series_count(), stored, "the series counter drifted from the state");
        assert!(stored <= 16, "max_series exceeded: {stored}");
        let timestamps = u.arbitrary().unwrap_or(false);
        assert_eq!(render(&acc, timestamps), render(&encoded, timestamps), "encoded and decoded states differ");
        if u.is_empty() {
            break;
        }
    }
});
