//! Cross-namespace consent: which namespaces may attach workloads to a pipeline. A pipeline serves its
//! own namespace; another namespace's InstrumentedServices attach only when the pipeline lists that
//! namespace in `spec.allowedNamespaces` (by name, or by a label selector over Namespace objects).
//! Pure functions: the reconciler reads the Namespace's labels and reports the refusal.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::crd::TelemetryPipeline;

/// Whether a label selector matches `labels` (matchLabels and matchExpressions, ANDed; an empty
/// selector matches everything, as in Kubernetes).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels =
        selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k).is_some_and(|actual| actual == v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            // Unknown operators match nothing (the CRD schema only admits the four above).
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// Whether the pipeline needs the namespace's labels to decide (it has a selector and does not
/// already allow the namespace by name).
pub fn needs_labels(pipeline: &TelemetryPipeline, pipeline_ns: &str, namespace: &str) -> bool {
    namespace != pipeline_ns
        && pipeline
            .spec
            .allowed_namespaces
            .as_ref()
            .is_some_and(|a| !a.names.iter().any(|n| n == namespace) && a.selector.is_some())
}

/// `None` when InstrumentedServices of `namespace` may attach to the pipeline (in `pipeline_ns`),
/// else the refusal naming the rule. `labels` are the namespace's labels, when read.
pub fn refusal(
    pipeline: &TelemetryPipeline,
    pipeline_ns: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Option<String> {
    if namespace == pipeline_ns {
        return None;
    }
    let name = pipeline.metadata.name.as_deref().unwrap_or_default();
    let allowed = pipeline.spec.allowed_namespaces.as_ref();
    let by_name = allowed.is_some_and(|a| a.names.iter().any(|n| n == namespace));
    let by_selector = allowed.and_then(|a| a.selector.as_ref()).is_some_and(|s| selector_matches(s, labels));
    if by_name || by_selector {
        return None;
    }
    let rule = match allowed {
        None => "it has no spec.allowedNamespaces, so only its own namespace may attach".to_string(),
        Some(a) => format!(
            "spec.allowedNamespaces lists names [{}]{} and neither admits namespace {namespace:?}",
            a.names.join(", "),
            if a.selector.is_some() { " and a selector" } else { "" }
        ),
    };
    Some(format!(
        "spec.pipelineRef: TelemetryPipeline {pipeline_ns}/{name} does not allow namespace {namespace:?}: {rule}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(yaml: &str) -> TelemetryPipeline {
        TelemetryPipeline::new("main", serde_yaml::from_str(yaml).expect("spec"))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn own_namespace_only_by_default() {
        let p = pipeline("exporters: {debug: {}}");
        assert_eq!(refusal(&p, "obs", "obs", &BTreeMap::new()), None);
        let msg = refusal(&p, "obs", "shop", &BTreeMap::new()).expect("refused");
        assert!(
            msg.contains("obs/main") && msg.contains("\"shop\"") && msg.contains("spec.allowedNamespaces"),
            "{msg}"
        );
    }

    #[test]
    fn names_and_selectors_admit() {
        let p = pipeline(
            "exporters: {debug: {}}\nallowedNamespaces: {names: [shop], selector: {matchLabels: {telemetry: 'on'}, matchExpressions: [{key: tier, operator: NotIn, values: [test]}]}}",
        );
        assert_eq!(refusal(&p, "obs", "shop", &BTreeMap::new()), None);
        assert!(!needs_labels(&p, "obs", "shop"));
        assert!(needs_labels(&p, "obs", "billing"));
        assert_eq!(refusal(&p, "obs", "billing", &labels(&[("telemetry", "on")])), None);
        assert!(refusal(&p, "obs", "billing", &labels(&[("telemetry", "on"), ("tier", "test")])).is_some());
        let msg = refusal(&p, "obs", "billing", &BTreeMap::new()).expect("refused");
        assert!(msg.contains("names [shop] and a selector"), "{msg}");
    }

    #[test]
    fn selector_operators() {
        let sel: LabelSelector = serde_yaml::from_str(
            "matchExpressions: [{key: a, operator: In, values: [x, y]}, {key: b, operator: Exists}, {key: c, operator: DoesNotExist}]",
        )
        .expect("selector");
        assert!(selector_matches(&sel, &labels(&[("a", "y"), ("b", "")])));
        assert!(!selector_matches(&sel, &labels(&[("a", "z"), ("b", "")])));
        assert!(!selector_matches(&sel, &labels(&[("a", "x"), ("b", ""), ("c", "1")])));
        assert!(selector_matches(&LabelSelector::default(), &BTreeMap::new()));
    }
}
