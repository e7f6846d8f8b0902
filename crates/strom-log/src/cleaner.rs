//! Log compaction's record-level work: the map of each key's latest offset, and rewriting one
//! batch without the records compaction removes.
//!
//! A rewritten batch keeps everything of the original header that readers depend on — base
//! offset, `lastOffsetDelta` (so the next offset stays where it was), timestamps, producer id,
//! epoch and base sequence — and keeps each retained record's bytes as they were: offset and
//! timestamp deltas are relative to the unchanged base, so they stay right. Only the length, the
//! record count and the CRC change. The records of a compressed batch are written back
//! uncompressed (consumers accept any codec per batch; Kafka would recompress).

use std::collections::HashMap;

pub use crate::batch::RecordView;
use crate::batch::{for_each_record_in, seal_rewritten, BatchError, BatchHeader, BATCH_HEADER_LEN};
use crate::compression::MAX_DECOMPRESSED_BYTES;

/// Each key's latest offset over the part of the log being compacted.
#[derive(Debug, Default)]
pub struct OffsetMap {
    latest: HashMap<Vec<u8>, i64>,
    bytes: usize,
}

impl OffsetMap {
    /// Records the keys of one whole batch (`batch` starts at its header).
    pub fn add_batch(&mut self, header: &BatchHeader, batch: &[u8]) -> Result<(), BatchError> {
        if header.is_control() {
            return Ok(());
        }
        for_each_record_in(batch, header, MAX_DECOMPRESSED_BYTES, |record| {
            if let Some(key) = record.key {
                match self.latest.get_mut(key) {
                    Some(offset) => *offset = (*offset).max(record.offset),
                    None => {
                        self.bytes += key.len() + 48;
                        self.latest.insert(key.to_vec(), record.offset);
                    }
                }
            }
        })
    }

    /// The latest offset of `key`, if the map saw it.
    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    /// Approximate memory the map holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// True if no key was seen.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// What compaction does with one batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Filtered {
    /// Every record stays: copy the batch as it is.
    Unchanged,
    /// Some records stay (or none, but the batch is kept empty): these are its new bytes.
    Rewritten(Vec<u8>),
    /// No record stays and the batch goes.
    Removed,
}

/// Filters the records of one whole batch with `keep`. A batch none of whose records stay is
/// removed unless `keep_empty` (the last batch of a producer whose sequence numbers must survive),
/// in which case it stays with no records.
pub fn filter_batch(
    header: &BatchHeader,
    batch: &[u8],
    keep_empty: bool,
    mut keep: impl FnMut(&RecordView<'_>) -> bool,
) -> Result<Filtered, BatchError> {
    if header.is_control() {
        return Ok(Filtered::Unchanged);
    }
    // The header as it was, then the kept records straight after it.
    let mut out = batch[..BATCH_HEADER_LEN.min(batch.len())].to_vec();
    let mut kept_count = 0i32;
    let mut total = 0i32;
    for_each_record_in(batch, header, MAX_DECOMPRESSED_BYTES, |record| {
        total += 1;
        if keep(&record) {
            out.extend_from_slice(record.raw);
            kept_count += 1;
        }
    })?;
    if kept_count == total {
        return Ok(Filtered::Unchanged);
    }
    if kept_count == 0 && !keep_empty {
        return Ok(Filtered::Removed);
    }
    seal_rewritten(&mut out, kept_count);
    Ok(Filtered::Rewritten(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate_stored_batch as validate_batch;
    use crate::compression::test_encode::compress;
    use crate::records::{decode_records, encode_batch, KeyValue};

    fn batch(records: &[KeyValue<'_>], base_offset: i64) -> Vec<u8> {
        let mut b = encode_batch(records, 1_000);
        crate::batch::assign_offset(&mut b, base_offset, 0);
        b
    }

    /// The same batch with its records section compressed by `codec`.
    fn compressed(plain: &[u8], codec: u8) -> Vec<u8> {
        let mut out = plain[..BATCH_HEADER_LEN].to_vec();
        out.extend_from_slice(&compress(codec, &plain[BATCH_HEADER_LEN..]));
        let len = (out.len() - 12) as i32;
        out[8..12].copy_from_slice(&len.to_be_bytes());
        let attributes = i16::from(codec);
        out[21..23].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn the_map_keeps_each_keys_latest_offset() {
        let b1 = batch(&[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"1"))], 10);
        let b2 = batch(&[(Some(b"a"), None), (None, Some(b"x"))], 12);
        let mut map = OffsetMap::default();
        for b in [&b1, &b2] {
            map.add_batch(&BatchHeader::parse(b).unwrap(), b).unwrap();
        }
        assert_eq!(map.latest(b"a"), Some(12));
        assert_eq!(map.latest(b"b"), Some(11));
        assert_eq!(map.latest(b"c"), None);
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn a_rewritten_batch_keeps_offsets_timestamps_and_the_last_offset() {
        for codec in [0u8, 1, 2, 3, 4] {
            let plain = batch(
                &[
                    (Some(b"a"), Some(b"old")),
                    (Some(b"b"), Some(b"keep")),
                    (Some(b"a"), Some(b"new")),
                    (Some(b"c"), Some(b"gone")),
                ],
                100,
            );
            let original = if codec == 0 {
                plain.clone()
            } else {
                compressed(&plain, codec)
            };
            let header = BatchHeader::parse(&original).unwrap();
            let out = filter_batch(&header, &original, false, |r| {
                r.key != Some(b"c") && !(r.key == Some(b"a") && r.offset == 100)
            })
            .unwrap();
            let Filtered::Rewritten(out) = out else {
                panic!("codec {codec}: expected a rewrite, got {out:?}")
            };
            let new_header = validate_batch(&out, 0).expect("a valid batch");
            assert_eq!(new_header.base_offset, 100);
            assert_eq!(new_header.last_offset(), 103, "the last offset stays");
            assert_eq!(new_header.records_count, 2);
            assert_eq!(new_header.compression(), 0);
            let records = decode_records(&bytes::Bytes::from(out)).unwrap();
            let got: Vec<_> = records
                .iter()
                .map(|r| (r.offset, r.key.clone().unwrap(), r.value.clone().unwrap()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (101, "b".into(), "keep".into()),
                    (102, "a".into(), "new".into())
                ],
                "codec {codec}"
            );
            assert!(records.iter().all(|r| r.timestamp == 1_000));
        }
    }

    #[test]
    fn all_kept_is_unchanged_none_kept_is_removed_or_kept_empty() {
        let b = batch(&[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2"))], 0);
        let header = BatchHeader::parse(&b).unwrap();
        assert_eq!(
            filter_batch(&header, &b, false, |_| true).unwrap(),
            Filtered::Unchanged
        );
        assert_eq!(
            filter_batch(&header, &b, false, |_| false).unwrap(),
            Filtered::Removed
        );
        let Filtered::Rewritten(empty) = filter_batch(&header, &b, true, |_| false).unwrap() else {
            panic!("kept empty")
        };
        let h = validate_batch(&empty, 0).unwrap();
        assert_eq!((h.records_count, h.base_offset, h.last_offset()), (0, 0, 1));
        assert_eq!(empty.len(), BATCH_HEADER_LEN);
    }

    #[test]
    fn garbage_records_are_errors_not_panics() {
        let b = batch(&[(Some(b"key"), Some(b"value"))], 0);
        let header = BatchHeader::parse(&b).unwrap();
        for cut in BATCH_HEADER_LEN..b.len() {
            let mut map = OffsetMap::default();
            let _ = map.add_batch(&header, &b[..cut]);
            let _ = filter_batch(&header, &b[..cut], false, |_| false);
        }
        let mut lying = b.clone();
        lying[BATCH_HEADER_LEN] = 0x7f; // a record length far past the end
        assert!(filter_batch(&header, &lying, false, |_| true).is_err());
    }
}
