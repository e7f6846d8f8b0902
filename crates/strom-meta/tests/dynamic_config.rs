//! Dynamic broker configuration: levels merged over the static configuration, typed fields
//! recomputed, DescribeConfigs sources and synonyms in Kafka's order, topic defaults following
//! the new broker defaults.

use std::collections::BTreeMap;

use strom_meta::config::dynamic::{check_update, DynamicLayers};
use strom_meta::config::{BrokerConfig, ConfigSource, TopicConfig};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn entry(config: &BrokerConfig, key: &str) -> strom_meta::config::ConfigEntry {
    config
        .describe_filtered(Some(&[key.to_string()]), true, false)
        .pop()
        .unwrap()
}

#[test]
fn per_broker_beats_default_beats_static() {
    let base = BrokerConfig::load(Some("message.max.bytes=2000\n"), &[]).unwrap();
    let layers = DynamicLayers {
        cluster_default: map(&[("message.max.bytes", "3000"), ("min.insync.replicas", "2")]),
        per_broker: map(&[("message.max.bytes", "4000")]),
    };
    let live = base.with_dynamic(layers).unwrap();
    assert_eq!(live.message_max_bytes, 4000);
    assert_eq!(live.min_insync_replicas, 2);
    assert_eq!(
        base.message_max_bytes, 2000,
        "the static configuration is untouched"
    );

    let e = entry(&live, "message.max.bytes");
    assert_eq!(e.value.as_deref(), Some("4000"));
    assert_eq!(e.source, ConfigSource::DynamicBroker);
    assert!(!e.read_only);
    let sources: Vec<(String, ConfigSource)> = e
        .synonyms
        .iter()
        .map(|s| (s.value.clone(), s.source))
        .collect();
    assert_eq!(
        sources,
        vec![
            ("4000".to_string(), ConfigSource::DynamicBroker),
            ("3000".to_string(), ConfigSource::DynamicDefaultBroker),
            ("2000".to_string(), ConfigSource::StaticBroker),
            ("1048588".to_string(), ConfigSource::Default),
        ]
    );
    let e = entry(&live, "min.insync.replicas");
    assert_eq!(e.source, ConfigSource::DynamicDefaultBroker);
    let e = entry(&live, "broker.id");
    assert!(e.read_only);
    assert_eq!(e.source, ConfigSource::Default);

    // The cluster-default resource lists only what is set there.
    let defaults = live.describe_default(None, true, false);
    let names: Vec<&str> = defaults.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["message.max.bytes", "min.insync.replicas"]);
    assert!(defaults
        .iter()
        .all(|e| e.source == ConfigSource::DynamicDefaultBroker && e.synonyms.len() == 1));
}

#[test]
fn topics_without_an_override_follow_the_new_default() {
    let base = BrokerConfig::default();
    let live = base
        .with_dynamic(DynamicLayers {
            cluster_default: map(&[
                ("log.retention.ms", "60000"),
                ("log.cleanup.policy", "compact"),
            ]),
            per_broker: BTreeMap::new(),
        })
        .unwrap();
    let plain = TopicConfig::resolve(&live, &BTreeMap::new()).unwrap();
    assert_eq!(plain.retention_ms, 60_000);
    assert_eq!(plain.cleanup_policy, "compact");
    let overridden = TopicConfig::resolve(&live, &map(&[("retention.ms", "5000")])).unwrap();
    assert_eq!(overridden.retention_ms, 5_000);
    let described = TopicConfig::describe(
        &live,
        &BTreeMap::new(),
        Some(&["retention.ms".into()]),
        true,
        false,
    );
    assert_eq!(described[0].source, ConfigSource::DynamicDefaultBroker);
    assert_eq!(described[0].value.as_deref(), Some("60000"));
}

#[test]
fn cross_key_rules_name_the_dynamic_culprit() {
    let base = BrokerConfig::default();
    let error = base
        .with_dynamic(DynamicLayers {
            cluster_default: BTreeMap::new(),
            per_broker: map(&[("log.retention.ms", "0")]),
        })
        .unwrap_err();
    assert_eq!(error.key, "log.retention.ms");
    assert_eq!(error.value, "0");
}

#[test]
fn throttle_rates_are_dynamic_and_typed() {
    let checked = check_update(&map(&[
        ("leader.replication.throttled.rate", "1048576"),
        ("follower.replication.throttled.rate", "2097152"),
    ]))
    .unwrap();
    let live = BrokerConfig::default()
        .with_dynamic(DynamicLayers {
            cluster_default: BTreeMap::new(),
            per_broker: checked,
        })
        .unwrap();
    assert_eq!(live.cluster.leader_replication_throttled_rate, 1_048_576);
    assert_eq!(live.cluster.follower_replication_throttled_rate, 2_097_152);
    assert_eq!(
        BrokerConfig::default()
            .cluster
            .leader_replication_throttled_rate,
        i64::MAX
    );
    assert!(check_update(&map(&[("leader.replication.throttled.rate", "-1")])).is_err());
}
