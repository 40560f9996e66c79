//! include/exclude matching (`match_type: strict|regexp`) used by the `attributes` and `span` processors.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use regex::Regex;

use super::actions::{any_to_string, get, yaml_to_any};
use collector_config::processor::filter::MatchProperties;
use collector_config::processor::filter::MatchType;

#[derive(Debug, Clone)]
enum Pattern {
    Strict(String),
    Regexp(Regex),
}

impl Pattern {
    fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Strict(p) => p == s,
            Pattern::Regexp(r) => r.is_match(s),
        }
    }
}

/// A compiled include or exclude block.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    services: Vec<Pattern>,
    span_names: Vec<Pattern>,
    span_kinds: Vec<String>,
    log_bodies: Vec<Pattern>,
    log_severity_texts: Vec<Pattern>,
    metric_names: Vec<Pattern>,
    attributes: Vec<(String, Option<Pattern>)>,
    resources: Vec<(String, Option<Pattern>)>,
}

/// What is being matched; fields irrelevant to a signal are `None`.
#[derive(Debug, Default)]
pub struct Item<'a> {
    /// Resource attributes.
    pub resource: &'a [KeyValue],
    /// Item attributes.
    pub attributes: &'a [KeyValue],
    /// Span name.
    pub span_name: Option<&'a str>,
    /// Span kind as `SPAN_KIND_*`.
    pub span_kind: Option<&'a str>,
    /// Log body as string.
    pub log_body: Option<String>,
    /// Log severity text.
    pub severity_text: Option<&'a str>,
    /// Metric name.
    pub metric_name: Option<&'a str>,
}

impl<'a> Item<'a> {
    /// The matchable view of one span: what the `attributes` and `span` processors filter on.
    pub fn span(resource: &'a [KeyValue], span: &'a Span) -> Self {
        Item {
            resource,
            attributes: &span.attributes,
            span_name: Some(&span.name),
            span_kind: SpanKind::try_from(span.kind).map(|k| k.as_str_name()).ok(),
            ..Default::default()
        }
    }
}

impl Matcher {
    /// Compiles a validated include/exclude block.
    pub fn compile(m: &MatchProperties) -> Result<Self, String> {
        let regexp = m.match_type == Some(MatchType::Regexp);
        let pat = |s: &String| -> Result<Pattern, String> {
            if regexp {
                Regex::new(s).map(Pattern::Regexp).map_err(|e| e.to_string())
            } else {
                Ok(Pattern::Strict(s.clone()))
            }
        };
        let pats = |v: &Vec<String>| v.iter().map(pat).collect::<Result<Vec<_>, _>>();
        let kvs = |v: &Vec<collector_config::processor::filter::MatchAttribute>| {
            v.iter()
                .map(|a| {
                    let p = a.value.as_ref().map(|v| pat(&any_to_string(&yaml_to_any(v)))).transpose()?;
                    Ok((a.key.clone(), p))
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(Self {
            services: pats(&m.services)?,
            span_names: pats(&m.span_names)?,
            span_kinds: m.span_kinds.clone(),
            log_bodies: pats(&m.log_bodies)?,
            log_severity_texts: pats(&m.log_severity_texts)?,
            metric_names: pats(&m.metric_names)?,
            attributes: kvs(&m.attributes)?,
            resources: kvs(&m.resources)?,
        })
    }

    /// True when every configured criterion matches (criteria lists are OR within, AND across).
    pub fn matches(&self, item: &Item<'_>) -> bool {
        let any = |pats: &[Pattern], value: Option<&str>| {
            pats.is_empty() || value.is_some_and(|v| pats.iter().any(|p| p.matches(v)))
        };
        let service = get(item.resource, "service.name").map(any_to_string);
        let kvs_match = |conds: &[(String, Option<Pattern>)], attrs: &[KeyValue]| {
            conds.iter().all(|(k, p)| match (get(attrs, k), p) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(v), Some(p)) => p.matches(&any_to_string(v)),
            })
        };
        any(&self.services, service.as_deref())
            && any(&self.span_names, item.span_name)
            && (self.span_kinds.is_empty() || item.span_kind.is_some_and(|k| self.span_kinds.iter().any(|x| x == k)))
            && any(&self.log_bodies, item.log_body.as_deref())
            && any(&self.log_severity_texts, item.severity_text)
            && any(&self.metric_names, item.metric_name)
            && kvs_match(&self.attributes, item.attributes)
            && kvs_match(&self.resources, item.resource)
    }
}

/// include + exclude together.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<Matcher>,
    exclude: Option<Matcher>,
}

impl Filter {
    /// Compiles both blocks.
    pub fn compile(include: Option<&MatchProperties>, exclude: Option<&MatchProperties>) -> Result<Self, String> {
        Ok(Self {
            include: include.map(Matcher::compile).transpose()?,
            exclude: exclude.map(Matcher::compile).transpose()?,
        })
    }

    /// Whether the processor should act on this item.
    pub fn selects(&self, item: &Item<'_>) -> bool {
        self.include.as_ref().is_none_or(|m| m.matches(item)) && !self.exclude.as_ref().is_some_and(|m| m.matches(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as V};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(V::StringValue(v.into())) }),
            ..Default::default()
        }
    }

    #[test]
    fn include_exclude() {
        let inc: MatchProperties =
            serde_yaml::from_str("{match_type: regexp, services: ['^rev'], span_names: ['GET .*']}").unwrap();
        let exc: MatchProperties =
            serde_yaml::from_str("{match_type: strict, attributes: [{key: health, value: 'true'}]}").unwrap();
        let f = Filter::compile(Some(&inc), Some(&exc)).unwrap();
        let res = [kv("service.name", "reviews")];
        let normal = [kv("http.route", "/")];
        let health = [kv("health", "true")];
        assert!(f.selects(&Item {
            resource: &res,
            attributes: &normal,
            span_name: Some("GET /r"),
            ..Default::default()
        }));
        assert!(!f.selects(&Item {
            resource: &res,
            attributes: &health,
            span_name: Some("GET /r"),
            ..Default::default()
        }));
        assert!(!f.selects(&Item {
            resource: &res,
            attributes: &normal,
            span_name: Some("POST /r"),
            ..Default::default()
        }));
        let other = [kv("service.name", "cart")];
        assert!(!f.selects(&Item {
            resource: &other,
            attributes: &normal,
            span_name: Some("GET /r"),
            ..Default::default()
        }));
    }
}
