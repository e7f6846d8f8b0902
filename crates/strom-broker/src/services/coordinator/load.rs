//! Loading the coordinator's state at startup: replaying `__consumer_offsets` into groups and
//! committed offsets.

use std::collections::HashMap;

use bytes::Bytes;
use strom_log::records::decode_records;
use strom_log::BatchHeader;

use super::records::{self, OffsetValue, RecordKey};
use super::{GroupCoordinator, OFFSETS_TOPIC};
use crate::services::group::{CommittedOffset, Group, GroupState};

impl GroupCoordinator {
    /// Rebuilds groups and offsets by replaying `__consumer_offsets`. Called once at startup.
    pub fn load(&self, now_ms: i64) {
        let Some(topic) = self.metadata.cluster().topics.get(OFFSETS_TOPIC).cloned() else {
            return;
        };
        let started = std::time::Instant::now();
        let mut snapshots: HashMap<String, Option<crate::services::group::GroupSnapshot>> =
            HashMap::new();
        let mut state = self.state.lock().unwrap();
        let mut records_read = 0usize;
        for p in 0..topic.partitions {
            let Some(partition) = self.replicas.partition(OFFSETS_TOPIC, p) else {
                continue;
            };
            for_each_record(&partition, |key, value| {
                records_read += 1;
                match RecordKey::decode(key) {
                    Ok(RecordKey::Offset {
                        group,
                        topic,
                        partition,
                    }) => match value {
                        None => {
                            state.offsets.delete(&group, &topic, partition);
                        }
                        Some(value) => match OffsetValue::decode(value) {
                            Ok(v) => state
                                .offsets
                                .commit(&group, &topic, partition, committed(&v)),
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
                        snapshots.insert(group, snapshot);
                    }
                    Err(e) => tracing::warn!(error = %e, "skipping a record of __consumer_offsets"),
                }
            });
        }
        for (group_id, snapshot) in snapshots {
            if let Some(snapshot) = snapshot {
                let group = Group::restore(group_id.clone(), self.config.clone(), snapshot, now_ms);
                if group.state() == GroupState::Empty {
                    state.empty_since.insert(group_id.clone(), now_ms);
                }
                state.groups.insert(group_id, group);
            }
        }
        for group_id in state.offsets.groups() {
            if !state.groups.contains_key(&group_id) {
                state.empty_since.entry(group_id).or_insert(now_ms);
            }
        }
        tracing::info!(
            groups = state.groups.len(),
            records = records_read,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "group coordinator loaded __consumer_offsets"
        );
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

/// Calls `f(key, value)` for every record of a partition from its start to its high watermark.
fn for_each_record(
    partition: &crate::services::replica::partition::Partition,
    mut f: impl FnMut(Bytes, Option<Bytes>),
) {
    let (high_watermark, mut offset, _) = partition.offsets();
    while offset < high_watermark {
        let info = match partition.read(offset, 1 << 20, true) {
            Ok(info) => info,
            Err(e) => {
                tracing::error!(partition = %partition.topic_partition, error = ?e, "replaying __consumer_offsets failed");
                return;
            }
        };
        let Some(slice) = info.slice else { return };
        let bytes = match slice.read_to_bytes() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "reading __consumer_offsets failed");
                return;
            }
        };
        let mut at = 0usize;
        let mut progressed = false;
        while bytes.len() - at >= strom_log::BATCH_HEADER_LEN {
            let Ok(header) = BatchHeader::parse(&bytes[at..]) else {
                break;
            };
            let len = header.total_len();
            if at + len > bytes.len() {
                break;
            }
            let batch = bytes.slice(at..at + len);
            at += len;
            progressed = true;
            offset = header.last_offset() + 1;
            match decode_records(&batch) {
                Ok(records) => {
                    for r in records {
                        if let Some(key) = r.key {
                            f(key, r.value);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an undecodable batch of __consumer_offsets")
                }
            }
        }
        if !progressed {
            return;
        }
    }
}
