//! Shared helpers for the collector's integration tests: free ports, starting the real binary
//! with a config, waiting on conditions, an OTLP gRPC sink peer, and span payload builders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind port 0")
}

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

/// A running `telemetry-collector` process; killed on drop.
pub struct Collector {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub metrics_port: u16,
}

impl Collector {
    /// Writes `yaml` to a temp dir and starts the binary; waits until own metrics answer.
    /// `yaml` may use `{DIR}` for the temp dir and must set the telemetry address to `{METRICS}`.
    pub fn start(yaml: &str) -> Self {
        Self::start_with_env(yaml, &[])
    }

    /// [`Collector::start`] with extra environment variables (e.g. `KUBECONFIG`).
    pub fn start_with_env(yaml: &str, env: &[(&str, &std::ffi::OsStr)]) -> Self {
        Self::spawn(yaml, env, &[])
    }

    /// [`Collector::start`] with extra command-line arguments (e.g. `--shutdown-timeout`).
    pub fn start_with_args(yaml: &str, args: &[&str]) -> Self {
        Self::spawn(yaml, &[], args)
    }

    fn spawn(yaml: &str, env: &[(&str, &std::ffi::OsStr)], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let metrics_port = free_port();
        let yaml = yaml
            .replace("{DIR}", &dir.path().display().to_string())
            .replace("{METRICS}", &format!("127.0.0.1:{metrics_port}"));
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, yaml).expect("write config");
        let log = std::fs::File::create(dir.path().join("collector.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_telemetry-collector"))
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .spawn()
            .expect("spawn telemetry-collector");
        let mut c = Self { child, dir, metrics_port };
        let port = c.metrics_port;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = c.child.try_wait() {
                panic!("collector exited early with {status}: {}", c.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "collector did not start: {}", c.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// The collector's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collector.log")).unwrap_or_default()
    }

    /// Path inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Own metrics text.
    pub fn metrics(&self) -> String {
        http_get(&format!("http://127.0.0.1:{}/metrics", self.metrics_port))
    }

    /// Sum of all samples of a metric (across labels).
    pub fn metric_sum(&self, name: &str) -> f64 {
        metric_sum(&self.metrics(), name)
    }

    /// Resident memory of the process in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    /// Sends SIGTERM and waits for exit, returning the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("collector did not exit within {timeout:?} after SIGTERM: {}", self.log());
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// An OTLP gRPC trace sink that counts spans (and, recording, which); stop and restart it to
/// simulate an outage.
pub struct Sink {
    pub spans: Arc<AtomicU64>,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
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
    /// Starts on `addr` (port 0 for a fresh one).
    pub async fn start(addr: SocketAddr, spans: Arc<AtomicU64>) -> Self {
        Self::serve(addr, spans, None).await
    }

    /// [`Sink::start`], also recording each span's ids in `seen`.
    pub async fn start_recording(addr: SocketAddr, spans: Arc<AtomicU64>, seen: SeenSpans) -> Self {
        Self::serve(addr, spans, Some(seen)).await
    }

    async fn serve(addr: SocketAddr, spans: Arc<AtomicU64>, seen: Option<SeenSpans>) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = TraceServiceServer::new(SinkSvc(spans.clone(), seen))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(64 << 20);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await;
        });
        Self { spans, addr, stop: Some(tx), task: Some(task) }
    }

    /// Stops serving (connections are closed).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}
