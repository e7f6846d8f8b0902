//! Arbitrary bytes as a produce request's `records` blob (or a stretch of a segment file):
//! batch validation, header parsing and the record decoder must never panic, and whatever
//! `validate_batches` accepts must really be the batches it claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_log::batch::{
    assign_offset, record_offsets_and_timestamps, set_log_append_time, validate_batch,
    validate_batches, validate_stored_batch, BatchHeader, BATCH_HEADER_LEN, CURRENT_MAGIC,
    LOG_OVERHEAD,
};
use strom_log::cleaner::{filter_batch, Filtered, OffsetMap};

/// Compaction reads the records of stored batches; a producer's batch is stored with its CRC
/// checked but its records undecoded, so the cleaner's decoder gets arbitrary records. A batch
/// it rewrites must stay a valid stored batch with the same offsets and no more records.
fn compact(header: &BatchHeader, batch: &[u8], checked: bool) {
    let mut map = OffsetMap::default();
    let _ = map.add_batch(header, batch);
    let keep = |r: &strom_log::cleaner::RecordView<'_>| r.offset % 2 == 0 && r.key.is_some();
    if let Ok(Filtered::Rewritten(out)) = filter_batch(header, batch, true, keep) {
        if checked {
            let after = validate_stored_batch(&out, 0).expect("a compacted batch stays valid");
            assert_eq!(after.base_offset, header.base_offset);
            assert_eq!(after.last_offset(), header.last_offset());
            assert!(after.records_count <= header.records_count);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // `parse` reads any 61 bytes, checking nothing else.
    match BatchHeader::parse(data) {
        Ok(header) => {
            assert!(data.len() >= BATCH_HEADER_LEN);
            compact(&header, data, false);
            // Accessors the broker calls on headers before validation must be total.
            let _ = (
                header.total_len(),
                header.compression(),
                header.is_control(),
            );
            let _ = (
                header.is_transactional(),
                header.timestamp_type_log_append(),
            );
        }
        Err(_) => assert!(data.len() < BATCH_HEADER_LEN),
    }
    // Timestamp lookups decode records of stored batches, which a torn write can leave as any
    // bytes at all, so this decoder gets raw input too.
    let _ = record_offsets_and_timestamps(data);

    let Ok(headers) = validate_batches(data) else {
        return;
    };
    assert_eq!(headers.is_empty(), data.is_empty());
    let mut position = 0;
    for header in &headers {
        let total = header.total_len();
        assert_eq!(total, header.batch_length as usize + LOG_OVERHEAD);
        assert!(
            total >= BATCH_HEADER_LEN,
            "accepted a batch shorter than its header"
        );
        assert!(
            position + total <= data.len(),
            "accepted a batch past the end"
        );
        let batch = &data[position..position + total];

        // Each batch stands on its own: alone it validates to the same header.
        assert_eq!(validate_batch(batch, 0), Ok(*header));
        assert_eq!(BatchHeader::parse(batch), Ok(*header));
        assert_eq!(header.magic, CURRENT_MAGIC);
        assert!(header.last_offset_delta >= 0);
        assert_eq!(
            i64::from(header.records_count),
            i64::from(header.last_offset_delta) + 1
        );
        // Defined for validated headers only (it needs last_offset_delta >= 0); the producer
        // state machine calls it on every accepted idempotent batch.
        let _ = header.last_sequence();
        compact(header, batch, true);
        if let Ok(records) = record_offsets_and_timestamps(batch) {
            assert_eq!(records.len(), header.records_count as usize);
        }

        // The broker's two in-place rewrites must leave a valid batch, changing only what
        // they are meant to change.
        let mut rewritten = batch.to_vec();
        assign_offset(&mut rewritten, 1 << 40, 7);
        set_log_append_time(&mut rewritten, 1_700_000_000_000);
        let after = validate_batch(&rewritten, 0).expect("a rewritten batch must stay valid");
        assert_eq!(
            (after.base_offset, after.partition_leader_epoch),
            (1 << 40, 7)
        );
        assert!(after.timestamp_type_log_append());
        assert_eq!(after.max_timestamp, 1_700_000_000_000);
        assert_eq!(
            (
                after.records_count,
                after.last_offset_delta,
                after.batch_length
            ),
            (
                header.records_count,
                header.last_offset_delta,
                header.batch_length
            )
        );
        assert_eq!(after.attributes & !0x08, header.attributes & !0x08);

        position += total;
    }
    // The batches tile the input exactly: nothing skipped, nothing trailing.
    assert_eq!(position, data.len());
});
