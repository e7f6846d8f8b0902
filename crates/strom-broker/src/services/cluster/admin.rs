//! Topic admin and producer ids in cluster mode: any broker writes a topic's znodes
//! (`/brokers/topics/<t>` and `/config/topics/<t>`) or its deletion mark
//! (`/admin/delete_topics/<t>`) and answers once its metadata cache shows the outcome, bounded
//! by the request's timeout; the controller does the rest. Replicas are placed rack-aware over
//! the live brokers the cache knows ([`strom_meta::controller::assignment`]).
//!
//! It does not own the single node's topic admin (`services::topics`) nor decide leaders.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use rand_core::{Rng as _, SeedableRng as _};
use strom_meta::config::TopicConfig;
use strom_meta::controller::assignment::{
    assign_replicas, validate_manual_assignment, PlacementBroker,
};
use strom_meta::replication::{BrokerId, TopicAssignment};
use strom_meta::zk::ZkError;
use strom_meta::TopicMetadata;
use uuid::Uuid;

use super::ClusterNode;
use crate::services::topic_error::TopicError;

/// What CreateTopics asks for one topic, defaults resolved.
#[derive(Clone, Debug)]
pub struct NewTopic {
    /// The name.
    pub name: String,
    /// The partition count (ignored with a manual assignment).
    pub partitions: i32,
    /// The replication factor (ignored with a manual assignment).
    pub replication_factor: i16,
    /// A manual assignment: replicas by partition.
    pub assignment: Option<BTreeMap<i32, Vec<BrokerId>>>,
    /// Configuration overrides.
    pub configs: BTreeMap<String, String>,
}

fn zk_failure(error: ZkError) -> TopicError {
    match error {
        ZkError::TopicExists { topic } => TopicError::new(
            E::TopicAlreadyExists.code(),
            format!("topic '{topic}' already exists"),
        ),
        ZkError::UnknownTopic { topic } => TopicError::new(
            E::UnknownTopicOrPartition.code(),
            format!("topic '{topic}' does not exist"),
        ),
        ZkError::InvalidTopic { reason } => {
            TopicError::new(E::InvalidTopicException.code(), reason)
        }
        other => TopicError::new(E::UnknownServerError.code(), other.to_string()),
    }
}

impl ClusterNode {
    /// Creates a topic in ZooKeeper (or only checks it with `validate_only`) and waits up to
    /// `timeout` until this broker's metadata cache shows every partition with a leader.
    pub async fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<TopicMetadata, TopicError> {
        let name = topic.name.clone();
        strom_meta::validate_topic_name(&name)
            .map_err(|m| TopicError::new(E::InvalidTopicException.code(), m))?;
        TopicConfig::resolve(&self.live.current(), &topic.configs)
            .map_err(|e| TopicError::new(E::InvalidConfig.code(), e.to_string()))?;
        if let Some(other) = self
            .metadata
            .cluster()
            .topics
            .keys()
            .find(|other| *other != &name && strom_meta::topic_names_collide(other, &name))
        {
            return Err(TopicError::new(
                E::InvalidTopicException.code(),
                format!("topic '{name}' collides with existing topic '{other}'"),
            ));
        }
        let brokers: Vec<PlacementBroker> = self
            .metadata
            .brokers()
            .into_iter()
            .map(|b| PlacementBroker {
                id: b.id,
                rack: b.rack,
            })
            .collect();
        let partitions = match topic.assignment {
            Some(manual) => {
                let registered: BTreeSet<BrokerId> = brokers.iter().map(|b| b.id).collect();
                validate_manual_assignment(&manual, &registered)
                    .map_err(|e| TopicError::new(e.code(), e.to_string()))?;
                manual
            }
            None => {
                let n = brokers.len().max(1);
                // Kafka's two random draws; the seed is the only randomness of this shell.
                let seed = crate::clock::now_ms() as u64 ^ u64::from(std::process::id());
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                assign_replicas(
                    &brokers,
                    topic.partitions,
                    i32::from(topic.replication_factor),
                    0,
                    (rng.next_u64() % n as u64) as usize,
                    (rng.next_u64() % n as u64) as usize,
                )
                .map_err(|e| TopicError::new(e.code(), e.to_string()))?
            }
        };
        let count = partitions.len() as i32;
        let replication_factor = partitions.values().next().map_or(0, |r| r.len()) as i16;
        let meta = TopicMetadata {
            name: name.clone(),
            topic_id: Uuid::new_v4(),
            partitions: count,
            replication_factor,
            configs: topic.configs.clone(),
            internal: strom_meta::topic::is_internal_topic(&name),
        };
        if validate_only {
            if self.metadata.cluster().topics.contains_key(&name) {
                return Err(TopicError::new(
                    E::TopicAlreadyExists.code(),
                    format!("topic '{name}' already exists"),
                ));
            }
            return Ok(meta);
        }
        let assignment = TopicAssignment::new(meta.topic_id, partitions);
        let store = self.store();
        match store.create_topic(&name, &assignment, &topic.configs).await {
            Ok(()) => {}
            // Kafka's message for a name whose deletion has not finished.
            Err(ZkError::TopicExists { .. })
                if store
                    .topics_marked_for_deletion()
                    .await
                    .is_ok_and(|marked| marked.contains(&name)) =>
            {
                return Err(TopicError::new(
                    E::TopicAlreadyExists.code(),
                    format!("Topic '{name}' is marked for deletion."),
                ));
            }
            Err(error) => return Err(zk_failure(error)),
        }
        let id = meta.topic_id;
        let shown = self
            .wait_for_metadata(timeout, |cache| {
                cache
                    .cluster()
                    .topics
                    .get(&name)
                    .is_some_and(|t| t.topic_id == id && t.partitions == count)
                    && (0..count).all(|p| cache.leader(&name, p).is_some())
            })
            .await;
        if !shown {
            return Err(TopicError::new(
                E::RequestTimedOut.code(),
                format!(
                    "topic '{name}' was created in ZooKeeper but its leaders were not known \
                     within {} ms",
                    timeout.as_millis()
                ),
            ));
        }
        Ok(meta)
    }

    /// Marks a topic for deletion and waits up to `timeout` until the metadata cache no longer
    /// shows it.
    pub async fn delete_topic(&self, name: &str, timeout: Duration) -> Result<(), TopicError> {
        if !self.config.delete_topic_enable {
            return Err(TopicError::new(
                E::TopicDeletionDisabled.code(),
                "topic deletion is disabled (delete.topic.enable=false)",
            ));
        }
        self.store()
            .mark_topic_for_deletion(name)
            .await
            .map_err(zk_failure)?;
        let gone = self
            .wait_for_metadata(timeout, |cache| !cache.cluster().topics.contains_key(name))
            .await;
        if gone {
            Ok(())
        } else {
            Err(TopicError::new(
                E::RequestTimedOut.code(),
                format!(
                    "topic '{name}' is marked for deletion but still exists after {} ms",
                    timeout.as_millis()
                ),
            ))
        }
    }

    /// The next producer id, from this broker's block of `/latest_producer_id_block`
    /// (a new block is claimed when it runs out, so ids are unique across the cluster).
    pub async fn next_producer_id(&self) -> Result<i64, ZkError> {
        {
            let mut block = self.producer_ids.lock().unwrap();
            if let Some((next, last)) = block.as_mut() {
                if *next <= *last {
                    let id = *next;
                    *next += 1;
                    return Ok(id);
                }
            }
        }
        let claimed = self
            .store()
            .allocate_producer_id_block(self.registration.id)
            .await?;
        let mut block = self.producer_ids.lock().unwrap();
        *block = Some((claimed.first + 1, claimed.last));
        Ok(claimed.first)
    }
}
