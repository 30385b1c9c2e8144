//! Convergence under AWS faults and crashes: Ingresses in several IngressGroups are created,
//! edited, moved between groups and deleted while the fault proxy throttles, fails and loses
//! responses, and the controller is SIGKILLed and restarted. Then the faults stop, and the
//! test asserts that everything converges: each live Ingress has the hostname of its group's
//! one load balancer and a rule for its host; after deleting everything, nothing of ours is
//! left in AWS, and a foreign target group is untouched.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2 as elb;
use causeway_testenv::faults::{FaultProxy, Faults};
use causeway_testenv::support::{TestCtx, unique_name, wait_for};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::alb::{self, Alb};

/// The faults of the churn: as an operator tried them before trusting the controller.
const FAULTS: Faults = Faults {
    throttle: 0.15,
    server_error: 0.05,
    lost_response: 0.03,
    max_latency: Duration::from_millis(40),
};

struct Churn {
    seed: u64,
    ingresses: usize,
    groups: usize,
    duration: Duration,
    /// Mean time between SIGKILLs of the controller.
    kill_every: Duration,
    /// When set: AWS calls are counted over this window in steady state before the churn
    /// (one Ingress per group, converged) and again after it.
    idle_window: Option<Duration>,
}

/// What a churn injected and how long it took to converge, for its output line.
fn faults_line(stats: &causeway_testenv::faults::Stats, kills: u32, converged: Duration) -> String {
    format!(
        "{kills} kills, {} calls of which {} throttled, {} 5xx, {} lost responses; converged {:.1} s after the faults stopped",
        stats.calls,
        stats.throttled,
        stats.server_errors,
        stats.lost_responses,
        converged.as_secs_f64()
    )
}

/// AWS calls through the proxy over `window`, per minute.
async fn calls_per_minute(proxy: &FaultProxy, window: Duration) -> f64 {
    let start = proxy.stats().calls;
    tokio::time::sleep(window).await;
    (proxy.stats().calls - start) as f64 * 60.0 / window.as_secs_f64()
}

/// What the churn left: live Ingress → its group.
type Live = BTreeMap<String, usize>;

fn stack(ctx: &TestCtx, group: usize) -> String {
    format!("{}-g{group}", ctx.namespace)
}

fn host(ctx: &TestCtx, name: &str) -> String {
    format!("{name}.{}.causeway.test", ctx.namespace)
}

async fn apply_ingress(ctx: &TestCtx, class: &str, name: &str, group: usize, path: &str) {
    let yaml = alb::ingress(
        name,
        class,
        &[("alb.ingress.kubernetes.io/group.name", &stack(ctx, group))],
        &alb::rule(&host(ctx, name), path, "web"),
    );
    ctx.apply(&yaml).await.expect("apply ingress");
}

/// Load balancers tagged for `stack`, by ARN, with their DNS names.
async fn load_balancers_of(
    ctx: &TestCtx,
    elb: &elb::Client,
    stack: &str,
) -> BTreeMap<String, String> {
    let tagged = alb::tagged_with(ctx, stack).await;
    let all = elb.describe_load_balancers().send().await.expect("lbs");
    all.load_balancers()
        .iter()
        .filter(|l| {
            tagged
                .iter()
                .any(|a| Some(a.as_str()) == l.load_balancer_arn())
        })
        .map(|l| {
            (
                l.load_balancer_arn().unwrap_or_default().to_string(),
                l.dns_name().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The hosts of the rules on the load balancer's listener on `port`; `None` while there is
/// no such listener.
async fn hosts_on(elb: &elb::Client, lb_arn: &str, port: i32) -> Option<Vec<String>> {
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .ok()?;
    listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(port))?;
    Some(alb::hosts_of(&alb::rules_of(elb, lb_arn, port).await))
}

/// `None` once every live Ingress has its group's one load balancer's hostname and a rule
/// for its host there, and no group without members has a load balancer; otherwise what
/// is still wrong.
async fn unconverged(ctx: &TestCtx, churn: &Churn, live: &Live) -> Option<String> {
    let elb = alb::elb_client(ctx).await;
    for g in 0..churn.groups {
        let lbs = load_balancers_of(ctx, &elb, &stack(ctx, g)).await;
        let members: Vec<&String> = live
            .iter()
            .filter(|(_, v)| **v == g)
            .map(|(k, _)| k)
            .collect();
        if members.is_empty() {
            if !lbs.is_empty() {
                return Some(format!(
                    "group {g} has no members but {} load balancers",
                    lbs.len()
                ));
            }
            continue;
        }
        if lbs.len() != 1 {
            return Some(format!("group {g} has {} load balancers", lbs.len()));
        }
        let (arn, dns) = lbs.iter().next().expect("one");
        let Some(hosts) = hosts_on(&elb, arn, 80).await else {
            return Some(format!("group {g} has no listener on 80 yet"));
        };
        for name in members {
            if alb::hostname(ctx, name).await.as_deref() != Some(dns.as_str()) {
                return Some(format!("{name} lacks hostname {dns}"));
            }
            if !hosts.contains(&host(ctx, name)) {
                return Some(format!("{name} has no rule in group {g}: {hosts:?}"));
            }
        }
    }
    None
}

async fn churn(churn: Churn) {
    let ctx = TestCtx::new("faults").await.expect("ctx");
    let class = alb::class(&ctx).await;
    let proxy = FaultProxy::start(&ctx.env.moto_url, churn.seed)
        .await
        .expect("fault proxy");
    let elb = alb::elb_client(&ctx).await;
    // A target group that is not ours, with a name like ours: it must survive everything.
    let foreign = elb
        .create_target_group()
        .name(unique_name("k8s-foreign"))
        .protocol(elb::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&ctx.env.seed.vpc_id)
        .send()
        .await
        .expect("foreign target group");
    let foreign_arn = foreign.target_groups()[0]
        .target_group_arn()
        .unwrap_or_default()
        .to_string();
    ctx.apply(&alb::services(false)).await.expect("services");

    let lease = unique_name("faults-lease");
    let url = proxy.url();
    let env = [("AWS_ENDPOINT_URL", url.as_str())];
    let start = |n: u32| {
        alb::restart(
            &ctx,
            &format!("faults-{}-{n}", ctx.namespace),
            &class,
            &lease,
            &env,
        )
    };
    let mut generation = 0;
    let mut controller: Alb = start(generation);

    let mut rng = StdRng::seed_from_u64(churn.seed);
    let mut live: Live = BTreeMap::new();
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let mut idle_before = None;
    if let Some(window) = churn.idle_window {
        for g in 0..churn.groups {
            let name = format!("web{g}");
            apply_ingress(&ctx, &controller.class, &name, g, "/").await;
            live.insert(name, g);
        }
        wait_for(
            "steady state before the churn",
            Duration::from_secs(180),
            || async {
                unconverged(&ctx, &churn, &live)
                    .await
                    .is_none()
                    .then_some(())
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", controller.proc.logs()));
        // The last writes' watch events settle first.
        tokio::time::sleep(Duration::from_secs(5)).await;
        idle_before = Some(calls_per_minute(&proxy, window).await);
    }
    proxy.set(FAULTS);
    let began = Instant::now();
    let mut next_kill = began + churn.kill_every.mul_f64(rng.random_range(0.5..1.5));
    let (mut kills, mut ops) = (0u32, 0u32);
    while began.elapsed() < churn.duration {
        let name = format!("web{}", rng.random_range(0..churn.ingresses));
        let group = rng.random_range(0..churn.groups);
        match (live.get(&name).copied(), rng.random_range(0..4)) {
            // One deleted a moment ago may still be held by its finalizer: not yet.
            (None, _) if matches!(api.get_opt(&name).await, Ok(Some(_))) => {}
            (None, _) => {
                apply_ingress(&ctx, &controller.class, &name, group, "/").await;
                live.insert(name, group);
            }
            // Edit: another path, same group.
            (Some(g), 0) => {
                let path = format!("/v{}", rng.random_range(0..100));
                apply_ingress(&ctx, &controller.class, &name, g, &path).await;
            }
            // Move to another group.
            (Some(_), 1) => {
                apply_ingress(&ctx, &controller.class, &name, group, "/").await;
                live.insert(name, group);
            }
            (Some(_), 2) => {
                api.delete(&name, &DeleteParams::default())
                    .await
                    .expect("delete ingress");
                live.remove(&name);
            }
            _ => {}
        }
        ops += 1;
        if Instant::now() >= next_kill {
            controller.proc.kill();
            kills += 1;
            generation += 1;
            controller = start(generation);
            next_kill = Instant::now() + churn.kill_every.mul_f64(rng.random_range(0.5..1.5));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
    }
    // Deleted Ingresses whose finalizer is still held are not live: wait until they are gone
    // before judging the groups.
    proxy.set(Faults::NONE);
    let stopped = Instant::now();
    let during = proxy.stats();
    let result = wait_for(
        "convergence after the faults stop",
        Duration::from_secs(180),
        || async {
            let existing: Vec<String> = api
                .list(&Default::default())
                .await
                .ok()?
                .items
                .iter()
                .filter_map(|i| i.metadata.name.clone())
                .collect();
            if existing.iter().any(|n| !live.contains_key(n)) {
                return None;
            }
            unconverged(&ctx, &churn, &live)
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    let converged_after = stopped.elapsed();
    if let Err(e) = result {
        panic!(
            "{e}: {:?}\n{}",
            unconverged(&ctx, &churn, &live).await,
            controller.proc.logs()
        );
    }
    println!(
        "churn seed {}: {ops} operations, {}",
        churn.seed,
        faults_line(&during, kills, converged_after)
    );
    assert!(
        during.injected() > 0 && kills > 0,
        "the churn injected nothing"
    );
    if let (Some(window), Some(before)) = (churn.idle_window, idle_before) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = calls_per_minute(&proxy, window).await;
        println!(
            "steady state: {before:.1} AWS calls per minute before the churn, {after:.1} after ({} s windows)",
            window.as_secs()
        );
    }

    // Everything goes, and nothing of ours is left; the foreign target group stays.
    for name in live.keys() {
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete ingress");
    }
    let leftovers = || async {
        let mut left = Vec::new();
        for g in 0..churn.groups {
            left.extend(alb::tagged_with(&ctx, &stack(&ctx, g)).await);
        }
        left
    };
    let gone = wait_for("nothing of ours left", Duration::from_secs(120), || async {
        let remaining = api.list(&Default::default()).await.ok()?.items.len();
        (remaining == 0 && leftovers().await.is_empty()).then_some(())
    })
    .await;
    if let Err(e) = gone {
        panic!("{e}: {:?}\n{}", leftovers().await, controller.proc.logs());
    }
    let still = elb
        .describe_target_groups()
        .target_group_arns(&foreign_arn)
        .send()
        .await
        .expect("the foreign target group is still there");
    assert_eq!(still.target_groups().len(), 1);
    let _ = elb
        .delete_target_group()
        .target_group_arn(&foreign_arn)
        .send()
        .await;
}

#[tokio::test]
async fn alb_groups_converge_after_faults_and_crashes() {
    churn(Churn {
        seed: 16,
        ingresses: 12,
        groups: 4,
        duration: Duration::from_secs(45),
        kill_every: Duration::from_secs(12),
        idle_window: None,
    })
    .await;
}

/// The longer soak: `cargo xtask test -- --ignored soak_alb` (or CAUSEWAY_SOAK_SEED=n).
#[tokio::test]
#[ignore]
async fn soak_alb_groups_under_faults() {
    let seed = std::env::var("CAUSEWAY_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    churn(Churn {
        seed,
        ingresses: 30,
        groups: 5,
        duration: Duration::from_secs(150),
        kill_every: Duration::from_secs(12),
        idle_window: Some(Duration::from_secs(60)),
    })
    .await;
}

/// DNS alone: Ingresses get, change and lose hostnames while Route 53 calls fail, throttle
/// and lose responses and the controller is killed; afterwards the zone holds exactly the
/// live names (with their ownership records) and nothing of the dead ones.
#[tokio::test]
async fn dns_records_converge_after_faults_and_crashes() {
    use crate::dns::{Dns, create_alb, patch_lb_hostname, route53};

    let ctx = TestCtx::new("dns-faults").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let proxy = FaultProxy::start(&ctx.env.moto_url, 20)
        .await
        .expect("proxy");
    let (lb_host, _) = create_alb(&ctx, &unique_name("alb")).await;
    let owner = unique_name("own");
    let zone = ctx.env.seed.public_zone_id.clone();
    let url = proxy.url();
    let start = || {
        Dns::start_with_env(
            &ctx,
            &owner,
            "causeway.test",
            &["--dns-zone-id-filter", &zone],
            &[("AWS_ENDPOINT_URL", url.as_str())],
        )
    };
    let mut dns = start();
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let mut rng = StdRng::seed_from_u64(20);
    let mut live: BTreeMap<String, String> = BTreeMap::new();
    let mut used: Vec<String> = Vec::new();
    let apply = |name: String, host: String| {
        let ctx = &ctx;
        async move {
            ctx.apply(&format!(
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\nspec:\n  rules:\n  - host: {host}\n"
            ))
            .await
            .expect("apply ingress");
        }
    };
    proxy.set(FAULTS);
    let began = Instant::now();
    let (mut kills, mut next_kill) = (0u32, began + Duration::from_secs(8));
    while began.elapsed() < Duration::from_secs(30) {
        let name = format!("web{}", rng.random_range(0..8));
        let host = format!(
            "{}-{}.causeway.test",
            ctx.namespace,
            rng.random_range(0..1000)
        );
        match (live.contains_key(&name), rng.random_range(0..3)) {
            (false, _) | (true, 0) => {
                apply(name.clone(), host.clone()).await;
                patch_lb_hostname(&api, &name, &lb_host).await;
                used.push(host.clone());
                live.insert(name, host);
            }
            (true, 1) => {
                api.delete(&name, &DeleteParams::default())
                    .await
                    .expect("delete");
                live.remove(&name);
            }
            _ => {}
        }
        if Instant::now() >= next_kill {
            dns.proc.kill();
            kills += 1;
            dns = start();
            next_kill = Instant::now() + Duration::from_secs(rng.random_range(6..12));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..600))).await;
    }
    proxy.set(Faults::NONE);
    let stopped = Instant::now();
    let during = proxy.stats();
    let r53 = route53(&ctx).await;
    let wrong = |live: BTreeMap<String, String>| {
        let (r53, zone, used) = (&r53, &zone, &used);
        async move { dns_wrong(r53, zone, used, &live).await }
    };
    let result = wait_for("DNS convergence", Duration::from_secs(120), || async {
        wrong(live.clone()).await.is_none().then_some(())
    })
    .await;
    if let Err(e) = result {
        panic!("{e}: {:?}\n{}", wrong(live.clone()).await, dns.proc.logs());
    }
    println!(
        "dns churn: {} names, {}",
        used.len(),
        faults_line(&during, kills, stopped.elapsed())
    );
    assert!(
        during.injected() > 0 && kills > 0,
        "the churn injected nothing"
    );
    for name in live.keys() {
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    wait_for("every record removed", Duration::from_secs(120), || async {
        wrong(BTreeMap::new()).await.is_none().then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    ctx.cleanup().await.ok();
}

/// The first host whose records are not what `live` wants: an A record and its TXT for a
/// live name, nothing for the others.
async fn dns_wrong(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    used: &[String],
    live: &BTreeMap<String, String>,
) -> Option<String> {
    use crate::dns::{of_type, records_named};
    use aws_sdk_route53::types::RrType;
    for host in used {
        let want = live.values().any(|h| h == host);
        let sets = records_named(r53, zone, host).await;
        let txt = records_named(r53, zone, &format!("a-{host}")).await;
        let have = of_type(&sets, RrType::A).len() == 1 && txt.len() == 1;
        let none = sets.is_empty() && txt.is_empty();
        if (want && !have) || (!want && !none) {
            return Some(format!(
                "{host}: wanted {want}, records {sets:?}, txt {txt:?}"
            ));
        }
    }
    None
}

/// Target registration alone: a binding's endpoints change while ELBv2 calls fail, throttle
/// and lose responses and the controller is killed; afterwards the target group holds
/// exactly the last endpoints.
#[tokio::test]
async fn targets_converge_after_faults_and_crashes() {
    use crate::targets::{manual_service, start_with_env, target_group, targets, tgb, write_slice};
    use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
    use std::collections::BTreeSet;

    let ctx = TestCtx::new("tgb-faults").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let proxy = FaultProxy::start(&ctx.env.moto_url, 30)
        .await
        .expect("proxy");
    let arn = target_group(&ctx, &ctx.env.seed.vpc_id, TargetTypeEnum::Ip).await;
    ctx.apply(&manual_service("svc")).await.expect("svc");
    let url = proxy.url();
    let start = || start_with_env(&ctx, &[], &[("AWS_ENDPOINT_URL", url.as_str())]);
    let mut c = start();
    let mut rng = StdRng::seed_from_u64(30);
    let pick = |rng: &mut StdRng| -> Vec<String> {
        (1..=12)
            .filter(|_| rng.random_range(0..2) == 0)
            .map(|i| format!("192.168.200.{i}"))
            .collect()
    };
    let mut ips = pick(&mut rng);
    write_slice(&ctx, "svc", &ips).await;
    ctx.apply(&tgb("svc", &arn, "svc", "ip", ""))
        .await
        .expect("tgb");
    proxy.set(FAULTS);
    let began = Instant::now();
    let (mut kills, mut next_kill) = (0u32, began + Duration::from_secs(7));
    while began.elapsed() < Duration::from_secs(25) {
        ips = pick(&mut rng);
        write_slice(&ctx, "svc", &ips).await;
        if Instant::now() >= next_kill {
            c.proc.kill();
            kills += 1;
            c = start();
            next_kill = Instant::now() + Duration::from_secs(rng.random_range(5..9));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..900))).await;
    }
    proxy.set(Faults::NONE);
    let stopped = Instant::now();
    let during = proxy.stats();
    let want: BTreeSet<String> = ips.iter().map(|ip| format!("{ip}:8080")).collect();
    wait_for(
        "targets equal the last endpoints",
        Duration::from_secs(120),
        || async { (targets(&ctx, &arn).await == want).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: want {want:?}\n{}", c.proc.logs()));
    println!(
        "targets churn: {}",
        faults_line(&during, kills, stopped.elapsed())
    );
    assert!(
        during.injected() > 0 && kills > 0,
        "the churn injected nothing"
    );
    ctx.cleanup().await.ok();
}

/// A create whose response is lost is retried by the SDK and meets what the first attempt
/// made (`PriorityInUse`, `DuplicateTargetGroupName`, ...): the step adopts it, so the
/// reconcile does not fail at all.
#[tokio::test]
async fn a_create_whose_response_is_lost_is_adopted_in_the_same_reconcile() {
    let ctx = TestCtx::new("adopt").await.expect("ctx");
    let class = alb::class(&ctx).await;
    let proxy = FaultProxy::start(&ctx.env.moto_url, 1)
        .await
        .expect("proxy");
    ctx.apply(&alb::services(false)).await.expect("services");
    // Not CreateLoadBalancer or CreateListener: ELBv2 answers a repeat of those with the
    // existing resource, but moto makes a second one.
    for op in ["CreateSecurityGroup", "CreateTargetGroup", "CreateRule"] {
        proxy.lose_next(op, 1);
    }
    let url = proxy.url();
    let lease = unique_name("adopt-lease");
    let controller = alb::restart(
        &ctx,
        &format!("adopt-{}", ctx.namespace),
        &class,
        &lease,
        &[("AWS_ENDPOINT_URL", url.as_str())],
    );
    let group = format!("{}-adopt", ctx.namespace);
    let yaml = alb::ingress(
        "web",
        &class,
        &[("alb.ingress.kubernetes.io/group.name", &group)],
        &alb::rule(&host(&ctx, "web"), "/", "web"),
    );
    ctx.apply(&yaml).await.expect("ingress");
    let dns = alb::wait_hostname(&ctx, &controller, "web").await;
    let stats = proxy.stats();
    assert_eq!(stats.lost_responses, 3, "{stats:?}");
    let metrics = alb::metrics(&controller).await;
    let failed: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("causeway_reconcile_errors_total{") && l.contains("controller=\"alb\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(
        failed,
        0.0,
        "a reconcile failed:\n{}",
        controller.proc.logs()
    );
    let elb = alb::elb_client(&ctx).await;
    let lbs = load_balancers_of(&ctx, &elb, &group).await;
    assert_eq!(
        lbs.values().collect::<Vec<_>>(),
        [&dns],
        "one load balancer"
    );
    let (arn, _) = lbs.iter().next().expect("one");
    let hosts = alb::hosts_of(&alb::rules_of(&elb, arn, 80).await);
    assert_eq!(hosts, [host(&ctx, "web")], "one rule");
    let ours = alb::tagged_with(&ctx, &group).await;
    assert_eq!(
        ours.len(),
        4,
        "one LB, one TG, the frontend and backend SGs: {ours:?}"
    );
}
