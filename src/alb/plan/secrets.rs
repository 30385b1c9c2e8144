//! OIDC client secrets: ELBv2 never returns one, so the planner cannot see that a Secret was
//! rotated. The status records the `resourceVersion` of each Secret as it was last sent; a
//! Secret whose version differs has every rule (and listener default action) that
//! authenticates with it modified once, with the secret read now. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::Step;
use crate::alb::model::*;
use crate::alb::observed::Observed;

/// `namespace/name`, the key of a Secret in the status.
fn key(r: &ClientSecretRef) -> String {
    format!("{}/{}", r.namespace, r.name)
}

fn secret_of(action: &Action) -> Option<&ClientSecretRef> {
    match action {
        Action::Authenticated { first, .. } => match first.as_ref() {
            Authenticate::Oidc(o) => Some(&o.secret),
            _ => None,
        },
        _ => None,
    }
}

/// Every Secret the model's actions authenticate with.
fn refs(model: &GroupModel) -> Vec<&ClientSecretRef> {
    let mut out = Vec::new();
    for l in model.load_balancers.iter().flat_map(|lb| &lb.listeners) {
        out.extend(secret_of(&l.default_action));
        out.extend(l.rules.iter().filter_map(|r| secret_of(&r.action)));
    }
    out
}

/// What the status records once the model's rules are in place: the version of each Secret
/// they use.
pub fn client_secret_versions(
    model: &GroupModel,
    secrets: &ClientSecrets,
) -> BTreeMap<String, String> {
    refs(model)
        .into_iter()
        .filter_map(|r| Some((key(r), secrets.version(r)?.to_owned())))
        .collect()
}

/// The Secrets whose version is not the one last sent (`previous`); one never recorded is
/// sent too (a rule that switched Secrets looks the same to ELBv2).
pub fn rotated(
    model: &GroupModel,
    secrets: &ClientSecrets,
    previous: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    refs(model)
        .into_iter()
        .filter(|r| {
            secrets
                .version(r)
                .is_some_and(|v| previous.get(&key(r)).map(String::as_str) != Some(v))
        })
        .map(key)
        .collect()
}

/// Adds a ModifyRule (or ModifyListener, for a default action) for each existing rule of ours
/// that authenticates with a `rotated` Secret and that `steps` do not already modify or create.
pub fn resend_rotated(
    desired: &GroupModel,
    observed: &Observed,
    cluster: &str,
    rotated: &BTreeSet<String>,
    steps: &mut Vec<Step>,
) {
    if rotated.is_empty() {
        return;
    }
    let mut observed = observed.clone();
    observed.retain_owned(cluster, desired.kind, &desired.stack);
    let uses_rotated = |a: &Action| secret_of(a).is_some_and(|r| rotated.contains(&key(r)));
    let mut extra = Vec::new();
    for lb in &desired.load_balancers {
        let Some(o) = super::existing(lb, &observed) else {
            continue;
        };
        for l in &lb.listeners {
            let Some(ol) = o.listeners.iter().find(|x| x.port == l.port) else {
                continue;
            };
            let touched = |arn: &str| {
                steps.iter().any(|s| match s {
                    Step::ModifyRule { arn: a, .. } | Step::ModifyListener { arn: a, .. } => {
                        a == arn
                    }
                    _ => false,
                })
            };
            if uses_rotated(&l.default_action) && !touched(&ol.arn) {
                extra.push(Step::ModifyListener {
                    arn: ol.arn.clone(),
                    protocol: l.protocol,
                    certificates: l.certificates.iter().take(1).cloned().collect(),
                    ssl_policy: l.ssl_policy.clone(),
                    alpn_policy: l.alpn_policy.clone(),
                    mutual_auth: None,
                    default_action: l.default_action.clone(),
                });
            }
            for r in l.rules.iter().filter(|r| uses_rotated(&r.action)) {
                if let Some(or) = ol.rules.iter().find(|x| x.priority == r.priority)
                    && !touched(&or.arn)
                {
                    extra.push(Step::ModifyRule {
                        arn: or.arn.clone(),
                        conditions: r.conditions.clone(),
                        action: r.action.clone(),
                        transforms: r.transforms.clone(),
                    });
                }
            }
        }
    }
    steps.extend(extra);
}
