//! OffsetCommit in two halves, so that commits apply in the order the broker received them.
//!
//! [`GroupCoordinator::begin_commit`] runs on the connection's reader, under the coordinator's
//! lock: it checks the member and generation, stages the commit in the
//! [`crate::services::group::OffsetTable`] (which numbers it in receive order) and appends its records
//! to the group's `__consumer_offsets` partition in that same critical section, so no
//! rebalance comes between the check and the staging, and the log's order is the receive
//! order too (deletes append their tombstones the same way, see `deletes.rs`).
//! [`PendingCommit::finish`] then waits until the records are durable and completes the
//! staged commit; the table applies it only if nothing received later has been applied, so
//! commits whose syncs finish out of order (every waiter of one fdatasync wakes at once)
//! never take an offset backwards. An OffsetFetch waits for the commits of its group staged
//! before it ([`GroupCoordinator::wait_commits`]), so a client reads its own pipelined
//! commits. A [`PendingCommit`] dropped before it finishes (its task cancelled) completes as
//! failed, so nothing waits for it forever.

use std::sync::Arc;

use super::records::offset_records;
use super::{ErrorCode, GroupCoordinator};
use crate::services::group::{CommitId, CommittedOffset};
use crate::services::replica::partition::Partition;

/// A commit staged and written at receipt whose durability is not known yet.
pub struct PendingCommit {
    coordinator: Arc<GroupCoordinator>,
    group_id: String,
    /// None once completed (or when there was nothing to commit).
    id: Option<CommitId>,
    /// The partition and end offset to wait for, or the error the write already gave.
    write: Result<Option<(Arc<Partition>, i64)>, ErrorCode>,
}

impl GroupCoordinator {
    /// Checks that (member, generation) may commit now, then stages `offsets` and appends
    /// their records, in receive order, all in one critical section: no rebalance or session
    /// expiry can come between the check and the staging. A refused commit is the error code
    /// for every partition and stages nothing. The commit counts as the member's heartbeat,
    /// as in Kafka.
    pub fn begin_commit(
        self: &Arc<Self>,
        group_id: &str,
        member: (&str, Option<&str>, i32),
        offsets: Vec<(String, i32, CommittedOffset)>,
        now_ms: i64,
    ) -> Result<PendingCommit, ErrorCode> {
        let (member_id, instance, generation) = member;
        let mut pending = PendingCommit {
            coordinator: self.clone(),
            group_id: group_id.to_string(),
            id: None,
            write: Ok(None),
        };
        let mut state = self.state.lock().unwrap();
        self.owner_check(&state, group_id)?;
        self.catch_up(&mut state, group_id, now_ms);
        match state.groups.get(group_id) {
            Some(group) => group.validate_commit(member_id, instance, generation)?,
            None if generation < 0 => {}
            None => return Err(kafka_protocol::error::ResponseError::IllegalGeneration.code()),
        }
        if offsets.is_empty() {
            return Ok(pending);
        }
        let records = offset_records(group_id, &offsets);
        // OffsetCommit v1 may date a commit in the past; a group without members then counts
        // as empty since then, so expiry runs from the client's timestamp as in Kafka.
        let earliest = offsets
            .iter()
            .map(|(_, _, c)| c.commit_timestamp_ms)
            .fold(now_ms, i64::min);
        let id = state.offsets.stage(group_id, offsets);
        match self.write(group_id, &records, now_ms) {
            Some(written) => {
                pending.id = Some(id);
                pending.write = Ok(Some(written));
            }
            None => {
                state.offsets.complete(id, false);
                pending.write =
                    Err(kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code());
            }
        }
        if let Some(group) = state.groups.get_mut(group_id) {
            group.record_commit(member_id, now_ms);
        }
        if !state.groups.contains_key(group_id) {
            state
                .empty_since
                .entry(group_id.to_string())
                .and_modify(|since| *since = (*since).min(earliest))
                .or_insert(earliest);
        }
        Ok(pending)
    }
}

impl PendingCommit {
    /// Waits until the commit's records are durable, then applies it (in receive order) and
    /// returns; a write or sync that failed is `COORDINATOR_NOT_AVAILABLE`, so the client
    /// retries, and leaves the table as it was.
    pub async fn finish(mut self) -> Result<(), ErrorCode> {
        let written = match std::mem::replace(&mut self.write, Ok(None)) {
            Err(code) => return Err(code),
            Ok(None) => return Ok(()),
            Ok(Some(written)) => written,
        };
        let (partition, end) = written;
        let durable = match partition.wait_high_watermark(end).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(group = %self.group_id, error = %e, "fdatasync of __consumer_offsets failed");
                false
            }
        };
        self.complete(durable);
        if durable {
            Ok(())
        } else {
            // A leadership change ended the wait: the client looks for the new coordinator.
            self.coordinator.check_coordinator(&self.group_id)?;
            Err(kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code())
        }
    }

    fn complete(&mut self, durable: bool) {
        if let Some(id) = self.id.take() {
            // A poisoned lock means a panic elsewhere; do not add a second one in drop.
            if let Ok(mut state) = self.coordinator.state.lock() {
                state.offsets.complete(id, durable);
            }
            self.coordinator.commit_completed(&self.group_id);
        }
    }
}

impl Drop for PendingCommit {
    fn drop(&mut self) {
        self.complete(false);
    }
}
