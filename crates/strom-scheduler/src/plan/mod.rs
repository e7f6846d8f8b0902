//! Plans: phases of steps, each step bringing one pod instance's tasks to their goal.
//!
//! Owns the plan tree, the operator commands (interrupt, continue, forceComplete, restart, as
//! `/v1/plans/<p>/…` offers them), candidate selection through strategies, the SDK's JSON shape
//! and HTTP status, and generating the deploy plan from a spec and the recorded tasks. It does
//! not move steps through their statuses on its own: the scheduler (`scheduler`) does that as
//! offers are accepted and task statuses arrive, and the roll gate (`roll`) decides whether an
//! update may take the next broker down.

pub mod generate;
pub mod roll;
pub mod status;
pub mod strategy;

use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

pub use status::{aggregate, Status};
pub use strategy::{ChildView, Strategy};

use crate::task::PodInstance;

/// Why an operator command could not be applied.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// No phase or step of that name or id.
    #[error("{0} not found")]
    NotFound(String),
}

/// How a step recovers its pod instance, or that it deploys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StepKind {
    /// Bring the instance to the target config (deploy or update).
    Deploy,
    /// Restart in place on the same reservations and volume.
    RecoverTransient,
    /// Relaunch anywhere on new reservations; the old volume is discarded.
    RecoverPermanent,
}

/// One step: one pod instance and the tasks it launches.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Stable id (derived from the plan, phase and step names).
    pub id: Uuid,
    /// `kafka-0:[broker]`.
    pub name: String,
    /// The pod instance.
    pub instance: PodInstance,
    /// Task names of the pod spec this step launches.
    pub tasks: Vec<String>,
    /// Deploy or recovery.
    pub kind: StepKind,
    /// Status. Invariant: never `InProgress` (that is derived for parents only).
    pub status: Status,
    /// Interrupted by an operator.
    pub interrupted: bool,
    /// Why the step is where it is, for `plan show` and `/v1/debug/offers`.
    pub message: String,
    /// Errors that keep the step from running.
    pub errors: Vec<String>,
    /// While `Delayed`: when the step may be retried.
    pub delayed_until_ms: Option<u64>,
    /// Set by `restart`: relaunch even if the tasks already run on the target config.
    pub restart_requested: bool,
}

impl Step {
    /// The status shown to operators: interrupted unfinished steps wait.
    pub fn display_status(&self) -> Status {
        if !self.errors.is_empty() {
            Status::Error
        } else if self.interrupted && self.status != Status::Complete {
            Status::Waiting
        } else {
            self.status
        }
    }

    /// Moves the step to `status` with `message`.
    pub fn set(&mut self, status: Status, message: impl Into<String>) {
        assert_ne!(status, Status::InProgress, "steps never hold IN_PROGRESS");
        self.status = status;
        self.message = message.into();
        if status != Status::Delayed {
            self.delayed_until_ms = None;
        }
        if status == Status::Complete {
            self.restart_requested = false;
        }
    }
}

/// A phase: steps under one strategy.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Stable id.
    pub id: Uuid,
    /// Name (`broker`).
    pub name: String,
    /// Strategy over the steps.
    pub strategy: Strategy,
    /// Interrupted by an operator.
    pub interrupted: bool,
    /// Steps in order.
    pub steps: Vec<Step>,
}

impl Phase {
    fn views(&self, blocked: &dyn Fn(&PodInstance) -> bool) -> Vec<ChildView> {
        self.steps
            .iter()
            .map(|step| ChildView {
                status: step.display_status(),
                interrupted: step.interrupted,
                blocked: blocked(&step.instance),
            })
            .collect()
    }

    /// The derived status.
    pub fn status(&self) -> Status {
        let statuses: Vec<Status> = self.steps.iter().map(Step::display_status).collect();
        let views = self.views(&|_| false);
        let waiting = self.interrupted || self.strategy.awaiting_operator(&views);
        aggregate(false, waiting, &statuses)
    }
}

/// A plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Name (`deploy`, `recovery`, …).
    pub name: String,
    /// Strategy over the phases.
    pub strategy: Strategy,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// Errors that stop the whole plan (a refused update's validation errors).
    pub errors: Vec<String>,
    /// Interrupted by an operator.
    pub interrupted: bool,
}

/// A deterministic id from names, so ids stay the same when plans are regenerated (the SDK's
/// were random per generation, which broke `--step <id>` across scheduler restarts).
pub fn element_id(parts: &[&str]) -> Uuid {
    let mut high: u64 = 0xcbf2_9ce4_8422_2325;
    let mut low: u64 = 0x8422_2325_cbf2_9ce4;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            high = (high ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            low = (low ^ u64::from(byte))
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(7);
        }
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

impl Plan {
    /// The derived status.
    pub fn status(&self) -> Status {
        let statuses: Vec<Status> = self.phases.iter().map(Phase::status).collect();
        aggregate(!self.errors.is_empty(), self.interrupted, &statuses)
    }

    /// The HTTP status of `GET /v1/plans/<p>`: 200 complete, 417 errors, 202 otherwise.
    pub fn http_status(&self) -> u16 {
        match self.status() {
            Status::Complete => 200,
            Status::Error => 417,
            _ => 202,
        }
    }

    /// The steps that may work now, as (phase index, step index). `blocked` says whether a pod
    /// instance is held by another plan.
    pub fn candidates(&self, blocked: &dyn Fn(&PodInstance) -> bool) -> Vec<(usize, usize)> {
        if self.interrupted || !self.errors.is_empty() {
            return Vec::new();
        }
        let phase_views: Vec<ChildView> = self
            .phases
            .iter()
            .map(|phase| ChildView {
                status: phase.status(),
                interrupted: phase.interrupted,
                blocked: false,
            })
            .collect();
        // A phase waiting for a canary `continue` still counts as in progress for the plan's
        // strategy, so a serial plan does not run the next phase past it.
        let phase_views: Vec<ChildView> = phase_views
            .into_iter()
            .map(|mut view| {
                if view.status == Status::Waiting && !view.interrupted {
                    view.status = Status::InProgress;
                }
                view
            })
            .collect();
        let mut candidates = Vec::new();
        for phase_index in self.strategy.candidates(&phase_views) {
            let phase = &self.phases[phase_index];
            for step_index in phase.strategy.candidates(&phase.views(blocked)) {
                candidates.push((phase_index, step_index));
            }
        }
        candidates
    }

    /// Every step, with its phase index.
    pub fn steps(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.phases
            .iter()
            .enumerate()
            .flat_map(|(index, phase)| phase.steps.iter().map(move |step| (index, step)))
    }

    fn phase_index(&self, phase: &str) -> Result<usize, PlanError> {
        self.phases
            .iter()
            .position(|p| p.name == phase || p.id.to_string() == phase)
            .ok_or_else(|| PlanError::NotFound(format!("phase {phase:?} of plan {:?}", self.name)))
    }

    fn step_index(&self, phase: usize, step: &str) -> Result<usize, PlanError> {
        self.phases[phase]
            .steps
            .iter()
            .position(|s| s.name == step || s.id.to_string() == step)
            .ok_or_else(|| {
                PlanError::NotFound(format!(
                    "step {step:?} of phase {:?}",
                    self.phases[phase].name
                ))
            })
    }

    /// `interrupt`: stop starting new work in the plan or one phase (running steps finish).
    pub fn interrupt(&mut self, phase: Option<&str>) -> Result<(), PlanError> {
        match phase {
            None => self.interrupted = true,
            Some(phase) => {
                let index = self.phase_index(phase)?;
                self.phases[index].interrupted = true;
            }
        }
        Ok(())
    }

    /// `continue`: clear interrupts, and release the next canary step of phases waiting for it.
    pub fn proceed(&mut self, phase: Option<&str>) -> Result<(), PlanError> {
        let indexes: Vec<usize> = match phase {
            Some(phase) => vec![self.phase_index(phase)?],
            None => {
                self.interrupted = false;
                // Only the phases the plan's strategy would work on now: a later canary phase
                // keeps waiting for its own `continue`.
                let views: Vec<ChildView> = self
                    .phases
                    .iter()
                    .map(|p| ChildView {
                        status: match p.status() {
                            Status::Waiting => Status::InProgress,
                            other => other,
                        },
                        interrupted: false,
                        blocked: false,
                    })
                    .collect();
                self.strategy.candidates(&views)
            }
        };
        for index in indexes {
            let phase = &mut self.phases[index];
            let views = phase.views(&|_| false);
            if phase.strategy.awaiting_operator(&views) && !phase.interrupted {
                phase.strategy.release();
            }
            phase.interrupted = false;
            for step in &mut phase.steps {
                step.interrupted = false;
            }
        }
        Ok(())
    }

    /// `forceComplete`: mark a step (or every step of a phase) complete without running it;
    /// steps already complete are left as they are.
    pub fn force_complete(&mut self, phase: &str, step: Option<&str>) -> Result<(), PlanError> {
        let phase_index = self.phase_index(phase)?;
        let steps: Vec<usize> = match step {
            Some(step) => vec![self.step_index(phase_index, step)?],
            None => (0..self.phases[phase_index].steps.len()).collect(),
        };
        for index in steps {
            let step = &mut self.phases[phase_index].steps[index];
            if step.status == Status::Complete && step.errors.is_empty() {
                // Already complete: keep its message (the API then answers 208).
                continue;
            }
            step.errors.clear();
            step.set(Status::Complete, "forced complete by an operator");
        }
        Ok(())
    }

    /// `restart`: set a step, a phase or the whole plan back to PENDING; their tasks relaunch.
    pub fn restart(&mut self, phase: Option<&str>, step: Option<&str>) -> Result<(), PlanError> {
        let mut targets: Vec<(usize, usize)> = Vec::new();
        match (phase, step) {
            (None, _) => {
                self.interrupted = false;
                for (p, phase) in self.phases.iter().enumerate() {
                    targets.extend((0..phase.steps.len()).map(|s| (p, s)));
                }
            }
            (Some(phase), None) => {
                let p = self.phase_index(phase)?;
                targets.extend((0..self.phases[p].steps.len()).map(|s| (p, s)));
            }
            (Some(phase), Some(step)) => {
                let p = self.phase_index(phase)?;
                targets.push((p, self.step_index(p, step)?));
            }
        }
        for (p, s) in targets {
            let step = &mut self.phases[p].steps[s];
            step.interrupted = false;
            step.errors.clear();
            step.restart_requested = true;
            step.set(Status::Pending, "restarted by an operator");
        }
        Ok(())
    }

    /// The SDK's JSON for `GET /v1/plans/<p>`.
    pub fn to_json(&self) -> Value {
        json!({
            "phases": self.phases.iter().map(|phase| json!({
                "id": phase.id.to_string(),
                "name": phase.name,
                "status": phase.status().as_str(),
                "strategy": phase.strategy.name(),
                "steps": phase.steps.iter().map(|step| json!({
                    "id": step.id.to_string(),
                    "name": step.name,
                    "status": step.display_status().as_str(),
                    "message": step.message,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "errors": self.errors,
            "status": self.status().as_str(),
            "strategy": self.strategy.name(),
        })
    }
}

#[cfg(test)]
mod tests;
