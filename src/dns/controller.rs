//! The DNS controller: Ingress, Service and DNSEndpoint objects to Route 53, event-driven.
//!
//! Shape: watch (own reflectors, trimmed objects) → debounce → desired (pure, [`super::desired`])
//! → observe (zone list and per-zone record cache; Route 53 is listed only when a cache is cold
//! or at the resync) → plan (pure, per zone) → batches → apply (a failed batch is retried group by
//! group, so one bad record fails alone) → report (DNSEndpoint conditions and observedGeneration,
//! Events on every kind).
//!
//! It runs on the controller runtime under one key: every watch event queues that key after
//! the debounce (`--dns-debounce`), so changes arriving together become one pass; one pass
//! plans every managed zone from the caches, which is CPU only. A pass submits nothing when nothing changed, so a steady cluster makes no
//! Route 53 calls between resyncs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::assemble::{RecordSource, plan_zones};
use super::batch::{Batch, batch, split_groups};
use super::desired::{
    Desired, HEADLESS_LABEL, Objects, Problems, desired, reason, service_wants_dns,
};
use super::endpoint::{DnsName, Endpoint, Record, ResourceRef};
use super::lb_zones::LoadBalancerZones;
use super::plan::{Change, Plan, apply_to};
use super::registry::decode_record;
use super::route53::{Route53, Route53Error};
use super::settings::DnsSettings;
use super::sources::SourceContext;
use super::zones::Zone;
use crate::context::Context;
use crate::crd::{DNSEndpoint, DNSEndpointStatus};
use crate::k8s::conditions::{Clock, SystemClock, set_ready};
use crate::k8s::runtime::watch::{Change as WatchChange, keep_all, reflect};
use crate::k8s::runtime::{self, Backoff, Cause, Next, RunSettings, StepError, WorkQueue};
use crate::k8s::watched;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;

pub const CONTROLLER: &str = "dns";

/// The pass's one failing step: a Route 53 read or write.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Route53(#[from] Route53Error),
}

impl StepError for Error {
    fn cause(&self) -> Cause {
        Cause::Transient
    }

    fn label(&self) -> &'static str {
        "route53"
    }
}

/// DNS metrics, registered once per process.
#[derive(Clone)]
struct DnsMetrics {
    event_to_submit: Histogram,
    changes: Counter,
    batches: Counter,
    failed_groups: Counter,
    cached_records: Gauge,
}

impl DnsMetrics {
    fn register(metrics: &crate::telemetry::Metrics) -> Self {
        let m = DnsMetrics {
            event_to_submit: Histogram::new([
                0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
            ]),
            changes: Counter::default(),
            batches: Counter::default(),
            failed_groups: Counter::default(),
            cached_records: Gauge::default(),
        };
        metrics.register(
            "dns_event_to_submit_seconds",
            "Time from the first watch event of a pass to its Route 53 change being accepted",
            m.event_to_submit.clone(),
        );
        metrics.register(
            "dns_changes",
            "Route 53 record changes submitted and accepted",
            m.changes.clone(),
        );
        metrics.register(
            "dns_change_batches",
            "ChangeResourceRecordSets requests accepted",
            m.batches.clone(),
        );
        metrics.register(
            "dns_failed_groups",
            "Record groups Route 53 rejected on their own",
            m.failed_groups.clone(),
        );
        metrics.register(
            "dns_cached_records",
            "Route 53 record sets held in the per-zone cache",
            m.cached_records.clone(),
        );
        m
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

struct Stores {
    ingresses: Store<Ingress>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    dns_endpoints: Store<DNSEndpoint>,
    /// Only with the `gateway-httproute` source (the CRDs may not exist otherwise).
    gateway: Option<(Store<HttpRoute>, Store<Gateway>)>,
}

/// The one key the DNS pass runs under: it plans every managed zone at once.
const KEY: &str = "dns";

/// How often names outside every known zone may make the zone list be read again.
const ZONE_RELIST_MIN: Duration = Duration::from_secs(30);

/// Every live change (not the initial list) queues the pass after the debounce, and starts
/// the event-to-submit clock if it is not running.
fn on_change<K: Resource<DynamicType = ()> + 'static>(
    queue: &Arc<WorkQueue>,
    since: &Arc<Mutex<Option<Instant>>>,
    debounce: Duration,
) -> impl FnMut(WatchChange<'_, K>) + Send + 'static {
    let (queue, since) = (queue.clone(), since.clone());
    move |c| {
        if c.is_live() {
            since
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(Instant::now);
            queue.add_after(KEY, debounce);
        } else if matches!(c, WatchChange::Synced(_)) {
            // The end of a relist, which may hide changes made while the watch was down.
            queue.add_after(KEY, debounce);
        }
    }
}

impl Stores {
    fn start(
        client: &Client,
        settings: &DnsSettings,
        queue: &Arc<WorkQueue>,
        since: &Arc<Mutex<Option<Instant>>>,
        stop: &watch::Receiver<bool>,
    ) -> Self {
        let ns = settings.namespace.as_deref();
        let all = watcher::Config::default;
        let d = settings.debounce;
        Stores {
            ingresses: reflect(
                api(client, ns),
                all(),
                keep_all,
                on_change(queue, since, d),
                stop.clone(),
            ),
            services: reflect(
                api(client, ns),
                all(),
                |s: &mut Service| watched::dns_service(s, service_wants_dns),
                on_change(queue, since, d),
                stop.clone(),
            ),
            slices: reflect(
                api(client, ns),
                all().labels(HEADLESS_LABEL),
                watched::dns_slice,
                on_change(queue, since, d),
                stop.clone(),
            ),
            dns_endpoints: reflect(
                api(client, ns),
                all(),
                keep_all,
                on_change(queue, since, d),
                stop.clone(),
            ),
            // Routes may attach to Gateways in other namespaces: those are watched everywhere.
            gateway: settings.sources.http_route.then(|| {
                (
                    reflect(
                        api(client, ns),
                        all(),
                        keep_all,
                        on_change(queue, since, d),
                        stop.clone(),
                    ),
                    reflect(
                        Api::all(client.clone()),
                        all(),
                        keep_all,
                        on_change(queue, since, d),
                        stop.clone(),
                    ),
                )
            }),
        }
    }

    async fn wait_ready(&self) {
        let _ = tokio::join!(
            self.ingresses.wait_until_ready(),
            self.services.wait_until_ready(),
            self.slices.wait_until_ready(),
            self.dns_endpoints.wait_until_ready(),
            async {
                if let Some((routes, gateways)) = &self.gateway {
                    let _ = tokio::join!(routes.wait_until_ready(), gateways.wait_until_ready());
                }
            },
        );
    }
}

/// A group Route 53 rejected, kept so that the same change is not resubmitted on every pass.
#[derive(Debug, Clone)]
struct Rejected {
    fingerprint: u64,
    retry_after: Instant,
    message: String,
    resources: BTreeSet<ResourceRef>,
}

fn fingerprint(changes: &[Change]) -> u64 {
    let mut h = DefaultHasher::new();
    for c in changes {
        c.action.hash(&mut h);
        c.record.hash(&mut h);
    }
    h.finish()
}

/// What a pass reports, by object.
#[derive(Debug, Default)]
struct Report {
    problems: Problems,
    /// Objects whose records were changed in this pass.
    published: BTreeSet<ResourceRef>,
}

/// The controller's state between passes.
struct Dns {
    settings: DnsSettings,
    route53: Route53,
    client: Client,
    events: crate::k8s::events::EventRecorder,
    metrics: DnsMetrics,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    lb_zones: LoadBalancerZones,
    zones: Option<(Instant, Vec<Zone>)>,
    records: HashMap<String, Vec<Record>>,
    rejected: HashMap<(String, DnsName), Rejected>,
    /// The problems last reported per object, so Events are sent once per change.
    reported: HashMap<ResourceRef, u64>,
    clock: Box<dyn Clock>,
    /// When the record caches go cold again.
    next_resync: Instant,
}

/// The per-zone record cache: Route 53 is listed only when a zone's cache is cold.
struct CachedRecords<'a> {
    route53: &'a Route53,
    records: &'a mut HashMap<String, Vec<Record>>,
}

impl RecordSource for CachedRecords<'_> {
    async fn records(&mut self, zone: &Zone) -> Result<Vec<Record>, Route53Error> {
        if let Some(records) = self.records.get(&zone.id) {
            return Ok(records.clone());
        }
        let records = self.route53.list_records(&zone.id).await?;
        self.records.insert(zone.id.clone(), records.clone());
        Ok(records)
    }
}

/// The DNS controller on the runtime: one key, one worker.
struct Reconciler {
    stores: Stores,
    dns: tokio::sync::Mutex<Dns>,
    /// When the oldest change not yet published arrived.
    since: Arc<Mutex<Option<Instant>>>,
}

impl runtime::Reconciler for Reconciler {
    type Error = Error;
    const NAME: &'static str = CONTROLLER;

    async fn reconcile(&self, _key: &str) -> Result<Next, Error> {
        let mut dns = self.dns.lock().await;
        let now = Instant::now();
        // Every pass asks to run again by `next_resync` at the latest, and that run lists
        // Route 53 again.
        if now >= dns.next_resync {
            debug!("DNS resync: record caches are cold");
            dns.records.clear();
            dns.zones = None;
            dns.lb_zones.forget_misses();
            dns.next_resync = now + dns.settings.resync_interval;
        }
        let since = self.since.lock().unwrap_or_else(|e| e.into_inner()).take();
        match dns.pass(&self.stores, since).await {
            Ok(retry) => {
                let at = retry.map_or(dns.next_resync, |r| r.min(dns.next_resync));
                Ok(Next::After(at.saturating_duration_since(Instant::now())))
            }
            Err(e) => {
                // A zone whose change batch failed has already dropped its record cache.
                if let Some(since) = since {
                    // Keep the latency clock running for the events not yet published.
                    let mut s = self.since.lock().unwrap_or_else(|e| e.into_inner());
                    s.get_or_insert(since);
                }
                Err(e)
            }
        }
    }

    fn keys(&self) -> Vec<String> {
        vec![KEY.to_owned()]
    }
}

/// Runs the DNS controller until `stop` flips (leader only).
pub async fn run(ctx: Arc<Context>, settings: DnsSettings, stop: watch::Receiver<bool>) {
    let queue = Arc::new(WorkQueue::new(Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(300),
    }));
    let since = Arc::new(Mutex::new(None));
    let stores = Stores::start(&ctx.client, &settings, &queue, &since, &stop);
    let dns = Dns {
        route53: Route53::new(ctx.aws.route53.clone()),
        client: ctx.client.clone(),
        events: ctx.events.clone(),
        metrics: DnsMetrics::register(&ctx.metrics),
        elbv2: ctx.aws.elbv2.clone(),
        lb_zones: LoadBalancerZones::default(),
        zones: None,
        records: HashMap::new(),
        rejected: HashMap::new(),
        reported: HashMap::new(),
        clock: Box::new(SystemClock),
        next_resync: Instant::now() + settings.resync_interval,
        settings,
    };
    info!(
        owner = dns.settings.registry.owner_id(),
        policy = ?dns.settings.policy,
        dry_run = dns.settings.dry_run,
        namespace = dns.settings.namespace.as_deref().unwrap_or("<all>"),
        "DNS controller starting"
    );
    let mut stopped = stop.clone();
    tokio::select! {
        _ = stores.wait_ready() => {}
        _ = stopped.wait_for(|s| *s) => return,
    }
    let resync = dns.settings.resync_interval;
    let r = Arc::new(Reconciler {
        stores,
        dns: tokio::sync::Mutex::new(dns),
        since,
    });
    runtime::run(
        r,
        queue,
        RunSettings { workers: 1, resync },
        ctx.metrics.clone(),
        stop,
    )
    .await;
}

impl Dns {
    async fn zones(&mut self) -> Result<Vec<Zone>, Route53Error> {
        if let Some((at, zones)) = &self.zones
            && at.elapsed() < self.settings.zone_cache_ttl
        {
            return Ok(zones.clone());
        }
        let all = self
            .route53
            .list_zones(!self.settings.zone_filter.tags.is_empty())
            .await?;
        let selected = self.settings.zone_filter.select(&all);
        // Zones no longer managed drop their record caches.
        let ids: HashSet<&str> = selected.iter().map(|z| z.id.as_str()).collect();
        self.records.retain(|id, _| ids.contains(id.as_str()));
        self.zones = Some((Instant::now(), selected.clone()));
        Ok(selected)
    }

    /// One pass over everything. Returns when to run again without an event (a rejected
    /// change's retry time), if ever.
    async fn pass(
        &mut self,
        stores: &Stores,
        since: Option<Instant>,
    ) -> Result<Option<Instant>, Error> {
        let ingresses = stores.ingresses.state();
        let services = stores.services.state();
        let slices = stores.slices.state();
        let dns_endpoints = stores.dns_endpoints.state();
        let ingresses: Vec<&Ingress> = ingresses.iter().map(AsRef::as_ref).collect();
        let services: Vec<&Service> = services.iter().map(AsRef::as_ref).collect();
        let slices: Vec<&EndpointSlice> = slices.iter().map(AsRef::as_ref).collect();
        let dns_endpoints: Vec<&DNSEndpoint> = dns_endpoints.iter().map(AsRef::as_ref).collect();
        let (routes, gateways) = match &stores.gateway {
            Some((r, g)) => (r.state(), g.state()),
            None => (Vec::new(), Vec::new()),
        };
        let routes: Vec<&HttpRoute> = routes.iter().map(AsRef::as_ref).collect();
        let gateways: Vec<&Gateway> = gateways.iter().map(AsRef::as_ref).collect();
        let objects = Objects {
            ingresses: &ingresses,
            services: &services,
            endpoint_slices: &slices,
            dns_endpoints: &dns_endpoints,
            http_routes: &routes,
            gateways: &gateways,
        };

        self.lb_zones
            .resolve(&self.elbv2, load_balancer_hostnames(&objects))
            .await;
        let source_ctx = SourceContext {
            load_balancer_zones: self.lb_zones.known(),
            evaluate_target_health: self.settings.evaluate_target_health,
        };
        let Desired {
            endpoints,
            problems,
            objects: seen,
        } = desired(
            &objects,
            self.settings.sources,
            &self.settings.annotation_filter,
            &source_ctx,
        );
        let mut report = Report {
            problems,
            published: BTreeSet::new(),
        };

        let zones = self.zones().await?;
        let mut cache = CachedRecords {
            route53: &self.route53,
            records: &mut self.records,
        };
        let planned = plan_zones(
            &zones,
            endpoints,
            &self.settings,
            &mut report.problems,
            &mut cache,
        )
        .await;
        let relist_at = self.relist_zones_for(planned.outside_zones);
        let mut submitted_any = false;
        let now = Instant::now();
        self.rejected.retain(|_, r| r.retry_after > now);
        for zone_plan in planned.zones {
            let z = zone_plan.map_err(|(_, e)| e)?;
            submitted_any |= self
                .apply_zone(&z.zone, &z.desired, z.current, z.planned, &mut report)
                .await?;
        }
        if submitted_any && let Some(since) = since {
            self.metrics
                .event_to_submit
                .observe(since.elapsed().as_secs_f64());
        }
        self.metrics
            .cached_records
            .set(self.records.values().map(Vec::len).sum::<usize>() as i64);
        self.report(&seen, &report, &dns_endpoints).await;
        Ok(self
            .rejected
            .values()
            .map(|r| r.retry_after)
            .chain(relist_at)
            .min())
    }

    /// A name outside every known zone may belong to a zone created since the list was
    /// read: the list is read again, at most every [`ZONE_RELIST_MIN`], instead of waiting
    /// for the zone cache to expire. Returns when the pass should run again for it.
    fn relist_zones_for(&mut self, outside_zones: usize) -> Option<Instant> {
        if outside_zones == 0 {
            return None;
        }
        let listed_at = self.zones.as_ref().map(|(at, _)| *at)?;
        let due = listed_at + ZONE_RELIST_MIN;
        if Instant::now() >= due {
            debug!(
                names = outside_zones,
                "names outside every known zone: listing hosted zones again"
            );
            self.zones = None;
            Some(Instant::now())
        } else {
            Some(due)
        }
    }

    /// Batches and submits one zone's changes. Returns whether anything was accepted.
    async fn apply_zone(
        &mut self,
        zone: &Zone,
        desired: &[Endpoint],
        mut current: Vec<Record>,
        planned: Plan,
        report: &mut Report,
    ) -> Result<bool, Error> {
        if planned.changes.is_empty() {
            return Ok(false);
        }
        let owners = group_owners(desired, &planned.changes);
        // Groups rejected before with the very same changes wait for their backoff.
        let mut changes = Vec::with_capacity(planned.changes.len());
        for group in groups_of(&planned.changes) {
            let key = (zone.id.clone(), group[0].group.clone());
            match self.rejected.get(&key) {
                Some(r) if r.fingerprint == fingerprint(group) => {
                    for resource in &r.resources {
                        report
                            .problems
                            .add(resource, reason::ROUTE53_REJECTED, r.message.clone());
                    }
                }
                _ => changes.extend(group.iter().cloned()),
            }
        }
        let (batches, oversized) = batch(&changes, &self.settings.batch_limits);
        for error in &oversized {
            let super::BatchError::GroupTooLarge { group, .. } = error;
            for resource in owners.get(group).into_iter().flatten() {
                report
                    .problems
                    .add(resource, reason::INVALID_SPEC, error.to_string());
            }
        }
        if self.settings.dry_run {
            for change in &changes {
                info!(zone = %zone.id, action = %change.action, record = %change.record.key(), "dry run: would change");
            }
            return Ok(false);
        }
        let mut accepted_any = false;
        for b in batches {
            match self.route53.change(&zone.id, &b).await {
                Ok(()) => {
                    self.accepted(zone, &b, &owners, &mut current, report);
                    accepted_any = true;
                }
                // Failed or lost: the zone's records are read again before its next plan.
                Err(e) if !e.is_rejection() => {
                    self.records.remove(&zone.id);
                    return Err(e.into());
                }
                Err(e) => {
                    debug!(zone = %zone.id, error = %e, "batch rejected; retrying each group alone");
                    for single in split_groups(&b) {
                        match self.route53.change(&zone.id, &single).await {
                            Ok(()) => {
                                self.accepted(zone, &single, &owners, &mut current, report);
                                accepted_any = true;
                            }
                            Err(e) if e.is_rejection() => {
                                self.metrics.failed_groups.inc();
                                let group = single.changes[0].group.clone();
                                let resources: BTreeSet<ResourceRef> =
                                    owners.get(&group).cloned().unwrap_or_default();
                                let message =
                                    format!("Route 53 rejected the change to {group}: {e}");
                                warn!(zone = %zone.id, %group, error = %e, "record group rejected");
                                for resource in &resources {
                                    report.problems.add(
                                        resource,
                                        reason::ROUTE53_REJECTED,
                                        message.clone(),
                                    );
                                }
                                self.rejected.insert(
                                    (zone.id.clone(), group),
                                    Rejected {
                                        fingerprint: fingerprint(&single.changes),
                                        retry_after: Instant::now()
                                            + self.settings.failed_change_backoff,
                                        message,
                                        resources,
                                    },
                                );
                                // The cache may have been wrong about this name.
                                self.records.remove(&zone.id);
                            }
                            Err(e) => {
                                self.records.remove(&zone.id);
                                return Err(e.into());
                            }
                        }
                    }
                }
            }
        }
        if self.records.contains_key(&zone.id) {
            self.records.insert(zone.id.clone(), current);
        }
        Ok(accepted_any)
    }

    fn accepted(
        &mut self,
        zone: &Zone,
        b: &Batch,
        owners: &HashMap<DnsName, BTreeSet<ResourceRef>>,
        current: &mut Vec<Record>,
        report: &mut Report,
    ) {
        self.metrics.batches.inc();
        self.metrics.changes.inc_by(b.changes.len() as u64);
        info!(zone = %zone.id, changes = b.changes.len(), "Route 53 accepted a change batch");
        for change in &b.changes {
            debug!(zone = %zone.id, action = %change.action, record = ?change.record, "changed");
        }
        for change in &b.changes {
            for resource in owners.get(&change.group).into_iter().flatten() {
                report.published.insert(resource.clone());
            }
        }
        let applied = Plan {
            changes: b.changes.clone(),
            errors: Vec::new(),
        };
        match apply_to(current, &applied) {
            Ok(next) => *current = next,
            Err(e) => {
                debug!(zone = %zone.id, error = %e, "record cache disagrees with Route 53; relisting");
                self.records.remove(&zone.id);
            }
        }
    }

    /// Conditions on DNSEndpoints, Events on every kind; only what changed since last time.
    async fn report(
        &mut self,
        seen: &BTreeMap<ResourceRef, super::desired::ObjectInfo>,
        report: &Report,
        dns_endpoints: &[&DNSEndpoint],
    ) {
        let no_problems = BTreeSet::new();
        for (resource, info) in seen {
            let problems = report.problems.get(resource).unwrap_or(&no_problems);
            let mut h = DefaultHasher::new();
            problems.hash(&mut h);
            let print = h.finish();
            let oref = object_ref(resource, info.uid.clone());
            let changed = self.reported.insert(resource.clone(), print) != Some(print);
            if changed {
                for p in problems {
                    self.events.warn(&oref, p.reason, p.message.clone()).await;
                }
            }
            if report.published.contains(resource) && problems.is_empty() {
                self.events
                    .normal(&oref, reason::PUBLISHED, "records published to Route 53")
                    .await;
            }
            if resource.kind == super::sources::DNS_ENDPOINT_KIND
                && let Some(obj) = dns_endpoints.iter().find(|d| {
                    d.metadata.name.as_deref() == Some(resource.name.as_str())
                        && d.metadata.namespace.as_deref() == Some(resource.namespace.as_str())
                })
            {
                let (status, changed) = dns_endpoint_status(
                    obj.status.as_ref(),
                    obj.metadata.generation,
                    problems,
                    self.settings.dry_run,
                    self.clock.as_ref(),
                );
                if changed {
                    let api: Api<DNSEndpoint> =
                        Api::namespaced(self.client.clone(), &resource.namespace);
                    if let Err(e) =
                        crate::k8s::apply::apply_status(&api, &resource.name, &status).await
                    {
                        warn!(object = %resource, error = %e, "could not write DNSEndpoint status");
                        self.reported.remove(resource);
                    }
                }
            }
        }
        self.reported.retain(|r, _| seen.contains_key(r));
    }
}

/// The ELB hostnames the objects point at, to resolve their canonical zones.
fn load_balancer_hostnames<'a>(objects: &'a Objects<'a>) -> Vec<&'a str> {
    let ingress = objects.ingresses.iter().flat_map(|i| {
        i.status
            .iter()
            .filter_map(|s| s.load_balancer.as_ref())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|i| i.hostname.as_deref())
    });
    let service = objects.services.iter().flat_map(|s| {
        s.status
            .iter()
            .filter_map(|s| s.load_balancer.as_ref())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|i| i.hostname.as_deref())
    });
    let dns = objects
        .dns_endpoints
        .iter()
        .flat_map(|d| d.spec.endpoints.iter().flat_map(|e| e.targets.iter()))
        .map(String::as_str);
    let gateway = objects.gateways.iter().flat_map(|g| {
        g.status
            .iter()
            .flat_map(|s| s.addresses.iter().flatten())
            .map(|a| a.value.as_str())
    });
    ingress
        .chain(service)
        .chain(dns)
        .chain(gateway)
        .filter(|h| super::elb::parse_load_balancer_hostname(h).is_some())
        .collect()
}

fn groups_of(changes: &[Change]) -> Vec<&[Change]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < changes.len() {
        let end = changes[start..]
            .iter()
            .position(|c| c.group != changes[start].group)
            .map_or(changes.len(), |n| start + n);
        out.push(&changes[start..end]);
        start = end;
    }
    out
}

/// The objects behind each group: those asking for the name, and (for deletions) the one
/// named in the ownership record.
fn group_owners(
    desired: &[Endpoint],
    changes: &[Change],
) -> HashMap<DnsName, BTreeSet<ResourceRef>> {
    let mut owners: HashMap<DnsName, BTreeSet<ResourceRef>> = HashMap::new();
    let groups: HashSet<&DnsName> = changes.iter().map(|c| &c.group).collect();
    for endpoint in desired {
        if groups.contains(&endpoint.dns_name)
            && let Some(resource) = &endpoint.resource
        {
            owners
                .entry(endpoint.dns_name.clone())
                .or_default()
                .insert(resource.clone());
        }
    }
    for change in changes {
        if let Some(resource) = decode_record(&change.record)
            .and_then(|l| l.resource)
            .and_then(|r| ResourceRef::parse(&r))
        {
            owners
                .entry(change.group.clone())
                .or_default()
                .insert(resource);
        }
    }
    owners
}

fn object_ref(resource: &ResourceRef, uid: Option<String>) -> ObjectReference {
    let (api_version, kind) = match resource.kind.as_str() {
        super::sources::INGRESS_KIND => ("networking.k8s.io/v1", "Ingress"),
        super::sources::SERVICE_KIND => ("v1", "Service"),
        super::sources::HTTP_ROUTE_KIND => ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        _ => ("externaldns.k8s.io/v1alpha1", "DNSEndpoint"),
    };
    ObjectReference {
        api_version: Some(api_version.to_string()),
        kind: Some(kind.to_string()),
        namespace: Some(resource.namespace.clone()),
        name: Some(resource.name.clone()),
        uid,
        ..ObjectReference::default()
    }
}

/// Pure: a DNSEndpoint's status for the problems found on it. Returns whether it changed.
pub fn dns_endpoint_status(
    current: Option<&DNSEndpointStatus>,
    generation: Option<i64>,
    problems: &BTreeSet<super::desired::Problem>,
    dry_run: bool,
    clock: &dyn Clock,
) -> (DNSEndpointStatus, bool) {
    let mut status = current.cloned().unwrap_or_default();
    let (ready, why, message) = match problems.iter().next() {
        None if dry_run => (
            false,
            reason::PENDING,
            "dry run: changes are planned but not submitted".to_string(),
        ),
        None => (
            true,
            reason::PUBLISHED,
            "every record is published".to_string(),
        ),
        Some(first) => (
            false,
            first.reason,
            problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    let changed = set_ready(
        &mut status.conditions,
        &mut status.observed_generation,
        ready,
        why,
        &message,
        generation,
        clock,
    );
    (status, changed)
}

#[cfg(test)]
mod tests {
    use super::super::desired::Problem;
    use super::*;
    use crate::k8s::conditions::FixedClock;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn status_is_ready_without_problems_and_keeps_transition_time() {
        let t0 = FixedClock(Timestamp::from_second(1_000).unwrap());
        let t1 = FixedClock(Timestamp::from_second(2_000).unwrap());
        let (s, changed) = dns_endpoint_status(None, Some(3), &BTreeSet::new(), false, &t0);
        assert!(changed);
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.conditions[0].status, "True");
        let (s2, changed) = dns_endpoint_status(Some(&s), Some(3), &BTreeSet::new(), false, &t1);
        assert!(!changed);
        assert_eq!(s2, s);
        let problems: BTreeSet<Problem> = [Problem {
            reason: reason::NOT_OWNED,
            message: "x.example.com A already exists".into(),
        }]
        .into();
        let (s3, changed) = dns_endpoint_status(Some(&s2), Some(4), &problems, false, &t1);
        assert!(changed);
        assert_eq!(s3.conditions[0].status, "False");
        assert_eq!(s3.conditions[0].reason, reason::NOT_OWNED);
        assert_eq!(s3.observed_generation, Some(4));
        assert_eq!(
            s3.conditions[0].last_transition_time.0,
            Timestamp::from_second(2_000).unwrap()
        );
    }

    #[test]
    fn groups_split_where_the_name_changes() {
        let rec = |n: &str| Record {
            name: DnsName::parse(n).unwrap(),
            record_type: super::super::RecordType::A,
            set_identifier: None,
            ttl: Some(1),
            values: ["10.0.0.1".to_string()].into(),
            alias: None,
            routing: Default::default(),
        };
        let ch = |g: &str| Change {
            action: super::super::Action::Create,
            record: rec(g),
            group: DnsName::parse(g).unwrap(),
        };
        let changes = vec![ch("a.x.com"), ch("a.x.com"), ch("b.x.com")];
        let groups = groups_of(&changes);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].len(), 2);
    }
}
