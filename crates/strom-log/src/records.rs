//! Whole records inside uncompressed v2 batches, for the broker's own internal topics
//! (`__consumer_offsets`): encoding a batch of key/value records, and decoding one back.
//!
//! Client data never goes through here: the produce and fetch paths keep batches opaque. Internal
//! topics are written uncompressed by the broker itself, so decoding them needs no codec; a
//! compressed batch is refused with [`BatchError::Compressed`].

use bytes::Bytes;

use crate::batch::{for_each_record, BatchError, BatchHeader, BATCH_HEADER_LEN};

/// One record: its offset and timestamp, and its key and value (`None` is null, a tombstone
/// when it is the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's offset.
    pub offset: i64,
    /// Its timestamp (ms).
    pub timestamp: i64,
    /// The key, or null.
    pub key: Option<Bytes>,
    /// The value, or null.
    pub value: Option<Bytes>,
}

/// Appends a zig-zag varint (the record format's varlong).
pub(crate) fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        if raw < 0x80 {
            out.push(raw as u8);
            return;
        }
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varlong(out, -1),
    }
}

/// A record's key and value to encode; `None` is null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Encodes an uncompressed v2 batch (base offset 0, no producer) of `records` (key, value), all
/// with timestamp `timestamp_ms`. Panics on an empty list: a batch holds at least one record.
pub fn encode_batch(records: &[KeyValue<'_>], timestamp_ms: i64) -> Vec<u8> {
    encode(records, timestamp_ms, None)
}

/// The producer fields of a transactional batch the broker writes itself (the group
/// coordinator's TxnOffsetCommit records in `__consumer_offsets`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnProducer {
    /// The transactional producer's id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The sequence of the first record (the log checks it like a producer's).
    pub base_sequence: i32,
}

/// [`encode_batch`] as a transactional batch of `producer` (attribute bit 4 and the producer
/// fields set), which stays pending in the log until that producer's COMMIT or ABORT marker.
pub fn encode_transactional_batch(
    records: &[KeyValue<'_>],
    timestamp_ms: i64,
    producer: TxnProducer,
) -> Vec<u8> {
    encode(records, timestamp_ms, Some(producer))
}

fn encode(records: &[KeyValue<'_>], timestamp_ms: i64, producer: Option<TxnProducer>) -> Vec<u8> {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let mut body = Vec::new();
    for (index, (key, value)) in records.iter().enumerate() {
        let mut record = vec![0u8]; // attributes
        put_varlong(&mut record, 0); // timestamp delta
        put_varlong(&mut record, index as i64); // offset delta
        put_bytes(&mut record, *key);
        put_bytes(&mut record, *value);
        put_varlong(&mut record, 0); // no headers
        put_varlong(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let count = records.len() as i32;
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset, assigned on append
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, set by seal
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch, assigned on append
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // CRC, set by seal
                                                // Attributes: uncompressed, CreateTime, transactional (bit 4) with a producer.
    let attributes: i16 = if producer.is_some() { 0x10 } else { 0 };
    let producer = producer.unwrap_or(TxnProducer {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    });
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&(count - 1).to_be_bytes());
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(&producer.producer_id.to_be_bytes());
    out.extend_from_slice(&producer.producer_epoch.to_be_bytes());
    out.extend_from_slice(&producer.base_sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&body);
    crate::batch::seal(&mut out);
    out
}

/// Decodes every record of one uncompressed batch (`batch` holds exactly that batch).
pub fn decode_records(batch: &Bytes) -> Result<Vec<Record>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.compression() != 0 {
        return Err(BatchError::Compressed(header.compression()));
    }
    let end = header.total_len().min(batch.len()).max(BATCH_HEADER_LEN);
    let section = batch.slice(BATCH_HEADER_LEN.min(batch.len())..end.min(batch.len()));
    let mut out = Vec::with_capacity((header.records_count.max(0) as usize).min(4096));
    for_each_record(&header, &section, |record| {
        out.push(Record {
            offset: record.offset,
            timestamp: header.base_timestamp.wrapping_add(record.timestamp_delta),
            key: record.key.map(|k| section.slice_ref(k)),
            value: record.value.map(|v| section.slice_ref(v)),
        });
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encode_then_decode() {
        let batch = encode_batch(
            &[
                (Some(b"k1"), Some(b"v1")),
                (Some(b"k2"), None),
                (None, Some(b"")),
            ],
            1234,
        );
        crate::batch::validate_batches(&batch).expect("a valid batch");
        let records = decode_records(&Bytes::from(batch)).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(records[1].value, None);
        assert_eq!(records[2].key, None);
        assert_eq!(records[2].value.as_deref(), Some(&b""[..]));
        assert_eq!(records[2].offset, 2);
        assert!(records.iter().all(|r| r.timestamp == 1234));
    }

    #[test]
    fn a_transactional_batch_carries_its_producer() {
        let producer = TxnProducer {
            producer_id: 77,
            producer_epoch: 3,
            base_sequence: 9,
        };
        let batch = encode_transactional_batch(&[(Some(b"k"), Some(b"v"))], 5, producer);
        let headers = crate::batch::validate_batches(&batch).expect("a valid batch");
        let header = headers[0];
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (77, 3, 9)
        );
        let plain = BatchHeader::parse(&encode_batch(&[(Some(b"k"), None)], 5)).unwrap();
        assert!(!plain.is_transactional());
        assert_eq!(plain.producer_id, -1);
        let records = decode_records(&Bytes::from(batch)).unwrap();
        assert_eq!(records[0].value.as_deref(), Some(&b"v"[..]));
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_records(&Bytes::from(bytes));
        }

        #[test]
        fn round_trip(records in proptest::collection::vec((proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50))), 1..20)) {
            let refs: Vec<KeyValue<'_>> = records.iter().map(|(k, v)| (k.as_deref(), v.as_deref())).collect();
            let batch = Bytes::from(encode_batch(&refs, 7));
            crate::batch::validate_batches(&batch).unwrap();
            let decoded = decode_records(&batch).unwrap();
            prop_assert_eq!(decoded.len(), records.len());
            for (d, (k, v)) in decoded.iter().zip(&records) {
                prop_assert_eq!(d.key.as_deref(), k.as_deref());
                prop_assert_eq!(d.value.as_deref(), v.as_deref());
            }
        }
    }
}
