//! Offsets committed inside a transaction (TxnOffsetCommit) that wait for its end: Kafka's
//! pending transactional offset commits, per producer id.
//!
//! A TxnOffsetCommit's records are in `__consumer_offsets` at once, but its offsets count only
//! once the producer's COMMIT marker follows them there; an ABORT marker drops them. Until then
//! OffsetFetch does not return them (and answers `UNSTABLE_OFFSET_COMMIT` to a `require_stable`
//! fetch of such a partition). Each pending offset keeps the [`CommitId`] its record was given
//! (ids grow in log order), so a COMMIT replaces a partition's offset only with a pending one
//! written after it, as Kafka compares the records' log offsets.
//!
//! This is pure bookkeeping inside [`super::OffsetTable`], which applies what a COMMIT
//! releases; it does not validate requests, write records or know which groups a marker's
//! `__consumer_offsets` partition holds (the caller says).

use std::collections::{BTreeMap, BTreeSet};

use super::commit::{CommitId, CommittedOffset};

/// (group, topic, partition).
pub(super) type GroupPartition = (String, String, i32);

/// A pending offset with the id of the commit that wrote it.
pub(super) type PendingOffset = (CommittedOffset, CommitId);

/// The pending transactional offsets of every producer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PendingTxnOffsets {
    /// producer id → (group, topic, partition) → the last offset it committed there.
    /// Invariant: no producer maps to an empty map.
    by_producer: BTreeMap<i64, BTreeMap<GroupPartition, PendingOffset>>,
    /// (group, topic, partition) → the producers with a pending offset for it.
    /// Invariant: exactly the keys of `by_producer`, turned around; no set is empty.
    by_partition: BTreeMap<GroupPartition, BTreeSet<i64>>,
}

impl PendingTxnOffsets {
    /// Records `producer_id`'s offsets of one commit (`id`) for `group`; a partition the
    /// producer already had pending takes the newer offset, as Kafka's map does.
    pub(super) fn add(
        &mut self,
        producer_id: i64,
        group: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
        id: CommitId,
    ) {
        if offsets.is_empty() {
            return;
        }
        let pending = self.by_producer.entry(producer_id).or_default();
        for (topic, partition, offset) in offsets {
            let key = (group.to_string(), topic, partition);
            self.by_partition
                .entry(key.clone())
                .or_default()
                .insert(producer_id);
            pending.insert(key, (offset, id));
        }
    }

    /// Takes out every pending offset of `producer_id` whose group `in_scope` selects (the
    /// groups of the `__consumer_offsets` partition a marker was written to), in id order.
    pub(super) fn take_producer(
        &mut self,
        producer_id: i64,
        in_scope: &dyn Fn(&str) -> bool,
    ) -> Vec<(GroupPartition, PendingOffset)> {
        let Some(pending) = self.by_producer.get_mut(&producer_id) else {
            return Vec::new();
        };
        let keys: Vec<GroupPartition> = pending
            .keys()
            .filter(|(group, _, _)| in_scope(group))
            .cloned()
            .collect();
        let mut taken = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(entry) = pending.remove(&key) {
                Self::unlink(&mut self.by_partition, &key, producer_id);
                taken.push((key, entry));
            }
        }
        if pending.is_empty() {
            self.by_producer.remove(&producer_id);
        }
        taken.sort_by_key(|(_, (_, id))| *id);
        taken
    }

    /// Drops `producer_id`'s offsets still pending from the commit `id` (its write failed).
    pub(super) fn fail(&mut self, producer_id: i64, id: CommitId) {
        let Some(pending) = self.by_producer.get_mut(&producer_id) else {
            return;
        };
        let keys: Vec<GroupPartition> = pending
            .iter()
            .filter(|(_, (_, from))| *from == id)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            pending.remove(&key);
            Self::unlink(&mut self.by_partition, &key, producer_id);
        }
        if pending.is_empty() {
            self.by_producer.remove(&producer_id);
        }
    }

    /// Drops every producer's pending offset for one partition (an OffsetDelete, an expiry
    /// or a replayed tombstone removes them, as in Kafka). True if there was one.
    pub(super) fn remove_partition(&mut self, group: &str, topic: &str, partition: i32) -> bool {
        let key = (group.to_string(), topic.to_string(), partition);
        let Some(producers) = self.by_partition.remove(&key) else {
            return false;
        };
        for producer_id in producers {
            if let Some(pending) = self.by_producer.get_mut(&producer_id) {
                pending.remove(&key);
                if pending.is_empty() {
                    self.by_producer.remove(&producer_id);
                }
            }
        }
        true
    }

    /// Drops every pending offset of `group` (DeleteGroups) and returns their partitions.
    pub(super) fn remove_group(&mut self, group: &str) -> Vec<(String, i32)> {
        let keys: Vec<GroupPartition> = self.group_range(group).cloned().collect();
        for (_, topic, partition) in &keys {
            self.remove_partition(group, topic, *partition);
        }
        keys.into_iter().map(|(_, t, p)| (t, p)).collect()
    }

    /// True if some producer has a pending offset for the partition.
    pub(super) fn contains(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.by_partition
            .contains_key(&(group.to_string(), topic.to_string(), partition))
    }

    /// True if `group` has a pending offset.
    pub(super) fn has_group(&self, group: &str) -> bool {
        self.group_range(group).next().is_some()
    }

    /// Groups with a pending offset, sorted.
    pub(super) fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self
            .by_partition
            .keys()
            .map(|(g, _, _)| g.clone())
            .collect();
        groups.dedup();
        groups
    }

    /// Every pending offset, for moving a replayed table into the live one.
    pub(super) fn into_entries(self) -> Vec<(i64, GroupPartition, PendingOffset)> {
        self.by_producer
            .into_iter()
            .flat_map(|(producer_id, pending)| {
                pending
                    .into_iter()
                    .map(move |(key, entry)| (producer_id, key, entry))
            })
            .collect()
    }

    fn group_range<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a GroupPartition> + 'a {
        self.by_partition
            .range((group.to_string(), String::new(), i32::MIN)..)
            .map(|(key, _)| key)
            .take_while(move |(g, _, _)| g == group)
    }

    fn unlink(
        by_partition: &mut BTreeMap<GroupPartition, BTreeSet<i64>>,
        key: &GroupPartition,
        producer_id: i64,
    ) {
        if let Some(producers) = by_partition.get_mut(key) {
            producers.remove(&producer_id);
            if producers.is_empty() {
                by_partition.remove(key);
            }
        }
    }

    /// Panics if a documented invariant does not hold (the whole structure: tests and the
    /// debug-only whole-table check).
    pub(super) fn check_invariants(&self) {
        let mut count = 0;
        for (producer_id, pending) in &self.by_producer {
            assert!(!pending.is_empty(), "no producer maps to an empty map");
            for key in pending.keys() {
                count += 1;
                assert!(
                    self.by_partition
                        .get(key)
                        .is_some_and(|p| p.contains(producer_id)),
                    "by_partition mirrors by_producer for {key:?}"
                );
            }
        }
        let mirrored: usize = self.by_partition.values().map(BTreeSet::len).sum();
        assert_eq!(mirrored, count, "by_partition holds nothing more");
        assert!(self.by_partition.values().all(|p| !p.is_empty()));
    }
}
