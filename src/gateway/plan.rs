//! `causeway plan -f`: the ALB model of every Gateway in the manifests that is ours, what
//! its listeners and routes would report, and, with AWS access, the steps causeway would
//! take. Reads only; changes nothing.

use std::collections::BTreeMap;
use std::fmt::Write;

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use serde::de::DeserializeOwned;

use super::GatewaySettings;
use super::build::{self, Inputs};
use crate::crd::{LoadBalancerConfiguration, TargetGroupConfiguration};

/// The objects of one kind in the manifests (namespaced ones default to `default`).
fn of_kind<K: DeserializeOwned + kube::Resource>(
    objects: &[serde_json::Value],
    kind: &str,
    namespaced: bool,
    out: &mut String,
) -> Vec<K> {
    objects
        .iter()
        .filter(|o| o.get("kind").and_then(|k| k.as_str()) == Some(kind))
        .filter_map(|o| match serde_json::from_value::<K>(o.clone()) {
            Ok(mut k) => {
                if namespaced {
                    k.meta_mut()
                        .namespace
                        .get_or_insert_with(|| "default".into());
                }
                Some(k)
            }
            Err(e) => {
                let _ = writeln!(out, "gateway: skipping a {kind}: {e}");
                None
            }
        })
        .collect()
}

pub async fn plan_report(
    objects: &[serde_json::Value],
    aws: Option<&crate::aws::AwsClients>,
    cluster_name: &str,
    settings: &GatewaySettings,
) -> String {
    let mut out = String::new();
    let classes: Vec<GatewayClass> = of_kind(objects, "GatewayClass", false, &mut out);
    let gateways: Vec<Gateway> = of_kind(objects, "Gateway", true, &mut out);
    let routes: Vec<HttpRoute> = of_kind(objects, "HTTPRoute", true, &mut out);
    let grpc_routes: Vec<GrpcRoute> = of_kind(objects, "GRPCRoute", true, &mut out);
    let grants: Vec<ReferenceGrant> = of_kind(objects, "ReferenceGrant", true, &mut out);
    let tgcs: Vec<TargetGroupConfiguration> =
        of_kind(objects, "TargetGroupConfiguration", true, &mut out);
    let configs: Vec<LoadBalancerConfiguration> =
        of_kind(objects, "LoadBalancerConfiguration", true, &mut out);
    let services: BTreeMap<(String, String), Service> =
        of_kind::<Service>(objects, "Service", true, &mut out)
            .into_iter()
            .map(|s| ((s.namespace().unwrap_or_default(), s.name_any()), s))
            .collect();
    let namespaces: BTreeMap<String, BTreeMap<String, String>> = objects
        .iter()
        .filter(|o| o.get("kind").and_then(|k| k.as_str()) == Some("Namespace"))
        .filter_map(|o| {
            let meta = &o["metadata"];
            Some((
                meta["name"].as_str()?.to_string(),
                serde_json::from_value(meta["labels"].clone()).unwrap_or_default(),
            ))
        })
        .collect();
    // With no GatewayClass in the manifests, every Gateway's class is taken to be ours.
    let ours = |class: &str| {
        classes.is_empty()
            || classes.iter().any(|c| {
                c.name_any() == class && settings.controller_names.contains(&c.spec.controller_name)
            })
    };
    let mine: Vec<&Gateway> = gateways
        .iter()
        .filter(|g| ours(&g.spec.gateway_class_name))
        .collect();
    if mine.is_empty() {
        let _ = writeln!(
            out,
            "gateway: no Gateway in the manifests belongs to causeway"
        );
        return out;
    }
    let found =
        crate::alb::discover_for_plan(aws, cluster_name, settings.shared.vpc_id.as_ref()).await;
    let labels = |ns: &str| namespaces.get(ns).cloned();
    for gw in mine {
        let ns = gw.namespace().unwrap_or_default();
        let config = gw
            .spec
            .infrastructure
            .as_ref()
            .and_then(|i| i.parameters_ref.as_ref())
            .and_then(|p| {
                configs
                    .iter()
                    .find(|c| c.name_any() == p.name && c.namespace().as_deref() == Some(&ns))
            })
            .map(|c| &c.spec);
        let env = settings.shared.environment(
            cluster_name,
            crate::alb::settings::Discovered {
                services: &services,
                subnets: found.subnets.as_deref(),
                certificates: found.certificates.as_deref(),
                security_groups: None,
                target_groups: None,
                oidc_clients: None,
                web_acls: None,
                trust_stores: None,
            },
        );
        let b = build::build(
            gw,
            &Inputs {
                env: &env,
                routes: &routes,
                grpc_routes: &grpc_routes,
                grants: &grants,
                target_group_configs: &tgcs,
                namespace_labels: &labels,
                scheme: settings.scheme,
                config,
            },
        );
        let _ = writeln!(out, "gateway {}:", build::stack_of(gw));
        if let Some((why, m)) = &b.problem {
            let _ = writeln!(out, "  rejected: {why}: {m}");
            continue;
        }
        for l in &b.listeners {
            let state = match (&l.refused, b.listener_problems.get(&l.name)) {
                (Some((why, m)), _) | (None, Some((why, m))) => format!("not served: {why}: {m}"),
                (None, None) => "accepted".to_string(),
            };
            let _ = writeln!(
                out,
                "  listener {} ({} {}): {state}, {} route(s)",
                l.name,
                l.protocol.map_or("?", |p| p.as_str()),
                l.port,
                l.attached_routes
            );
        }
        for r in &b.routes {
            let head = format!("  {} {}/{}", r.kind, r.namespace, r.name);
            match (&r.accepted, &r.resolved_refs) {
                (Err((why, m)), _) => {
                    let _ = writeln!(out, "{head}: not attached: {why}: {m}");
                }
                (Ok(()), Err((why, m))) => {
                    let _ = writeln!(
                        out,
                        "{head}: attached; a backend is not resolved: {why}: {m}"
                    );
                }
                (Ok(()), Ok(())) => {
                    let _ = writeln!(out, "{head}: attached");
                }
            }
            for (_, why, m) in &r.refused_rules {
                let _ = writeln!(out, "    rule not served: {why}: {m}");
            }
        }
        crate::alb::write_model(&mut out, &b.model);
        crate::alb::write_actions(&mut out, aws, &found.vpc, cluster_name, &b.model).await;
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[tokio::test]
    async fn plan_report_without_aws_shows_the_model_listeners_and_route_verdicts() {
        let objects = vec![
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                   "metadata": {"name": "alb"}, "spec": {"controllerName": "gateway.k8s.aws/alb"}}),
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                   "metadata": {"name": "other"}, "spec": {"controllerName": "example.com/gw"}}),
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                   "metadata": {"name": "gw", "namespace": "shop"},
                   "spec": {"gatewayClassName": "alb", "listeners": [
                       {"name": "http", "port": 80, "protocol": "HTTP"},
                       {"name": "tcp", "port": 9000, "protocol": "TCP"}]}}),
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                   "metadata": {"name": "theirs", "namespace": "shop"},
                   "spec": {"gatewayClassName": "other", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}}),
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                   "metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"parentRefs": [{"name": "gw"}], "rules": [
                       {"matches": [{"path": {"value": "/app"}}], "backendRefs": [{"name": "web", "port": 80}]},
                       {"matches": [{"path": {"value": "/m"}}],
                        "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "web", "port": 80}}}],
                        "backendRefs": [{"name": "web", "port": 80}]}]}}),
        ];
        let report = super::plan_report(&objects, None, "c1", &Default::default()).await;
        assert!(report.contains("gateway shop/gw:"), "{report}");
        assert!(!report.contains("shop/theirs"), "{report}");
        assert!(
            report.contains("listener http (HTTP 80): accepted, 1 route(s)"),
            "{report}"
        );
        assert!(
            report.contains("listener tcp (? 9000): not served: UnsupportedProtocol"),
            "{report}"
        );
        assert!(report.contains("HTTPRoute shop/web: attached"), "{report}");
        assert!(
            report
                .contains("rule not served: UnsupportedValue: rules[1]: the RequestMirror filter"),
            "{report}"
        );
        assert!(report.contains("/app/*"), "{report}");
    }
}
