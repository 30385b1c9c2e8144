//! Finalizer names and guarded add/remove helpers.
//!
//! Most reconcilers should use [`finalizer`] (kube-runtime's helper, re-exported) which
//! turns "being deleted" into an [`FinalizerEvent::Cleanup`]. The add/remove helpers are
//! for the few places that need to manage the finalizer outside that shape. Both patch
//! with a JSON-patch `test` on the current finalizer list, so a concurrent writer makes
//! the patch fail (and the reconcile retry) instead of being overwritten.

use std::fmt::Debug;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Guards the AWS resources behind an Ingress or IngressGroup member.
pub const ALB_FINALIZER: &str = "causeway.dev/alb";
/// Guards target registrations behind a TargetGroupBinding.
pub const TARGETS_FINALIZER: &str = "causeway.dev/targets";
/// On Services whose NLB we made: the peer's finalizer, so either controller can clean up.
pub const NLB_FINALIZER: &str = "service.k8s.aws/resources";
/// aws-load-balancer-controller's TargetGroupBinding finalizer: released with ours once an
/// adopted binding's targets are deregistered (the peer is not running to release it).
pub const LBC_TGB_FINALIZER: &str = "elbv2.k8s.aws/resources";
/// aws-load-balancer-controller's Ingress finalizers: `ingress.k8s.aws/resources` on an
/// Ingress of its own group, `group.ingress.k8s.aws/<group>` on a member of a named group.
pub fn is_lbc_ingress_finalizer(f: &str) -> bool {
    f == LBC_INGRESS_FINALIZER || f.starts_with("group.ingress.k8s.aws/")
}
/// Finalizer names the tests patch with.
#[cfg(test)]
const DNS_FINALIZER: &str = "causeway.dev/dns";
#[cfg(test)]
const FINALIZER: &str = "causeway.dev/finalizer";
/// aws-load-balancer-controller's Ingress finalizer.
const LBC_INGRESS_FINALIZER: &str = "ingress.k8s.aws/resources";

#[derive(Debug, thiserror::Error)]
pub enum FinalizerError {
    #[error("object has no name")]
    MissingName,
    #[error("failed to build the finalizer patch: {0}")]
    BuildPatch(#[source] serde_json::Error),
    #[error("failed to patch finalizers of {name}: {source}")]
    Patch {
        name: String,
        #[source]
        source: kube::Error,
    },
}

pub fn has_finalizer<K: Resource>(obj: &K, finalizer: &str) -> bool {
    obj.finalizers().iter().any(|f| f == finalizer)
}

/// The JSON patch that adds `finalizer`, or `None` when it is already present.
pub fn add_patch(current: &[String], finalizer: &str) -> Option<Value> {
    if current.iter().any(|f| f == finalizer) {
        return None;
    }
    Some(if current.is_empty() {
        // An empty list is omitted by the apiserver, so test for its absence.
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [finalizer] },
        ])
    } else {
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": current },
            { "op": "add", "path": "/metadata/finalizers/-", "value": finalizer },
        ])
    })
}

/// The JSON patch that removes `finalizer`, or `None` when it is absent.
pub fn remove_patch(current: &[String], finalizer: &str) -> Option<Value> {
    let index = current.iter().position(|f| f == finalizer)?;
    let path = format!("/metadata/finalizers/{index}");
    Some(json!([
        { "op": "test", "path": path, "value": finalizer },
        { "op": "remove", "path": path },
    ]))
}

/// Adds `finalizer` to `obj`; returns the updated object, or `None` if nothing changed.
pub async fn add_finalizer<K>(
    api: &Api<K>,
    obj: &K,
    finalizer: &str,
) -> Result<Option<K>, FinalizerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match add_patch(obj.finalizers(), finalizer) {
        Some(patch) => json_patch(api, obj, patch).await.map(Some),
        None => Ok(None),
    }
}

/// Removes `finalizer` from `obj`; returns the updated object, or `None` if nothing changed.
pub async fn remove_finalizer<K>(
    api: &Api<K>,
    obj: &K,
    finalizer: &str,
) -> Result<Option<K>, FinalizerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match remove_patch(obj.finalizers(), finalizer) {
        Some(patch) => json_patch(api, obj, patch).await.map(Some),
        None => Ok(None),
    }
}

/// The patch that drops every finalizer `drop` selects, or `None` when none is there. One
/// patch for all of them, guarded by a `test` of the whole current list.
pub fn remove_all_patch(current: &[String], drop: impl Fn(&str) -> bool) -> Option<Value> {
    let kept: Vec<&String> = current.iter().filter(|f| !drop(f)).collect();
    if kept.len() == current.len() {
        return None;
    }
    Some(json!([
        { "op": "test", "path": "/metadata/finalizers", "value": current },
        { "op": "replace", "path": "/metadata/finalizers", "value": kept },
    ]))
}

/// Removes every finalizer `drop` selects from `obj`; `None` if none was there.
pub async fn remove_finalizers<K>(
    api: &Api<K>,
    obj: &K,
    drop: impl Fn(&str) -> bool,
) -> Result<Option<K>, FinalizerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match remove_all_patch(obj.finalizers(), drop) {
        Some(patch) => json_patch(api, obj, patch).await.map(Some),
        None => Ok(None),
    }
}

async fn json_patch<K>(api: &Api<K>, obj: &K, patch: Value) -> Result<K, FinalizerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let name = obj.meta().name.clone().ok_or(FinalizerError::MissingName)?;
    // kube re-exports no json-patch type; deserializing lets the compiler infer it.
    let patch: Patch<()> =
        Patch::Json(serde_json::from_value(patch).map_err(FinalizerError::BuildPatch)?);
    api.patch(&name, &PatchParams::default(), &patch)
        .await
        .map_err(|source| FinalizerError::Patch { name, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn owned(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn add_to_empty_list_tests_for_absence() {
        let patch = add_patch(&[], ALB_FINALIZER).unwrap();
        assert_eq!(
            patch,
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": null },
                { "op": "add", "path": "/metadata/finalizers", "value": ["causeway.dev/alb"] },
            ])
        );
    }

    #[test]
    fn add_appends_after_testing_the_current_list() {
        let current = owned(&[LBC_INGRESS_FINALIZER]);
        let patch = add_patch(&current, DNS_FINALIZER).unwrap();
        assert_eq!(patch[0]["value"], json!(["ingress.k8s.aws/resources"]));
        assert_eq!(patch[1]["path"], "/metadata/finalizers/-");
        assert!(add_patch(&owned(&[DNS_FINALIZER]), DNS_FINALIZER).is_none());
    }

    #[test]
    fn remove_targets_the_exact_index() {
        let current = owned(&["other", TARGETS_FINALIZER]);
        let patch = remove_patch(&current, TARGETS_FINALIZER).unwrap();
        assert_eq!(
            patch,
            json!([
                { "op": "test", "path": "/metadata/finalizers/1", "value": "causeway.dev/targets" },
                { "op": "remove", "path": "/metadata/finalizers/1" },
            ])
        );
        assert!(remove_patch(&current, ALB_FINALIZER).is_none());
    }

    #[test]
    fn remove_all_drops_ours_and_the_peers_in_one_guarded_patch() {
        let current = owned(&[
            ALB_FINALIZER,
            "other",
            LBC_INGRESS_FINALIZER,
            "group.ingress.k8s.aws/g",
        ]);
        let patch = remove_all_patch(&current, |f| {
            f == ALB_FINALIZER || is_lbc_ingress_finalizer(f)
        })
        .unwrap();
        assert_eq!(
            patch,
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": current },
                { "op": "replace", "path": "/metadata/finalizers", "value": ["other"] },
            ])
        );
        assert!(remove_all_patch(&owned(&["other"]), is_lbc_ingress_finalizer).is_none());
    }

    #[test]
    fn patches_parse_as_json_patches() {
        let patch = add_patch(&[], FINALIZER).unwrap();
        let parsed: Patch<()> = Patch::Json(serde_json::from_value(patch).unwrap());
        assert!(matches!(parsed, Patch::Json(_)));
    }

    #[test]
    fn has_finalizer_reads_metadata() {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                finalizers: Some(owned(&[ALB_FINALIZER])),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        assert!(has_finalizer(&cm, ALB_FINALIZER));
        assert!(!has_finalizer(&cm, DNS_FINALIZER));
    }
}
