//! The AWS half of a reconcile, shared by every stack of load balancer resources (an
//! IngressGroup's ALBs, a Service's NLB): what the LoadBalancerGroup status says we own,
//! the plan with its TargetGroupBindings, the names recorded before they are created, the
//! apply with its re-read, and the bindings written once their target groups exist.

use std::sync::Arc;

use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, ResourceExt};
use tracing::info;

use super::aws::{AlbApi, AwsError, Depth, Known, Scope};
use super::bindings::{self, BindingKey, GROUP_LABEL};
use super::model::{ClientSecrets, GroupModel};
use super::observed::Observed;
use super::plan::{self, Step};
use crate::crd::{LoadBalancerGroup, LoadBalancerGroupStatus, TargetGroupBinding};
use crate::k8s::runtime::{Cause, StepError};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> BoxError {
    Box::new(e)
}

/// One variant per step of a stack's reconcile (ALB group or NLB Service).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("fetching the stack")]
    Fetch(#[source] BoxError),
    #[error("adding finalizers and the stack object")]
    Admit(#[source] BoxError),
    #[error("discovering subnets, certificates and security groups")]
    Discover(#[source] AwsError),
    #[error("looking up resources to adopt")]
    Adopt(#[source] AwsError),
    #[error("observing AWS")]
    Observe(#[source] AwsError),
    #[error("applying the plan")]
    Apply(#[source] AwsError),
    #[error("writing TargetGroupBindings")]
    Bindings(#[source] BoxError),
    #[error("writing status")]
    Status(#[source] BoxError),
}

impl StepError for Error {
    fn cause(&self) -> Cause {
        Cause::Transient
    }

    fn label(&self) -> &'static str {
        match self {
            Error::Apply(AwsError::DependencyViolation(_)) => "dependency_violation",
            Error::Discover(_) | Error::Adopt(_) | Error::Observe(_) | Error::Apply(_) => "aws",
            Error::Fetch(_) | Error::Admit(_) | Error::Bindings(_) | Error::Status(_) => {
                "kubernetes"
            }
        }
    }
}

/// The stack object, created before anything exists in AWS so that it can own the bindings.
pub(crate) async fn ensure_group_object(
    client: &Client,
    object_name: &str,
    spec: crate::crd::LoadBalancerGroupSpec,
) -> Result<LoadBalancerGroup, BoxError> {
    let groups: Api<LoadBalancerGroup> = Api::all(client.clone());
    let obj = LoadBalancerGroup::new(object_name, spec);
    crate::k8s::apply::apply(&groups, &obj).await.map_err(boxed)
}

/// Admit a stack's object (a Service, a Gateway): `finalizer` on it first, so nothing is
/// created for an object we could then not clean up; then the stack object.
pub(crate) async fn admit<K>(
    client: &Client,
    api: &Api<K>,
    obj: Option<&K>,
    finalizer: &str,
    group: &mut Option<LoadBalancerGroup>,
    object_name: &str,
    spec: crate::crd::LoadBalancerGroupSpec,
) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    if let Some(obj) = obj
        && !crate::k8s::finalizer::has_finalizer(obj, finalizer)
    {
        crate::k8s::finalizer::add_finalizer(api, obj, finalizer)
            .await
            .map_err(|e| Error::Admit(boxed(e)))?;
    }
    if group.is_none() {
        *group = Some(
            ensure_group_object(client, object_name, spec)
                .await
                .map_err(Error::Admit)?,
        );
    }
    Ok(())
}

/// Observe only what we own: by the ARNs recorded in status, then by our names; what is
/// found but not tagged for this stack is left alone (and logged).
pub(crate) async fn observe_owned<A: AlbApi>(
    aws: &A,
    scope: Scope<'_>,
    known: &Known,
    model: &GroupModel,
) -> Result<Observed, Error> {
    let mut observed = aws
        .observe(scope, known, model, Depth::Full)
        .await
        .map_err(Error::Observe)?;
    let foreign = observed.retain_owned(scope.cluster, model.kind, &model.stack);
    if !foreign.is_empty() {
        tracing::warn!(
            ?foreign,
            stack = %model.stack,
            "resources found by name or recorded ARN are not tagged for this stack; leaving them alone"
        );
    }
    Ok(observed)
}

/// What apply left: AWS as re-read, and how the steps went.
pub(crate) struct Applied {
    pub(crate) observed: Observed,
    pub(crate) outcome: Result<(), AwsError>,
    /// Target group deletions that wait for their bindings.
    pub(crate) held: usize,
}

/// The stack a reconcile applies: its LoadBalancerGroup and what it records.
pub(crate) struct StackRef<'a> {
    pub(crate) object_name: &'a str,
    pub(crate) group: Option<&'a LoadBalancerGroup>,
    pub(crate) previous: Option<&'a LoadBalancerGroupStatus>,
}

/// Apply: stale bindings go before their target groups; then the AWS steps (their names
/// recorded first); then AWS is re-read (success or not, so status records every ARN); then
/// the bindings for the target groups that exist are written.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply<A: AlbApi>(
    client: &Client,
    aws: &A,
    scope: Scope<'_>,
    stack: StackRef<'_>,
    model: &GroupModel,
    known: &Known,
    plan: StackPlan,
    observed: Observed,
    secrets: &ClientSecrets,
    vpc_id: Option<&str>,
    bindings: &[Arc<TargetGroupBinding>],
) -> Result<Applied, Error> {
    prune_bindings(client, stack.object_name, model, plan.stale_bindings)
        .await
        .map_err(Error::Bindings)?;
    record_pending(client, stack.object_name, stack.previous, &plan.steps)
        .await
        .map_err(Error::Status)?;
    let (observed, outcome) = apply_steps(aws, scope, known, model, &plan.steps, observed, secrets)
        .await
        .map_err(Error::Observe)?;
    write_bindings(
        client,
        stack.object_name,
        stack.group,
        model,
        &observed,
        vpc_id,
        bindings,
    )
    .await
    .map_err(Error::Bindings)?;
    Ok(Applied {
        observed,
        outcome,
        held: plan.held,
    })
}

/// The plan: stale bindings first, then the AWS steps.
pub(crate) struct StackPlan {
    pub(crate) stale_bindings: Vec<BindingKey>,
    pub(crate) steps: Vec<Step>,
    /// Target group deletions held back until their bindings are gone.
    pub(crate) held: usize,
}

/// Before anything is created: the names about to be created go into the stack's status,
/// so that whatever a lost response or a crash leaves is found by name next time (the
/// status written after the re-read drops them, their ARNs recorded instead).
async fn record_pending(
    client: &Client,
    object_name: &str,
    previous: Option<&LoadBalancerGroupStatus>,
    steps: &[Step],
) -> Result<(), BoxError> {
    let mut status = previous.cloned().unwrap_or_default();
    if !status.pending_creates.extend(&pending_creates(steps)) {
        return Ok(());
    }
    let groups: Api<LoadBalancerGroup> = Api::all(client.clone());
    crate::k8s::apply::apply_status::<LoadBalancerGroup>(&groups, object_name, &status)
        .await
        .map_err(boxed)?;
    Ok(())
}

/// Deletes the stale bindings; with no target group wanted, every binding labelled for the
/// stack (the cache can lag right after a create; a label-selected list is exact).
async fn prune_bindings(
    client: &Client,
    object_name: &str,
    model: &GroupModel,
    stale: Vec<BindingKey>,
) -> Result<(), BoxError> {
    let stale = if stale.is_empty() && model.target_groups.is_empty() {
        let api: Api<TargetGroupBinding> = Api::all(client.clone());
        api.list(&ListParams::default().labels(&format!("{GROUP_LABEL}={object_name}")))
            .await
            .map_err(boxed)?
            .items
            .iter()
            .map(|b| (b.namespace().unwrap_or_default(), b.name_any()))
            .collect()
    } else {
        stale
    };
    for (ns, name) in stale {
        let api: Api<TargetGroupBinding> = Api::namespaced(client.clone(), &ns);
        ignore_not_found(
            api.delete(&name, &DeleteParams::default())
                .await
                .map(|_| ()),
        )
        .map_err(boxed)?;
    }
    Ok(())
}

/// The steps, then AWS re-read (success or not, so status records every ARN: a failed step
/// may leave something we created, and the desired names find it). Returns the re-read
/// state and how the steps went; an empty plan reads nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn apply_steps<A: AlbApi>(
    aws: &A,
    scope: Scope<'_>,
    known: &Known,
    model: &GroupModel,
    steps: &[Step],
    observed: Observed,
    secrets: &ClientSecrets,
) -> Result<(Observed, Result<(), AwsError>), AwsError> {
    if steps.is_empty() {
        return Ok((observed, Ok(())));
    }
    info!(steps = steps.len(), "applying plan");
    let result = aws.apply(scope, steps, &observed, secrets).await;
    // What the steps created is found by the names recorded before they ran.
    let mut known = known.clone();
    known.pending.extend(&pending_creates(steps));
    let mut after = aws
        .observe(scope, &known, &without_attributes(model), Depth::Resources)
        .await?;
    after.retain_owned(scope.cluster, model.kind, &model.stack);
    Ok((after, result))
}

/// Writes the bindings wanted for the target groups that exist and differ from the cache.
async fn write_bindings(
    client: &Client,
    object_name: &str,
    group: Option<&LoadBalancerGroup>,
    model: &GroupModel,
    observed: &Observed,
    vpc_id: Option<&str>,
    existing: &[Arc<TargetGroupBinding>],
) -> Result<(), BoxError> {
    let owner = group.and_then(|g| {
        use kube::Resource;
        g.controller_owner_ref(&())
    });
    let wanted = bindings::desired(object_name, owner.as_ref(), model, observed, vpc_id);
    for tgb in bindings::to_write(&wanted, existing) {
        let api: Api<TargetGroupBinding> =
            Api::namespaced(client.clone(), &tgb.namespace().unwrap_or_default());
        crate::k8s::apply::apply(&api, tgb).await.map_err(boxed)?;
    }
    Ok(())
}

/// The ARNs and IDs recorded in the group's status.
pub(crate) fn known(previous: Option<&LoadBalancerGroupStatus>) -> Known {
    Known {
        load_balancer_arns: previous
            .iter()
            .flat_map(|s| s.load_balancers.iter().filter_map(|l| l.arn.clone()))
            .collect(),
        target_group_arns: previous
            .iter()
            .flat_map(|s| s.target_groups.iter().map(|t| t.id.clone()))
            .collect(),
        security_group_ids: previous
            .iter()
            .flat_map(|s| s.security_groups.iter().map(|t| t.id.clone()))
            .collect(),
        pending: previous
            .map(|s| s.pending_creates.clone())
            .unwrap_or_default(),
        desired_names: false,
    }
}

/// The names the plan's steps create.
pub(crate) fn pending_creates(steps: &[Step]) -> crate::crd::load_balancer_group::PendingCreates {
    let mut p = crate::crd::load_balancer_group::PendingCreates::default();
    for s in steps {
        match s {
            Step::CreateLoadBalancer { name, .. } => p.load_balancers.push(name.clone()),
            Step::CreateTargetGroup(tg) => p.target_groups.push(tg.name.clone()),
            Step::CreateSecurityGroup { name, .. } => p.security_groups.push(name.clone()),
            _ => {}
        }
    }
    p
}

/// Plan (pure): the AWS steps and the bindings whose target group is no longer wanted.
pub(crate) fn plan_stack(
    object_name: &str,
    model: &GroupModel,
    observed: &Observed,
    bindings: Vec<Arc<TargetGroupBinding>>,
    cluster: &str,
) -> StackPlan {
    let mut steps = plan::plan(model, observed, cluster);
    let held = bindings::hold_bound_target_groups(&mut steps, &bindings);
    StackPlan {
        stale_bindings: bindings::stale(object_name, model, &bindings),
        steps,
        held,
    }
}

/// The desired model without attributes: the re-read after apply needs names and ARNs, not
/// another round of attribute reads.
pub(crate) fn without_attributes(desired: &GroupModel) -> GroupModel {
    let mut m = desired.clone();
    m.load_balancers
        .iter_mut()
        .for_each(|l| l.attributes.clear());
    m.target_groups
        .iter_mut()
        .for_each(|t| t.attributes.clear());
    m
}

pub(crate) fn ignore_not_found(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(ref s)) if s.code == 404 => Ok(()),
        other => other,
    }
}
