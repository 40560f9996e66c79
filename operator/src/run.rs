//! Wiring of the two controllers (watches, stores, contexts); the library entry tests run in-process.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::context::{Config, Context};
use crate::crd::{InstrumentedService, TargetKind, TelemetryPipeline};
use crate::metrics::Metrics;
use crate::resources::MANAGED_BY;
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

/// Maps a workload event to the InstrumentedServices targeting it.
fn targeting<K: Resource>(
    store: kube::runtime::reflector::Store<InstrumentedService>,
    kind: TargetKind,
) -> impl Fn(K) -> Vec<ObjectRef<InstrumentedService>> + Send + Sync + 'static {
    move |w: K| {
        let ns = w.meta().namespace.clone();
        let name = w.meta().name.clone().unwrap_or_default();
        store
            .state()
            .iter()
            .filter(|i| i.namespace() == ns && i.spec.target.kind == kind && i.spec.target.name == name)
            .map(|i| ObjectRef::from_obj(&**i))
            .collect()
    }
}

fn watch_workloads<K>(
    ctrl: Controller<InstrumentedService>,
    client: &Client,
    ns: Option<&str>,
    kind: TargetKind,
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
    ctrl.watches(api::<K>(client, ns), watcher::Config::default(), targeting::<K>(store, kind))
}

/// Runs both controllers until the future is dropped or a controller stream ends.
pub async fn run_controllers(client: Client, config: Config, metrics: Metrics) {
    let ns = config.namespace.clone();
    let ns = ns.as_deref();
    let config = Arc::new(config);
    let managed = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));

    let isvc_ctrl = Controller::new(api::<InstrumentedService>(&client, ns), watcher::Config::default());
    let isvc_store = isvc_ctrl.store();
    let by_pipeline = isvc_store.clone();
    let isvc_ctrl = isvc_ctrl.watches(api::<TelemetryPipeline>(&client, ns), watcher::Config::default(), move |tp: TelemetryPipeline| {
        let key = (tp.namespace().unwrap_or_default(), tp.name_any());
        by_pipeline
            .state()
            .iter()
            .filter(|i| isvc::pipeline_key(i) == key)
            .map(|i| ObjectRef::from_obj(&**i))
            .collect::<Vec<_>>()
    });
    let isvc_ctrl = watch_workloads::<Deployment>(isvc_ctrl, &client, ns, TargetKind::Deployment);
    let isvc_ctrl = watch_workloads::<StatefulSet>(isvc_ctrl, &client, ns, TargetKind::StatefulSet);
    let isvc_ctrl = watch_workloads::<DaemonSet>(isvc_ctrl, &client, ns, TargetKind::DaemonSet);

    let ctx = Arc::new(Context::new(client.clone(), metrics, config, isvc_store));
    let tp_ctrl = Controller::new(api::<TelemetryPipeline>(&client, ns), watcher::Config::default())
        .owns(api::<ConfigMap>(&client, ns), managed.clone())
        .owns(api::<Service>(&client, ns), managed.clone())
        .owns(api::<Deployment>(&client, ns), managed.clone())
        .owns(api::<DaemonSet>(&client, ns), managed)
        .watches(api::<InstrumentedService>(&client, ns), watcher::Config::default(), |i: InstrumentedService| {
            let (pns, pname) = isvc::pipeline_key(&i);
            Some(ObjectRef::new(&pname).within(&pns))
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
