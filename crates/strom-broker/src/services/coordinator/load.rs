//! Loading the coordinator's state: replaying `__consumer_offsets` into groups and committed
//! offsets (the whole topic at a single node's start, one partition when a cluster broker
//! becomes its leader).
//!
//! Transactions (TxnOffsetCommit, `txn_offsets.rs`): an offset record in a transactional
//! batch is pending for the batch's producer until that producer's control marker follows in
//! the log; a COMMIT applies its pending offsets (each only over an offset written before
//! it), an ABORT drops them, and those without a marker at the end of the log stay pending
//! (the transaction coordinator sends the marker later). A non-transactional tombstone drops
//! the partition's pending offsets too, as in Kafka. Group records are never transactional.

use std::collections::HashMap;

use bytes::Bytes;
use strom_log::control::parse_marker;
use strom_log::records::decode_records;

use super::records::{self, OffsetValue, RecordKey};
use super::{GroupCoordinator, State, OFFSETS_TOPIC};
use crate::services::group::{CommittedOffset, Group, GroupSnapshot, GroupState, OffsetTable};
use crate::services::replica::partition::Partition;
use crate::services::replica::scan::for_each_batch;

impl GroupCoordinator {
    /// Rebuilds groups and offsets by replaying `__consumer_offsets` up to its high watermark.
    /// Called once at a single node's start; in cluster mode partitions are loaded when this
    /// broker becomes their leader (see `ownership.rs`).
    pub fn load(&self, now_ms: i64) {
        if self.clustered {
            return;
        }
        let Some(topic) = self.metadata.cluster().topics.get(OFFSETS_TOPIC).cloned() else {
            return;
        };
        let started = std::time::Instant::now();
        let mut state = self.state.lock().unwrap();
        let mut records_read = 0usize;
        for p in 0..topic.partitions {
            let Some(partition) = self.replicas.partition(OFFSETS_TOPIC, p) else {
                continue;
            };
            let replayed = Replayed::read(&partition, false);
            records_read += replayed.records;
            self.install(&mut state, replayed, now_ms);
        }
        tracing::info!(
            groups = state.groups.len(),
            records = records_read,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "group coordinator loaded __consumer_offsets"
        );
    }

    /// Adds the groups and offsets of one replayed partition to the coordinator's state
    /// (whose groups are those of other partitions: a group lives in one partition).
    pub(super) fn install(&self, state: &mut State, replayed: Replayed, now_ms: i64) {
        let mut offset_groups = replayed.offsets.groups();
        offset_groups.extend(replayed.offsets.txn_groups());
        // In log order, so that a pending transaction that commits later replaces only the
        // offsets written before it.
        state.offsets.absorb(replayed.offsets);
        for (group_id, snapshot) in replayed.snapshots {
            if let Some(snapshot) = snapshot {
                let group = Group::restore(group_id.clone(), self.config.clone(), snapshot, now_ms);
                if group.state() == GroupState::Empty {
                    state.empty_since.insert(group_id.clone(), now_ms);
                }
                state.groups.insert(group_id, group);
            }
        }
        for group_id in offset_groups {
            if !state.groups.contains_key(&group_id) {
                state.empty_since.entry(group_id).or_insert(now_ms);
            }
        }
    }
}

/// What replaying one `__consumer_offsets` partition gives: the last offset of each
/// (group, topic, partition), the transactional offsets still pending, and the last record of
/// each group (None: a tombstone).
#[derive(Default)]
pub(super) struct Replayed {
    offsets: OffsetTable,
    snapshots: HashMap<String, Option<GroupSnapshot>>,
    /// How many records were read.
    pub(super) records: usize,
}

impl Replayed {
    /// Replays `partition` from its start to its high watermark, or to its log end with
    /// `to_log_end` (a new leader's load, as Kafka's: everything in the leader's log is what
    /// the partition holds in its epoch).
    pub(super) fn read(partition: &Partition, to_log_end: bool) -> Replayed {
        let mut out = Replayed::default();
        for_each_record(partition, to_log_end, |item| {
            let (key, value, producer_id) = match item {
                Item::Marker {
                    producer_id,
                    commit,
                } => {
                    out.offsets.complete_txn(producer_id, commit, &|_| true);
                    return;
                }
                Item::Record {
                    key,
                    value,
                    producer_id,
                } => (key, value, producer_id),
            };
            out.records += 1;
            match RecordKey::decode(key) {
                Ok(RecordKey::Offset {
                    group,
                    topic,
                    partition,
                }) => match value {
                    None => {
                        out.offsets.delete(&group, &topic, partition);
                    }
                    Some(value) => match OffsetValue::decode(value) {
                        Ok(v) => match producer_id {
                            Some(producer_id) => {
                                let offsets = vec![(topic, partition, committed(&v))];
                                out.offsets.stage_txn(&group, producer_id, offsets);
                            }
                            None => out.offsets.commit(&group, &topic, partition, committed(&v)),
                        },
                        Err(e) => {
                            tracing::warn!(%group, error = %e, "skipping an offset record")
                        }
                    },
                },
                Ok(RecordKey::Group { group }) => {
                    let snapshot = value.and_then(|v| match records::decode_group(v) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            tracing::warn!(%group, error = %e, "skipping a group record");
                            None
                        }
                    });
                    out.snapshots.insert(group, snapshot);
                }
                Err(e) => tracing::warn!(error = %e, "skipping a record of __consumer_offsets"),
            }
        });
        out
    }

    /// How many groups the replay found (with members or offsets).
    pub(super) fn groups(&self) -> usize {
        let mut ids: Vec<&String> = self.snapshots.keys().collect();
        let with_offsets = self.offsets.groups();
        ids.extend(with_offsets.iter());
        ids.sort();
        ids.dedup();
        ids.len()
    }
}

fn committed(v: &OffsetValue) -> CommittedOffset {
    CommittedOffset {
        offset: v.offset,
        leader_epoch: v.leader_epoch,
        metadata: Some(v.metadata.clone()),
        commit_timestamp_ms: v.commit_timestamp_ms,
        expire_timestamp_ms: v.expire_timestamp_ms,
    }
}

/// What the replay meets in the log.
enum Item {
    /// A record with a key; `producer_id` is set when its batch is transactional.
    Record {
        key: Bytes,
        value: Option<Bytes>,
        producer_id: Option<i64>,
    },
    /// A transaction marker (a control batch's COMMIT or ABORT).
    Marker { producer_id: i64, commit: bool },
}

/// Calls `f` for every record with a key and every transaction marker of a partition, in log
/// order, from its start to its high watermark (or its log end with `to_log_end`).
fn for_each_record(partition: &Partition, to_log_end: bool, mut f: impl FnMut(Item)) {
    for_each_batch(partition, to_log_end, |header, batch| {
        if header.is_control() {
            // Other control records (none in this topic today) are skipped.
            if let Some(marker) = parse_marker(header, &batch) {
                f(Item::Marker {
                    producer_id: marker.producer_id,
                    commit: marker.commit,
                });
            }
            return;
        }
        let producer_id = header.is_transactional().then_some(header.producer_id);
        match decode_records(&batch) {
            Ok(records) => {
                for r in records {
                    if let Some(key) = r.key {
                        f(Item::Record {
                            key,
                            value: r.value,
                            producer_id,
                        });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "skipping an undecodable batch of __consumer_offsets")
            }
        }
    });
}
