use super::sim::Sim;
use super::*;
use crate::alb::builder::tests_support::*;
use proptest::prelude::*;

/// A random group: `members` Ingresses with random hosts, paths, ports and target settings.
#[derive(Clone, Debug)]
struct GroupSpec {
    members: Vec<MemberSpecGen>,
    scheme_public: bool,
    idle_timeout: Option<u16>,
    /// Bitmask over three tag keys set through the `tags` annotation.
    tags: u8,
}

#[derive(Clone, Debug)]
struct MemberSpecGen {
    paths: Vec<(u8, u8, u8)>,
    https: bool,
    ip: bool,
    health_interval: u8,
    deregistration: Option<u16>,
    /// With HTTPS: 0 discovers the certificate, n > 0 names n certificates.
    certs: u8,
}

fn member_gen() -> impl Strategy<Value = MemberSpecGen> {
    (
        prop::collection::vec((0u8..4, 0u8..40, 0u8..3), 1..40),
        any::<bool>(),
        any::<bool>(),
        10u8..30,
        prop::option::of(0u16..300),
        0u8..4,
    )
        .prop_map(
            |(paths, https, ip, health_interval, deregistration, certs)| MemberSpecGen {
                paths,
                https,
                ip,
                health_interval,
                deregistration,
                certs,
            },
        )
}

fn group_gen() -> impl Strategy<Value = GroupSpec> {
    (
        prop::collection::vec(member_gen(), 0..6),
        any::<bool>(),
        prop::option::of(1u16..4000),
        0u8..8,
    )
        .prop_map(|(members, scheme_public, idle_timeout, tags)| GroupSpec {
            members,
            scheme_public,
            idle_timeout,
            tags,
        })
}

fn model_of(spec: &GroupSpec) -> GroupModel {
    let ings: Vec<_> = spec
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut anns = serde_json::json!({"alb.ingress.kubernetes.io/group.name": "g",
                "alb.ingress.kubernetes.io/healthcheck-interval-seconds": m.health_interval.to_string(),
                "alb.ingress.kubernetes.io/target-type": if m.ip { "ip" } else { "instance" },
                "alb.ingress.kubernetes.io/scheme": if spec.scheme_public { "internet-facing" } else { "internal" }});
            if m.https {
                anns["alb.ingress.kubernetes.io/listen-ports"] = serde_json::json!("[{\"HTTP\":80},{\"HTTPS\":443}]");
                if m.certs > 0 {
                    let arns: Vec<String> = (0..m.certs).map(|c| format!("arn:aws:acm:us-east-1:123456789012:certificate/c{c}")).collect();
                    anns["alb.ingress.kubernetes.io/certificate-arn"] = serde_json::json!(arns.join(","));
                }
            }
            let tags: Vec<String> = (0..3).filter(|b| spec.tags & (1 << b) != 0).map(|b| format!("k{b}=v")).collect();
            if !tags.is_empty() {
                anns["alb.ingress.kubernetes.io/tags"] = serde_json::json!(tags.join(","));
            }
            if let Some(d) = m.deregistration {
                anns["alb.ingress.kubernetes.io/target-group-attributes"] = serde_json::json!(format!("deregistration_delay.timeout_seconds={d}"));
            }
            if let Some(t) = spec.idle_timeout {
                anns["alb.ingress.kubernetes.io/load-balancer-attributes"] = serde_json::json!(format!("idle_timeout.timeout_seconds={t}"));
            }
            let rules: Vec<serde_json::Value> = m
                .paths
                .iter()
                .map(|(h, p, svc)| path_rule(Some(&format!("h{h}.causeway.test")), &format!("/p{p}"), "Prefix", ["web", "api", "web"][*svc as usize], 80))
                .collect();
            ingress("ns", &format!("m{i}"), anns, serde_json::json!(rules))
        })
        .collect();
    build_group("g", &ings)
}

fn assert_converges(desired: &GroupModel, sim: &mut Sim) -> Result<(), TestCaseError> {
    let steps = plan(desired, &sim.state, "c1");
    sim.apply(&steps);
    let again = plan(desired, &sim.state, "c1");
    prop_assert!(again.is_empty(), "second plan not empty: {:#?}", again);
    Ok(())
}

fn foreign(seed: u8) -> Observed {
    let mut tags = Tags::new();
    match seed % 3 {
        0 => {}
        1 => {
            tags.insert(TAG_CLUSTER.into(), "other-cluster".into());
            tags.insert(TAG_STACK.into(), "g".into());
        }
        _ => {
            tags.insert(TAG_CLUSTER.into(), "c1".into());
            tags.insert(TAG_STACK.into(), "another-group".into());
        }
    }
    let name_tg = |n: &str| n.to_string();
    Observed {
        load_balancers: vec![ObservedLoadBalancer {
            arn: "arn:foreign-lb".into(),
            // Same name scheme as ours would not happen (hash), but a foreign LB must be
            // untouchable whatever its name.
            name: "foreign".into(),
            dns_name: "foreign.elb".into(),
            scheme: Scheme::Internal,
            ip_address_type: IpAddressType::Ipv4,
            subnets: vec![],
            security_groups: vec!["sg-foreign".into()],
            web_acl: None,
            shield_protection: None,
            private_link_inbound: None,
            attributes: Default::default(),
            tags: tags.clone(),
            listeners: vec![ObservedListener {
                attributes: BTreeMap::new(),
                arn: "arn:foreign-listener".into(),
                port: 80,
                protocol: Protocol::Http,
                certificates: vec![],
                ssl_policy: None,
                alpn_policy: None,
                mutual_auth: None,
                default_action: Action::not_found(),
                rules: vec![ObservedRule {
                    arn: "arn:foreign-rule".into(),
                    priority: 1,
                    conditions: vec![],
                    action: Action::not_found(),
                    transforms: vec![],
                }],
            }],
        }],
        target_groups: vec![ObservedTargetGroup {
            arn: "arn:foreign-tg".into(),
            name: name_tg("foreign-tg"),
            protocol: Protocol::Http,
            protocol_version: "HTTP1".into(),
            port: 80,
            target_type: TargetType::Ip,
            health_check: HealthCheck {
                path: "/".into(),
                port: "traffic-port".into(),
                protocol: Protocol::Http,
                interval_seconds: 15,
                timeout_seconds: 5,
                healthy_threshold: 2,
                unhealthy_threshold: 2,
                success_codes: "200".into(),
                grpc: false,
            },
            attributes: Default::default(),
            tags: tags.clone(),
        }],
        security_groups: vec![ObservedSecurityGroup {
            id: "sg-foreign".into(),
            name: "foreign-sg".into(),
            ingress: Default::default(),
            tags,
        }],
    }
}

fn merge(mut a: Observed, b: Observed) -> Observed {
    a.load_balancers.extend(b.load_balancers);
    a.target_groups.extend(b.target_groups);
    a.security_groups.extend(b.security_groups);
    a
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn plan_apply_plan_is_empty(before in group_gen(), after in group_gen()) {
        // From nothing to `before`, then from `before` to `after` (updates, replacements,
        // deletions), then to nothing.
        let mut sim = Sim::new(Observed::default());
        assert_converges(&model_of(&before), &mut sim)?;
        assert_converges(&model_of(&after), &mut sim)?;
        assert_converges(&GroupModel::empty("g"), &mut sim)?;
        prop_assert!(sim.state.is_empty(), "leftovers: {:?}", sim.state);
    }

    #[test]
    fn no_step_touches_a_resource_we_do_not_own(spec in group_gen(), seed in 0u8..3, prior in group_gen()) {
        let m0 = model_of(&prior);
        let mut sim = Sim::new(Observed::default());
        sim.apply(&plan(&m0, &sim.state, "c1"));
        let observed = merge(sim.state.clone(), foreign(seed));
        let owned_ids: BTreeSet<String> = {
            let mut s: BTreeSet<String> = BTreeSet::new();
            for lb in &sim.state.load_balancers {
                s.insert(lb.arn.clone());
                for l in &lb.listeners {
                    s.insert(l.arn.clone());
                    s.extend(l.rules.iter().map(|r| r.arn.clone()));
                }
            }
            s.extend(sim.state.target_groups.iter().map(|t| t.arn.clone()));
            s.extend(sim.state.security_groups.iter().map(|t| t.id.clone()));
            s
        };
        let desired = model_of(&spec);
        for step in plan(&desired, &observed, "c1").iter().chain(plan(&GroupModel::empty("g"), &observed, "c1").iter()) {
            if let Some(t) = step.target() {
                prop_assert!(owned_ids.contains(t), "step touches {t}, which is not ours: {step:?}");
            }
        }
    }
}

#[test]
fn an_unchanged_group_plans_nothing_and_a_target_type_change_replaces_create_first() {
    let ing = ingress(
        "ns",
        "a",
        serde_json::json!({"alb.ingress.kubernetes.io/target-type":"ip"}),
        serde_json::json!([path_rule(None, "/", "Prefix", "web", 80)]),
    );
    let m1 = build_group("ns/a", std::slice::from_ref(&ing));
    let mut sim = Sim::new(Observed::default());
    let steps = plan(&m1, &sim.state, "c1");
    let kinds: Vec<&str> = steps
        .iter()
        .map(|s| match s {
            Step::CreateSecurityGroup { .. } => "sg",
            Step::AuthorizeIngress { .. } => "sg-rule",
            Step::CreateTargetGroup(_) => "tg",
            Step::CreateLoadBalancer { .. } => "lb",
            Step::CreateListener { .. } => "listener",
            Step::CreateRule { .. } => "rule",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["sg", "sg-rule", "sg", "tg", "lb", "listener", "rule"]
    );
    sim.apply(&steps);
    assert!(plan(&m1, &sim.state, "c1").is_empty());

    let ing2 = ingress(
        "ns",
        "a",
        serde_json::json!({"alb.ingress.kubernetes.io/target-type":"instance"}),
        serde_json::json!([path_rule(None, "/", "Prefix", "web", 80)]),
    );
    let m2 = build_group("ns/a", std::slice::from_ref(&ing2));
    let steps = plan(&m2, &sim.state, "c1");
    let create = steps
        .iter()
        .position(|s| matches!(s, Step::CreateTargetGroup(_)))
        .unwrap();
    let modify = steps
        .iter()
        .position(|s| matches!(s, Step::ModifyRule { .. }))
        .unwrap();
    let delete = steps
        .iter()
        .position(|s| matches!(s, Step::DeleteTargetGroup { .. }))
        .unwrap();
    assert!(create < modify && modify < delete, "{steps:#?}");
    sim.apply(&steps);
    assert!(plan(&m2, &sim.state, "c1").is_empty());
    // Deleting the group removes everything, load balancer first, security groups last.
    let steps = plan(&GroupModel::empty("ns/a"), &sim.state, "c1");
    assert!(
        matches!(steps.last(), Some(Step::DeleteSecurityGroup { .. })),
        "{steps:#?}"
    );
    sim.apply(&steps);
    assert!(sim.state.is_empty());
}

#[test]
fn regression_replaced_target_group_with_new_member() {
    let m = |paths: Vec<(u8, u8, u8)>, ip: bool| MemberSpecGen {
        paths,
        https: false,
        ip,
        health_interval: 10,
        deregistration: None,
        certs: 0,
    };
    let before = GroupSpec {
        members: vec![m(vec![(0, 0, 0)], true)],
        scheme_public: false,
        idle_timeout: None,
        tags: 0,
    };
    let after = GroupSpec {
        members: vec![
            m(vec![(0, 0, 0)], false),
            m(vec![(0, 1, 1), (0, 2, 2)], false),
        ],
        scheme_public: false,
        idle_timeout: None,
        tags: 0,
    };
    let mut sim = Sim::new(Observed::default());
    sim.apply(&plan(&model_of(&before), &sim.state, "c1"));
    let m2 = model_of(&after);
    let steps = plan(&m2, &sim.state, "c1");
    sim.apply(&steps);
    assert!(plan(&m2, &sim.state, "c1").is_empty());
    let steps = plan(&GroupModel::empty("g"), &sim.state, "c1");
    sim.apply(&steps);
    assert!(sim.state.is_empty());
}

#[test]
fn extra_certificates_and_tags_we_no_longer_want_are_removed() {
    let https = |certs: &str, tags: &str| {
        ingress(
            "ns",
            "a",
            serde_json::json!({
                "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTPS\":443}]",
                "alb.ingress.kubernetes.io/certificate-arn": certs,
                "alb.ingress.kubernetes.io/tags": tags,
            }),
            serde_json::json!([path_rule(None, "/", "Prefix", "web", 80)]),
        )
    };
    let m1 = build_group("ns/a", &[https("arn:c0,arn:c1,arn:c2", "team=a,tier=web")]);
    let mut sim = Sim::new(Observed::default());
    sim.apply(&plan(&m1, &sim.state, "c1"));
    let listener = &sim.state.load_balancers[0].listeners[0];
    assert_eq!(listener.certificates, ["arn:c0", "arn:c1", "arn:c2"]);
    // Someone else's tags: an AWS one and an external-managed key stay, a stray key goes.
    for tags in [
        &mut sim.state.load_balancers[0].tags,
        &mut sim.state.target_groups[0].tags,
    ] {
        tags.insert("aws:cloudformation:stack-name".into(), "x".into());
        tags.insert("CostCenter".into(), "42".into());
    }

    let mut m2 = build_group("ns/a", &[https("arn:c1,arn:c0", "team=b")]);
    m2.unmanaged_tag_keys.insert("CostCenter".into());
    let steps = plan(&m2, &sim.state, "c1");
    let lb_arn = sim.state.load_balancers[0].arn.clone();
    assert!(
        steps.iter().any(|s| matches!(s, Step::UntagElb { arn, keys } if *arn == lb_arn && keys == &["tier".to_owned()])),
        "{steps:#?}"
    );
    assert!(
        steps.iter().any(|s| matches!(s, Step::RemoveListenerCertificates { certificates, .. } if certificates == &["arn:c2".to_owned()])),
        "{steps:#?}"
    );
    assert!(
        steps.iter().any(|s| matches!(s, Step::ModifyListener { certificates, .. } if certificates == &["arn:c1".to_owned()])),
        "{steps:#?}"
    );
    sim.apply(&steps);
    assert!(plan(&m2, &sim.state, "c1").is_empty());
    let lb = &sim.state.load_balancers[0];
    assert_eq!(lb.listeners[0].certificates[0], "arn:c1");
    assert_eq!(
        lb.listeners[0].certificates[1..]
            .iter()
            .collect::<BTreeSet<_>>(),
        [&"arn:c0".to_owned()].into_iter().collect()
    );
    assert_eq!(lb.tags.get("team").map(String::as_str), Some("b"));
    assert!(!lb.tags.contains_key("tier"));
    assert!(lb.tags.contains_key("aws:cloudformation:stack-name"));
    assert!(lb.tags.contains_key("CostCenter"));
    // Without the external-managed setting, a stray key like CostCenter is removed.
    let m3 = build_group("ns/a", &[https("arn:c1", "team=b")]);
    sim.apply(&plan(&m3, &sim.state, "c1"));
    assert!(!sim.state.load_balancers[0].tags.contains_key("CostCenter"));
    assert_eq!(
        sim.state.load_balancers[0].listeners[0].certificates,
        ["arn:c1"]
    );
    assert!(plan(&m3, &sim.state, "c1").is_empty());
}

/// WAFv2 and Shield come after the routing, converge, and are left alone when unset.
#[test]
fn addons_are_planned_after_the_rules_and_only_when_the_group_says() {
    let acl = "arn:aws:wafv2:us-east-1:1:regional/webacl/a/1";
    let with = |anns: serde_json::Value| {
        let ing = ingress(
            "ns",
            "a",
            anns,
            serde_json::json!([path_rule(None, "/", "Prefix", "web", 80)]),
        );
        build_group("ns/a", std::slice::from_ref(&ing))
    };
    let on = with(serde_json::json!({
        "alb.ingress.kubernetes.io/wafv2-acl-arn": acl,
        "alb.ingress.kubernetes.io/shield-advanced-protection": "true",
    }));
    let mut sim = Sim::new(Observed::default());
    let steps = plan(&on, &sim.state, "c1");
    let rule = steps
        .iter()
        .position(|s| matches!(s, Step::CreateRule { .. }));
    let waf = steps
        .iter()
        .position(|s| matches!(s, Step::SetWebAcl { .. }));
    let shield = steps
        .iter()
        .position(|s| matches!(s, Step::CreateProtection { .. }));
    assert!(rule < waf && rule < shield, "{steps:#?}");
    sim.apply(&steps);
    assert!(plan(&on, &sim.state, "c1").is_empty());
    assert_eq!(sim.state.load_balancers[0].web_acl.as_deref(), Some(acl));
    // Unset: nothing is planned, whatever AWS has.
    assert!(plan(&with(serde_json::json!({})), &sim.state, "c1").is_empty());
    // none / false take them off.
    let off = with(serde_json::json!({
        "alb.ingress.kubernetes.io/wafv2-acl-arn": "none",
        "alb.ingress.kubernetes.io/shield-advanced-protection": "false",
    }));
    let steps = plan(&off, &sim.state, "c1");
    assert_eq!(steps.len(), 2, "{steps:#?}");
    sim.apply(&steps);
    assert!(plan(&off, &sim.state, "c1").is_empty());
    assert!(sim.state.load_balancers[0].shield_protection.is_none());
}

/// Mutual TLS is sent with CreateListener, changed by ModifyListener only when it differs
/// (nothing reported is `off`), and left alone when the group does not say.
#[test]
fn mutual_tls_is_created_changed_and_otherwise_left_alone() {
    let with = |mtls: Option<&str>| {
        let mut anns = serde_json::json!({
            "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTPS\":443}]",
            "alb.ingress.kubernetes.io/certificate-arn": "arn:c0",
        });
        if let Some(m) = mtls {
            anns["alb.ingress.kubernetes.io/mutual-authentication"] = m.into();
        }
        let ing = ingress(
            "ns",
            "a",
            anns,
            serde_json::json!([path_rule(None, "/", "Prefix", "web", 80)]),
        );
        build_group("ns/a", std::slice::from_ref(&ing))
    };
    let verify = with(Some(
        r#"[{"port": 443, "mode": "verify", "trustStore": "arn:ts/1", "ignoreClientCertificateExpiry": true}]"#,
    ));
    let mut sim = Sim::new(Observed::default());
    let steps = plan(&verify, &sim.state, "c1");
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::CreateListener { listener, .. }
            if listener.mutual_auth.as_ref().is_some_and(|m| m.mode == MutualAuthMode::Verify))),
        "{steps:#?}"
    );
    sim.apply(&steps);
    assert!(plan(&verify, &sim.state, "c1").is_empty());

    // Unset: left as it is. Off on a listener that reports nothing: nothing to do.
    assert!(plan(&with(None), &sim.state, "c1").is_empty());
    let off = with(Some(r#"[{"port": 443, "mode": "off"}]"#));
    let steps = plan(&off, &sim.state, "c1");
    assert!(
        matches!(steps.as_slice(), [Step::ModifyListener { mutual_auth: Some(m), .. }] if *m == MutualAuth::off()),
        "{steps:#?}"
    );
    sim.apply(&steps);
    assert!(plan(&off, &sim.state, "c1").is_empty());
    sim.state.load_balancers[0].listeners[0].mutual_auth = None;
    assert!(plan(&off, &sim.state, "c1").is_empty());
    // A changed flag is one ModifyListener.
    let again = with(Some(
        r#"[{"port": 443, "mode": "verify", "trustStore": "arn:ts/1"}]"#,
    ));
    sim.apply(&plan(&verify, &sim.state, "c1"));
    let steps = plan(&again, &sim.state, "c1");
    assert_eq!(steps.len(), 1, "{steps:#?}");
    sim.apply(&steps);
    assert!(plan(&again, &sim.state, "c1").is_empty());
}

/// ELBv2 never returns a client secret: a Secret whose version is not the one last sent
/// has its rules modified once, and only those.
#[test]
fn a_rotated_oidc_secret_is_sent_once_to_the_rules_that_use_it() {
    let oidc = r#"{"issuer":"https://idp.causeway.test","authorizationEndpoint":"https://idp.causeway.test/a","tokenEndpoint":"https://idp.causeway.test/t","userInfoEndpoint":"https://idp.causeway.test/u","secretName":"oidc"}"#;
    let ing = ingress(
        "ns",
        "a",
        serde_json::json!({
            "alb.ingress.kubernetes.io/listen-ports": r#"[{"HTTP":80},{"HTTPS":443}]"#,
            "alb.ingress.kubernetes.io/certificate-arn": "arn:c0",
            "alb.ingress.kubernetes.io/auth-type": "oidc",
            "alb.ingress.kubernetes.io/auth-idp-oidc": oidc,
        }),
        serde_json::json!([
            path_rule(Some("a.causeway.test"), "/", "Prefix", "web", 80),
            path_rule(Some("b.causeway.test"), "/", "Prefix", "api", 80),
        ]),
    );
    let model = build_group("ns/a", std::slice::from_ref(&ing));
    let mut sim = Sim::new(Observed::default());
    sim.apply(&plan(&model, &sim.state, "c1"));
    let key = ("ns".to_string(), "oidc".to_string());
    let secrets = |v: &str| {
        ClientSecrets::new([(key.clone(), "s".into())].into())
            .with_versions([(key.clone(), v.into())].into())
    };
    let sent = client_secret_versions(&model, &secrets("7"));
    assert_eq!(sent, BTreeMap::from([("ns/oidc".into(), "7".into())]));

    // Unchanged: nothing to resend.
    let mut steps = plan(&model, &sim.state, "c1");
    resend_rotated(
        &model,
        &sim.state,
        "c1",
        &rotated(&model, &secrets("7"), &sent),
        &mut steps,
    );
    assert!(steps.is_empty(), "{steps:#?}");

    // Rotated: the two HTTPS rules (the HTTP ones do not authenticate), once each.
    let now = rotated(&model, &secrets("8"), &sent);
    assert_eq!(now, BTreeSet::from(["ns/oidc".to_string()]));
    let mut steps = plan(&model, &sim.state, "c1");
    resend_rotated(&model, &sim.state, "c1", &now, &mut steps);
    let https = &sim.state.load_balancers[0]
        .listeners
        .iter()
        .find(|l| l.port == 443)
        .unwrap()
        .rules;
    assert_eq!(steps.len(), 2, "{steps:#?}");
    for s in &steps {
        assert!(
            matches!(s, Step::ModifyRule { arn, action: Action::Authenticated { .. }, .. }
                if https.iter().any(|r| &r.arn == arn)),
            "{s:#?}"
        );
    }
    // Never recorded (an upgrade, or a rule that switched Secrets): sent as well.
    assert_eq!(rotated(&model, &secrets("7"), &BTreeMap::new()), now);
    // A Secret that was not read (no version) is not taken for a rotation.
    assert!(rotated(&model, &ClientSecrets::empty(), &sent).is_empty());
}
