//! Creates that are safe to repeat. When a create fails because what it would make already
//! exists (an earlier attempt was applied but its response lost, and the SDK retried; or a
//! crash came before the ARN was recorded), the existing resource is adopted if it is ours:
//! tagged for this cluster and stack, or, for a rule, at the same priority with the same
//! conditions on our listener. Anything else keeps the create's error.

use aws_sdk_ec2::types::Filter;

use super::super::convert::{model_ec2_tags, observed_rule};
use super::super::{AlbAws, AwsError};
use crate::alb::model::{RuleModel, StackKind, Tags};
use crate::alb::observed::owned;

/// The create error codes that mean "it exists already".
pub(super) const DUPLICATE_TARGET_GROUP: &str = "DuplicateTargetGroupName";
pub(super) const DUPLICATE_LOAD_BALANCER: &str = "DuplicateLoadBalancerName";
pub(super) const DUPLICATE_LISTENER: &str = "DuplicateListener";
pub(super) const PRIORITY_IN_USE: &str = "PriorityInUse";
pub(super) const DUPLICATE_SECURITY_GROUP: &str = "InvalidGroup.Duplicate";

impl AlbAws<'_> {
    fn ours(&self, found: &Tags, wanted: &Tags) -> bool {
        StackKind::ALL.into_iter().any(|kind| {
            wanted
                .get(kind.stack_key())
                .is_some_and(|stack| owned(found, self.cluster, kind, stack))
        })
    }

    /// The ARN of the target group `name` if it is ours.
    pub(super) async fn adopt_target_group(
        &self,
        name: &str,
        tags: &Tags,
    ) -> Result<Option<String>, AwsError> {
        let r = self
            .aws
            .elbv2
            .describe_target_groups()
            .names(name)
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeTargetGroups", e))?;
        let Some(arn) = r
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .map(str::to_owned)
        else {
            return Ok(None);
        };
        self.adopted_if_ours(arn, tags).await
    }

    /// The ARN of the load balancer `name` if it is ours.
    pub(super) async fn adopt_load_balancer(
        &self,
        name: &str,
        tags: &Tags,
    ) -> Result<Option<String>, AwsError> {
        let r = self
            .aws
            .elbv2
            .describe_load_balancers()
            .names(name)
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeLoadBalancers", e))?;
        let Some(arn) = r
            .load_balancers()
            .first()
            .and_then(|l| l.load_balancer_arn())
            .map(str::to_owned)
        else {
            return Ok(None);
        };
        self.adopted_if_ours(arn, tags).await
    }

    async fn adopted_if_ours(&self, arn: String, tags: &Tags) -> Result<Option<String>, AwsError> {
        let found = self.tags(std::slice::from_ref(&arn)).await?;
        Ok(found.get(&arn).filter(|t| self.ours(t, tags)).map(|_| {
            tracing::info!(%arn, "adopted what an earlier create left");
            arn
        }))
    }

    /// The ID of the security group `name` in our VPC if it is ours.
    pub(super) async fn adopt_security_group(
        &self,
        name: &str,
        tags: &Tags,
    ) -> Result<Option<String>, AwsError> {
        let r = self
            .aws
            .ec2
            .describe_security_groups()
            .filters(self.vpc_filter())
            .filters(Filter::builder().name("group-name").values(name).build())
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
        Ok(r.security_groups()
            .iter()
            .find(|g| self.ours(&model_ec2_tags(g.tags()), tags))
            .and_then(|g| g.group_id())
            .map(|id| {
                tracing::info!(%id, "adopted what an earlier create left");
                id.to_owned()
            }))
    }

    /// The ARN of the listener on `port` of our load balancer `lb_arn`.
    pub(super) async fn adopt_listener(
        &self,
        lb_arn: &str,
        port: i32,
    ) -> Result<Option<String>, AwsError> {
        let r = self
            .aws
            .elbv2
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeListeners", e))?;
        Ok(r.listeners()
            .iter()
            .find(|l| l.port() == Some(port))
            .and_then(|l| l.listener_arn())
            .map(str::to_owned))
    }

    /// The rule at `rule`'s priority on our listener, if it is ours: it has the same
    /// conditions (a rule an earlier create of ours left before listeners and rules were
    /// tagged), or it carries our cluster and stack tags. `Some((arn, true))` when it already
    /// has the conditions, `Some((arn, false))` when it must be modified to them.
    pub(super) async fn adopt_rule(
        &self,
        listener: &str,
        rule: &RuleModel,
        tags: &Tags,
    ) -> Result<Option<(String, bool)>, AwsError> {
        let mut pages = self
            .aws
            .elbv2
            .describe_rules()
            .listener_arn(listener)
            .into_paginator()
            .send();
        let mut wanted = rule.conditions.clone();
        wanted.sort();
        let mut found = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::call("DescribeRules", e))?;
            found = page
                .rules()
                .iter()
                .filter_map(observed_rule)
                .find(|o| o.priority == rule.priority);
            if found.is_some() {
                break;
            }
        }
        let Some(o) = found else { return Ok(None) };
        let same = o.conditions == wanted;
        if !same && self.adopted_if_ours(o.arn.clone(), tags).await?.is_none() {
            return Ok(None);
        }
        tracing::info!(
            listener,
            priority = rule.priority,
            same,
            "adopted a rule an earlier create left"
        );
        Ok(Some((o.arn, same)))
    }
}
