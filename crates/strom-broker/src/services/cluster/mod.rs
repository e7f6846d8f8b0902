//! Cluster mode (`zookeeper.connect` set): this broker's side of a ZooKeeper-coordinated
//! cluster, as Kafka ≤ 3.x runs one (see `docs/replication.md`).
//!
//! [`ClusterNode`] owns the broker's ZooKeeper session (connected again after an expiry), its
//! registration under `/brokers/ids` and the broker epoch that registration gave, the fence
//! against stale controller requests, and applying `UpdateMetadata` to the metadata cache (the
//! only way the cache changes in cluster mode). [`runtime`] is the task that keeps the session
//! and the registration, runs for controller and, while this broker is the controller, drives
//! the pure [`strom_meta::controller::Controller`]. [`admin`] writes topic creations and
//! deletions to ZooKeeper for CreateTopics/DeleteTopics received by any broker, and hands out
//! producer ids from ZooKeeper's blocks. [`shutdown`] is controlled shutdown, both the stopping
//! broker's requests and the controller's end.
//!
//! It does not own the partitions (the replica manager applies LeaderAndIsr and StopReplica)
//! nor decide leaders or ISRs (the controller's state machine does).

pub mod admin;
mod broker_configs;
mod configs;
pub mod elect;
mod partitions;

mod reads;
pub mod reassign;
pub mod runtime;
pub mod shutdown;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use strom_meta::config::{BrokerConfig, Listener};
use strom_meta::controller::{Controller, ControllerEpochFence, FenceRefusal};
use strom_meta::replication::{BrokerRegistration, Endpoint, TopicPartition};
use strom_meta::zk::{ZkConfig, ZkStore};
use strom_meta::TopicMetadata;

use crate::interbroker::{ControllerHeader, UpdateMetadataCommand};
use crate::metrics::ControllerGauges;
use crate::services::metadata_cache::{MetadataCache, PartitionState};

/// The broker epoch while not registered.
const UNREGISTERED: i64 = -1;

/// This broker's membership of a ZooKeeper cluster; see the module documentation.
pub struct ClusterNode {
    config: Arc<BrokerConfig>,
    /// The configuration with its dynamic levels (`broker_configs.rs`).
    live: Arc<crate::services::live_config::LiveConfig>,
    zk_config: ZkConfig,
    store: RwLock<ZkStore>,
    registration: BrokerRegistration,
    broker_epoch: AtomicI64,
    fence: Mutex<ControllerEpochFence>,
    metadata: Arc<MetadataCache>,
    /// Woken whenever an UpdateMetadata was applied (topic admin waits on it).
    updated: tokio::sync::Notify,
    /// The producer id block in use: (next id, last id of the block).
    producer_ids: Mutex<Option<(i64, i64)>>,
    /// What the controller runtime last published for the metrics: active (0 or 1), offline
    /// partitions, leader elections, unclean leader elections.
    controller_gauges: [AtomicU64; 4],
    /// The topic id each topic's `/config/topics/<t>` was last read for (`configs.rs`).
    configs_read: Mutex<std::collections::BTreeMap<String, uuid::Uuid>>,
    /// Held while the metadata cache's topics are copied, changed and replaced.
    cache_change: Mutex<()>,
    /// The newest `/config/changes` notification applied (`configs.rs`).
    last_config_change: Mutex<Option<String>>,
    /// The replica manager, for topics' log settings (`configs.rs`).
    replicas: std::sync::OnceLock<std::sync::Weak<crate::services::replica::ReplicaManager>>,
    /// ElectLeaders requests for the runtime's controller (`elect.rs`).
    elect_tx: tokio::sync::mpsc::UnboundedSender<elect::ElectCommand>,
    elect_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<elect::ElectCommand>>>,
    /// ControlledShutdown requests for the runtime's controller (`shutdown.rs`).
    shutdown_tx: tokio::sync::mpsc::UnboundedSender<shutdown::ShutdownCommand>,
    shutdown_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<shutdown::ShutdownCommand>>>,

    /// Reassignment requests for the runtime's controller (`reassign.rs`).
    reassign_tx: tokio::sync::mpsc::UnboundedSender<reassign::ReassignCommand>,
    reassign_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<reassign::ReassignCommand>>>,
}

/// The ZooKeeper settings of a broker in cluster mode (`None` for a single node).
pub fn zk_config(config: &BrokerConfig) -> Option<ZkConfig> {
    let connect = config.cluster.zookeeper_connect.as_ref()?;
    let mut text = connect.servers_text();
    if let Some(chroot) = &connect.chroot {
        text.push_str(chroot);
    }
    Some(ZkConfig {
        connect: text,
        session_timeout_ms: config.cluster.zookeeper_session_timeout_ms.max(1) as u64,
        connection_timeout_ms: Some(config.cluster.zookeeper_connection_timeout_ms.max(1) as u64),
    })
}

/// What this broker registers: its advertised listeners and rack.
pub fn registration(config: &BrokerConfig, advertised: &[Listener]) -> BrokerRegistration {
    BrokerRegistration {
        id: config.broker_id,
        endpoints: advertised
            .iter()
            .map(|l| Endpoint {
                listener: l.name.clone(),
                security_protocol: "PLAINTEXT".into(),
                host: l.host.clone(),
                port: l.port,
            })
            .collect(),
        rack: config.broker_rack.clone(),
    }
}

/// The `host:port` other brokers reach `broker` at: its endpoint on `inter.broker.listener.name`
/// (else its first one).
pub fn broker_addr(config: &BrokerConfig, broker: &BrokerRegistration) -> Option<String> {
    let wanted = config.cluster.inter_broker_listener_name.as_deref();
    broker
        .endpoints
        .iter()
        .find(|e| wanted.is_some_and(|name| e.listener == name))
        .or_else(|| broker.endpoints.first())
        .map(|e| format!("{}:{}", e.host, e.port))
}

impl ClusterNode {
    /// A node over a connected `store`, not registered yet. Until the first UpdateMetadata the
    /// metadata cache lists only this broker and no controller.
    pub fn new(
        config: Arc<BrokerConfig>,
        live: Arc<crate::services::live_config::LiveConfig>,
        zk_config: ZkConfig,
        store: ZkStore,
        registration: BrokerRegistration,
        metadata: Arc<MetadataCache>,
    ) -> ClusterNode {
        metadata.set_brokers(vec![registration.clone()]);
        let (elect_tx, elect_rx) = tokio::sync::mpsc::unbounded_channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::mpsc::unbounded_channel();

        let (reassign_tx, reassign_rx) = tokio::sync::mpsc::unbounded_channel();
        ClusterNode {
            config,
            live,
            zk_config,
            store: RwLock::new(store),
            registration,
            broker_epoch: AtomicI64::new(UNREGISTERED),
            fence: Mutex::new(ControllerEpochFence::default()),
            metadata,
            updated: tokio::sync::Notify::new(),
            producer_ids: Mutex::new(None),
            controller_gauges: Default::default(),
            configs_read: Mutex::default(),
            cache_change: Mutex::new(()),
            last_config_change: Mutex::new(None),
            replicas: std::sync::OnceLock::new(),
            elect_tx,
            elect_rx: Mutex::new(Some(elect_rx)),
            shutdown_tx,
            shutdown_rx: Mutex::new(Some(shutdown_rx)),

            reassign_tx,
            reassign_rx: Mutex::new(Some(reassign_rx)),
        }
    }

    /// The current ZooKeeper session.
    pub fn store(&self) -> ZkStore {
        self.store.read().unwrap().clone()
    }

    fn set_store(&self, store: ZkStore) {
        *self.store.write().unwrap() = store;
    }

    /// The broker epoch of this broker's current registration, if registered.
    pub fn broker_epoch(&self) -> Option<i64> {
        let epoch = self.broker_epoch.load(Ordering::SeqCst);
        (epoch != UNREGISTERED).then_some(epoch)
    }

    fn set_broker_epoch(&self, epoch: Option<i64>) {
        self.broker_epoch
            .store(epoch.unwrap_or(UNREGISTERED), Ordering::SeqCst);
    }

    /// Publishes the controller's state for the metrics (after each of its steps).
    pub fn publish_controller(&self, controller: &Controller) {
        let stats = controller.stats();
        let values = [
            u64::from(controller.is_active()),
            controller.offline_partitions() as u64,
            stats.leader_elections,
            stats.unclean_leader_elections,
        ];
        for (gauge, value) in self.controller_gauges.iter().zip(values) {
            gauge.store(value, Ordering::Relaxed);
        }
    }

    /// The controller's state as last published.
    pub fn controller_gauges(&self) -> ControllerGauges {
        let [active, offline, elections, unclean] = self
            .controller_gauges
            .each_ref()
            .map(|g| g.load(Ordering::Relaxed));
        ControllerGauges {
            active: active == 1,
            offline_partitions: offline,
            leader_elections: elections,
            unclean_leader_elections: unclean,
        }
    }

    /// The highest controller epoch this broker has accepted a request from.
    pub fn latest_controller_epoch(&self) -> i32 {
        self.fence.lock().unwrap().latest()
    }

    /// Checks a controller request's epochs (KIP-380 and Kafka's controller epoch fence),
    /// raising the fence if it is accepted.
    pub fn accept(&self, header: &ControllerHeader) -> Result<(), FenceRefusal> {
        self.fence.lock().unwrap().accept(
            header.controller_epoch,
            header.broker_epoch,
            self.broker_epoch(),
        )
    }

    /// Waits (up to `wait`) until a request that was not ready (this broker's registration
    /// not yet known, or older than the one the controller names) is accepted or refused.
    pub async fn accept_when_ready(
        &self,
        header: &ControllerHeader,
        wait: std::time::Duration,
    ) -> Result<(), FenceRefusal> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.accept(header) {
                Err(FenceRefusal::NotReady) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    /// Applies an accepted UpdateMetadata to the metadata cache: the live brokers, the
    /// controller, the partition states (adding topics not seen before) and deleted topics.
    pub fn apply_update_metadata(&self, command: &UpdateMetadataCommand) {
        self.metadata.set_brokers(command.brokers.clone());
        self.metadata
            .set_controller_id(command.header.controller_id);
        let _change = self.cache_change.lock().unwrap();
        let mut cluster = self.metadata.cluster().clone();
        let mut changed = false;
        for partition in &command.partitions {
            let info = &partition.info;
            let tp = &info.partition;
            let count = tp.partition + 1;
            match cluster.topics.get_mut(&tp.topic) {
                Some(topic) if topic.topic_id == partition.topic_id => {
                    if topic.partitions < count {
                        topic.partitions = count;
                        changed = true;
                    }
                }
                _ => {
                    // A new topic (or one recreated under a new id).
                    self.metadata.remove_topic(&tp.topic);
                    cluster.topics.insert(
                        tp.topic.clone(),
                        TopicMetadata {
                            name: tp.topic.clone(),
                            topic_id: partition.topic_id,
                            partitions: count,
                            replication_factor: info.replicas.len() as i16,
                            configs: Default::default(),
                            internal: strom_meta::topic::is_internal_topic(&tp.topic),
                        },
                    );
                    changed = true;
                }
            }
        }
        let deleted: std::collections::BTreeSet<&str> =
            command.deleted.iter().map(|tp| tp.topic.as_str()).collect();
        for topic in &deleted {
            changed |= cluster.topics.remove(*topic).is_some();
        }
        if changed {
            cluster.version += 1;
            self.metadata.replace(cluster);
        }
        for topic in deleted {
            self.metadata.remove_topic(topic);
        }
        for partition in &command.partitions {
            let info = &partition.info;
            self.metadata.set_partition(
                &TopicPartition::new(info.partition.topic.clone(), info.partition.partition),
                PartitionState {
                    replicas: info.replicas.clone(),
                    leader_and_isr: info.state.value.clone(),
                },
            );
        }
        self.updated.notify_waiters();
    }

    /// Waits until `check` holds on the metadata cache, re-checking after every UpdateMetadata,
    /// for at most `timeout`; returns whether it held.
    pub async fn wait_for_metadata(
        &self,
        timeout: std::time::Duration,
        check: impl Fn(&MetadataCache) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let updated = self.updated.notified();
            if check(&self.metadata) {
                return true;
            }
            if tokio::time::timeout_at(deadline, updated).await.is_err() {
                return check(&self.metadata);
            }
        }
    }
}
