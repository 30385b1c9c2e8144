//! The ALB Gateway reconciler on the controller runtime. Keys: `namespace/name` for a
//! Gateway, `GatewayClass:<name>` for a class. Gateways are queued by their own changes,
//! by their class's, and by the routes that name them now or named them before; a
//! ReferenceGrant, Service, Namespace or TargetGroupConfiguration change queues every
//! Gateway of ours. The steps of one reconcile are in [`super::reconcile`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};
use tracing::info;

use super::GatewaySettings;
use super::build::{AnyRoute, parent_refs};
use super::reconcile::Error;
use super::{GRPC_ROUTE as GRPC_ROUTE_KIND, HTTP_ROUTE as HTTP_ROUTE_KIND};
use crate::alb::aws::AlbApi;
use crate::alb::cache::DiscoveryCache;
use crate::context::Context;
use crate::crd::TargetGroupConfiguration;
use crate::k8s::runtime::watch::{Change, keep_all, key_of, reflect};
use crate::k8s::runtime::{self, Backoff, Next, RunSettings, WorkQueue};
use crate::k8s::watched;

pub const CONTROLLER: &str = "gateway";

/// The key prefix of a GatewayClass.
pub(super) const CLASS_KEY: &str = "GatewayClass:";

pub(super) struct Stores {
    pub classes: Store<GatewayClass>,
    pub gateways: Store<Gateway>,
    pub routes: Store<HttpRoute>,
    pub grpc_routes: Store<GrpcRoute>,
    pub grants: Store<ReferenceGrant>,
    pub services: Store<Service>,
    pub namespaces: Store<Namespace>,
    pub target_group_configs: Store<TargetGroupConfiguration>,
}

pub(super) struct Reconciler<A = crate::aws::AwsClients> {
    pub ctx: Arc<Context>,
    pub aws: A,
    pub settings: GatewaySettings,
    pub stores: Stores,
    pub discovery: DiscoveryCache,
    /// The Gateways each route attached to at its last reconcile, so a route that moves
    /// away queues the Gateway it left.
    pub attached: Mutex<HashMap<String, BTreeSet<String>>>,
}

/// What a watch saw.
enum Signal {
    Gateway(String),
    Class(String),
    /// A route: the Gateways it names now.
    Route {
        key: String,
        parents: Vec<String>,
    },
    Everything,
}

pub async fn run(ctx: Arc<Context>, settings: GatewaySettings, stop: watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Signal>();
    let client = ctx.client.clone();
    let wc = watcher::Config::default;
    let classes = {
        let tx = tx.clone();
        reflect(
            Api::<GatewayClass>::all(client.clone()),
            wc(),
            keep_all,
            move |c: Change<'_, GatewayClass>| match c {
                Change::Applied(o) | Change::Deleted(o) => {
                    let _ = tx.send(Signal::Class(o.name_any()));
                }
                Change::Synced(_) => {
                    let _ = tx.send(Signal::Everything);
                }
                Change::Listed(_) => {}
            },
            stop.clone(),
        )
    };
    let gateways = {
        let tx = tx.clone();
        let seen = SpecChanges::default();
        reflect(
            Api::<Gateway>::all(client.clone()),
            wc(),
            keep_all,
            move |c: Change<'_, Gateway>| match c {
                Change::Applied(o) if !seen.changed(o) => {}
                Change::Applied(o) | Change::Deleted(o) => {
                    seen.forget_if_deleted(&c);
                    let _ = tx.send(Signal::Gateway(key_of(o)));
                }
                Change::Synced(_) => {
                    let _ = tx.send(Signal::Everything);
                }
                Change::Listed(_) => {}
            },
            stop.clone(),
        )
    };
    let routes = {
        let tx = tx.clone();
        let seen = SpecChanges::default();
        reflect(
            Api::<HttpRoute>::all(client.clone()),
            wc(),
            keep_all,
            move |c: Change<'_, HttpRoute>| match c {
                Change::Applied(o) if !seen.changed(o) => {}
                Change::Applied(o) | Change::Deleted(o) => {
                    seen.forget_if_deleted(&c);
                    let parents = parent_refs(o)
                        .into_iter()
                        .filter(|p| p.kind == "Gateway" && p.group == super::GROUP)
                        .map(|p| format!("{}/{}", p.namespace, p.name))
                        .collect();
                    let _ = tx.send(Signal::Route {
                        key: super::route_key(HTTP_ROUTE_KIND, &key_of(o)),
                        parents,
                    });
                }
                Change::Synced(_) => {
                    let _ = tx.send(Signal::Everything);
                }
                Change::Listed(_) => {}
            },
            stop.clone(),
        )
    };
    let grpc_routes = {
        let tx = tx.clone();
        let seen = SpecChanges::default();
        reflect(
            Api::<GrpcRoute>::all(client.clone()),
            wc(),
            keep_all,
            move |c: Change<'_, GrpcRoute>| match c {
                Change::Applied(o) if !seen.changed(o) => {}
                Change::Applied(o) | Change::Deleted(o) => {
                    seen.forget_if_deleted(&c);
                    let parents = AnyRoute::parents(o)
                        .into_iter()
                        .filter(|p| p.kind == "Gateway" && p.group == super::GROUP)
                        .map(|p| format!("{}/{}", p.namespace, p.name))
                        .collect();
                    let _ = tx.send(Signal::Route {
                        key: super::route_key(GRPC_ROUTE_KIND, &key_of(o)),
                        parents,
                    });
                }
                Change::Synced(_) => {
                    let _ = tx.send(Signal::Everything);
                }
                Change::Listed(_) => {}
            },
            stop.clone(),
        )
    };
    let grants = reflect(
        Api::<ReferenceGrant>::all(client.clone()),
        wc(),
        keep_all,
        everything(&tx),
        stop.clone(),
    );
    let services = reflect(
        Api::<Service>::all(client.clone()),
        wc(),
        watched::alb_service,
        everything(&tx),
        stop.clone(),
    );
    let namespaces = reflect(
        Api::<Namespace>::all(client.clone()),
        wc(),
        watched::alb_namespace,
        everything(&tx),
        stop.clone(),
    );
    let target_group_configs = reflect(
        Api::<TargetGroupConfiguration>::all(client.clone()),
        wc(),
        keep_all,
        everything(&tx),
        stop.clone(),
    );
    let mut stopped = stop.clone();
    tokio::select! {
        _ = async {
            tokio::join!(
                classes.wait_until_ready(),
                gateways.wait_until_ready(),
                routes.wait_until_ready(),
                grpc_routes.wait_until_ready(),
                grants.wait_until_ready(),
                services.wait_until_ready(),
                namespaces.wait_until_ready(),
                target_group_configs.wait_until_ready(),
            )
        } => {}
        _ = stopped.wait_for(|s| *s) => return,
    }
    let metrics = ctx.metrics.clone();
    let resync = settings.shared.resync;
    let aws = ctx.aws.clone();
    let r = Arc::new(Reconciler {
        ctx,
        aws,
        settings,
        stores: Stores {
            classes,
            gateways,
            routes,
            grpc_routes,
            grants,
            services,
            namespaces,
            target_group_configs,
        },
        discovery: DiscoveryCache::default(),
        attached: Mutex::new(HashMap::new()),
    });
    let queue = Arc::new(WorkQueue::new(Backoff::default()));
    let router = {
        let (r, queue) = (r.clone(), queue.clone());
        async move {
            while let Some(signal) = rx.recv().await {
                let keys: Vec<String> = match signal {
                    Signal::Gateway(k) => vec![k],
                    Signal::Class(name) => {
                        let mut keys = vec![format!("{CLASS_KEY}{name}")];
                        keys.extend(r.gateways_of_class(&name));
                        keys
                    }
                    Signal::Route { key, parents } => {
                        let mut keys: BTreeSet<String> = parents.into_iter().collect();
                        keys.extend(r.lock_attached().get(&key).cloned().unwrap_or_default());
                        keys.into_iter().collect()
                    }
                    Signal::Everything => runtime::Reconciler::keys(r.as_ref()),
                };
                for k in keys {
                    queue.add(k);
                }
            }
        }
    };
    info!("gateway reconciler started");
    tokio::select! {
        _ = runtime::run(r, queue, RunSettings { workers: 3, resync }, metrics, stop) => {}
        _ = router => {}
    }
}

/// What of a Gateway or route matters to its reconcile: the spec (its generation), being
/// deleted, and its finalizers. Our own status writes change none of them, so they queue
/// nothing.
#[derive(Default)]
struct SpecChanges {
    seen: Mutex<HashMap<String, Fingerprint>>,
}

/// Generation, being deleted, finalizers.
type Fingerprint = (Option<i64>, bool, Vec<String>);

impl SpecChanges {
    fn changed<K: kube::Resource>(&self, o: &K) -> bool {
        let m = o.meta();
        let now = (
            m.generation,
            m.deletion_timestamp.is_some(),
            m.finalizers.clone().unwrap_or_default(),
        );
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(key_of(o), now.clone()) != Some(now)
    }

    fn forget_if_deleted<K: kube::Resource>(&self, c: &Change<'_, K>)
    where
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        if let Change::Deleted(o) = c {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.remove(&key_of(*o));
        }
    }
}

/// A change of `K` concerns every Gateway.
fn everything<K>(tx: &mpsc::UnboundedSender<Signal>) -> impl FnMut(Change<'_, K>) + Send + 'static
where
    K: kube::Resource + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let tx = tx.clone();
    move |c: Change<'_, K>| {
        if c.is_live() || matches!(c, Change::Synced(_)) {
            let _ = tx.send(Signal::Everything);
        }
    }
}

impl<A: AlbApi> runtime::Reconciler for Reconciler<A> {
    type Error = Error;
    const NAME: &'static str = CONTROLLER;

    async fn reconcile(&self, key: &str) -> Result<Next, Error> {
        match key.strip_prefix(CLASS_KEY) {
            Some(class) => self.reconcile_class(class).await,
            None => self.reconcile_gateway(key).await,
        }
    }

    /// Our classes, and the Gateways of our classes or holding our finalizer.
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .stores
            .classes
            .state()
            .iter()
            .filter(|c| self.serves(&c.spec.controller_name))
            .map(|c| format!("{CLASS_KEY}{}", c.name_any()))
            .collect();
        keys.extend(
            self.stores
                .gateways
                .state()
                .iter()
                .filter(|g| {
                    self.class_is_ours(&g.spec.gateway_class_name)
                        || crate::k8s::finalizer::has_finalizer(g.as_ref(), super::ALB_FINALIZER)
                })
                .map(|g| key_of(g.as_ref())),
        );
        keys
    }
}

impl<A: AlbApi> Reconciler<A> {
    pub(super) fn serves(&self, controller_name: &str) -> bool {
        self.settings
            .controller_names
            .iter()
            .any(|n| n == controller_name)
    }

    pub(super) fn class_is_ours(&self, class: &str) -> bool {
        crate::k8s::runtime::watch::get(&self.stores.classes, class)
            .is_some_and(|c| self.serves(&c.spec.controller_name))
    }

    fn gateways_of_class(&self, class: &str) -> Vec<String> {
        self.stores
            .gateways
            .state()
            .iter()
            .filter(|g| g.spec.gateway_class_name == class)
            .map(|g| key_of(g.as_ref()))
            .collect()
    }

    pub(super) fn lock_attached(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, BTreeSet<String>>> {
        self.attached.lock().unwrap_or_else(|e| e.into_inner())
    }
}
