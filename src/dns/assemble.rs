//! The zone → assign → plan loop, shared by the controller's pass and `causeway plan`: the
//! desired endpoints go to their managed zones, and each zone's records are planned against
//! them. Where the records come from is the caller's: the controller's per-zone cache, or a
//! plain Route 53 read for the preview.

use std::future::Future;

use super::desired::Problems;
use super::endpoint::{Endpoint, Record};
use super::plan::{Plan, plan};
use super::route53::{Route53, Route53Error};
use super::settings::DnsSettings;
use super::zones::{Zone, ZoneError, assign};

/// A zone's current records.
pub trait RecordSource {
    fn records(
        &mut self,
        zone: &Zone,
    ) -> impl Future<Output = Result<Vec<Record>, Route53Error>> + Send;
}

/// Route 53 read directly, every time (`causeway plan`).
impl RecordSource for &Route53 {
    async fn records(&mut self, zone: &Zone) -> Result<Vec<Record>, Route53Error> {
        self.list_records(&zone.id).await
    }
}

/// One zone, planned.
pub struct ZonePlan {
    pub zone: Zone,
    /// The endpoints that go to this zone.
    pub desired: Vec<Endpoint>,
    /// Its records before the changes.
    pub current: Vec<Record>,
    pub planned: Plan,
}

/// Every zone, planned.
pub struct Planned {
    /// Each zone's plan, or the error reading its records.
    pub zones: Vec<Result<ZonePlan, (Zone, Route53Error)>>,
    /// Names that fall outside every known zone (a zone created since the list was read
    /// would take them).
    pub outside_zones: usize,
}

/// Assigns `endpoints` to `zones` and plans every zone. Names no zone takes and plan errors
/// go to `problems`. A zone whose records cannot be read comes back as its error, so the
/// caller decides whether that stops everything (the controller) or only that zone (plan).
pub async fn plan_zones(
    zones: &[Zone],
    endpoints: Vec<Endpoint>,
    settings: &DnsSettings,
    problems: &mut Problems,
    source: &mut impl RecordSource,
) -> Planned {
    let mut assignment = assign(zones, &settings.zone_filter.domains, endpoints);
    let mut outside_zones = 0;
    for error in &assignment.errors {
        if matches!(error, ZoneError::OutsideManagedZones { .. }) {
            outside_zones += 1;
        }
        problems.zone(error);
    }
    let mut out = Vec::with_capacity(zones.len());
    for zone in zones {
        let desired = assignment.by_zone.remove(&zone.id).unwrap_or_default();
        let current = match source.records(zone).await {
            Ok(r) => r,
            Err(e) => {
                out.push(Err((zone.clone(), e)));
                continue;
            }
        };
        let planned = plan(zone, &desired, &current, &settings.plan_config());
        for error in &planned.errors {
            problems.plan(error);
        }
        out.push(Ok(ZonePlan {
            zone: zone.clone(),
            desired,
            current,
            planned,
        }));
    }
    Planned {
        zones: out,
        outside_zones,
    }
}
