#[test]
fn success_codes_and_attribute_values_are_checked_before_aws_sees_them() {
    for ok in ["200", "200-399", "200,201,302", "404"] {
        assert!(super::check_success_codes(ok, false).is_ok(), "{ok}");
    }
    for bad in ["abc", "600", "199", "200-100", "200,abc", "200-", ""] {
        assert!(super::check_success_codes(bad, false).is_err(), "{bad}");
    }
    assert!(super::check_success_codes("0-12", true).is_ok());
    assert!(super::check_success_codes("200", true).is_err());

    let attrs =
        |k: &str, v: &str| std::collections::BTreeMap::from([(k.to_string(), v.to_string())]);
    assert!(check_tg_attributes(&attrs("deregistration_delay.timeout_seconds", "30")).is_ok());
    assert!(check_tg_attributes(&attrs("deregistration_delay.timeout_seconds", "-1")).is_err());
    assert!(check_tg_attributes(&attrs("stickiness.enabled", "sometimes")).is_err());
    assert!(check_tg_attributes(&attrs("stickiness.type", "lb_cookie")).is_ok());
    assert!(check_lb_attributes(&attrs("idle_timeout.timeout_seconds", "abc")).is_err());
    assert!(check_lb_attributes(&attrs("idle_timeout.timeout_seconds", "60")).is_ok());
    assert!(check_lb_attributes(&attrs("access_logs.s3.bucket", "my-bucket")).is_ok());
    assert!(valid_cidr("10.0.0.0/8") && valid_cidr("::/0"));
    assert!(!valid_cidr("10.0.0.0/33") && !valid_cidr("not-a-cidr") && !valid_cidr("10.0.0.1"));
}

use super::*;
use crate::alb::model::{Action, Rewrite, RuleCondition, Transform};

#[test]
fn unsupported_annotations_are_named_and_their_no_op_values_pass() {
    let anns = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    };
    assert_eq!(unsupported(&anns(&[("scheme", "internal")])), None);
    assert_eq!(unsupported(&anns(&[("auth-type", "none")])), None);
    assert_eq!(
        unsupported(&anns(&[("shield-advanced-protection", "false")])),
        None
    );
    let p = unsupported(&anns(&[("waf-acl-id", "acl"), ("scheme", "internal")])).unwrap();
    assert_eq!(p.reason, reason::UNSUPPORTED_ANNOTATION);
    assert!(
        p.message.contains("alb.ingress.kubernetes.io/waf-acl-id"),
        "{}",
        p.message
    );
    assert!(p.message.contains("wafv2-acl-arn"), "{}", p.message);
    let p = unsupported(&anns(&[("target-control-port.svc.80", "3000")])).unwrap();
    assert!(p.message.contains("target-control-port"), "{}", p.message);
    let p = unsupported(&anns(&[("frontend-nlb-scheme", "internal")])).unwrap();
    assert!(p.message.contains("frontend-nlb-scheme"));
    assert_eq!(unsupported(&anns(&[("mutual-authentication", "[]")])), None);
    // Other prefixes are not ours to judge.
    let mut other = anns(&[]);
    other.insert("kubernetes.io/ingress.class".into(), "alb".into());
    other.insert("zzz/auth-type".into(), "cognito".into());
    assert_eq!(unsupported(&other), None);
}

fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
        .collect()
}

#[test]
fn listen_ports_parse_and_reject_garbage() {
    let a = ann(&[("listen-ports", r#"[{"HTTP":80},{"HTTPS":443}]"#)]);
    assert_eq!(
        Annotations::alb(&a).listen_ports().unwrap(),
        Some(vec![(Protocol::Http, 80), (Protocol::Https, 443)])
    );
    let bad = ann(&[("listen-ports", r#"[{"HTTP":80"#)]);
    let err = Annotations::alb(&bad).listen_ports().unwrap_err();
    assert_eq!(err.reason, reason::INVALID_ANNOTATION);
    assert!(err.message.contains("malformed JSON"), "{}", err.message);
    let bad = ann(&[("listen-ports", r#"[{"TCP":80}]"#)]);
    assert!(Annotations::alb(&bad).listen_ports().is_err());
}

#[test]
fn actions_parse() {
    let a = parse_action(
        "blue-green",
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"blue","servicePort":"80","weight":20},{"serviceName":"green","servicePort":80,"weight":80}],"targetGroupStickinessConfig":{"enabled":true,"durationSeconds":200}}}"#,
    )
    .unwrap();
    let ActionSpec::Forward {
        targets,
        stickiness,
    } = a
    else {
        panic!()
    };
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[1].1, 80);
    assert_eq!(stickiness, Some(200));
    let r = parse_action(
        "r",
        r#"{"type":"redirect","redirectConfig":{"protocol":"HTTPS","port":"443","statusCode":"HTTP_301"}}"#,
    )
    .unwrap();
    let ActionSpec::Fixed(Action::Redirect(r)) = r else {
        panic!()
    };
    assert_eq!(r.host, "#{host}");
    let e = parse_action("x", r#"{"type":"teleport"}"#).unwrap_err();
    assert_eq!(e.reason, reason::UNKNOWN_ACTION);
    assert!(parse_action("x", "{").is_err());
}

#[test]
fn conditions_parse() {
    let c = parse_conditions(
        "svc",
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Env","values":["canary"]}},{"field":"query-string","queryStringConfig":{"values":[{"key":"v","value":"2"}]}}]"#,
    )
    .unwrap();
    assert_eq!(c.len(), 2);
    assert!(parse_conditions("svc", r#"[{"field":"moon-phase"}]"#).is_err());
}

#[test]
fn service_annotations_override_the_ingress() {
    let i = ann(&[("healthcheck-path", "/ing"), ("target-type", "ip")]);
    let s = ann(&[("healthcheck-path", "/svc")]);
    let t = target_group_settings(
        &Annotations::alb(&s),
        &Annotations::alb(&i),
        TargetType::Instance,
    )
    .unwrap();
    assert_eq!(t.health_path, "/svc");
    assert_eq!(t.target_type, TargetType::Ip);
    assert_eq!(t.interval, 15);
    assert_eq!(t.success_codes, "200");
}

#[test]
fn unknown_attributes_are_rejected() {
    let i = ann(&[(
        "target-group-attributes",
        "stickiness.enabled=true,bogus.key=1",
    )]);
    let e = target_group_settings(
        &Annotations::alb(&BTreeMap::new()),
        &Annotations::alb(&i),
        TargetType::Ip,
    )
    .unwrap_err();
    assert_eq!(e.reason, reason::INVALID_ATTRIBUTE);
    assert!(
        check_lb_attributes(
            &[("idle_timeout.timeout_seconds".to_string(), "60".to_string())].into()
        )
        .is_ok()
    );
    assert!(
        check_lb_attributes(&[("access_logs.s3.bucket".to_string(), "b".to_string())].into())
            .is_ok()
    );
    assert!(check_lb_attributes(&[("nope".to_string(), "b".to_string())].into()).is_err());
}

#[test]
fn action_and_condition_keys_match_case_insensitively_as_go_reads_them() {
    // The migration guide's legacy format, capitalised as Go's encoding/json accepts it.
    let a = parse_action(
        "legacy",
        r#"{"Type":"forward","TargetGroupArn":"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1"}"#,
    )
    .unwrap();
    assert_eq!(
        a,
        ActionSpec::Forward {
            targets: vec![(
                ForwardTarget::Arn(
                    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1".into()
                ),
                1
            )],
            stickiness: None,
        }
    );
    // A weighted forward with stickiness written as the docs capitalise it.
    let a = parse_action(
        "w",
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"a","servicePort":80,"weight":1},{"serviceName":"b","servicePort":80,"weight":1}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":120}}}"#,
    )
    .unwrap();
    let ActionSpec::Forward { stickiness, .. } = a else {
        panic!("{a:?}")
    };
    assert_eq!(stickiness, Some(120));
    // Capitalised Values, and Go's sourceIPConfig spelling.
    let c = parse_conditions(
        "m",
        r#"[{"field":"http-request-method","httpRequestMethodConfig":{"Values":["GET","HEAD"]}},{"field":"source-ip","sourceIPConfig":{"values":["192.168.0.0/16"]}}]"#,
    )
    .unwrap();
    assert!(c.contains(&RuleCondition::HttpRequestMethod(
        ["GET".to_string(), "HEAD".to_string()].into()
    )));
    assert!(c.contains(&RuleCondition::SourceIp(
        ["192.168.0.0/16".to_string()].into()
    )));
    // As in Go, the later of two keys that fold to one name wins.
    let c = parse_conditions(
        "h",
        r#"[{"field":"host-header","hostHeaderConfig":{"values":["a.example.com"],"VALUES":["b.example.com"]}}]"#,
    )
    .unwrap();
    assert_eq!(
        c,
        vec![RuleCondition::HostHeader(
            ["b.example.com".to_string()].into()
        )]
    );
    // Values are not folded: the type is still matched exactly.
    assert!(parse_action("x", r#"{"type":"Forward","targetGroupARN":"arn:x"}"#).is_err());
}

#[test]
fn a_forward_may_name_its_target_group() {
    let a = parse_action("n", r#"{"type":"forward","targetGroupName":"legacy-tg"}"#).unwrap();
    assert_eq!(
        a,
        ActionSpec::Forward {
            targets: vec![(ForwardTarget::Name("legacy-tg".into()), 1)],
            stickiness: None,
        }
    );
    let a = parse_action(
        "n",
        r#"{"type":"forward","forwardConfig":{"targetGroups":[{"targetGroupName":"one","weight":10},{"serviceName":"svc","servicePort":80,"weight":90}]}}"#,
    )
    .unwrap();
    let ActionSpec::Forward { targets, .. } = a else {
        panic!("{a:?}")
    };
    assert_eq!(targets[0], (ForwardTarget::Name("one".into()), 10));
    let anns: BTreeMap<String, String> = [
        (
            format!("{PREFIX}actions.n"),
            r#"{"type":"forward","targetGroupName":"legacy-tg"}"#.to_string(),
        ),
        (format!("{PREFIX}actions.bad"), "not json".to_string()),
        (
            "other/actions.x".to_string(),
            r#"{"type":"forward","targetGroupName":"no"}"#.to_string(),
        ),
    ]
    .into();
    assert_eq!(named_target_groups(&anns), vec!["legacy-tg".to_string()]);
}

#[test]
fn map_annotations_split_as_the_peer_splits_them() {
    let a = ann(&[(
        "listener-attributes.HTTPS-443",
        r"routing.http.response.access_control_allow_headers.header_value=exampleValue\,anotherExampleValue,routing.http.response.server.enabled=false",
    )]);
    let got = listener_attributes(&a).unwrap();
    let attrs = &got["HTTPS-443"];
    assert_eq!(
        attrs["routing.http.response.access_control_allow_headers.header_value"],
        "exampleValue,anotherExampleValue"
    );
    assert_eq!(attrs["routing.http.response.server.enabled"], "false");
    // A comma not followed by another key=value stays in the value... unless more text
    // follows, which is malformed.
    let tags = ann(&[("tags", "a=1,b=2")]);
    assert_eq!(Annotations::alb(&tags).map("tags").unwrap().len(), 2);
    assert!(
        Annotations::alb(&ann(&[("tags", "a=1,b")]))
            .map("tags")
            .is_err()
    );
    assert!(
        Annotations::alb(&ann(&[("tags", "=1")]))
            .map("tags")
            .is_err()
    );
    for (key, value) in [
        (
            "listener-attributes.TCP-80",
            "routing.http.response.server.enabled=true",
        ),
        (
            "listener-attributes.HTTP-0",
            "routing.http.response.server.enabled=true",
        ),
        (
            "listener-attributes.http-80",
            "routing.http.response.server.enabled=true",
        ),
        (
            "listener-attributes.HTTP-80",
            "idle_timeout.timeout_seconds=60",
        ),
        (
            "listener-attributes.HTTP-80",
            "routing.http.response.server.enabled=maybe",
        ),
    ] {
        assert!(
            listener_attributes(&ann(&[(key, value)])).is_err(),
            "{key}: {value}"
        );
    }
}

#[test]
fn transforms_parse_the_documented_examples_and_refuse_the_rest() {
    let url = r#"[{"type":"url-rewrite","urlRewriteConfig":{"rewrites":[{"regex":"^\\/api\\/(.+)$","replace":"/$1"}]}}]"#;
    assert_eq!(
        parse_transforms("my-service", url).unwrap(),
        [Transform::UrlRewrite(vec![Rewrite {
            regex: r"^\/api\/(.+)$".into(),
            replace: "/$1".into()
        }])]
    );
    let host = r#"[{"Type":"host-header-rewrite","HostHeaderRewriteConfig":{"Rewrites":[{"Regex":"^(.+)\\.example\\.com$","Replace":"$1.example.org"}]}}]"#;
    assert!(matches!(
        parse_transforms("s", host).unwrap().as_slice(),
        [Transform::HostHeaderRewrite(r)] if r[0].replace == "$1.example.org"
    ));
    for bad in [
        "{}",
        r#"[{"type":"header-rewrite"}]"#,
        r#"[{"type":"url-rewrite"}]"#,
        r#"[{"type":"url-rewrite","urlRewriteConfig":{"rewrites":[]}}]"#,
        r#"[{"type":"url-rewrite","urlRewriteConfig":{"rewrites":[{"replace":"/"}]}}]"#,
    ] {
        let p = parse_transforms("s", bad).unwrap_err();
        assert!(p.message.contains("transforms.s"), "{bad}: {}", p.message);
    }
}

#[test]
fn web_acls_by_arn_or_name_and_none() {
    let arn = "arn:aws:wafv2:us-east-1:1:regional/webacl/a/1";
    let found: BTreeMap<String, String> = [
        ("a".to_string(), arn.to_string()),
        (arn.to_string(), arn.to_string()),
    ]
    .into();
    let get = |pairs: &[(&str, &str)]| web_acl(&ann(pairs), Some(&found));
    assert_eq!(get(&[]), Ok(None));
    assert_eq!(get(&[("wafv2-acl-arn", arn)]), Ok(Some(Some(arn.into()))));
    assert_eq!(get(&[("wafv2-acl-name", "a")]), Ok(Some(Some(arn.into()))));
    assert_eq!(get(&[("wafv2-acl-name", "none")]), Ok(Some(None)));
    assert_eq!(
        get(&[("wafv2-acl-arn", arn), ("wafv2-acl-name", "a")]),
        Ok(Some(Some(arn.into())))
    );
    for bad in [
        &[("wafv2-acl-arn", "acl-1")][..],
        &[(
            "wafv2-acl-arn",
            "arn:aws:wafv2:us-east-1:1:global/webacl/a/1",
        )],
        &[(
            "wafv2-acl-arn",
            "arn:aws:wafv2:us-east-1:1:regional/webacl/b/2",
        )],
        &[("wafv2-acl-name", "b")],
        &[("wafv2-acl-arn", "none"), ("wafv2-acl-name", "a")],
    ] {
        assert!(get(bad).is_err(), "{bad:?}");
    }
    // Not read (a plan without AWS): taken as written.
    assert_eq!(
        web_acl(&ann(&[("wafv2-acl-name", "b")]), None),
        Ok(Some(Some("b".into())))
    );
}

#[test]
fn mutual_authentication_reads_the_documented_example_and_refuses_bad_entries() {
    use crate::alb::model::{MutualAuth, MutualAuthMode};
    use std::collections::BTreeSet;
    let mtls = |v: &str| ann(&[("mutual-authentication", v)]);
    // The annotations guide's example, keys in the docs' spelling.
    let doc = mtls(
        r#"[{"port": 80, "mode": "passthrough"},
            {"port": 443, "mode": "verify", "trustStore": "arn:aws:elasticloadbalancing:trustStoreArn", "ignoreClientCertificateExpiry" : true}]"#,
    );
    let got = mutual_authentication(&doc, None).unwrap();
    assert_eq!(
        got[&80],
        MutualAuth {
            mode: MutualAuthMode::Passthrough,
            ..MutualAuth::off()
        }
    );
    assert_eq!(
        got[&443],
        MutualAuth {
            mode: MutualAuthMode::Verify,
            trust_store: Some("arn:aws:elasticloadbalancing:trustStoreArn".into()),
            ignore_client_certificate_expiry: true,
            advertise_trust_store_ca_names: false,
        }
    );
    assert_eq!(got.len(), 2);
    assert!(named_trust_stores(&doc).is_empty());

    // A name is resolved by discovery; keys match ignoring case, as Go's encoding/json does.
    let named = mtls(
        r#"[{"Port": 8443, "Mode": "verify", "TrustStore": "my-store", "AdvertiseTrustStoreCaNames": "on"}]"#,
    );
    assert_eq!(
        named_trust_stores(&named),
        BTreeSet::from(["my-store".to_string()])
    );
    let found = BTreeMap::from([("my-store".to_string(), "arn:ts/my-store".to_string())]);
    let m = &mutual_authentication(&named, Some(&found)).unwrap()[&8443];
    assert_eq!(m.trust_store.as_deref(), Some("arn:ts/my-store"));
    assert!(m.advertise_trust_store_ca_names && !m.ignore_client_certificate_expiry);
    // Without AWS access (plan), the name is kept.
    let m = &mutual_authentication(&named, None).unwrap()[&8443];
    assert_eq!(m.trust_store.as_deref(), Some("my-store"));
    let missing = mutual_authentication(&named, Some(&BTreeMap::new())).unwrap_err();
    assert_eq!(missing.reason, reason::TRUST_STORE_NOT_FOUND);
    assert!(missing.message.contains("my-store"), "{}", missing.message);

    assert_eq!(
        mutual_authentication(&ann(&[]), None).unwrap(),
        BTreeMap::new()
    );
    for (bad, says) in [
        ("[]", "empty"),
        ("not json", "mutual-authentication"),
        (r#"[{"port": 443}]"#, "mode is required"),
        (
            r#"[{"port": 443, "mode": "strict"}]"#,
            "not off, passthrough or verify",
        ),
        (r#"[{"port": 0, "mode": "off"}]"#, "1..65535"),
        (r#"[{"port": 443, "mode": "verify"}]"#, "needs a trustStore"),
        (
            r#"[{"port": 443, "mode": "off", "trustStore": "x"}]"#,
            "takes no trustStore",
        ),
        (
            r#"[{"port": 443, "mode": "passthrough", "ignoreClientCertificateExpiry": false}]"#,
            "takes no ignoreClientCertificateExpiry",
        ),
        (
            r#"[{"port": 443, "mode": "verify", "trustStore": "arn:x", "advertiseTrustStoreCaNames": "yes"}]"#,
            "\"on\" or \"off\"",
        ),
    ] {
        let p = mutual_authentication(&mtls(bad), None).unwrap_err();
        assert_eq!(p.reason, reason::INVALID_ANNOTATION, "{bad}");
        assert!(p.message.contains(says), "{bad}: {}", p.message);
    }
}

#[test]
fn regex_conditions_are_refused_by_name_and_empty_values_as_malformed() {
    let p = parse_conditions(
        "svc",
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"User-Agent","regexValues":[".+Chrome.+"]}}]"#,
    )
    .unwrap_err();
    assert_eq!(p.reason, reason::UNSUPPORTED_ANNOTATION);
    assert!(p.message.contains("regexValues"), "{}", p.message);
    let p = parse_conditions(
        "svc",
        r#"[{"Field":"host-header","HostHeaderConfig":{"RegexValues":["^.+\\.example\\.com$"]}}]"#,
    )
    .unwrap_err();
    assert_eq!(p.reason, reason::UNSUPPORTED_ANNOTATION);
    for empty in [
        r#"[{"field":"path-pattern","pathPatternConfig":{}}]"#,
        r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X"}}]"#,
    ] {
        let p = parse_conditions("svc", empty).unwrap_err();
        assert_eq!(p.reason, reason::INVALID_ANNOTATION, "{empty}");
        assert!(p.message.contains("has no values"), "{}", p.message);
    }
}
