use proptest::prelude::*;

use super::*;
use crate::batch::{for_each_record_in, validate_batch};

/// A magic 0 message `offset 7, key "k", value "v1"`, its bytes and CRC computed outside this
/// crate (Python's `zlib.crc32`).
const GOLDEN_V0: &str = "000000000000000700000011615054270000000000016b000000027631";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A key and a value, `None` for null.
type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

fn sample_records() -> Vec<KeyValue> {
    vec![
        (Some(b"k1".to_vec()), Some(b"value one".to_vec())),
        (None, Some(b"keyless".to_vec())),
        (Some(b"tomb".to_vec()), None),
        (Some(Vec::new()), Some(Vec::new())),
    ]
}

/// Encodes `sample_records` as a message set at `base` with timestamps 1000 + i.
fn sample_set(magic: i8, codec: u8, base: i64) -> Vec<u8> {
    let records = sample_records();
    let out_records: Vec<OutRecord<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (base + i as i64, 1000 + i as i64, k.as_deref(), v.as_deref()))
        .collect();
    let mut out = Vec::new();
    encode_message_set(&mut out, magic, codec, false, &out_records).unwrap();
    out
}

fn check_sample(set: &MessageSet, magic: i8, base: i64) {
    let records = sample_records();
    assert_eq!(set.records.len(), records.len());
    for (i, (r, (k, v))) in set.records.iter().zip(&records).enumerate() {
        assert_eq!(r.offset, base + i as i64, "offset of record {i}");
        let expected_ts = if magic == 0 {
            NO_TIMESTAMP
        } else {
            1000 + i as i64
        };
        assert_eq!(r.timestamp, expected_ts);
        assert_eq!(r.key.as_deref(), k.as_deref());
        assert_eq!(r.value.as_deref(), v.as_deref());
    }
}

#[test]
fn golden_v0_message_decodes_and_encodes_to_the_same_bytes() {
    let golden = hex(GOLDEN_V0);
    let set = decode_message_set(&Bytes::from(golden.clone()), MAX_DECOMPRESSED_BYTES).unwrap();
    assert_eq!(set.magic, 0);
    assert_eq!(set.codec, 0);
    assert_eq!(
        set.records,
        vec![LegacyRecord {
            offset: 7,
            timestamp: NO_TIMESTAMP,
            log_append_time: false,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v1")),
        }]
    );
    let mut out = Vec::new();
    encode_message_set(&mut out, 0, 0, false, &[(7, -1, Some(b"k"), Some(b"v1"))]).unwrap();
    assert_eq!(out, golden);
}

#[test]
fn every_magic_and_codec_round_trips() {
    for magic in [0, 1] {
        for codec in 0..=3 {
            let bytes = sample_set(magic, codec, 40);
            let set = decode_message_set(&Bytes::from(bytes), MAX_DECOMPRESSED_BYTES)
                .unwrap_or_else(|e| panic!("magic {magic} codec {codec}: {e}"));
            assert_eq!((set.magic, set.codec), (magic, codec));
            check_sample(&set, magic, 40);
        }
    }
}

#[test]
fn magic_1_wrappers_use_relative_inner_offsets_and_magic_0_absolute() {
    for (magic, first_inner) in [(0i8, 40i64), (1, 0)] {
        let bytes = sample_set(magic, 1, 40);
        // The wrapper carries the last offset.
        assert_eq!(i64::from_be_bytes(bytes[0..8].try_into().unwrap()), 43);
        let start = LOG_OVERHEAD;
        let size = be_i32(&bytes, 8) as usize;
        let wrapper = parse_message(&Bytes::from(bytes[start..start + size].to_vec()), 0).unwrap();
        let inner = decompress(1, &wrapper.value.unwrap(), usize::MAX).unwrap();
        assert_eq!(
            i64::from_be_bytes(inner[0..8].try_into().unwrap()),
            first_inner
        );
    }
}

#[test]
fn magic_0_lz4_carries_the_kip_57_checksum_and_is_read_either_way() {
    let bytes = sample_set(0, 3, 0);
    let size = be_i32(&bytes, 8) as usize;
    let wrapper = parse_message(&Bytes::from(bytes[12..12 + size].to_vec()), 0).unwrap();
    let frame = wrapper.value.unwrap().to_vec();
    assert!(
        decompress(3, &frame, usize::MAX).is_err(),
        "the old writer's checksum"
    );
    let mut fixed = frame.clone();
    set_lz4_header_checksum(&mut fixed, false);
    assert!(decompress(3, &fixed, usize::MAX).is_ok());
    // A magic 0 wrapper with a correct checksum (as librdkafka writes it) is read too.
    let mut out = Vec::new();
    let inner = {
        let mut inner = Vec::new();
        put_message(&mut inner, 0, 0, 0, -1, None, Some(b"x"));
        inner
    };
    let standard = compress(3, &inner, false).unwrap();
    put_message(&mut out, 0, 0, 3, -1, None, Some(&standard));
    let set = decode_message_set(&Bytes::from(out), MAX_DECOMPRESSED_BYTES).unwrap();
    assert_eq!(set.records[0].value.as_deref(), Some(&b"x"[..]));
}

#[test]
fn conversion_to_v2_keeps_keys_values_timestamps_and_codec() {
    for magic in [0, 1] {
        for codec in 0..=3 {
            let set =
                decode_message_set(&Bytes::from(sample_set(magic, codec, 9)), usize::MAX).unwrap();
            let batch = to_v2_batch(&set).unwrap().unwrap();
            let header = validate_batch(&batch, 0).unwrap();
            assert_eq!(header.compression(), codec);
            assert_eq!(header.records_count, 4);
            assert_eq!((header.producer_id, header.base_sequence), (-1, -1));
            let expected_max = if magic == 0 { NO_TIMESTAMP } else { 1003 };
            assert_eq!(header.max_timestamp, expected_max);
            let mut seen = Vec::new();
            for_each_record_in(&batch, &header, usize::MAX, |r| {
                seen.push((
                    r.offset,
                    header.base_timestamp + r.timestamp_delta,
                    r.key.map(<[u8]>::to_vec),
                    r.value.map(<[u8]>::to_vec),
                ))
            })
            .unwrap();
            let records = sample_records();
            for (i, (s, (k, v))) in seen.iter().zip(&records).enumerate() {
                let ts = if magic == 0 {
                    NO_TIMESTAMP
                } else {
                    1000 + i as i64
                };
                assert_eq!(s, &(i as i64, ts, k.clone(), v.clone()));
            }
        }
    }
    assert_eq!(to_v2_batch(&MessageSet::default()).unwrap(), None);
}

/// A stored v2 batch: `sample_records` at `base` with codec `codec`.
fn stored_batch(codec: u8, base: i64, log_append_time: Option<i64>) -> Vec<u8> {
    let set = decode_message_set(&Bytes::from(sample_set(1, codec, 0)), usize::MAX).unwrap();
    let mut batch = to_v2_batch(&set).unwrap().unwrap();
    crate::batch::assign_offset(&mut batch, base, 0);
    if let Some(time) = log_append_time {
        crate::batch::set_log_append_time(&mut batch, time);
    }
    batch
}

#[test]
fn down_conversion_of_every_codec_reads_back_the_same_records() {
    for magic in [0, 1] {
        for codec in 0..=3 {
            let mut stored = stored_batch(codec, 100, None);
            stored.extend(stored_batch(codec, 104, None));
            let converted = down_convert(&stored, magic, 100, usize::MAX).unwrap();
            let set = decode_message_set(&Bytes::from(converted), usize::MAX).unwrap();
            assert_eq!(set.records.len(), 8, "magic {magic} codec {codec}");
            assert_eq!(set.magic, magic);
            let mut first = set.clone();
            first.records.truncate(4);
            check_sample(&first, magic, 100);
            let mut second = set.clone();
            second.records.drain(..4);
            check_sample(&second, magic, 104);
        }
    }
}

#[test]
fn down_conversion_rules() {
    // Uncompressed: records below the fetch offset are left out; compressed: all are kept.
    let plain = down_convert(&stored_batch(0, 100, None), 1, 102, usize::MAX).unwrap();
    let set = decode_message_set(&Bytes::from(plain), usize::MAX).unwrap();
    assert_eq!(set.records.first().map(|r| r.offset), Some(102));
    let gzip = down_convert(&stored_batch(1, 100, None), 1, 102, usize::MAX).unwrap();
    let set = decode_message_set(&Bytes::from(gzip), usize::MAX).unwrap();
    assert_eq!(set.records.first().map(|r| r.offset), Some(100));

    // LogAppendTime: every record carries the append time and the v1 type bit.
    for codec in [0, 2] {
        let converted =
            down_convert(&stored_batch(codec, 0, Some(5555)), 1, 0, usize::MAX).unwrap();
        let set = decode_message_set(&Bytes::from(converted), usize::MAX).unwrap();
        assert!(set
            .records
            .iter()
            .all(|r| r.timestamp == 5555 && r.log_append_time));
    }

    // A control batch is dropped; a partial trailing batch is dropped.
    let mut control = stored_batch(0, 0, None);
    control[22] |= 0x20;
    crate::batch::seal(&mut control);
    let mut stored = control;
    stored.extend(stored_batch(0, 4, None));
    let partial = stored_batch(0, 8, None);
    stored.extend(&partial[..partial.len() - 3]);
    let set = decode_message_set(
        &Bytes::from(down_convert(&stored, 0, 0, usize::MAX).unwrap()),
        usize::MAX,
    )
    .unwrap();
    assert_eq!(
        set.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );

    // The first batch is always converted; later ones only within max_bytes.
    let mut two = stored_batch(0, 0, None);
    two.extend(stored_batch(0, 4, None));
    let one = down_convert(&two, 1, 0, 10).unwrap();
    let set = decode_message_set(&Bytes::from(one), usize::MAX).unwrap();
    assert_eq!(set.records.len(), 4);

    // zstd: refused when first, the end of the conversion when later.
    let mut zstd = stored_batch(0, 0, None);
    let records = crate::compression::test_encode::compress(4, &zstd[BATCH_HEADER_LEN..]);
    zstd.truncate(BATCH_HEADER_LEN);
    zstd.extend(records);
    zstd[22] |= 4;
    crate::batch::seal(&mut zstd);
    validate_batch(&zstd, 0).unwrap();
    assert_eq!(
        down_convert(&zstd, 1, 0, usize::MAX),
        Err(LegacyError::UnsupportedCompression("zstd"))
    );
    let mut mixed = stored_batch(0, 0, None);
    mixed.extend(&zstd);
    let set = decode_message_set(
        &Bytes::from(down_convert(&mixed, 1, 0, usize::MAX).unwrap()),
        usize::MAX,
    )
    .unwrap();
    assert_eq!(set.records.len(), 4);
}

#[test]
fn bad_message_sets_are_refused_with_the_right_error() {
    let golden = hex(GOLDEN_V0);
    let decode = |bytes: Vec<u8>| decode_message_set(&Bytes::from(bytes), MAX_DECOMPRESSED_BYTES);
    // A flipped value byte breaks the CRC.
    let mut bad_crc = golden.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    assert!(matches!(decode(bad_crc), Err(LegacyError::Corrupt { .. })));
    // A size below the smallest message.
    let mut small = golden.clone();
    small[8..12].copy_from_slice(&13i32.to_be_bytes());
    assert!(matches!(decode(small), Err(LegacyError::Corrupt { .. })));
    // An unknown magic.
    let mut magic = golden.clone();
    magic[16] = 5;
    assert!(matches!(decode(magic), Err(LegacyError::Corrupt { .. })));
    // A partial trailing message is ignored.
    let mut trailing = golden.clone();
    trailing.extend(&golden[..golden.len() - 1]);
    assert_eq!(decode(trailing).unwrap().records.len(), 1);
    // A zstd wrapper.
    let mut zstd = Vec::new();
    put_message(&mut zstd, 0, 1, 4, 0, None, Some(b"whatever"));
    assert_eq!(
        decode(zstd),
        Err(LegacyError::UnsupportedCompression("zstd"))
    );
    // Nested compression and mixed magic inside a wrapper.
    let nested_inner = sample_set(1, 1, 0);
    let mut nested = Vec::new();
    put_message(
        &mut nested,
        3,
        1,
        1,
        0,
        None,
        Some(&compress(1, &nested_inner, false).unwrap()),
    );
    assert!(matches!(decode(nested), Err(LegacyError::Invalid(_))));
    let mixed_inner = sample_set(0, 0, 0);
    let mut mixed = Vec::new();
    put_message(
        &mut mixed,
        3,
        1,
        1,
        0,
        None,
        Some(&compress(1, &mixed_inner, false).unwrap()),
    );
    assert!(matches!(decode(mixed), Err(LegacyError::Invalid(_))));
    // A wrapper without a value, and one whose data is not gzip.
    let mut null = Vec::new();
    put_message(&mut null, 0, 1, 1, 0, None, None);
    assert!(matches!(decode(null), Err(LegacyError::Invalid(_))));
    let mut garbage = Vec::new();
    put_message(&mut garbage, 0, 1, 1, 0, None, Some(b"not gzip"));
    assert!(matches!(decode(garbage), Err(LegacyError::Corrupt { .. })));
    // Trailing bytes inside a message.
    let mut long = Vec::new();
    put_message(&mut long, 0, 0, 0, 0, None, Some(b"ab"));
    long[11] += 1;
    long.push(0);
    let crc = crc32(&long[16..]);
    long[12..16].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(decode(long), Err(LegacyError::Corrupt { .. })));
    // A decompression bomb is capped.
    let big = vec![0u8; 1 << 20];
    let mut inner = Vec::new();
    put_message(&mut inner, 0, 1, 0, 0, None, Some(&big));
    let mut bomb = Vec::new();
    put_message(
        &mut bomb,
        0,
        1,
        1,
        0,
        None,
        Some(&compress(1, &inner, false).unwrap()),
    );
    assert!(matches!(
        decode_message_set(&Bytes::from(bomb), 1000),
        Err(LegacyError::Corrupt { .. })
    ));
}

/// Key, value and timestamp.
type Timed = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

fn records_strategy() -> impl Strategy<Value = Vec<Timed>> {
    proptest::collection::vec(
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            -1i64..2_000_000_000_000,
        ),
        1..20,
    )
}

proptest! {
    #[test]
    fn message_set_to_v2_and_back_round_trips(
        records in records_strategy(),
        magic in 0i8..=1,
        codec in 0u8..=3,
        base in 0i64..1_000_000,
        fetch_magic in 0i8..=1,
    ) {
        let out_records: Vec<OutRecord<'_>> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v, ts))| (base + i as i64, *ts, k.as_deref(), v.as_deref()))
            .collect();
        let mut bytes = Vec::new();
        encode_message_set(&mut bytes, magic, codec, false, &out_records).unwrap();
        let set = decode_message_set(&Bytes::from(bytes), MAX_DECOMPRESSED_BYTES).unwrap();
        prop_assert_eq!(set.records.len(), records.len());
        let mut batch = to_v2_batch(&set).unwrap().unwrap();
        validate_batch(&batch, 0).unwrap();
        crate::batch::assign_offset(&mut batch, base, 0);
        let converted = down_convert(&batch, fetch_magic, base, usize::MAX).unwrap();
        let back = decode_message_set(&Bytes::from(converted), MAX_DECOMPRESSED_BYTES).unwrap();
        prop_assert_eq!(back.records.len(), records.len());
        for (i, (r, (k, v, ts))) in back.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(r.offset, base + i as i64);
            let expected_ts = if magic == 0 || fetch_magic == 0 { NO_TIMESTAMP } else { *ts };
            prop_assert_eq!(r.timestamp, expected_ts);
            prop_assert_eq!(r.key.as_deref(), k.as_deref());
            prop_assert_eq!(r.value.as_deref(), v.as_deref());
        }
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let data = Bytes::from(bytes);
        if let Ok(set) = decode_message_set(&data, 1 << 20) {
            if let Some(batch) = to_v2_batch(&set).unwrap() {
                validate_batch(&batch, 0).unwrap();
            }
        }
        let _ = down_convert(&data, 1, 0, 1000);
    }
}

/// A snappy batch whose base offset is i64::MAX: the second record's offset wraps to i64::MIN
/// (as Java's longs do), and so must the wrapper's relative offsets, where a subtraction used
/// to overflow (found by reading what the message_set target could reach).
#[test]
fn down_convert_wraps_relative_offsets_instead_of_overflowing() {
    let values = vec![b"a".to_vec(), b"b".to_vec()];
    let mut stored = crate::batch::test_builder::TestBatch::new(0, values).encode_raw_snappy();
    stored[..8].copy_from_slice(&i64::MAX.to_be_bytes());
    let converted = down_convert(&stored, 1, 0, 1 << 16).unwrap();
    // One snappy wrapper (magic 1) at the last record's offset, holding both records.
    assert_eq!(converted[..8], i64::MIN.to_be_bytes());
    assert_eq!(converted[16], 1, "magic of the wrapper");
    let set = decode_message_set(&Bytes::from(converted), MAX_DECOMPRESSED_BYTES).unwrap();
    assert_eq!(set.records.len(), 2);
}
