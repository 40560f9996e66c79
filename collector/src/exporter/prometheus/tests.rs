//! Unit tests for the exporter's pure parts: accumulation, expiry, caps and rendering.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value as V};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point::Value as NV,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::accumulator::{Accumulator, IngestOutcome, Settings};
use super::render::render;

const T0: u64 = 1_700_000_000_000_000_000;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(V::StringValue(v.into())) }), ..Default::default() }
}

fn point(v: f64, t: u64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint { attributes: attrs, time_unix_nano: t, value: Some(NV::AsDouble(v)), ..Default::default() }
}

fn sum(name: &str, unit: &str, temporality: i32, monotonic: bool, pts: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("{name} help"),
        data: Some(Data::Sum(Sum { data_points: pts, aggregation_temporality: temporality, is_monotonic: monotonic })),
        ..Default::default()
    }
}

fn gauge(name: &str, unit: &str, pts: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(Data::Gauge(Gauge { data_points: pts })),
        ..Default::default()
    }
}

fn histogram(name: &str, temporality: i32, counts: Vec<u64>, t: u64) -> Metric {
    let count = counts.iter().sum();
    Metric {
        name: name.into(),
        unit: "s".into(),
        description: "Duration.".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                attributes: vec![kv("http.route", "/reviews")],
                time_unix_nano: t,
                count,
                sum: Some(1.5),
                bucket_counts: counts,
                explicit_bounds: vec![0.1, 1.0],
                ..Default::default()
            }],
            aggregation_temporality: temporality,
        })),
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope { name: "reviews".into(), ..Default::default() }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn svc() -> Vec<KeyValue> {
    vec![kv("service.name", "reviews"), kv("service.instance.id", "pod-1"), kv("k8s.namespace.name", "shop")]
}

#[test]
fn renders_counter_gauge_histogram_with_job_instance_and_target_info() {
    let mut acc = Accumulator::new(Settings::default());
    let now = Instant::now();
    let out = acc.ingest(
        &request(
            svc(),
            vec![
                sum("http.requests", "{request}", 2, true, vec![point(7.0, T0, vec![kv("http.method", "GET")])]),
                gauge("queue.depth", "", vec![point(3.5, T0, vec![])]),
                histogram("http.server.duration", 2, vec![1, 2, 3], T0),
            ],
        ),
        now,
    );
    assert_eq!(out, IngestOutcome { stored: 3, unsupported: 0, refused: 0 });
    let text = render(&acc, false);
    let expected = r#"# HELP http_requests_total http.requests help
# TYPE http_requests_total counter
http_requests_total{http_method="GET",instance="pod-1",job="reviews",otel_scope_name="reviews"} 7
# HELP http_server_duration_seconds Duration.
# TYPE http_server_duration_seconds histogram
http_server_duration_seconds_bucket{http_route="/reviews",instance="pod-1",job="reviews",otel_scope_name="reviews",le="0.1"} 1
http_server_duration_seconds_bucket{http_route="/reviews",instance="pod-1",job="reviews",otel_scope_name="reviews",le="1"} 3
http_server_duration_seconds_bucket{http_route="/reviews",instance="pod-1",job="reviews",otel_scope_name="reviews",le="+Inf"} 6
http_server_duration_seconds_sum{http_route="/reviews",instance="pod-1",job="reviews",otel_scope_name="reviews"} 1.5
http_server_duration_seconds_count{http_route="/reviews",instance="pod-1",job="reviews",otel_scope_name="reviews"} 6
# HELP queue_depth queue.depth
# TYPE queue_depth gauge
queue_depth{instance="pod-1",job="reviews",otel_scope_name="reviews"} 3.5
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{instance="pod-1",job="reviews",k8s_namespace_name="shop"} 1
"#;
    assert_eq!(text, expected);
}

#[test]
fn cumulative_keeps_latest_and_delta_accumulates() {
    let mut acc = Accumulator::new(Settings::default());
    let now = Instant::now();
    for (v, t) in [(5.0, T0), (9.0, T0 + 10)] {
        acc.ingest(&request(vec![], vec![sum("c", "", 2, true, vec![point(v, t, vec![])])]), now);
    }
    for (v, t) in [(2.0, T0), (3.0, T0 + 10)] {
        acc.ingest(&request(vec![], vec![sum("d", "", 1, true, vec![point(v, t, vec![])])]), now);
    }
    // A repeated delta (same timestamp) and an out-of-order cumulative point are dropped.
    let o = acc.ingest(&request(vec![], vec![sum("d", "", 1, true, vec![point(3.0, T0 + 10, vec![])])]), now);
    assert_eq!(o.unsupported, 1);
    let o = acc.ingest(&request(vec![], vec![sum("c", "", 2, true, vec![point(1.0, T0, vec![])])]), now);
    assert_eq!(o.unsupported, 1);
    let text = render(&acc, false);
    assert!(text.contains("c_total{otel_scope_name=\"reviews\"} 9\n"), "{text}");
    assert!(text.contains("d_total{otel_scope_name=\"reviews\"} 5\n"), "{text}");
}

#[test]
fn delta_histograms_accumulate() {
    let mut acc = Accumulator::new(Settings::default());
    let now = Instant::now();
    acc.ingest(&request(vec![], vec![histogram("h", 1, vec![1, 0, 0], T0)]), now);
    acc.ingest(&request(vec![], vec![histogram("h", 1, vec![0, 1, 1], T0 + 1)]), now);
    let text = render(&acc, false);
    assert!(
        text.contains("h_seconds_bucket{http_route=\"/reviews\",otel_scope_name=\"reviews\",le=\"1\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("h_seconds_count{http_route=\"/reviews\",otel_scope_name=\"reviews\"} 3\n"), "{text}");
    assert!(text.contains("h_seconds_sum{http_route=\"/reviews\",otel_scope_name=\"reviews\"} 3\n"), "{text}");
}

#[test]
fn unconvertible_points_are_counted() {
    let mut acc = Accumulator::new(Settings::default());
    let exp = Metric {
        name: "e".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint::default(); 2],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    };
    let unspecified = sum("u", "", 0, true, vec![point(1.0, T0, vec![])]);
    let counter = sum("x", "", 2, true, vec![point(1.0, T0, vec![])]);
    let o = acc.ingest(&request(vec![], vec![exp, unspecified, counter]), Instant::now());
    assert_eq!(o, IngestOutcome { stored: 1, unsupported: 3, refused: 0 });
    // `x.total` as a gauge normalises to `x_total` too: a type conflict, the existing type wins.
    let conflicting = gauge("x.total", "", vec![point(1.0, T0, vec![kv("a", "b")])]);
    let o = acc.ingest(&request(vec![], vec![conflicting]), Instant::now());
    assert_eq!(o, IngestOutcome { stored: 0, unsupported: 1, refused: 0 });
    assert!(render(&acc, false).contains("# TYPE x_total counter\n"));
}

#[test]
fn series_expire_and_the_cap_refuses_new_series() {
    let settings = Settings { expiration: Duration::from_secs(60), max_series: 2, ..Settings::default() };
    let mut acc = Accumulator::new(settings);
    let t = Instant::now();
    let pts = |n: usize| (0..n).map(|i| point(1.0, T0, vec![kv("i", &i.to_string())])).collect::<Vec<_>>();
    let o = acc.ingest(&request(vec![], vec![gauge("g", "", pts(3))]), t);
    assert_eq!(o, IngestOutcome { stored: 2, unsupported: 0, refused: 1 });
    assert_eq!(acc.series_count(), 2);
    // Existing series still update at the cap.
    let o = acc.ingest(
        &request(vec![], vec![gauge("g", "", vec![point(2.0, T0 + 1, vec![kv("i", "0")])])]),
        t + Duration::from_secs(50),
    );
    assert_eq!(o.stored, 1);
    acc.expire(t + Duration::from_secs(100));
    assert_eq!(acc.series_count(), 1);
    assert!(render(&acc, false).contains("g{i=\"0\",otel_scope_name=\"reviews\"} 2\n"));
    acc.expire(t + Duration::from_secs(200));
    assert_eq!(acc.series_count(), 0);
    assert_eq!(render(&acc, false), "");
}

#[test]
fn options_namespace_const_labels_resource_conversion_and_timestamps() {
    let settings = Settings {
        namespace: Some("shop".into()),
        const_labels: vec![("region".into(), "eu".into())],
        resource_to_telemetry: true,
        ..Settings::default()
    };
    let mut acc = Accumulator::new(settings);
    acc.ingest(&request(svc(), vec![gauge("cpu.utilization", "1", vec![point(0.25, T0, vec![])])]), Instant::now());
    let text = render(&acc, true);
    assert!(
        text.contains("shop_cpu_utilization_ratio{instance=\"pod-1\",job=\"reviews\",k8s_namespace_name=\"shop\",otel_scope_name=\"reviews\",region=\"eu\",service_instance_id=\"pod-1\",service_name=\"reviews\"} 0.25 1700000000000\n"),
        "{text}"
    );
    assert!(
        text.contains("shop_target_info{instance=\"pod-1\",job=\"reviews\",k8s_namespace_name=\"shop\"} 1\n"),
        "{text}"
    );
}

#[test]
fn scope_attributes_become_labels_and_job_uses_the_service_namespace() {
    let mut acc = Accumulator::new(Settings::default());
    let mut req = request(
        vec![kv("service.name", "reviews"), kv("service.namespace", "shop")],
        vec![gauge("g", "", vec![point(1.0, T0, vec![])])],
    );
    let scope = &mut req.resource_metrics[0].scope_metrics[0];
    scope.schema_url = "https://opentelemetry.io/schemas/1.26.0".into();
    if let Some(s) = scope.scope.as_mut() {
        s.version = "1.2".into();
        s.attributes = vec![kv("lib.kind", "http")];
    }
    acc.ingest(&req, Instant::now());
    let text = render(&acc, false);
    assert!(
        text.contains("g{job=\"shop/reviews\",otel_scope_lib_kind=\"http\",otel_scope_name=\"reviews\",otel_scope_schema_url=\"https://opentelemetry.io/schemas/1.26.0\",otel_scope_version=\"1.2\"} 1\n"),
        "{text}"
    );
    // target_info is emitted for every resource with a job, even without other attributes.
    assert!(text.ends_with("# TYPE target_info gauge\ntarget_info{job=\"shop/reviews\"} 1\n"), "{text}");
}

#[test]
fn colliding_label_names_join_values_and_values_are_escaped() {
    let mut acc = Accumulator::new(Settings::default());
    let attrs = vec![kv("a.b", "x"), kv("a_b", "y\"z\n")];
    acc.ingest(&request(vec![], vec![gauge("g", "", vec![point(1.0, T0, attrs)])]), Instant::now());
    let text = render(&acc, false);
    assert!(text.contains("g{a_b=\"x;y\\\"z\\n\",otel_scope_name=\"reviews\"} 1\n"), "{text}");
}

#[test]
fn delta_histogram_counts_saturate_instead_of_wrapping() {
    let huge = |counts: Vec<u64>, count: u64, t: u64| {
        let mut m = histogram("h", 1, vec![0, 0, 0], t);
        if let Some(Data::Histogram(h)) = &mut m.data {
            h.data_points[0].bucket_counts = counts;
            h.data_points[0].count = count;
        }
        m
    };
    let mut acc = Accumulator::new(Settings::default());
    let now = Instant::now();
    acc.ingest(&request(vec![], vec![huge(vec![u64::MAX, u64::MAX, 0], u64::MAX, T0)]), now);
    acc.ingest(&request(vec![], vec![huge(vec![5, 0, 0], 5, T0 + 1)]), now);
    let text = render(&acc, false);
    let max = u64::MAX;
    assert!(
        text.contains(&format!(
            "h_seconds_bucket{{http_route=\"/reviews\",otel_scope_name=\"reviews\",le=\"0.1\"}} {max}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "h_seconds_bucket{{http_route=\"/reviews\",otel_scope_name=\"reviews\",le=\"1\"}} {max}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("h_seconds_count{{http_route=\"/reviews\",otel_scope_name=\"reviews\"}} {max}\n")),
        "{text}"
    );
}

#[test]
fn non_finite_values_and_escapes_are_written_as_prometheus_reads_them() {
    let mut acc = Accumulator::new(Settings::default());
    let mut g = gauge(
        "g",
        "",
        vec![
            point(f64::INFINITY, T0, vec![kv("v", "up")]),
            point(f64::NEG_INFINITY, T0, vec![kv("v", "down")]),
            point(f64::NAN, T0, vec![kv("v", "C:\\dir \"x\"\n")]),
        ],
    );
    g.description = "Help with C:\\dir and\na second line.".into();
    acc.ingest(&request(vec![], vec![g]), Instant::now());
    let text = render(&acc, false);
    let expected = r#"# HELP g Help with C:\\dir and\na second line.
# TYPE g gauge
g{otel_scope_name="reviews",v="C:\\dir \"x\"\n"} NaN
g{otel_scope_name="reviews",v="down"} -Inf
g{otel_scope_name="reviews",v="up"} +Inf
"#;
    assert_eq!(text, expected);
    prom_text::promtool::check_metrics(&text).unwrap_or_else(|e| panic!("{e}"));
}
