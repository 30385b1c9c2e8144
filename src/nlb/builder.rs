//! Pure: one Service (plus the subnets, certificates and security groups discovery read) →
//! the [`GroupModel`] of its NLB: one load balancer, a listener and a target group per
//! Service port, the managed security groups, and the binding that registers the targets.
//! The same model the ALB builder makes, so the same planner and applier realise it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::annotations::{self as ann, DEFAULT_SSL_POLICY};
use crate::alb::annotations::{Annotations, Problem, check_nlb_listener_attributes, reason};
use crate::alb::builder::Environment;
use crate::alb::builder::member::discover_certificates;
use crate::alb::builder::network::{
    SecurityGroupSpec, named_subnets, resolve_subnets, security_groups, shard_security_groups,
};
use crate::alb::model::*;
use crate::alb::naming;

pub const LOAD_BALANCER_KEY: &str = "LoadBalancer";

/// One listener to be: a Service port (or a TCP and a UDP port merged into TCP_UDP).
#[derive(Clone, Debug)]
struct PortPlan {
    port: i32,
    protocol: Protocol,
    /// The Service port the target group follows.
    service_port: ServicePort,
}

/// The NLB model of `svc`, or why it cannot be built.
pub fn build(svc: &Service, env: &Environment<'_>) -> Result<GroupModel, Problem> {
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let stack = format!("{ns}/{name}");
    let a = ann::of(svc);
    if let Some(p) = ann::unsupported(svc.annotations()) {
        return Err(p);
    }
    let spec = svc.spec.clone().unwrap_or_default();
    let scheme = ann::scheme(&a)?;
    let ip_address_type = ann::ip_address_type(&a)?;
    let target_type = ann::target_type(&a, env.default_target_type)?;

    let wanted_subnets = a.list("subnets");
    let subnets = match wanted_subnets.is_empty() {
        true => resolve_subnets(None, scheme, env)?,
        false => named_subnets(&wanted_subnets, env)?,
    };
    let subnet_mappings = subnet_mappings(&a, scheme, &subnets)?;

    let ports = port_plans(&a, &spec.ports.clone().unwrap_or_default())?;
    let certificates = certificates(&a, svc, env, &ports)?;
    let ssl_policy = a
        .string("ssl-negotiation-policy")
        .unwrap_or_else(|| DEFAULT_SSL_POLICY.into());
    let alpn = ann::alpn_policy(&a)?;

    // Tags: defaults, then the Service's own, then ours.
    let extra = a.map("additional-resource-tags")?;
    if let Some(k) = extra
        .keys()
        .find(|k| env.external_managed_tags.contains(*k))
    {
        return Err(a.problem(
            "additional-resource-tags",
            format!("tag {k:?} is managed outside causeway (--alb-external-managed-tags)"),
        ));
    }
    let mut base = env.default_tags.clone();
    base.extend(extra);
    base.insert(TAG_CLUSTER.into(), env.cluster.into());
    base.insert(StackKind::Service.stack_key().into(), stack.clone());
    let with_resource = |key: &str| {
        let mut t = base.clone();
        t.insert(StackKind::Service.resource_key().into(), key.into());
        t
    };

    // Security groups, unless the Service turns them off.
    let source_ranges = ann::source_ranges(svc)?;
    let custom = security_groups(&a, env)?;
    let no_sg = a.bool("disable-nlb-sg")?.unwrap_or(false);
    if no_sg && source_ranges.is_some() {
        return Err(Problem::new(
            reason::CONFLICTING_SETTINGS,
            "load balancer source ranges are enforced by the NLB's security group, which disable-nlb-sg turns off",
        ));
    }
    if no_sg && custom.is_some() {
        return Err(Problem::new(
            reason::CONFLICTING_SETTINGS,
            "security-groups and disable-nlb-sg contradict each other",
        ));
    }
    let manage_backend_rules = a.bool("manage-backend-security-group-rules")?;
    let private_link_inbound = match a.get("inbound-sg-rules-on-private-link-traffic") {
        None => None,
        Some("on") => Some(true),
        Some("off") => Some(false),
        Some(other) => {
            return Err(a.problem(
                "inbound-sg-rules-on-private-link-traffic",
                format!("{other:?} is not on or off"),
            ));
        }
    };
    if no_sg && private_link_inbound.is_some() {
        return Err(Problem::new(
            reason::CONFLICTING_SETTINGS,
            "inbound-sg-rules-on-private-link-traffic needs the NLB's security groups, which disable-nlb-sg turns off",
        ));
    }
    let sgs = (!no_sg).then(|| {
        let spec = SecurityGroupSpec {
            inbound_cidrs: source_ranges.as_deref(),
            ip_address_type,
            custom: custom.as_deref(),
            manage_backend_rules,
            ports: ports
                .iter()
                .flat_map(|p| ip_protocols(p.protocol).iter().map(|ip| (p.port, *ip)))
                .collect(),
        };
        shard_security_groups(&spec, env.cluster, &stack, "", &with_resource)
    });

    // Target groups and listeners, one per port.
    let tg_settings = TargetGroupSettings::parse(&a, svc, target_type)?;
    let mut target_groups = Vec::new();
    let mut listeners = Vec::new();
    for p in &ports {
        let mut tg = target_group(&stack, svc, p, &tg_settings, env, &with_resource)?;
        tg.binding.backend_security_group = sgs
            .as_ref()
            .and_then(|s| s.backend.clone())
            .unwrap_or_default();
        let secure = p.protocol == Protocol::Tls;
        let attributes = a.map(&format!(
            "listener-attributes.{}-{}",
            p.protocol.as_str(),
            p.port
        ))?;
        check_nlb_listener_attributes(&attributes)?;
        listeners.push(ListenerModel {
            port: p.port,
            protocol: p.protocol,
            certificates: if secure {
                certificates.clone()
            } else {
                Vec::new()
            },
            ssl_policy: secure.then(|| ssl_policy.clone()),
            alpn_policy: alpn.clone().filter(|_| secure),
            mutual_auth: None,
            attributes,
            default_action: Action::forward_to(&tg.name),
            rules: Vec::new(),
        });
        target_groups.push(tg);
    }

    let lb_name = match a.get("name") {
        Some(n) => {
            let valid = n.len() <= 32
                && !n.starts_with('-')
                && !n.ends_with('-')
                && !n.starts_with("internal-")
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                return Err(a.problem(
                    "name",
                    format!("{n:?} is not a load balancer name (at most 32 letters, digits and inner hyphens)"),
                ));
            }
            n.to_owned()
        }
        None => naming::service_load_balancer_name(env.cluster, &ns, &name, scheme.as_str()),
    };
    let (attached, managed) = match sgs {
        Some(s) => (s.attached, s.managed),
        None => (Vec::new(), Vec::new()),
    };
    Ok(GroupModel {
        stack: stack.clone(),
        kind: StackKind::Service,
        load_balancers: vec![LoadBalancerModel {
            key: LOAD_BALANCER_KEY.into(),
            name: lb_name,
            kind: LoadBalancerKind::Network,
            private_link_inbound,
            subnet_mappings,
            scheme,
            ip_address_type,
            subnets,
            security_groups: attached,
            attributes: ann::lb_attributes(&a)?,
            tags: with_resource(LOAD_BALANCER_KEY),
            listeners,
            members: vec![stack],
            addons: Addons::default(),
        }],
        target_groups,
        security_groups: managed,
        unmanaged_tag_keys: env.external_managed_tags.clone(),
    })
}

fn ip_protocols(p: Protocol) -> &'static [IpProtocol] {
    match p {
        Protocol::Udp => &[IpProtocol::Udp],
        Protocol::TcpUdp => &[IpProtocol::Tcp, IpProtocol::Udp],
        _ => &[IpProtocol::Tcp],
    }
}

/// `eip-allocations` (internet-facing) or `private-ipv4-addresses` (internal), one per
/// subnet in the order of the sorted subnets.
fn subnet_mappings(
    a: &Annotations<'_>,
    scheme: Scheme,
    subnets: &[String],
) -> Result<BTreeMap<String, SubnetMapping>, Problem> {
    let eips = a.list("eip-allocations");
    let ips = a.list("private-ipv4-addresses");
    let mut out = BTreeMap::new();
    for (key, values, wanted) in [
        ("eip-allocations", &eips, Scheme::InternetFacing),
        ("private-ipv4-addresses", &ips, Scheme::Internal),
    ] {
        if values.is_empty() {
            continue;
        }
        if scheme != wanted {
            return Err(a.problem(key, format!("applies to {} NLBs only", wanted.as_str())));
        }
        if !subnets.is_empty() && values.len() != subnets.len() {
            return Err(a.problem(
                key,
                format!(
                    "{} value(s) for {} subnet(s); give one per subnet",
                    values.len(),
                    subnets.len()
                ),
            ));
        }
        if key == "private-ipv4-addresses"
            && let Some(bad) = values
                .iter()
                .find(|v| v.parse::<std::net::Ipv4Addr>().is_err())
        {
            return Err(a.problem(key, format!("{bad:?} is not an IPv4 address")));
        }
        for (subnet, v) in subnets.iter().zip(values) {
            let m: &mut SubnetMapping = out.entry(subnet.clone()).or_default();
            match key {
                "eip-allocations" => m.allocation_id = Some(v.clone()),
                _ => m.private_ipv4 = Some(v.clone()),
            }
        }
    }
    Ok(out)
}

/// Whether the `ssl-ports` list names this Service port (by number or name, or `*`).
fn is_ssl_port(list: &[String], p: &ServicePort) -> bool {
    list.iter().any(|e| {
        e == "*" || e.parse::<i32>().ok() == Some(p.port) || p.name.as_deref() == Some(e.as_str())
    })
}

/// The listeners the Service's ports ask for.
fn port_plans(a: &Annotations<'_>, ports: &[ServicePort]) -> Result<Vec<PortPlan>, Problem> {
    if ports.is_empty() {
        return Err(Problem::new(
            reason::UNSUPPORTED_PORT,
            "the Service has no ports; an NLB needs at least one listener",
        ));
    }
    let tls_ports = match (a.list("ssl-ports"), a.get("ssl-cert").is_some()) {
        (l, _) if !l.is_empty() => l,
        // A certificate without ssl-ports makes every TCP port TLS.
        (_, true) => vec!["*".to_owned()],
        (_, false) => Vec::new(),
    };
    let tcp_udp = a.bool("enable-tcp-udp-listener")?.unwrap_or(false);
    let mut by_port: BTreeMap<i32, PortPlan> = BTreeMap::new();
    for p in ports {
        let protocol = match p.protocol.as_deref().unwrap_or("TCP") {
            "TCP" if is_ssl_port(&tls_ports, p) => Protocol::Tls,
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            other => {
                return Err(Problem::new(
                    reason::UNSUPPORTED_PORT,
                    format!(
                        "port {} uses {other}, which a network load balancer cannot serve (TCP and UDP only)",
                        p.port
                    ),
                ));
            }
        };
        match by_port.get_mut(&p.port) {
            None => {
                by_port.insert(
                    p.port,
                    PortPlan {
                        port: p.port,
                        protocol,
                        service_port: p.clone(),
                    },
                );
            }
            Some(existing) => {
                let pair = [existing.protocol, protocol];
                let merge = pair.contains(&Protocol::Tcp) && pair.contains(&Protocol::Udp);
                if merge && tcp_udp {
                    existing.protocol = Protocol::TcpUdp;
                    // The target group follows the TCP port.
                    if protocol == Protocol::Tcp {
                        existing.service_port = p.clone();
                    }
                } else if merge {
                    return Err(Problem::new(
                        reason::UNSUPPORTED_PORT,
                        format!(
                            "port {} is both TCP and UDP; set {}enable-tcp-udp-listener: \"true\" for a TCP_UDP listener",
                            p.port,
                            ann::PREFIX
                        ),
                    ));
                } else {
                    return Err(Problem::new(
                        reason::UNSUPPORTED_PORT,
                        format!("port {} is listed twice", p.port),
                    ));
                }
            }
        }
    }
    Ok(by_port.into_values().collect())
}

/// The TLS listeners' certificates: `ssl-cert` (checked against ACM when it names an ACM
/// certificate), else the issued certificates covering the Service's hostnames.
fn certificates(
    a: &Annotations<'_>,
    svc: &Service,
    env: &Environment<'_>,
    ports: &[PortPlan],
) -> Result<Vec<String>, Problem> {
    if !ports.iter().any(|p| p.protocol == Protocol::Tls) {
        return Ok(Vec::new());
    }
    let given = a.list("ssl-cert");
    if !given.is_empty() {
        if let Some(catalog) = env.certificates
            && let Some(c) = given
                .iter()
                .find(|c| c.contains(":acm:") && !catalog.iter().any(|x| &x.arn == *c))
        {
            return Err(Problem::new(
                reason::CERTIFICATE_NOT_FOUND,
                format!("certificate {c} is not an issued ACM certificate"),
            ));
        }
        return Ok(given);
    }
    let hosts: Vec<String> = crate::dns::annotations::annotation(svc.annotations(), "hostname")
        .map(|h| {
            h.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if hosts.is_empty() {
        return Err(Problem::new(
            reason::CERTIFICATE_NOT_FOUND,
            "a TLS listener needs ssl-cert, or a hostname annotation to discover a certificate by",
        ));
    }
    let Some(catalog) = env.certificates else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    discover_certificates(catalog, &hosts, &mut out)?;
    Ok(out)
}

/// The target group settings every port shares.
struct TargetGroupSettings {
    target_type: TargetType,
    /// `backend-protocol: ssl`: TLS to the targets behind a TLS listener.
    tls_backend: bool,
    health: HealthCheck,
    /// `healthcheck-port` as written, resolved per port.
    health_port: Option<String>,
    attributes: BTreeMap<String, String>,
    /// Proxy protocol v2: `Some(None)` on every target group, `Some(Some(ports))` on those.
    proxy: Option<Option<BTreeSet<i32>>>,
    node_labels: BTreeMap<String, String>,
    /// `externalTrafficPolicy: Local` in instance mode: kube-proxy's health check node port.
    local_health_node_port: Option<i32>,
}

impl TargetGroupSettings {
    fn parse(a: &Annotations<'_>, svc: &Service, target_type: TargetType) -> Result<Self, Problem> {
        let spec = svc.spec.as_ref();
        let local = spec.and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local")
            && target_type == TargetType::Instance;
        let local_port = spec
            .and_then(|s| s.health_check_node_port)
            .filter(|_| local);
        // The peer's defaults: TCP on the traffic port; kube-proxy's /healthz for Local.
        let (protocol, path, interval, timeout, healthy, unhealthy) = match local_port {
            Some(_) => (Protocol::Http, "/healthz", 10, 6, 2, 2),
            None => (Protocol::Tcp, "/", 10, 10, 3, 3),
        };
        let protocol = ann::health_protocol(a)?.unwrap_or(protocol);
        let http = protocol.is_http();
        let int = |key: &str, min, max, default| -> Result<i32, Problem> {
            Ok(a.int(key, min, max)?.unwrap_or(default))
        };
        let interval = int("healthcheck-interval", 5, 300, interval)?;
        let timeout = int("healthcheck-timeout", 2, 120, timeout)?;
        let healthy = int("healthcheck-healthy-threshold", 2, 10, healthy)?;
        let unhealthy = int("healthcheck-unhealthy-threshold", 2, 10, unhealthy)?;
        let path = a.string("healthcheck-path").unwrap_or_else(|| path.into());
        if http && (!path.starts_with('/') || path.chars().any(char::is_whitespace)) {
            return Err(a.problem("healthcheck-path", format!("{path:?} is not a path")));
        }
        let codes = a
            .string("healthcheck-success-codes")
            .unwrap_or_else(|| "200-399".into());
        let code_ok = |c: &str| {
            c.trim()
                .parse::<u16>()
                .is_ok_and(|c| (200..=599).contains(&c))
        };
        if !codes.split(',').all(|part| match part.split_once('-') {
            Some((lo, hi)) => code_ok(lo) && code_ok(hi),
            None => code_ok(part),
        }) {
            return Err(a.problem(
                "healthcheck-success-codes",
                format!("{codes:?} is not a list of HTTP codes or ranges"),
            ));
        }
        let mut attributes = a.map("target-group-attributes")?;
        crate::alb::annotations::check_nlb_tg_attributes(&attributes)?;
        let proxy = match (
            a.get("proxy-protocol"),
            a.get("proxy-protocol-per-target-group"),
        ) {
            (Some("*"), _) => Some(None),
            (Some(other), _) => {
                return Err(a.problem("proxy-protocol", format!("{other:?} is not \"*\"")));
            }
            (None, Some(_)) => {
                let mut ports = BTreeSet::new();
                for p in a.list("proxy-protocol-per-target-group") {
                    ports.insert(p.parse::<i32>().map_err(|_| {
                        a.problem(
                            "proxy-protocol-per-target-group",
                            format!("{p:?} is not a port number"),
                        )
                    })?);
                }
                Some(Some(ports))
            }
            (None, None) => None,
        };
        if proxy.is_some() {
            attributes.remove("proxy_protocol_v2.enabled");
        }
        let node_labels = a.map("target-node-labels")?;
        if !node_labels.is_empty() && target_type == TargetType::Ip {
            return Err(Problem::new(
                reason::CONFLICTING_SETTINGS,
                "target-node-labels selects nodes, which only instance targets are",
            ));
        }
        let tls_backend = match a.get("backend-protocol") {
            None | Some("tcp") => false,
            Some("ssl") => true,
            Some(other) => {
                return Err(a.problem("backend-protocol", format!("{other:?} is not tcp or ssl")));
            }
        };
        Ok(TargetGroupSettings {
            target_type,
            tls_backend,
            health: HealthCheck {
                path: if http { path } else { String::new() },
                port: "traffic-port".into(),
                protocol,
                interval_seconds: interval,
                timeout_seconds: timeout,
                healthy_threshold: healthy,
                unhealthy_threshold: unhealthy,
                success_codes: if http { codes } else { String::new() },
                grpc: false,
            },
            health_port: a.string("healthcheck-port"),
            attributes,
            proxy,
            node_labels,
            local_health_node_port: local_port,
        })
    }
}

/// The target group of one listener.
fn target_group(
    stack: &str,
    svc: &Service,
    p: &PortPlan,
    s: &TargetGroupSettings,
    env: &Environment<'_>,
    with_resource: &impl Fn(&str) -> Tags,
) -> Result<TargetGroupModel, Problem> {
    let (ns, name) = stack.split_once('/').unwrap_or((stack, ""));
    let sp = &p.service_port;
    let target_port = match s.target_type {
        TargetType::Instance => match sp.node_port {
            Some(n) => ServicePortRef::Number(n),
            None => {
                return Err(Problem::new(
                    reason::NODE_PORT_MISSING,
                    format!(
                        "port {} has no NodePort, which instance targets are reached on (allocateLoadBalancerNodePorts is false?); use nlb-target-type: ip",
                        sp.port
                    ),
                ));
            }
        },
        TargetType::Ip => match &sp.target_port {
            Some(IntOrString::Int(n)) => ServicePortRef::Number(*n),
            Some(IntOrString::String(n)) => ServicePortRef::Name(n.clone()),
            None => ServicePortRef::Number(sp.port),
        },
    };
    let tg_port = match &target_port {
        ServicePortRef::Number(n) => *n,
        ServicePortRef::Name(_) => sp.port,
    };
    let protocol = match p.protocol {
        Protocol::Tls if s.tls_backend => Protocol::Tls,
        Protocol::Tls => Protocol::Tcp,
        other => other,
    };
    let mut health = s.health.clone();
    let mut health_check_port = None;
    match (&s.health_port, s.local_health_node_port) {
        (Some(hp), _) if hp != "traffic-port" => {
            let port = match hp.parse::<i32>() {
                Ok(n) if (1..=65535).contains(&n) => n,
                _ => resolve_named_port(svc, hp, s.target_type).ok_or_else(|| {
                    Problem::new(
                        reason::INVALID_ANNOTATION,
                        format!(
                            "annotation {}healthcheck-port: {hp:?} is not traffic-port, a port number or a port of the Service",
                            ann::PREFIX
                        ),
                    )
                })?,
            };
            health.port = port.to_string();
            health_check_port = Some(port);
        }
        (None, Some(n)) => {
            health.port = n.to_string();
            health_check_port = Some(n);
        }
        _ => {}
    }
    let mut attributes = s.attributes.clone();
    if let Some(which) = &s.proxy {
        let on = which.as_ref().is_none_or(|ports| ports.contains(&p.port));
        attributes.insert("proxy_protocol_v2.enabled".into(), on.to_string());
    }
    let key = format!("{stack}:{}", p.port);
    let tg_name = naming::service_target_group_name(
        env.cluster,
        ns,
        name,
        p.port,
        &[
            protocol.as_str(),
            s.target_type.as_str(),
            &tg_port.to_string(),
        ],
    );
    Ok(TargetGroupModel {
        tags: with_resource(&key),
        key,
        name: tg_name,
        protocol,
        protocol_version: String::new(),
        port: tg_port,
        target_type: s.target_type,
        health_check: health,
        attributes,
        binding: BindingModel {
            namespace: ns.to_owned(),
            service: name.to_owned(),
            service_port: ServicePortRef::Number(sp.port),
            target_port,
            backend_security_group: String::new(),
            health_check_port,
            node_labels: s.node_labels.clone(),
        },
    })
}

/// A named Service port as the health check reaches it: its NodePort for instance targets,
/// its numeric target port for ip targets.
fn resolve_named_port(svc: &Service, name: &str, target_type: TargetType) -> Option<i32> {
    let p = svc
        .spec
        .as_ref()?
        .ports
        .as_ref()?
        .iter()
        .find(|p| p.name.as_deref() == Some(name))?;
    match target_type {
        TargetType::Instance => p.node_port,
        TargetType::Ip => match &p.target_port {
            Some(IntOrString::Int(n)) => Some(*n),
            None => Some(p.port),
            Some(IntOrString::String(_)) => None,
        },
    }
}

#[cfg(test)]
mod tests;
