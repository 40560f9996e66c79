//! The NetworkPolicy in front of a pipeline's collectors: OTLP is admitted only from the namespaces
//! allowed to send to it (its own, and those of attached InstrumentedServices it consents to), so a
//! tenant elsewhere cannot write into another team's telemetry by dialling the Service. The pull
//! ports (Prometheus exporter, self-metrics, health) stay open: they are read, by scrapers and
//! probes that live anywhere. A Service exposed outside the cluster (`NodePort`, `LoadBalancer`)
//! asked for OTLP from anywhere, so its OTLP ports are not narrowed.
//!
//! Enforced only where the cluster's network plugin implements NetworkPolicy; elsewhere the object
//! is inert. Pure: the reconciler applies it (or deletes it when the operator's flag turns them off).

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::config::{HEALTH_PORT, SELF_METRICS_PORT};
use crate::crd::{ServiceType, TelemetryPipeline};
use crate::names::selector_labels;

/// The label every namespace carries with its own name (set by the API server).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(IntOrString::Int(port)), protocol: Some("TCP".into()), ..Default::default() }
}

/// The policy for the pipeline's pods. `senders`: the namespaces admitted to OTLP (the pipeline's own
/// among them).
pub fn network_policy(tp: &TelemetryPipeline, meta: ObjectMeta, senders: &[String]) -> NetworkPolicy {
    let spec = &tp.spec;
    let mut ingress = Vec::new();
    if spec.receivers.otlp.enabled {
        let exposed = spec.service.as_ref().is_some_and(|s| s.type_ != ServiceType::ClusterIP);
        let from = (!exposed).then(|| {
            vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: NAMESPACE_NAME_LABEL.into(),
                        operator: "In".into(),
                        values: Some(senders.to_vec()),
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        });
        ingress.push(NetworkPolicyIngressRule {
            from,
            ports: Some(vec![tcp(spec.receivers.otlp.grpc_port), tcp(spec.receivers.otlp.http_port)]),
        });
    }
    let mut pull = vec![tcp(SELF_METRICS_PORT), tcp(HEALTH_PORT)];
    if let Some(p) = spec.exporters.prometheus.as_ref().filter(|p| p.enabled) {
        pull.insert(0, tcp(p.port));
    }
    ingress.push(NetworkPolicyIngressRule { from: None, ports: Some(pull) });
    NetworkPolicy {
        metadata: meta,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&tp.name_any())),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str, senders: &[&str]) -> NetworkPolicySpec {
        let mut tp = TelemetryPipeline::new("main", serde_yaml::from_str(yaml).expect("spec"));
        tp.metadata.namespace = Some("obs".into());
        let senders: Vec<String> = senders.iter().map(|s| s.to_string()).collect();
        network_policy(&tp, ObjectMeta::default(), &senders).spec.expect("spec")
    }

    fn ports(rule: &NetworkPolicyIngressRule) -> Vec<i32> {
        rule.ports
            .iter()
            .flatten()
            .map(|p| match p.port {
                Some(IntOrString::Int(n)) => n,
                _ => panic!("numeric ports"),
            })
            .collect()
    }

    #[test]
    fn otlp_is_admitted_only_from_the_sending_namespaces_and_pull_ports_from_anywhere() {
        let spec = policy("exporters: {prometheus: {}}", &["obs", "shop"]);
        assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".to_string()][..]));
        assert_eq!(
            spec.pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .and_then(|l| l.get("app.kubernetes.io/instance")),
            Some(&"main".to_string())
        );
        let ingress = spec.ingress.expect("ingress");
        assert_eq!(ports(&ingress[0]), [4317, 4318]);
        let from = ingress[0].from.as_ref().expect("OTLP is narrowed");
        let expr =
            &from[0].namespace_selector.as_ref().expect("by namespace").match_expressions.as_ref().expect("exprs")[0];
        assert_eq!((expr.key.as_str(), expr.operator.as_str()), ("kubernetes.io/metadata.name", "In"));
        assert_eq!(expr.values.as_deref(), Some(&["obs".to_string(), "shop".to_string()][..]));
        assert_eq!(ports(&ingress[1]), [8889, 8888, 13133]);
        assert!(ingress[1].from.is_none(), "scrapers and probes come from anywhere");
    }

    #[test]
    fn an_exposed_service_keeps_otlp_open_and_no_otlp_receiver_leaves_only_pull_ports() {
        let exposed = policy("exporters: {debug: {}}\nservice: {type: NodePort}", &["obs"]);
        let ingress = exposed.ingress.expect("ingress");
        assert_eq!(ports(&ingress[0]), [4317, 4318]);
        assert!(ingress[0].from.is_none(), "a NodePort Service asked for OTLP from outside the cluster");

        let pull_only = policy("exporters: {debug: {}}\nreceivers: {otlp: {enabled: false}}", &["obs"]);
        let ingress = pull_only.ingress.expect("ingress");
        assert_eq!(ingress.len(), 1);
        assert_eq!(ports(&ingress[0]), [8888, 13133]);
    }
}
