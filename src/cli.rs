//! Command-line interface. Every flag can also be set through the environment
//! variable shown next to it in `--help`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::aws::{AwsSettings, RateLimits};

#[derive(Debug, Parser)]
#[command(
    name = "causeway",
    version = crate::VERSION,
    about = "Connects a Kubernetes cluster to AWS: Ingress to ALB, hostnames to Route 53, pods to IAM roles"
)]
pub struct Cli {
    /// Log output format.
    #[arg(long, env = "CAUSEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormatArg::Text, global = true)]
    pub log_format: LogFormatArg,

    /// Log filter in tracing's EnvFilter syntax, e.g. `info` or `causeway=debug,kube=warn`.
    #[arg(
        long,
        env = "CAUSEWAY_LOG_LEVEL",
        default_value = "info",
        global = true
    )]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reconcilers (leader-elected).
    Controller(Box<ControllerArgs>),
    /// Run the node agent that serves pods their IAM role's credentials.
    Agent(Box<AgentArgs>),
    /// Print every CustomResourceDefinition as YAML.
    Crds(CrdsArgs),
    /// Show what causeway would do for the given manifests, without changing anything.
    Plan(PlanArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// Path to a kubeconfig; in-cluster configuration is used when unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// AWS region; falls back to the SDK's default chain.
    #[arg(long = "aws-region", env = "AWS_REGION")]
    pub region: Option<String>,

    /// Override the AWS endpoint (tests and the demo point this at a local emulator).
    #[arg(long = "aws-endpoint-url", env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// IAM role to assume for every AWS call.
    #[arg(long = "aws-assume-role-arn", env = "CAUSEWAY_AWS_ASSUME_ROLE_ARN")]
    pub assume_role_arn: Option<String>,

    /// External id for --aws-assume-role-arn.
    #[arg(
        long = "aws-assume-role-external-id",
        env = "CAUSEWAY_AWS_ASSUME_ROLE_EXTERNAL_ID"
    )]
    pub assume_role_external_id: Option<String>,

    /// Attempts per AWS call, including the first (standard retry mode: exponential backoff with jitter).
    #[arg(long = "aws-max-attempts", env = "CAUSEWAY_AWS_MAX_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,

    /// Client-side rate limits per API family as `family=rate:burst,...` (families: elbv2, ec2, route53, iam, sts, acm); unset families keep their defaults.
    #[arg(
        long = "aws-rate-limits",
        env = "CAUSEWAY_AWS_RATE_LIMITS",
        default_value = ""
    )]
    pub rate_limits: RateLimits,
}

impl AwsArgs {
    pub fn settings(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            assume_role_arn: self.assume_role_arn.clone(),
            assume_role_external_id: self.assume_role_external_id.clone(),
            max_attempts: self.max_attempts,
            rate_limits: self.rate_limits,
            ..AwsSettings::default()
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// Name of this cluster; every AWS resource causeway creates is tagged with it.
    #[arg(long, env = "CAUSEWAY_CLUSTER_NAME", value_parser = parse_cluster_name)]
    pub cluster_name: String,

    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, env = "CAUSEWAY_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Elect a leader among replicas through a coordination.k8s.io Lease.
    #[arg(long, env = "CAUSEWAY_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Namespace holding the leader-election Lease.
    #[arg(
        long,
        env = "CAUSEWAY_LEADER_ELECTION_NAMESPACE",
        default_value = "kube-system"
    )]
    pub leader_election_namespace: String,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "CAUSEWAY_LEADER_ELECTION_ID",
        default_value = "causeway-controller"
    )]
    pub leader_election_id: String,

    /// Identity written into the Lease; defaults to the pod or host name plus a random suffix.
    #[arg(long, env = "CAUSEWAY_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,

    /// How long a Lease stays valid without renewal.
    #[arg(long, env = "CAUSEWAY_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// How long the leader keeps trying to renew before it gives up leadership.
    #[arg(long, env = "CAUSEWAY_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,

    /// Interval between acquire or renew attempts.
    #[arg(long, env = "CAUSEWAY_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
}

// ---- `causeway agent` (pod IAM node agent) -------------------------------------------

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// This node's name (the downward API's spec.nodeName); only its pods are watched.
    #[arg(long, env = "CAUSEWAY_NODE_NAME")]
    pub node_name: Option<String>,

    /// This node's IP (status.hostIP): the DNAT destination; requests from it are hostNetwork pods.
    #[arg(long, env = "CAUSEWAY_NODE_IP")]
    pub node_ip: Option<std::net::IpAddr>,

    /// Address the metadata API listens on; its port is the DNAT destination port.
    #[arg(long, env = "CAUSEWAY_METADATA_ADDR", default_value = "0.0.0.0:8181")]
    pub metadata_addr: SocketAddr,

    /// Address serving /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "CAUSEWAY_AGENT_METRICS_ADDR",
        default_value = "0.0.0.0:8182"
    )]
    pub metrics_addr: SocketAddr,

    /// Install the nat PREROUTING DNAT rule for 169.254.169.254:80 (left in place on exit: fail closed).
    #[arg(long, env = "CAUSEWAY_IPTABLES", default_value_t = true, action = clap::ArgAction::Set)]
    pub iptables: bool,

    /// Pod interface glob for the DNAT rule: eni+ (VPC CNI), cali+ (Calico), cni0, lxc+ (Cilium).
    #[arg(long, env = "CAUSEWAY_IPTABLES_INTERFACE", default_value = "eni+")]
    pub iptables_interface: String,

    /// The iptables binary to run.
    #[arg(long, env = "CAUSEWAY_IPTABLES_BIN", default_value = "iptables")]
    pub iptables_bin: String,

    /// Remove our DNAT rule for --iptables-interface, then exit (uninstalling the agent).
    #[arg(long, env = "CAUSEWAY_CLEANUP_IPTABLES", default_value_t = false)]
    pub cleanup_iptables: bool,

    /// Prefix for bare role names, e.g. arn:aws:iam::123456789012:role/ (discovered through STS when unset).
    #[arg(long, env = "CAUSEWAY_BASE_ROLE_ARN")]
    pub base_role_arn: Option<String>,

    /// Enforce namespaces' iam.amazonaws.com/allowed-roles annotation.
    #[arg(long, env = "CAUSEWAY_NAMESPACE_RESTRICTIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub namespace_restrictions: bool,

    /// One STS session per role shared by its pods, instead of one per pod (fewer STS calls, less audit detail).
    #[arg(long, env = "CAUSEWAY_SESSION_PER_ROLE", default_value_t = false)]
    pub session_per_role: bool,

    /// Role served to hostNetwork pods (requests from the node's IP); they get nothing when unset.
    #[arg(long, env = "CAUSEWAY_HOST_NETWORK_ROLE")]
    pub host_network_role: Option<String>,

    /// Require IMDSv2 tokens on every metadata read.
    #[arg(long, env = "CAUSEWAY_REQUIRE_IMDSV2", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_imdsv2: bool,

    /// The real metadata service (host:port), for the allow-listed paths only.
    #[arg(
        long,
        env = "CAUSEWAY_METADATA_UPSTREAM",
        default_value = "169.254.169.254:80"
    )]
    pub metadata_upstream: String,

    /// Extra metadata paths to proxy, beyond placement/region, availability-zone(-id) and the identity document.
    #[arg(
        long = "metadata-allow-path",
        env = "CAUSEWAY_METADATA_ALLOW_PATHS",
        value_delimiter = ','
    )]
    pub metadata_allow_paths: Vec<String>,

    /// STS session length when the IamRoleBinding does not set one.
    #[arg(long, env = "CAUSEWAY_SESSION_DURATION", default_value = "1h", value_parser = parse_duration)]
    pub session_duration: Duration,

    /// Refresh credentials this long before they expire (at most half their lifetime).
    #[arg(long, env = "CAUSEWAY_REFRESH_AHEAD", default_value = "15m", value_parser = parse_duration)]
    pub refresh_ahead: Duration,

    /// How long a request from an IP the pod watch has not seen yet waits for it.
    #[arg(long, env = "CAUSEWAY_POD_WAIT", default_value = "800ms", value_parser = parse_duration)]
    pub pod_wait: Duration,

    /// How long a request waits for credentials still being fetched.
    #[arg(long, env = "CAUSEWAY_FETCH_WAIT", default_value = "900ms", value_parser = parse_duration)]
    pub fetch_wait: Duration,
}

// ---- end of `causeway agent` ----------------------------------------------------------

#[derive(Debug, Clone, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing a YAML stream.
    #[arg(long, env = "CAUSEWAY_CRDS_OUT")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Manifest files or directories to plan for (`-` reads standard input).
    #[arg(
        short = 'f',
        long = "filename",
        env = "CAUSEWAY_PLAN_FILES",
        value_delimiter = ',',
        required = true
    )]
    pub files: Vec<PathBuf>,
}

/// Cluster names end up in tag values and resource names, so keep them to
/// what both accept.
pub fn parse_cluster_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1 to 63 characters".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("may only contain letters, digits, '-' and '_'".into());
    }
    Ok(s.to_string())
}

/// Durations as `500ms`, `15s`, `2m` or `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m or h)"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}` has an unknown unit (use ms, s, m or h)")),
    }
}

/// Turns a clap error into the single line we print before exiting with 2.
pub fn one_line_error(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let mut parts = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        parts.push(line);
    }
    let mut msg = parts.join(" ");
    if let Some(rest) = msg.strip_prefix("error: ") {
        msg = rest.to_string();
    }
    format!("causeway: {msg} (see --help)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse_with_units_and_reject_garbage() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3 days").is_err());
    }

    #[test]
    fn cluster_names_are_checked() {
        assert!(parse_cluster_name("prod-eu_1").is_ok());
        assert!(parse_cluster_name("").is_err());
        assert!(parse_cluster_name("has space").is_err());
        assert!(parse_cluster_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn every_controller_flag_has_an_env_var() {
        let cmd = Cli::command();
        let controller = cmd
            .find_subcommand("controller")
            .expect("controller subcommand");
        for arg in controller.get_arguments() {
            if arg.is_positional() || ["help", "version"].contains(&arg.get_id().as_str()) {
                continue;
            }
            assert!(
                arg.get_env().is_some(),
                "flag --{} has no environment variable",
                arg.get_id()
            );
        }
    }

    #[test]
    fn every_agent_flag_has_an_env_var() {
        let cmd = Cli::command();
        let agent = cmd.find_subcommand("agent").expect("agent subcommand");
        for arg in agent.get_arguments() {
            if arg.is_positional() || ["help", "version"].contains(&arg.get_id().as_str()) {
                continue;
            }
            assert!(
                arg.get_env().is_some(),
                "flag --{} has no environment variable",
                arg.get_id()
            );
        }
    }

    #[test]
    fn bad_flag_value_is_one_line() {
        let err = Cli::try_parse_from([
            "causeway",
            "controller",
            "--cluster-name",
            "c1",
            "--lease-duration",
            "forever",
        ])
        .unwrap_err();
        let line = one_line_error(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--lease-duration"), "{line}");
    }
}
