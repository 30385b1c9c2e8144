//! Planner figures: a 20,000-record zone with 1% of it changed.
//!
//! `cargo bench --bench dns_plan` prints the planning time (criterion) and, once per scenario,
//! how many ChangeResourceRecordSets calls the changes pack into, next to the goal
//! ceil(changes / 1000).

use std::hint::black_box;

use causeway::dns::registry::encode_value;
use causeway::dns::{
    Action, BatchLimits, DnsName, Endpoint, OwnerLabels, PlanConfig, Policy, Record, RecordType,
    ResourceRef, Routing, TxtRegistry, Zone, batch, plan,
};
use criterion::{Criterion, criterion_group, criterion_main};

const OWNER: &str = "bench";

fn name(s: &str) -> DnsName {
    DnsName::parse(s).expect("valid name")
}

fn a_record(host: &str, ip: &str) -> Record {
    Record {
        name: name(host),
        record_type: RecordType::A,
        set_identifier: None,
        ttl: Some(300),
        values: [ip.to_string()].into(),
        alias: None,
        routing: Routing::default(),
    }
}

fn txt_record(host: &str, resource: &ResourceRef) -> Record {
    let value = encode_value(&OwnerLabels::new(OWNER, Some(resource))).expect("encodable");
    Record {
        name: name(&format!("a-{host}")),
        record_type: RecordType::Txt,
        set_identifier: None,
        ttl: Some(300),
        values: [value].into(),
        alias: None,
        routing: Routing::default(),
    }
}

/// `hosts` owned A records with their TXT (2 × hosts record sets). 1% of the hosts change:
/// a third get a new address (UPSERT), a third are new (CREATE), a third are gone (DELETE).
fn zone_with_changes(hosts: usize) -> (Vec<Endpoint>, Vec<Record>) {
    let resource = ResourceRef::new("ingress", "default", "web");
    let mut desired = Vec::with_capacity(hosts);
    let mut current = Vec::with_capacity(hosts * 2);
    for i in 0..hosts {
        let host = format!("host{i}.example.com");
        let changed = i % 100 == 0;
        let kind = (i / 100) % 3;
        // A deleted host exists but is not desired; a created one is desired but not present.
        let present = !(changed && kind == 1);
        let wanted = !(changed && kind == 2);
        if present {
            current.push(a_record(&host, "10.0.0.1"));
            current.push(txt_record(&host, &resource));
        }
        if wanted {
            let ip = if changed && kind == 0 {
                "10.0.0.2"
            } else {
                "10.0.0.1"
            };
            desired.push(
                Endpoint::new(name(&host), RecordType::A, [ip])
                    .expect("valid endpoint")
                    .with_resource(resource.clone()),
            );
        }
    }
    (desired, current)
}

fn bench(c: &mut Criterion) {
    let registry = TxtRegistry::new(OWNER, "", "", None).expect("registry");
    let config = PlanConfig {
        registry: &registry,
        policy: Policy::Sync,
        default_ttl: 300,
        domain_filter: None,
    };
    let zone = Zone::new("ZBENCH", name("example.com"), false);
    for (label, hosts) in [
        (
            "20k record sets (10k hosts + TXT), 1% of hosts changed",
            10_000,
        ),
        (
            "40k record sets (20k hosts + TXT), 1% of hosts changed",
            20_000,
        ),
    ] {
        let (desired, current) = zone_with_changes(hosts);
        let planned = plan(&zone, &desired, &current, &config);
        let (batches, errors) = batch(&planned.changes, &BatchLimits::default());
        assert!(errors.is_empty());
        let weight: usize = planned
            .changes
            .iter()
            .map(|ch| if ch.action == Action::Upsert { 2 } else { 1 })
            .sum();
        println!(
            "{label}: {} record sets, {} changes ({} counting an UPSERT twice, as Route 53 does) -> {} ChangeResourceRecordSets calls; goal ceil(changes/1000) = {}",
            current.len(),
            planned.changes.len(),
            weight,
            batches.len(),
            planned.changes.len().div_ceil(1000),
        );
        c.bench_function(&format!("plan {label}"), |b| {
            b.iter(|| {
                plan(
                    black_box(&zone),
                    black_box(&desired),
                    black_box(&current),
                    &config,
                )
            })
        });
        c.bench_function(&format!("plan+batch {label}"), |b| {
            b.iter(|| {
                let p = plan(&zone, black_box(&desired), black_box(&current), &config);
                batch(&p.changes, &BatchLimits::default()).0.len()
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
