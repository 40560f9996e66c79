//! What a component's `validate` sees and where it reports: the [`Validate`] trait every
//! component config implements (upstream's `Config.Validate()`), and [`Check`], which carries the
//! little a component may know about the rest of the config (which extensions exist, of what type,
//! and which are enabled) plus the errors and warnings found so far.
//!
//! A leaf module: the component modules depend on it, it depends on none of them.

use std::collections::BTreeMap;

/// The field-level checks of one component type that serde's types cannot express: required
/// fields, ranges, regexes, references to extensions, and refusals of what is not implemented.
pub trait Validate {
    /// Checks `self`, found at config path `path` (`receivers.otlp/2`), reporting into `check`.
    /// Every message starts with the path of the offending field.
    fn validate(&self, path: &str, check: &mut Check<'_>);
}

/// The validation context of one config load and its findings.
#[derive(Debug)]
pub struct Check<'a> {
    /// Every configured extension id, with its canonical type name (`file_storage`, `basicauth`).
    extensions: &'a BTreeMap<String, &'static str>,
    /// Extensions enabled in `service.extensions`.
    enabled_extensions: &'a [String],
    /// Problems that make the config unusable.
    pub errors: Vec<String>,
    /// Non-fatal findings (accepted-but-unimplemented features, fields without effect).
    pub warnings: Vec<String>,
}

impl<'a> Check<'a> {
    /// A check against a config whose extensions are `extensions` (id → type name), of which
    /// `enabled_extensions` are enabled.
    pub fn new(extensions: &'a BTreeMap<String, &'static str>, enabled_extensions: &'a [String]) -> Self {
        Self { extensions, enabled_extensions, errors: Vec::new(), warnings: Vec::new() }
    }

    /// Records an error; `message` starts with the config path.
    pub fn error(&mut self, message: String) {
        self.errors.push(message);
    }

    /// Records a warning; `message` starts with the config path.
    pub fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// The canonical type name of the extension with id `id`, if one is configured (and parsed).
    pub fn extension_type(&self, id: &str) -> Option<&'static str> {
        self.extensions.get(id).copied()
    }

    /// Whether `id` is listed in `service.extensions`.
    pub fn extension_enabled(&self, id: &str) -> bool {
        self.enabled_extensions.iter().any(|e| e == id)
    }
}
