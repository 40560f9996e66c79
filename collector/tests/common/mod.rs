//! Shared helpers for the collector's integration tests: the collector in-process
//! ([`in_process`], for component tests) or as the binary ([`process`], for signals, crashes and
//! memory), the upstream collector as a peer ([`otelcol`]), waiting on conditions, an OTLP gRPC
//! sink peer, and span payload builders. Everything listens on port 0 and reads back the address.
#![allow(dead_code)]

pub mod in_process;
pub mod otelcol;
pub mod process;

/// What both collector harnesses (in-process and process) offer on top of their bound addresses:
/// the collector's own metrics.
pub trait Listening {
    /// The bound address of the listener under `key` (a config path, see `BoundAddrs`).
    fn addr(&self, key: &str) -> std::net::SocketAddr;

    /// Own metrics text, from `service.telemetry.metrics`.
    fn metrics(&self) -> String {
        http_get(&format!("http://{}/metrics", self.addr("service.telemetry.metrics")))
    }

    /// Sum of all samples of an own metric (across labels).
    fn metric_sum(&self, name: &str) -> f64 {
        metric_sum(&self.metrics(), name)
    }
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use telemetry_collector::service::BoundAddrs;

/// Polls `cond` until true or the deadline passes.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Async variant of [`wait_until`].
pub async fn wait_until_async(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// The address a collector bound for the listener at config path `key`; panics naming the keys
/// it has otherwise.
pub fn bound_addr(addrs: &BoundAddrs, key: &str) -> SocketAddr {
    *addrs.get(key).unwrap_or_else(|| panic!("no listener {key:?}; the collector bound {addrs:?}"))
}

/// An address nothing answers on, for a downstream or a scrape target that is down: a port bound
/// but never listened on, so a connection is refused at once, and held while this lives, so
/// nothing else can take it meanwhile.
pub struct DeadPort {
    pub addr: SocketAddr,
    _socket: tokio::net::TcpSocket,
}

impl DeadPort {
    pub fn bind() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind port 0");
        Self { addr: socket.local_addr().expect("bound address"), _socket: socket }
    }
}

/// Sum of samples for `name` in Prometheus text.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' ')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Blocking HTTP GET returning the `Content-Type` header ("" on error or when there is none).
pub fn http_content_type(url: &str) -> String {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        let response = rt.block_on(reqwest::get(&url)).ok()?;
        Some(response.headers().get(reqwest::header::CONTENT_TYPE)?.to_str().ok()?.to_owned())
    })
    .join()
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// Blocking HTTP GET returning the body ("" on error).
pub fn http_get(url: &str) -> String {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        rt.block_on(async { reqwest::get(&url).await.ok()?.text().await.ok() })
    })
    .join()
    .ok()
    .flatten()
    .unwrap_or_default()
}

// The venv's Python and the Go-built binaries are found the same way by every crate's tests.
#[allow(unused_imports)] // each test binary uses its own subset
pub use telemetry_tests::{python, tool};

pub fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(V::StringValue(v.into())) }), ..Default::default() }
}

/// A request with `n` spans whose names are `{prefix}-{i}`, unique trace ids from `seq`.
pub fn spans_request(prefix: &str, n: usize, seq: u64) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", "it")], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| Span {
                        trace_id: [seq.to_be_bytes(), (i as u64).to_be_bytes()].concat(),
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        name: format!("{prefix}-{i}"),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        end_time_unix_nano: 1_700_000_000_100_000_000,
                        attributes: vec![kv("http.route", "/reviews"), kv("seq", &seq.to_string())],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Spans seen by a recording [`Sink`], keyed by trace id and span id, with how often each came.
pub type SeenSpans = Arc<Mutex<HashMap<Vec<u8>, u32>>>;

/// An OTLP gRPC trace sink on port 0 that counts spans (and, recording, which); stop and restart
/// it to simulate an outage.
pub struct Sink {
    pub spans: Arc<AtomicU64>,
    pub addr: SocketAddr,
    svc: SinkSvc,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// While stopped, the sink's port, bound but not listening: connections are refused as by a
    /// downstream that is gone, and no one else can take the port before the restart.
    held: Option<tokio::net::TcpSocket>,
}

#[derive(Clone)]
struct SinkSvc(Arc<AtomicU64>, Option<SeenSpans>);

#[tonic::async_trait]
impl TraceService for SinkSvc {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let n: usize = req.get_ref().resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        if let Some(seen) = &self.1 {
            let mut seen = seen.lock().expect("seen spans");
            for s in req.get_ref().resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                *seen.entry([s.trace_id.as_slice(), &s.span_id].concat()).or_default() += 1;
            }
        }
        self.0.fetch_add(n as u64, Ordering::SeqCst);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Sink {
    /// Starts on a fresh port, counting spans in `spans`.
    pub async fn start(spans: Arc<AtomicU64>) -> Self {
        Self::serve(SinkSvc(spans, None)).await
    }

    /// [`Sink::start`], also recording each span's ids in `seen`.
    pub async fn start_recording(spans: Arc<AtomicU64>, seen: SeenSpans) -> Self {
        Self::serve(SinkSvc(spans, Some(seen))).await
    }

    async fn serve(svc: SinkSvc) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let mut sink = Self { spans: svc.0.clone(), addr, svc, stop: None, task: None, held: None };
        sink.serve_on(listener);
        sink
    }

    fn serve_on(&mut self, listener: tokio::net::TcpListener) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = TraceServiceServer::new(self.svc.clone())
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(64 << 20);
        self.task = Some(tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await;
        }));
        self.stop = Some(tx);
    }

    /// Stops serving: connections are closed, new ones refused.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        // The listener is closed now; take its port back at once, without listening on it.
        // SO_REUSEADDR: the closed connections linger in TIME_WAIT on this side.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(self.addr).expect("hold the sink's port");
        self.held = Some(socket);
    }

    /// Serves again on the same address after [`Sink::stop`].
    pub async fn restart(&mut self) {
        let held = self.held.take().expect("the sink is stopped");
        drop(held);
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("rebind the sink's port");
        self.serve_on(listener);
    }
}
