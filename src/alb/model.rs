//! The desired state of one IngressGroup in AWS, as plain data.
//!
//! Built purely by [`super::builder`], diffed by [`super::plan`] against
//! [`super::observed`]. Resources refer to each other by name or key, never by ARN: ARNs only
//! exist once AWS has created something, and the applier resolves them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Tag keys of the peer (aws-load-balancer-controller), kept so ownership reads the same.
pub use crate::aws::tags::{
    CLUSTER as TAG_CLUSTER, RESOURCE as TAG_RESOURCE, STACK as TAG_STACK, StackKind,
};

/// ELBv2's quota: rules per ALB (default rules not counted).
pub const MAX_RULES_PER_ALB: usize = 100;

pub type Tags = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupModel {
    /// The stack tag value: the group name or `namespace/name` of an Ingress group, or the
    /// `namespace/name` of a Service.
    pub stack: String,
    /// What the stack comes from, which names its stack and resource tag keys.
    #[serde(default, skip_serializing_if = "StackKind::is_ingress")]
    pub kind: StackKind,
    pub load_balancers: Vec<LoadBalancerModel>,
    pub target_groups: Vec<TargetGroupModel>,
    pub security_groups: Vec<SecurityGroupModel>,
    /// Tag keys managed outside causeway (`--alb-external-managed-tags`): never removed, and
    /// no Ingress may set them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unmanaged_tag_keys: BTreeSet<String>,
}

impl GroupModel {
    pub fn empty(stack: &str) -> Self {
        GroupModel {
            stack: stack.to_owned(),
            kind: StackKind::Ingress,
            load_balancers: Vec::new(),
            target_groups: Vec::new(),
            security_groups: Vec::new(),
            unmanaged_tag_keys: BTreeSet::new(),
        }
    }

    pub fn rule_count(&self) -> usize {
        self.load_balancers
            .iter()
            .map(LoadBalancerModel::rule_count)
            .sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    Internal,
    InternetFacing,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Internal => "internal",
            Scheme::InternetFacing => "internet-facing",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "internal" => Some(Scheme::Internal),
            "internet-facing" => Some(Scheme::InternetFacing),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpAddressType {
    Ipv4,
    Dualstack,
    DualstackWithoutPublicIpv4,
}

impl IpAddressType {
    pub fn as_str(self) -> &'static str {
        match self {
            IpAddressType::Ipv4 => "ipv4",
            IpAddressType::Dualstack => "dualstack",
            IpAddressType::DualstackWithoutPublicIpv4 => "dualstack-without-public-ipv4",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ipv4" => Some(IpAddressType::Ipv4),
            "dualstack" => Some(IpAddressType::Dualstack),
            "dualstack-without-public-ipv4" => Some(IpAddressType::DualstackWithoutPublicIpv4),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "TCP_UDP")]
    TcpUdp,
    #[serde(rename = "TLS")]
    Tls,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::TcpUdp => "TCP_UDP",
            Protocol::Tls => "TLS",
        }
    }
    /// An ALB protocol (HTTP or HTTPS), in any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "HTTP" => Some(Protocol::Http),
            "HTTPS" => Some(Protocol::Https),
            _ => None,
        }
    }
    /// Any protocol ELBv2 has (ALB and NLB), in any case.
    pub fn parse_any(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "TCP_UDP" => Some(Protocol::TcpUdp),
            "TLS" => Some(Protocol::Tls),
            _ => Protocol::parse(s),
        }
    }
    /// Terminates TLS: takes certificates and a security policy.
    pub fn is_secure(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }
    /// An HTTP protocol: has a protocol version, and health checks with a path and codes.
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Https)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    Instance,
    Ip,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Instance => "instance",
            TargetType::Ip => "ip",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "instance" => Some(TargetType::Instance),
            "ip" => Some(TargetType::Ip),
            _ => None,
        }
    }
}

/// Which kind of ELBv2 load balancer; fixed at creation.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LoadBalancerKind {
    #[default]
    Application,
    Network,
}

impl LoadBalancerKind {
    pub fn is_application(&self) -> bool {
        *self == LoadBalancerKind::Application
    }
}

/// What a network load balancer's node in one subnet gets: an Elastic IP (internet-facing)
/// or a fixed private address (internal).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ipv4: Option<String>,
}

/// One ALB (one shard of a group), or the NLB of a Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerModel {
    /// `LoadBalancer` for the first shard, `LoadBalancer-<n>` for the others.
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "LoadBalancerKind::is_application")]
    pub kind: LoadBalancerKind,
    /// By subnet ID: fixed addresses of an NLB, set at creation only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subnet_mappings: BTreeMap<String, SubnetMapping>,
    pub scheme: Scheme,
    pub ip_address_type: IpAddressType,
    /// Sorted subnet IDs; empty when discovery had no data (plan without AWS access).
    pub subnets: Vec<String>,
    /// Keys of the security groups (frontend, backend) attached to it.
    pub security_groups: Vec<String>,
    /// Only the keys we set; attributes we never set are never read or reset.
    pub attributes: BTreeMap<String, String>,
    pub tags: Tags,
    pub listeners: Vec<ListenerModel>,
    /// Member Ingresses served by this ALB, as `namespace/name`.
    pub members: Vec<String>,
    /// The add-ons the group asks for; `None` leaves what AWS has alone.
    #[serde(default, skip_serializing_if = "Addons::is_empty")]
    pub addons: Addons,
    /// Whether an NLB's security groups also filter PrivateLink traffic; `None`: as AWS has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_link_inbound: Option<bool>,
}

/// WAFv2 and Shield Advanced settings of a load balancer. `None` in a field: the group does
/// not say, and what AWS has is left alone (the peer's rule: only `none` / `false` removes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addons {
    /// `Some(Some(arn))`: associated with that regional web ACL; `Some(None)`: with none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_acl: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shield: Option<bool>,
}

impl Addons {
    pub fn is_empty(&self) -> bool {
        self.web_acl.is_none() && self.shield.is_none()
    }
}

impl LoadBalancerModel {
    pub fn rule_count(&self) -> usize {
        self.listeners.iter().map(|l| l.rules.len()).sum()
    }

    /// The tags of one of its listeners (`resource` is the port, as the peer writes it) or
    /// rules (`<port>:<priority>`): its own cluster, stack and user tags, with that resource.
    pub fn part_tags(&self, kind: StackKind, resource: String) -> Tags {
        let mut tags = self.tags.clone();
        tags.insert(kind.resource_key().into(), resource);
        tags
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerModel {
    pub port: i32,
    pub protocol: Protocol,
    /// The first is the default certificate.
    pub certificates: Vec<String>,
    pub ssl_policy: Option<String>,
    /// The ALPN policy of a TLS listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn_policy: Option<String>,
    /// Only the keys we set; attributes we never set are never read or reset.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Mutual TLS of an HTTPS listener; `None`: left as AWS has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutual_auth: Option<MutualAuth>,
    pub default_action: Action,
    /// In priority order; priorities are 1.. with no gaps.
    pub rules: Vec<RuleModel>,
}

/// Mutual TLS of an HTTPS listener, in normal form: the trust store and the two flags are
/// only ever set in `verify` mode (AWS reports them only there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutualAuth {
    pub mode: MutualAuthMode,
    /// The trust store's ARN (a name while discovery has not resolved it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_store: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_client_certificate_expiry: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub advertise_trust_store_ca_names: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MutualAuthMode {
    Off,
    Passthrough,
    Verify,
}

impl MutualAuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MutualAuthMode::Off => "off",
            MutualAuthMode::Passthrough => "passthrough",
            MutualAuthMode::Verify => "verify",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Off, Self::Passthrough, Self::Verify]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

impl MutualAuth {
    /// What a listener without mutual TLS has (and what AWS reports for one).
    pub fn off() -> Self {
        MutualAuth {
            mode: MutualAuthMode::Off,
            trust_store: None,
            ignore_client_certificate_expiry: false,
            advertise_trust_store_ca_names: false,
        }
    }
    /// Whether a listener that reports `observed` (`None`: nothing, which is off) must be
    /// changed to have `desired` (`None`: whatever it has).
    pub fn differs(desired: Option<&MutualAuth>, observed: Option<&MutualAuth>) -> bool {
        match desired {
            None => false,
            Some(d) => *d != observed.cloned().unwrap_or_else(MutualAuth::off),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleModel {
    pub priority: i32,
    pub conditions: Vec<RuleCondition>,
    pub action: Action,
    /// Rewrites of the request before it is forwarded (`transforms.<service>`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
    /// The member the rule comes from, `namespace/name`.
    pub member: String,
}

/// A target of a forward action: a target group of ours (by name) or a foreign ARN given in
/// an `actions.*` annotation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TargetRef {
    Name(String),
    Arn(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Forward {
        /// (target, weight)
        targets: Vec<(TargetRef, i32)>,
        /// Stickiness duration in seconds, when enabled.
        stickiness: Option<i32>,
    },
    Redirect(Redirect),
    FixedResponse {
        status_code: String,
        content_type: Option<String>,
        message_body: Option<String>,
    },
    /// `first` (action order 1), then `then` (order 2): only on HTTPS listeners.
    Authenticated {
        first: Box<Authenticate>,
        then: Box<Action>,
    },
}

impl Action {
    /// The same action with every forward target passed through `f`.
    pub fn map_targets(&self, f: &impl Fn(&TargetRef) -> TargetRef) -> Action {
        match self {
            Action::Forward {
                targets,
                stickiness,
            } => Action::Forward {
                targets: targets.iter().map(|(t, w)| (f(t), *w)).collect(),
                stickiness: *stickiness,
            },
            Action::Authenticated { first, then } => Action::Authenticated {
                first: first.clone(),
                then: Box::new(then.map_targets(f)),
            },
            other => other.clone(),
        }
    }
}

/// What runs before a rule's action on an HTTPS listener: a user login with Cognito or an
/// OIDC provider, or the validation of a JSON Web Token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Authenticate {
    Cognito(CognitoAuth),
    Oidc(OidcAuth),
    Jwt(JwtValidation),
}

/// The session settings both login kinds share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSession {
    /// `authenticate`, `deny` or `allow`.
    pub on_unauthenticated: String,
    pub scope: String,
    pub cookie: String,
    /// Seconds.
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_params: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CognitoAuth {
    pub user_pool_arn: String,
    pub client_id: String,
    pub domain: String,
    pub session: AuthSession,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcAuth {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub user_info_endpoint: String,
    pub client_id: String,
    /// Where the client secret is; the secret itself never enters the model (nor the status
    /// or a plan printed from it): the applier takes it from [`ClientSecrets`].
    pub secret: ClientSecretRef,
    pub session: AuthSession,
}

/// The Secret holding an OIDC client secret. ELBv2 never returns the secret, so an observed
/// action cannot say which Secret it came from: the reference takes no part in comparisons.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClientSecretRef {
    pub namespace: String,
    pub name: String,
}

impl PartialEq for ClientSecretRef {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ClientSecretRef {}

/// OIDC client secrets by (namespace, Secret name), read at fetch time for the applier, with
/// the `resourceVersion` of each Secret (what tells a rotated secret from the one last sent).
/// Its `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct ClientSecrets {
    secrets: BTreeMap<(String, String), String>,
    versions: BTreeMap<(String, String), String>,
}

impl ClientSecrets {
    pub fn new(secrets: BTreeMap<(String, String), String>) -> Self {
        ClientSecrets {
            secrets,
            versions: BTreeMap::new(),
        }
    }
    pub const fn empty() -> Self {
        ClientSecrets {
            secrets: BTreeMap::new(),
            versions: BTreeMap::new(),
        }
    }
    pub fn with_versions(mut self, versions: BTreeMap<(String, String), String>) -> Self {
        self.versions = versions;
        self
    }
    pub fn get(&self, r: &ClientSecretRef) -> Option<&str> {
        self.secrets
            .get(&(r.namespace.clone(), r.name.clone()))
            .map(String::as_str)
    }
    /// The `resourceVersion` of the Secret `r` names, when it was read.
    pub fn version(&self, r: &ClientSecretRef) -> Option<&str> {
        self.versions
            .get(&(r.namespace.clone(), r.name.clone()))
            .map(String::as_str)
    }
}

impl std::fmt::Debug for ClientSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.secrets.keys()).finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtValidation {
    pub jwks_endpoint: String,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<JwtClaim>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtClaim {
    pub name: String,
    /// `single-string`, `string-array` or `space-separated-values`.
    pub format: String,
    pub values: Vec<String>,
}

/// A redirect with every field filled in (AWS reports the `#{...}` defaults back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    pub protocol: String,
    pub host: String,
    pub port: String,
    pub path: String,
    pub query: String,
    pub status_code: String,
}

impl Redirect {
    pub fn new(
        protocol: Option<String>,
        host: Option<String>,
        port: Option<String>,
        path: Option<String>,
        query: Option<String>,
        status_code: String,
    ) -> Self {
        Redirect {
            protocol: protocol.unwrap_or_else(|| "#{protocol}".into()),
            host: host.unwrap_or_else(|| "#{host}".into()),
            port: port.unwrap_or_else(|| "#{port}".into()),
            path: path.unwrap_or_else(|| "/#{path}".into()),
            query: query.unwrap_or_else(|| "#{query}".into()),
            status_code,
        }
    }
}

impl Action {
    pub fn not_found() -> Self {
        Action::FixedResponse {
            status_code: "404".into(),
            content_type: Some("text/plain".into()),
            message_body: None,
        }
    }
    pub fn forward_to(name: &str) -> Self {
        Action::Forward {
            targets: vec![(TargetRef::Name(name.to_owned()), 1)],
            stickiness: None,
        }
    }
    /// `then` with `first` before it, or `then` alone.
    pub fn authenticated(first: Option<&Authenticate>, then: &Action) -> Action {
        match first {
            Some(first) => Action::Authenticated {
                first: Box::new(first.clone()),
                then: Box::new(then.clone()),
            },
            None => then.clone(),
        }
    }
    /// The action that answers the request (past any authentication).
    pub fn last(&self) -> &Action {
        match self {
            Action::Authenticated { then, .. } => then.last(),
            other => other,
        }
    }
    /// Target group names this action forwards to.
    pub fn target_names(&self) -> impl Iterator<Item = &str> {
        let targets: &[(TargetRef, i32)] = match self.last() {
            Action::Forward { targets, .. } => targets,
            _ => &[],
        };
        targets.iter().filter_map(|(t, _)| match t {
            TargetRef::Name(n) => Some(n.as_str()),
            TargetRef::Arn(_) => None,
        })
    }
}

/// A rule transform: regex rewrites of the host header or of the URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transform {
    HostHeaderRewrite(Vec<Rewrite>),
    UrlRewrite(Vec<Rewrite>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    pub regex: String,
    pub replace: String,
}

/// A rule condition in normal form: values sorted and deduplicated.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RuleCondition {
    HostHeader(BTreeSet<String>),
    PathPattern(BTreeSet<String>),
    HttpHeader {
        name: String,
        values: BTreeSet<String>,
    },
    HttpRequestMethod(BTreeSet<String>),
    /// (key, value); a missing key is the empty string.
    QueryString(BTreeSet<(String, String)>),
    SourceIp(BTreeSet<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub path: String,
    /// `traffic-port` or a number.
    pub port: String,
    pub protocol: Protocol,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub success_codes: String,
    /// The success codes are gRPC status codes (a `GrpcCode` matcher), not HTTP codes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grpc: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroupModel {
    /// `namespace/ingress-service:port`, the `ingress.k8s.aws/resource` tag.
    pub key: String,
    /// Encodes the immutable fields, so changing one yields a new target group.
    pub name: String,
    pub protocol: Protocol,
    pub protocol_version: String,
    pub port: i32,
    pub target_type: TargetType,
    pub health_check: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    pub tags: Tags,
    /// What the TargetGroupBinding registers.
    pub binding: BindingModel,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingModel {
    pub namespace: String,
    pub service: String,
    /// The Service port as the Ingress names it: a number or a port name.
    pub service_port: ServicePortRef,
    /// The port the backend security group must reach on the targets.
    pub target_port: ServicePortRef,
    /// Key of the backend security group that reaches the targets.
    pub backend_security_group: String,
    /// A health check port other than the traffic port (a NodePort), reached over TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_port: Option<i32>,
    /// Only nodes with these labels are targets (instance mode).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServicePortRef {
    Number(i32),
    Name(String),
}

impl std::fmt::Display for ServicePortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServicePortRef::Number(n) => write!(f, "{n}"),
            ServicePortRef::Name(s) => f.write_str(s),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupModel {
    /// `ManagedLBSecurityGroup[-n]` or `BackendSecurityGroup[-n]`.
    pub key: String,
    pub name: String,
    pub description: String,
    /// Inbound TCP rules.
    pub ingress: BTreeSet<SgRule>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SgRule {
    pub port: i32,
    /// An IPv4 or IPv6 CIDR.
    pub cidr: String,
    #[serde(default, skip_serializing_if = "IpProtocol::is_tcp")]
    pub protocol: IpProtocol,
}

impl SgRule {
    pub fn tcp(port: i32, cidr: impl Into<String>) -> Self {
        SgRule {
            port,
            cidr: cidr.into(),
            protocol: IpProtocol::Tcp,
        }
    }
}

/// The IP protocol of a security group rule.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IpProtocol {
    #[default]
    Tcp,
    Udp,
}

impl IpProtocol {
    pub fn is_tcp(&self) -> bool {
        *self == IpProtocol::Tcp
    }
    pub fn as_str(self) -> &'static str {
        match self {
            IpProtocol::Tcp => "tcp",
            IpProtocol::Udp => "udp",
        }
    }
}
