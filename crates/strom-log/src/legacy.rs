//! Message formats v0 and v1 (magic 0 and 1, Kafka's "message sets"), for clients older than
//! record batch v2: Produce v0–v2 sends them, Fetch v0–v3 reads them.
//!
//! The log stores v2 batches only. As Kafka ≥ 3.0 does, a produced message set is converted to
//! one v2 batch ([`to_v2_batch`]) and stored through the ordinary append, and a fetch by an old
//! client gets the stored batches down-converted ([`down_convert`]). The modern paths never
//! come here.
//!
//! Layout of one entry of a message set (big-endian): offset i64, message size i32, then the
//! message: crc u32 (CRC-32, IEEE polynomial, over magic..end), magic i8, attributes i8
//! (codec in bits 0-2; in v1 bit 3 is the timestamp type, 1 = LogAppendTime), timestamp i64
//! (v1 only), key (i32 length, -1 for null, bytes), value (the same). A compressed "wrapper"
//! message has a null key and as value the compressed bytes of an inner message set of
//! uncompressed messages of the same magic. Its own offset is that of its last inner message;
//! the inner offsets are absolute in v0 and relative (0, 1, …) in v1. lz4 wrappers of magic 0
//! carry the frame-header checksum of Kafka's old writer (KIP-57, see
//! [`crate::compression::set_lz4_header_checksum`]); Kafka's magic 0 reader ignores that
//! checksum, and so does [`decode_message_set`].
//!
//! Client bytes are untrusted: every length is checked, inflation is capped, nothing panics.

use bytes::Bytes;

use crate::batch::decompress_records;
use crate::batch::{for_each_record, BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};
use crate::compression::{
    codec_name, compress, decompress, set_lz4_header_checksum, MAX_DECOMPRESSED_BYTES,
};

/// Header of a v0 message after the log overhead: crc, magic, attributes, key and value lengths.
const MESSAGE_HEADER_V0: usize = 14;
/// The same for v1, which adds the timestamp.
const MESSAGE_HEADER_V1: usize = 22;
/// Bytes of an entry up to and including the magic byte.
const HEADER_UP_TO_MAGIC: usize = LOG_OVERHEAD + 5;
const CODEC_MASK: u8 = 0x07;
const LOG_APPEND_TIME_MASK: u8 = 0x08;
/// Kafka's `RecordBatch.NO_TIMESTAMP`: what a v0 message (which has none) gets.
pub const NO_TIMESTAMP: i64 = -1;

/// Why a message set is refused. The broker maps each to Kafka's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    /// Bad sizes, CRC or magic, or undecodable compressed data: `CORRUPT_MESSAGE`.
    #[error("corrupt message at byte {position}: {reason}")]
    Corrupt {
        /// Where the message starts in the (inner) message set.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// Well-formed but not allowed (nested compression, mixed magic, a wrapper without a
    /// value): `INVALID_RECORD`.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// zstd in a format that cannot carry it (KIP-110): `UNSUPPORTED_COMPRESSION_TYPE`.
    #[error("{0} compression is not supported in message format v0/v1")]
    UnsupportedCompression(&'static str),
}

fn corrupt(position: usize, reason: impl Into<String>) -> LegacyError {
    LegacyError::Corrupt {
        position,
        reason: reason.into(),
    }
}

/// One record of a decoded message set, with its absolute offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRecord {
    /// The absolute offset the message set gives it (a produced set's offsets are ignored).
    pub offset: i64,
    /// Its timestamp; [`NO_TIMESTAMP`] for magic 0.
    pub timestamp: i64,
    /// True if the timestamp is the broker's append time (v1 attribute bit 3, or its wrapper's).
    pub log_append_time: bool,
    /// The key, `None` for null.
    pub key: Option<Bytes>,
    /// The value, `None` for null (a tombstone).
    pub value: Option<Bytes>,
}

/// A decoded message set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageSet {
    /// Magic of its first message.
    pub magic: i8,
    /// Codec of its last compressed wrapper (Kafka's choice for the converted batch), 0 if none.
    pub codec: u8,
    /// Every record, inner records of wrappers in place of the wrapper.
    pub records: Vec<LegacyRecord>,
}

/// One parsed message (not yet unwrapped).
struct Message {
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

/// The magic byte of the first entry of a produced `records` blob, if it is long enough to
/// have one (the same position in a v2 batch and in a v0/v1 message set).
pub fn first_magic(records: &[u8]) -> Option<i8> {
    records.get(LOG_OVERHEAD + 4).map(|&m| m as i8)
}

/// Decodes a message set of magic 0/1 messages, unwrapping compressed wrappers (inflated to at
/// most `limit` bytes in all). A trailing partial entry is ignored, as Kafka trims it; every
/// whole message must have a valid CRC and sizes.
pub fn decode_message_set(data: &Bytes, limit: usize) -> Result<MessageSet, LegacyError> {
    let mut set = MessageSet::default();
    let mut inflated = 0usize;
    let mut at = 0usize;
    while data.len() - at >= LOG_OVERHEAD {
        let offset = be_i64(data, at);
        let size = be_i32(data, at + 8);
        if size < MESSAGE_HEADER_V0 as i32 {
            return Err(corrupt(
                at,
                format!("message size {size} is below the minimum 14"),
            ));
        }
        if data.len() - at < HEADER_UP_TO_MAGIC {
            break;
        }
        let magic = data[at + LOG_OVERHEAD + 4] as i8;
        if magic == 2 {
            return Err(LegacyError::Invalid(
                "a message set mixes magic 0/1 messages with a v2 record batch".into(),
            ));
        }
        let size = size as usize;
        if data.len() - at - LOG_OVERHEAD < size {
            break; // a partial trailing message, dropped as Kafka does
        }
        let start = at + LOG_OVERHEAD;
        let message = parse_message(&data.slice(start..start + size), at)?;
        if set.records.is_empty() {
            set.magic = message.magic;
        }
        match message.attributes & CODEC_MASK {
            0 => set.records.push(LegacyRecord {
                offset,
                timestamp: message.timestamp,
                log_append_time: message.magic == 1
                    && message.attributes & LOG_APPEND_TIME_MASK != 0,
                key: message.key,
                value: message.value,
            }),
            codec => {
                unwrap(&message, codec, offset, at, limit, &mut inflated, &mut set)?;
                set.codec = codec;
            }
        }
        at = start + size;
    }
    Ok(set)
}

/// Inflates a wrapper message and appends its inner records to `set`.
fn unwrap(
    wrapper: &Message,
    codec: u8,
    wrapper_offset: i64,
    position: usize,
    limit: usize,
    inflated: &mut usize,
    set: &mut MessageSet,
) -> Result<(), LegacyError> {
    if codec == 4 {
        return Err(LegacyError::UnsupportedCompression("zstd"));
    }
    if codec > 4 {
        return Err(corrupt(
            position,
            format!("unknown compression codec {codec}"),
        ));
    }
    let Some(value) = &wrapper.value else {
        return Err(LegacyError::Invalid(
            "a compressed wrapper message has a null value".into(),
        ));
    };
    let inner = if codec == 3 && wrapper.magic == 0 {
        // Magic 0 lz4 frames carry a wrong header checksum (KIP-57), which Kafka ignores.
        let mut frame = value.to_vec();
        set_lz4_header_checksum(&mut frame, false);
        decompress(codec, &frame, limit - *inflated)
    } else {
        decompress(codec, value, limit - *inflated)
    }
    .map_err(|e| corrupt(position, format!("{} wrapper: {e}", codec_name(codec))))?;
    *inflated += inner.len();
    let inner = Bytes::from(inner);
    let wrapper_log_append = wrapper.magic == 1 && wrapper.attributes & LOG_APPEND_TIME_MASK != 0;
    let first = set.records.len();
    let mut at = 0usize;
    while at < inner.len() {
        if inner.len() - at < HEADER_UP_TO_MAGIC {
            return Err(corrupt(
                position,
                "truncated message inside a compressed wrapper",
            ));
        }
        let offset = be_i64(&inner, at);
        let size = be_i32(&inner, at + 8);
        let start = at + LOG_OVERHEAD;
        if size < MESSAGE_HEADER_V0 as i32 || (inner.len() - start) < size as usize {
            return Err(corrupt(
                position,
                format!("inner message of size {size} does not fit its wrapper"),
            ));
        }
        let message = parse_message(&inner.slice(start..start + size as usize), position)?;
        if message.magic != wrapper.magic {
            return Err(LegacyError::Invalid(format!(
                "a magic {} wrapper holds a magic {} message",
                wrapper.magic, message.magic
            )));
        }
        if message.attributes & CODEC_MASK != 0 {
            return Err(LegacyError::Invalid(
                "a compressed wrapper holds a compressed message".into(),
            ));
        }
        set.records.push(LegacyRecord {
            offset,
            timestamp: if wrapper_log_append {
                wrapper.timestamp
            } else {
                message.timestamp
            },
            log_append_time: wrapper_log_append
                || (message.magic == 1 && message.attributes & LOG_APPEND_TIME_MASK != 0),
            key: message.key,
            value: message.value,
        });
        at = start + size as usize;
    }
    if set.records.len() == first {
        return Err(LegacyError::Invalid(
            "a compressed wrapper holds no messages".into(),
        ));
    }
    if wrapper.magic == 1 {
        // Inner offsets are relative; the wrapper's offset is the last one's absolute offset.
        let last_relative = set.records.last().map_or(0, |r| r.offset);
        for record in &mut set.records[first..] {
            record.offset = wrapper_offset
                .wrapping_sub(last_relative)
                .wrapping_add(record.offset);
        }
    }
    Ok(())
}

/// Parses one message (`message` is exactly its bytes after the log overhead) and checks its
/// CRC, magic and sizes. `position` is for error messages.
fn parse_message(message: &Bytes, position: usize) -> Result<Message, LegacyError> {
    let magic = message[4] as i8;
    let header = match magic {
        0 => MESSAGE_HEADER_V0,
        1 => MESSAGE_HEADER_V1,
        other => return Err(corrupt(position, format!("invalid magic {other}"))),
    };
    if message.len() < header {
        return Err(corrupt(
            position,
            format!(
                "a magic {magic} message of {} bytes is shorter than its header",
                message.len()
            ),
        ));
    }
    let stored = u32::from_be_bytes([message[0], message[1], message[2], message[3]]);
    let computed = crc32(&message[4..]);
    if stored != computed {
        return Err(corrupt(
            position,
            format!("CRC mismatch: message says {stored:#010x}, bytes give {computed:#010x}"),
        ));
    }
    let attributes = message[5];
    let (timestamp, mut at) = if magic == 1 {
        (be_i64(message, 6), 14)
    } else {
        (NO_TIMESTAMP, 6)
    };
    let mut field = |what: &str| -> Result<Option<Bytes>, LegacyError> {
        if message.len() - at < 4 {
            return Err(corrupt(position, format!("truncated {what} length")));
        }
        let len = be_i32(message, at);
        at += 4;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || (message.len() - at) < len as usize {
            return Err(corrupt(
                position,
                format!("{what} length {len} does not fit the message"),
            ));
        }
        let bytes = message.slice(at..at + len as usize);
        at += len as usize;
        Ok(Some(bytes))
    };
    let key = field("key")?;
    let value = field("value")?;
    if at != message.len() {
        return Err(corrupt(
            position,
            format!("{} bytes after the value", message.len() - at),
        ));
    }
    Ok(Message {
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

/// Builds the one v2 batch (base offset 0, no producer, CreateTime) that stores a produced
/// message set's records, compressed with the set's codec as Kafka keeps the producer's codec.
/// Record timestamps carry over (v0's are [`NO_TIMESTAMP`]); the batch's max timestamp is the
/// largest. An empty set gives `None`.
pub fn to_v2_batch(set: &MessageSet) -> Result<Option<Vec<u8>>, LegacyError> {
    let Some(first) = set.records.first() else {
        return Ok(None);
    };
    let base_timestamp = first.timestamp;
    let mut records = Vec::new();
    let mut body = Vec::new();
    for (index, record) in set.records.iter().enumerate() {
        body.clear();
        body.push(0); // attributes
        put_varlong(&mut body, record.timestamp.wrapping_sub(base_timestamp));
        put_varlong(&mut body, index as i64);
        put_varbytes(&mut body, record.key.as_deref());
        put_varbytes(&mut body, record.value.as_deref());
        put_varlong(&mut body, 0); // no headers
        put_varlong(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let records =
        compress(set.codec, &records, false).map_err(|e| LegacyError::Invalid(e.to_string()))?;
    let count = set.records.len() as i32;
    let max_timestamp = set
        .records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(NO_TIMESTAMP);
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset, assigned on append
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, set by seal
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch, assigned on append
    out.push(2);
    out.extend_from_slice(&0u32.to_be_bytes()); // CRC, set by seal
    out.extend_from_slice(&i16::from(set.codec).to_be_bytes()); // CreateTime
    out.extend_from_slice(&(count - 1).to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    out.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&records);
    crate::batch::seal(&mut out);
    Ok(Some(out))
}

/// One record to write into a message set: absolute offset, timestamp, key, value.
pub type OutRecord<'a> = (i64, i64, Option<&'a [u8]>, Option<&'a [u8]>);

/// Appends `records` to `out` as magic `magic` messages: each as its own message if `codec` is
/// 0, else as one wrapper compressed with `codec` (offset of the last record; inner offsets
/// absolute for magic 0, relative to the first record for magic 1). `log_append_time` sets
/// the v1 timestamp-type bit (and the wrapper's timestamp is then the first record's, which
/// the caller sets to the append time; otherwise the largest). Does nothing for no records.
pub fn encode_message_set(
    out: &mut Vec<u8>,
    magic: i8,
    codec: u8,
    log_append_time: bool,
    records: &[OutRecord<'_>],
) -> Result<(), LegacyError> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    let type_bit = if magic == 1 && log_append_time {
        LOG_APPEND_TIME_MASK
    } else {
        0
    };
    if codec == 0 {
        for &(offset, timestamp, key, value) in records {
            put_message(out, offset, magic, type_bit, timestamp, key, value);
        }
        return Ok(());
    }
    if codec == 4 {
        return Err(LegacyError::UnsupportedCompression("zstd"));
    }
    let mut inner = Vec::new();
    for &(offset, timestamp, key, value) in records {
        let inner_offset = if magic == 0 {
            offset
        } else {
            offset.wrapping_sub(first.0)
        };
        put_message(
            &mut inner,
            inner_offset,
            magic,
            type_bit,
            timestamp,
            key,
            value,
        );
    }
    let compressed =
        compress(codec, &inner, magic == 0).map_err(|e| LegacyError::Invalid(e.to_string()))?;
    let timestamp = if log_append_time {
        first.1
    } else {
        records.iter().map(|r| r.1).max().unwrap_or(NO_TIMESTAMP)
    };
    put_message(
        out,
        last.0,
        magic,
        codec | type_bit,
        timestamp,
        None,
        Some(&compressed),
    );
    Ok(())
}

/// Appends one message (log overhead included) with its CRC.
fn put_message(
    out: &mut Vec<u8>,
    offset: i64,
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    out.extend_from_slice(&offset.to_be_bytes());
    let size_at = out.len();
    out.extend_from_slice(&[0; 8]); // size and CRC, filled in below
    let crc_from = out.len();
    out.push(magic as u8);
    out.push(attributes);
    if magic == 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            Some(bytes) => {
                out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                out.extend_from_slice(bytes);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let size = (out.len() - size_at - 4) as i32;
    let crc = crc32(&out[crc_from..]);
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    out[size_at + 4..size_at + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Down-converts stored v2 batches (`stored`, as a log read returns them: whole batches,
/// perhaps a partial one at the end, which is dropped) to a message set of magic `magic` for
/// an old fetch, as Kafka's `RecordsUtil.downConvert` does: control batches are dropped,
/// record headers are dropped (v0/v1 cannot carry them), a compressed batch becomes one wrapper
/// compressed with the same codec, records of an uncompressed batch below `fetch_offset` are
/// left out. The first batch with records is always converted; later ones only while the
/// output stays within `max_bytes`. A zstd batch (which v0/v1 cannot carry) ends the
/// conversion; if it is the first, the answer is [`LegacyError::UnsupportedCompression`].
pub fn down_convert(
    stored: &[u8],
    magic: i8,
    fetch_offset: i64,
    max_bytes: usize,
) -> Result<Vec<u8>, LegacyError> {
    let mut out = Vec::with_capacity(stored.len().min(max_bytes) + 256);
    let mut at = 0usize;
    while stored.len() - at >= BATCH_HEADER_LEN {
        let batch = &stored[at..];
        let header = BatchHeader::parse(batch).expect("at least a header's bytes");
        let total = header.total_len();
        if total < BATCH_HEADER_LEN || total > batch.len() {
            break;
        }
        at += total;
        let batch = &batch[..total];
        if header.is_control() || header.records_count <= 0 {
            continue;
        }
        let codec = header.compression();
        if codec == 4 {
            if out.is_empty() {
                return Err(LegacyError::UnsupportedCompression("zstd"));
            }
            break;
        }
        let records = match decompress_records(batch, &header, MAX_DECOMPRESSED_BYTES) {
            Ok(records) => records,
            Err(e) if out.is_empty() => return Err(corrupt(at - total, e.to_string())),
            Err(_) => break,
        };
        let log_append_time = header.timestamp_type_log_append();
        let mut kept: Vec<OutRecord<'_>> =
            Vec::with_capacity((header.records_count as usize).min(4096));
        let decoded = for_each_record(&header, &records, |record| {
            if codec == 0 && record.offset < fetch_offset {
                return;
            }
            let timestamp = if log_append_time {
                header.max_timestamp
            } else {
                header.base_timestamp.wrapping_add(record.timestamp_delta)
            };
            kept.push((record.offset, timestamp, record.key, record.value));
        });
        if let Err(e) = decoded {
            if out.is_empty() {
                return Err(corrupt(at - total, e.to_string()));
            }
            break;
        }
        if kept.is_empty() {
            continue;
        }
        let before = out.len();
        encode_message_set(&mut out, magic, codec, log_append_time, &kept)?;
        if before > 0 && out.len() > max_bytes {
            out.truncate(before);
            break;
        }
    }
    Ok(out)
}

/// CRC-32 (IEEE), the checksum of message formats v0/v1.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    crate::records::put_varlong(out, value);
}

fn put_varbytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varlong(out, -1),
    }
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests;
