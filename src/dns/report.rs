//! The DNS part of `causeway plan -f`: what Route 53 would see for the given manifests.
//!
//! With AWS access the managed zones and their records are read (read-only calls) and the change
//! list is shown, exactly as the controller would submit it; without, the desired records.

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;

use super::assemble::plan_zones;
use super::batch::batch;
use super::desired::{Desired, Objects, desired};
use super::endpoint::{Endpoint, Record};
use super::lb_zones::LoadBalancerZones;
use super::route53::Route53;
use super::settings::DnsSettings;
use super::sources::SourceContext;
use crate::crd::DNSEndpoint;

fn kind_of(v: &serde_json::Value) -> (&str, &str) {
    (
        v.get("apiVersion")
            .and_then(|a| a.as_str())
            .unwrap_or_default(),
        v.get("kind").and_then(|k| k.as_str()).unwrap_or_default(),
    )
}

fn describe_record(r: &Record) -> String {
    let mut s = format!("{} {}", r.name, r.record_type);
    if let Some(id) = &r.set_identifier {
        let _ = write!(s, " [{id}]");
    }
    if let Some(alias) = &r.alias {
        let _ = write!(
            s,
            " ALIAS {} (zone {})",
            alias.dns_name,
            alias.hosted_zone_id.as_deref().unwrap_or("same")
        );
    } else {
        let values: Vec<&str> = r.values.iter().map(String::as_str).collect();
        let _ = write!(s, " {} ttl={}", values.join(","), r.ttl.unwrap_or_default());
    }
    if r.routing.policy != super::RoutingPolicy::Simple {
        let _ = write!(s, " {:?}", r.routing.policy);
    }
    s
}

fn describe_endpoint(e: &Endpoint, default_ttl: u32) -> String {
    describe_record(&e.to_record("<zone>", default_ttl))
}

/// Renders the DNS changes for `objects` (Ingress, Service, DNSEndpoint manifests as JSON;
/// other kinds are ignored). `aws` gives read access to Route 53 (and ELBv2 for load balancer
/// zones); nothing is ever written.
pub async fn plan_report(
    objects: &[serde_json::Value],
    aws: Option<&crate::aws::AwsClients>,
    settings: &DnsSettings,
) -> String {
    let mut out = String::from("DNS (Route 53)\n");
    let mut ingresses: Vec<Ingress> = Vec::new();
    let mut services: Vec<Service> = Vec::new();
    let mut slices: Vec<EndpointSlice> = Vec::new();
    let mut dns_endpoints: Vec<DNSEndpoint> = Vec::new();
    for value in objects {
        let parsed = match kind_of(value) {
            ("networking.k8s.io/v1", "Ingress") => {
                serde_json::from_value(value.clone()).map(|i| ingresses.push(i))
            }
            ("v1", "Service") => serde_json::from_value(value.clone()).map(|s| services.push(s)),
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                serde_json::from_value(value.clone()).map(|s| slices.push(s))
            }
            ("externaldns.k8s.io/v1alpha1", "DNSEndpoint") => {
                serde_json::from_value(value.clone()).map(|d| dns_endpoints.push(d))
            }
            _ => Ok(()),
        };
        if let Err(e) = parsed {
            let _ = writeln!(out, "  ! {}: {e}", kind_of(value).1);
        }
    }
    let ingresses: Vec<&Ingress> = ingresses.iter().collect();
    let services: Vec<&Service> = services.iter().collect();
    let slices: Vec<&EndpointSlice> = slices.iter().collect();
    let dns_endpoints: Vec<&DNSEndpoint> = dns_endpoints.iter().collect();
    let objects = Objects {
        ingresses: &ingresses,
        services: &services,
        endpoint_slices: &slices,
        dns_endpoints: &dns_endpoints,
        // Routes publish only once a Gateway has accepted them and has an address, which a
        // manifest does not say.
        http_routes: &[],
        gateways: &[],
    };

    let mut lb_zones = LoadBalancerZones::default();
    if let Some(aws) = aws {
        let hostnames: Vec<String> = ingresses
            .iter()
            .flat_map(|i| i.status.iter())
            .filter_map(|s| s.load_balancer.as_ref())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|i| i.hostname.clone())
            .collect();
        lb_zones
            .resolve(&aws.elbv2, hostnames.iter().map(String::as_str))
            .await;
    }
    let ctx = SourceContext {
        load_balancer_zones: lb_zones.known(),
        evaluate_target_health: settings.evaluate_target_health,
    };
    let Desired {
        endpoints,
        problems,
        ..
    } = desired(
        &objects,
        settings.sources,
        &settings.annotation_filter,
        &ctx,
    );
    let problem_lines = |out: &mut String, problems: &super::desired::Problems| {
        for (resource, list) in &problems.0 {
            for p in list {
                let _ = writeln!(out, "  ! {resource}: {} ({})", p.message, p.reason);
            }
        }
    };

    let Some(aws) = aws else {
        let _ = writeln!(
            out,
            "  desired records (no AWS access: zones and current records not read):"
        );
        for e in &endpoints {
            let _ = writeln!(out, "  + {}", describe_endpoint(e, settings.default_ttl));
        }
        if endpoints.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        problem_lines(&mut out, &problems);
        return out;
    };

    let route53 = Route53::new(aws.route53.clone());
    let zones = match route53
        .list_zones(!settings.zone_filter.tags.is_empty())
        .await
    {
        Ok(all) => settings.zone_filter.select(&all),
        Err(e) => {
            let _ = writeln!(out, "  ! cannot list hosted zones: {e}");
            return out;
        }
    };
    let mut problems = problems;
    let mut total = 0;
    let mut source = &route53;
    let planned = plan_zones(&zones, endpoints, settings, &mut problems, &mut source).await;
    for zone_plan in planned.zones {
        let (zone, planned) = match zone_plan {
            Ok(z) => (z.zone, z.planned),
            Err((zone, e)) => {
                let _ = writeln!(out, "  ! zone {} ({}): {e}", zone.name, zone.id);
                continue;
            }
        };
        if planned.changes.is_empty() {
            continue;
        }
        let (batches, _) = batch(&planned.changes, &settings.batch_limits);
        let _ = writeln!(
            out,
            "  zone {} ({}, {}): {} changes in {} ChangeResourceRecordSets call(s)",
            zone.name,
            zone.id,
            if zone.private { "private" } else { "public" },
            planned.changes.len(),
            batches.len()
        );
        for change in &planned.changes {
            let _ = writeln!(
                out,
                "    {:<6} {}",
                change.action.to_string(),
                describe_record(&change.record)
            );
        }
        total += planned.changes.len();
    }
    if total == 0 {
        let _ = writeln!(out, "  no changes");
    }
    problem_lines(&mut out, &problems);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_aws_the_desired_records_are_listed() {
        let objects = vec![
            serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"rules": [{"host": "web.example.com"}]},
                "status": {"loadBalancer": {"ingress": [{"hostname": "k8s-web-1.eu-west-1.elb.amazonaws.com"}]}}
            }),
            serde_json::json!({
                "apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint",
                "metadata": {"name": "d", "namespace": "default"},
                "spec": {"endpoints": [{"dnsName": "bad..example.com", "recordType": "A", "targets": ["1.2.3.4"]}]}
            }),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        ];
        let settings = DnsSettings::with_owner("c1").unwrap();
        let text = plan_report(&objects, None, &settings).await;
        assert!(
            text.contains(
                "+ web.example.com A ALIAS k8s-web-1.eu-west-1.elb.amazonaws.com (zone Z32O12XQLNTSW2)"
            ),
            "{text}"
        );
        assert!(text.contains("+ web.example.com AAAA ALIAS"), "{text}");
        assert!(text.contains("! crd/default/d:"), "{text}");
    }
}
