//! The ALB controller's settings (`--alb-*` and `--vpc-id`, built by the CLI).

use std::collections::BTreeSet;
use std::time::Duration;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;

use super::builder::{CertInfo, Environment, SubnetInfo};
use super::class::ClassSettings;
use super::model::{Tags, TargetType};

/// How the ALB reconciler behaves.
#[derive(Clone, Debug)]
pub struct AlbSettings {
    pub class: ClassSettings,
    pub vpc_id: Option<String>,
    pub default_tags: Tags,
    /// Tag keys managed outside causeway (`--alb-external-managed-tags`).
    pub external_managed_tags: BTreeSet<String>,
    pub default_target_type: TargetType,
    pub resync: Duration,
    /// How long subnet and certificate discovery results are reused.
    pub discovery_ttl: Duration,
}

impl Default for AlbSettings {
    fn default() -> Self {
        AlbSettings {
            class: ClassSettings::default(),
            vpc_id: None,
            default_tags: Tags::new(),
            external_managed_tags: BTreeSet::new(),
            default_target_type: TargetType::Instance,
            resync: Duration::from_secs(600),
            discovery_ttl: Duration::from_secs(300),
        }
    }
}

/// What discovery found for the builder: the Services of the members' namespaces, and what
/// AWS knows (`None` where it was not read).
pub struct Discovered<'a> {
    pub services: &'a BTreeMap<(String, String), Service>,
    pub subnets: Option<&'a [SubnetInfo]>,
    pub certificates: Option<&'a [CertInfo]>,
    pub security_groups: Option<&'a BTreeMap<String, Vec<String>>>,
    pub target_groups: Option<&'a BTreeMap<String, String>>,
    pub oidc_clients: Option<&'a super::annotations::OidcClients>,
    pub web_acls: Option<&'a BTreeMap<String, String>>,
    pub trust_stores: Option<&'a BTreeMap<String, String>>,
}

impl AlbSettings {
    /// The builder's environment: the one place settings and discovery become builder
    /// inputs, for the reconciler and for `causeway plan` alike.
    pub fn environment<'a>(&'a self, cluster: &'a str, d: Discovered<'a>) -> Environment<'a> {
        Environment {
            cluster,
            default_tags: &self.default_tags,
            external_managed_tags: &self.external_managed_tags,
            default_target_type: self.default_target_type,
            services: d.services,
            subnets: d.subnets,
            certificates: d.certificates,
            security_groups: d.security_groups,
            target_groups: d.target_groups,
            oidc_clients: d.oidc_clients,
            web_acls: d.web_acls,
            trust_stores: d.trust_stores,
        }
    }
}
