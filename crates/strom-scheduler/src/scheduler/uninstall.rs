//! Uninstall (`SDK_UNINSTALL`): kill every task, destroy every volume and release every
//! reservation of this service, then wipe the state store and tear the framework down.
//!
//! The `uninstall` plan has the SDK's phases: `kill-tasks` (a step per task),
//! `unreserve-resources-<agent>` (a step per reservation) and `deregister-service`. While
//! uninstalling, every reservation of the service's role **and** principal in any offer is
//! destroyed and unreserved, whether or not a step names it. A reservation is crossed out in the
//! stored task info before its UNRESERVE leaves, so a restarted scheduler does not wait for a
//! resource it already released. An agent that never offers its reservations again (it is gone)
//! has its phase force-completed after [`UNINSTALL_AGENT_TIMEOUT_MS`], with a message naming the
//! agent, so uninstall always finishes (dcos-commons PR 2257's lesson).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::{Effect, Scheduler};
use crate::offer::cleanup::release_unexpected;
use crate::offer::{Offer, Operation};
use crate::plan::{element_id, Phase, Plan, Status, Step, StepKind, Strategy};
use crate::spec::StrategyKind;
use crate::state;
use crate::store::{Persister, StoreError};
use crate::task::{PodInstance, TaskStatus};

/// The property that marks an uninstall in progress (survives scheduler restarts).
pub const UNINSTALLING_PROPERTY: &str = "uninstalling";

/// How long an agent may stay silent before its reservations are given up on.
pub const UNINSTALL_AGENT_TIMEOUT_MS: u64 = 10 * 60 * 1000;

/// The uninstall's progress.
#[derive(Clone, Debug)]
pub(super) struct Uninstall {
    pub(super) plan: Plan,
    /// When this scheduler began (or resumed) the uninstall; agent timeouts count from here.
    started_ms: Option<u64>,
    /// Whether the framework was torn down and the store wiped.
    pub(super) finished: bool,
}

fn step(name: String, instance: PodInstance, status: Status, message: &str) -> Step {
    Step {
        id: element_id(&["uninstall", &name]),
        name,
        instance,
        tasks: Vec::new(),
        kind: StepKind::Deploy,
        status,
        interrupted: false,
        message: message.to_string(),
        errors: Vec::new(),
        delayed_until_ms: None,
        restart_requested: false,
    }
}

fn phase(name: &str, steps: Vec<Step>) -> Phase {
    Phase {
        id: element_id(&["uninstall", name]),
        name: name.to_string(),
        strategy: Strategy::new(StrategyKind::Parallel),
        interrupted: false,
        steps,
    }
}

impl<P: Persister> Scheduler<P> {
    /// Starts uninstalling (idempotent). The next inputs kill, release and finally wipe.
    pub fn uninstall(&mut self, now_ms: u64) -> Result<Vec<Effect>, StoreError> {
        if self.uninstall.is_none() {
            state::set_property(&mut self.persister, UNINSTALLING_PROPERTY, b"true")?;
            self.uninstall = Some(self.uninstall_plan(Some(now_ms)));
        }
        self.uninstall_work(now_ms)
    }

    /// Whether an uninstall is in progress or done.
    pub fn is_uninstalling(&self) -> bool {
        self.uninstall.is_some()
    }

    /// Whether the uninstall finished: tasks gone, reservations released (or given up on with a
    /// message), store wiped, framework torn down.
    pub fn is_uninstalled(&self) -> bool {
        self.uninstall.as_ref().is_some_and(|u| u.finished)
    }

    pub(super) fn uninstall_plan(&self, now_ms: Option<u64>) -> Uninstall {
        let mut kill_steps = Vec::new();
        let mut by_agent: BTreeMap<String, Vec<Step>> = BTreeMap::new();
        let mut seen: BTreeSet<Uuid> = BTreeSet::new();
        for record in self.tasks.values() {
            let status = if record.is_live() {
                Status::Pending
            } else {
                Status::Complete
            };
            kill_steps.push(step(
                format!("kill-task-{}", record.info.name),
                record.info.instance.clone(),
                status,
                if record.is_live() {
                    "waiting to kill"
                } else {
                    "not running"
                },
            ));
            for resource in &record.info.resources {
                let Some(id) = resource.resource_id() else {
                    continue;
                };
                if seen.insert(id) {
                    by_agent
                        .entry(record.info.agent_id.clone())
                        .or_default()
                        .push(step(
                            format!("unreserve-{id}"),
                            record.info.instance.clone(),
                            Status::Pending,
                            &format!(
                                "waiting for agent {} to offer {} {id}",
                                record.info.agent_id, resource.name
                            ),
                        ));
                }
            }
        }
        let mut phases = vec![phase("kill-tasks", kill_steps)];
        for (agent, steps) in by_agent {
            phases.push(phase(&format!("unreserve-resources-{agent}"), steps));
        }
        phases.push(phase(
            "deregister-service",
            vec![step(
                "deregister".into(),
                PodInstance::new("service", 0),
                Status::Pending,
                "waiting for the other phases",
            )],
        ));
        Uninstall {
            plan: Plan {
                name: "uninstall".into(),
                strategy: Strategy::new(StrategyKind::Serial),
                phases,
                errors: Vec::new(),
                interrupted: false,
            },
            started_ms: now_ms,
            finished: false,
        }
    }

    fn uninstall_steps_mut(&mut self) -> impl Iterator<Item = (&str, &mut Step)> {
        self.uninstall
            .as_mut()
            .expect("uninstalling")
            .plan
            .phases
            .iter_mut()
            .flat_map(|p| {
                let name = p.name.as_str();
                p.steps.iter_mut().map(move |s| (name, s))
            })
    }

    /// Kills what runs, times out silent agents, and finishes when everything is done.
    pub(super) fn uninstall_work(&mut self, now_ms: u64) -> Result<Vec<Effect>, StoreError> {
        let mut effects = Vec::new();
        if self.is_uninstalled() {
            return Ok(effects);
        }
        let live: Vec<(String, String)> = self
            .tasks
            .values()
            .filter(|r| r.is_live())
            .map(|r| (r.info.task_id.clone(), r.info.agent_id.clone()))
            .collect();
        for (task_id, agent_id) in live {
            if self.expected_stops.insert(task_id.clone()) {
                effects.push(Effect::Kill { task_id, agent_id });
            }
        }
        let started = *self
            .uninstall
            .as_mut()
            .expect("uninstalling")
            .started_ms
            .get_or_insert(now_ms);
        let timed_out = now_ms.saturating_sub(started) >= UNINSTALL_AGENT_TIMEOUT_MS;
        let tasks = self.tasks.clone();
        for (phase, step) in self.uninstall_steps_mut() {
            if step.status == Status::Complete {
                continue;
            }
            if phase == "kill-tasks" {
                let name = step.name.trim_start_matches("kill-task-");
                if tasks.get(name).is_none_or(|r| !r.is_live()) {
                    step.set(Status::Complete, "killed");
                } else {
                    step.set(Status::Starting, "kill sent");
                }
            } else if let Some(agent) = phase.strip_prefix("unreserve-resources-") {
                if timed_out {
                    step.set(
                        Status::Complete,
                        format!(
                            "agent {agent} did not offer this reservation within {} min; forced \
                             complete: release it by hand if the agent comes back",
                            UNINSTALL_AGENT_TIMEOUT_MS / 60_000
                        ),
                    );
                }
            }
        }
        let uninstall = self.uninstall.as_ref().expect("uninstalling");
        let rest_done = uninstall
            .plan
            .phases
            .iter()
            .filter(|p| p.name != "deregister-service")
            .all(|p| p.steps.iter().all(|s| s.status == Status::Complete));
        if rest_done {
            // Wipe everything under the service root, then let the engine tear down.
            self.persister.delete("")?;
            let uninstall = self.uninstall.as_mut().expect("uninstalling");
            for phase in &mut uninstall.plan.phases {
                for step in &mut phase.steps {
                    if step.status != Status::Complete {
                        step.set(Status::Complete, "state store wiped; framework torn down");
                    }
                }
            }
            uninstall.finished = true;
            effects.push(Effect::Teardown);
        } else if self.suppressed != Some(false) {
            self.suppressed = Some(false);
            effects.push(Effect::Revive);
        }
        Ok(effects)
    }

    pub(super) fn uninstall_offers(
        &mut self,
        offers: Vec<Offer>,
        now_ms: u64,
    ) -> Result<Vec<Effect>, StoreError> {
        self.count("offers.received", offers.len() as u64);
        let mut effects = Vec::new();
        let principal = self.spec.scheduler.principal.clone();
        for offer in offers {
            let operations =
                release_unexpected(&offer, &self.config.role, &principal, &BTreeSet::new());
            let released: BTreeSet<Uuid> = operations
                .iter()
                .flat_map(|op| match op {
                    Operation::Unreserve { resources } => {
                        resources.iter().filter_map(|r| r.resource_id()).collect()
                    }
                    _ => Vec::new(),
                })
                .collect();
            if operations.is_empty() {
                self.count("declines.short", 1);
                effects.push(Effect::Decline {
                    offer_id: offer.id,
                    refuse_seconds: super::cycle::DECLINE_SHORT_SECONDS,
                });
                continue;
            }
            // Cross the released reservations out of the stored task infos first.
            self.cross_out_released(&released)?;
            for (_, step) in self.uninstall_steps_mut() {
                let id = step
                    .name
                    .strip_prefix("unreserve-")
                    .and_then(|id| Uuid::parse_str(id).ok());
                if id.is_some_and(|id| released.contains(&id)) {
                    step.set(
                        Status::Complete,
                        format!("unreserved on {}", offer.hostname),
                    );
                }
            }
            for operation in &operations {
                self.count(&format!("operation.{}", operation.type_name()), 1);
            }
            effects.push(Effect::Accept {
                offer_id: offer.id,
                agent_id: offer.agent_id,
                operations,
            });
        }
        effects.extend(self.uninstall_work(now_ms)?);
        Ok(effects)
    }

    pub(super) fn uninstall_status(
        &mut self,
        status: TaskStatus,
        now_ms: u64,
    ) -> Result<Vec<Effect>, StoreError> {
        let mut effects = Vec::new();
        if let Some(uuid) = &status.uuid {
            effects.push(Effect::Acknowledge {
                task_id: status.task_id.clone(),
                agent_id: status.agent_id.clone(),
                uuid: uuid.clone(),
            });
        }
        let name = self
            .tasks
            .iter()
            .find(|(_, r)| r.info.task_id == status.task_id)
            .map(|(name, _)| name.clone());
        match name {
            Some(name) if !self.is_uninstalled() && !self.tasks[&name].is_stale(&status) => {
                state::store_task_status(&mut self.persister, &name, &status)?;
                self.tasks.get_mut(&name).expect("found").status = Some(status);
            }
            Some(_) => {}
            None if !status.state.is_terminal() => {
                effects.push(Effect::Kill {
                    task_id: status.task_id,
                    agent_id: status.agent_id,
                });
            }
            None => {}
        }
        effects.extend(self.uninstall_work(now_ms)?);
        Ok(effects)
    }
}
