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

/// One reconciler of `causeway controller`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Reconciler {
    /// Ingress → ALB.
    Alb,
    /// Service type LoadBalancer → NLB.
    Nlb,
    /// TargetGroupBinding → registered targets.
    Targets,
    /// Ingress, Service and DNSEndpoint → Route 53.
    Dns,
    /// IamRoleBinding validation.
    Iam,
    /// Gateway API Gateways of an ALB GatewayClass → ALB (needs the Gateway API CRDs).
    Gateway,
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
    Plan(Box<PlanArgs>),
    /// Print the Gateway API objects (Gateway, HTTPRoutes, LoadBalancerConfiguration,
    /// TargetGroupConfigurations) equivalent to the given Ingress manifests.
    Convert(Box<ConvertArgs>),
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

    /// Client-side rate limits per API family as `family=rate:burst,...` (families: elbv2 (its Describe calls), elbv2-writes (every other ELBv2 call), ec2, route53, iam, sts, acm, wafv2, shield, tagging); unset families keep their defaults.
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

    #[command(flatten)]
    pub nlb: NlbArgs,

    #[command(flatten)]
    pub gateway: GatewayArgs,

    /// Name of this cluster; every AWS resource causeway creates is tagged with it.
    #[arg(long, env = "CAUSEWAY_CLUSTER_NAME", value_parser = parse_cluster_name)]
    pub cluster_name: String,

    /// Reconcilers to run, comma-separated: alb, nlb, targets, dns, iam (IamRoleBinding
    /// validation), gateway (ALB Gateways; off by default, it needs the Gateway API CRDs).
    /// Leave one out to keep its peer (aws-load-balancer-controller, external-dns, kube2iam).
    #[arg(
        long,
        env = "CAUSEWAY_CONTROLLERS",
        value_enum,
        value_delimiter = ',',
        default_value = "alb,nlb,targets,dns,iam"
    )]
    pub controllers: Vec<Reconciler>,

    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, env = "CAUSEWAY_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Inject the token path (projected token, AWS_CONTAINER_CREDENTIALS_FULL_URI and
    /// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) into new pods whose service account is bound
    /// by an IamRoleBinding or IRSA's eks.amazonaws.com/role-arn (with the iam reconciler, on the
    /// webhook server of --webhook-*; fails open). Off unless asked: it sees every new pod.
    #[arg(long, env = "CAUSEWAY_POD_IDENTITY_WEBHOOK", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub pod_identity_webhook: bool,

    /// The audience of the injected projected token (the agent's --token-audience).
    #[arg(
        long,
        env = "CAUSEWAY_POD_IDENTITY_AUDIENCE",
        default_value = "pods.eks.amazonaws.com"
    )]
    pub pod_identity_audience: String,

    /// Lifetime of the injected projected token (the kubelet rotates it at 80 %; 10m to 48h).
    #[arg(long, env = "CAUSEWAY_POD_IDENTITY_TOKEN_EXPIRATION", default_value = "24h", value_parser = parse_token_expiration)]
    pub pod_identity_token_expiration: Duration,

    /// The endpoint injected as AWS_CONTAINER_CREDENTIALS_FULL_URI.
    #[arg(
        long,
        env = "CAUSEWAY_POD_IDENTITY_URI",
        default_value = "http://169.254.170.23/v1/credentials"
    )]
    pub pod_identity_uri: String,

    /// The cluster's VPC. Load balancers and target groups are created in it, and
    /// TargetGroupBindings naming target groups in another VPC are refused. Unset: ALBs use the
    /// VPC of the subnets tagged kubernetes.io/cluster/<cluster>, and bindings their own vpcID.
    #[arg(
        long = "vpc-id",
        env = "CAUSEWAY_VPC_ID",
        aliases = ["alb-vpc-id", "targets-vpc-id"]
    )]
    pub vpc_id: Option<String>,

    /// Elect a leader among replicas through a coordination.k8s.io Lease.
    #[arg(long, env = "CAUSEWAY_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
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

    #[command(flatten)]
    pub targets: TargetsArgs,

    #[command(flatten)]
    pub dns: DnsArgs,
}

// ---- TargetGroupBinding reconciler and pod readiness-gate webhook ----------------------

/// Flags of the TargetGroupBinding reconciler and its pod readiness-gate webhook.
#[derive(Debug, Clone, Args)]
pub struct TargetsArgs {
    /// Only reconcile TargetGroupBindings (and watch Services, EndpointSlices) in this
    /// namespace; all namespaces when unset.
    #[arg(
        id = "targets_namespace",
        long = "targets-namespace",
        env = "CAUSEWAY_TARGETS_NAMESPACE"
    )]
    pub namespace: Option<String>,

    /// How often every binding is re-checked against AWS even without a change (plus up
    /// to 10% jitter).
    #[arg(id = "targets_resync", long = "targets-resync", env = "CAUSEWAY_TARGETS_RESYNC", default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,

    /// Serve the pod readiness-gate mutating webhook (on every replica).
    #[arg(id = "webhook_enabled", long = "webhook-enabled", env = "CAUSEWAY_WEBHOOK_ENABLED", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub webhook_enabled: bool,

    /// Address the webhook's HTTPS server listens on.
    #[arg(
        id = "webhook_addr",
        long = "webhook-addr",
        env = "CAUSEWAY_WEBHOOK_ADDR",
        default_value = "0.0.0.0:9443"
    )]
    pub webhook_addr: SocketAddr,

    /// Namespace of the webhook's Service and certificate Secret.
    #[arg(
        id = "webhook_namespace",
        long = "webhook-namespace",
        env = "CAUSEWAY_WEBHOOK_NAMESPACE",
        default_value = "kube-system"
    )]
    pub webhook_namespace: String,

    /// Name of the Service in front of the webhook (port 443).
    #[arg(
        id = "webhook_service",
        long = "webhook-service",
        env = "CAUSEWAY_WEBHOOK_SERVICE",
        default_value = "causeway-webhook"
    )]
    pub webhook_service: String,

    /// Call the webhook at this URL instead of through the Service (out-of-cluster runs).
    #[arg(id = "webhook_url", long = "webhook-url", env = "CAUSEWAY_WEBHOOK_URL")]
    pub webhook_url: Option<String>,

    /// The MutatingWebhookConfiguration causeway creates and keeps up to date.
    #[arg(
        id = "webhook_configuration_name",
        long = "webhook-configuration-name",
        env = "CAUSEWAY_WEBHOOK_CONFIGURATION_NAME",
        default_value = "causeway-pod-readiness-gate"
    )]
    pub webhook_configuration_name: String,

    /// The Secret holding the webhook's CA and serving certificate, shared by all replicas.
    #[arg(
        id = "webhook_secret",
        long = "webhook-secret",
        env = "CAUSEWAY_WEBHOOK_SECRET",
        default_value = "causeway-webhook-tls"
    )]
    pub webhook_secret: String,
}

impl TargetsArgs {
    /// The reconciler's settings; `vpc_id` is the controller's `--vpc-id`.
    pub(crate) fn settings(
        &self,
        vpc_id: Option<String>,
    ) -> crate::targets::settings::TargetsSettings {
        crate::targets::settings::TargetsSettings {
            vpc_id: vpc_id.filter(|v| !v.is_empty()),
            namespace: self.namespace.clone().filter(|n| !n.is_empty()),
            resync: self.resync,
        }
    }

    /// The readiness-gate webhook's settings.
    pub(crate) fn webhook_settings(&self) -> crate::targets::settings::WebhookSettings {
        crate::targets::settings::WebhookSettings {
            namespace: self.namespace.clone().filter(|n| !n.is_empty()),
            addr: self.webhook_addr,
            service_namespace: self.webhook_namespace.clone(),
            service: self.webhook_service.clone(),
            url: self.webhook_url.clone(),
            configuration_name: self.webhook_configuration_name.clone(),
            secret: self.webhook_secret.clone(),
            service_class: None,
            readiness_gates: true,
            pod_identity: None,
        }
    }
}

// ---- DNS (Route 53) flags: the external-dns replacement -------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DnsPolicyArg {
    Sync,
    UpsertOnly,
    CreateOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DnsZoneTypeArg {
    Public,
    Private,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DnsSourceArg {
    Ingress,
    Service,
    Dnsendpoint,
    /// HTTPRoutes attached to Gateways (needs the Gateway API CRDs).
    GatewayHttproute,
}

/// Flags of the DNS controller; names follow external-dns's with a `dns-` prefix.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "DNS (Route 53)")]
pub struct DnsArgs {
    /// Watch only this namespace; all namespaces when unset.
    #[arg(
        id = "dns_namespace",
        long = "dns-namespace",
        env = "CAUSEWAY_DNS_NAMESPACE"
    )]
    pub namespace: Option<String>,

    /// Object kinds to publish.
    #[arg(
        id = "dns_sources",
        long = "dns-sources",
        env = "CAUSEWAY_DNS_SOURCES",
        value_enum,
        value_delimiter = ',',
        default_value = "ingress,service,dnsendpoint"
    )]
    pub sources: Vec<DnsSourceArg>,

    /// Only objects with these annotations (`key` or `key=value`, comma-separated, all must match).
    #[arg(id = "dns_annotation_filter", long = "dns-annotation-filter", env = "CAUSEWAY_DNS_ANNOTATION_FILTER", default_value = "",
          value_parser = parse_annotation_filter)]
    pub annotation_filter: crate::dns::desired::AnnotationFilter,

    /// Manage only these domains (`example.com` includes subdomains; `.example.com` only subdomains).
    #[arg(
        id = "dns_domain_filter",
        long = "dns-domain-filter",
        env = "CAUSEWAY_DNS_DOMAIN_FILTER",
        value_delimiter = ','
    )]
    pub domain_filter: Vec<String>,

    /// Never manage these domains.
    #[arg(
        id = "dns_exclude_domains",
        long = "dns-exclude-domains",
        env = "CAUSEWAY_DNS_EXCLUDE_DOMAINS",
        value_delimiter = ','
    )]
    pub exclude_domains: Vec<String>,

    /// Regex of domains to manage; replaces --dns-domain-filter and --dns-exclude-domains.
    #[arg(id = "dns_regex_domain_filter", long = "dns-regex-domain-filter", env = "CAUSEWAY_DNS_REGEX_DOMAIN_FILTER", value_parser = parse_regex)]
    pub regex_domain_filter: Option<String>,

    /// Regex of domains never to manage (with --dns-regex-domain-filter).
    #[arg(id = "dns_regex_domain_exclusion", long = "dns-regex-domain-exclusion", env = "CAUSEWAY_DNS_REGEX_DOMAIN_EXCLUSION", value_parser = parse_regex)]
    pub regex_domain_exclusion: Option<String>,

    /// Only these hosted zone ids.
    #[arg(
        id = "dns_zone_id_filter",
        long = "dns-zone-id-filter",
        env = "CAUSEWAY_DNS_ZONE_ID_FILTER",
        value_delimiter = ','
    )]
    pub zone_id_filter: Vec<String>,

    /// Only public or only private zones.
    #[arg(
        id = "dns_zone_type",
        long = "dns-zone-type",
        env = "CAUSEWAY_DNS_ZONE_TYPE",
        value_enum
    )]
    pub zone_type: Option<DnsZoneTypeArg>,

    /// Only zones with these tags (`key` or `key=value`, all must match); read with ListTagsForResources.
    #[arg(id = "dns_zone_tags", long = "dns-zone-tags", env = "CAUSEWAY_DNS_ZONE_TAGS", value_delimiter = ',',
          value_parser = parse_zone_tag)]
    pub zone_tags: Vec<crate::dns::TagFilter>,

    /// Owner id written into TXT ownership records; records of other owners are never touched.
    #[arg(
        id = "dns_txt_owner_id",
        long = "dns-txt-owner-id",
        env = "CAUSEWAY_DNS_TXT_OWNER_ID",
        default_value = "default"
    )]
    pub txt_owner_id: String,

    /// Prefix of TXT ownership record names (may contain %{record_type}).
    #[arg(
        id = "dns_txt_prefix",
        long = "dns-txt-prefix",
        env = "CAUSEWAY_DNS_TXT_PREFIX",
        default_value = "",
        conflicts_with = "dns_txt_suffix"
    )]
    pub txt_prefix: String,

    /// Suffix of the first label of TXT ownership record names (may contain %{record_type}).
    #[arg(
        id = "dns_txt_suffix",
        long = "dns-txt-suffix",
        env = "CAUSEWAY_DNS_TXT_SUFFIX",
        default_value = ""
    )]
    pub txt_suffix: String,

    /// Replaces `*` in ownership record names of wildcard records.
    #[arg(
        id = "dns_txt_wildcard_replacement",
        long = "dns-txt-wildcard-replacement",
        env = "CAUSEWAY_DNS_TXT_WILDCARD_REPLACEMENT"
    )]
    pub txt_wildcard_replacement: Option<String>,

    /// sync creates, updates and deletes; upsert-only never deletes; create-only only creates.
    #[arg(id = "dns_policy", long = "dns-policy", env = "CAUSEWAY_DNS_POLICY", value_enum, default_value_t = DnsPolicyArg::Sync)]
    pub policy: DnsPolicyArg,

    /// Plan and log changes without submitting them.
    #[arg(id = "dns_dry_run", long = "dns-dry-run", env = "CAUSEWAY_DNS_DRY_RUN", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub dry_run: bool,

    /// TTL of records that do not set one, and of ownership records.
    #[arg(id = "dns_default_ttl", long = "dns-default-ttl", env = "CAUSEWAY_DNS_DEFAULT_TTL", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(1..=2_147_483_647))]
    pub default_ttl: u32,

    /// EvaluateTargetHealth of aliases that do not set it.
    #[arg(id = "dns_evaluate_target_health", long = "dns-evaluate-target-health", env = "CAUSEWAY_DNS_EVALUATE_TARGET_HEALTH", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub evaluate_target_health: bool,

    /// Quiet time after a change before it is published; changes within it are batched.
    #[arg(id = "dns_debounce", long = "dns-debounce", env = "CAUSEWAY_DNS_DEBOUNCE", default_value = "500ms", value_parser = parse_duration)]
    pub debounce: Duration,

    /// How often every managed zone is listed again (ListResourceRecordSets) to catch outside edits.
    #[arg(id = "dns_resync_interval", long = "dns-resync-interval", env = "CAUSEWAY_DNS_RESYNC_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// How long the hosted zone list (ListHostedZones) is cached.
    #[arg(id = "dns_zone_cache_ttl", long = "dns-zone-cache-ttl", env = "CAUSEWAY_DNS_ZONE_CACHE_TTL", default_value = "1h", value_parser = parse_duration)]
    pub zone_cache_ttl: Duration,

    /// How long a change Route 53 rejected waits before it is submitted again unchanged.
    #[arg(id = "dns_failed_change_backoff", long = "dns-failed-change-backoff", env = "CAUSEWAY_DNS_FAILED_CHANGE_BACKOFF", default_value = "5m", value_parser = parse_duration)]
    pub failed_change_backoff: Duration,
}

impl DnsArgs {
    /// The controller's settings; fails on combinations clap cannot check alone.
    pub fn settings(&self) -> Result<crate::dns::DnsSettings, String> {
        use crate::dns::{DomainFilter, Policy, TxtRegistry, ZoneFilter, ZoneType};
        let registry = TxtRegistry::new(
            &self.txt_owner_id,
            &self.txt_prefix,
            &self.txt_suffix,
            self.txt_wildcard_replacement.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        let domains = if self.regex_domain_filter.is_some() || self.regex_domain_exclusion.is_some()
        {
            DomainFilter::with_regex(
                self.regex_domain_filter.as_deref(),
                self.regex_domain_exclusion.as_deref(),
            )
            .map_err(|e| e.to_string())?
        } else {
            DomainFilter::new(&self.domain_filter, &self.exclude_domains)
        };
        let mut settings =
            crate::dns::DnsSettings::with_owner(&self.txt_owner_id).map_err(|e| e.to_string())?;
        settings.namespace = self.namespace.clone().filter(|n| !n.is_empty());
        settings.sources = crate::dns::desired::SourceKinds {
            ingress: self.sources.contains(&DnsSourceArg::Ingress),
            service: self.sources.contains(&DnsSourceArg::Service),
            dns_endpoint: self.sources.contains(&DnsSourceArg::Dnsendpoint),
            http_route: self.sources.contains(&DnsSourceArg::GatewayHttproute),
        };
        settings.annotation_filter = self.annotation_filter.clone();
        settings.zone_filter = ZoneFilter {
            domains,
            zone_ids: self.zone_id_filter.clone(),
            zone_type: self.zone_type.map(|t| match t {
                DnsZoneTypeArg::Public => ZoneType::Public,
                DnsZoneTypeArg::Private => ZoneType::Private,
            }),
            tags: self.zone_tags.clone(),
        };
        settings.registry = registry;
        settings.policy = match self.policy {
            DnsPolicyArg::Sync => Policy::Sync,
            DnsPolicyArg::UpsertOnly => Policy::UpsertOnly,
            DnsPolicyArg::CreateOnly => Policy::CreateOnly,
        };
        settings.dry_run = self.dry_run;
        settings.default_ttl = self.default_ttl;
        settings.evaluate_target_health = self.evaluate_target_health;
        settings.debounce = self.debounce;
        settings.resync_interval = self.resync_interval.max(Duration::from_secs(1));
        settings.zone_cache_ttl = self.zone_cache_ttl;
        settings.failed_change_backoff = self.failed_change_backoff;
        Ok(settings)
    }
}

fn parse_annotation_filter(s: &str) -> Result<crate::dns::desired::AnnotationFilter, String> {
    crate::dns::desired::AnnotationFilter::parse(s)
}

fn parse_regex(s: &str) -> Result<String, String> {
    regex::Regex::new(s).map(|_| s.to_string()).map_err(|e| {
        e.to_string()
            .lines()
            .last()
            .unwrap_or("invalid regex")
            .to_string()
    })
}

fn parse_zone_tag(s: &str) -> Result<crate::dns::TagFilter, String> {
    crate::dns::TagFilter::parse(s).map_err(|e| e.to_string())
}

/// Ingress → ALB flags.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "ALB (Ingress)")]
pub struct AlbArgs {
    /// IngressClass controller name causeway claims.
    #[arg(
        id = "alb_controller_name",
        long = "alb-controller-name",
        env = "CAUSEWAY_ALB_CONTROLLER_NAME",
        default_value = "causeway.dev/alb"
    )]
    pub controller_name: String,

    /// Also claim aws-load-balancer-controller's IngressClasses (`ingress.k8s.aws/alb`) and the legacy `kubernetes.io/ingress.class: alb`, to replace it in place.
    #[arg(id = "alb_claim_lbc_class", long = "alb-claim-lbc-class", env = "CAUSEWAY_ALB_CLAIM_LBC_CLASS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub claim_lbc_class: bool,

    /// Tags added to every ALB resource, as `k=v,k=v`.
    #[arg(id = "alb_default_tags", long = "alb-default-tags", env = "CAUSEWAY_ALB_DEFAULT_TAGS", default_value = "", value_parser = parse_tags)]
    pub default_tags: std::collections::BTreeMap<String, String>,

    /// Tag keys managed outside causeway, comma-separated: never removed from ALB resources, and not settable through annotations.
    #[arg(
        id = "alb_external_managed_tags",
        long = "alb-external-managed-tags",
        env = "CAUSEWAY_ALB_EXTERNAL_MANAGED_TAGS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub external_managed_tags: Vec<String>,

    /// Target type when neither the Ingress, the Service nor IngressClassParams set one.
    #[arg(id = "alb_default_target_type", long = "alb-default-target-type", env = "CAUSEWAY_ALB_DEFAULT_TARGET_TYPE", default_value = "instance", value_parser = ["instance", "ip"])]
    pub default_target_type: String,

    /// Interval at which every group is re-checked against AWS.
    #[arg(id = "alb_resync_interval", long = "alb-resync-interval", env = "CAUSEWAY_ALB_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,
}

impl AlbArgs {
    /// The ALB reconciler's settings; `vpc_id` is the controller's `--vpc-id`.
    pub fn settings(&self, vpc_id: Option<String>) -> crate::alb::AlbSettings {
        crate::alb::AlbSettings {
            class: crate::alb::class::ClassSettings::new(
                &self.controller_name,
                self.claim_lbc_class,
            ),
            vpc_id: vpc_id.filter(|v| !v.is_empty()),
            default_tags: self.default_tags.clone(),
            external_managed_tags: self
                .external_managed_tags
                .iter()
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect(),
            default_target_type: crate::alb::model::TargetType::parse(&self.default_target_type)
                .unwrap_or(crate::alb::model::TargetType::Instance),
            resync: self.resync,
            ..crate::alb::AlbSettings::default()
        }
    }
}

/// Service → NLB flags.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "NLB (Service type LoadBalancer)")]
pub struct NlbArgs {
    /// The `spec.loadBalancerClass` causeway serves (the peer's class by default). Services
    /// without a class are served when they carry the peer's legacy
    /// `service.beta.kubernetes.io/aws-load-balancer-type: external` or `nlb-ip`.
    #[arg(
        id = "nlb_load_balancer_class",
        long = "nlb-load-balancer-class",
        env = "CAUSEWAY_NLB_LOAD_BALANCER_CLASS",
        default_value = "service.k8s.aws/nlb"
    )]
    pub load_balancer_class: String,

    /// Target type when the Service does not set `nlb-target-type`.
    #[arg(id = "nlb_default_target_type", long = "nlb-default-target-type", env = "CAUSEWAY_NLB_DEFAULT_TARGET_TYPE", default_value = "instance", value_parser = ["instance", "ip"])]
    pub default_target_type: String,

    /// Set the class above on new LoadBalancer Services that name none (and carry no
    /// `aws-load-balancer-type` annotation), through the webhook, as the peer's Service
    /// mutator does: for clusters where causeway is the default load balancer implementation.
    #[arg(id = "nlb_set_class_on_new_services", long = "nlb-set-class-on-new-services", env = "CAUSEWAY_NLB_SET_CLASS_ON_NEW_SERVICES", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub set_class_on_new_services: bool,
}

impl NlbArgs {
    /// The NLB reconciler's settings; it shares the ALB's tags, VPC and resync.
    pub fn settings(&self, shared: crate::alb::AlbSettings) -> crate::nlb::NlbSettings {
        crate::nlb::NlbSettings {
            load_balancer_class: self.load_balancer_class.clone(),
            default_target_type: crate::alb::model::TargetType::parse(&self.default_target_type)
                .unwrap_or(crate::alb::model::TargetType::Instance),
            shared,
        }
    }
}

/// Gateway API → ALB flags.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Gateway API (ALB Gateways)")]
pub struct GatewayArgs {
    /// The GatewayClass `controllerName`s served (the peer's by default); the first is the
    /// one written into route status.
    #[arg(
        id = "gateway_controller_names",
        long = "gateway-controller-names",
        env = "CAUSEWAY_GATEWAY_CONTROLLER_NAMES",
        value_delimiter = ',',
        default_value = crate::gateway::ALB_CONTROLLER
    )]
    pub controller_names: Vec<String>,

    /// The scheme of a Gateway whose LoadBalancerConfiguration does not set one.
    #[arg(id = "gateway_default_scheme", long = "gateway-default-scheme", env = "CAUSEWAY_GATEWAY_DEFAULT_SCHEME", default_value = "internal", value_parser = ["internal", "internet-facing"])]
    pub default_scheme: String,
}

impl GatewayArgs {
    /// The Gateway reconciler's settings; it shares the ALB's tags, VPC, target type and resync.
    pub fn settings(&self, shared: crate::alb::AlbSettings) -> crate::gateway::GatewaySettings {
        crate::gateway::GatewaySettings {
            controller_names: self.controller_names.clone(),
            scheme: crate::alb::model::Scheme::parse(&self.default_scheme)
                .unwrap_or(crate::alb::model::Scheme::Internal),
            shared,
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

    /// This node's IP (status.hostIP): the DNAT destination; requests from it are hostNetwork pods. An IPv6 address gets ip6tables rules for fd00:ec2::254 and fd00:ec2::23.
    #[arg(long, env = "CAUSEWAY_NODE_IP")]
    pub node_ip: Option<std::net::IpAddr>,

    /// On a dual-stack node, its IPv6 address: ip6tables rules send fd00:ec2::254 and fd00:ec2::23 there too (listen on [::] then).
    #[arg(long = "node-ipv6", env = "CAUSEWAY_NODE_IPV6", value_parser = parse_ipv6)]
    pub node_ipv6: Option<std::net::IpAddr>,

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
    #[arg(long, env = "CAUSEWAY_IPTABLES", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub iptables: bool,

    /// Pod interface glob for the DNAT rule: eni+ (VPC CNI), cali+ (Calico), cni0, lxc+ (Cilium).
    #[arg(long, env = "CAUSEWAY_IPTABLES_INTERFACE", default_value = "eni+")]
    pub iptables_interface: String,

    /// The iptables binary to run.
    #[arg(long, env = "CAUSEWAY_IPTABLES_BIN", default_value = "iptables")]
    pub iptables_bin: String,

    /// The ip6tables binary to run (IPv6 node addresses).
    #[arg(long, env = "CAUSEWAY_IP6TABLES_BIN", default_value = "ip6tables")]
    pub ip6tables_bin: String,

    /// Also DNAT the node's own traffic to 169.254.170.23:80 (nat OUTPUT), so hostNetwork pods reach the token path.
    #[arg(long, env = "CAUSEWAY_IPTABLES_HOST_NETWORK", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub iptables_host_network: bool,

    /// Remove our DNAT rule for --iptables-interface, then exit (uninstalling the agent).
    #[arg(long, env = "CAUSEWAY_CLEANUP_IPTABLES", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub cleanup_iptables: bool,

    /// Prefix for bare role names, e.g. arn:aws:iam::123456789012:role/ (discovered through STS when unset).
    #[arg(long, env = "CAUSEWAY_BASE_ROLE_ARN")]
    pub base_role_arn: Option<String>,

    /// Enforce namespaces' iam.amazonaws.com/allowed-roles annotation (no annotation: only the namespace's IamRoleBindings grant roles).
    #[arg(long, env = "CAUSEWAY_NAMESPACE_RESTRICTIONS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub namespace_restrictions: bool,

    /// One STS session per role shared by its pods, instead of one per pod (fewer STS calls, less audit detail).
    #[arg(long, env = "CAUSEWAY_SESSION_PER_ROLE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub session_per_role: bool,

    /// Role served to hostNetwork pods (requests from the node's IP); they get nothing when unset.
    #[arg(long, env = "CAUSEWAY_HOST_NETWORK_ROLE")]
    pub host_network_role: Option<String>,

    /// Require IMDSv2 tokens on every metadata read.
    #[arg(long, env = "CAUSEWAY_REQUIRE_IMDSV2", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
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

    /// AssumeRole calls in flight at once (the rest wait their turn, e.g. a start on a node with 1,000 pods); lowered to what the STS rate limit refills in a quarter of the AWS attempt timeout.
    #[arg(long, env = "CAUSEWAY_STS_MAX_IN_FLIGHT", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub sts_max_in_flight: u16,

    /// Serve EKS Pod Identity's container-credentials endpoint (GET /v1/credentials with the pod's projected token), reached through a DNAT rule for 169.254.170.23:80.
    #[arg(long, env = "CAUSEWAY_POD_IDENTITY", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub pod_identity: bool,

    /// Address the container-credentials endpoint listens on; its port is the DNAT destination port for 169.254.170.23:80.
    #[arg(
        long,
        env = "CAUSEWAY_CREDENTIALS_ADDR",
        default_value = "0.0.0.0:8183"
    )]
    pub credentials_addr: SocketAddr,

    /// The audience pods' projected tokens must carry (checked by TokenReview).
    #[arg(
        long,
        env = "CAUSEWAY_TOKEN_AUDIENCE",
        default_value = "pods.eks.amazonaws.com"
    )]
    pub token_audience: String,

    /// Tag token-path sessions as EKS Pod Identity does (eks-cluster-*, kubernetes-namespace, -service-account, -pod-name, -pod-uid; transitive). The roles' trust policies must allow sts:TagSession.
    #[arg(long, env = "CAUSEWAY_SESSION_TAGS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub session_tags: bool,

    /// The cluster's name, for the eks-cluster-name session tag (left out when empty).
    #[arg(
        long = "cluster-name",
        env = "CAUSEWAY_CLUSTER_NAME",
        default_value = ""
    )]
    pub cluster_name: String,

    /// The cluster's ARN, for the eks-cluster-arn session tag (left out when empty).
    #[arg(long = "cluster-arn", env = "CAUSEWAY_CLUSTER_ARN", default_value = "")]
    pub cluster_arn: String,
}

impl AgentArgs {
    /// The agent's settings.
    pub fn settings(&self) -> crate::iam::agent::settings::AgentSettings {
        use crate::iam::agent::settings::{AgentSettings, IptablesSettings};
        AgentSettings {
            kubeconfig: self.kube.kubeconfig.clone(),
            aws: self.aws.settings(),
            node_name: self.node_name.clone(),
            node_ip: self.node_ip,
            node_ipv6: self.node_ipv6,
            metadata_addr: self.metadata_addr,
            metrics_addr: self.metrics_addr,
            iptables: IptablesSettings {
                enabled: self.iptables,
                interface: self.iptables_interface.clone(),
                bin: self.iptables_bin.clone(),
                bin6: self.ip6tables_bin.clone(),
                host_network: self.iptables_host_network,
            },
            base_role_arn: self.base_role_arn.clone(),
            namespace_restrictions: self.namespace_restrictions,
            session_per_role: self.session_per_role,
            host_network_role: self.host_network_role.clone(),
            require_imdsv2: self.require_imdsv2,
            metadata_upstream: self.metadata_upstream.clone(),
            metadata_allow_paths: self.metadata_allow_paths.clone(),
            session_duration: self.session_duration,
            refresh_ahead: self.refresh_ahead,
            pod_wait: self.pod_wait,
            fetch_wait: self.fetch_wait,
            sts_max_in_flight: usize::from(self.sts_max_in_flight),
            credentials_addr: self.pod_identity.then_some(self.credentials_addr),
            token_audience: self.token_audience.clone(),
            session_tags: self.session_tags,
            cluster_name: Some(self.cluster_name.clone()).filter(|n| !n.is_empty()),
            cluster_arn: Some(self.cluster_arn.clone()).filter(|n| !n.is_empty()),
        }
    }
}

// ---- end of `causeway agent` ----------------------------------------------------------

#[derive(Debug, Clone, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing a YAML stream.
    #[arg(long, env = "CAUSEWAY_CRDS_OUT")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// Manifest files or directories holding the Ingresses (and their Services) to convert
    /// (`-` reads standard input).
    #[arg(short = 'f', long = "filename", value_delimiter = ',', required = true)]
    pub files: Vec<PathBuf>,

    /// The GatewayClass the Gateways name.
    #[arg(long, default_value = "alb")]
    pub gateway_class: String,

    /// Cluster name (the ALB builder's names depend on it; the output does not).
    #[arg(long, default_value = "cluster")]
    pub cluster_name: String,

    #[command(flatten)]
    pub alb: AlbArgs,
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

    /// Name of the cluster the plan is for (names and tags depend on it).
    #[arg(long, env = "CAUSEWAY_CLUSTER_NAME", value_parser = parse_cluster_name)]
    pub cluster_name: String,

    /// Plan from the manifests alone: show the models, read nothing from AWS.
    #[arg(long, env = "CAUSEWAY_PLAN_OFFLINE")]
    pub offline: bool,

    #[command(flatten)]
    pub aws: AwsArgs,

    /// The cluster's VPC; discovered from the subnets tagged for the cluster when unset.
    #[arg(long, env = "CAUSEWAY_VPC_ID")]
    pub vpc_id: Option<String>,

    #[command(flatten)]
    pub alb: AlbArgs,

    #[command(flatten)]
    pub nlb: NlbArgs,

    #[command(flatten)]
    pub gateway: GatewayArgs,

    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Cluster names end up in tag values and resource names, so keep them to
/// what both accept.
/// An IPv6 address.
pub fn parse_ipv6(s: &str) -> Result<std::net::IpAddr, String> {
    match s.parse::<std::net::IpAddr>() {
        Ok(ip @ std::net::IpAddr::V6(_)) => Ok(ip),
        _ => Err(format!("{s}: not an IPv6 address")),
    }
}

/// A projected token lifetime the apiserver accepts: 10 minutes to 48 hours.
pub fn parse_token_expiration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if !(600..=172_800).contains(&d.as_secs()) {
        return Err(format!("{s}: a projected token lives 10m to 48h"));
    }
    Ok(d)
}

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

/// Durations as `500ms`, `15s`, `2m` or `1h`. Zero is refused (every duration flag is an
/// interval, a timeout or a wait, and zero would spin or panic), as is anything that does not
/// fit in a `Duration`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m or h)"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number (or is too large)"))?;
    let seconds_per_unit = match unit {
        "ms" => None,
        "s" => Some(1u64),
        "m" => Some(60),
        "h" => Some(3600),
        _ => return Err(format!("`{s}` has an unknown unit (use ms, s, m or h)")),
    };
    if n == 0 {
        return Err(format!("`{s}` is zero; use a positive duration"));
    }
    let d = match seconds_per_unit {
        None => Some(Duration::from_millis(n)),
        Some(k) => n.checked_mul(k).map(Duration::from_secs),
    };
    // Deadlines are `now + d`; past a year that is a typo, and far past it would overflow.
    d.filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| format!("`{s}` is too large (at most 8760h)"))
}

/// The longest duration any flag accepts: a year.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

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
    fn zero_and_overflowing_durations_are_refused() {
        for zero in ["0s", "0ms", "0m", "0h", "000s"] {
            let e = parse_duration(zero).unwrap_err();
            assert!(e.contains("is zero"), "{zero}: {e}");
        }
        for huge in [
            "5124095576030432h",
            "18446744073709551616s",
            "8761h",
            "99999999999999ms",
        ] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("too large"), "{huge}: {e}");
        }
        assert_eq!(
            parse_duration("8760h"),
            Ok(Duration::from_secs(365 * 24 * 3600))
        );
        let Err(e) = Cli::try_parse_from([
            "causeway",
            "controller",
            "--cluster-name",
            "c1",
            "--alb-resync-interval",
            "0s",
        ]) else {
            panic!("a zero resync interval is refused");
        };
        assert!(
            one_line_error(&e).contains("is zero"),
            "{}",
            one_line_error(&e)
        );
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
    fn vpc_id_is_one_flag_that_still_answers_to_the_old_names() {
        for flag in ["--vpc-id", "--alb-vpc-id", "--targets-vpc-id"] {
            let cli = Cli::try_parse_from([
                "causeway",
                "controller",
                "--cluster-name",
                "c1",
                flag,
                "vpc-0abc",
                "--alb-external-managed-tags",
                "CostCenter, Team",
            ])
            .unwrap();
            let Command::Controller(args) = cli.command else {
                panic!("controller")
            };
            assert_eq!(args.vpc_id.as_deref(), Some("vpc-0abc"), "{flag}");
            let alb = args.alb.settings(args.vpc_id.clone());
            assert_eq!(alb.vpc_id.as_deref(), Some("vpc-0abc"));
            assert_eq!(
                alb.external_managed_tags.into_iter().collect::<Vec<_>>(),
                ["CostCenter", "Team"]
            );
        }
    }

    #[test]
    fn dns_flags_build_settings() {
        let cli = Cli::try_parse_from([
            "causeway",
            "controller",
            "--cluster-name",
            "c1",
            "--controllers",
            "dns",
            "--dns-domain-filter",
            "example.com,example.org",
            "--dns-zone-tags",
            "team=dns,env",
            "--dns-txt-owner-id",
            "cluster-a",
            "--dns-policy",
            "upsert-only",
            "--dns-debounce",
            "200ms",
        ])
        .unwrap();
        let Command::Controller(args) = cli.command else {
            panic!("controller")
        };
        assert_eq!(args.controllers, vec![Reconciler::Dns]);
        let s = args.dns.settings().unwrap();
        assert_eq!(s.registry.owner_id(), "cluster-a");
        assert_eq!(s.policy, crate::dns::Policy::UpsertOnly);
        assert_eq!(s.debounce, Duration::from_millis(200));
        assert_eq!(s.zone_filter.tags.len(), 2);
        assert!(s.zone_filter.domains.matches("a.example.org"));
        assert!(!s.zone_filter.domains.matches("example.net"));
        assert!(
            Cli::try_parse_from([
                "causeway",
                "controller",
                "--cluster-name",
                "c1",
                "--dns-txt-prefix",
                "p-",
                "--dns-txt-suffix",
                "-s",
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "causeway",
                "controller",
                "--cluster-name",
                "c1",
                "--dns-regex-domain-filter",
                "(",
            ])
            .is_err()
        );
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
