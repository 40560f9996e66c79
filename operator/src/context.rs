//! Shared state handed to every reconcile: API client, event recorder, metrics, configuration.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;

use crate::backoff::Failures;
use crate::crd::{InstrumentedService, TelemetryPipeline};
use crate::metrics::Metrics;

/// Field manager of a pipeline's children and of both resources' status.
pub const MANAGER: &str = "telemetry-operator";

/// Operator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Collector image used when a pipeline does not name one.
    pub collector_image: String,
    /// Identity of this replica (events and the Lease holder).
    pub identity: String,
    /// What pipeline authors may put into their collector pods.
    pub tenant_policy: crate::guardrails::TenantPolicy,
    /// The role the collectors' pod discovery is bound to (shipped by the chart; see `discovery`).
    pub discovery_role: crate::discovery::DiscoveryRole,
    /// Whether each pipeline gets a NetworkPolicy admitting OTLP only from its sending namespaces.
    pub network_policies: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            collector_image: crate::resources::DEFAULT_IMAGE.to_string(),
            identity: "telemetry-operator".into(),
            tenant_policy: crate::guardrails::TenantPolicy::default(),
            discovery_role: crate::discovery::DiscoveryRole::default(),
            network_policies: true,
        }
    }
}

/// What each reconcile gets.
#[derive(Clone)]
pub struct Context {
    /// API client.
    pub client: Client,
    /// Publishes Events on the reconciled objects.
    pub recorder: Recorder,
    /// Operator metrics.
    pub metrics: Metrics,
    /// Settings.
    pub config: Arc<Config>,
    /// Cache of all InstrumentedServices (pipelines list the ones attached to them).
    pub isvcs: Store<InstrumentedService>,
    /// Cache of the watched pipelines (an InstrumentedService reads its pipeline from here).
    pub pipelines: Store<TelemetryPipeline>,
    /// Consecutive reconcile failures per object, for the exponential backoff.
    pub failures: Arc<Failures>,
    /// Workload generations our own injections produced (see [`OwnWrites`]).
    pub own_writes: Arc<OwnWrites>,
}

/// The generation each workload got from our own last injection, by uid. The workload watch sees
/// that change come back as an event; it cannot change the outcome, so it must not queue another
/// reconcile (one reconcile per object instead of two). A lost race only costs one no-op reconcile.
#[derive(Debug, Default)]
pub struct OwnWrites {
    generations: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl OwnWrites {
    /// Records that our write gave workload `uid` generation `generation`.
    pub fn record(&self, uid: &str, generation: i64) {
        if let Ok(mut g) = self.generations.lock() {
            g.insert(uid.to_string(), generation);
        }
    }

    /// Whether `generation` of workload `uid` is the one our last write produced (forgets it: any later
    /// event of that generation is someone else's concern again).
    pub fn is_own(&self, uid: &str, generation: Option<i64>) -> bool {
        let Ok(mut g) = self.generations.lock() else { return false };
        match (g.get(uid), generation) {
            (Some(own), Some(seen)) if *own == seen => {
                g.remove(uid);
                true
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Key of an object in [`Context::failures`].
pub fn failure_key<K: kube::Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

impl Context {
    /// Action after a failed reconcile of `obj`: exponential backoff by the error's class.
    pub fn backoff<K: kube::Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        error: &crate::error::Error,
    ) -> kube::runtime::controller::Action {
        let attempt = self.failures.record(&failure_key(obj));
        kube::runtime::controller::Action::requeue(crate::backoff::delay(
            crate::backoff::ErrorClass::of(error),
            attempt,
        ))
    }

    /// Builds a context.
    pub fn new(
        client: Client,
        metrics: Metrics,
        config: Arc<Config>,
        isvcs: Store<InstrumentedService>,
        pipelines: Store<TelemetryPipeline>,
        own_writes: Arc<OwnWrites>,
    ) -> Self {
        let reporter = Reporter { controller: MANAGER.into(), instance: Some(config.identity.clone()) };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            config,
            isvcs,
            pipelines,
            failures: Arc::default(),
            own_writes,
        }
    }
}
