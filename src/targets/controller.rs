//! The TargetGroupBinding reconciler (leader only).
//!
//! Shape: fetch (binding, and its Service/EndpointSlices/Nodes from small caches) →
//! validate the target group (cached per generation) → desired targets (pure) → observe
//! (DescribeTargetHealth) → plan (pure) → register/deregister in batches → security group
//! rules → readiness gates → status. Triggers come from an index by Service, so an
//! EndpointSlice change reconciles only the bindings of its Service.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use super::aws::{self as tgaws, TargetsApi};
use super::desired::{self, Desired, DesiredError, Inputs};
use super::plan::{
    self, Observed, RulePlan, TargetGroupError, TargetGroupInfo, TargetState, desired_rules,
    plan_rules, plan_targets, validate_target_group,
};
use super::settings::TargetsSettings;
use super::status::{Outcome, desired_status, reason};
use super::watch::{NodeFilter, ServiceIndex, slice_service};
use super::{READINESS_GATE_PREFIX, readiness_gate};
use crate::aws::coalesce::Coalescer;
use crate::context::Context;
use crate::crd::TargetGroupBinding;
use crate::crd::target_group_binding::{TargetGroupIpAddressType, TargetType};
use crate::k8s::conditions::SystemClock;
use crate::k8s::finalizer::{
    LBC_TGB_FINALIZER, TARGETS_FINALIZER, add_finalizer, has_finalizer, remove_finalizers,
};
use crate::k8s::runtime::watch::{self as cache, Change, keep_all, key_of, key_of_ref, reflect};
use crate::k8s::runtime::{self, Backoff, Cause, Next, RunSettings, StepError, WorkQueue};
use crate::k8s::{SERVICE_NAME_LABEL, watched};

pub const CONTROLLER: &str = "target-group-binding";

/// One variant per step that can fail; each keeps its source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fetch: the target group (DescribeTargetGroups, attributes).
    #[error("reading the target group")]
    TargetGroup(#[source] tgaws::AwsCallError),
    /// Fetch: the Pods behind endpoints that wait for their readiness gate.
    #[error("reading gated pods")]
    Pods(#[source] kube::Error),
    /// Observe: DescribeTargetHealth.
    #[error("observing targets")]
    Observe(#[source] tgaws::AwsCallError),
    /// Apply: RegisterTargets / DeregisterTargets.
    #[error("registering targets")]
    Register(#[source] tgaws::AwsCallError),
    /// Apply: the binding's security group rules.
    #[error("syncing security group rules")]
    Rules(#[source] tgaws::AwsCallError),
    /// Desired: the networking rules, once the targets' security groups are known.
    #[error("networking rules")]
    Networking(#[source] plan::NetworkingError),
    /// Apply: the pods' readiness-gate conditions.
    #[error("setting readiness gates")]
    Gates(#[source] kube::Error),
    /// Status: writing the binding's status.
    #[error("writing status")]
    Status(#[source] crate::k8s::apply::ApplyError),
    /// The finalizer (adding or removing it).
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Cleanup: rules stay until the targets have drained.
    #[error("waiting for {0} draining targets before removing security group rules")]
    Draining(usize),
}

impl StepError for Error {
    fn cause(&self) -> Cause {
        match self {
            Error::Draining(_) => Cause::NotReady(Duration::from_secs(5)),
            Error::Networking(_) => Cause::InvalidSpec,
            _ => Cause::Transient,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Error::TargetGroup(_) | Error::Observe(_) | Error::Register(_) | Error::Rules(_) => {
                "aws"
            }
            Error::Networking(_) => "invalid",
            Error::Pods(_) | Error::Gates(_) | Error::Status(_) | Error::Finalizer(_) => {
                "kubernetes"
            }
            Error::Draining(_) => "draining",
        }
    }
}

/// A target group checked for one generation of a binding.
#[derive(Clone, Debug)]
struct Validated {
    generation: Option<i64>,
    info: TargetGroupInfo,
    target_type: TargetType,
    /// Read when first needed (draining, deletion), not on every validation.
    deregistration_delay: Option<u64>,
}

/// What a reconcile left a binding's target group in, and when it finished: the targets as
/// the last read showed them with this process's own registrations and deregistrations
/// applied (the peer keeps the same view of each target group).
struct Converged {
    arn: String,
    observed: Observed,
    at: Instant,
    /// When target health is to be read again (new targets turning healthy, draining ones
    /// going, gated pods); `None` once everything was healthy.
    poll_at: Option<Instant>,
}

/// Whether the next reconcile plans against the kept view instead of reading the target
/// health: the view is younger than `ttl` and no health poll is due. A change of the
/// EndpointSlices then costs the RegisterTargets / DeregisterTargets it needs and nothing
/// more; a poll, the resync (`ttl` is shorter than it) and any reconcile after a failed one
/// (which drops the view) read.
fn view_reusable(c: &Converged, arn: &str, ttl: Duration, now: Instant) -> bool {
    c.arn == arn && now.duration_since(c.at) < ttl && c.poll_at.is_none_or(|p| now < p)
}

/// The next health poll: an earlier one still pending is kept (a stream of EndpointSlice
/// changes must not push it back forever), none when nothing waits.
fn next_poll(prev: Option<Instant>, wait: Option<Duration>, now: Instant) -> Option<Instant> {
    let wait = wait?;
    Some(match prev {
        Some(p) if p > now => p.min(now + wait),
        _ => now + wait,
    })
}

/// How long a lookup waits for the lookups of the reconciles around it.
const LOOKUP_WINDOW: Duration = Duration::from_millis(20);

/// Security group rules last found in sync for a binding, and when.
struct RulesSynced {
    rules: BTreeSet<plan::IngressRule>,
    at: Instant,
}

/// Bad input found by a step: reported on the binding, never retried unchanged.
#[derive(Debug)]
struct Invalid {
    reason: &'static str,
    message: String,
}

/// What the fetch step read for one binding.
struct Fetched {
    tg: Validated,
    service: Option<Arc<Service>>,
    slices: Vec<Arc<EndpointSlice>>,
    nodes: Vec<Arc<Node>>,
    /// Pods that are not Ready only because they wait for this binding's gate.
    gated: HashSet<String>,
    /// The Service port's named targetPort, for named networking ports.
    target_port_name: Option<String>,
}

/// Desired (pure): the targets, and the networking rules checked before anything in AWS is
/// touched, so a bad port changes nothing. `Err` is bad input and the nodes without a
/// providerID (for the status).
fn desired_state(b: &TargetGroupBinding, f: &Fetched) -> Result<Desired, (Invalid, Vec<String>)> {
    let ip_family = match f.tg.info.ip_address_type.as_deref() {
        Some("ipv6") => TargetGroupIpAddressType::Ipv6,
        _ => b
            .spec
            .ip_address_type
            .unwrap_or(TargetGroupIpAddressType::Ipv4),
    };
    let inputs = Inputs {
        target_type: f.tg.target_type,
        ip_family,
        service_name: &b.spec.service_ref.name,
        service_port: &b.spec.service_ref.port,
        node_selector: b.spec.node_selector.as_ref(),
        gated_pods: &f.gated,
    };
    let desired = desired::desired_targets(
        &inputs,
        f.service.as_deref(),
        f.slices.iter().map(|s| s.as_ref()),
        &f.nodes,
    )
    .map_err(|e| {
        let why = match e {
            DesiredError::ServiceNotFound(_) => reason::SERVICE_NOT_FOUND,
            DesiredError::PortNotFound { .. } => reason::PORT_NOT_FOUND,
            DesiredError::NoNodePort { .. } => reason::NO_NODE_PORT,
            DesiredError::InvalidNodeSelector(_) => reason::INVALID_NODE_SELECTOR,
        };
        (
            Invalid {
                reason: why,
                message: e.to_string(),
            },
            Vec::new(),
        )
    })?;
    if let Err(e) = desired_rules(
        b.spec.networking.as_ref(),
        f.tg.target_type,
        f.target_port_name.as_deref(),
        desired.port,
        &BTreeSet::new(),
    ) {
        return Err((
            Invalid {
                reason: reason::INVALID_NETWORKING,
                message: e.to_string(),
            },
            desired.nodes_without_provider_id,
        ));
    }
    Ok(desired)
}

/// Status (pure): the counts after apply, and how many desired targets are healthy.
fn synced_outcome(desired: &Desired, observed: &Observed) -> (Outcome, i32) {
    let registered = observed
        .values()
        .filter(|s| **s != TargetState::Draining && **s != TargetState::Unused)
        .count() as i32;
    let healthy = observed
        .iter()
        .filter(|(t, s)| **s == TargetState::Healthy && desired.targets.contains(*t))
        .count() as i32;
    (
        Outcome::Synced {
            registered,
            healthy,
        },
        healthy,
    )
}

/// The reconciler, over an AWS adapter: the SDK's in production, a fake in the
/// reconcile-level tests.
pub struct Reconciler<A = crate::aws::AwsClients> {
    ctx: Arc<Context>,
    aws: A,
    settings: TargetsSettings,
    bindings: Store<TargetGroupBinding>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    target_groups: Mutex<HashMap<String, Validated>>,
    rules: Mutex<HashMap<String, RulesSynced>>,
    converged: Mutex<HashMap<String, Converged>>,
    instance_sgs: Mutex<HashMap<String, Vec<String>>>,
    /// Target groups and instances asked for by reconciles running together, each looked up
    /// in one batched call (a restart validates every binding at once).
    tg_lookups: Coalescer<String, TargetGroupInfo, tgaws::AwsCallError>,
    instance_lookups: Coalescer<String, Vec<String>, tgaws::AwsCallError>,
    /// The security group rules each binding owns, by owner.
    rule_lookups: Coalescer<String, Vec<plan::OwnedRule>, tgaws::AwsCallError>,
    failures: Mutex<HashMap<String, u32>>,
    /// For multiClusterTargetGroup bindings: the targets this process registered (or
    /// wanted), the only ones it may deregister. Lost on restart, which errs on the side
    /// of leaving another cluster's targets alone.
    ours: Mutex<HashMap<String, BTreeSet<plan::Target>>>,
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

fn jitter(base: Duration) -> Duration {
    base + Duration::from_millis(rand::random::<u64>() % (base.as_millis() as u64 / 10 + 1))
}

/// The caches the reconciler reads.
pub(crate) struct Stores {
    pub bindings: Store<TargetGroupBinding>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
}

impl<A: TargetsApi> Reconciler<A> {
    pub(crate) fn new(
        ctx: Arc<Context>,
        aws: A,
        settings: TargetsSettings,
        stores: Stores,
    ) -> Self {
        Reconciler {
            ctx,
            aws,
            settings,
            bindings: stores.bindings,
            services: stores.services,
            slices: stores.slices,
            nodes: stores.nodes,
            target_groups: Mutex::new(HashMap::new()),
            rules: Mutex::new(HashMap::new()),
            converged: Mutex::new(HashMap::new()),
            instance_sgs: Mutex::new(HashMap::new()),
            tg_lookups: Coalescer::new(LOOKUP_WINDOW, 20),
            instance_lookups: Coalescer::new(LOOKUP_WINDOW, 100),
            rule_lookups: Coalescer::new(LOOKUP_WINDOW, tgaws::OWNERS_PER_CALL),
            failures: Mutex::new(HashMap::new()),
            ours: Mutex::new(HashMap::new()),
        }
    }

    fn owner(b: &TargetGroupBinding) -> String {
        format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any())
    }

    /// The target group, validated for this generation; described once per generation.
    async fn target_group(
        &self,
        b: &TargetGroupBinding,
    ) -> Result<Result<Validated, TargetGroupError>, Error> {
        let uid = b.uid().unwrap_or_default();
        let generation = b.meta().generation;
        if let Some(v) = self.lock_tgs().get(&uid)
            && v.generation == generation
        {
            return Ok(Ok(v.clone()));
        }
        let arn = b.spec.target_group_arn.as_deref().filter(|a| !a.is_empty());
        let name = b
            .spec
            .target_group_name
            .as_deref()
            .filter(|n| !n.is_empty());
        let (found, label) = match (arn, name) {
            (Some(a), _) => (
                self.tg_lookups
                    .get(a.to_string(), |arns| self.aws.describe_target_groups(arns))
                    .await,
                a,
            ),
            (None, Some(n)) => (self.aws.describe_target_group_named(n).await, n),
            (None, None) => return Ok(Err(TargetGroupError::NotFound("<unset>".into()))),
        };
        let Some(info) = found.map_err(Error::TargetGroup)? else {
            return Ok(Err(TargetGroupError::NotFound(label.to_string())));
        };
        let target_type = match validate_target_group(
            &info,
            b.spec.target_type,
            b.spec.vpc_id.as_deref(),
            self.settings.vpc_id.as_deref(),
        ) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let v = Validated {
            generation,
            info,
            target_type,
            deregistration_delay: None,
        };
        self.lock_tgs().insert(uid, v.clone());
        Ok(Ok(v))
    }

    /// The target group's deregistration delay, read once per validation.
    async fn deregistration_delay(
        &self,
        b: &TargetGroupBinding,
        v: &Validated,
    ) -> Result<u64, Error> {
        if let Some(d) = v.deregistration_delay {
            return Ok(d);
        }
        let d = self
            .aws
            .deregistration_delay(&v.info.arn)
            .await
            .map_err(Error::TargetGroup)?;
        if let Some(e) = self.lock_tgs().get_mut(&b.uid().unwrap_or_default())
            && e.info.arn == v.info.arn
        {
            e.deregistration_delay = Some(d);
        }
        Ok(d)
    }

    /// Observe: the target group's targets, from the kept view when [`view_reusable`], else
    /// read. The view is taken out: a reconcile that fails after this point leaves none, and
    /// the next one reads. Returns the pending poll of the view it replaces.
    async fn observe(
        &self,
        b: &TargetGroupBinding,
        arn: &str,
    ) -> Result<(Observed, Option<Instant>), Error> {
        let uid = b.uid().unwrap_or_default();
        let kept = self.lock_converged().remove(&uid);
        let poll_at = kept.as_ref().and_then(|c| c.poll_at);
        if let Some(c) = kept
            && view_reusable(&c, arn, self.view_ttl(), Instant::now())
        {
            return Ok((c.observed, poll_at));
        }
        let observed = self
            .aws
            .describe_target_health(arn)
            .await
            .map_err(Error::Observe)?;
        Ok((observed, poll_at))
    }

    /// How long a kept view stands in for a read: under the resync, which rechecks it.
    fn view_ttl(&self) -> Duration {
        self.settings.resync * 8 / 10
    }

    fn lock_converged(&self) -> std::sync::MutexGuard<'_, HashMap<String, Converged>> {
        self.converged.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_tgs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Validated>> {
        self.target_groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pods behind not-ready endpoints that wait only for this binding's readiness gate:
    /// looked up by the endpoint's targetRef, so no Pod cache is needed.
    async fn gated_pods(
        &self,
        ns: &str,
        gate: &str,
        slices: &[Arc<EndpointSlice>],
    ) -> Result<HashSet<String>, Error> {
        let mut out = HashSet::new();
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        for s in slices {
            for ep in s.endpoints.iter().flatten() {
                let c = ep.conditions.as_ref();
                if c.and_then(|c| c.ready).unwrap_or(true)
                    || c.and_then(|c| c.terminating).unwrap_or(false)
                {
                    continue;
                }
                let Some(name) = ep.target_ref.as_ref().and_then(|r| r.name.as_deref()) else {
                    continue;
                };
                let Some(pod) = pods.get_opt(name).await.map_err(Error::Pods)? else {
                    continue;
                };
                if pod_waits_only_for_gate(&pod, gate) {
                    out.insert(name.to_string());
                }
            }
        }
        Ok(out)
    }

    /// fetch → desired (pure) → observe → plan (pure) → apply → status.
    async fn apply(&self, b: Arc<TargetGroupBinding>) -> Result<Next, Error> {
        let api: Api<TargetGroupBinding> =
            Api::namespaced(self.ctx.client.clone(), &b.namespace().unwrap_or_default());
        let fetched = match self.fetch(&b).await? {
            Ok(f) => f,
            Err(invalid) => return self.invalid(&b, &api, invalid, &[]).await,
        };
        let desired = match desired_state(&b, &fetched) {
            Ok(d) => d,
            Err((invalid, nodes_without_provider_id)) => {
                return self
                    .invalid(&b, &api, invalid, &nodes_without_provider_id)
                    .await;
            }
        };
        let (mut observed, poll_pending) = self.observe(&b, &fetched.tg.info.arn).await?;
        let plan = self.plan(&b, &desired, &observed);
        self.apply_targets(&b, &fetched, &plan, &mut observed)
            .await?;
        self.sync_rules(
            &b,
            &fetched.tg,
            &desired,
            fetched.target_port_name.as_deref(),
        )
        .await?;
        let gates_pending = self.apply_gates(&b, &fetched, &desired, &observed).await?;
        let (outcome, healthy) = synced_outcome(&desired, &observed);
        self.write_status(&b, &api, &outcome, &desired.nodes_without_provider_id)
            .await?;
        self.lock_failures().remove(&b.uid().unwrap_or_default());

        let waiting = gates_pending > 0
            || healthy < desired.targets.len() as i32
            || !plan.deregister.is_empty();
        let poll = match waiting {
            false => None,
            true if gates_pending > 0 => Some(Duration::from_secs(2)),
            // Draining ends with the deregistration delay.
            true if !plan.deregister.is_empty() => {
                let delay = self.deregistration_delay(&b, &fetched.tg).await?;
                Some(Duration::from_secs(15).min(Duration::from_secs(delay.max(1))))
            }
            true => Some(Duration::from_secs(15)),
        };
        let now = Instant::now();
        let poll_at = next_poll(poll_pending, poll, now);
        self.lock_converged().insert(
            b.uid().unwrap_or_default(),
            Converged {
                arn: fetched.tg.info.arn.clone(),
                observed,
                at: now,
                poll_at,
            },
        );
        Ok(if !desired.nodes_without_provider_id.is_empty() {
            // A node may get its providerID from the cloud provider a little later.
            Next::After(self.backoff(&b))
        } else if let Some(at) = poll_at {
            // "Not ready yet": new targets turn healthy, draining ones go, within seconds.
            Next::After(at.saturating_duration_since(now))
        } else {
            // The runtime's resync looks again.
            Next::AwaitChange
        })
    }

    /// Fetch: the validated target group, the Service, its EndpointSlices, the Nodes and the
    /// Pods that wait for this binding's readiness gate. `Ok(Err(_))` is bad input.
    async fn fetch(&self, b: &TargetGroupBinding) -> Result<Result<Fetched, Invalid>, Error> {
        // An empty cache would look like "no endpoints" and deregister everything.
        let _ = tokio::join!(
            self.services.wait_until_ready(),
            self.slices.wait_until_ready(),
            self.nodes.wait_until_ready()
        );
        let ns = b.namespace().unwrap_or_default();
        let tg = match self.target_group(b).await? {
            Ok(v) => v,
            Err(e) => {
                let why = match e {
                    TargetGroupError::NotFound(_) => reason::TARGET_GROUP_NOT_FOUND,
                    TargetGroupError::ForeignVpc { .. } => reason::FOREIGN_VPC,
                    TargetGroupError::TargetTypeMismatch { .. } => reason::TARGET_TYPE_MISMATCH,
                    TargetGroupError::UnsupportedTargetType { .. } => {
                        reason::UNSUPPORTED_TARGET_TYPE
                    }
                };
                return Ok(Err(Invalid {
                    reason: why,
                    message: e.to_string(),
                }));
            }
        };
        let svc_name = &b.spec.service_ref.name;
        let service = self.services.get(&ObjectRef::new(svc_name).within(&ns));
        let slices: Vec<Arc<EndpointSlice>> = self
            .slices
            .state()
            .into_iter()
            .filter(|s| slice_service(s).is_some_and(|(sns, sn)| sns == ns && sn == *svc_name))
            .collect();
        let gated = if tg.target_type == TargetType::Ip {
            self.gated_pods(&ns, &readiness_gate(&b.name_any()), &slices)
                .await?
        } else {
            HashSet::new()
        };
        let target_port_name = service
            .as_deref()
            .and_then(|s| desired::find_service_port(s, &b.spec.service_ref.port))
            .and_then(|p| match &p.target_port {
                Some(IntOrString::String(n)) => Some(n.clone()),
                _ => None,
            });
        Ok(Ok(Fetched {
            tg,
            service,
            slices,
            nodes: self.nodes.state(),
            gated,
            target_port_name,
        }))
    }

    /// Plan: what to register and deregister. A multi-cluster target group is planned over
    /// the targets this process registered only.
    fn plan(
        &self,
        b: &TargetGroupBinding,
        desired: &Desired,
        observed: &Observed,
    ) -> plan::TargetPlan {
        if !b.spec.multi_cluster_target_group {
            return plan_targets(&desired.targets, observed);
        }
        let mut ours = self.ours.lock().unwrap_or_else(|e| e.into_inner());
        let mine = ours.entry(b.uid().unwrap_or_default()).or_default();
        mine.extend(desired.targets.iter().cloned());
        let visible: Observed = observed
            .iter()
            .filter(|(t, _)| mine.contains(*t))
            .map(|(t, s)| (t.clone(), *s))
            .collect();
        let plan = plan_targets(&desired.targets, &visible);
        for t in plan.deregister.iter().flatten() {
            mine.remove(t);
        }
        plan
    }

    /// Apply: deregister, then register, in batches; `observed` follows.
    async fn apply_targets(
        &self,
        b: &TargetGroupBinding,
        fetched: &Fetched,
        plan: &plan::TargetPlan,
        observed: &mut Observed,
    ) -> Result<(), Error> {
        let arn = &fetched.tg.info.arn;
        let key = Self::owner(b);
        for batch in &plan.deregister {
            self.aws
                .deregister(arn, batch)
                .await
                .map_err(Error::Register)?;
            info!(binding = %key, op = "DeregisterTargets", count = batch.len(), at_ms = epoch_ms() as u64, "targets call");
            for t in batch {
                observed.insert(t.clone(), TargetState::Draining);
            }
        }
        for batch in &plan.register {
            self.aws
                .register(arn, batch)
                .await
                .map_err(Error::Register)?;
            info!(binding = %key, op = "RegisterTargets", count = batch.len(), at_ms = epoch_ms() as u64, "targets call");
            for t in batch {
                observed.insert(t.clone(), TargetState::Initial);
            }
        }
        Ok(())
    }

    /// Apply: a gated pod's condition turns True once its target is healthy. Returns how many
    /// gated pods still wait.
    async fn apply_gates(
        &self,
        b: &TargetGroupBinding,
        fetched: &Fetched,
        desired: &Desired,
        observed: &Observed,
    ) -> Result<usize, Error> {
        let ns = b.namespace().unwrap_or_default();
        let gate = readiness_gate(&b.name_any());
        let mut pending = 0;
        for (target, pod) in &desired.pods {
            if !fetched.gated.contains(pod) {
                continue;
            }
            if observed.get(target) == Some(&TargetState::Healthy) {
                set_pod_gate(&self.ctx.client, &ns, pod, &gate)
                    .await
                    .map_err(Error::Gates)?;
            } else {
                pending += 1;
            }
        }
        Ok(pending)
    }

    /// Authorises the binding's networking rules on the targets' security groups and
    /// revokes the ones it owns and no longer wants. Skipped while nothing changed.
    async fn sync_rules(
        &self,
        b: &TargetGroupBinding,
        tg: &Validated,
        desired: &Desired,
        target_port_name: Option<&str>,
    ) -> Result<(), Error> {
        let uid = b.uid().unwrap_or_default();
        let has_rules = b
            .spec
            .networking
            .as_ref()
            .is_some_and(|n| !n.ingress.is_empty());
        let groups = if has_rules {
            self.security_groups(&desired.instance_ids)
                .await
                .map_err(Error::Rules)?
        } else {
            BTreeSet::new()
        };
        let want = desired_rules(
            b.spec.networking.as_ref(),
            tg.target_type,
            target_port_name,
            desired.port,
            &groups,
        )
        .map_err(Error::Networking)?;
        {
            let synced = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = synced.get(&uid)
                && s.rules == want
                // The resync comes back after 0.9 to 1.35 intervals: any of them rechecks.
                && s.at.elapsed() < self.settings.resync * 8 / 10
            {
                return Ok(());
            }
        }
        let owner = Self::owner(b);
        let cluster = &self.ctx.cluster_name;
        let owned = self.owned_rules(&owner).await.map_err(Error::Rules)?;
        let rp = plan_rules(&want, &owned);
        for rule in &rp.authorize {
            self.aws
                .authorize(cluster, &owner, rule)
                .await
                .map_err(Error::Rules)?;
        }
        revoke_all(&self.aws, &owner, &rp).await?;
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).insert(
            uid,
            RulesSynced {
                rules: want,
                at: Instant::now(),
            },
        );
        Ok(())
    }

    /// The rules tagged as `owner`'s, looked up with the owners of the reconciles around it.
    async fn owned_rules(&self, owner: &str) -> Result<Vec<plan::OwnedRule>, tgaws::AwsCallError> {
        let cluster = &self.ctx.cluster_name;
        let found = self
            .rule_lookups
            .get(owner.to_string(), |owners| async move {
                self.aws.owned_rules(cluster, &owners).await
            })
            .await?;
        Ok(found.unwrap_or_default())
    }

    /// Security groups of the given instances; each instance is described once.
    async fn security_groups(
        &self,
        ids: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, tgaws::AwsCallError> {
        let missing: Vec<String> = {
            let cache = self.instance_sgs.lock().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .filter(|i| !cache.contains_key(*i))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let lookups = missing.into_iter().map(|id| async move {
                let groups = self
                    .instance_lookups
                    .get(id.clone(), |ids| async move {
                        let found = self.aws.instance_security_groups(&ids).await?;
                        Ok(found.into_iter().collect())
                    })
                    .await?;
                Ok::<_, tgaws::AwsCallError>(groups.map(|g| (id, g)))
            });
            let found = futures::future::try_join_all(lookups).await?;
            self.instance_sgs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(found.into_iter().flatten());
        }
        let cache = self.instance_sgs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ids
            .iter()
            .filter_map(|i| cache.get(i))
            .flatten()
            .cloned()
            .collect())
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Exponential backoff per binding for bad input: 5 s doubling to 5 min, with jitter.
    fn backoff(&self, b: &TargetGroupBinding) -> Duration {
        let mut f = self.lock_failures();
        let n = f.entry(b.uid().unwrap_or_default()).or_insert(0);
        *n = (*n + 1).min(16);
        let secs = (5u64 << (*n - 1).min(6)).min(300);
        jitter(Duration::from_secs(secs))
    }

    /// Bad input: a condition and (once) an Event. A missing target group may still be
    /// created in AWS, which no watch shows, so that one is looked at again with backoff; the
    /// rest waits for a change to the binding, its Service, EndpointSlices or Nodes.
    async fn invalid(
        &self,
        b: &TargetGroupBinding,
        api: &Api<TargetGroupBinding>,
        invalid: Invalid,
        nodes_without_provider_id: &[String],
    ) -> Result<Next, Error> {
        let Invalid {
            reason: why,
            message,
        } = invalid;
        warn!(binding = %Self::owner(b), reason = why, %message, "binding cannot be reconciled");
        let outcome = Outcome::Invalid {
            reason: why,
            message: message.clone(),
        };
        if self
            .write_status(b, api, &outcome, nodes_without_provider_id)
            .await?
        {
            self.ctx.events.warn(&b.object_ref(&()), why, message).await;
        }
        Ok(if why == reason::TARGET_GROUP_NOT_FOUND {
            Next::After(self.backoff(b))
        } else {
            Next::AwaitChange
        })
    }

    /// Writes status when it changed; returns whether it did.
    async fn write_status(
        &self,
        b: &TargetGroupBinding,
        api: &Api<TargetGroupBinding>,
        outcome: &Outcome,
        nodes_without_provider_id: &[String],
    ) -> Result<bool, Error> {
        let before = b
            .status
            .as_ref()
            .and_then(|s| {
                crate::k8s::conditions::find(
                    &s.conditions,
                    crate::k8s::conditions::condition_type::DEGRADED,
                )
            })
            .is_some();
        let (status, changed) = desired_status(
            b.status.as_ref(),
            b.meta().generation,
            outcome,
            nodes_without_provider_id,
            &SystemClock,
        );
        if changed {
            crate::k8s::apply::apply_status(api, &b.name_any(), &status)
                .await
                .map_err(Error::Status)?;
            if !before && !nodes_without_provider_id.is_empty() {
                self.ctx
                    .events
                    .warn(
                        &b.object_ref(&()),
                        reason::NODE_WITHOUT_PROVIDER_ID,
                        format!(
                            "not registered, no aws:/// providerID: {}",
                            nodes_without_provider_id.join(", ")
                        ),
                    )
                    .await;
            }
        }
        Ok(changed)
    }

    /// Whether the binding's namespace is being deleted (a failed read says no).
    async fn namespace_terminating(&self, b: &TargetGroupBinding) -> bool {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.ctx.client.clone());
        match api.get_opt(&b.namespace().unwrap_or_default()).await {
            Ok(Some(ns)) => ns.metadata.deletion_timestamp.is_some(),
            Ok(None) | Err(_) => false,
        }
    }

    /// Deletion: deregister every target, then let go of the security group rules this
    /// binding added. A rule other bindings still own only loses this binding's key, which
    /// changes no traffic, so that happens at once; a rule this binding is the last owner of
    /// is revoked once draining is over (bounded by the deregistration delay). A target group
    /// deleted already has no targets left to drain, and a namespace being deleted takes its
    /// pods with it: neither waits for draining.
    async fn cleanup(&self, b: &TargetGroupBinding) -> Result<(), Error> {
        let uid = b.uid().unwrap_or_default();
        self.lock_converged().remove(&uid);
        // The target group was validated before; the deletion's own generation bump does
        // not make it another one.
        let cached = self.lock_tgs().get(&uid).cloned();
        let tg = match cached {
            Some(v) => Some(v),
            // Never registered anything there (missing, foreign or mismatched): nothing to undo.
            None => self.target_group(b).await?.ok(),
        };
        let mut gone = tg.is_none();
        if let Some(v) = &tg
            && let Some(mut observed) =
                gone_is_empty(self.aws.describe_target_health(&v.info.arn).await)
                    .map_err(Error::Observe)?
        {
            if b.spec.multi_cluster_target_group {
                let ours = self.ours.lock().unwrap_or_else(|e| e.into_inner());
                let mine = ours.get(&uid).cloned().unwrap_or_default();
                observed.retain(|t, _| mine.contains(t));
            }
            let plan = plan_targets(&BTreeSet::new(), &observed);
            for batch in &plan.deregister {
                match self.aws.deregister(&v.info.arn, batch).await {
                    Ok(()) => {}
                    Err(e) if e.not_found() => {
                        gone = true;
                        break;
                    }
                    Err(e) => return Err(Error::Register(e)),
                }
                info!(binding = %Self::owner(b), op = "DeregisterTargets", count = batch.len(), at_ms = epoch_ms() as u64, "targets call");
            }
        } else {
            gone = true;
        }
        let owner = Self::owner(b);
        let owned = self.owned_rules(&owner).await.map_err(Error::Rules)?;
        let rp = plan_rules(&BTreeSet::new(), &owned);
        if !rp.revoke.is_empty()
            && !gone
            && let Some(v) = &tg
        {
            let draining = self.draining(b, v).await?;
            if draining > 0 {
                // Keys of shared rules go now; the revocations wait.
                let release = RulePlan {
                    release: rp.release.clone(),
                    ..RulePlan::default()
                };
                revoke_all(&self.aws, &owner, &release).await?;
                return Err(Error::Draining(draining));
            }
        }
        revoke_all(&self.aws, &owner, &rp).await?;
        self.lock_tgs().remove(&uid);
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uid);
        self.lock_failures().remove(&uid);
        self.ours
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uid);
        Ok(())
    }

    /// Targets still draining after a deletion's deregistration, unless the deregistration
    /// delay is over or the namespace goes (its pods with it).
    async fn draining(&self, b: &TargetGroupBinding, v: &Validated) -> Result<usize, Error> {
        let delay = self.deregistration_delay(b, v).await?;
        let deleting_for = b
            .meta()
            .deletion_timestamp
            .as_ref()
            .map(|t| {
                k8s_openapi::jiff::Timestamp::now()
                    .duration_since(t.0)
                    .as_secs()
            })
            .unwrap_or(0);
        if deleting_for >= delay as i64 || self.namespace_terminating(b).await {
            return Ok(0);
        }
        let now = gone_is_empty(self.aws.describe_target_health(&v.info.arn).await)
            .map_err(Error::Observe)?;
        Ok(now
            .map(|o| o.values().filter(|s| **s == TargetState::Draining).count())
            .unwrap_or(0))
    }
}

/// Lets go of the rules the plan no longer wants: revoked when only this binding needs
/// them, its owner tag dropped when others still do.
async fn revoke_all(aws: &impl TargetsApi, owner: &str, plan: &RulePlan) -> Result<(), Error> {
    let mut by_group: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (g, r) in &plan.revoke {
        by_group.entry(g).or_default().push(r.clone());
    }
    for (g, ids) in by_group {
        aws.revoke(g, &ids).await.map_err(Error::Rules)?;
    }
    if !plan.release.is_empty() {
        aws.release(owner, &plan.release)
            .await
            .map_err(Error::Rules)?;
    }
    Ok(())
}

/// True when the pod carries `gate`, its containers are ready, and the gate is not True
/// yet: it is not Ready only because it waits for its target to be healthy.
pub fn pod_waits_only_for_gate(pod: &Pod, gate: &str) -> bool {
    let has_gate = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|gs| gs.iter().any(|g| g.condition_type == gate));
    let conds = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    let cond = |t: &str| {
        conds
            .and_then(|cs| cs.iter().find(|c| c.type_ == t))
            .map(|c| c.status.as_str())
    };
    has_gate && cond("ContainersReady") == Some("True") && cond(gate) != Some("True")
}

/// Sets the readiness-gate condition True on the pod's status (server-side apply).
async fn set_pod_gate(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    gate: &str,
) -> Result<(), kube::Error> {
    debug_assert!(gate.starts_with(READINESS_GATE_PREFIX));
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let body = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod},
        "status": {"conditions": [{
            "type": gate,
            "status": "True",
            "reason": "TargetHealthy",
            "message": "the load balancer reports the target healthy",
            "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
        }]}
    });
    match pods
        .patch_status(
            pod,
            &crate::k8s::apply::apply_params(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

impl<A: TargetsApi> runtime::Reconciler for Reconciler<A> {
    type Error = Error;
    const NAME: &'static str = CONTROLLER;

    /// The finalizer is the only top-level action: a binding being deleted is cleaned up
    /// (targets deregistered, rules revoked) before the finalizer goes; otherwise it is added
    /// before anything is registered.
    async fn reconcile(&self, key: &str) -> Result<Next, Error> {
        let Some(b) = cache::get(&self.bindings, key) else {
            return Ok(Next::AwaitChange);
        };
        let api: Api<TargetGroupBinding> =
            Api::namespaced(self.ctx.client.clone(), &b.namespace().unwrap_or_default());
        let finalizer_err =
            |e: crate::k8s::finalizer::FinalizerError| Error::Finalizer(e.to_string());
        if b.meta().deletion_timestamp.is_some() {
            if has_finalizer(b.as_ref(), TARGETS_FINALIZER) {
                self.cleanup(&b).await?;
                // An adopted binding also carries the peer's finalizer; what it guards is
                // what the cleanup just did.
                remove_finalizers(&api, b.as_ref(), |f| {
                    f == TARGETS_FINALIZER || f == LBC_TGB_FINALIZER
                })
                .await
                .map_err(finalizer_err)?;
            }
            return Ok(Next::AwaitChange);
        }
        if !has_finalizer(b.as_ref(), TARGETS_FINALIZER) {
            add_finalizer(&api, b.as_ref(), TARGETS_FINALIZER)
                .await
                .map_err(finalizer_err)?;
        }
        self.apply(b).await
    }

    fn keys(&self) -> Vec<String> {
        self.bindings
            .state()
            .iter()
            .map(|b| key_of(b.as_ref()))
            .collect()
    }
}

fn api_for<K>(client: &kube::Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the reconciler until `stop` flips. One queue of binding keys: the bindings
/// themselves, plus the bindings each Service, EndpointSlice or Node change affects, looked
/// up in the index by Service.
pub async fn run(ctx: Arc<Context>, settings: TargetsSettings, stop: watch::Receiver<bool>) {
    let client = ctx.client.clone();
    let ns = settings.namespace.clone();
    let index = Arc::new(ServiceIndex::default());
    let queue = Arc::new(WorkQueue::new(Backoff {
        initial: Duration::from_secs(2),
        max: Duration::from_secs(60),
    }));
    let wc = watcher::Config::default;

    let bindings = {
        let (index, queue) = (index.clone(), queue.clone());
        reflect(
            api_for::<TargetGroupBinding>(&client, ns.as_deref()),
            wc(),
            keep_all,
            move |c: Change<'_, TargetGroupBinding>| match &c {
                Change::Deleted(b) => {
                    index.remove(b);
                    queue.forget(&key_of(*b));
                }
                Change::Listed(b) => index.upsert(b),
                Change::Applied(b) => {
                    index.upsert(b);
                    queue.add(key_of(*b));
                }
                // The store holds the (re)listed bindings only now.
                Change::Synced(store) => {
                    let all = store.state();
                    index.rebuild(all.iter().map(|b| b.as_ref()));
                    for b in &all {
                        queue.add(key_of(b.as_ref()));
                    }
                }
            },
            stop.clone(),
        )
    };
    let services = {
        let (index, queue) = (index.clone(), queue.clone());
        reflect(
            api_for::<Service>(&client, ns.as_deref()),
            wc(),
            watched::targets_service,
            move |c: Change<'_, Service>| {
                let refs = match &c {
                    Change::Synced(_) => index.all(),
                    Change::Applied(s) | Change::Deleted(s) => {
                        index.for_service(&s.namespace().unwrap_or_default(), &s.name_any())
                    }
                    Change::Listed(_) => Vec::new(),
                };
                for b in refs {
                    queue.add(key_of_ref(&b));
                }
            },
            stop.clone(),
        )
    };
    let slices = {
        let (index, queue) = (index.clone(), queue.clone());
        reflect(
            api_for::<EndpointSlice>(&client, ns.as_deref()),
            wc().labels(SERVICE_NAME_LABEL),
            watched::targets_slice,
            move |c: Change<'_, EndpointSlice>| {
                let refs = match &c {
                    Change::Synced(_) => index.all(),
                    Change::Applied(s) | Change::Deleted(s) => slice_service(s)
                        .map(|(ns, name)| index.for_service(&ns, &name))
                        .unwrap_or_default(),
                    Change::Listed(_) => Vec::new(),
                };
                for b in refs {
                    queue.add(key_of_ref(&b));
                }
            },
            stop.clone(),
        )
    };
    let nodes = {
        let (index, queue) = (index.clone(), queue.clone());
        let filter = NodeFilter::default();
        reflect(
            Api::<Node>::all(client.clone()),
            wc(),
            watched::targets_node,
            move |c: Change<'_, Node>| {
                let changed = match &c {
                    Change::Synced(_) => true,
                    // The filter learns listed nodes; the Synced that follows triggers.
                    Change::Listed(n) => {
                        filter.changed(n);
                        false
                    }
                    Change::Applied(n) | Change::Deleted(n) => filter.changed(n),
                };
                if changed {
                    for b in index.instance_bindings() {
                        queue.add(key_of_ref(&b));
                    }
                }
            },
            stop.clone(),
        )
    };

    let mut stopped = stop.clone();
    tokio::select! {
        _ = bindings.wait_until_ready() => {}
        _ = stopped.wait_for(|s| *s) => return,
    }
    info!(resync = ?settings.resync, namespace = ns.as_deref().unwrap_or("<all>"), "starting TargetGroupBinding reconciler");
    let metrics = ctx.metrics.clone();
    let resync = settings.resync;
    let aws = ctx.aws.clone();
    let r = Arc::new(Reconciler::new(
        ctx,
        aws,
        settings,
        Stores {
            bindings,
            services,
            slices,
            nodes,
        },
    ));
    runtime::run(
        r,
        queue,
        RunSettings {
            workers: 16,
            resync,
        },
        metrics,
        stop,
    )
    .await;
}

#[cfg(test)]
mod tests;

/// A target health read of a target group that no longer exists: `None`, nothing to undo.
fn gone_is_empty(
    r: Result<Observed, tgaws::AwsCallError>,
) -> Result<Option<Observed>, tgaws::AwsCallError> {
    match r {
        Ok(o) => Ok(Some(o)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
