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
    Agent(AgentArgs),
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

    #[command(flatten)]
    pub alb: AlbArgs,

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

/// Ingress → ALB flags.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "ALB (Ingress)")]
pub struct AlbArgs {
    /// Run the Ingress → ALB reconciler.
    #[arg(long = "alb-enabled", env = "CAUSEWAY_ALB_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,

    /// IngressClass controller name causeway claims.
    #[arg(
        long = "alb-controller-name",
        env = "CAUSEWAY_ALB_CONTROLLER_NAME",
        default_value = "causeway.dev/alb"
    )]
    pub controller_name: String,

    /// Also claim aws-load-balancer-controller's IngressClasses (`ingress.k8s.aws/alb`) and the legacy `kubernetes.io/ingress.class: alb`, to replace it in place.
    #[arg(long = "alb-claim-lbc-class", env = "CAUSEWAY_ALB_CLAIM_LBC_CLASS", default_value_t = false, action = clap::ArgAction::Set)]
    pub claim_lbc_class: bool,

    /// VPC of the load balancers and target groups; found from subnets tagged kubernetes.io/cluster/<cluster> when unset.
    #[arg(long = "alb-vpc-id", env = "CAUSEWAY_VPC_ID")]
    pub vpc_id: Option<String>,

    /// Tags added to every ALB resource, as `k=v,k=v`.
    #[arg(long = "alb-default-tags", env = "CAUSEWAY_ALB_DEFAULT_TAGS", default_value = "", value_parser = parse_tags)]
    pub default_tags: std::collections::BTreeMap<String, String>,

    /// Target type when neither the Ingress, the Service nor IngressClassParams set one.
    #[arg(long = "alb-default-target-type", env = "CAUSEWAY_ALB_DEFAULT_TARGET_TYPE", default_value = "instance", value_parser = ["instance", "ip"])]
    pub default_target_type: String,

    /// Interval at which every group is re-checked against AWS.
    #[arg(long = "alb-resync-interval", env = "CAUSEWAY_ALB_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,
}

impl AlbArgs {
    pub fn settings(&self) -> crate::alb::AlbSettings {
        crate::alb::AlbSettings {
            class: crate::alb::class::ClassSettings::new(
                &self.controller_name,
                self.claim_lbc_class,
            ),
            vpc_id: self.vpc_id.clone().filter(|v| !v.is_empty()),
            default_tags: self.default_tags.clone(),
            default_target_type: crate::alb::model::TargetType::parse(&self.default_target_type)
                .unwrap_or(crate::alb::model::TargetType::Instance),
            resync: self.resync,
            ..crate::alb::AlbSettings::default()
        }
    }
}

/// `k=v,k=v`, empty allowed.
pub fn parse_tags(s: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("`{item}` is not key=value"))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
}

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
