//! The `attributes` processor's config: attribute actions applied to spans, data points and log
//! records, optionally only to those an include/exclude block selects.

use serde::Deserialize;

use super::actions::{self, AttributeAction};
use super::filter::MatchProperties;
use crate::check::{Check, Validate};

/// `attributes` processor.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributesProcessorConfig {
    /// Actions applied in order.
    pub actions: Vec<AttributeAction>,
    /// Only process items matching this.
    pub include: Option<MatchProperties>,
    /// Skip items matching this.
    pub exclude: Option<MatchProperties>,
}

impl Validate for AttributesProcessorConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        actions::validate_all(&format!("{p}.actions"), &self.actions, check);
        if self.actions.is_empty() {
            check.error(format!("{p}.actions: missing required field"));
        }
        for (which, m) in [("include", &self.include), ("exclude", &self.exclude)] {
            if let Some(m) = m {
                m.validate(&format!("{p}.{which}"), check);
            }
        }
    }
}
