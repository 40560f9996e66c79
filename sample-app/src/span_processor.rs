//! A bounded, non-blocking batch span processor that counts what it drops.
//!
//! Why not the SDK's `BatchSpanProcessor`: its drop count is internal and
//! only logged at shutdown, while the service must expose drops on
//! `/metrics`. Ending a span here is a `try_send` into a bounded channel: a
//! full queue (collector slow or down) drops the span and increments a
//! counter instead of ever blocking the request. A tokio task batches and
//! exports, each export bounded by a timeout.

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

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
        let num = |k: &str| {
            get(k)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|v| *v > 0)
        };
        let max_queue_size =
            num("OTEL_BSP_MAX_QUEUE_SIZE").map_or(d.max_queue_size, |v| v as usize);
        let max_export_batch_size = num("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
            .map_or(d.max_export_batch_size, |v| v as usize)
            // A batch can never be bigger than the queue.
            .min(max_queue_size);
        Self {
            max_queue_size,
            max_export_batch_size,
            scheduled_delay: num("OTEL_BSP_SCHEDULE_DELAY")
                .map_or(d.scheduled_delay, Duration::from_millis),
            export_timeout: num("OTEL_BSP_EXPORT_TIMEOUT")
                .map_or(d.export_timeout, Duration::from_millis),
        }
    }
}

/// Counters shared with `/metrics`.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Spans dropped because the queue was full or the processor was shut down.
    pub spans_dropped: AtomicU64,
    /// Spans whose export failed or timed out.
    pub spans_export_failed: AtomicU64,
    /// Spans exported successfully.
    pub spans_exported: AtomicU64,
}

enum Msg {
    Span(Box<SpanData>),
    Flush(std::sync::mpsc::Sender<()>),
    Shutdown(std::sync::mpsc::Sender<()>),
}

/// See the module docs.
#[derive(Debug)]
pub struct BoundedBatchProcessor {
    tx: mpsc::Sender<Msg>,
    stats: Arc<ExportStats>,
    settings: BatchSettings,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl BoundedBatchProcessor {
    /// Spawns the export task on the current tokio runtime.
    pub fn spawn<E: SpanExporter + 'static>(
        exporter: E,
        settings: BatchSettings,
        stats: Arc<ExportStats>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(settings.max_queue_size);
        tokio::spawn(worker(exporter, rx, settings, stats.clone()));
        Self {
            tx,
            stats,
            settings,
        }
    }

    fn control(
        &self,
        make: impl FnOnce(std::sync::mpsc::Sender<()>) -> Msg,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        // Control messages must not be lost to a full queue, so wait for
        // room, but only up to the timeout.
        let deadline = std::time::Instant::now() + timeout;
        let mut msg = make(reply_tx);
        loop {
            match self.tx.try_send(msg) {
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
        reply_rx
            .recv_timeout(left)
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

impl SpanProcessor for BoundedBatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.tx.try_send(Msg::Span(Box::new(span))).is_err() {
            self.stats.spans_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.control(Msg::Flush, self.settings.export_timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.control(Msg::Shutdown, timeout)
    }
}

async fn export<E: SpanExporter>(
    exporter: &E,
    batch: &mut Vec<SpanData>,
    timeout: Duration,
    stats: &ExportStats,
) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let n = spans.len() as u64;
    match tokio::time::timeout(timeout, exporter.export(spans)).await {
        Ok(Ok(())) => {
            stats.spans_exported.fetch_add(n, Ordering::Relaxed);
        }
        Ok(Err(e)) => {
            stats.spans_export_failed.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(error = %e, spans = n, "span export failed");
        }
        Err(_) => {
            stats.spans_export_failed.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(spans = n, "span export timed out");
        }
    }
}

async fn worker<E: SpanExporter>(
    exporter: E,
    mut rx: mpsc::Receiver<Msg>,
    settings: BatchSettings,
    stats: Arc<ExportStats>,
) {
    let mut batch = Vec::with_capacity(settings.max_export_batch_size);
    let mut ticker = tokio::time::interval(settings.scheduled_delay);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Span(s)) => {
                    batch.push(*s);
                    if batch.len() >= settings.max_export_batch_size {
                        export(&exporter, &mut batch, settings.export_timeout, &stats).await;
                    }
                }
                Some(Msg::Flush(reply)) => {
                    while let Ok(Msg::Span(s)) = rx.try_recv() {
                        batch.push(*s);
                        if batch.len() >= settings.max_export_batch_size {
                            export(&exporter, &mut batch, settings.export_timeout, &stats).await;
                        }
                    }
                    export(&exporter, &mut batch, settings.export_timeout, &stats).await;
                    let _ = reply.send(());
                }
                Some(Msg::Shutdown(reply)) => {
                    rx.close();
                    while let Some(m) = rx.recv().await {
                        if let Msg::Span(s) = m {
                            batch.push(*s);
                            if batch.len() >= settings.max_export_batch_size {
                                export(&exporter, &mut batch, settings.export_timeout, &stats).await;
                            }
                        }
                    }
                    export(&exporter, &mut batch, settings.export_timeout, &stats).await;
                    let _ = exporter.shutdown();
                    let _ = reply.send(());
                    return;
                }
                None => return,
            },
            _ = ticker.tick() => {
                export(&exporter, &mut batch, settings.export_timeout, &stats).await;
            }
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
        let settings = BatchSettings {
            max_queue_size: 2,
            max_export_batch_size: 1,
            ..BatchSettings::default()
        };
        let processor = BoundedBatchProcessor::spawn(HungExporter, settings, stats.clone());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer("test");
        for _ in 0..10 {
            // Ending a span must return at once even though export hangs.
            tracer.in_span("s", |_| {});
        }
        // At most the queue (2) plus one batch in the stuck export survive.
        assert!(stats.spans_dropped.load(Ordering::Relaxed) >= 7);
        // Shutdown is bounded by its timeout even with the export hung.
        let r = tokio::task::spawn_blocking(move || {
            provider.shutdown_with_timeout(Duration::from_millis(200))
        })
        .await
        .expect("join");
        assert!(r.is_err(), "hung export reports a timeout");
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
