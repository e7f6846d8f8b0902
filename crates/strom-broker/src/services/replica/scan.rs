//! Reading a whole partition batch by batch, as the coordinators do when they load their
//! internal topics (`__consumer_offsets` in `coordinator/load.rs`, `__transaction_state` in
//! `txn/`).

use bytes::Bytes;
use strom_log::records::{decode_records, Record};
use strom_log::BatchHeader;

use super::partition::Partition;

/// Calls `f(header, batch)` for every batch of `partition` from its start to its high
/// watermark (or its log end with `to_log_end`, a new leader's load: everything in the
/// leader's log is what the partition holds in its epoch). Stops at the first read error,
/// which it logs.
pub fn for_each_batch(
    partition: &Partition,
    to_log_end: bool,
    mut f: impl FnMut(&BatchHeader, Bytes),
) {
    let (high_watermark, mut offset, log_end) = partition.offsets();
    let end = if to_log_end { log_end } else { high_watermark };
    while offset < end {
        let read = if to_log_end {
            partition.read_for_follower(offset, 1 << 20, true)
        } else {
            partition.read(offset, 1 << 20, true)
        };
        let info = match read {
            Ok(info) => info,
            Err(e) => {
                tracing::error!(partition = %partition.topic_partition, error = ?e, "reading a partition to load it failed");
                return;
            }
        };
        let Some(slice) = info.slice else { return };
        let bytes = match slice.read_to_bytes() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(partition = %partition.topic_partition, error = %e, "reading a partition to load it failed");
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
            f(&header, batch);
        }
        if !progressed {
            return;
        }
    }
}

/// Calls `f(record)` for every record of every data batch (control batches skipped) that
/// [`for_each_batch`] reads; a batch that does not decode is logged and skipped.
pub fn for_each_record(partition: &Partition, to_log_end: bool, mut f: impl FnMut(Record)) {
    for_each_batch(partition, to_log_end, |header, batch| {
        if header.is_control() {
            return;
        }
        match decode_records(&batch) {
            Ok(records) => records.into_iter().for_each(&mut f),
            Err(e) => {
                tracing::warn!(partition = %partition.topic_partition, error = %e, "skipping an undecodable batch")
            }
        }
    });
}
