//! TargetGroupBinding on the embedded environment: Deployments → kwok pods →
//! EndpointSlices → targets in moto; instance mode with the kwok nodes; security group
//! rules; bad input; finalizer cleanup; the readiness-gate webhook called by the real
//! apiserver; and (ignored) figures.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{Controller, free_port};
use aws_sdk_ec2::types::{IpPermission, IpRange};
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
use causeway::crd::TargetGroupBinding;
use causeway::fixtures;
use causeway_testenv::support::{TestCtx, unique_name, wait_for};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

const DEADLINE: Duration = Duration::from_secs(90);

fn start(ctx: &TestCtx, extra: &[&str]) -> Controller {
    start_with_env(ctx, extra, &[])
}

/// [`start`] with extra environment, as a process of its own name.
pub fn start_with_env(ctx: &TestCtx, extra: &[&str], env: &[(&str, &str)]) -> Controller {
    let lease = unique_name("tgb");
    let mut args = vec![
        "--controllers",
        "targets",
        "--targets-namespace",
        &ctx.namespace,
        "--log-format",
        "json",
    ];
    if !extra.contains(&"--webhook-enabled") {
        args.extend(["--webhook-enabled", "false"]);
    }
    args.extend(extra);
    Controller::start_with_env(
        ctx,
        &unique_name(&format!("targets-{}", ctx.namespace)),
        &lease,
        &args,
        env,
    )
}

/// Counters read from the controller's metrics.
trait Calls {
    /// Successful calls of one AWS operation so far.
    async fn calls(&self, operation: &str) -> u64;
}

impl Calls for Controller {
    async fn calls(&self, operation: &str) -> u64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| {
                l.starts_with("causeway_aws_api_calls_total{")
                    && l.contains(&format!("operation=\"{operation}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

fn elbv2(conf: &aws_types::SdkConfig) -> aws_sdk_elasticloadbalancingv2::Client {
    aws_sdk_elasticloadbalancingv2::Client::new(conf)
}

pub async fn target_group(ctx: &TestCtx, vpc: &str, target_type: TargetTypeEnum) -> String {
    let conf = ctx.aws().await;
    let out = elbv2(&conf)
        .create_target_group()
        .name(unique_name("tg"))
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .target_type(target_type)
        .send()
        .await
        .expect("CreateTargetGroup");
    out.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string()
}

/// Registered targets as `id:port`.
pub async fn targets(ctx: &TestCtx, arn: &str) -> BTreeSet<String> {
    let conf = ctx.aws().await;
    let out = elbv2(&conf)
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .expect("DescribeTargetHealth");
    out.target_health_descriptions()
        .iter()
        .filter(|d| {
            d.target_health()
                .and_then(|h| h.state())
                .is_some_and(|s| s.as_str() != "draining")
        })
        .filter_map(|d| {
            let t = d.target()?;
            Some(format!("{}:{}", t.id()?, t.port()?))
        })
        .collect()
}

async fn ready_endpoints(ctx: &TestCtx, service: &str) -> BTreeSet<String> {
    let slices: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .expect("list slices");
    list.items
        .iter()
        .flat_map(|s| {
            let port = s.ports.as_ref().and_then(|p| p.first()?.port).unwrap_or(0);
            s.endpoints
                .iter()
                .flatten()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .map(move |e| format!("{}:{port}", e.addresses[0]))
        })
        .collect()
}

async fn binding(ctx: &TestCtx, name: &str) -> Option<TargetGroupBinding> {
    let api: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.get_opt(name).await.ok().flatten()
}

fn ready_reason(b: &TargetGroupBinding) -> Option<(String, String)> {
    let c = b
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone()))
}

async fn wait_reason(ctx: &TestCtx, c: &Controller, name: &str, status: &str, reason: &str) {
    let res = wait_for(
        &format!("{name} Ready={status} ({reason})"),
        DEADLINE,
        || async {
            let b = binding(ctx, name).await?;
            (ready_reason(&b)? == (status.to_string(), reason.to_string())).then_some(())
        },
    )
    .await;
    if let Err(e) = res {
        let st = binding(ctx, name).await.map(|b| b.status);
        panic!("{e}\n{st:?}\n{}", c.proc.logs());
    }
}

async fn has_event(ctx: &TestCtx, name: &str, reason: &str) -> bool {
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    events
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items.iter().any(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
        })
        .unwrap_or(false)
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - {{name: web, image: nginx, ports: [{{containerPort: 8080, name: http}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: NodePort
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: http, name: http}}]
"#
    )
}

pub fn tgb(name: &str, arn: &str, service: &str, target_type: &str, extra: &str) -> String {
    let b = fixtures::target_group_binding("", name, arn, service, 80, target_type);
    // `extra`: more of the spec, as YAML indented under `spec:`.
    let mut patch: serde_json::Value = if extra.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_saphyr::from_str(&format!("spec:\n{extra}")).expect("the extra spec is YAML")
    };
    patch["metadata"] = serde_json::json!({"namespace": null, "generation": null});
    serde_json::to_string(&fixtures::with(b, patch)).expect("serialisable")
}

pub async fn scale(ctx: &TestCtx, name: &str, replicas: u32) {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
    )
    .await
    .expect("scale");
}

async fn wait_targets_match_endpoints(
    ctx: &TestCtx,
    c: &Controller,
    arn: &str,
    svc: &str,
    n: usize,
) {
    wait_for(
        &format!("{n} targets = ready endpoints"),
        DEADLINE,
        || async {
            let eps = ready_endpoints(ctx, svc).await;
            let tgs = targets(ctx, arn).await;
            (eps.len() == n && eps == tgs).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!("{e}\n{}", c.proc.logs());
    });
}

#[tokio::test]
async fn ip_targets_follow_the_deployment_and_go_with_the_binding() {
    let ctx = TestCtx::new("tgb-ip").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let arn = target_group(&ctx, &ctx.env.seed.vpc_id, TargetTypeEnum::Ip).await;
    ctx.apply(&deployment("web", 3)).await.expect("apply");
    ctx.apply(&tgb("web", &arn, "web", "ip", ""))
        .await
        .expect("tgb");
    let c = start(&ctx, &[]);

    wait_targets_match_endpoints(&ctx, &c, &arn, "web", 3).await;
    assert!(
        targets(&ctx, &arn)
            .await
            .iter()
            .all(|t| t.ends_with(":8080"))
    );
    wait_for("status counts", DEADLINE, || async {
        let b = binding(&ctx, "web").await?;
        let s = b.status.as_ref()?;
        (s.registered_targets == Some(3)
            && s.healthy_targets == Some(3)
            && s.observed_generation == b.metadata.generation)
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let b = binding(&ctx, "web").await.expect("binding");
    assert_eq!(ready_reason(&b), Some(("True".into(), "Reconciled".into())));
    assert!(
        b.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"causeway.dev/targets".to_string())
    );

    scale(&ctx, "web", 1).await;
    wait_targets_match_endpoints(&ctx, &c, &arn, "web", 1).await;
    scale(&ctx, "web", 4).await;
    wait_targets_match_endpoints(&ctx, &c, &arn, "web", 4).await;

    let api: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(
        "binding gone and targets deregistered",
        DEADLINE,
        || async {
            (binding(&ctx, "web").await.is_none() && targets(&ctx, &arn).await.is_empty())
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn instance_targets_are_selected_nodes_with_tagged_rules_removed_on_delete() {
    let ctx = TestCtx::new("tgb-inst").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let seed = &ctx.env.seed;
    let arn = target_group(&ctx, &seed.vpc_id, TargetTypeEnum::Instance).await;
    let conf = ctx.aws().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let lb_sg = ec2
        .create_security_group()
        .group_name(unique_name("lb"))
        .description("test load balancer")
        .vpc_id(&seed.vpc_id)
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id()
        .expect("sg")
        .to_string();
    // Someone else's rule on the node group: it must survive everything we do.
    let foreign_cidr = format!("10.{}.0.0/16", rand_octet());
    ec2.authorize_security_group_ingress()
        .group_id(&seed.node_security_group_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip(&foreign_cidr).build())
                .build(),
        )
        .send()
        .await
        .expect("foreign rule");

    ctx.apply(&deployment("web", 1)).await.expect("apply");
    let node0 = ctx.env.node_names[0].clone();
    let extra = format!(
        r#"  nodeSelector:
    matchLabels: {{kubernetes.io/hostname: {node0}}}
  networking:
    ingress:
    - from: [{{securityGroup: {{groupID: {lb_sg}}}}}]
      ports: [{{port: 8080}}, {{protocol: UDP}}]
"#
    );
    ctx.apply(&tgb("web", &arn, "web", "instance", &extra))
        .await
        .expect("tgb");
    let c = start(&ctx, &[]);

    let svc: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let node_port = svc
        .get("web")
        .await
        .expect("svc")
        .spec
        .unwrap()
        .ports
        .unwrap()[0]
        .node_port
        .expect("nodePort");
    let want: BTreeSet<String> = [format!("{}:{node_port}", seed.instance_ids[0])].into();
    wait_for("the selected node registered", DEADLINE, || async {
        (targets(&ctx, &arn).await == want).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));

    let owner = format!("{}/web", ctx.namespace);
    let ours = || async {
        ec2.describe_security_group_rules()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .values(&seed.node_security_group_id)
                    .build(),
            )
            .send()
            .await
            .expect("DescribeSecurityGroupRules")
            .security_group_rules()
            .to_vec()
    };
    wait_for("two tagged rules from the LB group", DEADLINE, || async {
        let rules = ours().await;
        let tagged: Vec<_> = rules
            .iter()
            .filter(|r| {
                r.tags().iter().any(|t| {
                    t.key() == Some(format!("causeway.dev/tgb/{owner}").as_str())
                        && t.value() == Some(owner.as_str())
                })
            })
            .collect();
        (tagged.len() == 2
            && tagged.iter().all(|r| {
                r.referenced_group_info().and_then(|g| g.group_id()) == Some(lb_sg.as_str())
            }))
        .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));

    let api: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(
        "binding gone, targets and our rules removed",
        DEADLINE,
        || async {
            let rules = ours().await;
            let tagged = rules
                .iter()
                .any(|r| r.tags().iter().any(|t| t.value() == Some(owner.as_str())));
            (binding(&ctx, "web").await.is_none()
                && targets(&ctx, &arn).await.is_empty()
                && !tagged)
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let rules = ours().await;
    assert!(
        rules
            .iter()
            .any(|r| r.cidr_ipv4() == Some(foreign_cidr.as_str())),
        "the untagged rule must stay"
    );
    ctx.cleanup().await.ok();
}

fn rand_octet() -> u8 {
    (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 200) as u8
        + 20
}

#[tokio::test]
async fn bad_input_gets_a_condition_and_an_event_and_recovers() {
    let ctx = TestCtx::new("tgb-bad").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let seed = &ctx.env.seed;
    let conf = ctx.aws().await;
    let ip_arn = target_group(&ctx, &seed.vpc_id, TargetTypeEnum::Ip).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let other_vpc = ec2
        .create_vpc()
        .cidr_block("172.31.0.0/16")
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc")
        .to_string();
    let foreign_arn = target_group(&ctx, &other_vpc, TargetTypeEnum::Ip).await;
    let missing_arn = ip_arn
        .rsplit_once('/')
        .map(|(a, _)| format!("{a}/00000000deadbeef"))
        .unwrap();
    let pool = unique_name("pool");
    // A kwok node without providerID, reachable only through this test's selector.
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let node_name = unique_name("noprov");
    nodes
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": node_name, "labels": {"causeway.dev/test-pool": pool},
                             "annotations": {"kwok.x-k8s.io/node": "fake"}}
            }))
            .unwrap(),
        )
        .await
        .expect("node");
    let inst_arn = target_group(&ctx, &seed.vpc_id, TargetTypeEnum::Instance).await;

    ctx.apply(&deployment("web", 1)).await.expect("apply");
    for (name, arn, svc, tt, extra) in [
        ("missing-tg", missing_arn.as_str(), "web", "ip", String::new()),
        ("foreign", foreign_arn.as_str(), "web", "ip", String::new()),
        ("mismatch", ip_arn.as_str(), "web", "instance", String::new()),
        ("no-svc", ip_arn.as_str(), "later", "ip", String::new()),
        (
            "bad-port",
            ip_arn.as_str(),
            "web",
            "ip",
            "  networking:\n    ingress:\n    - from: [{ipBlock: {cidr: 10.0.0.0/8}}]\n      ports: [{port: 0}]\n".to_string(),
        ),
        (
            "no-provider",
            inst_arn.as_str(),
            "web",
            "instance",
            format!("  nodeSelector:\n    matchLabels: {{causeway.dev/test-pool: {pool}}}\n"),
        ),
    ] {
        ctx.apply(&tgb(name, arn, svc, tt, &extra)).await.expect("tgb");
    }
    let c = start(&ctx, &[]);
    for (name, reason) in [
        ("missing-tg", "TargetGroupNotFound"),
        ("foreign", "TargetGroupInForeignVpc"),
        ("mismatch", "TargetTypeMismatch"),
        ("no-svc", "ServiceNotFound"),
        ("bad-port", "InvalidNetworking"),
    ] {
        wait_reason(&ctx, &c, name, "False", reason).await;
        wait_for(&format!("event {reason} on {name}"), DEADLINE, || async {
            has_event(&ctx, name, reason).await.then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    wait_for("Degraded NodeWithoutProviderID", DEADLINE, || async {
        let b = binding(&ctx, "no-provider").await?;
        b.status?
            .conditions
            .iter()
            .any(|c| {
                c.type_ == "Degraded"
                    && c.reason == "NodeWithoutProviderID"
                    && c.message.contains(&node_name)
            })
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    assert!(has_event(&ctx, "no-provider", "NodeWithoutProviderID").await);

    // The missing Service appears: the retry picks it up and targets get registered.
    ctx.apply(&deployment("later", 1)).await.expect("later");
    wait_reason(&ctx, &c, "no-svc", "True", "Reconciled").await;
    wait_for("targets of the late Service", DEADLINE, || async {
        let eps = ready_endpoints(&ctx, "later").await;
        (!eps.is_empty() && eps.is_subset(&targets(&ctx, &ip_arn).await)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    // Nothing panicked; bad bindings are deleted cleanly too.
    let api: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    for name in [
        "missing-tg",
        "foreign",
        "mismatch",
        "bad-port",
        "no-provider",
        "no-svc",
    ] {
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    wait_for("all bindings gone", DEADLINE, || async {
        api.list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    assert!(!c.proc.logs().contains("panicked"));
    nodes
        .delete(&node_name, &DeleteParams::default())
        .await
        .ok();
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn readiness_gate_is_injected_by_the_webhook_and_set_when_healthy() {
    let ctx = TestCtx::new("tgb-gate").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    namespaces
        .patch(
            &ctx.namespace,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}}})),
        )
        .await
        .expect("label namespace");
    let arn = target_group(&ctx, &ctx.env.seed.vpc_id, TargetTypeEnum::Ip).await;
    let hook_port = free_port();
    let addr = format!("127.0.0.1:{hook_port}");
    let url = format!("https://127.0.0.1:{hook_port}/mutate-v1-pod");
    // The chart's names (release "causeway"): its Role and ClusterRole allow exactly these.
    let mwc_name = "causeway-pod-readiness-gate".to_string();
    let secret = "causeway-webhook-tls".to_string();
    crate::common::install_chart_webhook_configuration(&ctx, &url);
    let nlb_class = format!("causeway.dev/nlb-{}", ctx.namespace);
    let c = start(
        &ctx,
        &[
            "--nlb-set-class-on-new-services",
            "--nlb-load-balancer-class",
            &nlb_class,
            "--webhook-enabled",
            "true",
            "--webhook-addr",
            &addr,
            "--webhook-url",
            &url,
            "--webhook-namespace",
            &ctx.namespace,
            "--webhook-configuration-name",
            &mwc_name,
            "--webhook-secret",
            &secret,
        ],
    );
    let mwcs: Api<MutatingWebhookConfiguration> = Api::all(ctx.client.clone());
    wait_for("webhook configuration with caBundle", DEADLINE, || async {
        let m = mwcs.get_opt(&mwc_name).await.ok()??;
        let w = m.webhooks?.into_iter().next()?;
        (w.client_config.ca_bundle.is_some() && w.failure_policy.as_deref() == Some("Ignore"))
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    // The Service and binding exist before the pods, as they would for a rollout.
    ctx.apply(&tgb("web", &arn, "web", "ip", ""))
        .await
        .expect("tgb");
    let svc_only: String = deployment("web", 2)
        .split("---")
        .nth(1)
        .unwrap()
        .to_string();
    ctx.apply(&svc_only).await.expect("svc");
    tokio::time::sleep(Duration::from_secs(1)).await; // let the webhook's caches see them
    ctx.apply(&deployment("web", 2)).await.expect("deployment");

    let gate = "target-health.elbv2.k8s.aws/web";
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = wait_for("2 pods", DEADLINE, || async {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        (l.items.len() == 2).then_some(l)
    })
    .await
    .expect("pods");
    for p in &list.items {
        let gates: Vec<String> = p
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|g| g.condition_type)
            .collect();
        assert_eq!(
            gates,
            [gate],
            "webhook did not inject the gate\n{}",
            c.proc.logs()
        );
    }
    wait_for("gate True and pods Ready", DEADLINE, || async {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        l.items
            .iter()
            .all(|p| {
                let cs = p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.clone())
                    .unwrap_or_default();
                let is_true = |t: &str| cs.iter().any(|c| c.type_ == t && c.status == "True");
                is_true(gate) && is_true("Ready")
            })
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    wait_targets_match_endpoints(&ctx, &c, &arn, "web", 2).await;

    // The Service mutator of the same server: a new LoadBalancer Service without a class gets
    // the NLB class; one that names a class, or a legacy type annotation, keeps what it has.
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let lb = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n{extra}spec:\n  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n  ports: [{{port: 80}}]\n"
        )
    };
    ctx.apply(&lb("classless", "")).await.expect("classless");
    ctx.apply(&lb(
        "legacy",
        "  annotations: {service.beta.kubernetes.io/aws-load-balancer-type: nlb}\n",
    ))
    .await
    .expect("legacy");
    let class_of = |s: Service| s.spec.and_then(|s| s.load_balancer_class);
    assert_eq!(
        class_of(services.get("classless").await.expect("classless")),
        Some(nlb_class.clone()),
        "the webhook sets the class\n{}",
        c.proc.logs()
    );
    assert_eq!(
        class_of(services.get("legacy").await.expect("legacy")),
        None
    );
    mwcs.delete(&mwc_name, &DeleteParams::default()).await.ok();
    ctx.cleanup().await.ok();
}

/// A Service without selector whose EndpointSlice the test writes itself, so each change
/// is exactly one endpoint.
pub fn manual_service(name: &str) -> String {
    let svc = fixtures::service("", name, 80, None, serde_json::json!({}));
    let svc = fixtures::with(svc, serde_json::json!({"metadata": {"namespace": null}}));
    serde_json::to_string(&svc).expect("serialisable")
}

fn manual_slice(ctx: &TestCtx, name: &str, ips: &[String]) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-manual"), "namespace": ctx.namespace,
                     "labels": {"kubernetes.io/service-name": name,
                                "endpointslice.kubernetes.io/managed-by": "causeway-test"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": ips.iter().map(|ip| serde_json::json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>()
    })
}

pub async fn write_slice(ctx: &TestCtx, name: &str, ips: &[String]) {
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.patch(
        &format!("{name}-manual"),
        &PatchParams::apply("causeway-test").force(),
        &Patch::Apply(manual_slice(ctx, name, ips)),
    )
    .await
    .expect("write slice");
}

#[tokio::test]
async fn one_endpoint_change_is_exactly_one_register_or_deregister_call() {
    let ctx = TestCtx::new("tgb-one").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let arn = target_group(&ctx, &ctx.env.seed.vpc_id, TargetTypeEnum::Ip).await;
    ctx.apply(&manual_service("svc")).await.expect("svc");
    let mut ips: Vec<String> = (1..=5).map(|i| format!("192.168.100.{i}")).collect();
    write_slice(&ctx, "svc", &ips).await;
    ctx.apply(&tgb("svc", &arn, "svc", "ip", ""))
        .await
        .expect("tgb");
    let c = start(&ctx, &[]);
    wait_for("5 targets", DEADLINE, || async {
        (targets(&ctx, &arn).await.len() == 5).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    // Let status settle, so the next calls are only the change's.
    wait_reason(&ctx, &c, "svc", "True", "Reconciled").await;
    let (r0, d0) = (
        c.calls("RegisterTargets").await,
        c.calls("DeregisterTargets").await,
    );

    ips.push("192.168.100.6".into());
    write_slice(&ctx, "svc", &ips).await;
    wait_for("6 targets", DEADLINE, || async {
        (targets(&ctx, &arn).await.len() == 6).then_some(())
    })
    .await
    .unwrap();
    ips.remove(0);
    write_slice(&ctx, "svc", &ips).await;
    wait_for("5 targets again", DEADLINE, || async {
        let t = targets(&ctx, &arn).await;
        (t.len() == 5 && !t.contains("192.168.100.1:8080")).then_some(())
    })
    .await
    .unwrap();
    // Any reconcile still queued for these changes has nothing left to do.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (r1, d1) = (
        c.calls("RegisterTargets").await,
        c.calls("DeregisterTargets").await,
    );
    assert_eq!(
        (r1 - r0, d1 - d0),
        (1, 1),
        "one call per endpoint change\n{}",
        c.proc.logs()
    );
    ctx.cleanup().await.ok();
}

/// `at_ms` of every targets call the controller logged for `binding`, in order.
fn call_times(logs: &str, binding: &str) -> Vec<u128> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "targets call" && v["binding"].as_str() == Some(binding))
        .filter_map(|v| v["at_ms"].as_u64().map(u128::from))
        .collect()
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Figure: latency from writing an EndpointSlice change to the Register/Deregister call.
/// `cargo test --test integration bench_targets_latency -- --ignored --nocapture`
#[tokio::test]
#[ignore]
async fn bench_targets_latency() {
    let ctx = TestCtx::new("tgb-lat").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let arn = target_group(&ctx, &ctx.env.seed.vpc_id, TargetTypeEnum::Ip).await;
    ctx.apply(&manual_service("svc")).await.expect("svc");
    let mut ips: Vec<String> = (1..=10).map(|i| format!("192.168.101.{i}")).collect();
    write_slice(&ctx, "svc", &ips).await;
    ctx.apply(&tgb("svc", &arn, "svc", "ip", ""))
        .await
        .expect("tgb");
    let c = start(&ctx, &[]);
    let key = format!("{}/svc", ctx.namespace);
    wait_for("10 targets", DEADLINE, || async {
        (targets(&ctx, &arn).await.len() == 10).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    wait_reason(&ctx, &c, "svc", "True", "Reconciled").await;
    let changes = 120;
    let mut latencies = Vec::new();
    let (r0, d0) = (
        c.calls("RegisterTargets").await,
        c.calls("DeregisterTargets").await,
    );
    for i in 0..changes {
        let before = call_times(&c.proc.logs(), &key).len();
        if i % 2 == 0 {
            ips.push(format!("192.168.102.{}", i / 2 + 1));
        } else {
            ips.remove(0);
        }
        let t0 = now_ms();
        write_slice(&ctx, "svc", &ips).await;
        let at = wait_for("the call", DEADLINE, || async {
            call_times(&c.proc.logs(), &key).get(before).copied()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
        latencies.push(at.saturating_sub(t0));
    }
    let (r1, d1) = (
        c.calls("RegisterTargets").await,
        c.calls("DeregisterTargets").await,
    );
    latencies.sort();
    println!(
        "targets latency over {changes} EndpointSlice changes: p50 {} ms, p99 {} ms, max {} ms; calls: {} Register + {} Deregister",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
        r1 - r0,
        d1 - d0
    );
    ctx.cleanup().await.ok();
}

pub fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Figure: controller RSS with 5,000 kwok pods behind 50 Services and bindings.
/// `cargo test --test integration bench_targets_rss -- --ignored --nocapture`
#[tokio::test]
#[ignore]
async fn bench_targets_rss() {
    let ctx = TestCtx::new("tgb-rss").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let services = 50;
    let per = 100;
    let started = Instant::now();
    let mut arns = Vec::new();
    for i in 0..services {
        let arn = target_group(&ctx, &ctx.env.seed.vpc_id, TargetTypeEnum::Ip).await;
        let name = format!("s{i}");
        ctx.apply(&deployment(&name, per)).await.expect("apply");
        ctx.apply(&tgb(&name, &arn, &name, "ip", ""))
            .await
            .expect("tgb");
        arns.push((name, arn));
    }
    let c = start(&ctx, &[]);
    let pid = c.proc.child.id();
    let peak = std::sync::atomic::AtomicU64::new(0);
    wait_for(
        "every target registered",
        Duration::from_secs(1200),
        || async {
            peak.fetch_max(vm_rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
            for (name, arn) in &arns {
                let b = binding(&ctx, name).await?;
                if b.status?.registered_targets != Some(per as i32) {
                    return None;
                }
                let _ = arn;
            }
            Some(())
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            c.proc
                .logs()
                .lines()
                .rev()
                .take(50)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let total: usize = {
        let mut n = 0;
        for (_, arn) in &arns {
            n += targets(&ctx, arn).await.len();
        }
        n
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let settled = vm_rss_kib(pid);
    println!(
        "targets RSS: {} targets in {services} target groups ({services} bindings) after {:.0}s; VmRSS settled {:.1} MiB, peak seen {:.1} MiB",
        total,
        started.elapsed().as_secs_f64(),
        settled as f64 / 1024.0,
        peak.into_inner().max(settled) as f64 / 1024.0
    );
    ctx.cleanup().await.ok();
}

/// The batched DescribeTargetGroups behind a restart's validations, against moto: 25 target
/// groups in two calls, a missing ARN among them costs its own call and is left out.
#[tokio::test]
async fn target_groups_are_described_in_batches_and_a_missing_one_is_left_out() {
    let ctx = TestCtx::new("tgbatch").await.expect("ctx");
    let mut arns = Vec::new();
    for _ in 0..25 {
        arns.push(target_group(&ctx, &ctx.env.seed.vpc_id, TargetTypeEnum::Ip).await);
    }
    let client = elbv2(&ctx.aws().await);
    let absent = |e: &causeway::aws::elbv2::DescribeTgError| {
        e.as_service_error()
            .is_some_and(|s| s.is_target_group_not_found_exception())
    };
    let found = causeway::aws::elbv2::target_groups_by_arn(&client, &arns, absent)
        .await
        .expect("found");
    assert_eq!(found.len(), 25);
    let missing = arns[0].replace("/tg-", "/gone-");
    let mut some = vec![arns[1].clone(), missing, arns[2].clone()];
    some.sort();
    let found = causeway::aws::elbv2::target_groups_by_arn(&client, &some, absent)
        .await
        .expect("found");
    let got: BTreeSet<_> = found
        .iter()
        .filter_map(|g| g.target_group_arn().map(str::to_string))
        .collect();
    assert_eq!(got, BTreeSet::from([arns[1].clone(), arns[2].clone()]));
    ctx.cleanup().await.ok();
}
