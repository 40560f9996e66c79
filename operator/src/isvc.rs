//! Reconciler of InstrumentedService: server-side-apply the injection onto the target workload with the
//! injector's own field manager, take it back on deletion (finalizer), and report conditions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{self, Event as Finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::agent;
use crate::conditions;
use crate::consent;
use crate::context::{Context, MANAGER};
use crate::crd::{
    AppEnvValue, InjectedTarget, InstrumentedService, InstrumentedServiceStatus, PipelineMissingPolicy, TargetKind,
    TelemetryPipeline,
};
use crate::error::{Error, Result};
use crate::inject::{self, INJECTOR_MANAGER};

/// Controller name in metrics and logs.
pub const CONTROLLER: &str = "instrumentedservice";
/// Finalizer guaranteeing the injection is taken back before the object goes away.
pub const FINALIZER: &str = "telemetry.thereview.dev/injection";

/// API of the target workload kind.
pub fn target_api(ctx: &Context, ns: &str, kind: TargetKind) -> Api<DynamicObject> {
    workload_api(&ctx.client, ns, kind)
}

fn workload_api(client: &kube::Client, ns: &str, kind: TargetKind) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", kind.as_str()));
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// The pipeline an InstrumentedService refers to, as `(namespace, name)`.
pub fn pipeline_key(isvc: &InstrumentedService) -> (String, String) {
    let ns = isvc.spec.pipeline_ref.namespace.clone().or_else(|| isvc.namespace()).unwrap_or_default();
    (ns, isvc.spec.pipeline_ref.name.clone())
}

/// One claimant of a workload, as the conflict rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    /// InstrumentedService name.
    pub name: String,
    /// Creation time (RFC 3339 compares correctly as text) — the tie-break.
    pub created: Option<String>,
    /// Whether its status records an injection into this very workload.
    pub injected: bool,
}

/// Which of several InstrumentedServices targeting one workload may inject into it: one that already
/// injected (the oldest of those, if several claim so after a crash), else the oldest. Age alone is
/// not enough: an older one that never injected (it was created while another held the workload, or
/// it is stuck) must not block a younger one with a false "already instrumented by".
pub fn winner(claimants: &[Claimant]) -> Option<&Claimant> {
    claimants.iter().min_by(|a, b| (!a.injected, &a.created, &a.name).cmp(&(!b.injected, &b.created, &b.name)))
}

fn claimant(i: &InstrumentedService) -> Claimant {
    Claimant {
        name: i.name_any(),
        created: i.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
        injected: i.status.as_ref().and_then(|s| s.injected_target.as_ref()).is_some_and(|t| t.is(&i.spec.target)),
    }
}

/// The InstrumentedService that holds this one's target instead of it, if any.
fn conflicting(ctx: &Context, isvc: &InstrumentedService) -> Option<String> {
    let mut claimants = vec![claimant(isvc)];
    // Runs once per reconcile over every InstrumentedService the operator sees, so it compares in
    // place, target first (it rarely matches), and allocates only for the matches: with allocations
    // per entry this scan was the operator's quadratic part at 10 000 objects.
    let (ns, name) = (&isvc.metadata.namespace, &isvc.metadata.name);
    claimants.extend(
        ctx.isvcs
            .state()
            .iter()
            .filter(|o| o.spec.target.name == isvc.spec.target.name && o.spec.target.kind == isvc.spec.target.kind)
            .filter(|o| &o.metadata.namespace == ns && &o.metadata.name != name)
            .filter(|o| o.metadata.deletion_timestamp.is_none())
            .map(|o| claimant(o)),
    );
    winner(&claimants).filter(|w| w.name != isvc.name_any()).map(|w| w.name.clone())
}

/// The kstatus pair beside `Ready`, for `kubectl wait`, Argo CD and Flux. A reconcile that finished has
/// nothing in progress (`Reconciling=False`; it runs within one reconcile); every reason for not being
/// Ready (missing pipeline, target or container, a conflict, a pipeline that does not scrape) needs a
/// change by someone else, so it is `Stalled=True` with that reason.
fn set_kstatus(status: &mut InstrumentedServiceStatus, stalled: Option<(&str, &str)>, generation: Option<i64>) {
    conditions::set(&mut status.conditions, "Reconciling", false, "Reconciled", "", generation);
    let (reason, message) = stalled.unwrap_or(("Healthy", ""));
    conditions::set(&mut status.conditions, "Stalled", stalled.is_some(), reason, message, generation);
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

/// Takes back everything the injector added to a workload: an apply of an empty object with the
/// injector's field manager. `uid` guards against a workload deleted and recreated under the same
/// name (it carries none of our fields, and may be claimed by another InstrumentedService now).
/// `restore` are the workload's own `OTEL_RESOURCE_ATTRIBUTES` values the injection merged ours into:
/// each is first written back as the manager that set it, which hands that value back to it, so the
/// empty apply then removes only what we added.
pub async fn remove_injection(
    client: &kube::Client,
    ns: &str,
    kind: TargetKind,
    name: &str,
    uid: Option<&str>,
    restore: &[AppEnvValue],
) -> Result<()> {
    let api = workload_api(client, ns, kind);
    if let Some(current) = api.get_opt(name).await?
        && uid.is_none_or(|u| current.metadata.uid.as_deref() == Some(u))
    {
        let mut managers: Vec<&str> = restore.iter().map(|a| a.manager.as_str()).collect();
        managers.sort_unstable();
        managers.dedup();
        for manager in managers {
            let values: Vec<&AppEnvValue> = restore.iter().filter(|a| a.manager == manager).collect();
            let pp = PatchParams { field_manager: Some(manager.to_string()), ..PatchParams::default() };
            api.patch(name, &pp, &Patch::Strategic(inject::restore_patch(&values))).await?;
        }
        let patch = inject::removal_patch(kind, name);
        api.patch(name, &PatchParams::apply(INJECTOR_MANAGER).force(), &Patch::Apply(&patch)).await?;
    }
    Ok(())
}

/// Takes the injection back from the workload a status records.
pub async fn remove_from(client: &kube::Client, ns: &str, t: &InjectedTarget) -> Result<()> {
    remove_injection(client, ns, t.kind, &t.name, Some(&t.uid), &t.app_resource_attributes).await
}

/// Takes the injection back from wherever the status says it was applied, and forgets it.
async fn remove_recorded(ctx: &Context, ns: &str, status: &mut InstrumentedServiceStatus) -> Result<()> {
    if let Some(t) = status.injected_target.take() {
        remove_from(&ctx.client, ns, &t).await?;
        info!(namespace = %ns, target = %t.name, kind = t.kind.as_str(), "injection removed");
    }
    status.managed_env.clear();
    status.managed_annotations.clear();
    Ok(())
}

/// The workload's own `OTEL_RESOURCE_ATTRIBUTES`, per selected container, to merge ours into: a value
/// another manager owns now (`live`, it may have just changed), else the one recorded when we merged
/// into it earlier (we own the merged value since) as long as that container still has the variable.
fn app_attributes(
    live: &[AppEnvValue],
    recorded: &[AppEnvValue],
    workload: &serde_json::Value,
    containers: &[String],
) -> Vec<AppEnvValue> {
    containers
        .iter()
        .filter_map(|c| {
            live.iter().find(|a| &a.container == c).cloned().or_else(|| {
                let r = recorded.iter().find(|a| &a.container == c)?;
                inject::env_value(workload, c, inject::RESOURCE_ATTRIBUTES_ENV).map(|_| r.clone())
            })
        })
        .collect()
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
        remove_recorded(ctx, &ns, &mut status).await?;
    }
    let generation = isvc.metadata.generation;
    let changed = status.message.as_deref() != Some(message.as_str());
    match &status.injected_target {
        // Still injected (kept while the pipeline is missing, or the target is gone): say so.
        Some(t) if !remove => {
            let kept = format!("kept on {} {} ({reason})", t.kind.as_str(), t.name);
            conditions::set(&mut status.conditions, "Injected", true, "Kept", &kept, generation);
        }
        _ => conditions::set(&mut status.conditions, "Injected", false, reason, &message, generation),
    }
    conditions::set(&mut status.conditions, "ScrapeConfigured", false, reason, &message, generation);
    conditions::set(&mut status.conditions, "Ready", false, reason, &message, generation);
    set_kstatus(&mut status, Some((reason, &message)), generation);
    status.message = Some(message.clone());
    patch_status(ctx, isvc, &status).await?;
    if changed {
        warn!(isvc = %format!("{ns}/{}", isvc.name_any()), %message, "not injected");
        warn_event(ctx, isvc, reason, &message).await;
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

/// What the workload sets itself, merged with the injection ("merge, don't fight").
#[derive(Debug)]
struct AppValues {
    /// An `OTEL_SERVICE_NAME` the workload sets: it wins over ours and is reported.
    app_service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES` values another manager owns now.
    live_attrs: Vec<AppEnvValue>,
    /// The workload's own resource attributes to merge into (live, else recorded).
    app_attrs: Vec<AppEnvValue>,
    /// Per container, the merged `OTEL_RESOURCE_ATTRIBUTES` to apply.
    merged: BTreeMap<String, String>,
}

/// Adopts the workload's own service name into `inj` and merges its resource attributes with ours
/// (see `inject::merge_resource_attributes` for who wins on a key both set). `recorded`: the app's
/// values recorded when we merged into this same workload before.
fn merge_with_app(
    inj: &mut inject::Injection,
    workload: &DynamicObject,
    containers: &[String],
    recorded: &[AppEnvValue],
) -> AppValues {
    let app_service_name =
        inject::app_set_env(&workload.data, workload.managed_fields(), containers, inject::SERVICE_NAME_ENV);
    if let Some(theirs) = &app_service_name {
        for (_, v) in inj.env.iter_mut().filter(|(n, _)| n == inject::SERVICE_NAME_ENV) {
            *v = inject::EnvValue::Literal(theirs.clone());
        }
    }
    let ours_attrs = inj.literal(inject::RESOURCE_ATTRIBUTES_ENV).unwrap_or("").to_string();
    let live_attrs =
        inject::app_owned_env(&workload.data, workload.managed_fields(), containers, inject::RESOURCE_ATTRIBUTES_ENV);
    let app_attrs = app_attributes(&live_attrs, recorded, &workload.data, containers);
    let merged = app_attrs
        .iter()
        .map(|a| (a.container.clone(), inject::merge_resource_attributes(&a.value, &ours_attrs)))
        .collect();
    AppValues { app_service_name, live_attrs, app_attrs, merged }
}

/// The target workload and the containers to inject into (`spec.target.container`, else all).
async fn target_workload(
    api: &Api<DynamicObject>,
    isvc: &InstrumentedService,
    ns: &str,
) -> Result<std::result::Result<(DynamicObject, Vec<String>), Refusal>> {
    let target = &isvc.spec.target;
    let Some(workload) = api.get_opt(&target.name).await? else {
        let message = format!("spec.target: {} {ns}/{} not found", target.kind.as_str(), target.name);
        return Ok(Err(Refusal { reason: "TargetNotFound", message, remove: false }));
    };
    let all_containers: Vec<String> = workload
        .data
        .pointer("/spec/template/spec/containers")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(|n| n.as_str()).map(String::from))
        .collect();
    Ok(match inject::select_containers(&all_containers, target.container.as_deref()) {
        Ok(containers) => Ok((workload, containers)),
        Err(message) => Err(Refusal { reason: "ContainerNotFound", message, remove: true }),
    })
}

/// Why an InstrumentedService cannot be injected, and whether its injection is taken back.
#[derive(Debug)]
struct Refusal {
    reason: &'static str,
    message: String,
    remove: bool,
}

/// The pipeline the InstrumentedService refers to, if it exists, the operator can read it, and it
/// admits the InstrumentedService's namespace; else the refusal.
async fn consenting_pipeline(
    ctx: &Context,
    isvc: &InstrumentedService,
    ns: &str,
) -> Result<std::result::Result<TelemetryPipeline, Refusal>> {
    let (pns, pname) = pipeline_key(isvc);
    // From the watch cache (no request per reconcile); a pipeline the cache lacks (outside the
    // watched namespace, or just created) is read from the API server.
    let cached = ctx.pipelines.get(&ObjectRef::new(&pname).within(&pns)).map(|p| (*p).clone());
    let pipeline = match cached {
        Some(p) => Some(p),
        None => match Api::<TelemetryPipeline>::namespaced(ctx.client.clone(), &pns).get_opt(&pname).await {
            // Installed with watchNamespace, the operator holds RBAC in that namespace only: a pipeline
            // elsewhere is out of its reach, which is a refusal, not an error to retry.
            Err(kube::Error::Api(s)) if s.code == 403 => {
                let message = format!(
                    "spec.pipelineRef: TelemetryPipeline {pns}/{pname} is out of the operator's reach (its RBAC \
                     does not cover namespace {pns:?}, e.g. the chart was installed with watchNamespace)"
                );
                return Ok(Err(Refusal { reason: "Forbidden", message, remove: true }));
            }
            r => r?,
        },
    };
    let Some(pipeline) = pipeline else {
        let message = format!("spec.pipelineRef: TelemetryPipeline {pns}/{pname} not found");
        let remove = isvc.spec.on_pipeline_missing == PipelineMissingPolicy::Remove;
        return Ok(Err(Refusal { reason: "PipelineNotFound", message, remove }));
    };
    // Another namespace's pipeline only with its consent (spec.allowedNamespaces); a withdrawn consent
    // takes the injection back.
    let labels = if consent::needs_labels(&pipeline, &pns, ns) {
        let namespace = Api::<Namespace>::all(ctx.client.clone()).get_opt(ns).await?;
        namespace.and_then(|n| n.metadata.labels).unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    if let Some(message) = consent::refusal(&pipeline, &pns, ns, &labels) {
        return Ok(Err(Refusal { reason: "NotAllowed", message, remove: true }));
    }
    Ok(Ok(pipeline))
}

/// Applies the injection to the workload with the injector's field manager. Without `force`, so a
/// field another manager owns with a different value is a reported conflict (`Err` with the
/// message), not silently taken over; except the app's own resource attributes, which we merge
/// with ours and take over only after a dry run co-owning them as they are shows no true conflict
/// (the record of the app's part, from `record`, is saved first so it is never lost).
#[allow(clippy::too_many_arguments)]
async fn patch_workload(
    ctx: &Context,
    isvc: &InstrumentedService,
    api: &Api<DynamicObject>,
    containers: &[String],
    inj: &inject::Injection,
    merged: &BTreeMap<String, String>,
    live_attrs: &[AppEnvValue],
    status: &mut InstrumentedServiceStatus,
    record: impl FnOnce() -> InjectedTarget,
) -> Result<std::result::Result<DynamicObject, String>> {
    let target = &isvc.spec.target;
    let conflict = |s: &kube::core::Status| format!("spec.target: fields are owned by another manager: {}", s.message);
    let take_over = live_attrs.iter().any(|a| merged.get(&a.container) != Some(&a.value));
    if take_over {
        let theirs: BTreeMap<String, String> = merged
            .iter()
            .map(|(c, m)| (c.clone(), live_attrs.iter().find(|a| &a.container == c).map_or(m, |a| &a.value).clone()))
            .collect();
        let probe = inject::apply_patch(target.kind, &target.name, containers, inj, &theirs);
        let pp = PatchParams { dry_run: true, ..PatchParams::apply(INJECTOR_MANAGER) };
        match api.patch(&target.name, &pp, &Patch::Apply(&probe)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Err(conflict(&s))),
            Err(e) => return Err(e.into()),
        }
        status.injected_target = Some(record());
        patch_status(ctx, isvc, status).await?;
    }
    let patch = inject::apply_patch(target.kind, &target.name, containers, inj, merged);
    let pp =
        if take_over { PatchParams::apply(INJECTOR_MANAGER).force() } else { PatchParams::apply(INJECTOR_MANAGER) };
    match api.patch(&target.name, &pp, &Patch::Apply(&patch)).await {
        Ok(p) => Ok(Ok(p)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Err(conflict(&s))),
        Err(e) => Err(e.into()),
    }
}

/// The `Injected` condition's message: where the workload is wired, and what of its own was kept.
fn injected_message(
    isvc: &InstrumentedService,
    (pns, pname): (&str, &str),
    node_ip: bool,
    app_service_name: Option<&str>,
    app_attrs: &[AppEnvValue],
) -> String {
    let target = &isvc.spec.target;
    let mut msg = format!("{} {} wired to {pns}/{pname}", target.kind.as_str(), target.name);
    if node_ip {
        msg.push_str(&format!(
            " through the node's IP ({} from status.hostIP, the agent's host port)",
            agent::NODE_IP_ENV
        ));
    }
    if let Some(name) = app_service_name {
        msg.push_str(&format!("; {} {name:?} set by the workload is kept", inject::SERVICE_NAME_ENV));
    }
    if !app_attrs.is_empty() {
        let by = app_attrs.iter().map(|a| format!("{} (container {})", a.manager, a.container)).collect::<Vec<_>>();
        msg.push_str(&format!(
            "; {} set by the workload merged with ours (its values win, except on k8s.* keys): {}",
            inject::RESOURCE_ATTRIBUTES_ENV,
            by.join(", ")
        ));
    }
    msg
}

/// Sets `ScrapeConfigured` and, from it, `Ready` and the kstatus pair (an InstrumentedService without
/// metrics is ready once injected).
fn set_scrape_and_ready(
    status: &mut InstrumentedServiceStatus,
    metrics_on: bool,
    (scrape_ok, scrape_reason, scrape_msg): (bool, &'static str, String),
    generation: Option<i64>,
) {
    conditions::set(&mut status.conditions, "ScrapeConfigured", scrape_ok, scrape_reason, &scrape_msg, generation);
    let ready = !metrics_on || scrape_ok;
    let ready_msg = if ready { String::new() } else { scrape_msg };
    let reason = if ready { "Ready" } else { scrape_reason };
    conditions::set(&mut status.conditions, "Ready", ready, reason, &ready_msg, generation);
    set_kstatus(status, (!ready).then_some((scrape_reason, ready_msg.as_str())), generation);
}

/// The `ScrapeConfigured` condition: status, reason and message. `discovered`: the pipeline
/// discovers pods in the InstrumentedService's namespace (always true in its own).
fn scrape_condition(
    metrics_on: bool,
    prometheus: bool,
    discovered: bool,
    (pns, pname): (&str, &str),
    ns: &str,
) -> (bool, &'static str, String) {
    match (metrics_on, prometheus, discovered) {
        (false, _, _) => (false, "MetricsDisabled", "spec.metrics is not enabled".to_string()),
        (true, false, _) => (
            false,
            "PipelineDoesNotScrape",
            format!("TelemetryPipeline {pns}/{pname} has no Prometheus receiver enabled"),
        ),
        (true, true, false) => (
            false,
            "WaitingForPipeline",
            format!(
                "TelemetryPipeline {pns}/{pname} does not discover pods in namespace {ns:?} yet (its status.scrape.namespaces)"
            ),
        ),
        (true, true, true) => (true, "Configured", String::new()),
    }
}

async fn apply_injection(isvc: Arc<InstrumentedService>, ctx: &Context) -> Result<Action> {
    let ns = isvc.namespace().ok_or_else(|| Error::MissingNamespace(isvc.name_any()))?;
    let generation = isvc.metadata.generation;
    let mut status = isvc.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    let target = &isvc.spec.target;

    // The target changed (or this is a loser of a conflict holding a stale record): take the injection
    // back from the workload it was applied to before touching the new one, so no workload stays
    // wired to a pipeline nobody manages for it.
    if status.injected_target.as_ref().is_some_and(|t| !t.is(target)) {
        remove_recorded(ctx, &ns, &mut status).await?;
    }

    if let Some(winner) = conflicting(ctx, &isvc) {
        let msg = format!(
            "{} {:?} is already instrumented by InstrumentedService {winner:?}",
            target.kind.as_str(),
            target.name
        );
        // The winner owns the injected fields (same field manager): forget any stale record of ours
        // instead of removing them.
        status.injected_target = None;
        return not_injected(ctx, &isvc, status, "Conflict", msg, false).await;
    }
    let (pns, pname) = pipeline_key(&isvc);
    let pipeline = match consenting_pipeline(ctx, &isvc, &ns).await? {
        Ok(p) => p,
        Err(r) => return not_injected(ctx, &isvc, status, r.reason, r.message, r.remove).await,
    };
    let api = target_api(ctx, &ns, target.kind);
    let (workload, containers) = match target_workload(&api, &isvc, &ns).await? {
        Ok(found) => found,
        Err(r) => {
            if r.reason == "TargetNotFound" {
                // The workload is gone and our fields with it.
                status.injected_target = None;
            }
            return not_injected(ctx, &isvc, status, r.reason, r.message, r.remove).await;
        }
    };

    let prometheus = pipeline.spec.receivers.prometheus.as_ref().is_some_and(|p| p.enabled);
    let metrics_on = isvc.spec.metrics.as_ref().is_some_and(|m| m.enabled);
    // Pods of another (consenting) namespace are annotated too: the pipeline discovers them once it
    // has bound its discovery role there (reported in its status.scrape.namespaces).
    let scrape = prometheus;
    let discovered = pns == ns
        || pipeline.status.as_ref().and_then(|s| s.scrape.as_ref()).is_some_and(|s| s.namespaces.contains(&ns));
    let endpoints = agent::app_endpoints(&pipeline);
    let mut inj = inject::injection(&isvc, &ns, (&pns, &pname), &endpoints, scrape);
    let recorded = status
        .injected_target
        .as_ref()
        .filter(|t| workload.metadata.uid.as_deref() == Some(t.uid.as_str()))
        .map(|t| t.app_resource_attributes.clone())
        .unwrap_or_default();
    let AppValues { app_service_name, live_attrs, app_attrs, merged } =
        merge_with_app(&mut inj, &workload, &containers, &recorded);
    let workload_uid = workload.metadata.uid.clone().unwrap_or_default();
    let patched = match patch_workload(ctx, &isvc, &api, &containers, &inj, &merged, &live_attrs, &mut status, || {
        InjectedTarget {
            kind: target.kind,
            name: target.name.clone(),
            uid: workload_uid.clone(),
            app_resource_attributes: app_attrs.clone(),
        }
    })
    .await?
    {
        Ok(p) => p,
        Err(msg) => return not_injected(ctx, &isvc, status, "Conflict", msg, false).await,
    };
    if let (Some(uid), Some(generation)) = (patched.metadata.uid.as_deref(), patched.metadata.generation) {
        ctx.own_writes.record(uid, generation);
    }
    // A co-owned app value is not ours to report as managed.
    let managed_env: Vec<String> = inj
        .env_names()
        .filter(|n| app_service_name.is_none() || *n != inject::SERVICE_NAME_ENV)
        .map(str::to_string)
        .collect();
    if status.managed_env != managed_env || status.target_observed_generation != patched.metadata.generation {
        info!(isvc = %format!("{ns}/{}", isvc.name_any()), target = %target.name, "injected");
    }
    status.managed_env = managed_env;
    status.managed_annotations = inj.annotations.keys().chain(inj.labels.keys()).cloned().collect();
    status.target_observed_generation = patched.metadata.generation;
    status.injected_target = Some(InjectedTarget {
        kind: target.kind,
        name: target.name.clone(),
        uid: patched.metadata.uid.clone().unwrap_or_default(),
        app_resource_attributes: app_attrs.clone(),
    });
    status.message = None;
    let injected_msg =
        injected_message(&isvc, (&pns, &pname), endpoints.node_ip, app_service_name.as_deref(), &app_attrs);
    status.app_service_name = app_service_name;
    conditions::set(&mut status.conditions, "Injected", true, "Injected", &injected_msg, generation);
    let scrape = scrape_condition(metrics_on, prometheus, discovered, (&pns, &pname), &ns);
    set_scrape_and_ready(&mut status, metrics_on, scrape, generation);
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
    // The finalizer is added here and the injection applied in the same reconcile, instead of
    // adding it and waiting for the resulting watch event (kube's helper): metadata-only changes do
    // not trigger reconciles (see `run`), so one reconcile per new object is enough.
    let isvc = if isvc.metadata.deletion_timestamp.is_none() && !isvc.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = isvc.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        // resourceVersion makes it a compare-and-swap: a concurrent change fails with 409 and is retried.
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": isvc.resource_version()}});
        Arc::new(api.patch(&isvc.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?)
    } else {
        isvc
    };
    finalizer::finalizer(&api, FINALIZER, isvc, |event| async {
        match event {
            Finalizer::Apply(i) => apply_injection(i, &ctx).await,
            Finalizer::Cleanup(i) => {
                match i.status.as_ref().and_then(|s| s.injected_target.as_ref()) {
                    // Exactly where the injection was applied, whatever the spec says now.
                    Some(t) => remove_from(&ctx.client, &ns, t).await?,
                    // No record (never injected, or written by an older operator): only the winner of a
                    // conflict may have injected; a loser must not strip the winner's fields.
                    None if conflicting(&ctx, &i).is_none() => {
                        remove_injection(&ctx.client, &ns, i.spec.target.kind, &i.spec.target.name, None, &[]).await?
                    }
                    None => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, created: &str, injected: bool) -> Claimant {
        Claimant { name: name.into(), created: Some(created.into()), injected }
    }

    #[test]
    fn the_one_that_injected_wins_over_an_older_one_that_did_not() {
        let old_idle = c("old", "2026-01-01T00:00:00Z", false);
        let young_injected = c("young", "2026-02-01T00:00:00Z", true);
        assert_eq!(winner(&[old_idle.clone(), young_injected.clone()]).map(|w| w.name.as_str()), Some("young"));
        // Nobody injected yet: the oldest wins; ties break on the name.
        let young_idle = c("young", "2026-02-01T00:00:00Z", false);
        assert_eq!(winner(&[young_idle, old_idle.clone()]).map(|w| w.name.as_str()), Some("old"));
        assert_eq!(
            winner(&[c("b", "2026-01-01T00:00:00Z", false), c("a", "2026-01-01T00:00:00Z", false)])
                .map(|w| w.name.as_str()),
            Some("a")
        );
        assert_eq!(winner(&[]), None);
    }
}
