//! The `actions.<name>` and `conditions.<name>` annotations: JSON as aws-load-balancer-controller
//! reads it. Its parser is Go's `encoding/json`, which matches object keys case-insensitively
//! when there is no exact match, so `"Type"`, `"TargetGroupArn"` (its migration guide's legacy
//! format) and `"sourceIPConfig"` are read like `type`, `targetGroupARN` and `sourceIpConfig`;
//! [`fold_keys`] gives serde the same view.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{PREFIX, Problem, reason, valid_cidr};
use crate::alb::model::{Action, Redirect, Rewrite, RuleCondition, Transform};

/// Every object key of the action JSON, as the structs below spell it.
const ACTION_KEYS: &[&str] = &[
    "type",
    "targetGroupARN",
    "targetGroupName",
    "forwardConfig",
    "redirectConfig",
    "fixedResponseConfig",
    "targetGroups",
    "serviceName",
    "servicePort",
    "weight",
    "targetGroupStickinessConfig",
    "enabled",
    "durationSeconds",
    "protocol",
    "host",
    "port",
    "path",
    "query",
    "statusCode",
    "contentType",
    "messageBody",
];

/// Every object key of the conditions JSON, as the structs below spell it.
const CONDITION_KEYS: &[&str] = &[
    "field",
    "hostHeaderConfig",
    "pathPatternConfig",
    "httpRequestMethodConfig",
    "sourceIpConfig",
    "httpHeaderConfig",
    "queryStringConfig",
    "values",
    "regexValues",
    "httpHeaderName",
    "key",
    "value",
];

/// Renames, at every depth, each object key that is not one of `known` but equals one
/// ignoring ASCII case, to that spelling. As with Go, a later key wins over an earlier one
/// that folds to the same name.
pub(super) fn fold_keys(value: serde_json::Value, known: &[&str]) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let k = match known.contains(&k.as_str()) {
                        true => k,
                        false => known
                            .iter()
                            .find(|c| c.eq_ignore_ascii_case(&k))
                            .map_or(k, |c| (*c).to_owned()),
                    };
                    (k, fold_keys(v, known))
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| fold_keys(v, known)).collect())
        }
        other => other,
    }
}

/// `raw` as `T`, with keys folded to `known`.
pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    raw: &str,
    known: &[&str],
) -> serde_json::Result<T> {
    serde_json::from_value(fold_keys(serde_json::from_str(raw)?, known))
}

/// An `actions.<name>` annotation, before target groups are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionSpec {
    Forward {
        targets: Vec<(ForwardTarget, i32)>,
        stickiness: Option<i32>,
    },
    Fixed(Action),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardTarget {
    Arn(String),
    /// A target group named in AWS (`targetGroupName`), resolved to its ARN by discovery.
    Name(String),
    Service {
        name: String,
        port: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAction {
    #[serde(rename = "type")]
    type_: String,
    #[serde(rename = "targetGroupARN")]
    target_group_arn: Option<String>,
    target_group_name: Option<String>,
    forward_config: Option<RawForward>,
    redirect_config: Option<RawRedirect>,
    fixed_response_config: Option<RawFixed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawForward {
    #[serde(default)]
    target_groups: Vec<RawTarget>,
    target_group_stickiness_config: Option<RawStickiness>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTarget {
    #[serde(rename = "targetGroupARN")]
    target_group_arn: Option<String>,
    target_group_name: Option<String>,
    service_name: Option<String>,
    service_port: Option<serde_json::Value>,
    weight: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStickiness {
    enabled: Option<bool>,
    duration_seconds: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRedirect {
    protocol: Option<String>,
    host: Option<String>,
    port: Option<String>,
    path: Option<String>,
    query: Option<String>,
    status_code: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFixed {
    content_type: Option<String>,
    message_body: Option<String>,
    status_code: String,
}

pub fn parse_action(name: &str, raw: &str) -> Result<ActionSpec, Problem> {
    let key = format!("actions.{name}");
    let a: RawAction = from_json(raw, ACTION_KEYS)
        .map_err(|e| Problem::annotation(&key, format!("malformed JSON: {e}")))?;
    match a.type_.as_str() {
        "forward" => {
            let mut targets = Vec::new();
            if let Some(arn) = a.target_group_arn {
                targets.push((ForwardTarget::Arn(arn), 1));
            } else if let Some(name) = a.target_group_name {
                targets.push((ForwardTarget::Name(name), 1));
            }
            let mut stickiness = None;
            if let Some(f) = a.forward_config {
                for t in f.target_groups {
                    let weight = t.weight.unwrap_or(1);
                    if !(0..=999).contains(&weight) {
                        return Err(Problem::annotation(
                            &key,
                            format!("weight {weight} is outside 0..=999"),
                        ));
                    }
                    let target = match (t.target_group_arn, t.target_group_name, t.service_name) {
                        (Some(arn), _, _) => ForwardTarget::Arn(arn),
                        (None, Some(name), _) => ForwardTarget::Name(name),
                        (None, None, Some(name)) => {
                            let port = match t.service_port {
                                Some(serde_json::Value::String(s)) => s,
                                Some(serde_json::Value::Number(n)) => n.to_string(),
                                _ => {
                                    return Err(Problem::annotation(
                                        &key,
                                        format!("service {name:?} needs a servicePort"),
                                    ));
                                }
                            };
                            ForwardTarget::Service { name, port }
                        }
                        (None, None, None) => {
                            return Err(Problem::annotation(
                                &key,
                                "a target group needs targetGroupARN, targetGroupName or serviceName",
                            ));
                        }
                    };
                    targets.push((target, weight));
                }
                if let Some(s) = f.target_group_stickiness_config
                    && s.enabled == Some(true)
                {
                    stickiness = Some(s.duration_seconds.unwrap_or(3600));
                }
            }
            if targets.is_empty() {
                return Err(Problem::annotation(&key, "forward names no target group"));
            }
            if targets.len() > 5 {
                return Err(Problem::annotation(
                    &key,
                    "forward allows at most 5 target groups",
                ));
            }
            Ok(ActionSpec::Forward {
                targets,
                stickiness,
            })
        }
        "redirect" => {
            let r = a
                .redirect_config
                .ok_or_else(|| Problem::annotation(&key, "redirect needs redirectConfig"))?;
            if !["HTTP_301", "HTTP_302"].contains(&r.status_code.as_str()) {
                return Err(Problem::annotation(
                    &key,
                    "statusCode must be HTTP_301 or HTTP_302",
                ));
            }
            Ok(ActionSpec::Fixed(Action::Redirect(Redirect::new(
                r.protocol,
                r.host,
                r.port,
                r.path,
                r.query,
                r.status_code,
            ))))
        }
        "fixed-response" => {
            let f = a.fixed_response_config.ok_or_else(|| {
                Problem::annotation(&key, "fixed-response needs fixedResponseConfig")
            })?;
            if !f
                .status_code
                .parse::<u16>()
                .is_ok_and(|c| (200..600).contains(&c))
            {
                return Err(Problem::annotation(
                    &key,
                    "statusCode must be 2XX, 4XX or 5XX",
                ));
            }
            Ok(ActionSpec::Fixed(Action::FixedResponse {
                status_code: f.status_code,
                content_type: f.content_type,
                message_body: f.message_body,
            }))
        }
        other => Err(Problem::new(
            reason::UNKNOWN_ACTION,
            format!(
                "annotation {PREFIX}{key}: unknown action type {other:?} (forward, redirect or fixed-response)"
            ),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCondition {
    field: String,
    host_header_config: Option<RawValues>,
    path_pattern_config: Option<RawValues>,
    http_request_method_config: Option<RawValues>,
    source_ip_config: Option<RawValues>,
    http_header_config: Option<RawHeader>,
    query_string_config: Option<RawQuery>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawValues {
    #[serde(default)]
    values: Vec<String>,
    /// ELBv2's regular-expression matching, which causeway does not implement: refused by
    /// name rather than read as an empty list.
    #[serde(default)]
    regex_values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHeader {
    http_header_name: String,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    regex_values: Vec<String>,
}

#[derive(Deserialize)]
struct RawQuery {
    values: Vec<RawKv>,
}

#[derive(Deserialize)]
struct RawKv {
    key: Option<String>,
    value: String,
}

pub fn parse_conditions(name: &str, raw: &str) -> Result<Vec<RuleCondition>, Problem> {
    let key = format!("conditions.{name}");
    let list: Vec<RawCondition> = from_json(raw, CONDITION_KEYS)
        .map_err(|e| Problem::annotation(&key, format!("malformed JSON: {e}")))?;
    let regex = list.iter().any(|c| {
        [
            &c.host_header_config,
            &c.path_pattern_config,
            &c.http_request_method_config,
            &c.source_ip_config,
        ]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| !v.regex_values.is_empty()))
            || c.http_header_config
                .as_ref()
                .is_some_and(|h| !h.regex_values.is_empty())
    });
    if regex {
        return Err(Problem::new(
            reason::UNSUPPORTED_ANNOTATION,
            format!(
                "annotation {PREFIX}{key}: regexValues (regular-expression matching) is not implemented by causeway; the Ingress is not served without it"
            ),
        ));
    }
    let empty = |what: &str, values: &[String]| {
        if values.is_empty() {
            Err(Problem::annotation(&key, format!("{what} has no values")))
        } else {
            Ok(())
        }
    };
    let missing = |what: &str| Problem::annotation(&key, format!("{what} needs its config"));
    let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
    list.into_iter()
        .map(|c| {
            Ok(match c.field.as_str() {
                "host-header" => {
                    let v = c
                        .host_header_config
                        .ok_or_else(|| missing("host-header"))?
                        .values;
                    empty("host-header", &v)?;
                    RuleCondition::HostHeader(set(v))
                }
                "path-pattern" => {
                    let v = c
                        .path_pattern_config
                        .ok_or_else(|| missing("path-pattern"))?
                        .values;
                    empty("path-pattern", &v)?;
                    RuleCondition::PathPattern(set(v))
                }
                "http-request-method" => {
                    let v = c
                        .http_request_method_config
                        .ok_or_else(|| missing("http-request-method"))?
                        .values;
                    empty("http-request-method", &v)?;
                    RuleCondition::HttpRequestMethod(set(v))
                }
                "source-ip" => {
                    let values = c
                        .source_ip_config
                        .ok_or_else(|| missing("source-ip"))?
                        .values;
                    empty("source-ip", &values)?;
                    if let Some(v) = values.iter().find(|v| !valid_cidr(v)) {
                        return Err(Problem::annotation(
                            &format!("conditions.{name}"),
                            format!("source-ip {v:?} is not a CIDR"),
                        ));
                    }
                    RuleCondition::SourceIp(set(values))
                }
                "http-header" => {
                    let h = c.http_header_config.ok_or_else(|| missing("http-header"))?;
                    empty("http-header", &h.values)?;
                    RuleCondition::HttpHeader {
                        name: h.http_header_name,
                        values: set(h.values),
                    }
                }
                "query-string" => RuleCondition::QueryString(
                    c.query_string_config
                        .ok_or_else(|| missing("query-string"))?
                        .values
                        .into_iter()
                        .map(|kv| (kv.key.unwrap_or_default(), kv.value))
                        .collect(),
                ),
                other => {
                    return Err(Problem::annotation(
                        &key,
                        format!("unknown condition field {other:?}"),
                    ));
                }
            })
        })
        .collect()
}

/// The target group names the `actions.*` annotations of one Ingress forward to
/// (`targetGroupName`), for discovery to resolve. Malformed actions name none: the builder
/// reports them.
pub fn named_target_groups(
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    annotations
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(PREFIX)?.strip_prefix("actions.")?, v)))
        .filter_map(|(name, raw)| parse_action(name, raw).ok())
        .flat_map(|a| match a {
            ActionSpec::Forward { targets, .. } => targets,
            ActionSpec::Fixed(_) => Vec::new(),
        })
        .filter_map(|(t, _)| match t {
            ForwardTarget::Name(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// Every object key of the transforms JSON, as the structs below spell it.
const TRANSFORM_KEYS: &[&str] = &[
    "type",
    "hostHeaderRewriteConfig",
    "urlRewriteConfig",
    "rewrites",
    "regex",
    "replace",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTransform {
    #[serde(rename = "type")]
    type_: String,
    host_header_rewrite_config: Option<RawRewrites>,
    url_rewrite_config: Option<RawRewrites>,
}

#[derive(Deserialize)]
struct RawRewrites {
    #[serde(default)]
    rewrites: Vec<RawRewrite>,
}

#[derive(Deserialize)]
struct RawRewrite {
    #[serde(default)]
    regex: String,
    #[serde(default)]
    replace: String,
}

/// A `transforms.<name>` annotation: a JSON list of `host-header-rewrite` and `url-rewrite`
/// transforms, each with its regex rewrites.
pub fn parse_transforms(name: &str, raw: &str) -> Result<Vec<Transform>, Problem> {
    let key = format!("transforms.{name}");
    let bad = |m: String| Problem::annotation(&key, m);
    let list: Vec<RawTransform> = from_json(raw, TRANSFORM_KEYS).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for t in list {
        let (config, make): (_, fn(Vec<Rewrite>) -> Transform) = match t.type_.as_str() {
            "host-header-rewrite" => (t.host_header_rewrite_config, Transform::HostHeaderRewrite),
            "url-rewrite" => (t.url_rewrite_config, Transform::UrlRewrite),
            other => {
                return Err(bad(format!(
                    "transform type {other:?} is not host-header-rewrite or url-rewrite"
                )));
            }
        };
        let config = config.ok_or_else(|| bad(format!("{} needs its config", t.type_)))?;
        if config.rewrites.is_empty() {
            return Err(bad(format!("{} has no rewrites", t.type_)));
        }
        if let Some(r) = config.rewrites.iter().find(|r| r.regex.is_empty()) {
            return Err(bad(format!("a rewrite to {:?} has no regex", r.replace)));
        }
        out.push(make(
            config
                .rewrites
                .into_iter()
                .map(|r| Rewrite {
                    regex: r.regex,
                    replace: r.replace,
                })
                .collect(),
        ));
    }
    Ok(out)
}
