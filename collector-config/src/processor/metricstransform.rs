//! The `metricstransform` processor's config (types, serde enums for every choice) and its
//! validation: upstream's required-field and regex checks
//! (its `validateConfiguration`), plus refusal, by path, of what this collector does not
//! implement (`combine`, `group`, `aggregate_labels`, `aggregate_label_values`). Fields upstream
//! ignores for the chosen action are accepted and reported as warnings, so a misplaced field is
//! visible without breaking configs upstream loads.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::check::{Check, Validate};
use crate::shared::{de_lenient_map, de_lenient_string};

/// `metricstransform` processor: renames metrics, copies them under a new name, and edits data
/// point labels and values, following upstream's `metricstransformprocessor`.
///
/// Transforms run in order over every scope's metrics; a later transform sees the result of the
/// earlier ones (including metrics they inserted). Scopes and resources left without metrics are
/// dropped, as upstream does. Refused at validation: `action: combine` and `action: group`, and
/// the `aggregate_labels` / `aggregate_label_values` operations.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTransformConfig {
    /// Transform rules, applied in order.
    pub transforms: Vec<MetricTransform>,
}

/// One metricstransform rule: which metrics to match, what to do with them, and the operations
/// applied to the result.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricTransform {
    /// Metric name (`match_type: strict`) or regular expression (`match_type: regexp`, unanchored
    /// like upstream's Go regexp) selecting the metrics to operate on. Required.
    #[serde(deserialize_with = "de_lenient_string")]
    pub include: String,
    /// How `include` and `experimental_match_labels` are matched (default `strict`).
    pub match_type: MetricMatchType,
    /// Only data points whose labels match: label name to value (`strict`: equal; `regexp`: the
    /// regex matches the value somewhere). A label that is absent, or not a string, counts as the
    /// empty string. With `action: update`, the metric is selected if any point matches;
    /// `update_label`, `toggle_scalar_data_type` and `experimental_scale_value` then change only
    /// the matching points, while `new_name`, `add_label` and `delete_label_value` apply only when
    /// every point matches. With `action: insert`, only the matching points are copied.
    #[serde(deserialize_with = "de_lenient_map")]
    pub experimental_match_labels: BTreeMap<String, String>,
    /// What to do with the matched metrics: `update` (in place) or `insert` (append a copy to the
    /// same scope, with `new_name` and the operations applied to the copy only). Required.
    /// `combine` and `group` are refused.
    pub action: Option<MetricTransformAction>,
    /// New metric name (required with `insert`). With `match_type: regexp`, `$1`, `${1}` and
    /// `$name` expand to the capture groups of `include` (write `$$` in the YAML for a literal `$`).
    #[serde(deserialize_with = "de_lenient_string")]
    pub new_name: String,
    /// Labels for the new resource of `action: group` (refused with it; ignored otherwise, as upstream does).
    pub group_resource_labels: Option<BTreeMap<String, String>>,
    /// Aggregation of `action: combine` (refused with it; ignored otherwise, as upstream does).
    pub aggregation_type: Option<AggregationType>,
    /// Case of label values made from regexp submatches by `action: combine` (refused with it;
    /// ignored otherwise, as upstream does).
    pub submatch_case: Option<SubmatchCase>,
    /// Operations applied, in order, to each resulting metric.
    pub operations: Vec<MetricOperation>,
}

/// `transforms[].match_type`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricMatchType {
    /// Exact name and label values (default; upstream treats an empty value as strict).
    #[default]
    #[serde(alias = "")]
    Strict,
    /// Regular expressions.
    Regexp,
}

/// `transforms[].action`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricTransformAction {
    /// Change the matched metrics in place.
    Update,
    /// Append a changed copy of each matched metric to its scope.
    Insert,
    /// Merge the matched metrics into one (refused: not implemented).
    Combine,
    /// Move the matched metrics into a new resource (refused: not implemented).
    Group,
}

impl MetricTransformAction {
    /// The name as written in the config, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::Insert => "insert",
            Self::Combine => "combine",
            Self::Group => "group",
        }
    }
}

/// Aggregation function named by `aggregation_type` (upstream's `aggregateutil` set).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AggregationType {
    /// Sum of the values.
    Sum,
    /// Mean of the values.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median of the values.
    Median,
    /// Number of values.
    Count,
}

/// `transforms[].submatch_case`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubmatchCase {
    /// Lower-case the submatch.
    Lower,
    /// Upper-case the submatch.
    Upper,
}

/// One entry of `transforms[].operations`. Fields are shared by all actions as upstream's are; a
/// field the action does not use is ignored (and reported as a warning).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricOperation {
    /// The operation. Required.
    pub action: Option<MetricOperationAction>,
    /// Label to operate on (`update_label`: required; `delete_label_value`).
    #[serde(deserialize_with = "de_lenient_string")]
    pub label: String,
    /// `add_label`: the label to add (required). `update_label`: rename `label` to this; an
    /// existing label of that name is overwritten.
    #[serde(deserialize_with = "de_lenient_string")]
    pub new_label: String,
    /// `add_label`: the value of the new label (required). `{{version}}` is replaced with this
    /// collector's version.
    #[serde(deserialize_with = "de_lenient_string")]
    pub new_value: String,
    /// `delete_label_value`: points whose `label` has this value are deleted.
    #[serde(deserialize_with = "de_lenient_string")]
    pub label_value: String,
    /// `update_label`: value renames applied to `label` (after a rename, to `new_label`).
    pub value_actions: Vec<ValueAction>,
    /// `experimental_scale_value`: the factor values are multiplied by (required, non-zero).
    pub experimental_scale: f64,
    /// `aggregate_labels` (refused): the labels to keep.
    pub label_set: Vec<String>,
    /// `aggregate_labels` / `aggregate_label_values` (refused): how points are aggregated.
    pub aggregation_type: Option<AggregationType>,
    /// `aggregate_label_values` (refused): the values of `label` to aggregate into `new_value`.
    pub aggregated_values: Vec<String>,
}

/// `operations[].action`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MetricOperationAction {
    /// Add `new_label: new_value` to every point that does not have `new_label` yet.
    AddLabel,
    /// Rename `label` to `new_label` and/or map its values by `value_actions`.
    UpdateLabel,
    /// Delete the points whose `label` equals `label_value`; a metric left without points is dropped.
    DeleteLabelValue,
    /// Gauge and sum points: int values become doubles and doubles become ints (truncated).
    ToggleScalarDataType,
    /// Multiply by `experimental_scale`: gauge and sum values (ints are truncated back to ints);
    /// for histograms the sum, min, max, explicit bounds and exemplar values. Exponential
    /// histograms and summaries are left unchanged, as upstream leaves them.
    ExperimentalScaleValue,
    /// Aggregate away every label not in `label_set` (refused: not implemented).
    AggregateLabels,
    /// Aggregate the `aggregated_values` of `label` into `new_value` (refused: not implemented).
    AggregateLabelValues,
}

impl MetricOperationAction {
    /// The name as written in the config, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AddLabel => "add_label",
            Self::UpdateLabel => "update_label",
            Self::DeleteLabelValue => "delete_label_value",
            Self::ToggleScalarDataType => "toggle_scalar_data_type",
            Self::ExperimentalScaleValue => "experimental_scale_value",
            Self::AggregateLabels => "aggregate_labels",
            Self::AggregateLabelValues => "aggregate_label_values",
        }
    }
}

/// `update_label.value_actions[]`: rename one label value.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ValueAction {
    /// The current value.
    #[serde(deserialize_with = "de_lenient_string")]
    pub value: String,
    /// The value it becomes. `{{version}}` is replaced with this collector's version.
    #[serde(deserialize_with = "de_lenient_string")]
    pub new_value: String,
}

impl Validate for MetricsTransformConfig {
    fn validate(&self, p: &str, check: &mut Check<'_>) {
        for (i, t) in self.transforms.iter().enumerate() {
            validate_transform(&format!("{p}.transforms[{i}]"), t, &mut check.errors, &mut check.warnings);
        }
    }
}

fn validate_transform(tp: &str, t: &MetricTransform, errors: &mut Vec<String>, warnings: &mut Vec<String>) {
    if t.include.is_empty() {
        errors.push(format!("{tp}.include: required"));
    }
    if t.match_type == MetricMatchType::Regexp {
        if let Err(e) = regex::Regex::new(&t.include) {
            errors.push(format!("{tp}.include: invalid regex: {e}"));
        }
        // Upstream compiles the label matchers when the processor is built; a bad one fails startup.
        for (label, value) in &t.experimental_match_labels {
            if let Err(e) = regex::Regex::new(value) {
                errors.push(format!("{tp}.experimental_match_labels.{label}: invalid regex: {e}"));
            }
        }
    }
    match t.action {
        None => errors.push(format!("{tp}.action: required (update or insert)")),
        Some(a @ (MetricTransformAction::Combine | MetricTransformAction::Group)) => {
            errors.push(format!("{tp}.action: {} is not supported by this collector", a.as_str()));
        }
        Some(MetricTransformAction::Insert) if t.new_name.is_empty() => {
            errors.push(format!("{tp}.new_name: required when action is insert"));
        }
        Some(a) => {
            // Only `combine` and `group` read these; upstream accepts and ignores them elsewhere.
            let unused = [
                ("aggregation_type", t.aggregation_type.is_some()),
                ("submatch_case", t.submatch_case.is_some()),
                ("group_resource_labels", t.group_resource_labels.is_some()),
            ];
            for (field, _) in unused.iter().filter(|(_, set)| *set) {
                warnings.push(format!("{tp}.{field}: has no effect with action {}", a.as_str()));
            }
        }
    }
    for (j, op) in t.operations.iter().enumerate() {
        validate_operation(&format!("{tp}.operations[{j}]"), op, errors, warnings);
    }
}

fn validate_operation(op_path: &str, op: &MetricOperation, errors: &mut Vec<String>, warnings: &mut Vec<String>) {
    use MetricOperationAction as A;
    let Some(action) = op.action else {
        errors.push(format!("{op_path}.action: required"));
        return;
    };
    let name = action.as_str();
    let required: &[(&str, bool)] = match action {
        A::AggregateLabels | A::AggregateLabelValues => {
            errors.push(format!("{op_path}.action: {name} is not supported by this collector"));
            return;
        }
        A::AddLabel => &[("new_label", op.new_label.is_empty()), ("new_value", op.new_value.is_empty())],
        A::UpdateLabel => &[("label", op.label.is_empty())],
        // Upstream reads an unset scale as 0; multiplying by 0 is never what was meant.
        A::ExperimentalScaleValue => &[("experimental_scale", op.experimental_scale == 0.0)],
        A::DeleteLabelValue | A::ToggleScalarDataType => &[],
    };
    for (field, _) in required.iter().filter(|(_, missing)| *missing) {
        errors.push(format!("{op_path}.{field}: required when action is {name}"));
    }
    for field in set_fields(op).into_iter().filter(|f| !fields_read_by(action).contains(f)) {
        warnings.push(format!("{op_path}.{field}: has no effect with action {name}"));
    }
}

/// The operation fields (other than `action`) that are set in the config.
fn set_fields(op: &MetricOperation) -> Vec<&'static str> {
    [
        ("label", !op.label.is_empty()),
        ("new_label", !op.new_label.is_empty()),
        ("new_value", !op.new_value.is_empty()),
        ("label_value", !op.label_value.is_empty()),
        ("value_actions", !op.value_actions.is_empty()),
        ("experimental_scale", op.experimental_scale != 0.0),
        ("label_set", !op.label_set.is_empty()),
        ("aggregation_type", op.aggregation_type.is_some()),
        ("aggregated_values", !op.aggregated_values.is_empty()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect()
}

/// The operation fields an implemented action reads.
fn fields_read_by(action: MetricOperationAction) -> &'static [&'static str] {
    use MetricOperationAction as A;
    match action {
        A::AddLabel => &["new_label", "new_value"],
        A::UpdateLabel => &["label", "new_label", "value_actions"],
        A::DeleteLabelValue => &["label", "label_value"],
        A::ToggleScalarDataType => &[],
        A::ExperimentalScaleValue => &["experimental_scale"],
        A::AggregateLabels => &["label_set", "aggregation_type"],
        A::AggregateLabelValues => &["label", "aggregated_values", "new_value", "aggregation_type"],
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    /// Loads a metrics pipeline whose `metricstransform` processor has `transforms`.
    fn load(transforms: &str) -> Result<Config, ConfigError> {
        let yaml = format!(
            "receivers: {{otlp: {{protocols: {{grpc: {{}}}}}}}}\n\
             processors:\n  metricstransform:\n    transforms:\n{transforms}\n\
             exporters: {{debug: {{}}}}\n\
             service: {{pipelines: {{metrics: {{receivers: [otlp], processors: [metricstransform], exporters: [debug]}}}}}}\n"
        );
        Config::from_yaml_str(&yaml, &|_| None)
    }

    fn errors(transforms: &str) -> Vec<String> {
        match load(transforms) {
            Err(ConfigError::Invalid(e)) => e,
            other => panic!("expected invalid config, got {other:?}"),
        }
    }

    const P: &str = "processors.metricstransform.transforms[0]";

    #[test]
    fn every_implemented_action_and_operation_is_accepted_with_upstream_field_names() {
        let cfg = load(
            r#"      - include: ^system\.cpu\.(.*)$$
        match_type: regexp
        experimental_match_labels: {state: "idle|user", cpu: 0}
        action: update
        new_name: system.processor.$${1}.stat
        operations:
          - action: add_label
            new_label: version
            new_value: collector {{version}}
          - action: update_label
            label: state
            new_label: cpu_state
            value_actions:
              - {value: idle, new_value: "-"}
          - {action: delete_label_value, label: state, label_value: steal}
          - action: toggle_scalar_data_type
          - {action: experimental_scale_value, experimental_scale: 1000}
      - {include: a, action: insert, new_name: b}
      - {include: c, match_type: strict, action: update, new_name: d}"#,
        )
        .unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }

    #[test]
    fn unimplemented_actions_and_operations_are_refused_by_path() {
        let e = errors(
            r#"      - include: a
        action: update
        operations:
          - {action: add_label, new_label: x, new_value: y}
          - {action: aggregate_labels, label_set: [state], aggregation_type: sum}
          - {action: aggregate_label_values, label: state, aggregated_values: [a], new_value: b, aggregation_type: max}
      - {include: b, match_type: regexp, action: combine, new_name: c, aggregation_type: sum}
      - {include: b, action: group, group_resource_labels: {a: b}}"#,
        );
        assert_eq!(
            e,
            [
                format!("{P}.operations[1].action: aggregate_labels is not supported by this collector"),
                format!("{P}.operations[2].action: aggregate_label_values is not supported by this collector"),
                "processors.metricstransform.transforms[1].action: combine is not supported by this collector".into(),
                "processors.metricstransform.transforms[2].action: group is not supported by this collector".into(),
            ]
        );
    }

    #[test]
    fn required_fields_are_named_by_path() {
        let e = errors(
            r#"      - match_type: regexp
        operations:
          - {action: add_label}
          - {action: update_label, new_label: x}
          - {action: experimental_scale_value}
          - {label: x}
      - {include: a, action: insert}"#,
        );
        assert_eq!(
            e,
            [
                format!("{P}.include: required"),
                format!("{P}.action: required (update or insert)"),
                format!("{P}.operations[0].new_label: required when action is add_label"),
                format!("{P}.operations[0].new_value: required when action is add_label"),
                format!("{P}.operations[1].label: required when action is update_label"),
                format!("{P}.operations[2].experimental_scale: required when action is experimental_scale_value"),
                format!("{P}.operations[3].action: required"),
                "processors.metricstransform.transforms[1].new_name: required when action is insert".into(),
            ]
        );
    }

    #[test]
    fn bad_regexes_are_named_by_path() {
        let e =
            errors("      - {include: '(', match_type: regexp, action: update, experimental_match_labels: {pod: '['}}");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with(&format!("{P}.include: invalid regex")), "{e:?}");
        assert!(e[1].starts_with(&format!("{P}.experimental_match_labels.pod: invalid regex")), "{e:?}");
        // Strict label matchers are plain strings.
        load("      - {include: a, action: update, experimental_match_labels: {pod: '['}}").unwrap();
    }

    #[test]
    fn unknown_names_are_refused_by_serde_with_the_path() {
        let e = errors("      - {include: a, action: update, operations: [{action: scale_value}]}");
        assert!(e[0].starts_with(&format!("{P}.operations[0].action: unknown variant `scale_value`")), "{e:?}");
        let e = errors("      - {include: a, action: update, operations: [{action: add_label, new_lable: x}]}");
        assert!(e[0].starts_with(&format!("{P}.operations[0].new_lable: unknown field")), "{e:?}");
        let e = errors("      - {include: a, action: rename}");
        assert!(e[0].starts_with(&format!("{P}.action: unknown variant `rename`")), "{e:?}");
        let e = errors("      - {include: a, match_type: glob, action: update}");
        assert!(e[0].starts_with(&format!("{P}.match_type: unknown variant `glob`")), "{e:?}");
    }

    #[test]
    fn fields_the_action_ignores_are_warnings() {
        let cfg = load(
            r#"      - include: a
        action: update
        aggregation_type: sum
        operations:
          - {action: update_label, label: a, new_value: b}
          - {action: toggle_scalar_data_type, experimental_scale: 2}"#,
        )
        .unwrap();
        assert_eq!(
            cfg.warnings,
            [
                format!("{P}.aggregation_type: has no effect with action update"),
                format!("{P}.operations[0].new_value: has no effect with action update_label"),
                format!("{P}.operations[1].experimental_scale: has no effect with action toggle_scalar_data_type"),
            ]
        );
    }

    #[test]
    fn numbers_are_taken_as_label_values() {
        let cfg = load(
            "      - {include: a, action: update, operations: [{action: add_label, new_label: id, new_value: 1}]}",
        )
        .unwrap();
        let crate::registry::ProcessorConfig::MetricsTransform(m) = &cfg.processors["metricstransform"] else {
            panic!("wrong type")
        };
        assert_eq!(m.transforms[0].operations[0].new_value, "1");
    }
}
