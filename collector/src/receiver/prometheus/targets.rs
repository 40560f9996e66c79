//! From discovered label sets to scrape targets, pure: the job's defaults (`job`, `__scheme__`,
//! `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__`, `__param_*`) are added, the
//! job's `relabel_configs` run, and the surviving set gives the URL, the timing and the target's
//! labels (the `__` ones removed, `instance` defaulting to `__address__`), as in Prometheus.

use std::collections::BTreeMap;
use std::time::Duration;

use super::exposition;
use super::plan::Job;
use super::relabel::{self, Labels};
use crate::config::duration::parse_duration;

/// One discovery source's complete current target list (sources are numbered per job).
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Which source of the job.
    pub source: usize,
    /// All its targets, as discovery label sets.
    pub targets: Vec<Labels>,
}

/// A target ready to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Labels attached to everything scraped from it (`job`, `instance`, ...).
    pub labels: Labels,
    /// Discovery labels before relabeling (upstream derives `k8s.*` resource attributes from them).
    pub discovered: Labels,
    /// Full scrape URL.
    pub url: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Time between scrapes.
    pub interval: Duration,
    /// Per-scrape timeout.
    pub timeout: Duration,
}

impl Target {
    /// Identity used to tell whether a target is still wanted: labels and URL, as Prometheus
    /// hashes them. Timing is part of it too, so a changed interval restarts the loop.
    pub fn key(&self) -> String {
        let mut k = format!("{}|{:?}|{:?}", self.url, self.interval, self.timeout);
        for (n, v) in &self.labels {
            k.push('|');
            k.push_str(n);
            k.push('=');
            k.push_str(v);
        }
        k
    }
}

/// Why a discovered target cannot be scraped (it is skipped with a log line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Relabeling left no `__address__`.
    #[error("no __address__ label after relabeling")]
    NoAddress,
    /// `__address__` is not a plain `host[:port]`.
    #[error("__address__ {0:?} is not host:port")]
    BadAddress(String),
    /// `__scrape_interval__` / `__scrape_timeout__` does not parse or is zero.
    #[error("{label} {value:?}: {message}")]
    BadDuration {
        /// The label.
        label: &'static str,
        /// Its value.
        value: String,
        /// Why it is unusable.
        message: String,
    },
    /// `__scheme__` is neither `http` nor `https`.
    #[error("__scheme__ {0:?} is not http or https")]
    BadScheme(String),
    /// `__metrics_path__` does not start with `/` (e.g. a pod annotation
    /// `prometheus.io/path: "@169.254.169.254/x"`, which concatenated after the address would
    /// make the address a user name and fetch another host).
    #[error("__metrics_path__ {0:?} must start with '/'")]
    BadPath(String),
}

fn fmt_duration(d: Duration) -> String {
    // Prometheus renders whole seconds as `15s`; sub-second intervals as milliseconds.
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

fn duration_label(labels: &Labels, label: &'static str) -> Result<Duration, TargetError> {
    let value = labels.get(label).cloned().unwrap_or_default();
    let bad = |message: String| TargetError::BadDuration { label, value: value.clone(), message };
    let d = parse_duration(&value).map_err(bad)?;
    if d.is_zero() {
        return Err(bad("must be greater than zero".into()));
    }
    Ok(d)
}

/// Applies the job to one discovered label set; `Ok(None)` when relabeling drops it.
pub fn build(job: &Job, discovered: &Labels) -> Result<Option<Target>, TargetError> {
    let mut labels = discovered.clone();
    let defaults = [
        ("job", job.name.clone()),
        ("__scheme__", job.scheme.clone()),
        ("__metrics_path__", job.metrics_path.clone()),
        ("__scrape_interval__", fmt_duration(job.interval)),
        ("__scrape_timeout__", fmt_duration(job.timeout)),
    ];
    for (k, v) in defaults {
        labels.entry(k.to_owned()).or_insert(v);
    }
    for (k, v) in &job.params {
        if let Some(first) = v.first() {
            labels.entry(format!("__param_{k}")).or_insert_with(|| first.clone());
        }
    }
    let Some(labels) = relabel::apply(&job.relabel, labels) else { return Ok(None) };
    let address = labels.get("__address__").cloned().unwrap_or_default();
    if address.is_empty() {
        return Err(TargetError::NoAddress);
    }
    if address.contains('/') || address.contains('?') || address.contains('#') {
        return Err(TargetError::BadAddress(address));
    }
    let scheme = labels.get("__scheme__").cloned().unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        return Err(TargetError::BadScheme(scheme));
    }
    let interval = duration_label(&labels, "__scrape_interval__")?;
    let timeout = duration_label(&labels, "__scrape_timeout__")?;
    let mut params: BTreeMap<String, Vec<String>> = job.params.clone();
    for (k, v) in &labels {
        if let Some(name) = k.strip_prefix("__param_") {
            match params.get_mut(name) {
                Some(vals) if !vals.is_empty() => vals[0] = v.clone(),
                _ => {
                    params.insert(name.to_owned(), vec![v.clone()]);
                }
            }
        }
    }
    let path = labels.get("__metrics_path__").cloned().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(TargetError::BadPath(exposition::truncate(&path).into_owned()));
    }
    // Built as a URL from its parts, as Prometheus does (`url.URL{Scheme, Host, Path, RawQuery}`):
    // the address must be exactly the URL's authority (no user info), and the path is only a path.
    let mut url =
        url::Url::parse(&format!("{scheme}://{address}/")).map_err(|_| TargetError::BadAddress(address.clone()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::BadAddress(address));
    }
    url.set_path(&path);
    let query: Vec<String> =
        params.iter().flat_map(|(k, vs)| vs.iter().map(move |v| format!("{}={}", encode(k), encode(v)))).collect();
    if !query.is_empty() {
        url.set_query(Some(&query.join("&")));
    }
    let url = String::from(url);
    let mut public: Labels = labels.into_iter().filter(|(k, _)| !k.starts_with("__")).collect();
    public.entry("instance".into()).or_insert(address);
    Ok(Some(Target { labels: public, discovered: discovered.clone(), url, scheme, interval, timeout }))
}

/// Percent-encodes a query component (everything but unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// All targets of a job from its sources' latest lists, deduplicated by [`Target::key`];
/// unusable ones come back separately so the caller can log them.
pub fn build_all<'a>(
    job: &Job,
    sources: impl IntoIterator<Item = &'a Vec<Labels>>,
) -> (BTreeMap<String, Target>, Vec<(Labels, TargetError)>) {
    let mut targets = BTreeMap::new();
    let mut errors = Vec::new();
    for discovered in sources.into_iter().flatten() {
        match build(job, discovered) {
            Ok(Some(t)) => {
                targets.entry(t.key()).or_insert(t);
            }
            Ok(None) => {}
            Err(e) => errors.push((discovered.clone(), e)),
        }
    }
    (targets, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use collector_config::receiver::prometheus::config::PrometheusReceiverConfig;

    fn job(yaml: &str) -> Job {
        let c: PrometheusReceiverConfig = serde_yaml::from_str(yaml).expect("yaml");
        let (mut e, mut w) = (Vec::new(), Vec::new());
        let mut jobs = super::super::plan::plan("r", &c, &mut e, &mut w);
        assert!(e.is_empty(), "{e:?}");
        jobs.remove(0)
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn static_target_gets_job_instance_and_url() {
        let j = job(
            "config: {scrape_configs: [{job_name: db, scrape_interval: 15s, static_configs: [{targets: ['db:9187'], labels: {env: prod}}]}]}",
        );
        let t = build(&j, &j.static_targets[0]).expect("valid").expect("kept");
        assert_eq!(t.url, "http://db:9187/metrics");
        assert_eq!(t.labels, labels(&[("env", "prod"), ("instance", "db:9187"), ("job", "db")]));
        assert_eq!((t.interval, t.timeout), (Duration::from_secs(15), Duration::from_secs(10)));
    }

    #[test]
    fn relabeling_sets_path_scheme_params_and_interval() {
        let j = job(r#"
config:
  scrape_configs:
    - job_name: a
      params: {module: [http_2xx], x: [1, 2]}
      relabel_configs:
        - {target_label: __metrics_path__, replacement: /probe}
        - {target_label: __param_module, replacement: "tcp connect"}
        - {target_label: __scrape_interval__, replacement: 500ms}
        - {target_label: __scrape_timeout__, replacement: 250ms}
        - {target_label: instance, replacement: custom}
"#);
        let t = build(&j, &labels(&[("__address__", "h:1"), ("__meta_x", "y")])).expect("valid").expect("kept");
        assert_eq!(t.url, "http://h:1/probe?module=tcp%20connect&x=1&x=2");
        assert_eq!((t.interval, t.timeout), (Duration::from_millis(500), Duration::from_millis(250)));
        assert_eq!(t.labels, labels(&[("instance", "custom"), ("job", "a")]));
        assert_eq!(t.discovered["__meta_x"], "y");
    }

    #[test]
    fn dropped_duplicate_and_broken_targets() {
        let j = job(
            "config: {scrape_configs: [{job_name: a, relabel_configs: [{source_labels: [keep], regex: yes, action: keep}]}]}",
        );
        let sources = vec![vec![
            labels(&[("__address__", "h:1"), ("keep", "yes")]),
            labels(&[("__address__", "h:1"), ("keep", "yes")]),
            labels(&[("__address__", "h:2"), ("keep", "no")]),
            labels(&[("keep", "yes")]),
            labels(&[("__address__", "h:3/x"), ("keep", "yes")]),
        ]];
        let (targets, errors) = build_all(&j, &sources);
        assert_eq!(targets.len(), 1, "the duplicate collapses, the unkept one is gone");
        let errs: Vec<String> = errors.iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(errs, ["no __address__ label after relabeling", "__address__ \"h:3/x\" is not host:port"]);
    }

    #[test]
    fn operator_job_through_env_expansion_rewrites_the_address() {
        // `$$1:$$2` as operator/src/config.rs renders it; a bare `$1` must survive expansion too.
        for replacement in ["$$1:$$2", "$1:$2"] {
            let yaml = format!(
                r#"
receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: telemetry-pipeline/obs/main
          kubernetes_sd_configs: [{{role: pod, namespaces: {{names: [obs]}}}}]
          relabel_configs:
            - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
              action: replace
              regex: ([^:]+)(?::\d+)?;(\d+)
              replacement: {replacement}
              target_label: __address__
exporters:
  debug:
service:
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [debug]
"#
            );
            let cfg = crate::config::Config::from_yaml_str(&yaml, &|_| None).expect("valid config");
            let crate::registry::ReceiverConfig::Prometheus(c) = &cfg.receivers["prometheus"] else { panic!() };
            let (mut e, mut w) = (Vec::new(), Vec::new());
            let jobs = super::super::plan::plan("r", c, &mut e, &mut w);
            let pod = labels(&[
                ("__address__", "10.1.2.3:8080"),
                ("__meta_kubernetes_pod_annotation_prometheus_io_port", "9464"),
            ]);
            let t = build(&jobs[0], &pod).expect("valid").expect("kept");
            assert_eq!(t.url, "http://10.1.2.3:9464/metrics", "replacement {replacement}");
        }
    }

    #[test]
    fn a_path_or_address_that_would_name_another_host_is_refused() {
        let j = job(r#"
config:
  scrape_configs:
    - job_name: pods
      static_configs: [{targets: ['x:1']}]
      relabel_configs:
        - {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path], regex: (.+), target_label: __metrics_path__}
"#);
        // The annotation as a pod would carry it; nothing is fetched (build is pure).
        let pod = |path: &str| {
            labels(&[("__address__", "10.1.2.3:8080"), ("__meta_kubernetes_pod_annotation_prometheus_io_path", path)])
        };
        assert_eq!(
            build(&j, &pod("@169.254.169.254/x")),
            Err(TargetError::BadPath("@169.254.169.254/x".into())),
            "concatenated, this URL's host would be 169.254.169.254"
        );
        assert_eq!(build(&j, &pod("x")), Err(TargetError::BadPath("x".into())));
        let t = build(&j, &pod("/stats?x=1")).expect("valid").expect("kept");
        assert_eq!(t.url, "http://10.1.2.3:8080/stats%3Fx=1", "a path stays a path, as in Prometheus");
        let evil = labels(&[("__address__", "evil@169.254.169.254:80")]);
        assert!(matches!(build(&j, &evil), Err(TargetError::BadAddress(_))));
    }
}
