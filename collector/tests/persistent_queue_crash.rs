//! Crash test of the persistent sending queue (`file_storage`), with real processes: traffic
//! flows, the downstream goes away, the collector is killed with SIGKILL while it accepts data,
//! restarts on the same directory, and the downstream comes back. Every span the collector
//! acknowledged to the client must arrive (counted by trace and span id); duplicates are
//! reported (at-least-once: a batch in flight at the crash may be sent again).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Listening as _;
use common::process::Collector;
use common::{SeenSpans, Sink, spans_request, wait_until_async};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

const SPANS_PER_REQUEST: usize = 50;

fn config(sink: std::net::SocketAddr, storage: &std::path::Path) -> String {
    // No batch processor: it acknowledges on buffering, before anything is on disk (as
    // upstream's); the receiver then answers only once the queue has the data in its file.
    format!(
        r#"
extensions:
  file_storage:
    directory: {storage}
    fsync: true
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
exporters:
  otlp:
    endpoint: {sink}
    tls:
      insecure: true
    timeout: 2s
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 0
    sending_queue:
      storage: file_storage
      num_consumers: 4
      sizer: bytes
      queue_size: 268435456
service:
  extensions: [file_storage]
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
"#,
        storage = storage.display()
    )
}

/// The span ids of request `seq` (as the sink keys them).
fn ids(seq: u64) -> impl Iterator<Item = Vec<u8>> {
    (0..SPANS_PER_REQUEST as u64).map(move |i| [seq.to_be_bytes(), i.to_be_bytes(), (i + 1).to_be_bytes()].concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_span_survives_a_kill_9_during_an_outage() {
    let storage = tempfile::tempdir().expect("storage dir");
    let received = Arc::new(AtomicU64::new(0));
    let seen: SeenSpans = Arc::new(Mutex::new(HashMap::new()));
    let mut sink = Sink::start_recording(received.clone(), seen.clone()).await;
    let yaml = config(sink.addr, storage.path());
    let mut collector = Collector::start(&yaml);
    // Where the client sends: the collector's gRPC address, a new one after the restart.
    let (receiver_tx, receiver) = tokio::sync::watch::channel(collector.addr("receivers.otlp.protocols.grpc"));

    // The client: one request at a time; a request counts as acknowledged only on an OK answer.
    // Failed ones (the collector is down, or refused) are not retried: they are simply not
    // acknowledged, whatever became of them.
    let acked: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let acked_spans = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acked, acked_spans, failed, stop) = (acked.clone(), acked_spans.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut client = None;
            let mut seq = 0u64;
            while !stop.load(Ordering::SeqCst) {
                if client.is_none() {
                    let addr = *receiver.borrow();
                    client = TraceServiceClient::connect(format!("http://{addr}")).await.ok();
                    if client.is_none() {
                        // The collector is restarting; a real SDK backs off the same way.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
                let Some(c) = client.as_mut() else { continue };
                seq += 1;
                match c.export(spans_request("crash", SPANS_PER_REQUEST, seq)).await {
                    Ok(_) => {
                        acked.lock().expect("acked").insert(seq);
                        acked_spans.fetch_add(SPANS_PER_REQUEST as u64, Ordering::SeqCst);
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        client = None;
                    }
                }
            }
        })
    };

    let r = received.clone();
    wait_until_async("spans flowing to the sink", Duration::from_secs(20), || r.load(Ordering::SeqCst) > 1000).await;
    sink.stop().await;
    let at_outage = acked_spans.load(Ordering::SeqCst);
    let a = acked_spans.clone();
    wait_until_async("2000 spans acknowledged during the outage", Duration::from_secs(30), || {
        a.load(Ordering::SeqCst) > at_outage + 2000
    })
    .await;

    // SIGKILL while requests are in flight: no shutdown code runs.
    collector.child.kill().expect("kill -9");
    collector.child.wait().expect("reap");
    let at_kill = acked_spans.load(Ordering::SeqCst);
    let first_log = collector.log();
    drop(collector);

    let collector = Collector::start(&yaml);
    receiver_tx.send_replace(collector.addr("receivers.otlp.protocols.grpc"));
    let a = acked_spans.clone();
    wait_until_async("1000 spans acknowledged by the restarted collector", Duration::from_secs(30), || {
        a.load(Ordering::SeqCst) > at_kill + 1000
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    load.await.expect("load task");
    let acked: HashSet<u64> = acked.lock().expect("acked").clone();
    let want: usize = acked.len() * SPANS_PER_REQUEST;

    sink.restart().await;
    let missing = || {
        let seen = seen.lock().expect("seen");
        acked.iter().flat_map(|s| ids(*s)).filter(|id| !seen.contains_key(id)).count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while missing() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = missing();
    let seen = seen.lock().expect("seen").clone();
    let duplicates: u64 = seen.values().map(|n| u64::from(n - 1)).sum();
    let unacknowledged_delivered =
        seen.len() - acked.iter().flat_map(|s| ids(*s)).filter(|id| seen.contains_key(id)).count();
    eprintln!(
        "crash test: acknowledged {want} spans ({} requests), {} requests failed at the client; \
         received {} distinct spans ({} of them never acknowledged), {duplicates} duplicates, {missing} missing",
        acked.len(),
        failed.load(Ordering::SeqCst),
        seen.len(),
        unacknowledged_delivered,
    );
    assert_eq!(missing, 0, "acknowledged spans lost; first run's log:\n{first_log}\nsecond:\n{}", collector.log());
    assert!(at_kill > at_outage + 2000, "the kill happened with data queued on disk");
    // At least once: only batches a worker was sending at the kill can come twice, and the
    // downstream was down then, so nothing should in fact repeat.
    assert!(duplicates <= 4 * SPANS_PER_REQUEST as u64, "{duplicates} duplicates");
    assert_eq!(collector.metric_sum("otelcol_exporter_enqueue_failed_spans_total"), 0.0);
}
