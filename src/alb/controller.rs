//! The ALB reconciler on the controller runtime: one key per IngressGroup (its stack),
//! queued by Ingress, Service, IngressClass, IngressClassParams and Namespace changes and by
//! the resync. Groups are reconciled one at a time; a failed group backs off without holding
//! up the others. The steps of one reconcile are in [`super::reconcile`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};
use tracing::info;

use super::aws::{AlbApi, Scope};
use super::builder::{CertInfo, SubnetInfo};
use super::class;
use super::reconcile::Error;
use super::settings::AlbSettings;
use crate::context::Context;
use crate::crd::{IngressClassParams, LoadBalancerGroup};
use crate::k8s::runtime::watch::{Change, keep_all, reflect};
use crate::k8s::runtime::{self, Backoff, Next, RunSettings, WorkQueue};
use crate::k8s::watched;

pub const CONTROLLER: &str = "alb";

pub(super) struct Stores {
    pub ingresses: Store<Ingress>,
    pub classes: Store<IngressClass>,
    pub services: Store<Service>,
    pub namespaces: Store<Namespace>,
    pub groups: Store<LoadBalancerGroup>,
    pub params: Store<IngressClassParams>,
}

/// The reconciler, over an AWS adapter: the SDK's in production, a fake in the
/// reconcile-level tests.
pub(super) struct Reconciler<A = crate::aws::AwsClients> {
    pub ctx: Arc<Context>,
    pub aws: A,
    pub settings: AlbSettings,
    pub stores: Stores,
    discovery: super::cache::DiscoveryCache,
}

/// What a watch saw, before it is turned into group keys (which needs every store).
#[derive(Debug)]
enum Signal {
    Ingress { namespace: String, name: String },
    Service { namespace: String, name: String },
    Everything,
}

/// Watches `K` into a store and forwards each live change as a signal.
fn watch_into<K>(
    api: Api<K>,
    trim: fn(&mut K),
    tx: &mpsc::UnboundedSender<Signal>,
    make: fn(&K) -> Option<Signal>,
    stop: &watch::Receiver<bool>,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let tx = tx.clone();
    reflect(
        api,
        watcher::Config::default(),
        trim,
        move |c: Change<'_, K>| {
            let sig = match &c {
                // The store holds the (re)listed objects only now: look at every group.
                Change::Synced(_) => Some(Signal::Everything),
                Change::Listed(_) => None,
                Change::Applied(o) | Change::Deleted(o) => make(o),
            };
            if let Some(sig) = sig {
                let _ = tx.send(sig);
            }
        },
        stop.clone(),
    )
}

pub async fn run(ctx: Arc<Context>, settings: AlbSettings, stop: watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Signal>();
    let client = ctx.client.clone();
    let stores = Stores {
        ingresses: watch_into(
            Api::<Ingress>::all(client.clone()),
            keep_all,
            &tx,
            |i| {
                Some(Signal::Ingress {
                    namespace: i.namespace().unwrap_or_default(),
                    name: i.name_any(),
                })
            },
            &stop,
        ),
        classes: watch_into(
            Api::<IngressClass>::all(client.clone()),
            keep_all,
            &tx,
            |_| Some(Signal::Everything),
            &stop,
        ),
        services: watch_into(
            Api::<Service>::all(client.clone()),
            watched::alb_service,
            &tx,
            |s| {
                Some(Signal::Service {
                    namespace: s.namespace().unwrap_or_default(),
                    name: s.name_any(),
                })
            },
            &stop,
        ),
        namespaces: watch_into(
            Api::<Namespace>::all(client.clone()),
            watched::alb_namespace,
            &tx,
            |_| Some(Signal::Everything),
            &stop,
        ),
        // Our own status writes land here too; a new group is found through its Ingresses.
        groups: watch_into(
            Api::<LoadBalancerGroup>::all(client.clone()),
            keep_all,
            &tx,
            |_| None,
            &stop,
        ),
        params: watch_into(
            Api::<IngressClassParams>::all(client.clone()),
            keep_all,
            &tx,
            |_| Some(Signal::Everything),
            &stop,
        ),
    };
    let mut stopped = stop.clone();
    tokio::select! {
        _ = async {
            tokio::join!(
                stores.ingresses.wait_until_ready(),
                stores.classes.wait_until_ready(),
                stores.services.wait_until_ready(),
                stores.namespaces.wait_until_ready(),
                stores.groups.wait_until_ready(),
                stores.params.wait_until_ready(),
            )
        } => {}
        _ = stopped.wait_for(|s| *s) => return,
    }
    let metrics = ctx.metrics.clone();
    let resync = settings.resync;
    let aws = ctx.aws.clone();
    let r = Arc::new(Reconciler::new(ctx, aws, settings, stores));
    let queue = Arc::new(WorkQueue::new(Backoff::default()));
    let router = {
        let (r, queue) = (r.clone(), queue.clone());
        async move {
            while let Some(sig) = rx.recv().await {
                for stack in r.route(sig) {
                    queue.add(stack);
                }
            }
        }
    };
    info!("alb reconciler started");
    tokio::select! {
        _ = runtime::run(r, queue, RunSettings { workers: 1, resync }, metrics, stop) => {}
        _ = router => {}
    }
}

impl<A: AlbApi> runtime::Reconciler for Reconciler<A> {
    type Error = Error;
    const NAME: &'static str = CONTROLLER;

    async fn reconcile(&self, stack: &str) -> Result<Next, Error> {
        self.reconcile_group(stack).await
    }

    fn keys(&self) -> Vec<String> {
        self.all_stacks().into_iter().collect()
    }
}

impl<A: AlbApi> Reconciler<A> {
    pub(super) fn new(ctx: Arc<Context>, aws: A, settings: AlbSettings, stores: Stores) -> Self {
        Reconciler {
            ctx,
            aws,
            settings,
            stores,
            discovery: Default::default(),
        }
    }

    fn namespace_labels(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        self.stores
            .namespaces
            .state()
            .iter()
            .find(|n| n.name_any() == ns)
            .map(|n| n.labels().clone())
    }

    pub(super) fn membership(&self, ing: &Ingress) -> Option<class::Membership> {
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
    pub(super) fn owner(&self) -> &str {
        self.settings.class.owner()
    }

    fn all_stacks(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .stores
            .groups
            .state()
            .iter()
            .filter(|g| g.spec.controller == self.owner() && g.spec.kind.is_ingress())
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
            .filter(|g| g.spec.controller == self.owner() && g.spec.kind.is_ingress())
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

    /// The groups a change concerns.
    fn route(&self, sig: Signal) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        match sig {
            Signal::Ingress { namespace, name } => {
                let found =
                    self.stores.ingresses.state().into_iter().find(|i| {
                        i.namespace().as_deref() == Some(&namespace) && i.name_any() == name
                    });
                if let Some(i) = found
                    && let Some(m) = self.membership(&i)
                {
                    out.insert(m.group.stack());
                }
                out.extend(self.groups_listing(&namespace, &name));
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
                        out.insert(m.group.stack());
                    }
                }
            }
            Signal::Everything => out = self.all_stacks(),
        }
        out
    }

    /// `--vpc-id`, or the VPC of the subnets tagged for the cluster (looked up once).
    pub(super) async fn vpc_id(&self) -> Result<String, super::aws::AwsError> {
        self.discovery
            .vpc_id(
                &self.aws,
                self.settings.vpc_id.as_ref(),
                &self.ctx.cluster_name,
            )
            .await
    }

    /// The VPC id if it is known without a call.
    pub(super) fn known_vpc_id(&self) -> Option<String> {
        self.discovery.known_vpc_id(self.settings.vpc_id.as_ref())
    }

    pub(super) async fn subnets(
        &self,
        scope: Scope<'_>,
    ) -> Result<Vec<SubnetInfo>, super::aws::AwsError> {
        self.discovery
            .subnets(&self.aws, scope, self.settings.discovery_ttl)
            .await
    }

    /// The issued ACM certificates, read again when the cached list is older than `max_age`.
    pub(super) async fn certificates(
        &self,
        max_age: Duration,
    ) -> Result<Vec<CertInfo>, super::aws::AwsError> {
        self.discovery.certificates(&self.aws, max_age).await
    }
}
