//! Taking over from aws-load-balancer-controller. A fixture creates through the AWS API
//! (and the Kubernetes API) what the peer creates for an IngressGroup: its load balancer,
//! managed and shared backend security groups, listener, rules, target groups with their
//! targets, TargetGroupBindings and finalizers, with the peer's names and tags. causeway then
//! starts with the same cluster name and adopts all of it.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, ResourceType, Tag as Ec2Tag, TagSpecification,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
    HostHeaderConditionConfig, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
    PathPatternConditionConfig, ProtocolEnum, RuleCondition, Tag, TargetDescription,
    TargetGroupTuple, TargetTypeEnum,
};
use aws_sdk_resourcegroupstagging::types::TagFilter;
use causeway_testenv::support::{TestCtx, unique_name, wait_for};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::alb::{
    Alb, WAIT, calls, class, delete_ingress, ec2_client, elb_client, groups_dump, ingress,
    lb_by_dns, metrics, rule, services, tagged_with, wait_gone, wait_hostname,
};
use crate::common::Controller;

pub const CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";
const STACK_TAG: &str = "ingress.k8s.aws/stack";
const RESOURCE_TAG: &str = "ingress.k8s.aws/resource";

/// The stack and resource tag keys of one kind of stack.
#[derive(Clone, Copy)]
pub struct Keys {
    pub stack: &'static str,
    pub resource: &'static str,
}

pub const INGRESS: Keys = Keys {
    stack: STACK_TAG,
    resource: RESOURCE_TAG,
};

/// What the fixture made in the peer's place.
struct PeerStack {
    lb_arn: String,
    dns: String,
    listener_arn: String,
    /// (resource key, name, ARN) of each target group.
    target_groups: Vec<(String, String, String)>,
    managed_sg: String,
    backend_sg: String,
    /// The peer's rule on the nodes' group, from the backend group.
    node_rule: String,
}

/// The peer's tags on an ELBv2 resource of `stack`.
pub fn elb_tags(keys: Keys, cluster: &str, stack: &str, resource: &str) -> Vec<Tag> {
    vec![
        Tag::builder().key(CLUSTER_TAG).value(cluster).build(),
        Tag::builder().key(keys.stack).value(stack).build(),
        Tag::builder().key(keys.resource).value(resource).build(),
    ]
}

fn ec2_tags(cluster: &str, tags: &[(&str, &str)]) -> TagSpecification {
    let mut b = TagSpecification::builder()
        .resource_type(ResourceType::SecurityGroup)
        .tags(Ec2Tag::builder().key(CLUSTER_TAG).value(cluster).build());
    for (k, v) in tags {
        b = b.tags(Ec2Tag::builder().key(*k).value(*v).build());
    }
    b.build()
}

/// Ten characters of a fresh unique name, standing in for one of the peer's hashes.
pub fn hash() -> String {
    let u: String = unique_name("h")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    u[u.len().saturating_sub(10)..].to_owned()
}

/// The cluster's shared backend security group, as the peer makes it
/// (`k8s-traffic-<cluster>-<hash>`, `elbv2.k8s.aws/resource: backend-sg`, no stack tag).
pub async fn shared_backend_group(ctx: &TestCtx) -> String {
    let seed = &ctx.env.seed;
    let cluster = seed.cluster_name.as_str();
    ec2_client(ctx)
        .await
        .create_security_group()
        .group_name(format!(
            "k8s-traffic-{}-{}",
            &cluster[..cluster.len().min(20)],
            hash()
        ))
        .description("[k8s] Shared Backend SecurityGroup for LoadBalancer")
        .vpc_id(&seed.vpc_id)
        .tag_specifications(ec2_tags(
            cluster,
            &[("elbv2.k8s.aws/resource", "backend-sg")],
        ))
        .send()
        .await
        .expect("backend SG")
        .group_id()
        .expect("id")
        .to_owned()
}

/// The peer's managed frontend group of `stack`, open on `port` to the world.
pub async fn managed_group(ctx: &TestCtx, keys: Keys, stack: &str, port: i32) -> String {
    let seed = &ctx.env.seed;
    let ec2 = ec2_client(ctx).await;
    let short: String = stack.chars().filter(|c| *c != '/').take(16).collect();
    let id = ec2
        .create_security_group()
        .group_name(format!("k8s-{short}-{}", hash()))
        .description("[k8s] Managed SecurityGroup for LoadBalancer")
        .vpc_id(&seed.vpc_id)
        .tag_specifications(ec2_tags(
            &seed.cluster_name,
            &[
                (keys.stack, stack),
                (keys.resource, "ManagedLBSecurityGroup"),
            ],
        ))
        .send()
        .await
        .expect("managed SG")
        .group_id()
        .expect("id")
        .to_owned();
    ec2.authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .expect("managed SG rule");
    id
}

/// The peer's rule on the nodes' group for the shared backend group: untagged, with its
/// description. Returns the rule's ID.
pub async fn peer_node_rule(ctx: &TestCtx, backend_sg: &str, port: i32) -> String {
    ec2_client(ctx)
        .await
        .authorize_security_group_ingress()
        .group_id(&ctx.env.seed.node_security_group_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .user_id_group_pairs(
                    aws_sdk_ec2::types::UserIdGroupPair::builder()
                        .group_id(backend_sg)
                        .description("elbv2.k8s.aws/targetGroupBinding=shared")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("node rule")
        .security_group_rules()[0]
        .security_group_rule_id()
        .expect("rule id")
        .to_owned()
}

/// Removes what the fixture made in the peer's place that belongs to the whole cluster
/// (causeway never deletes it): the node rule, then the shared backend group.
pub async fn remove_shared(ctx: &TestCtx, node_rule: &str, backend_sg: &str) {
    let ec2 = ec2_client(ctx).await;
    ec2.revoke_security_group_ingress()
        .group_id(&ctx.env.seed.node_security_group_id)
        .security_group_rule_ids(node_rule)
        .send()
        .await
        .expect("the peer's node rule is left for its owner");
    ec2.delete_security_group()
        .group_id(backend_sg)
        .send()
        .await
        .expect("the shared backend group is left for its owner");
}

/// The peer's TargetGroupBinding: named as its target group, labelled with the stack,
/// holding the peer's finalizer, reaching port 8080 from the shared backend group.
pub fn peer_binding(
    name: &str,
    labels: &str,
    tg_arn: &str,
    vpc: &str,
    service: &str,
    backend_sg: &str,
) -> String {
    format!(
        r#"apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: {name}
  labels: {labels}
  finalizers: ["elbv2.k8s.aws/resources"]
spec:
  targetGroupARN: {tg_arn}
  targetType: ip
  ipAddressType: ipv4
  vpcID: {vpc}
  serviceRef: {{name: {service}, port: 80}}
  networking:
    ingress:
    - from: [{{securityGroup: {{groupID: {backend_sg}}}}}]
      ports: [{{protocol: TCP, port: 8080}}]
"#
    )
}

/// The listener the peer's stack serves on: HTTP:80, or HTTPS:443 with a certificate and
/// the peer's default SSL policy.
#[derive(Clone, Copy)]
enum Listen<'a> {
    Http,
    Https(&'a str),
}

impl Listen<'_> {
    fn port(self) -> i32 {
        match self {
            Listen::Http => 80,
            Listen::Https(_) => 443,
        }
    }
}

/// What the peer builds for the stack `group` (a group name, or `<ns>/<name>` of an Ingress
/// of its own) of Ingresses `(name, host, path)`, all to Service `web` port 80 (target port
/// 8080, ip targets), internal, on `listen`: the names are the peer's shapes
/// (`k8s-<group>-<hash>`, `k8s-<ns>-<svc>-<hash>`, `k8s-traffic-<cluster>-<hash>`), the
/// hashes are the fixture's own. `labels`: its bindings' labels, as YAML.
async fn make_peer_stack(
    ctx: &TestCtx,
    group: &str,
    listen: Listen<'_>,
    labels: &str,
    members: &[(&str, &str, &str)],
    pod_ips: &BTreeSet<String>,
) -> PeerStack {
    let port = listen.port();
    let seed = &ctx.env.seed;
    let cluster = seed.cluster_name.as_str();
    let elb = elb_client(ctx).await;
    let backend_sg = shared_backend_group(ctx).await;
    let managed_sg = managed_group(ctx, INGRESS, group, port).await;
    let short: String = group.chars().filter(|c| *c != '/').take(16).collect();
    let (lb_arn, dns) = peer_load_balancer(
        ctx,
        INGRESS,
        group,
        &format!("k8s-{short}-{}", hash()),
        LoadBalancerTypeEnum::Application,
        [&managed_sg, &backend_sg],
    )
    .await;
    let mut listener = elb.create_listener().load_balancer_arn(&lb_arn).port(port);
    listener = match listen {
        Listen::Http => listener.protocol(ProtocolEnum::Http),
        Listen::Https(cert) => listener
            .protocol(ProtocolEnum::Https)
            .ssl_policy("ELBSecurityPolicy-2016-08")
            .certificates(
                aws_sdk_elasticloadbalancingv2::types::Certificate::builder()
                    .certificate_arn(cert)
                    .build(),
            ),
    };
    let listener = listener
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code("404")
                        .content_type("text/plain")
                        .build(),
                )
                .build(),
        )
        .set_tags(Some(elb_tags(INGRESS, cluster, group, &port.to_string())))
        .send()
        .await
        .expect("CreateListener");
    let listener_arn = listener.listeners()[0]
        .listener_arn()
        .expect("arn")
        .to_owned();
    let mut target_groups = Vec::new();
    for (i, (name, host, path)) in members.iter().enumerate() {
        let key = format!("{}/{name}-web:80", ctx.namespace);
        let tg_name = format!(
            "k8s-{}-web-{}",
            &ctx.namespace[..ctx.namespace.len().min(8)],
            hash()
        );
        let tg = elb
            .create_target_group()
            .name(&tg_name)
            .protocol(ProtocolEnum::Http)
            .protocol_version("HTTP1")
            .port(8080)
            .vpc_id(&seed.vpc_id)
            .target_type(TargetTypeEnum::Ip)
            .health_check_path("/")
            .health_check_interval_seconds(15)
            .health_check_timeout_seconds(5)
            .healthy_threshold_count(2)
            .unhealthy_threshold_count(2)
            .set_tags(Some(elb_tags(INGRESS, cluster, group, &key)))
            .send()
            .await
            .expect("CreateTargetGroup");
        let tg_arn = tg.target_groups()[0]
            .target_group_arn()
            .expect("arn")
            .to_owned();
        let values: Vec<String> = if *path == "/" {
            vec!["/*".into()]
        } else {
            vec![path.to_string(), format!("{path}/*")]
        };
        elb.create_rule()
            .listener_arn(&listener_arn)
            .priority(i as i32 + 1)
            .conditions(
                RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(
                        HostHeaderConditionConfig::builder()
                            .values(host.to_string())
                            .build(),
                    )
                    .build(),
            )
            .conditions(
                RuleCondition::builder()
                    .field("path-pattern")
                    .path_pattern_config(
                        PathPatternConditionConfig::builder()
                            .set_values(Some(values))
                            .build(),
                    )
                    .build(),
            )
            .actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .forward_config(
                        ForwardActionConfig::builder()
                            .target_groups(
                                TargetGroupTuple::builder()
                                    .target_group_arn(&tg_arn)
                                    .weight(1)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .set_tags(Some(elb_tags(
                INGRESS,
                cluster,
                group,
                &format!("{port}:{}", i + 1),
            )))
            .send()
            .await
            .expect("CreateRule");
        register_pods(ctx, &tg_arn, pod_ips).await;
        ctx.apply(&peer_binding(
            &tg_name,
            labels,
            &tg_arn,
            &seed.vpc_id,
            "web",
            &backend_sg,
        ))
        .await
        .expect("TargetGroupBinding");
        target_groups.push((key, tg_name, tg_arn));
    }
    let node_rule = peer_node_rule(ctx, &backend_sg, 8080).await;
    PeerStack {
        node_rule,
        lb_arn,
        dns,
        listener_arn,
        target_groups,
        managed_sg,
        backend_sg,
    }
}

/// The peer's internal load balancer of `stack` in the private subnets, with its two security
/// groups and its tags: its ARN and DNS name.
pub async fn peer_load_balancer(
    ctx: &TestCtx,
    keys: Keys,
    stack: &str,
    name: &str,
    kind: LoadBalancerTypeEnum,
    security_groups: [&str; 2],
) -> (String, String) {
    let seed = &ctx.env.seed;
    let lb = elb_client(ctx)
        .await
        .create_load_balancer()
        .name(name)
        .r#type(kind)
        .scheme(LoadBalancerSchemeEnum::Internal)
        .set_subnets(Some(seed.private_subnet_ids.clone()))
        .set_security_groups(Some(security_groups.map(str::to_owned).to_vec()))
        .set_tags(Some(elb_tags(
            keys,
            &seed.cluster_name,
            stack,
            "LoadBalancer",
        )))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb = &lb.load_balancers()[0];
    (
        lb.load_balancer_arn().expect("arn").to_owned(),
        lb.dns_name().expect("dns").to_owned(),
    )
}

/// The pods registered on port 8080, as the peer left them.
pub async fn register_pods(ctx: &TestCtx, tg_arn: &str, pod_ips: &BTreeSet<String>) {
    let mut reg = elb_client(ctx)
        .await
        .register_targets()
        .target_group_arn(tg_arn);
    for ip in pod_ips {
        reg = reg.targets(TargetDescription::builder().id(ip).port(8080).build());
    }
    reg.send().await.expect("RegisterTargets");
}

/// The peer's finalizer and status hostname on the Ingress or Service `name` it served.
pub async fn mark_served_by_peer<K>(ctx: &TestCtx, name: &str, finalizer: &str, dns: &str)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": [finalizer]}})),
    )
    .await
    .expect("peer finalizer");
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({"status": {"loadBalancer": {"ingress": [{"hostname": dns}]}}}),
        ),
    )
    .await
    .expect("peer status");
}

/// The peer's lookup of a stack, by the tags it filters on: the tagging API for load
/// balancers and target groups (cluster and stack tags), EC2 for the managed security
/// group. Returns each resource's `ingress.k8s.aws/resource` tag.
async fn peer_lookup(ctx: &TestCtx, stack: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let cluster = ctx.env.seed.cluster_name.clone();
    let tagging = aws_sdk_resourcegroupstagging::Client::new(&ctx.aws().await);
    let filter = |k: &str, v: &str| TagFilter::builder().key(k).values(v).build();
    let found = tagging
        .get_resources()
        .tag_filters(filter(CLUSTER_TAG, &cluster))
        .tag_filters(filter(STACK_TAG, stack))
        .resource_type_filters("elasticloadbalancing:loadbalancer")
        .resource_type_filters("elasticloadbalancing:targetgroup")
        .send()
        .await
        .expect("GetResources");
    let (mut lbs, mut tgs) = (Vec::new(), Vec::new());
    for m in found.resource_tag_mapping_list() {
        let resource = m
            .tags()
            .iter()
            .find(|t| t.key() == RESOURCE_TAG)
            .map(|t| t.value().to_owned())
            .unwrap_or_default();
        if m.resource_arn()
            .unwrap_or_default()
            .contains(":loadbalancer/")
        {
            lbs.push(resource);
        } else {
            tgs.push(resource);
        }
    }
    let sgs = ec2_client(ctx)
        .await
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{CLUSTER_TAG}"))
                .values(&cluster)
                .build(),
        )
        .filters(
            Filter::builder()
                .name(format!("tag:{STACK_TAG}"))
                .values(stack)
                .build(),
        )
        .send()
        .await
        .expect("sgs");
    let sgs = sgs
        .security_groups()
        .iter()
        .filter_map(|g| {
            g.tags()
                .iter()
                .find(|t| t.key() == Some(RESOURCE_TAG))
                .and_then(|t| t.value().map(str::to_owned))
        })
        .collect();
    (lbs, tgs, sgs)
}

/// `causeway plan` over the test namespace's Ingresses and Services, as read back from the
/// apiserver.
async fn plan_report(ctx: &TestCtx) -> String {
    let ings: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let svcs: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let mut docs: Vec<String> = Vec::new();
    for i in ings
        .list(&ListParams::default())
        .await
        .expect("ingresses")
        .items
    {
        let mut v = serde_json::to_value(&i).expect("json");
        v["apiVersion"] = "networking.k8s.io/v1".into();
        v["kind"] = "Ingress".into();
        docs.push(v.to_string());
    }
    for s in svcs
        .list(&ListParams::default())
        .await
        .expect("services")
        .items
    {
        let mut v = serde_json::to_value(&s).expect("json");
        v["apiVersion"] = "v1".into();
        v["kind"] = "Service".into();
        docs.push(v.to_string());
    }
    let file = ctx.env.dir.join(format!("{}-plan.yaml", ctx.namespace));
    std::fs::write(&file, docs.join("\n---\n")).expect("manifest");
    let out = std::process::Command::new(crate::common::causeway_bin())
        .args(["plan", "-f"])
        .arg(&file)
        .envs(ctx.process_env())
        .output()
        .expect("causeway plan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn count(metrics: &str, pred: impl Fn(&str) -> bool) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("causeway_aws_api_calls_total{"))
        .filter(|l| {
            let op = l
                .split("operation=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_default();
            pred(op)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Every AWS operation the controller called, with its count, for failure messages and figures.
pub fn operations(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with("causeway_aws_api_calls_total{"))
        .map(str::to_owned)
        .collect()
}

/// The names of the test namespace's bindings once causeway's targets reconciler holds
/// them all (its finalizer on each) and has had a moment to act on them.
pub async fn adopted_bindings(ctx: &TestCtx, proc: &crate::common::Proc) -> BTreeSet<String> {
    let tgbs: Api<causeway::crd::TargetGroupBinding> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_for(
        "the adopted bindings carry causeway's finalizer",
        WAIT,
        || async {
            let l = tgbs.list(&ListParams::default()).await.ok()?;
            l.items
                .iter()
                .all(|b| {
                    b.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == "causeway.dev/targets")
                })
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", proc.logs()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    tgbs.list(&ListParams::default())
        .await
        .expect("tgbs")
        .items
        .iter()
        .map(|b| b.metadata.name.clone().unwrap_or_default())
        .collect()
}

/// Waits until the test namespace has no binding left (the peer's finalizers released too).
pub async fn wait_bindings_released(ctx: &TestCtx, proc: &crate::common::Proc) {
    let tgbs: Api<causeway::crd::TargetGroupBinding> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_for("the peer's bindings released", WAIT, || async {
        let l = tgbs.list(&ListParams::default()).await.ok()?;
        l.items.is_empty().then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", proc.logs()));
}

/// The status of LoadBalancerGroup `object` once it is Ready with a load balancer's ARN.
pub async fn wait_ready(
    ctx: &TestCtx,
    object: &str,
    proc: &crate::common::Proc,
) -> causeway::crd::LoadBalancerGroupStatus {
    let groups: Api<causeway::crd::LoadBalancerGroup> = Api::all(ctx.client.clone());
    let status = wait_for(&format!("{object} adopted and Ready"), WAIT, || async {
        let s = groups.get(object).await.ok()?.status?;
        let ready = s
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        (ready && s.load_balancers.first()?.arn.is_some()).then_some(s)
    })
    .await;
    match status {
        Ok(s) => s,
        Err(e) => panic!("{e}\n{}\n{}", groups_dump(ctx).await, proc.logs()),
    }
}

pub async fn target_ips(ctx: &TestCtx, arn: &str) -> BTreeSet<String> {
    crate::targets::targets(ctx, arn)
        .await
        .into_iter()
        .map(|t| t.split(':').next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_peer_ingress_group_is_adopted_in_place_modified_in_place_and_deleted_without_leftovers()
{
    let ctx = TestCtx::new("adopt").await.expect("ctx");
    let class = class(&ctx).await;
    ctx.apply(&services(false)).await.expect("services");
    crate::targets::scale(&ctx, "web", 2).await;
    let pods = wait_for("two pod IPs", WAIT, || async {
        let ips = crate::nlb::pod_ips(&ctx, "web").await;
        (ips.len() == 2).then_some(ips)
    })
    .await
    .expect("pods");

    // The peer served these two Ingresses as one group.
    let group = format!("adopt-{}", ctx.namespace);
    let domain = &ctx.env.seed.domain;
    let names = ["a", "b", "c", "d", "e"];
    let hosts: Vec<String> = names.iter().map(|n| format!("{n}.{domain}")).collect();
    let paths = ["/", "/api", "/", "/shop", "/"];
    let members: Vec<(&str, &str, &str)> = (0..names.len())
        .map(|i| (names[i], hosts[i].as_str(), paths[i]))
        .collect();
    let host_a = &hosts[0];
    let anns = [
        ("alb.ingress.kubernetes.io/group.name", group.as_str()),
        ("alb.ingress.kubernetes.io/target-type", "ip"),
    ];
    for &(name, host, path) in &members {
        ctx.apply(&ingress(name, &class, &anns, &rule(host, path, "web")))
            .await
            .expect("ingress");
    }
    let peer = make_peer_stack(
        &ctx,
        &group,
        Listen::Http,
        &format!("{{\"ingress.k8s.aws/stack\": \"{group}\"}}"),
        &members,
        &pods,
    )
    .await;
    for &(name, _, _) in &members {
        let finalizer = format!("group.ingress.k8s.aws/{group}");
        mark_served_by_peer::<Ingress>(&ctx, name, &finalizer, &peer.dns).await;
    }
    // And this one alone, on HTTPS with a certificate.
    let secure_host = format!("secure.{domain}");
    let cert = ctx.env.seed.certificate_arn.clone();
    ctx.apply(&ingress(
        "secure",
        &class,
        &[
            ("alb.ingress.kubernetes.io/target-type", "ip"),
            (
                "alb.ingress.kubernetes.io/listen-ports",
                r#"[{"HTTPS":443}]"#,
            ),
            ("alb.ingress.kubernetes.io/certificate-arn", &cert),
        ],
        &rule(&secure_host, "/", "web"),
    ))
    .await
    .expect("secure");
    let secure_stack = format!("{}/secure", ctx.namespace);
    let secure = make_peer_stack(
        &ctx,
        &secure_stack,
        Listen::Https(&cert),
        &format!(
            "{{\"ingress.k8s.aws/stack-namespace\": \"{}\", \"ingress.k8s.aws/stack-name\": secure}}",
            ctx.namespace
        ),
        &[("secure", &secure_host, "/")],
        &pods,
    )
    .await;
    mark_served_by_peer::<Ingress>(&ctx, "secure", "ingress.k8s.aws/resources", &secure.dns).await;

    // Before anyone switches, `causeway plan` shows what would be adopted and that nothing
    // would change.
    let report = plan_report(&ctx).await;
    assert!(
        report.contains("adopts (found by the cluster and stack tags):"),
        "{report}"
    );
    for (_, name, _) in &peer.target_groups {
        assert!(
            report.contains(&format!("target group {name} (as ")),
            "{report}"
        );
    }
    assert!(
        report.contains(&format!("shared security group {} ", peer.backend_sg)),
        "{report}"
    );
    assert_eq!(
        report.matches("actions: none (AWS matches)").count(),
        2,
        "{report}"
    );

    // causeway takes over with the same cluster name.
    let c = Controller::start(
        &ctx,
        &format!("adopt-{}", ctx.namespace),
        &unique_name("adopt-lease"),
        &[
            "--controllers",
            "alb,targets",
            "--alb-controller-name",
            &format!("causeway.dev/{class}"),
            "--targets-namespace",
            &ctx.namespace,
            "--webhook-enabled",
            "false",
            "--log-level",
            "info,causeway=debug",
        ],
    );
    let alb = Alb {
        proc: c.proc,
        port: c.port,
        class: class.clone(),
    };
    let groups: Api<causeway::crd::LoadBalancerGroup> = Api::all(ctx.client.clone());
    let status = wait_ready(&ctx, &group, &alb.proc).await;
    assert_eq!(
        status.load_balancers[0].arn.as_deref(),
        Some(peer.lb_arn.as_str()),
        "the peer's ALB is the group's"
    );
    for &(name, _, _) in &members {
        assert_eq!(wait_hostname(&ctx, &alb, name).await, peer.dns);
    }
    let secure_object = format!("ingress.{}.secure", ctx.namespace);
    wait_for("the HTTPS Ingress's ALB adopted", WAIT, || async {
        let s = groups.get(&secure_object).await.ok()?.status?;
        (s.load_balancers.first()?.arn.as_deref() == Some(secure.lb_arn.as_str())).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    assert_eq!(wait_hostname(&ctx, &alb, "secure").await, secure.dns);
    // The bindings are the peer's (no second one per target group), with their targets.
    let binding_names = adopted_bindings(&ctx, &alb.proc).await;
    let peer_names: BTreeSet<String> = peer
        .target_groups
        .iter()
        .chain(&secure.target_groups)
        .map(|t| t.1.clone())
        .collect();
    assert_eq!(binding_names, peer_names);
    for (_, _, arn) in peer.target_groups.iter().chain(&secure.target_groups) {
        assert_eq!(target_ips(&ctx, arn).await, pods);
    }
    let m = metrics(&alb).await;
    let creates = count(&m, |op| op.starts_with("Create"));
    let (reads, writes) = (calls(&m, false), calls(&m, true));
    eprintln!(
        "adopting a group of {} Ingresses and one HTTPS Ingress: {reads} reads, {writes} writes\n{}",
        members.len(),
        operations(&m).join("\n")
    );
    assert_eq!(
        creates,
        0,
        "{}\n{}",
        operations(&m).join("\n"),
        alb.proc.logs()
    );
    assert_eq!(
        writes,
        0,
        "the models agree: nothing written\n{}",
        operations(&m).join("\n")
    );
    // The listeners are the peer's.
    let elb = elb_client(&ctx).await;
    for stack in [&peer, &secure] {
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(&stack.lb_arn)
            .send()
            .await
            .expect("listeners");
        assert_eq!(listeners.listeners().len(), 1);
        assert_eq!(
            listeners.listeners()[0].listener_arn(),
            Some(stack.listener_arn.as_str())
        );
    }

    // A differing setting is modified in place with one call.
    let before = count(&m, |op| op == "ModifyLoadBalancerAttributes");
    let mut with_attr = anns.to_vec();
    with_attr.push((
        "alb.ingress.kubernetes.io/load-balancer-attributes",
        "idle_timeout.timeout_seconds=120",
    ));
    ctx.apply(&ingress("a", &class, &with_attr, &rule(host_a, "/", "web")))
        .await
        .expect("ingress a");
    let m2 = wait_for("ModifyLoadBalancerAttributes", WAIT, || async {
        let m = metrics(&alb).await;
        (count(&m, |op| op == "ModifyLoadBalancerAttributes") > before).then_some(m)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", alb.proc.logs()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m2 = {
        let later = metrics(&alb).await;
        if later.is_empty() { m2 } else { later }
    };
    assert_eq!(
        count(&m2, |op| op == "ModifyLoadBalancerAttributes"),
        before + 1
    );
    assert_eq!(count(&m2, |op| op.starts_with("Create")), 0);
    assert_eq!(
        calls(&m2, true),
        writes + 1,
        "one write for one differing attribute\n{}",
        operations(&m2).join("\n")
    );
    assert_eq!(
        lb_by_dns(&elb, &peer.dns).await.load_balancer_arn(),
        Some(peer.lb_arn.as_str())
    );

    // Hand back: what causeway creates, the peer's lookup finds by the same tags.
    ctx.apply(&ingress(
        "solo",
        &class,
        &[("alb.ingress.kubernetes.io/target-type", "ip")],
        &rule(&format!("solo.{domain}"), "/", "web"),
    ))
    .await
    .expect("solo");
    wait_hostname(&ctx, &alb, "solo").await;
    let solo = format!("{}/solo", ctx.namespace);
    let (lbs, tgs, sgs) = peer_lookup(&ctx, &solo).await;
    assert_eq!(lbs, ["LoadBalancer"]);
    assert_eq!(tgs, [format!("{solo}-web:80")]);
    assert!(sgs.iter().any(|s| s == "ManagedLBSecurityGroup"), "{sgs:?}");
    let (lbs, tgs, sgs) = peer_lookup(&ctx, &group).await;
    assert_eq!(lbs, ["LoadBalancer"]);
    assert_eq!(tgs.len(), members.len());
    assert_eq!(sgs, ["ManagedLBSecurityGroup"]);

    // Deleting the Ingresses removes every adopted resource and releases the peer's
    // finalizers; the cluster's shared backend group is the peer's and stays.
    let all: Vec<&str> = names.iter().copied().chain(["secure", "solo"]).collect();
    for name in &all {
        delete_ingress(&ctx, name).await;
    }
    for name in &all {
        wait_gone(&ctx, &alb, name).await;
    }
    for stack in [group.as_str(), secure_stack.as_str(), solo.as_str()] {
        let left = wait_for(&format!("nothing tagged {stack}"), WAIT, || async {
            tagged_with(&ctx, stack).await.is_empty().then_some(())
        })
        .await;
        if let Err(e) = left {
            panic!(
                "{e}: {:?}\n{}",
                tagged_with(&ctx, stack).await,
                alb.proc.logs()
            );
        }
    }
    wait_bindings_released(&ctx, &alb.proc).await;
    let ec2 = ec2_client(&ctx).await;
    let managed = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-id")
                .values(&peer.managed_sg)
                .build(),
        )
        .send()
        .await
        .expect("sgs");
    assert!(
        managed.security_groups().is_empty(),
        "the adopted managed group is deleted"
    );
    remove_shared(&ctx, &peer.node_rule, &peer.backend_sg).await;
    remove_shared(&ctx, &secure.node_rule, &secure.backend_sg).await;
    ctx.cleanup().await.ok();
}
