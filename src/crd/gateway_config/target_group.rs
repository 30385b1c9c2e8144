//! `TargetGroupConfiguration`: settings of the target groups made for one Service (or another
//! backend kind) behind a Gateway, with per-route overrides. Without a `targetReference` it only
//! serves as the defaults a LoadBalancerConfiguration's `defaultTargetGroupConfiguration` names.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Attribute, Tags};
use crate::crd::drop_null_enum_values;

pub use crate::crd::target_group_binding::{TargetGroupIpAddressType, TargetType};

/// The protocols a health check can use.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "UPPERCASE")]
pub enum TargetGroupHealthCheckProtocol {
    Http,
    Https,
    Tcp,
}

/// A target group's protocol. LBC's Go type also names QUIC and TCP_QUIC, but its schema does
/// not admit them (QUIC comes from a listener's quicEnabled), so neither does this enum.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    Tls,
    Udp,
    TcpUdp,
}

/// The protocol version of an HTTP or HTTPS target group.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProtocolVersion {
    Http1,
    Http2,
    Grpc,
}

/// Target group settings for a backend, with overrides for particular routes.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "gateway.k8s.aws",
    version = "v1",
    kind = "TargetGroupConfiguration",
    plural = "targetgroupconfigurations",
    singular = "targetgroupconfiguration",
    category = "causeway",
    namespaced,
    status = "TargetGroupConfigurationStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "TargetGroupConfiguration sets up the target groups a Gateway makes for a backend.",
    printcolumn(
        name = "SERVICE-NAME",
        type_ = "string",
        json_path = ".spec.targetReference.name",
        description = "The Kubernetes Service's name"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = drop_null_enum_values)]
pub struct TargetGroupConfigurationSpec {
    /// The backend, in this namespace, these settings are for. Unset: the object is only a set
    /// of defaults for a LoadBalancerConfiguration to name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_reference: Option<Reference>,

    /// Settings for every route, unless a routeConfigurations entry overrides them.
    #[serde(default, skip_serializing_if = "TargetGroupProps::is_empty")]
    pub default_configuration: TargetGroupProps,

    /// Settings for particular routes; the most specific routeIdentifier match is merged over
    /// defaultConfiguration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_configurations: Vec<RouteConfiguration>,
}

/// A Kubernetes object in the configuration's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The object's API group; the core group when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = ""))]
    pub group: Option<String>,

    /// The object's kind: Service, or Gateway for a Gateway as a backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Service"))]
    pub kind: Option<String>,

    /// The object's name.
    pub name: String,
}

/// The responses a health check counts as healthy; set one of the two.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckMatcher {
    /// HTTP codes, e.g. "200" or "200-299".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_code: Option<String>,

    /// gRPC codes, e.g. "0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_code: Option<String>,
}

/// How the load balancer checks a target's health. ELBv2's defaults apply to unset fields.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckConfiguration {
    /// Consecutive successes before an unhealthy target is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold_count: Option<i32>,

    /// Seconds between checks of one target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_interval: Option<i32>,

    /// The path an HTTP(S) check requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<String>,

    /// The port checked; the traffic port when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_port: Option<String>,

    /// HTTP, HTTPS or TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_protocol: Option<TargetGroupHealthCheckProtocol>,

    /// Seconds without a response that fail a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_timeout: Option<i32>,

    /// Consecutive failures before a target is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold_count: Option<i32>,

    /// The responses that count as healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<HealthCheckMatcher>,
}

/// A route, or every route of a kind (and namespace), to match by specificity.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct RouteIdentifier {
    /// The route's kind, e.g. HTTPRoute.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,

    /// The route's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,

    /// The route's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Target group settings for the routes a routeIdentifier matches.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfiguration {
    /// The routes the settings apply to.
    pub route_identifier: RouteIdentifier,

    /// The settings, merged over defaultConfiguration.
    pub target_group_props: TargetGroupProps,
}

/// The settings of one target group. Unset fields are inferred or taken from the defaults.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupProps {
    /// The target group's name; generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_name: Option<String>,

    /// ipv4 or ipv6; inferred when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<TargetGroupIpAddressType>,

    /// The health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_config: Option<HealthCheckConfiguration>,

    /// With instance targets, only matching nodes are registered.
    // Atomic as in LBC's CRD (and Kubernetes' own selectors): server-side apply replaces a
    // selector whole rather than merging two managers' terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub node_selector: Option<LabelSelector>,

    /// Target group attributes, such as deregistration_delay.timeout_seconds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_group_attributes: Vec<Attribute>,

    /// instance or ip; instance when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,

    /// The target group's protocol; inferred when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,

    /// HTTP1, HTTP2 or GRPC, for HTTP and HTTPS target groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<ProtocolVersion>,

    /// ALB: the port targets report their capacity on. Fixed once the target group exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_control_port: Option<i32>,

    /// Whether other clusters or Services may register targets in the target group too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_multi_cluster: Option<bool>,

    /// Tags on the target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
}

impl TargetGroupProps {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Which generations of the configuration the controller has applied.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupConfigurationStatus {
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
    use crate::crd::schema_test_util::{enum_values, node, round_trip};

    /// LBC's guide: a Service's settings with route overrides, and every TargetGroupProps field.
    const LBC_MANIFEST: &str = r#"
apiVersion: gateway.k8s.aws/v1
kind: TargetGroupConfiguration
metadata:
  name: route-specific-config
  namespace: example-ns
spec:
  targetReference:
    name: my-service
  defaultConfiguration:
    targetGroupName: my-target-group
    ipAddressType: ipv4
    targetType: ip
    protocol: HTTP
    protocolVersion: HTTP2
    targetControlPort: 100
    enableMultiCluster: true
    nodeSelector:
      matchLabels:
        role: backend
    targetGroupAttributes:
      - key: deregistration_delay.timeout_seconds
        value: "30"
      - key: stickiness.enabled
        value: "true"
    healthCheckConfig:
      healthyThresholdCount: 5
      healthCheckInterval: 30
      healthCheckPath: /healthz
      healthCheckPort: "8080"
      healthCheckProtocol: HTTP
      healthCheckTimeout: 5
      unhealthyThresholdCount: 2
      matcher:
        httpCode: "200"
    tags:
      Environment: Production
      Project: MyApp
  routeConfigurations:
    - routeIdentifier:
        kind: HTTPRoute
        namespace: example-ns-1
        name: api-route
      targetGroupProps:
        healthCheckConfig:
          healthCheckPath: /api/health
          healthCheckProtocol: HTTP
    - routeIdentifier:
        kind: GRPCRoute
      targetGroupProps:
        healthCheckConfig:
          matcher:
            grpcCode: "0"
"#;

    /// A defaults-only configuration, as a LoadBalancerConfiguration names it.
    const LBC_DEFAULTS_MANIFEST: &str = r#"
apiVersion: gateway.k8s.aws/v1
kind: TargetGroupConfiguration
metadata:
  name: gateway-defaults
  namespace: gateway-system
spec:
  defaultConfiguration:
    targetType: ip
    healthCheckConfig:
      healthCheckPath: /healthz
      healthCheckInterval: 15
"#;

    #[test]
    fn lbc_manifest_deserializes() {
        let config: TargetGroupConfiguration = round_trip(LBC_MANIFEST);
        let spec = &config.spec;
        let reference = spec.target_reference.as_ref().expect("targetReference");
        assert_eq!(reference.name, "my-service");
        assert_eq!(
            (reference.group.as_deref(), reference.kind.as_deref()),
            (None, None)
        );

        let props = &spec.default_configuration;
        assert_eq!(props.target_group_name.as_deref(), Some("my-target-group"));
        assert_eq!(props.ip_address_type, Some(TargetGroupIpAddressType::Ipv4));
        assert_eq!(props.target_type, Some(TargetType::Ip));
        assert_eq!(props.protocol, Some(Protocol::Http));
        assert_eq!(props.protocol_version, Some(ProtocolVersion::Http2));
        assert_eq!(props.target_control_port, Some(100));
        assert_eq!(props.enable_multi_cluster, Some(true));
        assert_eq!(props.target_group_attributes[1].key, "stickiness.enabled");
        assert_eq!(
            props.tags.as_ref().map(|t| t["Project"].as_str()),
            Some("MyApp")
        );
        let selector = props.node_selector.as_ref().expect("nodeSelector");
        assert_eq!(
            selector.match_labels.as_ref().map(|l| l["role"].as_str()),
            Some("backend")
        );
        let check = props
            .health_check_config
            .as_ref()
            .expect("healthCheckConfig");
        assert_eq!(check.healthy_threshold_count, Some(5));
        assert_eq!(check.health_check_port.as_deref(), Some("8080"));
        assert_eq!(
            check.health_check_protocol,
            Some(TargetGroupHealthCheckProtocol::Http)
        );
        assert_eq!(
            check.matcher.as_ref().and_then(|m| m.http_code.as_deref()),
            Some("200")
        );

        assert_eq!(spec.route_configurations.len(), 2);
        let api = &spec.route_configurations[0];
        assert_eq!(
            api.route_identifier,
            RouteIdentifier {
                kind: "HTTPRoute".into(),
                namespace: "example-ns-1".into(),
                name: "api-route".into(),
            }
        );
        let grpc = &spec.route_configurations[1];
        assert_eq!(grpc.route_identifier.namespace, "");
        assert_eq!(
            grpc.target_group_props
                .health_check_config
                .as_ref()
                .and_then(|c| c.matcher.as_ref())
                .and_then(|m| m.grpc_code.as_deref()),
            Some("0")
        );
    }

    #[test]
    fn defaults_only_manifest_deserializes() {
        let config: TargetGroupConfiguration = round_trip(LBC_DEFAULTS_MANIFEST);
        assert_eq!(config.spec.target_reference, None);
        assert_eq!(
            config.spec.default_configuration.target_type,
            Some(TargetType::Ip)
        );
        assert!(config.spec.route_configurations.is_empty());
    }

    #[test]
    fn unset_fields_are_not_serialized() {
        assert_eq!(
            serde_json::to_value(TargetGroupConfigurationSpec::default()).expect("serializes"),
            serde_json::json!({})
        );
        let route = RouteConfiguration {
            route_identifier: RouteIdentifier {
                kind: "HTTPRoute".into(),
                ..RouteIdentifier::default()
            },
            target_group_props: TargetGroupProps::default(),
        };
        assert_eq!(
            serde_json::to_value(&route).expect("serializes"),
            serde_json::json!({"routeIdentifier": {"kind": "HTTPRoute"}, "targetGroupProps": {}})
        );
    }

    #[test]
    fn schema_carries_lbc_enums_defaults_and_requirements() {
        let crd = TargetGroupConfiguration::crd();
        let props = "spec.defaultConfiguration";
        assert_eq!(
            enum_values(node(&crd, &format!("{props}.protocol"))),
            ["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP"]
        );
        assert_eq!(
            enum_values(node(&crd, &format!("{props}.protocolVersion"))),
            ["HTTP1", "HTTP2", "GRPC"]
        );
        assert_eq!(
            enum_values(node(
                &crd,
                &format!("{props}.healthCheckConfig.healthCheckProtocol")
            )),
            ["HTTP", "HTTPS", "TCP"]
        );
        assert_eq!(
            enum_values(node(&crd, &format!("{props}.targetType"))),
            ["instance", "ip"]
        );
        assert_eq!(
            enum_values(node(&crd, &format!("{props}.ipAddressType"))),
            ["ipv4", "ipv6"]
        );
        assert_eq!(
            enum_values(node(
                &crd,
                "spec.routeConfigurations[].targetGroupProps.protocol"
            )),
            ["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP"]
        );
        let default = |path: &str| node(&crd, path).default.as_ref().map(|d| d.0.clone());
        assert_eq!(
            default("spec.targetReference.kind"),
            Some(serde_json::json!("Service"))
        );
        assert_eq!(
            default("spec.targetReference.group"),
            Some(serde_json::json!(""))
        );
        assert_eq!(default("spec.defaultConfiguration"), None);
        assert_eq!(
            node(&crd, "spec.targetReference").required.as_deref(),
            Some(&["name".to_string()][..])
        );
        assert_eq!(
            node(&crd, "spec.routeConfigurations[]").required.as_deref(),
            Some(
                &[
                    "routeIdentifier".to_string(),
                    "targetGroupProps".to_string()
                ][..]
            )
        );
        assert_eq!(node(&crd, "spec").required, None);
        assert_eq!(
            node(&crd, &format!("{props}.nodeSelector"))
                .x_kubernetes_map_type
                .as_deref(),
            Some("atomic")
        );
        assert_eq!(
            node(
                &crd,
                &format!("{props}.healthCheckConfig.healthCheckInterval")
            )
            .format
            .as_deref(),
            Some("int32")
        );
        assert_eq!(
            node(&crd, &format!("{props}.targetGroupAttributes[]"))
                .required
                .as_deref(),
            Some(&["key".to_string(), "value".to_string()][..])
        );
    }

    #[test]
    fn printer_columns_match_lbc() {
        let crd = TargetGroupConfiguration::crd();
        let columns: Vec<(String, String)> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect();
        assert_eq!(
            columns,
            [
                (
                    "SERVICE-NAME".to_string(),
                    ".spec.targetReference.name".to_string()
                ),
                ("AGE".to_string(), ".metadata.creationTimestamp".to_string()),
            ]
        );
    }
}
