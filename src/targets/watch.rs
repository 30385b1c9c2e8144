//! The index from a Service to the bindings that name it, and the Node change filter. How
//! the watched Services, EndpointSlices and Nodes are trimmed is in `crate::k8s::watched`.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, RwLock};

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use crate::crd::TargetGroupBinding;
use crate::crd::target_group_binding::TargetType;
use crate::k8s::SERVICE_NAME_LABEL;

/// What of a Node matters to targets; a change to anything else triggers nothing.
pub fn node_fingerprint(node: &Node) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    node.metadata.labels.hash(&mut h);
    node.metadata.deletion_timestamp.is_some().hash(&mut h);
    node.spec
        .as_ref()
        .and_then(|s| s.provider_id.as_ref())
        .hash(&mut h);
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| cs.iter().map(|c| (&c.type_, &c.status)).collect::<Vec<_>>())
        .hash(&mut h);
    h.finish()
}

/// Passes a node event on only when its fingerprint changed (or on first sight).
#[derive(Default)]
pub struct NodeFilter {
    seen: Mutex<HashMap<String, u64>>,
}

impl NodeFilter {
    pub fn changed(&self, node: &Node) -> bool {
        let fp = node_fingerprint(node);
        let name = node.name_any();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(name, fp) != Some(fp)
    }
}

type ServiceKey = (String, String);

/// Bindings by the Service they name, and instance bindings (which every node change
/// affects). Updated from the binding watch.
#[derive(Default)]
pub struct ServiceIndex {
    inner: RwLock<IndexInner>,
}

#[derive(Default)]
struct IndexInner {
    by_service: HashMap<ServiceKey, HashSet<ObjectRef<TargetGroupBinding>>>,
    of_binding: HashMap<ObjectRef<TargetGroupBinding>, (ServiceKey, bool)>,
}

impl ServiceIndex {
    pub fn upsert(&self, b: &TargetGroupBinding) {
        let oref = ObjectRef::from_obj(b);
        let key = (
            b.namespace().unwrap_or_default(),
            b.spec.service_ref.name.clone(),
        );
        // A binding without targetType may turn out to be instance; treat it as one for
        // node triggers (a spurious reconcile costs one cache read).
        let instance = b.spec.target_type != Some(TargetType::Ip);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some((old, _)) = inner
            .of_binding
            .insert(oref.clone(), (key.clone(), instance))
            && old != key
            && let Some(set) = inner.by_service.get_mut(&old)
        {
            set.remove(&oref);
            if set.is_empty() {
                inner.by_service.remove(&old);
            }
        }
        inner.by_service.entry(key).or_default().insert(oref);
    }

    pub fn remove(&self, b: &TargetGroupBinding) {
        let oref = ObjectRef::from_obj(b);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some((key, _)) = inner.of_binding.remove(&oref)
            && let Some(set) = inner.by_service.get_mut(&key)
        {
            set.remove(&oref);
            if set.is_empty() {
                inner.by_service.remove(&key);
            }
        }
    }

    /// Replaces the index with `bindings` (after a relist, which reports no deletions).
    pub fn rebuild<'a>(&self, bindings: impl IntoIterator<Item = &'a TargetGroupBinding>) {
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = IndexInner::default();
        for b in bindings {
            self.upsert(b);
        }
    }

    /// Every indexed binding.
    pub fn all(&self) -> Vec<ObjectRef<TargetGroupBinding>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.of_binding.keys().cloned().collect()
    }

    pub fn for_service(&self, namespace: &str, name: &str) -> Vec<ObjectRef<TargetGroupBinding>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .by_service
            .get(&(namespace.to_string(), name.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn instance_bindings(&self) -> Vec<ObjectRef<TargetGroupBinding>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .of_binding
            .iter()
            .filter(|(_, (_, instance))| *instance)
            .map(|(o, _)| o.clone())
            .collect()
    }
}

/// The Service an EndpointSlice belongs to.
pub fn slice_service(slice: &EndpointSlice) -> Option<(String, String)> {
    let name = slice.labels().get(SERVICE_NAME_LABEL)?.clone();
    Some((slice.namespace().unwrap_or_default(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(ns: &str, name: &str, svc: &str, t: Option<TargetType>) -> TargetGroupBinding {
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/a/1";
        let b = crate::fixtures::target_group_binding(ns, name, arn, svc, 80, "ip");
        crate::fixtures::with(b, serde_json::json!({"spec": {"targetType": t}}))
    }

    #[test]
    fn index_follows_service_ref_changes_and_deletes() {
        let idx = ServiceIndex::default();
        let mut b = binding("ns", "b1", "web", Some(TargetType::Ip));
        idx.upsert(&b);
        idx.upsert(&binding("ns", "b2", "web", Some(TargetType::Instance)));
        assert_eq!(idx.for_service("ns", "web").len(), 2);
        assert!(idx.for_service("other", "web").is_empty());
        b.spec.service_ref.name = "api".into();
        idx.upsert(&b);
        assert_eq!(idx.for_service("ns", "web").len(), 1);
        assert_eq!(idx.for_service("ns", "api").len(), 1);
        assert_eq!(idx.instance_bindings().len(), 1);
        idx.remove(&b);
        assert!(idx.for_service("ns", "api").is_empty());
    }

    #[test]
    fn pruned_node_keeps_what_targets_need_and_heartbeats_do_not_trigger() {
        let mut n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": {"a": "b"}, "annotations": {"big": "x"},
                          "managedFields": [{"manager": "kubelet"}]},
            "spec": {"providerID": "aws:///z/i-01", "podCIDR": "10.0.0.0/24"},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z"}],
                "images": [{"names": ["x"]}]}
        }))
        .unwrap();
        crate::k8s::watched::targets_node(&mut n);
        assert!(n.metadata.annotations.is_none() && n.metadata.managed_fields.is_none());
        assert_eq!(
            n.spec.as_ref().unwrap().provider_id.as_deref(),
            Some("aws:///z/i-01")
        );
        assert_eq!(
            n.status
                .as_ref()
                .unwrap()
                .conditions
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        let f = NodeFilter::default();
        assert!(f.changed(&n));
        assert!(!f.changed(&n));
        n.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(super::super::desired::EXCLUDE_LB_LABEL.into(), "".into());
        assert!(f.changed(&n));
    }

    #[test]
    fn pruned_slice_keeps_endpoints() {
        let mut s: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "namespace": "ns", "labels": {SERVICE_NAME_LABEL: "web", "x": "y"},
                          "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "u"}]},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "zone": "a",
                           "targetRef": {"kind": "Pod", "name": "p", "namespace": "ns", "uid": "u"}}],
            "ports": [{"name": "http", "port": 8080}]
        }))
        .unwrap();
        crate::k8s::watched::targets_slice(&mut s);
        assert_eq!(slice_service(&s), Some(("ns".into(), "web".into())));
        assert!(s.metadata.owner_references.is_none());
        assert_eq!(
            s.endpoints.as_ref().unwrap()[0]
                .target_ref
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("p")
        );
        assert!(s.endpoints.as_ref().unwrap()[0].zone.is_none());
    }
}
