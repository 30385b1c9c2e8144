//! The ALB reconciler: one reconcile per IngressGroup (keyed by its stack), triggered by
//! Ingress, Service, IngressClass, IngressClassParams and Namespace changes, plus a periodic
//! resync. Groups are reconciled one at a time; a failed group is retried with backoff
//! without holding up the others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, info, info_span, warn};

use super::aws::{AlbAws, AwsError, Depth, Known};
use super::builder::{self, BuildOutput, CertInfo, Environment, Member, SubnetInfo};
use super::class::{self, ClassSettings};
use super::model::{Tags, TargetType};
use super::naming;
use super::plan;
use super::status::{self, ApplyOutcome};
use crate::controller::Context;
use crate::crd::target_group_binding::{
    NetworkingIngressRule, NetworkingPeer, NetworkingPort, NetworkingProtocol, SecurityGroup,
    ServiceReference, TargetGroupBindingNetworking, TargetType as CrdTargetType,
};
use crate::crd::{
    IngressClassParams, LoadBalancerGroup, LoadBalancerGroupSpec, TargetGroupBinding,
    TargetGroupBindingSpec,
};
use crate::k8s::conditions::{SystemClock, reason};
use crate::k8s::events::EventRecorder;
use crate::k8s::finalizer::{ALB_FINALIZER, add_finalizer, has_finalizer, remove_finalizer};

pub const CONTROLLER: &str = "alb";
/// How old the cached certificate list may be when a member names a certificate it lacks.
const CERTIFICATE_RECHECK: Duration = Duration::from_secs(10);
/// When a group is looked at again while a member's certificate is not found.
const CERTIFICATE_REQUEUE: Duration = Duration::from_secs(30);
/// Labels on the TargetGroupBindings we create.
pub const GROUP_LABEL: &str = "causeway.dev/alb-group";
pub const STACK_LABEL: &str = "ingress.k8s.aws/stack-name";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn keep_all<K>(_: &mut K) {}

/// The builder reads a Service's annotations, type and ports; nothing else is kept.
fn trim_service(s: &mut Service) {
    s.status = None;
    s.metadata.labels = None;
    if let Some(spec) = s.spec.take() {
        s.spec = Some(k8s_openapi::api::core::v1::ServiceSpec {
            ports: spec.ports,
            type_: spec.type_,
            ..Default::default()
        });
    }
}

/// Namespaces matter only through their labels (IngressClassParams namespaceSelector).
fn trim_namespace(n: &mut Namespace) {
    n.spec = None;
    n.status = None;
    n.metadata.annotations = None;
}

/// Settings from the CLI.
#[derive(Clone, Debug)]
pub struct AlbSettings {
    pub class: ClassSettings,
    pub vpc_id: Option<String>,
    pub default_tags: Tags,
    /// Tag keys managed outside causeway (`--alb-external-managed-tags`).
    pub external_managed_tags: BTreeSet<String>,
    pub default_target_type: TargetType,
    pub resync: Duration,
    /// How long subnet and certificate discovery results are reused.
    pub discovery_ttl: Duration,
}

impl Default for AlbSettings {
    fn default() -> Self {
        AlbSettings {
            class: ClassSettings::default(),
            vpc_id: None,
            default_tags: Tags::new(),
            external_managed_tags: BTreeSet::new(),
            default_target_type: TargetType::Instance,
            resync: Duration::from_secs(600),
            discovery_ttl: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("AWS: {0}")]
    Aws(#[from] AwsError),
    #[error("Kubernetes: {0}")]
    Kube(String),
}

impl Error {
    fn label(&self) -> &'static str {
        match self {
            Error::Aws(AwsError::DependencyViolation(_)) => "dependency_violation",
            Error::Aws(_) => "aws",
            Error::Kube(_) => "kubernetes",
        }
    }
}

fn kube_err(e: impl std::fmt::Display) -> Error {
    Error::Kube(e.to_string())
}

struct Stores {
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    services: Store<Service>,
    namespaces: Store<Namespace>,
    groups: Store<LoadBalancerGroup>,
    params: Store<IngressClassParams>,
}

struct Cached<T> {
    value: T,
    at: Instant,
}

struct Reconciler {
    ctx: Arc<Context>,
    settings: AlbSettings,
    stores: Stores,
    events: EventRecorder,
    vpc_id: tokio::sync::OnceCell<String>,
    subnets: tokio::sync::Mutex<Option<Cached<Vec<SubnetInfo>>>>,
    certificates: tokio::sync::Mutex<Option<Cached<Vec<CertInfo>>>>,
}

/// Watches `K`, keeps a store of the objects trimmed by `trim` (and without managedFields or
/// the last-applied-configuration annotation), and sends a signal on every change.
fn reflect<K>(
    api: Api<K>,
    tx: mpsc::UnboundedSender<Signal>,
    make: fn(&K) -> Signal,
    trim: fn(&mut K),
    stop: watch::Receiver<bool>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(move |o| {
            o.meta_mut().managed_fields = None;
            if let Some(a) = o.meta_mut().annotations.as_mut() {
                a.remove(LAST_APPLIED);
            }
            trim(o);
        })
        .reflect(writer)
        .touched_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut stop = stop;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                item = stream.next() => match item {
                    Some(Ok(obj)) => { let _ = tx.send(make(&obj)); }
                    Some(Err(e)) => warn!(error = %e, "alb watch failed; retrying"),
                    None => break,
                }
            }
        }
    });
    reader
}

#[derive(Debug)]
enum Signal {
    Ingress { namespace: String, name: String },
    Service { namespace: String, name: String },
    Everything,
    Group(String),
}

pub async fn run(ctx: Arc<Context>, settings: AlbSettings, stop: watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Signal>();
    let client = ctx.client.clone();
    let stores = Stores {
        ingresses: reflect(
            Api::<Ingress>::all(client.clone()),
            tx.clone(),
            |i| Signal::Ingress {
                namespace: i.namespace().unwrap_or_default(),
                name: i.name_any(),
            },
            keep_all,
            stop.clone(),
        ),
        classes: reflect(
            Api::<IngressClass>::all(client.clone()),
            tx.clone(),
            |_| Signal::Everything,
            keep_all,
            stop.clone(),
        ),
        services: reflect(
            Api::<Service>::all(client.clone()),
            tx.clone(),
            |s| Signal::Service {
                namespace: s.namespace().unwrap_or_default(),
                name: s.name_any(),
            },
            trim_service,
            stop.clone(),
        ),
        namespaces: reflect(
            Api::<Namespace>::all(client.clone()),
            tx.clone(),
            |_| Signal::Everything,
            trim_namespace,
            stop.clone(),
        ),
        groups: reflect(
            Api::<LoadBalancerGroup>::all(client.clone()),
            tx.clone(),
            |g| Signal::Group(g.spec.stack.clone()),
            keep_all,
            stop.clone(),
        ),
        params: reflect(
            Api::<IngressClassParams>::all(client.clone()),
            tx.clone(),
            |_| Signal::Everything,
            keep_all,
            stop.clone(),
        ),
    };
    let events = EventRecorder::new(
        client.clone(),
        EventRecorder::reporter(std::env::var("POD_NAME").ok()),
    );
    let r = Arc::new(Reconciler {
        ctx,
        settings,
        stores,
        events,
        vpc_id: tokio::sync::OnceCell::new(),
        subnets: tokio::sync::Mutex::new(None),
        certificates: tokio::sync::Mutex::new(None),
    });
    let _ = tokio::join!(
        r.stores.ingresses.wait_until_ready(),
        r.stores.classes.wait_until_ready(),
        r.stores.services.wait_until_ready(),
        r.stores.namespaces.wait_until_ready(),
        r.stores.groups.wait_until_ready(),
        r.stores.params.wait_until_ready(),
    );
    info!("alb reconciler started");

    // Pending groups with the earliest time they may run (backoff), and failure counts.
    let mut pending: BTreeMap<String, Instant> = BTreeMap::new();
    let mut failures: HashMap<String, u32> = HashMap::new();
    for s in r.all_stacks() {
        pending.insert(s, Instant::now());
    }
    let mut resync = tokio::time::interval(r.settings.resync);
    resync.tick().await;
    let mut stop = stop;
    loop {
        let now = Instant::now();
        let due: Option<String> = pending
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(s, _)| s.clone())
            .next();
        if let Some(stack) = due {
            pending.remove(&stack);
            let span = info_span!("reconcile", controller = CONTROLLER, object = %stack);
            let timer = r.ctx.metrics.reconcile_started(CONTROLLER);
            match r.reconcile(&stack).instrument(span).await {
                Ok(again) => {
                    failures.remove(&stack);
                    if let Some(after) = again {
                        pending.entry(stack).or_insert(Instant::now() + after);
                    }
                }
                Err(e) => {
                    r.ctx.metrics.reconcile_error(CONTROLLER, e.label());
                    let n = failures.entry(stack.clone()).or_insert(0);
                    *n += 1;
                    let base = Duration::from_millis(500) * 2u32.saturating_pow((*n).min(7));
                    let jitter = Duration::from_millis(rand::random::<u64>() % 500);
                    let delay = base.min(Duration::from_secs(60)) + jitter;
                    warn!(stack, error = %e, retry_in = ?delay, "alb reconcile failed");
                    pending.entry(stack).or_insert(Instant::now() + delay);
                }
            }
            timer.finish();
            // Take in whatever arrived meanwhile before the next group.
            while let Ok(sig) = rx.try_recv() {
                r.route(sig, &mut pending);
            }
            continue;
        }
        let next = pending.values().min().copied();
        let sleep = async move {
            match next {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            Some(sig) = rx.recv() => r.route(sig, &mut pending),
            _ = resync.tick() => {
                for s in r.all_stacks() {
                    pending.entry(s).or_insert_with(Instant::now);
                }
            }
            _ = sleep => {}
        }
    }
    info!("alb reconciler stopped");
}

impl Reconciler {
    fn namespace_labels(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        self.stores
            .namespaces
            .state()
            .iter()
            .find(|n| n.name_any() == ns)
            .map(|n| n.labels().clone())
    }

    fn membership(&self, ing: &Ingress) -> Option<class::Membership> {
        let classes: Vec<IngressClass> = self
            .stores
            .classes
            .state()
            .iter()
            .map(|c| (**c).clone())
            .collect();
        let params: Vec<IngressClassParams> = self
            .stores
            .params
            .state()
            .iter()
            .map(|p| (**p).clone())
            .collect();
        let labels = self.namespace_labels(&ing.namespace().unwrap_or_default());
        class::membership(
            ing,
            &classes,
            &params,
            labels.as_ref(),
            &self.settings.class,
        )
    }

    /// The controller name recorded on the groups this instance manages.
    fn owner(&self) -> &str {
        self.settings
            .class
            .controller_names
            .first()
            .map(String::as_str)
            .unwrap_or(class::DEFAULT_CONTROLLER)
    }

    fn all_stacks(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .stores
            .groups
            .state()
            .iter()
            .filter(|g| g.spec.controller == self.owner())
            .map(|g| g.spec.stack.clone())
            .collect();
        for i in self.stores.ingresses.state() {
            if let Some(m) = self.membership(&i) {
                out.insert(m.group.stack());
            }
        }
        out
    }

    /// Groups that listed this Ingress as a member: where it was before a move or a class change.
    fn groups_listing(&self, namespace: &str, name: &str) -> Vec<String> {
        self.stores
            .groups
            .state()
            .iter()
            .filter(|g| g.spec.controller == self.owner())
            .filter(|g| {
                g.status.as_ref().is_some_and(|s| {
                    s.members
                        .iter()
                        .any(|m| m.namespace == namespace && m.name == name)
                        || s.load_balancers.iter().any(|l| {
                            l.members
                                .iter()
                                .any(|m| *m == format!("{namespace}/{name}"))
                        })
                })
            })
            .map(|g| g.spec.stack.clone())
            .collect()
    }

    fn route(&self, sig: Signal, pending: &mut BTreeMap<String, Instant>) {
        let mut add = |s: String| {
            pending.entry(s).or_insert_with(Instant::now);
        };
        match sig {
            Signal::Ingress { namespace, name } => {
                let found =
                    self.stores.ingresses.state().into_iter().find(|i| {
                        i.namespace().as_deref() == Some(&namespace) && i.name_any() == name
                    });
                if let Some(i) = found
                    && let Some(m) = self.membership(&i)
                {
                    add(m.group.stack());
                }
                for s in self.groups_listing(&namespace, &name) {
                    add(s);
                }
            }
            Signal::Service { namespace, name } => {
                for i in self.stores.ingresses.state() {
                    if i.namespace().as_deref() != Some(&namespace) {
                        continue;
                    }
                    let uses = serde_json::to_string(&i.spec)
                        .unwrap_or_default()
                        .contains(&format!("\"name\":\"{name}\""))
                        || i.annotations().values().any(|v| v.contains(&name));
                    if uses && let Some(m) = self.membership(&i) {
                        add(m.group.stack());
                    }
                }
            }
            Signal::Everything => {
                for s in self.all_stacks() {
                    add(s);
                }
            }
            Signal::Group(stack) => {
                // Our own status writes land here too; only new groups need a look.
                let _ = stack;
            }
        }
    }

    async fn vpc_id(&self) -> Result<String, Error> {
        if let Some(v) = &self.settings.vpc_id {
            return Ok(v.clone());
        }
        self.vpc_id
            .get_or_try_init(|| AlbAws::cluster_vpc(&self.ctx.aws, &self.ctx.cluster_name))
            .await
            .cloned()
            .map_err(Error::Aws)
    }

    async fn subnets(&self, aws: &AlbAws<'_>) -> Result<Vec<SubnetInfo>, Error> {
        let mut guard = self.subnets.lock().await;
        if let Some(c) = guard.as_ref()
            && c.at.elapsed() < self.settings.discovery_ttl
        {
            return Ok(c.value.clone());
        }
        let value = aws.subnets().await?;
        *guard = Some(Cached {
            value: value.clone(),
            at: Instant::now(),
        });
        Ok(value)
    }

    /// The issued ACM certificates, read again when the cached list is older than `max_age`.
    async fn certificates(&self, max_age: Duration) -> Result<Vec<CertInfo>, Error> {
        let mut guard = self.certificates.lock().await;
        if let Some(c) = guard.as_ref()
            && c.at.elapsed() < max_age
        {
            return Ok(c.value.clone());
        }
        let value = AlbAws::certificates(&self.ctx.aws).await?;
        *guard = Some(Cached {
            value: value.clone(),
            at: Instant::now(),
        });
        Ok(value)
    }

    /// Returns when to look again without a change (a certificate not found yet).
    async fn reconcile(&self, stack: &str) -> Result<Option<Duration>, Error> {
        let client = self.ctx.client.clone();
        let cluster = self.ctx.cluster_name.as_str();
        let object_name = naming::group_object_name(stack);
        // Read fresh, not from the cache: the status holds the ARNs we own and was likely
        // written by the previous reconcile a moment ago.
        let groups: Api<LoadBalancerGroup> = Api::all(client.clone());
        let group_obj = groups
            .get_opt(&object_name)
            .await
            .map_err(kube_err)?
            .filter(|g| g.spec.stack == stack);
        if group_obj
            .as_ref()
            .is_some_and(|g| g.spec.controller != self.owner())
        {
            warn!(
                stack,
                "the group belongs to another causeway instance; leaving it alone"
            );
            return Ok(None);
        }
        let previous_status = group_obj.as_ref().and_then(|g| g.status.clone());

        // Fetch: members of this group, and Ingresses this group must let go of.
        let ingresses = self.stores.ingresses.state();
        let mut active: Vec<(Arc<Ingress>, class::Membership)> = Vec::new();
        let mut releasing: Vec<Arc<Ingress>> = Vec::new();
        for ing in &ingresses {
            let ns = ing.namespace().unwrap_or_default();
            let listed = previous_status.as_ref().is_some_and(|s| {
                s.members
                    .iter()
                    .any(|m| m.namespace == ns && m.name == ing.name_any())
            });
            let m = self.membership(ing);
            let here = m.as_ref().is_some_and(|m| m.group.stack() == stack);
            let deleting = ing.meta().deletion_timestamp.is_some();
            if here && !deleting {
                active.push((ing.clone(), m.expect("checked above")));
            } else if has_finalizer(ing.as_ref(), ALB_FINALIZER)
                && ((here && deleting) || (m.is_none() && listed))
            {
                releasing.push(ing.clone());
            }
        }

        // Finalizers first: nothing gets created for an Ingress we could then not clean up.
        for (ing, _) in &active {
            if !has_finalizer(ing.as_ref(), ALB_FINALIZER) {
                let api: Api<Ingress> =
                    Api::namespaced(client.clone(), &ing.namespace().unwrap_or_default());
                add_finalizer(&api, ing.as_ref(), ALB_FINALIZER)
                    .await
                    .map_err(kube_err)?;
            }
        }

        // The group object exists before anything in AWS does, so it can own the bindings.
        let group_obj = match group_obj {
            Some(g) => Some(g),
            None if !active.is_empty() => {
                let obj = LoadBalancerGroup::new(
                    &object_name,
                    LoadBalancerGroupSpec {
                        stack: stack.to_owned(),
                        controller: self.owner().to_owned(),
                    },
                );
                Some(
                    crate::k8s::apply::apply(&groups, &obj)
                        .await
                        .map_err(kube_err)?,
                )
            }
            None => None,
        };

        let vpc_id = self.vpc_id().await?;
        let aws = AlbAws {
            aws: &self.ctx.aws,
            vpc_id: &vpc_id,
            cluster,
        };
        let needs_discovery = !active.is_empty();
        let subnets = if needs_discovery {
            Some(self.subnets(&aws).await?)
        } else {
            None
        };
        let wants_https = active.iter().any(|(i, _)| {
            let a = i.annotations();
            a.values().any(|v| v.contains("HTTPS"))
                || i.spec
                    .as_ref()
                    .and_then(|s| s.tls.as_ref())
                    .is_some_and(|t| !t.is_empty())
                || a.keys().any(|k| k.ends_with("certificate-arn"))
        });
        let certificates = if wants_https {
            Some(self.certificates(self.settings.discovery_ttl).await?)
        } else {
            None
        };

        // The security-groups annotation's entries, resolved in the VPC (IDs and Name tags).
        let sg_entries: BTreeSet<String> = active
            .iter()
            .flat_map(|(i, _)| {
                super::annotations::Annotations(i.annotations()).list("security-groups")
            })
            .collect();
        let security_groups = if sg_entries.is_empty() {
            None
        } else {
            Some(aws.resolve_security_groups(&sg_entries).await?)
        };

        let mut services: BTreeMap<(String, String), Service> = BTreeMap::new();
        let namespaces: BTreeSet<String> =
            active.iter().filter_map(|(i, _)| i.namespace()).collect();
        for s in self.stores.services.state() {
            let ns = s.namespace().unwrap_or_default();
            if namespaces.contains(&ns) {
                services.insert((ns, s.name_any()), (*s).clone());
            }
        }
        let members: Vec<Member<'_>> = active
            .iter()
            .map(|(i, m)| Member {
                ingress: i.as_ref(),
                membership: m.clone(),
                last_accepted: previous_status.as_ref().and_then(|s| {
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
                &Environment {
                    cluster,
                    default_tags: &self.settings.default_tags,
                    external_managed_tags: &self.settings.external_managed_tags,
                    default_target_type: self.settings.default_target_type,
                    services: &services,
                    subnets: subnets.as_deref(),
                    certificates,
                    security_groups: security_groups.as_ref(),
                },
            )
        };
        let mut build = build_with(certificates.as_deref());
        // A certificate imported after the list was cached must not be reported missing: read
        // the list again (at most every CERTIFICATE_RECHECK) before saying so.
        let cert_missing = certificate_missing(&build);
        if cert_missing && let Some(cached) = &certificates {
            let fresh = self.certificates(CERTIFICATE_RECHECK).await?;
            if *cached != fresh {
                build = build_with(Some(&fresh));
            }
        }

        // Observe only what we own: the ARNs in our status, then our names.
        let known = Known {
            load_balancer_arns: previous_status
                .iter()
                .flat_map(|s| s.load_balancers.iter().filter_map(|l| l.arn.clone()))
                .collect(),
            target_group_arns: previous_status
                .iter()
                .flat_map(|s| s.target_groups.iter().map(|t| t.id.clone()))
                .collect(),
            security_group_ids: previous_status
                .iter()
                .flat_map(|s| s.security_groups.iter().map(|t| t.id.clone()))
                .collect(),
        };
        let mut observed = aws.observe(&known, &build.model, Depth::Full).await?;
        let foreign = observed.retain_owned(cluster, stack);
        if !foreign.is_empty() {
            warn!(
                ?foreign,
                "resources found by name or recorded ARN are not tagged for this group; leaving them alone"
            );
        }

        // TargetGroupBindings that no longer have a target group go before the target groups.
        self.prune_bindings(stack, &build).await?;

        let steps = plan::plan(&build.model, &observed, cluster);
        let outcome = if steps.is_empty() {
            Ok(())
        } else {
            info!(steps = steps.len(), "applying plan");
            let result = aws.apply(&steps, &observed).await;
            // Re-read what we own now, success or not, so status records every ARN.
            let after = Known {
                load_balancer_arns: known.load_balancer_arns.clone(),
                target_group_arns: known.target_group_arns.clone(),
                security_group_ids: known.security_group_ids.clone(),
            };
            // A failed step may leave something we created; desired names find it.
            observed = aws
                .observe(&after, &without_attributes(&build.model), Depth::Resources)
                .await?;
            observed.retain_owned(cluster, stack);
            result
        };

        // Bindings for the target groups that exist.
        self.apply_bindings(&object_name, group_obj.as_ref(), &build, &observed)
            .await?;

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
        let new_status = status::group_status(
            previous_status.as_ref(),
            &build,
            &observed,
            &apply_outcome,
            &SystemClock,
        );

        let empty = active.is_empty() && observed.is_empty();
        if empty && outcome.is_ok() {
            if group_obj.is_some() {
                groups
                    .delete(&object_name, &DeleteParams::default())
                    .await
                    .map(|_| ())
                    .or_else(ignore_not_found)?;
            }
        } else {
            if group_obj.is_none() {
                let obj = LoadBalancerGroup::new(
                    &object_name,
                    LoadBalancerGroupSpec {
                        stack: stack.to_owned(),
                        controller: self.owner().to_owned(),
                    },
                );
                crate::k8s::apply::apply(&groups, &obj)
                    .await
                    .map_err(kube_err)?;
            }
            if previous_status.as_ref() != Some(&new_status) {
                crate::k8s::apply::apply_status::<LoadBalancerGroup>(
                    &groups,
                    &object_name,
                    &new_status,
                )
                .await
                .map_err(kube_err)?;
            }
        }

        // Ingress status and Events for members whose standing changed.
        for m in &build.members {
            let Some((ing, _)) = active.iter().find(|(i, _)| {
                i.namespace().as_deref() == Some(&m.namespace) && i.name_any() == m.name
            }) else {
                continue;
            };
            let before = previous_status.as_ref().and_then(|s| {
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
                        self.events.warn(&obj_ref, p.reason, note).await;
                    }
                    if m.serving_last_accepted
                        && let Some(host) = status::member_hostname(&build, &observed, m)
                    {
                        self.set_hostname(ing, &host).await?;
                    }
                }
                None => {
                    if before.is_none_or(|b| !b.accepted) {
                        self.events
                            .normal(
                                &obj_ref,
                                "Accepted",
                                format!("member of load balancer group {stack}"),
                            )
                            .await;
                    }
                    if let Some(host) = status::member_hostname(&build, &observed, m) {
                        self.set_hostname(ing, &host).await?;
                    }
                }
            }
        }
        if let Err(e) = &outcome {
            for (ing, _) in &active {
                self.events
                    .warn(&ingress_ref(ing), reason::AWS_ERROR, e.to_string())
                    .await;
            }
        }
        outcome?;

        // Only now, with their rules gone from AWS, may deleted or departed Ingresses go.
        for ing in releasing {
            let api: Api<Ingress> =
                Api::namespaced(client.clone(), &ing.namespace().unwrap_or_default());
            if ing.meta().deletion_timestamp.is_none() {
                // No longer ours: drop the hostname we set, then the finalizer.
                let _ = api
                    .patch_status(&ing.name_any(), &PatchParams::apply(crate::FIELD_MANAGER).force(), &Patch::Apply(json!({
                        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "status": {"loadBalancer": {}}
                    })))
                    .await;
            }
            remove_finalizer(&api, ing.as_ref(), ALB_FINALIZER)
                .await
                .map_err(kube_err)?;
            info!(ingress = %format!("{}/{}", ing.namespace().unwrap_or_default(), ing.name_any()), "released");
        }
        // A certificate may be imported or issued soon: look again without waiting for a change.
        let cert_missing = certificate_missing(&build);
        Ok(cert_missing.then_some(CERTIFICATE_REQUEUE))
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
        .map_err(kube_err)?;
        Ok(())
    }

    async fn apply_bindings(
        &self,
        object_name: &str,
        owner: Option<&LoadBalancerGroup>,
        build: &BuildOutput,
        observed: &super::observed::Observed,
    ) -> Result<(), Error> {
        for tg in &build.model.target_groups {
            let Some(o) = observed.target_groups.iter().find(|o| o.name == tg.name) else {
                continue;
            };
            let backend = observed
                .security_groups
                .iter()
                .find(|s| {
                    s.tags.get(super::model::TAG_RESOURCE)
                        == Some(&tg.binding.backend_security_group)
                })
                .map(|s| s.id.clone());
            let port_ref = |p: &super::model::ServicePortRef| match p {
                super::model::ServicePortRef::Number(n) => {
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(*n)
                }
                super::model::ServicePortRef::Name(s) => {
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s.clone())
                }
            };
            let mut tgb = TargetGroupBinding::new(
                &tg.name,
                TargetGroupBindingSpec {
                    target_group_arn: Some(o.arn.clone()),
                    target_group_name: None,
                    multi_cluster_target_group: false,
                    target_type: Some(match tg.target_type {
                        TargetType::Instance => CrdTargetType::Instance,
                        TargetType::Ip => CrdTargetType::Ip,
                    }),
                    target_group_protocol: None,
                    service_ref: ServiceReference {
                        name: tg.binding.service.clone(),
                        port: port_ref(&tg.binding.service_port),
                    },
                    networking: backend.map(|id| TargetGroupBindingNetworking {
                        ingress: vec![NetworkingIngressRule {
                            from: vec![NetworkingPeer {
                                ip_block: None,
                                security_group: Some(SecurityGroup { group_id: id }),
                            }],
                            ports: vec![NetworkingPort {
                                protocol: Some(NetworkingProtocol::Tcp),
                                port: Some(port_ref(&tg.binding.target_port)),
                            }],
                        }],
                    }),
                    node_selector: None,
                    ip_address_type: None,
                    vpc_id: self
                        .settings
                        .vpc_id
                        .clone()
                        .or_else(|| self.vpc_id.get().cloned()),
                    iam_role_arn_to_assume: None,
                    assume_role_external_id: None,
                    region: None,
                },
            );
            tgb.metadata.namespace = Some(tg.binding.namespace.clone());
            tgb.metadata.labels = Some(
                [
                    (GROUP_LABEL.to_owned(), object_name.to_owned()),
                    (STACK_LABEL.to_owned(), object_name.to_owned()),
                ]
                .into(),
            );
            if let Some(g) = owner {
                tgb.metadata.owner_references = g.controller_owner_ref(&()).map(|r| vec![r]);
            }
            let current = self
                .existing_binding(&tg.binding.namespace, &tg.name)
                .await?;
            if current.as_ref().is_some_and(|c| {
                c.spec == tgb.spec && c.metadata.owner_references == tgb.metadata.owner_references
            }) {
                continue;
            }
            let api: Api<TargetGroupBinding> =
                Api::namespaced(self.ctx.client.clone(), &tg.binding.namespace);
            crate::k8s::apply::apply(&api, &tgb)
                .await
                .map_err(kube_err)?;
        }
        Ok(())
    }

    async fn existing_binding(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<TargetGroupBinding>, Error> {
        Ok(self
            .ctx
            .caches
            .target_group_bindings
            .state()
            .into_iter()
            .find(|b| b.namespace().as_deref() == Some(ns) && b.name_any() == name)
            .map(|b| (*b).clone()))
    }

    async fn prune_bindings(&self, stack: &str, build: &BuildOutput) -> Result<(), Error> {
        let object_name = naming::group_object_name(stack);
        let wanted: BTreeSet<(String, String)> = build
            .model
            .target_groups
            .iter()
            .map(|t| (t.binding.namespace.clone(), t.name.clone()))
            .collect();
        let stale: Vec<(String, String)> = self
            .ctx
            .caches
            .target_group_bindings
            .state()
            .iter()
            .filter(|b| b.labels().get(GROUP_LABEL) == Some(&object_name))
            .map(|b| (b.namespace().unwrap_or_default(), b.name_any()))
            .filter(|k| !wanted.contains(k))
            .collect();
        // The cache can lag right after a create; a label-selected list is exact.
        let stale = if stale.is_empty() && build.model.target_groups.is_empty() {
            let api: Api<TargetGroupBinding> = Api::all(self.ctx.client.clone());
            api.list(&ListParams::default().labels(&format!("{GROUP_LABEL}={object_name}")))
                .await
                .map_err(kube_err)?
                .items
                .iter()
                .map(|b| (b.namespace().unwrap_or_default(), b.name_any()))
                .collect()
        } else {
            stale
        };
        for (ns, name) in stale {
            let api: Api<TargetGroupBinding> = Api::namespaced(self.ctx.client.clone(), &ns);
            api.delete(&name, &DeleteParams::default())
                .await
                .map(|_| ())
                .or_else(ignore_not_found)?;
        }
        Ok(())
    }
}

/// The desired model without attributes: the re-read after apply needs names and ARNs, not
/// another round of attribute reads.
fn without_attributes(desired: &super::model::GroupModel) -> super::model::GroupModel {
    let mut m = desired.clone();
    m.load_balancers
        .iter_mut()
        .for_each(|l| l.attributes.clear());
    m.target_groups
        .iter_mut()
        .for_each(|t| t.attributes.clear());
    m
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

fn ignore_not_found(e: kube::Error) -> Result<(), Error> {
    match e {
        kube::Error::Api(ref s) if s.code == 404 => Ok(()),
        e => Err(kube_err(e)),
    }
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
mod tests {
    use super::*;

    #[test]
    fn cached_services_and_namespaces_keep_only_what_the_builder_reads() {
        let mut svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"},
                "annotations": {"alb.ingress.kubernetes.io/healthcheck-path": "/hz"}},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.0.0.1",
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]},
            "status": {"loadBalancer": {}}
        }))
        .unwrap();
        trim_service(&mut svc);
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.ports.as_ref().unwrap()[0].node_port, Some(30080));
        assert!(spec.selector.is_none() && spec.cluster_ip.is_none() && svc.status.is_none());
        assert!(
            svc.annotations()
                .contains_key("alb.ingress.kubernetes.io/healthcheck-path")
        );

        let mut ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "ns", "labels": {"team": "a"}, "annotations": {"x": "y"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
        }))
        .unwrap();
        trim_namespace(&mut ns);
        assert_eq!(ns.labels().get("team").map(String::as_str), Some("a"));
        assert!(ns.metadata.annotations.is_none() && ns.spec.is_none() && ns.status.is_none());
    }
}
