//! ElectLeaders on a ZooKeeper cluster: the request's way from a handler to the controller
//! this broker's runtime drives, and the wait until the metadata cache shows the result.
//!
//! As in Kafka, only the active controller serves it; any other broker answers NOT_CONTROLLER
//! and the client (Kafka's admin client, `strom partition elect-leaders`) sends it to the
//! controller named by Metadata. It decides nothing: [`Controller::elect_leaders`] does.
//!
//! [`Controller::elect_leaders`]: strom_meta::controller::Controller::elect_leaders

use std::time::{Duration, Instant};

use strom_meta::controller::{ElectionOutcome, ElectionType};
use strom_meta::replication::TopicPartition;
use tokio::sync::{mpsc, oneshot};

use super::ClusterNode;

/// Each partition's outcome, or `None` when this broker is not the active controller.
pub type ElectAnswer = Option<Vec<(TopicPartition, ElectionOutcome)>>;

/// An ElectLeaders request handed to the runtime.
pub struct ElectCommand {
    /// The partitions (`None`: every partition).
    pub partitions: Option<Vec<TopicPartition>>,
    /// Preferred or unclean.
    pub kind: ElectionType,
    /// Where the runtime answers, once the elections it started are written.
    pub reply: oneshot::Sender<ElectAnswer>,
}

impl ClusterNode {
    /// The runtime's end of the ElectLeaders queue (taken once, by the runtime).
    pub(super) fn take_elect_requests(&self) -> mpsc::UnboundedReceiver<ElectCommand> {
        self.elect_rx
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1)
    }

    /// Runs an ElectLeaders request through this broker's controller; the partitions whose
    /// election was started are then awaited (up to `timeout`) in the metadata cache and
    /// answered REQUEST_TIMED_OUT (7) if the new leader has not arrived by then. `None` when
    /// this broker is not the active controller.
    pub async fn elect_leaders(
        &self,
        partitions: Option<Vec<TopicPartition>>,
        kind: ElectionType,
        timeout: Duration,
    ) -> Option<Vec<(TopicPartition, i16)>> {
        let deadline = Instant::now() + timeout;
        let (reply, answer) = oneshot::channel();
        let command = ElectCommand {
            partitions,
            kind,
            reply,
        };
        self.elect_tx.send(command).ok()?;
        let outcomes = answer.await.ok()??;
        let mut results = Vec::with_capacity(outcomes.len());
        for (partition, outcome) in outcomes {
            let code = if outcome == ElectionOutcome::Started {
                self.await_elected(&partition, kind, deadline).await
            } else {
                outcome.code()
            };
            results.push((partition, code));
        }
        Some(results)
    }

    /// Waits until the cache shows the elected leader: the first replica for a preferred
    /// election, any live leader for an unclean one.
    async fn await_elected(
        &self,
        partition: &TopicPartition,
        kind: ElectionType,
        deadline: Instant,
    ) -> i16 {
        loop {
            let notified = self.updated.notified();
            if let Some(state) = self
                .metadata
                .partition(&partition.topic, partition.partition)
            {
                let leader = state.leader_and_isr.leader;
                let done = match kind {
                    ElectionType::Preferred => state.replicas.first() == Some(&leader),
                    ElectionType::Unclean => leader >= 0,
                };
                if done {
                    return 0;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return 7;
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }
}
