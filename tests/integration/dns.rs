//! The DNS controller against moto's Route 53 with the seeded `causeway.test` zones (one public,
//! one private, shared by every test): each test has its own namespace, owner id and hostnames.

use std::time::{Duration, Instant};

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use causeway::crd::DNSEndpoint;
use causeway_testenv::support::{TestCtx, http_get, unique_name, wait_for};
use k8s_openapi::api::core::v1::{Event, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::common::{Controller, Proc};

const WAIT: Duration = Duration::from_secs(60);

pub struct Dns {
    pub proc: Proc,
    port: u16,
}

impl Dns {
    /// A controller for the seeded `causeway.test` zones.
    pub fn start(ctx: &TestCtx, owner: &str, extra: &[&str]) -> Dns {
        let zones = format!(
            "{},{}",
            ctx.env.seed.public_zone_id, ctx.env.seed.private_zone_id
        );
        let mut args = vec!["--dns-zone-id-filter", &zones];
        args.extend_from_slice(extra);
        Self::start_for(ctx, owner, "causeway.test", &args)
    }

    /// A controller for every zone under `domain`.
    fn start_for(ctx: &TestCtx, owner: &str, domain: &str, extra: &[&str]) -> Dns {
        Self::start_with_env(ctx, owner, domain, extra, &[])
    }

    /// [`Dns::start_for`] with extra environment (and a process name of its own per call).
    pub fn start_with_env(
        ctx: &TestCtx,
        owner: &str,
        domain: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Dns {
        let lease = unique_name("dns-lease");
        let mut args = vec![
            "--controllers",
            "dns",
            "--dns-namespace",
            &ctx.namespace,
            "--dns-txt-owner-id",
            owner,
            "--dns-domain-filter",
            domain,
            "--log-level",
            "causeway=debug,info",
        ];
        if !extra.contains(&"--dns-debounce") {
            args.extend_from_slice(&["--dns-debounce", "200ms"]);
        }
        args.extend_from_slice(extra);
        let Controller { proc, port } = Controller::start_with_env(
            ctx,
            &unique_name(&format!("dns-{owner}")),
            &lease,
            &args,
            env,
        );
        Dns { proc, port }
    }

    async fn metrics(&self) -> String {
        http_get(&format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// Sum of a counter's samples whose line contains every fragment.
    async fn counter(&self, name: &str, fragments: &[&str]) -> f64 {
        sample_sum(&self.metrics().await, name, fragments)
    }

    pub async fn passes(&self) -> f64 {
        self.counter("causeway_reconcile_total", &["controller=\"dns\""])
            .await
    }
}

pub fn sample_sum(metrics: &str, name: &str, fragments: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && fragments.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub async fn route53(ctx: &TestCtx) -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::new(&ctx.aws().await)
}

/// The record sets of `zone` named `name` (any type).
pub async fn records_named(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
) -> Vec<ResourceRecordSet> {
    let wanted = format!("{name}.");
    let Ok(out) = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .max_items(20)
        .send()
        .await
    else {
        return Vec::new();
    };
    out.resource_record_sets()
        .iter()
        .filter(|r| r.name().replace("\\052", "*") == wanted)
        .cloned()
        .collect()
}

pub fn of_type(sets: &[ResourceRecordSet], t: RrType) -> Vec<&ResourceRecordSet> {
    sets.iter().filter(|r| *r.r#type() == t).collect()
}

async fn put_record(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    action: ChangeAction,
    name: &str,
    t: RrType,
    values: &[&str],
) {
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(t)
        .ttl(300)
        .set_resource_records(Some(
            values
                .iter()
                .map(|v| ResourceRecord::builder().value(*v).build().unwrap())
                .collect(),
        ))
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(action)
                        .resource_record_set(set)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("write record to moto");
}

pub async fn ready_condition(ctx: &TestCtx, name: &str) -> Option<(String, String, Option<i64>)> {
    let api: Api<DNSEndpoint> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let obj = api.get_opt(name).await.ok()??;
    let generation = obj.metadata.generation;
    let status = obj.status?;
    if status.observed_generation != generation {
        return None;
    }
    let c = status.conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.observed_generation))
}

pub async fn events_for(ctx: &TestCtx, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| e.involved_object.name.as_deref() == Some(name))
                .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn patch_lb_hostname<K>(api: &Api<K>, name: &str, hostname: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}
        })),
    )
    .await
    .expect("patch status");
}

/// An ALB in moto, made directly (the ALB controller is not part of these tests).
pub async fn create_alb(ctx: &TestCtx, name: &str) -> (String, String) {
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&ctx.aws().await);
    let out = elbv2
        .create_load_balancer()
        .name(name)
        .set_subnets(Some(ctx.env.seed.public_subnet_ids.clone()))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb = &out.load_balancers()[0];
    (
        lb.dns_name().unwrap().to_string(),
        lb.canonical_hosted_zone_id().unwrap().to_string(),
    )
}

fn host(prefix: &str) -> String {
    format!("{}.causeway.test", unique_name(prefix))
}

#[tokio::test]
async fn dns_ingress_gets_an_alias_to_its_alb_in_both_zones() {
    let ctx = TestCtx::new("dns-ing").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let owner = unique_name("own");
    let dns = Dns::start(&ctx, &owner, &[]);
    let (lb_host, lb_zone) = create_alb(&ctx, &unique_name("alb")).await;
    let name = host("web");
    ctx.apply(&format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - host: {name}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service: {{name: web, port: {{number: 80}}}}
"#
    ))
    .await
    .expect("apply ingress");
    let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    patch_lb_hostname(&ingresses, "web", &lb_host).await;

    let r53 = route53(&ctx).await;
    let seed = &ctx.env.seed;
    for zone in [&seed.public_zone_id, &seed.private_zone_id] {
        let sets = wait_for("alias records", WAIT, || async {
            let sets = records_named(&r53, zone, &name).await;
            (of_type(&sets, RrType::A).len() == 1 && of_type(&sets, RrType::Aaaa).len() == 1)
                .then_some(sets)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
        for t in [RrType::A, RrType::Aaaa] {
            let alias = of_type(&sets, t)[0].alias_target().expect("alias");
            assert_eq!(alias.dns_name().trim_end_matches('.'), lb_host);
            assert_eq!(
                alias.hosted_zone_id(),
                lb_zone,
                "the LB's own canonical zone"
            );
        }
        // Ownership records in external-dns's typed format.
        let txt = records_named(&r53, zone, &format!("a-{name}")).await;
        let value = txt[0].resource_records()[0].value();
        assert_eq!(
            value,
            format!(
                "\"heritage=external-dns,external-dns/owner={owner},external-dns/resource=ingress/{}/web\"",
                ctx.namespace
            )
        );
        assert_eq!(
            records_named(&r53, zone, &format!("aaaa-{name}"))
                .await
                .len(),
            1
        );
    }
    // Deleting the Ingress deletes its records and their TXT.
    ingresses
        .delete("web", &Default::default())
        .await
        .expect("delete");
    wait_for("records deleted", WAIT, || async {
        let mut left = 0;
        for zone in [&seed.public_zone_id, &seed.private_zone_id] {
            left += records_named(&r53, zone, &name).await.len();
            left += records_named(&r53, zone, &format!("a-{name}")).await.len();
        }
        (left == 0).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn dns_service_hostname_annotation_publishes_its_load_balancer() {
    let ctx = TestCtx::new("dns-svc").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let owner = unique_name("own");
    let dns = Dns::start(&ctx, &owner, &["--dns-zone-type", "public"]);
    let name = host("svc");
    ctx.apply(&format!(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: api
  annotations:
    external-dns.alpha.kubernetes.io/hostname: {name}
    external-dns.alpha.kubernetes.io/ttl: "60"
spec:
  type: LoadBalancer
  selector: {{app: api}}
  ports: [{{port: 443, targetPort: 8443}}]
"#
    ))
    .await
    .expect("apply service");
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    services
        .patch_status(
            "api",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}, {"ip": "203.0.113.11"}]}}
            })),
        )
        .await
        .expect("patch status");
    let r53 = route53(&ctx).await;
    let seed = &ctx.env.seed;
    let sets = wait_for("A record", WAIT, || async {
        let sets = records_named(&r53, &seed.public_zone_id, &name).await;
        (!of_type(&sets, RrType::A).is_empty()).then_some(sets)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    let a = of_type(&sets, RrType::A)[0];
    assert_eq!(a.ttl(), Some(60));
    let mut values: Vec<&str> = a.resource_records().iter().map(|r| r.value()).collect();
    values.sort();
    assert_eq!(values, ["203.0.113.10", "203.0.113.11"]);
    // --dns-zone-type public: the private zone is not managed.
    assert!(
        records_named(&r53, &seed.private_zone_id, &name)
            .await
            .is_empty()
    );
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn dns_endpoint_with_weighted_records_gets_ready_and_observed_generation() {
    let ctx = TestCtx::new("dns-crd").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let owner = unique_name("own");
    let dns = Dns::start(&ctx, &owner, &[]);
    let name = host("wgt");
    let (blue, green) = (unique_name("blue"), unique_name("green"));
    ctx.apply(&format!(
        r#"
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: weighted
spec:
  endpoints:
  - dnsName: {name}
    recordType: A
    recordTTL: 30
    targets: [10.0.0.1]
    setIdentifier: {blue}
    providerSpecific: [{{name: aws/weight, value: "90"}}]
  - dnsName: {name}
    recordType: A
    recordTTL: 30
    targets: [10.0.0.2]
    setIdentifier: {green}
    providerSpecific: [{{name: aws/weight, value: "10"}}]
"#
    ))
    .await
    .expect("apply");
    let ready = wait_for("Ready", WAIT, || async {
        ready_condition(&ctx, "weighted")
            .await
            .filter(|(s, _, _)| s == "True")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    assert_eq!(ready.1, "Published");
    let r53 = route53(&ctx).await;
    let sets = records_named(&r53, &ctx.env.seed.public_zone_id, &name).await;
    let mut weights: Vec<(String, i64, String)> = of_type(&sets, RrType::A)
        .iter()
        .map(|r| {
            (
                r.set_identifier().unwrap().to_string(),
                r.weight().unwrap(),
                r.resource_records()[0].value().to_string(),
            )
        })
        .collect();
    weights.sort();
    assert_eq!(
        weights,
        vec![
            (blue.clone(), 90, "10.0.0.1".to_string()),
            (green.clone(), 10, "10.0.0.2".to_string())
        ]
    );
    // Each routed record has its own TXT with the same set identifier.
    let txt = records_named(&r53, &ctx.env.seed.public_zone_id, &format!("a-{name}")).await;
    assert_eq!(txt.len(), 2, "{txt:?}");
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn dns_adopts_external_dns_records_without_changes_and_leaves_foreign_ones() {
    let ctx = TestCtx::new("dns-mig").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let owner = unique_name("own");
    let r53 = route53(&ctx).await;
    let seed = &ctx.env.seed;
    let (adopted, foreign, other_owner) = (host("mig"), host("foreign"), host("theirs"));
    let ns = ctx.namespace.clone();
    // What external-dns with the same owner id left behind, in both zones.
    for zone in [&seed.public_zone_id, &seed.private_zone_id] {
        put_record(
            &r53,
            zone,
            ChangeAction::Create,
            &adopted,
            RrType::A,
            &["10.1.2.3"],
        )
        .await;
        let txt = format!(
            "\"heritage=external-dns,external-dns/owner={owner},external-dns/resource=crd/{ns}/migrated\""
        );
        put_record(
            &r53,
            zone,
            ChangeAction::Create,
            &format!("a-{adopted}"),
            RrType::Txt,
            &[txt.as_str()],
        )
        .await;
    }
    // A record nobody owns, which an object asks for with other values (in both zones, or the
    // private zone would rightly get it created).
    for zone in [&seed.public_zone_id, &seed.private_zone_id] {
        put_record(
            &r53,
            zone,
            ChangeAction::Create,
            &foreign,
            RrType::A,
            &["10.9.9.9"],
        )
        .await;
    }
    // A record another owner manages, which nothing here asks for.
    put_record(
        &r53,
        &seed.public_zone_id,
        ChangeAction::Create,
        &other_owner,
        RrType::A,
        &["10.8.8.8"],
    )
    .await;
    put_record(
        &r53,
        &seed.public_zone_id,
        ChangeAction::Create,
        &format!("a-{other_owner}"),
        RrType::Txt,
        &["\"heritage=external-dns,external-dns/owner=someone-else\""],
    )
    .await;

    ctx.apply(&format!(
        r#"
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: migrated
spec:
  endpoints:
  - {{dnsName: {adopted}, recordType: A, targets: [10.1.2.3]}}
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: grabby
spec:
  endpoints:
  - {{dnsName: {foreign}, recordType: A, targets: [10.0.0.7]}}
"#
    ))
    .await
    .expect("apply");
    let dns = Dns::start(&ctx, &owner, &[]);
    wait_for("migrated Ready", WAIT, || async {
        ready_condition(&ctx, "migrated")
            .await
            .filter(|(s, _, _)| s == "True")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    let (status, why, _) = wait_for("grabby not Ready", WAIT, || async {
        ready_condition(&ctx, "grabby")
            .await
            .filter(|(s, _, _)| s == "False")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    assert_eq!((status.as_str(), why.as_str()), ("False", "RecordNotOwned"));
    wait_for("NotOwned event", WAIT, || async {
        events_for(&ctx, "grabby")
            .await
            .into_iter()
            .any(|(r, _)| r == "RecordNotOwned")
            .then_some(())
    })
    .await
    .expect("event");
    // Adopted with zero writes: not one ChangeResourceRecordSets call.
    let writes = dns
        .counter(
            "causeway_aws_api_calls_total",
            &["operation=\"ChangeResourceRecordSets\""],
        )
        .await;
    let lists = dns
        .counter(
            "causeway_aws_api_calls_total",
            &["operation=\"ListResourceRecordSets\""],
        )
        .await;
    assert!(lists >= 2.0, "both zones were listed");
    assert_eq!(writes, 0.0, "{}", dns.metrics().await);
    // Foreign and other-owner records are exactly as they were.
    let f = records_named(&r53, &seed.public_zone_id, &foreign).await;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].resource_records()[0].value(), "10.9.9.9");
    assert!(
        records_named(&r53, &seed.public_zone_id, &format!("a-{foreign}"))
            .await
            .is_empty()
    );
    assert_eq!(
        records_named(&r53, &seed.public_zone_id, &other_owner)
            .await
            .len(),
        1
    );
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn dns_bad_inputs_fail_alone_with_conditions_and_events() {
    let ctx = TestCtx::new("dns-bad").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let owner = unique_name("own");
    let r53 = route53(&ctx).await;
    let seed = &ctx.env.seed;
    let dns = Dns::start(&ctx, &owner, &[]);
    // Wait for the first pass, so the zone caches are warm...
    wait_for("first DNS pass", WAIT, || async {
        (dns.passes().await >= 1.0).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    // ...then someone creates a record behind our back: our CREATE of it will be rejected.
    let clash = host("clash");
    put_record(
        &r53,
        &seed.public_zone_id,
        ChangeAction::Create,
        &clash,
        RrType::A,
        &["10.7.7.7"],
    )
    .await;

    let (good, conflict) = (host("good"), host("dup"));
    let long = format!("{}.causeway.test", "x".repeat(64));
    ctx.apply(&format!(
        r#"
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {{name: a-good}}
spec:
  endpoints:
  - {{dnsName: {good}, recordType: A, targets: [10.0.0.1]}}
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {{name: b-clash}}
spec:
  endpoints:
  - {{dnsName: {clash}, recordType: A, recordTTL: 300, targets: [10.7.7.7]}}
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {{name: c-long-label}}
spec:
  endpoints:
  - {{dnsName: {long}, recordType: A, targets: [10.0.0.2]}}
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {{name: d-outside}}
spec:
  endpoints:
  - {{dnsName: app.example.org, recordType: A, targets: [10.0.0.3]}}
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {{name: e-apex}}
spec:
  endpoints:
  - {{dnsName: causeway.test, recordType: CNAME, targets: [elsewhere.example.org]}}
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {{name: f-first}}
spec:
  endpoints:
  - {{dnsName: {conflict}, recordType: A, targets: [10.0.0.4]}}
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {{name: g-second}}
spec:
  endpoints:
  - {{dnsName: {conflict}, recordType: A, targets: [10.0.0.5]}}
"#
    ))
    .await
    .expect("apply");

    for (object, reasons) in [
        ("b-clash", &["Route53Rejected", "RecordNotOwned"][..]),
        ("c-long-label", &["InvalidHostname"][..]),
        ("d-outside", &["OutsideManagedZones"][..]),
        ("e-apex", &["CnameAtApex"][..]),
        ("g-second", &["Conflict"][..]),
    ] {
        let (_, why, _) = wait_for(&format!("{object} not Ready"), WAIT, || async {
            ready_condition(&ctx, object)
                .await
                .filter(|(s, _, _)| s == "False")
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
        assert!(reasons.contains(&why.as_str()), "{object}: {why}");
        wait_for(&format!("{object} warning event"), WAIT, || async {
            events_for(&ctx, object)
                .await
                .into_iter()
                .any(|(r, _)| reasons.contains(&r.as_str()))
                .then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    }
    // The rejected group failed alone, with an Event naming Route 53's refusal.
    assert!(
        events_for(&ctx, "b-clash")
            .await
            .iter()
            .any(|(r, _)| r == "Route53Rejected"),
        "{:?}",
        events_for(&ctx, "b-clash").await
    );
    assert!(
        dns.counter("causeway_dns_failed_groups_total", &[]).await >= 1.0,
        "{}",
        dns.metrics().await
    );
    // Neighbours are published.
    for object in ["a-good", "f-first"] {
        wait_for(&format!("{object} Ready"), WAIT, || async {
            ready_condition(&ctx, object)
                .await
                .filter(|(s, _, _)| s == "True")
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    }
    let sets = records_named(&r53, &seed.public_zone_id, &good).await;
    assert_eq!(of_type(&sets, RrType::A).len(), 1);
    let sets = records_named(&r53, &seed.public_zone_id, &conflict).await;
    assert_eq!(
        of_type(&sets, RrType::A)[0].resource_records()[0].value(),
        "10.0.0.4"
    );
    // The record made behind our back is untouched and not claimed.
    let sets = records_named(&r53, &seed.public_zone_id, &clash).await;
    assert_eq!(sets.len(), 1);
    assert!(
        records_named(&r53, &seed.public_zone_id, &format!("a-{clash}"))
            .await
            .is_empty()
    );
    ctx.cleanup().await.ok();
}

/// Figure: from the load balancer hostname landing in Ingress status to the record being in
/// Route 53, p50/p99 over many runs, with the default debounce.
#[tokio::test]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn bench_dns_latency_from_lb_hostname_to_route53() {
    let runs: usize = std::env::var("DNS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let ctx = TestCtx::new("dns-lat").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let owner = unique_name("own");
    // The default debounce (500ms), not the tests' 200ms.
    let dns = Dns::start(&ctx, &owner, &["--dns-debounce", "500ms"]);
    let (lb_host, _) = create_alb(&ctx, &unique_name("alb")).await;
    let r53 = route53(&ctx).await;
    let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    wait_for("first DNS pass", WAIT, || async {
        (dns.passes().await >= 1.0).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let name = host(&format!("lat{i}"));
        let ing = format!("lat-{i}");
        ctx.apply(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {ing}}}\nspec:\n  rules:\n  - host: {name}\n"
        ))
        .await
        .expect("apply");
        // Let the creation's own pass go by (it has nothing to publish yet).
        tokio::time::sleep(Duration::from_millis(800)).await;
        let start = Instant::now();
        patch_lb_hostname(&ingresses, &ing, &lb_host).await;
        loop {
            let sets = records_named(&r53, &ctx.env.seed.public_zone_id, &name).await;
            if !of_type(&sets, RrType::A).is_empty() {
                break;
            }
            assert!(start.elapsed() < WAIT, "no record\n{}", dns.proc.logs());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        samples.push(start.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    let pct =
        |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    let m = dns.metrics().await;
    println!(
        "dns latency, status patch -> record visible in Route 53 (moto), {runs} runs, debounce 500ms: p50 {:.3}s p99 {:.3}s max {:.3}s",
        pct(0.50),
        pct(0.99),
        samples[samples.len() - 1]
    );
    println!(
        "controller histogram causeway_dns_event_to_submit_seconds: count {} sum {:.3}s",
        sample_sum(&m, "causeway_dns_event_to_submit_seconds_count", &[]),
        sample_sum(&m, "causeway_dns_event_to_submit_seconds_sum", &[])
    );
    ctx.cleanup().await.ok();
}

/// Figure: Route 53 calls over 10 resync intervals with nothing changing.
#[tokio::test]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn bench_dns_calls_over_ten_idle_resyncs() {
    let ctx = TestCtx::new("dns-idle").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let owner = unique_name("own");
    let interval = 3u64;
    let iv = format!("{interval}s");
    let dns = Dns::start(
        &ctx,
        &owner,
        &["--dns-resync-interval", &iv, "--dns-zone-cache-ttl", &iv],
    );
    let name = host("idle");
    ctx.apply(&format!(
        "apiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: idle}}\nspec:\n  endpoints:\n  - {{dnsName: {name}, recordType: A, targets: [10.0.0.1]}}\n"
    ))
    .await
    .expect("apply");
    wait_for("Ready", WAIT, || async {
        ready_condition(&ctx, "idle")
            .await
            .filter(|(s, _, _)| s == "True")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    let ops = [
        "ListHostedZones",
        "ListResourceRecordSets",
        "ChangeResourceRecordSets",
        "ListTagsForResources",
    ];
    let read = |m: &str| -> Vec<f64> {
        ops.iter()
            .map(|op| {
                let label = format!("operation=\"{op}\"");
                sample_sum(m, "causeway_aws_api_calls_total", &[label.as_str()])
            })
            .collect()
    };
    let before = read(&dns.metrics().await);
    tokio::time::sleep(Duration::from_secs(interval * 10)).await;
    let after = read(&dns.metrics().await);
    println!("dns Route 53 calls over 10 idle resync intervals of {interval}s (2 managed zones):");
    for (i, op) in ops.iter().enumerate() {
        println!("  {op}: {}", after[i] - before[i]);
    }
    assert_eq!(after[2] - before[2], 0.0, "no writes while idle");
    ctx.cleanup().await.ok();
}

#[tokio::test]
async fn dns_a_zone_created_after_start_is_found_without_waiting_for_the_zone_cache() {
    let ctx = TestCtx::new("dns-late").await.expect("ctx");
    crate::crds::install(&ctx).await;
    let owner = unique_name("own");
    let domain = format!("{}.late.test", unique_name("zone"));
    let dns = Dns::start_for(&ctx, &owner, &domain, &[]);
    let (lb_host, _) = create_alb(&ctx, &unique_name("alb")).await;
    let name = format!("web.{domain}");
    ctx.apply(&format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - host: {name}
"#
    ))
    .await
    .expect("apply ingress");
    let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    patch_lb_hostname(&ingresses, "web", &lb_host).await;
    // No zone takes the name yet: the Ingress is told so.
    wait_for("OutsideManagedZones event", WAIT, || async {
        events_for(&ctx, "web")
            .await
            .iter()
            .any(|(reason, _)| reason == "OutsideManagedZones")
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));

    // The zone appears a while after the controller listed the zones (the zone cache holds
    // them for an hour).
    let r53 = route53(&ctx).await;
    let zone = r53
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(unique_name("late"))
        .send()
        .await
        .expect("CreateHostedZone");
    let zone_id = zone
        .hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .expect("zone id");
    let created = Instant::now();
    wait_for("records in the new zone", WAIT, || async {
        let sets = records_named(&r53, &zone_id, &name).await;
        (of_type(&sets, RrType::A).len() == 1).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    println!(
        "a zone created after start got its records {:.1} s later",
        created.elapsed().as_secs_f64()
    );

    ingresses
        .delete("web", &Default::default())
        .await
        .expect("delete");
    wait_for("records deleted", WAIT, || async {
        (records_named(&r53, &zone_id, &name).await.is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dns.proc.logs()));
    let _ = r53.delete_hosted_zone().id(&zone_id).send().await;
    ctx.cleanup().await.ok();
}
