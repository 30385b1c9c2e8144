use super::*;

const LABELS: [&str; 5] = ["app", "www", "api", "*", "@"];
const SETS: [Option<&str>; 3] = [None, Some("blue"), Some("green")];

#[derive(Debug, Clone, Copy)]
enum Owned {
    Typed,
    Legacy,
    Foreign,
    Unowned,
}

#[derive(Debug, Clone, Copy)]
struct Spec {
    label: usize,
    kind: usize,
    set: usize,
    variant: u8,
}

fn host(spec: &Spec) -> DnsName {
    match LABELS[spec.label] {
        "@" => name("example.com"),
        label => name(&format!("{label}.example.com")),
    }
}

fn spec_routing(spec: &Spec) -> Routing {
    let policy = match (SETS[spec.set], spec.variant % 3) {
        (None, _) => RoutingPolicy::Simple,
        (Some(_), 0) => RoutingPolicy::Latency {
            region: format!("us-east-{}", spec.variant % 2 + 1),
        },
        (Some(_), _) => RoutingPolicy::Weighted {
            weight: spec.variant,
        },
    };
    Routing {
        policy,
        health_check_id: None,
    }
}

/// The endpoint a spec describes; specs with equal fields describe equal records.
fn spec_endpoint(spec: &Spec) -> Endpoint {
    let n = host(spec);
    let v = spec.variant;
    let endpoint = match spec.kind {
        0 => Endpoint::new(n, RecordType::A, [format!("10.0.0.{}", v % 4)]),
        1 => Endpoint::new(n, RecordType::Aaaa, [format!("fd00::{}", v % 4)]),
        2 => Endpoint::new(n, RecordType::Cname, [format!("t{}.example.net", v % 3)]),
        3 => Endpoint::alias(
            n,
            RecordType::A,
            AliasTarget::new(
                &format!("lb{}.us-east-1.elb.amazonaws.com", v % 2),
                Some(ALB_ZONE.into()),
                true,
            ),
        ),
        _ => Endpoint::new(n, RecordType::Txt, [format!("user {}", v % 3)]),
    };
    endpoint
        .unwrap()
        .with_ttl((v % 2 == 1).then(|| Ttl::new(60).unwrap()))
        .with_set_identifier(SETS[spec.set].map(str::to_string))
        .with_routing(spec_routing(spec))
        .with_resource(ResourceRef::new(
            "ingress",
            "default",
            &format!("o{}", v % 2),
        ))
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (0..LABELS.len(), 0usize..5, 0..SETS.len(), 0u8..6).prop_map(|(label, kind, set, variant)| {
        Spec {
            label,
            kind,
            set,
            variant,
        }
    })
}

fn owned_strategy() -> impl Strategy<Value = Owned> {
    prop_oneof![
        Just(Owned::Typed),
        Just(Owned::Legacy),
        Just(Owned::Foreign),
        Just(Owned::Unowned)
    ]
}

fn registries() -> [TxtRegistry; 3] {
    [
        registry(),
        TxtRegistry::new(OWNER, "_own-%{record_type}.", "", None).unwrap(),
        TxtRegistry::new(OWNER, "", "", Some("wildcard")).unwrap(),
    ]
}

/// Inserts records only if Route 53 would accept them together with what is there.
fn try_insert(zone_records: &mut BTreeMap<RecordKey, Record>, records: Vec<Record>) {
    let mut trial = zone_records.clone();
    for record in &records {
        if !record.name.is_within(&zone().name)
            || trial.insert(record.key(), record.clone()).is_some()
        {
            return;
        }
    }
    for record in &records {
        let types: BTreeSet<RecordType> = trial
            .keys()
            .filter(|k| k.name == record.name)
            .map(|k| k.record_type)
            .collect();
        if types.contains(&RecordType::Cname) && types.len() > 1 {
            return;
        }
    }
    *zone_records = trial;
}

fn build_current(registry: &TxtRegistry, specs: &[(Spec, Owned)]) -> Vec<Record> {
    let mut records = BTreeMap::new();
    for (spec, owned) in specs {
        if spec.kind == 2 && LABELS[spec.label] == "@" {
            continue; // Route 53 has SOA and NS at the apex.
        }
        let endpoint = spec_endpoint(spec);
        let record = endpoint.to_record("Z1", 300);
        let labels = |owner: &str| OwnerLabels::new(owner, endpoint.resource.as_ref());
        let copy_routing = |mut txt: Record| {
            txt.set_identifier = record.set_identifier.clone();
            txt.routing = record.routing.clone();
            txt
        };
        let legacy = |txt_name: Result<DnsName, RegistryError>| -> Option<Record> {
            let mut t = registry
                .ownership_record(&record, &labels(OWNER), 300)
                .ok()?;
            t.name = txt_name.ok()?;
            Some(copy_routing(t))
        };
        let ownership = match owned {
            Owned::Typed => registry.ownership_record(&record, &labels(OWNER), 300).ok(),
            Owned::Foreign => registry
                .ownership_record(&record, &labels("other"), 300)
                .ok(),
            Owned::Legacy if record.is_alias() => {
                legacy(registry.txt_name(&record.name, RecordType::Cname))
            }
            Owned::Legacy => legacy(registry.legacy_txt_name(&record.name)),
            Owned::Unowned => None,
        };
        let mut batch = vec![record];
        match (owned, ownership) {
            (Owned::Unowned, _) => {}
            (_, Some(txt)) => batch.push(txt),
            (_, None) => continue,
        }
        try_insert(&mut records, batch);
    }
    records.into_values().collect()
}

/// Ownership computed the other way round from the planner: from record to TXT name.
fn reference_owner(
    registry: &TxtRegistry,
    records: &BTreeMap<RecordKey, &Record>,
    record: &Record,
) -> Option<String> {
    let owner_at = |txt_name: Result<DnsName, RegistryError>| -> Option<String> {
        let key = RecordKey {
            name: txt_name.ok()?,
            record_type: RecordType::Txt,
            set_identifier: record.set_identifier.clone(),
        };
        decode_record(records.get(&key)?).map(|l| l.owner)
    };
    owner_at(registry.txt_name(&record.name, record.record_type))
        .or_else(|| {
            (record.record_type == RecordType::A && record.is_alias())
                .then(|| owner_at(registry.txt_name(&record.name, RecordType::Cname)))
                .flatten()
        })
        .or_else(|| {
            (record.record_type != RecordType::Aaaa)
                .then(|| owner_at(registry.legacy_txt_name(&record.name)))
                .flatten()
        })
}

fn policy_strategy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Sync),
        Just(Policy::UpsertOnly),
        Just(Policy::CreateOnly)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn planning_is_idempotent_and_only_touches_our_records(
        current_specs in proptest::collection::vec((spec_strategy(), owned_strategy()), 0..14),
        desired_picks in proptest::collection::vec((0u8..3, any::<proptest::sample::Index>(), spec_strategy()), 0..10),
        policy in policy_strategy(),
        which in 0usize..3,
    ) {
        let registry = &registries()[which];
        let current = build_current(registry, &current_specs);
        // Mostly records that exist, as they are or changed, so updates get exercised.
        let desired_specs: Vec<Spec> = desired_picks
            .iter()
            .map(|(mode, index, random)| match (mode, current_specs.is_empty()) {
                (_, true) | (0, _) => *random,
                (1, _) => current_specs[index.index(current_specs.len())].0,
                _ => Spec {
                    variant: random.variant,
                    ..current_specs[index.index(current_specs.len())].0
                },
            })
            .collect();
        let desired: Vec<Endpoint> = desired_specs
            .iter()
            .filter(|s| !(s.kind == 2 && LABELS[s.label] == "@"))
            .map(spec_endpoint)
            .collect();
        let config = config(registry, policy);
        let plan = plan(&zone(), &desired, &current, &config);

        let by_key: BTreeMap<RecordKey, &Record> = current.iter().map(|r| (r.key(), r)).collect();
        let mut groups_seen: Vec<&DnsName> = Vec::new();
        let mut deleted_in_group: BTreeSet<RecordKey> = BTreeSet::new();
        for change in &plan.changes {
            if groups_seen.last() != Some(&&change.group) {
                prop_assert!(!groups_seen.contains(&&change.group), "group {} is split", change.group);
                groups_seen.push(&change.group);
                deleted_in_group.clear();
            }
            let key = change.record.key();
            match (change.action, by_key.get(&key)) {
                (Action::Create, Some(_)) => prop_assert!(
                    deleted_in_group.contains(&key),
                    "CREATE of existing {}", key
                ),
                (Action::Create, None) => {}
                (_, None) => prop_assert!(change.action == Action::Upsert, "{} of missing {}", change.action, key),
                (_, Some(existing)) => {
                    let owner = match decode_record(existing) {
                        Some(labels) => Some(labels.owner),
                        None => reference_owner(registry, &by_key, existing),
                    };
                    prop_assert_eq!(owner.as_deref(), Some(OWNER), "{} of {} owned by {:?}", change.action, key, owner);
                }
            }
            if change.action == Action::Delete {
                deleted_in_group.insert(key);
            }
        }

        let applied = apply_to(&current, &plan);
        prop_assert!(applied.is_ok(), "{:?}\nchanges: {:?}", applied, actions(&plan));
        let again = super::plan(&zone(), &desired, &applied.unwrap(), &config);
        prop_assert!(again.is_empty(), "second plan: {:?}\nfirst: {:?}", actions(&again), actions(&plan));
    }

    #[test]
    fn an_empty_desired_set_under_sync_removes_exactly_our_records(
        current_specs in proptest::collection::vec((spec_strategy(), owned_strategy()), 0..14),
    ) {
        let registry = &registries()[0];
        let current = build_current(registry, &current_specs);
        let plan = plan(&zone(), &[], &current, &config(registry, Policy::Sync));
        let applied = apply_to(&current, &plan).unwrap();
        let by_key: BTreeMap<RecordKey, &Record> = applied.iter().map(|r| (r.key(), r)).collect();
        for record in &applied {
            if decode_record(record).is_none() {
                let owner = reference_owner(registry, &by_key, record);
                prop_assert_ne!(owner.as_deref(), Some(OWNER), "{} survived", record.key());
            }
        }
    }
}
