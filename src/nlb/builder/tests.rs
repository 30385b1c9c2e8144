use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use super::*;
use crate::alb::builder::tests_support::{certs, subnets};
use crate::alb::observed::Observed;
use crate::alb::plan::{plan, sim::Sim};

fn svc(annotations: Value, spec: Value) -> Service {
    let mut s = json!({"type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}]});
    if let (Some(base), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "echo", "namespace": "ns", "annotations": annotations},
        "spec": s,
    }))
    .unwrap()
}

fn a(pairs: &[(&str, &str)]) -> Value {
    let m: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (format!("{}{k}", ann::PREFIX), Value::String((*v).into())))
        .collect();
    Value::Object(m)
}

fn build_it(s: &Service) -> Result<GroupModel, Problem> {
    let tags = Tags::new();
    let unmanaged = BTreeSet::new();
    let sn = subnets();
    let cs = certs();
    let svcs = BTreeMap::new();
    build(
        s,
        &Environment {
            cluster: "c1",
            default_tags: &tags,
            external_managed_tags: &unmanaged,
            default_target_type: TargetType::Instance,
            services: &svcs,
            subnets: Some(&sn),
            certificates: Some(&cs),
            security_groups: None,
            target_groups: None,
            oidc_clients: None,
            web_acls: None,
            trust_stores: None,
        },
    )
}

#[test]
fn a_plain_service_gets_the_peers_defaults() {
    let m = build_it(&svc(json!({}), json!({}))).unwrap();
    assert_eq!(m.kind, StackKind::Service);
    assert_eq!(m.stack, "ns/echo");
    let lb = &m.load_balancers[0];
    assert_eq!(lb.kind, LoadBalancerKind::Network);
    assert_eq!(lb.scheme, Scheme::Internal);
    assert_eq!(lb.subnets, ["subnet-priv-a", "subnet-priv-b"]);
    assert_eq!(lb.tags["service.k8s.aws/stack"], "ns/echo");
    assert_eq!(lb.tags["service.k8s.aws/resource"], "LoadBalancer");
    assert_eq!(lb.tags[TAG_CLUSTER], "c1");
    assert!(!lb.tags.contains_key(TAG_STACK), "no Ingress stack tag");
    assert!(
        lb.name.len() <= 32 && lb.name.starts_with("k8s-ns-echo-"),
        "{}",
        lb.name
    );
    assert_eq!(lb.listeners.len(), 1);
    let l = &lb.listeners[0];
    assert_eq!((l.port, l.protocol), (80, Protocol::Tcp));
    assert!(l.ssl_policy.is_none() && l.certificates.is_empty());
    let tg = &m.target_groups[0];
    assert_eq!(l.default_action, Action::forward_to(&tg.name));
    assert_eq!(tg.key, "ns/echo:80");
    assert_eq!(
        (tg.protocol, tg.port, tg.target_type),
        (Protocol::Tcp, 30080, TargetType::Instance)
    );
    assert_eq!(
        tg.health_check,
        HealthCheck {
            path: String::new(),
            port: "traffic-port".into(),
            protocol: Protocol::Tcp,
            interval_seconds: 10,
            timeout_seconds: 10,
            healthy_threshold: 3,
            unhealthy_threshold: 3,
            success_codes: String::new(),
            grpc: false,
        }
    );
    // The managed frontend group opens the listener to everyone; the backend group is what
    // the binding's rule lets reach the targets.
    let front = m
        .security_groups
        .iter()
        .find(|s| s.key == "ManagedLBSecurityGroup")
        .unwrap();
    assert_eq!(
        front.ingress.iter().collect::<Vec<_>>(),
        [&SgRule::tcp(80, "0.0.0.0/0")]
    );
    assert_eq!(
        front.tags["service.k8s.aws/resource"],
        "ManagedLBSecurityGroup"
    );
    assert_eq!(tg.binding.backend_security_group, "BackendSecurityGroup");
    assert_eq!(tg.binding.target_port, ServicePortRef::Number(30080));
    assert_eq!(
        lb.security_groups,
        ["ManagedLBSecurityGroup", "BackendSecurityGroup"]
    );
}

#[test]
fn ip_targets_tls_udp_and_tcp_udp() {
    let s = svc(
        a(&[
            ("nlb-target-type", "ip"),
            ("scheme", "internet-facing"),
            (
                "ssl-cert",
                "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            ),
            ("ssl-ports", "https"),
            ("alpn-policy", "HTTP2Preferred"),
            ("enable-tcp-udp-listener", "true"),
        ]),
        json!({"ports": [
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
            {"name": "dns-tcp", "port": 53, "targetPort": 5353, "protocol": "TCP"},
            {"name": "dns-udp", "port": 53, "targetPort": 5353, "protocol": "UDP"},
            {"name": "syslog", "port": 514, "targetPort": "syslog", "protocol": "UDP"},
        ]}),
    );
    let m = build_it(&s).unwrap();
    let lb = &m.load_balancers[0];
    assert_eq!(lb.scheme, Scheme::InternetFacing);
    assert_eq!(lb.subnets, ["subnet-pub-a", "subnet-pub-b"]);
    let by_port: BTreeMap<i32, &ListenerModel> = lb.listeners.iter().map(|l| (l.port, l)).collect();
    assert_eq!(by_port[&443].protocol, Protocol::Tls);
    assert_eq!(
        by_port[&443].certificates,
        ["arn:aws:acm:us-east-1:123456789012:certificate/abc"]
    );
    assert_eq!(
        by_port[&443].ssl_policy.as_deref(),
        Some(DEFAULT_SSL_POLICY)
    );
    assert_eq!(by_port[&443].alpn_policy.as_deref(), Some("HTTP2Preferred"));
    assert_eq!(by_port[&53].protocol, Protocol::TcpUdp);
    assert_eq!(by_port[&514].protocol, Protocol::Udp);
    let tg = |port: i32| {
        m.target_groups
            .iter()
            .find(|t| t.key == format!("ns/echo:{port}"))
            .unwrap()
    };
    // TLS terminates at the NLB: plain TCP to the pods, on their port.
    assert_eq!((tg(443).protocol, tg(443).port), (Protocol::Tcp, 8443));
    assert_eq!(tg(53).protocol, Protocol::TcpUdp);
    assert_eq!(
        tg(514).binding.target_port,
        ServicePortRef::Name("syslog".into())
    );
    let front = &m.security_groups[0];
    assert!(front.ingress.contains(&SgRule {
        port: 53,
        cidr: "0.0.0.0/0".into(),
        protocol: IpProtocol::Udp
    }));
    assert!(front.ingress.contains(&SgRule::tcp(53, "0.0.0.0/0")));
    assert!(front.ingress.contains(&SgRule {
        port: 514,
        cidr: "0.0.0.0/0".into(),
        protocol: IpProtocol::Udp
    }));
}

#[test]
fn proxy_protocol_attributes_source_ranges_and_local_traffic() {
    let mut anns = a(&[
        ("proxy-protocol-per-target-group", "80"),
        (
            "target-group-attributes",
            "deregistration_delay.timeout_seconds=30",
        ),
        (
            "attributes",
            "load_balancing.cross_zone.enabled=true,deletion_protection.enabled=false",
        ),
        ("additional-resource-tags", "team=edge"),
        ("listener-attributes.TCP-80", "tcp.idle_timeout.seconds=400"),
    ]);
    anns.as_object_mut()
        .unwrap()
        .insert("other".into(), json!("x"));
    let s = svc(
        anns,
        json!({"externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
               "loadBalancerSourceRanges": ["10.0.0.0/8"],
               "ports": [
                   {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
                   {"name": "alt", "port": 81, "targetPort": 8081, "nodePort": 30081}]}),
    );
    let m = build_it(&s).unwrap();
    let tg80 = m
        .target_groups
        .iter()
        .find(|t| t.key == "ns/echo:80")
        .unwrap();
    let tg81 = m
        .target_groups
        .iter()
        .find(|t| t.key == "ns/echo:81")
        .unwrap();
    assert_eq!(tg80.attributes["proxy_protocol_v2.enabled"], "true");
    assert_eq!(tg81.attributes["proxy_protocol_v2.enabled"], "false");
    assert_eq!(
        tg80.attributes["deregistration_delay.timeout_seconds"],
        "30"
    );
    // Local: kube-proxy's health check on the health check node port, reachable from the NLB.
    assert_eq!(tg80.health_check.protocol, Protocol::Http);
    assert_eq!(tg80.health_check.path, "/healthz");
    assert_eq!(tg80.health_check.port, "32000");
    assert_eq!(
        (
            tg80.health_check.interval_seconds,
            tg80.health_check.timeout_seconds
        ),
        (10, 6)
    );
    assert_eq!(tg80.binding.health_check_port, Some(32000));
    let lb = &m.load_balancers[0];
    assert_eq!(lb.attributes["load_balancing.cross_zone.enabled"], "true");
    assert_eq!(lb.tags["team"], "edge");
    assert_eq!(
        lb.listeners[0].attributes["tcp.idle_timeout.seconds"],
        "400"
    );
    let front = &m.security_groups[0];
    assert!(
        front.ingress.iter().all(|r| r.cidr == "10.0.0.0/8"),
        "{:?}",
        front.ingress
    );
}

#[test]
fn bad_input_is_a_problem_never_a_model() {
    let cases: Vec<(Service, &str)> = vec![
        (
            svc(a(&[("scheme", "public")]), json!({})),
            reason::INVALID_ANNOTATION,
        ),
        (
            svc(a(&[("nlb-target-type", "pod")]), json!({})),
            reason::INVALID_ANNOTATION,
        ),
        (
            svc(
                json!({}),
                json!({"ports": [{"port": 80, "protocol": "SCTP", "nodePort": 30080}]}),
            ),
            reason::UNSUPPORTED_PORT,
        ),
        (
            svc(
                json!({}),
                json!({"ports": [
                {"name": "a", "port": 53, "protocol": "TCP", "nodePort": 30053},
                {"name": "b", "port": 53, "protocol": "UDP", "nodePort": 30054}]}),
            ),
            reason::UNSUPPORTED_PORT,
        ),
        (
            svc(a(&[("ssl-ports", "80")]), json!({})),
            reason::CERTIFICATE_NOT_FOUND,
        ),
        (
            svc(
                a(&[(
                    "ssl-cert",
                    "arn:aws:acm:us-east-1:123456789012:certificate/nope",
                )]),
                json!({}),
            ),
            reason::CERTIFICATE_NOT_FOUND,
        ),
        (
            svc(a(&[("subnets", "subnet-nope")]), json!({})),
            reason::NO_SUBNETS,
        ),
        (
            svc(
                a(&[
                    ("scheme", "internet-facing"),
                    ("eip-allocations", "eipalloc-1"),
                ]),
                json!({}),
            ),
            reason::INVALID_ANNOTATION,
        ),
        (
            svc(
                a(&[("eip-allocations", "eipalloc-1,eipalloc-2")]),
                json!({}),
            ),
            reason::INVALID_ANNOTATION,
        ),
        (
            svc(
                json!({}),
                json!({"ports": [{"port": 80, "targetPort": 8080}]}),
            ),
            reason::NODE_PORT_MISSING,
        ),
        (
            svc(a(&[("attributes", "no.such=1")]), json!({})),
            reason::INVALID_ATTRIBUTE,
        ),
        (
            svc(a(&[("quic-enabled-ports", "443")]), json!({})),
            reason::UNSUPPORTED_ANNOTATION,
        ),
        (
            svc(
                a(&[("disable-nlb-sg", "true")]),
                json!({"loadBalancerSourceRanges": ["10.0.0.0/8"]}),
            ),
            reason::CONFLICTING_SETTINGS,
        ),
        (
            svc(a(&[("healthcheck-interval", "1")]), json!({})),
            reason::INVALID_ANNOTATION,
        ),
    ];
    for (s, want) in cases {
        let got = build_it(&s).expect_err("a problem");
        assert_eq!(
            got.reason, want,
            "{:?}: {}",
            s.metadata.annotations, got.message
        );
    }
}

#[test]
fn eips_and_private_addresses_follow_the_subnets() {
    let s = svc(
        a(&[
            ("scheme", "internet-facing"),
            ("eip-allocations", "eipalloc-a,eipalloc-b"),
        ]),
        json!({}),
    );
    let lb = build_it(&s).unwrap().load_balancers.remove(0);
    assert_eq!(
        lb.subnet_mappings["subnet-pub-a"].allocation_id.as_deref(),
        Some("eipalloc-a")
    );
    assert_eq!(
        lb.subnet_mappings["subnet-pub-b"].allocation_id.as_deref(),
        Some("eipalloc-b")
    );
    let s = svc(
        a(&[("private-ipv4-addresses", "10.0.1.10,10.0.2.10")]),
        json!({}),
    );
    let lb = build_it(&s).unwrap().load_balancers.remove(0);
    assert_eq!(
        lb.subnet_mappings["subnet-priv-a"].private_ipv4.as_deref(),
        Some("10.0.1.10")
    );
}

#[test]
fn ownership_by_class_or_legacy_annotation() {
    assert!(ann::ours(&svc(json!({}), json!({})), ann::DEFAULT_CLASS));
    assert!(!ann::ours(
        &svc(json!({}), json!({"loadBalancerClass": "other"})),
        ann::DEFAULT_CLASS
    ));
    assert!(!ann::ours(
        &svc(json!({}), json!({"loadBalancerClass": null})),
        ann::DEFAULT_CLASS
    ));
    assert!(ann::ours(
        &svc(
            a(&[("type", "external")]),
            json!({"loadBalancerClass": null})
        ),
        ann::DEFAULT_CLASS
    ));
    let legacy = svc(a(&[("type", "nlb-ip")]), json!({"loadBalancerClass": null}));
    assert!(ann::ours(&legacy, ann::DEFAULT_CLASS));
    assert_eq!(
        build_it(&legacy).unwrap().target_groups[0].target_type,
        TargetType::Ip
    );
    assert!(!ann::ours(
        &svc(json!({}), json!({"type": "ClusterIP"})),
        ann::DEFAULT_CLASS
    ));
}

#[test]
fn the_webhook_sets_our_class_only_on_classless_load_balancer_services() {
    let class = "service.k8s.aws/nlb";
    let classless = svc(json!({}), json!({"loadBalancerClass": null}));
    assert_eq!(
        ann::class_patch(&classless, class),
        Some(json!([{"op": "add", "path": "/spec/loadBalancerClass", "value": class}]))
    );
    assert_eq!(
        ann::class_patch(&svc(json!({}), json!({})), class),
        None,
        "has a class"
    );
    let legacy = svc(a(&[("type", "nlb")]), json!({"loadBalancerClass": null}));
    assert_eq!(
        ann::class_patch(&legacy, class),
        None,
        "picks its controller itself"
    );
    let cluster_ip = svc(
        json!({}),
        json!({"type": "ClusterIP", "loadBalancerClass": null}),
    );
    assert_eq!(ann::class_patch(&cluster_ip, class), None);
}

#[test]
fn the_model_converges_and_an_unchanged_service_plans_nothing() {
    let s = svc(
        a(&[
            ("proxy-protocol", "*"),
            (
                "ssl-cert",
                "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            ),
        ]),
        json!({}),
    );
    let m = build_it(&s).unwrap();
    let mut sim = Sim::new(Observed::default());
    let first = plan(&m, &sim.state, "c1");
    assert!(first.iter().any(|s| matches!(
        s,
        crate::alb::plan::Step::CreateLoadBalancer {
            kind: LoadBalancerKind::Network,
            ..
        }
    )));
    sim.apply(&first);
    assert_eq!(plan(&m, &sim.state, "c1"), []);
    // Deleting the Service: everything of its stack goes.
    let gone = GroupModel {
        kind: StackKind::Service,
        ..GroupModel::empty("ns/echo")
    };
    sim.apply(&plan(&gone, &sim.state, "c1"));
    assert!(sim.state.is_empty(), "{:?}", sim.state);
}

#[test]
fn private_link_filtering_is_set_at_creation_and_changed_only_when_aws_reports_otherwise() {
    use crate::alb::plan::Step;
    let off = build_it(&svc(
        a(&[("inbound-sg-rules-on-private-link-traffic", "off")]),
        json!({}),
    ))
    .unwrap();
    assert_eq!(off.load_balancers[0].private_link_inbound, Some(false));
    let mut sim = Sim::new(Observed::default());
    let steps = plan(&off, &sim.state, "c1");
    assert!(steps.iter().any(|s| matches!(
        s,
        Step::CreateLoadBalancer {
            private_link_inbound: Some(false),
            ..
        }
    )));
    sim.apply(&steps);
    assert_eq!(plan(&off, &sim.state, "c1"), []);
    let on = build_it(&svc(
        a(&[("inbound-sg-rules-on-private-link-traffic", "on")]),
        json!({}),
    ))
    .unwrap();
    let steps = plan(&on, &sim.state, "c1");
    assert!(
        matches!(
            steps.as_slice(),
            [Step::SetSecurityGroups {
                private_link_inbound: Some(true),
                ..
            }]
        ),
        "{steps:?}"
    );
    // Not reported (an emulator): nothing to compare, nothing written.
    sim.state.load_balancers[0].private_link_inbound = None;
    assert_eq!(plan(&on, &sim.state, "c1"), []);
    let bad = svc(
        a(&[
            ("inbound-sg-rules-on-private-link-traffic", "on"),
            ("disable-nlb-sg", "true"),
        ]),
        json!({}),
    );
    assert_eq!(
        build_it(&bad).unwrap_err().reason,
        reason::CONFLICTING_SETTINGS
    );
}

#[test]
fn an_ingress_stack_of_the_same_name_owns_nothing_of_the_service() {
    let m = build_it(&svc(json!({}), json!({}))).unwrap();
    let mut sim = Sim::new(Observed::default());
    sim.apply(&plan(&m, &sim.state, "c1"));
    // The Ingress group of one `ns/echo` plans against the same observed state: not its own.
    assert_eq!(plan(&GroupModel::empty("ns/echo"), &sim.state, "c1"), []);
}
