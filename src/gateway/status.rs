//! The status a Gateway, its listeners, its routes and its class get, as the Gateway API
//! spec defines it, and the Events that go with a refusal.
//!
//! The Gateway's and the class's status are ours (server-side apply). A route's
//! `status.parents` is shared with other controllers: only our entries for this Gateway are
//! replaced, with the route's resourceVersion as precondition.

use std::collections::{BTreeMap, BTreeSet};

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::{HttpRoute, HttpRouteStatusParents, HttpRouteStatusParentsParentRef};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::build::{Built, RouteStatus};
use super::controller::Reconciler;
use super::{GROUP, GRPC_ROUTE, HTTP_ROUTE, condition, reason, route_key};
use crate::alb::aws::{AlbApi, AwsError};
use crate::alb::stack::{Error, boxed};
use crate::k8s::conditions::{SystemClock, set_condition};

type Verdict<'a> = (bool, &'a str, String);

fn set(conds: &mut Vec<Condition>, type_: &str, v: Verdict<'_>, generation: Option<i64>) {
    set_condition(conds, type_, v.0, v.1, &v.2, generation, &SystemClock);
}

/// Writes the Gateway's conditions, addresses and listener status, and its routes' parent
/// status.
pub(super) async fn write<A: AlbApi>(
    r: &Reconciler<A>,
    gw: &Gateway,
    b: &Built,
    dns: Option<&str>,
    outcome: &Result<(), AwsError>,
) -> Result<(), Error> {
    let generation = gw.metadata.generation;
    let prev = gw.status.clone().unwrap_or_default();
    let mut conds = prev.conditions.clone().unwrap_or_default();
    let valid = b.listeners.iter().filter(|l| l.accepted()).count();
    let invalid = b.listeners.len() - valid;
    let accepted: Verdict<'_> = match (&b.problem, valid, invalid) {
        (Some((why, m)), _, _) => (false, why, m.clone()),
        (None, 0, _) => (
            false,
            reason::LISTENERS_NOT_VALID,
            "no listener can be served".into(),
        ),
        (None, _, 0) => (true, reason::ACCEPTED, "Accepted".into()),
        (None, _, n) => (
            true,
            reason::LISTENERS_NOT_VALID,
            format!("{n} listener(s) are not valid"),
        ),
    };
    let programmed: Verdict<'_> = match (&b.problem, outcome, dns) {
        (Some((_, m)), _, _) => (false, reason::INVALID, m.clone()),
        (None, Err(e), _) => (false, reason::PENDING, e.to_string()),
        (None, Ok(()), None) => (
            false,
            reason::PENDING,
            "waiting for the load balancer".into(),
        ),
        (None, Ok(()), Some(d)) => (true, reason::PROGRAMMED, d.to_string()),
    };
    set(&mut conds, condition::ACCEPTED, accepted, generation);
    set(
        &mut conds,
        condition::PROGRAMMED,
        programmed.clone(),
        generation,
    );

    let prev_listeners: BTreeMap<String, Vec<Condition>> = prev
        .listeners
        .iter()
        .flatten()
        .map(|l| (l.name.clone(), l.conditions.clone()))
        .collect();
    let mut listeners = Vec::new();
    for l in &b.listeners {
        let mut lc = prev_listeners.get(&l.name).cloned().unwrap_or_default();
        let cert = b.listener_problems.get(&l.name);
        let conflict = l.refused.as_ref().filter(|(why, _)| {
            *why == reason::PROTOCOL_CONFLICT || *why == reason::HOSTNAME_CONFLICT
        });
        set(
            &mut lc,
            condition::ACCEPTED,
            match &l.refused {
                Some((why, m)) => (false, why, m.clone()),
                None => (true, reason::ACCEPTED, "Accepted".into()),
            },
            generation,
        );
        set(
            &mut lc,
            condition::CONFLICTED,
            match conflict {
                Some((why, m)) => (true, why, m.clone()),
                None => (false, reason::NO_CONFLICTS, "no conflicts".into()),
            },
            generation,
        );
        set(
            &mut lc,
            condition::RESOLVED_REFS,
            match (cert, l.invalid_kinds.is_empty()) {
                (Some((why, m)), _) => (false, why, m.clone()),
                (None, false) => (
                    false,
                    reason::INVALID_ROUTE_KINDS,
                    format!(
                        "route kinds an ALB Gateway does not serve: {}",
                        l.invalid_kinds.join(", ")
                    ),
                ),
                (None, true) => (true, reason::RESOLVED_REFS, "ResolvedRefs".into()),
            },
            generation,
        );
        set(
            &mut lc,
            condition::PROGRAMMED,
            match (&l.refused, cert) {
                (Some((_, m)), _) | (None, Some((_, m))) => (false, reason::INVALID, m.clone()),
                (None, None) => (programmed.0, programmed.1, programmed.2.clone()),
            },
            generation,
        );
        listeners.push(json!({
            "name": l.name,
            "attachedRoutes": l.attached_routes,
            "supportedKinds": l.kinds.iter().map(|k| json!({"group": GROUP, "kind": k})).collect::<Vec<_>>(),
            "conditions": lc,
        }));
    }
    let mut status = json!({"conditions": conds, "listeners": listeners});
    if let Some(d) = dns {
        status["addresses"] = json!([{"type": "Hostname", "value": d.to_ascii_lowercase()}]);
    }
    let before = serde_json::to_value(&prev).unwrap_or_default();
    let changed = ["conditions", "listeners", "addresses"]
        .iter()
        .any(|k| before.get(k) != status.get(k));
    if changed {
        let api: Api<Gateway> =
            Api::namespaced(r.ctx.client.clone(), &gw.namespace().unwrap_or_default());
        let body =
            json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Gateway", "status": status});
        api.patch_status(
            &gw.name_any(),
            &PatchParams::apply(crate::FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(|e| Error::Status(boxed(e)))?;
    }
    if let Some((why, m)) = &b.problem
        && prev.conditions.iter().flatten().all(|c| c.reason != *why)
    {
        r.ctx
            .events
            .warn(&super::reconcile::gateway_ref(gw), why, m.clone())
            .await;
    }
    write_routes(r, gw, &b.routes).await
}

/// Our parent entries for `gw` on each route that names it, and removal of those on routes
/// that no longer attach to it.
async fn write_routes<A: AlbApi>(
    r: &Reconciler<A>,
    gw: &Gateway,
    statuses: &[RouteStatus],
) -> Result<(), Error> {
    let gw_key = format!("{}/{}", gw.namespace().unwrap_or_default(), gw.name_any());
    let mut by_route: BTreeMap<String, Vec<&RouteStatus>> = BTreeMap::new();
    for s in statuses {
        let key = route_key(s.kind, &format!("{}/{}", s.namespace, s.name));
        by_route.entry(key).or_default().push(s);
    }
    let now: BTreeSet<String> = by_route.keys().cloned().collect();
    let before: Vec<String> = r
        .lock_attached()
        .iter()
        .filter(|(route, gws)| gws.contains(&gw_key) && !now.contains(*route))
        .map(|(route, _)| route.clone())
        .collect();
    for (route, entries) in &by_route {
        let mine: Vec<HttpRouteStatusParents> =
            entries.iter().map(|s| parent_status(r, s)).collect();
        replace_parents(r, route, &gw_key, mine).await?;
        for s in entries {
            report(r, s).await;
        }
    }
    for route in &before {
        replace_parents(r, route, &gw_key, Vec::new()).await?;
    }
    let mut attached = r.lock_attached();
    for route in before {
        if let Some(g) = attached.get_mut(&route) {
            g.remove(&gw_key);
        }
    }
    for route in now {
        attached.entry(route).or_default().insert(gw_key.clone());
    }
    attached.retain(|_, g| !g.is_empty());
    Ok(())
}

/// A released Gateway's routes lose our entries for it.
pub(super) async fn forget_routes<A: AlbApi>(
    r: &Reconciler<A>,
    ns: &str,
    name: &str,
) -> Result<(), Error> {
    let gw_key = format!("{ns}/{name}");
    let names_it = |route_ns: Option<String>, parents: Vec<(String, Option<String>, String)>| {
        let route_ns = route_ns.unwrap_or_default();
        parents.into_iter().any(|(controller, pns, pname)| {
            r.serves(&controller) && pname == name && pns.unwrap_or_else(|| route_ns.clone()) == ns
        })
    };
    let mut routes: Vec<String> = Vec::new();
    for rt in r.stores.routes.state() {
        let parents = rt.status.iter().flat_map(|s| s.parents.iter()).map(|p| {
            (
                p.controller_name.clone(),
                p.parent_ref.namespace.clone(),
                p.parent_ref.name.clone(),
            )
        });
        if names_it(rt.namespace(), parents.collect()) {
            routes.push(route_key(
                HTTP_ROUTE,
                &crate::k8s::runtime::watch::key_of(rt.as_ref()),
            ));
        }
    }
    for rt in r.stores.grpc_routes.state() {
        let parents = rt.status.iter().flat_map(|s| s.parents.iter()).map(|p| {
            (
                p.controller_name.clone(),
                p.parent_ref.namespace.clone(),
                p.parent_ref.name.clone(),
            )
        });
        if names_it(rt.namespace(), parents.collect()) {
            routes.push(route_key(
                GRPC_ROUTE,
                &crate::k8s::runtime::watch::key_of(rt.as_ref()),
            ));
        }
    }
    for route in routes {
        replace_parents(r, &route, &gw_key, Vec::new()).await?;
    }
    let mut attached = r.lock_attached();
    for g in attached.values_mut() {
        g.remove(&gw_key);
    }
    attached.retain(|_, g| !g.is_empty());
    Ok(())
}

fn parent_status<A: AlbApi>(r: &Reconciler<A>, s: &RouteStatus) -> HttpRouteStatusParents {
    let mut conds = Vec::new();
    let all_refused =
        s.accepted.is_ok() && !s.refused_rules.is_empty() && s.refused_rules.len() >= s.rule_count;
    let accepted: Verdict<'_> = match (&s.accepted, all_refused) {
        (Err((why, m)), _) => (false, why, m.clone()),
        (Ok(()), true) => (false, reason::UNSUPPORTED_VALUE, rules_message(s)),
        (Ok(()), false) => (true, reason::ACCEPTED, "Accepted".into()),
    };
    set(&mut conds, condition::ACCEPTED, accepted, s.generation);
    set(
        &mut conds,
        condition::RESOLVED_REFS,
        match &s.resolved_refs {
            Err((why, m)) => (false, why, m.clone()),
            Ok(()) => (true, reason::RESOLVED_REFS, "ResolvedRefs".into()),
        },
        s.generation,
    );
    if !s.refused_rules.is_empty() && !all_refused {
        set(
            &mut conds,
            condition::PARTIALLY_INVALID,
            (true, reason::UNSUPPORTED_VALUE, rules_message(s)),
            s.generation,
        );
    }
    HttpRouteStatusParents {
        conditions: conds,
        controller_name: r
            .settings
            .controller_names
            .first()
            .cloned()
            .unwrap_or_default(),
        parent_ref: HttpRouteStatusParentsParentRef {
            group: Some(s.parent.group.clone()),
            kind: Some(s.parent.kind.clone()),
            name: s.parent.name.clone(),
            namespace: Some(s.parent.namespace.clone()),
            port: s.parent.port,
            section_name: s.parent.section_name.clone(),
        },
    }
}

fn rules_message(s: &RouteStatus) -> String {
    s.refused_rules
        .iter()
        .map(|(_, _, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Replaces our entries for `gw_key` in the `status.parents` of `route` (a
/// [`route_key`]) with `mine`, keeping every other entry; nothing is written when nothing
/// changes (lastTransitionTime aside). HTTPRoute and GRPCRoute parents are the same JSON.
async fn replace_parents<A: AlbApi>(
    r: &Reconciler<A>,
    route: &str,
    gw_key: &str,
    mine: Vec<HttpRouteStatusParents>,
) -> Result<(), Error> {
    let (kind, key) = route.split_once(':').unwrap_or((HTTP_ROUTE, route));
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    match kind {
        GRPC_ROUTE => {
            let api: Api<GrpcRoute> = Api::namespaced(r.ctx.client.clone(), ns);
            replace_parents_of(r, &api, ns, name, gw_key, mine).await
        }
        _ => {
            let api: Api<HttpRoute> = Api::namespaced(r.ctx.client.clone(), ns);
            replace_parents_of(r, &api, ns, name, gw_key, mine).await
        }
    }
}

async fn replace_parents_of<A, K>(
    r: &Reconciler<A>,
    api: &Api<K>,
    ns: &str,
    name: &str,
    gw_key: &str,
    mine: Vec<HttpRouteStatusParents>,
) -> Result<(), Error>
where
    A: AlbApi,
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let Some(route) = api
        .get_opt(name)
        .await
        .map_err(|e| Error::Status(boxed(e)))?
    else {
        return Ok(());
    };
    let value = serde_json::to_value(&route).map_err(|e| Error::Status(boxed(e)))?;
    let old: Vec<HttpRouteStatusParents> = value
        .pointer("/status/parents")
        .cloned()
        .and_then(|p| serde_json::from_value(p).ok())
        .unwrap_or_default();
    let is_ours = |p: &HttpRouteStatusParents| {
        r.serves(&p.controller_name)
            && format!(
                "{}/{}",
                p.parent_ref.namespace.as_deref().unwrap_or(ns),
                p.parent_ref.name
            ) == gw_key
    };
    let mut parents: Vec<HttpRouteStatusParents> =
        old.iter().filter(|p| !is_ours(p)).cloned().collect();
    let previous: Vec<&HttpRouteStatusParents> = old.iter().filter(|p| is_ours(p)).collect();
    let mut mine = mine;
    // Keep lastTransitionTime where a condition did not flip.
    for m in &mut mine {
        if let Some(p) = previous.iter().find(|p| p.parent_ref == m.parent_ref) {
            let mut kept = p.conditions.clone();
            kept.retain(|c| m.conditions.iter().any(|n| n.type_ == c.type_));
            for c in &m.conditions {
                set_condition(
                    &mut kept,
                    &c.type_,
                    c.status == "True",
                    &c.reason,
                    &c.message,
                    c.observed_generation,
                    &SystemClock,
                );
            }
            m.conditions = kept;
        }
    }
    let same = previous.len() == mine.len() && previous.iter().zip(&mine).all(|(a, b)| **a == *b);
    if same {
        return Ok(());
    }
    parents.extend(mine);
    let body = json!({
        "metadata": {"resourceVersion": route.meta().resource_version},
        "status": {"parents": parents},
    });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(body))
        .await
        .map_err(|e| Error::Status(boxed(e)))?;
    Ok(())
}

/// A Warning Event on the route for each refusal.
async fn report<A: AlbApi>(r: &Reconciler<A>, s: &RouteStatus) {
    let obj = ObjectReference {
        api_version: Some(format!("{GROUP}/v1")),
        kind: Some(s.kind.into()),
        namespace: Some(s.namespace.clone()),
        name: Some(s.name.clone()),
        ..ObjectReference::default()
    };
    if let Err((why, m)) = &s.accepted {
        r.ctx
            .events
            .warn(
                &obj,
                why,
                format!(
                    "not attached to Gateway {}/{}: {m}",
                    s.parent.namespace, s.parent.name
                ),
            )
            .await;
    }
    if let Err((why, m)) = &s.resolved_refs {
        r.ctx.events.warn(&obj, why, m.clone()).await;
    }
    for (_, why, m) in &s.refused_rules {
        r.ctx
            .events
            .warn(&obj, why, format!("rule not served: {m}"))
            .await;
    }
}

/// The class's `Accepted` condition.
pub(super) async fn write_class<A: AlbApi>(
    r: &Reconciler<A>,
    class: &GatewayClass,
    ok: bool,
    why: &str,
    message: &str,
) -> Result<(), Error> {
    let mut conds = class
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    if !set_condition(
        &mut conds,
        condition::ACCEPTED,
        ok,
        why,
        message,
        class.metadata.generation,
        &SystemClock,
    ) {
        return Ok(());
    }
    let ours: Vec<&Condition> = conds
        .iter()
        .filter(|c| c.type_ == condition::ACCEPTED)
        .collect();
    let api: Api<GatewayClass> = Api::all(r.ctx.client.clone());
    let body = json!({"apiVersion": format!("{GROUP}/v1"), "kind": "GatewayClass", "status": {"conditions": ours}});
    api.patch_status(
        &class.name_any(),
        &PatchParams::apply(crate::FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(|e| Error::Status(boxed(e)))?;
    Ok(())
}
