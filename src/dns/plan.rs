//! The pure planner: desired endpoints + a zone's current records -> Route 53 changes.
//!
//! Ownership is decided by external-dns TXT records only. A record without a TXT carrying our
//! owner id is foreign: it is never changed or deleted, even when it is exactly what we want,
//! and asking for it is reported as a conflict. Every change to a record travels in one group
//! with the change to its ownership TXT, so a batch can never apply one without the other.
//!
//! Work is split by record name, with hash indexes that borrow the inputs rather than copy
//! them. A record that is already as asked, with its TXT, is recognised without building
//! anything, so a large zone with few changes costs little more than one pass over it: linear,
//! plus sorting the names that change.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::endpoint::{
    DnsName, Endpoint, Record, RecordKey, RecordType, ResourceRef, Ttl, normalize_hostname_target,
    normalize_target,
};
use super::registry::{
    LabelsRef, OWNER_LABEL, OwnerLabels, RESOURCE_LABEL, RegistryError, TxtRegistry, decode_record,
    decode_record_ref, within_zone,
};
use super::zones::{DomainFilter, Zone};

/// external-dns's `--policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Policy {
    /// Create, update and delete.
    #[default]
    Sync,
    /// Create and update; records no longer asked for stay. A record whose type or set
    /// identifier changes is still replaced, since that is an update of the same hostname.
    UpsertOnly,
    /// Only create.
    CreateOnly,
}

impl Policy {
    fn updates(self) -> bool {
        !matches!(self, Policy::CreateOnly)
    }
}

/// Route 53 change actions, in the order they are applied within a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Delete,
    Create,
    Upsert,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Delete => "DELETE",
            Action::Create => "CREATE",
            Action::Upsert => "UPSERT",
        })
    }
}

/// One ChangeResourceRecordSets change. `group` is the hostname the change belongs to: changes
/// of one group must be submitted together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: Action,
    pub record: Record,
    pub group: DnsName,
}

/// The outcome of planning one zone. Changes of a group are contiguous.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub errors: Vec<PlanError>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Why a desired record was not planned. Each names the object to report it on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{key} already exists and is {}; causeway leaves it alone", owned_by(.owner))]
    NotOwned {
        key: RecordKey,
        owner: Option<String>,
        resource: Option<ResourceRef>,
    },
    #[error("{key} is asked for more than once; the request from {} is kept", describe(.kept))]
    Duplicate {
        key: RecordKey,
        kept: Option<ResourceRef>,
        resource: Option<ResourceRef>,
    },
    #[error("{key} cannot share its name with a {other} record")]
    CnameConflict {
        key: RecordKey,
        other: RecordType,
        resource: Option<ResourceRef>,
    },
    #[error("ownership record for {key}: {error}")]
    Registry {
        key: RecordKey,
        error: RegistryError,
        resource: Option<ResourceRef>,
    },
    #[error(
        "ownership record {txt_name} for {key} falls outside zone {zone}; a TXT prefix ending in '.' (such as '_own-%{{record_type}}.') is needed at a zone apex"
    )]
    OwnershipOutsideZone {
        key: RecordKey,
        txt_name: DnsName,
        zone: DnsName,
        resource: Option<ResourceRef>,
    },
    #[error(
        "ownership record name {txt_name} for {key} is taken by a record causeway does not own"
    )]
    OwnershipNameTaken {
        key: RecordKey,
        txt_name: DnsName,
        resource: Option<ResourceRef>,
    },
    #[error("{key} collides with an existing ownership TXT record")]
    CollidesWithOwnershipRecord {
        key: RecordKey,
        resource: Option<ResourceRef>,
    },
    #[error("{name} is outside zone {zone}")]
    OutsideZone {
        name: DnsName,
        zone: DnsName,
        resource: Option<ResourceRef>,
    },
    #[error("{name} is excluded by the domain filter")]
    ExcludedByDomainFilter {
        name: DnsName,
        resource: Option<ResourceRef>,
    },
}

fn owned_by(owner: &Option<String>) -> String {
    match owner.as_deref() {
        None => "not owned by any TXT record".to_string(),
        Some("") => "owned by a TXT record without an owner id".to_string(),
        Some(o) => format!("owned by {o:?}"),
    }
}

fn describe(resource: &Option<ResourceRef>) -> String {
    resource
        .as_ref()
        .map_or_else(|| "an unnamed source".to_string(), ToString::to_string)
}

impl PlanError {
    /// The object the error should be reported on.
    pub fn resource(&self) -> Option<&ResourceRef> {
        match self {
            PlanError::NotOwned { resource, .. }
            | PlanError::Duplicate { resource, .. }
            | PlanError::CnameConflict { resource, .. }
            | PlanError::Registry { resource, .. }
            | PlanError::OwnershipOutsideZone { resource, .. }
            | PlanError::OwnershipNameTaken { resource, .. }
            | PlanError::CollidesWithOwnershipRecord { resource, .. }
            | PlanError::OutsideZone { resource, .. }
            | PlanError::ExcludedByDomainFilter { resource, .. } => resource.as_ref(),
        }
    }
}

/// Planner settings.
#[derive(Debug, Clone, Copy)]
pub struct PlanConfig<'a> {
    /// Owner id and TXT naming.
    pub registry: &'a TxtRegistry,
    pub policy: Policy,
    /// TTL for records without one, and for ownership records.
    pub default_ttl: u32,
    /// Records outside the filter are neither desired nor touched.
    pub domain_filter: Option<&'a DomainFilter>,
}

/// FxHash, the multiplicative hasher rustc uses. The keys are names from our own zone and
/// objects, so SipHash's flooding resistance buys nothing, and it would cost a large share of
/// planning time.
#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

fn fx_map<K, V>(capacity: usize) -> FxMap<K, V> {
    HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default())
}

/// A short list holding its first item inline: most names carry one record, which then costs
/// no allocation.
struct Few<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for Few<T> {
    fn default() -> Self {
        Few {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> Few<T> {
    fn push(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push(item);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(&self.rest)
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }
}

/// A record's identity within its name.
type SubKey<'a> = (RecordType, Option<&'a str>);

fn record_sub(record: &Record) -> SubKey<'_> {
    (record.record_type, record.set_identifier.as_deref())
}

fn endpoint_sub(endpoint: &Endpoint) -> SubKey<'_> {
    (endpoint.record_type, endpoint.set_identifier.as_deref())
}

fn key_of(name: &DnsName, sub: SubKey<'_>) -> RecordKey {
    RecordKey {
        name: name.clone(),
        record_type: sub.0,
        set_identifier: sub.1.map(str::to_string),
    }
}

/// The records at one name; `visited` marks names already planned for a desired endpoint, so
/// the sweep for records nobody asks for skips them without a lookup.
#[derive(Default)]
struct Named<'a> {
    records: Few<(&'a Record, bool)>,
    visited: Cell<bool>,
}

/// An ownership TXT, decoded once, with the type (`None` for the untyped format) and set
/// identifier it owns.
struct Claim<'a> {
    record_type: Option<RecordType>,
    set_identifier: Option<&'a str>,
    txt: &'a Record,
    labels: LabelsRef<'a>,
}

/// Everything looked up while planning a zone, borrowed from the current records.
struct Index<'a> {
    /// Every record of the zone by name, flagged when it is an ownership TXT.
    by_name: FxMap<&'a str, Named<'a>>,
    /// Ownership TXTs by the name they own, after wildcard replacement.
    ownership: FxMap<Cow<'a, str>, Few<Claim<'a>>>,
}

impl<'a> Index<'a> {
    fn build(zone: &Zone, current: &'a [Record], registry: &TxtRegistry) -> Self {
        let mut by_name: FxMap<&'a str, Named<'a>> = fx_map(current.len());
        let mut ownership: FxMap<Cow<'a, str>, Few<Claim<'a>>> = fx_map(current.len() / 2);
        for record in current.iter().filter(|r| r.name.is_within(&zone.name)) {
            let entries = &mut by_name.entry(record.name.as_str()).or_default().records;
            // Route 53 never lists one key twice; should a caller, the first one counts.
            if entries
                .iter()
                .any(|(r, _)| record_sub(r) == record_sub(record))
            {
                continue;
            }
            let labels = decode_record_ref(record);
            let is_ownership = labels.is_some();
            if let Some(labels) = labels
                && let Some(decoded) = registry.decode_name(&record.name)
            {
                let owned = ownership.entry(decoded.name).or_default();
                let set_identifier = record.set_identifier.as_deref();
                let known = owned.iter().any(|c| {
                    c.record_type == decoded.record_type && c.set_identifier == set_identifier
                });
                if !known {
                    owned.push(Claim {
                        record_type: decoded.record_type,
                        set_identifier,
                        txt: record,
                        labels,
                    });
                }
            }
            entries.push((record, is_ownership));
        }
        Index { by_name, ownership }
    }

    fn find(&self, name: &str, sub: SubKey<'_>) -> Option<(&'a Record, bool)> {
        self.by_name
            .get(name)?
            .records
            .iter()
            .find(|(r, _)| record_sub(r) == sub)
            .copied()
    }

    fn is_ownership_record(&self, name: &str, sub: SubKey<'_>) -> bool {
        self.find(name, sub)
            .is_some_and(|(_, is_ownership)| is_ownership)
    }

    fn has_cname(&self, name: &str) -> bool {
        self.by_name.get(name).is_some_and(|n| {
            n.records
                .iter()
                .any(|(r, _)| r.record_type == RecordType::Cname)
        })
    }

    fn ownership_txt(
        &self,
        owned_name: &str,
        record_type: Option<RecordType>,
        set_identifier: Option<&str>,
    ) -> Option<&Claim<'a>> {
        self.ownership
            .get(owned_name)?
            .iter()
            .find(|c| c.record_type == record_type && c.set_identifier == set_identifier)
    }

    /// The TXT deciding who owns a record, in external-dns's order of preference: typed, then
    /// the legacy `cname-` name for A aliases, then the untyped format (never for AAAA).
    fn deciding_txt(&self, lookup: &str, sub: SubKey<'_>, alias: bool) -> Option<&Claim<'a>> {
        let (record_type, set_identifier) = sub;
        self.ownership_txt(lookup, Some(record_type), set_identifier)
            .or_else(|| {
                (record_type == RecordType::A && alias)
                    .then(|| self.ownership_txt(lookup, Some(RecordType::Cname), set_identifier))
                    .flatten()
            })
            .or_else(|| {
                (record_type != RecordType::Aaaa)
                    .then(|| self.ownership_txt(lookup, None, set_identifier))
                    .flatten()
            })
    }
}

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

/// True when creating `new` is the replacement of `old` at the same hostname: a new set
/// identifier for the same type, or a CNAME swapped for another type (or back).
fn replaces(new: SubKey<'_>, old: SubKey<'_>) -> bool {
    (new.0 == old.0 && new.1 != old.1)
        || (new.1 == old.1
            && new.0 != old.0
            && (new.0 == RecordType::Cname || old.0 == RecordType::Cname))
}

/// Route 53 cannot UPSERT between alias and non-alias, nor between routing policy kinds.
fn needs_replacement(current: &Record, desired: &Endpoint) -> bool {
    current.is_alias() != desired.alias.is_some()
        || current.routing.policy.kind() != desired.routing.policy.kind()
}

fn hostnames_equal(a: &str, b: &str) -> bool {
    a == b || normalize_hostname_target(a) == normalize_hostname_target(b)
}

/// Compares what an endpoint asks for with what Route 53 returned, normalising the latter so
/// that formatting differences (trailing dots, IPv6 spelling, case) never cause churn.
fn record_matches(endpoint: &Endpoint, current: &Record, zone_id: &str, default_ttl: u32) -> bool {
    let alias_equal = match (&endpoint.alias, &current.alias) {
        (None, None) => true,
        (Some(wanted), Some(actual)) => {
            hostnames_equal(&wanted.dns_name, &actual.dns_name)
                && Some(wanted.hosted_zone_id.as_deref().unwrap_or(zone_id))
                    == actual.hosted_zone_id.as_deref()
                && wanted.evaluate_target_health == actual.evaluate_target_health
        }
        _ => false,
    };
    let ttl = match endpoint.alias {
        Some(_) => None,
        None => Some(endpoint.ttl.map_or(default_ttl, Ttl::seconds)),
    };
    let values_equal = if endpoint.alias.is_some() {
        current.values.is_empty()
    } else {
        endpoint.targets == current.values
            || endpoint.targets
                == current
                    .values
                    .iter()
                    .map(|v| normalize_target(current.record_type, v).unwrap_or_else(|_| v.clone()))
                    .collect::<BTreeSet<_>>()
    };
    alias_equal && ttl == current.ttl && endpoint.routing == current.routing && values_equal
}

/// Ownership records compare by meaning: labels, set identifier and routing. Their TTL is not
/// compared, so TXTs external-dns wrote with another TTL are adopted as they are.
fn ownership_equal(existing: &Record, wanted: &Record) -> bool {
    existing.set_identifier == wanted.set_identifier
        && existing.routing == wanted.routing
        && decode_record(existing) == decode_record(wanted)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::batch::{BatchLimits, batch};
    use crate::dns::endpoint::{AliasTarget, Routing, RoutingPolicy, Ttl};
    use crate::dns::registry::encode_value;
    use proptest::prelude::*;

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
        (0..LABELS.len(), 0usize..5, 0..SETS.len(), 0u8..6).prop_map(
            |(label, kind, set, variant)| Spec {
                label,
                kind,
                set,
                variant,
            },
        )
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
}
