//! From the Kubernetes objects in the caches to the merged desired endpoints, plus every
//! problem found on the way, keyed by the object it is reported on. Pure: the controller and
//! `causeway plan` share it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::endpoint::{Endpoint, ResourceRef};
use super::plan::PlanError;
use super::sources::{
    DNS_ENDPOINT_KIND, HTTP_ROUTE_KIND, INGRESS_KIND, SERVICE_KIND, SourceContext, SourceError,
    dns_endpoint_object_endpoints, http_route_endpoints, ingress_endpoints, merge,
    service_endpoints,
};
use super::zones::ZoneError;
use crate::crd::DNSEndpoint;

/// The label the EndpointSlice controller puts on slices of headless Services; watching only
/// those keeps EndpointSlice memory proportional to the headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
use crate::k8s::SERVICE_NAME_LABEL;

/// Condition and Event reasons.
pub mod reason {
    pub const PUBLISHED: &str = "Published";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const INVALID_HOSTNAME: &str = "InvalidHostname";
    pub const CONFLICT: &str = "Conflict";
    pub const OUTSIDE_ZONES: &str = "OutsideManagedZones";
    pub const CNAME_AT_APEX: &str = "CnameAtApex";
    pub const NOT_OWNED: &str = "RecordNotOwned";
    pub const ROUTE53_REJECTED: &str = "Route53Rejected";
    pub const PENDING: &str = "Pending";
}

/// One thing wrong with one object, as it goes into a condition and an Event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

/// Problems by object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub BTreeMap<ResourceRef, BTreeSet<Problem>>);

impl Problems {
    pub fn add(&mut self, resource: &ResourceRef, reason: &'static str, message: String) {
        self.0
            .entry(resource.clone())
            .or_default()
            .insert(Problem { reason, message });
    }

    pub fn source(&mut self, error: &SourceError) {
        let reason = match error {
            SourceError::InvalidHostname { .. } => reason::INVALID_HOSTNAME,
            SourceError::Conflict { .. } => reason::CONFLICT,
            _ => reason::INVALID_SPEC,
        };
        // A conflict is the loser's problem: the winner's records are published as asked.
        let resources: Vec<&ResourceRef> = match error {
            SourceError::Conflict { loser, .. } => loser.iter().collect(),
            other => other.resources(),
        };
        for resource in resources {
            self.add(resource, reason, error.to_string());
        }
    }

    pub fn zone(&mut self, error: &ZoneError) {
        let reason = match error {
            ZoneError::CnameAtApex { .. } => reason::CNAME_AT_APEX,
            ZoneError::OutsideManagedZones { .. } | ZoneError::ExcludedByDomainFilter { .. } => {
                reason::OUTSIDE_ZONES
            }
            _ => reason::INVALID_SPEC,
        };
        if let Some(resource) = error.resource() {
            self.add(resource, reason, error.to_string());
        }
    }

    pub fn plan(&mut self, error: &PlanError) {
        let reason = match error {
            PlanError::NotOwned { .. }
            | PlanError::OwnershipNameTaken { .. }
            | PlanError::CollidesWithOwnershipRecord { .. } => reason::NOT_OWNED,
            PlanError::Duplicate { .. } | PlanError::CnameConflict { .. } => reason::CONFLICT,
            PlanError::OutsideZone { .. } | PlanError::ExcludedByDomainFilter { .. } => {
                reason::OUTSIDE_ZONES
            }
            _ => reason::INVALID_SPEC,
        };
        if let Some(resource) = error.resource() {
            self.add(resource, reason, error.to_string());
        }
    }

    pub fn get(&self, resource: &ResourceRef) -> Option<&BTreeSet<Problem>> {
        self.0.get(resource).filter(|p| !p.is_empty())
    }
}

/// external-dns's `--annotation-filter`: `key` (present) or `key=value`, all must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnotationFilter(pub Vec<(String, Option<String>)>);

impl AnnotationFilter {
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
                None => (part, None),
            };
            if key.is_empty() {
                return Err(format!("{part:?} has no key (expected key or key=value)"));
            }
            out.push((key.to_string(), value));
        }
        Ok(AnnotationFilter(out))
    }

    pub fn matches(&self, meta: &ObjectMeta) -> bool {
        self.0.iter().all(|(key, value)| {
            let actual = meta.annotations.as_ref().and_then(|a| a.get(key));
            match (actual, value) {
                (Some(a), Some(v)) => a == v,
                (Some(_), None) => true,
                (None, _) => false,
            }
        })
    }
}

/// Which kinds are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceKinds {
    pub ingress: bool,
    pub service: bool,
    pub dns_endpoint: bool,
    /// HTTPRoutes (external-dns's `gateway-httproute`); off unless asked, it needs the
    /// Gateway API CRDs.
    pub http_route: bool,
}

impl Default for SourceKinds {
    fn default() -> Self {
        SourceKinds {
            ingress: true,
            service: true,
            dns_endpoint: true,
            http_route: false,
        }
    }
}

/// The objects to publish.
#[derive(Debug, Default, Clone, Copy)]
pub struct Objects<'a> {
    pub ingresses: &'a [&'a Ingress],
    pub services: &'a [&'a Service],
    pub endpoint_slices: &'a [&'a EndpointSlice],
    pub dns_endpoints: &'a [&'a DNSEndpoint],
    pub http_routes: &'a [&'a gateway_api::httproutes::HttpRoute],
    pub gateways: &'a [&'a gateway_api::gateways::Gateway],
}

/// What the objects ask for.
#[derive(Debug, Default)]
pub struct Desired {
    pub endpoints: Vec<Endpoint>,
    pub problems: Problems,
    /// Every object that was read (uid and generation), so reports reach objects that are
    /// fine too (their conditions turn back to Ready).
    pub objects: BTreeMap<ResourceRef, ObjectInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectInfo {
    pub uid: Option<String>,
    pub generation: Option<i64>,
}

fn resource_of(kind: &str, meta: &ObjectMeta) -> ResourceRef {
    ResourceRef::new(
        kind,
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

fn info(meta: &ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        uid: meta.uid.clone(),
        generation: meta.generation,
    }
}

/// True when a Service asks to be published; the controller keeps only these Services' specs.
pub fn service_wants_dns(meta: &ObjectMeta) -> bool {
    meta.annotations.as_ref().is_some_and(|a| {
        a.keys().any(|k| {
            [
                super::annotations::PREFIX,
                super::annotations::LEGACY_PREFIX,
            ]
            .iter()
            .any(|p| {
                k.strip_prefix(p)
                    .is_some_and(|rest| rest == "hostname" || rest == "internal-hostname")
            })
        })
    })
}

/// Builds and merges every object's endpoints.
pub fn desired(
    objects: &Objects<'_>,
    kinds: SourceKinds,
    filter: &AnnotationFilter,
    ctx: &SourceContext<'_>,
) -> Desired {
    let mut out = Desired::default();
    let mut all = Vec::new();
    let mut take = |kind: &str, meta: &ObjectMeta, built: super::sources::SourceOutput| {
        out.objects.insert(resource_of(kind, meta), info(meta));
        for error in &built.errors {
            out.problems.source(error);
        }
        all.extend(built.endpoints);
    };
    if kinds.ingress {
        for ingress in objects.ingresses {
            if filter.matches(&ingress.metadata) && ingress.metadata.deletion_timestamp.is_none() {
                take(
                    INGRESS_KIND,
                    &ingress.metadata,
                    ingress_endpoints(ingress, ctx),
                );
            }
        }
    }
    if kinds.service {
        for service in objects.services {
            let meta = &service.metadata;
            if !service_wants_dns(meta)
                || !filter.matches(meta)
                || meta.deletion_timestamp.is_some()
            {
                continue;
            }
            let slices: Vec<EndpointSlice> = objects
                .endpoint_slices
                .iter()
                .filter(|s| {
                    s.metadata.namespace == meta.namespace
                        && s.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(SERVICE_NAME_LABEL))
                            == meta.name.as_ref()
                })
                .map(|s| (*s).clone())
                .collect();
            take(SERVICE_KIND, meta, service_endpoints(service, &slices, ctx));
        }
    }
    if kinds.dns_endpoint {
        for object in objects.dns_endpoints {
            if filter.matches(&object.metadata) && object.metadata.deletion_timestamp.is_none() {
                take(
                    DNS_ENDPOINT_KIND,
                    &object.metadata,
                    dns_endpoint_object_endpoints(object, ctx),
                );
            }
        }
    }
    if kinds.http_route {
        for route in objects.http_routes {
            if filter.matches(&route.metadata) && route.metadata.deletion_timestamp.is_none() {
                take(
                    HTTP_ROUTE_KIND,
                    &route.metadata,
                    http_route_endpoints(route, objects.gateways, ctx),
                );
            }
        }
    }
    let merged = merge(all);
    for conflict in &merged.conflicts {
        out.problems.source(conflict);
    }
    out.endpoints = merged.endpoints;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(name: &str, host: &str, lb: &str, annotations: &[(&str, &str)]) -> Ingress {
        let anns: BTreeMap<_, _> = annotations.iter().copied().collect();
        let i = crate::fixtures::ingress(
            "ns",
            name,
            serde_json::json!(anns),
            serde_json::json!([{"host": host}]),
        );
        crate::fixtures::with(
            i,
            serde_json::json!({"metadata": {"uid": format!("uid-{name}")},
                               "status": {"loadBalancer": {"ingress": [{"hostname": lb}]}}}),
        )
    }

    #[test]
    fn bad_objects_get_problems_and_good_ones_endpoints() {
        let good = ingress(
            "good",
            "web.example.com",
            "k8s-web-1.eu-west-1.elb.amazonaws.com",
            &[],
        );
        let bad = ingress(
            "bad",
            &format!("{}.example.com", "x".repeat(64)),
            "k8s-web-1.eu-west-1.elb.amazonaws.com",
            &[],
        );
        let conflicting = ingress(
            "zz",
            "web.example.com",
            "k8s-other-2.eu-west-1.elb.amazonaws.com",
            &[],
        );
        let refs = [&good, &bad, &conflicting];
        let objects = Objects {
            ingresses: &refs,
            ..Objects::default()
        };
        let out = desired(
            &objects,
            SourceKinds::default(),
            &AnnotationFilter::default(),
            &SourceContext::default(),
        );
        // An ALIAS A and AAAA for the good Ingress only.
        assert_eq!(out.endpoints.len(), 2);
        assert!(
            out.endpoints
                .iter()
                .all(|e| e.resource.as_ref().unwrap().name == "good")
        );
        let bad_ref = ResourceRef::new("ingress", "ns", "bad");
        let p = out.problems.get(&bad_ref).unwrap();
        assert_eq!(p.iter().next().unwrap().reason, reason::INVALID_HOSTNAME);
        let loser = ResourceRef::new("ingress", "ns", "zz");
        assert_eq!(
            out.problems
                .get(&loser)
                .unwrap()
                .iter()
                .next()
                .unwrap()
                .reason,
            reason::CONFLICT
        );
        assert!(
            out.problems
                .get(&ResourceRef::new("ingress", "ns", "good"))
                .is_none()
        );
        assert_eq!(out.objects.len(), 3);
    }

    #[test]
    fn annotation_filter_selects_objects() {
        let f = AnnotationFilter::parse("team=a, dns").unwrap();
        let yes = ingress(
            "y",
            "a.example.com",
            "1.2.3.4",
            &[("team", "a"), ("dns", "")],
        );
        let no = ingress(
            "n",
            "b.example.com",
            "1.2.3.4",
            &[("team", "b"), ("dns", "")],
        );
        assert!(f.matches(&yes.metadata));
        assert!(!f.matches(&no.metadata));
        assert!(AnnotationFilter::parse("=x").is_err());
    }
}
