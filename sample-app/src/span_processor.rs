//! A bounded, non-blocking batch span processor that counts what it drops.
//!
//! Why not the SDK's `BatchSpanProcessor`: its drop count is internal and
//! only logged at shutdown, while the service must expose drops on
//! `/metrics`. Ending a span here is a push onto a bounded buffer under a
//! short mutex: a full buffer (collector slow or down) drops the span and
//! increments a counter instead of ever blocking the request. The export
//! task is woken only when a batch is full (or on the schedule delay), not
//! per span, which keeps the per-request cost low. Each export is bounded
//! by a timeout.

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, ShouldSample, Span, SpanData, SpanExporter, SpanProcessor,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Queue and batch settings, read from the standard `OTEL_BSP_*` variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// `OTEL_BSP_MAX_QUEUE_SIZE`: spans waiting for export before drops start.
    pub max_queue_size: usize,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans per export call.
    pub max_export_batch_size: usize,
    /// `OTEL_BSP_SCHEDULE_DELAY` (ms): longest a span waits in a partial batch.
    pub scheduled_delay: Duration,
    /// `OTEL_BSP_EXPORT_TIMEOUT` (ms): longest one export may take.
    pub export_timeout: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30_000),
        }
    }
}

impl BatchSettings {
    /// Settings from a variable lookup; unset or unparseable values keep the
    /// spec defaults (the spec says invalid values must not fail startup).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let num = |k: &str| get(k).and_then(|v| v.trim().parse::<u64>().ok()).filter(|v| *v > 0);
        let max_queue_size = num("OTEL_BSP_MAX_QUEUE_SIZE").map_or(d.max_queue_size, |v| v as usize);
        let max_export_batch_size = num("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
            .map_or(d.max_export_batch_size, |v| v as usize)
            // A batch can never be bigger than the queue.
            .min(max_queue_size);
        Self {
            max_queue_size,
            max_export_batch_size,
            scheduled_delay: num("OTEL_BSP_SCHEDULE_DELAY").map_or(d.scheduled_delay, Duration::from_millis),
            export_timeout: num("OTEL_BSP_EXPORT_TIMEOUT").map_or(d.export_timeout, Duration::from_millis),
        }
    }
}

/// Time base for [`ExportStats::paused_until_ms`].
static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

fn now_ms() -> u64 {
    EPOCH.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1
}

/// Counters shared with `/metrics`.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// While export is backing off after a failure: the end of the backoff
    /// in ms since [`EPOCH`] (0 = exporting normally). Read by
    /// [`BackoffSampler`], so spans are not even recorded while every
    /// finished span would be thrown away.
    paused_until_ms: AtomicU64,
    /// Spans dropped because the queue was full or the processor was shut
    /// down, or not recorded because export was backing off (see
    /// [`BackoffSampler`]).
    pub spans_dropped: AtomicU64,
    /// Spans whose export failed or timed out.
    pub spans_export_failed: AtomicU64,
    /// Spans exported successfully.
    pub spans_exported: AtomicU64,
}

impl ExportStats {
    /// Whether span export is currently backing off after a failure.
    pub fn export_paused(&self) -> bool {
        let until = self.paused_until_ms.load(Ordering::Relaxed);
        until != 0 && now_ms() < until
    }

    fn pause_for(&self, d: Duration) {
        self.paused_until_ms.store(now_ms() + d.as_millis() as u64, Ordering::Relaxed);
    }

    fn resume(&self) {
        self.paused_until_ms.store(0, Ordering::Relaxed);
    }
}

/// Wraps the configured sampler: while span export is backing off after a
/// failure (collector down), new spans are not recorded at all and are
/// counted in `spans_dropped`. Recording them would only build span data
/// (attributes, events, copies) on the request path for the export task to
/// count as failed and free. When the backoff ends, spans are recorded
/// again and the next batch probes the collector.
#[derive(Debug, Clone)]
pub struct BackoffSampler {
    inner: Box<dyn ShouldSample>,
    stats: Arc<ExportStats>,
}

impl BackoffSampler {
    /// `inner` decides whenever export is not backing off.
    pub fn new(inner: Box<dyn ShouldSample>, stats: Arc<ExportStats>) -> Self {
        Self { inner, stats }
    }
}

impl ShouldSample for BackoffSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: opentelemetry::trace::TraceId,
        name: &str,
        span_kind: &opentelemetry::trace::SpanKind,
        attributes: &[opentelemetry::KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> SamplingResult {
        if self.stats.export_paused() {
            use opentelemetry::trace::TraceContextExt as _;
            self.stats.spans_dropped.fetch_add(1, Ordering::Relaxed);
            let trace_state =
                parent_context.map(|cx| cx.span().span_context().trace_state().clone()).unwrap_or_default();
            return SamplingResult { decision: SamplingDecision::Drop, attributes: Vec::new(), trace_state };
        }
        self.inner.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

enum Ctl {
    Flush(std::sync::mpsc::Sender<()>),
    Shutdown(std::sync::mpsc::Sender<()>),
}

impl std::fmt::Debug for Ctl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ctl")
    }
}

/// State shared by the span-ending request threads and the export task.
#[derive(Debug)]
struct Shared {
    buffer: Mutex<Vec<SpanData>>,
    batch_ready: Notify,
    closed: AtomicBool,
    stats: Arc<ExportStats>,
    settings: BatchSettings,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SpanData>> {
        // Only pushes and whole-buffer takes happen under the lock, so a
        // poisoned buffer is still a valid buffer.
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct BoundedBatchProcessor {
    shared: Arc<Shared>,
    ctl: mpsc::Sender<Ctl>,
}

impl BoundedBatchProcessor {
    /// Spawns the export task on the current tokio runtime.
    pub fn spawn<E: SpanExporter + 'static>(exporter: E, settings: BatchSettings, stats: Arc<ExportStats>) -> Self {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Vec::with_capacity(settings.max_export_batch_size)),
            batch_ready: Notify::new(),
            closed: AtomicBool::new(false),
            stats,
            settings,
        });
        let (ctl, ctl_rx) = mpsc::channel(8);
        tokio::spawn(worker(exporter, shared.clone(), ctl_rx));
        Self { shared, ctl }
    }

    fn control(&self, make: impl FnOnce(std::sync::mpsc::Sender<()>) -> Ctl, timeout: Duration) -> OTelSdkResult {
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        // Control messages must not be lost, so wait for room in the
        // (tiny) control channel, but only up to the timeout.
        let deadline = std::time::Instant::now() + timeout;
        let mut msg = make(reply_tx);
        loop {
            match self.ctl.try_send(msg) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(OTelSdkError::AlreadyShutdown);
                }
                Err(mpsc::error::TrySendError::Full(m)) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(OTelSdkError::Timeout(timeout));
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        reply_rx.recv_timeout(left).map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

impl SpanProcessor for BoundedBatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let shared = &self.shared;
        if shared.closed.load(Ordering::Relaxed) {
            shared.stats.spans_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut buffer = shared.lock();
        if buffer.len() >= shared.settings.max_queue_size {
            drop(buffer);
            shared.stats.spans_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        buffer.push(span);
        let full = buffer.len() >= shared.settings.max_export_batch_size;
        drop(buffer);
        if full {
            shared.batch_ready.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.control(Ctl::Flush, self.shared.settings.export_timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.control(Ctl::Shutdown, timeout)
    }
}

/// Export health: after a failure, batches are counted as failed without
/// contacting the collector until a backoff (0.5 s doubling to 30 s) has
/// passed, so a dead collector costs no encoding or connect attempts.
#[derive(Debug, Default)]
struct Health {
    failing: bool,
    backoff: Duration,
    retry_at: Option<tokio::time::Instant>,
}

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Exports one batch. Logs only on a change between working and failing,
/// so a collector that is down for hours does not flood the logs (the
/// counters on `/metrics` keep the full tally).
async fn export<E: SpanExporter>(
    exporter: &E,
    batch: &mut Vec<SpanData>,
    timeout: Duration,
    stats: &ExportStats,
    health: &mut Health,
) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let n = spans.len() as u64;
    if health.retry_at.is_some_and(|t| tokio::time::Instant::now() < t) {
        stats.spans_export_failed.fetch_add(n, Ordering::Relaxed);
        return;
    }
    let error = match tokio::time::timeout(timeout, exporter.export(spans)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("timed out after {timeout:?}")),
    };
    match error {
        None => {
            stats.spans_exported.fetch_add(n, Ordering::Relaxed);
            if health.failing {
                tracing::info!("span export recovered");
            }
            *health = Health::default();
            stats.resume();
        }
        Some(e) => {
            stats.spans_export_failed.fetch_add(n, Ordering::Relaxed);
            if !health.failing {
                tracing::warn!(error = %e, spans = n, "span export failing; further failures are only counted");
            }
            health.failing = true;
            health.backoff = (health.backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
            health.retry_at = Some(tokio::time::Instant::now() + health.backoff);
            stats.pause_for(health.backoff);
        }
    }
}

/// Takes everything buffered and exports it in batches.
async fn drain<E: SpanExporter>(exporter: &E, shared: &Shared, health: &mut Health) {
    let size = shared.settings.max_export_batch_size.max(1);
    // The buffer is swapped for one that already has a batch's capacity
    // (allocated outside the lock), so the request threads pushing into it
    // do not regrow it from empty (each growth copies every queued span).
    let mut spans = Vec::with_capacity(size);
    std::mem::swap(&mut spans, &mut *shared.lock());
    if spans.len() <= size {
        // The common case: at most one batch, exported as it is.
        return export(exporter, &mut spans, shared.settings.export_timeout, &shared.stats, health).await;
    }
    let mut spans = spans.into_iter().peekable();
    while spans.peek().is_some() {
        let mut batch: Vec<SpanData> = spans.by_ref().take(size).collect();
        export(exporter, &mut batch, shared.settings.export_timeout, &shared.stats, health).await;
    }
}

async fn worker<E: SpanExporter>(exporter: E, shared: Arc<Shared>, mut ctl: mpsc::Receiver<Ctl>) {
    let mut health = Health::default();
    let mut ticker = tokio::time::interval(shared.settings.scheduled_delay);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.batch_ready.notified() => drain(&exporter, &shared, &mut health).await,
            _ = ticker.tick() => drain(&exporter, &shared, &mut health).await,
            msg = ctl.recv() => match msg {
                Some(Ctl::Flush(reply)) => {
                    drain(&exporter, &shared, &mut health).await;
                    let _ = reply.send(());
                }
                Some(Ctl::Shutdown(reply)) => {
                    shared.closed.store(true, Ordering::Relaxed);
                    drain(&exporter, &shared, &mut health).await;
                    let _ = exporter.shutdown();
                    let _ = reply.send(());
                    return;
                }
                None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An exporter whose export never completes: a hung collector.
    #[derive(Debug)]
    struct HungExporter;

    impl SpanExporter for HungExporter {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn full_queue_drops_and_counts_without_blocking() {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        let stats = Arc::new(ExportStats::default());
        let settings = BatchSettings { max_queue_size: 2, max_export_batch_size: 1, ..BatchSettings::default() };
        let processor = BoundedBatchProcessor::spawn(HungExporter, settings, stats.clone());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().with_span_processor(processor).build();
        let tracer = provider.tracer("test");
        for _ in 0..10 {
            // Ending a span must return at once even though export hangs.
            tracer.in_span("s", |_| {});
        }
        // At most the queue (2) plus one batch in the stuck export survive.
        assert!(stats.spans_dropped.load(Ordering::Relaxed) >= 7);
        // Shutdown is bounded by its timeout even with the export hung.
        let r = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(Duration::from_millis(200)))
            .await
            .expect("join");
        assert!(r.is_err(), "hung export reports a timeout");
    }

    /// An exporter that always fails: a collector refusing connections.
    #[derive(Debug)]
    struct RefusingExporter;

    impl SpanExporter for RefusingExporter {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure("connection refused".into()))
        }
    }

    #[tokio::test]
    async fn failed_export_stops_recording_spans_during_backoff() {
        use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
        let stats = Arc::new(ExportStats::default());
        let settings = BatchSettings { max_export_batch_size: 1, ..BatchSettings::default() };
        let processor = BoundedBatchProcessor::spawn(RefusingExporter, settings, stats.clone());
        let sampler = BackoffSampler::new(Box::new(opentelemetry_sdk::trace::Sampler::AlwaysOn), stats.clone());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer("test");
        assert!(tracer.start("before").is_recording(), "spans are recorded while export works");
        // The first batch (size 1) is exported and fails, which starts a backoff.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while stats.spans_export_failed.load(Ordering::Relaxed) == 0 {
            assert!(std::time::Instant::now() < deadline, "export never failed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(stats.export_paused());
        let dropped = stats.spans_dropped.load(Ordering::Relaxed);
        assert!(!tracer.start("during backoff").is_recording(), "not recorded while export backs off");
        assert_eq!(stats.spans_dropped.load(Ordering::Relaxed), dropped + 1, "and counted as dropped");
    }

    #[test]
    fn settings_from_env_lookup() {
        let env: HashMap<&str, &str> = [
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "nonsense"),
        ]
        .into_iter()
        .collect();
        let s = BatchSettings::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(s.max_queue_size, 100);
        assert_eq!(s.max_export_batch_size, 100, "batch capped at queue size");
        assert_eq!(s.scheduled_delay, Duration::from_millis(250));
        assert_eq!(s.export_timeout, BatchSettings::default().export_timeout);
    }
}
