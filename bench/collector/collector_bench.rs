//! Collector benchmark: our collector against the upstream Go collector (`otelcol`) and rotel,
//! in one run on the same machine, in three scenarios:
//!
//! - `passthrough`: OTLP gRPC traces → `batch` → OTLP gRPC (nothing looks inside a span);
//! - `traces`: the pipeline users run: `memory_limiter` → `resource` (upsert
//!   `deployment.environment`, insert `collector.version`) → `attributes` (insert `team`) → `span`
//!   (name from `http.request.method` + `http.route`) → `batch` → OTLP gRPC;
//! - `metrics`: OTLP gRPC metrics → `memory_limiter` → `resource` → `metricstransform` (rename +
//!   `add_label` + `update_label`) → `batch` → OTLP gRPC and the `prometheus` exporter.
//!
//! rotel runs only the pass-through scenario (it has no equivalent of these processors).
//!
//! The load generator and the sink live in this process (pin it to one core with taskset); each
//! collector runs pinned to another core. The generator sends pre-encoded requests and the sink
//! counts items (spans, data points) by walking the protobuf without decoding it, so both are far
//! cheaper per item than a collector. Measures: items/s delivered at saturation, and CPU% and RSS
//! at a steady 10k items/s. Prints one table with ratios.
//!
//! Usage: collector_bench --ours BIN --otelcol BIN --rotel BIN [--core 0] [--seconds 10]
//!        [--scenarios passthrough,traces,metrics]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value as V};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric::Data as MetricData, number_data_point::Value as NumberValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use telemetry_collector::raw_codec::RawCodec;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
/// Spans or data points per request.
const ITEMS_PER_REQUEST: u64 = 100;

/// What is sent and which pipeline the collectors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Traces through `batch` only.
    PassThrough,
    /// Traces through the processors users run.
    Traces,
    /// Metrics through `resource` and `metricstransform` to OTLP and Prometheus.
    Metrics,
}

impl Scenario {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "passthrough" => Some(Scenario::PassThrough),
            "traces" => Some(Scenario::Traces),
            "metrics" => Some(Scenario::Metrics),
            _ => None,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::PassThrough => "pass-through: traces → batch → otlp",
            Scenario::Traces => "traces processing: memory_limiter → resource → attributes → span → batch → otlp",
            Scenario::Metrics => {
                "metrics processing: memory_limiter → resource → metricstransform → batch → otlp + prometheus"
            }
        }
    }

    fn path(self) -> &'static str {
        match self {
            Scenario::Metrics => METRICS_PATH,
            _ => TRACES_PATH,
        }
    }

    fn request(self, seq: u64) -> Bytes {
        match self {
            Scenario::Metrics => metrics_request(seq),
            _ => request(seq),
        }
    }
}

// The generator sends pre-encoded requests and the sink never decodes them, both through the
// collector's own bytes codec (`RawCodec`).

/// Reads a protobuf varint.
fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Calls `f(field, bytes)` for each length-delimited field, skipping others.
fn for_each_len(mut b: &[u8], mut f: impl FnMut(u64, &[u8])) -> Option<()> {
    while !b.is_empty() {
        let key = varint(&mut b)?;
        match key & 7 {
            0 => {
                varint(&mut b)?;
            }
            1 => b = b.get(8..)?,
            5 => b = b.get(4..)?,
            2 => {
                let len = varint(&mut b)? as usize;
                let (field, rest) = (b.get(..len)?, b.get(len..)?);
                f(key >> 3, field);
                b = rest;
            }
            _ => return None,
        }
    }
    Some(())
}

/// Counts spans in an encoded ExportTraceServiceRequest without decoding it.
fn count_spans(b: &[u8]) -> u64 {
    let mut n = 0;
    let _ = for_each_len(b, |f, rs| {
        if f == 1 {
            let _ = for_each_len(rs, |f, ss| {
                if f == 2 {
                    let _ = for_each_len(ss, |f, _| {
                        if f == 2 {
                            n += 1;
                        }
                    });
                }
            });
        }
    });
    n
}

/// Counts data points in an encoded ExportMetricsServiceRequest without decoding it.
fn count_points(b: &[u8]) -> u64 {
    let mut n = 0;
    let _ = for_each_len(b, |f, rm| {
        if f == 1 {
            let _ = for_each_len(rm, |f, sm| {
                if f == 2 {
                    let _ = for_each_len(sm, |f, metric| {
                        if f == 2 {
                            let _ = for_each_len(metric, |f, data| {
                                // gauge, sum, histogram, exponential histogram, summary
                                if matches!(f, 5 | 7 | 9 | 10 | 11) {
                                    let _ = for_each_len(data, |f, _| {
                                        if f == 1 {
                                            n += 1;
                                        }
                                    });
                                }
                            });
                        }
                    });
                }
            });
        }
    });
    n
}

// ---------------------------------------------------------------------------------------------
// Sink
// ---------------------------------------------------------------------------------------------

/// The sink's gRPC services: one per signal, both counting items into one counter.
#[derive(Debug, Clone)]
struct Sink<const METRICS: bool>(Arc<AtomicU64>);

impl tonic::server::NamedService for Sink<false> {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl tonic::server::NamedService for Sink<true> {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
}

#[derive(Debug)]
struct Count(Arc<AtomicU64>, fn(&[u8]) -> u64);

impl tonic::server::UnaryService<Bytes> for Count {
    type Response = Vec<Bytes>;
    type Future = std::future::Ready<Result<Response<Vec<Bytes>>, Status>>;
    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        self.0.fetch_add((self.1)(req.get_ref()), Ordering::Relaxed);
        std::future::ready(Ok(Response::new(Vec::new())))
    }
}

impl<B, const METRICS: bool> tonic::codegen::Service<http::Request<B>> for Sink<METRICS>
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Infallible>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let counter = self.0.clone();
        let count: fn(&[u8]) -> u64 = if METRICS { count_points } else { count_spans };
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .apply_max_message_size_config(Some(256 << 20), None);
            Ok(grpc.unary(Count(counter, count), req).await)
        })
    }
}

async fn start_sink(counter: Arc<AtomicU64>) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
    let addr = l.local_addr().expect("sink addr");
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .http2_adaptive_window(Some(true))
            .add_service(Sink::<false>(counter.clone()))
            .add_service(Sink::<true>(counter))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(l).with_nodelay(Some(true)))
            .await;
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------------------------

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(V::StringValue(v.into())) }), ..Default::default() }
}

/// The sending app's resource, the same in every request.
fn app_resource() -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", "reviews"),
            kv("k8s.namespace.name", "shop"),
            kv("k8s.pod.name", "reviews-7d9f8b6c5-x2x9z"),
        ],
        ..Default::default()
    }
}

/// The instrumentation scope of every generated item.
fn bench_scope() -> InstrumentationScope {
    InstrumentationScope { name: "bench".into(), ..Default::default() }
}

/// A realistic request: 100 server spans with HTTP attributes, ~30 KiB encoded.
fn request(seq: u64) -> Bytes {
    let spans = (0..ITEMS_PER_REQUEST)
        .map(|i| Span {
            trace_id: [seq.to_be_bytes(), i.to_be_bytes()].concat(),
            span_id: (seq * 1000 + i + 1).to_be_bytes().to_vec(),
            parent_span_id: (seq * 1000 + i).to_be_bytes().to_vec(),
            name: "GET /api/reviews/{id}".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i,
            end_time_unix_nano: 1_700_000_000_020_000_000 + i,
            attributes: vec![
                kv("http.request.method", "GET"),
                kv("http.route", "/api/reviews/{id}"),
                kv("url.path", "/api/reviews/42"),
                kv("server.address", "reviews.shop.svc.cluster.local"),
                KeyValue {
                    key: "http.response.status_code".into(),
                    value: Some(AnyValue { value: Some(V::IntValue(200)) }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .collect();
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(app_resource()),
            scope_spans: vec![ScopeSpans { scope: Some(bench_scope()), spans, ..Default::default() }],
            ..Default::default()
        }],
    };
    Bytes::from(req.encode_to_vec())
}

/// A realistic metrics request: an HTTP service's request counter and latency histogram, and
/// two gauges, 25 series each: 100 data points, ~25 KiB encoded.
fn metrics_request(seq: u64) -> Bytes {
    let time = 1_700_000_000_000_000_000 + seq * 10_000_000_000;
    let http_attrs = |i: u64| {
        vec![
            kv("http.request.method", if i.is_multiple_of(5) { "POST" } else { "GET" }),
            kv("http.route", &format!("/api/reviews/{i}")),
            KeyValue {
                key: "http.response.status_code".into(),
                value: Some(AnyValue { value: Some(V::IntValue(200)) }),
                ..Default::default()
            },
        ]
    };
    let number = |attributes: Vec<KeyValue>, v: NumberValue| NumberDataPoint {
        attributes,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        time_unix_nano: time,
        value: Some(v),
        ..Default::default()
    };
    let series = 0..ITEMS_PER_REQUEST / 4;
    let metrics = vec![
        Metric {
            name: "http.server.request.count".into(),
            unit: "{request}".into(),
            data: Some(MetricData::Sum(Sum {
                data_points: series
                    .clone()
                    .map(|i| number(http_attrs(i), NumberValue::AsInt((seq * 7 + i) as i64)))
                    .collect(),
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "http.server.request.duration".into(),
            unit: "s".into(),
            data: Some(MetricData::Histogram(Histogram {
                data_points: series
                    .clone()
                    .map(|i| HistogramDataPoint {
                        attributes: http_attrs(i),
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        time_unix_nano: time,
                        count: 10 * (seq + 1),
                        sum: Some(0.25 * (seq + 1) as f64),
                        bucket_counts: vec![seq + 1; 10],
                        explicit_bounds: vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
        Metric {
            name: "db.client.connection.count".into(),
            unit: "{connection}".into(),
            data: Some(MetricData::Gauge(Gauge {
                data_points: series
                    .clone()
                    .map(|i| {
                        number(
                            vec![
                                kv("db.client.connection.pool.name", &format!("pool-{i}")),
                                kv("db.client.connection.state", "used"),
                            ],
                            NumberValue::AsInt((i % 7) as i64),
                        )
                    })
                    .collect(),
            })),
            ..Default::default()
        },
        Metric {
            name: "process.cpu.utilization".into(),
            unit: "1".into(),
            data: Some(MetricData::Gauge(Gauge {
                data_points: series
                    .map(|i| number(vec![kv("cpu.mode", &format!("mode-{i}"))], NumberValue::AsDouble(0.01 * i as f64)))
                    .collect(),
            })),
            ..Default::default()
        },
    ];
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(app_resource()),
            scope_metrics: vec![ScopeMetrics { scope: Some(bench_scope()), metrics, ..Default::default() }],
            ..Default::default()
        }],
    };
    Bytes::from(req.encode_to_vec())
}

#[derive(Debug, Default)]
struct LoadStats {
    ok: AtomicU64,
    err: AtomicU64,
}

/// Sends for `dur` with `conns` connections × `inflight` concurrent requests each; `rate` items/s (0 = unlimited).
async fn load(
    scenario: Scenario,
    endpoint: SocketAddr,
    dur: Duration,
    conns: usize,
    inflight: usize,
    rate: u64,
    stats: Arc<LoadStats>,
) {
    let payloads: Arc<Vec<Bytes>> = Arc::new((0..64).map(|seq| scenario.request(seq)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let workers = conns * inflight;
    let per_worker_interval = if rate == 0 {
        None
    } else {
        Some(Duration::from_secs_f64(workers as f64 * ITEMS_PER_REQUEST as f64 / rate as f64))
    };
    let mut tasks = Vec::new();
    for c in 0..conns {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))
            .expect("endpoint")
            .tcp_nodelay(true)
            .http2_adaptive_window(true)
            .connect_lazy();
        for w in 0..inflight {
            let (channel, payloads, stop, stats) = (channel.clone(), payloads.clone(), stop.clone(), stats.clone());
            tasks.push(tokio::spawn(async move {
                let mut grpc = tonic::client::Grpc::new(channel);
                let mut i = c * inflight + w;
                let mut tick = per_worker_interval.map(|d| {
                    let mut t = tokio::time::interval(d);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
                while !stop.load(Ordering::Relaxed) {
                    if let Some(t) = tick.as_mut() {
                        t.tick().await;
                    }
                    if grpc.ready().await.is_err() {
                        stats.err.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    let body = payloads[i % payloads.len()].clone();
                    i += 1;
                    let path = http::uri::PathAndQuery::from_static(scenario.path());
                    match grpc.unary::<Vec<Bytes>, Bytes, _>(Request::new(vec![body]), path, RawCodec).await {
                        Ok(_) => stats.ok.fetch_add(ITEMS_PER_REQUEST, Ordering::Relaxed),
                        Err(_) => stats.err.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
}

// ---------------------------------------------------------------------------------------------
// Process measurement
// ---------------------------------------------------------------------------------------------

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let st: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ut + st
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

const TICKS_PER_SEC: f64 = 100.0;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(core: &str, bin: &str, args: &[String], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(core).arg(bin).args(args).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {bin}: {e}")))
}

/// The collector config of `scenario` (the same for ours and the Go collector, except for how
/// each reports its own metrics).
fn yaml(scenario: Scenario, recv: u16, sink: SocketAddr, ours: bool) -> String {
    let telemetry = if ours {
        format!("    metrics:\n      address: 127.0.0.1:{}\n", free_port())
    } else {
        "    metrics:\n      level: none\n".into()
    };
    let batch = "  batch:\n    send_batch_size: 8192\n    timeout: 200ms\n";
    let limiter = "  memory_limiter:\n    check_interval: 1s\n    limit_mib: 1024\n    spike_limit_mib: 256\n";
    let resource = "  resource:\n    attributes:\n      - {key: deployment.environment, value: production, action: upsert}\n      - {key: collector.version, value: 0.155.0, action: insert}\n";
    let (processors, chain, pipeline, extra_exporters, exporter_list) = match scenario {
        Scenario::PassThrough => (batch.to_owned(), "[batch]", "traces", String::new(), "[otlp]"),
        Scenario::Traces => (
            format!(
                "{limiter}{resource}  attributes:\n    actions:\n      - {{key: team, value: reviews, action: insert}}\n  span:\n    name:\n      from_attributes: [http.request.method, http.route]\n      separator: \" \"\n{batch}"
            ),
            "[memory_limiter, resource, attributes, span, batch]",
            "traces",
            String::new(),
            "[otlp]",
        ),
        Scenario::Metrics => (
            format!(
                "{limiter}{resource}  metricstransform:\n    transforms:\n      - include: http.server.request.count\n        action: update\n        new_name: http.server.requests\n        operations:\n          - {{action: add_label, new_label: team, new_value: reviews}}\n          - {{action: update_label, label: http.route, new_label: route}}\n{batch}"
            ),
            "[memory_limiter, resource, metricstransform, batch]",
            "metrics",
            format!("  prometheus:\n    endpoint: 127.0.0.1:{}\n", free_port()),
            "[otlp, prometheus]",
        ),
    };
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{recv}\nprocessors:\n{processors}exporters:\n  otlp:\n    endpoint: {sink}\n    compression: none\n    tls:\n      insecure: true\n{extra_exporters}service:\n  telemetry:\n{telemetry}  pipelines:\n    {pipeline}:\n      receivers: [otlp]\n      processors: {chain}\n      exporters: {exporter_list}\n"
    )
}

#[derive(Debug, Default, Clone)]
struct Result_ {
    scenario: &'static str,
    name: String,
    sat_items_per_s: f64,
    sat_cpu_pct: f64,
    sat_errors: u64,
    steady_cpu_pct: f64,
    steady_rss_mib: f64,
    steady_delivered: f64,
}

async fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("collector did not open port {port}");
}

async fn bench_one(scenario: Scenario, name: &str, secs: u64, start: impl Fn(u16, SocketAddr) -> Proc) -> Result_ {
    let counter = Arc::new(AtomicU64::new(0));
    let sink = start_sink(counter.clone()).await;
    let recv = free_port();
    let proc_ = start(recv, sink);
    let pid = proc_.0.id();
    wait_port(recv).await;
    eprintln!("[{scenario:?}] [{name}] saturation ({secs}s after 2s warm-up)...");
    // Saturation: many in-flight requests so the collector, not the generator, is the bottleneck.
    let stats = Arc::new(LoadStats::default());
    let warm = tokio::spawn(load(
        scenario,
        SocketAddr::from(([127, 0, 0, 1], recv)),
        Duration::from_secs(secs + 2),
        4,
        8,
        0,
        stats.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (c0, ticks0) = (counter.load(Ordering::Relaxed), cpu_ticks(pid));
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let el = t0.elapsed().as_secs_f64();
    let sat = (counter.load(Ordering::Relaxed) - c0) as f64 / el;
    // If the generator (not the collector) limits throughput, the collector's core is not at 100%;
    // spans per CPU-second stays comparable either way.
    let sat_cpu = (cpu_ticks(pid) - ticks0) as f64 / TICKS_PER_SEC / el * 100.0;
    let _ = warm.await;
    // Let queues drain before the steady phase.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(proc_);

    // Steady 10k spans/s on a fresh process so RSS reflects the steady state, not saturation.
    let counter2 = Arc::new(AtomicU64::new(0));
    let sink2 = start_sink(counter2.clone()).await;
    let recv2 = free_port();
    let proc2 = start(recv2, sink2);
    let pid2 = proc2.0.id();
    wait_port(recv2).await;
    eprintln!("[{scenario:?}] [{name}] steady 10k items/s ({secs}s after 3s warm-up)...");
    let stats2 = Arc::new(LoadStats::default());
    let steady = tokio::spawn(load(
        scenario,
        SocketAddr::from(([127, 0, 0, 1], recv2)),
        Duration::from_secs(secs + 3),
        1,
        4,
        10_000,
        stats2.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ticks0, d0, t0) = (cpu_ticks(pid2), counter2.load(Ordering::Relaxed), Instant::now());
    let mut rss = Vec::new();
    while t0.elapsed() < Duration::from_secs(secs) {
        rss.push(rss_mib(pid2));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let el = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid2) - ticks0) as f64 / TICKS_PER_SEC / el * 100.0;
    let delivered = (counter2.load(Ordering::Relaxed) - d0) as f64 / el;
    let _ = steady.await;
    drop(proc2);
    Result_ {
        scenario: scenario.title(),
        name: name.into(),
        sat_items_per_s: sat,
        sat_cpu_pct: sat_cpu,
        sat_errors: stats.err.load(Ordering::Relaxed),
        steady_cpu_pct: cpu,
        steady_rss_mib: rss.iter().sum::<f64>() / rss.len().max(1) as f64,
        steady_delivered: delivered,
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// Runs every collector given on the command line through `scenario`.
async fn bench_scenario(scenario: Scenario, core: &str, secs: u64, dir: &std::path::Path) -> Vec<Result_> {
    let mut results = Vec::new();
    if let Some(bin) = arg("--ours") {
        results.push(
            bench_one(scenario, "telemetry-collector (ours)", secs, |recv, sink| {
                let p = dir.join(format!("ours-{recv}.yaml"));
                std::fs::write(&p, yaml(scenario, recv, sink, true)).expect("write config");
                spawn(core, &bin, &["--config".into(), p.display().to_string()], &[("RUST_LOG", "warn")])
            })
            .await,
        );
    }
    if let Some(bin) = arg("--otelcol") {
        results.push(
            bench_one(scenario, "otelcol (Go, upstream)", secs, |recv, sink| {
                let p = dir.join(format!("otelcol-{recv}.yaml"));
                std::fs::write(&p, yaml(scenario, recv, sink, false)).expect("write config");
                spawn(core, &bin, &["--config".into(), p.display().to_string()], &[])
            })
            .await,
        );
    }
    // rotel has no equivalent of the processors, so it runs only the pass-through pipeline.
    if let (Some(bin), Scenario::PassThrough) = (arg("--rotel"), scenario) {
        results.push(
            bench_one(scenario, "rotel", secs, |recv, sink| {
                let args: Vec<String> = [
                    "start",
                    "--otlp-grpc-endpoint",
                    &format!("127.0.0.1:{recv}"),
                    "--otlp-http-endpoint",
                    &format!("127.0.0.1:{}", free_port()),
                    "--exporter",
                    "otlp",
                    "--otlp-exporter-endpoint",
                    &format!("http://{sink}"),
                    "--otlp-exporter-protocol",
                    "grpc",
                    "--otlp-exporter-compression",
                    "none",
                    "--batch-max-size",
                    "8192",
                    "--batch-timeout",
                    "200ms",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                spawn(core, &bin, &args, &[("ROTEL_LOG_LEVEL", "warn")])
            })
            .await,
        );
    }
    results
}

/// The table: per scenario, each collector and its ratios to ours.
fn table(scenarios: &[Vec<Result_>]) -> String {
    let per_core = |r: &Result_| r.sat_items_per_s / (r.sat_cpu_pct / 100.0).max(0.01);
    let mut out = String::new();
    out.push_str(&format!(
        "\n{:<28} {:>12} {:>8} {:>14} {:>7} {:>9} {:>8} {:>11} {:>11} {:>11} {:>10} {:>10}\n",
        "collector (pinned 1 core)",
        "sat items/s",
        "sat CPU%",
        "items/CPU-sec",
        "errors",
        "CPU%@10k",
        "RSS MiB",
        "delivered/s",
        "ours/x sat",
        "ours/x core",
        "x/ours CPU",
        "x/ours RSS"
    ));
    for results in scenarios {
        let Some(ours) = results.first() else { continue };
        out.push_str(&format!("-- {}\n", ours.scenario));
        for r in results {
            out.push_str(&format!(
                "{:<28} {:>12.0} {:>8.1} {:>14.0} {:>7} {:>9.1} {:>8.1} {:>11.0} {:>11.2} {:>11.2} {:>10.2} {:>10.2}\n",
                r.name,
                r.sat_items_per_s,
                r.sat_cpu_pct,
                per_core(r),
                r.sat_errors,
                r.steady_cpu_pct,
                r.steady_rss_mib,
                r.steady_delivered,
                ours.sat_items_per_s / r.sat_items_per_s.max(1.0),
                per_core(ours) / per_core(r).max(1.0),
                r.steady_cpu_pct / ours.steady_cpu_pct.max(0.01),
                r.steady_rss_mib / ours.steady_rss_mib.max(0.01),
            ));
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let core = arg("--core").unwrap_or_else(|| "0".into());
    let secs: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(10);
    let scenarios: Vec<Scenario> = arg("--scenarios")
        .unwrap_or_else(|| "passthrough,traces,metrics".into())
        .split(',')
        .map(|s| {
            Scenario::parse(s.trim()).unwrap_or_else(|| panic!("unknown scenario {s:?}: passthrough, traces, metrics"))
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("collector-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut all = Vec::new();
    for scenario in scenarios {
        all.push(bench_scenario(scenario, &core, secs, &dir).await);
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Reporting is this tool's purpose; stdout is the table.
    #[allow(clippy::print_stdout)]
    {
        println!("{}", table(&all));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_items_without_decoding() {
        assert_eq!(count_spans(&request(1)), ITEMS_PER_REQUEST);
        assert_eq!(count_points(&metrics_request(1)), ITEMS_PER_REQUEST);
    }
}
