//! Wiring of the two controllers (watches, stores, contexts); the library entry tests run in-process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::context::{Config, Context, OwnWrites};
use crate::crd::{InstrumentedService, TargetKind, TelemetryPipeline};
use crate::metrics::Metrics;
use crate::names::{INSTANCE_LABEL, MANAGED_BY};
use crate::{isvc, pipeline};

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reconciles of InstrumentedServices in flight at once. Bounded so that a burst (1000 objects
/// applied at once) queues instead of holding a thousand requests and responses in memory.
const ISVC_CONCURRENCY: u16 = 16;
/// Reconciles of TelemetryPipelines in flight at once.
const PIPELINE_CONCURRENCY: u16 = 4;

/// Remembers what was last seen of each watched object, so that only relevant changes trigger
/// reconciles: without it every status update of a pipeline would requeue all of its
/// InstrumentedServices, and every status update of a Deployment its InstrumentedService.
#[derive(Debug, Default)]
struct SeenFilter<V> {
    seen: Mutex<HashMap<String, V>>,
}

impl<V: PartialEq> SeenFilter<V> {
    /// True when `value` differs from what was last seen for `obj` (or `obj` is being deleted).
    /// Forgets a deleted object.
    fn forget<K: Resource>(&self, obj: &K) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(obj.meta().uid.as_deref().unwrap_or_default());
        }
    }

    fn changed<K: Resource>(&self, obj: &K, value: V) -> bool {
        let uid = obj.meta().uid.clone().unwrap_or_default();
        let Ok(mut seen) = self.seen.lock() else { return true };
        if obj.meta().deletion_timestamp.is_some() {
            seen.remove(&uid);
            return true;
        }
        match seen.get(&uid) {
            Some(v) if *v == value => false,
            _ => {
                seen.insert(uid, value);
                true
            }
        }
    }
}

/// What of a collector pod can change its pipeline's rollout health: per container, readiness and
/// the waiting reason (restart counts and timestamps churn without changing the outcome).
fn pod_health(p: &Pod) -> Vec<(String, bool, Option<String>)> {
    let status = p.status.as_ref();
    let statuses = status.and_then(|s| s.init_container_statuses.as_ref()).into_iter().flatten();
    let statuses = statuses.chain(status.and_then(|s| s.container_statuses.as_ref()).into_iter().flatten());
    statuses
        .map(|c| {
            let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.clone());
            (c.name.clone(), c.ready, waiting)
        })
        .collect()
}

/// What of a pipeline the injection depends on: the endpoints its workloads are given (the Service's,
/// or an agent's node IP), whether it scrapes, which other namespaces may attach, and where it
/// discovers pods (an attached namespace's ScrapeConfigured waits for it).
type InjectedView = (crate::agent::AppEndpoints, bool, Option<crate::crd::AllowedNamespaces>, Vec<String>);

/// The [`InjectedView`] of a pipeline.
fn injected_view(tp: &TelemetryPipeline) -> InjectedView {
    (
        crate::agent::app_endpoints(tp),
        tp.spec.receivers.prometheus.as_ref().is_some_and(|p| p.enabled),
        tp.spec.allowed_namespaces.clone(),
        tp.status.as_ref().and_then(|s| s.scrape.as_ref()).map(|s| s.namespaces.clone()).unwrap_or_default(),
    )
}

/// What of an InstrumentedService can change its reconcile's outcome: its spec (generation) and
/// whether it is being deleted.
fn spec_or_deletion(i: &InstrumentedService) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (i.metadata.generation, i.metadata.deletion_timestamp.is_some()).hash(&mut h);
    Some(h.finish())
}

/// Maps a workload event to the InstrumentedServices targeting it: spec changes and first sight only,
/// and not the change our own injection just made.
fn targeting<K: Resource>(
    store: kube::runtime::reflector::Store<InstrumentedService>,
    kind: TargetKind,
    own_writes: Arc<OwnWrites>,
) -> impl Fn(K) -> Vec<ObjectRef<InstrumentedService>> + Send + Sync + 'static {
    let filter = SeenFilter::<Option<i64>>::default();
    move |w: K| {
        if !filter.changed(&w, w.meta().generation) {
            return Vec::new();
        }
        if own_writes.is_own(w.meta().uid.as_deref().unwrap_or_default(), w.meta().generation) {
            return Vec::new();
        }
        let (ns, name) = (&w.meta().namespace, w.meta().name.as_deref().unwrap_or_default());
        // Compared in place: this runs over every InstrumentedService for each workload event.
        store
            .state()
            .iter()
            .filter(|i| i.spec.target.name == name && i.spec.target.kind == kind && &i.metadata.namespace == ns)
            .map(|i| ObjectRef::from_obj(&**i))
            .collect()
    }
}

fn watch_workloads<K>(
    ctrl: Controller<InstrumentedService>,
    client: &Client,
    ns: Option<&str>,
    kind: TargetKind,
    own_writes: Arc<OwnWrites>,
) -> Controller<InstrumentedService>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let store = ctrl.store();
    ctrl.watches(api::<K>(client, ns), watcher::Config::default(), targeting::<K>(store, kind, own_writes))
}

/// Runs both controllers until the future is dropped or a controller stream ends.
pub async fn run_controllers(client: Client, config: Config, metrics: Metrics) {
    let ns = config.namespace.clone();
    let ns = ns.as_deref();
    let config = Arc::new(config);
    let managed = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));

    // An InstrumentedService is reconciled when its spec changes (generation) or its deletion starts,
    // not on its own status writes or the finalizer we add: those cannot change the outcome, and each
    // used to cost one more reconcile per object.
    let (isvc_reader, isvc_writer) = reflector::store();
    let isvc_events = watcher::watcher(api::<InstrumentedService>(&client, ns), watcher::Config::default())
        .default_backoff()
        .reflect(isvc_writer)
        .applied_objects()
        .predicate_filter(spec_or_deletion, PredicateConfig::default());
    let isvc_ctrl = Controller::for_stream(isvc_events, isvc_reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(ISVC_CONCURRENCY));
    let own_writes = Arc::new(OwnWrites::default());
    let isvc_store = isvc_ctrl.store();
    let by_pipeline = isvc_store.clone();
    // A pipeline matters to its InstrumentedServices only through what is injected: its endpoints and
    // whether it scrapes, and its existence. Its status writes (readiness, attached list) change
    // neither, so they are dropped here instead of re-reconciling every attached InstrumentedService.
    // A raw watcher stream is used because deletions must always pass, and a deleted pipeline's last
    // state can be identical to the one already seen (no finalizer, so no deletionTimestamp).
    let pipeline_seen = SeenFilter::<InjectedView>::default();
    let (pipeline_reader, pipeline_writer) = reflector::store();
    let pipeline_events = watcher::watcher(api::<TelemetryPipeline>(&client, ns), watcher::Config::default())
        .default_backoff()
        .reflect(pipeline_writer)
        .filter_map(move |event| {
            let out = match event {
                Ok(watcher::Event::Delete(tp)) => {
                    pipeline_seen.forget(&tp);
                    Some(Ok(tp))
                }
                Ok(watcher::Event::Apply(tp) | watcher::Event::InitApply(tp)) => {
                    pipeline_seen.changed(&tp, injected_view(&tp)).then_some(Ok(tp))
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(out)
        });
    let isvc_ctrl = isvc_ctrl.watches_stream(pipeline_events, move |tp: TelemetryPipeline| {
        let key = (tp.namespace().unwrap_or_default(), tp.name_any());
        by_pipeline
            .state()
            .iter()
            .filter(|i| isvc::pipeline_key(i) == key)
            .map(|i| ObjectRef::from_obj(&**i))
            .collect::<Vec<_>>()
    });
    let isvc_ctrl = watch_workloads::<Deployment>(isvc_ctrl, &client, ns, TargetKind::Deployment, own_writes.clone());
    let isvc_ctrl = watch_workloads::<StatefulSet>(isvc_ctrl, &client, ns, TargetKind::StatefulSet, own_writes.clone());
    let isvc_ctrl = watch_workloads::<DaemonSet>(isvc_ctrl, &client, ns, TargetKind::DaemonSet, own_writes.clone());

    let ctx = Arc::new(Context::new(client.clone(), metrics, config, isvc_store, pipeline_reader, own_writes));
    let isvc_seen = SeenFilter::<((String, String), bool)>::default();
    let pod_seen = SeenFilter::<Vec<(String, bool, Option<String>)>>::default();
    // The debounce lets the InstrumentedService store (fed by another watch) catch up with the
    // event that triggered the reconcile, so the attached list in the status is current.
    let tp_ctrl = Controller::new(api::<TelemetryPipeline>(&client, ns), watcher::Config::default())
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(std::time::Duration::from_millis(500))
                .concurrency(PIPELINE_CONCURRENCY),
        )
        .owns(api::<ConfigMap>(&client, ns), managed.clone())
        .owns(api::<Service>(&client, ns), managed.clone())
        .owns(api::<Deployment>(&client, ns), managed.clone())
        .owns(api::<DaemonSet>(&client, ns), managed.clone())
        // A sharded gateway's StatefulSet: an HPA changing its replicas changes the shard count.
        .owns(api::<StatefulSet>(&client, ns), managed.clone())
        // Collector pods carry the reason a rollout fails (image pull, crash loop); they belong to a
        // ReplicaSet, not the pipeline, so they are mapped back through their instance label.
        .watches(api::<Pod>(&client, ns), managed, move |p: Pod| {
            if !pod_seen.changed(&p, pod_health(&p)) {
                return None;
            }
            let pipeline = p.labels().get(INSTANCE_LABEL)?.clone();
            Some(ObjectRef::new(&pipeline).within(&p.namespace()?))
        })
        .watches(api::<InstrumentedService>(&client, ns), watcher::Config::default(), move |i: InstrumentedService| {
            // The pipeline lists its InstrumentedServices and discovers pods where they ask for metrics:
            // only appearance, deletion, a changed pipelineRef and spec.metrics matter to it, not every
            // status update.
            let key = isvc::pipeline_key(&i);
            let metrics = i.spec.metrics.as_ref().is_some_and(|m| m.enabled);
            isvc_seen.changed(&i, (key.clone(), metrics)).then(|| ObjectRef::new(&key.1).within(&key.0))
        });

    let tp_run = tp_ctrl.run(pipeline::reconcile, pipeline::error_policy, ctx.clone()).for_each(|r| async move {
        match r {
            Ok((obj, _)) => debug!(object = %obj, "pipeline reconciled"),
            Err(e) => warn!(error = %e, "pipeline controller"),
        }
    });
    let isvc_run = isvc_ctrl.run(isvc::reconcile, isvc::error_policy, ctx).for_each(|r| async move {
        match r {
            Ok((obj, _)) => debug!(object = %obj, "instrumentedservice reconciled"),
            Err(e) => warn!(error = %e, "instrumentedservice controller"),
        }
    });
    futures::future::join(tp_run, isvc_run).await;
}
