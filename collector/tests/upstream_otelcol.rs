//! Interop with the upstream OpenTelemetry Collector (built by tools/build.sh): our `otlp` and
//! `otlphttp` exporters send to its otlp receiver, its `file` exporter writes what arrived, and
//! every span must be there intact (ids, attributes, events, resource). Ours runs in-process,
//! upstream as a process; both listen on port 0.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Listening as _;
use common::in_process::Collector;
use common::otelcol::Otelcol;
use common::{kv, spans_request, wait_until};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use serde_json::Value;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(attrs: &Value, key: &str) -> Option<String> {
    attrs
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"]["stringValue"].as_str())
        .map(str::to_owned)
}

/// Tells upstream's two port-0 listeners apart: its OTLP/HTTP server answers an HTTP/1.1
/// request; its gRPC server (HTTP/2 only) hangs up on one.
async fn grpc_and_http(listening: &[SocketAddr]) -> (SocketAddr, SocketAddr) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let mut http = Vec::new();
    for addr in listening {
        http.push(client.get(format!("http://{addr}/")).send().await.is_ok());
    }
    match (listening, http.as_slice()) {
        ([a, b], [false, true]) => (*a, *b),
        ([a, b], [true, false]) => (*b, *a),
        _ => panic!("expected one gRPC and one HTTP listener: {listening:?} answering HTTP/1.1: {http:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_collector_receives_every_span_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("upstream.jsonl");
    let mut upstream = Otelcol::start(
        dir.path(),
        &format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:0\n      http:\n        endpoint: 127.0.0.1:0\nexporters:\n  file:\n    path: {}\nservice:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [file]\n",
            out.display()
        ),
    );
    let (up_grpc, up_http) = grpc_and_http(&upstream.listening(2, Duration::from_secs(30))).await;

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
  resource/grpc:
    attributes:
      - {{key: via, value: grpc, action: insert}}
  resource/http:
    attributes:
      - {{key: via, value: http, action: insert}}
exporters:
  otlp:
    endpoint: {up_grpc}
    tls:
      insecure: true
  otlphttp:
    endpoint: http://{up_http}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces/grpc:
      receivers: [otlp]
      processors: [resource/grpc, batch]
      exporters: [otlp]
    traces/http:
      receivers: [otlp]
      processors: [resource/http, batch]
      exporters: [otlphttp]
"#
    ));

    let mut req = spans_request("interop", 20, 7);
    for (i, s) in req.resource_spans[0].scope_spans[0].spans.iter_mut().enumerate() {
        s.events.push(Event {
            name: format!("event-{i}"),
            time_unix_nano: 1_700_000_000_050_000_000,
            attributes: vec![kv("e", "v")],
            ..Default::default()
        });
    }
    let grpc = c.addr("receivers.otlp.protocols.grpc");
    let mut client = TraceServiceClient::connect(format!("http://{grpc}")).await.expect("connect");
    client.export(req.clone()).await.expect("export to our collector");

    let mut spans: Vec<(String, Value)> = Vec::new();
    wait_until("40 spans in upstream's file exporter", Duration::from_secs(30), || {
        spans.clear();
        for line in std::fs::read_to_string(&out).unwrap_or_default().lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
            for rs in v["resourceSpans"].as_array().into_iter().flatten() {
                let via = attr(&rs["resource"]["attributes"], "via").unwrap_or_default();
                assert_eq!(attr(&rs["resource"]["attributes"], "service.name").as_deref(), Some("it"));
                for s in rs["scopeSpans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|s| s["spans"].as_array().into_iter().flatten())
                {
                    spans.push((via.clone(), s.clone()));
                }
            }
        }
        spans.len() >= 40
    });
    assert_eq!(spans.len(), 40, "each span once per pipeline");
    for via in ["grpc", "http"] {
        for sent in &req.resource_spans[0].scope_spans[0].spans {
            let got = spans
                .iter()
                .find(|(v, s)| v == via && s["name"] == sent.name.as_str())
                .map(|(_, s)| s)
                .unwrap_or_else(|| panic!("{} via {via} missing", sent.name));
            assert_eq!(got["traceId"], hex(&sent.trace_id).as_str());
            assert_eq!(got["spanId"], hex(&sent.span_id).as_str());
            assert_eq!(attr(&got["attributes"], "http.route").as_deref(), Some("/reviews"));
            assert_eq!(attr(&got["attributes"], "seq").as_deref(), Some("7"));
            assert_eq!(got["events"][0]["name"], sent.events[0].name.as_str());
            assert_eq!(attr(&got["events"][0]["attributes"], "e").as_deref(), Some("v"));
            assert_eq!(got["startTimeUnixNano"].as_str(), Some(sent.start_time_unix_nano.to_string().as_str()));
            assert_eq!(got["kind"], 2);
        }
    }
    // The counter moves after the response arrives, which can trail the file write slightly.
    wait_until("sent spans counted", Duration::from_secs(10), || {
        c.metric_sum("otelcol_exporter_sent_spans_total") == 40.0
    });
}
