//! Pure rendering of persistent sending queues (`spec.persistence`): the `file_storage` extension
//! and each OTLP exporter's `sending_queue` in the collector config, and the volume that holds the
//! queues' files in the pod (an `emptyDir`, or a claim per pod through a StatefulSet's
//! `volumeClaimTemplates`).
//!
//! What "persistent" promises: with `sending_queue.storage`, the collector writes a request to the
//! queue's files before it acknowledges it to the client, so nothing acknowledged is lost when the
//! collector crashes or the destination is down. That promise breaks if anything acknowledges
//! earlier: the batch processor does (it answers the client once the items are in its in-memory
//! buffer), so a persistent pipeline renders no batch processor and the CRD refuses
//! `spec.processors.batch` beside `spec.persistence`.

use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;
use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use crate::crd::{Persistence, PersistenceVolume, TelemetryPipelineSpec};

/// Component id of the storage extension the queues use.
pub const STORAGE_EXTENSION: &str = "file_storage";
/// Where the queue volume is mounted in the collector container (upstream's default directory).
pub const QUEUE_DIRECTORY: &str = "/var/lib/otelcol/file_storage";
/// Name of the queue volume (and of the claim template: claims are `queue-<pod>`).
pub const VOLUME_NAME: &str = "queue";
/// Share of the volume the queues may fill together: the rest is headroom for the segment being
/// written and for compaction, so a full queue refuses telemetry instead of failing writes.
const FILL_NUMERATOR: i64 = 9;
const FILL_DENOMINATOR: i64 = 10;

/// The spec's persistence settings, if the pipeline keeps its queues on disk.
pub fn of(spec: &TelemetryPipelineSpec) -> Option<&Persistence> {
    spec.persistence.as_ref()
}

/// Whether the pipeline's queues live on per-pod claims (which makes a gateway a StatefulSet).
pub fn uses_claims(spec: &TelemetryPipelineSpec) -> bool {
    of(spec).is_some_and(|p| p.volume == PersistenceVolume::PersistentVolumeClaim)
}

/// The volume size in bytes. The CRD admits only quantities between 16Mi and 1Pi; anything the
/// parser does not know falls back to the default 1Gi rather than to an unbounded queue.
pub fn size_bytes(p: &Persistence) -> i64 {
    crate::quantity::quantity_bytes(&Quantity(p.size.clone())).filter(|b| *b > 0).unwrap_or(1 << 30)
}

/// The byte bound of each OTLP exporter's queue: nine tenths of the volume, shared evenly.
pub fn queue_bytes(p: &Persistence, exporters: usize) -> i64 {
    size_bytes(p) / FILL_DENOMINATOR * FILL_NUMERATOR / exporters.max(1) as i64
}

/// The `file_storage` extension's config. Compaction at start and whenever a queue empties gives
/// the disk back early (upstream's bbolt file never shrinks without it; ours frees whole segments).
pub fn extension(p: &Persistence) -> Value {
    json!({
        "directory": QUEUE_DIRECTORY,
        "fsync": p.fsync,
        "compaction": {"on_start": true, "on_rebound": true, "directory": QUEUE_DIRECTORY},
    })
}

/// Makes an exporter's `sending_queue` persistent: stored by the extension, bounded in bytes.
/// The CRD refuses a disabled queue and an explicit `queueSize` beside persistence, so nothing the
/// user set is overwritten here.
pub fn make_queue_persistent(exporter: &mut serde_json::Map<String, Value>, p: &Persistence, exporters: usize) {
    let queue = exporter.entry("sending_queue").or_insert_with(|| json!({}));
    if let Value::Object(q) = queue {
        q.insert("enabled".into(), json!(true));
        q.insert("storage".into(), json!(STORAGE_EXTENSION));
        q.insert("sizer".into(), json!("bytes"));
        q.insert("queue_size".into(), json!(queue_bytes(p, exporters)));
    }
}

/// The container's mount of the queue volume.
pub fn mount() -> VolumeMount {
    VolumeMount { name: VOLUME_NAME.into(), mount_path: QUEUE_DIRECTORY.into(), ..Default::default() }
}

/// The pod's queue volume for `EmptyDir` (bounded by `sizeLimit`: the kubelet evicts a pod that
/// writes past it, and the queue's own byte bound stays below). `None` for claims, which the
/// StatefulSet's claim template provides.
pub fn pod_volume(p: &Persistence) -> Option<Volume> {
    (p.volume == PersistenceVolume::EmptyDir).then(|| Volume {
        name: VOLUME_NAME.into(),
        empty_dir: Some(EmptyDirVolumeSource { size_limit: Some(Quantity(p.size.clone())), medium: None }),
        ..Default::default()
    })
}

/// The StatefulSet's claim template for `PersistentVolumeClaim`.
pub fn claim_template(p: &Persistence) -> Option<PersistentVolumeClaim> {
    (p.volume == PersistenceVolume::PersistentVolumeClaim).then(|| PersistentVolumeClaim {
        metadata: ObjectMeta { name: Some(VOLUME_NAME.into()), ..Default::default() },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: p.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_string(), Quantity(p.size.clone()))].into()),
                limits: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// What happens to the claims: deleted with the pipeline (nothing left behind), kept when the
/// StatefulSet scales down (a shard scaled back up finds its unsent queue again).
pub fn claim_retention() -> StatefulSetPersistentVolumeClaimRetentionPolicy {
    StatefulSetPersistentVolumeClaimRetentionPolicy {
        when_deleted: Some("Delete".into()),
        when_scaled: Some("Retain".into()),
    }
}

/// What identifies a StatefulSet's claim templates (name, size in bytes, class), to compare the live
/// object's with the desired one's: they are immutable, so a difference means the StatefulSet must
/// be recreated rather than updated. Sizes compare as bytes: the API server rewrites a quantity in
/// its canonical form (`1024Mi` comes back as `1Gi`).
pub fn claim_templates_key(templates: Option<&[PersistentVolumeClaim]>) -> Vec<(String, Option<i64>, Option<String>)> {
    templates
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let spec = c.spec.as_ref();
            let storage = spec
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .and_then(crate::quantity::quantity_bytes);
            (c.metadata.name.clone().unwrap_or_default(), storage, spec.and_then(|s| s.storage_class_name.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persistence(yaml: &str) -> Persistence {
        serde_yaml::from_str(yaml).expect("persistence")
    }

    #[test]
    fn defaults_are_an_empty_dir_of_one_gibibyte_without_fsync() {
        let p = persistence("{}");
        assert_eq!(p.volume, PersistenceVolume::EmptyDir);
        assert_eq!(size_bytes(&p), 1 << 30);
        assert!(!p.fsync);
        let v = pod_volume(&p).expect("emptyDir");
        assert_eq!(v.empty_dir.and_then(|e| e.size_limit), Some(Quantity("1Gi".into())));
        assert!(claim_template(&p).is_none());
    }

    #[test]
    fn the_queues_share_nine_tenths_of_the_volume() {
        let p = persistence("size: 2Gi");
        assert_eq!(queue_bytes(&p, 1), (2 << 30) / 10 * 9);
        assert_eq!(queue_bytes(&p, 3), (2 << 30) / 10 * 9 / 3);
        assert_eq!(queue_bytes(&persistence("size: 500M"), 2), 500_000_000 / 10 * 9 / 2);
    }

    #[test]
    fn a_claim_template_carries_size_and_class_and_its_key_sees_changes() {
        let p = persistence("{volume: PersistentVolumeClaim, size: 5Gi, storageClassName: fast}");
        assert!(pod_volume(&p).is_none());
        let c = claim_template(&p).expect("claim");
        let key = claim_templates_key(Some(std::slice::from_ref(&c)));
        assert_eq!(key, vec![("queue".into(), Some(5 << 30), Some("fast".into()))]);
        // As the API server writes it back: the same size in canonical form is no change.
        let canonical =
            claim_template(&persistence("{volume: PersistentVolumeClaim, size: 5120Mi, storageClassName: fast}"));
        assert_eq!(claim_templates_key(canonical.as_ref().map(std::slice::from_ref)), key);
        let bigger = claim_template(&persistence("{volume: PersistentVolumeClaim, size: 6Gi}")).expect("claim");
        assert_ne!(claim_templates_key(Some(std::slice::from_ref(&bigger))), key);
        assert_ne!(claim_templates_key(None), key);
    }

    #[test]
    fn a_queue_becomes_persistent_keeping_the_users_other_settings() {
        let p = persistence("{size: 1Gi, fsync: true}");
        let mut exporter = serde_json::Map::new();
        exporter.insert("sending_queue".into(), json!({"enabled": true, "num_consumers": 4}));
        make_queue_persistent(&mut exporter, &p, 1);
        assert_eq!(
            exporter["sending_queue"],
            json!({"enabled": true, "num_consumers": 4, "storage": "file_storage", "sizer": "bytes",
                   "queue_size": (1i64 << 30) / 10 * 9})
        );
        assert_eq!(extension(&p)["fsync"], json!(true));
        assert_eq!(extension(&p)["directory"], json!(QUEUE_DIRECTORY));
    }
}
