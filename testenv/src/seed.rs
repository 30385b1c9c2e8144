//! Seeds moto so causeway's controllers find what they would on an EKS account:
//! a VPC with public and private subnets in two AZs tagged like an EKS cluster,
//! a node security group, two node instances, an ACM certificate for the test
//! domain, public and private Route 53 zones, and IAM roles for pods.

use anyhow::{Context, Result};
use aws_credential_types::Credentials;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_types::SdkConfig;
use aws_types::region::Region;
use serde::{Deserialize, Serialize};

use crate::{TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY};

/// The test domain; the ACM certificate covers it and `*.` of it.
pub const TEST_DOMAIN: &str = "causeway.test";
pub const POD_ROLES: [&str; 3] = ["causeway-app", "causeway-reader", "causeway-writer"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Seed {
    pub cluster_name: String,
    pub vpc_id: String,
    pub azs: Vec<String>,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
    pub node_security_group_id: String,
    pub instance_ids: Vec<String>,
    pub instance_private_ips: Vec<String>,
    pub certificate_arn: String,
    pub domain: String,
    pub public_zone_id: String,
    pub private_zone_id: String,
    pub role_arns: Vec<String>,
    pub account_id: String,
}

/// An SDK config pointing at moto with static test credentials. Plain HTTP to
/// loopback: no TLS stack, no credential chain, no instance metadata lookups.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new(TEST_REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            TEST_ACCESS_KEY_ID,
            TEST_SECRET_ACCESS_KEY,
            None,
            None,
            "causeway-testenv",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .load()
        .await
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn tags(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(resource);
    for (k, v) in pairs {
        spec = spec.tags(tag(k, v));
    }
    spec.build()
}

pub async fn seed(endpoint: &str, cluster: &str) -> Result<Seed> {
    let conf = sdk_config(endpoint).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let cluster_tag = format!("kubernetes.io/cluster/{cluster}");

    let vpc = ec2
        .create_vpc()
        .cidr_block("192.168.0.0/16")
        .tag_specifications(tags(
            ResourceType::Vpc,
            &[
                ("Name", &format!("{cluster}-vpc")),
                (&cluster_tag, "shared"),
            ],
        ))
        .send()
        .await
        .context("CreateVpc")?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .context("vpc id")?
        .to_string();

    let azs = vec![format!("{TEST_REGION}a"), format!("{TEST_REGION}b")];
    let mut public_subnet_ids = Vec::new();
    let mut private_subnet_ids = Vec::new();
    for (i, az) in azs.iter().enumerate() {
        for (public, list) in [
            (true, &mut public_subnet_ids),
            (false, &mut private_subnet_ids),
        ] {
            let (role, cidr) = if public {
                ("kubernetes.io/role/elb", format!("192.168.{}.0/19", i * 32))
            } else {
                (
                    "kubernetes.io/role/internal-elb",
                    format!("192.168.{}.0/19", 64 + i * 32),
                )
            };
            let name = format!(
                "{cluster}-{}-{az}",
                if public { "public" } else { "private" }
            );
            let out = ec2
                .create_subnet()
                .vpc_id(&vpc_id)
                .availability_zone(az)
                .cidr_block(cidr)
                .tag_specifications(tags(
                    ResourceType::Subnet,
                    &[("Name", &name), (role, "1"), (&cluster_tag, "shared")],
                ))
                .send()
                .await
                .context("CreateSubnet")?;
            list.push(
                out.subnet()
                    .and_then(|s| s.subnet_id())
                    .context("subnet id")?
                    .to_string(),
            );
        }
    }

    let sg = ec2
        .create_security_group()
        .group_name(format!("{cluster}-nodes"))
        .description("EKS node security group")
        .vpc_id(&vpc_id)
        .tag_specifications(tags(
            ResourceType::SecurityGroup,
            &[
                (&cluster_tag, "owned"),
                ("Name", &format!("{cluster}-nodes")),
            ],
        ))
        .send()
        .await
        .context("CreateSecurityGroup")?;
    let node_security_group_id = sg.group_id().context("sg id")?.to_string();

    // Any AMI moto knows will do; take the first one it lists.
    let images = ec2
        .describe_images()
        .filters(
            Filter::builder()
                .name("architecture")
                .values("x86_64")
                .build(),
        )
        .send()
        .await
        .context("DescribeImages")?;
    let ami = images
        .images()
        .iter()
        .find_map(|i| i.image_id())
        .context("moto lists no AMI")?
        .to_string();
    let mut instance_ids = Vec::new();
    let mut instance_private_ips = Vec::new();
    for (i, subnet) in private_subnet_ids.iter().enumerate() {
        let out = ec2
            .run_instances()
            .image_id(&ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
            .min_count(1)
            .max_count(1)
            .subnet_id(subnet)
            .security_group_ids(&node_security_group_id)
            .tag_specifications(tags(
                ResourceType::Instance,
                &[
                    ("Name", &format!("{cluster}-node-{i}")),
                    (&cluster_tag, "owned"),
                ],
            ))
            .send()
            .await
            .context("RunInstances")?;
        let inst = out.instances().first().context("no instance")?;
        instance_ids.push(inst.instance_id().context("instance id")?.to_string());
        instance_private_ips.push(
            inst.private_ip_address()
                .context("instance ip")?
                .to_string(),
        );
    }

    let certificate_arn = import_certificate(&conf).await?;

    let r53 = aws_sdk_route53::Client::new(&conf);
    let caller = format!("{cluster}-{}", crate::certs::random_hex(4));
    let public = r53
        .create_hosted_zone()
        .name(format!("{TEST_DOMAIN}."))
        .caller_reference(format!("{caller}-public"))
        .send()
        .await
        .context("CreateHostedZone public")?;
    let public_zone_id = public
        .hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .context("zone id")?;
    let private = r53
        .create_hosted_zone()
        .name(format!("{TEST_DOMAIN}."))
        .caller_reference(format!("{caller}-private"))
        .vpc(
            aws_sdk_route53::types::Vpc::builder()
                .vpc_id(&vpc_id)
                .vpc_region(aws_sdk_route53::types::VpcRegion::UsEast1)
                .build(),
        )
        .hosted_zone_config(
            aws_sdk_route53::types::HostedZoneConfig::builder()
                .private_zone(true)
                .comment("causeway private test zone")
                .build(),
        )
        .send()
        .await
        .context("CreateHostedZone private")?;
    let private_zone_id = private
        .hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .context("zone id")?;

    let iam = aws_sdk_iam::Client::new(&conf);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    let mut role_arns = Vec::new();
    for role in POD_ROLES {
        let out = iam
            .create_role()
            .role_name(role)
            .assume_role_policy_document(trust)
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("causeway.dev/test")
                    .value(cluster)
                    .build()
                    .context("tag")?,
            )
            .send()
            .await
            .context("CreateRole")?;
        role_arns.push(
            out.role()
                .map(|r| r.arn().to_string())
                .context("role arn")?,
        );
    }
    let account_id = role_arns
        .first()
        .and_then(|a| a.split(':').nth(4))
        .unwrap_or_default()
        .to_string();

    Ok(Seed {
        cluster_name: cluster.to_string(),
        vpc_id,
        azs,
        public_subnet_ids,
        private_subnet_ids,
        node_security_group_id,
        instance_ids,
        instance_private_ips,
        certificate_arn,
        domain: TEST_DOMAIN.to_string(),
        public_zone_id,
        private_zone_id,
        role_arns,
        account_id,
    })
}

/// Imports a self-signed certificate for the test domain (and its wildcard).
/// Imported certificates are ISSUED at once, unlike requested ones that wait
/// for validation. Tests call it for more certificates of their own.
pub async fn import_certificate(conf: &SdkConfig) -> Result<String> {
    let key = rcgen::KeyPair::generate()?;
    let mut params =
        rcgen::CertificateParams::new(vec![TEST_DOMAIN.to_string(), format!("*.{TEST_DOMAIN}")])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, TEST_DOMAIN);
    let cert = params.self_signed(&key)?;
    let acm = aws_sdk_acm::Client::new(conf);
    let out = acm
        .import_certificate()
        .certificate(aws_smithy_types_blob(cert.pem()))
        .private_key(aws_smithy_types_blob(key.serialize_pem()))
        .send()
        .await
        .context("ImportCertificate")?;
    Ok(out
        .certificate_arn()
        .context("certificate arn")?
        .to_string())
}

fn aws_smithy_types_blob(s: String) -> aws_sdk_acm::primitives::Blob {
    aws_sdk_acm::primitives::Blob::new(s.into_bytes())
}
