//! Where a pipeline's collector discovers the pods it scrapes, and the RBAC that lets it: its own
//! namespace, plus each other namespace that has an attached InstrumentedService asking for metrics
//! and that the pipeline admits (`spec.allowedNamespaces`, see `consent`).
//!
//! The permissions are not the operator's to invent. The cluster admin ships one role (the chart's
//! `<release>-collector-discovery` ClusterRole: pods get/list/watch, or a Role in the watched
//! namespace for a namespaced install); the operator binds it with a RoleBinding per namespace, which
//! RBAC allows through `bind` on that one role name, without the operator holding what the role
//! grants. A RoleBinding in another namespace cannot be owned by the pipeline (owner references do
//! not cross namespaces), so those carry labels naming the pipeline, are pruned when no longer
//! wanted, and the pipeline holds [`FINALIZER`] while any exist.
//!
//! Pure: the reconciler reads the InstrumentedServices and Namespace labels, applies and prunes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::config::{PIPELINE_LABEL, PIPELINE_NS_LABEL};
use crate::crd::{InstrumentedService, TelemetryPipeline};
use crate::names::{MANAGED_BY, child_name, labels};

/// Held by a pipeline while RoleBindings of it exist in other namespaces, so its deletion removes them.
pub const FINALIZER: &str = "telemetry.thereview.dev/discovery-bindings";

/// The role the collectors' pod discovery is granted through: `ClusterRole/<name>` or `Role/<name>`
/// (a Role exists in one namespace only, so it serves a namespaced install).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryRole {
    /// `ClusterRole` or `Role`.
    pub kind: RoleKind,
    /// The role's name.
    pub name: String,
}

/// Kind of [`DiscoveryRole`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Bound by RoleBindings in any namespace.
    ClusterRole,
    /// Bound in its own namespace only.
    Role,
}

impl Default for DiscoveryRole {
    fn default() -> Self {
        Self { kind: RoleKind::ClusterRole, name: "telemetry-operator-collector-discovery".into() }
    }
}

impl FromStr for DiscoveryRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, name) =
            s.split_once('/').ok_or_else(|| format!("{s:?}: expected ClusterRole/<name> or Role/<name>"))?;
        let kind = match kind {
            "ClusterRole" => RoleKind::ClusterRole,
            "Role" => RoleKind::Role,
            other => return Err(format!("{other:?}: the kind must be ClusterRole or Role")),
        };
        if name.is_empty() || name.contains('/') {
            return Err(format!("{s:?}: the role name must be one non-empty path segment"));
        }
        Ok(Self { kind, name: name.to_string() })
    }
}

impl fmt::Display for DiscoveryRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            RoleKind::ClusterRole => "ClusterRole",
            RoleKind::Role => "Role",
        };
        write!(f, "{kind}/{}", self.name)
    }
}

/// Which namespaces attach to a pipeline, and which of them want their pods scraped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attaching {
    /// Other namespaces with at least one InstrumentedService referring to the pipeline.
    pub namespaces: BTreeSet<String>,
    /// Those of them where one of these asks for metrics (`spec.metrics.enabled`).
    pub scraped: BTreeSet<String>,
}

/// The namespaces other than the pipeline's own whose InstrumentedServices refer to it. Consent is
/// checked by the caller (it may need Namespace labels).
pub fn attaching(isvcs: &[std::sync::Arc<InstrumentedService>], namespace: &str, name: &str) -> Attaching {
    let mut out = Attaching::default();
    for i in isvcs {
        let own = i.metadata.namespace.as_deref().unwrap_or_default();
        // An InstrumentedService being deleted is taking its injection back: it no longer attaches.
        if !i.refers_to(namespace, name) || own == namespace || i.metadata.deletion_timestamp.is_some() {
            continue;
        }
        out.namespaces.insert(own.to_string());
        if i.spec.metrics.as_ref().is_some_and(|m| m.enabled) {
            out.scraped.insert(own.to_string());
        }
    }
    out
}

/// The namespaces the collector discovers pods in: its own first, then the others in order.
pub fn scrape_namespaces(own: &str, others: &BTreeSet<String>) -> Vec<String> {
    std::iter::once(own.to_string()).chain(others.iter().filter(|n| *n != own).cloned()).collect()
}

/// Name of the pipeline's discovery RoleBinding in `namespace`: the collector's child name in the
/// pipeline's own namespace, `<pipeline namespace>.<child name>` elsewhere (a namespace name has no
/// dot, so two pipelines never share a name).
pub fn binding_name(tp: &TelemetryPipeline, namespace: &str) -> String {
    let own = tp.namespace().unwrap_or_default();
    let child = child_name(&tp.name_any());
    if namespace == own { child } else { format!("{own}.{child}") }
}

/// Labels selecting a pipeline's RoleBindings in other namespaces (for pruning and deletion).
pub fn foreign_labels(tp: &TelemetryPipeline) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (PIPELINE_LABEL.to_string(), tp.name_any()),
        (PIPELINE_NS_LABEL.to_string(), tp.namespace().unwrap_or_default()),
    ])
}

/// [`foreign_labels`] as a label selector.
pub fn foreign_selector(tp: &TelemetryPipeline) -> String {
    foreign_labels(tp).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// The RoleBinding granting the pipeline's collector ServiceAccount the discovery role in
/// `namespace`. In its own namespace it is owned by the pipeline (garbage-collected with it);
/// elsewhere it carries [`foreign_labels`].
pub fn role_binding(tp: &TelemetryPipeline, namespace: &str, role: &DiscoveryRole) -> RoleBinding {
    let own = tp.namespace().unwrap_or_default();
    let foreign = namespace != own;
    let metadata = ObjectMeta {
        name: Some(binding_name(tp, namespace)),
        namespace: Some(namespace.to_string()),
        labels: Some(if foreign { foreign_labels(tp) } else { labels(&tp.name_any()) }),
        owner_references: if foreign { None } else { tp.controller_owner_ref(&()).map(|o: OwnerReference| vec![o]) },
        ..Default::default()
    };
    RoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: match role.kind {
                RoleKind::ClusterRole => "ClusterRole".into(),
                RoleKind::Role => "Role".into(),
            },
            name: role.name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: child_name(&tp.name_any()),
            namespace: Some(own),
            ..Default::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn pipeline() -> TelemetryPipeline {
        let mut tp = TelemetryPipeline::new("main", serde_yaml::from_str("exporters: {debug: {}}").expect("spec"));
        tp.metadata.namespace = Some("obs".into());
        tp.metadata.uid = Some("uid-1".into());
        tp
    }

    fn isvc(ns: &str, yaml: &str) -> Arc<InstrumentedService> {
        let mut i = InstrumentedService::new("app", serde_yaml::from_str(yaml).expect("isvc spec"));
        i.metadata.namespace = Some(ns.into());
        Arc::new(i)
    }

    #[test]
    fn only_other_namespaces_referring_to_the_pipeline_attach_and_only_metrics_ones_are_scraped() {
        let target = "target: {kind: Deployment, name: app}";
        let isvcs = vec![
            isvc(
                "shop",
                &format!(
                    "pipelineRef: {{name: main, namespace: obs}}\n{target}\nmetrics: {{enabled: true, port: 8080}}"
                ),
            ),
            isvc("cart", &format!("pipelineRef: {{name: main, namespace: obs}}\n{target}")),
            isvc("obs", &format!("pipelineRef: {{name: main}}\n{target}\nmetrics: {{enabled: true, port: 8080}}")),
            isvc(
                "web",
                &format!(
                    "pipelineRef: {{name: other, namespace: obs}}\n{target}\nmetrics: {{enabled: true, port: 8080}}"
                ),
            ),
            isvc("main", &format!("pipelineRef: {{name: main}}\n{target}\nmetrics: {{enabled: true, port: 8080}}")),
        ];
        let got = attaching(&isvcs, "obs", "main");
        assert_eq!(got.namespaces, BTreeSet::from(["cart".to_string(), "shop".to_string()]));
        assert_eq!(got.scraped, BTreeSet::from(["shop".to_string()]));
        assert_eq!(scrape_namespaces("obs", &got.scraped), vec!["obs", "shop"]);
    }

    #[test]
    fn bindings_bind_the_admins_role_to_the_collector_owned_at_home_and_labelled_elsewhere() {
        let role: DiscoveryRole = "ClusterRole/telemetry-operator-collector-discovery".parse().expect("role");
        let home = role_binding(&pipeline(), "obs", &role);
        assert_eq!(home.metadata.name.as_deref(), Some("main-collector"));
        assert!(home.metadata.owner_references.is_some());
        assert_eq!(home.role_ref.kind, "ClusterRole");
        assert_eq!(home.role_ref.name, "telemetry-operator-collector-discovery");
        let subject = &home.subjects.as_ref().expect("subjects")[0];
        assert_eq!((subject.name.as_str(), subject.namespace.as_deref()), ("main-collector", Some("obs")));

        let away = role_binding(&pipeline(), "shop", &role);
        assert_eq!(away.metadata.name.as_deref(), Some("obs.main-collector"));
        assert_eq!(away.metadata.namespace.as_deref(), Some("shop"));
        assert!(away.metadata.owner_references.is_none(), "owner references cannot cross namespaces");
        assert_eq!(away.metadata.labels.as_ref(), Some(&foreign_labels(&pipeline())));
        assert_eq!(
            foreign_selector(&pipeline()),
            "app.kubernetes.io/managed-by=telemetry-operator,telemetry.thereview.dev/pipeline=main,\
             telemetry.thereview.dev/pipeline-namespace=obs"
        );
        assert_eq!(away.subjects.expect("subjects")[0].namespace.as_deref(), Some("obs"));
    }

    #[test]
    fn the_role_flag_names_kind_and_name() {
        assert_eq!("Role/discovery".parse(), Ok(DiscoveryRole { kind: RoleKind::Role, name: "discovery".into() }));
        assert_eq!(DiscoveryRole::default().to_string(), "ClusterRole/telemetry-operator-collector-discovery");
        assert!("discovery".parse::<DiscoveryRole>().expect_err("no kind").contains("ClusterRole/<name>"));
        assert!("Group/x".parse::<DiscoveryRole>().expect_err("bad kind").contains("ClusterRole or Role"));
        assert!("Role/".parse::<DiscoveryRole>().is_err());
    }
}
