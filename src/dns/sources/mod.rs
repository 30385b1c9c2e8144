//! Pure builders from Kubernetes objects to endpoints, and the merge that settles conflicts
//! between objects.
//!
//! Each builder returns what it could build plus an error per thing it could not, so that one
//! bad hostname on an object does not hold back the object's other hostnames.

mod common;
mod dns_endpoint;
mod gateway;
mod ingress;
mod merge;
mod service;

#[cfg(test)]
mod test_support;

pub use common::{
    DNS_ENDPOINT_KIND, HTTP_ROUTE_KIND, INGRESS_KIND, SERVICE_KIND, SourceContext, SourceError,
    SourceOutput,
};
pub use dns_endpoint::{DnsEndpointRecord, dns_endpoint_endpoints, dns_endpoint_object_endpoints};
pub use gateway::http_route_endpoints;
pub use ingress::ingress_endpoints;
pub use merge::{Merged, merge};
pub use service::service_endpoints;
