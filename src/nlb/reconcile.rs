//! One reconcile of one Service, as its steps:
//!
//! 1. [`fetch`](Reconciler::fetch): the Service (from the cache) and its LoadBalancerGroup
//!    (fresh: its status holds the ARNs we own);
//! 2. [`admit`](Reconciler::admit): the finalizer and the stack object, before anything
//!    exists in AWS;
//! 3. [`discover`](Reconciler::discover): VPC, subnets, certificates, named security groups;
//! 4. [`desired`](Reconciler::desired): the builder (pure); bad input keeps the last
//!    accepted model (or leaves AWS alone), never deletes;
//! 5. observe: what we own, by recorded ARN and by our names;
//! 6. plan (pure): AWS steps and stale TargetGroupBindings;
//! 7. apply: bindings pruned, steps applied, AWS re-read, bindings written;
//! 8. [`status`](Reconciler::status): the stack's status, the Service's hostname and
//!    condition, Events; the finalizer goes once nothing of ours is left.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::controller::Reconciler;
use crate::alb::adopt;
use crate::alb::annotations::Problem;
use crate::alb::aws::{AlbApi, AwsError, Known, Scope};
use crate::alb::builder::{BuildOutput, CertInfo, MemberOutcome, SubnetInfo};
use crate::alb::model::{ClientSecrets, GroupModel};
use crate::alb::naming;
use crate::alb::observed::Observed;
use crate::alb::plan::Step;
use crate::alb::stack::{self, Applied, boxed, ignore_not_found};
use crate::alb::status::{self, ApplyOutcome};
use crate::aws::tags::StackKind;
use crate::crd::{LoadBalancerGroup, LoadBalancerGroupSpec, LoadBalancerGroupStatus};
use crate::k8s::conditions::{SystemClock, reason, set_condition};
use crate::k8s::finalizer::{NLB_FINALIZER, has_finalizer, remove_finalizer};
use crate::k8s::runtime::Next;

/// The condition causeway sets on the Services it serves.
pub const CONDITION: &str = "causeway.dev/LoadBalancerReady";

pub use crate::alb::stack::Error;

pub(super) struct Fetched {
    namespace: String,
    name: String,
    object_name: String,
    service: Option<Arc<Service>>,
    /// The Service is ours and not being deleted.
    wanted: bool,
    group: Option<LoadBalancerGroup>,
    previous: Option<LoadBalancerGroupStatus>,
}

struct Discovered {
    vpc_id: String,
    subnets: Option<Vec<SubnetInfo>>,
    certificates: Option<Vec<CertInfo>>,
    security_groups: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// What the builder made of the Service.
struct Desired {
    /// `None`: leave AWS as it is (bad input and nothing accepted before).
    model: Option<GroupModel>,
    problem: Option<Problem>,
    /// The model is the last accepted one, kept while the current spec is rejected.
    serving_last_accepted: bool,
}

impl<A: AlbApi> Reconciler<A> {
    pub(super) async fn reconcile_service(&self, key: &str) -> Result<Next, Error> {
        let Some(mut f) = self.fetch(key).await? else {
            return Ok(Next::AwaitChange);
        };
        self.admit(&mut f).await?;
        let d = self.discover(&f).await?;
        let mut desired = self.desired(&f, &d);
        let scope = Scope {
            vpc_id: &d.vpc_id,
            cluster: &self.ctx.cluster_name,
        };
        // A refused Service plans nothing, so it adopts nothing either.
        let known = match desired.model.as_mut() {
            Some(m) => adopt::adopt(&self.aws, scope, &mut f.previous, m, false)
                .await
                .map_err(Error::Adopt)?
                .unwrap_or_default(),
            None => stack::known(f.previous.as_ref()),
        };
        let model = desired
            .model
            .clone()
            .unwrap_or_else(|| service_model(&f, GroupModel::empty));
        let observed = self.observe(scope, &known, &model).await?;
        let plan = match desired.model {
            Some(_) => stack::plan_stack(
                &f.object_name,
                &model,
                &observed,
                self.ctx.caches.target_group_bindings.state(),
                &self.ctx.cluster_name,
            ),
            None => stack::StackPlan {
                stale_bindings: Vec::new(),
                steps: Vec::new(),
                held: 0,
            },
        };
        if let Some(note) = replacement(&plan.steps) {
            self.ctx
                .events
                .normal(&service_ref(&f), "Replacing", note)
                .await;
        }
        let applied = stack::apply(
            &self.ctx.client,
            &self.aws,
            scope,
            stack::StackRef {
                object_name: &f.object_name,
                group: f.group.as_ref(),
                previous: f.previous.as_ref(),
            },
            &model,
            &known,
            plan,
            observed,
            &ClientSecrets::empty(),
            self.discovery
                .known_vpc_id(self.settings.shared.vpc_id.as_ref())
                .as_deref(),
            &self.ctx.caches.target_group_bindings.state(),
        )
        .await?;
        self.status(f, &model, &desired, applied).await
    }

    /// Fetch. `None`: nothing of ours to do (another instance's stack, or never ours).
    async fn fetch(&self, key: &str) -> Result<Option<Fetched>, Error> {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let object_name = naming::service_object_name(namespace, name);
        let service = self
            .stores
            .services
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace));
        let groups: Api<LoadBalancerGroup> = Api::all(self.ctx.client.clone());
        let group = groups
            .get_opt(&object_name)
            .await
            .map_err(|e| Error::Fetch(boxed(e)))?
            .filter(|g| g.spec.kind == StackKind::Service && g.spec.stack == key);
        if group
            .as_ref()
            .is_some_and(|g| g.spec.controller != self.owner())
        {
            warn!(
                key,
                "the Service's NLB belongs to another causeway instance; leaving it alone"
            );
            return Ok(None);
        }
        let wanted = service
            .as_ref()
            .is_some_and(|s| self.ours(s) && s.meta().deletion_timestamp.is_none());
        let ours_before = group.is_some()
            || service
                .as_ref()
                .is_some_and(|s| has_finalizer(s.as_ref(), NLB_FINALIZER));
        if !wanted && !ours_before {
            return Ok(None);
        }
        Ok(Some(Fetched {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            previous: group.as_ref().and_then(|g| g.status.clone()),
            object_name,
            service,
            wanted,
            group,
        }))
    }

    /// Admit: the finalizer first, so nothing is created for a Service we could then not
    /// clean up; and the stack object before anything in AWS, so it can own the bindings.
    async fn admit(&self, f: &mut Fetched) -> Result<(), Error> {
        if !f.wanted {
            return Ok(());
        }
        let api: Api<Service> = Api::namespaced(self.ctx.client.clone(), &f.namespace);
        let spec = self.group_spec(f);
        stack::admit(
            &self.ctx.client,
            &api,
            f.service.as_deref(),
            NLB_FINALIZER,
            &mut f.group,
            &f.object_name,
            spec,
        )
        .await
    }

    fn group_spec(&self, f: &Fetched) -> LoadBalancerGroupSpec {
        LoadBalancerGroupSpec {
            stack: format!("{}/{}", f.namespace, f.name),
            controller: self.owner().to_owned(),
            kind: StackKind::Service,
        }
    }

    /// Discover what the builder needs; nothing for a Service being released.
    async fn discover(&self, f: &Fetched) -> Result<Discovered, Error> {
        let shared = &self.settings.shared;
        let vpc_id = self
            .discovery
            .vpc_id(&self.aws, shared.vpc_id.as_ref(), &self.ctx.cluster_name)
            .await
            .map_err(Error::Discover)?;
        let mut d = Discovered {
            vpc_id,
            subnets: None,
            certificates: None,
            security_groups: None,
        };
        let Some(svc) = f.service.as_ref().filter(|_| f.wanted) else {
            return Ok(d);
        };
        let scope = Scope {
            vpc_id: &d.vpc_id,
            cluster: &self.ctx.cluster_name,
        };
        d.subnets = Some(
            self.discovery
                .subnets(&self.aws, scope, shared.discovery_ttl)
                .await
                .map_err(Error::Discover)?,
        );
        let a = super::annotations::of(svc);
        if a.get("ssl-cert").is_some() || a.get("ssl-ports").is_some() {
            d.certificates = Some(
                self.discovery
                    .certificates(&self.aws, shared.discovery_ttl)
                    .await
                    .map_err(Error::Discover)?,
            );
        }
        let entries: std::collections::BTreeSet<String> =
            a.list("security-groups").into_iter().collect();
        if !entries.is_empty() {
            d.security_groups = Some(
                self.aws
                    .resolve_security_groups(scope, &entries)
                    .await
                    .map_err(Error::Discover)?,
            );
        }
        Ok(d)
    }

    /// Desired (pure): the builder's model; on bad input the last accepted model, or none.
    fn desired(&self, f: &Fetched, d: &Discovered) -> Desired {
        let Some(svc) = f.service.as_ref().filter(|_| f.wanted) else {
            return Desired {
                model: Some(service_model(f, GroupModel::empty)),
                problem: None,
                serving_last_accepted: false,
            };
        };
        let env = self.settings.environment(
            &self.ctx.cluster_name,
            d.subnets.as_deref(),
            d.certificates.as_deref(),
            d.security_groups.as_ref(),
        );
        match super::builder::build(svc, &env) {
            Ok(model) => Desired {
                model: Some(model),
                problem: None,
                serving_last_accepted: false,
            },
            Err(problem) => {
                let last: Option<GroupModel> = f
                    .previous
                    .as_ref()
                    .and_then(|s| s.members.first())
                    .and_then(|m| m.last_accepted.as_deref())
                    .and_then(|j| serde_json::from_str(j).ok());
                Desired {
                    serving_last_accepted: last.is_some(),
                    model: last,
                    problem: Some(problem),
                }
            }
        }
    }

    /// Observe only what we own: the ARNs in our status, then our names.
    async fn observe(
        &self,
        scope: Scope<'_>,
        known: &Known,
        model: &GroupModel,
    ) -> Result<Observed, Error> {
        stack::observe_owned(&self.aws, scope, known, model).await
    }

    /// Status: the stack object's status (or its deletion once nothing is left), the
    /// Service's hostname and condition, Events, and the finalizer once all is gone.
    async fn status(
        &self,
        f: Fetched,
        model: &GroupModel,
        desired: &Desired,
        applied: Applied,
    ) -> Result<Next, Error> {
        let Applied {
            observed,
            outcome,
            held,
        } = applied;
        let svc_ref = service_ref(&f);
        let previous_member = f.previous.as_ref().and_then(|s| s.members.first());
        if let Some(p) = &desired.problem
            && previous_member.is_none_or(|m| {
                m.reason.as_deref() != Some(p.reason) || m.message.as_deref() != Some(&p.message)
            })
        {
            let note = match desired.serving_last_accepted {
                true => format!(
                    "change rejected: {}; the NLB keeps its last accepted configuration until this is fixed",
                    p.message
                ),
                false => format!("no NLB is made: {}", p.message),
            };
            self.ctx.events.warn(&svc_ref, p.reason, note).await;
        }
        if let Err(e) = &outcome {
            self.ctx
                .events
                .warn(&svc_ref, reason::AWS_ERROR, e.to_string())
                .await;
        }
        let apply_outcome = match &outcome {
            Ok(()) => ApplyOutcome::Converged,
            Err(e) => ApplyOutcome::Failed {
                reason: reason::AWS_ERROR,
                message: e.to_string(),
            },
        };
        let groups: Api<LoadBalancerGroup> = Api::all(self.ctx.client.clone());
        let released = !f.wanted && observed.is_empty() && outcome.is_ok() && held == 0;
        if released {
            if f.group.is_some() {
                ignore_not_found(
                    groups
                        .delete(&f.object_name, &DeleteParams::default())
                        .await
                        .map(|_| ()),
                )
                .map_err(|e| Error::Status(boxed(e)))?;
            }
            self.release(&f).await?;
            return Ok(Next::AwaitChange);
        }
        let build = BuildOutput {
            model: model.clone(),
            members: if f.wanted {
                vec![MemberOutcome {
                    namespace: f.namespace.clone(),
                    name: f.name.clone(),
                    shard: desired.model.as_ref().map(|_| 0),
                    problem: desired.problem.clone(),
                    serving_last_accepted: desired.serving_last_accepted,
                    accepted_spec: None,
                }]
            } else {
                Vec::new()
            },
            notes: Vec::new(),
        };
        let mut new_status = status::group_status(
            f.previous.as_ref(),
            &build,
            &observed,
            &apply_outcome,
            &SystemClock,
        );
        if let Some(m) = new_status.members.first_mut() {
            m.last_accepted = desired
                .model
                .as_ref()
                .and_then(|m| serde_json::to_string(m).ok());
        }
        if desired.model.is_none() {
            // Nothing was planned: what the status recorded stays recorded.
            if let Some(p) = &f.previous {
                new_status.load_balancers = p.load_balancers.clone();
                new_status.target_groups = p.target_groups.clone();
                new_status.security_groups = p.security_groups.clone();
            }
        }
        if f.group.is_none() {
            stack::ensure_group_object(&self.ctx.client, &f.object_name, self.group_spec(&f))
                .await
                .map_err(Error::Status)?;
        }
        if f.previous.as_ref() != Some(&new_status) {
            crate::k8s::apply::apply_status::<LoadBalancerGroup>(
                &groups,
                &f.object_name,
                &new_status,
            )
            .await
            .map_err(|e| Error::Status(boxed(e)))?;
        }
        if f.wanted {
            self.report(&f, &build, &observed, desired, &outcome)
                .await?;
        }
        outcome.map_err(Error::Apply)?;
        Ok(match held {
            0 => Next::AwaitChange,
            _ => Next::After(std::time::Duration::from_secs(3)),
        })
    }

    /// The Service's `status.loadBalancer` (the NLB's DNS name once it exists) and its
    /// condition.
    async fn report(
        &self,
        f: &Fetched,
        build: &BuildOutput,
        observed: &Observed,
        desired: &Desired,
        outcome: &Result<(), AwsError>,
    ) -> Result<(), Error> {
        let Some(svc) = &f.service else {
            return Ok(());
        };
        let hostname = build
            .members
            .first()
            .and_then(|m| status::member_hostname(build, observed, m));
        let (ready, why, message) = match (&desired.problem, outcome, &hostname) {
            (Some(p), _, _) => (false, p.reason, p.message.clone()),
            (None, Err(e), _) => (false, reason::AWS_ERROR, e.to_string()),
            (None, Ok(()), None) => (false, reason::PENDING, "waiting for the NLB".to_owned()),
            (None, Ok(()), Some(h)) => (true, reason::RECONCILED, format!("NLB {h}")),
        };
        let mut conditions = svc
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let before = conditions.clone();
        set_condition(
            &mut conditions,
            CONDITION,
            ready,
            why,
            &message,
            None,
            &SystemClock,
        );
        let current: Vec<String> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .map(|v| v.iter().filter_map(|i| i.hostname.clone()).collect())
            .unwrap_or_default();
        let wanted_hosts: Vec<String> = hostname.iter().cloned().collect();
        if before == conditions && (current == wanted_hosts || hostname.is_none()) {
            return Ok(());
        }
        let ours: Vec<_> = conditions.iter().filter(|c| c.type_ == CONDITION).collect();
        let mut patch = json!({
            "apiVersion": "v1", "kind": "Service",
            "status": {"conditions": ours},
        });
        if let Some(h) = &hostname {
            patch["status"]["loadBalancer"] = json!({"ingress": [{"hostname": h}]});
        }
        let api: Api<Service> = Api::namespaced(self.ctx.client.clone(), &f.namespace);
        api.patch_status(
            &f.name,
            &PatchParams::apply(crate::FIELD_MANAGER).force(),
            &Patch::Apply(patch),
        )
        .await
        .map_err(|e| Error::Status(boxed(e)))?;
        if hostname.is_some() && current != wanted_hosts {
            info!(service = %format!("{}/{}", f.namespace, f.name), "NLB ready");
        }
        Ok(())
    }

    /// Everything of ours is gone: a Service that is still there (no longer ours) loses the
    /// hostname and condition we set, then the finalizer.
    async fn release(&self, f: &Fetched) -> Result<(), Error> {
        let Some(svc) = &f.service else {
            return Ok(());
        };
        let api: Api<Service> = Api::namespaced(self.ctx.client.clone(), &f.namespace);
        if svc.meta().deletion_timestamp.is_none() {
            ignore_not_found(
                api.patch_status(
                    &f.name,
                    &PatchParams::apply(crate::FIELD_MANAGER).force(),
                    &Patch::Apply(json!({
                        "apiVersion": "v1", "kind": "Service",
                        "status": {"loadBalancer": {}}
                    })),
                )
                .await
                .map(|_| ()),
            )
            .map_err(|e| Error::Status(boxed(e)))?;
        }
        if has_finalizer(svc.as_ref(), NLB_FINALIZER) {
            remove_finalizer(&api, svc.as_ref(), NLB_FINALIZER)
                .await
                .map_err(|e| Error::Status(boxed(e)))?;
        }
        info!(service = %format!("{}/{}", f.namespace, f.name), "NLB released");
        Ok(())
    }
}

/// What an immutable change replaces, said before it happens: the replacement is created
/// first, traffic moves to it, and only then the old one goes.
fn replacement(steps: &[Step]) -> Option<String> {
    let count = |f: fn(&Step) -> bool| steps.iter().filter(|s| f(s)).count();
    let lbs = (
        count(|s| matches!(s, Step::CreateLoadBalancer { .. })),
        count(|s| matches!(s, Step::DeleteLoadBalancer { .. })),
    );
    let tgs = (
        count(|s| matches!(s, Step::CreateTargetGroup(_))),
        count(|s| matches!(s, Step::DeleteTargetGroup { .. })),
    );
    if lbs.0 > 0 && lbs.1 > 0 {
        Some("the scheme or name changed, which an NLB cannot change in place: a new NLB is created, then the old one deleted; the Service's hostname changes".into())
    } else if tgs.0 > 0 && tgs.1 > 0 {
        Some(format!(
            "{} target group(s) are replaced (target type, protocol or port changed): the new ones are created and their listeners switched before the old ones are deleted",
            tgs.0
        ))
    } else {
        None
    }
}

/// An empty model of the Service's stack (what a released Service wants).
fn service_model(f: &Fetched, empty: fn(&str) -> GroupModel) -> GroupModel {
    GroupModel {
        kind: StackKind::Service,
        ..empty(&format!("{}/{}", f.namespace, f.name))
    }
}

fn service_ref(f: &Fetched) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        namespace: Some(f.namespace.clone()),
        name: Some(f.name.clone()),
        uid: f.service.as_ref().and_then(|s| s.uid()),
        ..ObjectReference::default()
    }
}
