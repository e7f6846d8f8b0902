//! CreatePartitions in cluster mode, through any broker: read `/brokers/topics/<t>` with its
//! version, decide the new assignment ([`strom_meta::controller::partitions`]: Kafka's checks,
//! placement continuing partition 0's spread, or the request's manual assignment; refused with
//! REASSIGNMENT_IN_PROGRESS while a partition of the topic is being reassigned), write it
//! conditionally (a concurrent writer makes it read and decide again), and answer once this
//! broker's metadata cache shows every new partition with a leader, bounded by the request's
//! timeout. The controller's data watch on the znode does the rest (new partitions get a state,
//! a leader and LeaderAndIsr like a new topic's).
//!
//! It does not own placement (`controller::assignment`) nor decide leaders.

use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use strom_meta::controller::assignment::PlacementBroker;
use strom_meta::controller::partitions::plan_new_partitions;
use strom_meta::replication::{BrokerId, TopicAssignment};
use strom_meta::zk::ZkError;

use super::ClusterNode;
use crate::services::topic_error::TopicError;

/// How often a write that lost a race with another writer reads and decides again.
const ATTEMPTS: usize = 5;

fn unknown(topic: &str) -> TopicError {
    TopicError::new(
        E::UnknownTopicOrPartition.code(),
        format!("The topic '{topic}' does not exist."),
    )
}

fn zk_failure(error: ZkError) -> TopicError {
    TopicError::new(E::UnknownServerError.code(), error.to_string())
}

impl ClusterNode {
    /// Adds partitions to `topic` up to `count` (with `manual`, one replica list per new
    /// partition), or only checks it with `validate_only`, and waits up to `timeout` until
    /// this broker's metadata cache shows them with leaders.
    pub async fn create_partitions(
        &self,
        topic: &str,
        count: i32,
        manual: Option<Vec<Vec<BrokerId>>>,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<(), TopicError> {
        let store = self.store();
        let brokers: Vec<PlacementBroker> = self
            .metadata
            .brokers()
            .into_iter()
            .map(|b| PlacementBroker {
                id: b.id,
                rack: b.rack,
            })
            .collect();
        let mut attempt = 0;
        let topic_id = loop {
            attempt += 1;
            let Some(current) = store.topic_assignment(topic).await.map_err(zk_failure)? else {
                return Err(unknown(topic));
            };
            let deleting = store
                .topics_marked_for_deletion()
                .await
                .map_err(zk_failure)?;
            if deleting.iter().any(|t| t == topic) {
                return Err(TopicError::new(
                    E::InvalidTopicException.code(),
                    format!("The topic '{topic}' is queued for deletion."),
                ));
            }
            // Kafka refuses to grow a topic while any of its partitions is being reassigned:
            // the controller's next reassignment step would race with the new assignment.
            if current
                .value
                .partitions
                .keys()
                .any(|&p| current.value.is_reassigning(p))
            {
                return Err(TopicError::new(
                    E::ReassignmentInProgress.code(),
                    format!("A partition reassignment is in progress for the topic '{topic}'."),
                ));
            }
            let planned = plan_new_partitions(
                &current.value.partitions,
                count,
                manual.as_deref(),
                &brokers,
            )
            .map_err(|e| TopicError::new(e.code(), e.to_string()))?;
            if validate_only {
                return Ok(());
            }
            let assignment = TopicAssignment {
                partitions: planned,
                ..current.value.clone()
            };
            match store
                .set_topic_assignment(topic, &assignment, current.version)
                .await
            {
                Ok(_) => break current.value.topic_id,
                Err(ZkError::UnknownTopic { .. }) => return Err(unknown(topic)),
                Err(ZkError::BadVersion { .. }) if attempt < ATTEMPTS => continue,
                Err(error) => return Err(zk_failure(error)),
            }
        };
        tracing::info!(topic, count, "partitions added in ZooKeeper");
        let shown = self
            .wait_for_metadata(timeout, |cache| {
                cache
                    .cluster()
                    .topics
                    .get(topic)
                    .is_some_and(|t| t.topic_id == topic_id && t.partitions >= count)
                    && (0..count).all(|p| cache.leader(topic, p).is_some())
            })
            .await;
        if shown {
            Ok(())
        } else {
            Err(TopicError::new(
                E::RequestTimedOut.code(),
                format!(
                    "partitions of '{topic}' were added in ZooKeeper but their leaders were not \
                     known within {} ms",
                    timeout.as_millis()
                ),
            ))
        }
    }
}
