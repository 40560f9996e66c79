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

// --- metricstransform -------------------------------------------------------------------------

mod metrics {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric::Data as D,
        number_data_point,
    };

    use super::*;
    use crate::processor::fused::fuse;
    use crate::processor::metricstransform::MetricsTransform;
    use std::sync::Arc;

    fn transform(transforms: &str) -> MetricsTransform {
        MetricsTransform::new(&serde_yaml::from_str(&format!("transforms:\n{transforms}")).unwrap()).unwrap()
    }

    /// Runs `req` through the encoded and the decoded path of `transforms`; asserts they agree and
    /// that the encoded one stayed encoded. Returns the result.
    fn metric_paths(transforms: &str, req: &ExportMetricsServiceRequest) -> ExportMetricsServiceRequest {
        let body: Bytes = req.encode_to_vec().into();
        let p = transform(transforms);
        assert!(p.wire_edit().is_some(), "{transforms} has an encoded form");
        let via_wire = p.process(Data::from_protobuf(Signal::Metrics, body.clone()).unwrap()).unwrap();
        assert!(matches!(via_wire, Data::Encoded(_)), "the encoded path was taken");
        let via_structs = p.process(Data::Decoded(Payload::decode_protobuf(Signal::Metrics, &body).unwrap())).unwrap();
        let (a, b) = (via_wire.decode().unwrap(), via_structs.decode().unwrap());
        assert_eq!(a, b, "encoded and decoded paths disagree for {transforms}");
        match a {
            Payload::Metrics(m) => m,
            other => panic!("{other:?}"),
        }
    }

    /// Appends a length-delimited field (keys and lengths below 128 here).
    fn put(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
        assert!(tag < 16 && contents.len() < 128);
        out.extend([(tag << 3) | 2, contents.len() as u8]);
        out.extend_from_slice(contents);
    }

    fn labels(pairs: &[(&str, V)]) -> Vec<KeyValue> {
        pairs.iter().map(|(k, v)| kv(k, v.clone())).collect()
    }

    fn number(attrs: Vec<KeyValue>) -> NumberDataPoint {
        NumberDataPoint { attributes: attrs, value: Some(number_data_point::Value::AsInt(1)), ..Default::default() }
    }

    /// One metric of every type named `prefix.<type>`, each point with `attrs`.
    fn every_type(prefix: &str, attrs: &[KeyValue]) -> Vec<Metric> {
        let a = attrs.to_vec();
        let metric = |t: &str, data| Metric {
            name: format!("{prefix}{t}"),
            unit: "1".into(),
            data: Some(data),
            ..Default::default()
        };
        vec![
            metric("gauge", D::Gauge(Gauge { data_points: vec![number(a.clone()), number(vec![])] })),
            metric(
                "sum",
                D::Sum(Sum { data_points: vec![number(a.clone())], aggregation_temporality: 2, is_monotonic: true }),
            ),
            metric(
                "histogram",
                D::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        attributes: a.clone(),
                        count: 2,
                        bucket_counts: vec![1, 1],
                        explicit_bounds: vec![1.0],
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                }),
            ),
            metric(
                "exp",
                D::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        attributes: a.clone(),
                        count: 1,
                        ..Default::default()
                    }],
                    aggregation_temporality: 1,
                }),
            ),
            metric(
                "summary",
                D::Summary(Summary {
                    data_points: vec![SummaryDataPoint { attributes: a.clone(), count: 1, ..Default::default() }],
                }),
            ),
            Metric { name: format!("{prefix}nodata"), ..Default::default() },
        ]
    }

    fn request(resource: Vec<KeyValue>, scopes: Vec<Vec<Metric>>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource { attributes: resource, ..Default::default() }),
                scope_metrics: scopes
                    .into_iter()
                    .map(|metrics| ScopeMetrics { metrics, ..Default::default() })
                    .collect(),
                ..Default::default()
            }],
        }
    }

    fn all_metrics(r: &ExportMetricsServiceRequest) -> Vec<&Metric> {
        r.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics).flat_map(|sm| &sm.metrics).collect()
    }

    fn point_attrs(m: &Metric) -> Vec<&[KeyValue]> {
        match m.data.as_ref() {
            Some(D::Gauge(d)) => d.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
            Some(D::Sum(d)) => d.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
            Some(D::Histogram(d)) => d.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
            Some(D::ExponentialHistogram(d)) => d.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
            Some(D::Summary(d)) => d.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
            None => vec![],
        }
    }

    /// The benchmark's transform, on every metric type, with the labels already present, absent,
    /// and with non-string values.
    #[test]
    fn rename_add_label_and_update_label_on_every_type() {
        let t = "- include: '.*'\n  match_type: regexp\n  action: update\n  new_name: 'renamed.${0}'\n  operations:\n\
                 \x20   - {action: add_label, new_label: region, new_value: eu}\n\
                 \x20   - action: update_label\n      label: state\n      new_label: cpu_state\n\
                 \x20     value_actions: [{value: idle, new_value: IDLE}, {value: '', new_value: empty}]";
        let attr_sets = [
            labels(&[("state", s("idle")), ("cpu", s("0"))]),
            labels(&[("cpu_state", s("old")), ("state", s("user")), ("region", s("us"))]),
            labels(&[("state", V::IntValue(3)), ("state", s("second"))]),
            labels(&[("region", V::BoolValue(true))]),
            vec![KeyValue { key: "state".into(), value: None, ..Default::default() }],
            vec![],
        ];
        for attrs in &attr_sets {
            let req = request(labels(&[("service.name", s("svc"))]), vec![every_type("m.", attrs)]);
            let out = metric_paths(t, &req);
            let names: Vec<&str> = all_metrics(&out).iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names[0], "renamed.m.gauge");
            assert_eq!(names.len(), 6);
            for m in all_metrics(&out) {
                for a in point_attrs(m) {
                    assert!(a.iter().any(|kv| kv.key == "region"), "{}: {a:?}", m.name);
                }
            }
        }
    }

    #[test]
    fn strict_names_chained_transforms_and_empty_names() {
        let t = "- {include: a, action: update, new_name: b}\n\
                 - {include: b, action: update, operations: [{action: add_label, new_label: seen, new_value: 'yes'}]}\n\
                 - {include: '', action: update, new_name: unnamed}\n\
                 - {include: c, action: update, operations: [{action: update_label, label: k}]}\n\
                 - {include: d, action: update, operations: [{action: update_label, label: k, new_label: k}]}\n\
                 - {include: e, action: update, operations: [{action: add_label, new_label: '', new_value: ''}]}";
        let point = || D::Gauge(Gauge { data_points: vec![number(labels(&[("k", s("v"))]))] });
        let metric = |name: &str| Metric { name: name.into(), data: Some(point()), ..Default::default() };
        let req =
            request(vec![], vec![vec![metric("a"), metric(""), metric("c"), metric("d"), metric("e"), metric("z")]]);
        let out = metric_paths(t, &req);
        let names: Vec<&str> = all_metrics(&out).iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["b", "unnamed", "c", "d", "e", "z"]);
        assert_eq!(point_attrs(all_metrics(&out)[0])[0].len(), 2, "the second transform sees the new name");
    }

    #[test]
    fn no_match_passes_the_bytes_on() {
        let req = request(vec![], vec![every_type("m.", &labels(&[("k", s("v"))]))]);
        let body: Bytes = req.encode_to_vec().into();
        let p = transform(
            "- {include: other, action: update, new_name: x, operations: [{action: add_label, new_label: a, new_value: b}]}",
        );
        let out = p.process(Data::from_protobuf(Signal::Metrics, body.clone()).unwrap()).unwrap();
        let Data::Encoded(e) = &out else { panic!("decoded") };
        assert_eq!(e.chunks().next().unwrap().as_ptr(), body.as_ptr(), "unchanged data is passed on, not copied");
        // A rename to the same name and a label already present change nothing either.
        let p = transform(
            "- {include: m.sum, action: update, new_name: m.sum, operations: [{action: add_label, new_label: k, new_value: b}]}",
        );
        let out = p.process(Data::from_protobuf(Signal::Metrics, body.clone()).unwrap()).unwrap();
        let Data::Encoded(e) = &out else { panic!("decoded") };
        assert_eq!(e.chunks().next().unwrap().as_ptr(), body.as_ptr());
    }

    #[test]
    fn unknown_fields_of_changed_metrics_points_and_labels_are_kept() {
        // Field 99 (varint 42) in the metric, the data point and the KeyValue.
        let unknown = [0x98, 0x06, 0x2a];
        let kv = [&kv("state", s("idle")).encode_to_vec()[..], &unknown].concat();
        let mut point = Vec::new();
        put(&mut point, 7, &kv);
        point.extend(unknown);
        let mut gauge = Vec::new();
        put(&mut gauge, 1, &point);
        let mut metric = Vec::new();
        put(&mut metric, 1, b"m");
        put(&mut metric, 5, &gauge);
        metric.extend(unknown);
        let mut scope = Vec::new();
        put(&mut scope, 2, &metric);
        let mut rm = Vec::new();
        put(&mut rm, 2, &scope);
        let mut body = Vec::new();
        put(&mut body, 1, &rm);
        let p = transform(
            "- {include: m, action: update, new_name: n, operations: [{action: update_label, label: state, new_label: s}]}",
        );
        let out = p.process(Data::from_protobuf(Signal::Metrics, body.clone().into()).unwrap()).unwrap();
        let Data::Encoded(e) = &out else { panic!("decoded") };
        let bytes = e.chunks().next().unwrap().clone();
        assert_eq!(bytes.windows(3).filter(|w| *w == unknown).count(), 3, "every unknown field is kept");
        let direct = p.process(Data::Decoded(Payload::decode_protobuf(Signal::Metrics, &body).unwrap())).unwrap();
        assert_eq!(out.decode().unwrap(), direct.decode().unwrap());
    }

    #[test]
    fn empty_scopes_and_resources_are_dropped_like_the_decoded_path() {
        let t = "- {include: a, action: update, new_name: b}";
        let mut req = request(vec![], vec![vec![], every_type("", &[]), vec![]]);
        req.resource_metrics.push(ResourceMetrics::default());
        req.resource_metrics
            .push(ResourceMetrics { scope_metrics: vec![ScopeMetrics::default()], ..Default::default() });
        let out = metric_paths(t, &req);
        assert_eq!(out.resource_metrics.len(), 1);
        assert_eq!(out.resource_metrics[0].scope_metrics.len(), 1);
        // Nothing but empty groups: all dropped, still encoded.
        let out = metric_paths(t, &request(vec![], vec![vec![]]));
        assert!(out.resource_metrics.is_empty());
    }

    #[test]
    fn what_has_no_encoded_form_is_decoded_with_the_same_result() {
        let req = request(vec![], vec![every_type("m.", &labels(&[("state", s("idle"))]))]);
        let body: Bytes = req.encode_to_vec().into();
        for t in [
            "- {include: m.gauge, action: insert, new_name: copy}",
            "- {include: m.gauge, action: update, new_name: x, experimental_match_labels: {state: idle}}",
            "- {include: m.sum, action: update, operations: [{action: delete_label_value, label: state, label_value: idle}]}",
            "- {include: m.sum, action: update, operations: [{action: toggle_scalar_data_type}]}",
            "- {include: m.sum, action: update, operations: [{action: experimental_scale_value, experimental_scale: 2}]}",
        ] {
            let p = transform(t);
            assert!(p.wire_edit().is_none(), "{t}");
            let out = p.process(Data::from_protobuf(Signal::Metrics, body.clone()).unwrap()).unwrap();
            assert!(matches!(out, Data::Decoded(_)), "{t}");
        }
        // A metric with two data fields (merged or replaced on decode) is left to the decoded path.
        let mut metric = every_type("m.", &[]).remove(0).encode_to_vec();
        metric.extend(Metric { data: every_type("", &[]).remove(1).data, ..Default::default() }.encode_to_vec());
        let scope = [&[0x12, metric.len() as u8][..], &metric].concat();
        let rm = [&[0x12, scope.len() as u8][..], &scope].concat();
        let body: Bytes = [&[0x0a, rm.len() as u8][..], &rm].concat().into();
        let p = transform(
            "- {include: m.gauge, action: update, operations: [{action: add_label, new_label: a, new_value: b}]}",
        );
        let out = p.process(Data::from_protobuf(Signal::Metrics, body.clone()).unwrap()).unwrap();
        assert!(matches!(out, Data::Decoded(_)));
        let direct = p.process(Data::Decoded(Payload::decode_protobuf(Signal::Metrics, &body).unwrap())).unwrap();
        assert_eq!(out.decode().unwrap(), direct.decode().unwrap());
    }

    /// Random requests over small sets of names, labels and values against random transforms (the
    /// `metrics_edit_equivalence` fuzz target does this on arbitrary bytes).
    #[test]
    fn random_requests_and_transforms_agree_with_the_decoded_path() {
        const NAMES: [&str; 4] = ["a", "b", "", "m.x"];
        const PATTERNS: [&str; 4] = ["^a", "(.*)", "m\\.(?P<t>\\w+)", "^$"];
        const NEW_NAMES: [&str; 4] = ["''", "b", "'${1}.x'", "'$t'"];
        const LABELS: [&str; 4] = ["k", "state", "", "cpu_state"];
        const VALUES: [&str; 3] = ["v", "idle", ""];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..400 {
            let mut transforms = String::new();
            for _ in 0..1 + next(2) {
                let regexp = next(2) == 1;
                let include = if regexp { PATTERNS[next(4)] } else { NAMES[next(4)] };
                let mut ops = Vec::new();
                for _ in 0..next(4) {
                    let (label, other, value) = (LABELS[next(4)], LABELS[next(4)], VALUES[next(3)]);
                    ops.push(if next(2) == 0 {
                        format!("{{action: add_label, new_label: '{label}', new_value: '{value}'}}")
                    } else {
                        format!(
                            "{{action: update_label, label: '{label}', new_label: '{other}', value_actions: [{{value: '{value}', new_value: '{}'}}]}}",
                            VALUES[next(3)]
                        )
                    });
                }
                transforms.push_str(&format!(
                    "- {{include: '{include}', match_type: {}, action: update, new_name: {}, operations: [{}]}}\n",
                    if regexp { "regexp" } else { "strict" },
                    NEW_NAMES[next(4)],
                    ops.join(", ")
                ));
            }
            let attrs = |next: &mut dyn FnMut(usize) -> usize| -> Vec<KeyValue> {
                (0..next(4))
                    .map(|_| {
                        let key = LABELS[next(4)];
                        match next(4) {
                            0 => kv(key, V::IntValue(7)),
                            1 => KeyValue { key: key.into(), value: None, ..Default::default() },
                            _ => kv(key, s(VALUES[next(3)])),
                        }
                    })
                    .collect()
            };
            let resources = (0..1 + next(2))
                .map(|_| {
                    let scopes = (0..next(3))
                        .map(|_| {
                            let metrics = (0..next(4))
                                .map(|_| {
                                    let a = attrs(&mut next);
                                    let mut m = every_type("", &a).remove(next(6));
                                    m.name = NAMES[next(4)].into();
                                    m
                                })
                                .collect();
                            ScopeMetrics { metrics, ..Default::default() }
                        })
                        .collect();
                    ResourceMetrics { scope_metrics: scopes, ..Default::default() }
                })
                .collect();
            let req = ExportMetricsServiceRequest { resource_metrics: resources };
            metric_paths(&transforms, &req);
        }
    }

    /// The benchmark's pipeline: resource actions and one transform, fused into one pass.
    #[test]
    fn resource_and_metricstransform_fuse_into_one_pass() {
        let resource: Arc<dyn Processor> = Arc::new(
            ResourceProcessor::new(
                &serde_yaml::from_str(
                    "attributes: [{key: deployment.environment, value: prod, action: upsert}, {key: collector.version, value: '1', action: insert}]",
                )
                .unwrap(),
            )
            .unwrap(),
        );
        let mt: Arc<dyn Processor> = Arc::new(transform(
            "- include: m.sum\n  action: update\n  new_name: m.total\n  operations:\n\
             \x20   - {action: add_label, new_label: region, new_value: eu}\n\
             \x20   - {action: update_label, label: state, value_actions: [{value: idle, new_value: IDLE}]}",
        ));
        let chain = vec![resource, mt];
        let fused = fuse(chain.clone());
        assert_eq!(fused.len(), 1);
        let mut req = request(
            labels(&[("service.name", s("svc"))]),
            vec![every_type("m.", &labels(&[("state", s("idle"))])), vec![]],
        );
        req.resource_metrics.push(ResourceMetrics::default());
        let body: Bytes = req.encode_to_vec().into();
        let one_pass = fused[0].process(Data::from_protobuf(Signal::Metrics, body.clone()).unwrap()).unwrap();
        assert!(matches!(one_pass, Data::Encoded(_)));
        let mut step_by_step = Data::Decoded(Payload::decode_protobuf(Signal::Metrics, &body).unwrap());
        for p in &chain {
            step_by_step = p.process(step_by_step).unwrap();
        }
        let (a, b) = (one_pass.decode().unwrap(), step_by_step.decode().unwrap());
        assert_eq!(a, b);
        let Payload::Metrics(m) = a else { panic!() };
        assert_eq!(all_metrics(&m)[1].name, "m.total");
    }
}
