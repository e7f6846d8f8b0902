//! Transaction markers: the control batches (attributes: control and transactional bits) that
//! end a producer's transaction in a partition, as the transaction coordinator has them
//! written (WriteTxnMarkers). Building one ([`marker_batch`]) and reading one back
//! ([`parse_marker`]).
//!
//! A marker batch holds one control record: key = version i16 (0) + type i16 (0 ABORT,
//! 1 COMMIT), value = version i16 (0) + coordinator epoch i32. Other control types (Kafka's
//! LEADER_CHANGE and snapshot records) are not transaction markers and [`parse_marker`] returns
//! `None` for them. This module does not apply markers: [`crate::log::Log`] and
//! [`crate::producer_state`] do.

use crate::batch::{for_each_record, BatchHeader, BATCH_HEADER_LEN};
use crate::records::put_varlong;

/// Control record type of an ABORT marker.
pub const ABORT: i16 = 0;
/// Control record type of a COMMIT marker.
pub const COMMIT: i16 = 1;
/// Attributes of a marker batch: control and transactional, uncompressed, CreateTime.
const MARKER_ATTRIBUTES: i16 = 0x20 | 0x10;

/// A transaction marker for one producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// The producer's epoch (the coordinator's, possibly bumped).
    pub producer_epoch: i16,
    /// The epoch of the coordinator that decided the outcome.
    pub coordinator_epoch: i32,
    /// COMMIT if true, ABORT if false.
    pub commit: bool,
}

/// Encodes the marker batch (base offset 0 and leader epoch -1, assigned on append), stamped
/// `timestamp_ms`.
pub fn marker_batch(marker: &TxnMarker, timestamp_ms: i64) -> Vec<u8> {
    let kind = if marker.commit { COMMIT } else { ABORT };
    let mut record = vec![0u8]; // attributes
    put_varlong(&mut record, 0); // timestamp delta
    put_varlong(&mut record, 0); // offset delta
    put_varlong(&mut record, 4);
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&kind.to_be_bytes());
    put_varlong(&mut record, 6);
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    put_varlong(&mut record, 0); // no headers
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + record.len() + 1);
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, set by seal
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // CRC, set by seal
    out.extend_from_slice(&MARKER_ATTRIBUTES.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(&marker.producer_id.to_be_bytes());
    out.extend_from_slice(&marker.producer_epoch.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    out.extend_from_slice(&1i32.to_be_bytes()); // one record
    put_varlong(&mut out, record.len() as i64);
    out.extend_from_slice(&record);
    crate::batch::seal(&mut out);
    out
}

/// Reads the marker of a control batch (`batch` starts at its header and holds it whole):
/// `None` if it is not a control batch, is compressed, or its first record is not a
/// well-formed COMMIT or ABORT (another control type, a short key or value).
pub fn parse_marker(header: &BatchHeader, batch: &[u8]) -> Option<TxnMarker> {
    let total = header.total_len();
    if !header.is_control()
        || header.compression() != 0
        || total < BATCH_HEADER_LEN
        || batch.len() < total
    {
        return None;
    }
    let mut found = None;
    let mut first = true;
    // A marker batch holds one record; only the first is read.
    let one = BatchHeader {
        records_count: header.records_count.min(1),
        ..*header
    };
    let section = &batch[BATCH_HEADER_LEN..total];
    for_each_record(&one, section, |record| {
        if !std::mem::take(&mut first) {
            return;
        }
        let (Some(key), Some(value)) = (record.key, record.value) else {
            return;
        };
        if key.len() < 4 || value.len() < 6 {
            return;
        }
        let kind = i16::from_be_bytes([key[2], key[3]]);
        if kind != ABORT && kind != COMMIT {
            return;
        }
        found = Some(TxnMarker {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            coordinator_epoch: i32::from_be_bytes(value[2..6].try_into().expect("4 bytes")),
            commit: kind == COMMIT,
        });
    })
    .ok()?;
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_parse() {
        for commit in [true, false] {
            let marker = TxnMarker {
                producer_id: 42,
                producer_epoch: 3,
                coordinator_epoch: 9,
                commit,
            };
            let bytes = marker_batch(&marker, 1000);
            let headers = crate::batch::validate_batches(&bytes).unwrap();
            let header = headers[0];
            assert!(header.is_control() && header.is_transactional());
            assert_eq!(header.records_count, 1);
            assert_eq!(header.base_sequence, -1);
            assert_eq!(parse_marker(&header, &bytes), Some(marker));
            // Key: version 0, type; value: version 0, coordinator epoch.
            let key_type = if commit { 1u8 } else { 0 };
            let tail = &bytes[bytes.len() - 12..];
            assert_eq!(tail, &[0, 0, 0, key_type, 12, 0, 0, 0, 0, 0, 9, 0]);
        }
    }

    #[test]
    fn garbage_is_not_a_marker() {
        let marker = TxnMarker {
            producer_id: 1,
            producer_epoch: 0,
            coordinator_epoch: 0,
            commit: true,
        };
        let bytes = marker_batch(&marker, 0);
        let header = BatchHeader::parse(&bytes).unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(parse_marker(&header, &bytes[..cut]), None);
        }
        // A header whose length field is shorter than a header (found by the txn_index fuzz
        // target): parse_marker is public and must not trust it.
        let mut short = bytes.clone();
        short[8..12].copy_from_slice(&8i32.to_be_bytes());
        let header = BatchHeader::parse(&short).unwrap();
        assert_eq!(parse_marker(&header, &short), None);
        let data = crate::records::encode_batch(&[(Some(b"k"), Some(b"v"))], 0);
        let header = BatchHeader::parse(&data).unwrap();
        assert_eq!(parse_marker(&header, &data), None);
    }
}
