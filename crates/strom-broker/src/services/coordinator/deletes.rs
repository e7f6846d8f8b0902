//! DeleteGroups and OffsetDelete, which take their place in the order of a group's commits.
//!
//! Both run on the connection's reader when the request arrives, as
//! [`GroupCoordinator::begin_commit`] does: under the coordinator's lock they remove the
//! offsets, cancel the commits still in flight for them, and append the tombstones to the
//! group's `__consumer_offsets` partition. So a commit received before a delete is cancelled
//! by it and its record is followed by the tombstone in the log, and a commit received after
//! it is applied and its record follows the tombstone: replaying the log after a restart
//! gives what the clients were told. Only the wait until the tombstones are durable
//! ([`Appended::durable`]) happens outside the lock, in the reply's task.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;

use super::{offset_tombstone, subscribed_topics, ErrorCode, GroupCoordinator, OFFSETS_TOPIC};
use crate::services::group::GroupState;
use crate::services::replica::partition::Partition;

/// Records appended to `__consumer_offsets` whose durability is not known yet: the partition
/// and the end offset to wait for (None: nothing to wait for), or the error the append gave.
#[must_use = "a delete is acknowledged only once its tombstones are durable"]
pub struct Appended(Result<Option<(Arc<Partition>, i64)>, ErrorCode>);

impl Appended {
    /// Waits until the records are on disk; a sync that failed is `COORDINATOR_NOT_AVAILABLE`,
    /// so the client retries.
    pub async fn durable(self, group_id: &str) -> Result<(), ErrorCode> {
        let Some((partition, end)) = self.0? else {
            return Ok(());
        };
        partition.wait_high_watermark(end).await.map_err(|e| {
            tracing::error!(group = group_id, error = %e, "fdatasync of __consumer_offsets failed");
            E::CoordinatorNotAvailable.code()
        })
    }
}

impl GroupCoordinator {
    /// DeleteGroups for one group: only an empty group (or one with only offsets) can go.
    /// Removes the group and its offsets, cancels its commits in flight and appends the
    /// tombstones, all under the coordinator's lock; the delete is acknowledged once
    /// [`Appended::durable`] returns.
    pub fn delete_group(&self, group_id: &str, now_ms: i64) -> Result<Appended, ErrorCode> {
        let mut state = self.state.lock().unwrap();
        self.owner_check(&state, group_id)?;
        self.catch_up(&mut state, group_id, now_ms);
        let known = state.groups.contains_key(group_id) || state.offsets.has_group(group_id);
        if !known {
            return Err(E::GroupIdNotFound.code());
        }
        if let Some(group) = state.groups.get(group_id) {
            if group.state() != GroupState::Empty && group.state() != GroupState::Dead {
                return Err(E::NonEmptyGroup.code());
            }
        }
        // `mark_dead`'s Persist effect appends the group record's tombstone.
        let had_group = match state.groups.remove(group_id) {
            Some(mut group) => {
                let effects = group.mark_dead();
                state.groups.insert(group_id.to_string(), group);
                self.apply(&mut state, group_id, effects, now_ms);
                state.groups.remove(group_id);
                true
            }
            None => false,
        };
        // Tombstones for every offset and every commit in flight (its record is in the log
        // already).
        let records: Vec<(Bytes, Option<Bytes>)> = state
            .offsets
            .delete_group(group_id)
            .into_iter()
            .map(|(topic, partition)| offset_tombstone(group_id, topic, partition))
            .collect();
        state.empty_since.remove(group_id);
        let appended = self.append(group_id, &records, now_ms);
        if had_group && records.is_empty() {
            // Only the group's tombstone: wait for the partition's end as it is now.
            return Ok(Appended(Ok(self.log_end(group_id))));
        }
        Ok(appended)
    }

    /// OffsetDelete: removes the given partitions' offsets (and cancels their commits in
    /// flight) unless the group is active and subscribed to the topic, and appends the
    /// tombstones, under the coordinator's lock. Returns per-partition error codes.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        wanted: Vec<(String, i32)>,
        now_ms: i64,
    ) -> Result<(Vec<ErrorCode>, Appended), ErrorCode> {
        let mut state = self.state.lock().unwrap();
        self.owner_check(&state, group_id)?;
        self.catch_up(&mut state, group_id, now_ms);
        let known = state.groups.contains_key(group_id) || state.offsets.has_group(group_id);
        if !known {
            return Err(E::GroupIdNotFound.code());
        }
        let subscribed: Vec<String> = state
            .groups
            .get(group_id)
            .filter(|g| g.state() != GroupState::Empty && g.state() != GroupState::Dead)
            .map(subscribed_topics)
            .unwrap_or_default();
        let mut codes = Vec::new();
        let mut records = Vec::new();
        for (topic, partition) in wanted {
            if subscribed.contains(&topic) {
                codes.push(E::GroupSubscribedToTopic.code());
            } else {
                if state.offsets.delete(group_id, &topic, partition) {
                    records.push(offset_tombstone(group_id, topic, partition));
                }
                codes.push(0);
            }
        }
        Self::forget_if_gone(&mut state, group_id);
        Ok((codes, self.append(group_id, &records, now_ms)))
    }

    /// Appends `records` (if any) to the group's partition; the caller holds the lock.
    fn append(&self, group_id: &str, records: &[(Bytes, Option<Bytes>)], now_ms: i64) -> Appended {
        if records.is_empty() {
            return Appended(Ok(None));
        }
        match self.write(group_id, records, now_ms) {
            Some(written) => Appended(Ok(Some(written))),
            None => Appended(Err(E::CoordinatorNotAvailable.code())),
        }
    }

    /// The group's partition and its log end offset now.
    fn log_end(&self, group_id: &str) -> Option<(Arc<Partition>, i64)> {
        let partition = self
            .replicas
            .partition(OFFSETS_TOPIC, self.partition_of(group_id))?;
        let (_, _, log_end_offset) = partition.offsets();
        Some((partition, log_end_offset))
    }
}
