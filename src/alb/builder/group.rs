//! The group: members in order, checked for agreement, split into shards of at most
//! [`MAX_RULES_PER_ALB`] rules, and assembled into the [`GroupModel`].

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;

use super::member::{Exclusive, MemberSpec, parse_member};
use super::network::{SecurityGroupSpec, resolve_subnets, scheme, shard_security_groups};
use super::{DEFAULT_SSL_POLICY, Environment};
use crate::alb::annotations::{Problem, reason};
use crate::alb::class::Membership;
use crate::alb::model::*;
use crate::alb::naming;

pub struct Member<'a> {
    pub ingress: &'a Ingress,
    pub membership: Membership,
    /// The member's last accepted contribution ([`MemberOutcome::accepted_spec`] of an earlier
    /// build, kept in the group status). When the current configuration is rejected, this is
    /// served instead, so a bad edit never removes rules that worked.
    pub last_accepted: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberOutcome {
    pub namespace: String,
    pub name: String,
    /// The ALB (shard index) serving it; `None` when excluded.
    pub shard: Option<usize>,
    /// Why the current configuration is not used. With `serving_last_accepted`, the member is
    /// still served, from its last accepted configuration.
    pub problem: Option<Problem>,
    pub serving_last_accepted: bool,
    /// The configuration being served (opaque JSON), to be passed back as
    /// [`Member::last_accepted`]; `None` when the member is not served.
    pub accepted_spec: Option<AcceptedSpec>,
}

/// A member's accepted contribution. Serialised (for the group status) only when asked: the
/// builder itself never pays for it.
#[derive(Clone, Debug)]
pub struct AcceptedSpec(Arc<MemberSpec>);

impl AcceptedSpec {
    /// The form kept in the group status and passed back as [`Member::last_accepted`].
    pub fn json(&self) -> String {
        serde_json::to_string(&*self.0).unwrap_or_default()
    }
}

impl PartialEq for AcceptedSpec {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.json() == other.json()
    }
}

impl Eq for AcceptedSpec {}

impl MemberOutcome {
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Debug)]
pub struct BuildOutput {
    pub model: GroupModel,
    pub members: Vec<MemberOutcome>,
    /// Things the reader of a plan should know (missing discovery data, splits).
    pub notes: Vec<String>,
}

pub fn build(stack: &str, members: &[Member<'_>], env: &Environment<'_>) -> BuildOutput {
    let mut order: Vec<&Member<'_>> = members.iter().collect();
    order.sort_by(|a, b| {
        (
            a.membership.order,
            a.ingress.namespace(),
            a.ingress.name_any(),
        )
            .cmp(&(
                b.membership.order,
                b.ingress.namespace(),
                b.ingress.name_any(),
            ))
    });
    let mut outcomes: Vec<MemberOutcome> = Vec::new();
    // (outcome index, spec to use, last accepted spec to fall back on)
    let mut specs: Vec<(usize, MemberSpec, Option<MemberSpec>)> = Vec::new();
    let mut notes = Vec::new();
    for m in &order {
        let mut outcome = MemberOutcome {
            namespace: m.ingress.namespace().unwrap_or_default(),
            name: m.ingress.name_any(),
            shard: None,
            problem: m.membership.problem.clone(),
            serving_last_accepted: false,
            accepted_spec: None,
        };
        // A membership problem (a namespace not allowed in the group, a bad group name or
        // order) is about whether the Ingress may be here at all: no fallback for it.
        if outcome.problem.is_none() {
            let last = m
                .last_accepted
                .and_then(|s| serde_json::from_str::<MemberSpec>(s).ok())
                .filter(|s| s.id == outcome.id());
            match parse_member(stack, m, env) {
                Ok(spec) => specs.push((outcomes.len(), spec, last)),
                Err(p) => {
                    if let Some(last) = last {
                        outcome.serving_last_accepted = true;
                        specs.push((outcomes.len(), last, None));
                    }
                    outcome.problem = Some(p);
                }
            }
        }
        outcomes.push(outcome);
    }

    // Agreement across members, in order: the first to set a value wins.
    let mut group = Exclusive::default();
    let mut tags = Tags::new();
    let mut port_protocols: BTreeMap<i32, (Protocol, String)> = BTreeMap::new();
    let mut seen_rules: BTreeMap<(i32, Vec<RuleCondition>), String> = BTreeMap::new();
    let mut default_owner: Option<String> = None;
    let mut accepted: Vec<(usize, MemberSpec)> = Vec::new();
    for (idx, spec, last) in specs {
        let mut agrees = |s: &MemberSpec| {
            agree(
                &mut group,
                &mut tags,
                &mut port_protocols,
                &mut seen_rules,
                &mut default_owner,
                s,
            )
        };
        match agrees(&spec) {
            Ok(()) => accepted.push((idx, spec)),
            Err(p) => {
                // A change that conflicts with the group keeps the last accepted version.
                if let Some(last) = last
                    && agrees(&last).is_ok()
                {
                    outcomes[idx].serving_last_accepted = true;
                    accepted.push((idx, last));
                } else {
                    outcomes[idx].serving_last_accepted = false;
                }
                outcomes[idx].problem = Some(p);
            }
        }
    }

    let scheme = scheme(&group);
    let subnets = match resolve_subnets(group.subnets.as_deref(), scheme, env) {
        Ok(s) => s,
        Err(p) => {
            for (idx, _) in &accepted {
                outcomes[*idx].problem = Some(p.clone());
                outcomes[*idx].serving_last_accepted = false;
            }
            accepted.clear();
            Vec::new()
        }
    };
    if env.subnets.is_none() && group.subnets.is_none() && !accepted.is_empty() {
        notes.push("subnets: discovered by tags at apply time (no AWS access)".into());
    }

    // Shards of at most 100 rules, members kept whole, in order.
    let mut shards: Vec<Vec<(usize, Arc<MemberSpec>)>> = Vec::new();
    let mut current = 0usize;
    for (idx, spec) in accepted {
        let n = member_rule_count(&spec, group.ssl_redirect);
        if n > MAX_RULES_PER_ALB {
            outcomes[idx].problem = Some(Problem::new(
                reason::TOO_MANY_RULES,
                format!("the Ingress alone needs {n} rules; an ALB holds {MAX_RULES_PER_ALB}"),
            ));
            outcomes[idx].serving_last_accepted = false;
            continue;
        }
        if shards.is_empty() || current + n > MAX_RULES_PER_ALB {
            shards.push(Vec::new());
            current = 0;
        }
        current += n;
        outcomes[idx].shard = Some(shards.len() - 1);
        let spec = Arc::new(spec);
        outcomes[idx].accepted_spec = Some(AcceptedSpec(spec.clone()));
        shards.last_mut().expect("pushed above").push((idx, spec));
    }
    if shards.len() > 1 {
        notes.push(format!(
            "the group needs {} rules and is split onto {} ALBs of at most {MAX_RULES_PER_ALB} rules",
            shards.iter().flatten().map(|(_, s)| member_rule_count(s, group.ssl_redirect)).sum::<usize>(),
            shards.len()
        ));
    }

    let mut model = GroupModel::empty(stack);
    model.unmanaged_tag_keys = env.external_managed_tags.clone();
    let mut base_tags = env.default_tags.clone();
    base_tags.extend(tags);
    base_tags.insert(TAG_CLUSTER.into(), env.cluster.into());
    base_tags.insert(TAG_STACK.into(), stack.into());
    let with_resource = |key: &str| {
        let mut t = base_tags.clone();
        t.insert(TAG_RESOURCE.into(), key.into());
        t
    };
    for (shard, members) in shards.iter().enumerate() {
        let suffix = if shard == 0 {
            String::new()
        } else {
            format!("-{shard}")
        };
        let lb_key = format!("LoadBalancer{suffix}");
        let (ports, listeners) = shard_listeners(members, &group);
        let sg_spec = SecurityGroupSpec {
            inbound_cidrs: group.inbound_cidrs.as_deref(),
            ip_address_type: group.ip_address_type.unwrap_or(IpAddressType::Ipv4),
            custom: group.security_groups.as_deref(),
            manage_backend_rules: group.manage_backend_sg_rules,
            ports: ports.keys().map(|p| (*p, IpProtocol::Tcp)).collect(),
        };
        let sgs = shard_security_groups(&sg_spec, env.cluster, stack, &suffix, &with_resource);
        model.security_groups.extend(sgs.managed);
        for (_, m) in members {
            for tg in &m.target_groups {
                let mut tg = tg.clone();
                tg.binding.backend_security_group = sgs.backend.clone().unwrap_or_default();
                tg.tags = with_resource(&tg.key);
                if !model.target_groups.iter().any(|t| t.name == tg.name) {
                    model.target_groups.push(tg);
                }
            }
        }
        let name = match &group.load_balancer_name {
            Some(n) if shard == 0 => n.clone(),
            Some(n) => format!("{}-{shard}", crate::k8s::truncate(n, 29)),
            None => naming::load_balancer_name(env.cluster, stack, shard, scheme.as_str()),
        };
        model.load_balancers.push(LoadBalancerModel {
            key: lb_key.clone(),
            name,
            kind: LoadBalancerKind::Application,
            private_link_inbound: None,
            subnet_mappings: BTreeMap::new(),
            scheme,
            ip_address_type: group.ip_address_type.unwrap_or(IpAddressType::Ipv4),
            subnets: subnets.clone(),
            security_groups: sgs.attached,
            attributes: group.lb_attributes.clone().unwrap_or_default(),
            tags: with_resource(&lb_key),
            listeners,
            members: members.iter().map(|(_, m)| m.id.clone()).collect(),
            addons: Addons {
                web_acl: group.web_acl.clone(),
                shield: group.shield,
            },
        });
    }
    model.target_groups.sort_by(|a, b| a.name.cmp(&b.name));
    BuildOutput {
        model,
        members: outcomes,
        notes,
    }
}

/// The listeners of one shard, one per port its members listen on, with the members' rules
/// in order (none on a port that only redirects to HTTPS), and those ports.
fn shard_listeners(
    members: &[(usize, Arc<MemberSpec>)],
    group: &Exclusive,
) -> (BTreeMap<i32, Protocol>, Vec<ListenerModel>) {
    let mut ports: BTreeMap<i32, Protocol> = BTreeMap::new();
    let mut certs: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (_, m) in members {
        for (proto, port) in &m.ports {
            ports.insert(*port, *proto);
            if *proto == Protocol::Https {
                let list = certs.entry(*port).or_default();
                for c in &m.certificates {
                    if !list.contains(c) {
                        list.push(c.clone());
                    }
                }
            }
        }
    }
    let (default_action, default_auth) = members
        .iter()
        .find_map(|(_, m)| Some((m.default_action.clone()?, m.default_auth.clone())))
        .unwrap_or_else(|| (Action::not_found(), None));
    let mut listeners = Vec::new();
    for (&port, &protocol) in &ports {
        let redirect = protocol == Protocol::Http && group.ssl_redirect.is_some();
        // Authentication runs on HTTPS listeners only, as the peer builds it.
        let auth = |a: &Option<Authenticate>| a.clone().filter(|_| protocol == Protocol::Https);
        let mut rules = Vec::new();
        if !redirect {
            for (_, m) in members {
                if !m.ports.iter().any(|(_, p)| *p == port) {
                    continue;
                }
                for r in &m.rules {
                    // A redirect to this very listener would loop: the peer leaves it out
                    // (the legacy `actions.ssl-redirect` rule on the HTTPS listener).
                    if redirects_to_itself(&r.action, protocol, port) {
                        continue;
                    }
                    rules.push(RuleModel {
                        priority: rules.len() as i32 + 1,
                        conditions: r.conditions.clone(),
                        action: Action::authenticated(auth(&r.auth).as_ref(), &r.action),
                        transforms: r.transforms.clone(),
                        member: m.id.clone(),
                    });
                }
            }
        }
        listeners.push(ListenerModel {
            port,
            protocol,
            certificates: if protocol == Protocol::Https {
                certs.remove(&port).unwrap_or_default()
            } else {
                Vec::new()
            },
            ssl_policy: (protocol == Protocol::Https).then(|| {
                group
                    .ssl_policy
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SSL_POLICY.into())
            }),
            alpn_policy: None,
            mutual_auth: group
                .mutual_auth
                .get(&port)
                .filter(|_| protocol == Protocol::Https)
                .cloned(),
            attributes: group
                .listener_attributes
                .get(&format!("{}-{port}", protocol.as_str()))
                .cloned()
                .unwrap_or_default(),
            default_action: if redirect {
                Action::Redirect(Redirect::new(
                    Some("HTTPS".into()),
                    None,
                    Some(group.ssl_redirect.unwrap_or(443).to_string()),
                    None,
                    None,
                    "HTTP_301".into(),
                ))
            } else {
                Action::authenticated(auth(&default_auth).as_ref(), &default_action)
            },
            rules,
        });
    }
    (ports, listeners)
}

/// Whether `action` redirects to the listener it is on, unchanged (same protocol and port,
/// host, path and query as requested).
fn redirects_to_itself(action: &Action, protocol: Protocol, port: i32) -> bool {
    let Action::Redirect(r) = action.last() else {
        return false;
    };
    (r.protocol == "#{protocol}" || r.protocol == protocol.as_str())
        && (r.port == "#{port}" || r.port == port.to_string())
        && r.host == "#{host}"
        && r.path == "/#{path}"
        && r.query == "#{query}"
}

fn member_rule_count(m: &MemberSpec, ssl_redirect: Option<i32>) -> usize {
    let ports = m
        .ports
        .iter()
        .filter(|(p, _)| !(ssl_redirect.is_some() && *p == Protocol::Http))
        .count();
    m.rules.len() * ports
}

fn conflict(what: &str, mine: impl std::fmt::Debug, theirs: impl std::fmt::Debug) -> Problem {
    Problem::new(
        reason::CONFLICTING_SETTINGS,
        format!(
            "{what} {mine:?} conflicts with {theirs:?} set by an Ingress ordered earlier in the group"
        ),
    )
}

fn agree(
    group: &mut Exclusive,
    tags: &mut Tags,
    port_protocols: &mut BTreeMap<i32, (Protocol, String)>,
    seen_rules: &mut BTreeMap<(i32, Vec<RuleCondition>), String>,
    default_owner: &mut Option<String>,
    m: &MemberSpec,
) -> Result<(), Problem> {
    fn merge<T: Clone + PartialEq + std::fmt::Debug>(
        what: &str,
        group: &Option<T>,
        mine: &Option<T>,
    ) -> Result<Option<T>, Problem> {
        match (group, mine) {
            (Some(g), Some(m)) if g != m => Err(conflict(what, m, g)),
            (Some(g), _) => Ok(Some(g.clone())),
            (None, m) => Ok(m.clone()),
        }
    }
    let e = &m.exclusive;
    let next = Exclusive {
        scheme: merge("scheme", &group.scheme, &e.scheme)?,
        ip_address_type: merge(
            "ip-address-type",
            &group.ip_address_type,
            &e.ip_address_type,
        )?,
        load_balancer_name: merge(
            "load-balancer-name",
            &group.load_balancer_name,
            &e.load_balancer_name,
        )?,
        subnets: merge("subnets", &group.subnets, &e.subnets)?,
        lb_attributes: merge(
            "load-balancer-attributes",
            &group.lb_attributes,
            &e.lb_attributes,
        )?,
        ssl_policy: merge("ssl-policy", &group.ssl_policy, &e.ssl_policy)?,
        ssl_redirect: merge("ssl-redirect", &group.ssl_redirect, &e.ssl_redirect)?,
        inbound_cidrs: merge("inbound-cidrs", &group.inbound_cidrs, &e.inbound_cidrs)?,
        security_groups: merge(
            "security-groups",
            &group.security_groups,
            &e.security_groups,
        )?,
        manage_backend_sg_rules: merge(
            "manage-backend-security-group-rules",
            &group.manage_backend_sg_rules,
            &e.manage_backend_sg_rules,
        )?,
        web_acl: merge("wafv2-acl-arn", &group.web_acl, &e.web_acl)?,
        shield: merge("shield-advanced-protection", &group.shield, &e.shield)?,
        mutual_auth: {
            let mut all = group.mutual_auth.clone();
            for (port, m) in &e.mutual_auth {
                match all.get(port) {
                    Some(theirs) if theirs != m => {
                        return Err(conflict(
                            &format!("mutual-authentication of port {port}"),
                            m,
                            theirs,
                        ));
                    }
                    _ => {
                        all.insert(*port, m.clone());
                    }
                }
            }
            all
        },
        listener_attributes: {
            let mut all = group.listener_attributes.clone();
            for (listener, attrs) in &e.listener_attributes {
                let merged = all.entry(listener.clone()).or_default();
                for (k, v) in attrs {
                    match merged.get(k) {
                        Some(theirs) if theirs != v => {
                            return Err(conflict(
                                &format!("listener-attributes.{listener} {k}"),
                                v,
                                theirs,
                            ));
                        }
                        _ => {
                            merged.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            all
        },
    };
    for (k, v) in &m.tags {
        if let Some(existing) = tags.get(k)
            && existing != v
        {
            return Err(conflict(&format!("tag {k}"), v, existing));
        }
    }
    for (proto, port) in &m.ports {
        if let Some((p, owner)) = port_protocols.get(port)
            && p != proto
        {
            return Err(conflict(&format!("listen port {port} ({owner})"), proto, p));
        }
    }
    if m.default_action.is_some()
        && let Some(owner) = default_owner
    {
        return Err(Problem::new(
            reason::CONFLICTING_SETTINGS,
            format!("the default backend is already set by {owner}"),
        ));
    }
    let mut keys = Vec::new();
    for (_, port) in &m.ports {
        for r in &m.rules {
            let key = (*port, r.conditions.clone());
            if let Some(owner) = seen_rules.get(&key) {
                return Err(Problem::new(
                    reason::DUPLICATE_RULE,
                    format!(
                        "a rule with the same host and path on port {port} is already defined by {owner}"
                    ),
                ));
            }
            if keys.contains(&key) {
                return Err(Problem::new(
                    reason::DUPLICATE_RULE,
                    format!("the Ingress defines the same host and path twice on port {port}"),
                ));
            }
            keys.push(key);
        }
    }
    // Everything agrees: commit.
    *group = next;
    tags.extend(m.tags.clone());
    for (proto, port) in &m.ports {
        port_protocols.insert(*port, (*proto, m.id.clone()));
    }
    for k in keys {
        seen_rules.insert(k, m.id.clone());
    }
    if m.default_action.is_some() {
        *default_owner = Some(m.id.clone());
    }
    Ok(())
}
