//! The encoded path of the `resource`, `attributes` and `span` processors against their decoded
//! path: for each case, processing the received bytes must decode to exactly what decoding first
//! and processing the structs gives, and must really have stayed encoded.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value as V};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

use super::attributes::AttributesProcessor;
use super::resource::ResourceProcessor;
use super::span::SpanProcessor;
use crate::config::id::Signal;
use crate::pdata::{Data, Payload};
use crate::pipeline::Processor;

fn kv(k: &str, v: V) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

fn s(v: &str) -> V {
    V::StringValue(v.into())
}

fn span(name: &str, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: attrs,
        ..Default::default()
    }
}

fn traces(resource: Option<Vec<KeyValue>>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource.map(|attributes| Resource { attributes, ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

enum Kind {
    Resource,
    Attributes,
    Span,
}

fn build(kind: &Kind, yaml: &str) -> Box<dyn Processor> {
    match kind {
        Kind::Resource => Box::new(ResourceProcessor::new(&serde_yaml::from_str(yaml).unwrap()).unwrap()),
        Kind::Attributes => Box::new(AttributesProcessor::new(&serde_yaml::from_str(yaml).unwrap()).unwrap()),
        Kind::Span => Box::new(SpanProcessor::new(&serde_yaml::from_str(yaml).unwrap()).unwrap()),
    }
}

/// Runs `body` through both paths of one processor; asserts they agree and that the encoded one
/// stayed encoded. Returns the result.
fn both_paths(kind: Kind, yaml: &str, signal: Signal, body: Bytes) -> Payload {
    let p = build(&kind, yaml);
    let encoded = Data::from_protobuf(signal, body.clone()).unwrap();
    assert!(matches!(encoded, Data::Encoded(_)));
    let via_wire = p.process(encoded).unwrap();
    assert!(matches!(via_wire, Data::Encoded(_)), "the encoded path was taken");
    let via_structs = p.process(Data::Decoded(Payload::decode_protobuf(signal, &body).unwrap())).unwrap();
    let (a, b) = (via_wire.decode().unwrap(), via_structs.decode().unwrap());
    assert_eq!(a, b, "encoded and decoded paths disagree for {yaml}");
    a
}

fn trace_paths(kind: Kind, yaml: &str, req: &ExportTraceServiceRequest) -> ExportTraceServiceRequest {
    match both_paths(kind, yaml, Signal::Traces, req.encode_to_vec().into()) {
        Payload::Traces(t) => t,
        other => panic!("{other:?}"),
    }
}

fn only_span(t: &ExportTraceServiceRequest) -> &Span {
    &t.resource_spans[0].scope_spans[0].spans[0]
}

fn keys(attrs: &[KeyValue]) -> Vec<&str> {
    attrs.iter().map(|kv| kv.key.as_str()).collect()
}

#[test]
fn resource_upsert_replaces_in_place_and_insert_appends() {
    let req =
        traces(Some(vec![kv("service.name", s("a")), kv("deployment.environment", s("dev"))]), vec![span("x", vec![])]);
    let out = trace_paths(
        Kind::Resource,
        "attributes: [{key: deployment.environment, value: prod, action: upsert}, {key: collector.version, value: 1.2, action: insert}]",
        &req,
    );
    let attrs = &out.resource_spans[0].resource.as_ref().unwrap().attributes;
    assert_eq!(keys(attrs), ["service.name", "deployment.environment", "collector.version"]);
    assert_eq!(attrs[1].value.as_ref().unwrap().value, Some(s("prod")));
    assert_eq!(attrs[2].value.as_ref().unwrap().value, Some(V::DoubleValue(1.2)));
}

#[test]
fn a_missing_resource_is_created_even_when_no_action_adds_to_it() {
    let req = traces(None, vec![span("x", vec![])]);
    let out = trace_paths(Kind::Resource, "attributes: [{key: k, value: v, action: update}]", &req);
    assert_eq!(out.resource_spans[0].resource, Some(Resource::default()));
    let out = trace_paths(Kind::Resource, "attributes: [{key: k, value: 7, action: insert}]", &req);
    assert_eq!(out.resource_spans[0].resource.as_ref().unwrap().attributes, [kv("k", V::IntValue(7))]);
}

#[test]
fn insert_of_a_present_attribute_changes_nothing_and_keeps_the_bytes() {
    let req = traces(None, vec![span("x", vec![kv("team", s("a"))])]);
    let body = Bytes::from(req.encode_to_vec());
    let p = build(&Kind::Attributes, "actions: [{key: team, value: b, action: insert}]");
    let out = p.process(Data::from_protobuf(Signal::Traces, body.clone()).unwrap()).unwrap();
    let Data::Encoded(e) = &out else { panic!("decoded") };
    let chunk = e.chunks().next().unwrap();
    assert_eq!(chunk.as_ptr(), body.as_ptr(), "unchanged data is passed on, not copied");
    trace_paths(Kind::Attributes, "actions: [{key: team, value: b, action: insert}]", &req);
}

#[test]
fn attribute_actions_in_order_with_duplicates_deletes_and_copies() {
    let attrs = vec![
        kv("a", s("1")),
        kv("dup", s("first")),
        kv("tmp.x", V::IntValue(3)),
        kv("dup", s("second")),
        kv("n", V::IntValue(42)),
        KeyValue { key: "novalue".into(), value: None, ..Default::default() },
    ];
    let req = traces(None, vec![span("x", attrs.clone()), span("y", vec![])]);
    let out = trace_paths(
        Kind::Attributes,
        r"actions:
          - {key: dup, value: changed, action: update}
          - {key: copy, from_attribute: n, action: insert}
          - {key: fromnothing, from_attribute: novalue, action: insert}
          - {key: '', pattern: '^tmp\.', action: delete}
          - {key: a, action: delete}
          - {key: a, value: back, action: insert}
          - {key: added, value: x, action: insert}
          - {key: added, action: delete}",
        &req,
    );
    let got = &only_span(&out).attributes;
    assert_eq!(keys(got), ["dup", "dup", "n", "novalue", "copy", "a"]);
    assert_eq!(got[0].value.as_ref().unwrap().value, Some(s("changed")), "the first of duplicates is updated");
    assert_eq!(got[1].value.as_ref().unwrap().value, Some(s("second")));
    assert_eq!(got[4].value.as_ref().unwrap().value, Some(V::IntValue(42)), "from_attribute keeps the type");
    assert_eq!(keys(&out.resource_spans[0].scope_spans[0].spans[1].attributes), ["a"]);
}

#[test]
fn span_rename_with_non_string_values_empty_names_and_missing_keys() {
    let values = vec![
        kv("m", s("GET")),
        kv("r", s("/x")),
        kv("i", V::IntValue(-5)),
        kv("d", V::DoubleValue(0.5)),
        kv("b", V::BoolValue(true)),
        kv("arr", V::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(s("p")) }] })),
        kv("bytes", V::BytesValue(vec![0xab, 1])),
        kv("empty", s("")),
        KeyValue { key: "none".into(), value: Some(AnyValue { value: None }), ..Default::default() },
    ];
    let req = traces(None, vec![span("", values.clone()), span("keep", vec![kv("m", s("POST"))])]);
    let out = trace_paths(
        Kind::Span,
        "name: {from_attributes: [m, r, i, d, b, arr, bytes, empty, none], separator: '|'}",
        &req,
    );
    assert_eq!(only_span(&out).name, "GET|/x|-5|0.5|true|[p]|ab01||");
    assert_eq!(out.resource_spans[0].scope_spans[0].spans[1].name, "keep", "renamed only when every key is present");
    let out = trace_paths(Kind::Span, "name: {from_attributes: [empty]}", &req);
    assert_eq!(only_span(&out).name, "", "an empty value renames to the empty name");
    let out = trace_paths(
        Kind::Span,
        "name: {from_attributes: [m, r], separator: ' '}",
        &traces(None, vec![span("GET /x", values)]),
    );
    assert_eq!(only_span(&out).name, "GET /x");
}

#[test]
fn long_values_move_lengths_across_varint_widths() {
    let big = "v".repeat(20_000);
    let req = traces(Some(vec![]), vec![span(&"n".repeat(100), vec![kv("k", s(&"w".repeat(10)))])]);
    let yaml =
        format!("actions: [{{key: k, value: {big}, action: update}}, {{key: k2, value: {big}, action: insert}}]");
    let out = trace_paths(Kind::Attributes, &yaml, &req);
    assert_eq!(only_span(&out).attributes.len(), 2);
    let out = trace_paths(Kind::Attributes, "actions: [{key: k, action: delete}]", &req);
    assert!(only_span(&out).attributes.is_empty());
}

#[test]
fn batched_requests_are_edited_chunk_by_chunk() {
    let p = build(&Kind::Span, "name: {from_attributes: [m]}");
    let mut data = Data::from_protobuf(
        Signal::Traces,
        traces(None, vec![span("a", vec![kv("m", s("A"))])]).encode_to_vec().into(),
    )
    .unwrap();
    data.append(
        Data::from_protobuf(
            Signal::Traces,
            traces(None, vec![span("b", vec![kv("m", s("B"))])]).encode_to_vec().into(),
        )
        .unwrap(),
    );
    let out = p.process(data).unwrap();
    assert!(matches!(out, Data::Encoded(_)));
    assert_eq!(crate::pdata::tests::names(&out.decode().unwrap()), ["A", "B"]);
}

#[test]
fn logs_get_resource_and_attribute_actions_encoded() {
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![kv("service.name", s("svc"))], ..Default::default() }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(AnyValue { value: Some(s("hello")) }),
                    attributes: vec![kv("a", s("1"))],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let body: Bytes = req.encode_to_vec().into();
    both_paths(Kind::Resource, "attributes: [{key: env, value: prod, action: upsert}]", Signal::Logs, body.clone());
    let Payload::Logs(out) =
        both_paths(Kind::Attributes, "actions: [{key: a, value: 2, action: upsert}]", Signal::Logs, body)
    else {
        panic!()
    };
    let record = &out.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.attributes, [kv("a", V::IntValue(2))]);
    assert_eq!(record.body, Some(AnyValue { value: Some(s("hello")) }));
}

#[test]
fn shapes_protobuf_merges_fall_back_to_decoding_with_the_same_result() {
    // A KeyValue whose key is sent twice: on decode the last key wins.
    let mut span_bytes = span("x", vec![]).encode_to_vec();
    let kv_bytes = [0x0a, 0x01, b'a', 0x0a, 0x01, b'b', 0x12, 0x03, 0x0a, 0x01, b'v'];
    span_bytes.extend([0x4a, kv_bytes.len() as u8]);
    span_bytes.extend(kv_bytes);
    let scope = [&[0x12, span_bytes.len() as u8][..], &span_bytes].concat();
    let rs = [&[0x12, scope.len() as u8][..], &scope].concat();
    let body: Bytes = [&[0x0a, rs.len() as u8][..], &rs].concat().into();
    let p = build(&Kind::Attributes, "actions: [{key: b, value: w, action: update}]");
    let out = p.process(Data::from_protobuf(Signal::Traces, body.clone()).unwrap()).unwrap();
    let direct = p.process(Data::Decoded(Payload::decode_protobuf(Signal::Traces, &body).unwrap())).unwrap();
    assert_eq!(out.decode().unwrap(), direct.decode().unwrap());
}

#[test]
fn filters_and_decode_only_actions_keep_the_decoded_path() {
    let req = traces(None, vec![span("x", vec![kv("email", s("a@b"))])]);
    let body: Bytes = req.encode_to_vec().into();
    for (kind, yaml) in [
        (Kind::Attributes, "actions: [{key: email, action: hash}]"),
        (
            Kind::Attributes,
            "{include: {match_type: strict, span_names: [x]}, actions: [{key: a, value: b, action: insert}]}",
        ),
        (Kind::Span, "name: {to_attributes: {rules: ['^(?P<n>.*)$']}}"),
    ] {
        let p = build(&kind, yaml);
        let out = p.process(Data::from_protobuf(Signal::Traces, body.clone()).unwrap()).unwrap();
        assert!(matches!(out, Data::Decoded(_)), "{yaml}");
    }
}

#[test]
fn metrics_get_resource_actions_encoded() {
    let mut req = crate::pdata::wire::tests::metrics();
    let body: Bytes = req.encode_to_vec().into();
    let yaml = "attributes: [{key: deployment.environment, value: prod, action: upsert}, {key: collector.version, value: '1', action: insert}, {key: service.name, action: delete}]";
    let Payload::Metrics(out) = both_paths(Kind::Resource, yaml, Signal::Metrics, body) else { panic!() };
    let attrs = &out.resource_metrics[0].resource.as_ref().unwrap().attributes;
    assert_eq!(keys(attrs), ["deployment.environment", "collector.version"]);
    // A resource group without a resource gets one, as on the decoded path.
    req.resource_metrics[0].resource = None;
    both_paths(Kind::Resource, yaml, Signal::Metrics, req.encode_to_vec().into());
}
