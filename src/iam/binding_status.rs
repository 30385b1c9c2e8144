//! Validates IamRoleBindings: the role they name must exist (IAM GetRole).
//! The result is the binding's `Ready` condition and `status.roleArn`, plus a
//! Warning Event when the role is missing or the reference is malformed.
//!
//! Shape: fetch (the binding) → desired (pure parse) → observe (GetRole) →
//! status (pure) → apply status only when it changed.

use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OnceCell, watch};

use super::role::RoleRef;
use crate::context::Context;
use crate::crd::{IamRoleBinding, IamRoleBindingStatus};
use crate::k8s::conditions::{Clock, SystemClock, set_ready};
use crate::k8s::runtime::watch::{self as cache, Change, keep_all, key_of, reflect};
use crate::k8s::runtime::{self, Backoff, Cause, Next, RunSettings, StepError, WorkQueue};

pub const CONTROLLER: &str = "iam-role-binding";

/// Reasons specific to role validation.
pub mod reason {
    pub const ROLE_FOUND: &str = "RoleFound";
    pub const ROLE_NOT_FOUND: &str = "RoleNotFound";
    pub const CROSS_ACCOUNT: &str = "CrossAccountRole";
    pub const INVALID_ROLE: &str = "InvalidRole";
}

/// What IAM told us about the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Found {
        arn: String,
    },
    NotFound,
    /// An ARN in another account: GetRole cannot see it, AssumeRole may still work.
    CrossAccount {
        arn: String,
        our_account: String,
    },
    Invalid(String),
}

/// One variant per step that can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Observe: IAM (GetRole, or STS for our account).
    #[error("IAM GetRole: {0}")]
    Aws(String),
    /// Status: writing the binding's status.
    #[error("writing status: {0}")]
    Status(#[from] crate::k8s::apply::ApplyError),
}

impl StepError for Error {
    fn cause(&self) -> Cause {
        Cause::Transient
    }

    fn label(&self) -> &'static str {
        match self {
            Error::Aws(_) => "aws",
            Error::Status(_) => "kubernetes",
        }
    }
}

/// Pure: the status a binding should carry given what IAM said. Returns the
/// new status and whether it differs from `current` (so callers skip no-op patches).
pub fn desired_status(
    current: Option<&IamRoleBindingStatus>,
    generation: Option<i64>,
    observed: &Observed,
    clock: &dyn Clock,
) -> (IamRoleBindingStatus, bool) {
    let mut status = current.cloned().unwrap_or_default();
    let (ready, why, message, arn) = match observed {
        Observed::Found { arn } => (
            true,
            reason::ROLE_FOUND,
            format!("role {arn} exists"),
            Some(arn.clone()),
        ),
        Observed::CrossAccount { arn, our_account } => (
            true,
            reason::CROSS_ACCOUNT,
            format!(
                "role {arn} is outside account {our_account}; it cannot be checked with GetRole, so the ARN is trusted as written"
            ),
            Some(arn.clone()),
        ),
        Observed::NotFound => (
            false,
            reason::ROLE_NOT_FOUND,
            "the role does not exist in IAM".to_string(),
            None,
        ),
        Observed::Invalid(msg) => (false, reason::INVALID_ROLE, msg.clone(), None),
    };
    let mut changed = set_ready(
        &mut status.conditions,
        &mut status.observed_generation,
        ready,
        why,
        &message,
        generation,
        clock,
    );
    if status.role_arn != arn {
        status.role_arn = arn;
        changed = true;
    }
    (status, changed)
}

struct Reconciler {
    ctx: Arc<Context>,
    bindings: Store<IamRoleBinding>,
    account: OnceCell<String>,
}

impl Reconciler {
    async fn our_account(&self) -> Result<&str, Error> {
        self.account
            .get_or_try_init(|| async {
                crate::aws::caller_identity(&self.ctx.aws)
                    .await
                    .map_err(|e| Error::Aws(e.to_string()))
            })
            .await
            .map(String::as_str)
    }

    async fn observe(&self, role: &RoleRef) -> Result<Observed, Error> {
        if let RoleRef::Arn { arn, account, .. } = role {
            let ours = self.our_account().await?;
            if account != ours {
                return Ok(Observed::CrossAccount {
                    arn: arn.clone(),
                    our_account: ours.to_string(),
                });
            }
        }
        match self
            .ctx
            .aws
            .iam
            .get_role()
            .role_name(role.name())
            .send()
            .await
        {
            Ok(out) => {
                let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
                match role {
                    // Same name under a different path is a different role.
                    RoleRef::Arn { arn: wanted, .. } if *wanted != arn => Ok(Observed::NotFound),
                    _ => Ok(Observed::Found { arn }),
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(Observed::NotFound)
            }
            Err(e) => Err(Error::Aws(
                aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
            )),
        }
    }
}

impl runtime::Reconciler for Reconciler {
    type Error = Error;
    const NAME: &'static str = CONTROLLER;

    /// fetch (the cached binding) → desired (parse the role reference) → observe (GetRole)
    /// → status (pure) → apply status and an Event only when it changed.
    async fn reconcile(&self, key: &str) -> Result<Next, Error> {
        let Some(binding) = cache::get(&self.bindings, key) else {
            return Ok(Next::AwaitChange);
        };
        let observed = match RoleRef::parse(&binding.spec.role) {
            Ok(role) => self.observe(&role).await?,
            Err(e) => Observed::Invalid(e.to_string()),
        };
        let (status, changed) = desired_status(
            binding.status.as_ref(),
            binding.meta().generation,
            &observed,
            &SystemClock,
        );
        if changed {
            self.write_status(&binding, &status, &observed).await?;
        }
        Ok(match observed {
            // A spec error only changes with the spec, which the watch delivers.
            Observed::Invalid(_) => Next::AwaitChange,
            // The role may be created later.
            Observed::NotFound => Next::After(Duration::from_secs(60)),
            // Roles can be deleted behind our back; recheck slowly.
            Observed::Found { .. } | Observed::CrossAccount { .. } => {
                Next::After(Duration::from_secs(600 + rand::random::<u64>() % 60))
            }
        })
    }

    fn keys(&self) -> Vec<String> {
        self.bindings
            .state()
            .iter()
            .map(|b| key_of(b.as_ref()))
            .collect()
    }
}

impl Reconciler {
    async fn write_status(
        &self,
        binding: &IamRoleBinding,
        status: &IamRoleBindingStatus,
        observed: &Observed,
    ) -> Result<(), Error> {
        let api: Api<IamRoleBinding> = Api::namespaced(
            self.ctx.client.clone(),
            &binding.namespace().unwrap_or_default(),
        );
        crate::k8s::apply::apply_status(&api, &binding.name_any(), status).await?;
        let oref = binding.object_ref(&());
        let events = &self.ctx.events;
        match observed {
            Observed::NotFound => {
                events
                    .warn(
                        &oref,
                        reason::ROLE_NOT_FOUND,
                        format!("IAM role `{}` does not exist", binding.spec.role),
                    )
                    .await
            }
            Observed::Invalid(msg) => events.warn(&oref, reason::INVALID_ROLE, msg.clone()).await,
            Observed::Found { arn } | Observed::CrossAccount { arn, .. } => {
                events
                    .normal(&oref, reason::ROLE_FOUND, format!("bound to {arn}"))
                    .await
            }
        }
        Ok(())
    }
}

/// Runs the reconciler until `stop` flips.
pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    let queue = Arc::new(WorkQueue::new(Backoff {
        initial: Duration::from_secs(5),
        max: Duration::from_secs(300),
    }));
    let bindings = {
        let queue = queue.clone();
        reflect(
            Api::<IamRoleBinding>::all(ctx.client.clone()),
            watcher::Config::default(),
            keep_all,
            move |c: Change<'_, IamRoleBinding>| match c {
                Change::Synced(store) => {
                    for b in store.state() {
                        queue.add(key_of(b.as_ref()));
                    }
                }
                c => {
                    if let Some(b) = c.object() {
                        queue.add(key_of(b));
                    }
                }
            },
            stop.clone(),
        )
    };
    let mut stopped = stop.clone();
    tokio::select! {
        _ = bindings.wait_until_ready() => {}
        _ = stopped.wait_for(|s| *s) => return,
    }
    let metrics = ctx.metrics.clone();
    let r = Arc::new(Reconciler {
        ctx,
        bindings,
        account: OnceCell::new(),
    });
    runtime::run(
        r,
        queue,
        RunSettings {
            workers: 4,
            resync: Duration::from_secs(600),
        },
        metrics,
        stop,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::conditions::FixedClock;
    use k8s_openapi::jiff::Timestamp;

    fn clock(secs: i64) -> FixedClock {
        FixedClock(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn found_role_is_ready_with_its_arn() {
        let arn = "arn:aws:iam::123456789012:role/app".to_string();
        let (s, changed) = desired_status(
            None,
            Some(3),
            &Observed::Found { arn: arn.clone() },
            &clock(10),
        );
        assert!(changed);
        assert_eq!(s.role_arn.as_deref(), Some(arn.as_str()));
        assert_eq!(s.observed_generation, Some(3));
        let c = &s.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("Ready", "True", "RoleFound")
        );
    }

    #[test]
    fn same_observation_twice_changes_nothing() {
        let obs = Observed::NotFound;
        let (s1, _) = desired_status(None, Some(1), &obs, &clock(10));
        let (s2, changed) = desired_status(Some(&s1), Some(1), &obs, &clock(99));
        assert!(!changed);
        assert_eq!(s1, s2);
    }

    #[test]
    fn losing_the_role_flips_ready_and_clears_the_arn() {
        let (s1, _) = desired_status(
            None,
            Some(1),
            &Observed::Found {
                arn: "arn:aws:iam::123456789012:role/a".into(),
            },
            &clock(10),
        );
        let (s2, changed) = desired_status(Some(&s1), Some(1), &Observed::NotFound, &clock(20));
        assert!(changed);
        assert_eq!(s2.role_arn, None);
        assert_eq!(s2.conditions[0].status, "False");
        assert_eq!(
            s2.conditions[0].last_transition_time.0,
            Timestamp::from_second(20).unwrap()
        );
    }

    #[test]
    fn invalid_reference_reports_why() {
        let (s, _) = desired_status(
            None,
            Some(1),
            &Observed::Invalid("`a b` is not a valid IAM role name".into()),
            &clock(1),
        );
        assert_eq!(s.conditions[0].reason, "InvalidRole");
        assert!(s.conditions[0].message.contains("a b"));
    }
}
