//! The DNS controller's settings (`--dns-*` flags, built by the CLI).

use std::time::Duration;

use super::batch::BatchLimits;
use super::desired::{AnnotationFilter, SourceKinds};
use super::endpoint::DEFAULT_TTL;
use super::plan::{PlanConfig, Policy};
use super::registry::TxtRegistry;
use super::zones::ZoneFilter;

/// Everything the DNS controller is configured with (`--dns-*` flags).
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// Watch one namespace only (external-dns `--namespace`); all when `None`.
    pub namespace: Option<String>,
    pub sources: SourceKinds,
    pub annotation_filter: AnnotationFilter,
    /// Zone selection; its domain filter also limits which records are managed.
    pub zone_filter: ZoneFilter,
    pub registry: TxtRegistry,
    pub policy: Policy,
    pub dry_run: bool,
    pub default_ttl: u32,
    pub evaluate_target_health: bool,
    /// Quiet time after a change before a pass runs; events within it are coalesced.
    pub debounce: Duration,
    /// How often every zone's records are listed again, to see changes made outside causeway.
    pub resync_interval: Duration,
    /// How long the hosted zone list is trusted.
    pub zone_cache_ttl: Duration,
    /// How long a change Route 53 rejected waits before it is tried again unchanged.
    pub failed_change_backoff: Duration,
    pub batch_limits: BatchLimits,
}

impl DnsSettings {
    /// Defaults with the given owner id (tests and `causeway plan`).
    pub fn with_owner(owner_id: &str) -> Result<Self, super::RegistryError> {
        Ok(DnsSettings {
            namespace: None,
            sources: SourceKinds::default(),
            annotation_filter: AnnotationFilter::default(),
            zone_filter: ZoneFilter::default(),
            registry: TxtRegistry::new(owner_id, "", "", None)?,
            policy: Policy::Sync,
            dry_run: false,
            default_ttl: DEFAULT_TTL,
            evaluate_target_health: true,
            debounce: Duration::from_millis(500),
            resync_interval: Duration::from_secs(3600),
            zone_cache_ttl: Duration::from_secs(3600),
            failed_change_backoff: Duration::from_secs(300),
            batch_limits: BatchLimits::default(),
        })
    }

    pub fn plan_config(&self) -> PlanConfig<'_> {
        PlanConfig {
            registry: &self.registry,
            policy: self.policy,
            default_ttl: self.default_ttl,
            domain_filter: Some(&self.zone_filter.domains),
        }
    }
}
