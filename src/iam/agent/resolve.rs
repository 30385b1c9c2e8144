//! Pure: which role a pod gets, or precisely why it gets none.
//!
//! Inputs are the pod (as the index keeps it), its namespace's `allowed-roles`
//! annotation and the namespace's IamRoleBindings. Nothing here does I/O, so every
//! denial path is unit- and property-tested.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::iam::role::RoleRef;
use crate::k8s::selector;

pub const ROLE_ANNOTATION: &str = "iam.amazonaws.com/role";
pub const EXTERNAL_ID_ANNOTATION: &str = "iam.amazonaws.com/external-id";
pub const ALLOWED_ROLES_ANNOTATION: &str = "iam.amazonaws.com/allowed-roles";
/// IRSA's ServiceAccount annotation; honoured on the token path, as EKS would.
pub const IRSA_ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// What the agent keeps of a pod: enough to resolve and to name it, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodInfo {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
    pub role_annotation: Option<String>,
    pub external_id_annotation: Option<String>,
    pub host_network: bool,
    pub ips: Vec<std::net::IpAddr>,
    pub phase: Option<String>,
    /// A container asks the container-credentials endpoint (its environment names
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`): its session is the token path's, tags included.
    pub token_path: bool,
}

impl PodInfo {
    /// Succeeded and Failed pods have released their sandbox, and with it their IP.
    pub fn is_live(&self) -> bool {
        !matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// An IamRoleBinding reduced to what matching needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BindingInfo {
    pub name: String,
    pub role: String,
    pub external_id: Option<String>,
    pub session_duration: Option<i32>,
    pub service_account: Option<String>,
    pub pod_selector: Option<LabelSelector>,
    /// Assumed with the role's credentials; its credentials are served.
    pub target: Option<Chained>,
    pub disable_session_tags: bool,
}

/// A second role assumed with the first one's credentials (cross-account access).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Chained {
    pub role_arn: String,
    pub external_id: Option<String>,
}

/// Cluster-wide settings that shape resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `arn:<partition>:iam::<account>:role/`, prefixed to bare role names.
    pub base_arn: String,
    /// Enforce namespaces' `iam.amazonaws.com/allowed-roles`.
    pub enforce_allowed_roles: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Annotation,
    Binding(String),
    /// The ServiceAccount's `eks.amazonaws.com/role-arn` (token path only).
    ServiceAccount(String),
    Default,
}

/// The role a pod is entitled to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub role_arn: String,
    /// The last path segment: what `security-credentials/` lists, as EC2 does.
    pub role_name: String,
    pub external_id: Option<String>,
    pub session_duration: Option<i32>,
    pub source: Source,
    /// The binding's target role, if it chains to one.
    pub target: Option<Chained>,
    /// The token path may tag this role's sessions.
    pub session_tags: bool,
}

/// Why a request gets no credentials. Each maps to one HTTP status and, when the
/// pod's own configuration is at fault, an Event reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("no pod on this node has IP {0}")]
    UnknownPod(String),
    #[error("IP {ip} is claimed by more than one live pod: {pods:?}")]
    IpConflict { ip: String, pods: Vec<String> },
    #[error("hostNetwork pods share the node's IP and get no credentials (no default role)")]
    HostNetwork,
    #[error("pod is not bound to a role (no {ROLE_ANNOTATION} annotation, no IamRoleBinding)")]
    NotBound,
    #[error("invalid role in {source_name}: {reason}")]
    InvalidRole { source_name: String, reason: String },
    #[error("invalid {EXTERNAL_ID_ANNOTATION} annotation: {0:?}")]
    InvalidExternalId(String),
    #[error("IamRoleBindings {0:?} select this pod with different roles")]
    AmbiguousBindings(Vec<String>),
    #[error("namespace annotation {ALLOWED_ROLES_ANNOTATION} is not a JSON array of strings: {0}")]
    InvalidAllowedRoles(String),
    #[error("role {0} is not in the namespace's {ALLOWED_ROLES_ANNOTATION}")]
    RoleNotAllowed(String),
    #[error(
        "role {0} is not allowed: the namespace has no {ALLOWED_ROLES_ANNOTATION} annotation, and with namespace restrictions on only its IamRoleBindings grant roles there"
    )]
    NoAllowedRoles(String),
    #[error("pod is bound to role {bound:?}, not {requested:?}")]
    WrongRole { bound: String, requested: String },
    #[error("the token's pod {0} is not a live pod on this node")]
    PodNotOnNode(String),
    #[error("the request from {source_ip} (pod {source_pod}) carries the token of pod {token_pod}")]
    ForeignToken {
        source_ip: String,
        source_pod: String,
        token_pod: String,
    },
}

impl Denial {
    /// 404: nothing to serve; 409: ambiguous identity; 403: policy forbids;
    /// 422: the pod's or namespace's configuration cannot be understood.
    pub fn status(&self) -> u16 {
        match self {
            Denial::UnknownPod(_) | Denial::NotBound => 404,
            Denial::PodNotOnNode(_) | Denial::ForeignToken { .. } => 403,
            Denial::IpConflict { .. } => 409,
            Denial::HostNetwork
            | Denial::RoleNotAllowed(_)
            | Denial::NoAllowedRoles(_)
            | Denial::WrongRole { .. } => 403,
            Denial::InvalidRole { .. }
            | Denial::InvalidExternalId(_)
            | Denial::AmbiguousBindings(_)
            | Denial::InvalidAllowedRoles(_) => 422,
        }
    }

    /// The Event reason when the pod's (or its namespace's) configuration is the cause.
    pub fn event_reason(&self) -> Option<&'static str> {
        match self {
            Denial::InvalidRole { .. } => Some("InvalidIamRole"),
            Denial::InvalidExternalId(_) => Some("InvalidIamExternalId"),
            Denial::AmbiguousBindings(_) => Some("AmbiguousIamRoleBindings"),
            Denial::InvalidAllowedRoles(_) => Some("InvalidAllowedRoles"),
            Denial::RoleNotAllowed(_) | Denial::NoAllowedRoles(_) => Some("IamRoleNotAllowed"),
            Denial::WrongRole { .. } => Some("WrongIamRoleRequested"),
            Denial::IpConflict { .. } => Some("PodIpConflict"),
            Denial::ForeignToken { .. } => Some("ForeignServiceAccountToken"),
            Denial::UnknownPod(_)
            | Denial::HostNetwork
            | Denial::NotBound
            | Denial::PodNotOnNode(_) => None,
        }
    }

    /// Short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Denial::UnknownPod(_) => "unknown_pod",
            Denial::IpConflict { .. } => "ip_conflict",
            Denial::HostNetwork => "host_network",
            Denial::NotBound => "not_bound",
            Denial::InvalidRole { .. } => "invalid_role",
            Denial::InvalidExternalId(_) => "invalid_external_id",
            Denial::AmbiguousBindings(_) => "ambiguous_bindings",
            Denial::InvalidAllowedRoles(_) => "invalid_allowed_roles",
            Denial::RoleNotAllowed(_) => "role_not_allowed",
            Denial::NoAllowedRoles(_) => "no_allowed_roles",
            Denial::WrongRole { .. } => "wrong_role",
            Denial::PodNotOnNode(_) => "pod_not_on_node",
            Denial::ForeignToken { .. } => "foreign_token",
        }
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// A role as written (name, `path/name`, or ARN) → (ARN, name).
pub fn role_arn(raw: &str, base_arn: &str) -> Result<(String, String), String> {
    let raw = raw.trim();
    if raw.starts_with("arn:") {
        let parsed = RoleRef::parse(raw).map_err(|e| e.to_string())?;
        return Ok((raw.to_string(), parsed.name().to_string()));
    }
    let path = raw.trim_start_matches('/');
    if path.is_empty() {
        return Err("role is empty".into());
    }
    if path.len() > 512 || !path.split('/').all(valid_segment) {
        return Err(format!(
            "`{raw}` is not a valid IAM role name or path (segments of 1-64 of A-Z a-z 0-9 +=,.@_-)"
        ));
    }
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    Ok((format!("{base_arn}{path}"), name))
}

fn valid_external_id(s: &str) -> bool {
    (2..=1224).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
}

/// `*` matches any run of characters, `?` exactly one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Parses `allowed-roles` into full-ARN globs.
pub fn allowed_roles(raw: &str, base_arn: &str) -> Result<Vec<String>, Denial> {
    let globs: Vec<String> =
        serde_json::from_str(raw).map_err(|e| Denial::InvalidAllowedRoles(e.to_string()))?;
    Ok(globs
        .into_iter()
        .map(|g| {
            let g = g.trim().to_string();
            if g.starts_with("arn:") {
                g
            } else {
                format!("{base_arn}{}", g.trim_start_matches('/'))
            }
        })
        .collect())
}

impl From<&crate::crd::IamRoleBinding> for BindingInfo {
    fn from(b: &crate::crd::IamRoleBinding) -> Self {
        BindingInfo {
            name: kube::ResourceExt::name_any(b),
            role: b.spec.role.clone(),
            external_id: b.spec.external_id.clone(),
            session_duration: b.spec.session_duration,
            service_account: b.spec.service_account_name.clone(),
            pod_selector: b.spec.pod_selector.clone(),
            target: b.spec.target_role_arn.clone().map(|role_arn| Chained {
                role_arn,
                external_id: b.spec.target_external_id.clone(),
            }),
            disable_session_tags: b.spec.disable_session_tags.unwrap_or(false),
        }
    }
}

/// Whether binding `b` selects `pod` (by service account and/or pod selector).
pub fn binding_selects(b: &BindingInfo, pod: &PodInfo) -> bool {
    if b.service_account.is_none() && b.pod_selector.is_none() {
        return false;
    }
    b.service_account
        .as_ref()
        .is_none_or(|sa| *sa == pod.service_account)
        && b.pod_selector
            .as_ref()
            // An invalid selector selects no pod (fail closed).
            .is_none_or(|s| selector::matches(s, &pod.labels).unwrap_or(false))
}

/// The pod's role: its `iam.amazonaws.com/role` annotation (kube2iam's way) wins, then
/// the IamRoleBindings of its namespace that select it; then the namespace's
/// `allowed-roles` must admit the role.
pub fn resolve(
    pod: &PodInfo,
    namespace_allowed_roles: Option<&str>,
    bindings: &[BindingInfo],
    policy: &Policy,
) -> Result<Resolved, Denial> {
    let resolved = if let Some(raw) = pod.role_annotation.as_deref() {
        let (role_arn, role_name) =
            role_arn(raw, &policy.base_arn).map_err(|reason| Denial::InvalidRole {
                source_name: format!("annotation {ROLE_ANNOTATION}"),
                reason,
            })?;
        let external_id = match pod.external_id_annotation.as_deref().map(str::trim) {
            Some(id) if !valid_external_id(id) => {
                return Err(Denial::InvalidExternalId(id.to_string()));
            }
            other => other.map(str::to_string),
        };
        Resolved {
            role_arn,
            role_name,
            external_id,
            session_duration: None,
            source: Source::Annotation,
            target: None,
            session_tags: true,
        }
    } else {
        let mut matching: Vec<&BindingInfo> = bindings
            .iter()
            .filter(|b| binding_selects(b, pod))
            .collect();
        matching.sort_by(|a, b| a.name.cmp(&b.name));
        let Some(first) = matching.first() else {
            return Err(Denial::NotBound);
        };
        let source_name = format!("IamRoleBinding {}", first.name);
        let (role_arn, role_name) =
            role_arn(&first.role, &policy.base_arn).map_err(|reason| Denial::InvalidRole {
                source_name: source_name.clone(),
                reason,
            })?;
        for other in &matching[1..] {
            let same = self::role_arn(&other.role, &policy.base_arn)
                .is_ok_and(|(arn, _)| arn == role_arn)
                && other.external_id == first.external_id
                && other.target == first.target;
            if !same {
                return Err(Denial::AmbiguousBindings(
                    matching.iter().map(|b| b.name.clone()).collect(),
                ));
            }
        }
        Resolved {
            role_arn,
            role_name,
            external_id: first.external_id.clone(),
            session_duration: first.session_duration,
            source: Source::Binding(first.name.clone()),
            target: first.target.clone(),
            session_tags: !first.disable_session_tags,
        }
    };
    check_allowed(resolved, namespace_allowed_roles, policy)
}

/// The role of a pod that presented its own token: as [`resolve`], and when nothing else
/// binds it, its ServiceAccount's IRSA annotation `eks.amazonaws.com/role-arn` (a full
/// ARN), so IRSA manifests work unchanged. Like an IamRoleBinding, the annotation lives in
/// the namespace and counts as allowed there unless `allowed-roles` says otherwise.
pub fn resolve_with_service_account(
    pod: &PodInfo,
    namespace_allowed_roles: Option<&str>,
    bindings: &[BindingInfo],
    service_account_role: Option<&str>,
    policy: &Policy,
) -> Result<Resolved, Denial> {
    match resolve(pod, namespace_allowed_roles, bindings, policy) {
        Err(Denial::NotBound) => {}
        other => return other,
    }
    let Some(raw) = service_account_role else {
        return Err(Denial::NotBound);
    };
    let source_name = format!(
        "ServiceAccount {} annotation {IRSA_ROLE_ANNOTATION}",
        pod.service_account
    );
    if !raw.trim().starts_with("arn:") {
        return Err(Denial::InvalidRole {
            source_name,
            reason: format!("`{raw}` is not a role ARN"),
        });
    }
    let (role_arn, role_name) =
        role_arn(raw, &policy.base_arn).map_err(|reason| Denial::InvalidRole {
            source_name,
            reason,
        })?;
    let resolved = Resolved {
        role_arn,
        role_name,
        external_id: None,
        session_duration: None,
        source: Source::ServiceAccount(pod.service_account.clone()),
        target: None,
        session_tags: true,
    };
    check_allowed(resolved, namespace_allowed_roles, policy)
}

/// The namespace's allowed-roles admits `resolved`, or the denial saying why not.
///
/// With restrictions on, a namespace allows only what its annotation lists (as kube2iam
/// does: no annotation, no role), except that a role granted by one of the namespace's own
/// IamRoleBindings counts as allowed when the namespace has no annotation (whoever may
/// create bindings there has chosen the role). An annotation, when present, restricts
/// bindings too.
pub fn check_allowed(
    resolved: Resolved,
    namespace_allowed_roles: Option<&str>,
    policy: &Policy,
) -> Result<Resolved, Denial> {
    if !policy.enforce_allowed_roles {
        return Ok(resolved);
    }
    let Some(raw) = namespace_allowed_roles else {
        return match resolved.source {
            Source::Binding(_) | Source::ServiceAccount(_) => Ok(resolved),
            Source::Annotation | Source::Default => Err(Denial::NoAllowedRoles(resolved.role_arn)),
        };
    };
    let globs = allowed_roles(raw, &policy.base_arn)?;
    if globs.iter().any(|g| glob_match(g, &resolved.role_arn)) {
        Ok(resolved)
    } else {
        Err(Denial::RoleNotAllowed(resolved.role_arn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use proptest::prelude::*;

    const BASE: &str = "arn:aws:iam::123456789012:role/";
    /// A namespace that allows every role.
    const ANY: Option<&str> = Some(r#"["arn:*"]"#);

    fn policy() -> Policy {
        Policy {
            base_arn: BASE.into(),
            enforce_allowed_roles: true,
        }
    }

    fn pod() -> PodInfo {
        PodInfo {
            uid: "u1".into(),
            namespace: "media".into(),
            name: "uploader-0".into(),
            service_account: "uploader".into(),
            labels: [("app".to_string(), "uploader".to_string())].into(),
            ..PodInfo::default()
        }
    }

    fn binding(name: &str, role: &str) -> BindingInfo {
        BindingInfo {
            name: name.into(),
            role: role.into(),
            service_account: Some("uploader".into()),
            ..BindingInfo::default()
        }
    }

    #[test]
    fn annotation_name_becomes_an_arn() {
        let mut p = pod();
        p.role_annotation = Some("app".into());
        let r = resolve(&p, ANY, &[], &policy()).unwrap();
        assert_eq!(r.role_arn, format!("{BASE}app"));
        assert_eq!(r.role_name, "app");
        assert_eq!(r.source, Source::Annotation);
    }

    #[test]
    fn annotation_arn_and_path() {
        let mut p = pod();
        p.role_annotation = Some("arn:aws:iam::210987654321:role/team/app".into());
        p.external_id_annotation = Some("ext-1".into());
        let r = resolve(&p, ANY, &[], &policy()).unwrap();
        assert_eq!(r.role_arn, "arn:aws:iam::210987654321:role/team/app");
        assert_eq!(r.role_name, "app");
        assert_eq!(r.external_id.as_deref(), Some("ext-1"));
        p.role_annotation = Some("team/app".into());
        let r = resolve(&p, ANY, &[], &policy()).unwrap();
        assert_eq!(r.role_arn, format!("{BASE}team/app"));
    }

    #[test]
    fn annotation_beats_bindings() {
        let mut p = pod();
        p.role_annotation = Some("app".into());
        let r = resolve(&p, ANY, &[binding("b", "other")], &policy()).unwrap();
        assert_eq!(r.role_name, "app");
    }

    #[test]
    fn malformed_annotations_are_422() {
        let mut p = pod();
        for bad in ["", "has space", "arn:aws:iam::1:role/x", "a//b"] {
            p.role_annotation = Some(bad.into());
            let d = resolve(&p, None, &[], &policy()).unwrap_err();
            assert!(matches!(d, Denial::InvalidRole { .. }), "{bad}: {d}");
            assert_eq!(d.status(), 422);
            assert_eq!(d.event_reason(), Some("InvalidIamRole"));
        }
        p.role_annotation = Some("app".into());
        p.external_id_annotation = Some("no spaces allowed".into());
        let d = resolve(&p, None, &[], &policy()).unwrap_err();
        assert_eq!(d, Denial::InvalidExternalId("no spaces allowed".into()));
    }

    #[test]
    fn unbound_pod_is_404() {
        let d = resolve(&pod(), None, &[], &policy()).unwrap_err();
        assert_eq!(d, Denial::NotBound);
        assert_eq!(d.status(), 404);
        assert_eq!(d.event_reason(), None);
    }

    #[test]
    fn bindings_match_by_service_account_and_labels() {
        let by_sa = binding("by-sa", "app");
        let r = resolve(&pod(), None, std::slice::from_ref(&by_sa), &policy()).unwrap();
        assert_eq!(r.source, Source::Binding("by-sa".into()));

        let mut other_sa = by_sa.clone();
        other_sa.service_account = Some("someone-else".into());
        assert_eq!(
            resolve(&pod(), None, &[other_sa], &policy()),
            Err(Denial::NotBound)
        );

        let by_labels = BindingInfo {
            name: "by-labels".into(),
            role: "reader".into(),
            pod_selector: Some(LabelSelector {
                match_labels: Some([("app".to_string(), "uploader".to_string())].into()),
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                }]),
            }),
            ..BindingInfo::default()
        };
        let r = resolve(&pod(), None, std::slice::from_ref(&by_labels), &policy()).unwrap();
        assert_eq!(r.role_name, "reader");
        let mut tiered = pod();
        tiered.labels.insert("tier".into(), "web".into());
        assert_eq!(
            resolve(&tiered, None, &[by_labels], &policy()),
            Err(Denial::NotBound)
        );
    }

    #[test]
    fn an_invalid_pod_selector_selects_no_pod() {
        let bad = BindingInfo {
            name: "bad".into(),
            role: "reader".into(),
            pod_selector: Some(LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "app".into(),
                    operator: "Matches".into(),
                    values: Some(vec!["uploader".into()]),
                }]),
            }),
            ..BindingInfo::default()
        };
        assert_eq!(
            resolve(&pod(), None, &[bad], &policy()),
            Err(Denial::NotBound)
        );
    }

    #[test]
    fn empty_binding_selects_nothing() {
        let b = BindingInfo {
            name: "empty".into(),
            role: "app".into(),
            ..BindingInfo::default()
        };
        assert_eq!(
            resolve(&pod(), None, &[b], &policy()),
            Err(Denial::NotBound)
        );
    }

    #[test]
    fn conflicting_bindings_are_ambiguous_but_agreeing_ones_are_not() {
        let d = resolve(
            &pod(),
            None,
            &[binding("b", "writer"), binding("a", "reader")],
            &policy(),
        )
        .unwrap_err();
        assert_eq!(d, Denial::AmbiguousBindings(vec!["a".into(), "b".into()]));
        let same = resolve(
            &pod(),
            None,
            &[
                binding("a", "reader"),
                binding("b", &format!("{BASE}reader")),
            ],
            &policy(),
        )
        .unwrap();
        assert_eq!(same.source, Source::Binding("a".into()));
    }

    #[test]
    fn namespace_restriction() {
        let mut p = pod();
        p.role_annotation = Some("causeway-app".into());
        let allowed = r#"["causeway-app", "team/*"]"#;
        assert!(resolve(&p, Some(allowed), &[], &policy()).is_ok());
        p.role_annotation = Some("team/x".into());
        assert!(resolve(&p, Some(allowed), &[], &policy()).is_ok());
        p.role_annotation = Some("causeway-writer".into());
        let d = resolve(&p, Some(allowed), &[], &policy()).unwrap_err();
        assert_eq!(d, Denial::RoleNotAllowed(format!("{BASE}causeway-writer")));
        assert_eq!(d.status(), 403);
        // Full-ARN globs and the off switch.
        let arns = format!(r#"["{BASE}causeway-*"]"#);
        assert!(resolve(&p, Some(&arns), &[], &policy()).is_ok());
        let off = Policy {
            enforce_allowed_roles: false,
            ..policy()
        };
        assert!(resolve(&p, Some(allowed), &[], &off).is_ok());
        // An empty list allows nothing.
        assert!(resolve(&p, Some("[]"), &[], &policy()).is_err());
    }

    #[test]
    fn a_namespace_without_allowed_roles_allows_only_its_bindings() {
        let mut p = pod();
        p.role_annotation = Some("causeway-app".into());
        let d = resolve(&p, None, &[], &policy()).unwrap_err();
        assert_eq!(d, Denial::NoAllowedRoles(format!("{BASE}causeway-app")));
        assert_eq!(d.status(), 403);
        assert_eq!(d.event_reason(), Some("IamRoleNotAllowed"));
        assert!(d.to_string().contains(ALLOWED_ROLES_ANNOTATION), "{d}");
        // The namespace's own IamRoleBinding counts as allowed...
        let bound = resolve(&pod(), None, &[binding("b", "causeway-app")], &policy()).unwrap();
        assert_eq!(bound.source, Source::Binding("b".into()));
        // ...but an annotation, once there, restricts bindings too.
        let d = resolve(
            &pod(),
            Some(r#"["causeway-reader"]"#),
            &[binding("b", "causeway-app")],
            &policy(),
        )
        .unwrap_err();
        assert_eq!(d, Denial::RoleNotAllowed(format!("{BASE}causeway-app")));
        // With restrictions off, the annotation is all it takes.
        let off = Policy {
            enforce_allowed_roles: false,
            ..policy()
        };
        assert!(resolve(&p, None, &[], &off).is_ok());
    }

    #[test]
    fn a_binding_carries_its_target_role_and_its_tag_switch() {
        let target = Chained {
            role_arn: "arn:aws:iam::210987654321:role/shared-reader".into(),
            external_id: Some("ext-123".into()),
        };
        let b = BindingInfo {
            target: Some(target.clone()),
            disable_session_tags: true,
            ..binding("b", "causeway-app")
        };
        let r = resolve(&pod(), None, std::slice::from_ref(&b), &policy()).unwrap();
        assert_eq!(r.target, Some(target));
        assert!(!r.session_tags);
        // Two bindings that agree on the role but not on the target are ambiguous.
        let other = BindingInfo {
            name: "c".into(),
            target: None,
            ..b.clone()
        };
        let d = resolve(&pod(), None, &[b, other], &policy());
        assert!(matches!(d, Err(Denial::AmbiguousBindings(_))), "{d:?}");
        // Annotations and IRSA never chain, and may be tagged.
        let irsa = format!("{BASE}irsa-role");
        let r = resolve_with_service_account(&pod(), None, &[], Some(&irsa), &policy()).unwrap();
        assert_eq!((r.target, r.session_tags), (None, true));
    }

    #[test]
    fn the_irsa_annotation_binds_what_nothing_else_binds() {
        let irsa = format!("{BASE}irsa-role");
        let r = resolve_with_service_account(&pod(), None, &[], Some(&irsa), &policy()).unwrap();
        assert_eq!(r.role_arn, irsa);
        assert_eq!(r.role_name, "irsa-role");
        assert_eq!(r.source, Source::ServiceAccount("uploader".into()));
        // A binding wins over the annotation.
        let b = resolve_with_service_account(
            &pod(),
            None,
            &[binding("b", "causeway-app")],
            Some(&irsa),
            &policy(),
        )
        .unwrap();
        assert_eq!(b.source, Source::Binding("b".into()));
        // Nothing at all: not bound.
        assert_eq!(
            resolve_with_service_account(&pod(), None, &[], None, &policy()),
            Err(Denial::NotBound)
        );
        // IRSA takes ARNs only, and the namespace's allowed-roles still restricts it.
        let d = resolve_with_service_account(&pod(), None, &[], Some("bare-name"), &policy())
            .unwrap_err();
        assert_eq!(d.status(), 422);
        let d = resolve_with_service_account(
            &pod(),
            Some(r#"["causeway-*"]"#),
            &[],
            Some(&irsa),
            &policy(),
        )
        .unwrap_err();
        assert_eq!(d, Denial::RoleNotAllowed(irsa));
    }

    #[test]
    fn non_json_namespace_annotation_denies() {
        let mut p = pod();
        p.role_annotation = Some("app".into());
        let d = resolve(&p, Some("app,reader"), &[], &policy()).unwrap_err();
        assert!(matches!(d, Denial::InvalidAllowedRoles(_)), "{d}");
        assert_eq!(d.status(), 422);
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("a*d", "abc"));
        assert!(glob_match("*-reader", "team-reader"));
    }

    #[test]
    fn terminal_pods_are_not_live() {
        let mut p = pod();
        assert!(p.is_live());
        p.phase = Some("Running".into());
        assert!(p.is_live());
        for phase in ["Succeeded", "Failed"] {
            p.phase = Some(phase.into());
            assert!(!p.is_live());
        }
    }

    proptest! {
        #[test]
        fn resolve_never_panics(
            role in proptest::option::of(".{0,80}"),
            ext in proptest::option::of(".{0,20}"),
            allowed in proptest::option::of(".{0,40}"),
            brole in ".{0,40}",
        ) {
            let mut p = pod();
            p.role_annotation = role;
            p.external_id_annotation = ext;
            let _ = resolve(&p, allowed.as_deref(), &[binding("b", &brole)], &policy());
        }

        /// Whatever is granted is admitted by the namespace's globs and is a well-formed ARN.
        #[test]
        fn granted_roles_are_allowed(
            name in "[a-z]{1,8}(/[a-z]{1,8})?",
            globs in proptest::collection::vec("[a-z*?]{0,6}(/[a-z*]{0,4})?", 0..4),
        ) {
            let mut p = pod();
            p.role_annotation = Some(name.clone());
            let allowed = serde_json::to_string(&globs).unwrap();
            let full = |g: &String| format!("{BASE}{}", g.trim_start_matches('/'));
            match resolve(&p, Some(&allowed), &[], &policy()) {
                Ok(r) => {
                    prop_assert!(r.role_arn.starts_with(BASE));
                    prop_assert!(globs.iter().any(|g| glob_match(&full(g), &r.role_arn)));
                }
                Err(d) => {
                    prop_assert_eq!(d.clone(), Denial::RoleNotAllowed(format!("{BASE}{name}")));
                    let arn = format!("{BASE}{name}");
                    prop_assert!(!globs.iter().any(|g| glob_match(&full(g), &arn)));
                }
            }
        }

        /// A glob without wildcards matches exactly itself.
        #[test]
        fn literal_globs_are_equality(a in "[a-z/]{0,10}", b in "[a-z/]{0,10}") {
            prop_assert_eq!(glob_match(&a, &b), a == b);
        }

        /// A wrong role requested is never served: resolution is independent of the request.
        #[test]
        fn status_codes_are_client_errors(which in 0usize..11) {
            let all = [
                Denial::UnknownPod("1.2.3.4".into()),
                Denial::IpConflict { ip: "x".into(), pods: vec![] },
                Denial::HostNetwork,
                Denial::NotBound,
                Denial::InvalidRole { source_name: "s".into(), reason: "r".into() },
                Denial::InvalidExternalId("e".into()),
                Denial::AmbiguousBindings(vec![]),
                Denial::InvalidAllowedRoles("j".into()),
                Denial::RoleNotAllowed("r".into()),
                Denial::NoAllowedRoles("r".into()),
                Denial::WrongRole { bound: "a".into(), requested: "b".into() },
            ];
            let s = all[which].status();
            prop_assert!((400..500).contains(&s));
        }
    }
}
