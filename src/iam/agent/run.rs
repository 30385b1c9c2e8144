//! Wiring for `causeway agent`: telemetry, iptables, watches, STS, and the metadata server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use super::container::{self, ContainerServer};
use super::credentials::{CacheSettings, CredentialCache, in_flight_bound};
use super::iptables::{
    Iptables, METADATA_IP, METADATA_IPV6, OUTPUT, POD_IDENTITY_IP, POD_IDENTITY_IPV6, PREROUTING,
    Rule,
};
use super::metadata::{self, MetadataServer, ServerConfig};
use super::metrics::AgentMetrics;
use super::resolve::Policy;
use super::settings::{AgentSettings, IptablesSettings};
use super::sts::{StsAdapter, discover_base_arn};
use super::token::{KubeReviewer, TokenCache, TokenCacheSettings};
use super::upstream::Upstream;
use super::{Agent, AgentConfig};
use crate::aws::AwsClients;
use crate::k8s::events::EventRecorder;
use crate::telemetry::{self, Metrics, Readiness};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error("iptables: {0}")]
    Iptables(#[from] super::iptables::IptablesError),
    #[error("kubernetes client: {0}")]
    Kube(String),
    #[error("aws clients: {0}")]
    Aws(String),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("health and metrics server: {0}")]
    Telemetry(String),
    #[error("metadata server: {0}")]
    Serve(#[source] std::io::Error),
    #[error("container-credentials server: {0}")]
    ServeCredentials(#[source] std::io::Error),
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, u16), AgentError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Bind { addr, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| AgentError::Bind { addr, source })?
        .port();
    Ok((listener, port))
}

/// Removes our DNAT rules (IPv4, and IPv6 where ip6tables runs); the documented way to
/// uninstall the agent from a node.
pub fn cleanup_iptables(settings: &IptablesSettings) -> Result<usize, AgentError> {
    let v4 = Iptables {
        bin: settings.bin.clone(),
    }
    .cleanup(&settings.interface)?;
    let v6 = match (Iptables {
        bin: settings.bin6.clone(),
    })
    .cleanup(&settings.interface)
    {
        Ok(n) => n,
        // A node without ip6tables (or IPv6) has no IPv6 rules of ours.
        Err(e) => {
            tracing::debug!(error = %e, "no IPv6 rules to remove");
            0
        }
    };
    Ok(v4 + v6)
}

fn iptables_for(settings: &IptablesSettings, node_ip: std::net::IpAddr) -> Iptables {
    Iptables {
        bin: if node_ip.is_ipv6() {
            settings.bin6.clone()
        } else {
            settings.bin.clone()
        },
    }
}

/// The DNAT rules for one address family: the metadata address, the Pod Identity address
/// (when the token path is on) from pods and, with `--iptables-host-network`, from the node.
fn dnat_rules(
    args: &AgentSettings,
    node_ip: std::net::IpAddr,
    metadata_port: u16,
    credentials_port: Option<u16>,
) -> Vec<Rule> {
    let (metadata, pod_identity) = if node_ip.is_ipv6() {
        (METADATA_IPV6, POD_IDENTITY_IPV6)
    } else {
        (METADATA_IP, POD_IDENTITY_IP)
    };
    let interface = args.iptables.interface.clone();
    let mut rules = vec![Rule {
        chain: PREROUTING,
        destination: metadata,
        interface: interface.clone(),
        node_ip,
        port: metadata_port,
    }];
    if let Some(port) = credentials_port {
        let rule = Rule {
            chain: PREROUTING,
            destination: pod_identity,
            interface,
            node_ip,
            port,
        };
        if args.iptables.host_network {
            rules.push(Rule {
                chain: OUTPUT,
                ..rule.clone()
            });
        }
        rules.push(rule);
    }
    rules
}

pub async fn run(args: AgentSettings) -> Result<(), AgentError> {
    let node_name = args
        .node_name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AgentError::Config("--node-name (CAUSEWAY_NODE_NAME) is required".into()))?;
    let metrics = Metrics::new();
    let agent_metrics = AgentMetrics::register(&metrics);
    let readiness = Readiness::new(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            telemetry::shutdown_signal().await;
            info!("shutdown signal received");
            let _ = stop_tx.send(true);
        });
    }
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let telemetry_server = telemetry::TelemetryServer::bind(args.metrics_addr)
        .await
        .map_err(|e| AgentError::Telemetry(e.to_string()))?;
    let telemetry_task = tokio::spawn(telemetry_server.serve(
        metrics.clone(),
        readiness.clone(),
        stopped(stop_rx.clone()),
    ));

    let (listener, port) = bind(args.metadata_addr).await?;
    let credentials_listener = match args.credentials_addr {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };

    if args.iptables.enabled {
        let node_ip = args.node_ip.ok_or_else(|| {
            AgentError::Config("--iptables needs --node-ip (CAUSEWAY_NODE_IP)".into())
        })?;
        let credentials_port = credentials_listener.as_ref().map(|(_, port)| *port);
        // One family per node address: iptables for IPv4, ip6tables for IPv6.
        let mut families = vec![node_ip];
        families.extend(
            args.node_ipv6
                .filter(|v6| node_ip.is_ipv4() && v6.is_ipv6()),
        );
        for node_ip in families {
            let rules = dnat_rules(&args, node_ip, port, credentials_port);
            let changed =
                iptables_for(&args.iptables, node_ip).ensure(&args.iptables.interface, &rules)?;
            for rule in &rules {
                info!(chain = rule.chain, interface = %rule.interface, intercepted = rule.destination, destination = %SocketAddr::new(node_ip, rule.port), changed, "DNAT rule in place");
            }
        }
    }

    let client = crate::k8s::client(args.kubeconfig.as_deref())
        .await
        .map_err(|e| AgentError::Kube(e.to_string()))?;
    let aws = AwsClients::new(&args.aws, metrics.clone())
        .await
        .map_err(|e| AgentError::Aws(e.to_string()))?;
    let base_arn = match args.base_role_arn.clone() {
        Some(base) => base,
        None => {
            let mut attempt = 0;
            loop {
                match discover_base_arn(&aws.sts).await {
                    Ok(base) => break base,
                    Err(e) => {
                        attempt += 1;
                        warn!(error = %e, attempt, "discovering the account for role names failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(2u64.pow(attempt.min(5)))) => {}
                            _ = stopped(stop_rx.clone()) => return Ok(()),
                        }
                    }
                }
            }
        }
    };
    info!(base_arn, node = %node_name, "resolving bare role names against this base ARN");

    let max_in_flight = in_flight_bound(
        args.sts_max_in_flight,
        args.aws.rate_limits.sts.per_second,
        args.aws.attempt_timeout,
    );
    if max_in_flight < args.sts_max_in_flight {
        info!(
            requested = args.sts_max_in_flight,
            max_in_flight, "AssumeRole calls in flight lowered to what the STS rate limit refills"
        );
    }
    let settings = CacheSettings {
        session_duration: args.session_duration,
        refresh_ahead: args.refresh_ahead,
        max_in_flight,
        ..CacheSettings::default()
    };
    let cache = CredentialCache::new(
        Arc::new(StsAdapter {
            sts: aws.sts.clone(),
        }),
        settings,
        agent_metrics.clone(),
    );
    let events = EventRecorder::new(
        client.clone(),
        EventRecorder::reporter(Some(format!("agent-{node_name}"))),
    );
    let agent = Arc::new(Agent::new(
        Policy {
            base_arn,
            enforce_allowed_roles: args.namespace_restrictions,
        },
        AgentConfig {
            node_name,
            node_ip: args.node_ip,
            session_per_role: args.session_per_role,
            host_network_role: args.host_network_role.clone(),
            pod_wait: args.pod_wait,
            fetch_wait: args.fetch_wait,
            session_tags: args.session_tags,
            cluster_name: args.cluster_name.clone(),
            cluster_arn: args.cluster_arn.clone(),
        },
        cache,
        agent_metrics,
        Some(events),
    ));

    let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
    let credentials_server = credentials_listener.map(|(listener, port)| {
        let tokens = TokenCache::new(
            Arc::new(KubeReviewer {
                client: client.clone(),
            }),
            TokenCacheSettings {
                audience: args.token_audience.clone(),
                ..TokenCacheSettings::default()
            },
            agent.metrics.clone(),
        );
        (
            listener,
            port,
            Arc::new(ContainerServer::new(agent.clone(), tokens)),
        )
    });
    let watches = tokio::spawn(super::watch::run(
        client,
        agent.clone(),
        stop_rx.clone(),
        synced_tx,
    ));
    {
        let readiness = readiness.clone();
        tokio::spawn(async move {
            if synced_rx.await.is_ok() {
                info!("pods, namespaces, IamRoleBindings and ServiceAccounts synced");
                readiness.mark_caches_synced();
            }
        });
    }

    tokio::spawn(return_memory_after_releases(agent.clone(), stop_rx.clone()));

    let mut proxy_paths: Vec<String> = metadata::DEFAULT_PROXY_PATHS
        .iter()
        .map(|p| p.to_string())
        .collect();
    proxy_paths.extend(args.metadata_allow_paths.iter().cloned());
    let server = Arc::new(MetadataServer::new(
        agent,
        ServerConfig {
            require_token: args.require_imdsv2,
            proxy_paths,
        },
        Upstream::new(args.metadata_upstream.clone()),
    ));
    let credentials_task = credentials_server.map(|(listener, port, server)| {
        info!(addr = ?args.credentials_addr, port, audience = %args.token_audience, "serving the container-credentials endpoint");
        let stop_rx = stop_rx.clone();
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            let served = axum::serve(
                listener,
                container::router(server).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stopped(stop_rx))
            .await
            .map_err(AgentError::ServeCredentials);
            // One server down takes the agent down.
            let _ = stop_tx.send(true);
            served
        })
    });
    info!(addr = %args.metadata_addr, port, "serving the metadata API");
    let mut served = axum::serve(
        listener,
        metadata::router(server).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(stop_rx.clone()))
    .await
    .map_err(AgentError::Serve);
    let _ = stop_tx.send(true);
    if let Some(task) = credentials_task
        && let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(5), task).await
        && served.is_ok()
    {
        served = Err(e);
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), watches).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), telemetry_task).await;
    // The DNAT rule stays: pods must fail closed while no agent runs.
    info!("agent stopped; the DNAT rule stays in place (remove it with --cleanup-iptables)");
    served
}

/// How often the agent looks whether sessions were dropped since it last looked.
const TRIM_EVERY: Duration = Duration::from_secs(30);

/// After pods leave (their sessions dropped), hands the freed heap back to the kernel, so
/// RSS follows the node's pods down instead of staying at the high-water mark.
async fn return_memory_after_releases(agent: Arc<Agent>, mut stop: watch::Receiver<bool>) {
    let mut last = agent.cache.len();
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = agent.cache.len();
        if now < last {
            crate::telemetry::return_freed_memory();
            tracing::debug!(
                sessions = now,
                dropped = last - now,
                "returned freed memory after sessions were dropped"
            );
        }
        last = now;
    }
}
