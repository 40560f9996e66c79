//! `kubernetes_sd_configs` with role `pod`: [`pod_targets`] turns a Pod into Prometheus' target
//! label sets (pure), and [`watch_pods`] keeps a namespace's (or the cluster's) set current with
//! a kube-rs watcher, sending the whole set of a source on every change. The entry's `selectors`
//! go to the API server with the list and the watch (as in Prometheus), so a collector that only
//! wants its own node's pods (`spec.nodeName=...`) is never sent the others.
//!
//! As in Prometheus, a pod yields one target per declared container port
//! (`__address__ = podIP:port`), or one per container without ports (`__address__ = podIP`);
//! pods without an IP yet yield nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::relabel::Labels;
use super::targets::Update;

const META: &str = "__meta_kubernetes_pod_";

/// Prometheus' `SanitizeLabelName`: every character outside `[a-zA-Z0-9_]` becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// `true`/`false`/`unknown` from the pod's `Ready` condition, as Prometheus reports it.
fn ready(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.to_lowercase())
        .unwrap_or_else(|| "unknown".into())
}

/// `host:port` with brackets around IPv6 hosts.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The labels every target of `pod` shares.
fn pod_labels(pod: &Pod, ip: &str) -> Labels {
    let mut l = Labels::new();
    let meta = &pod.metadata;
    let mut put = |k: String, v: &str| {
        l.insert(k, v.to_owned());
    };
    put("__meta_kubernetes_namespace".into(), meta.namespace.as_deref().unwrap_or_default());
    put(format!("{META}name"), meta.name.as_deref().unwrap_or_default());
    put(format!("{META}ip"), ip);
    put(format!("{META}ready"), &ready(pod));
    put(format!("{META}uid"), meta.uid.as_deref().unwrap_or_default());
    for (k, v) in meta.labels.iter().flatten() {
        put(format!("{META}label_{}", sanitize(k)), v);
        put(format!("{META}labelpresent_{}", sanitize(k)), "true");
    }
    for (k, v) in meta.annotations.iter().flatten() {
        put(format!("{META}annotation_{}", sanitize(k)), v);
        put(format!("{META}annotationpresent_{}", sanitize(k)), "true");
    }
    if let Some(owner) = meta.owner_references.iter().flatten().find(|o| o.controller == Some(true)) {
        put(format!("{META}controller_kind"), &owner.kind);
        put(format!("{META}controller_name"), &owner.name);
    }
    if let Some(status) = &pod.status {
        put(format!("{META}phase"), status.phase.as_deref().unwrap_or_default());
        put(format!("{META}host_ip"), status.host_ip.as_deref().unwrap_or_default());
    }
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        put(format!("{META}node_name"), node);
    }
    // Prometheus omits empty values (a label with an empty value does not exist).
    l.retain(|_, v| !v.is_empty());
    l
}

/// A running container's id (`containerd://…`), when the status reports one.
fn container_id(pod: &Pod, name: &str, init: bool) -> Option<String> {
    let status = pod.status.as_ref()?;
    let list = if init { status.init_container_statuses.as_ref() } else { status.container_statuses.as_ref() };
    list?.iter().find(|s| s.name == name)?.container_id.clone()
}

/// Prometheus' target label sets for one pod.
pub fn pod_targets(pod: &Pod) -> Vec<Labels> {
    let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).filter(|ip| !ip.is_empty()) else {
        return Vec::new();
    };
    let common = pod_labels(pod, ip);
    let spec = pod.spec.as_ref();
    let containers = spec.map(|s| s.containers.iter().map(|c| (c, false))).into_iter().flatten();
    let inits = spec.and_then(|s| s.init_containers.as_ref()).into_iter().flatten().map(|c| (c, true));
    let mut out = Vec::new();
    for (c, init) in containers.chain(inits) {
        let base = container_labels(&common, pod, c, init);
        let ports = c.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            let mut l = base;
            l.insert("__address__".into(), ip.to_owned());
            out.push(l);
            continue;
        }
        for p in ports {
            let mut l = base.clone();
            l.insert("__address__".into(), join_host_port(ip, p.container_port));
            l.insert(format!("{META}container_port_number"), p.container_port.to_string());
            l.insert(format!("{META}container_port_protocol"), p.protocol.clone().unwrap_or_else(|| "TCP".into()));
            if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
                l.insert(format!("{META}container_port_name"), n.to_owned());
            }
            out.push(l);
        }
    }
    out
}

fn container_labels(common: &Labels, pod: &Pod, c: &Container, init: bool) -> Labels {
    let mut l = common.clone();
    l.insert(format!("{META}container_name"), c.name.clone());
    l.insert(format!("{META}container_init"), init.to_string());
    if let Some(image) = c.image.as_deref().filter(|i| !i.is_empty()) {
        l.insert(format!("{META}container_image"), image.to_owned());
    }
    if let Some(id) = container_id(pod, &c.name, init) {
        l.insert(format!("{META}container_id"), id);
    }
    l
}

/// How long to wait before trying to build a kube client again after it failed.
const CLIENT_RETRY: Duration = Duration::from_secs(10);

/// Builds a client from `KUBECONFIG` / `~/.kube/config`, or the in-cluster service account;
/// retries until it works or `stop` fires (a missing cluster must not stop the collector).
pub async fn client(job: &str, stop: &CancellationToken) -> Option<Client> {
    loop {
        match Client::try_default().await {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::error!(job, error = %e, "kubernetes_sd_configs: cannot reach the Kubernetes API; pod discovery retries in 10s");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(CLIENT_RETRY) => {}
        }
    }
}

/// The collector's namespace when it runs in a pod.
pub fn own_namespace() -> Option<String> {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// One pod watch: where, and what the API server filters it by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// The namespace watched; `None` for every namespace.
    pub namespace: Option<String>,
    /// Label selector sent with the list and watch.
    pub label_selector: Option<String>,
    /// Field selector sent with the list and watch (e.g. `spec.nodeName=node-1`).
    pub field_selector: Option<String>,
}

impl Watch {
    /// The watcher's config: the selectors, applied by the API server.
    fn config(&self) -> watcher::Config {
        let mut config = watcher::Config::default();
        if let Some(l) = &self.label_selector {
            config = config.labels(l);
        }
        if let Some(f) = &self.field_selector {
            config = config.fields(f);
        }
        config
    }
}

/// Watches pods as `watch` says and sends `source`'s full target list on `tx` whenever it
/// changes, until `stop` fires or the receiving side goes away. Watch errors are logged and
/// retried with kube-rs' default backoff; the last known targets stay in place.
pub async fn watch_pods(
    client: Client,
    watch: Watch,
    job: String,
    source: usize,
    tx: mpsc::Sender<Update>,
    stop: CancellationToken,
) {
    let namespace = watch.namespace.clone();
    let api: Api<Pod> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut events = watcher(api, watch.config()).boxed();
    // Pods by namespace/name; `relisting` collects a fresh list between Init and InitDone so
    // pods deleted while the watch was down disappear too.
    let mut pods: BTreeMap<String, Vec<Labels>> = BTreeMap::new();
    let mut relisting: Option<BTreeMap<String, Vec<Labels>>> = None;
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            e = events.next() => e,
        };
        let Some(event) = event else { return };
        let changed = match event {
            Ok(Event::Init) => {
                relisting = Some(BTreeMap::new());
                false
            }
            Ok(Event::InitApply(pod)) => {
                if let Some(r) = relisting.as_mut() {
                    r.insert(key(&pod), pod_targets(&pod));
                }
                false
            }
            Ok(Event::InitDone) => {
                pods = relisting.take().unwrap_or_default();
                true
            }
            Ok(Event::Apply(pod)) => {
                let targets = pod_targets(&pod);
                pods.insert(key(&pod), targets.clone()).as_ref() != Some(&targets)
            }
            Ok(Event::Delete(pod)) => pods.remove(&key(&pod)).is_some(),
            Err(e) => {
                tracing::warn!(
                    job, namespace = ?namespace, fields = ?watch.field_selector, labels = ?watch.label_selector,
                    error = %e, "pod watch failed; retrying"
                );
                false
            }
        };
        if changed {
            let targets = pods.values().flatten().cloned().collect();
            if tx.send(Update { source, targets }).await.is_err() {
                return;
            }
        }
    }
}

fn watcher(
    api: Api<Pod>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<Event<Pod>, watcher::Error>> + Send {
    watcher::watcher(api, config).default_backoff()
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_yaml::from_str(yaml).expect("pod yaml")
    }

    const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: reviews-7d9f-abcde
  namespace: obs
  uid: 1234-5678
  labels:
    app.kubernetes.io/name: reviews
    telemetry.thereview.dev/pipeline: main
  annotations:
    prometheus.io/scrape: "true"
    prometheus.io/port: "9464"
  ownerReferences:
    - {apiVersion: apps/v1, kind: ReplicaSet, name: reviews-7d9f, uid: x, controller: true}
spec:
  nodeName: node-1
  initContainers:
    - {name: migrate, image: migrate:1}
  containers:
    - name: app
      image: reviews:1
      ports:
        - {containerPort: 8080, name: http}
        - {containerPort: 9464, protocol: TCP}
    - {name: sidecar, image: proxy:2}
status:
  phase: Running
  podIP: 10.1.2.3
  hostIP: 192.168.0.10
  conditions:
    - {type: Ready, status: "True"}
  containerStatuses:
    - {name: app, containerID: "containerd://abc", image: reviews:1, imageID: "", ready: true, restartCount: 0}
"#;

    #[test]
    fn one_target_per_port_or_portless_container_with_meta_labels() {
        let targets = pod_targets(&pod(POD));
        let addrs: Vec<(&str, &str)> = targets
            .iter()
            .map(|t| (t["__address__"].as_str(), t["__meta_kubernetes_pod_container_name"].as_str()))
            .collect();
        assert_eq!(
            addrs,
            [("10.1.2.3:8080", "app"), ("10.1.2.3:9464", "app"), ("10.1.2.3", "sidecar"), ("10.1.2.3", "migrate")]
        );
        let t = &targets[0];
        for (k, v) in [
            ("__meta_kubernetes_namespace", "obs"),
            ("__meta_kubernetes_pod_name", "reviews-7d9f-abcde"),
            ("__meta_kubernetes_pod_ip", "10.1.2.3"),
            ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "reviews"),
            ("__meta_kubernetes_pod_labelpresent_telemetry_thereview_dev_pipeline", "true"),
            ("__meta_kubernetes_pod_label_telemetry_thereview_dev_pipeline", "main"),
            ("__meta_kubernetes_pod_annotation_prometheus_io_scrape", "true"),
            ("__meta_kubernetes_pod_annotationpresent_prometheus_io_port", "true"),
            ("__meta_kubernetes_pod_container_port_number", "8080"),
            ("__meta_kubernetes_pod_container_port_name", "http"),
            ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ("__meta_kubernetes_pod_container_image", "reviews:1"),
            ("__meta_kubernetes_pod_container_id", "containerd://abc"),
            ("__meta_kubernetes_pod_container_init", "false"),
            ("__meta_kubernetes_pod_phase", "Running"),
            ("__meta_kubernetes_pod_ready", "true"),
            ("__meta_kubernetes_pod_node_name", "node-1"),
            ("__meta_kubernetes_pod_host_ip", "192.168.0.10"),
            ("__meta_kubernetes_pod_uid", "1234-5678"),
            ("__meta_kubernetes_pod_controller_kind", "ReplicaSet"),
            ("__meta_kubernetes_pod_controller_name", "reviews-7d9f"),
        ] {
            assert_eq!(t.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(targets[3]["__meta_kubernetes_pod_container_init"], "true");
    }

    #[test]
    fn pods_without_ip_have_no_targets_and_readiness_defaults_to_unknown() {
        let mut p = pod(POD);
        p.status.as_mut().expect("status").pod_ip = None;
        assert!(pod_targets(&p).is_empty());
        let mut p = pod(POD);
        p.status.as_mut().expect("status").conditions = None;
        assert_eq!(pod_targets(&p)[0]["__meta_kubernetes_pod_ready"], "unknown");
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let mut p = pod(POD);
        p.status.as_mut().expect("status").pod_ip = Some("fd00::1".into());
        assert_eq!(pod_targets(&p)[0]["__address__"], "[fd00::1]:8080");
    }

    #[test]
    fn a_watch_sends_its_selectors_to_the_api_server() {
        let w = Watch {
            namespace: Some("obs".into()),
            label_selector: Some("app=reviews".into()),
            field_selector: Some("spec.nodeName=node-1".into()),
        };
        let c = w.config();
        assert_eq!(
            (c.label_selector.as_deref(), c.field_selector.as_deref()),
            (Some("app=reviews"), Some("spec.nodeName=node-1"))
        );
        let c = Watch::default().config();
        assert_eq!((c.label_selector, c.field_selector), (None, None));
    }

    #[test]
    fn sanitize_replaces_everything_but_word_characters() {
        assert_eq!(sanitize("prometheus.io/scrape"), "prometheus_io_scrape");
        assert_eq!(sanitize("a-b_c9"), "a_b_c9");
    }
}
