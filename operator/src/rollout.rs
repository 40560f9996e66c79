//! Health of a pipeline's collector rollout, judged from the workload's status and its pods.
//!
//! A Deployment's own status only says "not available yet"; *why* (a missing image, a crash loop) is
//! written by the kubelet on the pods. So the pipeline reads the pods of the current configuration
//! (those carrying the current config-hash annotation) and turns the first failure it finds into
//! `Degraded=True` with the pod's reason. Pure: the reconciler lists the pods and passes them in.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::resources::{CONFIG_HASH_ANNOTATION, Workload};

/// Container waiting reasons that do not heal by waiting: the rollout has failed until someone
/// changes the spec (or the registry / node). Set by the kubelet in `containerStatuses[].state.waiting`.
pub const FAILED_WAITING_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Reason of the Deployment's `Progressing=False` condition once `progressDeadlineSeconds` passed.
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// Where the rollout of the current configuration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every desired pod runs the current template and is ready.
    Complete {
        /// Ready collector pods.
        ready: i32,
    },
    /// Pods are being replaced or started; nothing has failed (yet).
    InProgress {
        /// Ready collector pods.
        ready: i32,
        /// What is awaited, for the conditions' message.
        message: String,
    },
    /// The rollout cannot finish without a change: a pod reports a permanent waiting reason or the
    /// Deployment exceeded its progress deadline.
    Failed {
        /// Ready collector pods.
        ready: i32,
        /// The pod's waiting reason or `ProgressDeadlineExceeded` (becomes the conditions' reason).
        reason: String,
        /// Names the pod and container, or the Deployment.
        message: String,
    },
}

impl Rollout {
    /// Ready collector pods.
    pub fn ready(&self) -> i32 {
        match self {
            Self::Complete { ready } | Self::InProgress { ready, .. } | Self::Failed { ready, .. } => *ready,
        }
    }
}

/// The first permanent failure among the pods of the current configuration (`hash`), as
/// `(reason, message)`. Pods of an older configuration are ignored: they are being replaced, and a
/// crash of an old pod says nothing about the new config. Pods being deleted are ignored too.
pub fn failing_pod(pods: &[Pod], hash: &str) -> Option<(String, String)> {
    let mut pods: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.metadata.annotations.as_ref().and_then(|a| a.get(CONFIG_HASH_ANNOTATION)).map(String::as_str)
                == Some(hash)
        })
        .collect();
    // Deterministic choice, so the condition message does not flap between pods.
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods.into_iter().find_map(|p| {
        let status = p.status.as_ref()?;
        let statuses =
            status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
        statuses.filter_map(waiting_failure).next().map(|(container, reason, detail)| {
            let pod = p.metadata.name.as_deref().unwrap_or_default();
            let mut message = format!("pod {pod}: container {container}: {reason}");
            if !detail.is_empty() {
                message.push_str(": ");
                message.push_str(&detail);
            }
            (reason, message)
        })
    })
}

fn waiting_failure(c: &ContainerStatus) -> Option<(String, String, String)> {
    let waiting = c.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    FAILED_WAITING_REASONS
        .contains(&reason)
        .then(|| (c.name.clone(), reason.to_string(), waiting.message.clone().unwrap_or_default()))
}

/// Judges the rollout of `workload` (as returned by the API server, with status) given the pods
/// its selector matches and the current config hash.
pub fn assess(workload: &Workload, pods: &[Pod], hash: &str) -> Rollout {
    match workload {
        Workload::Deployment(d) => {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let st = d.status.clone().unwrap_or_default();
            // A status written for an older generation describes the previous template.
            let current = st.observed_generation.is_some() && st.observed_generation >= d.metadata.generation;
            let ready = st.ready_replicas.unwrap_or(0);
            if let Some((reason, message)) = failing_pod(pods, hash) {
                return Rollout::Failed { ready, reason, message };
            }
            let deadline = st.conditions.iter().flatten().find(|c| {
                c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED)
            });
            if let Some(c) = deadline.filter(|_| current) {
                let name = d.metadata.name.as_deref().unwrap_or_default();
                let detail = c.message.clone().unwrap_or_default();
                return Rollout::Failed {
                    ready,
                    reason: PROGRESS_DEADLINE_EXCEEDED.into(),
                    message: format!("Deployment {name}: {PROGRESS_DEADLINE_EXCEEDED}: {detail}"),
                };
            }
            // Ready means the *new* pods are ready: every replica runs the current template
            // (updated == desired, no old pods left) and is ready and available.
            let updated = st.updated_replicas.unwrap_or(0);
            let done = current
                && updated == want
                && st.replicas.unwrap_or(0) == want
                && ready >= want
                && st.available_replicas.unwrap_or(0) >= want;
            if done {
                Rollout::Complete { ready }
            } else {
                Rollout::InProgress {
                    ready,
                    message: format!("waiting for collector pods: {updated}/{want} updated, {ready}/{want} ready"),
                }
            }
        }
        Workload::StatefulSet(s) => {
            let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let st = s.status.clone().unwrap_or_default();
            let current = st.observed_generation.is_some() && st.observed_generation >= s.metadata.generation;
            let ready = st.ready_replicas.unwrap_or(0);
            if let Some((reason, message)) = failing_pod(pods, hash) {
                return Rollout::Failed { ready, reason, message };
            }
            // Every pod runs the update revision (a StatefulSet replaces its pods one at a time, from
            // the highest ordinal down) and is ready and available.
            let updated = st.updated_replicas.unwrap_or(0);
            let same_revision = st.current_revision.is_some() && st.current_revision == st.update_revision;
            let done = current
                && same_revision
                && updated == want
                && st.replicas == want
                && ready >= want
                && st.available_replicas.unwrap_or(0) >= want;
            if done {
                Rollout::Complete { ready }
            } else {
                Rollout::InProgress {
                    ready,
                    message: format!("waiting for collector pods: {updated}/{want} updated, {ready}/{want} ready"),
                }
            }
        }
        Workload::DaemonSet(ds) => {
            let st = ds.status.clone().unwrap_or_default();
            let current = st.observed_generation.is_some() && st.observed_generation >= ds.metadata.generation;
            let ready = st.number_ready;
            if let Some((reason, message)) = failing_pod(pods, hash) {
                return Rollout::Failed { ready, reason, message };
            }
            let want = st.desired_number_scheduled;
            let updated = st.updated_number_scheduled.unwrap_or(0);
            let done = current && updated == want && ready >= want && st.number_available.unwrap_or(0) >= want;
            if done {
                Rollout::Complete { ready }
            } else {
                Rollout::InProgress {
                    ready,
                    message: format!("waiting for collector pods: {updated}/{want} updated, {ready}/{want} ready"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    fn deployment(generation: i64, status: serde_json::Value) -> Workload {
        Workload::Deployment(Box::new(
            serde_json::from_value::<Deployment>(json!({
                "metadata": {"name": "main-collector", "generation": generation},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": status,
            }))
            .expect("deployment"),
        ))
    }

    fn pod(name: &str, hash: &str, waiting: Option<&str>) -> Pod {
        let state = match waiting {
            Some(r) => json!({"waiting": {"reason": r, "message": "details"}}),
            None => json!({"running": {}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {CONFIG_HASH_ANNOTATION: hash}},
            "status": {"containerStatuses": [{"name": "collector", "image": "x", "imageID": "", "ready": false,
                "restartCount": 0, "state": state}]},
        }))
        .expect("pod")
    }

    const DONE: fn() -> serde_json::Value = || json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2});

    #[test]
    fn complete_only_when_all_new_pods_are_ready_for_the_current_generation() {
        assert_eq!(assess(&deployment(3, DONE()), &[], "h"), Rollout::Complete { ready: 2 });
        // Status of the previous generation: the controller has not seen the new template yet.
        assert!(matches!(assess(&deployment(4, DONE()), &[], "h"), Rollout::InProgress { .. }));
        // Old pods still around (surge): not done even though 2 are ready.
        let surge = json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "readyReplicas": 2,
            "availableReplicas": 2});
        assert!(matches!(assess(&deployment(3, surge), &[], "h"), Rollout::InProgress { .. }));
        let half = json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 2,
            "availableReplicas": 2});
        assert!(matches!(assess(&deployment(3, half), &[], "h"), Rollout::InProgress { .. }));
    }

    #[test]
    fn a_failing_new_pod_fails_the_rollout_naming_pod_and_reason() {
        for reason in FAILED_WAITING_REASONS {
            let pods = [pod("main-collector-b", "h", None), pod("main-collector-a", "h", Some(reason))];
            match assess(&deployment(3, json!({})), &pods, "h") {
                Rollout::Failed { reason: r, message, .. } => {
                    assert_eq!(r, *reason);
                    assert!(message.contains("pod main-collector-a") && message.contains(reason), "{message}");
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
        // Benign waiting reasons and pods of the old configuration do not fail the rollout.
        let pods = [pod("old", "previous", Some("CrashLoopBackOff")), pod("new", "h", Some("ContainerCreating"))];
        assert!(matches!(assess(&deployment(3, json!({})), &pods, "h"), Rollout::InProgress { .. }));
    }

    #[test]
    fn a_statefulset_is_complete_when_every_shard_runs_the_update_revision() {
        let sts = |status: serde_json::Value| {
            Workload::StatefulSet(Box::new(
                serde_json::from_value(json!({
                    "metadata": {"name": "main-collector", "generation": 2},
                    "spec": {"replicas": 3, "selector": {}, "template": {}},
                    "status": status,
                }))
                .expect("statefulset"),
            ))
        };
        let done = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
            "availableReplicas": 3, "currentRevision": "r2", "updateRevision": "r2"});
        assert_eq!(assess(&sts(done), &[], "h"), Rollout::Complete { ready: 3 });
        let rolling = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 3,
            "availableReplicas": 3, "currentRevision": "r1", "updateRevision": "r2"});
        assert!(matches!(assess(&sts(rolling), &[], "h"), Rollout::InProgress { .. }));
        let pods = [pod("main-collector-2", "h", Some("CrashLoopBackOff"))];
        assert!(matches!(assess(&sts(json!({"replicas": 3})), &pods, "h"), Rollout::Failed { .. }));
    }

    #[test]
    fn progress_deadline_fails_only_when_current() {
        let st = |gen_| {
            json!({"observedGeneration": gen_, "conditions": [{"type": "Progressing", "status": "False",
                "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet has timed out progressing."}]})
        };
        match assess(&deployment(3, st(3)), &[], "h") {
            Rollout::Failed { reason, message, .. } => {
                assert_eq!(reason, PROGRESS_DEADLINE_EXCEEDED);
                assert!(message.contains("Deployment main-collector"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // The deadline of the previous template does not judge a new one.
        assert!(matches!(assess(&deployment(4, st(3)), &[], "h"), Rollout::InProgress { .. }));
    }
}
