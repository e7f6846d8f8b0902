//! The scheduler's reactions: the work cycle (which steps may act, what they need stopped,
//! whether offers are wanted), offer handling and status handling.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::{Effect, PlanKind, Scheduler, DEPLOYMENT_COMPLETED_PROPERTY};
use crate::offer::cleanup::release_unexpected;
use crate::offer::evaluate::{evaluate, EvaluationContext};
use crate::offer::placement::PlacedInstance;
use crate::offer::{Offer, PodRequirement, Previous};
use crate::plan::roll::{may_take_down, RollDecision};
use crate::plan::{Plan, Status, Step, StepKind};
use crate::recovery::{decide, RecoveryDecision};
use crate::state;
use crate::store::{Persister, StoreError};
use crate::task::{PodInstance, TaskRecord, TaskState, TaskStatus};

/// Offers are declined this long when the scheduler has nothing to launch.
pub const DECLINE_LONG_SECONDS: u64 = 3600;
/// And this long when work is waiting for a better offer.
pub const DECLINE_SHORT_SECONDS: u64 = 5;

impl<P: Persister> Scheduler<P> {
    fn plan_mut(&mut self, kind: PlanKind) -> &mut Plan {
        match kind {
            PlanKind::Deploy => &mut self.deploy,
            PlanKind::Recovery => &mut self.recovery,
        }
    }

    fn step(&self, kind: PlanKind, phase: usize, step: usize) -> &Step {
        let plan = match kind {
            PlanKind::Deploy => &self.deploy,
            PlanKind::Recovery => &self.recovery,
        };
        &plan.phases[phase].steps[step]
    }

    fn step_mut(&mut self, kind: PlanKind, phase: usize, step: usize) -> &mut Step {
        &mut self.plan_mut(kind).phases[phase].steps[step]
    }

    /// Candidate steps of all plans. A pod instance belongs to at most one plan at a time: to
    /// the plan with a running step on it, else to the first plan (deploy before recovery)
    /// whose strategy picks it.
    fn candidates(&self) -> Vec<(PlanKind, usize, usize)> {
        let running = |plan: &Plan| -> BTreeSet<PodInstance> {
            plan.steps()
                .filter(|(_, s)| s.status.is_running())
                .map(|(_, s)| s.instance.clone())
                .collect()
        };
        let running_deploy = running(&self.deploy);
        let running_recovery = running(&self.recovery);
        let mut claimed: BTreeSet<PodInstance> = BTreeSet::new();
        let mut result = Vec::new();
        for (kind, plan, others) in [
            (PlanKind::Deploy, &self.deploy, &running_recovery),
            (PlanKind::Recovery, &self.recovery, &running_deploy),
        ] {
            let blocked = |i: &PodInstance| others.contains(i) || claimed.contains(i);
            let picked = plan.candidates(&blocked);
            for (phase, step) in picked {
                claimed.insert(plan.phases[phase].steps[step].instance.clone());
                result.push((kind, phase, step));
            }
        }
        result
    }

    fn records_of(&self, step: &Step) -> Vec<&TaskRecord> {
        step.tasks
            .iter()
            .filter_map(|t| self.tasks.get(&step.instance.task_name(t)))
            .collect()
    }

    /// Expires back-offs, moves candidate steps forward (stopping old tasks first, behind the
    /// roll gate for updates), and revives or suppresses offers.
    pub(super) fn work(&mut self, now_ms: u64) -> Result<Vec<Effect>, StoreError> {
        let mut effects = Vec::new();
        for kind in [PlanKind::Deploy, PlanKind::Recovery] {
            for phase in &mut self.plan_mut(kind).phases {
                for step in &mut phase.steps {
                    if step.status == Status::Delayed
                        && step.delayed_until_ms.is_none_or(|t| t <= now_ms)
                    {
                        step.set(Status::Pending, "back-off over; relaunching");
                    }
                }
            }
        }
        self.recover_orphans(now_ms);
        // A rolled instance whose step finished some other way (forced complete, a new plan)
        // no longer holds the roll.
        let unfinished: BTreeSet<PodInstance> = self
            .deploy
            .steps()
            .filter(|(_, s)| s.status != Status::Complete)
            .map(|(_, s)| s.instance.clone())
            .collect();
        let back: BTreeSet<PodInstance> = self
            .rolling
            .iter()
            .filter(|i| {
                let records: Vec<&TaskRecord> = self
                    .tasks
                    .values()
                    .filter(|r| r.info.instance == **i)
                    .collect();
                !records.is_empty()
                    && records.iter().all(|r| {
                        // A task being stopped is not back, even while it still reports RUNNING.
                        !self.expected_stops.contains(&r.info.task_id)
                            && r.status
                                .as_ref()
                                .is_some_and(|s| s.state == TaskState::Running && s.ready)
                    })
            })
            .cloned()
            .collect();
        if !back.is_empty() {
            // Back by another path (recovery relaunched it on the target): the restart is done.
            self.last_restart_completed_ms = Some(now_ms);
        }
        self.rolling
            .retain(|i| unfinished.contains(i) && !back.contains(i));
        for (kind, phase, step) in self.candidates() {
            self.advance(kind, phase, step, now_ms, &mut effects);
        }
        if self.deploy.name == "deploy"
            && !self.deploy_completed
            && self.deploy.status() == Status::Complete
        {
            state::set_property(&mut self.persister, DEPLOYMENT_COMPLETED_PROPERTY, b"true")?;
            self.deploy_completed = true;
        }
        self.decommission_work(&mut effects)?;
        let wants_offers = self.decommission_wants_offers()
            || self
                .candidates()
                .iter()
                .any(|&(k, p, s)| self.step(k, p, s).status == Status::Prepared);
        match (wants_offers, self.suppressed) {
            (true, None | Some(true)) => {
                self.suppressed = Some(false);
                self.count("revives", 1);
                effects.push(Effect::Revive);
            }
            (false, None | Some(false)) => {
                self.suppressed = Some(true);
                self.count("suppresses", 1);
                effects.push(Effect::Suppress);
            }
            _ => {}
        }
        Ok(effects)
    }

    /// Moves one PENDING candidate step towards PREPARED.
    fn advance(
        &mut self,
        kind: PlanKind,
        phase: usize,
        index: usize,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let step = self.step(kind, phase, index).clone();
        let target = self.target_id;
        let records = self.records_of(&step);
        // A PREPARED step is reconsidered only if something launched its tasks meanwhile
        // (another plan, or a launch recorded before a scheduler restart).
        let any_live = records.iter().any(|r| r.is_live());
        if step.status != Status::Pending && !(step.status == Status::Prepared && any_live) {
            return;
        }
        let complete_set = records.len() == step.tasks.len();
        if !step.restart_requested && complete_set {
            let done = match step.kind {
                StepKind::Deploy => records.iter().all(|r| r.at_goal(target)),
                StepKind::RecoverTransient | StepKind::RecoverPermanent => {
                    records.iter().all(|r| {
                        !r.info.permanently_failed
                            && r.is_live()
                            && r.status
                                .as_ref()
                                .is_some_and(|s| s.state == TaskState::Running)
                    })
                }
            };
            if done {
                self.step_mut(kind, phase, index)
                    .set(Status::Complete, "tasks run on the target config");
                return;
            }
        }
        let launched = complete_set
            && !step.restart_requested
            && records.iter().all(|r| {
                r.is_live()
                    && !r.info.permanently_failed
                    && (step.kind != StepKind::Deploy || r.info.config_id == target)
            });
        if launched {
            // Launched on the target already (by another plan, or before a restart): wait for
            // it instead of stopping or relaunching it.
            let running = records.iter().all(|r| {
                r.status
                    .as_ref()
                    .is_some_and(|s| s.state == TaskState::Running)
            });
            let step = self.step_mut(kind, phase, index);
            if running {
                step.set(Status::Started, "running; waiting for readiness");
            } else {
                step.set(Status::Starting, "launched; waiting for the task to run");
            }
            return;
        }
        let to_stop: Vec<(String, String, bool)> = records
            .iter()
            .filter(|r| r.is_live())
            .filter(|r| {
                step.restart_requested
                    || r.info.permanently_failed
                    || step.kind != StepKind::Deploy
                    || r.info.config_id != target
            })
            .map(|r| {
                // Stopping a broker an operator replaced is not a roll: no health gate.
                let running = r
                    .status
                    .as_ref()
                    .is_some_and(|s| s.state == TaskState::Running)
                    && !r.info.permanently_failed;
                (r.info.task_id.clone(), r.info.agent_id.clone(), running)
            })
            .collect();
        if to_stop.is_empty() {
            let message = format!("waiting for an offer for {}", step.instance.name());
            let step = self.step_mut(kind, phase, index);
            step.restart_requested = false;
            step.set(Status::Prepared, message);
            return;
        }
        let takes_down_a_running_task = to_stop.iter().any(|(_, _, running)| *running);
        if kind == PlanKind::Deploy
            && takes_down_a_running_task
            && !self.rolling.contains(&step.instance)
        {
            // One broker down at a time, whatever the strategy says.
            if let Some(other) = self.rolling.iter().next() {
                let message = format!(
                    "waiting for {} to be back before stopping the next broker",
                    other.name()
                );
                self.step_mut(kind, phase, index).message = message;
                return;
            }
            match may_take_down(self.health, self.last_restart_completed_ms, now_ms) {
                RollDecision::Wait(message) => {
                    self.step_mut(kind, phase, index).message = message;
                    return;
                }
                RollDecision::Proceed => {
                    self.rolling.insert(step.instance.clone());
                }
            }
        }
        let mut names = Vec::new();
        for (task_id, agent_id, _) in to_stop {
            names.push(task_id.split("__").next().unwrap_or(&task_id).to_string());
            if self.expected_stops.insert(task_id.clone()) {
                effects.push(Effect::Kill { task_id, agent_id });
            }
        }
        self.step_mut(kind, phase, index).message = format!("stopping {}", names.join(", "));
    }

    /// Where `instance` ran before (for a relaunch in place), unless it was replaced.
    fn previous_of(&self, instance: &PodInstance) -> Option<Previous> {
        let records: Vec<&TaskRecord> = self
            .tasks
            .values()
            // A record whose reservations were all released (a decommission undone by a
            // scale-up) has nothing to relaunch in place on.
            .filter(|r| {
                r.info.instance == *instance
                    && !r.info.permanently_failed
                    && !r.info.resources.is_empty()
            })
            .collect();
        let first = records.first()?;
        Some(Previous {
            agent_id: first.info.agent_id.clone(),
            task_resources: records
                .iter()
                .map(|r| (r.info.task.clone(), r.info.resources.clone()))
                .collect(),
        })
    }

    /// The other pod instances' places, for placement rules.
    fn placed_except(&self, instance: &PodInstance) -> Vec<PlacedInstance> {
        let mut placed: BTreeMap<String, PlacedInstance> = BTreeMap::new();
        for record in self.tasks.values() {
            // A replaced instance stops counting once its task is gone, not before: until the
            // kill lands it still occupies its agent.
            if record.info.instance == *instance
                || (record.info.permanently_failed && !record.is_live())
            {
                continue;
            }
            placed
                .entry(record.info.instance.name())
                .or_insert_with(|| PlacedInstance {
                    pod: record.info.instance.pod.clone(),
                    instance: record.info.instance.name(),
                    hostname: record.info.hostname.clone(),
                    zone: record.info.zone.clone(),
                    region: None,
                    attributes: BTreeMap::new(),
                });
        }
        placed.into_values().collect()
    }

    pub(super) fn on_offers(
        &mut self,
        offers: Vec<Offer>,
        now_ms: u64,
    ) -> Result<Vec<Effect>, StoreError> {
        self.count("offers.received", offers.len() as u64);
        let mut effects = self.work(now_ms)?;
        let mut prepared: Vec<(PlanKind, usize, usize)> = self
            .candidates()
            .into_iter()
            .filter(|&(k, p, s)| self.step(k, p, s).status == Status::Prepared)
            .collect();
        for offer in offers {
            let owned: BTreeSet<Uuid> = self
                .tasks
                .values()
                .filter(|r| {
                    r.is_live()
                        || !(r.info.permanently_failed || self.is_decommissioned(&r.info.instance))
                })
                .flat_map(|r| r.info.resources.iter().filter_map(|res| res.resource_id()))
                .collect();
            let principal = self.spec.scheduler.principal.clone();
            let mut operations = release_unexpected(&offer, &self.config.role, &principal, &owned);
            for position in 0..prepared.len() {
                let (kind, phase, index) = prepared[position];
                let step = self.step(kind, phase, index).clone();
                let requirement = PodRequirement {
                    instance: step.instance.clone(),
                    tasks: step.tasks.clone(),
                    previous: match step.kind {
                        StepKind::RecoverPermanent => None,
                        _ => self.previous_of(&step.instance),
                    },
                    paused: self.paused.contains(&step.instance),
                };
                let placed = self.placed_except(&step.instance);
                let context = EvaluationContext {
                    spec: &self.spec,
                    config_id: self.target_id,
                    role: &self.config.role,
                    placed: &placed,
                };
                let (outcome, accepted) = evaluate(&context, &requirement, &offer, &mut *self.ids);
                if self.offer_log.len() >= self.config.offer_log_capacity.max(1) {
                    self.offer_log.pop_front();
                }
                let summary = outcome.to_string();
                self.offer_log.push_back(outcome);
                let Some(accepted) = accepted else {
                    self.step_mut(kind, phase, index).message = summary;
                    continue;
                };
                // Persist what is launched before the launch leaves (the SDK's order).
                state::store_task_infos(&mut self.persister, &accepted.tasks)?;
                for info in &accepted.tasks {
                    self.tasks.insert(
                        info.name.clone(),
                        TaskRecord {
                            info: info.clone(),
                            status: None,
                        },
                    );
                }
                let names: Vec<&str> = accepted.tasks.iter().map(|t| t.name.as_str()).collect();
                let message = format!("launching {} on {}", names.join(", "), offer.hostname);
                self.step_mut(kind, phase, index)
                    .set(Status::Starting, message);
                operations.extend(accepted.operations);
                prepared.remove(position);
                break;
            }
            let released: BTreeSet<Uuid> = operations
                .iter()
                .flat_map(|op| match op {
                    crate::offer::Operation::Unreserve { resources } => {
                        resources.iter().filter_map(|r| r.resource_id()).collect()
                    }
                    _ => Vec::new(),
                })
                .collect();
            self.cross_out_released(&released)?;
            self.count("offers.processed", 1);
            if operations.is_empty() {
                let refuse_seconds = if prepared.is_empty() {
                    DECLINE_LONG_SECONDS
                } else {
                    DECLINE_SHORT_SECONDS
                };
                self.count(
                    if prepared.is_empty() {
                        "declines.long"
                    } else {
                        "declines.short"
                    },
                    1,
                );
                effects.push(Effect::Decline {
                    offer_id: offer.id.clone(),
                    refuse_seconds,
                });
            } else {
                for operation in &operations {
                    self.count(&format!("operation.{}", operation.type_name()), 1);
                }
                effects.push(Effect::Accept {
                    offer_id: offer.id.clone(),
                    agent_id: offer.agent_id.clone(),
                    operations,
                });
            }
        }
        effects.extend(self.work(now_ms)?);
        Ok(effects)
    }

    pub(super) fn on_status(
        &mut self,
        status: TaskStatus,
        now_ms: u64,
    ) -> Result<Vec<Effect>, StoreError> {
        let state_name = serde_json::to_value(status.state)
            .ok()
            .and_then(|v| {
                v.as_str()
                    .map(|s| s.trim_start_matches("TASK_").to_ascii_lowercase())
            })
            .unwrap_or_default();
        self.count(&format!("task_status.{state_name}"), 1);
        let mut effects = Vec::new();
        if let Some(uuid) = &status.uuid {
            effects.push(Effect::Acknowledge {
                task_id: status.task_id.clone(),
                agent_id: status.agent_id.clone(),
                uuid: uuid.clone(),
            });
        }
        let Some(name) = self
            .tasks
            .iter()
            .find(|(_, r)| r.info.task_id == status.task_id)
            .map(|(name, _)| name.clone())
        else {
            // Not a task this scheduler knows (an older launch, or another scheduler's): kill
            // it if it still runs, so nothing runs that the state store does not account for.
            if !status.state.is_terminal() {
                effects.push(Effect::Kill {
                    task_id: status.task_id,
                    agent_id: status.agent_id,
                });
            }
            return Ok(effects);
        };
        if self.tasks[&name].is_stale(&status) {
            return Ok(effects);
        }
        state::store_task_status(&mut self.persister, &name, &status)?;
        let record = self.tasks.get_mut(&name).expect("found above");
        record.status = Some(status.clone());
        let record = record.clone();
        let instance = record.info.instance.clone();
        let terminal = status.state.is_terminal();
        let expected = terminal && self.expected_stops.remove(&status.task_id);
        let policy = self.config.backoff;
        self.crashes.entry(instance.clone()).or_default().observe(
            status.state,
            expected,
            now_ms,
            &policy,
        );
        let crash = self.crashes[&instance];
        let target = self.target_id;
        let mut handled_by_step = false;
        for kind in [PlanKind::Deploy, PlanKind::Recovery] {
            let locations: Vec<(usize, usize)> = {
                let plan = match kind {
                    PlanKind::Deploy => &self.deploy,
                    PlanKind::Recovery => &self.recovery,
                };
                plan.phases
                    .iter()
                    .enumerate()
                    .flat_map(|(p, phase)| {
                        phase
                            .steps
                            .iter()
                            .enumerate()
                            .map(move |(s, step)| (p, s, step))
                    })
                    .filter(|(_, _, step)| {
                        step.instance == instance && step.tasks.contains(&record.info.task)
                    })
                    .filter(|(_, _, step)| {
                        matches!(step.status, Status::Starting | Status::Started)
                    })
                    .map(|(p, s, _)| (p, s))
                    .collect()
            };
            for (phase, index) in locations {
                handled_by_step = true;
                let step = self.step(kind, phase, index).clone();
                if terminal && !(status.state == TaskState::Finished && record.at_goal(target)) {
                    let message = format!(
                        "{} ended ({:?}: {}); relaunching",
                        record.info.name, status.state, status.message
                    );
                    match decide(
                        &record,
                        &crash,
                        &policy,
                        self.config.failure_monitor,
                        now_ms,
                    ) {
                        RecoveryDecision::Transient { not_before_ms } if not_before_ms > now_ms => {
                            let step = self.step_mut(kind, phase, index);
                            step.set(
                                Status::Delayed,
                                format!("{message} after a crash-loop back-off"),
                            );
                            step.delayed_until_ms = Some(not_before_ms);
                        }
                        _ => self
                            .step_mut(kind, phase, index)
                            .set(Status::Pending, message),
                    }
                    continue;
                }
                let records = self.records_of(&step);
                let all = records.len() == step.tasks.len();
                // A deploy step is done on the target config; a recovery step once its tasks
                // are back, on whatever config they ran (a roll in progress updates them next).
                let done = |r: &&TaskRecord| match step.kind {
                    StepKind::Deploy => r.at_goal(target),
                    StepKind::RecoverTransient | StepKind::RecoverPermanent => {
                        r.at_goal(r.info.config_id)
                    }
                };
                if all && records.iter().all(done) {
                    self.step_mut(kind, phase, index).set(
                        Status::Complete,
                        "tasks run on the target config and are ready",
                    );
                    if self.rolling.remove(&instance) {
                        self.last_restart_completed_ms = Some(now_ms);
                    }
                } else if all
                    && records.iter().all(|r| {
                        r.status
                            .as_ref()
                            .is_some_and(|s| s.state == TaskState::Running)
                    })
                {
                    self.step_mut(kind, phase, index)
                        .set(Status::Started, "running; waiting for readiness");
                }
            }
        }
        if terminal && !expected && !handled_by_step {
            self.recover_if_needed(&record, &instance, now_ms);
        }
        effects.extend(self.work(now_ms)?);
        Ok(effects)
    }

    /// Brings back instances that are down with no plan about to bring them back: a broker a
    /// roll stopped just before a new update put it behind others in a serial plan, or one that
    /// died while the scheduler was away. Without this, a serial roll waits forever for the
    /// under-replicated partitions that the down broker causes.
    fn recover_orphans(&mut self, now_ms: u64) {
        let deploy_candidates: BTreeSet<PodInstance> = self
            .candidates()
            .into_iter()
            .filter(|(kind, _, _)| *kind == PlanKind::Deploy)
            .map(|(kind, p, s)| self.step(kind, p, s).instance.clone())
            .collect();
        let instances: BTreeSet<PodInstance> = self
            .tasks
            .values()
            .map(|r| r.info.instance.clone())
            .collect();
        for instance in instances {
            let records: Vec<TaskRecord> = self
                .tasks
                .values()
                .filter(|r| r.info.instance == instance)
                .cloned()
                .collect();
            let down = records
                .iter()
                .find(|r| r.status.as_ref().is_some_and(|s| s.state.is_terminal()));
            let Some(down) = down else { continue };
            if records.iter().any(|r| r.info.permanently_failed)
                || self.is_decommissioned(&instance)
                || deploy_candidates.contains(&instance)
                || self
                    .deploy
                    .steps()
                    .any(|(_, s)| s.instance == instance && s.status.is_running())
                || self
                    .recovery
                    .steps()
                    .any(|(_, s)| s.instance == instance && s.status != Status::Complete)
            {
                continue;
            }
            let down = down.clone();
            self.recover_if_needed(&down, &instance, now_ms);
        }
    }

    /// A task failed outside any running step: unless the deploy plan still has to bring the
    /// instance up anyway, schedule its recovery.
    fn recover_if_needed(&mut self, record: &TaskRecord, instance: &PodInstance, now_ms: u64) {
        // The deploy plan brings the instance back itself if it works on it now or is about to.
        let deploy_owns = self
            .deploy
            .steps()
            .any(|(_, s)| s.instance == *instance && s.status.is_running())
            || self.candidates().iter().any(|&(k, p, s)| {
                k == PlanKind::Deploy && self.step(k, p, s).instance == *instance
            });
        let recovery_owns = self
            .recovery
            .steps()
            .any(|(_, s)| s.instance == *instance && s.status != Status::Complete);
        if deploy_owns || recovery_owns || self.is_decommissioned(instance) {
            return;
        }
        let crash = self.crashes.get(instance).copied().unwrap_or_default();
        let decision = decide(
            record,
            &crash,
            &self.config.backoff,
            self.config.failure_monitor,
            now_ms,
        );
        let message = format!("{} failed; restarting in place", record.info.name);
        match decision {
            RecoveryDecision::None => {}
            RecoveryDecision::Transient { not_before_ms } => {
                let delayed = (not_before_ms > now_ms).then_some(not_before_ms);
                self.add_recovery_step(
                    instance,
                    StepKind::RecoverTransient,
                    delayed,
                    false,
                    &message,
                );
            }
            RecoveryDecision::Permanent => {
                self.add_recovery_step(
                    instance,
                    StepKind::RecoverPermanent,
                    None,
                    false,
                    "replacing on new resources",
                );
            }
        }
    }
}
