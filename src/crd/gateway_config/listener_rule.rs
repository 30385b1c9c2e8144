//! `ListenerRuleConfiguration`: listener rule actions and conditions a Gateway API route cannot
//! express (authentication, JWT validation, fixed responses, source-IP conditions, stickiness).
//! A route in the same namespace attaches it to its rules through an `ExtensionRef` filter.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Tags;
use crate::crd::drop_null_enum_values;

pub use crate::crd::ingress_class_params::OnUnauthenticatedRequest;

/// An actions list, when present, is not empty.
pub const ACTIONS_NOT_EMPTY_RULE: &str = "!has(self.actions) || size(self.actions) > 0";
/// Every action is of a type this kind supports.
pub const SUPPORTED_ACTION_TYPES_RULE: &str = "!has(self.actions) || self.actions.all(a, a.type == 'authenticate-oidc' || a.type == 'authenticate-cognito' || a.type == 'jwt-validation' || a.type == 'fixed-response' || a.type == 'forward' || a.type == 'redirect')";
/// At most one action runs before routing.
pub const ONE_PRE_ROUTING_ACTION_RULE: &str = "!has(self.actions) || size(self.actions.filter(a, a.type == 'authenticate-oidc' || a.type == 'authenticate-cognito' || a.type == 'jwt-validation')) <= 1";
/// At most one action routes the request.
pub const ONE_ROUTING_ACTION_RULE: &str = "!has(self.actions) || size(self.actions.filter(a, a.type == 'fixed-response' || a.type == 'forward' || a.type == 'redirect')) <= 1";

/// A source-ip condition, and only that, has a sourceIPConfig.
pub const SOURCE_IP_CONFIG_RULE: &str = "has(self.field) && self.field == 'source-ip' ? has(self.sourceIPConfig) : !has(self.sourceIPConfig)";

/// The status codes a fixed response may have: 2XX, 4XX or 5XX.
pub const FIXED_RESPONSE_STATUS_RULE: &str =
    "(self >= 200 && self <= 299) || (self >= 400 && self <= 599)";

/// Each action carries the settings of its own type and no other's.
pub const ACTION_CONFIG_RULES: [&str; 6] = [
    FORWARD_CONFIG_RULE,
    REDIRECT_CONFIG_RULE,
    FIXED_RESPONSE_CONFIG_RULE,
    COGNITO_CONFIG_RULE,
    OIDC_CONFIG_RULE,
    JWT_CONFIG_RULE,
];
const FORWARD_CONFIG_RULE: &str =
    "has(self.type) && self.type == 'forward' ? has(self.forwardConfig) : !has(self.forwardConfig)";
const REDIRECT_CONFIG_RULE: &str = "has(self.type) && self.type == 'redirect' ? has(self.redirectConfig) : !has(self.redirectConfig)";
const FIXED_RESPONSE_CONFIG_RULE: &str = "has(self.type) && self.type == 'fixed-response' ? has(self.fixedResponseConfig) : !has(self.fixedResponseConfig)";
const COGNITO_CONFIG_RULE: &str = "has(self.type) && self.type == 'authenticate-cognito' ? has(self.authenticateCognitoConfig) : !has(self.authenticateCognitoConfig)";
const OIDC_CONFIG_RULE: &str = "has(self.type) && self.type == 'authenticate-oidc' ? has(self.authenticateOIDCConfig) : !has(self.authenticateOIDCConfig)";
const JWT_CONFIG_RULE: &str = "has(self.type) && self.type == 'jwt-validation' ? has(self.jwtValidationConfig) : !has(self.jwtValidationConfig)";

/// The request field a condition tests.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ListenerRuleConditionField {
    SourceIp,
}

/// What a listener rule action does.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ActionType {
    Forward,
    FixedResponse,
    Redirect,
    AuthenticateCognito,
    AuthenticateOidc,
    JwtValidation,
}

/// The content type of a fixed response.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FixedResponseContentType {
    #[serde(rename = "text/plain")]
    TextPlain,
    #[serde(rename = "text/css")]
    TextCss,
    #[serde(rename = "text/html")]
    TextHtml,
    #[serde(rename = "application/javascript")]
    ApplicationJavascript,
    #[serde(rename = "application/json")]
    ApplicationJson,
}

/// How a JWT claim's value is written.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum JwtAdditionalClaimFormat {
    SingleString,
    StringArray,
    SpaceSeparatedValues,
}

/// Actions and conditions added to the listener rules of the routes that reference it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "gateway.k8s.aws",
    version = "v1",
    kind = "ListenerRuleConfiguration",
    plural = "listenerruleconfigurations",
    singular = "listenerruleconfiguration",
    category = "causeway",
    namespaced,
    status = "ListenerRuleConfigurationStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "ListenerRuleConfiguration adds ALB listener rule actions and conditions to routes.",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = drop_null_enum_values)]
#[x_kube(
    validation = Rule::new(ACTIONS_NOT_EMPTY_RULE)
        .message("At least one action must be specified if actions field is present"),
    validation = Rule::new(SUPPORTED_ACTION_TYPES_RULE)
        .message("Only forward, redirect, authenticate-oidc, authenticate-cognito, jwt-validation, and fixed-response action types are supported"),
    validation = Rule::new(ONE_PRE_ROUTING_ACTION_RULE)
        .message("At most one pre-routing action (authenticate-oidc, authenticate-cognito, or jwt-validation) can be specified"),
    validation = Rule::new(ONE_ROUTING_ACTION_RULE)
        .message("At most one routing action (fixed-response or forward or redirect) can be specified")
)]
pub struct ListenerRuleConfigurationSpec {
    /// At most one pre-routing action (authentication or JWT validation) and one routing
    /// action. Forward and redirect take only the settings routes cannot carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 2))]
    pub actions: Vec<Action>,

    /// Extra conditions on the rules; only source-ip. Other conditions come from the route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1))]
    pub conditions: Vec<ListenerRuleCondition>,

    /// Tags on the AWS resources made for the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
}

/// Source IPs a request must come from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SourceIpConditionConfig {
    /// CIDRs.
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

/// A condition on the route's rules.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(SOURCE_IP_CONFIG_RULE)
    .message("sourceIPConfig must be specified only when field is 'source-ip'"))]
pub struct ListenerRuleCondition {
    /// The request field tested: source-ip.
    pub field: ListenerRuleConditionField,

    /// The source IPs, for field source-ip.
    #[serde(
        rename = "sourceIPConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_ip_config: Option<SourceIpConditionConfig>,

    /// Which of the route rule's matches get the condition, by index; all when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "match_indexes_schema")]
    pub match_indexes: Option<Vec<i64>>,
}

/// LBC's indexes are Go `int`s, which controller-gen writes without a format.
fn match_indexes_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "integer"},
        "nullable": true,
    })
}

/// Target group stickiness of a forward action.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupStickinessConfig {
    /// How long, in seconds, a client sticks to one target group; 3600 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800), extend("default" = 3600))]
    pub duration_seconds: Option<i32>,

    /// Whether stickiness is on; off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub enabled: Option<bool>,
}

/// The part of a forward action routes cannot carry.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ForwardActionConfig {
    /// Stickiness across the rule's target groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub target_group_stickiness_config: Option<TargetGroupStickinessConfig>,
}

/// The part of a redirect action routes cannot carry.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct RedirectActionConfig {
    /// The query string, without the leading '?'; may use #{query} and the other keywords.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "#{query}"))]
    pub query: Option<String>,
}

/// A response the load balancer returns itself.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FixedResponseActionConfig {
    /// A 2XX, 4XX or 5XX status code.
    #[x_kube(validation = Rule::new(FIXED_RESPONSE_STATUS_RULE)
        .message("StatusCode must be a valid HTTP status code in the 2XX, 4XX, or 5XX range"))]
    pub status_code: i32,

    /// The body's content type; text/plain by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "text/plain"))]
    pub content_type: Option<FixedResponseContentType>,

    /// The body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

/// A Secret, in the configuration's namespace, with the keys clientID and clientSecret.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// The Secret's name.
    pub name: String,
}

/// Sign users in through a Cognito user pool before routing.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateCognitoActionConfig {
    /// The user pool's ARN.
    pub user_pool_arn: String,

    /// The user pool client's ID.
    pub user_pool_client_id: String,

    /// The user pool's domain prefix or full domain.
    pub user_pool_domain: String,

    /// User claims to request, e.g. "openid email"; openid by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "openid"))]
    pub scope: Option<String>,

    /// Up to 10 query parameters added to the redirect to the authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 10))]
    pub authentication_request_extra_params: Option<Tags>,

    /// authenticate (the default), deny or allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "authenticate"))]
    pub on_unauthenticated_request: Option<OnUnauthenticatedRequest>,

    /// The session cookie's name; AWSELBAuthSessionCookie by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "AWSELBAuthSessionCookie"))]
    pub session_cookie_name: Option<String>,

    /// The longest a session lasts, in seconds; 7 days by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800), extend("default" = 604800))]
    pub session_timeout: Option<i64>,
}

/// Sign users in through an OpenID Connect provider before routing.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateOidcActionConfig {
    /// The provider's authorization endpoint, a full https URL.
    pub authorization_endpoint: String,

    /// The Secret with the OAuth 2.0 client's ID and secret.
    pub secret: Secret,

    /// The provider's issuer identifier, a full https URL.
    pub issuer: String,

    /// The provider's token endpoint, a full https URL.
    pub token_endpoint: String,

    /// The provider's user info endpoint, a full https URL.
    pub user_info_endpoint: String,

    /// User claims to request, e.g. "openid email"; openid by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "openid"))]
    pub scope: Option<String>,

    /// Up to 10 query parameters added to the redirect to the authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 10))]
    pub authentication_request_extra_params: Option<Tags>,

    /// authenticate (the default), deny or allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "authenticate"))]
    pub on_unauthenticated_request: Option<OnUnauthenticatedRequest>,

    /// The session cookie's name; AWSELBAuthSessionCookie by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "AWSELBAuthSessionCookie"))]
    pub session_cookie_name: Option<String>,

    /// The longest a session lasts, in seconds; 7 days by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800), extend("default" = 604800))]
    pub session_timeout: Option<i64>,

    /// Keep the client secret the rule already has when it is modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_existing_client_secret: Option<bool>,
}

/// A claim a JWT must carry, beyond exp, iss, nbf and iat.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct JwtValidationActionAdditionalClaim {
    /// How the claim's value is written.
    pub format: JwtAdditionalClaimFormat,

    /// The claim's name.
    #[schemars(length(min = 1))]
    pub name: String,

    /// The accepted values; without spaces for space-separated-values.
    #[schemars(length(min = 1, max = 10), inner(length(max = 256)))]
    pub values: Vec<String>,
}

/// Validate a JWT before routing (HTTPS listeners only).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct JwtValidationActionConfig {
    /// The token's expected issuer.
    #[schemars(length(max = 256))]
    pub issuer: String,

    /// The JWKS endpoint with the signing keys, a full https URL.
    #[schemars(length(max = 256))]
    pub jwks_endpoint: String,

    /// More claims to validate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_claims: Vec<JwtValidationActionAdditionalClaim>,
}

/// One listener rule action, with the settings of its type.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(FORWARD_CONFIG_RULE)
        .message("forwardConfig must be specified only when type is 'forward'"),
    validation = Rule::new(REDIRECT_CONFIG_RULE)
        .message("redirectConfig must be specified only when type is 'redirect'"),
    validation = Rule::new(FIXED_RESPONSE_CONFIG_RULE)
        .message("fixedResponseConfig must be specified only when type is 'fixed-response'"),
    validation = Rule::new(COGNITO_CONFIG_RULE)
        .message("authenticateCognitoConfig must be specified only when type is 'authenticate-cognito'"),
    validation = Rule::new(OIDC_CONFIG_RULE)
        .message("authenticateOIDCConfig must be specified only when type is 'authenticate-oidc'"),
    validation = Rule::new(JWT_CONFIG_RULE)
        .message("jwtValidationConfig must be specified only when type is 'jwt-validation'")
)]
pub struct Action {
    /// The action's type.
    #[serde(rename = "type")]
    pub type_: ActionType,

    /// For type forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_config: Option<ForwardActionConfig>,

    /// For type redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_config: Option<RedirectActionConfig>,

    /// For type fixed-response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_response_config: Option<FixedResponseActionConfig>,

    /// For type authenticate-cognito.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticate_cognito_config: Option<AuthenticateCognitoActionConfig>,

    /// For type authenticate-oidc.
    #[serde(
        rename = "authenticateOIDCConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub authenticate_oidc_config: Option<AuthenticateOidcActionConfig>,

    /// For type jwt-validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_validation_config: Option<JwtValidationActionConfig>,
}

/// Whether the controller accepted the configuration, and why not.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListenerRuleConfigurationStatus {
    /// The generation the controller last looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Whether the configuration is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,

    /// Details of the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;
    use crate::crd::schema_test_util::{enum_values, node, round_trip, rules};

    /// LBC's guide shows each action in its own object; two actions and a condition at a time
    /// here, as the spec's rules allow (one pre-routing action, one routing action).
    const LBC_MANIFESTS: [&str; 4] = [
        r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata:
  name: example-lrc-config
  namespace: example-ns
spec:
  actions:
    - type: "authenticate-cognito"
      authenticateCognitoConfig:
        userPoolArn: "user-pool-arn"
        userPoolClientId: "cid"
        userPoolDomain: "example.com"
        onUnauthenticatedRequest: "authenticate"
    - type: "forward"
      forwardConfig:
        targetGroupStickinessConfig:
          durationSeconds: 120
          enabled: true
  conditions:
    - field: source-ip
      sourceIPConfig:
        values:
          - 10.0.0.0/5
      matchIndexes: [0, 2]
  tags:
    team: web
status:
  observedGeneration: 2
  accepted: true
  message: ok
"#,
        r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata:
  name: example-lrc-config
  namespace: example-ns
spec:
  actions:
    - type: "authenticate-oidc"
      authenticateOIDCConfig:
        authorizationEndpoint: "https://my-auth-server.com"
        secret:
          name: "my-secret-name"
        issuer: "https://my-issuer.com"
        tokenEndpoint: "https://my-token-endpoint.com"
        userInfoEndpoint: "https://my-user-info-endpoint.com"
        onUnauthenticatedRequest: "deny"
        scope: "openid email"
        authenticationRequestExtraParams:
          display: page
        sessionCookieName: my-cookie
        sessionTimeout: 3600
        useExistingClientSecret: true
    - type: "redirect"
      redirectConfig:
        query: "foo"
"#,
        r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata:
  name: example-lrc-config
  namespace: example-ns
spec:
  actions:
    - type: "fixed-response"
      fixedResponseConfig:
        statusCode: 404
        contentType: "text/plain"
        messageBody: "my fixed response"
"#,
        r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata:
  name: example-lrc-config
  namespace: example-ns
spec:
  actions:
    - type: "jwt-validation"
      jwtValidationConfig:
        jwksEndpoint: "https://example.com/.well-known/jwks.json"
        issuer: "https://example.com"
        additionalClaims:
          - name: "admin"
            format: "single-string"
            values: ["true"]
          - name: "roles"
            format: "string-array"
            values: ["admin", "editor", "viewer"]
          - name: "scope"
            format: "space-separated-values"
            values: ["read:api", "write:api"]
"#,
    ];

    #[test]
    fn lbc_manifests_deserialize() {
        let [cognito, oidc, fixed, jwt] =
            LBC_MANIFESTS.map(round_trip::<ListenerRuleConfiguration>);

        let actions = &cognito.spec.actions;
        assert_eq!(actions[0].type_, ActionType::AuthenticateCognito);
        let pool = actions[0]
            .authenticate_cognito_config
            .as_ref()
            .expect("cognito");
        assert_eq!(pool.user_pool_client_id, "cid");
        assert_eq!(
            pool.on_unauthenticated_request,
            Some(OnUnauthenticatedRequest::Authenticate)
        );
        assert_eq!(pool.session_timeout, None);
        assert_eq!(actions[1].type_, ActionType::Forward);
        assert_eq!(
            actions[1]
                .forward_config
                .as_ref()
                .and_then(|f| f.target_group_stickiness_config.clone()),
            Some(TargetGroupStickinessConfig {
                duration_seconds: Some(120),
                enabled: Some(true),
            })
        );
        let condition = &cognito.spec.conditions[0];
        assert_eq!(condition.field, ListenerRuleConditionField::SourceIp);
        assert_eq!(
            condition
                .source_ip_config
                .as_ref()
                .map(|c| c.values.clone()),
            Some(vec!["10.0.0.0/5".to_string()])
        );
        assert_eq!(condition.match_indexes, Some(vec![0, 2]));
        assert_eq!(
            cognito.spec.tags.as_ref().map(|t| t["team"].as_str()),
            Some("web")
        );
        let status = cognito.status.as_ref().expect("status");
        assert_eq!(
            (
                status.observed_generation,
                status.accepted,
                status.message.as_deref()
            ),
            (Some(2), Some(true), Some("ok"))
        );

        let provider = oidc.spec.actions[0]
            .authenticate_oidc_config
            .as_ref()
            .expect("oidc");
        assert_eq!(provider.secret.name, "my-secret-name");
        assert_eq!(provider.issuer, "https://my-issuer.com");
        assert_eq!(
            provider.on_unauthenticated_request,
            Some(OnUnauthenticatedRequest::Deny)
        );
        assert_eq!(
            provider
                .authentication_request_extra_params
                .as_ref()
                .map(|p| p["display"].as_str()),
            Some("page")
        );
        assert_eq!(provider.session_timeout, Some(3600));
        assert_eq!(provider.use_existing_client_secret, Some(true));
        assert_eq!(
            oidc.spec.actions[1]
                .redirect_config
                .as_ref()
                .and_then(|r| r.query.as_deref()),
            Some("foo")
        );

        let response = fixed.spec.actions[0]
            .fixed_response_config
            .as_ref()
            .expect("fixed response");
        assert_eq!(response.status_code, 404);
        assert_eq!(
            response.content_type,
            Some(FixedResponseContentType::TextPlain)
        );
        assert!(fixed.spec.conditions.is_empty());

        let validation = jwt.spec.actions[0]
            .jwt_validation_config
            .as_ref()
            .expect("jwt");
        assert_eq!(validation.issuer, "https://example.com");
        let formats: Vec<JwtAdditionalClaimFormat> = validation
            .additional_claims
            .iter()
            .map(|c| c.format)
            .collect();
        assert_eq!(
            formats,
            [
                JwtAdditionalClaimFormat::SingleString,
                JwtAdditionalClaimFormat::StringArray,
                JwtAdditionalClaimFormat::SpaceSeparatedValues,
            ]
        );
        assert_eq!(validation.additional_claims[1].values.len(), 3);
    }

    #[test]
    fn unset_fields_are_not_serialized() {
        assert_eq!(
            serde_json::to_value(ListenerRuleConfigurationSpec::default()).expect("serializes"),
            serde_json::json!({})
        );
        let action = Action {
            type_: ActionType::Forward,
            forward_config: Some(ForwardActionConfig::default()),
            redirect_config: None,
            fixed_response_config: None,
            authenticate_cognito_config: None,
            authenticate_oidc_config: None,
            jwt_validation_config: None,
        };
        assert_eq!(
            serde_json::to_value(&action).expect("serializes"),
            serde_json::json!({"type": "forward", "forwardConfig": {}})
        );
    }

    #[test]
    fn schema_carries_lbc_enums_and_defaults() {
        let crd = ListenerRuleConfiguration::crd();
        let action = "spec.actions[]";
        assert_eq!(
            enum_values(node(&crd, &format!("{action}.type"))),
            [
                "forward",
                "fixed-response",
                "redirect",
                "authenticate-cognito",
                "authenticate-oidc",
                "jwt-validation"
            ]
        );
        assert_eq!(
            enum_values(node(
                &crd,
                &format!("{action}.fixedResponseConfig.contentType")
            )),
            [
                "text/plain",
                "text/css",
                "text/html",
                "application/javascript",
                "application/json"
            ]
        );
        assert_eq!(
            enum_values(node(&crd, "spec.conditions[].field")),
            ["source-ip"]
        );
        assert_eq!(
            enum_values(node(
                &crd,
                &format!("{action}.jwtValidationConfig.additionalClaims[].format")
            )),
            ["single-string", "string-array", "space-separated-values"]
        );
        let mut unauthenticated = enum_values(node(
            &crd,
            &format!("{action}.authenticateOIDCConfig.onUnauthenticatedRequest"),
        ));
        unauthenticated.sort_unstable();
        assert_eq!(unauthenticated, ["allow", "authenticate", "deny"]);

        let default = |path: &str| {
            node(&crd, &format!("{action}.{path}"))
                .default
                .as_ref()
                .map(|d| d.0.clone())
        };
        use serde_json::json;
        assert_eq!(
            default("forwardConfig.targetGroupStickinessConfig"),
            Some(json!({}))
        );
        assert_eq!(
            default("forwardConfig.targetGroupStickinessConfig.durationSeconds"),
            Some(json!(3600))
        );
        assert_eq!(
            default("forwardConfig.targetGroupStickinessConfig.enabled"),
            Some(json!(false))
        );
        assert_eq!(default("redirectConfig.query"), Some(json!("#{query}")));
        assert_eq!(
            default("fixedResponseConfig.contentType"),
            Some(json!("text/plain"))
        );
        for auth in ["authenticateCognitoConfig", "authenticateOIDCConfig"] {
            assert_eq!(default(&format!("{auth}.scope")), Some(json!("openid")));
            assert_eq!(
                default(&format!("{auth}.onUnauthenticatedRequest")),
                Some(json!("authenticate"))
            );
            assert_eq!(
                default(&format!("{auth}.sessionCookieName")),
                Some(json!("AWSELBAuthSessionCookie"))
            );
            assert_eq!(
                default(&format!("{auth}.sessionTimeout")),
                Some(json!(604800))
            );
            let timeout = node(&crd, &format!("{action}.{auth}.sessionTimeout"));
            assert_eq!(
                (timeout.minimum, timeout.maximum),
                (Some(1.0), Some(604800.0))
            );
            assert_eq!(timeout.format.as_deref(), Some("int64"));
            let extra = node(
                &crd,
                &format!("{action}.{auth}.authenticationRequestExtraParams"),
            );
            assert_eq!(extra.max_properties, Some(10));
        }
    }

    #[test]
    fn schema_carries_lbc_rules_and_bounds() {
        let crd = ListenerRuleConfiguration::crd();
        assert_eq!(
            rules(node(&crd, "spec")),
            [
                ACTIONS_NOT_EMPTY_RULE,
                SUPPORTED_ACTION_TYPES_RULE,
                ONE_PRE_ROUTING_ACTION_RULE,
                ONE_ROUTING_ACTION_RULE,
            ]
        );
        assert_eq!(rules(node(&crd, "spec.actions[]")), ACTION_CONFIG_RULES);
        assert_eq!(
            rules(node(&crd, "spec.conditions[]")),
            [SOURCE_IP_CONFIG_RULE]
        );
        assert_eq!(
            rules(node(&crd, "spec.actions[].fixedResponseConfig.statusCode")),
            [FIXED_RESPONSE_STATUS_RULE]
        );
        let actions = node(&crd, "spec.actions");
        assert_eq!((actions.min_items, actions.max_items), (Some(1), Some(2)));
        assert_eq!(node(&crd, "spec.conditions").min_items, Some(1));
        assert_eq!(
            node(&crd, "spec.conditions[].sourceIPConfig.values").min_items,
            Some(1)
        );
        let indexes = node(&crd, "spec.conditions[].matchIndexes[]");
        assert_eq!(
            (indexes.type_.as_deref(), indexes.format.as_deref()),
            (Some("integer"), None)
        );
        let stickiness = node(
            &crd,
            "spec.actions[].forwardConfig.targetGroupStickinessConfig.durationSeconds",
        );
        assert_eq!(
            (stickiness.minimum, stickiness.maximum),
            (Some(1.0), Some(604800.0))
        );
        let jwt = "spec.actions[].jwtValidationConfig";
        assert_eq!(node(&crd, &format!("{jwt}.issuer")).max_length, Some(256));
        assert_eq!(
            node(&crd, &format!("{jwt}.jwksEndpoint")).max_length,
            Some(256)
        );
        let values = node(&crd, &format!("{jwt}.additionalClaims[].values"));
        assert_eq!((values.min_items, values.max_items), (Some(1), Some(10)));
        assert_eq!(
            node(&crd, &format!("{jwt}.additionalClaims[].values[]")).max_length,
            Some(256)
        );
        assert_eq!(
            node(&crd, &format!("{jwt}.additionalClaims[].name")).min_length,
            Some(1)
        );
        assert_eq!(
            node(&crd, "spec.actions[].authenticateOIDCConfig")
                .required
                .as_deref(),
            Some(
                &[
                    "authorizationEndpoint",
                    "issuer",
                    "secret",
                    "tokenEndpoint",
                    "userInfoEndpoint"
                ]
                .map(String::from)[..]
            )
        );
    }

    #[test]
    fn unknown_action_types_are_rejected() {
        let manifest = LBC_MANIFESTS[2].replace("fixed-response", "authenticate-saml");
        let value: serde_json::Value = serde_saphyr::from_str(&manifest).expect("valid YAML");
        assert!(serde_json::from_value::<ListenerRuleConfiguration>(value).is_err());
    }
}
