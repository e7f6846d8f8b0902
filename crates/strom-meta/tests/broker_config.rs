//! Loading `server.properties` into a `BrokerConfig`: defaults, parsing, aliases, unit
//! synonyms, listener rules, errors, ignored keys and the BROKER DescribeConfigs view.

use std::path::PathBuf;

use strom_meta::config::{BrokerConfig, ConfigError, ConfigSource, ConfigType, Listener};

fn load(text: &str) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::load(Some(text), &[])
}

fn set(overrides: &[&str]) -> Result<BrokerConfig, ConfigError> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    BrokerConfig::load(None, &overrides)
}

fn plaintext(host: &str, port: u16) -> Listener {
    Listener {
        name: "PLAINTEXT".into(),
        host: host.into(),
        port,
    }
}

#[test]
fn defaults() {
    let c = BrokerConfig::default();
    assert_eq!(c, BrokerConfig::load(None, &[]).unwrap());
    assert_eq!(c.broker_id, 0);
    assert_eq!(c.listeners, vec![plaintext("127.0.0.1", 9092)]);
    assert_eq!(c.advertised_listeners, c.listeners);
    assert_eq!(c.log_dirs, vec![PathBuf::from("strom-data")]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.default_replication_factor, 1);
    assert!(c.auto_create_topics_enable);
    assert!(c.delete_topic_enable);
    assert_eq!(c.message_max_bytes, 1_048_588);
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert_eq!(c.log_segment_bytes, 1_073_741_824);
    assert_eq!(c.log_roll_ms, 168 * 3_600_000);
    assert_eq!(c.log_retention_ms, 168 * 3_600_000);
    assert_eq!(c.log_retention_bytes, -1);
    assert_eq!(c.log_retention_check_interval_ms, 300_000);
    assert_eq!(c.log_index_interval_bytes, 4096);
    assert_eq!(c.log_segment_delete_delay_ms, 60_000);
    assert_eq!(c.log_flush_interval_messages, 1, "Strom syncs every append");
    assert_eq!(c.log_flush_interval_ms, i64::MAX);
    assert_eq!(c.log_flush_offset_checkpoint_interval_ms, 1000);
    assert_eq!(c.log_message_timestamp_type, "CreateTime");
    assert_eq!(c.log_cleanup_policy, "delete");
    assert_eq!(c.compression_type, "producer");
    assert_eq!(c.min_insync_replicas, 1);
    assert!(!c.unclean_leader_election_enable);
    assert_eq!(c.num_recovery_threads_per_data_dir, 2);
    assert_eq!((c.num_network_threads, c.num_io_threads), (3, 8));
    assert_eq!(c.cluster_id, None);
    assert_eq!(c.offsets_topic_num_partitions, 50);
    assert_eq!(c.offsets_retention_minutes, 10080);
    assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
    assert_eq!(c.group_min_session_timeout_ms, 6000);
    assert_eq!(c.group_max_session_timeout_ms, 1_800_000);
    assert!(c.explicit.is_empty());
    assert!(c.ignored.is_empty());
}

#[test]
fn parses_a_kafka_style_properties_file() {
    let text = "\
# Licensed to the Apache Software Foundation
############################# Server Basics #############################
broker.id=3
! a bang comment
listeners = PLAINTEXT://localhost:19092
log.dirs=/data/a,\\
         /data/b
num.partitions: 6
default.replication.factor 1
auto.create.topics.enable=FALSE
cluster.id=MkU3OEVBNTcwNTJENDM2Qk
";
    let c = load(text).unwrap();
    assert_eq!(c.broker_id, 3);
    assert_eq!(c.listeners, vec![plaintext("localhost", 19092)]);
    assert_eq!(c.advertised_listeners, c.listeners);
    assert_eq!(
        c.log_dirs,
        vec![PathBuf::from("/data/a"), PathBuf::from("/data/b")]
    );
    assert_eq!(c.num_partitions, 6);
    assert!(!c.auto_create_topics_enable);
    assert_eq!(c.cluster_id.as_deref(), Some("MkU3OEVBNTcwNTJENDM2Qk"));
    assert_eq!(c.explicit.get("num.partitions").unwrap(), "6");
    assert_eq!(c.explicit.len(), 7);
}

#[test]
fn overrides_win_over_the_file_and_later_wins() {
    let overrides = vec![
        "num.partitions=4".to_string(),
        "num.partitions = 5".to_string(),
    ];
    let c = BrokerConfig::load(Some("num.partitions=2\nnum.partitions=3"), &overrides).unwrap();
    assert_eq!(c.num_partitions, 5);
    let c = load("num.partitions=2\nnum.partitions=3").unwrap();
    assert_eq!(c.num_partitions, 3);
}

#[test]
fn malformed_override_is_an_error() {
    let error = set(&["num.partitions"]).unwrap_err();
    assert_eq!(error.key, "num.partitions");
    assert!(error.rule.contains("key=value"), "{error}");
}

#[test]
fn aliases_resolve_to_canonical_keys() {
    let c = set(&["node.id=7", "flush.messages=1000", "flush.ms=50"]).unwrap();
    assert_eq!(c.broker_id, 7);
    assert_eq!(c.log_flush_interval_messages, 1000);
    assert_eq!(c.log_flush_interval_ms, 50);
    let keys: Vec<&str> = c.explicit.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "broker.id",
            "log.flush.interval.messages",
            "log.flush.interval.ms"
        ]
    );
    // A bad value under an alias is reported under the name the user wrote.
    let error = set(&["node.id=x"]).unwrap_err();
    assert_eq!(error.key, "node.id");
    assert_eq!(error.rule, "must be an integer >= 0");
}

#[test]
fn retention_synonyms_follow_kafka_precedence() {
    assert_eq!(
        set(&["log.retention.hours=1"]).unwrap().log_retention_ms,
        3_600_000
    );
    assert_eq!(
        set(&["log.retention.minutes=2"]).unwrap().log_retention_ms,
        120_000
    );
    assert_eq!(set(&["log.retention.ms=5"]).unwrap().log_retention_ms, 5);
    let all = set(&[
        "log.retention.hours=1",
        "log.retention.minutes=2",
        "log.retention.ms=5",
    ])
    .unwrap();
    assert_eq!(all.log_retention_ms, 5);
    let minutes_over_hours = set(&["log.retention.hours=1", "log.retention.minutes=2"]).unwrap();
    assert_eq!(minutes_over_hours.log_retention_ms, 120_000);
    assert_eq!(set(&["log.retention.ms=-1"]).unwrap().log_retention_ms, -1);
    assert_eq!(
        set(&["log.retention.hours=-1"]).unwrap().log_retention_ms,
        -1
    );
    let error = set(&["log.retention.minutes=0"]).unwrap_err();
    assert_eq!(error.key, "log.retention.minutes");
    assert!(error.rule.contains("-1"), "{error}");
}

#[test]
fn roll_synonyms() {
    assert_eq!(set(&["log.roll.hours=2"]).unwrap().log_roll_ms, 7_200_000);
    assert_eq!(
        set(&["log.roll.hours=2", "log.roll.ms=10"])
            .unwrap()
            .log_roll_ms,
        10
    );
    assert!(set(&["log.roll.ms=0"]).is_err());
}

#[test]
fn log_dirs_over_log_dir() {
    let c = set(&["log.dir=/one"]).unwrap();
    assert_eq!(c.log_dirs, vec![PathBuf::from("/one")]);
    let c = set(&["log.dir=/one", "log.dirs=/a, /b,"]).unwrap();
    assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    let error = set(&["log.dirs=,"]).unwrap_err();
    assert_eq!(error.key, "log.dirs");
    assert!(error.rule.contains("at least one"), "{error}");
}

#[test]
fn errors_name_key_value_and_rule() {
    let error = set(&["num.partitions=abc"]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid value 'abc' for configuration 'num.partitions': must be an integer >= 1"
    );
    let cases = [
        ("num.partitions=0", "must be an integer >= 1"),
        ("log.segment.bytes=13", "must be an integer >= 14"),
        ("message.max.bytes=-1", "must be an integer >= 0"),
        ("socket.request.max.bytes=0", "must be an integer >= 1"),
        ("auto.create.topics.enable=yes", "must be true or false"),
        (
            "default.replication.factor=40000",
            "must be an integer between 1 and 32767",
        ),
        (
            "log.message.timestamp.type=Now",
            "must be one of: CreateTime, LogAppendTime",
        ),
        (
            "log.cleanup.policy=delete,archive",
            "must be a comma-separated list of: delete, compact",
        ),
        (
            "log.cleaner.min.cleanable.ratio=2",
            "must be a number between 0 and 1",
        ),
        (
            "num.partitions=99999999999",
            "must be an integer >= 1 and <= 2147483647",
        ),
    ];
    for (text, rule) in cases {
        let error = set(&[text]).unwrap_err();
        let (key, value) = text.split_once('=').unwrap();
        assert_eq!((error.key.as_str(), error.value.as_str()), (key, value));
        assert_eq!(error.rule, rule, "{text}");
    }
    assert_eq!(
        set(&["log.cleanup.policy=compact,delete"])
            .unwrap()
            .log_cleanup_policy,
        "compact,delete"
    );
}

#[test]
fn unknown_key_suggests_the_closest_known_key() {
    let error = load("num.partitons=3").unwrap_err();
    assert!(error.is_unknown_key());
    assert_eq!(error.key, "num.partitons");
    assert_eq!(
        error.to_string(),
        "unknown configuration 'num.partitons' (set to '3'); did you mean 'num.partitions'?"
    );
    let error = set(&["nodeid=1"]).unwrap_err();
    assert!(error.rule.contains("'node.id'"), "{error}");
    let error = set(&["completely.made.up=1"]).unwrap_err();
    assert_eq!(error.rule, "unknown configuration");
}

#[test]
fn well_known_kafka_keys_are_accepted_and_ignored() {
    let text = "\
zookeeper.connect=localhost:2181
zookeeper.connection.timeout.ms=18000
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.cleaner.enable=true
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT
controller.quorum.voters=1@localhost:9093
process.roles=broker,controller
socket.send.buffer.bytes=1
num.partitions=2
";
    let c = load(text).unwrap();
    assert_eq!(c.num_partitions, 2);
    assert_eq!(
        c.ignored,
        [
            "socket.send.buffer.bytes",
            "socket.receive.buffer.bytes",
            "listener.security.protocol.map",
            "controller.quorum.voters",
            "process.roles",
        ]
    );
    // The cluster and transaction keys, num.partitions and log.cleaner.enable, which Strom
    // uses.
    assert_eq!(c.explicit.len(), 8);
    assert_eq!(c.cluster.offsets_topic_replication_factor, 1);
    assert_eq!(c.transactions.log_replication_factor, 1);
    assert_eq!(c.transactions.log_min_isr, 1);
    assert!(c.log_cleaner_enable);
}

#[test]
fn listeners() {
    let c = set(&[
        "listeners=PLAINTEXT://0.0.0.0:0",
        "advertised.listeners=PLAINTEXT://broker-1:9092",
    ])
    .unwrap();
    assert_eq!(c.listeners, vec![plaintext("0.0.0.0", 0)]);
    assert_eq!(c.advertised_listeners, vec![plaintext("broker-1", 9092)]);

    let c = set(&["listeners=plaintext://[::1]:9093"]).unwrap();
    assert_eq!(c.listeners, vec![plaintext("::1", 9093)]);
    assert_eq!(c.listeners[0].address(), "[::1]:9093");
    assert_eq!(c.listeners[0].to_string(), "PLAINTEXT://[::1]:9093");

    let error = set(&["listeners=SSL://localhost:9093"]).unwrap_err();
    assert_eq!(error.key, "listeners");
    assert!(error.rule.contains("only PLAINTEXT"), "{error}");

    for bad in [
        "localhost:9092",
        "PLAINTEXT://localhost",
        "PLAINTEXT://h:99999",
        "",
    ] {
        let error = set(&[&format!("listeners={bad}")]).unwrap_err();
        assert_eq!(error.key, "listeners", "{bad}");
    }
    let error = set(&["listeners=PLAINTEXT://a:1,PLAINTEXT://b:2"]).unwrap_err();
    assert!(error.rule.contains("different name"), "{error}");
}

#[test]
fn advertised_listeners_must_be_routable() {
    let error = set(&["advertised.listeners=PLAINTEXT://0.0.0.0:9092"]).unwrap_err();
    assert_eq!(error.key, "advertised.listeners");
    assert!(error.rule.contains("0.0.0.0"), "{error}");
    // Inherited from listeners: the message says how to fix it.
    let error = set(&["listeners=PLAINTEXT://0.0.0.0:9092"]).unwrap_err();
    assert_eq!(error.key, "advertised.listeners");
    assert_eq!(error.value, "PLAINTEXT://0.0.0.0:9092");
    assert!(error.rule.contains("set advertised.listeners"), "{error}");
    // An empty host in listeners means every interface.
    let c = set(&[
        "listeners=PLAINTEXT://:9092",
        "advertised.listeners=PLAINTEXT://localhost:9092",
    ])
    .unwrap();
    assert_eq!(c.listeners, vec![plaintext("0.0.0.0", 9092)]);
}

#[test]
fn group_session_timeouts_must_be_ordered() {
    let error = set(&["group.min.session.timeout.ms=2000000"]).unwrap_err();
    assert_eq!(error.key, "group.min.session.timeout.ms");
    assert!(
        error
            .rule
            .contains("<= group.max.session.timeout.ms (1800000)"),
        "{error}"
    );
    // The error names the key the user changed.
    let error = set(&["group.max.session.timeout.ms=1"]).unwrap_err();
    assert_eq!(
        (error.key.as_str(), error.value.as_str()),
        ("group.max.session.timeout.ms", "1")
    );
    assert!(
        error
            .rule
            .contains(">= group.min.session.timeout.ms (6000)"),
        "{error}"
    );
}

#[test]
fn known_keys() {
    assert!(BrokerConfig::is_known_key("num.partitions"));
    assert!(BrokerConfig::is_known_key("node.id"));
    assert!(BrokerConfig::is_known_key("zookeeper.connect"));
    assert!(!BrokerConfig::is_known_key("zookeeper.set.acl"));
    assert!(!BrokerConfig::is_known_key("retention.ms"));
}

#[test]
fn describe_reports_sources_values_and_synonyms() {
    let c = set(&["num.partitions=3", "log.retention.hours=24", "node.id=2"]).unwrap();
    let entries = c.describe();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(entries.iter().all(|e| !e.is_sensitive));
    // Read-only exactly where Kafka does not allow a dynamic update.
    assert!(entries
        .iter()
        .all(|e| e.read_only != strom_meta::config::dynamic::is_dynamic(&e.name)));
    assert!(entries.iter().any(|e| e.read_only) && entries.iter().any(|e| !e.read_only));
    assert!(entries.iter().all(|e| !e.documentation.is_empty()));

    let entry = |name: &str| entries.iter().find(|e| e.name == name).unwrap().clone();
    let partitions = entry("num.partitions");
    assert_eq!(partitions.value.as_deref(), Some("3"));
    assert_eq!(partitions.source, ConfigSource::StaticBroker);
    assert_eq!(partitions.config_type, ConfigType::Int);
    assert_eq!(entry("broker.id").value.as_deref(), Some("2"));

    let segment = entry("log.segment.bytes");
    assert_eq!(segment.source, ConfigSource::Default);
    assert_eq!(segment.value.as_deref(), Some("1073741824"));

    let flush = entry("log.flush.interval.messages");
    assert_eq!(flush.value.as_deref(), Some("1"));
    assert!(
        flush.documentation.contains("Kafka"),
        "the doc explains the difference"
    );

    // log.retention.ms reflects the hours the user set, and lists where it came from.
    let retention = entry("log.retention.ms");
    assert_eq!(retention.value.as_deref(), Some("86400000"));
    assert_eq!(retention.source, ConfigSource::StaticBroker);
    let synonyms: Vec<(&str, &str, ConfigSource)> = retention
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.value.as_str(), s.source))
        .collect();
    assert_eq!(
        synonyms,
        [
            ("log.retention.hours", "24", ConfigSource::StaticBroker),
            ("log.retention.hours", "168", ConfigSource::Default),
        ]
    );

    // A key with no value at all.
    let rack = entry("broker.rack");
    assert_eq!(rack.value, None);
    assert_eq!(rack.source, ConfigSource::Default);

    let filtered = c.describe_filtered(Some(&["num.partitions".to_string()]), false, false);
    assert_eq!(filtered.len(), 1);
    assert!(filtered[0].synonyms.is_empty());
    assert!(filtered[0].documentation.is_empty());
    // Each key is described in its own unit.
    assert_eq!(
        c.effective_value("log.retention.minutes").as_deref(),
        Some("1440")
    );
    assert_eq!(
        c.effective_value("log.retention.hours").as_deref(),
        Some("24")
    );
    assert_eq!(
        c.effective_value("log.retention.ms").as_deref(),
        Some("86400000")
    );
    assert_eq!(c.effective_value("node.id").as_deref(), Some("2"));
    assert_eq!(c.effective_value("no.such.key"), None);
}

/// Any value for any key is either accepted or refused with a ConfigError naming that key;
/// none makes the loader panic (a value that passes its rule must also parse into its field).
#[test]
fn every_key_with_odd_values_never_panics() {
    let values = [
        "",
        " ",
        "0",
        "-1",
        "1",
        " +7 ",
        "TRUE",
        "x",
        "0.5",
        "2147483648",
        "9223372036854775807",
        "-9223372036854775808",
        "PLAINTEXT://h:1",
        "compact,delete",
    ];
    for key in BrokerConfig::known_keys() {
        for value in values {
            match set(&[&format!("{key}={value}")]) {
                Ok(config) => {
                    let _ = config.describe();
                    let _ = strom_meta::config::TopicConfig::resolve(
                        &config,
                        &std::collections::BTreeMap::new(),
                    );
                }
                Err(error) => assert!(
                    BrokerConfig::is_known_key(&error.key),
                    "{key}={value}: {error}"
                ),
            }
        }
    }
}

#[test]
fn cluster_keys_have_kafka_defaults_and_rules() {
    let defaults = BrokerConfig::default();
    assert_eq!(defaults.cluster.zookeeper_connect, None);
    assert_eq!(defaults.cluster.zookeeper_session_timeout_ms, 18000);
    assert_eq!(defaults.cluster.zookeeper_connection_timeout_ms, 18000);
    assert_eq!(defaults.cluster.replica_lag_time_max_ms, 30000);
    assert_eq!(defaults.cluster.replica_fetch_wait_max_ms, 500);
    assert_eq!(defaults.cluster.offsets_topic_replication_factor, 3);

    let set = BrokerConfig::load(
        Some(
            "zookeeper.connect=127.0.0.1:2181,127.0.0.1:2182/strom\n\
             zookeeper.session.timeout.ms=6000\n\
             broker.rack=r1\n",
        ),
        &[],
    )
    .unwrap();
    let zk = set.cluster.zookeeper_connect.as_ref().unwrap();
    assert_eq!(zk.servers_text(), "127.0.0.1:2181,127.0.0.1:2182");
    assert_eq!(zk.chroot.as_deref(), Some("/strom"));
    assert_eq!(set.cluster.zookeeper_connection_timeout_ms, 6000);
    assert!(set.ignored.is_empty(), "{:?}", set.ignored);

    let error = BrokerConfig::load(
        Some("replica.fetch.wait.max.ms=30000\nreplica.lag.time.max.ms=30000\n"),
        &[],
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("replica.fetch.wait.max.ms"),
        "{error}"
    );
    let error =
        BrokerConfig::load(Some("inter.broker.listener.name=REPLICATION\n"), &[]).unwrap_err();
    assert!(
        error.to_string().contains("advertised.listeners"),
        "{error}"
    );
    let error = BrokerConfig::load(Some("zookeeper.connect=zk:0\n"), &[]).unwrap_err();
    assert!(error.to_string().contains("zookeeper.connect"), "{error}");
}

#[test]
fn replica_selector_class_takes_kafkas_two_selectors() {
    assert!(!set(&[]).unwrap().cluster.replica_selector_rack_aware);
    let rack_aware =
        set(&["replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"])
            .unwrap();
    assert!(rack_aware.cluster.replica_selector_rack_aware);
    let leader =
        set(&["replica.selector.class=org.apache.kafka.common.replica.LeaderSelector"]).unwrap();
    assert!(!leader.cluster.replica_selector_rack_aware);
    let err = set(&["replica.selector.class=com.example.NearestSelector"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("replica.selector.class") && err.contains("com.example.NearestSelector"),
        "{err}"
    );
}
