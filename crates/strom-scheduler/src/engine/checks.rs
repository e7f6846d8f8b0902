//! Readiness and health checks of the local engine: a check is `sh -c <cmd>` run in the task's
//! sandbox with its environment, every `interval` (capped by the engine's
//! `check_interval_max_ms`), killed after `timeout`. A readiness check runs until it first
//! passes; a health check runs for the task's life, and `max-consecutive-failures` failures in
//! a row — not counted during `grace-period` until the first pass, as Mesos does — make the
//! engine kill the task.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;

use super::process;
use crate::spec::CheckSpec;

/// What the engine knows about a task type from the spec.
#[derive(Clone, Debug, Default)]
pub(super) struct TaskChecks {
    pub(super) readiness: Option<CheckSpec>,
    pub(super) health: Option<CheckSpec>,
    pub(super) kill_grace_ms: u64,
}

/// One check of one task: the run in flight and when the next may start.
#[derive(Debug, Default)]
pub(super) struct CheckRunner {
    running: Option<(Child, u64)>,
    next_ms: u64,
}

impl CheckRunner {
    /// Advances the check; `Some(passed)` when a run finished (a timed-out run fails).
    pub(super) fn poll(
        &mut self,
        check: &CheckSpec,
        interval_max_ms: u64,
        env: &BTreeMap<String, String>,
        sandbox: &Path,
        log_name: &str,
        now_ms: u64,
    ) -> Option<bool> {
        if let Some((child, deadline_ms)) = &mut self.running {
            let outcome = match child.try_wait() {
                Ok(Some(status)) => Some(status.success()),
                Ok(None) if now_ms < *deadline_ms => None,
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Some(false)
                }
            };
            if outcome.is_some() {
                self.running = None;
            }
            return outcome;
        }
        if now_ms < self.next_ms {
            return None;
        }
        let interval_ms = (u64::from(check.interval) * 1000).min(interval_max_ms);
        self.next_ms = now_ms + interval_ms.max(100);
        let log = sandbox.join(log_name);
        match process::spawn(&check.cmd, env, sandbox, &log, &log, true) {
            Ok(child) => {
                let deadline_ms = now_ms + u64::from(check.timeout.max(1)) * 1000;
                self.running = Some((child, deadline_ms));
                None
            }
            Err(_) => Some(false),
        }
    }
}

impl Drop for CheckRunner {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A task's health: its runner, the failures in a row, whether it ever passed, its start.
#[derive(Debug)]
pub(super) struct Health {
    pub(super) runner: CheckRunner,
    pub(super) failures: u32,
    pub(super) passed_once: bool,
    pub(super) since_ms: u64,
}

impl Health {
    /// Health tracking from `now_ms` (a launch, or an adoption after a restart).
    pub(super) fn new(now_ms: u64) -> Self {
        Health {
            runner: CheckRunner::default(),
            failures: 0,
            passed_once: false,
            since_ms: now_ms,
        }
    }

    /// Records a finished run; returns whether the task must be killed.
    pub(super) fn record(&mut self, check: &CheckSpec, passed: bool, now_ms: u64) -> bool {
        if passed {
            self.failures = 0;
            self.passed_once = true;
            return false;
        }
        let grace_ms = u64::from(check.grace_period.unwrap_or(0)) * 1000;
        if !self.passed_once && now_ms < self.since_ms + grace_ms {
            return false;
        }
        self.failures += 1;
        self.failures >= check.max_consecutive_failures.unwrap_or(3).max(1)
    }
}
