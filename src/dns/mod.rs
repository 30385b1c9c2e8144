//! DNS controller (the external-dns replacement): the pure core.
//!
//! The pipeline, each step with its own error type:
//! 1. [`sources`]: Ingress, Service and DNSEndpoint objects -> [`Endpoint`]s, merged across
//!    objects ([`SourceError`]); annotations are parsed by [`annotations`] ([`AnnotationError`]).
//! 2. [`zones`]: managed hosted zones and the zones each endpoint goes to ([`ZoneError`]).
//! 3. [`plan`]: desired endpoints + a zone's records, ownership read from external-dns TXT
//!    records ([`registry`], [`RegistryError`]) -> changes ([`PlanError`]).
//! 4. [`batch`]: changes -> ChangeResourceRecordSets requests ([`BatchError`]).
//!
//! Those steps perform no I/O. On top of them: [`route53`] (the SDK adapter), [`lb_zones`]
//! (canonical zones read from the load balancers), [`desired`] (objects -> merged endpoints and
//! problems per object), [`controller`] (the event-driven loop) and [`report`] (`causeway plan`).

pub(crate) mod annotations;
mod assemble;
pub(crate) mod batch;
pub(crate) mod controller;
pub mod desired;
pub(crate) mod elb;
pub(crate) mod endpoint;
pub(crate) mod lb_zones;
pub(crate) mod plan;
pub mod registry;
pub(crate) mod report;
pub(crate) mod route53;
pub(crate) mod settings;
pub(crate) mod sources;
pub(crate) mod zones;

pub use annotations::{AnnotationError, DnsAnnotations, RecordOptions, parse_annotations};
pub use batch::{Batch, BatchError, BatchLimits, batch, split_groups};
pub use elb::canonical_hosted_zone;
pub use endpoint::{
    AliasTarget, DnsName, Endpoint, EndpointError, Failover, GeoLocation, NameError, Record,
    RecordKey, RecordType, ResourceRef, Routing, RoutingPolicy, Ttl,
};
pub use plan::{Action, ApplyError, Change, Plan, PlanConfig, PlanError, Policy, apply_to, plan};
pub use registry::{OwnerLabels, RegistryError, TxtRegistry};
pub use report::plan_report;
pub use settings::DnsSettings;
pub use sources::{
    DnsEndpointRecord, Merged, SourceContext, SourceError, SourceOutput, dns_endpoint_endpoints,
    dns_endpoint_object_endpoints, ingress_endpoints, merge, service_endpoints,
};
pub use zones::{
    Assignment, DomainFilter, TagFilter, Zone, ZoneError, ZoneFilter, ZoneType, assign,
};
