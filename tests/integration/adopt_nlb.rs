//! Taking over a Service's NLB from aws-load-balancer-controller: the fixture makes what the
//! peer makes for a LoadBalancer Service (the NLB with its managed and shared backend
//! security groups, a TCP listener, the target group with its targets, the
//! TargetGroupBinding, the Service's finalizer and status), and causeway adopts it.

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerTypeEnum, ProtocolEnum, TargetTypeEnum,
};
use causeway_testenv::support::{TestCtx, wait_for};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams};

use crate::adopt::{
    Keys, adopted_bindings, count, elb_tags, hash, managed_group, mark_served_by_peer, operations,
    peer_binding, peer_load_balancer, peer_node_rule, register_pods, remove_shared,
    shared_backend_group, target_ips, wait_bindings_released, wait_ready,
};
use crate::alb::{WAIT, calls, elb_client, tagged_with_key};

const SERVICE: Keys = Keys {
    stack: "service.k8s.aws/stack",
    resource: "service.k8s.aws/resource",
};

#[tokio::test]
async fn a_peer_nlb_service_is_adopted_without_writes_and_deleted_without_leftovers() {
    let ctx = TestCtx::new("adopt-nlb").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let class = format!("causeway.dev/nlb-{}", ctx.namespace);
    ctx.apply(&crate::nlb::deployment("edge", 2))
        .await
        .expect("deployment");
    let pods = wait_for("two pod IPs", WAIT, || async {
        let ips = crate::nlb::pod_ips(&ctx, "edge").await;
        (ips.len() == 2).then_some(ips)
    })
    .await
    .expect("pods");
    ctx.apply(&crate::nlb::service(
        "edge",
        &class,
        "edge",
        &[("nlb-target-type", "ip")],
        "  - {name: tcp, port: 80, targetPort: 8080, protocol: TCP}\n",
    ))
    .await
    .expect("service");

    // What the peer made for it: `k8s-<ns>-<name>-<hash>` names, the service.k8s.aws tags.
    let seed = &ctx.env.seed;
    let cluster = seed.cluster_name.as_str();
    let stack = format!("{}/edge", ctx.namespace);
    let ns8: String = ctx.namespace.chars().take(8).collect();
    let elb = elb_client(&ctx).await;
    let backend_sg = shared_backend_group(&ctx).await;
    let managed_sg = managed_group(&ctx, SERVICE, &stack, 80).await;
    let (lb_arn, dns) = peer_load_balancer(
        &ctx,
        SERVICE,
        &stack,
        &format!("k8s-{ns8}-edge-{}", hash()),
        LoadBalancerTypeEnum::Network,
        [&managed_sg, &backend_sg],
    )
    .await;
    let tg_name = format!("k8s-{ns8}-edge-{}", hash());
    let tg = elb
        .create_target_group()
        .name(&tg_name)
        .protocol(ProtocolEnum::Tcp)
        .port(8080)
        .vpc_id(&seed.vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .health_check_protocol(ProtocolEnum::Tcp)
        .health_check_port("traffic-port")
        .health_check_interval_seconds(10)
        .health_check_timeout_seconds(10)
        .healthy_threshold_count(3)
        .unhealthy_threshold_count(3)
        .set_tags(Some(elb_tags(
            SERVICE,
            cluster,
            &stack,
            &format!("{stack}:80"),
        )))
        .send()
        .await
        .expect("CreateTargetGroup");
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_owned();
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Tcp)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&tg_arn)
                .build(),
        )
        .set_tags(Some(elb_tags(SERVICE, cluster, &stack, "80")))
        .send()
        .await
        .expect("CreateListener");
    let listener_arn = listener.listeners()[0]
        .listener_arn()
        .expect("arn")
        .to_owned();
    register_pods(&ctx, &tg_arn, &pods).await;
    ctx.apply(&peer_binding(
        &tg_name,
        &format!(
            "{{\"service.k8s.aws/stack-name\": edge, \"service.k8s.aws/stack-namespace\": \"{}\"}}",
            ctx.namespace
        ),
        &tg_arn,
        &seed.vpc_id,
        "edge",
        &backend_sg,
    ))
    .await
    .expect("TargetGroupBinding");
    let node_rule = peer_node_rule(&ctx, &backend_sg, 8080).await;
    let svcs: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    mark_served_by_peer::<Service>(&ctx, "edge", "service.k8s.aws/resources", &dns).await;

    // causeway takes over.
    let n = crate::nlb::start(&ctx, "nlb,targets", &[]).await;
    let object = format!("service.{}.edge", ctx.namespace);
    let status = wait_ready(&ctx, &object, &n.c.proc).await;
    assert_eq!(
        status.load_balancers[0].arn.as_deref(),
        Some(lb_arn.as_str())
    );
    assert_eq!(crate::nlb::wait_hostname(&ctx, &n, "edge").await, dns);
    let bindings = adopted_bindings(&ctx, &n.c.proc).await;
    assert_eq!(bindings, BTreeSet::from([tg_name.clone()]));
    assert_eq!(target_ips(&ctx, &tg_arn).await, pods);
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .expect("listeners");
    assert_eq!(listeners.listeners().len(), 1);
    assert_eq!(
        listeners.listeners()[0].listener_arn(),
        Some(listener_arn.as_str())
    );
    let m = n.c.metrics().await;
    eprintln!(
        "adopting an NLB Service: {} reads, {} writes\n{}",
        calls(&m, false),
        calls(&m, true),
        operations(&m).join("\n")
    );
    assert_eq!(
        count(&m, |op| op.starts_with("Create")),
        0,
        "{}",
        operations(&m).join("\n")
    );
    assert_eq!(calls(&m, true), 0, "{}", operations(&m).join("\n"));

    // Deleting the Service removes what was adopted and releases the peer's finalizers.
    svcs.delete("edge", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("Service edge gone", WAIT, || async {
        matches!(svcs.get_opt("edge").await, Ok(None)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", n.c.proc.logs()));
    let left = wait_for(&format!("nothing tagged {stack}"), WAIT, || async {
        tagged_with_key(&ctx, SERVICE.stack, &stack)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    if let Err(e) = left {
        panic!(
            "{e}: {:?}\n{}",
            tagged_with_key(&ctx, SERVICE.stack, &stack).await,
            n.c.proc.logs()
        );
    }
    wait_bindings_released(&ctx, &n.c.proc).await;
    remove_shared(&ctx, &node_rule, &backend_sg).await;
    ctx.cleanup().await.ok();
}
