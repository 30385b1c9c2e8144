use super::*;
use serde_json::json;

fn route(rules: serde_json::Value) -> HttpRoute {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "apps", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": rules}
    }))
    .unwrap()
}

fn served(hosts: &[&str]) -> BTreeMap<i32, BTreeSet<String>> {
    BTreeMap::from([(80, hosts.iter().map(|h| h.to_string()).collect())])
}

fn ok_backend(_: usize, b: &BackendRef) -> Resolved {
    Ok((format!("tg-{}", b.name), b.weight.unwrap_or(1)))
}

fn paths(u: &Unit) -> Vec<String> {
    u.conditions
        .iter()
        .filter_map(|c| match c {
            RuleCondition::PathPattern(v) => Some(v.iter().cloned().collect::<Vec<_>>().join(",")),
            _ => None,
        })
        .collect()
}

#[test]
fn matches_become_conditions_with_the_hostname_first() {
    let r = route(json!([{
        "matches": [
            {"path": {"type": "PathPrefix", "value": "/api/"}, "method": "GET",
             "headers": [{"name": "x-env", "value": "canary"}]},
            {"path": {"type": "Exact", "value": "/q"}, "queryParams": [{"name": "v", "value": "2"}]},
            {"path": {"type": "Exact", "value": "/health"}}
        ],
        "backendRefs": [{"name": "api", "port": 80}]
    }]));
    let out = route_units(&r, &served(&["a.example.com"]), &mut ok_backend);
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.units.len(), 3);
    let u = &out.units[0];
    assert_eq!(
        u.conditions,
        vec![
            RuleCondition::HostHeader(BTreeSet::from(["a.example.com".into()])),
            RuleCondition::PathPattern(BTreeSet::from(["/api".into(), "/api/*".into()])),
            RuleCondition::HttpHeader {
                name: "x-env".into(),
                values: BTreeSet::from(["canary".into()])
            },
            RuleCondition::HttpRequestMethod(BTreeSet::from(["GET".into()])),
        ]
    );
    assert!(
        out.units[1]
            .conditions
            .contains(&RuleCondition::QueryString(BTreeSet::from([(
                "v".into(),
                "2".into()
            )])))
    );
    assert_eq!(paths(&out.units[2]), vec!["/health".to_string()]);
    assert_eq!(
        u.action,
        Action::Forward {
            targets: vec![(TargetRef::Name("tg-api".into()), 1)],
            stickiness: None
        }
    );
}

#[test]
fn weighted_backends_forward_by_weight_and_unresolved_ones_are_left_out() {
    let r = route(json!([{
        "backendRefs": [{"name": "v1", "port": 80, "weight": 90}, {"name": "v2", "port": 80, "weight": 10},
                        {"name": "gone", "port": 80}]
    }]));
    let mut resolve = |i: usize, b: &BackendRef| match b.name.as_str() {
        "gone" => Err((
            reason::BACKEND_NOT_FOUND,
            "Service apps/gone does not exist".to_string(),
        )),
        _ => ok_backend(i, b),
    };
    let out = route_units(&r, &served(&[""]), &mut resolve);
    assert_eq!(out.units.len(), 1);
    assert_eq!(
        out.units[0].conditions,
        vec![],
        "PathPrefix / needs no condition"
    );
    assert_eq!(
        out.units[0].action,
        Action::Forward {
            targets: vec![
                (TargetRef::Name("tg-v1".into()), 90),
                (TargetRef::Name("tg-v2".into()), 10)
            ],
            stickiness: None
        }
    );
    assert_eq!(out.unresolved[0].0, reason::BACKEND_NOT_FOUND);
}

#[test]
fn a_rule_without_a_usable_backend_answers_500() {
    let r = route(json!([{"backendRefs": [{"name": "gone", "port": 80}]}]));
    let mut resolve = |_: usize, _: &BackendRef| -> Resolved {
        Err((reason::BACKEND_NOT_FOUND, "gone".to_string()))
    };
    let out = route_units(&r, &served(&[""]), &mut resolve);
    assert!(
        matches!(&out.units[0].action, Action::FixedResponse { status_code, .. } if status_code == "500")
    );
}

#[test]
fn an_unsupported_filter_refuses_its_rule_only() {
    let r = route(json!([
        {"matches": [{"path": {"value": "/a"}}],
         "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "y"}]}}],
         "backendRefs": [{"name": "a", "port": 80}]},
        {"matches": [{"path": {"value": "/b"}}], "backendRefs": [{"name": "b", "port": 80}]},
        {"matches": [{"path": {"type": "RegularExpression", "value": "/c.*"}}], "backendRefs": [{"name": "c", "port": 80}]},
    ]));
    let out = route_units(&r, &served(&[""]), &mut ok_backend);
    assert_eq!(out.units.len(), 1);
    assert_eq!(paths(&out.units[0]), vec!["/b,/b/*".to_string()]);
    assert_eq!(
        out.refused
            .iter()
            .map(|(i, r, _)| (*i, *r))
            .collect::<Vec<_>>(),
        vec![
            (0, reason::UNSUPPORTED_VALUE),
            (2, reason::UNSUPPORTED_VALUE)
        ]
    );
    assert!(
        out.refused[0].2.contains("RequestHeaderModifier"),
        "{}",
        out.refused[0].2
    );
}

#[test]
fn a_redirect_and_a_rewrite_become_an_alb_redirect_and_transforms() {
    let r = route(json!([
        {"matches": [{"path": {"value": "/old"}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]},
        {"matches": [{"path": {"value": "/v1"}}],
         "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "internal", "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}}],
         "backendRefs": [{"name": "api", "port": 80}]},
    ]));
    let out = route_units(&r, &served(&[""]), &mut ok_backend);
    assert_eq!(
        out.units[0].action,
        Action::Redirect(Redirect::new(
            Some("HTTPS".into()),
            None,
            Some("443".into()),
            None,
            None,
            "HTTP_301".into()
        ))
    );
    assert_eq!(
        out.units[1].transforms,
        vec![
            Transform::HostHeaderRewrite(vec![Rewrite {
                regex: ".*".into(),
                replace: "internal".into()
            }]),
            Transform::UrlRewrite(vec![Rewrite {
                regex: "^/v1(/.*)?$".into(),
                replace: "/v2$1".into()
            }]),
        ]
    );
}

#[test]
fn too_many_condition_values_refuse_the_rule() {
    let r = route(json!([{
        "matches": [{"path": {"value": "/a"}, "method": "GET",
                     "headers": [{"name": "h1", "value": "1"}, {"name": "h2", "value": "2"}]}],
        "backendRefs": [{"name": "a", "port": 80}]
    }]));
    // host 1 + path 2 + headers 2 + method 1 = 6 > 5.
    let out = route_units(&r, &served(&["a.example.com"]), &mut ok_backend);
    assert!(out.units.is_empty());
    assert!(
        out.refused[0].2.contains("6 condition values"),
        "{:?}",
        out.refused
    );
}

#[test]
fn precedence_follows_the_spec() {
    let key =
        |host: &str, rank: u8, len: usize, method: bool, headers: usize, route: &str| Precedence {
            hostname: host.into(),
            path_rank: rank,
            path_len: len,
            path_len2: 0,
            has_method: method,
            headers,
            queries: 0,
            created: "2026-01-01T00:00:00Z".into(),
            route: route.into(),
            rule: 0,
            matched: 0,
        };
    let mut keys = vec![
        key("", 2, 1, false, 0, "a/x"),
        key("*.example.com", 2, 4, false, 0, "a/x"),
        key("a.example.com", 2, 4, false, 0, "a/x"),
        key("a.example.com", 2, 10, false, 0, "a/x"),
        key("a.example.com", 3, 4, false, 0, "a/x"),
        key("a.example.com", 2, 4, true, 0, "a/x"),
        key("a.example.com", 2, 4, false, 2, "a/x"),
        key("a.example.com", 2, 4, false, 0, "a/a"),
    ];
    keys.sort();
    let order: Vec<(String, u8, usize, bool, usize, String)> = keys
        .into_iter()
        .map(|k| {
            (
                k.hostname,
                k.path_rank,
                k.path_len,
                k.has_method,
                k.headers,
                k.route,
            )
        })
        .collect();
    let want = vec![
        ("a.example.com", 3, 4, false, 0, "a/x"),
        ("a.example.com", 2, 10, false, 0, "a/x"),
        ("a.example.com", 2, 4, true, 0, "a/x"),
        ("a.example.com", 2, 4, false, 2, "a/x"),
        ("a.example.com", 2, 4, false, 0, "a/a"),
        ("a.example.com", 2, 4, false, 0, "a/x"),
        ("*.example.com", 2, 4, false, 0, "a/x"),
        ("", 2, 1, false, 0, "a/x"),
    ];
    assert_eq!(
        order,
        want.into_iter()
            .map(|(h, r, l, m, hd, ro)| (h.to_string(), r, l, m, hd, ro.to_string()))
            .collect::<Vec<_>>()
    );
}
