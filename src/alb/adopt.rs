//! Adoption: taking over what another controller (aws-load-balancer-controller, or an
//! install that lost its status) made for a stack, instead of building a second copy.
//!
//! A stack whose LoadBalancerGroup records nothing is looked up once by its cluster and
//! stack tags (the tags the peer and causeway both write). What is found is matched to the
//! desired model by its resource tag (`LoadBalancer`, `<ns>/<ingress>-<svc>:<port>`,
//! `ManagedLBSecurityGroup`, ...) and by the fields that cannot change in place; a match
//! keeps its AWS name, recorded in status, and from then on the usual plan modifies it in
//! place. What is found and matches nothing is the stack's too, and the plan replaces it.
//! The peer's cluster-wide backend security group is used as the stack's backend group,
//! never modified or deleted.

use super::aws::{AlbApi, AwsError, Depth, Known, Scope};
use super::model::*;
use super::observed::Observed;
use super::stack::without_attributes;
use crate::crd::LoadBalancerGroupStatus;
use crate::crd::load_balancer_group::Adopted;

/// The key of the backend security group a shared one can stand in for.
const BACKEND_KEY: &str = "BackendSecurityGroup";

/// Adopt (the step): the ARNs to observe, and `model` renamed after what was adopted.
/// Looks AWS up only for a stack that records nothing and was never looked up; what it
/// decides goes into `previous`, which the status written later in the reconcile persists
/// (a reconcile that fails before that looks again: the lookup has no side effects).
///
/// `refused`: some member of the stack is refused, so the model lacks what the found
/// resources serve for it. Then nothing is adopted (`None`): taking the stack over would
/// delete that member's routes, so the found resources stay as they are, serving what they
/// served, until the member is fixed.
pub(crate) async fn adopt<A: AlbApi>(
    aws: &A,
    scope: Scope<'_>,
    previous: &mut Option<LoadBalancerGroupStatus>,
    model: &mut GroupModel,
    refused: bool,
) -> Result<Option<Known>, AwsError> {
    let known = super::stack::known(previous.as_ref());
    if let Some(adopted) = previous.as_ref().and_then(|p| p.adopted.as_ref()) {
        rename(model, adopted);
        return Ok(Some(known));
    }
    if !records_nothing(&known) {
        return Ok(Some(known));
    }
    let (found_known, adopted) = look_up(aws, scope, model).await?;
    if refused && !records_nothing(&found_known) {
        return Ok(None);
    }
    rename(model, &adopted);
    previous.get_or_insert_with(Default::default).adopted = Some(adopted);
    Ok(Some(found_known))
}

/// The reason of the Event on a refused member whose stack is not adopted yet.
pub(crate) const ADOPTION_HELD: &str = "AdoptionHeld";

/// What the lookup finds for the stack and which desired resources it stands for.
pub(crate) async fn look_up<A: AlbApi>(
    aws: &A,
    scope: Scope<'_>,
    model: &GroupModel,
) -> Result<(Known, Adopted), AwsError> {
    let found_known = aws.tagged_stack(scope, model.kind, &model.stack).await?;
    if records_nothing(&found_known) {
        return Ok((found_known, Adopted::default()));
    }
    let mut found = aws
        .observe(
            scope,
            &found_known,
            &without_attributes(model),
            Depth::Resources,
        )
        .await?;
    found.retain_owned(scope.cluster, model.kind, &model.stack);
    let own_groups: Vec<&str> = found
        .security_groups
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let others: Vec<String> = found
        .load_balancers
        .iter()
        .flat_map(|l| l.security_groups.iter())
        .filter(|id| !own_groups.contains(&id.as_str()))
        .cloned()
        .collect();
    let shared = aws.shared_backend_group(scope, &others).await?;
    Ok((found_known, matches(model, &found, shared.as_deref())))
}

fn records_nothing(k: &Known) -> bool {
    k.load_balancer_arns.is_empty()
        && k.target_group_arns.is_empty()
        && k.security_group_ids.is_empty()
        && k.pending.is_empty()
}

/// Pure: which found resource stands for which desired one. A load balancer matches by
/// resource key and scheme; a target group by key, protocol, protocol version and target
/// type; a security group by key. `shared`: the cluster's backend security group attached to
/// a found load balancer, which replaces the desired backend group of that load balancer.
pub(crate) fn matches(desired: &GroupModel, found: &Observed, shared: Option<&str>) -> Adopted {
    let rk = desired.kind.resource_key();
    let key_of = |tags: &Tags| tags.get(rk).cloned().unwrap_or_default();
    let mut adopted = Adopted::default();
    for d in &desired.load_balancers {
        let Some(o) = found
            .load_balancers
            .iter()
            .find(|o| key_of(&o.tags) == d.key && o.scheme == d.scheme)
        else {
            continue;
        };
        if o.name != d.name {
            adopted
                .load_balancers
                .insert(d.name.clone(), o.name.clone());
        }
        if let Some(id) = shared
            && o.security_groups.iter().any(|s| s == id)
            && d.security_groups.iter().any(|k| k == BACKEND_KEY)
        {
            adopted
                .shared_security_groups
                .insert(BACKEND_KEY.to_owned(), id.to_owned());
        }
    }
    for d in &desired.target_groups {
        let http = matches!(d.protocol, Protocol::Http | Protocol::Https);
        let Some(o) = found.target_groups.iter().find(|o| {
            key_of(&o.tags) == d.key
                && o.protocol == d.protocol
                && o.target_type == d.target_type
                && (!http || o.protocol_version.eq_ignore_ascii_case(&d.protocol_version))
        }) else {
            continue;
        };
        if o.name != d.name {
            adopted.target_groups.insert(d.name.clone(), o.name.clone());
        }
    }
    for d in &desired.security_groups {
        if adopted.shared_security_groups.contains_key(&d.key) {
            continue;
        }
        if let Some(o) = found
            .security_groups
            .iter()
            .find(|o| key_of(&o.tags) == d.key)
            && o.name != d.name
        {
            adopted
                .security_groups
                .insert(d.name.clone(), o.name.clone());
        }
    }
    adopted
}

/// Pure: the model with the adopted names (and forward actions naming them), and each shared
/// security group in place of the managed one it stands for.
pub(crate) fn rename(model: &mut GroupModel, adopted: &Adopted) {
    if adopted.is_empty() {
        return;
    }
    for lb in &mut model.load_balancers {
        if let Some(n) = adopted.load_balancers.get(&lb.name) {
            lb.name = n.clone();
        }
        for sg in &mut lb.security_groups {
            if let Some(id) = adopted.shared_security_groups.get(sg) {
                *sg = id.clone();
            }
        }
        let renamed = |t: &TargetRef| match t {
            TargetRef::Name(n) => TargetRef::Name(
                adopted
                    .target_groups
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| n.clone()),
            ),
            other => other.clone(),
        };
        for l in &mut lb.listeners {
            l.default_action = l.default_action.map_targets(&renamed);
            for r in &mut l.rules {
                r.action = r.action.map_targets(&renamed);
            }
        }
    }
    for tg in &mut model.target_groups {
        if let Some(n) = adopted.target_groups.get(&tg.name) {
            tg.name = n.clone();
        }
        if let Some(id) = adopted
            .shared_security_groups
            .get(&tg.binding.backend_security_group)
        {
            tg.binding.backend_security_group = id.clone();
        }
    }
    model
        .security_groups
        .retain(|s| !adopted.shared_security_groups.contains_key(&s.key));
    for sg in &mut model.security_groups {
        if let Some(n) = adopted.security_groups.get(&sg.name) {
            sg.name = n.clone();
        }
    }
}

#[cfg(test)]
mod tests;
