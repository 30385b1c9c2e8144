//! What all sources share: the builders' context, output and errors, and turning a hostname's
//! targets into endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::dns::annotations::{AnnotationError, RecordOptions};
use crate::dns::elb::canonical_hosted_zone;
use crate::dns::endpoint::{
    AliasTarget, DnsName, Endpoint, EndpointError, NameError, RecordKey, RecordType, ResourceRef,
    normalize_target,
};

/// Resource kinds as external-dns writes them into ownership records.
pub const INGRESS_KIND: &str = "ingress";
pub const SERVICE_KIND: &str = "service";
pub const DNS_ENDPOINT_KIND: &str = "crd";
pub const HTTP_ROUTE_KIND: &str = "httproute";

static NO_ZONES: BTreeMap<String, String> = BTreeMap::new();
pub(super) static NO_ANNOTATIONS: BTreeMap<String, String> = BTreeMap::new();

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
    pub(super) fn error(error: SourceError) -> Self {
        SourceOutput {
            endpoints: Vec::new(),
            errors: vec![error],
        }
    }
}

pub(super) fn resource_of(kind: &str, meta: &ObjectMeta) -> ResourceRef {
    ResourceRef::new(
        kind,
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Validates hostnames, keeping the valid ones in order without duplicates.
pub(super) fn hostnames<'a>(
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

pub(super) fn apply_options(
    endpoint: Endpoint,
    options: &RecordOptions,
    resource: &ResourceRef,
) -> Endpoint {
    endpoint
        .with_ttl(options.ttl)
        .with_set_identifier(options.set_identifier.clone())
        .with_routing(options.routing.clone())
        .with_resource(resource.clone())
}

/// Turns a hostname's targets into records: IPs become A/AAAA, an AWS load balancer (or any
/// hostname with the alias option) an ALIAS, any other hostname a CNAME.
pub(super) fn endpoints_for_targets(
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

pub(super) fn publish(
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
