//! What the planner is given and what it returns: its settings, the changes it plans and the
//! errors it reports.

use std::fmt;

use crate::dns::endpoint::{DnsName, Record, RecordKey, RecordType, ResourceRef};
use crate::dns::registry::{RegistryError, TxtRegistry};
use crate::dns::zones::DomainFilter;

/// external-dns's `--policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Policy {
    /// Create, update and delete.
    #[default]
    Sync,
    /// Create and update; records no longer asked for stay. A record whose type or set
    /// identifier changes is still replaced, since that is an update of the same hostname.
    UpsertOnly,
    /// Only create.
    CreateOnly,
}

impl Policy {
    pub(super) fn updates(self) -> bool {
        !matches!(self, Policy::CreateOnly)
    }
}

/// Route 53 change actions, in the order they are applied within a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Delete,
    Create,
    Upsert,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Delete => "DELETE",
            Action::Create => "CREATE",
            Action::Upsert => "UPSERT",
        })
    }
}

/// One ChangeResourceRecordSets change. `group` is the hostname the change belongs to: changes
/// of one group must be submitted together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: Action,
    pub record: Record,
    pub group: DnsName,
}

/// The outcome of planning one zone. Changes of a group are contiguous.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub errors: Vec<PlanError>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Why a desired record was not planned. Each names the object to report it on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{key} already exists and is {}; causeway leaves it alone", owned_by(.owner))]
    NotOwned {
        key: RecordKey,
        owner: Option<String>,
        resource: Option<ResourceRef>,
    },
    #[error("{key} is asked for more than once; the request from {} is kept", describe(.kept))]
    Duplicate {
        key: RecordKey,
        kept: Option<ResourceRef>,
        resource: Option<ResourceRef>,
    },
    #[error("{key} cannot share its name with a {other} record")]
    CnameConflict {
        key: RecordKey,
        other: RecordType,
        resource: Option<ResourceRef>,
    },
    #[error("ownership record for {key}: {error}")]
    Registry {
        key: RecordKey,
        error: RegistryError,
        resource: Option<ResourceRef>,
    },
    #[error(
        "ownership record {txt_name} for {key} falls outside zone {zone}; a TXT prefix ending in '.' (such as '_own-%{{record_type}}.') is needed at a zone apex"
    )]
    OwnershipOutsideZone {
        key: RecordKey,
        txt_name: DnsName,
        zone: DnsName,
        resource: Option<ResourceRef>,
    },
    #[error(
        "ownership record name {txt_name} for {key} is taken by a record causeway does not own"
    )]
    OwnershipNameTaken {
        key: RecordKey,
        txt_name: DnsName,
        resource: Option<ResourceRef>,
    },
    #[error("{key} collides with an existing ownership TXT record")]
    CollidesWithOwnershipRecord {
        key: RecordKey,
        resource: Option<ResourceRef>,
    },
    #[error("{name} is outside zone {zone}")]
    OutsideZone {
        name: DnsName,
        zone: DnsName,
        resource: Option<ResourceRef>,
    },
    #[error("{name} is excluded by the domain filter")]
    ExcludedByDomainFilter {
        name: DnsName,
        resource: Option<ResourceRef>,
    },
}

fn owned_by(owner: &Option<String>) -> String {
    match owner.as_deref() {
        None => "not owned by any TXT record".to_string(),
        Some("") => "owned by a TXT record without an owner id".to_string(),
        Some(o) => format!("owned by {o:?}"),
    }
}

fn describe(resource: &Option<ResourceRef>) -> String {
    resource
        .as_ref()
        .map_or_else(|| "an unnamed source".to_string(), ToString::to_string)
}

impl PlanError {
    /// The object the error should be reported on.
    pub fn resource(&self) -> Option<&ResourceRef> {
        match self {
            PlanError::NotOwned { resource, .. }
            | PlanError::Duplicate { resource, .. }
            | PlanError::CnameConflict { resource, .. }
            | PlanError::Registry { resource, .. }
            | PlanError::OwnershipOutsideZone { resource, .. }
            | PlanError::OwnershipNameTaken { resource, .. }
            | PlanError::CollidesWithOwnershipRecord { resource, .. }
            | PlanError::OutsideZone { resource, .. }
            | PlanError::ExcludedByDomainFilter { resource, .. } => resource.as_ref(),
        }
    }
}

/// Planner settings.
#[derive(Debug, Clone, Copy)]
pub struct PlanConfig<'a> {
    /// Owner id and TXT naming.
    pub registry: &'a TxtRegistry,
    pub policy: Policy,
    /// TTL for records without one, and for ownership records.
    pub default_ttl: u32,
    /// Records outside the filter are neither desired nor touched.
    pub domain_filter: Option<&'a DomainFilter>,
}
