//! Server-side apply with our one field manager.
//!
//! Everything we write to Kubernetes goes through here so that field ownership is always
//! attributed to `causeway`, and so `kubectl` edits to fields we manage are taken back on
//! the next reconcile (`force`).

use std::fmt::Debug;

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::FIELD_MANAGER;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("object to apply has no name")]
    MissingName,
    #[error("failed to serialize {kind} {name}: {source}")]
    Serialize {
        kind: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("server-side apply of {kind} {name} failed: {source}")]
    Apply {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Patch parameters for a forced server-side apply as `causeway`.
pub fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Applies `obj` (a desired object built from scratch, with apiVersion and kind).
///
/// `metadata.managedFields` is stripped because the apiserver rejects an apply that
/// carries it, which would otherwise bite callers that start from a fetched object.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let name = obj.meta().name.clone().ok_or(ApplyError::MissingName)?;
    let kind = K::kind(&()).into_owned();
    let mut body = serde_json::to_value(obj).map_err(|source| ApplyError::Serialize {
        kind: kind.clone(),
        name: name.clone(),
        source,
    })?;
    if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    api.patch(&name, &apply_params(), &Patch::Apply(&body))
        .await
        .map_err(|source| ApplyError::Apply { kind, name, source })
}

/// The apply body for the status subresource: only the fields we own.
pub fn status_patch<K>(status: &impl Serialize) -> Result<Value, serde_json::Error>
where
    K: Resource<DynamicType = ()>,
{
    Ok(json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": serde_json::to_value(status)?,
    }))
}

/// Applies `status` to the status subresource of `name`.
///
/// Callers compute the status purely and call this only when it changed.
pub async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    status: &impl Serialize,
) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let kind = K::kind(&()).into_owned();
    let body = status_patch::<K>(status).map_err(|source| ApplyError::Serialize {
        kind: kind.clone(),
        name: name.to_owned(),
        source,
    })?;
    api.patch_status(name, &apply_params(), &Patch::Apply(&body))
        .await
        .map_err(|source| ApplyError::Apply {
            kind,
            name: name.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::{
        Ingress, IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressStatus,
    };

    #[test]
    fn params_force_our_field_manager() {
        let params = apply_params();
        assert_eq!(params.field_manager.as_deref(), Some("causeway"));
        assert!(params.force);
    }

    #[test]
    fn status_patch_carries_type_meta() {
        let status = IngressStatus {
            load_balancer: Some(IngressLoadBalancerStatus {
                ingress: Some(vec![IngressLoadBalancerIngress {
                    hostname: Some("k8s-web-123.eu-west-1.elb.amazonaws.com".into()),
                    ..Default::default()
                }]),
            }),
        };
        let patch = status_patch::<Ingress>(&status).unwrap();
        assert_eq!(patch["apiVersion"], "networking.k8s.io/v1");
        assert_eq!(patch["kind"], "Ingress");
        assert_eq!(
            patch["status"]["loadBalancer"]["ingress"][0]["hostname"],
            "k8s-web-123.eu-west-1.elb.amazonaws.com"
        );
        assert!(patch.get("metadata").is_none());
    }
}
