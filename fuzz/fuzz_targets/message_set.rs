//! Arbitrary bytes as a Produce v0–v2 `records` blob (a magic 0/1 message set): the decoder
//! must never panic, and whatever it accepts must convert to one valid v2 batch holding the
//! same records, which down-converts back to the same keys and values at both magics.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strom_log::batch::{assign_offset, validate_batch};
use strom_log::legacy::{decode_message_set, down_convert, to_v2_batch, NO_TIMESTAMP};

/// Small enough that a bomb is cut off quickly, large enough for real wrappers.
const INFLATE_LIMIT: usize = 4 << 20;

fuzz_target!(|data: &[u8]| {
    // Stored bytes are trusted more, but down-conversion must not panic on anything either.
    let _ = down_convert(data, 1, 0, 1 << 16);

    let Ok(set) = decode_message_set(&Bytes::copy_from_slice(data), INFLATE_LIMIT) else {
        return;
    };
    let batch = to_v2_batch(&set).expect("an accepted set converts");
    let Some(mut batch) = batch else {
        assert!(set.records.is_empty());
        return;
    };
    let header = validate_batch(&batch, 0).expect("the converted batch is valid");
    assert_eq!(header.records_count as usize, set.records.len());
    assert_eq!(header.compression(), set.codec);
    assign_offset(&mut batch, 1000, 0);
    for magic in [0i8, 1] {
        let converted = down_convert(&batch, magic, 1000, usize::MAX).expect("down-converts");
        let back = decode_message_set(&Bytes::from(converted), usize::MAX)
            .expect("a down-converted set decodes");
        assert_eq!(back.records.len(), set.records.len());
        for (i, (b, r)) in back.records.iter().zip(&set.records).enumerate() {
            assert_eq!(b.offset, 1000 + i as i64);
            assert_eq!(b.key, r.key);
            assert_eq!(b.value, r.value);
            let timestamp = if magic == 0 {
                NO_TIMESTAMP
            } else {
                r.timestamp
            };
            assert_eq!(b.timestamp, timestamp);
        }
    }
});
