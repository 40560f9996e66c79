//! `span` processor: rename spans from attribute values, extract attributes from span names, and
//! set span status, in upstream's order (from attributes, to attributes, status) per span.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as V};
use regex::Regex;

use opentelemetry_proto::tonic::trace::v1::{Span, Status, status::StatusCode};

use crate::pdata::edit::{self, Edit, Rename};
use crate::pdata::{Data, Payload};
use crate::pipeline::{ConsumeError, Processor};
use collector_config::processor::span::{SpanProcessorConfig, SpanStatus, SpanStatusCode};

use super::actions::{any_to_string, get};
use super::filter::{Filter, Item};

/// Compiled span processor.
#[derive(Debug)]
pub struct SpanProcessor {
    from_attributes: Vec<String>,
    separator: String,
    rules: Vec<Regex>,
    break_after_match: bool,
    keep_original_name: bool,
    status: Option<SpanStatus>,
    filter: Filter,
    /// The rename on encoded spans, when it is all the processor does (no `to_attributes`, no
    /// include/exclude).
    wire: Option<Rename>,
}

impl SpanProcessor {
    /// Builds from config.
    pub fn new(cfg: &SpanProcessorConfig) -> Result<Self, String> {
        let (rules, break_after_match, keep_original_name) = match &cfg.name.to_attributes {
            Some(t) => (
                t.rules.iter().map(|r| Regex::new(r).map_err(|e| e.to_string())).collect::<Result<_, _>>()?,
                t.break_after_match,
                t.keep_original_name,
            ),
            None => (Vec::new(), false, false),
        };
        let wire = (rules.is_empty()
            && cfg.status.is_none()
            && cfg.include.is_none()
            && cfg.exclude.is_none()
            && !cfg.name.from_attributes.is_empty())
        .then(|| Rename { keys: cfg.name.from_attributes.clone(), separator: cfg.name.separator.clone() });
        Ok(Self {
            wire,
            from_attributes: cfg.name.from_attributes.clone(),
            separator: cfg.name.separator.clone(),
            rules,
            break_after_match,
            keep_original_name,
            status: cfg.status.clone(),
            filter: Filter::compile(cfg.include.as_ref(), cfg.exclude.as_ref())?,
        })
    }
}

/// Renames from attributes when all are present (upstream semantics).
pub fn rename_from_attributes(name: &mut String, attrs: &[KeyValue], keys: &[String], sep: &str) {
    if keys.is_empty() {
        return;
    }
    let values: Option<Vec<String>> = keys.iter().map(|k| get(attrs, k).map(any_to_string)).collect();
    if let Some(v) = values {
        *name = v.join(sep);
    }
}

/// Applies `to_attributes` rules: named groups become attributes and `{group}` placeholders in the
/// name (unless `keep_original_name`, which leaves the name as it was).
pub fn extract_from_name(
    name: &mut String,
    attrs: &mut Vec<KeyValue>,
    rules: &[Regex],
    break_after_match: bool,
    keep_original_name: bool,
) {
    for re in rules {
        let Some(caps) = re.captures(name) else { continue };
        let mut new_name = String::new();
        let mut last = 0;
        let mut new_attrs = Vec::new();
        for group in re.capture_names().flatten() {
            if let Some(m) = caps.name(group) {
                new_name.push_str(&name[last..m.start()]);
                new_name.push('{');
                new_name.push_str(group);
                new_name.push('}');
                last = m.end();
                new_attrs.push((group.to_owned(), m.as_str().to_owned()));
            }
        }
        new_name.push_str(&name[last..]);
        for (k, v) in new_attrs {
            let value = Some(AnyValue { value: Some(V::StringValue(v)) });
            match attrs.iter_mut().find(|kv| kv.key == k) {
                Some(kv) => kv.value = value,
                None => attrs.push(KeyValue { key: k, value, ..Default::default() }),
            }
        }
        if !keep_original_name {
            *name = new_name;
        }
        if break_after_match {
            break;
        }
    }
}

/// Sets a span's status as upstream does: the code, and the message only for `Error` (cleared
/// otherwise).
pub fn set_status(span: &mut Span, status: &SpanStatus) {
    let (code, message) = match status.code {
        SpanStatusCode::Unset => (StatusCode::Unset, String::new()),
        SpanStatusCode::Ok => (StatusCode::Ok, String::new()),
        SpanStatusCode::Error => (StatusCode::Error, status.description.clone()),
    };
    span.status = Some(Status { code: code as i32, message });
}

impl Processor for SpanProcessor {
    fn wire_edit(&self) -> Option<Edit<'_>> {
        Some(Edit { rename: Some(self.wire.as_ref()?), ..Edit::default() })
    }

    fn process(&self, data: Data) -> Result<Data, ConsumeError> {
        if let (Data::Encoded(encoded), Some(wire)) = (&data, self.wire_edit())
            && let Some(done) = edit::apply(encoded, &wire)
        {
            return Ok(done.into());
        }
        let mut data = data.decode()?;
        if let Payload::Traces(r) = &mut data {
            for rs in &mut r.resource_spans {
                let resource = rs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
                for ss in &mut rs.scope_spans {
                    for span in &mut ss.spans {
                        let item = Item::span(resource, span);
                        if !self.filter.selects(&item) {
                            continue;
                        }
                        rename_from_attributes(
                            &mut span.name,
                            &span.attributes,
                            &self.from_attributes,
                            &self.separator,
                        );
                        extract_from_name(
                            &mut span.name,
                            &mut span.attributes,
                            &self.rules,
                            self.break_after_match,
                            self.keep_original_name,
                        );
                        if let Some(status) = &self.status {
                            set_status(span, status);
                        }
                    }
                }
            }
        }
        Ok(data.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(V::StringValue(v.into())) }),
            ..Default::default()
        }
    }

    #[test]
    fn renames_with_separator_only_when_all_present() {
        let mut name = "old".to_owned();
        rename_from_attributes(&mut name, &[kv("m", "GET"), kv("r", "/x")], &["m".into(), "r".into()], " ");
        assert_eq!(name, "GET /x");
        let mut name = "old".to_owned();
        rename_from_attributes(&mut name, &[kv("m", "GET")], &["m".into(), "r".into()], " ");
        assert_eq!(name, "old");
    }

    #[test]
    fn extracts_attributes_from_name() {
        let mut name = "/api/v1/document/12345678/update".to_owned();
        let mut attrs = vec![];
        extract_from_name(
            &mut name,
            &mut attrs,
            &[Regex::new(r"^/api/v1/document/(?P<documentId>.*)/update$").unwrap()],
            false,
            false,
        );
        assert_eq!(name, "/api/v1/document/{documentId}/update");
        assert_eq!(any_to_string(get(&attrs, "documentId").unwrap()), "12345678");
    }

    #[test]
    fn keep_original_name_extracts_but_keeps_the_name() {
        let mut name = "/api/v1/document/42/update".to_owned();
        let mut attrs = vec![];
        let rules = [Regex::new(r"^/api/v1/document/(?P<documentId>.*)/update$").unwrap()];
        extract_from_name(&mut name, &mut attrs, &rules, false, true);
        assert_eq!(name, "/api/v1/document/42/update");
        assert_eq!(any_to_string(get(&attrs, "documentId").unwrap()), "42");
    }

    #[test]
    fn status_sets_the_code_and_a_message_only_for_errors() {
        let processor = |yaml: &str| SpanProcessor::new(&serde_yaml::from_str(yaml).unwrap()).unwrap();
        let mut span = Span {
            status: Some(Status { code: StatusCode::Error as i32, message: "old".into() }),
            ..Default::default()
        };
        let p = processor("status: {code: Ok}");
        assert!(p.wire_edit().is_none(), "a status change is made on decoded spans");
        set_status(&mut span, p.status.as_ref().unwrap());
        assert_eq!(span.status, Some(Status { code: StatusCode::Ok as i32, message: String::new() }));
        let p = processor("status: {code: Error, description: boom}");
        set_status(&mut span, p.status.as_ref().unwrap());
        assert_eq!(span.status, Some(Status { code: StatusCode::Error as i32, message: "boom".into() }));
    }
}
