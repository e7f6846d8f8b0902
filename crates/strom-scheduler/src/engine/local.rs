//! The local engine: an in-process Mesos-like agent (or several virtual agents with zones) on
//! this machine. It offers the agents' cpus, mem, ROOT disk, MOUNT disks (configured mount
//! points, see `agents.rs`) and port range, keeps a reservation
//! ledger, honours RESERVE/CREATE/LAUNCH_GROUP/DESTROY/UNRESERVE, runs tasks as OS processes in
//! sandbox directories with persistent-volume directories, runs readiness checks, and sends
//! status updates with uuids, again every [`RESEND_MS`] until acknowledged.
//!
//! On-disk format, in the work directory `W`: `W/engine.json` (written to a `.tmp`, fsynced,
//! renamed) holds the ledger and the task table (task info, sandbox, pid and its start time);
//! `W/sandboxes/<task id>/` is a task's sandbox (its config files, `stdout`, `stderr`, and a
//! symlink per volume); `W/volumes/<persistence id>/` a ROOT persistent volume; a MOUNT
//! persistent volume is its mount point's directory itself (emptied by DESTROY).
//!
//! Restart: a new engine on the same `W` adopts the tasks whose pid is still the process it
//! started (same start time) and reports the others LOST. Tasks run in their own sessions and
//! outlive the engine, so a scheduler restart (kill -9 included) does not touch healthy
//! brokers; only with [`LocalEngineConfig::die_with_engine`] (tests) does the kernel kill them
//! with the engine thread (`PR_SET_PDEATHSIG`).
//!
//! Several services: every task, update, offer and filter belongs to a framework (one per
//! service; `local_frameworks.rs`), and the offers of the agents go out in DRF order
//! (`allocator.rs`). Used through [`Engine`](super::Engine) directly, the engine serves the one framework
//! [`SOLE`], to which every reservation is offered. Not owned here: what to launch (the
//! scheduler).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::agents::{agent_offer, destroy_volume, volume_dir};
pub use super::agents::{AgentConfig, LocalEngineConfig, MountConfig};
use super::allocator::FrameworkOffers;
use super::checks::{CheckRunner, Health, TaskChecks};
use super::process;
use super::sandbox::{self, relative};
use crate::offer::{Offer, Operation};
use crate::resources::Resource;
use crate::spec::ServiceSpec;
use crate::task::{TaskInfo, TaskState, TaskStatus};

/// How long an unacknowledged status update waits before it is sent again.
pub const RESEND_MS: u64 = 2_000;

/// The framework of an engine used through [`Engine`] alone (one service; also the framework
/// of tasks recorded before engines served several).
pub const SOLE: &str = "";

#[path = "local_frameworks.rs"]
mod frameworks;
pub use frameworks::FrameworkHandle;

/// What the engine keeps per framework besides its tasks.
#[derive(Default)]
struct Framework {
    offers: FrameworkOffers,
    /// Status updates not yet polled.
    outbox: Vec<TaskStatus>,
    /// Offers made and not yet polled.
    offered: Vec<Offer>,
    /// Readiness and health checks and kill grace periods by (pod, task), from its spec.
    checks: BTreeMap<(String, String), TaskChecks>,
    /// Where its tasks' secrets come from.
    secrets: Option<super::EngineSecrets>,
    /// Known to the engine's owner (offers go only to registered frameworks; a framework
    /// only seen in the task table of a previous run gets none).
    registered: bool,
}

/// A task as the engine records it (persisted).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LocalTask {
    /// The framework (service) the task belongs to; [`SOLE`] in older ledgers.
    #[serde(default)]
    framework: String,
    info: TaskInfo,
    sandbox: PathBuf,
    pid: Option<u32>,
    start_ticks: Option<u64>,
    state: TaskState,
    ready: bool,
    /// Set when a kill was sent (the SIGKILL follows after the grace period).
    killing_since_ms: Option<u64>,
}

/// The persisted part of the engine.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    /// Reservations (with volumes once created) per agent, by resource id.
    reserved: BTreeMap<String, BTreeMap<Uuid, Resource>>,
    /// Tasks by task id; a terminal task is dropped once its last update is acknowledged.
    tasks: BTreeMap<String, LocalTask>,
}

/// The local engine. See the module documentation.
pub struct LocalEngine {
    config: LocalEngineConfig,
    ledger: Ledger,
    children: BTreeMap<String, Child>,
    readiness: BTreeMap<String, CheckRunner>,
    health: BTreeMap<String, Health>,
    frameworks: BTreeMap<String, Framework>,
    /// DRF weights by role (Mesos's `--weights`; 1 when absent).
    weights: BTreeMap<String, f64>,
    /// Unacknowledged updates by task id: the update and when it was last sent.
    unacked: BTreeMap<String, (TaskStatus, u64)>,
    /// Outstanding offers: offer id → (agent id, framework).
    offers: BTreeMap<String, frameworks::Outstanding>,
    next_offer: u64,
    /// Status updates made so far (a round writes the ledger only when this moved: with 50
    /// services, serializing it on every call cost more than everything else).
    updates: u64,
    /// The ledger as last written.
    saved: Vec<u8>,
}

impl LocalEngine {
    /// Starts an engine on `config.work_dir`, adopting the tasks of a previous engine there
    /// that still run and reporting the others LOST.
    pub fn open(mut config: LocalEngineConfig) -> std::io::Result<LocalEngine> {
        fs::create_dir_all(config.work_dir.join("sandboxes"))?;
        fs::create_dir_all(config.work_dir.join("volumes"))?;
        // Sandboxes link to volumes and tasks run elsewhere: every path is absolute.
        config.work_dir = fs::canonicalize(&config.work_dir)?;
        let ledger: Ledger = match fs::read(config.work_dir.join("engine.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                std::io::Error::other(format!("engine.json is corrupt: {error}"))
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ledger::default(),
            Err(error) => return Err(error),
        };
        let sole = Framework {
            secrets: config.secrets.take(),
            registered: true,
            ..Framework::default()
        };
        let mut engine = LocalEngine {
            config,
            ledger,
            children: BTreeMap::new(),
            readiness: BTreeMap::new(),
            health: BTreeMap::new(),
            frameworks: [(SOLE.to_string(), sole)].into_iter().collect(),
            weights: BTreeMap::new(),
            unacked: BTreeMap::new(),
            offers: BTreeMap::new(),
            next_offer: 0,
            updates: 0,
            saved: Vec::new(),
        };
        let ids: Vec<String> = engine.ledger.tasks.keys().cloned().collect();
        for id in ids {
            let task = engine.ledger.tasks.get_mut(&id).expect("listed");
            if task.state.is_terminal() {
                continue;
            }
            if task.pid.is_none() {
                // Killed between recording the launch and recording its pid: find the session
                // leader running in the task's sandbox, if the spawn happened.
                task.pid = process::session_leader_in(&task.sandbox);
                task.start_ticks = task.pid.and_then(process::start_ticks);
            }
            let task = &engine.ledger.tasks[&id];
            let running = task
                .pid
                .is_some_and(|pid| process::alive(pid, task.start_ticks));
            if running {
                // Adopted: readiness is checked again before it is reported ready. An engine
                // killed right after the spawn never recorded the task as running.
                let task = engine.ledger.tasks.get_mut(&id).expect("listed");
                task.ready = false;
                if task.state != TaskState::Running {
                    engine.update(&id, TaskState::Running, false, "adopted after a restart", 0);
                }
            } else {
                engine.update(&id, TaskState::Lost, false, "the process is gone", 0);
            }
        }
        engine.save();
        Ok(engine)
    }

    /// Completes accepts a crash interrupted: every reserved resource (and volume) the state
    /// store's task infos name but the ledger lacks is added. The scheduler persists a task info
    /// before its RESERVE/CREATE leave, so a kill -9 in between leaves a task info whose
    /// reservations the engine never made, and its relaunch in place would wait forever for an
    /// offer holding them. Extra ones are released by the scheduler's cleanup as usual.
    pub fn restore_reservations<'a>(&mut self, tasks: impl IntoIterator<Item = &'a TaskInfo>) {
        for info in tasks {
            let ledger = self
                .ledger
                .reserved
                .entry(info.agent_id.clone())
                .or_default();
            for resource in &info.resources {
                let Some(id) = resource.resource_id() else {
                    continue;
                };
                if ledger.contains_key(&id) {
                    continue;
                }
                if let Some(dir) = resource
                    .disk
                    .as_ref()
                    .and_then(|d| volume_dir(&self.config.work_dir, d))
                {
                    let _ = fs::create_dir_all(dir);
                }
                ledger.insert(id, resource.clone());
            }
        }
        self.save();
    }

    /// Learns readiness checks and kill grace periods from the target spec.
    pub fn set_spec(&mut self, spec: &ServiceSpec) {
        self.set_framework_spec(SOLE, spec);
    }

    /// [`LocalEngine::set_spec`] for one framework.
    pub fn set_framework_spec(&mut self, framework: &str, spec: &ServiceSpec) {
        let checks = &mut self.framework_mut(framework).checks;
        checks.clear();
        for (pod_name, pod) in spec.pods.iter() {
            for (task_name, task) in pod.tasks.iter() {
                checks.insert(
                    (pod_name.to_string(), task_name.to_string()),
                    TaskChecks {
                        readiness: task.readiness_check.clone(),
                        health: task.health_check.clone(),
                        kill_grace_ms: u64::from(task.kill_grace_period.unwrap_or(30)) * 1000,
                    },
                );
            }
        }
    }

    /// The process ids of the tasks the engine believes live, by task name (for tests and
    /// `/v1/pod/<name>/info`).
    pub fn pids(&self) -> BTreeMap<String, u32> {
        self.ledger
            .tasks
            .values()
            .filter(|t| !t.state.is_terminal() && t.framework == SOLE)
            .filter_map(|t| Some((t.info.name.clone(), t.pid?)))
            .collect()
    }

    /// The sandbox of the live task named `name`.
    pub fn sandbox(&self, name: &str) -> Option<&Path> {
        self.ledger
            .tasks
            .values()
            .find(|t| t.info.name == name && !t.state.is_terminal() && t.framework == SOLE)
            .map(|t| t.sandbox.as_path())
    }

    /// Kills every task's process group at once (engine shutdown in tests).
    pub fn kill_all(&mut self) {
        for task in self.ledger.tasks.values() {
            if let Some(pid) = task.pid {
                process::signal_group(pid, libc::SIGKILL);
            }
        }
    }

    /// Writes `engine.json` if the ledger changed since the last write.
    fn save(&mut self) {
        let bytes = serde_json::to_vec_pretty(&self.ledger).expect("the ledger serializes");
        if bytes == self.saved {
            return;
        }
        let path = self.config.work_dir.join("engine.json");
        let tmp = self.config.work_dir.join("engine.json.tmp");
        let written = fs::File::create(&tmp).and_then(|mut file| {
            use std::io::Write;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        });
        match written {
            Ok(()) => self.saved = bytes,
            // The engine keeps running on its memory; a restart would adopt less.
            Err(error) => eprintln!("local engine: cannot write {}: {error}", path.display()),
        }
    }

    /// Records a new state for `task_id` and queues its update (with a fresh uuid).
    fn update(&mut self, task_id: &str, state: TaskState, ready: bool, message: &str, now_ms: u64) {
        let Some(task) = self.ledger.tasks.get_mut(task_id) else {
            return;
        };
        let framework = task.framework.clone();
        self.updates += 1;
        task.state = state;
        task.ready = ready;
        if state.is_terminal() {
            sandbox::remove_secret_files(&task.info.secrets, &task.sandbox);
        }
        let status = TaskStatus {
            task_id: task_id.to_string(),
            agent_id: task.info.agent_id.clone(),
            state,
            message: message.to_string(),
            ready,
            uuid: Some(Uuid::new_v4().to_string()),
        };
        self.unacked
            .insert(task_id.to_string(), (status.clone(), now_ms));
        self.framework_mut(&framework).outbox.push(status);
        if state.is_terminal() {
            self.children.remove(task_id);
            self.readiness.remove(task_id);
            self.health.remove(task_id);
        }
    }

    /// The offer of `agent` to a framework of `role` (`None`: every reservation).
    fn offer(&mut self, agent: &AgentConfig, role: Option<&str>) -> Offer {
        self.next_offer += 1;
        self.offer_of(agent, role, self.next_offer)
    }

    /// [`LocalEngine::offer`] with a given offer number (nothing recorded).
    fn offer_of(&self, agent: &AgentConfig, role: Option<&str>, number: u64) -> Offer {
        let empty = BTreeMap::new();
        let reserved = self.ledger.reserved.get(&agent.id).unwrap_or(&empty);
        let in_use: Vec<Uuid> = self
            .ledger
            .tasks
            .values()
            .filter(|t| t.info.agent_id == agent.id && !t.state.is_terminal())
            .flat_map(|t| t.info.resources.iter().filter_map(Resource::resource_id))
            .collect();
        agent_offer(agent, reserved, &in_use, role, number)
    }

    fn apply_operation(
        &mut self,
        framework: &str,
        agent_id: &str,
        operation: &Operation,
        now_ms: u64,
    ) {
        let work_dir = self.config.work_dir.clone();
        let ledger = self
            .ledger
            .reserved
            .entry(agent_id.to_string())
            .or_default();
        match operation {
            Operation::Reserve { resources } => {
                for r in resources {
                    if let Some(id) = r.resource_id() {
                        ledger.insert(id, r.clone());
                    }
                }
            }
            Operation::Create { volumes: created } => {
                for r in created {
                    let Some(id) = r.resource_id() else { continue };
                    if let Some(dir) = r.disk.as_ref().and_then(|d| volume_dir(&work_dir, d)) {
                        let _ = fs::create_dir_all(dir);
                    }
                    ledger.insert(id, r.clone());
                }
            }
            Operation::Destroy { volumes: destroyed } => {
                for r in destroyed {
                    let Some(id) = r.resource_id() else { continue };
                    if let Some(disk) = ledger.get_mut(&id).and_then(|r| r.disk.as_mut()) {
                        destroy_volume(&work_dir, disk);
                        disk.persistence_id = None;
                        disk.container_path = None;
                    }
                }
            }
            Operation::Unreserve { resources } => {
                for r in resources {
                    if let Some(id) = r.resource_id() {
                        ledger.remove(&id);
                    }
                }
            }
            Operation::LaunchGroup { tasks } => {
                for info in tasks {
                    self.launch(framework, info, now_ms);
                }
            }
        }
    }

    fn launch(&mut self, framework: &str, info: &TaskInfo, now_ms: u64) {
        let sandbox = self.config.work_dir.join("sandboxes").join(&info.task_id);
        self.ledger.tasks.insert(
            info.task_id.clone(),
            LocalTask {
                framework: framework.to_string(),
                info: info.clone(),
                sandbox: sandbox.clone(),
                pid: None,
                start_ticks: None,
                state: TaskState::Staging,
                ready: false,
                killing_since_ms: None,
            },
        );
        let reserved = self.ledger.reserved.get(&info.agent_id);
        let unreserved = info
            .resources
            .iter()
            .filter_map(Resource::resource_id)
            .find(|id| !reserved.is_some_and(|r| r.contains_key(id)));
        if let Some(id) = unreserved {
            let message = format!("resource {id} is not reserved on {}", info.agent_id);
            self.update(&info.task_id, TaskState::Error, false, &message, now_ms);
            return;
        }
        // Recorded (with the reservations of this accept) before the process exists, so an
        // engine killed in between finds the task and looks for its process on restart.
        self.save();
        match self.prepare_and_spawn(framework, info, &sandbox) {
            Ok(child) => {
                let pid = child.id();
                let task = self.ledger.tasks.get_mut(&info.task_id).expect("inserted");
                task.pid = Some(pid);
                task.start_ticks = process::start_ticks(pid);
                self.children.insert(info.task_id.clone(), child);
                self.save();
                self.update(&info.task_id, TaskState::Starting, false, "spawned", now_ms);
                self.update(
                    &info.task_id,
                    TaskState::Running,
                    false,
                    &format!("pid {pid}"),
                    now_ms,
                );
                self.health
                    .insert(info.task_id.clone(), Health::new(now_ms));
            }
            Err(error) => {
                let message = format!("cannot launch: {error}");
                self.update(&info.task_id, TaskState::Failed, false, &message, now_ms);
            }
        }
    }

    fn task_env(&self, info: &TaskInfo, sandbox: &Path) -> BTreeMap<String, String> {
        let mut env = info.env.clone();
        env.insert("MESOS_SANDBOX".into(), sandbox.display().to_string());
        env.insert("MESOS_TASK_ID".into(), info.task_id.clone());
        env
    }

    fn prepare_and_spawn(
        &self,
        framework: &str,
        info: &TaskInfo,
        sandbox: &Path,
    ) -> std::io::Result<Child> {
        fs::create_dir_all(sandbox)?;
        sandbox::write_config_files(&info.files, sandbox)?;
        let secrets = self
            .frameworks
            .get(framework)
            .and_then(|f| f.secrets.as_ref());
        let secret_env = sandbox::deliver_secrets(secrets, &info.secrets, sandbox)?;
        for resource in &info.resources {
            let Some(disk) = &resource.disk else { continue };
            let (Some(_), Some(path)) = (&disk.persistence_id, &disk.container_path) else {
                continue;
            };
            let Some(volume) = volume_dir(&self.config.work_dir, disk) else {
                continue;
            };
            fs::create_dir_all(&volume)?;
            let link = sandbox.join(relative(path)?);
            if let Some(parent) = link.parent() {
                fs::create_dir_all(parent)?;
            }
            if fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(&volume, &link)?;
            }
        }
        let mut env = self.task_env(info, sandbox);
        env.extend(secret_env);
        process::spawn(
            &info.cmd,
            &env,
            sandbox,
            &sandbox.join("stdout"),
            &sandbox.join("stderr"),
            self.config.die_with_engine,
        )
    }

    fn kill(&mut self, task_id: &str, now_ms: u64) {
        let Some(task) = self.ledger.tasks.get_mut(task_id) else {
            return;
        };
        if task.state.is_terminal() || task.killing_since_ms.is_some() {
            return;
        }
        task.killing_since_ms = Some(now_ms);
        match task.pid {
            Some(pid) => process::signal_group(pid, libc::SIGTERM),
            None => self.update(
                task_id,
                TaskState::Killed,
                false,
                "killed before it ran",
                now_ms,
            ),
        }
    }

    /// Reaps exited tasks, escalates kills past their grace period, runs readiness checks.
    fn watch(&mut self, now_ms: u64) {
        let live: Vec<String> = self
            .ledger
            .tasks
            .iter()
            .filter(|(_, t)| !t.state.is_terminal())
            .map(|(id, _)| id.clone())
            .collect();
        for id in live {
            let task = &self.ledger.tasks[&id];
            let Some(pid) = task.pid else { continue };
            let killing = task.killing_since_ms;
            let key = (task.info.instance.pod.clone(), task.info.task.clone());
            let checks = self
                .frameworks
                .get(&task.framework)
                .and_then(|f| f.checks.get(&key))
                .cloned()
                .unwrap_or_default();
            let exit = match self.children.get_mut(&id) {
                Some(child) => match child.try_wait() {
                    Ok(Some(status)) => Some(Some(status)),
                    Ok(None) => None,
                    Err(_) => Some(None),
                },
                None if !process::alive(pid, task.start_ticks) => Some(None),
                None => None,
            };
            if let Some(exit) = exit {
                // Whatever the task left running in its group goes with it.
                process::signal_group(pid, libc::SIGKILL);
                let (state, message) = match (killing, exit) {
                    (Some(_), _) => (TaskState::Killed, "killed".to_string()),
                    (None, Some(status)) if status.success() => {
                        (TaskState::Finished, "exited 0".to_string())
                    }
                    (None, Some(status)) => (TaskState::Failed, format!("{status}")),
                    (None, None) => (
                        TaskState::Lost,
                        "the process is gone (exit status unknown)".to_string(),
                    ),
                };
                self.update(&id, state, false, &message, now_ms);
                continue;
            }
            if let Some(since) = killing {
                if now_ms >= since + checks.kill_grace_ms {
                    process::signal_group(pid, libc::SIGKILL);
                }
                continue;
            }
            self.check_readiness(&id, &checks, now_ms);
            self.check_health(&id, &checks, now_ms);
        }
    }

    fn check_readiness(&mut self, id: &str, checks: &TaskChecks, now_ms: u64) {
        let task = &self.ledger.tasks[id];
        if task.ready || task.state != TaskState::Running {
            return;
        }
        let Some(check) = &checks.readiness else {
            let message = "running (no readiness check)";
            self.update(id, TaskState::Running, true, message, now_ms);
            return;
        };
        let env = self.task_env(&task.info, &task.sandbox);
        let sandbox = task.sandbox.clone();
        let cap = self.config.check_interval_max_ms;
        let runner = self.readiness.entry(id.to_string()).or_default();
        if runner.poll(check, cap, &env, &sandbox, "readiness.log", now_ms) == Some(true) {
            self.readiness.remove(id);
            self.update(
                id,
                TaskState::Running,
                true,
                "readiness check passed",
                now_ms,
            );
        }
    }

    /// Runs the health check of a ready task; kills it (SIGKILL to its group, reported
    /// FAILED) after too many failures in a row.
    fn check_health(&mut self, id: &str, checks: &TaskChecks, now_ms: u64) {
        let task = &self.ledger.tasks[id];
        let Some(check) = &checks.health else { return };
        if !task.ready || task.state != TaskState::Running {
            return;
        }
        let env = self.task_env(&task.info, &task.sandbox);
        let sandbox = task.sandbox.clone();
        let pid = task.pid;
        let cap = self.config.check_interval_max_ms;
        let health = self
            .health
            .entry(id.to_string())
            .or_insert_with(|| Health::new(now_ms));
        let Some(passed) = health
            .runner
            .poll(check, cap, &env, &sandbox, "health.log", now_ms)
        else {
            return;
        };
        if health.record(check, passed, now_ms) {
            let failures = health.failures;
            if let Some(pid) = pid {
                process::signal_group(pid, libc::SIGKILL);
            }
            let message = format!("health check failed {failures} times in a row");
            self.update(id, TaskState::Failed, false, &message, now_ms);
        }
    }
}
