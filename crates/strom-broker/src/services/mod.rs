//! The services layer: what the handlers call and what owns the broker's state.
//!
//! - [`replica`]: the replica manager — the hosted partitions, their durable acknowledgement
//!   and the waits on their watermarks;
//! - [`metadata_cache`]: what this broker believes about the cluster (topics, brokers,
//!   leaders);
//! - [`topics`]: topic-level changes (create, delete, add partitions, alter configs);
//! - [`coordinator`], over the pure state machines of [`group`]: consumer groups and committed
//!   offsets;
//! - [`producer_ids`]: producer ids for idempotent producers;
//! - [`cluster`]: cluster mode (`zookeeper.connect`): the ZooKeeper session and registration,
//!   the controller runtime, UpdateMetadata, topic admin and producer ids through ZooKeeper;
//! - [`background`]: the periodic storage work;
//! - [`live_config`]: the broker configuration with its dynamic levels, applied at runtime.
//!
//! [`Services`] bundles them into the one context the handlers are given. Services sit on the
//! storage and metadata crates (`strom-log`, `strom-meta`) and never reach up: no service
//! imports a handler, the connection layer or the broker's wiring (checked by
//! `tests/layers.rs`).

pub mod background;
pub mod cluster;
pub mod coordinator;
pub mod fetch_sessions;
pub mod group;
pub mod live_config;
pub mod log_config;
pub mod metadata_cache;
pub mod producer_ids;
pub mod replica;
pub mod topic_error;
pub mod topics;
pub mod txn;

use std::sync::Arc;

use strom_meta::config::BrokerConfig;

use crate::metrics::{ControllerGauges, Gauges, Metrics, PartitionGauges};
use coordinator::GroupCoordinator;
use metadata_cache::MetadataCache;
use producer_ids::ProducerIdAllocator;
use replica::ReplicaManager;
use topics::TopicAdmin;

/// The context every handler is given: the broker's services, shared by all connections.
pub struct Services {
    /// The configuration the broker was started with (static, plus the dynamic levels it
    /// read at start). Dynamic values are read from `live`.
    pub config: Arc<BrokerConfig>,
    /// The configuration now, with the dynamic levels (AlterConfigs on BROKER resources).
    pub live: Arc<live_config::LiveConfig>,
    /// Topics, brokers and leaders as this broker knows them.
    pub metadata: Arc<MetadataCache>,
    /// The hosted partitions.
    pub replicas: Arc<ReplicaManager>,
    /// Topic-level changes.
    pub topics: Arc<TopicAdmin>,
    /// The consumer-group coordinator.
    pub groups: Arc<GroupCoordinator>,
    /// Producer ids for InitProducerId.
    pub producer_ids: ProducerIdAllocator,
    /// The transaction coordinator.
    pub txn: txn::TxnService,
    /// Counters for the Prometheus endpoint.
    pub metrics: Arc<Metrics>,
    /// Fetch sessions (KIP-227).
    pub fetch_sessions: fetch_sessions::FetchSessions,
    /// Cluster mode's node (set once at start when `zookeeper.connect` is set; empty on a
    /// single node).
    pub cluster: std::sync::OnceLock<Arc<cluster::ClusterNode>>,
}

impl Gauges for Services {
    fn partitions(&self) -> Vec<PartitionGauges> {
        let mut partitions: Vec<_> = self
            .replicas
            .all_partitions()
            .into_iter()
            .filter(|p| !p.is_deleted())
            .collect();
        partitions.sort_by(|a, b| a.topic_partition.cmp(&b.topic_partition));
        let live = self.live.current();
        let min_insync: std::collections::BTreeMap<String, usize> = self
            .metadata
            .cluster()
            .topics
            .values()
            .map(|t| {
                let min = strom_meta::config::TopicConfig::resolve(&live, &t.configs)
                    .map_or(1, |c| c.min_insync_replicas.max(1) as usize);
                (t.name.clone(), min)
            })
            .collect();
        partitions
            .iter()
            .map(|p| {
                let tp = &p.topic_partition;
                let state = self.metadata.partition(&tp.topic, tp.partition);
                let me = self.metadata.local_broker_id();
                let log = p.log().lock().unwrap();
                PartitionGauges {
                    leader: state
                        .as_ref()
                        .is_some_and(|s| s.leader_and_isr.leader == me),
                    leader_id: state
                        .as_ref()
                        .map_or(strom_meta::replication::NO_LEADER, |s| {
                            s.leader_and_isr.leader
                        }),
                    follower_lag: p.follower_lag(),
                    under_replicated: state
                        .as_ref()
                        .is_some_and(|s| s.leader_and_isr.isr.len() < s.replicas.len()),
                    under_min_isr: state.as_ref().is_some_and(|s| {
                        s.leader_and_isr.isr.len() < min_insync.get(&tp.topic).copied().unwrap_or(1)
                    }),
                    topic: p.topic_partition.topic.clone(),
                    partition: p.topic_partition.partition,
                    size_bytes: log.size_bytes(),
                    log_end_offset: log.log_end_offset().max(0) as u64,
                    log_start_offset: log.log_start_offset().max(0) as u64,
                    segments: log.segment_count() as u64,
                }
            })
            .collect()
    }

    fn controller(&self) -> ControllerGauges {
        if let Some(node) = self.cluster.get() {
            return node.controller_gauges();
        }
        // A single node is its own controller; a partition whose log failed to open has no
        // leader.
        let topics: Vec<String> = self.metadata.cluster().topics.keys().cloned().collect();
        let offline = topics
            .iter()
            .flat_map(|t| self.metadata.topic_partitions(t))
            .filter(|s| {
                s.as_ref()
                    .is_none_or(|s| s.leader_and_isr.leader == strom_meta::replication::NO_LEADER)
            })
            .count();
        ControllerGauges {
            active: true,
            offline_partitions: offline as u64,
            ..ControllerGauges::default()
        }
    }

    fn fetch_sessions(&self) -> crate::metrics::SessionGauges {
        self.fetch_sessions.gauges()
    }

    fn group_states(&self) -> Vec<String> {
        self.groups
            .list()
            .into_iter()
            .map(|(_, _, state)| format!("{state:?}"))
            .collect()
    }
}
