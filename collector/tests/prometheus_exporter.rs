//! The `prometheus` exporter end to end: OTLP metrics (a counter, a delta counter, a gauge, a
//! histogram, with attributes) go into the OTLP gRPC receiver of an in-process collector; the
//! exporter's `/metrics` endpoint is scraped, values are checked, and `promtool check metrics`
//! accepts it and the collector's own metrics, both served as `prom_text::CONTENT_TYPE`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Listening as _;
use common::in_process::Collector;
use common::{http_content_type, http_get, kv, metric_sum, wait_until};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point::Value as NV,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

const T0: u64 = 1_700_000_000_000_000_000;
const CUMULATIVE: i32 = 2;
const DELTA: i32 = 1;

const CONFIG: &str = r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
processors:
  batch:
    timeout: 50ms
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
    const_labels:
      env: test
    metric_expiration: 10m
service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [prometheus]
"#;

fn int_point(v: i64, t: u64, attrs: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
        start_time_unix_nano: T0 - 1_000_000_000,
        time_unix_nano: t,
        value: Some(NV::AsInt(v)),
        ..Default::default()
    }
}

fn sum(name: &str, unit: &str, temporality: i32, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: format!("Number of {name}."),
        unit: unit.into(),
        data: Some(Data::Sum(Sum { data_points: points, aggregation_temporality: temporality, is_monotonic: true })),
        ..Default::default()
    }
}

/// One export as an instrumented service would send it at time `t`.
fn request(t: u64, get: i64, created_delta: i64, depth: i64, with_exponential: bool) -> ExportMetricsServiceRequest {
    let mut metrics = vec![
        sum(
            "http.server.requests",
            "{request}",
            CUMULATIVE,
            vec![
                int_point(get, t, &[("http.request.method", "GET")]),
                int_point(1, t, &[("http.request.method", "POST")]),
            ],
        ),
        sum("reviews.created", "{review}", DELTA, vec![int_point(created_delta, t, &[])]),
        Metric {
            name: "queue.depth".into(),
            description: "Items waiting in the queue.".into(),
            data: Some(Data::Gauge(Gauge { data_points: vec![int_point(depth, t, &[("queue", "ingest")])] })),
            ..Default::default()
        },
        Metric {
            name: "http.server.request.duration".into(),
            description: "Duration of HTTP server requests.".into(),
            unit: "s".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![kv("http.route", "/reviews")],
                    start_time_unix_nano: T0 - 1_000_000_000,
                    time_unix_nano: t,
                    count: 4,
                    sum: Some(1.7),
                    bucket_counts: vec![2, 1, 1],
                    explicit_bounds: vec![0.1, 0.5],
                    ..Default::default()
                }],
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        },
    ];
    if with_exponential {
        metrics.push(Metric {
            name: "payload.size".into(),
            unit: "By".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint { time_unix_nano: t, count: 1, ..Default::default() }],
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "reviews"),
                    kv("service.instance.id", "pod-1"),
                    kv("k8s.namespace.name", "shop"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope { name: "reviews-app".into(), ..Default::default() }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn send(grpc: SocketAddr, req: ExportMetricsServiceRequest) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let mut client =
                MetricsServiceClient::connect(format!("http://{grpc}")).await.expect("connect to receiver");
            client.export(req).await.expect("export accepted");
        });
    })
    .join()
    .expect("sender thread");
}

#[test]
fn scrape_shows_latest_values_and_passes_promtool() {
    let c = Collector::start(CONFIG);
    let grpc = c.addr("receivers.otlp.protocols.grpc");
    let url = format!("http://{}/metrics", c.addr("exporters.prometheus"));

    send(grpc, request(T0, 3, 2, 7, true));
    send(grpc, request(T0 + 1_000_000_000, 5, 3, 4, false));
    let labels = r#"env="test",instance="pod-1",job="reviews",otel_scope_name="reviews-app""#;
    let delta_line = format!("reviews_created_total{{{labels}}} 5\n");
    let mut text = String::new();
    wait_until("both exports to be visible on the exporter's /metrics", Duration::from_secs(10), || {
        text = http_get(&url);
        text.contains(&delta_line) && text.contains("queue_depth{")
    });

    // Cumulative counter: the latest value per series; attributes become labels.
    assert!(
        text.contains(r#"http_server_requests_total{env="test",http_request_method="GET",instance="pod-1",job="reviews",otel_scope_name="reviews-app"} 5
"#),
        "{text}"
    );
    assert!(text.contains("# TYPE http_server_requests_total counter\n"), "{text}");
    assert!(text.contains("http_request_method=\"POST\""), "{text}");
    // Gauge: the latest value.
    assert!(
        text.contains(
            r#"queue_depth{env="test",instance="pod-1",job="reviews",otel_scope_name="reviews-app",queue="ingest"} 4
"#
        ),
        "{text}"
    );
    // Histogram: cumulative buckets with the unit suffix.
    let h = r#"env="test",http_route="/reviews",instance="pod-1",job="reviews",otel_scope_name="reviews-app""#;
    for line in [
        format!("http_server_request_duration_seconds_bucket{{{h},le=\"0.1\"}} 2\n"),
        format!("http_server_request_duration_seconds_bucket{{{h},le=\"0.5\"}} 3\n"),
        format!("http_server_request_duration_seconds_bucket{{{h},le=\"+Inf\"}} 4\n"),
        format!("http_server_request_duration_seconds_sum{{{h}}} 1.7\n"),
        format!("http_server_request_duration_seconds_count{{{h}}} 4\n"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
    // Resource attributes other than the service identity go to target_info.
    assert!(text.contains("target_info{instance=\"pod-1\",job=\"reviews\",k8s_namespace_name=\"shop\"} 1\n"), "{text}");
    // The exponential histogram cannot be exposed in the text format: dropped and counted.
    assert!(!text.contains("payload_size"), "{text}");
    wait_until("the unsupported point to be counted", Duration::from_secs(5), || {
        metric_sum(&c.metrics(), "otelcol_exporter_prometheus_unsupported_points_total") == 1.0
    });
    assert!(c.metric_sum("otelcol_exporter_sent_metric_points_total") >= 10.0, "{}", c.metrics());
    assert!(!c.log().contains("not implemented"), "{}", c.log());

    prom_text::promtool::check_metrics(&text).unwrap_or_else(|e| panic!("exporter /metrics: {e}"));
    assert_eq!(http_content_type(&url), prom_text::CONTENT_TYPE);
    // The collector's own metrics (the exporter's counters among them) are the same format.
    prom_text::promtool::check_metrics(&c.metrics()).unwrap_or_else(|e| panic!("own metrics: {e}"));
    assert_eq!(
        http_content_type(&format!("http://{}/metrics", c.addr("service.telemetry.metrics"))),
        prom_text::CONTENT_TYPE
    );
}
