//! Pure: the members of one IngressGroup (plus Services, subnets and certificates already
//! read) → the group's [`GroupModel`], and for each member whether it is in or out and why.
//!
//! A member with bad input, or whose exclusive settings disagree with the members ordered
//! before it, is left out with a [`Problem`]; the others keep their rules.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::annotations::{
    ActionSpec, Annotations, ForwardTarget, Problem, check_lb_attributes, parse_action,
    parse_conditions, reason, target_group_settings,
};
use super::class::Membership;
use super::model::*;
use super::naming;
use crate::crd::ingress_class_params::{IpAddressType as CrdIpType, LoadBalancerScheme};
use crate::crd::target_group_binding::TargetType as CrdTargetType;

pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";
pub const ROLE_ELB: &str = "kubernetes.io/role/elb";
pub const ROLE_INTERNAL_ELB: &str = "kubernetes.io/role/internal-elb";

/// A subnet of the VPC, as discovery read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetInfo {
    pub id: String,
    pub az: String,
    pub tags: BTreeMap<String, String>,
}

/// An issued ACM certificate and the names it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub arn: String,
    pub domains: Vec<String>,
}

/// What the builder needs besides the members.
pub struct Environment<'a> {
    pub cluster: &'a str,
    pub default_tags: &'a Tags,
    /// Tag keys managed outside causeway: never removed from our resources, and an Ingress
    /// that sets one is rejected.
    pub external_managed_tags: &'a BTreeSet<String>,
    pub default_target_type: TargetType,
    /// Services by (namespace, name).
    pub services: &'a BTreeMap<(String, String), Service>,
    /// `None` when not read (a plan without AWS access): subnets stay empty.
    pub subnets: Option<&'a [SubnetInfo]>,
    /// `None` when not read: certificates are not discovered or checked.
    pub certificates: Option<&'a [CertInfo]>,
    /// The `security-groups` annotation entries (IDs or `Name` tags) → the IDs they match in
    /// the VPC. `None` when not read: entries are used as written.
    pub security_groups: Option<&'a BTreeMap<String, Vec<String>>>,
}

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
pub struct AcceptedSpec(std::sync::Arc<MemberSpec>);

impl AcceptedSpec {
    /// The form kept in the group status and passed back as [`Member::last_accepted`].
    pub fn json(&self) -> String {
        serde_json::to_string(&*self.0).unwrap_or_default()
    }
}

impl PartialEq for AcceptedSpec {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.json() == other.json()
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

/// Settings where members of a group must agree. `None`: the member does not care.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Exclusive {
    scheme: Option<Scheme>,
    ip_address_type: Option<IpAddressType>,
    load_balancer_name: Option<String>,
    subnets: Option<Vec<String>>,
    lb_attributes: Option<BTreeMap<String, String>>,
    ssl_policy: Option<String>,
    ssl_redirect: Option<i32>,
    inbound_cidrs: Option<Vec<String>>,
    /// Security group IDs from the `security-groups` annotation, sorted: no managed frontend
    /// security group then.
    #[serde(default)]
    security_groups: Option<Vec<String>>,
    #[serde(default)]
    manage_backend_sg_rules: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RuleSpec {
    conditions: Vec<RuleCondition>,
    action: Action,
}

/// One member, parsed: everything it contributes to the group. Serialised as the member's
/// last accepted configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct MemberSpec {
    id: String,
    exclusive: Exclusive,
    tags: Tags,
    ports: Vec<(Protocol, i32)>,
    certificates: Vec<String>,
    rules: Vec<RuleSpec>,
    default_action: Option<Action>,
    target_groups: Vec<TargetGroupModel>,
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

    let scheme = group.scheme.unwrap_or(Scheme::Internal);
    let subnets = match resolve_subnets(&group, scheme, env) {
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
    let mut shards: Vec<Vec<(usize, std::sync::Arc<MemberSpec>)>> = Vec::new();
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
        let spec = std::sync::Arc::new(spec);
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
        let frontend_key = format!("ManagedLBSecurityGroup{suffix}");
        let backend_key = format!("BackendSecurityGroup{suffix}");

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
        let default_action = members
            .iter()
            .find_map(|(_, m)| m.default_action.clone())
            .unwrap_or_else(Action::not_found);
        let mut listeners = Vec::new();
        for (&port, &protocol) in &ports {
            let redirect = protocol == Protocol::Http && group.ssl_redirect.is_some();
            let mut rules = Vec::new();
            if !redirect {
                for (_, m) in members {
                    if !m.ports.iter().any(|(_, p)| *p == port) {
                        continue;
                    }
                    for r in &m.rules {
                        rules.push(RuleModel {
                            priority: rules.len() as i32 + 1,
                            conditions: r.conditions.clone(),
                            action: r.action.clone(),
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
                    default_action.clone()
                },
                rules,
            });
        }

        let cidrs = group.inbound_cidrs.clone().unwrap_or_else(|| {
            let mut v = vec!["0.0.0.0/0".to_string()];
            if group
                .ip_address_type
                .is_some_and(|t| t != IpAddressType::Ipv4)
            {
                v.push("::/0".into());
            }
            v
        });
        // With the security-groups annotation, those replace the managed frontend group, and
        // the backend group (and the rules it gets on the targets) is kept only when
        // manage-backend-security-group-rules asks for it (as the peer does).
        let custom = group.security_groups.clone();
        let manage_backend = custom.is_none() || group.manage_backend_sg_rules == Some(true);
        let mut lb_security_groups = Vec::new();
        match &custom {
            Some(ids) => lb_security_groups.extend(ids.iter().cloned()),
            None => lb_security_groups.push(frontend_key.clone()),
        }
        if manage_backend {
            lb_security_groups.push(backend_key.clone());
        }
        if custom.is_none() {
            model.security_groups.push(SecurityGroupModel {
                name: naming::security_group_name(env.cluster, stack, &frontend_key),
                description: format!("[k8s] managed security group for load balancer {stack}"),
                ingress: ports
                    .keys()
                    .flat_map(|p| {
                        cidrs.iter().map(move |c| SgRule {
                            port: *p,
                            cidr: c.clone(),
                        })
                    })
                    .collect(),
                tags: with_resource(&frontend_key),
                key: frontend_key.clone(),
            });
        }
        if manage_backend {
            model.security_groups.push(SecurityGroupModel {
                name: naming::security_group_name(env.cluster, stack, &backend_key),
                description: format!("[k8s] backend security group for load balancer {stack}"),
                ingress: BTreeSet::new(),
                tags: with_resource(&backend_key),
                key: backend_key.clone(),
            });
        }
        for (_, m) in members {
            for tg in &m.target_groups {
                let mut tg = tg.clone();
                tg.binding.backend_security_group = if manage_backend {
                    backend_key.clone()
                } else {
                    String::new()
                };
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
            scheme,
            ip_address_type: group.ip_address_type.unwrap_or(IpAddressType::Ipv4),
            subnets: subnets.clone(),
            security_groups: lb_security_groups,
            attributes: group.lb_attributes.clone().unwrap_or_default(),
            tags: with_resource(&lb_key),
            listeners,
            members: members.iter().map(|(_, m)| m.id.clone()).collect(),
        });
    }
    model.target_groups.sort_by(|a, b| a.name.cmp(&b.name));
    BuildOutput {
        model,
        members: outcomes,
        notes,
    }
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

fn resolve_subnets(
    group: &Exclusive,
    scheme: Scheme,
    env: &Environment<'_>,
) -> Result<Vec<String>, Problem> {
    if let Some(wanted) = &group.subnets {
        let mut ids = Vec::new();
        for w in wanted {
            if w.starts_with("subnet-") {
                ids.push(w.clone());
                continue;
            }
            let Some(catalog) = env.subnets else {
                ids.push(w.clone());
                continue;
            };
            let found = catalog
                .iter()
                .find(|s| s.tags.get("Name") == Some(w))
                .ok_or_else(|| {
                    Problem::new(
                        reason::NO_SUBNETS,
                        format!("no subnet named {w:?} in the VPC"),
                    )
                })?;
            ids.push(found.id.clone());
        }
        ids.sort();
        ids.dedup();
        return Ok(ids);
    }
    let Some(catalog) = env.subnets else {
        return Ok(Vec::new());
    };
    let role = match scheme {
        Scheme::InternetFacing => ROLE_ELB,
        Scheme::Internal => ROLE_INTERNAL_ELB,
    };
    let cluster_tag = format!("kubernetes.io/cluster/{}", env.cluster);
    let mut by_az: BTreeMap<&str, &SubnetInfo> = BTreeMap::new();
    for s in catalog {
        if !s.tags.get(role).is_some_and(|v| v.is_empty() || v == "1") {
            continue;
        }
        if let Some(v) = s.tags.get(&cluster_tag)
            && v != "owned"
            && v != "shared"
        {
            continue;
        }
        // Another cluster's subnet is not ours to use.
        let foreign = s
            .tags
            .keys()
            .any(|k| k.starts_with("kubernetes.io/cluster/") && *k != cluster_tag);
        if foreign && !s.tags.contains_key(&cluster_tag) {
            continue;
        }
        let better = |old: &SubnetInfo| {
            let tagged = |x: &SubnetInfo| x.tags.contains_key(&cluster_tag);
            (tagged(s), std::cmp::Reverse(&s.id)) > (tagged(old), std::cmp::Reverse(&old.id))
        };
        match by_az.get(s.az.as_str()) {
            Some(old) if !better(old) => {}
            _ => {
                by_az.insert(&s.az, s);
            }
        }
    }
    if by_az.len() < 2 {
        return Err(Problem::new(
            reason::NO_SUBNETS,
            format!(
                "an ALB needs subnets in at least 2 availability zones; subnets tagged {role} were found in {}",
                by_az.len()
            ),
        ));
    }
    let mut ids: Vec<String> = by_az.values().map(|s| s.id.clone()).collect();
    ids.sort();
    Ok(ids)
}

/// The `security-groups` annotation, resolved to IDs.
fn security_groups(
    a: &Annotations<'_>,
    env: &Environment<'_>,
) -> Result<Option<Vec<String>>, Problem> {
    let entries = a.list("security-groups");
    if entries.is_empty() {
        return Ok(None);
    }
    let mut ids = Vec::new();
    for e in &entries {
        let Some(found) = env.security_groups else {
            ids.push(e.clone());
            continue;
        };
        match found.get(e).map(Vec::as_slice) {
            Some([id]) => ids.push(id.clone()),
            None | Some([]) => {
                return Err(Problem::new(
                    reason::SECURITY_GROUP_NOT_FOUND,
                    format!(
                        "security group {e:?} (security-groups annotation) is not in the cluster's VPC"
                    ),
                ));
            }
            Some(many) => {
                return Err(Problem::new(
                    reason::SECURITY_GROUP_NOT_FOUND,
                    format!(
                        "{e:?} (security-groups annotation) names {} security groups; use IDs",
                        many.len()
                    ),
                ));
            }
        }
    }
    ids.sort();
    ids.dedup();
    Ok(Some(ids))
}

fn parse_member(stack: &str, m: &Member<'_>, env: &Environment<'_>) -> Result<MemberSpec, Problem> {
    let ing = m.ingress;
    let ns = ing.namespace().unwrap_or_default();
    let id = format!("{ns}/{}", ing.name_any());
    let anns = ing.annotations();
    if let Some(p) = super::annotations::unsupported(anns) {
        return Err(p);
    }
    let a = Annotations(anns);
    let params = m.membership.params.as_ref().map(|p| &p.spec);

    let mut lb_attributes = a.map("load-balancer-attributes")?;
    let mut tags = a.map("tags")?;
    let mut exclusive = Exclusive {
        scheme: a.scheme()?,
        ip_address_type: a.ip_address_type()?,
        load_balancer_name: a.string("load-balancer-name"),
        subnets: Some(a.list("subnets")).filter(|v| !v.is_empty()),
        lb_attributes: None,
        ssl_policy: a.string("ssl-policy"),
        ssl_redirect: a.int("ssl-redirect", 1, 65535)?,
        inbound_cidrs: Some(a.list("inbound-cidrs")).filter(|v| !v.is_empty()),
        security_groups: security_groups(&a, env)?,
        manage_backend_sg_rules: a.bool("manage-backend-security-group-rules")?,
    };
    let mut certificates = a.list("certificate-arn");
    let mut default_target_type = env.default_target_type;
    if let Some(p) = params {
        let fields = [
            (!p.listeners.is_empty(), "listeners"),
            (
                p.minimum_load_balancer_capacity.is_some(),
                "minimumLoadBalancerCapacity",
            ),
            (p.ipam_configuration.is_some(), "ipamConfiguration"),
            (
                !p.prefix_lists_ids.is_empty() || !p.prefix_lists_ids_legacy.is_empty(),
                "PrefixListsIDs",
            ),
            (
                p.authentication_configuration.is_some(),
                "authenticationConfiguration",
            ),
            (
                p.wafv2_acl_arn.is_some() || p.wafv2_acl_name.is_some(),
                "wafv2AclArn/wafv2AclName",
            ),
        ];
        if let Some((_, field)) = fields.iter().find(|(set, _)| *set) {
            let name = m
                .membership
                .params
                .as_ref()
                .map(|x| x.name_any())
                .unwrap_or_default();
            return Err(Problem::new(
                reason::UNSUPPORTED_ANNOTATION,
                format!(
                    "IngressClassParams {name} sets spec.{field}, which causeway does not implement; the Ingress is not served without it"
                ),
            ));
        }
        if let Some(port) = &p.ssl_redirect_port {
            exclusive.ssl_redirect = Some(
                port.parse()
                    .ok()
                    .filter(|n| (1..=65535).contains(n))
                    .ok_or_else(|| {
                        Problem::new(
                            reason::INVALID_ANNOTATION,
                            format!("IngressClassParams sslRedirectPort {port:?} is not a port"),
                        )
                    })?,
            );
        }
        if let Some(s) = p.scheme {
            exclusive.scheme = Some(match s {
                LoadBalancerScheme::Internal => Scheme::Internal,
                LoadBalancerScheme::InternetFacing => Scheme::InternetFacing,
            });
        }
        if let Some(t) = p.ip_address_type {
            exclusive.ip_address_type = Some(match t {
                CrdIpType::Ipv4 => IpAddressType::Ipv4,
                CrdIpType::Dualstack => IpAddressType::Dualstack,
                CrdIpType::DualstackWithoutPublicIpv4 => IpAddressType::DualstackWithoutPublicIpv4,
            });
        }
        if let Some(n) = &p.load_balancer_name {
            exclusive.load_balancer_name = Some(n.clone());
        }
        if let Some(s) = &p.subnets {
            if !s.ids.is_empty() {
                exclusive.subnets = Some(s.ids.clone());
            } else if let Some(catalog) = env.subnets {
                let ids: Vec<String> = catalog
                    .iter()
                    .filter(|sn| {
                        s.tags
                            .iter()
                            .all(|(k, vs)| sn.tags.get(k).is_some_and(|v| vs.contains(v)))
                    })
                    .map(|sn| sn.id.clone())
                    .collect();
                exclusive.subnets = Some(ids);
            }
        }
        if !p.inbound_cidrs.is_empty() {
            exclusive.inbound_cidrs = Some(p.inbound_cidrs.clone());
        }
        if let Some(s) = &p.ssl_policy {
            exclusive.ssl_policy = Some(s.clone());
        }
        if !p.certificate_arn.is_empty() {
            certificates = p.certificate_arn.clone();
        }
        for t in &p.tags {
            tags.insert(t.key.clone(), t.value.clone());
        }
    }
    if let Some(k) = tags.keys().find(|k| env.external_managed_tags.contains(*k)) {
        return Err(Problem::new(
            reason::INVALID_ANNOTATION,
            format!(
                "tag {k} is managed outside causeway (--alb-external-managed-tags) and cannot be set here"
            ),
        ));
    }
    if let Some(p) = params {
        for at in &p.load_balancer_attributes {
            lb_attributes.insert(at.key.clone(), at.value.clone());
        }
        if let Some(t) = p.target_type {
            default_target_type = match t {
                CrdTargetType::Instance => TargetType::Instance,
                CrdTargetType::Ip => TargetType::Ip,
            };
        }
    }
    check_lb_attributes(&lb_attributes)?;
    if !lb_attributes.is_empty() {
        exclusive.lb_attributes = Some(lb_attributes);
    }
    if let Some(n) = &exclusive.load_balancer_name
        && (n.len() > 32
            || n.is_empty()
            || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || n.starts_with('-')
            || n.ends_with('-')
            || n.starts_with("internal-"))
    {
        return Err(Problem::new(
            reason::INVALID_ANNOTATION,
            format!(
                "load-balancer-name {n:?} must be 1-32 alphanumerics or '-', not starting with '-' or 'internal-'"
            ),
        ));
    }
    if let Some(cidrs) = &exclusive.inbound_cidrs {
        for c in cidrs {
            if !valid_cidr(c) {
                return Err(Problem::new(
                    reason::INVALID_ANNOTATION,
                    format!("inbound-cidrs: {c:?} is not a CIDR"),
                ));
            }
        }
    }

    let spec = ing.spec.clone().unwrap_or_default();
    let tls_hosts: Vec<String> = spec
        .tls
        .iter()
        .flatten()
        .flat_map(|t| t.hosts.clone().unwrap_or_default())
        .collect();
    let ports = match a.listen_ports()? {
        Some(p) => p,
        None if !tls_hosts.is_empty() || !certificates.is_empty() => vec![(Protocol::Https, 443)],
        None => vec![(Protocol::Http, 80)],
    };

    let mut tgs: BTreeMap<String, TargetGroupModel> = BTreeMap::new();
    let mut rules = Vec::new();
    let mut rule_hosts = Vec::new();
    for rule in spec.rules.iter().flatten() {
        let host = rule.host.clone().filter(|h| !h.is_empty());
        if let Some(h) = &host {
            rule_hosts.push(h.clone());
        }
        for path in rule.http.iter().flat_map(|h| h.paths.iter()) {
            let mut conditions = Vec::new();
            if let Some(h) = &host {
                conditions.push(RuleCondition::HostHeader([h.clone()].into()));
            }
            let p = path.path.clone().unwrap_or_default();
            let patterns: BTreeSet<String> = match path.path_type.as_str() {
                "Exact" => [if p.is_empty() { "/".into() } else { p.clone() }].into(),
                "Prefix" => {
                    let trimmed = p.trim_end_matches('/');
                    if trimmed.is_empty() {
                        ["/*".to_string()].into()
                    } else {
                        [trimmed.to_string(), format!("{trimmed}/*")].into()
                    }
                }
                "ImplementationSpecific" => {
                    if p.is_empty() {
                        BTreeSet::new()
                    } else {
                        [p.clone()].into()
                    }
                }
                other => {
                    return Err(Problem::new(
                        reason::INVALID_ANNOTATION,
                        format!("unknown pathType {other:?}"),
                    ));
                }
            };
            if !patterns.is_empty() {
                conditions.push(RuleCondition::PathPattern(patterns));
            }
            let action = backend_action(
                stack,
                &id,
                &ns,
                ing,
                &path.backend,
                env,
                default_target_type,
                &mut tgs,
            )?;
            if let Some(svc) = path.backend.service.as_ref()
                && let Some(raw) = a.get(&format!("conditions.{}", svc.name))
            {
                conditions.extend(parse_conditions(&svc.name, raw)?);
            }
            if conditions.is_empty() {
                conditions.push(RuleCondition::PathPattern(["/*".to_string()].into()));
            }
            conditions.sort();
            rules.push(RuleSpec { conditions, action });
        }
    }
    let default_action = match &spec.default_backend {
        Some(b) => Some(backend_action(
            stack,
            &id,
            &ns,
            ing,
            b,
            env,
            default_target_type,
            &mut tgs,
        )?),
        None => None,
    };

    if ports.iter().any(|(p, _)| *p == Protocol::Https) {
        match env.certificates {
            Some(catalog) if certificates.is_empty() => {
                let hosts = if tls_hosts.is_empty() {
                    &rule_hosts
                } else {
                    &tls_hosts
                };
                if hosts.is_empty() {
                    return Err(Problem::new(
                        reason::CERTIFICATE_NOT_FOUND,
                        "an HTTPS listener needs certificate-arn, or hosts to discover certificates by",
                    ));
                }
                for h in hosts {
                    let arn = catalog
                        .iter()
                        .find(|c| c.domains.iter().any(|d| domain_matches(d, h)))
                        .map(|c| c.arn.clone())
                        .ok_or_else(|| {
                            Problem::new(
                                reason::CERTIFICATE_NOT_FOUND,
                                format!("no issued ACM certificate covers {h:?}"),
                            )
                        })?;
                    if !certificates.contains(&arn) {
                        certificates.push(arn);
                    }
                }
            }
            Some(catalog) => {
                for c in &certificates {
                    if c.contains(":acm:") && !catalog.iter().any(|x| &x.arn == c) {
                        return Err(Problem::new(
                            reason::CERTIFICATE_NOT_FOUND,
                            format!("certificate {c} is not an issued ACM certificate"),
                        ));
                    }
                }
            }
            None => {}
        }
    }

    Ok(MemberSpec {
        id,
        exclusive,
        tags,
        ports,
        certificates,
        rules,
        default_action,
        target_groups: tgs.into_values().collect(),
    })
}

fn domain_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(label, h)| !label.is_empty() && h == rest),
        None => pattern == host,
    }
}

fn valid_cidr(c: &str) -> bool {
    let Some((ip, len)) = c.split_once('/') else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => len.parse::<u8>().is_ok_and(|l| l <= 32),
        Ok(std::net::IpAddr::V6(_)) => len.parse::<u8>().is_ok_and(|l| l <= 128),
        Err(_) => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn backend_action(
    stack: &str,
    id: &str,
    ns: &str,
    ing: &Ingress,
    backend: &IngressBackend,
    env: &Environment<'_>,
    default_target_type: TargetType,
    tgs: &mut BTreeMap<String, TargetGroupModel>,
) -> Result<Action, Problem> {
    let Some(svc) = &backend.service else {
        return Err(Problem::new(
            reason::INVALID_ANNOTATION,
            format!("{id}: only Service backends are supported"),
        ));
    };
    let port = svc.port.as_ref();
    let port_name = port.and_then(|p| p.name.clone());
    if port_name.as_deref() == Some("use-annotation") {
        let a = Annotations(ing.annotations());
        let raw = a.get(&format!("actions.{}", svc.name)).ok_or_else(|| {
            Problem::new(
                reason::INVALID_ANNOTATION,
                format!(
                    "backend {:?} uses an annotation, but actions.{} is missing",
                    svc.name, svc.name
                ),
            )
        })?;
        return match parse_action(&svc.name, raw)? {
            ActionSpec::Fixed(action) => Ok(action),
            ActionSpec::Forward {
                targets,
                stickiness,
            } => {
                let mut out = Vec::new();
                for (t, w) in targets {
                    match t {
                        ForwardTarget::Arn(arn) => out.push((TargetRef::Arn(arn), w)),
                        ForwardTarget::Service { name, port } => {
                            let port = match port.parse::<i32>() {
                                Ok(n) => ServicePortRef::Number(n),
                                Err(_) => ServicePortRef::Name(port),
                            };
                            let tg = target_group(
                                stack,
                                id,
                                ns,
                                ing,
                                &name,
                                &port,
                                env,
                                default_target_type,
                            )?;
                            out.push((TargetRef::Name(tg.name.clone()), w));
                            tgs.insert(tg.key.clone(), tg);
                        }
                    }
                }
                Ok(Action::Forward {
                    targets: out,
                    stickiness,
                })
            }
        };
    }
    let port = match (port.and_then(|p| p.number), port_name) {
        (Some(n), _) => ServicePortRef::Number(n),
        (None, Some(name)) => ServicePortRef::Name(name),
        (None, None) => {
            return Err(Problem::new(
                reason::SERVICE_PORT_NOT_FOUND,
                format!("backend {:?} names no port", svc.name),
            ));
        }
    };
    // Paths to the same Service port share one target group: build it once per member.
    let key = target_group_key(ns, ing, &svc.name, &port);
    if let Some(tg) = tgs.get(&key) {
        return Ok(Action::forward_to(&tg.name));
    }
    let tg = target_group(
        stack,
        id,
        ns,
        ing,
        &svc.name,
        &port,
        env,
        default_target_type,
    )?;
    let action = Action::forward_to(&tg.name);
    tgs.insert(tg.key.clone(), tg);
    Ok(action)
}

/// The `ingress.k8s.aws/resource` tag of a target group: `namespace/ingress-service:port`.
fn target_group_key(ns: &str, ing: &Ingress, service: &str, port: &ServicePortRef) -> String {
    format!("{ns}/{}-{service}:{port}", ing.name_any())
}

#[allow(clippy::too_many_arguments)]
fn target_group(
    stack: &str,
    id: &str,
    ns: &str,
    ing: &Ingress,
    service: &str,
    port: &ServicePortRef,
    env: &Environment<'_>,
    default_target_type: TargetType,
) -> Result<TargetGroupModel, Problem> {
    let svc = env
        .services
        .get(&(ns.to_owned(), service.to_owned()))
        .ok_or_else(|| {
            Problem::new(
                reason::SERVICE_NOT_FOUND,
                format!("{id}: Service {ns}/{service} does not exist"),
            )
        })?;
    let sp = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ports| {
            ports.iter().find(|p| match port {
                ServicePortRef::Number(n) => p.port == *n,
                ServicePortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
            })
        })
        .ok_or_else(|| {
            Problem::new(
                reason::SERVICE_PORT_NOT_FOUND,
                format!("{id}: Service {ns}/{service} has no port {port}"),
            )
        })?;
    let empty = BTreeMap::new();
    let svc_anns = svc.metadata.annotations.as_ref().unwrap_or(&empty);
    let settings = target_group_settings(
        &Annotations(svc_anns),
        &Annotations(ing.annotations()),
        default_target_type,
    )?;
    let (tg_port, target_port) = match settings.target_type {
        TargetType::Instance => {
            let node_port = sp.node_port.ok_or_else(|| {
                Problem::new(
                    reason::SERVICE_PORT_NOT_FOUND,
                    format!("{id}: target-type instance needs a NodePort, and Service {ns}/{service} port {port} has none"),
                )
            })?;
            (node_port, ServicePortRef::Number(node_port))
        }
        TargetType::Ip => match &sp.target_port {
            Some(IntOrString::Int(n)) => (*n, ServicePortRef::Number(*n)),
            Some(IntOrString::String(name)) => (sp.port, ServicePortRef::Name(name.clone())),
            None => (sp.port, ServicePortRef::Number(sp.port)),
        },
    };
    let key = target_group_key(ns, ing, service, port);
    let name = naming::target_group_name(
        env.cluster,
        stack,
        &key,
        &[
            settings.protocol.as_str(),
            &tg_port.to_string(),
            settings.target_type.as_str(),
            &settings.protocol_version,
        ],
    );
    Ok(TargetGroupModel {
        key,
        name,
        protocol: settings.protocol,
        protocol_version: settings.protocol_version,
        port: tg_port,
        target_type: settings.target_type,
        health_check: HealthCheck {
            path: settings.health_path,
            port: settings.health_port,
            protocol: settings.health_protocol,
            interval_seconds: settings.interval,
            timeout_seconds: settings.timeout,
            healthy_threshold: settings.healthy,
            unhealthy_threshold: settings.unhealthy,
            success_codes: settings.success_codes,
        },
        attributes: settings.attributes,
        tags: Tags::new(),
        binding: BindingModel {
            namespace: ns.to_owned(),
            service: service.to_owned(),
            service_port: port.clone(),
            target_port,
            backend_security_group: String::new(),
        },
    })
}

#[cfg(test)]
mod tests;

/// Fixtures shared by the builder, planner and benchmark tests.
#[doc(hidden)]
pub mod tests_support {
    use super::*;
    use crate::alb::class::{GroupKey, Membership};
    use serde_json::json;

    pub fn service(
        ns: &str,
        name: &str,
        port: i32,
        node_port: Option<i32>,
        anns: serde_json::Value,
    ) -> Service {
        let mut p = json!({"name":"http","port":port,"targetPort":8080});
        if let Some(n) = node_port {
            p["nodePort"] = json!(n);
        }
        serde_json::from_value(json!({"metadata":{"name":name,"namespace":ns,"annotations":anns},"spec":{"ports":[p]}}))
            .expect("valid Service")
    }

    pub fn ingress(
        ns: &str,
        name: &str,
        anns: serde_json::Value,
        rules: serde_json::Value,
    ) -> Ingress {
        serde_json::from_value(json!({"metadata":{"name":name,"namespace":ns,"annotations":anns},"spec":{"rules":rules}}))
            .expect("valid Ingress")
    }

    pub fn path_rule(
        host: Option<&str>,
        path: &str,
        path_type: &str,
        svc: &str,
        port: i32,
    ) -> serde_json::Value {
        let mut r = json!({"http":{"paths":[{"path":path,"pathType":path_type,"backend":{"service":{"name":svc,"port":{"number":port}}}}]}});
        if let Some(h) = host {
            r["host"] = json!(h);
        }
        r
    }

    pub fn subnets() -> Vec<SubnetInfo> {
        let mk = |id: &str, az: &str, role: &str| SubnetInfo {
            id: id.into(),
            az: az.into(),
            tags: [
                (role.to_string(), "1".to_string()),
                ("kubernetes.io/cluster/c1".to_string(), "shared".to_string()),
            ]
            .into(),
        };
        vec![
            mk("subnet-pub-a", "us-east-1a", ROLE_ELB),
            mk("subnet-pub-b", "us-east-1b", ROLE_ELB),
            mk("subnet-priv-a", "us-east-1a", ROLE_INTERNAL_ELB),
            mk("subnet-priv-b", "us-east-1b", ROLE_INTERNAL_ELB),
        ]
    }

    pub fn certs() -> Vec<CertInfo> {
        vec![CertInfo {
            arn: "arn:aws:acm:us-east-1:123456789012:certificate/abc".into(),
            domains: vec!["causeway.test".into(), "*.causeway.test".into()],
        }]
    }

    pub fn services() -> BTreeMap<(String, String), Service> {
        let mut m = BTreeMap::new();
        m.insert(
            ("ns".into(), "web".into()),
            service("ns", "web", 80, Some(30080), json!({})),
        );
        m.insert(
            ("ns".into(), "api".into()),
            service("ns", "api", 80, Some(30081), json!({})),
        );
        m
    }

    /// Builds a group from Ingresses (group name from the annotation, order 0), cluster `c1`.
    pub fn build_group(stack: &str, ings: &[Ingress]) -> GroupModel {
        let members: Vec<Member<'_>> = ings
            .iter()
            .map(|i| Member {
                ingress: i,
                membership: Membership {
                    group: GroupKey::from_stack(stack),
                    order: 0,
                    params: None,
                    problem: None,
                },
                last_accepted: None,
            })
            .collect();
        let tags = Tags::new();
        let unmanaged = BTreeSet::new();
        let sn = subnets();
        let cs = certs();
        let svcs = services();
        build(
            stack,
            &members,
            &Environment {
                cluster: "c1",
                default_tags: &tags,
                external_managed_tags: &unmanaged,
                default_target_type: TargetType::Instance,
                services: &svcs,
                subnets: Some(&sn),
                certificates: Some(&cs),
                security_groups: None,
            },
        )
        .model
    }
}
