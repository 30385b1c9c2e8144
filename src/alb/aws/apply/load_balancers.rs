//! Load balancers, their listeners (with SNI certificates) and the listeners' rules.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_elasticloadbalancingv2::types::{Certificate, LoadBalancerTypeEnum, SubnetMapping};

use super::super::convert::{
    elb_tags, protocol, sdk_actions, sdk_certificates, sdk_condition, sdk_ip_address_type,
    sdk_lb_attributes, sdk_listener_attributes, sdk_mutual_auth, sdk_scheme, sdk_transforms,
};
use super::super::{AlbAws, AwsError};
use crate::alb::model::{
    Action, IpAddressType, ListenerModel, LoadBalancerKind, MutualAuth, Protocol, RuleCondition,
    RuleModel, Scheme, Tags, Transform,
};

/// The default certificate, as CreateListener and ModifyListener take it.
fn default_certificate(certificates: &[String]) -> Option<Vec<Certificate>> {
    certificates
        .first()
        .map(|c| vec![Certificate::builder().certificate_arn(c).build()])
}

impl AlbAws<'_> {
    // ---------- load balancers ----------

    /// Creates an application or network load balancer, tagged, with its attributes;
    /// returns its ARN. `security_groups` are IDs (none: an NLB without security groups).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_load_balancer(
        &self,
        name: &str,
        kind: LoadBalancerKind,
        scheme: Scheme,
        ip_address_type: IpAddressType,
        subnets: &[SubnetMapping],
        security_groups: Vec<String>,
        attributes: &BTreeMap<String, String>,
        tags: &Tags,
    ) -> Result<String, AwsError> {
        let r = self
            .aws
            .elbv2
            .create_load_balancer()
            .name(name)
            .r#type(match kind {
                LoadBalancerKind::Application => LoadBalancerTypeEnum::Application,
                LoadBalancerKind::Network => LoadBalancerTypeEnum::Network,
            })
            .scheme(sdk_scheme(scheme))
            .ip_address_type(sdk_ip_address_type(ip_address_type))
            .set_subnet_mappings(Some(subnets.to_vec()))
            .set_security_groups((!security_groups.is_empty()).then_some(security_groups))
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await;
        let arn = match r {
            Ok(r) => r
                .load_balancers()
                .first()
                .and_then(|l| l.load_balancer_arn())
                .unwrap_or_default()
                .to_owned(),
            Err(e) => {
                let e = AwsError::call("CreateLoadBalancer", e);
                match e.code() == Some(super::adopt::DUPLICATE_LOAD_BALANCER) {
                    true => self.adopt_load_balancer(name, tags).await?.ok_or(e)?,
                    false => return Err(e),
                }
            }
        };
        if !attributes.is_empty() {
            self.lb_attributes(&arn, attributes).await?;
        }
        Ok(arn)
    }

    pub(super) async fn set_subnets(&self, arn: &str, subnets: &[String]) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .set_subnets()
            .load_balancer_arn(arn)
            .set_subnets(Some(subnets.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::call("SetSubnets", e))?;
        Ok(())
    }

    /// `security_groups` are IDs; `private_link_inbound`: whether they also filter
    /// PrivateLink traffic (NLB), unchanged when `None`.
    pub(super) async fn set_security_groups(
        &self,
        arn: &str,
        security_groups: Vec<String>,
        private_link_inbound: Option<bool>,
    ) -> Result<(), AwsError> {
        use aws_sdk_elasticloadbalancingv2::types::EnforceSecurityGroupInboundRulesOnPrivateLinkTrafficEnum as Enforce;
        self.aws
            .elbv2
            .set_security_groups()
            .load_balancer_arn(arn)
            .set_security_groups(Some(security_groups))
            .set_enforce_security_group_inbound_rules_on_private_link_traffic(
                private_link_inbound.map(|on| match on {
                    true => Enforce::On,
                    false => Enforce::Off,
                }),
            )
            .send()
            .await
            .map_err(|e| AwsError::call("SetSecurityGroups", e))?;
        Ok(())
    }

    pub(super) async fn set_ip_address_type(
        &self,
        arn: &str,
        ip_address_type: IpAddressType,
    ) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .set_ip_address_type()
            .load_balancer_arn(arn)
            .ip_address_type(sdk_ip_address_type(ip_address_type))
            .send()
            .await
            .map_err(|e| AwsError::call("SetIpAddressType", e))?;
        Ok(())
    }

    pub(super) async fn lb_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .modify_load_balancer_attributes()
            .load_balancer_arn(arn)
            .set_attributes(Some(sdk_lb_attributes(attributes)))
            .send()
            .await
            .map_err(|e| AwsError::call("ModifyLoadBalancerAttributes", e))?;
        Ok(())
    }

    /// Gone already is done.
    pub(super) async fn delete_load_balancer(&self, arn: &str) -> Result<(), AwsError> {
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
        Ok(())
    }

    // ---------- listeners ----------

    /// Creates the listener (without its rules) and adds its extra certificates; returns its
    /// ARN. `tgs`: target group names → ARNs, for the default action.
    pub(super) async fn create_listener(
        &self,
        lb_arn: &str,
        listener: &ListenerModel,
        tags: &Tags,
        tgs: &HashMap<String, String>,
    ) -> Result<String, AwsError> {
        let r = self
            .aws
            .elbv2
            .create_listener()
            .load_balancer_arn(lb_arn)
            .port(listener.port)
            .protocol(protocol(listener.protocol))
            .set_certificates(default_certificate(&listener.certificates))
            .set_ssl_policy(listener.ssl_policy.clone())
            .set_alpn_policy(listener.alpn_policy.clone().map(|a| vec![a]))
            .set_mutual_authentication(listener.mutual_auth.as_ref().map(sdk_mutual_auth))
            .set_default_actions(Some(sdk_actions(
                &listener.default_action,
                tgs,
                self.secrets,
            )?))
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await;
        let arn = match r {
            Ok(r) => r
                .listeners()
                .first()
                .and_then(|l| l.listener_arn())
                .unwrap_or_default()
                .to_owned(),
            // The listener is on our load balancer: the next reconcile plans it as observed.
            Err(e) => {
                let e = AwsError::call("CreateListener", e);
                match e.code() == Some(super::adopt::DUPLICATE_LISTENER) {
                    true => self.adopt_listener(lb_arn, listener.port).await?.ok_or(e)?,
                    false => return Err(e),
                }
            }
        };
        self.extra_certificates(&arn, &listener.certificates)
            .await?;
        if !listener.attributes.is_empty() {
            self.listener_attributes(&arn, &listener.attributes).await?;
        }
        Ok(arn)
    }

    pub(super) async fn listener_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .modify_listener_attributes()
            .listener_arn(arn)
            .set_attributes(Some(sdk_listener_attributes(attributes)))
            .send()
            .await
            .map_err(|e| AwsError::call("ModifyListenerAttributes", e))?;
        Ok(())
    }

    /// `certificates` holds at most the default certificate; `policies`: the SSL and ALPN
    /// policies and mutual TLS (`None`: left as it is).
    pub(super) async fn modify_listener(
        &self,
        arn: &str,
        p: Protocol,
        certificates: &[String],
        (ssl_policy, alpn_policy, mutual_auth): (
            &Option<String>,
            &Option<String>,
            &Option<MutualAuth>,
        ),
        default_action: &Action,
        tgs: &HashMap<String, String>,
    ) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .modify_listener()
            .listener_arn(arn)
            .protocol(protocol(p))
            .set_certificates(default_certificate(certificates))
            .set_ssl_policy(ssl_policy.clone())
            .set_alpn_policy(alpn_policy.clone().map(|a| vec![a]))
            .set_mutual_authentication(mutual_auth.as_ref().map(sdk_mutual_auth))
            .set_default_actions(Some(sdk_actions(default_action, tgs, self.secrets)?))
            .send()
            .await
            .map_err(|e| AwsError::call("ModifyListener", e))?;
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
    pub(super) async fn add_certificates(
        &self,
        listener: &str,
        arns: &[String],
    ) -> Result<(), AwsError> {
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

    pub(super) async fn remove_certificates(
        &self,
        listener: &str,
        arns: &[String],
    ) -> Result<(), AwsError> {
        self.aws
            .elbv2
            .remove_listener_certificates()
            .listener_arn(listener)
            .set_certificates(Some(sdk_certificates(arns)))
            .send()
            .await
            .map_err(|e| AwsError::call("RemoveListenerCertificates", e))?;
        Ok(())
    }

    /// Gone already is done.
    pub(super) async fn delete_listener(&self, arn: &str) -> Result<(), AwsError> {
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
        Ok(())
    }

    // ---------- rules ----------

    /// `tgs`: target group names → ARNs, for the rule's action.
    pub(super) async fn create_rule(
        &self,
        listener: &str,
        rule: &RuleModel,
        tags: &Tags,
        tgs: &HashMap<String, String>,
    ) -> Result<(), AwsError> {
        let r = self
            .aws
            .elbv2
            .create_rule()
            .listener_arn(listener)
            .priority(rule.priority)
            .set_conditions(Some(rule.conditions.iter().map(sdk_condition).collect()))
            .set_actions(Some(sdk_actions(&rule.action, tgs, self.secrets)?))
            .set_transforms((!rule.transforms.is_empty()).then(|| sdk_transforms(&rule.transforms)))
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::call("CreateRule", e);
                if e.code() != Some(super::adopt::PRIORITY_IN_USE) {
                    return Err(e);
                }
                match self.adopt_rule(listener, rule, tags).await? {
                    Some((_, true)) => Ok(()),
                    Some((arn, false)) => {
                        self.modify_rule(
                            &arn,
                            &rule.conditions,
                            &rule.action,
                            &rule.transforms,
                            tgs,
                        )
                        .await
                    }
                    None => Err(e),
                }
            }
        }
    }

    pub(super) async fn modify_rule(
        &self,
        arn: &str,
        conditions: &[RuleCondition],
        action: &Action,
        transforms: &[Transform],
        tgs: &HashMap<String, String>,
    ) -> Result<(), AwsError> {
        let (transforms, reset) = match transforms.is_empty() {
            true => (None, Some(true)),
            false => (Some(sdk_transforms(transforms)), None),
        };
        self.aws
            .elbv2
            .modify_rule()
            .rule_arn(arn)
            .set_conditions(Some(conditions.iter().map(sdk_condition).collect()))
            .set_actions(Some(sdk_actions(action, tgs, self.secrets)?))
            .set_transforms(transforms)
            .set_reset_transforms(reset)
            .send()
            .await
            .map_err(|e| AwsError::call("ModifyRule", e))?;
        Ok(())
    }

    /// Gone already is done.
    pub(super) async fn delete_rule(&self, arn: &str) -> Result<(), AwsError> {
        if let Err(e) = self.aws.elbv2.delete_rule().rule_arn(arn).send().await {
            let e = AwsError::call("DeleteRule", e);
            if !e.not_found() {
                return Err(e);
            }
        }
        Ok(())
    }
}
