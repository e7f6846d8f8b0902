//! The broker's shared state and its lifecycle: open the log dirs and the metadata store,
//! bind the listeners, serve, and shut down cleanly.
//!
//! [`Broker`] is shared by every connection behind an `Arc`. Topic-level changes (create,
//! delete, add partitions, alter configs) go through its methods so that the metadata store,
//! the in-memory model and the partition logs change together, under one lock
//! (`metadata_change`). Creation is all or nothing: every new partition's log is created
//! first, then the metadata is written, and a failure at either step removes the logs created
//! so far. A crash in between leaves directories the metadata does not know, which the next
//! start removes (no records) or moves aside as strays (see `strom_log::manager`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use strom_log::{LogConfig, LogManager, TopicPartition};
use strom_meta::config::{BrokerConfig, ConfigError, Listener, TopicConfig};
use strom_meta::{ClusterMetadata, FileStore, MetadataStore, TopicMetadata};
use uuid::Uuid;

use crate::services::producer_ids::ProducerIdAllocator;
use crate::services::replica::partition::Partition;

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
    /// Any other I/O failure during start-up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An error from a topic-level change, already mapped to a Kafka error code.
#[derive(Debug, Clone)]
pub struct TopicError {
    /// The Kafka error code.
    pub code: i16,
    /// A message for the client's `error_message` field and the log.
    pub message: String,
}

impl TopicError {
    pub(crate) fn new(code: i16, message: impl Into<String>) -> TopicError {
        TopicError {
            code,
            message: message.into(),
        }
    }
}

/// The node id of the only broker in single-node mode is `broker.id`; every partition is led
/// by it with leader epoch 0.
pub const LEADER_EPOCH: i32 = 0;

/// The error code for a request that names `current` as the leader epoch it believes in:
/// `FENCED_LEADER_EPOCH` when it is older than ours, `UNKNOWN_LEADER_EPOCH` when newer, 0 when
/// it matches or is not given (-1).
pub fn leader_epoch_error(current: i32) -> i16 {
    use kafka_protocol::error::ResponseError as E;
    if current < 0 {
        return 0;
    }
    match current.cmp(&LEADER_EPOCH) {
        std::cmp::Ordering::Less => E::FencedLeaderEpoch.code(),
        std::cmp::Ordering::Greater => E::UnknownLeaderEpoch.code(),
        std::cmp::Ordering::Equal => 0,
    }
}

/// State shared by all connections of one broker.
pub struct Broker {
    /// The static configuration the broker was started with.
    pub config: BrokerConfig,
    /// `broker.id`.
    pub node_id: i32,
    /// The cluster id from `meta.properties` (or newly generated).
    pub cluster_id: String,
    /// Advertised listeners with port 0 resolved to the bound port.
    pub advertised: Vec<Listener>,
    /// The partition logs.
    pub logs: LogManager,
    store: Box<dyn MetadataStore>,
    metadata: RwLock<ClusterMetadata>,
    /// Serialises metadata changes so store and memory change together.
    metadata_change: Mutex<()>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Producer ids for InitProducerId.
    pub producer_ids: ProducerIdAllocator,
    /// The consumer-group coordinator.
    pub groups: crate::services::coordinator::GroupCoordinator,
    /// Counters for the Prometheus endpoint.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Broker-wide group commit.
    sync: Arc<crate::services::replica::sync::SyncDriver>,
}

impl Broker {
    /// Opens the metadata store and the log directories, recovering logs as needed.
    ///
    /// `advertised` must already have its ports resolved.
    pub fn open(config: BrokerConfig, advertised: Vec<Listener>) -> Result<Broker, StartError> {
        let first_dir = config
            .log_dirs
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("strom-data"));
        std::fs::create_dir_all(&first_dir)?;
        let store = FileStore::new(&first_dir);
        let mut metadata = store.load()?.unwrap_or_default();
        if metadata.cluster_id.is_empty() {
            metadata.cluster_id = config
                .cluster_id
                .clone()
                .unwrap_or_else(strom_meta::new_cluster_id);
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
        let is_known = |tp: &TopicPartition| {
            metadata
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
            crate::now_ms(),
        )?;
        metadata.cluster_id = logs.cluster_id().to_string();
        store.save(&metadata)?;

        let metrics = Arc::new(crate::metrics::Metrics::default());
        let sync = Arc::new(crate::services::replica::sync::SyncDriver::new(
            metrics.clone(),
        ));
        let mut partitions = HashMap::new();
        for (tp, log) in logs.all() {
            let durable = lookup(&tp.topic).flush_messages <= 1;
            partitions.insert(
                tp.clone(),
                Arc::new(Partition::new(
                    tp,
                    log,
                    durable,
                    metrics.clone(),
                    sync.clone(),
                )),
            );
        }
        let producer_ids = ProducerIdAllocator::open(&first_dir)?;
        let broker = Broker {
            node_id: config.broker_id,
            cluster_id: metadata.cluster_id.clone(),
            advertised,
            logs,
            store: Box::new(store),
            metadata: RwLock::new(metadata),
            metadata_change: Mutex::new(()),
            partitions: RwLock::new(partitions),
            producer_ids,
            groups: crate::services::coordinator::GroupCoordinator::new(
                &config,
                crate::now_ms() as u64 ^ u64::from(std::process::id()),
            ),
            config,
            metrics,
            sync,
        };
        // Partitions the metadata knows but which have no directory yet (e.g. created just
        // before a crash) get an empty log now.
        let missing: Vec<(String, i32)> = {
            let metadata = broker.metadata.read().unwrap();
            let partitions = broker.partitions.read().unwrap();
            metadata
                .topics
                .values()
                .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p)))
                .map(|(t, p)| TopicPartition::new(&t, p))
                .filter(|tp| !partitions.contains_key(tp) && !broker.logs.is_offline(tp))
                .map(|tp| (tp.topic, tp.partition))
                .collect()
        };
        for (topic, partition) in missing {
            let config = broker.stored_log_config(&topic);
            broker.open_partition(&topic, partition, &config)?;
        }
        broker.groups.load(&broker, crate::now_ms());
        let stats = broker.logs.recovery_stats();
        tracing::info!(
            partitions = broker.partitions.read().unwrap().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            segments_recovered = stats.segments_recovered,
            bytes_reread = stats.bytes_reread,
            bytes_truncated = stats.bytes_truncated,
            "logs loaded"
        );
        Ok(broker)
    }

    /// A snapshot of the cluster metadata.
    pub fn metadata(&self) -> std::sync::RwLockReadGuard<'_, ClusterMetadata> {
        self.metadata.read().unwrap()
    }

    /// The partition, if the topic and partition exist.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap()
            .get(&TopicPartition::new(topic, partition))
            .cloned()
    }

    /// The error for a partition [`Broker::partition`] did not find: KAFKA_STORAGE_ERROR when
    /// the broker hosts it but its log failed to open at startup (it stays offline, as a
    /// partition on a failed log dir does in Kafka), UNKNOWN_TOPIC_OR_PARTITION otherwise.
    pub fn absent_partition_error(&self, topic: &str, partition: i32) -> i16 {
        if self.logs.is_offline(&TopicPartition::new(topic, partition)) {
            kafka_protocol::error::ResponseError::KafkaStorageError.code()
        } else {
            kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code()
        }
    }

    /// The partitions of `topic` whose logs failed to open at startup (usually none).
    pub fn offline_partitions(&self, topic: &str) -> Vec<i32> {
        self.logs
            .offline()
            .into_keys()
            .filter(|tp| tp.topic == topic)
            .map(|tp| tp.partition)
            .collect()
    }

    /// Every partition this broker hosts.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().unwrap().values().cloned().collect()
    }

    /// The effective configuration of a topic.
    pub fn topic_config(&self, topic: &TopicMetadata) -> TopicConfig {
        TopicConfig::resolve(&self.config, &topic.configs)
            .expect("stored topic overrides were validated when they were written")
    }

    /// The log configuration of a topic from its stored overrides.
    fn stored_log_config(&self, topic: &str) -> LogConfig {
        let metadata = self.metadata.read().unwrap();
        let meta = metadata
            .topics
            .get(topic)
            .expect("partitions are opened only for known topics");
        log_config(&self.topic_config(meta))
    }

    fn open_partition(
        &self,
        topic: &str,
        partition: i32,
        config: &LogConfig,
    ) -> Result<Arc<Partition>, StartError> {
        let tp = TopicPartition::new(topic, partition);
        let log = self
            .logs
            .get_or_create(&tp, config.clone(), crate::now_ms())?;
        Ok(self.host(tp, log, config))
    }

    /// Serves an opened log as a partition.
    fn host(
        &self,
        tp: TopicPartition,
        log: strom_log::SharedLog,
        config: &LogConfig,
    ) -> Arc<Partition> {
        let durable = config.flush_messages <= 1;
        let partition = Arc::new(Partition::new(
            tp.clone(),
            log,
            durable,
            self.metrics.clone(),
            self.sync.clone(),
        ));
        self.partitions
            .write()
            .unwrap()
            .insert(tp, partition.clone());
        partition
    }

    /// Creates the logs of partitions `range` of `topic`, all or none: on the first failure the
    /// logs created so far are deleted again and a `KAFKA_STORAGE_ERROR` names the cause.
    fn create_logs(
        &self,
        topic: &str,
        range: std::ops::Range<i32>,
        config: &LogConfig,
    ) -> Result<Vec<(TopicPartition, strom_log::SharedLog)>, TopicError> {
        let mut created = Vec::with_capacity(range.len());
        for p in range {
            let tp = TopicPartition::new(topic, p);
            match self.logs.create(&tp, config.clone(), crate::now_ms()) {
                Ok(log) => created.push((tp, log)),
                Err(e) => {
                    let count = created.len();
                    self.delete_logs(created);
                    tracing::error!(topic, partition = p, error = %e, rolled_back = count,
                        "creating a partition failed; the partitions created so far were removed");
                    return Err(TopicError::new(
                        kafka_protocol::error::ResponseError::KafkaStorageError.code(),
                        format!(
                            "creating partition {p} of topic '{topic}' failed, nothing was created: {e}"
                        ),
                    ));
                }
            }
        }
        // One fsync per log dir makes every new directory entry durable before the metadata
        // names the partitions.
        if let Err(e) = self.logs.sync_log_dirs() {
            self.delete_logs(created);
            return Err(storage_error(e));
        }
        Ok(created)
    }

    /// Refuses, before anything is created, a change that would take the broker past the
    /// partitions its open-file budget can hold (`POLICY_VIOLATION`, the code Kafka uses when
    /// a broker-side rule refuses a topic change; the message names the limit and the fix).
    fn check_partition_budget(&self, adding: i32) -> Result<(), TopicError> {
        let hosted = self.logs.partition_count();
        let max = self.logs.max_partitions();
        let adding = usize::try_from(adding).unwrap_or(0);
        if hosted + adding <= max {
            return Ok(());
        }
        let limit = strom_log::open_files::open_files_limit()
            .map_or_else(|| "unlimited".to_string(), |l| l.to_string());
        Err(TopicError::new(
            kafka_protocol::error::ResponseError::PolicyViolation.code(),
            format!(
                "this broker can host at most {max} partitions with its open-file limit \
                 (RLIMIT_NOFILE {limit}, one open file per partition plus headroom for \
                 connections); it hosts {hosted} and the request adds {adding}. Raise the limit \
                 (ulimit -n, systemd LimitNOFILE=) and restart the broker"
            ),
        ))
    }

    /// Deletes logs created by a topic change that did not complete.
    fn delete_logs(&self, created: Vec<(TopicPartition, strom_log::SharedLog)>) {
        for (tp, log) in created {
            drop(log);
            if let Err(e) = self.logs.delete(&tp) {
                tracing::error!(partition = %tp, error = %e,
                    "cannot remove a partition log while rolling back; the next start handles it");
            }
        }
    }

    /// Creates a topic (or only validates it with `validate_only`). The caller has resolved
    /// defaults for `partitions` and `replication_factor`.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMetadata, TopicError> {
        use kafka_protocol::error::ResponseError as E;
        strom_meta::validate_topic_name(name)
            .map_err(|m| TopicError::new(E::InvalidTopicException.code(), m))?;
        if partitions < 1 {
            return Err(TopicError::new(
                E::InvalidPartitions.code(),
                format!("number of partitions must be at least 1, got {partitions}"),
            ));
        }
        if replication_factor < 1 {
            return Err(TopicError::new(
                E::InvalidReplicationFactor.code(),
                format!("replication factor must be at least 1, got {replication_factor}"),
            ));
        }
        if replication_factor > 1 {
            return Err(TopicError::new(
                E::InvalidReplicationFactor.code(),
                format!(
                    "replication factor {replication_factor} is larger than the number of live brokers (1)"
                ),
            ));
        }
        // Resolving (not only validating the overrides) also checks how they combine with the
        // broker's defaults (e.g. min.compaction.lag.ms against the broker's maximum), so
        // nothing is stored that could not be opened.
        let resolved = TopicConfig::resolve(&self.config, &configs)
            .map_err(|e| TopicError::new(E::InvalidConfig.code(), e.to_string()))?;
        let _change = self.metadata_change.lock().unwrap();
        {
            let metadata = self.metadata.read().unwrap();
            if metadata.topics.contains_key(name) {
                return Err(TopicError::new(
                    E::TopicAlreadyExists.code(),
                    format!("topic '{name}' already exists"),
                ));
            }
            if let Some(other) = metadata
                .topics
                .keys()
                .find(|other| strom_meta::topic_names_collide(other, name))
            {
                return Err(TopicError::new(
                    E::InvalidTopicException.code(),
                    format!(
                        "topic '{name}' collides with existing topic '{other}' ('.' and '_' are treated alike in metric names)"
                    ),
                ));
            }
        }
        let topic = TopicMetadata {
            name: name.to_string(),
            topic_id: Uuid::new_v4(),
            partitions,
            replication_factor,
            configs,
            internal: strom_meta::topic::is_internal_topic(name),
        };
        self.check_partition_budget(partitions)?;
        if validate_only {
            return Ok(topic);
        }
        let config = log_config(&resolved);
        let created = self.create_logs(name, 0..partitions, &config)?;
        if let Err(e) = self.write_metadata(|m| {
            m.topics.insert(name.to_string(), topic.clone());
        }) {
            self.delete_logs(created);
            return Err(e);
        }
        for (tp, log) in created {
            self.host(tp, log, &config);
        }
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and removes its data from disk.
    pub fn delete_topic(&self, name: &str) -> Result<TopicMetadata, TopicError> {
        use kafka_protocol::error::ResponseError as E;
        if !self.config.delete_topic_enable {
            return Err(TopicError::new(
                E::TopicDeletionDisabled.code(),
                "topic deletion is disabled (delete.topic.enable=false)",
            ));
        }
        let _change = self.metadata_change.lock().unwrap();
        let topic = self
            .metadata
            .read()
            .unwrap()
            .topics
            .get(name)
            .cloned()
            .ok_or_else(|| {
                TopicError::new(
                    E::UnknownTopicOrPartition.code(),
                    format!("topic '{name}' does not exist"),
                )
            })?;
        self.write_metadata(|m| {
            m.topics.remove(name);
        })?;
        for p in 0..topic.partitions {
            let tp = TopicPartition::new(name, p);
            if let Some(partition) = self.partitions.write().unwrap().remove(&tp) {
                partition.mark_deleted();
            }
            self.logs.delete(&tp).map_err(storage_error)?;
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Raises a topic's partition count to `count`.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        use kafka_protocol::error::ResponseError as E;
        let _change = self.metadata_change.lock().unwrap();
        let current = self
            .metadata
            .read()
            .unwrap()
            .topics
            .get(name)
            .map(|t| t.partitions)
            .ok_or_else(|| {
                TopicError::new(
                    E::UnknownTopicOrPartition.code(),
                    format!("topic '{name}' does not exist"),
                )
            })?;
        if count <= current {
            return Err(TopicError::new(
                E::InvalidPartitions.code(),
                format!(
                    "topic '{name}' has {current} partitions; the new count {count} must be larger"
                ),
            ));
        }
        self.check_partition_budget(count - current)?;
        if validate_only {
            return Ok(());
        }
        let config = self.stored_log_config(name);
        let created = self.create_logs(name, current..count, &config)?;
        if let Err(e) = self.write_metadata(|m| {
            if let Some(t) = m.topics.get_mut(name) {
                t.partitions = count;
            }
        }) {
            self.delete_logs(created);
            return Err(e);
        }
        for (tp, log) in created {
            self.host(tp, log, &config);
        }
        Ok(())
    }

    /// Replaces a topic's configuration overrides and applies them to its logs.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        use kafka_protocol::error::ResponseError as E;
        // As in create_topic: resolve, so validate_only checks what a real change would.
        let resolved = TopicConfig::resolve(&self.config, &configs)
            .map_err(|e| TopicError::new(E::InvalidConfig.code(), e.to_string()))?;
        let _change = self.metadata_change.lock().unwrap();
        if !self.metadata.read().unwrap().topics.contains_key(name) {
            return Err(TopicError::new(
                E::UnknownTopicOrPartition.code(),
                format!("topic '{name}' does not exist"),
            ));
        }
        if validate_only {
            return Ok(());
        }
        self.write_metadata(|m| {
            if let Some(t) = m.topics.get_mut(name) {
                t.configs = configs.clone();
            }
        })?;
        let log_config = log_config(&resolved);
        for partition in self.all_partitions() {
            if partition.topic_partition.topic == name {
                partition.update_config(log_config.clone());
            }
        }
        tracing::info!(topic = name, "altered topic configuration");
        Ok(())
    }

    fn write_metadata(&self, change: impl FnOnce(&mut ClusterMetadata)) -> Result<(), TopicError> {
        let mut next = self.metadata.read().unwrap().clone();
        change(&mut next);
        next.version += 1;
        self.store.save(&next).map_err(|e| {
            tracing::error!(error = %e, "writing metadata failed");
            TopicError::new(
                kafka_protocol::error::ResponseError::KafkaStorageError.code(),
                format!("writing metadata failed: {e}"),
            )
        })?;
        *self.metadata.write().unwrap() = next;
        Ok(())
    }

    /// Clean shutdown of the storage: flush, snapshots, checkpoints, clean-shutdown marker.
    pub fn shutdown_storage(&self) -> Result<(), strom_log::LogError> {
        self.logs.shutdown()
    }
}

fn storage_error<E: std::fmt::Display>(e: E) -> TopicError {
    tracing::error!(error = %e, "storage failure during a topic change");
    TopicError::new(
        kafka_protocol::error::ResponseError::KafkaStorageError.code(),
        format!("storage failure: {e}"),
    )
}

/// Translates a resolved topic configuration into the storage engine's terms.
///
/// Retention by time and size applies only where `cleanup.policy` includes `delete`, as in
/// Kafka: a compact-only topic (such as `__consumer_offsets`) is never emptied by retention.
/// Strom does not compact yet, so such a topic keeps every record.
pub fn log_config(topic: &TopicConfig) -> LogConfig {
    let deletes = topic
        .cleanup_policy
        .split(',')
        .any(|p| p.trim() == "delete");
    LogConfig {
        segment_bytes: topic.segment_bytes.max(14) as u64,
        segment_ms: topic.segment_ms,
        retention_ms: if deletes { topic.retention_ms } else { -1 },
        retention_bytes: if deletes { topic.retention_bytes } else { -1 },
        index_interval_bytes: topic.index_interval_bytes.max(1) as u32,
        max_message_bytes: topic.max_message_bytes.max(0) as u32,
        flush_messages: topic.flush_messages,
        flush_ms: topic.flush_ms,
        timestamp_type_log_append: topic.message_timestamp_type == "LogAppendTime",
        timestamp_before_max_ms: topic.message_timestamp_before_max_ms,
        timestamp_after_max_ms: topic.message_timestamp_after_max_ms,
        file_delete_delay_ms: topic.file_delete_delay_ms,
        segment_index_bytes: topic.segment_index_bytes.max(8) as u32,
        compact: topic
            .cleanup_policy
            .split(',')
            .any(|p| p.trim() == "compact"),
        min_cleanable_dirty_ratio: topic.min_cleanable_dirty_ratio,
        min_compaction_lag_ms: topic.min_compaction_lag_ms,
        delete_retention_ms: topic.delete_retention_ms,
    }
}

mod handle;
pub use handle::{start, BrokerHandle};
