//! Canonical hosted zones of load balancers, read from the load balancer itself.
//!
//! The public table in [`super::elb`] is right for real AWS regions, but the load balancer's
//! own `CanonicalHostedZoneId` is the truth (and the only answer for emulators and new
//! regions). One DescribeLoadBalancers by name per new hostname, cached for the life of the
//! process: no region scan. Hostnames that cannot be resolved fall back to the table.

use std::collections::{BTreeMap, BTreeSet};

use super::elb::parse_load_balancer_hostname;
use crate::aws::errors;

/// The load balancer name inside an ELB hostname: `[internal-]<name>-<id>.<region>...`.
pub fn load_balancer_name(hostname: &str) -> Option<String> {
    parse_load_balancer_hostname(hostname)?;
    let first = hostname.trim().split('.').next()?.to_ascii_lowercase();
    let first = first.strip_prefix("internal-").unwrap_or(&first);
    let (name, id) = first.rsplit_once('-')?;
    (!name.is_empty() && !id.is_empty()).then(|| name.to_string())
}

/// Hostname (lowercase, no trailing dot) -> canonical hosted zone id.
#[derive(Debug, Default, Clone)]
pub struct LoadBalancerZones {
    known: BTreeMap<String, String>,
    /// Hostnames looked up without an answer; not asked again until [`Self::forget_misses`].
    missed: BTreeSet<String>,
}

impl LoadBalancerZones {
    pub fn known(&self) -> &BTreeMap<String, String> {
        &self.known
    }

    pub fn forget_misses(&mut self) {
        self.missed.clear();
    }

    /// Looks up every ELB hostname not known yet. Errors are logged and the hostname falls
    /// back to the public table; DNS must not stall on a load balancer lookup.
    pub async fn resolve<'a>(
        &mut self,
        elbv2: &aws_sdk_elasticloadbalancingv2::Client,
        hostnames: impl IntoIterator<Item = &'a str>,
    ) {
        let wanted: BTreeSet<String> = hostnames
            .into_iter()
            .map(normalize)
            .filter(|h| !self.known.contains_key(h) && !self.missed.contains(h))
            .collect();
        for hostname in wanted {
            let Some(name) = load_balancer_name(&hostname) else {
                self.missed.insert(hostname);
                continue;
            };
            match elbv2.describe_load_balancers().names(&name).send().await {
                Ok(out) => {
                    let found = out.load_balancers().iter().find(|lb| {
                        lb.dns_name().map(normalize).as_deref() == Some(hostname.as_str())
                    });
                    match found.and_then(|lb| lb.canonical_hosted_zone_id()) {
                        Some(zone) => {
                            self.known.insert(hostname, zone.to_string());
                        }
                        None => {
                            self.missed.insert(hostname);
                        }
                    }
                }
                Err(e) => {
                    if !errors::is_not_found(&e, &["LoadBalancerNotFound"]) {
                        tracing::warn!(hostname, error = %aws_smithy_types::error::display::DisplayErrorContext(&e), "DescribeLoadBalancers failed; using the public canonical zone table");
                    }
                    self.missed.insert(hostname);
                }
            }
        }
    }
}

fn normalize(hostname: &str) -> String {
    let h = hostname.trim();
    h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_out_of_hostnames() {
        assert_eq!(
            load_balancer_name("k8s-web-abc123.eu-west-1.elb.amazonaws.com").as_deref(),
            Some("k8s-web")
        );
        assert_eq!(
            load_balancer_name("internal-k8s-api-1.us-east-1.elb.amazonaws.com.").as_deref(),
            Some("k8s-api")
        );
        assert_eq!(
            load_balancer_name("nlb-1-0123456789abcdef.elb.us-east-1.amazonaws.com").as_deref(),
            Some("nlb-1")
        );
        assert_eq!(load_balancer_name("app.example.com"), None);
    }
}
