//! One reconcile of one IngressGroup, as its steps:
//!
//! 1. [`fetch`](Reconciler::fetch): the group object (fresh: its status holds the ARNs we
//!    own), the member Ingresses and the ones to release;
//! 2. [`admit`](Reconciler::admit): finalizers on members and the group object, before
//!    anything exists in AWS (the finalizer is the only top-level action);
//! 3. [`discover`](Reconciler::discover): VPC, subnets, certificates, named security groups;
//! 4. [`desired`](Reconciler::desired): the builder (pure), with one certificate re-read;
//! 5. [`observe`](Reconciler::observe): what we own, by recorded ARN and by our names;
//! 6. [`plan`]: AWS steps (pure) and stale TargetGroupBindings (pure);
//! 7. [`apply`](Reconciler::apply): bindings pruned, steps applied, AWS re-read, bindings
//!    written;
//! 8. [`status`](Reconciler::status): group status, Ingress hostnames, Events, releases.
//!
//! Each step that can fail has its own [`Error`] variant, which keeps its source and gives
//! the metric label.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::adopt;
use super::annotations::{
    Annotations, OidcClients, named_target_groups, named_trust_stores, named_web_acls,
};
use super::aws::{AlbApi, AwsError, Known, Scope};
use super::builder::{self, BuildOutput, CertInfo, Member, SubnetInfo};
use super::class;
use super::controller::Reconciler;
use super::model::ClientSecrets;
use super::naming;
use super::observed::Observed;
use super::secrets;
use super::settings;
use super::stack::{self, Applied, ignore_not_found};
use super::status::{self, ApplyOutcome};
use crate::crd::{
    LoadBalancerGroup, LoadBalancerGroupSpec, LoadBalancerGroupStatus, TargetGroupBinding,
};
use crate::k8s::conditions::{SystemClock, reason};
use crate::k8s::finalizer::{
    ALB_FINALIZER, add_finalizer, has_finalizer, is_lbc_ingress_finalizer, remove_finalizers,
};
use crate::k8s::runtime::Next;

/// How old the cached certificate list may be when a member names a certificate it lacks.
const CERTIFICATE_RECHECK: Duration = Duration::from_secs(10);
/// When a group is looked at again while a member's certificate is not found.
const CERTIFICATE_REQUEUE: Duration = Duration::from_secs(30);
/// When a group is looked at again while a target group waits for its binding to let go.
const BINDING_RELEASE_REQUEUE: Duration = Duration::from_secs(3);

pub use super::stack::Error;
use super::stack::{BoxError, boxed};

/// What the fetch step found.
pub(super) struct Fetched {
    object_name: String,
    group: Option<LoadBalancerGroup>,
    previous: Option<LoadBalancerGroupStatus>,
    /// Members, with their membership.
    active: Vec<(Arc<Ingress>, class::Membership)>,
    /// Deleted or departed Ingresses whose rules must go before their finalizer does.
    releasing: Vec<Arc<Ingress>>,
    /// The OIDC client Secrets the members name: client IDs for the builder (or why a
    /// Secret could not be used), client secrets for the applier.
    oidc_clients: OidcClients,
    client_secrets: ClientSecrets,
}

/// What discovery found for the builder.
struct Discovered {
    vpc_id: String,
    subnets: Option<Vec<SubnetInfo>>,
    certificates: Option<Vec<CertInfo>>,
    security_groups: Option<BTreeMap<String, Vec<String>>>,
    target_groups: Option<BTreeMap<String, String>>,
    web_acls: Option<BTreeMap<String, String>>,
    trust_stores: Option<BTreeMap<String, String>>,
    services: BTreeMap<(String, String), Service>,
}

impl<A: AlbApi> Reconciler<A> {
    pub(super) async fn reconcile_group(&self, stack: &str) -> Result<Next, Error> {
        let Some(mut fetched) = self.fetch(stack).await? else {
            return Ok(Next::AwaitChange);
        };
        self.admit(stack, &mut fetched).await?;
        let discovered = self.discover(&fetched).await?;
        let mut build = self.desired(stack, &fetched, &discovered).await?;
        let scope = self.scope(&discovered.vpc_id);
        let refused = build.members.iter().any(|m| m.problem.is_some());
        let Some(known) = adopt::adopt(
            &self.aws,
            scope,
            &mut fetched.previous,
            &mut build.model,
            refused,
        )
        .await
        .map_err(Error::Adopt)?
        else {
            self.hold_adoption(&fetched, &build).await;
            return Ok(Next::AwaitChange);
        };
        let observed = self.observe(scope, &known, &build).await?;
        let mut plan = stack::plan_stack(
            &fetched.object_name,
            &build.model,
            &observed,
            self.cached_bindings(),
            &self.ctx.cluster_name,
        );
        let sent = fetched
            .previous
            .as_ref()
            .map(|p| p.client_secret_versions.clone())
            .unwrap_or_default();
        crate::alb::plan::resend_rotated(
            &build.model,
            &observed,
            &self.ctx.cluster_name,
            &crate::alb::plan::rotated(&build.model, &fetched.client_secrets, &sent),
            &mut plan.steps,
        );
        let applied = stack::apply(
            &self.ctx.client,
            &self.aws,
            scope,
            stack::StackRef {
                object_name: &fetched.object_name,
                group: fetched.group.as_ref(),
                previous: fetched.previous.as_ref(),
            },
            &build.model,
            &known,
            plan,
            observed,
            &fetched.client_secrets,
            self.known_vpc_id().as_deref(),
            &self.cached_bindings(),
        )
        .await?;
        self.status(stack, fetched, &build, applied).await
    }

    /// The stack has resources to adopt, and a refused member: each refused member is told
    /// why nothing changes yet.
    async fn hold_adoption(&self, f: &Fetched, build: &BuildOutput) {
        for m in &build.members {
            let Some(p) = &m.problem else { continue };
            let Some((ing, _)) = f.active.iter().find(|(i, _)| {
                i.namespace().as_deref() == Some(&m.namespace) && i.name_any() == m.name
            }) else {
                continue;
            };
            let message = format!(
                "the group's existing load balancer is adopted, unchanged, once this Ingress is accepted: {} ({})",
                p.message, p.reason
            );
            self.ctx
                .events
                .warn(&ingress_ref(ing), adopt::ADOPTION_HELD, message)
                .await;
        }
    }

    fn scope<'a>(&'a self, vpc_id: &'a str) -> Scope<'a> {
        Scope {
            vpc_id,
            cluster: &self.ctx.cluster_name,
        }
    }

    fn cached_bindings(&self) -> Vec<Arc<TargetGroupBinding>> {
        self.ctx.caches.target_group_bindings.state()
    }

    /// Fetch. `None`: the group belongs to another causeway instance.
    async fn fetch(&self, stack: &str) -> Result<Option<Fetched>, Error> {
        let object_name = naming::group_object_name(stack);
        // Read fresh, not from the cache: the status holds the ARNs we own and was likely
        // written by the previous reconcile a moment ago.
        let groups: Api<LoadBalancerGroup> = Api::all(self.ctx.client.clone());
        let group = groups
            .get_opt(&object_name)
            .await
            .map_err(|e| Error::Fetch(boxed(e)))?
            .filter(|g| g.spec.stack == stack && g.spec.kind.is_ingress());
        if group
            .as_ref()
            .is_some_and(|g| g.spec.controller != self.owner())
        {
            warn!(
                stack,
                "the group belongs to another causeway instance; leaving it alone"
            );
            return Ok(None);
        }
        let previous = group.as_ref().and_then(|g| g.status.clone());
        let mut active = Vec::new();
        let mut releasing = Vec::new();
        for ing in self.stores.ingresses.state() {
            let ns = ing.namespace().unwrap_or_default();
            let listed = previous.as_ref().is_some_and(|s| {
                s.members
                    .iter()
                    .any(|m| m.namespace == ns && m.name == ing.name_any())
            });
            let deleting = ing.meta().deletion_timestamp.is_some();
            match self.membership(&ing) {
                Some(m) if m.group.stack() == stack && !deleting => active.push((ing, m)),
                Some(m)
                    if m.group.stack() == stack && has_finalizer(ing.as_ref(), ALB_FINALIZER) =>
                {
                    releasing.push(ing)
                }
                None if listed && has_finalizer(ing.as_ref(), ALB_FINALIZER) => releasing.push(ing),
                _ => {}
            }
        }
        let wanted = secrets::wanted(active.iter().map(|(i, _)| i.as_ref()), |ns, name| {
            self.stores
                .services
                .get(&kube::runtime::reflector::ObjectRef::new(name).within(ns))
        });
        let (oidc_clients, client_secrets) = secrets::read(&self.ctx.client, &wanted)
            .await
            .map_err(|e| Error::Fetch(boxed(e)))?;
        Ok(Some(Fetched {
            object_name,
            group,
            previous,
            active,
            releasing,
            oidc_clients,
            client_secrets,
        }))
    }

    /// Admit: finalizers first, so nothing gets created for an Ingress we could then not
    /// clean up; and the group object before anything in AWS, so it can own the bindings.
    async fn admit(&self, stack: &str, f: &mut Fetched) -> Result<(), Error> {
        for (ing, _) in &f.active {
            if !has_finalizer(ing.as_ref(), ALB_FINALIZER) {
                let api: Api<Ingress> = Api::namespaced(
                    self.ctx.client.clone(),
                    &ing.namespace().unwrap_or_default(),
                );
                add_finalizer(&api, ing.as_ref(), ALB_FINALIZER)
                    .await
                    .map_err(|e| Error::Admit(boxed(e)))?;
            }
        }
        if f.group.is_none() && !f.active.is_empty() {
            f.group = Some(
                self.ensure_group_object(stack, &f.object_name)
                    .await
                    .map_err(|e| Error::Admit(boxed(e)))?,
            );
        }
        Ok(())
    }

    async fn ensure_group_object(
        &self,
        stack: &str,
        object_name: &str,
    ) -> Result<LoadBalancerGroup, crate::k8s::apply::ApplyError> {
        let groups: Api<LoadBalancerGroup> = Api::all(self.ctx.client.clone());
        let obj = LoadBalancerGroup::new(
            object_name,
            LoadBalancerGroupSpec {
                stack: stack.to_owned(),
                controller: self.owner().to_owned(),
                kind: Default::default(),
            },
        );
        crate::k8s::apply::apply(&groups, &obj).await
    }

    /// Discover what the builder needs from AWS and the Service cache.
    async fn discover(&self, f: &Fetched) -> Result<Discovered, Error> {
        let vpc_id = self.vpc_id().await.map_err(Error::Discover)?;
        let scope = self.scope(&vpc_id);
        let subnets = if f.active.is_empty() {
            None
        } else {
            Some(self.subnets(scope).await.map_err(Error::Discover)?)
        };
        let wants_https = f.active.iter().any(|(i, _)| {
            let a = i.annotations();
            a.values().any(|v| v.contains("HTTPS"))
                || i.spec
                    .as_ref()
                    .and_then(|s| s.tls.as_ref())
                    .is_some_and(|t| !t.is_empty())
                || a.keys().any(|k| k.ends_with("certificate-arn"))
        });
        let certificates = if wants_https {
            Some(
                self.certificates(self.settings.discovery_ttl)
                    .await
                    .map_err(Error::Discover)?,
            )
        } else {
            None
        };
        // The security-groups annotation's entries, resolved in the VPC (IDs and Name tags).
        let sg_entries: BTreeSet<String> = f
            .active
            .iter()
            .flat_map(|(i, _)| Annotations::alb(i.annotations()).list("security-groups"))
            .collect();
        let security_groups = if sg_entries.is_empty() {
            None
        } else {
            Some(
                self.aws
                    .resolve_security_groups(scope, &sg_entries)
                    .await
                    .map_err(Error::Discover)?,
            )
        };
        // Target groups that actions.* annotations name by targetGroupName.
        let tg_names: BTreeSet<String> = f
            .active
            .iter()
            .flat_map(|(i, _)| named_target_groups(i.annotations()))
            .collect();
        let target_groups = if tg_names.is_empty() {
            None
        } else {
            Some(
                self.aws
                    .resolve_target_groups(&tg_names)
                    .await
                    .map_err(Error::Discover)?,
            )
        };
        // Web ACLs named by wafv2-acl-name or -arn, on Ingresses or their IngressClassParams.
        let acl_names: BTreeSet<String> = f
            .active
            .iter()
            .flat_map(|(i, m)| {
                named_web_acls(i.annotations()).into_iter().chain(
                    m.params
                        .iter()
                        .flat_map(|p| [p.spec.wafv2_acl_name.clone(), p.spec.wafv2_acl_arn.clone()])
                        .flatten()
                        .filter(|n| n != "none"),
                )
            })
            .collect();
        let web_acls = if acl_names.is_empty() {
            None
        } else {
            Some(
                self.aws
                    .resolve_web_acls(&acl_names)
                    .await
                    .map_err(Error::Discover)?,
            )
        };
        // Trust stores named (not by ARN) in mutual-authentication.
        let store_names: BTreeSet<String> = f
            .active
            .iter()
            .flat_map(|(i, _)| named_trust_stores(i.annotations()))
            .collect();
        let trust_stores = if store_names.is_empty() {
            None
        } else {
            Some(
                self.aws
                    .resolve_trust_stores(&store_names)
                    .await
                    .map_err(Error::Discover)?,
            )
        };
        let namespaces: BTreeSet<String> =
            f.active.iter().filter_map(|(i, _)| i.namespace()).collect();
        let mut services = BTreeMap::new();
        for s in self.stores.services.state() {
            let ns = s.namespace().unwrap_or_default();
            if namespaces.contains(&ns) {
                services.insert((ns, s.name_any()), (*s).clone());
            }
        }
        Ok(Discovered {
            vpc_id,
            subnets,
            certificates,
            security_groups,
            target_groups,
            web_acls,
            trust_stores,
            services,
        })
    }

    /// Desired: the builder (pure). A certificate imported after the list was cached must
    /// not be reported missing: the list is read again (at most every CERTIFICATE_RECHECK)
    /// before saying so.
    async fn desired(
        &self,
        stack: &str,
        f: &Fetched,
        d: &Discovered,
    ) -> Result<BuildOutput, Error> {
        let members: Vec<Member<'_>> = f
            .active
            .iter()
            .map(|(i, m)| Member {
                ingress: i.as_ref(),
                membership: m.clone(),
                last_accepted: f.previous.as_ref().and_then(|s| {
                    let ns = i.namespace().unwrap_or_default();
                    s.members
                        .iter()
                        .find(|x| x.namespace == ns && x.name == i.name_any())
                        .and_then(|x| x.last_accepted.as_deref())
                }),
            })
            .collect();
        let build_with = |certificates: Option<&[CertInfo]>| {
            builder::build(
                stack,
                &members,
                &self.settings.environment(
                    &self.ctx.cluster_name,
                    settings::Discovered {
                        services: &d.services,
                        subnets: d.subnets.as_deref(),
                        certificates,
                        security_groups: d.security_groups.as_ref(),
                        target_groups: d.target_groups.as_ref(),
                        oidc_clients: Some(&f.oidc_clients),
                        web_acls: d.web_acls.as_ref(),
                        trust_stores: d.trust_stores.as_ref(),
                    },
                ),
            )
        };
        let build = build_with(d.certificates.as_deref());
        if certificate_missing(&build)
            && let Some(cached) = &d.certificates
        {
            let fresh = self
                .certificates(CERTIFICATE_RECHECK)
                .await
                .map_err(Error::Discover)?;
            if *cached != fresh {
                return Ok(build_with(Some(&fresh)));
            }
        }
        Ok(build)
    }

    /// Observe only what we own: the ARNs in our status, then our names.
    async fn observe(
        &self,
        scope: Scope<'_>,
        known: &Known,
        build: &BuildOutput,
    ) -> Result<Observed, Error> {
        stack::observe_owned(&self.aws, scope, known, &build.model).await
    }

    /// Status: the group's status (or its deletion once nothing is left), member hostnames
    /// and Events, then, only once their rules are gone from AWS, the released Ingresses.
    async fn status(
        &self,
        stack: &str,
        f: Fetched,
        build: &BuildOutput,
        applied: Applied,
    ) -> Result<Next, Error> {
        let Applied {
            observed,
            outcome,
            held,
        } = applied;
        let apply_outcome = match &outcome {
            Ok(()) => ApplyOutcome::Converged,
            Err(AwsError::DependencyViolation(id)) => ApplyOutcome::Failed {
                reason: status::group_reason::DEPENDENCY_VIOLATION,
                message: format!(
                    "security group {id} is still referenced; retrying until it can be deleted"
                ),
            },
            Err(e) => ApplyOutcome::Failed {
                reason: reason::AWS_ERROR,
                message: e.to_string(),
            },
        };
        let mut new_status = status::group_status(
            f.previous.as_ref(),
            build,
            &observed,
            &apply_outcome,
            &SystemClock,
        );
        if outcome.is_ok() {
            new_status.client_secret_versions =
                crate::alb::plan::client_secret_versions(&build.model, &f.client_secrets);
        }
        self.write_group_status(stack, &f, &observed, outcome.is_ok(), &new_status)
            .await?;
        self.report_members(stack, &f, build, &observed).await?;
        if let Err(e) = &outcome {
            for (ing, _) in &f.active {
                self.ctx
                    .events
                    .warn(&ingress_ref(ing), reason::AWS_ERROR, e.to_string())
                    .await;
            }
        }
        outcome.map_err(Error::Apply)?;
        self.release(f.releasing).await?;
        // A certificate may be imported or issued soon, and a binding releases its target
        // group within seconds: look again without waiting for a change.
        Ok(if held > 0 {
            Next::After(BINDING_RELEASE_REQUEUE)
        } else if certificate_missing(build) {
            Next::After(CERTIFICATE_REQUEUE)
        } else {
            Next::AwaitChange
        })
    }

    async fn write_group_status(
        &self,
        stack: &str,
        f: &Fetched,
        observed: &Observed,
        converged: bool,
        new_status: &LoadBalancerGroupStatus,
    ) -> Result<(), Error> {
        let groups: Api<LoadBalancerGroup> = Api::all(self.ctx.client.clone());
        let status_err = |e: BoxError| Error::Status(e);
        if f.active.is_empty() && observed.is_empty() && converged {
            if f.group.is_some() {
                ignore_not_found(
                    groups
                        .delete(&f.object_name, &DeleteParams::default())
                        .await
                        .map(|_| ()),
                )
                .map_err(|e| status_err(boxed(e)))?;
            }
            return Ok(());
        }
        if f.group.is_none() {
            self.ensure_group_object(stack, &f.object_name)
                .await
                .map_err(|e| status_err(boxed(e)))?;
        }
        if f.previous.as_ref() != Some(new_status) {
            crate::k8s::apply::apply_status::<LoadBalancerGroup>(
                &groups,
                &f.object_name,
                new_status,
            )
            .await
            .map_err(|e| status_err(boxed(e)))?;
        }
        Ok(())
    }

    /// Ingress status and Events for members whose standing changed.
    async fn report_members(
        &self,
        stack: &str,
        f: &Fetched,
        build: &BuildOutput,
        observed: &Observed,
    ) -> Result<(), Error> {
        for m in &build.members {
            let Some((ing, _)) = f.active.iter().find(|(i, _)| {
                i.namespace().as_deref() == Some(&m.namespace) && i.name_any() == m.name
            }) else {
                continue;
            };
            let before = f.previous.as_ref().and_then(|s| {
                s.members
                    .iter()
                    .find(|x| x.namespace == m.namespace && x.name == m.name)
            });
            let obj_ref = ingress_ref(ing);
            match &m.problem {
                Some(p) => {
                    if before.is_none_or(|b| {
                        b.reason.as_deref() != Some(p.reason)
                            || b.message.as_deref() != Some(&p.message)
                            || b.serving_last_accepted != m.serving_last_accepted
                    }) {
                        let note = if m.serving_last_accepted {
                            format!(
                                "change rejected in load balancer group {stack}: {}; its last accepted rules stay in place until this is fixed",
                                p.message
                            )
                        } else {
                            format!("left out of load balancer group {stack}: {}", p.message)
                        };
                        self.ctx.events.warn(&obj_ref, p.reason, note).await;
                    }
                    if m.serving_last_accepted
                        && let Some(host) = status::member_hostname(build, observed, m)
                    {
                        self.set_hostname(ing, &host).await?;
                    }
                }
                None => {
                    if before.is_none_or(|b| !b.accepted) {
                        self.ctx
                            .events
                            .normal(
                                &obj_ref,
                                "Accepted",
                                format!("member of load balancer group {stack}"),
                            )
                            .await;
                    }
                    if let Some(host) = status::member_hostname(build, observed, m) {
                        self.set_hostname(ing, &host).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Deleted or departed Ingresses go only now, with their rules gone from AWS. One that
    /// is no longer ours loses the hostname we set, then the finalizer.
    async fn release(&self, releasing: Vec<Arc<Ingress>>) -> Result<(), Error> {
        for ing in releasing {
            let api: Api<Ingress> = Api::namespaced(
                self.ctx.client.clone(),
                &ing.namespace().unwrap_or_default(),
            );
            if ing.meta().deletion_timestamp.is_none() {
                ignore_not_found(
                    api.patch_status(
                        &ing.name_any(),
                        &PatchParams::apply(crate::FIELD_MANAGER).force(),
                        &Patch::Apply(json!({
                            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                            "status": {"loadBalancer": {}}
                        })),
                    )
                    .await
                    .map(|_| ()),
                )
                .map_err(|e| Error::Status(boxed(e)))?;
            }
            // A deleted Ingress the peer served also carries its finalizers; the stack they
            // guard is ours now, and the peer is not running to release them.
            let deleting = ing.meta().deletion_timestamp.is_some();
            remove_finalizers(&api, ing.as_ref(), |f| {
                f == ALB_FINALIZER || (deleting && is_lbc_ingress_finalizer(f))
            })
            .await
            .map_err(|e| Error::Status(boxed(e)))?;
            info!(ingress = %format!("{}/{}", ing.namespace().unwrap_or_default(), ing.name_any()), "released");
        }
        Ok(())
    }

    async fn set_hostname(&self, ing: &Ingress, host: &str) -> Result<(), Error> {
        let current: Vec<String> = ing
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .map(|v| v.iter().filter_map(|i| i.hostname.clone()).collect())
            .unwrap_or_default();
        if current == [host.to_owned()] {
            return Ok(());
        }
        let api: Api<Ingress> = Api::namespaced(
            self.ctx.client.clone(),
            &ing.namespace().unwrap_or_default(),
        );
        api.patch_status(
            &ing.name_any(),
            &PatchParams::apply(crate::FIELD_MANAGER).force(),
            &Patch::Apply(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "status": {"loadBalancer": {"ingress": [{"hostname": host}]}}
            })),
        )
        .await
        .map_err(|e| Error::Status(boxed(e)))?;
        Ok(())
    }
}

/// Whether a member is left out (or kept on its last accepted configuration) for want of a
/// certificate.
fn certificate_missing(build: &BuildOutput) -> bool {
    build.members.iter().any(|m| {
        m.problem
            .as_ref()
            .is_some_and(|p| p.reason == super::annotations::reason::CERTIFICATE_NOT_FOUND)
    })
}

fn ingress_ref(ing: &Ingress) -> ObjectReference {
    ObjectReference {
        api_version: Some("networking.k8s.io/v1".into()),
        kind: Some("Ingress".into()),
        namespace: ing.namespace(),
        name: Some(ing.name_any()),
        uid: ing.uid(),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests;
