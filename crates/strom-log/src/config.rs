//! Per-partition log configuration (Kafka's topic-level `segment.*`, `retention.*`, `flush.*`
//! settings). This module owns the defaults; it does not parse configuration text, which is the
//! broker's job.

/// Configuration of one partition log. Field names follow Kafka's topic config keys.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: a segment is rolled before an append would make it larger than this.
    pub segment_bytes: u64,
    /// `segment.ms`: a non-empty segment is rolled once its first append is older than this.
    pub segment_ms: i64,
    /// `retention.ms`: segments whose largest timestamp is older than this are deleted;
    /// -1 means unlimited.
    pub retention_ms: i64,
    /// `retention.bytes`: oldest segments are deleted while the log stays at least this big
    /// without them; -1 means unlimited.
    pub retention_bytes: i64,
    /// `index.interval.bytes`: bytes appended between two sparse index entries.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: the largest size of a `.index` file; a full index rolls the segment.
    /// The `.timeindex` file may grow to 1.5 times this (its entries are 12 bytes, not 8).
    pub segment_index_bytes: u32,
    /// `max.message.bytes`: the largest record batch accepted by `append`.
    pub max_message_bytes: u32,
    /// `flush.messages`: 1 (Strom's default) means every append is made durable by the broker's
    /// group commit before it is acknowledged and the log never fsyncs on its own; a larger value
    /// selects Kafka's page-cache behaviour, where the log fsyncs after this many unflushed records.
    pub flush_messages: i64,
    /// `flush.ms`: with relaxed flushing, fsync once the oldest unflushed append is older than this.
    pub flush_ms: i64,
    /// `message.timestamp.type=LogAppendTime`: the broker stamps each batch with its append time.
    pub timestamp_type_log_append: bool,
    /// `message.timestamp.before.max.ms`: with CreateTime, a record whose timestamp is more than
    /// this before the broker's clock is refused (`INVALID_TIMESTAMP`). `i64::MAX`, Kafka 3.9's
    /// default, means no bound.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: with CreateTime, a record whose timestamp is more than
    /// this after the broker's clock is refused (`INVALID_TIMESTAMP`). `i64::MAX`, Kafka 3.9's
    /// default, means no bound (Kafka 4.0 lowered it to one hour, KIP-1030).
    pub timestamp_after_max_ms: i64,
    /// `file.delete.delay.ms`: Strom deletes segment files immediately (open readers keep their
    /// file handle), so this is kept only to report the configuration.
    pub file_delete_delay_ms: i64,
    /// `cleanup.policy` includes `compact`: the log is compacted by key.
    pub compact: bool,
    /// `min.cleanable.dirty.ratio`: compaction starts once the segments not yet cleaned are at
    /// least this fraction of the cleanable ones.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a segment is cleaned only once its newest record is this old.
    pub min_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone survives compaction, counted from its
    /// segment's largest timestamp.
    pub delete_retention_ms: i64,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            max_message_bytes: 1_048_588,
            flush_messages: 1,
            flush_ms: i64::MAX,
            timestamp_type_log_append: false,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            compact: false,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            delete_retention_ms: 24 * 60 * 60 * 1000,
        }
    }
}

impl LogConfig {
    /// Whether the log fsyncs on its own (Kafka's relaxed flush policy) rather than leaving every
    /// flush to the broker's group commit.
    pub fn relaxed_flush(&self) -> bool {
        self.flush_messages > 1
    }
}
