//! `telemetry-operator uninstall`: takes every injection back and releases every InstrumentedService,
//! so that `helm uninstall` never wedges and leaves every workload as it was before injection.
//!
//! The chart deletes the operator and the CRDs together. Left alone, the InstrumentedServices keep
//! their finalizer with nobody to remove it: the CRDs hang in Terminating and the injected env stays
//! on every workload, pointing at a deleted Service. The chart's pre-delete hook runs this first.
//! It works whether the operator still runs or not: each InstrumentedService is marked for deletion
//! first (so a running operator only cleans up and never re-injects), then the injection is removed
//! from the workload its status records and the finalizer is dropped. Every step is idempotent, so
//! racing the operator's own cleanup, or running twice, is harmless.
//!
//! Then every TelemetryPipeline is deleted with foreground propagation: each stays (Terminating,
//! and with it the CRD that helm deletes next) until the garbage collector has deleted its collector
//! Deployment or DaemonSet, ConfigMap, Service, ServiceAccount and RoleBinding (its RoleBindings
//! in other namespaces, which it cannot own, are deleted first). Found on a real node: left to
//! the CRD's deletion, the pipelines vanish first, the garbage collector can then no longer resolve
//! the owners' kind, and it never deletes dependents whose owner it cannot look up, so the
//! collectors ran on forever.

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::conditions;
use crate::crd::{InstrumentedService, TelemetryPipeline};
use crate::error::{Error, Result};
use crate::isvc::{FINALIZER, remove_from, remove_injection};

/// Ignores "not found": the object went away meanwhile (the operator finished its cleanup first).
fn gone_ok<T>(r: kube::Result<T>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Releases every InstrumentedService (in `namespace`, or all), then deletes every TelemetryPipeline
/// so that its collector goes with it. Returns how many InstrumentedServices there were.
pub async fn uninstall(client: &Client, namespace: Option<&str>) -> Result<usize> {
    let released = release_instrumented_services(client, namespace).await?;
    delete_pipelines_in_the_foreground(client, namespace).await?;
    Ok(released)
}

/// Deletes every TelemetryPipeline with foreground propagation (children first, then the pipeline).
async fn delete_pipelines_in_the_foreground(client: &Client, namespace: Option<&str>) -> Result<()> {
    let all: Api<TelemetryPipeline> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    for tp in all.list(&ListParams::default()).await?.items {
        let ns = tp.namespace().ok_or_else(|| Error::MissingNamespace(tp.name_any()))?;
        let api: Api<TelemetryPipeline> = Api::namespaced(client.clone(), &ns);
        // Its RoleBindings in other namespaces are not its children: removed here, with the
        // finalizer that guards them, whether or not the operator still runs.
        match crate::pipeline::release_foreign_bindings(client, &ns, &tp).await {
            Err(Error::Kube(kube::Error::Api(s))) if s.code == 404 || s.code == 409 => {}
            r => r?,
        }
        gone_ok(api.delete(&tp.name_any(), &DeleteParams::foreground()).await)?;
        info!(pipeline = %format!("{ns}/{}", tp.name_any()), "pipeline deleted; its collector goes first");
    }
    Ok(())
}

/// Releases every InstrumentedService (in `namespace`, or all) and returns how many there were.
async fn release_instrumented_services(client: &Client, namespace: Option<&str>) -> Result<usize> {
    let all: Api<InstrumentedService> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let list = all.list(&ListParams::default()).await?;
    for isvc in &list.items {
        let ns = isvc.namespace().ok_or_else(|| Error::MissingNamespace(isvc.name_any()))?;
        let name = isvc.name_any();
        let api: Api<InstrumentedService> = Api::namespaced(client.clone(), &ns);
        gone_ok(api.delete(&name, &DeleteParams::background()).await)?;
        let status = isvc.status.clone().unwrap_or_default();
        match &status.injected_target {
            Some(t) => remove_from(client, &ns, t).await?,
            // Written by an operator that did not record the target: only an injected one touched it.
            None if conditions::is_true(&status.conditions, "Injected") => {
                remove_injection(client, &ns, isvc.spec.target.kind, &isvc.spec.target.name, None, &[]).await?
            }
            None => {}
        }
        let finalizers: Vec<&String> = isvc.finalizers().iter().filter(|f| *f != FINALIZER).collect();
        gone_ok(
            api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})))
                .await,
        )?;
        info!(isvc = %format!("{ns}/{name}"), "injection removed and InstrumentedService released");
    }
    Ok(list.items.len())
}
