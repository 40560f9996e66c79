//! Validation of the `metricstransform` processor: upstream's required-field and regex checks
//! (its `validateConfiguration`), plus refusal, by path, of what this collector does not
//! implement (`combine`, `group`, `aggregate_labels`, `aggregate_label_values`). Fields upstream
//! ignores for the chosen action are accepted and reported as warnings, so a misplaced field is
//! visible without breaking configs upstream loads.

use super::components::{
    MetricMatchType, MetricOperation, MetricOperationAction, MetricTransform, MetricTransformAction,
    MetricsTransformConfig,
};

/// Checks one `metricstransform` processor; `p` is its path (`processors.<id>`).
pub(crate) fn validate(p: &str, cfg: &MetricsTransformConfig, errors: &mut Vec<String>, warnings: &mut Vec<String>) {
    for (i, t) in cfg.transforms.iter().enumerate() {
        validate_transform(&format!("{p}.transforms[{i}]"), t, errors, warnings);
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
    use super::super::{Config, ConfigError};

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
