//! Prometheus relabeling, pure: a [`RelabelConfig`] compiles into a [`Rule`] (checked the way
//! Prometheus checks it when loading its config), and [`apply`] runs a rule list over a label set.
//!
//! Semantics follow Prometheus: the regex is anchored at both ends and `.` matches newlines;
//! source label values are joined with the separator (default `;`), a missing label counts as
//! the empty string, and a label set to the empty string is removed. The replacement is expanded
//! with Go's `$1` / `${1}` / `$name` rules, which the `regex` crate's `Captures::expand` shares
//! (so `$1x` means the group named `1x`, as in Prometheus).

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use regex::Regex;

use super::config::RelabelConfig;

/// A label set. Ordered so that equal sets compare and hash equal whatever their origin.
pub type Labels = BTreeMap<String, String>;

/// What a rule does with the joined source value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write the expanded replacement into the target label when the regex matches.
    Replace,
    /// Drop the label set unless the regex matches.
    Keep,
    /// Drop the label set when the regex matches.
    Drop,
    /// Drop the label set unless the target label equals the joined source value.
    KeepEqual,
    /// Drop the label set when the target label equals the joined source value.
    DropEqual,
    /// Set the target label to `md5(value) mod modulus`.
    HashMod,
    /// Copy every label whose name matches to the name the replacement expands to.
    LabelMap,
    /// Remove every label whose name matches.
    LabelDrop,
    /// Remove every label whose name does not match.
    LabelKeep,
    /// Set the target label to the lower-cased joined value.
    Lowercase,
    /// Set the target label to the upper-cased joined value.
    Uppercase,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        // Prometheus lower-cases the action before matching it.
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Self::Replace,
            "keep" => Self::Keep,
            "drop" => Self::Drop,
            "keepequal" => Self::KeepEqual,
            "dropequal" => Self::DropEqual,
            "hashmod" => Self::HashMod,
            "labelmap" => Self::LabelMap,
            "labeldrop" => Self::LabelDrop,
            "labelkeep" => Self::LabelKeep,
            "lowercase" => Self::Lowercase,
            "uppercase" => Self::Uppercase,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Keep => "keep",
            Self::Drop => "drop",
            Self::KeepEqual => "keepequal",
            Self::DropEqual => "dropequal",
            Self::HashMod => "hashmod",
            Self::LabelMap => "labelmap",
            Self::LabelDrop => "labeldrop",
            Self::LabelKeep => "labelkeep",
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
        }
    }
}

/// Why a relabel rule cannot be used. The message starts with the offending field's name so
/// the caller can prefix the rule's config path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    /// `action` is not one of Prometheus' actions.
    #[error("action: unknown action {0:?}")]
    UnknownAction(String),
    /// `regex` does not compile (after anchoring).
    #[error("regex: invalid regex {regex:?}: {message}")]
    Regex {
        /// The regex as written.
        regex: String,
        /// The regex crate's explanation.
        message: String,
    },
    /// An action that writes a label has no `target_label`.
    #[error("target_label: required for action {0}")]
    MissingTarget(&'static str),
    /// `target_label` is not a valid label name (for `replace`, `$` references are allowed).
    #[error("target_label: {label:?} is not a valid label name for action {action}")]
    InvalidTarget {
        /// The target as written.
        label: String,
        /// The rule's action.
        action: &'static str,
    },
    /// `hashmod` without a non-zero `modulus`.
    #[error("modulus: required and non-zero for action hashmod")]
    MissingModulus,
    /// A field is set that the action ignores, which Prometheus refuses so mistakes show.
    #[error("{field}: must not be set for action {action}")]
    FieldNotAllowed {
        /// The field that must stay unset.
        field: &'static str,
        /// The rule's action.
        action: &'static str,
    },
}

/// A compiled relabel rule.
#[derive(Debug, Clone)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    target_label: String,
    replacement: String,
    modulus: u64,
    action: Action,
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus' (legacy) label name rule.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Anchors a user regex the way Prometheus does: whole-string match, `.` matching newlines.
pub fn anchored(re: &str) -> Result<Regex, RelabelError> {
    Regex::new(&format!("^(?s:{re})$"))
        .map_err(|e| RelabelError::Regex { regex: re.to_owned(), message: e.to_string() })
}

impl Rule {
    /// Compiles and checks one rule, applying Prometheus' defaults
    /// (`action: replace`, `separator: ;`, `regex: (.*)`, `replacement: $1`).
    pub fn compile(c: &RelabelConfig) -> Result<Rule, RelabelError> {
        let action = match c.action.as_deref() {
            None => Action::Replace,
            Some(a) => Action::parse(a).ok_or_else(|| RelabelError::UnknownAction(a.to_owned()))?,
        };
        let regex = anchored(c.regex.as_deref().unwrap_or("(.*)"))?;
        let target_label = c.target_label.clone().unwrap_or_default();
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target_label.is_empty() {
            return Err(RelabelError::MissingTarget(action.name()));
        }
        // `replace` may build the target from capture groups; the others take it literally.
        let target_ok = match action {
            Action::Replace => target_label.contains('$') || is_valid_label_name(&target_label),
            _ if needs_target => is_valid_label_name(&target_label),
            _ => true,
        };
        if !target_ok {
            return Err(RelabelError::InvalidTarget { label: target_label, action: action.name() });
        }
        if action == Action::HashMod && c.modulus.unwrap_or(0) == 0 {
            return Err(RelabelError::MissingModulus);
        }
        let not_allowed = |field| RelabelError::FieldNotAllowed { field, action: action.name() };
        if matches!(action, Action::LabelDrop | Action::LabelKeep) {
            if !c.source_labels.is_empty() {
                return Err(not_allowed("source_labels"));
            }
            if !target_label.is_empty() {
                return Err(not_allowed("target_label"));
            }
            if c.modulus.is_some() {
                return Err(not_allowed("modulus"));
            }
            if c.replacement.as_deref().is_some_and(|r| r != "$1") {
                return Err(not_allowed("replacement"));
            }
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual) {
            if c.regex.as_deref().is_some_and(|r| r != "(.*)") {
                return Err(not_allowed("regex"));
            }
            if c.modulus.is_some() {
                return Err(not_allowed("modulus"));
            }
            if c.replacement.as_deref().is_some_and(|r| r != "$1") {
                return Err(not_allowed("replacement"));
            }
        }
        Ok(Rule {
            source_labels: c.source_labels.clone(),
            separator: c.separator.clone().unwrap_or_else(|| ";".into()),
            regex,
            target_label,
            replacement: c.replacement.clone().unwrap_or_else(|| "$1".into()),
            modulus: c.modulus.unwrap_or(0),
            action,
        })
    }

    /// Applies this rule; `false` means the label set is dropped.
    pub fn apply(&self, labels: &mut Labels) -> bool {
        let value = self
            .source_labels
            .iter()
            .map(|l| labels.get(l).map(String::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&self.separator);
        match self.action {
            Action::Keep => return self.regex.is_match(&value),
            Action::Drop => return !self.regex.is_match(&value),
            Action::KeepEqual => return get(labels, &self.target_label) == value,
            Action::DropEqual => return get(labels, &self.target_label) != value,
            Action::Replace => {
                // No match: no replacement at all (not even a deletion).
                let Some(caps) = self.regex.captures(&value) else { return true };
                let mut target = String::new();
                caps.expand(&self.target_label, &mut target);
                if !is_valid_label_name(&target) {
                    return true;
                }
                let mut res = String::new();
                caps.expand(&self.replacement, &mut res);
                set(labels, target, res);
            }
            Action::Lowercase => set(labels, self.target_label.clone(), value.to_lowercase()),
            Action::Uppercase => set(labels, self.target_label.clone(), value.to_uppercase()),
            Action::HashMod => {
                let hash = Md5::digest(value.as_bytes());
                // Prometheus uses the hash's last 8 bytes, big-endian.
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&hash[8..16]);
                let m = u64::from_be_bytes(tail) % self.modulus;
                set(labels, self.target_label.clone(), m.to_string());
            }
            Action::LabelMap => {
                let mapped: Vec<(String, String)> = labels
                    .iter()
                    .filter(|(k, _)| self.regex.is_match(k))
                    .map(|(k, v)| (self.regex.replace_all(k, self.replacement.as_str()).into_owned(), v.clone()))
                    .collect();
                for (k, v) in mapped {
                    set(labels, k, v);
                }
            }
            Action::LabelDrop => labels.retain(|k, _| !self.regex.is_match(k)),
            Action::LabelKeep => labels.retain(|k, _| self.regex.is_match(k)),
        }
        true
    }
}

fn get<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).map(String::as_str).unwrap_or("")
}

/// Sets a label; the empty value removes it, as in Prometheus' label builder.
fn set(labels: &mut Labels, name: String, value: String) {
    if value.is_empty() {
        labels.remove(&name);
    } else {
        labels.insert(name, value);
    }
}

/// Compiles a rule list; the error names the failing rule's index.
pub fn compile_all(rules: &[RelabelConfig]) -> Result<Vec<Rule>, (usize, RelabelError)> {
    rules.iter().enumerate().map(|(i, r)| Rule::compile(r).map_err(|e| (i, e))).collect()
}

/// Runs `rules` in order; `None` when a rule dropped the label set.
pub fn apply(rules: &[Rule], mut labels: Labels) -> Option<Labels> {
    for r in rules {
        if !r.apply(&mut labels) {
            return None;
        }
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Rule {
        let c: RelabelConfig = serde_yaml::from_str(yaml).expect("rule yaml");
        Rule::compile(&c).expect("rule compiles")
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// The rules `operator/src/config.rs` (`pod_scrape_job`) renders for pipeline `main` in
    /// namespace `obs`, after the collector's `$$` → `$` expansion.
    fn operator_rules() -> Vec<Rule> {
        let yaml = r#"
- source_labels: [__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline]
  action: keep
  regex: main
- source_labels: [__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline_namespace]
  action: keep
  regex: obs
- source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
  action: keep
  regex: "true"
- source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
  action: replace
  target_label: __metrics_path__
  regex: (.+)
- source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
  action: replace
  regex: ([^:]+)(?::\d+)?;(\d+)
  replacement: $1:$2
  target_label: __address__
- source_labels: [__meta_kubernetes_namespace]
  action: replace
  target_label: namespace
- source_labels: [__meta_kubernetes_pod_name]
  action: replace
  target_label: pod
"#;
        let cs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).expect("yaml");
        compile_all(&cs).expect("operator rules compile")
    }

    /// What pod discovery yields for a `reviews` pod with one declared container port.
    fn reviews_pod() -> Labels {
        labels(&[
            ("__address__", "10.1.2.3:8080"),
            ("__metrics_path__", "/metrics"),
            ("__scheme__", "http"),
            ("job", "telemetry-pipeline/obs/main"),
            ("__meta_kubernetes_namespace", "obs"),
            ("__meta_kubernetes_pod_name", "reviews-7d9f-abcde"),
            ("__meta_kubernetes_pod_ip", "10.1.2.3"),
            ("__meta_kubernetes_pod_label_app", "reviews"),
            ("__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline", "main"),
            ("__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline_namespace", "obs"),
            ("__meta_kubernetes_pod_annotation_prometheus_io_scrape", "true"),
            ("__meta_kubernetes_pod_annotation_prometheus_io_port", "9464"),
            ("__meta_kubernetes_pod_annotation_prometheus_io_path", "/custom/metrics"),
            ("__meta_kubernetes_pod_container_port_number", "8080"),
            ("__meta_kubernetes_pod_phase", "Running"),
            ("__meta_kubernetes_pod_ready", "true"),
        ])
    }

    #[test]
    fn operator_rules_keep_an_annotated_pod_and_rewrite_address_path_and_labels() {
        let out = apply(&operator_rules(), reviews_pod()).expect("kept");
        assert_eq!(out["__address__"], "10.1.2.3:9464");
        assert_eq!(out["__metrics_path__"], "/custom/metrics");
        assert_eq!(out["namespace"], "obs");
        assert_eq!(out["pod"], "reviews-7d9f-abcde");
        assert_eq!(out["job"], "telemetry-pipeline/obs/main");
    }

    #[test]
    fn operator_rules_keep_the_default_path_when_the_annotation_is_absent() {
        let mut pod = reviews_pod();
        pod.remove("__meta_kubernetes_pod_annotation_prometheus_io_path");
        let out = apply(&operator_rules(), pod).expect("kept");
        // `(.+)` does not match the empty value, so the default path stays.
        assert_eq!(out["__metrics_path__"], "/metrics");
    }

    #[test]
    fn operator_rules_address_without_port_gets_the_annotation_port() {
        let mut pod = reviews_pod();
        pod.insert("__address__".into(), "10.1.2.3".into());
        let out = apply(&operator_rules(), pod).expect("kept");
        assert_eq!(out["__address__"], "10.1.2.3:9464");
    }

    #[test]
    fn operator_rules_leave_the_address_when_no_port_annotation() {
        let mut pod = reviews_pod();
        pod.remove("__meta_kubernetes_pod_annotation_prometheus_io_port");
        let out = apply(&operator_rules(), pod).expect("kept");
        assert_eq!(out["__address__"], "10.1.2.3:8080");
    }

    #[test]
    fn operator_rules_drop_other_pipelines_and_unannotated_pods() {
        let mut other = reviews_pod();
        other.insert("__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline".into(), "mainx".into());
        assert!(apply(&operator_rules(), other).is_none(), "anchored: `main` must not match `mainx`");
        let mut off = reviews_pod();
        off.insert("__meta_kubernetes_pod_annotation_prometheus_io_scrape".into(), "false".into());
        assert!(apply(&operator_rules(), off).is_none());
        let mut unlabelled = reviews_pod();
        unlabelled.remove("__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline_namespace");
        assert!(apply(&operator_rules(), unlabelled).is_none());
    }

    #[test]
    fn replace_defaults_copy_the_source_and_empty_result_deletes() {
        let r = rule("{source_labels: [a], target_label: b}");
        let mut l = labels(&[("a", "x"), ("b", "old")]);
        assert!(r.apply(&mut l));
        assert_eq!(l["b"], "x");
        let mut l = labels(&[("b", "old")]);
        r.apply(&mut l);
        assert!(!l.contains_key("b"), "empty replacement removes the target");
    }

    #[test]
    fn replace_without_match_changes_nothing_and_targets_can_use_groups() {
        let r = rule("{source_labels: [a], regex: 'x-(\\w+)', target_label: 'l_$1', replacement: v}");
        let mut l = labels(&[("a", "x-foo")]);
        r.apply(&mut l);
        assert_eq!(l["l_foo"], "v");
        let mut l = labels(&[("a", "y-foo")]);
        r.apply(&mut l);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn separator_joins_sources_and_missing_labels_are_empty() {
        let r = rule("{source_labels: [a, b, c], separator: '/', target_label: t}");
        let mut l = labels(&[("a", "1"), ("c", "3")]);
        r.apply(&mut l);
        assert_eq!(l["t"], "1//3");
    }

    #[test]
    fn dot_matches_newline_like_prometheus() {
        let r = rule("{source_labels: [a], regex: 'x.y', action: keep}");
        assert!(r.apply(&mut labels(&[("a", "x\ny")])));
    }

    #[test]
    fn keep_drop_keepequal_dropequal() {
        let keep = rule("{source_labels: [a], regex: 'b+', action: keep}");
        assert!(keep.apply(&mut labels(&[("a", "bbb")])));
        assert!(!keep.apply(&mut labels(&[("a", "abbb")])));
        let drop = rule("{source_labels: [a], regex: 'b+', action: DROP}");
        assert!(!drop.apply(&mut labels(&[("a", "bb")])));
        let ke = rule("{source_labels: [a], target_label: b, action: keepequal}");
        assert!(ke.apply(&mut labels(&[("a", "1"), ("b", "1")])));
        assert!(!ke.apply(&mut labels(&[("a", "1"), ("b", "2")])));
        let de = rule("{source_labels: [a], target_label: b, action: dropequal}");
        assert!(!de.apply(&mut labels(&[("a", "1"), ("b", "1")])));
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8; its last 8 bytes big-endian are
        // 17145033699835028696, and that mod 1000 is 696 (computed independently with Python).
        let r = rule("{source_labels: [a], target_label: h, modulus: 1000, action: hashmod}");
        let mut l = labels(&[("a", "foo")]);
        r.apply(&mut l);
        assert_eq!(l["h"], "696");
    }

    #[test]
    fn hashmod_agrees_with_upstreams_relabel_tests() {
        // The cases of Prometheus' model/relabel/relabel_test.go: md5 of the joined source values,
        // its last 8 bytes as a big-endian uint64, modulo `modulus`.
        let r = rule("{source_labels: [c], target_label: d, separator: ';', modulus: 1000, action: hashmod}");
        let mut l = labels(&[("a", "foo"), ("b", "bar"), ("c", "baz")]);
        assert!(r.apply(&mut l));
        assert_eq!(l, labels(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]));
        let r = rule("{source_labels: [a], target_label: b, separator: ';', modulus: 1000, action: hashmod}");
        let mut l = labels(&[("a", "foo\nbar")]);
        assert!(r.apply(&mut l));
        assert_eq!(l["b"], "734");
    }

    #[test]
    fn labelmap_labeldrop_labelkeep() {
        let map = rule("{regex: '__meta_kubernetes_pod_label_(.+)', action: labelmap}");
        let mut l = labels(&[("__meta_kubernetes_pod_label_app", "reviews"), ("x", "1")]);
        map.apply(&mut l);
        assert_eq!(l["app"], "reviews");
        assert_eq!(l["__meta_kubernetes_pod_label_app"], "reviews", "labelmap copies, it does not move");
        let drop = rule("{regex: '__meta_.*', action: labeldrop}");
        drop.apply(&mut l);
        assert_eq!(l, labels(&[("app", "reviews"), ("x", "1")]));
        let keep = rule("{regex: 'app', action: labelkeep}");
        keep.apply(&mut l);
        assert_eq!(l, labels(&[("app", "reviews")]));
    }

    #[test]
    fn lowercase_uppercase() {
        let lower = rule("{source_labels: [a], target_label: b, action: lowercase}");
        let upper = rule("{source_labels: [a], target_label: c, action: uppercase}");
        let mut l = labels(&[("a", "MiXed")]);
        lower.apply(&mut l);
        upper.apply(&mut l);
        assert_eq!((l["b"].as_str(), l["c"].as_str()), ("mixed", "MIXED"));
    }

    #[test]
    fn invalid_rules_name_the_field() {
        let err = |yaml: &str| {
            let c: RelabelConfig = serde_yaml::from_str(yaml).expect("yaml");
            Rule::compile(&c).expect_err("must be refused").to_string()
        };
        assert!(err("{action: keep, regex: '('}").starts_with("regex: invalid regex"));
        assert!(err("{action: replace}").starts_with("target_label: required"));
        assert!(err("{action: lowercase, target_label: 'a-b'}").starts_with("target_label: \"a-b\""));
        assert!(err("{action: hashmod, target_label: h}").starts_with("modulus:"));
        assert!(err("{action: labeldrop, source_labels: [a]}").starts_with("source_labels: must not be set"));
        assert!(err("{action: keepequal, target_label: a, regex: x}").starts_with("regex: must not be set"));
        assert!(err("{action: explode}").starts_with("action: unknown action"));
    }
}
