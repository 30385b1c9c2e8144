//! `causeway convert` (pure): Ingresses as Gateway API objects, the way the peer's
//! ingress2gateway tooling does it. Each IngressGroup is built with the ALB builder (so its
//! listeners, certificates, SSL policy, scheme and attributes are what the ALB would get), then
//! becomes a Gateway with a LoadBalancerConfiguration, one HTTPRoute per Ingress host, an
//! HTTPRoute for the `ssl-redirect`, and a TargetGroupConfiguration per Service. What has no
//! Gateway equivalent here is listed, never silently dropped.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::GROUP;
use crate::alb::model::{Action, GroupModel, Protocol, ServicePortRef, TargetType};
use crate::alb::{AlbSettings, Manifests, builder, settings};

/// The annotations (after `alb.ingress.kubernetes.io/`) the conversion carries over.
const CONVERTED: &[&str] = &[
    "group.name",
    "scheme",
    "listen-ports",
    "certificate-arn",
    "ssl-policy",
    "ssl-redirect",
    "target-type",
    "healthcheck-path",
    "backend-protocol-version",
    "load-balancer-attributes",
    "load-balancer-name",
    "tags",
];

/// What `convert` produced: the objects and the notes on what was not converted.
#[derive(Debug, Default)]
pub struct Converted {
    pub objects: Vec<Value>,
    pub notes: Vec<String>,
}

/// Converts every Ingress of ours in `objects`; Gateways take the class `gateway_class`.
pub fn convert(
    objects: &[Value],
    alb: &AlbSettings,
    cluster: &str,
    gateway_class: &str,
) -> Converted {
    let mut out = Converted::default();
    let mut log = String::new();
    let mut manifests = Manifests::read(objects, &mut log);
    out.notes.extend(log.lines().map(str::to_string));
    let services = manifests.services.clone();
    let groups = manifests.groups(&alb.class);
    for (stack, members) in &groups {
        let env = alb.environment(
            cluster,
            settings::Discovered {
                services: &services,
                subnets: None,
                certificates: None,
                security_groups: None,
                target_groups: None,
                oidc_clients: None,
                web_acls: None,
                trust_stores: None,
            },
        );
        let build = builder::build(stack, members, &env);
        for m in &build.members {
            if let Some(p) = &m.problem {
                out.notes.push(format!(
                    "Ingress {}: not converted: {}: {}",
                    m.id(),
                    p.reason,
                    p.message
                ));
            }
        }
        let ingresses: Vec<&Ingress> = members
            .iter()
            .map(|m| m.ingress)
            .filter(|i| {
                build.members.iter().any(|o| {
                    o.problem.is_none()
                        && Some(&o.namespace) == i.metadata.namespace.as_ref()
                        && o.name == i.name_any()
                })
            })
            .collect();
        if ingresses.is_empty() {
            continue;
        }
        convert_group(
            stack,
            &build.model,
            &ingresses,
            &services,
            gateway_class,
            &mut out,
        );
    }
    if groups.is_empty() {
        out.notes
            .push("no Ingress in the manifests belongs to causeway".into());
    }
    out
}

/// A DNS-label form of a group or Ingress name.
fn label(s: &str) -> String {
    let l: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    l.trim_matches('-').chars().take(63).collect()
}

fn convert_group(
    stack: &str,
    model: &GroupModel,
    ingresses: &[&Ingress],
    services: &BTreeMap<(String, String), k8s_openapi::api::core::v1::Service>,
    gateway_class: &str,
    out: &mut Converted,
) {
    let ns = ingresses[0].namespace().unwrap_or_default();
    let name = label(stack.rsplit('/').next().unwrap_or(stack));
    let spans = ingresses
        .iter()
        .filter_map(|i| i.namespace())
        .collect::<BTreeSet<_>>()
        .len()
        > 1;
    let Some(lb) = model.load_balancers.first() else {
        return;
    };
    if model.load_balancers.len() > 1 {
        out.notes.push(format!(
            "group {stack}: needs {} ALBs (more than 100 rules); the Gateway gets all its routes on one",
            model.load_balancers.len()
        ));
    }
    // Listeners, and which of them only redirect to HTTPS.
    let mut listeners = Vec::new();
    let mut configs = Vec::new();
    let mut redirects: Vec<(String, String)> = Vec::new();
    let mut serving: Vec<String> = Vec::new();
    for l in &lb.listeners {
        let section = format!("{}-{}", l.protocol.as_str().to_ascii_lowercase(), l.port);
        let mut listener =
            json!({"name": section, "port": l.port, "protocol": l.protocol.as_str()});
        if spans {
            listener["allowedRoutes"] = json!({"namespaces": {"from": "All"}});
        }
        listeners.push(listener);
        if l.protocol == Protocol::Https {
            let mut c = json!({"protocolPort": format!("HTTPS:{}", l.port)});
            if let Some((first, rest)) = l.certificates.split_first() {
                c["defaultCertificate"] = json!(first);
                if !rest.is_empty() {
                    c["certificates"] = json!(rest);
                }
            }
            if let Some(p) = &l.ssl_policy {
                c["sslPolicy"] = json!(p);
            }
            configs.push(c);
        }
        match (&l.default_action, l.rules.is_empty()) {
            (Action::Redirect(r), true) if r.protocol == "HTTPS" => {
                redirects.push((section, r.port.clone()));
            }
            _ => serving.push(section),
        }
    }
    let config_name = name.clone();
    let mut lbc = json!({
        "apiVersion": "gateway.k8s.aws/v1", "kind": "LoadBalancerConfiguration",
        "metadata": {"name": config_name, "namespace": ns},
        "spec": {"scheme": lb.scheme.as_str()}
    });
    if !configs.is_empty() {
        lbc["spec"]["listenerConfigurations"] = json!(configs);
    }
    if !lb.attributes.is_empty() {
        lbc["spec"]["loadBalancerAttributes"] = json!(
            lb.attributes
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect::<Vec<_>>()
        );
    }
    let user_tags: BTreeMap<&String, &String> = lb
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("elbv2.k8s.aws/") && !k.starts_with("ingress.k8s.aws/"))
        .collect();
    if !user_tags.is_empty() {
        lbc["spec"]["tags"] = json!(user_tags);
    }
    out.objects.push(json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "gatewayClassName": gateway_class,
            "infrastructure": {"parametersRef": {"group": "gateway.k8s.aws", "kind": "LoadBalancerConfiguration", "name": config_name}},
            "listeners": listeners,
        }
    }));
    out.objects.push(lbc);
    let parent = |section: &str| json!({"name": name, "namespace": ns, "sectionName": section});
    for (section, port) in &redirects {
        let mut redirect = json!({"scheme": "https", "statusCode": 301});
        if let Ok(p) = port.parse::<i32>() {
            redirect["port"] = json!(p);
        }
        out.objects.push(json!({
            "apiVersion": format!("{GROUP}/v1"), "kind": "HTTPRoute",
            "metadata": {"name": format!("{name}-ssl-redirect"), "namespace": ns},
            "spec": {"parentRefs": [parent(section)],
                     "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": redirect}]}]}
        }));
    }
    let parents: Vec<Value> = serving.iter().map(|s| parent(s)).collect();
    let mut backends: BTreeSet<(String, String)> = BTreeSet::new();
    for ing in ingresses {
        let ing_ns = ing.namespace().unwrap_or_default();
        notes_for(ing, out);
        let spec = ing.spec.clone().unwrap_or_default();
        let mut by_host: BTreeMap<Option<String>, Vec<Value>> = BTreeMap::new();
        for rule in spec.rules.iter().flatten() {
            let host = rule.host.clone().filter(|h| !h.is_empty());
            for path in rule.http.iter().flat_map(|h| h.paths.iter()) {
                let Some(backend) =
                    backend(ing, &ing_ns, path.backend.service.as_ref(), services, out)
                else {
                    continue;
                };
                let value = path.path.clone().unwrap_or_else(|| "/".into());
                let kind = match path.path_type.as_str() {
                    "Exact" => "Exact",
                    _ if value.contains(['*', '?']) => {
                        out.notes.push(format!(
                            "Ingress {ing_ns}/{}: path {value:?} is an ALB wildcard pattern; Gateway paths are literal, not converted",
                            ing.name_any()
                        ));
                        continue;
                    }
                    _ => "PathPrefix",
                };
                backends.insert((
                    ing_ns.clone(),
                    backend["name"].as_str().unwrap_or_default().to_string(),
                ));
                by_host.entry(host.clone()).or_default().push(json!({
                    "matches": [{"path": {"type": kind, "value": value}}],
                    "backendRefs": [backend],
                }));
            }
        }
        if let Some(b) = spec.default_backend.as_ref()
            && let Some(backend) = backend(ing, &ing_ns, b.service.as_ref(), services, out)
        {
            backends.insert((
                ing_ns.clone(),
                backend["name"].as_str().unwrap_or_default().to_string(),
            ));
            by_host
                .entry(None)
                .or_default()
                .push(json!({"backendRefs": [backend]}));
        }
        let count = by_host.len();
        for (i, (host, rules)) in by_host.into_iter().enumerate() {
            let route_name = match count {
                1 => ing.name_any(),
                _ => format!("{}-{i}", ing.name_any()),
            };
            let mut spec = json!({"parentRefs": parents, "rules": rules});
            if let Some(h) = host {
                spec["hostnames"] = json!([h]);
            }
            out.objects.push(json!({
                "apiVersion": format!("{GROUP}/v1"), "kind": "HTTPRoute",
                "metadata": {"name": route_name, "namespace": ing_ns},
                "spec": spec,
            }));
        }
    }
    if spans {
        out.notes.push(format!(
            "group {stack}: members in several namespaces; their routes attach to the Gateway in {ns} (its listeners allow every namespace)"
        ));
    }
    // Target group settings, per Service, as the ALB would have them.
    for (svc_ns, svc) in backends {
        let Some(tg) = model
            .target_groups
            .iter()
            .find(|t| t.binding.namespace == svc_ns && t.binding.service == svc)
        else {
            continue;
        };
        let mut props = json!({"targetType": tg.target_type.as_str()});
        if tg.health_check.path != "/" && !tg.health_check.path.is_empty() {
            props["healthCheckConfig"] = json!({"healthCheckPath": tg.health_check.path});
        }
        if tg.protocol_version != "HTTP1" {
            props["protocolVersion"] = json!(tg.protocol_version);
        }
        if tg.target_type == TargetType::Instance {
            out.notes.push(format!(
                "Service {svc_ns}/{svc}: instance targets need a NodePort Service, as with the Ingress"
            ));
        }
        out.objects.push(json!({
            "apiVersion": "gateway.k8s.aws/v1", "kind": "TargetGroupConfiguration",
            "metadata": {"name": svc, "namespace": svc_ns},
            "spec": {"targetReference": {"name": svc}, "defaultConfiguration": props},
        }));
    }
}

/// A backendRef for an Ingress backend: a Service port by number (a port name is looked up
/// in the manifests' Service).
fn backend(
    ing: &Ingress,
    ns: &str,
    service: Option<&k8s_openapi::api::networking::v1::IngressServiceBackend>,
    services: &BTreeMap<(String, String), k8s_openapi::api::core::v1::Service>,
    out: &mut Converted,
) -> Option<Value> {
    let id = format!("{ns}/{}", ing.name_any());
    let Some(s) = service else {
        out.notes.push(format!(
            "Ingress {id}: a resource backend has no Gateway equivalent; not converted"
        ));
        return None;
    };
    let port = s.port.as_ref()?;
    let number = match (&port.number, &port.name) {
        (Some(n), _) => Some(*n),
        (None, Some(name)) => services
            .get(&(ns.to_string(), s.name.clone()))
            .and_then(|svc| {
                svc.spec
                    .as_ref()?
                    .ports
                    .as_ref()?
                    .iter()
                    .find(|p| p.name.as_deref() == Some(name))
            })
            .map(|p| p.port),
        (None, None) => None,
    };
    let Some(number) = number else {
        out.notes.push(format!(
            "Ingress {id}: Service {} port {:?} could not be resolved to a number (the Service is not in the manifests); not converted",
            s.name,
            port.name.clone().unwrap_or_default()
        ));
        return None;
    };
    let _ = ServicePortRef::Number(number);
    Some(json!({"name": s.name, "port": number}))
}

/// The Ingress's annotations this conversion does not carry over.
fn notes_for(ing: &Ingress, out: &mut Converted) {
    for key in ing.annotations().keys() {
        let Some(rest) = key.strip_prefix("alb.ingress.kubernetes.io/") else {
            continue;
        };
        if !CONVERTED.contains(&rest) {
            out.notes.push(format!(
                "Ingress {}/{}: annotation {key} has no Gateway equivalent in this conversion; not converted",
                ing.namespace().unwrap_or_default(),
                ing.name_any()
            ));
        }
    }
}

/// The objects as one YAML stream, the notes as comments at its top.
pub fn to_yaml(c: &Converted) -> String {
    let mut out = String::from("# causeway convert: Gateway API objects for the Ingresses given\n");
    for n in &c.notes {
        out.push_str(&format!("# note: {n}\n"));
    }
    for o in &c.objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(o).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(c: &Converted) -> Vec<String> {
        c.objects
            .iter()
            .map(|o| {
                format!(
                    "{} {}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn an_https_ingress_with_redirect_becomes_a_gateway_routes_and_configurations() {
        let objects = vec![
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                   "metadata": {"name": "shop", "namespace": "apps", "annotations": {
                       "alb.ingress.kubernetes.io/scheme": "internet-facing",
                       "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTP\": 80}, {\"HTTPS\": 443}]",
                       "alb.ingress.kubernetes.io/certificate-arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
                       "alb.ingress.kubernetes.io/ssl-redirect": "443",
                       "alb.ingress.kubernetes.io/target-type": "ip",
                       "alb.ingress.kubernetes.io/wafv2-acl-arn": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/x/1"}},
                   "spec": {"ingressClassName": "alb", "rules": [
                       {"host": "shop.example.com", "http": {"paths": [
                           {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 80}}}},
                           {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "apps"},
                   "spec": {"ports": [{"name": "http", "port": 8080}]}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "apps"},
                   "spec": {"ports": [{"port": 80}]}}),
        ];
        let c = convert(&objects, &AlbSettings::default(), "c1", "alb");
        assert_eq!(
            kinds(&c),
            vec![
                "Gateway shop",
                "LoadBalancerConfiguration shop",
                "HTTPRoute shop-ssl-redirect",
                "HTTPRoute shop",
                "TargetGroupConfiguration api",
                "TargetGroupConfiguration web",
            ]
        );
        let gw = &c.objects[0];
        assert_eq!(
            gw["spec"]["listeners"],
            json!([
            {"name": "http-80", "port": 80, "protocol": "HTTP"},
            {"name": "https-443", "port": 443, "protocol": "HTTPS"}])
        );
        let lbc = &c.objects[1]["spec"];
        assert_eq!(lbc["scheme"], "internet-facing");
        assert_eq!(
            lbc["listenerConfigurations"][0]["defaultCertificate"],
            "arn:aws:acm:us-east-1:123456789012:certificate/abc"
        );
        let redirect = &c.objects[2]["spec"];
        assert_eq!(redirect["parentRefs"][0]["sectionName"], "http-80");
        assert_eq!(
            redirect["rules"][0]["filters"][0]["requestRedirect"]["scheme"],
            "https"
        );
        let route = &c.objects[3]["spec"];
        assert_eq!(route["hostnames"], json!(["shop.example.com"]));
        assert_eq!(
            route["parentRefs"],
            json!([{"name": "shop", "namespace": "apps", "sectionName": "https-443"}])
        );
        assert_eq!(
            route["rules"][1]["backendRefs"][0],
            json!({"name": "web", "port": 8080})
        );
        assert_eq!(
            c.objects[4]["spec"]["defaultConfiguration"]["targetType"],
            "ip"
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("wafv2-acl-arn") && n.contains("no Gateway equivalent")),
            "{:?}",
            c.notes
        );
        let yaml = to_yaml(&c);
        assert!(yaml.starts_with("# causeway convert"), "{yaml}");
        assert!(yaml.contains("kind: HTTPRoute"), "{yaml}");
    }
}
