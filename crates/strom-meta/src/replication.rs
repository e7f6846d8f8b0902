//! The replicated cluster's model: brokers, replica assignments and each partition's leader,
//! leader epoch and in-sync replicas, as the controller decides them and ZooKeeper stores them.
//!
//! This module owns the plain data shared by the controller's state machine
//! (pure; see ARCHITECTURE.md), the ZooKeeper store (which encodes these types in Kafka's znode
//! JSON) and the broker (which applies them). It does not own how they change.

use std::collections::BTreeMap;
use std::fmt;

/// A broker's `broker.id`.
pub type BrokerId = i32;

/// The leader id Kafka writes when a partition has no leader.
pub const NO_LEADER: BrokerId = -1;

/// A partition's name: topic and index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index, `0..partitions`.
    pub partition: i32,
}

impl TopicPartition {
    /// Names partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One listener a broker advertises (an entry of `advertised.listeners`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener name, e.g. `PLAINTEXT`.
    pub listener: String,
    /// The security protocol the listener maps to, e.g. `PLAINTEXT`.
    pub security_protocol: String,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: u16,
}

/// What a live broker registers under `/brokers/ids/<id>` (an ephemeral znode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    /// `broker.id`.
    pub id: BrokerId,
    /// The advertised listeners, in configuration order; the first is the inter-broker one
    /// unless `inter.broker.listener.name` says otherwise.
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

/// A partition's leader, leader epoch and ISR: the `/brokers/topics/<t>/partitions/<p>/state`
/// znode, and what LeaderAndIsr carries to the replicas.
///
/// Invariants kept by the controller (and checked by its simulation): `isr` is a subset of the
/// partition's assigned replicas; `leader` is [`NO_LEADER`] or a member of `isr` (unless the
/// election was unclean, when the ISR is reset to the new leader alone); `leader_epoch` grows by
/// one with every leader change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderAndIsr {
    /// The leader's broker id, or [`NO_LEADER`].
    pub leader: BrokerId,
    /// Bumped on every leader change; stamped into every batch the leader appends.
    pub leader_epoch: i32,
    /// The in-sync replicas, leader included.
    pub isr: Vec<BrokerId>,
    /// The epoch of the controller that wrote this state.
    pub controller_epoch: i32,
}

/// A value read from (or written to) the store, with the znode version a conditional update of
/// it must name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// ZooKeeper's `stat.version` of the node holding it.
    pub version: i32,
}

/// A topic's replica assignment: the `/brokers/topics/<t>` znode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicAssignment {
    /// The topic's id (Kafka 2.8+ writes it into the znode as `topic_id`).
    pub topic_id: uuid::Uuid,
    /// Replicas of each partition, the preferred leader first. While a partition is being
    /// reassigned this is every replica it has: the target's and the original's.
    pub partitions: BTreeMap<i32, Vec<BrokerId>>,
    /// Kafka 2.4+'s `adding_replicas`: for each partition being reassigned, the replicas of
    /// the target that the original lacked (absent when none).
    pub adding_replicas: BTreeMap<i32, Vec<BrokerId>>,
    /// Kafka 2.4+'s `removing_replicas`: the original's replicas the target lacks.
    pub removing_replicas: BTreeMap<i32, Vec<BrokerId>>,
}

impl TopicAssignment {
    /// An assignment with no reassignment in progress.
    pub fn new(topic_id: uuid::Uuid, partitions: BTreeMap<i32, Vec<BrokerId>>) -> TopicAssignment {
        TopicAssignment {
            topic_id,
            partitions,
            adding_replicas: BTreeMap::new(),
            removing_replicas: BTreeMap::new(),
        }
    }

    /// Whether `partition` is being reassigned (it has replicas being added or removed).
    pub fn is_reassigning(&self, partition: i32) -> bool {
        self.adding_replicas
            .get(&partition)
            .is_some_and(|r| !r.is_empty())
            || self
                .removing_replicas
                .get(&partition)
                .is_some_and(|r| !r.is_empty())
    }

    /// The replicas a reassignment of `partition` moves to (every replica but those being
    /// removed): its target, or its replicas when none is in progress.
    pub fn target(&self, partition: i32) -> Vec<BrokerId> {
        let removing = self.removing_replicas.get(&partition);
        self.partitions
            .get(&partition)
            .map(|replicas| {
                replicas
                    .iter()
                    .copied()
                    .filter(|r| removing.is_none_or(|x| !x.contains(r)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The replicas `partition` had before its reassignment (every replica but those being
    /// added).
    pub fn original(&self, partition: i32) -> Vec<BrokerId> {
        let adding = self.adding_replicas.get(&partition);
        self.partitions
            .get(&partition)
            .map(|replicas| {
                replicas
                    .iter()
                    .copied()
                    .filter(|r| adding.is_none_or(|x| !x.contains(r)))
                    .collect()
            })
            .unwrap_or_default()
    }
}
