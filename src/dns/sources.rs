//! Pure builders from Kubernetes objects to endpoints, and the merge that settles conflicts
//! between objects.
//!
//! Each builder returns what it could build plus an error per thing it could not, so that one
//! bad hostname on an object does not hold back the object's other hostnames.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::annotations::{
    AnnotationError, HostnameSource, RecordOptions, parse_annotations, parse_provider_specific,
};
use super::elb::canonical_hosted_zone;
use super::endpoint::{
    AliasTarget, DnsName, Endpoint, EndpointError, NameError, RecordKey, RecordType, ResourceRef,
    Ttl, normalize_target,
};

/// Resource kinds as external-dns writes them into ownership records.
pub const INGRESS_KIND: &str = "ingress";
pub const SERVICE_KIND: &str = "service";
pub const DNS_ENDPOINT_KIND: &str = "crd";

static NO_ZONES: BTreeMap<String, String> = BTreeMap::new();
static NO_ANNOTATIONS: BTreeMap<String, String> = BTreeMap::new();

/// What the builders need beyond the object itself.
#[derive(Debug, Clone, Copy)]
pub struct SourceContext<'a> {
    /// Canonical hosted zone ids of load balancers causeway created, by lowercase hostname.
    /// They are used before the public table, so no lookup is needed for our own ALBs.
    pub load_balancer_zones: &'a BTreeMap<String, String>,
    /// `EvaluateTargetHealth` for aliases that do not set it (external-dns defaults to true).
    pub evaluate_target_health: bool,
}

impl Default for SourceContext<'static> {
    fn default() -> Self {
        SourceContext {
            load_balancer_zones: &NO_ZONES,
            evaluate_target_health: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("{resource}: {error}")]
    Annotation {
        resource: ResourceRef,
        error: AnnotationError,
    },
    #[error("{resource}: hostname {hostname:?}: {error}")]
    InvalidHostname {
        resource: ResourceRef,
        hostname: String,
        error: NameError,
    },
    #[error("{resource}: target {target:?} of {hostname}: {error}")]
    InvalidTarget {
        resource: ResourceRef,
        hostname: DnsName,
        target: String,
        error: EndpointError,
    },
    #[error(
        "{resource}: {hostname} mixes IP addresses and hostnames as targets, which cannot share a name in DNS"
    )]
    MixedTargets {
        resource: ResourceRef,
        hostname: DnsName,
    },
    #[error(
        "{resource}: {hostname} has {count} hostname targets; a CNAME or alias takes exactly one"
    )]
    MultipleHostnameTargets {
        resource: ResourceRef,
        hostname: DnsName,
        count: usize,
    },
    #[error("{resource}: Services of type {service_type} are not published")]
    UnsupportedServiceType {
        resource: ResourceRef,
        service_type: String,
    },
    #[error("{resource}: endpoint {dns_name:?}: {error}")]
    InvalidRecord {
        resource: ResourceRef,
        dns_name: String,
        error: EndpointError,
    },
    #[error("{} asks for {key} with other values than {}, which keeps it", describe(.loser), describe(.winner))]
    Conflict {
        key: RecordKey,
        winner: Option<ResourceRef>,
        loser: Option<ResourceRef>,
    },
}

fn describe(resource: &Option<ResourceRef>) -> String {
    resource
        .as_ref()
        .map_or_else(|| "an unnamed source".to_string(), ToString::to_string)
}

impl SourceError {
    /// The objects to report the error on: both sides of a conflict.
    pub fn resources(&self) -> Vec<&ResourceRef> {
        match self {
            SourceError::Annotation { resource, .. }
            | SourceError::InvalidHostname { resource, .. }
            | SourceError::InvalidTarget { resource, .. }
            | SourceError::MixedTargets { resource, .. }
            | SourceError::MultipleHostnameTargets { resource, .. }
            | SourceError::UnsupportedServiceType { resource, .. }
            | SourceError::InvalidRecord { resource, .. } => vec![resource],
            SourceError::Conflict { winner, loser, .. } => {
                winner.iter().chain(loser.iter()).collect()
            }
        }
    }
}

/// Endpoints built from one object, and what could not be built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceOutput {
    pub endpoints: Vec<Endpoint>,
    pub errors: Vec<SourceError>,
}

impl SourceOutput {
    fn error(error: SourceError) -> Self {
        SourceOutput {
            endpoints: Vec::new(),
            errors: vec![error],
        }
    }
}

fn resource_of(kind: &str, meta: &ObjectMeta) -> ResourceRef {
    ResourceRef::new(
        kind,
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Validates hostnames, keeping the valid ones in order without duplicates.
fn hostnames<'a>(
    raw: impl IntoIterator<Item = &'a str>,
    resource: &ResourceRef,
    out: &mut SourceOutput,
) -> Vec<DnsName> {
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    for hostname in raw {
        match DnsName::parse(hostname) {
            Ok(name) => {
                if seen.insert(name.clone()) {
                    names.push(name);
                }
            }
            Err(error) => out.errors.push(SourceError::InvalidHostname {
                resource: resource.clone(),
                hostname: hostname.to_string(),
                error,
            }),
        }
    }
    names
}

fn apply_options(endpoint: Endpoint, options: &RecordOptions, resource: &ResourceRef) -> Endpoint {
    endpoint
        .with_ttl(options.ttl)
        .with_set_identifier(options.set_identifier.clone())
        .with_routing(options.routing.clone())
        .with_resource(resource.clone())
}

/// Turns a hostname's targets into records: IPs become A/AAAA, an AWS load balancer (or any
/// hostname with the alias option) an ALIAS, any other hostname a CNAME.
fn endpoints_for_targets(
    host: &DnsName,
    targets: &[String],
    options: &RecordOptions,
    resource: &ResourceRef,
    ctx: &SourceContext<'_>,
) -> Result<Vec<Endpoint>, Box<SourceError>> {
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for target in targets {
        let trimmed = target.trim();
        match trimmed.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => {
                v4.insert(ip.to_string());
            }
            Ok(IpAddr::V6(ip)) => {
                v6.insert(ip.to_string());
            }
            Err(_) => {
                let normalized = normalize_target(RecordType::Cname, trimmed).map_err(|error| {
                    Box::new(SourceError::InvalidTarget {
                        resource: resource.clone(),
                        hostname: host.clone(),
                        target: target.clone(),
                        error,
                    })
                })?;
                hosts.insert(normalized);
            }
        }
    }
    let has_ips = !v4.is_empty() || !v6.is_empty();
    if has_ips && !hosts.is_empty() {
        return Err(Box::new(SourceError::MixedTargets {
            resource: resource.clone(),
            hostname: host.clone(),
        }));
    }
    if hosts.len() > 1 {
        return Err(Box::new(SourceError::MultipleHostnameTargets {
            resource: resource.clone(),
            hostname: host.clone(),
            count: hosts.len(),
        }));
    }
    let invalid = |error| {
        Box::new(SourceError::InvalidRecord {
            resource: resource.clone(),
            dns_name: host.to_string(),
            error,
        })
    };
    let mut out = Vec::new();
    if let Some(target) = hosts.first() {
        let canonical = ctx
            .load_balancer_zones
            .get(target)
            .cloned()
            .or_else(|| canonical_hosted_zone(target).map(str::to_string));
        let evaluate = options
            .evaluate_target_health
            .unwrap_or(ctx.evaluate_target_health);
        let zone = options.target_hosted_zone.clone().or(canonical.clone());
        if zone.is_some() || options.alias {
            // AWS targets serve both families; a same-zone alias only knows its A record.
            let types: &[RecordType] = if canonical.is_some() {
                &[RecordType::A, RecordType::Aaaa]
            } else {
                &[RecordType::A]
            };
            for &record_type in types {
                let alias = AliasTarget::new(target, zone.clone(), evaluate);
                out.push(Endpoint::alias(host.clone(), record_type, alias).map_err(invalid)?);
            }
        } else {
            out.push(Endpoint::new(host.clone(), RecordType::Cname, [target]).map_err(invalid)?);
        }
    }
    if !v4.is_empty() {
        out.push(Endpoint::new(host.clone(), RecordType::A, &v4).map_err(invalid)?);
    }
    if !v6.is_empty() {
        out.push(Endpoint::new(host.clone(), RecordType::Aaaa, &v6).map_err(invalid)?);
    }
    Ok(out
        .into_iter()
        .map(|e| apply_options(e, options, resource))
        .collect())
}

fn publish(
    hosts: &[DnsName],
    targets: &[String],
    options: &RecordOptions,
    resource: &ResourceRef,
    ctx: &SourceContext<'_>,
    out: &mut SourceOutput,
) {
    if targets.is_empty() {
        // The load balancer has no address yet; the status update will bring us back.
        return;
    }
    for host in hosts {
        match endpoints_for_targets(host, targets, options, resource, ctx) {
            Ok(endpoints) => out.endpoints.extend(endpoints),
            Err(error) => out.errors.push(*error),
        }
    }
}

/// Endpoints for an Ingress: its rule hosts and hostname annotation, pointing at its load
/// balancer (or the target annotation).
pub fn ingress_endpoints(ingress: &Ingress, ctx: &SourceContext<'_>) -> SourceOutput {
    let resource = resource_of(INGRESS_KIND, &ingress.metadata);
    let annotations = ingress
        .metadata
        .annotations
        .as_ref()
        .unwrap_or(&NO_ANNOTATIONS);
    let parsed = match parse_annotations(annotations) {
        Ok(parsed) => parsed,
        Err(error) => return SourceOutput::error(SourceError::Annotation { resource, error }),
    };
    let mut raw: Vec<&str> = Vec::new();
    if parsed.hostname_source != HostnameSource::AnnotationOnly {
        raw.extend(
            ingress
                .spec
                .iter()
                .flat_map(|s| s.rules.iter().flatten())
                .filter_map(|rule| rule.host.as_deref())
                .filter(|h| !h.is_empty()),
        );
    }
    if parsed.hostname_source != HostnameSource::DefinedHostsOnly {
        raw.extend(parsed.hostnames.iter().map(String::as_str));
    }
    let mut out = SourceOutput::default();
    let hosts = hostnames(raw, &resource, &mut out);
    let targets = if parsed.targets.is_empty() {
        ingress
            .status
            .iter()
            .filter_map(|s| s.load_balancer.as_ref())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|i| i.hostname.clone().or_else(|| i.ip.clone()))
            .collect()
    } else {
        parsed.targets.clone()
    };
    publish(&hosts, &targets, &parsed.options, &resource, ctx, &mut out);
    out
}

/// Endpoints for a Service. LoadBalancer Services point at their load balancer, ClusterIP
/// Services at their cluster IP, ExternalName Services at their external name; a headless
/// Service publishes its ready Pods from `slices` (the Service's EndpointSlices), per-Pod names
/// for Pods with a hostname, and an SRV record per named port. Nothing is published without a
/// hostname annotation.
pub fn service_endpoints(
    service: &Service,
    slices: &[EndpointSlice],
    ctx: &SourceContext<'_>,
) -> SourceOutput {
    let resource = resource_of(SERVICE_KIND, &service.metadata);
    let annotations = service
        .metadata
        .annotations
        .as_ref()
        .unwrap_or(&NO_ANNOTATIONS);
    let parsed = match parse_annotations(annotations) {
        Ok(parsed) => parsed,
        Err(error) => return SourceOutput::error(SourceError::Annotation { resource, error }),
    };
    let mut out = SourceOutput::default();
    let public = hostnames(
        parsed.hostnames.iter().map(String::as_str),
        &resource,
        &mut out,
    );
    let internal = hostnames(
        parsed.internal_hostnames.iter().map(String::as_str),
        &resource,
        &mut out,
    );
    if public.is_empty() && internal.is_empty() {
        return out;
    }
    let no_spec = ServiceSpec::default();
    let spec = service.spec.as_ref().unwrap_or(&no_spec);
    let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let cluster_ips: Vec<String> = spec
        .cluster_ips
        .clone()
        .filter(|ips| !ips.is_empty())
        .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
        .unwrap_or_default()
        .into_iter()
        .filter(|ip| !ip.is_empty() && ip != "None")
        .collect();
    let options = &parsed.options;
    let with_override = |default: Vec<String>| {
        if parsed.targets.is_empty() {
            default
        } else {
            parsed.targets.clone()
        }
    };

    if headless {
        let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
        for host in public.iter().chain(&internal) {
            headless_endpoints(
                host,
                slices,
                publish_not_ready,
                options,
                &resource,
                &mut out,
            );
        }
        return out;
    }
    let targets = match service_type {
        "LoadBalancer" => with_override(
            service
                .status
                .iter()
                .filter_map(|s| s.load_balancer.as_ref())
                .flat_map(|lb| lb.ingress.iter().flatten())
                .filter_map(|i| i.hostname.clone().or_else(|| i.ip.clone()))
                .collect(),
        ),
        "ClusterIP" => with_override(cluster_ips.clone()),
        "ExternalName" => with_override(spec.external_name.iter().cloned().collect()),
        other => {
            if !public.is_empty() {
                out.errors.push(SourceError::UnsupportedServiceType {
                    resource: resource.clone(),
                    service_type: other.to_string(),
                });
            }
            Vec::new()
        }
    };
    publish(&public, &targets, options, &resource, ctx, &mut out);
    // The internal hostname always names the cluster IP, whatever the type.
    publish(&internal, &cluster_ips, options, &resource, ctx, &mut out);
    out
}

fn headless_endpoints(
    host: &DnsName,
    slices: &[EndpointSlice],
    publish_not_ready: bool,
    options: &RecordOptions,
    resource: &ResourceRef,
    out: &mut SourceOutput,
) {
    let mut addresses: BTreeMap<RecordType, BTreeSet<String>> = BTreeMap::new();
    let mut per_pod: BTreeMap<String, BTreeMap<RecordType, BTreeSet<String>>> = BTreeMap::new();
    let mut srv_targets: BTreeSet<String> = BTreeSet::new();
    // (port name, protocol) -> port numbers
    let mut ports: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();

    for slice in slices {
        let record_type = match slice.address_type.as_str() {
            "IPv4" => RecordType::A,
            "IPv6" => RecordType::Aaaa,
            _ => continue,
        };
        let mut any_ready = false;
        for endpoint in slice.endpoints.iter().flatten() {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready && !publish_not_ready {
                continue;
            }
            let mut valid = Vec::new();
            for address in &endpoint.addresses {
                match normalize_target(record_type, address) {
                    Ok(a) => valid.push(a),
                    Err(error) => out.errors.push(SourceError::InvalidTarget {
                        resource: resource.clone(),
                        hostname: host.clone(),
                        target: address.clone(),
                        error,
                    }),
                }
            }
            if valid.is_empty() {
                continue;
            }
            any_ready = true;
            addresses
                .entry(record_type)
                .or_default()
                .extend(valid.iter().cloned());
            match endpoint.hostname.as_deref().filter(|h| !h.is_empty()) {
                Some(pod) => {
                    per_pod
                        .entry(pod.to_string())
                        .or_default()
                        .entry(record_type)
                        .or_default()
                        .extend(valid);
                    srv_targets.insert(format!("{pod}.{host}"));
                }
                None => {
                    srv_targets.insert(host.to_string());
                }
            }
        }
        if !any_ready {
            continue;
        }
        for port in slice.ports.iter().flatten() {
            let (Some(name), Some(number)) = (port.name.as_deref(), port.port) else {
                continue;
            };
            let Ok(number) = u16::try_from(number) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let protocol = port
                .protocol
                .as_deref()
                .unwrap_or("TCP")
                .to_ascii_lowercase();
            ports
                .entry((name.to_ascii_lowercase(), protocol))
                .or_default()
                .insert(number);
        }
    }

    let mut push =
        |name: &DnsName, record_type: RecordType, values: &BTreeSet<String>| match Endpoint::new(
            name.clone(),
            record_type,
            values,
        ) {
            Ok(e) => out.endpoints.push(apply_options(e, options, resource)),
            Err(error) => out.errors.push(SourceError::InvalidRecord {
                resource: resource.clone(),
                dns_name: name.to_string(),
                error,
            }),
        };
    for (record_type, values) in &addresses {
        push(host, *record_type, values);
    }
    let mut invalid_names = Vec::new();
    for (pod, families) in &per_pod {
        match host.child(pod) {
            Ok(name) => {
                for (record_type, values) in families {
                    push(&name, *record_type, values);
                }
            }
            Err(error) => invalid_names.push((format!("{pod}.{host}"), error)),
        }
    }
    for ((port_name, protocol), numbers) in &ports {
        match host.child(&format!("_{port_name}._{protocol}")) {
            Ok(name) => {
                let values: BTreeSet<String> = numbers
                    .iter()
                    .flat_map(|port| srv_targets.iter().map(move |t| format!("0 1 {port} {t}")))
                    .collect();
                push(&name, RecordType::Srv, &values);
            }
            Err(error) => invalid_names.push((format!("_{port_name}._{protocol}.{host}"), error)),
        }
    }
    for (hostname, error) in invalid_names {
        out.errors.push(SourceError::InvalidHostname {
            resource: resource.clone(),
            hostname,
            error,
        });
    }
}

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
    use super::*;
    use crate::dns::endpoint::{Routing, RoutingPolicy};
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    use k8s_openapi::api::discovery::v1::{
        Endpoint as SliceEndpoint, EndpointConditions, EndpointPort,
    };
    use k8s_openapi::api::networking::v1::{
        IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressRule, IngressSpec,
        IngressStatus,
    };
    use proptest::prelude::*;

    const ALB: &str = "k8s-default-web-1234567890.us-east-1.elb.amazonaws.com";
    const ALB_ZONE: &str = "Z35SXDOTRQ7X7K";

    fn meta(name: &str, annotations: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    fn ingress(name: &str, hosts: &[&str], annotations: &[(&str, &str)], lb: &[&str]) -> Ingress {
        Ingress {
            metadata: meta(name, annotations),
            spec: Some(IngressSpec {
                rules: Some(
                    hosts
                        .iter()
                        .map(|h| IngressRule {
                            host: Some(h.to_string()),
                            http: None,
                        })
                        .collect(),
                ),
                ..IngressSpec::default()
            }),
            status: Some(IngressStatus {
                load_balancer: Some(IngressLoadBalancerStatus {
                    ingress: Some(
                        lb.iter()
                            .map(|t| {
                                let is_ip = t.parse::<IpAddr>().is_ok();
                                IngressLoadBalancerIngress {
                                    hostname: (!is_ip).then(|| t.to_string()),
                                    ip: is_ip.then(|| t.to_string()),
                                    ports: None,
                                }
                            })
                            .collect(),
                    ),
                }),
            }),
        }
    }

    fn service(
        name: &str,
        annotations: &[(&str, &str)],
        spec: ServiceSpec,
        lb: &[&str],
    ) -> Service {
        Service {
            metadata: meta(name, annotations),
            spec: Some(spec),
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(
                        lb.iter()
                            .map(|h| LoadBalancerIngress {
                                hostname: Some(h.to_string()),
                                ..LoadBalancerIngress::default()
                            })
                            .collect(),
                    ),
                }),
                ..ServiceStatus::default()
            }),
        }
    }

    /// Endpoints as "name TYPE value,value" lines, for readable expectations.
    fn summary(endpoints: &[Endpoint]) -> Vec<String> {
        let mut lines: Vec<String> = endpoints
            .iter()
            .map(|e| {
                let values = match &e.alias {
                    Some(a) => format!(
                        "ALIAS {} {}",
                        a.dns_name,
                        a.hosted_zone_id.as_deref().unwrap_or("same-zone")
                    ),
                    None => e.targets.iter().cloned().collect::<Vec<_>>().join(","),
                };
                format!("{} {} {}", e.dns_name, e.record_type, values)
            })
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn ingress_with_alb_gets_alias_a_and_aaaa() {
        let ing = ingress(
            "web",
            &["web.example.com", "www.example.com"],
            &[(
                "external-dns.alpha.kubernetes.io/hostname",
                "extra.example.com",
            )],
            &[ALB],
        );
        let out = ingress_endpoints(&ing, &SourceContext::default());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(
            summary(&out.endpoints),
            [
                format!("extra.example.com A ALIAS {ALB} {ALB_ZONE}"),
                format!("extra.example.com AAAA ALIAS {ALB} {ALB_ZONE}"),
                format!("web.example.com A ALIAS {ALB} {ALB_ZONE}"),
                format!("web.example.com AAAA ALIAS {ALB} {ALB_ZONE}"),
                format!("www.example.com A ALIAS {ALB} {ALB_ZONE}"),
                format!("www.example.com AAAA ALIAS {ALB} {ALB_ZONE}"),
            ]
        );
        let resource = out.endpoints[0].resource.as_ref().unwrap();
        assert_eq!(resource.to_string(), "ingress/default/web");
        assert!(
            out.endpoints[0]
                .alias
                .as_ref()
                .unwrap()
                .evaluate_target_health
        );
    }

    #[test]
    fn our_own_albs_use_the_supplied_zone() {
        let zones: BTreeMap<String, String> =
            [("internal-lb.example.net".to_string(), "ZOURS".to_string())].into();
        let ctx = SourceContext {
            load_balancer_zones: &zones,
            evaluate_target_health: false,
        };
        let out = ingress_endpoints(
            &ingress(
                "web",
                &["web.example.com"],
                &[],
                &["Internal-LB.example.net."],
            ),
            &ctx,
        );
        assert_eq!(
            summary(&out.endpoints),
            [
                "web.example.com A ALIAS internal-lb.example.net ZOURS",
                "web.example.com AAAA ALIAS internal-lb.example.net ZOURS",
            ]
        );
        assert!(
            !out.endpoints[0]
                .alias
                .as_ref()
                .unwrap()
                .evaluate_target_health
        );
    }

    #[test]
    fn target_annotation_overrides_status() {
        let ing = ingress(
            "web",
            &["web.example.com"],
            &[
                (
                    "external-dns.kubernetes.io/target",
                    "10.0.0.2, 10.0.0.1,2001:db8::1",
                ),
                ("external-dns.kubernetes.io/ttl", "60"),
            ],
            &[ALB],
        );
        let out = ingress_endpoints(&ing, &SourceContext::default());
        assert_eq!(
            summary(&out.endpoints),
            [
                "web.example.com A 10.0.0.1,10.0.0.2",
                "web.example.com AAAA 2001:db8::1"
            ]
        );
        assert!(
            out.endpoints
                .iter()
                .all(|e| e.ttl == Some(Ttl::new(60).unwrap()))
        );
    }

    #[test]
    fn plain_hostnames_become_cnames() {
        let out = ingress_endpoints(
            &ingress("web", &["web.example.com"], &[], &["lb.other-cloud.net"]),
            &SourceContext::default(),
        );
        assert_eq!(
            summary(&out.endpoints),
            ["web.example.com CNAME lb.other-cloud.net"]
        );
        let alias = ingress_endpoints(
            &ingress(
                "web",
                &["web.example.com"],
                &[("external-dns.kubernetes.io/alias", "true")],
                &["origin.example.com"],
            ),
            &SourceContext::default(),
        );
        assert_eq!(
            summary(&alias.endpoints),
            ["web.example.com A ALIAS origin.example.com same-zone"]
        );
    }

    #[test]
    fn hostname_source_annotation() {
        let only_annotation = ingress(
            "web",
            &["rule.example.com"],
            &[
                (
                    "external-dns.alpha.kubernetes.io/ingress-hostname-source",
                    "annotation-only",
                ),
                (
                    "external-dns.alpha.kubernetes.io/hostname",
                    "annotated.example.com",
                ),
            ],
            &["10.0.0.1"],
        );
        let out = ingress_endpoints(&only_annotation, &SourceContext::default());
        assert_eq!(
            summary(&out.endpoints),
            ["annotated.example.com A 10.0.0.1"]
        );
    }

    #[test]
    fn bad_input_is_reported_per_hostname() {
        let long = format!("{}.example.com", "x".repeat(64));
        let out = ingress_endpoints(
            &ingress(
                "web",
                &["good.example.com", &long, "bad!.example.com"],
                &[],
                &["10.0.0.1"],
            ),
            &SourceContext::default(),
        );
        assert_eq!(summary(&out.endpoints), ["good.example.com A 10.0.0.1"]);
        assert_eq!(out.errors.len(), 2);
        assert!(matches!(
            &out.errors[0],
            SourceError::InvalidHostname {
                error: NameError::LabelTooLong { .. },
                ..
            }
        ));

        let out = ingress_endpoints(
            &ingress(
                "web",
                &["good.example.com"],
                &[("external-dns.kubernetes.io/ttl", "0")],
                &["10.0.0.1"],
            ),
            &SourceContext::default(),
        );
        assert!(out.endpoints.is_empty());
        assert!(matches!(
            &out.errors[0],
            SourceError::Annotation {
                error: AnnotationError::TtlOutOfRange { seconds: 0, .. },
                ..
            }
        ));

        let mixed = ingress_endpoints(
            &ingress("web", &["a.example.com"], &[], &["10.0.0.1", ALB]),
            &SourceContext::default(),
        );
        assert!(matches!(mixed.errors[0], SourceError::MixedTargets { .. }));
        let two = ingress_endpoints(
            &ingress(
                "web",
                &["a.example.com"],
                &[],
                &["x.example.net", "y.example.net"],
            ),
            &SourceContext::default(),
        );
        assert!(matches!(
            two.errors[0],
            SourceError::MultipleHostnameTargets { count: 2, .. }
        ));
    }

    #[test]
    fn ingress_without_address_publishes_nothing_yet() {
        let out = ingress_endpoints(
            &ingress("web", &["web.example.com"], &[], &[]),
            &SourceContext::default(),
        );
        assert_eq!(out, SourceOutput::default());
    }

    #[test]
    fn load_balancer_service_with_routing() {
        let nlb = "k8s-default-api-0123456789.elb.eu-west-1.amazonaws.com";
        let svc = service(
            "api",
            &[
                (
                    "external-dns.alpha.kubernetes.io/hostname",
                    "api.example.com",
                ),
                ("external-dns.alpha.kubernetes.io/set-identifier", "eu"),
                ("external-dns.alpha.kubernetes.io/aws-region", "eu-west-1"),
            ],
            ServiceSpec {
                type_: Some("LoadBalancer".into()),
                cluster_ip: Some("10.96.0.10".into()),
                ..ServiceSpec::default()
            },
            &[nlb],
        );
        let out = service_endpoints(&svc, &[], &SourceContext::default());
        assert_eq!(
            summary(&out.endpoints),
            [
                format!("api.example.com A ALIAS {nlb} Z2IFOLAFXWLO4F"),
                format!("api.example.com AAAA ALIAS {nlb} Z2IFOLAFXWLO4F"),
            ]
        );
        assert!(
            out.endpoints
                .iter()
                .all(|e| e.set_identifier.as_deref() == Some("eu")
                    && e.routing
                        == Routing {
                            policy: RoutingPolicy::Latency {
                                region: "eu-west-1".into()
                            },
                            health_check_id: None
                        })
        );
    }

    #[test]
    fn cluster_ip_and_internal_hostname() {
        let svc = service(
            "db",
            &[
                ("external-dns.kubernetes.io/hostname", "db.example.com"),
                (
                    "external-dns.kubernetes.io/internal-hostname",
                    "db.internal.example.com",
                ),
            ],
            ServiceSpec {
                cluster_ip: Some("10.96.0.20".into()),
                cluster_ips: Some(vec!["10.96.0.20".into(), "fd00::20".into()]),
                ..ServiceSpec::default()
            },
            &[],
        );
        let out = service_endpoints(&svc, &[], &SourceContext::default());
        assert_eq!(
            summary(&out.endpoints),
            [
                "db.example.com A 10.96.0.20",
                "db.example.com AAAA fd00::20",
                "db.internal.example.com A 10.96.0.20",
                "db.internal.example.com AAAA fd00::20",
            ]
        );
    }

    #[test]
    fn unannotated_and_unsupported_services() {
        let plain = service("x", &[], ServiceSpec::default(), &[]);
        assert_eq!(
            service_endpoints(&plain, &[], &SourceContext::default()),
            SourceOutput::default()
        );
        let node_port = service(
            "x",
            &[("external-dns.kubernetes.io/hostname", "x.example.com")],
            ServiceSpec {
                type_: Some("NodePort".into()),
                ..ServiceSpec::default()
            },
            &[],
        );
        let out = service_endpoints(&node_port, &[], &SourceContext::default());
        assert!(matches!(
            out.errors[..],
            [SourceError::UnsupportedServiceType { .. }]
        ));
    }

    fn slice(
        address_type: &str,
        endpoints: Vec<SliceEndpoint>,
        ports: &[(&str, i32, &str)],
    ) -> EndpointSlice {
        EndpointSlice {
            address_type: address_type.into(),
            endpoints: Some(endpoints),
            metadata: ObjectMeta::default(),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port, protocol)| EndpointPort {
                        name: Some(name.to_string()),
                        port: Some(*port),
                        protocol: Some(protocol.to_string()),
                        app_protocol: None,
                    })
                    .collect(),
            ),
        }
    }

    fn pod(address: &str, hostname: Option<&str>, ready: Option<bool>) -> SliceEndpoint {
        SliceEndpoint {
            addresses: vec![address.into()],
            conditions: Some(EndpointConditions {
                ready,
                ..EndpointConditions::default()
            }),
            hostname: hostname.map(str::to_string),
            ..SliceEndpoint::default()
        }
    }

    #[test]
    fn headless_service_publishes_ready_pods_and_srv() {
        let svc = service(
            "kafka",
            &[(
                "external-dns.kubernetes.io/hostname",
                "kafka.svc.example.com",
            )],
            ServiceSpec {
                cluster_ip: Some("None".into()),
                ..ServiceSpec::default()
            },
            &[],
        );
        let slices = [
            slice(
                "IPv4",
                vec![
                    pod("10.0.1.1", Some("kafka-0"), Some(true)),
                    pod("10.0.1.2", Some("kafka-1"), None),
                    pod("10.0.1.3", Some("kafka-2"), Some(false)),
                ],
                &[("broker", 9092, "TCP"), ("", 9999, "TCP")],
            ),
            slice(
                "FQDN",
                vec![pod("ignored.example.com", None, Some(true))],
                &[],
            ),
        ];
        let out = service_endpoints(&svc, &slices, &SourceContext::default());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(
            summary(&out.endpoints),
            [
                "_broker._tcp.kafka.svc.example.com SRV 0 1 9092 kafka-0.kafka.svc.example.com,0 1 9092 kafka-1.kafka.svc.example.com",
                "kafka-0.kafka.svc.example.com A 10.0.1.1",
                "kafka-1.kafka.svc.example.com A 10.0.1.2",
                "kafka.svc.example.com A 10.0.1.1,10.0.1.2",
            ]
        );
    }

    #[test]
    fn headless_without_ready_pods_publishes_nothing() {
        let svc = service(
            "kafka",
            &[("external-dns.kubernetes.io/hostname", "kafka.example.com")],
            ServiceSpec {
                cluster_ip: Some("None".into()),
                ..ServiceSpec::default()
            },
            &[],
        );
        let slices = [slice(
            "IPv4",
            vec![pod("10.0.1.3", None, Some(false))],
            &[("http", 80, "TCP")],
        )];
        let out = service_endpoints(&svc, &slices, &SourceContext::default());
        assert_eq!(out, SourceOutput::default());
    }

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
