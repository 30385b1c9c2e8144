//! What discovery read, kept for a while: the cluster's VPC (once), the VPC's subnets and
//! the issued ACM certificates (for a TTL). One per reconciler; the ALB and NLB reconcilers
//! use the same one type.

use std::time::{Duration, Instant};

use super::aws::{AlbApi, AwsError, Scope};
use super::builder::{CertInfo, SubnetInfo};

struct Cached<T> {
    value: T,
    at: Instant,
}

#[derive(Default)]
pub(crate) struct DiscoveryCache {
    vpc_id: tokio::sync::OnceCell<String>,
    subnets: tokio::sync::Mutex<Option<Cached<Vec<SubnetInfo>>>>,
    certificates: tokio::sync::Mutex<Option<Cached<Vec<CertInfo>>>>,
}

impl DiscoveryCache {
    /// `configured` (`--vpc-id`), or the VPC of the subnets tagged for the cluster (looked up
    /// once).
    pub(crate) async fn vpc_id<A: AlbApi>(
        &self,
        aws: &A,
        configured: Option<&String>,
        cluster: &str,
    ) -> Result<String, AwsError> {
        if let Some(v) = configured {
            return Ok(v.clone());
        }
        self.vpc_id
            .get_or_try_init(|| aws.cluster_vpc(cluster))
            .await
            .cloned()
    }

    /// The VPC id if it is known without a call.
    pub(crate) fn known_vpc_id(&self, configured: Option<&String>) -> Option<String> {
        configured.cloned().or_else(|| self.vpc_id.get().cloned())
    }

    /// The VPC's subnets, read again once older than `ttl`.
    pub(crate) async fn subnets<A: AlbApi>(
        &self,
        aws: &A,
        scope: Scope<'_>,
        ttl: Duration,
    ) -> Result<Vec<SubnetInfo>, AwsError> {
        let mut guard = self.subnets.lock().await;
        if let Some(c) = guard.as_ref()
            && c.at.elapsed() < ttl
        {
            return Ok(c.value.clone());
        }
        let value = aws.subnets(scope).await?;
        *guard = Some(Cached {
            value: value.clone(),
            at: Instant::now(),
        });
        Ok(value)
    }

    /// The issued ACM certificates, read again when the cached list is older than `max_age`.
    pub(crate) async fn certificates<A: AlbApi>(
        &self,
        aws: &A,
        max_age: Duration,
    ) -> Result<Vec<CertInfo>, AwsError> {
        let mut guard = self.certificates.lock().await;
        if let Some(c) = guard.as_ref()
            && c.at.elapsed() < max_age
        {
            return Ok(c.value.clone());
        }
        let value = aws.certificates().await?;
        *guard = Some(Cached {
            value: value.clone(),
            at: Instant::now(),
        });
        Ok(value)
    }
}
