//! The Grafana dashboards the chart ships (`charts/telemetry-operator/dashboards/`): valid
//! dashboard JSON, every PromQL expression accepted by Prometheus's own parser (`promtool check
//! rules`), and rendered by the chart as sidecar-labelled ConfigMaps only when switched on.
//! That every metric they read exists is checked on a real Prometheus after real traffic, in
//! `e2e.rs`.

use std::process::Command;

use telemetry_tests::{dashboard_queries, dashboards, repo_root, tool};

#[test]
fn dashboards_are_grafana_dashboards_with_prometheus_panels() {
    let all = dashboards();
    assert_eq!(all.len(), 2, "the reviews service and the collector dashboards");
    for (file, json) in &all {
        assert!(json["uid"].as_str().is_some_and(|uid| !uid.is_empty()), "{file} has a uid");
        assert!(json["title"].as_str().is_some_and(|t| !t.is_empty()), "{file} has a title");
        let panels = json["panels"].as_array().unwrap_or_else(|| panic!("{file} has panels"));
        assert!(!panels.is_empty(), "{file} has panels");
        for panel in panels {
            assert_eq!(panel["datasource"]["type"], "prometheus", "{file}: {} reads Prometheus", panel["title"]);
            assert!(
                panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "{file}: {} has queries",
                panel["title"]
            );
        }
    }
}

#[test]
fn every_dashboard_expression_parses_with_promtool() {
    let queries = dashboard_queries("demo");
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("dashboards.rules.yml");
    // One recording rule per expression: `promtool check rules` parses each with Prometheus's parser.
    let mut text = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        text.push_str(&format!(
            "      - record: dashboard:expression_{i}\n        expr: {}\n",
            serde_json::to_string(&query.expr).expect("JSON string")
        ));
    }
    std::fs::write(&rules, text).expect("write rules");
    let output = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
        .expect("promtool (Debian package prometheus) runs");
    assert!(
        output.status.success(),
        "promtool refused a dashboard expression: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("{} rules found", queries.len())));
}

#[test]
fn the_chart_ships_the_dashboards_as_sidecar_configmaps_only_when_enabled() {
    let chart = repo_root().join("charts/telemetry-operator");
    let template = |extra: &[&str]| {
        let output =
            Command::new(tool("helm")).arg("template").arg("t").arg(&chart).args(extra).output().expect("helm runs");
        assert!(output.status.success(), "helm template: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(!template(&[]).contains("grafana_dashboard"), "off by default");
    let rendered = template(&["--set", "dashboards.enabled=true"]);
    for (file, _) in dashboards() {
        assert!(rendered.contains(&format!("  {file}: |-")), "{file} is in a ConfigMap");
    }
    assert_eq!(rendered.matches("grafana_dashboard: \"1\"").count(), 2, "each ConfigMap carries the sidecar label");
}
