//! An in-memory Kubernetes API for reconcile-level tests: a `kube::Client` whose requests
//! are answered from a map of objects, with every request recorded.
//!
//! It does what the reconcilers need and no more: get, list (with an equality label
//! selector), create, delete (which only marks an object with finalizers), server-side
//! apply (as a merge into the object; on the status subresource, whose one writer is the
//! reconciler, as a replacement of `status`), JSON patch and merge patch. Failures can be injected per method and path. The integration tests run the
//! same code against a real apiserver; this one lets a test see each step's calls.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Resource;
use kube::client::Body;
use serde_json::{Value, json};

/// Where an object lives: the API prefix (`/api/v1`, `/apis/group/version`), the plural,
/// the namespace and the name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    prefix: String,
    plural: String,
    namespace: Option<String>,
    name: String,
}

/// A parsed request path.
struct Target {
    prefix: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match *segs.first()? {
        "api" if segs.len() >= 2 => (format!("/api/{}", segs[1]), &segs[2..]),
        "apis" if segs.len() >= 3 => (format!("/apis/{}/{}", segs[1], segs[2]), &segs[3..]),
        _ => return None,
    };
    let (namespace, rest) = if rest.len() >= 3 && rest[0] == "namespaces" {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    Some(Target {
        prefix,
        plural: rest.first()?.to_string(),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        status: rest.get(2) == Some(&"status"),
    })
}

/// `a=b,c=d` against an object's labels.
fn selects(selector: &str, obj: &Value) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        let label = obj["metadata"]["labels"][k].as_str();
        if v.is_empty() {
            label.is_some()
        } else {
            label == Some(v.trim_start_matches('='))
        }
    })
}

/// `%XX` escapes of a query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Objects merged as a JSON merge patch: maps merge, everything else is replaced.
fn merge(into: &mut Value, patch: &Value) {
    json_patch::merge(into, patch);
}

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    requests: Vec<String>,
    /// Method, path fragment, matching requests still to let through, status code.
    failures: Vec<(Method, String, usize, u16)>,
    next_uid: u64,
}

/// The fake API. Cloning shares the state.
#[derive(Clone, Default)]
pub struct FakeApi(Arc<Mutex<State>>);

fn status(code: u16, reason: &str, message: String) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

impl FakeApi {
    pub fn new() -> Self {
        FakeApi::default()
    }

    /// A client whose requests this fake answers.
    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.serve(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key_of<K: Resource<DynamicType = ()>>(obj: &Value) -> Key {
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        let path = K::url_path(&(), ns.as_deref());
        let t = parse(&path).expect("a resource path");
        Key {
            prefix: t.prefix,
            plural: t.plural,
            namespace: ns,
            name: obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// Stores `obj` as it is (with a uid when it has none).
    pub fn put<K: Resource<DynamicType = ()> + serde::Serialize>(&self, obj: &K) {
        let mut v = serde_json::to_value(obj).expect("serialisable");
        let mut st = self.lock();
        st.next_uid += 1;
        if v["metadata"]["uid"].is_null() {
            v["metadata"]["uid"] = json!(format!("uid-{}", st.next_uid));
        }
        st.objects.insert(Self::key_of::<K>(&v), v);
    }

    /// The stored object, if any.
    pub fn get<K: Resource<DynamicType = ()> + serde::de::DeserializeOwned>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<K> {
        let path = K::url_path(&(), namespace);
        let t = parse(&path)?;
        let key = Key {
            prefix: t.prefix,
            plural: t.plural,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        };
        let v = self.lock().objects.get(&key).cloned()?;
        serde_json::from_value(v).ok()
    }

    /// Every stored object of a kind, as JSON.
    pub fn all<K: Resource<DynamicType = ()>>(&self) -> Vec<Value> {
        let t = parse(&K::url_path(&(), None)).expect("a resource path");
        self.lock()
            .objects
            .iter()
            .filter(|(k, _)| k.prefix == t.prefix && k.plural == t.plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Lists every stored object of `K` into a reflector store, as a relist does: what the
    /// watch would show a reconciler after the writes it saw.
    pub fn relist<K>(&self, writer: &mut kube::runtime::reflector::store::Writer<K>)
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
    {
        use kube::runtime::watcher::Event;
        writer.apply_watcher_event(&Event::Init);
        for v in self.all::<K>() {
            let obj: K = serde_json::from_value(v).expect("a stored object of its kind");
            writer.apply_watcher_event(&Event::InitApply(obj));
        }
        writer.apply_watcher_event(&Event::InitDone);
    }

    /// Every request so far, as `METHOD path` (no query), and forgets them.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().requests)
    }

    /// The next request with `method` whose path contains `path` fails with `code`.
    pub fn fail_next(&self, method: Method, path: &str, code: u16) {
        self.fail_after(method, path, 0, code);
    }

    /// Like [`fail_next`](Self::fail_next), after `skip` such requests went through.
    pub fn fail_after(&self, method: Method, path: &str, skip: usize, code: u16) {
        self.lock()
            .failures
            .push((method, path.to_string(), skip, code));
    }

    async fn serve(&self, req: Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (code, v) = self.answer(&parts.method, &path, &query, &content_type, &bytes);
        Response::builder()
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&v).unwrap_or_default()))
            .expect("a response")
    }

    fn answer(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let mut st = self.lock();
        st.requests.push(format!("{method} {path}"));
        if let Some(i) = st
            .failures
            .iter()
            .position(|(m, p, _, _)| m == method && path.contains(p.as_str()))
        {
            if st.failures[i].2 == 0 {
                let (_, _, _, code) = st.failures.remove(i);
                return (code, status(code, "InternalError", "injected".into()));
            }
            st.failures[i].2 -= 1;
        }
        let Some(t) = parse(path) else {
            return (404, status(404, "NotFound", format!("no such path {path}")));
        };
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let key = |name: &str| Key {
            prefix: t.prefix.clone(),
            plural: t.plural.clone(),
            namespace: t.namespace.clone(),
            name: name.to_string(),
        };
        let not_found = |name: &str| {
            (
                404,
                status(
                    404,
                    "NotFound",
                    format!("{} \"{name}\" not found", t.plural),
                ),
            )
        };
        match (method, &t.name) {
            (&Method::GET, None) => {
                let selector = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("labelSelector="))
                    .map(percent_decode)
                    .unwrap_or_default();
                let items: Vec<Value> = st
                    .objects
                    .iter()
                    .filter(|(k, v)| {
                        k.prefix == t.prefix
                            && k.plural == t.plural
                            && (t.namespace.is_none() || k.namespace == t.namespace)
                            && selects(&selector, v)
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                (
                    200,
                    json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            (&Method::GET, Some(name)) => match st.objects.get(&key(name)) {
                Some(v) => (200, v.clone()),
                None => not_found(name),
            },
            (&Method::POST, _) => {
                let mut obj = body;
                let name = match obj["metadata"]["name"].as_str() {
                    Some(n) => n.to_string(),
                    None => {
                        let n = format!(
                            "{}{}",
                            obj["metadata"]["generateName"].as_str().unwrap_or("obj-"),
                            st.next_uid
                        );
                        obj["metadata"]["name"] = json!(n);
                        n
                    }
                };
                st.next_uid += 1;
                obj["metadata"]["uid"] = json!(format!("uid-{}", st.next_uid));
                st.objects.insert(key(&name), obj.clone());
                (201, obj)
            }
            (&Method::DELETE, Some(name)) => {
                let k = key(name);
                let Some(obj) = st.objects.get_mut(&k) else {
                    return not_found(name);
                };
                let has_finalizers = obj["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty());
                if has_finalizers {
                    obj["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                    (200, obj.clone())
                } else {
                    let obj = st.objects.remove(&k).unwrap_or_default();
                    (200, obj)
                }
            }
            (&Method::PATCH, Some(name)) => {
                let k = key(name);
                let apply = content_type.starts_with("application/apply-patch");
                let existing = st.objects.get(&k).cloned();
                let mut obj = match existing {
                    Some(o) => o,
                    None if apply && !t.status => {
                        st.next_uid += 1;
                        let mut o = body.clone();
                        o["metadata"]["uid"] = json!(format!("uid-{}", st.next_uid));
                        o["metadata"]["generation"] = json!(1);
                        o
                    }
                    None => return not_found(name),
                };
                if content_type.starts_with("application/json-patch") {
                    // As the apiserver does, `test` of `null` passes on a missing path.
                    let ops: Vec<Value> = body
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|op| {
                            !(op["op"] == "test"
                                && op["value"].is_null()
                                && op["path"]
                                    .as_str()
                                    .is_some_and(|p| obj.pointer(p).is_none()))
                        })
                        .cloned()
                        .collect();
                    let Ok(p) = serde_json::from_value::<json_patch::Patch>(Value::Array(ops))
                    else {
                        return (400, status(400, "BadRequest", "not a JSON patch".into()));
                    };
                    if let Err(e) = json_patch::patch(&mut obj, &p) {
                        return (422, status(422, "Invalid", e.to_string()));
                    }
                } else if t.status && apply {
                    // Server-side apply by the one writer of status: what it no longer
                    // applies goes.
                    obj["status"] = body["status"].clone();
                } else if t.status {
                    merge(&mut obj["status"], &body["status"]);
                } else {
                    merge(&mut obj, &body);
                }
                // An object whose last finalizer went while it was being deleted is gone.
                let finalizers_gone = obj["metadata"]["finalizers"]
                    .as_array()
                    .is_none_or(|f| f.is_empty());
                if !obj["metadata"]["deletionTimestamp"].is_null() && finalizers_gone {
                    st.objects.remove(&k);
                } else {
                    st.objects.insert(k, obj.clone());
                }
                (200, obj)
            }
            _ => (
                405,
                status(405, "MethodNotAllowed", format!("{method} {path}")),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

    fn config_map(name: &str, labels: Value) -> ConfigMap {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "ns", "labels": labels}}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn answers_get_list_apply_patch_and_delete_like_the_apiserver() {
        let fake = FakeApi::new();
        fake.put(&config_map("a", json!({"app": "web"})));
        fake.put(&config_map("b", json!({"app": "api"})));
        let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");

        assert!(api.get_opt("missing").await.unwrap().is_none());
        let listed = api
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);

        let applied = api
            .patch(
                "c",
                &PatchParams::apply("t"),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "c", "finalizers": ["f"]},
                                     "data": {"k": "v"}})),
            )
            .await
            .unwrap();
        assert_eq!(applied.data.unwrap()["k"], "v");

        // A finalizer holds a deleted object until a patch removes it.
        api.delete("c", &DeleteParams::default()).await.unwrap();
        assert!(
            fake.get::<ConfigMap>(Some("ns"), "c")
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_some()
        );
        let p: json_patch::Patch =
            serde_json::from_value(json!([{"op": "remove", "path": "/metadata/finalizers/0"}]))
                .unwrap();
        api.patch("c", &PatchParams::default(), &Patch::Json::<()>(p))
            .await
            .unwrap();
        assert!(fake.get::<ConfigMap>(Some("ns"), "c").is_none());

        fake.fail_next(Method::GET, "/configmaps/a", 500);
        assert!(api.get("a").await.is_err());
        assert!(api.get("a").await.is_ok());
        let seen = fake.take_requests();
        assert!(
            seen.contains(&"DELETE /api/v1/namespaces/ns/configmaps/c".to_string()),
            "{seen:?}"
        );
    }
}
