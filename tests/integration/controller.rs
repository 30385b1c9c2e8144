//! `causeway controller` on the embedded environment: flags, readiness,
//! metrics, and leader election with takeover.

use crate::common::{Controller, causeway_bin};
use causeway_testenv::support::{TestCtx, http_get, unique_name, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use std::process::Command;
use std::time::Duration;

#[test]
fn controller_help_lists_every_flag_with_its_env_var() {
    let out = Command::new(causeway_bin())
        .args(["controller", "--help"])
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    // Split the help into one block per flag.
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if t.starts_with("--")
            || (t.starts_with('-')
                && t.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic())
                && t.contains(", --"))
        {
            blocks.push(String::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    let flags: Vec<&String> = blocks
        .iter()
        .filter(|b| !b.contains("--help") && !b.contains("--version"))
        .collect();
    assert!(
        flags.len() >= 15,
        "expected every controller flag, got:\n{help}"
    );
    for block in flags {
        assert!(block.contains("[env: "), "flag without env var:\n{block}");
    }
    for flag in [
        "--cluster-name",
        "--kubeconfig",
        "--aws-endpoint-url",
        "--aws-region",
        "--metrics-addr",
        "--leader-elect",
        "--aws-rate-limits",
        "--log-format",
    ] {
        assert!(help.contains(flag), "{flag} missing from help");
    }
}

#[test]
fn a_bad_flag_is_one_line_and_exit_code_2() {
    let out = Command::new(causeway_bin())
        .args([
            "controller",
            "--cluster-name",
            "c",
            "--metrics-addr",
            "not-an-address",
        ])
        .env_remove("CAUSEWAY_CLUSTER_NAME")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--metrics-addr"), "{stderr}");
}

#[test]
fn missing_cluster_name_is_rejected() {
    let out = Command::new(causeway_bin())
        .arg("controller")
        .env_remove("CAUSEWAY_CLUSTER_NAME")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--cluster-name"), "{stderr}");
}

struct Replica {
    c: Controller,
    identity: String,
}

impl std::ops::Deref for Replica {
    type Target = Controller;
    fn deref(&self) -> &Controller {
        &self.c
    }
}

impl std::ops::DerefMut for Replica {
    fn deref_mut(&mut self) -> &mut Controller {
        &mut self.c
    }
}

fn start_controller(ctx: &TestCtx, lease: &str, identity: &str) -> Replica {
    let c = Controller::start(
        ctx,
        &format!("controller-{identity}"),
        lease,
        &[
            "--controllers",
            "iam",
            "--webhook-enabled",
            "false",
            "--leader-election-identity",
            identity,
            "--lease-duration",
            "4s",
            "--renew-deadline",
            "3s",
            "--retry-period",
            "500ms",
            "--log-format",
            "json",
        ],
    );
    Replica {
        c,
        identity: identity.to_string(),
    }
}

async fn ready(c: &Controller) -> bool {
    c.ready().await
}

async fn metrics(c: &Controller) -> String {
    c.metrics().await
}

/// The leader gauge, read as a sample line (the HELP text mentions the name too).
fn leads(metrics: &str) -> bool {
    metrics.lines().any(|l| l.trim() == "causeway_leader 1")
}

async fn holder(ctx: &TestCtx, lease: &str) -> Option<Lease> {
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.get_opt(lease).await.ok().flatten()
}

fn holder_identity(lease: &Lease) -> Option<String> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .clone()
        .filter(|h| !h.is_empty())
}

#[tokio::test]
async fn controller_becomes_ready_holds_the_lease_and_serves_metrics() {
    let ctx = TestCtx::new("ctl").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let lease = unique_name("lease");
    let c = start_controller(&ctx, &lease, "solo");
    wait_for("controller ready", Duration::from_secs(60), || async {
        ready(&c).await.then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    let l = holder(&ctx, &lease).await.expect("lease exists");
    assert_eq!(holder_identity(&l).as_deref(), Some("solo"));
    let m = metrics(&c).await;
    let line = m
        .lines()
        .find(|l| l.starts_with("causeway_aws_api_calls_total{") && l.contains("GetCallerIdentity"))
        .unwrap_or_else(|| panic!("no AWS call counter in metrics:\n{m}"));
    assert!(
        line.contains("service=\"sts\"") && line.contains("outcome=\"success\""),
        "{line}"
    );
    assert!(leads(&m), "{m}");
    assert!(matches!(
        http_get(&format!("http://127.0.0.1:{}/healthz", c.port)).await,
        Some((200, _))
    ));
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn exactly_one_of_two_leads_and_the_other_takes_over() {
    let ctx = TestCtx::new("ha").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let lease = unique_name("lease");
    let mut a = start_controller(&ctx, &lease, "replica-a");
    let mut b = start_controller(&ctx, &lease, "replica-b");
    wait_for("both replicas ready", Duration::from_secs(60), || async {
        (ready(&a).await && ready(&b).await).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- a\n{}\n--- b\n{}", a.proc.logs(), b.proc.logs()));

    let first = holder(&ctx, &lease)
        .await
        .and_then(|l| holder_identity(&l))
        .expect("held");
    let leaders: Vec<&str> = {
        let (ma, mb) = (metrics(&a).await, metrics(&b).await);
        [("replica-a", ma), ("replica-b", mb)]
            .into_iter()
            .filter(|(_, m)| leads(m))
            .map(|(n, _)| {
                if n == "replica-a" {
                    "replica-a"
                } else {
                    "replica-b"
                }
            })
            .collect()
    };
    assert_eq!(
        leaders,
        vec![first.as_str()],
        "exactly the lease holder leads"
    );

    let before = holder(&ctx, &lease).await.expect("lease");
    let transitions = before
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0);
    let (leader, follower) = if first == a.identity {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    // SIGKILL: the leader cannot release; the follower must wait for expiry.
    leader.proc.kill();
    let after = wait_for("follower takes over", Duration::from_secs(30), || async {
        let l = holder(&ctx, &lease).await?;
        (holder_identity(&l).as_deref() == Some(follower.identity.as_str())).then_some(l)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", follower.proc.logs()));
    let spec = after.spec.expect("spec");
    assert_eq!(spec.lease_transitions.unwrap_or(0), transitions + 1);
    // The takeover happened within one lease duration (plus a retry period)
    // of the dead leader's last renewal, judged by the Lease's own timestamps.
    let last_renew = before.spec.and_then(|s| s.renew_time).expect("renewed").0;
    let acquired = spec.acquire_time.expect("acquire time").0;
    let gap = acquired.duration_since(last_renew);
    assert!(
        gap.as_secs_f64() <= 4.0 + 2.2 * 0.5 + 1.0,
        "takeover {gap:?} after the last renewal, lease duration 4s"
    );
    wait_for(
        "new leader reports leading",
        Duration::from_secs(10),
        || async { leads(&metrics(follower).await).then_some(()) },
    )
    .await
    .expect("leader gauge");
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn sigterm_releases_the_lease_and_exits_cleanly() {
    let ctx = TestCtx::new("term").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let lease = unique_name("lease");
    let mut c = start_controller(&ctx, &lease, "graceful");
    wait_for("controller ready", Duration::from_secs(60), || async {
        ready(&c).await.then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.proc.logs()));
    c.proc.terminate();
    let status = wait_for("controller exits", Duration::from_secs(20), || {
        let s = c.proc.child.try_wait().ok().flatten();
        async move { s }
    })
    .await
    .expect("exit");
    assert!(status.success(), "exit status {status}\n{}", c.proc.logs());
    let l = holder(&ctx, &lease).await.expect("lease");
    assert_eq!(holder_identity(&l), None, "lease released on shutdown");
    ctx.cleanup().await.ok();
}

#[test]
fn zero_and_overflowing_durations_are_refused_with_exit_code_2() {
    for (flag, value, why) in [
        ("--alb-resync-interval", "0s", "is zero"),
        ("--targets-resync", "0ms", "is zero"),
        ("--dns-resync-interval", "0m", "is zero"),
        ("--lease-duration", "0s", "is zero"),
        ("--dns-debounce", "99999999999999999999ms", "too large"),
        ("--alb-resync-interval", "5124095576030432h", "too large"),
    ] {
        let out = Command::new(causeway_bin())
            .args(["controller", "--cluster-name", "c", flag, value])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(why),
            "{flag} {value}: {stderr}"
        );
    }
}

/// A reconciler that dies takes the process down: `/readyz` fails, and the process exits
/// non-zero (so Kubernetes restarts it and another replica takes the Lease) instead of
/// leading without it.
#[tokio::test]
async fn a_dead_reconciler_makes_the_process_unready_and_exit_non_zero() {
    let ctx = TestCtx::new("died").await.expect("ctx");
    crate::crds::install(&ctx).await;
    // Something for the IamRoleBinding reconciler to reconcile.
    ctx.apply(
        "apiVersion: causeway.dev/v1alpha1\nkind: IamRoleBinding\nmetadata:\n  name: doomed\nspec:\n  role: causeway-reader\n  serviceAccountName: doomed\n",
    )
    .await
    .expect("binding");
    let lease = unique_name("lease");
    let Controller { mut proc, port } = Controller::start_with_env(
        &ctx,
        "controller-died",
        &lease,
        &[
            "--controllers",
            "iam",
            "--webhook-enabled",
            "false",
            "--leader-election-identity",
            "doomed",
        ],
        &[("CAUSEWAY_FAULT_PANIC_RECONCILER", "iam-role-binding")],
    );
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let body = wait_for(
        "/readyz reports the dead reconciler",
        Duration::from_secs(60),
        || async {
            match http_get(&readyz).await {
                Some((503, body)) if body.contains("a reconciler died") => Some(body),
                _ => None,
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", proc.logs()));
    assert!(body.contains("a reconciler died"), "{body}");
    let status = wait_for("controller exits", Duration::from_secs(30), || {
        let s = proc.child.try_wait().ok().flatten();
        async move { s }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", proc.logs()));
    assert!(!status.success(), "exit status {status}\n{}", proc.logs());
    assert_eq!(status.code(), Some(1), "{}", proc.logs());
    let logs = proc.logs();
    assert!(
        logs.contains("the iam-role-binding reconciler panicked"),
        "{logs}"
    );
    // It let go of the Lease on the way out, so another replica takes over at once.
    let l = holder(&ctx, &lease).await.expect("lease");
    assert_eq!(holder_identity(&l), None, "lease released: {logs}");
    proc.kill();
    ctx.cleanup().await.ok();
}
