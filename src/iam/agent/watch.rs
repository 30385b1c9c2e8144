//! The watches that feed the agent: this node's pods (field selector `spec.nodeName`),
//! namespaces' metadata (for `allowed-roles`), IamRoleBindings, and ServiceAccounts'
//! metadata (for IRSA's `eks.amazonaws.com/role-arn`, kept only where set). Every change
//! re-syncs the credential cache, so a pod scheduled here is prefetched before its
//! containers start.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use super::Agent;
use super::pods::pod_info;
use super::resolve::{ALLOWED_ROLES_ANNOTATION, BindingInfo, IRSA_ROLE_ANNOTATION, PodInfo};
use crate::crd::IamRoleBinding;
use crate::k8s::selector;

fn binding_info(b: &IamRoleBinding) -> BindingInfo {
    if let Some(Err(e)) = b.spec.pod_selector.as_ref().map(selector::validate) {
        tracing::warn!(
            binding = %b.name_any(),
            namespace = b.namespace().unwrap_or_default(),
            error = %e,
            "IamRoleBinding podSelector is invalid; it selects no pod"
        );
    }
    BindingInfo::from(b)
}

/// Runs until `stop` flips; `synced` fires once all four lists have loaded.
pub async fn run(
    client: Client,
    agent: Arc<Agent>,
    stop: watch::Receiver<bool>,
    synced: tokio::sync::oneshot::Sender<()>,
) {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<&'static str>(4);
    let pods = tokio::spawn(watch_pods(client.clone(), agent.clone(), ready_tx.clone()));
    let namespaces = tokio::spawn(watch_namespaces(
        client.clone(),
        agent.clone(),
        ready_tx.clone(),
    ));
    let service_accounts = tokio::spawn(watch_service_accounts(
        client.clone(),
        agent.clone(),
        ready_tx.clone(),
    ));
    let bindings = tokio::spawn(watch_bindings(client, agent.clone(), ready_tx));
    tokio::spawn(async move {
        for _ in 0..4 {
            if ready_rx.recv().await.is_none() {
                return;
            }
        }
        let _ = synced.send(());
    });
    let mut stop = stop;
    let _ = stop.wait_for(|s| *s).await;
    pods.abort();
    namespaces.abort();
    bindings.abort();
    service_accounts.abort();
}

async fn watch_pods(
    client: Client,
    agent: Arc<Agent>,
    ready: tokio::sync::mpsc::Sender<&'static str>,
) {
    let api: Api<Pod> = Api::all(client);
    let config = watcher::Config::default()
        .fields(&format!("spec.nodeName={}", agent.config.node_name))
        .any_semantic();
    let stream = watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut relist: Vec<PodInfo> = Vec::new();
    let mut announced = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(pod)) => {
                if let Some(info) = pod_info(&pod) {
                    agent.pods.upsert(info);
                }
            }
            Ok(Event::Delete(pod)) => {
                if let Some(uid) = pod.metadata.uid.as_deref() {
                    agent.pods.remove(uid);
                }
            }
            Ok(Event::Init) => relist.clear(),
            Ok(Event::InitApply(pod)) => relist.extend(pod_info(&pod)),
            Ok(Event::InitDone) => {
                agent.pods.replace_all(std::mem::take(&mut relist));
                if !announced {
                    announced = true;
                    let _ = ready.send("pods").await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pod watch failed; retrying");
                continue;
            }
        }
        agent.sync();
    }
}

async fn watch_namespaces(
    client: Client,
    agent: Arc<Agent>,
    ready: tokio::sync::mpsc::Sender<&'static str>,
) {
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut relist: HashMap<String, Option<String>> = HashMap::new();
    let mut announced = false;
    let allowed = |annotations: &std::collections::BTreeMap<String, String>| {
        annotations.get(ALLOWED_ROLES_ANNOTATION).cloned()
    };
    while let Some(event) = stream.next().await {
        let namespaces = || {
            agent
                .namespaces
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        match event {
            Ok(Event::Apply(ns)) => {
                agent.set_allowed_roles(&ns.name_any(), allowed(ns.annotations()));
            }
            Ok(Event::Delete(ns)) => {
                namespaces().remove(&ns.name_any());
            }
            Ok(Event::Init) => relist.clear(),
            Ok(Event::InitApply(ns)) => {
                relist.insert(ns.name_any(), allowed(ns.annotations()));
            }
            Ok(Event::InitDone) => {
                *namespaces() = std::mem::take(&mut relist);
                if !announced {
                    announced = true;
                    let _ = ready.send("namespaces").await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "namespace watch failed; retrying");
                continue;
            }
        }
        agent.sync();
    }
}

async fn watch_service_accounts(
    client: Client,
    agent: Arc<Agent>,
    ready: tokio::sync::mpsc::Sender<&'static str>,
) {
    let api: Api<PartialObjectMeta<ServiceAccount>> = Api::all(client);
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut relist: HashMap<(String, String), String> = HashMap::new();
    let mut announced = false;
    let key = |sa: &PartialObjectMeta<ServiceAccount>| {
        (sa.namespace().unwrap_or_default(), sa.name_any())
    };
    let role = |sa: &PartialObjectMeta<ServiceAccount>| {
        sa.annotations().get(IRSA_ROLE_ANNOTATION).cloned()
    };
    // ServiceAccounts change all over the cluster; only a change of an IRSA annotation (or
    // the end of a relist) re-syncs this node's pods.
    while let Some(event) = stream.next().await {
        let changed = match event {
            Ok(Event::Apply(sa)) => {
                let (ns, name) = key(&sa);
                agent.set_service_account_role(&ns, &name, role(&sa))
            }
            Ok(Event::Delete(sa)) => {
                let (ns, name) = key(&sa);
                agent.set_service_account_role(&ns, &name, None)
            }
            Ok(Event::Init) => {
                relist.clear();
                false
            }
            Ok(Event::InitApply(sa)) => {
                if let Some(role) = role(&sa) {
                    relist.insert(key(&sa), role);
                }
                false
            }
            Ok(Event::InitDone) => {
                *agent
                    .service_accounts
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    std::mem::take(&mut relist);
                if !announced {
                    announced = true;
                    let _ = ready.send("service accounts").await;
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "ServiceAccount watch failed; retrying");
                false
            }
        };
        if changed {
            agent.sync();
        }
    }
}

async fn watch_bindings(
    client: Client,
    agent: Arc<Agent>,
    ready: tokio::sync::mpsc::Sender<&'static str>,
) {
    let api: Api<IamRoleBinding> = Api::all(client);
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut all: HashMap<(String, String), BindingInfo> = HashMap::new();
    let mut relist: HashMap<(String, String), BindingInfo> = HashMap::new();
    let mut announced = false;
    while let Some(event) = stream.next().await {
        let key = |b: &IamRoleBinding| (b.namespace().unwrap_or_default(), b.name_any());
        let init_done = matches!(event, Ok(Event::InitDone));
        match event {
            Ok(Event::Apply(b)) => {
                all.insert(key(&b), binding_info(&b));
            }
            Ok(Event::Delete(b)) => {
                all.remove(&key(&b));
            }
            Ok(Event::Init) => relist.clear(),
            Ok(Event::InitApply(b)) => {
                relist.insert(key(&b), binding_info(&b));
            }
            Ok(Event::InitDone) => {
                all = std::mem::take(&mut relist);
            }
            Err(e) => {
                tracing::warn!(error = %e, "IamRoleBinding watch failed; retrying");
                continue;
            }
        }
        let mut by_namespace: HashMap<String, Vec<BindingInfo>> = HashMap::new();
        for ((ns, _), b) in &all {
            by_namespace.entry(ns.clone()).or_default().push(b.clone());
        }
        *agent
            .bindings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = by_namespace;
        agent.sync();
        if !announced && init_done {
            announced = true;
            let _ = ready.send("bindings").await;
        }
    }
}
