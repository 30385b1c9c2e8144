//! Apply: runs the planner's [`Step`]s in order, each by the file of its resource family
//! (security groups, target groups, load balancers with their listeners and rules).
//!
//! Steps name what they change by our names; [`Ids`] resolves those to the IDs and ARNs
//! observed or created by an earlier step.

mod adopt;
mod load_balancers;
mod security_groups;
mod target_groups;

use std::collections::HashMap;

use super::convert::sdk_subnet_mappings;
use super::{AlbAws, AwsError};
use crate::alb::observed::Observed;
use crate::alb::plan::Step;

/// Our names → the IDs and ARNs of what exists: observed, or created by an earlier step.
struct Ids {
    security_groups: HashMap<String, String>,
    target_groups: HashMap<String, String>,
    load_balancers: HashMap<String, String>,
    /// (load balancer name, port) → listener ARN.
    listeners: HashMap<(String, i32), String>,
}

impl Ids {
    fn new(observed: &Observed) -> Self {
        Ids {
            security_groups: observed
                .security_groups
                .iter()
                .map(|s| (s.name.clone(), s.id.clone()))
                .collect(),
            target_groups: observed
                .target_groups
                .iter()
                .map(|t| (t.name.clone(), t.arn.clone()))
                .collect(),
            load_balancers: observed
                .load_balancers
                .iter()
                .map(|l| (l.name.clone(), l.arn.clone()))
                .collect(),
            listeners: observed
                .load_balancers
                .iter()
                .flat_map(|lb| {
                    lb.listeners
                        .iter()
                        .map(move |l| ((lb.name.clone(), l.port), l.arn.clone()))
                })
                .collect(),
        }
    }

    fn lookup(map: &HashMap<String, String>, k: &str, what: &str) -> Result<String, AwsError> {
        map.get(k)
            .cloned()
            .ok_or_else(|| AwsError::Missing(format!("{what} {k} was not created")))
    }

    /// One of our security groups, by name.
    fn managed_security_group(&self, name: &str) -> Result<String, AwsError> {
        Self::lookup(&self.security_groups, name, "security group")
    }

    /// A security group is one of ours (by name) or one named by ID in the
    /// `security-groups` annotation.
    fn security_group(&self, k: &str) -> Result<String, AwsError> {
        match self.security_groups.get(k) {
            Some(id) => Ok(id.clone()),
            None if k.starts_with("sg-") => Ok(k.to_owned()),
            None => Err(AwsError::Missing(format!(
                "security group {k} was not created"
            ))),
        }
    }

    fn security_groups(&self, names: &[String]) -> Result<Vec<String>, AwsError> {
        names.iter().map(|n| self.security_group(n)).collect()
    }

    fn load_balancer(&self, name: &str) -> Result<String, AwsError> {
        Self::lookup(&self.load_balancers, name, "load balancer")
    }

    fn listener(&self, load_balancer: &str, port: i32) -> Result<String, AwsError> {
        self.listeners
            .get(&(load_balancer.to_owned(), port))
            .cloned()
            .ok_or_else(|| {
                AwsError::Missing(format!("listener {load_balancer}:{port} was not created"))
            })
    }
}

impl AlbAws<'_> {
    /// Runs `steps` in order. Stops at the first failure: later steps depend on earlier ones.
    pub async fn apply(&self, steps: &[Step], observed: &Observed) -> Result<(), AwsError> {
        let mut ids = Ids::new(observed);
        for step in steps {
            tracing::info!(step = %step.describe(), "applying");
            match step {
                // Security groups.
                Step::CreateSecurityGroup {
                    name,
                    description,
                    tags,
                } => {
                    let id = self.create_security_group(name, description, tags).await?;
                    ids.security_groups.insert(name.clone(), id);
                }
                Step::AuthorizeIngress { group, rules } => {
                    self.authorize_ingress(&ids.managed_security_group(group)?, rules)
                        .await?
                }
                Step::RevokeIngress { id, rules } => self.revoke_ingress(id, rules).await?,
                Step::TagSecurityGroup { id, tags } => self.tag_security_group(id, tags).await?,
                Step::UntagSecurityGroup { id, keys } => {
                    self.untag_security_group(id, keys).await?
                }
                Step::DeleteSecurityGroup { id } => self.delete_security_group(id).await?,

                // Target groups, and tags on any ELBv2 resource.
                Step::CreateTargetGroup(tg) => {
                    let arn = self.create_target_group(tg).await?;
                    ids.target_groups.insert(tg.name.clone(), arn);
                }
                Step::ModifyTargetGroup { arn, health_check } => {
                    self.modify_target_group(arn, health_check).await?
                }
                Step::SetTargetGroupAttributes { arn, attributes } => {
                    self.tg_attributes(arn, attributes).await?
                }
                Step::TagElb { arn, tags } => self.tag_elb(arn, tags).await?,
                Step::UntagElb { arn, keys } => self.untag_elb(arn, keys).await?,
                Step::DeleteTargetGroup { arn } => self.delete_target_group(arn).await?,

                // Load balancers.
                Step::CreateLoadBalancer {
                    name,
                    kind,
                    scheme,
                    ip_address_type,
                    subnets,
                    subnet_mappings,
                    security_groups,
                    attributes,
                    tags,
                    private_link_inbound,
                } => {
                    let arn = self
                        .create_load_balancer(
                            name,
                            *kind,
                            *scheme,
                            *ip_address_type,
                            &sdk_subnet_mappings(subnets, subnet_mappings),
                            ids.security_groups(security_groups)?,
                            attributes,
                            tags,
                        )
                        .await?;
                    if private_link_inbound.is_some() {
                        self.set_security_groups(
                            &arn,
                            ids.security_groups(security_groups)?,
                            *private_link_inbound,
                        )
                        .await?;
                    }
                    ids.load_balancers.insert(name.clone(), arn);
                }
                Step::SetSubnets { arn, subnets } => self.set_subnets(arn, subnets).await?,
                Step::SetSecurityGroups {
                    arn,
                    security_groups,
                    private_link_inbound,
                } => {
                    self.set_security_groups(
                        arn,
                        ids.security_groups(security_groups)?,
                        *private_link_inbound,
                    )
                    .await?
                }
                Step::SetIpAddressType {
                    arn,
                    ip_address_type,
                } => self.set_ip_address_type(arn, *ip_address_type).await?,
                Step::SetLoadBalancerAttributes { arn, attributes } => {
                    self.lb_attributes(arn, attributes).await?
                }
                Step::DeleteLoadBalancer { arn } => self.delete_load_balancer(arn).await?,

                // Listeners.
                Step::CreateListener {
                    load_balancer,
                    listener,
                    tags,
                } => {
                    let lb_arn = ids.load_balancer(load_balancer)?;
                    let arn = self
                        .create_listener(&lb_arn, listener, tags, &ids.target_groups)
                        .await?;
                    ids.listeners
                        .insert((load_balancer.clone(), listener.port), arn);
                }
                Step::ModifyListener {
                    arn,
                    protocol,
                    certificates,
                    ssl_policy,
                    alpn_policy,
                    mutual_auth,
                    default_action,
                } => {
                    self.modify_listener(
                        arn,
                        *protocol,
                        certificates,
                        (ssl_policy, alpn_policy, mutual_auth),
                        default_action,
                        &ids.target_groups,
                    )
                    .await?
                }
                Step::SetWebAcl {
                    load_balancer,
                    web_acl,
                } => {
                    let arn = ids.load_balancer(load_balancer)?;
                    self.set_web_acl(&arn, web_acl.as_deref()).await?
                }
                Step::CreateProtection { load_balancer } => {
                    let arn = ids.load_balancer(load_balancer)?;
                    self.create_protection(&arn).await?
                }
                Step::DeleteProtection { id } => self.delete_protection(id).await?,
                Step::SetListenerAttributes { arn, attributes } => {
                    self.listener_attributes(arn, attributes).await?
                }
                Step::AddListenerCertificates { arn, certificates } => {
                    self.add_certificates(arn, certificates).await?
                }
                Step::RemoveListenerCertificates { arn, certificates } => {
                    self.remove_certificates(arn, certificates).await?
                }
                Step::DeleteListener { arn } => self.delete_listener(arn).await?,

                // Rules.
                Step::CreateRule {
                    load_balancer,
                    port,
                    rule,
                    tags,
                } => {
                    let listener = ids.listener(load_balancer, *port)?;
                    self.create_rule(&listener, rule, tags, &ids.target_groups)
                        .await?
                }
                Step::ModifyRule {
                    arn,
                    conditions,
                    action,
                    transforms,
                } => {
                    self.modify_rule(arn, conditions, action, transforms, &ids.target_groups)
                        .await?
                }
                Step::DeleteRule { arn } => self.delete_rule(arn).await?,
            }
        }
        Ok(())
    }
}
