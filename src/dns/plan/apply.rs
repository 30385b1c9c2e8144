//! Applying a plan to a zone's records the way Route 53 would, to check plans and preview them.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{Action, Plan};
use crate::dns::endpoint::{DnsName, Record, RecordKey, RecordType};

/// Why a plan could not be applied to a record set (used to check plans, as Route 53 would).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("CREATE of {0}, which already exists")]
    CreateExisting(RecordKey),
    #[error("DELETE of {0}, which does not exist")]
    DeleteMissing(RecordKey),
    #[error("DELETE of {0} does not match the record exactly")]
    DeleteMismatch(RecordKey),
    #[error("after group {group}, a CNAME shares the name {name} with another record")]
    CnameConflict { group: DnsName, name: DnsName },
}

/// Applies a plan to a zone's records with Route 53's semantics, group by group. Pure, for tests
/// and for `causeway plan` previews.
pub fn apply_to(current: &[Record], plan: &Plan) -> Result<Vec<Record>, ApplyError> {
    let mut records: BTreeMap<RecordKey, Record> =
        current.iter().map(|r| (r.key(), r.clone())).collect();
    let mut start = 0;
    while start < plan.changes.len() {
        let group = &plan.changes[start].group;
        let end = plan.changes[start..]
            .iter()
            .position(|c| &c.group != group)
            .map_or(plan.changes.len(), |n| start + n);
        let mut touched: BTreeSet<DnsName> = BTreeSet::new();
        for change in &plan.changes[start..end] {
            let key = change.record.key();
            touched.insert(key.name.clone());
            match change.action {
                Action::Create => {
                    if records.contains_key(&key) {
                        return Err(ApplyError::CreateExisting(key));
                    }
                    records.insert(key, change.record.clone());
                }
                Action::Delete => match records.get(&key) {
                    None => return Err(ApplyError::DeleteMissing(key)),
                    Some(existing) if existing != &change.record => {
                        return Err(ApplyError::DeleteMismatch(key));
                    }
                    Some(_) => {
                        records.remove(&key);
                    }
                },
                Action::Upsert => {
                    records.insert(key, change.record.clone());
                }
            }
        }
        for name in touched {
            let types: BTreeSet<RecordType> = records
                .range(
                    RecordKey {
                        name: name.clone(),
                        record_type: RecordType::A,
                        set_identifier: None,
                    }..,
                )
                .take_while(|(k, _)| k.name == name)
                .map(|(k, _)| k.record_type)
                .collect();
            if types.contains(&RecordType::Cname) && types.len() > 1 {
                return Err(ApplyError::CnameConflict {
                    group: group.clone(),
                    name,
                });
            }
        }
        start = end;
    }
    Ok(records.into_values().collect())
}
