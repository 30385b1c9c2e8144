//! Ingress objects: their rule hosts and hostname annotation, pointing at their load balancer.

use k8s_openapi::api::networking::v1::Ingress;

use super::common::{
    INGRESS_KIND, NO_ANNOTATIONS, SourceContext, SourceError, SourceOutput, hostnames, publish,
    resource_of,
};
use crate::dns::annotations::{HostnameSource, parse_annotations};

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    use super::*;
    use crate::dns::annotations::AnnotationError;
    use crate::dns::endpoint::{NameError, Ttl};
    use crate::dns::sources::test_support::{ALB, ALB_ZONE, summary};

    fn ingress(name: &str, hosts: &[&str], annotations: &[(&str, &str)], lb: &[&str]) -> Ingress {
        let anns: std::collections::BTreeMap<_, _> = annotations.iter().copied().collect();
        let rules: Vec<_> = hosts
            .iter()
            .map(|h| serde_json::json!({"host": h}))
            .collect();
        let lb: Vec<_> = lb
            .iter()
            .map(|t| match t.parse::<IpAddr>() {
                Ok(_) => serde_json::json!({"ip": t}),
                Err(_) => serde_json::json!({"hostname": t}),
            })
            .collect();
        let i = crate::fixtures::ingress(
            "default",
            name,
            serde_json::json!(anns),
            serde_json::json!(rules),
        );
        crate::fixtures::with(
            i,
            serde_json::json!({"status": {"loadBalancer": {"ingress": lb}}}),
        )
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
}
