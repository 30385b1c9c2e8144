//! DNSEndpoint objects: their records, as external-dns's AWS provider reads them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::common::{
    DNS_ENDPOINT_KIND, SourceContext, SourceError, SourceOutput, apply_options,
    endpoints_for_targets, resource_of,
};
use crate::dns::annotations::parse_provider_specific;
use crate::dns::endpoint::{DnsName, Endpoint, EndpointError, RecordType, ResourceRef, Ttl};

/// One `spec.endpoints[]` entry of a DNSEndpoint, as plain data so this module does not depend
/// on the CRD types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsEndpointRecord {
    pub dns_name: String,
    pub targets: Vec<String>,
    pub record_type: String,
    pub set_identifier: Option<String>,
    pub record_ttl: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub provider_specific: Vec<(String, String)>,
}

/// Endpoints for a DNSEndpoint's records. A CNAME to an AWS load balancer, or any record with
/// the `alias` property, becomes an ALIAS, as external-dns's AWS provider does.
pub fn dns_endpoint_endpoints(
    resource: &ResourceRef,
    records: &[DnsEndpointRecord],
    ctx: &SourceContext<'_>,
) -> SourceOutput {
    let mut out = SourceOutput::default();
    for record in records {
        let invalid = |error| SourceError::InvalidRecord {
            resource: resource.clone(),
            dns_name: record.dns_name.clone(),
            error,
        };
        let name = match DnsName::parse(&record.dns_name) {
            Ok(name) => name,
            Err(error) => {
                out.errors.push(SourceError::InvalidHostname {
                    resource: resource.clone(),
                    hostname: record.dns_name.clone(),
                    error,
                });
                continue;
            }
        };
        let record_type = match RecordType::parse(&record.record_type) {
            Ok(t) => t,
            Err(error) => {
                out.errors.push(invalid(error));
                continue;
            }
        };
        let properties = record
            .provider_specific
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let mut options =
            match parse_provider_specific(record.set_identifier.as_deref(), properties) {
                Ok(options) => options,
                Err(error) => {
                    out.errors.push(SourceError::Annotation {
                        resource: resource.clone(),
                        error,
                    });
                    continue;
                }
            };
        // external-dns reads a zero TTL as "not set".
        options.ttl = match record.record_ttl.filter(|ttl| *ttl != 0).map(Ttl::new) {
            None => None,
            Some(Ok(ttl)) => Some(ttl),
            Some(Err(error)) => {
                out.errors.push(invalid(error));
                continue;
            }
        };
        let via_targets = record_type == RecordType::Cname
            || (options.alias && matches!(record_type, RecordType::A | RecordType::Aaaa));
        let built = if via_targets {
            let all_hostnames = record
                .targets
                .iter()
                .all(|t| t.trim().parse::<IpAddr>().is_err());
            if !all_hostnames {
                Err(invalid(EndpointError::InvalidTarget {
                    record_type,
                    target: record.targets.join(","),
                    reason: "alias and CNAME targets must be hostnames",
                }))
            } else if record.targets.is_empty() {
                Err(invalid(EndpointError::NoTargets { record_type }))
            } else {
                endpoints_for_targets(&name, &record.targets, &options, resource, ctx)
                    .map_err(|e| *e)
            }
        } else {
            Endpoint::new(name.clone(), record_type, &record.targets)
                .map(|e| vec![apply_options(e, &options, resource)])
                .map_err(invalid)
        };
        match built {
            Ok(endpoints) => out.endpoints.extend(
                endpoints
                    .into_iter()
                    .map(|e| e.with_labels(record.labels.clone())),
            ),
            Err(error) => out.errors.push(error),
        }
    }
    out
}

impl From<&crate::crd::dns_endpoint::Endpoint> for DnsEndpointRecord {
    fn from(endpoint: &crate::crd::dns_endpoint::Endpoint) -> Self {
        DnsEndpointRecord {
            dns_name: endpoint.dns_name.clone(),
            targets: endpoint.targets.clone(),
            // The CRD's enum serialises to the DNS spelling ("AAAA"), which RecordType::parse
            // reads; types causeway does not manage are reported there.
            record_type: endpoint
                .record_type
                .and_then(|t| serde_json::to_value(t).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            set_identifier: endpoint.set_identifier.clone(),
            record_ttl: endpoint.record_ttl,
            labels: endpoint.labels.clone(),
            provider_specific: endpoint
                .provider_specific
                .iter()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect(),
        }
    }
}

/// Endpoints for a DNSEndpoint object.
pub fn dns_endpoint_object_endpoints(
    object: &crate::crd::DNSEndpoint,
    ctx: &SourceContext<'_>,
) -> SourceOutput {
    let resource = resource_of(DNS_ENDPOINT_KIND, &object.metadata);
    let records: Vec<DnsEndpointRecord> = object
        .spec
        .endpoints
        .iter()
        .map(DnsEndpointRecord::from)
        .collect();
    dns_endpoint_endpoints(&resource, &records, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::endpoint::RoutingPolicy;
    use crate::dns::sources::test_support::{ALB, ALB_ZONE, summary};

    fn record(name: &str, record_type: &str, targets: &[&str]) -> DnsEndpointRecord {
        DnsEndpointRecord {
            dns_name: name.into(),
            record_type: record_type.into(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            ..DnsEndpointRecord::default()
        }
    }

    #[test]
    fn dns_endpoint_weighted_records() {
        let resource = ResourceRef::new(DNS_ENDPOINT_KIND, "default", "weighted");
        let mut blue = record("app.example.com", "A", &["10.0.0.1"]);
        blue.set_identifier = Some("blue".into());
        blue.record_ttl = Some(60);
        blue.provider_specific = vec![("aws/weight".into(), "90".into())];
        blue.labels = [("team".to_string(), "shop".to_string())].into();
        let mut green = record("app.example.com", "A", &["10.0.0.2"]);
        green.set_identifier = Some("green".into());
        green.provider_specific = vec![("aws/weight".into(), "10".into())];
        let out = dns_endpoint_endpoints(&resource, &[blue, green], &SourceContext::default());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.endpoints.len(), 2);
        assert_eq!(
            out.endpoints[0].routing.policy,
            RoutingPolicy::Weighted { weight: 90 }
        );
        assert_eq!(out.endpoints[0].ttl, Some(Ttl::new(60).unwrap()));
        assert_eq!(out.endpoints[0].labels["team"], "shop");
        assert_eq!(out.endpoints[1].set_identifier.as_deref(), Some("green"));
        assert_eq!(
            out.endpoints[1].resource.as_ref().unwrap().to_string(),
            "crd/default/weighted"
        );
    }

    #[test]
    fn dns_endpoint_cname_to_elb_becomes_alias() {
        let resource = ResourceRef::new(DNS_ENDPOINT_KIND, "default", "x");
        let out = dns_endpoint_endpoints(
            &resource,
            &[
                record("lb.example.com", "CNAME", &[ALB]),
                record("txt.example.com", "txt", &["hello world"]),
                record("bad.example.com", "SOA", &["x"]),
                record("ip.example.com", "CNAME", &["10.0.0.1"]),
                record("ttl.example.com", "A", &["10.0.0.1"]),
            ]
            .map(|mut r| {
                if r.dns_name == "ttl.example.com" {
                    r.record_ttl = Some(-1);
                }
                r
            }),
            &SourceContext::default(),
        );
        assert_eq!(
            summary(&out.endpoints),
            [
                format!("lb.example.com A ALIAS {ALB} {ALB_ZONE}"),
                format!("lb.example.com AAAA ALIAS {ALB} {ALB_ZONE}"),
                "txt.example.com TXT \"hello world\"".to_string(),
            ]
        );
        assert_eq!(out.errors.len(), 3);
    }

    #[test]
    fn dns_endpoint_objects_convert() {
        use crate::crd::dns_endpoint::{
            Endpoint as CrdEndpoint, ProviderSpecificProperty, RecordType as CrdRecordType,
        };
        let mut object = crate::crd::DNSEndpoint::new(
            "weighted",
            crate::crd::DNSEndpointSpec {
                endpoints: vec![
                    CrdEndpoint {
                        dns_name: "app.example.com".into(),
                        targets: vec!["10.0.0.1".into()],
                        record_type: Some(CrdRecordType::A),
                        set_identifier: Some("blue".into()),
                        record_ttl: Some(60),
                        provider_specific: vec![ProviderSpecificProperty {
                            name: "aws/weight".into(),
                            value: "10".into(),
                        }],
                        ..CrdEndpoint::default()
                    },
                    CrdEndpoint {
                        dns_name: "v6.example.com".into(),
                        targets: vec!["fd00::1".into()],
                        record_type: Some(CrdRecordType::Aaaa),
                        ..CrdEndpoint::default()
                    },
                    CrdEndpoint {
                        dns_name: "ds.example.com".into(),
                        targets: vec!["x".into()],
                        record_type: Some(CrdRecordType::Ds),
                        ..CrdEndpoint::default()
                    },
                ],
            },
        );
        object.metadata.namespace = Some("default".into());
        let out = dns_endpoint_object_endpoints(&object, &SourceContext::default());
        assert_eq!(
            summary(&out.endpoints),
            ["app.example.com A 10.0.0.1", "v6.example.com AAAA fd00::1"]
        );
        assert_eq!(
            out.endpoints[0].routing.policy,
            RoutingPolicy::Weighted { weight: 10 }
        );
        assert_eq!(
            out.endpoints[0].resource.as_ref().unwrap().to_string(),
            "crd/default/weighted"
        );
        assert!(matches!(
            out.errors[..],
            [SourceError::InvalidRecord {
                error: EndpointError::UnsupportedRecordType { .. },
                ..
            }]
        ));
    }
}
