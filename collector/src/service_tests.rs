//! The service in-process on port 0: every listener is reported to `on_ready` under its config
//! path and goes through [`crate::listener::serve`] with the configured timeouts (a slowloris
//! client is cut off on each of them); shutdown during an outage keeps its budget.

use std::time::Duration;

use super::*;
use crate::listener::tests::{get_ok, slowloris};
use tokio_util::sync::CancellationToken;

const CONFIG: &str = r#"
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
        read_header_timeout: 300ms
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
    read_header_timeout: 300ms
extensions:
  health_check:
    endpoint: 127.0.0.1:0
    read_header_timeout: 300ms
    idle_timeout: 0
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
"#;

#[tokio::test]
async fn every_configured_listener_cuts_off_a_slowloris_client() {
    let config = Config::from_yaml_str(CONFIG, &|_| None).expect("valid config");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let run = tokio::spawn(run(config, async move { stopped.cancelled().await }, Duration::from_secs(5), move |a| {
        let _ = ready_tx.send(a.clone());
    }));
    let addrs = ready_rx.await.expect("service started");
    for key in ["receivers.otlp.protocols.http", "exporters.prometheus", "extensions.health_check"] {
        let addr = addrs[key];
        let took = slowloris(addr, Duration::from_secs(20)).await;
        let took = took.unwrap_or_else(|| panic!("{key}: slowloris connection never closed"));
        assert!(took < Duration::from_secs(5), "{key}: closed after {took:?}");
    }
    // The health check still answers after being attacked.
    assert!(get_ok(addrs["extensions.health_check"]).await);
    stop.cancel();
    run.await.expect("join").expect("clean shutdown");
}

/// Every listener of a config with all kinds, two `otlp` receivers among them, is reported under
/// the config path of its endpoint, with the port the OS chose, and accepts connections.
#[tokio::test]
async fn on_ready_reports_every_listener_under_its_config_path() {
    let yaml = r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
  otlp/second:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
extensions:
  health_check:
    endpoint: 127.0.0.1:0
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    metrics:
      receivers: [otlp, otlp/second]
      exporters: [prometheus]
"#;
    let config = Config::from_yaml_str(yaml, &|_| None).expect("valid config");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let run = tokio::spawn(run(config, async move { stopped.cancelled().await }, Duration::from_secs(5), move |a| {
        let _ = ready_tx.send(a.clone());
    }));
    let addrs = ready_rx.await.expect("service started");
    let keys: Vec<&str> = addrs.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "exporters.prometheus",
            "extensions.health_check",
            "receivers.otlp.protocols.grpc",
            "receivers.otlp.protocols.http",
            "receivers.otlp/second.protocols.grpc",
            "service.telemetry.metrics",
        ]
    );
    for (key, addr) in &addrs {
        assert_ne!(addr.port(), 0, "{key}: the bound port, not the configured one");
        tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{key} at {addr}: {e}"));
    }
    stop.cancel();
    run.await.expect("join").expect("clean shutdown");
}

/// Three spans per request, as protobuf.
fn spans_body() -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;
    let span = |i: u8| Span { trace_id: vec![i; 16], span_id: vec![i; 8], name: "s".into(), ..Default::default() };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![span(1), span(2), span(3)], ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Shutdown during a downstream outage: the collector stops within its budget although every
/// export is stuck retrying, and every accepted span is either sent or counted as failed.
#[tokio::test]
async fn shutdown_during_an_outage_keeps_its_budget_and_accounts_for_every_span() {
    // A port nothing listens on: every export is refused (retryable), forever.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead = closed.local_addr().expect("addr");
    drop(closed);
    let yaml = format!(
        r#"
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  otlphttp:
    endpoint: http://{dead}
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 1s
      max_elapsed_time: 0
    sending_queue:
      num_consumers: 2
      queue_size: 100
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
"#
    );
    let config = Config::from_yaml_str(&yaml, &|_| None).expect("valid config");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let budget = Duration::from_secs(2);
    let run = tokio::spawn(run(config, async move { stopped.cancelled().await }, budget, move |a| {
        let _ = ready_tx.send(a.clone());
    }));
    let addrs = ready_rx.await.expect("service started");
    let url = format!("http://{}/v1/traces", addrs["receivers.otlp.protocols.http"]);
    let client = reqwest::Client::new();
    let mut acknowledged = 0u64;
    for _ in 0..20 {
        let r = client
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(spans_body())
            .send()
            .await
            .expect("post");
        if r.status().is_success() {
            acknowledged += 3;
        }
    }
    assert_eq!(acknowledged, 60, "the queue has room for all 20 requests");
    let started = std::time::Instant::now();
    stop.cancel();
    let telemetry = run.await.expect("join").expect("clean shutdown");
    let took = started.elapsed();
    assert!(took < budget + Duration::from_secs(3), "shutdown took {took:?} with a {budget:?} budget");
    let labels = [("receiver", "otlp"), ("transport", "http")];
    let received = telemetry.counter_value("otelcol_receiver_accepted_spans", &labels);
    let exporter = [("exporter", "otlphttp")];
    let sent = telemetry.counter_value("otelcol_exporter_sent_spans", &exporter);
    let failed = telemetry.counter_value("otelcol_exporter_send_failed_spans", &exporter)
        + telemetry.counter_value("otelcol_exporter_enqueue_failed_spans", &exporter);
    assert_eq!(received, acknowledged);
    assert_eq!((sent, failed), (0, received), "every accepted span is sent or counted as failed");
}
