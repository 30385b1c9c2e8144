//! The thin AWS adapter for ALBs: SDK types in and out of model types.
//!
//! Reads are scoped to what we own: the ARNs and IDs kept in the group's status, plus a
//! lookup by our deterministic names for anything we may have created without recording it.
//! Nothing here lists the region. Subnet and certificate discovery are VPC- and
//! account-scoped reads the caller caches.
//!
//! Layout: `convert` (SDK ↔ model, pure), `discovery` (VPC, subnets, certificates, security
//! group names), `observe` (what we own, as [`Observed`](super::observed::Observed)) and
//! `apply` (the [`Step`](super::plan::Step)s, one file per resource family).

mod addons;
mod apply;
mod convert;
mod discovery;
mod observe;
mod tagged;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use super::builder::{CertInfo, SubnetInfo};
use super::model::{ClientSecrets, GroupModel};
use super::observed::Observed;
use super::plan::Step;
use crate::aws::AwsClients;
use crate::aws::errors::{self, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{operation}: {code}: {message}")]
    Call {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// A security group still referenced elsewhere (e.g. by a node security group rule a
    /// TargetGroupBinding added). Retried with backoff; never skipped.
    #[error("security group {0} is still in use (DependencyViolation); retrying")]
    DependencyViolation(String),
    #[error("{0}")]
    Missing(String),
}

impl AwsError {
    fn call<E: ProvideErrorMetadata + std::error::Error + 'static>(
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> Self {
        AwsError::Call {
            operation,
            code: errors::code(&err).unwrap_or("Unknown").to_owned(),
            message: DisplayErrorContext(&err).to_string(),
        }
    }
    fn code(&self) -> Option<&str> {
        match self {
            AwsError::Call { code, .. } => Some(code),
            _ => None,
        }
    }
    /// The service said the resource does not exist (`*NotFound*`), by the shared classifier.
    fn not_found(&self) -> bool {
        self.code()
            .is_some_and(|c| errors::code_kind(c) == ErrorKind::NotFound)
    }
}

/// How much of a group [`AlbAws::observe`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Everything the planner compares, listeners and rules included.
    Full,
    /// Load balancers, target groups and security groups only.
    Resources,
}

/// The ARNs and IDs we believe we own (from the group's status), plus the names we would
/// create: the two ways to find our resources without a region scan.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub load_balancer_arns: Vec<String>,
    pub target_group_arns: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// Names created (or about to be) whose ARN or ID is not recorded: looked up by name,
    /// even when no longer desired.
    pub pending: crate::crd::load_balancer_group::PendingCreates,
    /// Look up every desired name too: for a plan made without the stack's status. A
    /// reconcile does not need it: every name is recorded as pending before its create, so a
    /// desired name neither recorded nor pending was never created (and a create that meets
    /// one anyway adopts it).
    pub desired_names: bool,
}

pub struct AlbAws<'a> {
    pub aws: &'a AwsClients,
    pub vpc_id: &'a str,
    pub cluster: &'a str,
    /// OIDC client secrets, for the steps that write authentication actions.
    pub secrets: &'a ClientSecrets,
}

/// For the calls that write no authentication action.
pub(crate) static NO_SECRETS: ClientSecrets = ClientSecrets::empty();

impl AlbAws<'_> {
    /// The filter that keeps an EC2 read inside our VPC.
    fn vpc_filter(&self) -> aws_sdk_ec2::types::Filter {
        aws_sdk_ec2::types::Filter::builder()
            .name("vpc-id")
            .values(self.vpc_id)
            .build()
    }
}

/// The VPC and cluster a group's calls are scoped to.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub vpc_id: &'a str,
    pub cluster: &'a str,
}

/// What the ALB reconciler needs from AWS: the SDK adapter ([`AwsClients`], through
/// [`AlbAws`]), or a fake in the reconcile-level tests.
pub(crate) trait AlbApi: Send + Sync + 'static {
    /// The VPC of the subnets tagged for the cluster.
    fn cluster_vpc(&self, cluster: &str) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// The issued ACM certificates.
    fn certificates(&self) -> impl Future<Output = Result<Vec<CertInfo>, AwsError>> + Send;
    /// The VPC's subnets.
    fn subnets(
        &self,
        scope: Scope<'_>,
    ) -> impl Future<Output = Result<Vec<SubnetInfo>, AwsError>> + Send;
    /// Security group IDs and Name tags, resolved in the VPC.
    fn resolve_security_groups(
        &self,
        scope: Scope<'_>,
        entries: &BTreeSet<String>,
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<String>>, AwsError>> + Send;
    /// Target group names → ARNs; a name that does not exist is left out.
    fn resolve_target_groups(
        &self,
        names: &BTreeSet<String>,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsError>> + Send;
    /// Regional WAFv2 web ACL names → ARNs; a name that does not exist is left out.
    fn resolve_web_acls(
        &self,
        names: &BTreeSet<String>,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsError>> + Send;
    /// ELBv2 trust store names → ARNs; a name that does not exist is left out.
    fn resolve_trust_stores(
        &self,
        names: &BTreeSet<String>,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsError>> + Send;
    /// The load balancers, target groups and security groups tagged for `stack` of the
    /// scope's cluster, whoever made them (the adoption lookup).
    fn tagged_stack(
        &self,
        scope: Scope<'_>,
        kind: crate::aws::tags::StackKind,
        stack: &str,
    ) -> impl Future<Output = Result<Known, AwsError>> + Send;
    /// Of the security groups `ids`, the cluster's shared backend group (the peer's).
    fn shared_backend_group(
        &self,
        scope: Scope<'_>,
        ids: &[String],
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;
    /// What we own of the group: by recorded ARN and by the desired names.
    fn observe(
        &self,
        scope: Scope<'_>,
        known: &Known,
        desired: &GroupModel,
        depth: Depth,
    ) -> impl Future<Output = Result<Observed, AwsError>> + Send;
    /// The plan's steps, in order; the first failure stops it. `secrets`: the OIDC client
    /// secrets the steps' authentication actions name.
    fn apply(
        &self,
        scope: Scope<'_>,
        steps: &[Step],
        observed: &Observed,
        secrets: &ClientSecrets,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

fn scoped<'a>(aws: &'a AwsClients, scope: Scope<'a>) -> AlbAws<'a> {
    AlbAws {
        aws,
        vpc_id: scope.vpc_id,
        cluster: scope.cluster,
        secrets: &NO_SECRETS,
    }
}

impl AlbApi for AwsClients {
    fn cluster_vpc(&self, cluster: &str) -> impl Future<Output = Result<String, AwsError>> + Send {
        AlbAws::cluster_vpc(self, cluster)
    }
    fn certificates(&self) -> impl Future<Output = Result<Vec<CertInfo>, AwsError>> + Send {
        AlbAws::certificates(self)
    }
    async fn subnets(&self, scope: Scope<'_>) -> Result<Vec<SubnetInfo>, AwsError> {
        scoped(self, scope).subnets().await
    }
    async fn resolve_security_groups(
        &self,
        scope: Scope<'_>,
        entries: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Vec<String>>, AwsError> {
        scoped(self, scope).resolve_security_groups(entries).await
    }
    fn resolve_target_groups(
        &self,
        names: &BTreeSet<String>,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsError>> + Send {
        AlbAws::resolve_target_groups(self, names)
    }
    fn resolve_web_acls(
        &self,
        names: &BTreeSet<String>,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsError>> + Send {
        AlbAws::resolve_web_acls(self, names)
    }
    fn resolve_trust_stores(
        &self,
        names: &BTreeSet<String>,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, AwsError>> + Send {
        AlbAws::resolve_trust_stores(self, names)
    }
    async fn tagged_stack(
        &self,
        scope: Scope<'_>,
        kind: crate::aws::tags::StackKind,
        stack: &str,
    ) -> Result<Known, AwsError> {
        scoped(self, scope).tagged_stack(kind, stack).await
    }
    async fn shared_backend_group(
        &self,
        scope: Scope<'_>,
        ids: &[String],
    ) -> Result<Option<String>, AwsError> {
        scoped(self, scope).shared_backend_group(ids).await
    }
    async fn observe(
        &self,
        scope: Scope<'_>,
        known: &Known,
        desired: &GroupModel,
        depth: Depth,
    ) -> Result<Observed, AwsError> {
        scoped(self, scope).observe(known, desired, depth).await
    }
    async fn apply(
        &self,
        scope: Scope<'_>,
        steps: &[Step],
        observed: &Observed,
        secrets: &ClientSecrets,
    ) -> Result<(), AwsError> {
        AlbAws {
            secrets,
            ..scoped(self, scope)
        }
        .apply(steps, observed)
        .await
    }
}
