//! WAFv2 web ACL association and Shield Advanced protection of our load balancers: read by
//! the load balancer's ARN (never listed region-wide), written only when the group says.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_wafv2::types::Scope as WafScope;

use super::{AlbAws, AwsError};
use crate::aws::AwsClients;

/// What the protections we create are called.
const PROTECTION_NAME: &str = "managed by causeway";

impl AlbAws<'_> {
    /// The web ACL associated with the load balancer, if any.
    pub(super) async fn web_acl_of(&self, lb_arn: &str) -> Result<Option<String>, AwsError> {
        let r = self
            .aws
            .wafv2
            .get_web_acl_for_resource()
            .resource_arn(lb_arn)
            .send()
            .await
            .map_err(|e| AwsError::call("GetWebACLForResource", e))?;
        Ok(r.web_acl().map(|acl| acl.arn().to_owned()))
    }

    /// The ID of the load balancer's Shield Advanced protection, if it has one.
    pub(super) async fn protection_of(&self, lb_arn: &str) -> Result<Option<String>, AwsError> {
        match self
            .aws
            .shield
            .describe_protection()
            .resource_arn(lb_arn)
            .send()
            .await
        {
            Ok(r) => Ok(r.protection().and_then(|p| p.id()).map(str::to_owned)),
            Err(e) => {
                let e = AwsError::call("DescribeProtection", e);
                match e.not_found() {
                    true => Ok(None),
                    false => Err(e),
                }
            }
        }
    }

    /// Associates the load balancer with `web_acl`, or disassociates it (`None`).
    pub(super) async fn set_web_acl(
        &self,
        lb_arn: &str,
        web_acl: Option<&str>,
    ) -> Result<(), AwsError> {
        match web_acl {
            Some(acl) => self
                .aws
                .wafv2
                .associate_web_acl()
                .web_acl_arn(acl)
                .resource_arn(lb_arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::call("AssociateWebACL", e)),
            None => self
                .aws
                .wafv2
                .disassociate_web_acl()
                .resource_arn(lb_arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::call("DisassociateWebACL", e)),
        }
    }

    /// A protection that exists already (a lost response) is the one we wanted.
    pub(super) async fn create_protection(&self, lb_arn: &str) -> Result<(), AwsError> {
        match self
            .aws
            .shield
            .create_protection()
            .name(PROTECTION_NAME)
            .resource_arn(lb_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::call("CreateProtection", e);
                match e.code() == Some("ResourceAlreadyExistsException") {
                    true => Ok(()),
                    false => Err(e),
                }
            }
        }
    }

    /// Gone already is done.
    pub(super) async fn delete_protection(&self, id: &str) -> Result<(), AwsError> {
        match self
            .aws
            .shield
            .delete_protection()
            .protection_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::call("DeleteProtection", e);
                match e.not_found() {
                    true => Ok(()),
                    false => Err(e),
                }
            }
        }
    }

    /// Regional web ACL names and ARNs → ARNs, for `wafv2-acl-name` and `wafv2-acl-arn`;
    /// one that does not exist is left out.
    pub async fn resolve_web_acls(
        aws: &AwsClients,
        names: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let mut out = BTreeMap::new();
        let mut marker = None;
        loop {
            let r = aws
                .wafv2
                .list_web_acls()
                .scope(WafScope::Regional)
                .set_next_marker(marker)
                .send()
                .await
                .map_err(|e| AwsError::call("ListWebACLs", e))?;
            for acl in r.web_acls() {
                if let (Some(name), Some(arn)) = (acl.name(), acl.arn()) {
                    for key in [name, arn] {
                        if names.contains(key) {
                            out.insert(key.to_owned(), arn.to_owned());
                        }
                    }
                }
            }
            marker = r.next_marker().map(str::to_owned);
            if marker.is_none() || out.len() == names.len() || r.web_acls().is_empty() {
                return Ok(out);
            }
        }
    }
}
