//! The chart's Grafana dashboards (`charts/telemetry-operator/dashboards/*.json`) as tests read
//! them: their PromQL expressions, with Grafana's variables given concrete values, and the metric
//! names each expression reads.

use serde_json::Value;

use crate::tools::repo_root;

/// One PromQL expression of a dashboard panel.
#[derive(Debug, Clone)]
pub struct DashboardQuery {
    /// The dashboard file name.
    pub dashboard: String,
    /// The panel title.
    pub panel: String,
    /// The expression with `$__rate_interval`, `$namespace`, ... replaced, as Prometheus runs it.
    pub expr: String,
}

/// Every dashboard file's parsed JSON, by file name.
pub fn dashboards() -> Vec<(String, Value)> {
    let dir = repo_root().join("charts/telemetry-operator/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("dashboard file");
            let json =
                serde_json::from_str(&text).unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
            (path.file_name().expect("file name").to_string_lossy().into_owned(), json)
        })
        .collect()
}

/// Every panel target's expression, with the dashboards' variables set to `namespace`.
pub fn dashboard_queries(namespace: &str) -> Vec<DashboardQuery> {
    let mut queries = Vec::new();
    for (dashboard, json) in dashboards() {
        for panel in json["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_default();
                queries.push(DashboardQuery {
                    dashboard: dashboard.clone(),
                    panel: panel["title"].as_str().unwrap_or_default().to_owned(),
                    expr: expr.replace("$__rate_interval", "1m").replace("$namespace", namespace),
                });
            }
        }
    }
    queries
}

/// PromQL keywords that are not metric names: binary operators, modifiers, and the aggregation
/// operators, which may be followed by `by (...)` rather than `(` (function calls are recognised
/// by their `(`).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

/// Keywords followed by a parenthesised list of label names, not of expressions.
const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// The metric names an expression selects: identifiers outside `{...}` matchers and `[...]`
/// ranges, not calls, not keywords, not inside `by (...)`-like label lists, not numbers.
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut chars = Vec::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => chars.push(c),
            _ => {}
        }
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && is_word(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next] == ' ' {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if call && LABEL_LISTS.contains(&word.as_str()) {
                while next < chars.len() && chars[next] != ')' {
                    next += 1;
                }
                i = next + 1;
            } else if !call && !KEYWORDS.contains(&word.as_str()) && !names.contains(&word) {
                names.push(word);
            }
        } else if chars[i].is_ascii_digit() {
            // A number such as 0.95 or 1e3.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::metric_names;

    #[test]
    fn metric_names_skip_functions_matchers_and_grouping_labels() {
        assert_eq!(
            metric_names(
                r#"histogram_quantile(0.95, sum by (le, handler) (rate(http_request_duration_seconds_bucket{namespace="demo"}[1m])))"#
            ),
            vec!["http_request_duration_seconds_bucket"]
        );
        assert_eq!(
            metric_names("max by (exporter) (otelcol_exporter_queue_size / otelcol_exporter_queue_capacity)"),
            vec!["otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity"]
        );
        assert_eq!(metric_names(r#"sum(rate(reviews_created_total[1m]))"#), vec!["reviews_created_total"]);
        assert_eq!(
            metric_names(r#"sum by (handler) (rate(reviews_http_requests_total{status=~"5.."}[1m])) / sum(up)"#),
            vec!["reviews_http_requests_total", "up"]
        );
    }
}
