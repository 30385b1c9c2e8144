//! external-dns's TXT ownership registry: record names and values, in both formats.
//!
//! Typed names put the lowercase record type before the first label (`a-app.example.com`); the old
//! untyped format used the bare name (`app.example.com`). A prefix goes before, and a suffix after,
//! the first label; either may contain `%{record_type}`, in which case the type is not also
//! prepended. These rules mirror external-dns's `AffixNameMapper` so that both read each other's
//! records.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::endpoint::{
    DnsName, NameError, Record, RecordType, ResourceRef, Routing, name_is_within,
};

const HERITAGE: &str = "external-dns";
const RECORD_TYPE_TEMPLATE: &str = "%{record_type}";
pub const OWNER_LABEL: &str = "owner";
pub const RESOURCE_LABEL: &str = "resource";

/// The order external-dns tries types in when reading names ([`RecordType::ALL`] keeps it);
/// the types only causeway writes follow, so that names written by causeway read back.
const DECODE_ORDER: [RecordType; 10] = RecordType::ALL;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("the TXT owner id must not be empty")]
    EmptyOwnerId,
    #[error(
        "TXT owner id {owner:?} contains ',', '=', '\"' or whitespace, which cannot be read back"
    )]
    InvalidOwnerId { owner: String },
    #[error("a TXT prefix and a TXT suffix cannot both be set")]
    PrefixAndSuffix,
    #[error("TXT {which} {value:?} may only contain a-z, 0-9, '-', '_', '.' and %{{record_type}}")]
    InvalidAffix { which: &'static str, value: String },
    #[error("ownership record name for {name} is invalid: {error}")]
    TxtName { name: String, error: NameError },
    #[error("TXT value is not an external-dns ownership record")]
    NotOwnershipValue,
    #[error("label {key:?}={value:?} contains ',', '=' or '\"' and would not read back")]
    UnencodableLabel { key: String, value: String },
}

/// The labels stored in an ownership TXT value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerLabels {
    /// Empty when the record names no owner.
    pub owner: String,
    /// `kind/namespace/name` of the object that asked for the record.
    pub resource: Option<String>,
    pub extra: BTreeMap<String, String>,
}

impl OwnerLabels {
    pub fn new(owner: &str, resource: Option<&ResourceRef>) -> Self {
        OwnerLabels {
            owner: owner.to_string(),
            resource: resource.map(ToString::to_string),
            extra: BTreeMap::new(),
        }
    }
}

/// The labels of an ownership TXT value, borrowed from it: reading a zone's registry then
/// allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelsRef<'a> {
    pub owner: &'a str,
    pub resource: Option<&'a str>,
    pub extra: Vec<(&'a str, &'a str)>,
}

/// What a TXT record name says about the record it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedName<'a> {
    /// The owned record's name, with any wildcard replacement still in place.
    pub name: Cow<'a, str>,
    /// `None` for the old untyped format.
    pub record_type: Option<RecordType>,
}

/// Registry settings: owner id, affixes and wildcard replacement (`--txt-owner-id`,
/// `--txt-prefix`, `--txt-suffix`, `--txt-wildcard-replacement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRegistry {
    owner_id: String,
    prefix: String,
    suffix: String,
    wildcard_replacement: Option<String>,
    /// Prefix and suffix with `%{record_type}` filled in, per type in `RecordType::ALL` order.
    filled: Vec<(String, String)>,
}

impl TxtRegistry {
    pub fn new(
        owner_id: &str,
        prefix: &str,
        suffix: &str,
        wildcard_replacement: Option<&str>,
    ) -> Result<Self, RegistryError> {
        if owner_id.is_empty() {
            return Err(RegistryError::EmptyOwnerId);
        }
        if !encodable(owner_id) || owner_id.chars().any(char::is_whitespace) {
            return Err(RegistryError::InvalidOwnerId {
                owner: owner_id.to_string(),
            });
        }
        if !prefix.is_empty() && !suffix.is_empty() {
            return Err(RegistryError::PrefixAndSuffix);
        }
        let prefix = prefix.to_ascii_lowercase();
        let suffix = suffix.to_ascii_lowercase();
        for (which, value) in [("prefix", &prefix), ("suffix", &suffix)] {
            let bare = value.replace(RECORD_TYPE_TEMPLATE, "");
            let ok = bare
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !ok {
                return Err(RegistryError::InvalidAffix {
                    which,
                    value: value.clone(),
                });
            }
        }
        let wildcard_replacement = wildcard_replacement
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase);
        let filled = RecordType::ALL
            .iter()
            .map(|t| {
                (
                    prefix.replace(RECORD_TYPE_TEMPLATE, t.as_lower()),
                    suffix.replace(RECORD_TYPE_TEMPLATE, t.as_lower()),
                )
            })
            .collect();
        Ok(TxtRegistry {
            owner_id: owner_id.to_string(),
            prefix,
            suffix,
            wildcard_replacement,
            filled,
        })
    }

    fn filled(&self, record_type: RecordType) -> (&str, &str) {
        RecordType::ALL
            .iter()
            .position(|t| *t == record_type)
            .and_then(|i| self.filled.get(i))
            .map_or(("", ""), |(p, s)| (p.as_str(), s.as_str()))
    }

    /// The first label as ownership names spell it.
    fn first_label<'n>(&'n self, name: &'n DnsName) -> &'n str {
        match &self.wildcard_replacement {
            Some(replacement) if name.is_wildcard() => replacement,
            _ => name.first_label(),
        }
    }

    /// True when `txt_name` is exactly `txt_name(name, record_type)`, checked without building
    /// it.
    pub fn is_txt_name_for(&self, txt_name: &str, name: &DnsName, record_type: RecordType) -> bool {
        let (prefix, suffix) = self.filled(record_type);
        let check = || -> Option<bool> {
            let mut rest = txt_name.strip_prefix(prefix)?;
            if !self.type_in_affix() {
                rest = rest
                    .strip_prefix(record_type.as_lower())?
                    .strip_prefix('-')?;
            }
            rest = rest
                .strip_prefix(self.first_label(name))?
                .strip_prefix(suffix)?;
            Some(match name.parent() {
                Some(parent) => rest.strip_prefix('.') == Some(parent),
                None => rest.is_empty(),
            })
        };
        check().unwrap_or(false)
    }

    pub fn owner_id(&self) -> &str {
        &self.owner_id
    }

    fn type_in_affix(&self) -> bool {
        self.prefix.contains(RECORD_TYPE_TEMPLATE) || self.suffix.contains(RECORD_TYPE_TEMPLATE)
    }

    /// The name ownership lookups use for a record: a wildcard first label is replaced the same
    /// way the TXT name was built.
    pub fn lookup_name<'n>(&self, name: &'n DnsName) -> Cow<'n, str> {
        let Some(replacement) = &self.wildcard_replacement else {
            return Cow::Borrowed(name.as_str());
        };
        match (name.is_wildcard(), name.parent()) {
            (true, Some(rest)) => Cow::Owned(format!("{replacement}.{rest}")),
            (true, None) => Cow::Owned(replacement.clone()),
            (false, _) => Cow::Borrowed(name.as_str()),
        }
    }

    /// The typed ownership record name for `name`, e.g. `a-app.example.com`.
    pub fn txt_name(
        &self,
        name: &DnsName,
        record_type: RecordType,
    ) -> Result<DnsName, RegistryError> {
        self.affixed(name, Some(record_type))
    }

    /// The old untyped ownership record name.
    pub fn legacy_txt_name(&self, name: &DnsName) -> Result<DnsName, RegistryError> {
        self.affixed(name, None)
    }

    fn affixed(
        &self,
        name: &DnsName,
        record_type: Option<RecordType>,
    ) -> Result<DnsName, RegistryError> {
        let untyped;
        let (prefix, suffix) = match record_type {
            Some(t) => self.filled(t),
            None => {
                untyped = (
                    self.prefix.replace(RECORD_TYPE_TEMPLATE, ""),
                    self.suffix.replace(RECORD_TYPE_TEMPLATE, ""),
                );
                (untyped.0.as_str(), untyped.1.as_str())
            }
        };
        let type_dash = match record_type {
            Some(t) if !self.type_in_affix() => format!("{}-", t.as_lower()),
            _ => String::new(),
        };
        let first = self.first_label(name);
        let txt = match name.parent() {
            Some(rest) => format!("{prefix}{type_dash}{first}{suffix}.{rest}"),
            None => format!("{prefix}{type_dash}{first}{suffix}"),
        };
        DnsName::parse_record_name(&txt).map_err(|error| RegistryError::TxtName {
            name: name.to_string(),
            error,
        })
    }

    /// Reads a TXT record name back into the owned record's name and type, exactly as
    /// external-dns does. Returns `None` when the name carries none of our affixes.
    pub fn decode_name<'n>(&self, txt_name: &'n DnsName) -> Option<DecodedName<'n>> {
        let name = txt_name.as_str();
        let (decoded, record_type): (Cow<'n, str>, _) = if self.suffix.is_empty() {
            let (stripped, record_type) = self.drop_affix(name)?;
            (Cow::Borrowed(stripped), record_type)
        } else {
            // The suffix sits inside the first label(s): split off as many labels as it has dots.
            let dots = self.suffix.matches('.').count();
            let parts: Vec<&str> = name.splitn(dots + 2, '.').collect();
            if parts.len() <= dots {
                return None;
            }
            let head_len = (dots + 1).min(parts.len());
            let head = parts[..head_len].join(".");
            let (stripped, record_type) = self.drop_affix(&head)?;
            match parts.get(dots + 1) {
                Some(rest) => (Cow::Owned(format!("{stripped}.{rest}")), record_type),
                None => (Cow::Owned(stripped.to_string()), record_type),
            }
        };
        if decoded.is_empty() || decoded.starts_with('.') || decoded.ends_with('.') {
            return None;
        }
        Some(DecodedName {
            name: decoded,
            record_type,
        })
    }

    fn drop_affix<'n>(&self, name: &'n str) -> Option<(&'n str, Option<RecordType>)> {
        let prefix_mode = self.suffix.is_empty();
        if !self.type_in_affix() {
            let rest = if prefix_mode {
                name.strip_prefix(self.prefix.as_str())?
            } else {
                name.strip_suffix(self.suffix.as_str())?
            };
            return Some(type_at_default_position(rest));
        }
        for t in DECODE_ORDER {
            let (typed_prefix, typed_suffix) = self.filled(t);
            let stripped = if prefix_mode {
                name.strip_prefix(typed_prefix)
            } else {
                name.strip_suffix(typed_suffix)
            };
            if let Some(rest) = stripped {
                return Some((rest, Some(t)));
            }
        }
        // Records written before the template was configured.
        let rest = if prefix_mode {
            name.strip_prefix(self.prefix.replace(RECORD_TYPE_TEMPLATE, "").as_str())?
        } else {
            name.strip_suffix(self.suffix.replace(RECORD_TYPE_TEMPLATE, "").as_str())?
        };
        Some(type_at_default_position(rest))
    }

    /// The ownership TXT record for `record`: it copies the record's set identifier and routing
    /// policy, as external-dns does, and takes the default TTL.
    pub fn ownership_record(
        &self,
        record: &Record,
        labels: &OwnerLabels,
        ttl: u32,
    ) -> Result<Record, RegistryError> {
        let name = self.txt_name(&record.name, record.record_type)?;
        Ok(Record {
            name,
            record_type: RecordType::Txt,
            set_identifier: record.set_identifier.clone(),
            ttl: Some(ttl),
            values: [encode_value(labels)?].into_iter().collect(),
            alias: None,
            routing: Routing {
                policy: record.routing.policy.clone(),
                health_check_id: record.routing.health_check_id.clone(),
            },
        })
    }
}

/// external-dns's `extractRecordTypeDefaultPosition`: a leading `<type>-` names the type.
fn type_at_default_position(name: &str) -> (&str, Option<RecordType>) {
    if let Some((head, rest)) = name.split_once('-') {
        for t in DECODE_ORDER {
            if head == t.as_lower() {
                return (rest, Some(t));
            }
        }
    }
    (name, None)
}

fn encodable(value: &str) -> bool {
    !value.contains([',', '=', '"'])
}

/// Serialises labels exactly as external-dns does: quoted, heritage first, then
/// `external-dns/<key>=<value>` sorted by key.
pub fn encode_value(labels: &OwnerLabels) -> Result<String, RegistryError> {
    let mut all: BTreeMap<&str, &str> = labels
        .extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    all.insert(OWNER_LABEL, &labels.owner);
    if let Some(resource) = &labels.resource {
        all.insert(RESOURCE_LABEL, resource);
    }
    let mut out = format!("\"heritage={HERITAGE}");
    for (key, value) in all {
        if !encodable(key) || !encodable(value) {
            return Err(RegistryError::UnencodableLabel {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
        out.push_str(&format!(",{HERITAGE}/{key}={value}"));
    }
    out.push('"');
    Ok(out)
}

/// Parses an ownership TXT value. Anything without `heritage=external-dns` is not ours to read
/// (external-dns's encrypted values included), so the record it sits on stays foreign.
pub fn decode_value(value: &str) -> Result<OwnerLabels, RegistryError> {
    let labels = decode_value_ref(value).ok_or(RegistryError::NotOwnershipValue)?;
    Ok(OwnerLabels {
        owner: labels.owner.to_string(),
        resource: labels.resource.map(str::to_string),
        extra: labels
            .extra
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

/// `decode_value` without copying; a repeated label keeps its last value, as in external-dns's
/// map.
pub(crate) fn decode_value_ref(value: &str) -> Option<LabelsRef<'_>> {
    let text = value.trim().trim_matches('"');
    // Quick reject before tokenising: most TXT values in a zone are not ownership records.
    if !text.contains("heritage=") {
        return None;
    }
    let mut labels = LabelsRef {
        owner: "",
        resource: None,
        extra: Vec::new(),
    };
    let mut heritage = false;
    // Byte scans for ',' and '=' (ASCII, so every cut is a char boundary): splitting on char
    // patterns costs several times more on values this short.
    let mut rest = Some(text);
    while let Some(remaining) = rest {
        let (token, tail) = match remaining.bytes().position(|b| b == b',') {
            Some(i) => (&remaining[..i], Some(&remaining[i + 1..])),
            None => (remaining, None),
        };
        rest = tail;
        // A token counts only as exactly "key=value", as in external-dns.
        let Some(eq) = token.bytes().position(|b| b == b'=') else {
            continue;
        };
        let (key, val) = (&token[..eq], &token[eq + 1..]);
        if val.bytes().any(|b| b == b'=') {
            continue;
        }
        if key == "heritage" {
            if val != HERITAGE {
                return None;
            }
            heritage = true;
            continue;
        }
        if !key.starts_with(HERITAGE) {
            continue;
        }
        let label = key.strip_prefix("external-dns/").unwrap_or(key);
        match label {
            OWNER_LABEL => labels.owner = val,
            RESOURCE_LABEL => labels.resource = Some(val),
            _ => {
                labels.extra.retain(|(k, _)| *k != label);
                labels.extra.push((label, val));
            }
        }
    }
    heritage.then_some(labels)
}

/// Decodes the first value of a TXT record set that is an ownership value.
pub fn decode_record(record: &Record) -> Option<OwnerLabels> {
    if record.record_type != RecordType::Txt {
        return None;
    }
    record.values.iter().find_map(|v| decode_value(v).ok())
}

pub(crate) fn decode_record_ref(record: &Record) -> Option<LabelsRef<'_>> {
    if record.record_type != RecordType::Txt {
        return None;
    }
    record.values.iter().find_map(|v| decode_value_ref(v))
}

/// True when `txt_name` stays inside `zone`; an apex record without a dotted prefix gets an
/// ownership name outside its zone, which Route 53 rejects.
pub fn within_zone(txt_name: &DnsName, zone: &DnsName) -> bool {
    name_is_within(txt_name.as_str(), zone.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::endpoint::RoutingPolicy;
    use proptest::prelude::*;

    fn name(s: &str) -> DnsName {
        DnsName::parse(s).unwrap()
    }

    fn registry(prefix: &str, suffix: &str) -> TxtRegistry {
        TxtRegistry::new("cluster-1", prefix, suffix, None).unwrap()
    }

    fn decoded(name: &str, t: Option<RecordType>) -> Option<DecodedName<'_>> {
        Some(DecodedName {
            name: name.into(),
            record_type: t,
        })
    }

    #[test]
    fn typed_names_without_affixes() {
        let r = registry("", "");
        let app = name("app.example.com");
        assert_eq!(
            r.txt_name(&app, RecordType::A).unwrap().as_str(),
            "a-app.example.com"
        );
        assert_eq!(
            r.txt_name(&app, RecordType::Aaaa).unwrap().as_str(),
            "aaaa-app.example.com"
        );
        assert_eq!(
            r.txt_name(&app, RecordType::Cname).unwrap().as_str(),
            "cname-app.example.com"
        );
        assert_eq!(r.legacy_txt_name(&app).unwrap().as_str(), "app.example.com");
        assert_eq!(
            r.decode_name(&name("a-app.example.com")),
            decoded("app.example.com", Some(RecordType::A))
        );
        assert_eq!(
            r.decode_name(&name("app.example.com")),
            decoded("app.example.com", None)
        );
    }

    #[test]
    fn prefixes_and_suffixes() {
        let r = registry("_edns.", "");
        let app = name("app.example.com");
        assert_eq!(
            r.txt_name(&app, RecordType::A).unwrap().as_str(),
            "_edns.a-app.example.com"
        );
        assert_eq!(
            r.decode_name(&name("_edns.a-app.example.com")),
            decoded("app.example.com", Some(RecordType::A))
        );
        assert_eq!(r.decode_name(&name("a-app.example.com")), None);

        let r = registry("", "-own");
        assert_eq!(
            r.txt_name(&app, RecordType::Cname).unwrap().as_str(),
            "cname-app-own.example.com"
        );
        assert_eq!(
            r.decode_name(&name("cname-app-own.example.com")),
            decoded("app.example.com", Some(RecordType::Cname))
        );

        let r = registry("", ".own");
        assert_eq!(
            r.txt_name(&app, RecordType::A).unwrap().as_str(),
            "a-app.own.example.com"
        );
        assert_eq!(
            r.decode_name(&name("a-app.own.example.com")),
            decoded("app.example.com", Some(RecordType::A))
        );
    }

    #[test]
    fn record_type_template() {
        let r = registry("%{record_type}.own.", "");
        let app = name("app.example.com");
        assert_eq!(
            r.txt_name(&app, RecordType::Aaaa).unwrap().as_str(),
            "aaaa.own.app.example.com"
        );
        assert_eq!(
            r.decode_name(&name("aaaa.own.app.example.com")),
            decoded("app.example.com", Some(RecordType::Aaaa))
        );
        // The template replaces the default "<type>-" position, and names without it are not
        // ownership names.
        assert_eq!(r.decode_name(&name("other.app.example.com")), None);

        let r = registry("", "-%{record_type}");
        assert_eq!(
            r.txt_name(&app, RecordType::Cname).unwrap().as_str(),
            "app-cname.example.com"
        );
        assert_eq!(
            r.decode_name(&name("app-cname.example.com")),
            decoded("app.example.com", Some(RecordType::Cname))
        );
    }

    #[test]
    fn apex_names_leave_the_zone_unless_the_prefix_ends_in_a_dot() {
        let zone = name("example.com");
        let plain = registry("", "");
        let txt = plain.txt_name(&zone, RecordType::A).unwrap();
        assert_eq!(txt.as_str(), "a-example.com");
        assert!(!within_zone(&txt, &zone));

        let dotted = registry("_own-%{record_type}.", "");
        let txt = dotted.txt_name(&zone, RecordType::A).unwrap();
        assert_eq!(txt.as_str(), "_own-a.example.com");
        assert!(within_zone(&txt, &zone));
        assert_eq!(
            dotted.decode_name(&txt),
            decoded("example.com", Some(RecordType::A))
        );
    }

    #[test]
    fn txt_names_are_recognised_without_building_them() {
        let app = name("app.example.com");
        let star = name("*.example.com");
        let apex = name("example.com");
        for r in [
            registry("", ""),
            registry("_edns.", ""),
            registry("%{record_type}.own.", ""),
            registry("", "-own"),
            registry("", ".own"),
            registry("", "-%{record_type}"),
            TxtRegistry::new("cluster-1", "", "", Some("wildcard")).unwrap(),
        ] {
            for n in [&app, &star, &apex] {
                for t in [RecordType::A, RecordType::Aaaa, RecordType::Cname] {
                    let Ok(txt) = r.txt_name(n, t) else { continue };
                    assert!(r.is_txt_name_for(txt.as_str(), n, t), "{txt} for {n} {t}");
                    assert!(!r.is_txt_name_for(txt.as_str(), n, RecordType::Txt));
                    assert!(!r.is_txt_name_for(n.as_str(), n, t));
                }
            }
        }
    }

    #[test]
    fn wildcards() {
        let plain = registry("", "");
        let star = name("*.example.com");
        assert_eq!(
            plain.txt_name(&star, RecordType::A).unwrap().as_str(),
            "a-*.example.com"
        );
        assert_eq!(plain.lookup_name(&star), "*.example.com");

        let replaced = TxtRegistry::new("cluster-1", "", "", Some("wildcard")).unwrap();
        let txt = replaced.txt_name(&star, RecordType::A).unwrap();
        assert_eq!(txt.as_str(), "a-wildcard.example.com");
        assert_eq!(replaced.lookup_name(&star), "wildcard.example.com");
        assert_eq!(
            replaced.decode_name(&txt),
            decoded("wildcard.example.com", Some(RecordType::A))
        );
    }

    #[test]
    fn long_first_labels_overflow_the_label_limit() {
        let r = registry("", "");
        let long = name(&format!("{}.example.com", "x".repeat(62)));
        assert!(matches!(
            r.txt_name(&long, RecordType::A),
            Err(RegistryError::TxtName {
                error: NameError::LabelTooLong { len: 64, .. },
                ..
            })
        ));
    }

    #[test]
    fn value_is_exactly_external_dns_format() {
        let labels = OwnerLabels::new(
            "cluster-1",
            Some(&ResourceRef::new("ingress", "default", "web")),
        );
        let value = encode_value(&labels).unwrap();
        assert_eq!(
            value,
            "\"heritage=external-dns,external-dns/owner=cluster-1,external-dns/resource=ingress/default/web\""
        );
        assert_eq!(decode_value(&value).unwrap(), labels);

        let mut with_extra = labels.clone();
        with_extra.extra.insert("app".into(), "shop".into());
        assert_eq!(
            encode_value(&with_extra).unwrap(),
            "\"heritage=external-dns,external-dns/app=shop,external-dns/owner=cluster-1,external-dns/resource=ingress/default/web\""
        );
    }

    #[test]
    fn values_from_other_tools_are_not_ownership() {
        assert_eq!(
            decode_value("\"v=spf1 include:_spf.example.com ~all\""),
            Err(RegistryError::NotOwnershipValue)
        );
        assert_eq!(
            decode_value("\"heritage=someone-else,external-dns/owner=x\""),
            Err(RegistryError::NotOwnershipValue)
        );
        let no_owner = decode_value("heritage=external-dns").unwrap();
        assert_eq!(no_owner.owner, "");
    }

    #[test]
    fn ownership_record_copies_set_identifier_and_routing() {
        let r = registry("", "");
        let record = Record {
            name: name("app.example.com"),
            record_type: RecordType::A,
            set_identifier: Some("blue".into()),
            ttl: Some(60),
            values: ["10.0.0.1".to_string()].into_iter().collect(),
            alias: None,
            routing: Routing {
                policy: RoutingPolicy::Weighted { weight: 20 },
                health_check_id: Some("hc".into()),
            },
        };
        let txt = r
            .ownership_record(&record, &OwnerLabels::new("cluster-1", None), 300)
            .unwrap();
        assert_eq!(txt.name.as_str(), "a-app.example.com");
        assert_eq!(txt.set_identifier.as_deref(), Some("blue"));
        assert_eq!(txt.routing, record.routing);
        assert_eq!(txt.ttl, Some(300));
        assert_eq!(decode_record(&txt).unwrap().owner, "cluster-1");
    }

    #[test]
    fn settings_are_validated() {
        assert_eq!(
            TxtRegistry::new("", "", "", None),
            Err(RegistryError::EmptyOwnerId)
        );
        assert!(matches!(
            TxtRegistry::new("a,b", "", "", None),
            Err(RegistryError::InvalidOwnerId { .. })
        ));
        assert_eq!(
            TxtRegistry::new("o", "p-", "-s", None),
            Err(RegistryError::PrefixAndSuffix)
        );
        assert!(matches!(
            TxtRegistry::new("o", "bad prefix", "", None),
            Err(RegistryError::InvalidAffix { .. })
        ));
    }

    /// external-dns's reading, spelled out with plain splits.
    fn plain_reading(value: &str) -> Option<OwnerLabels> {
        let mut labels = OwnerLabels::default();
        let mut heritage = false;
        for token in value.trim().trim_matches('"').split(',') {
            let parts: Vec<&str> = token.split('=').collect();
            let [key, val] = parts[..] else { continue };
            if key == "heritage" {
                if val != HERITAGE {
                    return None;
                }
                heritage = true;
            } else if key.starts_with(HERITAGE) {
                match key.strip_prefix("external-dns/").unwrap_or(key) {
                    OWNER_LABEL => labels.owner = val.to_string(),
                    RESOURCE_LABEL => labels.resource = Some(val.to_string()),
                    other => {
                        labels.extra.insert(other.to_string(), val.to_string());
                    }
                }
            }
        }
        heritage.then_some(labels)
    }

    fn affixes() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            Just((String::new(), String::new())),
            Just(("_edns.".to_string(), String::new())),
            Just(("pre-".to_string(), String::new())),
            Just(("%{record_type}.own.".to_string(), String::new())),
            Just(("x-%{record_type}-".to_string(), String::new())),
            Just((String::new(), "-sfx".to_string())),
            Just((String::new(), ".sfx".to_string())),
            Just((String::new(), "-%{record_type}".to_string())),
        ]
    }

    /// First labels that cannot be mistaken for a typed name (`a-...`), which is ambiguous in
    /// external-dns's untyped format too.
    fn first_label() -> impl Strategy<Value = String> {
        "[b-z0-9][a-z0-9]{0,12}".prop_filter("not a type name", |l| {
            !DECODE_ORDER.iter().any(|t| l == t.as_lower())
        })
    }

    fn record_type() -> impl Strategy<Value = RecordType> {
        (0..DECODE_ORDER.len()).prop_map(|i| DECODE_ORDER[i])
    }

    proptest! {
        #[test]
        fn typed_names_round_trip(
            (prefix, suffix) in affixes(),
            first in first_label(),
            rest in "[a-z]{1,8}(\\.[a-z]{2,5}){0,2}",
            t in record_type(),
        ) {
            let r = registry(&prefix, &suffix);
            let owned = name(&format!("{first}.{rest}"));
            let txt = r.txt_name(&owned, t).unwrap();
            prop_assert_eq!(r.decode_name(&txt), decoded(owned.as_str(), Some(t)));
        }

        #[test]
        fn legacy_names_round_trip(
            (prefix, suffix) in affixes().prop_filter("template needs a typed name", |(p, s)| {
                !p.starts_with(RECORD_TYPE_TEMPLATE) && !s.ends_with(RECORD_TYPE_TEMPLATE)
            }),
            first in first_label(),
            rest in "[a-z]{1,8}(\\.[a-z]{2,5}){0,2}",
        ) {
            let r = registry(&prefix, &suffix);
            let owned = name(&format!("{first}.{rest}"));
            let txt = r.legacy_txt_name(&owned).unwrap();
            prop_assert_eq!(r.decode_name(&txt), decoded(owned.as_str(), None));
        }

        #[test]
        fn values_round_trip(
            owner in "[a-zA-Z0-9._:/-]{1,30}",
            resource in proptest::option::of("(ingress|service|crd)/[a-z0-9-]{1,10}/[a-z0-9.-]{1,20}"),
            extra in proptest::collection::btree_map("[a-z][a-z0-9-]{0,10}", "[a-zA-Z0-9._-]{0,10}", 0..3),
        ) {
            let mut labels = OwnerLabels { owner, resource, extra };
            labels.extra.remove(OWNER_LABEL);
            labels.extra.remove(RESOURCE_LABEL);
            let value = encode_value(&labels).unwrap();
            prop_assert!(value.starts_with("\"heritage=external-dns,"));
            prop_assert_eq!(decode_value(&value), Ok(labels));
        }

        #[test]
        fn fast_decoder_matches_the_plain_reading(
            tokens in proptest::collection::vec(
                prop_oneof![
                    Just("heritage=external-dns".to_string()),
                    Just("heritage=other".to_string()),
                    Just("external-dns/owner=c1".to_string()),
                    Just("external-dns/owner=c2".to_string()),
                    Just("external-dns/resource=ingress/a/b".to_string()),
                    Just("external-dns/team=x".to_string()),
                    Just("external-dns/team=y".to_string()),
                    Just("external-dnsx=1".to_string()),
                    Just("a=b=c".to_string()),
                    Just("=".to_string()),
                    Just(String::new()),
                    "[a-z=/\"-]{0,12}",
                ],
                0..8,
            ),
            quoted in any::<bool>(),
        ) {
            let joined = tokens.join(",");
            let value = if quoted { format!("\"{joined}\"") } else { joined };
            prop_assert_eq!(decode_value(&value).ok(), plain_reading(&value));
        }

        #[test]
        fn decoding_never_panics(value in ".{0,80}", txt in "[a-z0-9*._-]{1,40}") {
            let _ = decode_value(&value);
            if let Ok(n) = DnsName::parse_record_name(&txt) {
                for (p, s) in [("", ""), ("_x.", ""), ("", ".y"), ("", "-%{record_type}"), ("%{record_type}-", "")] {
                    let _ = registry(p, s).decode_name(&n);
                }
            }
        }
    }
}
