//! Partition reassignment on a ZooKeeper cluster: AlterPartitionReassignments and
//! ListPartitionReassignments on their way from a handler to the controller this broker's
//! runtime drives, the `/admin/reassign_partitions` znode read for the controller, and the
//! ZooKeeper writes of the controller's reassignment effects.
//!
//! As ElectLeaders, only the active controller serves them; any other broker answers
//! NOT_CONTROLLER and clients send them to the controller Metadata names. Decides nothing:
//! `strom_meta::controller` (its `reassign.rs`) does.

use strom_meta::controller::{Controller, Effect, Input, PartitionReassignment, ReassignOutcome};
use strom_meta::replication::{BrokerId, TopicPartition};
use strom_meta::zk::{ControllerFence, ZkError, ZkStore};
use tokio::sync::{mpsc, oneshot};

use super::ClusterNode;

/// A reassignment request handed to the runtime.
pub enum ReassignCommand {
    /// AlterPartitionReassignments: each partition's target (`None` cancels).
    Alter {
        /// The requests.
        requests: Vec<(TopicPartition, Option<Vec<BrokerId>>)>,
        /// Each outcome, or `None` when this broker is not the controller.
        reply: oneshot::Sender<Option<Vec<(TopicPartition, ReassignOutcome)>>>,
    },
    /// ListPartitionReassignments (`None`: every partition).
    List {
        /// The partitions asked about.
        partitions: Option<Vec<TopicPartition>>,
        /// The partitions being moved, or `None` when this broker is not the controller.
        reply: oneshot::Sender<Option<Vec<PartitionReassignment>>>,
    },
}

impl ClusterNode {
    /// The runtime's end of the reassignment queue (taken once, by the runtime).
    pub(super) fn take_reassign_requests(&self) -> mpsc::UnboundedReceiver<ReassignCommand> {
        self.reassign_rx
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1)
    }

    /// Runs AlterPartitionReassignments through this broker's controller: each partition's
    /// outcome once its first step is written; `None` when this broker is not the controller.
    pub async fn alter_reassignments(
        &self,
        requests: Vec<(TopicPartition, Option<Vec<BrokerId>>)>,
    ) -> Option<Vec<(TopicPartition, ReassignOutcome)>> {
        let (reply, answer) = oneshot::channel();
        self.reassign_tx
            .send(ReassignCommand::Alter { requests, reply })
            .ok()?;
        answer.await.ok()?
    }

    /// ListPartitionReassignments through this broker's controller; `None` when this broker
    /// is not the controller.
    pub async fn list_reassignments(
        &self,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Option<Vec<PartitionReassignment>> {
        let (reply, answer) = oneshot::channel();
        self.reassign_tx
            .send(ReassignCommand::List { partitions, reply })
            .ok()?;
        answer.await.ok()?
    }
}

/// An AlterPartitionReassignments answer held until the first steps are written.
pub(super) struct AlterReply {
    reply: oneshot::Sender<Option<Vec<(TopicPartition, ReassignOutcome)>>>,
    outcomes: Option<Vec<(TopicPartition, ReassignOutcome)>>,
}

impl AlterReply {
    /// Answers; NOT_CONTROLLER if this broker stopped being the controller meanwhile (its
    /// writes were fenced, so the requests were not persisted).
    pub(super) fn send(self, still_controller: bool) {
        let _ = self.reply.send(self.outcomes.filter(|_| still_controller));
    }
}

/// Answers a command from the controller's state; returns the effects to perform and, for
/// an alteration, the answer to send once they are performed.
pub(super) fn decide(
    controller: &mut Controller,
    command: ReassignCommand,
) -> (Vec<Effect>, Option<AlterReply>) {
    match command {
        ReassignCommand::List { partitions, reply } => {
            let _ = reply.send(controller.reassignments(partitions.as_deref()));
            (Vec::new(), None)
        }
        ReassignCommand::Alter { requests, reply } => {
            let (outcomes, effects) = controller.alter_reassignments(requests).unzip();
            let reply = AlterReply { reply, outcomes };
            (effects.unwrap_or_default(), Some(reply))
        }
    }
}

/// `/admin/reassign_partitions` as the controller's input (absent: an empty list); `None`
/// when it cannot be read (logged; the next watch event reads it again).
pub(super) async fn read_znode(store: &ZkStore) -> Option<Input> {
    match store.reassignment_request().await {
        Ok(entries) => Some(Input::ZnodeReassignment {
            partitions: entries.unwrap_or_default(),
        }),
        Err(error) => {
            tracing::warn!(%error, "/admin/reassign_partitions cannot be read");
            None
        }
    }
}

/// Performs a reassignment effect; the answer to feed the controller, if any.
pub(super) async fn perform(
    store: &ZkStore,
    controller_epoch: i32,
    effect: Effect,
) -> Option<Input> {
    match effect {
        Effect::WriteStateAndAssignment {
            partition,
            expected_version,
            state,
            assignment,
            controller_epoch_version,
        } => {
            let fence = ControllerFence {
                epoch: controller_epoch,
                epoch_zk_version: controller_epoch_version,
            };
            let written = store
                .update_state_and_assignment(
                    &partition,
                    &state,
                    expected_version,
                    &assignment,
                    &fence,
                )
                .await;
            Some(match written {
                Ok(version) => {
                    tracing::info!(%partition.topic, partition.partition, ?state,
                        replicas = ?assignment.partitions.get(&partition.partition),
                        "reassignment step written");
                    Input::StateWritten { partition, version }
                }
                Err(ZkError::ControllerMoved { .. }) => Input::ControllerEpochMismatch,
                Err(error) => {
                    tracing::debug!(%error, "reassignment step conflicted");
                    Input::StateWriteConflict { partition }
                }
            })
        }
        Effect::WriteZnodeReassignment {
            remaining,
            controller_epoch_version,
        } => {
            let fence = ControllerFence {
                epoch: controller_epoch,
                epoch_zk_version: controller_epoch_version,
            };
            match store.set_reassignment_request(&remaining, &fence).await {
                Ok(()) => None,
                Err(ZkError::ControllerMoved { .. }) => Some(Input::ControllerEpochMismatch),
                Err(error) => {
                    tracing::warn!(%error, "rewriting /admin/reassign_partitions failed");
                    None
                }
            }
        }
        other => unreachable!("not a reassignment effect: {other:?}"),
    }
}
