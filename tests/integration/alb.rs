//! Ingress → ALB on the embedded control plane with moto: each test starts its own
//! `causeway controller` claiming a test-unique IngressClass controller name, so tests run in
//! parallel without seeing each other's Ingresses.

use crate::common::{Controller, Proc, free_port};
use aws_sdk_elasticloadbalancingv2 as elb;
use causeway_testenv::support::{TestCtx, http_get, unique_name, wait_for};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(90);

pub struct Alb {
    pub proc: Proc,
    pub port: u16,
    pub class: String,
}

/// Starts a controller that claims a fresh IngressClass named after the test namespace.
pub async fn start(ctx: &TestCtx) -> Alb {
    let class = class(ctx).await;
    let lease = unique_name("alb-lease");
    let name = format!("alb-{}", ctx.namespace);
    restart(ctx, &name, &class, &lease, &[])
}

/// The CRDs, and the test's IngressClass (named after its namespace).
pub async fn class(ctx: &TestCtx) -> String {
    crate::crds::install(ctx).await;
    let class = format!("alb-{}", ctx.namespace);
    let controller = format!("causeway.dev/{class}");
    ctx.apply(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: {class}\nspec:\n  controller: {controller}\n"
    ))
    .await
    .expect("IngressClass");
    class
}

/// A controller process for `class` (again, after a crash), with extra environment.
pub fn restart(ctx: &TestCtx, name: &str, class: &str, lease: &str, env: &[(&str, &str)]) -> Alb {
    let controller = format!("causeway.dev/{class}");
    let Controller { proc, port } = Controller::start_with_env(
        ctx,
        name,
        lease,
        &[
            "--controllers",
            "alb",
            "--alb-controller-name",
            &controller,
            "--log-level",
            "info,causeway=debug",
        ],
        env,
    );
    Alb {
        proc,
        port,
        class: class.to_string(),
    }
}

pub async fn elb_client(ctx: &TestCtx) -> elb::Client {
    elb::Client::new(&ctx.aws().await)
}

pub async fn ec2_client(ctx: &TestCtx) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&ctx.aws().await)
}

pub async fn hostname(ctx: &TestCtx, name: &str) -> Option<String> {
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    causeway::fixtures::hostname(&api.get_opt(name).await.ok()??)
}

pub async fn wait_hostname(ctx: &TestCtx, alb: &Alb, name: &str) -> String {
    wait_for(&format!("hostname of {name}"), WAIT, || hostname(ctx, name))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()))
}

/// The ALB whose DNS name is `dns`.
pub async fn lb_by_dns(elb: &elb::Client, dns: &str) -> elb::types::LoadBalancer {
    let all = elb
        .describe_load_balancers()
        .send()
        .await
        .expect("describe");
    all.load_balancers()
        .iter()
        .find(|l| l.dns_name() == Some(dns))
        .cloned()
        .unwrap_or_else(|| panic!("no load balancer with DNS name {dns}"))
}

pub async fn rules_of(elb: &elb::Client, lb_arn: &str, port: i32) -> Vec<elb::types::Rule> {
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .expect("listeners");
    let l = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(port))
        .unwrap_or_else(|| panic!("no listener on {port}"));
    let rules = elb
        .describe_rules()
        .listener_arn(l.listener_arn().unwrap())
        .send()
        .await
        .expect("rules");
    rules
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .cloned()
        .collect()
}

/// Every LoadBalancerGroup, for failure messages.
pub async fn groups_dump(ctx: &TestCtx) -> String {
    let api: Api<causeway::crd::LoadBalancerGroup> = Api::all(ctx.client.clone());
    match api.list(&ListParams::default()).await {
        Ok(l) => serde_json::to_string_pretty(&l.items).unwrap_or_default(),
        Err(e) => format!("listing LoadBalancerGroups failed: {e}"),
    }
}

/// The host-header values of `rules`.
pub fn hosts_of(rules: &[elb::types::Rule]) -> Vec<String> {
    rules
        .iter()
        .flat_map(|r| r.conditions())
        .filter(|c| c.field() == Some("host-header"))
        .flat_map(|c| {
            let mut v = c.values().to_vec();
            if let Some(h) = c.host_header_config() {
                v.extend(h.values().iter().cloned());
            }
            v
        })
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect()
}

/// Every LB, TG and SG in moto tagged with Ingress stack `stack`.
pub async fn tagged_with(ctx: &TestCtx, stack: &str) -> Vec<String> {
    tagged_with_key(ctx, "ingress.k8s.aws/stack", stack).await
}

/// Every LB, TG and SG in moto whose tag `key` is `stack`.
pub async fn tagged_with_key(ctx: &TestCtx, key: &str, stack: &str) -> Vec<String> {
    let elb = elb_client(ctx).await;
    let ec2 = ec2_client(ctx).await;
    let mut arns: Vec<String> = Vec::new();
    let lbs = elb.describe_load_balancers().send().await.expect("lbs");
    arns.extend(
        lbs.load_balancers()
            .iter()
            .filter_map(|l| l.load_balancer_arn())
            .map(str::to_owned),
    );
    let tgs = elb.describe_target_groups().send().await.expect("tgs");
    arns.extend(
        tgs.target_groups()
            .iter()
            .filter_map(|t| t.target_group_arn())
            .map(str::to_owned),
    );
    let mut found = Vec::new();
    for chunk in arns.chunks(20) {
        let tags = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .expect("tags");
        for d in tags.tag_descriptions() {
            if d.tags()
                .iter()
                .any(|t| t.key() == Some(key) && t.value() == Some(stack))
            {
                found.push(d.resource_arn().unwrap_or_default().to_owned());
            }
        }
    }
    let sgs = ec2
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{key}"))
                .values(stack)
                .build(),
        )
        .send()
        .await
        .expect("sgs");
    found.extend(
        sgs.security_groups()
            .iter()
            .filter_map(|s| s.group_id())
            .map(str::to_owned),
    );
    found
}

pub fn services(extra_ip_service: bool) -> String {
    let mut y = String::from(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.example/web:1
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"#,
    );
    if extra_ip_service {
        y.push_str(
            r#"---
apiVersion: v1
kind: Service
metadata:
  name: api
  annotations:
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/healthcheck-path: /healthz
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"#,
        );
    }
    y
}

pub fn ingress(name: &str, class: &str, annotations: &[(&str, &str)], rules: &str) -> String {
    let mut anns = String::new();
    for (k, v) in annotations {
        anns.push_str(&format!("    {k}: '{v}'\n"));
    }
    let anns = if anns.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n{anns}")
    };
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n{anns}spec:\n  ingressClassName: {class}\n  rules:\n{rules}"
    )
}

pub fn rule(host: &str, path: &str, service: &str) -> String {
    format!(
        "  - host: {host}\n    http:\n      paths:\n      - path: {path}\n        pathType: Prefix\n        backend:\n          service:\n            name: {service}\n            port:\n              number: 80\n"
    )
}

/// Waits for an Event with `reason` on the Ingress `name`.
pub async fn wait_event(ctx: &TestCtx, alb: &Alb, name: &str, reason: &str) {
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_for(&format!("a {reason} Event on {name}"), WAIT, || async {
        let l = events.list(&ListParams::default()).await.ok()?;
        l.items
            .iter()
            .any(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
}

pub async fn delete_ingress(ctx: &TestCtx, name: &str) {
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete ingress");
}

pub async fn wait_gone(ctx: &TestCtx, alb: &Alb, name: &str) {
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_for(&format!("Ingress {name} gone"), WAIT, || async {
        matches!(api.get_opt(name).await, Ok(None)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
}

async fn wait_no_leftovers(ctx: &TestCtx, alb: &Alb, stack: &str) {
    let result = wait_for(
        &format!("no AWS resources tagged {stack}"),
        WAIT,
        || async { tagged_with(ctx, stack).await.is_empty().then_some(()) },
    )
    .await;
    if let Err(e) = result {
        panic!(
            "{e}: left over {:?}\n{}",
            tagged_with(ctx, stack).await,
            alb.proc.logs()
        );
    }
}

#[tokio::test]
async fn single_ingress_gets_an_alb_and_is_cleaned_up() {
    let ctx = TestCtx::new("alb1").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    ctx.apply(&ingress(
        "web",
        &alb.class,
        &[],
        &rule("web.causeway.test", "/", "web"),
    ))
    .await
    .expect("ingress");
    let dns = wait_hostname(&ctx, &alb, "web").await;

    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internal"));
    assert!(lb.load_balancer_name().unwrap().len() <= 32);
    let subnets: Vec<&str> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id())
        .collect();
    let mut expected = ctx.env.seed.private_subnet_ids.clone();
    expected.sort();
    let mut got: Vec<String> = subnets.iter().map(|s| s.to_string()).collect();
    got.sort();
    assert_eq!(got, expected, "internal ALB in the private subnets");
    let rules = rules_of(&elb, lb.load_balancer_arn().unwrap(), 80).await;
    assert_eq!(rules.len(), 1);
    let tg_arn = rules[0].actions()[0]
        .forward_config()
        .and_then(|f| f.target_groups().first())
        .and_then(|t| t.target_group_arn())
        .or(rules[0].actions()[0].target_group_arn())
        .expect("forward target")
        .to_owned();
    let tgs = elb
        .describe_target_groups()
        .target_group_arns(&tg_arn)
        .send()
        .await
        .expect("tg");
    let tg = &tgs.target_groups()[0];
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("instance"));
    let stack = format!("{}/web", ctx.namespace);
    let tags = elb
        .describe_tags()
        .resource_arns(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .expect("tags");
    let lb_tags = tags.tag_descriptions()[0].tags();
    let tag = |k: &str| {
        lb_tags
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    assert_eq!(tag("ingress.k8s.aws/stack"), Some(stack.clone()));
    assert_eq!(
        tag("elbv2.k8s.aws/cluster"),
        Some(ctx.env.seed.cluster_name.clone())
    );

    // A TargetGroupBinding for the target group, reaching the Service from the backend SG.
    let tgbs: Api<causeway::crd::TargetGroupBinding> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = wait_for("TargetGroupBinding", WAIT, || async {
        let l = tgbs.list(&ListParams::default()).await.ok()?;
        (!l.items.is_empty()).then_some(l)
    })
    .await
    .expect("tgb");
    let b = &list.items[0];
    assert_eq!(b.spec.target_group_arn.as_deref(), Some(tg_arn.as_str()));
    assert_eq!(b.spec.service_ref.name, "web");
    assert!(
        b.spec
            .networking
            .as_ref()
            .is_some_and(|n| !n.ingress.is_empty())
    );

    // The group object shows the ALB.
    let groups: Api<causeway::crd::LoadBalancerGroup> = Api::all(ctx.client.clone());
    let g = groups
        .get(&format!("ingress.{}.web", ctx.namespace))
        .await
        .expect("group object");
    let s = g.status.expect("status");
    assert_eq!(s.load_balancers[0].dns_name.as_deref(), Some(dns.as_str()));
    assert_eq!((s.member_count, s.rule_count), (1, 1));
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );

    delete_ingress(&ctx, "web").await;
    wait_gone(&ctx, &alb, "web").await;
    wait_no_leftovers(&ctx, &alb, &stack).await;
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn group_of_three_with_one_bad_member() {
    let ctx = TestCtx::new("alb3").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    let group = format!("shop-{}", ctx.namespace);
    let g = [("alb.ingress.kubernetes.io/group.name", group.as_str())];
    ctx.apply(&ingress(
        "a",
        &alb.class,
        &g,
        &rule("a.causeway.test", "/", "web"),
    ))
    .await
    .expect("a");
    ctx.apply(&ingress(
        "b",
        &alb.class,
        &g,
        &rule("b.causeway.test", "/", "missing"),
    ))
    .await
    .expect("b");
    ctx.apply(&ingress(
        "c",
        &alb.class,
        &g,
        &rule("c.causeway.test", "/", "web"),
    ))
    .await
    .expect("c");
    let dns_a = wait_hostname(&ctx, &alb, "a").await;
    let dns_c = wait_hostname(&ctx, &alb, "c").await;
    assert_eq!(dns_a, dns_c, "one ALB for the group");

    let groups: Api<causeway::crd::LoadBalancerGroup> = Api::all(ctx.client.clone());
    let status = wait_for("group status lists b as excluded", WAIT, || async {
        let s = groups.get(&group).await.ok()?.status?;
        (s.member_count == 2 && s.rule_count == 2).then_some(s)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    let b = status
        .members
        .iter()
        .find(|m| m.name == "b")
        .expect("b listed");
    assert!(!b.accepted);
    assert_eq!(b.reason.as_deref(), Some("ServiceNotFound"));
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Degraded" && c.status == "True")
    );
    assert!(hostname(&ctx, "b").await.is_none());

    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_event(&ctx, &alb, "b", "ServiceNotFound").await;

    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns_a).await;
    assert_eq!(
        rules_of(&elb, lb.load_balancer_arn().unwrap(), 80)
            .await
            .len(),
        2
    );

    // Fixing b brings it in without disturbing the others.
    ctx.apply(&services(false).replace("name: web\nspec:\n  type", "name: missing\nspec:\n  type"))
        .await
        .expect("svc");
    wait_hostname(&ctx, &alb, "b").await;
    wait_for("3 rules", WAIT, || async {
        (rules_of(&elb, lb.load_balancer_arn().unwrap(), 80)
            .await
            .len()
            == 3)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));

    // A bad edit to c, which was accepted, keeps c's rule on the ALB until it is fixed.
    let broken_ports = [
        ("alb.ingress.kubernetes.io/group.name", group.as_str()),
        ("alb.ingress.kubernetes.io/listen-ports", "[{\"HTTP\": 80"),
    ];
    ctx.apply(&ingress(
        "c",
        &alb.class,
        &broken_ports,
        &rule("c2.causeway.test", "/", "web"),
    ))
    .await
    .expect("c broken");
    let status = wait_for("c serves its last accepted configuration", WAIT, || async {
        let s = groups.get(&group).await.ok()?.status?;
        s.members
            .iter()
            .any(|m| m.name == "c" && m.serving_last_accepted)
            .then_some(s)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    let c = status.members.iter().find(|m| m.name == "c").expect("c");
    assert!(!c.accepted);
    assert_eq!(c.reason.as_deref(), Some("InvalidAnnotation"));
    assert_eq!(status.member_count, 3);
    let hosts: Vec<String> = hosts_of(&rules_of(&elb, lb.load_balancer_arn().unwrap(), 80).await);
    assert!(hosts.contains(&"c.causeway.test".to_owned()), "{hosts:?}");
    assert!(!hosts.contains(&"c2.causeway.test".to_owned()), "{hosts:?}");
    assert_eq!(hostname(&ctx, "c").await.as_deref(), Some(dns_a.as_str()));
    wait_for("change-rejected event on c", WAIT, || async {
        let l = events.list(&ListParams::default()).await.ok()?;
        l.items
            .iter()
            .any(|e| {
                e.involved_object.name.as_deref() == Some("c")
                    && e.reason.as_deref() == Some("InvalidAnnotation")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("last accepted"))
            })
            .then_some(())
    })
    .await
    .expect("event on c");
    // Fixed, c's new rule replaces the kept one.
    ctx.apply(&ingress(
        "c",
        &alb.class,
        &g,
        &rule("c2.causeway.test", "/", "web"),
    ))
    .await
    .expect("c fixed");
    wait_for("c's new host on the ALB", WAIT, || async {
        let hosts: Vec<String> =
            hosts_of(&rules_of(&elb, lb.load_balancer_arn().unwrap(), 80).await);
        (hosts.contains(&"c2.causeway.test".to_owned())
            && !hosts.contains(&"c.causeway.test".to_owned())
            && hosts.len() == 3)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));

    for n in ["a", "b", "c"] {
        delete_ingress(&ctx, n).await;
    }
    for n in ["a", "b", "c"] {
        wait_gone(&ctx, &alb, n).await;
    }
    wait_no_leftovers(&ctx, &alb, &group).await;
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn security_groups_annotation_attaches_named_groups_and_creates_none() {
    let ctx = TestCtx::new("albsg").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    // A security group the user owns, found by its Name tag.
    let ec2 = ec2_client(&ctx).await;
    let sg_name = unique_name("users-sg");
    let sg_id = ec2
        .create_security_group()
        .group_name(&sg_name)
        .description("owned by the user")
        .vpc_id(&ctx.env.seed.vpc_id)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Name")
                        .value(&sg_name)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("user's sg")
        .group_id()
        .unwrap()
        .to_owned();
    ctx.apply(&ingress(
        "web",
        &alb.class,
        &[(
            "alb.ingress.kubernetes.io/security-groups",
            sg_name.as_str(),
        )],
        &rule("sg.causeway.test", "/", "web"),
    ))
    .await
    .expect("ingress");
    // A second Ingress names a group that does not exist: it alone is left out.
    ctx.apply(&ingress(
        "bad",
        &alb.class,
        &[("alb.ingress.kubernetes.io/security-groups", "no-such-group")],
        &rule("bad.causeway.test", "/", "web"),
    ))
    .await
    .expect("bad ingress");
    let dns = wait_hostname(&ctx, &alb, "web").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    assert_eq!(lb.security_groups(), std::slice::from_ref(&sg_id));
    let stack = format!("{}/web", ctx.namespace);
    let ours = tagged_with(&ctx, &stack).await;
    assert!(
        !ours.iter().any(|r| r.starts_with("sg-")),
        "no managed security group: {ours:?}"
    );
    wait_event(&ctx, &alb, "bad", "SecurityGroupNotFound").await;

    for n in ["web", "bad"] {
        delete_ingress(&ctx, n).await;
    }
    for n in ["web", "bad"] {
        wait_gone(&ctx, &alb, n).await;
    }
    wait_no_leftovers(&ctx, &alb, &stack).await;
    // The user's group is still there.
    let left = ec2
        .describe_security_groups()
        .group_ids(&sg_id)
        .send()
        .await
        .expect("user's sg survives");
    assert_eq!(left.security_groups().len(), 1);
    ec2.delete_security_group()
        .group_id(&sg_id)
        .send()
        .await
        .ok();
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn alb_and_dns_in_one_process_publish_the_new_alb() {
    let ctx = TestCtx::new("albdns").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let class = format!("alb-{}", ctx.namespace);
    let controller = format!("causeway.dev/{class}");
    ctx.apply(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: {class}\nspec:\n  controller: {controller}\n"
    ))
    .await
    .expect("IngressClass");
    ctx.apply(&services(false)).await.expect("services");
    let owner = unique_name("own");
    let zone = ctx.env.seed.public_zone_id.clone();
    let port = free_port();
    let lease = unique_name("albdns-lease");
    let proc = Proc::start(
        &ctx,
        &format!("albdns-{}", ctx.namespace),
        &[
            "controller",
            "--controllers",
            "alb,dns",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--leader-election-namespace",
            &ctx.namespace,
            "--leader-election-id",
            &lease,
            "--alb-controller-name",
            &controller,
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
    );
    let alb = Alb { proc, port, class };
    let host = format!("{}.causeway.test", unique_name("shop"));
    ctx.apply(&ingress("shop", &alb.class, &[], &rule(&host, "/", "web")))
        .await
        .expect("ingress");
    let dns_name = wait_hostname(&ctx, &alb, "shop").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns_name).await;
    let r53 = crate::dns::route53(&ctx).await;
    let alias = wait_for("an alias record to the ALB", WAIT, || async {
        crate::dns::records_named(&r53, &zone, &host)
            .await
            .into_iter()
            .find(|r| r.r#type() == &aws_sdk_route53::types::RrType::A)
            .and_then(|r| r.alias_target().cloned())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    assert_eq!(alias.dns_name().trim_end_matches('.'), dns_name);
    assert_eq!(
        Some(alias.hosted_zone_id()),
        lb.canonical_hosted_zone_id(),
        "the ALB's own canonical zone"
    );

    delete_ingress(&ctx, "shop").await;
    wait_gone(&ctx, &alb, "shop").await;
    wait_for("records and ALB gone", WAIT, || async {
        let left = crate::dns::records_named(&r53, &zone, &host).await.len()
            + crate::dns::records_named(&r53, &zone, &format!("a-{host}"))
                .await
                .len();
        (left == 0).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    wait_no_leftovers(&ctx, &alb, &format!("{}/shop", ctx.namespace)).await;
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn https_with_a_discovered_certificate_and_ssl_redirect() {
    let ctx = TestCtx::new("albtls").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    ctx.apply(&ingress(
        "tls",
        &alb.class,
        &[
            (
                "alb.ingress.kubernetes.io/listen-ports",
                r#"[{"HTTP":80},{"HTTPS":443}]"#,
            ),
            ("alb.ingress.kubernetes.io/ssl-redirect", "443"),
            ("alb.ingress.kubernetes.io/scheme", "internet-facing"),
        ],
        &rule("shop.causeway.test", "/", "web"),
    ))
    .await
    .expect("ingress");
    let dns = wait_hostname(&ctx, &alb, "tls").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .expect("listeners");
    let https = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(443))
        .expect("443");
    assert_eq!(https.protocol().map(|p| p.as_str()), Some("HTTPS"));
    assert_eq!(
        https
            .certificates()
            .first()
            .and_then(|c| c.certificate_arn()),
        Some(ctx.env.seed.certificate_arn.as_str())
    );
    let http = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(80))
        .expect("80");
    assert_eq!(
        http.default_actions()[0].r#type().map(|t| t.as_str()),
        Some("redirect")
    );
    assert_eq!(
        rules_of(&elb, lb.load_balancer_arn().unwrap(), 443)
            .await
            .len(),
        1
    );

    // Named certificates and tags: extra certificates and tag keys that are dropped from
    // the annotations are removed from the listener and the load balancer.
    let conf = ctx.aws().await;
    let c2 = causeway_testenv::seed::import_certificate(&conf)
        .await
        .expect("cert 2");
    let c3 = causeway_testenv::seed::import_certificate(&conf)
        .await
        .expect("cert 3");
    let https_arn = https.listener_arn().unwrap().to_owned();
    let lb_arn = lb.load_balancer_arn().unwrap().to_owned();
    let with = |certs: String, tags: &'static str| {
        let ports = r#"[{"HTTP":80},{"HTTPS":443}]"#;
        ingress(
            "tls",
            &alb.class,
            &[
                ("alb.ingress.kubernetes.io/listen-ports", ports),
                ("alb.ingress.kubernetes.io/ssl-redirect", "443"),
                ("alb.ingress.kubernetes.io/scheme", "internet-facing"),
                ("alb.ingress.kubernetes.io/certificate-arn", &certs),
                ("alb.ingress.kubernetes.io/tags", tags),
            ],
            &rule("shop.causeway.test", "/", "web"),
        )
    };
    let state = || async {
        let certs = elb
            .describe_listener_certificates()
            .listener_arn(&https_arn)
            .send()
            .await
            .ok()?;
        let mut arns: Vec<(bool, String)> = certs
            .certificates()
            .iter()
            .map(|c| {
                (
                    c.is_default() == Some(true),
                    c.certificate_arn().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        arns.sort();
        let tags = elb
            .describe_tags()
            .resource_arns(&lb_arn)
            .send()
            .await
            .ok()?;
        let tags: BTreeMap<String, String> = tags.tag_descriptions()[0]
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        Some((arns, tags))
    };
    let seed_cert = ctx.env.seed.certificate_arn.clone();
    ctx.apply(&with(format!("{seed_cert},{c2},{c3}"), "team=a,tier=web"))
        .await
        .expect("three certificates");
    let r = wait_for("three certificates and two tags", WAIT, || async {
        let (certs, tags) = state().await?;
        let extras: Vec<&String> = certs.iter().filter(|c| !c.0).map(|c| &c.1).collect();
        (extras.contains(&&c2)
            && extras.contains(&&c3)
            && tags.get("tier").map(String::as_str) == Some("web"))
        .then_some(())
    })
    .await;
    if let Err(e) = r {
        panic!("{e}\n{}\n{}", groups_dump(&ctx).await, alb.proc.logs());
    }
    ctx.apply(&with(format!("{seed_cert},{c2}"), "team=b"))
        .await
        .expect("two certificates");
    let (certs, tags) = wait_for("c3 and the tier tag removed", WAIT, || async {
        let (certs, tags) = state().await?;
        let extras: Vec<&String> = certs.iter().filter(|c| !c.0).map(|c| &c.1).collect();
        (!extras.contains(&&c3) && !tags.contains_key("tier")).then_some((certs, tags))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    assert!(certs.contains(&(true, seed_cert.clone())), "{certs:?}");
    assert!(certs.iter().any(|c| c.1 == c2), "{certs:?}");
    assert_eq!(tags.get("team").map(String::as_str), Some("b"));
    assert!(tags.contains_key("elbv2.k8s.aws/cluster"), "{tags:?}");

    delete_ingress(&ctx, "tls").await;
    wait_gone(&ctx, &alb, "tls").await;
    wait_no_leftovers(&ctx, &alb, &format!("{}/tls", ctx.namespace)).await;
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn actions_and_conditions_annotations() {
    let ctx = TestCtx::new("albact").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(true)).await.expect("services");
    let y = format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: act
  annotations:
    alb.ingress.kubernetes.io/actions.split: '{{"type":"forward","forwardConfig":{{"targetGroups":[{{"serviceName":"web","servicePort":"80","weight":70}},{{"serviceName":"api","servicePort":80,"weight":30}}]}}}}'
    alb.ingress.kubernetes.io/conditions.split: '[{{"field":"http-header","httpHeaderConfig":{{"httpHeaderName":"X-Canary","values":["yes"]}}}}]'
    alb.ingress.kubernetes.io/actions.gone: '{{"type":"fixed-response","fixedResponseConfig":{{"contentType":"text/plain","statusCode":"410","messageBody":"gone"}}}}'
    alb.ingress.kubernetes.io/actions.old: '{{"type":"redirect","redirectConfig":{{"host":"new.causeway.test","statusCode":"HTTP_301"}}}}'
spec:
  ingressClassName: {class}
  rules:
  - host: act.causeway.test
    http:
      paths:
      - {{path: /split, pathType: Exact, backend: {{service: {{name: split, port: {{name: use-annotation}}}}}}}}
      - {{path: /gone, pathType: Exact, backend: {{service: {{name: gone, port: {{name: use-annotation}}}}}}}}
      - {{path: /old, pathType: Exact, backend: {{service: {{name: old, port: {{name: use-annotation}}}}}}}}
"#,
        class = alb.class
    );
    ctx.apply(&y).await.expect("ingress");
    let dns = wait_hostname(&ctx, &alb, "act").await;
    let elb = elb_client(&ctx).await;
    let lb = lb_by_dns(&elb, &dns).await;
    let rules = rules_of(&elb, lb.load_balancer_arn().unwrap(), 80).await;
    assert_eq!(rules.len(), 3, "{rules:#?}");
    let by_priority = |p: &str| {
        rules
            .iter()
            .find(|r| r.priority() == Some(p))
            .expect("rule")
    };
    let split = by_priority("1");
    let weights: Vec<i32> = split.actions()[0]
        .forward_config()
        .unwrap()
        .target_groups()
        .iter()
        .filter_map(|t| t.weight())
        .collect();
    assert_eq!(weights, vec![70, 30]);
    assert!(
        split
            .conditions()
            .iter()
            .any(|c| c.field() == Some("http-header"))
    );
    let gone = by_priority("2");
    assert_eq!(
        gone.actions()[0]
            .fixed_response_config()
            .and_then(|f| f.status_code()),
        Some("410")
    );
    let old = by_priority("3");
    assert_eq!(
        old.actions()[0].redirect_config().and_then(|r| r.host()),
        Some("new.causeway.test")
    );

    // target-type ip (from the Service annotation) and instance side by side.
    let arns: Vec<String> = split.actions()[0]
        .forward_config()
        .unwrap()
        .target_groups()
        .iter()
        .filter_map(|t| t.target_group_arn())
        .map(str::to_owned)
        .collect();
    let tgs = elb
        .describe_target_groups()
        .set_target_group_arns(Some(arns))
        .send()
        .await
        .expect("tgs");
    let mut types: Vec<(String, i32)> = tgs
        .target_groups()
        .iter()
        .map(|t| {
            (
                t.target_type()
                    .map(|x| x.as_str().to_owned())
                    .unwrap_or_default(),
                t.port().unwrap_or_default(),
            )
        })
        .collect();
    types.sort();
    assert_eq!(types[0].0, "instance");
    assert!(
        types[0].1 >= 30000,
        "instance TG on the NodePort: {types:?}"
    );
    assert_eq!(types[1], ("ip".to_owned(), 8080));
    let ip_tg = tgs
        .target_groups()
        .iter()
        .find(|t| t.target_type().map(|x| x.as_str()) == Some("ip"))
        .unwrap();
    assert_eq!(ip_tg.health_check_path(), Some("/healthz"));

    delete_ingress(&ctx, "act").await;
    wait_gone(&ctx, &alb, "act").await;
    wait_no_leftovers(&ctx, &alb, &format!("{}/act", ctx.namespace)).await;
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn moving_between_groups_and_deleting_leaves_nothing() {
    let ctx = TestCtx::new("albmv").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    let g1 = format!("one-{}", ctx.namespace);
    let g2 = format!("two-{}", ctx.namespace);
    ctx.apply(&ingress(
        "xx",
        &alb.class,
        &[("alb.ingress.kubernetes.io/group.name", &g1)],
        &rule("x.causeway.test", "/", "web"),
    ))
    .await
    .expect("x");
    ctx.apply(&ingress(
        "yy",
        &alb.class,
        &[("alb.ingress.kubernetes.io/group.name", &g1)],
        &rule("y.causeway.test", "/", "web"),
    ))
    .await
    .expect("y");
    let dns1 = wait_hostname(&ctx, &alb, "xx").await;
    assert_eq!(wait_hostname(&ctx, &alb, "yy").await, dns1);
    let elb = elb_client(&ctx).await;
    let lb1 = lb_by_dns(&elb, &dns1).await;
    wait_for("2 rules on group one", WAIT, || async {
        (rules_of(&elb, lb1.load_balancer_arn().unwrap(), 80)
            .await
            .len()
            == 2)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));

    // Move x to group two.
    ctx.apply(&ingress(
        "xx",
        &alb.class,
        &[("alb.ingress.kubernetes.io/group.name", &g2)],
        &rule("x.causeway.test", "/", "web"),
    ))
    .await
    .expect("xx moved");
    let dns2 = wait_for("x on a new ALB", WAIT, || async {
        hostname(&ctx, "xx").await.filter(|h| *h != dns1)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    let lb2 = lb_by_dns(&elb, &dns2).await;
    assert_eq!(
        rules_of(&elb, lb2.load_balancer_arn().unwrap(), 80)
            .await
            .len(),
        1
    );
    wait_for("group one keeps only y's rule", WAIT, || async {
        (rules_of(&elb, lb1.load_balancer_arn().unwrap(), 80)
            .await
            .len()
            == 1)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    // x's old target group is gone from group one: only y's remains tagged for it.
    wait_for("x's old target group deleted", WAIT, || async {
        let tagged = tagged_with(&ctx, &g1).await;
        let tgs = tagged
            .iter()
            .filter(|a| a.contains(":targetgroup/"))
            .count();
        (tgs == 1).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));

    delete_ingress(&ctx, "xx").await;
    delete_ingress(&ctx, "yy").await;
    wait_gone(&ctx, &alb, "xx").await;
    wait_gone(&ctx, &alb, "yy").await;
    wait_no_leftovers(&ctx, &alb, &g1).await;
    wait_no_leftovers(&ctx, &alb, &g2).await;
    let groups: Api<causeway::crd::LoadBalancerGroup> = Api::all(ctx.client.clone());
    wait_for("group objects deleted", WAIT, || async {
        (groups.get_opt(&g1).await.ok()?.is_none() && groups.get_opt(&g2).await.ok()?.is_none())
            .then_some(())
    })
    .await
    .expect("groups deleted");
    ctx.cleanup().await.ok();
}

pub fn calls(metrics: &str, writes: bool) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("causeway_aws_api_calls_total{"))
        .filter(|l| {
            l.contains("service=\"elbv2\"")
                || l.contains("service=\"ec2\"")
                || l.contains("service=\"acm\"")
        })
        .filter(|l| {
            let op = l
                .split("operation=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_default();
            let read =
                op.starts_with("Describe") || op.starts_with("List") || op.starts_with("Get");
            read != writes
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

pub async fn metrics(alb: &Alb) -> String {
    http_get(&format!("http://127.0.0.1:{}/metrics", alb.port))
        .await
        .map(|(_, b)| b)
        .unwrap_or_default()
}

/// Steady state: a forced resync of an unchanged group makes no writes and at most one read
/// per owned resource.
#[tokio::test]
#[ignore]
async fn bench_alb_steady_state_calls() {
    let ctx = TestCtx::new("albss").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    let mut rules = String::new();
    for i in 0..5 {
        rules.push_str(&rule(&format!("h{i}.causeway.test"), "/", "web"));
    }
    ctx.apply(&ingress("ss", &alb.class, &[], &rules))
        .await
        .expect("ingress");
    wait_hostname(&ctx, &alb, "ss").await;
    // Let the post-apply pass settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = metrics(&alb).await;
    let (r0, w0) = (calls(&before, false), calls(&before, true));
    // A Kubernetes-only change forces a reconcile of the unchanged group.
    ctx.apply(&ingress(
        "ss",
        &alb.class,
        &[("causeway.dev/resync", "1")],
        &rules,
    ))
    .await
    .expect("touch");
    wait_for("a resync reconcile", WAIT, || async {
        (calls(&metrics(&alb).await, false) > r0).then_some(())
    })
    .await
    .expect("resync");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = metrics(&alb).await;
    let (r1, w1) = (calls(&after, false), calls(&after, true));
    // Owned: 1 ALB, 2 SGs, 1 listener, 5 rules, 1 target group.
    let owned = 10;
    println!(
        "steady-state reconcile: {} reads, {} writes, {owned} owned resources",
        r1 - r0,
        w1 - w0
    );
    for l in after
        .lines()
        .filter(|l| l.starts_with("causeway_aws_api_calls_total{"))
    {
        println!("  {l}");
    }
    assert_eq!(w1 - w0, 0, "an unchanged group must not write");
    assert!(r1 - r0 <= owned, "{} reads for {owned} resources", r1 - r0);
    delete_ingress(&ctx, "ss").await;
    wait_gone(&ctx, &alb, "ss").await;
    ctx.cleanup().await.ok();
}

/// Ingress created → ALB, listener, rules and target groups in moto with the hostname set.
#[tokio::test]
#[ignore]
async fn bench_alb_ingress_to_hostname() {
    ingress_to_hostname(true).await;
    ingress_to_hostname(false).await;
}

async fn ingress_to_hostname(idle: bool) {
    let ctx = TestCtx::new("albbench").await.expect("ctx");
    let alb = start(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    let elb = elb_client(&ctx).await;
    let mut samples = Vec::new();
    for i in 0..20 {
        let name = format!("b{i}");
        let t0 = Instant::now();
        ctx.apply(&ingress(
            &name,
            &alb.class,
            &[],
            &rule(&format!("{name}.causeway.test"), "/", "web"),
        ))
        .await
        .expect("ingress");
        let dns = wait_hostname(&ctx, &alb, &name).await;
        let lb = lb_by_dns(&elb, &dns).await;
        assert_eq!(
            rules_of(&elb, lb.load_balancer_arn().unwrap(), 80)
                .await
                .len(),
            1
        );
        samples.push(t0.elapsed());
        delete_ingress(&ctx, &name).await;
        if idle {
            // Let the deletion finish and the client-side ELBv2 rate limit (10/s, burst 20)
            // refill, so each run starts on an idle controller.
            wait_gone(&ctx, &alb, &name).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let p99 = samples[((samples.len() as f64) * 0.99).ceil() as usize - 1];
    println!(
        "ingress → ALB+listener+rules+TG in moto with hostname set, 20 runs ({}): median {median:?}, p99 {p99:?}, min {:?}, max {:?}",
        if idle {
            "idle controller"
        } else {
            "back to back, each run also deleting the previous ALB"
        },
        samples[0],
        samples[samples.len() - 1]
    );
    for i in 0..20 {
        wait_gone(&ctx, &alb, &format!("b{i}")).await;
    }
    ctx.cleanup().await.ok();
}

/// Two target groups reaching pods on the same port from the same backend group need one
/// node security-group rule between them. A restart with nothing changed writes nothing;
/// deleting one Ingress keeps the rule for the other, deleting both removes it.
#[tokio::test]
async fn shared_node_rules_survive_a_restart_and_a_neighbours_delete() {
    let ctx = TestCtx::new("albshare").await.expect("ctx");
    let class = class(&ctx).await;
    let controller = format!("causeway.dev/{class}");
    let args = [
        "--controllers",
        "alb,targets",
        "--alb-controller-name",
        controller.as_str(),
        "--targets-namespace",
        ctx.namespace.as_str(),
        "--webhook-enabled",
        "false",
    ];
    let lease = unique_name("share-lease");
    let mut first = Controller::start(&ctx, &unique_name("share"), &lease, &args);
    ctx.apply(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example/web:1, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#,
    )
    .await
    .expect("workload");
    let group = [
        (
            "alb.ingress.kubernetes.io/group.name",
            ctx.namespace.as_str(),
        ),
        ("alb.ingress.kubernetes.io/target-type", "ip"),
    ];
    ctx.apply(&ingress(
        "a",
        &class,
        &group,
        &rule("a.causeway.test", "/", "a"),
    ))
    .await
    .expect("a");
    ctx.apply(&ingress(
        "b",
        &class,
        &group,
        &rule("b.causeway.test", "/", "b"),
    ))
    .await
    .expect("b");
    let node_sg = ctx.env.seed.node_security_group_id.clone();
    let ec2 = ec2_client(&ctx).await;
    let our_rules = || async {
        let r = ec2
            .describe_security_group_rules()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .values(&node_sg)
                    .build(),
            )
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:elbv2.k8s.aws/cluster")
                    .values(&ctx.env.seed.cluster_name)
                    .build(),
            )
            .send()
            .await
            .expect("rules");
        r.security_group_rules()
            .iter()
            .filter(|x| x.from_port() == Some(8080))
            .filter(|x| {
                x.tags().iter().any(|t| {
                    t.key().is_some_and(|k| {
                        k.starts_with(&format!("causeway.dev/tgb/{}/", ctx.namespace))
                    })
                })
            })
            .map(|x| {
                let owners = x
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        t.key()?
                            .strip_prefix("causeway.dev/tgb/")
                            .map(str::to_owned)
                    })
                    .count();
                (
                    x.security_group_rule_id().unwrap_or_default().to_owned(),
                    owners,
                )
            })
            .collect::<Vec<_>>()
    };
    let logs = |c: &Controller| c.proc.logs();
    wait_for("one node rule owned by both bindings", WAIT, || async {
        let r = our_rules().await;
        (r.len() == 1 && r[0].1 == 2).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&first)));

    // Restart with nothing changed: the new process reads, and writes nothing.
    first.proc.terminate();
    let second = Controller::start(&ctx, &unique_name("share2"), &lease, &args);
    wait_for(
        "the restarted controller re-verified the bindings",
        WAIT,
        || async {
            let m = second.metrics().await;
            (m.contains("operation=\"DescribeSecurityGroupRules\"")
                && m.contains("operation=\"DescribeTargetHealth\""))
            .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&second)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = second.metrics().await;
    let writes: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("causeway_aws_api_calls_total{"))
        .filter(|l| {
            let op = l.split("operation=\"").nth(1).unwrap_or_default();
            !(op.starts_with("Describe") || op.starts_with("List") || op.starts_with("Get"))
        })
        .collect();
    assert!(
        writes.is_empty(),
        "writes after a restart with nothing changed: {writes:?}"
    );

    // One Ingress goes: the rule stays for the other, with one owner.
    delete_ingress(&ctx, "a").await;
    wait_for("the rule kept for b alone", WAIT, || async {
        let r = our_rules().await;
        (r.len() == 1 && r[0].1 == 1).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&second)));
    delete_ingress(&ctx, "b").await;
    wait_for("the rule gone with the last binding", WAIT, || async {
        our_rules().await.is_empty().then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&second)));
    ctx.cleanup().await.ok();
}
