//! Resources as Mesos describes them: scalars (cpus, mem, disk) and ranges (ports), optionally
//! reserved for a role with the SDK's `resource_id` label, and disks with a source (ROOT or a
//! MOUNT path) and a persistent volume id.
//!
//! Shared by offers, task infos and operations. Pure data; arithmetic on scalars uses Mesos's
//! fixed point of three decimals so that 0.1 + 0.2 fits into 0.3.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A resource's amount.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceValue {
    /// cpus, mem (MB), disk (MB).
    Scalar(f64),
    /// Inclusive ranges, for ports.
    Ranges(Vec<PortRange>),
}

/// An inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    /// First port.
    pub begin: u16,
    /// Last port, inclusive.
    pub end: u16,
}

/// A dynamic reservation made by this service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The role reserved for.
    pub role: String,
    /// The principal that reserved.
    pub principal: String,
    /// The SDK's `resource_id` label: how the scheduler recognises its own reservations.
    pub resource_id: Uuid,
}

/// Where a disk resource lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskSource {
    /// A slice of the agent's root disk.
    Root,
    /// A whole disk mounted at this path; used entirely or not at all.
    Mount { root: String },
}

/// Disk details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    /// ROOT or MOUNT.
    pub source: DiskSource,
    /// Set once a persistent volume was created on the reservation.
    pub persistence_id: Option<String>,
    /// Where the volume appears in the task's sandbox.
    pub container_path: Option<String>,
}

/// One resource of an offer or a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// `cpus`, `mem`, `disk` or `ports`.
    pub name: String,
    /// Amount.
    pub value: ResourceValue,
    /// Set when reserved (by this service, for offers the scheduler sees).
    pub reservation: Option<Reservation>,
    /// Set for `disk`.
    pub disk: Option<DiskInfo>,
}

/// Rounds to Mesos's three decimals.
pub fn fixed(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

impl Resource {
    /// An unreserved scalar.
    pub fn scalar(name: &str, amount: f64) -> Self {
        Resource {
            name: name.to_string(),
            value: ResourceValue::Scalar(fixed(amount)),
            reservation: None,
            disk: None,
        }
    }

    /// Unreserved ports.
    pub fn ports(ranges: &[(u16, u16)]) -> Self {
        Resource {
            name: "ports".into(),
            value: ResourceValue::Ranges(
                ranges
                    .iter()
                    .map(|&(begin, end)| PortRange { begin, end })
                    .collect(),
            ),
            reservation: None,
            disk: None,
        }
    }

    /// An unreserved disk of `size_mb` from `source`.
    pub fn disk(size_mb: f64, source: DiskSource) -> Self {
        Resource {
            disk: Some(DiskInfo {
                source,
                persistence_id: None,
                container_path: None,
            }),
            ..Resource::scalar("disk", size_mb)
        }
    }

    /// The scalar amount (0 for ranges).
    pub fn amount(&self) -> f64 {
        match &self.value {
            ResourceValue::Scalar(amount) => *amount,
            ResourceValue::Ranges(_) => 0.0,
        }
    }

    /// This resource reserved with `reservation`.
    pub fn reserved(mut self, reservation: Reservation) -> Self {
        self.reservation = Some(reservation);
        self
    }

    /// The reservation's resource id, if reserved.
    pub fn resource_id(&self) -> Option<Uuid> {
        self.reservation.as_ref().map(|r| r.resource_id)
    }
}
