//! Error types of the storage engine.
//!
//! This module owns the split between the three kinds of failure (see STYLE.md §6):
//! [`LogError`] is an operating failure (I/O, a file we cannot make sense of, a refused
//! administrative request), [`AppendError`] and [`ReadError`] are the per-request outcomes the
//! broker maps to Kafka error codes. Programmer errors are not represented here: they panic.

use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;

/// An operating failure of the storage engine: I/O, a file that cannot be parsed, or an
/// administrative request (DeleteRecords) that the log refuses.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A system call on `path` failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the failed operation was about.
        path: PathBuf,
        /// The underlying operating-system error.
        #[source]
        source: io::Error,
    },
    /// A file exists but its content is not what this engine writes (for example a checkpoint
    /// file with a bad line). Torn segment tails are *not* reported this way: recovery truncates
    /// them.
    #[error("corrupt file {path}: {reason}")]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it, in words.
        reason: String,
    },
    /// `meta.properties` in a log dir belongs to another broker or cluster.
    #[error("{path}: {key} is {found} but this broker is configured with {expected}")]
    MetaPropertiesMismatch {
        /// The `meta.properties` file.
        path: PathBuf,
        /// `broker.id` or `cluster.id`.
        key: &'static str,
        /// The value in the file.
        found: String,
        /// The value this process was started with.
        expected: String,
    },
    /// DeleteRecords asked for an offset above the high watermark.
    #[error(
        "cannot delete records before offset {requested}: the high watermark is {high_watermark}"
    )]
    OffsetAboveHighWatermark {
        /// The offset asked for.
        requested: i64,
        /// The current high watermark, the largest offset allowed.
        high_watermark: i64,
    },
    /// A partition directory name is not `<topic>-<partition>`.
    #[error("directory name {name:?} is not <topic>-<partition>")]
    InvalidPartitionDir {
        /// The directory name.
        name: String,
    },
}

impl LogError {
    /// Wraps an [`io::Error`] with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> LogError {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Why a produce request's records were not appended. Each variant maps to one Kafka error code
/// in the broker.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The batch failed a length, magic or CRC check: `CORRUPT_MESSAGE` (2). The broker maps
    /// [`BatchError::UnsupportedMagic`] separately if it wants `UNSUPPORTED_VERSION`.
    #[error("corrupt record batch: {0}")]
    CorruptMessage(#[from] BatchError),
    /// The request is well formed but not allowed: `INVALID_RECORD` (87).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// Some records of the batch break a per-record rule (a record without a key on a compacted
    /// topic, a timestamp out of bounds): `INVALID_TIMESTAMP` (32) if any record's timestamp is
    /// out of bounds, else `INVALID_RECORD` (87). `records` lists every offending record, in
    /// batch order, for the Produce response's `record_errors` (KIP-467); nothing is appended.
    #[error("{message}")]
    InvalidRecords {
        /// Whether any record was refused for its timestamp.
        timestamp: bool,
        /// The partition-level message.
        message: String,
        /// The offending records, by index in the batch, ascending.
        records: Vec<RecordError>,
    },
    /// The batch is larger than `max.message.bytes`: `MESSAGE_TOO_LARGE` (10).
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge {
        /// Size of the batch in bytes.
        size: usize,
        /// The configured maximum.
        max: u32,
    },
    /// An idempotent producer skipped or repeated a sequence number:
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` (45).
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrderSequence {
        /// The producer id of the batch.
        producer_id: i64,
        /// The sequence the log expected next.
        expected: i32,
        /// The batch's base sequence.
        got: i32,
    },
    /// An idempotent producer used an epoch older than the one the log knows:
    /// `INVALID_PRODUCER_EPOCH` (47).
    #[error("producer {producer_id}: epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer id of the batch.
        producer_id: i64,
        /// The epoch the log knows.
        current: i16,
        /// The batch's epoch.
        got: i16,
    },
    /// The append failed on I/O; the log is unchanged in memory.
    #[error(transparent)]
    Io(#[from] LogError),
}

/// One refused record of a batch: its index in the batch and why (KIP-467's
/// `BatchIndexAndErrorMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the record within its batch (0 for the first).
    pub batch_index: i32,
    /// What is wrong with it.
    pub message: String,
}

/// Why a fetch could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The fetch offset is outside `[log_start_offset, log_end_offset]`: `OFFSET_OUT_OF_RANGE` (1).
    #[error("offset {requested} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The fetch offset.
        requested: i64,
        /// The first offset of the log.
        log_start_offset: i64,
        /// The next offset to be written.
        log_end_offset: i64,
    },
    /// Reading a batch header from a segment failed.
    #[error(transparent)]
    Io(#[from] LogError),
}
