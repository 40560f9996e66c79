//! The receiver's config turned into runnable jobs, pure; the same function validates the config
//! (the receiver's [`Validate`] impl calls it for its errors and warnings) and builds the jobs the
//! receiver runs, so what validation accepts is exactly what runs.
//!
//! Policy for features we do not implement: anything that changes *what* is scraped or *how the
//! request is authenticated* (other service discovery kinds, TLS, auth, proxies, scrape config
//! files, the target allocator) is refused with an error naming the field — running without it
//! would scrape the wrong targets or be rejected by them. Knobs that only change presentation
//! (`trim_metric_suffixes`, `use_start_time_metric`, `external_labels`, ...) are accepted with a
//! warning saying they are ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml::Value;

use super::Limits;
use super::config::{KubernetesSdConfig, KubernetesSelector, PrometheusReceiverConfig, ScrapeConfig};
use super::relabel::{self, Labels, Rule};
use crate::check::{Check, Validate};
use crate::duration::parse_duration;

/// Prometheus' defaults when neither the job nor `global` sets them.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits applied when a job does not set them. Prometheus leaves them unlimited; a collector
/// that scrapes pods named by annotations must not let one pod's exposition exhaust its memory,
/// so these are generous bounds no sane exporter reaches (`0` in the config restores "unlimited").
pub const DEFAULT_SAMPLE_LIMIT: u64 = 1_000_000;
/// Labels per series, `__name__` included.
pub const DEFAULT_LABEL_LIMIT: u64 = 256;
/// Bytes per label name.
pub const DEFAULT_LABEL_NAME_LENGTH_LIMIT: u64 = 1024;
/// Bytes per label value.
pub const DEFAULT_LABEL_VALUE_LENGTH_LIMIT: u64 = 16 * 1024;

/// Where one pod watch looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// Every namespace (needs cluster-wide list/watch on pods).
    All,
    /// These namespaces, one watch each (a namespaced Role suffices).
    Names(Vec<String>),
    /// The collector's own namespace, read from the service account mount.
    Own,
}

/// One `kubernetes_sd_configs` entry with role `pod`: where its watches look and what the API server
/// filters them by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDiscovery {
    /// The namespaces watched.
    pub namespaces: Namespaces,
    /// Label selector of the watch (`selectors[].label` of the `pod` selector), unset for all pods.
    pub label_selector: Option<String>,
    /// Field selector of the watch (`selectors[].field`), e.g. `spec.nodeName=node-1` for the pods of
    /// one node: the server filters, so the collector neither receives nor holds the others.
    pub field_selector: Option<String>,
}

impl PodDiscovery {
    /// Discovery of every pod in `namespaces`, unfiltered.
    pub fn all_pods(namespaces: Namespaces) -> Self {
        Self { namespaces, label_selector: None, field_selector: None }
    }
}

/// A compiled scrape job.
#[derive(Debug, Clone)]
pub struct Job {
    /// `job_name`.
    pub name: String,
    /// Default interval (`__scrape_interval__` may override it per target).
    pub interval: Duration,
    /// Default timeout (`__scrape_timeout__` may override it per target).
    pub timeout: Duration,
    /// Default path.
    pub metrics_path: String,
    /// Default scheme.
    pub scheme: String,
    /// URL query parameters (`__param_<name>` may override the first value).
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep scraped labels on clashes.
    pub honor_labels: bool,
    /// Use exposed timestamps.
    pub honor_timestamps: bool,
    /// Fail scrapes with more samples than this (0: unlimited).
    pub sample_limit: u64,
    /// Per-series label limits (`label_limit`, `label_name_length_limit`,
    /// `label_value_length_limit`).
    pub label_limits: Limits,
    /// Follow HTTP redirects.
    pub follow_redirects: bool,
    /// `relabel_configs`.
    pub relabel: Vec<Rule>,
    /// `metric_relabel_configs`.
    pub metric_relabel: Vec<Rule>,
    /// `static_configs`, one label set per target (`__address__` plus the group's labels).
    pub static_targets: Vec<Labels>,
    /// `kubernetes_sd_configs` with role `pod`.
    pub pod_discovery: Vec<PodDiscovery>,
}

fn global_durations(
    path: &str,
    global: Option<&Value>,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> (Duration, Duration) {
    let mut interval = DEFAULT_INTERVAL;
    let mut timeout = DEFAULT_TIMEOUT;
    let Some(global) = global else { return (interval, timeout) };
    let Value::Mapping(m) = global else {
        errors.push(format!("{path}: must be a mapping"));
        return (interval, timeout);
    };
    for (k, v) in m {
        let key = k.as_str().unwrap_or_default();
        let mut duration = |into: &mut Duration| match v.as_str().map(parse_duration) {
            Some(Ok(d)) if !d.is_zero() => *into = d,
            Some(Ok(_)) => errors.push(format!("{path}.{key}: must be greater than zero")),
            Some(Err(e)) => errors.push(format!("{path}.{key}: {e}")),
            None => errors.push(format!("{path}.{key}: must be a duration such as 30s")),
        };
        match key {
            "scrape_interval" => duration(&mut interval),
            "scrape_timeout" => duration(&mut timeout),
            // Rule evaluation does not exist in a collector; upstream ignores it too.
            "evaluation_interval" => {}
            _ => warnings.push(format!("{path}.{key}: not supported by this collector; ignored")),
        }
    }
    (interval, timeout)
}

/// Checks `c` (at config path `path`, e.g. `receivers.prometheus`) and compiles its jobs.
/// Problems are appended to `errors` / `warnings`; the jobs are only meaningful without errors.
pub fn plan(
    path: &str,
    c: &PrometheusReceiverConfig,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<Job> {
    if c.target_allocator.is_some() {
        errors.push(format!("{path}.target_allocator: the target allocator is not supported; list scrape jobs under config.scrape_configs"));
    }
    if !c.config.scrape_config_files.is_empty() {
        errors.push(format!(
            "{path}.config.scrape_config_files: not supported; put the jobs under config.scrape_configs"
        ));
    }
    for (set, field) in [
        (c.use_start_time_metric, "use_start_time_metric"),
        (c.start_time_metric_regex.is_some(), "start_time_metric_regex"),
        (c.trim_metric_suffixes, "trim_metric_suffixes"),
        (c.report_extra_scrape_metrics, "report_extra_scrape_metrics"),
        (c.api_server.is_some(), "api_server"),
    ] {
        if set {
            warnings.push(format!("{path}.{field}: not supported by this collector; ignored"));
        }
    }
    let (g_interval, g_timeout) =
        global_durations(&format!("{path}.config.global"), c.config.global.as_ref(), errors, warnings);
    let mut names = std::collections::BTreeSet::new();
    let mut jobs = Vec::new();
    for (i, sc) in c.config.scrape_configs.iter().enumerate() {
        let sp = format!("{path}.config.scrape_configs[{i}]");
        if sc.job_name.is_empty() {
            errors.push(format!("{sp}.job_name: required"));
        } else if !names.insert(sc.job_name.clone()) {
            errors.push(format!("{sp}.job_name: duplicate job name {:?}", sc.job_name));
        }
        if let Some(job) = plan_job(&sp, sc, g_interval, g_timeout, errors, warnings) {
            jobs.push(job);
        }
    }
    jobs
}

/// The label and field selector of a pod discovery entry's `selectors` (at `kp`), checked as
/// Prometheus checks them at load (one entry per role, roles the discovery role allows) and as the
/// API server would check the selectors themselves.
fn pod_selectors(
    kp: &str,
    sd_role: &str,
    selectors: &[KubernetesSelector],
    errors: &mut Vec<String>,
) -> (Option<String>, Option<String>) {
    let (mut label, mut field) = (None, None);
    let mut seen = std::collections::BTreeSet::new();
    for (k, sel) in selectors.iter().enumerate() {
        let sp = format!("{kp}.selectors[{k}]");
        if !seen.insert(sel.role.as_str()) {
            errors.push(format!("{sp}.role: duplicate selector role {:?} (one entry per role)", sel.role));
            continue;
        }
        if sel.role != "pod" {
            // The role's own error is reported once, on `role`; here only what concerns selectors.
            if sd_role == "pod" {
                errors.push(format!("{sp}.role: pod discovery supports only pod selectors, not {:?}", sel.role));
            }
            continue;
        }
        let non_empty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(l) = non_empty(&sel.label) {
            match super::selectors::check_label_selector(&l) {
                Ok(()) => label = Some(l),
                Err(e) => errors.push(format!("{sp}.label: {e}")),
            }
        }
        // An empty field value is meaningful (`spec.nodeName=`: unscheduled pods), so only a wholly
        // empty selector counts as unset.
        if let Some(f) = non_empty(&sel.field) {
            match super::selectors::check_pod_field_selector(&f) {
                Ok(()) => field = Some(f),
                Err(e) => errors.push(format!("{sp}.field: {e}")),
            }
        }
    }
    (label, field)
}

fn plan_job(
    sp: &str,
    sc: &ScrapeConfig,
    g_interval: Duration,
    g_timeout: Duration,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<Job> {
    let before = errors.len();
    refuse_unsupported(sp, sc, errors, warnings);
    let interval = match sc.scrape_interval {
        Some(d) if d.is_zero() => {
            errors.push(format!("{sp}.scrape_interval: must be greater than zero"));
            g_interval
        }
        Some(d) => d,
        None => g_interval,
    };
    // As in Prometheus: an unset timeout is the global one, capped at the job's interval.
    let timeout = sc.scrape_timeout.unwrap_or(g_timeout.min(interval));
    if timeout > interval {
        errors.push(format!("{sp}.scrape_timeout: {timeout:?} is greater than scrape_interval {interval:?}"));
    }
    if timeout.is_zero() {
        errors.push(format!("{sp}.scrape_timeout: must be greater than zero"));
    }
    let scheme = sc.scheme.clone().unwrap_or_else(|| "http".into());
    if scheme != "http" && scheme != "https" {
        errors.push(format!("{sp}.scheme: must be http or https, not {scheme:?}"));
    }
    let metrics_path = sc.metrics_path.clone().unwrap_or_else(|| "/metrics".into());
    let static_targets = static_targets(sp, sc, errors);
    let pod_discovery = sc
        .kubernetes_sd_configs
        .iter()
        .enumerate()
        .map(|(j, sd)| pod_discovery(&format!("{sp}.kubernetes_sd_configs[{j}]"), sd, errors, warnings))
        .collect();
    let compile = |field: &str, rules, errors: &mut Vec<String>| match relabel::compile_all(rules) {
        Ok(r) => r,
        Err((k, e)) => {
            errors.push(format!("{sp}.{field}[{k}].{e}"));
            Vec::new()
        }
    };
    let relabel = compile("relabel_configs", &sc.relabel_configs, errors);
    let metric_relabel = compile("metric_relabel_configs", &sc.metric_relabel_configs, errors);
    if errors.len() > before {
        return None;
    }
    Some(Job {
        name: sc.job_name.clone(),
        interval,
        timeout,
        metrics_path,
        scheme,
        params: sc.params.clone().unwrap_or_default(),
        honor_labels: sc.honor_labels.unwrap_or(false),
        honor_timestamps: sc.honor_timestamps.unwrap_or(true),
        sample_limit: sc.sample_limit.unwrap_or(DEFAULT_SAMPLE_LIMIT),
        label_limits: Limits {
            label_limit: sc.label_limit.unwrap_or(DEFAULT_LABEL_LIMIT),
            label_name_length_limit: sc.label_name_length_limit.unwrap_or(DEFAULT_LABEL_NAME_LENGTH_LIMIT),
            label_value_length_limit: sc.label_value_length_limit.unwrap_or(DEFAULT_LABEL_VALUE_LENGTH_LIMIT),
        },
        follow_redirects: sc.follow_redirects.unwrap_or(true),
        relabel,
        metric_relabel,
        static_targets,
        pod_discovery,
    })
}

/// Refuses, by path, the scrape settings that change how a target is reached (its TLS, auth and
/// proxy) or which targets there are (file discovery), and warns of those only about format.
fn refuse_unsupported(sp: &str, sc: &ScrapeConfig, errors: &mut Vec<String>, warnings: &mut Vec<String>) {
    let refuse = |set: bool, field: &str, errors: &mut Vec<String>| {
        if set {
            errors.push(format!(
                "{sp}.{field}: not supported by this collector's prometheus receiver; scrapes would be sent without it"
            ));
        }
    };
    refuse(sc.tls_config.is_some(), "tls_config", errors);
    refuse(sc.basic_auth.is_some(), "basic_auth", errors);
    refuse(sc.authorization.is_some(), "authorization", errors);
    refuse(sc.bearer_token_file.is_some(), "bearer_token_file", errors);
    refuse(sc.proxy_url.is_some(), "proxy_url", errors);
    if sc.file_sd_configs.is_some() {
        errors.push(format!("{sp}.file_sd_configs: not supported; use static_configs or kubernetes_sd_configs"));
    }
    for (set, field) in [
        (sc.scrape_protocols.is_some(), "scrape_protocols"),
        (sc.scrape_classic_histograms.is_some(), "scrape_classic_histograms"),
    ] {
        if set {
            warnings.push(format!("{sp}.{field}: ignored; targets are scraped in the Prometheus text format"));
        }
    }
}

/// The `static_configs` targets, each as its label set with `__address__`.
fn static_targets(sp: &str, sc: &ScrapeConfig, errors: &mut Vec<String>) -> Vec<Labels> {
    let mut static_targets = Vec::new();
    for (g, group) in sc.static_configs.iter().enumerate() {
        for (t, target) in group.targets.iter().enumerate() {
            if target.is_empty() || target.contains('/') {
                errors.push(format!(
                    "{sp}.static_configs[{g}].targets[{t}]: {target:?} is not host:port (no scheme or path)"
                ));
                continue;
            }
            let mut labels = group.labels.clone().into_iter().collect::<Labels>();
            labels.insert("__address__".into(), target.clone());
            static_targets.push(labels);
        }
        for name in group.labels.keys() {
            if !relabel::is_valid_label_name(name) {
                errors.push(format!("{sp}.static_configs[{g}].labels.{name}: invalid label name"));
            }
        }
    }
    static_targets
}

/// One `kubernetes_sd_configs` entry (at `kp`) as pod discovery; only the pod role, reached with
/// the in-cluster credentials, is implemented.
fn pod_discovery(
    kp: &str,
    sd: &KubernetesSdConfig,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> PodDiscovery {
    if sd.role != "pod" {
        let known = ["service", "endpoints", "endpointslice", "node", "ingress"].contains(&sd.role.as_str());
        errors.push(if known {
            format!("{kp}.role: role {:?} is not supported; only pod discovery is implemented", sd.role)
        } else {
            format!("{kp}.role: unknown role {:?}", sd.role)
        });
    }
    for (set, field) in [
        (sd.api_server.is_some(), "api_server"),
        (sd.kubeconfig_file.is_some(), "kubeconfig_file"),
        (sd.tls_config.is_some(), "tls_config"),
        (sd.bearer_token_file.is_some(), "bearer_token_file"),
        (sd.authorization.is_some(), "authorization"),
    ] {
        if set {
            errors.push(format!(
                "{kp}.{field}: not supported; the API server is reached with the in-cluster service account or KUBECONFIG"
            ));
        }
    }
    if sd.attach_metadata.is_some() {
        warnings.push(format!("{kp}.attach_metadata: not supported; ignored"));
    }
    let (label_selector, field_selector) = pod_selectors(kp, &sd.role, &sd.selectors, errors);
    let namespaces = match &sd.namespaces {
        Some(ns) if ns.own_namespace && ns.names.is_empty() => Namespaces::Own,
        Some(ns) if ns.own_namespace => {
            errors.push(format!("{kp}.namespaces: own_namespace and names cannot be combined"));
            Namespaces::Own
        }
        Some(ns) if !ns.names.is_empty() => Namespaces::Names(ns.names.clone()),
        _ => Namespaces::All,
    };
    PodDiscovery { namespaces, label_selector, field_selector }
}

impl Validate for PrometheusReceiverConfig {
    /// One function checks and compiles ([`plan`]), so what passes here is what runs.
    fn validate(&self, path: &str, check: &mut Check<'_>) {
        plan(path, self, &mut check.errors, &mut check.warnings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(yaml: &str) -> (Vec<Job>, Vec<String>, Vec<String>) {
        let c: PrometheusReceiverConfig = serde_yaml::from_str(yaml).expect("yaml");
        let (mut e, mut w) = (Vec::new(), Vec::new());
        let jobs = plan("receivers.prometheus", &c, &mut e, &mut w);
        (jobs, e, w)
    }

    #[test]
    fn scrape_limits_default_to_bounds_and_zero_means_unlimited() {
        let (jobs, e, _) = run("config: {scrape_configs: [{job_name: a, static_configs: [{targets: ['h:1']}]}]}");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(jobs[0].sample_limit, DEFAULT_SAMPLE_LIMIT);
        let l = jobs[0].label_limits;
        assert_eq!(
            (l.label_limit, l.label_name_length_limit, l.label_value_length_limit),
            (DEFAULT_LABEL_LIMIT, DEFAULT_LABEL_NAME_LENGTH_LIMIT, DEFAULT_LABEL_VALUE_LENGTH_LIMIT)
        );
        let (jobs, e, _) = run(
            "config: {scrape_configs: [{job_name: a, sample_limit: 0, label_limit: 10, label_name_length_limit: 0, label_value_length_limit: 20, static_configs: [{targets: ['h:1']}]}]}",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(jobs[0].sample_limit, 0);
        assert_eq!(
            jobs[0].label_limits,
            Limits { label_limit: 10, label_name_length_limit: 0, label_value_length_limit: 20 }
        );
    }

    #[test]
    fn defaults_and_global_overrides() {
        let (jobs, e, _) = run("config: {scrape_configs: [{job_name: a, static_configs: [{targets: ['h:1']}]}]}");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!((jobs[0].interval, jobs[0].timeout), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT));
        assert_eq!((jobs[0].metrics_path.as_str(), jobs[0].scheme.as_str()), ("/metrics", "http"));
        assert!(jobs[0].honor_timestamps && !jobs[0].honor_labels);
        let (jobs, e, _) = run(
            "config: {global: {scrape_interval: 20s, scrape_timeout: 15s}, scrape_configs: [{job_name: a}, {job_name: b, scrape_interval: 5s}]}",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!((jobs[0].interval, jobs[0].timeout), (Duration::from_secs(20), Duration::from_secs(15)));
        assert_eq!(
            (jobs[1].interval, jobs[1].timeout),
            (Duration::from_secs(5), Duration::from_secs(5)),
            "the global timeout is capped at the job's interval"
        );
        assert_eq!(jobs[0].static_targets.len(), 0);
    }

    #[test]
    fn static_targets_carry_group_labels() {
        let (jobs, e, _) = run(
            "config: {scrape_configs: [{job_name: a, static_configs: [{targets: ['h:1', 'g:2'], labels: {env: x}}]}]}",
        );
        assert!(e.is_empty());
        assert_eq!(jobs[0].static_targets.len(), 2);
        assert_eq!(jobs[0].static_targets[1]["__address__"], "g:2");
        assert_eq!(jobs[0].static_targets[1]["env"], "x");
    }

    #[test]
    fn unsupported_features_are_refused_with_their_path() {
        let (_, e, _) = run(r#"
target_allocator: {endpoint: x}
config:
  scrape_configs:
    - job_name: a
      basic_auth: {username: u}
      file_sd_configs: [{files: [x]}]
      scheme: ftp
      scrape_interval: 5s
      scrape_timeout: 10s
      static_configs: [{targets: ['http://h:1/metrics']}]
      kubernetes_sd_configs: [{role: service}, {role: pod, kubeconfig_file: /k}, {role: nonsense}]
      relabel_configs: [{action: keep, regex: '('}]
      metric_relabel_configs: [{action: replace}]
"#);
        let want = [
            "receivers.prometheus.target_allocator: the target allocator is not supported",
            "receivers.prometheus.config.scrape_configs[0].basic_auth: not supported",
            "receivers.prometheus.config.scrape_configs[0].file_sd_configs: not supported",
            "receivers.prometheus.config.scrape_configs[0].scheme: must be http or https",
            "receivers.prometheus.config.scrape_configs[0].scrape_timeout: 10s is greater than scrape_interval 5s",
            "receivers.prometheus.config.scrape_configs[0].static_configs[0].targets[0]: \"http://h:1/metrics\" is not host:port",
            "receivers.prometheus.config.scrape_configs[0].kubernetes_sd_configs[0].role: role \"service\" is not supported",
            "receivers.prometheus.config.scrape_configs[0].kubernetes_sd_configs[1].kubeconfig_file: not supported",
            "receivers.prometheus.config.scrape_configs[0].kubernetes_sd_configs[2].role: unknown role \"nonsense\"",
            "receivers.prometheus.config.scrape_configs[0].relabel_configs[0].regex: invalid regex",
            "receivers.prometheus.config.scrape_configs[0].metric_relabel_configs[0].target_label: required",
        ];
        for w in want {
            assert!(e.iter().any(|x| x.starts_with(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn presentation_knobs_only_warn() {
        let (jobs, e, w) = run(
            "trim_metric_suffixes: true\nconfig: {global: {external_labels: {a: b}, evaluation_interval: 1m}, scrape_configs: [{job_name: a}]}",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            w,
            [
                "receivers.prometheus.trim_metric_suffixes: not supported by this collector; ignored",
                "receivers.prometheus.config.global.external_labels: not supported by this collector; ignored",
            ]
        );
    }

    #[test]
    fn namespaces_select_the_watch_scope() {
        let (jobs, e, _) = run(
            "config: {scrape_configs: [{job_name: a, kubernetes_sd_configs: [{role: pod}, {role: pod, namespaces: {names: [x, y]}}, {role: pod, namespaces: {own_namespace: true}}]}]}",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            jobs[0].pod_discovery,
            [
                PodDiscovery::all_pods(Namespaces::All),
                PodDiscovery::all_pods(Namespaces::Names(vec!["x".into(), "y".into()])),
                PodDiscovery::all_pods(Namespaces::Own),
            ]
        );
    }

    #[test]
    fn pod_selectors_reach_the_watch_in_upstreams_shape() {
        let (jobs, e, _) = run(r#"
config:
  scrape_configs:
    - job_name: a
      kubernetes_sd_configs:
        - role: pod
          selectors:
            - {role: pod, field: "spec.nodeName=node-1", label: "app=reviews"}
"#);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            jobs[0].pod_discovery,
            [PodDiscovery {
                namespaces: Namespaces::All,
                label_selector: Some("app=reviews".into()),
                field_selector: Some("spec.nodeName=node-1".into()),
            }]
        );
    }

    #[test]
    fn selectors_the_discovery_or_the_api_server_would_refuse_name_their_path() {
        let (_, e, _) = run(r#"
config:
  scrape_configs:
    - job_name: a
      kubernetes_sd_configs:
        - role: pod
          selectors:
            - {role: node, field: "metadata.name=n"}
            - {role: pod, field: "spec.nodeNmae=node-1"}
            - {role: pod, label: "app=x"}
        - role: pod
          selectors: [{role: pod, label: "app in prod"}]
"#);
        let p = "receivers.prometheus.config.scrape_configs[0].kubernetes_sd_configs";
        let want = [
            format!("{p}[0].selectors[0].role: pod discovery supports only pod selectors, not \"node\""),
            format!("{p}[0].selectors[1].field: \"spec.nodeNmae\" is not a field the API server can select pods by"),
            format!("{p}[0].selectors[2].role: duplicate selector role \"pod\""),
            format!("{p}[1].selectors[0].label: \"app in prod\" is not a valid label key"),
        ];
        for w in &want {
            assert!(e.iter().any(|x| x.starts_with(w.as_str())), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }
}
