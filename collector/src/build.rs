//! The collector's half of the registry: for every variant of the config enums
//! (`collector_config::registry`), the runtime component it builds — one `match` per kind, one arm
//! per component type, each arm a call into the component's own module. [`Context`] is what every
//! builder shares: own telemetry, the health flag, the stop signals of the shutdown phases, the
//! tasks started so far (by phase), and [`Context::listen`], the one place a listener is bound,
//! served and its bound address reported.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use collector_config::processor::batch::BatchConfig;
use collector_config::shared::{AuthConfig, QueueConfig, RetryConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::exporter::debug::DebugExporter;
use crate::exporter::file::FileExporter;
use crate::exporter::helper::{QueuedExporter, Sender};
use crate::exporter::otlp::OtlpGrpcSender;
use crate::exporter::otlphttp::OtlpHttpSender;
use crate::exporter::persistent_queue::PersistentQueue;
use crate::exporter::prometheus::{self, PrometheusExporter};
use crate::extension::file_storage::FileStorage;
use crate::extension::health_check::{self, Health};
use crate::listener;
use crate::pipeline::{Exporter, Processor};
use crate::processor::memory_limiter::{MemoryLimiter, MemoryLimiterProcessor};
use crate::processor::{attributes, metricstransform, resource, span};
use crate::receiver::prometheus as prometheus_receiver;
use crate::receiver::{Outputs, hostmetrics, otlp_grpc, otlp_http};
use crate::registry::{ExporterConfig, ExtensionConfig, ProcessorConfig, ReceiverConfig};
use crate::telemetry::{ExporterMetrics, ReceiverMetrics, Telemetry};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A listen address could not be bound (in use, bad address, permissions).
    #[error("{component}: cannot listen on {endpoint}: {source}")]
    Bind {
        /// Config path of the component.
        component: String,
        /// The configured endpoint.
        endpoint: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A component could not be built from its (valid) config, e.g. an unreadable CA file.
    #[error("{component}: {message}")]
    Build {
        /// Config path of the component.
        component: String,
        /// What went wrong.
        message: String,
    },
}

/// The address each listener actually bound (the port the OS chose for a `:0` endpoint), keyed by
/// the config path of the section that holds its `endpoint` (or `address`):
///
/// | key                               | listener                                   |
/// |-----------------------------------|--------------------------------------------|
/// | `receivers.<id>.protocols.grpc`   | an `otlp` receiver's gRPC server           |
/// | `receivers.<id>.protocols.http`   | an `otlp` receiver's HTTP server           |
/// | `exporters.<id>`                  | a `prometheus` exporter's `/metrics`       |
/// | `extensions.<id>`                 | a `health_check` extension                 |
/// | `service.telemetry.metrics`       | the collector's own `/metrics`             |
///
/// `<id>` is the component id as written, e.g. `receivers.otlp/internal.protocols.grpc`.
pub type BoundAddrs = BTreeMap<String, SocketAddr>;

/// What the builders share while the service starts, and what the service stops at shutdown.
/// Tasks are kept by shutdown phase, since each phase waits for its own.
#[derive(Debug)]
pub struct Context {
    /// Own metrics.
    pub telemetry: Arc<Telemetry>,
    /// The flag `health_check` extensions report.
    pub health: Arc<Health>,
    /// Every listener's bound address, reported through `on_ready`.
    pub addrs: BoundAddrs,
    /// Fired first at shutdown: receivers stop accepting.
    pub stop_receivers: CancellationToken,
    /// Fired last: `/metrics`, health and exporter listeners close.
    pub stop_servers: CancellationToken,
    /// Fired when the drain deadline passes: retry sleeps and sends are cancelled.
    pub stop_exporters: CancellationToken,
    /// Receivers' listeners and scrape loops.
    pub receiver_tasks: Vec<JoinHandle<()>>,
    /// Batch processors.
    pub batch_tasks: Vec<JoinHandle<()>>,
    /// Exporter queue workers.
    pub exporter_workers: Vec<JoinHandle<()>>,
    /// Listeners that outlive the pipelines (health, exporters' `/metrics`, own metrics).
    pub server_tasks: Vec<JoinHandle<()>>,
    /// Tasks that are simply aborted at the end (memory limiter sampling).
    pub background: Vec<JoinHandle<()>>,
    /// Started `file_storage` extensions, by id, for persistent sending queues.
    storages: BTreeMap<String, FileStorage>,
    /// Memory limiters by processor id: one limiter however many pipelines list it.
    limiters: BTreeMap<String, Arc<MemoryLimiter>>,
}

impl Context {
    /// A context with nothing started yet.
    pub fn new() -> Self {
        Self {
            telemetry: Telemetry::new(),
            health: Health::new(),
            addrs: BoundAddrs::new(),
            stop_receivers: CancellationToken::new(),
            stop_servers: CancellationToken::new(),
            stop_exporters: CancellationToken::new(),
            receiver_tasks: Vec::new(),
            batch_tasks: Vec::new(),
            exporter_workers: Vec::new(),
            server_tasks: Vec::new(),
            background: Vec::new(),
            storages: BTreeMap::new(),
            limiters: BTreeMap::new(),
        }
    }

    /// Starts one listener: binds `endpoint` for the component at config path `path`, records the
    /// address actually bound under `path`, and serves `app` on it with `limits` until `stop`
    /// fires. Every listener of the service starts here, so `on_ready` reports each of them (a
    /// port-0 endpoint included) and a bind error always names the config path.
    pub async fn listen(
        &mut self,
        path: String,
        endpoint: &str,
        app: axum::Router,
        limits: listener::ServerLimits,
        stop: CancellationToken,
    ) -> Result<JoinHandle<()>, ServiceError> {
        let err = |source| ServiceError::Bind { component: path.clone(), endpoint: endpoint.to_owned(), source };
        // `localhost:4317` style endpoints need resolution; take the first address.
        let addr = tokio::net::lookup_host(endpoint)
            .await
            .map_err(err)?
            .next()
            .ok_or_else(|| err(std::io::Error::other("address resolved to nothing")))?;
        let l = TcpListener::bind(addr).await.map_err(err)?;
        self.addrs.insert(path.clone(), l.local_addr().map_err(err)?);
        Ok(tokio::spawn(async move {
            if let Err(e) = listener::serve(l, app, limits, stop).await {
                tracing::error!(component = path, error = %e, "listener failed");
            }
        }))
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts an extension enabled in `service.extensions`. (`basicauth` has nothing to start: the
/// exporters that reference it read its credentials from the config.)
pub async fn start_extension(id: &str, cfg: &ExtensionConfig, cx: &mut Context) -> Result<(), ServiceError> {
    let component = format!("extensions.{id}");
    match cfg {
        ExtensionConfig::FileStorage(f) => {
            let storage = FileStorage::start(f).map_err(|message| ServiceError::Build { component, message })?;
            cx.storages.insert(id.to_owned(), storage);
        }
        ExtensionConfig::HealthCheck(h) => {
            let app = health_check::app(&h.path, cx.health.clone());
            let stop = cx.stop_servers.clone();
            let task = cx.listen(component, &h.endpoint, app, h.limits(), stop).await?;
            cx.server_tasks.push(task);
        }
        ExtensionConfig::BasicAuth(_) => {}
    }
    Ok(())
}

/// Builds exporter `id` and starts what it runs (queue workers, a `/metrics` listener).
/// `extensions` are all configured extensions, for the credentials of an `auth:` reference.
pub async fn exporter(
    id: &str,
    cfg: &ExporterConfig,
    extensions: &BTreeMap<String, ExtensionConfig>,
    cx: &mut Context,
) -> Result<Arc<dyn Exporter>, ServiceError> {
    let component = format!("exporters.{id}");
    let build_err = |message: String| ServiceError::Build { component: component.clone(), message };
    let metrics = ExporterMetrics::new(&cx.telemetry, id);
    let auth_of = |a: &Option<AuthConfig>| match a.as_ref().and_then(|a| extensions.get(&a.authenticator)) {
        Some(ExtensionConfig::BasicAuth(b)) => b.client_auth.as_ref(),
        _ => None,
    };
    Ok(match cfg {
        ExporterConfig::Otlp(c) => {
            let sender = OtlpGrpcSender::new(c, auth_of(&c.auth)).map_err(build_err)?;
            let queued = Queued { id, retry: &c.retry_on_failure, queue: &c.sending_queue };
            queued.start(Arc::new(sender), metrics, cx).await.map_err(build_err)?
        }
        ExporterConfig::OtlpHttp(c) => {
            let sender = OtlpHttpSender::new(c, auth_of(&c.auth)).map_err(build_err)?;
            let queued = Queued { id, retry: &c.retry_on_failure, queue: &c.sending_queue };
            queued.start(Arc::new(sender), metrics, cx).await.map_err(build_err)?
        }
        ExporterConfig::Debug(c) => Arc::new(DebugExporter::new(id, c, metrics)),
        ExporterConfig::File(c) => Arc::new(FileExporter::new(c, metrics).map_err(build_err)?),
        ExporterConfig::Prometheus(c) => {
            let exp = PrometheusExporter::new(id, c, &cx.telemetry, metrics);
            let app = prometheus::app(exp.clone());
            let stop = cx.stop_servers.clone();
            let task = cx.listen(component.clone(), &c.endpoint, app, c.limits(), stop).await?;
            cx.server_tasks.push(task);
            Arc::new(exp)
        }
    })
}

/// One stage of a pipeline's processor list.
#[derive(Debug)]
pub enum Stage {
    /// A processor applied in line.
    Processor(Arc<dyn Processor>),
    /// A batch processor: ends a segment of the chain with a batching task.
    Batch(BatchConfig),
}

/// Builds processor `id` for one pipeline. A memory limiter is built once and shared by every
/// pipeline listing it (its limit is one budget, as upstream's).
pub fn processor(id: &str, cfg: &ProcessorConfig, cx: &mut Context) -> Result<Stage, ServiceError> {
    let build_err = |message: String| ServiceError::Build { component: format!("processors.{id}"), message };
    let proc: Arc<dyn Processor> = match cfg {
        ProcessorConfig::Batch(b) => return Ok(Stage::Batch(b.clone())),
        ProcessorConfig::MemoryLimiter(m) => {
            let limiter = match cx.limiters.get(id) {
                Some(l) => l.clone(),
                None => {
                    let (l, h) = MemoryLimiter::start(m).map_err(build_err)?;
                    cx.background.push(h);
                    cx.limiters.insert(id.to_owned(), l.clone());
                    l
                }
            };
            Arc::new(MemoryLimiterProcessor(limiter))
        }
        ProcessorConfig::Resource(c) => Arc::new(resource::ResourceProcessor::new(c).map_err(build_err)?),
        ProcessorConfig::Attributes(c) => Arc::new(attributes::AttributesProcessor::new(c).map_err(build_err)?),
        ProcessorConfig::Span(c) => Arc::new(span::SpanProcessor::new(c).map_err(build_err)?),
        ProcessorConfig::MetricsTransform(c) => {
            Arc::new(metricstransform::MetricsTransform::new(c).map_err(build_err)?)
        }
    };
    Ok(Stage::Processor(proc))
}

/// Starts receiver `id`, feeding `out`.
pub async fn start_receiver(
    id: &str,
    cfg: &ReceiverConfig,
    out: Outputs,
    cx: &mut Context,
) -> Result<(), ServiceError> {
    let build_err = |message: String| ServiceError::Build { component: format!("receivers.{id}"), message };
    let stop = cx.stop_receivers.clone();
    match cfg {
        ReceiverConfig::Otlp(c) => {
            if let Some(g) = &c.protocols.grpc {
                let app = otlp_grpc::app(g, out.clone(), ReceiverMetrics::new(&cx.telemetry, id, "grpc"));
                let path = format!("receivers.{id}.protocols.grpc");
                let task = cx.listen(path, &g.endpoint, app, otlp_grpc::limits(g), stop.clone()).await?;
                cx.receiver_tasks.push(task);
            }
            if let Some(h) = &c.protocols.http {
                let app = otlp_http::app(h, out, ReceiverMetrics::new(&cx.telemetry, id, "http"));
                let path = format!("receivers.{id}.protocols.http");
                let task = cx.listen(path, &h.endpoint, app, h.limits(), stop).await?;
                cx.receiver_tasks.push(task);
            }
        }
        ReceiverConfig::Prometheus(c) => {
            let metrics = ReceiverMetrics::new(&cx.telemetry, id, "http");
            cx.receiver_tasks.push(prometheus_receiver::start(id, c, out, metrics, stop).map_err(build_err)?);
        }
        ReceiverConfig::HostMetrics(c) => {
            let task = hostmetrics::start(id, c, out.metrics, &cx.telemetry, stop).map_err(build_err)?;
            cx.receiver_tasks.push(task);
        }
    }
    Ok(())
}

/// What an exporter with the shared queue and retry helper needs to start.
struct Queued<'a> {
    id: &'a str,
    retry: &'a RetryConfig,
    queue: &'a QueueConfig,
}

impl Queued<'_> {
    /// Starts the exporter's queue workers: in memory, or on disk when `sending_queue.storage`
    /// names a `file_storage` (opened off the runtime: it reads the queue back and may wait for
    /// the directory lock).
    async fn start(
        &self,
        sender: Arc<dyn Sender>,
        metrics: ExporterMetrics,
        cx: &mut Context,
    ) -> Result<Arc<dyn Exporter>, String> {
        let stop = cx.stop_exporters.clone();
        let storage = match (self.queue.enabled, &self.queue.storage) {
            (true, Some(s)) => cx.storages.get(s).ok_or_else(|| format!("storage extension {s:?} is not started"))?,
            _ => {
                let (e, h) = QueuedExporter::start(self.id, sender, self.retry.clone(), self.queue, metrics, stop);
                cx.exporter_workers.extend(h);
                return Ok(e);
            }
        };
        let opts = storage.queue_options(self.id, self.queue);
        let dir = opts.dir.clone();
        let (disk, resumed) = tokio::task::spawn_blocking(move || PersistentQueue::open(opts))
            .await
            .map_err(|e| format!("opening the persistent queue failed: {e}"))?
            .map_err(|e| format!("sending_queue.storage: {e}"))?;
        tracing::info!(exporter = self.id, directory = %dir.display(), batches = resumed.records, items = resumed.items, damaged_bytes = resumed.damaged_bytes, "persistent queue opened");
        let (e, h) =
            QueuedExporter::start_persistent(self.id, sender, self.retry.clone(), self.queue, disk, metrics, stop);
        cx.exporter_workers.extend(h);
        Ok(e)
    }
}
