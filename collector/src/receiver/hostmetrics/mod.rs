//! `hostmetrics` receiver (Linux): every `collection_interval` it runs the configured scrapers
//! over `/proc` and `/sys` under `root_path` and pushes one metrics payload into its pipelines,
//! with the metric names, units, attributes and Sum/Gauge shapes of the upstream receiver v0.155
//! with default metric settings (one resource, empty, per scraper; one scope per scraper; start
//! time = boot time).
//!
//! One module per scraper (a pure parser, a pure OTLP conversion, a thin `scrape` reading files);
//! [`config`] types the scraper options, [`otlp`] holds the shared metric definitions, [`host`] the
//! root and its errors. This file is the shared loop: a scraper that fails (missing file, no
//! permission) is logged once until it recovers and counted in
//! `otelcol_scraper_errored_metric_points`, and never stops the other scrapers.

pub use collector_config::hostmetrics::config;
mod cpu;
mod disk;
mod filesystem;
pub mod host;
mod load;
mod memory;
mod network;
pub mod otlp;
mod paging;
mod processes;
mod system;

#[cfg(test)]
mod fixtures;

use std::collections::BTreeSet;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use self::config::{Scraper, ScraperSettings, Settings};
use self::host::{Host, HostRoot, ScrapeError};
use crate::config::id::Signal;
use crate::pdata::{Payload, data_point_count};
use crate::pipeline::{Consumer, fanout_consumers};
use crate::telemetry::{Counter, ReceiverMetrics, Telemetry};
use collector_config::receiver::hostmetrics::config::HostMetricsConfig;

/// What one scraper produced in one collection.
#[derive(Debug, Default)]
pub struct Scraped {
    /// The metrics it could read.
    pub metrics: Vec<Metric>,
    /// What went wrong, if anything (one entry per failed part or mount).
    pub errors: Vec<ScrapeError>,
    /// How many metrics could not be produced (upstream's "errored" count).
    pub failed_metrics: usize,
}

impl Scraped {
    /// A scraper that produced nothing: `failed` metrics are missing.
    pub fn failed(e: ScrapeError, failed: usize) -> Self {
        Self { metrics: Vec::new(), errors: vec![e], failed_metrics: failed }
    }

    /// Independent parts of one scraper, each with the number of metrics it produces; a failing
    /// part does not hide the others' metrics.
    fn parts(parts: impl IntoIterator<Item = (Result<Vec<Metric>, ScrapeError>, usize)>) -> Self {
        let mut out = Self::default();
        for (r, n) in parts {
            match r {
                Ok(m) => out.metrics.extend(m),
                Err(e) => {
                    out.errors.push(e);
                    out.failed_metrics += n;
                }
            }
        }
        out
    }
}

/// Runs one scraper against the host and drops the metrics its config disabled.
pub fn scrape(host: &Host, s: &ScraperSettings) -> Scraped {
    let one = |r, n| Scraped::parts([(r, n)]);
    let mut out = match &s.scraper {
        Scraper::Cpu => one(cpu::scrape(host), cpu::METRICS.len()),
        Scraper::Disk(f) => one(disk::scrape(host, f), disk::METRICS.len()),
        Scraper::Filesystem(fs) => filesystem::scrape(host, fs),
        Scraper::Load { cpu_average } => one(load::scrape(host, *cpu_average), load::METRICS.len()),
        Scraper::Memory => one(memory::scrape(host), memory::METRICS.len()),
        Scraper::Network(f) => {
            let counters = (network::scrape_counters(host, f), network::METRICS.len() - 1);
            // Walking the socket tables is the expensive part; skip it when switched off.
            if s.disabled.contains(network::CONNECTIONS.name) {
                Scraped::parts([counters])
            } else {
                Scraped::parts([counters, (network::scrape_connections(host), 1)])
            }
        }
        Scraper::Paging => Scraped::parts([(paging::scrape_usage(host), 1), (paging::scrape_vmstat(host), 2)]),
        Scraper::Processes => one(processes::scrape(host), processes::METRICS.len()),
        Scraper::System => one(system::scrape(host), system::METRICS.len()),
    };
    out.metrics.retain(|m| !s.disabled.contains(m.name.as_str()));
    out
}

/// Runs every configured scraper, in config order.
pub fn collect(host: &Host, settings: &Settings) -> Vec<(&'static str, Scraped)> {
    settings.scrapers.iter().map(|s| (s.scraper.name(), scrape(host, s))).collect()
}

/// The export request for one collection: one resource per scraper that produced metrics.
pub fn request(results: Vec<(&'static str, Scraped)>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: results.into_iter().filter_map(|(name, s)| otlp::resource_metrics(name, s.metrics)).collect(),
    }
}

/// Per-scraper own-telemetry counters, with upstream's scraper metric names.
#[derive(Debug)]
struct ScraperCounters {
    scraped: Counter,
    errored: Counter,
}

/// Starts the receiver `id` feeding `consumers`; it stops when `shutdown` is cancelled.
/// Fails when the config is invalid or `root_path` is not a Linux root (its `/proc/stat`, needed
/// for the boot time, cannot be read); the message names the field.
pub fn start(
    id: &str,
    cfg: &HostMetricsConfig,
    consumers: Vec<Consumer>,
    telemetry: &Telemetry,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, String> {
    let settings = Settings::from_config(cfg).map_err(|e| e.join("; "))?;
    let host = Host::open(HostRoot::new(&settings.root_path)).map_err(|e| format!("root_path: {e}"))?;
    let receiver_metrics = ReceiverMetrics::new(telemetry, id, "");
    let counters: Vec<ScraperCounters> = settings
        .scrapers
        .iter()
        .map(|s| {
            let labels = [("receiver", id), ("scraper", s.scraper.name())];
            ScraperCounters {
                scraped: telemetry.counter(
                    "otelcol_scraper_scraped_metric_points",
                    "Number of metric points successfully scraped.",
                    &labels,
                ),
                errored: telemetry.counter(
                    "otelcol_scraper_errored_metric_points",
                    "Number of metric points that were unable to be scraped.",
                    &labels,
                ),
            }
        })
        .collect();
    let id = id.to_owned();
    let (host, settings) = (Arc::new(host), Arc::new(settings));
    Ok(tokio::spawn(async move {
        let first = tokio::time::Instant::now() + settings.initial_delay;
        let mut ticker = tokio::time::interval_at(first, settings.collection_interval);
        // A collection slower than the interval delays the next one instead of bunching them.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut failing: BTreeSet<&'static str> = BTreeSet::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let (h, s) = (host.clone(), settings.clone());
            // Reading every /proc/<pid>/stat is blocking file I/O; keep it off the runtime's workers.
            let results = match tokio::task::spawn_blocking(move || collect(&h, &s)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(receiver = %id, error = %e, "host metrics collection panicked");
                    continue;
                }
            };
            for ((name, scraped), c) in results.iter().zip(&counters) {
                c.scraped.add(scraped.metrics.iter().map(data_point_count).sum::<usize>() as u64);
                c.errored.add(scraped.failed_metrics as u64);
                report(&id, name, scraped, &mut failing);
            }
            let payload = Payload::Metrics(request(results));
            let n = payload.item_count();
            if n == 0 || consumers.is_empty() {
                continue;
            }
            tokio::select! {
                r = fanout_consumers(&consumers, payload.into()) => match r {
                    Ok(()) => receiver_metrics.accepted(Signal::Metrics, n),
                    Err(e) => {
                        receiver_metrics.refused(Signal::Metrics, n);
                        tracing::warn!(receiver = %id, error = %e, "pipeline refused host metrics; this collection is dropped");
                    }
                },
                _ = shutdown.cancelled() => {
                    receiver_metrics.refused(Signal::Metrics, n);
                    break;
                }
            }
        }
    }))
}

/// Logs a scraper's errors once when it starts failing (later failures at debug level, so a
/// permanently unreadable file does not flood the log), and once when it recovers.
fn report(receiver: &str, scraper: &'static str, scraped: &Scraped, failing: &mut BTreeSet<&'static str>) {
    if scraped.errors.is_empty() {
        if failing.remove(scraper) {
            tracing::info!(receiver, scraper, "scraper recovered");
        }
        return;
    }
    let errors: Vec<String> = scraped.errors.iter().map(ToString::to_string).collect();
    if failing.insert(scraper) {
        tracing::warn!(receiver, scraper, errors = ?errors, "scraper failed; further failures are logged at debug level until it recovers");
    } else {
        tracing::debug!(receiver, scraper, errors = ?errors, "scraper still failing");
    }
}

#[cfg(test)]
mod tests;
