//! The reconciliation gate: after every (re)subscription the scheduler asks the engine for the
//! current status of every task it believes live, and declines offers (5 s) until each has
//! answered, so a restarted scheduler never launches on a stale picture of the cluster (the
//! SDK's rule). Unanswered tasks are asked again every [`RECONCILE_RETRY_MS`].

use std::collections::BTreeSet;

use super::{Effect, Scheduler};
use crate::store::Persister;

/// How often unanswered tasks are asked again.
pub const RECONCILE_RETRY_MS: u64 = 30_000;

/// Reconciliation in progress.
#[derive(Clone, Debug, Default)]
pub(super) struct Reconciliation {
    /// Task ids whose status has not arrived since the subscription.
    pub(super) waiting: BTreeSet<String>,
    /// When they were last asked.
    pub(super) asked_ms: u64,
}

impl<P: Persister> Scheduler<P> {
    /// The engine (re)subscribed: start reconciling. Returns the `Reconcile` effect listing
    /// every task the store believes live (none: the gate opens at once).
    pub fn subscribed(&mut self, now_ms: u64) -> Vec<Effect> {
        let waiting: BTreeSet<String> = self
            .tasks
            .values()
            .filter(|r| r.is_live())
            .map(|r| r.info.task_id.clone())
            .collect();
        if waiting.is_empty() {
            self.reconciliation = None;
            return Vec::new();
        }
        self.reconciliation = Some(Reconciliation {
            waiting,
            asked_ms: now_ms,
        });
        vec![self.reconcile_effect()]
    }

    /// Whether offers wait for reconciliation.
    pub fn is_reconciling(&self) -> bool {
        self.reconciliation.is_some()
    }

    fn reconcile_effect(&self) -> Effect {
        let waiting = &self.reconciliation.as_ref().expect("reconciling").waiting;
        Effect::Reconcile {
            tasks: self
                .tasks
                .values()
                .filter(|r| waiting.contains(&r.info.task_id))
                .map(|r| (r.info.task_id.clone(), r.info.agent_id.clone()))
                .collect(),
        }
    }

    /// A status arrived for `task_id`.
    pub(super) fn reconciled(&mut self, task_id: &str) {
        if let Some(reconciliation) = &mut self.reconciliation {
            reconciliation.waiting.remove(task_id);
            if reconciliation.waiting.is_empty() {
                self.reconciliation = None;
            }
        }
    }

    /// Asks again for tasks that did not answer in time.
    pub(super) fn reconcile_retry(&mut self, now_ms: u64) -> Option<Effect> {
        let reconciliation = self.reconciliation.as_mut()?;
        if now_ms.saturating_sub(reconciliation.asked_ms) < RECONCILE_RETRY_MS {
            return None;
        }
        reconciliation.asked_ms = now_ms;
        Some(self.reconcile_effect())
    }
}
