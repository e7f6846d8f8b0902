//! Topic configuration: checking topic-level overrides, resolving a topic's effective values,
//! and describing them for DescribeConfigs.
//!
//! A topic key's value comes from, in order: the topic's override (source DynamicTopic), the
//! first of its broker synonyms the user set (StaticBroker), the first broker synonym with a
//! default (Default), else Kafka's topic default (Default). This module owns that order; the
//! keys are in [`super::topic_keys`].

use std::collections::BTreeMap;

use super::rule::{canonical, parse_bool};
use super::topic_keys::{topic_key, TopicKeySpec, TOPIC_KEYS};
use super::{BrokerConfig, ConfigEntry, ConfigError, ConfigSource, ConfigSynonym};

/// The effective configuration of one topic, every value resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicConfig {
    /// `cleanup.policy`: `delete`, `compact` or both, comma-separated.
    pub cleanup_policy: String,
    /// `compression.type`: `producer`, `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression_type: String,
    /// `delete.retention.ms`: how long tombstones survive compaction.
    pub delete_retention_ms: i64,
    /// `file.delete.delay.ms`: how long removed segment files linger.
    pub file_delete_delay_ms: i64,
    /// `flush.messages`: sync after this many messages (Strom's broker default: 1).
    pub flush_messages: i64,
    /// `flush.ms`: sync when the oldest unsynced message is this old.
    pub flush_ms: i64,
    /// `index.interval.bytes`: bytes between offset-index entries.
    pub index_interval_bytes: i32,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: i32,
    /// `message.timestamp.type`: `CreateTime` or `LogAppendTime`.
    pub message_timestamp_type: String,
    /// `message.timestamp.before.max.ms`, or, while that is at its default (`Long.MAX`), the
    /// deprecated `message.timestamp.difference.max.ms`, as Kafka 3.6+ resolves it.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`, or, while that is at its default (`Long.MAX`), the
    /// deprecated `message.timestamp.difference.max.ms`, as Kafka 3.6+ resolves it.
    pub message_timestamp_after_max_ms: i64,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `retention.bytes`; -1 means no size limit.
    pub retention_bytes: i64,
    /// `retention.ms`; -1 keeps data forever.
    pub retention_ms: i64,
    /// `segment.bytes`.
    pub segment_bytes: i32,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: i32,
    /// `segment.jitter.ms`.
    pub segment_jitter_ms: i64,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `min.compaction.lag.ms`. Invariant: `<= max_compaction_lag_ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`, between 0 and 1.
    pub min_cleanable_dirty_ratio: f64,
    /// `preallocate`.
    pub preallocate: bool,
    /// `message.downconversion.enable`.
    pub message_downconversion_enable: bool,
}

/// One key's effective value with its source and DescribeConfigs synonyms.
struct Resolved {
    value: String,
    source: ConfigSource,
    synonyms: Vec<ConfigSynonym>,
}

impl TopicConfig {
    /// True if `key` is a topic-level configuration key.
    pub fn is_known_key(key: &str) -> bool {
        topic_key(key).is_some()
    }

    /// Every topic-level key, sorted.
    pub fn known_keys() -> impl Iterator<Item = &'static str> {
        TOPIC_KEYS.iter().map(|topic| topic.spec.name)
    }

    /// Checks topic-level overrides (CreateTopics configs, AlterConfigs). An unknown key (with
    /// a suggestion when a known key is close) or a value breaking Kafka's rule is an error
    /// naming key, value and rule; the first one found, in key order, is returned.
    pub fn validate_overrides(overrides: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (key, value) in overrides {
            let Some(topic) = topic_key(key) else {
                return Err(ConfigError::unknown(key, value, TopicConfig::known_keys()));
            };
            topic.spec.check(value)?;
        }
        if let (Some(min), Some(max)) = (
            overrides.get("min.compaction.lag.ms"),
            overrides.get("max.compaction.lag.ms"),
        ) {
            check_compaction_lags(min, max)?;
        }
        Ok(())
    }

    /// The effective configuration of a topic with these overrides on this broker. Checks the
    /// overrides first (see [`TopicConfig::validate_overrides`]).
    pub fn resolve(
        broker: &BrokerConfig,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicConfig, ConfigError> {
        TopicConfig::validate_overrides(overrides)?;
        let text = |key: &str| -> String {
            let topic = topic_key(key).expect("typed fields name catalogue keys");
            resolve_key(broker, overrides, topic).value
        };
        let long = |key: &str| -> i64 {
            text(key)
                .parse()
                .unwrap_or_else(|_| panic!("{key} is checked to be an integer"))
        };
        let int = |key: &str| -> i32 {
            text(key)
                .parse()
                .unwrap_or_else(|_| panic!("{key} is checked to be a 32-bit integer"))
        };
        let boolean = |key: &str| -> bool {
            parse_bool(&text(key)).unwrap_or_else(|| panic!("{key} is checked to be a boolean"))
        };
        let difference = long("message.timestamp.difference.max.ms");
        let or_difference = |bound: i64| if bound == i64::MAX { difference } else { bound };
        let config = TopicConfig {
            cleanup_policy: text("cleanup.policy"),
            compression_type: text("compression.type"),
            delete_retention_ms: long("delete.retention.ms"),
            file_delete_delay_ms: long("file.delete.delay.ms"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            index_interval_bytes: int("index.interval.bytes"),
            max_message_bytes: int("max.message.bytes"),
            message_timestamp_type: text("message.timestamp.type"),
            message_timestamp_before_max_ms: or_difference(long("message.timestamp.before.max.ms")),
            message_timestamp_after_max_ms: or_difference(long("message.timestamp.after.max.ms")),
            min_insync_replicas: int("min.insync.replicas"),
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: int("segment.bytes"),
            segment_ms: long("segment.ms"),
            segment_index_bytes: int("segment.index.bytes"),
            segment_jitter_ms: long("segment.jitter.ms"),
            unclean_leader_election_enable: boolean("unclean.leader.election.enable"),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            min_cleanable_dirty_ratio: text("min.cleanable.dirty.ratio")
                .parse()
                .expect("min.cleanable.dirty.ratio is checked to be a number"),
            preallocate: boolean("preallocate"),
            message_downconversion_enable: boolean("message.downconversion.enable"),
        };
        // The broker defaults may combine with an override into a conflict.
        check_compaction_lags(
            &config.min_compaction_lag_ms.to_string(),
            &config.max_compaction_lag_ms.to_string(),
        )?;
        Ok(config)
    }

    /// DescribeConfigs for a TOPIC resource, as Kafka answers it: every topic key (or those in
    /// `keys`; unknown names are skipped), read_only false. The source is DynamicTopic for an
    /// override, StaticBroker when an explicitly set broker synonym supplies the value, else
    /// Default; a default is never reported as an override. With `include_synonyms`, each
    /// entry lists the topic override, then the explicitly set broker synonyms, then the
    /// default, in that order. Documentation is empty unless `include_documentation`.
    pub fn describe(
        broker: &BrokerConfig,
        overrides: &BTreeMap<String, String>,
        keys: Option<&[String]>,
        include_synonyms: bool,
        include_documentation: bool,
    ) -> Vec<ConfigEntry> {
        TOPIC_KEYS
            .iter()
            .filter(|topic| keys.is_none_or(|keys| keys.iter().any(|key| key == topic.spec.name)))
            .map(|topic| {
                let resolved = resolve_key(broker, overrides, topic);
                ConfigEntry {
                    name: topic.spec.name.to_string(),
                    value: Some(resolved.value),
                    read_only: false,
                    source: resolved.source,
                    is_sensitive: false,
                    config_type: topic.spec.config_type,
                    documentation: if include_documentation {
                        topic.spec.doc.to_string()
                    } else {
                        String::new()
                    },
                    synonyms: if include_synonyms {
                        resolved.synonyms
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }
}

/// Resolves one topic key: the override, else the broker synonyms, else the topic default.
fn resolve_key(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
    topic: &TopicKeySpec,
) -> Resolved {
    let spec = &topic.spec;
    let mut resolved = match broker.resolve_chain(topic.broker_synonyms) {
        Some((value, source, synonyms)) => Resolved {
            value,
            source,
            synonyms,
        },
        None => {
            let default = spec.default.expect("every topic key has a default");
            Resolved {
                value: canonical(spec.config_type, default),
                source: ConfigSource::Default,
                synonyms: vec![ConfigSynonym {
                    name: spec.name.to_string(),
                    value: canonical(spec.config_type, default),
                    source: ConfigSource::Default,
                }],
            }
        }
    };
    if let Some(raw) = overrides.get(spec.name) {
        let value = canonical(spec.config_type, raw);
        resolved.synonyms.insert(
            0,
            ConfigSynonym {
                name: spec.name.to_string(),
                value: value.clone(),
                source: ConfigSource::DynamicTopic,
            },
        );
        resolved.value = value;
        resolved.source = ConfigSource::DynamicTopic;
    }
    resolved
}

/// Kafka's rule that compaction's minimum lag may not exceed its maximum.
fn check_compaction_lags(min: &str, max: &str) -> Result<(), ConfigError> {
    let parse = |text: &str| text.trim().parse::<i64>().ok();
    match (parse(min), parse(max)) {
        (Some(min_lag), Some(max_lag)) if min_lag > max_lag => Err(ConfigError::new(
            "min.compaction.lag.ms",
            min,
            format!("must be <= max.compaction.lag.ms ({max_lag})"),
        )),
        _ => Ok(()),
    }
}
