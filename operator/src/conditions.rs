//! Kubernetes-convention status conditions (so `kubectl wait --for=condition=Ready`, Argo CD and Flux work).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Sets (or replaces) a condition, keeping `lastTransitionTime` when the status did not change so that
/// re-reconciling does not rewrite the status on every pass.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" };
    let previous = conditions.iter().position(|c| c.type_ == type_);
    let last_transition_time = match previous.map(|i| &conditions[i]) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(Timestamp::now()),
    };
    let cond = Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.chars().take(32 * 1024).collect(),
        observed_generation: generation,
        last_transition_time,
    };
    match previous {
        Some(i) => conditions[i] = cond,
        None => conditions.push(cond),
    }
}

/// Whether a condition is present with status True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_kept_when_status_unchanged() {
        let mut c = Vec::new();
        set(&mut c, "Ready", false, "Waiting", "a", Some(1));
        let t0 = c[0].last_transition_time.clone();
        set(&mut c, "Ready", false, "Waiting", "b", Some(2));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, t0);
        assert_eq!(c[0].message, "b");
        set(&mut c, "Ready", true, "Ok", "", Some(2));
        assert!(is_true(&c, "Ready"));
        assert!(!is_true(&c, "Degraded"));
    }
}
