//! GRPCRoute rules as ALB rules (pure): a service and method match is the path
//! `/<service>/<method>` (`/<service>/*`, `/*/<method>`), header matches are http-header
//! conditions, backends are forwarded to by weight as for HTTPRoutes. gRPC needs an HTTPS
//! listener; a filter (none can be expressed on an ALB) or a RegularExpression match refuses
//! its rule alone.

use std::collections::{BTreeMap, BTreeSet};

use gateway_api::grpcroutes::{
    GrpcRoute, GrpcRouteRules, GrpcRouteRulesBackendRefs, GrpcRouteRulesMatches,
    GrpcRouteRulesMatchesHeadersType, GrpcRouteRulesMatchesMethodType,
};
use kube::ResourceExt;

use super::http::{
    BackendRef, Outcome, Precedence, Refusal, Resolve, Unit, forward, units_for, unsupported,
};
use crate::alb::model::RuleCondition;

impl From<&GrpcRouteRulesBackendRefs> for BackendRef {
    fn from(b: &GrpcRouteRulesBackendRefs) -> Self {
        BackendRef {
            group: b.group.clone(),
            kind: b.kind.clone(),
            name: b.name.clone(),
            namespace: b.namespace.clone(),
            port: b.port,
            weight: b.weight,
            has_filters: b.filters.as_ref().is_some_and(|f| !f.is_empty()),
        }
    }
}

/// The units of `route` on the ports and hostnames it is attached to; `https` tells which
/// of those ports are HTTPS listeners (the only ones gRPC is served on).
pub fn route_units(
    route: &GrpcRoute,
    served: &BTreeMap<i32, BTreeSet<String>>,
    https: &BTreeSet<i32>,
    resolve: &mut Resolve<'_>,
) -> Outcome {
    let mut out = Outcome::default();
    let id = format!(
        "{}/{}",
        route.namespace().unwrap_or_default(),
        route.name_any()
    );
    let created = route
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    let served: BTreeMap<i32, BTreeSet<String>> = served
        .iter()
        .filter(|(p, _)| https.contains(p))
        .map(|(p, h)| (*p, h.clone()))
        .collect();
    for (i, rule) in route.spec.rules.iter().flatten().enumerate() {
        let result = if served.is_empty() {
            Err(unsupported(format!(
                "rules[{i}]: gRPC is served on HTTPS listeners only"
            )))
        } else {
            rule_units(
                &id,
                &created,
                i,
                rule,
                &served,
                resolve,
                &mut out.unresolved,
            )
        };
        match result {
            Ok(units) => out.units.extend(units),
            Err((reason, message)) => out.refused.push((i, reason, message)),
        }
    }
    out
}

fn rule_units(
    route: &str,
    created: &str,
    index: usize,
    rule: &GrpcRouteRules,
    served: &BTreeMap<i32, BTreeSet<String>>,
    resolve: &mut Resolve<'_>,
    unresolved: &mut Vec<Refusal>,
) -> Result<Vec<Unit>, Refusal> {
    let name = rule
        .name
        .clone()
        .unwrap_or_else(|| format!("rules[{index}]"));
    if let Some(f) = rule.filters.iter().flatten().next() {
        return Err(unsupported(format!(
            "{name}: the {:?} filter cannot be expressed on an ALB",
            f.r#type
        )));
    }
    let backends: Vec<BackendRef> = rule
        .backend_refs
        .iter()
        .flatten()
        .map(BackendRef::from)
        .collect();
    let action = forward(&name, index, &backends, resolve, unresolved)?;
    let default_match = [GrpcRouteRulesMatches::default()];
    let matches: &[GrpcRouteRulesMatches] = match rule.matches.as_deref() {
        Some(m) if !m.is_empty() => m,
        _ => &default_match,
    };
    let mut units = Vec::new();
    for (j, m) in matches.iter().enumerate() {
        let (conditions, key) =
            match_conditions(m).map_err(|e| unsupported(format!("{name}: {e}")))?;
        let key = Precedence {
            created: created.to_string(),
            route: route.to_string(),
            rule: index,
            matched: j,
            ..key
        };
        units_for(
            &name,
            j,
            &conditions,
            &key,
            &action,
            &[],
            served,
            &mut units,
        )?;
    }
    Ok(units)
}

fn match_conditions(m: &GrpcRouteRulesMatches) -> Result<(Vec<RuleCondition>, Precedence), String> {
    let mut key = Precedence {
        hostname: String::new(),
        path_rank: 0,
        path_len: 0,
        path_len2: 0,
        has_method: false,
        headers: m.headers.as_ref().map_or(0, Vec::len),
        queries: 0,
        created: String::new(),
        route: String::new(),
        rule: 0,
        matched: 0,
    };
    let mut conds = Vec::new();
    let bad = |v: &str| v.is_empty() || v.contains(['*', '?', '/']);
    let path = match &m.method {
        None => "/*".to_string(),
        Some(method) => {
            if method.r#type == Some(GrpcRouteRulesMatchesMethodType::RegularExpression) {
                return Err("RegularExpression method matches are not supported".into());
            }
            let (service, name) = (method.service.as_deref(), method.method.as_deref());
            if service.is_some_and(bad) || name.is_some_and(bad) {
                return Err("a gRPC service or method name cannot hold *, ? or /".into());
            }
            key.path_rank = 3;
            key.path_len = service.map_or(0, str::len);
            key.path_len2 = name.map_or(0, str::len);
            match (service, name) {
                (Some(s), Some(n)) => format!("/{s}/{n}"),
                (Some(s), None) => format!("/{s}/*"),
                (None, Some(n)) => format!("/*/{n}"),
                (None, None) => {
                    return Err("a method match names a service, a method or both".into());
                }
            }
        }
    };
    conds.push(RuleCondition::PathPattern(BTreeSet::from([path])));
    for h in m.headers.iter().flatten() {
        if h.r#type == Some(GrpcRouteRulesMatchesHeadersType::RegularExpression) {
            return Err(format!(
                "header {}: RegularExpression matches are not supported",
                h.name
            ));
        }
        if h.value.contains(['*', '?']) {
            return Err(format!(
                "header {}: an ALB reads * and ? as wildcards",
                h.name
            ));
        }
        conds.push(RuleCondition::HttpHeader {
            name: h.name.clone(),
            values: BTreeSet::from([h.value.clone()]),
        });
    }
    Ok((conds, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alb::model::{Action, TargetRef};
    use serde_json::json;

    fn route(rules: serde_json::Value) -> GrpcRoute {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "rpc", "namespace": "apps"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": rules}
        }))
        .unwrap()
    }

    fn ok(_: usize, b: &BackendRef) -> super::super::http::Resolved {
        Ok((format!("tg-{}", b.name), b.weight.unwrap_or(1)))
    }

    #[test]
    fn service_and_method_matches_become_paths_on_https_listeners_only() {
        let r = route(json!([{
            "matches": [
                {"method": {"service": "shop.Cart", "method": "Add"}},
                {"method": {"service": "shop.Cart"}, "headers": [{"name": "x-tenant", "value": "a"}]},
            ],
            "backendRefs": [{"name": "cart", "port": 50051}]
        }]));
        let served = BTreeMap::from([
            (80, BTreeSet::from([String::new()])),
            (443, BTreeSet::from(["rpc.example.com".to_string()])),
        ]);
        let out = route_units(&r, &served, &BTreeSet::from([443]), &mut ok);
        assert!(out.refused.is_empty(), "{:?}", out.refused);
        assert_eq!(out.units.len(), 2);
        assert!(out.units.iter().all(|u| u.port == 443));
        assert_eq!(
            out.units[0].conditions,
            vec![
                RuleCondition::HostHeader(BTreeSet::from(["rpc.example.com".into()])),
                RuleCondition::PathPattern(BTreeSet::from(["/shop.Cart/Add".into()])),
            ]
        );
        assert!(
            out.units[1]
                .conditions
                .contains(&RuleCondition::PathPattern(BTreeSet::from([
                    "/shop.Cart/*".into()
                ])))
        );
        assert_eq!(
            out.units[0].action,
            Action::Forward {
                targets: vec![(TargetRef::Name("tg-cart".into()), 1)],
                stickiness: None
            }
        );
        // A method before a service-only match.
        assert!(out.units[0].key < out.units[1].key);
        // On an HTTP listener alone, every rule is refused.
        let out = route_units(&r, &served, &BTreeSet::new(), &mut ok);
        assert!(out.units.is_empty());
        assert!(out.refused[0].2.contains("HTTPS"), "{:?}", out.refused);
    }

    #[test]
    fn a_filter_or_a_regular_expression_refuses_its_rule_only() {
        let r = route(json!([
            {"matches": [{"method": {"type": "RegularExpression", "service": "shop\\..*"}}], "backendRefs": [{"name": "a", "port": 1}]},
            {"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "y"}]}}],
             "backendRefs": [{"name": "b", "port": 1}]},
            {"backendRefs": [{"name": "c", "port": 1}]},
        ]));
        let served = BTreeMap::from([(443, BTreeSet::from([String::new()]))]);
        let out = route_units(&r, &served, &BTreeSet::from([443]), &mut ok);
        assert_eq!(
            out.refused.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(out.units.len(), 1);
        assert_eq!(
            out.units[0].conditions,
            vec![RuleCondition::PathPattern(BTreeSet::from(["/*".into()]))]
        );
    }
}
