//! A replicated partition's shell around its pure replica state
//! ([`strom_meta::replica::PartitionReplica`]): the leader's high watermark (min durable log
//! end over the ISR), follower fetches as acknowledgements, acks=all waits, ISR writes through
//! an [`IsrWriter`], and the follower's high watermark.
//!
//! Only partitions a LeaderAndIsr made replicated have a [`Replication`]; a single node's
//! partitions never do, and their paths test one atomic flag to stay as they were. This module
//! does not own fetching from a leader ([`super::fetcher`]) nor applying LeaderAndIsr to the
//! set of partitions ([`super::cluster`]).

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use strom_meta::replica::{Effect, Input, PartitionReplica, ReplicaError, Role};
use strom_meta::replication::{BrokerId, LeaderAndIsr, TopicPartition, Versioned};
use tokio::sync::Notify;

use super::partition::Partition;

/// Performs the leader's ISR changes: a conditional write of the partition-state znode and
/// the ISR-change notification the controller watches. ZooKeeper in a cluster
/// ([`ZkIsrWriter`]), memory in tests ([`MemoryIsrWriter`]).
pub trait IsrWriter: Send + Sync {
    /// Writes `state` if the znode's version is still `expected_version`; `Ok(Some(new
    /// version))` on success, `Ok(None)` on a version conflict, `Err` on any other failure
    /// (retried at the next tick).
    fn write_isr<'a>(
        &'a self,
        partition: &'a TopicPartition,
        state: &'a LeaderAndIsr,
        expected_version: i32,
    ) -> BoxFuture<'a, Result<Option<i32>, String>>;
    /// Reads the partition-state znode.
    fn read_state<'a>(
        &'a self,
        partition: &'a TopicPartition,
    ) -> BoxFuture<'a, Result<Option<Versioned<LeaderAndIsr>>, String>>;
}

/// A boxed future, as [`IsrWriter`]'s methods return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// An [`IsrWriter`] over a map: what the tests (acting as the controller) use.
#[derive(Default)]
pub struct MemoryIsrWriter {
    states: std::sync::Mutex<std::collections::HashMap<TopicPartition, Versioned<LeaderAndIsr>>>,
}

impl MemoryIsrWriter {
    /// Sets a partition's state as a controller would (the version is the caller's).
    pub fn set(&self, partition: TopicPartition, state: Versioned<LeaderAndIsr>) {
        self.states.lock().unwrap().insert(partition, state);
    }

    /// A partition's current state.
    pub fn get(&self, partition: &TopicPartition) -> Option<Versioned<LeaderAndIsr>> {
        self.states.lock().unwrap().get(partition).cloned()
    }
}

impl IsrWriter for MemoryIsrWriter {
    fn write_isr<'a>(
        &'a self,
        partition: &'a TopicPartition,
        state: &'a LeaderAndIsr,
        expected_version: i32,
    ) -> BoxFuture<'a, Result<Option<i32>, String>> {
        Box::pin(async move { self.write_now(partition, state, expected_version) })
    }

    fn read_state<'a>(
        &'a self,
        partition: &'a TopicPartition,
    ) -> BoxFuture<'a, Result<Option<Versioned<LeaderAndIsr>>, String>> {
        Box::pin(async move { Ok(self.get(partition)) })
    }
}

impl MemoryIsrWriter {
    fn write_now(
        &self,
        partition: &TopicPartition,
        state: &LeaderAndIsr,
        expected_version: i32,
    ) -> Result<Option<i32>, String> {
        let mut states = self.states.lock().unwrap();
        let current = states
            .get(partition)
            .ok_or_else(|| format!("no state for {partition}"))?;
        if current.version != expected_version {
            return Ok(None);
        }
        let version = expected_version + 1;
        states.insert(
            partition.clone(),
            Versioned {
                value: state.clone(),
                version,
            },
        );
        Ok(Some(version))
    }
}

/// The [`IsrWriter`] of a ZooKeeper cluster: `update_partition_state` conditional on the
/// znode version (no controller fence: the leader writes), then an
/// `/isr_change_notification/isr_change_` entry. The session is asked for at each write (the
/// function returns the broker's current one): after an expiry the broker connects a new
/// session, and the one it started with can write nothing any more.
pub struct ZkIsrWriter(pub Arc<dyn Fn() -> strom_meta::zk::ZkStore + Send + Sync>);

impl IsrWriter for ZkIsrWriter {
    fn write_isr<'a>(
        &'a self,
        partition: &'a TopicPartition,
        state: &'a LeaderAndIsr,
        expected_version: i32,
    ) -> BoxFuture<'a, Result<Option<i32>, String>> {
        Box::pin(async move { self.write(partition, state, expected_version).await })
    }

    fn read_state<'a>(
        &'a self,
        partition: &'a TopicPartition,
    ) -> BoxFuture<'a, Result<Option<Versioned<LeaderAndIsr>>, String>> {
        Box::pin(async move {
            (self.0)()
                .partition_state(partition)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl ZkIsrWriter {
    async fn write(
        &self,
        partition: &TopicPartition,
        state: &LeaderAndIsr,
        expected_version: i32,
    ) -> Result<Option<i32>, String> {
        let store = (self.0)();
        match store
            .update_partition_state(partition, state, expected_version, None)
            .await
        {
            Ok(version) => {
                if let Err(e) = store
                    .create_isr_change_notification(std::slice::from_ref(partition))
                    .await
                {
                    tracing::warn!(%partition, error = %e, "ISR change notification failed");
                }
                Ok(Some(version))
            }
            Err(strom_meta::zk::ZkError::BadVersion { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A replicated partition's replica state and what its shell still has to do.
pub struct Replication {
    /// The pure state.
    pub replica: PartitionReplica,
    /// ISR writes and reloads the state asked for, performed by whoever holds the partition.
    pub outbox: Vec<Effect>,
}

/// The name strom-meta uses for a partition.
pub fn meta_tp(tp: &strom_log::TopicPartition) -> TopicPartition {
    TopicPartition::new(tp.topic.clone(), tp.partition)
}

impl Partition {
    /// Steps the replica state (if any) and applies what can be applied under the log's
    /// mutex: a moved high watermark is set on the log (clamped to its end); ISR writes are
    /// queued in the outbox. Returns whether the high watermark moved.
    pub(crate) fn step_locked(&self, log: &mut strom_log::Log, input: Input, now_ms: u64) -> bool {
        let mut guard = self.replication.lock().unwrap();
        let Some(replication) = guard.as_mut() else {
            return false;
        };
        let effects = replication.replica.step(input, now_ms);
        let mut moved = false;
        for effect in effects {
            match effect {
                Effect::HighWatermark { offset } => {
                    let offset = offset.min(log.log_end_offset()).max(log.log_start_offset());
                    if offset > log.high_watermark() {
                        log.set_high_watermark(offset);
                        moved = true;
                    }
                }
                Effect::WriteIsr { .. } | Effect::ReloadState => replication.outbox.push(effect),
                Effect::Fenced => moved = true,
                Effect::Produced { .. } | Effect::FetchAccepted { .. } => {}
                Effect::FetchRefused { .. } => {}
            }
        }
        moved
    }

    /// The replicated path of `advance_high_watermark`: the leader's own durable end is one
    /// member of the minimum.
    pub(crate) fn replica_local_durable(&self, log: &mut strom_log::Log, end: i64) -> bool {
        let now = crate::clock::now_ms() as u64;
        self.step_locked(log, Input::LocalDurable { end_offset: end }, now)
    }

    /// Steps the replica state and wakes the waiters if the high watermark moved; returns the
    /// effects left in the outbox.
    pub(crate) fn step(&self, input: Input, now_ms: u64) -> Vec<Effect> {
        let moved = {
            let mut log = self.log().lock().unwrap();
            self.step_locked(&mut log, input, now_ms)
        };
        if moved {
            self.wake();
        }
        self.take_outbox()
    }

    pub(crate) fn take_outbox(&self) -> Vec<Effect> {
        self.replication
            .lock()
            .unwrap()
            .as_mut()
            .map(|r| std::mem::take(&mut r.outbox))
            .unwrap_or_default()
    }

    /// The replica's role, `None` on a single node.
    pub fn replica_role(&self) -> Option<Role> {
        self.replication
            .lock()
            .unwrap()
            .as_ref()
            .map(|r| r.replica.role().clone())
    }

    /// The committed ISR, `None` on a single node.
    pub fn isr(&self) -> Option<Vec<BrokerId>> {
        self.replication
            .lock()
            .unwrap()
            .as_ref()
            .map(|r| r.replica.isr().0.to_vec())
    }

    /// A produce's check before its append on a replicated partition: NOT_LEADER_OR_FOLLOWER
    /// off the leader, NOT_ENOUGH_REPLICAS for acks=all below `min.insync.replicas`. 0 on a
    /// single node.
    pub fn check_produce(&self, acks: i16) -> i16 {
        if !self.is_replicated() {
            return 0;
        }
        let acks = match acks {
            0 => strom_meta::replica::Acks::None,
            1 => strom_meta::replica::Acks::Leader,
            _ => strom_meta::replica::Acks::All,
        };
        match self.replication.lock().unwrap().as_ref() {
            Some(r) => r
                .replica
                .check_produce(acks)
                .err()
                .map_or(0, ReplicaError::code),
            None => E::NotLeaderOrFollower.code(),
        }
    }

    /// A consumer's fetch or ListOffsets on a replicated partition this broker does not lead:
    /// NOT_LEADER_OR_FOLLOWER; 0 otherwise.
    pub fn check_leader(&self) -> i16 {
        if !self.is_replicated() {
            return 0;
        }
        match self.replica_role() {
            Some(Role::Leader) => 0,
            _ => E::NotLeaderOrFollower.code(),
        }
    }

    /// A follower's fetch reached the leader: its fetch offset acknowledges what it holds
    /// durably. Returns 0 or the error to answer the partition with, and the ISR writes to
    /// perform.
    pub fn follower_fetch(
        &self,
        replica_id: BrokerId,
        fetch_offset: i64,
        current_leader_epoch: i32,
    ) -> (i16, Vec<Effect>) {
        if !self.is_replicated() {
            return (E::NotLeaderOrFollower.code(), Vec::new());
        }
        let now = crate::clock::now_ms() as u64;
        let input = Input::FollowerFetch {
            replica_id,
            fetch_offset,
            current_leader_epoch,
        };
        let (moved, error, outbox) = {
            let mut log = self.log().lock().unwrap();
            let mut guard = self.replication.lock().unwrap();
            let Some(replication) = guard.as_mut() else {
                return (E::NotLeaderOrFollower.code(), Vec::new());
            };
            if *replication.replica.role() == Role::Leader {
                // The core knows the log end only from appends it is told of (the produce path
                // tells it the durable end): a follower that synced faster than this leader
                // would be refused OFFSET_OUT_OF_RANGE and back off replica.fetch.backoff.ms.
                let appended = Input::Appended {
                    produce_id: 0,
                    end_offset: log.log_end_offset(),
                    acks: strom_meta::replica::Acks::None,
                };
                replication.replica.step(appended, now);
            }
            let effects = replication.replica.step(input, now);
            let mut moved = false;
            let mut error = 0;
            for effect in effects {
                match effect {
                    Effect::HighWatermark { offset } => {
                        let offset = offset.min(log.log_end_offset()).max(log.log_start_offset());
                        if offset > log.high_watermark() {
                            log.set_high_watermark(offset);
                            moved = true;
                        }
                    }
                    Effect::FetchRefused { error: e, .. } => error = e.code(),
                    Effect::WriteIsr { .. } | Effect::ReloadState => {
                        replication.outbox.push(effect)
                    }
                    _ => {}
                }
            }
            (moved, error, std::mem::take(&mut replication.outbox))
        };
        if moved {
            self.wake();
        }
        (error, outbox)
    }

    /// An acks=all produce on a replicated leader: returns once the high watermark (min
    /// durable log end over the ISR) passes `end_offset`, with 0, or with
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR is below `min.insync.replicas` then,
    /// NOT_LEADER_OR_FOLLOWER if leadership moved, KAFKA_STORAGE_ERROR on a failed sync.
    /// `all` false: acks=1, which waits only for the local durable end.
    pub async fn wait_replicated(self: &Arc<Self>, end_offset: i64, all: bool) -> i16 {
        if !all {
            return match self.wait_local_durable(end_offset).await {
                Ok(()) => 0,
                Err(_) => E::KafkaStorageError.code(),
            };
        }
        let notify = Arc::new(Notify::new());
        loop {
            self.add_waiter(&notify);
            let (hw, local) = {
                let log = self.log().lock().unwrap();
                (log.high_watermark(), log.recovery_point())
            };
            match self.check_produce(-1) {
                0 if hw >= end_offset => return 0,
                c if c == E::NotEnoughReplicas.code() && hw >= end_offset => {
                    return E::NotEnoughReplicasAfterAppend.code()
                }
                c if c == E::NotLeaderOrFollower.code() => return c,
                _ => {}
            }
            if self.is_deleted() {
                return E::NotLeaderOrFollower.code();
            }
            if local < end_offset && self.is_durable() {
                self.request_sync();
            }
            notify.notified().await;
        }
    }
}
