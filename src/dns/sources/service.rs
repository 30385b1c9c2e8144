//! Service objects, headless Services included: load balancer, cluster IP or external name, or
//! for a headless Service its ready Pods from the EndpointSlices.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::common::{
    NO_ANNOTATIONS, SERVICE_KIND, SourceContext, SourceError, SourceOutput, apply_options,
    hostnames, publish, resource_of,
};
use crate::dns::annotations::{RecordOptions, parse_annotations};
use crate::dns::endpoint::{DnsName, Endpoint, RecordType, ResourceRef, normalize_target};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::endpoint::{Routing, RoutingPolicy};
    use crate::dns::sources::test_support::{meta, summary};
    use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
    use k8s_openapi::api::discovery::v1::{
        Endpoint as SliceEndpoint, EndpointConditions, EndpointPort,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

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
}
