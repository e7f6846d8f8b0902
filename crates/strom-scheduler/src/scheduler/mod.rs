//! The scheduler core: one service's state machine, `handle(input, now) -> effects`.
//!
//! Owns the target config, the task records (mirrored to the state store), the deploy and
//! recovery plans, crash histories, the latest cluster health and the recent offer outcomes.
//! Inputs are offers, task status updates, cluster health reports and clock ticks; effects are
//! what an engine must do (accept with operations, decline, kill, acknowledge, revive,
//! suppress). Operator commands (plan commands, `pod restart|replace`, config updates) are
//! methods. No I/O besides the [`Persister`] it is given, no clock, ids from the caller: the
//! local engine, the Mesos engine and the scenario suite drive the same code.

mod cycle;
mod decommission;
mod reconcile;
mod stored;
mod uninstall;
mod views;

pub use reconcile::RECONCILE_RETRY_MS;
pub use uninstall::{UNINSTALLING_PROPERTY, UNINSTALL_AGENT_TIMEOUT_MS};
pub use views::EndpointNaming;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;
use uuid::Uuid;

use crate::config::{self, default_validators, UpdateOutcome, ValidationError};
use crate::offer::{OfferOutcome, Operation};
use crate::plan::generate::deploy_plan;
use crate::plan::roll::ClusterHealth;
use crate::plan::{element_id, Phase, Plan, PlanError, Status, Step, StepKind, Strategy};
use crate::recovery::{BackoffPolicy, CrashRecord, FailureMonitor};
use crate::spec::{ServiceSpec, StrategyKind};
use crate::state;
use crate::store::{Persister, StoreError};
use crate::task::{PodInstance, TaskRecord};

/// The property recording that the first deployment completed: from then on a spec's `update`
/// plan, if it defines one, rolls changes instead of `deploy` (the SDK's rule).
pub const DEPLOYMENT_COMPLETED_PROPERTY: &str = "deployment-completed";

/// Properties `paused-<pod instance>` mark the instances an operator paused.
pub const PAUSED_PROPERTY_PREFIX: &str = "paused-";

/// Settings of a scheduler (not part of the service spec).
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// The role reservations are made for (the SDK used `<service>-role`).
    pub role: String,
    /// Crash-loop back-off.
    pub backoff: BackoffPolicy,
    /// Automatic permanent replacement (off by default).
    pub failure_monitor: FailureMonitor,
    /// How many recent offer outcomes `/v1/debug/offers` keeps.
    pub offer_log_capacity: usize,
}

impl SchedulerConfig {
    /// Defaults for service `name`.
    pub fn for_service(name: &str) -> Self {
        SchedulerConfig {
            role: format!("{}-role", name.trim_start_matches('/').replace('/', "__")),
            backoff: BackoffPolicy::default(),
            failure_monitor: FailureMonitor::Never,
            offer_log_capacity: 200,
        }
    }
}

/// An input from an engine or a reporter.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// New offers.
    Offers(Vec<crate::offer::Offer>),
    /// A task status update.
    Status(crate::task::TaskStatus),
    /// A cluster health report (under-replicated partitions) for the roll gate.
    Health(ClusterHealth),
    /// Time passed (back-off expiries, stale health).
    Tick,
}

/// What the engine must do.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Effect {
    /// Accept an offer with these operations.
    Accept {
        offer_id: String,
        agent_id: String,
        operations: Vec<Operation>,
    },
    /// Decline an offer for this long.
    Decline {
        offer_id: String,
        refuse_seconds: u64,
    },
    /// Kill a task.
    Kill { task_id: String, agent_id: String },
    /// Acknowledge a status update.
    Acknowledge {
        task_id: String,
        agent_id: String,
        uuid: String,
    },
    /// Ask for offers again.
    Revive,
    /// Stop sending offers.
    Suppress,
    /// The service is uninstalled: tear the framework down (Mesos TEARDOWN) and exit.
    Teardown,
    /// Ask for the current status of these tasks (task id, agent id): Mesos RECONCILE.
    Reconcile { tasks: Vec<(String, String)> },
}

/// Why a scheduler could not start or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The first config was refused, so there is no target to run.
    #[error("the service spec was refused: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused(Vec<ValidationError>),
    /// No such plan.
    #[error("plan {0:?} not found")]
    NoPlan(String),
    /// A plan command named an unknown phase or step.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// No such pod instance.
    #[error("pod {0:?} not found")]
    NoPod(String),
    /// The service is being uninstalled; it takes no updates or pod commands.
    #[error("the service is being uninstalled")]
    Uninstalling,
}

/// An operator's plan command (`POST /v1/plans/<p>/<command>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanCommand {
    /// `start`: a complete plan starts over (every step PENDING, its tasks relaunched); an
    /// interrupted one proceeds; a running one is left alone (the SDK's `PlansQueries.start`).
    Start,
    /// `stop`: interrupt the plan and set every step back to PENDING; `continue` or `start`
    /// runs it again from the beginning.
    Stop,
    /// `interrupt[?phase=]`.
    Interrupt { phase: Option<String> },
    /// `continue[?phase=]`.
    Continue { phase: Option<String> },
    /// `forceComplete?phase=[&step=]`.
    ForceComplete { phase: String, step: Option<String> },
    /// `restart[?phase=[&step=]]`.
    Restart {
        phase: Option<String>,
        step: Option<String>,
    },
}

/// Which plan a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PlanKind {
    Deploy,
    Recovery,
}

/// One service's scheduler. See the module documentation.
pub struct Scheduler<P: Persister> {
    persister: P,
    config: SchedulerConfig,
    target_id: Uuid,
    spec: ServiceSpec,
    tasks: BTreeMap<String, TaskRecord>,
    deploy: Plan,
    recovery: Plan,
    health: Option<ClusterHealth>,
    /// When the last broker stopped by an update roll became ready again.
    last_restart_completed_ms: Option<u64>,
    /// Instances whose running tasks the current roll stopped and that are not back yet.
    rolling: BTreeSet<PodInstance>,
    crashes: BTreeMap<PodInstance, CrashRecord>,
    /// Task ids the scheduler killed on purpose: their end is not a failure.
    expected_stops: BTreeSet<String>,
    offer_log: VecDeque<OfferOutcome>,
    suppressed: Option<bool>,
    counters: BTreeMap<String, u64>,
    ids: Box<dyn FnMut() -> Uuid + Send>,
    /// Instances beyond their pod's count being removed; derived from the store each cycle.
    decommission: Plan,
    /// Pod instances an operator paused (persisted as `paused-<instance>` properties).
    paused: BTreeSet<PodInstance>,
    /// Whether the first deployment completed (persisted as a property).
    deploy_completed: bool,
    /// Set from a (re)subscription until every live task reported; offers wait meanwhile.
    reconciliation: Option<reconcile::Reconciliation>,
    /// Set while uninstalling; the deploy and recovery plans are then idle.
    uninstall: Option<uninstall::Uninstall>,
}

impl<P: Persister> Scheduler<P> {
    /// Starts (or resumes) a scheduler on `persister` with the freshly rendered `candidate`
    /// spec: the candidate is validated against the stored target and becomes the target if
    /// accepted; a refused candidate leaves the old target running with the errors in the
    /// deploy plan. Fails only when there is no target at all or the store fails.
    pub fn new(
        persister: P,
        candidate: &ServiceSpec,
        config: SchedulerConfig,
        ids: Box<dyn FnMut() -> Uuid + Send>,
    ) -> Result<(Self, UpdateOutcome), SchedulerError> {
        let tasks = state::load_tasks(&persister)?;
        let deploy_completed =
            state::property(&persister, DEPLOYMENT_COMPLETED_PROPERTY)?.is_some();
        let paused: BTreeSet<PodInstance> = persister
            .children(state::PROPERTIES_PATH)?
            .iter()
            .filter_map(|key| key.strip_prefix(PAUSED_PROPERTY_PREFIX))
            .filter_map(|name| {
                let (pod, index) = name.rsplit_once('-')?;
                Some(PodInstance::new(pod, index.parse().ok()?))
            })
            .collect();
        let mut scheduler = Scheduler {
            persister,
            config,
            target_id: Uuid::nil(),
            spec: candidate.clone(),
            tasks,
            deploy: empty_plan("deploy", StrategyKind::Serial),
            recovery: empty_plan("recovery", StrategyKind::Parallel),
            decommission: empty_plan("decommission", StrategyKind::Serial),
            health: None,
            last_restart_completed_ms: None,
            rolling: BTreeSet::new(),
            crashes: BTreeMap::new(),
            expected_stops: BTreeSet::new(),
            offer_log: VecDeque::new(),
            suppressed: None,
            counters: BTreeMap::new(),
            ids,
            deploy_completed,
            paused,
            reconciliation: None,
            uninstall: None,
        };
        let outcome = scheduler.apply_candidate(candidate)?;
        if outcome.target_id.is_none() {
            return Err(SchedulerError::Refused(outcome.errors));
        }
        if state::property(&scheduler.persister, uninstall::UNINSTALLING_PROPERTY)?.is_some() {
            // Resumed: the agent timeout counts from the first input after the restart.
            scheduler.uninstall = Some(scheduler.uninstall_plan(None));
            return Ok((scheduler, outcome));
        }
        // A `pod replace` survives a restart: its mark is in the stored task info.
        let replaced: BTreeSet<PodInstance> = scheduler
            .tasks
            .values()
            .filter(|r| r.info.permanently_failed)
            .map(|r| r.info.instance.clone())
            .collect();
        for instance in replaced {
            scheduler.add_recovery_step(
                &instance,
                StepKind::RecoverPermanent,
                None,
                false,
                "replace requested before a scheduler restart",
            );
        }
        Ok((scheduler, outcome))
    }

    /// `update start`: validates `candidate` against the target; accepted, it becomes the
    /// target and the deploy plan rolls the pods whose spec changed; refused, the old target
    /// stays and the deploy plan shows the errors (HTTP 417).
    pub fn update(&mut self, candidate: &ServiceSpec) -> Result<UpdateOutcome, SchedulerError> {
        if self.uninstall.is_some() {
            return Err(SchedulerError::Uninstalling);
        }
        self.apply_candidate(candidate)
    }

    fn apply_candidate(
        &mut self,
        candidate: &ServiceSpec,
    ) -> Result<UpdateOutcome, SchedulerError> {
        let old_target = config::target_id(&self.persister)?;
        let in_use: BTreeSet<Uuid> = self.tasks.values().map(|r| r.info.config_id).collect();
        let new_id = (self.ids)();
        let validators = default_validators();
        let outcome = config::update(&mut self.persister, candidate, new_id, &validators, &in_use)?;
        let Some((target_id, spec)) = config::target(&self.persister)? else {
            return Ok(outcome);
        };
        if outcome.changed {
            // Tasks of unchanged pods now count as running the new target: no restart.
            let relabelled: Vec<_> = self
                .tasks
                .values_mut()
                .filter(|r| {
                    Some(r.info.config_id) == old_target
                        && outcome.equivalent_pods.contains(&r.info.instance.pod)
                })
                .map(|r| {
                    r.info.config_id = target_id;
                    r.info.clone()
                })
                .collect();
            for info in &relabelled {
                let json = serde_json::to_vec(info).expect("a TaskInfo always serializes");
                self.persister.set(
                    &format!("{}/{}/TaskInfo", state::TASKS_PATH, info.name),
                    json,
                )?;
            }
        }
        let keep_interrupt = self.deploy.interrupted && !outcome.changed;
        self.target_id = target_id;
        self.spec = spec;
        let plan_name = if self.deploy_completed && self.spec.plans.get("update").is_some() {
            "update"
        } else {
            "deploy"
        };
        self.deploy = deploy_plan(&self.spec, plan_name, self.target_id, &self.tasks);
        self.deploy.interrupted = keep_interrupt;
        self.deploy.errors = outcome.errors.iter().map(ToString::to_string).collect();
        self.sync_deploy_steps();
        let decommissioned: Vec<String> = self
            .recovery
            .phases
            .iter()
            .filter(|p| p.steps.iter().any(|s| self.is_decommissioned(&s.instance)))
            .map(|p| p.name.clone())
            .collect();
        self.recovery
            .phases
            .retain(|p| !decommissioned.contains(&p.name));
        Ok(outcome)
    }

    /// Sets deploy steps whose tasks already launched on the target to STARTING or STARTED (a
    /// scheduler restarted mid-launch resumes instead of relaunching).
    fn sync_deploy_steps(&mut self) {
        let target = self.target_id;
        for phase in &mut self.deploy.phases {
            for step in &mut phase.steps {
                if step.status != Status::Pending || step.restart_requested {
                    continue;
                }
                let records: Vec<&TaskRecord> = step
                    .tasks
                    .iter()
                    .filter_map(|t| self.tasks.get(&step.instance.task_name(t)))
                    .collect();
                let launched = records.len() == step.tasks.len()
                    && records.iter().all(|r| {
                        r.info.config_id == target && r.is_live() && !r.info.permanently_failed
                    });
                if !launched {
                    continue;
                }
                let running = records.iter().all(|r| {
                    r.status
                        .as_ref()
                        .is_some_and(|s| s.state == crate::task::TaskState::Running)
                });
                if running {
                    step.set(Status::Started, "running; waiting for readiness");
                } else {
                    step.set(Status::Starting, "launched; waiting for the task to run");
                }
            }
        }
    }

    /// Feeds one input; returns the effects for the engine. Store failures are returned (the
    /// driver retries or exits; the store stays consistent, see [`Persister::apply`]).
    pub fn handle(&mut self, input: Input, now_ms: u64) -> Result<Vec<Effect>, StoreError> {
        if let Input::Status(status) = &input {
            self.reconciled(&status.task_id);
        }
        if self.reconciliation.is_some() {
            return self.while_reconciling(input, now_ms);
        }
        if self.uninstall.is_some() {
            return match input {
                Input::Offers(offers) => self.uninstall_offers(offers, now_ms),
                Input::Status(status) => self.uninstall_status(status, now_ms),
                Input::Health(_) | Input::Tick => self.uninstall_work(now_ms),
            };
        }
        match input {
            Input::Offers(offers) => self.on_offers(offers, now_ms),
            Input::Status(status) => self.on_status(status, now_ms),
            Input::Health(health) => {
                self.health = Some(health);
                self.work(now_ms)
            }
            Input::Tick => self.work(now_ms),
        }
    }

    /// Before reconciliation is done: statuses are recorded, offers declined short, and
    /// unanswered tasks asked again.
    fn while_reconciling(&mut self, input: Input, now_ms: u64) -> Result<Vec<Effect>, StoreError> {
        let mut effects = Vec::new();
        match input {
            Input::Offers(offers) => {
                self.count("offers.received", offers.len() as u64);
                for offer in offers {
                    self.count("declines.short", 1);
                    effects.push(Effect::Decline {
                        offer_id: offer.id,
                        refuse_seconds: cycle::DECLINE_SHORT_SECONDS,
                    });
                }
            }
            Input::Status(status) if self.uninstall.is_some() => {
                return self.uninstall_status(status, now_ms)
            }
            Input::Status(status) => {
                // Record it (and react: a task lost while the scheduler was down is recovered);
                // the offers that launch anything wait for the gate.
                return self.on_status(status, now_ms);
            }
            Input::Health(health) => self.health = Some(health),
            Input::Tick => {}
        }
        effects.extend(self.reconcile_retry(now_ms));
        Ok(effects)
    }

    /// Applies an operator's plan command; the next input acts on it.
    pub fn plan_command(&mut self, plan: &str, command: PlanCommand) -> Result<(), SchedulerError> {
        let plan = match plan {
            name if name == self.deploy.name => &mut self.deploy,
            "recovery" => &mut self.recovery,
            other => return Err(SchedulerError::NoPlan(other.to_string())),
        };
        match command {
            PlanCommand::Start => {
                if plan.status() == Status::Complete {
                    plan.restart(None, None)?;
                }
                plan.proceed(None)?;
            }
            PlanCommand::Stop => {
                plan.restart(None, None)?;
                plan.interrupt(None)?;
            }
            PlanCommand::Interrupt { phase } => plan.interrupt(phase.as_deref())?,
            PlanCommand::Continue { phase } => plan.proceed(phase.as_deref())?,
            PlanCommand::ForceComplete { phase, step } => {
                plan.force_complete(&phase, step.as_deref())?
            }
            PlanCommand::Restart { phase, step } => {
                plan.restart(phase.as_deref(), step.as_deref())?
            }
        }
        Ok(())
    }

    /// `pod restart <pod>`: kill the instance's tasks and relaunch them in place (same
    /// reservations and volume). Returns the task names.
    pub fn restart_pod(
        &mut self,
        pod: &str,
        now_ms: u64,
    ) -> Result<(Vec<String>, Vec<Effect>), SchedulerError> {
        let (instance, tasks) = self.instance_tasks(pod)?;
        self.add_recovery_step(
            &instance,
            StepKind::RecoverTransient,
            None,
            true,
            "restart requested by an operator",
        );
        let names = tasks.iter().map(|t| instance.task_name(t)).collect();
        Ok((names, self.work(now_ms)?))
    }

    /// `pod pause <pod>`: relaunch the instance in place with its command replaced by a sleep
    /// (sandbox and volume kept for inspection); it stays paused across restarts and updates
    /// until `pod resume`. Returns the task names.
    pub fn pause_pod(
        &mut self,
        pod: &str,
        now_ms: u64,
    ) -> Result<(Vec<String>, Vec<Effect>), SchedulerError> {
        self.set_paused(pod, true, now_ms)
    }

    /// `pod resume <pod>`: relaunch a paused instance with its real command.
    pub fn resume_pod(
        &mut self,
        pod: &str,
        now_ms: u64,
    ) -> Result<(Vec<String>, Vec<Effect>), SchedulerError> {
        self.set_paused(pod, false, now_ms)
    }

    fn set_paused(
        &mut self,
        pod: &str,
        paused: bool,
        now_ms: u64,
    ) -> Result<(Vec<String>, Vec<Effect>), SchedulerError> {
        let (instance, tasks) = self.instance_tasks(pod)?;
        let key = format!("{PAUSED_PROPERTY_PREFIX}{}", instance.name());
        if paused {
            state::set_property(&mut self.persister, &key, b"PAUSED")?;
            self.paused.insert(instance.clone());
        } else {
            self.persister
                .delete(&format!("{}/{key}", state::PROPERTIES_PATH))?;
            self.paused.remove(&instance);
        }
        let message = if paused {
            "pause requested by an operator"
        } else {
            "resume requested by an operator"
        };
        self.add_recovery_step(&instance, StepKind::RecoverTransient, None, true, message);
        let names = tasks.iter().map(|t| instance.task_name(t)).collect();
        Ok((names, self.work(now_ms)?))
    }

    /// Whether an operator paused `instance`.
    pub fn is_paused(&self, instance: &PodInstance) -> bool {
        self.paused.contains(instance)
    }

    /// `pod replace <pod>`: mark the instance's tasks permanently failed, kill them, and
    /// relaunch the pod on new reservations wherever placement allows; the old volume is
    /// destroyed when its reservation is next offered. Returns the task names.
    pub fn replace_pod(
        &mut self,
        pod: &str,
        now_ms: u64,
    ) -> Result<(Vec<String>, Vec<Effect>), SchedulerError> {
        let (instance, tasks) = self.instance_tasks(pod)?;
        for record in self
            .tasks
            .values_mut()
            .filter(|r| r.info.instance == instance)
        {
            record.info.permanently_failed = true;
            let json = serde_json::to_vec(&record.info).expect("a TaskInfo always serializes");
            self.persister.set(
                &format!("{}/{}/TaskInfo", state::TASKS_PATH, record.info.name),
                json,
            )?;
        }
        // A step already launching the instance would wait for it forever: start it over.
        for plan in [&mut self.deploy, &mut self.recovery] {
            for phase in &mut plan.phases {
                for step in phase.steps.iter_mut().filter(|s| s.instance == instance) {
                    if step.status.is_running() || step.status == Status::Delayed {
                        step.set(Status::Pending, "pod replace requested by an operator");
                    }
                }
            }
        }
        self.add_recovery_step(
            &instance,
            StepKind::RecoverPermanent,
            None,
            false,
            "replace requested by an operator",
        );
        let names = tasks.iter().map(|t| instance.task_name(t)).collect();
        Ok((names, self.work(now_ms)?))
    }

    fn instance_tasks(&self, pod: &str) -> Result<(PodInstance, Vec<String>), SchedulerError> {
        if self.uninstall.is_some() {
            return Err(SchedulerError::Uninstalling);
        }
        let records: Vec<&TaskRecord> = self
            .tasks
            .values()
            .filter(|r| r.info.instance.name() == pod)
            .collect();
        let Some(first) = records.first() else {
            return Err(SchedulerError::NoPod(pod.to_string()));
        };
        Ok((
            first.info.instance.clone(),
            records.iter().map(|r| r.info.task.clone()).collect(),
        ))
    }

    /// Adds (or replaces) the recovery phase of `instance`.
    fn add_recovery_step(
        &mut self,
        instance: &PodInstance,
        kind: StepKind,
        delayed_until_ms: Option<u64>,
        restart_requested: bool,
        message: &str,
    ) {
        if self.is_decommissioned(instance) {
            return;
        }
        let tasks: Vec<String> = match self.spec.pod(&instance.pod) {
            Some(pod) => pod.tasks.names().map(str::to_string).collect(),
            None => return,
        };
        let phase_name = instance.name();
        let step_name = format!("{phase_name}:[{}]", tasks.join(","));
        let mut step = Step {
            id: element_id(&["recovery", &phase_name, &step_name]),
            name: step_name,
            instance: instance.clone(),
            tasks,
            kind,
            status: Status::Pending,
            interrupted: false,
            message: message.to_string(),
            errors: Vec::new(),
            delayed_until_ms: None,
            restart_requested,
        };
        if let Some(until) = delayed_until_ms {
            step.set(
                Status::Delayed,
                format!("{message}; crash-loop back-off until {until} ms"),
            );
            step.delayed_until_ms = Some(until);
        }
        self.recovery.phases.retain(|p| p.name != phase_name);
        self.recovery.phases.push(Phase {
            id: element_id(&["recovery", &phase_name]),
            name: phase_name,
            strategy: Strategy::new(StrategyKind::Serial),
            interrupted: false,
            steps: vec![step],
        });
    }

    /// A plan by name (`deploy` — or `update` once deployed, when the spec defines one —,
    /// `recovery`, `decommission`, `uninstall`).
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        match name {
            name if name == self.deploy.name => Some(&self.deploy),
            "recovery" => Some(&self.recovery),
            "decommission" => Some(&self.decommission),
            "uninstall" => self.uninstall.as_ref().map(|u| &u.plan),
            _ => None,
        }
    }

    /// The plan names (`GET /v1/plans`).
    pub fn plan_names(&self) -> Vec<&str> {
        let mut names = vec![self.deploy.name.as_str(), "recovery", "decommission"];
        if self.uninstall.is_some() {
            names.push("uninstall");
        }
        names
    }

    /// The target config id.
    pub fn target_id(&self) -> Uuid {
        self.target_id
    }

    /// The target spec.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// Task records by name.
    pub fn tasks(&self) -> &BTreeMap<String, TaskRecord> {
        &self.tasks
    }

    /// Recent offer outcomes, oldest first (`/v1/debug/offers`).
    pub fn offer_outcomes(&self) -> impl Iterator<Item = &OfferOutcome> {
        self.offer_log.iter()
    }

    /// Counters with the SDK's metric names (`offers.received`, `operation.reserve`, …).
    pub fn counters(&self) -> &BTreeMap<String, u64> {
        &self.counters
    }

    /// The state store.
    pub fn persister(&self) -> &P {
        &self.persister
    }

    /// Gives the state store back (a scheduler "killed" in a test).
    pub fn into_persister(self) -> P {
        self.persister
    }

    fn count(&mut self, name: &str, by: u64) {
        *self.counters.entry(name.to_string()).or_default() += by;
    }
}

fn empty_plan(name: &str, strategy: StrategyKind) -> Plan {
    Plan {
        name: name.to_string(),
        strategy: Strategy::new(strategy),
        phases: Vec::new(),
        errors: Vec::new(),
        interrupted: false,
    }
}
