//! Packing planned changes into ChangeResourceRecordSets calls.
//!
//! Route 53 limits one request to 1,000 ResourceRecord elements and 32,000 characters across all
//! Value elements, and counts both twice for an UPSERT. A group (a record, its ownership TXT, a
//! DELETE+CREATE pair) is never split, because Route 53 applies a request atomically and a
//! record must never land without its TXT.

use std::collections::HashMap;

use super::endpoint::DnsName;
use super::plan::{Action, Change};

/// Per-request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Change elements per request, an UPSERT counting twice (external-dns's batch size).
    pub max_changes: usize,
    /// ResourceRecord elements per request, an UPSERT counting twice.
    pub max_records: usize,
    /// Characters in Value elements per request, an UPSERT counting twice.
    pub max_value_chars: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_changes: 1000,
            max_records: 1000,
            max_value_chars: 32_000,
        }
    }
}

/// What a change or batch costs against the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub changes: usize,
    pub records: usize,
    pub value_chars: usize,
}

impl Cost {
    fn add(self, other: Cost) -> Cost {
        Cost {
            changes: self.changes + other.changes,
            records: self.records + other.records,
            value_chars: self.value_chars + other.value_chars,
        }
    }

    fn fits(self, limits: &BatchLimits) -> bool {
        self.changes <= limits.max_changes
            && self.records <= limits.max_records
            && self.value_chars <= limits.max_value_chars
    }
}

/// Counts a change the way Route 53 does. An alias has no ResourceRecord elements, but is
/// counted as one so that alias-only batches still respect the change limit.
pub fn change_cost(change: &Change) -> Cost {
    let factor = if change.action == Action::Upsert {
        2
    } else {
        1
    };
    Cost {
        changes: factor,
        records: change.record.values.len().max(1) * factor,
        value_chars: change.record.value_chars() * factor,
    }
}

/// One ChangeResourceRecordSets request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub changes: Vec<Change>,
    pub cost: Cost,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error(
        "changes for {group} exceed one Route 53 request ({} changes, {} records, {} value characters)",
        .cost.changes, .cost.records, .cost.value_chars
    )]
    GroupTooLarge { group: DnsName, cost: Cost },
}

/// Groups in order of first appearance, each keeping its changes' order.
fn groups(changes: &[Change]) -> Vec<Vec<Change>> {
    let mut position: HashMap<&DnsName, usize> = HashMap::new();
    let mut out: Vec<Vec<Change>> = Vec::new();
    for change in changes {
        let index = *position.entry(&change.group).or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[index].push(change.clone());
    }
    out
}

fn batch_of(changes: Vec<Change>) -> Batch {
    let cost = changes
        .iter()
        .map(change_cost)
        .fold(Cost::default(), Cost::add);
    Batch { changes, cost }
}

/// Packs groups greedily, in plan order. A group too large for any request is reported and left
/// out, so that it cannot hold back the others.
pub fn batch(changes: &[Change], limits: &BatchLimits) -> (Vec<Batch>, Vec<BatchError>) {
    let mut batches: Vec<Batch> = Vec::new();
    let mut errors = Vec::new();
    let mut open = Batch::default();
    for group in groups(changes) {
        let group = batch_of(group);
        if !group.cost.fits(limits) {
            if let Some(first) = group.changes.first() {
                errors.push(BatchError::GroupTooLarge {
                    group: first.group.clone(),
                    cost: group.cost,
                });
            }
            continue;
        }
        if !open.cost.add(group.cost).fits(limits) {
            batches.push(std::mem::take(&mut open));
        }
        open.cost = open.cost.add(group.cost);
        open.changes.extend(group.changes);
    }
    if !open.changes.is_empty() {
        batches.push(open);
    }
    (batches, errors)
}

/// After a batch fails, retry each group alone so one bad record fails by itself.
pub fn split_groups(batch: &Batch) -> Vec<Batch> {
    groups(&batch.changes).into_iter().map(batch_of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::endpoint::{Record, RecordType, Routing};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn record(name: &str, record_type: RecordType, values: &[&str]) -> Record {
        Record {
            name: DnsName::parse(name).unwrap(),
            record_type,
            set_identifier: None,
            ttl: Some(300),
            values: values.iter().map(|v| v.to_string()).collect(),
            alias: None,
            routing: Routing::default(),
        }
    }

    fn change(action: Action, group: &str, record: Record) -> Change {
        Change {
            action,
            record,
            group: DnsName::parse(group).unwrap(),
        }
    }

    /// A record and its ownership TXT, as the planner emits them.
    fn pair(action: Action, i: usize) -> Vec<Change> {
        let host = format!("host{i}.example.com");
        vec![
            change(action, &host, record(&host, RecordType::A, &["10.0.0.1"])),
            change(
                action,
                &host,
                record(
                    &format!("a-host{i}.example.com"),
                    RecordType::Txt,
                    &["\"heritage=external-dns,external-dns/owner=c1\""],
                ),
            ),
        ]
    }

    #[test]
    fn upserts_count_twice() {
        let create = change(
            Action::Create,
            "a.example.com",
            record("a.example.com", RecordType::A, &["10.0.0.1", "10.0.0.2"]),
        );
        assert_eq!(
            change_cost(&create),
            Cost {
                changes: 1,
                records: 2,
                value_chars: 16
            }
        );
        let upsert = Change {
            action: Action::Upsert,
            ..create
        };
        assert_eq!(
            change_cost(&upsert),
            Cost {
                changes: 2,
                records: 4,
                value_chars: 32
            }
        );
    }

    #[test]
    fn fills_batches_to_the_change_limit() {
        let changes: Vec<Change> = (0..1500).flat_map(|i| pair(Action::Create, i)).collect();
        let (batches, errors) = batch(&changes, &BatchLimits::default());
        assert!(errors.is_empty());
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].changes.len(), 1000);
        assert_eq!(batches[2].changes.len(), 1000);
    }

    #[test]
    fn character_limit_splits_batches() {
        let value = format!("\"{}\"", "x".repeat(998));
        let changes: Vec<Change> = (0..40)
            .map(|i| {
                let host = format!("t{i}.example.com");
                change(
                    Action::Create,
                    &host,
                    record(&host, RecordType::Txt, &[&value]),
                )
            })
            .collect();
        let (batches, _) = batch(&changes, &BatchLimits::default());
        assert_eq!(batches.len(), 2, "40 x 1000 characters need two requests");
        assert!(batches.iter().all(|b| b.cost.value_chars <= 32_000));
    }

    #[test]
    fn oversized_groups_are_reported_and_skipped() {
        let values: Vec<String> = (0..1001)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let mut changes = vec![change(
            Action::Create,
            "big.example.com",
            record("big.example.com", RecordType::A, &refs),
        )];
        changes.extend(pair(Action::Create, 1));
        let (batches, errors) = batch(&changes, &BatchLimits::default());
        assert_eq!(errors.len(), 1);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].changes.len(), 2);
    }

    #[test]
    fn split_groups_gives_one_batch_per_group() {
        let changes: Vec<Change> = (0..3).flat_map(|i| pair(Action::Upsert, i)).collect();
        let (batches, _) = batch(&changes, &BatchLimits::default());
        assert_eq!(batches.len(), 1);
        let retries = split_groups(&batches[0]);
        assert_eq!(retries.len(), 3);
        assert!(retries.iter().all(|b| b.changes.len() == 2));
        assert_eq!(retries[1].changes[0].group.as_str(), "host1.example.com");
    }

    fn arbitrary_changes() -> impl Strategy<Value = Vec<Change>> {
        proptest::collection::vec((0usize..60, 0usize..3, 1usize..40, 0usize..600), 0..300)
            .prop_map(|specs| {
                specs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (group, action, values, len))| {
                        let action = [Action::Delete, Action::Create, Action::Upsert][action];
                        let host = format!("g{group}.example.com");
                        let value = format!("\"{}\"", "v".repeat(len));
                        let values: Vec<String> =
                            (0..values).map(|n| format!("{value}{n}")).collect();
                        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                        change(
                            action,
                            &host,
                            record(&format!("r{i}.{host}"), RecordType::Txt, &refs),
                        )
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn batches_respect_limits_and_keep_groups_whole(changes in arbitrary_changes()) {
            let limits = BatchLimits::default();
            let (batches, errors) = batch(&changes, &limits);
            let mut group_batch: HashMap<DnsName, usize> = HashMap::new();
            let mut seen = 0;
            for (i, b) in batches.iter().enumerate() {
                prop_assert!(b.cost.fits(&limits));
                prop_assert!(!b.changes.is_empty());
                prop_assert_eq!(b.cost, batch_of(b.changes.clone()).cost);
                for c in &b.changes {
                    let first = *group_batch.entry(c.group.clone()).or_insert(i);
                    prop_assert_eq!(first, i, "group {} split across batches", c.group);
                }
                seen += b.changes.len();
            }
            let skipped: BTreeSet<&DnsName> = errors
                .iter()
                .map(|BatchError::GroupTooLarge { group, .. }| group)
                .collect();
            let expected = changes.iter().filter(|c| !skipped.contains(&c.group)).count();
            prop_assert_eq!(seen, expected);
            // Within a group, the planner's order (DELETE before CREATE) survives.
            for b in &batches {
                for retry in split_groups(b) {
                    let original: Vec<&Change> = changes.iter().filter(|c| c.group == retry.changes[0].group).collect();
                    prop_assert_eq!(retry.changes.iter().collect::<Vec<_>>(), original);
                }
            }
        }

        #[test]
        fn uniform_groups_pack_into_the_minimum_number_of_calls(groups in 0usize..3000, upsert in any::<bool>()) {
            let action = if upsert { Action::Upsert } else { Action::Create };
            let changes: Vec<Change> = (0..groups).flat_map(|i| pair(action, i)).collect();
            let units: usize = changes.iter().map(|c| change_cost(c).changes).sum();
            let (batches, errors) = batch(&changes, &BatchLimits::default());
            prop_assert!(errors.is_empty());
            prop_assert_eq!(batches.len(), units.div_ceil(1000));
        }
    }
}
