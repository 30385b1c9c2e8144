//! Gateway API → ALB on the embedded control plane (with the upstream Gateway API CRDs) and
//! moto. Each test claims its own GatewayClass controller name, so tests run in parallel.

use crate::alb::{elb_client, lb_by_dns, rules_of, tagged_with_key};
use crate::common::Controller;
use causeway_testenv::support::{TestCtx, unique_name, wait_for};
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

/// The condition `type_` of a route's parent entry for Gateway `gw`, as (status, reason).
fn route_condition(route: &HttpRoute, gw: &str, type_: &str) -> Option<(String, String)> {
    let parent = route
        .status
        .as_ref()?
        .parents
        .iter()
        .find(|p| p.parent_ref.name == gw)?;
    let c = parent.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

fn gateway_condition(gw: &Gateway, type_: &str) -> Option<(String, String)> {
    let c = gw
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?
        .clone();
    Some((c.status, c.reason))
}

fn pair(s: &str, r: &str) -> Option<(String, String)> {
    Some((s.to_string(), r.to_string()))
}

#[tokio::test]
async fn an_https_gateway_serves_routes_from_two_namespaces_refuses_bad_rules_alone_and_leaves_nothing_behind()
 {
    let ctx = TestCtx::new("gateway").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let ns = ctx.namespace.clone();
    let other = format!("{ns}-b");
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    ctx.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {other}\n"
    ))
    .await
    .expect("second namespace");
    let class = format!("gw-{ns}");
    let controller = format!("causeway.dev/{class}");
    let domain = ctx.env.seed.domain.clone();
    let c = Controller::start(
        &ctx,
        &unique_name("gateway"),
        &unique_name("gateway-lease"),
        &[
            "--controllers",
            "gateway",
            "--gateway-controller-names",
            &controller,
            "--alb-controller-name",
            &controller,
            "--log-level",
            "info,causeway=debug",
        ],
    );
    let objects = json!([
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": class}, "spec": {"controllerName": controller}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "gateway.k8s.aws/v1", "kind": "TargetGroupConfiguration",
         "metadata": {"name": "web", "namespace": ns},
         "spec": {"targetReference": {"name": "web"}, "defaultConfiguration": {"targetType": "ip"}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-canary", "namespace": ns},
         "spec": {"type": "NodePort", "selector": {"app": "canary"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": other},
         "spec": {"type": "NodePort", "selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "gw", "namespace": ns},
         "spec": {"gatewayClassName": class, "listeners": [
            {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}},
            {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": format!("*.{domain}"),
             "allowedRoutes": {"namespaces": {"from": "All"}}}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "shop", "namespace": ns},
         "spec": {"parentRefs": [{"name": "gw", "sectionName": "https"}],
                  "hostnames": [format!("shop.{domain}")],
                  "rules": [
                    {"backendRefs": [{"name": "web", "port": 80, "weight": 90}, {"name": "web-canary", "port": 80, "weight": 10}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                     "backendRefs": [{"name": "api", "namespace": other, "port": 80}]}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "to-https", "namespace": ns},
         "spec": {"parentRefs": [{"name": "gw", "sectionName": "http"}],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                             "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "half-bad", "namespace": other},
         "spec": {"parentRefs": [{"name": "gw", "namespace": ns, "sectionName": "http"}],
                  "rules": [
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/mirror"}}],
                     "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "api", "port": 80}}}],
                     "backendRefs": [{"name": "api", "port": 80}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/fine"}}],
                     "backendRefs": [{"name": "api", "port": 80}]}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
         "metadata": {"name": "cart", "namespace": ns},
         "spec": {"parentRefs": [{"name": "gw", "sectionName": "https"}],
                  "hostnames": [format!("rpc.{domain}")],
                  "rules": [{"matches": [{"method": {"service": "shop.Cart", "method": "Add"}}],
                             "backendRefs": [{"name": "web", "port": 80}]}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "missing", "namespace": ns},
         "spec": {"parentRefs": [{"name": "gw", "sectionName": "http"}],
                  "rules": [{"matches": [{"path": {"type": "Exact", "value": "/gone"}}],
                             "backendRefs": [{"name": "nope", "port": 80}]}]}},
    ]);
    let yaml: String = objects
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{}\n---\n", serde_json::to_string(o).unwrap()))
        .collect();
    ctx.apply(&yaml).await.expect("objects");

    let gateways: Api<Gateway> = Api::namespaced(ctx.client.clone(), &ns);
    let routes: Api<HttpRoute> = Api::namespaced(ctx.client.clone(), &ns);
    let other_routes: Api<HttpRoute> = Api::namespaced(ctx.client.clone(), &other);
    let classes: Api<GatewayClass> = Api::all(ctx.client.clone());
    let route_is = |api: Api<HttpRoute>,
                    name: &'static str,
                    type_: &'static str,
                    want: Option<(String, String)>| async move {
        wait_for(&format!("{name} {type_} {want:?}"), WAIT, || async {
            let r = api.get_opt(name).await.ok()??;
            (route_condition(&r, "gw", type_) == want).then_some(())
        })
        .await
    };

    // The class is accepted; the Gateway programmed with the ALB's DNS name.
    wait_for("GatewayClass Accepted", WAIT, || async {
        let c = classes.get_opt(&class).await.ok()??;
        c.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Accepted" && c.status == "True")
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let dns = wait_for("Gateway Programmed with an address", WAIT, || async {
        let g = gateways.get_opt("gw").await.ok()??;
        (gateway_condition(&g, "Programmed") == pair("True", "Programmed")).then_some(())?;
        g.status?.addresses?.first().map(|a| a.value.clone())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let g = gateways.get("gw").await.unwrap();
    assert_eq!(gateway_condition(&g, "Accepted"), pair("True", "Accepted"));
    let listeners = g.status.as_ref().unwrap().listeners.clone().unwrap();
    let attached: Vec<(String, i32)> = listeners
        .iter()
        .map(|l| (l.name.clone(), l.attached_routes))
        .collect();
    assert_eq!(attached, vec![("http".into(), 3), ("https".into(), 2)]);

    // Without a ReferenceGrant the cross-namespace backend is not resolved; the rest serves.
    route_is(
        routes.clone(),
        "shop",
        "ResolvedRefs",
        pair("False", "RefNotPermitted"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    route_is(routes.clone(), "shop", "Accepted", pair("True", "Accepted"))
        .await
        .unwrap();
    route_is(
        routes.clone(),
        "missing",
        "ResolvedRefs",
        pair("False", "BackendNotFound"),
    )
    .await
    .unwrap();
    route_is(
        other_routes.clone(),
        "half-bad",
        "PartiallyInvalid",
        pair("True", "UnsupportedValue"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    route_is(
        other_routes.clone(),
        "half-bad",
        "Accepted",
        pair("True", "Accepted"),
    )
    .await
    .unwrap();
    // The route's own Event names the refused rule.
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &other);
    wait_for("an UnsupportedValue Event on half-bad", WAIT, || async {
        let l = events.list(&ListParams::default()).await.ok()?;
        l.items
            .iter()
            .any(|e| {
                e.involved_object.name.as_deref() == Some("half-bad")
                    && e.reason.as_deref() == Some("UnsupportedValue")
            })
            .then_some(())
    })
    .await
    .unwrap();

    // The grant: the backend resolves and its rule forwards.
    ctx.apply(&format!(
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata:\n  name: shop-to-api\n  namespace: {other}\nspec:\n  from:\n  - {{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {ns}}}\n  to:\n  - {{group: \"\", kind: Service}}\n"
    ))
    .await
    .expect("grant");
    route_is(
        routes.clone(),
        "shop",
        "ResolvedRefs",
        pair("True", "ResolvedRefs"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));

    // What moto has: the listeners and rules in precedence order.
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    let lb_arn = lb.load_balancer_arn().unwrap().to_string();
    let https = wait_for("the /api rule forwarding", WAIT, || async {
        let rules = rules_of(&elb, &lb_arn, 443).await;
        let first = rules.first()?;
        let fwd = first.actions().iter().find(|a| {
            a.r#type() == Some(&aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
        })?;
        fwd.forward_config().is_some().then_some(rules)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    assert_eq!(https.len(), 3, "{https:#?}");
    let paths = |r: &aws_sdk_elasticloadbalancingv2::types::Rule| -> Vec<String> {
        r.conditions()
            .iter()
            .filter(|c| c.field() == Some("path-pattern"))
            .flat_map(|c| {
                let mut v = c.values().to_vec();
                v.extend(
                    c.path_pattern_config()
                        .map(|p| p.values().to_vec())
                        .unwrap_or_default(),
                );
                v
            })
            .collect()
    };
    let mut api_paths = paths(&https[0]);
    api_paths.sort();
    assert_eq!(api_paths, vec!["/api".to_string(), "/api/*".to_string()]);
    let weights: Vec<i32> = https[1].actions()[0]
        .forward_config()
        .unwrap()
        .target_groups()
        .iter()
        .filter_map(|t| t.weight())
        .collect();
    assert_eq!(weights, vec![90, 10]);
    // The GRPCRoute: its method's path, forwarding to a gRPC target group.
    assert_eq!(paths(&https[2]), vec!["/shop.Cart/Add".to_string()]);
    let grpc_tg = https[2].actions()[0]
        .forward_config()
        .and_then(|f| f.target_groups().first())
        .and_then(|t| t.target_group_arn())
        .or(https[2].actions()[0].target_group_arn())
        .expect("a target group")
        .to_string();
    let tg = elb
        .describe_target_groups()
        .target_group_arns(&grpc_tg)
        .send()
        .await
        .expect("grpc target group");
    assert_eq!(tg.target_groups()[0].protocol_version(), Some("GRPC"));
    let grpc_routes: Api<gateway_api::grpcroutes::GrpcRoute> =
        Api::namespaced(ctx.client.clone(), &ns);
    let cart = grpc_routes.get("cart").await.expect("cart");
    let accepted = cart
        .status
        .as_ref()
        .and_then(|s| s.parents.first())
        .and_then(|p| {
            p.conditions
                .iter()
                .find(|c| c.type_ == "Accepted")
                .map(|c| c.status.clone())
        });
    assert_eq!(accepted.as_deref(), Some("True"));
    let http = rules_of(&elb, &lb_arn, 80).await;
    let kinds: Vec<String> = http
        .iter()
        .map(|r| {
            r.actions()[0]
                .r#type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default()
        })
        .collect();
    // Exact /gone (500: no backend), then /fine, then the / redirect; /mirror is refused.
    assert_eq!(
        kinds,
        vec!["fixed-response", "forward", "redirect"],
        "{http:#?}"
    );
    assert!(
        http.iter()
            .all(|r| !paths(r).iter().any(|p| p.starts_with("/mirror")))
    );

    // DNS from the routes: shop's hostname (under the HTTPS listener's wildcard) becomes an
    // ALIAS to the Gateway's ALB; routes without a hostname publish nothing.
    let owner = unique_name("gwdns");
    let dns_controller =
        crate::dns::Dns::start(&ctx, &owner, &["--dns-sources", "gateway-httproute"]);
    let r53 = crate::dns::route53(&ctx).await;
    let zone = ctx.env.seed.public_zone_id.clone();
    let shop_host = format!("shop.{domain}");
    let alias = wait_for("shop's ALIAS record", WAIT, || async {
        let sets = crate::dns::records_named(&r53, &zone, &shop_host).await;
        let a = crate::dns::of_type(&sets, aws_sdk_route53::types::RrType::A)
            .first()
            .cloned()?
            .clone();
        a.alias_target().map(|t| t.dns_name().to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns_controller.proc.logs()));
    assert!(
        alias.trim_end_matches('.').eq_ignore_ascii_case(&dns),
        "{alias} vs {dns}"
    );
    // The ownership record names the route, as external-dns's gateway source writes it.
    let txt = crate::dns::records_named(&r53, &zone, &format!("a-{shop_host}")).await;
    assert_eq!(
        txt.first()
            .map(|t| t.resource_records()[0].value().to_string()),
        Some(format!(
            "\"heritage=external-dns,external-dns/owner={owner},external-dns/resource=httproute/{ns}/shop\""
        ))
    );

    // Deleting the Gateway removes the ALB, its target groups and security groups.
    let stack = format!("{ns}/gw");
    gateways
        .delete("gw", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("Gateway gone", WAIT, || async {
        matches!(gateways.get_opt("gw").await, Ok(None)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let gone = wait_for("nothing tagged for the Gateway", WAIT, || async {
        tagged_with_key(&ctx, "gateway.k8s.aws.alb/stack", &stack)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    if let Err(e) = gone {
        let left = tagged_with_key(&ctx, "gateway.k8s.aws.alb/stack", &stack).await;
        panic!("{e}: {left:?}\n{}", c.proc.logs());
    }
    // The routes lose our entries.
    route_is(routes.clone(), "shop", "Accepted", None)
        .await
        .unwrap();

    classes.delete(&class, &DeleteParams::default()).await.ok();
    namespaces
        .delete(&other, &DeleteParams::default())
        .await
        .ok();
    ctx.cleanup().await.ok();
}

/// A controller for a fresh GatewayClass of this test, with a Service `web` (ip targets).
async fn bench_setup(ctx: &TestCtx) -> (Controller, String) {
    crate::crds::install(ctx).await;
    let class = format!("gw-{}", ctx.namespace);
    let controller = format!("causeway.dev/{class}");
    let c = Controller::start(
        ctx,
        &unique_name("gateway"),
        &unique_name("gateway-lease"),
        &[
            "--controllers",
            "gateway",
            "--gateway-controller-names",
            &controller,
            "--alb-controller-name",
            &controller,
        ],
    );
    ctx.apply(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n  name: {class}\nspec:\n  controllerName: {controller}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80, targetPort: 8080}}]\n---\napiVersion: gateway.k8s.aws/v1\nkind: TargetGroupConfiguration\nmetadata:\n  name: web\nspec:\n  targetReference: {{name: web}}\n  defaultConfiguration: {{targetType: ip}}\n"
    ))
    .await
    .expect("class and Service");
    (c, class)
}

fn gateway_yaml(name: &str, class: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: {name}\nspec:\n  gatewayClassName: {class}\n  listeners:\n  - {{name: http, port: 80, protocol: HTTP}}\n"
    )
}

fn route_yaml(name: &str, gateway: &str, host: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: {name}\nspec:\n  parentRefs: [{{name: {gateway}}}]\n  hostnames: [{host}]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: /app}}}}]\n    backendRefs: [{{name: web, port: 80}}]\n"
    )
}

/// The rules on port 80 of the ALB behind Gateway `name`, once it is Programmed.
async fn programmed_rules(ctx: &TestCtx, name: &str) -> Option<usize> {
    let gateways: Api<Gateway> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let g = gateways.get_opt(name).await.ok()??;
    (gateway_condition(&g, "Programmed") == pair("True", "Programmed")).then_some(())?;
    let dns = g.status?.addresses?.first()?.value.clone();
    let elb = elb_client(ctx).await;
    let lbs = elb.describe_load_balancers().send().await.ok()?;
    let lb = lbs
        .load_balancers()
        .iter()
        .find(|l| l.dns_name() == Some(dns.as_str()))?;
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn()?)
        .send()
        .await
        .ok()?;
    let l = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(80))?;
    // DescribeRules pages.
    let (mut count, mut marker) = (0, None);
    loop {
        let page = elb
            .describe_rules()
            .listener_arn(l.listener_arn()?)
            .set_marker(marker)
            .send()
            .await
            .ok()?;
        count += page
            .rules()
            .iter()
            .filter(|r| r.is_default() != Some(true))
            .count();
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            return Some(count);
        }
    }
}

/// Gateway + HTTPRoute created → ALB with the route's rule and the Gateway `Programmed`,
/// 20 times (each Gateway deleted before the next).
/// `cargo test --profile bench --features testing --test integration bench_gateway_programmed -- --ignored --nocapture`
#[tokio::test]
#[ignore = "benchmark"]
async fn bench_gateway_programmed() {
    let ctx = TestCtx::new("gwbench").await.expect("ctx");
    let (c, class) = bench_setup(&ctx).await;
    let gateways: Api<Gateway> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let domain = ctx.env.seed.domain.clone();
    let mut times = Vec::new();
    for i in 0..20 {
        let (gw, route) = (format!("gw{i}"), format!("r{i}"));
        let t = std::time::Instant::now();
        ctx.apply(&format!(
            "{}---\n{}",
            gateway_yaml(&gw, &class),
            route_yaml(&route, &gw, &format!("a{i}.{domain}"))
        ))
        .await
        .expect("apply");
        wait_for(&format!("{gw} programmed with its rule"), WAIT, || async {
            (programmed_rules(&ctx, &gw).await? == 1).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
        times.push(t.elapsed());
        gateways
            .delete(&gw, &DeleteParams::default())
            .await
            .expect("delete");
        wait_for("Gateway gone", WAIT, || async {
            matches!(gateways.get_opt(&gw).await, Ok(None)).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    }
    times.sort();
    let at =
        |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1)].as_secs_f64();
    println!(
        "Gateway + HTTPRoute → ALB with its rule and Programmed=True, {} runs: p50 {:.2} s, p99 {:.2} s, min {:.2} s",
        times.len(),
        at(0.5),
        at(0.99),
        times[0].as_secs_f64()
    );
    ctx.cleanup().await.ok();
}

/// A Gateway with 50 routes gets a 51st: the ELBv2 and EC2 calls that costs.
/// `cargo test --profile bench --features testing --test integration bench_gateway_route_added -- --ignored --nocapture`
#[tokio::test]
#[ignore = "benchmark"]
async fn bench_gateway_route_added_to_fifty() {
    let ctx = TestCtx::new("gwbench").await.expect("ctx");
    let (c, class) = bench_setup(&ctx).await;
    let domain = ctx.env.seed.domain.clone();
    let mut yaml = gateway_yaml("gw", &class);
    for i in 0..50 {
        yaml.push_str("---\n");
        yaml.push_str(&route_yaml(
            &format!("r{i:02}"),
            "gw",
            &format!("h{i:02}.{domain}"),
        ));
    }
    let t = std::time::Instant::now();
    ctx.apply(&yaml).await.expect("apply");
    wait_for("50 rules", Duration::from_secs(300), || async {
        (programmed_rules(&ctx, "gw").await? == 50).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let created = t.elapsed();
    crate::scale::settle(&c, Duration::from_secs(5), t).await;
    let before = crate::scale::calls_by_operation(&c.metrics().await);
    let t = std::time::Instant::now();
    ctx.apply(&route_yaml("r50", "gw", &format!("h50.{domain}")))
        .await
        .expect("the 51st route");
    wait_for("51 rules", WAIT, || async {
        (programmed_rules(&ctx, "gw").await? == 51).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let served = t.elapsed();
    crate::scale::settle(&c, Duration::from_secs(5), t).await;
    let after = crate::scale::calls_by_operation(&c.metrics().await);
    let delta: std::collections::BTreeMap<String, u64> = after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    println!(
        "Gateway with 50 routes: created in {:.1} s; a 51st route served in {:.2} s",
        created.as_secs_f64(),
        served.as_secs_f64()
    );
    crate::scale::print_calls("  the 51st route", &delta);
    ctx.cleanup().await.ok();
}
