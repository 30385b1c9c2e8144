//! What AWS holds for a group, in model types. Filled by the AWS adapter from the ARNs kept
//! in the group's status (never by scanning the region), then filtered to what carries our
//! ownership tags before the planner sees it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::model::*;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub load_balancers: Vec<ObservedLoadBalancer>,
    pub target_groups: Vec<ObservedTargetGroup>,
    pub security_groups: Vec<ObservedSecurityGroup>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObservedLoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    pub scheme: Scheme,
    pub ip_address_type: IpAddressType,
    /// Sorted.
    pub subnets: Vec<String>,
    /// Security group IDs, sorted.
    pub security_groups: Vec<String>,
    /// Only the attributes that were read (the keys we manage).
    pub attributes: BTreeMap<String, String>,
    pub tags: Tags,
    pub listeners: Vec<ObservedListener>,
    /// The associated web ACL's ARN; read only when the desired model sets one.
    pub web_acl: Option<String>,
    /// The Shield Advanced protection's ID; read only when the desired model says.
    pub shield_protection: Option<String>,
    /// Whether security groups filter PrivateLink traffic, when AWS reports it.
    pub private_link_inbound: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObservedListener {
    pub arn: String,
    pub port: i32,
    pub protocol: Protocol,
    pub certificates: Vec<String>,
    pub ssl_policy: Option<String>,
    pub alpn_policy: Option<String>,
    /// Only the attributes that were read (the keys we set).
    pub attributes: BTreeMap<String, String>,
    /// `None`: AWS reports none (the listener has none, which is `off`).
    pub mutual_auth: Option<MutualAuth>,
    /// Forward targets are `TargetRef::Arn`.
    pub default_action: Action,
    pub rules: Vec<ObservedRule>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObservedRule {
    pub arn: String,
    pub priority: i32,
    /// Sorted.
    pub conditions: Vec<RuleCondition>,
    pub action: Action,
    pub transforms: Vec<Transform>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObservedTargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: Protocol,
    pub protocol_version: String,
    pub port: i32,
    pub target_type: TargetType,
    pub health_check: HealthCheck,
    /// Only the attributes that were read.
    pub attributes: BTreeMap<String, String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObservedSecurityGroup {
    pub id: String,
    pub name: String,
    pub ingress: BTreeSet<SgRule>,
    pub tags: Tags,
}

/// Whether `tags` say the resource belongs to this cluster and group.
pub fn owned(tags: &Tags, cluster: &str, kind: StackKind, stack: &str) -> bool {
    tags.get(TAG_CLUSTER).map(String::as_str) == Some(cluster)
        && tags.get(kind.stack_key()).map(String::as_str) == Some(stack)
}

impl Observed {
    /// Drops everything not tagged for `cluster` and `stack`; returns what was dropped (by
    /// ARN or ID) so it can be reported, never touched.
    pub fn retain_owned(&mut self, cluster: &str, kind: StackKind, stack: &str) -> Vec<String> {
        let mut foreign = Vec::new();
        self.load_balancers.retain(|x| {
            let keep = owned(&x.tags, cluster, kind, stack);
            if !keep {
                foreign.push(x.arn.clone());
            }
            keep
        });
        self.target_groups.retain(|x| {
            let keep = owned(&x.tags, cluster, kind, stack);
            if !keep {
                foreign.push(x.arn.clone());
            }
            keep
        });
        self.security_groups.retain(|x| {
            let keep = owned(&x.tags, cluster, kind, stack);
            if !keep {
                foreign.push(x.id.clone());
            }
            keep
        });
        foreign
    }

    pub fn is_empty(&self) -> bool {
        self.load_balancers.is_empty()
            && self.target_groups.is_empty()
            && self.security_groups.is_empty()
    }
}
