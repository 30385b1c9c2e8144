//! Every kind the controller watches, and how each copy is trimmed before it is cached.
//!
//! Memory in big clusters is mostly cached objects, so each watch keeps only what its
//! controller reads. Every cached object also loses `managedFields` and the
//! `last-applied-configuration` annotation ([`super::runtime::watch::strip`]).
//!
//! | controller | kind | scope / selector | trim |
//! |---|---|---|---|
//! | shared (`context::Caches`) | TargetGroupBinding | all namespaces | none |
//! | alb | Ingress | all namespaces | none |
//! | alb | IngressClass, IngressClassParams, LoadBalancerGroup | cluster | none |
//! | alb | Service | all namespaces | [`alb_service`]: annotations, type, ports |
//! | alb | Namespace | cluster | [`alb_namespace`]: labels |
//! | nlb | Service | all namespaces | [`nlb_service`]: the spec and annotations of type LoadBalancer only |
//! | nlb | LoadBalancerGroup | cluster | none |
//! | target-group-binding | TargetGroupBinding | `--targets-namespace` or all | none |
//! | target-group-binding | Service | `--targets-namespace` or all | [`targets_service`]: ports, selector, type |
//! | target-group-binding | EndpointSlice | label `kubernetes.io/service-name` | [`targets_slice`]: first address, conditions, node, pod |
//! | target-group-binding | Node | cluster | [`targets_node`]: labels, providerID, Ready |
//! | iam-role-binding | IamRoleBinding | all namespaces | none |
//! | dns | Ingress, DNSEndpoint | `--dns-namespace` or all | none |
//! | dns | Service | `--dns-namespace` or all | [`dns_service`]: metadata only unless it asks for DNS |
//! | dns | EndpointSlice | label `service.kubernetes.io/headless` | [`dns_slice`]: addresses, readiness, hostnames, ports |
//!
//! The node agent (`causeway agent`) keeps its own indexes of this node's pods, namespaces
//! and IamRoleBindings (`crate::iam::agent::watch`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Namespace, Node, NodeCondition, NodeSpec, NodeStatus, Service, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::SERVICE_NAME_LABEL;

/// Metadata worth keeping: identity and (optionally only some) labels. Annotations, owner
/// references and the rest are dropped.
fn slim_meta(meta: &mut ObjectMeta, keep_labels: Option<&[&str]>) {
    let labels = meta.labels.take().map(|l| match keep_labels {
        Some(keys) => l
            .into_iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .collect(),
        None => l,
    });
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        labels: labels.filter(|l: &BTreeMap<String, String>| !l.is_empty()),
        ..ObjectMeta::default()
    };
}

/// ALB: the builder reads a Service's annotations, type and ports; nothing else is kept.
pub fn alb_service(s: &mut Service) {
    s.status = None;
    s.metadata.labels = None;
    if let Some(spec) = s.spec.take() {
        s.spec = Some(ServiceSpec {
            ports: spec.ports,
            type_: spec.type_,
            ..Default::default()
        });
    }
}

/// NLB: only LoadBalancer Services are read (spec, annotations, finalizers, status); of
/// the others only the identity is kept, so a type change away from LoadBalancer is seen.
pub fn nlb_service(s: &mut Service) {
    s.metadata.labels = None;
    if s.spec.as_ref().and_then(|x| x.type_.as_deref()) != Some("LoadBalancer") {
        s.metadata.annotations = None;
        s.status = None;
        s.spec = s.spec.take().map(|x| ServiceSpec {
            type_: x.type_,
            ..Default::default()
        });
    }
}

/// ALB: Namespaces matter only through their labels (IngressClassParams namespaceSelector).
pub fn alb_namespace(n: &mut Namespace) {
    n.spec = None;
    n.status = None;
    n.metadata.annotations = None;
}

/// Targets: ports, selector and type.
pub fn targets_service(svc: &mut Service) {
    slim_meta(&mut svc.metadata, Some(&[]));
    svc.status = None;
    if let Some(spec) = svc.spec.take() {
        svc.spec = Some(ServiceSpec {
            ports: spec.ports.map(|ps| {
                ps.into_iter()
                    .map(|mut p| {
                        p.app_protocol = None;
                        p
                    })
                    .collect()
            }),
            selector: spec.selector,
            type_: spec.type_,
            ..ServiceSpec::default()
        });
    }
}

/// Targets: address type, ports and per endpoint its first address, conditions, node and
/// pod name.
pub fn targets_slice(slice: &mut EndpointSlice) {
    slim_meta(&mut slice.metadata, Some(&[SERVICE_NAME_LABEL]));
    for ep in slice.endpoints.iter_mut().flatten() {
        ep.addresses.truncate(1);
        ep.deprecated_topology = None;
        ep.hints = None;
        ep.hostname = None;
        ep.zone = None;
        if let Some(r) = ep.target_ref.as_mut() {
            r.namespace = None;
            r.uid = None;
            r.resource_version = None;
            r.api_version = None;
            r.field_path = None;
        }
    }
    for p in slice.ports.iter_mut().flatten() {
        p.app_protocol = None;
    }
}

/// Targets: labels, providerID and the Ready condition's status. A Node is otherwise large
/// (images, addresses, capacity) and its heartbeats change nothing we use.
pub fn targets_node(node: &mut Node) {
    slim_meta(&mut node.metadata, None);
    let provider_id = node.spec.take().and_then(|s| s.provider_id);
    node.spec = Some(NodeSpec {
        provider_id,
        ..NodeSpec::default()
    });
    let ready = node
        .status
        .take()
        .and_then(|s| s.conditions)
        .and_then(|cs| cs.into_iter().find(|c| c.type_ == "Ready"));
    node.status = Some(NodeStatus {
        conditions: ready.map(|c| {
            vec![NodeCondition {
                type_: c.type_,
                status: c.status,
                ..NodeCondition::default()
            }]
        }),
        ..NodeStatus::default()
    });
}

/// DNS: a Service that does not ask for DNS (`wants_dns` false) keeps only its metadata.
pub fn dns_service(service: &mut Service, wants_dns: fn(&ObjectMeta) -> bool) {
    if !wants_dns(&service.metadata) {
        service.spec = None;
        service.status = None;
    }
}

/// DNS: only addresses, readiness, hostnames and ports are read from slices.
pub fn dns_slice(slice: &mut EndpointSlice) {
    slice.metadata.annotations = None;
    for endpoint in slice.endpoints.iter_mut().flatten() {
        endpoint.target_ref = None;
        endpoint.node_name = None;
        endpoint.zone = None;
        endpoint.hints = None;
        endpoint.deprecated_topology = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    #[test]
    fn alb_services_and_namespaces_keep_only_what_the_builder_reads() {
        let mut svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"},
                "annotations": {"alb.ingress.kubernetes.io/healthcheck-path": "/hz"}},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.0.0.1",
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]},
            "status": {"loadBalancer": {}}
        }))
        .unwrap();
        alb_service(&mut svc);
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.ports.as_ref().unwrap()[0].node_port, Some(30080));
        assert!(spec.selector.is_none() && spec.cluster_ip.is_none() && svc.status.is_none());
        assert!(
            svc.annotations()
                .contains_key("alb.ingress.kubernetes.io/healthcheck-path")
        );

        let mut ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "ns", "labels": {"team": "a"}, "annotations": {"x": "y"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
        }))
        .unwrap();
        alb_namespace(&mut ns);
        assert_eq!(ns.labels().get("team").map(String::as_str), Some("a"));
        assert!(ns.metadata.annotations.is_none() && ns.spec.is_none() && ns.status.is_none());
    }

    #[test]
    fn dns_services_without_dns_keep_only_metadata() {
        let mut svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}
        }))
        .unwrap();
        let mut kept = svc.clone();
        dns_service(&mut svc, |_| false);
        assert!(svc.spec.is_none());
        dns_service(&mut kept, |_| true);
        assert!(kept.spec.is_some());
    }
}
