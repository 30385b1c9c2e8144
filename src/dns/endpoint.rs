//! The DNS model every step speaks: names, desired endpoints and observed record sets.
//!
//! An [`Endpoint`] is what a Kubernetes object asks for; a [`Record`] is one Route 53 resource
//! record set, identified by name, type and set identifier ([`RecordKey`]). Both are plain data so
//! the planner can be tested without AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Longest name Route 53 accepts, without the trailing dot.
pub const MAX_NAME_LEN: usize = 253;
/// Longest label allowed by RFC 1035.
pub const MAX_LABEL_LEN: usize = 63;
/// Route 53 accepts TTLs up to 2^31 - 1 seconds.
pub const MAX_TTL: u32 = 2_147_483_647;
/// external-dns's default TTL, also used for ownership TXT records; keeping it avoids churn on
/// records adopted from external-dns.
pub const DEFAULT_TTL: u32 = 300;
/// Route 53's limit on a set identifier's length.
pub const MAX_SET_IDENTIFIER_LEN: usize = 128;
/// Longest single character-string in a TXT value (RFC 1035).
const MAX_TXT_STRING: usize = 255;

/// Why a hostname was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("hostname is empty")]
    Empty,
    #[error("hostname {name:?} is {len} characters long; the limit is {MAX_NAME_LEN}")]
    TooLong { name: String, len: usize },
    #[error("hostname {name:?} has an empty label")]
    EmptyLabel { name: String },
    #[error("label {label:?} of {name:?} is {len} characters long; the limit is {MAX_LABEL_LEN}")]
    LabelTooLong {
        name: String,
        label: String,
        len: usize,
    },
    #[error(
        "label {label:?} of {name:?} contains {ch:?}; allowed are a-z, 0-9, '-' and '_' (and '*' as a whole first label)"
    )]
    InvalidCharacter {
        name: String,
        label: String,
        ch: char,
    },
    #[error("label {label:?} of {name:?} starts or ends with '-'")]
    HyphenAtLabelEdge { name: String, label: String },
    #[error("{name:?} uses '*' other than as the whole first label")]
    MisplacedWildcard { name: String },
}

/// Keeps error messages (which end up in conditions and Events) short for absurd inputs.
fn shorten(s: &str) -> String {
    const KEEP: usize = 80;
    if s.chars().count() <= KEEP {
        s.to_string()
    } else {
        let head: String = s.chars().take(KEEP).collect();
        format!("{head}…")
    }
}

/// A normalised DNS name: lowercase ASCII, no trailing dot, validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsName(String);

impl DnsName {
    /// Parses a hostname asked for by a user: `*` is only accepted as the whole first label,
    /// which is the only place Route 53 treats it as a wildcard.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        Self::parse_with(input, true)
    }

    /// Parses a name as Route 53 stores it. Route 53 escapes `*` as `\052` and accepts a literal
    /// `*` anywhere, which external-dns relies on for ownership records of wildcard names
    /// (`a-*.example.com`).
    pub fn parse_record_name(input: &str) -> Result<Self, NameError> {
        Self::parse_with(&input.replace("\\052", "*"), false)
    }

    fn parse_with(input: &str, strict_wildcard: bool) -> Result<Self, NameError> {
        let trimmed = input.trim();
        let without_dot = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if without_dot.is_empty() {
            return Err(NameError::Empty);
        }
        let name = without_dot.to_ascii_lowercase();
        let len = name.chars().count();
        if len > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                name: shorten(&name),
                len,
            });
        }
        for (index, label) in name.split('.').enumerate() {
            validate_label(&name, label, index, strict_wildcard)?;
        }
        Ok(DnsName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `*.example.com`.
    pub fn is_wildcard(&self) -> bool {
        self.first_label() == "*"
    }

    pub fn first_label(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }

    /// Everything after the first label, if there is more than one label.
    pub fn parent(&self) -> Option<&str> {
        self.0.split_once('.').map(|(_, rest)| rest)
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// True when `self` equals `zone` or lies below it.
    pub fn is_within(&self, zone: &DnsName) -> bool {
        name_is_within(&self.0, &zone.0)
    }

    /// Prepends labels, validating the result (used for SRV and per-pod names).
    pub fn child(&self, labels: &str) -> Result<DnsName, NameError> {
        DnsName::parse(&format!("{labels}.{}", self.0))
    }
}

/// Suffix test on label boundaries, for names already normalised.
pub(crate) fn name_is_within(name: &str, zone: &str) -> bool {
    name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

fn validate_label(
    name: &str,
    label: &str,
    index: usize,
    strict_wildcard: bool,
) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel {
            name: shorten(name),
        });
    }
    let len = label.chars().count();
    if len > MAX_LABEL_LEN {
        return Err(NameError::LabelTooLong {
            name: shorten(name),
            label: shorten(label),
            len,
        });
    }
    if label == "*" {
        if strict_wildcard && index != 0 {
            return Err(NameError::MisplacedWildcard {
                name: shorten(name),
            });
        }
        return Ok(());
    }
    for ch in label.chars() {
        let allowed = ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_';
        if ch == '*' {
            if strict_wildcard {
                return Err(NameError::MisplacedWildcard {
                    name: shorten(name),
                });
            }
        } else if !allowed {
            return Err(NameError::InvalidCharacter {
                name: shorten(name),
                label: shorten(label),
                ch,
            });
        }
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(NameError::HyphenAtLabelEdge {
            name: shorten(name),
            label: shorten(label),
        });
    }
    Ok(())
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DnsName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DnsName::parse(s)
    }
}

/// Record types causeway manages. Route 53 supports a few more (DS, SPF, SOA); they stay foreign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Ns,
    Mx,
    Srv,
    Naptr,
    Txt,
    Ptr,
    Caa,
}

impl RecordType {
    pub const ALL: [RecordType; 10] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::Ns,
        RecordType::Mx,
        RecordType::Srv,
        RecordType::Naptr,
        RecordType::Txt,
        RecordType::Ptr,
        RecordType::Caa,
    ];

    /// The name Route 53 uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Ns => "NS",
            RecordType::Mx => "MX",
            RecordType::Srv => "SRV",
            RecordType::Naptr => "NAPTR",
            RecordType::Txt => "TXT",
            RecordType::Ptr => "PTR",
            RecordType::Caa => "CAA",
        }
    }

    /// The lowercase form used in ownership record names (`a-app.example.com`).
    pub fn as_lower(self) -> &'static str {
        match self {
            RecordType::A => "a",
            RecordType::Aaaa => "aaaa",
            RecordType::Cname => "cname",
            RecordType::Ns => "ns",
            RecordType::Mx => "mx",
            RecordType::Srv => "srv",
            RecordType::Naptr => "naptr",
            RecordType::Txt => "txt",
            RecordType::Ptr => "ptr",
            RecordType::Caa => "caa",
        }
    }

    pub fn parse(input: &str) -> Result<Self, EndpointError> {
        let upper = input.trim().to_ascii_uppercase();
        RecordType::ALL
            .into_iter()
            .find(|t| t.as_str() == upper)
            .ok_or_else(|| EndpointError::UnsupportedRecordType {
                record_type: shorten(input),
            })
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an endpoint could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("record type {record_type:?} is not supported")]
    UnsupportedRecordType { record_type: String },
    #[error("{record_type} target {target:?} is invalid: {reason}")]
    InvalidTarget {
        record_type: RecordType,
        target: String,
        reason: &'static str,
    },
    #[error("a {record_type} record needs at least one target")]
    NoTargets { record_type: RecordType },
    #[error("a CNAME record has exactly one target, got {count}")]
    CnameTargetCount { count: usize },
    #[error("an alias record must be of type A, AAAA or CNAME, not {record_type}")]
    AliasType { record_type: RecordType },
    #[error("TTL {value} is out of range 1..={MAX_TTL}")]
    TtlOutOfRange { value: i64 },
    #[error("set identifier {value:?} must be 1 to {MAX_SET_IDENTIFIER_LEN} characters")]
    InvalidSetIdentifier { value: String },
}

/// A TTL in seconds, within Route 53's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(u32);

impl Ttl {
    pub fn new(seconds: i64) -> Result<Self, EndpointError> {
        match u32::try_from(seconds) {
            Ok(s) if (1..=MAX_TTL).contains(&s) => Ok(Ttl(s)),
            _ => Err(EndpointError::TtlOutOfRange { value: seconds }),
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

/// Validates a set identifier against Route 53's length limit.
pub fn set_identifier(value: &str) -> Result<String, EndpointError> {
    let len = value.chars().count();
    if len == 0 || len > MAX_SET_IDENTIFIER_LEN {
        return Err(EndpointError::InvalidSetIdentifier {
            value: shorten(value),
        });
    }
    Ok(value.to_string())
}

/// Route 53 failover role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failover {
    Primary,
    Secondary,
}

impl Failover {
    pub fn as_str(self) -> &'static str {
        match self {
            Failover::Primary => "PRIMARY",
            Failover::Secondary => "SECONDARY",
        }
    }
}

/// Route 53 geolocation: a continent, or a country with an optional subdivision.
/// Country `*` is Route 53's default location.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GeoLocation {
    Continent(String),
    Country {
        country: String,
        subdivision: Option<String>,
    },
}

/// How Route 53 chooses among record sets with the same name and type.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoutingPolicy {
    #[default]
    Simple,
    Weighted {
        weight: u8,
    },
    Latency {
        region: String,
    },
    Failover(Failover),
    Geolocation(GeoLocation),
    MultiValue,
}

impl RoutingPolicy {
    /// Route 53 cannot UPSERT a record set from one kind of policy to another, so the planner
    /// compares kinds to decide between UPSERT and DELETE+CREATE.
    pub fn kind(&self) -> &'static str {
        match self {
            RoutingPolicy::Simple => "simple",
            RoutingPolicy::Weighted { .. } => "weighted",
            RoutingPolicy::Latency { .. } => "latency",
            RoutingPolicy::Failover(_) => "failover",
            RoutingPolicy::Geolocation(_) => "geolocation",
            RoutingPolicy::MultiValue => "multivalue",
        }
    }
}

/// Routing policy plus the health check Route 53 evaluates for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Routing {
    pub policy: RoutingPolicy,
    pub health_check_id: Option<String>,
}

/// An ALIAS target. `hosted_zone_id` is the target's canonical hosted zone; `None` means "the zone
/// the record is written into" (external-dns's `same-zone`), resolved by the planner.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AliasTarget {
    pub dns_name: String,
    pub hosted_zone_id: Option<String>,
    pub evaluate_target_health: bool,
}

impl AliasTarget {
    pub fn new(
        dns_name: &str,
        hosted_zone_id: Option<String>,
        evaluate_target_health: bool,
    ) -> Self {
        AliasTarget {
            dns_name: normalize_hostname_target(dns_name),
            hosted_zone_id,
            evaluate_target_health,
        }
    }
}

/// The Kubernetes object that asked for an endpoint. Ordered by namespace, then name, then kind:
/// conflicts between objects are settled by that order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceRef {
    pub namespace: String,
    pub name: String,
    /// Lowercase kind as external-dns writes it: `ingress`, `service`, `crd`.
    pub kind: String,
}

impl ResourceRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        ResourceRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind: kind.to_ascii_lowercase(),
        }
    }

    /// Parses external-dns's `kind/namespace/name`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.splitn(3, '/');
        let kind = parts.next()?;
        let namespace = parts.next()?;
        let name = parts.next()?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(ResourceRef::new(kind, namespace, name))
    }
}

impl ResourceRef {
    /// True when `label` is this reference as `Display` writes it, without formatting it.
    pub fn matches_label(&self, label: &str) -> bool {
        label
            .strip_prefix(self.kind.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_prefix(self.namespace.as_str()))
            .and_then(|r| r.strip_prefix('/'))
            == Some(self.name.as_str())
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// Identity of a Route 53 record set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    pub name: DnsName,
    pub record_type: RecordType,
    pub set_identifier: Option<String>,
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.record_type)?;
        if let Some(id) = &self.set_identifier {
            write!(f, " [{id}]")?;
        }
        Ok(())
    }
}

/// What one Kubernetes object wants published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub dns_name: DnsName,
    pub record_type: RecordType,
    /// Normalised values; empty for alias endpoints.
    pub targets: BTreeSet<String>,
    /// `None` takes the default TTL; ignored for aliases, whose TTL Route 53 fixes.
    pub ttl: Option<Ttl>,
    pub set_identifier: Option<String>,
    pub routing: Routing,
    pub alias: Option<AliasTarget>,
    pub resource: Option<ResourceRef>,
    /// Extra labels serialised into the ownership TXT, as external-dns does for DNSEndpoint labels.
    pub labels: BTreeMap<String, String>,
}

impl Endpoint {
    /// A record with values; targets are normalised for the record type.
    pub fn new<I, S>(
        dns_name: DnsName,
        record_type: RecordType,
        targets: I,
    ) -> Result<Self, EndpointError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let targets = targets
            .into_iter()
            .map(|t| normalize_target(record_type, t.as_ref()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if targets.is_empty() {
            return Err(EndpointError::NoTargets { record_type });
        }
        if record_type == RecordType::Cname && targets.len() != 1 {
            return Err(EndpointError::CnameTargetCount {
                count: targets.len(),
            });
        }
        Ok(Endpoint {
            dns_name,
            record_type,
            targets,
            ttl: None,
            set_identifier: None,
            routing: Routing::default(),
            alias: None,
            resource: None,
            labels: BTreeMap::new(),
        })
    }

    /// An ALIAS record set.
    pub fn alias(
        dns_name: DnsName,
        record_type: RecordType,
        alias: AliasTarget,
    ) -> Result<Self, EndpointError> {
        if !matches!(
            record_type,
            RecordType::A | RecordType::Aaaa | RecordType::Cname
        ) {
            return Err(EndpointError::AliasType { record_type });
        }
        Ok(Endpoint {
            dns_name,
            record_type,
            targets: BTreeSet::new(),
            ttl: None,
            set_identifier: None,
            routing: Routing::default(),
            alias: Some(alias),
            resource: None,
            labels: BTreeMap::new(),
        })
    }

    pub fn with_ttl(mut self, ttl: Option<Ttl>) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn with_set_identifier(mut self, set_identifier: Option<String>) -> Self {
        self.set_identifier = set_identifier;
        self
    }

    pub fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    pub fn with_resource(mut self, resource: ResourceRef) -> Self {
        self.resource = Some(resource);
        self
    }

    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    pub fn key(&self) -> RecordKey {
        RecordKey {
            name: self.dns_name.clone(),
            record_type: self.record_type,
            set_identifier: self.set_identifier.clone(),
        }
    }

    /// True when two endpoints would write the same record set.
    pub fn same_record_as(&self, other: &Endpoint) -> bool {
        self.key() == other.key()
            && self.targets == other.targets
            && self.ttl == other.ttl
            && self.routing == other.routing
            && self.alias == other.alias
    }

    /// The record set this endpoint becomes in zone `zone_id`.
    pub fn to_record(&self, zone_id: &str, default_ttl: u32) -> Record {
        let alias = self.alias.as_ref().map(|a| AliasTarget {
            dns_name: a.dns_name.clone(),
            hosted_zone_id: Some(
                a.hosted_zone_id
                    .clone()
                    .unwrap_or_else(|| zone_id.to_string()),
            ),
            evaluate_target_health: a.evaluate_target_health,
        });
        Record {
            name: self.dns_name.clone(),
            record_type: self.record_type,
            set_identifier: self.set_identifier.clone(),
            ttl: if alias.is_some() {
                None
            } else {
                Some(self.ttl.map_or(default_ttl, Ttl::seconds))
            },
            values: if alias.is_some() {
                BTreeSet::new()
            } else {
                self.targets.clone()
            },
            alias,
            routing: self.routing.clone(),
        }
    }
}

/// One Route 53 resource record set as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    pub name: DnsName,
    pub record_type: RecordType,
    pub set_identifier: Option<String>,
    /// `None` exactly for aliases.
    pub ttl: Option<u32>,
    /// Values as written to Route 53 (TXT values quoted); empty for aliases.
    pub values: BTreeSet<String>,
    pub alias: Option<AliasTarget>,
    pub routing: Routing,
}

impl Record {
    pub fn key(&self) -> RecordKey {
        RecordKey {
            name: self.name.clone(),
            record_type: self.record_type,
            set_identifier: self.set_identifier.clone(),
        }
    }

    pub fn is_alias(&self) -> bool {
        self.alias.is_some()
    }

    /// Characters Route 53 counts against its per-request limit: those of every Value element.
    pub fn value_chars(&self) -> usize {
        self.values.iter().map(|v| v.chars().count()).sum()
    }
}

/// Lowercases and drops the trailing dot of a hostname used as a value or alias target.
pub fn normalize_hostname_target(input: &str) -> String {
    let trimmed = input.trim();
    trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase()
}

/// Normalises one value for its record type, so that values read back from Route 53 and values
/// built from Kubernetes compare equal.
pub fn normalize_target(record_type: RecordType, input: &str) -> Result<String, EndpointError> {
    let invalid = |reason| EndpointError::InvalidTarget {
        record_type,
        target: shorten(input),
        reason,
    };
    let value = input.trim();
    if value.is_empty() {
        return Err(invalid("empty"));
    }
    match record_type {
        RecordType::A => value
            .parse::<Ipv4Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| invalid("not an IPv4 address")),
        RecordType::Aaaa => value
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| invalid("not an IPv6 address")),
        RecordType::Cname | RecordType::Ns | RecordType::Ptr => DnsName::parse_record_name(value)
            .map(|n| n.as_str().to_string())
            .map_err(|_| invalid("not a valid hostname")),
        RecordType::Mx => {
            let (preference, host) = value
                .split_once(char::is_whitespace)
                .ok_or_else(|| invalid("expected \"<preference> <host>\""))?;
            let preference: u16 = preference
                .parse()
                .map_err(|_| invalid("preference is not 0..=65535"))?;
            let host = DnsName::parse_record_name(host.trim())
                .map_err(|_| invalid("exchange is not a valid hostname"))?;
            Ok(format!("{preference} {host}"))
        }
        RecordType::Srv => {
            let fields: Vec<&str> = value.split_whitespace().collect();
            let [priority, weight, port, target] = fields[..] else {
                return Err(invalid("expected \"<priority> <weight> <port> <target>\""));
            };
            let number = |s: &str| {
                s.parse::<u16>()
                    .map_err(|_| invalid("number is not 0..=65535"))
            };
            let (priority, weight, port) = (number(priority)?, number(weight)?, number(port)?);
            let target = DnsName::parse_record_name(target)
                .map_err(|_| invalid("target is not a valid hostname"))?;
            Ok(format!("{priority} {weight} {port} {target}"))
        }
        RecordType::Txt => Ok(quote_txt(value)),
        RecordType::Caa => {
            let mut fields = value.splitn(3, char::is_whitespace);
            let flags = fields.next().unwrap_or_default();
            let tag = fields.next().unwrap_or_default();
            let rest = fields.next().unwrap_or_default().trim();
            flags
                .parse::<u8>()
                .map_err(|_| invalid("flags are not 0..=255"))?;
            if tag.is_empty() || rest.is_empty() {
                return Err(invalid("expected \"<flags> <tag> \\\"<value>\\\"\""));
            }
            Ok(format!("{flags} {} {rest}", tag.to_ascii_lowercase()))
        }
        RecordType::Naptr => Ok(value.split_whitespace().collect::<Vec<_>>().join(" ")),
    }
}

/// Route 53 wants TXT values quoted and split into strings of at most 255 characters; values
/// already quoted are taken as written.
fn quote_txt(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        return value.to_string();
    }
    let chars: Vec<char> = value.chars().collect();
    chars
        .chunks(MAX_TXT_STRING)
        .map(|chunk| {
            let mut out = String::with_capacity(chunk.len() + 2);
            out.push('"');
            for &c in chunk {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> DnsName {
        DnsName::parse(s).unwrap()
    }

    #[test]
    fn names_are_lowercased_and_lose_the_trailing_dot() {
        assert_eq!(name("App.Example.COM.").as_str(), "app.example.com");
        assert_eq!(name("  www.example.com ").as_str(), "www.example.com");
        assert_eq!(
            name("_http._tcp.example.com").as_str(),
            "_http._tcp.example.com"
        );
    }

    #[test]
    fn wildcard_only_as_whole_first_label() {
        assert!(name("*.example.com").is_wildcard());
        assert!(matches!(
            DnsName::parse("a.*.example.com"),
            Err(NameError::MisplacedWildcard { .. })
        ));
        assert!(matches!(
            DnsName::parse("a*.example.com"),
            Err(NameError::MisplacedWildcard { .. })
        ));
        // Route 53 stores literal asterisks, as external-dns's wildcard TXT names show.
        assert_eq!(
            DnsName::parse_record_name("a-\\052.example.com.")
                .unwrap()
                .as_str(),
            "a-*.example.com"
        );
        assert_eq!(
            DnsName::parse_record_name("\\052.example.com").unwrap(),
            name("*.example.com")
        );
    }

    #[test]
    fn precise_name_errors() {
        assert_eq!(DnsName::parse(""), Err(NameError::Empty));
        assert_eq!(DnsName::parse("."), Err(NameError::Empty));
        assert!(matches!(
            DnsName::parse("a..b"),
            Err(NameError::EmptyLabel { .. })
        ));
        let long_label = "x".repeat(64);
        assert_eq!(
            DnsName::parse(&format!("{long_label}.example.com")),
            Err(NameError::LabelTooLong {
                name: shorten(&format!("{long_label}.example.com")),
                label: long_label.clone(),
                len: 64
            })
        );
        assert!(DnsName::parse(&format!("{}.example.com", "x".repeat(63))).is_ok());
        let long_name = format!("{}.com", ["abcdefghi"; 25].join("."));
        assert_eq!(long_name.len(), 253);
        assert!(DnsName::parse(&long_name).is_ok());
        assert!(matches!(
            DnsName::parse(&format!("a{long_name}")),
            Err(NameError::TooLong { len: 254, .. })
        ));
        assert!(matches!(
            DnsName::parse("app!.example.com"),
            Err(NameError::InvalidCharacter { ch: '!', .. })
        ));
        assert!(matches!(
            DnsName::parse("bücher.example.com"),
            Err(NameError::InvalidCharacter { ch: 'ü', .. })
        ));
        assert!(matches!(
            DnsName::parse("-app.example.com"),
            Err(NameError::HyphenAtLabelEdge { .. })
        ));
    }

    #[test]
    fn within_zone_respects_label_boundaries() {
        let zone = name("example.com");
        assert!(name("example.com").is_within(&zone));
        assert!(name("a.b.example.com").is_within(&zone));
        assert!(!name("badexample.com").is_within(&zone));
        assert!(!name("com").is_within(&zone));
    }

    #[test]
    fn record_types_parse_case_insensitively() {
        assert_eq!(RecordType::parse("aaaa").unwrap(), RecordType::Aaaa);
        assert_eq!(RecordType::parse(" CNAME").unwrap(), RecordType::Cname);
        assert!(matches!(
            RecordType::parse("SOA"),
            Err(EndpointError::UnsupportedRecordType { .. })
        ));
        for t in RecordType::ALL {
            assert_eq!(RecordType::parse(t.as_lower()).unwrap(), t);
        }
    }

    #[test]
    fn targets_are_normalised_per_type() {
        let n = |t, v| normalize_target(t, v).unwrap();
        assert_eq!(n(RecordType::A, " 10.0.0.1 "), "10.0.0.1");
        assert_eq!(n(RecordType::Aaaa, "2001:DB8:0:0::1"), "2001:db8::1");
        assert_eq!(n(RecordType::Cname, "LB.Example.com."), "lb.example.com");
        assert_eq!(
            n(RecordType::Mx, "10  Mail.example.com."),
            "10 mail.example.com"
        );
        assert_eq!(
            n(RecordType::Srv, "0 1 8080 Pod.example.com"),
            "0 1 8080 pod.example.com"
        );
        assert_eq!(n(RecordType::Txt, "hello \"x\""), "\"hello \\\"x\\\"\"");
        assert_eq!(n(RecordType::Txt, "\"already\""), "\"already\"");
        let long = "y".repeat(300);
        let quoted = n(RecordType::Txt, &long);
        assert_eq!(
            quoted,
            format!("\"{}\" \"{}\"", "y".repeat(255), "y".repeat(45))
        );
        assert!(normalize_target(RecordType::A, "::1").is_err());
        assert!(normalize_target(RecordType::A, "").is_err());
        assert!(normalize_target(RecordType::Srv, "0 1 http pod").is_err());
        assert!(normalize_target(RecordType::Mx, "mail.example.com").is_err());
    }

    #[test]
    fn endpoints_validate_target_counts() {
        let app = name("app.example.com");
        assert_eq!(
            Endpoint::new(app.clone(), RecordType::A, Vec::<String>::new()),
            Err(EndpointError::NoTargets {
                record_type: RecordType::A
            })
        );
        assert_eq!(
            Endpoint::new(
                app.clone(),
                RecordType::Cname,
                ["a.example.com", "b.example.com"]
            ),
            Err(EndpointError::CnameTargetCount { count: 2 })
        );
        let ep = Endpoint::new(
            app.clone(),
            RecordType::A,
            ["10.0.0.2", "10.0.0.1", "10.0.0.1"],
        )
        .unwrap();
        assert_eq!(ep.targets.len(), 2);
        assert!(
            Endpoint::alias(
                app,
                RecordType::Txt,
                AliasTarget::new("x.example.com", None, true)
            )
            .is_err()
        );
    }

    #[test]
    fn records_take_default_ttl_and_resolve_same_zone_aliases() {
        let app = name("app.example.com");
        let plain = Endpoint::new(app.clone(), RecordType::A, ["10.0.0.1"]).unwrap();
        assert_eq!(plain.to_record("Z1", DEFAULT_TTL).ttl, Some(300));
        let with_ttl = plain.clone().with_ttl(Some(Ttl::new(60).unwrap()));
        assert_eq!(with_ttl.to_record("Z1", DEFAULT_TTL).ttl, Some(60));

        let alias = Endpoint::alias(
            app,
            RecordType::A,
            AliasTarget::new("Other.Example.com.", None, false),
        )
        .unwrap()
        .with_ttl(Some(Ttl::new(60).unwrap()));
        let record = alias.to_record("Z1", DEFAULT_TTL);
        assert_eq!(record.ttl, None, "Route 53 fixes alias TTLs");
        assert!(record.values.is_empty());
        let target = record.alias.unwrap();
        assert_eq!(target.dns_name, "other.example.com");
        assert_eq!(target.hosted_zone_id.as_deref(), Some("Z1"));
    }

    #[test]
    fn ttl_range() {
        assert!(Ttl::new(0).is_err());
        assert!(Ttl::new(-5).is_err());
        assert_eq!(Ttl::new(1).unwrap().seconds(), 1);
        assert_eq!(Ttl::new(2_147_483_647).unwrap().seconds(), MAX_TTL);
        assert!(Ttl::new(2_147_483_648).is_err());
    }

    #[test]
    fn resource_refs_order_by_namespace_then_name() {
        let a = ResourceRef::new("service", "a", "z");
        let b = ResourceRef::new("ingress", "b", "a");
        assert!(a < b);
        assert_eq!(
            ResourceRef::parse("ingress/default/web")
                .unwrap()
                .to_string(),
            "ingress/default/web"
        );
        assert_eq!(ResourceRef::parse("ingress/default"), None);
        let web = ResourceRef::new("ingress", "default", "web");
        assert!(web.matches_label("ingress/default/web"));
        assert!(!web.matches_label("ingress/default/web2"));
        assert!(!web.matches_label("service/default/web"));
    }

    proptest! {
        #[test]
        fn parse_is_idempotent_and_never_panics(input in ".{0,300}") {
            if let Ok(n) = DnsName::parse(&input) {
                prop_assert_eq!(DnsName::parse(n.as_str()), Ok(n.clone()));
                prop_assert!(n.as_str().len() <= MAX_NAME_LEN);
                prop_assert!(n.labels().all(|l| !l.is_empty() && l.len() <= MAX_LABEL_LEN));
            }
            let _ = DnsName::parse_record_name(&input);
        }

        #[test]
        fn valid_names_parse(labels in proptest::collection::vec("[a-z0-9]([a-z0-9_-]{0,20}[a-z0-9])?", 1..6)) {
            let joined = labels.join(".");
            let parsed = DnsName::parse(&format!("{}.", joined.to_uppercase())).unwrap();
            prop_assert_eq!(parsed.as_str(), joined.as_str());
        }

        #[test]
        fn targets_never_panic(t in 0usize..10, input in ".{0,100}") {
            let _ = normalize_target(RecordType::ALL[t], &input);
        }
    }
}
