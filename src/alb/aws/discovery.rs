//! Discovery, cached by the caller: the cluster's VPC, the VPC's subnets, the issued ACM
//! certificates, and the security groups the `security-groups` annotation names.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::Filter;

use super::convert::subnet_info;
use super::{AlbAws, AwsError};
use crate::alb::builder::{CertInfo, SubnetInfo};
use crate::aws::AwsClients;
use crate::aws::tags::kubernetes_cluster;

impl AlbAws<'_> {
    /// Every subnet of the VPC with its tags: one VPC-scoped read.
    pub async fn subnets(&self) -> Result<Vec<SubnetInfo>, AwsError> {
        let pages = self
            .aws
            .ec2
            .describe_subnets()
            .filters(self.vpc_filter())
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::call("DescribeSubnets", e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.subnets())
            .filter_map(subnet_info)
            .collect())
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
            let mut pages = self
                .aws
                .ec2
                .describe_security_groups()
                .filters(self.vpc_filter())
                .filters(
                    Filter::builder()
                        .name(filter)
                        .set_values(Some(values.iter().map(|v| (*v).clone()).collect()))
                        .build(),
                )
                .into_paginator()
                .send();
            while let Some(resp) = pages.next().await {
                let resp = resp.map_err(|e| AwsError::call("DescribeSecurityGroups", e))?;
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
            }
        }
        for v in out.values_mut() {
            v.sort();
            v.dedup();
        }
        Ok(out)
    }

    /// Target groups by name → ARN, one read per name (a read of several names fails as a
    /// whole when one is missing); a missing name is left out.
    pub async fn resolve_target_groups(
        aws: &AwsClients,
        names: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let mut out = BTreeMap::new();
        for name in names {
            match aws.elbv2.describe_target_groups().names(name).send().await {
                Ok(r) => {
                    if let Some(arn) = r.target_groups().first().and_then(|t| t.target_group_arn())
                    {
                        out.insert(name.clone(), arn.to_owned());
                    }
                }
                Err(e) => {
                    let e = AwsError::call("DescribeTargetGroups", e);
                    if !e.not_found() {
                        return Err(e);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Trust store names → ARNs (one DescribeTrustStores by name each, as target groups are
    /// resolved); a name that does not exist is left out.
    pub async fn resolve_trust_stores(
        aws: &AwsClients,
        names: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let mut out = BTreeMap::new();
        for name in names {
            match aws.elbv2.describe_trust_stores().names(name).send().await {
                Ok(r) => {
                    if let Some(arn) = r.trust_stores().first().and_then(|t| t.trust_store_arn()) {
                        out.insert(name.clone(), arn.to_owned());
                    }
                }
                Err(e) => {
                    let e = AwsError::call("DescribeTrustStores", e);
                    if !e.not_found() {
                        return Err(e);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Issued ACM certificates and the names they cover.
    pub async fn certificates(aws: &AwsClients) -> Result<Vec<CertInfo>, AwsError> {
        let mut out = Vec::new();
        let mut pages = aws
            .acm
            .list_certificates()
            .certificate_statuses(aws_sdk_acm::types::CertificateStatus::Issued)
            .into_paginator()
            .items()
            .send();
        while let Some(c) = pages.next().await {
            let c = c.map_err(|e| AwsError::call("ListCertificates", e))?;
            let Some(arn) = c.certificate_arn() else {
                continue;
            };
            let mut domains: Vec<String> = c.domain_name().into_iter().map(str::to_owned).collect();
            domains.extend(c.subject_alternative_name_summaries().iter().cloned());
            if c.has_additional_subject_alternative_names() == Some(true) || domains.len() <= 1 {
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
        Ok(out)
    }

    /// The VPC of the cluster's subnets, when no VPC ID is configured.
    pub async fn cluster_vpc(aws: &AwsClients, cluster: &str) -> Result<String, AwsError> {
        let tag = kubernetes_cluster(cluster);
        let resp = aws
            .ec2
            .describe_subnets()
            .filters(Filter::builder().name("tag-key").values(&tag).build())
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeSubnets", e))?;
        resp.subnets()
            .iter()
            .find_map(|s| s.vpc_id())
            .map(str::to_owned)
            .ok_or_else(|| AwsError::Missing(format!("no subnet tagged {tag}; set --alb-vpc-id")))
    }
}
