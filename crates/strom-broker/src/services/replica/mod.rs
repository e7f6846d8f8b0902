//! The replica manager: every partition this broker hosts ([`partition`]), their logs, their
//! durable acknowledgement ([`sync`], broker-wide group commit) and the one wait per partition
//! on its high watermark ([`watermark`]).
//!
//! It owns the partitions' lifecycle on this broker: hosting an opened log, creating logs for
//! new partitions all or nothing, removing a deleted partition, and the open-file budget that
//! bounds how many it may host. It does not decide which partitions exist or what their
//! configuration is (that is [`crate::services::topics`], which calls it), nor who leads them
//! (that is [`crate::services::metadata_cache`]). For partitions a LeaderAndIsr made
//! replicated ([`cluster`]), it also runs the data path of replication: the leader's replica
//! state and high watermark ([`replication`]) and the follower's fetchers ([`fetcher`]),
//! with the replication throttles ([`quota`]) and the leader's low watermark
//! ([`low_watermark`], what DeleteRecords waits for).

pub mod cluster;
pub mod fetch_session;
pub mod fetcher;
pub mod low_watermark;
pub mod partition;
pub mod quota;
pub mod read_replica;
pub mod replication;
pub mod scan;
pub mod sync;
pub mod verifying;
pub mod watermark;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use strom_log::{LogConfig, LogManager, SharedLog, TopicPartition};

use crate::metrics::Metrics;
use crate::services::topic_error::TopicError;
use partition::Partition;
use sync::SyncDriver;

/// The leader epoch a log recorded last (its leader-epoch checkpoint's newest entry), or 0 for
/// a log that has none: the epoch a single node leads a partition in.
pub fn latest_leader_epoch(log: &SharedLog) -> i32 {
    let dir = log.lock().unwrap().dir().to_path_buf();
    strom_log::leader_epoch::LeaderEpochCache::load(&dir)
        .entries()
        .last()
        .map_or(0, |(epoch, _)| *epoch)
}

/// The partitions this broker hosts; see the module documentation.
pub struct ReplicaManager {
    /// The partition logs.
    pub logs: LogManager,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    metrics: Arc<Metrics>,
    /// Broker-wide group commit.
    sync: Arc<SyncDriver>,
    /// Set once replication is enabled (a cluster broker); empty on a single node.
    cluster: std::sync::OnceLock<cluster::ClusterState>,
    /// The replication throttles, configured from the live broker configuration.
    pub quotas: Arc<quota::ReplicationQuotas>,
    /// Held for the whole of a LeaderAndIsr or StopReplica (Kafka's `replicaStateChangeLock`):
    /// the controller resends a request that outlasted its timeout on a new connection, and
    /// the copy must not run beside the original (a log created but not yet served by one
    /// would be served twice, or its creation fail, by the other).
    state_change: std::sync::Mutex<()>,
}

impl ReplicaManager {
    /// Hosts every log `logs` opened, each with the configuration `config_of` gives its topic.
    pub fn new(
        logs: LogManager,
        config_of: &dyn Fn(&str) -> LogConfig,
        metrics: Arc<Metrics>,
    ) -> ReplicaManager {
        let sync = Arc::new(SyncDriver::new(metrics.clone(), logs.log_dirs()));
        let mut partitions = HashMap::new();
        for (tp, log) in logs.all() {
            let durable = config_of(&tp.topic).flush_messages <= 1;
            let leader_epoch = latest_leader_epoch(&log);
            partitions.insert(
                tp.clone(),
                Arc::new(Partition::new(
                    tp,
                    log,
                    leader_epoch,
                    durable,
                    metrics.clone(),
                    sync.clone(),
                )),
            );
        }
        ReplicaManager {
            logs,
            partitions: RwLock::new(partitions),
            metrics,
            sync,
            cluster: std::sync::OnceLock::new(),
            quotas: Arc::default(),
            state_change: std::sync::Mutex::new(()),
        }
    }

    /// The partition, if the topic and partition exist.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap()
            .get(&TopicPartition::new(topic, partition))
            .cloned()
    }

    /// True if the partition is hosted or its log failed to open.
    pub fn knows(&self, tp: &TopicPartition) -> bool {
        self.partitions.read().unwrap().contains_key(tp) || self.logs.is_offline(tp)
    }

    /// The error for a partition [`ReplicaManager::partition`] did not find:
    /// KAFKA_STORAGE_ERROR when the broker hosts it but its log failed to open at startup (it
    /// stays offline, as a partition on a failed log dir does in Kafka),
    /// UNKNOWN_TOPIC_OR_PARTITION otherwise.
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

    /// Opens (creating it if needed) the log of a partition the metadata knows and hosts it.
    pub fn open_partition(
        &self,
        tp: TopicPartition,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Arc<Partition>, strom_log::LogError> {
        let log = self.logs.get_or_create(&tp, config.clone(), now_ms)?;
        Ok(self.host(tp, log, config))
    }

    /// Serves an opened log as a partition.
    pub fn host(&self, tp: TopicPartition, log: SharedLog, config: &LogConfig) -> Arc<Partition> {
        let durable = config.flush_messages <= 1;
        let leader_epoch = latest_leader_epoch(&log);
        let partition = Arc::new(Partition::new(
            tp.clone(),
            log,
            leader_epoch,
            durable,
            self.metrics.clone(),
            self.sync.clone(),
        ));
        let replaced = self
            .partitions
            .write()
            .unwrap()
            .insert(tp, partition.clone());
        // Whoever holds the partition it replaced (a fetch session, a parked fetch) must not
        // use it again.
        if let Some(old) = replaced {
            old.mark_deleted();
        }
        partition
    }

    /// Creates the logs of partitions `range` of `topic`, all or none: on the first failure the
    /// logs created so far are deleted again and a `KAFKA_STORAGE_ERROR` names the cause.
    pub fn create_logs(
        &self,
        topic: &str,
        range: std::ops::Range<i32>,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Vec<(TopicPartition, SharedLog)>, TopicError> {
        let mut created = Vec::with_capacity(range.len());
        for p in range {
            let tp = TopicPartition::new(topic, p);
            match self.logs.create(&tp, config.clone(), now_ms) {
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
            return Err(TopicError::storage(e));
        }
        Ok(created)
    }

    /// Refuses, before anything is created, a change that would take the broker past the
    /// partitions its open-file budget can hold (`POLICY_VIOLATION`, the code Kafka uses when
    /// a broker-side rule refuses a topic change; the message names the limit and the fix).
    pub fn check_partition_budget(&self, adding: i32) -> Result<(), TopicError> {
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
    pub fn delete_logs(&self, created: Vec<(TopicPartition, SharedLog)>) {
        for (tp, log) in created {
            drop(log);
            if let Err(e) = self.logs.delete(&tp) {
                tracing::error!(partition = %tp, error = %e,
                    "cannot remove a partition log while rolling back; the next start handles it");
            }
        }
    }

    /// Stops hosting a deleted partition (its waiters notice at once) and removes its log.
    pub fn remove(&self, tp: &TopicPartition) -> Result<(), TopicError> {
        if let Some(partition) = self.partitions.write().unwrap().remove(tp) {
            partition.mark_deleted();
        }
        self.logs.delete(tp).map_err(TopicError::storage)
    }

    /// Clean shutdown of the storage: flush, snapshots, checkpoints, clean-shutdown marker.
    pub fn shutdown_storage(&self) -> Result<(), strom_log::LogError> {
        self.logs.shutdown()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "tests/cluster.rs"]
mod cluster_tests;
