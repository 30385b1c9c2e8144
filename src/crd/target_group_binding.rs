//! `TargetGroupBinding` (`elbv2.k8s.aws/v1beta1`): registers a Service's endpoints in an
//! existing ELBv2 target group.
//!
//! The spec is aws-load-balancer-controller's, field for field (names, optionality, enums), so
//! LBC manifests apply unchanged. Where LBC only checked a field in its webhook, the checks are
//! in the schema here, since causeway runs no webhook for this kind.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{INT_OR_STRING_PORT_MESSAGE, INT_OR_STRING_PORT_RULE, drop_null_enum_values};

/// Target group ARNs; empty is allowed because LBC treats an empty ARN as unset and templated
/// manifests rely on it (the spec-level rule still demands an ARN or a name).
pub const TARGET_GROUP_ARN_PATTERN: &str = r"^(?:arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/[A-Za-z0-9-]{1,32}/[A-Za-z0-9]+)?$";

/// Target group names as ELBv2 allows them, or empty (unset, as in LBC).
pub const TARGET_GROUP_NAME_PATTERN: &str = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?)?$";

/// IAM role ARNs, or empty (unset, as in LBC).
pub const ROLE_ARN_OR_EMPTY_PATTERN: &str = concat!("^(?:", iam_role_arn!(), ")?$");

/// VPC IDs in the lengths EC2 has issued, or empty (unset, as in LBC).
pub const VPC_ID_PATTERN: &str = r"^(?:vpc-(?:[0-9a-f]{8}|[0-9a-f]{17}|[0-9a-f]{32}))?$";

/// Target groups are named by ARN or by name; LBC's webhook rejected a binding with neither.
pub const TARGET_GROUP_REF_RULE: &str = "(has(self.targetGroupARN) && self.targetGroupARN != '') || (has(self.targetGroupName) && self.targetGroupName != '')";

/// A peer is an IP block or a security group, never both.
pub const ONE_PEER_RULE: &str = "has(self.ipBlock) != has(self.securityGroup)";

/// How targets are registered.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    Instance,
    Ip,
}

/// The IP family of a target group.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum TargetGroupIpAddressType {
    Ipv4,
    Ipv6,
}

/// A target group's protocol, as ELBv2 names it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetGroupProtocol {
    Http,
    Https,
    Tcp,
    Tls,
    Udp,
    TcpUdp,
    Geneve,
    Quic,
    TcpQuic,
}

/// The protocol of a security group rule.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "UPPERCASE")]
pub enum NetworkingProtocol {
    Tcp,
    Udp,
}

/// Registers the endpoints of a Service in an existing ELBv2 target group.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "elbv2.k8s.aws",
    version = "v1beta1",
    kind = "TargetGroupBinding",
    plural = "targetgroupbindings",
    singular = "targetgroupbinding",
    shortname = "tgb",
    category = "causeway",
    namespaced,
    status = "TargetGroupBindingStatus",
    derive = "PartialEq",
    doc = "TargetGroupBinding registers the endpoints of a Service in an existing ELBv2 target group.",
    printcolumn(
        name = "SERVICE-NAME",
        type_ = "string",
        json_path = ".spec.serviceRef.name",
        description = "The Kubernetes Service's name"
    ),
    printcolumn(
        name = "SERVICE-PORT",
        type_ = "string",
        json_path = ".spec.serviceRef.port",
        description = "The Kubernetes Service's port"
    ),
    printcolumn(
        name = "TARGET-TYPE",
        type_ = "string",
        json_path = ".spec.targetType",
        description = "The AWS TargetGroup's TargetType"
    ),
    printcolumn(
        name = "ARN",
        type_ = "string",
        json_path = ".spec.targetGroupARN",
        description = "The AWS TargetGroup's Amazon Resource Name",
        priority = 1
    ),
    printcolumn(
        name = "REGISTERED",
        type_ = "integer",
        json_path = ".status.registeredTargets",
        description = "Targets registered in the target group"
    ),
    printcolumn(
        name = "HEALTHY",
        type_ = "integer",
        json_path = ".status.healthyTargets",
        description = "Registered targets the load balancer reports healthy"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#,
        description = "Whether the binding is fully reconciled"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(TARGET_GROUP_REF_RULE).message("set targetGroupARN or targetGroupName"))]
#[schemars(transform = drop_null_enum_values)]
pub struct TargetGroupBindingSpec {
    /// The ARN of the target group. Takes precedence over targetGroupName.
    #[serde(
        rename = "targetGroupARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(pattern = TARGET_GROUP_ARN_PATTERN), length(max = 2048))]
    pub target_group_arn: Option<String>,

    /// The name of the target group, looked up when targetGroupARN is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TARGET_GROUP_NAME_PATTERN), length(max = 32))]
    pub target_group_name: Option<String>,

    /// Whether other clusters also register targets in this target group; if so, only targets
    /// this binding registered are ever deregistered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multi_cluster_target_group: bool,

    /// instance registers nodes on the Service's NodePort; ip registers pods. Inferred from the
    /// target group when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,

    /// The target group's protocol, needed to look the target group up by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_protocol: Option<TargetGroupProtocol>,

    /// The Service, and its port, whose endpoints become targets.
    pub service_ref: ServiceReference,

    /// Security group rules that let the load balancer reach the targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<TargetGroupBindingNetworking>,

    /// With instance targets, only nodes matching this selector are registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,

    /// The target group's IP family. Inferred from the target group when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<TargetGroupIpAddressType>,

    /// The target group's VPC. Inferred from the target group when unset.
    #[serde(rename = "vpcID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = VPC_ID_PATTERN))]
    pub vpc_id: Option<String>,

    /// A role to assume for calls about this target group, for a target group in another
    /// account. Needs ip targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_OR_EMPTY_PATTERN), length(max = 2048))]
    pub iam_role_arn_to_assume: Option<String>,

    /// The external ID to present when assuming iamRoleArnToAssume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1224))]
    pub assume_role_external_id: Option<String>,

    /// The target group's region, when it is not the controller's. Defaults to the region in
    /// targetGroupARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(?:[a-z]{2}(?:-[a-z]+)+-[0-9]+)?$"))]
    pub region: Option<String>,
}

/// A Service and one of its ports.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ServiceReference {
    /// The Service's name, in the binding's namespace.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,

    /// The Service port, by number or by name.
    #[x_kube(validation = Rule::new(INT_OR_STRING_PORT_RULE).message(INT_OR_STRING_PORT_MESSAGE))]
    pub port: IntOrString,
}

/// Security group rules that let the load balancer reach the targets.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct TargetGroupBindingNetworking {
    /// Ingress rules added to the targets' security groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub ingress: Vec<NetworkingIngressRule>,
}

/// Traffic allowed from some peers to some ports.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NetworkingIngressRule {
    /// Where traffic may come from.
    #[schemars(length(min = 1, max = 100))]
    pub from: Vec<NetworkingPeer>,

    /// Which ports it may reach; empty means every TCP port.
    #[schemars(length(max = 100))]
    pub ports: Vec<NetworkingPort>,
}

/// A source of traffic: an IP block or a security group.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(ONE_PEER_RULE).message("set exactly one of ipBlock or securityGroup"))]
pub struct NetworkingPeer {
    /// Traffic from a CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,

    /// Traffic from members of a security group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group: Option<SecurityGroup>,
}

/// An IPv4 or IPv6 CIDR.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct IpBlock {
    /// The CIDR, IPv4 or IPv6.
    #[schemars(length(max = 43))]
    #[x_kube(validation = Rule::new("isCIDR(self)").message("must be a CIDR"))]
    pub cidr: String,
}

/// An EC2 security group.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecurityGroup {
    /// The security group's ID.
    #[serde(rename = "groupID")]
    #[schemars(regex(pattern = r"^sg-[0-9a-f]+$"), length(max = 32))]
    pub group_id: String,
}

/// A port, and its protocol.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NetworkingPort {
    /// TCP when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<NetworkingProtocol>,

    /// Every port when unset. A number with instance targets; with ip targets it may also name
    /// a pod's port.
    // No CEL rule here: nested under two lists, the apiserver's cost estimate for an
    // int-or-string rule exceeds the CRD budget; the controller validates these ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
}

/// The observed state of a TargetGroupBinding.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupBindingStatus {
    /// The generation the controller last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, and the reasons it is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Targets registered in the target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub registered_targets: Option<i32>,

    /// Registered targets the load balancer reports healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub healthy_targets: Option<i32>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;
    use crate::crd::schema_test_util::{assert_pattern, enum_values, node, round_trip, rules};

    /// As LBC users write it: ARN, instance targets, both kinds of peer, a node selector.
    const LBC_MANIFEST: &str = r#"
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: web
  namespace: shop
spec:
  targetGroupARN: arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-tg/73e2d6bc24d8a067
  targetType: instance
  serviceRef:
    name: web
    port: 80
  networking:
    ingress:
      - from:
          - securityGroup:
              groupID: sg-0123456789abcdef0
          - ipBlock:
              cidr: 10.0.0.0/16
        ports:
          - protocol: TCP
            port: 30080
          - protocol: UDP
  nodeSelector:
    matchLabels:
      pool: edge
    matchExpressions:
      - key: topology.kubernetes.io/zone
        operator: In
        values: [us-west-2a, us-west-2b]
  ipAddressType: ipv4
  vpcID: vpc-0123456789abcdef0
"#;

    /// The fields LBC added later: lookup by name, named port, cross-account, multi-cluster.
    const LBC_MANIFEST_BY_NAME: &str = r#"
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata:
  name: api
  namespace: shop
spec:
  targetGroupName: shared-api
  targetGroupProtocol: HTTP
  multiClusterTargetGroup: true
  targetType: ip
  serviceRef:
    name: api
    port: https
  iamRoleArnToAssume: arn:aws:iam::210987654321:role/elb-targets
  assumeRoleExternalId: shop-cluster
  region: eu-west-1
  networking:
    ingress:
      - from:
          - ipBlock:
              cidr: 2600:1f14::/56
        ports: []
"#;

    #[test]
    fn lbc_manifest_deserializes() {
        let tgb: TargetGroupBinding = round_trip(LBC_MANIFEST);
        assert_eq!(tgb.metadata.namespace.as_deref(), Some("shop"));
        let spec = &tgb.spec;
        assert_eq!(
            spec.target_group_arn.as_deref(),
            Some(
                "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-tg/73e2d6bc24d8a067"
            )
        );
        assert_eq!(spec.target_type, Some(TargetType::Instance));
        assert_eq!(spec.service_ref.port, IntOrString::Int(80));
        let ingress = &spec.networking.as_ref().expect("networking").ingress;
        assert_eq!(ingress.len(), 1);
        assert_eq!(
            ingress[0].from[0]
                .security_group
                .as_ref()
                .map(|sg| sg.group_id.as_str()),
            Some("sg-0123456789abcdef0")
        );
        assert_eq!(
            ingress[0].from[1]
                .ip_block
                .as_ref()
                .map(|b| b.cidr.as_str()),
            Some("10.0.0.0/16")
        );
        assert_eq!(ingress[0].ports[0].port, Some(IntOrString::Int(30080)));
        assert_eq!(ingress[0].ports[1].protocol, Some(NetworkingProtocol::Udp));
        assert_eq!(ingress[0].ports[1].port, None);
        let selector = spec.node_selector.as_ref().expect("nodeSelector");
        assert_eq!(
            selector
                .match_labels
                .as_ref()
                .and_then(|l| l.get("pool"))
                .map(String::as_str),
            Some("edge")
        );
        assert_eq!(selector.match_expressions.as_ref().map(Vec::len), Some(1));
        assert_eq!(spec.ip_address_type, Some(TargetGroupIpAddressType::Ipv4));
        assert_eq!(spec.vpc_id.as_deref(), Some("vpc-0123456789abcdef0"));
        assert!(!spec.multi_cluster_target_group);
    }

    #[test]
    fn lbc_manifest_with_newer_fields_deserializes() {
        let tgb: TargetGroupBinding = round_trip(LBC_MANIFEST_BY_NAME);
        let spec = &tgb.spec;
        assert_eq!(spec.target_group_arn, None);
        assert_eq!(spec.target_group_name.as_deref(), Some("shared-api"));
        assert_eq!(spec.target_group_protocol, Some(TargetGroupProtocol::Http));
        assert!(spec.multi_cluster_target_group);
        assert_eq!(spec.service_ref.port, IntOrString::String("https".into()));
        assert_eq!(
            spec.iam_role_arn_to_assume.as_deref(),
            Some("arn:aws:iam::210987654321:role/elb-targets")
        );
        assert_eq!(spec.region.as_deref(), Some("eu-west-1"));
        let rule = &spec.networking.as_ref().expect("networking").ingress[0];
        assert!(rule.ports.is_empty());
    }

    #[test]
    fn unknown_enum_values_are_rejected() {
        let manifest = LBC_MANIFEST.replace("targetType: instance", "targetType: pod");
        let value: serde_json::Value = serde_saphyr::from_str(&manifest).expect("valid YAML");
        assert!(serde_json::from_value::<TargetGroupBinding>(value).is_err());
    }

    #[test]
    fn schema_validates_arns_ports_and_peers() {
        let crd = TargetGroupBinding::crd();
        let arn = node(&crd, "spec.targetGroupARN");
        assert_eq!(arn.pattern.as_deref(), Some(TARGET_GROUP_ARN_PATTERN));
        assert!(TARGET_GROUP_ARN_PATTERN.contains(r":[0-9]{12}:targetgroup/"));
        assert_eq!(
            node(&crd, "spec.iamRoleArnToAssume").pattern.as_deref(),
            Some(ROLE_ARN_OR_EMPTY_PATTERN)
        );
        assert_eq!(rules(node(&crd, "spec")), [TARGET_GROUP_REF_RULE]);

        let service_port = node(&crd, "spec.serviceRef.port");
        assert_eq!(service_port.x_kubernetes_int_or_string, Some(true));
        assert_eq!(rules(service_port), [INT_OR_STRING_PORT_RULE]);
        assert!(INT_OR_STRING_PORT_RULE.contains("self >= 1 && self <= 65535"));
        let rule_port = node(&crd, "spec.networking.ingress[].ports[].port");
        // Too costly for the apiserver's CEL budget this deep in nested lists.
        assert!(rules(rule_port).is_empty());

        assert_eq!(
            rules(node(&crd, "spec.networking.ingress[].from[]")),
            [ONE_PEER_RULE]
        );
        assert_eq!(
            rules(node(&crd, "spec.networking.ingress[].from[].ipBlock.cidr")),
            ["isCIDR(self)"]
        );
        assert_eq!(
            node(&crd, "spec.networking.ingress[].from").min_items,
            Some(1)
        );
        assert_eq!(
            node(&crd, "spec.serviceRef").required.as_deref(),
            Some(&["name".to_string(), "port".to_string()][..])
        );
        assert_eq!(
            node(&crd, "spec").required.as_deref(),
            Some(&["serviceRef".to_string()][..])
        );
    }

    #[test]
    fn patterns_accept_real_ids_and_reject_malformed_ones() {
        let crd = TargetGroupBinding::crd();
        assert_pattern(
            &crd,
            "spec.targetGroupARN",
            &[
                "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-tg/73e2d6bc24d8a067",
                "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:targetgroup/a/1",
                "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:targetgroup/b/2",
                "",
            ],
            &[
                "arn:aws:elasticloadbalancing:us-west-2:1234:targetgroup/web/73e2d6bc24d8a067",
                "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
                "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web",
                "web-tg",
            ],
        );
        assert_pattern(
            &crd,
            "spec.targetGroupName",
            &["shared-api", "a", ""],
            &[
                "-api",
                "api-",
                "shared_api",
                "a-name-that-is-longer-than-32-chars",
            ],
        );
        assert_pattern(
            &crd,
            "spec.iamRoleArnToAssume",
            &[
                "arn:aws:iam::210987654321:role/elb-targets",
                "arn:aws:iam::210987654321:role/path/to/r",
                "",
            ],
            &[
                "elb-targets",
                "arn:aws:iam::2109:role/elb-targets",
                "arn:aws:iam::210987654321:user/u",
            ],
        );
        assert_pattern(
            &crd,
            "spec.vpcID",
            &["vpc-01234567", "vpc-0123456789abcdef0", ""],
            &[
                "vpc-123",
                "vpc-0123456789ABCDEF0",
                "vpc-0123456789abcdef",
                "subnet-01234567",
            ],
        );
        assert_pattern(
            &crd,
            "spec.region",
            &["eu-west-1", "us-gov-west-1", "cn-north-1", ""],
            &["west", "EU-WEST-1"],
        );
        assert_pattern(
            &crd,
            "spec.networking.ingress[].from[].securityGroup.groupID",
            &["sg-0123456789abcdef0", "sg-01234567"],
            &["sg-", "0123456789abcdef0", "sg-XYZ"],
        );
    }

    #[test]
    fn schema_enums_match_lbc() {
        let crd = TargetGroupBinding::crd();
        assert_eq!(
            enum_values(node(&crd, "spec.targetType")),
            ["instance", "ip"]
        );
        assert_eq!(
            enum_values(node(&crd, "spec.ipAddressType")),
            ["ipv4", "ipv6"]
        );
        assert_eq!(
            enum_values(node(&crd, "spec.networking.ingress[].ports[].protocol")),
            ["TCP", "UDP"]
        );
        assert_eq!(
            enum_values(node(&crd, "spec.targetGroupProtocol")),
            [
                "HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC"
            ]
        );
    }

    #[test]
    fn status_conditions_merge_by_type() {
        let crd = TargetGroupBinding::crd();
        let conditions = node(&crd, "status.conditions");
        assert_eq!(conditions.x_kubernetes_list_type.as_deref(), Some("map"));
        assert_eq!(
            conditions.x_kubernetes_list_map_keys.as_deref(),
            Some(&["type".to_string()][..])
        );
        assert_eq!(node(&crd, "status.registeredTargets").minimum, Some(0.0));
        assert_eq!(
            node(&crd, "status.healthyTargets").format.as_deref(),
            Some("int32")
        );
    }

    #[test]
    fn printer_columns_extend_lbcs() {
        let crd = TargetGroupBinding::crd();
        let columns = crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default();
        let summary: Vec<(&str, &str, Option<i32>)> = columns
            .iter()
            .map(|c| (c.name.as_str(), c.json_path.as_str(), c.priority))
            .collect();
        assert_eq!(
            summary,
            [
                ("SERVICE-NAME", ".spec.serviceRef.name", None),
                ("SERVICE-PORT", ".spec.serviceRef.port", None),
                ("TARGET-TYPE", ".spec.targetType", None),
                ("ARN", ".spec.targetGroupARN", Some(1)),
                ("REGISTERED", ".status.registeredTargets", None),
                ("HEALTHY", ".status.healthyTargets", None),
                (
                    "READY",
                    r#".status.conditions[?(@.type=="Ready")].status"#,
                    None
                ),
                ("AGE", ".metadata.creationTimestamp", None),
            ]
        );
    }
}
