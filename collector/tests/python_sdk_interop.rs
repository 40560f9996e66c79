//! Interop with the official OpenTelemetry Python SDK: traces, metrics and logs over OTLP gRPC and
//! HTTP into the receiver of an in-process collector; every item must arrive (checked via the file
//! exporter's OTLP JSON).

mod common;

use std::time::Duration;

use common::Listening as _;
use common::in_process::Collector;
use common::{python, wait_until};
use serde_json::Value;

const N: usize = 25;

const CONFIG: &str = r#"
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
exporters:
  file:
    path: {DIR}/out.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
    metrics:
      receivers: [otlp]
      exporters: [file]
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
"#;

#[derive(Default, Debug)]
struct Seen {
    spans: Vec<(String, Value)>,
    /// Distinct `route` attribute values seen on `py.requests` points (the SDK may export twice).
    points: std::collections::BTreeSet<String>,
    logs: Vec<String>,
}

fn service_name(resource: &Value) -> String {
    resource["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["key"] == "service.name")
        .and_then(|a| a["value"]["stringValue"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn collect(text: &str, service: &str) -> Seen {
    let mut seen = Seen::default();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("json line");
        for rs in
            v["resourceSpans"].as_array().into_iter().flatten().filter(|r| service_name(&r["resource"]) == service)
        {
            for s in rs["scopeSpans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["spans"].as_array().into_iter().flatten())
            {
                seen.spans.push((s["name"].as_str().unwrap_or_default().to_owned(), s.clone()));
            }
        }
        for rm in
            v["resourceMetrics"].as_array().into_iter().flatten().filter(|r| service_name(&r["resource"]) == service)
        {
            for m in rm["scopeMetrics"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["metrics"].as_array().into_iter().flatten())
            {
                if m["name"] == "py.requests" {
                    for p in m["sum"]["dataPoints"].as_array().into_iter().flatten() {
                        for a in p["attributes"].as_array().into_iter().flatten().filter(|a| a["key"] == "route") {
                            seen.points.insert(a["value"]["stringValue"].as_str().unwrap_or_default().to_owned());
                        }
                    }
                }
            }
        }
        for rl in v["resourceLogs"].as_array().into_iter().flatten().filter(|r| service_name(&r["resource"]) == service)
        {
            for l in rl["scopeLogs"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["logRecords"].as_array().into_iter().flatten())
            {
                seen.logs.push(l["body"]["stringValue"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    seen
}

fn run_sdk(protocol: &str, endpoint: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send_otlp.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(protocol)
        .arg(endpoint)
        .arg(N.to_string())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python SDK ({protocol}) failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(c: &Collector, service: &str) {
    let mut seen = Seen::default();
    wait_until(&format!("all {service} items in the file exporter"), Duration::from_secs(20), || {
        seen = collect(&std::fs::read_to_string(c.path("out.jsonl")).unwrap_or_default(), service);
        seen.spans.len() >= N && seen.points.len() >= N && seen.logs.len() >= N
    });
    assert_eq!(seen.spans.len(), N, "{service} spans");
    assert_eq!(seen.points.len(), N, "{service} metric points");
    assert_eq!(seen.logs.len(), N, "{service} log records");
    let mut names: Vec<String> = seen.spans.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("py-span-{i}")).collect();
    want.sort();
    assert_eq!(names, want);
    let (_, span) = &seen.spans[0];
    assert_eq!(span["traceId"].as_str().map(str::len), Some(32), "hex trace id: {span}");
    assert_eq!(span["events"][0]["name"], "checkpoint", "{span}");
    assert!(span["attributes"].as_array().is_some_and(|a| a.iter().any(|kv| kv["key"] == "iteration")), "{span}");
    let mut logs = seen.logs.clone();
    logs.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("py-log-{i}")).collect();
    want.sort();
    assert_eq!(logs, want);
}

#[test]
fn python_sdk_over_grpc_and_http_delivers_every_item() {
    let c = Collector::start(CONFIG);
    run_sdk("grpc", &format!("http://{}", c.addr("receivers.otlp.protocols.grpc")));
    check(&c, "py-grpc");
    run_sdk("http", &format!("http://{}", c.addr("receivers.otlp.protocols.http")));
    check(&c, "py-http");
    let m = c.metrics();
    assert!(common::metric_sum(&m, "otelcol_receiver_accepted_spans_total") >= (2 * N) as f64, "{m}");
    assert!(common::metric_sum(&m, "otelcol_receiver_accepted_log_records_total") >= (2 * N) as f64, "{m}");
    assert!(common::metric_sum(&m, "otelcol_exporter_sent_metric_points_total") >= (2 * N) as f64, "{m}");
}
