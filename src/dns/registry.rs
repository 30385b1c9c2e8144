//! external-dns's TXT ownership registry: record names and values, in both formats.
//!
//! Typed names put the lowercase record type before the first label (`a-app.example.com`); the old
//! untyped format used the bare name (`app.example.com`). A prefix goes before, and a suffix after,
//! the first label; either may contain `%{record_type}`, in which case the type is not also
//! prepended. These rules mirror external-dns's `AffixNameMapper` so that both read each other's
//! records.

use std::collections::BTreeMap;

use super::endpoint::{
    DnsName, NameError, Record, RecordType, ResourceRef, Routing, name_is_within,
};

const HERITAGE: &str = "external-dns";
const RECORD_TYPE_TEMPLATE: &str = "%{record_type}";
pub const OWNER_LABEL: &str = "owner";
pub const RESOURCE_LABEL: &str = "resource";

/// The order external-dns tries types in when reading names; the types only causeway writes
/// follow, so that names written by causeway read back.
const DECODE_ORDER: [RecordType; 10] = [
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

/// What a TXT record name says about the record it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedName {
    /// The owned record's name, with any wildcard replacement still in place.
    pub name: String,
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
        Ok(TxtRegistry {
            owner_id: owner_id.to_string(),
            prefix,
            suffix,
            wildcard_replacement,
        })
    }

    pub fn owner_id(&self) -> &str {
        &self.owner_id
    }

    fn type_in_affix(&self) -> bool {
        self.prefix.contains(RECORD_TYPE_TEMPLATE) || self.suffix.contains(RECORD_TYPE_TEMPLATE)
    }

    /// The name ownership lookups use for a record: a wildcard first label is replaced the same
    /// way the TXT name was built.
    pub fn lookup_name(&self, name: &DnsName) -> String {
        match (
            &self.wildcard_replacement,
            name.is_wildcard(),
            name.parent(),
        ) {
            (Some(replacement), true, Some(rest)) => format!("{replacement}.{rest}"),
            (Some(replacement), true, None) => replacement.clone(),
            _ => name.as_str().to_string(),
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
        let lower = record_type.map_or("", RecordType::as_lower);
        let fill = |affix: &str| affix.replace(RECORD_TYPE_TEMPLATE, lower);
        let (prefix, suffix) = (fill(&self.prefix), fill(&self.suffix));
        let mut first = name.first_label().to_string();
        if first == "*"
            && let Some(replacement) = &self.wildcard_replacement
        {
            first = replacement.clone();
        }
        if let Some(t) = record_type
            && !self.type_in_affix()
        {
            first = format!("{}-{first}", t.as_lower());
        }
        let txt = match name.parent() {
            Some(rest) => format!("{prefix}{first}{suffix}.{rest}"),
            None => format!("{prefix}{first}{suffix}"),
        };
        DnsName::parse_record_name(&txt).map_err(|error| RegistryError::TxtName {
            name: name.to_string(),
            error,
        })
    }

    /// Reads a TXT record name back into the owned record's name and type, exactly as
    /// external-dns does. Returns `None` when the name carries none of our affixes.
    pub fn decode_name(&self, txt_name: &DnsName) -> Option<DecodedName> {
        let name = txt_name.as_str();
        let (decoded, record_type) = if self.suffix.is_empty() {
            self.drop_affix(name)?
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
                Some(rest) => (format!("{stripped}.{rest}"), record_type),
                None => (stripped, record_type),
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

    fn drop_affix(&self, name: &str) -> Option<(String, Option<RecordType>)> {
        let mut prefix = self.prefix.clone();
        let mut suffix = self.suffix.clone();
        let prefix_mode = self.suffix.is_empty();
        if self.type_in_affix() {
            for t in DECODE_ORDER {
                let typed_prefix = prefix.replace(RECORD_TYPE_TEMPLATE, t.as_lower());
                let typed_suffix = suffix.replace(RECORD_TYPE_TEMPLATE, t.as_lower());
                if prefix_mode {
                    if let Some(rest) = name.strip_prefix(&typed_prefix) {
                        return Some((rest.to_string(), Some(t)));
                    }
                } else if let Some(rest) = name.strip_suffix(&typed_suffix) {
                    return Some((rest.to_string(), Some(t)));
                }
            }
            // Records written before the template was configured.
            prefix = prefix.replace(RECORD_TYPE_TEMPLATE, "");
            suffix = suffix.replace(RECORD_TYPE_TEMPLATE, "");
        }
        let rest = if prefix_mode {
            name.strip_prefix(&prefix)?
        } else {
            name.strip_suffix(&suffix)?
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
fn type_at_default_position(name: &str) -> (String, Option<RecordType>) {
    let head = name.split('-').next().unwrap_or_default();
    for t in DECODE_ORDER {
        if head == t.as_lower()
            && let Some(rest) = name.strip_prefix(&format!("{head}-"))
        {
            return (rest.to_string(), Some(t));
        }
    }
    (name.to_string(), None)
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
    let text = value.trim().trim_matches('"');
    let mut labels = OwnerLabels::default();
    let mut heritage = false;
    for token in text.split(',') {
        let mut parts = token.split('=');
        let (Some(key), Some(val), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if key == "heritage" {
            if val != HERITAGE {
                return Err(RegistryError::NotOwnershipValue);
            }
            heritage = true;
            continue;
        }
        if !key.starts_with(HERITAGE) {
            continue;
        }
        let label = key.strip_prefix("external-dns/").unwrap_or(key);
        match label {
            OWNER_LABEL => labels.owner = val.to_string(),
            RESOURCE_LABEL => labels.resource = Some(val.to_string()),
            _ => {
                labels.extra.insert(label.to_string(), val.to_string());
            }
        }
    }
    if heritage {
        Ok(labels)
    } else {
        Err(RegistryError::NotOwnershipValue)
    }
}

/// Decodes the first value of a TXT record set that is an ownership value.
pub fn decode_record(record: &Record) -> Option<OwnerLabels> {
    if record.record_type != RecordType::Txt {
        return None;
    }
    record.values.iter().find_map(|v| decode_value(v).ok())
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

    fn decoded(name: &str, t: Option<RecordType>) -> Option<DecodedName> {
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
