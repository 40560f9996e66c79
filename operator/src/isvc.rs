//! Reconciler of InstrumentedService: server-side-apply the injection onto the target workload with the
//! injector's own field manager, take it back on deletion (finalizer), and report conditions.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{self, Event as Finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::conditions;
use crate::context::{Context, MANAGER};
use crate::crd::{InstrumentedService, InstrumentedServiceStatus, TargetKind, TelemetryPipeline};
use crate::error::{Error, Result};
use crate::inject::{self, INJECTOR_MANAGER};
use crate::resources;

/// Controller name in metrics and logs.
pub const CONTROLLER: &str = "instrumentedservice";
/// Finalizer guaranteeing the injection is taken back before the object goes away.
pub const FINALIZER: &str = "telemetry.thereview.dev/injection";

/// API of the target workload kind.
pub fn target_api(ctx: &Context, ns: &str, kind: TargetKind) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", kind.as_str()));
    Api::namespaced_with(ctx.client.clone(), ns, &ar)
}

/// The pipeline an InstrumentedService refers to, as `(namespace, name)`.
pub fn pipeline_key(isvc: &InstrumentedService) -> (String, String) {
    let ns = isvc.spec.pipeline_ref.namespace.clone().or_else(|| isvc.namespace()).unwrap_or_default();
    (ns, isvc.spec.pipeline_ref.name.clone())
}

/// An older InstrumentedService targeting the same workload wins; this one then reports a conflict.
fn conflicting(ctx: &Context, isvc: &InstrumentedService) -> Option<String> {
    let ns = isvc.namespace();
    let me = (isvc.metadata.creation_timestamp.clone(), isvc.name_any());
    ctx.isvcs
        .state()
        .iter()
        .filter(|o| o.namespace() == ns && o.name_any() != isvc.name_any())
        .filter(|o| o.metadata.deletion_timestamp.is_none())
        .filter(|o| o.spec.target.kind == isvc.spec.target.kind && o.spec.target.name == isvc.spec.target.name)
        .filter(|o| (o.metadata.creation_timestamp.clone(), o.name_any()) < me)
        .map(|o| o.name_any())
        .next()
}

async fn patch_status(ctx: &Context, isvc: &InstrumentedService, status: &InstrumentedServiceStatus) -> Result<()> {
    let ns = isvc.namespace().ok_or_else(|| Error::MissingNamespace(isvc.name_any()))?;
    let api: Api<InstrumentedService> = Api::namespaced(ctx.client.clone(), &ns);
    let patch =
        json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "InstrumentedService", "status": status});
    api.patch_status(&isvc.name_any(), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

async fn warn_event(ctx: &Context, isvc: &InstrumentedService, reason: &str, note: &str) {
    let ev = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Inject".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &isvc.object_ref(&())).await {
        warn!(error = %e, "publishing event failed");
    }
}

/// Takes back everything the injector added to the target (no-op when the target is gone).
async fn remove_injection(ctx: &Context, ns: &str, isvc: &InstrumentedService) -> Result<()> {
    let api = target_api(ctx, ns, isvc.spec.target.kind);
    if api.get_opt(&isvc.spec.target.name).await?.is_some() {
        let patch = inject::removal_patch(isvc.spec.target.kind, &isvc.spec.target.name);
        api.patch(&isvc.spec.target.name, &PatchParams::apply(INJECTOR_MANAGER).force(), &Patch::Apply(&patch)).await?;
    }
    Ok(())
}

/// Records a failure to inject: conditions, message, event, and no injection left behind.
async fn not_injected(
    ctx: &Context,
    isvc: &InstrumentedService,
    mut status: InstrumentedServiceStatus,
    reason: &str,
    message: String,
    remove: bool,
) -> Result<Action> {
    let ns = isvc.namespace().ok_or_else(|| Error::MissingNamespace(isvc.name_any()))?;
    if remove {
        remove_injection(ctx, &ns, isvc).await?;
        status.managed_env.clear();
        status.managed_annotations.clear();
    }
    let generation = isvc.metadata.generation;
    let changed = status.message.as_deref() != Some(message.as_str());
    conditions::set(&mut status.conditions, "Injected", false, reason, &message, generation);
    conditions::set(&mut status.conditions, "ScrapeConfigured", false, reason, &message, generation);
    conditions::set(&mut status.conditions, "Ready", false, reason, &message, generation);
    status.message = Some(message.clone());
    patch_status(ctx, isvc, &status).await?;
    if changed {
        warn!(isvc = %format!("{ns}/{}", isvc.name_any()), %message, "not injected");
        warn_event(ctx, isvc, reason, &message).await;
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

async fn apply_injection(isvc: Arc<InstrumentedService>, ctx: &Context) -> Result<Action> {
    let ns = isvc.namespace().ok_or_else(|| Error::MissingNamespace(isvc.name_any()))?;
    let generation = isvc.metadata.generation;
    let mut status = isvc.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    let target = &isvc.spec.target;

    if let Some(winner) = conflicting(ctx, &isvc) {
        let msg = format!(
            "{} {:?} is already instrumented by InstrumentedService {winner:?}",
            target.kind.as_str(),
            target.name
        );
        return not_injected(ctx, &isvc, status, "Conflict", msg, false).await;
    }
    let (pns, pname) = pipeline_key(&isvc);
    let Some(pipeline) = Api::<TelemetryPipeline>::namespaced(ctx.client.clone(), &pns).get_opt(&pname).await? else {
        let msg = format!("spec.pipelineRef: TelemetryPipeline {pns}/{pname} not found");
        return not_injected(ctx, &isvc, status, "PipelineNotFound", msg, true).await;
    };
    let api = target_api(ctx, &ns, target.kind);
    let Some(workload) = api.get_opt(&target.name).await? else {
        let msg = format!("spec.target: {} {ns}/{} not found", target.kind.as_str(), target.name);
        return not_injected(ctx, &isvc, status, "TargetNotFound", msg, false).await;
    };
    let all_containers: Vec<String> = workload
        .data
        .pointer("/spec/template/spec/containers")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(|n| n.as_str()).map(String::from))
        .collect();
    let containers = match inject::select_containers(&all_containers, target.container.as_deref()) {
        Ok(c) => c,
        Err(msg) => return not_injected(ctx, &isvc, status, "ContainerNotFound", msg, true).await,
    };

    let prometheus = pipeline.spec.receivers.prometheus.as_ref().is_some_and(|p| p.enabled);
    let metrics_on = isvc.spec.metrics.as_ref().is_some_and(|m| m.enabled);
    let scrape = prometheus && pns == ns;
    let inj = inject::injection(&isvc, &ns, (&pns, &pname), &resources::endpoints(&pipeline), scrape);
    let patch = inject::apply_patch(target.kind, &target.name, &containers, &inj);
    // No force: if another manager owns one of these fields with a different value, we report the
    // conflict instead of silently taking the field over.
    let patched = match api.patch(&target.name, &PatchParams::apply(INJECTOR_MANAGER), &Patch::Apply(&patch)).await {
        Ok(p) => p,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let msg = format!("spec.target: fields are owned by another manager: {}", s.message);
            return not_injected(ctx, &isvc, status, "Conflict", msg, false).await;
        }
        Err(e) => return Err(e.into()),
    };
    let managed_env: Vec<String> = inj.env.iter().map(|(n, _)| n.clone()).collect();
    if status.managed_env != managed_env || status.target_observed_generation != patched.metadata.generation {
        info!(isvc = %format!("{ns}/{}", isvc.name_any()), target = %target.name, "injected");
    }
    status.managed_env = managed_env;
    status.managed_annotations = inj.annotations.keys().chain(inj.labels.keys()).cloned().collect();
    status.target_observed_generation = patched.metadata.generation;
    status.message = None;
    conditions::set(
        &mut status.conditions,
        "Injected",
        true,
        "Injected",
        &format!("{} {} wired to {pns}/{pname}", target.kind.as_str(), target.name),
        generation,
    );
    let (scrape_ok, scrape_reason, scrape_msg) = match (metrics_on, prometheus, pns == ns) {
        (false, _, _) => (false, "MetricsDisabled", "spec.metrics is not enabled".to_string()),
        (true, false, _) => (
            false,
            "PipelineDoesNotScrape",
            format!("TelemetryPipeline {pns}/{pname} has no Prometheus receiver enabled"),
        ),
        (true, true, false) => {
            (false, "CrossNamespace", "the pipeline scrapes pods of its own namespace only".to_string())
        }
        (true, true, true) => (true, "Configured", String::new()),
    };
    conditions::set(&mut status.conditions, "ScrapeConfigured", scrape_ok, scrape_reason, &scrape_msg, generation);
    let ready = !metrics_on || scrape_ok;
    let ready_msg = if ready { String::new() } else { scrape_msg.clone() };
    conditions::set(
        &mut status.conditions,
        "Ready",
        ready,
        if ready { "Ready" } else { scrape_reason },
        &ready_msg,
        generation,
    );
    patch_status(ctx, &isvc, &status).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Reconciles one InstrumentedService.
pub async fn reconcile(isvc: Arc<InstrumentedService>, ctx: Arc<Context>) -> Result<Action> {
    let key = crate::context::failure_key(&*isvc);
    let action = reconcile_once(isvc, ctx.clone()).await?;
    // A success ends the run of failures: the next error starts again from the shortest delay.
    ctx.failures.reset(&key);
    Ok(action)
}

async fn reconcile_once(isvc: Arc<InstrumentedService>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.start(CONTROLLER);
    let ns = isvc.namespace().ok_or_else(|| Error::MissingNamespace(isvc.name_any()))?;
    let api: Api<InstrumentedService> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer::finalizer(&api, FINALIZER, isvc, |event| async {
        match event {
            Finalizer::Apply(i) => apply_injection(i, &ctx).await,
            Finalizer::Cleanup(i) => {
                // Only the winner of a conflict injected anything; a loser must not strip the winner's fields.
                if conflicting(&ctx, &i).is_none() {
                    remove_injection(&ctx, &ns, &i).await?;
                }
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Backs off after a failed reconcile, longer with every consecutive failure of the object.
pub fn error_policy(isvc: Arc<InstrumentedService>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(error = %error, "instrumentedservice reconcile failed");
    ctx.metrics.failure(CONTROLLER, error.metric_label());
    // Exponential per error class (see `backoff`): conflicts and RBAC errors are not retried every few seconds.
    ctx.backoff(&*isvc, error)
}
