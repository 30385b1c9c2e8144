//! The node's pods, indexed by IP, with IP reuse handled: a Succeeded, Failed or
//! deleted pod never keeps its IP, and two live pods claiming one IP are a conflict,
//! never a guess. hostNetwork pods are not indexed by IP (they share the node's).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;

use super::resolve::{EXTERNAL_ID_ANNOTATION, PodInfo, ROLE_ANNOTATION};

/// What an IP maps to right now.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Pod(Arc<PodInfo>),
    Unknown,
    Conflict(Vec<Arc<PodInfo>>),
}

#[derive(Default)]
struct Inner {
    pods: HashMap<String, Arc<PodInfo>>,
    by_ip: HashMap<IpAddr, Vec<String>>,
}

impl Inner {
    fn unindex(&mut self, uid: &str) {
        if let Some(old) = self.pods.get(uid) {
            for ip in &old.ips {
                if let Some(uids) = self.by_ip.get_mut(ip) {
                    uids.retain(|u| u != uid);
                    if uids.is_empty() {
                        self.by_ip.remove(ip);
                    }
                }
            }
        }
    }

    fn upsert(&mut self, pod: PodInfo) {
        self.unindex(&pod.uid);
        if pod.is_live() && !pod.host_network {
            for ip in &pod.ips {
                self.by_ip.entry(*ip).or_default().push(pod.uid.clone());
            }
        }
        self.pods.insert(pod.uid.clone(), Arc::new(pod));
    }

    fn remove(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        self.unindex(uid);
        self.pods.remove(uid)
    }
}

/// Shared by the watcher (writer) and the metadata server (readers).
pub struct PodIndex {
    inner: RwLock<Inner>,
    /// Bumped on every change so a request for an IP not yet known can wait for it.
    version: watch::Sender<u64>,
}

impl Default for PodIndex {
    fn default() -> Self {
        PodIndex {
            inner: RwLock::default(),
            version: watch::channel(0).0,
        }
    }
}

impl std::fmt::Debug for PodIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodIndex").finish_non_exhaustive()
    }
}

impl PodIndex {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub fn upsert(&self, pod: PodInfo) {
        self.write().upsert(pod);
        self.bump();
    }

    pub fn remove(&self, uid: &str) -> Option<Arc<PodInfo>> {
        let removed = self.write().remove(uid);
        self.bump();
        removed
    }

    /// Replaces everything (after a relist); returns the pods that disappeared.
    pub fn replace_all(&self, pods: Vec<PodInfo>) -> Vec<Arc<PodInfo>> {
        let mut fresh = Inner::default();
        for pod in pods {
            fresh.upsert(pod);
        }
        let gone = {
            let mut inner = self.write();
            let gone = inner
                .pods
                .iter()
                .filter(|(uid, _)| !fresh.pods.contains_key(*uid))
                .map(|(_, p)| p.clone())
                .collect();
            *inner = fresh;
            gone
        };
        self.bump();
        gone
    }

    pub fn lookup(&self, ip: IpAddr) -> Lookup {
        let inner = self.read();
        match inner.by_ip.get(&ip).map(Vec::as_slice) {
            None | Some([]) => Lookup::Unknown,
            Some([uid]) => inner
                .pods
                .get(uid)
                .map_or(Lookup::Unknown, |p| Lookup::Pod(p.clone())),
            Some(uids) => Lookup::Conflict(
                uids.iter()
                    .filter_map(|u| inner.pods.get(u).cloned())
                    .collect(),
            ),
        }
    }

    /// Looks `ip` up, waiting up to `wait` for the watch to learn it: a pod's first
    /// request can race the kubelet's status update that publishes its IP.
    pub async fn lookup_wait(&self, ip: IpAddr, wait: std::time::Duration) -> Lookup {
        let mut changes = self.version.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let found = self.lookup(ip);
            if !matches!(found, Lookup::Unknown) {
                return found;
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .map_or(true, |r| r.is_err())
            {
                return self.lookup(ip);
            }
        }
    }

    pub fn all(&self) -> Vec<Arc<PodInfo>> {
        self.read().pods.values().cloned().collect()
    }

    pub fn get(&self, uid: &str) -> Option<Arc<PodInfo>> {
        self.read().pods.get(uid).cloned()
    }

    pub fn len(&self) -> usize {
        self.read().pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps only what resolution and naming need.
pub fn pod_info(pod: &Pod) -> Option<PodInfo> {
    let meta = &pod.metadata;
    let uid = meta.uid.clone()?;
    let annotations = meta.annotations.as_ref();
    let annotation = |k: &str| annotations.and_then(|a| a.get(k)).cloned();
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let mut ips: Vec<IpAddr> = status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| p.ip.parse().ok())
        .collect();
    if let Some(ip) = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok())
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    Some(PodInfo {
        uid,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        service_account: spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        labels: meta.labels.clone().unwrap_or_default(),
        role_annotation: annotation(ROLE_ANNOTATION),
        external_id_annotation: annotation(EXTERNAL_ID_ANNOTATION),
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        ips,
        phase: status.and_then(|s| s.phase.clone()),
        token_path: spec.is_some_and(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .flat_map(|c| c.env.iter().flatten())
                .any(|e| e.name == crate::iam::pod_identity::FULL_URI_ENV)
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pod(uid: &str, ip: &str, phase: &str) -> PodInfo {
        PodInfo {
            uid: uid.into(),
            namespace: "ns".into(),
            name: uid.into(),
            ips: vec![ip.parse().unwrap()],
            phase: Some(phase.into()),
            ..PodInfo::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn uid_of(l: Lookup) -> Option<String> {
        match l {
            Lookup::Pod(p) => Some(p.uid.clone()),
            _ => None,
        }
    }

    #[test]
    fn terminal_pod_releases_its_ip_to_the_new_one() {
        let index = PodIndex::default();
        index.upsert(pod("old", "10.0.0.5", "Running"));
        assert_eq!(uid_of(index.lookup(ip("10.0.0.5"))).as_deref(), Some("old"));
        index.upsert(pod("old", "10.0.0.5", "Succeeded"));
        assert_eq!(index.lookup(ip("10.0.0.5")), Lookup::Unknown);
        index.upsert(pod("new", "10.0.0.5", "Running"));
        assert_eq!(uid_of(index.lookup(ip("10.0.0.5"))).as_deref(), Some("new"));
    }

    #[test]
    fn two_live_claimants_conflict_until_one_goes() {
        let index = PodIndex::default();
        index.upsert(pod("a", "10.0.0.5", "Running"));
        index.upsert(pod("b", "10.0.0.5", "Pending"));
        assert!(matches!(index.lookup(ip("10.0.0.5")), Lookup::Conflict(ref p) if p.len() == 2));
        index.remove("a");
        assert_eq!(uid_of(index.lookup(ip("10.0.0.5"))).as_deref(), Some("b"));
    }

    #[test]
    fn host_network_pods_are_not_indexed_by_ip() {
        let index = PodIndex::default();
        let mut p = pod("h", "10.0.0.1", "Running");
        p.host_network = true;
        index.upsert(p);
        assert_eq!(index.lookup(ip("10.0.0.1")), Lookup::Unknown);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn relist_drops_vanished_pods() {
        let index = PodIndex::default();
        index.upsert(pod("a", "10.0.0.5", "Running"));
        index.upsert(pod("b", "10.0.0.6", "Running"));
        let gone = index.replace_all(vec![pod("b", "10.0.0.6", "Running")]);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].uid, "a");
        assert_eq!(index.lookup(ip("10.0.0.5")), Lookup::Unknown);
    }

    #[tokio::test]
    async fn lookup_waits_for_a_late_ip() {
        let index = Arc::new(PodIndex::default());
        let writer = index.clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            writer.upsert(pod("late", "10.0.0.9", "Pending"));
        });
        let found = index
            .lookup_wait(ip("10.0.0.9"), std::time::Duration::from_secs(30))
            .await;
        assert_eq!(uid_of(found).as_deref(), Some("late"));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(u8, u8, bool),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6, 0u8..4, any::<bool>()).prop_map(|(u, i, live)| Op::Upsert(u, i, live)),
            (0u8..6).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// After any sequence of changes, an IP maps to a pod iff exactly one live pod
        /// currently claims it; terminal or removed pods never answer for it.
        #[test]
        fn index_agrees_with_a_model(ops in proptest::collection::vec(op(), 0..40)) {
            let index = PodIndex::default();
            let mut model: HashMap<u8, (u8, bool)> = HashMap::new();
            for op in ops {
                match op {
                    Op::Upsert(u, i, live) => {
                        let phase = if live { "Running" } else { "Failed" };
                        index.upsert(pod(&format!("p{u}"), &format!("10.0.0.{i}"), phase));
                        model.insert(u, (i, live));
                    }
                    Op::Remove(u) => {
                        index.remove(&format!("p{u}"));
                        model.remove(&u);
                    }
                }
            }
            for i in 0u8..4 {
                let claimants: Vec<u8> = model.iter().filter(|(_, (ip, live))| *ip == i && *live).map(|(u, _)| *u).collect();
                let got = index.lookup(ip(&format!("10.0.0.{i}")));
                match claimants.as_slice() {
                    [] => prop_assert_eq!(got, Lookup::Unknown),
                    [u] => prop_assert_eq!(uid_of(got), Some(format!("p{u}"))),
                    many => prop_assert!(matches!(got, Lookup::Conflict(ref p) if p.len() == many.len())),
                }
            }
        }
    }
}
