//! Topic-level changes: create, delete, add partitions, alter configuration overrides.
//!
//! [`TopicAdmin`] changes the metadata store, the [`MetadataCache`] and the partition logs
//! together, under one lock (`metadata_change`). Creation is all or nothing: every new
//! partition's log is created first, then the metadata is written, and a failure at either step
//! removes the logs created so far. A crash in between leaves directories the metadata does not
//! know, which the next start removes (no records) or moves aside as strays (see
//! `strom_log::manager`).
//!
//! It owns the single node's metadata writes; in a cluster the controller will own them and this
//! service will forward to it. It does not own the logs (the [`ReplicaManager`] does).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use strom_log::{LogConfig, TopicPartition};
use strom_meta::config::dynamic::{DynamicLayers, DEFAULT_ENTITY};
use strom_meta::config::TopicConfig;
use strom_meta::replication;
use strom_meta::{ClusterMetadata, MetadataStore, TopicMetadata};
use uuid::Uuid;

use crate::services::live_config::LiveConfig;
use crate::services::log_config::log_config;
use crate::services::metadata_cache::MetadataCache;
use crate::services::replica::ReplicaManager;
pub use crate::services::topic_error::TopicError;

/// Topic-level changes; see the module documentation.
pub struct TopicAdmin {
    live: Arc<LiveConfig>,
    store: Box<dyn MetadataStore>,
    /// Serialises metadata changes so store and memory change together.
    metadata_change: Mutex<()>,
    metadata: Arc<MetadataCache>,
    replicas: Arc<ReplicaManager>,
}

impl TopicAdmin {
    /// The admin over an opened metadata store, whose contents `metadata` holds.
    pub fn new(
        live: Arc<LiveConfig>,
        store: Box<dyn MetadataStore>,
        metadata: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
    ) -> TopicAdmin {
        TopicAdmin {
            live,
            store,
            metadata_change: Mutex::new(()),
            metadata,
            replicas,
        }
    }

    /// Publishes the state of every partition the metadata knows to the metadata cache, as a
    /// single node decides it: led by this broker at the epoch its log recorded last, or
    /// without a leader if its log failed to open.
    pub fn publish_single_node_partitions(&self) {
        let topics: Vec<(String, i32)> = self
            .metadata
            .cluster()
            .topics
            .values()
            .map(|t| (t.name.clone(), t.partitions))
            .collect();
        for (topic, count) in topics {
            for p in 0..count {
                let state = match self.replicas.partition(&topic, p) {
                    Some(partition) => self
                        .metadata
                        .single_node_partition(partition.leader_epoch(), false),
                    None => self.metadata.single_node_partition(0, true),
                };
                self.metadata
                    .set_partition(&replication::TopicPartition::new(topic.clone(), p), state);
            }
        }
    }

    /// Hosts a new partition's log and publishes its state (single node: this broker leads).
    fn host(&self, tp: TopicPartition, log: strom_log::SharedLog, config: &LogConfig) {
        let partition = self.replicas.host(tp, log, config);
        let state = self
            .metadata
            .single_node_partition(partition.leader_epoch(), false);
        let tp = &partition.topic_partition;
        self.metadata.set_partition(
            &replication::TopicPartition::new(tp.topic.clone(), tp.partition),
            state,
        );
    }

    /// Gives every partition the metadata knows but which has no log yet (e.g. created just
    /// before a crash) an empty log, and hosts it.
    pub fn host_missing_partitions(&self) -> Result<(), strom_log::LogError> {
        let missing: Vec<TopicPartition> = {
            let metadata = self.metadata.cluster();
            metadata
                .topics
                .values()
                .flat_map(|t| (0..t.partitions).map(move |p| TopicPartition::new(&t.name, p)))
                .filter(|tp| !self.replicas.knows(tp))
                .collect()
        };
        for tp in missing {
            let config = self.stored_log_config(&tp.topic);
            self.replicas
                .open_partition(tp, &config, crate::clock::now_ms())?;
        }
        Ok(())
    }

    /// Refuses a topic change this broker would make alone while it is in a cluster (the
    /// cluster's topics change through ZooKeeper, `services::cluster::admin`).
    fn single_node_only(&self, what: &str) -> Result<(), TopicError> {
        if self.live.current().cluster.zookeeper_connect.is_some() {
            return Err(TopicError::new(
                kafka_protocol::error::ResponseError::InvalidRequest.code(),
                format!("{what} is not supported in cluster mode (zookeeper.connect) yet"),
            ));
        }
        Ok(())
    }

    /// The effective configuration of a topic.
    pub fn topic_config(&self, topic: &TopicMetadata) -> TopicConfig {
        TopicConfig::resolve(&self.live.current(), &topic.configs)
            .expect("stored topic overrides were validated when they were written")
    }

    /// The log configuration of a topic from its stored overrides.
    fn stored_log_config(&self, topic: &str) -> LogConfig {
        let metadata = self.metadata.cluster();
        let meta = metadata
            .topics
            .get(topic)
            .expect("partitions are opened only for known topics");
        log_config(&self.topic_config(meta))
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
        self.single_node_only("creating a topic on one broker")?;
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
        let resolved = TopicConfig::resolve(&self.live.current(), &configs)
            .map_err(|e| TopicError::new(E::InvalidConfig.code(), e.to_string()))?;
        let _change = self.metadata_change.lock().unwrap();
        {
            let metadata = self.metadata.cluster();
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
        self.replicas.check_partition_budget(partitions)?;
        if validate_only {
            return Ok(topic);
        }
        let config = log_config(&resolved);
        let created =
            self.replicas
                .create_logs(name, 0..partitions, &config, crate::clock::now_ms())?;
        if let Err(e) = self.write_metadata(|m| {
            m.topics.insert(name.to_string(), topic.clone());
        }) {
            self.replicas.delete_logs(created);
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
        if !self.live.current().delete_topic_enable {
            return Err(TopicError::new(
                E::TopicDeletionDisabled.code(),
                "topic deletion is disabled (delete.topic.enable=false)",
            ));
        }
        self.single_node_only("deleting a topic on one broker")?;
        let _change = self.metadata_change.lock().unwrap();
        let topic = self
            .metadata
            .cluster()
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
        self.metadata.remove_topic(name);
        for p in 0..topic.partitions {
            self.replicas.remove(&TopicPartition::new(name, p))?;
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
        self.single_node_only("CreatePartitions")?;
        let _change = self.metadata_change.lock().unwrap();
        let current = self
            .metadata
            .cluster()
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
        self.replicas.check_partition_budget(count - current)?;
        if validate_only {
            return Ok(());
        }
        let config = self.stored_log_config(name);
        let created =
            self.replicas
                .create_logs(name, current..count, &config, crate::clock::now_ms())?;
        if let Err(e) = self.write_metadata(|m| {
            if let Some(t) = m.topics.get_mut(name) {
                t.partitions = count;
            }
        }) {
            self.replicas.delete_logs(created);
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
        let resolved = TopicConfig::resolve(&self.live.current(), &configs)
            .map_err(|e| TopicError::new(E::InvalidConfig.code(), e.to_string()))?;
        let _change = self.metadata_change.lock().unwrap();
        if !self.metadata.cluster().topics.contains_key(name) {
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
        for partition in self.replicas.all_partitions() {
            if partition.topic_partition.topic == name {
                partition.update_config(log_config.clone());
            }
        }
        tracing::info!(topic = name, "altered topic configuration");
        Ok(())
    }

    /// A single node's AlterConfigs on a BROKER resource: replaces the dynamic level of
    /// `entity` (`<default>` or this broker's id) with `level` (checked keys and values),
    /// after checking the whole configuration still resolves; stores it in the metadata file
    /// and applies it at once.
    pub fn set_broker_config(
        &self,
        entity: &str,
        level: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        use kafka_protocol::error::ResponseError as E;
        let _change = self.metadata_change.lock().unwrap();
        let mut layers = self.live.layers();
        if entity == DEFAULT_ENTITY {
            layers.cluster_default = level.clone();
        } else if entity == self.live.current().broker_id.to_string() {
            layers.per_broker = level.clone();
        } else {
            return Err(TopicError::new(
                E::InvalidRequest.code(),
                format!(
                    "this single node is broker {}, not {entity}",
                    self.live.current().broker_id
                ),
            ));
        }
        self.live
            .with_layers(layers.clone())
            .map_err(|e| TopicError::new(E::InvalidRequest.code(), e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        self.write_metadata(|m| {
            if level.is_empty() {
                m.broker_configs.remove(entity);
            } else {
                m.broker_configs.insert(entity.to_string(), level.clone());
            }
        })?;
        self.live
            .install(layers, &self.metadata, Some(&self.replicas))
            .map_err(|e| TopicError::new(E::InvalidRequest.code(), e.to_string()))
    }

    fn write_metadata(&self, change: impl FnOnce(&mut ClusterMetadata)) -> Result<(), TopicError> {
        let mut next = self.metadata.cluster().clone();
        change(&mut next);
        next.version += 1;
        self.store.save(&next).map_err(|e| {
            tracing::error!(error = %e, "writing metadata failed");
            TopicError::new(
                kafka_protocol::error::ResponseError::KafkaStorageError.code(),
                format!("writing metadata failed: {e}"),
            )
        })?;
        self.metadata.replace(next);
        Ok(())
    }
}

/// The dynamic levels of broker `broker_id` stored in a single node's metadata.
pub fn stored_layers(metadata: &ClusterMetadata, broker_id: i32) -> DynamicLayers {
    let level = |entity: &str| {
        metadata
            .broker_configs
            .get(entity)
            .cloned()
            .unwrap_or_default()
    };
    let (layers, dropped) = DynamicLayers {
        cluster_default: level(DEFAULT_ENTITY),
        per_broker: level(&broker_id.to_string()),
    }
    .sanitized();
    for error in dropped {
        tracing::error!(%error, "stored dynamic broker configuration skipped");
    }
    layers
}
