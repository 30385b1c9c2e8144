//! How records compare: what an endpoint asks for against what Route 53 holds, and which changes
//! Route 53 only accepts as a replacement.

use std::collections::BTreeSet;

use super::index::SubKey;
use crate::dns::endpoint::{
    Endpoint, Record, RecordType, Ttl, normalize_hostname_target, normalize_target,
};
use crate::dns::registry::decode_record;

/// True when creating `new` is the replacement of `old` at the same hostname: a new set
/// identifier for the same type, or a CNAME swapped for another type (or back).
pub(super) fn replaces(new: SubKey<'_>, old: SubKey<'_>) -> bool {
    (new.0 == old.0 && new.1 != old.1)
        || (new.1 == old.1
            && new.0 != old.0
            && (new.0 == RecordType::Cname || old.0 == RecordType::Cname))
}

/// Route 53 cannot UPSERT between alias and non-alias, nor between routing policy kinds.
pub(super) fn needs_replacement(current: &Record, desired: &Endpoint) -> bool {
    current.is_alias() != desired.alias.is_some()
        || current.routing.policy.kind() != desired.routing.policy.kind()
}

fn hostnames_equal(a: &str, b: &str) -> bool {
    a == b || normalize_hostname_target(a) == normalize_hostname_target(b)
}

/// Compares what an endpoint asks for with what Route 53 returned, normalising the latter so
/// that formatting differences (trailing dots, IPv6 spelling, case) never cause churn.
pub(super) fn record_matches(
    endpoint: &Endpoint,
    current: &Record,
    zone_id: &str,
    default_ttl: u32,
) -> bool {
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
pub(super) fn ownership_equal(existing: &Record, wanted: &Record) -> bool {
    existing.set_identifier == wanted.set_identifier
        && existing.routing == wanted.routing
        && decode_record(existing) == decode_record(wanted)
}
