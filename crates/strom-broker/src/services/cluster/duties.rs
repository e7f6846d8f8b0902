//! The controller runtime's part in controlled shutdown and leader balance (a child of
//! `runtime`): ControlledShutdown requests go to the pure controller and their answers back to
//! the waiting handlers; a one-second tick carries the clock to the controller's balance
//! check; `/admin/preferred_replica_election` is read when its watch fires (and on election)
//! and deleted, fenced, when the controller says so. The rules are the controller's.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use strom_meta::controller::{Effect, Input};
use strom_meta::replication::BrokerId;
use strom_meta::zk::{ControllerFence, ZkError, ZkStore};
use tokio::sync::{mpsc, oneshot};

use super::super::shutdown::{ShutdownAnswer, ShutdownCommand};
use super::super::ClusterNode;
use super::Runtime;

/// How often the controller's clock advances (the balance interval is in seconds).
const TICK: Duration = Duration::from_secs(1);

/// What the runtime keeps for these duties.
pub(super) struct Duties {
    /// ControlledShutdown requests from handlers.
    pub(super) requests: mpsc::UnboundedReceiver<ShutdownCommand>,
    /// The controller's clock.
    pub(super) tick: tokio::time::Interval,
    /// Handlers waiting for the controller's answer, per stopping broker.
    waiting: BTreeMap<BrokerId, Vec<oneshot::Sender<ShutdownAnswer>>>,
}

impl Duties {
    pub(super) fn new(node: &ClusterNode) -> Duties {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Duties {
            requests: node.take_shutdown_requests(),
            tick,
            waiting: BTreeMap::new(),
        }
    }

    /// The controller resigned: whoever waits is told NOT_CONTROLLER (it asks the next one).
    pub(super) fn resigned(&mut self) {
        for (_, replies) in std::mem::take(&mut self.waiting) {
            for reply in replies {
                let _ = reply.send((E::NotController.code(), Vec::new()));
            }
        }
    }
}

impl Runtime {
    /// A ControlledShutdown for this broker's controller: NOT_CONTROLLER if it is not active.
    pub(super) async fn controlled_shutdown(&mut self, store: &ZkStore, command: ShutdownCommand) {
        if !self.controller.is_active() {
            let _ = command.reply.send((E::NotController.code(), Vec::new()));
            return;
        }
        tracing::info!(
            broker = command.broker,
            broker_epoch = command.broker_epoch,
            "controlled shutdown requested"
        );
        self.duties
            .waiting
            .entry(command.broker)
            .or_default()
            .push(command.reply);
        let effects = self.controller.step(Input::ControlledShutdown {
            broker: command.broker,
            broker_epoch: command.broker_epoch,
        });
        self.perform(store, effects).await;
    }

    /// The controller's clock: the leader balance check runs when due.
    pub(super) async fn tick(&mut self, store: &ZkStore) {
        if !self.controller.is_active() {
            return;
        }
        let now_ms = crate::clock::now_ms().max(0) as u64;
        let effects = self.controller.step(Input::Tick { now_ms });
        self.perform(store, effects).await;
    }

    /// Reads `/admin/preferred_replica_election` and, if it exists and this broker is the
    /// controller, hands its partitions over; one that does not decode is deleted.
    pub(super) async fn preferred_replica_election(&mut self, store: &ZkStore) {
        if !self.controller.is_active() {
            return;
        }
        match store.preferred_replica_election().await {
            Ok(None) => {}
            Ok(Some(partitions)) => {
                tracing::info!(
                    partitions = partitions.len(),
                    "preferred replica election requested"
                );
                let input = Input::PreferredReplicaElection { partitions };
                let effects = self.controller.step(input);
                self.perform(store, effects).await;
            }
            Err(ZkError::Znode(error)) => {
                tracing::warn!(%error, "ignoring a preferred replica election that does not decode");
                if let Some(input) = self.delete_preferred_replica_election(store).await {
                    let effects = self.controller.step(input);
                    self.perform(store, effects).await;
                }
            }
            Err(error) => tracing::warn!(%error, "reading the preferred replica election failed"),
        }
    }

    /// Performs an effect of these duties; a fenced delete tells the controller it moved.
    pub(super) async fn perform_duty(&mut self, store: &ZkStore, effect: Effect) -> Option<Input> {
        match effect {
            Effect::ControlledShutdownAnswer {
                broker,
                error_code,
                remaining,
            } => {
                tracing::info!(
                    broker,
                    error_code,
                    remaining = remaining.len(),
                    "controlled shutdown answered"
                );
                for reply in self.duties.waiting.remove(&broker).unwrap_or_default() {
                    let _ = reply.send((error_code, remaining.clone()));
                }
                None
            }
            Effect::DeletePreferredReplicaElection { .. } => {
                self.delete_preferred_replica_election(store).await
            }
            _ => None,
        }
    }

    async fn delete_preferred_replica_election(&mut self, store: &ZkStore) -> Option<Input> {
        let fence: ControllerFence = self.fence?;
        match store.delete_preferred_replica_election(&fence).await {
            Ok(()) => None,
            Err(ZkError::ControllerMoved { .. }) => Some(Input::ControllerEpochMismatch),
            Err(error) => {
                tracing::warn!(%error, "deleting the preferred replica election failed");
                None
            }
        }
    }
}
