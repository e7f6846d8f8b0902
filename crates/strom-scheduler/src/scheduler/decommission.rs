//! Decommission: pod instances beyond a shrunk `count` (allowed only with
//! `allow-decommission`) are killed, their reservations released and their records erased,
//! highest index first, one instance at a time (the SDK's `decommission` plan: steps
//! `kill-<task>`, `unreserve-<resource id>`, `erase-<task>`).
//!
//! The plan is derived from the state store on every cycle (a task's kill step is done when it no
//! longer runs, an unreserve step when its resource was crossed out of the task info, the erase
//! when the records are gone), so a restarted scheduler carries on where it stopped. For Kafka,
//! move the brokers' partitions away first (`kafka-reassign-partitions`): decommissioning deletes
//! their data.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{Effect, Scheduler};
use crate::plan::{element_id, Phase, Plan, Status, Step, StepKind, Strategy};
use crate::spec::StrategyKind;
use crate::state;
use crate::store::{Persister, StoreError};
use crate::task::{PodInstance, TaskRecord};

fn step(instance: &PodInstance, name: String, status: Status, message: &str) -> Step {
    Step {
        id: element_id(&["decommission", &instance.name(), &name]),
        name,
        instance: instance.clone(),
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

impl<P: Persister> Scheduler<P> {
    /// Whether `instance` is beyond its pod's count (or its pod was removed).
    pub(super) fn is_decommissioned(&self, instance: &PodInstance) -> bool {
        self.spec
            .pod(&instance.pod)
            .is_none_or(|pod| instance.index >= pod.count)
    }

    fn decommissioned_instances(&self) -> Vec<PodInstance> {
        let mut instances: Vec<PodInstance> = self
            .tasks
            .values()
            .map(|r| r.info.instance.clone())
            .filter(|i| self.is_decommissioned(i))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        instances.sort_by(|a, b| {
            (&a.pod, std::cmp::Reverse(a.index)).cmp(&(&b.pod, std::cmp::Reverse(b.index)))
        });
        instances
    }

    /// Kills, erases and rebuilds the decommission plan; returns the kills.
    pub(super) fn decommission_work(
        &mut self,
        effects: &mut Vec<Effect>,
    ) -> Result<(), StoreError> {
        let instances = self.decommissioned_instances();
        // Serial: only the first instance acts.
        if let Some(instance) = instances.first() {
            let records: Vec<TaskRecord> = self
                .tasks
                .values()
                .filter(|r| r.info.instance == *instance)
                .cloned()
                .collect();
            for record in records.iter().filter(|r| r.is_live()) {
                if self.expected_stops.insert(record.info.task_id.clone()) {
                    effects.push(Effect::Kill {
                        task_id: record.info.task_id.clone(),
                        agent_id: record.info.agent_id.clone(),
                    });
                }
            }
            let released = records.iter().all(|r| {
                !r.is_live() && r.info.resources.iter().all(|x| x.resource_id().is_none())
            });
            if released {
                let names: Vec<String> = records.iter().map(|r| r.info.name.clone()).collect();
                state::delete_tasks(&mut self.persister, &names)?;
                for name in &names {
                    self.tasks.remove(name);
                }
                self.recovery.phases.retain(|p| p.name != instance.name());
            }
        }
        self.decommission = self.decommission_plan();
        Ok(())
    }

    /// Whether a decommission waits for offers to release reservations.
    pub(super) fn decommission_wants_offers(&self) -> bool {
        self.decommission
            .steps()
            .any(|(_, s)| s.name.starts_with("unreserve-") && s.status == Status::Prepared)
    }

    fn decommission_plan(&self) -> Plan {
        let phases = self
            .decommissioned_instances()
            .into_iter()
            .enumerate()
            .map(|(position, instance)| {
                let records: Vec<&TaskRecord> = self
                    .tasks
                    .values()
                    .filter(|r| r.info.instance == instance)
                    .collect();
                let all_stopped = records.iter().all(|r| !r.is_live());
                let mut steps = Vec::new();
                for record in &records {
                    let (status, message) = match (record.is_live(), position) {
                        (false, _) => (Status::Complete, "not running"),
                        (true, 0) => (Status::Starting, "kill sent"),
                        (true, _) => (Status::Pending, "waiting for the instances before it"),
                    };
                    steps.push(step(
                        &instance,
                        format!("kill-{}", record.info.name),
                        status,
                        message,
                    ));
                }
                let mut seen: BTreeSet<Uuid> = BTreeSet::new();
                for record in &records {
                    for id in record.info.resources.iter().filter_map(|r| r.resource_id()) {
                        if seen.insert(id) {
                            let (status, message) = if all_stopped && position == 0 {
                                (Status::Prepared, "waiting for an offer holding it")
                            } else {
                                (Status::Pending, "waiting for the tasks to stop")
                            };
                            steps.push(step(&instance, format!("unreserve-{id}"), status, message));
                        }
                    }
                }
                for record in &records {
                    steps.push(step(
                        &instance,
                        format!("erase-{}", record.info.name),
                        Status::Pending,
                        "waiting to erase",
                    ));
                }
                Phase {
                    id: element_id(&["decommission", &instance.name()]),
                    name: instance.name(),
                    strategy: Strategy::new(StrategyKind::Serial),
                    interrupted: false,
                    steps,
                }
            })
            .collect();
        Plan {
            name: "decommission".into(),
            strategy: Strategy::new(StrategyKind::Serial),
            phases,
            errors: Vec::new(),
            interrupted: false,
        }
    }

    /// Crosses reservations released by an ACCEPT out of the stored task infos (before the
    /// ACCEPT leaves), so decommission and uninstall know what is already gone.
    pub(super) fn cross_out_released(
        &mut self,
        released: &BTreeSet<Uuid>,
    ) -> Result<(), StoreError> {
        if released.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::new();
        for record in self.tasks.values_mut() {
            let before = record.info.resources.len();
            record
                .info
                .resources
                .retain(|r| r.resource_id().is_none_or(|id| !released.contains(&id)));
            if record.info.resources.len() != before {
                let json = serde_json::to_vec(&record.info).expect("a TaskInfo always serializes");
                writes.push((
                    format!("{}/{}/TaskInfo", state::TASKS_PATH, record.info.name),
                    Some(json),
                ));
            }
        }
        self.persister.apply(writes)
    }
}
