//! Observe: what we own of a group in AWS, by the ARNs and IDs we recorded and by the names
//! we would create, never by scanning the region.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancingv2 as elb;

use super::convert::{
    model_certificates, model_elb_tags, model_lb_attributes, model_listener_attributes,
    model_tg_attributes, observed_listener, observed_load_balancer, observed_rule,
    observed_security_group, observed_target_group,
};
use super::{AlbAws, AwsError, Depth, Known};
use crate::alb::model::*;
use crate::alb::observed::*;

/// The names to look up: desired and pending ones not found by recorded ARN, each once.
fn by_name<'a>(
    desired: impl Iterator<Item = &'a String>,
    known: &'a Known,
    pending: &'a [String],
    found: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let desired = desired.filter(|_| known.desired_names);
    for n in desired.chain(pending) {
        if !found(n) && !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

impl AlbAws<'_> {
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
        let missing = by_name(
            desired.load_balancers.iter().map(|l| &l.name),
            known,
            &known.pending.load_balancers,
            |n| lbs.iter().any(|l| l.load_balancer_name() == Some(n)),
        );
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
        let missing = by_name(
            desired.target_groups.iter().map(|t| &t.name),
            known,
            &known.pending.target_groups,
            |n| tgs.iter().any(|t| t.target_group_name() == Some(n)),
        );
        // One batch (what was just created is all there), else one call per name: a batch
        // fails whole when any one is missing.
        let batch = match missing.len() {
            0 | 1 => None,
            _ => match self
                .aws
                .elbv2
                .describe_target_groups()
                .set_names(Some(missing.clone()))
                .send()
                .await
            {
                Ok(r) => Some(r.target_groups().to_vec()),
                Err(e) => {
                    let e = AwsError::call("DescribeTargetGroups", e);
                    if !e.not_found() {
                        return Err(e);
                    }
                    None
                }
            },
        };
        if let Some(found) = batch {
            tgs.extend(found);
        } else if !missing.is_empty() {
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
            if !owned(&lb_tags, self.cluster, desired.kind, &desired.stack) {
                // Not ours (or not tagged): keep it out of the plan entirely.
                observed
                    .load_balancers
                    .push(observed_load_balancer(lb, lb_tags));
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
                    model_lb_attributes(r.attributes())
                        .into_iter()
                        .filter(|(k, _)| d.attributes.contains_key(k))
                        .collect()
                }
                _ => BTreeMap::new(),
            };
            let mut o = observed_load_balancer(lb, lb_tags);
            o.attributes = attributes;
            if let Some(d) = wanted {
                if d.addons.web_acl.is_some() {
                    o.web_acl = self.web_acl_of(&arn).await?;
                }
                if d.addons.shield.is_some() {
                    o.shield_protection = self.protection_of(&arn).await?;
                }
            }
            if depth == Depth::Full {
                o.listeners = self.listeners(&arn).await?;
                if let Some(d) = wanted {
                    self.observe_listener_attributes(d, &mut o.listeners)
                        .await?;
                }
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
                    if !d.attributes.is_empty()
                        && owned(&t_tags, self.cluster, desired.kind, &desired.stack) =>
                {
                    let r = self
                        .aws
                        .elbv2
                        .describe_target_group_attributes()
                        .target_group_arn(&arn)
                        .send()
                        .await
                        .map_err(|e| AwsError::call("DescribeTargetGroupAttributes", e))?;
                    model_tg_attributes(r.attributes())
                        .into_iter()
                        .filter(|(k, _)| d.attributes.contains_key(k))
                        .collect()
                }
                _ => BTreeMap::new(),
            };
            observed
                .target_groups
                .push(observed_target_group(tg, attributes, t_tags));
        }

        observed.security_groups = self.security_groups(known, desired).await?;
        Ok(observed)
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
        crate::aws::elbv2::target_groups_by_arn(&self.aws.elbv2, arns, |e| {
            crate::aws::errors::code(e).is_some_and(|c| {
                crate::aws::errors::code_kind(c) == crate::aws::errors::ErrorKind::NotFound
            })
        })
        .await
        .map_err(|e| AwsError::call("DescribeTargetGroups", e))
    }

    /// DescribeTags on our ARNs only, 20 per call.
    pub(super) async fn tags(&self, arns: &[String]) -> Result<HashMap<String, Tags>, AwsError> {
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
                out.insert(arn.to_owned(), model_elb_tags(d.tags()));
            }
        }
        Ok(out)
    }

    /// The attributes desired listeners set, read for those listeners only.
    async fn observe_listener_attributes(
        &self,
        desired: &LoadBalancerModel,
        listeners: &mut [ObservedListener],
    ) -> Result<(), AwsError> {
        for o in listeners {
            let Some(d) = desired.listeners.iter().find(|d| d.port == o.port) else {
                continue;
            };
            if d.attributes.is_empty() {
                continue;
            }
            let r = self
                .aws
                .elbv2
                .describe_listener_attributes()
                .listener_arn(&o.arn)
                .send()
                .await
                .map_err(|e| AwsError::call("DescribeListenerAttributes", e))?;
            o.attributes = model_listener_attributes(r.attributes())
                .into_iter()
                .filter(|(k, _)| d.attributes.contains_key(k))
                .collect();
        }
        Ok(())
    }

    async fn listeners(&self, lb_arn: &str) -> Result<Vec<ObservedListener>, AwsError> {
        let mut out = Vec::new();
        let listeners = self
            .aws
            .elbv2
            .describe_listeners()
            .load_balancer_arn(lb_arn)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::call("DescribeListeners", e))?;
        for l in listeners {
            let arn = l.listener_arn().unwrap_or_default().to_owned();
            let mut certificates = model_certificates(l.certificates());
            // Every HTTPS and TLS listener: extra certificates we no longer want must be seen
            // to be removed.
            let protocol = l.protocol();
            if matches!(
                protocol,
                Some(elb::types::ProtocolEnum::Https | elb::types::ProtocolEnum::Tls)
            ) {
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
            // Only HTTP and HTTPS (ALB) listeners have rules.
            let mut rules = Vec::new();
            let http = matches!(
                protocol,
                Some(elb::types::ProtocolEnum::Http | elb::types::ProtocolEnum::Https)
            );
            let mut pages = http.then(|| {
                self.aws
                    .elbv2
                    .describe_rules()
                    .listener_arn(&arn)
                    .into_paginator()
                    .items()
                    .send()
            });
            while let Some(rule) = match pages.as_mut() {
                Some(p) => p.next().await,
                None => None,
            } {
                let rule = rule.map_err(|e| AwsError::call("DescribeRules", e))?;
                rules.extend(observed_rule(&rule));
            }
            out.push(observed_listener(&l, certificates, rules));
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
        let missing = by_name(
            desired.security_groups.iter().map(|s| &s.name),
            known,
            &known.pending.security_groups,
            |n| found.iter().any(|g| g.group_name() == Some(n)),
        );
        if !missing.is_empty() {
            let r = self
                .aws
                .ec2
                .describe_security_groups()
                .filters(self.vpc_filter())
                .filters(
                    Filter::builder()
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
        for g in &found {
            let Some(o) = observed_security_group(g) else {
                continue;
            };
            if out.iter().any(|x| x.id == o.id) {
                continue;
            }
            out.push(o);
        }
        Ok(out)
    }
}
