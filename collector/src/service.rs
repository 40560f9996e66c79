//! Wires a validated [`Config`] into running components, and shuts them down in order, each
//! phase with its own share of the deadline so one slow phase cannot starve the next:
//! 1. receivers stop accepting and finish in-flight requests (at most a quarter of the budget,
//!    and no more than the listeners' grace); then lingering ones are cut;
//! 2. batch processors flush (until half the budget);
//! 3. exporter queues drain (until the deadline); then retry sleeps and sends in progress are
//!    cancelled and whatever is left is counted in `otelcol_exporter_send_failed_*` and logged.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::build::{self, Context, Stage};
pub use crate::build::{BoundAddrs, ServiceError};
use crate::config::id::Signal;
use crate::config::{Config, Pipeline};
use crate::listener;
use crate::pipeline::{Consumer, Exporter, Processor};
use crate::processor::{batch, fused};
use crate::receiver::Outputs;
use crate::telemetry::{Telemetry, item_suffix};

/// Runs the collector until `shutdown` resolves, then drains within `drain_deadline`.
/// `on_ready` is called once every listener is bound and serving, with their addresses (the
/// binary's `--bound-addresses-file` and the in-process test harness learn port-0 ports there).
///
/// Components start downstream first — extensions, exporters, pipelines, receivers — so nothing
/// accepts data before what it feeds exists; they stop in the reverse order (see the module doc).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    drain_deadline: Duration,
    on_ready: impl FnOnce(&BoundAddrs),
) -> Result<Arc<Telemetry>, ServiceError> {
    let mut cx = Context::new();
    for id in &config.service_extensions {
        if let Some(cfg) = config.extensions.get(id) {
            build::start_extension(id, cfg, &mut cx).await?;
        }
    }
    let mut exporters: BTreeMap<String, Arc<dyn Exporter>> = BTreeMap::new();
    for id in config.pipelines.iter().flat_map(|p| &p.exporters).collect::<std::collections::BTreeSet<_>>() {
        if let Some(cfg) = config.exporters.get(id) {
            exporters.insert(id.clone(), build::exporter(id, cfg, &config.extensions, &mut cx).await?);
        }
    }
    let mut outputs: BTreeMap<String, Outputs> = BTreeMap::new();
    for p in &config.pipelines {
        let consumer = assemble_pipeline(p, &config, &exporters, &mut cx)?;
        for r in &p.receivers {
            let o = outputs.entry(r.clone()).or_default();
            match p.signal {
                Signal::Traces => o.traces.push(consumer.clone()),
                Signal::Metrics => o.metrics.push(consumer.clone()),
                Signal::Logs => o.logs.push(consumer.clone()),
            }
        }
    }
    // The pipelines hold the exporters now: the last consumer dropped closes an exporter's queue.
    drop(exporters);
    for (id, out) in outputs {
        if let Some(cfg) = config.receivers.get(&id) {
            build::start_receiver(&id, cfg, out, &mut cx).await?;
        }
    }
    // Bound last, so an answering /metrics means receivers are listening.
    if let Some(addr) = config.telemetry.metrics_address() {
        serve_own_metrics(&addr, &mut cx).await?;
    }

    cx.health.set_ready(true);
    tracing::info!(addresses = ?cx.addrs, "Everything is ready. Begin running and processing data.");
    on_ready(&cx.addrs);
    shutdown.await;
    let telemetry = cx.telemetry.clone();
    stop_in_order(cx, drain_deadline).await;
    log_exporter_totals(&config, &telemetry);
    tracing::info!("Shutdown complete.");
    Ok(telemetry)
}

/// Processors before a batch stage, and the batch stage (id, config) that ends the segment.
type Segment = (Vec<Arc<dyn Processor>>, Option<(String, collector_config::processor::batch::BatchConfig)>);

/// Builds pipeline `p`'s consumer chain: its processors in order, cut into segments at each batch
/// processor (a batch stage runs as its own task), ending in the fan-out to its exporters.
fn assemble_pipeline(
    p: &Pipeline,
    config: &Config,
    exporters: &BTreeMap<String, Arc<dyn Exporter>>,
    cx: &mut Context,
) -> Result<Consumer, ServiceError> {
    let mut segments: Vec<Segment> = vec![(Vec::new(), None)];
    for pid in &p.processors {
        let Some(cfg) = config.processors.get(pid) else { continue };
        match build::processor(pid, cfg, cx)? {
            Stage::Batch(b) => {
                if let Some(last) = segments.last_mut() {
                    last.1 = Some((pid.clone(), b));
                }
                segments.push((Vec::new(), None));
            }
            Stage::Processor(proc) => {
                if let Some(last) = segments.last_mut() {
                    last.0.push(proc);
                }
            }
        }
    }
    let exps: Vec<Arc<dyn Exporter>> = p.exporters.iter().filter_map(|e| exporters.get(e).cloned()).collect();
    let mut segments = segments.into_iter().rev();
    let (tail_procs, _) = segments.next().unwrap_or_default();
    let mut consumer = Consumer::fanout(fused::fuse(tail_procs), exps);
    for (procs, batch_cfg) in segments {
        let Some((bid, bcfg)) = batch_cfg else { continue };
        let sent = cx.telemetry.counter(
            "otelcol_processor_batch_batch_send_size_count",
            "Number of batches sent by the batch processor.",
            &[("processor", &bid), ("pipeline", &p.id)],
        );
        let (tx, h) = batch::spawn(p.signal, &bcfg, consumer, sent, bid.clone());
        cx.batch_tasks.push(h);
        consumer = Consumer::batch(fused::fuse(procs), tx);
    }
    Ok(consumer)
}

/// Serves the collector's own metrics (`service.telemetry.metrics`) on `addr`.
async fn serve_own_metrics(addr: &str, cx: &mut Context) -> Result<(), ServiceError> {
    let t = cx.telemetry.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let t = t.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, prom_text::CONTENT_TYPE)], t.render()) }
        }),
    );
    // Upstream's `service.telemetry.metrics` has no server settings: upstream's defaults apply.
    let (path, limits) = ("service.telemetry.metrics".to_owned(), listener::ServerLimits::default());
    let stop = cx.stop_servers.clone();
    let task = cx.listen(path, addr, app, limits, stop).await?;
    cx.server_tasks.push(task);
    Ok(())
}

/// The shutdown phases of the module doc, each within its share of `drain_deadline`.
async fn stop_in_order(cx: Context, drain_deadline: Duration) {
    tracing::info!("Shutdown requested: stopping receivers, then draining pipelines");
    cx.health.set_ready(false);
    cx.stop_receivers.cancel();
    let started = tokio::time::Instant::now();
    let deadline = started + drain_deadline;
    let receivers_until = started + (drain_deadline / 4).min(listener::SHUTDOWN_GRACE + Duration::from_secs(1));
    // Receivers finish in-flight requests and drop their consumers; that closes batch inputs,
    // batch tasks flush and drop the exporters, which closes the queues the workers drain.
    // A phase that overruns is aborted, so the next one still gets its share.
    if !join_until(cx.receiver_tasks, receivers_until).await {
        tracing::warn!("receivers did not stop within their shutdown share; lingering requests were cut");
    }
    if !join_until(cx.batch_tasks, started + drain_deadline / 2).await {
        tracing::warn!("batch processors did not flush within their shutdown share; their buffers are lost");
    }
    let exporters = cx.exporter_workers.iter().map(JoinHandle::abort_handle).collect::<Vec<_>>();
    let drained = async {
        for t in cx.exporter_workers {
            let _ = t.await;
        }
    };
    tokio::pin!(drained);
    if tokio::time::timeout_at(deadline, &mut drained).await.is_err() {
        // Cancel retry sleeps and sends; workers count what is left as failed and exit.
        cx.stop_exporters.cancel();
        if tokio::time::timeout(Duration::from_secs(1), &mut drained).await.is_err() {
            exporters.iter().for_each(tokio::task::AbortHandle::abort);
        }
        tracing::warn!("exporter queues were not drained before the shutdown deadline; the rest was counted as failed");
    }
    for b in cx.background {
        b.abort();
    }
    cx.stop_servers.cancel();
    join_until(cx.server_tasks, tokio::time::Instant::now() + Duration::from_secs(1)).await;
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

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
