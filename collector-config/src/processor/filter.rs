//! include/exclude matching, shared by the `attributes` and `span` processors: which items a
//! processor acts on. The collector's `processor::filter` compiles and applies it.

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};

/// include/exclude matching for `attributes` and `span` processors.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchProperties {
    /// How the names and values below are compared (required).
    pub match_type: Option<MatchType>,
    /// Match on `service.name`.
    pub services: Vec<String>,
    /// Match on span name.
    pub span_names: Vec<String>,
    /// Match on span kind (`SPAN_KIND_SERVER`, ...).
    pub span_kinds: Vec<String>,
    /// Match on log body.
    pub log_bodies: Vec<String>,
    /// Match on log severity text.
    pub log_severity_texts: Vec<String>,
    /// Match on metric names.
    pub metric_names: Vec<String>,
    /// Attributes that must all match.
    pub attributes: Vec<MatchAttribute>,
    /// Resource attributes that must all match.
    pub resources: Vec<MatchAttribute>,
    /// Instrumentation scopes (`name`, `version`).
    pub libraries: Vec<Value>,
    /// Regexp cache options (accepted for compatibility).
    pub regexp: Option<Value>,
    /// Log severity number filter (accepted for compatibility).
    pub log_severity_number: Option<Value>,
}

/// One attribute condition in include/exclude.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchAttribute {
    /// Attribute key.
    pub key: String,
    /// Expected value; when absent only presence is checked.
    pub value: Option<Value>,
}

/// `include.match_type` / `exclude.match_type`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    /// Equal strings.
    Strict,
    /// Regular expressions (unanchored, as Go's).
    Regexp,
}

impl Validate for MatchProperties {
    /// `path` is the block (`processors.span.include`).
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        match self.match_type {
            None => check.error(format!("{p}.match_type: required (strict or regexp)")),
            Some(MatchType::Strict) => {}
            Some(MatchType::Regexp) => {
                let patterns =
                    self.services.iter().chain(&self.span_names).chain(&self.metric_names).chain(&self.log_bodies);
                for (i, s) in patterns.enumerate() {
                    if let Err(e) = regex::Regex::new(s) {
                        check.error(format!("{p}[{i}]: invalid regex: {e}"));
                    }
                }
            }
        }
    }
}
