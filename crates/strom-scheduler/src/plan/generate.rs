//! Generating plans from a spec and the recorded tasks.
//!
//! A deploy step starts COMPLETE when its tasks already reached their goal on the target config
//! (the SDK's rule), which is what makes an update restart only the pods whose spec changed:
//! unchanged instances were relabelled to the new target and regenerate as COMPLETE.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::plan::{element_id, Phase, Plan, Status, Step, StepKind, Strategy};
use crate::spec::{PhaseSpec, PodSpec, ServiceSpec, StrategyKind};
use crate::task::{PodInstance, TaskRecord};

/// The plan named `plan_name` of `spec` (`deploy` without a `plans` entry gets one serial phase
/// per pod), with step statuses from `records` (by task name) against config `target`.
pub fn deploy_plan(
    spec: &ServiceSpec,
    plan_name: &str,
    target: Uuid,
    records: &BTreeMap<String, TaskRecord>,
) -> Plan {
    let (strategy, phase_specs): (StrategyKind, Vec<(String, PhaseSpec)>) =
        match spec.plans.get(plan_name) {
            Some(plan) => (
                plan.strategy,
                plan.phases
                    .iter()
                    .map(|(name, phase)| (name.to_string(), phase.clone()))
                    .collect(),
            ),
            None => (
                StrategyKind::Serial,
                spec.pods
                    .names()
                    .map(|pod| {
                        (
                            pod.to_string(),
                            PhaseSpec {
                                strategy: StrategyKind::Serial,
                                pod: pod.to_string(),
                                steps: None,
                            },
                        )
                    })
                    .collect(),
            ),
        };
    let phases = phase_specs
        .iter()
        .map(|(phase_name, phase)| {
            let pod = spec
                .pod(&phase.pod)
                .expect("ServiceSpec::check ensures phases name existing pods");
            let mut steps = Vec::new();
            for index in 0..pod.count {
                for tasks in task_groups(pod, phase, index) {
                    let instance = PodInstance::new(&phase.pod, index);
                    let mut step = deploy_step(plan_name, phase_name, instance, tasks);
                    if step_at_goal(&step, target, records) {
                        step.set(Status::Complete, "tasks run on the target config");
                    }
                    steps.push(step);
                }
            }
            Phase {
                id: element_id(&[plan_name, phase_name]),
                name: phase_name.clone(),
                strategy: Strategy::new(phase.strategy),
                interrupted: false,
                steps,
            }
        })
        .collect();
    Plan {
        name: plan_name.to_string(),
        strategy: Strategy::new(strategy),
        phases,
        errors: Vec::new(),
        interrupted: false,
    }
}

/// A PENDING deploy step for `tasks` of `instance`.
pub fn deploy_step(plan: &str, phase: &str, instance: PodInstance, tasks: Vec<String>) -> Step {
    let name = format!("{}:[{}]", instance.name(), tasks.join(","));
    Step {
        id: element_id(&[plan, phase, &name]),
        name,
        instance,
        tasks,
        kind: StepKind::Deploy,
        status: Status::Pending,
        interrupted: false,
        message: "waiting to start".into(),
        errors: Vec::new(),
        delayed_until_ms: None,
        restart_requested: false,
    }
}

/// The task groups, one step each, for instance `index`: the phase's `steps` rule for that index
/// or `default`, else all of the pod's tasks in one step.
fn task_groups(pod: &PodSpec, phase: &PhaseSpec, index: u32) -> Vec<Vec<String>> {
    let all = || vec![pod.tasks.names().map(str::to_string).collect::<Vec<_>>()];
    let Some(rules) = &phase.steps else {
        return all();
    };
    let key = index.to_string();
    rules
        .iter()
        .find_map(|rule| rule.get(&key))
        .or_else(|| rules.iter().find_map(|rule| rule.get("default")))
        .cloned()
        .unwrap_or_else(all)
}

/// Whether every task of `step` reached its goal on `target`.
pub fn step_at_goal(step: &Step, target: Uuid, tasks: &BTreeMap<String, TaskRecord>) -> bool {
    step.tasks.iter().all(|task| {
        tasks
            .get(&step.instance.task_name(task))
            .is_some_and(|record| record.at_goal(target))
    })
}
