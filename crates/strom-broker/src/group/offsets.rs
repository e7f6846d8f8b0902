//! Committed offsets of every group this coordinator owns, as a plain in-memory table:
//! what OffsetCommit writes, what OffsetFetch reads, and Kafka's offset expiry
//! (`offsets.retention.minutes`, KIP-211).
//!
//! It does not validate commits (that is [`super::Group::validate_commit`]), encode
//! `__consumer_offsets` records, or hold transactional commits that are not yet decided;
//! the shell applies a commit here once its record is durable.

use std::collections::BTreeMap;

/// One committed offset (Kafka's `OffsetAndMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Client-supplied metadata.
    pub metadata: Option<String>,
    /// When the commit was accepted.
    pub commit_timestamp_ms: i64,
    /// OffsetCommit v1 explicit expiry; `None` for the retention-based expiry of v2+.
    pub expire_timestamp_ms: Option<i64>,
}

/// group → (topic, partition) → committed offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetTable {
    /// Invariant: no group maps to an empty table (a group with no offsets is absent).
    groups: BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>,
}

impl OffsetTable {
    /// An empty table.
    pub fn new() -> OffsetTable {
        OffsetTable::default()
    }

    /// Records `offset` for the partition, replacing any earlier commit.
    pub fn commit(&mut self, group: &str, topic: &str, partition: i32, offset: CommittedOffset) {
        self.groups
            .entry(group.to_string())
            .or_default()
            .insert((topic.to_string(), partition), offset);
    }

    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.groups.get(group)?.get(&(topic.to_string(), partition))
    }

    /// Every committed offset of `group`, sorted by topic then partition.
    pub fn group_offsets(&self, group: &str) -> Vec<((String, i32), CommittedOffset)> {
        self.groups
            .get(group)
            .map(|offsets| {
                offsets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes one partition's offset (OffsetDelete, deleted topics); true if it existed.
    pub fn delete(&mut self, group: &str, topic: &str, partition: i32) -> bool {
        let Some(offsets) = self.groups.get_mut(group) else {
            return false;
        };
        let removed = offsets.remove(&(topic.to_string(), partition)).is_some();
        if offsets.is_empty() {
            self.groups.remove(group);
        }
        removed
    }

    /// Removes every offset of `group` (DeleteGroups); returns how many there were.
    pub fn delete_group(&mut self, group: &str) -> usize {
        self.groups.remove(group).map_or(0, |offsets| offsets.len())
    }

    /// Groups with at least one committed offset, sorted.
    pub fn groups(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// Kafka's offset expiry. Only groups without members expire offsets:
    /// `is_empty_since(group)` says since when a group has had none (`None` while it has
    /// members; `Some(i64::MIN)` for a group that never had any, such as one used only for
    /// manual commits). An offset expires when `now_ms` has passed its explicit expire
    /// timestamp, or, without one, when `retention_ms` has passed since the later of its
    /// commit and the moment the group became empty. (Kafka measures from the moment the
    /// group became empty alone; taking the later of the two never expires an offset
    /// committed less than `retention_ms` ago.) Returns the removed (group, topic,
    /// partition) so the shell can write tombstones.
    pub fn expire(
        &mut self,
        now_ms: i64,
        retention_ms: i64,
        is_empty_since: &dyn Fn(&str) -> Option<i64>,
    ) -> Vec<(String, String, i32)> {
        let mut expired = Vec::new();
        for (group, offsets) in &mut self.groups {
            let Some(empty_since_ms) = is_empty_since(group) else {
                continue;
            };
            offsets.retain(|(topic, partition), offset| {
                let expires = match offset.expire_timestamp_ms {
                    Some(expire_ms) => now_ms >= expire_ms,
                    None => {
                        let base_ms = offset.commit_timestamp_ms.max(empty_since_ms);
                        now_ms.saturating_sub(base_ms) >= retention_ms
                    }
                };
                if expires {
                    expired.push((group.clone(), topic.clone(), *partition));
                }
                !expires
            });
        }
        self.groups.retain(|_, offsets| !offsets.is_empty());
        assert!(self.groups.values().all(|offsets| !offsets.is_empty()));
        expired
    }
}
