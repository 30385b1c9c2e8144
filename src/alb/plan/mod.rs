//! Pure: desired [`GroupModel`] + [`Observed`] → ordered [`Step`]s.
//!
//! Order: security groups → target groups → load balancers → listeners → rules, then the
//! deletes in reverse (rules → listeners → load balancers → target groups → security
//! groups). Immutable fields are part of a resource's name, so a change yields a new
//! resource that is created (and switched to) before the old one is deleted.
//! Only resources tagged for our cluster and group are ever in a step.
//!
//! [`plan`] calls one function per resource family; each adds its creates, changes and
//! deletes to the phases (`Phases`) that put them in that order.

mod step;

pub use step::Step;

use std::collections::{BTreeMap, BTreeSet};

use super::model::*;
use super::observed::*;

mod secrets;
/// The in-memory AWS used by property tests and benchmarks.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod sim;
pub use secrets::{client_secret_versions, resend_rotated, rotated};
#[cfg(test)]
mod tests;

/// The plan. `observed` may hold foreign resources: they are dropped first and never acted on.
pub fn plan(desired: &GroupModel, observed: &Observed, cluster: &str) -> Vec<Step> {
    let mut observed = observed.clone();
    observed.retain_owned(cluster, desired.kind, &desired.stack);

    let mut phases = Phases::default();
    security_groups(desired, &observed, &mut phases);
    target_groups(desired, &observed, &mut phases);
    load_balancers(desired, &observed, &mut phases);
    listeners(desired, &observed, &mut phases);
    rules(desired, &observed, &mut phases);
    phases.into_steps()
}

/// The steps of a plan by phase, each phase in the order its steps were added.
#[derive(Default)]
struct Phases {
    /// Load balancers that must go before their replacement can be created.
    pre_deletes: Vec<Step>,
    security_groups: Vec<Step>,
    target_groups: Vec<Step>,
    load_balancers: Vec<Step>,
    listeners: Vec<Step>,
    rules: Vec<Step>,
    /// WAFv2 and Shield: after the routing, so a refused add-on holds up nothing else.
    addons: Vec<Step>,
    rule_deletes: Vec<Step>,
    listener_deletes: Vec<Step>,
    lb_deletes: Vec<Step>,
    tg_deletes: Vec<Step>,
    /// Revokes and security group deletes.
    sg_deletes: Vec<Step>,
}

impl Phases {
    fn into_steps(self) -> Vec<Step> {
        let mut steps = self.pre_deletes;
        steps.extend(self.security_groups);
        steps.extend(self.target_groups);
        steps.extend(self.load_balancers);
        steps.extend(self.listeners);
        steps.extend(self.rules);
        steps.extend(self.addons);
        steps.extend(self.rule_deletes);
        steps.extend(self.listener_deletes);
        steps.extend(self.lb_deletes);
        steps.extend(self.tg_deletes);
        // Revokes before deletes, both last: a group's SGs go after everything that used them.
        let mut sg_deletes = self.sg_deletes;
        sg_deletes.sort_by_key(|s| matches!(s, Step::DeleteSecurityGroup { .. }));
        steps.extend(sg_deletes);
        steps
    }
}

/// Security groups, by name.
fn security_groups(desired: &GroupModel, observed: &Observed, p: &mut Phases) {
    for sg in &desired.security_groups {
        match observed.security_groups.iter().find(|o| o.name == sg.name) {
            None => {
                p.security_groups.push(Step::CreateSecurityGroup {
                    name: sg.name.clone(),
                    description: sg.description.clone(),
                    tags: sg.tags.clone(),
                });
                if !sg.ingress.is_empty() {
                    p.security_groups.push(Step::AuthorizeIngress {
                        group: sg.name.clone(),
                        rules: sg.ingress.iter().cloned().collect(),
                    });
                }
            }
            Some(o) => {
                let add: Vec<SgRule> = sg.ingress.difference(&o.ingress).cloned().collect();
                if !add.is_empty() {
                    p.security_groups.push(Step::AuthorizeIngress {
                        group: sg.name.clone(),
                        rules: add,
                    });
                }
                let remove: Vec<SgRule> = o.ingress.difference(&sg.ingress).cloned().collect();
                if !remove.is_empty() {
                    p.sg_deletes.push(Step::RevokeIngress {
                        id: o.id.clone(),
                        rules: remove,
                    });
                }
                let tags = missing_tags(&sg.tags, &o.tags);
                if !tags.is_empty() {
                    p.security_groups.push(Step::TagSecurityGroup {
                        id: o.id.clone(),
                        tags,
                    });
                }
                let keys = stale_tags(&sg.tags, &o.tags, &desired.unmanaged_tag_keys);
                if !keys.is_empty() {
                    p.security_groups.push(Step::UntagSecurityGroup {
                        id: o.id.clone(),
                        keys,
                    });
                }
            }
        }
    }
    for o in &observed.security_groups {
        if !desired.security_groups.iter().any(|d| d.name == o.name) {
            p.sg_deletes
                .push(Step::DeleteSecurityGroup { id: o.id.clone() });
        }
    }
}

/// Target groups, by name (the name encodes the immutable fields).
fn target_groups(desired: &GroupModel, observed: &Observed, p: &mut Phases) {
    for tg in &desired.target_groups {
        match observed.target_groups.iter().find(|o| o.name == tg.name) {
            None => p
                .target_groups
                .push(Step::CreateTargetGroup(Box::new(tg.clone()))),
            Some(o) => {
                if o.health_check != tg.health_check {
                    p.target_groups.push(Step::ModifyTargetGroup {
                        arn: o.arn.clone(),
                        health_check: tg.health_check.clone(),
                    });
                }
                let attributes = missing_attributes(&tg.attributes, &o.attributes);
                if !attributes.is_empty() {
                    p.target_groups.push(Step::SetTargetGroupAttributes {
                        arn: o.arn.clone(),
                        attributes,
                    });
                }
                let tags = missing_tags(&tg.tags, &o.tags);
                if !tags.is_empty() {
                    p.target_groups.push(Step::TagElb {
                        arn: o.arn.clone(),
                        tags,
                    });
                }
                let keys = stale_tags(&tg.tags, &o.tags, &desired.unmanaged_tag_keys);
                if !keys.is_empty() {
                    p.target_groups.push(Step::UntagElb {
                        arn: o.arn.clone(),
                        keys,
                    });
                }
            }
        }
    }
    for o in &observed.target_groups {
        if !desired.target_groups.iter().any(|d| d.name == o.name) {
            p.tg_deletes
                .push(Step::DeleteTargetGroup { arn: o.arn.clone() });
        }
    }
}

/// Load balancers, by name. Their listeners and rules are planned by [`listeners`] and
/// [`rules`].
fn load_balancers(desired: &GroupModel, observed: &Observed, p: &mut Phases) {
    let sg_names: BTreeMap<&str, &str> = observed
        .security_groups
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
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
        // A fixed name (load-balancer-name) cannot be created twice: the old one goes first.
        if let Some(o) = observed.load_balancers.iter().find(|o| o.name == lb.name)
            && o.scheme != lb.scheme
        {
            p.pre_deletes
                .push(Step::DeleteLoadBalancer { arn: o.arn.clone() });
        }
        let Some(o) = existing(lb, observed) else {
            p.load_balancers.push(Step::CreateLoadBalancer {
                name: lb.name.clone(),
                kind: lb.kind,
                scheme: lb.scheme,
                ip_address_type: lb.ip_address_type,
                subnets: lb.subnets.clone(),
                subnet_mappings: lb.subnet_mappings.clone(),
                security_groups: desired_sgs,
                attributes: lb.attributes.clone(),
                tags: lb.tags.clone(),
                private_link_inbound: lb.private_link_inbound,
            });
            addons(lb, None, p);
            continue;
        };
        addons(lb, Some(o), p);
        if !lb.subnets.is_empty() && o.subnets != lb.subnets {
            p.load_balancers.push(Step::SetSubnets {
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
        // What AWS does not report (an emulator) is not rewritten on every reconcile.
        let private_link = lb
            .private_link_inbound
            .filter(|want| o.private_link_inbound.is_some_and(|have| have != *want));
        if have != want || private_link.is_some() {
            p.load_balancers.push(Step::SetSecurityGroups {
                arn: o.arn.clone(),
                security_groups: desired_sgs,
                private_link_inbound: private_link,
            });
        }
        if o.ip_address_type != lb.ip_address_type {
            p.load_balancers.push(Step::SetIpAddressType {
                arn: o.arn.clone(),
                ip_address_type: lb.ip_address_type,
            });
        }
        let attributes = missing_attributes(&lb.attributes, &o.attributes);
        if !attributes.is_empty() {
            p.load_balancers.push(Step::SetLoadBalancerAttributes {
                arn: o.arn.clone(),
                attributes,
            });
        }
        let tags = missing_tags(&lb.tags, &o.tags);
        if !tags.is_empty() {
            p.load_balancers.push(Step::TagElb {
                arn: o.arn.clone(),
                tags,
            });
        }
        let keys = stale_tags(&lb.tags, &o.tags, &desired.unmanaged_tag_keys);
        if !keys.is_empty() {
            p.load_balancers.push(Step::UntagElb {
                arn: o.arn.clone(),
                keys,
            });
        }
    }
    for o in &observed.load_balancers {
        if !desired.load_balancers.iter().any(|d| d.name == o.name) {
            p.lb_deletes
                .push(Step::DeleteLoadBalancer { arn: o.arn.clone() });
        }
    }
}

/// WAFv2 and Shield Advanced, by the load balancer's name (it may be created in this plan).
fn addons(lb: &LoadBalancerModel, o: Option<&ObservedLoadBalancer>, p: &mut Phases) {
    let have_acl = o.and_then(|o| o.web_acl.clone());
    if let Some(want) = &lb.addons.web_acl
        && *want != have_acl
    {
        p.addons.push(Step::SetWebAcl {
            load_balancer: lb.name.clone(),
            web_acl: want.clone(),
        });
    }
    let protection = o.and_then(|o| o.shield_protection.clone());
    match (lb.addons.shield, protection) {
        (Some(true), None) => p.addons.push(Step::CreateProtection {
            load_balancer: lb.name.clone(),
        }),
        (Some(false), Some(id)) => p.addons.push(Step::DeleteProtection { id }),
        _ => {}
    }
}

/// Listeners, by port, on each desired load balancer; all of them are created on a new one.
/// Rules are planned by [`rules`].
fn listeners(desired: &GroupModel, observed: &Observed, p: &mut Phases) {
    let tg_names = target_group_names(observed);
    for lb in &desired.load_balancers {
        let o = existing(lb, observed);
        for l in &lb.listeners {
            let Some(ol) = o.and_then(|o| o.listeners.iter().find(|x| x.port == l.port)) else {
                p.listeners.push(Step::CreateListener {
                    load_balancer: lb.name.clone(),
                    listener: Box::new(without_rules(l)),
                    tags: lb.part_tags(desired.kind, l.port.to_string()),
                });
                continue;
            };
            let observed_default = by_name(&ol.default_action, &tg_names);
            if ol.protocol != l.protocol
                || ol.certificates.first() != l.certificates.first()
                || ol.ssl_policy != l.ssl_policy
                || ol.alpn_policy != l.alpn_policy
                || MutualAuth::differs(l.mutual_auth.as_ref(), ol.mutual_auth.as_ref())
                || observed_default != l.default_action
            {
                p.listeners.push(Step::ModifyListener {
                    arn: ol.arn.clone(),
                    protocol: l.protocol,
                    certificates: l.certificates.iter().take(1).cloned().collect(),
                    ssl_policy: l.ssl_policy.clone(),
                    alpn_policy: l.alpn_policy.clone(),
                    mutual_auth: l.mutual_auth.clone(),
                    default_action: l.default_action.clone(),
                });
            }
            let attributes = missing_attributes(&l.attributes, &ol.attributes);
            if !attributes.is_empty() {
                p.listeners.push(Step::SetListenerAttributes {
                    arn: ol.arn.clone(),
                    attributes,
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
                p.listeners.push(Step::AddListenerCertificates {
                    arn: ol.arn.clone(),
                    certificates: add,
                });
            }
            if !remove.is_empty() {
                p.listeners.push(Step::RemoveListenerCertificates {
                    arn: ol.arn.clone(),
                    certificates: remove,
                });
            }
        }
        for ol in o.iter().flat_map(|o| &o.listeners) {
            if !lb.listeners.iter().any(|l| l.port == ol.port) {
                p.listener_deletes.push(Step::DeleteListener {
                    arn: ol.arn.clone(),
                });
            }
        }
    }
}

/// Rules, by priority, on each desired listener; all of them are created on a new one.
fn rules(desired: &GroupModel, observed: &Observed, p: &mut Phases) {
    let tg_names = target_group_names(observed);
    for lb in &desired.load_balancers {
        let o = existing(lb, observed);
        for l in &lb.listeners {
            let Some(ol) = o.and_then(|o| o.listeners.iter().find(|x| x.port == l.port)) else {
                for r in &l.rules {
                    p.rules.push(create_rule(desired.kind, lb, l.port, r));
                }
                continue;
            };
            let desired_priorities: BTreeSet<i32> = l.rules.iter().map(|r| r.priority).collect();
            for r in &l.rules {
                match ol.rules.iter().find(|x| x.priority == r.priority) {
                    None => p.rules.push(create_rule(desired.kind, lb, l.port, r)),
                    Some(or) => {
                        if or.conditions != r.conditions
                            || by_name(&or.action, &tg_names) != r.action
                            || or.transforms != r.transforms
                        {
                            p.rules.push(Step::ModifyRule {
                                arn: or.arn.clone(),
                                conditions: r.conditions.clone(),
                                action: r.action.clone(),
                                transforms: r.transforms.clone(),
                            });
                        }
                    }
                }
            }
            for or in &ol.rules {
                if !desired_priorities.contains(&or.priority) {
                    p.rule_deletes.push(Step::DeleteRule {
                        arn: or.arn.clone(),
                    });
                }
            }
        }
    }
}

fn create_rule(kind: StackKind, lb: &LoadBalancerModel, port: i32, r: &RuleModel) -> Step {
    Step::CreateRule {
        load_balancer: lb.name.clone(),
        port,
        rule: Box::new(r.clone()),
        tags: lb.part_tags(kind, format!("{port}:{}", r.priority)),
    }
}

/// The observed load balancer `lb` is planned against: ours of the same name and scheme.
/// One with another scheme is replaced (see [`load_balancers`]).
fn existing<'a>(
    lb: &LoadBalancerModel,
    observed: &'a Observed,
) -> Option<&'a ObservedLoadBalancer> {
    observed
        .load_balancers
        .iter()
        .find(|o| o.name == lb.name)
        .filter(|o| o.scheme == lb.scheme)
}

/// A listener as CreateListener takes it: its rules are created by their own steps.
fn without_rules(l: &ListenerModel) -> ListenerModel {
    ListenerModel {
        port: l.port,
        protocol: l.protocol,
        certificates: l.certificates.clone(),
        ssl_policy: l.ssl_policy.clone(),
        alpn_policy: l.alpn_policy.clone(),
        attributes: l.attributes.clone(),
        mutual_auth: l.mutual_auth.clone(),
        default_action: l.default_action.clone(),
        rules: Vec::new(),
    }
}

/// Observed target group ARNs → our names.
fn target_group_names(observed: &Observed) -> BTreeMap<&str, &str> {
    observed
        .target_groups
        .iter()
        .map(|t| (t.arn.as_str(), t.name.as_str()))
        .collect()
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
    action.map_targets(&|t| match t {
        TargetRef::Arn(arn) => match names.get(arn.as_str()) {
            Some(n) => TargetRef::Name((*n).to_owned()),
            None => t.clone(),
        },
        TargetRef::Name(_) => t.clone(),
    })
}
