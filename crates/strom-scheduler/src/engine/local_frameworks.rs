//! The local engine's frameworks: several services on one engine, as several frameworks on one
//! Mesos master. Each registered framework has its own status updates, offers, filters,
//! suppression, checks and secrets; its effects touch only its own tasks and offers; the free
//! agents are offered in DRF order (`allocator.rs`) once per [`LocalEngine::round`]. A
//! framework sees the reservations of its own role only, besides the unreserved resources.
//!
//! [`FrameworkHandle`] is one service's [`Engine`] over a shared engine; the engine used as an
//! [`Engine`] itself serves [`SOLE`] alone (every reservation offered to it, declines capped at
//! 1 s since nobody else could use the resources). Not owned here: the tasks' processes and the
//! ledger (`local.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Framework, LocalEngine, SOLE};
use crate::drf::{Amounts, DrfError};
use crate::engine::allocator::{self, add_amounts, scalar_amounts, FrameworkOffers};
use crate::engine::{Engine, EngineSecrets};
use crate::offer::{Offer, Operation};
use crate::scheduler::{Effect, Input};
use crate::task::{TaskState, TaskStatus};

/// An offer made and not answered yet.
#[derive(Clone, Debug)]
pub(super) struct Outstanding {
    agent: String,
    framework: String,
    amounts: Amounts,
}

/// Declines of the engine serving one framework are capped at this (recovery must not wait an
/// hour for resources nobody else wants).
const SOLE_REFUSAL_CAP_MS: u64 = 1_000;

impl LocalEngine {
    pub(super) fn framework_mut(&mut self, name: &str) -> &mut Framework {
        self.frameworks.entry(name.to_string()).or_default()
    }

    fn refusal_cap_ms(&self) -> Option<u64> {
        let sole = self.frameworks.get(SOLE).is_some_and(|f| f.registered);
        sole.then_some(SOLE_REFUSAL_CAP_MS)
    }

    /// Registers the framework of a service sharing the engine: offers go to it in DRF order
    /// under `role` (its reservations' role: it is offered those and no other role's), its
    /// tasks' secrets come from `secrets`. The sole framework stops getting offers, and
    /// declines are honoured for their full filter, as Mesos honours them.
    pub fn register_framework(&mut self, name: &str, role: &str, secrets: Option<EngineSecrets>) {
        if let Some(sole) = self.frameworks.get_mut(SOLE) {
            sole.registered = false;
        }
        let framework = self.framework_mut(name);
        framework.offers = FrameworkOffers::new(Some(role.to_string()));
        framework.secrets = secrets;
        framework.registered = true;
    }

    /// Sets `role`'s DRF weight (Mesos's `--weights`; 1 unless set).
    pub fn set_weight(&mut self, role: &str, weight: f64) -> Result<(), DrfError> {
        crate::drf::DrfSorter::default().set_weight(role, weight)?;
        self.weights.insert(role.to_string(), weight);
        Ok(())
    }

    /// Forgets a framework (its service was uninstalled): kills what it still runs, drops its
    /// tasks, updates and offers. The other frameworks' tasks are untouched.
    pub fn remove_framework(&mut self, name: &str) {
        let ids: Vec<String> = self
            .ledger
            .tasks
            .iter()
            .filter(|(_, t)| t.framework == name)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(task) = self.ledger.tasks.remove(&id) {
                if let (Some(pid), false) = (task.pid, task.state.is_terminal()) {
                    super::process::signal_group(pid, libc::SIGKILL);
                }
            }
            self.unacked.remove(&id);
            self.children.remove(&id);
            self.readiness.remove(&id);
            self.health.remove(&id);
        }
        self.offers.retain(|_, o| o.framework != name);
        self.frameworks.remove(name);
        self.save();
    }

    /// The process ids of `framework`'s live tasks, by task name.
    pub fn framework_pids(&self, framework: &str) -> BTreeMap<String, u32> {
        self.ledger
            .tasks
            .values()
            .filter(|t| !t.state.is_terminal() && t.framework == framework)
            .filter_map(|t| Some((t.info.name.clone(), t.pid?)))
            .collect()
    }

    fn totals(&self) -> Amounts {
        let mut totals = Amounts::new();
        for agent in &self.config.agents {
            let mounts: f64 = agent.mounts.iter().map(|m| m.size_mb).sum();
            let amounts = [
                ("cpus".to_string(), agent.cpus),
                ("mem".to_string(), agent.mem),
                ("disk".to_string(), agent.disk + mounts),
            ];
            add_amounts(&mut totals, &amounts.into_iter().collect());
        }
        totals
    }

    /// Per framework: the amounts of each live task and each outstanding offer.
    fn allocations(&self) -> BTreeMap<String, Vec<Amounts>> {
        let mut allocations: BTreeMap<String, Vec<Amounts>> = BTreeMap::new();
        for task in self.ledger.tasks.values() {
            if !task.state.is_terminal() {
                allocations
                    .entry(task.framework.clone())
                    .or_default()
                    .push(scalar_amounts(&task.info.resources));
            }
        }
        for offer in self.offers.values() {
            allocations
                .entry(offer.framework.clone())
                .or_default()
                .push(offer.amounts.clone());
        }
        allocations
    }

    /// One engine round: reaps exited tasks and runs checks, queues updates due to be sent
    /// again, and offers every agent without an outstanding offer to the framework DRF picks.
    pub fn round(&mut self, now_ms: u64) {
        let updates = self.updates;
        self.watch(now_ms);
        let due: Vec<(String, TaskStatus)> = self
            .unacked
            .iter_mut()
            .filter(|(_, (_, sent_ms))| now_ms >= *sent_ms + super::RESEND_MS)
            .map(|(id, (status, sent_ms))| {
                *sent_ms = now_ms;
                (id.clone(), status.clone())
            })
            .collect();
        for (id, status) in due {
            let framework = self
                .ledger
                .tasks
                .get(&id)
                .map_or(SOLE.to_string(), |t| t.framework.clone());
            self.framework_mut(&framework).outbox.push(status);
        }
        if self.updates != updates {
            self.save();
        }
        self.make_offers(now_ms);
    }

    fn make_offers(&mut self, now_ms: u64) {
        let free: Vec<String> = self
            .config
            .agents
            .iter()
            .filter(|a| !self.offers.values().any(|o| o.agent == a.id))
            .map(|a| a.id.clone())
            .collect();
        let wanting: BTreeMap<String, FrameworkOffers> = self
            .frameworks
            .iter()
            .filter(|(_, f)| f.registered && !f.offers.suppressed)
            .map(|(name, f)| (name.clone(), f.offers.clone()))
            .collect();
        if free.is_empty() || wanting.is_empty() {
            return;
        }
        let decided = allocator::allocate(
            &free,
            &wanting,
            &self.allocations(),
            &self.weights,
            self.totals(),
            now_ms,
            |agent, framework| {
                let role = wanting[framework].role.as_deref();
                let agent = self.config.agents.iter().find(|a| a.id == agent);
                agent.map_or_else(Amounts::new, |a| {
                    scalar_amounts(&self.offer_of(a, role, 0).resources)
                })
            },
        );
        for (agent_id, framework) in decided {
            let role = wanting[&framework].role.clone();
            let agent = self
                .config
                .agents
                .iter()
                .find(|a| a.id == agent_id)
                .cloned()
                .expect("a configured agent");
            let offer = self.offer(&agent, role.as_deref());
            self.offers.insert(
                offer.id.clone(),
                Outstanding {
                    agent: agent_id,
                    framework: framework.clone(),
                    amounts: scalar_amounts(&offer.resources),
                },
            );
            self.framework_mut(&framework).offered.push(offer);
        }
    }

    /// What `framework` was sent since its last call: status updates, then offers.
    pub fn take_inputs(&mut self, framework: &str) -> Vec<Input> {
        let state = self.framework_mut(framework);
        let mut inputs: Vec<Input> = state.outbox.drain(..).map(Input::Status).collect();
        let offers: Vec<Offer> = state.offered.drain(..).collect();
        if !offers.is_empty() {
            inputs.push(Input::Offers(offers));
        }
        inputs
    }

    /// Carries out `framework`'s effects, in order; they touch its own tasks and offers only.
    pub fn apply_for(&mut self, framework: &str, effects: &[Effect], now_ms: u64) {
        let cap = self.refusal_cap_ms();
        let own_task = |engine: &LocalEngine, id: &str| {
            engine
                .ledger
                .tasks
                .get(id)
                .is_some_and(|t| t.framework == framework)
        };
        for effect in effects {
            match effect {
                Effect::Accept {
                    offer_id,
                    agent_id,
                    operations,
                } => {
                    let valid = self
                        .offers
                        .get(offer_id)
                        .is_some_and(|o| o.framework == framework && o.agent == *agent_id);
                    if !valid {
                        // A stale offer: Mesos drops its launches.
                        let dropped: Vec<TaskStatus> = operations
                            .iter()
                            .flat_map(|operation| match operation {
                                Operation::LaunchGroup { tasks } => tasks.as_slice(),
                                _ => &[],
                            })
                            .map(|info| TaskStatus {
                                task_id: info.task_id.clone(),
                                agent_id: agent_id.clone(),
                                state: TaskState::Dropped,
                                message: format!("offer {offer_id} is no longer valid"),
                                ready: false,
                                uuid: None,
                            })
                            .collect();
                        self.framework_mut(framework).outbox.extend(dropped);
                        continue;
                    }
                    self.offers.remove(offer_id);
                    for operation in operations {
                        self.apply_operation(framework, agent_id, operation, now_ms);
                    }
                }
                Effect::Decline {
                    offer_id,
                    refuse_seconds,
                } => {
                    let owned = self
                        .offers
                        .get(offer_id)
                        .is_some_and(|o| o.framework == framework);
                    if let Some(offer) = owned.then(|| self.offers.remove(offer_id)).flatten() {
                        self.framework_mut(framework).offers.decline(
                            &offer.agent,
                            *refuse_seconds,
                            now_ms,
                            cap,
                        );
                    }
                }
                Effect::Kill { task_id, .. } => {
                    if own_task(self, task_id) {
                        self.kill(task_id, now_ms);
                    }
                }
                Effect::Acknowledge { task_id, uuid, .. } => {
                    let acked = own_task(self, task_id)
                        && self
                            .unacked
                            .get(task_id)
                            .is_some_and(|(s, _)| s.uuid.as_deref() == Some(uuid.as_str()));
                    if acked {
                        self.unacked.remove(task_id);
                        if self
                            .ledger
                            .tasks
                            .get(task_id)
                            .is_some_and(|t| t.state.is_terminal())
                        {
                            self.ledger.tasks.remove(task_id);
                        }
                    }
                }
                Effect::Revive => self.framework_mut(framework).offers.revive(),
                Effect::Suppress => self.framework_mut(framework).offers.suppress(),
                Effect::Reconcile { tasks } => self.answer_reconcile(framework, tasks),
                Effect::Teardown => {
                    let ids: Vec<String> = self
                        .ledger
                        .tasks
                        .iter()
                        .filter(|(_, t)| t.framework == framework)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in ids {
                        self.kill(&id, now_ms);
                    }
                }
            }
        }
        if !effects.is_empty() {
            self.save();
        }
    }

    fn answer_reconcile(&mut self, framework: &str, tasks: &[(String, String)]) {
        let mut answers = Vec::new();
        for (task_id, agent_id) in tasks {
            let known = self
                .ledger
                .tasks
                .get(task_id)
                .filter(|t| t.framework == framework);
            let (state, ready, message) = match known {
                Some(task) => (task.state, task.ready, "reconciled"),
                None => (TaskState::Lost, false, "unknown to the local engine"),
            };
            answers.push(TaskStatus {
                task_id: task_id.clone(),
                agent_id: agent_id.clone(),
                state,
                message: message.into(),
                ready,
                uuid: None,
            });
        }
        self.framework_mut(framework).outbox.extend(answers);
    }
}

impl Engine for LocalEngine {
    fn poll(&mut self, now_ms: u64) -> Vec<Input> {
        self.round(now_ms);
        self.take_inputs(SOLE)
    }

    fn apply(&mut self, effects: &[Effect], now_ms: u64) {
        self.apply_for(SOLE, effects, now_ms);
    }
}

/// One service's [`Engine`] over a local engine several services share: `poll` takes what the
/// engine's last [`LocalEngine::round`] left for this framework (the driver runs a round before
/// polling the services), `apply` carries out its effects.
#[derive(Clone)]
pub struct FrameworkHandle {
    engine: Arc<Mutex<LocalEngine>>,
    name: String,
}

impl FrameworkHandle {
    /// The handle of framework `name` (registered with [`LocalEngine::register_framework`]).
    pub fn new(engine: Arc<Mutex<LocalEngine>>, name: &str) -> FrameworkHandle {
        FrameworkHandle {
            engine,
            name: name.to_string(),
        }
    }

    /// The framework's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shared engine, locked.
    pub fn engine(&self) -> MutexGuard<'_, LocalEngine> {
        self.engine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Engine for FrameworkHandle {
    fn poll(&mut self, _now_ms: u64) -> Vec<Input> {
        let name = self.name.clone();
        self.engine().take_inputs(&name)
    }

    fn apply(&mut self, effects: &[Effect], now_ms: u64) {
        let name = self.name.clone();
        self.engine().apply_for(&name, effects, now_ms);
    }
}
