//! The scrape loop of one target: every interval, GET the metrics URL within the timeout, parse,
//! convert and push into the pipelines. A failing target reports `up = 0` (and logs when it
//! starts failing or the reason changes, and when it recovers); it never stops the loop.
//!
//! Bounds: one scrape in flight per target (the next tick waits for the push, missed ticks are
//! skipped, so a slow pipeline slows scraping instead of queueing), and a response body limit.
//! Parsing and conversion run on the blocking pool (a large exposition would otherwise hold an
//! async worker), and the scrape timeout covers them as well as the fetch. A parse that outlives
//! the timeout keeps its blocking thread until it ends (it cannot be interrupted); the series
//! state it holds is skipped by the next scrapes until then, so at most one parse per target
//! runs at a time. Error messages are logged cut to [`LOG_MESSAGE_LIMIT`] characters.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::convert::{self, ScrapeContext, SeriesState};
use super::exposition;
use super::plan::Job;
use super::targets::Target;
use crate::config::id::Signal;
use crate::pdata::Payload;
use crate::pipeline::{Consumer, fanout_consumers};
use crate::telemetry::ReceiverMetrics;

/// Largest body we read; a bigger one fails the scrape. Prometheus' default is unlimited, but
/// one runaway target must not take the collector's memory: 64 MiB is ~500k series.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Longest error message logged for a failing target, in characters.
pub const LOG_MESSAGE_LIMIT: usize = 512;

/// What we ask targets for: the classic text format (the only one we parse).
const ACCEPT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

/// Where scraped data goes.
#[derive(Debug, Clone)]
pub struct Sink {
    /// The receiver's metric pipelines.
    pub consumers: Vec<Consumer>,
    /// `otelcol_receiver_{accepted,refused}_metric_points`.
    pub metrics: ReceiverMetrics,
}

/// Why a scrape produced no data.
#[derive(Debug, thiserror::Error)]
enum ScrapeError {
    /// Connection refused, DNS failure, timeout and other transport errors.
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// The target answered with a non-2xx status.
    #[error("server returned HTTP status {0}")]
    Status(reqwest::StatusCode),
    /// The body exceeded [`MAX_BODY_BYTES`].
    #[error("response body exceeds {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The whole scrape took longer than the timeout.
    #[error("scrape timed out after {0:?}")]
    Timeout(Duration),
    /// The body is not valid exposition text.
    #[error("invalid exposition: {0}")]
    Parse(#[from] exposition::ParseError),
    /// Too many samples.
    #[error("{0}")]
    Convert(#[from] convert::ConvertError),
    /// The blocking task that parses and converts the body panicked or was cancelled.
    #[error("processing the scraped body failed: {0}")]
    Processing(String),
}

/// Parses and converts one body; runs on the blocking pool.
fn process(
    job: &Job,
    target: &Target,
    body: &str,
    scrape_ms: i64,
    started: Instant,
    state: &std::sync::Mutex<SeriesState>,
) -> Result<
    (opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest, convert::ScrapeReport),
    ScrapeError,
> {
    let parsed = exposition::parse_with(body, &job.label_limits)?;
    let ctx = context(job, target);
    let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(convert::convert(&ctx, Some(&parsed), scrape_ms, started.elapsed().as_secs_f64(), &mut state)?)
}

fn context<'a>(job: &'a Job, target: &'a Target) -> ScrapeContext<'a> {
    ScrapeContext {
        target_labels: &target.labels,
        discovered: &target.discovered,
        scheme: &target.scheme,
        honor_labels: job.honor_labels,
        honor_timestamps: job.honor_timestamps,
        metric_relabel: &job.metric_relabel,
        sample_limit: job.sample_limit,
    }
}

/// A deterministic offset within the interval, so targets of one job spread out instead of all
/// being scraped at the same instant (Prometheus does the same with its target hash).
fn offset(target: &Target) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    target.key().hash(&mut h);
    let ms = target.interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

async fn fetch(client: &reqwest::Client, target: &Target) -> Result<String, ScrapeError> {
    let mut resp = client
        .get(&target.url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", target.timeout.as_secs_f64()))
        .send()
        .await?;
    if !resp.status().is_success() {
        return Err(ScrapeError::Status(resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ScrapeError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Runs until `stop` fires: the target's scrape loop.
pub async fn run(job: Arc<Job>, target: Target, client: reqwest::Client, sink: Sink, stop: CancellationToken) {
    let target = Arc::new(target);
    let state = Arc::new(std::sync::Mutex::new(SeriesState::default()));
    let mut last_error: Option<String> = None;
    tokio::select! {
        () = stop.cancelled() => return,
        () = tokio::time::sleep(offset(&target)) => {}
    }
    let mut ticks = tokio::time::interval(target.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let scrape_ms = now_ms();
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started) + target.timeout;
        let result = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout_at(deadline, fetch(&client, &target)) => {
                r.unwrap_or(Err(ScrapeError::Timeout(target.timeout)))
            }
        };
        let converted = match result {
            Ok(body) => {
                let (j, t, st) = (job.clone(), target.clone(), state.clone());
                let work = tokio::task::spawn_blocking(move || process(&j, &t, &body, scrape_ms, started, &st));
                tokio::select! {
                    () = stop.cancelled() => return,
                    r = tokio::time::timeout_at(deadline, work) => match r {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) => Err(ScrapeError::Processing(e.to_string())),
                        Err(_) => Err(ScrapeError::Timeout(target.timeout)),
                    }
                }
            }
            Err(e) => Err(e),
        };
        let request = match converted {
            Ok((req, _)) => {
                if last_error.take().is_some() {
                    tracing::info!(job = %job.name, url = %target.url, "scrape target is up again");
                }
                req
            }
            Err(e) => {
                let message = exposition::truncate_to(&e.to_string(), LOG_MESSAGE_LIMIT).into_owned();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(job = %job.name, url = %target.url, error = %message, "scrape failed; reporting up=0");
                }
                last_error = Some(message);
                // A failed scrape still reports up=0 and its duration; without content this
                // cannot hit the sample limit. The state is busy only while a timed-out parse
                // is still running; then this round reports nothing (never block a worker on it).
                let Ok(mut st) = state.try_lock() else { continue };
                let ctx = context(&job, &target);
                match convert::convert(&ctx, None, scrape_ms, started.elapsed().as_secs_f64(), &mut st) {
                    Ok((req, _)) => req,
                    Err(_) => continue,
                }
            }
        };
        let payload = Payload::Metrics(request);
        let n = payload.item_count();
        match fanout_consumers(&sink.consumers, payload.into()).await {
            Ok(()) => sink.metrics.accepted(Signal::Metrics, n),
            Err(e) => {
                sink.metrics.refused(Signal::Metrics, n);
                tracing::debug!(job = %job.name, url = %target.url, error = %e, "pipeline refused scraped metrics");
            }
        }
    }
}
