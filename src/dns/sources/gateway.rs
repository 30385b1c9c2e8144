//! HTTPRoutes (external-dns's `gateway-httproute` source): the hostnames a route serves on
//! the Gateways that accepted it (its hostnames intersected with each listener's), pointing
//! at each Gateway's `status.addresses`.

use std::collections::BTreeSet;

use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use kube::ResourceExt;

use super::common::{
    HTTP_ROUTE_KIND, NO_ANNOTATIONS, SourceContext, SourceError, SourceOutput, hostnames, publish,
    resource_of,
};
use crate::dns::annotations::{HostnameSource, parse_annotations};
use crate::gateway::attach;

/// Endpoints for an HTTPRoute: on every Gateway among `gateways` whose entry in the route's
/// `status.parents` says Accepted, the route's hostnames as that Gateway's listeners narrow
/// them (a listener hostname stands in when the route has none), pointing at the Gateway's
/// addresses; the hostname annotation adds names, the target annotation replaces targets.
pub fn http_route_endpoints(
    route: &HttpRoute,
    gateways: &[&Gateway],
    ctx: &SourceContext<'_>,
) -> SourceOutput {
    let resource = resource_of(HTTP_ROUTE_KIND, &route.metadata);
    let annotations = route
        .metadata
        .annotations
        .as_ref()
        .unwrap_or(&NO_ANNOTATIONS);
    let parsed = match parse_annotations(annotations) {
        Ok(parsed) => parsed,
        Err(error) => return SourceOutput::error(SourceError::Annotation { resource, error }),
    };
    let route_ns = route.namespace().unwrap_or_default();
    let route_hosts = route.spec.hostnames.clone().unwrap_or_default();
    let mut out = SourceOutput::default();
    // Per accepting Gateway: its targets and the hostnames the route has there.
    let mut per_gateway: Vec<(Vec<String>, BTreeSet<String>)> = Vec::new();
    for parent in route.status.iter().flat_map(|s| s.parents.iter()) {
        let accepted = parent
            .conditions
            .iter()
            .any(|c| c.type_ == "Accepted" && c.status == "True");
        let p = &parent.parent_ref;
        let ns = p.namespace.clone().unwrap_or_else(|| route_ns.clone());
        let is_gateway = p.kind.as_deref().unwrap_or("Gateway") == "Gateway"
            && p.group.as_deref().unwrap_or(crate::gateway::GROUP) == crate::gateway::GROUP;
        let Some(gw) = gateways.iter().find(|g| {
            is_gateway && g.name_any() == p.name && g.namespace().as_deref() == Some(&ns)
        }) else {
            continue;
        };
        if !accepted {
            continue;
        }
        let mut hosts = BTreeSet::new();
        if parsed.hostname_source != HostnameSource::AnnotationOnly {
            for l in gw.spec.listeners.iter().filter(|l| {
                p.section_name.as_ref().is_none_or(|s| *s == l.name)
                    && p.port.is_none_or(|port| port == l.port)
            }) {
                hosts.extend(
                    attach::hostnames(l.hostname.as_deref(), &route_hosts)
                        .into_iter()
                        .filter(|h| !h.is_empty() && !h.starts_with('*')),
                );
            }
        }
        let targets: Vec<String> = gw
            .status
            .iter()
            .flat_map(|s| s.addresses.iter().flatten())
            .map(|a| a.value.clone())
            .collect();
        per_gateway.push((targets, hosts));
    }
    let extra: Vec<&str> = match parsed.hostname_source {
        HostnameSource::DefinedHostsOnly => Vec::new(),
        _ => parsed.hostnames.iter().map(String::as_str).collect(),
    };
    for (targets, hosts) in &per_gateway {
        let raw = hosts
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied());
        let names = hostnames(raw, &resource, &mut out);
        let targets = match parsed.targets.is_empty() {
            true => targets.clone(),
            false => parsed.targets.clone(),
        };
        publish(&names, &targets, &parsed.options, &resource, ctx, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::sources::test_support::{ALB, ALB_ZONE, summary};
    use serde_json::json;

    fn gateway(listeners: serde_json::Value) -> Gateway {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "infra"},
            "spec": {"gatewayClassName": "alb", "listeners": listeners},
            "status": {"addresses": [{"type": "Hostname", "value": ALB}]}
        }))
        .unwrap()
    }

    fn route(
        hostnames: &[&str],
        section: Option<&str>,
        accepted: bool,
        annotations: serde_json::Value,
    ) -> HttpRoute {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "apps", "annotations": annotations},
            "spec": {"hostnames": hostnames, "parentRefs": [{"name": "gw", "namespace": "infra", "sectionName": section}]},
            "status": {"parents": [{
                "controllerName": "gateway.k8s.aws/alb",
                "parentRef": {"name": "gw", "namespace": "infra", "sectionName": section},
                "conditions": [{"type": "Accepted", "status": if accepted { "True" } else { "False" }, "reason": "Accepted",
                                "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn route_hostnames_narrowed_by_the_listener_become_aliases_to_the_gateway() {
        let gw = gateway(json!([
            {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "*.example.com"},
            {"name": "other", "port": 8443, "protocol": "HTTPS", "hostname": "*.example.org"},
        ]));
        let r = route(
            &["shop.example.com", "shop.example.org", "elsewhere.net"],
            Some("https"),
            true,
            json!({}),
        );
        let out = http_route_endpoints(&r, &[&gw], &SourceContext::default());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(
            summary(&out.endpoints),
            [
                format!("shop.example.com A ALIAS {ALB} {ALB_ZONE}"),
                format!("shop.example.com AAAA ALIAS {ALB} {ALB_ZONE}"),
            ]
        );
        assert_eq!(
            out.endpoints[0].resource.as_ref().unwrap().to_string(),
            "httproute/apps/web"
        );
    }

    #[test]
    fn a_route_the_gateway_has_not_accepted_publishes_nothing_and_annotations_add_names() {
        let gw = gateway(
            json!([{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "api.example.com"}]),
        );
        let refused = route(&[], None, false, json!({}));
        assert!(
            http_route_endpoints(&refused, &[&gw], &SourceContext::default())
                .endpoints
                .is_empty()
        );
        let r = route(
            &[],
            None,
            true,
            json!({"external-dns.alpha.kubernetes.io/hostname": "alias.example.com"}),
        );
        let out = http_route_endpoints(&r, &[&gw], &SourceContext::default());
        let names: BTreeSet<String> = out
            .endpoints
            .iter()
            .map(|e| e.dns_name.to_string())
            .collect();
        assert_eq!(
            names,
            BTreeSet::from([
                "alias.example.com".to_string(),
                "api.example.com".to_string()
            ])
        );
        // Another Gateway's route: nothing.
        let elsewhere = gateway(json!([]));
        let mut other = elsewhere.clone();
        other.metadata.name = Some("other".into());
        assert!(
            http_route_endpoints(&r, &[&other], &SourceContext::default())
                .endpoints
                .is_empty()
        );
    }
}
