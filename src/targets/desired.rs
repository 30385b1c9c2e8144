//! Pure: the targets a binding should have, from its Service, EndpointSlices and Nodes.
//!
//! ip targets are the ready endpoints as IP:port, where the port is the EndpointSlice port
//! named like the Service port (the resolved targetPort). instance targets are the ready,
//! selected, not-excluded Nodes' instance ids on the Service's NodePort.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use k8s_openapi::api::core::v1::{Node, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::target_group_binding::{TargetGroupIpAddressType, TargetType};
use crate::k8s::selector;

/// Nodes with this label are never load-balancer targets (a Kubernetes convention).
pub const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// One registration: an instance id or an IP, and a port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub id: String,
    pub port: i32,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.port)
    }
}

/// What a binding should look like in AWS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub targets: BTreeSet<Target>,
    /// Instance ids of the nodes hosting the targets (for security group rules).
    pub instance_ids: BTreeSet<String>,
    /// Pods of the targets, by target (ip mode), to set readiness-gate conditions on.
    pub pods: BTreeMap<Target, String>,
    /// The resolved target port (ip) or NodePort (instance); used by named networking ports.
    pub port: Option<i32>,
    /// Nodes skipped because they have no usable providerID.
    pub nodes_without_provider_id: Vec<String>,
}

/// Why no desired state can be built: each is a spec or cluster problem, not transient.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DesiredError {
    #[error("Service {0} does not exist")]
    ServiceNotFound(String),
    #[error("Service {service} has no port {port}")]
    PortNotFound { service: String, port: String },
    #[error(
        "Service {service} port {port} has no NodePort; instance targets need a NodePort or LoadBalancer Service"
    )]
    NoNodePort { service: String, port: String },
    #[error("invalid nodeSelector: {0}")]
    InvalidNodeSelector(String),
}

/// Inputs besides the cluster objects.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub target_type: TargetType,
    pub ip_family: TargetGroupIpAddressType,
    pub service_name: &'a str,
    pub service_port: &'a IntOrString,
    pub node_selector: Option<&'a LabelSelector>,
    /// Pods whose endpoint is not ready only because our readiness gate is pending.
    pub gated_pods: &'a HashSet<String>,
}

pub fn port_label(p: &IntOrString) -> String {
    match p {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// The Service port a serviceRef names, by number or by name.
pub fn find_service_port<'a>(svc: &'a Service, port: &IntOrString) -> Option<&'a ServicePort> {
    let ports = svc.spec.as_ref()?.ports.as_ref()?;
    ports.iter().find(|p| match port {
        IntOrString::Int(n) => p.port == *n,
        IntOrString::String(name) => p.name.as_deref() == Some(name.as_str()),
    })
}

/// `aws:///us-east-1a/i-0123` → `i-0123`.
pub fn instance_id_from_provider_id(provider_id: &str) -> Option<&str> {
    let rest = provider_id.strip_prefix("aws://")?;
    let id = rest.rsplit('/').next()?;
    (id.starts_with("i-") && id.len() > 2 && id[2..].chars().all(|c| c.is_ascii_alphanumeric()))
        .then_some(id)
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// Builds the desired targets. `nodes` are all nodes (instance mode, and to map ip
/// targets' nodes to instances); `slices` are the Service's EndpointSlices.
pub fn desired_targets<'a>(
    input: &Inputs<'_>,
    service: Option<&Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    nodes: &[std::sync::Arc<Node>],
) -> Result<Desired, DesiredError> {
    let svc =
        service.ok_or_else(|| DesiredError::ServiceNotFound(input.service_name.to_string()))?;
    let sp =
        find_service_port(svc, input.service_port).ok_or_else(|| DesiredError::PortNotFound {
            service: input.service_name.to_string(),
            port: port_label(input.service_port),
        })?;
    let node_instance = |name: &str| -> Option<String> {
        nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .and_then(|n| n.spec.as_ref()?.provider_id.as_deref())
            .and_then(instance_id_from_provider_id)
            .map(str::to_string)
    };
    let mut out = Desired::default();
    match input.target_type {
        TargetType::Ip => {
            let family = match input.ip_family {
                TargetGroupIpAddressType::Ipv4 => "IPv4",
                TargetGroupIpAddressType::Ipv6 => "IPv6",
            };
            for slice in slices {
                if slice.address_type != family {
                    continue;
                }
                let Some(port) = slice.ports.iter().flatten().find_map(|p| {
                    (p.name.as_deref().unwrap_or("") == sp.name.as_deref().unwrap_or(""))
                        .then_some(p.port)
                        .flatten()
                }) else {
                    continue;
                };
                out.port = Some(port);
                for ep in slice.endpoints.iter().flatten() {
                    let Some(ip) = ep.addresses.first() else {
                        continue;
                    };
                    let cond = ep.conditions.as_ref();
                    let ready = cond.and_then(|c| c.ready).unwrap_or(true);
                    let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
                    let pod = ep
                        .target_ref
                        .as_ref()
                        .filter(|r| r.kind.as_deref().unwrap_or("Pod") == "Pod")
                        .and_then(|r| r.name.clone());
                    let gated = !ready
                        && !terminating
                        && pod.as_ref().is_some_and(|p| input.gated_pods.contains(p));
                    if !(ready || gated) {
                        continue;
                    }
                    let target = Target {
                        id: ip.clone(),
                        port,
                    };
                    if let Some(node) = ep.node_name.as_deref()
                        && let Some(id) = node_instance(node)
                    {
                        out.instance_ids.insert(id);
                    }
                    if let Some(pod) = pod {
                        out.pods.insert(target.clone(), pod);
                    }
                    out.targets.insert(target);
                }
            }
        }
        TargetType::Instance => {
            let port = sp.node_port.ok_or_else(|| DesiredError::NoNodePort {
                service: input.service_name.to_string(),
                port: port_label(input.service_port),
            })?;
            out.port = Some(port);
            // Checked once, before any node: an invalid selector selects no node, and is
            // reported whatever the nodes.
            let node_selector = input
                .node_selector
                .map(selector::parse)
                .transpose()
                .map_err(|e| DesiredError::InvalidNodeSelector(e.to_string()))?;
            let empty = BTreeMap::new();
            for node in nodes {
                let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
                if labels.contains_key(EXCLUDE_LB_LABEL) || !node_ready(node) {
                    continue;
                }
                if let Some(sel) = &node_selector
                    && !sel.matches(labels)
                {
                    continue;
                }
                let name = node.metadata.name.clone().unwrap_or_default();
                match node
                    .spec
                    .as_ref()
                    .and_then(|s| s.provider_id.as_deref())
                    .and_then(instance_id_from_provider_id)
                {
                    Some(id) => {
                        out.instance_ids.insert(id.to_string());
                        out.targets.insert(Target {
                            id: id.to_string(),
                            port,
                        });
                    }
                    None => out.nodes_without_provider_id.push(name),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn svc(yaml: &str) -> Service {
        serde_saphyr::from_str(yaml).unwrap()
    }
    fn slice(yaml: &str) -> EndpointSlice {
        serde_saphyr::from_str(yaml).unwrap()
    }
    fn node(name: &str, provider: Option<&str>, labels: &[(&str, &str)], ready: bool) -> Arc<Node> {
        Arc::new(crate::fixtures::node(name, provider, labels, ready))
    }

    const SVC: &str = r#"
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  ports:
  - {name: http, port: 80, targetPort: web, nodePort: 30080}
  - {name: admin, port: 9000, targetPort: 9000}
"#;
    const SLICE: &str = r#"
metadata: {name: web-abc, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports:
- {name: http, port: 8080}
- {name: admin, port: 9000}
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  nodeName: n1
  targetRef: {kind: Pod, name: web-1}
- addresses: [10.0.0.2]
  conditions: {ready: false}
  nodeName: n2
  targetRef: {kind: Pod, name: web-2}
- addresses: [10.0.0.3]
  conditions: {ready: false, terminating: true}
  targetRef: {kind: Pod, name: web-3}
- addresses: [10.0.0.4]
  nodeName: n1
"#;

    fn inputs<'a>(
        t: TargetType,
        port: &'a IntOrString,
        gated: &'a HashSet<String>,
        sel: Option<&'a LabelSelector>,
    ) -> Inputs<'a> {
        Inputs {
            target_type: t,
            ip_family: TargetGroupIpAddressType::Ipv4,
            service_name: "web",
            service_port: port,
            node_selector: sel,
            gated_pods: gated,
        }
    }

    #[test]
    fn ip_targets_are_ready_endpoints_on_the_target_port() {
        let s = svc(SVC);
        let sl = slice(SLICE);
        let gated = HashSet::new();
        let port = IntOrString::String("http".into());
        let nodes = vec![node("n1", Some("aws:///us-east-1a/i-0aa"), &[], true)];
        let d = desired_targets(
            &inputs(TargetType::Ip, &port, &gated, None),
            Some(&s),
            [&sl],
            &nodes,
        )
        .unwrap();
        let ids: Vec<String> = d.targets.iter().map(|t| t.to_string()).collect();
        assert_eq!(ids, ["10.0.0.1:8080", "10.0.0.4:8080"]);
        assert_eq!(d.instance_ids.iter().collect::<Vec<_>>(), ["i-0aa"]);
        assert_eq!(d.port, Some(8080));
    }

    #[test]
    fn gated_pods_are_targets_before_they_are_ready_but_terminating_ones_are_not() {
        let s = svc(SVC);
        let sl = slice(SLICE);
        let gated: HashSet<String> = ["web-2".to_string(), "web-3".to_string()].into();
        let port = IntOrString::Int(80);
        let d = desired_targets(
            &inputs(TargetType::Ip, &port, &gated, None),
            Some(&s),
            [&sl],
            &[],
        )
        .unwrap();
        let ids: Vec<String> = d.targets.iter().map(|t| t.id.clone()).collect();
        assert_eq!(ids, ["10.0.0.1", "10.0.0.2", "10.0.0.4"]);
        assert_eq!(d.pods.values().collect::<Vec<_>>(), ["web-1", "web-2"]);
    }

    #[test]
    fn instance_targets_honour_selector_exclusion_readiness_and_provider_id() {
        let s = svc(SVC);
        let gated = HashSet::new();
        let port = IntOrString::Int(80);
        let nodes = vec![
            node(
                "a",
                Some("aws:///us-east-1a/i-0a"),
                &[("pool", "web")],
                true,
            ),
            node(
                "b",
                Some("aws:///us-east-1b/i-0b"),
                &[("pool", "web"), (EXCLUDE_LB_LABEL, "")],
                true,
            ),
            node("c", Some("aws:///us-east-1b/i-0c"), &[("pool", "db")], true),
            node(
                "d",
                Some("aws:///us-east-1b/i-0d"),
                &[("pool", "web")],
                false,
            ),
            node("e", None, &[("pool", "web")], true),
        ];
        let sel = LabelSelector {
            match_labels: Some([("pool".to_string(), "web".to_string())].into()),
            ..Default::default()
        };
        let d = desired_targets(
            &inputs(TargetType::Instance, &port, &gated, Some(&sel)),
            Some(&s),
            [],
            &nodes,
        )
        .unwrap();
        let ids: Vec<String> = d.targets.iter().map(|t| t.to_string()).collect();
        assert_eq!(ids, ["i-0a:30080"]);
        assert_eq!(d.nodes_without_provider_id, ["e"]);
    }

    #[test]
    fn bad_references_are_errors() {
        let s = svc(SVC);
        let gated = HashSet::new();
        let p = IntOrString::Int(81);
        assert!(matches!(
            desired_targets(&inputs(TargetType::Ip, &p, &gated, None), None, [], &[]),
            Err(DesiredError::ServiceNotFound(_))
        ));
        assert!(matches!(
            desired_targets(&inputs(TargetType::Ip, &p, &gated, None), Some(&s), [], &[]),
            Err(DesiredError::PortNotFound { .. })
        ));
        let admin = IntOrString::String("admin".into());
        assert!(matches!(
            desired_targets(
                &inputs(TargetType::Instance, &admin, &gated, None),
                Some(&s),
                [],
                &[]
            ),
            Err(DesiredError::NoNodePort { .. })
        ));
    }

    #[test]
    fn an_invalid_node_selector_is_an_error_whatever_the_nodes() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
        let s = svc(SVC);
        let gated = HashSet::new();
        let port = IntOrString::Int(80);
        let sel = LabelSelector {
            match_labels: Some([("pool".to_string(), "db".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "pool".into(),
                operator: "Like".into(),
                values: Some(vec!["web".into()]),
            }]),
        };
        let with_nodes = [node(
            "a",
            Some("aws:///us-east-1a/i-0a"),
            &[("pool", "web")],
            true,
        )];
        for nodes in [&[][..], &with_nodes[..]] {
            let got = desired_targets(
                &inputs(TargetType::Instance, &port, &gated, Some(&sel)),
                Some(&s),
                [],
                nodes,
            );
            assert!(
                matches!(&got, Err(DesiredError::InvalidNodeSelector(m)) if m.contains("Like")),
                "{got:?}"
            );
        }
    }

    #[test]
    fn provider_ids_parse() {
        assert_eq!(
            instance_id_from_provider_id("aws:///us-east-1a/i-0abc"),
            Some("i-0abc")
        );
        assert_eq!(
            instance_id_from_provider_id("aws:///i-0abc"),
            Some("i-0abc")
        );
        assert_eq!(instance_id_from_provider_id("gce://p/z/n"), None);
        assert_eq!(instance_id_from_provider_id("aws:///us-east-1a/"), None);
    }
}
