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

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};

use super::aws::{self as tgaws, TargetGroupRef};
use super::desired::{self, Desired, DesiredError, Inputs};
use super::plan::{
    self, Observed, TargetGroupError, TargetGroupInfo, TargetState, desired_rules, plan_rules,
    plan_targets, validate_target_group,
};
use super::status::{Outcome, desired_status, reason};
use super::watch::{
    NodeFilter, ServiceIndex, prune_node, prune_service, prune_slice, slice_service,
};
use super::{READINESS_GATE_PREFIX, readiness_gate};
use crate::cli::TargetsArgs;
use crate::controller::Context;
use crate::crd::TargetGroupBinding;
use crate::crd::target_group_binding::{TargetGroupIpAddressType, TargetType};
use crate::k8s::conditions::SystemClock;
use crate::k8s::events::EventRecorder;
use crate::k8s::finalizer::{FinalizerEvent, TARGETS_FINALIZER, finalizer};

pub const CONTROLLER: &str = "target-group-binding";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Aws(#[from] tgaws::AwsCallError),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("writing status: {0}")]
    Status(#[from] crate::k8s::apply::ApplyError),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("waiting for {0} draining targets before removing security group rules")]
    Draining(usize),
}

/// A target group checked for one generation of a binding.
#[derive(Clone, Debug)]
struct Validated {
    generation: Option<i64>,
    info: TargetGroupInfo,
    target_type: TargetType,
    deregistration_delay: u64,
}

/// Security group rules last found in sync for a binding, and when.
struct RulesSynced {
    rules: BTreeSet<plan::IngressRule>,
    at: Instant,
}

pub struct Reconciler {
    ctx: Arc<Context>,
    args: TargetsArgs,
    events: EventRecorder,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    target_groups: Mutex<HashMap<String, Validated>>,
    rules: Mutex<HashMap<String, RulesSynced>>,
    instance_sgs: Mutex<HashMap<String, Vec<String>>>,
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

impl Reconciler {
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
        let (r, label) = match (arn, name) {
            (Some(a), _) => (TargetGroupRef::Arn(a), a),
            (None, Some(n)) => (TargetGroupRef::Name(n), n),
            (None, None) => return Ok(Err(TargetGroupError::NotFound("<unset>".into()))),
        };
        let Some(info) = tgaws::describe_target_group(&self.ctx.aws, r).await? else {
            return Ok(Err(TargetGroupError::NotFound(label.to_string())));
        };
        let target_type = match validate_target_group(
            &info,
            b.spec.target_type,
            b.spec.vpc_id.as_deref(),
            self.args.vpc_id.as_deref().filter(|v| !v.is_empty()),
        ) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let deregistration_delay = tgaws::deregistration_delay(&self.ctx.aws, &info.arn).await?;
        let v = Validated {
            generation,
            info,
            target_type,
            deregistration_delay,
        };
        self.lock_tgs().insert(uid, v.clone());
        Ok(Ok(v))
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
                let Some(pod) = pods.get_opt(name).await? else {
                    continue;
                };
                if pod_waits_only_for_gate(&pod, gate) {
                    out.insert(name.to_string());
                }
            }
        }
        Ok(out)
    }

    async fn apply(&self, b: Arc<TargetGroupBinding>) -> Result<Action, Error> {
        // An empty cache would look like "no endpoints" and deregister everything.
        let _ = tokio::join!(
            self.services.wait_until_ready(),
            self.slices.wait_until_ready(),
            self.nodes.wait_until_ready()
        );
        let ns = b.namespace().unwrap_or_default();
        let api: Api<TargetGroupBinding> = Api::namespaced(self.ctx.client.clone(), &ns);
        let tg = match self.target_group(&b).await? {
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
                return self.invalid(&b, &api, why, e.to_string(), &[]).await;
            }
        };
        let svc_name = b.spec.service_ref.name.clone();
        let service = self.services.get(&ObjectRef::new(&svc_name).within(&ns));
        let slices: Vec<Arc<EndpointSlice>> = self
            .slices
            .state()
            .into_iter()
            .filter(|s| slice_service(s).is_some_and(|(sns, sn)| sns == ns && sn == svc_name))
            .collect();
        let nodes = self.nodes.state();
        let gate = readiness_gate(&b.name_any());
        let gated = if tg.target_type == TargetType::Ip {
            self.gated_pods(&ns, &gate, &slices).await?
        } else {
            HashSet::new()
        };
        let ip_family = match tg.info.ip_address_type.as_deref() {
            Some("ipv6") => TargetGroupIpAddressType::Ipv6,
            _ => b
                .spec
                .ip_address_type
                .unwrap_or(TargetGroupIpAddressType::Ipv4),
        };
        let inputs = Inputs {
            target_type: tg.target_type,
            ip_family,
            service_name: &svc_name,
            service_port: &b.spec.service_ref.port,
            node_selector: b.spec.node_selector.as_ref(),
            gated_pods: &gated,
        };
        let desired = match desired::desired_targets(
            &inputs,
            service.as_deref(),
            slices.iter().map(|s| s.as_ref()),
            &nodes,
        ) {
            Ok(d) => d,
            Err(e) => {
                let why = match e {
                    DesiredError::ServiceNotFound(_) => reason::SERVICE_NOT_FOUND,
                    DesiredError::PortNotFound { .. } => reason::PORT_NOT_FOUND,
                    DesiredError::NoNodePort { .. } => reason::NO_NODE_PORT,
                    DesiredError::InvalidNodeSelector(_) => reason::INVALID_NODE_SELECTOR,
                };
                return self.invalid(&b, &api, why, e.to_string(), &[]).await;
            }
        };
        // Validate networking before touching AWS, so a bad port changes nothing.
        let target_port_name = service
            .as_deref()
            .and_then(|s| desired::find_service_port(s, &b.spec.service_ref.port))
            .and_then(|p| match &p.target_port {
                Some(IntOrString::String(n)) => Some(n.clone()),
                _ => None,
            });
        if let Err(e) = desired_rules(
            b.spec.networking.as_ref(),
            tg.target_type,
            target_port_name.as_deref(),
            desired.port,
            &BTreeSet::new(),
        ) {
            return self
                .invalid(
                    &b,
                    &api,
                    reason::INVALID_NETWORKING,
                    e.to_string(),
                    &desired.nodes_without_provider_id,
                )
                .await;
        }

        let arn = tg.info.arn.clone();
        let mut observed = tgaws::describe_target_health(&self.ctx.aws, &arn).await?;
        let plan = if b.spec.multi_cluster_target_group {
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
        } else {
            plan_targets(&desired.targets, &observed)
        };
        let key = Self::owner(&b);
        for batch in &plan.deregister {
            tgaws::deregister(&self.ctx.aws, &arn, batch).await?;
            info!(binding = %key, op = "DeregisterTargets", count = batch.len(), at_ms = epoch_ms() as u64, "targets call");
            for t in batch {
                observed.insert(t.clone(), TargetState::Draining);
            }
        }
        for batch in &plan.register {
            tgaws::register(&self.ctx.aws, &arn, batch).await?;
            info!(binding = %key, op = "RegisterTargets", count = batch.len(), at_ms = epoch_ms() as u64, "targets call");
            for t in batch {
                observed.insert(t.clone(), TargetState::Initial);
            }
        }

        self.sync_rules(&b, &tg, &desired, target_port_name.as_deref())
            .await?;

        // Readiness gates: a gated pod's condition turns True once its target is healthy.
        let mut gates_pending = 0;
        for (target, pod) in &desired.pods {
            if !gated.contains(pod) {
                continue;
            }
            if observed.get(target) == Some(&TargetState::Healthy) {
                set_pod_gate(&self.ctx.client, &ns, pod, &gate).await?;
            } else {
                gates_pending += 1;
            }
        }

        let registered = observed
            .values()
            .filter(|s| **s != TargetState::Draining && **s != TargetState::Unused)
            .count() as i32;
        let healthy = observed
            .iter()
            .filter(|(t, s)| **s == TargetState::Healthy && desired.targets.contains(*t))
            .count() as i32;
        let outcome = Outcome::Synced {
            registered,
            healthy,
        };
        self.write_status(&b, &api, &outcome, &desired.nodes_without_provider_id)
            .await?;
        self.lock_failures().remove(&b.uid().unwrap_or_default());

        let waiting = gates_pending > 0
            || healthy < desired.targets.len() as i32
            || !plan.deregister.is_empty();
        Ok(if !desired.nodes_without_provider_id.is_empty() {
            // A node may get its providerID from the cloud provider a little later.
            Action::requeue(self.backoff(&b))
        } else if waiting {
            // "Not ready yet": new targets turn healthy, draining ones go, within seconds.
            Action::requeue(if gates_pending > 0 {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(15).min(Duration::from_secs(tg.deregistration_delay.max(1)))
            })
        } else {
            Action::requeue(jitter(self.args.resync))
        })
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
            self.security_groups(&desired.instance_ids).await?
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
        .unwrap_or_default();
        {
            let synced = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = synced.get(&uid)
                && s.rules == want
                && s.at.elapsed() < self.args.resync
            {
                return Ok(());
            }
        }
        let owner = Self::owner(b);
        let cluster = &self.ctx.cluster_name;
        let owned = tgaws::owned_rules(&self.ctx.aws, cluster, &owner, &BTreeSet::new()).await?;
        let rp = plan_rules(&want, &owned);
        for rule in &rp.authorize {
            tgaws::authorize(&self.ctx.aws, cluster, &owner, rule).await?;
        }
        revoke_all(&self.ctx, &rp.revoke).await?;
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).insert(
            uid,
            RulesSynced {
                rules: want,
                at: Instant::now(),
            },
        );
        Ok(())
    }

    /// Security groups of the given instances; each instance is described once.
    async fn security_groups(&self, ids: &BTreeSet<String>) -> Result<BTreeSet<String>, Error> {
        let missing: Vec<String> = {
            let cache = self.instance_sgs.lock().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .filter(|i| !cache.contains_key(*i))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let found = tgaws::instance_security_groups(&self.ctx.aws, &missing).await?;
            self.instance_sgs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(found);
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

    async fn invalid(
        &self,
        b: &TargetGroupBinding,
        api: &Api<TargetGroupBinding>,
        why: &'static str,
        message: String,
        nodes_without_provider_id: &[String],
    ) -> Result<Action, Error> {
        warn!(binding = %Self::owner(b), reason = why, %message, "binding cannot be reconciled");
        let outcome = Outcome::Invalid {
            reason: why,
            message: message.clone(),
        };
        if self
            .write_status(b, api, &outcome, nodes_without_provider_id)
            .await?
        {
            self.events.warn(&b.object_ref(&()), why, message).await;
        }
        Ok(Action::requeue(self.backoff(b)))
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
            crate::k8s::apply::apply_status(api, &b.name_any(), &status).await?;
            if !before && !nodes_without_provider_id.is_empty() {
                self.events
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

    /// Deletion: deregister every target, then (once draining is over, bounded by the
    /// deregistration delay) remove the security group rules this binding added.
    async fn cleanup(&self, b: Arc<TargetGroupBinding>) -> Result<Action, Error> {
        let uid = b.uid().unwrap_or_default();
        let arn = match self.target_group(&b).await? {
            Ok(v) => Some((v.info.arn, v.deregistration_delay)),
            // Never registered anything there (missing, foreign or mismatched): nothing to undo.
            Err(_) => None,
        };
        let mut draining = 0;
        if let Some((arn, delay)) = &arn {
            let mut observed: Observed = tgaws::describe_target_health(&self.ctx.aws, arn).await?;
            if b.spec.multi_cluster_target_group {
                let ours = self.ours.lock().unwrap_or_else(|e| e.into_inner());
                let mine = ours.get(&uid).cloned().unwrap_or_default();
                observed.retain(|t, _| mine.contains(t));
            }
            let plan = plan_targets(&BTreeSet::new(), &observed);
            for batch in &plan.deregister {
                tgaws::deregister(&self.ctx.aws, arn, batch).await?;
                info!(binding = %Self::owner(&b), op = "DeregisterTargets", count = batch.len(), at_ms = epoch_ms() as u64, "targets call");
            }
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
            if deleting_for < *delay as i64 {
                let now = tgaws::describe_target_health(&self.ctx.aws, arn).await?;
                draining = now
                    .values()
                    .filter(|s| **s == TargetState::Draining)
                    .count();
            }
        }
        let owner = Self::owner(&b);
        let owned = tgaws::owned_rules(
            &self.ctx.aws,
            &self.ctx.cluster_name,
            &owner,
            &BTreeSet::new(),
        )
        .await?;
        if !owned.is_empty() && draining > 0 {
            return Err(Error::Draining(draining));
        }
        let rp = plan_rules(&BTreeSet::new(), &owned);
        revoke_all(&self.ctx, &rp.revoke).await?;
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
        Ok(Action::await_change())
    }
}

async fn revoke_all(ctx: &Context, revoke: &[(String, String)]) -> Result<(), Error> {
    let mut by_group: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (g, r) in revoke {
        by_group.entry(g).or_default().push(r.clone());
    }
    for (g, ids) in by_group {
        tgaws::revoke(&ctx.aws, g, &ids).await?;
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
async fn set_pod_gate(client: &kube::Client, ns: &str, pod: &str, gate: &str) -> Result<(), Error> {
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
        Err(e) => Err(e.into()),
    }
}

async fn reconcile(b: Arc<TargetGroupBinding>, r: Arc<Reconciler>) -> Result<Action, Error> {
    let _timer = r.ctx.metrics.reconcile_started(CONTROLLER);
    let ns = b.namespace().unwrap_or_default();
    let api: Api<TargetGroupBinding> = Api::namespaced(r.ctx.client.clone(), &ns);
    finalizer(&api, TARGETS_FINALIZER, b, |event| async {
        match event {
            FinalizerEvent::Apply(b) => r.apply(b).await,
            FinalizerEvent::Cleanup(b) => r.cleanup(b).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

fn error_policy(b: Arc<TargetGroupBinding>, err: &Error, r: Arc<Reconciler>) -> Action {
    let label = match err {
        Error::Aws(_) => "aws",
        Error::Kube(_) | Error::Status(_) | Error::Finalizer(_) => "kubernetes",
        Error::Draining(_) => "draining",
    };
    r.ctx.metrics.reconcile_error(CONTROLLER, label);
    if let Error::Draining(_) = err {
        return Action::requeue(Duration::from_secs(5));
    }
    warn!(binding = %Reconciler::owner(&b), error = %err, "reconcile failed; retrying");
    // Transient: back off with jitter.
    Action::requeue(Duration::from_millis(2_000 + rand::random::<u64>() % 3_000))
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

/// Runs the reconciler until `stop` flips.
pub async fn run(ctx: Arc<Context>, args: TargetsArgs, stop: watch::Receiver<bool>) {
    let client = ctx.client.clone();
    let ns = args.namespace.clone().filter(|n| !n.is_empty());
    let index = Arc::new(ServiceIndex::default());
    let wc = || watcher::Config::default().any_semantic();

    let (bindings, bw) = reflector::store::<TargetGroupBinding>();
    let binding_stream = {
        let index = index.clone();
        watcher(api_for::<TargetGroupBinding>(&client, ns.as_deref()), wc())
            .default_backoff()
            .modify(|b| b.managed_fields_mut().clear())
            .reflect(bw)
            .inspect_ok(move |ev| match ev {
                watcher::Event::Apply(b) | watcher::Event::InitApply(b) => index.upsert(b),
                watcher::Event::Delete(b) => index.remove(b),
                _ => {}
            })
            .touched_objects()
    };

    let (services, sw) = reflector::store::<Service>();
    let service_stream = watcher(api_for::<Service>(&client, ns.as_deref()), wc())
        .default_backoff()
        .modify(prune_service)
        .reflect(sw)
        .touched_objects();

    let (slices, slw) = reflector::store::<EndpointSlice>();
    let slice_stream = watcher(
        api_for::<EndpointSlice>(&client, ns.as_deref()),
        wc().labels(desired::SERVICE_NAME_LABEL),
    )
    .default_backoff()
    .modify(prune_slice)
    .reflect(slw)
    .touched_objects();

    let (nodes, nw) = reflector::store::<Node>();
    let node_filter = Arc::new(NodeFilter::default());
    let node_stream = watcher(Api::<Node>::all(client.clone()), wc())
        .default_backoff()
        .modify(prune_node)
        .reflect(nw)
        .touched_objects()
        .try_filter(move |n| futures::future::ready(node_filter.changed(n)));

    let events = EventRecorder::new(client.clone(), EventRecorder::reporter(None));
    let resync = args.resync;
    let r = Arc::new(Reconciler {
        ctx,
        args,
        events,
        services: services.clone(),
        slices: slices.clone(),
        nodes: nodes.clone(),
        target_groups: Mutex::new(HashMap::new()),
        rules: Mutex::new(HashMap::new()),
        instance_sgs: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
        ours: Mutex::new(HashMap::new()),
    });
    info!(resync = ?resync, namespace = ns.as_deref().unwrap_or("<all>"), "starting TargetGroupBinding reconciler");

    // One queue of binding references: the bindings themselves, plus the bindings each
    // Service, EndpointSlice or Node change affects, looked up in the index.
    let (i1, i2, i3) = (index.clone(), index.clone(), index.clone());
    type Refs =
        futures::stream::BoxStream<'static, Result<ObjectRef<TargetGroupBinding>, watcher::Error>>;
    let expand = |s: futures::stream::BoxStream<
        'static,
        Result<Vec<ObjectRef<TargetGroupBinding>>, watcher::Error>,
    >|
     -> Refs {
        s.map_ok(|refs| futures::stream::iter(refs.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    };
    let queue = futures::stream::select_all(vec![
        binding_stream.map_ok(|b| ObjectRef::from_obj(&b)).boxed(),
        expand(
            slice_stream
                .map_ok(move |s| {
                    slice_service(&s)
                        .map(|(ns, name)| i1.for_service(&ns, &name))
                        .unwrap_or_default()
                })
                .boxed(),
        ),
        expand(
            service_stream
                .map_ok(move |s| i2.for_service(&s.namespace().unwrap_or_default(), &s.name_any()))
                .boxed(),
        ),
        expand(node_stream.map_ok(move |_| i3.instance_bindings()).boxed()),
    ]);
    let mut stop = stop;
    kube::runtime::controller::applier(
        |b, r| {
            let span =
                info_span!("reconcile", controller = CONTROLLER, object = %Reconciler::owner(&b));
            Box::pin(reconcile(b, r).instrument(span))
        },
        error_policy,
        r,
        bindings,
        queue,
        kube::runtime::controller::Config::default(),
    )
    .take_until(async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .for_each(|res| async move {
        if let Err(e) = res {
            match e {
                kube::runtime::controller::Error::QueueError(e) => {
                    warn!(error = %e, "TargetGroupBinding watch failed; retrying")
                }
                other => tracing::debug!(error = %other, "reconcile"),
            }
        }
    })
    .await;
}
