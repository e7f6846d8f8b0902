//! The v2 record batch header (Kafka's `DefaultRecordBatch`), without per-record decoding.
//!
//! This module owns the byte layout of a record batch header, the checks the broker applies to a
//! produce request's `records` blob before storing it, and the two in-place rewrites the broker is
//! allowed (offset/leader epoch, LogAppendTime or the true max timestamp). It deliberately does not decode records, except
//! for [`record_offsets_and_timestamps`], which only timestamp lookups use and which inflates a
//! compressed batch's records through [`crate::compression`] (capped in size).
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after this field),
//! partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17 (CRC-32C over bytes 21..end),
//! attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35,
//! producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53, recordsCount i32 @57,
//! then the records.

/// Length of the fixed v2 batch header.
pub const BATCH_HEADER_LEN: usize = 61;
/// Size of the `baseOffset` and `batchLength` fields, which `batchLength` does not count.
pub const LOG_OVERHEAD: usize = 12;
/// The only record format this engine stores.
pub const CURRENT_MAGIC: i8 = 2;

use std::borrow::Cow;

use crate::compression::{decompress, DecompressError, MAX_DECOMPRESSED_BYTES};

const BATCH_LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_MASK: i16 = 0x08;
const TRANSACTIONAL_MASK: i16 = 0x10;
const CONTROL_MASK: i16 = 0x20;

/// Why bytes are not a valid v2 record batch. Every variant carries the numbers involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes are present than the header or the declared length needs.
    #[error("record batch at byte {position} truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Start of the batch within the buffer.
        position: usize,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// `batchLength` is smaller than a header or larger than allowed.
    #[error("record batch at byte {position} has invalid batchLength {batch_length}")]
    InvalidLength {
        /// Start of the batch within the buffer.
        position: usize,
        /// The declared `batchLength`.
        batch_length: i32,
    },
    /// The magic byte is not 2 (v0/v1 message sets are not supported).
    #[error("unsupported record format magic {0}; only v2 (magic 2) is supported")]
    UnsupportedMagic(i8),
    /// The stored CRC-32C does not match the bytes.
    #[error("record batch CRC mismatch: header says {expected:#010x}, bytes give {actual:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        expected: u32,
        /// The CRC computed over the bytes.
        actual: u32,
    },
    /// `lastOffsetDelta` and `recordsCount` disagree or are not positive.
    #[error("record batch has lastOffsetDelta {last_offset_delta} and recordsCount {records_count}; need recordsCount = lastOffsetDelta + 1 > 0")]
    InvalidOffsets {
        /// The declared `lastOffsetDelta`.
        last_offset_delta: i32,
        /// The declared `recordsCount`.
        records_count: i32,
    },
    /// A record inside an uncompressed batch could not be decoded.
    #[error("record {index} of the batch is malformed: {reason}")]
    InvalidRecord {
        /// Index of the record within the batch.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Records of a compressed batch were asked for where only uncompressed batches are decoded
    /// (the broker's internal topics, [`crate::records`]).
    #[error("record batch is compressed (codec {0}); records are not decoded")]
    Compressed(u8),
    /// The records of a compressed batch could not be inflated (malformed, unknown codec, or
    /// past the size cap).
    #[error("record batch cannot be decompressed: {0}")]
    Decompression(#[from] DecompressError),
}

/// The fixed 61-byte header of a v2 record batch. Field names follow Kafka's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Length of the batch after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch of the broker that appended the batch.
    pub partition_leader_epoch: i32,
    /// Record format version; 2 for every batch this engine stores.
    pub magic: i8,
    /// CRC-32C over bytes 21..end.
    pub crc: u32,
    /// Compression (bits 0-2), timestamp type (3), transactional (4), control (5).
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time for LogAppendTime batches).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

impl BatchHeader {
    /// Parses the header at the start of `buf`, which must hold at least [`BATCH_HEADER_LEN`]
    /// bytes. Neither the magic nor the CRC is checked.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated {
                position: 0,
                needed: BATCH_HEADER_LEN,
                available: buf.len(),
            });
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, BATCH_LENGTH_OFFSET),
            partition_leader_epoch: be_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
            magic: buf[MAGIC_OFFSET] as i8,
            crc: u32::from_be_bytes(buf[CRC_OFFSET..CRC_OFFSET + 4].try_into().expect("4")),
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_OFFSET),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(buf, PRODUCER_ID_OFFSET),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_OFFSET),
            base_sequence: be_i32(buf, BASE_SEQUENCE_OFFSET),
            records_count: be_i32(buf, RECORDS_COUNT_OFFSET),
        })
    }

    /// Total size of the batch in bytes: `batch_length` plus the 12 bytes before it. A negative
    /// `batch_length` gives a value below [`BATCH_HEADER_LEN`], which callers reject.
    pub fn total_len(&self) -> usize {
        (self.batch_length.max(0) as usize) + LOG_OVERHEAD
    }

    /// Offset of the last record in the batch.
    ///
    /// Saturates instead of overflowing: `baseOffset` is not covered by the CRC, so a damaged
    /// batch read back from disk can carry any value; recovery then sees offsets out of order.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_MASK != 0
    }

    /// Whether the batch is a control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_MASK != 0
    }

    /// Whether the batch's timestamps are the broker's append time (`LogAppendTime`).
    pub fn timestamp_type_log_append(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_MASK != 0
    }

    /// Sequence number of the last record, wrapping past `i32::MAX` to 0 as Kafka does; -1 if
    /// the batch carries no sequence.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: adds `increment` to a sequence number,
/// wrapping from `i32::MAX` to 0. A sequence of -1 (none) stays -1.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence < 0 {
        return sequence;
    }
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Checks one batch at the start of `buf` (which may hold more) as a producer must send it and
/// returns its header: [`validate_stored_batch`], and its records are dense
/// (`records_count == last_offset_delta + 1`). `position` is only used in error messages.
pub fn validate_batch(buf: &[u8], position: usize) -> Result<BatchHeader, BatchError> {
    let header = validate_stored_batch(buf, position)?;
    if header.records_count <= 0
        || i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1
    {
        return Err(BatchError::InvalidOffsets {
            last_offset_delta: header.last_offset_delta,
            records_count: header.records_count,
        });
    }
    Ok(header)
}

/// Checks one batch at the start of `buf` as the log may hold it: length sane and fully present,
/// magic 2, CRC-32C correct, `last_offset_delta >= 0` and at most `last_offset_delta + 1`
/// records. Compaction leaves batches with fewer records than offsets (even none: the last
/// batch of a producer is kept empty), so recovery accepts those.
pub fn validate_stored_batch(buf: &[u8], position: usize) -> Result<BatchHeader, BatchError> {
    if buf.len() <= MAGIC_OFFSET {
        return Err(BatchError::Truncated {
            position,
            needed: BATCH_HEADER_LEN,
            available: buf.len(),
        });
    }
    let magic = buf[MAGIC_OFFSET] as i8;
    if magic != CURRENT_MAGIC {
        return Err(BatchError::UnsupportedMagic(magic));
    }
    let header = BatchHeader::parse(buf).map_err(|_| BatchError::Truncated {
        position,
        needed: BATCH_HEADER_LEN,
        available: buf.len(),
    })?;
    if header.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength {
            position,
            batch_length: header.batch_length,
        });
    }
    let total = header.total_len();
    if total > buf.len() {
        return Err(BatchError::Truncated {
            position,
            needed: total,
            available: buf.len(),
        });
    }
    let actual = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..total]);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch {
            expected: header.crc,
            actual,
        });
    }
    if header.last_offset_delta < 0
        || header.records_count < 0
        || i64::from(header.records_count) > i64::from(header.last_offset_delta) + 1
    {
        return Err(BatchError::InvalidOffsets {
            last_offset_delta: header.last_offset_delta,
            records_count: header.records_count,
        });
    }
    Ok(header)
}

/// Splits a produce `records` blob into validated batches: each length sane and fully present,
/// magic 2 (older magic gives [`BatchError::UnsupportedMagic`]), CRC-32C correct,
/// `last_offset_delta >= 0` and `records_count == last_offset_delta + 1`.
pub fn validate_batches(records: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    let mut headers = Vec::new();
    let mut position = 0;
    while position < records.len() {
        let header = validate_batch(&records[position..], position)?;
        position += header.total_len();
        headers.push(header);
    }
    Ok(headers)
}

/// Rewrites `baseOffset` and `partitionLeaderEpoch` of the batch in place. Neither field is
/// covered by the CRC, so the batch stays valid.
pub fn assign_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    assert!(
        batch.len() >= BATCH_HEADER_LEN,
        "assign_offset on a short batch"
    );
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Stamps the batch with the broker's append time as Kafka does for v2 batches
/// (`DefaultRecordBatch.setMaxTimestamp`): sets the LogAppendTime attribute bit and
/// `maxTimestamp`, leaves `baseTimestamp` and the records alone, and recomputes the CRC.
/// Readers of a LogAppendTime batch use `maxTimestamp` for every record.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    assert!(
        batch.len() >= BATCH_HEADER_LEN,
        "set_log_append_time on a short batch"
    );
    let attributes = be_i16(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_MASK;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now_ms.to_be_bytes());
    seal(batch);
}

/// Sets a CreateTime batch's `maxTimestamp` to the largest record timestamp the broker found
/// ([`crate::validate::check_records`]) and recomputes the CRC, as Kafka's `LogValidator` does
/// (`setMaxTimestamp`). The records and every other field stay.
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) {
    assert!(
        batch.len() >= BATCH_HEADER_LEN,
        "set_max_timestamp on a short batch"
    );
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&max_timestamp.to_be_bytes());
    seal(batch);
}

/// Makes a batch whose fields or records were changed consistent again: `batchLength` from the
/// buffer's length (which must be exactly the batch) and the CRC-32C over the attributes on.
pub(crate) fn seal(batch: &mut [u8]) {
    let length = (batch.len() - LOG_OVERHEAD) as i32;
    batch[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Finishes a batch whose records section was replaced by `records_count` uncompressed
/// records (compaction): clears the codec bits, sets the count and seals it. Everything else in
/// the header (base offset, `lastOffsetDelta`, timestamps, producer fields) stays.
pub(crate) fn seal_rewritten(batch: &mut [u8], records_count: i32) {
    let attributes = be_i16(batch, ATTRIBUTES_OFFSET) & !COMPRESSION_MASK;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
        .copy_from_slice(&records_count.to_be_bytes());
    seal(batch);
}

/// One record of a batch's records section, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Absolute offset (the batch's base offset plus the record's delta).
    pub offset: i64,
    /// The record's timestamp delta from the batch's base timestamp.
    pub timestamp_delta: i64,
    /// The key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The whole record as stored: its length varint and its body.
    pub raw: &'a [u8],
}

/// Calls `each` for every record of a batch's records section (`records`, already inflated if
/// the batch is compressed), checking every length against the section. Headers of records are
/// not parsed. The one record decoder of the crate: timestamp lookups, internal-topic decoding
/// and compaction all read records through it.
pub fn for_each_record<'a>(
    header: &BatchHeader,
    records: &'a [u8],
    mut each: impl FnMut(RecordView<'a>),
) -> Result<(), BatchError> {
    let count = header.records_count.max(0) as usize;
    let end = records.len();
    let mut at = 0;
    for index in 0..count {
        let bad = |reason| BatchError::InvalidRecord { index, reason };
        let start = at;
        let length = read_varlong(records, &mut at, 5).ok_or(bad("truncated length"))?;
        if length < 0 || at as i64 + length > end as i64 {
            return Err(bad("length beyond the batch"));
        }
        let record_end = at + length as usize;
        let body = &records[..record_end];
        at += 1; // attributes
        let timestamp_delta = read_varlong(body, &mut at, 10).ok_or(bad("bad timestamp delta"))?;
        let offset_delta = read_varlong(body, &mut at, 5).ok_or(bad("bad offset delta"))?;
        let mut field = |what| -> Result<Option<&'a [u8]>, BatchError> {
            let len = read_varlong(body, &mut at, 5).ok_or(bad(what))?;
            if len < 0 {
                return Ok(None);
            }
            let stop = at
                .checked_add(len as usize)
                .filter(|s| *s <= record_end)
                .ok_or(bad(what))?;
            let field = &records[at..stop];
            at = stop;
            Ok(Some(field))
        };
        let key = field("bad key length")?;
        let value = field("bad value length")?;
        each(RecordView {
            offset: header.base_offset.wrapping_add(offset_delta),
            timestamp_delta,
            key,
            value,
            raw: &records[start..record_end],
        });
        at = record_end;
    }
    Ok(())
}

/// [`for_each_record`] over a whole batch (`batch` starts at its header), inflating a
/// compressed batch first (to at most `limit` bytes).
pub fn for_each_record_in(
    batch: &[u8],
    header: &BatchHeader,
    limit: usize,
    each: impl FnMut(RecordView<'_>),
) -> Result<(), BatchError> {
    let records = decompress_records(batch, header, limit)?;
    for_each_record(header, &records, each)
}

/// Reads a zig-zag varint of at most `max_bytes` bytes from `buf[*at..]`.
pub(crate) fn read_varlong(buf: &[u8], at: &mut usize, max_bytes: usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let byte = *buf.get(*at)?;
        *at += 1;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// The records section of one batch (`batch` starts with its header and holds at least the
/// whole batch), inflated if the batch is compressed; borrowed as is if it is not.
pub fn decompress_records<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    limit: usize,
) -> Result<Cow<'a, [u8]>, DecompressError> {
    let end = header
        .total_len()
        .min(batch.len())
        .max(BATCH_HEADER_LEN.min(batch.len()));
    let records = &batch[BATCH_HEADER_LEN.min(end)..end];
    match header.compression() {
        0 => Ok(Cow::Borrowed(records)),
        codec => decompress(codec, records, limit).map(Cow::Owned),
    }
}

/// Lists `(offset, timestamp)` of every record of a batch (`batch` is exactly one batch, header
/// included). A compressed batch's records are inflated first, to at most
/// [`MAX_DECOMPRESSED_BYTES`]; past that, or if they are malformed, the answer is
/// [`BatchError::Decompression`]. For LogAppendTime batches every record's timestamp is the
/// batch's `maxTimestamp`, as Kafka's readers do.
pub fn record_offsets_and_timestamps(batch: &[u8]) -> Result<Vec<(i64, i64)>, BatchError> {
    record_offsets_and_timestamps_capped(batch, MAX_DECOMPRESSED_BYTES)
}

/// [`record_offsets_and_timestamps`] with the decompression cap as an argument.
pub(crate) fn record_offsets_and_timestamps_capped(
    batch: &[u8],
    limit: usize,
) -> Result<Vec<(i64, i64)>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let mut out = Vec::with_capacity((header.records_count.max(0) as usize).min(4096));
    for_each_record_in(batch, &header, limit, |record| {
        let timestamp = if header.timestamp_type_log_append() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(record.timestamp_delta)
        };
        out.push((record.offset, timestamp));
    })?;
    Ok(out)
}

/// A test-only encoder of v2 batches with real varint records and a correct CRC-32C.
#[cfg(test)]
pub(crate) mod test_builder;

#[cfg(test)]
mod tests;
