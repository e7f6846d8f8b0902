//! The metadata cache: what this broker believes about the cluster, as the handlers answer
//! it — the topics and their configuration overrides ([`ClusterMetadata`]), the live brokers
//! and their endpoints, the controller, and per partition its replicas, leader, leader epoch
//! and ISR ([`PartitionState`]).
//!
//! It is read on request paths (Metadata, DescribeCluster, FindCoordinator, topic assignment
//! checks) and written only by whoever decides the cluster's state. On a single node that is
//! [`MetadataCache::fill_single_node`]: one live broker, itself the controller, the leader and the
//! only replica and ISR member of every partition, at the leader epoch its log recorded last
//! (0 for a fresh log). A ZooKeeper-driven controller will fill the same tables
//! ([`MetadataCache::set_brokers`], [`MetadataCache::set_partition`]) and the answers will follow.
//!
//! It does not own persistence (the topic admin writes the metadata store first, then this) nor
//! the partitions' own leader epoch used to fence produce and fetch (the replica manager's
//! partitions carry it, set from here when they are hosted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use strom_meta::config::Listener;
use strom_meta::replication::{
    BrokerId, BrokerRegistration, Endpoint, LeaderAndIsr, TopicPartition, NO_LEADER,
};
use strom_meta::ClusterMetadata;

/// A partition's replicas and its leader, leader epoch and ISR.
///
/// Invariant (kept by whoever fills the cache): `leader_and_isr.isr` ⊆ `replicas`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// The assigned replicas, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// The leader, leader epoch and ISR.
    pub leader_and_isr: LeaderAndIsr,
}

/// See the module documentation.
pub struct MetadataCache {
    local_broker_id: BrokerId,
    cluster_id: String,
    cluster: RwLock<ClusterMetadata>,
    brokers: RwLock<Vec<BrokerRegistration>>,
    controller_id: AtomicI32,
    /// Per topic, the state of each partition by index (None: not known yet).
    partitions: RwLock<HashMap<String, Vec<Option<PartitionState>>>>,
    /// Brokers this broker found gone itself (see [`MetadataCache::mark_gone`]), and when.
    gone: Mutex<HashMap<BrokerId, Instant>>,
}

/// How long a broker this broker found gone is answered as unavailable without the controller
/// confirming it (by leaving it out of the live brokers): bounds the effect of a mistake.
const GONE_FOR: Duration = Duration::from_secs(3);

impl MetadataCache {
    /// A cache holding `cluster` as loaded from the metadata store, with no brokers and no
    /// partition states yet.
    pub fn new(local_broker_id: BrokerId, cluster: ClusterMetadata) -> MetadataCache {
        MetadataCache {
            local_broker_id,
            cluster_id: cluster.cluster_id.clone(),
            cluster: RwLock::new(cluster),
            brokers: RwLock::new(Vec::new()),
            controller_id: AtomicI32::new(NO_LEADER),
            partitions: RwLock::new(HashMap::new()),
            gone: Mutex::new(HashMap::new()),
        }
    }

    /// This broker's `broker.id`.
    pub fn local_broker_id(&self) -> BrokerId {
        self.local_broker_id
    }

    /// The cluster id from `meta.properties` (or newly generated).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The topics as last written.
    pub fn cluster(&self) -> RwLockReadGuard<'_, ClusterMetadata> {
        self.cluster.read().unwrap()
    }

    /// Replaces the topics with `next`, which the metadata store already holds.
    pub(crate) fn replace(&self, next: ClusterMetadata) {
        *self.cluster.write().unwrap() = next;
    }

    /// The live brokers, in id order.
    pub fn brokers(&self) -> Vec<BrokerRegistration> {
        self.brokers.read().unwrap().clone()
    }

    /// A live broker's registration.
    pub fn broker(&self, id: BrokerId) -> Option<BrokerRegistration> {
        self.brokers
            .read()
            .unwrap()
            .iter()
            .find(|b| b.id == id)
            .cloned()
    }

    /// True if `id` is a live broker.
    pub fn is_live_broker(&self, id: BrokerId) -> bool {
        self.brokers.read().unwrap().iter().any(|b| b.id == id)
    }

    /// The ids of the live brokers, in order.
    pub fn live_broker_ids(&self) -> Vec<BrokerId> {
        self.brokers.read().unwrap().iter().map(|b| b.id).collect()
    }

    /// Replaces the live brokers. A broker marked gone that the controller has now left out
    /// needs the mark no more (and must not keep it once it registers again).
    pub fn set_brokers(&self, mut brokers: Vec<BrokerRegistration>) {
        brokers.sort_by_key(|b| b.id);
        self.gone
            .lock()
            .unwrap()
            .retain(|id, _| brokers.iter().any(|b| b.id == *id));
        *self.brokers.write().unwrap() = brokers;
    }

    /// Notes that broker `id`'s process is gone, as this broker found it (a connection to it
    /// closed and its port refuses connections) before the controller's word arrives. For
    /// [`GONE_FOR`], or until the controller leaves it out of the live brokers, partitions it
    /// leads are answered without a leader (LEADER_NOT_AVAILABLE), as Kafka answers for a
    /// leader that is not alive: a client then asks again soon instead of waiting for its
    /// next periodic refresh, and finds the new leader the moment the controller names it.
    pub fn mark_gone(&self, id: BrokerId) {
        if id != self.local_broker_id && self.is_live_broker(id) {
            self.gone.lock().unwrap().insert(id, Instant::now());
        }
    }

    /// True if `id` is a live broker not marked gone: a leader clients can be sent to.
    pub fn is_available_leader(&self, id: BrokerId) -> bool {
        self.available_leaders().contains(&id)
    }

    /// The live brokers not marked gone (expired marks are dropped), in id order: what a
    /// Metadata answer reads once and checks each partition's leader against.
    pub fn available_leaders(&self) -> Vec<BrokerId> {
        let mut gone = self.gone.lock().unwrap();
        gone.retain(|_, since| since.elapsed() < GONE_FOR);
        self.brokers
            .read()
            .unwrap()
            .iter()
            .map(|b| b.id)
            .filter(|id| !gone.contains_key(id))
            .collect()
    }

    /// The active controller's broker id, or [`NO_LEADER`] (-1) if none is known.
    pub fn controller_id(&self) -> BrokerId {
        self.controller_id.load(Ordering::Relaxed)
    }

    /// Records the active controller.
    pub fn set_controller_id(&self, id: BrokerId) {
        self.controller_id.store(id, Ordering::Relaxed);
    }

    /// The state of one partition, if the cache has it.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<PartitionState> {
        let index = usize::try_from(partition).ok()?;
        self.partitions
            .read()
            .unwrap()
            .get(topic)
            .and_then(|states| states.get(index))
            .cloned()
            .flatten()
    }

    /// The states of a topic's partitions, by index (None where not known yet).
    pub fn topic_partitions(&self, topic: &str) -> Vec<Option<PartitionState>> {
        self.with_topic_partitions(topic, <[_]>::to_vec)
    }

    /// Calls `f` with the states of a topic's partitions, by index (empty if none), without
    /// copying them: Metadata describes topics of thousands of partitions this way.
    pub fn with_topic_partitions<T>(
        &self,
        topic: &str,
        f: impl FnOnce(&[Option<PartitionState>]) -> T,
    ) -> T {
        let partitions = self.partitions.read().unwrap();
        f(partitions.get(topic).map_or(&[][..], Vec::as_slice))
    }

    /// The leader of a partition, if it has one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<BrokerId> {
        let index = usize::try_from(partition).ok()?;
        let partitions = self.partitions.read().unwrap();
        let leader = partitions
            .get(topic)?
            .get(index)?
            .as_ref()?
            .leader_and_isr
            .leader;
        (leader != NO_LEADER).then_some(leader)
    }

    /// Sets one partition's state (a negative index is ignored).
    pub fn set_partition(&self, tp: &TopicPartition, state: PartitionState) {
        let Ok(index) = usize::try_from(tp.partition) else {
            return;
        };
        let mut partitions = self.partitions.write().unwrap();
        let states = partitions.entry(tp.topic.clone()).or_default();
        if states.len() <= index {
            states.resize(index + 1, None);
        }
        states[index] = Some(state);
    }

    /// Forgets a deleted topic's partition states.
    pub fn remove_topic(&self, topic: &str) {
        self.partitions.write().unwrap().remove(topic);
    }

    /// Fills the cache as a single node sees the cluster: this broker (with its advertised
    /// listeners) the only live broker and the controller.
    pub fn fill_single_node(&self, advertised: &[Listener], rack: Option<String>) {
        self.set_brokers(vec![BrokerRegistration {
            id: self.local_broker_id,
            endpoints: advertised
                .iter()
                .map(|l| Endpoint {
                    listener: l.name.clone(),
                    security_protocol: l.name.clone(),
                    host: l.host.clone(),
                    port: l.port,
                })
                .collect(),
            rack,
        }]);
        self.set_controller_id(self.local_broker_id);
    }

    /// The state of a single node's partition: this broker its only replica and ISR member,
    /// and its leader at `leader_epoch` unless its log is `offline` (failed to open), when it
    /// has no leader, as a partition on a failed log dir has none in Kafka.
    pub fn single_node_partition(&self, leader_epoch: i32, offline: bool) -> PartitionState {
        let me = self.local_broker_id;
        PartitionState {
            replicas: vec![me],
            leader_and_isr: LeaderAndIsr {
                leader: if offline { NO_LEADER } else { me },
                leader_epoch,
                isr: vec![me],
                controller_epoch: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(port: u16) -> Listener {
        Listener {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[test]
    fn a_single_node_is_the_only_broker_the_controller_and_every_leader() {
        let cache = MetadataCache::new(7, ClusterMetadata::default());
        assert_eq!(cache.controller_id(), NO_LEADER);
        cache.fill_single_node(&[listener(9092)], None);
        assert_eq!(cache.controller_id(), 7);
        assert_eq!(cache.live_broker_ids(), [7]);
        assert!(cache.is_live_broker(7) && !cache.is_live_broker(8));
        let broker = cache.broker(7).expect("registered");
        assert_eq!(
            (broker.endpoints[0].host.as_str(), broker.endpoints[0].port),
            ("127.0.0.1", 9092)
        );

        // Set out of order: index 2 before 0; index 1 stays unknown.
        cache.set_partition(
            &TopicPartition::new("t", 2),
            cache.single_node_partition(3, false),
        );
        cache.set_partition(
            &TopicPartition::new("t", 0),
            cache.single_node_partition(0, true),
        );
        assert_eq!(cache.leader("t", 2), Some(7));
        assert_eq!(
            cache.partition("t", 2).unwrap().leader_and_isr.leader_epoch,
            3
        );
        assert_eq!(
            cache.leader("t", 0),
            None,
            "an offline partition has no leader"
        );
        assert_eq!(cache.partition("t", 0).unwrap().leader_and_isr.isr, [7]);
        assert_eq!(cache.partition("t", 1), None);
        assert_eq!(cache.leader("t", -1), None);
        assert_eq!(cache.topic_partitions("t").len(), 3);

        cache.remove_topic("t");
        assert!(cache.topic_partitions("t").is_empty());
        assert_eq!(cache.leader("t", 2), None);
    }

    #[test]
    fn a_broker_found_gone_is_no_leader_until_the_controller_confirms_or_the_mark_expires() {
        let registration = |id| BrokerRegistration {
            id,
            endpoints: Vec::new(),
            rack: None,
        };
        let cache = MetadataCache::new(1, ClusterMetadata::default());
        cache.set_brokers(vec![registration(1), registration(2), registration(3)]);
        assert!(cache.is_available_leader(2) && !cache.is_available_leader(4));

        // Neither itself nor a broker that is not live can be marked.
        cache.mark_gone(1);
        cache.mark_gone(4);
        assert!(cache.is_available_leader(1));
        assert!(cache.gone.lock().unwrap().is_empty());

        cache.mark_gone(2);
        assert!(!cache.is_available_leader(2), "marked gone");
        assert!(
            cache.is_live_broker(2),
            "still live until the controller says otherwise"
        );
        assert!(cache.is_available_leader(3));

        // The controller leaves it out; when it registers again, it is a leader again.
        cache.set_brokers(vec![registration(1), registration(3)]);
        assert!(!cache.is_available_leader(2));
        cache.set_brokers(vec![registration(1), registration(2), registration(3)]);
        assert!(
            cache.is_available_leader(2),
            "a new registration carries no old mark"
        );

        // A mark the controller never confirms expires.
        cache.mark_gone(3);
        assert!(!cache.is_available_leader(3));
        *cache.gone.lock().unwrap().get_mut(&3).unwrap() -= GONE_FOR;
        assert!(cache.is_available_leader(3), "expired after GONE_FOR");
    }
}
