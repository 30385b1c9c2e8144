//! The thin AWS adapter for target registration and security group rules: SDK types in,
//! model types out.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification, UserIdGroupPair,
};
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::desired::Target;
use super::plan::{IngressRule, Observed, OwnedRule, Peer, TargetGroupInfo, TargetState};
// The binding (`namespace/name`) that owns a security group rule, and the cluster.
use crate::aws::tags::{
    CLUSTER as CLUSTER_TAG, RULE_OWNER_PREFIX, TARGET_GROUP_BINDING as LEGACY_OWNER_TAG,
    rule_owner_key,
};
use crate::aws::{AwsClients, errors};

#[derive(Clone, Debug, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct AwsCallError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
}

impl AwsCallError {
    /// The resource the call named does not exist (a target group deleted under us).
    pub fn not_found(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| errors::code_kind(c) == errors::ErrorKind::NotFound)
    }
}

fn err<E>(operation: &'static str, e: SdkError<E, HttpResponse>) -> AwsCallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    AwsCallError {
        operation,
        code: errors::code(&e).map(str::to_string),
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// What the TargetGroupBinding reconciler needs from AWS: the SDK adapter ([`AwsClients`]),
/// or a fake in the reconcile-level tests.
pub(crate) trait TargetsApi: Send + Sync + 'static {
    /// DescribeTargetGroups by name; `None` when it does not exist.
    fn describe_target_group_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<TargetGroupInfo>, AwsCallError>> + Send;
    /// DescribeTargetGroups for many ARNs at once; the ones that do not exist (or are
    /// malformed) are not in the answer.
    fn describe_target_groups(
        &self,
        arns: Vec<String>,
    ) -> impl Future<Output = Result<HashMap<String, TargetGroupInfo>, AwsCallError>> + Send;
    /// The deregistration delay of the target group, in seconds (300 when unset).
    fn deregistration_delay(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<u64, AwsCallError>> + Send;
    /// Every registration of the target group and its state.
    fn describe_target_health(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Observed, AwsCallError>> + Send;
    fn register(
        &self,
        arn: &str,
        targets: &[Target],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Targets already gone count as deregistered.
    fn deregister(
        &self,
        arn: &str,
        targets: &[Target],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The security groups of each instance.
    fn instance_security_groups(
        &self,
        instance_ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<String>>, AwsCallError>> + Send;
    /// The ingress rules of this cluster tagged as each owner's (binding `namespace/name`),
    /// for up to [`OWNERS_PER_CALL`] owners in one call; every owner asked for is in the map.
    fn owned_rules(
        &self,
        cluster: &str,
        owners: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Vec<OwnedRule>>, AwsCallError>> + Send;
    /// Adds one rule, tagged with the cluster and the owner; a rule of ours that exists
    /// already (another binding's) gets the owner's tag instead.
    fn authorize(
        &self,
        cluster: &str,
        owner: &str,
        rule: &IngressRule,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Removes rules by ID; rules or groups already gone count as removed.
    fn revoke(
        &self,
        group_id: &str,
        rule_ids: &[String],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Drops the owner's tags from rules other bindings still need.
    fn release(
        &self,
        owner: &str,
        rule_ids: &[String],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

impl TargetsApi for AwsClients {
    fn describe_target_group_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<TargetGroupInfo>, AwsCallError>> + Send {
        describe_target_group_named(self, name)
    }
    fn describe_target_groups(
        &self,
        arns: Vec<String>,
    ) -> impl Future<Output = Result<HashMap<String, TargetGroupInfo>, AwsCallError>> + Send {
        describe_target_groups(self, arns)
    }
    fn deregistration_delay(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<u64, AwsCallError>> + Send {
        deregistration_delay(self, arn)
    }
    fn describe_target_health(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Observed, AwsCallError>> + Send {
        describe_target_health(self, arn)
    }
    fn register(
        &self,
        arn: &str,
        targets: &[Target],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send {
        register(self, arn, targets)
    }
    fn deregister(
        &self,
        arn: &str,
        targets: &[Target],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send {
        deregister(self, arn, targets)
    }
    fn instance_security_groups(
        &self,
        instance_ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<String>>, AwsCallError>> + Send {
        instance_security_groups(self, instance_ids)
    }
    fn owned_rules(
        &self,
        cluster: &str,
        owners: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Vec<OwnedRule>>, AwsCallError>> + Send {
        owned_rules(self, cluster, owners)
    }
    fn authorize(
        &self,
        cluster: &str,
        owner: &str,
        rule: &IngressRule,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send {
        authorize(self, cluster, owner, rule)
    }
    fn revoke(
        &self,
        group_id: &str,
        rule_ids: &[String],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send {
        revoke(self, group_id, rule_ids)
    }
    fn release(
        &self,
        owner: &str,
        rule_ids: &[String],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send {
        release(self, owner, rule_ids)
    }
}

/// DescribeTargetGroups by name; `None` when it does not exist.
async fn describe_target_group_named(
    aws: &AwsClients,
    name: &str,
) -> Result<Option<TargetGroupInfo>, AwsCallError> {
    let req = aws.elbv2.describe_target_groups().names(name);
    match req.send().await {
        Ok(out) => Ok(out.target_groups().first().map(info)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_target_group_not_found_exception()) =>
        {
            Ok(None)
        }
        // A malformed ARN or name names no target group.
        Err(e) if errors::is_validation(&e) => Ok(None),
        Err(e) => Err(err("DescribeTargetGroups", e)),
    }
}

fn info(g: &aws_sdk_elasticloadbalancingv2::types::TargetGroup) -> TargetGroupInfo {
    TargetGroupInfo {
        arn: g.target_group_arn().unwrap_or_default().to_string(),
        vpc_id: g.vpc_id().map(str::to_string),
        target_type: g
            .target_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "instance".to_string()),
        ip_address_type: g.ip_address_type().map(|t| t.as_str().to_string()),
    }
}

/// DescribeTargetGroups by ARNs, batched; missing and malformed ARNs are left out.
async fn describe_target_groups(
    aws: &AwsClients,
    arns: Vec<String>,
) -> Result<HashMap<String, TargetGroupInfo>, AwsCallError> {
    let found = crate::aws::elbv2::target_groups_by_arn(&aws.elbv2, &arns, |e| {
        e.as_service_error()
            .is_some_and(|s| s.is_target_group_not_found_exception())
            || errors::is_validation(e)
    })
    .await
    .map_err(|e| err("DescribeTargetGroups", e))?;
    Ok(found.iter().map(info).map(|i| (i.arn.clone(), i)).collect())
}

/// Every registration of the target group and its state.
async fn describe_target_health(aws: &AwsClients, arn: &str) -> Result<Observed, AwsCallError> {
    let out = aws
        .elbv2
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| err("DescribeTargetHealth", e))?;
    let mut observed = Observed::new();
    for d in out.target_health_descriptions() {
        let Some(t) = d.target() else { continue };
        let Some(id) = t.id() else { continue };
        let state = d
            .target_health()
            .and_then(|h| h.state())
            .map(|s| TargetState::parse(s.as_str()))
            .unwrap_or(TargetState::Unavailable);
        observed.insert(
            Target {
                id: id.to_string(),
                port: t.port().unwrap_or_default(),
            },
            state,
        );
    }
    Ok(observed)
}

fn descriptions(targets: &[Target]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|t| TargetDescription::builder().id(&t.id).port(t.port).build())
        .collect()
}

async fn register(aws: &AwsClients, arn: &str, targets: &[Target]) -> Result<(), AwsCallError> {
    aws.elbv2
        .register_targets()
        .target_group_arn(arn)
        .set_targets(Some(descriptions(targets)))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| err("RegisterTargets", e))
}

async fn deregister(aws: &AwsClients, arn: &str, targets: &[Target]) -> Result<(), AwsCallError> {
    match aws
        .elbv2
        .deregister_targets()
        .target_group_arn(arn)
        .set_targets(Some(descriptions(targets)))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Already gone: the goal is reached.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_target_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(err("DeregisterTargets", e)),
    }
}

/// The deregistration delay of the target group, in seconds (300 when unset).
async fn deregistration_delay(aws: &AwsClients, arn: &str) -> Result<u64, AwsCallError> {
    let out = aws
        .elbv2
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| err("DescribeTargetGroupAttributes", e))?;
    Ok(out
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value()?.parse().ok())
        .unwrap_or(300))
}

/// The security groups of each instance (its primary interface's, as EC2 reports them).
async fn instance_security_groups(
    aws: &AwsClients,
    instance_ids: &[String],
) -> Result<BTreeMap<String, Vec<String>>, AwsCallError> {
    let mut out = BTreeMap::new();
    for chunk in instance_ids.chunks(100) {
        let resp = aws
            .ec2
            .describe_instances()
            .set_instance_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| err("DescribeInstances", e))?;
        for r in resp.reservations() {
            for i in r.instances() {
                let Some(id) = i.instance_id() else { continue };
                out.insert(
                    id.to_string(),
                    i.security_groups()
                        .iter()
                        .filter_map(|g| g.group_id().map(str::to_string))
                        .collect(),
                );
            }
        }
    }
    Ok(out)
}

/// Rules of this cluster carrying one of the owners' keys, or the one-owner tag of earlier
/// versions (matched by value afterwards).
fn owner_filters(cluster: &str, owners: &[String]) -> Vec<Filter> {
    let keys = owners.iter().map(|o| rule_owner_key(o));
    vec![
        Filter::builder()
            .set_values(Some(keys.chain([LEGACY_OWNER_TAG.to_string()]).collect()))
            .name("tag-key")
            .build(),
        Filter::builder()
            .name(format!("tag:{CLUSTER_TAG}"))
            .values(cluster)
            .build(),
    ]
}

/// Whether rule tags name `owner` (either form), and whether they name another owner too.
fn owned_by(tags: &[Tag], cluster: &str, owner: &str) -> (bool, bool) {
    let key = rule_owner_key(owner);
    let has = |k: &str, v: Option<&str>| {
        tags.iter()
            .any(|t| t.key() == Some(k) && v.is_none_or(|v| t.value() == Some(v)))
    };
    if !has(CLUSTER_TAG, Some(cluster)) {
        return (false, false);
    }
    let mine = has(&key, None) || has(LEGACY_OWNER_TAG, Some(owner));
    let others = tags.iter().any(|t| match t.key() {
        Some(k) if k.starts_with(RULE_OWNER_PREFIX) => k != key,
        Some(k) if k == LEGACY_OWNER_TAG => t.value() != Some(owner),
        _ => false,
    });
    (mine, others)
}

/// A described rule in our terms; `None` for egress or a peer we do not model.
fn ingress_rule(r: &aws_sdk_ec2::types::SecurityGroupRule) -> Option<(String, IngressRule)> {
    if r.is_egress() == Some(true) {
        return None;
    }
    let peer = if let Some(g) = r.referenced_group_info().and_then(|g| g.group_id()) {
        Peer::SecurityGroup(g.to_string())
    } else if let Some(c) = r.cidr_ipv4().or(r.cidr_ipv6()) {
        Peer::Cidr(c.to_string())
    } else {
        return None;
    };
    Some((
        r.security_group_rule_id()?.to_string(),
        IngressRule {
            group_id: r.group_id()?.to_string(),
            protocol: r.ip_protocol().unwrap_or("tcp").to_string(),
            from_port: r.from_port().unwrap_or(0),
            to_port: r.to_port().unwrap_or(65535),
            peer,
        },
    ))
}

/// How many owners' rules one DescribeSecurityGroupRules asks for: their keys and the
/// legacy key are the values of one `tag-key` filter (EC2 takes up to 200 values).
pub const OWNERS_PER_CALL: usize = 50;

/// The ingress rules of this cluster tagged as each owner's, found with one paginated
/// DescribeSecurityGroupRules filtered by the owners' tag keys (no group filter: on deletion
/// the binding's groups may no longer be known). A restart asks for every binding at once.
async fn owned_rules(
    aws: &AwsClients,
    cluster: &str,
    owners: &[String],
) -> Result<HashMap<String, Vec<OwnedRule>>, AwsCallError> {
    let mut out: HashMap<String, Vec<OwnedRule>> =
        owners.iter().map(|o| (o.clone(), Vec::new())).collect();
    if owners.is_empty() {
        return Ok(out);
    }
    let mut pages = aws
        .ec2
        .describe_security_group_rules()
        .set_filters(Some(owner_filters(cluster, owners)))
        .into_paginator()
        .send();
    while let Some(resp) = pages.next().await {
        let resp = resp.map_err(|e| err("DescribeSecurityGroupRules", e))?;
        for r in resp.security_group_rules() {
            let Some((rule_id, rule)) = ingress_rule(r) else {
                continue;
            };
            for (owner, rules) in out.iter_mut() {
                // Defence in depth: only rules that really carry our tags.
                let (mine, others) = owned_by(r.tags(), cluster, owner);
                if mine {
                    rules.push(OwnedRule {
                        rule_id: rule_id.clone(),
                        rule: rule.clone(),
                        shared: others,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Adds one rule, tagged with the cluster and the owning binding.
async fn authorize(
    aws: &AwsClients,
    cluster: &str,
    owner: &str,
    rule: &IngressRule,
) -> Result<(), AwsCallError> {
    // An equal rule may be there already: looking first saves a write that would fail.
    if join(aws, cluster, owner, rule).await? {
        return Ok(());
    }
    let mut perm = IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .from_port(rule.from_port)
        .to_port(rule.to_port);
    perm = match &rule.peer {
        Peer::SecurityGroup(g) => {
            perm.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build())
        }
        Peer::Cidr(c) if c.contains(':') => {
            perm.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build())
        }
        Peer::Cidr(c) => perm.ip_ranges(IpRange::builder().cidr_ip(c).build()),
    };
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::SecurityGroupRule)
        .tags(
            Tag::builder()
                .key(rule_owner_key(owner))
                .value(owner)
                .build(),
        )
        .tags(Tag::builder().key(CLUSTER_TAG).value(cluster).build())
        .build();
    match aws
        .ec2
        .authorize_security_group_ingress()
        .group_id(&rule.group_id)
        .ip_permissions(perm.build())
        .tag_specifications(tags)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // The same permission exists. Another binding's (tagged for this cluster): this one
        // needs it too, and says so with its own owner tag. Untagged (someone else's): it
        // already allows the traffic, and it is not ours to adopt or remove.
        // Another binding authorized it a moment ago.
        Err(e) if errors::has_code(&e, &["InvalidPermission.Duplicate"]) => {
            join(aws, cluster, owner, rule).await.map(|_| ())
        }
        Err(e) => Err(err("AuthorizeSecurityGroupIngress", e)),
    }
}

/// Whether a rule equal to `rule` exists on its group; one of this cluster's (another
/// binding's) gets the owner's tag too, so it stays while either needs it. One that is not
/// (someone else's, such as aws-load-balancer-controller's untagged
/// `elbv2.k8s.aws/targetGroupBinding=shared` rule) already allows the traffic and is not
/// ours to tag or remove.
async fn join(
    aws: &AwsClients,
    cluster: &str,
    owner: &str,
    rule: &IngressRule,
) -> Result<bool, AwsCallError> {
    let found = aws
        .ec2
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .values(&rule.group_id)
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| err("DescribeSecurityGroupRules", e))?;
    let Some((id, tags)) = found.iter().find_map(|r| {
        let (id, got) = ingress_rule(r)?;
        (got == *rule).then_some((id, r.tags()))
    }) else {
        return Ok(false);
    };
    let ours = tags
        .iter()
        .any(|t| t.key() == Some(CLUSTER_TAG) && t.value() == Some(cluster));
    if !ours {
        return Ok(true);
    }
    aws.ec2
        .create_tags()
        .resources(id)
        .tags(
            Tag::builder()
                .key(rule_owner_key(owner))
                .value(owner)
                .build(),
        )
        .send()
        .await
        .map_err(|e| err("CreateTags", e))?;
    Ok(true)
}

/// Drops the owner's tags (either form) from rules other bindings still need.
async fn release(aws: &AwsClients, owner: &str, rule_ids: &[String]) -> Result<(), AwsCallError> {
    if rule_ids.is_empty() {
        return Ok(());
    }
    let r = aws
        .ec2
        .delete_tags()
        .set_resources(Some(rule_ids.to_vec()))
        .tags(Tag::builder().key(rule_owner_key(owner)).build())
        .tags(Tag::builder().key(LEGACY_OWNER_TAG).value(owner).build())
        .send()
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if errors::is_not_found(&e, &["InvalidSecurityGroupRuleId.NotFound"]) => Ok(()),
        Err(e) => Err(err("DeleteTags", e)),
    }
}

async fn revoke(aws: &AwsClients, group_id: &str, rule_ids: &[String]) -> Result<(), AwsCallError> {
    match aws
        .ec2
        .revoke_security_group_ingress()
        .group_id(group_id)
        .set_security_group_rule_ids(Some(rule_ids.to_vec()))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if errors::is_not_found(
                &e,
                &[
                    "InvalidPermission.NotFound",
                    "InvalidGroup.NotFound",
                    "InvalidSecurityGroupRuleId.NotFound",
                ],
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(err("RevokeSecurityGroupIngress", e)),
    }
}
