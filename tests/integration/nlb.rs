//! Service type LoadBalancer → NLB on the embedded control plane with moto. Each test runs
//! its own `causeway controller` serving a load balancer class named after the test
//! namespace, so parallel tests never claim each other's Services.

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2 as elb;
use causeway_testenv::support::{TestCtx, unique_name, wait_for};
use k8s_openapi::api::core::v1::{Event, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use crate::alb::{WAIT, ec2_client, elb_client, groups_dump, lb_by_dns, tagged_with_key};
use crate::common::Controller;

const STACK_TAG: &str = "service.k8s.aws/stack";

pub struct Nlb {
    pub c: Controller,
    pub class: String,
}

/// A controller running the NLB reconciler (and `extra` controllers) for the test's class.
pub async fn start(ctx: &TestCtx, controllers: &str, extra: &[&str]) -> Nlb {
    crate::crds::install(ctx).await;
    let class = format!("causeway.dev/nlb-{}", ctx.namespace);
    let owner = format!("causeway.dev/alb-{}", ctx.namespace);
    let mut args = vec![
        "--controllers",
        controllers,
        "--nlb-load-balancer-class",
        &class,
        "--alb-controller-name",
        &owner,
        "--targets-namespace",
        &ctx.namespace,
        "--webhook-enabled",
        "false",
        "--log-level",
        "info,causeway=debug",
    ];
    args.extend_from_slice(extra);
    let c = Controller::start(
        ctx,
        &unique_name(&format!("nlb-{}", ctx.namespace)),
        &unique_name("nlb-lease"),
        &args,
    );
    Nlb { c, class }
}

pub fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - {{name: app, image: registry.example/app:1, ports: [{{containerPort: 8080}}, {{containerPort: 5353, protocol: UDP}}]}}\n"
    )
}

/// A LoadBalancer Service of `class` selecting `app`, with annotations and the ports YAML.
pub fn service(
    name: &str,
    class: &str,
    app: &str,
    annotations: &[(&str, &str)],
    ports: &str,
) -> String {
    let mut anns = String::new();
    for (k, v) in annotations {
        let key = if k.contains('/') {
            (*k).to_owned()
        } else {
            format!("service.beta.kubernetes.io/aws-load-balancer-{k}")
        };
        anns.push_str(&format!("    {key}: '{v}'\n"));
    }
    let anns = match anns.is_empty() {
        true => String::new(),
        false => format!("  annotations:\n{anns}"),
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n{anns}spec:\n  type: LoadBalancer\n  loadBalancerClass: {class}\n  selector: {{app: {app}}}\n  ports:\n{ports}"
    )
}

async fn svc(ctx: &TestCtx, name: &str) -> Option<Service> {
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.get_opt(name).await.ok()?
}

pub async fn wait_hostname(ctx: &TestCtx, n: &Nlb, name: &str) -> String {
    wait_for(&format!("hostname of Service {name}"), WAIT, || async {
        svc(ctx, name)
            .await?
            .status?
            .load_balancer?
            .ingress?
            .first()?
            .hostname
            .clone()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", n.c.proc.logs()))
}

async fn wait_event(ctx: &TestCtx, n: &Nlb, name: &str, reason: &str) -> String {
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_for(
        &format!("a {reason} Event on Service {name}"),
        WAIT,
        || async {
            let l = events.list(&ListParams::default()).await.ok()?;
            l.items.iter().find_map(|e| {
                (e.involved_object.name.as_deref() == Some(name)
                    && e.involved_object.kind.as_deref() == Some("Service")
                    && e.reason.as_deref() == Some(reason))
                .then(|| e.message.clone().unwrap_or_default())
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", n.c.proc.logs()))
}

fn condition(s: &Service) -> Option<(String, String)> {
    s.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "causeway.dev/LoadBalancerReady")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Listeners of an NLB as `PROTOCOL:port`, with their target group ARNs.
async fn listeners(elb: &elb::Client, lb_arn: &str) -> Vec<(String, String, elb::types::Listener)> {
    let out = elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .expect("listeners");
    out.listeners()
        .iter()
        .map(|l| {
            let a = &l.default_actions()[0];
            let tg = a
                .target_group_arn()
                .or_else(|| {
                    a.forward_config()?
                        .target_groups()
                        .first()?
                        .target_group_arn()
                })
                .unwrap_or_default()
                .to_owned();
            (
                format!(
                    "{}:{}",
                    l.protocol().map(|p| p.as_str()).unwrap_or_default(),
                    l.port().unwrap_or_default()
                ),
                tg,
                l.clone(),
            )
        })
        .collect()
}

/// The inbound rules of the load balancer's security groups, as `protocol/port/cidr`.
async fn sg_rules(ctx: &TestCtx, lb: &elb::types::LoadBalancer) -> BTreeSet<String> {
    let sgs = ec2_client(ctx)
        .await
        .describe_security_groups()
        .set_group_ids(Some(lb.security_groups().to_vec()))
        .send()
        .await
        .expect("sgs");
    sgs.security_groups()
        .iter()
        .flat_map(|g| g.ip_permissions())
        .flat_map(|p| {
            p.ip_ranges().iter().map(move |r| {
                format!(
                    "{}/{}/{}",
                    p.ip_protocol().unwrap_or_default(),
                    p.from_port().unwrap_or_default(),
                    r.cidr_ip().unwrap_or_default()
                )
            })
        })
        .collect()
}

async fn target_group(elb: &elb::Client, arn: &str) -> elb::types::TargetGroup {
    elb.describe_target_groups()
        .target_group_arns(arn)
        .send()
        .await
        .expect("tg")
        .target_groups()[0]
        .clone()
}

async fn tg_attribute(elb: &elb::Client, arn: &str, key: &str) -> Option<String> {
    elb.describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .expect("tg attributes")
        .attributes()
        .iter()
        .find(|a| a.key() == Some(key))
        .and_then(|a| a.value().map(str::to_owned))
}

pub async fn pod_ips(ctx: &TestCtx, app: &str) -> BTreeSet<String> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_targets(ctx: &TestCtx, n: &Nlb, arn: &str, want: impl Fn(&BTreeSet<String>) -> bool) {
    wait_for("registered targets", WAIT, || async {
        let t = crate::targets::targets(ctx, arn).await;
        want(&t).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", n.c.proc.logs()));
}

async fn wait_no_leftovers(ctx: &TestCtx, n: &Nlb, name: &str) {
    let stack = format!("{}/{name}", ctx.namespace);
    let r = wait_for(&format!("nothing tagged {stack}"), WAIT, || async {
        tagged_with_key(ctx, STACK_TAG, &stack)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    if let Err(e) = r {
        panic!(
            "{e}: left {:?}\n{}\n{}",
            tagged_with_key(ctx, STACK_TAG, &stack).await,
            groups_dump(ctx).await,
            n.c.proc.logs()
        );
    }
}

#[tokio::test]
async fn ip_targets_tcp_and_udp_follow_the_deployment_and_delete_leaves_nothing() {
    let ctx = TestCtx::new("nlb-ip").await.expect("ctx");
    let n = start(&ctx, "nlb,targets", &[]).await;
    ctx.apply(&deployment("echo", 2)).await.expect("deployment");
    ctx.apply(&service(
        "echo",
        &n.class,
        "echo",
        &[("nlb-target-type", "ip"), ("scheme", "internet-facing")],
        "  - {name: tcp, port: 80, targetPort: 8080, protocol: TCP}\n  - {name: dns, port: 53, targetPort: 5353, protocol: UDP}\n",
    ))
    .await
    .expect("service");
    let dns = wait_hostname(&ctx, &n, "echo").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    assert_eq!(lb.r#type().map(|t| t.as_str()), Some("network"));
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    let mut subnets: Vec<String> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id().map(str::to_owned))
        .collect();
    subnets.sort();
    let mut public = ctx.env.seed.public_subnet_ids.clone();
    public.sort();
    assert_eq!(subnets, public, "internet-facing NLB in the public subnets");
    let ls = listeners(&elb, lb.load_balancer_arn().unwrap()).await;
    let names: BTreeSet<&str> = ls.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["TCP:80", "UDP:53"]));
    for (name, tg_arn, _) in &ls {
        let tg = target_group(&elb, tg_arn).await;
        assert_eq!(tg.target_type().map(|t| t.as_str()), Some("ip"));
        let want = if name.starts_with("UDP") {
            "UDP"
        } else {
            "TCP"
        };
        assert_eq!(tg.protocol().map(|p| p.as_str()), Some(want));
        assert_eq!(tg.health_check_protocol().map(|p| p.as_str()), Some("TCP"));
    }
    // Tags as the peer writes them.
    let tags = elb
        .describe_tags()
        .resource_arns(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .expect("tags");
    let tag = |k: &str| {
        tags.tag_descriptions()[0]
            .tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value().map(str::to_owned))
    };
    assert_eq!(tag(STACK_TAG), Some(format!("{}/echo", ctx.namespace)));
    assert_eq!(
        tag("service.k8s.aws/resource").as_deref(),
        Some("LoadBalancer")
    );
    assert_eq!(
        tag("elbv2.k8s.aws/cluster"),
        Some(ctx.env.seed.cluster_name.clone())
    );
    // The managed frontend security group opens both listeners.
    let rules = sg_rules(&ctx, &lb).await;
    assert!(
        rules.contains("tcp/80/0.0.0.0/0") && rules.contains("udp/53/0.0.0.0/0"),
        "{rules:?}"
    );

    // Targets: the pods, on their ports, following the Deployment.
    let (tcp_tg, udp_tg) = {
        let tcp = ls.iter().find(|(n, _, _)| n == "TCP:80").unwrap().1.clone();
        let udp = ls.iter().find(|(n, _, _)| n == "UDP:53").unwrap().1.clone();
        (tcp, udp)
    };
    let pods_as = |ips: &BTreeSet<String>, port: u16| -> BTreeSet<String> {
        ips.iter().map(|ip| format!("{ip}:{port}")).collect()
    };
    let ips = wait_for("2 pods with IPs", WAIT, || async {
        let ips = pod_ips(&ctx, "echo").await;
        (ips.len() == 2).then_some(ips)
    })
    .await
    .expect("pods");
    wait_targets(&ctx, &n, &tcp_tg, |t| *t == pods_as(&ips, 8080)).await;
    wait_targets(&ctx, &n, &udp_tg, |t| *t == pods_as(&ips, 5353)).await;
    crate::targets::scale(&ctx, "echo", 3).await;
    let ips = wait_for("3 pods with IPs", WAIT, || async {
        let ips = pod_ips(&ctx, "echo").await;
        (ips.len() == 3).then_some(ips)
    })
    .await
    .expect("pods");
    wait_targets(&ctx, &n, &tcp_tg, |t| *t == pods_as(&ips, 8080)).await;
    let s = svc(&ctx, "echo").await.expect("service");
    assert_eq!(
        condition(&s),
        Some(("True".to_owned(), "Reconciled".to_owned()))
    );
    assert!(
        s.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "service.k8s.aws/resources")
    );

    // Deleting the Service removes the NLB, its target groups and security groups.
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.delete("echo", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("Service gone", WAIT, || async {
        svc(&ctx, "echo").await.is_none().then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", n.c.proc.logs()));
    wait_no_leftovers(&ctx, &n, "echo").await;
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn instance_targets_tls_proxy_protocol_attributes_and_source_ranges() {
    let ctx = TestCtx::new("nlb-inst").await.expect("ctx");
    let n = start(&ctx, "nlb,targets", &[]).await;
    ctx.apply(&deployment("web", 1)).await.expect("deployment");
    let cert = ctx.env.seed.certificate_arn.clone();
    let yaml = service(
        "web",
        &n.class,
        "web",
        &[
            ("ssl-cert", &cert),
            ("ssl-ports", "https"),
            ("proxy-protocol", "*"),
            ("attributes", "load_balancing.cross_zone.enabled=true"),
            (
                "target-group-attributes",
                "deregistration_delay.timeout_seconds=30",
            ),
            ("healthcheck-protocol", "HTTP"),
            ("healthcheck-path", "/ready"),
            ("inbound-sg-rules-on-private-link-traffic", "off"),
            ("enable-tcp-udp-listener", "true"),
        ],
        "  - {name: https, port: 443, targetPort: 8080, protocol: TCP}\n  - {name: dns-tcp, port: 53, targetPort: 5353, protocol: TCP}\n  - {name: dns-udp, port: 53, targetPort: 5353, protocol: UDP}\n",
    );
    let yaml = yaml.replace(
        "  type: LoadBalancer\n",
        "  type: LoadBalancer\n  loadBalancerSourceRanges: [10.20.0.0/16]\n",
    );
    ctx.apply(&yaml).await.expect("service");
    let dns = wait_hostname(&ctx, &n, "web").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internal"));
    let ls = listeners(&elb, lb.load_balancer_arn().unwrap()).await;
    let names: BTreeSet<&str> = ls.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["TLS:443", "TCP_UDP:53"]));
    let (_, tls_tg, tls) = ls.iter().find(|(n, _, _)| n == "TLS:443").unwrap();
    assert_eq!(
        tls.certificates().first().and_then(|c| c.certificate_arn()),
        Some(cert.as_str())
    );
    assert_eq!(tls.ssl_policy(), Some("ELBSecurityPolicy-2016-08"));
    let tg = target_group(&elb, tls_tg).await;
    assert_eq!(
        tg.protocol().map(|p| p.as_str()),
        Some("TCP"),
        "TLS ends at the NLB"
    );
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("instance"));
    assert_eq!(tg.health_check_protocol().map(|p| p.as_str()), Some("HTTP"));
    assert_eq!(tg.health_check_path(), Some("/ready"));
    assert_eq!(
        tg_attribute(&elb, tls_tg, "proxy_protocol_v2.enabled")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        tg_attribute(&elb, tls_tg, "deregistration_delay.timeout_seconds")
            .await
            .as_deref(),
        Some("30")
    );
    let attrs = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .expect("lb attributes");
    assert!(
        attrs
            .attributes()
            .iter()
            .any(|a| a.key() == Some("load_balancing.cross_zone.enabled")
                && a.value() == Some("true"))
    );
    // Only the source range reaches the listeners.
    let cidrs: BTreeSet<String> = sg_rules(&ctx, &lb)
        .await
        .iter()
        .filter_map(|r| r.splitn(3, '/').nth(2).map(str::to_owned))
        .collect();
    assert_eq!(cidrs, BTreeSet::from(["10.20.0.0/16".to_owned()]));
    // Instance targets: the nodes, on the Service's NodePort.
    let s = svc(&ctx, "web").await.expect("service");
    let node_port = s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0]
        .node_port
        .unwrap();
    wait_targets(&ctx, &n, tls_tg, |t| {
        !t.is_empty()
            && t.iter()
                .all(|x| x.starts_with("i-") && x.ends_with(&format!(":{node_port}")))
    })
    .await;

    // Switched to ClusterIP: the NLB goes, and so do the hostname and the finalizer.
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"type": "ClusterIP", "loadBalancerClass": null, "loadBalancerSourceRanges": null,
            "ports": [{"name": "https", "port": 443, "targetPort": 8080, "protocol": "TCP", "nodePort": null},
                      {"name": "dns-tcp", "port": 53, "targetPort": 5353, "protocol": "TCP", "nodePort": null},
                      {"name": "dns-udp", "port": 53, "targetPort": 5353, "protocol": "UDP", "nodePort": null}]}})),
    )
    .await
    .expect("to ClusterIP");
    wait_no_leftovers(&ctx, &n, "web").await;
    wait_for("finalizer and hostname gone", WAIT, || async {
        let s = svc(&ctx, "web").await?;
        let fin = s
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "service.k8s.aws/resources");
        let host = s
            .status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_some_and(|i| !i.is_empty());
        (!fin && !host).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", n.c.proc.logs()));
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn bad_input_gets_a_condition_and_an_event_and_neighbours_keep_reconciling() {
    let ctx = TestCtx::new("nlb-bad").await.expect("ctx");
    let n = start(&ctx, "nlb", &[]).await;
    let ports = "  - {name: tcp, port: 80, targetPort: 8080, protocol: TCP}\n";
    ctx.apply(&service(
        "bad",
        &n.class,
        "x",
        &[("scheme", "sideways")],
        ports,
    ))
    .await
    .expect("bad");
    ctx.apply(&service(
        "nocert",
        &n.class,
        "x",
        &[("ssl-ports", "80")],
        ports,
    ))
    .await
    .expect("nocert");
    ctx.apply(&service(
        "sctp",
        &n.class,
        "x",
        &[],
        "  - {name: s, port: 80, targetPort: 8080, protocol: SCTP}\n",
    ))
    .await
    .expect("sctp");
    ctx.apply(&service("good", &n.class, "x", &[], ports))
        .await
        .expect("good");
    wait_hostname(&ctx, &n, "good").await;
    let note = wait_event(&ctx, &n, "bad", "InvalidAnnotation").await;
    assert!(note.contains("scheme"), "{note}");
    wait_event(&ctx, &n, "nocert", "CertificateNotFound").await;
    wait_event(&ctx, &n, "sctp", "UnsupportedPort").await;
    let bad = svc(&ctx, "bad").await.unwrap();
    assert_eq!(
        condition(&bad),
        Some(("False".to_owned(), "InvalidAnnotation".to_owned()))
    );
    assert!(
        tagged_with_key(&ctx, STACK_TAG, &format!("{}/bad", ctx.namespace))
            .await
            .is_empty()
    );

    // A bad change to a served Service keeps its NLB as it was.
    let dns = wait_hostname(&ctx, &n, "good").await;
    ctx.apply(&service(
        "good",
        &n.class,
        "x",
        &[("nlb-target-type", "pods")],
        ports,
    ))
    .await
    .expect("bad change");
    wait_event(&ctx, &n, "good", "InvalidAnnotation").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    assert_eq!(
        listeners(&elb, lb.load_balancer_arn().unwrap()).await.len(),
        1
    );
    // Fixed: served again, on the same NLB.
    ctx.apply(&service(
        "bad",
        &n.class,
        "x",
        &[("scheme", "internal")],
        ports,
    ))
    .await
    .expect("fixed");
    wait_hostname(&ctx, &n, "bad").await;
    for name in ["bad", "good", "nocert", "sctp"] {
        let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    wait_no_leftovers(&ctx, &n, "good").await;
    wait_no_leftovers(&ctx, &n, "bad").await;
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn a_service_hostname_becomes_an_alias_to_the_nlb() {
    let ctx = TestCtx::new("nlb-dns").await.expect("ctx");
    let zone = ctx.env.seed.public_zone_id.clone();
    let owner = unique_name("own");
    let n = start(
        &ctx,
        "nlb,dns",
        &[
            "--dns-namespace",
            &ctx.namespace,
            "--dns-txt-owner-id",
            &owner,
            "--dns-zone-id-filter",
            &zone,
            "--dns-domain-filter",
            "causeway.test",
            "--dns-debounce",
            "200ms",
        ],
    )
    .await;
    let host = format!("{}.causeway.test", unique_name("nlb"));
    ctx.apply(&service(
        "edge",
        &n.class,
        "x",
        &[
            ("external-dns.alpha.kubernetes.io/hostname", &host),
            ("scheme", "internet-facing"),
        ],
        "  - {name: tcp, port: 80, targetPort: 8080, protocol: TCP}\n",
    ))
    .await
    .expect("service");
    let dns_name = wait_hostname(&ctx, &n, "edge").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns_name).await;
    let r53 = crate::dns::route53(&ctx).await;
    let alias = wait_for("an alias record to the NLB", WAIT, || async {
        crate::dns::records_named(&r53, &zone, &host)
            .await
            .into_iter()
            .find(|r| r.r#type() == &aws_sdk_route53::types::RrType::A)
            .and_then(|r| r.alias_target().cloned())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", n.c.proc.logs()));
    assert_eq!(alias.dns_name().trim_end_matches('.'), dns_name);
    assert_eq!(Some(alias.hosted_zone_id()), lb.canonical_hosted_zone_id());
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.delete("edge", &DeleteParams::default())
        .await
        .expect("delete");
    wait_no_leftovers(&ctx, &n, "edge").await;
    wait_for("records gone", WAIT, || async {
        crate::dns::records_named(&r53, &zone, &host)
            .await
            .is_empty()
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", n.c.proc.logs()));
    ctx.cleanup().await.ok();
}

/// Reconcile of an unchanged Service: no writes, and how many reads.
#[tokio::test]
#[ignore]
async fn bench_nlb_steady_state_calls() {
    let ctx = TestCtx::new("nlbss").await.expect("ctx");
    let n = start(&ctx, "nlb", &[]).await;
    let ports = "  - {name: tcp, port: 80, targetPort: 8080, protocol: TCP}\n";
    ctx.apply(&service("ss", &n.class, "x", &[], ports))
        .await
        .expect("service");
    wait_hostname(&ctx, &n, "ss").await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let before = n.c.metrics().await;
    let (r0, w0) = (
        crate::alb::calls(&before, false),
        crate::alb::calls(&before, true),
    );
    // A Kubernetes-only change forces a reconcile of the unchanged Service.
    ctx.apply(&service(
        "ss",
        &n.class,
        "x",
        &[("causeway.dev/touch", "1")],
        ports,
    ))
    .await
    .expect("touch");
    wait_for("a reconcile", WAIT, || async {
        (crate::alb::calls(&n.c.metrics().await, false) > r0).then_some(())
    })
    .await
    .expect("reconcile");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = n.c.metrics().await;
    let (r1, w1) = (
        crate::alb::calls(&after, false),
        crate::alb::calls(&after, true),
    );
    // Owned: 1 NLB, 1 listener, 1 target group, 2 security groups.
    println!(
        "steady-state reconcile of an unchanged Service: {} reads, {} writes, 5 owned resources",
        r1 - r0,
        w1 - w0
    );
    for l in after
        .lines()
        .filter(|l| l.starts_with("causeway_aws_api_calls_total{"))
    {
        println!("  {l}");
    }
    assert_eq!(w1 - w0, 0, "an unchanged Service must not write");
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.delete("ss", &DeleteParams::default())
        .await
        .expect("delete");
    wait_no_leftovers(&ctx, &n, "ss").await;
    ctx.cleanup().await.ok();
}

/// Service created → NLB, listener and target group in moto, hostname in status.
#[tokio::test]
#[ignore]
async fn bench_nlb_service_to_hostname() {
    let ctx = TestCtx::new("nlbbench").await.expect("ctx");
    let n = start(&ctx, "nlb", &[]).await;
    let elb = elb_client(&ctx).await;
    let ports = "  - {name: tcp, port: 80, targetPort: 8080, protocol: TCP}\n";
    let mut samples = Vec::new();
    for i in 0..20 {
        let name = format!("b{i}");
        let t0 = std::time::Instant::now();
        ctx.apply(&service(&name, &n.class, "x", &[], ports))
            .await
            .expect("service");
        let dns = wait_hostname(&ctx, &n, &name).await;
        let lb = lb_by_dns(&elb, &dns).await;
        assert_eq!(
            listeners(&elb, lb.load_balancer_arn().unwrap()).await.len(),
            1
        );
        samples.push(t0.elapsed());
        let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        api.delete(&name, &DeleteParams::default())
            .await
            .expect("delete");
        // Each run starts on an idle controller, with the client-side ELBv2 limit refilled.
        wait_no_leftovers(&ctx, &n, &name).await;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let p99 = samples[((samples.len() as f64) * 0.99).ceil() as usize - 1];
    println!(
        "Service → NLB+listener+TG in moto with hostname set, 20 runs (idle controller): median {median:?}, p99 {p99:?}, min {:?}, max {:?}",
        samples[0],
        samples[samples.len() - 1]
    );
    ctx.cleanup().await.ok();
}
