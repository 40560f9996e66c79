//! `batch` processor: accumulates items until `send_batch_size` or `timeout`, splits at
//! `send_batch_max_size`, and flushes what it holds when its input closes (shutdown drain).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::id::Signal;
use crate::pdata::Data;
use crate::pipeline::Consumer;
use crate::telemetry::Counter;
use collector_config::processor::batch::BatchConfig;

/// Pure batching state: decides what to emit; the task below only does the waiting.
#[derive(Debug)]
pub struct Batcher {
    buf: Data,
    count: usize,
    size: usize,
    max: usize,
}

impl Batcher {
    /// New batcher for one signal.
    pub fn new(signal: Signal, cfg: &BatchConfig) -> Self {
        Self { buf: Data::empty(signal), count: 0, size: cfg.send_batch_size.max(1), max: cfg.send_batch_max_size }
    }

    /// Adds data and returns the batches that are now full.
    pub fn add(&mut self, data: Data) -> Vec<Data> {
        self.count += data.item_count();
        self.buf.append(data);
        let mut out = Vec::new();
        while self.count >= self.size {
            out.push(self.take_one());
        }
        out
    }

    /// Emits everything buffered (timeout or shutdown), split at the max size.
    pub fn flush(&mut self) -> Vec<Data> {
        let mut out = Vec::new();
        while self.count > 0 {
            out.push(self.take_one());
        }
        out
    }

    /// Whether anything is buffered.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn take_one(&mut self) -> Data {
        if self.max > 0 && self.count > self.max {
            let head = self.buf.split_off_front(self.max);
            self.count = self.buf.item_count();
            head
        } else {
            let signal = self.buf.signal();
            self.count = 0;
            std::mem::replace(&mut self.buf, Data::empty(signal))
        }
    }
}

/// Starts the batch task for one pipeline; returns the sender the upstream chain feeds and the task.
pub fn spawn(
    signal: Signal,
    cfg: &BatchConfig,
    next: Consumer,
    sent_batches: Counter,
    name: String,
) -> (mpsc::Sender<Data>, JoinHandle<()>) {
    // A small channel is enough: the batch task is fast, and a full channel pushes back on receivers.
    let (tx, mut rx) = mpsc::channel::<Data>(64);
    let mut batcher = Batcher::new(signal, cfg);
    let timeout = cfg.timeout;
    let handle = tokio::spawn(async move {
        let mut deadline: Option<Instant> = None;
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                item = rx.recv() => match item {
                    Some(data) => {
                        let mut ready = batcher.add(data);
                        if timeout == Duration::ZERO {
                            ready.extend(batcher.flush());
                        }
                        for b in ready {
                            send(&next, b, &sent_batches, &name).await;
                        }
                        if batcher.is_empty() {
                            deadline = None;
                        } else if deadline.is_none() {
                            deadline = Some(Instant::now() + timeout);
                        }
                    }
                    None => {
                        for b in batcher.flush() {
                            send(&next, b, &sent_batches, &name).await;
                        }
                        break;
                    }
                },
                () = sleep => {
                    for b in batcher.flush() {
                        send(&next, b, &sent_batches, &name).await;
                    }
                    deadline = None;
                }
            }
        }
    });
    (tx, handle)
}

async fn send(next: &Consumer, batch: Data, sent_batches: &Counter, name: &str) {
    sent_batches.add(1);
    let n = batch.item_count();
    if let Err(e) = next.consume(batch).await {
        // Nobody upstream can retry anymore: the receiver already answered. Log like upstream does.
        tracing::warn!(processor = name, items = n, error = %e, "batch could not be delivered to exporters; dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::Payload;

    fn traces(n: usize) -> Data {
        let mut p = Payload::empty(Signal::Traces);
        if let Payload::Traces(r) = &mut p {
            r.resource_spans.push(opentelemetry_proto::tonic::trace::v1::ResourceSpans {
                scope_spans: vec![opentelemetry_proto::tonic::trace::v1::ScopeSpans {
                    spans: vec![Default::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        p.into()
    }

    #[test]
    fn emits_at_size_and_splits_at_max() {
        let cfg = BatchConfig { send_batch_size: 10, send_batch_max_size: 15, ..Default::default() };
        let mut b = Batcher::new(Signal::Traces, &cfg);
        assert!(b.add(traces(4)).is_empty());
        let out = b.add(traces(30));
        let sizes: Vec<usize> = out.iter().map(Data::item_count).collect();
        assert_eq!(sizes, vec![15, 15]);
        assert_eq!(b.flush().iter().map(Data::item_count).collect::<Vec<_>>(), vec![4]);
        assert!(b.is_empty());
    }

    #[test]
    fn without_max_sends_everything() {
        let cfg = BatchConfig { send_batch_size: 10, send_batch_max_size: 0, ..Default::default() };
        let mut b = Batcher::new(Signal::Traces, &cfg);
        let out = b.add(traces(25));
        assert_eq!(out.iter().map(Data::item_count).collect::<Vec<_>>(), vec![25]);
    }
}
