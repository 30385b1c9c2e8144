//! HTTPRoute rules as ALB rules (pure): each match, on each hostname the route serves on a
//! listener port, is one ALB rule ("unit") with its conditions, action and transforms, and
//! the key that orders it by the spec's precedence. A rule an ALB cannot express is refused
//! alone, with the reason; the route's other rules are unaffected.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use gateway_api::httproutes::{
    HttpRoute, HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesFilters,
    HttpRouteRulesFiltersRequestRedirect, HttpRouteRulesFiltersRequestRedirectScheme,
    HttpRouteRulesFiltersType, HttpRouteRulesFiltersUrlRewrite, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType,
};
use kube::ResourceExt;

use super::reason;
use crate::alb::model::{Action, Redirect, Rewrite, RuleCondition, TargetRef, Transform};

/// ALB's limit of condition values in one rule (host, path, header, query and method
/// values together).
pub const MAX_CONDITION_VALUES: usize = 5;

/// A backend of a rule as the caller resolved it: the target group's name and the weight.
pub type Resolved = Result<(String, i32), (&'static str, String)>;

/// A backendRef of an HTTPRoute or GRPCRoute rule (the two kinds spell it alike).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<i32>,
    pub weight: Option<i32>,
    /// It carries filters of its own (which an ALB cannot apply per backend).
    pub has_filters: bool,
}

impl From<&HttpRouteRulesBackendRefs> for BackendRef {
    fn from(b: &HttpRouteRulesBackendRefs) -> Self {
        BackendRef {
            group: b.group.clone(),
            kind: b.kind.clone(),
            name: b.name.clone(),
            namespace: b.namespace.clone(),
            port: b.port,
            weight: b.weight,
            has_filters: b.filters.as_ref().is_some_and(|f| !f.is_empty()),
        }
    }
}

/// Resolves a rule's backend (rule index, backend).
pub type Resolve<'a> = dyn FnMut(usize, &BackendRef) -> Resolved + 'a;

/// One ALB rule of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub port: i32,
    pub conditions: Vec<RuleCondition>,
    pub action: Action,
    pub transforms: Vec<Transform>,
    pub key: Precedence,
}

/// What a route gives on one Gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub units: Vec<Unit>,
    /// Rules refused (index, reason, message); each serves nothing.
    pub refused: Vec<(usize, &'static str, String)>,
    /// Backends that did not resolve (reason, message): left out of their rule.
    pub unresolved: Vec<(&'static str, String)>,
}

/// The spec's precedence of a match, most significant first (`Ord`: the earlier rule is
/// the smaller): a hostname before none, exact before wildcard, longer hostnames first;
/// Exact paths, then PathPrefix (longer first); a method; more headers; more query
/// parameters; then the older route, its `namespace/name`, and rule and match order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precedence {
    pub hostname: String,
    pub path_rank: u8,
    pub path_len: usize,
    /// GRPCRoute: the method name's length (after the service's).
    pub path_len2: usize,
    pub has_method: bool,
    pub headers: usize,
    pub queries: usize,
    /// Route creation time (RFC 3339 sorts by time).
    pub created: String,
    pub route: String,
    pub rule: usize,
    pub matched: usize,
}

impl Ord for Precedence {
    fn cmp(&self, o: &Self) -> Ordering {
        host_order(&self.hostname, &o.hostname)
            .then(o.path_rank.cmp(&self.path_rank))
            .then(o.path_len.cmp(&self.path_len))
            .then(o.path_len2.cmp(&self.path_len2))
            .then(o.has_method.cmp(&self.has_method))
            .then(o.headers.cmp(&self.headers))
            .then(o.queries.cmp(&self.queries))
            .then(self.created.cmp(&o.created))
            .then(self.route.cmp(&o.route))
            .then(self.rule.cmp(&o.rule))
            .then(self.matched.cmp(&o.matched))
            .then(self.hostname.cmp(&o.hostname))
    }
}

impl PartialOrd for Precedence {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// A hostname before none; exact before wildcard; more labels, then longer, first.
fn host_order(a: &str, b: &str) -> Ordering {
    let rank = |h: &str| {
        (
            !h.is_empty(),
            !h.starts_with('*'),
            h.matches('.').count(),
            h.len(),
        )
    };
    rank(b).cmp(&rank(a))
}

/// The units of `route` on the ports and hostnames it is attached to (`served`), with each
/// backend resolved by `resolve` (rule index, backend).
pub fn route_units(
    route: &HttpRoute,
    served: &BTreeMap<i32, BTreeSet<String>>,
    resolve: &mut Resolve<'_>,
) -> Outcome {
    let mut out = Outcome::default();
    let id = format!(
        "{}/{}",
        route.namespace().unwrap_or_default(),
        route.name_any()
    );
    let created = route
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    for (i, rule) in route.spec.rules.iter().flatten().enumerate() {
        match rule_units(&id, &created, i, rule, served, resolve, &mut out.unresolved) {
            Ok(units) => out.units.extend(units),
            Err((reason, message)) => out.refused.push((i, reason, message)),
        }
    }
    out
}

pub(super) type Refusal = (&'static str, String);

pub(super) fn unsupported(message: impl Into<String>) -> Refusal {
    (reason::UNSUPPORTED_VALUE, message.into())
}

fn rule_units(
    route: &str,
    created: &str,
    index: usize,
    rule: &HttpRouteRules,
    served: &BTreeMap<i32, BTreeSet<String>>,
    resolve: &mut Resolve<'_>,
    unresolved: &mut Vec<Refusal>,
) -> Result<Vec<Unit>, Refusal> {
    let name = rule
        .name
        .clone()
        .unwrap_or_else(|| format!("rules[{index}]"));
    let mut redirect: Option<&HttpRouteRulesFiltersRequestRedirect> = None;
    let mut rewrite: Option<&HttpRouteRulesFiltersUrlRewrite> = None;
    for f in rule.filters.iter().flatten() {
        match filter(f) {
            Filter::Redirect(r) => redirect = Some(r),
            Filter::Rewrite(r) => rewrite = Some(r),
            Filter::Unsupported(what) => {
                return Err(unsupported(format!(
                    "{name}: the {what} filter cannot be expressed on an ALB"
                )));
            }
        }
    }
    if redirect.is_some() && rewrite.is_some() {
        return Err((
            "IncompatibleFilters",
            format!("{name}: RequestRedirect and URLRewrite cannot be combined"),
        ));
    }
    let action = match redirect {
        Some(r) => redirect_action(r).map_err(|m| unsupported(format!("{name}: {m}")))?,
        None => {
            let backends: Vec<BackendRef> = rule
                .backend_refs
                .iter()
                .flatten()
                .map(BackendRef::from)
                .collect();
            forward(&name, index, &backends, resolve, unresolved)?
        }
    };
    let default_match = [HttpRouteRulesMatches::default()];
    let matches: &[HttpRouteRulesMatches] = match rule.matches.as_deref() {
        Some(m) if !m.is_empty() => m,
        _ => &default_match,
    };
    let mut units = Vec::new();
    for (j, m) in matches.iter().enumerate() {
        let (conditions, key) =
            match_conditions(m).map_err(|e| unsupported(format!("{name}: {e}")))?;
        let transforms = match rewrite {
            Some(r) => rewrite_transforms(r, m).map_err(|e| unsupported(format!("{name}: {e}")))?,
            None => Vec::new(),
        };
        let key = Precedence {
            created: created.to_string(),
            route: route.to_string(),
            rule: index,
            matched: j,
            ..key
        };
        units_for(
            &name,
            j,
            &conditions,
            &key,
            &action,
            &transforms,
            served,
            &mut units,
        )?;
    }
    Ok(units)
}

/// The forward action to a rule's backends by weight; the spec's 500 when none resolves.
pub(super) fn forward(
    name: &str,
    index: usize,
    backends: &[BackendRef],
    resolve: &mut Resolve<'_>,
    unresolved: &mut Vec<Refusal>,
) -> Result<Action, Refusal> {
    let mut targets = Vec::new();
    for b in backends {
        if b.has_filters {
            return Err(unsupported(format!(
                "{name}: backendRefs[].filters cannot be expressed on an ALB"
            )));
        }
        if b.weight.is_some_and(|w| !(0..=999).contains(&w)) {
            return Err(unsupported(format!(
                "{name}: an ALB weight is 0 to 999, not {}",
                b.weight.unwrap_or_default()
            )));
        }
        match resolve(index, b) {
            Ok((tg, weight)) => targets.push((TargetRef::Name(tg), weight)),
            Err(e) => unresolved.push(e),
        }
    }
    Ok(if targets.iter().any(|(_, w)| *w > 0) {
        Action::Forward {
            targets,
            stickiness: None,
        }
    } else {
        // No backend to send to: the spec's 500.
        Action::FixedResponse {
            status_code: "500".into(),
            content_type: Some("text/plain".into()),
            message_body: None,
        }
    })
}

/// The units of one match's conditions on every port and hostname the route serves, each
/// within ALB's condition-value limit.
#[allow(clippy::too_many_arguments)]
pub(super) fn units_for(
    name: &str,
    matched: usize,
    conditions: &[RuleCondition],
    key: &Precedence,
    action: &Action,
    transforms: &[Transform],
    served: &BTreeMap<i32, BTreeSet<String>>,
    out: &mut Vec<Unit>,
) -> Result<(), Refusal> {
    for (port, hosts) in served {
        for host in hosts {
            let mut conds = conditions.to_vec();
            if !host.is_empty() {
                conds.insert(0, RuleCondition::HostHeader(BTreeSet::from([host.clone()])));
            }
            let values: usize = conds.iter().map(condition_values).sum();
            if values > MAX_CONDITION_VALUES {
                return Err(unsupported(format!(
                    "{name}: matches[{matched}] needs {values} condition values; an ALB rule takes {MAX_CONDITION_VALUES}"
                )));
            }
            out.push(Unit {
                port: *port,
                conditions: conds,
                action: action.clone(),
                transforms: transforms.to_vec(),
                key: Precedence {
                    hostname: host.clone(),
                    ..key.clone()
                },
            });
        }
    }
    Ok(())
}

enum Filter<'a> {
    Redirect(&'a HttpRouteRulesFiltersRequestRedirect),
    Rewrite(&'a HttpRouteRulesFiltersUrlRewrite),
    Unsupported(&'static str),
}

fn filter(f: &HttpRouteRulesFilters) -> Filter<'_> {
    use HttpRouteRulesFiltersType as T;
    match (&f.r#type, &f.request_redirect, &f.url_rewrite) {
        (T::RequestRedirect, Some(r), _) => Filter::Redirect(r),
        (T::UrlRewrite, _, Some(r)) => Filter::Rewrite(r),
        (T::RequestRedirect | T::UrlRewrite, _, _) => Filter::Unsupported("empty"),
        (T::RequestHeaderModifier, _, _) => Filter::Unsupported("RequestHeaderModifier"),
        (T::ResponseHeaderModifier, _, _) => Filter::Unsupported("ResponseHeaderModifier"),
        (T::RequestMirror, _, _) => Filter::Unsupported("RequestMirror"),
        (T::Cors, _, _) => Filter::Unsupported("CORS"),
        (T::ExtensionRef, _, _) => Filter::Unsupported("ExtensionRef"),
    }
}

/// Wildcards an ALB would read in a value meant literally.
fn has_wildcard(v: &str) -> bool {
    v.contains('*') || v.contains('?')
}

/// A match's conditions (without the hostname) and its precedence fields.
fn match_conditions(m: &HttpRouteRulesMatches) -> Result<(Vec<RuleCondition>, Precedence), String> {
    let mut conds = Vec::new();
    let mut key = Precedence {
        hostname: String::new(),
        path_rank: 0,
        path_len: 0,
        path_len2: 0,
        has_method: m.method.is_some(),
        headers: m.headers.as_ref().map_or(0, Vec::len),
        queries: m.query_params.as_ref().map_or(0, Vec::len),
        created: String::new(),
        route: String::new(),
        rule: 0,
        matched: 0,
    };
    let (kind, value) = match &m.path {
        Some(p) => (
            p.r#type
                .clone()
                .unwrap_or(HttpRouteRulesMatchesPathType::PathPrefix),
            p.value.clone().unwrap_or_else(|| "/".into()),
        ),
        None => (HttpRouteRulesMatchesPathType::PathPrefix, "/".into()),
    };
    if has_wildcard(&value) {
        return Err(format!("path {value:?}: an ALB reads * and ? as wildcards"));
    }
    key.path_len = value.len();
    match kind {
        HttpRouteRulesMatchesPathType::Exact => {
            key.path_rank = 3;
            conds.push(RuleCondition::PathPattern(BTreeSet::from([value])));
        }
        HttpRouteRulesMatchesPathType::PathPrefix => {
            key.path_rank = 2;
            let base = value.strip_suffix('/').unwrap_or(&value);
            let values = if base.is_empty() {
                BTreeSet::from(["/*".to_string()])
            } else {
                BTreeSet::from([base.to_string(), format!("{base}/*")])
            };
            // "/" matches everything: no condition needed, and none spends a value.
            if base.is_empty() {
                key.path_len = 1;
            } else {
                conds.push(RuleCondition::PathPattern(values));
            }
        }
        HttpRouteRulesMatchesPathType::RegularExpression => {
            return Err("RegularExpression path matches are not supported".into());
        }
    }
    for h in m.headers.iter().flatten() {
        if h.r#type == Some(HttpRouteRulesMatchesHeadersType::RegularExpression) {
            return Err(format!(
                "header {}: RegularExpression matches are not supported",
                h.name
            ));
        }
        if has_wildcard(&h.value) {
            return Err(format!(
                "header {}: an ALB reads * and ? as wildcards",
                h.name
            ));
        }
        conds.push(RuleCondition::HttpHeader {
            name: h.name.clone(),
            values: BTreeSet::from([h.value.clone()]),
        });
    }
    for q in m.query_params.iter().flatten() {
        if q.r#type == Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression) {
            return Err(format!(
                "query parameter {}: RegularExpression matches are not supported",
                q.name
            ));
        }
        if has_wildcard(&q.value) || has_wildcard(&q.name) {
            return Err(format!(
                "query parameter {}: an ALB reads * and ? as wildcards",
                q.name
            ));
        }
        conds.push(RuleCondition::QueryString(BTreeSet::from([(
            q.name.clone(),
            q.value.clone(),
        )])));
    }
    if let Some(method) = &m.method {
        let name = serde_json::to_value(method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        conds.push(RuleCondition::HttpRequestMethod(BTreeSet::from([name])));
    }
    Ok((conds, key))
}

fn condition_values(c: &RuleCondition) -> usize {
    match c {
        RuleCondition::HostHeader(v) | RuleCondition::PathPattern(v) => v.len(),
        RuleCondition::HttpHeader { values, .. } => values.len(),
        RuleCondition::HttpRequestMethod(v) => v.len(),
        RuleCondition::QueryString(v) => v.len(),
        RuleCondition::SourceIp(v) => v.len(),
    }
}

/// RequestRedirect as an ALB redirect: unset parts keep the request's (`#{...}`).
fn redirect_action(r: &HttpRouteRulesFiltersRequestRedirect) -> Result<Action, String> {
    let scheme = r.scheme.as_ref().map(|s| match s {
        HttpRouteRulesFiltersRequestRedirectScheme::Http => "HTTP",
        HttpRouteRulesFiltersRequestRedirectScheme::Https => "HTTPS",
    });
    // A new scheme without a port goes to that scheme's well-known port.
    let port = r.port.map(|p| p.to_string()).or(match scheme {
        Some("HTTP") => Some("80".into()),
        Some("HTTPS") => Some("443".into()),
        _ => None,
    });
    let path = match &r.path {
        None => None,
        Some(p) => match (&p.replace_full_path, &p.replace_prefix_match) {
            (Some(full), _) if has_wildcard(full) => {
                return Err(format!(
                    "redirect path {full:?}: an ALB reads * and ? as wildcards"
                ));
            }
            (Some(full), _) => Some(full.clone()),
            (None, Some(_)) => {
                return Err("a redirect with ReplacePrefixMatch is not supported".into());
            }
            (None, None) => None,
        },
    };
    let code = r.status_code.unwrap_or(302);
    if ![301, 302].contains(&code) {
        return Err(format!("an ALB redirects with 301 or 302, not {code}"));
    }
    Ok(Action::Redirect(Redirect::new(
        scheme.map(str::to_string),
        r.hostname.clone(),
        port,
        path,
        None,
        format!("HTTP_{code}"),
    )))
}

/// URLRewrite as ALB transforms: the path (full, or the matched prefix) and the host.
fn rewrite_transforms(
    r: &HttpRouteRulesFiltersUrlRewrite,
    m: &HttpRouteRulesMatches,
) -> Result<Vec<Transform>, String> {
    let mut out = Vec::new();
    if let Some(host) = &r.hostname {
        out.push(Transform::HostHeaderRewrite(vec![Rewrite {
            regex: ".*".into(),
            replace: host.clone(),
        }]));
    }
    if let Some(p) = &r.path {
        let rewrite = match (&p.replace_full_path, &p.replace_prefix_match) {
            (Some(full), _) => Rewrite {
                regex: "^([^?]*)".into(),
                replace: full.clone(),
            },
            (None, Some(prefix)) => {
                let matched = m.path.as_ref();
                let is_prefix = matched.is_none_or(|p| {
                    p.r#type
                        .as_ref()
                        .is_none_or(|t| *t == HttpRouteRulesMatchesPathType::PathPrefix)
                });
                if !is_prefix {
                    return Err("ReplacePrefixMatch needs a PathPrefix match".into());
                }
                let from = matched
                    .and_then(|p| p.value.as_deref())
                    .unwrap_or("/")
                    .trim_end_matches('/');
                let to = prefix.trim_end_matches('/');
                match to.is_empty() {
                    // "/foo/bar" → "/bar", "/foo" → "/".
                    true => Rewrite {
                        regex: format!("^{}/?(.*)$", regex_escape(from)),
                        replace: "/$1".into(),
                    },
                    // "/foo/bar" → "/to/bar", "/foo" → "/to".
                    false => Rewrite {
                        regex: format!("^{}(/.*)?$", regex_escape(from)),
                        replace: format!("{to}$1"),
                    },
                }
            }
            (None, None) => return Ok(out),
        };
        out.push(Transform::UrlRewrite(vec![rewrite]));
    }
    Ok(out)
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
