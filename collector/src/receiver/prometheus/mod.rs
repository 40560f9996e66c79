//! The `prometheus` receiver: scrapes Prometheus targets and feeds the metrics pipelines.
//!
//! Modules, in the order data flows:
//! - [`plan`]: the receiver config → validated, compiled jobs (also used by config validation);
//! - [`kubernetes`]: pod discovery (label sets per pod container port) and its watch;
//! - [`targets`]: discovered label sets + job defaults + `relabel_configs` → scrape targets;
//! - [`scrape`]: one loop per target (HTTP GET, timeout, `up = 0` on failure);
//! - [`exposition`]: the text format parser; [`convert`]: samples → OTLP; [`relabel`]: the rules.
//!
//! This file runs a job: it gathers its discovery sources' target lists, and starts and stops
//! scrape loops so that exactly the current targets are scraped.

pub mod convert;
pub mod exposition;
pub mod kubernetes;
pub mod scrape;
pub mod targets;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use collector_config::prometheus::{plan, relabel};
pub use plan::plan;

use super::Outputs;
use crate::telemetry::ReceiverMetrics;
use collector_config::receiver::prometheus::config::PrometheusReceiverConfig;
use kubernetes::Watch;
use plan::{Job, Namespaces};
use relabel::Labels;
use scrape::Sink;
use targets::Update;

/// Discovery updates waiting for the job task. Each update carries a source's whole list, so a
/// full queue only delays discovery (watchers wait) and loses nothing.
const UPDATE_QUEUE: usize = 16;

/// Starts the receiver `id`: one task per scrape job, all stopping when `stop` fires. The
/// returned task ends once every scrape loop has ended.
pub fn start(
    id: &str,
    cfg: &PrometheusReceiverConfig,
    outputs: Outputs,
    metrics: ReceiverMetrics,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, String> {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let jobs = plan(&format!("receivers.{id}"), cfg, &mut errors, &mut warnings);
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let sink = Sink { consumers: outputs.metrics, metrics };
    let mut tasks = JoinSet::new();
    for job in jobs {
        let client = reqwest::Client::builder()
            .redirect(if job.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .user_agent(concat!("telemetry-collector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("receivers.{id}: building the HTTP client: {e}"))?;
        tasks.spawn(run_job(Arc::new(job), client, sink.clone(), stop.clone()));
    }
    Ok(tokio::spawn(async move { while tasks.join_next().await.is_some() {} }))
}

/// The pod watches of a job: one per namespace of each discovery entry (or one for all), each with
/// its entry's selectors. Their position (after the static targets) is their source number.
fn watches(job: &Job) -> Vec<Watch> {
    let mut out = Vec::new();
    for d in &job.pod_discovery {
        let watch = |namespace| Watch {
            namespace,
            label_selector: d.label_selector.clone(),
            field_selector: d.field_selector.clone(),
        };
        match &d.namespaces {
            Namespaces::All => out.push(watch(None)),
            Namespaces::Names(names) => out.extend(names.iter().cloned().map(|n| watch(Some(n)))),
            Namespaces::Own => match kubernetes::own_namespace() {
                Some(n) => out.push(watch(Some(n))),
                None => tracing::error!(
                    job = %job.name,
                    "kubernetes_sd_configs: own_namespace is set but the collector's namespace is unknown (not running in a pod?); skipping"
                ),
            },
        }
    }
    out
}

/// A running scrape loop.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Starts the job's pod watches, one more target source each (appended to `sources`), sending
/// their target lists on `tx`. The returned set ends when every watch has.
fn start_discovery(
    job: &Job,
    sources: &mut Vec<Vec<Labels>>,
    tx: mpsc::Sender<Update>,
    stop: &CancellationToken,
) -> JoinSet<()> {
    let watches = watches(job);
    let mut watchers = JoinSet::new();
    if !watches.is_empty() {
        let (job_name, stop) = (job.name.clone(), stop.clone());
        let first = sources.len();
        sources.resize(first + watches.len(), Vec::new());
        watchers.spawn(async move {
            let Some(kube) = kubernetes::client(&job_name, &stop).await else { return };
            let mut each = JoinSet::new();
            for (i, watch) in watches.into_iter().enumerate() {
                each.spawn(kubernetes::watch_pods(
                    kube.clone(),
                    watch,
                    job_name.clone(),
                    first + i,
                    tx.clone(),
                    stop.clone(),
                ));
            }
            while each.join_next().await.is_some() {}
        });
    }
    watchers
}

async fn run_job(job: Arc<Job>, client: reqwest::Client, sink: Sink, stop: CancellationToken) {
    // Source 0 is the static targets; each pod watch is one more source.
    let mut sources: Vec<Vec<Labels>> = vec![job.static_targets.clone()];
    let (tx, mut rx) = mpsc::channel::<Update>(UPDATE_QUEUE);
    let mut watchers = start_discovery(&job, &mut sources, tx, &stop);

    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut reconcile = |sources: &[Vec<Labels>], running: &mut BTreeMap<String, Running>| {
        let (wanted, errors) = targets::build_all(&job, sources);
        let mut now_reported = BTreeSet::new();
        for (labels, e) in errors {
            let line = format!("{e} (discovered labels {labels:?})");
            if !reported.contains(&line) {
                tracing::warn!(job = %job.name, error = %e, discovered = ?labels, "skipping target");
            }
            now_reported.insert(line);
        }
        reported = now_reported;
        running.retain(|key, r| {
            let keep = wanted.contains_key(key);
            if !keep {
                tracing::info!(job = %job.name, target = %key, "scrape target removed");
                r.stop.cancel();
            }
            keep
        });
        for (key, target) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            tracing::info!(job = %job.name, url = %target.url, "scrape target added");
            let token = stop.child_token();
            let task = tokio::spawn(scrape::run(job.clone(), target, client.clone(), sink.clone(), token.clone()));
            running.insert(key, Running { stop: token, task });
        }
    };
    reconcile(&sources, &mut running);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            update = rx.recv() => match update {
                Some(Update { source, targets }) => {
                    if let Some(slot) = sources.get_mut(source) {
                        *slot = targets;
                    }
                    reconcile(&sources, &mut running);
                }
                // No discovery left (static targets only, or every watch ended): keep scraping.
                None => {
                    stop.cancelled().await;
                    break;
                }
            },
        }
    }
    for r in running.values() {
        r.stop.cancel();
    }
    for (_, r) in running {
        let _ = r.task.await;
    }
    watchers.shutdown().await;
}
