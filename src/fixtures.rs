//! One home for the Kubernetes objects tests are made of: Ingresses, Services,
//! EndpointSlices, TargetGroupBindings and Nodes. Unit tests, benchmarks and the integration
//! tests (through the `testing` feature) build them here; a variant is a fixture plus a
//! JSON merge patch ([`with`]).

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::crd::TargetGroupBinding;
use crate::k8s::SERVICE_NAME_LABEL;

/// `obj` with `patch` merged in (JSON merge patch: maps merge, `null` removes, the rest is
/// replaced).
pub fn with<K: Serialize + DeserializeOwned>(obj: K, patch: Value) -> K {
    let mut v = serde_json::to_value(obj).expect("serialisable");
    json_patch::merge(&mut v, &patch);
    serde_json::from_value(v).expect("the patched object is still valid")
}

/// A Service with one port `http` (`port` → 8080), a node port when given, and annotations.
pub fn service(ns: &str, name: &str, port: i32, node_port: Option<i32>, anns: Value) -> Service {
    let mut p = json!({"name": "http", "port": port, "targetPort": 8080});
    if let Some(n) = node_port {
        p["nodePort"] = json!(n);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": anns},
        "spec": {"ports": [p]}
    }))
    .expect("valid Service")
}

/// An Ingress with annotations and `spec.rules` (see [`path_rule`]).
pub fn ingress(ns: &str, name: &str, anns: Value, rules: Value) -> Ingress {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "annotations": anns},
        "spec": {"rules": rules}
    }))
    .expect("valid Ingress")
}

/// One Ingress rule: an optional host and one path to a Service port number.
pub fn path_rule(host: Option<&str>, path: &str, path_type: &str, svc: &str, port: i32) -> Value {
    let mut r = json!({"http": {"paths": [{"path": path, "pathType": path_type,
        "backend": {"service": {"name": svc, "port": {"number": port}}}}]}});
    if let Some(h) = host {
        r["host"] = json!(h);
    }
    r
}

/// An IPv4 EndpointSlice of Service `svc`: one port `http` (`port`), and one endpoint per
/// address, ready or not, each backed by Pod `<svc>-<i>`.
pub fn endpoint_slice(ns: &str, svc: &str, addresses: &[(&str, bool)], port: i32) -> EndpointSlice {
    let endpoints: Vec<Value> = addresses
        .iter()
        .enumerate()
        .map(|(i, (ip, ready))| {
            json!({"addresses": [ip], "conditions": {"ready": ready},
                   "targetRef": {"kind": "Pod", "namespace": ns, "name": format!("{svc}-{i}")}})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-1"), "namespace": ns,
                     "labels": {SERVICE_NAME_LABEL: svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": endpoints
    }))
    .expect("valid EndpointSlice")
}

/// A TargetGroupBinding of Service `svc` port `port` to the target group `arn`.
pub fn target_group_binding(
    ns: &str,
    name: &str,
    arn: &str,
    svc: &str,
    port: i32,
    target_type: &str,
) -> TargetGroupBinding {
    serde_json::from_value(json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": name, "namespace": ns, "generation": 1},
        "spec": {"targetGroupARN": arn, "targetType": target_type,
                 "serviceRef": {"name": svc, "port": port}}
    }))
    .expect("valid TargetGroupBinding")
}

/// A Node with labels, a Ready condition and, when given, a providerID.
pub fn node(name: &str, provider_id: Option<&str>, labels: &[(&str, &str)], ready: bool) -> Node {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut spec = json!({});
    if let Some(p) = provider_id {
        spec["providerID"] = json!(p);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
    }))
    .expect("valid Node")
}

/// A reflector store that has listed `objects`, and its writer for later changes.
pub fn store<K>(objects: impl IntoIterator<Item = K>) -> (Store<K>, reflector::store::Writer<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    (store, writer)
}

/// The first hostname in an Ingress's status, as a load balancer controller sets it.
pub fn hostname(ingress: &Ingress) -> Option<String> {
    ingress
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?
        .hostname
        .clone()
}
