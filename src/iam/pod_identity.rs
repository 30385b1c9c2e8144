//! Injection for the token path: the mutating webhook that gives a pod whose service
//! account is bound to a role what the SDKs' container-credentials provider needs — a
//! projected service-account token (audience `pods.eks.amazonaws.com`) and
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` / `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, with
//! the names, paths and address EKS Pod Identity uses. A pod that sets either variable
//! itself, or already has the volume, is left alone. The webhook fails open and rides on
//! the controller's webhook server.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

use crate::targets::webhook::{admission_request, review_response, with_patch};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tracing::{debug, warn};

use super::agent::resolve::{BindingInfo, IRSA_ROLE_ANNOTATION, binding_selects};
use crate::crd::IamRoleBinding;

pub const FULL_URI_ENV: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
pub const TOKEN_FILE_ENV: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
/// EKS Pod Identity's address; every SDK allows plain HTTP to it.
pub const DEFAULT_FULL_URI: &str = "http://169.254.170.23/v1/credentials";
pub const TOKEN_VOLUME: &str = "eks-pod-identity-token";
pub const TOKEN_MOUNT_DIR: &str = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";
pub const TOKEN_FILE: &str = "eks-pod-identity-token";
pub const PATH: &str = "/mutate-v1-pod-identity";
pub const WEBHOOK_NAME: &str = "pod-identity.causeway.dev";
/// A namespace labelled `causeway.dev/pod-identity-inject=disabled` is never injected.
pub const OPT_OUT_LABEL: &str = "causeway.dev/pod-identity-inject";

/// What the webhook injects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectSettings {
    pub audience: String,
    /// The projected token's lifetime (the kubelet rotates it at 80 %).
    pub expiration_seconds: i64,
    pub full_uri: String,
}

impl Default for InjectSettings {
    fn default() -> Self {
        InjectSettings {
            audience: super::agent::token::POD_IDENTITY_AUDIENCE.to_string(),
            expiration_seconds: 86_400,
            full_uri: DEFAULT_FULL_URI.to_string(),
        }
    }
}

/// Pure: whether a pod in a namespace with `bindings` and a ServiceAccount annotated with
/// `service_account_role` is bound to a role on the token path.
pub fn bound(pod: &Pod, bindings: &[BindingInfo], service_account_role: Option<&str>) -> bool {
    if service_account_role.is_some_and(|r| !r.trim().is_empty()) {
        return true;
    }
    let info = super::agent::resolve::PodInfo {
        service_account: service_account(pod).to_string(),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        ..Default::default()
    };
    bindings.iter().any(|b| binding_selects(b, &info))
}

fn service_account(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
}

/// Pure: the JSON patch adding the token volume, the variables and the mount to every
/// container and init container, or `None` when the pod already takes care of it.
pub fn injection_patch(pod: &Pod, settings: &InjectSettings) -> Option<serde_json::Value> {
    let spec = pod.spec.as_ref()?;
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let sets_itself = containers.clone().any(|c| {
        c.env
            .iter()
            .flatten()
            .any(|e| e.name == FULL_URI_ENV || e.name == TOKEN_FILE_ENV)
    });
    let has_volume = spec
        .volumes
        .iter()
        .flatten()
        .any(|v| v.name == TOKEN_VOLUME);
    if sets_itself || has_volume {
        return None;
    }
    let mut ops = Vec::new();
    let volume = serde_json::json!({
        "name": TOKEN_VOLUME,
        "projected": {"sources": [{"serviceAccountToken": {
            "audience": settings.audience,
            "expirationSeconds": settings.expiration_seconds,
            "path": TOKEN_FILE,
        }}]}
    });
    if spec.volumes.is_some() {
        ops.push(serde_json::json!({"op": "add", "path": "/spec/volumes/-", "value": volume}));
    } else {
        ops.push(serde_json::json!({"op": "add", "path": "/spec/volumes", "value": [volume]}));
    }
    let env = [
        serde_json::json!({"name": FULL_URI_ENV, "value": settings.full_uri}),
        serde_json::json!({"name": TOKEN_FILE_ENV, "value": format!("{TOKEN_MOUNT_DIR}/{TOKEN_FILE}")}),
    ];
    let mount =
        serde_json::json!({"name": TOKEN_VOLUME, "mountPath": TOKEN_MOUNT_DIR, "readOnly": true});
    let lists = [
        ("containers", Some(&spec.containers)),
        ("initContainers", spec.init_containers.as_ref()),
    ];
    for (list, items) in lists {
        for (i, c) in items.into_iter().flatten().enumerate() {
            let base = format!("/spec/{list}/{i}");
            if c.env.is_some() {
                for e in &env {
                    ops.push(serde_json::json!({"op": "add", "path": format!("{base}/env/-"), "value": e}));
                }
            } else {
                ops.push(
                    serde_json::json!({"op": "add", "path": format!("{base}/env"), "value": env}),
                );
            }
            if c.volume_mounts.is_some() {
                ops.push(serde_json::json!({"op": "add", "path": format!("{base}/volumeMounts/-"), "value": mount}));
            } else {
                ops.push(serde_json::json!({"op": "add", "path": format!("{base}/volumeMounts"), "value": [mount]}));
            }
        }
    }
    Some(serde_json::Value::Array(ops))
}

/// The webhook's state: IamRoleBindings (from the controller's reflector) and a client
/// to read the pod's ServiceAccount when no binding selects the pod.
#[derive(Clone)]
pub struct PodIdentityWebhook {
    pub bindings: Store<IamRoleBinding>,
    pub client: Client,
    pub settings: InjectSettings,
}

impl PodIdentityWebhook {
    async fn review(&self, body: &[u8]) -> AdmissionReview<kube::core::DynamicObject> {
        let req: AdmissionRequest<Pod> = match admission_request(body) {
            Ok(r) => r,
            Err(review) => return *review,
        };
        let resp = AdmissionResponse::from(&req);
        let Some(pod) = req.object.as_ref() else {
            return resp.into_review();
        };
        let ns = req.namespace.clone().unwrap_or_default();
        let Some(patch) = injection_patch(pod, &self.settings) else {
            return resp.into_review();
        };
        if !self.is_bound(pod, &ns).await {
            return resp.into_review();
        }
        let (resp, patched) = with_patch(resp, patch, "pod identity");
        if patched {
            debug!(namespace = %ns, service_account = service_account(pod), "injecting the pod-identity token and environment");
        }
        resp.into_review()
    }

    /// Whether an IamRoleBinding of `ns` selects the pod or its ServiceAccount carries
    /// IRSA's annotation (read only when no binding does; a failed read means no).
    async fn is_bound(&self, pod: &Pod, ns: &str) -> bool {
        let bindings: Vec<BindingInfo> = self
            .bindings
            .state()
            .iter()
            .filter(|b| b.namespace().as_deref() == Some(ns))
            .map(|b| BindingInfo::from(b.as_ref()))
            .collect();
        if bound(pod, &bindings, None) {
            return true;
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        match api.get_metadata_opt(service_account(pod)).await {
            Ok(Some(sa)) => bound(
                pod,
                &[],
                sa.annotations()
                    .get(IRSA_ROLE_ANNOTATION)
                    .map(String::as_str),
            ),
            Ok(None) => false,
            Err(e) => {
                warn!(namespace = %ns, error = %e, "reading the pod's ServiceAccount failed; not injecting");
                false
            }
        }
    }
}

pub async fn mutate(State(st): State<PodIdentityWebhook>, body: Bytes) -> impl IntoResponse {
    review_response(&st.review(&body).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(sa: &str, env: Option<&str>) -> Pod {
        let env = env.map(|name| serde_json::json!([{"name": name, "value": "x"}]));
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"app": "web"}},
            "spec": {
                "serviceAccountName": sa,
                "initContainers": [{"name": "init", "image": "i"}],
                "containers": [
                    {"name": "app", "image": "a", "env": env.unwrap_or(serde_json::json!([]))},
                    {"name": "side", "image": "s", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}
                ],
                "volumes": [{"name": "data", "emptyDir": {}}]
            }
        }))
        .unwrap()
    }

    fn by_sa(sa: &str) -> BindingInfo {
        BindingInfo {
            name: "b".into(),
            role: "r".into(),
            service_account: Some(sa.into()),
            ..BindingInfo::default()
        }
    }

    #[test]
    fn pods_are_bound_by_a_binding_or_the_irsa_annotation() {
        let p = pod("checkout", None);
        assert!(bound(&p, &[by_sa("checkout")], None));
        assert!(!bound(&p, &[by_sa("other")], None));
        assert!(bound(&p, &[], Some("arn:aws:iam::1:role/r")));
        assert!(!bound(&p, &[], Some(" ")));
        assert!(!bound(&p, &[], None));
    }

    #[test]
    fn the_patch_adds_volume_env_and_mounts_that_apply_cleanly() {
        let p = pod("checkout", None);
        let patch = injection_patch(&p, &InjectSettings::default()).unwrap();
        let mut doc = serde_json::to_value(&p).unwrap();
        let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        let patched: Pod = serde_json::from_value(doc).unwrap();
        let spec = patched.spec.unwrap();
        let volume = spec
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == TOKEN_VOLUME)
            .unwrap();
        let token = volume.projected.unwrap().sources.unwrap()[0]
            .service_account_token
            .clone()
            .unwrap();
        assert_eq!(token.audience.as_deref(), Some("pods.eks.amazonaws.com"));
        assert_eq!(token.expiration_seconds, Some(86_400));
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let env = c.env.clone().unwrap();
            let get = |n: &str| {
                env.iter()
                    .find(|e| e.name == n)
                    .and_then(|e| e.value.clone())
            };
            assert_eq!(get(FULL_URI_ENV).as_deref(), Some(DEFAULT_FULL_URI));
            assert_eq!(
                get(TOKEN_FILE_ENV).as_deref(),
                Some(
                    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
                )
            );
            assert!(
                c.volume_mounts
                    .iter()
                    .flatten()
                    .any(|m| m.name == TOKEN_VOLUME && m.read_only == Some(true))
            );
        }
    }

    #[test]
    fn a_pod_that_sets_the_variables_itself_is_left_alone() {
        for name in [FULL_URI_ENV, TOKEN_FILE_ENV] {
            assert_eq!(
                injection_patch(&pod("checkout", Some(name)), &InjectSettings::default()),
                None
            );
        }
    }
}
