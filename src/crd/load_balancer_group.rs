//! `LoadBalancerGroup` (`causeway.dev/v1alpha1`, cluster-scoped): causeway's per-IngressGroup
//! view. Ingress status has no conditions, so the group's ALB ARNs, DNS names, members, rule
//! count, readiness and per-member problems live here, where `kubectl get lbg` shows them.
//!
//! The controller owns these objects: it creates one per group it reconciles and deletes it
//! when the group's last member is gone and every AWS resource of the group is deleted.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which IngressGroup an object stands for.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "causeway.dev",
    version = "v1alpha1",
    kind = "LoadBalancerGroup",
    plural = "loadbalancergroups",
    singular = "loadbalancergroup",
    shortname = "lbg",
    category = "causeway",
    status = "LoadBalancerGroupStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "LoadBalancerGroup shows the state of one IngressGroup: its ALBs, members and readiness.",
    printcolumn(
        name = "ALB-ARN",
        type_ = "string",
        json_path = ".status.loadBalancers[0].arn",
        description = "The first ALB of the group",
        priority = 1
    ),
    printcolumn(
        name = "DNS-NAME",
        type_ = "string",
        json_path = ".status.loadBalancers[0].dnsName",
        description = "The DNS name of the first ALB of the group"
    ),
    printcolumn(
        name = "ALBS",
        type_ = "integer",
        json_path = ".status.loadBalancerCount",
        description = "ALBs the group is split onto"
    ),
    printcolumn(
        name = "MEMBERS",
        type_ = "integer",
        json_path = ".status.memberCount",
        description = "Accepted member Ingresses"
    ),
    printcolumn(
        name = "RULES",
        type_ = "integer",
        json_path = ".status.ruleCount",
        description = "Listener rules across the group's ALBs"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#,
        description = "Whether the group is fully realised in AWS"
    ),
    printcolumn(
        name = "REASON",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        description = "Why the group is or is not ready"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerGroupSpec {
    /// The group's identity: the `group.name` of its members, or `<namespace>/<name>` for an
    /// Ingress that is a group of one. It is the `ingress.k8s.aws/stack` tag of every AWS
    /// resource of the group.
    pub stack: String,

    /// The IngressClass controller name of the causeway instance that manages the group; other
    /// instances (other controller names) leave it alone.
    #[serde(default)]
    pub controller: String,

    /// What the stack comes from: `ingress` (an IngressGroup's ALBs, the default) or
    /// `service` (a Service's NLB, whose stack is `<namespace>/<name>`).
    #[serde(
        default,
        skip_serializing_if = "crate::aws::tags::StackKind::is_ingress"
    )]
    pub kind: crate::aws::tags::StackKind,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerGroupStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready (every accepted member is realised), Degraded (some members are excluded), Split
    /// (the group needs more than one ALB).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The group's ALBs, one per shard of at most 100 rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancerStatus>,

    #[serde(default)]
    pub load_balancer_count: i32,

    /// Target groups of the group, by their `ingress.k8s.aws/resource` key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_groups: Vec<OwnedResource>,

    /// Security groups of the group (frontend and backend per ALB).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<OwnedResource>,

    /// Every Ingress that asked to join, accepted or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,

    #[serde(default)]
    pub member_count: i32,

    #[serde(default)]
    pub rule_count: i32,

    /// Resources a create is about to be sent for, recorded before it is: until their ARN or
    /// ID is recorded above, they are looked up by name, so a lost response or a crash
    /// between the create and this status leaves nothing behind.
    #[serde(default, skip_serializing_if = "PendingCreates::is_empty")]
    pub pending_creates: PendingCreates,

    /// What was adopted when the stack was first reconciled: resources another controller
    /// (aws-load-balancer-controller) made for it, found by their cluster and stack tags.
    /// Absent: not looked for yet; empty: looked for, nothing found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<Adopted>,

    /// The `resourceVersion` of each OIDC client Secret (`namespace/name`) the rules were
    /// last given: ELBv2 never returns a client secret, so a rotated one is told by this.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_secret_versions: BTreeMap<String, String>,
}

/// Adopted resources: causeway's own name for each (derived from the model) → the name it
/// has in AWS, kept for as long as the model derives the same name (an immutable change
/// gives a new name, and the adopted resource is replaced as any other would be).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Adopted {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub load_balancers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_groups: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub security_groups: BTreeMap<String, String>,
    /// Security group key (`BackendSecurityGroup`) → the ID of the cluster-wide backend
    /// security group used instead of one of the stack's own; used, never modified or deleted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shared_security_groups: BTreeMap<String, String>,
}

impl Adopted {
    pub fn is_empty(&self) -> bool {
        self.load_balancers.is_empty()
            && self.target_groups.is_empty()
            && self.security_groups.is_empty()
            && self.shared_security_groups.is_empty()
    }
}

/// Names of load balancers, target groups and security groups being created.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PendingCreates {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
}

impl PendingCreates {
    pub fn is_empty(&self) -> bool {
        self.load_balancers.is_empty()
            && self.target_groups.is_empty()
            && self.security_groups.is_empty()
    }

    /// Adds the names not there yet; whether any was added.
    pub fn extend(&mut self, other: &PendingCreates) -> bool {
        let mut added = false;
        for (mine, theirs) in [
            (&mut self.load_balancers, &other.load_balancers),
            (&mut self.target_groups, &other.target_groups),
            (&mut self.security_groups, &other.security_groups),
        ] {
            for n in theirs {
                if !mine.contains(n) {
                    mine.push(n.clone());
                    added = true;
                }
            }
        }
        added
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerStatus {
    /// The shard's resource key (`LoadBalancer`, `LoadBalancer-1`, ...).
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
    #[serde(default)]
    pub rules: i32,
    /// The members served by this ALB, as `namespace/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct OwnedResource {
    pub key: String,
    pub name: String,
    /// ARN, or the ID for a security group.
    pub id: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub namespace: String,
    pub name: String,
    /// Whether the member's current configuration is accepted (its rules are on the ALB).
    pub accepted: bool,
    /// CamelCase reason when the current configuration is not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The current configuration is rejected, and the member's last accepted configuration
    /// stays on the ALB until it is fixed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serving_last_accepted: bool,
    /// The configuration on the ALB, in causeway's internal form. It is what is kept when a
    /// later change is rejected. Not meant to be edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accepted: Option<String>,
}
