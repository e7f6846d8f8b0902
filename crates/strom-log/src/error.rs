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
    /// A transactional batch would open its producer's transaction without the verification
    /// guard KIP-890 asks for (the coordinator did not confirm the partition is in the
    /// transaction, or a marker ended it meanwhile): `INVALID_TXN_STATE` (48). Nothing is
    /// appended.
    #[error("producer {producer_id}: record was not part of an ongoing transaction")]
    InvalidTxnState {
        /// The producer id of the batch.
        producer_id: i64,
    },
    /// The caller appended as leader with an epoch older than one the log already holds (a
    /// fenced leader): `NOT_LEADER_OR_FOLLOWER` (6). Nothing is appended.
    #[error("leader epoch {epoch} is older than the log's latest leader epoch {latest}")]
    StaleLeaderEpoch {
        /// The epoch the caller passed.
        epoch: i32,
        /// The newest epoch in the log's leader-epoch cache.
        latest: i32,
    },
    /// A transaction marker came from a coordinator older than the one that wrote the
    /// producer's last marker: `TRANSACTION_COORDINATOR_FENCED` (52). Nothing is appended.
    #[error("producer {producer_id}: coordinator epoch {got} is older than {current}")]
    TransactionCoordinatorFenced {
        /// The producer id of the marker.
        producer_id: i64,
        /// The coordinator epoch of the producer's last marker.
        current: i32,
        /// The marker's coordinator epoch.
        got: i32,
    },
    /// The append failed on I/O; the log is unchanged in memory.
    #[error(transparent)]
    Io(#[from] LogError),
}

/// Why a follower could not append the batches it fetched from the leader
/// ([`crate::Log::append_as_follower`]). Every variant but [`FollowerAppendError::Io`] is
/// detected before anything is written: the log is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum FollowerAppendError {
    /// A batch failed a framing, magic or CRC check. `position` is its start in the blob.
    #[error("corrupt record batch at byte {position} of the fetched records: {source}")]
    Corrupt {
        /// Start of the batch within the blob.
        position: usize,
        /// What is wrong with it.
        #[source]
        source: BatchError,
    },
    /// The first batch starts below the log end offset (Kafka's `UnexpectedAppendOffset`): the
    /// follower fetched from the wrong offset or did not truncate first.
    #[error("first batch holds offsets {first_offset}..={last_offset} but the log ends at {log_end_offset}")]
    UnexpectedOffset {
        /// The follower's log end offset.
        log_end_offset: i64,
        /// Base offset of the first batch.
        first_offset: i64,
        /// Last offset of the first batch.
        last_offset: i64,
    },
    /// A batch does not start after the previous one ends, or its offsets overflow (Kafka's
    /// `OffsetsOutOfOrder`).
    #[error("batch at byte {position} has base offset {base_offset} and last offset delta {last_offset_delta}, after offset {previous_last_offset}")]
    OffsetsOutOfOrder {
        /// Start of the batch within the blob.
        position: usize,
        /// Its base offset.
        base_offset: i64,
        /// Its last offset delta.
        last_offset_delta: i32,
        /// The last offset before it (the log's, for the first batch).
        previous_last_offset: i64,
    },
    /// A batch carries a negative leader epoch, or one below the epoch before it (in the blob or
    /// the log's leader-epoch cache): a leader never writes epochs that go back.
    #[error("batch at byte {position} (base offset {base_offset}) has leader epoch {epoch}, below {latest_epoch}")]
    InvalidLeaderEpoch {
        /// Start of the batch within the blob.
        position: usize,
        /// Its base offset.
        base_offset: i64,
        /// Its `partitionLeaderEpoch`.
        epoch: i32,
        /// The epoch it must not be below (0 for a negative epoch).
        latest_epoch: i32,
    },
    /// Writing failed; the batches before the failing one may be in the log (each whole).
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
