//! The `span` processor's config: renaming spans from their attributes, extracting attributes
//! from their names, and setting their status.

use serde::Deserialize;

use super::filter::MatchProperties;
use crate::check::{Check, Validate};

/// `span` processor.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanProcessorConfig {
    /// Span renaming rules.
    pub name: SpanNameConfig,
    /// Sets the status of every selected span.
    pub status: Option<SpanStatus>,
    /// Only process spans matching this.
    pub include: Option<MatchProperties>,
    /// Skip spans matching this.
    pub exclude: Option<MatchProperties>,
}

/// `span.status`: the status given to every selected span.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanStatus {
    /// `Ok`, `Error` or `Unset`.
    pub code: SpanStatusCode,
    /// The status message; only with `code: Error` (for `Ok` and `Unset` the message is cleared).
    pub description: String,
}

/// A span status code, spelt as upstream's config spells it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum SpanStatusCode {
    /// `STATUS_CODE_UNSET`.
    #[default]
    Unset,
    /// `STATUS_CODE_OK`.
    Ok,
    /// `STATUS_CODE_ERROR`.
    Error,
}

/// `span.name` options.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanNameConfig {
    /// Build the name from these attribute values (all must exist).
    pub from_attributes: Vec<String>,
    /// Separator between the values (default empty).
    pub separator: String,
    /// Extract attributes from the span name.
    pub to_attributes: Option<ToAttributes>,
}

/// `span.name.to_attributes`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ToAttributes {
    /// Regexes with named groups; matched groups become attributes and `{name}` in the span name.
    pub rules: Vec<String>,
    /// Stop after the first matching rule.
    pub break_after_match: bool,
    /// Extract the attributes but leave the span name as it was (instead of replacing the matched
    /// parts with `{group}` placeholders).
    pub keep_original_name: bool,
}

impl Validate for SpanProcessorConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        if let Some(status) = &self.status
            && status.code != SpanStatusCode::Error
            && !status.description.is_empty()
        {
            check.error(format!("{p}.status.description: only allowed with code: Error"));
        }
        for (i, rule) in self.name.to_attributes.iter().flat_map(|t| t.rules.iter()).enumerate() {
            if let Err(e) = regex::Regex::new(rule) {
                check.error(format!("{p}.name.to_attributes.rules[{i}]: invalid regex: {e}"));
            }
        }
        for (which, m) in [("include", &self.include), ("exclude", &self.exclude)] {
            if let Some(m) = m {
                m.validate(&format!("{p}.{which}"), check);
            }
        }
    }
}
