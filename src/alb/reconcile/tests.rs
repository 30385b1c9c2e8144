//! Reconcile-level tests: one IngressGroup's whole reconcile against a fake AWS adapter (the
//! planner's simulator, [`Sim`]) and the in-memory Kubernetes API, so each step's calls and
//! writes can be seen.

use std::sync::Mutex;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::IngressClass;
use kube::runtime::reflector::store::Writer;
use serde_json::json;

use super::*;
use crate::alb::aws::Depth;
use crate::alb::builder::tests_support::{certs, subnets};
use crate::alb::controller::Stores;
use crate::alb::model::GroupModel;
use crate::alb::plan::Step;
use crate::alb::plan::sim::Sim;
use crate::alb::settings::AlbSettings;
use crate::context::Context;
use crate::crd::IngressClassParams;
use crate::fixtures;
use crate::k8s::fake::FakeApi;
use crate::k8s::runtime::Reconciler as _;
use crate::k8s::runtime::{Cause, StepError};

/// AWS as the simulator keeps it; every `apply` records its steps' names, and one step kind
/// can be made to fail (after the steps before it were applied, as AWS would).
#[derive(Clone, Default)]
struct FakeAws(Arc<Mutex<FakeState>>);

#[derive(Default)]
struct FakeState {
    sim: Sim,
    applied: Vec<String>,
    fail: Option<&'static str>,
}

fn step_name(s: &Step) -> String {
    let debug = format!("{s:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_string()
}

impl FakeAws {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn take_applied(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().applied)
    }
    fn load_balancers(&self) -> usize {
        self.lock().sim.state.load_balancers.len()
    }
}

impl AlbApi for FakeAws {
    async fn cluster_vpc(&self, _cluster: &str) -> Result<String, AwsError> {
        Ok("vpc-1".into())
    }
    async fn certificates(&self) -> Result<Vec<CertInfo>, AwsError> {
        Ok(certs())
    }
    async fn subnets(&self, _scope: Scope<'_>) -> Result<Vec<SubnetInfo>, AwsError> {
        Ok(subnets())
    }
    async fn resolve_web_acls(
        &self,
        names: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(names
            .iter()
            .map(|n| match n.starts_with("arn:") {
                true => (n.clone(), n.clone()),
                false => (
                    n.clone(),
                    format!("arn:aws:wafv2:us-east-1:1:regional/webacl/{n}/1"),
                ),
            })
            .collect())
    }
    /// Every name but `missing` exists.
    async fn resolve_trust_stores(
        &self,
        names: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(names
            .iter()
            .filter(|n| *n != "missing")
            .map(|n| {
                (
                    n.clone(),
                    format!("arn:aws:elasticloadbalancing:us-east-1:1:truststore/{n}/1"),
                )
            })
            .collect())
    }
    async fn resolve_target_groups(
        &self,
        names: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    format!(
                        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{n}/0"
                    ),
                )
            })
            .collect())
    }

    async fn resolve_security_groups(
        &self,
        _scope: Scope<'_>,
        entries: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Vec<String>>, AwsError> {
        Ok(entries
            .iter()
            .map(|e| (e.clone(), vec![e.clone()]))
            .collect())
    }
    /// Everything in the simulation tagged for the stack.
    async fn tagged_stack(
        &self,
        scope: Scope<'_>,
        kind: crate::aws::tags::StackKind,
        stack: &str,
    ) -> Result<Known, AwsError> {
        let mut o = self.lock().sim.state.clone();
        o.retain_owned(scope.cluster, kind, stack);
        Ok(Known {
            load_balancer_arns: o.load_balancers.into_iter().map(|l| l.arn).collect(),
            target_group_arns: o.target_groups.into_iter().map(|t| t.arn).collect(),
            security_group_ids: o.security_groups.into_iter().map(|s| s.id).collect(),
            ..Known::default()
        })
    }
    async fn shared_backend_group(
        &self,
        _scope: Scope<'_>,
        _ids: &[String],
    ) -> Result<Option<String>, AwsError> {
        Ok(None)
    }
    /// As the adapter reads: by recorded ARN or ID, and by desired or pending name.
    async fn observe(
        &self,
        _scope: Scope<'_>,
        known: &Known,
        desired: &GroupModel,
        _depth: Depth,
    ) -> Result<Observed, AwsError> {
        let mut o = self.lock().sim.state.clone();
        let wanted =
            |arn: &str, name: &str, arns: &[String], pending: &[String], names: Vec<&String>| {
                arns.iter().any(|a| a == arn)
                    || pending.iter().any(|n| n == name)
                    || names.iter().any(|n| *n == name)
            };
        let p = &known.pending;
        o.load_balancers.retain(|l| {
            let names = desired.load_balancers.iter().map(|d| &d.name).collect();
            wanted(
                &l.arn,
                &l.name,
                &known.load_balancer_arns,
                &p.load_balancers,
                names,
            )
        });
        o.target_groups.retain(|t| {
            let names = desired.target_groups.iter().map(|d| &d.name).collect();
            wanted(
                &t.arn,
                &t.name,
                &known.target_group_arns,
                &p.target_groups,
                names,
            )
        });
        o.security_groups.retain(|s| {
            let names = desired.security_groups.iter().map(|d| &d.name).collect();
            wanted(
                &s.id,
                &s.name,
                &known.security_group_ids,
                &p.security_groups,
                names,
            )
        });
        Ok(o)
    }
    async fn apply(
        &self,
        _scope: Scope<'_>,
        steps: &[Step],
        _observed: &Observed,
        _secrets: &crate::alb::model::ClientSecrets,
    ) -> Result<(), AwsError> {
        let mut st = self.lock();
        for s in steps {
            let name = step_name(s);
            if st.fail.is_some_and(|f| f == name) {
                st.fail = None;
                return Err(AwsError::Call {
                    operation: "Apply",
                    code: "InternalFailure".into(),
                    message: format!("{name} failed (injected)"),
                });
            }
            st.sim.apply(std::slice::from_ref(s));
            st.applied.push(name);
        }
        Ok(())
    }
}

/// One Ingress `ns/web` in group `shop`, claimed by the legacy class annotation, and the
/// caches the reconciler reads (kept in step with the API by [`World::reconcile`]).
struct World {
    api: FakeApi,
    aws: FakeAws,
    reconciler: Reconciler<FakeAws>,
    ingresses: Writer<Ingress>,
    groups: Writer<LoadBalancerGroup>,
    bindings: Writer<TargetGroupBinding>,
}

const STACK: &str = "shop";

fn web_ingress() -> Ingress {
    fixtures::ingress(
        "ns",
        "web",
        json!({"kubernetes.io/ingress.class": "causeway",
               "alb.ingress.kubernetes.io/group.name": STACK}),
        json!([fixtures::path_rule(
            Some("shop.causeway.test"),
            "/",
            "Prefix",
            "web",
            80
        )]),
    )
}

async fn world(aws: FakeAws) -> World {
    let api = FakeApi::new();
    let ingress = web_ingress();
    let service = fixtures::service("ns", "web", 80, Some(30080), json!({}));
    api.put(&ingress);
    api.put(&service);
    let (ingresses, ingress_writer) = fixtures::store([ingress]);
    let (services, _) = fixtures::store([service]);
    let (classes, _) = fixtures::store(Vec::<IngressClass>::new());
    let (namespaces, _) = fixtures::store(Vec::<Namespace>::new());
    let (groups, group_writer) = fixtures::store(Vec::<LoadBalancerGroup>::new());
    let (params, _) = fixtures::store(Vec::<IngressClassParams>::new());
    let (cached_bindings, binding_writer) = fixtures::store(Vec::<TargetGroupBinding>::new());
    let ctx = Context::for_tests(api.client(), cached_bindings).await;
    let reconciler = Reconciler::new(
        ctx,
        aws.clone(),
        AlbSettings::default(),
        Stores {
            ingresses,
            classes,
            services,
            namespaces,
            groups,
            params,
        },
    );
    World {
        api,
        aws,
        reconciler,
        ingresses: ingress_writer,
        groups: group_writer,
        bindings: binding_writer,
    }
}

impl World {
    async fn reconcile(&mut self) -> Result<Next, Error> {
        self.api.relist(&mut self.ingresses);
        self.api.relist(&mut self.groups);
        self.api.relist(&mut self.bindings);
        assert_eq!(self.reconciler.keys(), [STACK]);
        self.reconciler.reconcile(STACK).await
    }

    fn group(&self) -> Option<LoadBalancerGroup> {
        self.api.get(None, STACK)
    }

    fn ingress(&self) -> Option<Ingress> {
        self.api.get(Some("ns"), "web")
    }

    fn hostname(&self) -> Option<String> {
        fixtures::hostname(&self.ingress()?)
    }
}

#[tokio::test]
async fn an_ingress_becomes_a_load_balancer_its_binding_and_its_hostname_then_nothing_changes() {
    let mut w = world(FakeAws::default()).await;
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);

    let applied = w.aws.take_applied();
    for kind in [
        "CreateSecurityGroup",
        "CreateTargetGroup",
        "CreateLoadBalancer",
        "CreateListener",
        "CreateRule",
    ] {
        assert!(
            applied.iter().any(|s| s == kind),
            "{kind} missing from {applied:?}"
        );
    }
    // The finalizer and the group object come before anything in AWS can depend on them.
    let requests = w.api.take_requests();
    let finalizer = requests
        .iter()
        .position(|r| r == "PATCH /apis/networking.k8s.io/v1/namespaces/ns/ingresses/web")
        .expect("finalizer added");
    let group_object = requests
        .iter()
        .position(|r| r == "PATCH /apis/causeway.dev/v1alpha1/loadbalancergroups/shop")
        .expect("group object applied");
    assert!(finalizer < group_object, "{requests:?}");

    // Every ARN we created is recorded, the target group has its binding, owned by the
    // group object, and the Ingress shows the load balancer's name.
    let status = w.group().and_then(|g| g.status).expect("group status");
    let lb = &w.aws.lock().sim.state.load_balancers[0].clone();
    assert_eq!(
        status.load_balancers[0].arn.as_deref(),
        Some(lb.arn.as_str())
    );
    assert_eq!(status.target_groups.len(), 1);
    let bindings = w.api.all::<TargetGroupBinding>();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(
        bindings[0]["metadata"]["ownerReferences"][0]["kind"],
        "LoadBalancerGroup"
    );
    assert_eq!(
        bindings[0]["spec"]["targetGroupARN"],
        json!(status.target_groups[0].id)
    );
    assert_eq!(w.hostname(), Some(lb.dns_name.clone()));
    assert!(has_finalizer(&w.ingress().unwrap(), ALB_FINALIZER));

    // Converged: the next reconcile applies nothing and writes nothing.
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    assert_eq!(w.aws.take_applied(), Vec::<String>::new());
    let writes: Vec<String> = w
        .api
        .take_requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET"))
        .collect();
    assert_eq!(writes, Vec::<String>::new());
}

#[tokio::test]
async fn a_failed_step_records_what_exists_reports_on_the_member_and_the_retry_goes_on() {
    let aws = FakeAws::default();
    aws.lock().fail = Some("CreateListener");
    let mut w = world(aws).await;
    let err = w.reconcile().await.unwrap_err();
    assert!(matches!(err, Error::Apply(_)), "{err:?}");
    assert_eq!((err.cause(), err.label()), (Cause::Transient, "aws"));

    // The load balancer made before the failure is in status, so it is not made twice.
    let status = w.group().and_then(|g| g.status).expect("group status");
    let lb_arn = w.aws.lock().sim.state.load_balancers[0].arn.clone();
    assert_eq!(
        status.load_balancers[0].arn.as_deref(),
        Some(lb_arn.as_str())
    );
    let ready = crate::k8s::conditions::find(
        &status.conditions,
        crate::k8s::conditions::condition_type::READY,
    )
    .expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", reason::AWS_ERROR)
    );
    let events = w.api.all::<k8s_openapi::api::events::v1::Event>();
    assert!(
        events.iter().any(|e| e["reason"] == reason::AWS_ERROR
            && e["regarding"]["name"] == "web"
            && e["type"] == "Warning"),
        "{events:?}"
    );

    w.aws.take_applied();
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    let applied = w.aws.take_applied();
    assert!(applied.iter().any(|s| s == "CreateListener"), "{applied:?}");
    assert!(
        !applied.iter().any(|s| s == "CreateLoadBalancer"),
        "{applied:?}"
    );
    assert_eq!(w.aws.load_balancers(), 1);
    assert!(w.hostname().is_some());
}

#[tokio::test]
async fn a_deleted_ingress_takes_everything_we_made_with_it_before_its_finalizer_goes() {
    let mut w = world(FakeAws::default()).await;
    w.reconcile().await.unwrap();
    assert_eq!(w.aws.load_balancers(), 1);

    // kubectl delete: the finalizer holds the Ingress while the group is taken down.
    use kube::api::{Api, DeleteParams};
    let ingresses: Api<Ingress> = Api::namespaced(w.api.client(), "ns");
    ingresses
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    assert!(w.ingress().is_some());

    // The target group waits while its binding is there (the binding's finalizer
    // deregisters the targets first); the next look, once the binding is gone, deletes it.
    assert_eq!(
        w.reconcile().await.unwrap(),
        Next::After(BINDING_RELEASE_REQUEUE)
    );
    let mut applied = w.aws.take_applied();
    assert!(
        !applied.iter().any(|s| s == "DeleteTargetGroup"),
        "{applied:?}"
    );
    assert!(w.api.all::<TargetGroupBinding>().is_empty());
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    applied.extend(w.aws.take_applied());
    for kind in [
        "DeleteLoadBalancer",
        "DeleteTargetGroup",
        "DeleteSecurityGroup",
    ] {
        assert!(
            applied.iter().any(|s| s == kind),
            "{kind} missing from {applied:?}"
        );
    }
    let state = &w.aws.lock().sim.state;
    assert!(state.load_balancers.is_empty() && state.target_groups.is_empty());
    assert!(state.security_groups.is_empty());
    // The binding, the group object and (its finalizer gone) the Ingress itself.
    assert!(w.api.all::<TargetGroupBinding>().is_empty());
    assert!(w.group().is_none());
    assert!(w.ingress().is_none());
}

#[tokio::test]
async fn what_a_crash_left_before_its_arns_were_recorded_is_found_by_name_and_deleted() {
    let mut w = world(FakeAws::default()).await;
    // Everything is created, then the status that records the ARNs is not written, as if
    // the process died first (the pending names were written before the creates).
    w.api.fail_after(
        http::Method::PATCH,
        "/loadbalancergroups/shop/status",
        1,
        500,
    );
    let err = w.reconcile().await.unwrap_err();
    assert!(matches!(err, Error::Status(_)), "{err:?}");
    assert_eq!(w.aws.load_balancers(), 1);
    let status = w
        .group()
        .and_then(|g| g.status)
        .expect("pending names recorded");
    assert!(status.load_balancers.is_empty(), "{status:?}");
    assert_eq!(status.pending_creates.load_balancers.len(), 1);

    // The Ingress goes before the next reconcile: nothing is desired any more, and only the
    // pending names lead to what was made.
    use kube::api::{Api, DeleteParams};
    let ingresses: Api<Ingress> = Api::namespaced(w.api.client(), "ns");
    ingresses
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    // Twice: the target group's deletion waits for its binding to go.
    w.reconcile().await.unwrap();
    w.reconcile().await.unwrap();
    let state = &w.aws.lock().sim.state;
    assert!(
        state.load_balancers.is_empty(),
        "{:?}",
        state.load_balancers
    );
    assert!(state.target_groups.is_empty() && state.security_groups.is_empty());
    assert!(w.ingress().is_none());
}

/// What another controller made for the group (the first world's resources, renamed as the
/// peer names them), in a fresh world that has no status for it.
async fn made_by_another_controller() -> Sim {
    let mut first = world(FakeAws::default()).await;
    first.reconcile().await.unwrap();
    let mut state = first.aws.lock().sim.state.clone();
    for lb in &mut state.load_balancers {
        lb.name = format!("k8s-shop-peer{}", lb.name.len());
    }
    for (i, tg) in state.target_groups.iter_mut().enumerate() {
        tg.name = format!("k8s-ns-web-peer{i}");
    }
    for (i, sg) in state.security_groups.iter_mut().enumerate() {
        sg.name = format!("k8s-shop-peersg{i}");
    }
    Sim::new(state)
}

#[tokio::test]
async fn another_controllers_stack_is_adopted_without_a_create_and_the_record_persists() {
    let sim = made_by_another_controller().await;
    let before = sim.state.clone();
    let aws = FakeAws(Arc::new(Mutex::new(FakeState {
        sim,
        ..FakeState::default()
    })));
    let mut w = world(aws).await;
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    assert_eq!(w.aws.take_applied(), Vec::<String>::new());
    assert_eq!(w.aws.lock().sim.state, before);
    let status = w.group().and_then(|g| g.status).expect("status");
    assert_eq!(
        status.load_balancers[0].arn.as_deref(),
        Some(before.load_balancers[0].arn.as_str())
    );
    let adopted = status.adopted.expect("the adoption is recorded");
    assert_eq!(
        adopted.load_balancers.values().collect::<Vec<_>>(),
        [&before.load_balancers[0].name]
    );
    assert_eq!(
        w.hostname(),
        Some(before.load_balancers[0].dns_name.clone())
    );
    // The record, not a new lookup, renames from then on: still nothing to do.
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    assert_eq!(w.aws.take_applied(), Vec::<String>::new());
}

#[tokio::test]
async fn a_refused_member_holds_the_adoption_and_nothing_of_the_found_stack_changes() {
    let sim = made_by_another_controller().await;
    let before = sim.state.clone();
    let aws = FakeAws(Arc::new(Mutex::new(FakeState {
        sim,
        ..FakeState::default()
    })));
    let mut w = world(aws).await;
    // The member's Service is gone: the member is refused, so the model lacks its rule.
    use kube::api::{Api, DeleteParams};
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(w.api.client(), "ns");
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    w.reconciler.stores.services =
        fixtures::store(Vec::<k8s_openapi::api::core::v1::Service>::new()).0;
    assert_eq!(w.reconcile().await.unwrap(), Next::AwaitChange);
    assert_eq!(w.aws.take_applied(), Vec::<String>::new());
    assert_eq!(w.aws.lock().sim.state, before);
    let events: Vec<serde_json::Value> = w.api.all::<k8s_openapi::api::events::v1::Event>();
    assert!(
        events.iter().any(|e| e["reason"] == adopt::ADOPTION_HELD),
        "{events:?}"
    );
}
