//! The one watch helper: list and watch a kind, strip what no controller reads, keep a
//! reflector store, and report each change to the controller (which turns it into keys).
//!
//! Every cached object loses `managedFields` and the `last-applied-configuration`
//! annotation (they are most of an object's size and nothing reads them); the caller's
//! `trim` removes what its controller does not read. Which kinds are watched, by whom, and
//! how they are trimmed is listed in [`super::super::watched`].

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;
use tokio::sync::watch;
use tracing::warn;

use crate::k8s::LAST_APPLIED_ANNOTATION;

/// One change the watch saw.
pub enum Change<'a, K>
where
    K: Resource + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    /// Part of the initial list (or of a relist after the watch was lost). The store takes
    /// the listed objects only once the list is complete ([`Change::Synced`]).
    Listed(&'a K),
    /// Created or updated; the store has it.
    Applied(&'a K),
    /// Deleted; the store no longer has it.
    Deleted(&'a K),
    /// A list or relist is complete and the store holds exactly what it listed. Objects
    /// deleted while the watch was down are simply absent: no [`Change::Deleted`] for them.
    Synced(&'a Store<K>),
}

impl<'a, K> Change<'a, K>
where
    K: Resource + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    /// The object the change is about (`None` for [`Change::Synced`]).
    pub fn object(&self) -> Option<&'a K> {
        match self {
            Change::Listed(o) | Change::Applied(o) | Change::Deleted(o) => Some(o),
            Change::Synced(_) => None,
        }
    }

    /// True for created, updated and deleted objects after the initial list.
    pub fn is_live(&self) -> bool {
        matches!(self, Change::Applied(_) | Change::Deleted(_))
    }
}

/// Drops what no controller reads from any cached object.
pub fn strip<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// Keeps everything (after [`strip`]).
pub fn keep_all<K>(_: &mut K) {}

/// Watches `api` with `config`, keeps a store of stripped and trimmed objects, and calls
/// `on_change` for each change until `stop` flips. Watch errors are logged and retried with
/// kube's default backoff.
pub fn reflect<K, T, F>(
    api: Api<K>,
    config: watcher::Config,
    trim: T,
    mut on_change: F,
    mut stop: watch::Receiver<bool>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
    T: Fn(&mut K) + Send + Sync + 'static,
    F: FnMut(Change<'_, K>) + Send + 'static,
{
    let (reader, writer) = reflector::store();
    let store = reader.clone();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = watcher(api, config.any_semantic())
        .default_backoff()
        .modify(move |obj| {
            strip(obj);
            trim(obj);
        })
        .reflect(writer);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                item = stream.next() => match item {
                    Some(Ok(watcher::Event::InitApply(o))) => on_change(Change::Listed(&o)),
                    Some(Ok(watcher::Event::Apply(o))) => on_change(Change::Applied(&o)),
                    Some(Ok(watcher::Event::Delete(o))) => on_change(Change::Deleted(&o)),
                    Some(Ok(watcher::Event::InitDone)) => on_change(Change::Synced(&store)),
                    Some(Ok(watcher::Event::Init)) => {}
                    Some(Err(e)) => warn!(kind, error = %e, "watch failed; retrying"),
                    None => break,
                }
            }
        }
    });
    reader
}

/// `namespace/name` of a namespaced object, `name` of a cluster-scoped one: the key every
/// per-object controller queues.
pub fn key_of<K: Resource>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

/// The key of an object reference, as [`key_of`] makes it for the object.
pub fn key_of_ref<K: Resource>(r: &reflector::ObjectRef<K>) -> String
where
    K::DynamicType: Eq + Hash + Clone,
{
    match &r.namespace {
        Some(ns) => format!("{ns}/{}", r.name),
        None => r.name.clone(),
    }
}

/// The cached object named by `key` (made by [`key_of`]), if the store has it.
pub fn get<K>(store: &Store<K>, key: &str) -> Option<std::sync::Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (ns, name) = split_key(key);
    let r = reflector::ObjectRef::new(name);
    store.get(&match ns {
        Some(ns) => r.within(ns),
        None => r,
    })
}

/// Splits a key made by [`key_of`].
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn strip_drops_managed_fields_and_last_applied_only() {
        let mut cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "ns",
                "annotations": {LAST_APPLIED_ANNOTATION: "{}", "keep": "me"},
                "managedFields": [{"manager": "kubectl"}]}
        }))
        .unwrap();
        strip(&mut cm);
        assert!(cm.metadata.managed_fields.is_none());
        assert_eq!(
            cm.metadata
                .annotations
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["keep"]
        );
        assert_eq!(key_of(&cm), "ns/a");
        assert_eq!(split_key("ns/a"), (Some("ns"), "a"));
        assert_eq!(split_key("cluster-scoped"), (None, "cluster-scoped"));
    }
}
