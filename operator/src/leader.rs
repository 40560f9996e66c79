//! Leader election through a coordination.k8s.io Lease, so two replicas never reconcile at once.
//!
//! A replica acquires the Lease when it is free, expired or already its own, using the Lease's
//! resourceVersion for optimistic concurrency; the holder renews it every third of its duration and
//! stops (error) when it can no longer prove it still holds it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use tracing::info;

use crate::error::{Error, Result};

/// Where the Lease lives and who we are.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// Lease name.
    pub name: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub duration: Duration,
}

/// Whether `lease` may be taken by `identity` at `now`.
pub fn can_acquire(lease: &LeaseSpec, identity: &str, now: Timestamp) -> bool {
    match lease.holder_identity.as_deref() {
        None | Some("") => true,
        Some(h) if h == identity => true,
        Some(_) => {
            let secs = i64::from(lease.lease_duration_seconds.unwrap_or(15));
            match &lease.renew_time {
                Some(MicroTime(t)) => *t + SignedDuration::from_secs(secs) < now,
                None => true,
            }
        }
    }
}

fn spec_for(cfg: &LeaseConfig, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
    let same_holder = previous.and_then(|p| p.holder_identity.as_deref()) == Some(cfg.identity.as_str());
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(cfg.duration.as_secs()).unwrap_or(15)),
        acquire_time: if same_holder { previous.and_then(|p| p.acquire_time.clone()) } else { Some(MicroTime(now)) },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if same_holder || previous.is_none() { transitions } else { transitions + 1 }),
        ..Default::default()
    }
}

/// One attempt to take or renew the lease. `Ok(true)` when we hold it afterwards.
pub async fn try_acquire(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool> {
    let now = Timestamp::now();
    match api.get_opt(&cfg.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(cfg.name.clone()), ..Default::default() },
                spec: Some(spec_for(cfg, None, now)),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Some(mut lease) => {
            let current = lease.spec.clone().unwrap_or_default();
            if !can_acquire(&current, &cfg.identity, now) {
                return Ok(false);
            }
            lease.spec = Some(spec_for(cfg, Some(&current), now));
            // `replace` carries the resourceVersion we read: a concurrent writer makes this a 409.
            match api.replace(&cfg.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Waits until this replica holds the lease.
pub async fn acquire(client: Client, cfg: &LeaseConfig) -> Result<()> {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let retry = cfg.duration / 5;
    loop {
        if try_acquire(&api, cfg).await? {
            info!(lease = %cfg.name, identity = %cfg.identity, "acquired leadership");
            return Ok(());
        }
        tokio::time::sleep(retry).await;
    }
}

/// Renews the lease until it is lost; returns the error that ends leadership.
pub async fn hold(client: Client, cfg: &LeaseConfig) -> Error {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(cfg.duration / 3).await;
        match try_acquire(&api, cfg).await {
            Ok(true) => last_renewal = tokio::time::Instant::now(),
            Ok(false) => return Error::LeaseLost(cfg.name.clone()),
            Err(e) if last_renewal.elapsed() >= cfg.duration => {
                tracing::error!(error = %e, "could not renew the lease in time");
                return Error::LeaseLost(cfg.name.clone());
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
        }
    }
}

/// Gives the lease up (on shutdown) so a standby replica takes over at once.
pub async fn release(client: Client, cfg: &LeaseConfig) -> Result<()> {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    if let Some(mut lease) = api.get_opt(&cfg.name).await?
        && lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(cfg.identity.as_str())
    {
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
        }
        api.replace(&cfg.name, &PostParams::default(), &lease).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_rules() {
        let now = Timestamp::now();
        let held = LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        };
        assert!(can_acquire(&held, "a", now), "own lease renews");
        assert!(!can_acquire(&held, "b", now), "fresh lease of another is respected");
        assert!(can_acquire(&held, "b", now + SignedDuration::from_secs(16)), "expired lease is taken");
        assert!(can_acquire(&LeaseSpec::default(), "b", now), "released lease is free");
    }
}
