//! Shared exporter machinery: a bounded `sending_queue` drained by `num_consumers` workers (in
//! memory, or on disk with `storage`: [`super::persistent_queue`]), and `retry_on_failure` with
//! exponential backoff that honours server throttling hints.
//!
//! A server's hint (`Retry-After`, gRPC `RetryInfo`) lengthens the wait as upstream's
//! exporterhelper does (the larger of the hint and the backoff), but never beyond
//! `retry_on_failure.max_interval` (default 30 s): a hint of hours, or a hostile
//! `Retry-After: 18446744073709551615`, would otherwise park a queue worker indefinitely.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::persistent_queue::{Next, PersistentQueue};
use crate::pdata::Data;
use crate::pipeline::{BoxFuture, ConsumeError, Exporter};
use crate::telemetry::ExporterMetrics;
use collector_config::shared::{QueueConfig, RetryConfig};

/// Result of one send attempt that reached the server.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendOk {
    /// Items the server rejected in a partial success (not retried).
    pub rejected: u64,
}

/// Why one send attempt failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{message}")]
pub struct SendError {
    /// Whether the OTLP spec says this may be retried.
    pub retryable: bool,
    /// Server-provided wait (RetryInfo / Retry-After).
    pub throttle: Option<Duration>,
    /// Human-readable reason.
    pub message: String,
}

/// A protocol-specific sender.
pub trait Sender: Send + Sync + std::fmt::Debug {
    /// One attempt to deliver `data`.
    fn send<'a>(&'a self, data: &'a Data) -> BoxFuture<'a, Result<SendOk, SendError>>;
}

/// Next backoff interval (pure; `rand01` in [0,1) supplies the jitter).
pub fn backoff(cfg: &RetryConfig, attempt: u32, rand01: f64) -> Duration {
    let base = cfg.initial_interval.as_secs_f64() * cfg.multiplier.max(1.0).powi(attempt as i32);
    let base = base.min(cfg.max_interval.as_secs_f64().max(cfg.initial_interval.as_secs_f64()));
    let delta = cfg.randomization_factor.clamp(0.0, 1.0) * base;
    let v = base - delta + rand01 * 2.0 * delta;
    Duration::from_secs_f64(v.max(0.0))
}

/// The wait before the next attempt (pure): the backoff, lengthened to the server's hint if it
/// asked for more, capped at `max_interval` (or `initial_interval` if that is larger).
pub fn retry_wait(cfg: &RetryConfig, attempt: u32, rand01: f64, throttle: Option<Duration>) -> Duration {
    let backoff = backoff(cfg, attempt, rand01);
    let cap = cfg.max_interval.max(cfg.initial_interval);
    match throttle {
        Some(t) => t.max(backoff).min(cap.max(backoff)),
        None => backoff,
    }
}

/// Sends one payload with retries; returns when delivered, given up, or `stop` fires (the
/// shutdown deadline: an attempt or a retry sleep in progress is abandoned and the items are
/// counted in `otelcol_exporter_send_failed_*`, so sent + failed accounts for everything taken).
pub async fn send_with_retry(
    sender: &dyn Sender,
    retry: &RetryConfig,
    metrics: &ExporterMetrics,
    name: &str,
    data: Data,
    stop: &CancellationToken,
) -> Result<(), ConsumeError> {
    send_until(sender, retry, metrics, name, data, stop, OnStop::CountFailed).await
}

/// What the shutdown deadline does to a payload whose delivery it interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnStop {
    /// It is lost: count it in `otelcol_exporter_send_failed_*`.
    CountFailed,
    /// It stays in the persistent queue and is sent after the next start: nothing failed.
    KeepForRestart,
}

async fn send_until(
    sender: &dyn Sender,
    retry: &RetryConfig,
    metrics: &ExporterMetrics,
    name: &str,
    data: Data,
    stop: &CancellationToken,
    on_stop: OnStop,
) -> Result<(), ConsumeError> {
    let start = Instant::now();
    let n = data.item_count();
    let signal = data.signal();
    let mut attempt = 0u32;
    let stopped = || {
        if on_stop == OnStop::CountFailed {
            metrics.send_failed(signal, n);
            tracing::error!(exporter = name, items = n, "shutdown deadline reached before delivery; dropping data");
        }
        ConsumeError::Retryable("exporter stopped before the data was delivered".into())
    };
    loop {
        let result = tokio::select! {
            biased;
            () = stop.cancelled() => return Err(stopped()),
            r = sender.send(&data) => r,
        };
        match result {
            Ok(ok) => {
                metrics.sent(signal, n.saturating_sub(ok.rejected as usize));
                if ok.rejected > 0 {
                    metrics.partial_rejected.add(ok.rejected);
                    metrics.send_failed(signal, ok.rejected as usize);
                    tracing::warn!(
                        exporter = name,
                        rejected = ok.rejected,
                        "partial success: destination rejected items"
                    );
                }
                return Ok(());
            }
            Err(e) if !e.retryable || !retry.enabled => {
                metrics.send_failed(signal, n);
                tracing::error!(exporter = name, items = n, error = %e, "export failed, not retryable; dropping data");
                return Err(ConsumeError::Permanent(e.message));
            }
            Err(e) => {
                let wait = retry_wait(retry, attempt, rand::random::<f64>(), e.throttle);
                if !retry.max_elapsed_time.is_zero() && start.elapsed() + wait > retry.max_elapsed_time {
                    metrics.send_failed(signal, n);
                    tracing::error!(exporter = name, items = n, error = %e, "export failed, retries exhausted; dropping data");
                    return Err(ConsumeError::Retryable(format!("retries exhausted: {e}")));
                }
                metrics.retries.add(1);
                tracing::info!(exporter = name, error = %e, wait_ms = wait.as_millis() as u64, "export failed, will retry");
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return Err(stopped()),
                    () = tokio::time::sleep(wait) => {}
                }
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

/// An exporter with optional queue and retries in front of a [`Sender`].
#[derive(Debug)]
pub struct QueuedExporter {
    name: String,
    sender: Arc<dyn Sender>,
    retry: RetryConfig,
    metrics: ExporterMetrics,
    /// The queue and its `blocking` setting; `None` sends in the caller's task.
    queue: Option<(Queue, bool)>,
    stop: CancellationToken,
}

/// Where queued data waits.
#[derive(Debug)]
enum Queue {
    Memory(mpsc::Sender<Data>),
    Disk(Arc<PersistentQueue>),
}

impl QueuedExporter {
    /// Builds the exporter and starts its queue workers. The workers exit after the queue is
    /// closed (all pipeline references dropped) and drained, or when `stop` fires (the shutdown
    /// deadline): then sends and retry sleeps in progress are abandoned and what is still
    /// queued is counted as failed and logged with its count.
    pub fn start(
        name: &str,
        sender: Arc<dyn Sender>,
        retry: RetryConfig,
        queue: &QueueConfig,
        metrics: ExporterMetrics,
        stop: CancellationToken,
    ) -> (Arc<Self>, Vec<JoinHandle<()>>) {
        let mut handles = Vec::new();
        let q = if queue.enabled {
            let (tx, rx) = mpsc::channel::<Data>(queue.queue_size);
            metrics.queue_capacity.set(queue.queue_size as i64);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..queue.num_consumers {
                let rx = rx.clone();
                let sender = sender.clone();
                let retry = retry.clone();
                let metrics = metrics.clone();
                let name = name.to_owned();
                let stop = stop.clone();
                handles.push(tokio::spawn(async move {
                    loop {
                        let next = tokio::select! {
                            biased;
                            () = stop.cancelled() => break,
                            next = async { rx.lock().await.recv().await } => next,
                        };
                        let Some(data) = next else { return };
                        metrics.queue_size.add(-1);
                        let _ = send_with_retry(sender.as_ref(), &retry, &metrics, &name, data, &stop).await;
                    }
                    // Deadline: whatever is still queued will not be sent.
                    let (mut batches, mut items) = (0usize, 0usize);
                    while let Ok(data) = rx.lock().await.try_recv() {
                        metrics.queue_size.add(-1);
                        metrics.send_failed(data.signal(), data.item_count());
                        batches += 1;
                        items += data.item_count();
                    }
                    if batches > 0 {
                        tracing::error!(exporter = name, batches, items, "shutdown deadline: dropping queued data");
                    }
                }));
            }
            Some((Queue::Memory(tx), queue.blocking))
        } else {
            None
        };
        (Arc::new(Self { name: name.to_owned(), sender, retry, metrics, queue: q, stop }), handles)
    }
}

impl QueuedExporter {
    /// Like [`QueuedExporter::start`], with the queue on disk (`sending_queue.storage`). What
    /// the queue resumed is sent first. At the shutdown deadline, sends in progress are
    /// abandoned and stay in the queue for the next start (not counted as failed: they are
    /// not lost); a record that cannot be read back is counted in `send_failed` and logged.
    pub fn start_persistent(
        name: &str,
        sender: Arc<dyn Sender>,
        retry: RetryConfig,
        queue: &QueueConfig,
        disk: Arc<PersistentQueue>,
        metrics: ExporterMetrics,
        stop: CancellationToken,
    ) -> (Arc<Self>, Vec<JoinHandle<()>>) {
        metrics.queue_capacity.set(queue.queue_size as i64);
        metrics.queue_size.set(disk.pending().0 as i64);
        let reported = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handles = (0..queue.num_consumers)
            .map(|_| {
                let (disk, sender, retry, metrics, name, stop, reported) = (
                    disk.clone(),
                    sender.clone(),
                    retry.clone(),
                    metrics.clone(),
                    name.to_owned(),
                    stop.clone(),
                    reported.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        match disk.next(&stop).await {
                            Next::Done => break,
                            Next::Lost(signal, items, why) => {
                                metrics.queue_size.add(-1);
                                metrics.send_failed(signal, items);
                                tracing::error!(
                                    exporter = name,
                                    items,
                                    error = why,
                                    "persistent queue: dropping a record that cannot be read back"
                                );
                            }
                            Next::Item(ticket, data) => {
                                let r = send_until(
                                    sender.as_ref(),
                                    &retry,
                                    &metrics,
                                    &name,
                                    data,
                                    &stop,
                                    OnStop::KeepForRestart,
                                )
                                .await;
                                if r.is_err() && stop.is_cancelled() {
                                    break;
                                }
                                metrics.queue_size.add(-1);
                                if let Err(e) = disk.done(ticket).await {
                                    // The record stays behind the pointer: sent again after a restart.
                                    tracing::error!(
                                        exporter = name,
                                        error = e,
                                        "persistent queue: cannot record a finished batch"
                                    );
                                }
                            }
                        }
                    }
                    let (batches, items) = disk.pending();
                    if batches > 0 && !reported.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        tracing::warn!(
                            exporter = name,
                            batches,
                            items,
                            "shutdown: batches stay in the persistent queue for the next start"
                        );
                    }
                })
            })
            .collect();
        let q = Some((Queue::Disk(disk), queue.blocking));
        (Arc::new(Self { name: name.to_owned(), sender, retry, metrics, queue: q, stop }), handles)
    }
}

impl Drop for QueuedExporter {
    fn drop(&mut self) {
        // The last pipeline reference is gone: no more pushes, workers drain and exit (the
        // in-memory queue closes when its sender drops).
        if let Some((Queue::Disk(q), _)) = &self.queue {
            q.close();
        }
    }
}

impl Exporter for QueuedExporter {
    fn consume(&self, data: Data) -> BoxFuture<'_, Result<(), ConsumeError>> {
        Box::pin(async move {
            match &self.queue {
                None => {
                    send_with_retry(self.sender.as_ref(), &self.retry, &self.metrics, &self.name, data, &self.stop)
                        .await
                }
                Some((Queue::Disk(q), blocking)) => {
                    let (n, signal) = (data.item_count(), data.signal());
                    match q.push(&data, *blocking).await {
                        Ok(()) => {
                            self.metrics.queue_size.add(1);
                            Ok(())
                        }
                        Err(e) => {
                            self.metrics.enqueue_failed(signal, n);
                            Err(ConsumeError::Retryable(e.to_string()))
                        }
                    }
                }
                Some((Queue::Memory(tx), blocking)) => {
                    let n = data.item_count();
                    let signal = data.signal();
                    // Count before sending so a fast worker never drives the gauge negative.
                    self.metrics.queue_size.add(1);
                    let res = if *blocking {
                        tx.send(data).await.map_err(|_| "exporter is shutting down")
                    } else {
                        tx.try_send(data).map_err(|e| match e {
                            mpsc::error::TrySendError::Full(_) => "sending queue is full",
                            mpsc::error::TrySendError::Closed(_) => "exporter is shutting down",
                        })
                    };
                    res.map_err(|msg| {
                        self.metrics.queue_size.add(-1);
                        self.metrics.enqueue_failed(signal, n);
                        ConsumeError::Retryable(msg.into())
                    })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::id::Signal;
    use crate::pdata::Payload;
    use crate::telemetry::Telemetry;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_grows_and_caps() {
        let cfg = RetryConfig {
            initial_interval: Duration::from_secs(1),
            randomization_factor: 0.0,
            multiplier: 2.0,
            max_interval: Duration::from_secs(5),
            ..Default::default()
        };
        assert_eq!(backoff(&cfg, 0, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(&cfg, 2, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(&cfg, 10, 0.5), Duration::from_secs(5));
        let jitter = RetryConfig { randomization_factor: 0.5, ..cfg };
        assert_eq!(backoff(&jitter, 0, 0.0), Duration::from_millis(500));
    }

    #[derive(Debug)]
    struct Flaky {
        fail_first: u32,
        calls: AtomicU32,
        retryable: bool,
        throttle: Duration,
    }
    impl Sender for Flaky {
        fn send<'a>(&'a self, _: &'a Data) -> BoxFuture<'a, Result<SendOk, SendError>> {
            let c = self.calls.fetch_add(1, Ordering::SeqCst);
            let fail = c < self.fail_first;
            let (retryable, throttle) = (self.retryable, self.throttle);
            Box::pin(async move {
                if fail {
                    Err(SendError { retryable, throttle: Some(throttle), message: "down".into() })
                } else {
                    Ok(SendOk::default())
                }
            })
        }
    }

    fn payload() -> Data {
        let mut p = Payload::empty(Signal::Logs);
        if let Payload::Logs(r) = &mut p {
            r.resource_logs.push(opentelemetry_proto::tonic::logs::v1::ResourceLogs {
                scope_logs: vec![opentelemetry_proto::tonic::logs::v1::ScopeLogs {
                    log_records: vec![Default::default(); 3],
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        p.into()
    }

    #[tokio::test]
    async fn retries_retryable_until_success() {
        let t = Telemetry::default();
        let m = ExporterMetrics::new(&t, "x");
        let s = Flaky { fail_first: 3, calls: AtomicU32::new(0), retryable: true, throttle: Duration::from_millis(1) };
        send_with_retry(&s, &RetryConfig::default(), &m, "x", payload(), &CancellationToken::new()).await.unwrap();
        assert_eq!(m.retries.get(), 3);
        assert_eq!(t.counter_value("otelcol_exporter_sent_log_records", &[("exporter", "x")]), 3);
    }

    #[test]
    fn server_delays_lengthen_the_backoff_but_are_capped_at_max_interval() {
        let cfg = RetryConfig {
            initial_interval: Duration::from_secs(1),
            randomization_factor: 0.0,
            multiplier: 2.0,
            max_interval: Duration::from_secs(30),
            ..Default::default()
        };
        assert_eq!(retry_wait(&cfg, 0, 0.5, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(retry_wait(&cfg, 2, 0.5, Some(Duration::from_millis(10))), Duration::from_secs(4), "backoff wins");
        assert_eq!(retry_wait(&cfg, 0, 0.5, Some(Duration::from_secs(u64::MAX))), Duration::from_secs(30));
        assert_eq!(retry_wait(&cfg, 0, 0.5, None), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_retry_after_does_not_park_the_worker() {
        let t = Telemetry::default();
        let m = ExporterMetrics::new(&t, "x");
        // The server asks for ~585 billion years; retries have no elapsed-time limit.
        let s =
            Flaky { fail_first: 1, calls: AtomicU32::new(0), retryable: true, throttle: Duration::from_secs(u64::MAX) };
        let cfg = RetryConfig { max_elapsed_time: Duration::ZERO, ..RetryConfig::default() };
        let started = Instant::now();
        send_with_retry(&s, &cfg, &m, "x", payload(), &CancellationToken::new())
            .await
            .expect("delivered after one capped wait");
        assert!(started.elapsed() <= cfg.max_interval, "waited {:?}", started.elapsed());
        assert_eq!(s.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_shutdown_deadline_cancels_retry_sleeps_and_counts_everything_as_failed() {
        let t = Telemetry::default();
        let m = ExporterMetrics::new(&t, "x");
        // Always down, with a 10 s hint; retries would go on forever.
        let s = Arc::new(Flaky {
            fail_first: u32::MAX,
            calls: AtomicU32::new(0),
            retryable: true,
            throttle: Duration::from_secs(10),
        });
        let retry = RetryConfig { max_elapsed_time: Duration::ZERO, ..RetryConfig::default() };
        let q = QueueConfig { num_consumers: 1, queue_size: 10, ..Default::default() };
        let stop = CancellationToken::new();
        let (e, workers) = QueuedExporter::start("x", s.clone(), retry, &q, m, stop.clone());
        for _ in 0..4 {
            e.consume(payload()).await.expect("queued");
        }
        // The worker is inside a retry sleep of the first batch; three more wait in the queue.
        tokio::time::sleep(Duration::from_secs(25)).await;
        let started = Instant::now();
        stop.cancel();
        for w in workers {
            w.await.expect("worker");
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "no sleep survives the deadline");
        assert_eq!(t.counter_value("otelcol_exporter_send_failed_log_records", &[("exporter", "x")]), 12);
        assert_eq!(t.counter_value("otelcol_exporter_sent_log_records", &[("exporter", "x")]), 0);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let t = Telemetry::default();
        let m = ExporterMetrics::new(&t, "x");
        let s = Flaky { fail_first: 1, calls: AtomicU32::new(0), retryable: false, throttle: Duration::from_millis(1) };
        assert!(
            !send_with_retry(&s, &RetryConfig::default(), &m, "x", payload(), &CancellationToken::new())
                .await
                .unwrap_err()
                .is_retryable()
        );
        assert_eq!(s.calls.load(Ordering::SeqCst), 1);
        assert_eq!(t.counter_value("otelcol_exporter_send_failed_log_records", &[("exporter", "x")]), 3);
    }

    #[tokio::test]
    async fn full_queue_refuses_with_retryable_error() {
        let t = Telemetry::default();
        let m = ExporterMetrics::new(&t, "x");
        // A sender that never finishes keeps the single worker busy.
        #[derive(Debug)]
        struct Stuck;
        impl Sender for Stuck {
            fn send<'a>(&'a self, _: &'a Data) -> BoxFuture<'a, Result<SendOk, SendError>> {
                Box::pin(std::future::pending())
            }
        }
        let q = QueueConfig { num_consumers: 1, queue_size: 2, ..Default::default() };
        let (e, _h) =
            QueuedExporter::start("x", Arc::new(Stuck), RetryConfig::default(), &q, m, CancellationToken::new());
        let mut refused = 0;
        for _ in 0..10 {
            if e.consume(payload()).await.is_err() {
                refused += 1;
            }
        }
        assert!(refused >= 7, "refused {refused}");
        assert!(t.counter_value("otelcol_exporter_enqueue_failed_log_records", &[("exporter", "x")]) >= 21);
    }
}
