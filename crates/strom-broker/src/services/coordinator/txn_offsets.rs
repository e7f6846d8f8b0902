//! Offsets committed inside a transaction: TxnOffsetCommit, and the end of the transaction
//! that makes them count or drops them.
//!
//! [`GroupCoordinator::begin_txn_commit`] runs on the connection's reader under the
//! coordinator's lock, like an OffsetCommit (`commits.rs`): it checks the group as Kafka's
//! coordinator does for TxnOffsetCommit, appends the offset records to the group's
//! `__consumer_offsets` partition as a transactional batch of the request's producer id and
//! epoch, and stages them as pending for that producer
//! ([`crate::services::group::OffsetTable::stage_txn`]). [`PendingTxnCommit::finish`] answers
//! once the batch is durable. Pending offsets are invisible to OffsetFetch until
//! [`GroupCoordinator::complete_transaction`], which the transaction marker writer calls right
//! after it appended the producer's COMMIT or ABORT marker to that partition. Replaying the
//! partition (`load.rs`) gives the same result from the batches and markers in the log.
//!
//! The batch's sequence numbers continue the producer's in that partition's log (Kafka's
//! coordinator skips the sequence check for its own appends instead; Strom's log has one
//! append path, so the coordinator numbers its batches as the log expects). The producer epoch
//! is checked by the log: an epoch older than one already in the partition (a marker of a
//! newer epoch) is `INVALID_PRODUCER_EPOCH`.
//!
//! Not here: whether the producer added the group to its transaction (AddOffsetsToTxn; KIP-890's
//! verification of TxnOffsetCommit is not done), and writing markers (the transaction
//! coordinator's marker writer does).

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use strom_log::records::{encode_transactional_batch, KeyValue, TxnProducer};
use strom_log::AppendError;

use super::ownership::Ownership;
use super::records::offset_records;
use super::{ErrorCode, GroupCoordinator};
use crate::services::group::{CommitId, CommittedOffset};
use crate::services::replica::partition::Partition;

/// Who sends a TxnOffsetCommit: the transactional producer, and (v3+) the consumer group
/// member whose offsets it commits.
#[derive(Clone, Copy, Debug)]
pub struct TxnCommitter<'a> {
    /// The transactional producer's id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The member id (`""` before v3 or for a group without members).
    pub member_id: &'a str,
    /// The static member's instance id.
    pub group_instance_id: Option<&'a str>,
    /// The member's generation (-1 before v3 or for a group without members).
    pub generation_id: i32,
}

/// A TxnOffsetCommit appended whose durability is not known yet.
#[must_use = "a TxnOffsetCommit is acknowledged only once its records are durable"]
pub struct PendingTxnCommit {
    coordinator: Arc<GroupCoordinator>,
    group_id: String,
    producer_id: i64,
    /// The staged commit, the partition and the end offset to wait for; None when there was
    /// nothing to commit.
    written: Option<(CommitId, Arc<Partition>, i64)>,
}

impl GroupCoordinator {
    /// TxnOffsetCommit: checks the group (as Kafka's coordinator does: a group unknown here is
    /// accepted with generation -1, a member id and generation given are checked against the
    /// group's, any state but Dead accepts a commit without them), then appends `offsets` as
    /// one transactional batch of the committer's producer and stages them as its pending
    /// offsets, all in one critical section, so the log's order is the order of staging.
    /// A refused commit is one error code for every partition.
    pub fn begin_txn_commit(
        self: &Arc<Self>,
        group_id: &str,
        committer: TxnCommitter<'_>,
        offsets: Vec<(String, i32, CommittedOffset)>,
        now_ms: i64,
    ) -> Result<PendingTxnCommit, ErrorCode> {
        let mut pending = PendingTxnCommit {
            coordinator: self.clone(),
            group_id: group_id.to_string(),
            producer_id: committer.producer_id,
            written: None,
        };
        let mut state = self.state.lock().unwrap();
        self.owner_check(&state, group_id)?;
        self.catch_up(&mut state, group_id, now_ms);
        match state.groups.get(group_id) {
            Some(group) => group.validate_txn_commit(
                committer.member_id,
                committer.group_instance_id,
                committer.generation_id,
            )?,
            None if committer.generation_id < 0 => {}
            None => return Err(E::IllegalGeneration.code()),
        }
        if offsets.is_empty() {
            return Ok(pending);
        }
        let records = offset_records(group_id, &offsets);
        let refs: Vec<KeyValue<'_>> = records
            .iter()
            .map(|(k, v)| (Some(&k[..]), v.as_deref()))
            .collect();
        let partition = self
            .writable_partition(group_id)
            .ok_or(E::CoordinatorNotAvailable.code())?;
        let producer = TxnProducer {
            producer_id: committer.producer_id,
            producer_epoch: committer.producer_epoch,
            base_sequence: next_sequence(&partition, committer)?,
        };
        let batch = encode_transactional_batch(&refs, now_ms, producer);
        let end = Self::append_batch(&partition, batch, now_ms).map_err(|e| {
            tracing::info!(group = group_id, producer_id = committer.producer_id, error = %e,
                "TxnOffsetCommit not written to __consumer_offsets");
            append_error_code(&e)
        })?;
        let id = state
            .offsets
            .stage_txn(group_id, committer.producer_id, offsets);
        pending.written = Some((id, partition, end));
        if !state.groups.contains_key(group_id) {
            state
                .empty_since
                .entry(group_id.to_string())
                .or_insert(now_ms);
        }
        Ok(pending)
    }

    /// The transaction of `producer_id` ended: its COMMIT (`commit`) or ABORT marker was just
    /// appended to `__consumer_offsets` partition `offsets_partition`. A COMMIT makes that
    /// producer's pending offsets of every group of the partition what OffsetFetch answers,
    /// each replacing the partition's offset only if it was written after it; an ABORT drops
    /// them. The marker writer calls this on the partition's leader (a single node, or the
    /// cluster leader that appended the marker) once the marker is durable (as Kafka completes
    /// them once the marker's acks=-1 append did) and before it reports the marker written, so
    /// a later transaction of the producer never meets these offsets. A partition this broker
    /// does not lead is ignored (its next leader replays the marker); one being loaded applies
    /// it once loaded (the replay may have read the marker too, which is harmless: nothing is
    /// staged while loading, so the second application finds nothing).
    pub fn complete_transaction(&self, offsets_partition: i32, producer_id: i64, commit: bool) {
        let mut state = self.state.lock().unwrap();
        if self.clustered {
            match state.owned.get(&offsets_partition) {
                Some(Ownership::Loaded { .. }) => {}
                Some(Ownership::Loading { .. }) => {
                    state
                        .txn_markers_while_loading
                        .entry(offsets_partition)
                        .or_default()
                        .push((producer_id, commit));
                    return;
                }
                None => return,
            }
        }
        let in_scope = |group: &str| self.partition_of(group) == offsets_partition;
        let done = state.offsets.complete_txn(producer_id, commit, &in_scope);
        for group in &done.groups {
            // An aborted group known only by these offsets is gone.
            Self::forget_if_gone(&mut state, group);
        }
        tracing::debug!(
            offsets_partition,
            producer_id,
            commit,
            applied = done.applied,
            "transactional offsets completed"
        );
    }

    /// Applies the markers [`GroupCoordinator::complete_transaction`] set aside while
    /// `offsets_partition` was being loaded; the caller has just installed the load.
    pub(super) fn apply_markers_set_aside(&self, state: &mut super::State, offsets_partition: i32) {
        let markers = state
            .txn_markers_while_loading
            .remove(&offsets_partition)
            .unwrap_or_default();
        let in_scope = |group: &str| self.partition_of(group) == offsets_partition;
        for (producer_id, commit) in markers {
            let done = state.offsets.complete_txn(producer_id, commit, &in_scope);
            for group in &done.groups {
                Self::forget_if_gone(state, group);
            }
        }
    }

    /// True if a transaction has an offset pending for the partition: a `require_stable`
    /// OffsetFetch answers `UNSTABLE_OFFSET_COMMIT` for it.
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.state
            .lock()
            .unwrap()
            .offsets
            .has_pending_txn(group_id, topic, partition)
    }
}

impl PendingTxnCommit {
    /// Waits until the batch is durable. A write that failed or was not synced drops the
    /// offsets it staged (Kafka's `failPendingTxnOffsetCommit`) and is
    /// `COORDINATOR_NOT_AVAILABLE`, or `NOT_COORDINATOR` if this broker no longer coordinates
    /// the group, so the client retries.
    pub async fn finish(self) -> Result<(), ErrorCode> {
        let Some((id, partition, end)) = self.written else {
            return Ok(());
        };
        if let Err(e) = partition.wait_high_watermark(end).await {
            tracing::error!(group = %self.group_id, error = %e, "TxnOffsetCommit was not made durable");
            let coordinator = &self.coordinator;
            coordinator
                .state
                .lock()
                .unwrap()
                .offsets
                .fail_txn(self.producer_id, id);
            coordinator.check_coordinator(&self.group_id)?;
            return Err(E::CoordinatorNotAvailable.code());
        }
        Ok(())
    }
}

/// The base sequence the log expects next from the committer's producer in `partition`
/// (0 for a producer or epoch it has not seen), or `INVALID_PRODUCER_EPOCH` for an epoch
/// older than the one it knows. Only the coordinator writes this producer's batches there,
/// under its lock; a marker appended meanwhile keeps the sequence (same epoch) or makes the
/// append fail on the epoch (a newer one).
fn next_sequence(partition: &Partition, committer: TxnCommitter<'_>) -> Result<i32, ErrorCode> {
    let log = partition.log().lock().unwrap();
    let Some(entry) = log.producer_state().get(committer.producer_id) else {
        return Ok(0);
    };
    match committer.producer_epoch.cmp(&entry.epoch) {
        std::cmp::Ordering::Less => Err(E::InvalidProducerEpoch.code()),
        std::cmp::Ordering::Greater => Ok(0),
        std::cmp::Ordering::Equal => Ok(entry.batches.back().map_or(0, |batch| {
            strom_log::batch::increment_sequence(batch.last_sequence, 1)
        })),
    }
}

/// Kafka's mapping of a failed `__consumer_offsets` append to a TxnOffsetCommit's error.
fn append_error_code(error: &AppendError) -> ErrorCode {
    match error {
        AppendError::InvalidProducerEpoch { .. } => E::InvalidProducerEpoch.code(),
        AppendError::MessageTooLarge { .. } => E::InvalidCommitOffsetSize.code(),
        AppendError::StaleLeaderEpoch { .. } => E::NotCoordinator.code(),
        _ => E::CoordinatorNotAvailable.code(),
    }
}
