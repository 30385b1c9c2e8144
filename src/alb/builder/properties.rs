//! Property: whatever value one member of a group gives any annotation (garbage, JSON
//! fragments, huge numbers, other annotations' values), the builder does not panic, and a
//! neighbour without annotations is built with its rule and no problem. Bad input stays
//! with the object that carries it.

use k8s_openapi::api::networking::v1::Ingress;
use proptest::prelude::*;
use serde_json::json;

use super::tests_support::*;
use super::*;
use crate::alb::class::{GroupKey, Membership};

/// Every annotation the builder reads (the suffix after `alb.ingress.kubernetes.io/`), and
/// some it refuses.
const KEYS: &[&str] = &[
    "actions.web",
    "conditions.web",
    "backend-protocol",
    "backend-protocol-version",
    "certificate-arn",
    "group.order",
    "healthcheck-interval-seconds",
    "healthcheck-path",
    "healthcheck-port",
    "healthcheck-protocol",
    "healthcheck-timeout-seconds",
    "healthy-threshold-count",
    "inbound-cidrs",
    "ip-address-type",
    "listen-ports",
    "load-balancer-attributes",
    "load-balancer-name",
    "manage-backend-security-group-rules",
    "scheme",
    "security-groups",
    "ssl-policy",
    "ssl-redirect",
    "subnets",
    "success-codes",
    "tags",
    "target-group-attributes",
    "target-type",
    "unhealthy-threshold-count",
    "wafv2-acl-arn",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[0-9-]{1,12}",
        "[a-zA-Z0-9=,:/._ -]{0,60}",
        Just("[{\"HTTP\": 99999}]".to_string()),
        Just("{\"type\":\"forward\",\"forwardConfig\":{\"targetGroups\":[]}}".to_string()),
        Just("{\"type\":\"redirect\"}".to_string()),
        Just("[{\"field\":\"host-header\",\"hostHeaderConfig\":{\"values\":[]}}]".to_string()),
        Just("internet-facing".to_string()),
        Just("true".to_string()),
        Just("-2147483649".to_string()),
        Just("{".to_string()),
    ]
}

fn member(ing: &Ingress) -> Member<'_> {
    Member {
        ingress: ing,
        membership: Membership {
            group: GroupKey::from_stack("shop"),
            order: 0,
            params: None,
            problem: None,
        },
        last_accepted: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn one_members_bad_annotation_never_reaches_its_neighbour(
        key in proptest::sample::select(KEYS),
        value in value(),
    ) {
        let bad = ingress(
            "ns",
            "bad",
            json!({format!("alb.ingress.kubernetes.io/{key}"): value}),
            json!([path_rule(Some("bad.causeway.test"), "/", "Prefix", "web", 80)]),
        );
        let good = ingress(
            "ns",
            "good",
            json!({}),
            json!([path_rule(Some("good.causeway.test"), "/", "Prefix", "web", 80)]),
        );
        let svcs = services();
        let out = super::tests::build_with("shop", &[member(&bad), member(&good)], &svcs);
        let g = out.members.iter().find(|m| m.name == "good").expect("the neighbour");
        prop_assert!(g.problem.is_none(), "{key}={value:?}: neighbour got {:?}", g.problem);
        let hosts: Vec<String> = out
            .model
            .load_balancers
            .iter()
            .flat_map(|l| &l.listeners)
            .flat_map(|l| &l.rules)
            .map(|r| format!("{:?}", r.conditions))
            .collect();
        prop_assert!(
            hosts.iter().any(|h| h.contains("good.causeway.test")),
            "{key}={value:?}: no rule for the neighbour in {hosts:?}"
        );
    }
}
