//! Settings of `causeway agent` (built by the CLI from its flags).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::aws::AwsSettings;

/// Everything the node agent is started with.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// A kubeconfig; in-cluster configuration when `None`.
    pub kubeconfig: Option<PathBuf>,
    pub aws: AwsSettings,
    /// This node's name; only its pods are watched.
    pub node_name: Option<String>,
    /// This node's IP: the DNAT destination; requests from it are hostNetwork pods.
    pub node_ip: Option<IpAddr>,
    /// This node's IPv6 address on a dual-stack node: the destination of the ip6tables
    /// rules for fd00:ec2::254 and fd00:ec2::23 (with an IPv6 `node_ip`, that one is used).
    pub node_ipv6: Option<IpAddr>,
    pub metadata_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub iptables: IptablesSettings,
    /// Prefix for bare role names (discovered through STS when `None`).
    pub base_role_arn: Option<String>,
    /// Enforce namespaces' `iam.amazonaws.com/allowed-roles`.
    pub namespace_restrictions: bool,
    pub session_per_role: bool,
    pub host_network_role: Option<String>,
    pub require_imdsv2: bool,
    /// The real metadata service (host:port), for the allow-listed paths only.
    pub metadata_upstream: String,
    pub metadata_allow_paths: Vec<String>,
    pub session_duration: Duration,
    pub refresh_ahead: Duration,
    pub pod_wait: Duration,
    pub fetch_wait: Duration,
    /// AssumeRole calls in flight at once, before the STS bucket's bound.
    pub sts_max_in_flight: usize,
    /// Where the container-credentials endpoint listens; the token path is off when `None`.
    pub credentials_addr: Option<SocketAddr>,
    /// The audience projected tokens must carry.
    pub token_audience: String,
    /// Token-path sessions carry EKS Pod Identity's session tags.
    pub session_tags: bool,
    pub cluster_name: Option<String>,
    pub cluster_arn: Option<String>,
}

/// The nat PREROUTING DNAT rule for the metadata address.
#[derive(Debug, Clone)]
pub struct IptablesSettings {
    /// Install the rule (it stays on exit: fail closed).
    pub enabled: bool,
    /// Pod interface glob (eni+, cali+, cni0, lxc+).
    pub interface: String,
    /// The iptables binary.
    pub bin: String,
    /// The ip6tables binary, for the IPv6 rules.
    pub bin6: String,
    /// Also DNAT the node's own traffic to 169.254.170.23:80 (nat OUTPUT), so hostNetwork
    /// pods reach the token path.
    pub host_network: bool,
}
