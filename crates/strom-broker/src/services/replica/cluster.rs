//! The replica manager's side of the controller's requests: LeaderAndIsr makes partitions
//! replicated and this broker their leader or a follower, StopReplica stops (and maybe
//! deletes) them. Also the per-broker ISR tick (`replica.lag.time.max.ms / 2`) and performing
//! the ISR writes the replica states ask for through the [`IsrWriter`].
//!
//! It does not own the controller requests' wire format or their fencing by controller and
//! broker epoch (`crate::interbroker`, the cluster services), nor fetching (see
//! [`super::fetcher`]).

use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use strom_log::LogConfig;
use strom_meta::replica::{Effect, Input, PartitionReplica, ReplicaSettings, Role};
use strom_meta::replication::{BrokerId, TopicPartition as MetaTp};

use super::fetcher::{FetchTarget, Fetchers};
use super::partition::Partition;
use super::replication::{meta_tp, IsrWriter, Replication};
use super::ReplicaManager;
use crate::interbroker::{LeaderAndIsrCommand, StopReplicaCommand};
use crate::services::metadata_cache::{MetadataCache, PartitionState};

/// What the replica manager needs to replicate, given once by the broker's wiring (or a test
/// acting as the controller) before the first LeaderAndIsr.
pub struct ReplicationContext {
    /// This broker's id.
    pub local: BrokerId,
    /// Performs ISR changes.
    pub isr_writer: Arc<dyn IsrWriter>,
    /// Kept in step with the partition states applied here.
    pub metadata: Arc<MetadataCache>,
    /// A topic's log configuration, for logs created by a LeaderAndIsr.
    pub log_config: Box<dyn Fn(&str) -> LogConfig + Send + Sync>,
    /// A topic's `min.insync.replicas` and the broker's `replica.lag.time.max.ms`.
    pub settings: Box<dyn Fn(&str) -> ReplicaSettings + Send + Sync>,
    /// `replica.fetch.backoff.ms`.
    pub fetch_backoff: Duration,
    /// `replica.fetch.wait.max.ms`.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.max.bytes` (per partition).
    pub fetch_max_bytes: i32,
    /// How often leaders check their followers' lag (`replica.lag.time.max.ms / 2`).
    pub tick: Duration,
}

impl ReplicationContext {
    /// A context with the broker's `replica.*` settings from `config` (`broker.id`,
    /// `replica.fetch.backoff.ms`, `replica.fetch.wait.max.ms`, `replica.fetch.max.bytes`, the
    /// tick at half of `replica.lag.time.max.ms`); the per-topic lookups are the caller's
    /// (the topic admin's resolved configurations).
    pub fn from_config(
        config: &strom_meta::config::BrokerConfig,
        isr_writer: Arc<dyn IsrWriter>,
        metadata: Arc<MetadataCache>,
        log_config: Box<dyn Fn(&str) -> LogConfig + Send + Sync>,
        settings: Box<dyn Fn(&str) -> ReplicaSettings + Send + Sync>,
    ) -> ReplicationContext {
        let cluster = &config.cluster;
        ReplicationContext {
            local: config.broker_id,
            isr_writer,
            metadata,
            log_config,
            settings,
            fetch_backoff: Duration::from_millis(cluster.replica_fetch_backoff_ms.max(0) as u64),
            fetch_wait_max_ms: cluster.replica_fetch_wait_max_ms,
            fetch_max_bytes: cluster.replica_fetch_max_bytes,
            tick: Duration::from_millis((cluster.replica_lag_time_max_ms.max(2) / 2) as u64),
        }
    }
}

pub(crate) struct ClusterState {
    pub(crate) context: ReplicationContext,
    pub(crate) fetchers: Fetchers,
}

impl ReplicaManager {
    /// Turns on replication for this broker (a cluster broker's wiring calls it once, before
    /// applying any LeaderAndIsr) and starts the ISR tick.
    pub fn enable_replication(self: &Arc<Self>, context: ReplicationContext) {
        let tick = context.tick;
        let fetchers = Fetchers::new(
            context.local,
            context.metadata.clone(),
            context.fetch_backoff,
            context.fetch_wait_max_ms,
            context.fetch_max_bytes,
            self.quotas.clone(),
        );
        if self
            .cluster
            .set(ClusterState { context, fetchers })
            .is_err()
        {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(tick_loop(weak, tick));
    }

    fn cluster(&self) -> Option<&ClusterState> {
        self.cluster.get()
    }

    /// Applies a LeaderAndIsr: per partition (in the command's order) 0 or the error code to
    /// answer it with. Logs are created if missing; this broker becomes leader (its epoch
    /// starts at the log end, appends are stamped with it, the high watermark comes from the
    /// replica state) or follower (produce refused, fetching from the leader starts). A
    /// request whose leader epoch is not newer than the partition's changes nothing
    /// (STALE_CONTROLLER_EPOCH is the fence's; here an older epoch is simply ignored, as the
    /// replica state decides). Without [`ReplicaManager::enable_replication`]: INVALID_REQUEST.
    pub fn apply_leader_and_isr(self: &Arc<Self>, command: &LeaderAndIsrCommand) -> Vec<i16> {
        let Some(cluster) = self.cluster() else {
            return vec![E::InvalidRequest.code(); command.partitions.len()];
        };
        let _one_at_a_time = self.state_change.lock().unwrap_or_else(|e| e.into_inner());
        let context = &cluster.context;
        let now = crate::clock::now_ms();
        self.create_missing_logs(command, context, now);
        let mut codes = Vec::with_capacity(command.partitions.len());
        for p in &command.partitions {
            let info = &p.info;
            let tp =
                strom_log::TopicPartition::new(&info.partition.topic, info.partition.partition);
            if !info.replicas.contains(&context.local) {
                codes.push(E::UnknownTopicOrPartition.code());
                continue;
            }
            let Some(partition) = self.partition(&tp.topic, tp.partition) else {
                codes.push(E::KafkaStorageError.code()); // its creation failed (logged)
                continue;
            };
            let state = &info.state.value;
            let settings = (context.settings)(&tp.topic);
            {
                let mut guard = partition.replication.lock().unwrap();
                let replication = guard.get_or_insert_with(|| Replication {
                    replica: PartitionReplica::new(meta_tp(&tp), context.local, settings),
                    outbox: Vec::new(),
                });
                replication.replica.set_settings(settings);
                if state.leader_epoch < replication.replica.leader_epoch() {
                    codes.push(E::StaleControllerEpoch.code());
                    continue;
                }
            }
            if !partition.is_replicated() {
                // The log's high watermark since it was opened is its log end, true on a single
                // node and unknown on a replica: part of that end may never have reached the
                // other replicas. It starts at the log start and is learnt again — from the
                // leader's fetch answers as a follower, from the ISR's positions as a leader —
                // so nothing a consumer reads can vanish in a later failover.
                let mut log = partition.log().lock().unwrap();
                let start = log.log_start_offset();
                log.set_high_watermark(start);
            }
            partition.set_replicated();
            let code = if state.leader == context.local {
                self.become_leader(cluster, &partition, info.clone(), now)
            } else {
                let leader = command.leaders.iter().find(|l| l.id == state.leader);
                self.become_follower(cluster, &partition, info.clone(), leader, now)
            };
            if code == 0 {
                context.metadata.set_partition(
                    &info.partition,
                    PartitionState {
                        replicas: info.replicas.clone(),
                        leader_and_isr: state.clone(),
                    },
                );
            }
            codes.push(code);
        }
        codes
    }

    /// Creates the logs of the partitions of `command` this broker has a replica of but no
    /// log for, then makes their directories durable with one fsync per log dir (a new topic's
    /// LeaderAndIsr names all its partitions: one fsync each took 10,000 of them at 10,000
    /// partitions), before any of them leads or follows. A log that cannot be created is
    /// logged and left out; the caller answers KAFKA_STORAGE_ERROR for it.
    fn create_missing_logs(
        &self,
        command: &LeaderAndIsrCommand,
        context: &ReplicationContext,
        now_ms: i64,
    ) {
        let mut created = Vec::new();
        for p in &command.partitions {
            let info = &p.info;
            let (topic, index) = (&info.partition.topic, info.partition.partition);
            if !info.replicas.contains(&context.local) || self.partition(topic, index).is_some() {
                continue;
            }
            let tp = strom_log::TopicPartition::new(topic, index);
            let config = (context.log_config)(topic);
            if let Some(log) = self.logs.get(&tp) {
                self.host(tp, log, &config); // opened but not served: nothing to create
                continue;
            }
            match self.logs.create(&tp, config.clone(), now_ms) {
                Ok(log) => created.push((tp, log, config)),
                Err(e) => {
                    tracing::error!(partition = %tp, error = %e, "LeaderAndIsr: cannot create the log")
                }
            }
        }
        if created.is_empty() {
            return;
        }
        if let Err(e) = self.logs.sync_log_dirs() {
            tracing::error!(error = %e, partitions = created.len(),
                "LeaderAndIsr: cannot make the new partitions' directories durable");
            self.delete_logs(created.into_iter().map(|(tp, log, _)| (tp, log)).collect());
            return;
        }
        for (tp, log, config) in created {
            self.host(tp, log, &config);
        }
    }

    /// On shutdown: every replicated partition stops leading or following here, so an
    /// acks=all produce still waiting on this broker is answered NOT_LEADER_OR_FOLLOWER at
    /// once (the client turns to the new leader) instead of waiting for followers that have
    /// already left, until the connection drain gives up.
    pub fn stop_for_shutdown(&self) {
        let now = crate::clock::now_ms() as u64;
        for partition in self.all_partitions() {
            if partition.is_replicated() {
                partition.step(Input::Stop, now);
                partition.wake();
            }
        }
    }

    fn become_leader(
        &self,
        cluster: &ClusterState,
        partition: &Arc<Partition>,
        info: strom_meta::controller::PartitionInfo,
        now: i64,
    ) -> i16 {
        cluster.fetchers.remove(&partition.topic_partition);
        let epoch = info.state.value.leader_epoch;
        let moved = {
            let mut log = partition.log().lock().unwrap();
            if let Err(e) = log.start_leader_epoch(epoch) {
                tracing::warn!(partition = %partition.topic_partition, error = %e, "LeaderAndIsr: stale leader epoch");
                return E::StaleControllerEpoch.code();
            }
            let durable_end = if partition.is_durable() {
                log.recovery_point().min(log.log_end_offset())
            } else {
                log.log_end_offset()
            };
            let input = Input::BecomeLeader {
                state: info.state.clone(),
                replicas: info.replicas.clone(),
                log_end_offset: log.log_end_offset(),
                durable_end_offset: durable_end,
                high_watermark: log.high_watermark(),
            };
            partition.set_leader_epoch(epoch);
            partition.step_locked(&mut log, input, now as u64)
        };
        let _ = moved;
        partition.wake();
        if partition.replica_role() != Some(Role::Leader) {
            return E::InvalidRequest.code();
        }
        tracing::info!(partition = %partition.topic_partition, epoch, isr = ?info.state.value.isr, "leading");
        0
    }

    fn become_follower(
        &self,
        cluster: &ClusterState,
        partition: &Arc<Partition>,
        info: strom_meta::controller::PartitionInfo,
        leader: Option<&crate::interbroker::LeaderAddress>,
        now: i64,
    ) -> i16 {
        let state = info.state.value.clone();
        let epoch = state.leader_epoch;
        partition.step(
            Input::BecomeFollower {
                state: state.clone(),
                replicas: info.replicas.clone(),
            },
            now as u64,
        );
        partition.set_leader_epoch(epoch);
        partition.wake();
        cluster.fetchers.remove(&partition.topic_partition);
        let Some(leader) = leader else {
            tracing::warn!(partition = %partition.topic_partition, leader = state.leader,
                "LeaderAndIsr: following a leader without an address; not fetching");
            return 0;
        };
        cluster.fetchers.add(
            leader,
            FetchTarget {
                partition: partition.clone(),
                leader_epoch: epoch,
                truncated: false,
            },
        );
        tracing::info!(partition = %partition.topic_partition, epoch, leader = leader.id, "following");
        0
    }

    /// Applies a StopReplica: per partition 0 or an error code. The replica stops serving
    /// (fetching stops, waiting produces answer NOT_LEADER_OR_FOLLOWER); with delete its log
    /// is removed.
    pub fn apply_stop_replica(self: &Arc<Self>, command: &StopReplicaCommand) -> Vec<i16> {
        let Some(cluster) = self.cluster() else {
            return vec![E::InvalidRequest.code(); command.partitions.len()];
        };
        let _one_at_a_time = self.state_change.lock().unwrap_or_else(|e| e.into_inner());
        let now = crate::clock::now_ms() as u64;
        let mut codes = Vec::new();
        for (tp, epoch, delete) in &command.partitions {
            let ltp = strom_log::TopicPartition::new(&tp.topic, tp.partition);
            let Some(partition) = self.partition(&tp.topic, tp.partition) else {
                codes.push(0);
                continue;
            };
            let current = partition.leader_epoch();
            if *epoch >= 0 && *epoch < current {
                codes.push(E::FencedLeaderEpoch.code());
                continue;
            }
            cluster.fetchers.remove(&ltp);
            partition.step(Input::Stop, now);
            partition.wake();
            if *delete {
                if let Err(e) = self.remove(&ltp) {
                    codes.push(e.code);
                    continue;
                }
            }
            codes.push(0);
        }
        codes
    }

    /// Gives `topic`'s replicated partitions its replica settings again (its
    /// `min.insync.replicas` changed); a single node has none.
    pub fn refresh_replica_settings(&self, topic: &str) {
        let Some(cluster) = self.cluster() else {
            return;
        };
        let settings = (cluster.context.settings)(topic);
        for partition in self.all_partitions() {
            if partition.topic_partition.topic != topic {
                continue;
            }
            if let Some(replication) = partition.replication.lock().unwrap().as_mut() {
                replication.replica.set_settings(settings);
            }
        }
    }

    /// Performs ISR writes and state reloads a partition's replica state asked for, in one
    /// task per call: what stepping their answers asks for next (a reload after a conflict)
    /// is performed by the same task.
    pub(crate) fn perform(self: &Arc<Self>, partition: &Arc<Partition>, effects: Vec<Effect>) {
        let Some(cluster) = self.cluster() else {
            return;
        };
        if effects.is_empty() {
            return;
        }
        let writer = cluster.context.isr_writer.clone();
        let metadata = cluster.context.metadata.clone();
        let metrics = self.metrics.clone();
        let partition = partition.clone();
        tokio::spawn(async move {
            let tp: MetaTp = meta_tp(&partition.topic_partition);
            let mut queue = effects;
            // Bounded: a conflict costs one reload, which asks for no further write.
            for _ in 0..16 {
                let Some(effect) = queue.pop() else {
                    return;
                };
                let input = match effect {
                    Effect::WriteIsr {
                        expected_version,
                        state,
                    } => match writer.write_isr(&tp, &state, expected_version).await {
                        Ok(Some(version)) => {
                            tracing::info!(partition = %tp, isr = ?state.isr, version, "ISR changed");
                            if let Some(mut cached) = metadata.partition(&tp.topic, tp.partition) {
                                metrics
                                    .isr
                                    .changed(cached.leader_and_isr.isr.len(), state.isr.len());
                                cached.leader_and_isr = state.clone();
                                metadata.set_partition(&tp, cached);
                            }
                            Input::IsrWritten { version }
                        }
                        Ok(None) => Input::IsrWriteConflict,
                        Err(e) => {
                            tracing::warn!(partition = %tp, error = %e, "ISR write failed");
                            Input::IsrWriteConflict
                        }
                    },
                    Effect::ReloadState => match writer.read_state(&tp).await {
                        Ok(Some(state)) => Input::StateReloaded { state },
                        other => {
                            tracing::warn!(partition = %tp, ?other, "cannot reload the partition state");
                            continue;
                        }
                    },
                    _ => continue,
                };
                queue.extend(partition.step(input, crate::clock::now_ms() as u64));
            }
        });
    }
}

/// Every `tick`, each replicated partition this broker leads checks its followers' lag.
async fn tick_loop(manager: Weak<ReplicaManager>, tick: Duration) {
    let mut interval = tokio::time::interval(tick.max(Duration::from_millis(10)));
    loop {
        interval.tick().await;
        let Some(manager) = manager.upgrade() else {
            return;
        };
        let now = crate::clock::now_ms() as u64;
        for partition in manager.all_partitions() {
            if !partition.is_replicated() || partition.replica_role() != Some(Role::Leader) {
                continue;
            }
            let effects = partition.step(Input::Tick, now);
            if !effects.is_empty() {
                manager.perform(&partition, effects);
            }
        }
    }
}
