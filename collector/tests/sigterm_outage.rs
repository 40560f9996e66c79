//! SIGTERM during a downstream outage, with slow clients connected, against the real binary:
//! the collector exits within its shutdown budget (the slow clients cannot hold the receiver
//! phase, retry sleeps cannot hold the exporter phase), and every span it acknowledged is
//! accounted for exactly: received by the downstream, or counted in
//! `otelcol_exporter_send_failed_spans` (read from the totals it logs on the way out, since its
//! `/metrics` goes with it).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Listening as _;
use common::process::Collector;
use common::{Sink, spans_request, wait_until_async};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio::io::AsyncWriteExt;

const BUDGET: Duration = Duration::from_secs(5);

/// A client that opens a request and then sends one byte a second (of `head`, then of a body
/// it announced as large), holding a connection and an in-flight request through shutdown.
fn slow_client(addr: String, head: &'static [u8]) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else { return };
        for b in head.iter().chain(std::iter::repeat(&b'x')) {
            if s.write_all(std::slice::from_ref(b)).await.is_err() {
                return;
            }
            // The client's pace, not synchronisation.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Sums a field of the JSON log lines with `message`, for exporter `otlp` and traces.
fn logged_total(log: &str, message: &str, field: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["fields"].clone())
        .filter(|f| f["message"] == message && f["exporter"] == "otlp" && f["signal"] == "traces")
        .map(|f| f[field].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_outage_with_slow_clients_keeps_the_budget_and_accounts_for_every_span() {
    let received = Arc::new(AtomicU64::new(0));
    let mut sink = Sink::start(received.clone()).await;
    let mut collector = Collector::start_with_args(
        &format!(
            r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
processors:
  batch:
    timeout: 100ms
    send_batch_size: 500
exporters:
  otlp:
    endpoint: {sink}
    tls:
      insecure: true
    timeout: 2s
    retry_on_failure:
      initial_interval: 500ms
      max_interval: 5s
      max_elapsed_time: 0
    sending_queue:
      num_consumers: 4
      queue_size: 5000
service:
  telemetry:
    logs:
      encoding: json
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp]
"#,
            sink = sink.addr
        ),
        &["--shutdown-timeout", "5s"],
    );
    let (grpc, http) =
        (collector.addr("receivers.otlp.protocols.grpc"), collector.addr("receivers.otlp.protocols.http"));

    // Steady load; a span counts as sent when the collector acknowledged its request.
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut client = TraceServiceClient::connect(format!("http://{grpc}")).await.expect("connect receiver");
            let mut seq = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                seq += 1;
                if client.export(spans_request("term", 100, seq)).await.is_ok() {
                    acked.fetch_add(100, Ordering::SeqCst);
                }
            }
        })
    };
    let r = received.clone();
    wait_until_async("spans flowing to the sink", Duration::from_secs(20), || r.load(Ordering::SeqCst) > 1000).await;

    // The outage begins; it outlasts the collector.
    sink.stop().await;
    let outage = Instant::now();
    let endpoint = http.to_string();
    let _slow_headers = slow_client(endpoint.clone(), b"POST /v1/traces HTTP/1.1\r\nHost: c\r\nX-Slow: ");
    let _slow_body = slow_client(
        endpoint,
        b"POST /v1/traces HTTP/1.1\r\nHost: c\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n",
    );
    let (at_outage, retries) = (acked.load(Ordering::SeqCst), collector.metric_sum("otelcol_exporter_retries_total"));
    let deadline = Instant::now() + Duration::from_secs(60);
    // 15 s into the outage (the issue's scenario; the wall-clock window is the subject here),
    // with data queued meanwhile and workers in backoff sleeps of up to 5 s.
    while !(outage.elapsed() >= Duration::from_secs(15)
        && acked.load(Ordering::SeqCst) > at_outage + 3000
        && collector.metric_sum("otelcol_exporter_retries_total") >= retries + 12.0)
    {
        assert!(Instant::now() < deadline, "the outage never built up: {}", collector.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let into_outage = outage.elapsed();
    let started = Instant::now();
    let code = collector.terminate(BUDGET + Duration::from_secs(10));
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    load.await.expect("load task");
    let log = collector.log();
    assert_eq!(code, Some(0), "{log}");

    let sent = acked.load(Ordering::SeqCst);
    let at_sink = received.load(Ordering::SeqCst);
    let exported = logged_total(&log, "exporter totals at shutdown", "sent").expect("totals logged");
    let failed = logged_total(&log, "exporter totals at shutdown", "send_failed").expect("totals logged");
    eprintln!(
        "SIGTERM {into_outage:?} into an outage: exited in {took:?} (budget {BUDGET:?}); \
         acknowledged {sent}, received {at_sink}, counted as failed {failed}"
    );
    assert!(took < BUDGET + Duration::from_secs(2), "shutdown took {took:?} with a {BUDGET:?} budget\n{log}");
    assert_eq!(exported, at_sink, "the exporter's sent count is what the downstream received");
    assert!(failed > 0, "the outage left nothing to count as failed?");
    assert_eq!(sent, at_sink + failed, "sent = received + counted-as-failed, exactly\n{log}");
}
