//! Seeded simulation of the scheduler core on the fake cluster: random offers (random agents,
//! random order), task launches that run, fail or hang, scheduler restarts from the store,
//! health reports, clock jumps, `pod replace|restart` and config updates. After every event it
//! checks the safety invariants; after the chaos it lets the cluster settle and checks that the
//! service converged with nothing leaked.
//!
//! `STROM_SIM_SEED=<n>` replays one seed; `STROM_SIM_SEEDS=<count>` runs more (default 60). A
//! failure prints the seed and the event log.

mod common;

use std::collections::BTreeMap;

use common::*;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use strom_scheduler::plan::roll::ClusterHealth;
use strom_scheduler::plan::Status;
use strom_scheduler::scheduler::{Input, Scheduler};
use strom_scheduler::spec::ServiceSpec;
use strom_scheduler::store::MemPersister;
use strom_scheduler::task::TaskState;

struct World {
    rng: ChaCha8Rng,
    scheduler: Option<Scheduler<MemPersister>>,
    cluster: Cluster,
    spec: ServiceSpec,
    now_ms: u64,
    restarts: u128,
    log: Vec<String>,
    partitions: u64,
    count: u64,
}

impl World {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }

    fn s(&mut self) -> &mut Scheduler<MemPersister> {
        self.scheduler.as_mut().expect("scheduler present")
    }

    fn feed(&mut self, input: Input) {
        let now = self.now_ms;
        let mut scheduler = self.scheduler.take().expect("scheduler present");
        drive(&mut scheduler, &mut self.cluster, input, now);
        self.scheduler = Some(scheduler);
    }

    fn offers(&mut self) {
        let mut offers = self.cluster.offers();
        // A random subset, in random order.
        let keep = 1 + self.below(offers.len() as u64) as usize;
        for i in (1..offers.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            offers.swap(i, j);
        }
        offers.truncate(keep);
        self.log.push(format!(
            "offers from {:?}",
            offers
                .iter()
                .map(|o| o.agent_id.clone())
                .collect::<Vec<_>>()
        ));
        self.feed(Input::Offers(offers));
    }

    fn random_task(&mut self, states: &[TaskState]) -> Option<String> {
        let ids: Vec<String> = self
            .cluster
            .tasks
            .values()
            .filter(|t| states.contains(&t.state))
            .map(|t| t.info.task_id.clone())
            .collect();
        if ids.is_empty() {
            return None;
        }
        Some(ids[self.below(ids.len() as u64) as usize].clone())
    }

    fn event(&mut self) {
        match self.below(100) {
            0..=29 => self.offers(),
            30..=49 => {
                if let Some(id) = self.random_task(&[TaskState::Staging]) {
                    self.log.push(format!("{id} runs"));
                    let status = self.cluster.status(&id, TaskState::Running, false);
                    self.feed(Input::Status(status));
                }
            }
            50..=64 => {
                if let Some(id) = self.random_task(&[TaskState::Running]) {
                    self.log.push(format!("{id} ready"));
                    let status = self.cluster.status(&id, TaskState::Running, true);
                    self.feed(Input::Status(status));
                }
            }
            65..=71 => {
                if let Some(id) = self.random_task(&[TaskState::Staging, TaskState::Running]) {
                    let state = if self.below(2) == 0 {
                        TaskState::Failed
                    } else {
                        TaskState::Lost
                    };
                    self.log.push(format!("{id} {state:?}"));
                    let status = self.cluster.status(&id, state, false);
                    self.feed(Input::Status(status));
                }
            }
            72..=77 => {
                self.restarts += 1;
                self.log.push("scheduler restarts".into());
                let store = self.scheduler.take().expect("present").into_persister();
                let now = self.now_ms;
                // Sometimes the answers to the reconciliation arrive later, with offers first.
                let mut s = scheduler(&self.spec, store, 1000 + self.restarts);
                let effects = s.subscribed(now);
                self.scheduler = Some(s);
                let answers = self.cluster.apply(&effects);
                if self.below(2) == 0 {
                    self.offers();
                }
                for status in answers {
                    self.feed(Input::Status(status));
                }
            }
            78..=85 => {
                let under_replicated_partitions = if self.below(3) == 0 { 2 } else { 0 };
                self.log
                    .push(format!("health {under_replicated_partitions}"));
                let now = self.now_ms;
                self.feed(Input::Health(ClusterHealth {
                    under_replicated_partitions,
                    observed_at_ms: now,
                }));
            }
            86..=91 => {
                self.now_ms += self.below(30_000);
                self.log.push(format!("tick at {}", self.now_ms));
                self.feed(Input::Tick);
            }
            92..=94 => {
                let pod = format!("kafka-{}", self.below(self.count));
                let command = ["replace", "restart", "pause", "resume"][self.below(4) as usize];
                self.log.push(format!("{command} {pod}"));
                let now = self.now_ms;
                let result = match command {
                    "replace" => self.s().replace_pod(&pod, now),
                    "restart" => self.s().restart_pod(&pod, now),
                    "pause" => self.s().pause_pod(&pod, now),
                    _ => self.s().resume_pod(&pod, now),
                };
                if let Ok((_, effects)) = result {
                    let statuses = self.cluster.apply(&effects);
                    for status in statuses {
                        self.feed(Input::Status(status));
                    }
                }
            }
            _ => {
                if self.below(2) == 0 {
                    self.partitions = 1 + self.below(3);
                } else {
                    self.count = 2 + self.below(3);
                }
                let options = format!(
                    r#"{{"kafka":{{"num_partitions":{}}},"brokers":{{"count":{},"allow_decommission":true}}}}"#,
                    self.partitions, self.count
                );
                self.log.push(format!(
                    "update num_partitions={} count={}",
                    self.partitions, self.count
                ));
                self.spec = kafka(&options);
                let spec = self.spec.clone();
                let outcome = self.s().update(&spec).expect("store works");
                assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
            }
        }
    }

    /// Safety: one live task per name, MAX_PER hostname 1, and the store knows every live task.
    fn check(&self) {
        let mut names: BTreeMap<&str, &str> = BTreeMap::new();
        let mut hosts: BTreeMap<&str, &str> = BTreeMap::new();
        for task in self
            .cluster
            .tasks
            .values()
            .filter(|t| !t.state.is_terminal())
        {
            if let Some(other) = names.insert(&task.info.name, &task.info.task_id) {
                panic!(
                    "two live {}: {other} and {}",
                    task.info.name, task.info.task_id
                );
            }
            if let Some(other) = hosts.insert(&task.info.hostname, &task.info.name) {
                panic!(
                    "{} and {other} both on {} (MAX_PER 1)",
                    task.info.name, task.info.hostname
                );
            }
            let known = self
                .scheduler
                .as_ref()
                .unwrap()
                .tasks()
                .get(&task.info.name);
            assert_eq!(
                known.map(|r| r.info.task_id.as_str()),
                Some(task.info.task_id.as_str()),
                "the store does not know live task {}",
                task.info.task_id
            );
        }
    }

    /// Uninstall with random partial offers and scheduler restarts; it must leave nothing.
    fn uninstall(&mut self) {
        self.log.push("uninstall".into());
        let now = self.now_ms;
        let effects = self.s().uninstall(now).expect("store works");
        for status in self.cluster.apply(&effects) {
            self.feed(Input::Status(status));
        }
        for _ in 0..40 {
            if self.cluster.torn_down {
                break;
            }
            self.now_ms += 1_000;
            match self.below(4) {
                0 => {
                    self.log.push("scheduler restarts".into());
                    self.restarts += 1;
                    let store = self.scheduler.take().expect("present").into_persister();
                    self.scheduler = Some(scheduler(&self.spec, store, 1000 + self.restarts));
                    self.feed(Input::Tick);
                }
                _ => self.offers(),
            }
        }
        assert!(self.cluster.torn_down, "uninstall did not finish");
        assert!(
            self.cluster.reserved_ids().is_empty(),
            "reservations left after uninstall"
        );
        assert!(
            self.cluster.tasks.values().all(|t| t.state.is_terminal()),
            "a task survived"
        );
        assert!(
            self.scheduler
                .as_ref()
                .unwrap()
                .persister()
                .paths()
                .is_empty(),
            "state left"
        );
    }

    /// Calm: every launched task runs and is ready, health is fine, offers come, time passes.
    fn settle(&mut self) {
        for _ in 0..60 {
            self.now_ms += 400_000;
            let now = self.now_ms;
            self.feed(Input::Health(ClusterHealth {
                under_replicated_partitions: 0,
                observed_at_ms: now,
            }));
            let starting: Vec<String> = self
                .cluster
                .tasks
                .values()
                .filter(|t| matches!(t.state, TaskState::Staging | TaskState::Running))
                .map(|t| t.info.task_id.clone())
                .collect();
            for id in starting {
                if self.cluster.tasks[&id].state.is_terminal() {
                    continue; // killed by an earlier status of this round
                }
                let status = self.cluster.status(&id, TaskState::Running, true);
                self.feed(Input::Status(status));
            }
            let offers = self.cluster.offers();
            self.feed(Input::Offers(offers));
            self.check();
        }
    }
}

fn run(seed: u64) {
    let spec = kafka("");
    let mut world = World {
        rng: ChaCha8Rng::seed_from_u64(seed),
        scheduler: Some(scheduler(&spec, MemPersister::new(), 1)),
        cluster: Cluster::new(5),
        spec,
        now_ms: 0,
        restarts: 0,
        log: Vec::new(),
        partitions: 1,
        count: 3,
    };
    world.cluster.auto_run = false;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..250 {
            world.event();
            world.check();
        }
        world.settle();
        let s = world.scheduler.as_ref().unwrap();
        let deploy = s.plan("deploy").unwrap();
        assert_eq!(deploy.status(), Status::Complete, "{:?}", deploy.to_json());
        let recovery = s.plan("recovery").unwrap();
        assert!(
            recovery
                .steps()
                .all(|(_, step)| step.status == Status::Complete),
            "{:?}",
            recovery.to_json()
        );
        let target = s.target_id();
        for index in 0..world.count {
            let name = format!("kafka-{index}-broker");
            assert!(world.cluster.live(&name).is_some(), "{name} is not running");
            assert!(
                s.tasks()[&name].at_goal(target),
                "{name} not at the target config"
            );
        }
        let owned: Vec<_> = s
            .tasks()
            .values()
            .filter(|r| !r.info.permanently_failed)
            .flat_map(|r| r.info.resources.iter().filter_map(|x| x.resource_id()))
            .collect();
        for id in world.cluster.reserved_ids() {
            assert!(owned.contains(&id), "reservation {id} leaked");
        }
        world.uninstall();
    }));
    if let Err(panic) = result {
        let tail: Vec<&String> = world
            .log
            .iter()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        eprintln!("simulation failed: replay with STROM_SIM_SEED={seed}\nlast events:\n{tail:#?}");
        if std::env::var("STROM_SIM_SEED").is_ok() {
            for agent in &world.cluster.agents {
                eprintln!(
                    "{} reserved {:?}",
                    agent.id,
                    agent.reserved.keys().collect::<Vec<_>>()
                );
            }
            for task in world.cluster.tasks.values() {
                let ids: Vec<_> = task
                    .info
                    .resources
                    .iter()
                    .filter_map(|r| r.resource_id())
                    .collect();
                eprintln!(
                    "cluster {} {:?} on {} uses {ids:?}",
                    task.info.task_id, task.state, task.info.agent_id
                );
            }
            if let Some(s) = &world.scheduler {
                eprintln!("recovery plan: {}", s.plan("recovery").unwrap().to_json());
                if let Some(plan) = s.plan("uninstall") {
                    eprintln!("uninstall plan: {}", plan.to_json());
                }
                eprintln!("reconciling: {}", s.is_reconciling());
                for r in s.tasks().values() {
                    let ids: Vec<_> = r
                        .info
                        .resources
                        .iter()
                        .filter_map(|x| x.resource_id())
                        .collect();
                    eprintln!(
                        "store {} {:?} failed={} on {} uses {ids:?}",
                        r.info.task_id,
                        r.status.as_ref().map(|x| x.state),
                        r.info.permanently_failed,
                        r.info.agent_id
                    );
                }
            }
            eprintln!("full log: {:#?}", world.log);
        }
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn seeded_chaos_keeps_the_invariants_and_converges() {
    if let Ok(seed) = std::env::var("STROM_SIM_SEED") {
        run(seed.parse().expect("STROM_SIM_SEED is a number"));
        return;
    }
    let seeds: u64 = std::env::var("STROM_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    for seed in 0..seeds {
        run(seed);
    }
}
