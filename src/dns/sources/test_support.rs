//! Helpers shared by the sources' tests.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::dns::endpoint::Endpoint;

pub(super) const ALB: &str = "k8s-default-web-1234567890.us-east-1.elb.amazonaws.com";
pub(super) const ALB_ZONE: &str = "Z35SXDOTRQ7X7K";

pub(super) fn meta(name: &str, annotations: &[(&str, &str)]) -> ObjectMeta {
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

/// Endpoints as "name TYPE value,value" lines, for readable expectations.
pub(super) fn summary(endpoints: &[Endpoint]) -> Vec<String> {
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
