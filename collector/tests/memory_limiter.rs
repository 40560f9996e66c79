//! Overload: with the downstream unreachable, data piles up in the exporter queue until the
//! memory limiter refuses it. Clients must get retryable `Unavailable`, RSS must stay under the
//! hard limit, and the process must keep serving. A process test: RSS is the process's.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Listening as _;
use common::process::Collector;
use common::{DeadPort, kv, spans_request};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

const LIMIT_MIB: u64 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_with_retryable_errors_and_rss_stays_under_the_limit() {
    let dead = DeadPort::bind();
    let c = Collector::start(&format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
        max_recv_msg_size_mib: 16
processors:
  memory_limiter:
    check_interval: 50ms
    limit_mib: {LIMIT_MIB}
    spike_limit_mib: 40
exporters:
  otlp:
    endpoint: {dead}
    tls:
      insecure: true
    retry_on_failure:
      initial_interval: 1s
      max_elapsed_time: 0s
    sending_queue:
      queue_size: 100000
service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [otlp]
"#,
        dead = dead.addr
    ));
    let grpc = c.addr("receivers.otlp.protocols.grpc");

    // ~1 MiB requests: 1000 spans with a 1 KiB attribute each.
    let mut big = spans_request("heavy", 1000, 1);
    for s in big.resource_spans[0].scope_spans[0].spans.iter_mut() {
        s.attributes.push(kv("payload", &"x".repeat(1024)));
    }
    let unavailable = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (big, unavailable, accepted, done) = (big.clone(), unavailable.clone(), accepted.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
                .await
                .expect("connect")
                .max_encoding_message_size(64 << 20);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                match client.export(big.clone()).await {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(s) => {
                        assert_eq!(s.code(), tonic::Code::Unavailable, "refusals must be retryable: {s}");
                        if unavailable.fetch_add(1, Ordering::SeqCst) > 200 {
                            done.store(true, Ordering::SeqCst);
                        }
                    }
                }
            }
        }));
    }
    let mut max_rss = 0;
    while clients.iter().any(|c| !c.is_finished()) {
        max_rss = max_rss.max(c.rss_bytes());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for cl in clients {
        cl.await.expect("client task");
    }
    let refused = unavailable.load(Ordering::SeqCst);
    assert!(
        refused > 200,
        "expected the limiter to refuse data, got {refused} refusals and {} accepted",
        accepted.load(Ordering::SeqCst)
    );
    assert!(accepted.load(Ordering::SeqCst) > 10, "some data should have been accepted before the limit");
    assert!(
        max_rss < LIMIT_MIB * 1024 * 1024,
        "RSS peaked at {} MiB, above the {LIMIT_MIB} MiB hard limit",
        max_rss >> 20
    );
    // Still alive and serving.
    let m = c.metrics();
    assert!(common::metric_sum(&m, "otelcol_receiver_refused_spans_total") > 0.0, "{m}");
    eprintln!("peak RSS {} MiB, refused {refused}, accepted {}", max_rss >> 20, accepted.load(Ordering::SeqCst));
}
