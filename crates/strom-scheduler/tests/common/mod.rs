//! A fake cluster for the scenario suite: agents with resources and a reservation ledger, that
//! apply the scheduler's operations the way a Mesos agent would and produce offers and task
//! status updates. Deterministic; the test decides when tasks run, become ready or fail.

#![allow(dead_code)]

use std::collections::BTreeMap;

use strom_scheduler::offer::{Offer, Operation};
use strom_scheduler::plan::roll::ClusterHealth;
use strom_scheduler::plan::Status;
use strom_scheduler::resources::{DiskSource, Resource, ResourceValue};
use strom_scheduler::scheduler::{Effect, Input, Scheduler, SchedulerConfig};
use strom_scheduler::spec::kafka::render_kafka_service;
use strom_scheduler::spec::ServiceSpec;
use strom_scheduler::store::{MemPersister, Persister};
use strom_scheduler::task::{TaskInfo, TaskState, TaskStatus};
use uuid::Uuid;

/// One agent.
pub struct Agent {
    pub id: String,
    pub hostname: String,
    pub zone: Option<String>,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub ports: (u16, u16),
    /// Reserved resources (with volumes once created), by resource id.
    pub reserved: BTreeMap<Uuid, Resource>,
}

/// A launched task as the agent sees it.
#[derive(Clone, Debug)]
pub struct AgentTask {
    pub info: TaskInfo,
    pub state: TaskState,
}

/// The fake cluster.
pub struct Cluster {
    pub agents: Vec<Agent>,
    pub tasks: BTreeMap<String, AgentTask>,
    /// Every LAUNCH_GROUP's task infos, in order.
    pub launches: Vec<TaskInfo>,
    /// Every operation applied, in order.
    pub operations: Vec<Operation>,
    pub next_offer: u64,
    pub next_status: u64,
    /// Whether launched tasks report RUNNING and ready at once.
    pub auto_run: bool,
    pub suppressed: bool,
    /// Set by a TEARDOWN.
    pub torn_down: bool,
}

impl Cluster {
    /// `count` agents `agent-<i>` on `host-<i>`, in zones `zone-<i % 3>`.
    pub fn new(count: usize) -> Self {
        Cluster {
            agents: (0..count)
                .map(|i| Agent {
                    id: format!("agent-{i}"),
                    hostname: format!("host-{i}"),
                    zone: Some(format!("zone-{}", i % 3)),
                    cpus: 4.0,
                    mem: 8192.0,
                    disk: 20_000.0,
                    ports: (31000, 31009),
                    reserved: BTreeMap::new(),
                })
                .collect(),
            tasks: BTreeMap::new(),
            launches: Vec::new(),
            operations: Vec::new(),
            next_offer: 0,
            next_status: 0,
            auto_run: true,
            suppressed: false,
            torn_down: false,
        }
    }

    fn in_use(&self, agent: &str) -> Vec<Uuid> {
        self.tasks
            .values()
            .filter(|t| t.info.agent_id == agent && !t.state.is_terminal())
            .flat_map(|t| t.info.resources.iter().filter_map(Resource::resource_id))
            .collect()
    }

    /// One offer per agent: unreserved leftovers and reservations no live task uses.
    pub fn offers(&mut self) -> Vec<Offer> {
        let mut offers = Vec::new();
        for index in 0..self.agents.len() {
            let in_use = self.in_use(&self.agents[index].id);
            let agent = &self.agents[index];
            let reserved_amount = |name: &str| -> f64 {
                agent
                    .reserved
                    .values()
                    .filter(|r| r.name == name)
                    .map(Resource::amount)
                    .sum()
            };
            let reserved_ports: Vec<u16> = agent
                .reserved
                .values()
                .filter(|r| r.name == "ports")
                .flat_map(|r| match &r.value {
                    ResourceValue::Ranges(ranges) => {
                        ranges.iter().flat_map(|x| x.begin..=x.end).collect()
                    }
                    ResourceValue::Scalar(_) => Vec::new(),
                })
                .collect();
            let mut resources = vec![
                Resource::scalar("cpus", agent.cpus - reserved_amount("cpus")),
                Resource::scalar("mem", agent.mem - reserved_amount("mem")),
                Resource::disk(agent.disk - reserved_amount("disk"), DiskSource::Root),
            ];
            let free: Vec<(u16, u16)> = (agent.ports.0..=agent.ports.1)
                .filter(|p| !reserved_ports.contains(p))
                .map(|p| (p, p))
                .collect();
            resources.push(Resource::ports(&free));
            resources.extend(
                agent
                    .reserved
                    .iter()
                    .filter(|(id, _)| !in_use.contains(id))
                    .map(|(_, r)| r.clone()),
            );
            self.next_offer += 1;
            offers.push(Offer {
                id: format!("offer-{}", self.next_offer),
                agent_id: agent.id.clone(),
                hostname: agent.hostname.clone(),
                ip: "127.0.0.1".into(),
                zone: agent.zone.clone(),
                region: None,
                attributes: BTreeMap::new(),
                resources,
            });
        }
        offers
    }

    fn agent_mut(&mut self, id: &str) -> &mut Agent {
        self.agents
            .iter_mut()
            .find(|a| a.id == id)
            .expect("known agent")
    }

    /// A status for a task, as the agent would send it.
    pub fn status(&mut self, task_id: &str, state: TaskState, ready: bool) -> TaskStatus {
        let task = self.tasks.get_mut(task_id).expect("known task");
        assert!(
            !task.state.is_terminal() || state.is_terminal(),
            "the fake cluster would revive {task_id} ({:?} -> {state:?})",
            task.state
        );
        task.state = state;
        self.next_status += 1;
        TaskStatus {
            task_id: task_id.to_string(),
            agent_id: task.info.agent_id.clone(),
            state,
            message: format!("{state:?}"),
            ready,
            uuid: Some(format!("status-{}", self.next_status)),
        }
    }

    /// Applies effects; returns the statuses they cause (kills, and runs when `auto_run`).
    pub fn apply(&mut self, effects: &[Effect]) -> Vec<TaskStatus> {
        let mut statuses = Vec::new();
        for effect in effects {
            match effect {
                Effect::Accept {
                    agent_id,
                    operations,
                    ..
                } => {
                    for operation in operations {
                        self.operations.push(operation.clone());
                        match operation {
                            Operation::Reserve { resources }
                            | Operation::Create { volumes: resources } => {
                                let agent = self.agent_mut(agent_id);
                                for r in resources {
                                    agent
                                        .reserved
                                        .insert(r.resource_id().expect("reserved"), r.clone());
                                }
                            }
                            Operation::Destroy { volumes } => {
                                let agent = self.agent_mut(agent_id);
                                for v in volumes {
                                    let id = v.resource_id().expect("reserved");
                                    let r = agent.reserved.get_mut(&id).expect("volume exists");
                                    let disk = r.disk.as_mut().expect("disk");
                                    disk.persistence_id = None;
                                    disk.container_path = None;
                                }
                            }
                            Operation::Unreserve { resources } => {
                                let agent = self.agent_mut(agent_id);
                                for r in resources {
                                    agent.reserved.remove(&r.resource_id().expect("reserved"));
                                }
                            }
                            Operation::LaunchGroup { tasks } => {
                                for info in tasks {
                                    let agent = self.agent_mut(agent_id);
                                    for r in &info.resources {
                                        let id =
                                            r.resource_id().expect("tasks use reserved resources");
                                        assert!(
                                            agent.reserved.contains_key(&id),
                                            "{} uses unreserved {id}",
                                            info.name
                                        );
                                    }
                                    self.launches.push(info.clone());
                                    self.tasks.insert(
                                        info.task_id.clone(),
                                        AgentTask {
                                            info: info.clone(),
                                            state: TaskState::Staging,
                                        },
                                    );
                                    if self.auto_run {
                                        statuses.push(self.status(
                                            &info.task_id,
                                            TaskState::Running,
                                            true,
                                        ));
                                    }
                                }
                            }
                        }
                    }
                }
                Effect::Kill { task_id, .. } => {
                    if self
                        .tasks
                        .get(task_id)
                        .is_some_and(|t| !t.state.is_terminal())
                    {
                        statuses.push(self.status(task_id, TaskState::Killed, false));
                    }
                }
                Effect::Suppress => self.suppressed = true,
                Effect::Revive => self.suppressed = false,
                Effect::Teardown => self.torn_down = true,
                Effect::Reconcile { tasks } => {
                    for (task_id, agent_id) in tasks {
                        let status = match self.tasks.get(task_id) {
                            Some(task) => {
                                let state = task.state;
                                self.status(task_id, state, state == TaskState::Running)
                            }
                            None => {
                                self.next_status += 1;
                                TaskStatus {
                                    task_id: task_id.clone(),
                                    agent_id: agent_id.clone(),
                                    state: TaskState::Lost,
                                    message: "unknown to the agent".into(),
                                    ready: false,
                                    uuid: None,
                                }
                            }
                        };
                        statuses.push(status);
                    }
                }
                Effect::Decline { .. } | Effect::Acknowledge { .. } => {}
            }
        }
        statuses
    }

    /// The live task named `name` (`kafka-0-broker`).
    pub fn live(&self, name: &str) -> Option<&AgentTask> {
        self.tasks
            .values()
            .find(|t| t.info.name == name && !t.state.is_terminal())
    }

    /// Resource ids reserved on all agents.
    pub fn reserved_ids(&self) -> Vec<Uuid> {
        self.agents
            .iter()
            .flat_map(|a| a.reserved.keys().copied())
            .collect()
    }
}

/// Renders the shipped Kafka service from `options`.
pub fn kafka(options: &str) -> ServiceSpec {
    let env: BTreeMap<String, String> = [
        ("STROM_BIN", "/usr/bin/strom"),
        ("KAFKA_ZOOKEEPER_URI", "127.0.0.1:2181"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    render_kafka_service(options, &env)
        .expect("options render")
        .spec
}

/// Deterministic ids.
pub fn ids(seed: u128) -> Box<dyn FnMut() -> Uuid + Send> {
    let mut next = seed << 64;
    Box::new(move || {
        next += 1;
        Uuid::from_u128(next)
    })
}

/// A scheduler for `spec` on `store`.
pub fn scheduler(spec: &ServiceSpec, store: MemPersister, seed: u128) -> Scheduler<MemPersister> {
    let config = SchedulerConfig::for_service(&spec.name);
    Scheduler::new(store, spec, config, ids(seed))
        .expect("spec accepted")
        .0
}

/// Feeds `input`, applies the effects to the cluster and feeds back the statuses they cause,
/// until quiet (bounded). Returns every effect.
pub fn drive<P: Persister>(
    s: &mut Scheduler<P>,
    cluster: &mut Cluster,
    input: Input,
    now_ms: u64,
) -> Vec<Effect> {
    let mut all = Vec::new();
    let mut inputs = vec![input];
    for _ in 0..100 {
        let Some(input) = inputs.pop() else {
            return all;
        };
        // STROM_SIM_TRACE=<substring of a task id> prints that task's statuses and effects.
        let trace = std::env::var("STROM_SIM_TRACE").ok();
        if let (Some(filter), Input::Status(status)) = (&trace, &input) {
            if status.task_id.contains(filter.as_str()) {
                eprintln!(
                    "trace: status {} {:?} at {now_ms}",
                    status.task_id, status.state
                );
            }
        }
        let effects = s.handle(input, now_ms).expect("the store does not fail");
        if let Some(filter) = &trace {
            for effect in &effects {
                if format!("{effect:?}").contains(filter.as_str()) {
                    eprintln!("trace: effect {effect:?}");
                }
            }
        }
        for status in cluster.apply(&effects) {
            inputs.insert(0, Input::Status(status));
        }
        all.extend(effects);
    }
    panic!("scheduler did not settle within 100 inputs");
}

/// One offer round: every agent offers, effects applied, statuses fed back.
pub fn offer_round<P: Persister>(
    s: &mut Scheduler<P>,
    cluster: &mut Cluster,
    now_ms: u64,
) -> Vec<Effect> {
    let offers = cluster.offers();
    drive(s, cluster, Input::Offers(offers), now_ms)
}

/// Step statuses of a plan, in order.
pub fn steps<P: Persister>(s: &Scheduler<P>, plan: &str) -> Vec<(String, Status)> {
    s.plan(plan)
        .expect("plan exists")
        .steps()
        .map(|(_, step)| (step.name.clone(), step.display_status()))
        .collect()
}

/// Just the statuses.
pub fn statuses<P: Persister>(s: &Scheduler<P>, plan: &str) -> Vec<Status> {
    steps(s, plan)
        .into_iter()
        .map(|(_, status)| status)
        .collect()
}

/// The operation types of `effects`' accepts, per accept.
pub fn accepted_operations(effects: &[Effect]) -> Vec<Vec<&'static str>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Accept { operations, .. } => {
                Some(operations.iter().map(Operation::type_name).collect())
            }
            _ => None,
        })
        .collect()
}

/// The task ids killed by `effects`.
pub fn kills(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Kill { task_id, .. } => Some(task_id.split("__").next().unwrap().to_string()),
            _ => None,
        })
        .collect()
}

/// A scheduler with the Kafka service fully deployed on `agents` agents.
pub fn deployed(options: &str, agents: usize) -> (Scheduler<MemPersister>, Cluster) {
    let mut s = scheduler(&kafka(options), MemPersister::new(), 1);
    let mut cluster = Cluster::new(agents);
    for round in 0..10 {
        offer_round(&mut s, &mut cluster, 1_000 * round);
    }
    assert_eq!(
        s.plan("deploy").unwrap().status(),
        Status::Complete,
        "{:?}",
        steps(&s, "deploy")
    );
    (s, cluster)
}

/// Restarts a scheduler on `store` the way an engine would: construct, subscribe, apply the
/// reconciliation request and feed back the answers.
pub fn restart(
    spec: &ServiceSpec,
    store: MemPersister,
    seed: u128,
    cluster: &mut Cluster,
    now_ms: u64,
) -> Scheduler<MemPersister> {
    let mut s = scheduler(spec, store, seed);
    let effects = s.subscribed(now_ms);
    for status in cluster.apply(&effects) {
        drive(&mut s, cluster, Input::Status(status), now_ms);
    }
    s
}

/// The task id of the live task `name`.
pub fn live_task_id(cluster: &Cluster, name: &str) -> String {
    cluster.live(name).expect("task runs").info.task_id.clone()
}

/// The persistence id of the live task `name`'s volume.
pub fn volume_id(cluster: &Cluster, name: &str) -> String {
    let task = &cluster.live(name).expect("task runs").info;
    task.resources
        .iter()
        .find_map(|r| r.disk.as_ref().and_then(|d| d.persistence_id.clone()))
        .expect("a volume")
}

/// A cluster health report input.
pub fn health(under_replicated_partitions: u32, observed_at_ms: u64) -> Input {
    Input::Health(ClusterHealth {
        under_replicated_partitions,
        observed_at_ms,
    })
}
