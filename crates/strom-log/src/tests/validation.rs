//! The record checks of a produce ([`crate::validate`]) through [`Log::append`]: the stored
//! `maxTimestamp` is the records' true maximum whatever the header said, timestamp bounds and
//! compacted-topic keys refuse exactly the offending records, malformed records and offset
//! deltas are refused, and the compressed path inflates only when it must.

use bytes::Bytes;

use super::{read_all, small_config};
use crate::batch::test_builder::TestBatch;
use crate::batch::{validate_batch, BatchHeader};
use crate::validate::{check_records, needs_inflation};
use crate::{AppendError, Log, LogConfig, RecordError};

fn open(dir: &tempfile::TempDir, config: LogConfig) -> Log {
    Log::open(&dir.path().join("t-0"), config, 0, 0, true, 0).unwrap()
}

/// 20 records of `codec`, timestamps `base + (7 * i) % 20` (largest, base + 19, at index 17),
/// whose header claims `header_max`.
fn lying(codec: i16, base: i64, header_max: Option<i64>) -> TestBatch {
    let mut batch = TestBatch::new(base, vec![]);
    batch.records = (0..20).map(|i| ((7 * i) % 20, vec![i as u8; 40])).collect();
    batch.attributes = codec;
    batch.header_max_timestamp = header_max;
    batch
}

const CODECS: [(i16, &str); 5] = [
    (0, "none"),
    (1, "gzip"),
    (2, "snappy"),
    (3, "lz4"),
    (4, "zstd"),
];

fn check(bytes: &[u8], config: &LogConfig, now_ms: i64) -> Result<Option<i64>, AppendError> {
    let header = validate_batch(bytes, 0).unwrap();
    check_records(bytes, &header, config, now_ms, std::path::Path::new("t-0"))
        .map(|c| c.max_timestamp)
}

/// The header says -1, too little, too much; the stored header says the truth, its CRC is valid,
/// and lookups are exact. A compressed header that is plausible (at or above the base
/// timestamp) is kept as sent under the default configuration: see the next test.
#[test]
fn stored_max_timestamp_is_the_records_maximum() {
    for (codec, name) in CODECS {
        for claimed in [Some(-1), Some(5), Some(1_005), Some(9_999), None] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = open(&dir, small_config());
            log.append(Bytes::from(lying(codec, 1_000, claimed).encode()), 0, 0)
                .unwrap();
            log.append(Bytes::from(lying(codec, 2_000, None).encode()), 0, 0)
                .unwrap();
            log.set_high_watermark(40);
            let stored = read_all(&log); // checks every stored batch's CRC
            let plausible = claimed.is_some_and(|max| max >= 1_000);
            let want = if codec != 0 && plausible {
                claimed.unwrap()
            } else {
                1_019
            };
            assert_eq!(stored[0].0.max_timestamp, want, "{name} {claimed:?}");
            assert_eq!(stored[0].0.base_timestamp, 1_000);
            if want == 1_019 {
                assert_eq!(
                    log.offset_for_timestamp(1_010).unwrap(),
                    Some((2, 1_014)),
                    "{name} {claimed:?}"
                );
                assert_eq!(log.offset_for_timestamp(1_019).unwrap(), Some((17, 1_019)));
                assert_eq!(log.offset_for_timestamp(1_020).unwrap(), Some((20, 2_000)));
                assert_eq!(log.max_timestamp_offset().unwrap(), Some((37, 2_019)));
            }
        }
    }
}

/// Bounds configured: a compressed batch is inflated, so even a plausible lie is corrected.
#[test]
fn configured_bounds_inflate_and_correct_compressed_batches() {
    let config = LogConfig {
        timestamp_after_max_ms: 3_600_000,
        ..small_config()
    };
    for (codec, name) in CODECS {
        let bytes = lying(codec, 1_000, Some(1_005)).encode();
        let header = validate_batch(&bytes, 0).unwrap();
        assert!(needs_inflation(&header, &config), "{name}");
        assert!(!needs_inflation(&header, &LogConfig::default()), "{name}");
        assert_eq!(
            check(&bytes, &config, 5_000).unwrap(),
            Some(1_019),
            "{name}"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(&dir, config.clone());
        log.append(Bytes::from(bytes), 0, 5_000).unwrap();
        assert_eq!(read_all(&log)[0].0.max_timestamp, 1_019, "{name}");
    }
}

/// The default compressed path decodes nothing; an untrusted header is inflated.
#[test]
fn compressed_batches_are_inflated_only_when_needed() {
    let header = |max: i64, base: i64, codec: i16| -> BatchHeader {
        let bytes = lying(codec, base, Some(max)).encode();
        validate_batch(&bytes, 0).unwrap()
    };
    let default = LogConfig::default();
    assert!(!needs_inflation(&header(1_019, 1_000, 3), &default));
    assert!(!needs_inflation(&header(1_000, 1_000, 3), &default));
    assert!(needs_inflation(&header(-1, 1_000, 3), &default));
    assert!(needs_inflation(&header(999, 1_000, 3), &default));
    assert!(needs_inflation(&header(-1, -1, 3), &default));
    let before = LogConfig {
        timestamp_before_max_ms: 1_000,
        ..LogConfig::default()
    };
    assert!(needs_inflation(&header(1_019, 1_000, 3), &before));
    let compact = LogConfig {
        compact: true,
        ..LogConfig::default()
    };
    assert!(needs_inflation(&header(1_019, 1_000, 3), &compact));
    // LogAppendTime overwrites maxTimestamp and ignores the bounds: nothing to decode.
    let log_append = LogConfig {
        timestamp_type_log_append: true,
        timestamp_before_max_ms: 1_000,
        ..LogConfig::default()
    };
    assert!(!needs_inflation(&header(-1, 1_000, 3), &log_append));
    let bytes = lying(3, 1_000, Some(-1)).encode();
    assert_eq!(check(&bytes, &log_append, 0).unwrap(), None);
}

fn indexes(records: &[RecordError]) -> Vec<i32> {
    records.iter().map(|r| r.batch_index).collect()
}

/// Timestamps outside `before.max.ms` / `after.max.ms` refuse the batch with INVALID_TIMESTAMP
/// and list exactly those records; the messages name the record, its timestamp and the bound.
#[test]
fn timestamp_bounds_list_the_offending_records() {
    let now = 100_000;
    let config = LogConfig {
        timestamp_before_max_ms: 10_000,
        timestamp_after_max_ms: 1_000,
        ..small_config()
    };
    for (codec, name) in CODECS {
        // Timestamps 89_000 + 2_000 * i: records 0 (89_000) too old, 6 (101_000) at the bound,
        // 7 and 8 too new.
        let mut batch = TestBatch::new(89_000, vec![]);
        batch.records = (0..9).map(|i| (2_000 * i, vec![1; 10])).collect();
        batch.attributes = codec;
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(&dir, config.clone());
        match log.append(Bytes::from(batch.encode()), 0, now) {
            Err(AppendError::InvalidRecords {
                timestamp: true,
                message,
                records,
            }) => {
                assert_eq!(indexes(&records), vec![0, 7, 8], "{name}");
                assert!(
                    records[0].message.contains("timestamp 89000")
                        && records[0]
                            .message
                            .contains("message.timestamp.before.max.ms=10000"),
                    "{}",
                    records[0].message
                );
                assert!(
                    records[1].message.contains("record 7")
                        && records[1]
                            .message
                            .contains("message.timestamp.after.max.ms=1000"),
                    "{}",
                    records[1].message
                );
                assert!(message.contains("3 of 9 records"), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(log.log_end_offset(), 0, "nothing appended");
        // Within the bounds: accepted.
        batch.records.truncate(7);
        batch.records.remove(0);
        log.append(Bytes::from(batch.encode()), 0, now).unwrap();
        assert_eq!(log.log_end_offset(), 6);
    }
    // Records without a timestamp (-1) are not checked, as in Kafka.
    let batch = TestBatch::new(-1, vec![vec![1]; 3]);
    let mut batch = batch;
    batch.records.iter_mut().for_each(|r| r.0 = 0);
    assert_eq!(check(&batch.encode(), &config, now).unwrap(), Some(-1));
}

/// A compacted topic refuses the keyless records of a batch and only those are listed; a
/// record that is keyless and out of bounds counts once, as keyless (Kafka's order), but the
/// batch is INVALID_TIMESTAMP as soon as one record's timestamp is out of bounds.
#[test]
fn keyless_records_on_a_compacted_topic_are_listed() {
    let compact = LogConfig {
        compact: true,
        ..small_config()
    };
    for (codec, name) in CODECS {
        let mut batch = TestBatch::new(1_000, vec![vec![7; 10]; 6]);
        batch.attributes = codec;
        batch.keys = vec![Some(b"a".to_vec()), None, Some(b"c".to_vec()), None, None];
        match check(&batch.encode(), &compact, 1_000) {
            Err(AppendError::InvalidRecords {
                timestamp: false,
                records,
                message,
            }) => {
                assert_eq!(indexes(&records), vec![1, 3, 4, 5], "{name}");
                assert!(records[0].message.contains("no key"), "{records:?}");
                assert!(message.contains("4 of 6 records"), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        }
        let bounded = LogConfig {
            timestamp_after_max_ms: 10,
            ..compact.clone()
        };
        batch.records[2].0 = 1_000_000; // keyed, too new
        batch.records[3].0 = 1_000_000; // keyless, too new
        match check(&batch.encode(), &bounded, 1_000) {
            Err(AppendError::InvalidRecords {
                timestamp: true,
                records,
                ..
            }) => {
                assert_eq!(indexes(&records), vec![1, 2, 3, 4, 5], "{name}");
                assert!(records[2].message.contains("no key"), "{records:?}");
                assert!(records[1].message.contains("after"), "{records:?}");
            }
            other => panic!("{name}: {other:?}"),
        }
        batch.keys = vec![Some(b"k".to_vec()); 6];
        batch.records[2].0 = 0;
        batch.records[3].0 = 0;
        assert!(check(&batch.encode(), &bounded, 1_000).is_ok(), "{name}");
    }
}

/// Builds a batch around a hand-made records section.
fn raw_batch(records: &[u8], count: i32, attributes: i16) -> Vec<u8> {
    let mut batch = TestBatch::new(1_000, vec![vec![0]; count as usize]).encode();
    batch.truncate(crate::BATCH_HEADER_LEN);
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(records);
    crate::batch::seal(&mut batch);
    batch
}

fn record(offset_delta: i64, extra: &[u8]) -> Vec<u8> {
    use crate::records::put_varlong;
    let mut body = vec![0u8];
    put_varlong(&mut body, 0);
    put_varlong(&mut body, offset_delta);
    put_varlong(&mut body, -1);
    put_varlong(&mut body, 1);
    body.push(b'v');
    body.extend_from_slice(extra);
    let mut out = Vec::new();
    put_varlong(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

#[test]
fn malformed_records_and_offset_deltas_are_refused() {
    let config = LogConfig::default();
    let good = [record(0, &[0]), record(1, &[0])].concat();
    assert!(check(&raw_batch(&good, 2, 0), &config, 0).is_ok());
    // Offset deltas out of order or with a gap.
    for deltas in [[1, 0], [0, 2], [0, 0]] {
        let bytes = [record(deltas[0], &[0]), record(deltas[1], &[0])].concat();
        match check(&raw_batch(&bytes, 2, 0), &config, 0) {
            Err(AppendError::InvalidRecord(message)) => {
                assert!(message.contains("offset delta"), "{message}")
            }
            other => panic!("{deltas:?}: {other:?}"),
        }
    }
    // Trailing bytes after the last record, a record shorter than its fields, a header count
    // that runs past the record, a null header key.
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("trailing", [good.clone(), vec![0, 0]].concat()),
        (
            "no headers field",
            [record(0, &[]), record(1, &[0])].concat(),
        ),
        ("header count", [record(0, &[8]), record(1, &[0])].concat()),
        (
            "null header key",
            [record(0, &[2, 1, 0]), record(1, &[0])].concat(),
        ),
        (
            "extra byte in record",
            [record(0, &[0, 0]), record(1, &[0])].concat(),
        ),
    ];
    for (name, bytes) in cases {
        let result = check(&raw_batch(&bytes, 2, 0), &config, 0);
        assert!(
            matches!(
                result,
                Err(AppendError::InvalidRecord(_)) | Err(AppendError::CorruptMessage(_))
            ),
            "{name}: {result:?}"
        );
    }
    // A header with a key and a null value is fine.
    let with_header = [record(0, &[2, 2, b'h', 1]), record(1, &[0])].concat();
    assert!(check(&raw_batch(&with_header, 2, 0), &config, 0).is_ok());
}

/// A producer may not set the LogAppendTime bit: INVALID_TIMESTAMP for the whole batch (no
/// record list: a short batch can claim billions of records).
#[test]
fn producer_log_append_time_bit_is_refused() {
    let mut batch = TestBatch::new(1_000, vec![vec![1]; 3]);
    batch.attributes = 0x08;
    for config in [
        LogConfig::default(),
        LogConfig {
            timestamp_type_log_append: true,
            ..LogConfig::default()
        },
    ] {
        match check(&batch.encode(), &config, 0) {
            Err(AppendError::InvalidRecords {
                timestamp: true,
                records,
                ..
            }) => assert!(records.is_empty()),
            other => panic!("{other:?}"),
        }
    }
}

/// Retention by time uses the corrected timestamps: a batch whose header claimed -1 (once read
/// as the oldest possible) is kept while its records are young, and deleted once they are old.
#[test]
fn retention_uses_the_true_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        &dir,
        LogConfig {
            retention_ms: 10_000,
            ..small_config()
        },
    );
    log.append(Bytes::from(lying(0, 50_000, Some(-1)).encode()), 0, 50_000)
        .unwrap();
    log.append(Bytes::from(lying(0, 80_000, Some(-1)).encode()), 0, 80_000)
        .unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert!(log.segment_count() > 1, "the small segments rolled");
    // At 59_000 even the oldest records (50_000..50_019) are younger than 10 s.
    assert_eq!(log.enforce_retention(59_000).unwrap(), 0);
    assert_eq!(log.log_start_offset(), 0);
    // At 61_000 the first batch's records are all older than 10 s, the second's are not.
    assert!(log.enforce_retention(61_000).unwrap() > 0);
    assert_eq!(log.log_start_offset(), 20);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((20, 80_000)));
}

/// The stored, corrected batch is byte-for-byte the sent one except for `maxTimestamp`, the
/// CRC and the offset/epoch fields.
#[test]
fn correction_changes_only_the_max_timestamp_and_crc() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, small_config());
    let sent = lying(0, 1_000, Some(-1)).encode();
    log.append(Bytes::from(sent.clone()), 3, 0).unwrap();
    let stored = &read_all(&log)[0].1;
    assert_eq!(stored.len(), sent.len());
    assert_eq!(stored[21..35], sent[21..35]);
    assert_eq!(stored[35..43], 1_019i64.to_be_bytes());
    assert_eq!(stored[43..], sent[43..]);
    assert_ne!(stored[17..21], sent[17..21], "CRC recomputed");
}

mod model {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Random batches against a model of the rules: an accepted batch stores its records'
        /// true maximum; a refused one lists exactly the records the model refuses, keyless
        /// first (Kafka's order), then out-of-bounds timestamps.
        #[test]
        fn check_records_matches_the_model(
            deltas in proptest::collection::vec(-5_000i64..5_000, 1..30),
            keyless in proptest::collection::vec(any::<bool>(), 30),
            codec in 0i16..5,
            claim in prop_oneof![Just(None), Just(Some(-1i64)), (0i64..20_000).prop_map(Some)],
            compact in any::<bool>(),
            bounded in any::<bool>(),
            now in 5_000i64..15_000,
        ) {
            let base = 10_000;
            let mut batch = TestBatch::new(base, vec![]);
            batch.records = deltas.iter().map(|d| (*d, vec![1u8; 8])).collect();
            batch.keys = keyless[..deltas.len()]
                .iter()
                .map(|k| (!k).then(|| b"k".to_vec()))
                .collect();
            batch.attributes = codec;
            batch.header_max_timestamp = claim;
            let config = LogConfig {
                compact,
                timestamp_before_max_ms: if bounded { 3_000 } else { i64::MAX },
                timestamp_after_max_ms: if bounded { 2_000 } else { i64::MAX },
                ..LogConfig::default()
            };
            let bytes = batch.encode();
            let header = validate_batch(&bytes, 0).unwrap();
            let true_max = deltas.iter().map(|d| base + d).max().unwrap();
            let refused: Vec<i32> = (0..deltas.len())
                .filter(|&i| {
                    let ts = base + deltas[i];
                    (compact && keyless[i]) || (bounded && (ts < now - 3_000 || ts > now + 2_000))
                })
                .map(|i| i as i32)
                .collect();
            let result = check_records(&bytes, &header, &config, now, std::path::Path::new("m-0"));
            match result {
                Ok(checked) => {
                    prop_assert!(refused.is_empty());
                    let decoded = codec == 0 || needs_inflation(&header, &config);
                    if decoded {
                        prop_assert_eq!(checked.max_timestamp, Some(true_max));
                    } else {
                        prop_assert_eq!(checked.max_timestamp, None);
                        prop_assert!(header.max_timestamp >= base);
                    }
                }
                Err(AppendError::InvalidRecords { records, .. }) => {
                    prop_assert_eq!(indexes(&records), refused);
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }
    }
}

/// The cost of the uncompressed walk beside the CRC-32C the broker computes anyway, over
/// about 1 MiB batches of 1 KiB and 100 B records, each walk right after the CRC of the same
/// batch (as on the produce path), in thread CPU time (the machine is shared, so wall time
/// would count time spent descheduled). Run in release for figures:
/// `cargo test --release -p strom-log validation_cost -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn validation_cost() {
    fn cpu_ns() -> u128 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid timespec to write into.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        assert_eq!(rc, 0);
        t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
    }
    let config = LogConfig::default();
    for (size, count) in [(1024usize, 1000usize), (100, 9000)] {
        let bytes = TestBatch::new(1_000, vec![vec![b'x'; size]; count]).encode();
        let header = validate_batch(&bytes, 0).unwrap();
        let rounds = 2000;
        let (mut crc, mut walk) = (0u128, 0u128);
        for _ in 0..rounds {
            let t0 = cpu_ns();
            std::hint::black_box(crc32c::crc32c(std::hint::black_box(&bytes[21..])));
            let t1 = cpu_ns();
            let checked = check_records(
                std::hint::black_box(&bytes),
                &header,
                &config,
                0,
                std::path::Path::new("t-0"),
            );
            std::hint::black_box(checked.unwrap());
            let t2 = cpu_ns();
            crc += t1 - t0;
            walk += t2 - t1;
        }
        let (crc, walk) = (crc / rounds, walk / rounds);
        let mb = bytes.len() as f64 / 1e6;
        println!(
            "{count} x {size} B ({mb:.2} MB): CRC-32C {crc} ns ({:.0} MB/s), record walk {walk} ns \
             ({:.0} MB/s, {:.1} ns/record, {:.3} CPU-s/GB)",
            mb * 1e9 / crc as f64,
            mb * 1e9 / walk as f64,
            walk as f64 / count as f64,
            walk as f64 * 1e-6 / mb
        );
    }
}

/// A segment in which no batch has a timestamp (records without timestamps, or batches stored
/// before the broker computed the max) ages by its file's modification time, as Kafka's
/// `LogSegment.largestTimestamp`, not as the oldest possible segment.
#[test]
fn segments_without_timestamps_age_by_modification_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        &dir,
        LogConfig {
            retention_ms: 10_000,
            ..small_config()
        },
    );
    let untimed = || {
        let mut batch = TestBatch::new(-1, vec![vec![3; 400]; 2]);
        batch.records.iter_mut().for_each(|r| r.0 = 0);
        Bytes::from(batch.encode())
    };
    log.append(untimed(), 0, 0).unwrap();
    log.append(untimed(), 0, 0).unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(read_all(&log)[0].0.max_timestamp, -1);
    assert!(log.segment_count() > 1);
    let wall_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Once read as -1 (deleted at any clock); now young by the file's age.
    assert_eq!(log.enforce_retention(61_000).unwrap(), 0);
    assert_eq!(log.enforce_retention(wall_ms + 5_000).unwrap(), 0);
    // A minute later both files are older than retention.ms.
    assert!(log.enforce_retention(wall_ms + 60_000).unwrap() > 0);
    assert_eq!(log.log_start_offset(), 4);
}
