//! Log operations other than plain append/read: validation errors, LogAppendTime, timestamp
//! lookups, retention, rolling by time, flushing.

use bytes::Bytes;

use super::{batch, parse_batches, read_all, small_config};
use crate::batch::test_builder::TestBatch;
use crate::{AppendError, Log, LogConfig, ReadError};

fn open(dir: &tempfile::TempDir, config: LogConfig) -> Log {
    Log::open(&dir.path().join("t-0"), config, 0, 0, true, 0).unwrap()
}

#[test]
fn refused_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        &dir,
        LogConfig {
            max_message_bytes: 500,
            ..small_config()
        },
    );
    let two = [batch(1, 1, 0, 0), batch(1, 1, 0, 0)].concat();
    assert!(matches!(
        log.append(Bytes::from(two), 0, 0),
        Err(AppendError::InvalidRecord(_))
    ));
    assert!(matches!(
        log.append(Bytes::new(), 0, 0),
        Err(AppendError::InvalidRecord(_))
    ));
    let mut control = TestBatch::new(0, vec![vec![0; 4]]);
    control.attributes = 0x20;
    assert!(matches!(
        log.append(Bytes::from(control.encode()), 0, 0),
        Err(AppendError::InvalidRecord(_))
    ));
    assert!(matches!(
        log.append(batch(1, 600, 0, 0), 0, 0),
        Err(AppendError::MessageTooLarge { max: 500, .. })
    ));
    let mut corrupt = batch(1, 10, 0, 0).to_vec();
    corrupt[30] ^= 1;
    assert!(matches!(
        log.append(Bytes::from(corrupt), 0, 0),
        Err(AppendError::CorruptMessage(_))
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn offsets_epoch_and_log_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        &dir,
        LogConfig {
            timestamp_type_log_append: true,
            ..small_config()
        },
    );
    log.append(batch(2, 10, 1, 100), 7, 5_000).unwrap();
    let info = log.append(batch(3, 10, 2, 100), 7, 6_000).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.log_append_time_ms),
        (2, 4, 6_000)
    );
    let batches = read_all(&log);
    assert_eq!(batches[1].0.partition_leader_epoch, 7);
    assert!(batches[1].0.timestamp_type_log_append());
    assert_eq!(batches[1].0.max_timestamp, 6_000);
    assert_eq!(log.offset_for_timestamp(5_500).unwrap(), Some((2, 6_000)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((2, 6_000)));
}

#[test]
fn read_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, small_config());
    for i in 0..5 {
        log.append(batch(2, 10, i, 0), 0, 0).unwrap();
    }
    assert!(matches!(
        log.read(11, 100, 10, true),
        Err(ReadError::OffsetOutOfRange { requested: 11, .. })
    ));
    assert!(log.read(10, 100, 10, true).unwrap().slice.is_none());
    // Without min_one_message, a max_bytes below one batch gives a partial batch, as Kafka.
    let partial = log.read(3, 1, 10, false).unwrap().slice.unwrap();
    assert_eq!(partial.len, 1);
    let one = log.read(3, 1, 10, true).unwrap().slice.unwrap();
    let len = one.len;
    // The high watermark bounds the read at batch granularity.
    let bounded = log.read(2, 10_000, 6, true).unwrap().slice.unwrap();
    assert_eq!(bounded.len, 2 * len);
    assert!(log.read(2, 10_000, 2, true).unwrap().slice.is_none());
    // A short max_bytes cuts mid-batch.
    let cut = log.read(0, len + 5, 10, false).unwrap().slice.unwrap();
    assert_eq!(cut.len, len + 5);
    log.set_high_watermark(4);
    assert_eq!(log.delete_records_before(3).unwrap(), 3);
    assert!(matches!(
        log.read(2, 100, 10, true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    assert!(log.delete_records_before(5).is_err());
}

#[test]
fn timestamp_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, small_config());
    // Timestamps 1000.., 3 records per batch, several segments.
    for i in 0..30 {
        log.append(batch(3, 30, i as u8, 1_000 + 10 * i), 0, 0)
            .unwrap();
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1_000)));
    assert_eq!(log.offset_for_timestamp(1_001).unwrap(), Some((1, 1_001)));
    assert_eq!(log.offset_for_timestamp(1_003).unwrap(), Some((3, 1_010)));
    assert_eq!(log.offset_for_timestamp(1_152).unwrap(), Some((47, 1_152)));
    assert_eq!(log.offset_for_timestamp(1_293).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((89, 1_292)));
    // A compressed (gzip) batch answers exactly too.
    let mut compressed = TestBatch::new(5_000, vec![vec![1; 4]; 3]);
    compressed.attributes = 1;
    log.append(Bytes::from(compressed.encode()), 0, 0).unwrap();
    assert_eq!(log.offset_for_timestamp(5_001).unwrap(), Some((91, 5_001)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((92, 5_002)));
    // Survives a clean reopen (timestamps from the time index).
    let path = log.dir().to_path_buf();
    log.close().unwrap();
    let log = Log::open(&path, small_config(), i64::MAX, 0, true, 0).unwrap();
    assert_eq!(log.offset_for_timestamp(1_152).unwrap(), Some((47, 1_152)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((92, 5_002)));
    let empty = tempfile::tempdir().unwrap();
    let empty = open(&empty, small_config());
    assert_eq!(empty.offset_for_timestamp(0).unwrap(), None);
    assert_eq!(empty.max_timestamp_offset().unwrap(), None);
}

/// A batch of 40 records of `codec` with timestamps out of order, `ts + (7 * i) % 40`: the
/// largest (`ts + 39`) is record 17, the first at or above `ts + 20` is record 3 (`ts + 21`).
fn unordered(codec: i16, ts: i64) -> TestBatch {
    let mut batch = TestBatch::new(ts, vec![]);
    batch.records = (0..40).map(|i| ((7 * i) % 40, vec![i as u8; 30])).collect();
    batch.attributes = codec;
    batch
}

/// Every codec (snappy both xerial-framed and raw): lookups name the exact record inside the
/// compressed batch, as Kafka does, and respect the log start offset within it.
#[test]
fn timestamp_lookups_inside_compressed_batches() {
    type Encode = fn(i64) -> Vec<u8>;
    let kinds: Vec<(&str, Encode)> = vec![
        ("none", |ts| unordered(0, ts).encode()),
        ("gzip", |ts| unordered(1, ts).encode()),
        ("snappy xerial", |ts| unordered(2, ts).encode()),
        ("snappy raw", |ts| unordered(0, ts).encode_raw_snappy()),
        ("lz4", |ts| unordered(3, ts).encode()),
        ("zstd", |ts| unordered(4, ts).encode()),
    ];
    for (name, encode) in kinds {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(&dir, LogConfig::default());
        log.append(Bytes::from(encode(1_000)), 0, 0).unwrap();
        log.append(Bytes::from(encode(2_000)), 0, 0).unwrap();
        log.set_high_watermark(80);
        assert_eq!(
            log.offset_for_timestamp(0).unwrap(),
            Some((0, 1_000)),
            "{name}"
        );
        assert_eq!(
            log.offset_for_timestamp(1_020).unwrap(),
            Some((3, 1_021)),
            "{name}"
        );
        assert_eq!(
            log.offset_for_timestamp(1_039).unwrap(),
            Some((17, 1_039)),
            "{name}"
        );
        assert_eq!(
            log.offset_for_timestamp(1_040).unwrap(),
            Some((40, 2_000)),
            "{name}"
        );
        assert_eq!(
            log.offset_for_timestamp(2_021).unwrap(),
            Some((43, 2_021)),
            "{name}"
        );
        assert_eq!(log.offset_for_timestamp(2_040).unwrap(), None, "{name}");
        assert_eq!(
            log.max_timestamp_offset().unwrap(),
            Some((57, 2_039)),
            "{name}"
        );
        // Records below the log start are skipped inside the batch.
        log.delete_records_before(45).unwrap();
        assert_eq!(
            log.offset_for_timestamp(2_021).unwrap(),
            Some((45, 2_035)),
            "{name}"
        );
        assert_eq!(
            log.max_timestamp_offset().unwrap(),
            Some((57, 2_039)),
            "{name}"
        );
    }
}

/// A compressed batch that cannot be inflated (here: records said to be zstd but stored plain)
/// falls back to batch granularity instead of failing every lookup.
#[test]
fn undecodable_compressed_batch_answers_at_batch_granularity() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, LogConfig::default());
    let mut bytes = unordered(0, 1_000).encode();
    bytes[22] |= 4; // attributes low byte: codec zstd
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    log.append(Bytes::from(bytes), 0, 0).unwrap();
    assert_eq!(log.offset_for_timestamp(1_020).unwrap(), Some((0, 1_039)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((0, 1_039)));
}

#[test]
fn retention_by_time_rolls_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        &dir,
        LogConfig {
            retention_ms: 1_000,
            ..small_config()
        },
    );
    for i in 0..20 {
        log.append(batch(1, 100, 0, 10 * i), 0, 0).unwrap();
    }
    log.set_high_watermark(20);
    let segments = log.segment_count();
    // Nothing is older than 1000 ms at now=1000.
    assert_eq!(log.enforce_retention(1_000).unwrap(), 0);
    // At now=1100, records with timestamps < 100 are expired: the first segment only if all of
    // its records are.
    let deleted = log.enforce_retention(1_101).unwrap();
    assert!(deleted >= 1 && deleted < segments);
    assert!(log.log_start_offset() > 0);
    // Everything expired: even the active segment goes, after a roll.
    assert_eq!(log.enforce_retention(100_000).unwrap(), segments - deleted);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 20);
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(
        log.append(batch(1, 1, 0, 0), 0, 0).unwrap().first_offset,
        20
    );
}

#[test]
fn retention_waits_for_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        &dir,
        LogConfig {
            retention_bytes: 0,
            ..small_config()
        },
    );
    for _ in 0..20 {
        log.append(batch(1, 100, 0, 0), 0, 0).unwrap();
    }
    log.set_high_watermark(0);
    assert_eq!(log.enforce_retention(0).unwrap(), 0);
    log.set_high_watermark(20);
    assert!(log.enforce_retention(0).unwrap() > 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn segment_ms_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        &dir,
        LogConfig {
            segment_ms: 100,
            ..LogConfig::default()
        },
    );
    log.append(batch(1, 1, 0, 0), 0, 1_000).unwrap();
    log.append(batch(1, 1, 0, 0), 0, 1_100).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(batch(1, 1, 0, 0), 0, 1_101).unwrap();
    assert_eq!(log.segment_count(), 2);
    // A roll makes everything before it durable.
    assert_eq!(log.recovery_point(), 2);
}

#[test]
fn flush_policies() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, LogConfig::default());
    log.append(batch(5, 1, 0, 0), 0, 0).unwrap();
    assert_eq!(
        log.recovery_point(),
        0,
        "strict mode leaves flushing to the broker"
    );
    assert!(!log.flush_if_due(i64::MAX).unwrap());
    let (file, end) = log.sync_target().unwrap();
    file.sync_data().unwrap();
    log.mark_flushed(end);
    assert_eq!(log.recovery_point(), 5);
    log.mark_flushed(1);
    assert_eq!(log.recovery_point(), 5, "monotonic");

    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        &dir,
        LogConfig {
            flush_messages: 10,
            flush_ms: 1_000,
            ..LogConfig::default()
        },
    );
    log.append(batch(4, 1, 0, 0), 0, 0).unwrap();
    log.append(batch(4, 1, 0, 0), 0, 10).unwrap();
    assert_eq!(log.recovery_point(), 0);
    log.append(batch(4, 1, 0, 0), 0, 20).unwrap();
    assert_eq!(log.recovery_point(), 12, "flush.messages reached");
    log.append(batch(1, 1, 0, 0), 0, 30).unwrap();
    assert!(!log.flush_if_due(1_029).unwrap());
    assert!(log.flush_if_due(1_030).unwrap());
    assert_eq!(log.recovery_point(), 13);
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, small_config());
    log.append(batch(1, 1, 0, 0), 0, 0).unwrap();
    let slice = log.read(0, 100, 1, true).unwrap().slice.unwrap();
    log.delete().unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A reader that got its slice before the delete still reads it.
    assert_eq!(slice.read_to_bytes().unwrap().len(), slice.len);
}

#[test]
fn full_index_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_index_bytes: 16,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(&dir, config);
    for i in 0..10 {
        log.append(batch(1, 1, i, 0), 0, 0).unwrap();
    }
    // Two entries per segment: entries for the 2nd and 3rd batch, then a roll.
    assert_eq!(log.segment_count(), 4);
    assert_eq!(read_all(&log).len(), 10);
}

/// With an open-file budget far below the files the logs hold, every log still appends,
/// reads back, recovers and reopens: files are closed and reopened on demand, the cached
/// handles stay within the budget, and a slice handed out before its file's handle was closed
/// still reads.
#[test]
fn many_segments_and_logs_within_a_small_open_file_budget() {
    crate::open_files::set_capacity(6);
    let root = tempfile::tempdir().unwrap();
    let mut logs: Vec<Log> = (0..5)
        .map(|i| {
            Log::open(
                &root.path().join(format!("t-{i}")),
                small_config(),
                0,
                0,
                true,
                0,
            )
            .unwrap()
        })
        .collect();
    // Interleaved appends: each log rolls several segments (1 KiB each).
    for round in 0..40u8 {
        for log in &mut logs {
            log.append(batch(2, 60, round, i64::from(round)), 0, 0)
                .unwrap();
            assert!(crate::open_files::open_count() <= 6);
        }
    }
    let held = logs[0].read(0, 100, i64::MAX, true).unwrap().slice.unwrap();
    for log in &logs {
        assert!(log.segment_count() > 3, "{}", log.segment_count());
        let all = read_all(log);
        assert_eq!(all.len(), 40);
        for (round, (header, _)) in all.iter().enumerate() {
            assert_eq!(header.base_offset, 2 * round as i64);
        }
        assert!(crate::open_files::open_count() <= 6);
    }
    // The first slice's handle was closed by the budget long ago; the slice still reads.
    let bytes = held.read_to_bytes().unwrap();
    assert_eq!(parse_batches(&bytes)[0].0.base_offset, 0);
    assert!(
        crate::open_files::opens_total() > 5 * 3 * 4,
        "files were reopened"
    );
    // Timestamp lookups and a crash-style reopen (full recovery) also work within the budget.
    let (offset, timestamp) = logs[2].offset_for_timestamp(10).unwrap().unwrap();
    assert!(
        timestamp >= 10 && (19..=20).contains(&offset),
        "{offset} {timestamp}"
    );
    drop(logs);
    for i in 0..5 {
        let log = Log::open(
            &root.path().join(format!("t-{i}")),
            small_config(),
            0,
            0,
            false,
            0,
        )
        .unwrap();
        assert_eq!(log.log_end_offset(), 80);
        assert_eq!(read_all(&log).len(), 40);
        assert!(crate::open_files::open_count() <= 6);
    }
}
