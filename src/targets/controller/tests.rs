use super::*;
use crate::fixtures;
use serde_json::json;

fn binding(networking: serde_json::Value) -> TargetGroupBinding {
    fixtures::with(
        fixtures::target_group_binding("ns", "b", "arn:tg", "web", 80, "ip"),
        json!({"spec": {"networking": networking}}),
    )
}

fn fetched(service: bool) -> Fetched {
    let svc = fixtures::service("ns", "web", 80, None, json!({}));
    let slice = fixtures::endpoint_slice("ns", "web", &[("10.0.0.7", true)], 8080);
    Fetched {
        tg: Validated {
            generation: Some(1),
            info: TargetGroupInfo {
                arn: "arn:tg".into(),
                vpc_id: Some("vpc-1".into()),
                target_type: "ip".into(),
                ip_address_type: None,
            },
            target_type: TargetType::Ip,
            deregistration_delay: Some(300),
        },
        service: service.then(|| Arc::new(svc)),
        slices: vec![Arc::new(slice)],
        nodes: Vec::new(),
        gated: HashSet::new(),
        target_port_name: None,
    }
}

#[test]
fn desired_targets_come_from_ready_endpoints() {
    let d = desired_state(&binding(json!(null)), &fetched(true)).unwrap();
    assert_eq!(d.targets.len(), 1);
    assert_eq!(d.port, Some(8080));
    let (outcome, healthy) = synced_outcome(&d, &Observed::new());
    assert_eq!(healthy, 0);
    assert!(matches!(
        outcome,
        Outcome::Synced {
            registered: 0,
            healthy: 0
        }
    ));
    let observed: Observed = d
        .targets
        .iter()
        .map(|t| (t.clone(), TargetState::Healthy))
        .collect();
    assert_eq!(synced_outcome(&d, &observed).1, 1);
}

#[test]
fn bad_input_is_reported_before_anything_is_touched() {
    let (invalid, _) = desired_state(&binding(json!(null)), &fetched(false)).unwrap_err();
    assert_eq!(invalid.reason, reason::SERVICE_NOT_FOUND);
    let bad_port = json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
                                       "ports": [{"port": 0}]}]});
    let (invalid, _) = desired_state(&binding(bad_port), &fetched(true)).unwrap_err();
    assert_eq!(invalid.reason, reason::INVALID_NETWORKING);
}

#[test]
fn step_errors_carry_their_cause_and_label() {
    assert_eq!(
        Error::Draining(2).cause(),
        Cause::NotReady(Duration::from_secs(5))
    );
    assert_eq!(Error::Draining(2).label(), "draining");
    let call = || tgaws::AwsCallError {
        operation: "RegisterTargets",
        code: Some("Throttling".into()),
        message: "slow down".into(),
    };
    let e = Error::Register(call());
    assert_eq!((e.cause(), e.label()), (Cause::Transient, "aws"));
    assert_eq!(
        crate::k8s::runtime::error_chain(&e),
        "registering targets: RegisterTargets: slow down"
    );
}

// Reconcile-level tests: the whole reconcile against a fake AWS adapter and the in-memory
// Kubernetes API, so each step's calls and writes can be seen.

use crate::k8s::fake::FakeApi;
use crate::k8s::runtime::Reconciler as _;
use http::Method;

/// The fake adapter: target groups, their registrations and the rules, in memory. Every
/// call is recorded as `Operation target...`; one call per operation can be made to fail.
#[derive(Clone, Default)]
struct FakeAws(Arc<Mutex<FakeState>>);

#[derive(Default)]
struct FakeState {
    groups: BTreeMap<String, TargetGroupInfo>,
    health: BTreeMap<String, Observed>,
    /// Rules by owner.
    /// Each rule with the bindings that own it.
    rules: Vec<(BTreeSet<String>, plan::OwnedRule)>,
    calls: Vec<String>,
    fail: BTreeMap<&'static str, &'static str>,
}

impl FakeAws {
    fn with_group(arn: &str) -> Self {
        let fake = FakeAws::default();
        fake.lock().groups.insert(
            arn.to_string(),
            TargetGroupInfo {
                arn: arn.to_string(),
                vpc_id: Some("vpc-1".into()),
                target_type: "ip".into(),
                ip_address_type: None,
            },
        );
        fake
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set_all(&self, arn: &str, state: TargetState) {
        if let Some(h) = self.lock().health.get_mut(arn) {
            h.values_mut().for_each(|s| *s = state);
        }
    }
    fn set(&self, arn: &str, targets: &[plan::Target], state: TargetState) {
        let mut st = self.lock();
        let h = st.health.entry(arn.to_string()).or_default();
        for t in targets {
            h.insert(t.clone(), state);
        }
    }
    /// A rule `ns/web` added to the node security group earlier (`sgr-1`: tcp 8080 from
    /// 10.0.0.0/16).
    fn add_node_rule(&self) {
        self.add_node_rule_of("ns/web");
    }
    fn add_node_rule_of(&self, owner: &str) {
        self.lock().rules.push((
            [owner.to_string()].into(),
            plan::OwnedRule {
                shared: false,
                rule_id: "sgr-1".into(),
                rule: plan::IngressRule {
                    group_id: "sg-node".into(),
                    protocol: "tcp".into(),
                    from_port: 8080,
                    to_port: 8080,
                    peer: plan::Peer::Cidr("10.0.0.0/16".into()),
                },
            },
        ));
    }
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().calls)
    }
    /// Records the call; `Err` when a failure was injected for it.
    fn call(&self, op: &'static str, detail: String) -> Result<(), tgaws::AwsCallError> {
        let mut st = self.lock();
        st.calls
            .push(format!("{op} {detail}").trim_end().to_string());
        match st.fail.remove(op) {
            Some(code) => Err(tgaws::AwsCallError {
                operation: op,
                code: Some(code.into()),
                message: format!("{code} (injected)"),
            }),
            None => Ok(()),
        }
    }
}

fn list(targets: &[plan::Target]) -> String {
    let mut v: Vec<String> = targets
        .iter()
        .map(|t| format!("{}:{}", t.id, t.port))
        .collect();
    v.sort();
    v.join(",")
}

impl TargetsApi for FakeAws {
    async fn describe_target_group_named(
        &self,
        _name: &str,
    ) -> Result<Option<TargetGroupInfo>, tgaws::AwsCallError> {
        panic!("the tests name target groups by ARN")
    }
    async fn describe_target_groups(
        &self,
        arns: Vec<String>,
    ) -> Result<HashMap<String, TargetGroupInfo>, tgaws::AwsCallError> {
        self.call("DescribeTargetGroups", arns.join(","))?;
        let st = self.lock();
        Ok(arns
            .iter()
            .filter_map(|a| Some((a.clone(), st.groups.get(a)?.clone())))
            .collect())
    }
    async fn deregistration_delay(&self, arn: &str) -> Result<u64, tgaws::AwsCallError> {
        self.call("DescribeTargetGroupAttributes", arn.to_string())?;
        Ok(300)
    }
    async fn describe_target_health(&self, arn: &str) -> Result<Observed, tgaws::AwsCallError> {
        self.call("DescribeTargetHealth", arn.to_string())?;
        Ok(self.lock().health.get(arn).cloned().unwrap_or_default())
    }
    async fn register(
        &self,
        arn: &str,
        targets: &[plan::Target],
    ) -> Result<(), tgaws::AwsCallError> {
        self.call("RegisterTargets", list(targets))?;
        self.set(arn, targets, TargetState::Initial);
        Ok(())
    }
    async fn deregister(
        &self,
        arn: &str,
        targets: &[plan::Target],
    ) -> Result<(), tgaws::AwsCallError> {
        self.call("DeregisterTargets", list(targets))?;
        self.set(arn, targets, TargetState::Draining);
        Ok(())
    }
    async fn instance_security_groups(
        &self,
        instance_ids: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, tgaws::AwsCallError> {
        self.call("DescribeInstances", instance_ids.join(","))?;
        Ok(instance_ids
            .iter()
            .map(|i| (i.clone(), vec!["sg-node".to_string()]))
            .collect())
    }
    async fn owned_rules(
        &self,
        _cluster: &str,
        owners: &[String],
    ) -> Result<HashMap<String, Vec<plan::OwnedRule>>, tgaws::AwsCallError> {
        self.call("DescribeSecurityGroupRules", owners.join(","))?;
        let st = self.lock();
        Ok(owners
            .iter()
            .map(|owner| {
                let rules = st
                    .rules
                    .iter()
                    .filter(|(o, _)| o.contains(owner))
                    .map(|(o, r)| plan::OwnedRule {
                        shared: o.len() > 1,
                        ..r.clone()
                    })
                    .collect();
                (owner.clone(), rules)
            })
            .collect())
    }
    async fn authorize(
        &self,
        _cluster: &str,
        owner: &str,
        rule: &plan::IngressRule,
    ) -> Result<(), tgaws::AwsCallError> {
        self.call("AuthorizeSecurityGroupIngress", rule.group_id.clone())?;
        let mut st = self.lock();
        // As EC2 does: the same permission twice is a duplicate, which the owner joins.
        if let Some((owners, _)) = st.rules.iter_mut().find(|(_, r)| r.rule == *rule) {
            owners.insert(owner.to_string());
            return Ok(());
        }
        let id = format!("sgr-{}", st.rules.len());
        st.rules.push((
            [owner.to_string()].into(),
            plan::OwnedRule {
                rule_id: id,
                rule: rule.clone(),
                shared: false,
            },
        ));
        Ok(())
    }
    async fn revoke(&self, group_id: &str, rule_ids: &[String]) -> Result<(), tgaws::AwsCallError> {
        self.call(
            "RevokeSecurityGroupIngress",
            format!("{group_id} {}", rule_ids.join(",")),
        )?;
        self.lock()
            .rules
            .retain(|(_, r)| !rule_ids.contains(&r.rule_id));
        Ok(())
    }
    async fn release(&self, owner: &str, rule_ids: &[String]) -> Result<(), tgaws::AwsCallError> {
        self.call("DeleteTags", format!("{owner} {}", rule_ids.join(",")))?;
        for (owners, r) in self.lock().rules.iter_mut() {
            if rule_ids.contains(&r.rule_id) {
                owners.remove(owner);
            }
        }
        Ok(())
    }
}

const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1";

/// A binding `ns/web` of Service `web` port 80 (→ 8080) to [`ARN`], and what it needs.
struct World {
    api: FakeApi,
    aws: FakeAws,
    reconciler: Reconciler<FakeAws>,
    bindings: kube::runtime::reflector::store::Writer<TargetGroupBinding>,
    slices: kube::runtime::reflector::store::Writer<EndpointSlice>,
}

impl World {
    /// One reconcile of `ns/web`, after the binding cache caught up with the API, as the
    /// watch makes it do.
    /// Time passes beyond the window in which a reconcile reuses the last one's view.
    fn later(&self) {
        self.reconciler.lock_converged().clear();
    }

    /// The health poll the kept view waits for is due.
    fn poll_due(&self) {
        for c in self.reconciler.lock_converged().values_mut() {
            c.poll_at = Some(Instant::now() - Duration::from_millis(1));
        }
    }

    /// The Service's endpoints become `endpoints`.
    fn endpoints(&mut self, endpoints: &[(&str, bool)]) {
        let slice = fixtures::endpoint_slice("ns", "web", endpoints, 8080);
        self.slices
            .apply_watcher_event(&watcher::Event::Apply(slice));
    }

    async fn reconcile(&mut self) -> Result<Next, Error> {
        let event = match self.api.get::<TargetGroupBinding>(Some("ns"), "web") {
            Some(b) => watcher::Event::Apply(b),
            None => watcher::Event::Delete(web_binding()),
        };
        self.bindings.apply_watcher_event(&event);
        self.reconciler.reconcile("ns/web").await
    }
}

async fn world(binding: TargetGroupBinding, endpoints: &[(&str, bool)], aws: FakeAws) -> World {
    let slice = fixtures::endpoint_slice("ns", "web", endpoints, 8080);
    world_with(binding, slice, Vec::new(), aws).await
}

/// [`world`] with the slice and nodes given.
async fn world_with(
    binding: TargetGroupBinding,
    slice: EndpointSlice,
    nodes: Vec<Node>,
    aws: FakeAws,
) -> World {
    let api = FakeApi::new();
    api.put(&binding);
    let (bindings, writer) = fixtures::store([binding]);
    let (services, _) = fixtures::store([fixtures::service("ns", "web", 80, None, json!({}))]);
    let (slices, slices_writer) = fixtures::store([slice]);
    let (nodes, _) = fixtures::store(nodes);
    let (cached, _) = fixtures::store(Vec::<TargetGroupBinding>::new());
    let ctx = Context::for_tests(api.client(), cached).await;
    let reconciler = Reconciler::new(
        ctx,
        aws.clone(),
        TargetsSettings::default(),
        Stores {
            bindings,
            services,
            slices,
            nodes,
        },
    );
    World {
        api,
        aws,
        reconciler,
        bindings: writer,
        slices: slices_writer,
    }
}

fn web_binding() -> TargetGroupBinding {
    fixtures::target_group_binding("ns", "web", ARN, "web", 80, "ip")
}

fn stored(api: &FakeApi) -> TargetGroupBinding {
    api.get::<TargetGroupBinding>(Some("ns"), "web")
        .expect("the binding")
}

fn status_counts(b: &TargetGroupBinding) -> (Option<i32>, Option<i32>) {
    let s = b.status.as_ref().expect("a status");
    (s.registered_targets, s.healthy_targets)
}

fn ready_reason(b: &TargetGroupBinding) -> (String, String) {
    let s = b.status.as_ref().expect("a status");
    let c =
        crate::k8s::conditions::find(&s.conditions, crate::k8s::conditions::condition_type::READY)
            .expect("a Ready condition");
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn a_new_binding_gets_its_finalizer_then_its_ready_endpoints_registered() {
    let mut w = world(
        web_binding(),
        &[("10.0.0.1", true), ("10.0.0.2", true), ("10.0.0.3", false)],
        FakeAws::with_group(ARN),
    )
    .await;
    let next = w.reconcile().await.unwrap();
    // Registered, not healthy yet: looked at again soon, not only at the resync.
    assert_eq!(next, Next::After(Duration::from_secs(15)));
    assert_eq!(
        w.aws.take_calls(),
        [
            // The deregistration delay is read only once something drains.
            format!("DescribeTargetGroups {ARN}"),
            format!("DescribeTargetHealth {ARN}"),
            "RegisterTargets 10.0.0.1:8080,10.0.0.2:8080".to_string(),
            // No networking rules wanted: the owned ones are looked up once, to revoke any.
            "DescribeSecurityGroupRules ns/web".to_string(),
        ]
    );
    let requests = w.api.take_requests();
    let patch = "PATCH /apis/elbv2.k8s.aws/v1beta1/namespaces/ns/targetgroupbindings/web";
    let finalizer = requests
        .iter()
        .position(|r| r == patch)
        .expect("finalizer added");
    let status = requests
        .iter()
        .position(|r| *r == format!("{patch}/status"))
        .expect("status written");
    assert!(finalizer < status, "{requests:?}");
    let b = stored(&w.api);
    assert!(has_finalizer(&b, TARGETS_FINALIZER));
    assert_eq!(status_counts(&b), (Some(2), Some(0)));

    // A reconcile right behind the first (its own writes trigger one) reuses what it saw,
    // and keeps the poll it had.
    let Next::After(d) = w.reconcile().await.unwrap() else {
        panic!("no poll")
    };
    assert!(
        d <= Duration::from_secs(15) && d > Duration::from_secs(14),
        "{d:?}"
    );
    assert_eq!(w.aws.take_calls(), Vec::<String>::new());

    // Healthy now: nothing to register, status follows, and only a change or the resync
    // brings the binding back. The target group is described once per generation.
    w.aws.set_all(ARN, TargetState::Healthy);
    w.later();
    let next = w.reconcile().await.unwrap();
    assert_eq!(next, Next::AwaitChange);
    assert_eq!(w.aws.take_calls(), [format!("DescribeTargetHealth {ARN}")]);
    assert_eq!(status_counts(&stored(&w.api)), (Some(2), Some(2)));
    assert_eq!(ready_reason(&stored(&w.api)).0, "True");
}

#[tokio::test]
async fn an_endpoint_change_costs_only_its_registration_until_a_poll_is_due() {
    let mut w = world(
        web_binding(),
        &[("10.0.0.1", true)],
        FakeAws::with_group(ARN),
    )
    .await;
    w.reconcile().await.unwrap();
    w.aws.set_all(ARN, TargetState::Healthy);
    w.poll_due();
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    w.aws.take_calls();

    // A pod more: registered from the kept view, no DescribeTargetHealth first.
    w.endpoints(&[("10.0.0.1", true), ("10.0.0.2", true)]);
    let next = w.reconcile().await.unwrap();
    assert_eq!(w.aws.take_calls(), ["RegisterTargets 10.0.0.2:8080"]);
    assert!(matches!(next, Next::After(_)), "{next:?}");
    assert_eq!(status_counts(&stored(&w.api)), (Some(2), Some(1)));

    // A pod less, before the poll: deregistered from the view too.
    w.endpoints(&[("10.0.0.2", true)]);
    w.reconcile().await.unwrap();
    let calls = w.aws.take_calls();
    assert!(
        calls.contains(&"DeregisterTargets 10.0.0.1:8080".to_string())
            && !calls.iter().any(|c| c.starts_with("DescribeTargetHealth")),
        "{calls:?}"
    );

    // The poll reads what AWS has.
    w.aws.set_all(ARN, TargetState::Healthy);
    w.poll_due();
    w.reconcile().await.unwrap();
    assert!(
        w.aws.take_calls()[0].starts_with("DescribeTargetHealth"),
        "the poll reads"
    );

    // A reconcile that fails drops the view: the next one reads again.
    w.endpoints(&[("10.0.0.2", true), ("10.0.0.3", true)]);
    w.aws.lock().fail.insert("RegisterTargets", "Throttling");
    w.reconcile().await.unwrap_err();
    w.aws.take_calls();
    w.reconcile().await.unwrap();
    let calls = w.aws.take_calls();
    assert_eq!(
        calls[..2],
        [
            format!("DescribeTargetHealth {ARN}"),
            "RegisterTargets 10.0.0.3:8080".to_string()
        ],
        "{calls:?}"
    );
}

#[test]
fn a_pending_poll_is_never_pushed_back_and_a_kept_view_expires() {
    let now = Instant::now();
    let s = Duration::from_secs;
    assert_eq!(next_poll(None, None, now), None);
    assert_eq!(next_poll(Some(now + s(3)), None, now), None);
    assert_eq!(next_poll(None, Some(s(15)), now), Some(now + s(15)));
    assert_eq!(
        next_poll(Some(now + s(3)), Some(s(15)), now),
        Some(now + s(3))
    );
    assert_eq!(
        next_poll(Some(now + s(30)), Some(s(2)), now),
        Some(now + s(2))
    );
    // A poll in the past is over: the next one starts from now.
    assert_eq!(
        next_poll(Some(now - s(1)), Some(s(15)), now),
        Some(now + s(15))
    );
    let view = |at: Instant, poll_at| Converged {
        arn: ARN.into(),
        observed: Observed::new(),
        at,
        poll_at,
    };
    let ttl = s(480);
    assert!(view_reusable(&view(now, None), ARN, ttl, now + s(1)));
    assert!(!view_reusable(&view(now, None), "other", ttl, now + s(1)));
    assert!(!view_reusable(&view(now, None), ARN, ttl, now + s(480)));
    assert!(view_reusable(
        &view(now, Some(now + s(15))),
        ARN,
        ttl,
        now + s(14)
    ));
    assert!(!view_reusable(
        &view(now, Some(now + s(15))),
        ARN,
        ttl,
        now + s(15)
    ));
}

#[tokio::test]
async fn a_gone_endpoint_is_deregistered_and_a_throttled_register_fails_transiently() {
    let aws = FakeAws::with_group(ARN);
    aws.lock().health.insert(
        ARN.to_string(),
        [(
            plan::Target {
                id: "10.0.0.9".into(),
                port: 8080,
            },
            TargetState::Healthy,
        )]
        .into(),
    );
    aws.lock().fail.insert("RegisterTargets", "Throttling");
    let mut w = world(web_binding(), &[("10.0.0.1", true)], aws).await;
    let err = w.reconcile().await.unwrap_err();
    assert!(matches!(err, Error::Register(_)), "{err:?}");
    assert_eq!((err.cause(), err.label()), (Cause::Transient, "aws"));
    let calls = w.aws.take_calls();
    assert!(
        calls.contains(&"DeregisterTargets 10.0.0.9:8080".to_string()),
        "{calls:?}"
    );
    // No status claims a sync that did not happen.
    assert!(
        !w.api.take_requests().iter().any(|r| r.ends_with("/status")),
        "status written after a failed register"
    );

    // The retry registers, and the drained target is not deregistered twice.
    w.reconcile().await.unwrap();
    let calls = w.aws.take_calls();
    assert!(
        calls.contains(&"RegisterTargets 10.0.0.1:8080".to_string()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("DeregisterTargets")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_missing_target_group_is_reported_on_the_binding_and_nothing_is_registered() {
    let mut w = world(web_binding(), &[("10.0.0.1", true)], FakeAws::default()).await;
    let next = w.reconcile().await.unwrap();
    // It may still be created in AWS, which no watch shows: looked at again with backoff.
    assert!(
        matches!(next, Next::After(d) if d >= Duration::from_secs(5)),
        "{next:?}"
    );
    assert_eq!(w.aws.take_calls(), [format!("DescribeTargetGroups {ARN}")]);
    let b = stored(&w.api);
    assert_eq!(
        ready_reason(&b),
        (
            "False".to_string(),
            reason::TARGET_GROUP_NOT_FOUND.to_string()
        )
    );
    let events = w.api.all::<k8s_openapi::api::events::v1::Event>();
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == reason::TARGET_GROUP_NOT_FOUND && e["type"] == "Warning"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_multi_cluster_binding_leaves_the_other_clusters_targets_alone() {
    let aws = FakeAws::with_group(ARN);
    let foreign = plan::Target {
        id: "10.9.9.9".into(),
        port: 8080,
    };
    aws.lock().health.insert(
        ARN.to_string(),
        [(foreign.clone(), TargetState::Healthy)].into(),
    );
    let b = fixtures::with(
        web_binding(),
        json!({"spec": {"multiClusterTargetGroup": true}}),
    );
    let mut w = world(b, &[("10.0.0.1", true)], aws).await;
    w.reconcile().await.unwrap();
    let calls = w.aws.take_calls();
    assert!(
        calls.contains(&"RegisterTargets 10.0.0.1:8080".to_string()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("DeregisterTargets")),
        "{calls:?}"
    );
    assert_eq!(
        w.aws.lock().health[ARN].get(&foreign),
        Some(&TargetState::Healthy)
    );
}

#[tokio::test]
async fn deletion_keeps_the_rules_until_targets_drain_then_removes_them_and_the_finalizer() {
    let aws = FakeAws::with_group(ARN);
    let registered = plan::Target {
        id: "10.0.0.1".into(),
        port: 8080,
    };
    aws.lock().health.insert(
        ARN.to_string(),
        [(registered.clone(), TargetState::Healthy)].into(),
    );
    aws.add_node_rule();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let deleting = fixtures::with(
        web_binding(),
        json!({"metadata": {"finalizers": [TARGETS_FINALIZER], "deletionTimestamp": now}}),
    );
    let mut w = world(deleting, &[("10.0.0.1", true)], aws).await;

    let err = w.reconcile().await.unwrap_err();
    assert!(matches!(err, Error::Draining(1)), "{err:?}");
    assert_eq!(err.cause(), Cause::NotReady(Duration::from_secs(5)));
    let calls = w.aws.take_calls();
    assert!(
        calls.contains(&"DeregisterTargets 10.0.0.1:8080".to_string()),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c.starts_with("Revoke")), "{calls:?}");
    assert!(has_finalizer(&stored(&w.api), TARGETS_FINALIZER));

    // Drained: the rule goes, then the finalizer (and with it the object).
    w.aws.lock().health.get_mut(ARN).unwrap().clear();
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    let calls = w.aws.take_calls();
    assert!(
        calls.contains(&"RevokeSecurityGroupIngress sg-node sgr-1".to_string()),
        "{calls:?}"
    );
    assert!(w.aws.lock().rules.is_empty());
    assert!(w.api.get::<TargetGroupBinding>(Some("ns"), "web").is_none());
}

#[tokio::test]
async fn a_rule_two_bindings_need_is_kept_until_the_last_one_lets_go() {
    // `ns/other` authorised the same node rule first; `ns/web` needs it too.
    let aws = FakeAws::with_group(ARN);
    aws.add_node_rule_of("ns/other");
    let net = json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": [{"port": 8080}]}]});
    let web = fixtures::with(web_binding(), json!({"spec": {"networking": net}}));
    // The pod runs on node n1 (instance i-1), whose security group is sg-node.
    let slice = fixtures::with(
        fixtures::endpoint_slice("ns", "web", &[("10.0.0.1", true)], 8080),
        json!({"endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "nodeName": "n1"}]}),
    );
    let node = fixtures::node("n1", Some("aws:///us-east-1a/i-1"), &[], true);
    let mut w = world_with(web, slice, vec![node], aws).await;
    // The finalizer first, then the targets and rules.
    w.reconcile().await.unwrap();
    w.reconcile().await.unwrap();
    {
        let st = w.aws.lock();
        assert_eq!(st.rules.len(), 1, "one rule, not a second copy");
        assert_eq!(
            st.rules[0].0,
            ["ns/other".to_string(), "ns/web".to_string()].into()
        );
    }
    // Deleted: the rule stays for `ns/other`; only the binding's own tag goes.
    w.aws.take_calls();
    let deleting = fixtures::with(
        stored(&w.api),
        json!({"metadata": {"finalizers": [TARGETS_FINALIZER], "deletionTimestamp": k8s_openapi::jiff::Timestamp::now().to_string()}}),
    );
    w.api.put(&deleting);
    // Its target still drains: letting go of a key changes no traffic, so nothing waits.
    w.aws.set_all(ARN, TargetState::Draining);
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    let calls = w.aws.take_calls();
    assert!(!calls.iter().any(|c| c.starts_with("Revoke")), "{calls:?}");
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("DescribeTargetGroupAttributes")),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"DeleteTags ns/web sgr-1".to_string()),
        "{calls:?}"
    );
    let st = w.aws.lock();
    assert_eq!(st.rules.len(), 1);
    assert_eq!(st.rules[0].0, ["ns/other".to_string()].into());
}

#[tokio::test]
async fn a_failed_status_write_is_a_step_error_and_the_next_reconcile_writes_it() {
    let mut w = world(
        web_binding(),
        &[("10.0.0.1", true)],
        FakeAws::with_group(ARN),
    )
    .await;
    w.api
        .fail_next(Method::PATCH, "/targetgroupbindings/web/status", 500);
    let err = w.reconcile().await.unwrap_err();
    assert!(matches!(err, Error::Status(_)), "{err:?}");
    assert_eq!((err.cause(), err.label()), (Cause::Transient, "kubernetes"));
    w.reconcile().await.unwrap();
    assert_eq!(status_counts(&stored(&w.api)), (Some(1), Some(0)));
}

#[tokio::test]
async fn a_binding_whose_target_group_is_gone_releases_its_finalizer_at_once_and_revokes_its_rules()
{
    let aws = FakeAws::with_group(ARN);
    let mut w = world(web_binding(), &[("10.0.0.1", true)], aws).await;
    w.reconcile().await.unwrap();
    w.aws.add_node_rule();
    // The load balancer's reconciler deleted the target group (with its targets), then the
    // binding is deleted: nothing is left to drain, and the answer is not "retry".
    w.aws.lock().groups.clear();
    w.aws.lock().health.clear();
    w.aws
        .lock()
        .fail
        .insert("DescribeTargetHealth", "TargetGroupNotFound");
    let deleting = fixtures::with(
        stored(&w.api),
        json!({"metadata": {"finalizers": [TARGETS_FINALIZER], "deletionTimestamp": k8s_openapi::jiff::Timestamp::now().to_string()}}),
    );
    w.api.put(&deleting);
    w.aws.take_calls();
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    let calls = w.aws.take_calls();
    assert!(
        calls.contains(&"RevokeSecurityGroupIngress sg-node sgr-1".to_string()),
        "{calls:?}"
    );
    assert!(w.aws.lock().rules.is_empty());
    assert!(w.api.get::<TargetGroupBinding>(Some("ns"), "web").is_none());
}

#[tokio::test]
async fn a_binding_in_a_namespace_being_deleted_does_not_wait_for_draining() {
    let aws = FakeAws::with_group(ARN);
    aws.lock().health.insert(
        ARN.to_string(),
        [(
            plan::Target {
                id: "10.0.0.1".into(),
                port: 8080,
            },
            TargetState::Healthy,
        )]
        .into(),
    );
    aws.add_node_rule();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let deleting = fixtures::with(
        web_binding(),
        json!({"metadata": {"finalizers": [TARGETS_FINALIZER], "deletionTimestamp": now}}),
    );
    let mut w = world(deleting, &[("10.0.0.1", true)], aws).await;
    w.api.put(
        &serde_json::from_value::<k8s_openapi::api::core::v1::Namespace>(json!({
            "metadata": {"name": "ns", "deletionTimestamp": now, "finalizers": ["kubernetes"]}
        }))
        .unwrap(),
    );
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    let calls = w.aws.take_calls();
    assert!(
        calls.contains(&"DeregisterTargets 10.0.0.1:8080".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"RevokeSecurityGroupIngress sg-node sgr-1".to_string()),
        "{calls:?}"
    );
    assert!(w.api.get::<TargetGroupBinding>(Some("ns"), "web").is_none());
}

#[tokio::test]
async fn bindings_reconciling_together_look_up_their_rules_in_one_call() {
    // Three bindings of one Service, each with the same node rule, reconciled at once (as a
    // restart or a resync does): one DescribeSecurityGroupRules for the three owners.
    let net = json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": [{"port": 8080}]}]});
    let with_net = |name: &str| {
        fixtures::with(
            fixtures::target_group_binding("ns", name, ARN, "web", 80, "ip"),
            json!({"spec": {"networking": net}}),
        )
    };
    let slice = fixtures::with(
        fixtures::endpoint_slice("ns", "web", &[("10.0.0.1", true)], 8080),
        json!({"endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "nodeName": "n1"}]}),
    );
    let node = fixtures::node("n1", Some("aws:///us-east-1a/i-1"), &[], true);
    let mut w = world_with(with_net("web"), slice, vec![node], FakeAws::with_group(ARN)).await;
    for name in ["web2", "web3"] {
        w.api.put(&with_net(name));
    }
    let names = ["web", "web2", "web3"];
    let sync = |w: &mut World| {
        for name in names {
            let b = w
                .api
                .get::<TargetGroupBinding>(Some("ns"), name)
                .expect("binding");
            w.bindings.apply_watcher_event(&watcher::Event::Apply(b));
        }
    };
    // The finalizers first, one by one.
    sync(&mut w);
    for name in names {
        w.reconciler.reconcile(&format!("ns/{name}")).await.unwrap();
    }
    sync(&mut w);
    // Then as after a restart: nothing kept.
    w.later();
    w.reconciler.rules.lock().unwrap().clear();
    w.aws.take_calls();
    let r = &w.reconciler;
    let (a, b, c) = tokio::join!(
        r.reconcile("ns/web"),
        r.reconcile("ns/web2"),
        r.reconcile("ns/web3")
    );
    for result in [a, b, c] {
        result.unwrap();
    }
    let calls = w.aws.take_calls();
    let lookups: Vec<_> = calls
        .iter()
        .filter(|c| c.starts_with("DescribeSecurityGroupRules"))
        .collect();
    assert_eq!(lookups.len(), 1, "{calls:?}");
    for owner in ["ns/web", "ns/web2", "ns/web3"] {
        assert!(lookups[0].contains(owner), "{calls:?}");
    }
    let st = w.aws.lock();
    assert_eq!(st.rules.len(), 1, "one shared rule");
    assert_eq!(
        st.rules[0].0,
        [
            "ns/web".to_string(),
            "ns/web2".to_string(),
            "ns/web3".to_string()
        ]
        .into()
    );
}
