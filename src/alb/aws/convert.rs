//! SDK types ↔ model types, pure. Every conversion that exists in both directions (actions,
//! rule conditions, tags, attributes, certificates, security group rules, health check
//! matchers and the enums) is a round trip: model → SDK → model is the identity (see the
//! property tests).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_ec2 as ec2;
use aws_sdk_elasticloadbalancingv2 as elb;
use elb::types::{
    ActionTypeEnum, AuthenticateCognitoActionConditionalBehaviorEnum,
    AuthenticateCognitoActionConfig, AuthenticateOidcActionConditionalBehaviorEnum,
    AuthenticateOidcActionConfig, FixedResponseActionConfig, ForwardActionConfig,
    HostHeaderConditionConfig, HttpHeaderConditionConfig, HttpRequestMethodConditionConfig,
    JwtValidationActionAdditionalClaim, JwtValidationActionAdditionalClaimFormatEnum,
    JwtValidationActionConfig, LoadBalancerAttribute, LoadBalancerSchemeEnum, Matcher,
    PathPatternConditionConfig, ProtocolEnum, QueryStringConditionConfig, QueryStringKeyValuePair,
    RedirectActionConfig, RedirectActionStatusCodeEnum, SourceIpConditionConfig,
    TargetGroupAttribute, TargetGroupStickinessConfig, TargetGroupTuple, TargetTypeEnum,
};

use super::AwsError;
use crate::alb::builder::SubnetInfo;
use crate::alb::model::*;
use crate::alb::observed::*;

// ---------- tags and attributes ----------

pub(super) fn elb_tags(tags: &Tags) -> Vec<elb::types::Tag> {
    tags.iter()
        .map(|(k, v)| elb::types::Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags without a key are dropped; a missing value is the empty string.
pub(super) fn model_elb_tags(tags: &[elb::types::Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub(super) fn ec2_tags(tags: &Tags) -> Vec<ec2::types::Tag> {
    tags.iter()
        .map(|(k, v)| ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags without a key are dropped; a missing value is the empty string.
pub(super) fn model_ec2_tags(tags: &[ec2::types::Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub(super) fn sdk_lb_attributes(
    attributes: &BTreeMap<String, String>,
) -> Vec<LoadBalancerAttribute> {
    attributes
        .iter()
        .map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build())
        .collect()
}

pub(super) fn model_lb_attributes(
    attributes: &[LoadBalancerAttribute],
) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter_map(|a| {
            Some((
                a.key()?.to_owned(),
                a.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub(super) fn sdk_listener_attributes(
    attributes: &BTreeMap<String, String>,
) -> Vec<elb::types::ListenerAttribute> {
    attributes
        .iter()
        .map(|(k, v)| {
            elb::types::ListenerAttribute::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect()
}

pub(super) fn model_listener_attributes(
    attributes: &[elb::types::ListenerAttribute],
) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter_map(|a| {
            Some((
                a.key()?.to_owned(),
                a.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub(super) fn sdk_tg_attributes(
    attributes: &BTreeMap<String, String>,
) -> Vec<TargetGroupAttribute> {
    attributes
        .iter()
        .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
        .collect()
}

pub(super) fn model_tg_attributes(attributes: &[TargetGroupAttribute]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter_map(|a| {
            Some((
                a.key()?.to_owned(),
                a.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

// ---------- enums ----------

pub(super) fn protocol(p: Protocol) -> ProtocolEnum {
    match p {
        Protocol::Http => ProtocolEnum::Http,
        Protocol::Https => ProtocolEnum::Https,
        Protocol::Tcp => ProtocolEnum::Tcp,
        Protocol::Udp => ProtocolEnum::Udp,
        Protocol::TcpUdp => ProtocolEnum::TcpUdp,
        Protocol::Tls => ProtocolEnum::Tls,
    }
}

/// HTTP when missing or not one we model.
pub(super) fn model_protocol(p: Option<&ProtocolEnum>) -> Protocol {
    p.map(|p| p.as_str())
        .and_then(Protocol::parse_any)
        .unwrap_or(Protocol::Http)
}

/// Every subnet as a mapping, with the fixed addresses the model gives it.
pub(super) fn sdk_subnet_mappings(
    subnets: &[String],
    mappings: &BTreeMap<String, crate::alb::model::SubnetMapping>,
) -> Vec<elb::types::SubnetMapping> {
    subnets
        .iter()
        .map(|s| {
            let m = mappings.get(s);
            elb::types::SubnetMapping::builder()
                .subnet_id(s)
                .set_allocation_id(m.and_then(|m| m.allocation_id.clone()))
                .set_private_ipv4_address(m.and_then(|m| m.private_ipv4.clone()))
                .build()
        })
        .collect()
}

pub(super) fn sdk_scheme(s: Scheme) -> LoadBalancerSchemeEnum {
    LoadBalancerSchemeEnum::from(s.as_str())
}

/// Internal unless AWS says internet-facing.
pub(super) fn model_scheme(s: Option<&LoadBalancerSchemeEnum>) -> Scheme {
    match s {
        Some(LoadBalancerSchemeEnum::InternetFacing) => Scheme::InternetFacing,
        _ => Scheme::Internal,
    }
}

pub(super) fn sdk_ip_address_type(t: IpAddressType) -> elb::types::IpAddressType {
    elb::types::IpAddressType::from(t.as_str())
}

/// IPv4 when missing or not one we model.
pub(super) fn model_ip_address_type(t: Option<&elb::types::IpAddressType>) -> IpAddressType {
    t.map(|t| t.as_str())
        .and_then(IpAddressType::parse)
        .unwrap_or(IpAddressType::Ipv4)
}

pub(super) fn sdk_target_type(t: TargetType) -> TargetTypeEnum {
    TargetTypeEnum::from(t.as_str())
}

/// Instance when missing or not one we model.
pub(super) fn model_target_type(t: Option<&TargetTypeEnum>) -> TargetType {
    t.map(|t| t.as_str())
        .and_then(TargetType::parse)
        .unwrap_or(TargetType::Instance)
}

// ---------- listeners: actions, conditions, certificates ----------

/// An action as ELBv2's list: what authenticates first (order 1), then what answers.
/// `tgs`: our target group names → their ARNs, for forward targets named by us; `secrets`:
/// the OIDC client secrets.
pub(super) fn sdk_actions(
    a: &Action,
    tgs: &HashMap<String, String>,
    secrets: &ClientSecrets,
) -> Result<Vec<elb::types::Action>, AwsError> {
    let mut out = Vec::new();
    push_actions(a, tgs, secrets, &mut out)?;
    if out.len() > 1 {
        for (i, a) in out.iter_mut().enumerate() {
            a.order = Some(i as i32 + 1);
        }
    }
    Ok(out)
}

fn push_actions(
    a: &Action,
    tgs: &HashMap<String, String>,
    secrets: &ClientSecrets,
    out: &mut Vec<elb::types::Action>,
) -> Result<(), AwsError> {
    let one = match a {
        Action::Authenticated { first, then } => {
            out.push(sdk_authenticate(first, secrets)?);
            return push_actions(then, tgs, secrets, out);
        }
        Action::Forward {
            targets,
            stickiness,
        } => {
            let mut tuples = Vec::new();
            for (t, w) in targets {
                let arn = match t {
                    TargetRef::Arn(a) => a.clone(),
                    TargetRef::Name(n) => tgs.get(n).cloned().ok_or_else(|| {
                        AwsError::Missing(format!("target group {n} has no ARN yet"))
                    })?,
                };
                tuples.push(
                    TargetGroupTuple::builder()
                        .target_group_arn(arn)
                        .weight(*w)
                        .build(),
                );
            }
            let mut fc = ForwardActionConfig::builder().set_target_groups(Some(tuples));
            if let Some(d) = stickiness {
                fc = fc.target_group_stickiness_config(
                    TargetGroupStickinessConfig::builder()
                        .enabled(true)
                        .duration_seconds(*d)
                        .build(),
                );
            }
            elb::types::Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(fc.build())
                .build()
        }
        Action::Redirect(r) => elb::types::Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(&r.protocol)
                    .host(&r.host)
                    .port(&r.port)
                    .path(&r.path)
                    .query(&r.query)
                    .status_code(RedirectActionStatusCodeEnum::from(r.status_code.as_str()))
                    .build(),
            )
            .build(),
        Action::FixedResponse {
            status_code,
            content_type,
            message_body,
        } => elb::types::Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code(status_code)
                    .set_content_type(content_type.clone())
                    .set_message_body(message_body.clone())
                    .build(),
            )
            .build(),
    };
    out.push(one);
    Ok(())
}

fn sdk_authenticate(
    a: &Authenticate,
    secrets: &ClientSecrets,
) -> Result<elb::types::Action, AwsError> {
    let extra = |s: &AuthSession| {
        (!s.extra_params.is_empty()).then(|| {
            s.extra_params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
        })
    };
    Ok(match a {
        Authenticate::Cognito(c) => elb::types::Action::builder()
            .r#type(ActionTypeEnum::AuthenticateCognito)
            .authenticate_cognito_config(
                AuthenticateCognitoActionConfig::builder()
                    .user_pool_arn(&c.user_pool_arn)
                    .user_pool_client_id(&c.client_id)
                    .user_pool_domain(&c.domain)
                    .session_cookie_name(&c.session.cookie)
                    .scope(&c.session.scope)
                    .session_timeout(c.session.timeout)
                    .set_authentication_request_extra_params(extra(&c.session))
                    .on_unauthenticated_request(
                        AuthenticateCognitoActionConditionalBehaviorEnum::from(
                            c.session.on_unauthenticated.as_str(),
                        ),
                    )
                    .build(),
            )
            .build(),
        Authenticate::Oidc(o) => {
            let secret = secrets.get(&o.secret).ok_or_else(|| {
                AwsError::Missing(format!(
                    "the client secret of Secret {}/{} was not read",
                    o.secret.namespace, o.secret.name
                ))
            })?;
            elb::types::Action::builder()
                .r#type(ActionTypeEnum::AuthenticateOidc)
                .authenticate_oidc_config(
                    AuthenticateOidcActionConfig::builder()
                        .issuer(&o.issuer)
                        .authorization_endpoint(&o.authorization_endpoint)
                        .token_endpoint(&o.token_endpoint)
                        .user_info_endpoint(&o.user_info_endpoint)
                        .client_id(&o.client_id)
                        .client_secret(secret)
                        .session_cookie_name(&o.session.cookie)
                        .scope(&o.session.scope)
                        .session_timeout(o.session.timeout)
                        .set_authentication_request_extra_params(extra(&o.session))
                        .on_unauthenticated_request(
                            AuthenticateOidcActionConditionalBehaviorEnum::from(
                                o.session.on_unauthenticated.as_str(),
                            ),
                        )
                        .build(),
                )
                .build()
        }
        Authenticate::Jwt(j) => elb::types::Action::builder()
            .r#type(ActionTypeEnum::JwtValidation)
            .jwt_validation_config(
                JwtValidationActionConfig::builder()
                    .jwks_endpoint(&j.jwks_endpoint)
                    .issuer(&j.issuer)
                    .set_additional_claims((!j.claims.is_empty()).then(|| {
                        j.claims
                            .iter()
                            .map(|c| {
                                JwtValidationActionAdditionalClaim::builder()
                                    .name(&c.name)
                                    .format(JwtValidationActionAdditionalClaimFormatEnum::from(
                                        c.format.as_str(),
                                    ))
                                    .set_values(Some(c.values.clone()))
                                    .build()
                            })
                            .collect()
                    }))
                    .build(),
            )
            .build(),
    })
}

/// What ran before the answering action, as the model has it (`None`: not an authentication).
/// ELBv2 fills in what was not set, so every field has a value.
fn model_authenticate(a: &elb::types::Action) -> Option<Authenticate> {
    let s = |v: Option<&str>| v.unwrap_or_default().to_owned();
    let extra = |m: Option<&HashMap<String, String>>| {
        m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let session = |on: Option<&str>, scope, cookie, timeout: Option<i64>, params| AuthSession {
        on_unauthenticated: on.unwrap_or("authenticate").to_owned(),
        scope: s(scope).to_owned(),
        cookie: s(cookie),
        timeout: timeout.unwrap_or_default(),
        extra_params: extra(params),
    };
    match a.r#type()? {
        ActionTypeEnum::AuthenticateCognito => {
            let c = a.authenticate_cognito_config()?;
            Some(Authenticate::Cognito(CognitoAuth {
                user_pool_arn: s(c.user_pool_arn()),
                client_id: s(c.user_pool_client_id()),
                domain: s(c.user_pool_domain()),
                session: session(
                    c.on_unauthenticated_request().map(|b| b.as_str()),
                    c.scope(),
                    c.session_cookie_name(),
                    c.session_timeout(),
                    c.authentication_request_extra_params(),
                ),
            }))
        }
        ActionTypeEnum::AuthenticateOidc => {
            let o = a.authenticate_oidc_config()?;
            Some(Authenticate::Oidc(OidcAuth {
                issuer: s(o.issuer()),
                authorization_endpoint: s(o.authorization_endpoint()),
                token_endpoint: s(o.token_endpoint()),
                user_info_endpoint: s(o.user_info_endpoint()),
                client_id: s(o.client_id()),
                secret: ClientSecretRef::default(),
                session: session(
                    o.on_unauthenticated_request().map(|b| b.as_str()),
                    o.scope(),
                    o.session_cookie_name(),
                    o.session_timeout(),
                    o.authentication_request_extra_params(),
                ),
            }))
        }
        ActionTypeEnum::JwtValidation => {
            let j = a.jwt_validation_config()?;
            Some(Authenticate::Jwt(JwtValidation {
                jwks_endpoint: s(j.jwks_endpoint()),
                issuer: s(j.issuer()),
                claims: j
                    .additional_claims()
                    .iter()
                    .map(|c| JwtClaim {
                        name: s(c.name()),
                        format: c
                            .format()
                            .map(|f| f.as_str().to_owned())
                            .unwrap_or_default(),
                        values: c.values().to_vec(),
                    })
                    .collect(),
            }))
        }
        _ => None,
    }
}

pub(super) fn sdk_transforms(transforms: &[Transform]) -> Vec<elb::types::RuleTransform> {
    let rewrites = |rs: &[Rewrite]| {
        rs.iter()
            .map(|r| {
                elb::types::RewriteConfig::builder()
                    .regex(&r.regex)
                    .replace(&r.replace)
                    .build()
            })
            .collect::<Vec<_>>()
    };
    transforms
        .iter()
        .map(|t| match t {
            Transform::HostHeaderRewrite(rs) => elb::types::RuleTransform::builder()
                .r#type(elb::types::TransformTypeEnum::HostHeaderRewrite)
                .host_header_rewrite_config(
                    elb::types::HostHeaderRewriteConfig::builder()
                        .set_rewrites(Some(rewrites(rs)))
                        .build(),
                )
                .build(),
            Transform::UrlRewrite(rs) => elb::types::RuleTransform::builder()
                .r#type(elb::types::TransformTypeEnum::UrlRewrite)
                .url_rewrite_config(
                    elb::types::UrlRewriteConfig::builder()
                        .set_rewrites(Some(rewrites(rs)))
                        .build(),
                )
                .build(),
        })
        .collect()
}

/// A transform of a type we do not know comes back as a URL rewrite of nothing, which matches
/// nothing desired.
fn model_transform(t: &elb::types::RuleTransform) -> Transform {
    let rewrites = |rs: &[elb::types::RewriteConfig]| {
        rs.iter()
            .map(|r| Rewrite {
                regex: r.regex().unwrap_or_default().to_owned(),
                replace: r.replace().unwrap_or_default().to_owned(),
            })
            .collect()
    };
    match t.r#type() {
        Some(elb::types::TransformTypeEnum::HostHeaderRewrite) => {
            Transform::HostHeaderRewrite(rewrites(
                t.host_header_rewrite_config()
                    .map(|c| c.rewrites())
                    .unwrap_or_default(),
            ))
        }
        Some(elb::types::TransformTypeEnum::UrlRewrite) => Transform::UrlRewrite(rewrites(
            t.url_rewrite_config()
                .map(|c| c.rewrites())
                .unwrap_or_default(),
        )),
        _ => Transform::UrlRewrite(Vec::new()),
    }
}

/// A rule's or listener's actions, in their order, as one model action. An action before
/// the last that is not an authentication comes back as one that matches nothing desired.
pub(super) fn model_actions(actions: &[elb::types::Action]) -> Action {
    let mut sorted: Vec<&elb::types::Action> = actions.iter().collect();
    sorted.sort_by_key(|a| a.order().unwrap_or(i32::MAX));
    let Some((last, before)) = sorted.split_last() else {
        return Action::not_found();
    };
    let mut action = model_action(last);
    for a in before.iter().rev() {
        action = match model_authenticate(a) {
            Some(first) => Action::Authenticated {
                first: Box::new(first),
                then: Box::new(action),
            },
            None => model_action(a),
        };
    }
    action
}

/// Forward targets come back as [`TargetRef::Arn`].
fn model_action(a: &elb::types::Action) -> Action {
    match a.r#type() {
        Some(ActionTypeEnum::Forward) => {
            let mut targets: Vec<(TargetRef, i32)> = a
                .forward_config()
                .map(|f| {
                    f.target_groups()
                        .iter()
                        .filter_map(|t| {
                            Some((
                                TargetRef::Arn(t.target_group_arn()?.to_owned()),
                                t.weight().unwrap_or(1),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if targets.is_empty()
                && let Some(arn) = a.target_group_arn()
            {
                targets.push((TargetRef::Arn(arn.to_owned()), 1));
            }
            let stickiness = a
                .forward_config()
                .and_then(|f| f.target_group_stickiness_config())
                .filter(|s| s.enabled() == Some(true))
                .map(|s| s.duration_seconds().unwrap_or(3600));
            Action::Forward {
                targets,
                stickiness,
            }
        }
        Some(ActionTypeEnum::Redirect) => {
            let r = a.redirect_config();
            let s = |v: Option<&str>| v.map(str::to_owned);
            Action::Redirect(Redirect::new(
                s(r.and_then(|r| r.protocol())),
                s(r.and_then(|r| r.host())),
                s(r.and_then(|r| r.port())),
                s(r.and_then(|r| r.path())),
                s(r.and_then(|r| r.query())),
                r.and_then(|r| r.status_code())
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default(),
            ))
        }
        Some(ActionTypeEnum::FixedResponse) => {
            let f = a.fixed_response_config();
            Action::FixedResponse {
                status_code: f
                    .and_then(|f| f.status_code())
                    .unwrap_or_default()
                    .to_owned(),
                content_type: f.and_then(|f| f.content_type()).map(str::to_owned),
                message_body: f.and_then(|f| f.message_body()).map(str::to_owned),
            }
        }
        other => Action::FixedResponse {
            status_code: format!("unsupported:{other:?}"),
            content_type: None,
            message_body: None,
        },
    }
}

pub(super) fn sdk_condition(c: &RuleCondition) -> elb::types::RuleCondition {
    let b = elb::types::RuleCondition::builder();
    let v = |s: &BTreeSet<String>| Some(s.iter().cloned().collect::<Vec<_>>());
    match c {
        RuleCondition::HostHeader(s) => b.field("host-header").host_header_config(
            HostHeaderConditionConfig::builder()
                .set_values(v(s))
                .build(),
        ),
        RuleCondition::PathPattern(s) => b.field("path-pattern").path_pattern_config(
            PathPatternConditionConfig::builder()
                .set_values(v(s))
                .build(),
        ),
        RuleCondition::HttpHeader { name, values } => b.field("http-header").http_header_config(
            HttpHeaderConditionConfig::builder()
                .http_header_name(name)
                .set_values(v(values))
                .build(),
        ),
        RuleCondition::HttpRequestMethod(s) => {
            b.field("http-request-method").http_request_method_config(
                HttpRequestMethodConditionConfig::builder()
                    .set_values(v(s))
                    .build(),
            )
        }
        RuleCondition::QueryString(kvs) => b.field("query-string").query_string_config(
            QueryStringConditionConfig::builder()
                .set_values(Some(
                    kvs.iter()
                        .map(|(k, val)| {
                            QueryStringKeyValuePair::builder()
                                .set_key(Some(k.clone()).filter(|k| !k.is_empty()))
                                .value(val)
                                .build()
                        })
                        .collect(),
                ))
                .build(),
        ),
        RuleCondition::SourceIp(s) => b
            .field("source-ip")
            .source_ip_config(SourceIpConditionConfig::builder().set_values(v(s)).build()),
    }
    .build()
}

/// `None` for a condition we do not model. Reads the legacy `Values` field where the typed
/// config is empty.
pub(super) fn model_condition(c: &elb::types::RuleCondition) -> Option<RuleCondition> {
    let legacy = || c.values().iter().cloned().collect::<BTreeSet<_>>();
    let or_legacy = |vals: Option<&[String]>| {
        let s: BTreeSet<String> = vals.unwrap_or_default().iter().cloned().collect();
        if s.is_empty() { legacy() } else { s }
    };
    Some(match c.field()? {
        "host-header" => {
            RuleCondition::HostHeader(or_legacy(c.host_header_config().map(|x| x.values())))
        }
        "path-pattern" => {
            RuleCondition::PathPattern(or_legacy(c.path_pattern_config().map(|x| x.values())))
        }
        "http-header" => {
            let h = c.http_header_config()?;
            RuleCondition::HttpHeader {
                name: h.http_header_name()?.to_owned(),
                values: h.values().iter().cloned().collect(),
            }
        }
        "http-request-method" => RuleCondition::HttpRequestMethod(or_legacy(
            c.http_request_method_config().map(|x| x.values()),
        )),
        "query-string" => RuleCondition::QueryString(
            c.query_string_config()?
                .values()
                .iter()
                .map(|kv| {
                    (
                        kv.key().unwrap_or_default().to_owned(),
                        kv.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        ),
        "source-ip" => RuleCondition::SourceIp(or_legacy(c.source_ip_config().map(|x| x.values()))),
        _ => return None,
    })
}

pub(super) fn sdk_certificates(arns: &[String]) -> Vec<elb::types::Certificate> {
    arns.iter()
        .map(|c| {
            elb::types::Certificate::builder()
                .certificate_arn(c)
                .build()
        })
        .collect()
}

pub(super) fn model_certificates(certificates: &[elb::types::Certificate]) -> Vec<String> {
    certificates
        .iter()
        .filter_map(|c| c.certificate_arn())
        .map(str::to_owned)
        .collect()
}

/// A listener rule as observed; `None` for the default rule or one without a priority.
pub(super) fn observed_rule(rule: &elb::types::Rule) -> Option<ObservedRule> {
    if rule.is_default() == Some(true) {
        return None;
    }
    let priority = rule.priority().and_then(|p| p.parse().ok())?;
    let mut conditions: Vec<RuleCondition> = rule
        .conditions()
        .iter()
        .filter_map(model_condition)
        .collect();
    conditions.sort();
    Some(ObservedRule {
        arn: rule.rule_arn().unwrap_or_default().to_owned(),
        priority,
        conditions,
        action: model_actions(rule.actions()),
        transforms: rule.transforms().iter().map(model_transform).collect(),
    })
}

/// `certificates`: the default and the extra ones, read separately.
pub(super) fn observed_listener(
    l: &elb::types::Listener,
    certificates: Vec<String>,
    rules: Vec<ObservedRule>,
) -> ObservedListener {
    let protocol = model_protocol(l.protocol());
    ObservedListener {
        attributes: BTreeMap::new(),
        arn: l.listener_arn().unwrap_or_default().to_owned(),
        port: l.port().unwrap_or_default(),
        protocol,
        certificates,
        // Some implementations report a policy on HTTP listeners too; it means nothing there.
        ssl_policy: l
            .ssl_policy()
            .filter(|_| protocol.is_secure())
            .map(str::to_owned),
        alpn_policy: l
            .alpn_policy()
            .first()
            .filter(|a| protocol == Protocol::Tls && a.as_str() != "None")
            .cloned(),
        mutual_auth: model_mutual_auth(l.mutual_authentication()),
        default_action: model_actions(l.default_actions()),
        rules,
    }
}

// ---------- load balancers and target groups ----------

/// A load balancer without its attributes and listeners (read separately, and only for ours).
pub(super) fn observed_load_balancer(
    lb: &elb::types::LoadBalancer,
    tags: Tags,
) -> ObservedLoadBalancer {
    let mut subnets: Vec<String> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id())
        .map(str::to_owned)
        .collect();
    subnets.sort();
    let mut security_groups: Vec<String> = lb.security_groups().to_vec();
    security_groups.sort();
    ObservedLoadBalancer {
        arn: lb.load_balancer_arn().unwrap_or_default().to_owned(),
        name: lb.load_balancer_name().unwrap_or_default().to_owned(),
        dns_name: lb.dns_name().unwrap_or_default().to_owned(),
        scheme: model_scheme(lb.scheme()),
        ip_address_type: model_ip_address_type(lb.ip_address_type()),
        subnets,
        security_groups,
        attributes: BTreeMap::new(),
        tags,
        listeners: Vec::new(),
        web_acl: None,
        shield_protection: None,
        private_link_inbound: match lb
            .enforce_security_group_inbound_rules_on_private_link_traffic()
        {
            Some("on") => Some(true),
            Some("off") => Some(false),
            _ => None,
        },
    }
}

pub(super) fn sdk_matcher(h: &HealthCheck) -> Matcher {
    match h.grpc {
        true => Matcher::builder().grpc_code(&h.success_codes).build(),
        false => Matcher::builder().http_code(&h.success_codes).build(),
    }
}

/// The HTTP (or gRPC) codes of a matcher; `200` when there is none.
pub(super) fn model_success_codes(m: Option<&Matcher>) -> String {
    m.and_then(|m| m.http_code().or(m.grpc_code()))
        .unwrap_or("200")
        .to_owned()
}

/// The health check of a target group, with AWS's defaults for fields it leaves out. A TCP
/// health check has no path and no codes, whatever a describe reports for them.
pub(super) fn model_health_check(tg: &elb::types::TargetGroup) -> HealthCheck {
    let protocol = model_protocol(tg.health_check_protocol());
    let http = protocol.is_http();
    HealthCheck {
        path: match http {
            true => tg.health_check_path().unwrap_or("/").to_owned(),
            false => String::new(),
        },
        port: tg.health_check_port().unwrap_or("traffic-port").to_owned(),
        protocol,
        interval_seconds: tg.health_check_interval_seconds().unwrap_or(30),
        timeout_seconds: tg.health_check_timeout_seconds().unwrap_or(5),
        healthy_threshold: tg.healthy_threshold_count().unwrap_or(5),
        unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or(2),
        success_codes: match http {
            true => model_success_codes(tg.matcher()),
            false => String::new(),
        },
        grpc: http && tg.matcher().is_some_and(|m| m.grpc_code().is_some()),
    }
}

/// `attributes`: only the ones read (the keys we manage).
pub(super) fn observed_target_group(
    tg: &elb::types::TargetGroup,
    attributes: BTreeMap<String, String>,
    tags: Tags,
) -> ObservedTargetGroup {
    ObservedTargetGroup {
        arn: tg.target_group_arn().unwrap_or_default().to_owned(),
        name: tg.target_group_name().unwrap_or_default().to_owned(),
        protocol: model_protocol(tg.protocol()),
        protocol_version: match model_protocol(tg.protocol()).is_http() {
            true => tg.protocol_version().unwrap_or("HTTP1").to_owned(),
            false => String::new(),
        },
        port: tg.port().unwrap_or_default(),
        target_type: model_target_type(tg.target_type()),
        health_check: model_health_check(tg),
        attributes,
        tags,
    }
}

// ---------- EC2: security groups and subnets ----------

/// One TCP or UDP permission per rule, to an IPv4 or IPv6 range (the same shape authorize
/// and revoke take).
pub(super) fn ip_permissions(rules: &[SgRule]) -> Vec<ec2::types::IpPermission> {
    rules
        .iter()
        .map(|r| {
            let p = ec2::types::IpPermission::builder()
                .ip_protocol(r.protocol.as_str())
                .from_port(r.port)
                .to_port(r.port);
            if r.cidr.contains(':') {
                p.ipv6_ranges(ec2::types::Ipv6Range::builder().cidr_ipv6(&r.cidr).build())
                    .build()
            } else {
                p.ip_ranges(ec2::types::IpRange::builder().cidr_ip(&r.cidr).build())
                    .build()
            }
        })
        .collect()
}

/// The rules we model: single-port TCP or UDP from IPv4 or IPv6 ranges. Anything else
/// (other protocols, port ranges, security group or prefix list peers) is not ours and left
/// out.
pub(super) fn model_sg_rules(permissions: &[ec2::types::IpPermission]) -> BTreeSet<SgRule> {
    let mut ingress = BTreeSet::new();
    for p in permissions {
        let protocol = match p.ip_protocol() {
            Some("tcp") => IpProtocol::Tcp,
            Some("udp") => IpProtocol::Udp,
            _ => continue,
        };
        let (Some(from), Some(to)) = (p.from_port(), p.to_port()) else {
            continue;
        };
        if from != to {
            continue;
        }
        for r in p.ip_ranges() {
            if let Some(c) = r.cidr_ip() {
                ingress.insert(SgRule {
                    port: from,
                    cidr: c.to_owned(),
                    protocol,
                });
            }
        }
        for r in p.ipv6_ranges() {
            if let Some(c) = r.cidr_ipv6() {
                ingress.insert(SgRule {
                    port: from,
                    cidr: c.to_owned(),
                    protocol,
                });
            }
        }
    }
    ingress
}

/// `None` for a group without an ID.
pub(super) fn observed_security_group(
    g: &ec2::types::SecurityGroup,
) -> Option<ObservedSecurityGroup> {
    Some(ObservedSecurityGroup {
        id: g.group_id()?.to_owned(),
        name: g.group_name().unwrap_or_default().to_owned(),
        ingress: model_sg_rules(g.ip_permissions()),
        tags: model_ec2_tags(g.tags()),
    })
}

/// `None` for a subnet without an ID or availability zone.
pub(super) fn subnet_info(s: &ec2::types::Subnet) -> Option<SubnetInfo> {
    let (Some(id), Some(az)) = (s.subnet_id(), s.availability_zone()) else {
        return None;
    };
    Some(SubnetInfo {
        id: id.to_owned(),
        az: az.to_owned(),
        tags: model_ec2_tags(s.tags()),
    })
}

mod mtls;
pub(super) use mtls::{model_mutual_auth, sdk_mutual_auth};

#[cfg(test)]
mod tests;
