//! The pure planner: desired endpoints + a zone's current records -> Route 53 changes.
//!
//! Ownership is decided by external-dns TXT records only. A record without a TXT carrying our
//! owner id is foreign: it is never changed or deleted, even when it is exactly what we want,
//! and asking for it is reported as a conflict. Every change to a record travels in one group
//! with the change to its ownership TXT, so a batch can never apply one without the other.
//!
//! Work is split by record name, with hash indexes that borrow the inputs rather than copy
//! them. A record that is already as asked, with its TXT, is recognised without building
//! anything, so a large zone with few changes costs little more than one pass over it: linear,
//! plus sorting the names that change.

mod apply;
mod compare;
mod index;
mod planner;
mod types;

#[cfg(test)]
mod tests;

pub use apply::{ApplyError, apply_to};
pub use planner::plan;
pub use types::{Action, Change, Plan, PlanConfig, PlanError, Policy};
