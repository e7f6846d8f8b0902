//! Committed offsets of every group this coordinator owns, as a plain in-memory table:
//! what OffsetCommit writes, what OffsetFetch reads, and Kafka's offset expiry
//! (`offsets.retention.minutes`, KIP-211).
//!
//! Commits are applied in the order the broker received them, whatever order their writes
//! to `__consumer_offsets` complete in. The shell [`OffsetTable::stage`]s a commit when the
//! request arrives (in receive order, which is also the order of its records in the log) and
//! gets a [`CommitId`]; once the write is durable, or has failed, it calls
//! [`OffsetTable::complete`]. A durable commit replaces a partition's offset only if it was
//! received after the commit the table holds (Kafka's `pendingOffsetCommits` and
//! `olderThan` on the appended offset), so a slow write of commit 13 that completes after
//! the write of commit 50 cannot take the offset back to 13, and a failed write leaves the
//! last acknowledged commit in place. Deleting an offset (OffsetDelete, DeleteGroups)
//! cancels the commits staged before it, as Kafka's `removeOffsets` drops pending ones. An
//! OffsetFetch waits for the group's commits staged before it ([`OffsetTable::has_staged`]),
//! so it reads its own connection's earlier commits, as in Kafka.
//!
//! Transactional commits (TxnOffsetCommit) are staged per producer with
//! [`OffsetTable::stage_txn`] and stay invisible until [`OffsetTable::complete_txn`] applies
//! or drops them at the transaction's marker (see [`super::txn_offsets`]); a delete or an
//! expiry treats them as commits in flight.
//!
//! It does not validate commits (that is [`super::Group::validate_commit`]) or encode
//! `__consumer_offsets` records.

use std::collections::{BTreeMap, BTreeSet};

use super::commit::{CommitId, CommittedOffset};
use super::txn_offsets::PendingTxnOffsets;

/// What [`OffsetTable::complete_txn`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnCompletion {
    /// How many pending offsets became committed offsets.
    pub applied: usize,
    /// The groups that had pending offsets of the producer, sorted.
    pub groups: Vec<String>,
}

/// An offset in the table with the commit that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Applied {
    offset: CommittedOffset,
    id: CommitId,
}

/// A commit received but not yet durable.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Staged {
    group: String,
    offsets: Vec<(String, i32, CommittedOffset)>,
}

/// group → (topic, partition) → committed offset, and the commits in flight.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetTable {
    /// What OffsetFetch answers: per partition, the durable commit received last.
    /// Invariant: no group maps to an empty table (a group with no offsets is absent).
    groups: BTreeMap<String, BTreeMap<(String, i32), Applied>>,
    /// Every staged commit not yet completed.
    staged: BTreeMap<CommitId, Staged>,
    /// group → the ids of its staged commits, so that an OffsetFetch's check of its group
    /// costs O(log n), not a scan of every group's commits in flight.
    /// Invariant: exactly the ids in `staged`, each under its group; no set is empty.
    staged_by_group: BTreeMap<String, BTreeSet<CommitId>>,
    /// (group, topic, partition) → the staged commits that may still apply to it.
    /// Invariant: every id here is in `staged` and names that partition; no set is empty.
    pending: BTreeMap<(String, String, i32), BTreeSet<CommitId>>,
    /// The last id handed out.
    last_id: u64,
    /// Offsets committed inside transactions not ended yet, per producer.
    txn: PendingTxnOffsets,
}

impl OffsetTable {
    /// An empty table.
    pub fn new() -> OffsetTable {
        OffsetTable::default()
    }

    /// Records `offset` for the partition at once, as the newest commit (replaying the log at
    /// startup, in log order). Commits staged earlier no longer apply to this partition.
    ///
    /// No staging: this is one id and one insertion, so replaying millions of records at
    /// startup costs O(records · log(offsets)). A commit staged earlier stays pending, but
    /// this newer id wins over it when it completes, as if it had been received first.
    pub fn commit(&mut self, group: &str, topic: &str, partition: i32, offset: CommittedOffset) {
        self.last_id += 1;
        let id = CommitId(self.last_id);
        self.groups
            .entry(group.to_string())
            .or_default()
            .insert((topic.to_string(), partition), Applied { offset, id });
    }

    /// Stages a commit received now; it takes effect when [`OffsetTable::complete`] reports
    /// it durable. A partition named twice keeps its last offset, as Kafka's map does.
    pub fn stage(&mut self, group: &str, offsets: Vec<(String, i32, CommittedOffset)>) -> CommitId {
        self.last_id += 1;
        let id = CommitId(self.last_id);
        let mut unique: BTreeMap<(String, i32), CommittedOffset> = BTreeMap::new();
        for (topic, partition, offset) in offsets {
            unique.insert((topic, partition), offset);
        }
        let offsets: Vec<(String, i32, CommittedOffset)> = unique
            .into_iter()
            .map(|((topic, partition), offset)| (topic, partition, offset))
            .collect();
        for (topic, partition, _) in &offsets {
            self.pending
                .entry((group.to_string(), topic.clone(), *partition))
                .or_default()
                .insert(id);
        }
        self.staged_by_group
            .entry(group.to_string())
            .or_default()
            .insert(id);
        self.staged.insert(
            id,
            Staged {
                group: group.to_string(),
                offsets,
            },
        );
        id
    }

    /// Ends a staged commit. When `durable`, each of its partitions takes its offset unless
    /// the table already holds a commit received later, or the partition's offset was
    /// deleted after this commit was staged; when not, it is dropped and the table keeps what
    /// it had. Completing an id twice, or one never staged, is a bug in the shell.
    pub fn complete(&mut self, id: CommitId, durable: bool) {
        let staged = self
            .staged
            .remove(&id)
            .expect("each staged commit is completed once");
        if cfg!(debug_assertions) {
            self.check_partitions(id, &staged);
        }
        if let Some(ids) = self.staged_by_group.get_mut(&staged.group) {
            ids.remove(&id);
            if ids.is_empty() {
                self.staged_by_group.remove(&staged.group);
            }
        }
        for (topic, partition, offset) in staged.offsets {
            let key = (staged.group.clone(), topic, partition);
            let Some(ids) = self.pending.get_mut(&key) else {
                continue;
            };
            if !ids.remove(&id) {
                continue;
            }
            if ids.is_empty() {
                self.pending.remove(&key);
            }
            if !durable {
                continue;
            }
            let (group, topic, partition) = key;
            let offsets = self.groups.entry(group).or_default();
            let newer_applied = offsets
                .get(&(topic.clone(), partition))
                .is_some_and(|applied| applied.id > id);
            if !newer_applied {
                offsets.insert((topic, partition), Applied { offset, id });
            }
        }
    }

    /// The id of the last commit staged so far: an OffsetFetch received now must reflect every
    /// commit up to it (see [`OffsetTable::has_staged`]).
    pub fn last_staged(&self) -> CommitId {
        CommitId(self.last_id)
    }

    /// True while a commit of `group` staged at or before `up_to` has not completed. An
    /// OffsetFetch waits until this is false, so it never answers an offset older than a
    /// commit received before it (Kafka gets the same from reading one request of a
    /// connection at a time).
    pub fn has_staged(&self, group: &str, up_to: CommitId) -> bool {
        self.staged_by_group
            .get(group)
            .and_then(|ids| ids.first())
            .is_some_and(|first| *first <= up_to)
    }

    /// True while a commit staged for the partition has not completed and may still apply
    /// to it.
    pub fn is_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending
            .contains_key(&(group.to_string(), topic.to_string(), partition))
    }

    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.groups
            .get(group)?
            .get(&(topic.to_string(), partition))
            .map(|applied| &applied.offset)
    }

    /// Every committed offset of `group`, sorted by topic then partition.
    pub fn group_offsets(&self, group: &str) -> Vec<((String, i32), CommittedOffset)> {
        self.groups
            .get(group)
            .map(|offsets| {
                offsets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.offset.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes one partition's offset (OffsetDelete, deleted topics) and cancels the commits
    /// staged for it so far. True if the partition needs a tombstone: it had an offset, or a
    /// commit in flight, whose record is already in the log (staging appends it) and would
    /// otherwise come back when the log is replayed.
    pub fn delete(&mut self, group: &str, topic: &str, partition: i32) -> bool {
        let cancelled = self
            .pending
            .remove(&(group.to_string(), topic.to_string(), partition))
            .is_some();
        let cancelled = self.txn.remove_partition(group, topic, partition) || cancelled;
        let Some(offsets) = self.groups.get_mut(group) else {
            return cancelled;
        };
        let removed = offsets.remove(&(topic.to_string(), partition)).is_some();
        if offsets.is_empty() {
            self.groups.remove(group);
        }
        removed || cancelled
    }

    /// Removes every offset of `group` (DeleteGroups) and cancels its staged commits. Returns
    /// the partitions that need a tombstone, sorted: those with an offset and those with a
    /// commit in flight (see [`OffsetTable::delete`]).
    pub fn delete_group(&mut self, group: &str) -> Vec<(String, i32)> {
        let mut partitions: BTreeSet<(String, i32)> = self
            .groups
            .remove(group)
            .map(|offsets| offsets.into_keys().collect())
            .unwrap_or_default();
        let pending: Vec<(String, String, i32)> = self
            .pending_range(group)
            .map(|(key, _)| key.clone())
            .collect();
        for key in pending {
            self.pending.remove(&key);
            let (_, topic, partition) = key;
            partitions.insert((topic, partition));
        }
        partitions.extend(self.txn.remove_group(group));
        partitions.into_iter().collect()
    }

    /// True if `group` has an offset, a commit in flight or a pending transactional offset (a
    /// group known to the offsets, whether or not it has members).
    pub fn has_group(&self, group: &str) -> bool {
        self.groups.contains_key(group)
            || self.pending_range(group).next().is_some()
            || self.txn.has_group(group)
    }

    /// The pending entries of one group.
    fn pending_range<'a>(
        &'a self,
        group: &'a str,
    ) -> impl Iterator<Item = (&'a (String, String, i32), &'a BTreeSet<CommitId>)> + 'a {
        self.pending
            .range((group.to_string(), String::new(), i32::MIN)..)
            .take_while(move |((g, _, _), _)| g == group)
    }

    /// Groups with at least one committed offset, sorted.
    pub fn groups(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// Stages offsets `producer_id` committed for `group` inside its open transaction (a
    /// TxnOffsetCommit, or its record met replaying the log); they stay invisible until
    /// [`OffsetTable::complete_txn`]. Returns the commit's id, which places it in log order.
    pub fn stage_txn(
        &mut self,
        group: &str,
        producer_id: i64,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> CommitId {
        self.last_id += 1;
        let id = CommitId(self.last_id);
        self.txn.add(producer_id, group, offsets, id);
        id
    }

    /// The write of transactional commit `id` failed: its offsets still pending are dropped
    /// (Kafka's `failPendingTxnOffsetCommit`).
    pub fn fail_txn(&mut self, producer_id: i64, id: CommitId) {
        self.txn.fail(producer_id, id);
    }

    /// `producer_id`'s transaction ended with a marker in the `__consumer_offsets` partition
    /// holding the groups `in_scope` selects. COMMIT applies its pending offsets of those
    /// groups, each only over an offset written before it (Kafka's
    /// `completePendingTxnOffsetCommit`, by log order); ABORT drops them.
    pub fn complete_txn(
        &mut self,
        producer_id: i64,
        commit: bool,
        in_scope: &dyn Fn(&str) -> bool,
    ) -> TxnCompletion {
        let taken = self.txn.take_producer(producer_id, in_scope);
        let mut groups: Vec<String> = taken.iter().map(|((g, _, _), _)| g.clone()).collect();
        groups.sort();
        groups.dedup();
        if !commit {
            return TxnCompletion { applied: 0, groups };
        }
        let mut applied = 0;
        for ((group, topic, partition), (offset, id)) in taken {
            let offsets = self.groups.entry(group).or_default();
            let newer_applied = offsets
                .get(&(topic.clone(), partition))
                .is_some_and(|current| current.id > id);
            if !newer_applied {
                offsets.insert((topic, partition), Applied { offset, id });
                applied += 1;
            }
        }
        TxnCompletion { applied, groups }
    }

    /// True if some producer has a transactional offset pending for the partition (a
    /// `require_stable` OffsetFetch answers `UNSTABLE_OFFSET_COMMIT` for it).
    pub fn has_pending_txn(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.txn.contains(group, topic, partition)
    }

    /// Groups with a pending transactional offset, sorted.
    pub fn txn_groups(&self) -> Vec<String> {
        self.txn.groups()
    }

    /// Moves the offsets of `replayed` (a table a partition's replay built: offsets and
    /// pending transactional offsets, no commit in flight) into this one, keeping their
    /// order: each gets a fresh id in the order of its id there, so a transaction that
    /// commits later still replaces only offsets written before its record.
    pub fn absorb(&mut self, replayed: OffsetTable) {
        debug_assert!(
            replayed.staged.is_empty(),
            "a replayed table stages nothing"
        );
        enum Entry {
            Applied(String, String, i32, CommittedOffset),
            Pending(i64, String, String, i32, CommittedOffset),
        }
        let mut entries: Vec<(CommitId, Entry)> = Vec::new();
        for (group, offsets) in replayed.groups {
            for ((topic, partition), applied) in offsets {
                let entry = Entry::Applied(group.clone(), topic, partition, applied.offset);
                entries.push((applied.id, entry));
            }
        }
        for (producer_id, (group, topic, partition), (offset, id)) in replayed.txn.into_entries() {
            entries.push((
                id,
                Entry::Pending(producer_id, group, topic, partition, offset),
            ));
        }
        entries.sort_by_key(|(id, _)| *id);
        for (_, entry) in entries {
            match entry {
                Entry::Applied(group, topic, partition, offset) => {
                    self.commit(&group, &topic, partition, offset);
                }
                Entry::Pending(producer_id, group, topic, partition, offset) => {
                    self.stage_txn(&group, producer_id, vec![(topic, partition, offset)]);
                }
            }
        }
    }

    /// Panics if a documented invariant of the partitions a completing commit names does
    /// not hold: no pending set of them is empty, and every id in one is staged (or is the
    /// completing commit's `id`, just taken out of `staged`). This is
    /// O(k log n) for a commit of k partitions, so `complete` can afford it on every call;
    /// it runs in debug builds only (tests and the simulations), as the full check does.
    fn check_partitions(&self, id: CommitId, completing: &Staged) {
        for (topic, partition, _) in &completing.offsets {
            let key = (completing.group.clone(), topic.clone(), *partition);
            if let Some(ids) = self.pending.get(&key) {
                assert!(!ids.is_empty(), "a pending set is never empty");
                assert!(
                    ids.iter().all(|i| *i == id || self.staged.contains_key(i)),
                    "pending ids of {key:?} are staged"
                );
            }
        }
    }

    /// Panics if a documented invariant does not hold. This walks the whole table
    /// (O(groups + staged partitions)), so nothing calls it on the request path: the seeded
    /// simulation calls it after every event, and the rare whole-table operations (expiry)
    /// call it in debug builds only.
    pub(crate) fn check_invariants(&self) {
        assert!(self.groups.values().all(|offsets| !offsets.is_empty()));
        self.txn.check_invariants();
        let by_group: usize = self.staged_by_group.values().map(BTreeSet::len).sum();
        assert_eq!(
            by_group,
            self.staged.len(),
            "staged_by_group holds every staged id"
        );
        for (group, ids) in &self.staged_by_group {
            assert!(!ids.is_empty(), "a staged_by_group set is never empty");
            assert!(
                ids.iter()
                    .all(|id| self.staged.get(id).is_some_and(|s| s.group == *group)),
                "staged_by_group files each id under its group"
            );
        }
        for ((group, topic, partition), ids) in &self.pending {
            assert!(!ids.is_empty(), "a pending set is never empty");
            for id in ids {
                let staged = self.staged.get(id).expect("pending ids are staged");
                assert!(
                    staged.group == *group
                        && staged
                            .offsets
                            .iter()
                            .any(|(t, p, _)| t == topic && p == partition),
                    "a pending id names its partition"
                );
            }
        }
    }

    /// Kafka's offset expiry. Only groups without members expire offsets:
    /// `is_empty_since(group)` says since when a group has had none (`None` while it has
    /// members; `Some(i64::MIN)` for a group that never had any, such as one used only for
    /// manual commits). An offset expires when `now_ms` has passed its explicit expire
    /// timestamp, or, without one, when `retention_ms` has passed since the later of its
    /// commit and the moment the group became empty. (Kafka measures from the moment the
    /// group became empty alone; taking the later of the two never expires an offset
    /// committed less than `retention_ms` ago.) A partition with a commit in flight or a
    /// pending transactional offset does not expire (Kafka skips both). Returns the removed (group, topic,
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
            let pending = &self.pending;
            let txn = &self.txn;
            offsets.retain(|(topic, partition), applied| {
                if pending.contains_key(&(group.clone(), topic.clone(), *partition))
                    || txn.contains(group, topic, *partition)
                {
                    return true;
                }
                let offset = &applied.offset;
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
        if cfg!(debug_assertions) {
            self.check_invariants();
        }
        expired
    }
}
