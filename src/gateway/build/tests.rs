use super::*;
use crate::alb::builder::tests_support::{certs, service, subnets};
use serde_json::json;

fn gateway(listeners: serde_json::Value) -> Gateway {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra", "uid": "u1"},
        "spec": {"gatewayClassName": "alb", "listeners": listeners}
    }))
    .unwrap()
}

fn route(ns: &str, name: &str, spec: serde_json::Value) -> HttpRoute {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns, "generation": 3,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": spec
    }))
    .unwrap()
}

fn grant(ns: &str, from_ns: &str) -> ReferenceGrant {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": ns},
        "spec": {"from": [{"group": GROUP, "kind": "HTTPRoute", "namespace": from_ns}],
                 "to": [{"group": "", "kind": "Service"}]}
    }))
    .unwrap()
}

fn ip_targets(ns: &str, svc: &str) -> TargetGroupConfiguration {
    serde_json::from_value(json!({
        "apiVersion": "gateway.k8s.aws/v1", "kind": "TargetGroupConfiguration",
        "metadata": {"name": svc, "namespace": ns},
        "spec": {"targetReference": {"name": svc}, "defaultConfiguration": {"targetType": "ip"}}
    }))
    .unwrap()
}

struct World {
    services: BTreeMap<(String, String), k8s_openapi::api::core::v1::Service>,
    grants: Vec<ReferenceGrant>,
    tgcs: Vec<TargetGroupConfiguration>,
}

impl World {
    fn new() -> Self {
        let mut services = BTreeMap::new();
        for (ns, name, node_port) in [
            ("apps", "web", 30080),
            ("apps", "web-canary", 30081),
            ("shared", "api", 30082),
        ] {
            services.insert(
                (ns.to_string(), name.to_string()),
                service(ns, name, 80, Some(node_port), json!({})),
            );
        }
        World {
            services,
            grants: Vec::new(),
            tgcs: vec![ip_targets("apps", "web")],
        }
    }

    fn build(&self, gw: &Gateway, routes: &[HttpRoute]) -> Built {
        let tags = Tags::new();
        let unmanaged = BTreeSet::new();
        let sn = subnets();
        let cs = certs();
        let env = Environment {
            cluster: "c1",
            default_tags: &tags,
            external_managed_tags: &unmanaged,
            default_target_type: TargetType::Instance,
            services: &self.services,
            subnets: Some(&sn),
            certificates: Some(&cs),
            security_groups: None,
            target_groups: None,
            oidc_clients: None,
            web_acls: None,
            trust_stores: None,
        };
        let labels = |_: &str| None;
        build(
            gw,
            &Inputs {
                env: &env,
                routes,
                grpc_routes: &[],
                grants: &self.grants,
                target_group_configs: &self.tgcs,
                namespace_labels: &labels,
                scheme: Scheme::InternetFacing,
                config: None,
            },
        )
    }
}

fn all_namespaces(listeners: serde_json::Value) -> Gateway {
    let mut ls = listeners;
    for l in ls.as_array_mut().unwrap() {
        l["allowedRoutes"] = json!({"namespaces": {"from": "All"}});
    }
    gateway(ls)
}

#[test]
fn an_https_gateway_with_two_routes_becomes_one_alb_with_rules_in_precedence_order() {
    let gw = all_namespaces(json!([
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "*.causeway.test"},
    ]));
    let shop = route(
        "apps",
        "shop",
        json!({
            "parentRefs": [{"name": "gw", "namespace": "infra", "sectionName": "https"}],
            "hostnames": ["shop.causeway.test"],
            "rules": [
                {"backendRefs": [{"name": "web", "port": 80, "weight": 90}, {"name": "web-canary", "port": 80, "weight": 10}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                 "backendRefs": [{"name": "api", "namespace": "shared", "port": 80}]},
            ]
        }),
    );
    let redirect = route(
        "infra",
        "to-https",
        json!({
            "parentRefs": [{"name": "gw", "sectionName": "http"}],
            "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]
        }),
    );
    let mut w = World::new();
    // Without a ReferenceGrant the cross-namespace backend is refused alone.
    let b = w.build(&gw, &[shop.clone(), redirect.clone()]);
    let shop_status = b.routes.iter().find(|s| s.name == "shop").unwrap();
    assert_eq!(shop_status.accepted, Ok(()));
    assert_eq!(
        shop_status.resolved_refs.as_ref().unwrap_err().0,
        reason::REF_NOT_PERMITTED
    );
    let https = &b.model.load_balancers[0].listeners[1];
    assert!(
        matches!(&https.rules[0].action, Action::FixedResponse { status_code, .. } if status_code == "500")
    );

    w.grants.push(grant("shared", "apps"));
    let b = w.build(&gw, &[shop, redirect]);
    assert!(b.problem.is_none());
    assert!(
        b.routes
            .iter()
            .all(|s| s.accepted.is_ok() && s.resolved_refs.is_ok()),
        "{:?}",
        b.routes
    );
    let lb = &b.model.load_balancers[0];
    assert_eq!(b.model.kind, StackKind::AlbGateway);
    assert_eq!(
        lb.tags.get("gateway.k8s.aws.alb/stack").map(String::as_str),
        Some("infra/gw")
    );
    assert_eq!(
        lb.subnets,
        vec!["subnet-pub-a".to_string(), "subnet-pub-b".to_string()]
    );
    assert_eq!(
        lb.listeners
            .iter()
            .map(|l| (l.port, l.protocol))
            .collect::<Vec<_>>(),
        vec![(80, Protocol::Http), (443, Protocol::Https)]
    );
    let (http, https) = (&lb.listeners[0], &lb.listeners[1]);
    assert!(
        matches!(&http.rules[0].action, Action::Redirect(r) if r.protocol == "HTTPS" && r.status_code == "HTTP_301")
    );
    assert_eq!(https.certificates, vec![certs()[0].arn.clone()]);
    // /api (longer prefix) before / on the same host.
    assert_eq!(https.rules.len(), 2);
    assert_eq!(https.rules[0].priority, 1);
    assert!(
        https.rules[0]
            .conditions
            .contains(&RuleCondition::PathPattern(BTreeSet::from([
                "/api".into(),
                "/api/*".into()
            ])))
    );
    assert_eq!(
        https.rules[0].conditions[0],
        RuleCondition::HostHeader(BTreeSet::from(["shop.causeway.test".into()]))
    );
    let Action::Forward { targets, .. } = &https.rules[1].action else {
        panic!("forward")
    };
    assert_eq!(
        targets.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
        vec![90, 10]
    );
    // web has ip targets (its TargetGroupConfiguration), the others instance targets.
    let by_service: BTreeMap<&str, TargetType> = b
        .model
        .target_groups
        .iter()
        .map(|t| (t.binding.service.as_str(), t.target_type))
        .collect();
    assert_eq!(
        by_service,
        BTreeMap::from([
            ("api", TargetType::Instance),
            ("web", TargetType::Ip),
            ("web-canary", TargetType::Instance)
        ])
    );
    assert!(
        b.model
            .target_groups
            .iter()
            .all(|t| t.tags.get("gateway.k8s.aws.alb/resource") == Some(&t.key))
    );
    assert_eq!(
        b.listeners
            .iter()
            .map(|l| l.attached_routes)
            .collect::<Vec<_>>(),
        vec![1, 1]
    );
}

#[test]
fn a_bad_route_is_refused_next_to_good_ones_and_a_route_elsewhere_is_not_attached() {
    let gw = gateway(json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    let good = route(
        "infra",
        "good",
        json!({"parentRefs": [{"name": "gw"}],
        "rules": [{"backendRefs": [{"name": "web", "namespace": "apps", "port": 80}]}]}),
    );
    let bad = route(
        "infra",
        "bad",
        json!({"parentRefs": [{"name": "gw"}],
        "rules": [{"matches": [{"path": {"value": "/x"}}],
                   "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "web", "port": 80}}}],
                   "backendRefs": [{"name": "web", "port": 80}]}]}),
    );
    let foreign = route(
        "apps",
        "foreign",
        json!({"parentRefs": [{"name": "gw", "namespace": "infra"}],
        "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}),
    );
    let other = route(
        "infra",
        "other",
        json!({"parentRefs": [{"name": "another-gateway"}],
        "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}),
    );
    let mut w = World::new();
    w.grants.push(grant("apps", "infra"));
    let b = w.build(&gw, &[good, bad, foreign, other]);
    let status = |n: &str| b.routes.iter().find(|s| s.name == n).cloned();
    assert_eq!(status("good").unwrap().refused_rules, vec![]);
    let bad = status("bad").unwrap();
    assert_eq!(bad.accepted, Ok(()));
    assert_eq!(bad.refused_rules[0].1, reason::UNSUPPORTED_VALUE);
    assert_eq!(
        status("foreign").unwrap().accepted.unwrap_err().0,
        reason::NOT_ALLOWED_BY_LISTENERS
    );
    assert!(
        status("other").is_none(),
        "a route of another Gateway gets no status from this one"
    );
    let rules = &b.model.load_balancers[0].listeners[0].rules;
    assert_eq!(rules.len(), 1, "only the good route's rule");
    assert_eq!(rules[0].member, "infra/good");
}

#[test]
fn an_https_listener_without_a_certificate_is_reported_and_not_created() {
    let gw = gateway(json!([
        {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "shop.elsewhere.test"},
        {"name": "http", "port": 80, "protocol": "HTTP"},
    ]));
    let b = World::new().build(&gw, &[]);
    assert_eq!(
        b.listener_problems.get("https").unwrap().0,
        reason::INVALID_CERTIFICATE_REF
    );
    assert_eq!(
        b.model.load_balancers[0]
            .listeners
            .iter()
            .map(|l| l.port)
            .collect::<Vec<_>>(),
        vec![80]
    );
}
