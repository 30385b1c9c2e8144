//! Parsing of the `alb.ingress.kubernetes.io/*` annotations (aws-load-balancer-controller's
//! names and formats). Pure: each parser returns the value or a [`Problem`] that says exactly
//! what is wrong, so a bad annotation excludes one Ingress, never the group.

use std::collections::BTreeMap;

use super::model::{IpAddressType, Protocol, Scheme, TargetType};

pub const PREFIX: &str = "alb.ingress.kubernetes.io/";

/// Why a member is excluded. Reasons are CamelCase constants (condition reasons).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

pub mod reason {
    pub const INVALID_ANNOTATION: &str = "InvalidAnnotation";
    pub const UNKNOWN_ACTION: &str = "UnknownAction";
    pub const SERVICE_NOT_FOUND: &str = "ServiceNotFound";
    pub const SERVICE_PORT_NOT_FOUND: &str = "ServicePortNotFound";
    pub const DUPLICATE_RULE: &str = "DuplicateRule";
    pub const CERTIFICATE_NOT_FOUND: &str = "CertificateNotFound";
    pub const INVALID_ATTRIBUTE: &str = "InvalidAttribute";
    pub const INVALID_GROUP_ORDER: &str = "InvalidGroupOrder";
    pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";
    pub const CONFLICTING_SETTINGS: &str = "ConflictingSettings";
    pub const PARAMS_NOT_FOUND: &str = "IngressClassParamsNotFound";
    pub const TOO_MANY_RULES: &str = "TooManyRules";
    pub const NO_SUBNETS: &str = "SubnetsNotFound";
    pub const UNSUPPORTED_ANNOTATION: &str = "UnsupportedAnnotation";
    pub const SECURITY_GROUP_NOT_FOUND: &str = "SecurityGroupNotFound";
    pub const TARGET_GROUP_NOT_FOUND: &str = "TargetGroupNotFound";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const WEB_ACL_NOT_FOUND: &str = "WebACLNotFound";
    pub const TRUST_STORE_NOT_FOUND: &str = "TrustStoreNotFound";
    pub const UNSUPPORTED_PORT: &str = "UnsupportedPort";
    pub const NODE_PORT_MISSING: &str = "NodePortMissing";
}

/// aws-load-balancer-controller annotations causeway does not implement, with the value that
/// is a no-op (`None`: any value asks for something). An Ingress that asks for one of these is
/// rejected rather than served without it: an ALB without the WAF, protection or
/// security groups its manifest names must never go live.
const UNSUPPORTED: &[(&str, Option<&str>)] = &[
    ("waf-acl-id", None),
    ("security-group-prefix-lists", None),
    ("customer-owned-ipv4-pool", None),
    ("ipam-ipv4-pool-id", None),
    ("minimum-load-balancer-capacity", None),
    ("multi-cluster-target-group", Some("false")),
    ("enable-frontend-nlb", Some("false")),
    ("use-regex-path-match", Some("false")),
];

/// Annotation families (a prefix of the key) causeway does not implement.
const UNSUPPORTED_FAMILIES: &[&str] = &["frontend-nlb-", "target-control-port"];

/// The first annotation on the Ingress that asks for something causeway does not implement.
pub fn unsupported(annotations: &BTreeMap<String, String>) -> Option<Problem> {
    for (key, value) in annotations.range(PREFIX.to_owned()..) {
        let Some(name) = key.strip_prefix(PREFIX) else {
            break;
        };
        let value = value.trim();
        let listed = UNSUPPORTED.iter().find(|(k, _)| *k == name);
        let asks = match listed {
            Some((_, Some(noop))) => !value.eq_ignore_ascii_case(noop) && !value.is_empty(),
            Some((_, None)) => !value.is_empty(),
            None => UNSUPPORTED_FAMILIES.iter().any(|f| name.starts_with(f)),
        };
        if asks {
            // WAF Classic (the `waf-regional` API this annotation drives) reached its end of
            // life in September 2025: there is nothing left to associate.
            let hint = match name {
                "waf-acl-id" => {
                    " (AWS WAF Classic has reached its end of life; associate a WAFv2 web ACL with alb.ingress.kubernetes.io/wafv2-acl-arn or wafv2-acl-name)"
                }
                _ => "",
            };
            return Some(Problem::new(
                reason::UNSUPPORTED_ANNOTATION,
                format!(
                    "annotation {key} is not implemented by causeway{hint}; the Ingress is not served without it"
                ),
            ));
        }
    }
    None
}

impl Problem {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Problem {
            reason,
            message: message.into(),
        }
    }
    pub fn annotation(key: &str, message: impl std::fmt::Display) -> Self {
        Problem::new(
            reason::INVALID_ANNOTATION,
            format!("annotation {PREFIX}{key}: {message}"),
        )
    }
}

/// Reads `<prefix><key>`: `alb.ingress.kubernetes.io/<key>` on Ingresses and the Services
/// they route to, `service.beta.kubernetes.io/aws-load-balancer-<key>` on NLB Services.
pub struct Annotations<'a>(pub &'a BTreeMap<String, String>, pub &'static str);

impl<'a> Annotations<'a> {
    /// The ALB annotations (`alb.ingress.kubernetes.io/`).
    pub fn alb(map: &'a BTreeMap<String, String>) -> Self {
        Annotations(map, PREFIX)
    }

    /// The problem of an annotation of this prefix.
    pub fn problem(&self, key: &str, message: impl std::fmt::Display) -> Problem {
        Problem::new(
            reason::INVALID_ANNOTATION,
            format!("annotation {}{key}: {message}", self.1),
        )
    }

    pub fn get(&self, key: &str) -> Option<&'a str> {
        // The full key is assembled on the stack: lookups run for every path of every member.
        let prefix = self.1;
        let mut buf = [0u8; 128];
        let full = prefix.len() + key.len();
        let value = if full <= buf.len() {
            buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
            buf[prefix.len()..full].copy_from_slice(key.as_bytes());
            // Both parts are UTF-8, so their concatenation is too.
            let k = std::str::from_utf8(&buf[..full]).ok()?;
            self.0.get(k)
        } else {
            self.0.get(&format!("{prefix}{key}"))
        };
        value.map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    pub fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i32>, Problem> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        let n: i64 = raw
            .parse()
            .map_err(|_| self.problem(key, format!("{raw:?} is not a number")))?;
        if n < min || n > max {
            return Err(self.problem(key, format!("{n} is outside {min}..={max}")));
        }
        Ok(Some(n as i32))
    }

    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, Problem> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(self.problem(key, format!("{other:?} is not true or false"))),
        }
    }

    /// `k=v,k=v` maps (tags, attributes), read as the peer reads them: `\\,` is a comma in
    /// a value, and so is a comma not followed by another `key=`.
    pub fn map(&self, key: &str) -> Result<BTreeMap<String, String>, Problem> {
        let mut out = BTreeMap::new();
        let Some(raw) = self.get(key) else {
            return Ok(out);
        };
        for item in split_pairs(raw) {
            match item.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    out.insert(k.trim().to_owned(), v.trim().to_owned());
                }
                _ => {
                    return Err(self.problem(key, format!("{item:?} is not key=value")));
                }
            }
        }
        Ok(out)
    }

    pub fn scheme(&self) -> Result<Option<Scheme>, Problem> {
        self.get("scheme")
            .map(|s| {
                Scheme::parse(s).ok_or_else(|| {
                    self.problem(
                        "scheme",
                        format!("{s:?} is not internal or internet-facing"),
                    )
                })
            })
            .transpose()
    }

    pub fn ip_address_type(&self) -> Result<Option<IpAddressType>, Problem> {
        self.get("ip-address-type")
            .map(|s| {
                IpAddressType::parse(s)
                    .ok_or_else(|| self.problem("ip-address-type", format!("{s:?} is unknown")))
            })
            .transpose()
    }

    pub fn target_type(&self) -> Result<Option<TargetType>, Problem> {
        self.get("target-type")
            .map(|s| {
                TargetType::parse(s).ok_or_else(|| {
                    self.problem("target-type", format!("{s:?} is not instance or ip"))
                })
            })
            .transpose()
    }

    pub fn protocol(&self, key: &str) -> Result<Option<Protocol>, Problem> {
        self.get(key)
            .map(|s| {
                Protocol::parse(s)
                    .ok_or_else(|| self.problem(key, format!("{s:?} is not HTTP or HTTPS")))
            })
            .transpose()
    }

    /// `[{"HTTP":80},{"HTTPS":443}]`
    pub fn listen_ports(&self) -> Result<Option<Vec<(Protocol, i32)>>, Problem> {
        let Some(raw) = self.get("listen-ports") else {
            return Ok(None);
        };
        let entries: Vec<BTreeMap<String, i64>> = serde_json::from_str(raw)
            .map_err(|e| Problem::annotation("listen-ports", format!("malformed JSON: {e}")))?;
        let mut out = Vec::new();
        for entry in entries {
            for (proto, port) in entry {
                let protocol = Protocol::parse(&proto).ok_or_else(|| {
                    Problem::annotation("listen-ports", format!("unknown protocol {proto:?}"))
                })?;
                if !(1..=65535).contains(&port) {
                    return Err(Problem::annotation(
                        "listen-ports",
                        format!("port {port} is out of range"),
                    ));
                }
                out.push((protocol, port as i32));
            }
        }
        if out.is_empty() {
            return Err(Problem::annotation("listen-ports", "lists no port"));
        }
        Ok(Some(out))
    }
}

/// Attribute keys ELBv2 accepts on an ALB (exact keys, or prefixes ending in `.`).
const LB_ATTRIBUTES: &[&str] = &[
    "deletion_protection.enabled",
    "idle_timeout.timeout_seconds",
    "client_keep_alive.seconds",
    "routing.http2.enabled",
    "routing.http.drop_invalid_header_fields.enabled",
    "routing.http.desync_mitigation_mode",
    "routing.http.preserve_host_header.enabled",
    "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
    "routing.http.xff_client_port.enabled",
    "routing.http.xff_header_processing.mode",
    "waf.fail_open.enabled",
    "zonal_shift.config.enabled",
    "access_logs.s3.",
    "connection_logs.s3.",
    "health_check_logs.s3.",
];

/// Attribute keys ELBv2 accepts on an ALB target group.
const TG_ATTRIBUTES: &[&str] = &[
    "deregistration_delay.timeout_seconds",
    "slow_start.duration_seconds",
    "stickiness.enabled",
    "stickiness.type",
    "stickiness.lb_cookie.duration_seconds",
    "stickiness.app_cookie.cookie_name",
    "stickiness.app_cookie.duration_seconds",
    "load_balancing.algorithm.type",
    "load_balancing.algorithm.anomaly_mitigation",
    "load_balancing.cross_zone.enabled",
    "lambda.multi_value_headers.enabled",
    "target_group_health.",
    "target_health_state.",
];

/// Attribute keys ELBv2 accepts on an NLB.
const NLB_ATTRIBUTES: &[&str] = &[
    "deletion_protection.enabled",
    "load_balancing.cross_zone.enabled",
    "dns_record.client_routing_policy",
    "ipv6.deny_all_igw_traffic",
    "zonal_shift.config.enabled",
    "secondary_ips.auto_assigned.per_subnet",
    "access_logs.s3.",
];

/// Attribute keys ELBv2 accepts on an NLB target group.
const NLB_TG_ATTRIBUTES: &[&str] = &[
    "deregistration_delay.timeout_seconds",
    "deregistration_delay.connection_termination.enabled",
    "proxy_protocol_v2.enabled",
    "preserve_client_ip.enabled",
    "stickiness.enabled",
    "stickiness.type",
    "load_balancing.cross_zone.enabled",
    "target_failover.",
    "target_group_health.",
    "target_health_state.",
];

/// Attribute keys ELBv2 accepts on an NLB listener.
const NLB_LISTENER_ATTRIBUTES: &[&str] = &["tcp.idle_timeout.seconds"];

pub fn check_nlb_attributes(attrs: &BTreeMap<String, String>) -> Result<(), Problem> {
    check_keys(attrs, NLB_ATTRIBUTES, "network load balancer")
}

pub fn check_nlb_tg_attributes(attrs: &BTreeMap<String, String>) -> Result<(), Problem> {
    check_keys(attrs, NLB_TG_ATTRIBUTES, "network target group")
}

pub fn check_nlb_listener_attributes(attrs: &BTreeMap<String, String>) -> Result<(), Problem> {
    check_keys(attrs, NLB_LISTENER_ATTRIBUTES, "network listener")
}

fn check_keys(attrs: &BTreeMap<String, String>, known: &[&str], what: &str) -> Result<(), Problem> {
    for key in attrs.keys() {
        let ok = known.iter().any(|k| {
            if k.ends_with('.') {
                key.starts_with(k)
            } else {
                key == k
            }
        });
        if !ok {
            return Err(Problem::new(
                reason::INVALID_ATTRIBUTE,
                format!("{key:?} is not a {what} attribute"),
            ));
        }
    }
    for (key, value) in attrs {
        if let Some(expected) = attribute_value_error(key, value) {
            return Err(Problem::new(
                reason::INVALID_ATTRIBUTE,
                format!("{what} attribute {key}={value:?}: expected {expected}"),
            ));
        }
    }
    Ok(())
}

/// An IPv4 or IPv6 CIDR (`10.0.0.0/8`, `::/0`).
/// The `key=value` items of a map annotation: a backslash takes the next character as it is,
/// and a comma ends an item only when what follows holds another `=`.
fn split_pairs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if chars.peek().is_some() => {
                if let Some((_, next)) = chars.next() {
                    current.push(next);
                }
            }
            ',' => {
                let rest = s[i + 1..].trim();
                if rest.contains('=') {
                    out.push(current.trim().to_owned());
                    current.clear();
                } else if !rest.is_empty() {
                    out.push(current.trim().to_owned());
                    out.push(rest.to_owned());
                    return out;
                } else {
                    current.push(c);
                }
            }
            c => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// `listener-attributes.<PROTOCOL>-<port>` annotations, by `PROTOCOL-port`: each key must
/// name an ALB listener attribute (`routing.http.request.*` or `routing.http.response.*`).
pub fn listener_attributes(
    annotations: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, Problem> {
    let family = format!("{PREFIX}listener-attributes.");
    let mut out = BTreeMap::new();
    for key in annotations.keys() {
        let Some(listener) = key.strip_prefix(&family) else {
            continue;
        };
        let short = &key[PREFIX.len()..];
        let valid_listener = listener.split_once('-').is_some_and(|(p, port)| {
            Protocol::parse(p).is_some_and(|x| x.as_str() == p)
                && port.parse::<u16>().is_ok_and(|n| n > 0)
        });
        if !valid_listener {
            return Err(Problem::annotation(
                short,
                "the suffix must be a listener, HTTP-<port> or HTTPS-<port>",
            ));
        }
        let attrs = Annotations::alb(annotations).map(short)?;
        check_alb_listener_attributes(short, &attrs)?;
        if !attrs.is_empty() {
            out.insert(listener.to_owned(), attrs);
        }
    }
    Ok(out)
}

/// Each key must name an ALB listener attribute (`routing.http.request.*` or
/// `routing.http.response.*`); `what` says where they come from.
pub fn check_alb_listener_attributes(
    what: &str,
    attrs: &BTreeMap<String, String>,
) -> Result<(), Problem> {
    for (k, v) in attrs {
        let name_ok = (k.starts_with("routing.http.request.")
            || k.starts_with("routing.http.response."))
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c));
        if !name_ok {
            return Err(Problem::new(
                reason::INVALID_ATTRIBUTE,
                format!("{what}: {k:?} is not an ALB listener attribute"),
            ));
        }
        if k == "routing.http.response.server.enabled" && v != "true" && v != "false" {
            return Err(Problem::new(
                reason::INVALID_ATTRIBUTE,
                format!("{what}: {k} must be true or false, not {v:?}"),
            ));
        }
    }
    Ok(())
}

/// The web ACL names and ARNs `wafv2-acl-name` and `wafv2-acl-arn` give (not `none`): what
/// discovery looks up.
pub fn named_web_acls(annotations: &BTreeMap<String, String>) -> Vec<String> {
    let a = Annotations::alb(annotations);
    ["wafv2-acl-name", "wafv2-acl-arn"]
        .iter()
        .filter_map(|k| a.get(k))
        .filter(|n| *n != "none")
        .map(str::to_owned)
        .collect()
}

/// `wafv2-acl-arn` / `wafv2-acl-name` (`none`: no web ACL), checked and resolved by
/// `web_acls` (name or ARN → ARN of the ones that exist; `None` when not read: taken as
/// written).
pub fn web_acl(
    annotations: &BTreeMap<String, String>,
    web_acls: Option<&BTreeMap<String, String>>,
) -> Result<Option<Option<String>>, Problem> {
    let a = Annotations::alb(annotations);
    let by_arn = match a.get("wafv2-acl-arn") {
        None => None,
        Some("none") => Some(None),
        Some(arn)
            if arn.starts_with("arn:")
                && arn.contains(":wafv2:")
                && arn.contains(":regional/webacl/") =>
        {
            if web_acls.is_some_and(|found| !found.contains_key(arn)) {
                return Err(Problem::new(
                    reason::WEB_ACL_NOT_FOUND,
                    format!("wafv2-acl-arn: there is no regional web ACL {arn}"),
                ));
            }
            Some(Some(arn.to_owned()))
        }
        Some(other) => {
            return Err(Problem::annotation(
                "wafv2-acl-arn",
                format!("{other:?} is not a regional WAFv2 web ACL ARN, nor none"),
            ));
        }
    };
    let by_name = match a.get("wafv2-acl-name") {
        None => None,
        Some("none") => Some(None),
        Some(name) => Some(Some(match web_acls {
            None => name.to_owned(),
            Some(found) => found.get(name).cloned().ok_or_else(|| {
                Problem::new(
                    reason::WEB_ACL_NOT_FOUND,
                    format!("wafv2-acl-name: no regional web ACL is named {name:?}"),
                )
            })?,
        })),
    };
    match (by_arn, by_name) {
        (Some(x), Some(y)) if x != y => Err(Problem::annotation(
            "wafv2-acl-name",
            "wafv2-acl-arn and wafv2-acl-name name different web ACLs",
        )),
        (x, y) => Ok(x.or(y)),
    }
}

pub(crate) fn valid_cidr(c: &str) -> bool {
    let Some((ip, len)) = c.split_once('/') else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => len.parse::<u8>().is_ok_and(|l| l <= 32),
        Ok(std::net::IpAddr::V6(_)) => len.parse::<u8>().is_ok_and(|l| l <= 128),
        Err(_) => false,
    }
}

/// What ELBv2 would refuse of an attribute's value, for the attributes whose values have a
/// fixed shape; checked here so one Ingress's typo is not a failed call for its group.
fn attribute_value_error(key: &str, value: &str) -> Option<&'static str> {
    let int_in = |lo: i64, hi: i64| value.parse::<i64>().is_ok_and(|v| (lo..=hi).contains(&v));
    let ok = match key {
        k if k.ends_with(".enabled") => value == "true" || value == "false",
        "idle_timeout.timeout_seconds" => int_in(1, 4000),
        "client_keep_alive.seconds" => int_in(60, 604800),
        "deregistration_delay.timeout_seconds" => int_in(0, 3600),
        "slow_start.duration_seconds" => value == "0" || int_in(30, 900),
        "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => {
            int_in(1, 604800)
        }
        "stickiness.type" => [
            "lb_cookie",
            "app_cookie",
            "source_ip",
            "source_ip_dest_ip",
            "source_ip_dest_ip_proto",
        ]
        .contains(&value),
        "tcp.idle_timeout.seconds" => int_in(60, 6000),
        "load_balancing.algorithm.type" => [
            "round_robin",
            "least_outstanding_requests",
            "weighted_random",
        ]
        .contains(&value),
        "routing.http.desync_mitigation_mode" => {
            ["monitor", "defensive", "strictest"].contains(&value)
        }
        "routing.http.xff_header_processing.mode" => {
            ["append", "preserve", "remove"].contains(&value)
        }
        _ => true,
    };
    if ok {
        return None;
    }
    Some(match key {
        k if k.ends_with(".enabled") => "true or false",
        "stickiness.type"
        | "load_balancing.algorithm.type"
        | "routing.http.desync_mitigation_mode"
        | "routing.http.xff_header_processing.mode" => "one of the values ELBv2 accepts",
        _ => "a number of seconds in the range ELBv2 accepts",
    })
}

pub fn check_lb_attributes(attrs: &BTreeMap<String, String>) -> Result<(), Problem> {
    check_keys(attrs, LB_ATTRIBUTES, "load balancer")
}

pub fn check_tg_attributes(attrs: &BTreeMap<String, String>) -> Result<(), Problem> {
    check_keys(attrs, TG_ATTRIBUTES, "target group")
}

/// Target-group settings: read from the Service first, then the Ingress, then defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroupSettings {
    pub target_type: TargetType,
    pub protocol: Protocol,
    pub protocol_version: String,
    pub health_path: String,
    pub health_port: String,
    pub health_protocol: Protocol,
    pub interval: i32,
    pub timeout: i32,
    pub healthy: i32,
    pub unhealthy: i32,
    pub success_codes: String,
    pub attributes: BTreeMap<String, String>,
}

/// `success-codes` as ELBv2 takes it: codes and `low-high` ranges, comma-separated; HTTP
/// codes 200 to 499, gRPC codes 0 to 99. Checked here, so a bad value is the Ingress's
/// problem instead of a CreateTargetGroup error for the whole group.
fn check_success_codes(codes: &str, grpc: bool) -> Result<(), Problem> {
    let (min, max) = if grpc { (0, 99) } else { (200, 499) };
    let code = |s: &str| {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|c| (min..=max).contains(c))
    };
    let ok = !codes.trim().is_empty()
        && codes.split(',').all(|part| match part.split_once('-') {
            Some((lo, hi)) => matches!((code(lo), code(hi)), (Some(l), Some(h)) if l <= h),
            None => code(part).is_some(),
        });
    if ok {
        Ok(())
    } else {
        Err(Problem::annotation(
            "success-codes",
            format!("{codes:?} is not a list of codes or ranges from {min} to {max}"),
        ))
    }
}

/// `backend-protocol-version` of gRPC targets.
pub const GRPC: &str = "GRPC";
/// The health check path of gRPC target groups unless `healthcheck-path` says otherwise.
pub const GRPC_HEALTH_PATH: &str = "/AWS.ALB/healthcheck";

pub fn target_group_settings(
    service: &Annotations<'_>,
    ingress: &Annotations<'_>,
    default_target_type: TargetType,
) -> Result<TargetGroupSettings, Problem> {
    // A Service annotation wins over the Ingress one, key by key.
    macro_rules! pick {
        ($f:expr) => {
            match $f(service)? {
                Some(v) => Some(v),
                None => $f(ingress)?,
            }
        };
    }
    let target_type = pick!(|a: &Annotations<'_>| a.target_type()).unwrap_or(default_target_type);
    let protocol =
        pick!(|a: &Annotations<'_>| a.protocol("backend-protocol")).unwrap_or(Protocol::Http);
    let protocol_version = service
        .string("backend-protocol-version")
        .or_else(|| ingress.string("backend-protocol-version"))
        .unwrap_or_else(|| "HTTP1".into());
    if !["HTTP1", "HTTP2", "GRPC"].contains(&protocol_version.as_str()) {
        return Err(Problem::annotation(
            "backend-protocol-version",
            format!("{protocol_version:?} is not HTTP1, HTTP2 or GRPC"),
        ));
    }
    let health_protocol =
        pick!(|a: &Annotations<'_>| a.protocol("healthcheck-protocol")).unwrap_or(protocol);
    let int = |key: &str, min, max, default| -> Result<i32, Problem> {
        Ok(match service.int(key, min, max)? {
            Some(v) => v,
            None => ingress.int(key, min, max)?.unwrap_or(default),
        })
    };
    let interval = int("healthcheck-interval-seconds", 5, 300, 15)?;
    let timeout = int("healthcheck-timeout-seconds", 2, 120, 5)?;
    let healthy = int("healthy-threshold-count", 2, 10, 2)?;
    let unhealthy = int("unhealthy-threshold-count", 2, 10, 2)?;
    if timeout >= interval {
        return Err(Problem::annotation(
            "healthcheck-timeout-seconds",
            format!("timeout {timeout}s must be less than the interval {interval}s"),
        ));
    }
    let health_port = service
        .string("healthcheck-port")
        .or_else(|| ingress.string("healthcheck-port"))
        .unwrap_or_else(|| "traffic-port".into());
    // A name (a Service port's name, resolved by the builder) is a lowercase DNS label of at
    // most 15 characters with a letter in it, as Kubernetes names ports.
    let port_name = |p: &str| {
        (1..=15).contains(&p.len())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && p.chars().any(|c| c.is_ascii_lowercase())
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    if health_port != "traffic-port"
        && !health_port.parse::<u16>().is_ok_and(|p| p > 0)
        && !port_name(&health_port)
    {
        return Err(Problem::annotation(
            "healthcheck-port",
            format!("{health_port:?} is not traffic-port, a port number or a Service port name"),
        ));
    }
    let grpc = protocol_version == GRPC;
    // gRPC targets are checked as the peer checks them: the gRPC health path, status 12
    // (UNIMPLEMENTED, what a server without that method answers) meaning alive.
    let (default_codes, default_path) = match grpc {
        true => ("12", GRPC_HEALTH_PATH),
        false => ("200", "/"),
    };
    let mut attributes = ingress.map("target-group-attributes")?;
    attributes.extend(service.map("target-group-attributes")?);
    check_tg_attributes(&attributes)?;
    let success_codes = service
        .string("success-codes")
        .or_else(|| ingress.string("success-codes"))
        .unwrap_or_else(|| default_codes.into());
    check_success_codes(&success_codes, grpc)?;
    let health_path = service
        .string("healthcheck-path")
        .or_else(|| ingress.string("healthcheck-path"))
        .unwrap_or_else(|| default_path.into());
    if !health_path.starts_with('/')
        || health_path.len() > 1024
        || health_path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Problem::annotation(
            "healthcheck-path",
            format!(
                "{health_path:?} is not a path (it starts with /, at most 1024 characters, no spaces)"
            ),
        ));
    }
    Ok(TargetGroupSettings {
        target_type,
        protocol,
        protocol_version,
        health_path,
        health_port,
        health_protocol,
        interval,
        timeout,
        healthy,
        unhealthy,
        success_codes,
        attributes,
    })
}

mod actions;
mod auth;
mod mtls;
pub use actions::{
    ActionSpec, ForwardTarget, named_target_groups, parse_action, parse_conditions,
    parse_transforms,
};
pub use auth::{
    OidcClients, SECRET_CLIENT_ID, SECRET_CLIENT_ID_LEGACY, SECRET_CLIENT_SECRET, before_action,
    oidc_secret_name,
};
pub use mtls::{mutual_authentication, named_trust_stores};

#[cfg(test)]
mod tests;
