use super::test_builder::TestBatch;
use super::*;
use proptest::prelude::*;

fn sample() -> Vec<u8> {
    TestBatch::new(1_000, vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]).encode()
}

#[test]
fn valid_batch_parses() {
    let bytes = sample();
    let headers = validate_batches(&bytes).unwrap();
    assert_eq!(headers.len(), 1);
    let h = headers[0];
    assert_eq!(h.total_len(), bytes.len());
    assert_eq!(h.records_count, 3);
    assert_eq!(h.last_offset(), 2);
    assert_eq!(h.max_timestamp, 1_002);
    assert_eq!(h.compression(), 0);
    assert!(!h.is_control() && !h.is_transactional() && !h.timestamp_type_log_append());
    let two = [bytes.clone(), bytes].concat();
    assert_eq!(validate_batches(&two).unwrap().len(), 2);
}

#[test]
fn corrupt_crc_is_detected() {
    let mut bytes = sample();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    assert!(matches!(
        validate_batches(&bytes),
        Err(BatchError::CrcMismatch { .. })
    ));
}

#[test]
fn old_magic_is_unsupported() {
    let mut bytes = sample();
    bytes[16] = 1;
    assert_eq!(
        validate_batches(&bytes),
        Err(BatchError::UnsupportedMagic(1))
    );
}

#[test]
fn lying_length_is_detected() {
    let mut bytes = sample();
    bytes[8..12].copy_from_slice(&1_000i32.to_be_bytes());
    assert!(matches!(
        validate_batches(&bytes),
        Err(BatchError::Truncated { needed: 1012, .. })
    ));
    bytes[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        validate_batches(&bytes),
        Err(BatchError::InvalidLength {
            batch_length: 10,
            ..
        })
    ));
}

#[test]
fn truncated_batch_is_detected() {
    let bytes = sample();
    for cut in [0, 5, 17, 60, bytes.len() - 1] {
        let result = validate_batches(&bytes[..cut]);
        if cut == 0 {
            assert_eq!(result, Ok(vec![]));
        } else {
            assert!(matches!(result, Err(BatchError::Truncated { .. })), "{cut}");
        }
    }
}

#[test]
fn inconsistent_offsets_are_detected() {
    let mut batch = TestBatch::new(0, vec![b"x".to_vec(), b"y".to_vec()]);
    batch.records.clear();
    let bytes = batch.encode(); // records_count 0, last_offset_delta -1
    assert!(matches!(
        validate_batches(&bytes),
        Err(BatchError::InvalidOffsets { .. })
    ));
}

#[test]
fn assign_offset_keeps_crc_valid() {
    let mut bytes = sample();
    assign_offset(&mut bytes, 1234, 7);
    let h = validate_batches(&bytes).unwrap()[0];
    assert_eq!(h.base_offset, 1234);
    assert_eq!(h.partition_leader_epoch, 7);
    assert_eq!(h.last_offset(), 1236);
}

#[test]
fn log_append_time_rewrites_max_timestamp_and_crc() {
    let mut bytes = sample();
    set_log_append_time(&mut bytes, 99_999);
    let h = validate_batches(&bytes).unwrap()[0];
    assert!(h.timestamp_type_log_append());
    assert_eq!(h.max_timestamp, 99_999);
    assert_eq!(h.base_timestamp, 1_000);
    let records = record_offsets_and_timestamps(&bytes).unwrap();
    assert_eq!(records, vec![(0, 99_999), (1, 99_999), (2, 99_999)]);
}

#[test]
fn records_are_listed() {
    let mut bytes = sample();
    assign_offset(&mut bytes, 10, 0);
    let records = record_offsets_and_timestamps(&bytes).unwrap();
    assert_eq!(records, vec![(10, 1_000), (11, 1_001), (12, 1_002)]);
}

/// A batch of 50 records with timestamps out of order: 1000 + (7 * i) % 50, so the largest
/// (1049) is at index 7.
fn unordered(codec: i16) -> TestBatch {
    let mut batch = TestBatch::new(1_000, vec![]);
    batch.records = (0..50)
        .map(|i| ((7 * i) % 50, vec![i as u8; 20 + i as usize]))
        .collect();
    batch.attributes = codec;
    batch
}

#[test]
fn compressed_records_are_listed_exactly() {
    let want: Vec<(i64, i64)> = (0..50).map(|i| (100 + i, 1_000 + (7 * i) % 50)).collect();
    let mut encoded: Vec<(String, Vec<u8>)> = (1..=4)
        .map(|codec| (format!("codec {codec}"), unordered(codec).encode()))
        .collect();
    encoded.push(("raw snappy".into(), unordered(0).encode_raw_snappy()));
    for (name, mut bytes) in encoded {
        let header = validate_batches(&bytes).unwrap()[0];
        assert_ne!(header.compression(), 0, "{name}");
        assert_eq!(header.max_timestamp, 1_049);
        assert!(
            bytes.len() < unordered(0).encode().len(),
            "{name} compresses"
        );
        assign_offset(&mut bytes, 100, 0);
        let records = record_offsets_and_timestamps(&bytes).unwrap();
        assert_eq!(records, want, "{name}");
        set_log_append_time(&mut bytes, 7_777);
        let records = record_offsets_and_timestamps(&bytes).unwrap();
        assert!(records.iter().all(|&(_, t)| t == 7_777), "{name}");
    }
}

#[test]
fn compressed_batches_that_do_not_inflate_are_errors() {
    // Records claimed to be gzip but stored plain.
    let mut fake = unordered(0);
    let mut bytes = fake.encode();
    bytes[ATTRIBUTES_OFFSET + 1] |= 1;
    assert!(matches!(
        record_offsets_and_timestamps(&bytes),
        Err(BatchError::Decompression(DecompressError::Malformed {
            codec: "gzip",
            ..
        }))
    ));
    bytes[ATTRIBUTES_OFFSET + 1] |= 7;
    assert_eq!(
        record_offsets_and_timestamps(&bytes),
        Err(BatchError::Decompression(DecompressError::UnknownCodec(7)))
    );
    // A batch whose records inflate past the cap.
    fake.attributes = 4;
    let bytes = fake.encode();
    assert!(matches!(
        record_offsets_and_timestamps_capped(&bytes, 100),
        Err(BatchError::Decompression(DecompressError::TooLarge {
            limit: 100,
            ..
        }))
    ));
    // Fewer records inflate than the header counts.
    fake.records.truncate(10);
    let mut bytes = fake.encode();
    bytes[RECORDS_COUNT_OFFSET + 3] = 50;
    assert!(matches!(
        record_offsets_and_timestamps(&bytes),
        Err(BatchError::InvalidRecord { index: 10, .. })
    ));
}

/// A small zstd batch whose records inflate past the real 64 MiB cap is an error, not an OOM.
#[test]
fn decompression_bomb_batch_is_an_error() {
    let mut bomb = TestBatch::new(0, vec![vec![0; MAX_DECOMPRESSED_BYTES / 4]; 5]);
    bomb.attributes = 4;
    let bytes = bomb.encode();
    assert!(bytes.len() < 64 * 1024, "{}", bytes.len());
    assert!(matches!(
        record_offsets_and_timestamps(&bytes),
        Err(BatchError::Decompression(DecompressError::TooLarge { .. }))
    ));
}

#[test]
fn sequences_wrap_like_kafka() {
    assert_eq!(increment_sequence(5, 3), 8);
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    assert_eq!(increment_sequence(-1, 3), -1);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = validate_batches(&bytes);
        let _ = BatchHeader::parse(&bytes);
        let _ = record_offsets_and_timestamps(&bytes);
    }

    #[test]
    fn random_records_declared_compressed_never_panic(
        codec in 0i16..8,
        records in proptest::collection::vec(any::<u8>(), 0..300),
        count in 1i32..100,
    ) {
        let mut bytes = TestBatch::new(0, vec![vec![1]]).encode();
        bytes.truncate(BATCH_HEADER_LEN);
        bytes.extend_from_slice(&records);
        let batch_length = (bytes.len() - LOG_OVERHEAD) as i32;
        bytes[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
        bytes[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&codec.to_be_bytes());
        bytes[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&count.to_be_bytes());
        let _ = record_offsets_and_timestamps(&bytes);
    }

    #[test]
    fn mutated_compressed_batches_never_panic(codec in 1i16..5, index in 0usize..2000, value in any::<u8>(), cut in 0usize..2000) {
        let mut bytes = unordered(codec).encode();
        let i = index % bytes.len();
        bytes[i] = value;
        let _ = record_offsets_and_timestamps(&bytes);
        let cut = cut % (bytes.len() + 1);
        let _ = record_offsets_and_timestamps(&bytes[..cut]);
    }

    #[test]
    fn mutated_batches_never_panic(index in 0usize..200, value in any::<u8>(), cut in 0usize..200) {
        let mut bytes = TestBatch::new(5, vec![vec![1; 30], vec![2; 40]]).encode();
        let i = index % bytes.len();
        bytes[i] = value;
        let _ = validate_batches(&bytes);
        let _ = record_offsets_and_timestamps(&bytes);
        let cut = cut % (bytes.len() + 1);
        let _ = validate_batches(&bytes[..cut]);
        let _ = record_offsets_and_timestamps(&bytes[..cut]);
    }
}
