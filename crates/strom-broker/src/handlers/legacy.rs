//! The data path of clients older than record batch v2: Produce v0–v2 and Fetch v0–v3, whose
//! records are message sets of magic 0/1 ([`strom_log::legacy`]), and the zstd rules of KIP-110
//! that protect such clients.
//!
//! kafka-protocol 0.18 has no Produce below v3 or Fetch below v4 (Kafka 4 removed them), so
//! their bodies are decoded with the crate's 0.14 release (`kafka_protocol_3x`, Kafka 3.9's
//! specs) and turned into the 0.18 request types the handlers take
//! ([`crate::protocol::legacy`]): the fields these versions have are a subset of the newer
//! ones. The handlers then branch on the version only where the records are touched: a
//! produced message set becomes one v2 batch before the ordinary append
//! ([`produce_records`]), and a fetch's stored batches are down-converted after the ordinary
//! read ([`fetch_records`]). Produce v3+ and Fetch v4+ pass through a version comparison and
//! nothing else.
//!
//! Kafka's rules followed here (its `KafkaApis`, `LogValidator` and `RecordsUtil` in 3.9):
//! - Produce v0–v2 may carry magic 0/1 message sets or (as some clients send) a v2 batch; v3+
//!   only v2 batches, which the log checks.
//! - zstd is refused below Produce v7 with `UNSUPPORTED_COMPRESSION_TYPE`, whatever the format.
//! - Fetch v0–v1 reads magic 0, v2–v3 magic 1. A partition of a topic whose `compression.type`
//!   is `zstd` answers `UNSUPPORTED_COMPRESSION_TYPE` below Fetch v10; a zstd batch met while
//!   down-converting ends the conversion (the same error if it is the first batch).
//! - `message.downconversion.enable=false` answers `UNSUPPORTED_VERSION` below Fetch v4.
//! - A produced v1 message with the LogAppendTime attribute gets `INVALID_TIMESTAMP`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{ApiKey, ProduceResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable as _;
use strom_log::compression::MAX_DECOMPRESSED_BYTES;
use strom_log::legacy::{self, LegacyError};
use strom_log::FileSlice;

use crate::protocol::legacy::{FETCH_MODERN_MIN, PRODUCE_MODERN_MIN};
use crate::protocol::request::RequestContext;

/// The first Produce version that may carry zstd (KIP-110).
const PRODUCE_ZSTD_MIN: i16 = 7;
/// The first Fetch version that may read zstd (KIP-110).
pub const FETCH_ZSTD_MIN: i16 = 10;

/// Why a partition's produce records are not appended: the error code and a message for the
/// log. Code 0 is an empty message set, which Kafka answers without error and offset -1.
#[derive(Debug)]
pub struct Refused {
    /// The Kafka error code.
    pub code: i16,
    /// What was wrong.
    pub reason: String,
}

/// The records of one partition of a Produce request, as the log appends them: a v0–v2
/// message set converted to one v2 batch, a zstd batch below v7 refused, anything else as
/// sent (the log validates it). `None` stays `None`.
pub fn produce_records(version: i16, records: Option<Bytes>) -> Result<Option<Bytes>, Refused> {
    let Some(records) = records else {
        return Ok(None);
    };
    let magic = legacy::first_magic(&records);
    if version >= PRODUCE_ZSTD_MIN || magic.is_none() {
        return Ok(Some(records));
    }
    if magic == Some(2) {
        // The codec is in the low bits of the attributes' second byte (offset 22).
        if records.len() > 22 && records[22] & 0x07 == 4 {
            return Err(Refused {
                code: E::UnsupportedCompressionType.code(),
                reason: format!("Produce v{version} may not use zstd compression (needs v7)"),
            });
        }
        return Ok(Some(records));
    }
    if version >= PRODUCE_MODERN_MIN {
        // Magic 0/1 in a v3+ request: the log refuses it with its usual answer.
        return Ok(Some(records));
    }
    let set =
        legacy::decode_message_set(&records, MAX_DECOMPRESSED_BYTES).map_err(|e| refused(&e))?;
    if set.records.iter().any(|r| r.log_append_time) {
        // Only the broker stamps LogAppendTime; Kafka's LogValidator refuses it from clients.
        return Err(Refused {
            code: E::InvalidTimestamp.code(),
            reason: "a produced message claims LogAppendTime".into(),
        });
    }
    match legacy::to_v2_batch(&set).map_err(|e| refused(&e))? {
        Some(batch) => Ok(Some(Bytes::from(batch))),
        None => Err(Refused {
            code: 0,
            reason: "empty message set".into(),
        }),
    }
}

fn refused(error: &LegacyError) -> Refused {
    let code = match error {
        LegacyError::Corrupt { .. } => E::CorruptMessage.code(),
        LegacyError::Invalid(_) => E::InvalidRecord.code(),
        LegacyError::UnsupportedCompression(_) => E::UnsupportedCompressionType.code(),
    };
    Refused {
        code,
        reason: error.to_string(),
    }
}

/// Encodes a Produce response: with kafka-protocol 0.18 from v3, with 0.14 below (v0 has no
/// throttle time, v2 adds the log append time).
pub fn produce_response(ctx: &RequestContext, response: &ProduceResponse) -> Bytes {
    if ctx.version >= PRODUCE_MODERN_MIN {
        return ctx.respond(response);
    }
    use kafka_protocol_3x::messages::produce_response as old;
    let mut out = kafka_protocol_3x::messages::ProduceResponse::default();
    out.throttle_time_ms = response.throttle_time_ms;
    for topic in &response.responses {
        let mut t = old::TopicProduceResponse::default();
        t.name = kafka_protocol_3x::messages::TopicName(
            kafka_protocol_3x::protocol::StrBytes::from_string(topic.name.0.to_string()),
        );
        for p in &topic.partition_responses {
            let mut q = old::PartitionProduceResponse::default();
            q.index = p.index;
            q.error_code = p.error_code;
            q.base_offset = p.base_offset;
            q.log_append_time_ms = p.log_append_time_ms;
            t.partition_responses.push(q);
        }
        out.responses.push(t);
    }
    encode_old(ctx, &out)
}

/// Encodes `[size][response header v0][body]` with a kafka-protocol 0.14 body.
fn encode_old<R: kafka_protocol_3x::protocol::Encodable>(ctx: &RequestContext, body: &R) -> Bytes {
    let mut buf = BytesMut::with_capacity(64 + body.compute_size(ctx.version).unwrap_or(0));
    buf.extend_from_slice(&[0; 4]);
    let mut header = ResponseHeader::default();
    header.correlation_id = ctx.correlation_id;
    let encoded = header
        .encode(
            &mut buf,
            ApiKey::Produce.response_header_version(ctx.version),
        )
        .map_err(|e| e.to_string())
        .and_then(|()| {
            body.encode(&mut buf, ctx.version)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = encoded {
        tracing::error!(api = ?ctx.api, version = ctx.version, error = %e, "BUG: response does not encode");
        return Bytes::new();
    }
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

/// The message format a Fetch version reads: magic 0 up to v1, magic 1 up to v3.
pub fn fetch_magic(version: i16) -> i8 {
    if version <= 1 {
        0
    } else {
        1
    }
}

/// The records of one partition for a Fetch below v4: the stored batches in `slice`
/// down-converted (at least the first batch; more while within `max_bytes`), or the error
/// code for the partition.
pub fn fetch_records(
    version: i16,
    slice: &FileSlice,
    fetch_offset: i64,
    max_bytes: usize,
) -> Result<Bytes, i16> {
    let stored = slice.read_to_bytes().map_err(|e| {
        tracing::error!(error = %e, "reading the log failed");
        E::KafkaStorageError.code()
    })?;
    match legacy::down_convert(&stored, fetch_magic(version), fetch_offset, max_bytes) {
        Ok(converted) => Ok(Bytes::from(converted)),
        Err(LegacyError::UnsupportedCompression(_)) => Err(E::UnsupportedCompressionType.code()),
        Err(e) => {
            tracing::error!(error = %e, "down-converting stored batches failed");
            Err(E::CorruptMessage.code())
        }
    }
}

/// The error a Fetch of `version` gets for every partition of a topic before reading, from the
/// topic's effective configuration: zstd topics below v10, disabled down-conversion below v4.
pub fn fetch_topic_error(version: i16, config: &strom_meta::config::TopicConfig) -> i16 {
    if version < FETCH_ZSTD_MIN && config.compression_type == "zstd" {
        E::UnsupportedCompressionType.code()
    } else if version < FETCH_MODERN_MIN && !config.message_downconversion_enable {
        E::UnsupportedVersion.code()
    } else {
        0
    }
}
