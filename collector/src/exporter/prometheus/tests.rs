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

/// Ingests every request both decoded and as its encoding into two accumulators with `settings`;
/// asserts the outcomes and the rendered state agree (with and without timestamps).
fn both_paths(settings: &Settings, requests: &[Vec<u8>]) -> String {
    use prost::Message as _;
    let mut decoded = Accumulator::new(settings.clone());
    let mut encoded = Accumulator::new(settings.clone());
    let now = Instant::now();
    for (i, body) in requests.iter().enumerate() {
        let req = ExportMetricsServiceRequest::decode(body.as_slice()).expect("a valid request");
        let a = decoded.ingest(&req, now);
        let b = encoded.ingest_encoded(body, now).expect("framed");
        assert_eq!(a, b, "outcomes of request {i} differ");
    }
    assert_eq!(decoded.series_count(), encoded.series_count());
    assert_eq!(render(&decoded, true), render(&encoded, true));
    render(&encoded, false)
}

fn encoded(req: &ExportMetricsServiceRequest) -> Vec<u8> {
    prost::Message::encode_to_vec(req)
}

#[test]
fn encoded_requests_give_the_state_decoded_ones_give() {
    use opentelemetry_proto::tonic::metrics::v1::{Summary, SummaryDataPoint, summary_data_point::ValueAtQuantile};
    let summary = Metric {
        name: "rpc.latency".into(),
        unit: "ms".into(),
        data: Some(Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                attributes: vec![kv("rpc", "get")],
                count: 3,
                sum: 7.5,
                time_unix_nano: T0,
                quantile_values: vec![
                    ValueAtQuantile { quantile: 0.5, value: 2.0 },
                    ValueAtQuantile { quantile: 0.99, value: 4.0 },
                ],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let mut no_value = point(1.0, T0, vec![kv("a", "b")]);
    no_value.flags = 1;
    let mut int_point = point(0.0, T0 + 5, vec![kv("a", "b"), kv("2fa", "x"), kv("a.b", "y"), kv("a_b", "z")]);
    int_point.value = Some(NV::AsInt(-4));
    let requests = vec![
        encoded(&request(
            svc(),
            vec![
                sum("http.requests", "{request}", 2, true, vec![point(7.0, T0, vec![kv("http.method", "GET")])]),
                gauge("queue.depth", "", vec![point(3.5, T0, vec![]), no_value, int_point]),
                histogram("http.server.duration", 2, vec![1, 2, 3], T0),
                histogram("delta.duration", 1, vec![1, 0, 0], T0),
                histogram("bad.buckets", 2, vec![1, 2], T0),
                sum("d", "", 1, false, vec![point(2.0, T0, vec![]), point(3.0, T0 + 1, vec![])]),
                sum("u", "", 0, true, vec![point(1.0, T0, vec![])]),
                summary,
                Metric { name: "nodata".into(), ..Default::default() },
            ],
        )),
        encoded(&request(svc(), vec![histogram("delta.duration", 1, vec![0, 1, 1], T0 + 1)])),
        encoded(&request(
            vec![kv("service.namespace", "shop")],
            vec![sum("d", "", 1, false, vec![point(3.0, T0, vec![])])],
        )),
        encoded(&crate::pdata::wire::tests::metrics()),
    ];
    for settings in [
        Settings::default(),
        Settings {
            namespace: Some("ns".into()),
            const_labels: vec![("env".into(), "prod".into()), ("job".into(), "const".into())],
            resource_to_telemetry: true,
            add_metric_suffixes: false,
            ..Settings::default()
        },
        Settings { max_series: 3, ..Settings::default() },
    ] {
        let capped = settings.max_series < 10;
        let text = both_paths(&settings, &requests);
        assert!(capped || text.contains("rpc_latency"), "{text}");
    }
}

#[test]
fn encoded_shapes_protobuf_merges_read_as_decoded() {
    let req = |metrics| encoded(&request(svc(), metrics));
    let g = gauge("g", "", vec![point(1.0, T0, vec![kv("k", "1")])]);
    let s = sum("g", "", 2, true, vec![point(2.0, T0, vec![kv("k", "2")])]);
    // A metric sent as gauge, then sum, then gauge (the last type wins; the same type merges),
    // with its name repeated.
    let metric = [
        prost::Message::encode_to_vec(&g),
        prost::Message::encode_to_vec(&Metric { name: "other".into(), ..s.clone() }),
        prost::Message::encode_to_vec(&g),
        prost::Message::encode_to_vec(&gauge("", "", vec![point(5.0, T0, vec![kv("k", "3")])])),
    ]
    .concat();
    let mut body = req(vec![]);
    // request → resource_metrics[0] → scope_metrics[0] → metrics: append one more metric field to
    // the scope by re-encoding the whole nest around it.
    let wrap = |tag: u8, inner: &[u8]| {
        let mut out = vec![(tag << 3) | 2];
        prost::encoding::encode_varint(inner.len() as u64, &mut out);
        out.extend_from_slice(inner);
        out
    };
    let scope = wrap(2, &wrap(2, &metric));
    // A second resource field in the same ResourceMetrics (merged on decode).
    let resource =
        wrap(1, &prost::Message::encode_to_vec(&Resource { attributes: vec![kv("x", "y")], ..Default::default() }));
    body.extend(wrap(1, &[resource.clone(), scope.clone(), resource].concat()));
    both_paths(&Settings { resource_to_telemetry: true, ..Settings::default() }, &[body]);
}

#[test]
fn random_requests_give_the_same_state_both_ways() {
    const NAMES: [&str; 4] = ["a", "b.total", "", "9x"];
    const KEYS: [&str; 5] = ["k", "service.name", "service.instance.id", "k.2", ""];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..40 {
        let mut requests = Vec::new();
        for _ in 0..4 {
            let attrs = |next: &mut dyn FnMut(usize) -> usize| -> Vec<KeyValue> {
                (0..next(3))
                    .map(|_| match next(3) {
                        0 => KeyValue {
                            key: KEYS[next(5)].into(),
                            value: Some(AnyValue { value: Some(V::IntValue(next(3) as i64)) }),
                            ..Default::default()
                        },
                        _ => kv(KEYS[next(5)], NAMES[next(4)]),
                    })
                    .collect()
            };
            let metrics = (0..1 + next(3))
                .map(|_| {
                    let pts =
                        (0..next(3)).map(|_| point(next(10) as f64, T0 + next(3) as u64, attrs(&mut next))).collect();
                    let name = NAMES[next(4)];
                    match next(4) {
                        0 => gauge(name, "1", pts),
                        1 => sum(name, "s", next(3) as i32, next(2) == 1, pts),
                        2 => histogram(name, next(3) as i32, vec![next(3) as u64, 1, 0], T0 + next(3) as u64),
                        _ => sum(name, "", 1, true, pts),
                    }
                })
                .collect();
            let resource = attrs(&mut next);
            requests.push(encoded(&request(resource, metrics)));
        }
        let settings = Settings { resource_to_telemetry: round % 2 == 1, max_series: 2 + round, ..Settings::default() };
        both_paths(&settings, &requests);
    }
}
