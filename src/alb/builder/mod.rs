//! Pure: the members of one IngressGroup (plus Services, subnets and certificates already
//! read) → the group's [`GroupModel`], and for each member whether it is in or out and why.
//!
//! A member with bad input, or whose exclusive settings disagree with the members ordered
//! before it, is left out with a [`Problem`](super::annotations::Problem); the others keep
//! their rules.
//!
//! Layout: `group` (order, agreement, shards, the model), `member` (one Ingress parsed),
//! `network` (scheme, subnets, security groups), `target_group` (one Service port).

mod group;
pub(crate) mod member;
pub(crate) mod network;
mod target_group;

pub use group::{AcceptedSpec, BuildOutput, Member, MemberOutcome, build};

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;

use super::model::*;

pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";
pub const ROLE_ELB: &str = "kubernetes.io/role/elb";
pub const ROLE_INTERNAL_ELB: &str = "kubernetes.io/role/internal-elb";

/// A subnet of the VPC, as discovery read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetInfo {
    pub id: String,
    pub az: String,
    pub tags: BTreeMap<String, String>,
}

/// An issued ACM certificate and the names it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub arn: String,
    pub domains: Vec<String>,
}

/// What the builder needs besides the members.
pub struct Environment<'a> {
    pub cluster: &'a str,
    pub default_tags: &'a Tags,
    /// Tag keys managed outside causeway: never removed from our resources, and an Ingress
    /// that sets one is rejected.
    pub external_managed_tags: &'a BTreeSet<String>,
    pub default_target_type: TargetType,
    /// Services by (namespace, name).
    pub services: &'a BTreeMap<(String, String), Service>,
    /// `None` when not read (a plan without AWS access): subnets stay empty.
    pub subnets: Option<&'a [SubnetInfo]>,
    /// `None` when not read: certificates are not discovered or checked.
    pub certificates: Option<&'a [CertInfo]>,
    /// The `security-groups` annotation entries (IDs or `Name` tags) → the IDs they match in
    /// the VPC. `None` when not read: entries are used as written.
    pub security_groups: Option<&'a BTreeMap<String, Vec<String>>>,
    /// Target groups that `actions.*` annotations name by `targetGroupName` → their ARNs (a
    /// name that is missing was not found). `None` when not read: names are used as written.
    pub target_groups: Option<&'a BTreeMap<String, String>>,
    /// The client IDs of the OIDC Secrets members name. `None` when Secrets were not read (a
    /// plan without cluster access): client IDs are left empty.
    pub oidc_clients: Option<&'a crate::alb::annotations::OidcClients>,
    /// Regional web ACL names `wafv2-acl-name` gives → their ARNs (a missing name was not
    /// found). `None` when not read: names are used as written.
    pub web_acls: Option<&'a BTreeMap<String, String>>,
    /// Trust store names `mutual-authentication` gives → their ARNs (a missing name was not
    /// found). `None` when not read: names are used as written.
    pub trust_stores: Option<&'a BTreeMap<String, String>>,
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_listeners;

/// Fixtures shared by the builder, planner and benchmark tests.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod tests_support;
