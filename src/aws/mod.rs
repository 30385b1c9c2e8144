//! AWS SDK setup shared by every controller: region, endpoint, credentials, retries,
//! timeouts, per-family rate limits and per-call metrics.
//!
//! Per-service adapters (SDK types to our model types) live next to this file, one per
//! service, so planners never see SDK types.

mod call_metrics;
pub(crate) mod coalesce;
pub mod elbv2;
pub(crate) mod errors;
mod rate_limit;
pub(crate) mod tags;

pub use rate_limit::{AwsService, Limit, RateLimitError, RateLimits, TokenBucket};

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::region::Region;

use crate::telemetry::Metrics;
use call_metrics::ApiCallMetrics;
use rate_limit::RateLimitedHttpClient;

/// Shows up in CloudTrail as the session of every assumed-role call we make.
const ASSUME_ROLE_SESSION_NAME: &str = "causeway";

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("invalid AWS settings: {0}")]
    InvalidSettings(String),

    #[error(transparent)]
    RateLimits(#[from] RateLimitError),

    #[error(
        "no AWS region configured: pass a region or set AWS_REGION (the default chain found none)"
    )]
    NoRegion,

    #[error("STS GetCallerIdentity failed: {message}")]
    CallerIdentity {
        message: String,
        #[source]
        source: Box<
            SdkError<
                aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError,
                HttpResponse,
            >,
        >,
    },

    #[error("STS GetCallerIdentity returned no account id")]
    NoAccount,
}

/// How to reach AWS. The CLI maps its flags into this; everything not set falls back to
/// the SDK's default provider chains.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// `None` uses the default chain (AWS_REGION, profile, instance metadata).
    pub region: Option<String>,
    /// Sends every service to one endpoint (a local moto server in tests).
    pub endpoint_url: Option<String>,
    /// Assume this role on top of the base credentials.
    pub assume_role_arn: Option<String>,
    pub assume_role_external_id: Option<String>,
    /// Static credentials instead of the default chain. Tests and local runs against moto
    /// use this so that nothing probes the instance metadata service.
    pub credentials: Option<Credentials>,
    /// Total attempts per call, the first included.
    pub max_attempts: u32,
    pub connect_timeout: Duration,
    /// Bounds one HTTP attempt, including the wait for a rate-limit token.
    pub attempt_timeout: Duration,
    pub rate_limits: RateLimits,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            assume_role_arn: None,
            assume_role_external_id: None,
            credentials: None,
            max_attempts: 5,
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(20),
            rate_limits: RateLimits::default(),
        }
    }
}

impl AwsSettings {
    pub fn validate(&self) -> Result<(), AwsError> {
        let invalid = |message: &str| Err(AwsError::InvalidSettings(message.to_owned()));
        if self.max_attempts == 0 {
            return invalid("max_attempts must be at least 1");
        }
        if self.connect_timeout.is_zero() || self.attempt_timeout.is_zero() {
            return invalid("timeouts must be greater than zero");
        }
        if self.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return invalid("region must not be empty");
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(AwsError::InvalidSettings(format!(
                "endpoint_url {url:?} must start with http:// or https://"
            )));
        }
        if self
            .assume_role_arn
            .as_deref()
            .is_some_and(|arn| !arn.starts_with("arn:"))
        {
            return invalid(
                "assume_role_arn must be a role ARN (arn:aws:iam::<account>:role/<name>)",
            );
        }
        if self.assume_role_external_id.is_some() && self.assume_role_arn.is_none() {
            return invalid("assume_role_external_id needs assume_role_arn");
        }
        self.rate_limits.validate()?;
        Ok(())
    }
}

/// The SDK clients every controller uses, each wired with call metrics and its own rate
/// limiter. Cloning is cheap: clones share connection pools and limiters.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub acm: aws_sdk_acm::Client,
    pub wafv2: aws_sdk_wafv2::Client,
    pub shield: aws_sdk_shield::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
}

/// Builds one service client from the shared config, adding the family's limiter and the
/// call counter. A macro because the SDK crates share no trait for their config builders.
macro_rules! service_client {
    ($sdk:ident, $config:expr, $http:expr, $buckets:expr, $metrics:expr, $service:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($config)
                .http_client($buckets.client(&$http, $service))
                .interceptor(ApiCallMetrics::new($metrics.clone(), $service))
                .build(),
        )
    };
}

struct Buckets {
    by_service: Vec<(AwsService, Arc<TokenBucket>)>,
    elbv2_writes: Arc<TokenBucket>,
}

impl Buckets {
    fn new(limits: &RateLimits) -> Self {
        Buckets {
            by_service: AwsService::ALL
                .into_iter()
                .map(|service| (service, Arc::new(TokenBucket::new(limits.get(service)))))
                .collect(),
            elbv2_writes: Arc::new(TokenBucket::new(limits.elbv2_writes)),
        }
    }

    /// The family's client: ELBv2 with its reads and writes apart, the others one bucket each.
    fn client(&self, http: &SharedHttpClient, service: AwsService) -> RateLimitedHttpClient {
        match service {
            AwsService::Elbv2 => RateLimitedHttpClient::split(
                http.clone(),
                self.get(service),
                self.elbv2_writes.clone(),
            ),
            _ => RateLimitedHttpClient::new(http.clone(), self.get(service)),
        }
    }

    fn get(&self, service: AwsService) -> Arc<TokenBucket> {
        self.by_service
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, bucket)| bucket.clone())
            // Every service gets a bucket in `new`; a fresh default one keeps this total.
            .unwrap_or_else(|| Arc::new(TokenBucket::new(RateLimits::default().get(service))))
    }
}

impl AwsClients {
    pub async fn new(
        settings: &AwsSettings,
        metrics: Arc<Metrics>,
    ) -> Result<AwsClients, AwsError> {
        settings.validate()?;

        // Built explicitly because aws-config's default HTTPS client (aws-lc) is disabled:
        // we use ring, like the rest of the binary.
        let https: SharedHttpClient = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();

        // Standard mode: exponential backoff with full jitter, plus the SDK's retry quota
        // that stops retrying when most recent attempts failed.
        let retry = RetryConfig::standard()
            .with_max_attempts(settings.max_attempts)
            .with_initial_backoff(Duration::from_secs(1))
            .with_max_backoff(Duration::from_secs(20));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(settings.connect_timeout)
            .operation_attempt_timeout(settings.attempt_timeout)
            .build();

        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https.clone())
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.trim().to_owned()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(credentials) = &settings.credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        let mut config = loader.load().await;
        if config.region().is_none() {
            return Err(AwsError::NoRegion);
        }

        let buckets = Buckets::new(&settings.rate_limits);

        if let Some(role_arn) = &settings.assume_role_arn {
            // AssumeRole calls are STS calls and share its limiter.
            let sts_config = config
                .clone()
                .into_builder()
                .http_client(RateLimitedHttpClient::new(
                    https.clone(),
                    buckets.get(AwsService::Sts),
                ))
                .build();
            let mut provider = AssumeRoleProvider::builder(role_arn.clone())
                .session_name(ASSUME_ROLE_SESSION_NAME)
                .configure(&sts_config);
            if let Some(external_id) = &settings.assume_role_external_id {
                provider = provider.external_id(external_id.clone());
            }
            let provider = provider.build().await;
            config = config
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build();
        }

        tracing::debug!(
            region = ?config.region(),
            endpoint_url = ?settings.endpoint_url,
            assume_role = settings.assume_role_arn.is_some(),
            rate_limits = %settings.rate_limits,
            "AWS clients configured"
        );

        Ok(AwsClients {
            elbv2: service_client!(
                aws_sdk_elasticloadbalancingv2,
                &config,
                https,
                buckets,
                metrics,
                AwsService::Elbv2
            ),
            route53: service_client!(
                aws_sdk_route53,
                &config,
                https,
                buckets,
                metrics,
                AwsService::Route53
            ),
            iam: service_client!(
                aws_sdk_iam,
                &config,
                https,
                buckets,
                metrics,
                AwsService::Iam
            ),
            sts: service_client!(
                aws_sdk_sts,
                &config,
                https,
                buckets,
                metrics,
                AwsService::Sts
            ),
            ec2: service_client!(
                aws_sdk_ec2,
                &config,
                https,
                buckets,
                metrics,
                AwsService::Ec2
            ),
            acm: service_client!(
                aws_sdk_acm,
                &config,
                https,
                buckets,
                metrics,
                AwsService::Acm
            ),
            wafv2: service_client!(
                aws_sdk_wafv2,
                &config,
                https,
                buckets,
                metrics,
                AwsService::Wafv2
            ),
            // Shield Advanced's API lives in us-east-1 only.
            shield: service_client!(
                aws_sdk_shield,
                &config
                    .clone()
                    .into_builder()
                    .region(aws_config::Region::new("us-east-1"))
                    .build(),
                https,
                buckets,
                metrics,
                AwsService::Shield
            ),
            tagging: service_client!(
                aws_sdk_resourcegroupstagging,
                &config,
                https,
                buckets,
                metrics,
                AwsService::Tagging
            ),
        })
    }
}

/// Returns the account id behind our credentials. Run once at startup so that bad
/// credentials fail fast instead of surfacing as reconcile errors.
pub async fn caller_identity(clients: &AwsClients) -> Result<String, AwsError> {
    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|err| AwsError::CallerIdentity {
            message: DisplayErrorContext(&err).to_string(),
            source: Box::new(err),
        })?;
    identity
        .account()
        .filter(|account| !account.is_empty())
        .map(str::to_owned)
        .ok_or(AwsError::NoAccount)
}

#[cfg(test)]
mod tests;
