//! The `metricstransform` processor's common case on encoded metrics: `action: update` transforms
//! selected by metric name (strict or regexp), with an optional new name and the label
//! operations `add_label` and `update_label`. A metric no transform selects is copied as bytes;
//! a selected one gets one new name field and, per data point, its attribute list rewritten by
//! [`AttrList`](super::attrs::AttrList). Scopes without metrics and resources without scopes are
//! dropped, as the decoded path drops them.
//!
//! Why: this is what users run (and what the benchmark's metrics pipeline runs), and decoding
//! every data point to rename a metric or add one label was most of the pipeline's CPU.
//!
//! Name matching and `new_name` expansion are [`NamePattern`], shared with the decoded path
//! (`processor::metricstransform`) so the two cannot drift apart. Everything else the processor
//! does (`insert`, label matching, point deletion, value changes) has no encoded form: the
//! processor then has no [`MetricsEdit`] and decodes.

use regex::Regex;

use super::attrs::AttrEdit;

/// A metric name (or label value) matcher; regexes are unanchored, as Go's `MatchString` is.
#[derive(Debug, Clone)]
pub enum NamePattern {
    /// Equal to this string.
    Strict(String),
    /// The regex matches somewhere in the name.
    Regexp(Regex),
}

impl NamePattern {
    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            NamePattern::Strict(p) => p == s,
            NamePattern::Regexp(re) => re.is_match(s),
        }
    }

    /// The new name: for `regexp`, `template` with `$1`/`${name}` expanded from the first match
    /// in `name` (Go's `Regexp.Expand` and regex's `Captures::expand` share this syntax); upstream
    /// falls back to the template itself when the expansion is empty.
    pub fn expand(&self, template: &str, name: &str) -> String {
        if let NamePattern::Regexp(re) = self
            && let Some(caps) = re.captures(name)
        {
            let mut out = String::new();
            caps.expand(template, &mut out);
            if !out.is_empty() {
                return out;
            }
        }
        template.to_owned()
    }
}

/// One `action: update` transform without label matching.
#[derive(Debug, Clone)]
pub struct MetricRule {
    /// Which metrics it selects, by their name at the time it runs.
    pub include: NamePattern,
    /// The new name template; empty keeps the name.
    pub new_name: String,
    /// The label operations on every data point's attributes, in order (`add_label` is an
    /// insert of a string literal, `update_label` a [`OpKind::RenameLabel`](super::OpKind)).
    pub labels: AttrEdit,
}

/// A `metricstransform` processor's transforms, when all of them have an encoded form.
#[derive(Debug, Clone, Default)]
pub struct MetricsEdit {
    /// The transforms, in order.
    pub rules: Vec<MetricRule>,
}

/// `Metric.name`.
pub(super) const METRIC_NAME: u32 = 1;

/// The attributes field of the data points of the metric data field `tag` (gauge 5 and sum 7:
/// `NumberDataPoint`; histogram 9; exponential histogram 10; summary 11); `None` for other
/// fields.
pub(super) fn point_attributes(tag: u32) -> Option<u32> {
    match tag {
        5 | 7 => Some(7),
        9 => Some(9),
        10 => Some(1),
        11 => Some(7),
        _ => None,
    }
}

/// `{Gauge,Sum,Histogram,ExponentialHistogram,Summary}.data_points`.
pub(super) const DATA_POINTS: u32 = 1;

impl MetricsEdit {
    /// The rules that select a metric named `name`, in order, pushed onto `selected`, and the
    /// metric's final name (each rule sees the name the ones before it gave).
    pub(super) fn select<'e>(&'e self, name: &str, selected: &mut Vec<&'e MetricRule>) -> Option<String> {
        let mut renamed: Option<String> = None;
        for rule in &self.rules {
            let current = renamed.as_deref().unwrap_or(name);
            if !rule.include.matches(current) {
                continue;
            }
            selected.push(rule);
            if !rule.new_name.is_empty() {
                renamed = Some(rule.include.expand(&rule.new_name, current));
            }
        }
        renamed
    }
}
