//! Security groups: create, ingress rules, tags, delete.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

use super::super::convert::{ec2_tags, ip_permissions};
use super::super::{AlbAws, AwsError};
use crate::alb::model::{SgRule, Tags};
use crate::aws::errors;

impl AlbAws<'_> {
    /// Creates the group in our VPC, tagged; returns its ID.
    pub(super) async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        tags: &Tags,
    ) -> Result<String, AwsError> {
        let r = self
            .aws
            .ec2
            .create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(self.vpc_id)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .set_tags(Some(ec2_tags(tags)))
                    .build(),
            )
            .send()
            .await;
        match r {
            Ok(r) => Ok(r.group_id().unwrap_or_default().to_owned()),
            Err(e) => {
                let e = AwsError::call("CreateSecurityGroup", e);
                match e.code() == Some(super::adopt::DUPLICATE_SECURITY_GROUP) {
                    true => self.adopt_security_group(name, tags).await?.ok_or(e),
                    false => Err(e),
                }
            }
        }
    }

    pub(super) async fn authorize_ingress(
        &self,
        id: &str,
        rules: &[SgRule],
    ) -> Result<(), AwsError> {
        let perms = ip_permissions(rules);
        self.aws
            .ec2
            .authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(perms))
            .send()
            .await
            .map_err(|e| AwsError::call("AuthorizeSecurityGroupIngress", e))?;
        Ok(())
    }

    pub(super) async fn revoke_ingress(&self, id: &str, rules: &[SgRule]) -> Result<(), AwsError> {
        let perms = ip_permissions(rules);
        self.aws
            .ec2
            .revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(perms))
            .send()
            .await
            .map_err(|e| AwsError::call("RevokeSecurityGroupIngress", e))?;
        Ok(())
    }

    pub(super) async fn tag_security_group(&self, id: &str, tags: &Tags) -> Result<(), AwsError> {
        self.aws
            .ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(ec2_tags(tags)))
            .send()
            .await
            .map_err(|e| AwsError::call("CreateTags", e))?;
        Ok(())
    }

    pub(super) async fn untag_security_group(
        &self,
        id: &str,
        keys: &[String],
    ) -> Result<(), AwsError> {
        self.aws
            .ec2
            .delete_tags()
            .resources(id)
            .set_tags(Some(
                keys.iter().map(|k| Tag::builder().key(k).build()).collect(),
            ))
            .send()
            .await
            .map_err(|e| AwsError::call("DeleteTags", e))?;
        Ok(())
    }

    /// Gone already is done. Still in use is [`AwsError::DependencyViolation`], retried by
    /// the caller.
    pub(super) async fn delete_security_group(&self, id: &str) -> Result<(), AwsError> {
        if let Err(e) = self
            .aws
            .ec2
            .delete_security_group()
            .group_id(id)
            .send()
            .await
        {
            if errors::has_code(&e, &["DependencyViolation"]) {
                return Err(AwsError::DependencyViolation(id.to_owned()));
            }
            let e = AwsError::call("DeleteSecurityGroup", e);
            if !e.not_found() {
                return Err(e);
            }
        }
        Ok(())
    }
}
