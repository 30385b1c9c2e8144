//! Which routes attach to which listeners of a Gateway (pure): the listeners validated as
//! the spec asks, `parentRefs` matched by name, section and port, `allowedRoutes` enforced
//! (namespaces and kinds), and the hostnames a route serves on each listener.

use std::collections::{BTreeMap, BTreeSet};

use gateway_api::gateways::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutesNamespacesFrom as From,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::ResourceExt;

use super::{GROUP, GRPC_ROUTE, HTTP_ROUTE, reason};
use crate::alb::model::Protocol;

/// One listener of the Gateway, as validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub port: i32,
    /// `None`: a protocol an ALB does not serve.
    pub protocol: Option<Protocol>,
    pub hostname: Option<String>,
    /// The route kinds it takes (the protocol's defaults unless `allowedRoutes.kinds` says).
    pub kinds: Vec<String>,
    /// Why it is not accepted (reason, message); such a listener takes no routes.
    pub refused: Option<(&'static str, String)>,
    /// Listed kinds it cannot take (ResolvedRefs=False, reason InvalidRouteKinds).
    pub invalid_kinds: Vec<String>,
    /// Accepted (route, parentRef) pairs.
    pub attached_routes: i32,
}

impl Listener {
    pub fn accepted(&self) -> bool {
        self.refused.is_none()
    }
}

/// The listeners of `gw`, validated in order: the port, the protocol (HTTP and HTTPS on an
/// ALB), a second protocol on a port another listener has (`ProtocolConflict`, the first
/// wins), the same port and hostname twice (`HostnameConflict`), and the route kinds.
pub fn listeners(gw: &Gateway) -> Vec<Listener> {
    let mut out: Vec<Listener> = Vec::new();
    for l in &gw.spec.listeners {
        let protocol = match l.protocol.as_str() {
            "HTTP" => Some(Protocol::Http),
            "HTTPS" => Some(Protocol::Https),
            _ => None,
        };
        let (kinds, invalid_kinds) = kinds(l);
        let mut refused = None;
        if !(1..=65535).contains(&l.port) {
            refused = Some((
                reason::PORT_UNAVAILABLE,
                format!("port {} is outside 1-65535", l.port),
            ));
        } else if protocol.is_none() {
            refused = Some((
                reason::UNSUPPORTED_PROTOCOL,
                format!(
                    "an ALB Gateway serves HTTP and HTTPS listeners, not {}",
                    l.protocol
                ),
            ));
        } else if let Some(first) = out
            .iter()
            .find(|o| o.port == l.port && o.accepted() && o.protocol != protocol)
        {
            refused = Some((
                reason::PROTOCOL_CONFLICT,
                format!(
                    "port {} is already {} on listener {}",
                    l.port,
                    first.protocol.map(Protocol::as_str).unwrap_or("?"),
                    first.name
                ),
            ));
        } else if let Some(first) = out
            .iter()
            .find(|o| o.port == l.port && o.accepted() && o.hostname == l.hostname)
        {
            refused = Some((
                reason::HOSTNAME_CONFLICT,
                format!(
                    "listener {} has port {} and hostname {:?} already",
                    first.name,
                    l.port,
                    l.hostname.as_deref().unwrap_or("*")
                ),
            ));
        }
        out.push(Listener {
            name: l.name.clone(),
            port: l.port,
            protocol,
            hostname: l.hostname.clone().filter(|h| !h.is_empty()),
            kinds,
            refused,
            invalid_kinds,
            attached_routes: 0,
        });
    }
    out
}

/// The kinds a listener takes: the listed ones an ALB serves (and the rest, invalid), or by
/// protocol: HTTPRoute on HTTP, HTTPRoute and GRPCRoute on HTTPS.
fn kinds(l: &GatewayListeners) -> (Vec<String>, Vec<String>) {
    let listed = l.allowed_routes.as_ref().and_then(|a| a.kinds.as_ref());
    match listed.filter(|k| !k.is_empty()) {
        Some(listed) => listed
            .iter()
            .map(|k| k.kind.clone())
            .partition(|k| k == HTTP_ROUTE || k == GRPC_ROUTE),
        None if l.protocol == "HTTPS" => (vec![HTTP_ROUTE.into(), GRPC_ROUTE.into()], vec![]),
        None => (vec![HTTP_ROUTE.into()], vec![]),
    }
}

/// A route's reference to a parent, with the spec's defaults applied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ParentRef {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub section_name: Option<String>,
    pub port: Option<i32>,
}

impl ParentRef {
    /// Whether it names `gw`.
    pub fn names(&self, gw: &Gateway) -> bool {
        self.group == GROUP
            && self.kind == "Gateway"
            && self.name == gw.name_any()
            && Some(self.namespace.as_str()) == gw.namespace().as_deref()
    }
}

/// What attachment found for one (route, parentRef).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// Hostnames served, by listener port (`""`: any host).
    Attached(BTreeMap<i32, BTreeSet<String>>),
    Refused {
        reason: &'static str,
        message: String,
    },
}

/// The route being attached.
pub struct Route<'a> {
    pub kind: &'a str,
    pub namespace: &'a str,
    pub hostnames: &'a [String],
}

/// Attaches `route` through `parent` (which names `gw`) to the listeners that take it,
/// counting it on each. `namespace_labels` gives a namespace's labels (for `Selector`).
pub fn attach(
    gw: &Gateway,
    listeners: &mut [Listener],
    route: &Route<'_>,
    parent: &ParentRef,
    namespace_labels: &dyn Fn(&str) -> Option<BTreeMap<String, String>>,
) -> Attachment {
    let gw_ns = gw.namespace().unwrap_or_default();
    let mut served: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    let mut first_refusal: Option<(&'static str, String)> = None;
    let mut any_candidate = false;
    for (i, spec) in gw.spec.listeners.iter().enumerate() {
        let l = &mut listeners[i];
        if parent.section_name.as_ref().is_some_and(|s| *s != l.name)
            || parent.port.is_some_and(|p| p != l.port)
        {
            continue;
        }
        any_candidate = true;
        let refusal = if !l.accepted() {
            Some((
                reason::NOT_ALLOWED_BY_LISTENERS,
                format!("listener {} is not accepted", l.name),
            ))
        } else if !namespace_allowed(spec, &gw_ns, route.namespace, namespace_labels) {
            Some((
                reason::NOT_ALLOWED_BY_LISTENERS,
                format!(
                    "listener {} does not allow routes from namespace {}",
                    l.name, route.namespace
                ),
            ))
        } else if !l.kinds.iter().any(|k| k == route.kind) {
            Some((
                reason::NOT_ALLOWED_BY_LISTENERS,
                format!("listener {} does not take {}", l.name, route.kind),
            ))
        } else {
            None
        };
        if let Some(r) = refusal {
            first_refusal.get_or_insert(r);
            continue;
        }
        let hosts = hostnames(l.hostname.as_deref(), route.hostnames);
        if hosts.is_empty() {
            first_refusal.get_or_insert((
                reason::NO_MATCHING_LISTENER_HOSTNAME,
                format!(
                    "no route hostname matches listener {} ({})",
                    l.name,
                    l.hostname.as_deref().unwrap_or("*")
                ),
            ));
            continue;
        }
        l.attached_routes += 1;
        served.entry(l.port).or_default().extend(hosts);
    }
    if !served.is_empty() {
        return Attachment::Attached(served);
    }
    let (reason, message) = match (any_candidate, first_refusal) {
        (_, Some(r)) => r,
        (false, None) => (
            reason::NO_MATCHING_PARENT,
            "no listener has the parentRef's sectionName and port".to_string(),
        ),
        (true, None) => (
            reason::NOT_ALLOWED_BY_LISTENERS,
            "no listener takes the route".to_string(),
        ),
    };
    Attachment::Refused { reason, message }
}

fn namespace_allowed(
    l: &GatewayListeners,
    gw_ns: &str,
    route_ns: &str,
    namespace_labels: &dyn Fn(&str) -> Option<BTreeMap<String, String>>,
) -> bool {
    let ns = l
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match ns.and_then(|n| n.from.as_ref()) {
        None | Some(From::Same) => gw_ns == route_ns,
        Some(From::All) => true,
        Some(From::Selector) => {
            let Some(sel) = ns.and_then(|n| n.selector.as_ref()) else {
                return false;
            };
            let selector = LabelSelector {
                match_labels: sel.match_labels.clone(),
                match_expressions: sel.match_expressions.as_ref().map(|es| {
                    es.iter()
                        .map(|e| LabelSelectorRequirement {
                            key: e.key.clone(),
                            operator: e.operator.clone(),
                            values: e.values.clone(),
                        })
                        .collect()
                }),
            };
            let labels = namespace_labels(route_ns).unwrap_or_default();
            // An invalid selector selects nothing.
            crate::k8s::selector::matches(&selector, &labels).unwrap_or(false)
        }
    }
}

/// The hostnames a route serves on a listener (`""`: any host): the route's own without a
/// listener hostname, the listener's without route hostnames, else each pair that
/// intersects, as the more specific of the two. Empty: none intersect.
pub fn hostnames(listener: Option<&str>, route: &[String]) -> BTreeSet<String> {
    match (listener, route.is_empty()) {
        (None, true) => BTreeSet::from([String::new()]),
        (None, false) => route.iter().map(|h| h.to_ascii_lowercase()).collect(),
        (Some(l), true) => BTreeSet::from([l.to_ascii_lowercase()]),
        (Some(l), false) => route
            .iter()
            .filter_map(|r| intersect(&l.to_ascii_lowercase(), &r.to_ascii_lowercase()))
            .collect(),
    }
}

/// The more specific of two hostnames that match each other (`*.example.com` matches
/// `a.example.com` and `a.b.example.com`, not `example.com`).
fn intersect(a: &str, b: &str) -> Option<String> {
    if a == b {
        return Some(a.to_string());
    }
    let covers = |wild: &str, host: &str| {
        wild.strip_prefix('*')
            .is_some_and(|suffix| suffix.starts_with('.') && host.ends_with(suffix))
            && host.len() > wild.len() - 1
    };
    if covers(a, b) {
        Some(b.to_string())
    } else if covers(b, a) {
        Some(a.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gateway(listeners: serde_json::Value) -> Gateway {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "infra"},
            "spec": {"gatewayClassName": "alb", "listeners": listeners}
        }))
        .unwrap()
    }

    fn parent(section: Option<&str>) -> ParentRef {
        ParentRef {
            group: GROUP.into(),
            kind: "Gateway".into(),
            namespace: "infra".into(),
            name: "gw".into(),
            section_name: section.map(str::to_string),
            port: None,
        }
    }

    fn no_labels(_: &str) -> Option<BTreeMap<String, String>> {
        None
    }

    #[test]
    fn listeners_are_validated_in_order_and_the_first_on_a_port_wins() {
        let gw = gateway(json!([
            {"name": "http", "port": 80, "protocol": "HTTP"},
            {"name": "tls", "port": 80, "protocol": "HTTPS"},
            {"name": "http-again", "port": 80, "protocol": "HTTP"},
            {"name": "tcp", "port": 9000, "protocol": "TCP"},
            {"name": "web", "port": 443, "protocol": "HTTPS", "hostname": "a.example.com",
             "allowedRoutes": {"kinds": [{"kind": "TCPRoute"}, {"kind": "HTTPRoute"}]}},
        ]));
        let ls = listeners(&gw);
        assert!(ls[0].accepted());
        assert_eq!(ls[1].refused.as_ref().unwrap().0, reason::PROTOCOL_CONFLICT);
        assert_eq!(ls[2].refused.as_ref().unwrap().0, reason::HOSTNAME_CONFLICT);
        assert_eq!(
            ls[3].refused.as_ref().unwrap().0,
            reason::UNSUPPORTED_PROTOCOL
        );
        assert!(ls[4].accepted());
        assert_eq!(ls[4].kinds, vec!["HTTPRoute".to_string()]);
        assert_eq!(ls[4].invalid_kinds, vec!["TCPRoute".to_string()]);
        assert_eq!(ls[0].kinds, vec!["HTTPRoute".to_string()]);
    }

    #[test]
    fn hostnames_intersect_as_the_more_specific_one() {
        let r = |hs: &[&str]| hs.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        assert_eq!(hostnames(None, &[]), BTreeSet::from(["".to_string()]));
        assert_eq!(
            hostnames(
                Some("*.example.com"),
                &r(&["a.example.com", "b.other.com", "example.com"])
            ),
            BTreeSet::from(["a.example.com".to_string()])
        );
        assert_eq!(
            hostnames(Some("a.example.com"), &r(&["*.example.com"])),
            BTreeSet::from(["a.example.com".to_string()])
        );
        assert_eq!(
            hostnames(Some("*.example.com"), &[]),
            BTreeSet::from(["*.example.com".to_string()])
        );
        assert!(hostnames(Some("a.example.com"), &r(&["b.example.com"])).is_empty());
    }

    #[test]
    fn allowed_routes_namespaces_and_sections_decide_attachment() {
        let gw = gateway(json!([
            {"name": "same", "port": 80, "protocol": "HTTP"},
            {"name": "all", "port": 8080, "protocol": "HTTP",
             "allowedRoutes": {"namespaces": {"from": "All"}}},
            {"name": "labelled", "port": 8081, "protocol": "HTTP",
             "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}}},
        ]));
        let mut ls = listeners(&gw);
        let route = |ns| Route {
            kind: HTTP_ROUTE,
            namespace: ns,
            hostnames: &[],
        };
        let labels =
            |ns: &str| (ns == "team-a").then(|| BTreeMap::from([("team".into(), "a".into())]));
        // The Gateway's own namespace: every listener.
        let Attachment::Attached(ports) =
            attach(&gw, &mut ls, &route("infra"), &parent(None), &no_labels)
        else {
            panic!("attached");
        };
        assert_eq!(ports.keys().copied().collect::<Vec<_>>(), vec![80, 8080]);
        // A labelled namespace: All and Selector.
        let Attachment::Attached(ports) =
            attach(&gw, &mut ls, &route("team-a"), &parent(None), &labels)
        else {
            panic!("attached");
        };
        assert_eq!(ports.keys().copied().collect::<Vec<_>>(), vec![8080, 8081]);
        // Only the Same listener named, from elsewhere: refused.
        let r = attach(
            &gw,
            &mut ls,
            &route("team-a"),
            &parent(Some("same")),
            &labels,
        );
        assert!(
            matches!(
                r,
                Attachment::Refused {
                    reason: reason::NOT_ALLOWED_BY_LISTENERS,
                    ..
                }
            ),
            "{r:?}"
        );
        // A section that does not exist.
        let r = attach(
            &gw,
            &mut ls,
            &route("infra"),
            &parent(Some("nope")),
            &no_labels,
        );
        assert!(
            matches!(
                r,
                Attachment::Refused {
                    reason: reason::NO_MATCHING_PARENT,
                    ..
                }
            ),
            "{r:?}"
        );
        assert_eq!(
            ls.iter().map(|l| l.attached_routes).collect::<Vec<_>>(),
            vec![1, 2, 1]
        );
    }

    #[test]
    fn a_route_whose_hostnames_miss_the_listener_is_refused_with_the_spec_reason() {
        let gw = gateway(
            json!([{"name": "web", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"}]),
        );
        let mut ls = listeners(&gw);
        let hosts = vec!["b.example.com".to_string()];
        let route = Route {
            kind: HTTP_ROUTE,
            namespace: "infra",
            hostnames: &hosts,
        };
        let r = attach(&gw, &mut ls, &route, &parent(None), &no_labels);
        assert!(
            matches!(
                r,
                Attachment::Refused {
                    reason: reason::NO_MATCHING_LISTENER_HOSTNAME,
                    ..
                }
            ),
            "{r:?}"
        );
        assert_eq!(ls[0].attached_routes, 0);
    }
}
