//! The record checks of a produce (`strom_log::validate::check_records`) on arbitrary records:
//! they must never panic, and a batch they accept, once its `maxTimestamp` is rewritten as
//! `Log::append` does, must be a valid stored batch whose records decode, number
//! `recordsCount`, carry offsets `0..n-1` in order, and whose largest timestamp is the stored
//! `maxTimestamp`; with bounds configured every timestamp is within them, on a compacted topic
//! every record has a key.
//!
//! Input: byte 0 picks the configuration (bit 0 compacted, bit 1 bounds, bit 2 LogAppendTime),
//! bytes 1..9 are the broker's clock, the rest is one batch. The fuzz target fixes the batch's
//! length, magic and CRC itself so that mutations reach the record checks instead of dying at
//! the CRC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_log::batch::{
    for_each_record_in, set_max_timestamp, validate_batch, BatchHeader, BATCH_HEADER_LEN,
    LOG_OVERHEAD,
};
use strom_log::compression::MAX_DECOMPRESSED_BYTES;
use strom_log::validate::{check_records, needs_inflation};
use strom_log::{AppendError, LogConfig};

const BEFORE_MS: i64 = 3_600_000;
const AFTER_MS: i64 = 60_000;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 + BATCH_HEADER_LEN {
        return;
    }
    let flags = data[0];
    let now_ms = i64::from_be_bytes(data[1..9].try_into().unwrap());
    let config = LogConfig {
        compact: flags & 1 != 0,
        timestamp_before_max_ms: if flags & 2 != 0 { BEFORE_MS } else { i64::MAX },
        timestamp_after_max_ms: if flags & 2 != 0 { AFTER_MS } else { i64::MAX },
        timestamp_type_log_append: flags & 4 != 0,
        ..LogConfig::default()
    };
    let mut batch = data[9..].to_vec();
    let length = (batch.len() - LOG_OVERHEAD) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[16] = 2;
    let crc = crc32c_of(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let Ok(header) = validate_batch(&batch, 0) else {
        return;
    };
    let dir = std::path::Path::new("fuzz-0");
    let checked = match check_records(&batch, &header, &config, now_ms, dir) {
        Ok(checked) => checked,
        Err(AppendError::InvalidRecords { records, .. }) => {
            // Every listed record exists, in ascending order, once; only a batch carrying the
            // LogAppendTime bit is refused without a list.
            assert!(!records.is_empty() || header.timestamp_type_log_append());
            assert!(records
                .windows(2)
                .all(|w| w[0].batch_index < w[1].batch_index));
            assert!(records
                .iter()
                .all(|r| r.batch_index >= 0 && r.batch_index < header.records_count));
            return;
        }
        Err(_) => return,
    };
    let decoded = header.compression() == 0 || needs_inflation(&header, &config);
    assert_eq!(checked.inflated, header.compression() != 0 && decoded);
    // What Log::append stores.
    if let Some(max) = checked.max_timestamp {
        if max != header.max_timestamp {
            set_max_timestamp(&mut batch, max);
        }
    }
    let stored = validate_batch(&batch, 0).expect("an accepted batch stays a valid batch");
    assert_eq!(stored.records_count, header.records_count);
    assert_eq!(
        (
            stored.base_offset,
            stored.last_offset_delta,
            stored.attributes
        ),
        (
            header.base_offset,
            header.last_offset_delta,
            header.attributes
        )
    );
    if !decoded {
        // A compressed batch kept as sent: only a plausible header gets here, or any header on
        // a LogAppendTime topic (whose maxTimestamp the broker overwrites with its clock).
        assert!(
            config.timestamp_type_log_append
                || (header.max_timestamp >= header.base_timestamp && header.max_timestamp != -1)
        );
        assert!(!config.compact);
        return;
    }
    check_stored(&batch, &stored, &config, now_ms, checked.max_timestamp);
});

fn check_stored(
    batch: &[u8],
    stored: &BatchHeader,
    config: &LogConfig,
    now_ms: i64,
    max_timestamp: Option<i64>,
) {
    let mut count = 0i64;
    let mut largest = -1i64;
    for_each_record_in(batch, stored, MAX_DECOMPRESSED_BYTES, |record| {
        assert_eq!(record.offset, stored.base_offset.wrapping_add(count));
        let timestamp = stored.base_timestamp.wrapping_add(record.timestamp_delta);
        largest = largest.max(timestamp);
        if config.compact {
            assert!(
                record.key.is_some(),
                "a compacted topic accepted a keyless record"
            );
        }
        if !config.timestamp_type_log_append
            && config.timestamp_before_max_ms != i64::MAX
            && timestamp != -1
        {
            assert!(timestamp >= now_ms.saturating_sub(BEFORE_MS));
            assert!(timestamp <= now_ms.saturating_add(AFTER_MS));
        }
        count += 1;
    })
    .expect("the records of an accepted batch decode");
    assert_eq!(count, i64::from(stored.records_count));
    if !config.timestamp_type_log_append {
        assert_eq!(max_timestamp, Some(largest));
        assert_eq!(
            stored.max_timestamp, largest,
            "stored max is the records' max"
        );
    } else {
        assert_eq!(max_timestamp, None);
    }
}

/// CRC-32C (Castagnoli), bitwise: the fuzz crate does not depend on `crc32c` itself.
fn crc32c_of(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
