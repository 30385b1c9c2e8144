//! A Gateway and its routes as one ALB stack (pure): the [`GroupModel`] the ALB planner and
//! applier take, and what each listener and route is to report.

use std::collections::{BTreeMap, BTreeSet};

use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::attach::{self, Attachment, Listener, ParentRef};
use super::http::{self, Resolved, Unit};
use super::{GROUP, GRPC_ROUTE, HTTP_ROUTE, reason};
use crate::alb::builder::Environment;
use crate::alb::builder::member::discover_certificates;
use crate::alb::builder::network::{SecurityGroupSpec, resolve_subnets, shard_security_groups};
use crate::alb::model::*;
use crate::alb::naming;
use crate::crd::LoadBalancerConfigurationSpec;
use crate::crd::gateway_config::{TargetGroupConfiguration, target_group::TargetGroupProps};
use crate::crd::ingress_class_params::LoadBalancerScheme;

/// What the Gateway build reads besides the Gateway.
pub struct Inputs<'a> {
    pub env: &'a Environment<'a>,
    /// Every HTTPRoute and GRPCRoute; those whose parentRefs name the Gateway are used.
    pub routes: &'a [HttpRoute],
    pub grpc_routes: &'a [GrpcRoute],
    pub grants: &'a [ReferenceGrant],
    pub target_group_configs: &'a [TargetGroupConfiguration],
    pub namespace_labels: &'a dyn Fn(&str) -> Option<BTreeMap<String, String>>,
    /// The scheme when the configuration does not say.
    pub scheme: Scheme,
    /// The LoadBalancerConfiguration of the Gateway (or its class).
    pub config: Option<&'a LoadBalancerConfigurationSpec>,
}

/// The status of one (route, parentRef) on this Gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteStatus {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub parent: ParentRef,
    /// `Err((reason, message))`: not attached.
    pub accepted: Result<(), (&'static str, String)>,
    /// The first backend that did not resolve.
    pub resolved_refs: Result<(), (&'static str, String)>,
    /// Rules refused (index, reason, message).
    pub refused_rules: Vec<(usize, &'static str, String)>,
    /// How many rules the route has.
    pub rule_count: usize,
}

/// A listener's certificate problem (reason, message), by listener name.
pub type ListenerProblems = BTreeMap<String, (&'static str, String)>;

pub struct Built {
    pub model: GroupModel,
    pub listeners: Vec<Listener>,
    /// Listeners that are accepted but cannot be programmed (an HTTPS one without a
    /// certificate).
    pub listener_problems: ListenerProblems,
    pub routes: Vec<RouteStatus>,
    /// A problem of the whole Gateway (no subnets): nothing is built.
    pub problem: Option<(&'static str, String)>,
}

/// The stack id, the stack tag's value: `namespace/name`.
pub fn stack_of(gw: &Gateway) -> String {
    format!("{}/{}", gw.namespace().unwrap_or_default(), gw.name_any())
}

/// A route's parentRefs with the spec's defaults (group, kind, the route's namespace).
pub fn parent_refs(route: &HttpRoute) -> Vec<ParentRef> {
    AnyRoute::parents(route)
}

/// An HTTPRoute or a GRPCRoute, as the build reads them.
pub trait AnyRoute {
    fn kind(&self) -> &'static str;
    fn meta(&self) -> &ObjectMeta;
    fn hostnames(&self) -> Vec<String>;
    /// The parentRefs with the spec's defaults (group, kind, the route's namespace).
    fn parents(&self) -> Vec<ParentRef>;
    fn rule_count(&self) -> usize;
    fn units(
        &self,
        served: &BTreeMap<i32, BTreeSet<String>>,
        https: &BTreeSet<i32>,
        resolve: &mut http::Resolve<'_>,
    ) -> http::Outcome;
}

/// Both kinds' parentRefs have the same fields.
macro_rules! parents_of {
    ($route:expr) => {{
        let ns = $route.metadata.namespace.clone().unwrap_or_default();
        $route
            .spec
            .parent_refs
            .iter()
            .flatten()
            .map(|p| ParentRef {
                group: p.group.clone().unwrap_or_else(|| GROUP.into()),
                kind: p.kind.clone().unwrap_or_else(|| "Gateway".into()),
                namespace: p.namespace.clone().unwrap_or_else(|| ns.clone()),
                name: p.name.clone(),
                section_name: p.section_name.clone(),
                port: p.port,
            })
            .collect()
    }};
}

impl AnyRoute for HttpRoute {
    fn kind(&self) -> &'static str {
        HTTP_ROUTE
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn hostnames(&self) -> Vec<String> {
        self.spec.hostnames.clone().unwrap_or_default()
    }
    fn parents(&self) -> Vec<ParentRef> {
        parents_of!(self)
    }
    fn rule_count(&self) -> usize {
        self.spec.rules.as_ref().map_or(0, Vec::len)
    }
    fn units(
        &self,
        served: &BTreeMap<i32, BTreeSet<String>>,
        _https: &BTreeSet<i32>,
        resolve: &mut http::Resolve<'_>,
    ) -> http::Outcome {
        http::route_units(self, served, resolve)
    }
}

impl AnyRoute for GrpcRoute {
    fn kind(&self) -> &'static str {
        GRPC_ROUTE
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn hostnames(&self) -> Vec<String> {
        self.spec.hostnames.clone().unwrap_or_default()
    }
    fn parents(&self) -> Vec<ParentRef> {
        parents_of!(self)
    }
    fn rule_count(&self) -> usize {
        self.spec.rules.as_ref().map_or(0, Vec::len)
    }
    fn units(
        &self,
        served: &BTreeMap<i32, BTreeSet<String>>,
        https: &BTreeSet<i32>,
        resolve: &mut http::Resolve<'_>,
    ) -> http::Outcome {
        super::grpc::route_units(self, served, https, resolve)
    }
}

/// Builds the Gateway's stack.
pub fn build(gw: &Gateway, inputs: &Inputs<'_>) -> Built {
    let env = inputs.env;
    let stack = stack_of(gw);
    let mut listeners = attach::listeners(gw);
    let mut routes = Vec::new();
    // Target groups by key, and the units of every attached route.
    let mut target_groups: BTreeMap<String, TargetGroupModel> = BTreeMap::new();
    let mut units: Vec<Unit> = Vec::new();
    let https: BTreeSet<i32> = listeners
        .iter()
        .filter(|l| l.accepted() && l.protocol == Some(Protocol::Https))
        .map(|l| l.port)
        .collect();
    let mut attach_all = |route: &dyn AnyRoute, listeners: &mut Vec<Listener>| {
        let meta = route.meta();
        let route_ns = meta.namespace.clone().unwrap_or_default();
        let route_name = meta.name.clone().unwrap_or_default();
        let hostnames = route.hostnames();
        let mut served: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
        let first = routes.len();
        for parent in route.parents().into_iter().filter(|p| p.names(gw)) {
            let r = attach::Route {
                kind: route.kind(),
                namespace: &route_ns,
                hostnames: &hostnames,
            };
            let accepted = match attach::attach(gw, listeners, &r, &parent, inputs.namespace_labels)
            {
                Attachment::Attached(ports) => {
                    for (port, hosts) in ports {
                        served.entry(port).or_default().extend(hosts);
                    }
                    Ok(())
                }
                Attachment::Refused { reason, message } => Err((reason, message)),
            };
            routes.push(RouteStatus {
                kind: route.kind(),
                namespace: route_ns.clone(),
                name: route_name.clone(),
                generation: meta.generation,
                parent,
                accepted,
                resolved_refs: Ok(()),
                refused_rules: Vec::new(),
                rule_count: route.rule_count().max(1),
            });
        }
        if served.is_empty() {
            return;
        }
        let mut resolve = |_rule: usize, b: &http::BackendRef| -> Resolved {
            let tg = backend_target_group(&stack, route.kind(), &route_ns, &route_name, b, inputs)?;
            let name = tg.name.clone();
            target_groups.entry(tg.key.clone()).or_insert(tg);
            Ok((name, b.weight.unwrap_or(1)))
        };
        let outcome = route.units(&served, &https, &mut resolve);
        units.extend(outcome.units);
        for status in routes[first..].iter_mut().filter(|s| s.accepted.is_ok()) {
            status.refused_rules = outcome.refused.clone();
            if let Some(first) = outcome.unresolved.first() {
                status.resolved_refs = Err(first.clone());
            }
        }
    };
    let mut ordered: Vec<&dyn AnyRoute> = inputs
        .routes
        .iter()
        .map(|r| r as &dyn AnyRoute)
        .chain(inputs.grpc_routes.iter().map(|r| r as &dyn AnyRoute))
        .collect();
    ordered.sort_by_key(|r| (r.kind(), r.meta().namespace.clone(), r.meta().name.clone()));
    for route in ordered {
        attach_all(route, &mut listeners);
    }

    let config = inputs.config;
    let scheme = match config.and_then(|c| c.scheme) {
        Some(LoadBalancerScheme::Internal) => Scheme::Internal,
        Some(LoadBalancerScheme::InternetFacing) => Scheme::InternetFacing,
        None => inputs.scheme,
    };
    let mut model = GroupModel::empty(&stack);
    model.kind = StackKind::AlbGateway;
    model.unmanaged_tag_keys = env.external_managed_tags.clone();
    let subnets = match resolve_subnets(None, scheme, env) {
        Ok(s) => s,
        Err(p) => {
            return Built {
                model,
                listeners,
                listener_problems: ListenerProblems::new(),
                routes,
                problem: Some((reason::INVALID, p.message)),
            };
        }
    };
    let mut base_tags = env.default_tags.clone();
    base_tags.extend(config.and_then(|c| c.tags.clone()).unwrap_or_default());
    base_tags.insert(TAG_CLUSTER.into(), env.cluster.into());
    base_tags.insert(StackKind::AlbGateway.stack_key().into(), stack.clone());
    let with_resource = |key: &str| {
        let mut t = base_tags.clone();
        t.insert(StackKind::AlbGateway.resource_key().into(), key.into());
        t
    };
    // ALB names are hashed from the stack; a Gateway's is kept apart from an Ingress's of the
    // same `namespace/name`.
    let naming_stack = format!("gateway/{stack}");

    // One ALB listener per accepted port; its rules in precedence order.
    let mut listener_problems = ListenerProblems::new();
    let mut ports: BTreeMap<i32, (Protocol, Vec<&Listener>)> = BTreeMap::new();
    for l in listeners.iter().filter(|l| l.accepted()) {
        if let Some(p) = l.protocol {
            ports.entry(l.port).or_insert((p, Vec::new())).1.push(l);
        }
    }
    let mut models = Vec::new();
    for (port, (protocol, ls)) in &ports {
        let mut on_port: Vec<&Unit> = units.iter().filter(|u| u.port == *port).collect();
        on_port.sort_by(|a, b| a.key.cmp(&b.key));
        // The configuration's entry for this listener (`HTTPS:443`).
        let listener_config = config
            .and_then(|c| c.listener_configurations.as_ref())
            .and_then(|ls| {
                ls.iter().find(|l| {
                    l.protocol_port
                        .eq_ignore_ascii_case(&format!("{}:{port}", protocol.as_str()))
                })
            });
        let mut certificates: Vec<String> = listener_config
            .map(|l| {
                l.default_certificate
                    .iter()
                    .chain(&l.certificates)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if *protocol == Protocol::Https && certificates.is_empty() {
            let mut hosts: BTreeSet<String> =
                ls.iter().filter_map(|l| l.hostname.clone()).collect();
            hosts.extend(
                on_port
                    .iter()
                    .map(|u| u.key.hostname.clone())
                    .filter(|h| !h.is_empty()),
            );
            let problem = match env.certificates {
                None => None,
                Some(_) if hosts.is_empty() => Some(
                    "an HTTPS listener needs a hostname (its own or its routes') to discover a certificate by"
                        .to_string(),
                ),
                Some(catalog) => discover_certificates(catalog, hosts.iter(), &mut certificates)
                    .err()
                    .map(|p| p.message),
            };
            if let Some(message) = problem {
                for l in ls {
                    listener_problems.insert(
                        l.name.clone(),
                        (reason::INVALID_CERTIFICATE_REF, message.clone()),
                    );
                }
                continue;
            }
        }
        let mut rules = Vec::new();
        for (i, u) in on_port.iter().enumerate() {
            if i >= MAX_RULES_PER_ALB {
                break;
            }
            rules.push(RuleModel {
                priority: (i + 1) as i32,
                conditions: u.conditions.clone(),
                action: u.action.clone(),
                transforms: u.transforms.clone(),
                member: u.key.route.clone(),
            });
        }
        if on_port.len() > MAX_RULES_PER_ALB {
            // The lowest-precedence rules do not fit; their routes say so.
            for u in &on_port[MAX_RULES_PER_ALB..] {
                for s in routes.iter_mut().filter(|s| {
                    format!("{}/{}", s.namespace, s.name) == u.key.route
                        && !s.refused_rules.iter().any(|r| r.0 == u.key.rule)
                }) {
                    s.refused_rules.push((
                        u.key.rule,
                        reason::UNSUPPORTED_VALUE,
                        format!(
                            "rules[{}]: port {port} has more than the {MAX_RULES_PER_ALB} rules an ALB holds",
                            u.key.rule
                        ),
                    ));
                }
            }
        }
        models.push(ListenerModel {
            port: *port,
            protocol: *protocol,
            certificates,
            ssl_policy: (*protocol == Protocol::Https).then(|| {
                listener_config
                    .and_then(|l| l.ssl_policy.clone())
                    .unwrap_or_else(|| crate::alb::builder::DEFAULT_SSL_POLICY.to_string())
            }),
            alpn_policy: None,
            attributes: BTreeMap::new(),
            mutual_auth: None,
            default_action: Action::not_found(),
            rules,
        });
    }

    let sg_spec = SecurityGroupSpec {
        inbound_cidrs: None,
        ip_address_type: IpAddressType::Ipv4,
        custom: None,
        manage_backend_rules: None,
        ports: models.iter().map(|l| (l.port, IpProtocol::Tcp)).collect(),
    };
    let sgs = shard_security_groups(&sg_spec, env.cluster, &naming_stack, "", &with_resource);
    model.security_groups = sgs.managed;
    // Only the target groups a programmed rule forwards to.
    let used: BTreeSet<&str> = models
        .iter()
        .flat_map(|l| l.rules.iter())
        .flat_map(|r| r.action.target_names())
        .collect();
    for mut tg in target_groups.into_values() {
        if !used.contains(tg.name.as_str()) {
            continue;
        }
        tg.binding.backend_security_group = sgs.backend.clone().unwrap_or_default();
        tg.tags = with_resource(&tg.key);
        model.target_groups.push(tg);
    }
    model.target_groups.sort_by(|a, b| a.name.cmp(&b.name));
    model.load_balancers.push(LoadBalancerModel {
        key: "LoadBalancer".into(),
        name: config
            .and_then(|c| c.load_balancer_name.clone())
            .unwrap_or_else(|| {
                naming::load_balancer_name(env.cluster, &naming_stack, 0, scheme.as_str())
            }),
        kind: LoadBalancerKind::Application,
        subnet_mappings: BTreeMap::new(),
        scheme,
        ip_address_type: IpAddressType::Ipv4,
        subnets,
        security_groups: sgs.attached,
        attributes: config
            .map(|c| {
                c.load_balancer_attributes
                    .iter()
                    .map(|a| (a.key.clone(), a.value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        tags: with_resource("LoadBalancer"),
        listeners: models,
        members: {
            let mut m: Vec<String> = routes
                .iter()
                .filter(|s| s.accepted.is_ok())
                .map(|s| format!("{}/{}", s.namespace, s.name))
                .collect();
            m.dedup();
            m
        },
        addons: Addons::default(),
        private_link_inbound: None,
    });
    Built {
        model,
        listeners,
        listener_problems,
        routes,
        problem: None,
    }
}

/// Whether a ReferenceGrant in `to_ns` lets `kind` routes of `from_ns` reach Service `name`.
pub fn granted(
    grants: &[ReferenceGrant],
    from_ns: &str,
    kind: &str,
    to_ns: &str,
    name: &str,
) -> bool {
    grants
        .iter()
        .filter(|g| g.namespace().as_deref() == Some(to_ns))
        .any(|g| {
            g.spec
                .from
                .iter()
                .any(|f| f.group == GROUP && f.kind == kind && f.namespace == from_ns)
                && g.spec.to.iter().any(|t| {
                    t.group.is_empty()
                        && t.kind == "Service"
                        && t.name.as_deref().is_none_or(|n| n == name)
                })
        })
}

/// The target group of one backendRef: its Service resolved (ReferenceGrant, existence,
/// port), its settings from the Service's TargetGroupConfiguration (the route's entry over
/// the defaults), the peer's defaults otherwise.
fn backend_target_group(
    stack: &str,
    route_kind: &str,
    route_ns: &str,
    route_name: &str,
    b: &http::BackendRef,
    inputs: &Inputs<'_>,
) -> Result<TargetGroupModel, (&'static str, String)> {
    let env = inputs.env;
    let (route_ns, route_name) = (route_ns.to_string(), route_name.to_string());
    let kind = b.kind.as_deref().unwrap_or("Service");
    if kind != "Service" || b.group.as_deref().is_some_and(|g| !g.is_empty()) {
        return Err((
            reason::INVALID_KIND,
            format!(
                "backendRef {}: only core Services are supported, not {kind}",
                b.name
            ),
        ));
    }
    let ns = b.namespace.clone().unwrap_or_else(|| route_ns.clone());
    if ns != route_ns && !granted(inputs.grants, &route_ns, route_kind, &ns, &b.name) {
        return Err((
            reason::REF_NOT_PERMITTED,
            format!(
                "backendRef {ns}/{}: no ReferenceGrant in {ns} allows {route_kind}s from {route_ns}",
                b.name
            ),
        ));
    }
    let Some(port) = b.port else {
        return Err((
            reason::UNSUPPORTED_VALUE,
            format!("backendRef {ns}/{}: a Service backend needs a port", b.name),
        ));
    };
    let svc = env
        .services
        .get(&(ns.clone(), b.name.clone()))
        .ok_or_else(|| {
            (
                reason::BACKEND_NOT_FOUND,
                format!("Service {ns}/{} does not exist", b.name),
            )
        })?;
    let sp = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ps| ps.iter().find(|p| p.port == port))
        .ok_or_else(|| {
            (
                reason::BACKEND_NOT_FOUND,
                format!("Service {ns}/{} has no port {port}", b.name),
            )
        })?;
    let props = target_group_props(
        inputs.target_group_configs,
        &ns,
        &b.name,
        route_kind,
        &route_ns,
        &route_name,
    );
    let grpc = route_kind == GRPC_ROUTE;
    let target_type = match props.target_type {
        Some(crate::crd::target_group_binding::TargetType::Ip) => TargetType::Ip,
        Some(crate::crd::target_group_binding::TargetType::Instance) => TargetType::Instance,
        None => env.default_target_type,
    };
    let (tg_port, target_port) = match target_type {
        TargetType::Instance => {
            let node_port = sp.node_port.ok_or_else(|| {
                (
                    reason::UNSUPPORTED_VALUE,
                    format!(
                        "Service {ns}/{} port {port} has no NodePort for instance targets",
                        b.name
                    ),
                )
            })?;
            (node_port, ServicePortRef::Number(node_port))
        }
        TargetType::Ip => match &sp.target_port {
            Some(IntOrString::Int(n)) => (*n, ServicePortRef::Number(*n)),
            Some(IntOrString::String(name)) => (port, ServicePortRef::Name(name.clone())),
            None => (port, ServicePortRef::Number(port)),
        },
    };
    let hc = props.health_check_config.clone().unwrap_or_default();
    let protocol_version = match props.protocol_version {
        Some(crate::crd::gateway_config::target_group::ProtocolVersion::Http2) => "HTTP2",
        Some(crate::crd::gateway_config::target_group::ProtocolVersion::Grpc) => "GRPC",
        Some(crate::crd::gateway_config::target_group::ProtocolVersion::Http1) => "HTTP1",
        None if grpc => "GRPC",
        None => "HTTP1",
    };
    let grpc_checked = protocol_version == "GRPC";
    let key = format!(
        "{stack}:{route_ns}-{route_name}:{route_kind}-{ns}-{}:{port}",
        b.name
    );
    let name = props.target_group_name.clone().unwrap_or_else(|| {
        naming::target_group_name(
            env.cluster,
            &format!("gateway/{stack}"),
            &format!("{ns}/{route_name}-{}:{port}", b.name),
            &[
                "HTTP",
                &tg_port.to_string(),
                target_type.as_str(),
                protocol_version,
            ],
        )
    });
    let attributes = props
        .target_group_attributes
        .iter()
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect();
    Ok(TargetGroupModel {
        key,
        name,
        protocol: Protocol::Http,
        protocol_version: protocol_version.into(),
        port: tg_port,
        target_type,
        health_check: HealthCheck {
            path: hc
                .health_check_path
                .clone()
                .unwrap_or_else(|| match grpc_checked {
                    true => "/AWS.ALB/healthcheck".into(),
                    false => "/".into(),
                }),
            port: hc
                .health_check_port
                .clone()
                .unwrap_or_else(|| "traffic-port".into()),
            protocol: Protocol::Http,
            interval_seconds: hc.health_check_interval.unwrap_or(15),
            timeout_seconds: hc.health_check_timeout.unwrap_or(5),
            healthy_threshold: hc.healthy_threshold_count.unwrap_or(3),
            unhealthy_threshold: hc.unhealthy_threshold_count.unwrap_or(3),
            success_codes: match grpc_checked {
                true => hc
                    .matcher
                    .as_ref()
                    .and_then(|m| m.grpc_code.clone())
                    .unwrap_or_else(|| "12".into()),
                false => hc
                    .matcher
                    .as_ref()
                    .and_then(|m| m.http_code.clone())
                    .unwrap_or_else(|| "200-399".into()),
            },
            grpc: grpc_checked,
        },
        attributes,
        tags: Tags::new(),
        binding: BindingModel {
            namespace: ns,
            service: b.name.clone(),
            service_port: ServicePortRef::Number(port),
            target_port,
            backend_security_group: String::new(),
            health_check_port: None,
            node_labels: BTreeMap::new(),
        },
    })
}

/// The settings of Service `ns/name` for a route: its TargetGroupConfiguration's entry for
/// the route (by kind, namespace and name; then kind and namespace; then kind) over the
/// defaults.
fn target_group_props(
    configs: &[TargetGroupConfiguration],
    ns: &str,
    name: &str,
    route_kind: &str,
    route_ns: &str,
    route_name: &str,
) -> TargetGroupProps {
    let Some(c) = configs.iter().find(|c| {
        c.namespace().as_deref() == Some(ns)
            && c.spec
                .target_reference
                .as_ref()
                .is_some_and(|t| t.name == name && t.kind.as_deref().is_none_or(|k| k == "Service"))
    }) else {
        return TargetGroupProps::default();
    };
    let by = |f: &dyn Fn(&crate::crd::gateway_config::target_group::RouteIdentifier) -> bool| {
        c.spec
            .route_configurations
            .iter()
            .find(|r| r.route_identifier.kind == route_kind && f(&r.route_identifier))
    };
    let route = by(&|r| r.namespace == route_ns && r.name == route_name)
        .or_else(|| by(&|r| r.namespace == route_ns && r.name.is_empty()))
        .or_else(|| by(&|r| r.namespace.is_empty() && r.name.is_empty()));
    let mut props = c.spec.default_configuration.clone();
    if let Some(r) = route {
        props = merge(props, r.target_group_props.clone());
    }
    props
}

/// `over`'s fields where set, else `base`'s.
fn merge(base: TargetGroupProps, over: TargetGroupProps) -> TargetGroupProps {
    TargetGroupProps {
        target_group_name: over.target_group_name.or(base.target_group_name),
        ip_address_type: over.ip_address_type.or(base.ip_address_type),
        health_check_config: over.health_check_config.or(base.health_check_config),
        node_selector: over.node_selector.or(base.node_selector),
        target_group_attributes: if over.target_group_attributes.is_empty() {
            base.target_group_attributes
        } else {
            over.target_group_attributes
        },
        target_type: over.target_type.or(base.target_type),
        protocol: over.protocol.or(base.protocol),
        protocol_version: over.protocol_version.or(base.protocol_version),
        target_control_port: over.target_control_port.or(base.target_control_port),
        enable_multi_cluster: over.enable_multi_cluster.or(base.enable_multi_cluster),
        tags: over.tags.or(base.tags),
    }
}

#[cfg(test)]
mod tests;
