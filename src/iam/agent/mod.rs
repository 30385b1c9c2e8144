//! `causeway agent`: the node agent that serves each pod its own IAM role's credentials
//! through the instance-metadata API (kube2iam compatible, without its holes).
//!
//! - [`pods`]: this node's pods by IP, IP reuse handled.
//! - [`resolve`]: pod + namespace + IamRoleBindings → role or a precise denial (pure).
//! - [`credentials`]: per-pod (or per-role) STS sessions, prefetched and refreshed.
//! - [`metadata`]: the IMDS-compatible HTTP server.
//! - [`token`] and [`container`]: the token path, EKS Pod Identity's container-credentials
//!   endpoint, with identity from a TokenReview of the pod's projected token.
//! - [`iptables`]: the DNAT rule that sends pods' metadata traffic here.
//! - [`watch`]: the Kubernetes watches that feed the index and the cache.

pub mod container;
pub mod credentials;
pub mod iptables;
pub mod metadata;
pub mod metrics;
pub mod pods;
pub mod resolve;
pub mod run;
pub mod settings;
pub mod sts;
pub mod token;
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
use token::TokenIdentity;

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
    /// Token-path sessions carry EKS Pod Identity's session tags (the role's trust policy
    /// must allow `sts:TagSession`).
    pub session_tags: bool,
    /// The `eks-cluster-name` and `eks-cluster-arn` session tags; left out when unset.
    pub cluster_name: Option<String>,
    pub cluster_arn: Option<String>,
}

impl AgentConfig {
    /// Settings for a node and nothing else: per-pod sessions, no hostNetwork role,
    /// session tags on.
    pub fn for_node(node_name: &str, node_ip: Option<IpAddr>) -> AgentConfig {
        AgentConfig {
            node_name: node_name.to_string(),
            node_ip,
            session_per_role: false,
            host_network_role: None,
            pod_wait: Duration::from_millis(800),
            fetch_wait: Duration::from_secs(5),
            session_tags: true,
            cluster_name: None,
            cluster_arn: None,
        }
    }
}

/// The session tags EKS Pod Identity sets, in its names (tag values allow the characters
/// of Kubernetes names and ARNs).
pub const SESSION_TAG_CLUSTER_ARN: &str = "eks-cluster-arn";
pub const SESSION_TAG_CLUSTER_NAME: &str = "eks-cluster-name";
pub const SESSION_TAG_NAMESPACE: &str = "kubernetes-namespace";
pub const SESSION_TAG_SERVICE_ACCOUNT: &str = "kubernetes-service-account";
pub const SESSION_TAG_POD_NAME: &str = "kubernetes-pod-name";
pub const SESSION_TAG_POD_UID: &str = "kubernetes-pod-uid";

/// Pure: the session tags of `pod`'s token-path session.
pub fn session_tags(config: &AgentConfig, pod: &PodInfo) -> Vec<(String, String)> {
    let mut tags = Vec::with_capacity(6);
    if let Some(arn) = config.cluster_arn.as_deref().filter(|a| !a.is_empty()) {
        tags.push((SESSION_TAG_CLUSTER_ARN.to_string(), arn.to_string()));
    }
    if let Some(name) = config.cluster_name.as_deref().filter(|n| !n.is_empty()) {
        tags.push((SESSION_TAG_CLUSTER_NAME.to_string(), name.to_string()));
    }
    tags.push((SESSION_TAG_NAMESPACE.to_string(), pod.namespace.clone()));
    tags.push((
        SESSION_TAG_SERVICE_ACCOUNT.to_string(),
        pod.service_account.clone(),
    ));
    tags.push((SESSION_TAG_POD_NAME.to_string(), pod.name.clone()));
    tags.push((SESSION_TAG_POD_UID.to_string(), pod.uid.clone()));
    tags
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
    /// (namespace, name) → the ServiceAccount's IRSA role annotation (only annotated ones).
    pub service_accounts: RwLock<HashMap<(String, String), String>>,
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
            service_accounts: RwLock::default(),
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

    /// The namespace's `allowed-roles` and IamRoleBindings, as resolution takes them.
    fn namespace_inputs(&self, namespace: &str) -> (Option<String>, Vec<BindingInfo>) {
        let allowed = self
            .namespaces
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(namespace)
            .cloned()
            .flatten();
        let bindings = self
            .bindings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(namespace)
            .cloned()
            .unwrap_or_default();
        (allowed, bindings)
    }

    pub fn resolve_pod(&self, pod: &PodInfo) -> Result<Resolved, Denial> {
        let (allowed, bindings) = self.namespace_inputs(&pod.namespace);
        resolve::resolve(pod, allowed.as_deref(), &bindings, &self.policy)
    }

    /// Records ServiceAccount `namespace/name`'s IRSA role annotation (`None`: it has none);
    /// whether that changed what the agent knew.
    pub fn set_service_account_role(
        &self,
        namespace: &str,
        name: &str,
        role: Option<String>,
    ) -> bool {
        let mut all = self
            .service_accounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (namespace.to_string(), name.to_string());
        match role {
            Some(role) => all.insert(key, role.clone()).as_ref() != Some(&role),
            None => all.remove(&key).is_some(),
        }
    }

    /// The role of a pod identified by its own token: as [`Agent::resolve_pod`], then its
    /// ServiceAccount's IRSA annotation.
    pub fn resolve_token_pod(&self, pod: &PodInfo) -> Result<Resolved, Denial> {
        let (allowed, bindings) = self.namespace_inputs(&pod.namespace);
        let sa_role = self
            .service_accounts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(pod.namespace.clone(), pod.service_account.clone()))
            .cloned();
        resolve::resolve_with_service_account(
            pod,
            allowed.as_deref(),
            &bindings,
            sa_role.as_deref(),
            &self.policy,
        )
    }

    fn key_for_token(&self, pod: &PodInfo, resolved: &Resolved) -> AssumeRequest {
        let mut key = self.key_for(Some(pod), resolved);
        if self.config.session_tags && resolved.session_tags {
            key.tags = session_tags(&self.config, pod);
        }
        key
    }

    /// The role for a request from `ip` carrying a token the apiserver bound to `id`'s
    /// pod. The pod must be live on this node, and the address must be its own (or, for
    /// a hostNetwork pod, not another pod's): a token copied into another pod is refused.
    pub async fn identify_token(
        &self,
        ip: IpAddr,
        id: &TokenIdentity,
    ) -> Result<Identified, Denial> {
        let pod = self
            .pods
            .get(&id.pod_uid)
            .filter(|p| {
                p.is_live()
                    && p.namespace == id.namespace
                    && p.name == id.pod_name
                    && p.service_account == id.service_account
            })
            .ok_or_else(|| Denial::PodNotOnNode(format!("{}/{}", id.namespace, id.pod_name)))?;
        let own_address =
            pod.ips.contains(&ip) || (pod.host_network && self.config.node_ip == Some(ip));
        if !own_address {
            let wait = if pod.host_network {
                Duration::ZERO
            } else {
                self.config.pod_wait
            };
            let foreign = |source_pod: String| Denial::ForeignToken {
                source_ip: ip.to_string(),
                source_pod,
                token_pod: pod.key(),
            };
            match self.pods.lookup_wait(ip, wait).await {
                Lookup::Pod(p) if p.uid == pod.uid => {}
                Lookup::Pod(other) => {
                    let denial = foreign(other.key());
                    tracing::warn!(%ip, source_pod = %other.key(), token_pod = %pod.key(), "a pod presented another pod's token; denying");
                    self.report(&other, &denial);
                    return Err(denial);
                }
                Lookup::Conflict(pods) => {
                    return Err(foreign(
                        pods.iter().map(|p| p.key()).collect::<Vec<_>>().join(","),
                    ));
                }
                // A hostNetwork pod speaks from one of the node's addresses.
                Lookup::Unknown if pod.host_network => {}
                Lookup::Unknown => return Err(foreign("none".into())),
            }
        }
        let resolved = self
            .resolve_token_pod(&pod)
            .inspect_err(|d| self.report(&pod, d))?;
        let key = self.key_for_token(&pod, &resolved);
        Ok(Identified {
            pod: Some(pod),
            resolved,
            key,
        })
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
            tags: Vec::new(),
            then: resolved.target.clone(),
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
                    target: None,
                    session_tags: false,
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
            if !pod.is_live() {
                continue;
            }
            if pod.token_path {
                // hostNetwork pods too: the token, not the address, names them.
                match self.resolve_token_pod(pod) {
                    Ok(resolved) => {
                        desired.insert(pod.uid.clone(), self.key_for_token(pod, &resolved));
                    }
                    Err(denial) => self.report(pod, &denial),
                }
                continue;
            }
            if pod.host_network {
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
