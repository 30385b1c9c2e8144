//! `LoadBalancerConfiguration`: the load balancer a Gateway (or every Gateway of a GatewayClass)
//! gets. A Gateway names it in `spec.infrastructure.parametersRef`, a GatewayClass in
//! `spec.parametersRef`; when both do, the class's `mergingMode` decides which wins per field.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Attribute, Tags};
use crate::crd::drop_null_enum_values;

pub use crate::crd::ingress_class_params::{IpAddressType, LoadBalancerScheme};

/// A listener's key, `PROTOCOL:PORT`. Either half may be left empty, as in LBC.
pub const PROTOCOL_PORT_PATTERN: &str = r"^(HTTP|HTTPS|TLS|TCP|UDP|TCP_UDP)?:(6553[0-5]|655[0-2]\d|65[0-4]\d{2}|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})?$";

/// verify mode needs a trust store.
pub const VERIFY_NEEDS_TRUST_STORE_RULE: &str = "!(self.mode == 'verify' && !has(self.trustStore))";
/// Only verify mode takes a trust store.
pub const TRUST_STORE_ONLY_WITH_VERIFY_RULE: &str =
    "!(self.mode != 'verify' && has(self.trustStore))";
/// Only verify mode can ignore expired client certificates.
pub const IGNORE_EXPIRY_ONLY_WITH_VERIFY_RULE: &str =
    "!(self.mode != 'verify' && has(self.ignoreClientCertificateExpiry))";
/// Only verify mode advertises the trust store's CA names.
pub const ADVERTISE_CA_NAMES_ONLY_WITH_VERIFY_RULE: &str =
    "!(self.mode != 'verify' && has(self.advertiseTrustStoreCaNames))";

/// Which configuration wins a field both the Gateway's and the GatewayClass's set.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalancerConfigMergeMode {
    PreferGateway,
    PreferGatewayClass,
}

/// The ALPN policy of a TLS listener.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlpnPolicy {
    #[serde(rename = "HTTP1Only")]
    Http1Only,
    #[serde(rename = "HTTP2Only")]
    Http2Only,
    #[serde(rename = "HTTP2Optional")]
    Http2Optional,
    #[serde(rename = "HTTP2Preferred")]
    Http2Preferred,
    None,
}

/// Whether the listener advertises its trust store's CA names to clients.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AdvertiseTrustStoreCaNames {
    On,
    Off,
}

/// How a listener handles client certificates.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum MutualAuthenticationMode {
    Off,
    Passthrough,
    Verify,
}

/// The load balancer of a Gateway, or the defaults of every Gateway of a GatewayClass.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "gateway.k8s.aws",
    version = "v1",
    kind = "LoadBalancerConfiguration",
    plural = "loadbalancerconfigurations",
    singular = "loadbalancerconfiguration",
    category = "causeway",
    namespaced,
    status = "LoadBalancerConfigurationStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "LoadBalancerConfiguration sets up the load balancer of a Gateway or a GatewayClass.",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = drop_null_enum_values)]
pub struct LoadBalancerConfigurationSpec {
    /// Which side wins when a Gateway and its GatewayClass both have a configuration; read only
    /// on the GatewayClass's. LBC prefers the GatewayClass when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merging_mode: Option<LoadBalancerConfigMergeMode>,

    /// The load balancer's name; generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub load_balancer_name: Option<String>,

    /// internal or internet-facing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<LoadBalancerScheme>,

    /// ipv4, dualstack or dualstack-without-public-ipv4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<IpAddressType>,

    /// NLB: on or off, whether security group rules apply to PrivateLink traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_security_group_inbound_rules_on_private_link_traffic: Option<String>,

    /// ALB on Outposts: the customer-owned IPv4 pool to take addresses from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_owned_ipv4_pool: Option<String>,

    /// ALB: the IPAM pool to take IPv4 addresses from.
    #[serde(
        rename = "ipv4IPAMPoolId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_ipam_pool_id: Option<String>,

    /// The load balancer's subnets, one entry each. Wins over loadBalancerSubnetsSelector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_subnets: Option<Vec<SubnetConfiguration>>,

    /// Subnets of the VPC where, for each key, the tag has one of the listed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_subnets_selector: Option<BTreeMap<String, Vec<String>>>,

    /// Settings of individual listeners, matched by protocolPort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_configurations: Option<Vec<ListenerConfiguration>>,

    /// NLB: no security groups at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_security_group: Option<bool>,

    /// Security groups, by ID or name, instead of the one the controller would make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,

    /// Managed prefix lists allowed to reach the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_prefixes: Option<Vec<String>>,

    /// CIDRs allowed to reach the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ranges: Option<Vec<String>>,

    /// Load balancer attributes, such as idle_timeout.timeout_seconds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_attributes: Vec<Attribute>,

    /// Tags on every AWS resource made for the Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,

    /// NLB: security group rules for ICMP, so Path MTU discovery works.
    #[serde(
        rename = "enableICMP",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_icmp: Option<bool>,

    /// Whether the controller adds rules to the backends' security groups when securityGroups
    /// is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_backend_security_group_rules: Option<bool>,

    /// Capacity reserved on the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_load_balancer_capacity: Option<MinimumLoadBalancerCapacity>,

    /// ALB: the WAFv2 web ACL to associate.
    #[serde(rename = "wafV2", default, skip_serializing_if = "Option::is_none")]
    pub waf_v2: Option<Wafv2Configuration>,

    /// ALB: Shield Advanced protection.
    #[serde(
        rename = "shieldConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shield_advanced: Option<ShieldConfiguration>,

    /// A TargetGroupConfiguration in this namespace, without a targetReference, whose
    /// defaultConfiguration every Service backend of the Gateway starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_target_group_configuration: Option<DefaultTargetGroupConfigurationReference>,
}

/// One subnet of the load balancer, and what NLB addresses it gets there.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SubnetConfiguration {
    /// The subnet's ID or Name tag.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identifier: String,

    /// NLB: the Elastic IP allocation for this subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip_allocation: Option<String>,

    /// NLB: the private IPv4 address in this subnet.
    #[serde(
        rename = "privateIPv4Allocation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub private_ipv4_allocation: Option<String>,

    /// NLB: the IPv6 address in this subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_allocation: Option<String>,

    /// NLB: a /80 of the subnet's IPv6 CIDR for source NAT, or auto_assigned.
    #[serde(
        rename = "sourceNatIPv6Prefix",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_nat_ipv6_prefix: Option<String>,
}

/// Settings of the listener with this protocol and port.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerConfiguration {
    /// The listener, as PROTOCOL:PORT (e.g. HTTPS:443).
    #[schemars(regex(pattern = PROTOCOL_PORT_PATTERN))]
    pub protocol_port: String,

    /// The default certificate's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_certificate: Option<String>,

    /// More certificate ARNs for the listener.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,

    /// The security policy of an HTTPS or TLS listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,

    /// NLB TLS listeners: which protocols ALPN negotiates; None (the schema default) negotiates
    /// nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "None"))]
    pub alpn_policy: Option<AlpnPolicy>,

    /// NLB: sticky routing across weighted target groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_stickiness: Option<bool>,

    /// ALB HTTPS listeners: mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutual_authentication: Option<MutualAuthenticationAttributes>,

    /// Listener attributes, such as routing.http.response.server.enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listener_attributes: Vec<Attribute>,

    /// NLB: turns UDP listeners into QUIC and TCP_UDP into TCP_QUIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic_enabled: Option<bool>,
}

/// Mutual TLS on a listener. Only verify mode takes the other settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(VERIFY_NEEDS_TRUST_STORE_RULE)
        .message("trustStore is required when mutualAuthentication mode is 'verify'"),
    validation = Rule::new(TRUST_STORE_ONLY_WITH_VERIFY_RULE)
        .message("Mutual Authentication mode 'off' or 'passthrough' does not support 'trustStore'"),
    validation = Rule::new(IGNORE_EXPIRY_ONLY_WITH_VERIFY_RULE)
        .message("Mutual Authentication mode 'off' or 'passthrough' does not support 'ignoreClientCertificateExpiry'"),
    validation = Rule::new(ADVERTISE_CA_NAMES_ONLY_WITH_VERIFY_RULE)
        .message("Mutual Authentication mode 'off' or 'passthrough' does not support 'advertiseTrustStoreCaNames'")
)]
pub struct MutualAuthenticationAttributes {
    /// on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_trust_store_ca_names: Option<AdvertiseTrustStoreCaNames>,

    /// Whether expired client certificates are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_client_certificate_expiry: Option<bool>,

    /// off, passthrough or verify.
    pub mode: MutualAuthenticationMode,

    /// The trust store, by name or ARN, for verify mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_store: Option<String>,
}

/// Shield Advanced protection for the load balancer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ShieldConfiguration {
    /// Whether the load balancer is protected.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enabled: bool,
}

/// A WAFv2 web ACL for the load balancer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Wafv2Configuration {
    /// The web ACL.
    #[serde(rename = "webACL")]
    pub acl: String,
}

/// A load balancer capacity reservation.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MinimumLoadBalancerCapacity {
    /// Load balancer capacity units to reserve.
    pub capacity_units: i32,
}

/// A TargetGroupConfiguration in the LoadBalancerConfiguration's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DefaultTargetGroupConfigurationReference {
    /// The TargetGroupConfiguration's name.
    pub name: String,
}

/// Which generations of the configuration the controller has applied.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerConfigurationStatus {
    /// The generation applied through a Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_gateway_configuration_generation: Option<i64>,

    /// The generation applied through a GatewayClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_gateway_class_configuration_generation: Option<i64>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;
    use crate::crd::schema_test_util::{assert_pattern, enum_values, node, round_trip, rules};

    /// Every field LBC's guide shows, gathered into one object as its examples write them.
    /// The guide leaves `on` unquoted, which YAML 1.1 parsers read as a boolean; it is quoted.
    const LBC_MANIFEST: &str = r#"
apiVersion: gateway.k8s.aws/v1
kind: LoadBalancerConfiguration
metadata:
  name: example-config
  namespace: echoserver
spec:
  mergingMode: prefer-gateway-class
  loadBalancerName: foo
  scheme: internal
  ipAddressType: dualstack
  enforceSecurityGroupInboundRulesOnPrivateLinkTraffic: "on"
  customerOwnedIpv4Pool: coip-1234
  ipv4IPAMPoolId: ipam-1234
  loadBalancerSubnets:
    - identifier: "my-subnet"
      eipAllocation: "eip-1234"
      privateIPv4Allocation: "127.0.0.1"
      ipv6Allocation: "69e1:9570:c975:1af1:8073:384c:5aae:53c6"
      sourceNatIPv6Prefix: "2001:db8::/32"
  loadBalancerSubnetsSelector:
    key1: [k1, k2, k3]
  listenerConfigurations:
    - protocolPort: HTTPS:443
      defaultCertificate: my-cert
      certificates: [arn-1, arn2, arn3]
      sslPolicy: ELBSecurityPolicy-2016-08
      mutualAuthentication:
        advertiseTrustStoreCaNames: "off"
        ignoreClientCertificateExpiry: true
        mode: verify
        trustStore: ts-1234
      listenerAttributes:
        - key: k1
          value: v1
    - protocolPort: TLS:80
      alpnPolicy: HTTP1Only
      targetGroupStickiness: true
    - protocolPort: UDP:80
      quicEnabled: true
  disableSecurityGroup: true
  securityGroups: ["sg1", "sg2"]
  securityGroupPrefixes: ["pl1", "pl2"]
  sourceRanges: ["2001:db8::/32", "127.0.0.1/24"]
  loadBalancerAttributes:
    - key: k1
      value: v1
    - key: k2
      value: v2
  tags:
    tag-k1: v1
    tag-k2: v2
  enableICMP: true
  manageBackendSecurityGroupRules: true
  minimumLoadBalancerCapacity:
    capacityUnits: 100000
  wafV2:
    webACL: "my-web-acl"
  shieldConfiguration:
    enabled: true
  defaultTargetGroupConfiguration:
    name: my-default-tgc
status:
  observedGatewayConfigurationGeneration: 3
  observedGatewayClassConfigurationGeneration: 1
"#;

    #[test]
    fn lbc_manifest_deserializes() {
        let config: LoadBalancerConfiguration = round_trip(LBC_MANIFEST);
        assert_eq!(config.metadata.namespace.as_deref(), Some("echoserver"));
        let spec = &config.spec;
        assert_eq!(
            spec.merging_mode,
            Some(LoadBalancerConfigMergeMode::PreferGatewayClass)
        );
        assert_eq!(spec.load_balancer_name.as_deref(), Some("foo"));
        assert_eq!(spec.scheme, Some(LoadBalancerScheme::Internal));
        assert_eq!(spec.ip_address_type, Some(IpAddressType::Dualstack));
        assert_eq!(
            spec.enforce_security_group_inbound_rules_on_private_link_traffic
                .as_deref(),
            Some("on")
        );
        assert_eq!(spec.ipv4_ipam_pool_id.as_deref(), Some("ipam-1234"));

        let subnets = spec.load_balancer_subnets.as_deref().expect("subnets");
        assert_eq!(subnets[0].identifier, "my-subnet");
        assert_eq!(
            subnets[0].private_ipv4_allocation.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            subnets[0].source_nat_ipv6_prefix.as_deref(),
            Some("2001:db8::/32")
        );
        let selector = spec
            .load_balancer_subnets_selector
            .as_ref()
            .expect("selector");
        assert_eq!(selector["key1"], ["k1", "k2", "k3"]);

        let listeners = spec.listener_configurations.as_deref().expect("listeners");
        assert_eq!(listeners.len(), 3);
        assert_eq!(listeners[0].protocol_port, "HTTPS:443");
        assert_eq!(listeners[0].certificates, ["arn-1", "arn2", "arn3"]);
        let mtls = listeners[0].mutual_authentication.as_ref().expect("mtls");
        assert_eq!(mtls.mode, MutualAuthenticationMode::Verify);
        assert_eq!(
            mtls.advertise_trust_store_ca_names,
            Some(AdvertiseTrustStoreCaNames::Off)
        );
        assert_eq!(mtls.trust_store.as_deref(), Some("ts-1234"));
        assert_eq!(listeners[0].listener_attributes[0].key, "k1");
        assert_eq!(listeners[1].alpn_policy, Some(AlpnPolicy::Http1Only));
        assert_eq!(listeners[1].target_group_stickiness, Some(true));
        assert_eq!(listeners[2].quic_enabled, Some(true));
        assert_eq!(listeners[2].alpn_policy, None);

        assert_eq!(spec.disable_security_group, Some(true));
        assert_eq!(
            spec.security_groups.as_deref(),
            Some(&["sg1".to_string(), "sg2".to_string()][..])
        );
        assert_eq!(spec.load_balancer_attributes.len(), 2);
        assert_eq!(spec.tags.as_ref().map(|t| t["tag-k2"].as_str()), Some("v2"));
        assert_eq!(spec.enable_icmp, Some(true));
        assert_eq!(
            spec.minimum_load_balancer_capacity
                .as_ref()
                .map(|c| c.capacity_units),
            Some(100000)
        );
        assert_eq!(
            spec.waf_v2.as_ref().map(|w| w.acl.as_str()),
            Some("my-web-acl")
        );
        assert_eq!(
            spec.shield_advanced,
            Some(ShieldConfiguration { enabled: true })
        );
        assert_eq!(
            spec.default_target_group_configuration
                .as_ref()
                .map(|r| r.name.as_str()),
            Some("my-default-tgc")
        );
        let status = config.status.as_ref().expect("status");
        assert_eq!(status.observed_gateway_configuration_generation, Some(3));
        assert_eq!(
            status.observed_gateway_class_configuration_generation,
            Some(1)
        );
    }

    #[test]
    fn unset_fields_are_not_serialized() {
        let config: LoadBalancerConfiguration = round_trip(
            "apiVersion: gateway.k8s.aws/v1\nkind: LoadBalancerConfiguration\nmetadata:\n  name: empty\nspec: {}\n",
        );
        assert_eq!(config.spec, LoadBalancerConfigurationSpec::default());
        let listener = ListenerConfiguration {
            protocol_port: "HTTP:80".into(),
            default_certificate: None,
            certificates: Vec::new(),
            ssl_policy: None,
            alpn_policy: None,
            target_group_stickiness: None,
            mutual_authentication: None,
            listener_attributes: Vec::new(),
            quic_enabled: None,
        };
        assert_eq!(
            serde_json::to_value(&listener).expect("serializes"),
            serde_json::json!({"protocolPort": "HTTP:80"})
        );
        assert_eq!(
            serde_json::to_value(ShieldConfiguration::default()).expect("serializes"),
            serde_json::json!({})
        );
        assert_eq!(
            serde_json::to_value(SubnetConfiguration::default()).expect("serializes"),
            serde_json::json!({})
        );
    }

    #[test]
    fn explicit_empty_lists_survive_a_round_trip() {
        // Go pointers to slices tell an empty list from an unset one; so do the types here.
        let config: LoadBalancerConfiguration = round_trip(
            "apiVersion: gateway.k8s.aws/v1\nkind: LoadBalancerConfiguration\nmetadata:\n  name: no-sgs\nspec:\n  securityGroups: []\n",
        );
        assert_eq!(config.spec.security_groups, Some(Vec::new()));
    }

    #[test]
    fn schema_carries_lbc_enums_defaults_and_rules() {
        let crd = LoadBalancerConfiguration::crd();
        assert_eq!(
            enum_values(node(&crd, "spec.mergingMode")),
            ["prefer-gateway", "prefer-gateway-class"]
        );
        assert_eq!(
            enum_values(node(&crd, "spec.scheme")),
            ["internal", "internet-facing"]
        );
        assert_eq!(
            enum_values(node(&crd, "spec.ipAddressType")),
            ["ipv4", "dualstack", "dualstack-without-public-ipv4"]
        );
        let alpn = node(&crd, "spec.listenerConfigurations[].alpnPolicy");
        assert_eq!(
            enum_values(alpn),
            [
                "HTTP1Only",
                "HTTP2Only",
                "HTTP2Optional",
                "HTTP2Preferred",
                "None"
            ]
        );
        assert_eq!(
            alpn.default.as_ref().map(|d| &d.0),
            Some(&serde_json::json!("None"))
        );
        let mtls = "spec.listenerConfigurations[].mutualAuthentication";
        assert_eq!(
            enum_values(node(&crd, &format!("{mtls}.mode"))),
            ["off", "passthrough", "verify"]
        );
        assert_eq!(
            enum_values(node(&crd, &format!("{mtls}.advertiseTrustStoreCaNames"))),
            ["on", "off"]
        );
        assert_eq!(
            rules(node(&crd, mtls)),
            [
                VERIFY_NEEDS_TRUST_STORE_RULE,
                TRUST_STORE_ONLY_WITH_VERIFY_RULE,
                IGNORE_EXPIRY_ONLY_WITH_VERIFY_RULE,
                ADVERTISE_CA_NAMES_ONLY_WITH_VERIFY_RULE,
            ]
        );
        assert_eq!(
            node(&crd, mtls).required.as_deref(),
            Some(&["mode".to_string()][..])
        );
        let name = node(&crd, "spec.loadBalancerName");
        assert_eq!((name.min_length, name.max_length), (Some(1), Some(32)));
        assert_eq!(
            node(&crd, "spec.minimumLoadBalancerCapacity.capacityUnits")
                .format
                .as_deref(),
            Some("int32")
        );
        assert_eq!(
            node(&crd, "spec.wafV2").required.as_deref(),
            Some(&["webACL".to_string()][..])
        );
        assert_eq!(node(&crd, "spec.loadBalancerSubnets[]").required, None);
        assert_eq!(node(&crd, "spec.shieldConfiguration").required, None);
        assert_eq!(
            node(&crd, "status.observedGatewayClassConfigurationGeneration")
                .format
                .as_deref(),
            Some("int64")
        );
    }

    #[test]
    fn protocol_port_pattern_matches_lbc() {
        let crd = LoadBalancerConfiguration::crd();
        assert_pattern(
            &crd,
            "spec.listenerConfigurations[].protocolPort",
            &[
                "HTTPS:443",
                "TLS:80",
                "TCP_UDP:65535",
                "UDP:1",
                "HTTP:",
                ":8080",
            ],
            &[
                "HTTPS",
                "HTTPS:0",
                "HTTPS:65536",
                "GRPC:443",
                "https:443",
                "HTTPS:0443",
            ],
        );
    }
}
