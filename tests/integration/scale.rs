//! The scale harness: N Ingresses in G IngressGroups (two paths each, ip targets, one
//! Deployment of R kwok pods per group, or per Ingress with `CAUSEWAY_SCALE_SPREAD=1`), served
//! by one `causeway controller` running the ALB and targets reconcilers. Reports wall time to
//! every hostname and to every target registered, AWS calls by operation (from the call
//! metric), a restart with nothing changed (time to the last call, calls, writes),
//! registration latency when a Deployment grows, deletion of every Ingress (bindings released,
//! node rules revoked), and RSS. Figures, not assertions (except that a restart writes
//! nothing).
//!
//! `CAUSEWAY_SCALE=20/4/2 cargo test --profile bench --features testing --test integration bench_scale -- --ignored --nocapture`
//! (Ingresses / groups / replicas; 20/4/2 by default). The 1,000-Ingress size:
//! `CAUSEWAY_SCALE=1000/50/10 CAUSEWAY_SCALE_SPREAD=1 CAUSEWAY_SCALE_AWS_RATE_LIMITS=elbv2=200:400,elbv2-writes=200:400,ec2=200:400`
//! (10,000 pods, 2,000 Services; moto answers faster than AWS's buckets would).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use causeway::crd::TargetGroupBinding;
use causeway_testenv::support::{TestCtx, unique_name, wait_for};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::alb::{class, ingress, rule};
use crate::common::Controller;

const DEADLINE: Duration = Duration::from_secs(900);

fn sizes() -> (usize, usize, usize) {
    let raw = std::env::var("CAUSEWAY_SCALE").unwrap_or_else(|_| "20/4/2".into());
    let v: Vec<usize> = raw.split('/').filter_map(|x| x.parse().ok()).collect();
    match v.as_slice() {
        [n, g, r] if *n > 0 && *g > 0 => (*n, *g, *r),
        _ => panic!("CAUSEWAY_SCALE is <ingresses>/<groups>/<replicas>, not {raw:?}"),
    }
}

/// Successful AWS calls by operation.
pub(crate) fn calls_by_operation(metrics: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in metrics
        .lines()
        .filter(|l| l.starts_with("causeway_aws_api_calls_total{"))
    {
        let op = l
            .split("operation=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_owned();
        let n = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        *out.entry(op).or_default() += n;
    }
    out
}

fn is_write(op: &str) -> bool {
    !(op.starts_with("Describe") || op.starts_with("List") || op.starts_with("Get"))
}

fn total(m: &BTreeMap<String, u64>) -> (u64, u64) {
    m.iter().fold((0, 0), |(r, w), (op, n)| match is_write(op) {
        true => (r, w + n),
        false => (r + n, w),
    })
}

pub(crate) fn print_calls(title: &str, m: &BTreeMap<String, u64>) {
    let (r, w) = total(m);
    println!("{title}: {r} reads, {w} writes");
    for (op, n) in m {
        println!("    {op}: {n}");
    }
}

/// Waits until the call counters have not moved for `quiet`; returns when they last moved.
pub(crate) async fn settle(c: &Controller, quiet: Duration, since: Instant) -> Duration {
    let mut last = calls_by_operation(&c.metrics().await);
    let mut moved = since.elapsed();
    let mut still = Instant::now();
    while still.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = calls_by_operation(&c.metrics().await);
        if now != last {
            last = now;
            moved = since.elapsed();
            still = Instant::now();
        }
    }
    moved
}

/// `CAUSEWAY_SCALE_SPREAD=1`: one Deployment of R pods per Ingress (its two Services select
/// it) instead of one per group, so that P = N × R pods are spread over the Services as in a
/// cluster of many small apps, not 40 Services over the same pods.
fn spread() -> bool {
    std::env::var("CAUSEWAY_SCALE_SPREAD").is_ok_and(|v| v == "1")
}

/// The Deployment the Services of Ingress `i` of group `g` select.
fn app(g: usize, i: usize) -> String {
    match spread() {
        true => format!("app{g}-{i}"),
        false => format!("app{g}"),
    }
}

fn deployment(name: &str, replicas: usize) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: registry.example/app:1, ports: [{{containerPort: 8080}}]}}]\n---\n"
    )
}

/// Headless Services: ip targets need only their EndpointSlices, and 2,000 of them would not
/// fit the environment's Service range (a /24).
fn workload(groups: usize, per_group: usize, replicas: usize) -> String {
    let mut y = String::new();
    for g in 0..groups {
        if !spread() {
            y.push_str(&deployment(&app(g, 0), replicas));
        }
        for i in 0..per_group {
            if spread() {
                y.push_str(&deployment(&app(g, i), replicas));
            }
            let app = app(g, i);
            for p in ["a", "b"] {
                y.push_str(&format!(
                    "apiVersion: v1\nkind: Service\nmetadata: {{name: s{g}-{i}-{p}}}\nspec:\n  clusterIP: None\n  selector: {{app: {app}}}\n  ports: [{{name: http, port: 80, targetPort: 8080}}]\n---\n"
                ));
            }
        }
    }
    y
}

async fn all_hostnames(ctx: &TestCtx, n: usize) -> Option<()> {
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let l = api.list(&ListParams::default()).await.ok()?;
    let done = l
        .items
        .iter()
        .filter(|i| causeway::fixtures::hostname(i).is_some())
        .count();
    (done == n).then_some(())
}

/// Every binding (2 per Ingress) reports all its pods registered.
async fn all_registered(ctx: &TestCtx, bindings: usize, replicas: usize) -> Option<()> {
    let api: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let l = api.list(&ListParams::default()).await.ok()?;
    let done = l
        .items
        .iter()
        .filter(|b| {
            b.status
                .as_ref()
                .and_then(|s| s.registered_targets)
                .is_some_and(|n| n as usize == replicas)
        })
        .count();
    (done == bindings).then_some(())
}

#[tokio::test]
#[ignore]
async fn bench_scale() {
    let (n, g, replicas) = sizes();
    let per_group = n.div_ceil(g);
    let ctx = TestCtx::new("scale").await.expect("ctx");
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
        "--log-format",
        "json",
    ];
    // Bigger sizes need moto to go faster than AWS's buckets: `CAUSEWAY_SCALE_AWS_RATE_LIMITS`.
    let limits = std::env::var("CAUSEWAY_SCALE_AWS_RATE_LIMITS").unwrap_or_default();
    let mut args = args.to_vec();
    if !limits.is_empty() {
        args.extend(["--aws-rate-limits", limits.as_str()]);
    }
    let args = args.as_slice();
    let lease = unique_name("scale-lease");
    let mut c = Controller::start(&ctx, &unique_name("scale"), &lease, args);
    wait_for("controller ready", DEADLINE, || async {
        c.ready().await.then_some(())
    })
    .await
    .expect("ready");
    ctx.apply(&workload(g, per_group, replicas))
        .await
        .expect("workload");
    let mut ingresses = String::new();
    let mut made = 0;
    'outer: for gi in 0..g {
        for i in 0..per_group {
            if made == n {
                break 'outer;
            }
            let group = format!("{}-g{gi}", ctx.namespace);
            let rules = format!(
                "{}{}",
                rule(
                    &format!("i{gi}-{i}.causeway.test"),
                    "/a",
                    &format!("s{gi}-{i}-a")
                ),
                rule(
                    &format!("i{gi}-{i}.causeway.test"),
                    "/b",
                    &format!("s{gi}-{i}-b")
                )
            );
            ingresses.push_str(&ingress(
                &format!("i{gi}-{i}"),
                &class,
                &[
                    ("alb.ingress.kubernetes.io/group.name", group.as_str()),
                    ("alb.ingress.kubernetes.io/target-type", "ip"),
                ],
                &rules,
            ));
            ingresses.push_str("\n---\n");
            made += 1;
        }
    }
    let t0 = Instant::now();
    ctx.apply(&ingresses).await.expect("ingresses");
    wait_for("every hostname", DEADLINE, || all_hostnames(&ctx, n))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let hostnames = t0.elapsed();
    wait_for("every target registered", DEADLINE, || {
        all_registered(&ctx, 2 * n, replicas)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let targets = t0.elapsed();
    let last_call = settle(&c, Duration::from_secs(5), t0).await;
    let create_calls = calls_by_operation(&c.metrics().await);
    let rss_create = crate::targets::vm_rss_kib(c.proc.child.id());
    println!(
        "scale {n} Ingresses / {g} groups / {} pods: apply → every hostname {:.1} s, → every target {:.1} s, last call {:.1} s; RSS {:.1} MiB",
        if spread() { n * replicas } else { g * replicas },
        hostnames.as_secs_f64(),
        targets.as_secs_f64(),
        last_call.as_secs_f64(),
        rss_create as f64 / 1024.0
    );
    print_calls("  cold create", &create_calls);

    // Restart with nothing changed.
    c.proc.terminate();
    let t1 = Instant::now();
    let c2 = Controller::start(&ctx, &unique_name("scale2"), &lease, args);
    wait_for("restarted controller calling AWS", DEADLINE, || async {
        (!calls_by_operation(&c2.metrics().await).is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c2.proc.logs()));
    let reverified = settle(&c2, Duration::from_secs(5), t1).await;
    let restart_calls = calls_by_operation(&c2.metrics().await);
    println!(
        "  restart, nothing changed: last AWS call {:.1} s after start",
        reverified.as_secs_f64()
    );
    print_calls("  restart", &restart_calls);
    assert_eq!(
        total(&restart_calls).1,
        0,
        "a restart with nothing changed must not write"
    );

    // Registration latency: the first Deployment grows by one pod, ten times. Watched, not
    // polled, and split at the EndpointSlice (Kubernetes' part) and RegisterTargets (ours).
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let binding = {
        let bindings: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        let l = bindings
            .list(&ListParams::default())
            .await
            .expect("bindings");
        l.items
            .into_iter()
            .find(|b| b.spec.service_ref.name == "s0-0-a")
            .expect("the binding of s0-0-a")
            .metadata
            .name
            .expect("name")
    };
    let mut steps = Vec::new();
    for step in 1..=10 {
        let want = replicas + step;
        let slice_seen = first_slice_with(&ctx, "s0-0-a", want);
        let status_seen = first_status_with(&ctx, &binding, want);
        tokio::time::sleep(Duration::from_millis(300)).await; // both watches started
        let (t, at_ms) = (Instant::now(), epoch_ms());
        deployments
            .patch(
                &app(0, 0),
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"replicas": want}})),
            )
            .await
            .expect("scale");
        let (slice, status) = tokio::time::timeout(DEADLINE, async {
            (
                slice_seen.await.expect("slice watch"),
                status_seen.await.expect("status watch"),
            )
        })
        .await
        .unwrap_or_else(|_| panic!("the new pod was not registered\n{}", c2.proc.logs()));
        let registered = last_register_ms(&c2.proc.logs(), &ctx.namespace, &binding)
            .filter(|ms| *ms >= at_ms)
            .map(|ms| Duration::from_millis((ms - at_ms) as u64));
        steps.push(Step {
            slice: slice - t,
            register: registered,
            status: status - t,
        });
    }
    print_registration(&steps);
    println!(
        "  RSS after restart and scaling: {:.1} MiB",
        crate::targets::vm_rss_kib(c2.proc.child.id()) as f64 / 1024.0
    );

    // Deletion: every Ingress goes; every binding's finalizer is released, every node
    // security group rule the bindings added is revoked.
    let before = calls_by_operation(&c2.metrics().await);
    let t2 = Instant::now();
    let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    ingresses
        .delete_collection(&Default::default(), &ListParams::default())
        .await
        .expect("delete the Ingresses");
    let bindings: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_for("every binding released", DEADLINE, || async {
        bindings
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c2.proc.logs()));
    let released = t2.elapsed();
    let ec2 = crate::alb::ec2_client(&ctx).await;
    let prefix = format!("causeway.dev/tgb/{}/", ctx.namespace);
    wait_for("every node rule revoked", DEADLINE, || async {
        let r = ec2
            .describe_security_group_rules()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .values(&ctx.env.seed.node_security_group_id)
                    .build(),
            )
            .send()
            .await
            .ok()?;
        (!r.security_group_rules().iter().any(|x| {
            x.tags()
                .iter()
                .any(|t| t.key().is_some_and(|k| k.starts_with(&prefix)))
        }))
        .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c2.proc.logs()));
    let revoked = t2.elapsed();
    let after = calls_by_operation(&c2.metrics().await);
    let deleted: BTreeMap<String, u64> = after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    println!(
        "  delete every Ingress: every binding released {:.1} s, every node rule revoked {:.1} s",
        released.as_secs_f64(),
        revoked.as_secs_f64()
    );
    print_calls("  deletion", &deleted);
    ctx.cleanup().await.ok();
}

/// One scale-up, from the Deployment patch: the EndpointSlice lists the new pod ready, our
/// RegisterTargets call (from the log), the binding's status counts it.
struct Step {
    slice: Duration,
    register: Option<Duration>,
    status: Duration,
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// When the Service's EndpointSlices first list `want` ready endpoints.
fn first_slice_with(ctx: &TestCtx, service: &str, want: usize) -> tokio::task::JoinHandle<Instant> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let cfg = kube::runtime::watcher::Config::default()
        .labels(&format!("kubernetes.io/service-name={service}"));
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut seen = std::pin::pin!(kube::runtime::reflector::reflector(
            kube::runtime::reflector::store::Writer::default(),
            kube::runtime::watcher(api, cfg)
        ));
        let mut slices: BTreeMap<String, usize> = BTreeMap::new();
        while let Some(Ok(ev)) = seen.next().await {
            let mut note = |s: &EndpointSlice| {
                let ready = s
                    .endpoints
                    .iter()
                    .flatten()
                    .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
                    .count();
                slices.insert(s.metadata.name.clone().unwrap_or_default(), ready);
            };
            match &ev {
                kube::runtime::watcher::Event::Apply(s)
                | kube::runtime::watcher::Event::InitApply(s) => note(s),
                kube::runtime::watcher::Event::Delete(s) => {
                    slices.remove(s.metadata.name.as_deref().unwrap_or_default());
                }
                _ => {}
            }
            if slices.values().sum::<usize>() == want {
                return Instant::now();
            }
        }
        Instant::now()
    })
}

/// When the binding's status first counts `want` registered targets.
fn first_status_with(ctx: &TestCtx, name: &str, want: usize) -> tokio::task::JoinHandle<Instant> {
    let api: Api<TargetGroupBinding> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let cfg = kube::runtime::watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut seen = std::pin::pin!(kube::runtime::watcher(api, cfg));
        while let Some(Ok(ev)) = seen.next().await {
            if let kube::runtime::watcher::Event::Apply(b)
            | kube::runtime::watcher::Event::InitApply(b) = &ev
                && b.status.as_ref().and_then(|s| s.registered_targets) == Some(want as i32)
            {
                return Instant::now();
            }
        }
        Instant::now()
    })
}

/// The epoch milliseconds of the binding's last RegisterTargets call in the controller log.
fn last_register_ms(logs: &str, namespace: &str, binding: &str) -> Option<u128> {
    let key = format!("{namespace}/{binding}");
    logs.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["op"] == "RegisterTargets" && v["binding"] == key.as_str())
        .and_then(|v| v["at_ms"].as_u64())
        .map(u128::from)
}

fn print_registration(steps: &[Step]) {
    fn p(mut v: Vec<Duration>, q: usize) -> f64 {
        v.sort();
        v.get((v.len() * q / 100).min(v.len().saturating_sub(1)))
            .map_or(f64::NAN, Duration::as_secs_f64)
    }
    let slice: Vec<Duration> = steps.iter().map(|s| s.slice).collect();
    let status: Vec<Duration> = steps.iter().map(|s| s.status).collect();
    let register: Vec<Duration> = steps.iter().filter_map(|s| s.register).collect();
    let ours: Vec<Duration> = steps
        .iter()
        .filter_map(|s| s.register.map(|r| r.saturating_sub(s.slice)))
        .collect();
    println!(
        "  registration after a scale-up, {} runs (p50 / max, from the Deployment patch):",
        steps.len()
    );
    println!(
        "    EndpointSlice lists the pod ready {:.2} s / {:.2} s",
        p(slice.clone(), 50),
        p(slice, 100)
    );
    println!(
        "    RegisterTargets sent {:.2} s / {:.2} s ({} of {} seen in the log); slice → RegisterTargets {:.2} s / {:.2} s",
        p(register.clone(), 50),
        p(register.clone(), 100),
        register.len(),
        steps.len(),
        p(ours.clone(), 50),
        p(ours, 100)
    );
    println!(
        "    binding status counts it {:.2} s / {:.2} s",
        p(status.clone(), 50),
        p(status, 100)
    );
}
