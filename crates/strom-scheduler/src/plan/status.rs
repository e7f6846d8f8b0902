//! Step, phase and plan status (the SDK's `Status.java`) and how a parent's status is derived
//! from its children's.

use serde::{Deserialize, Serialize};

/// Status of a step, phase or plan. Steps hold `Pending`…`Complete`, `Delayed` and `Error`;
/// `Waiting` and `InProgress` are derived for parents (and `Waiting` for interrupted steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// The element could not be built or run (an illegal config, a refused update).
    Error,
    /// Interrupted, or waiting for an operator's `continue` (canary).
    Waiting,
    /// Not started.
    Pending,
    /// Its pod instance's old tasks are stopped; it waits for a suitable offer.
    Prepared,
    /// Operations were sent; the tasks are launching.
    Starting,
    /// The tasks run; readiness is pending.
    Started,
    /// Done: tasks at their goal on the target config (and ready).
    Complete,
    /// Backing off after repeated failures (crash loop); retried when the delay passes.
    Delayed,
    /// Derived: some children are done or running, others not.
    InProgress,
}

impl Status {
    /// Whether work on the element has begun and not finished (it owns its pod instance).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Prepared | Status::Starting | Status::Started)
    }

    /// The SDK's spelling (`IN_PROGRESS`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Error => "ERROR",
            Status::Waiting => "WAITING",
            Status::Pending => "PENDING",
            Status::Prepared => "PREPARED",
            Status::Starting => "STARTING",
            Status::Started => "STARTED",
            Status::Complete => "COMPLETE",
            Status::Delayed => "DELAYED",
            Status::InProgress => "IN_PROGRESS",
        }
    }
}

/// A parent's status from its own errors, interrupt flag and children's statuses (the SDK's
/// aggregate rule): errors win; all children complete is complete; otherwise an interrupted
/// parent waits; a child error is an error; any started or finished work is in progress.
pub fn aggregate(has_errors: bool, interrupted: bool, children: &[Status]) -> Status {
    if has_errors {
        return Status::Error;
    }
    if children.iter().all(|s| *s == Status::Complete) {
        return Status::Complete;
    }
    if interrupted {
        return Status::Waiting;
    }
    if children.contains(&Status::Error) {
        return Status::Error;
    }
    let working = children
        .iter()
        .any(|s| s.is_running() || *s == Status::InProgress || *s == Status::Delayed);
    let some_done = children.contains(&Status::Complete);
    if working || some_done {
        return Status::InProgress;
    }
    if children.contains(&Status::Waiting) {
        return Status::Waiting;
    }
    Status::Pending
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn aggregate_follows_the_sdk_rules() {
        assert_eq!(aggregate(false, false, &[]), Complete);
        assert_eq!(aggregate(true, false, &[Complete]), Error);
        assert_eq!(aggregate(false, true, &[Complete, Complete]), Complete);
        assert_eq!(aggregate(false, true, &[Complete, Pending]), Waiting);
        assert_eq!(aggregate(false, false, &[Complete, Error]), Error);
        assert_eq!(aggregate(false, false, &[Complete, Pending]), InProgress);
        assert_eq!(aggregate(false, false, &[Starting, Pending]), InProgress);
        assert_eq!(aggregate(false, false, &[Delayed, Pending]), InProgress);
        assert_eq!(aggregate(false, false, &[Waiting, Pending]), Waiting);
        assert_eq!(aggregate(false, false, &[Pending, Pending]), Pending);
    }

    #[test]
    fn statuses_serialize_in_the_sdk_spelling() {
        assert_eq!(
            serde_json::to_string(&InProgress).unwrap(),
            "\"IN_PROGRESS\""
        );
        for status in [
            Error, Waiting, Pending, Prepared, Starting, Started, Complete, Delayed,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }
}
