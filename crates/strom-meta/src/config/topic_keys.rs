//! The topic catalogue: every topic-level key, with Kafka's type, default and rule, and the
//! broker keys (synonyms) that supply its value when a topic does not override it.
//!
//! The `default` here is Kafka's topic-level default, used only for keys with no broker synonym
//! that has a default; otherwise the broker's value (which may be a Strom default, as for
//! `flush.messages`) wins. This table is data only; [`super::TopicConfig`] interprets it.

use super::broker_keys::{
    hours, same, CLEANUP_POLICIES, COMPRESSION_TYPES, LONG_MAX, TIMESTAMP_TYPES,
};
use super::rule::{KeySpec, Rule, Synonym};
use super::ConfigType::{self, Boolean, Double, Int, List, Long, String as Text};

/// A topic key and where its value comes from when the topic does not override it.
#[derive(Clone, Copy, Debug)]
pub struct TopicKeySpec {
    /// Type, Kafka's topic-level default, rule and documentation.
    pub spec: KeySpec,
    /// Broker keys that supply the value, highest precedence first.
    pub broker_synonyms: &'static [Synonym],
}

/// Shorthand for a table row.
const fn key(
    name: &'static str,
    config_type: ConfigType,
    default: &'static str,
    rule: Rule,
    broker_synonyms: &'static [Synonym],
    doc: &'static str,
) -> TopicKeySpec {
    TopicKeySpec {
        spec: KeySpec {
            name,
            config_type,
            default: Some(default),
            rule,
            doc,
        },
        broker_synonyms,
    }
}

/// Why `remote.storage.enable` can only be false.
const NO_TIERED_STORAGE: &str = "Strom does not support tiered storage";

/// Every topic key, sorted by name.
#[rustfmt::skip]
pub static TOPIC_KEYS: &[TopicKeySpec] = &[
    key("cleanup.policy", List, "delete", Rule::SubsetOf(CLEANUP_POLICIES),
        &[same("log.cleanup.policy")],
        "How old data is removed: `delete` drops whole segments past the retention limits, \
         `compact` keeps only the latest record per key, and both may be combined."),
    key("compression.type", Text, "producer", Rule::OneOf(COMPRESSION_TYPES),
        &[same("compression.type")],
        "The codec batches are stored with; `producer` keeps the producer's codec, anything \
         else makes the broker recompress."),
    key("delete.retention.ms", Long, "86400000", Rule::AtLeast(0),
        &[same("log.cleaner.delete.retention.ms")],
        "On compacted topics, how long a tombstone (a null-value record) is kept so consumers \
         can see the deletion."),
    key("file.delete.delay.ms", Long, "60000", Rule::AtLeast(0),
        &[same("log.segment.delete.delay.ms")],
        "How long a removed segment's files wait before they are deleted from disk."),
    key("flush.messages", Long, LONG_MAX, Rule::AtLeast(1),
        &[same("log.flush.interval.messages")],
        "Flush the log to disk after this many messages. Strom's broker default is 1 (every \
         append is synced before it is acknowledged); Kafka's is effectively never."),
    key("flush.ms", Long, LONG_MAX, Rule::AtLeast(0),
        &[same("log.flush.interval.ms")],
        "Flush the log to disk when its oldest unflushed message is this old."),
    key("follower.replication.throttled.replicas", List, "", Rule::ThrottledReplicas, &[],
        "Replicas (partition:broker pairs, or `*`) whose follower replication is throttled."),
    key("index.interval.bytes", Int, "4096", Rule::AtLeast(0),
        &[same("log.index.interval.bytes")],
        "How many bytes of records lie between two offset-index entries; smaller means faster \
         lookups and larger indexes."),
    key("leader.replication.throttled.replicas", List, "", Rule::ThrottledReplicas, &[],
        "Replicas (partition:broker pairs, or `*`) whose leader-side replication is throttled."),
    key("local.retention.bytes", Long, "-2", Rule::AtLeast(-2), &[],
        "For tiered storage, the size kept on local disk; -2 means retention.bytes."),
    key("local.retention.ms", Long, "-2", Rule::AtLeast(-2), &[],
        "For tiered storage, the time kept on local disk; -2 means retention.ms."),
    key("max.compaction.lag.ms", Long, LONG_MAX, Rule::AtLeast(1),
        &[same("log.cleaner.max.compaction.lag.ms")],
        "The longest a record may stay uncompacted on a compacted topic."),
    key("max.message.bytes", Int, "1048588", Rule::AtLeast(0),
        &[same("message.max.bytes")],
        "The largest record batch this topic accepts, after compression."),
    key("message.downconversion.enable", Boolean, "true", Rule::Any,
        &[same("log.message.downconversion.enable")],
        "Whether fetches from old clients may be served by converting batches to an older \
         message format."),
    key("message.format.version", Text, "3.0-IV1", Rule::Any, &[],
        "Deprecated: the message format version. Accepted and ignored; Strom always stores \
         format v2."),
    key("message.timestamp.after.max.ms", Long, LONG_MAX, Rule::AtLeast(0),
        &[same("log.message.timestamp.after.max.ms")],
        "With CreateTime, how far in the future a record's timestamp may be before it is \
         refused."),
    key("message.timestamp.before.max.ms", Long, LONG_MAX, Rule::AtLeast(0),
        &[same("log.message.timestamp.before.max.ms")],
        "With CreateTime, how far in the past a record's timestamp may be before it is refused."),
    key("message.timestamp.difference.max.ms", Long, LONG_MAX, Rule::AtLeast(0), &[],
        "Deprecated in favour of the before/after limits: the largest allowed difference \
         between a record's timestamp and the broker's clock."),
    key("message.timestamp.type", Text, "CreateTime", Rule::OneOf(TIMESTAMP_TYPES),
        &[same("log.message.timestamp.type")],
        "Whether record timestamps are the producer's (CreateTime) or the broker's append time \
         (LogAppendTime)."),
    key("min.cleanable.dirty.ratio", Double, "0.5", Rule::Fraction(0.0, 1.0),
        &[same("log.cleaner.min.cleanable.ratio")],
        "How much of a compacted log must be uncompacted before the cleaner works on it."),
    key("min.compaction.lag.ms", Long, "0", Rule::AtLeast(0),
        &[same("log.cleaner.min.compaction.lag.ms")],
        "The shortest time a record stays uncompacted on a compacted topic."),
    key("min.insync.replicas", Int, "1", Rule::AtLeast(1),
        &[same("min.insync.replicas")],
        "The fewest in-sync replicas that must hold a write for an acks=all produce to succeed."),
    key("preallocate", Boolean, "false", Rule::Any,
        &[same("log.preallocate")],
        "Whether a new segment file is allocated at full size up front."),
    key("remote.storage.enable", Boolean, "false", Rule::Only("false", NO_TIERED_STORAGE), &[],
        "Whether the topic uses tiered storage; Strom only supports false."),
    key("retention.bytes", Long, "-1", Rule::Any,
        &[same("log.retention.bytes")],
        "The most data a partition keeps before old segments are deleted; -1 means no size \
         limit."),
    key("retention.ms", Long, "604800000", Rule::AtLeast(-1),
        &[same("log.retention.ms"), super::broker_keys::minutes("log.retention.minutes"),
          hours("log.retention.hours")],
        "How long data is kept before old segments are deleted; -1 keeps it forever."),
    key("segment.bytes", Int, "1073741824", Rule::AtLeast(14),
        &[same("log.segment.bytes")],
        "The size at which a segment file is closed and a new one started."),
    key("segment.index.bytes", Int, "10485760", Rule::AtLeast(4),
        &[same("log.index.size.max.bytes")],
        "The size preallocated for a segment's offset index."),
    key("segment.jitter.ms", Long, "0", Rule::AtLeast(0),
        &[same("log.roll.jitter.ms"), hours("log.roll.jitter.hours")],
        "The largest random time subtracted from segment.ms, so many partitions do not roll \
         together."),
    key("segment.ms", Long, "604800000", Rule::AtLeast(1),
        &[same("log.roll.ms"), hours("log.roll.hours")],
        "The time after which a segment is closed even if it is not full, so retention and \
         compaction can act on it."),
    key("unclean.leader.election.enable", Boolean, "false", Rule::Any,
        &[same("unclean.leader.election.enable")],
        "Whether a replica outside the ISR may become leader when no ISR member is alive, at \
         the cost of losing data."),
];

/// The topic key named `name`, if it exists.
pub fn topic_key(name: &str) -> Option<&'static TopicKeySpec> {
    TOPIC_KEYS
        .binary_search_by(|spec| spec.spec.name.cmp(name))
        .ok()
        .map(|index| &TOPIC_KEYS[index])
}

#[cfg(test)]
mod tests {
    use super::super::broker_keys::broker_key;
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in TOPIC_KEYS.windows(2) {
            assert!(
                pair[0].spec.name < pair[1].spec.name,
                "{}",
                pair[1].spec.name
            );
        }
    }

    #[test]
    fn defaults_obey_rules_and_synonyms_exist() {
        for topic in TOPIC_KEYS {
            let default = topic.spec.default.unwrap();
            if !default.is_empty() {
                topic.spec.check(default).unwrap_or_else(|e| panic!("{e}"));
            }
            for synonym in topic.broker_synonyms {
                let broker = broker_key(synonym.key)
                    .unwrap_or_else(|| panic!("{} is not a broker key", synonym.key));
                if let Some(default) = broker.default {
                    // A broker default must also be a valid topic value.
                    let value = synonym.convert(broker.config_type, default);
                    topic.spec.check(&value).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }
}
