//! The thin AWS adapter for ALBs: SDK types in and out of model types.
//!
//! Reads are scoped to what we own: the ARNs and IDs kept in the group's status, plus a
//! lookup by our deterministic names for anything we may have created without recording it.
//! Nothing here lists the region. Subnet and certificate discovery are VPC- and
//! account-scoped reads the caller caches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_elasticloadbalancingv2 as elb;
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use aws_smithy_types::error::display::DisplayErrorContext;
use elb::types::{
    ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig, HostHeaderConditionConfig,
    HttpHeaderConditionConfig, HttpRequestMethodConditionConfig, LoadBalancerAttribute,
    LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher, PathPatternConditionConfig,
    ProtocolEnum, QueryStringConditionConfig, QueryStringKeyValuePair, RedirectActionConfig,
    RedirectActionStatusCodeEnum, SourceIpConditionConfig, TargetGroupAttribute,
    TargetGroupStickinessConfig, TargetGroupTuple, TargetTypeEnum,
};

use super::builder::{CertInfo, SubnetInfo};
use super::model::*;
use super::observed::*;
use super::plan::Step;
use crate::aws::AwsClients;

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{operation}: {code}: {message}")]
    Call {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// A security group still referenced elsewhere (e.g. by a node security group rule a
    /// TargetGroupBinding added). Retried with backoff; never skipped.
    #[error("security group {0} is still in use (DependencyViolation); retrying")]
    DependencyViolation(String),
    #[error("{0}")]
    Missing(String),
}

impl AwsError {
    fn call<E: ProvideErrorMetadata + std::error::Error + 'static>(
        operation: &'static str,
        err: E,
    ) -> Self {
        AwsError::Call {
            operation,
            code: err.code().unwrap_or("Unknown").to_owned(),
            message: DisplayErrorContext(&err).to_string(),
        }
    }
    fn code(&self) -> Option<&str> {
        match self {
            AwsError::Call { code, .. } => Some(code),
            _ => None,
        }
    }
    fn not_found(&self) -> bool {
        self.code().is_some_and(|c| c.contains("NotFound"))
    }
}

/// How much of a group [`AlbAws::observe`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Everything the planner compares, listeners and rules included.
    Full,
    /// Load balancers, target groups and security groups only.
    Resources,
}

/// The ARNs and IDs we believe we own (from the group's status), plus the names we would
/// create: the two ways to find our resources without a region scan.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub load_balancer_arns: Vec<String>,
    pub target_group_arns: Vec<String>,
    pub security_group_ids: Vec<String>,
}

pub struct AlbAws<'a> {
    pub aws: &'a AwsClients,
    pub vpc_id: &'a str,
    pub cluster: &'a str,
}

fn elb_tags(tags: &Tags) -> Vec<elb::types::Tag> {
    tags.iter()
        .map(|(k, v)| elb::types::Tag::builder().key(k).value(v).build())
        .collect()
}

fn ec2_tags(tags: &Tags) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

fn protocol(p: Protocol) -> ProtocolEnum {
    match p {
        Protocol::Http => ProtocolEnum::Http,
        Protocol::Https => ProtocolEnum::Https,
    }
}

fn sdk_action(a: &Action, tgs: &HashMap<String, String>) -> Result<elb::types::Action, AwsError> {
    Ok(match a {
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
    })
}

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

fn sdk_condition(c: &RuleCondition) -> elb::types::RuleCondition {
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

fn model_condition(c: &elb::types::RuleCondition) -> Option<RuleCondition> {
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

impl AlbAws<'_> {
    // ---------- discovery (cached by the caller) ----------

    /// Every subnet of the VPC with its tags: one VPC-scoped read.
    pub async fn subnets(&self) -> Result<Vec<SubnetInfo>, AwsError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .aws
                .ec2
                .describe_subnets()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("vpc-id")
                        .values(self.vpc_id)
                        .build(),
                )
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| AwsError::call("DescribeSubnets", e))?;
            for s in resp.subnets() {
                let (Some(id), Some(az)) = (s.subnet_id(), s.availability_zone()) else {
                    continue;
                };
                out.push(SubnetInfo {
                    id: id.to_owned(),
                    az: az.to_owned(),
                    tags: s
                        .tags()
                        .iter()
                        .filter_map(|t| {
                            Some((
                                t.key()?.to_owned(),
                                t.value().unwrap_or_default().to_owned(),
                            ))
                        })
                        .collect(),
                });
            }
            token = resp.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// The security groups of the VPC that the `security-groups` annotation names, by ID or by
    /// `Name` tag: entry → the IDs it matches (an entry missing from the map matches none).
    pub async fn resolve_security_groups(
        &self,
        entries: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Vec<String>>, AwsError> {
        let (ids, names): (Vec<&String>, Vec<&String>) =
            entries.iter().partition(|e| e.starts_with("sg-"));
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (filter, values) in [("group-id", ids), ("tag:Name", names)] {
            if values.is_empty() {
                continue;
            }
            let mut token = None;
            loop {
                let resp = self
                    .aws
                    .ec2
                    .describe_security_groups()
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("vpc-id")
                            .values(self.vpc_id)
                            .build(),
                    )
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name(filter)
                            .set_values(Some(values.iter().map(|v| (*v).clone()).collect()))
                            .build(),
                    )
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
                for g in resp.security_groups() {
                    let Some(id) = g.group_id() else { continue };
                    let key = if filter == "group-id" {
                        Some(id.to_owned())
                    } else {
                        g.tags()
                            .iter()
                            .find(|t| t.key() == Some("Name"))
                            .and_then(|t| t.value())
                            .map(str::to_owned)
                    };
                    if let Some(k) = key {
                        out.entry(k).or_default().push(id.to_owned());
                    }
                }
                token = resp.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        for v in out.values_mut() {
            v.sort();
            v.dedup();
        }
        Ok(out)
    }

    /// Issued ACM certificates and the names they cover.
    pub async fn certificates(aws: &AwsClients) -> Result<Vec<CertInfo>, AwsError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = aws
                .acm
                .list_certificates()
                .certificate_statuses(aws_sdk_acm::types::CertificateStatus::Issued)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| AwsError::call("ListCertificates", e))?;
            for c in resp.certificate_summary_list() {
                let Some(arn) = c.certificate_arn() else {
                    continue;
                };
                let mut domains: Vec<String> =
                    c.domain_name().into_iter().map(str::to_owned).collect();
                domains.extend(c.subject_alternative_name_summaries().iter().cloned());
                if c.has_additional_subject_alternative_names() == Some(true) || domains.len() <= 1
                {
                    let d = aws
                        .acm
                        .describe_certificate()
                        .certificate_arn(arn)
                        .send()
                        .await
                        .map_err(|e| AwsError::call("DescribeCertificate", e))?;
                    if let Some(cert) = d.certificate() {
                        domains.extend(cert.subject_alternative_names().iter().cloned());
                    }
                }
                domains.sort();
                domains.dedup();
                out.push(CertInfo {
                    arn: arn.to_owned(),
                    domains,
                });
            }
            token = resp.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// The VPC of the cluster's subnets, when no VPC ID is configured.
    pub async fn cluster_vpc(aws: &AwsClients, cluster: &str) -> Result<String, AwsError> {
        let resp = aws
            .ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag-key")
                    .values(format!("kubernetes.io/cluster/{cluster}"))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeSubnets", e))?;
        resp.subnets()
            .iter()
            .find_map(|s| s.vpc_id())
            .map(str::to_owned)
            .ok_or_else(|| {
                AwsError::Missing(format!(
                    "no subnet tagged kubernetes.io/cluster/{cluster}; set --alb-vpc-id"
                ))
            })
    }

    // ---------- observe ----------

    /// What we own of the group in AWS. `Depth::Resources` skips listeners and rules (the
    /// re-read after an apply needs ARNs and DNS names for status, not the rules again).
    pub async fn observe(
        &self,
        known: &Known,
        desired: &GroupModel,
        depth: Depth,
    ) -> Result<Observed, AwsError> {
        let mut observed = Observed::default();

        // Load balancers: by the ARNs we recorded, then by name for desired ones not found.
        let mut lbs = self.describe_lbs_by_arn(&known.load_balancer_arns).await?;
        let missing: Vec<String> = desired
            .load_balancers
            .iter()
            .map(|l| l.name.clone())
            .filter(|n| !lbs.iter().any(|l| l.load_balancer_name() == Some(n)))
            .collect();
        for name in missing {
            match self
                .aws
                .elbv2
                .describe_load_balancers()
                .names(&name)
                .send()
                .await
            {
                Ok(r) => lbs.extend(r.load_balancers().iter().cloned()),
                Err(e) => {
                    let e = AwsError::call("DescribeLoadBalancers", e);
                    if !e.not_found() {
                        return Err(e);
                    }
                }
            }
        }
        let mut tgs = self.describe_tgs_by_arn(&known.target_group_arns).await?;
        let missing: Vec<String> = desired
            .target_groups
            .iter()
            .map(|t| t.name.clone())
            .filter(|n| !tgs.iter().any(|t| t.target_group_name() == Some(n)))
            .collect();
        if !missing.is_empty() {
            // One call per name: a batch fails whole when any one is missing.
            for name in missing {
                match self
                    .aws
                    .elbv2
                    .describe_target_groups()
                    .names(&name)
                    .send()
                    .await
                {
                    Ok(r) => tgs.extend(r.target_groups().iter().cloned()),
                    Err(e) => {
                        let e = AwsError::call("DescribeTargetGroups", e);
                        if !e.not_found() {
                            return Err(e);
                        }
                    }
                }
            }
        }

        let arns: Vec<String> = lbs
            .iter()
            .filter_map(|l| l.load_balancer_arn())
            .chain(tgs.iter().filter_map(|t| t.target_group_arn()))
            .map(str::to_owned)
            .collect();
        let tags = self.tags(&arns).await?;

        for lb in &lbs {
            let arn = lb.load_balancer_arn().unwrap_or_default().to_owned();
            let name = lb.load_balancer_name().unwrap_or_default().to_owned();
            let lb_tags = tags.get(&arn).cloned().unwrap_or_default();
            if !owned(&lb_tags, self.cluster, &desired.stack) {
                // Not ours (or not tagged): keep it out of the plan entirely.
                observed.load_balancers.push(self.bare_lb(lb, lb_tags));
                continue;
            }
            let wanted = desired.load_balancers.iter().find(|d| d.name == name);
            let attributes = match wanted {
                Some(d) if !d.attributes.is_empty() => {
                    let r = self
                        .aws
                        .elbv2
                        .describe_load_balancer_attributes()
                        .load_balancer_arn(&arn)
                        .send()
                        .await
                        .map_err(|e| AwsError::call("DescribeLoadBalancerAttributes", e))?;
                    r.attributes()
                        .iter()
                        .filter_map(|a| {
                            Some((
                                a.key()?.to_owned(),
                                a.value().unwrap_or_default().to_owned(),
                            ))
                        })
                        .filter(|(k, _)| d.attributes.contains_key(k))
                        .collect()
                }
                _ => BTreeMap::new(),
            };
            let mut o = self.bare_lb(lb, lb_tags);
            o.attributes = attributes;
            if depth == Depth::Full {
                o.listeners = self.listeners(&arn).await?;
            }
            observed.load_balancers.push(o);
        }

        for tg in &tgs {
            let arn = tg.target_group_arn().unwrap_or_default().to_owned();
            let name = tg.target_group_name().unwrap_or_default().to_owned();
            let t_tags = tags.get(&arn).cloned().unwrap_or_default();
            let wanted = desired.target_groups.iter().find(|d| d.name == name);
            let attributes = match wanted {
                Some(d)
                    if !d.attributes.is_empty() && owned(&t_tags, self.cluster, &desired.stack) =>
                {
                    let r = self
                        .aws
                        .elbv2
                        .describe_target_group_attributes()
                        .target_group_arn(&arn)
                        .send()
                        .await
                        .map_err(|e| AwsError::call("DescribeTargetGroupAttributes", e))?;
                    r.attributes()
                        .iter()
                        .filter_map(|a| {
                            Some((
                                a.key()?.to_owned(),
                                a.value().unwrap_or_default().to_owned(),
                            ))
                        })
                        .filter(|(k, _)| d.attributes.contains_key(k))
                        .collect()
                }
                _ => BTreeMap::new(),
            };
            let hc_proto = tg
                .health_check_protocol()
                .map(|p| p.as_str())
                .and_then(Protocol::parse)
                .unwrap_or(Protocol::Http);
            observed.target_groups.push(ObservedTargetGroup {
                arn,
                name,
                protocol: tg
                    .protocol()
                    .map(|p| p.as_str())
                    .and_then(Protocol::parse)
                    .unwrap_or(Protocol::Http),
                protocol_version: tg.protocol_version().unwrap_or("HTTP1").to_owned(),
                port: tg.port().unwrap_or_default(),
                target_type: tg
                    .target_type()
                    .map(|t| t.as_str())
                    .and_then(TargetType::parse)
                    .unwrap_or(TargetType::Instance),
                health_check: HealthCheck {
                    path: tg.health_check_path().unwrap_or("/").to_owned(),
                    port: tg.health_check_port().unwrap_or("traffic-port").to_owned(),
                    protocol: hc_proto,
                    interval_seconds: tg.health_check_interval_seconds().unwrap_or(30),
                    timeout_seconds: tg.health_check_timeout_seconds().unwrap_or(5),
                    healthy_threshold: tg.healthy_threshold_count().unwrap_or(5),
                    unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or(2),
                    success_codes: tg
                        .matcher()
                        .and_then(|m| m.http_code().or(m.grpc_code()))
                        .unwrap_or("200")
                        .to_owned(),
                },
                attributes,
                tags: t_tags,
            });
        }

        observed.security_groups = self.security_groups(known, desired).await?;
        Ok(observed)
    }

    fn bare_lb(&self, lb: &elb::types::LoadBalancer, tags: Tags) -> ObservedLoadBalancer {
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
            scheme: match lb.scheme() {
                Some(LoadBalancerSchemeEnum::InternetFacing) => Scheme::InternetFacing,
                _ => Scheme::Internal,
            },
            ip_address_type: lb
                .ip_address_type()
                .map(|t| t.as_str())
                .and_then(IpAddressType::parse)
                .unwrap_or(IpAddressType::Ipv4),
            subnets,
            security_groups,
            attributes: BTreeMap::new(),
            tags,
            listeners: Vec::new(),
        }
    }

    async fn describe_lbs_by_arn(
        &self,
        arns: &[String],
    ) -> Result<Vec<elb::types::LoadBalancer>, AwsError> {
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .aws
            .elbv2
            .describe_load_balancers()
            .set_load_balancer_arns(Some(arns.to_vec()))
            .send()
            .await
        {
            Ok(r) => Ok(r.load_balancers().to_vec()),
            Err(e) => {
                let e = AwsError::call("DescribeLoadBalancers", e);
                if !e.not_found() || arns.len() == 1 {
                    return if e.not_found() {
                        Ok(Vec::new())
                    } else {
                        Err(e)
                    };
                }
                // Some recorded ARN is gone: find out which, one by one.
                let mut out = Vec::new();
                for arn in arns {
                    out.extend(
                        Box::pin(self.describe_lbs_by_arn(std::slice::from_ref(arn))).await?,
                    );
                }
                Ok(out)
            }
        }
    }

    async fn describe_tgs_by_arn(
        &self,
        arns: &[String],
    ) -> Result<Vec<elb::types::TargetGroup>, AwsError> {
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .aws
            .elbv2
            .describe_target_groups()
            .set_target_group_arns(Some(arns.to_vec()))
            .send()
            .await
        {
            Ok(r) => Ok(r.target_groups().to_vec()),
            Err(e) => {
                let e = AwsError::call("DescribeTargetGroups", e);
                if !e.not_found() || arns.len() == 1 {
                    return if e.not_found() {
                        Ok(Vec::new())
                    } else {
                        Err(e)
                    };
                }
                let mut out = Vec::new();
                for arn in arns {
                    out.extend(
                        Box::pin(self.describe_tgs_by_arn(std::slice::from_ref(arn))).await?,
                    );
                }
                Ok(out)
            }
        }
    }

    /// DescribeTags on our ARNs only, 20 per call.
    async fn tags(&self, arns: &[String]) -> Result<HashMap<String, Tags>, AwsError> {
        let mut out = HashMap::new();
        for chunk in arns.chunks(20) {
            let r = self
                .aws
                .elbv2
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::call("DescribeTags", e))?;
            for d in r.tag_descriptions() {
                let Some(arn) = d.resource_arn() else {
                    continue;
                };
                out.insert(
                    arn.to_owned(),
                    d.tags()
                        .iter()
                        .filter_map(|t| {
                            Some((
                                t.key()?.to_owned(),
                                t.value().unwrap_or_default().to_owned(),
                            ))
                        })
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    async fn listeners(&self, lb_arn: &str) -> Result<Vec<ObservedListener>, AwsError> {
        let mut out = Vec::new();
        let mut marker = None;
        let mut listeners = Vec::new();
        loop {
            let r = self
                .aws
                .elbv2
                .describe_listeners()
                .load_balancer_arn(lb_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| AwsError::call("DescribeListeners", e))?;
            listeners.extend(r.listeners().iter().cloned());
            marker = r.next_marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        for l in listeners {
            let arn = l.listener_arn().unwrap_or_default().to_owned();
            let port = l.port().unwrap_or_default();
            let mut certificates: Vec<String> = l
                .certificates()
                .iter()
                .filter_map(|c| c.certificate_arn())
                .map(str::to_owned)
                .collect();
            // Every HTTPS listener: extra certificates we no longer want must be seen to be
            // removed.
            if l.protocol() == Some(&elb::types::ProtocolEnum::Https) {
                let r = self
                    .aws
                    .elbv2
                    .describe_listener_certificates()
                    .listener_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("DescribeListenerCertificates", e))?;
                for c in r.certificates() {
                    if c.is_default() != Some(true)
                        && let Some(a) = c.certificate_arn()
                        && !certificates.iter().any(|x| x == a)
                    {
                        certificates.push(a.to_owned());
                    }
                }
            }
            let mut rules = Vec::new();
            let mut marker = None;
            loop {
                let r = self
                    .aws
                    .elbv2
                    .describe_rules()
                    .listener_arn(&arn)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("DescribeRules", e))?;
                for rule in r.rules() {
                    if rule.is_default() == Some(true) {
                        continue;
                    }
                    let Some(priority) = rule.priority().and_then(|p| p.parse().ok()) else {
                        continue;
                    };
                    let mut conditions: Vec<RuleCondition> = rule
                        .conditions()
                        .iter()
                        .filter_map(model_condition)
                        .collect();
                    conditions.sort();
                    rules.push(ObservedRule {
                        arn: rule.rule_arn().unwrap_or_default().to_owned(),
                        priority,
                        conditions,
                        action: rule
                            .actions()
                            .first()
                            .map(model_action)
                            .unwrap_or_else(Action::not_found),
                    });
                }
                marker = r.next_marker().map(str::to_owned);
                if marker.is_none() {
                    break;
                }
            }
            let protocol = l
                .protocol()
                .map(|p| p.as_str())
                .and_then(Protocol::parse)
                .unwrap_or(Protocol::Http);
            out.push(ObservedListener {
                arn,
                port,
                protocol,
                certificates,
                // Some implementations report a policy on HTTP listeners too; it means nothing there.
                ssl_policy: l
                    .ssl_policy()
                    .filter(|_| protocol == Protocol::Https)
                    .map(str::to_owned),
                default_action: l
                    .default_actions()
                    .first()
                    .map(model_action)
                    .unwrap_or_else(Action::not_found),
                rules,
            });
        }
        Ok(out)
    }

    async fn security_groups(
        &self,
        known: &Known,
        desired: &GroupModel,
    ) -> Result<Vec<ObservedSecurityGroup>, AwsError> {
        let mut found = Vec::new();
        if !known.security_group_ids.is_empty() {
            match self
                .aws
                .ec2
                .describe_security_groups()
                .set_group_ids(Some(known.security_group_ids.clone()))
                .send()
                .await
            {
                Ok(r) => found.extend(r.security_groups().iter().cloned()),
                Err(e) => {
                    let e = AwsError::call("DescribeSecurityGroups", e);
                    if !e.not_found() {
                        return Err(e);
                    }
                    for id in &known.security_group_ids {
                        match self
                            .aws
                            .ec2
                            .describe_security_groups()
                            .group_ids(id)
                            .send()
                            .await
                        {
                            Ok(r) => found.extend(r.security_groups().iter().cloned()),
                            Err(e) => {
                                let e = AwsError::call("DescribeSecurityGroups", e);
                                if !e.not_found() {
                                    return Err(e);
                                }
                            }
                        }
                    }
                }
            }
        }
        let missing: Vec<String> = desired
            .security_groups
            .iter()
            .map(|s| s.name.clone())
            .filter(|n| !found.iter().any(|g| g.group_name() == Some(n)))
            .collect();
        if !missing.is_empty() {
            let r = self
                .aws
                .ec2
                .describe_security_groups()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("vpc-id")
                        .values(self.vpc_id)
                        .build(),
                )
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("group-name")
                        .set_values(Some(missing))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
            found.extend(r.security_groups().iter().cloned());
        }
        let mut out: Vec<ObservedSecurityGroup> = Vec::new();
        for g in found {
            let Some(id) = g.group_id() else { continue };
            if out.iter().any(|o| o.id == id) {
                continue;
            }
            let mut ingress = BTreeSet::new();
            for p in g.ip_permissions() {
                if p.ip_protocol() != Some("tcp") {
                    continue;
                }
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
                        });
                    }
                }
                for r in p.ipv6_ranges() {
                    if let Some(c) = r.cidr_ipv6() {
                        ingress.insert(SgRule {
                            port: from,
                            cidr: c.to_owned(),
                        });
                    }
                }
            }
            out.push(ObservedSecurityGroup {
                id: id.to_owned(),
                name: g.group_name().unwrap_or_default().to_owned(),
                ingress,
                tags: g
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        ))
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    // ---------- apply ----------

    /// Runs `steps` in order. Stops at the first failure: later steps depend on earlier ones.
    pub async fn apply(&self, steps: &[Step], observed: &Observed) -> Result<(), AwsError> {
        let mut sgs: HashMap<String, String> = observed
            .security_groups
            .iter()
            .map(|s| (s.name.clone(), s.id.clone()))
            .collect();
        let mut tgs: HashMap<String, String> = observed
            .target_groups
            .iter()
            .map(|t| (t.name.clone(), t.arn.clone()))
            .collect();
        let mut lbs: HashMap<String, String> = observed
            .load_balancers
            .iter()
            .map(|l| (l.name.clone(), l.arn.clone()))
            .collect();
        let mut listeners: HashMap<(String, i32), String> = observed
            .load_balancers
            .iter()
            .flat_map(|lb| {
                lb.listeners
                    .iter()
                    .map(move |l| ((lb.name.clone(), l.port), l.arn.clone()))
            })
            .collect();
        let lookup = |map: &HashMap<String, String>, k: &str, what: &str| {
            map.get(k)
                .cloned()
                .ok_or_else(|| AwsError::Missing(format!("{what} {k} was not created")))
        };
        // A security group is one of ours (by name) or one named by ID in the
        // `security-groups` annotation.
        let sg_id = |map: &HashMap<String, String>, k: &str| match map.get(k) {
            Some(id) => Ok(id.clone()),
            None if k.starts_with("sg-") => Ok(k.to_owned()),
            None => Err(AwsError::Missing(format!(
                "security group {k} was not created"
            ))),
        };

        for step in steps {
            tracing::info!(step = %step.describe(), "applying");
            match step {
                Step::CreateSecurityGroup {
                    name,
                    description,
                    tags,
                } => {
                    let r = self
                        .aws
                        .ec2
                        .create_security_group()
                        .group_name(name)
                        .description(description)
                        .vpc_id(self.vpc_id)
                        .tag_specifications(
                            aws_sdk_ec2::types::TagSpecification::builder()
                                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                                .set_tags(Some(ec2_tags(tags)))
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateSecurityGroup", e))?;
                    sgs.insert(name.clone(), r.group_id().unwrap_or_default().to_owned());
                }
                Step::AuthorizeIngress { group, rules } => {
                    let id = lookup(&sgs, group, "security group")?;
                    let perms = ip_permissions(rules);
                    self.aws
                        .ec2
                        .authorize_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(perms))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("AuthorizeSecurityGroupIngress", e))?;
                }
                Step::RevokeIngress { id, rules } => {
                    let perms = ip_permissions(rules);
                    self.aws
                        .ec2
                        .revoke_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(perms))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("RevokeSecurityGroupIngress", e))?;
                }
                Step::TagSecurityGroup { id, tags } => {
                    self.aws
                        .ec2
                        .create_tags()
                        .resources(id)
                        .set_tags(Some(ec2_tags(tags)))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateTags", e))?;
                }
                Step::UntagSecurityGroup { id, keys } => {
                    self.aws
                        .ec2
                        .delete_tags()
                        .resources(id)
                        .set_tags(Some(
                            keys.iter()
                                .map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build())
                                .collect(),
                        ))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("DeleteTags", e))?;
                }
                Step::DeleteSecurityGroup { id } => {
                    if let Err(e) = self
                        .aws
                        .ec2
                        .delete_security_group()
                        .group_id(id)
                        .send()
                        .await
                    {
                        let e = AwsError::call("DeleteSecurityGroup", e);
                        match e.code() {
                            Some("DependencyViolation") => {
                                return Err(AwsError::DependencyViolation(id.clone()));
                            }
                            Some(c) if c.contains("NotFound") => {}
                            _ => return Err(e),
                        }
                    }
                }
                Step::CreateTargetGroup(tg) => {
                    let r = self
                        .aws
                        .elbv2
                        .create_target_group()
                        .name(&tg.name)
                        .protocol(protocol(tg.protocol))
                        .protocol_version(&tg.protocol_version)
                        .port(tg.port)
                        .vpc_id(self.vpc_id)
                        .target_type(TargetTypeEnum::from(tg.target_type.as_str()))
                        .health_check_path(&tg.health_check.path)
                        .health_check_port(&tg.health_check.port)
                        .health_check_protocol(protocol(tg.health_check.protocol))
                        .health_check_interval_seconds(tg.health_check.interval_seconds)
                        .health_check_timeout_seconds(tg.health_check.timeout_seconds)
                        .healthy_threshold_count(tg.health_check.healthy_threshold)
                        .unhealthy_threshold_count(tg.health_check.unhealthy_threshold)
                        .matcher(
                            Matcher::builder()
                                .http_code(&tg.health_check.success_codes)
                                .build(),
                        )
                        .set_tags(Some(elb_tags(&tg.tags)))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateTargetGroup", e))?;
                    let arn = r
                        .target_groups()
                        .first()
                        .and_then(|t| t.target_group_arn())
                        .unwrap_or_default()
                        .to_owned();
                    if !tg.attributes.is_empty() {
                        self.tg_attributes(&arn, &tg.attributes).await?;
                    }
                    tgs.insert(tg.name.clone(), arn);
                }
                Step::ModifyTargetGroup {
                    arn,
                    health_check: h,
                } => {
                    self.aws
                        .elbv2
                        .modify_target_group()
                        .target_group_arn(arn)
                        .health_check_path(&h.path)
                        .health_check_port(&h.port)
                        .health_check_protocol(protocol(h.protocol))
                        .health_check_interval_seconds(h.interval_seconds)
                        .health_check_timeout_seconds(h.timeout_seconds)
                        .healthy_threshold_count(h.healthy_threshold)
                        .unhealthy_threshold_count(h.unhealthy_threshold)
                        .matcher(Matcher::builder().http_code(&h.success_codes).build())
                        .send()
                        .await
                        .map_err(|e| AwsError::call("ModifyTargetGroup", e))?;
                }
                Step::SetTargetGroupAttributes { arn, attributes } => {
                    self.tg_attributes(arn, attributes).await?
                }
                Step::TagElb { arn, tags } => {
                    self.aws
                        .elbv2
                        .add_tags()
                        .resource_arns(arn)
                        .set_tags(Some(elb_tags(tags)))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("AddTags", e))?;
                }
                Step::UntagElb { arn, keys } => {
                    self.aws
                        .elbv2
                        .remove_tags()
                        .resource_arns(arn)
                        .set_tag_keys(Some(keys.clone()))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("RemoveTags", e))?;
                }
                Step::DeleteTargetGroup { arn } => {
                    if let Err(e) = self
                        .aws
                        .elbv2
                        .delete_target_group()
                        .target_group_arn(arn)
                        .send()
                        .await
                    {
                        let e = AwsError::call("DeleteTargetGroup", e);
                        if !e.not_found() {
                            return Err(e);
                        }
                    }
                }
                Step::CreateLoadBalancer {
                    name,
                    scheme,
                    ip_address_type,
                    subnets,
                    security_groups,
                    attributes,
                    tags,
                } => {
                    let sg_ids = security_groups
                        .iter()
                        .map(|n| sg_id(&sgs, n))
                        .collect::<Result<Vec<_>, _>>()?;
                    let r = self
                        .aws
                        .elbv2
                        .create_load_balancer()
                        .name(name)
                        .r#type(LoadBalancerTypeEnum::Application)
                        .scheme(LoadBalancerSchemeEnum::from(scheme.as_str()))
                        .ip_address_type(elb::types::IpAddressType::from(ip_address_type.as_str()))
                        .set_subnets(Some(subnets.clone()))
                        .set_security_groups(Some(sg_ids))
                        .set_tags(Some(elb_tags(tags)))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateLoadBalancer", e))?;
                    let arn = r
                        .load_balancers()
                        .first()
                        .and_then(|l| l.load_balancer_arn())
                        .unwrap_or_default()
                        .to_owned();
                    if !attributes.is_empty() {
                        self.lb_attributes(&arn, attributes).await?;
                    }
                    lbs.insert(name.clone(), arn);
                }
                Step::SetSubnets { arn, subnets } => {
                    self.aws
                        .elbv2
                        .set_subnets()
                        .load_balancer_arn(arn)
                        .set_subnets(Some(subnets.clone()))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("SetSubnets", e))?;
                }
                Step::SetSecurityGroups {
                    arn,
                    security_groups,
                } => {
                    let ids = security_groups
                        .iter()
                        .map(|n| sg_id(&sgs, n))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.aws
                        .elbv2
                        .set_security_groups()
                        .load_balancer_arn(arn)
                        .set_security_groups(Some(ids))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("SetSecurityGroups", e))?;
                }
                Step::SetIpAddressType {
                    arn,
                    ip_address_type,
                } => {
                    self.aws
                        .elbv2
                        .set_ip_address_type()
                        .load_balancer_arn(arn)
                        .ip_address_type(elb::types::IpAddressType::from(ip_address_type.as_str()))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("SetIpAddressType", e))?;
                }
                Step::SetLoadBalancerAttributes { arn, attributes } => {
                    self.lb_attributes(arn, attributes).await?
                }
                Step::DeleteLoadBalancer { arn } => {
                    if let Err(e) = self
                        .aws
                        .elbv2
                        .delete_load_balancer()
                        .load_balancer_arn(arn)
                        .send()
                        .await
                    {
                        let e = AwsError::call("DeleteLoadBalancer", e);
                        if !e.not_found() {
                            return Err(e);
                        }
                    }
                }
                Step::CreateListener {
                    load_balancer,
                    listener,
                } => {
                    let lb_arn = lookup(&lbs, load_balancer, "load balancer")?;
                    let r = self
                        .aws
                        .elbv2
                        .create_listener()
                        .load_balancer_arn(lb_arn)
                        .port(listener.port)
                        .protocol(protocol(listener.protocol))
                        .set_certificates(listener.certificates.first().map(|c| {
                            vec![
                                elb::types::Certificate::builder()
                                    .certificate_arn(c)
                                    .build(),
                            ]
                        }))
                        .set_ssl_policy(listener.ssl_policy.clone())
                        .default_actions(sdk_action(&listener.default_action, &tgs)?)
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateListener", e))?;
                    let arn = r
                        .listeners()
                        .first()
                        .and_then(|l| l.listener_arn())
                        .unwrap_or_default()
                        .to_owned();
                    self.extra_certificates(&arn, &listener.certificates)
                        .await?;
                    listeners.insert((load_balancer.clone(), listener.port), arn);
                }
                Step::ModifyListener {
                    arn,
                    protocol: p,
                    certificates,
                    ssl_policy,
                    default_action,
                } => {
                    self.aws
                        .elbv2
                        .modify_listener()
                        .listener_arn(arn)
                        .protocol(protocol(*p))
                        .set_certificates(certificates.first().map(|c| {
                            vec![
                                elb::types::Certificate::builder()
                                    .certificate_arn(c)
                                    .build(),
                            ]
                        }))
                        .set_ssl_policy(ssl_policy.clone())
                        .default_actions(sdk_action(default_action, &tgs)?)
                        .send()
                        .await
                        .map_err(|e| AwsError::call("ModifyListener", e))?;
                }
                Step::AddListenerCertificates { arn, certificates } => {
                    self.add_certificates(arn, certificates).await?
                }
                Step::RemoveListenerCertificates { arn, certificates } => {
                    self.aws
                        .elbv2
                        .remove_listener_certificates()
                        .listener_arn(arn)
                        .set_certificates(Some(sdk_certificates(certificates)))
                        .send()
                        .await
                        .map_err(|e| AwsError::call("RemoveListenerCertificates", e))?;
                }
                Step::DeleteListener { arn } => {
                    if let Err(e) = self
                        .aws
                        .elbv2
                        .delete_listener()
                        .listener_arn(arn)
                        .send()
                        .await
                    {
                        let e = AwsError::call("DeleteListener", e);
                        if !e.not_found() {
                            return Err(e);
                        }
                    }
                }
                Step::CreateRule {
                    load_balancer,
                    port,
                    rule,
                } => {
                    let listener = listeners
                        .get(&(load_balancer.clone(), *port))
                        .cloned()
                        .ok_or_else(|| {
                            AwsError::Missing(format!(
                                "listener {load_balancer}:{port} was not created"
                            ))
                        })?;
                    self.aws
                        .elbv2
                        .create_rule()
                        .listener_arn(listener)
                        .priority(rule.priority)
                        .set_conditions(Some(rule.conditions.iter().map(sdk_condition).collect()))
                        .actions(sdk_action(&rule.action, &tgs)?)
                        .send()
                        .await
                        .map_err(|e| AwsError::call("CreateRule", e))?;
                }
                Step::ModifyRule {
                    arn,
                    conditions,
                    action,
                } => {
                    self.aws
                        .elbv2
                        .modify_rule()
                        .rule_arn(arn)
                        .set_conditions(Some(conditions.iter().map(sdk_condition).collect()))
                        .actions(sdk_action(action, &tgs)?)
                        .send()
                        .await
                        .map_err(|e| AwsError::call("ModifyRule", e))?;
                }
                Step::DeleteRule { arn } => {
                    if let Err(e) = self.aws.elbv2.delete_rule().rule_arn(arn).send().await {
                        let e = AwsError::call("DeleteRule", e);
                        if !e.not_found() {
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn extra_certificates(
        &self,
        listener: &str,
        certificates: &[String],
    ) -> Result<(), AwsError> {
        if certificates.len() <= 1 {
            return Ok(());
        }
        self.add_certificates(listener, &certificates[1..]).await
    }

    /// Adds non-default (SNI) certificates to a listener.
    async fn add_certificates(&self, listener: &str, arns: &[String]) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .add_listener_certificates()
            .listener_arn(listener)
            .set_certificates(Some(sdk_certificates(arns)))
            .send()
            .await
            .map_err(|e| AwsError::call("AddListenerCertificates", e))?;
        Ok(())
    }

    async fn tg_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .set_attributes(Some(
                attributes
                    .iter()
                    .map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| AwsError::call("ModifyTargetGroupAttributes", e))?;
        Ok(())
    }

    async fn lb_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .modify_load_balancer_attributes()
            .load_balancer_arn(arn)
            .set_attributes(Some(
                attributes
                    .iter()
                    .map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| AwsError::call("ModifyLoadBalancerAttributes", e))?;
        Ok(())
    }
}

/// One TCP permission per rule, to an IPv4 or IPv6 range (the same shape authorize and revoke take).
fn ip_permissions(rules: &[SgRule]) -> Vec<aws_sdk_ec2::types::IpPermission> {
    rules
        .iter()
        .map(|r| {
            let p = aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(r.port)
                .to_port(r.port);
            if r.cidr.contains(':') {
                p.ipv6_ranges(
                    aws_sdk_ec2::types::Ipv6Range::builder()
                        .cidr_ipv6(&r.cidr)
                        .build(),
                )
                .build()
            } else {
                p.ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip(&r.cidr)
                        .build(),
                )
                .build()
            }
        })
        .collect()
}

fn sdk_certificates(arns: &[String]) -> Vec<elb::types::Certificate> {
    arns.iter()
        .map(|c| {
            elb::types::Certificate::builder()
                .certificate_arn(c)
                .build()
        })
        .collect()
}
