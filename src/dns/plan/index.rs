//! The index of a zone's current records the planner looks everything up in: records by name and
//! ownership TXTs by the name they own, borrowed from the input and hashed with FxHash.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::dns::endpoint::{DnsName, Endpoint, Record, RecordKey, RecordType};
use crate::dns::registry::{LabelsRef, TxtRegistry, decode_record_ref};
use crate::dns::zones::Zone;

/// FxHash, the multiplicative hasher rustc uses. The keys are names from our own zone and
/// objects, so SipHash's flooding resistance buys nothing, and it would cost a large share of
/// planning time.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher {
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

pub(super) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

pub(super) fn fx_map<K, V>(capacity: usize) -> FxMap<K, V> {
    HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default())
}

/// A short list holding its first item inline: most names carry one record, which then costs
/// no allocation.
pub(super) struct Few<T> {
    pub(super) first: Option<T>,
    pub(super) rest: Vec<T>,
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
    pub(super) fn push(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push(item);
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(&self.rest)
    }

    pub(super) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }
}

/// A record's identity within its name.
pub(super) type SubKey<'a> = (RecordType, Option<&'a str>);

pub(super) fn record_sub(record: &Record) -> SubKey<'_> {
    (record.record_type, record.set_identifier.as_deref())
}

pub(super) fn endpoint_sub(endpoint: &Endpoint) -> SubKey<'_> {
    (endpoint.record_type, endpoint.set_identifier.as_deref())
}

pub(super) fn key_of(name: &DnsName, sub: SubKey<'_>) -> RecordKey {
    RecordKey {
        name: name.clone(),
        record_type: sub.0,
        set_identifier: sub.1.map(str::to_string),
    }
}

/// The records at one name; `visited` marks names already planned for a desired endpoint, so
/// the sweep for records nobody asks for skips them without a lookup.
#[derive(Default)]
pub(super) struct Named<'a> {
    pub(super) records: Few<(&'a Record, bool)>,
    pub(super) visited: Cell<bool>,
}

/// An ownership TXT, decoded once, with the type (`None` for the untyped format) and set
/// identifier it owns.
pub(super) struct Claim<'a> {
    pub(super) record_type: Option<RecordType>,
    pub(super) set_identifier: Option<&'a str>,
    pub(super) txt: &'a Record,
    pub(super) labels: LabelsRef<'a>,
}

/// Everything looked up while planning a zone, borrowed from the current records.
pub(super) struct Index<'a> {
    /// Every record of the zone by name, flagged when it is an ownership TXT.
    pub(super) by_name: FxMap<&'a str, Named<'a>>,
    /// Ownership TXTs by the name they own, after wildcard replacement.
    ownership: FxMap<Cow<'a, str>, Few<Claim<'a>>>,
}

impl<'a> Index<'a> {
    pub(super) fn build(zone: &Zone, current: &'a [Record], registry: &TxtRegistry) -> Self {
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

    pub(super) fn find(&self, name: &str, sub: SubKey<'_>) -> Option<(&'a Record, bool)> {
        self.by_name
            .get(name)?
            .records
            .iter()
            .find(|(r, _)| record_sub(r) == sub)
            .copied()
    }

    pub(super) fn is_ownership_record(&self, name: &str, sub: SubKey<'_>) -> bool {
        self.find(name, sub)
            .is_some_and(|(_, is_ownership)| is_ownership)
    }

    pub(super) fn has_cname(&self, name: &str) -> bool {
        self.by_name.get(name).is_some_and(|n| {
            n.records
                .iter()
                .any(|(r, _)| r.record_type == RecordType::Cname)
        })
    }

    pub(super) fn ownership_txt(
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
    pub(super) fn deciding_txt(
        &self,
        lookup: &str,
        sub: SubKey<'_>,
        alias: bool,
    ) -> Option<&Claim<'a>> {
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
