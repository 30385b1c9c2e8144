use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness state behind `/readyz`.
///
/// The controller is ready once its caches are synced and it knows whether it leads
/// (a follower is ready too: it serves metrics and takes over quickly). The node agent
/// has no leader election, so only its caches count.
#[derive(Clone, Debug)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requires_leadership: bool,
    caches_synced: AtomicBool,
    leadership_known: AtomicBool,
    /// Set when a reconciler died: the process is about to exit and must not look ready.
    failed: AtomicBool,
}

impl Readiness {
    pub fn new(requires_leadership: bool) -> Self {
        Readiness {
            inner: Arc::new(Inner {
                requires_leadership,
                caches_synced: AtomicBool::new(false),
                leadership_known: AtomicBool::new(false),
                failed: AtomicBool::new(false),
            }),
        }
    }

    pub fn mark_caches_synced(&self) {
        self.inner.caches_synced.store(true, Ordering::Release);
    }

    pub fn set_leadership_known(&self) {
        self.inner.leadership_known.store(true, Ordering::Release);
    }

    /// A reconciler died: not ready from now on.
    pub fn mark_failed(&self) {
        self.inner.failed.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.status().is_ok()
    }

    /// `Err` carries the short reason shown by `/readyz`.
    pub fn status(&self) -> Result<(), &'static str> {
        if self.inner.failed.load(Ordering::Acquire) {
            return Err("a reconciler died");
        }
        if !self.inner.caches_synced.load(Ordering::Acquire) {
            return Err("caches not synced");
        }
        if self.inner.requires_leadership && !self.inner.leadership_known.load(Ordering::Acquire) {
            return Err("leader election has not settled");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_needs_caches_and_leadership() {
        let readiness = Readiness::new(true);
        assert_eq!(readiness.status(), Err("caches not synced"));
        readiness.set_leadership_known();
        assert!(!readiness.is_ready());
        readiness.clone().mark_caches_synced();
        assert!(readiness.is_ready());
    }

    #[test]
    fn a_dead_reconciler_makes_it_unready_for_good() {
        let readiness = Readiness::new(false);
        readiness.mark_caches_synced();
        readiness.mark_failed();
        assert_eq!(readiness.status(), Err("a reconciler died"));
    }

    #[test]
    fn agent_needs_only_caches() {
        let readiness = Readiness::new(false);
        assert!(!readiness.is_ready());
        readiness.mark_caches_synced();
        assert!(readiness.is_ready());
    }
}
