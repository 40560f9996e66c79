//! OTLP/HTTP bad input answers, own metrics and the health check, in-process on port 0; and with
//! the binary, what needs it: `validate` messages and exit codes, and SIGTERM draining a batch
//! into the file exporter.

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::Listening as _;
use common::{in_process, process, spans_request, wait_until};
use prost::Message as _;

fn config(max: u64, batch_timeout: &str) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
        max_request_body_size: {max}
processors:
  batch:
    timeout: {batch_timeout}
    send_batch_size: 100000
exporters:
  file:
    path: {{DIR}}/out.jsonl
extensions:
  health_check:
    endpoint: 127.0.0.1:0
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
"#
    )
}

fn post(url: &str, ct: &str, ce: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    let (url, ct, ce) = (url.to_owned(), ct.to_owned(), ce.map(str::to_owned));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let mut r = reqwest::Client::new().post(&url).header("content-type", ct).body(body);
            if let Some(ce) = ce {
                r = r.header("content-encoding", ce);
            }
            let resp = r.send().await.expect("send");
            let status = resp.status().as_u16();
            (status, resp.bytes().await.expect("body").to_vec())
        })
    })
    .join()
    .expect("thread")
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

#[test]
fn validate_reports_the_path_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  otlp/alloy:\n    endpont: x:4317\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp/alloy]\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_telemetry-collector"))
        .args(["validate", "--config"])
        .arg(&p)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exporters.otlp/alloy.endpont: unknown field"), "{err}");

    std::fs::write(&p, "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  logging:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [logging]\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_telemetry-collector"))
        .args(["validate", "--config"])
        .arg(&p)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("deprecated"));
}

#[test]
fn bad_input_gets_the_right_status_and_good_requests_still_work() {
    let max = 64 * 1024;
    let c = in_process::Collector::start(&config(max, "50ms"));
    let url = format!("http://{}/v1/traces", c.addr("receivers.otlp.protocols.http"));
    let good = spans_request("good", 3, 1).encode_to_vec();

    let (s, _) = post(&url, "application/x-protobuf", None, good.clone());
    assert_eq!(s, 200);

    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        ("truncated protobuf", "application/x-protobuf", None, good[..good.len() - 5].to_vec(), 400),
        ("wrong content type", "text/plain", None, good.clone(), 415),
        ("invalid JSON", "application/json", None, b"{\"resourceSpans\": [".to_vec(), 400),
        ("oversized body", "application/x-protobuf", None, vec![0u8; (max as usize) * 2], 413),
        ("gzip bomb", "application/x-protobuf", Some("gzip"), gzip(&vec![0u8; 64 << 20]), 413),
        ("corrupt gzip", "application/x-protobuf", Some("gzip"), b"not gzip".to_vec(), 400),
    ];
    for (what, ct, ce, body, want) in cases {
        let (s, body) = post(&url, ct, ce, body);
        assert_eq!(s, want, "{what}: body {:?}", String::from_utf8_lossy(&body));
        let (s, _) = post(&url, "application/x-protobuf", None, good.clone());
        assert_eq!(s, 200, "good request after {what}");
    }
    // JSON round trip with hex ids.
    let json = serde_json::to_vec(&spans_request("json", 2, 2)).expect("json");
    let (s, body) = post(&url, "application/json", None, json);
    assert_eq!((s, body.as_slice()), (200, b"{}".as_slice()));

    wait_until("accepted spans in own metrics", Duration::from_secs(10), || {
        c.metric_sum("otelcol_receiver_accepted_spans_total") >= 3.0 * 7.0 + 2.0
    });
    let health_body = common::http_get(&format!("http://{}/", c.addr("extensions.health_check")));
    assert!(health_body.contains("Server available"), "{health_body}");
}

#[test]
fn sigterm_flushes_the_batch_and_exits_zero() {
    // A batch timeout far beyond the test: only the shutdown flush can write the spans.
    let mut c = process::Collector::start(&config(1 << 20, "1h"));
    let url = format!("http://{}/v1/traces", c.addr("receivers.otlp.protocols.http"));
    for i in 0..5 {
        let (s, _) = post(&url, "application/x-protobuf", None, spans_request("drain", 10, i).encode_to_vec());
        assert_eq!(s, 200);
    }
    assert_eq!(
        std::fs::read_to_string(c.path("out.jsonl")).unwrap_or_default().lines().count(),
        0,
        "batch should still be pending"
    );
    assert_eq!(c.terminate(Duration::from_secs(15)), Some(0), "{}", c.log());
    let out = std::fs::read_to_string(c.path("out.jsonl")).expect("file output");
    let spans: usize = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .map(|v| {
            v["resourceSpans"].as_array().map_or(0, |rs| {
                rs.iter()
                    .map(|r| {
                        r["scopeSpans"]
                            .as_array()
                            .map_or(0, |ss| ss.iter().map(|s| s["spans"].as_array().map_or(0, Vec::len)).sum::<usize>())
                    })
                    .sum()
            })
        })
        .sum();
    assert_eq!(spans, 50, "{out}");
}
