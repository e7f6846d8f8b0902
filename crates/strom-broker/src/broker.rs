//! The broker's wiring: open the storage and the metadata store, build the services, and hand
//! them to the connection layer ([`start`] binds the listeners and spawns the tasks).
//!
//! [`Broker`] only wires the layers together — connection ([`crate::connection`]) ← handlers
//! ([`crate::handlers`]) ← services ([`crate::services`]) ← `strom-log` and `strom-meta` — and
//! no module imports it (checked by `tests/layers.rs`); everything a request needs reaches the
//! handlers through the [`Services`] context.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use strom_log::{LogConfig, LogManager, TopicPartition};
use strom_meta::config::{BrokerConfig, ConfigError, Listener, TopicConfig};
use strom_meta::{FileStore, MetadataStore};

use crate::metrics::Metrics;
use crate::services::coordinator::GroupCoordinator;
use crate::services::log_config::log_config;
use crate::services::metadata_cache::MetadataCache;
use crate::services::producer_ids::ProducerIdAllocator;
use crate::services::replica::ReplicaManager;
use crate::services::topics::TopicAdmin;
use crate::services::Services;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A log directory could not be opened or recovered.
    #[error("opening the log directories failed: {0}")]
    Log(#[from] strom_log::LogError),
    /// The metadata store could not be read or written.
    #[error("the metadata store failed: {0}")]
    Meta(#[from] strom_meta::MetaError),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address from `listeners`.
        address: String,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The stored metadata holds a topic configuration that no longer validates.
    #[error("stored topic configuration is invalid: {0}")]
    Config(#[from] ConfigError),
    /// ZooKeeper could not be reached or read (cluster mode).
    #[error("ZooKeeper: {0}")]
    Zk(#[from] strom_meta::zk::ZkError),
    /// Any other I/O failure during start-up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One broker: its services, built once at start and shared by every connection.
pub struct Broker {
    /// The context the handlers are given.
    pub services: Arc<Services>,
}

impl Broker {
    /// Opens the metadata store and the log directories, recovering logs as needed, and builds
    /// the services over them.
    ///
    /// `advertised` must already have its ports resolved.
    pub fn open(mut config: BrokerConfig, advertised: Vec<Listener>) -> Result<Broker, StartError> {
        let first_dir = config
            .log_dirs
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("strom-data"));
        std::fs::create_dir_all(&first_dir)?;
        let store = FileStore::new(&first_dir);
        let mut metadata = store.load()?.unwrap_or_default();
        // In cluster mode the cluster id is ZooKeeper's (`/cluster/id`, put in the config by
        // `start`), and topics come only from the controller's UpdateMetadata.
        let clustered = config.cluster.zookeeper_connect.is_some();
        if clustered {
            if let Some(id) = &config.cluster_id {
                metadata.cluster_id = id.clone();
            }
        }
        if metadata.cluster_id.is_empty() {
            metadata.cluster_id = config
                .cluster_id
                .clone()
                .unwrap_or_else(strom_meta::new_cluster_id);
        }
        if !clustered {
            // A single node's dynamic levels live in its metadata file.
            let layers = crate::services::topics::stored_layers(&metadata, config.broker_id);
            if layers != config.dynamic {
                config = config.with_dynamic(layers)?;
            }
        }
        let mut topic_configs: HashMap<String, LogConfig> = HashMap::new();
        for topic in metadata.topics.values() {
            let resolved = TopicConfig::resolve(&config, &topic.configs)?;
            topic_configs.insert(topic.name.clone(), log_config(&resolved));
        }
        let default_log_config = log_config(&TopicConfig::resolve(&config, &BTreeMap::new())?);
        let lookup = |topic: &str| {
            topic_configs
                .get(topic)
                .cloned()
                .unwrap_or_else(|| default_log_config.clone())
        };
        let started = std::time::Instant::now();
        // Partition directories the metadata does not know (a creation cut short by a crash,
        // a topic deleted while the broker was down) are not opened: the log manager removes
        // them when they hold no records and moves them aside as strays otherwise.
        // In cluster mode nothing is removed before the controller has spoken.
        let is_known = |tp: &TopicPartition| {
            clustered
                || metadata
                    .topics
                    .get(&tp.topic)
                    .is_some_and(|t| tp.partition < t.partitions)
        };
        let logs = LogManager::open(
            &config.log_dirs,
            config.broker_id,
            &metadata.cluster_id,
            config.num_recovery_threads_per_data_dir.max(1) as usize,
            &lookup,
            &is_known,
            crate::clock::now_ms(),
        )?;
        metadata.cluster_id = logs.cluster_id().to_string();
        store.save(&metadata)?;

        let config = Arc::new(config);
        let live = Arc::new(crate::services::live_config::LiveConfig::new(
            config.clone(),
        ));
        let metrics = Arc::new(Metrics::new(
            crate::protocol::request::SUPPORTED
                .iter()
                .map(|(api, _, _)| *api),
        ));
        let replicas = Arc::new(ReplicaManager::new(logs, &lookup, metrics.clone()));
        replicas.quotas.configure(&config);
        let producer_ids = ProducerIdAllocator::open(&first_dir)?;
        let metadata = if clustered {
            let local = strom_meta::ClusterMetadata {
                cluster_id: metadata.cluster_id.clone(),
                ..Default::default()
            };
            Arc::new(MetadataCache::new(config.broker_id, local))
        } else {
            let metadata = Arc::new(MetadataCache::new(config.broker_id, metadata));
            metadata.fill_single_node(&advertised, config.broker_rack.clone());
            metadata
        };
        let topics = Arc::new(TopicAdmin::new(
            live.clone(),
            Box::new(store),
            metadata.clone(),
            replicas.clone(),
        ));
        if !clustered {
            topics.host_missing_partitions()?;
            topics.publish_single_node_partitions();
        }
        let groups = Arc::new(GroupCoordinator::new(
            &config,
            crate::clock::now_ms() as u64 ^ u64::from(std::process::id()),
            metadata.clone(),
            replicas.clone(),
            topics.clone(),
        ));
        groups.load(crate::clock::now_ms());
        let stats = replicas.logs.recovery_stats();
        tracing::info!(
            partitions = replicas.all_partitions().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            segments_recovered = stats.segments_recovered,
            bytes_reread = stats.bytes_reread,
            bytes_truncated = stats.bytes_truncated,
            "logs loaded"
        );
        let txn = crate::services::txn::TxnService::new(&config);
        let fetch_sessions = crate::services::fetch_sessions::FetchSessions::new(
            config.max_incremental_fetch_session_cache_slots.max(0) as usize,
            crate::clock::now_ms() as u64,
        );
        Ok(Broker {
            services: Arc::new(Services {
                config,
                live,
                metadata,
                replicas,
                topics,
                groups,
                txn,
                producer_ids,
                fetch_sessions,
                metrics,
                cluster: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Clean shutdown of the storage: flush, snapshots, checkpoints, clean-shutdown marker.
    pub fn shutdown_storage(&self) -> Result<(), strom_log::LogError> {
        self.services.replicas.shutdown_storage()
    }
}

mod handle;
pub use handle::{start, BrokerHandle};
