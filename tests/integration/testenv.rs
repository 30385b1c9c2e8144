//! The environment itself: Deployments get Pods on kwok nodes, Services get
//! EndpointSlices, nodes look like EKS nodes, moto is seeded like an account.

use causeway_testenv::support::{TestCtx, wait_for};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use std::time::Duration;

#[tokio::test]
async fn a_deployment_behind_a_service_produces_endpoint_slices() {
    let ctx = TestCtx::new("env").await.expect("ctx");
    ctx.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http, name: http}]
"#,
    )
    .await
    .expect("apply");
    let slices: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let ips = wait_for("3 ready endpoints", Duration::from_secs(90), || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?;
        let ips: Vec<String> = list
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter().flatten())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .flat_map(|e| e.addresses.clone())
            .collect();
        (ips.len() == 3).then_some(ips)
    })
    .await
    .expect("endpoint slices");
    assert!(
        ips.iter()
            .all(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()),
        "{ips:?}"
    );
    let port = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .expect("list")
        .items[0]
        .ports
        .as_ref()
        .and_then(|p| p.first().and_then(|p| p.port));
    assert_eq!(
        port,
        Some(8080),
        "targetPort resolved through the named container port"
    );
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn nodes_look_like_eks_nodes_backed_by_moto_instances() {
    let ctx = TestCtx::new("nodes").await.expect("ctx");
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let list = nodes
        .list(&ListParams::default().labels("type=kwok"))
        .await
        .expect("nodes");
    assert_eq!(list.items.len(), ctx.env.seed.instance_ids.len());
    let ec2 = aws_sdk_ec2::Client::new(&ctx.aws().await);
    for node in list.items {
        let provider = node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .expect("providerID");
        let instance = provider
            .rsplit('/')
            .next()
            .expect("instance id")
            .to_string();
        let ip = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map(|a| a.address.clone())
            .expect("InternalIP");
        let out = ec2
            .describe_instances()
            .instance_ids(&instance)
            .send()
            .await
            .expect("describe");
        let inst = &out.reservations()[0].instances()[0];
        assert_eq!(inst.private_ip_address(), Some(ip.as_str()));
    }
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn moto_is_seeded_like_an_eks_account() {
    let ctx = TestCtx::new("seed").await.expect("ctx");
    let seed = &ctx.env.seed;
    let conf = ctx.aws().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let subnets = ec2
        .describe_subnets()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&seed.vpc_id)
                .build(),
        )
        .send()
        .await
        .expect("subnets");
    let cluster_tag = format!("kubernetes.io/cluster/{}", seed.cluster_name);
    let public: Vec<_> = subnets
        .subnets()
        .iter()
        .filter(|s| {
            s.tags()
                .iter()
                .any(|t| t.key() == Some("kubernetes.io/role/elb"))
        })
        .collect();
    assert_eq!(public.len(), 2);
    let azs: std::collections::BTreeSet<_> = public
        .iter()
        .filter_map(|s| s.availability_zone())
        .collect();
    assert_eq!(azs.len(), 2, "public subnets span two AZs");
    assert!(public.iter().all(|s| {
        s.tags()
            .iter()
            .any(|t| t.key() == Some(&cluster_tag) && t.value() == Some("shared"))
    }));
    let r53 = aws_sdk_route53::Client::new(&conf);
    let zones = r53.list_hosted_zones().send().await.expect("zones");
    let ours: Vec<_> = zones
        .hosted_zones()
        .iter()
        .filter(|z| {
            z.id().ends_with(&seed.public_zone_id) || z.id().ends_with(&seed.private_zone_id)
        })
        .collect();
    assert_eq!(ours.len(), 2);
    assert!(
        ours.iter()
            .any(|z| z.config().is_some_and(|c| c.private_zone()))
    );
    let acm = aws_sdk_acm::Client::new(&conf);
    let cert = acm
        .describe_certificate()
        .certificate_arn(&seed.certificate_arn)
        .send()
        .await
        .expect("certificate");
    assert_eq!(
        cert.certificate().and_then(|c| c.domain_name()),
        Some(seed.domain.as_str())
    );
    let iam = aws_sdk_iam::Client::new(&conf);
    for arn in &seed.role_arns {
        let name = arn.rsplit('/').next().expect("role name");
        iam.get_role()
            .role_name(name)
            .send()
            .await
            .expect("role exists");
    }
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn kubectl_and_helm_work_against_the_environment() {
    let ctx = TestCtx::new("tools").await.expect("ctx");
    let out = std::process::Command::new(&ctx.env.kubectl)
        .args(["version", "-o", "json"])
        .env("KUBECONFIG", &ctx.env.kubeconfig)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["serverVersion"]["gitVersion"],
        causeway_testenv::K8S_VERSION
    );
    let home = ctx.env.dir.join("helm-home");
    let out = std::process::Command::new(&ctx.env.helm)
        .args(["version", "--short"])
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .output()
        .expect("helm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(causeway_testenv::HELM_VERSION),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn a_second_environment_starts_and_down_leaves_no_process_behind() {
    // Independent of the shared environment: its own directory and ports.
    let dir = causeway_testenv::binaries::repo_root()
        .join("target")
        .join(format!("testenv-lifecycle-{}", std::process::id()));
    let info = causeway_testenv::env::up(&dir, &Default::default(), &|_| {})
        .await
        .expect("second environment starts");
    let running = causeway_testenv::env::status(&dir);
    let names: Vec<&str> = running.iter().map(|(n, _, _)| n.as_str()).collect();
    for component in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "moto",
    ] {
        assert!(
            names.contains(&component),
            "{component} not running: {names:?}"
        );
    }
    assert!(running.iter().all(|(_, _, alive)| *alive), "{running:?}");
    assert!(causeway_testenv::env::existing(&dir).await.is_some());
    assert!(dir.join("env").exists() && info.kubeconfig.exists());

    let stopped = causeway_testenv::env::down(&dir);
    assert_eq!(stopped.len(), running.len());
    for (name, pid, _) in &running {
        assert!(
            !causeway_testenv::procs::alive(*pid),
            "{name} (pid {pid}) still alive after down"
        );
    }
    assert!(causeway_testenv::env::status(&dir).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
