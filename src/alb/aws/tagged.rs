//! The resources tagged for one stack, found without recorded ARNs: what another controller
//! (aws-load-balancer-controller, or an earlier install) made for it. One tagging-API call
//! for the load balancers and target groups, one VPC-scoped read for the security groups;
//! both filter on the cluster and stack tags, so nothing outside the stack is listed.

use aws_sdk_ec2::types::Filter;
use aws_sdk_resourcegroupstagging::types::TagFilter;

use super::convert::model_ec2_tags;
use super::{AlbAws, AwsError, Known};
use crate::aws::tags::{CLUSTER, RESOURCE_TYPE_KEY, StackKind};

/// The tagging API's resource types of the ELBv2 resources a stack owns.
const LOAD_BALANCER_TYPE: &str = "elasticloadbalancing:loadbalancer";
const TARGET_GROUP_TYPE: &str = "elasticloadbalancing:targetgroup";

/// The cluster's shared backend security group, as the peer tags it
/// (`elbv2.k8s.aws/resource: backend-sg`, no stack tag).
pub const BACKEND_SG_RESOURCE: &str = "backend-sg";

impl AlbAws<'_> {
    /// The ARNs and IDs tagged for `stack` of this cluster, as a [`Known`] to observe.
    pub async fn tagged_stack(&self, kind: StackKind, stack: &str) -> Result<Known, AwsError> {
        let filter = |key: &str, value: &str| {
            TagFilter::builder()
                .key(key)
                .values(value.to_owned())
                .build()
        };
        let pages = self
            .aws
            .tagging
            .get_resources()
            .tag_filters(filter(CLUSTER, self.cluster))
            .tag_filters(filter(kind.stack_key(), stack))
            .resource_type_filters(LOAD_BALANCER_TYPE)
            .resource_type_filters(TARGET_GROUP_TYPE)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::call("GetResources", e))?;
        let mut known = Known::default();
        for arn in pages
            .iter()
            .flat_map(|p| p.resource_tag_mapping_list())
            .filter_map(|m| m.resource_arn())
        {
            // arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>
            match arn.split(':').nth(5).and_then(|r| r.split('/').next()) {
                Some("loadbalancer") => known.load_balancer_arns.push(arn.to_owned()),
                Some("targetgroup") => known.target_group_arns.push(arn.to_owned()),
                _ => {}
            }
        }
        let tag = |key: &str, value: &str| {
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build()
        };
        let groups = self
            .aws
            .ec2
            .describe_security_groups()
            .filters(self.vpc_filter())
            .filters(tag(CLUSTER, self.cluster))
            .filters(tag(kind.stack_key(), stack))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
        known.security_group_ids = groups
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect();
        Ok(known)
    }

    /// Of the security groups `ids`, the one that is this cluster's shared backend group.
    pub async fn shared_backend_group(&self, ids: &[String]) -> Result<Option<String>, AwsError> {
        if ids.is_empty() {
            return Ok(None);
        }
        let r = self
            .aws
            .ec2
            .describe_security_groups()
            .set_group_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
        Ok(r.security_groups()
            .iter()
            .find(|g| {
                let tags = model_ec2_tags(g.tags());
                tags.get(CLUSTER).map(String::as_str) == Some(self.cluster)
                    && tags.get(RESOURCE_TYPE_KEY).map(String::as_str) == Some(BACKEND_SG_RESOURCE)
            })
            .and_then(|g| g.group_id().map(str::to_owned)))
    }
}
