//! Wires a validated [`Config`] into running components, and shuts them down in order, each
//! phase with its own share of the deadline so one slow phase cannot starve the next:
//! 1. receivers stop accepting and finish in-flight requests (at most a quarter of the budget,
//!    and no more than the listeners' grace); then lingering ones are cut;
//! 2. batch processors flush (until half the budget);
//! 3. exporter queues drain (until the deadline); then retry sleeps and sends in progress are
//!    cancelled and whatever is left is counted in `otelcol_exporter_send_failed_*` and logged.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::config::components::{BasicClientAuth, QueueConfig, RetryConfig};
use crate::config::id::Signal;
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
use crate::pipeline::{Consumer, Exporter, Processor};
use crate::processor::memory_limiter::{MemoryLimiter, MemoryLimiterProcessor};
use crate::processor::{attributes, batch, fused, metricstransform, resource, span};
use crate::receiver::prometheus as prometheus_receiver;
use crate::receiver::{Outputs, hostmetrics, otlp_grpc, otlp_http};
use crate::registry::{ExporterConfig, ExtensionConfig, ProcessorConfig, ReceiverConfig};
use crate::telemetry::{ExporterMetrics, ReceiverMetrics, Telemetry, item_suffix};

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

/// Processors before a batch stage, and the batch stage (id, config) that ends the segment.
type Segment = (Vec<Arc<dyn Processor>>, Option<(String, crate::config::components::BatchConfig)>);

/// Starts one listener: binds `endpoint` for the component at config path `path`, records the
/// address actually bound under `path` in `bound`, and serves `app` on it with `limits` until
/// `stop` fires. Every listener of the service starts here, so `on_ready` reports each of them
/// (a port-0 endpoint included) and a bind error always names the config path.
async fn listen(
    bound: &mut BoundAddrs,
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
    bound.insert(path.clone(), l.local_addr().map_err(err)?);
    Ok(tokio::spawn(async move {
        if let Err(e) = listener::serve(l, app, limits, stop).await {
            tracing::error!(component = path, error = %e, "listener failed");
        }
    }))
}

/// Waits for `tasks` until `deadline`; aborts the ones still running then. True if all ended.
async fn join_until(tasks: Vec<JoinHandle<()>>, deadline: tokio::time::Instant) -> bool {
    let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
    let all = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout_at(deadline, all).await.is_ok() {
        return true;
    }
    aborts.iter().for_each(tokio::task::AbortHandle::abort);
    false
}

/// Logs what each exporter sent, failed to send and refused over the run, once everything has
/// stopped: the last word on what was delivered, readable after the process (and its
/// `/metrics`) is gone.
fn log_exporter_totals(config: &Config, telemetry: &Telemetry) {
    let used: std::collections::BTreeSet<&String> = config.pipelines.iter().flat_map(|p| &p.exporters).collect();
    for id in used {
        let labels = [("exporter", id.as_str())];
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            let count = |what: &str| {
                telemetry.counter_value(&format!("otelcol_exporter_{what}_{}", item_suffix(signal)), &labels)
            };
            let (sent, send_failed, enqueue_failed) = (count("sent"), count("send_failed"), count("enqueue_failed"));
            if sent + send_failed + enqueue_failed > 0 {
                tracing::info!(
                    exporter = id.as_str(),
                    signal = signal.as_str(),
                    sent,
                    send_failed,
                    enqueue_failed,
                    "exporter totals at shutdown"
                );
            }
        }
    }
}

/// What an exporter with the shared queue and retry helper needs to start.
struct Queued<'a> {
    id: &'a str,
    retry: &'a RetryConfig,
    queue: &'a QueueConfig,
    storages: &'a BTreeMap<String, FileStorage>,
}

impl Queued<'_> {
    /// Starts the exporter's queue workers: in memory, or on disk when `sending_queue.storage`
    /// names a `file_storage` (opened off the runtime: it reads the queue back and may wait for
    /// the directory lock).
    async fn start(
        &self,
        sender: Arc<dyn Sender>,
        metrics: ExporterMetrics,
        stop: CancellationToken,
    ) -> Result<(Arc<dyn Exporter>, Vec<JoinHandle<()>>), String> {
        let storage = match (self.queue.enabled, &self.queue.storage) {
            (true, Some(s)) => self.storages.get(s).ok_or_else(|| format!("storage extension {s:?} is not started"))?,
            _ => {
                let (e, h) = QueuedExporter::start(self.id, sender, self.retry.clone(), self.queue, metrics, stop);
                return Ok((e, h));
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
        Ok((e, h))
    }
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

/// Runs the collector until `shutdown` resolves, then drains within `drain_deadline`.
/// `on_ready` is called once every listener is bound and serving, with their addresses (the
/// binary's `--bound-addresses-file` and the in-process test harness learn port-0 ports there).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    drain_deadline: Duration,
    on_ready: impl FnOnce(&BoundAddrs),
) -> Result<Arc<Telemetry>, ServiceError> {
    let telemetry = Telemetry::new();
    let health = Health::new();
    let mut addrs = BoundAddrs::new();
    let stop_receivers = CancellationToken::new();
    let stop_servers = CancellationToken::new();
    let stop_exporters = CancellationToken::new();
    let mut server_tasks: Vec<JoinHandle<()>> = Vec::new();

    // --- extensions ---------------------------------------------------------------------------
    let mut basic_auth: BTreeMap<String, BasicClientAuth> = BTreeMap::new();
    for (id, ext) in &config.extensions {
        if let ExtensionConfig::BasicAuth(b) = ext
            && let Some(c) = &b.client_auth
        {
            basic_auth.insert(id.clone(), c.clone());
        }
    }
    let mut storages: BTreeMap<String, FileStorage> = BTreeMap::new();
    for id in &config.service_extensions {
        if let Some(ExtensionConfig::FileStorage(f)) = config.extensions.get(id) {
            let storage = FileStorage::start(f)
                .map_err(|message| ServiceError::Build { component: format!("extensions.{id}"), message })?;
            storages.insert(id.clone(), storage);
        }
        if let Some(ExtensionConfig::HealthCheck(h)) = config.extensions.get(id) {
            let app = health_check::app(&h.path, health.clone());
            let path = format!("extensions.{id}");
            server_tasks.push(listen(&mut addrs, path, &h.endpoint, app, h.limits(), stop_servers.clone()).await?);
        }
    }

    // --- exporters ----------------------------------------------------------------------------
    let used_exporters: std::collections::BTreeSet<&String> =
        config.pipelines.iter().flat_map(|p| &p.exporters).collect();
    let mut exporters: BTreeMap<String, Arc<dyn Exporter>> = BTreeMap::new();
    let mut exporter_workers: Vec<JoinHandle<()>> = Vec::new();
    for id in used_exporters {
        let Some(cfg) = config.exporters.get(id) else { continue };
        let component = format!("exporters.{id}");
        let build_err = |message: String| ServiceError::Build { component: component.clone(), message };
        let metrics = ExporterMetrics::new(&telemetry, id);
        let auth_of = |a: &Option<crate::config::components::AuthConfig>| {
            a.as_ref().and_then(|a| basic_auth.get(&a.authenticator))
        };
        let exp: Arc<dyn Exporter> = match cfg {
            ExporterConfig::Otlp(c) => {
                let sender = OtlpGrpcSender::new(c, auth_of(&c.auth)).map_err(build_err)?;
                let queued = Queued { id, retry: &c.retry_on_failure, queue: &c.sending_queue, storages: &storages };
                let (e, h) =
                    queued.start(Arc::new(sender), metrics, stop_exporters.clone()).await.map_err(build_err)?;
                exporter_workers.extend(h);
                e
            }
            ExporterConfig::OtlpHttp(c) => {
                let sender = OtlpHttpSender::new(c, auth_of(&c.auth)).map_err(build_err)?;
                let queued = Queued { id, retry: &c.retry_on_failure, queue: &c.sending_queue, storages: &storages };
                let (e, h) =
                    queued.start(Arc::new(sender), metrics, stop_exporters.clone()).await.map_err(build_err)?;
                exporter_workers.extend(h);
                e
            }
            ExporterConfig::Debug(c) => Arc::new(DebugExporter::new(id, c, metrics)),
            ExporterConfig::File(c) => Arc::new(FileExporter::new(c, metrics).map_err(build_err)?),
            ExporterConfig::Prometheus(c) => {
                let exp = PrometheusExporter::new(id, c, &telemetry, metrics);
                let app = prometheus::app(exp.clone());
                let stop = stop_servers.clone();
                server_tasks.push(listen(&mut addrs, component.clone(), &c.endpoint, app, c.limits(), stop).await?);
                Arc::new(exp)
            }
        };
        exporters.insert(id.clone(), exp);
    }

    // --- processors and pipelines -------------------------------------------------------------
    let mut limiters: BTreeMap<String, Arc<MemoryLimiter>> = BTreeMap::new();
    let mut background: Vec<JoinHandle<()>> = Vec::new();
    let mut batch_tasks: Vec<JoinHandle<()>> = Vec::new();
    let mut outputs: BTreeMap<String, Outputs> = BTreeMap::new();
    for p in &config.pipelines {
        // Split the processor list at batch processors: each segment ends in a batch stage
        // (or, for the last one, in the exporter fan-out).
        let mut segments: Vec<Segment> = vec![(Vec::new(), None)];
        for pid in &p.processors {
            let component = format!("processors.{pid}");
            let build_err = |message: String| ServiceError::Build { component: component.clone(), message };
            let Some(cfg) = config.processors.get(pid) else { continue };
            let proc: Arc<dyn Processor> = match cfg {
                ProcessorConfig::Batch(b) => {
                    if let Some(last) = segments.last_mut() {
                        last.1 = Some((pid.clone(), b.clone()));
                    }
                    segments.push((Vec::new(), None));
                    continue;
                }
                ProcessorConfig::MemoryLimiter(m) => {
                    let limiter = match limiters.get(pid) {
                        Some(l) => l.clone(),
                        None => {
                            let (l, h) = MemoryLimiter::start(m).map_err(build_err)?;
                            background.push(h);
                            limiters.insert(pid.clone(), l.clone());
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
            if let Some(last) = segments.last_mut() {
                last.0.push(proc);
            }
        }
        let exps: Vec<Arc<dyn Exporter>> = p.exporters.iter().filter_map(|e| exporters.get(e).cloned()).collect();
        let mut segments = segments.into_iter().rev();
        let (tail_procs, _) = segments.next().unwrap_or_default();
        let mut consumer = Consumer::fanout(fused::fuse(tail_procs), exps);
        for (procs, batch_cfg) in segments {
            let Some((bid, bcfg)) = batch_cfg else { continue };
            let sent = telemetry.counter(
                "otelcol_processor_batch_batch_send_size_count",
                "Number of batches sent by the batch processor.",
                &[("processor", &bid), ("pipeline", &p.id)],
            );
            let (tx, h) = batch::spawn(p.signal, &bcfg, consumer, sent, bid.clone());
            batch_tasks.push(h);
            consumer = Consumer::batch(fused::fuse(procs), tx);
        }
        for r in &p.receivers {
            let o = outputs.entry(r.clone()).or_default();
            match p.signal {
                crate::config::id::Signal::Traces => o.traces.push(consumer.clone()),
                crate::config::id::Signal::Metrics => o.metrics.push(consumer.clone()),
                crate::config::id::Signal::Logs => o.logs.push(consumer.clone()),
            }
        }
    }
    drop(exporters);

    // --- receivers ----------------------------------------------------------------------------
    let mut receiver_tasks: Vec<JoinHandle<()>> = Vec::new();
    for (id, out) in outputs {
        let Some(cfg) = config.receivers.get(&id) else { continue };
        match cfg {
            ReceiverConfig::Otlp(c) => {
                if let Some(g) = &c.protocols.grpc {
                    let app = otlp_grpc::app(g, out.clone(), ReceiverMetrics::new(&telemetry, &id, "grpc"));
                    let path = format!("receivers.{id}.protocols.grpc");
                    let stop = stop_receivers.clone();
                    receiver_tasks.push(listen(&mut addrs, path, &g.endpoint, app, otlp_grpc::limits(g), stop).await?);
                }
                if let Some(h) = &c.protocols.http {
                    let app = otlp_http::app(h, out.clone(), ReceiverMetrics::new(&telemetry, &id, "http"));
                    let path = format!("receivers.{id}.protocols.http");
                    let stop = stop_receivers.clone();
                    receiver_tasks.push(listen(&mut addrs, path, &h.endpoint, app, h.limits(), stop).await?);
                }
            }
            ReceiverConfig::Prometheus(c) => {
                let metrics = ReceiverMetrics::new(&telemetry, &id, "http");
                let task = prometheus_receiver::start(&id, c, out, metrics, stop_receivers.clone())
                    .map_err(|message| ServiceError::Build { component: format!("receivers.{id}"), message })?;
                receiver_tasks.push(task);
            }
            ReceiverConfig::HostMetrics(c) => {
                let task = hostmetrics::start(&id, c, out.metrics.clone(), &telemetry, stop_receivers.clone())
                    .map_err(|message| ServiceError::Build { component: format!("receivers.{id}"), message })?;
                receiver_tasks.push(task);
            }
        }
    }

    // --- own telemetry (bound last, so an answering /metrics means receivers are listening) -----
    if let Some(addr) = config.telemetry.metrics_address() {
        let t = telemetry.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let t = t.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, prom_text::CONTENT_TYPE)], t.render()) }
            }),
        );
        // Upstream's `service.telemetry.metrics` has no server settings: upstream's defaults apply.
        let (path, limits) = ("service.telemetry.metrics".to_owned(), listener::ServerLimits::default());
        server_tasks.push(listen(&mut addrs, path, &addr, app, limits, stop_servers.clone()).await?);
    }

    health.set_ready(true);
    tracing::info!(addresses = ?addrs, "Everything is ready. Begin running and processing data.");
    on_ready(&addrs);

    shutdown.await;
    tracing::info!("Shutdown requested: stopping receivers, then draining pipelines");
    health.set_ready(false);
    stop_receivers.cancel();
    let started = tokio::time::Instant::now();
    let deadline = started + drain_deadline;
    let receivers_until = started + (drain_deadline / 4).min(listener::SHUTDOWN_GRACE + Duration::from_secs(1));
    // Receivers finish in-flight requests and drop their consumers; that closes batch inputs,
    // batch tasks flush and drop the exporters, which closes the queues the workers drain.
    // A phase that overruns is aborted, so the next one still gets its share.
    if !join_until(receiver_tasks, receivers_until).await {
        tracing::warn!("receivers did not stop within their shutdown share; lingering requests were cut");
    }
    if !join_until(batch_tasks, started + drain_deadline / 2).await {
        tracing::warn!("batch processors did not flush within their shutdown share; their buffers are lost");
    }
    let exporters = exporter_workers.iter().map(JoinHandle::abort_handle).collect::<Vec<_>>();
    let drained = async {
        for t in exporter_workers {
            let _ = t.await;
        }
    };
    tokio::pin!(drained);
    if tokio::time::timeout_at(deadline, &mut drained).await.is_err() {
        // Cancel retry sleeps and sends; workers count what is left as failed and exit.
        stop_exporters.cancel();
        if tokio::time::timeout(Duration::from_secs(1), &mut drained).await.is_err() {
            exporters.iter().for_each(tokio::task::AbortHandle::abort);
        }
        tracing::warn!("exporter queues were not drained before the shutdown deadline; the rest was counted as failed");
    }
    for b in background {
        b.abort();
    }
    stop_servers.cancel();
    join_until(server_tasks, tokio::time::Instant::now() + Duration::from_secs(1)).await;
    log_exporter_totals(&config, &telemetry);
    tracing::info!("Shutdown complete.");
    Ok(telemetry)
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
