//! The steps a plan is made of, and how each reads in a plan report.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::alb::model::*;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Step {
    CreateSecurityGroup {
        name: String,
        description: String,
        tags: Tags,
    },
    /// `group` is a security group name.
    AuthorizeIngress {
        group: String,
        rules: Vec<SgRule>,
    },
    TagSecurityGroup {
        id: String,
        tags: Tags,
    },
    /// Removes tags we no longer want (never `aws:` tags or external-managed keys).
    UntagSecurityGroup {
        id: String,
        keys: Vec<String>,
    },
    CreateTargetGroup(Box<TargetGroupModel>),
    ModifyTargetGroup {
        arn: String,
        health_check: HealthCheck,
    },
    SetTargetGroupAttributes {
        arn: String,
        attributes: BTreeMap<String, String>,
    },
    /// Adds or overwrites tags on an ELBv2 resource we own.
    TagElb {
        arn: String,
        tags: Tags,
    },
    UntagElb {
        arn: String,
        keys: Vec<String>,
    },
    CreateLoadBalancer {
        name: String,
        kind: LoadBalancerKind,
        scheme: Scheme,
        ip_address_type: IpAddressType,
        subnets: Vec<String>,
        subnet_mappings: BTreeMap<String, SubnetMapping>,
        /// Security group names.
        security_groups: Vec<String>,
        attributes: BTreeMap<String, String>,
        tags: Tags,
        /// Set right after the create (CreateLoadBalancer does not take it).
        private_link_inbound: Option<bool>,
    },
    SetSubnets {
        arn: String,
        subnets: Vec<String>,
    },
    /// Security group names; `private_link_inbound`: set too when `Some`.
    SetSecurityGroups {
        arn: String,
        security_groups: Vec<String>,
        private_link_inbound: Option<bool>,
    },
    SetIpAddressType {
        arn: String,
        ip_address_type: IpAddressType,
    },
    SetLoadBalancerAttributes {
        arn: String,
        attributes: BTreeMap<String, String>,
    },
    /// `load_balancer` is a name. `None` disassociates.
    SetWebAcl {
        load_balancer: String,
        web_acl: Option<String>,
    },
    /// Shield Advanced protection for the load balancer named.
    CreateProtection {
        load_balancer: String,
    },
    DeleteProtection {
        id: String,
    },
    SetListenerAttributes {
        arn: String,
        attributes: BTreeMap<String, String>,
    },
    /// `load_balancer` is a name; targets in actions are target group names or foreign ARNs.
    /// The listener's attributes are set right after it is created.
    CreateListener {
        load_balancer: String,
        listener: Box<ListenerModel>,
        tags: Tags,
    },
    /// `certificates` holds at most the default certificate; the others are added and
    /// removed by their own steps.
    ModifyListener {
        arn: String,
        protocol: Protocol,
        certificates: Vec<String>,
        ssl_policy: Option<String>,
        alpn_policy: Option<String>,
        /// `None`: left as it is.
        mutual_auth: Option<MutualAuth>,
        default_action: Action,
    },
    AddListenerCertificates {
        arn: String,
        certificates: Vec<String>,
    },
    RemoveListenerCertificates {
        arn: String,
        certificates: Vec<String>,
    },
    CreateRule {
        load_balancer: String,
        port: i32,
        rule: Box<RuleModel>,
        tags: Tags,
    },
    /// Empty `transforms` removes the rule's transforms.
    ModifyRule {
        arn: String,
        conditions: Vec<RuleCondition>,
        action: Action,
        transforms: Vec<Transform>,
    },
    DeleteRule {
        arn: String,
    },
    DeleteListener {
        arn: String,
    },
    DeleteLoadBalancer {
        arn: String,
    },
    DeleteTargetGroup {
        arn: String,
    },
    RevokeIngress {
        id: String,
        rules: Vec<SgRule>,
    },
    DeleteSecurityGroup {
        id: String,
    },
}

impl Step {
    /// The ARN or ID of the existing resource this step changes, if any.
    pub fn target(&self) -> Option<&str> {
        match self {
            Step::TagSecurityGroup { id, .. }
            | Step::UntagSecurityGroup { id, .. }
            | Step::RevokeIngress { id, .. }
            | Step::DeleteSecurityGroup { id } => Some(id),
            Step::ModifyTargetGroup { arn, .. }
            | Step::SetTargetGroupAttributes { arn, .. }
            | Step::TagElb { arn, .. }
            | Step::UntagElb { arn, .. }
            | Step::AddListenerCertificates { arn, .. }
            | Step::RemoveListenerCertificates { arn, .. }
            | Step::SetSubnets { arn, .. }
            | Step::SetSecurityGroups { arn, .. }
            | Step::SetIpAddressType { arn, .. }
            | Step::SetLoadBalancerAttributes { arn, .. }
            | Step::SetListenerAttributes { arn, .. }
            | Step::ModifyListener { arn, .. }
            | Step::ModifyRule { arn, .. }
            | Step::DeleteRule { arn }
            | Step::DeleteListener { arn }
            | Step::DeleteLoadBalancer { arn }
            | Step::DeleteTargetGroup { arn } => Some(arn),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Step::CreateSecurityGroup { name, .. } => format!("create security group {name}"),
            Step::AuthorizeIngress { group, rules } => {
                format!("authorize {} ingress rule(s) on {group}", rules.len())
            }
            Step::TagSecurityGroup { id, .. } => format!("tag security group {id}"),
            Step::UntagSecurityGroup { id, keys } => {
                format!("remove tags {} from security group {id}", keys.join(", "))
            }
            Step::CreateTargetGroup(tg) => format!(
                "create target group {} ({} {} port {})",
                tg.name,
                tg.target_type.as_str(),
                tg.protocol.as_str(),
                tg.port
            ),
            Step::ModifyTargetGroup { arn, .. } => format!("modify health check of {arn}"),
            Step::SetTargetGroupAttributes { arn, .. } => format!("set attributes of {arn}"),
            Step::TagElb { arn, .. } => format!("tag {arn}"),
            Step::UntagElb { arn, keys } => format!("remove tags {} from {arn}", keys.join(", ")),
            Step::CreateLoadBalancer { name, scheme, .. } => {
                format!("create load balancer {name} ({})", scheme.as_str())
            }
            Step::SetSubnets { arn, .. } => format!("set subnets of {arn}"),
            Step::SetSecurityGroups { arn, .. } => format!("set security groups of {arn}"),
            Step::SetIpAddressType { arn, .. } => format!("set ip address type of {arn}"),
            Step::SetLoadBalancerAttributes { arn, .. } => format!("set attributes of {arn}"),
            Step::CreateListener {
                load_balancer,
                listener,
                ..
            } => format!(
                "create listener {} {} on {load_balancer}",
                listener.protocol.as_str(),
                listener.port
            ),
            Step::ModifyListener { arn, .. } => format!("modify listener {arn}"),
            Step::SetListenerAttributes { arn, .. } => format!("set attributes of {arn}"),
            Step::SetWebAcl {
                load_balancer,
                web_acl: Some(acl),
            } => format!("associate {load_balancer} with web ACL {acl}"),
            Step::SetWebAcl {
                load_balancer,
                web_acl: None,
            } => format!("disassociate {load_balancer} from its web ACL"),
            Step::CreateProtection { load_balancer } => {
                format!("protect {load_balancer} with Shield Advanced")
            }
            Step::DeleteProtection { id } => format!("delete Shield Advanced protection {id}"),
            Step::AddListenerCertificates { arn, certificates } => {
                format!("add {} certificate(s) to {arn}", certificates.len())
            }
            Step::RemoveListenerCertificates { arn, certificates } => {
                format!("remove {} certificate(s) from {arn}", certificates.len())
            }
            Step::CreateRule {
                load_balancer,
                port,
                rule,
                ..
            } => format!(
                "create rule {} on {load_balancer}:{port} for {}",
                rule.priority, rule.member
            ),
            Step::ModifyRule { arn, .. } => format!("modify rule {arn}"),
            Step::DeleteRule { arn } => format!("delete rule {arn}"),
            Step::DeleteListener { arn } => format!("delete listener {arn}"),
            Step::DeleteLoadBalancer { arn } => format!("delete load balancer {arn}"),
            Step::DeleteTargetGroup { arn } => format!("delete target group {arn}"),
            Step::RevokeIngress { id, rules } => {
                format!("revoke {} ingress rule(s) on {id}", rules.len())
            }
            Step::DeleteSecurityGroup { id } => format!("delete security group {id}"),
        }
    }
}
