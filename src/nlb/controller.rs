//! The NLB reconciler on the controller runtime: one key per Service (`namespace/name`),
//! queued by Service changes and the resync. Services are reconciled one at a time; a
//! failed one backs off without holding up the others. The steps are in
//! [`super::reconcile`].

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};
use tracing::info;

use super::NlbSettings;
use super::reconcile::Error;
use crate::alb::aws::AlbApi;
use crate::alb::cache::DiscoveryCache;
use crate::aws::tags::StackKind;
use crate::context::Context;
use crate::crd::LoadBalancerGroup;
use crate::k8s::finalizer::{NLB_FINALIZER, has_finalizer};
use crate::k8s::runtime::watch::{Change, keep_all, reflect};
use crate::k8s::runtime::{self, Backoff, Next, RunSettings, WorkQueue};
use crate::k8s::watched;

pub const CONTROLLER: &str = "nlb";

pub(super) struct Stores {
    pub services: Store<Service>,
    pub groups: Store<LoadBalancerGroup>,
}

pub(super) struct Reconciler<A = crate::aws::AwsClients> {
    pub ctx: Arc<Context>,
    pub aws: A,
    pub settings: NlbSettings,
    pub stores: Stores,
    pub discovery: DiscoveryCache,
}

pub async fn run(ctx: Arc<Context>, settings: NlbSettings, stop: watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let client = ctx.client.clone();
    let services = {
        let tx = tx.clone();
        reflect(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
            watched::nlb_service,
            move |c: Change<'_, Service>| match c {
                Change::Applied(s) | Change::Deleted(s) => {
                    let _ = tx.send(format!(
                        "{}/{}",
                        s.namespace().unwrap_or_default(),
                        s.name_any()
                    ));
                }
                Change::Synced(_) => {
                    let _ = tx.send(String::new());
                }
                Change::Listed(_) => {}
            },
            stop.clone(),
        )
    };
    let groups = reflect(
        Api::<LoadBalancerGroup>::all(client.clone()),
        watcher::Config::default(),
        keep_all,
        |_c: Change<'_, LoadBalancerGroup>| {},
        stop.clone(),
    );
    let mut stopped = stop.clone();
    tokio::select! {
        _ = async { tokio::join!(services.wait_until_ready(), groups.wait_until_ready()) } => {}
        _ = stopped.wait_for(|s| *s) => return,
    }
    let metrics = ctx.metrics.clone();
    let resync = settings.shared.resync;
    let aws = ctx.aws.clone();
    let r = Arc::new(Reconciler {
        ctx,
        aws,
        settings,
        stores: Stores { services, groups },
        discovery: DiscoveryCache::default(),
    });
    let queue = Arc::new(WorkQueue::new(Backoff::default()));
    let router = {
        let (r, queue) = (r.clone(), queue.clone());
        async move {
            while let Some(key) = rx.recv().await {
                // An empty key: the store was (re)listed; look at every Service.
                if key.is_empty() {
                    for k in runtime::Reconciler::keys(r.as_ref()) {
                        queue.add(k);
                    }
                } else if r.concerns(&key) {
                    queue.add(key);
                }
            }
        }
    };
    info!("nlb reconciler started");
    tokio::select! {
        _ = runtime::run(r, queue, RunSettings { workers: 1, resync }, metrics, stop) => {}
        _ = router => {}
    }
}

impl<A: AlbApi> runtime::Reconciler for Reconciler<A> {
    type Error = Error;
    const NAME: &'static str = CONTROLLER;

    async fn reconcile(&self, key: &str) -> Result<Next, Error> {
        self.reconcile_service(key).await
    }

    /// Our Services, those still holding our finalizer, and those with a stack object.
    fn keys(&self) -> Vec<String> {
        let mut out: BTreeSet<String> = self
            .stores
            .services
            .state()
            .iter()
            .filter(|s| self.ours(s) || has_finalizer(s.as_ref(), NLB_FINALIZER))
            .map(|s| format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any()))
            .collect();
        out.extend(self.stacks());
        out.into_iter().collect()
    }
}

impl<A: AlbApi> Reconciler<A> {
    pub(super) fn ours(&self, svc: &Service) -> bool {
        super::annotations::ours(svc, &self.settings.load_balancer_class)
    }

    /// The controller name recorded on the stacks this instance manages.
    pub(super) fn owner(&self) -> &str {
        self.settings.shared.class.owner()
    }

    /// The Services whose stack object this instance manages.
    fn stacks(&self) -> Vec<String> {
        self.stores
            .groups
            .state()
            .iter()
            .filter(|g| g.spec.kind == StackKind::Service && g.spec.controller == self.owner())
            .map(|g| g.spec.stack.clone())
            .collect()
    }

    /// Whether a change of Service `key` is ours to look at: ours now, or ours before.
    fn concerns(&self, key: &str) -> bool {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let svc = self
            .stores
            .services
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(ns));
        svc.is_some_and(|s| self.ours(&s) || has_finalizer(s.as_ref(), NLB_FINALIZER))
            || self.stacks().iter().any(|s| s == key)
    }
}
