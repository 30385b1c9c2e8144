//! One member Ingress, parsed on its own: its exclusive settings, tags, listen ports,
//! certificates, rules and target groups ([`MemberSpec`]), or the [`Problem`] that keeps it
//! out of the group.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use super::network::security_groups;
use super::target_group::{TargetTypes, target_group, target_group_key};
use super::{Environment, Member};
use crate::alb::annotations::{
    ActionSpec, Annotations, ForwardTarget, Problem, before_action, check_lb_attributes,
    parse_action, parse_conditions, parse_transforms, reason,
};
use crate::alb::model::*;
use crate::crd::ingress_class_params::{
    IpAddressType as CrdIpType, ListenerProtocol as CrdListenerProtocol, LoadBalancerScheme,
};
use crate::crd::target_group_binding::TargetType as CrdTargetType;

/// Settings where members of a group must agree. `None`: the member does not care.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Exclusive {
    pub(super) scheme: Option<Scheme>,
    pub(super) ip_address_type: Option<IpAddressType>,
    pub(super) load_balancer_name: Option<String>,
    pub(super) subnets: Option<Vec<String>>,
    pub(super) lb_attributes: Option<BTreeMap<String, String>>,
    pub(super) ssl_policy: Option<String>,
    pub(super) ssl_redirect: Option<i32>,
    pub(super) inbound_cidrs: Option<Vec<String>>,
    /// Security group IDs from the `security-groups` annotation, sorted: no managed frontend
    /// security group then.
    #[serde(default)]
    pub(super) security_groups: Option<Vec<String>>,
    #[serde(default)]
    pub(super) manage_backend_sg_rules: Option<bool>,
    /// `listener-attributes.<PROTOCOL>-<port>`, by `PROTOCOL-port`: merged key by key across
    /// the group, as the peer merges them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) listener_attributes: BTreeMap<String, BTreeMap<String, String>>,
    /// `Some(None)`: no web ACL (`none`).
    #[serde(default)]
    pub(super) web_acl: Option<Option<String>>,
    #[serde(default)]
    pub(super) shield: Option<bool>,
    /// `mutual-authentication`, by listener port: one value per port across the group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) mutual_auth: BTreeMap<i32, MutualAuth>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct RuleSpec {
    pub(super) conditions: Vec<RuleCondition>,
    pub(super) action: Action,
    /// What runs before `action` on HTTPS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) auth: Option<Authenticate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) transforms: Vec<Transform>,
}

/// One member, parsed: everything it contributes to the group. Serialised as the member's
/// last accepted configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct MemberSpec {
    pub(super) id: String,
    pub(super) exclusive: Exclusive,
    pub(super) tags: Tags,
    pub(super) ports: Vec<(Protocol, i32)>,
    pub(super) certificates: Vec<String>,
    pub(super) rules: Vec<RuleSpec>,
    pub(super) default_action: Option<Action>,
    /// What runs before `default_action` on HTTPS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) default_auth: Option<Authenticate>,
    pub(super) target_groups: Vec<TargetGroupModel>,
}

pub(super) fn parse_member(
    stack: &str,
    m: &Member<'_>,
    env: &Environment<'_>,
) -> Result<MemberSpec, Problem> {
    let ing = m.ingress;
    let ns = ing.namespace().unwrap_or_default();
    let id = format!("{ns}/{}", ing.name_any());
    let anns = ing.annotations();
    if let Some(p) = crate::alb::annotations::unsupported(anns) {
        return Err(p);
    }
    let a = Annotations::alb(anns);
    let params = m.membership.params.as_ref().map(|p| &p.spec);

    let mut lb_attributes = a.map("load-balancer-attributes")?;
    let mut tags = a.map("tags")?;
    // What ELBv2 and EC2 would refuse for the whole group is refused for this Ingress.
    if let Some((k, v)) = tags.iter().find(|(k, v)| {
        k.is_empty() || k.len() > 128 || v.len() > 256 || k.to_ascii_lowercase().starts_with("aws:")
    }) {
        return Err(Problem::annotation(
            "tags",
            format!(
                "tag {k:?}={v:?}: keys are 1 to 128 characters and not aws:, values at most 256"
            ),
        ));
    }
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
        listener_attributes: crate::alb::annotations::listener_attributes(anns)?,
        web_acl: crate::alb::annotations::web_acl(anns, env.web_acls)?,
        shield: a.bool("shield-advanced-protection")?,
        mutual_auth: crate::alb::annotations::mutual_authentication(anns, env.trust_stores)?,
    };
    if let Some(wanted) = &exclusive.subnets {
        super::network::named_subnets(wanted, env)?;
    }
    let mut certificates = a.list("certificate-arn");
    if let Some(c) = certificates.iter().find(|c| !c.starts_with("arn:")) {
        return Err(Problem::annotation(
            "certificate-arn",
            format!("{c:?} is not an ARN"),
        ));
    }
    let mut target_types = TargetTypes {
        default: env.default_target_type,
        class: None,
    };
    if let Some(p) = params {
        let fields = [
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
        // The class's listener attributes win over the Ingresses', key by key (the peer
        // resolves a conflict between members with the class's value).
        for l in &p.listeners {
            let (Some(protocol), Some(port)) = (l.protocol, l.port) else {
                continue;
            };
            let listener = format!(
                "{}-{port}",
                match protocol {
                    CrdListenerProtocol::Http => Protocol::Http,
                    CrdListenerProtocol::Https => Protocol::Https,
                }
                .as_str()
            );
            let attrs: BTreeMap<String, String> = l
                .listener_attributes
                .iter()
                .map(|a| (a.key.clone(), a.value.clone()))
                .collect();
            crate::alb::annotations::check_alb_listener_attributes(
                &format!("IngressClassParams listener {listener}"),
                &attrs,
            )?;
            exclusive
                .listener_attributes
                .entry(listener)
                .or_default()
                .extend(attrs);
        }
        // The class's web ACL pins the group's, whatever the Ingresses say.
        let pinned: BTreeMap<String, String> = [
            p.wafv2_acl_arn.as_ref().map(|v| ("wafv2-acl-arn", v)),
            p.wafv2_acl_name.as_ref().map(|v| ("wafv2-acl-name", v)),
        ]
        .into_iter()
        .flatten()
        .map(|(k, v)| (format!("{}{k}", crate::alb::annotations::PREFIX), v.clone()))
        .collect();
        if !pinned.is_empty() {
            exclusive.web_acl = crate::alb::annotations::web_acl(&pinned, env.web_acls)?;
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
            target_types.class = Some(match t {
                CrdTargetType::Instance => TargetType::Instance,
                CrdTargetType::Ip => TargetType::Ip,
            });
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
            if !crate::alb::annotations::valid_cidr(c) {
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
    // The annotation turns the whole group's HTTP listeners into redirects: set by an
    // Ingress that does not itself listen on that HTTPS port, it would take its neighbours'
    // rules away for nothing, so that Ingress is refused instead.
    if let Ok(Some(port)) = a.int("ssl-redirect", 1, 65535)
        && !ports.contains(&(Protocol::Https, port))
    {
        return Err(Problem::new(
            reason::INVALID_ANNOTATION,
            format!("ssl-redirect {port} is not one of this Ingress's HTTPS listen ports"),
        ));
    }

    let mut tgs: BTreeMap<String, TargetGroupModel> = BTreeMap::new();
    let mut rules = Vec::new();
    let mut rule_hosts = Vec::new();
    for rule in spec.rules.iter().flatten() {
        let host = rule.host.clone().filter(|h| !h.is_empty());
        if let Some(h) = &host {
            rule_hosts.push(h.clone());
        }
        for path in sorted_paths(rule.http.iter().flat_map(|h| h.paths.iter())) {
            let mut conditions = Vec::new();
            if let Some(h) = &host {
                conditions.push(RuleCondition::HostHeader([h.clone()].into()));
            }
            let p = path.path.clone().unwrap_or_default();
            // Wildcards are path-pattern syntax, not Exact or Prefix paths: the peer refuses
            // them there rather than guess what was meant.
            if matches!(path.path_type.as_str(), "Exact" | "Prefix") && p.contains(['*', '?']) {
                return Err(Problem::new(
                    reason::INVALID_ANNOTATION,
                    format!(
                        "{id}: path {p:?} of pathType {} must not contain wildcards (* or ?); use pathType ImplementationSpecific",
                        path.path_type
                    ),
                ));
            }
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
                target_types,
                &mut tgs,
            )?;
            if let Some(svc) = path.backend.service.as_ref()
                && let Some(raw) = a.get(&format!("conditions.{}", svc.name))
            {
                // Host and path values join the rule's own host and path condition (any of
                // them matches, as the peer builds it); the other fields are conditions of
                // their own.
                for c in parse_conditions(&svc.name, raw)? {
                    let same = conditions.iter_mut().find(|x| {
                        matches!(
                            (&c, &**x),
                            (RuleCondition::HostHeader(_), RuleCondition::HostHeader(_))
                                | (RuleCondition::PathPattern(_), RuleCondition::PathPattern(_))
                        )
                    });
                    match (same, c) {
                        (Some(RuleCondition::HostHeader(v)), RuleCondition::HostHeader(more))
                        | (Some(RuleCondition::PathPattern(v)), RuleCondition::PathPattern(more)) => {
                            v.extend(more)
                        }
                        (_, c) => conditions.push(c),
                    }
                }
            }
            let transforms = match path.backend.service.as_ref() {
                Some(svc) => match a.get(&format!("transforms.{}", svc.name)) {
                    Some(raw) => parse_transforms(&svc.name, raw)?,
                    None => Vec::new(),
                },
                None => Vec::new(),
            };
            if conditions.is_empty() {
                conditions.push(RuleCondition::PathPattern(["/*".to_string()].into()));
            }
            conditions.sort();
            let auth = backend_auth(ing, &ns, &path.backend, env)?;
            rules.push(RuleSpec {
                conditions,
                action,
                auth,
                transforms,
            });
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
            target_types,
            &mut tgs,
        )?),
        None => None,
    };
    let default_auth = match &spec.default_backend {
        Some(b) => backend_auth(ing, &ns, b, env)?,
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
                discover_certificates(catalog, hosts, &mut certificates)?;
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
        default_auth,
        target_groups: tgs.into_values().collect(),
    })
}

/// What runs before a backend's action on HTTPS listeners. When the backend forwards to one
/// Service, that Service's `auth-*` annotations override the Ingress's, as the peer merges them.
fn backend_auth(
    ing: &Ingress,
    ns: &str,
    backend: &IngressBackend,
    env: &Environment<'_>,
) -> Result<Option<Authenticate>, Problem> {
    let service = backend.service.as_ref().and_then(|svc| {
        let use_annotation =
            svc.port.as_ref().and_then(|p| p.name.as_deref()) == Some("use-annotation");
        let name = match use_annotation {
            false => svc.name.clone(),
            true => {
                let raw =
                    Annotations::alb(ing.annotations()).get(&format!("actions.{}", svc.name))?;
                match parse_action(&svc.name, raw).ok()? {
                    ActionSpec::Forward { targets, .. } => match targets.as_slice() {
                        [(ForwardTarget::Service { name, .. }, _)] => name.clone(),
                        _ => return None,
                    },
                    ActionSpec::Fixed(_) => return None,
                }
            }
        };
        env.services.get(&(ns.to_owned(), name))
    });
    before_action(
        ing.annotations(),
        service.map(|s| s.annotations()),
        ns,
        env.oidc_clients,
    )
}

/// Adds to `out` the issued certificate covering each host (once each); a host no
/// certificate covers is the object's problem.
pub(crate) fn discover_certificates<'h>(
    catalog: &[super::CertInfo],
    hosts: impl IntoIterator<Item = &'h String>,
    out: &mut Vec<String>,
) -> Result<(), Problem> {
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
        if !out.contains(&arn) {
            out.push(arn);
        }
    }
    Ok(())
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

#[allow(clippy::too_many_arguments)]
fn backend_action(
    stack: &str,
    id: &str,
    ns: &str,
    ing: &Ingress,
    backend: &IngressBackend,
    env: &Environment<'_>,
    target_types: TargetTypes,
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
        let a = Annotations::alb(ing.annotations());
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
                        ForwardTarget::Name(name) => {
                            let arn = match env.target_groups {
                                None => name,
                                Some(found) => found.get(&name).cloned().ok_or_else(|| {
                                    Problem::new(
                                        reason::TARGET_GROUP_NOT_FOUND,
                                        format!(
                                            "actions.{}: no target group is named {name:?}",
                                            svc.name
                                        ),
                                    )
                                })?,
                            };
                            out.push((TargetRef::Arn(arn), w));
                        }
                        ForwardTarget::Service { name, port } => {
                            let port = match port.parse::<i32>() {
                                Ok(n) => ServicePortRef::Number(n),
                                Err(_) => ServicePortRef::Name(port),
                            };
                            let tg =
                                target_group(stack, id, ns, ing, &name, &port, env, target_types)?;
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
    let tg = target_group(stack, id, ns, ing, &svc.name, &port, env, target_types)?;
    let action = Action::forward_to(&tg.name);
    tgs.insert(tg.key.clone(), tg);
    Ok(action)
}

/// The paths of one Ingress rule in the order the peer gives them priorities: Exact paths
/// first, then Prefix paths, longest first, then the rest, each in manifest order otherwise.
fn sorted_paths<'a>(
    paths: impl Iterator<Item = &'a k8s_openapi::api::networking::v1::HTTPIngressPath>,
) -> Vec<&'a k8s_openapi::api::networking::v1::HTTPIngressPath> {
    let mut paths: Vec<_> = paths.collect();
    paths.sort_by_key(|p| match p.path_type.as_str() {
        "Exact" => (0, 0),
        "Prefix" => (1, usize::MAX - p.path.as_deref().unwrap_or_default().len()),
        _ => (2, 0),
    });
    paths
}
