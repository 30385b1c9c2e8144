//! `causeway controller`: serves health and metrics, checks AWS credentials,
//! keeps caches of the resources it reconciles, elects a leader, and runs the
//! reconcilers only while it leads.
//!
//! Readiness means: caches synced and, with leader election on, leadership
//! known (leading or following). A replica that loses leadership after
//! leading exits, so it restarts clean instead of racing the new leader.

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::aws::AwsClients;
use crate::cli::ControllerArgs;
use crate::crd::TargetGroupBinding;
use crate::k8s::leader::{LeaderElector, LeaderState, LeaseConfig};
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
}

/// Everything a reconciler needs, shared by reference.
pub struct Context {
    pub client: Client,
    pub aws: AwsClients,
    pub metrics: Arc<Metrics>,
    pub cluster_name: String,
    pub caches: Caches,
    /// The reconcilers this process runs (`--controllers`).
    pub reconcilers: Vec<crate::cli::Reconciler>,
}

/// Reflector stores of the kinds the controller reconciles. They are filled
/// on every replica, leader or not, so a new leader starts with warm caches.
#[derive(Clone)]
pub struct Caches {
    pub target_group_bindings: Store<TargetGroupBinding>,
}

/// Starts a reflector for `K` across all namespaces. Watch errors are logged
/// and retried with backoff; `managedFields` are dropped to keep memory small.
fn reflect<K>(client: &Client, stop: watch::Receiver<bool>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let api: Api<K> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|obj| {
            obj.meta_mut().managed_fields = None;
        })
        .reflect(writer)
        .applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut stop = stop;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                item = stream.next() => match item {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => warn!(kind, error = %e, "watch failed; retrying"),
                    None => break,
                }
            }
        }
    });
    reader
}

impl Caches {
    fn start(client: &Client, stop: &watch::Receiver<bool>) -> Self {
        Self {
            target_group_bindings: reflect(client, stop.clone()),
        }
    }

    async fn wait_synced(&self) {
        let _ = self.target_group_bindings.wait_until_ready().await;
    }
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
    let server_task = {
        let mut stop = stop_rx.clone();
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

    let dns_settings = if args.controllers.contains(&crate::cli::Reconciler::Dns) {
        Some(args.dns.settings().map_err(ControllerError::Dns)?)
    } else {
        None
    };

    let caches = Caches::start(&client, &stop_rx);
    let ctx = Arc::new(Context {
        client: client.clone(),
        aws,
        metrics: metrics.clone(),
        cluster_name: args.cluster_name.clone(),
        caches,
        reconcilers: args.controllers.clone(),
    });

    let targets = crate::cli::TargetsArgs {
        vpc_id: args.vpc_id.clone(),
        ..args.targets.clone()
    };
    // The readiness-gate webhook serves on every replica, leader or not, and belongs to the
    // TargetGroupBinding reconciler.
    if args.targets.webhook_enabled && args.controllers.contains(&crate::cli::Reconciler::Targets) {
        let (client, targets, bindings, stop) = (
            client.clone(),
            targets.clone(),
            ctx.caches.target_group_bindings.clone(),
            stop_rx.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = crate::targets::webhook::start(client, targets, bindings, stop).await {
                error!(error = %e, "pod readiness-gate webhook not started (it fails open)");
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
    let mut reconcilers: Option<tokio::task::JoinHandle<()>> = None;
    let result = loop {
        let state = leader_rx.borrow_and_update().clone();
        match state {
            LeaderState::Leading if reconcilers.is_none() => {
                info!("leading: starting reconcilers");
                reconcilers = Some(tokio::spawn(run_reconcilers(
                    ctx.clone(),
                    targets.clone(),
                    (args.controllers.contains(&crate::cli::Reconciler::Alb))
                        .then(|| args.alb.settings(args.vpc_id.clone())),
                    stop_rx.clone(),
                    dns_settings.clone(),
                )));
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
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    let _ = elector_stop_tx.send(true);
    if let Some(task) = elector_task {
        // The elector releases the Lease on shutdown so a successor takes over at once.
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    info!("controller stopped");
    result
}

/// Runs every reconciler until `stop` flips.
async fn run_reconcilers(
    ctx: Arc<Context>,
    targets: crate::cli::TargetsArgs,
    alb: Option<crate::alb::AlbSettings>,
    mut stop: watch::Receiver<bool>,
    dns: Option<crate::dns::DnsSettings>,
) {
    use crate::cli::Reconciler;
    let enabled = |r: Reconciler| ctx.reconcilers.contains(&r);
    let mut tasks = Vec::new();
    if enabled(Reconciler::Iam) {
        tasks.push(tokio::spawn(crate::iam::binding_status::run(
            ctx.clone(),
            stop.clone(),
        )));
    }
    if enabled(Reconciler::Targets) {
        tasks.push(tokio::spawn(crate::targets::run(
            ctx.clone(),
            targets,
            stop.clone(),
        )));
    }
    // Present exactly when `alb` / `dns` are among --controllers.
    if let Some(settings) = alb {
        tasks.push(tokio::spawn(crate::alb::run(
            ctx.clone(),
            settings,
            stop.clone(),
        )));
    }
    if let Some(settings) = dns {
        tasks.push(tokio::spawn(crate::dns::controller::run(
            ctx.clone(),
            settings,
            stop.clone(),
        )));
    }
    let _ = stop.wait_for(|s| *s).await;
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
}
