//! The controller's view of `/brokers/topics` after a re-read (`Input::TopicsChanged`): topics
//! created and deleted, and partitions added, merged as Kafka's controller handles a partition
//! modification. A child of `state` (it changes `Active`).

use std::collections::{BTreeMap, BTreeSet};

use super::Active;
use crate::controller::{Effect, TopicInfo};

impl Active {
    /// `Input::TopicsChanged`: every topic as just read.
    pub(super) fn topics_changed(
        &mut self,
        topics: BTreeMap<String, TopicInfo>,
        effects: &mut Vec<Effect>,
    ) {
        let known: BTreeSet<String> = self.topics.keys().cloned().collect();
        self.topics
            .retain(|t, _| topics.contains_key(t) || self.deleting.contains_key(t));
        for (topic, info) in topics {
            if self.deleted_ids.contains(&info.assignment.topic_id) {
                continue;
            }
            let info = self.with_added_partitions(&topic, info);
            let changed = self.topics.get(&topic) != Some(&info);
            self.topics.insert(topic.clone(), info);
            if changed || !known.contains(&topic) {
                for partition in self.topic_partitions(&topic) {
                    self.reconcile(&partition, effects);
                }
            }
        }
        self.states
            .retain(|p, _| self.topics.contains_key(&p.topic));
    }

    /// A topic as just read from ZooKeeper, merged as Kafka's controller takes a partition
    /// modification: of a topic it knows (same id), only the partitions it did not have are
    /// new; existing partitions keep the controller's own assignment, which it writes itself
    /// (reassignment steps) and which a read racing with those writes must not roll back.
    fn with_added_partitions(&self, topic: &str, read: TopicInfo) -> TopicInfo {
        let Some(known) = self
            .topics
            .get(topic)
            .filter(|t| t.assignment.topic_id == read.assignment.topic_id)
        else {
            return read;
        };
        let mut merged = known.clone();
        for (partition, replicas) in read.assignment.partitions {
            merged
                .assignment
                .partitions
                .entry(partition)
                .or_insert(replicas);
        }
        merged.unclean_leader_election = read.unclean_leader_election;
        merged
    }
}
