//! Which Services are ours, and the `service.beta.kubernetes.io/aws-load-balancer-*`
//! annotations (aws-load-balancer-controller's names, formats and defaults). Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;

use crate::alb::annotations::{Annotations, Problem, reason};
use crate::alb::model::{IpAddressType, Protocol, Scheme, TargetType};

pub const PREFIX: &str = "service.beta.kubernetes.io/aws-load-balancer-";
/// The legacy source-range annotation (outside the prefix).
pub const SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
/// The peer's load balancer class.
pub const DEFAULT_CLASS: &str = "service.k8s.aws/nlb";
/// The TLS listener policy unless `ssl-negotiation-policy` says otherwise (the peer's).
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

/// The annotations of an NLB Service.
pub fn of(svc: &Service) -> Annotations<'_> {
    Annotations(svc.annotations(), PREFIX)
}

/// Whether causeway serves `svc`: type LoadBalancer, and either our class or (without a
/// class) the peer's legacy `aws-load-balancer-type: external` or `nlb-ip`.
pub fn ours(svc: &Service, class: &str) -> bool {
    let Some(spec) = &svc.spec else {
        return false;
    };
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return false;
    }
    match &spec.load_balancer_class {
        Some(c) => c == class,
        None => matches!(of(svc).get("type"), Some("external" | "nlb-ip")),
    }
}

/// What the Service webhook adds to a new Service when causeway is the cluster's default
/// load balancer implementation (as the peer's Service mutator does): our class, on a
/// LoadBalancer Service that names none and has no `aws-load-balancer-type` annotation
/// (which picks a controller itself). A JSON patch, or `None` to leave it as it is.
pub fn class_patch(svc: &Service, class: &str) -> Option<serde_json::Value> {
    let spec = svc.spec.as_ref()?;
    let eligible = spec.type_.as_deref() == Some("LoadBalancer")
        && spec.load_balancer_class.is_none()
        && of(svc).get("type").is_none();
    eligible.then(
        || serde_json::json!([{"op": "add", "path": "/spec/loadBalancerClass", "value": class}]),
    )
}

/// Annotations causeway does not implement for NLBs, with the value that is a no-op
/// (`None`: any value asks for something). A Service that asks for one gets no NLB.
const UNSUPPORTED: &[(&str, Option<&str>)] = &[
    ("security-group-prefix-lists", None),
    ("ipv6-addresses", None),
    ("multi-cluster-target-group", Some("false")),
    ("enable-prefix-for-ipv6-source-nat", Some("off")),
    ("source-nat-ipv6-prefixes", None),
    ("minimum-load-balancer-capacity", None),
    ("enable-icmp-for-path-mtu-discovery", None),
    ("quic-enabled-ports", None),
    ("customer-owned-ipv4-pool", None),
    ("ipam-ipv4-pool-id", None),
];

/// The listener default actions (`service.beta.kubernetes.io/actions.<protocol>-<port>`).
const UNSUPPORTED_ACTIONS: &str = "service.beta.kubernetes.io/actions.";

/// The first annotation on the Service that asks for something causeway does not implement.
pub fn unsupported(annotations: &BTreeMap<String, String>) -> Option<Problem> {
    for (key, value) in annotations {
        let value = value.trim();
        let asks = match key.strip_prefix(PREFIX) {
            Some(name) => match UNSUPPORTED.iter().find(|(k, _)| *k == name) {
                Some((_, Some(noop))) => !value.is_empty() && !value.eq_ignore_ascii_case(noop),
                Some((_, None)) => !value.is_empty(),
                None => false,
            },
            None => key.starts_with(UNSUPPORTED_ACTIONS),
        };
        if asks {
            return Some(Problem::new(
                reason::UNSUPPORTED_ANNOTATION,
                format!(
                    "annotation {key} is not implemented by causeway; no NLB is made without it"
                ),
            ));
        }
    }
    None
}

/// `scheme`, or the legacy `internal` (`true`: internal, `false`: internet-facing);
/// internal by default.
pub fn scheme(a: &Annotations<'_>) -> Result<Scheme, Problem> {
    if let Some(s) = a.get("scheme") {
        return Scheme::parse(s).ok_or_else(|| {
            a.problem(
                "scheme",
                format!("{s:?} is not internal or internet-facing"),
            )
        });
    }
    Ok(match a.bool("internal")? {
        Some(false) => Scheme::InternetFacing,
        _ => Scheme::Internal,
    })
}

/// `ip-address-type`: ipv4 (the default) or dualstack.
pub fn ip_address_type(a: &Annotations<'_>) -> Result<IpAddressType, Problem> {
    match a.get("ip-address-type") {
        None | Some("ipv4") => Ok(IpAddressType::Ipv4),
        Some("dualstack") => Ok(IpAddressType::Dualstack),
        Some(other) => Err(a.problem(
            "ip-address-type",
            format!("{other:?} is not ipv4 or dualstack"),
        )),
    }
}

/// `nlb-target-type`, else `ip` for the legacy `type: nlb-ip`, else the default.
pub fn target_type(a: &Annotations<'_>, default: TargetType) -> Result<TargetType, Problem> {
    match a.get("nlb-target-type") {
        Some(t) => TargetType::parse(t)
            .ok_or_else(|| a.problem("nlb-target-type", format!("{t:?} is not instance or ip"))),
        None if a.get("type") == Some("nlb-ip") => Ok(TargetType::Ip),
        None => Ok(default),
    }
}

/// A health check protocol: TCP, HTTP or HTTPS, in any case.
pub fn health_protocol(a: &Annotations<'_>) -> Result<Option<Protocol>, Problem> {
    a.get("healthcheck-protocol")
        .map(|p| match Protocol::parse_any(p) {
            Some(p @ (Protocol::Tcp | Protocol::Http | Protocol::Https)) => Ok(p),
            _ => Err(a.problem(
                "healthcheck-protocol",
                format!("{p:?} is not TCP, HTTP or HTTPS"),
            )),
        })
        .transpose()
}

/// The `alpn-policy` values ELBv2 takes.
const ALPN_POLICIES: &[&str] = &[
    "HTTP1Only",
    "HTTP2Only",
    "HTTP2Optional",
    "HTTP2Preferred",
    "None",
];

pub fn alpn_policy(a: &Annotations<'_>) -> Result<Option<String>, Problem> {
    match a.get("alpn-policy") {
        None | Some("None") => Ok(None),
        Some(p) if ALPN_POLICIES.contains(&p) => Ok(Some(p.to_owned())),
        Some(p) => Err(a.problem(
            "alpn-policy",
            format!("{p:?} is not one of {}", ALPN_POLICIES.join(", ")),
        )),
    }
}

/// The load balancer attributes: `attributes`, with the deprecated access-log and cross-zone
/// annotations folded in (the new form wins).
pub fn lb_attributes(a: &Annotations<'_>) -> Result<BTreeMap<String, String>, Problem> {
    let mut out = BTreeMap::new();
    if let Some(v) = a.bool("access-log-enabled")? {
        out.insert("access_logs.s3.enabled".to_owned(), v.to_string());
    }
    if let Some(b) = a.string("access-log-s3-bucket-name") {
        out.insert("access_logs.s3.bucket".to_owned(), b);
    }
    if let Some(p) = a.string("access-log-s3-bucket-prefix") {
        out.insert("access_logs.s3.prefix".to_owned(), p);
    }
    if let Some(v) = a.bool("cross-zone-load-balancing-enabled")? {
        out.insert(
            "load_balancing.cross_zone.enabled".to_owned(),
            v.to_string(),
        );
    }
    out.extend(a.map("attributes")?);
    crate::alb::annotations::check_nlb_attributes(&out)?;
    Ok(out)
}

/// Who may reach the listeners: `spec.loadBalancerSourceRanges`, else the legacy
/// annotation; `None` when neither says.
pub fn source_ranges(svc: &Service) -> Result<Option<Vec<String>>, Problem> {
    let from_spec = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_source_ranges.clone())
        .filter(|r| !r.is_empty());
    let ranges = match from_spec {
        Some(r) => r,
        None => match svc.annotations().get(SOURCE_RANGES) {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => return Ok(None),
        },
    };
    if let Some(bad) = ranges
        .iter()
        .find(|c| !crate::alb::annotations::valid_cidr(c))
    {
        return Err(Problem::new(
            reason::INVALID_ANNOTATION,
            format!("load balancer source range {bad:?} is not a CIDR"),
        ));
    }
    Ok(Some(ranges))
}
