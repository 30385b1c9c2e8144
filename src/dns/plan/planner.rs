//! The planner itself: each name's desired endpoints against its current records and their
//! ownership TXTs, giving the name's changes and errors.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::compare::{needs_replacement, ownership_equal, record_matches, replaces};
use super::index::{Claim, Few, FxMap, Index, SubKey, endpoint_sub, fx_map, key_of, record_sub};
use super::types::{Action, Change, Plan, PlanConfig, PlanError, Policy};
use crate::dns::endpoint::{DnsName, Endpoint, Record, RecordKey, RecordType};
use crate::dns::registry::{
    OWNER_LABEL, OwnerLabels, RESOURCE_LABEL, decode_record_ref, within_zone,
};
use crate::dns::zones::Zone;

/// The owner an ownership TXT names.
fn owner_of(txt: &Record) -> Option<&str> {
    decode_record_ref(txt).map(|l| l.owner)
}

struct Current<'p, 'a> {
    record: &'a Record,
    /// The TXT that decides ownership.
    deciding: Option<&'p Claim<'a>>,
    ours: bool,
}

/// Plans one zone. `desired` should already be the zone's share (see `zones::assign`).
pub fn plan<'a>(
    zone: &Zone,
    desired: &'a [Endpoint],
    current: &'a [Record],
    config: &PlanConfig<'_>,
) -> Plan {
    let index = Index::build(zone, current, config.registry);
    let mut errors = Vec::new();
    // Groups in order of first appearance: walking inputs in their own order keeps memory
    // access sequential, which matters more than anything else at 20,000 records.
    let mut group_of: FxMap<&'a str, usize> = fx_map(desired.len());
    let mut groups: Vec<(&'a DnsName, Few<&'a Endpoint>)> = Vec::with_capacity(desired.len());
    for endpoint in desired {
        if !endpoint.dns_name.is_within(&zone.name) {
            errors.push(PlanError::OutsideZone {
                name: endpoint.dns_name.clone(),
                zone: zone.name.clone(),
                resource: endpoint.resource.clone(),
            });
        } else if config
            .domain_filter
            .is_some_and(|f| !f.matches(endpoint.dns_name.as_str()))
        {
            errors.push(PlanError::ExcludedByDomainFilter {
                name: endpoint.dns_name.clone(),
                resource: endpoint.resource.clone(),
            });
        } else {
            let next = groups.len();
            let index = *group_of.entry(endpoint.dns_name.as_str()).or_insert(next);
            if index == next {
                groups.push((&endpoint.dns_name, Few::default()));
            }
            if let Some((_, endpoints)) = groups.get_mut(index) {
                endpoints.push(endpoint);
            }
        }
    }
    // Errors come out in the same order whatever order the endpoints came in.
    errors.sort_by_cached_key(ToString::to_string);

    let planner = Planner {
        zone,
        index: &index,
        config,
        owner_id: config.registry.owner_id(),
    };
    let mut outcomes: Vec<NameOutcome<'a>> = groups
        .iter()
        .filter_map(|(name, endpoints)| planner.plan_name(name, endpoints))
        .collect();
    // Only sync deletes records nobody asks for; the other policies act where something is asked.
    if config.policy == Policy::Sync {
        let nothing = Few::default();
        outcomes.extend(
            index
                .by_name
                .values()
                .filter(|named| {
                    !named.visited.get()
                        && named.records.iter().any(|(_, is_ownership)| !is_ownership)
                })
                .filter_map(|named| {
                    let (record, _) = named.records.iter().next()?;
                    planner.plan_name(&record.name, &nothing)
                }),
        );
    }
    outcomes.sort_by(|a, b| a.name.cmp(b.name));
    let mut changes = Vec::new();
    for outcome in outcomes {
        changes.extend(outcome.changes);
        errors.extend(outcome.errors);
    }
    Plan { changes, errors }
}

struct NameOutcome<'a> {
    name: &'a DnsName,
    changes: Vec<Change>,
    errors: Vec<PlanError>,
}

struct Planner<'p, 'a> {
    zone: &'p Zone,
    index: &'p Index<'a>,
    config: &'p PlanConfig<'p>,
    owner_id: &'p str,
}

/// Changes of one group, kept apart by action so they can be emitted in order.
#[derive(Default)]
struct GroupChanges {
    delete: Vec<Record>,
    create: Vec<Record>,
    upsert: Vec<Record>,
    deleted_keys: HashSet<RecordKey>,
}

impl GroupChanges {
    fn delete(&mut self, record: &Record) {
        if self.deleted_keys.insert(record.key()) {
            self.delete.push(record.clone());
        }
    }
}

/// An ownership TXT to write, and the one already there under the same key, if ours.
struct OwnershipPlan<'a> {
    txt: Record,
    existing: Option<&'a Record>,
}

/// A record to create, with its ownership TXT.
struct Candidate<'a> {
    endpoint: &'a Endpoint,
    record: Record,
    ownership: OwnershipPlan<'a>,
}

/// Sorts an object's requests by key and drops all but the first object (by namespace/name)
/// asking for the same key.
fn dedupe<'a>(desired: &Few<&'a Endpoint>, errors: &mut Vec<PlanError>) -> Few<&'a Endpoint> {
    if desired.len() <= 1 {
        return Few {
            first: desired.first,
            rest: Vec::new(),
        };
    }
    let mut all: Vec<&'a Endpoint> = desired.iter().copied().collect();
    all.sort_by(|a, b| {
        endpoint_sub(a)
            .cmp(&endpoint_sub(b))
            .then_with(|| a.resource.cmp(&b.resource))
    });
    let mut kept: Few<&'a Endpoint> = Few::default();
    let mut last: Option<&'a Endpoint> = None;
    for endpoint in all {
        match last {
            Some(first) if endpoint_sub(first) == endpoint_sub(endpoint) => {
                errors.push(PlanError::Duplicate {
                    key: endpoint.key(),
                    kept: first.resource.clone(),
                    resource: endpoint.resource.clone(),
                });
            }
            _ => {
                kept.push(endpoint);
                last = Some(endpoint);
            }
        }
    }
    kept
}

impl<'p, 'a> Planner<'p, 'a> {
    fn is_ours(&self, txt: &Record) -> bool {
        owner_of(txt) == Some(self.owner_id)
    }

    /// True for our untyped ownership TXT of the name it sits on.
    fn is_our_legacy_txt_here(&self, lookup: &str, txt: &Record) -> bool {
        txt.record_type == RecordType::Txt
            && self.is_ours(txt)
            && self
                .config
                .registry
                .decode_name(&txt.name)
                .is_some_and(|d| d.record_type.is_none() && d.name == lookup)
    }

    fn labels_for(&self, endpoint: &Endpoint) -> OwnerLabels {
        let mut labels = OwnerLabels::new(self.owner_id, endpoint.resource.as_ref());
        labels.extra = endpoint
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != OWNER_LABEL && k.as_str() != RESOURCE_LABEL)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels
    }

    /// The quick check for the common case: the record and its typed TXT are exactly as asked,
    /// verified without building either. Anything else takes the full path.
    fn in_sync(&self, endpoint: &Endpoint, current: &Current<'p, 'a>) -> bool {
        let Some(Claim { txt, labels, .. }) = current.deciding else {
            return false;
        };
        let wanted_extra = || {
            endpoint
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != OWNER_LABEL && k.as_str() != RESOURCE_LABEL)
        };
        let resource_matches = match (labels.resource, &endpoint.resource) {
            (None, None) => true,
            (Some(label), Some(resource)) => resource.matches_label(label),
            _ => false,
        };
        record_matches(
            endpoint,
            current.record,
            &self.zone.id,
            self.config.default_ttl,
        ) && labels.owner == self.owner_id
            && resource_matches
            && wanted_extra().count() == labels.extra.len()
            && wanted_extra().all(|(k, v)| labels.extra.iter().any(|(ek, ev)| ek == k && ev == v))
            && txt.routing == endpoint.routing
            && self.config.registry.is_txt_name_for(
                txt.name.as_str(),
                &endpoint.dns_name,
                endpoint.record_type,
            )
    }

    /// The typed ownership TXT for `record`, checked against the zone and its current records.
    fn ownership_for(
        &self,
        record: &Record,
        endpoint: &Endpoint,
    ) -> Result<OwnershipPlan<'a>, Box<PlanError>> {
        let resource = endpoint.resource.clone();
        let txt = self
            .config
            .registry
            .ownership_record(record, &self.labels_for(endpoint), self.config.default_ttl)
            .map_err(|error| PlanError::Registry {
                key: record.key(),
                error,
                resource: resource.clone(),
            })?;
        if !within_zone(&txt.name, &self.zone.name) {
            return Err(Box::new(PlanError::OwnershipOutsideZone {
                key: record.key(),
                txt_name: txt.name,
                zone: self.zone.name.clone(),
                resource,
            }));
        }
        let taken = || {
            Box::new(PlanError::OwnershipNameTaken {
                key: record.key(),
                txt_name: txt.name.clone(),
                resource: resource.clone(),
            })
        };
        match self.index.find(txt.name.as_str(), record_sub(&txt)) {
            Some((existing, true)) if self.is_ours(existing) => Ok(OwnershipPlan {
                existing: Some(existing),
                txt,
            }),
            Some(_) => Err(taken()),
            None if self.index.has_cname(txt.name.as_str()) => Err(taken()),
            None => Ok(OwnershipPlan {
                txt,
                existing: None,
            }),
        }
    }

    /// Our typed ownership TXT of a current record, if it exists.
    fn typed_txt_of(&self, record: &Record) -> Option<&'a Record> {
        let name = self
            .config
            .registry
            .txt_name(&record.name, record.record_type)
            .ok()?;
        let (txt, is_ownership) = self.index.find(
            name.as_str(),
            (RecordType::Txt, record.set_identifier.as_deref()),
        )?;
        (is_ownership && self.is_ours(txt)).then_some(txt)
    }

    fn plan_name(&self, name: &'a DnsName, desired: &Few<&'a Endpoint>) -> Option<NameOutcome<'a>> {
        let mut errors = Vec::new();
        let desired = dedupe(desired, &mut errors);
        let lookup = self.config.registry.lookup_name(name);
        let entries = self.index.by_name.get(name.as_str());
        if let Some(named) = entries {
            named.visited.set(true);
        }
        let managed = self
            .config
            .domain_filter
            .is_none_or(|f| f.matches(name.as_str()));
        let mut current: Few<Current<'p, 'a>> = Few::default();
        let mut ownership_here: Few<&'a Record> = Few::default();
        for &(record, is_ownership) in entries.into_iter().flat_map(|n| n.records.iter()) {
            if is_ownership {
                ownership_here.push(record);
            } else if managed {
                let deciding =
                    self.index
                        .deciding_txt(&lookup, record_sub(record), record.is_alias());
                let ours = deciding.is_some_and(|c| c.labels.owner == self.owner_id);
                current.push(Current {
                    record,
                    deciding,
                    ours,
                });
            }
        }
        let current_at = |sub: SubKey<'_>| current.iter().find(|c| record_sub(c.record) == sub);
        let is_desired = |sub: SubKey<'_>| desired.iter().any(|e| endpoint_sub(e) == sub);

        let mut updates: Vec<(&'a Endpoint, &'a Record)> = Vec::new();
        let mut candidates: BTreeMap<SubKey<'a>, Candidate<'a>> = BTreeMap::new();
        for &endpoint in desired.iter() {
            let sub = endpoint_sub(endpoint);
            match current_at(sub) {
                Some(current) if !current.ours => errors.push(PlanError::NotOwned {
                    key: endpoint.key(),
                    owner: current.deciding.map(|c| c.labels.owner.to_string()),
                    resource: endpoint.resource.clone(),
                }),
                Some(current) => {
                    if !self.in_sync(endpoint, current) {
                        updates.push((endpoint, current.record));
                    }
                }
                None => {
                    if let Some(candidate) = self.candidate(endpoint, &lookup, &mut errors) {
                        candidates.insert(sub, candidate);
                    }
                }
            }
        }

        let owned_undesired: Vec<SubKey<'a>> = current
            .iter()
            .filter(|c| c.ours && !is_desired(record_sub(c.record)))
            .map(|c| record_sub(c.record))
            .collect();
        let may_delete = match self.config.policy {
            Policy::Sync => !owned_undesired.is_empty(),
            Policy::UpsertOnly | Policy::CreateOnly => false,
        };
        if updates.is_empty() && candidates.is_empty() && errors.is_empty() && !may_delete {
            return None;
        }

        // Removing a candidate can release a paired deletion, which can make another candidate
        // conflict; candidates are only ever removed, so this settles.
        let (deletions, obstacles) = loop {
            let deletions: BTreeSet<SubKey<'a>> = owned_undesired
                .iter()
                .copied()
                .filter(|old| match self.config.policy {
                    Policy::Sync => true,
                    Policy::UpsertOnly => candidates.keys().any(|new| replaces(*new, *old)),
                    Policy::CreateOnly => false,
                })
                .collect();
            // A TXT asked for where our untyped TXT sits may replace it only if no record we
            // keep without a typed TXT still depends on it.
            let blocked: Vec<SubKey<'a>> = candidates
                .keys()
                .copied()
                .filter(|cand| {
                    self.index.is_ownership_record(name.as_str(), *cand)
                        && current.iter().any(|c| {
                            let sub = record_sub(c.record);
                            c.ours
                                && sub.1 == cand.1
                                && !deletions.contains(&sub)
                                && !is_desired(sub)
                        })
                })
                .collect();
            if !blocked.is_empty() {
                for cand in blocked {
                    if let Some(removed) = candidates.remove(&cand) {
                        errors.push(PlanError::CollidesWithOwnershipRecord {
                            key: key_of(name, cand),
                            resource: removed.endpoint.resource.clone(),
                        });
                    }
                }
                continue;
            }
            let cname_candidate = candidates.keys().any(|k| k.0 == RecordType::Cname);
            // Our untyped ownership TXT sits on the name itself; a CNAME there, or a TXT record
            // asked for under its key, takes over with a typed TXT, so the old one goes rather
            // than blocking it.
            let mut obstacles: Vec<&'a Record> = ownership_here
                .iter()
                .copied()
                .filter(|txt| {
                    let displaced = cname_candidate
                        || candidates
                            .contains_key(&(RecordType::Txt, txt.set_identifier.as_deref()));
                    displaced && self.is_our_legacy_txt_here(&lookup, txt)
                })
                .collect();
            obstacles.sort_by(|a, b| record_sub(a).cmp(&record_sub(b)));
            let mut present: Vec<(SubKey<'a>, bool)> = current
                .iter()
                .map(|c| record_sub(c.record))
                .filter(|sub| !deletions.contains(sub))
                .map(|sub| (sub, false))
                .collect();
            present.extend(
                ownership_here
                    .iter()
                    .filter(|txt| !obstacles.iter().any(|o| record_sub(o) == record_sub(txt)))
                    .map(|txt| (record_sub(txt), false)),
            );
            present.extend(candidates.keys().map(|k| (*k, true)));
            present.sort();
            let conflicts: Vec<(SubKey<'a>, RecordType)> = candidates
                .keys()
                .filter_map(|cand| {
                    present
                        .iter()
                        .find(|(other, is_candidate)| {
                            !(*is_candidate && other == cand)
                                && other.0 != cand.0
                                && (other.0 == RecordType::Cname || cand.0 == RecordType::Cname)
                        })
                        .map(|(other, _)| (*cand, other.0))
                })
                .collect();
            if conflicts.is_empty() {
                break (deletions, obstacles);
            }
            for (cand, other) in conflicts {
                if let Some(removed) = candidates.remove(&cand) {
                    errors.push(PlanError::CnameConflict {
                        key: key_of(name, cand),
                        other,
                        resource: removed.endpoint.resource.clone(),
                    });
                }
            }
        };

        let mut group = GroupChanges::default();
        for sub in &deletions {
            if let Some(current) = current_at(*sub) {
                group.delete(current.record);
                if let Some(txt) = self.typed_txt_of(current.record) {
                    group.delete(txt);
                }
            }
        }
        for txt in &obstacles {
            group.delete(txt);
        }

        for (endpoint, current) in updates {
            let updating = self.config.policy.updates()
                && !record_matches(endpoint, current, &self.zone.id, self.config.default_ttl);
            let desired_record;
            // The TXT describes the record as it will be after this plan.
            let resulting = if updating {
                desired_record = endpoint.to_record(&self.zone.id, self.config.default_ttl);
                if needs_replacement(current, endpoint) {
                    group.delete(current);
                    group.create.push(desired_record.clone());
                } else {
                    group.upsert.push(desired_record.clone());
                }
                &desired_record
            } else {
                current
            };
            match self.ownership_for(resulting, endpoint) {
                Ok(ownership) => self.ownership_changes(ownership, &mut group),
                // Still owned through its legacy TXT; only the typed one cannot be written.
                Err(e) => errors.push(*e),
            }
        }

        let mut remaining_ids: BTreeSet<Option<&'a str>> = candidates.keys().map(|s| s.1).collect();
        remaining_ids.extend(
            current
                .iter()
                .map(|c| (c, record_sub(c.record)))
                .filter(|(c, sub)| c.ours && !deletions.contains(sub))
                .map(|(_, sub)| sub.1),
        );
        for candidate in candidates.into_values() {
            group.create.push(candidate.record);
            self.ownership_changes(candidate.ownership, &mut group);
        }
        self.legacy_cleanup(&lookup, &deletions, &remaining_ids, &mut group);

        let changes = [
            (Action::Delete, group.delete),
            (Action::Create, group.create),
            (Action::Upsert, group.upsert),
        ]
        .into_iter()
        .flat_map(|(action, records)| {
            records.into_iter().map(move |record| Change {
                action,
                record,
                group: name.clone(),
            })
        })
        .collect();
        Some(NameOutcome {
            name,
            changes,
            errors,
        })
    }

    /// Checks a record that does not exist yet: nobody else may claim it, and its ownership TXT
    /// must be writable.
    fn candidate(
        &self,
        endpoint: &'a Endpoint,
        lookup: &str,
        errors: &mut Vec<PlanError>,
    ) -> Option<Candidate<'a>> {
        let sub = endpoint_sub(endpoint);
        let resource = || endpoint.resource.clone();
        // Our own untyped TXT on this name may make way (see `plan_name`); any other ownership
        // record may not.
        if let Some((existing, true)) = self.index.find(endpoint.dns_name.as_str(), sub)
            && !self.is_our_legacy_txt_here(lookup, existing)
        {
            errors.push(PlanError::CollidesWithOwnershipRecord {
                key: endpoint.key(),
                resource: resource(),
            });
            return None;
        }
        let claim = self
            .index
            .deciding_txt(lookup, sub, endpoint.alias.is_some())
            .map(|c| c.labels.owner);
        if let Some(owner) = claim.filter(|o| *o != self.owner_id) {
            errors.push(PlanError::NotOwned {
                key: endpoint.key(),
                owner: Some(owner.to_string()),
                resource: resource(),
            });
            return None;
        }
        let record = endpoint.to_record(&self.zone.id, self.config.default_ttl);
        match self.ownership_for(&record, endpoint) {
            Ok(ownership) => Some(Candidate {
                endpoint,
                record,
                ownership,
            }),
            Err(e) => {
                errors.push(*e);
                None
            }
        }
    }

    fn ownership_changes(&self, ownership: OwnershipPlan<'a>, group: &mut GroupChanges) {
        let OwnershipPlan { txt, existing } = ownership;
        let existing = existing.filter(|e| !group.deleted_keys.contains(&e.key()));
        match existing {
            None => group.create.push(txt),
            Some(existing) if ownership_equal(existing, &txt) => {}
            Some(_) if !self.config.policy.updates() => {}
            Some(existing) if existing.routing.policy.kind() != txt.routing.policy.kind() => {
                group.delete(existing);
                group.create.push(txt);
            }
            Some(_) => group.upsert.push(txt),
        }
    }

    /// Legacy TXTs (untyped, and `cname-` for A aliases) are left alone while any record of ours
    /// still lives at their name and set identifier, and go with the last one; otherwise they
    /// would keep claiming a name nobody uses.
    fn legacy_cleanup(
        &self,
        lookup: &str,
        deletions: &BTreeSet<SubKey<'a>>,
        remaining_ids: &BTreeSet<Option<&'a str>>,
        group: &mut GroupChanges,
    ) {
        let deleted_ids: BTreeSet<Option<&'a str>> = deletions.iter().map(|s| s.1).collect();
        for id in deleted_ids {
            if remaining_ids.contains(&id) {
                continue;
            }
            for record_type in [None, Some(RecordType::Cname)] {
                if let Some(claim) = self.index.ownership_txt(lookup, record_type, id)
                    && claim.labels.owner == self.owner_id
                {
                    group.delete(claim.txt);
                }
            }
        }
    }
}
