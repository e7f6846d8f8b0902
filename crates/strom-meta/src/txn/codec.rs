//! The `__transaction_state` record layout, as Kafka writes it (`TransactionLogKey` and
//! `TransactionLogValue`), so a log written by Strom reads in Kafka's tools and back.
//!
//! Key (version 0 only): `version: i16 = 0`, `transactional_id: string` (i16 length, UTF-8).
//!
//! Value: `version: i16` then, for version 0 (classic encoding): `producer_id: i64`,
//! `producer_epoch: i16`, `transaction_timeout_ms: i32`, `transaction_status: i8`,
//! `transaction_partitions: nullable array` (i32 count, -1 for null) of (`topic: string`,
//! `partition_ids: [i32]`), `last_update_timestamp_ms: i64`, `start_timestamp_ms: i64`.
//! Version 1 is the flexible encoding of the same fields (compact strings and arrays, an
//! empty tagged-field section after each partition entry) followed by tagged fields: tag 0
//! `PreviousProducerId` (i64, default -1), tag 1 `NextProducerId` (i64, default -1), tag 2
//! `ClientTransactionVersion` (i16, default 0); unknown tags are skipped. A record without a
//! value (a tombstone) removes the transactional id: the shell passes `None`.
//!
//! Decoding never panics: malformed input is a [`TxnLogError`]. This module does not own the
//! record batches the records travel in (strom-log) nor what the states mean ([`super`]).

use std::collections::BTreeMap;

use super::TxnState;
use crate::replication::TopicPartition;

/// Why a `__transaction_state` record did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnLogError {
    /// The input ended inside a field.
    #[error("transaction log record truncated at byte {0}")]
    Truncated(usize),
    /// A key or value version this code does not know.
    #[error("unknown transaction log {what} version {version}")]
    UnknownVersion {
        /// "key" or "value".
        what: &'static str,
        /// The version read.
        version: i16,
    },
    /// A field holds a value the layout does not allow (negative length, bad UTF-8, state byte).
    #[error("invalid transaction log field {0}")]
    Invalid(&'static str),
    /// Bytes were left after the record.
    #[error("{0} trailing bytes after the transaction log record")]
    Trailing(usize),
}

/// The value of a `__transaction_state` record: one transactional id's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    /// The producer id in use.
    pub producer_id: i64,
    /// The producer id before the last rotation (-1 for none); version 1 only.
    pub previous_producer_id: i64,
    /// The producer id handed out but not yet in use (-1 for none); version 1 only.
    pub next_producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// The state.
    pub state: TxnState,
    /// The partitions in the transaction (empty outside Ongoing and Prepare*).
    pub partitions: Vec<TopicPartition>,
    /// When the metadata last changed.
    pub last_update_timestamp_ms: i64,
    /// When the transaction started (-1 outside one).
    pub start_timestamp_ms: i64,
    /// The client's transaction version (KIP-890; 0 when unknown); version 1 only.
    pub client_transaction_version: i16,
}

/// Encodes a record key.
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_string(&mut out, transactional_id);
    out
}

/// Decodes a record key into its transactional id.
pub fn decode_key(data: &[u8]) -> Result<String, TxnLogError> {
    let mut reader = Reader { data, at: 0 };
    let version = reader.i16()?;
    if version != 0 {
        return Err(TxnLogError::UnknownVersion {
            what: "key",
            version,
        });
    }
    let id = reader.string()?;
    reader.finish()?;
    Ok(id)
}

/// Encodes a value at `version` (0 or 1; anything else is a programmer error). Version 0
/// drops the fields it has no place for.
pub fn encode_value(value: &TxnLogValue, version: i16) -> Vec<u8> {
    assert!(version == 0 || version == 1, "value version {version}");
    let flexible = version == 1;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&value.producer_id.to_be_bytes());
    out.extend_from_slice(&value.producer_epoch.to_be_bytes());
    out.extend_from_slice(&value.timeout_ms.to_be_bytes());
    out.push(value.state.id() as u8);
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for partition in &value.partitions {
        by_topic
            .entry(&partition.topic)
            .or_default()
            .push(partition.partition);
    }
    put_length(&mut out, by_topic.len(), flexible);
    for (topic, ids) in by_topic {
        if flexible {
            put_compact_string(&mut out, topic);
        } else {
            put_string(&mut out, topic);
        }
        put_length(&mut out, ids.len(), flexible);
        for id in ids {
            out.extend_from_slice(&id.to_be_bytes());
        }
        if flexible {
            out.push(0); // no tagged fields in a partition entry
        }
    }
    out.extend_from_slice(&value.last_update_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&value.start_timestamp_ms.to_be_bytes());
    if flexible {
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if value.previous_producer_id != -1 {
            tags.push((0, value.previous_producer_id.to_be_bytes().to_vec()));
        }
        if value.next_producer_id != -1 {
            tags.push((1, value.next_producer_id.to_be_bytes().to_vec()));
        }
        if value.client_transaction_version != 0 {
            tags.push((2, value.client_transaction_version.to_be_bytes().to_vec()));
        }
        put_uvarint(&mut out, tags.len() as u32);
        for (tag, bytes) in tags {
            put_uvarint(&mut out, tag);
            put_uvarint(&mut out, bytes.len() as u32);
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// Decodes a value (version 0 or 1).
pub fn decode_value(data: &[u8]) -> Result<TxnLogValue, TxnLogError> {
    let mut reader = Reader { data, at: 0 };
    let version = reader.i16()?;
    if version != 0 && version != 1 {
        return Err(TxnLogError::UnknownVersion {
            what: "value",
            version,
        });
    }
    let flexible = version == 1;
    let producer_id = reader.i64()?;
    let producer_epoch = reader.i16()?;
    let timeout_ms = reader.i32()?;
    let state =
        TxnState::from_id(reader.i8()?).ok_or(TxnLogError::Invalid("transaction_status"))?;
    let mut partitions = Vec::new();
    if let Some(topics) = reader.length(flexible)? {
        for _ in 0..topics {
            let topic = if flexible {
                reader.compact_string()?
            } else {
                reader.string()?
            };
            let ids = reader
                .length(flexible)?
                .ok_or(TxnLogError::Invalid("partition_ids"))?;
            for _ in 0..ids {
                partitions.push(TopicPartition::new(topic.clone(), reader.i32()?));
            }
            if flexible {
                reader.skip_tags(|_, _| Ok(()))?;
            }
        }
    }
    let last_update_timestamp_ms = reader.i64()?;
    let start_timestamp_ms = reader.i64()?;
    let mut value = TxnLogValue {
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_timestamp_ms,
        start_timestamp_ms,
        client_transaction_version: 0,
    };
    if flexible {
        reader.skip_tags(|tag, bytes| {
            let wrong = TxnLogError::Invalid("tagged field size");
            match tag {
                0 => {
                    value.previous_producer_id =
                        i64::from_be_bytes(bytes.try_into().map_err(|_| wrong)?)
                }
                1 => {
                    value.next_producer_id =
                        i64::from_be_bytes(bytes.try_into().map_err(|_| wrong)?)
                }
                2 => {
                    value.client_transaction_version =
                        i16::from_be_bytes(bytes.try_into().map_err(|_| wrong)?)
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    reader.finish()?;
    Ok(value)
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    let length = i16::try_from(text.len()).expect("transaction log strings fit an i16 length");
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_compact_string(out: &mut Vec<u8>, text: &str) {
    put_uvarint(out, text.len() as u32 + 1);
    out.extend_from_slice(text.as_bytes());
}

fn put_length(out: &mut Vec<u8>, length: usize, flexible: bool) {
    if flexible {
        put_uvarint(out, length as u32 + 1);
    } else {
        out.extend_from_slice(&(length as i32).to_be_bytes());
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], TxnLogError> {
        let end = self
            .at
            .checked_add(count)
            .filter(|end| *end <= self.data.len());
        let end = end.ok_or(TxnLogError::Truncated(self.at))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn i8(&mut self) -> Result<i8, TxnLogError> {
        Ok(self.take(1)?[0] as i8)
    }

    fn i16(&mut self) -> Result<i16, TxnLogError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn i32(&mut self) -> Result<i32, TxnLogError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, TxnLogError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn uvarint(&mut self) -> Result<u32, TxnLogError> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u32::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or(TxnLogError::Invalid("varint"))?;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(TxnLogError::Invalid("varint"))
    }

    fn text(&mut self, length: usize) -> Result<String, TxnLogError> {
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| TxnLogError::Invalid("string"))
    }

    fn string(&mut self) -> Result<String, TxnLogError> {
        let length = self.i16()?;
        let length = usize::try_from(length).map_err(|_| TxnLogError::Invalid("string length"))?;
        self.text(length)
    }

    fn compact_string(&mut self) -> Result<String, TxnLogError> {
        let length = self.uvarint()?;
        let length = length
            .checked_sub(1)
            .ok_or(TxnLogError::Invalid("compact string"))?;
        // Kafka's strings are at most i16::MAX bytes in either encoding; version 0 could not
        // hold a longer one.
        if length > i16::MAX as u32 {
            return Err(TxnLogError::Invalid("compact string length"));
        }
        self.text(length as usize)
    }

    /// An array length: `None` for a null array. A length larger than the bytes left is
    /// refused before anything is allocated for it.
    fn length(&mut self, flexible: bool) -> Result<Option<usize>, TxnLogError> {
        let length: i64 = if flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| TxnLogError::Invalid("array length"))?;
        if length > self.data.len() - self.at {
            return Err(TxnLogError::Truncated(self.at));
        }
        Ok(Some(length))
    }

    fn skip_tags(
        &mut self,
        mut on_tag: impl FnMut(u32, &[u8]) -> Result<(), TxnLogError>,
    ) -> Result<(), TxnLogError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let bytes = self.take(size)?;
            on_tag(tag, bytes)?;
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), TxnLogError> {
        match self.data.len() - self.at {
            0 => Ok(()),
            left => Err(TxnLogError::Trailing(left)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TxnLogValue {
        TxnLogValue {
            producer_id: 4001,
            previous_producer_id: 17,
            next_producer_id: -1,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: vec![
                TopicPartition::new("a", 0),
                TopicPartition::new("a", 2),
                TopicPartition::new("b", 1),
            ],
            last_update_timestamp_ms: 1_700_000_000_123,
            start_timestamp_ms: 1_700_000_000_000,
            client_transaction_version: 0,
        }
    }

    #[test]
    fn key_bytes_are_kafkas() {
        assert_eq!(encode_key("tx"), vec![0, 0, 0, 2, b't', b'x']);
        assert_eq!(decode_key(&encode_key("tx")).unwrap(), "tx");
        assert_eq!(
            decode_key(&[0, 1, 0, 0]),
            Err(TxnLogError::UnknownVersion {
                what: "key",
                version: 1
            })
        );
    }

    #[test]
    fn value_version_0_layout_by_hand() {
        let mut value = sample();
        value.partitions = vec![TopicPartition::new("t", 5)];
        let mut expected = vec![0, 0];
        expected.extend_from_slice(&4001i64.to_be_bytes());
        expected.extend_from_slice(&3i16.to_be_bytes());
        expected.extend_from_slice(&60_000i32.to_be_bytes());
        expected.push(1); // Ongoing
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b't']);
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.extend_from_slice(&5i32.to_be_bytes());
        expected.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(encode_value(&value, 0), expected);
        let decoded = decode_value(&expected).unwrap();
        assert_eq!(
            decoded.previous_producer_id, -1,
            "version 0 has no previous producer id"
        );
        assert_eq!(decoded.partitions, value.partitions);
    }

    #[test]
    fn value_version_1_round_trips_with_tags() {
        let value = sample();
        let bytes = encode_value(&value, 1);
        assert_eq!(decode_value(&bytes).unwrap(), value);
        // Tagged fields: one (tag 0, 8 bytes), at the very end.
        assert_eq!(&bytes[bytes.len() - 11..bytes.len() - 8], &[1, 0, 8]);
        let mut null_partitions = encode_value(
            &TxnLogValue {
                partitions: vec![],
                ..value
            },
            0,
        );
        null_partitions[17..21].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(decode_value(&null_partitions)
            .unwrap()
            .partitions
            .is_empty());
    }

    #[test]
    fn malformed_values_are_errors() {
        let bytes = encode_value(&sample(), 1);
        for cut in 0..bytes.len() {
            assert!(decode_value(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_state = bytes.clone();
        bad_state[16] = 9;
        assert_eq!(
            decode_value(&bad_state),
            Err(TxnLogError::Invalid("transaction_status"))
        );
        let mut trailing = bytes;
        trailing.push(0);
        assert_eq!(decode_value(&trailing), Err(TxnLogError::Trailing(1)));
        assert!(decode_value(&[0, 2]).is_err());
    }
}
