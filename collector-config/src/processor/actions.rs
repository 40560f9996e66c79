//! Attribute actions, the list the `attributes` and `resource` processors share: what each action
//! does, typed, and the checks each action's fields need. The collector's `processor::actions`
//! compiles and applies them.

use serde::Deserialize;
use serde_yaml::Value;

use crate::check::{Check, Validate};

/// One attribute action of the `attributes` / `resource` processors.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeAction {
    /// Attribute key the action applies to (required unless `pattern` selects keys).
    pub key: String,
    /// Literal value for insert/update/upsert.
    pub value: Option<Value>,
    /// Copy the value from another attribute.
    pub from_attribute: Option<String>,
    /// Copy from request context: refused (receivers do not pass request metadata on).
    pub from_context: Option<String>,
    /// For `extract`: regex with named groups applied to the value of `key`.
    /// For `delete`/`hash`: regex selecting the keys to act on.
    pub pattern: Option<String>,
    /// What to do (required).
    pub action: Option<ActionKind>,
    /// Target type for `convert` (required with it).
    pub converted_type: Option<ConvertedType>,
}

/// `actions[].action`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Set `key` when it is absent.
    Insert,
    /// Set `key` when it is present.
    Update,
    /// Set `key` either way.
    Upsert,
    /// Remove `key` (or every key matching `pattern`).
    Delete,
    /// Replace the value of `key` (or of every key matching `pattern`) by its SHA-256 hex digest.
    Hash,
    /// Add the named groups of `pattern`, matched against the value of `key`, as attributes.
    Extract,
    /// Change the type of the value of `key` to `converted_type`.
    Convert,
}

impl ActionKind {
    /// The name as written in the config, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Upsert => "upsert",
            Self::Delete => "delete",
            Self::Hash => "hash",
            Self::Extract => "extract",
            Self::Convert => "convert",
        }
    }
}

/// `actions[].converted_type`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConvertedType {
    /// A 64-bit integer (a decimal string is truncated).
    Int,
    /// A 64-bit float.
    Double,
    /// The value's text.
    String,
}

/// Checks every action of a list at `path` (`processors.attributes.actions`).
pub fn validate_all(path: &str, actions: &[AttributeAction], check: &mut Check<'_>) {
    for (i, a) in actions.iter().enumerate() {
        a.validate(&format!("{path}[{i}]"), check);
    }
}

impl Validate for AttributeAction {
    fn validate(&self, ap: &str, check: &mut Check<'_>) {
        if self.from_context.is_some() {
            // Upstream reads it from client metadata the receivers attach to the request context;
            // our receivers attach none, so the action could never do anything.
            check.error(format!(
                "{ap}.from_context: not supported by this collector (receivers do not pass request metadata on)"
            ));
        }
        let Some(action) = self.action else {
            check.error(format!("{ap}.action: required"));
            return;
        };
        let name = action.as_str();
        match action {
            ActionKind::Insert | ActionKind::Update | ActionKind::Upsert => {
                if self.key.is_empty() {
                    check.error(format!("{ap}.key: required for {name}"));
                }
                let sources = [self.value.is_some(), self.from_attribute.is_some(), self.from_context.is_some()];
                if sources.iter().filter(|b| **b).count() != 1 {
                    check.error(format!(
                        "{ap}: exactly one of value, from_attribute, from_context is required for {name}"
                    ));
                }
            }
            ActionKind::Delete | ActionKind::Hash => {
                if self.key.is_empty() && self.pattern.is_none() {
                    check.error(format!("{ap}.key: key or pattern required for {name}"));
                }
                if let Some(re) = &self.pattern
                    && let Err(e) = regex::Regex::new(re)
                {
                    check.error(format!("{ap}.pattern: invalid regex: {e}"));
                }
            }
            ActionKind::Extract => match &self.pattern {
                None => check.error(format!("{ap}.pattern: required for extract")),
                Some(re) => match regex::Regex::new(re) {
                    Err(e) => check.error(format!("{ap}.pattern: invalid regex: {e}")),
                    Ok(r) if r.capture_names().flatten().next().is_none() => {
                        check.error(format!("{ap}.pattern: needs at least one named capture group"))
                    }
                    Ok(_) => {}
                },
            },
            ActionKind::Convert => {
                if self.converted_type.is_none() {
                    check.error(format!("{ap}.converted_type: must be one of int, double, string"));
                }
            }
        }
    }
}
