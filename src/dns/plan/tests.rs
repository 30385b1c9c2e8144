use super::*;
use crate::dns::batch::{BatchLimits, batch};
use crate::dns::endpoint::{AliasTarget, Routing, RoutingPolicy, Ttl};
use crate::dns::registry::encode_value;
use proptest::prelude::*;

use std::collections::{BTreeMap, BTreeSet};

use crate::dns::endpoint::{DnsName, Endpoint, Record, RecordKey, RecordType, ResourceRef};
use crate::dns::registry::{OwnerLabels, RegistryError, TxtRegistry, decode_record};
use crate::dns::zones::{DomainFilter, Zone};

const OWNER: &str = "cluster-1";
const ALB: &str = "k8s-default-web-1234567890.us-east-1.elb.amazonaws.com";
const ALB_ZONE: &str = "Z35SXDOTRQ7X7K";

fn name(s: &str) -> DnsName {
    DnsName::parse_record_name(s).unwrap()
}

fn zone() -> Zone {
    Zone::new("/hostedzone/Z1", name("example.com"), false)
}

fn registry() -> TxtRegistry {
    TxtRegistry::new(OWNER, "", "", None).unwrap()
}

fn config(registry: &TxtRegistry, policy: Policy) -> PlanConfig<'_> {
    PlanConfig {
        registry,
        policy,
        default_ttl: 300,
        domain_filter: None,
    }
}

fn web() -> ResourceRef {
    ResourceRef::new("ingress", "default", "web")
}

// Records as Route 53 returns them.

fn a(n: &str, ips: &[&str]) -> Record {
    Record {
        name: name(n),
        record_type: RecordType::A,
        set_identifier: None,
        ttl: Some(300),
        values: ips.iter().map(|s| s.to_string()).collect(),
        alias: None,
        routing: Routing::default(),
    }
}

fn alias(n: &str, record_type: RecordType) -> Record {
    Record {
        name: name(n),
        record_type,
        set_identifier: None,
        ttl: None,
        values: BTreeSet::new(),
        alias: Some(AliasTarget::new(ALB, Some(ALB_ZONE.into()), true)),
        routing: Routing::default(),
    }
}

fn txt(n: &str, owner: &str, resource: &str) -> Record {
    let labels = OwnerLabels {
        owner: owner.into(),
        resource: Some(resource.into()),
        extra: BTreeMap::new(),
    };
    Record {
        name: name(n),
        record_type: RecordType::Txt,
        set_identifier: None,
        ttl: Some(300),
        values: [encode_value(&labels).unwrap()].into(),
        alias: None,
        routing: Routing::default(),
    }
}

fn weighted(mut record: Record, id: &str, weight: u8) -> Record {
    record.set_identifier = Some(id.into());
    record.routing.policy = RoutingPolicy::Weighted { weight };
    record
}

// What objects ask for.

fn want_a(n: &str, ips: &[&str]) -> Endpoint {
    Endpoint::new(DnsName::parse(n).unwrap(), RecordType::A, ips)
        .unwrap()
        .with_resource(web())
}

fn want_alias(n: &str, record_type: RecordType) -> Endpoint {
    Endpoint::alias(
        DnsName::parse(n).unwrap(),
        record_type,
        AliasTarget::new(ALB, Some(ALB_ZONE.into()), true),
    )
    .unwrap()
    .with_resource(web())
}

fn want_weighted(n: &str, ip: &str, id: &str, policy: RoutingPolicy) -> Endpoint {
    want_a(n, &[ip])
        .with_set_identifier(Some(id.into()))
        .with_routing(Routing {
            policy,
            health_check_id: None,
        })
}

/// "ACTION name TYPE" lines in plan order.
fn actions(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| format!("{} {} {}", c.action, c.record.name, c.record.record_type))
        .collect()
}

fn run(policy: Policy, desired: &[Endpoint], current: &[Record]) -> Plan {
    let registry = registry();
    let plan = plan(&zone(), desired, current, &config(&registry, policy));
    // Every plan in this module must apply cleanly and be stable.
    let applied = apply_to(current, &plan).expect("plan applies");
    let again = super::plan(&zone(), desired, &applied, &config(&registry, policy));
    assert!(again.is_empty(), "not idempotent: {:?}", actions(&again));
    plan
}

#[test]
fn new_record_comes_with_its_typed_txt() {
    let plan = run(
        Policy::Sync,
        &[want_a("app.example.com", &["10.0.0.1"])],
        &[],
    );
    assert_eq!(
        actions(&plan),
        ["CREATE app.example.com A", "CREATE a-app.example.com TXT"]
    );
    let value = plan.changes[1].record.values.first().unwrap();
    assert_eq!(
        value,
        "\"heritage=external-dns,external-dns/owner=cluster-1,external-dns/resource=ingress/default/web\""
    );
    assert!(
        plan.changes
            .iter()
            .all(|c| c.group.as_str() == "app.example.com")
    );
}

#[test]
fn matching_zone_gives_an_empty_plan() {
    let current = [
        a("app.example.com", &["10.0.0.1"]),
        txt("a-app.example.com", OWNER, "ingress/default/web"),
    ];
    let plan = run(
        Policy::Sync,
        &[want_a("app.example.com", &["10.0.0.1"])],
        &current,
    );
    assert_eq!(plan, Plan::default());
}

#[test]
fn formatting_differences_from_route53_do_not_cause_churn() {
    let mut current = a("app.example.com", &[]);
    current.record_type = RecordType::Aaaa;
    current.values = ["2001:DB8:0:0::1".to_string()].into();
    let mut alias_record = alias("lb.example.com", RecordType::A);
    alias_record.alias.as_mut().unwrap().dns_name = format!("{}.", ALB.to_uppercase());
    let desired = [
        Endpoint::new(
            DnsName::parse("app.example.com").unwrap(),
            RecordType::Aaaa,
            ["2001:db8::1"],
        )
        .unwrap()
        .with_resource(web()),
        want_alias("lb.example.com", RecordType::A),
    ];
    let plan = run(
        Policy::Sync,
        &desired,
        &[
            current,
            txt("aaaa-app.example.com", OWNER, "ingress/default/web"),
            alias_record,
            txt("a-lb.example.com", OWNER, "ingress/default/web"),
        ],
    );
    assert!(plan.is_empty(), "{:?}", actions(&plan));
}

#[test]
fn records_without_our_txt_are_never_touched() {
    let current = [
        a("manual.example.com", &["10.0.0.9"]),
        a("theirs.example.com", &["10.0.0.8"]),
        txt("a-theirs.example.com", "other-cluster", "ingress/x/y"),
    ];
    let desired = [
        want_a("manual.example.com", &["10.0.0.9"]),
        want_a("theirs.example.com", &["10.0.0.1"]),
    ];
    for policy in [Policy::Sync, Policy::UpsertOnly, Policy::CreateOnly] {
        let plan = run(policy, &desired, &current);
        assert!(plan.is_empty());
        assert_eq!(plan.errors.len(), 2);
        assert!(matches!(
            &plan.errors[0],
            PlanError::NotOwned { owner: None, .. }
        ));
        assert!(matches!(
            &plan.errors[1],
            PlanError::NotOwned { owner: Some(o), .. } if o == "other-cluster"
        ));
        assert_eq!(plan.errors[0].resource(), Some(&web()));
        // Not desired at all: still untouched, even under sync.
        let plan = run(policy, &[], &current);
        assert_eq!(plan, Plan::default());
    }
}

#[test]
fn a_foreign_txt_claim_blocks_creation() {
    let current = [txt("a-app.example.com", "other-cluster", "ingress/x/y")];
    let plan = run(
        Policy::Sync,
        &[want_a("app.example.com", &["10.0.0.1"])],
        &current,
    );
    assert!(plan.is_empty());
    assert!(matches!(plan.errors[..], [PlanError::NotOwned { .. }]));
}

#[test]
fn changed_targets_are_upserted_and_the_txt_stays() {
    let current = [
        a("app.example.com", &["10.0.0.1"]),
        txt("a-app.example.com", OWNER, "ingress/default/web"),
    ];
    let desired = [want_a("app.example.com", &["10.0.0.2"])];
    assert_eq!(
        actions(&run(Policy::Sync, &desired, &current)),
        ["UPSERT app.example.com A"]
    );
    assert_eq!(
        actions(&run(Policy::UpsertOnly, &desired, &current)),
        ["UPSERT app.example.com A"]
    );
    assert!(run(Policy::CreateOnly, &desired, &current).is_empty());
}

#[test]
fn undesired_records_go_only_under_sync() {
    let current = [
        a("old.example.com", &["10.0.0.1"]),
        txt("a-old.example.com", OWNER, "ingress/default/web"),
    ];
    assert_eq!(
        actions(&run(Policy::Sync, &[], &current)),
        ["DELETE old.example.com A", "DELETE a-old.example.com TXT"]
    );
    assert!(run(Policy::UpsertOnly, &[], &current).is_empty());
    assert!(run(Policy::CreateOnly, &[], &current).is_empty());
}

#[test]
fn alias_change_is_delete_and_create() {
    let current = [
        a("app.example.com", &["10.0.0.1"]),
        txt("a-app.example.com", OWNER, "ingress/default/web"),
    ];
    let plan = run(
        Policy::UpsertOnly,
        &[want_alias("app.example.com", RecordType::A)],
        &current,
    );
    assert_eq!(
        actions(&plan),
        ["DELETE app.example.com A", "CREATE app.example.com A"]
    );
    assert_eq!(plan.changes[1].record.ttl, None, "aliases carry no TTL");
}

#[test]
fn routing_policy_changes() {
    let current = [
        weighted(a("app.example.com", &["10.0.0.1"]), "blue", 10),
        weighted(
            txt("a-app.example.com", OWNER, "ingress/default/web"),
            "blue",
            10,
        ),
    ];
    let reweighted = [want_weighted(
        "app.example.com",
        "10.0.0.1",
        "blue",
        RoutingPolicy::Weighted { weight: 50 },
    )];
    assert_eq!(
        actions(&run(Policy::Sync, &reweighted, &current)),
        ["UPSERT app.example.com A", "UPSERT a-app.example.com TXT"],
        "the TXT copies the routing policy"
    );
    let latency = [want_weighted(
        "app.example.com",
        "10.0.0.1",
        "blue",
        RoutingPolicy::Latency {
            region: "us-east-1".into(),
        },
    )];
    assert_eq!(
        actions(&run(Policy::Sync, &latency, &current)),
        [
            "DELETE app.example.com A",
            "DELETE a-app.example.com TXT",
            "CREATE app.example.com A",
            "CREATE a-app.example.com TXT"
        ]
    );
}

#[test]
fn set_identifier_change_replaces_the_record() {
    let current = [
        weighted(a("app.example.com", &["10.0.0.1"]), "blue", 10),
        weighted(
            txt("a-app.example.com", OWNER, "ingress/default/web"),
            "blue",
            10,
        ),
    ];
    let desired = [want_weighted(
        "app.example.com",
        "10.0.0.1",
        "green",
        RoutingPolicy::Weighted { weight: 10 },
    )];
    let expected = [
        "DELETE app.example.com A",
        "DELETE a-app.example.com TXT",
        "CREATE app.example.com A",
        "CREATE a-app.example.com TXT",
    ];
    assert_eq!(actions(&run(Policy::Sync, &desired, &current)), expected);
    assert_eq!(
        actions(&run(Policy::UpsertOnly, &desired, &current)),
        expected
    );
    assert_eq!(
        actions(&run(Policy::CreateOnly, &desired, &current)),
        ["CREATE app.example.com A", "CREATE a-app.example.com TXT"]
    );
}

#[test]
fn cname_to_alias_swap_is_one_group() {
    let mut cname = a("app.example.com", &[]);
    cname.record_type = RecordType::Cname;
    cname.values = ["old-lb.example.net".to_string()].into();
    let current = [
        cname,
        txt("cname-app.example.com", OWNER, "ingress/default/web"),
    ];
    let desired = [
        want_alias("app.example.com", RecordType::A),
        want_alias("app.example.com", RecordType::Aaaa),
    ];
    let plan = run(Policy::UpsertOnly, &desired, &current);
    assert_eq!(
        actions(&plan),
        [
            "DELETE app.example.com CNAME",
            "DELETE cname-app.example.com TXT",
            "CREATE app.example.com A",
            "CREATE a-app.example.com TXT",
            "CREATE app.example.com AAAA",
            "CREATE aaaa-app.example.com TXT",
        ]
    );
    let (batches, _) = batch(&plan.changes, &BatchLimits::default());
    assert_eq!(batches.len(), 1);
}

#[test]
fn cname_conflicts_with_foreign_records_at_the_name() {
    let current = [a("app.example.com", &["10.0.0.9"])];
    let cname = Endpoint::new(
        DnsName::parse("app.example.com").unwrap(),
        RecordType::Cname,
        ["lb.example.net"],
    )
    .unwrap()
    .with_resource(web());
    let plan = run(Policy::Sync, &[cname], &current);
    assert!(plan.is_empty());
    assert!(matches!(
        plan.errors[..],
        [PlanError::CnameConflict {
            other: RecordType::A,
            ..
        }]
    ));
}

#[test]
fn migration_from_current_external_dns_is_churn_free() {
    let current = [
        alias("app.example.com", RecordType::A),
        alias("app.example.com", RecordType::Aaaa),
        txt("a-app.example.com", OWNER, "ingress/default/web"),
        txt("aaaa-app.example.com", OWNER, "ingress/default/web"),
        weighted(a("api.example.com", &["10.0.0.1"]), "blue", 90),
        weighted(
            txt("a-api.example.com", OWNER, "crd/default/api"),
            "blue",
            90,
        ),
    ];
    let api = want_weighted(
        "api.example.com",
        "10.0.0.1",
        "blue",
        RoutingPolicy::Weighted { weight: 90 },
    )
    .with_resource(ResourceRef::new("crd", "default", "api"));
    let desired = [
        want_alias("app.example.com", RecordType::A),
        want_alias("app.example.com", RecordType::Aaaa),
        api,
    ];
    let plan = run(Policy::Sync, &desired, &current);
    assert_eq!(plan, Plan::default());
}

#[test]
fn migration_from_old_formats_only_adds_typed_txts() {
    // external-dns before v0.12 wrote untyped TXTs, later ones also `cname-` for A aliases.
    let current = [
        alias("app.example.com", RecordType::A),
        txt("app.example.com", OWNER, "ingress/default/web"),
        txt("cname-app.example.com", OWNER, "ingress/default/web"),
        a("www.example.com", &["10.0.0.1"]),
        txt("www.example.com", OWNER, "ingress/default/web"),
    ];
    let desired = [
        want_alias("app.example.com", RecordType::A),
        want_a("www.example.com", &["10.0.0.1"]),
    ];
    let plan = run(Policy::Sync, &desired, &current);
    assert_eq!(
        actions(&plan),
        [
            "CREATE a-app.example.com TXT",
            "CREATE a-www.example.com TXT"
        ]
    );
    // Deleting the records later takes the legacy TXTs along.
    let applied = apply_to(&current, &plan).unwrap();
    let cleanup = run(Policy::Sync, &[], &applied);
    assert_eq!(
        actions(&cleanup),
        [
            "DELETE app.example.com A",
            "DELETE a-app.example.com TXT",
            "DELETE app.example.com TXT",
            "DELETE cname-app.example.com TXT",
            "DELETE www.example.com A",
            "DELETE a-www.example.com TXT",
            "DELETE www.example.com TXT",
        ]
    );
}

#[test]
fn legacy_txt_stays_while_a_sibling_lives() {
    let current = [
        a("www.example.com", &["10.0.0.1"]),
        {
            let mut mx = a("www.example.com", &[]);
            mx.record_type = RecordType::Mx;
            mx.values = ["10 mail.example.com".to_string()].into();
            mx
        },
        txt("www.example.com", OWNER, "ingress/default/web"),
    ];
    let plan = run(
        Policy::Sync,
        &[want_a("www.example.com", &["10.0.0.1"])],
        &current,
    );
    assert_eq!(
        actions(&plan),
        ["DELETE www.example.com MX", "CREATE a-www.example.com TXT"]
    );
}

#[test]
fn cname_replacing_a_legacy_owned_record_removes_the_untyped_txt() {
    let current = [
        a("www.example.com", &["10.0.0.1"]),
        txt("www.example.com", OWNER, "ingress/default/web"),
    ];
    let cname = Endpoint::new(
        DnsName::parse("www.example.com").unwrap(),
        RecordType::Cname,
        ["lb.example.net"],
    )
    .unwrap()
    .with_resource(web());
    let plan = run(Policy::Sync, &[cname], &current);
    assert_eq!(
        actions(&plan),
        [
            "DELETE www.example.com A",
            "DELETE www.example.com TXT",
            "CREATE www.example.com CNAME",
            "CREATE cname-www.example.com TXT"
        ]
    );
}

fn want_txt(n: &str, value: &str) -> Endpoint {
    Endpoint::new(DnsName::parse(n).unwrap(), RecordType::Txt, [value])
        .unwrap()
        .with_resource(web())
}

#[test]
fn ownership_record_names_are_not_available_to_users() {
    let current = [
        a("app.example.com", &["10.0.0.1"]),
        txt("a-app.example.com", OWNER, "ingress/default/web"),
    ];
    let desired = [
        want_a("app.example.com", &["10.0.0.1"]),
        want_txt("a-app.example.com", "hello"),
    ];
    let plan = run(Policy::Sync, &desired, &current);
    assert!(plan.is_empty());
    assert!(matches!(
        plan.errors[..],
        [PlanError::CollidesWithOwnershipRecord { .. }]
    ));
}

#[test]
fn a_user_record_on_the_ownership_name_blocks_the_record() {
    let mut cname = a("a-app.example.com", &[]);
    cname.record_type = RecordType::Cname;
    cname.values = ["elsewhere.example.net".to_string()].into();
    let user_txt = {
        let mut t = a("a-www.example.com", &[]);
        t.record_type = RecordType::Txt;
        t.values = ["\"v=spf1 -all\"".to_string()].into();
        t
    };
    let desired = [
        want_a("app.example.com", &["10.0.0.1"]),
        want_a("www.example.com", &["10.0.0.1"]),
    ];
    let plan = run(Policy::Sync, &desired, &[cname, user_txt]);
    assert!(
        plan.is_empty(),
        "a record must never be created without its TXT"
    );
    assert!(
        plan.errors
            .iter()
            .all(|e| matches!(e, PlanError::OwnershipNameTaken { .. }))
    );
    assert_eq!(plan.errors.len(), 2);
}

#[test]
fn a_txt_record_replaces_our_untyped_txt_only_when_nothing_depends_on_it() {
    let current = [
        a("api.example.com", &["10.0.0.1"]),
        txt("api.example.com", OWNER, "ingress/default/web"),
    ];
    let desired = [want_txt("api.example.com", "hello")];
    assert_eq!(
        actions(&run(Policy::Sync, &desired, &current)),
        [
            "DELETE api.example.com A",
            "DELETE api.example.com TXT",
            "CREATE api.example.com TXT",
            "CREATE txt-api.example.com TXT"
        ]
    );
    // Under upsert-only the A record stays, and it is owned only through that TXT.
    let plan = run(Policy::UpsertOnly, &desired, &current);
    assert!(plan.is_empty());
    assert!(matches!(
        plan.errors[..],
        [PlanError::CollidesWithOwnershipRecord { .. }]
    ));
}

#[test]
fn resource_change_updates_only_the_txt() {
    let current = [
        a("app.example.com", &["10.0.0.1"]),
        txt("a-app.example.com", OWNER, "ingress/default/old"),
    ];
    let plan = run(
        Policy::Sync,
        &[want_a("app.example.com", &["10.0.0.1"])],
        &current,
    );
    assert_eq!(actions(&plan), ["UPSERT a-app.example.com TXT"]);
}

#[test]
fn apex_needs_a_dotted_prefix() {
    let desired = [want_alias("example.com", RecordType::A)];
    let plan = run(Policy::Sync, &desired, &[]);
    assert!(plan.is_empty());
    assert!(matches!(
        plan.errors[..],
        [PlanError::OwnershipOutsideZone { .. }]
    ));

    let registry = TxtRegistry::new(OWNER, "_own-%{record_type}.", "", None).unwrap();
    let prefixed = super::plan(&zone(), &desired, &[], &config(&registry, Policy::Sync));
    assert_eq!(
        actions(&prefixed),
        ["CREATE example.com A", "CREATE _own-a.example.com TXT"]
    );
}

#[test]
fn wildcards_use_the_replacement() {
    let registry = TxtRegistry::new(OWNER, "", "", Some("wildcard")).unwrap();
    let desired = [want_a("*.example.com", &["10.0.0.1"])];
    let plan = plan(&zone(), &desired, &[], &config(&registry, Policy::Sync));
    assert_eq!(
        actions(&plan),
        [
            "CREATE *.example.com A",
            "CREATE a-wildcard.example.com TXT"
        ]
    );
    let applied = apply_to(&[], &plan).unwrap();
    assert!(
        super::plan(
            &zone(),
            &desired,
            &applied,
            &config(&registry, Policy::Sync)
        )
        .is_empty()
    );
}

#[test]
fn duplicates_and_stray_names_are_reported() {
    let other = ResourceRef::new("ingress", "zzz", "late");
    let desired = [
        want_a("app.example.com", &["10.0.0.2"]).with_resource(other.clone()),
        want_a("app.example.com", &["10.0.0.1"]),
        want_a("app.elsewhere.org", &["10.0.0.1"]),
    ];
    let plan = run(Policy::Sync, &desired, &[]);
    assert_eq!(
        actions(&plan),
        ["CREATE app.example.com A", "CREATE a-app.example.com TXT"]
    );
    assert!(plan.changes[0].record.values.contains("10.0.0.1"));
    assert!(matches!(&plan.errors[0], PlanError::OutsideZone { .. }));
    assert!(
        matches!(&plan.errors[1], PlanError::Duplicate { resource: Some(r), .. } if *r == other)
    );
}

#[test]
fn domain_filter_keeps_other_records_out_of_reach() {
    let current = [
        a("old.team-b.example.com", &["10.0.0.1"]),
        txt("a-old.team-b.example.com", OWNER, "ingress/default/web"),
    ];
    let registry = registry();
    let filter = DomainFilter::new(&["team-a.example.com"], &[] as &[&str]);
    let config = PlanConfig {
        domain_filter: Some(&filter),
        ..config(&registry, Policy::Sync)
    };
    let plan = plan(&zone(), &[], &current, &config);
    assert_eq!(plan, Plan::default());
}

#[test]
fn apply_to_behaves_like_route53() {
    let record = a("app.example.com", &["10.0.0.1"]);
    let change = |action, record: &Record| Change {
        action,
        record: record.clone(),
        group: record.name.clone(),
    };
    let create_twice = Plan {
        changes: vec![
            change(Action::Create, &record),
            change(Action::Create, &record),
        ],
        errors: vec![],
    };
    assert!(matches!(
        apply_to(&[], &create_twice),
        Err(ApplyError::CreateExisting(_))
    ));
    let delete_missing = Plan {
        changes: vec![change(Action::Delete, &record)],
        errors: vec![],
    };
    assert!(matches!(
        apply_to(&[], &delete_missing),
        Err(ApplyError::DeleteMissing(_))
    ));
    let other = a("app.example.com", &["10.0.0.2"]);
    assert!(matches!(
        apply_to(&[other], &delete_missing),
        Err(ApplyError::DeleteMismatch(_))
    ));
    let mut cname = record.clone();
    cname.record_type = RecordType::Cname;
    cname.values = ["x.example.net".to_string()].into();
    let clash = Plan {
        changes: vec![change(Action::Create, &cname)],
        errors: vec![],
    };
    assert!(matches!(
        apply_to(&[record], &clash),
        Err(ApplyError::CnameConflict { .. })
    ));
}

/// A zone of `hosts` A records, each with its TXT, of which every hundredth wants a new IP.
fn large_zone(hosts: usize) -> (Vec<Endpoint>, Vec<Record>) {
    let mut desired = Vec::with_capacity(hosts);
    let mut current = Vec::with_capacity(hosts * 2);
    for i in 0..hosts {
        let host = format!("host{i}.example.com");
        current.push(a(&host, &["10.0.0.1"]));
        current.push(txt(
            &format!("a-host{i}.example.com"),
            OWNER,
            "ingress/default/web",
        ));
        let ip = if i % 100 == 0 { "10.0.0.2" } else { "10.0.0.1" };
        desired.push(want_a(&host, &[ip]));
    }
    (desired, current)
}

#[test]
fn twenty_thousand_records_with_one_percent_changed() {
    let (desired, current) = large_zone(20_000);
    let registry = registry();
    let config = config(&registry, Policy::Sync);
    let plan = plan(&zone(), &desired, &current, &config);
    assert_eq!(plan.changes.len(), 200);
    assert!(plan.changes.iter().all(|c| c.action == Action::Upsert));
    let (batches, errors) = batch(&plan.changes, &BatchLimits::default());
    assert!(errors.is_empty());
    // 200 UPSERTs count as 400 changes: one call.
    assert_eq!(batches.len(), 1);
    let applied = apply_to(&current, &plan).unwrap();
    assert!(super::plan(&zone(), &desired, &applied, &config).is_empty());
}

// Property tests over small zones where everything can collide.
mod properties;
