//! `mutual-authentication`: mutual TLS of HTTPS listeners, as aws-load-balancer-controller
//! reads it: a JSON list of `{port, mode, trustStore, ignoreClientCertificateExpiry,
//! advertiseTrustStoreCaNames}` (keys matched ignoring case, as Go's `encoding/json` does).
//! `mode` is `off`, `passthrough` or `verify`; only `verify` takes a trust store (an ARN, or a
//! name resolved by discovery) and the two flags. A port that is not an HTTPS listener is
//! ignored, as the peer ignores it; a listener the list does not name is left as AWS has it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::actions::from_json;
use super::{Annotations, Problem, reason};
use crate::alb::model::{MutualAuth, MutualAuthMode};

const KEY: &str = "mutual-authentication";

const KEYS: &[&str] = &[
    "port",
    "mode",
    "trustStore",
    "ignoreClientCertificateExpiry",
    "advertiseTrustStoreCaNames",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    port: i64,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    trust_store: Option<String>,
    #[serde(default)]
    ignore_client_certificate_expiry: Option<bool>,
    #[serde(default)]
    advertise_trust_store_ca_names: Option<String>,
}

/// The trust store names (not ARNs) the annotation gives: what discovery looks up.
pub fn named_trust_stores(annotations: &BTreeMap<String, String>) -> BTreeSet<String> {
    entries(annotations)
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.trust_store)
        .filter(|t| !t.is_empty() && !t.starts_with("arn:"))
        .collect()
}

fn entries(annotations: &BTreeMap<String, String>) -> Result<Option<Vec<Entry>>, Problem> {
    let a = Annotations::alb(annotations);
    let Some(raw) = a.get(KEY) else {
        return Ok(None);
    };
    let list: Vec<Entry> = from_json(raw, KEYS).map_err(|e| a.problem(KEY, e))?;
    if list.is_empty() {
        return Err(a.problem(KEY, "the list is empty"));
    }
    Ok(Some(list))
}

/// Mutual TLS by listener port. `trust_stores` maps names to ARNs (`None`: not read, a name is
/// kept as written, as `causeway plan` without AWS access shows it).
pub fn mutual_authentication(
    annotations: &BTreeMap<String, String>,
    trust_stores: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<i32, MutualAuth>, Problem> {
    let a = Annotations::alb(annotations);
    let Some(list) = entries(annotations)? else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for e in list {
        let port = i32::try_from(e.port)
            .ok()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| a.problem(KEY, format!("port {} is not within 1..65535", e.port)))?;
        let mode = match MutualAuthMode::parse(&e.mode) {
            Some(m) => m,
            None if e.mode.is_empty() => {
                return Err(a.problem(KEY, format!("port {port}: mode is required")));
            }
            None => {
                return Err(a.problem(
                    KEY,
                    format!(
                        "port {port}: mode {:?} is not off, passthrough or verify",
                        e.mode
                    ),
                ));
            }
        };
        let trust_store = e.trust_store.filter(|t| !t.is_empty());
        let verify = mode == MutualAuthMode::Verify;
        if !verify {
            let extra = [
                (trust_store.is_some(), "trustStore"),
                (
                    e.ignore_client_certificate_expiry.is_some(),
                    "ignoreClientCertificateExpiry",
                ),
                (
                    e.advertise_trust_store_ca_names.is_some(),
                    "advertiseTrustStoreCaNames",
                ),
            ];
            if let Some((_, field)) = extra.iter().find(|(set, _)| *set) {
                return Err(a.problem(
                    KEY,
                    format!("port {port}: mode {} takes no {field}", mode.as_str()),
                ));
            }
        }
        let advertise = match e.advertise_trust_store_ca_names.as_deref() {
            None | Some("off") => false,
            Some("on") => true,
            Some(v) => {
                return Err(a.problem(
                    KEY,
                    format!(
                        "port {port}: advertiseTrustStoreCaNames is \"on\" or \"off\", not {v:?}"
                    ),
                ));
            }
        };
        let trust_store = match (verify, trust_store) {
            (false, _) => None,
            (true, None) => {
                return Err(a.problem(KEY, format!("port {port}: mode verify needs a trustStore")));
            }
            (true, Some(t)) if t.starts_with("arn:") => Some(t),
            (true, Some(name)) => Some(match trust_stores {
                None => name,
                Some(found) => found.get(&name).cloned().ok_or_else(|| {
                    Problem::new(
                        reason::TRUST_STORE_NOT_FOUND,
                        format!(
                            "annotation {}{KEY}: port {port}: trust store {name:?} does not exist",
                            a.1
                        ),
                    )
                })?,
            }),
        };
        let m = MutualAuth {
            mode,
            trust_store,
            ignore_client_certificate_expiry: verify
                && e.ignore_client_certificate_expiry.unwrap_or(false),
            advertise_trust_store_ca_names: verify && advertise,
        };
        // A port given twice: the later entry wins, as in the peer's map.
        out.insert(port, m);
    }
    Ok(out)
}
