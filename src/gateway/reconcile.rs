//! One reconcile of one Gateway, as its steps:
//!
//! 1. [`fetch`](Reconciler::fetch): the Gateway and its class (from the caches), its
//!    LoadBalancerConfiguration and its LoadBalancerGroup (fresh: the status holds the ARNs
//!    we own);
//! 2. [`admit`](Reconciler::admit): the finalizer and the stack object, before anything
//!    exists in AWS;
//! 3. [`discover`](Reconciler::discover): VPC, subnets, certificates;
//! 4. [`desired`](Reconciler::desired): [`super::build`] (pure);
//! 5. observe: what we own, by recorded ARN and by our names;
//! 6. plan (pure) and 7. apply: the ALB stack steps and TargetGroupBindings, as for an
//!    Ingress group;
//! 8. [`status`](Reconciler::status): the stack object, the Gateway's, its listeners' and
//!    its routes' status, Events; the finalizer goes once nothing of ours is left.
//!
//! A GatewayClass of ours gets `Accepted` ([`reconcile_class`](Reconciler::reconcile_class)).

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use kube::api::{Api, DeleteParams};
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::build::{self, Built, Inputs};
use super::controller::Reconciler;
use super::{ALB_FINALIZER, reason};
use crate::alb::aws::{AlbApi, Known, Scope};
use crate::alb::builder::{BuildOutput, CertInfo, MemberOutcome, SubnetInfo};
use crate::alb::model::{ClientSecrets, GroupModel, StackKind};
use crate::alb::naming;
use crate::alb::stack::{self, Applied, boxed, ignore_not_found};
use crate::alb::status::{self as alb_status, ApplyOutcome};
use crate::crd::{
    LoadBalancerConfiguration, LoadBalancerConfigurationSpec, LoadBalancerGroup,
    LoadBalancerGroupSpec, LoadBalancerGroupStatus,
};
use crate::k8s::conditions::SystemClock;
use crate::k8s::finalizer::{has_finalizer, remove_finalizer};
use crate::k8s::runtime::Next;
use crate::k8s::runtime::watch::get;

pub use crate::alb::stack::Error;

/// The group of the peer's configuration kinds.
const CONFIG_GROUP: &str = "gateway.k8s.aws";

pub(super) struct Fetched {
    pub namespace: String,
    pub name: String,
    object_name: String,
    pub gateway: Option<Arc<Gateway>>,
    /// The Gateway's class is ours and it is not being deleted.
    wanted: bool,
    /// The LoadBalancerConfiguration its class or infrastructure names; `Err`: named but
    /// unusable (the reason's message).
    pub config: Result<Option<LoadBalancerConfigurationSpec>, String>,
    group: Option<LoadBalancerGroup>,
    previous: Option<LoadBalancerGroupStatus>,
}

struct Discovered {
    vpc_id: String,
    subnets: Option<Vec<SubnetInfo>>,
    certificates: Option<Vec<CertInfo>>,
}

impl<A: AlbApi> Reconciler<A> {
    pub(super) async fn reconcile_gateway(&self, key: &str) -> Result<Next, Error> {
        let Some(mut f) = self.fetch(key).await? else {
            return Ok(Next::AwaitChange);
        };
        self.admit(&mut f).await?;
        let d = self.discover(&f).await?;
        let built = self.desired(&f, &d);
        let scope = Scope {
            vpc_id: &d.vpc_id,
            cluster: &self.ctx.cluster_name,
        };
        let known: Known = stack::known(f.previous.as_ref());
        // Bad input for the whole Gateway (a bad configuration, no subnets) plans nothing:
        // what exists stays as it is.
        let model = match &built {
            Some(b) if b.problem.is_none() => b.model.clone(),
            _ if !f.wanted => empty_model(&f),
            _ => GroupModel {
                kind: StackKind::AlbGateway,
                ..GroupModel::empty(&format!("{}/{}", f.namespace, f.name))
            },
        };
        let plans = !f.wanted || built.as_ref().is_some_and(|b| b.problem.is_none());
        let observed = stack::observe_owned(&self.aws, scope, &known, &model).await?;
        let plan = match plans {
            true => stack::plan_stack(
                &f.object_name,
                &model,
                &observed,
                self.ctx.caches.target_group_bindings.state(),
                &self.ctx.cluster_name,
            ),
            false => stack::StackPlan {
                stale_bindings: Vec::new(),
                steps: Vec::new(),
                held: 0,
            },
        };
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
        self.status(f, &model, built.as_ref(), applied).await
    }

    /// Fetch. `None`: nothing of ours to do (another class's Gateway, never ours).
    async fn fetch(&self, key: &str) -> Result<Option<Fetched>, Error> {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let object_name = naming::gateway_object_name(namespace, name);
        let gateway = get(&self.stores.gateways, key);
        let groups: Api<LoadBalancerGroup> = Api::all(self.ctx.client.clone());
        let group = groups
            .get_opt(&object_name)
            .await
            .map_err(|e| Error::Fetch(boxed(e)))?
            .filter(|g| g.spec.kind == StackKind::AlbGateway && g.spec.stack == key);
        if group
            .as_ref()
            .is_some_and(|g| g.spec.controller != self.owner())
        {
            warn!(
                key,
                "the Gateway's ALB belongs to another causeway instance; leaving it alone"
            );
            return Ok(None);
        }
        let wanted = gateway.as_ref().is_some_and(|g| {
            self.class_is_ours(&g.spec.gateway_class_name) && g.meta().deletion_timestamp.is_none()
        });
        let ours_before = group.is_some()
            || gateway
                .as_ref()
                .is_some_and(|g| has_finalizer(g.as_ref(), ALB_FINALIZER));
        if !wanted && !ours_before {
            return Ok(None);
        }
        let config = match gateway.as_ref().filter(|_| wanted) {
            Some(g) => self.config(g).await?,
            None => Ok(None),
        };
        Ok(Some(Fetched {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            previous: group.as_ref().and_then(|g| g.status.clone()),
            object_name,
            gateway,
            wanted,
            config,
            group,
        }))
    }

    /// The LoadBalancerConfiguration the Gateway's infrastructure names (in its namespace),
    /// else the one its class names.
    async fn config(
        &self,
        gw: &Gateway,
    ) -> Result<Result<Option<LoadBalancerConfigurationSpec>, String>, Error> {
        let ns = gw.namespace().unwrap_or_default();
        let from_gateway = gw
            .spec
            .infrastructure
            .as_ref()
            .and_then(|i| i.parameters_ref.as_ref())
            .map(|p| {
                (
                    p.group.clone(),
                    p.kind.clone(),
                    Some(ns.clone()),
                    p.name.clone(),
                )
            });
        let from_class = get(&self.stores.classes, &gw.spec.gateway_class_name)
            .and_then(|c| c.spec.parameters_ref.clone())
            .map(|p| (p.group, p.kind, p.namespace, p.name));
        let Some((group, kind, namespace, name)) = from_gateway.or(from_class) else {
            return Ok(Ok(None));
        };
        if group != CONFIG_GROUP || kind != "LoadBalancerConfiguration" {
            return Ok(Err(format!(
                "parametersRef names a {group}/{kind}; an ALB Gateway takes a {CONFIG_GROUP} LoadBalancerConfiguration"
            )));
        }
        let Some(namespace) = namespace else {
            return Ok(Err(format!(
                "the GatewayClass parametersRef to LoadBalancerConfiguration {name} needs a namespace"
            )));
        };
        let api: Api<LoadBalancerConfiguration> =
            Api::namespaced(self.ctx.client.clone(), &namespace);
        Ok(
            match api
                .get_opt(&name)
                .await
                .map_err(|e| Error::Fetch(boxed(e)))?
            {
                Some(c) => Ok(Some(c.spec)),
                None => Err(format!(
                    "LoadBalancerConfiguration {namespace}/{name} does not exist"
                )),
            },
        )
    }

    /// The controller name recorded on the stacks this instance manages.
    pub(super) fn owner(&self) -> &str {
        self.settings.shared.class.owner()
    }

    /// Admit: the finalizer first, then the stack object, before anything in AWS.
    async fn admit(&self, f: &mut Fetched) -> Result<(), Error> {
        if !f.wanted {
            return Ok(());
        }
        let api: Api<Gateway> = Api::namespaced(self.ctx.client.clone(), &f.namespace);
        let spec = self.group_spec(f);
        stack::admit(
            &self.ctx.client,
            &api,
            f.gateway.as_deref(),
            ALB_FINALIZER,
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
            kind: StackKind::AlbGateway,
        }
    }

    /// Discover: VPC always; subnets and (for HTTPS listeners) certificates when wanted.
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
        };
        let Some(gw) = f.gateway.as_ref().filter(|_| f.wanted) else {
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
        if gw.spec.listeners.iter().any(|l| l.protocol == "HTTPS") {
            d.certificates = Some(
                self.discovery
                    .certificates(&self.aws, shared.discovery_ttl)
                    .await
                    .map_err(Error::Discover)?,
            );
        }
        Ok(d)
    }

    /// Desired (pure): the build; `None` for a Gateway being released.
    fn desired(&self, f: &Fetched, d: &Discovered) -> Option<Built> {
        let gw = f.gateway.as_ref().filter(|_| f.wanted)?;
        let services: BTreeMap<(String, String), Service> = self
            .stores
            .services
            .state()
            .iter()
            .map(|s| {
                (
                    (s.namespace().unwrap_or_default(), s.name_any()),
                    s.as_ref().clone(),
                )
            })
            .collect();
        let env = self.settings.shared.environment(
            &self.ctx.cluster_name,
            crate::alb::settings::Discovered {
                services: &services,
                subnets: d.subnets.as_deref(),
                certificates: d.certificates.as_deref(),
                security_groups: None,
                target_groups: None,
                oidc_clients: None,
                web_acls: None,
                trust_stores: None,
            },
        );
        let routes: Vec<_> = self
            .stores
            .routes
            .state()
            .iter()
            .map(|r| r.as_ref().clone())
            .collect();
        let grpc_routes: Vec<_> = self
            .stores
            .grpc_routes
            .state()
            .iter()
            .map(|r| r.as_ref().clone())
            .collect();
        let grants: Vec<_> = self
            .stores
            .grants
            .state()
            .iter()
            .map(|r| r.as_ref().clone())
            .collect();
        let tgcs: Vec<_> = self
            .stores
            .target_group_configs
            .state()
            .iter()
            .map(|r| r.as_ref().clone())
            .collect();
        let namespaces = &self.stores.namespaces;
        let labels = |ns: &str| get(namespaces, ns).and_then(|n| n.metadata.labels.clone());
        let config = match &f.config {
            Ok(c) => c.as_ref(),
            Err(message) => {
                let mut b = build::build(
                    gw,
                    &Inputs {
                        env: &env,
                        routes: &[],
                        grpc_routes: &[],
                        grants: &[],
                        target_group_configs: &[],
                        namespace_labels: &labels,
                        scheme: self.settings.scheme,
                        config: None,
                    },
                );
                b.problem = Some((reason::INVALID_PARAMETERS, message.clone()));
                return Some(b);
            }
        };
        Some(build::build(
            gw,
            &Inputs {
                env: &env,
                routes: &routes,
                grpc_routes: &grpc_routes,
                grants: &grants,
                target_group_configs: &tgcs,
                namespace_labels: &labels,
                scheme: self.settings.scheme,
                config,
            },
        ))
    }

    /// Status: the stack object's (or its deletion once nothing is left), the Gateway's and
    /// its routes', Events; the finalizer once all is gone.
    async fn status(
        &self,
        f: Fetched,
        model: &GroupModel,
        built: Option<&Built>,
        applied: Applied,
    ) -> Result<Next, Error> {
        let Applied {
            observed,
            outcome,
            held,
        } = applied;
        if let Err(e) = &outcome
            && let Some(gw) = &f.gateway
        {
            self.ctx
                .events
                .warn(
                    &gateway_ref(gw),
                    crate::k8s::conditions::reason::AWS_ERROR,
                    e.to_string(),
                )
                .await;
        }
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
        let problem = built.and_then(|b| b.problem.clone());
        let build_out = BuildOutput {
            model: model.clone(),
            members: if f.wanted {
                vec![MemberOutcome {
                    namespace: f.namespace.clone(),
                    name: f.name.clone(),
                    shard: problem.is_none().then_some(0),
                    problem: problem
                        .as_ref()
                        .map(|(r, m)| crate::alb::annotations::Problem::new(r, m.clone())),
                    serving_last_accepted: false,
                    accepted_spec: None,
                }]
            } else {
                Vec::new()
            },
            notes: Vec::new(),
        };
        let apply_outcome = match &outcome {
            Ok(()) => ApplyOutcome::Converged,
            Err(e) => ApplyOutcome::Failed {
                reason: crate::k8s::conditions::reason::AWS_ERROR,
                message: e.to_string(),
            },
        };
        let new_status = alb_status::group_status(
            f.previous.as_ref(),
            &build_out,
            &observed,
            &apply_outcome,
            &SystemClock,
        );
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
        if let (true, Some(gw), Some(b)) = (f.wanted, &f.gateway, built) {
            let lb = observed.load_balancers.first();
            let dns = lb.map(|l| l.dns_name.clone()).filter(|d| !d.is_empty());
            super::status::write(self, gw, b, dns.as_deref(), &outcome).await?;
        }
        outcome.map_err(Error::Apply)?;
        Ok(match held {
            0 => Next::AwaitChange,
            _ => Next::After(std::time::Duration::from_secs(3)),
        })
    }

    /// Everything of ours is gone: the routes lose our parent status, the Gateway its
    /// finalizer.
    async fn release(&self, f: &Fetched) -> Result<(), Error> {
        super::status::forget_routes(self, &f.namespace, &f.name).await?;
        let Some(gw) = &f.gateway else {
            return Ok(());
        };
        if has_finalizer(gw.as_ref(), ALB_FINALIZER) {
            let api: Api<Gateway> = Api::namespaced(self.ctx.client.clone(), &f.namespace);
            remove_finalizer(&api, gw.as_ref(), ALB_FINALIZER)
                .await
                .map_err(|e| Error::Status(boxed(e)))?;
        }
        info!(gateway = %format!("{}/{}", f.namespace, f.name), "ALB released");
        Ok(())
    }

    /// A GatewayClass of ours: `Accepted`, unless its parametersRef names something an ALB
    /// Gateway cannot take or that does not exist.
    pub(super) async fn reconcile_class(&self, name: &str) -> Result<Next, Error> {
        let Some(class) = get(&self.stores.classes, name) else {
            return Ok(Next::AwaitChange);
        };
        if !self.serves(&class.spec.controller_name) {
            return Ok(Next::AwaitChange);
        }
        let (ok, why, message) = match class.spec.parameters_ref.as_ref() {
            None => (true, reason::ACCEPTED, "Accepted".to_string()),
            Some(p) if p.group != CONFIG_GROUP || p.kind != "LoadBalancerConfiguration" => (
                false,
                reason::INVALID_PARAMETERS,
                format!(
                    "parametersRef names a {}/{}; an ALB GatewayClass takes a {CONFIG_GROUP} LoadBalancerConfiguration",
                    p.group, p.kind
                ),
            ),
            Some(p) => match &p.namespace {
                None => (
                    false,
                    reason::INVALID_PARAMETERS,
                    format!(
                        "parametersRef to LoadBalancerConfiguration {} needs a namespace",
                        p.name
                    ),
                ),
                Some(ns) => {
                    let api: Api<LoadBalancerConfiguration> =
                        Api::namespaced(self.ctx.client.clone(), ns);
                    match api
                        .get_opt(&p.name)
                        .await
                        .map_err(|e| Error::Fetch(boxed(e)))?
                    {
                        Some(_) => (true, reason::ACCEPTED, "Accepted".to_string()),
                        None => (
                            false,
                            reason::INVALID_PARAMETERS,
                            format!("LoadBalancerConfiguration {ns}/{} does not exist", p.name),
                        ),
                    }
                }
            },
        };
        super::status::write_class(self, &class, ok, why, &message).await?;
        if !ok {
            self.ctx.events.warn(&class_ref(&class), why, message).await;
        }
        Ok(Next::AwaitChange)
    }
}

/// A released Gateway's stack: empty.
fn empty_model(f: &Fetched) -> GroupModel {
    GroupModel {
        kind: StackKind::AlbGateway,
        ..GroupModel::empty(&format!("{}/{}", f.namespace, f.name))
    }
}

pub(super) fn gateway_ref(gw: &Gateway) -> ObjectReference {
    ObjectReference {
        api_version: Some(format!("{}/v1", super::GROUP)),
        kind: Some("Gateway".into()),
        namespace: gw.namespace(),
        name: Some(gw.name_any()),
        uid: gw.uid(),
        ..ObjectReference::default()
    }
}

fn class_ref(c: &GatewayClass) -> ObjectReference {
    ObjectReference {
        api_version: Some(format!("{}/v1", super::GROUP)),
        kind: Some("GatewayClass".into()),
        name: Some(c.name_any()),
        uid: c.uid(),
        ..ObjectReference::default()
    }
}
