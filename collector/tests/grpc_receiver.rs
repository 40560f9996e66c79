//! The OTLP/gRPC receiver, in-process on port 0: malformed requests get `InvalidArgument` (and the next
//! good request still succeeds), gzip and size limits, and accepted spans reach the exporter
//! intact through the encoded path (receiver → batch → exporter without decoding).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Listening as _;
use common::in_process::Collector;
use common::{spans_request, wait_until_async};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;
use telemetry_collector::raw_codec::RawCodec;
use tonic::Code;
use tonic::codec::CompressionEncoding;

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

const CONFIG: &str = r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
        max_recv_msg_size_mib: 1
processors:
  batch:
    timeout: 50ms
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
"#;

/// Sends raw bytes as a trace export and returns the status code.
async fn send_raw(channel: &tonic::transport::Channel, path: &'static str, body: Vec<u8>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let res = grpc
        .unary::<Vec<Bytes>, Bytes, _>(
            tonic::Request::new(vec![Bytes::from(body)]),
            http::uri::PathAndQuery::from_static(path),
            RawCodec,
        )
        .await;
    res.map_or_else(|s| s.code(), |_| Code::Ok)
}

/// Every span the file exporter wrote, decoded.
fn exported(c: &Collector) -> Vec<ExportTraceServiceRequest> {
    std::fs::read_to_string(c.path("out.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn span_count(reqs: &[ExportTraceServiceRequest]) -> usize {
    reqs.iter().flat_map(|r| &r.resource_spans).flat_map(|rs| &rs.scope_spans).map(|s| s.spans.len()).sum()
}

#[tokio::test]
async fn malformed_requests_get_invalid_argument_and_good_ones_arrive_intact() {
    let c = Collector::start(CONFIG);
    let grpc = c.addr("receivers.otlp.protocols.grpc");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}")).expect("endpoint").connect_lazy();
    let good = spans_request("good", 3, 1);
    let good_bytes = good.encode_to_vec();

    // A span name that is not UTF-8: the bytes frame correctly, only the string check catches it.
    let mut bad_utf8 = spans_request("x", 1, 2);
    bad_utf8.resource_spans[0].scope_spans[0].spans[0].name = "\u{e9}".into();
    let mut bad_utf8 = bad_utf8.encode_to_vec();
    let at = bad_utf8.iter().rposition(|&b| b == 0xc3).expect("the é");
    bad_utf8[at] = 0xff;

    let cases: Vec<(&str, &'static str, Vec<u8>, Code)> = vec![
        ("truncated protobuf", EXPORT, good_bytes[..good_bytes.len() - 5].to_vec(), Code::InvalidArgument),
        ("invalid UTF-8 in a string field", EXPORT, bad_utf8, Code::InvalidArgument),
        ("wrong wire type", EXPORT, vec![0x08, 0x01], Code::InvalidArgument),
        ("over max_recv_msg_size_mib", EXPORT, vec![0u8; 2 << 20], Code::OutOfRange),
        (
            "unknown method",
            "/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
            good_bytes.clone(),
            Code::Unimplemented,
        ),
    ];
    for (what, path, body, want) in cases {
        assert_eq!(send_raw(&channel, path, body).await, want, "{what}");
        assert_eq!(send_raw(&channel, EXPORT, good_bytes.clone()).await, Code::Ok, "good request after {what}");
    }
    // The typed client with gzip, as SDKs send.
    let mut client = TraceServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Gzip);
    client.export(spans_request("gzip", 4, 3)).await.expect("gzip export");

    // 5 good raw requests × 3 spans + 4 gzip spans, batched together, unchanged.
    wait_until_async("spans in the file", Duration::from_secs(10), || span_count(&exported(&c)) >= 19).await;
    let out = exported(&c);
    assert_eq!(span_count(&out), 19);
    let first = &out[0].resource_spans[0];
    assert_eq!(first, &good.resource_spans[0], "ids, attributes and resource arrive intact");
    assert_eq!(c.metric_sum("otelcol_receiver_accepted_spans_total"), 19.0);
}
