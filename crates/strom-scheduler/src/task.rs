//! Tasks as the scheduler records them: pod instances, task infos (what was launched, where,
//! on which config, with which reservations) and task statuses (Mesos's `TaskState`s).
//!
//! Pure data plus the SDK's rule for "this task reached its goal on the target config".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::resources::Resource;
use crate::spec::{Goal, SecretSpec};

/// One instance of a pod type: `kafka-0`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PodInstance {
    /// Pod type.
    pub pod: String,
    /// Index from 0.
    pub index: u32,
}

impl PodInstance {
    /// `kafka`, 0.
    pub fn new(pod: &str, index: u32) -> Self {
        PodInstance {
            pod: pod.to_string(),
            index,
        }
    }

    /// `kafka-0`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.pod, self.index)
    }

    /// `kafka-0-broker`.
    pub fn task_name(&self, task: &str) -> String {
        format!("{}-{}-{task}", self.pod, self.index)
    }
}

/// Mesos task states (`TASK_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    #[serde(rename = "TASK_STAGING")]
    Staging,
    #[serde(rename = "TASK_STARTING")]
    Starting,
    #[serde(rename = "TASK_RUNNING")]
    Running,
    #[serde(rename = "TASK_KILLING")]
    Killing,
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
    #[serde(rename = "TASK_ERROR")]
    Error,
    #[serde(rename = "TASK_LOST")]
    Lost,
    #[serde(rename = "TASK_DROPPED")]
    Dropped,
    #[serde(rename = "TASK_UNREACHABLE")]
    Unreachable,
    #[serde(rename = "TASK_GONE")]
    Gone,
    #[serde(rename = "TASK_GONE_BY_OPERATOR")]
    GoneByOperator,
    #[serde(rename = "TASK_UNKNOWN")]
    Unknown,
}

impl TaskState {
    /// Whether the task is no longer running (it will not become RUNNING again).
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            TaskState::Staging
                | TaskState::Starting
                | TaskState::Running
                | TaskState::Killing
                | TaskState::Unreachable
        )
    }
}

/// A status update for a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The launched task's id (`<name>__<uuid>`).
    pub task_id: String,
    /// The agent it runs on.
    pub agent_id: String,
    /// The state.
    pub state: TaskState,
    /// Human-readable detail from the agent.
    pub message: String,
    /// Whether the task's readiness check has passed (the SDK's readiness label).
    pub ready: bool,
    /// Set when the engine wants an acknowledgement.
    pub uuid: Option<String>,
}

/// What the scheduler launched (persisted **before** the operations are sent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// `kafka-0-broker`.
    pub name: String,
    /// `kafka-0-broker__<uuid>`; new for every launch.
    pub task_id: String,
    /// The pod instance.
    pub instance: PodInstance,
    /// The task's name in the pod spec (`broker`).
    pub task: String,
    /// The goal from the spec.
    pub goal: Goal,
    /// The config the task was launched with (or relabelled to).
    pub config_id: Uuid,
    /// Agent and its hostname.
    pub agent_id: String,
    /// Agent hostname.
    pub hostname: String,
    /// The agent's zone, if it has one.
    pub zone: Option<String>,
    /// The reserved resources the task uses (cpus, mem, ports, the volume).
    pub resources: Vec<Resource>,
    /// Assigned ports by name.
    pub ports: BTreeMap<String, u16>,
    /// Full environment.
    pub env: BTreeMap<String, String>,
    /// Command.
    pub cmd: String,
    /// Rendered config files: destination → content.
    pub files: BTreeMap<String, String>,
    /// The pod's secrets, as references (path, env key, file): the engine reads the values at
    /// launch, so they are never in a task info, the state store or the API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretSpec>,
    /// Set by `pod replace`: relaunch anywhere on new reservations; the old ones are released.
    pub permanently_failed: bool,
    /// Launched paused (`pod pause`): the command was replaced by a sleep, so the task counts as
    /// at its goal once it runs, ready or not.
    #[serde(default)]
    pub paused: bool,
}

/// A task's info and last status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// What was launched.
    pub info: TaskInfo,
    /// The last status received, if any.
    pub status: Option<TaskStatus>,
}

impl TaskRecord {
    /// Whether the task is believed to run (launched and not terminal).
    pub fn is_live(&self) -> bool {
        self.status.as_ref().is_none_or(|s| !s.state.is_terminal())
    }

    /// Whether `status` is older news than what is recorded: a task never leaves a terminal
    /// state, so a non-terminal status after a terminal one (a late reconciliation answer) is
    /// ignored.
    pub fn is_stale(&self, status: &TaskStatus) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.task_id == status.task_id && s.state.is_terminal() && !status.state.is_terminal()
        })
    }

    /// The SDK's deploy-completion rule (and never for a task marked for replacement): RUNNING tasks must run on the target config and be
    /// ready; FINISH tasks must have finished on the target config; ONCE tasks must have
    /// finished on any config.
    pub fn at_goal(&self, target: Uuid) -> bool {
        if self.info.permanently_failed {
            // Marked for replacement: whatever it does now, it is not where it should be.
            return false;
        }
        let state = self.status.as_ref().map(|s| (s.state, s.ready));
        match self.info.goal {
            Goal::Running if self.info.paused => {
                self.info.config_id == target && state.is_some_and(|(s, _)| s == TaskState::Running)
            }
            Goal::Running => {
                self.info.config_id == target && state == Some((TaskState::Running, true))
            }
            Goal::Finish => {
                self.info.config_id == target
                    && state.is_some_and(|(s, _)| s == TaskState::Finished)
            }
            Goal::Once => state.is_some_and(|(s, _)| s == TaskState::Finished),
        }
    }
}
