//! Offers and what the scheduler answers them with.
//!
//! Owns the offer model (agent, hostname, fault domain, attributes, resources), the operations
//! an accepted offer carries (RESERVE, CREATE, LAUNCH_GROUP, DESTROY, UNRESERVE), the pure
//! evaluation of an offer against a pod instance's requirement (`evaluate`), placement rules
//! against already placed tasks (`placement`), releasing reservations no task owns (`cleanup`),
//! and the per-stage record of why an offer did not fit (for `/v1/debug/offers`). Engines
//! produce offers and apply operations; nothing here does I/O.

pub mod cleanup;
pub mod evaluate;
pub mod placement;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::resources::Resource;
use crate::task::{PodInstance, TaskInfo};

/// Resources one agent offers to the scheduler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// Single-use offer id.
    pub id: String,
    /// The agent.
    pub agent_id: String,
    /// The agent's hostname (what `hostname` placement rules look at).
    pub hostname: String,
    /// The address tasks on this agent bind and advertise.
    pub ip: String,
    /// Fault domain zone (`@zone` rules, `broker.rack`).
    pub zone: Option<String>,
    /// Fault domain region.
    pub region: Option<String>,
    /// Agent attributes (`rack:r1`).
    pub attributes: BTreeMap<String, String>,
    /// Offered resources: unreserved ones and this service's reservations.
    pub resources: Vec<Resource>,
}

/// An offer operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    /// Reserve unreserved resources for the service's role.
    Reserve { resources: Vec<Resource> },
    /// Create persistent volumes on reserved disk.
    Create { volumes: Vec<Resource> },
    /// Launch a pod instance's tasks together.
    LaunchGroup { tasks: Vec<TaskInfo> },
    /// Destroy persistent volumes (their data is deleted).
    Destroy { volumes: Vec<Resource> },
    /// Release reservations.
    Unreserve { resources: Vec<Resource> },
}

impl Operation {
    /// The SDK metric suffix (`operation.reserve`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Operation::Reserve { .. } => "reserve",
            Operation::Create { .. } => "create",
            Operation::LaunchGroup { .. } => "launch_group",
            Operation::Destroy { .. } => "destroy",
            Operation::Unreserve { .. } => "unreserve",
        }
    }
}

/// The evaluation stages, in order.
pub const STAGES: [&str; 7] = [
    "agent",
    "placement",
    "cpus",
    "mem",
    "ports",
    "volume",
    "launch",
];

/// The outcome of one evaluation stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageOutcome {
    /// One of [`STAGES`].
    pub stage: &'static str,
    /// Whether the offer passed it.
    pub passed: bool,
    /// What was needed and found.
    pub reason: String,
}

/// How one offer fared against one pod instance's requirement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OfferOutcome {
    /// The offer.
    pub offer_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Its hostname.
    pub hostname: String,
    /// The pod instance evaluated (`kafka-0`).
    pub pod_instance: String,
    /// Every stage, passed or not.
    pub stages: Vec<StageOutcome>,
}

impl OfferOutcome {
    /// Whether every stage passed.
    pub fn passed(&self) -> bool {
        self.stages.iter().all(|s| s.passed)
    }
}

impl fmt::Display for OfferOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: Vec<&StageOutcome> = self.stages.iter().filter(|s| !s.passed).collect();
        if failed.is_empty() {
            return write!(
                f,
                "offer {} from {} fits {}",
                self.offer_id, self.hostname, self.pod_instance
            );
        }
        write!(
            f,
            "offer {} from {} failed {} of {} evaluation stages for {}: ",
            self.offer_id,
            self.hostname,
            failed.len(),
            self.stages.len(),
            self.pod_instance
        )?;
        for (index, stage) in failed.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", stage.stage, stage.reason)?;
        }
        Ok(())
    }
}

/// What an accepted offer does: the task infos to persist first, then the operations to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    /// Task infos (persisted before the operations leave, as the SDK does).
    pub tasks: Vec<TaskInfo>,
    /// RESERVE, CREATE, LAUNCH_GROUP, in that order.
    pub operations: Vec<Operation>,
}

/// Where a pod instance ran before, for a relaunch in place.
#[derive(Clone, Debug, PartialEq)]
pub struct Previous {
    /// The agent holding its reservations and volume.
    pub agent_id: String,
    /// Each task's reserved resources (from its task info), by task name in the pod spec.
    pub task_resources: BTreeMap<String, Vec<Resource>>,
}

impl Previous {
    /// The instance's persistent volumes (deduplicated: tasks of a pod share the pod's volume).
    pub fn volumes(&self) -> Vec<&Resource> {
        let mut volumes: Vec<&Resource> = Vec::new();
        for resource in self.task_resources.values().flatten() {
            let is_volume = resource
                .disk
                .as_ref()
                .is_some_and(|d| d.persistence_id.is_some());
            if is_volume
                && !volumes
                    .iter()
                    .any(|v| v.resource_id() == resource.resource_id())
            {
                volumes.push(resource);
            }
        }
        volumes
    }
}

/// What a step needs from an offer.
#[derive(Clone, Debug, PartialEq)]
pub struct PodRequirement {
    /// The pod instance.
    pub instance: PodInstance,
    /// Task names (of the pod spec) to launch.
    pub tasks: Vec<String>,
    /// Set for a relaunch in place (update, transient recovery); unset for a first launch or a
    /// permanent replacement, which reserve anew wherever placement allows.
    pub previous: Option<Previous>,
    /// Launch paused: the tasks' commands are replaced by [`PAUSE_CMD`].
    pub paused: bool,
}

/// What a paused task runs instead of its command (the SDK's goal-state override PAUSED):
/// it keeps the sandbox and volume for an operator to inspect.
pub const PAUSE_CMD: &str = "exec sleep 2147483647";
