//! Prometheus metrics of the operator: reconciles, errors by reason, durations.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label of the reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    /// `telemetrypipeline` or `instrumentedservice`.
    pub controller: String,
}

/// Label of the error metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    /// Controller name.
    pub controller: String,
    /// [`crate::error::Error::metric_label`].
    pub reason: String,
}

/// The operator's metrics and their registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Reconciles started.
    pub reconciliations: Family<ControllerLabel, Counter>,
    /// Reconcile failures by reason.
    pub failures: Family<ErrorLabel, Counter>,
    /// Reconcile durations.
    pub duration: Family<ControllerLabel, Histogram>,
    /// The registry serving `/metrics`.
    pub registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        let reconciliations = Family::<ControllerLabel, Counter>::default();
        let failures = Family::<ErrorLabel, Counter>::default();
        let duration = Family::<ControllerLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let mut registry = Registry::with_prefix("telemetry_operator");
        registry.register("reconciliations", "Reconciles started", reconciliations.clone());
        registry.register("reconcile_errors", "Reconcile failures by reason", failures.clone());
        registry.register("reconcile_duration_seconds", "Reconcile duration", duration.clone());
        Self { reconciliations, failures, duration, registry: Arc::new(registry) }
    }
}

impl Metrics {
    /// Counts a reconcile and returns a guard recording its duration when dropped.
    pub fn start(&self, controller: &str) -> ReconcileTimer {
        let label = ControllerLabel { controller: controller.to_string() };
        self.reconciliations.get_or_create(&label).inc();
        ReconcileTimer { start: Instant::now(), histogram: self.duration.get_or_create(&label).clone() }
    }

    /// Counts a failure.
    pub fn failure(&self, controller: &str, reason: String) {
        self.failures.get_or_create(&ErrorLabel { controller: controller.to_string(), reason }).inc();
    }

    /// Text exposition of all metrics.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Records a reconcile's duration on drop.
#[derive(Debug)]
pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_counters_and_histogram() {
        let m = Metrics::default();
        drop(m.start("telemetrypipeline"));
        m.failure("telemetrypipeline", "api_conflict".into());
        let text = m.encode();
        assert!(
            text.contains("telemetry_operator_reconciliations_total{controller=\"telemetrypipeline\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "telemetry_operator_reconcile_errors_total{controller=\"telemetrypipeline\",reason=\"api_conflict\"} 1"
        ));
        assert!(
            text.contains("telemetry_operator_reconcile_duration_seconds_count{controller=\"telemetrypipeline\"} 1")
        );
    }
}
