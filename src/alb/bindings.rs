//! The TargetGroupBindings a stack hands target registration over with (pure): one per
//! target group that exists in AWS, owned by the stack's LoadBalancerGroup, with a
//! `networking.ingress` rule from the load balancer's backend security group. The ALB and
//! NLB reconcilers plan them like their AWS resources: stale ones go before the target
//! groups, wanted ones are written after the target groups exist.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::model::{GroupModel, Protocol, ServicePortRef, TargetType};
use super::observed::Observed;
use crate::crd::target_group_binding::{
    NetworkingIngressRule, NetworkingPeer, NetworkingPort, NetworkingProtocol, SecurityGroup,
    ServiceReference, TargetGroupBindingNetworking, TargetType as CrdTargetType,
};
use crate::crd::{TargetGroupBinding, TargetGroupBindingSpec};

/// Labels on the TargetGroupBindings we create.
pub const GROUP_LABEL: &str = "causeway.dev/alb-group";
pub const STACK_LABEL: &str = "ingress.k8s.aws/stack-name";

/// `namespace`, `name` of a binding.
pub type BindingKey = (String, String);

fn port_ref(p: &ServicePortRef) -> IntOrString {
    match p {
        ServicePortRef::Number(n) => IntOrString::Int(*n),
        ServicePortRef::Name(s) => IntOrString::String(s.clone()),
    }
}

/// The bindings wanted for the target groups in `observed`, labelled with the group object's
/// name and owned by it (`owner`).
pub fn desired(
    object_name: &str,
    owner: Option<&OwnerReference>,
    model: &GroupModel,
    observed: &Observed,
    vpc_id: Option<&str>,
) -> Vec<TargetGroupBinding> {
    let mut out = Vec::new();
    let resource_key = model.kind.resource_key();
    for tg in &model.target_groups {
        let Some(o) = observed.target_groups.iter().find(|o| o.name == tg.name) else {
            continue;
        };
        let backend = observed
            .security_groups
            .iter()
            .find(|s| s.tags.get(resource_key) == Some(&tg.binding.backend_security_group))
            .map(|s| s.id.clone())
            // A shared (adopted) backend group is named by its ID.
            .or_else(|| {
                let id = &tg.binding.backend_security_group;
                id.starts_with("sg-").then(|| id.clone())
            });
        let protocols: &[NetworkingProtocol] = match tg.protocol {
            Protocol::Udp => &[NetworkingProtocol::Udp],
            Protocol::TcpUdp => &[NetworkingProtocol::Tcp, NetworkingProtocol::Udp],
            _ => &[NetworkingProtocol::Tcp],
        };
        let mut ports: Vec<NetworkingPort> = protocols
            .iter()
            .map(|p| NetworkingPort {
                protocol: Some(*p),
                port: Some(port_ref(&tg.binding.target_port)),
            })
            .collect();
        if let Some(p) = tg.binding.health_check_port {
            ports.push(NetworkingPort {
                protocol: Some(NetworkingProtocol::Tcp),
                port: Some(IntOrString::Int(p)),
            });
        }
        let mut tgb = TargetGroupBinding::new(
            &tg.name,
            TargetGroupBindingSpec {
                target_group_arn: Some(o.arn.clone()),
                target_group_name: None,
                multi_cluster_target_group: false,
                target_type: Some(match tg.target_type {
                    TargetType::Instance => CrdTargetType::Instance,
                    TargetType::Ip => CrdTargetType::Ip,
                }),
                target_group_protocol: None,
                service_ref: ServiceReference {
                    name: tg.binding.service.clone(),
                    port: port_ref(&tg.binding.service_port),
                },
                networking: backend.map(|id| TargetGroupBindingNetworking {
                    ingress: vec![NetworkingIngressRule {
                        from: vec![NetworkingPeer {
                            ip_block: None,
                            security_group: Some(SecurityGroup { group_id: id }),
                        }],
                        ports,
                    }],
                }),
                node_selector: (!tg.binding.node_labels.is_empty()).then(|| {
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                        match_labels: Some(tg.binding.node_labels.clone()),
                        ..Default::default()
                    }
                }),
                ip_address_type: None,
                vpc_id: vpc_id.map(str::to_owned),
                iam_role_arn_to_assume: None,
                assume_role_external_id: None,
                region: None,
            },
        );
        tgb.metadata.namespace = Some(tg.binding.namespace.clone());
        tgb.metadata.labels = Some(
            [
                (GROUP_LABEL.to_owned(), object_name.to_owned()),
                (STACK_LABEL.to_owned(), object_name.to_owned()),
            ]
            .into(),
        );
        tgb.metadata.owner_references = owner.map(|r| vec![r.clone()]);
        out.push(tgb);
    }
    out
}

/// The wanted bindings that differ from what exists (spec or owner).
pub fn to_write<'a>(
    wanted: &'a [TargetGroupBinding],
    existing: &[std::sync::Arc<TargetGroupBinding>],
) -> Vec<&'a TargetGroupBinding> {
    wanted
        .iter()
        .filter(|w| {
            !existing.iter().any(|c| {
                c.namespace() == w.namespace()
                    && c.name_any() == w.name_any()
                    && c.spec == w.spec
                    && c.metadata.owner_references == w.metadata.owner_references
            })
        })
        .collect()
}

/// Bindings labelled for this group whose target group is no longer in the model.
pub fn stale(
    object_name: &str,
    model: &GroupModel,
    existing: &[std::sync::Arc<TargetGroupBinding>],
) -> Vec<BindingKey> {
    let wanted: BTreeSet<BindingKey> = model
        .target_groups
        .iter()
        .map(|t| (t.binding.namespace.clone(), t.name.clone()))
        .collect();
    existing
        .iter()
        .filter(|b| b.labels().get(GROUP_LABEL).map(String::as_str) == Some(object_name))
        .map(|b| (b.namespace().unwrap_or_default(), b.name_any()))
        .filter(|k| !wanted.contains(k))
        .collect()
}

/// Holds back the deletion of every target group a binding still names: the binding's
/// finalizer deregisters its targets and revokes its security-group rules first, and it
/// needs the target group for that. Returns how many were held; they go once the binding
/// has released them (a later reconcile).
pub fn hold_bound_target_groups(
    steps: &mut Vec<crate::alb::plan::Step>,
    existing: &[std::sync::Arc<TargetGroupBinding>],
) -> usize {
    let bound: BTreeSet<&str> = existing
        .iter()
        .filter_map(|b| b.spec.target_group_arn.as_deref())
        .collect();
    let before = steps.len();
    steps.retain(|s| {
        !matches!(s, crate::alb::plan::Step::DeleteTargetGroup { arn } if bound.contains(arn.as_str()))
    });
    before - steps.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alb::builder::tests_support::{build_group, ingress, path_rule};
    use crate::alb::plan::{plan, sim::Sim};
    use serde_json::json;
    use std::sync::Arc;

    fn converged() -> (GroupModel, Observed) {
        let ings = vec![ingress(
            "ns",
            "front",
            json!({}),
            json!([
                path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80),
                path_rule(Some("a.causeway.test"), "/api", "Prefix", "api", 80)
            ]),
        )];
        let model = build_group("ns/front", &ings);
        let mut sim = Sim::new(Observed::default());
        sim.apply(&plan(&model, &sim.state, "c1"));
        (model, sim.state)
    }

    #[test]
    fn one_binding_per_existing_target_group_with_the_backend_rule() {
        let (build, observed) = converged();
        let owner = OwnerReference {
            api_version: "causeway.dev/v1alpha1".into(),
            kind: "LoadBalancerGroup".into(),
            name: "g".into(),
            uid: "u".into(),
            controller: Some(true),
            ..Default::default()
        };
        let wanted = desired("g", Some(&owner), &build, &observed, Some("vpc-1"));
        assert_eq!(wanted.len(), build.target_groups.len());
        assert_eq!(wanted.len(), 2);
        for b in &wanted {
            let tg = observed
                .target_groups
                .iter()
                .find(|t| t.name == b.name_any())
                .expect("named after its target group");
            assert_eq!(b.spec.target_group_arn.as_deref(), Some(tg.arn.as_str()));
            assert_eq!(b.namespace().as_deref(), Some("ns"));
            assert_eq!(b.labels().get(GROUP_LABEL).map(String::as_str), Some("g"));
            assert_eq!(b.spec.vpc_id.as_deref(), Some("vpc-1"));
            assert_eq!(
                b.metadata.owner_references.as_deref(),
                Some(&[owner.clone()][..])
            );
            let rule = &b.spec.networking.as_ref().expect("backend rule").ingress[0];
            assert!(rule.from[0].security_group.is_some());
        }
        // Nothing is written when the cluster already has them; a changed spec is rewritten.
        let existing: Vec<Arc<TargetGroupBinding>> = wanted.iter().cloned().map(Arc::new).collect();
        assert!(to_write(&wanted, &existing).is_empty());
        let mut drifted = wanted[0].clone();
        drifted.spec.target_group_arn = Some("arn:other".into());
        let existing = vec![Arc::new(drifted), existing[1].clone()];
        assert_eq!(to_write(&wanted, &existing).len(), 1);
    }

    #[test]
    fn a_target_group_not_created_yet_gets_no_binding() {
        let (build, mut observed) = converged();
        observed.target_groups.truncate(1);
        assert_eq!(desired("g", None, &build, &observed, None).len(), 1);
    }

    #[test]
    fn only_this_groups_bindings_without_a_target_group_are_stale() {
        let (build, observed) = converged();
        let mut existing: Vec<Arc<TargetGroupBinding>> =
            desired("g", None, &build, &observed, None)
                .into_iter()
                .map(Arc::new)
                .collect();
        assert!(stale("g", &build, &existing).is_empty());
        let mut gone = (*existing[0]).clone();
        gone.metadata.name = Some("k8s-old-tg".into());
        let mut other_group = gone.clone();
        other_group.metadata.name = Some("k8s-other".into());
        other_group
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(GROUP_LABEL.into(), "another".into());
        existing.push(Arc::new(gone));
        existing.push(Arc::new(other_group));
        assert_eq!(
            stale("g", &build, &existing),
            [("ns".to_owned(), "k8s-old-tg".to_owned())]
        );
    }

    #[test]
    fn a_target_group_is_deleted_only_once_no_binding_names_it() {
        use crate::alb::plan::Step;
        use crate::fixtures;
        let steps = || {
            vec![
                Step::DeleteRule {
                    arn: "arn:rule".into(),
                },
                Step::DeleteTargetGroup {
                    arn: "arn:tg/bound".into(),
                },
                Step::DeleteTargetGroup {
                    arn: "arn:tg/free".into(),
                },
            ]
        };
        let binding = Arc::new(fixtures::target_group_binding(
            "ns",
            "b",
            "arn:tg/bound",
            "web",
            80,
            "ip",
        ));
        let mut held = steps();
        assert_eq!(hold_bound_target_groups(&mut held, &[binding]), 1);
        assert_eq!(
            held,
            [
                Step::DeleteRule {
                    arn: "arn:rule".into()
                },
                Step::DeleteTargetGroup {
                    arn: "arn:tg/free".into()
                },
            ]
        );
        let mut free = steps();
        assert_eq!(hold_bound_target_groups(&mut free, &[]), 0);
        assert_eq!(free, steps());
    }
}
