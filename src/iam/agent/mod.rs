//! `causeway agent`: the node agent that serves each pod its own IAM role's credentials
//! through the instance-metadata API (kube2iam compatible, without its holes).
//!
//! - [`pods`]: this node's pods by IP, IP reuse handled.
//! - [`resolve`]: pod + namespace + IamRoleBindings → role or a precise denial (pure).
//! - [`credentials`]: per-pod (or per-role) STS sessions, prefetched and refreshed.
//! - [`metadata`]: the IMDS-compatible HTTP server.
//! - [`iptables`]: the DNAT rule that sends pods' metadata traffic here.
//! - [`watch`]: the Kubernetes watches that feed the index and the cache.

pub mod credentials;
pub mod iptables;
pub mod metadata;
pub mod metrics;
pub mod pods;
pub mod resolve;
pub mod run;
pub mod settings;
pub mod sts;
pub mod upstream;
pub mod watch;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;

use crate::k8s::events::EventRecorder;
use credentials::{AssumeRequest, CredentialCache, session_name};
use metrics::AgentMetrics;
use pods::{Lookup, PodIndex};
use resolve::{BindingInfo, Denial, PodInfo, Policy, Resolved, Source};

pub use run::run;

/// Settings that shape identification and sessions.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node_name: String,
    pub node_ip: Option<IpAddr>,
    /// One session per role (shared by its pods) instead of one per pod.
    pub session_per_role: bool,
    /// The role hostNetwork pods (requests from the node's IP) get; none when unset.
    pub host_network_role: Option<String>,
    /// How long a request from an IP not yet known waits for the pod watch.
    pub pod_wait: Duration,
    /// How long a request waits for credentials being fetched.
    pub fetch_wait: Duration,
}

/// Who is asking and what they get.
#[derive(Debug, Clone)]
pub struct Identified {
    pub pod: Option<Arc<PodInfo>>,
    pub resolved: Resolved,
    pub key: AssumeRequest,
}

pub struct Agent {
    pub pods: Arc<PodIndex>,
    /// Namespace → its `allowed-roles` annotation.
    pub namespaces: RwLock<HashMap<String, Option<String>>>,
    /// Namespace → its IamRoleBindings.
    pub bindings: RwLock<HashMap<String, Vec<BindingInfo>>>,
    pub policy: Policy,
    pub config: AgentConfig,
    pub cache: CredentialCache,
    pub metrics: AgentMetrics,
    events: Option<EventRecorder>,
    /// (pod uid, reason) already reported, so a retrying SDK does not flood Events.
    reported: Mutex<HashSet<(String, &'static str)>>,
    /// Pod uid → the session it holds in the cache.
    assigned: Mutex<HashMap<String, AssumeRequest>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Agent {
    pub fn new(
        policy: Policy,
        config: AgentConfig,
        cache: CredentialCache,
        metrics: AgentMetrics,
        events: Option<EventRecorder>,
    ) -> Agent {
        Agent {
            pods: Arc::new(PodIndex::default()),
            namespaces: RwLock::default(),
            bindings: RwLock::default(),
            policy,
            config,
            cache,
            metrics,
            events,
            reported: Mutex::default(),
            assigned: Mutex::default(),
        }
    }

    /// Records namespace `name`'s `allowed-roles` annotation (`None`: it has none).
    pub fn set_allowed_roles(&self, name: &str, allowed: Option<String>) {
        self.namespaces
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), allowed);
    }

    pub fn resolve_pod(&self, pod: &PodInfo) -> Result<Resolved, Denial> {
        let allowed = self
            .namespaces
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&pod.namespace)
            .cloned()
            .flatten();
        let bindings = self
            .bindings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&pod.namespace)
            .cloned()
            .unwrap_or_default();
        resolve::resolve(pod, allowed.as_deref(), &bindings, &self.policy)
    }

    fn key_for(&self, pod: Option<&PodInfo>, resolved: &Resolved) -> AssumeRequest {
        let session = match pod {
            Some(pod) if !self.config.session_per_role => {
                session_name(&[&pod.namespace, &pod.name])
            }
            _ => session_name(&["causeway-agent", &self.config.node_name]),
        };
        AssumeRequest {
            role_arn: resolved.role_arn.clone(),
            session_name: session,
            external_id: resolved.external_id.clone(),
            duration_seconds: resolved.session_duration,
        }
    }

    /// The role for a request from `ip`, or why there is none.
    pub async fn identify(&self, ip: IpAddr) -> Result<Identified, Denial> {
        let from_node = self.config.node_ip == Some(ip);
        let lookup = if from_node {
            Lookup::Unknown
        } else {
            self.pods.lookup_wait(ip, self.config.pod_wait).await
        };
        match lookup {
            Lookup::Pod(pod) => {
                let resolved = self
                    .resolve_pod(&pod)
                    .inspect_err(|d| self.report(&pod, d))?;
                let key = self.key_for(Some(&pod), &resolved);
                Ok(Identified {
                    pod: Some(pod),
                    resolved,
                    key,
                })
            }
            Lookup::Conflict(pods) => {
                let denial = Denial::IpConflict {
                    ip: ip.to_string(),
                    pods: pods.iter().map(|p| p.key()).collect(),
                };
                tracing::warn!(%ip, pods = ?pods.iter().map(|p| p.key()).collect::<Vec<_>>(), "two live pods claim one IP; denying");
                for pod in &pods {
                    self.report(pod, &denial);
                }
                Err(denial)
            }
            Lookup::Unknown if from_node || self.is_host_network_ip(ip) => {
                let Some(role) = &self.config.host_network_role else {
                    return Err(Denial::HostNetwork);
                };
                let (role_arn, role_name) = resolve::role_arn(role, &self.policy.base_arn)
                    .map_err(|reason| Denial::InvalidRole {
                        source_name: "--host-network-role".into(),
                        reason,
                    })?;
                let resolved = Resolved {
                    role_arn,
                    role_name,
                    external_id: None,
                    session_duration: None,
                    source: Source::Default,
                };
                let key = self.key_for(None, &resolved);
                Ok(Identified {
                    pod: None,
                    resolved,
                    key,
                })
            }
            Lookup::Unknown => Err(Denial::UnknownPod(ip.to_string())),
        }
    }

    fn is_host_network_ip(&self, ip: IpAddr) -> bool {
        self.pods
            .all()
            .iter()
            .any(|p| p.host_network && p.is_live() && p.ips.contains(&ip))
    }

    /// A Warning Event on the pod, once per pod and reason, when its configuration is the cause.
    pub fn report(&self, pod: &PodInfo, denial: &Denial) {
        let Some(reason) = denial.event_reason() else {
            return;
        };
        if !lock(&self.reported).insert((pod.uid.clone(), reason)) {
            return;
        }
        tracing::warn!(pod = %pod.key(), reason, denial = %denial, "pod gets no credentials");
        self.event(pod, reason, denial.to_string());
    }

    pub fn event(&self, pod: &PodInfo, reason: &'static str, note: String) {
        let Some(events) = self.events.clone() else {
            return;
        };
        let obj_ref = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(pod.namespace.clone()),
            name: Some(pod.name.clone()),
            uid: Some(pod.uid.clone()),
            ..ObjectReference::default()
        };
        tokio::spawn(async move { events.warn(&obj_ref, reason, note).await });
    }

    /// Re-resolves every pod on the node and brings the cache in line: prefetch for pods
    /// that gained a role (even before they have an IP), evict for pods that lost one.
    pub fn sync(&self) {
        let pods = self.pods.all();
        self.metrics.pods.set(pods.len() as i64);
        let mut desired: HashMap<String, AssumeRequest> = HashMap::new();
        for pod in &pods {
            if !pod.is_live() || pod.host_network {
                continue;
            }
            match self.resolve_pod(pod) {
                Ok(resolved) => {
                    desired.insert(pod.uid.clone(), self.key_for(Some(pod), &resolved));
                }
                Err(denial) => self.report(pod, &denial),
            }
        }
        let mut assigned = lock(&self.assigned);
        assigned.retain(|uid, key| {
            let keep = desired.get(uid) == Some(key);
            if !keep {
                self.cache.release(key, uid);
            }
            keep
        });
        for (uid, key) in desired {
            if let std::collections::hash_map::Entry::Vacant(slot) = assigned.entry(uid) {
                self.cache.ensure(&key, slot.key());
                slot.insert(key);
            }
        }
        let live: HashSet<&str> = pods.iter().map(|p| p.uid.as_str()).collect();
        lock(&self.reported).retain(|(uid, _)| live.contains(uid.as_str()));
    }
}
