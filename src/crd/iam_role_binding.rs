//! `IamRoleBinding` (`causeway.dev/v1alpha1`): which pods get credentials for which IAM role.
//!
//! It replaces kube2iam's per-pod `iam.amazonaws.com/role` and `iam.amazonaws.com/external-id`
//! annotations with one object per namespace that the node agent can index, and whose status
//! says whether the role resolved.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A role name (optionally with a path), as kube2iam's annotation takes it, or a full role ARN.
pub const ROLE_PATTERN: &str = concat!(
    "^(?:",
    iam_role_arn!(),
    r"|(?:[A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64})$"
);

/// The characters STS accepts in an external ID.
pub const EXTERNAL_ID_PATTERN: &str = r"^[A-Za-z0-9_+=,.@:/-]+$";

/// A binding that selects no pods is a mistake, not a no-op.
pub const SELECTS_PODS_RULE: &str = "has(self.serviceAccountName) || has(self.podSelector)";

/// A target external ID without a target role would be silently ignored.
pub const TARGET_EXTERNAL_ID_RULE: &str = "!has(self.targetExternalID) || has(self.targetRoleArn)";

/// The shortest role session STS issues, in seconds.
pub const MIN_SESSION_SECONDS: i32 = 900;

/// The longest role session STS issues (for roles that allow it), in seconds.
pub const MAX_SESSION_SECONDS: i32 = 43_200;

/// Gives the pods selected here credentials for an IAM role.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "causeway.dev",
    version = "v1alpha1",
    kind = "IamRoleBinding",
    plural = "iamrolebindings",
    singular = "iamrolebinding",
    shortname = "irb",
    category = "causeway",
    namespaced,
    status = "IamRoleBindingStatus",
    derive = "PartialEq",
    doc = "IamRoleBinding gives the pods it selects, in its namespace, credentials for an IAM role.",
    printcolumn(
        name = "ROLE",
        type_ = "string",
        json_path = ".spec.role",
        description = "The IAM role, by name or ARN"
    ),
    printcolumn(
        name = "SERVICE-ACCOUNT",
        type_ = "string",
        json_path = ".spec.serviceAccountName",
        description = "Pods running as this service account are bound"
    ),
    printcolumn(
        name = "ROLE-ARN",
        type_ = "string",
        json_path = ".status.roleArn",
        description = "The role's resolved ARN",
        priority = 1
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#,
        description = "Whether credentials for the role can be issued"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(SELECTS_PODS_RULE).message("set serviceAccountName, podSelector, or both"),
    validation = Rule::new(TARGET_EXTERNAL_ID_RULE).message("targetExternalID needs targetRoleArn")
)]
pub struct IamRoleBindingSpec {
    /// The role: a name in the cluster's account (as kube2iam's iam.amazonaws.com/role
    /// annotation takes it), or a full role ARN.
    #[schemars(regex(pattern = ROLE_PATTERN), length(min = 1, max = 2048))]
    pub role: String,

    /// The external ID to present when assuming the role, if its trust policy demands one.
    #[serde(
        rename = "externalID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(pattern = EXTERNAL_ID_PATTERN), length(min = 2, max = 1224))]
    pub external_id: Option<String>,

    /// How long each set of credentials lasts, in seconds (900 to 43200, within the role's
    /// maximum session duration). STS's default, one hour, when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_SESSION_SECONDS, max = MAX_SESSION_SECONDS))]
    pub session_duration: Option<i32>,

    /// Binds pods that run as this service account. With podSelector too, a pod must match
    /// both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(
            pattern = r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$"
        ),
        length(min = 1, max = 253)
    )]
    pub service_account_name: Option<String>,

    /// Binds pods whose labels match. With serviceAccountName too, a pod must match both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,

    /// Cross-account access, as EKS Pod Identity's target role: after assuming `role`, the
    /// agent assumes this role (a full ARN, usually in another account) with its credentials,
    /// and serves the pod the target role's. Chained sessions last at most an hour (an STS
    /// limit); the agent refreshes them ahead of expiry like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TARGET_ROLE_PATTERN), length(min = 1, max = 2048))]
    pub target_role_arn: Option<String>,

    /// The external ID to present when assuming `targetRoleArn`.
    #[serde(
        rename = "targetExternalID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(pattern = EXTERNAL_ID_PATTERN), length(min = 2, max = 1224))]
    pub target_external_id: Option<String>,

    /// On the token path, assume the role without EKS Pod Identity's session tags (for a
    /// role whose trust policy cannot allow `sts:TagSession`, or whose policies leave no
    /// room for them). The metadata path never tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_session_tags: Option<bool>,
}

/// A full role ARN (a target role is always named by ARN).
pub const TARGET_ROLE_PATTERN: &str = concat!("^", iam_role_arn!(), "$");

/// The observed state of an IamRoleBinding.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IamRoleBindingStatus {
    /// The generation the controller last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The role's full ARN, resolved from spec.role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,

    /// Ready, and the reasons it is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;
    use crate::crd::schema_test_util::{assert_pattern, node, round_trip, rules};

    const MANIFEST: &str = r#"
apiVersion: causeway.dev/v1alpha1
kind: IamRoleBinding
metadata:
  name: uploader
  namespace: media
spec:
  role: arn:aws:iam::123456789012:role/service/uploader
  externalID: media-cluster
  sessionDuration: 3600
  serviceAccountName: uploader
  podSelector:
    matchLabels:
      app: uploader
"#;

    #[test]
    fn manifest_deserializes() {
        let binding: IamRoleBinding = round_trip(MANIFEST);
        assert_eq!(
            binding.spec.role,
            "arn:aws:iam::123456789012:role/service/uploader"
        );
        assert_eq!(binding.spec.external_id.as_deref(), Some("media-cluster"));
        assert_eq!(binding.spec.session_duration, Some(3600));
        assert_eq!(
            binding.spec.service_account_name.as_deref(),
            Some("uploader")
        );
        assert!(binding.spec.pod_selector.is_some());
    }

    #[test]
    fn schema_requires_a_pod_selection() {
        let crd = IamRoleBinding::crd();
        let spec = node(&crd, "spec");
        assert_eq!(rules(spec), [SELECTS_PODS_RULE, TARGET_EXTERNAL_ID_RULE]);
        let message = spec
            .x_kubernetes_validations
            .iter()
            .flatten()
            .next()
            .and_then(|r| r.message.clone());
        assert_eq!(
            message.as_deref(),
            Some("set serviceAccountName, podSelector, or both")
        );
        assert_eq!(spec.required.as_deref(), Some(&["role".to_string()][..]));
    }

    #[test]
    fn role_takes_a_name_or_an_arn_as_kube2iam_did() {
        let crd = IamRoleBinding::crd();
        assert_pattern(
            &crd,
            "spec.role",
            &[
                "uploader",
                "service/uploader",
                "arn:aws:iam::123456789012:role/uploader",
                "arn:aws:iam::123456789012:role/service/uploader",
                "arn:aws-cn:iam::123456789012:role/uploader",
            ],
            &[
                "",
                "up loader",
                "arn:aws:iam::1234:role/uploader",
                "arn:aws:iam::123456789012:user/uploader",
                "arn:aws:s3:::bucket",
            ],
        );
        assert_pattern(
            &crd,
            "spec.externalID",
            &["media-cluster", "a:b/c@d"],
            &["has space"],
        );
        assert_pattern(
            &crd,
            "spec.serviceAccountName",
            &["uploader", "my.sa-1"],
            &["Uploader", "-sa", "sa_1"],
        );
        // A target role is always an ARN.
        assert_pattern(
            &crd,
            "spec.targetRoleArn",
            &["arn:aws:iam::210987654321:role/shared/reader"],
            &["reader", "arn:aws:iam::1:role/reader"],
        );
        assert_pattern(&crd, "spec.targetExternalID", &["ext-123"], &["has space"]);
    }

    #[test]
    fn schema_bounds_role_and_session() {
        let crd = IamRoleBinding::crd();
        let role = node(&crd, "spec.role");
        assert_eq!(role.pattern.as_deref(), Some(ROLE_PATTERN));
        assert!(ROLE_PATTERN.contains(r"iam::[0-9]{12}:role/"));
        let session = node(&crd, "spec.sessionDuration");
        assert_eq!(
            (session.minimum, session.maximum),
            (Some(900.0), Some(43200.0))
        );
        let external_id = node(&crd, "spec.externalID");
        assert_eq!(
            (external_id.min_length, external_id.max_length),
            (Some(2), Some(1224))
        );
        assert_eq!(
            node(&crd, "status.roleArn").type_.as_deref(),
            Some("string")
        );
    }
}
