//! Runs of consecutive processors whose changes all have an encoded form (`resource`,
//! `attributes`, `span` rename, `metricstransform`; see `pdata::edit`), merged at build time into
//! one processor that makes a single pass over each encoded request instead of one per processor.
//!
//! Merging keeps the order's meaning: resource actions never read items and item actions never
//! read resources, so they merge in any order; item actions and a rename merge only when the
//! rename comes last (a rename reads attributes, attribute actions never read the name). Metric
//! transforms read only metrics, so they merge with resource actions in any order (a resource
//! they drop for having no metrics is dropped either way); one `metricstransform` per pass.
//! Anything the merged pass cannot do (decoded data, a shape protobuf merges on decode) goes
//! through the original processors one by one.

use std::sync::Arc;

use crate::pdata::Data;
use crate::pdata::edit::{self, AttrEdit, Edit, MetricsEdit, Rename};
use crate::pipeline::{ConsumeError, Processor};

/// Several processors as one encoded pass.
#[derive(Debug)]
pub struct Fused {
    parts: Vec<Arc<dyn Processor>>,
    resource: Option<AttrEdit>,
    items: Option<AttrEdit>,
    rename: Option<Rename>,
    metrics: Option<MetricsEdit>,
}

impl Fused {
    fn start(first: &Arc<dyn Processor>) -> Option<Self> {
        let mut fused = Fused { parts: Vec::new(), resource: None, items: None, rename: None, metrics: None };
        fused.absorb(first).then_some(fused)
    }

    /// Takes `p` into the pass if its change can follow the ones already merged.
    fn absorb(&mut self, p: &Arc<dyn Processor>) -> bool {
        let Some(e) = p.wire_edit() else { return false };
        if (e.items.is_some() || e.rename.is_some()) && self.rename.is_some() {
            return false;
        }
        if e.metrics.is_some() && self.metrics.is_some() {
            return false;
        }
        let concat = |into: &mut Option<AttrEdit>, more: Option<&AttrEdit>| {
            if let Some(more) = more {
                into.get_or_insert_with(AttrEdit::default).ops.extend(more.ops.iter().cloned());
            }
        };
        concat(&mut self.resource, e.resource);
        concat(&mut self.items, e.items);
        self.rename = e.rename.cloned().or(self.rename.take());
        self.metrics = e.metrics.cloned().or(self.metrics.take());
        self.parts.push(p.clone());
        true
    }

    fn edit(&self) -> Edit<'_> {
        Edit {
            resource: self.resource.as_ref(),
            items: self.items.as_ref(),
            rename: self.rename.as_ref(),
            metrics: self.metrics.as_ref(),
        }
    }
}

impl Processor for Fused {
    fn process(&self, data: Data) -> Result<Data, ConsumeError> {
        if let Data::Encoded(encoded) = &data
            && let Some(done) = edit::apply(encoded, &self.edit())
        {
            return Ok(done.into());
        }
        self.parts.iter().try_fold(data, |data, p| p.process(data))
    }

    fn wire_edit(&self) -> Option<Edit<'_>> {
        Some(self.edit())
    }
}

/// Merges every run of two or more mergeable processors in a chain.
pub fn fuse(chain: Vec<Arc<dyn Processor>>) -> Vec<Arc<dyn Processor>> {
    let mut out: Vec<Arc<dyn Processor>> = Vec::with_capacity(chain.len());
    let mut run: Option<Fused> = None;
    let flush = |run: Option<Fused>, out: &mut Vec<Arc<dyn Processor>>| match run {
        Some(mut f) if f.parts.len() == 1 => out.push(f.parts.remove(0)),
        Some(f) => out.push(Arc::new(f)),
        None => {}
    };
    for p in chain {
        if let Some(f) = run.as_mut()
            && f.absorb(&p)
        {
            continue;
        }
        flush(run.take(), &mut out);
        run = Fused::start(&p);
        if run.is_none() {
            out.push(p);
        }
    }
    flush(run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::{attributes::AttributesProcessor, resource::ResourceProcessor, span::SpanProcessor};

    fn resource(yaml: &str) -> Arc<dyn Processor> {
        Arc::new(ResourceProcessor::new(&serde_yaml::from_str(yaml).unwrap()).unwrap())
    }
    fn attributes(yaml: &str) -> Arc<dyn Processor> {
        Arc::new(AttributesProcessor::new(&serde_yaml::from_str(yaml).unwrap()).unwrap())
    }
    fn span(yaml: &str) -> Arc<dyn Processor> {
        Arc::new(SpanProcessor::new(&serde_yaml::from_str(yaml).unwrap()).unwrap())
    }

    #[test]
    fn merges_in_order_and_stops_where_meaning_would_change() {
        let r = resource("attributes: [{key: env, value: prod, action: upsert}]");
        let a = attributes("actions: [{key: team, value: t, action: insert}]");
        let s = span("name: {from_attributes: [team]}");
        let hash = attributes("actions: [{key: team, action: hash}]");
        assert_eq!(fuse(vec![r.clone(), a.clone(), s.clone()]).len(), 1);
        // After a rename, attribute actions start a new pass; a hash has no encoded form.
        assert_eq!(fuse(vec![s.clone(), a.clone(), r.clone()]).len(), 2);
        assert_eq!(fuse(vec![r.clone(), hash.clone(), a.clone(), s.clone()]).len(), 3);
        assert_eq!(fuse(vec![a.clone()]).len(), 1);
    }

    #[test]
    fn a_merged_pass_equals_the_processors_one_by_one() {
        use crate::config::id::Signal;
        use crate::pdata::Payload;
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        use prost::Message as _;

        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(V::StringValue(v.into())) }),
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        name: "old".into(),
                        attributes: vec![kv("http.request.method", "GET"), kv("http.route", "/r")],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let chain = vec![
            resource(
                "attributes: [{key: deployment.environment, value: prod, action: upsert}, {key: collector.version, value: '1', action: insert}]",
            ),
            attributes("actions: [{key: team, value: reviews, action: insert}]"),
            span("name: {from_attributes: [http.request.method, http.route, team], separator: ' '}"),
        ];
        let body = bytes::Bytes::from(req.encode_to_vec());
        let fused = fuse(chain.clone());
        let one_pass = fused[0].process(Data::from_protobuf(Signal::Traces, body.clone()).unwrap()).unwrap();
        assert!(matches!(one_pass, Data::Encoded(_)));
        let mut step_by_step = Data::Decoded(Payload::decode_protobuf(Signal::Traces, &body).unwrap());
        for p in &chain {
            step_by_step = p.process(step_by_step).unwrap();
        }
        let (a, b) = (one_pass.decode().unwrap(), step_by_step.decode().unwrap());
        assert_eq!(a, b);
        assert_eq!(crate::pdata::tests::names(&a), ["GET /r reviews"]);
    }
}
