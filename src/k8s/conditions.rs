//! Pure helpers for `status.conditions`, with an injectable clock.
//!
//! The rule that matters: `lastTransitionTime` moves only when `status` flips, and a
//! caller learns whether anything changed at all so it can skip a no-op status patch.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::truncate;

/// Condition types we set on our own objects.
pub mod condition_type {
    /// The object is fully realised in AWS and serving.
    pub const READY: &str = "Ready";
    /// The last reconcile of the current generation finished without error.
    pub const RECONCILED: &str = "Reconciled";
    /// Something works, but not everything (e.g. one Ingress of a group is invalid).
    pub const DEGRADED: &str = "Degraded";
}

/// Reasons shared by every controller; each is CamelCase as the API requires.
pub mod reason {
    pub const RECONCILED: &str = "Reconciled";
    pub const PENDING: &str = "Pending";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const AWS_ERROR: &str = "AwsError";
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
    pub const DELETING: &str = "Deleting";
}

/// The apiserver rejects condition messages longer than this (in bytes).
pub const MAX_MESSAGE_LEN: usize = 32 * 1024;

/// Where "now" comes from, so condition logic can be tested with a fixed time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Always returns the same instant; for tests.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// Sets (or adds) the condition of `type_` and reports whether `conds` changed.
///
/// `lastTransitionTime` is set to `clock.now()` only when the condition is new or its
/// status flips; a new reason, message or generation alone keeps it. Duplicate entries of
/// the same type (never written by us, but possible from another writer) are dropped.
pub fn set_condition(
    conds: &mut Vec<Condition>,
    type_: &str,
    status: impl Into<ConditionStatus>,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    clock: &dyn Clock,
) -> bool {
    let status = status.into().as_str();
    let message = truncate(message, MAX_MESSAGE_LEN);

    let mut changed = false;
    let mut seen = false;
    conds.retain(|c| {
        if c.type_ != type_ {
            return true;
        }
        let keep = !seen;
        seen = true;
        changed |= !keep;
        keep
    });

    let Some(existing) = conds.iter_mut().find(|c| c.type_ == type_) else {
        conds.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation,
            last_transition_time: Time(clock.now()),
        });
        return true;
    };

    if existing.status != status {
        existing.status = status.to_owned();
        existing.last_transition_time = Time(clock.now());
        changed = true;
    }
    if existing.reason != reason {
        existing.reason = reason.to_owned();
        changed = true;
    }
    if existing.message != message {
        existing.message = message.to_owned();
        changed = true;
    }
    if existing.observed_generation != observed_generation {
        existing.observed_generation = observed_generation;
        changed = true;
    }
    changed
}

/// Removes every condition of `type_`; reports whether one was there.
/// Records the generation a status describes; reports whether it changed.
pub fn set_observed_generation(field: &mut Option<i64>, generation: Option<i64>) -> bool {
    if *field == generation {
        return false;
    }
    *field = generation;
    true
}

/// The status every reconciled kind carries: the `Ready` condition and
/// `status.observedGeneration`, both for `generation`. Reports whether anything changed, so
/// callers skip no-op patches.
#[allow(clippy::too_many_arguments)]
pub fn set_ready(
    conditions: &mut Vec<Condition>,
    observed_generation: &mut Option<i64>,
    ready: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    clock: &dyn Clock,
) -> bool {
    let changed = set_condition(
        conditions,
        condition_type::READY,
        ready,
        reason,
        message,
        generation,
        clock,
    );
    set_observed_generation(observed_generation, generation) || changed
}

pub fn remove_condition(conds: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conds.len();
    conds.retain(|c| c.type_ != type_);
    conds.len() != before
}

pub fn find<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

pub fn is_true(conds: &[Condition], type_: &str) -> bool {
    find(conds, type_).is_some_and(|c| c.status == ConditionStatus::True.as_str())
}

/// True when the condition exists, is True, and was computed for `generation`: a Ready
/// condition from an older spec says nothing about the current one.
pub fn is_true_for(conds: &[Condition], type_: &str, generation: Option<i64>) -> bool {
    find(conds, type_).is_some_and(|c| {
        c.status == ConditionStatus::True.as_str() && c.observed_generation == generation
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: i64) -> FixedClock {
        FixedClock(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn new_condition_is_added_with_now() {
        let mut conds = Vec::new();
        let changed = set_condition(
            &mut conds,
            condition_type::READY,
            false,
            reason::PENDING,
            "waiting for the load balancer",
            Some(1),
            &at(100),
        );
        assert!(changed);
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].status, "False");
        assert_eq!(conds[0].last_transition_time, Time(at(100).now()));
        assert!(!is_true(&conds, condition_type::READY));
    }

    #[test]
    fn reason_change_keeps_transition_time() {
        let mut conds = Vec::new();
        set_condition(
            &mut conds,
            "Ready",
            false,
            "Pending",
            "a",
            Some(1),
            &at(100),
        );
        let changed = set_condition(
            &mut conds,
            "Ready",
            false,
            "AwsError",
            "b",
            Some(2),
            &at(200),
        );
        assert!(changed);
        assert_eq!(conds[0].reason, "AwsError");
        assert_eq!(conds[0].observed_generation, Some(2));
        assert_eq!(conds[0].last_transition_time, Time(at(100).now()));
    }

    #[test]
    fn status_flip_moves_transition_time() {
        let mut conds = Vec::new();
        set_condition(&mut conds, "Ready", false, "Pending", "", Some(1), &at(100));
        assert!(set_condition(
            &mut conds,
            "Ready",
            true,
            "Reconciled",
            "",
            Some(1),
            &at(200)
        ));
        assert_eq!(conds[0].last_transition_time, Time(at(200).now()));
        assert!(is_true(&conds, "Ready"));
        assert!(is_true_for(&conds, "Ready", Some(1)));
        assert!(!is_true_for(&conds, "Ready", Some(2)));
    }

    #[test]
    fn other_conditions_are_untouched_and_order_is_stable() {
        let mut conds = Vec::new();
        set_condition(
            &mut conds,
            "Reconciled",
            true,
            "Reconciled",
            "",
            None,
            &at(1),
        );
        set_condition(&mut conds, "Ready", true, "Reconciled", "", None, &at(1));
        set_condition(
            &mut conds,
            "Reconciled",
            false,
            "AwsError",
            "boom",
            None,
            &at(2),
        );
        let types: Vec<_> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Reconciled", "Ready"]);
        assert!(is_true(&conds, "Ready"));
        assert!(find(&conds, "Degraded").is_none());
    }

    #[test]
    fn duplicates_are_collapsed() {
        let mut conds = Vec::new();
        set_condition(&mut conds, "Ready", true, "Reconciled", "", None, &at(1));
        conds.push(conds[0].clone());
        assert!(set_condition(
            &mut conds,
            "Ready",
            true,
            "Reconciled",
            "",
            None,
            &at(2)
        ));
        assert_eq!(conds.len(), 1);
        assert!(!set_condition(
            &mut conds,
            "Ready",
            true,
            "Reconciled",
            "",
            None,
            &at(3)
        ));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let mut conds = Vec::new();
        let message = "é".repeat(MAX_MESSAGE_LEN);
        set_condition(
            &mut conds,
            "Ready",
            false,
            "AwsError",
            &message,
            None,
            &at(1),
        );
        assert!(conds[0].message.len() <= MAX_MESSAGE_LEN);
        assert!(conds[0].message.chars().all(|c| c == 'é'));
        // Setting the same over-long message again is not a change.
        assert!(!set_condition(
            &mut conds,
            "Ready",
            false,
            "AwsError",
            &message,
            None,
            &at(2)
        ));
    }

    #[test]
    fn remove_reports_presence() {
        let mut conds = Vec::new();
        set_condition(&mut conds, "Degraded", true, "AwsError", "", None, &at(1));
        assert!(remove_condition(&mut conds, "Degraded"));
        assert!(!remove_condition(&mut conds, "Degraded"));
    }

    #[derive(Clone, Debug)]
    struct Update {
        type_: &'static str,
        status: ConditionStatus,
        reason: &'static str,
        message: String,
        generation: Option<i64>,
    }

    fn update() -> impl Strategy<Value = Update> {
        (
            prop::sample::select(vec!["Ready", "Reconciled", "Degraded"]),
            prop::sample::select(vec![
                ConditionStatus::True,
                ConditionStatus::False,
                ConditionStatus::Unknown,
            ]),
            prop::sample::select(vec!["Reconciled", "Pending", "AwsError", "InvalidSpec"]),
            ".{0,20}",
            prop::option::of(0i64..5),
        )
            .prop_map(|(type_, status, reason, message, generation)| Update {
                type_,
                status,
                reason,
                message,
                generation,
            })
    }

    fn apply(conds: &mut Vec<Condition>, u: &Update, clock: &dyn Clock) -> bool {
        set_condition(
            conds,
            u.type_,
            u.status,
            u.reason,
            &u.message,
            u.generation,
            clock,
        )
    }

    proptest! {
        #[test]
        fn reapplying_is_a_no_op(history in prop::collection::vec(update(), 0..12), last in update()) {
            let mut conds = Vec::new();
            for (i, u) in history.iter().enumerate() {
                apply(&mut conds, u, &at(i as i64));
            }
            apply(&mut conds, &last, &at(1_000));
            let before = conds.clone();

            prop_assert!(!apply(&mut conds, &last, &at(2_000)));
            prop_assert_eq!(&conds, &before);
        }

        #[test]
        fn transition_time_moves_only_on_status_flips(history in prop::collection::vec(update(), 1..20)) {
            let mut conds = Vec::new();
            for (i, u) in history.iter().enumerate() {
                let previous = find(&conds, u.type_).cloned();
                let clock = at(i as i64 + 1);
                apply(&mut conds, u, &clock);
                let now = find(&conds, u.type_).unwrap();
                match previous {
                    Some(p) if p.status == now.status => {
                        prop_assert_eq!(&p.last_transition_time, &now.last_transition_time);
                    }
                    _ => prop_assert_eq!(&now.last_transition_time, &Time(clock.now())),
                }
                prop_assert_eq!(conds.iter().filter(|c| c.type_ == u.type_).count(), 1);
            }
        }
    }
}
