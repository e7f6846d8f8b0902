//! Recovery decisions: restart a failed task in place (transient) or relaunch it elsewhere
//! (permanent), with crash-loop back-off.
//!
//! As in the SDK, permanent replacement is never automatic by default (`FailureMonitor::Never`):
//! it discards a broker's data, so it is an operator's `pod replace`. An opt-in timed monitor
//! replaces a task whose agent has been lost for longer than its timeout. Pure: the clock is
//! `now_ms`, the history is a [`CrashRecord`] the scheduler keeps per pod instance.

use crate::task::{TaskRecord, TaskState};

/// Back-off between restarts of a crash-looping task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Delay before the second restart in a row (the first is immediate).
    pub initial_ms: u64,
    /// Each further failure multiplies the delay by this.
    pub factor: u64,
    /// The longest delay.
    pub max_ms: u64,
    /// Running this long without failing resets the count.
    pub reset_after_ms: u64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial_ms: 10_000,
            factor: 2,
            max_ms: 300_000,
            reset_after_ms: 600_000,
        }
    }
}

impl BackoffPolicy {
    /// The delay before the restart after `consecutive_failures` failures in a row.
    pub fn delay_ms(&self, consecutive_failures: u32) -> u64 {
        if consecutive_failures <= 1 {
            return 0;
        }
        let mut delay = self.initial_ms;
        for _ in 2..consecutive_failures {
            delay = delay.saturating_mul(self.factor);
            if delay >= self.max_ms {
                return self.max_ms;
            }
        }
        delay.min(self.max_ms)
    }
}

/// When a failed task is given up on its agent and replaced elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FailureMonitor {
    /// Never automatically (the SDK's default): only `pod replace` replaces.
    #[default]
    Never,
    /// Replace a task whose agent is lost (TASK_LOST, GONE, UNREACHABLE, …) for this long.
    Timed { permanent_failure_timeout_ms: u64 },
}

/// A pod instance's recent failures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashRecord {
    /// Failures since the task last ran for `reset_after_ms`.
    pub consecutive_failures: u32,
    /// When the last failure was seen.
    pub last_failure_ms: u64,
    /// When the current run of failures (or loss) began.
    pub failing_since_ms: Option<u64>,
    /// When the task last reported RUNNING.
    pub running_since_ms: Option<u64>,
}

impl CrashRecord {
    /// Records a status of the instance's task. `expected` marks a stop the scheduler asked for
    /// (update, restart), which is not a failure.
    pub fn observe(
        &mut self,
        state: TaskState,
        expected: bool,
        now_ms: u64,
        policy: &BackoffPolicy,
    ) {
        if state == TaskState::Running {
            self.running_since_ms.get_or_insert(now_ms);
            self.failing_since_ms = None;
            return;
        }
        if !state.is_terminal() && state != TaskState::Unreachable {
            return;
        }
        let ran_long = self
            .running_since_ms
            .is_some_and(|since| now_ms.saturating_sub(since) >= policy.reset_after_ms);
        self.running_since_ms = None;
        if expected || state == TaskState::Finished {
            return;
        }
        if ran_long {
            self.consecutive_failures = 0;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_failure_ms = now_ms;
        self.failing_since_ms.get_or_insert(now_ms);
    }
}

/// What to do about a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryDecision {
    /// Nothing: it runs, has not reported, or finished as its goal wants.
    None,
    /// Restart in place on the same reservations and volume, not before this time.
    Transient { not_before_ms: u64 },
    /// Relaunch anywhere on new reservations (the volume is lost).
    Permanent,
}

fn agent_lost(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::Lost
            | TaskState::Gone
            | TaskState::GoneByOperator
            | TaskState::Unreachable
            | TaskState::Dropped
            | TaskState::Unknown
    )
}

/// Decides the recovery of `record` (goal RUNNING tasks; FINISH/ONCE tasks recover only when
/// they failed) given its instance's crash history.
pub fn decide(
    record: &TaskRecord,
    crash: &CrashRecord,
    policy: &BackoffPolicy,
    monitor: FailureMonitor,
    now_ms: u64,
) -> RecoveryDecision {
    if record.info.permanently_failed {
        return RecoveryDecision::Permanent;
    }
    let Some(status) = &record.status else {
        return RecoveryDecision::None;
    };
    let failed = status.state.is_terminal() || status.state == TaskState::Unreachable;
    if !failed || status.state == TaskState::Finished {
        return RecoveryDecision::None;
    }
    if let FailureMonitor::Timed {
        permanent_failure_timeout_ms,
    } = monitor
    {
        let lost_for = crash
            .failing_since_ms
            .map(|since| now_ms.saturating_sub(since))
            .unwrap_or(0);
        if agent_lost(status.state) && lost_for >= permanent_failure_timeout_ms {
            return RecoveryDecision::Permanent;
        }
    }
    if status.state == TaskState::Unreachable {
        // The task may still run behind a partition; wait for it or for the monitor.
        return RecoveryDecision::None;
    }
    RecoveryDecision::Transient {
        not_before_ms: crash.last_failure_ms + policy.delay_ms(crash.consecutive_failures),
    }
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
