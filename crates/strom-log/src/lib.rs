//! Strom's storage engine: Kafka-layout partition logs (`<topic>-<partition>/` directories of
//! `<base_offset>.log` segments with sparse `.index` and `.timeindex` files), their recovery after
//! a crash, retention, idempotent-producer state, and the per-log-dir checkpoint files.
//!
//! The crate does no networking and reads no clock: time comes in as `now_ms` arguments. The
//! broker drives it and does the group-commit fsync outside the log's mutex
//! ([`Log::sync_target`], [`Log::mark_flushed`]).
//!
//! Code map: [`batch`] (v2 batch header, validation, in-place rewrites), [`validate`]
//! (record-level checks of a produce batch and its true max timestamp), [`compression`]
//! (inflating a compressed batch's records for timestamp lookups), [`segment`] (one
//! `.log` file and its indexes; documents the on-disk format and the disk assumptions),
//! `index`/`time_index` (the sparse index files), [`legacy`] (message formats v0/v1: converted
//! to v2 on produce, down-converted for old fetches), [`producer_state`] (idempotence rules and
//! snapshots), [`log`] (one partition), [`checkpoint`] (checkpoint files, `meta.properties`
//! helpers, atomic writes), [`leader_epoch`] (the leader-epoch cache and its
//! `leader-epoch-checkpoint` file), [`manager`] (all partitions of the broker's log dirs),
//! [`control`] (transaction marker batches), [`txn_index`] (the aborted-transaction index,
//! `.txnindex`; the transaction side of a log is in `log/transactions.rs`).
//!
//! **Replication** (`log/replication.rs`): a leader appends with [`Log::append`], passing its
//! leader epoch (stamped on the batch, recorded in the epoch cache when new, refused when older
//! than the cache's latest) and records a new epoch before its first append with
//! [`Log::start_leader_epoch`]. A follower stores what it fetched with
//! [`Log::append_as_follower`] (the batches verbatim, after framing, CRC, offset and epoch checks
//! that all run before anything is written), cuts a diverged tail with [`Log::truncate_to`] or
//! restarts an emptied log with [`Log::truncate_fully_and_start_at`] (both durable, and
//! consistent after a crash in the middle: see that module), and finds where to cut with
//! [`Log::truncation_point`] from the leader's [`Log::end_offset_for_epoch`] (Kafka's
//! OffsetForLeaderEpoch) for its [`Log::latest_leader_epoch`].
//!
//! **Invariant:** for every log, `log_start_offset <= high_watermark <= log_end_offset`,
//! `recovery_point <= log_end_offset` and only grows except when a truncation lowers it to the
//! new end, and bytes handed out in a [`FileSlice`] are never rewritten: files below the end are
//! only deleted (open handles keep reading) or cut, by recovery before the log is readable or by
//! a truncation, after which a new segment takes the writes (a reader past the cut gets a short
//! read). Every stored batch's leader epoch is the one the epoch cache gives its offsets, and
//! producer state is what a replay of the stored batch headers gives.
//!
//! **API boundary:** the broker passes whole produce `records` blobs and gets offsets or an
//! [`AppendError`] to map to a Kafka error code; fetches get a [`FileSlice`] to `pread` (or
//! `sendfile`) outside the lock. The crate decodes records for the produce checks
//! ([`validate`]: the record headers of every uncompressed batch; a compressed batch only where
//! its header cannot be trusted, the topic is compacted or timestamp bounds are set), timestamp
//! lookups, compaction and the broker's own internal-topic batches ([`records`]), and
//! decompresses ([`compression`], capped in size) only for those: fetch keeps batches opaque.

pub mod batch;
pub mod compression;
pub mod config;
pub mod control;
pub mod error;

pub use batch::{BatchError, BatchHeader, BATCH_HEADER_LEN};
pub use config::LogConfig;
pub use error::{AppendError, FollowerAppendError, LogError, ReadError, RecordError};
pub mod checkpoint;
pub mod cleaner;
mod entry_file;
mod index;
pub mod leader_epoch;
pub mod legacy;
pub mod log;
pub mod open_files;
pub mod producer_state;
pub mod records;
pub mod segment;
mod time_index;
pub mod txn_index;
pub mod validate;

pub use checkpoint::TopicPartition;
pub use log::{
    AppendInfo, CompactionStats, FileSlice, Log, ReadInfo, RecoveryStats, TruncationPoint,
};
pub mod manager;

pub use manager::{LogManager, SharedLog};

#[cfg(test)]
mod tests;
