//! Hosted zones: which ones causeway manages, and which of them each endpoint goes to.
//!
//! Filter semantics follow external-dns's `--domain-filter`, `--exclude-domains`,
//! `--regex-domain-filter`, `--regex-domain-exclusion`, `--zone-id-filter`, `--aws-zone-type` and
//! `--aws-zone-tags`, so the same flags select the same zones.

use std::collections::BTreeMap;

use regex::Regex;

use super::endpoint::{DnsName, Endpoint, RecordKey, RecordType, ResourceRef, name_is_within};

/// A Route 53 hosted zone as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The bare id (`Z123...`), without `/hostedzone/`.
    pub id: String,
    pub name: DnsName,
    pub private: bool,
    pub tags: BTreeMap<String, String>,
}

impl Zone {
    pub fn new(id: &str, name: DnsName, private: bool) -> Self {
        Zone {
            id: bare_zone_id(id).to_string(),
            name,
            private,
            tags: BTreeMap::new(),
        }
    }
}

fn bare_zone_id(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix("/hostedzone/").unwrap_or(id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneType {
    Public,
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("invalid domain filter regex {pattern:?}: {message}")]
    InvalidRegex { pattern: String, message: String },
    #[error("invalid zone tag filter {filter:?}: expected key or key=value")]
    InvalidTagFilter { filter: String },
    #[error("{name} is outside every managed hosted zone")]
    OutsideManagedZones {
        name: DnsName,
        resource: Option<ResourceRef>,
    },
    #[error("{name} is excluded by the domain filter")]
    ExcludedByDomainFilter {
        name: DnsName,
        resource: Option<ResourceRef>,
    },
    #[error("{name} is the apex of zone {zone_id}, where a CNAME is not allowed; use an alias")]
    CnameAtApex {
        name: DnsName,
        zone_id: String,
        resource: Option<ResourceRef>,
    },
}

impl ZoneError {
    /// The object the error is about, if any.
    pub fn resource(&self) -> Option<&ResourceRef> {
        match self {
            ZoneError::OutsideManagedZones { resource, .. }
            | ZoneError::ExcludedByDomainFilter { resource, .. }
            | ZoneError::CnameAtApex { resource, .. } => resource.as_ref(),
            ZoneError::InvalidRegex { .. } | ZoneError::InvalidTagFilter { .. } => None,
        }
    }
}

/// Domain include/exclude lists, or an include/exclude regex pair that replaces them.
#[derive(Debug, Clone, Default)]
pub struct DomainFilter {
    include: Vec<String>,
    exclude: Vec<String>,
    regex_include: Option<Regex>,
    regex_exclude: Option<Regex>,
}

fn normalize_domain(domain: &str) -> String {
    let d = domain.trim();
    d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase()
}

fn compile(pattern: Option<&str>) -> Result<Option<Regex>, ZoneError> {
    pattern
        .filter(|p| !p.is_empty())
        .map(|p| {
            Regex::new(p).map_err(|e| ZoneError::InvalidRegex {
                pattern: p.to_string(),
                message: e.to_string(),
            })
        })
        .transpose()
}

/// external-dns's `matchFilter`: `.example.com` matches only below it; `example.com` matches
/// itself and below.
fn match_filter(filters: &[String], domain: &str, when_empty: bool) -> bool {
    if filters.iter().all(String::is_empty) {
        return when_empty;
    }
    filters.iter().filter(|f| !f.is_empty()).any(|filter| {
        if filter.starts_with('.') {
            domain.ends_with(filter.as_str())
        } else {
            name_is_within(domain, filter)
        }
    })
}

impl DomainFilter {
    pub fn new<S: AsRef<str>>(include: &[S], exclude: &[S]) -> Self {
        let norm = |list: &[S]| -> Vec<String> {
            list.iter()
                .map(|s| {
                    let s = s.as_ref().trim();
                    // Keep a leading dot: it means "subdomains only".
                    match s.strip_prefix('.') {
                        Some(rest) => format!(".{}", normalize_domain(rest)),
                        None => normalize_domain(s),
                    }
                })
                .filter(|s| !s.is_empty() && s != ".")
                .collect()
        };
        DomainFilter {
            include: norm(include),
            exclude: norm(exclude),
            regex_include: None,
            regex_exclude: None,
        }
    }

    /// A regex filter; when set, external-dns ignores the domain lists, and so do we.
    pub fn with_regex(include: Option<&str>, exclude: Option<&str>) -> Result<Self, ZoneError> {
        Ok(DomainFilter {
            include: Vec::new(),
            exclude: Vec::new(),
            regex_include: compile(include)?,
            regex_exclude: compile(exclude)?,
        })
    }

    fn uses_regex(&self) -> bool {
        self.regex_include.is_some() || self.regex_exclude.is_some()
    }

    /// Whether records named `domain` (or a zone named `domain`) are managed.
    pub fn matches(&self, domain: &str) -> bool {
        let domain = normalize_domain(domain);
        if self.uses_regex() {
            let included = self
                .regex_include
                .as_ref()
                .is_none_or(|r| r.is_match(&domain));
            let excluded = self
                .regex_exclude
                .as_ref()
                .is_some_and(|r| r.is_match(&domain));
            return included && !excluded;
        }
        match_filter(&self.include, &domain, true) && !match_filter(&self.exclude, &domain, false)
    }

    /// external-dns's `MatchParent`: a zone above an included domain is still needed to publish
    /// that domain's records (filter `app.example.com`, zone `example.com`).
    pub fn matches_parent(&self, zone_name: &str) -> bool {
        if self.uses_regex() {
            return false;
        }
        let zone = normalize_domain(zone_name);
        if match_filter(&self.exclude, &zone, false) {
            return false;
        }
        if self.include.is_empty() {
            return true;
        }
        self.include
            .iter()
            .filter(|f| !f.starts_with('.'))
            .any(|f| f.len() > zone.len() && name_is_within(f, &zone))
    }
}

/// A zone tag filter entry: `key` (present) or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    pub key: String,
    pub value: Option<String>,
}

impl TagFilter {
    pub fn parse(filter: &str) -> Result<Self, ZoneError> {
        let (key, value) = match filter.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
            None => (filter.trim(), None),
        };
        if key.is_empty() {
            return Err(ZoneError::InvalidTagFilter {
                filter: filter.to_string(),
            });
        }
        Ok(TagFilter {
            key: key.to_string(),
            value,
        })
    }

    fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        match (tags.get(&self.key), &self.value) {
            (Some(actual), Some(wanted)) => actual == wanted,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// Which hosted zones causeway manages.
#[derive(Debug, Clone, Default)]
pub struct ZoneFilter {
    pub domains: DomainFilter,
    /// Bare or `/hostedzone/`-prefixed ids; empty means all.
    pub zone_ids: Vec<String>,
    pub zone_type: Option<ZoneType>,
    /// All must match.
    pub tags: Vec<TagFilter>,
}

impl ZoneFilter {
    pub fn matches(&self, zone: &Zone) -> bool {
        let id_ok =
            self.zone_ids.is_empty() || self.zone_ids.iter().any(|id| bare_zone_id(id) == zone.id);
        let type_ok = match self.zone_type {
            None => true,
            Some(ZoneType::Private) => zone.private,
            Some(ZoneType::Public) => !zone.private,
        };
        let domain_ok = self.domains.matches(zone.name.as_str())
            || self.domains.matches_parent(zone.name.as_str());
        id_ok && type_ok && domain_ok && self.tags.iter().all(|t| t.matches(&zone.tags))
    }

    /// The managed zones, sorted by id so that everything downstream is deterministic.
    pub fn select(&self, zones: &[Zone]) -> Vec<Zone> {
        let mut out: Vec<Zone> = zones.iter().filter(|z| self.matches(z)).cloned().collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

/// The zones a name is published in: the longest-suffix public zone, plus every private zone
/// containing it (private zones serve different VPCs, so each needs the record).
pub fn zones_for<'a>(zones: &'a [Zone], name: &DnsName) -> Vec<&'a Zone> {
    let mut public: Option<&Zone> = None;
    let mut out: Vec<&Zone> = Vec::new();
    for zone in zones.iter().filter(|z| name.is_within(&z.name)) {
        if zone.private {
            out.push(zone);
        } else {
            // Route 53 allows two zones with one name; the smaller id wins so the choice is stable.
            let better = public.is_none_or(|p| {
                let (len, best) = (zone.name.as_str().len(), p.name.as_str().len());
                len > best || (len == best && zone.id < p.id)
            });
            if better {
                public = Some(zone);
            }
        }
    }
    out.extend(public);
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Desired endpoints split by zone id.
#[derive(Debug, Default)]
pub struct Assignment {
    pub by_zone: BTreeMap<String, Vec<Endpoint>>,
    pub errors: Vec<ZoneError>,
}

/// Places each endpoint in its zones, reporting names no managed zone takes.
pub fn assign(zones: &[Zone], domains: &DomainFilter, endpoints: Vec<Endpoint>) -> Assignment {
    let mut assignment = Assignment::default();
    for zone in zones {
        assignment.by_zone.entry(zone.id.clone()).or_default();
    }
    for endpoint in endpoints {
        if !domains.matches(endpoint.dns_name.as_str()) {
            assignment.errors.push(ZoneError::ExcludedByDomainFilter {
                name: endpoint.dns_name.clone(),
                resource: endpoint.resource.clone(),
            });
            continue;
        }
        let targets = zones_for(zones, &endpoint.dns_name);
        if targets.is_empty() {
            assignment.errors.push(ZoneError::OutsideManagedZones {
                name: endpoint.dns_name.clone(),
                resource: endpoint.resource.clone(),
            });
            continue;
        }
        for zone in targets {
            if is_cname_at_apex(&endpoint.key(), endpoint.alias.is_some(), zone) {
                assignment.errors.push(ZoneError::CnameAtApex {
                    name: endpoint.dns_name.clone(),
                    zone_id: zone.id.clone(),
                    resource: endpoint.resource.clone(),
                });
                continue;
            }
            assignment
                .by_zone
                .entry(zone.id.clone())
                .or_default()
                .push(endpoint.clone());
        }
    }
    assignment
}

fn is_cname_at_apex(key: &RecordKey, alias: bool, zone: &Zone) -> bool {
    key.record_type == RecordType::Cname && !alias && key.name == zone.name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DnsName {
        DnsName::parse(s).unwrap()
    }

    fn zone(id: &str, n: &str, private: bool) -> Zone {
        Zone::new(id, name(n), private)
    }

    fn endpoint(n: &str, t: RecordType, target: &str) -> Endpoint {
        Endpoint::new(name(n), t, [target])
            .unwrap()
            .with_resource(ResourceRef::new("ingress", "default", "web"))
    }

    #[test]
    fn domain_filter_follows_external_dns() {
        let f = DomainFilter::new(&["example.com", ".internal.org"], &["skip.example.com"]);
        assert!(f.matches("example.com"));
        assert!(f.matches("App.Example.com."));
        assert!(!f.matches("badexample.com"));
        assert!(
            !f.matches("internal.org"),
            "a leading dot means subdomains only"
        );
        assert!(f.matches("a.internal.org"));
        assert!(!f.matches("skip.example.com"));
        assert!(!f.matches("x.skip.example.com"));
        assert!(DomainFilter::default().matches("anything.test"));
    }

    #[test]
    fn parent_zones_of_a_filtered_domain_are_kept() {
        let f = DomainFilter::new(&["app.example.com"], &[] as &[&str]);
        assert!(!f.matches("example.com"));
        assert!(f.matches_parent("example.com"));
        assert!(!f.matches_parent("other.com"));
        let filter = ZoneFilter {
            domains: f,
            ..ZoneFilter::default()
        };
        assert!(filter.matches(&zone("Z1", "example.com", false)));
    }

    #[test]
    fn regex_filter_replaces_lists() {
        let f = DomainFilter::with_regex(Some(r"(^|\.)example\.com$"), Some(r"^test\.")).unwrap();
        assert!(f.matches("a.example.com"));
        assert!(!f.matches("test.example.com"));
        assert!(!f.matches("example.org"));
        assert!(matches!(
            DomainFilter::with_regex(Some("("), None),
            Err(ZoneError::InvalidRegex { .. })
        ));
    }

    #[test]
    fn zone_filters_combine() {
        let mut tagged = zone("/hostedzone/Z2", "example.com", true);
        tagged.tags.insert("team".into(), "web".into());
        let filter = ZoneFilter {
            zone_ids: vec!["/hostedzone/Z2".into()],
            zone_type: Some(ZoneType::Private),
            tags: vec![TagFilter::parse("team=web").unwrap()],
            ..ZoneFilter::default()
        };
        assert!(filter.matches(&tagged));
        let mut other = tagged.clone();
        other.tags.insert("team".into(), "db".into());
        assert!(!filter.matches(&other));
        assert!(!filter.matches(&zone("Z3", "example.com", true)));
        assert!(!filter.matches(&zone("Z2", "example.com", false)));
        assert!(TagFilter::parse("=x").is_err());
        assert!(
            TagFilter::parse("owner")
                .unwrap()
                .matches(&tagged_with("owner", ""))
        );
    }

    fn tagged_with(k: &str, v: &str) -> BTreeMap<String, String> {
        [(k.to_string(), v.to_string())].into_iter().collect()
    }

    #[test]
    fn longest_public_zone_plus_all_private_zones() {
        let zones = vec![
            zone("Z1", "example.com", false),
            zone("Z2", "app.example.com", false),
            zone("Z3", "example.com", true),
            zone("Z4", "app.example.com", true),
            zone("Z5", "other.com", false),
        ];
        let ids = |n: &str| {
            zones_for(&zones, &name(n))
                .iter()
                .map(|z| z.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("www.app.example.com"), ["Z2", "Z3", "Z4"]);
        assert_eq!(ids("www.example.com"), ["Z1", "Z3"]);
        assert_eq!(ids("www.unknown.org"), Vec::<&str>::new());
    }

    #[test]
    fn assignment_reports_bad_names() {
        let zones = vec![zone("Z1", "example.com", false)];
        let filter = DomainFilter::new(
            &["example.com", "elsewhere.net", "excluded.org"],
            &["excluded.org"],
        );
        let endpoints = vec![
            endpoint("app.example.com", RecordType::A, "10.0.0.1"),
            endpoint("example.com", RecordType::Cname, "lb.example.net"),
            endpoint("app.elsewhere.net", RecordType::A, "10.0.0.1"),
            endpoint("app.excluded.org", RecordType::A, "10.0.0.1"),
        ];
        let a = assign(&zones, &filter, endpoints);
        assert_eq!(a.by_zone["Z1"].len(), 1);
        assert_eq!(a.errors.len(), 3);
        assert!(matches!(a.errors[0], ZoneError::CnameAtApex { .. }));
        assert!(matches!(a.errors[1], ZoneError::OutsideManagedZones { .. }));
        assert!(matches!(
            a.errors[2],
            ZoneError::ExcludedByDomainFilter { .. }
        ));
        assert_eq!(
            a.errors[0].resource(),
            Some(&ResourceRef::new("ingress", "default", "web"))
        );
    }

    #[test]
    fn alias_at_apex_is_fine() {
        let zones = vec![zone("Z1", "example.com", false)];
        let alias = Endpoint::alias(
            name("example.com"),
            RecordType::A,
            crate::dns::endpoint::AliasTarget::new("lb.example.net", Some("ZLB".into()), true),
        )
        .unwrap();
        let a = assign(&zones, &DomainFilter::default(), vec![alias]);
        assert!(a.errors.is_empty());
        assert_eq!(a.by_zone["Z1"].len(), 1);
    }
}
