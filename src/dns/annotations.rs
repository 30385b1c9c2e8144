//! external-dns annotations and DNSEndpoint `providerSpecific` properties.
//!
//! Both spellings of the annotation prefix are accepted so a cluster can switch from external-dns
//! without editing manifests; when both are set, the new prefix wins.

use std::collections::BTreeMap;

use super::endpoint::{
    EndpointError, Failover, GeoLocation, Routing, RoutingPolicy, Ttl, set_identifier,
};

pub const PREFIX: &str = "external-dns.kubernetes.io/";
pub const LEGACY_PREFIX: &str = "external-dns.alpha.kubernetes.io/";

/// Annotation keys, without prefix.
pub mod keys {
    pub const HOSTNAME: &str = "hostname";
    pub const INTERNAL_HOSTNAME: &str = "internal-hostname";
    pub const TTL: &str = "ttl";
    pub const TARGET: &str = "target";
    pub const ALIAS: &str = "alias";
    pub const SET_IDENTIFIER: &str = "set-identifier";
    pub const INGRESS_HOSTNAME_SOURCE: &str = "ingress-hostname-source";
    pub const AWS_WEIGHT: &str = "aws-weight";
    pub const AWS_REGION: &str = "aws-region";
    pub const AWS_FAILOVER: &str = "aws-failover";
    pub const AWS_GEO_CONTINENT: &str = "aws-geolocation-continent-code";
    pub const AWS_GEO_COUNTRY: &str = "aws-geolocation-country-code";
    pub const AWS_GEO_SUBDIVISION: &str = "aws-geolocation-subdivision-code";
    pub const AWS_MULTI_VALUE: &str = "aws-multi-value-answer";
    pub const AWS_HEALTH_CHECK_ID: &str = "aws-health-check-id";
    pub const AWS_EVALUATE_TARGET_HEALTH: &str = "aws-evaluate-target-health";
}

/// DNSEndpoint `providerSpecific` names, as external-dns's AWS provider reads them.
pub mod provider_specific {
    pub const ALIAS: &str = "alias";
    pub const WEIGHT: &str = "aws/weight";
    pub const REGION: &str = "aws/region";
    pub const FAILOVER: &str = "aws/failover";
    pub const GEO_CONTINENT: &str = "aws/geolocation-continent-code";
    pub const GEO_COUNTRY: &str = "aws/geolocation-country-code";
    pub const GEO_SUBDIVISION: &str = "aws/geolocation-subdivision-code";
    pub const MULTI_VALUE: &str = "aws/multi-value-answer";
    pub const HEALTH_CHECK_ID: &str = "aws/health-check-id";
    pub const EVALUATE_TARGET_HEALTH: &str = "aws/evaluate-target-health";
    pub const TARGET_HOSTED_ZONE: &str = "aws/target-hosted-zone";
}

const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "OC", "NA", "SA"];

/// Why an annotation or provider-specific property was rejected. `key` is the name as the user
/// wrote it, so the condition message points at the right line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    #[error("{key}: {value:?} is not a TTL (seconds, or a duration such as 5m or 1h30m)")]
    InvalidTtl { key: String, value: String },
    #[error("{key}: TTL {seconds} is out of range 1..=2147483647")]
    TtlOutOfRange { key: String, seconds: i64 },
    #[error("{key}: {value:?} is not valid; expected {expected}")]
    InvalidValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("{first} and {second} select different routing policies; set only one")]
    ConflictingRoutingPolicies { first: String, second: String },
    #[error("{key} sets a routing policy, which needs a set identifier")]
    MissingSetIdentifier { key: String },
    #[error("{key} is set but no routing policy is; Route 53 needs one with a set identifier")]
    MissingRoutingPolicy { key: String },
    #[error("{continent_key} and {country_key} cannot both be set")]
    ContinentAndCountry {
        continent_key: String,
        country_key: String,
    },
    #[error("{subdivision_key} needs {country_key}")]
    SubdivisionWithoutCountry {
        subdivision_key: String,
        country_key: String,
    },
    #[error("{key}: {error}")]
    SetIdentifier { key: String, error: EndpointError },
    #[error("unknown AWS provider-specific property {name:?}")]
    UnknownProviderSpecific { name: String },
}

/// Reads an annotation under either prefix; the new prefix wins.
pub fn annotation<'a>(annotations: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    annotations
        .get(&format!("{PREFIX}{key}"))
        .or_else(|| annotations.get(&format!("{LEGACY_PREFIX}{key}")))
        .map(String::as_str)
}

/// Which Ingress hosts are published (`ingress-hostname-source`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostnameSource {
    /// Rule hosts and the hostname annotation.
    #[default]
    All,
    AnnotationOnly,
    DefinedHostsOnly,
}

/// Per-record settings shared by annotations and DNSEndpoint properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordOptions {
    pub ttl: Option<Ttl>,
    pub set_identifier: Option<String>,
    pub routing: Routing,
    /// Publish hostname targets as ALIAS rather than CNAME.
    pub alias: bool,
    /// `None` leaves the controller's default.
    pub evaluate_target_health: Option<bool>,
    /// Explicit alias target zone (DNSEndpoint `aws/target-hosted-zone`).
    pub target_hosted_zone: Option<String>,
}

/// Everything external-dns reads from an object's annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsAnnotations {
    /// Raw, trimmed, de-duplicated hostnames; validated by the source builders so one bad name
    /// does not hide the others.
    pub hostnames: Vec<String>,
    pub internal_hostnames: Vec<String>,
    pub targets: Vec<String>,
    pub hostname_source: HostnameSource,
    pub options: RecordOptions,
}

/// One value with the key it came from, for error messages.
type Keyed<'a> = Option<(String, &'a str)>;

/// The raw routing inputs, from either annotations or provider-specific properties.
#[derive(Default)]
struct RawOptions<'a> {
    set_identifier: Keyed<'a>,
    weight: Keyed<'a>,
    region: Keyed<'a>,
    failover: Keyed<'a>,
    continent: Keyed<'a>,
    country: Keyed<'a>,
    subdivision: Keyed<'a>,
    multi_value: Keyed<'a>,
    health_check_id: Keyed<'a>,
    evaluate_target_health: Keyed<'a>,
    alias: Keyed<'a>,
    target_hosted_zone: Keyed<'a>,
}

/// Parses the external-dns annotations of one object.
pub fn parse_annotations(
    annotations: &BTreeMap<String, String>,
) -> Result<DnsAnnotations, AnnotationError> {
    let keyed = |key: &str| -> Keyed<'_> {
        let new = format!("{PREFIX}{key}");
        if let Some(v) = annotations.get(&new) {
            return Some((new, v.as_str()));
        }
        let old = format!("{LEGACY_PREFIX}{key}");
        annotations.get(&old).map(|v| (old, v.as_str()))
    };
    let raw = RawOptions {
        set_identifier: keyed(keys::SET_IDENTIFIER),
        weight: keyed(keys::AWS_WEIGHT),
        region: keyed(keys::AWS_REGION),
        failover: keyed(keys::AWS_FAILOVER),
        continent: keyed(keys::AWS_GEO_CONTINENT),
        country: keyed(keys::AWS_GEO_COUNTRY),
        subdivision: keyed(keys::AWS_GEO_SUBDIVISION),
        multi_value: keyed(keys::AWS_MULTI_VALUE),
        health_check_id: keyed(keys::AWS_HEALTH_CHECK_ID),
        evaluate_target_health: keyed(keys::AWS_EVALUATE_TARGET_HEALTH),
        alias: keyed(keys::ALIAS),
        target_hosted_zone: None,
    };
    let mut options = build_options(&raw)?;
    if let Some((key, value)) = keyed(keys::TTL) {
        options.ttl = Some(parse_ttl(&key, value)?);
    }
    let hostname_source = match keyed(keys::INGRESS_HOSTNAME_SOURCE) {
        None => HostnameSource::All,
        Some((key, value)) => match value.trim() {
            "annotation-only" => HostnameSource::AnnotationOnly,
            "defined-hosts-only" => HostnameSource::DefinedHostsOnly,
            _ => {
                return Err(AnnotationError::InvalidValue {
                    key,
                    value: value.to_string(),
                    expected: "annotation-only or defined-hosts-only",
                });
            }
        },
    };
    Ok(DnsAnnotations {
        hostnames: split_list(annotation(annotations, keys::HOSTNAME)),
        internal_hostnames: split_list(annotation(annotations, keys::INTERNAL_HOSTNAME)),
        targets: split_list(annotation(annotations, keys::TARGET)),
        hostname_source,
        options,
    })
}

/// Parses DNSEndpoint `providerSpecific` entries together with the endpoint's `setIdentifier`
/// field. Properties of other providers are ignored, as external-dns does; an unknown `aws/`
/// property is an error since it is most likely a typo.
pub fn parse_provider_specific<'a, I>(
    set_identifier: Option<&'a str>,
    properties: I,
) -> Result<RecordOptions, AnnotationError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut raw = RawOptions {
        set_identifier: set_identifier.map(|v| ("setIdentifier".to_string(), v)),
        ..RawOptions::default()
    };
    for (name, value) in properties {
        let slot = match name {
            provider_specific::ALIAS => &mut raw.alias,
            provider_specific::WEIGHT => &mut raw.weight,
            provider_specific::REGION => &mut raw.region,
            provider_specific::FAILOVER => &mut raw.failover,
            provider_specific::GEO_CONTINENT => &mut raw.continent,
            provider_specific::GEO_COUNTRY => &mut raw.country,
            provider_specific::GEO_SUBDIVISION => &mut raw.subdivision,
            provider_specific::MULTI_VALUE => &mut raw.multi_value,
            provider_specific::HEALTH_CHECK_ID => &mut raw.health_check_id,
            provider_specific::EVALUATE_TARGET_HEALTH => &mut raw.evaluate_target_health,
            provider_specific::TARGET_HOSTED_ZONE => &mut raw.target_hosted_zone,
            other if other.starts_with("aws/") => {
                return Err(AnnotationError::UnknownProviderSpecific {
                    name: other.to_string(),
                });
            }
            _ => continue,
        };
        *slot = Some((name.to_string(), value));
    }
    build_options(&raw)
}

/// Parses a TTL the way external-dns does: whole seconds, or a Go-style duration built from
/// `h`, `m` and `s` units (`90s`, `5m`, `1h30m`).
pub fn parse_ttl(key: &str, value: &str) -> Result<Ttl, AnnotationError> {
    let invalid = || AnnotationError::InvalidTtl {
        key: key.to_string(),
        value: value.to_string(),
    };
    let text = value.trim();
    let seconds: i64 = if let Ok(n) = text.parse::<i64>() {
        n
    } else {
        let mut total: i64 = 0;
        let mut digits = String::new();
        let mut saw_unit = false;
        for ch in text.chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            let unit = match ch {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(invalid()),
            };
            let n: i64 = digits.parse().map_err(|_| invalid())?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(invalid)?;
            digits.clear();
            saw_unit = true;
        }
        if !saw_unit || !digits.is_empty() {
            return Err(invalid());
        }
        total
    };
    Ttl::new(seconds).map_err(|_| AnnotationError::TtlOutOfRange {
        key: key.to_string(),
        seconds,
    })
}

fn split_list(value: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in value.unwrap_or_default().split(',') {
        let item = item.trim();
        if !item.is_empty() && !out.iter().any(|seen| seen == item) {
            out.push(item.to_string());
        }
    }
    out
}

fn parse_bool(key: &str, value: &str) -> Result<bool, AnnotationError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AnnotationError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            expected: "true or false",
        }),
    }
}

fn build_options(raw: &RawOptions<'_>) -> Result<RecordOptions, AnnotationError> {
    let invalid = |key: &str, value: &str, expected| AnnotationError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        expected,
    };
    let mut policies: Vec<(String, RoutingPolicy)> = Vec::new();

    if let Some((key, value)) = &raw.weight {
        let weight = value
            .trim()
            .parse::<u8>()
            .map_err(|_| invalid(key, value, "an integer weight 0..=255"))?;
        policies.push((key.clone(), RoutingPolicy::Weighted { weight }));
    }
    if let Some((key, value)) = &raw.region {
        let region = value.trim().to_ascii_lowercase();
        let well_formed = !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !well_formed {
            return Err(invalid(key, value, "an AWS region such as us-east-1"));
        }
        policies.push((key.clone(), RoutingPolicy::Latency { region }));
    }
    if let Some((key, value)) = &raw.failover {
        let role = match value.trim().to_ascii_uppercase().as_str() {
            "PRIMARY" => Failover::Primary,
            "SECONDARY" => Failover::Secondary,
            _ => return Err(invalid(key, value, "PRIMARY or SECONDARY")),
        };
        policies.push((key.clone(), RoutingPolicy::Failover(role)));
    }
    if let Some(geo) = geolocation(raw)? {
        policies.push(geo);
    }
    if let Some((key, value)) = &raw.multi_value {
        // external-dns treats the property's mere presence as "on"; an explicit "false" is
        // honoured here because silently enabling multivalue would be surprising.
        let on = value.trim().is_empty() || parse_bool(key, value)?;
        if on {
            policies.push((key.clone(), RoutingPolicy::MultiValue));
        }
    }

    if policies.len() > 1 {
        return Err(AnnotationError::ConflictingRoutingPolicies {
            first: policies[0].0.clone(),
            second: policies[1].0.clone(),
        });
    }
    let set_identifier =
        match &raw.set_identifier {
            None => None,
            Some((key, value)) => Some(set_identifier(value.trim()).map_err(|error| {
                AnnotationError::SetIdentifier {
                    key: key.clone(),
                    error,
                }
            })?),
        };
    let policy = match (policies.pop(), &set_identifier, &raw.set_identifier) {
        (Some((key, _)), None, _) => return Err(AnnotationError::MissingSetIdentifier { key }),
        (None, Some(_), Some((key, _))) => {
            return Err(AnnotationError::MissingRoutingPolicy { key: key.clone() });
        }
        (Some((_, policy)), Some(_), _) => policy,
        (None, _, _) => RoutingPolicy::Simple,
    };

    let health_check_id = match &raw.health_check_id {
        None => None,
        Some((key, value)) => {
            let id = value.trim();
            if id.is_empty() || id.len() > 64 || id.chars().any(|c| c.is_whitespace()) {
                return Err(invalid(key, value, "a Route 53 health check id"));
            }
            Some(id.to_string())
        }
    };
    let evaluate_target_health = match &raw.evaluate_target_health {
        None => None,
        Some((key, value)) => Some(parse_bool(key, value)?),
    };
    // external-dns only reacts to alias "true"; anything else is a typo worth reporting.
    let alias = match &raw.alias {
        None => false,
        Some((key, value)) => parse_bool(key, value)?,
    };
    let target_hosted_zone = match &raw.target_hosted_zone {
        None => None,
        Some((key, value)) => {
            let id = value.trim();
            let id = id.strip_prefix("/hostedzone/").unwrap_or(id);
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid(
                    key,
                    value,
                    "a hosted zone id such as Z35SXDOTRQ7X7K",
                ));
            }
            Some(id.to_string())
        }
    };

    Ok(RecordOptions {
        ttl: None,
        set_identifier,
        routing: Routing {
            policy,
            health_check_id,
        },
        alias,
        evaluate_target_health,
        target_hosted_zone,
    })
}

fn geolocation(raw: &RawOptions<'_>) -> Result<Option<(String, RoutingPolicy)>, AnnotationError> {
    let invalid = |key: &str, value: &str, expected| AnnotationError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        expected,
    };
    match (&raw.continent, &raw.country, &raw.subdivision) {
        (None, None, None) => Ok(None),
        (Some((continent_key, _)), Some((country_key, _)), _) => {
            Err(AnnotationError::ContinentAndCountry {
                continent_key: continent_key.clone(),
                country_key: country_key.clone(),
            })
        }
        (Some((continent_key, _)), None, Some((subdivision_key, _))) => {
            Err(AnnotationError::SubdivisionWithoutCountry {
                subdivision_key: subdivision_key.clone(),
                country_key: continent_key.replace("continent", "country"),
            })
        }
        (None, None, Some((subdivision_key, _))) => {
            Err(AnnotationError::SubdivisionWithoutCountry {
                subdivision_key: subdivision_key.clone(),
                country_key: subdivision_key.replace("subdivision", "country"),
            })
        }
        (Some((key, value)), None, None) => {
            let code = value.trim().to_ascii_uppercase();
            if !CONTINENTS.contains(&code.as_str()) {
                return Err(invalid(
                    key,
                    value,
                    "a continent code: AF, AN, AS, EU, OC, NA or SA",
                ));
            }
            Ok(Some((
                key.clone(),
                RoutingPolicy::Geolocation(GeoLocation::Continent(code)),
            )))
        }
        (None, Some((key, value)), subdivision) => {
            let country = value.trim().to_ascii_uppercase();
            let well_formed = country == "*"
                || (country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()));
            if !well_formed {
                return Err(invalid(key, value, "a two-letter country code or *"));
            }
            let subdivision = match subdivision {
                None => None,
                Some((sub_key, sub_value)) => {
                    let code = sub_value.trim().to_ascii_uppercase();
                    if code.is_empty()
                        || code.len() > 3
                        || !code.chars().all(|c| c.is_ascii_alphanumeric())
                        || country == "*"
                    {
                        return Err(invalid(sub_key, sub_value, "a subdivision code such as CA"));
                    }
                    Some(code)
                }
            };
            Ok(Some((
                key.clone(),
                RoutingPolicy::Geolocation(GeoLocation::Country {
                    country,
                    subdivision,
                }),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn both_prefixes_are_read_and_the_new_one_wins() {
        let a = annotations(&[
            (
                "external-dns.alpha.kubernetes.io/hostname",
                "old.example.com",
            ),
            ("external-dns.alpha.kubernetes.io/ttl", "60"),
            (
                "external-dns.kubernetes.io/hostname",
                "new.example.com, b.example.com,,",
            ),
        ]);
        let parsed = parse_annotations(&a).unwrap();
        assert_eq!(parsed.hostnames, ["new.example.com", "b.example.com"]);
        assert_eq!(parsed.options.ttl, Some(Ttl::new(60).unwrap()));
    }

    #[test]
    fn ttl_accepts_seconds_and_durations() {
        let ttl = |v| parse_ttl("ttl", v).map(Ttl::seconds);
        assert_eq!(ttl("600"), Ok(600));
        assert_eq!(ttl("10m"), Ok(600));
        assert_eq!(ttl("1h30m15s"), Ok(5415));
        assert_eq!(ttl("2147483647"), Ok(2_147_483_647));
        assert_eq!(
            ttl("0"),
            Err(AnnotationError::TtlOutOfRange {
                key: "ttl".into(),
                seconds: 0
            })
        );
        assert!(matches!(
            ttl("2147483648"),
            Err(AnnotationError::TtlOutOfRange { .. })
        ));
        assert!(matches!(
            ttl("-1"),
            Err(AnnotationError::TtlOutOfRange { .. })
        ));
        for bad in ["", "ten", "5d", "1h5", "m", "99999999999999999999h"] {
            assert!(
                matches!(ttl(bad), Err(AnnotationError::InvalidTtl { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn weighted_routing_needs_a_set_identifier() {
        let a = annotations(&[("external-dns.alpha.kubernetes.io/aws-weight", "10")]);
        assert_eq!(
            parse_annotations(&a),
            Err(AnnotationError::MissingSetIdentifier {
                key: "external-dns.alpha.kubernetes.io/aws-weight".into()
            })
        );
        let a = annotations(&[
            ("external-dns.alpha.kubernetes.io/aws-weight", "10"),
            ("external-dns.alpha.kubernetes.io/set-identifier", "blue"),
            (
                "external-dns.alpha.kubernetes.io/aws-health-check-id",
                "abc-123",
            ),
        ]);
        let options = parse_annotations(&a).unwrap().options;
        assert_eq!(options.set_identifier.as_deref(), Some("blue"));
        assert_eq!(
            options.routing.policy,
            RoutingPolicy::Weighted { weight: 10 }
        );
        assert_eq!(options.routing.health_check_id.as_deref(), Some("abc-123"));
    }

    #[test]
    fn set_identifier_alone_is_rejected() {
        let a = annotations(&[("external-dns.kubernetes.io/set-identifier", "blue")]);
        assert!(matches!(
            parse_annotations(&a),
            Err(AnnotationError::MissingRoutingPolicy { .. })
        ));
    }

    #[test]
    fn routing_policies_are_exclusive() {
        let a = annotations(&[
            ("external-dns.kubernetes.io/aws-weight", "10"),
            ("external-dns.kubernetes.io/aws-region", "us-east-1"),
            ("external-dns.kubernetes.io/set-identifier", "x"),
        ]);
        assert!(matches!(
            parse_annotations(&a),
            Err(AnnotationError::ConflictingRoutingPolicies { .. })
        ));
    }

    #[test]
    fn each_routing_policy_parses() {
        let with = |key: &str, value: &str| {
            let a = annotations(&[
                (&format!("{PREFIX}{key}"), value),
                ("external-dns.kubernetes.io/set-identifier", "id"),
            ]);
            parse_annotations(&a).map(|p| p.options.routing.policy)
        };
        assert_eq!(
            with(keys::AWS_REGION, "EU-West-1"),
            Ok(RoutingPolicy::Latency {
                region: "eu-west-1".into()
            })
        );
        assert_eq!(
            with(keys::AWS_FAILOVER, "secondary"),
            Ok(RoutingPolicy::Failover(Failover::Secondary))
        );
        assert!(with(keys::AWS_FAILOVER, "TERTIARY").is_err());
        assert_eq!(
            with(keys::AWS_GEO_CONTINENT, "eu"),
            Ok(RoutingPolicy::Geolocation(GeoLocation::Continent(
                "EU".into()
            )))
        );
        assert!(with(keys::AWS_GEO_CONTINENT, "XX").is_err());
        assert_eq!(
            with(keys::AWS_GEO_COUNTRY, "*"),
            Ok(RoutingPolicy::Geolocation(GeoLocation::Country {
                country: "*".into(),
                subdivision: None
            }))
        );
        assert_eq!(
            with(keys::AWS_MULTI_VALUE, "true"),
            Ok(RoutingPolicy::MultiValue)
        );
        assert_eq!(
            with(keys::AWS_MULTI_VALUE, ""),
            Ok(RoutingPolicy::MultiValue)
        );
        assert!(with(keys::AWS_WEIGHT, "256").is_err());
        assert!(with(keys::AWS_WEIGHT, "-1").is_err());
    }

    #[test]
    fn geolocation_rules() {
        let a = annotations(&[
            (
                "external-dns.kubernetes.io/aws-geolocation-country-code",
                "us",
            ),
            (
                "external-dns.kubernetes.io/aws-geolocation-subdivision-code",
                "ca",
            ),
            ("external-dns.kubernetes.io/set-identifier", "west"),
        ]);
        assert_eq!(
            parse_annotations(&a).unwrap().options.routing.policy,
            RoutingPolicy::Geolocation(GeoLocation::Country {
                country: "US".into(),
                subdivision: Some("CA".into())
            })
        );
        let a = annotations(&[
            (
                "external-dns.kubernetes.io/aws-geolocation-continent-code",
                "EU",
            ),
            (
                "external-dns.kubernetes.io/aws-geolocation-country-code",
                "DE",
            ),
            ("external-dns.kubernetes.io/set-identifier", "x"),
        ]);
        assert!(matches!(
            parse_annotations(&a),
            Err(AnnotationError::ContinentAndCountry { .. })
        ));
        let a = annotations(&[
            (
                "external-dns.kubernetes.io/aws-geolocation-subdivision-code",
                "CA",
            ),
            ("external-dns.kubernetes.io/set-identifier", "x"),
        ]);
        assert!(matches!(
            parse_annotations(&a),
            Err(AnnotationError::SubdivisionWithoutCountry { .. })
        ));
    }

    #[test]
    fn alias_and_evaluate_target_health_are_booleans() {
        let a = annotations(&[
            ("external-dns.kubernetes.io/alias", "true"),
            (
                "external-dns.kubernetes.io/aws-evaluate-target-health",
                "false",
            ),
        ]);
        let options = parse_annotations(&a).unwrap().options;
        assert!(options.alias);
        assert_eq!(options.evaluate_target_health, Some(false));
        let a = annotations(&[("external-dns.kubernetes.io/alias", "yes")]);
        assert!(matches!(
            parse_annotations(&a),
            Err(AnnotationError::InvalidValue { .. })
        ));
    }

    #[test]
    fn hostname_source() {
        let a = annotations(&[(
            "external-dns.alpha.kubernetes.io/ingress-hostname-source",
            "annotation-only",
        )]);
        assert_eq!(
            parse_annotations(&a).unwrap().hostname_source,
            HostnameSource::AnnotationOnly
        );
        let a = annotations(&[(
            "external-dns.alpha.kubernetes.io/ingress-hostname-source",
            "both",
        )]);
        assert!(parse_annotations(&a).is_err());
    }

    #[test]
    fn provider_specific_properties() {
        let properties = [
            ("aws/weight", "100"),
            ("aws/evaluate-target-health", "true"),
            ("cloudflare/proxied", "true"),
        ];
        assert!(matches!(
            parse_provider_specific(None, properties),
            Err(AnnotationError::MissingSetIdentifier { .. })
        ));
        let options = parse_provider_specific(Some("blue"), properties).unwrap();
        assert_eq!(
            options.routing.policy,
            RoutingPolicy::Weighted { weight: 100 }
        );
        assert_eq!(options.set_identifier.as_deref(), Some("blue"));
        assert_eq!(options.evaluate_target_health, Some(true));

        let options = parse_provider_specific(
            None,
            [
                ("alias", "true"),
                ("aws/health-check-id", "hc-1"),
                ("aws/target-hosted-zone", "/hostedzone/Z123"),
            ],
        )
        .unwrap();
        assert!(options.alias);
        assert_eq!(options.routing.health_check_id.as_deref(), Some("hc-1"));
        assert_eq!(options.target_hosted_zone.as_deref(), Some("Z123"));
        assert_eq!(
            parse_provider_specific(None, [("aws/wieght", "1")]),
            Err(AnnotationError::UnknownProviderSpecific {
                name: "aws/wieght".into()
            })
        );
    }

    proptest! {
        #[test]
        fn arbitrary_annotations_never_panic(
            entries in proptest::collection::btree_map(
                prop_oneof![
                    Just(format!("{PREFIX}{}", keys::TTL)),
                    Just(format!("{LEGACY_PREFIX}{}", keys::AWS_WEIGHT)),
                    Just(format!("{PREFIX}{}", keys::SET_IDENTIFIER)),
                    Just(format!("{PREFIX}{}", keys::AWS_GEO_COUNTRY)),
                    Just(format!("{PREFIX}{}", keys::AWS_GEO_SUBDIVISION)),
                    Just(format!("{PREFIX}{}", keys::AWS_GEO_CONTINENT)),
                    Just(format!("{PREFIX}{}", keys::AWS_MULTI_VALUE)),
                    Just(format!("{PREFIX}{}", keys::HOSTNAME)),
                ],
                ".{0,20}",
                0..8,
            )
        ) {
            let _ = parse_annotations(&entries);
        }

        #[test]
        fn integer_ttls_in_range_are_accepted(seconds in 1i64..=2_147_483_647) {
            prop_assert_eq!(parse_ttl("ttl", &seconds.to_string()).map(|t| i64::from(t.seconds())), Ok(seconds));
        }
    }
}
