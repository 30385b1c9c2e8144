//! Target groups (create, health check, attributes, delete) and tags on any ELBv2 resource.

use std::collections::BTreeMap;

use super::super::convert::{elb_tags, protocol, sdk_matcher, sdk_target_type, sdk_tg_attributes};
use super::super::{AlbAws, AwsError};
use crate::alb::model::{HealthCheck, Tags, TargetGroupModel};

/// A value only an HTTP(S) health check takes (a TCP one refuses a path).
fn http_only(h: &HealthCheck, value: &str) -> Option<String> {
    h.protocol.is_http().then(|| value.to_owned())
}

impl AlbAws<'_> {
    /// Creates the target group in our VPC, tagged, with its attributes; returns its ARN.
    pub(super) async fn create_target_group(
        &self,
        tg: &TargetGroupModel,
    ) -> Result<String, AwsError> {
        let r = self
            .aws
            .elbv2
            .create_target_group()
            .name(&tg.name)
            .protocol(protocol(tg.protocol))
            .set_protocol_version(
                (tg.protocol.is_http() && !tg.protocol_version.is_empty())
                    .then(|| tg.protocol_version.clone()),
            )
            .port(tg.port)
            .vpc_id(self.vpc_id)
            .target_type(sdk_target_type(tg.target_type))
            .set_health_check_path(http_only(&tg.health_check, &tg.health_check.path))
            .health_check_port(&tg.health_check.port)
            .health_check_protocol(protocol(tg.health_check.protocol))
            .health_check_interval_seconds(tg.health_check.interval_seconds)
            .health_check_timeout_seconds(tg.health_check.timeout_seconds)
            .healthy_threshold_count(tg.health_check.healthy_threshold)
            .unhealthy_threshold_count(tg.health_check.unhealthy_threshold)
            .set_matcher(
                tg.health_check
                    .protocol
                    .is_http()
                    .then(|| sdk_matcher(&tg.health_check)),
            )
            .set_tags(Some(elb_tags(&tg.tags)))
            .send()
            .await;
        let arn = match r {
            Ok(r) => r
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .unwrap_or_default()
                .to_owned(),
            Err(e) => {
                let e = AwsError::call("CreateTargetGroup", e);
                match e.code() == Some(super::adopt::DUPLICATE_TARGET_GROUP) {
                    true => self
                        .adopt_target_group(&tg.name, &tg.tags)
                        .await?
                        .ok_or(e)?,
                    false => return Err(e),
                }
            }
        };
        if !tg.attributes.is_empty() {
            self.tg_attributes(&arn, &tg.attributes).await?;
        }
        Ok(arn)
    }

    pub(super) async fn modify_target_group(
        &self,
        arn: &str,
        h: &HealthCheck,
    ) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .modify_target_group()
            .target_group_arn(arn)
            .set_health_check_path(http_only(h, &h.path))
            .health_check_port(&h.port)
            .health_check_protocol(protocol(h.protocol))
            .health_check_interval_seconds(h.interval_seconds)
            .health_check_timeout_seconds(h.timeout_seconds)
            .healthy_threshold_count(h.healthy_threshold)
            .unhealthy_threshold_count(h.unhealthy_threshold)
            .set_matcher(h.protocol.is_http().then(|| sdk_matcher(h)))
            .send()
            .await
            .map_err(|e| AwsError::call("ModifyTargetGroup", e))?;
        Ok(())
    }

    pub(super) async fn tg_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .set_attributes(Some(sdk_tg_attributes(attributes)))
            .send()
            .await
            .map_err(|e| AwsError::call("ModifyTargetGroupAttributes", e))?;
        Ok(())
    }

    /// Gone already is done.
    pub(super) async fn delete_target_group(&self, arn: &str) -> Result<(), AwsError> {
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
        Ok(())
    }

    /// Adds or overwrites tags on any ELBv2 resource (target group or load balancer).
    pub(super) async fn tag_elb(&self, arn: &str, tags: &Tags) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await
            .map_err(|e| AwsError::call("AddTags", e))?;
        Ok(())
    }

    pub(super) async fn untag_elb(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::call("RemoveTags", e))?;
        Ok(())
    }
}
