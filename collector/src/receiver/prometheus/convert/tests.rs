//! Unit tests for the scrape → OTLP conversion: types, attributes, resources, start times.

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, metric::Data, number_data_point};

use super::*;
use crate::receiver::prometheus::exposition::parse;

const BODY: &str = r#"# HELP http_requests_total Total requests.
# TYPE http_requests_total counter
http_requests_total{method="get",code="200"} 1027
http_requests_total{method="post",code="400"} 3
# HELP temperature_celsius Current temp.
# TYPE temperature_celsius gauge
temperature_celsius{room="a\"b\\c\nd"} 21.5
temperature_celsius{room="inf"} +Inf
temperature_celsius{room="nan"} NaN
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 5
latency_seconds_bucket{le="0.5"} 8
latency_seconds_bucket{le="+Inf"} 10
latency_seconds_sum 3.2
latency_seconds_count 10
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.99"} 0.2
rpc_seconds{quantile="0.5"} 0.05
rpc_seconds_sum 12.5
rpc_seconds_count 100
untyped_thing 7
"#;

fn target() -> Labels {
    [("job", "static"), ("instance", "10.0.0.7:9100"), ("env", "test")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

struct Fixture {
    target: Labels,
    discovered: Labels,
    rules: Vec<Rule>,
    honor_labels: bool,
    sample_limit: u64,
}

impl Fixture {
    fn new() -> Self {
        Self { target: target(), discovered: Labels::new(), rules: Vec::new(), honor_labels: false, sample_limit: 0 }
    }
    fn ctx(&self) -> ScrapeContext<'_> {
        ScrapeContext {
            target_labels: &self.target,
            discovered: &self.discovered,
            scheme: "http",
            honor_labels: self.honor_labels,
            honor_timestamps: true,
            metric_relabel: &self.rules,
            sample_limit: self.sample_limit,
        }
    }
    fn run(&self, body: &str, at_ms: i64, state: &mut SeriesState) -> (ExportMetricsServiceRequest, ScrapeReport) {
        let e = parse(body).expect("body parses");
        convert(&self.ctx(), Some(&e), at_ms, 0.25, state).expect("converts")
    }
}

fn metric<'a>(req: &'a ExportMetricsServiceRequest, name: &str) -> &'a Metric {
    req.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

fn str_attrs(attrs: &[KeyValue]) -> Vec<(String, String)> {
    attrs
        .iter()
        .map(|a| {
            let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (a.key.clone(), v)
        })
        .collect()
}

fn resource_attrs(rm: &ResourceMetrics) -> Vec<(String, String)> {
    str_attrs(&rm.resource.as_ref().expect("resource").attributes)
}

fn double(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        other => panic!("{other:?}"),
    }
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn counter_becomes_a_cumulative_monotonic_sum_with_target_labels() {
    let f = Fixture::new();
    let (req, _) = f.run(BODY, 1_700_000_000_000, &mut SeriesState::default());
    let m = metric(&req, "http_requests_total");
    assert_eq!(m.description, "Total requests.");
    assert_eq!(str_attrs(&m.metadata), pairs(&[("prometheus.type", "counter")]));
    let Some(Data::Sum(s)) = &m.data else { panic!("{m:?}") };
    assert!(s.is_monotonic);
    assert_eq!(s.aggregation_temporality, AggregationTemporality::Cumulative as i32);
    assert_eq!(s.data_points.len(), 2);
    assert_eq!(double(&s.data_points[0]), 1027.0);
    assert_eq!(str_attrs(&s.data_points[0].attributes), pairs(&[("code", "200"), ("env", "test"), ("method", "get")]));
    assert_eq!(s.data_points[0].time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(s.data_points[0].start_time_unix_nano, 1_700_000_000_000_000_000, "first seen: start = time");
}

#[test]
fn gauge_untyped_nan_inf_and_label_escapes() {
    let f = Fixture::new();
    let (req, _) = f.run(BODY, 1_700_000_000_000, &mut SeriesState::default());
    let Some(Data::Gauge(g)) = &metric(&req, "temperature_celsius").data else { panic!() };
    assert_eq!(str_attrs(&g.data_points[0].attributes), pairs(&[("env", "test"), ("room", "a\"b\\c\nd")]));
    assert_eq!(double(&g.data_points[1]), f64::INFINITY);
    assert!(double(&g.data_points[2]).is_nan());
    assert_eq!(g.data_points[0].start_time_unix_nano, 0, "gauges carry no start time");
    let u = metric(&req, "untyped_thing");
    assert!(matches!(u.data, Some(Data::Gauge(_))));
    assert_eq!(str_attrs(&u.metadata), pairs(&[("prometheus.type", "unknown")]));
}

#[test]
fn histogram_buckets_become_explicit_bounds_and_bucket_counts() {
    let f = Fixture::new();
    let (req, _) = f.run(BODY, 1_700_000_000_000, &mut SeriesState::default());
    let m = metric(&req, "latency_seconds");
    let Some(Data::Histogram(h)) = &m.data else { panic!("{m:?}") };
    assert_eq!(h.aggregation_temporality, AggregationTemporality::Cumulative as i32);
    let p = &h.data_points[0];
    assert_eq!(p.explicit_bounds, vec![0.1, 0.5]);
    assert_eq!(p.bucket_counts, vec![5, 3, 2]);
    assert_eq!((p.count, p.sum), (10, Some(3.2)));
    assert_eq!(str_attrs(&p.attributes), pairs(&[("env", "test")]), "le is not an attribute");
    assert!(
        req.resource_metrics[0].scope_metrics[0].metrics.iter().all(|m| !m.name.starts_with("latency_seconds_")),
        "no separate _bucket/_sum/_count metrics"
    );
}

#[test]
fn histogram_without_inf_bucket_or_count_still_adds_up() {
    assert_eq!(histogram_buckets(&[(1.0, 2.0), (0.5, 1.0)], Some(4.0)), (vec![0.5, 1.0], vec![1, 1, 2], 4));
    assert_eq!(histogram_buckets(&[(1.0, 2.0), (f64::INFINITY, 3.0)], None), (vec![1.0], vec![2, 1], 3));
}

#[test]
fn summary_has_sorted_quantiles_sum_and_count() {
    let f = Fixture::new();
    let (req, _) = f.run(BODY, 1_700_000_000_000, &mut SeriesState::default());
    let Some(Data::Summary(s)) = &metric(&req, "rpc_seconds").data else { panic!() };
    let p = &s.data_points[0];
    assert_eq!((p.count, p.sum), (100, 12.5));
    let q: Vec<(f64, f64)> = p.quantile_values.iter().map(|q| (q.quantile, q.value)).collect();
    assert_eq!(q, vec![(0.5, 0.05), (0.99, 0.2)]);
}

#[test]
fn resource_carries_job_instance_host_port_and_scheme() {
    let mut f = Fixture::new();
    f.discovered.insert("__meta_kubernetes_namespace".into(), "obs".into());
    f.discovered.insert("__meta_kubernetes_pod_name".into(), "reviews-1".into());
    f.discovered.insert("__meta_kubernetes_pod_controller_kind".into(), "ReplicaSet".into());
    f.discovered.insert("__meta_kubernetes_pod_controller_name".into(), "reviews-7d9f".into());
    let (req, _) = f.run(BODY, 1_700_000_000_000, &mut SeriesState::default());
    assert_eq!(req.resource_metrics.len(), 1, "one target, one resource (own series included)");
    assert_eq!(
        resource_attrs(&req.resource_metrics[0]),
        pairs(&[
            ("service.name", "static"),
            ("server.address", "10.0.0.7"),
            ("service.instance.id", "10.0.0.7:9100"),
            ("server.port", "9100"),
            ("url.scheme", "http"),
            ("k8s.pod.name", "reviews-1"),
            ("k8s.namespace.name", "obs"),
            ("k8s.replicaset.name", "reviews-7d9f"),
        ])
    );
    assert_eq!(req.resource_metrics[0].scope_metrics[0].scope.as_ref().map(|s| s.name.as_str()), Some(SCOPE_NAME));
}

#[test]
fn loopback_hosts_have_no_server_address() {
    for (instance, discernible) in
        [("127.0.0.1:80", false), ("localhost:80", false), ("[::1]:80", false), ("0.0.0.0:1", false), ("db:5432", true)]
    {
        let (host, _) = split_host_port(instance);
        assert_eq!(is_discernible_host(host), discernible, "{instance}");
    }
}

#[test]
fn own_series_report_the_scrape() {
    let f = Fixture::new();
    let mut state = SeriesState::default();
    let (req, report) = f.run(BODY, 1_700_000_000_000, &mut state);
    assert_eq!(report.samples_scraped, 15);
    let value = |req: &ExportMetricsServiceRequest, name: &str| match &metric(req, name).data {
        Some(Data::Gauge(g)) => double(&g.data_points[0]),
        other => panic!("{other:?}"),
    };
    assert_eq!(value(&req, "up"), 1.0);
    assert_eq!(value(&req, "scrape_duration_seconds"), 0.25);
    assert_eq!(metric(&req, "scrape_duration_seconds").unit, "s");
    assert_eq!(value(&req, "scrape_samples_scraped"), 15.0);
    assert_eq!(value(&req, "scrape_samples_post_metric_relabeling"), 15.0);
    // 2 counter + 3 gauge + 1 histogram + 1 summary + 1 untyped series.
    assert_eq!(value(&req, "scrape_series_added"), 8.0);
    let (again, _) = f.run(BODY, 1_700_000_001_000, &mut state);
    assert_eq!(value(&again, "scrape_series_added"), 0.0);
    let Some(Data::Gauge(up)) = &metric(&req, "up").data else { panic!() };
    assert_eq!(str_attrs(&up.data_points[0].attributes), pairs(&[("env", "test")]));
}

#[test]
fn failed_scrape_reports_up_zero_only() {
    let f = Fixture::new();
    let (req, report) = convert(&f.ctx(), None, 1_700_000_000_000, 0.5, &mut SeriesState::default()).expect("ok");
    assert!(!report.up);
    let names: Vec<&str> = req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "up",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added"
        ]
    );
    let Some(Data::Gauge(g)) = &metric(&req, "up").data else { panic!() };
    assert_eq!(double(&g.data_points[0]), 0.0);
}

#[test]
fn start_time_survives_scrapes_and_moves_on_counter_reset() {
    let f = Fixture::new();
    let mut state = SeriesState::default();
    let body =
        |v: u32| format!("# TYPE c counter\nc {v}\n# TYPE h histogram\nh_bucket{{le=\"+Inf\"}} {v}\nh_count {v}\n");
    let start = |req: &ExportMetricsServiceRequest| {
        let c = match &metric(req, "c").data {
            Some(Data::Sum(s)) => s.data_points[0].start_time_unix_nano,
            other => panic!("{other:?}"),
        };
        let h = match &metric(req, "h").data {
            Some(Data::Histogram(h)) => h.data_points[0].start_time_unix_nano,
            other => panic!("{other:?}"),
        };
        (c, h)
    };
    let t = |s: i64| 1_700_000_000_000 + s * 1000;
    let ns = |s: i64| (t(s) as u64) * 1_000_000;
    let (r1, _) = f.run(&body(10), t(0), &mut state);
    assert_eq!(start(&r1), (ns(0), ns(0)));
    let (r2, _) = f.run(&body(15), t(1), &mut state);
    assert_eq!(start(&r2), (ns(0), ns(0)), "unchanged while the value grows");
    let (r3, _) = f.run(&body(2), t(2), &mut state);
    assert_eq!(start(&r3), (ns(2), ns(2)), "a decrease is a reset: the series starts again");
    let (r4, _) = f.run(&body(3), t(3), &mut state);
    assert_eq!(start(&r4), (ns(2), ns(2)));
}

#[test]
fn vanished_series_are_forgotten() {
    let f = Fixture::new();
    let mut state = SeriesState::default();
    f.run("a 1\nb 1\n", 1_000, &mut state);
    let with_two = state.len();
    f.run("a 1\n", 2_000, &mut state);
    assert_eq!(state.len(), with_two - 1);
}

#[test]
fn target_labels_win_unless_honor_labels() {
    let mut f = Fixture::new();
    let body = "x{env=\"scraped\",job=\"other\"} 1\n";
    let (req, _) = f.run(body, 1_000, &mut SeriesState::default());
    let Some(Data::Gauge(g)) = &metric(&req, "x").data else { panic!() };
    assert_eq!(
        str_attrs(&g.data_points[0].attributes),
        pairs(&[("env", "test"), ("exported_env", "scraped"), ("exported_job", "other")])
    );
    f.honor_labels = true;
    let (req, _) = f.run(body, 1_000, &mut SeriesState::default());
    let rm =
        req.resource_metrics.iter().find(|rm| rm.scope_metrics[0].metrics.iter().any(|m| m.name == "x")).expect("x");
    assert_eq!(resource_attrs(rm)[0], ("service.name".into(), "other".into()), "the scraped job names the resource");
    let Some(Data::Gauge(g)) = &metric(&req, "x").data else { panic!() };
    assert_eq!(str_attrs(&g.data_points[0].attributes), pairs(&[("env", "scraped")]));
}

#[test]
fn metric_relabel_drops_and_sample_limit_fails_the_scrape() {
    let mut f = Fixture::new();
    let c: Vec<collector_config::receiver::prometheus::config::RelabelConfig> =
        serde_yaml::from_str("[{source_labels: [__name__], regex: 'temperature_.*', action: drop}]").expect("yaml");
    f.rules = relabel::compile_all(&c).expect("compiles");
    let (req, report) = f.run(BODY, 1_000, &mut SeriesState::default());
    assert_eq!((report.samples_scraped, report.samples_post_relabel), (15, 12));
    assert!(req.resource_metrics[0].scope_metrics[0].metrics.iter().all(|m| m.name != "temperature_celsius"));
    f.sample_limit = 11;
    let e = parse(BODY).expect("parses");
    let err = convert(&f.ctx(), Some(&e), 1_000, 0.1, &mut SeriesState::default()).expect_err("over the limit");
    assert_eq!(err, ConvertError::SampleLimit { got: 12, limit: 11 });
}

#[test]
fn exposed_timestamps_are_honored() {
    let f = Fixture::new();
    let (req, _) = f.run("x 1 1600000000000\n", 1_700_000_000_000, &mut SeriesState::default());
    let Some(Data::Gauge(g)) = &metric(&req, "x").data else { panic!() };
    assert_eq!(g.data_points[0].time_unix_nano, 1_600_000_000_000_000_000);
}

#[test]
fn a_failed_scrape_keeps_start_times() {
    let f = Fixture::new();
    let mut state = SeriesState::default();
    f.run("# TYPE c counter\nc 5\n", 1_000, &mut state);
    convert(&f.ctx(), None, 2_000, 0.1, &mut state).expect("ok");
    let (req, report) = f.run("# TYPE c counter\nc 6\n", 3_000, &mut state);
    assert_eq!(report.series_added, 0);
    let Some(Data::Sum(s)) = &metric(&req, "c").data else { panic!() };
    assert_eq!(s.data_points[0].start_time_unix_nano, 1_000_000_000);
}
