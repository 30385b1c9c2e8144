//! Round trips: model → SDK type → model is the identity for every conversion that exists
//! in both directions. Where the model is written through a request builder rather than
//! an SDK type (listeners, rules, health checks), the SDK type AWS reports back is built
//! here from the same fields the request sets.

use super::*;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9*./:_-]{0,12}"
}

fn values() -> impl Strategy<Value = BTreeSet<String>> {
    prop::collection::btree_set(text(), 0..4)
}

fn tags() -> impl Strategy<Value = Tags> {
    prop::collection::btree_map("[a-zA-Z0-9:/._-]{1,16}", text(), 0..6)
}

fn arn() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}".prop_map(|s| {
        format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{s}/0123")
    })
}

fn protocol_gen() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::Http), Just(Protocol::Https)]
}

fn action_gen() -> impl Strategy<Value = Action> {
    let forward = (
        prop::collection::vec((arn().prop_map(TargetRef::Arn), any::<i32>()), 0..4),
        prop::option::of(any::<i32>()),
    )
        .prop_map(|(targets, stickiness)| Action::Forward {
            targets,
            stickiness,
        });
    let redirect = (
        text(),
        text(),
        text(),
        text(),
        text(),
        prop::sample::select(vec!["HTTP_301", "HTTP_302"]),
    )
        .prop_map(|(protocol, host, port, path, query, status)| {
            Action::Redirect(Redirect {
                protocol,
                host,
                port,
                path,
                query,
                status_code: status.to_owned(),
            })
        });
    let fixed = (
        "[2-5][0-9][0-9]",
        prop::option::of(text()),
        prop::option::of(text()),
    )
        .prop_map(
            |(status_code, content_type, message_body)| Action::FixedResponse {
                status_code,
                content_type,
                message_body,
            },
        );
    let answer = prop_oneof![forward, redirect, fixed];
    (prop::option::of(auth_gen()), answer)
        .prop_map(|(first, then)| Action::authenticated(first.as_ref(), &then))
}

/// The client secret every generated OIDC action names.
fn secrets() -> ClientSecrets {
    ClientSecrets::new([(("ns".into(), "oidc".into()), "s3cret".into())].into())
}

fn session_gen() -> impl Strategy<Value = AuthSession> {
    (
        prop::sample::select(vec!["authenticate", "deny", "allow"]),
        text(),
        text(),
        1i64..=604_800,
        prop::collection::btree_map("[a-z]{1,8}", text(), 0..3),
    )
        .prop_map(|(on, scope, cookie, timeout, extra_params)| AuthSession {
            on_unauthenticated: on.to_owned(),
            scope,
            cookie,
            timeout,
            extra_params,
        })
}

fn auth_gen() -> impl Strategy<Value = Authenticate> {
    let cognito = (arn(), text(), text(), session_gen()).prop_map(
        |(user_pool_arn, client_id, domain, session)| {
            Authenticate::Cognito(CognitoAuth {
                user_pool_arn,
                client_id,
                domain,
                session,
            })
        },
    );
    let oidc = (text(), text(), text(), text(), text(), session_gen()).prop_map(
        |(
            issuer,
            authorization_endpoint,
            token_endpoint,
            user_info_endpoint,
            client_id,
            session,
        )| {
            Authenticate::Oidc(OidcAuth {
                issuer,
                authorization_endpoint,
                token_endpoint,
                user_info_endpoint,
                client_id,
                secret: ClientSecretRef {
                    namespace: "ns".into(),
                    name: "oidc".into(),
                },
                session,
            })
        },
    );
    let claim = (
        "[a-z]{1,8}",
        prop::sample::select(vec![
            "single-string",
            "string-array",
            "space-separated-values",
        ]),
        prop::collection::vec(text(), 1..3),
    )
        .prop_map(|(name, format, values)| JwtClaim {
            name,
            format: format.to_owned(),
            values,
        });
    let jwt = (text(), text(), prop::collection::vec(claim, 0..3)).prop_map(
        |(jwks_endpoint, issuer, claims)| {
            Authenticate::Jwt(JwtValidation {
                jwks_endpoint,
                issuer,
                claims,
            })
        },
    );
    prop_oneof![cognito, oidc, jwt]
}

/// Mutual TLS in normal form: the trust store and flags only in `verify` mode.
fn mutual_auth_gen() -> impl Strategy<Value = MutualAuth> {
    (0..3u8, "[a-z]{1,8}", any::<bool>(), any::<bool>()).prop_map(|(mode, store, ignore, ca)| {
        match mode {
            0 => MutualAuth::off(),
            1 => MutualAuth {
                mode: MutualAuthMode::Passthrough,
                ..MutualAuth::off()
            },
            _ => MutualAuth {
                mode: MutualAuthMode::Verify,
                trust_store: Some(format!(
                    "arn:aws:elasticloadbalancing:us-east-1:1:truststore/{store}/1"
                )),
                ignore_client_certificate_expiry: ignore,
                advertise_trust_store_ca_names: ca,
            },
        }
    })
}

fn condition_gen() -> impl Strategy<Value = RuleCondition> {
    prop_oneof![
        values().prop_map(RuleCondition::HostHeader),
        values().prop_map(RuleCondition::PathPattern),
        ("[a-zA-Z-]{0,10}", values())
            .prop_map(|(name, values)| RuleCondition::HttpHeader { name, values }),
        values().prop_map(RuleCondition::HttpRequestMethod),
        // A missing key is the empty string.
        prop::collection::btree_set(("[a-z]{0,4}", text()), 0..4)
            .prop_map(RuleCondition::QueryString),
        values().prop_map(RuleCondition::SourceIp),
    ]
}

fn cidr_gen() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|([a, b, c, d], n)| format!("{a}.{b}.{c}.{d}/{n}")),
        (any::<u16>(), any::<u16>(), 0u8..=128).prop_map(|(a, b, n)| format!("{a:x}:{b:x}::/{n}")),
    ]
}

fn health_check_gen() -> impl Strategy<Value = HealthCheck> {
    (
        "/[a-z/]{0,10}",
        prop_oneof![
            Just("traffic-port".to_owned()),
            (1u16..=65535).prop_map(|p| p.to_string())
        ],
        protocol_gen(),
        (5i32..300, 2i32..120, 2i32..10, 2i32..10),
        "[0-9]{3}(-[0-9]{3})?(,[0-9]{3}){0,2}",
        any::<bool>(),
    )
        .prop_map(
            |(
                path,
                port,
                protocol,
                (interval, timeout, healthy, unhealthy),
                success_codes,
                grpc,
            )| {
                HealthCheck {
                    path,
                    port,
                    protocol,
                    interval_seconds: interval,
                    timeout_seconds: timeout,
                    healthy_threshold: healthy,
                    unhealthy_threshold: unhealthy,
                    success_codes,
                    grpc,
                }
            },
        )
}

fn rewrites_gen() -> impl Strategy<Value = Vec<Rewrite>> {
    prop::collection::vec(
        (text(), text()).prop_map(|(regex, replace)| Rewrite { regex, replace }),
        1..3,
    )
}

fn transform_gen() -> impl Strategy<Value = Transform> {
    prop_oneof![
        rewrites_gen().prop_map(Transform::HostHeaderRewrite),
        rewrites_gen().prop_map(Transform::UrlRewrite),
    ]
}

proptest! {
    #[test]
    fn transforms_round_trip(transforms in prop::collection::vec(transform_gen(), 0..3)) {
        let sdk = sdk_transforms(&transforms);
        prop_assert_eq!(sdk.iter().map(model_transform).collect::<Vec<_>>(), transforms);
    }

    #[test]
    fn actions_round_trip(action in action_gen()) {
        let sdk = sdk_actions(&action, &HashMap::new(), &secrets()).expect("ARN targets need no lookup");
        prop_assert_eq!(model_actions(&sdk), action);
    }

    /// Our target groups are named in the model and come back by ARN.
    #[test]
    fn forward_targets_by_name_come_back_as_their_arns(
        targets in prop::collection::btree_map("[a-z]{1,8}", (arn(), any::<i32>()), 1..4),
        stickiness in prop::option::of(any::<i32>()),
    ) {
        let tgs: HashMap<String, String> =
            targets.iter().map(|(n, (a, _))| (n.clone(), a.clone())).collect();
        let named = Action::Forward {
            targets: targets.iter().map(|(n, (_, w))| (TargetRef::Name(n.clone()), *w)).collect(),
            stickiness,
        };
        let by_arn = Action::Forward {
            targets: targets.values().map(|(a, w)| (TargetRef::Arn(a.clone()), *w)).collect(),
            stickiness,
        };
        prop_assert_eq!(model_actions(&sdk_actions(&named, &tgs, &secrets()).expect("all named")), by_arn);
    }

    #[test]
    fn conditions_round_trip(condition in condition_gen()) {
        prop_assert_eq!(model_condition(&sdk_condition(&condition)), Some(condition));
    }

    /// A rule as CreateRule sends it and DescribeRules reports it: conditions come back sorted.
    #[test]
    fn rules_round_trip(
        priority in 1i32..50_000,
        conditions in prop::collection::vec(condition_gen(), 1..5),
        action in action_gen(),
    ) {
        let sdk = elb::types::Rule::builder()
            .rule_arn("arn:rule")
            .priority(priority.to_string())
            .is_default(false)
            .set_conditions(Some(conditions.iter().map(sdk_condition).collect()))
            .set_actions(Some(sdk_actions(&action, &HashMap::new(), &secrets()).expect("ARN targets")))
            .build();
        let mut sorted = conditions.clone();
        sorted.sort();
        prop_assert_eq!(
            observed_rule(&sdk),
            Some(ObservedRule {
                arn: "arn:rule".into(),
                priority,
                conditions: sorted,
                action,
                transforms: Vec::new(),
            })
        );
    }

    /// A listener as CreateListener sends it (the default certificate only) and
    /// DescribeListeners reports it.
    #[test]
    fn listeners_round_trip(
        port in 1i32..65536,
        protocol in protocol_gen(),
        certificate in prop::option::of(arn()),
        ssl_policy in "ELBSecurityPolicy-[A-Za-z0-9-]{1,20}",
        default_action in action_gen(),
        mutual_auth in prop::option::of(mutual_auth_gen()),
    ) {
        let ssl_policy = (protocol == Protocol::Https).then_some(ssl_policy);
        let certificates: Vec<String> = certificate.into_iter().collect();
        let sdk = elb::types::Listener::builder()
            .listener_arn("arn:listener")
            .port(port)
            .protocol(super::protocol(protocol))
            .set_certificates(Some(sdk_certificates(&certificates)))
            .set_ssl_policy(ssl_policy.clone())
            .set_mutual_authentication(mutual_auth.as_ref().map(sdk_mutual_auth))
            .set_default_actions(Some(sdk_actions(&default_action, &HashMap::new(), &secrets()).expect("ARN targets")))
            .build();
        let observed = observed_listener(&sdk, model_certificates(sdk.certificates()), Vec::new());
        prop_assert_eq!(observed, ObservedListener {
            attributes: BTreeMap::new(),
            arn: "arn:listener".into(),
            port,
            protocol,
            certificates,
            ssl_policy,
            alpn_policy: None,
            mutual_auth,
            default_action,
            rules: Vec::new(),
        });
    }

    #[test]
    fn certificates_round_trip(arns in prop::collection::vec(arn(), 0..5)) {
        prop_assert_eq!(model_certificates(&sdk_certificates(&arns)), arns);
    }

    #[test]
    fn tags_round_trip(tags in tags()) {
        prop_assert_eq!(&model_elb_tags(&elb_tags(&tags)), &tags);
        prop_assert_eq!(&model_ec2_tags(&ec2_tags(&tags)), &tags);
    }

    #[test]
    fn attributes_round_trip(attributes in tags()) {
        prop_assert_eq!(&model_lb_attributes(&sdk_lb_attributes(&attributes)), &attributes);
        prop_assert_eq!(&model_tg_attributes(&sdk_tg_attributes(&attributes)), &attributes);
    }

    #[test]
    fn security_group_rules_round_trip(
        rules in prop::collection::btree_set(
            (1i32..65536, cidr_gen()).prop_map(|(port, cidr)| SgRule::tcp(port, cidr)),
            0..8,
        ),
    ) {
        let list: Vec<SgRule> = rules.iter().cloned().collect();
        prop_assert_eq!(model_sg_rules(&ip_permissions(&list)), rules);
    }

    /// A health check as CreateTargetGroup sends it and DescribeTargetGroups reports it.
    #[test]
    fn health_checks_round_trip(h in health_check_gen()) {
        let sdk = elb::types::TargetGroup::builder()
            .health_check_path(&h.path)
            .health_check_port(&h.port)
            .health_check_protocol(protocol(h.protocol))
            .health_check_interval_seconds(h.interval_seconds)
            .health_check_timeout_seconds(h.timeout_seconds)
            .healthy_threshold_count(h.healthy_threshold)
            .unhealthy_threshold_count(h.unhealthy_threshold)
            .matcher(sdk_matcher(&h))
            .build();
        prop_assert_eq!(model_health_check(&sdk), h);
    }
}

#[test]
fn enums_round_trip() {
    for p in [Protocol::Http, Protocol::Https] {
        assert_eq!(model_protocol(Some(&protocol(p))), p);
    }
    for s in [Scheme::Internal, Scheme::InternetFacing] {
        assert_eq!(model_scheme(Some(&sdk_scheme(s))), s);
    }
    for t in [
        IpAddressType::Ipv4,
        IpAddressType::Dualstack,
        IpAddressType::DualstackWithoutPublicIpv4,
    ] {
        assert_eq!(model_ip_address_type(Some(&sdk_ip_address_type(t))), t);
    }
    for t in [TargetType::Instance, TargetType::Ip] {
        assert_eq!(model_target_type(Some(&sdk_target_type(t))), t);
    }
}
