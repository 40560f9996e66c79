//! Shared state handed to every reconcile: API client, event recorder, metrics, configuration.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;

use crate::backoff::Failures;
use crate::crd::InstrumentedService;
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            collector_image: crate::resources::DEFAULT_IMAGE.to_string(),
            identity: "telemetry-operator".into(),
            tenant_policy: crate::guardrails::TenantPolicy::default(),
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
    /// Consecutive reconcile failures per object, for the exponential backoff.
    pub failures: Arc<Failures>,
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
    pub fn new(client: Client, metrics: Metrics, config: Arc<Config>, isvcs: Store<InstrumentedService>) -> Self {
        let reporter = Reporter { controller: MANAGER.into(), instance: Some(config.identity.clone()) };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            config,
            isvcs,
            failures: Arc::default(),
        }
    }
}
