//! Pure: desired [`GroupModel`] + [`Observed`] → ordered [`Step`]s.
//!
//! Order: security groups → target groups → load balancers → listeners → rules, then the
//! deletes in reverse (rules → listeners → load balancers → target groups → security
//! groups). Immutable fields are part of a resource's name, so a change yields a new
//! resource that is created (and switched to) before the old one is deleted.
//! Only resources tagged for our cluster and group are ever in a step.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::model::*;
use super::observed::*;

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
        scheme: Scheme,
        ip_address_type: IpAddressType,
        subnets: Vec<String>,
        /// Security group names.
        security_groups: Vec<String>,
        attributes: BTreeMap<String, String>,
        tags: Tags,
    },
    SetSubnets {
        arn: String,
        subnets: Vec<String>,
    },
    /// Security group names.
    SetSecurityGroups {
        arn: String,
        security_groups: Vec<String>,
    },
    SetIpAddressType {
        arn: String,
        ip_address_type: IpAddressType,
    },
    SetLoadBalancerAttributes {
        arn: String,
        attributes: BTreeMap<String, String>,
    },
    /// `load_balancer` is a name; targets in actions are target group names or foreign ARNs.
    CreateListener {
        load_balancer: String,
        listener: Box<ListenerModel>,
    },
    /// `certificates` holds at most the default certificate; the others are added and
    /// removed by their own steps.
    ModifyListener {
        arn: String,
        protocol: Protocol,
        certificates: Vec<String>,
        ssl_policy: Option<String>,
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
    },
    ModifyRule {
        arn: String,
        conditions: Vec<RuleCondition>,
        action: Action,
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
            } => format!(
                "create listener {} {} on {load_balancer}",
                listener.protocol.as_str(),
                listener.port
            ),
            Step::ModifyListener { arn, .. } => format!("modify listener {arn}"),
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

/// Tags in `desired` that `observed` lacks or holds with another value.
fn missing_tags(desired: &Tags, observed: &Tags) -> Tags {
    desired
        .iter()
        .filter(|(k, v)| observed.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Tag keys `observed` holds that `desired` does not, except AWS's own (`aws:`) and the
/// keys managed outside causeway.
fn stale_tags(desired: &Tags, observed: &Tags, unmanaged: &BTreeSet<String>) -> Vec<String> {
    observed
        .keys()
        .filter(|k| !desired.contains_key(*k) && !k.starts_with("aws:") && !unmanaged.contains(*k))
        .cloned()
        .collect()
}

fn missing_attributes(
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    missing_tags(desired, observed)
}

/// Rewrites observed forward targets from ARNs to our target group names.
fn by_name(action: &Action, names: &BTreeMap<&str, &str>) -> Action {
    match action {
        Action::Forward {
            targets,
            stickiness,
        } => Action::Forward {
            targets: targets
                .iter()
                .map(|(t, w)| match t {
                    TargetRef::Arn(arn) => match names.get(arn.as_str()) {
                        Some(n) => (TargetRef::Name((*n).to_owned()), *w),
                        None => (t.clone(), *w),
                    },
                    TargetRef::Name(_) => (t.clone(), *w),
                })
                .collect(),
            stickiness: *stickiness,
        },
        other => other.clone(),
    }
}

/// The plan. `observed` may hold foreign resources: they are dropped first and never acted on.
pub fn plan(desired: &GroupModel, observed: &Observed, cluster: &str) -> Vec<Step> {
    let mut observed = observed.clone();
    observed.retain_owned(cluster, &desired.stack);

    let mut sg_phase = Vec::new();
    let mut tg_phase = Vec::new();
    let mut lb_phase = Vec::new();
    let mut listener_phase = Vec::new();
    let mut rule_phase = Vec::new();
    let mut rule_deletes = Vec::new();
    let mut listener_deletes = Vec::new();
    let mut lb_deletes = Vec::new();
    let mut pre_deletes = Vec::new();
    let mut tg_deletes = Vec::new();
    let mut sg_deletes = Vec::new();

    // Security groups, by name.
    let sg_names: BTreeMap<&str, &str> = observed
        .security_groups
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
    for sg in &desired.security_groups {
        match observed.security_groups.iter().find(|o| o.name == sg.name) {
            None => {
                sg_phase.push(Step::CreateSecurityGroup {
                    name: sg.name.clone(),
                    description: sg.description.clone(),
                    tags: sg.tags.clone(),
                });
                if !sg.ingress.is_empty() {
                    sg_phase.push(Step::AuthorizeIngress {
                        group: sg.name.clone(),
                        rules: sg.ingress.iter().cloned().collect(),
                    });
                }
            }
            Some(o) => {
                let add: Vec<SgRule> = sg.ingress.difference(&o.ingress).cloned().collect();
                if !add.is_empty() {
                    sg_phase.push(Step::AuthorizeIngress {
                        group: sg.name.clone(),
                        rules: add,
                    });
                }
                let remove: Vec<SgRule> = o.ingress.difference(&sg.ingress).cloned().collect();
                if !remove.is_empty() {
                    sg_deletes.push(Step::RevokeIngress {
                        id: o.id.clone(),
                        rules: remove,
                    });
                }
                let tags = missing_tags(&sg.tags, &o.tags);
                if !tags.is_empty() {
                    sg_phase.push(Step::TagSecurityGroup {
                        id: o.id.clone(),
                        tags,
                    });
                }
                let keys = stale_tags(&sg.tags, &o.tags, &desired.unmanaged_tag_keys);
                if !keys.is_empty() {
                    sg_phase.push(Step::UntagSecurityGroup {
                        id: o.id.clone(),
                        keys,
                    });
                }
            }
        }
    }
    for o in &observed.security_groups {
        if !desired.security_groups.iter().any(|d| d.name == o.name) {
            sg_deletes.push(Step::DeleteSecurityGroup { id: o.id.clone() });
        }
    }

    // Target groups, by name (the name encodes the immutable fields).
    let tg_names: BTreeMap<&str, &str> = observed
        .target_groups
        .iter()
        .map(|t| (t.arn.as_str(), t.name.as_str()))
        .collect();
    for tg in &desired.target_groups {
        match observed.target_groups.iter().find(|o| o.name == tg.name) {
            None => tg_phase.push(Step::CreateTargetGroup(Box::new(tg.clone()))),
            Some(o) => {
                if o.health_check != tg.health_check {
                    tg_phase.push(Step::ModifyTargetGroup {
                        arn: o.arn.clone(),
                        health_check: tg.health_check.clone(),
                    });
                }
                let attributes = missing_attributes(&tg.attributes, &o.attributes);
                if !attributes.is_empty() {
                    tg_phase.push(Step::SetTargetGroupAttributes {
                        arn: o.arn.clone(),
                        attributes,
                    });
                }
                let tags = missing_tags(&tg.tags, &o.tags);
                if !tags.is_empty() {
                    tg_phase.push(Step::TagElb {
                        arn: o.arn.clone(),
                        tags,
                    });
                }
                let keys = stale_tags(&tg.tags, &o.tags, &desired.unmanaged_tag_keys);
                if !keys.is_empty() {
                    tg_phase.push(Step::UntagElb {
                        arn: o.arn.clone(),
                        keys,
                    });
                }
            }
        }
    }
    for o in &observed.target_groups {
        if !desired.target_groups.iter().any(|d| d.name == o.name) {
            tg_deletes.push(Step::DeleteTargetGroup { arn: o.arn.clone() });
        }
    }

    let sg_name_of = |key: &str| -> String {
        desired
            .security_groups
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| key.to_owned())
    };

    for lb in &desired.load_balancers {
        let desired_sgs: Vec<String> = lb.security_groups.iter().map(|k| sg_name_of(k)).collect();
        let existing = observed
            .load_balancers
            .iter()
            .find(|o| o.name == lb.name)
            // A fixed name (load-balancer-name) cannot be created twice: the old one goes first.
            .filter(|o| {
                if o.scheme != lb.scheme {
                    pre_deletes.push(Step::DeleteLoadBalancer { arn: o.arn.clone() });
                    false
                } else {
                    true
                }
            });
        let Some(o) = existing else {
            lb_phase.push(Step::CreateLoadBalancer {
                name: lb.name.clone(),
                scheme: lb.scheme,
                ip_address_type: lb.ip_address_type,
                subnets: lb.subnets.clone(),
                security_groups: desired_sgs,
                attributes: lb.attributes.clone(),
                tags: lb.tags.clone(),
            });
            for l in &lb.listeners {
                let mut listener = l.clone();
                let rules = std::mem::take(&mut listener.rules);
                listener_phase.push(Step::CreateListener {
                    load_balancer: lb.name.clone(),
                    listener: Box::new(listener),
                });
                for r in rules {
                    rule_phase.push(Step::CreateRule {
                        load_balancer: lb.name.clone(),
                        port: l.port,
                        rule: Box::new(r),
                    });
                }
            }
            continue;
        };
        if !lb.subnets.is_empty() && o.subnets != lb.subnets {
            lb_phase.push(Step::SetSubnets {
                arn: o.arn.clone(),
                subnets: lb.subnets.clone(),
            });
        }
        let mut have: Vec<String> = o
            .security_groups
            .iter()
            .map(|id| {
                sg_names
                    .get(id.as_str())
                    .map_or(id.clone(), |n| (*n).to_owned())
            })
            .collect();
        have.sort();
        let mut want = desired_sgs.clone();
        want.sort();
        if have != want {
            lb_phase.push(Step::SetSecurityGroups {
                arn: o.arn.clone(),
                security_groups: desired_sgs,
            });
        }
        if o.ip_address_type != lb.ip_address_type {
            lb_phase.push(Step::SetIpAddressType {
                arn: o.arn.clone(),
                ip_address_type: lb.ip_address_type,
            });
        }
        let attributes = missing_attributes(&lb.attributes, &o.attributes);
        if !attributes.is_empty() {
            lb_phase.push(Step::SetLoadBalancerAttributes {
                arn: o.arn.clone(),
                attributes,
            });
        }
        let tags = missing_tags(&lb.tags, &o.tags);
        if !tags.is_empty() {
            lb_phase.push(Step::TagElb {
                arn: o.arn.clone(),
                tags,
            });
        }
        let keys = stale_tags(&lb.tags, &o.tags, &desired.unmanaged_tag_keys);
        if !keys.is_empty() {
            lb_phase.push(Step::UntagElb {
                arn: o.arn.clone(),
                keys,
            });
        }
        for l in &lb.listeners {
            let Some(ol) = o.listeners.iter().find(|x| x.port == l.port) else {
                let mut listener = l.clone();
                let rules = std::mem::take(&mut listener.rules);
                listener_phase.push(Step::CreateListener {
                    load_balancer: lb.name.clone(),
                    listener: Box::new(listener),
                });
                for r in rules {
                    rule_phase.push(Step::CreateRule {
                        load_balancer: lb.name.clone(),
                        port: l.port,
                        rule: Box::new(r),
                    });
                }
                continue;
            };
            let observed_default = by_name(&ol.default_action, &tg_names);
            if ol.protocol != l.protocol
                || ol.certificates.first() != l.certificates.first()
                || ol.ssl_policy != l.ssl_policy
                || observed_default != l.default_action
            {
                listener_phase.push(Step::ModifyListener {
                    arn: ol.arn.clone(),
                    protocol: l.protocol,
                    certificates: l.certificates.iter().take(1).cloned().collect(),
                    ssl_policy: l.ssl_policy.clone(),
                    default_action: l.default_action.clone(),
                });
            }
            // Extra (SNI) certificates: the default is never in the add or remove lists.
            let default = l.certificates.first();
            let have: BTreeSet<&String> = ol.certificates.iter().skip(1).collect();
            let want: BTreeSet<&String> = l.certificates.iter().skip(1).collect();
            let add: Vec<String> = want.difference(&have).map(|c| (*c).clone()).collect();
            let remove: Vec<String> = have
                .difference(&want)
                .filter(|c| Some(**c) != default)
                .map(|c| (*c).clone())
                .collect();
            if !add.is_empty() {
                listener_phase.push(Step::AddListenerCertificates {
                    arn: ol.arn.clone(),
                    certificates: add,
                });
            }
            if !remove.is_empty() {
                listener_phase.push(Step::RemoveListenerCertificates {
                    arn: ol.arn.clone(),
                    certificates: remove,
                });
            }
            let desired_priorities: BTreeSet<i32> = l.rules.iter().map(|r| r.priority).collect();
            for r in &l.rules {
                match ol.rules.iter().find(|x| x.priority == r.priority) {
                    None => rule_phase.push(Step::CreateRule {
                        load_balancer: lb.name.clone(),
                        port: l.port,
                        rule: Box::new(r.clone()),
                    }),
                    Some(or) => {
                        if or.conditions != r.conditions
                            || by_name(&or.action, &tg_names) != r.action
                        {
                            rule_phase.push(Step::ModifyRule {
                                arn: or.arn.clone(),
                                conditions: r.conditions.clone(),
                                action: r.action.clone(),
                            });
                        }
                    }
                }
            }
            for or in &ol.rules {
                if !desired_priorities.contains(&or.priority) {
                    rule_deletes.push(Step::DeleteRule {
                        arn: or.arn.clone(),
                    });
                }
            }
        }
        for ol in &o.listeners {
            if !lb.listeners.iter().any(|l| l.port == ol.port) {
                listener_deletes.push(Step::DeleteListener {
                    arn: ol.arn.clone(),
                });
            }
        }
    }
    for o in &observed.load_balancers {
        if !desired.load_balancers.iter().any(|d| d.name == o.name) {
            lb_deletes.push(Step::DeleteLoadBalancer { arn: o.arn.clone() });
        }
    }

    let mut steps = pre_deletes;
    steps.extend(sg_phase);
    steps.extend(tg_phase);
    steps.extend(lb_phase);
    steps.extend(listener_phase);
    steps.extend(rule_phase);
    steps.extend(rule_deletes);
    steps.extend(listener_deletes);
    steps.extend(lb_deletes);
    steps.extend(tg_deletes);
    // Revokes before deletes, both last: a group's SGs go after everything that used them.
    sg_deletes.sort_by_key(|s| matches!(s, Step::DeleteSecurityGroup { .. }));
    steps.extend(sg_deletes);
    steps
}

/// The in-memory AWS used by property tests and benchmarks.
#[doc(hidden)]
pub mod sim;
#[cfg(test)]
mod tests;
