//! The `resource` processor's config: attribute actions applied to resource attributes.

use serde::Deserialize;

use super::actions::{self, AttributeAction};
use crate::check::{Check, Validate};

/// `resource` processor.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceProcessorConfig {
    /// Actions applied to resource attributes.
    pub attributes: Vec<AttributeAction>,
}

impl Validate for ResourceProcessorConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        actions::validate_all(&format!("{p}.attributes"), &self.attributes, check);
    }
}
