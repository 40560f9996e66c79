//! Downstream outage: the OTLP gRPC destination goes away for 15 s under steady load and comes
//! back; every span must arrive (counted end to end) and the retries must show in own metrics.
//! The collector runs in-process: the subject is the exporter's retry and queue, not the process.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::Listening as _;
use common::in_process::Collector;
use common::{Sink, spans_request, wait_until_async};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_when_the_downstream_is_down_for_15s() {
    let received = Arc::new(AtomicU64::new(0));
    let mut sink = Sink::start(received.clone()).await;
    let sink_addr = sink.addr;
    let c = Collector::start(&format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
processors:
  batch:
    timeout: 100ms
    send_batch_size: 500
exporters:
  otlp:
    endpoint: {sink_addr}
    tls:
      insecure: true
    timeout: 2s
    retry_on_failure:
      initial_interval: 200ms
      max_interval: 1s
      max_elapsed_time: 120s
    sending_queue:
      queue_size: 5000
service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp]
"#
    ));
    let grpc = c.addr("receivers.otlp.protocols.grpc");

    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (sent, stop) = (sent.clone(), stop.clone());
        tokio::spawn(async move {
            let mut client = TraceServiceClient::connect(format!("http://{grpc}")).await.expect("connect receiver");
            let mut seq = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                seq += 1;
                // 100 spans every 50 ms = 2000 spans/s. A refused request would be retried by a real SDK;
                // do the same so "sent" means "accepted by the collector".
                loop {
                    match client.export(spans_request("load", 100, seq)).await {
                        Ok(_) => break,
                        Err(s) if s.code() == tonic::Code::Unavailable => {
                            tokio::time::sleep(Duration::from_millis(100)).await
                        }
                        Err(s) => panic!("receiver rejected data: {s}"),
                    }
                }
                sent.fetch_add(100, Ordering::SeqCst);
            }
        })
    };

    let r = received.clone();
    wait_until_async("data flowing to the sink", Duration::from_secs(10), || r.load(Ordering::SeqCst) > 1000).await;
    sink.stop().await;
    let at_stop = received.load(Ordering::SeqCst);
    // The outage itself: the test's subject is the collector's behaviour over this wall-clock window.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let during = received.load(Ordering::SeqCst) - at_stop;
    sink.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    load.await.expect("load task");

    let total = sent.load(Ordering::SeqCst);
    let r = received.clone();
    wait_until_async("every accepted span at the sink", Duration::from_secs(60), || r.load(Ordering::SeqCst) >= total)
        .await;
    assert_eq!(received.load(Ordering::SeqCst), total, "spans lost or duplicated");
    assert!(during < 2000, "sink received {during} spans while it was down?");
    assert!(total > 30_000, "load generator sent only {total}");
    // The sink counts a request before answering it, the exporter after the answer: on a busy
    // machine the last batches are at the sink a moment before they are counted as sent.
    wait_until_async("the exporter to count every span as sent", Duration::from_secs(10), || {
        c.metric_sum("otelcol_exporter_sent_spans_total") >= total as f64
    })
    .await;
    let m = c.metrics();
    assert!(common::metric_sum(&m, "otelcol_exporter_retries_total") > 0.0, "{m}");
    assert_eq!(common::metric_sum(&m, "otelcol_exporter_send_failed_spans_total"), 0.0, "{m}");
    assert_eq!(common::metric_sum(&m, "otelcol_exporter_sent_spans_total"), total as f64, "{m}");
}
