//! Byte-level properties of the encoded-form editor that the decoded comparison cannot see:
//! unknown fields survive, untouched spans are copied byte for byte, and shapes protobuf merges
//! on decode are handed back to the decoded path. (Semantics against the decoded processors are
//! tested in `processor::wire_tests` and fuzzed by `edit_equivalence`.)

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

use super::*;

fn put(out: &mut Vec<u8>, tag: u32, contents: &[u8]) {
    put_len_field(out, tag, contents);
}

fn string_kv(key: &str, value: &str) -> Vec<u8> {
    let mut any = Vec::new();
    put(&mut any, STRING_VALUE, value.as_bytes());
    let mut kv = Vec::new();
    put(&mut kv, 1, key.as_bytes());
    put(&mut kv, 2, &any);
    kv
}

/// A traces request with one span made of `span` bytes.
fn request_with_span(span: &[u8]) -> Bytes {
    let mut scope = Vec::new();
    put(&mut scope, ITEMS, span);
    let mut group = Vec::new();
    put(&mut group, SCOPE_GROUPS, &scope);
    let mut req = Vec::new();
    put(&mut req, RESOURCE_GROUPS, &group);
    req.into()
}

fn encoded(body: Bytes) -> Encoded {
    Encoded::new(Signal::Traces, body).unwrap().unwrap()
}

fn insert(key: &str, value: &str) -> AttrEdit {
    let mut any = Vec::new();
    put(&mut any, STRING_VALUE, value.as_bytes());
    AttrEdit { ops: vec![AttrOp { key: key.into(), kind: OpKind::Insert(Source::Literal(any)) }] }
}

fn only_chunk(e: &Encoded) -> Bytes {
    let mut chunks = e.chunks();
    let c = chunks.next().unwrap().clone();
    assert!(chunks.next().is_none());
    c
}

#[test]
fn unknown_fields_of_a_changed_span_and_attribute_are_kept() {
    // Field 99 in the span and field 7 in a KeyValue: unknown to this protocol version.
    let unknown_in_span = [0x98, 0x06, 0x2a]; // tag 99, varint 42
    let mut kv = string_kv("http.route", "/r");
    kv.extend([0x38, 0x01]); // tag 7, varint 1
    let mut span = Vec::new();
    put(&mut span, SPAN_NAME, b"old");
    put(&mut span, SPAN_ATTRIBUTES, &kv);
    span.extend(unknown_in_span);
    let body = request_with_span(&span);

    let rename = Rename { keys: vec!["http.route".into()], separator: String::new() };
    let update = AttrEdit {
        ops: vec![AttrOp {
            key: "http.route".into(),
            kind: OpKind::Update(Source::FromAttribute("http.route".into())),
        }],
    };
    let edit = Edit { items: Some(&update), rename: Some(&rename), ..Edit::default() };
    let out = only_chunk(&apply(&encoded(body), &edit).unwrap());
    let contains = |needle: &[u8]| out.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&unknown_in_span), "the span's unknown field is kept");
    assert!(contains(&[0x38, 0x01]), "the attribute's unknown field is kept");
    let decoded = ExportTraceServiceRequest::decode(out).unwrap();
    assert_eq!(decoded.resource_spans[0].scope_spans[0].spans[0].name, "/r");
}

#[test]
fn untouched_spans_are_copied_byte_for_byte_and_only_changed_ones_rewritten() {
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(V::StringValue(v.into())) }),
        ..Default::default()
    };
    let spans = vec![
        Span { name: "a".into(), attributes: vec![kv("team", "x")], ..Default::default() },
        Span { name: "b".into(), ..Default::default() },
    ];
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: spans.clone(), ..Default::default() }],
            ..Default::default()
        }],
    };
    let body = Bytes::from(req.encode_to_vec());
    let edit = insert("team", "y");
    let out = only_chunk(&apply(&encoded(body), &Edit { items: Some(&edit), ..Edit::default() }).unwrap());
    let first = spans[0].encode_to_vec();
    assert!(out.windows(first.len()).any(|w| w == first), "span a already had the key: copied as is");
    let decoded = ExportTraceServiceRequest::decode(out).unwrap();
    let got = &decoded.resource_spans[0].scope_spans[0].spans;
    assert_eq!(got[0], spans[0]);
    assert_eq!(got[1].attributes, [kv("team", "y")]);
}

#[test]
fn a_resource_sent_twice_is_left_to_the_decoded_path() {
    let mut group = Vec::new();
    put(&mut group, RESOURCE, &[]);
    put(&mut group, RESOURCE, &[]);
    let mut req = Vec::new();
    put(&mut req, RESOURCE_GROUPS, &group);
    let edit = insert("k", "v");
    assert!(apply(&encoded(req.into()), &Edit { resource: Some(&edit), ..Edit::default() }).is_none());
}

#[test]
fn item_edits_of_metrics_and_renames_of_logs_have_no_encoded_form() {
    let logs = Encoded::new(Signal::Logs, Bytes::new()).unwrap().unwrap();
    let rename = Rename { keys: vec!["k".into()], separator: String::new() };
    assert!(apply(&logs, &Edit { rename: Some(&rename), ..Edit::default() }).is_none());
    let edit = insert("k", "v");
    assert!(apply(&logs, &Edit { items: Some(&edit), ..Edit::default() }).is_some());
    let metrics = Encoded::new(Signal::Metrics, Bytes::new()).unwrap().unwrap();
    assert!(apply(&metrics, &Edit { items: Some(&edit), ..Edit::default() }).is_none());
    assert!(apply(&metrics, &Edit { resource: Some(&edit), ..Edit::default() }).is_some());
}
