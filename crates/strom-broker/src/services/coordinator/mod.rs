//! The group coordinator's async shell: it owns every group's pure state machine
//! ([`crate::services::group::Group`]) and the committed offsets ([`crate::services::group::OffsetTable`]), parks
//! JoinGroup/SyncGroup requests until their group answers them, drives the groups' timers, and
//! writes every change to `__consumer_offsets` before it is acknowledged.
//!
//! State lives in the compacted internal topic `__consumer_offsets` (Kafka's record layout, see
//! [`records`]); a group's records go to partition `abs(java_hash(group)) % partitions`, as in
//! Kafka. A single node coordinates every group and replays the whole topic at start; a
//! cluster broker coordinates the groups of the partitions it leads, loading each when it
//! becomes its leader and dropping it when it stops leading (`ownership.rs`).
//!
//! Time and member-id randomness enter here (the wall clock, a seed from the clock at start);
//! the state machines below take them as inputs.

mod commits;
mod deletes;
mod fetch_turns;
mod load;
mod ownership;
pub mod records;
mod txn_offsets;

pub use fetch_turns::{FetchTurn, FetchTurns};
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng as _, SeedableRng as _};
use strom_log::records::encode_batch;
use tokio::sync::oneshot;

use crate::services::group::{
    CommitId, CommittedOffset, Effect, Group, GroupConfig, GroupState, JoinRequest, JoinResult,
    OffsetTable, RequestToken, SyncRequest, SyncResult,
};
use crate::services::metadata_cache::MetadataCache;
use crate::services::replica::ReplicaManager;
use crate::services::topics::TopicAdmin;
pub use commits::PendingCommit;
pub use deletes::Appended;
use records::RecordKey;
pub use txn_offsets::{PendingTxnCommit, TxnCommitter};

pub use strom_meta::topic::OFFSETS_TOPIC;

/// Kafka's `String.hashCode`-based partitioning of group ids over `__consumer_offsets`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in group.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (hash & 0x7fff_ffff) % partitions.max(1)
}

struct State {
    groups: HashMap<String, Group>,
    offsets: OffsetTable,
    /// Parked JoinGroup and SyncGroup requests: their group and where to answer.
    joins: HashMap<RequestToken, (String, oneshot::Sender<JoinResult>)>,
    syncs: HashMap<RequestToken, (String, oneshot::Sender<SyncAnswer>)>,
    next_token: RequestToken,
    /// The generator of fresh member ids (seeded at start; see the module documentation).
    member_ids: ChaCha8Rng,
    /// When each group last became empty, for offset expiry.
    empty_since: HashMap<String, i64>,
    /// The time the timer task sleeps until (`i64::MAX`: no deadline); a step that gives a
    /// group an earlier deadline wakes it.
    timer_wake_ms: i64,
    /// Cluster mode: the `__consumer_offsets` partitions this broker leads (see
    /// `ownership.rs`); unused on a single node.
    owned: HashMap<i32, ownership::Ownership>,
    /// The number of the last partition load started.
    next_load: u64,
    /// Cluster mode: transaction markers (producer id, commit) written to a partition while
    /// it was being loaded, applied once it is (see `txn_offsets.rs`).
    txn_markers_while_loading: HashMap<i32, Vec<(i64, bool)>>,
}

/// The coordinator of every consumer group on this broker.
pub struct GroupCoordinator {
    config: GroupConfig,
    /// Cluster mode (`zookeeper.connect`): groups are served only for the partitions this
    /// broker leads.
    clustered: bool,
    /// Where `__consumer_offsets` is (does it exist, how many partitions).
    metadata: Arc<MetadataCache>,
    /// The `__consumer_offsets` partitions the records go to.
    replicas: Arc<ReplicaManager>,
    /// Creates `__consumer_offsets` on first use.
    topics: Arc<TopicAdmin>,
    /// `offsets.topic.segment.bytes`, for creating `__consumer_offsets`.
    offsets_topic_segment_bytes: i32,
    /// `offsets.retention.check.interval.ms`.
    offsets_retention_check_interval_ms: i64,
    partitions: i32,
    offsets_retention_ms: i64,
    state: Mutex<State>,
    /// Wakes the timer task when a deadline earlier than the one it sleeps until appears.
    timers: tokio::sync::Notify,
    /// Per group, wakes the OffsetFetches waiting for its commits received before them; a
    /// commit's completion wakes only its own group's waiters. An entry exists while the
    /// group has a waiter and commits in flight.
    fetch_waiters: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Per group, the turn of the OffsetFetch received last: fetches of a group read the table
    /// in the order they were received (see [`GroupCoordinator::take_fetch_turn`]). An entry
    /// exists while that fetch has not read yet.
    fetch_turns: Arc<Mutex<HashMap<String, Arc<FetchTurn>>>>,
}

/// A parked SyncGroup's answer, with the group record (if any) that must be durable first;
/// see [`GroupCoordinator::settle`].
pub struct SyncAnswer {
    result: SyncResult,
    record: Option<GroupRecord>,
}

/// The group record written by the step that answered a SyncGroup.
#[derive(Clone)]
enum GroupRecord {
    /// Appended to this partition, durable once its recovery point reaches the offset.
    Written(Arc<crate::services::replica::partition::Partition>, i64),
    /// The append failed.
    Failed,
}

/// Why a commit or a group operation could not be written.
pub type ErrorCode = i16;

impl GroupCoordinator {
    /// A coordinator configured from the broker's `group.*` and `offsets.*` settings.
    pub fn new(
        config: &strom_meta::config::BrokerConfig,
        seed: u64,
        metadata: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
        topics: Arc<TopicAdmin>,
    ) -> GroupCoordinator {
        GroupCoordinator {
            clustered: config.cluster.zookeeper_connect.is_some(),
            metadata,
            replicas,
            topics,
            offsets_topic_segment_bytes: config.offsets_topic_segment_bytes,
            offsets_retention_check_interval_ms: config.offsets_retention_check_interval_ms,
            config: GroupConfig {
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                max_size: None,
            },
            partitions: config.offsets_topic_num_partitions.max(1),
            offsets_retention_ms: config.offsets_retention_minutes.saturating_mul(60_000),
            state: Mutex::new(State {
                groups: HashMap::new(),
                offsets: OffsetTable::default(),
                joins: HashMap::new(),
                syncs: HashMap::new(),
                next_token: 1,
                member_ids: ChaCha8Rng::seed_from_u64(seed),
                empty_since: HashMap::new(),
                timer_wake_ms: i64::MAX,
                owned: HashMap::new(),
                next_load: 0,
                txn_markers_while_loading: HashMap::new(),
            }),
            timers: tokio::sync::Notify::new(),
            fetch_waiters: Mutex::new(HashMap::new()),
            fetch_turns: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The `__consumer_offsets` partition of `group_id`. A cluster counts the topic's
    /// partitions as created (by whichever broker created it, as Kafka reads the count from
    /// ZooKeeper), so every broker maps a group alike; before it exists, and on a single node,
    /// `offsets.topic.num.partitions`.
    pub fn partition_of(&self, group_id: &str) -> i32 {
        let partitions = if self.clustered {
            self.metadata
                .cluster()
                .topics
                .get(OFFSETS_TOPIC)
                .map_or(self.partitions, |t| t.partitions)
        } else {
            self.partitions
        };
        partition_for(group_id, partitions)
    }

    /// The broker that coordinates `group_id`: the leader of its `__consumer_offsets`
    /// partition, if that partition has one.
    pub fn coordinator_of(&self, group_id: &str) -> Option<strom_meta::replication::BrokerId> {
        self.metadata
            .leader(OFFSETS_TOPIC, self.partition_of(group_id))
    }

    /// Creates `__consumer_offsets` if it does not exist yet (Kafka creates it on the first
    /// coordinator lookup).
    /// In cluster mode the topic is created through ZooKeeper by the caller (the
    /// FindCoordinator handler); here it is only `COORDINATOR_NOT_AVAILABLE` until it exists.
    pub fn ensure_topic(&self) -> Result<(), ErrorCode> {
        if self.metadata.cluster().topics.contains_key(OFFSETS_TOPIC) {
            return Ok(());
        }
        if self.clustered {
            return Err(kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code());
        }
        let mut configs = std::collections::BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert(
            "segment.bytes".to_string(),
            self.offsets_topic_segment_bytes.to_string(),
        );
        match self
            .topics
            .create_topic(OFFSETS_TOPIC, self.partitions, 1, configs, false)
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == kafka_protocol::error::ResponseError::TopicAlreadyExists.code() => {
                Ok(())
            }
            Err(e) => {
                tracing::error!(reason = %e.message, "creating __consumer_offsets failed");
                Err(kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code())
            }
        }
    }

    /// Runs the timers of every group until the broker shuts down. The task sleeps until the
    /// earliest deadline over all groups (each group's [`Group::next_deadline`]: sessions,
    /// rebalance and sync timeouts, the initial delay, pending members) or the next offset
    /// expiry check, and is woken early when a request gives a group an earlier deadline, so
    /// a session expires at its deadline (to the millisecond) rather than on a periodic tick.
    pub fn spawn_timers(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_expiry = crate::clock::now_ms();
            let expiry_every = self.offsets_retention_check_interval_ms.max(1);
            loop {
                let now = crate::clock::now_ms();
                let next_deadline = self.tick(now);
                if now - last_expiry >= expiry_every {
                    last_expiry = now;
                    self.expire_offsets(now);
                }
                let wake_ms = next_deadline.min(last_expiry.saturating_add(expiry_every));
                // The clock is read again after the work: tick and expiry can take a while
                // under load (or wait for the lock), and a sleep measured from `now` would
                // wake that much after the deadline.
                let sleep_ms = wake_ms
                    .saturating_sub(crate::clock::now_ms())
                    .clamp(0, 3_600_000);
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = self.timers.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
                }
            }
        })
    }

    /// Fires every group deadline at or before `now_ms` and returns the earliest deadline
    /// left (`i64::MAX` if none), which the timer task then sleeps until.
    fn tick(&self, now_ms: i64) -> i64 {
        let mut state = self.state.lock().unwrap();
        let ids: Vec<String> = state
            .groups
            .iter()
            .filter(|(_, g)| g.next_deadline().is_some_and(|d| d <= now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let effects = state
                .groups
                .get_mut(&id)
                .map(|g| g.tick(now_ms))
                .unwrap_or_default();
            self.apply(&mut state, &id, effects, now_ms);
        }
        let next = state
            .groups
            .values()
            .filter_map(Group::next_deadline)
            .min()
            .unwrap_or(i64::MAX);
        state.timer_wake_ms = next;
        next
    }

    /// Fires the group's overdue deadlines before a request looks at it, so every request
    /// sees the group as it is at `now_ms` even if the timer task has not run yet (a member
    /// whose session ended a millisecond ago is gone for DeleteGroups, as in Kafka).
    fn catch_up(&self, state: &mut State, group_id: &str, now_ms: i64) {
        let overdue = state
            .groups
            .get(group_id)
            .and_then(Group::next_deadline)
            .is_some_and(|deadline| deadline <= now_ms);
        if overdue {
            let effects = state
                .groups
                .get_mut(group_id)
                .map(|g| g.tick(now_ms))
                .unwrap_or_default();
            self.apply(state, group_id, effects, now_ms);
        }
    }

    /// Deletes offsets of empty groups older than `offsets.retention.minutes`, writing
    /// tombstones.
    fn expire_offsets(&self, now_ms: i64) {
        let mut state = self.state.lock().unwrap();
        let empty_since = state.empty_since.clone();
        let groups_state: HashMap<String, GroupState> = state
            .groups
            .iter()
            .map(|(k, g)| (k.clone(), g.state()))
            .collect();
        let is_empty_since = |group: &str| -> Option<i64> {
            match groups_state.get(group) {
                Some(GroupState::Empty) | None => {
                    Some(empty_since.get(group).copied().unwrap_or(0))
                }
                Some(_) => None,
            }
        };
        let expired = state
            .offsets
            .expire(now_ms, self.offsets_retention_ms, &is_empty_since);
        for (group, _, _) in &expired {
            Self::forget_if_gone(&mut state, group);
        }
        // One batch of tombstones per group, not one write per offset, appended under the
        // lock (as commits are) so that no commit received after the expiry can be appended
        // before its tombstone. Nobody waits for them to be durable: a crash before the next
        // sync only brings back offsets that expire again.
        let mut by_group: HashMap<&str, Vec<(Bytes, Option<Bytes>)>> = HashMap::new();
        for (group, topic, partition) in &expired {
            by_group.entry(group).or_default().push(offset_tombstone(
                group,
                topic.clone(),
                *partition,
            ));
        }
        for (group, records) in by_group {
            self.write(group, &records, now_ms);
        }
        if !expired.is_empty() {
            tracing::info!(
                offsets = expired.len(),
                "expired committed offsets of empty groups"
            );
        }
    }

    /// Forgets when `group_id` became empty once nothing is left of it: no group object, no
    /// offsets, no commit in flight. A group known only by its offsets (simple commits)
    /// would otherwise keep its entry after its last offset expired or was deleted.
    fn forget_if_gone(state: &mut State, group_id: &str) {
        if !state.groups.contains_key(group_id) && !state.offsets.has_group(group_id) {
            state.empty_since.remove(group_id);
        }
    }

    fn token(state: &mut State) -> RequestToken {
        let token = state.next_token;
        state.next_token += 1;
        token
    }

    fn fresh_id(state: &mut State) -> u128 {
        let high = state.member_ids.next_u64();
        (u128::from(high) << 64) | u128::from(state.member_ids.next_u64())
    }

    /// JoinGroup: the answer arrives on the returned channel when the group completes the join.
    pub fn join(
        &self,
        group_id: &str,
        mut request: JoinRequest,
        supports_skip_assignment: bool,
        now_ms: i64,
    ) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock().unwrap();
        if let Err(code) = self.owner_check(&state, group_id) {
            let _ = tx.send(JoinResult::error(request.member_id, code));
            return rx;
        }
        let token = Self::token(&mut state);
        request.token = token;
        state.joins.insert(token, (group_id.to_string(), tx));
        self.catch_up(&mut state, group_id, now_ms);
        let fresh = Self::fresh_id(&mut state);
        let config = self.config.clone();
        let group = state
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id.to_string(), config));
        let effects =
            group.join_with_skip_assignment(request, now_ms, fresh, supports_skip_assignment);
        self.apply(&mut state, group_id, effects, now_ms);
        rx
    }

    /// SyncGroup: the answer arrives when the leader's assignment is in.
    pub fn sync(
        &self,
        group_id: &str,
        mut request: SyncRequest,
        now_ms: i64,
    ) -> oneshot::Receiver<SyncAnswer> {
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock().unwrap();
        if let Err(code) = self.owner_check(&state, group_id) {
            let _ = tx.send(SyncAnswer {
                result: SyncResult::error(code),
                record: None,
            });
            return rx;
        }
        let token = Self::token(&mut state);
        request.token = token;
        state.syncs.insert(token, (group_id.to_string(), tx));
        self.catch_up(&mut state, group_id, now_ms);
        let effects = match state.groups.get_mut(group_id) {
            Some(group) => group.sync(request, now_ms),
            None => vec![Effect::Sync(
                token,
                SyncResult {
                    error_code: kafka_protocol::error::ResponseError::UnknownMemberId.code(),
                    protocol_type: None,
                    protocol_name: None,
                    assignment: Bytes::new(),
                },
            )],
        };
        self.apply(&mut state, group_id, effects, now_ms);
        rx
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> ErrorCode {
        let mut state = self.state.lock().unwrap();
        if let Err(code) = self.owner_check(&state, group_id) {
            return code;
        }
        self.catch_up(&mut state, group_id, now_ms);
        let Some(group) = state.groups.get_mut(group_id) else {
            return kafka_protocol::error::ResponseError::UnknownMemberId.code();
        };
        let (code, effects) = group.heartbeat(member_id, instance, generation, now_ms);
        self.apply(&mut state, group_id, effects, now_ms);
        code
    }

    /// LeaveGroup for one or more members; one error code per member.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now_ms: i64,
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let mut state = self.state.lock().unwrap();
        self.owner_check(&state, group_id)?;
        self.catch_up(&mut state, group_id, now_ms);
        let Some(group) = state.groups.get_mut(group_id) else {
            return Err(kafka_protocol::error::ResponseError::UnknownMemberId.code());
        };
        let (codes, effects) = group.leave(members, now_ms);
        self.apply(&mut state, group_id, effects, now_ms);
        Ok(codes)
    }

    fn apply(&self, state: &mut State, group_id: &str, effects: Vec<Effect>, now_ms: i64) {
        let mut syncs = Vec::new();
        // The group's record written in this step, which its SyncGroup answers wait for.
        let mut record = None;
        for effect in effects {
            match effect {
                Effect::Join(token, result) => {
                    if let Some((_, tx)) = state.joins.remove(&token) {
                        let _ = tx.send(result);
                    }
                }
                Effect::Sync(token, result) => {
                    if let Some((_, tx)) = state.syncs.remove(&token) {
                        syncs.push((tx, result));
                    }
                }
                Effect::Persist => {
                    let Some(group) = state.groups.get(group_id) else {
                        continue;
                    };
                    if group.state() == GroupState::Empty {
                        state.empty_since.insert(group_id.to_string(), now_ms);
                    } else {
                        state.empty_since.remove(group_id);
                    }
                    let key = RecordKey::Group {
                        group: group_id.to_string(),
                    }
                    .encode();
                    let value = if group.state() == GroupState::Dead {
                        None
                    } else {
                        Some(records::encode_group(&group.snapshot()))
                    };
                    record = Some(match self.write(group_id, &[(key, value)], now_ms) {
                        Some((partition, end)) => GroupRecord::Written(partition, end),
                        None => GroupRecord::Failed,
                    });
                }
            }
        }
        for (tx, result) in syncs {
            let _ = tx.send(SyncAnswer {
                result,
                record: record.clone(),
            });
        }
        // Wake the timer task if this step gave the group an earlier deadline than the one it
        // sleeps until.
        if let Some(deadline) = state.groups.get(group_id).and_then(Group::next_deadline) {
            if deadline < state.timer_wake_ms {
                state.timer_wake_ms = deadline;
                self.timers.notify_one();
            }
        }
    }

    /// The SyncGroup answer to send. When the step that produced it wrote the group's record
    /// (the leader's assignment completing a rebalance), the answer waits until that record is
    /// durable, as Kafka waits for the group metadata append: an acknowledged assignment
    /// survives a crash. A record that could not be written or synced turns the answer into
    /// `COORDINATOR_NOT_AVAILABLE`; the members then rejoin, which starts a new rebalance.
    pub async fn settle(group_id: &str, answer: SyncAnswer) -> SyncResult {
        let unavailable =
            SyncResult::error(kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code());
        match answer.record {
            None => answer.result,
            Some(GroupRecord::Failed) => unavailable,
            Some(GroupRecord::Written(partition, end)) => {
                match partition.wait_high_watermark(end).await {
                    Ok(()) => answer.result,
                    Err(e) => {
                        tracing::error!(group = group_id, error = %e, "fdatasync of the group's record failed; its members must rejoin");
                        unavailable
                    }
                }
            }
        }
    }

    /// Appends records to the group's `__consumer_offsets` partition and returns the end offset
    /// to wait for (None if the topic or partition is missing or the append failed).
    fn write(
        &self,
        group_id: &str,
        records: &[(Bytes, Option<Bytes>)],
        now_ms: i64,
    ) -> Option<(Arc<crate::services::replica::partition::Partition>, i64)> {
        let partition = self.writable_partition(group_id)?;
        let refs: Vec<strom_log::records::KeyValue> = records
            .iter()
            .map(|(k, v)| (Some(&k[..]), v.as_deref()))
            .collect();
        match Self::append_batch(&partition, encode_batch(&refs, now_ms), now_ms) {
            Ok(end) => Some((partition, end)),
            Err(e) => {
                tracing::error!(group = group_id, error = %e, "writing to __consumer_offsets failed");
                None
            }
        }
    }

    /// The group's `__consumer_offsets` partition if this broker may append to it now (None if
    /// the topic or partition is missing, or a cluster leader lacks the ISR for acks=all).
    fn writable_partition(
        &self,
        group_id: &str,
    ) -> Option<Arc<crate::services::replica::partition::Partition>> {
        if self.ensure_topic().is_err() {
            return None;
        }
        let partition = self
            .replicas
            .partition(OFFSETS_TOPIC, self.partition_of(group_id))?;
        // Cluster mode: only a leader with enough of an ISR for acks=all appends (Kafka's
        // coordinator writes with acks=-1); a follower's log must never take a write.
        let refused = partition.check_produce(-1);
        if refused != 0 {
            tracing::info!(
                group = group_id,
                code = refused,
                "not writing to __consumer_offsets"
            );
            return None;
        }
        Some(partition)
    }

    /// Appends one batch to a partition [`GroupCoordinator::writable_partition`] gave and
    /// returns the end offset to wait for.
    fn append_batch(
        partition: &Arc<crate::services::replica::partition::Partition>,
        batch: Vec<u8>,
        now_ms: i64,
    ) -> Result<i64, strom_log::AppendError> {
        let info = partition.append(Bytes::from(batch), now_ms)?;
        if partition.is_replicated() {
            // A replicated leader counts its own log end only once synced, and its
            // followers may not fetch past what it counts: a record nobody waits for
            // (a group record after LeaveGroup, an expiry's tombstones) must be synced
            // too, or a follower that read it would be refused until the next sync.
            partition.request_sync();
        }
        Ok(info.last_offset + 1)
    }

    /// The committed offset of one partition: the last acknowledged commit.
    pub fn committed(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<CommittedOffset> {
        self.state
            .lock()
            .unwrap()
            .offsets
            .get(group_id, topic, partition)
            .cloned()
    }

    /// What an OffsetFetch received now must reflect: every commit staged so far.
    pub fn fetch_barrier(&self) -> CommitId {
        self.state.lock().unwrap().offsets.last_staged()
    }

    /// True when every commit of `group_id` staged up to `barrier` has completed.
    pub fn commits_settled(&self, group_id: &str, barrier: CommitId) -> bool {
        !self
            .state
            .lock()
            .unwrap()
            .offsets
            .has_staged(group_id, barrier)
    }

    /// Waits until every commit of `group_id` staged up to `barrier` has completed (each one
    /// does: its [`PendingCommit`] finishes or is dropped). Only completions of this group's
    /// commits wake it (`GroupCoordinator::commit_completed`).
    pub async fn wait_commits(&self, group_id: &str, barrier: CommitId) {
        loop {
            let notify = self
                .fetch_waiters
                .lock()
                .unwrap()
                .entry(group_id.to_string())
                .or_default()
                .clone();
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Checked after registering: a completion in between has either notified us
            // or is visible here.
            if self.commits_settled(group_id, barrier) {
                return;
            }
            notified.await;
        }
    }

    /// Called after a commit of `group_id` completed: wakes that group's waiting fetches, and
    /// forgets the group's entry once it has no commit in flight (a fetch that registers
    /// later checks the table after registering, so it misses nothing).
    fn commit_completed(&self, group_id: &str) {
        let mut waiters = self.fetch_waiters.lock().unwrap();
        if let Some(notify) = waiters.get(group_id) {
            notify.notify_waiters();
            let settled = self.commits_settled(group_id, CommitId::MAX);
            if settled {
                waiters.remove(group_id);
            }
        }
    }

    /// Every committed offset of a group, sorted by topic and partition.
    pub fn group_offsets(&self, group_id: &str) -> Vec<((String, i32), CommittedOffset)> {
        self.state.lock().unwrap().offsets.group_offsets(group_id)
    }

    /// Every known group with its protocol type and state (groups with only offsets are Empty).
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let state = self.state.lock().unwrap();
        let mut out: Vec<(String, String, GroupState)> = state
            .groups
            .iter()
            .filter(|(_, g)| g.state() != GroupState::Dead)
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.protocol_type().unwrap_or("").to_string(),
                    g.state(),
                )
            })
            .collect();
        // Groups known only by offsets, committed or pending in a transaction.
        let mut offsets_only = state.offsets.groups();
        offsets_only.extend(state.offsets.txn_groups());
        offsets_only.sort();
        offsets_only.dedup();
        for id in offsets_only {
            if !state.groups.contains_key(&id) {
                out.push((id, String::new(), GroupState::Empty));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Runs `f` on the group, if it exists (for DescribeGroups).
    pub fn with_group<T>(&self, group_id: &str, f: impl FnOnce(Option<&Group>, bool) -> T) -> T {
        let state = self.state.lock().unwrap();
        let has_offsets = !state.offsets.group_offsets(group_id).is_empty();
        f(state.groups.get(group_id), has_offsets)
    }
}

/// The topics the members of a "consumer" group subscribe to (from their join metadata).
pub(super) fn subscribed_topics(group: &Group) -> Vec<String> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    if group.protocol_type() != Some("consumer") {
        return Vec::new();
    }
    let mut topics = Vec::new();
    for member in group.members() {
        let mut metadata = member.metadata.clone();
        if metadata.len() < 2 {
            continue;
        }
        let version = i16::from_be_bytes([metadata[0], metadata[1]]);
        let _ = bytes::Buf::get_i16(&mut metadata);
        if let Ok(subscription) =
            ConsumerProtocolSubscription::decode(&mut metadata, version.clamp(0, 3))
        {
            topics.extend(subscription.topics.into_iter().map(|t| t.to_string()));
        }
    }
    topics.sort();
    topics.dedup();
    topics
}

/// The record that deletes a committed offset.
pub(super) fn offset_tombstone(
    group: &str,
    topic: String,
    partition: i32,
) -> (Bytes, Option<Bytes>) {
    let key = RecordKey::Offset {
        group: group.to_string(),
        topic,
        partition,
    };
    (key.encode(), None)
}
