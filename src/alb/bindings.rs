//! The TargetGroupBindings a group hands target registration over with (pure): one per
//! target group that exists in AWS, owned by the group's LoadBalancerGroup, with a
//! `networking.ingress` rule from the ALB's backend security group. The ALB reconciler plans
//! them like its AWS resources: stale ones go before the target groups, wanted ones are
//! written after the target groups exist.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::builder::BuildOutput;
use super::model::{ServicePortRef, TAG_RESOURCE, TargetType};
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
    build: &BuildOutput,
    observed: &Observed,
    vpc_id: Option<&str>,
) -> Vec<TargetGroupBinding> {
    let mut out = Vec::new();
    for tg in &build.model.target_groups {
        let Some(o) = observed.target_groups.iter().find(|o| o.name == tg.name) else {
            continue;
        };
        let backend = observed
            .security_groups
            .iter()
            .find(|s| s.tags.get(TAG_RESOURCE) == Some(&tg.binding.backend_security_group))
            .map(|s| s.id.clone());
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
                        ports: vec![NetworkingPort {
                            protocol: Some(NetworkingProtocol::Tcp),
                            port: Some(port_ref(&tg.binding.target_port)),
                        }],
                    }],
                }),
                node_selector: None,
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
    build: &BuildOutput,
    existing: &[std::sync::Arc<TargetGroupBinding>],
) -> Vec<BindingKey> {
    let wanted: BTreeSet<BindingKey> = build
        .model
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
