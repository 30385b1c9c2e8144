//! The merge of all objects' endpoints, which settles conflicts between objects.

use super::common::SourceError;
use crate::dns::endpoint::{Endpoint, RecordType, ResourceRef};

/// The endpoints that survive a merge, and the conflicts that removed others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    pub endpoints: Vec<Endpoint>,
    pub conflicts: Vec<SourceError>,
}

/// Merges the endpoints of all objects. Two objects asking for the same record set with
/// different values conflict, and so do a CNAME and any other type at one name; the object
/// first by namespace/name wins and the other gets the error. Identical requests merge quietly.
pub fn merge(endpoints: impl IntoIterator<Item = Endpoint>) -> Merged {
    let mut all: Vec<Endpoint> = endpoints.into_iter().collect();
    all.sort_by(|a, b| (a.key(), &a.resource).cmp(&(b.key(), &b.resource)));

    let mut merged = Merged::default();
    let mut unique: Vec<Endpoint> = Vec::with_capacity(all.len());
    for endpoint in all {
        match unique.last() {
            Some(kept) if kept.key() == endpoint.key() => {
                if !kept.same_record_as(&endpoint) {
                    merged.conflicts.push(SourceError::Conflict {
                        key: endpoint.key(),
                        winner: kept.resource.clone(),
                        loser: endpoint.resource.clone(),
                    });
                }
            }
            _ => unique.push(endpoint),
        }
    }

    // Sorted by key, so each name's endpoints are contiguous.
    let mut start = 0;
    while start < unique.len() {
        let name = unique[start].dns_name.clone();
        let end = unique[start..]
            .iter()
            .position(|e| e.dns_name != name)
            .map_or(unique.len(), |n| start + n);
        // Objects in precedence order, each with its CNAMEs last: the first record at a name
        // decides whether the name is a CNAME, and whatever does not fit loses.
        let mut at_name: Vec<&Endpoint> = unique[start..end].iter().collect();
        at_name.sort_by_key(|e| (&e.resource, e.record_type == RecordType::Cname));
        let mut decided: Option<(bool, Option<ResourceRef>)> = None;
        for endpoint in at_name {
            let is_cname = endpoint.record_type == RecordType::Cname;
            match &decided {
                Some((cname_name, winner)) if *cname_name != is_cname => {
                    merged.conflicts.push(SourceError::Conflict {
                        key: endpoint.key(),
                        winner: winner.clone(),
                        loser: endpoint.resource.clone(),
                    });
                }
                Some(_) => merged.endpoints.push(endpoint.clone()),
                None => {
                    decided = Some((is_cname, endpoint.resource.clone()));
                    merged.endpoints.push(endpoint.clone());
                }
            }
        }
        start = end;
    }
    merged
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::dns::endpoint::{DnsName, RecordKey};
    use crate::dns::sources::test_support::summary;
    use proptest::prelude::*;

    fn a(name: &str, ip: &str, owner: &str) -> Endpoint {
        Endpoint::new(DnsName::parse(name).unwrap(), RecordType::A, [ip])
            .unwrap()
            .with_resource(ResourceRef::new("ingress", "default", owner))
    }

    #[test]
    fn conflicting_targets_lose_to_the_first_object() {
        let merged = merge([
            a("app.example.com", "10.0.0.2", "zeta"),
            a("app.example.com", "10.0.0.1", "alpha"),
            a("same.example.com", "10.0.0.9", "zeta"),
            a("same.example.com", "10.0.0.9", "alpha"),
        ]);
        assert_eq!(merged.endpoints.len(), 2);
        assert_eq!(merged.endpoints[0].targets.first().unwrap(), "10.0.0.1");
        assert_eq!(merged.conflicts.len(), 1);
        let SourceError::Conflict { winner, loser, .. } = &merged.conflicts[0] else {
            panic!("expected a conflict");
        };
        assert_eq!(winner.as_ref().unwrap().name, "alpha");
        assert_eq!(loser.as_ref().unwrap().name, "zeta");
        assert_eq!(merged.conflicts[0].resources().len(), 2);
    }

    #[test]
    fn cname_cannot_share_a_name() {
        let cname = Endpoint::new(
            DnsName::parse("app.example.com").unwrap(),
            RecordType::Cname,
            ["lb.example.net"],
        )
        .unwrap()
        .with_resource(ResourceRef::new("ingress", "default", "beta"));
        let merged = merge([cname, a("app.example.com", "10.0.0.1", "alpha")]);
        assert_eq!(summary(&merged.endpoints), ["app.example.com A 10.0.0.1"]);
        assert_eq!(merged.conflicts.len(), 1);
    }

    proptest! {
        #[test]
        fn merge_leaves_one_endpoint_per_key_and_no_cname_clash(
            specs in proptest::collection::vec((0usize..3, 0usize..3, 0usize..3, 0usize..4), 0..30)
        ) {
            let endpoints: Vec<Endpoint> = specs.iter().map(|(name, kind, owner, ip)| {
                let name = DnsName::parse(&format!("n{name}.example.com")).unwrap();
                let resource = ResourceRef::new("ingress", "default", &format!("o{owner}"));
                let e = match kind {
                    0 => Endpoint::new(name, RecordType::A, [format!("10.0.0.{ip}")]),
                    1 => Endpoint::new(name, RecordType::Aaaa, [format!("fd00::{ip}")]),
                    _ => Endpoint::new(name, RecordType::Cname, [format!("t{ip}.example.net")]),
                };
                e.unwrap().with_resource(resource)
            }).collect();
            let total = endpoints.len();
            let merged = merge(endpoints);
            let keys: BTreeSet<RecordKey> = merged.endpoints.iter().map(Endpoint::key).collect();
            prop_assert_eq!(keys.len(), merged.endpoints.len());
            for e in &merged.endpoints {
                if e.record_type == RecordType::Cname {
                    prop_assert!(merged.endpoints.iter().all(|o| o.dns_name != e.dns_name || o.record_type == RecordType::Cname));
                }
            }
            prop_assert!(merged.endpoints.len() + merged.conflicts.len() <= total);
        }
    }
}
