//! `causeway controller`: serves health and metrics, checks AWS credentials,
//! keeps caches of the resources it reconciles, elects a leader, and runs the
//! reconcilers only while it leads.
//!
//! Readiness means: caches synced and, with leader election on, leadership
//! known (leading or following). A replica that loses leadership after
//! leading exits, so it restarts clean instead of racing the new leader.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::aws::AwsClients;
use crate::cli::{ControllerArgs, Reconciler};
use crate::context::{Caches, Context};
use crate::k8s::leader::{LeaderElector, LeaderState, LeaseConfig};
use crate::k8s::runtime::{Died, Supervisor};
use crate::telemetry::{self, Metrics, Readiness};

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("kubernetes client: {0}")]
    Kube(String),
    #[error("aws clients: {0}")]
    Aws(String),
    #[error("health and metrics server: {0}")]
    Server(String),
    #[error("DNS settings: {0}")]
    Dns(String),
    #[error("lost leadership of lease {0}; exiting so a fresh replica can take over cleanly")]
    LostLeadership(String),
    #[error("{0}; exiting so the pod restarts and another replica takes over")]
    ReconcilerDied(#[source] Died),
}

/// How long a process whose reconciler died keeps serving `/readyz` and `/metrics`.
const FAILED_LINGER: Duration = Duration::from_secs(2);

/// The settings of every reconciler this process runs (`--controllers`): `None` is off.
#[derive(Clone)]
struct Enabled {
    alb: Option<crate::alb::AlbSettings>,
    nlb: Option<crate::nlb::NlbSettings>,
    gateway: Option<crate::gateway::GatewaySettings>,
    targets: Option<crate::targets::settings::TargetsSettings>,
    dns: Option<crate::dns::DnsSettings>,
    iam: bool,
}

fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "causeway".to_string());
    format!("{host}_{:08x}", rand::random::<u32>())
}

pub async fn run(args: ControllerArgs) -> Result<(), ControllerError> {
    let metrics = Metrics::new();
    let readiness = Readiness::new(args.leader_elect);
    let (stop_tx, stop_rx) = watch::channel(false);
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            telemetry::shutdown_signal().await;
            info!("shutdown signal received");
            let _ = stop_tx.send(true);
        });
    }

    let server = telemetry::TelemetryServer::bind(args.metrics_addr)
        .await
        .map_err(|e| ControllerError::Server(e.to_string()))?;
    info!(addr = %server.local_addr(), "serving /metrics, /healthz and /readyz");
    // The server stops last, after the reconcilers and the elector.
    let (server_stop_tx, server_stop_rx) = watch::channel(false);
    let server_task = {
        let mut stop = server_stop_rx;
        tokio::spawn(
            server.serve(metrics.clone(), readiness.clone(), async move {
                let _ = stop.wait_for(|s| *s).await;
            }),
        )
    };

    let client = crate::k8s::client(args.kube.kubeconfig.as_deref())
        .await
        .map_err(|e| ControllerError::Kube(e.to_string()))?;
    let aws = AwsClients::new(&args.aws.settings(), metrics.clone())
        .await
        .map_err(|e| ControllerError::Aws(e.to_string()))?;
    match crate::aws::caller_identity(&aws).await {
        Ok(account) => info!(account, "AWS credentials verified"),
        Err(e) => {
            warn!(error = %e, "could not verify AWS credentials; AWS calls will keep retrying")
        }
    }

    let on = |r: Reconciler| args.controllers.contains(&r);
    let enabled = Enabled {
        alb: on(Reconciler::Alb).then(|| args.alb.settings(args.vpc_id.clone())),
        nlb: on(Reconciler::Nlb).then(|| args.nlb.settings(args.alb.settings(args.vpc_id.clone()))),
        gateway: on(Reconciler::Gateway).then(|| {
            args.gateway
                .settings(args.alb.settings(args.vpc_id.clone()))
        }),
        targets: on(Reconciler::Targets).then(|| args.targets.settings(args.vpc_id.clone())),
        dns: if on(Reconciler::Dns) {
            Some(args.dns.settings().map_err(ControllerError::Dns)?)
        } else {
            None
        },
        iam: on(Reconciler::Iam),
    };

    let caches = Caches::start(&client, &stop_rx);
    let ctx = Arc::new(Context::new(
        client.clone(),
        aws,
        metrics.clone(),
        args.cluster_name.clone(),
        caches,
    ));

    // The readiness-gate webhook serves on every replica, leader or not, and belongs to the
    // TargetGroupBinding reconciler.
    // The token-path injector rides on the same server, with the iam reconciler.
    let readiness_gates = args.targets.webhook_enabled && enabled.targets.is_some();
    let pod_identity = (args.pod_identity_webhook && enabled.iam).then(|| {
        crate::iam::pod_identity::InjectSettings {
            audience: args.pod_identity_audience.clone(),
            expiration_seconds: i64::try_from(args.pod_identity_token_expiration.as_secs())
                .unwrap_or(86_400),
            full_uri: args.pod_identity_uri.clone(),
        }
    });
    if readiness_gates || pod_identity.is_some() {
        let iam_bindings = pod_identity.as_ref().map(|_| {
            crate::k8s::runtime::watch::reflect(
                kube::Api::<crate::crd::IamRoleBinding>::all(client.clone()),
                kube::runtime::watcher::Config::default(),
                crate::k8s::runtime::watch::keep_all,
                |_| {},
                stop_rx.clone(),
            )
        });
        let (client, webhook, bindings, stop) = (
            client.clone(),
            crate::targets::settings::WebhookSettings {
                service_class: args
                    .nlb
                    .set_class_on_new_services
                    .then(|| args.nlb.load_balancer_class.clone()),
                readiness_gates,
                pod_identity,
                ..args.targets.webhook_settings()
            },
            ctx.caches.target_group_bindings.clone(),
            stop_rx.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) =
                crate::targets::webhook::start(client, webhook, bindings, iam_bindings, stop).await
            {
                error!(error = %e, "mutating webhook not started (it fails open)");
            }
        });
    }

    let (leader_tx, mut leader_rx) = watch::channel(LeaderState::Unknown);
    let (elector_stop_tx, elector_stop_rx) = watch::channel(false);
    let elector_task = if args.leader_elect {
        let identity = args
            .leader_election_identity
            .clone()
            .unwrap_or_else(default_identity);
        info!(identity, lease = %args.leader_election_id, namespace = %args.leader_election_namespace, "starting leader election");
        let elector = LeaderElector::new(
            client.clone(),
            LeaseConfig {
                namespace: args.leader_election_namespace.clone(),
                name: args.leader_election_id.clone(),
                identity,
                lease_duration: args.lease_duration,
                renew_deadline: args.renew_deadline,
                retry_period: args.retry_period,
            },
        )
        .with_metrics(metrics.clone());
        // The elector stops only after the reconcilers have drained, so a
        // successor never runs while this replica still acts.
        let mut stop = elector_stop_rx;
        Some(tokio::spawn(elector.run(leader_tx, async move {
            let _ = stop.wait_for(|s| *s).await;
        })))
    } else {
        let _ = leader_tx.send(LeaderState::Leading);
        metrics.set_leader(true);
        None
    };

    // Readiness: caches first, then leadership known.
    {
        let ctx = ctx.clone();
        let readiness = readiness.clone();
        let mut leader_rx = leader_rx.clone();
        tokio::spawn(async move {
            ctx.caches.wait_synced().await;
            info!("caches synced");
            readiness.mark_caches_synced();
            let _ = leader_rx
                .wait_for(|s| !matches!(s, LeaderState::Unknown))
                .await;
            readiness.set_leadership_known();
        });
    }

    let mut stop = stop_rx.clone();
    let mut reconcilers: Option<tokio::task::JoinHandle<Result<(), Died>>> = None;
    let result = loop {
        let state = leader_rx.borrow_and_update().clone();
        match state {
            LeaderState::Leading if reconcilers.is_none() => {
                info!("leading: starting reconcilers");
                reconcilers = Some(tokio::spawn(
                    reconcilers_for(&ctx, &enabled, &stop_rx)
                        .supervise(stop_rx.clone(), Duration::from_secs(10)),
                ));
            }
            LeaderState::Following { .. } | LeaderState::Unknown if reconcilers.is_some() => {
                error!("lost leadership while leading");
                break Err(ControllerError::LostLeadership(
                    args.leader_election_id.clone(),
                ));
            }
            LeaderState::Following { ref holder } => {
                info!(holder = holder.as_deref().unwrap_or("<none>"), "following")
            }
            _ => {}
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break Ok(()),
            ended = async {
                match reconcilers.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            } => {
                reconcilers = None;
                match ended {
                    Ok(Err(died)) => {
                        readiness.mark_failed();
                        break Err(ControllerError::ReconcilerDied(died));
                    }
                    Ok(Ok(())) => break Ok(()),
                    Err(join) => {
                        readiness.mark_failed();
                        break Err(ControllerError::ReconcilerDied(Died {
                            name: "supervisor",
                            how: join.to_string(),
                        }));
                    }
                }
            }
            changed = leader_rx.changed() => {
                if changed.is_err() {
                    // The elector ended without a shutdown: treat as lost leadership.
                    if reconcilers.is_some() {
                        break Err(ControllerError::LostLeadership(args.leader_election_id.clone()));
                    }
                    break Ok(());
                }
            }
        }
    };

    let _ = stop_tx.send(true);
    if let Some(task) = reconcilers {
        let _ = tokio::time::timeout(Duration::from_secs(12), task).await;
    }
    let _ = elector_stop_tx.send(true);
    if let Some(task) = elector_task {
        // The elector releases the Lease on shutdown so a successor takes over at once.
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    if matches!(result, Err(ControllerError::ReconcilerDied(_))) {
        // Keep answering /readyz (503) and /metrics for a moment, so probes and the last
        // scrape see why the process is going.
        tokio::time::sleep(FAILED_LINGER).await;
    }
    let _ = server_stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    info!("controller stopped");
    result
}

/// The reconcilers of one leadership term, each under the supervisor. This is the one
/// place a new controller plugs in: its settings in [`Enabled`], its `run` here.
fn reconcilers_for(
    ctx: &Arc<Context>,
    enabled: &Enabled,
    stop: &watch::Receiver<bool>,
) -> Supervisor {
    let mut s = Supervisor::new();
    if enabled.iam {
        s.spawn(
            crate::iam::binding_status::CONTROLLER,
            crate::iam::binding_status::run(ctx.clone(), stop.clone()),
        );
    }
    if let Some(settings) = enabled.targets.clone() {
        s.spawn(
            crate::targets::controller::CONTROLLER,
            crate::targets::run(ctx.clone(), settings, stop.clone()),
        );
    }
    if let Some(settings) = enabled.alb.clone() {
        s.spawn("alb", crate::alb::run(ctx.clone(), settings, stop.clone()));
    }
    if let Some(settings) = enabled.nlb.clone() {
        s.spawn("nlb", crate::nlb::run(ctx.clone(), settings, stop.clone()));
    }
    if let Some(settings) = enabled.gateway.clone() {
        s.spawn(
            crate::gateway::controller::CONTROLLER,
            crate::gateway::run(ctx.clone(), settings, stop.clone()),
        );
    }
    if let Some(settings) = enabled.dns.clone() {
        s.spawn(
            crate::dns::controller::CONTROLLER,
            crate::dns::controller::run(ctx.clone(), settings, stop.clone()),
        );
    }
    info!(reconcilers = ?s.names(), "reconcilers started");
    s
}
