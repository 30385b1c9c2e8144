//! An in-memory ELBv2 + EC2 that applies [`Step`]s the way AWS would, for property tests:
//! plan → apply → plan must be empty.

use super::*;

#[derive(Default)]
pub struct Sim {
    pub state: Observed,
    next: u64,
}

impl Sim {
    /// IDs continue after the largest numeric suffix already present, so they never repeat.
    pub fn new(state: Observed) -> Self {
        let mut ids: Vec<&str> = Vec::new();
        for lb in &state.load_balancers {
            ids.push(&lb.arn);
            for l in &lb.listeners {
                ids.push(&l.arn);
                ids.extend(l.rules.iter().map(|r| r.arn.as_str()));
            }
        }
        ids.extend(state.target_groups.iter().map(|t| t.arn.as_str()));
        ids.extend(state.security_groups.iter().map(|s| s.id.as_str()));
        let next = ids
            .iter()
            .filter_map(|id| {
                id.rsplit(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0)
            .max(1000);
        Sim { state, next }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn sg_id(&self, name: &str) -> String {
        self.state
            .security_groups
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.id.clone())
            .or_else(|| name.starts_with("sg-").then(|| name.to_owned()))
            .expect("sg by name")
    }

    fn tg_arn(&self, t: &TargetRef) -> TargetRef {
        match t {
            TargetRef::Name(n) => TargetRef::Arn(
                self.state
                    .target_groups
                    .iter()
                    .find(|x| &x.name == n)
                    .map(|x| x.arn.clone())
                    .expect("tg by name"),
            ),
            other => other.clone(),
        }
    }

    fn resolve(&self, a: &Action) -> Action {
        match a {
            Action::Forward {
                targets,
                stickiness,
            } => Action::Forward {
                targets: targets.iter().map(|(t, w)| (self.tg_arn(t), *w)).collect(),
                stickiness: *stickiness,
            },
            Action::Authenticated { first, then } => Action::Authenticated {
                first: first.clone(),
                then: Box::new(self.resolve(then)),
            },
            o => o.clone(),
        }
    }

    fn sg_mut(&mut self, id: &str) -> &mut ObservedSecurityGroup {
        self.state
            .security_groups
            .iter_mut()
            .find(|s| s.id == id)
            .expect("security group")
    }

    /// The tags of a target group or load balancer.
    fn elb_tags_mut(&mut self, arn: &str) -> &mut Tags {
        if let Some(i) = self.state.target_groups.iter().position(|t| t.arn == arn) {
            return &mut self.state.target_groups[i].tags;
        }
        &mut self
            .state
            .load_balancers
            .iter_mut()
            .find(|l| l.arn == arn)
            .expect("load balancer")
            .tags
    }

    fn lb_named(&mut self, name: &str) -> &mut ObservedLoadBalancer {
        self.state
            .load_balancers
            .iter_mut()
            .find(|l| l.name == name)
            .expect("load balancer by name")
    }

    fn listener_mut(&mut self, arn: &str) -> &mut ObservedListener {
        self.state
            .load_balancers
            .iter_mut()
            .flat_map(|l| l.listeners.iter_mut())
            .find(|l| l.arn == arn)
            .expect("listener")
    }

    pub fn apply(&mut self, steps: &[Step]) {
        for s in steps {
            self.step(s);
        }
    }

    fn step(&mut self, s: &Step) {
        match s {
            Step::CreateSecurityGroup { name, tags, .. } => {
                let id = self.id("sg-");
                self.state.security_groups.push(ObservedSecurityGroup {
                    id,
                    name: name.clone(),
                    ingress: BTreeSet::new(),
                    tags: tags.clone(),
                });
            }
            Step::AuthorizeIngress { group, rules } => {
                let id = self.sg_id(group);
                let sg = self
                    .state
                    .security_groups
                    .iter_mut()
                    .find(|s| s.id == id)
                    .unwrap();
                sg.ingress.extend(rules.iter().cloned());
            }
            Step::TagSecurityGroup { id, tags } => {
                let sg = self.sg_mut(id);
                sg.tags.extend(tags.clone());
            }
            Step::UntagSecurityGroup { id, keys } => {
                let sg = self.sg_mut(id);
                for k in keys {
                    sg.tags.remove(k);
                }
            }
            Step::RevokeIngress { id, rules } => {
                let sg = self.sg_mut(id);
                for r in rules {
                    sg.ingress.remove(r);
                }
            }
            Step::DeleteSecurityGroup { id } => self.state.security_groups.retain(|s| &s.id != id),
            Step::CreateTargetGroup(tg) => {
                let arn = self.id("arn:tg/");
                self.state.target_groups.push(ObservedTargetGroup {
                    arn,
                    name: tg.name.clone(),
                    protocol: tg.protocol,
                    protocol_version: tg.protocol_version.clone(),
                    port: tg.port,
                    target_type: tg.target_type,
                    health_check: tg.health_check.clone(),
                    attributes: tg.attributes.clone(),
                    tags: tg.tags.clone(),
                });
            }
            Step::ModifyTargetGroup { arn, health_check } => {
                self.state
                    .target_groups
                    .iter_mut()
                    .find(|t| &t.arn == arn)
                    .unwrap()
                    .health_check = health_check.clone();
            }
            Step::SetTargetGroupAttributes { arn, attributes } => {
                self.state
                    .target_groups
                    .iter_mut()
                    .find(|t| &t.arn == arn)
                    .unwrap()
                    .attributes
                    .extend(attributes.clone());
            }
            Step::TagElb { arn, tags } => self.elb_tags_mut(arn).extend(tags.clone()),
            Step::UntagElb { arn, keys } => {
                let tags = self.elb_tags_mut(arn);
                for k in keys {
                    tags.remove(k);
                }
            }
            Step::DeleteTargetGroup { arn } => {
                let used = self.state.load_balancers.iter().flat_map(|l| &l.listeners).any(|l| {
                    std::iter::once(&l.default_action).chain(l.rules.iter().map(|r| &r.action)).any(|a| {
                        matches!(a.last(), Action::Forward { targets, .. } if targets.iter().any(|(t, _)| *t == TargetRef::Arn(arn.clone())))
                    })
                });
                assert!(!used, "ResourceInUse: target group {arn} is still used");
                self.state.target_groups.retain(|t| &t.arn != arn);
            }
            Step::CreateLoadBalancer {
                name,
                scheme,
                ip_address_type,
                subnets,
                security_groups,
                attributes,
                tags,
                private_link_inbound,
                ..
            } => {
                assert!(
                    !self.state.load_balancers.iter().any(|l| &l.name == name),
                    "DuplicateLoadBalancerName {name}"
                );
                let arn = self.id("arn:lb/");
                let mut sgs: Vec<String> = security_groups.iter().map(|n| self.sg_id(n)).collect();
                sgs.sort();
                self.state.load_balancers.push(ObservedLoadBalancer {
                    dns_name: format!("{name}.elb"),
                    arn,
                    name: name.clone(),
                    scheme: *scheme,
                    ip_address_type: *ip_address_type,
                    subnets: subnets.clone(),
                    security_groups: sgs,
                    attributes: attributes.clone(),
                    tags: tags.clone(),
                    listeners: Vec::new(),
                    web_acl: None,
                    shield_protection: None,
                    private_link_inbound: *private_link_inbound,
                });
            }
            Step::SetWebAcl {
                load_balancer,
                web_acl,
            } => {
                self.lb_named(load_balancer).web_acl = web_acl.clone();
            }
            Step::CreateProtection { load_balancer } => {
                let id = self.id("protection-");
                let lb = self.lb_named(load_balancer);
                assert!(lb.shield_protection.is_none(), "ResourceAlreadyExists");
                lb.shield_protection = Some(id);
            }
            Step::DeleteProtection { id } => {
                for lb in &mut self.state.load_balancers {
                    if lb.shield_protection.as_ref() == Some(id) {
                        lb.shield_protection = None;
                    }
                }
            }
            Step::SetSubnets { arn, subnets } => {
                self.state
                    .load_balancers
                    .iter_mut()
                    .find(|l| &l.arn == arn)
                    .unwrap()
                    .subnets = subnets.clone();
            }
            Step::SetSecurityGroups {
                arn,
                security_groups,
                private_link_inbound,
            } => {
                let mut sgs: Vec<String> = security_groups.iter().map(|n| self.sg_id(n)).collect();
                sgs.sort();
                let lb = self
                    .state
                    .load_balancers
                    .iter_mut()
                    .find(|l| &l.arn == arn)
                    .unwrap();
                lb.security_groups = sgs;
                if private_link_inbound.is_some() {
                    lb.private_link_inbound = *private_link_inbound;
                }
            }
            Step::SetIpAddressType {
                arn,
                ip_address_type,
            } => {
                self.state
                    .load_balancers
                    .iter_mut()
                    .find(|l| &l.arn == arn)
                    .unwrap()
                    .ip_address_type = *ip_address_type;
            }
            Step::SetLoadBalancerAttributes { arn, attributes } => {
                self.state
                    .load_balancers
                    .iter_mut()
                    .find(|l| &l.arn == arn)
                    .unwrap()
                    .attributes
                    .extend(attributes.clone());
            }
            Step::CreateListener {
                load_balancer,
                listener,
                ..
            } => {
                let arn = self.id("arn:listener/");
                let default_action = self.resolve(&listener.default_action);
                let lb = self
                    .state
                    .load_balancers
                    .iter_mut()
                    .find(|l| &l.name == load_balancer)
                    .unwrap();
                assert!(
                    !lb.listeners.iter().any(|l| l.port == listener.port),
                    "DuplicateListener"
                );
                lb.listeners.push(ObservedListener {
                    arn,
                    port: listener.port,
                    protocol: listener.protocol,
                    certificates: listener.certificates.clone(),
                    ssl_policy: listener.ssl_policy.clone(),
                    alpn_policy: listener.alpn_policy.clone(),
                    attributes: listener.attributes.clone(),
                    mutual_auth: listener.mutual_auth.clone(),
                    default_action,
                    rules: Vec::new(),
                });
            }
            Step::SetListenerAttributes { arn, attributes } => {
                self.listener_mut(arn).attributes.extend(attributes.clone());
            }
            Step::ModifyListener {
                arn,
                protocol,
                certificates,
                ssl_policy,
                alpn_policy,
                mutual_auth,
                default_action,
            } => {
                let default_action = self.resolve(default_action);
                let l = self.listener_mut(arn);
                l.protocol = *protocol;
                // The default certificate changes; the extra ones stay.
                match (certificates.first(), l.certificates.is_empty()) {
                    (Some(c), false) => {
                        // As DescribeListenerCertificates reads it: the default once.
                        l.certificates[0] = c.clone();
                        let mut rest: Vec<String> = l.certificates.split_off(1);
                        rest.retain(|x| x != c);
                        l.certificates.extend(rest);
                    }
                    (Some(c), true) => l.certificates.push(c.clone()),
                    (None, _) => l.certificates.clear(),
                }
                l.ssl_policy = ssl_policy.clone();
                l.alpn_policy = alpn_policy.clone();
                if let Some(m) = mutual_auth {
                    l.mutual_auth = Some(m.clone());
                }
                l.default_action = default_action;
            }
            Step::AddListenerCertificates { arn, certificates } => {
                let l = self.listener_mut(arn);
                assert!(
                    !l.certificates.is_empty(),
                    "no default certificate on {arn}"
                );
                for c in certificates {
                    if !l.certificates[1..].contains(c) {
                        l.certificates.push(c.clone());
                    }
                }
            }
            Step::RemoveListenerCertificates { arn, certificates } => {
                let l = self.listener_mut(arn);
                assert!(
                    !certificates.contains(&l.certificates[0]),
                    "OperationNotPermitted: the default certificate cannot be removed"
                );
                l.certificates.retain(|c| !certificates.contains(c));
            }
            Step::CreateRule {
                load_balancer,
                port,
                rule,
                ..
            } => {
                let arn = self.id("arn:rule/");
                let action = self.resolve(&rule.action);
                let lb = self
                    .state
                    .load_balancers
                    .iter_mut()
                    .find(|l| &l.name == load_balancer)
                    .unwrap();
                let l = lb.listeners.iter_mut().find(|l| l.port == *port).unwrap();
                assert!(
                    !l.rules.iter().any(|r| r.priority == rule.priority),
                    "PriorityInUse"
                );
                l.rules.push(ObservedRule {
                    arn,
                    priority: rule.priority,
                    conditions: rule.conditions.clone(),
                    action,
                    transforms: rule.transforms.clone(),
                });
            }
            Step::ModifyRule {
                arn,
                conditions,
                action,
                transforms,
            } => {
                let action = self.resolve(action);
                let r = self
                    .state
                    .load_balancers
                    .iter_mut()
                    .flat_map(|l| l.listeners.iter_mut())
                    .flat_map(|l| l.rules.iter_mut())
                    .find(|r| &r.arn == arn)
                    .unwrap();
                r.conditions = conditions.clone();
                r.action = action;
                r.transforms = transforms.clone();
            }
            Step::DeleteRule { arn } => {
                for l in self
                    .state
                    .load_balancers
                    .iter_mut()
                    .flat_map(|l| l.listeners.iter_mut())
                {
                    l.rules.retain(|r| &r.arn != arn);
                }
            }
            Step::DeleteListener { arn } => {
                for lb in &mut self.state.load_balancers {
                    lb.listeners.retain(|l| &l.arn != arn);
                }
            }
            Step::DeleteLoadBalancer { arn } => self.state.load_balancers.retain(|l| &l.arn != arn),
        }
    }
}
