//! The storage settings of a partition's log ([`strom_log::LogConfig`]) that a topic's resolved
//! configuration gives. A pure translation: it does not resolve the configuration (overrides
//! over the live broker defaults are [`super::topics`]' and [`super::live_config`]'s) nor apply
//! the result to a log.

use strom_log::LogConfig;
use strom_meta::config::TopicConfig;

/// Translates a resolved topic configuration into the storage engine's terms.
///
/// Retention by time and size applies only where `cleanup.policy` includes `delete`, as in
/// Kafka: a compact-only topic (such as `__consumer_offsets`) is never emptied by retention;
/// compaction applies where it includes `compact`.
pub fn log_config(topic: &TopicConfig) -> LogConfig {
    let deletes = topic
        .cleanup_policy
        .split(',')
        .any(|p| p.trim() == "delete");
    LogConfig {
        segment_bytes: topic.segment_bytes.max(14) as u64,
        segment_ms: topic.segment_ms,
        retention_ms: if deletes { topic.retention_ms } else { -1 },
        retention_bytes: if deletes { topic.retention_bytes } else { -1 },
        index_interval_bytes: topic.index_interval_bytes.max(1) as u32,
        max_message_bytes: topic.max_message_bytes.max(0) as u32,
        flush_messages: topic.flush_messages,
        flush_ms: topic.flush_ms,
        timestamp_type_log_append: topic.message_timestamp_type == "LogAppendTime",
        timestamp_before_max_ms: topic.message_timestamp_before_max_ms,
        timestamp_after_max_ms: topic.message_timestamp_after_max_ms,
        file_delete_delay_ms: topic.file_delete_delay_ms,
        segment_index_bytes: topic.segment_index_bytes.max(8) as u32,
        compact: topic
            .cleanup_policy
            .split(',')
            .any(|p| p.trim() == "compact"),
        min_cleanable_dirty_ratio: topic.min_cleanable_dirty_ratio,
        min_compaction_lag_ms: topic.min_compaction_lag_ms,
        delete_retention_ms: topic.delete_retention_ms,
    }
}
