//! The record-level checks of a produce batch (Kafka's `LogValidator`), and the batch's true
//! largest timestamp.
//!
//! [`crate::batch`] checks what the header alone can tell (length, magic, CRC, offsets); this
//! module looks at the records: every record decodes and fills exactly the records section,
//! offset deltas are `0..n-1` in order, a compacted topic's records have keys, CreateTime
//! timestamps lie within `message.timestamp.before.max.ms` / `after.max.ms`, and the header's
//! `maxTimestamp` is the largest record timestamp. It does not change the batch: [`Log::append`]
//! rewrites `maxTimestamp` (and the CRC) when [`RecordsCheck::max_timestamp`] differs from it.
//!
//! **When records are decoded.** An uncompressed batch is always walked: the walk reads a few
//! varints per record from the request's buffer, without copying, next to the CRC-32C that has
//! already read every byte. A compressed batch is inflated only when
//! [`needs_inflation`] says so: the header cannot be trusted (`maxTimestamp` is -1 or below
//! `baseTimestamp`, which no honest batch has, since `baseTimestamp` is its first record's
//! timestamp), the topic is compacted (every record needs a key), or timestamp bounds are
//! configured (every record must be checked). Otherwise the compressed records are stored as
//! sent, which is safe for the broker: offsets, indexes, producer state and the fetch path
//! use only the header, which the CRC covers and [`crate::batch::validate_batch`] checked; a
//! `maxTimestamp` that is plausible but wrong can only come from a broken client, and what it
//! misleads (time index, retention) is that client's own topic. ARCHITECTURE.md says more.
//!
//! [`Log::append`]: crate::Log::append

use std::path::Path;

use crate::batch::{decompress_records, read_varlong, BatchError, BatchHeader, BATCH_HEADER_LEN};
use crate::compression::MAX_DECOMPRESSED_BYTES;
use crate::config::LogConfig;
use crate::error::{AppendError, RecordError};

/// Kafka's `NO_TIMESTAMP`: a record or batch without a timestamp.
pub const NO_TIMESTAMP: i64 = -1;

/// At most this many refused records are listed (with a message each) in one response: a
/// compressed batch can inflate to millions of records, and a message per record would cost
/// gigabytes. Kafka lists all; a client sees the rest of such a batch fail with its generic
/// "other record" error.
pub const MAX_LISTED_RECORD_ERRORS: usize = 100_000;

/// What the record checks found in a batch that passed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordsCheck {
    /// The largest record timestamp, if the records were decoded and the topic uses CreateTime;
    /// `None` if the header's `maxTimestamp` is kept as sent (a compressed batch with a plausible
    /// header, or a LogAppendTime topic, whose batches get the append time).
    pub max_timestamp: Option<i64>,
    /// Whether a compressed batch was inflated to check it.
    pub inflated: bool,
}

/// Whether the records of a compressed batch must be inflated on produce under `config`: see
/// the module documentation. Uncompressed batches are always walked.
pub fn needs_inflation(header: &BatchHeader, config: &LogConfig) -> bool {
    if config.compact {
        return true;
    }
    if config.timestamp_type_log_append {
        return false;
    }
    header_untrusted(header) || bounds_configured(config)
}

/// A header whose `maxTimestamp` no honest producer writes: -1 (sarama 1.22 does this) or below
/// the first record's timestamp.
fn header_untrusted(header: &BatchHeader) -> bool {
    header.max_timestamp == NO_TIMESTAMP || header.max_timestamp < header.base_timestamp
}

fn bounds_configured(config: &LogConfig) -> bool {
    config.timestamp_before_max_ms != i64::MAX || config.timestamp_after_max_ms != i64::MAX
}

/// Checks the records of `batch` (exactly one batch, already through
/// [`crate::batch::validate_batch`], so its length, CRC and `recordsCount ==
/// lastOffsetDelta + 1` hold) for a produce to a log with `config` at `now_ms`. `partition`
/// names the log in messages.
///
/// Errors: records that do not decode, offset deltas out of order, or a batch that carries the
/// LogAppendTime bit is `AppendError::InvalidRecord`; keyless records on a compacted topic and
/// timestamps out of bounds are [`AppendError::InvalidRecords`], which lists such records by
/// their index in the batch (KIP-467; the first [`MAX_LISTED_RECORD_ERRORS`]).
pub fn check_records(
    batch: &[u8],
    header: &BatchHeader,
    config: &LogConfig,
    now_ms: i64,
    dir: &Path,
) -> Result<RecordsCheck, AppendError> {
    let partition = dir.file_name().unwrap_or_default().to_string_lossy();
    if header.timestamp_type_log_append() {
        // Kafka answers INVALID_TIMESTAMP, listing every record; Strom refuses the batch as a
        // whole (every record fails the same way, and a short batch may claim billions).
        return Err(AppendError::InvalidRecords {
            timestamp: true,
            message: format!(
                "the batch sets the LogAppendTime timestamp type, which a producer must not set \
                 (topic partition {partition})"
            ),
            records: Vec::new(),
        });
    }
    let compressed = header.compression() != 0;
    if compressed && !needs_inflation(header, config) {
        return Ok(RecordsCheck {
            max_timestamp: None,
            inflated: false,
        });
    }
    let inflated;
    let records: &[u8] = if compressed {
        inflated =
            decompress_records(batch, header, MAX_DECOMPRESSED_BYTES).map_err(BatchError::from)?;
        &inflated
    } else {
        &batch[BATCH_HEADER_LEN..header.total_len()]
    };
    let create_time = !config.timestamp_type_log_append;
    let check_bounds = create_time && bounds_configured(config);
    let lowest = now_ms.saturating_sub(config.timestamp_before_max_ms);
    let highest = now_ms.saturating_add(config.timestamp_after_max_ms);
    let mut max_timestamp = NO_TIMESTAMP;
    let mut errors = Vec::new();
    let mut refused = 0usize;
    let mut timestamp_errors = false;
    walk_records(header, records, |index, record| {
        let timestamp = header.base_timestamp.wrapping_add(record.timestamp_delta);
        max_timestamp = max_timestamp.max(timestamp);
        let listed = errors.len() < MAX_LISTED_RECORD_ERRORS;
        if config.compact && !record.has_key {
            refused += 1;
            if !listed {
                return;
            }
            errors.push(RecordError {
                batch_index: index as i32,
                message: format!(
                    "record {index} has no key; compacted topic partition {partition} \
                     (cleanup.policy=compact) accepts only records with a key"
                ),
            });
        } else if check_bounds && timestamp != NO_TIMESTAMP {
            let bound = if timestamp < lowest {
                Some(("before", config.timestamp_before_max_ms))
            } else if timestamp > highest {
                Some(("after", config.timestamp_after_max_ms))
            } else {
                None
            };
            if let Some((side, limit)) = bound {
                timestamp_errors = true;
                refused += 1;
                if !listed {
                    return;
                }
                errors.push(RecordError {
                    batch_index: index as i32,
                    message: format!(
                        "record {index} has timestamp {timestamp}, more than \
                         message.timestamp.{side}.max.ms={limit} {side} the broker's time \
                         {now_ms}; allowed range [{lowest}, {highest}]"
                    ),
                });
            }
        }
    })?;
    if refused > 0 {
        let message = if timestamp_errors {
            format!(
                "{} of {} records rejected, some for timestamps out of bounds (topic partition \
                 {partition}); first: {}",
                refused, header.records_count, errors[0].message
            )
        } else {
            format!(
                "{} of {} records rejected (topic partition {partition}); first: {}",
                refused, header.records_count, errors[0].message
            )
        };
        return Err(AppendError::InvalidRecords {
            timestamp: timestamp_errors,
            message,
            records: errors,
        });
    }
    Ok(RecordsCheck {
        max_timestamp: create_time.then_some(max_timestamp),
        inflated: compressed,
    })
}

/// The fields of one record the checks need.
#[derive(Debug, Clone, Copy)]
struct RecordSummary {
    timestamp_delta: i64,
    has_key: bool,
}

/// Decodes every record of `records` (a batch's records section, inflated if it was
/// compressed) completely: length, attributes, timestamp delta, offset delta (which must equal
/// the record's index), key, value and headers, each within the record's length, which they
/// must fill exactly; the records must number `recordsCount` and fill the section exactly.
/// Nothing is copied.
fn walk_records(
    header: &BatchHeader,
    records: &[u8],
    mut each: impl FnMut(usize, RecordSummary),
) -> Result<(), AppendError> {
    let count = header.records_count.max(0) as usize;
    let mut at = 0;
    for index in 0..count {
        let bad = |reason| BatchError::InvalidRecord { index, reason };
        let length = read_varlong(records, &mut at, 5).ok_or(bad("truncated length"))?;
        if length <= 0 || length as u64 > (records.len() - at) as u64 {
            return Err(bad("length beyond the batch").into());
        }
        let end = at + length as usize;
        let body = &records[..end];
        if body.get(at).is_none() {
            return Err(bad("truncated attributes").into());
        }
        at += 1; // attributes: unused in v2 records
        let timestamp_delta = read_varlong(body, &mut at, 10).ok_or(bad("bad timestamp delta"))?;
        let offset_delta = read_varlong(body, &mut at, 5).ok_or(bad("bad offset delta"))?;
        if offset_delta != index as i64 {
            return Err(AppendError::InvalidRecord(format!(
                "record {index} of the batch has offset delta {offset_delta}; the offset deltas \
                 of a batch must be 0, 1, ..., {} in order",
                count - 1
            )));
        }
        let has_key = skip_bytes(body, &mut at).ok_or(bad("bad key length"))?;
        skip_bytes(body, &mut at).ok_or(bad("bad value length"))?;
        let headers = read_varlong(body, &mut at, 5).ok_or(bad("bad header count"))?;
        if headers < 0 || headers as u64 > (end - at) as u64 {
            return Err(bad("bad header count").into());
        }
        for _ in 0..headers {
            if !skip_bytes(body, &mut at).ok_or(bad("bad header key"))? {
                return Err(bad("null header key").into());
            }
            skip_bytes(body, &mut at).ok_or(bad("bad header value"))?;
        }
        if at != end {
            return Err(bad("record length does not match its fields").into());
        }
        each(
            index,
            RecordSummary {
                timestamp_delta,
                has_key,
            },
        );
    }
    if at != records.len() {
        return Err(AppendError::InvalidRecord(format!(
            "the batch holds {} bytes after its {count} records",
            records.len() - at
        )));
    }
    Ok(())
}

/// Skips a varint-length-prefixed byte field of `body` at `*at`; `Some(false)` for a null
/// field (a negative length, as Kafka reads it), `None` if the field is malformed or runs past
/// `body`.
fn skip_bytes(body: &[u8], at: &mut usize) -> Option<bool> {
    let length = read_varlong(body, at, 5)?;
    if length < 0 {
        return Some(false);
    }
    let stop = at
        .checked_add(length as usize)
        .filter(|s| *s <= body.len())?;
    *at = stop;
    Some(true)
}
