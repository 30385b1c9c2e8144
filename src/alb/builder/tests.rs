use super::tests_support::*;
use super::*;
use crate::alb::annotations::{Problem, reason};
use crate::alb::class::{GroupKey, Membership};
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use serde_json::json;

fn services() -> BTreeMap<(String, String), Service> {
    let mut m = BTreeMap::new();
    m.insert(
        ("ns".into(), "web".into()),
        service("ns", "web", 80, Some(30080), json!({})),
    );
    m.insert(("ns".into(), "api".into()), service("ns", "api", 80, None, json!({"alb.ingress.kubernetes.io/target-type":"ip","alb.ingress.kubernetes.io/healthcheck-path":"/healthz"})));
    m
}

fn member<'a>(ing: &'a Ingress, group: Option<&str>, order: i32) -> Member<'a> {
    Member {
        ingress: ing,
        membership: Membership {
            group: match group {
                Some(g) => GroupKey::Explicit(g.into()),
                None => GroupKey::Implicit {
                    namespace: ing.namespace().unwrap(),
                    name: ing.name_any(),
                },
            },
            order,
            params: None,
            problem: None,
        },
        last_accepted: None,
    }
}

pub(super) fn build_with(
    stack: &str,
    members: &[Member<'_>],
    svcs: &BTreeMap<(String, String), Service>,
) -> BuildOutput {
    let tags = Tags::new();
    let sn = subnets();
    let cs = certs();
    build(
        stack,
        members,
        &Environment {
            cluster: "c1",
            default_tags: &tags,
            external_managed_tags: &BTreeSet::new(),
            default_target_type: TargetType::Instance,
            services: svcs,
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
fn single_ingress_gives_one_alb_listener_rule_and_target_group() {
    let ing = ingress(
        "ns",
        "web",
        json!({}),
        json!([path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let svcs = services();
    let out = build_with("ns/web", &[member(&ing, None, 0)], &svcs);
    assert!(out.members[0].problem.is_none(), "{:?}", out.members);
    let m = &out.model;
    assert_eq!(m.load_balancers.len(), 1);
    let lb = &m.load_balancers[0];
    assert_eq!(lb.scheme, Scheme::Internal);
    assert_eq!(lb.subnets, vec!["subnet-priv-a", "subnet-priv-b"]);
    assert!(lb.name.len() <= 32);
    assert_eq!(lb.tags[TAG_CLUSTER], "c1");
    assert_eq!(lb.tags[TAG_STACK], "ns/web");
    assert_eq!(lb.tags[TAG_RESOURCE], "LoadBalancer");
    assert_eq!(lb.listeners.len(), 1);
    let l = &lb.listeners[0];
    assert_eq!((l.port, l.protocol), (80, Protocol::Http));
    assert_eq!(l.default_action, Action::not_found());
    assert_eq!(l.rules.len(), 1);
    assert_eq!(
        l.rules[0].conditions,
        vec![
            RuleCondition::HostHeader(["a.causeway.test".to_string()].into()),
            RuleCondition::PathPattern(["/*".to_string()].into()),
        ]
    );
    assert_eq!(m.target_groups.len(), 1);
    let tg = &m.target_groups[0];
    assert_eq!(tg.key, "ns/web-web:80");
    assert_eq!(tg.target_type, TargetType::Instance);
    assert_eq!(tg.port, 30080);
    assert_eq!(tg.health_check.interval_seconds, 15);
    assert_eq!(tg.tags[TAG_RESOURCE], "ns/web-web:80");
    assert_eq!(l.rules[0].action, Action::forward_to(&tg.name));
    // Frontend SG opens port 80 to the world; backend SG has no inbound rules.
    assert_eq!(m.security_groups.len(), 2);
    assert!(m.security_groups[0].ingress.contains(&SgRule {
        protocol: IpProtocol::Tcp,
        port: 80,
        cidr: "0.0.0.0/0".into()
    }));
    assert!(m.security_groups[1].ingress.is_empty());
}

#[test]
fn path_types_have_their_semantics() {
    let ing = ingress(
        "ns",
        "p",
        json!({}),
        json!([{"http":{"paths":[
            {"path":"/exact","pathType":"Exact","backend":{"service":{"name":"web","port":{"number":80}}}},
            {"path":"/pre/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}},
            {"path":"/img/*.png","pathType":"ImplementationSpecific","backend":{"service":{"name":"web","port":{"number":80}}}}
        ]}}]),
    );
    let svcs = services();
    let out = build_with("ns/p", &[member(&ing, None, 0)], &svcs);
    let rules = &out.model.load_balancers[0].listeners[0].rules;
    let pattern = |i: usize| rules[i].conditions[0].clone();
    assert_eq!(
        pattern(0),
        RuleCondition::PathPattern(["/exact".to_string()].into())
    );
    assert_eq!(
        pattern(1),
        RuleCondition::PathPattern(["/pre".to_string(), "/pre/*".to_string()].into())
    );
    assert_eq!(
        pattern(2),
        RuleCondition::PathPattern(["/img/*.png".to_string()].into())
    );
}

#[test]
fn one_bad_member_is_excluded_and_the_others_keep_working() {
    let g = json!({"alb.ingress.kubernetes.io/group.name":"shop"});
    let a = ingress(
        "ns",
        "a",
        g.clone(),
        json!([path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let mut bad_anns = g.clone();
    bad_anns["alb.ingress.kubernetes.io/listen-ports"] = json!("[{\"HTTP\":80");
    let b = ingress(
        "ns",
        "b",
        bad_anns,
        json!([path_rule(Some("b.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let c = ingress(
        "ns",
        "c",
        g.clone(),
        json!([path_rule(Some("c.causeway.test"), "/", "Prefix", "api", 80)]),
    );
    let mut conflicting = g.clone();
    conflicting["alb.ingress.kubernetes.io/scheme"] = json!("internet-facing");
    let mut first = g.clone();
    first["alb.ingress.kubernetes.io/scheme"] = json!("internal");
    let a = {
        let mut a = a;
        a.metadata.annotations = Some(serde_json::from_value(first).unwrap());
        a
    };
    let d = ingress(
        "ns",
        "d",
        conflicting,
        json!([path_rule(Some("d.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let e = ingress(
        "ns",
        "e",
        g.clone(),
        json!([path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let f = ingress(
        "ns",
        "f",
        g,
        json!([path_rule(
            Some("f.causeway.test"),
            "/",
            "Prefix",
            "missing",
            80
        )]),
    );
    let svcs = services();
    let members = [
        member(&a, Some("shop"), 0),
        member(&b, Some("shop"), 0),
        member(&c, Some("shop"), 0),
        member(&d, Some("shop"), 0),
        member(&e, Some("shop"), 0),
        member(&f, Some("shop"), 0),
    ];
    let out = build_with("shop", &members, &svcs);
    let reason_of = |n: &str| {
        out.members
            .iter()
            .find(|m| m.name == n)
            .unwrap()
            .problem
            .as_ref()
            .map(|p| p.reason)
    };
    assert_eq!(reason_of("a"), None);
    assert_eq!(reason_of("b"), Some(reason::INVALID_ANNOTATION));
    assert_eq!(reason_of("c"), None);
    assert_eq!(reason_of("d"), Some(reason::CONFLICTING_SETTINGS));
    assert_eq!(reason_of("e"), Some(reason::DUPLICATE_RULE));
    assert_eq!(reason_of("f"), Some(reason::SERVICE_NOT_FOUND));
    let lb = &out.model.load_balancers[0];
    assert_eq!(lb.members, vec!["ns/a", "ns/c"]);
    assert_eq!(lb.rule_count(), 2);
    // The ip-mode Service annotation wins: api's target group is ip with its own health path.
    let api = out
        .model
        .target_groups
        .iter()
        .find(|t| t.key == "ns/c-api:80")
        .unwrap();
    assert_eq!(api.target_type, TargetType::Ip);
    assert_eq!(api.port, 8080);
    assert_eq!(api.health_check.path, "/healthz");
}

#[test]
fn a_rejected_change_keeps_the_last_accepted_configuration() {
    let g = json!({"alb.ingress.kubernetes.io/group.name":"shop","alb.ingress.kubernetes.io/scheme":"internal"});
    let a = ingress(
        "ns",
        "a",
        g.clone(),
        json!([path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let b = ingress(
        "ns",
        "b",
        g.clone(),
        json!([path_rule(Some("b.causeway.test"), "/", "Prefix", "api", 80)]),
    );
    let svcs = services();
    let good = build_with(
        "shop",
        &[member(&a, Some("shop"), 0), member(&b, Some("shop"), 0)],
        &svcs,
    );
    let snapshot_b = good.members[1]
        .accepted_spec
        .as_ref()
        .expect("served")
        .json();
    assert!(good.members.iter().all(|m| !m.serving_last_accepted));

    // b's next edit is malformed, then conflicting, then points at a missing Service: each
    // time, its last accepted rules stay and the model is the one that worked.
    let mut malformed = g.clone();
    malformed["alb.ingress.kubernetes.io/listen-ports"] = json!("[{\"HTTP\":80");
    let mut conflicting = g.clone();
    conflicting["alb.ingress.kubernetes.io/scheme"] = json!("internet-facing");
    let edits = [
        (malformed, "api", reason::INVALID_ANNOTATION),
        (conflicting, "api", reason::CONFLICTING_SETTINGS),
        (g.clone(), "missing", reason::SERVICE_NOT_FOUND),
    ];
    for (anns, svc, why) in edits {
        let b2 = ingress(
            "ns",
            "b",
            anns,
            json!([path_rule(Some("b2.causeway.test"), "/", "Prefix", svc, 80)]),
        );
        let mut mb = member(&b2, Some("shop"), 0);
        mb.last_accepted = Some(&snapshot_b);
        let out = build_with("shop", &[member(&a, Some("shop"), 0), mb], &svcs);
        let ob = &out.members[1];
        assert_eq!(ob.problem.as_ref().map(|p| p.reason), Some(why));
        assert!(ob.serving_last_accepted, "{why}");
        assert_eq!(ob.shard, Some(0));
        assert_eq!(
            ob.accepted_spec.as_ref().map(|s| s.json()),
            Some(snapshot_b.clone())
        );
        assert_eq!(out.model, good.model, "{why}");
    }

    // Without a snapshot (never accepted) the member is simply left out.
    let mut malformed = g.clone();
    malformed["alb.ingress.kubernetes.io/listen-ports"] = json!("nope");
    let b3 = ingress(
        "ns",
        "b",
        malformed,
        json!([path_rule(Some("b.causeway.test"), "/", "Prefix", "api", 80)]),
    );
    let out = build_with(
        "shop",
        &[member(&a, Some("shop"), 0), member(&b3, Some("shop"), 0)],
        &svcs,
    );
    assert!(!out.members[1].serving_last_accepted);
    assert_eq!(out.members[1].shard, None);
    assert_eq!(out.members[1].accepted_spec, None);
    assert_eq!(out.model.load_balancers[0].members, vec!["ns/a"]);

    // A snapshot never moves to another Ingress, and a membership problem (here: the
    // namespace may not join) gets no fallback.
    let other = ingress(
        "ns",
        "other",
        g.clone(),
        json!([path_rule(Some("o.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let mut mo = member(&other, Some("shop"), 0);
    mo.last_accepted = Some(&snapshot_b);
    let mut mb = member(&b, Some("shop"), 0);
    mb.last_accepted = Some(&snapshot_b);
    mb.membership.problem = Some(Problem::new(reason::NAMESPACE_NOT_ALLOWED, "no"));
    let out = build_with("shop", &[member(&a, Some("shop"), 0), mb, mo], &svcs);
    let lb = &out.model.load_balancers[0];
    assert_eq!(lb.members, vec!["ns/a", "ns/other"]);
    assert!(out.members.iter().all(|m| !m.serving_last_accepted));
}

#[test]
fn group_order_decides_rule_priority() {
    let g = |o: &str| json!({"alb.ingress.kubernetes.io/group.name":"g","alb.ingress.kubernetes.io/group.order":o});
    let a = ingress(
        "ns",
        "a",
        g("10"),
        json!([path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let b = ingress(
        "ns",
        "b",
        g("-5"),
        json!([path_rule(Some("b.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let svcs = services();
    let out = build_with(
        "g",
        &[member(&a, Some("g"), 10), member(&b, Some("g"), -5)],
        &svcs,
    );
    let rules = &out.model.load_balancers[0].listeners[0].rules;
    assert_eq!(rules[0].member, "ns/b");
    assert_eq!(rules[0].priority, 1);
    assert_eq!(rules[1].member, "ns/a");
}

#[test]
fn https_discovers_certificates_and_ssl_redirect_moves_http_to_a_redirect() {
    let anns = json!({
        "alb.ingress.kubernetes.io/listen-ports":"[{\"HTTP\":80},{\"HTTPS\":443}]",
        "alb.ingress.kubernetes.io/ssl-redirect":"443",
        "alb.ingress.kubernetes.io/scheme":"internet-facing",
    });
    let ing = ingress(
        "ns",
        "s",
        anns,
        json!([path_rule(
            Some("shop.causeway.test"),
            "/",
            "Prefix",
            "web",
            80
        )]),
    );
    let svcs = services();
    let out = build_with("ns/s", &[member(&ing, None, 0)], &svcs);
    assert!(out.members[0].problem.is_none(), "{:?}", out.members[0]);
    let lb = &out.model.load_balancers[0];
    assert_eq!(lb.subnets, vec!["subnet-pub-a", "subnet-pub-b"]);
    let http = &lb.listeners[0];
    assert!(
        matches!(&http.default_action, Action::Redirect(r) if r.protocol == "HTTPS" && r.port == "443")
    );
    assert!(http.rules.is_empty());
    let https = &lb.listeners[1];
    assert_eq!(https.certificates, vec![certs()[0].arn.clone()]);
    assert_eq!(https.ssl_policy.as_deref(), Some(DEFAULT_SSL_POLICY));
    assert_eq!(https.rules.len(), 1);

    let ing = ingress(
        "ns",
        "x",
        json!({"alb.ingress.kubernetes.io/listen-ports":"[{\"HTTPS\":443}]"}),
        json!([path_rule(
            Some("shop.elsewhere.test"),
            "/",
            "Prefix",
            "web",
            80
        )]),
    );
    let out = build_with("ns/x", &[member(&ing, None, 0)], &svcs);
    assert_eq!(
        out.members[0].problem.as_ref().unwrap().reason,
        reason::CERTIFICATE_NOT_FOUND
    );
    assert!(out.model.load_balancers.is_empty());
}

#[test]
fn actions_and_conditions_annotations() {
    let anns = json!({
        "alb.ingress.kubernetes.io/actions.split": r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"web","servicePort":"80","weight":70},{"serviceName":"api","servicePort":80,"weight":30}]}}"#,
        "alb.ingress.kubernetes.io/conditions.split": r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Canary","values":["yes"]}}]"#,
        "alb.ingress.kubernetes.io/actions.gone": r#"{"type":"fixed-response","fixedResponseConfig":{"contentType":"text/plain","statusCode":"410","messageBody":"gone"}}"#,
    });
    let ing = ingress(
        "ns",
        "a",
        anns,
        json!([{"http":{"paths":[
            {"path":"/split","pathType":"Exact","backend":{"service":{"name":"split","port":{"name":"use-annotation"}}}},
            {"path":"/gone","pathType":"Exact","backend":{"service":{"name":"gone","port":{"name":"use-annotation"}}}}
        ]}}]),
    );
    let svcs = services();
    let out = build_with("ns/a", &[member(&ing, None, 0)], &svcs);
    assert!(out.members[0].problem.is_none(), "{:?}", out.members[0]);
    let rules = &out.model.load_balancers[0].listeners[0].rules;
    let Action::Forward { targets, .. } = &rules[0].action else {
        panic!("{:?}", rules[0].action)
    };
    assert_eq!(
        targets.iter().map(|t| t.1).collect::<Vec<_>>(),
        vec![70, 30]
    );
    assert!(
        rules[0]
            .conditions
            .iter()
            .any(|c| matches!(c, RuleCondition::HttpHeader { name, .. } if name == "X-Canary"))
    );
    assert!(
        matches!(&rules[1].action, Action::FixedResponse { status_code, .. } if status_code == "410")
    );
    assert_eq!(out.model.target_groups.len(), 2);

    let bad = ingress(
        "ns",
        "b",
        json!({"alb.ingress.kubernetes.io/actions.x": r#"{"type":"teleport"}"#}),
        json!([{"http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"x","port":{"name":"use-annotation"}}}}]}}]),
    );
    let out = build_with("ns/b", &[member(&bad, None, 0)], &svcs);
    assert_eq!(
        out.members[0].problem.as_ref().unwrap().reason,
        reason::UNKNOWN_ACTION
    );
}

#[test]
fn instance_mode_without_a_node_port_is_a_problem() {
    let ing = ingress(
        "ns",
        "i",
        json!({"alb.ingress.kubernetes.io/target-type":"instance"}),
        json!([path_rule(None, "/", "Prefix", "api", 80)]),
    );
    let mut svcs = services();
    svcs.insert(
        ("ns".into(), "api".into()),
        service("ns", "api", 80, None, json!({})),
    );
    let out = build_with("ns/i", &[member(&ing, None, 0)], &svcs);
    assert_eq!(
        out.members[0].problem.as_ref().unwrap().reason,
        reason::SERVICE_PORT_NOT_FOUND
    );
}

#[test]
fn more_than_100_rules_split_deterministically() {
    let g = json!({"alb.ingress.kubernetes.io/group.name":"big"});
    let ings: Vec<Ingress> = (0..5)
        .map(|i| {
            let rules: Vec<serde_json::Value> = (0..30)
                .map(|p| {
                    path_rule(
                        Some(&format!("h{i}.causeway.test")),
                        &format!("/p{p}"),
                        "Exact",
                        "web",
                        80,
                    )
                })
                .collect();
            ingress("ns", &format!("m{i}"), g.clone(), json!(rules))
        })
        .collect();
    let members: Vec<Member<'_>> = ings.iter().map(|i| member(i, Some("big"), 0)).collect();
    let svcs = services();
    let out = build_with("big", &members, &svcs);
    assert!(out.members.iter().all(|m| m.problem.is_none()));
    let lbs = &out.model.load_balancers;
    assert_eq!(lbs.len(), 2);
    assert_eq!(lbs[0].rule_count(), 90);
    assert_eq!(lbs[1].rule_count(), 60);
    assert_eq!(lbs[1].key, "LoadBalancer-1");
    assert_ne!(lbs[0].name, lbs[1].name);
    assert!(out.notes.iter().any(|n| n.contains("split onto 2 ALBs")));
    let again = build_with("big", &members, &svcs);
    assert_eq!(again.model, out.model);
}

#[test]
fn subnet_discovery_needs_two_azs() {
    let ing = ingress(
        "ns",
        "w",
        json!({}),
        json!([path_rule(None, "/", "Prefix", "web", 80)]),
    );
    let svcs = services();
    let tags = Tags::new();
    let one_az = vec![subnets()[2].clone()];
    let out = build(
        "ns/w",
        &[member(&ing, None, 0)],
        &Environment {
            cluster: "c1",
            default_tags: &tags,
            external_managed_tags: &BTreeSet::new(),
            default_target_type: TargetType::Instance,
            services: &svcs,
            subnets: Some(&one_az),
            certificates: None,
            security_groups: None,
            target_groups: None,
            oidc_clients: None,
            web_acls: None,
            trust_stores: None,
        },
    );
    assert_eq!(
        out.members[0].problem.as_ref().unwrap().reason,
        reason::NO_SUBNETS
    );
}

#[test]
fn security_groups_annotation_replaces_the_managed_frontend_group() {
    let with = |extra: serde_json::Value| {
        let mut anns = json!({"alb.ingress.kubernetes.io/security-groups": "sg-0aaa, web-sg"});
        for (k, v) in extra.as_object().unwrap() {
            anns[k] = v.clone();
        }
        ingress(
            "ns",
            "a",
            anns,
            json!([path_rule(None, "/", "Prefix", "web", 80)]),
        )
    };
    let found: BTreeMap<String, Vec<String>> = [
        ("sg-0aaa".to_owned(), vec!["sg-0aaa".to_owned()]),
        ("web-sg".to_owned(), vec!["sg-0bbb".to_owned()]),
        (
            "twice".to_owned(),
            vec!["sg-1".to_owned(), "sg-2".to_owned()],
        ),
    ]
    .into();
    let svcs = services();
    let tags = Tags::new();
    let sn = subnets();
    let build_one = |ing: &Ingress| {
        build(
            "ns/a",
            &[member(ing, None, 0)],
            &Environment {
                cluster: "c1",
                default_tags: &tags,
                external_managed_tags: &BTreeSet::new(),
                default_target_type: TargetType::Instance,
                services: &svcs,
                subnets: Some(&sn),
                certificates: None,
                security_groups: Some(&found),
                target_groups: None,
                oidc_clients: None,
                web_acls: None,
                trust_stores: None,
            },
        )
    };

    // Only the named groups: no managed group at all, and no backend rules on the targets.
    let out = build_one(&with(json!({})));
    assert_eq!(out.members[0].problem, None);
    let lb = &out.model.load_balancers[0];
    assert_eq!(lb.security_groups, ["sg-0aaa", "sg-0bbb"]);
    assert!(out.model.security_groups.is_empty());
    assert!(
        out.model.target_groups[0]
            .binding
            .backend_security_group
            .is_empty()
    );

    // manage-backend-security-group-rules keeps the shared backend group.
    let out = build_one(&with(
        json!({"alb.ingress.kubernetes.io/manage-backend-security-group-rules": "true"}),
    ));
    let lb = &out.model.load_balancers[0];
    assert_eq!(
        lb.security_groups,
        ["sg-0aaa", "sg-0bbb", "BackendSecurityGroup"]
    );
    assert_eq!(out.model.security_groups.len(), 1);
    assert_eq!(
        out.model.target_groups[0].binding.backend_security_group,
        "BackendSecurityGroup"
    );
    // It converges in the in-memory AWS, the named groups attached by ID.
    let mut sim = crate::alb::plan::sim::Sim::new(crate::alb::observed::Observed::default());
    sim.apply(&crate::alb::plan::plan(&out.model, &sim.state, "c1"));
    assert!(crate::alb::plan::plan(&out.model, &sim.state, "c1").is_empty());
    assert!(
        sim.state.load_balancers[0]
            .security_groups
            .contains(&"sg-0bbb".to_owned())
    );

    // Unknown and ambiguous names leave the Ingress out with the reason.
    for (entry, needle) in [("nope", "not in the cluster's VPC"), ("twice", "names 2")] {
        let out = build_one(&with(
            json!({"alb.ingress.kubernetes.io/security-groups": entry}),
        ));
        let p = out.members[0].problem.as_ref().expect("problem");
        assert_eq!(p.reason, reason::SECURITY_GROUP_NOT_FOUND);
        assert!(p.message.contains(needle), "{}", p.message);
        assert!(out.model.load_balancers.is_empty());
    }
}

#[test]
fn ingress_class_params_fields_causeway_lacks_fail_closed_and_ssl_redirect_port_applies() {
    let ing = ingress(
        "ns",
        "a",
        json!({"alb.ingress.kubernetes.io/listen-ports": "[{\"HTTP\":80},{\"HTTPS\":443}]"}),
        json!([path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let params = |spec: serde_json::Value| -> crate::crd::IngressClassParams {
        serde_json::from_value(json!({
            "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "IngressClassParams",
            "metadata": {"name": "p"}, "spec": spec
        }))
        .unwrap()
    };
    let svcs = services();
    let with = |spec: serde_json::Value| {
        let mut m = member(&ing, None, 0);
        m.membership.params = Some(params(spec));
        build_with("ns/a", &[m], &svcs)
    };
    let out = with(json!({"sslRedirectPort": "443"}));
    assert_eq!(out.members[0].problem, None);
    let http = &out.model.load_balancers[0].listeners[0];
    assert_eq!(http.port, 80);
    assert!(matches!(&http.default_action, Action::Redirect(r) if r.port == "443"));

    // The class's web ACL pins the group's.
    let acl = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/x/1";
    let out = with(json!({"wafv2AclArn": acl}));
    assert_eq!(out.members[0].problem, None);
    assert_eq!(
        out.model.load_balancers[0].addons.web_acl,
        Some(Some(acl.to_string()))
    );

    let spec = json!({"minimumLoadBalancerCapacity": {"capacityUnits": 100}});
    let out = with(spec.clone());
    let p = out.members[0].problem.as_ref().expect("fails closed");
    assert_eq!(p.reason, reason::UNSUPPORTED_ANNOTATION, "{spec}");
    assert!(
        p.message.contains("IngressClassParams p sets spec."),
        "{}",
        p.message
    );
    assert!(out.model.load_balancers.is_empty());
}

/// Authentication wraps a backend's action on HTTPS listeners only, and a backend Service's
/// `auth-*` annotations override the Ingress's for that backend alone.
#[test]
fn authentication_runs_before_the_action_on_https_listeners_only() {
    let cognito = r#"{"userPoolARN":"arn:aws:cognito-idp:us-east-1:1:userpool/p","userPoolClientID":"c","userPoolDomain":"d"}"#;
    let ing = ingress(
        "ns",
        "web",
        json!({
            "alb.ingress.kubernetes.io/listen-ports": r#"[{"HTTP":80},{"HTTPS":443}]"#,
            "alb.ingress.kubernetes.io/auth-type": "cognito",
            "alb.ingress.kubernetes.io/auth-idp-cognito": cognito,
        }),
        json!([
            path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80),
            path_rule(Some("a.causeway.test"), "/api", "Prefix", "api", 80),
        ]),
    );
    let mut svcs = services();
    svcs.insert(
        ("ns".into(), "api".into()),
        service(
            "ns",
            "api",
            80,
            None,
            json!({"alb.ingress.kubernetes.io/target-type": "ip", "alb.ingress.kubernetes.io/auth-type": "none"}),
        ),
    );
    let out = build_with("ns/web", &[member(&ing, None, 0)], &svcs);
    assert!(out.members[0].problem.is_none(), "{:?}", out.members);
    let lb = &out.model.load_balancers[0];
    let on = |port: i32| {
        let l = lb.listeners.iter().find(|l| l.port == port).unwrap();
        l.rules
            .iter()
            .map(|r| matches!(r.action, Action::Authenticated { .. }))
            .collect::<Vec<_>>()
    };
    // Rules in manifest order (two Ingress rules): web, then api, whose Service turns
    // authentication off for itself.
    assert_eq!(on(443), [true, false]);
    assert_eq!(on(80), [false, false]);
    let https = lb.listeners.iter().find(|l| l.port == 443).unwrap();
    let Action::Authenticated { first, then } = &https.rules[0].action else {
        panic!("not authenticated");
    };
    assert!(
        matches!(first.as_ref(), crate::alb::model::Authenticate::Cognito(c) if c.client_id == "c")
    );
    assert_eq!(then.target_names().count(), 1);
    assert_eq!(https.rules[0].action.target_names().count(), 1);

    // Malformed authentication refuses the Ingress, HTTP-only or not.
    let bad = ingress(
        "ns",
        "bad",
        json!({"alb.ingress.kubernetes.io/auth-type": "cognito"}),
        json!([path_rule(Some("b.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let out = build_with("ns/bad", &[member(&bad, None, 0)], &svcs);
    let p = out.members[0].problem.as_ref().expect("refused");
    assert_eq!(p.reason, reason::INVALID_ANNOTATION);
}

/// Listener attributes merge key by key across a group; a different value for the same key
/// refuses the later member only.
#[test]
fn listener_attributes_merge_across_the_group_key_by_key() {
    let attrs = |v: &str| json!({"alb.ingress.kubernetes.io/listener-attributes.HTTP-80": v});
    let a = ingress(
        "ns",
        "a",
        attrs("routing.http.response.server.enabled=false"),
        json!([path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let b = ingress(
        "ns",
        "b",
        attrs("routing.http.response.x_frame_options.header_value=DENY"),
        json!([path_rule(Some("b.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let c = ingress(
        "ns",
        "c",
        attrs("routing.http.response.server.enabled=true"),
        json!([path_rule(Some("c.causeway.test"), "/", "Prefix", "web", 80)]),
    );
    let svcs = services();
    let members = [
        member(&a, Some("g"), 1),
        member(&b, Some("g"), 2),
        member(&c, Some("g"), 3),
    ];
    let out = build_with("g", &members, &svcs);
    let problems: Vec<_> = out.members.iter().map(|m| m.problem.is_some()).collect();
    assert_eq!(problems, [false, false, true], "{:?}", out.members);
    let l = &out.model.load_balancers[0].listeners[0];
    assert_eq!(l.attributes.len(), 2);
    assert_eq!(
        l.attributes["routing.http.response.server.enabled"],
        "false"
    );
}
