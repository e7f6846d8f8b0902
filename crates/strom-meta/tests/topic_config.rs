//! Topic configuration: override validation, resolution through broker synonyms, and the TOPIC
//! DescribeConfigs view (values, sources, synonym order).

use std::collections::BTreeMap;

use strom_meta::config::{BrokerConfig, ConfigEntry, ConfigSource, ConfigType, TopicConfig};

fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn broker(settings: &[&str]) -> BrokerConfig {
    let settings: Vec<String> = settings.iter().map(|s| s.to_string()).collect();
    BrokerConfig::load(None, &settings).unwrap()
}

fn entry(entries: &[ConfigEntry], name: &str) -> ConfigEntry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} is described"))
        .clone()
}

fn synonyms(entry: &ConfigEntry) -> Vec<(String, String, ConfigSource)> {
    entry
        .synonyms
        .iter()
        .map(|s| (s.name.clone(), s.value.clone(), s.source))
        .collect()
}

fn syn(name: &str, value: &str, source: ConfigSource) -> (String, String, ConfigSource) {
    (name.to_string(), value.to_string(), source)
}

#[test]
fn defaults_are_kafkas_except_flush_messages() {
    let c = TopicConfig::resolve(&BrokerConfig::default(), &BTreeMap::new()).unwrap();
    assert_eq!(c.cleanup_policy, "delete");
    assert_eq!(c.compression_type, "producer");
    assert_eq!(c.delete_retention_ms, 86_400_000);
    assert_eq!(c.file_delete_delay_ms, 60_000);
    assert_eq!(
        c.flush_messages, 1,
        "from Strom's log.flush.interval.messages default"
    );
    assert_eq!(c.flush_ms, i64::MAX);
    assert_eq!(c.index_interval_bytes, 4096);
    assert_eq!(c.max_message_bytes, 1_048_588);
    assert_eq!(c.message_timestamp_type, "CreateTime");
    assert_eq!(c.message_timestamp_before_max_ms, i64::MAX);
    assert_eq!(c.message_timestamp_after_max_ms, i64::MAX);
    assert_eq!(c.min_insync_replicas, 1);
    assert_eq!(c.retention_bytes, -1);
    assert_eq!(c.retention_ms, 604_800_000);
    assert_eq!(c.segment_bytes, 1_073_741_824);
    assert_eq!(c.segment_ms, 604_800_000);
    assert_eq!(c.segment_index_bytes, 10_485_760);
    assert_eq!(c.segment_jitter_ms, 0);
    assert!(!c.unclean_leader_election_enable);
    assert_eq!(c.min_compaction_lag_ms, 0);
    assert_eq!(c.max_compaction_lag_ms, i64::MAX);
    assert_eq!(c.min_cleanable_dirty_ratio, 0.5);
    assert!(!c.preallocate);
    assert!(c.message_downconversion_enable);
}

#[test]
fn broker_synonyms_supply_topic_values() {
    let b = broker(&[
        "log.retention.minutes=10",
        "log.segment.bytes=1000",
        "message.max.bytes=2000",
        "flush.messages=10",
        "flush.ms=20",
        "log.roll.hours=1",
        "log.index.interval.bytes=100",
        "log.message.timestamp.type=LogAppendTime",
        "log.cleanup.policy=compact",
        "log.segment.delete.delay.ms=5",
        "min.insync.replicas=2",
        "compression.type=zstd",
        "log.retention.bytes=12345",
        "log.roll.jitter.hours=1",
        "log.cleaner.min.cleanable.ratio=0.25",
        "unclean.leader.election.enable=true",
    ]);
    let c = TopicConfig::resolve(&b, &BTreeMap::new()).unwrap();
    assert_eq!(c.retention_ms, 600_000);
    assert_eq!(c.segment_bytes, 1000);
    assert_eq!(c.max_message_bytes, 2000);
    assert_eq!(c.flush_messages, 10);
    assert_eq!(c.flush_ms, 20);
    assert_eq!(c.segment_ms, 3_600_000);
    assert_eq!(c.index_interval_bytes, 100);
    assert_eq!(c.message_timestamp_type, "LogAppendTime");
    assert_eq!(c.cleanup_policy, "compact");
    assert_eq!(c.file_delete_delay_ms, 5);
    assert_eq!(c.min_insync_replicas, 2);
    assert_eq!(c.compression_type, "zstd");
    assert_eq!(c.retention_bytes, 12345);
    assert_eq!(c.segment_jitter_ms, 3_600_000);
    assert_eq!(c.min_cleanable_dirty_ratio, 0.25);
    assert!(c.unclean_leader_election_enable);

    // Topic overrides win over the broker.
    let o = overrides(&[
        ("retention.ms", "-1"),
        ("segment.bytes", "14"),
        ("flush.messages", "7"),
    ]);
    let c = TopicConfig::resolve(&b, &o).unwrap();
    assert_eq!(
        (c.retention_ms, c.segment_bytes, c.flush_messages),
        (-1, 14, 7)
    );
    // The broker's retention precedence holds: ms over minutes over hours.
    let b = broker(&["log.retention.hours=1", "log.retention.ms=99"]);
    assert_eq!(
        TopicConfig::resolve(&b, &BTreeMap::new())
            .unwrap()
            .retention_ms,
        99
    );
}

#[test]
fn validate_overrides_applies_kafkas_rules() {
    let good = overrides(&[
        ("retention.ms", "-1"),
        ("segment.bytes", "14"),
        ("max.message.bytes", "0"),
        ("cleanup.policy", "compact,delete"),
        ("compression.type", "lz4"),
        ("min.cleanable.dirty.ratio", "1"),
        ("unclean.leader.election.enable", "TRUE"),
        ("leader.replication.throttled.replicas", ""),
    ]);
    TopicConfig::validate_overrides(&good).unwrap();

    let cases = [
        ("retention.ms", "-2", "must be an integer >= -1"),
        ("segment.bytes", "13", "must be an integer >= 14"),
        ("max.message.bytes", "-1", "must be an integer >= 0"),
        ("segment.ms", "0", "must be an integer >= 1"),
        ("min.insync.replicas", "0", "must be an integer >= 1"),
        (
            "cleanup.policy",
            "remove",
            "must be a comma-separated list of: delete, compact",
        ),
        (
            "compression.type",
            "brotli",
            "must be one of: uncompressed, zstd, lz4, snappy, gzip, producer",
        ),
        (
            "min.cleanable.dirty.ratio",
            "1.5",
            "must be a number between 0 and 1",
        ),
        ("preallocate", "maybe", "must be true or false"),
        (
            "remote.storage.enable",
            "true",
            "must be false: Strom does not support tiered storage",
        ),
    ];
    for (key, value, rule) in cases {
        let error = TopicConfig::validate_overrides(&overrides(&[(key, value)])).unwrap_err();
        assert_eq!((error.key.as_str(), error.value.as_str()), (key, value));
        assert_eq!(error.rule, rule, "{key}={value}");
        let resolve_error =
            TopicConfig::resolve(&BrokerConfig::default(), &overrides(&[(key, value)]))
                .unwrap_err();
        assert_eq!(resolve_error, error);
    }
}

#[test]
fn unknown_topic_key_suggests() {
    let error =
        TopicConfig::validate_overrides(&overrides(&[("retention.msec", "1")])).unwrap_err();
    assert!(error.is_unknown_key());
    assert!(
        error.to_string().contains("did you mean 'retention.ms'?"),
        "{error}"
    );
    // A broker key is not a topic key.
    let error =
        TopicConfig::validate_overrides(&overrides(&[("log.retention.ms", "1")])).unwrap_err();
    assert!(error.is_unknown_key());
    assert!(TopicConfig::is_known_key("retention.ms"));
    assert!(!TopicConfig::is_known_key("log.retention.ms"));
}

#[test]
fn compaction_lags_must_be_ordered() {
    let o = overrides(&[
        ("min.compaction.lag.ms", "10"),
        ("max.compaction.lag.ms", "5"),
    ]);
    let error = TopicConfig::validate_overrides(&o).unwrap_err();
    assert_eq!(error.key, "min.compaction.lag.ms");
    assert!(error.rule.contains("max.compaction.lag.ms (5)"), "{error}");
    // Against the broker's maximum, only resolve can tell.
    let b = broker(&["log.cleaner.max.compaction.lag.ms=5"]);
    let o = overrides(&[("min.compaction.lag.ms", "10")]);
    TopicConfig::validate_overrides(&o).unwrap();
    assert!(TopicConfig::resolve(&b, &o).is_err());
}

#[test]
fn describe_sources_default_static_and_dynamic() {
    let b = broker(&["log.retention.hours=24", "log.segment.bytes=2000"]);
    let o = overrides(&[
        ("max.message.bytes", "500"),
        ("cleanup.policy", "compact , delete"),
    ]);
    let entries = TopicConfig::describe(&b, &o, None, true, true);
    assert!(entries.iter().all(|e| !e.read_only && !e.is_sensitive));
    assert!(entries.iter().all(|e| !e.documentation.is_empty()));
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.len(), TopicConfig::known_keys().count());

    // Dynamic topic override, with the broker default below it.
    let max = entry(&entries, "max.message.bytes");
    assert_eq!(max.value.as_deref(), Some("500"));
    assert_eq!(max.source, ConfigSource::DynamicTopic);
    assert_eq!(max.config_type, ConfigType::Int);
    assert_eq!(
        synonyms(&max),
        [
            syn("max.message.bytes", "500", ConfigSource::DynamicTopic),
            syn("message.max.bytes", "1048588", ConfigSource::Default),
        ]
    );
    assert_eq!(
        entry(&entries, "cleanup.policy").value.as_deref(),
        Some("compact,delete")
    );

    // Static broker synonym, converted to the topic key's unit.
    let retention = entry(&entries, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("86400000"));
    assert_eq!(retention.source, ConfigSource::StaticBroker);
    assert_eq!(
        synonyms(&retention),
        [
            syn("log.retention.hours", "24", ConfigSource::StaticBroker),
            syn("log.retention.hours", "168", ConfigSource::Default),
        ]
    );
    let segment = entry(&entries, "segment.bytes");
    assert_eq!(segment.source, ConfigSource::StaticBroker);
    assert_eq!(
        synonyms(&segment),
        [
            syn("log.segment.bytes", "2000", ConfigSource::StaticBroker),
            syn("log.segment.bytes", "1073741824", ConfigSource::Default),
        ]
    );

    // Plain default: not an override, not static.
    let index = entry(&entries, "segment.index.bytes");
    assert_eq!(index.value.as_deref(), Some("10485760"));
    assert_eq!(index.source, ConfigSource::Default);
    assert_eq!(
        synonyms(&index),
        [syn(
            "log.index.size.max.bytes",
            "10485760",
            ConfigSource::Default
        )]
    );
    // Strom's flush default shows as a default, not as a broker setting.
    let flush = entry(&entries, "flush.messages");
    assert_eq!(
        (flush.value.as_deref(), flush.source),
        (Some("1"), ConfigSource::Default)
    );
    // A key without a broker synonym falls back to the topic default under its own name.
    let throttled = entry(&entries, "leader.replication.throttled.replicas");
    assert_eq!(throttled.value.as_deref(), Some(""));
    assert_eq!(
        synonyms(&throttled),
        [syn(
            "leader.replication.throttled.replicas",
            "",
            ConfigSource::Default
        )]
    );
}

#[test]
fn describe_synonyms_list_every_explicit_broker_key_in_precedence_order() {
    let b = broker(&["log.retention.hours=24", "log.retention.ms=1000"]);
    let o = overrides(&[("retention.ms", "5")]);
    let entries = TopicConfig::describe(&b, &o, Some(&["retention.ms".to_string()]), true, false);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].value.as_deref(), Some("5"));
    assert_eq!(
        synonyms(&entries[0]),
        [
            syn("retention.ms", "5", ConfigSource::DynamicTopic),
            syn("log.retention.ms", "1000", ConfigSource::StaticBroker),
            syn("log.retention.hours", "24", ConfigSource::StaticBroker),
            syn("log.retention.hours", "168", ConfigSource::Default),
        ]
    );
}

#[test]
fn describe_filters_and_omits_what_was_not_asked() {
    let keys = vec!["segment.ms".to_string(), "no.such.key".to_string()];
    let entries = TopicConfig::describe(
        &BrokerConfig::default(),
        &BTreeMap::new(),
        Some(&keys),
        false,
        false,
    );
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "segment.ms");
    assert_eq!(entries[0].value.as_deref(), Some("604800000"));
    assert!(entries[0].synonyms.is_empty());
    assert!(entries[0].documentation.is_empty());
}
