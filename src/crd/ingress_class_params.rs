//! `IngressClassParams` (`elbv2.k8s.aws/v1beta1`, cluster-scoped): settings an IngressClass
//! forces on every Ingress of the class. A field set here overrides the matching annotation.
//!
//! The spec is aws-load-balancer-controller's, field for field, so LBC manifests apply
//! unchanged. That includes its one oddly cased field, `PrefixListsIDs`, which LBC still reads
//! next to the newer `prefixListsIDs`. LBC's CRD has no status; causeway adds one.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::drop_null_enum_values;

pub use super::target_group_binding::TargetType;

/// ACM or IAM server certificate ARNs.
pub const CERTIFICATE_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:(?:acm|iam):[a-z0-9-]*:[0-9]+:\S+$";

/// Subnets are told apart either by ID or by tag, never both.
pub const ONE_SUBNET_SELECTOR_RULE: &str = "has(self.ids) != has(self.tags)";

/// Every entry of inboundCIDRs is a CIDR.
pub const INBOUND_CIDRS_RULE: &str = "self.all(c, isCIDR(c))";

/// Whether a load balancer gets public addresses.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalancerScheme {
    Internal,
    InternetFacing,
}

/// The IP families a load balancer listens on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum IpAddressType {
    Ipv4,
    Dualstack,
    DualstackWithoutPublicIpv4,
}

/// An ALB listener's protocol.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "UPPERCASE")]
pub enum ListenerProtocol {
    Http,
    Https,
}

/// How an ALB authenticates users.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    None,
    Oidc,
    Cognito,
}

/// What an ALB does with a request from a user who is not signed in.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum OnUnauthenticatedRequest {
    Authenticate,
    Deny,
    Allow,
}

/// Settings forced on every Ingress of the IngressClass that references these params.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "elbv2.k8s.aws",
    version = "v1beta1",
    kind = "IngressClassParams",
    plural = "ingressclassparams",
    singular = "ingressclassparams",
    shortname = "icp",
    category = "causeway",
    status = "IngressClassParamsStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "IngressClassParams holds settings an IngressClass forces on every Ingress of the class.",
    printcolumn(
        name = "GROUP-NAME",
        type_ = "string",
        json_path = ".spec.group.name",
        description = "The Ingress Group name"
    ),
    printcolumn(
        name = "SCHEME",
        type_ = "string",
        json_path = ".spec.scheme",
        description = "The AWS Load Balancer scheme"
    ),
    printcolumn(
        name = "IP-ADDRESS-TYPE",
        type_ = "string",
        json_path = ".spec.ipAddressType",
        description = "The AWS Load Balancer ipAddressType"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = drop_null_enum_values)]
pub struct IngressClassParamsSpec {
    /// Certificates for the HTTPS listeners of every Ingress of the class.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = CERTIFICATE_ARN_PATTERN), length(max = 2048)), length(max = 100))]
    pub certificate_arn: Vec<String>,

    /// Only Ingresses in matching namespaces may use the class; all namespaces when unset or
    /// empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Puts every Ingress of the class in this IngressGroup, which shares one load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IngressGroup>,

    /// internal or internet-facing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<LoadBalancerScheme>,

    /// The CIDRs allowed to reach the load balancers.
    #[serde(
        rename = "inboundCIDRs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(inner(length(max = 43)), length(max = 1000))]
    #[x_kube(validation = Rule::new(INBOUND_CIDRS_RULE).message("every entry must be a CIDR"))]
    pub inbound_cidrs: Vec<String>,

    /// The security policy of the HTTPS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub ssl_policy: Option<String>,

    /// The load balancers' subnets, by ID or by tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<SubnetSelector>,

    /// ipv4, dualstack or dualstack-without-public-ipv4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<IpAddressType>,

    /// Tags on every AWS resource made for the class's Ingresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,

    /// The target type of the target groups: instance or ip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,

    /// One load balancer, with this name, for the whole class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$"))]
    pub load_balancer_name: Option<String>,

    /// Load balancer attributes, such as idle_timeout.timeout_seconds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_attributes: Vec<Attribute>,

    /// Attributes of the listeners the Ingresses define, matched by protocol and port. Listeners
    /// listed here and in no Ingress are not created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,

    /// Capacity reserved on the load balancers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_load_balancer_capacity: Option<MinimumLoadBalancerCapacity>,

    /// Where the load balancers' IPv4 addresses come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam_configuration: Option<IpamConfiguration>,

    /// Managed prefix lists allowed to reach the load balancers.
    #[serde(
        rename = "prefixListsIDs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(inner(regex(pattern = r"^pl-[0-9a-f]+$")))]
    pub prefix_lists_ids: Vec<String>,

    /// The older spelling of prefixListsIDs, read when prefixListsIDs is empty.
    #[serde(
        rename = "PrefixListsIDs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(inner(regex(pattern = r"^pl-[0-9a-f]+$")))]
    pub prefix_lists_ids_legacy: Vec<String>,

    /// User authentication on the load balancers, with Cognito or an OIDC provider.
    #[serde(
        rename = "authenticationConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub authentication_configuration: Option<AuthConfig>,

    /// Redirects HTTP to HTTPS on this port, for every Ingress of the class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,5}$"))]
    pub ssl_redirect_port: Option<String>,

    /// A WAFv2 web ACL, by ARN, for the load balancers.
    #[serde(
        rename = "wafv2AclArn",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 2048))]
    pub wafv2_acl_arn: Option<String>,

    /// A WAFv2 web ACL, by name, for the load balancers.
    #[serde(
        rename = "wafv2AclName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 128))]
    pub wafv2_acl_name: Option<String>,
}

/// An IngressGroup: Ingresses that share one load balancer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct IngressGroup {
    /// The group's name: lowercase alphanumerics, '-' and '.', at most 63 characters.
    #[schemars(
        regex(
            pattern = r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$"
        ),
        length(min = 1, max = 63)
    )]
    pub name: String,
}

/// Subnets, by ID or by tag.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(ONE_SUBNET_SELECTOR_RULE).message("set exactly one of ids or tags"))]
pub struct SubnetSelector {
    /// Subnet IDs, at most one per availability zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^subnet-[0-9a-f]+$")), length(min = 1))]
    pub ids: Vec<String>,

    /// Subnets of the VPC where, for each key, the tag has one of the listed values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Vec<String>>,
}

/// An AWS tag.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Tag {
    #[schemars(length(min = 1, max = 128))]
    pub key: String,
    #[schemars(length(max = 256))]
    pub value: String,
}

/// An ELBv2 attribute.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Attribute {
    #[schemars(length(min = 1, max = 256))]
    pub key: String,
    pub value: String,
}

/// Attributes for the listener an Ingress defines on this protocol and port.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// HTTP or HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ListenerProtocol>,

    /// The listener's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,

    /// Listener attributes, such as routing.http.response.server.enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listener_attributes: Vec<Attribute>,
}

/// A load balancer capacity reservation.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MinimumLoadBalancerCapacity {
    /// Load balancer capacity units to reserve; 0 resets the reservation.
    #[schemars(range(min = 0))]
    pub capacity_units: i32,
}

/// IPAM settings for a load balancer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct IpamConfiguration {
    /// The IPAM pool preferred for public IPv4 addresses.
    #[serde(
        rename = "ipv4IPAMPoolId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(pattern = r"^ipam-pool-[0-9a-f]+$"))]
    pub ipv4_ipam_pool_id: Option<String>,
}

/// User authentication on a load balancer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthConfig {
    /// none, oidc or cognito.
    #[serde(rename = "type")]
    pub type_: AuthType,

    /// The Cognito user pool, for type cognito.
    #[serde(
        rename = "idpCognitoConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idp_cognito: Option<AuthIdpCognito>,

    /// The OIDC provider, for type oidc.
    #[serde(
        rename = "idpOidcConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idp_oidc: Option<AuthIdpOidc>,

    /// authenticate (the default), deny or allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_unauthenticated_request: Option<OnUnauthenticatedRequest>,

    /// User claims to request, space-separated, e.g. "email openid".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,

    /// The name of the session cookie.
    #[serde(
        rename = "sessionCookie",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub session_cookie_name: Option<String>,

    /// The longest an authenticated session lasts, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub session_timeout: Option<i64>,
}

/// A Cognito user pool.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AuthIdpCognito {
    /// The user pool's ARN.
    #[serde(rename = "userPoolARN")]
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:[0-9]{12}:userpool/\S+$"
    ))]
    pub user_pool_arn: String,

    /// The user pool client's ID.
    #[serde(rename = "userPoolClientID")]
    pub user_pool_client_id: String,

    /// The domain prefix (my-domain) or the full custom domain of the user pool.
    #[serde(rename = "userPoolDomain")]
    pub user_pool_domain: String,

    /// Up to 10 query parameters added to the redirect to the authorization endpoint.
    #[serde(
        rename = "authenticationRequestExtraParams",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(extend("minProperties" = 1, "maxProperties" = 10))]
    pub authentication_request_extra_params: BTreeMap<String, String>,
}

/// An OpenID Connect provider.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthIdpOidc {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub user_info_endpoint: String,

    /// A Secret, in the controller's namespace, with the keys clientID and clientSecret.
    pub secret_name: String,

    /// Up to 10 query parameters added to the redirect to the authorization endpoint.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("minProperties" = 1, "maxProperties" = 10))]
    pub authentication_request_extra_params: BTreeMap<String, String>,
}

/// The observed state of an IngressClassParams.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassParamsStatus {
    /// The generation the controller last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Whether the params are valid and in use, and why not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;
    use crate::crd::schema_test_util::{assert_pattern, enum_values, node, round_trip, rules};

    /// Every field LBC documents for IngressClassParams, as its docs write them.
    const LBC_MANIFEST: &str = r#"
apiVersion: elbv2.k8s.aws/v1beta1
kind: IngressClassParams
metadata:
  name: awesome-class
spec:
  namespaceSelector:
    matchLabels:
      team: team-a
  group:
    name: my-group
  scheme: internal
  inboundCIDRs: [10.0.0.0/16, "2600:1f14::/56"]
  sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06
  certificateArn:
    - arn:aws:acm:us-east-1:123456789:certificate/test-arn-1
    - arn:aws:acm:us-east-1:123456789:certificate/test-arn-2
  subnets:
    tags:
      kubernetes.io/role/internal-elb: ["1"]
      myKey: [myVal0, myVal1]
  ipAddressType: dualstack-without-public-ipv4
  tags:
    - key: org
      value: my-org
  targetType: ip
  loadBalancerName: name-1
  loadBalancerAttributes:
    - key: deletion_protection.enabled
      value: "true"
    - key: idle_timeout.timeout_seconds
      value: "120"
  listeners:
    - protocol: HTTPS
      port: 443
      listenerAttributes:
        - key: routing.http.response.server.enabled
          value: "false"
  minimumLoadBalancerCapacity:
    capacityUnits: 1000
  ipamConfiguration:
    ipv4IPAMPoolId: ipam-pool-000000000
  prefixListsIDs: [pl-00000000, pl-11111111]
  PrefixListsIDs: [pl-22222222]
  sslRedirectPort: "443"
  wafv2AclArn: arn:aws:wafv2:us-east-1:123456789012:regional/webacl/web/0123
  authenticationConfiguration:
    type: cognito
    idpCognitoConfiguration:
      userPoolARN: arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc
      userPoolClientID: client
      userPoolDomain: my-domain
      authenticationRequestExtraParams:
        display: page
    onUnauthenticatedRequest: authenticate
    scope: email openid
    sessionCookie: session
    sessionTimeout: 3600
"#;

    #[test]
    fn lbc_manifest_deserializes() {
        let params: IngressClassParams = round_trip(LBC_MANIFEST);
        assert_eq!(params.metadata.namespace, None);
        let spec = &params.spec;
        assert_eq!(
            spec.group.as_ref().map(|g| g.name.as_str()),
            Some("my-group")
        );
        assert_eq!(spec.scheme, Some(LoadBalancerScheme::Internal));
        assert_eq!(
            spec.ip_address_type,
            Some(IpAddressType::DualstackWithoutPublicIpv4)
        );
        assert_eq!(spec.certificate_arn.len(), 2);
        let subnets = spec.subnets.as_ref().expect("subnets");
        assert!(subnets.ids.is_empty());
        assert_eq!(subnets.tags["myKey"], ["myVal0", "myVal1"]);
        assert_eq!(spec.target_type, Some(TargetType::Ip));
        assert_eq!(spec.listeners[0].protocol, Some(ListenerProtocol::Https));
        assert_eq!(spec.listeners[0].port, Some(443));
        assert_eq!(spec.listeners[0].listener_attributes[0].value, "false");
        assert_eq!(
            spec.minimum_load_balancer_capacity
                .as_ref()
                .map(|c| c.capacity_units),
            Some(1000)
        );
        assert_eq!(spec.prefix_lists_ids, ["pl-00000000", "pl-11111111"]);
        assert_eq!(spec.prefix_lists_ids_legacy, ["pl-22222222"]);
        let auth = spec.authentication_configuration.as_ref().expect("auth");
        assert_eq!(auth.type_, AuthType::Cognito);
        assert_eq!(auth.session_timeout, Some(3600));
    }

    #[test]
    fn empty_params_are_valid() {
        let params: IngressClassParams = round_trip(
            "apiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata:\n  name: empty\nspec: {}\n",
        );
        assert_eq!(params.spec, IngressClassParamsSpec::default());
    }

    #[test]
    fn patterns_accept_lbc_examples_and_reject_malformed_values() {
        let crd = IngressClassParams::crd();
        assert_pattern(
            &crd,
            "spec.certificateArn[]",
            &[
                "arn:aws:acm:us-east-1:123456789:certificate/test-arn-1",
                "arn:aws:iam::123456789012:server-certificate/legacy",
            ],
            &["test-arn-1", "arn:aws:s3:::bucket/cert"],
        );
        assert_pattern(
            &crd,
            "spec.subnets.ids[]",
            &["subnet-0123456789abcdef0"],
            &["my-subnet-0123", "subnet-xxx", "subnet-"],
        );
        assert_pattern(
            &crd,
            "spec.group.name",
            &["my-group", "team.a"],
            &["My-Group", "-group", "group-"],
        );
        assert_pattern(
            &crd,
            "spec.loadBalancerName",
            &["name-1"],
            &["-name", "name_1"],
        );
        assert_pattern(
            &crd,
            "spec.prefixListsIDs[]",
            &["pl-00000000"],
            &["00000000"],
        );
        assert_pattern(&crd, "spec.PrefixListsIDs[]", &["pl-11111111"], &["pl-"]);
        assert_pattern(
            &crd,
            "spec.ipamConfiguration.ipv4IPAMPoolId",
            &["ipam-pool-000000000"],
            &["pool-1"],
        );
        assert_pattern(&crd, "spec.sslRedirectPort", &["443"], &["https", "443a"]);
    }

    #[test]
    fn cluster_scoped_with_lbc_columns() {
        let crd = IngressClassParams::crd();
        assert_eq!(crd.spec.scope, "Cluster");
        let columns: Vec<(String, String)> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect();
        assert_eq!(
            columns,
            [
                ("GROUP-NAME".to_string(), ".spec.group.name".to_string()),
                ("SCHEME".to_string(), ".spec.scheme".to_string()),
                (
                    "IP-ADDRESS-TYPE".to_string(),
                    ".spec.ipAddressType".to_string()
                ),
                ("AGE".to_string(), ".metadata.creationTimestamp".to_string()),
            ]
        );
    }

    #[test]
    fn schema_validates_enums_ports_and_selectors() {
        let crd = IngressClassParams::crd();
        assert_eq!(
            enum_values(node(&crd, "spec.scheme")),
            ["internal", "internet-facing"]
        );
        assert_eq!(
            enum_values(node(&crd, "spec.ipAddressType")),
            ["ipv4", "dualstack", "dualstack-without-public-ipv4"]
        );
        assert_eq!(
            enum_values(node(&crd, "spec.targetType")),
            ["instance", "ip"]
        );
        assert_eq!(
            enum_values(node(&crd, "spec.listeners[].protocol")),
            ["HTTP", "HTTPS"]
        );
        let port = node(&crd, "spec.listeners[].port");
        assert_eq!((port.minimum, port.maximum), (Some(1.0), Some(65535.0)));
        assert_eq!(
            rules(node(&crd, "spec.subnets")),
            [ONE_SUBNET_SELECTOR_RULE]
        );
        assert_eq!(node(&crd, "spec.subnets.ids").min_items, Some(1));
        assert_eq!(
            node(&crd, "spec.subnets.ids[]").pattern.as_deref(),
            Some(r"^subnet-[0-9a-f]+$")
        );
        assert_eq!(rules(node(&crd, "spec.inboundCIDRs")), [INBOUND_CIDRS_RULE]);
        assert_eq!(
            node(&crd, "spec.certificateArn[]").pattern.as_deref(),
            Some(CERTIFICATE_ARN_PATTERN)
        );
        let extra = node(
            &crd,
            "spec.authenticationConfiguration.idpOidcConfiguration.authenticationRequestExtraParams",
        );
        assert_eq!(
            (extra.min_properties, extra.max_properties),
            (Some(1), Some(10))
        );
        assert_eq!(
            node(&crd, "spec.authenticationConfiguration")
                .required
                .as_deref(),
            Some(&["type".to_string()][..])
        );
        // Both spellings of the prefix-list field exist side by side, as in LBC.
        assert!(node(&crd, "spec.PrefixListsIDs").items.is_some());
        assert!(node(&crd, "spec.prefixListsIDs").items.is_some());
    }
}
