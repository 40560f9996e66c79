//! Reconciler of TelemetryPipeline: render, validate, apply children server-side, prune, report status.
//!
//! All decisions are made by the pure modules (`config`, `validate`, `resources`); this is the I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{info, warn};

use crate::conditions;
use crate::config::{self, RenderInput};
use crate::consent;
use crate::context::{Context, MANAGER};
use crate::crd::{InstrumentedService, TelemetryPipeline, TelemetryPipelineStatus};
use crate::discovery;
use crate::error::{Error, Result};
use crate::guardrails;
use crate::names;
use crate::network;
use crate::resources::{self, Workload};
use crate::rollout::{self, Rollout};
use crate::scrape;
use crate::topology;
use crate::validate;

/// Controller name in metrics and logs.
pub const CONTROLLER: &str = "telemetrypipeline";

/// `namespace/name` of each InstrumentedService that refers to the pipeline.
pub fn attached(isvcs: &[Arc<InstrumentedService>], namespace: &str, name: &str) -> Vec<String> {
    let mut out: Vec<String> = isvcs
        .iter()
        .filter(|i| i.refers_to(namespace, name))
        .map(|i| format!("{}/{}", i.namespace().unwrap_or_default(), i.name_any()))
        .collect();
    out.sort();
    out
}

async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    Ok(api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(obj)).await?)
}

/// Reads the keys of every Secret the spec references (only those: no list permission needed).
async fn referenced_secrets(
    ctx: &Context,
    ns: &str,
    tp: &TelemetryPipeline,
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let names: BTreeSet<String> = config::secret_refs(&tp.spec).into_iter().map(|(_, r)| r.name).collect();
    let mut out = BTreeMap::new();
    for name in names {
        if let Some(s) = api.get_opt(&name).await? {
            let mut keys: BTreeSet<String> = s.data.unwrap_or_default().into_keys().collect();
            keys.extend(s.string_data.unwrap_or_default().into_keys());
            out.insert(name, keys);
        }
    }
    Ok(out)
}

/// Deletes the pipeline's workloads of the other kinds (after a switch of mode, or between a
/// Deployment and a StatefulSet when a scraping gateway starts or stops sharding). Before the new
/// workload is applied, so the old pods are already terminating when the new ones start.
async fn prune_other_workloads(
    ctx: &Context,
    ns: &str,
    tp: &TelemetryPipeline,
    keep: topology::WorkloadKind,
) -> Result<()> {
    let client = ctx.client.clone();
    if keep != topology::WorkloadKind::Deployment {
        delete_owned(&Api::<Deployment>::namespaced(client.clone(), ns), tp).await?;
    }
    if keep != topology::WorkloadKind::StatefulSet {
        delete_owned(&Api::<StatefulSet>::namespaced(client.clone(), ns), tp).await?;
    }
    if keep != topology::WorkloadKind::DaemonSet {
        delete_owned(&Api::<DaemonSet>::namespaced(client, ns), tp).await?;
    }
    Ok(())
}

/// Deletes the pipeline's StatefulSet when its claim templates differ from the desired ones (queues
/// on claims switched on or off): they are immutable, so the apply would be refused forever. The pods
/// drain their queues on SIGTERM as on any rollout, and the new StatefulSet is created right after.
async fn delete_if_claim_templates_differ(
    api: &Api<StatefulSet>,
    tp: &TelemetryPipeline,
    desired: &StatefulSet,
) -> Result<()> {
    let key = |s: &StatefulSet| {
        crate::persistence::claim_templates_key(s.spec.as_ref().and_then(|s| s.volume_claim_templates.as_deref()))
    };
    if let Some(live) = api.get_opt(&names::child_name(&tp.name_any())).await?
        && key(&live) != key(desired)
    {
        info!(pipeline = %tp.name_any(), "queue claims changed: recreating the collector StatefulSet");
        delete_owned(api, tp).await?;
    }
    Ok(())
}

/// The collector StatefulSet's current replica count, when an HPA owns it (the shard count).
async fn live_replicas(ctx: &Context, ns: &str, tp: &TelemetryPipeline) -> Result<Option<i32>> {
    if !scrape::reads_live_replicas(&tp.spec) {
        return Ok(None);
    }
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    Ok(api.get_opt(&names::child_name(&tp.name_any())).await?.and_then(|s| s.spec).and_then(|s| s.replicas))
}

/// The namespaces a pipeline serves: those admitted to send OTLP to it, and those whose pods it
/// scrapes (see `discovery`). Both start with its own.
#[derive(Debug)]
struct Served {
    senders: Vec<String>,
    scraped: Vec<String>,
}

/// Reads which other namespaces attach to the pipeline, keeping those it consents to (a label
/// selector needs that Namespace's labels).
async fn served_namespaces(ctx: &Context, ns: &str, tp: &TelemetryPipeline) -> Result<Served> {
    let attaching = discovery::attaching(&ctx.isvcs.state(), ns, &tp.name_any());
    let mut admitted = BTreeSet::new();
    for other in &attaching.namespaces {
        let labels = if consent::needs_labels(tp, ns, other) {
            let namespace = Api::<Namespace>::all(ctx.client.clone()).get_opt(other).await?;
            namespace.and_then(|n| n.metadata.labels).unwrap_or_default()
        } else {
            BTreeMap::new()
        };
        if consent::refusal(tp, ns, other, &labels).is_none() {
            admitted.insert(other.clone());
        }
    }
    let scrapes = tp.spec.receivers.prometheus.as_ref().is_some_and(|p| p.enabled);
    let scraped: BTreeSet<String> =
        if scrapes { attaching.scraped.intersection(&admitted).cloned().collect() } else { BTreeSet::new() };
    Ok(Served {
        senders: discovery::scrape_namespaces(ns, &admitted),
        scraped: discovery::scrape_namespaces(ns, &scraped),
    })
}

/// Grants the collector pod discovery where it scrapes: the discovery role bound in each of
/// `scraped` (its own namespace first). Bindings in other namespaces are announced by the
/// finalizer before they are made, and those no longer wanted are deleted.
async fn bind_discovery(ctx: &Context, ns: &str, tp: &TelemetryPipeline, scraped: &[String]) -> Result<()> {
    let foreign: Vec<&str> = scraped.iter().map(String::as_str).filter(|n| *n != ns).collect();
    let held = tp.finalizers().iter().any(|f| f == discovery::FINALIZER);
    if !foreign.is_empty() && !held {
        set_finalizer(&ctx.client, ns, tp, true).await?;
    }
    for namespace in scraped {
        let binding = discovery::role_binding(tp, namespace, &ctx.config.discovery_role);
        let api = Api::<RoleBinding>::namespaced(ctx.client.clone(), namespace);
        match apply(&api, &binding).await {
            // A binding's roleRef is immutable: one made for another role (an earlier version's own
            // Role, or a changed --collector-discovery-role) is replaced.
            Err(Error::Kube(kube::Error::Api(e))) if e.code == 422 => {
                api.delete(&discovery::binding_name(tp, namespace), &DeleteParams::background()).await?;
                apply(&api, &binding).await?;
            }
            r => drop(r?),
        }
    }
    if held || !foreign.is_empty() {
        prune_foreign_bindings(&ctx.client, tp, &foreign).await?;
        if foreign.is_empty() {
            set_finalizer(&ctx.client, ns, tp, false).await?;
        }
    }
    Ok(())
}

/// Deletes the pipeline's RoleBindings in other namespaces except those in `keep`.
async fn prune_foreign_bindings(client: &kube::Client, tp: &TelemetryPipeline, keep: &[&str]) -> Result<()> {
    let all: Api<RoleBinding> = Api::all(client.clone());
    let bindings = all.list(&ListParams::default().labels(&discovery::foreign_selector(tp))).await?;
    for b in bindings.items {
        let namespace = b.namespace().unwrap_or_default();
        if keep.contains(&namespace.as_str()) {
            continue;
        }
        let api = Api::<RoleBinding>::namespaced(client.clone(), &namespace);
        match api.delete(&b.name_any(), &DeleteParams::background()).await {
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            r => drop(r?),
        }
    }
    Ok(())
}

/// Deletes the pipeline's RoleBindings in other namespaces and drops its finalizer, if it holds
/// one (a pipeline being deleted; also the uninstall hook, which may run without the operator).
pub async fn release_foreign_bindings(client: &kube::Client, ns: &str, tp: &TelemetryPipeline) -> Result<()> {
    if tp.finalizers().iter().any(|f| f == discovery::FINALIZER) {
        prune_foreign_bindings(client, tp, &[]).await?;
        set_finalizer(client, ns, tp, false).await?;
    }
    Ok(())
}

/// Adds or removes [`discovery::FINALIZER`] (conditional on the resourceVersion read, so a
/// concurrent change of the list is not overwritten).
async fn set_finalizer(client: &kube::Client, ns: &str, tp: &TelemetryPipeline, present: bool) -> Result<()> {
    let mut finalizers: Vec<String> = tp.finalizers().iter().filter(|f| *f != discovery::FINALIZER).cloned().collect();
    if present {
        finalizers.push(discovery::FINALIZER.to_string());
    }
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": tp.resource_version()}});
    let api: Api<TelemetryPipeline> = Api::namespaced(client.clone(), ns);
    api.patch(&tp.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Deletes the pipeline's child of this kind (named `<name>-collector`) if the pipeline owns it.
async fn delete_owned<K>(api: &Api<K>, tp: &TelemetryPipeline) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let name = names::child_name(&tp.name_any());
    let uid = tp.uid().unwrap_or_default();
    if let Some(obj) = api.get_opt(&name).await?
        && obj.owner_references().iter().any(|r| r.uid == uid)
    {
        api.delete(&name, &DeleteParams::background()).await?;
    }
    Ok(())
}

/// The collector pods of the pipeline (its workload's selector), for the rollout's health.
async fn collector_pods(ctx: &Context, ns: &str, name: &str) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    Ok(api.list(&ListParams::default().labels(&names::pod_selector(name))).await?.items)
}

/// Sets the kstatus pair: `Reconciling` (work in progress) and `Stalled` (cannot progress without a
/// change), read by `kubectl wait`, Argo CD and Flux beside `Ready`.
fn set_kstatus(
    status: &mut TelemetryPipelineStatus,
    reconciling: Option<(&str, &str)>,
    stalled: Option<(&str, &str)>,
    generation: Option<i64>,
) {
    let (r_reason, r_msg) = reconciling.unwrap_or(("Idle", ""));
    conditions::set(&mut status.conditions, "Reconciling", reconciling.is_some(), r_reason, r_msg, generation);
    let (s_reason, s_msg) = stalled.unwrap_or(("Healthy", ""));
    conditions::set(&mut status.conditions, "Stalled", stalled.is_some(), s_reason, s_msg, generation);
}

async fn patch_status(ctx: &Context, ns: &str, name: &str, status: &TelemetryPipelineStatus) -> Result<()> {
    let api: Api<TelemetryPipeline> = Api::namespaced(ctx.client.clone(), ns);
    let patch =
        json!({"apiVersion": "telemetry.thereview.dev/v1alpha1", "kind": "TelemetryPipeline", "status": status});
    api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

/// Reconciles one pipeline.
pub async fn reconcile(tp: Arc<TelemetryPipeline>, ctx: Arc<Context>) -> Result<Action> {
    let key = crate::context::failure_key(&*tp);
    let action = reconcile_once(tp, ctx.clone()).await?;
    // A success ends the run of failures: the next error starts again from the shortest delay.
    ctx.failures.reset(&key);
    Ok(action)
}

async fn reconcile_once(tp: Arc<TelemetryPipeline>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.start(CONTROLLER);
    let ns = tp.namespace().ok_or_else(|| Error::MissingNamespace(tp.name_any()))?;
    let name = tp.name_any();
    if tp.metadata.deletion_timestamp.is_some() {
        // Children in its own namespace are garbage-collected; the bindings elsewhere are ours to remove.
        release_foreign_bindings(&ctx.client, &ns, &tp).await?;
        return Ok(Action::await_change());
    }
    let generation = tp.metadata.generation;
    let mut status = tp.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    status.instrumented_services = attached(&ctx.isvcs.state(), &ns, &name);
    status.endpoints = Some(names::endpoints(&tp));

    let live_replicas = live_replicas(&ctx, &ns, &tp).await?;
    let served = served_namespaces(&ctx, &ns, &tp).await?;
    let input = RenderInput {
        name: &name,
        namespace: &ns,
        spec: &tp.spec,
        memory_limit_bytes: resources::memory_limit_bytes(&tp),
        live_replicas,
        scrape_namespaces: &served.scraped,
    };
    let cfg = config::render(&input);
    // The tenant policy first: a refused pipeline is not rendered further, and its Secrets are not read.
    let refused = guardrails::check(&tp.spec, &ctx.config.tenant_policy, &ctx.config.collector_image);
    let (reason, problems) = if refused.is_empty() {
        let secrets = referenced_secrets(&ctx, &ns, &tp).await?;
        ("InvalidConfig", validate::validate(&tp.spec, &cfg, &secrets))
    } else {
        ("NotAllowed", refused)
    };
    if !problems.is_empty() {
        report_refusal(&ctx, &tp, &mut status, reason, &validate::summary(&problems)).await?;
        // Secrets are not watched (that would need cluster-wide Secret access): poll for them.
        return Ok(Action::requeue(Duration::from_secs(15)));
    }

    let yaml = config::to_yaml(&cfg)?;
    let hash = config::config_hash(&yaml, &tp.spec);
    let applied = apply_children(&ctx, &ns, &tp, &served, &yaml, &hash).await?;
    if status.config_hash.as_deref() != Some(hash.as_str()) {
        info!(pipeline = %format!("{ns}/{name}"), %hash, "collector configuration rolled out");
    }
    let pods = collector_pods(&ctx, &ns, &name).await?;
    let health = rollout::assess(&applied, &pods, &hash);
    status.ready_replicas = Some(health.ready());
    status.replicas = Some(pods.len() as i32);
    status.selector = Some(names::pod_selector(&name));
    status.config_hash = Some(hash);
    // Reported with the config that carries it, never for a refused one.
    status.scrape = scrape::status(input.scraping(), &served.scraped);
    conditions::set(&mut status.conditions, "ConfigValid", true, "Valid", "", generation);
    let requeue = report_rollout(&ctx, &tp, &mut status, &health).await;
    patch_status(&ctx, &ns, &name, &status).await?;
    // Children are watched, so a rollout wakes us up; the periodic requeue corrects drift of anything else.
    Ok(Action::requeue(Duration::from_secs(requeue)))
}

/// Reports a refused pipeline (invalid config or tenant policy): nothing is applied, the last
/// valid configuration keeps running; a Warning Event the first time this message appears.
async fn report_refusal(
    ctx: &Context,
    tp: &TelemetryPipeline,
    status: &mut TelemetryPipelineStatus,
    reason: &str,
    message: &str,
) -> Result<()> {
    let generation = tp.metadata.generation;
    let new_problem =
        !status.conditions.iter().any(|c| c.type_ == "ConfigValid" && c.status == "False" && c.message == message);
    conditions::set(&mut status.conditions, "ConfigValid", false, reason, message, generation);
    conditions::set(
        &mut status.conditions,
        "Degraded",
        true,
        reason,
        "the last valid configuration keeps running",
        generation,
    );
    conditions::set(&mut status.conditions, "Progressing", false, reason, message, generation);
    conditions::set(&mut status.conditions, "Ready", false, reason, message, generation);
    set_kstatus(status, None, Some((reason, message)), generation);
    let (ns, name) = (tp.namespace().unwrap_or_default(), tp.name_any());
    patch_status(ctx, &ns, &name, status).await?;
    if new_problem {
        warn!(pipeline = %format!("{ns}/{name}"), %message, "pipeline refused");
        publish_warning(ctx, tp, reason, message, "Validate").await;
    }
    Ok(())
}

/// Publishes a Warning Event on the pipeline (a failure to publish is logged, not retried).
async fn publish_warning(ctx: &Context, tp: &TelemetryPipeline, reason: &str, message: &str, action: &str) {
    let ev = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(message.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &tp.object_ref(&())).await {
        warn!(error = %e, "publishing event failed");
    }
}

/// Applies every child of an accepted pipeline, server-side, and prunes what it no longer wants:
/// ServiceAccount, discovery RoleBindings, NetworkPolicy, ConfigMap, Services, HPA, PDB and the
/// collector workload (of the one kind the spec calls for). Returns the applied workload.
async fn apply_children(
    ctx: &Context,
    ns: &str,
    tp: &TelemetryPipeline,
    served: &Served,
    yaml: &str,
    hash: &str,
) -> Result<Workload> {
    let client = ctx.client.clone();
    apply(&Api::<ServiceAccount>::namespaced(client.clone(), ns), &resources::service_account(tp)).await?;
    bind_discovery(ctx, ns, tp, &served.scraped).await?;
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    if ctx.config.network_policies {
        apply(&policies, &network::network_policy(tp, resources::child_meta(tp), &served.senders)).await?;
    } else {
        delete_owned(&policies, tp).await?;
    }
    apply(&Api::<ConfigMap>::namespaced(client.clone(), ns), &resources::config_map(tp, yaml)).await?;
    let service = resources::service(tp);
    apply(&Api::<Service>::namespaced(client.clone(), ns), &service).await?;
    let headless = topology::headless(tp, &service, resources::child_meta(tp));
    apply(&Api::<Service>::namespaced(client.clone(), ns), &headless).await?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    match topology::hpa(tp, resources::child_meta(tp)) {
        Some(hpa) => drop(apply(&hpas, &hpa).await?),
        None => delete_owned(&hpas, tp).await?,
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    match topology::pdb(tp, resources::child_meta(tp)) {
        Some(pdb) => drop(apply(&pdbs, &pdb).await?),
        None => delete_owned(&pdbs, tp).await?,
    }
    Ok(match resources::workload(tp, hash, config::secret_env(&tp.spec), &ctx.config.collector_image) {
        Workload::Deployment(d) => {
            prune_other_workloads(ctx, ns, tp, topology::WorkloadKind::Deployment).await?;
            Workload::Deployment(Box::new(apply(&Api::<Deployment>::namespaced(client, ns), &d).await?))
        }
        Workload::StatefulSet(s) => {
            prune_other_workloads(ctx, ns, tp, topology::WorkloadKind::StatefulSet).await?;
            let api = Api::<StatefulSet>::namespaced(client, ns);
            delete_if_claim_templates_differ(&api, tp, &s).await?;
            Workload::StatefulSet(Box::new(apply(&api, &s).await?))
        }
        Workload::DaemonSet(ds) => {
            prune_other_workloads(ctx, ns, tp, topology::WorkloadKind::DaemonSet).await?;
            Workload::DaemonSet(Box::new(apply(&Api::<DaemonSet>::namespaced(client, ns), &ds).await?))
        }
    })
}

/// Sets the conditions the rollout's health calls for (and a Warning Event on a new failure);
/// returns the requeue delay in seconds.
async fn report_rollout(
    ctx: &Context,
    tp: &TelemetryPipeline,
    status: &mut TelemetryPipelineStatus,
    health: &Rollout,
) -> u64 {
    let generation = tp.metadata.generation;
    match health {
        Rollout::Complete { .. } => {
            conditions::set(&mut status.conditions, "Degraded", false, "AsExpected", "", generation);
            conditions::set(&mut status.conditions, "Progressing", false, "RolloutComplete", "", generation);
            conditions::set(&mut status.conditions, "Ready", true, "Available", "collector is available", generation);
            set_kstatus(status, None, None, generation);
            300
        }
        Rollout::InProgress { message, .. } => {
            conditions::set(&mut status.conditions, "Degraded", false, "AsExpected", "", generation);
            conditions::set(&mut status.conditions, "Progressing", true, "RollingOut", message, generation);
            conditions::set(&mut status.conditions, "Ready", false, "RollingOut", message, generation);
            set_kstatus(status, Some(("RollingOut", message)), None, generation);
            30
        }
        Rollout::Failed { reason, message, .. } => {
            let new_failure =
                !status.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "True" && c.message == *message);
            conditions::set(&mut status.conditions, "Degraded", true, reason, message, generation);
            conditions::set(&mut status.conditions, "Progressing", false, reason, message, generation);
            conditions::set(&mut status.conditions, "Ready", false, reason, message, generation);
            set_kstatus(status, None, Some((reason, message)), generation);
            if new_failure {
                let name = format!("{}/{}", tp.namespace().unwrap_or_default(), tp.name_any());
                warn!(pipeline = %name, %message, "collector rollout failed");
                publish_warning(ctx, tp, reason, message, "Rollout").await;
            }
            // Pods are watched: a fix (new image, pod recovering) wakes us before this.
            60
        }
    }
}

/// Backs off after a failed reconcile, longer with every consecutive failure of the object.
pub fn error_policy(tp: Arc<TelemetryPipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(error = %error, "pipeline reconcile failed");
    ctx.metrics.failure(CONTROLLER, error.metric_label());
    // Exponential per error class (see `backoff`): conflicts and RBAC errors are not retried every few seconds.
    ctx.backoff(&*tp, error)
}
